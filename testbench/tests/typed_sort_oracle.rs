//! Testbench: typed relations sorted end to end through `sim::sort_job::sort_relation`
//! (HM compact encoding → IN module key transformation → sorter → sorting checker →
//! software inverse transform and decoding), checked against an INDEPENDENT oracle: a
//! plain, stable Rust sort of the typed values. It never looks at the engine's word
//! encoding, so a wrong key transformation (sign flip, float totalOrder, byte order,
//! padding) shows up as a wrong order here even where the RTL and its model agree.
//!
//! Oracle order (paper §3.3, §4.1–4.2):
//! * integers by value (i16/i32/i64 signed, u16/u32/u64 unsigned);
//! * f32 by IEEE 754 totalOrder (`f32::total_cmp`): negative NaNs, -inf, negatives,
//!   -0.0, +0.0, positives, +inf, positive NaNs; -0.0 and +0.0 are distinct keys;
//! * char(N) byte-wise (unsigned bytes; a shorter string before its extensions);
//! * the whole tuple (`SortKey::WholeTuple`): field by field (char and unsigned fields,
//!   a null field as its zero encoding), then the tag word (null flags) as a number;
//! * stable; tuples whose key is null after all others, in both orders.
//!
//! Also checked: `Backend::Model` returns the same relation and DP; DP delimits exactly
//! the groups of equal keys (`group_sizes`; nulls form one group); the status shows no
//! error and the relation within one string.
//!
//! Parameters swept: field type (u16, u32, u64, i16, i32, i64, f32, char(1), char(5),
//! char(8), and char(4091) for the longest tuple), key position (first, middle, last field), order (ascending, descending),
//! configuration (Small for the per-type relations at exactly the capacity, Delta for a
//! 10-field relation sorted by every field), null density (about 12 %), duplicates (about
//! a fifth of the values repeat an earlier one, plus the repeated boundary values).
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rdbe_rtl::sorter::{capacity_tuples, DELTA_CELL_ADDRESS_BITS, SMALL_CELL_ADDRESS_BITS};
use rdbe_sim::relation::{FieldType, Relation, Schema, Value};
use rdbe_sim::sort_job::{group_sizes, sort_relation, Backend, EngineConfig, SortKey, SortSpec};
use rdbe_testbench::{first_difference, seeded};
use std::cmp::Ordering;

/// A value in a form with total equality: floats by their bits (so -0.0 != +0.0 and a
/// NaN equals itself), strings by their bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Canon {
    Null,
    U(u64),
    S(i64),
    F(u32),
    T(Vec<u8>),
}

fn canon(v: &Value) -> Canon {
    match v {
        Value::Null => Canon::Null,
        Value::Unsigned(x) => Canon::U(*x),
        Value::Signed(x) => Canon::S(*x),
        Value::Float(x) => Canon::F(x.to_bits()),
        Value::Text(s) => Canon::T(s.as_bytes().to_vec()),
    }
}

fn canon_rows(tuples: &[Vec<Value>]) -> Vec<Vec<Canon>> {
    tuples
        .iter()
        .map(|t| t.iter().map(canon).collect())
        .collect()
}

/// Typed order of two non-null values of one field.
fn typed_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Unsigned(x), Value::Unsigned(y)) => x.cmp(y),
        (Value::Signed(x), Value::Signed(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.total_cmp(y),
        (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => panic!("values of different types: {a:?} {b:?}"),
    }
}

/// The oracle for a field key: stable, nulls last in both orders.
fn field_order(a: &Value, b: &Value, descending: bool) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        _ => {
            let o = typed_cmp(a, b);
            if descending {
                o.reverse()
            } else {
                o
            }
        }
    }
}

/// The whole-tuple key for char and unsigned fields: each field (null as its zero
/// encoding: 0, or the empty string padded with zero bytes), then the tag word.
fn whole_tuple_key(schema: &Schema, t: &[Value]) -> (Vec<Canon>, u16) {
    let mut tag = 0u16;
    let fields = t
        .iter()
        .zip(&schema.fields)
        .enumerate()
        .map(|(j, (v, f))| match (v, f.ty) {
            (Value::Null, FieldType::Char(n)) => {
                tag |= 1 << j;
                Canon::T(vec![0; n])
            }
            (Value::Null, _) => {
                tag |= 1 << j;
                Canon::U(0)
            }
            (Value::Text(s), FieldType::Char(n)) => {
                let mut b = s.as_bytes().to_vec();
                b.resize(n, 0);
                Canon::T(b)
            }
            (Value::Unsigned(x), _) => Canon::U(*x),
            _ => panic!("whole-tuple oracle takes char and unsigned fields only"),
        })
        .collect();
    (fields, tag)
}

fn canon_cmp(a: &Canon, b: &Canon) -> Ordering {
    match (a, b) {
        (Canon::U(x), Canon::U(y)) => x.cmp(y),
        (Canon::T(x), Canon::T(y)) => x.cmp(y),
        _ => panic!("whole-tuple fields of different kinds"),
    }
}

fn whole_tuple_order(schema: &Schema, a: &[Value], b: &[Value], descending: bool) -> Ordering {
    let (ka, ta) = whole_tuple_key(schema, a);
    let (kb, tb) = whole_tuple_key(schema, b);
    let mut o = Ordering::Equal;
    for (x, y) in ka.iter().zip(&kb) {
        o = canon_cmp(x, y);
        if o != Ordering::Equal {
            break;
        }
    }
    let o = o.then(ta.cmp(&tb));
    if descending {
        o.reverse()
    } else {
        o
    }
}

/// Whether two rows' keys are equal.
type KeysEqual = Box<dyn Fn(&[Value], &[Value]) -> bool>;

/// The oracle: the relation stably sorted by `spec`, and its groups of equal keys as
/// `(first index, size)` (what `group_sizes` must make of the DP line).
fn oracle(relation: &Relation, spec: &SortSpec) -> (Vec<Vec<Value>>, Vec<(usize, usize)>) {
    let mut rows = relation.tuples.clone();
    let same: KeysEqual = match &spec.key {
        SortKey::Field(name) => {
            let i = relation.schema.field_index(name).unwrap();
            rows.sort_by(|a, b| field_order(&a[i], &b[i], spec.descending));
            Box::new(move |a: &[Value], b: &[Value]| canon(&a[i]) == canon(&b[i]))
        }
        SortKey::WholeTuple => {
            let schema = relation.schema.clone();
            rows.sort_by(|a, b| whole_tuple_order(&schema, a, b, spec.descending));
            Box::new(move |a: &[Value], b: &[Value]| {
                whole_tuple_key(&schema, a) == whole_tuple_key(&schema, b)
            })
        }
    };
    let mut groups = vec![];
    let mut start = 0;
    for i in 0..rows.len() {
        if i + 1 == rows.len() || !same(&rows[i], &rows[i + 1]) {
            groups.push((start, i + 1 - start));
            start = i + 1;
        }
    }
    (rows, groups)
}

/// Sort on the RTL and on the model and check both against the oracle.
fn check_sort(config: EngineConfig, relation: &Relation, spec: &SortSpec, label: &str) {
    let (want, want_groups) = oracle(relation, spec);
    let rtl = sort_relation(config, Backend::Rtl, relation, spec, None)
        .unwrap_or_else(|e| panic!("{label}: RTL sort failed: {e:#}"));
    let got = canon_rows(&rtl.relation.tuples);
    let want_c = canon_rows(&want);
    if let Some(i) = first_difference(&got, &want_c) {
        let lo = i.saturating_sub(2);
        panic!(
            "{label}: RTL order differs from the typed oracle at tuple {i}\n got:  {:?}\n want: {:?}",
            &rtl.relation.tuples[lo..(i + 3).min(rtl.relation.tuples.len())],
            &want[lo..(i + 3).min(want.len())]
        );
    }
    assert_eq!(rtl.dup.len(), want.len(), "{label}: one DP bit per tuple");
    assert_eq!(group_sizes(&rtl.dup), want_groups, "{label}: DP groups");
    let st = rtl.status;
    assert!(
        !st.parity_error && !st.framing_error && !st.sort_error && st.violations == 0,
        "{label}: status {st:?}"
    );
    assert!(
        st.capacity_tuples >= relation.tuples.len(),
        "{label}: fits one string: {st:?}"
    );
    assert!(rtl.cycles > 0, "{label}: the RTL ran");

    let model = sort_relation(config, Backend::Model, relation, spec, None)
        .unwrap_or_else(|e| panic!("{label}: model sort failed: {e:#}"));
    assert_eq!(
        canon_rows(&model.relation.tuples),
        got,
        "{label}: Backend::Model relation differs from the RTL"
    );
    assert_eq!(
        model.dup, rtl.dup,
        "{label}: Backend::Model DP differs from the RTL"
    );
}

/// Boundary values of each type (the ones a wrong transform gets wrong first).
fn specials(ty: FieldType) -> Vec<Value> {
    use Value::*;
    match ty {
        FieldType::U16 => [0u64, 1, 0x7fff, 0x8000, 0xfffe, 0xffff]
            .map(Unsigned)
            .to_vec(),
        FieldType::U32 => [
            0u64,
            1,
            0xffff,
            0x1_0000,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
        ]
        .map(Unsigned)
        .to_vec(),
        FieldType::U64 => [0u64, 1, 0xffff, 1 << 32, (1 << 63) - 1, 1 << 63, u64::MAX]
            .map(Unsigned)
            .to_vec(),
        FieldType::I16 => [
            i16::MIN as i64,
            i16::MIN as i64 + 1,
            -256,
            -1,
            0,
            1,
            255,
            i16::MAX as i64 - 1,
            i16::MAX as i64,
        ]
        .map(Signed)
        .to_vec(),
        FieldType::I32 => [
            i32::MIN as i64,
            -65536,
            -65535,
            -1,
            0,
            1,
            65535,
            65536,
            i32::MAX as i64,
        ]
        .map(Signed)
        .to_vec(),
        FieldType::I64 => [
            i64::MIN,
            i64::MIN + 1,
            -(1 << 32),
            -1,
            0,
            1,
            1 << 32,
            i64::MAX - 1,
            i64::MAX,
        ]
        .map(Signed)
        .to_vec(),
        FieldType::F32 => [
            f32::NEG_INFINITY,
            f32::MIN,
            -1.5,
            -f32::MIN_POSITIVE,
            -f32::from_bits(1), // smallest negative subnormal
            -0.0,
            0.0,
            f32::from_bits(1),           // smallest positive subnormal
            f32::from_bits(0x007f_ffff), // largest subnormal
            f32::MIN_POSITIVE,
            1.0,
            f32::MAX,
            f32::INFINITY,
            f32::from_bits(0x7fc0_0000), // quiet NaN
            f32::from_bits(0x7f80_0001), // signalling NaN
            f32::from_bits(0xffc0_0000), // negative quiet NaN
            f32::from_bits(0xffff_ffff), // negative NaN, largest payload
        ]
        .map(Float)
        .to_vec(),
        FieldType::Char(n) => [
            "", "a", "aa", "ab", "b", "A", "~", "é", "éa", "ÿÿ", "a b", "zzzzzzzz",
        ]
        .iter()
        .filter(|s| s.len() <= n)
        .map(|s| Text(s.to_string()))
        .collect(),
    }
}

/// A random non-null value of a type.
fn random_value(rng: &mut ChaCha8Rng, ty: FieldType) -> Value {
    match ty {
        FieldType::U16 => Value::Unsigned(rng.gen::<u16>() as u64),
        FieldType::U32 => Value::Unsigned(rng.gen::<u32>() as u64),
        FieldType::U64 => Value::Unsigned(rng.gen()),
        FieldType::I16 => Value::Signed(rng.gen::<i16>() as i64),
        FieldType::I32 => Value::Signed(rng.gen::<i32>() as i64),
        FieldType::I64 => Value::Signed(rng.gen()),
        FieldType::F32 => {
            if rng.gen_bool(0.5) {
                // Any bit pattern: normals, subnormals, NaNs with payloads.
                Value::Float(f32::from_bits(rng.gen()))
            } else {
                Value::Float(rng.gen_range(-1000.0f32..1000.0))
            }
        }
        FieldType::Char(n) => {
            // Multi-byte UTF-8 too: bytes >= 0x80 must compare above ASCII.
            let alphabet = ["a", "b", "c", "A", "Z", "0", " ", "~", "é", "ÿ"];
            let mut s = String::new();
            let want = rng.gen_range(0..=n);
            loop {
                let c = alphabet.choose(rng).unwrap();
                if s.len() + c.len() > want {
                    break;
                }
                s.push_str(c);
            }
            Value::Text(s)
        }
    }
}

/// `count` values of a type: about 12 % null, a third boundary values, a fifth repeats of
/// an earlier value, the rest random.
fn column(rng: &mut ChaCha8Rng, ty: FieldType, count: usize) -> Vec<Value> {
    let sp = specials(ty);
    let mut out: Vec<Value> = Vec::with_capacity(count);
    for _ in 0..count {
        let v = match rng.gen_range(0..100) {
            0..=11 => Value::Null,
            12..=44 => sp.choose(rng).unwrap().clone(),
            45..=64 if !out.is_empty() => out.choose(rng).unwrap().clone(),
            _ => random_value(rng, ty),
        };
        out.push(v);
    }
    out
}

/// A relation from columns; a `u16` id column (never null) makes stability visible.
fn relation(
    rng: &mut ChaCha8Rng,
    name: &str,
    fields: &[(&str, FieldType)],
    count: usize,
) -> Relation {
    let schema = Schema::new(fields).unwrap();
    let cols: Vec<Vec<Value>> = fields
        .iter()
        .map(|(n, ty)| {
            if *n == "id" {
                (0..count).map(|i| Value::Unsigned(i as u64)).collect()
            } else {
                column(rng, *ty, count)
            }
        })
        .collect();
    let tuples = (0..count)
        .map(|i| cols.iter().map(|c| c[i].clone()).collect())
        .collect();
    Relation::new(name, schema, tuples).unwrap()
}

const TYPES: [FieldType; 10] = [
    FieldType::U16,
    FieldType::U32,
    FieldType::U64,
    FieldType::I16,
    FieldType::I32,
    FieldType::I64,
    FieldType::F32,
    FieldType::Char(1),
    FieldType::Char(5),
    FieldType::Char(8),
];

/// Small configuration: a relation of exactly the capacity per field type and key
/// position (first, middle, last field), in both orders across the positions.
#[test]
fn small_each_type_at_each_position() {
    const SEED: u64 = 0x7E5_0001;
    let mut rng = seeded(SEED);
    for (ti, &ty) in TYPES.iter().enumerate() {
        // Layouts: key first, key between two fields, key last.
        let layouts: [&[(&str, FieldType)]; 3] = [
            &[("k", ty), ("id", FieldType::U16)],
            &[
                ("id", FieldType::U16),
                ("k", ty),
                ("tail", FieldType::Char(3)),
            ],
            &[("id", FieldType::U16), ("mid", FieldType::I16), ("k", ty)],
        ];
        for (li, fields) in layouts.iter().enumerate() {
            let words = Schema::new(fields).unwrap().tuple_words();
            let cap = capacity_tuples(&SMALL_CELL_ADDRESS_BITS, words);
            let rel = relation(&mut rng, &format!("t{ti}l{li}"), fields, cap);
            // Both orders for each type: alternate over the positions.
            let descending = (ti + li) % 2 == 1;
            let spec = SortSpec {
                key: SortKey::Field("k".into()),
                descending,
            };
            let label = format!("seed {SEED:#x} type {ty} layout {li} desc {descending} ({cap} tuples of {words} words)");
            check_sort(EngineConfig::Small, &rel, &spec, &label);
        }
    }
}

/// Small configuration: the same relation by both orders for the types with an ordered
/// transform (signed and float), so each sees ascending and descending at one position.
#[test]
fn small_signed_and_float_both_orders() {
    const SEED: u64 = 0x7E5_0002;
    let mut rng = seeded(SEED);
    for ty in [
        FieldType::I16,
        FieldType::I32,
        FieldType::I64,
        FieldType::F32,
    ] {
        let fields = [("id", FieldType::U16), ("k", ty)];
        let words = Schema::new(&fields).unwrap().tuple_words();
        let cap = capacity_tuples(&SMALL_CELL_ADDRESS_BITS, words);
        let rel = relation(&mut rng, "both", &fields, cap);
        for descending in [false, true] {
            let spec = SortSpec {
                key: SortKey::Field("k".into()),
                descending,
            };
            check_sort(
                EngineConfig::Small,
                &rel,
                &spec,
                &format!("seed {SEED:#x} type {ty} desc {descending}"),
            );
        }
    }
}

/// Delta configuration: a 10-field relation (46-byte tuples) sorted by every field, the
/// order alternating, so keys of every type sit at the head, the middle and the end of
/// the tuple with other typed fields around them.
#[test]
fn delta_wide_relation_by_every_field() {
    const SEED: u64 = 0x7E5_0003;
    let mut rng = seeded(SEED);
    let fields = [
        ("i16", FieldType::I16),
        ("i32", FieldType::I32),
        ("i64", FieldType::I64),
        ("f32", FieldType::F32),
        ("u64", FieldType::U64),
        ("c5", FieldType::Char(5)),
        ("c4", FieldType::Char(4)),
        ("u16", FieldType::U16),
        ("u32", FieldType::U32),
        ("id", FieldType::U16),
    ];
    let words = Schema::new(&fields).unwrap().tuple_words();
    assert_eq!(words, 23);
    assert!(capacity_tuples(&DELTA_CELL_ADDRESS_BITS, words) >= 64);
    let rel = relation(&mut rng, "wide", &fields, 45);
    for (i, (name, ty)) in fields.iter().enumerate() {
        let spec = SortSpec {
            key: SortKey::Field(name.to_string()),
            descending: i % 2 == 1,
        };
        check_sort(
            EngineConfig::Delta,
            &rel,
            &spec,
            &format!("seed {SEED:#x} field {name}: {ty} desc {}", i % 2 == 1),
        );
    }
}

/// The whole-tuple key (char and unsigned fields, some null, many identical tuples), both
/// orders, on Small at its capacity and on Delta.
#[test]
fn whole_tuple_key_both_orders() {
    const SEED: u64 = 0x7E5_0004;
    let mut rng = seeded(SEED);
    let fields = [
        ("a", FieldType::Char(3)),
        ("b", FieldType::U16),
        ("c", FieldType::Char(2)),
    ];
    let schema = Schema::new(&fields).unwrap();
    let cap = capacity_tuples(&SMALL_CELL_ADDRESS_BITS, schema.tuple_words());
    // A pool of distinct-ish rows; the relation draws from it, so whole tuples repeat.
    let pool = relation(&mut rng, "pool", &fields, 12).tuples;
    for (config, count) in [(EngineConfig::Small, cap), (EngineConfig::Delta, 40)] {
        let tuples = (0..count)
            .map(|_| pool.choose(&mut rng).unwrap().clone())
            .collect();
        let rel = Relation::new("dups", schema.clone(), tuples).unwrap();
        for descending in [false, true] {
            let spec = SortSpec {
                key: SortKey::WholeTuple,
                descending,
            };
            check_sort(
                config,
                &rel,
                &spec,
                &format!("seed {SEED:#x} whole tuple {config:?} desc {descending}"),
            );
        }
    }
}

/// Delta configuration, the longest tuple: one char(4091) field (4094 bytes with the tag
/// word, 2047 words); strings that agree on their first 4000 bytes, and a null.
#[test]
fn delta_longest_tuple_char_key() {
    let schema = Schema::new(&[("s", FieldType::Char(4091))]).unwrap();
    assert_eq!(schema.tuple_bytes(), 4094);
    let long = |tail: &str| Value::Text(format!("{}{tail}", "x".repeat(4000)));
    let tuples = vec![long("b"), long("a~"), Value::Null, long("a")];
    // One order only (each sort is about 16k cycles): descending puts the extension "a~"
    // before its prefix "a", and the null still last.
    let rel = Relation::new(
        "long",
        schema,
        tuples.into_iter().map(|v| vec![v]).collect(),
    )
    .unwrap();
    let spec = SortSpec {
        key: SortKey::Field("s".into()),
        descending: true,
    };
    check_sort(
        EngineConfig::Delta,
        &rel,
        &spec,
        "4094-byte tuples, descending",
    );
}

/// A relation one tuple above the capacity is refused (it needs the external sort).
#[test]
fn above_capacity_is_refused() {
    let mut rng = seeded(0x7E5_0005);
    let fields = [("k", FieldType::I32), ("id", FieldType::U16)];
    let words = Schema::new(&fields).unwrap().tuple_words();
    let cap = capacity_tuples(&SMALL_CELL_ADDRESS_BITS, words);
    let rel = relation(&mut rng, "big", &fields, cap + 1);
    let spec = SortSpec {
        key: SortKey::Field("k".into()),
        descending: false,
    };
    for backend in [Backend::Model, Backend::Rtl] {
        let e = sort_relation(EngineConfig::Small, backend, &rel, &spec, None).unwrap_err();
        assert!(
            e.to_string().contains(&format!("holds {cap}")),
            "{backend:?}: {e}"
        );
    }
}
