//! Shared helpers of the RDBE hardware testbenches (`testbench/tests/*.rs`).
//!
//! Every testbench drives the RTL through [rdbe_rtl::harness::Harness] and compares it
//! with a reference: the crate's own models (`model_output`, `block_sort`) and, to keep
//! those honest, the small independent oracles below ([oracle_sort], [oracle_dup]), which
//! restate the sorter's contract directly from the paper (§4.2): stable, ascending or
//! descending by the key words compared as unsigned 16-bit numbers from the head, tuples
//! with a null key after all others in both orders, and DP on a tuple whose key equals
//! the next tuple's (null keys form one group).
//!
//! Randomness comes from seeded `rand_chacha` generators; every assertion message carries
//! the seed and the case so a failure can be replayed.
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdbe_rtl::harness::{Harness, Pacing};
use rdbe_rtl::in_module::{in_module_model, InConfig, KeyType};
use rdbe_rtl::sort_pipeline::{
    model_output, run_pipeline, PipelineRun, PipelineSettings, SortPipelineTop,
};
use rdbe_rtl::sorter::SortSettings;
use rdbe_rtl::tuple_stream::StreamTuple;
use std::cmp::Ordering;

/// A reproducible random generator for one testbench or case.
pub fn seeded(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

// ---------------------------------------------------------------------------------------
// Independent oracles.

/// The sorter's order, restated: normal keys before null keys in both directions; normal
/// keys by their first `key_words` words as unsigned numbers, most significant word first.
pub fn oracle_order(
    a: &StreamTuple,
    b: &StreamTuple,
    key_words: usize,
    descending: bool,
) -> Ordering {
    match (a.null, b.null) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let o = a.words[..key_words].cmp(&b.words[..key_words]);
            if descending {
                o.reverse()
            } else {
                o
            }
        }
    }
}

/// What the sorter must emit: every block of `capacity` consecutive input tuples stably
/// sorted (one block when the relation fits). DP is left clear.
pub fn oracle_sort(
    capacity: usize,
    key_words: usize,
    descending: bool,
    input: &[StreamTuple],
) -> Vec<StreamTuple> {
    assert!(capacity > 0);
    let mut out = Vec::with_capacity(input.len());
    for block in input.chunks(capacity) {
        let mut b: Vec<StreamTuple> = block
            .iter()
            .map(|t| StreamTuple {
                dup: false,
                ..t.clone()
            })
            .collect();
        // `sort_by` is a stable merge sort.
        b.sort_by(|x, y| oracle_order(x, y, key_words, descending));
        out.extend(b);
    }
    out
}

/// The DP line the sorting checker must drive: tuple `i` has DP when tuple `i + 1` has an
/// equal key (both normal with equal key words, or both null). The last tuple has none.
pub fn oracle_dup(tuples: &[StreamTuple], key_words: usize) -> Vec<bool> {
    (0..tuples.len())
        .map(|i| {
            tuples.get(i + 1).is_some_and(|next| {
                let t = &tuples[i];
                match (t.null, next.null) {
                    (true, true) => true,
                    (false, false) => t.words[..key_words] == next.words[..key_words],
                    _ => false,
                }
            })
        })
        .collect()
}

/// Adjacent pairs out of order (what the checker's `violations` counts).
pub fn oracle_violations(tuples: &[StreamTuple], key_words: usize, descending: bool) -> u32 {
    tuples
        .windows(2)
        .filter(|p| oracle_order(&p[0], &p[1], key_words, descending) == Ordering::Greater)
        .count() as u32
}

/// Tuples per sorted string leaving a sorter with these cells: 2^(cells that sort). A cell
/// sorts when sorting is enabled, one tuple fits one of its memories (2^a words), and,
/// with a size hint, the strings it receives are shorter than the relation.
pub fn oracle_strings(cell_address_bits: &[usize], s: &SortSettings) -> usize {
    let hint = if s.tuples_hint > 0xffff {
        0
    } else {
        s.tuples_hint
    };
    let mut run = 1usize;
    for &a in cell_address_bits {
        let fits = s.tuple_words <= 1 << a;
        if s.sort_enable && fits && (hint == 0 || run < hint) {
            run *= 2;
        }
    }
    run
}

/// The paper's capacity in bytes for tuples of `tuple_bytes` bytes: min(4096·L, 64 KB).
pub fn paper_capacity_bytes(tuple_bytes: usize) -> usize {
    (4096 * tuple_bytes).min(64 * 1024)
}

/// Index of the first element where two sequences differ (or the shorter length), for
/// readable failure messages on long relations.
pub fn first_difference<T: PartialEq>(a: &[T], b: &[T]) -> Option<usize> {
    let n = a.len().min(b.len());
    (0..n)
        .find(|&i| a[i] != b[i])
        .or(if a.len() != b.len() { Some(n) } else { None })
}

/// Panics with `what`, the first difference and its neighbourhood when `got != want`.
pub fn assert_same_tuples(got: &[StreamTuple], want: &[StreamTuple], what: &str) {
    if let Some(i) = first_difference(got, want) {
        let lo = i.saturating_sub(2);
        let show = |v: &[StreamTuple]| -> String {
            v.iter()
                .enumerate()
                .skip(lo)
                .take(5)
                .map(|(j, t)| {
                    let head: Vec<String> =
                        t.words.iter().take(6).map(|w| format!("{w:04x}")).collect();
                    format!(
                        "  #{j}: [{}{}] null={} dup={}",
                        head.join(" "),
                        if t.words.len() > 6 { " …" } else { "" },
                        t.null,
                        t.dup
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "{what}: first difference at tuple {i} (got {} tuples, want {})\n got:\n{}\n want:\n{}",
            got.len(),
            want.len(),
            show(got),
            show(want)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Stimulus.

/// Where the key field sits in the compact tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPosition {
    /// The first field (`key_offset = 1`).
    First,
    /// A field in the middle of the tuple.
    Middle,
    /// The last field (its last word is the tuple's last word).
    Last,
    /// A key starting at a middle field and running on, in the internal (rotated) order,
    /// through the following fields, the earlier fields and the tag word: `n` words.
    /// (Float keys are exactly 2 words: for them this is [KeyPosition::Middle].)
    Wrapping,
}

/// The kind of key a case sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// Unsigned integer or char(N) field (no transform), `1..` words.
    Unsigned,
    /// Two's-complement integer field, `1..` words (sign bit flipped).
    Signed,
    /// IEEE-754 single, 2 words (totalOrder transform).
    Float,
    /// The whole tuple (`key_offset = 1`, `key_words = n`: all fields, then the tag word),
    /// unsigned, as `SortKey::WholeTuple` sorts a char/duplicate-elimination relation.
    WholeTuple,
}

/// One generated relation: its settings and its compact tuples.
#[derive(Clone, Debug)]
pub struct Stimulus {
    pub settings: PipelineSettings,
    pub tuples: Vec<Vec<u16>>,
}

/// Parameters of a generated relation.
#[derive(Clone, Copy, Debug)]
pub struct RelationSpec {
    /// Words per compact tuple, tag word included (2 ..= 2047).
    pub tuple_words: usize,
    pub kind: KeyKind,
    pub position: KeyPosition,
    /// Key length in words for Unsigned/Signed keys (clamped to what fits; Float is 2,
    /// WholeTuple is the tuple length).
    pub key_words: usize,
    /// Probability that a tuple's key is null (0 = key not nullable).
    pub null_density: f64,
    /// Distinct key values (1 = every key equal; 65536 = nearly all distinct).
    pub key_domain: u32,
    pub tuples: usize,
    pub descending: bool,
    /// `tuples_hint`: pass the relation's size (true) or say "unknown" (false).
    pub hint: bool,
}

impl RelationSpec {
    /// The IN module configuration this spec describes.
    pub fn in_config(&self, null_bit: Option<u8>) -> InConfig {
        let n = self.tuple_words;
        assert!(
            n >= 2,
            "a compact tuple has a tag word and at least one field word"
        );
        let wrap = self.position == KeyPosition::Wrapping;
        let (key_type, key_words) = match self.kind {
            KeyKind::Unsigned if wrap => (KeyType::Unsigned, n),
            KeyKind::Signed if wrap => (KeyType::Signed, n),
            KeyKind::Unsigned => (KeyType::Unsigned, self.key_words.clamp(1, n - 1)),
            KeyKind::Signed => (KeyType::Signed, self.key_words.clamp(1, n - 1)),
            KeyKind::Float => {
                assert!(n >= 3, "a float key needs two field words");
                (KeyType::Float, 2)
            }
            KeyKind::WholeTuple => (KeyType::Unsigned, n),
        };
        let key_offset = match (self.kind, self.position) {
            (KeyKind::WholeTuple, _) | (_, KeyPosition::First) => 1,
            (_, KeyPosition::Last) => n - key_words,
            (KeyKind::Unsigned | KeyKind::Signed, KeyPosition::Wrapping) => 1 + (n - 1) / 2,
            // Strictly inside when there is room: at least one field word on each side.
            (_, KeyPosition::Middle | KeyPosition::Wrapping) => {
                let last = n - key_words;
                if last >= 3 {
                    1 + (last - 1) / 2
                } else {
                    last.clamp(1, 2)
                }
            }
        };
        InConfig {
            tuple_words: n,
            key_offset,
            key_words,
            key_type,
            key_null_bit: null_bit,
        }
    }
}

/// Key patterns a key type is most likely to get wrong: sign and range boundaries, and for
/// floats the IEEE-754 specials (±0, subnormals, ±inf, NaNs of both signs).
pub fn special_keys(key_type: KeyType, key_words: usize) -> Vec<Vec<u16>> {
    let k = key_words;
    let fill = |first: u16, rest: u16| -> Vec<u16> {
        let mut v = vec![rest; k];
        v[0] = first;
        v
    };
    let mut tail_one = vec![0u16; k];
    tail_one[k - 1] = 1;
    match key_type {
        KeyType::Float => [
            0xff80_0000u32, // -inf
            0xff7f_ffff,    // -MAX
            0xbf80_0000,    // -1.0
            0x8080_0000,    // -MIN_POSITIVE
            0x8000_0001,    // smallest negative subnormal
            0x8000_0000,    // -0.0
            0x0000_0000,    // +0.0
            0x0000_0001,    // smallest positive subnormal
            0x007f_ffff,    // largest subnormal
            0x3f80_0000,    // 1.0
            0x7f7f_ffff,    // MAX
            0x7f80_0000,    // +inf
            0x7fc0_0000,    // quiet NaN
            0x7f80_0001,    // signalling NaN
            0xffc0_0000,    // negative quiet NaN
            0xffff_ffff,    // negative NaN, largest payload
        ]
        .iter()
        .map(|&b| vec![(b >> 16) as u16, b as u16])
        .collect(),
        _ => vec![
            fill(0x8000, 0x0000), // signed MIN / unsigned 2^(16k-1)
            fill(0xffff, 0xffff), // -1 / unsigned MAX
            fill(0x0000, 0x0000), // 0
            fill(0x7fff, 0xffff), // signed MAX
            fill(0x8000, 0xffff),
            fill(0x7fff, 0x0000),
            tail_one, // equal heads, differing last word
            fill(0x0001, 0x0000),
        ],
    }
}

/// A relation following `spec`. Keys are drawn from a domain of `key_domain` values (the
/// first few of them special patterns, in a per-case order); payload and tag bits other
/// than the key's null bit are random, so stability is visible.
pub fn generate(rng: &mut ChaCha8Rng, spec: &RelationSpec) -> Stimulus {
    // A nullable key gets a random tag bit; with no nulls wanted, half the cases still
    // declare the key nullable (the bit is then always clear).
    let null_bit = if spec.null_density > 0.0 || rng.gen_bool(0.5) {
        Some(rng.gen_range(0..16u8))
    } else {
        None
    };
    let input = spec.in_config(null_bit);
    let n = input.tuple_words;
    let kw = input.key_words;
    let mut specials = special_keys(input.key_type, kw);
    specials.shuffle(rng);
    let salt: u64 = rng.gen();
    // Internal (rotated) word i of the key comes from this compact word.
    let compact_index = |i: usize| -> usize {
        let k = input.key_offset;
        if i < n - k {
            k + i
        } else if i < n - 1 {
            1 + i - (n - k)
        } else {
            0
        }
    };
    let key_of = |v: u32| -> Vec<u16> {
        if let Some(s) = specials.get(v as usize) {
            return s.clone();
        }
        // Pseudo-random words for value v. Word j depends only on v >> 3(k-1-j), so
        // keys of nearby values share their leading words and the word-serial compare
        // has to run on to a later word (whole-tuple keys share a long prefix).
        (0..kw)
            .map(|j| {
                let shift = (3 * (kw - 1 - j)).min(40);
                let mut z = salt
                    ^ ((v as u64) >> shift).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ (j as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) as u16
            })
            .collect()
    };
    let domain = spec.key_domain.max(1);
    let tuples = (0..spec.tuples)
        .map(|_| {
            let mut t: Vec<u16> = (0..n).map(|_| rng.gen()).collect();
            let key = key_of(rng.gen_range(0..domain));
            for (i, w) in key.iter().enumerate() {
                t[compact_index(i)] = *w;
            }
            if let Some(b) = null_bit {
                t[0] &= !(1 << b);
                if rng.gen_bool(spec.null_density) {
                    t[0] |= 1 << b;
                }
            }
            t
        })
        .collect();
    Stimulus {
        settings: PipelineSettings {
            input,
            descending: spec.descending,
            sort_enable: true,
            tuples_hint: if spec.hint { spec.tuples } else { 0 },
        },
        tuples,
    }
}

/// Random pacing for both sides of the stream: the source offers a beat and the sink
/// accepts one with these probabilities per cycle.
pub fn random_pacing(rng: &mut ChaCha8Rng, duties: &[f64]) -> Pacing {
    Pacing {
        source_duty: *duties.choose(rng).unwrap(),
        sink_duty: *duties.choose(rng).unwrap(),
        seed: rng.gen(),
    }
}

// ---------------------------------------------------------------------------------------
// Checks.

/// Run one relation through a harnessed pipeline and check it exactly:
/// * output tuples, order and DP equal `model_output` (the crate's model);
/// * and equal the independent oracle (IN module model → [oracle_sort] in blocks of the
///   expected string length → [oracle_dup]);
/// * `capacity_tuples` is 2^(cells that sort) ([oracle_strings]);
/// * no parity or framing error; `violations` equals the model's (saturated), and it is
///   zero (no `sort_error`) whenever the relation fits one string.
pub fn check_pipeline<T: SortPipelineTop>(
    h: &mut Harness<T>,
    stim: &Stimulus,
    pacing: Pacing,
    label: &str,
) -> PipelineRun {
    let s = &stim.settings;
    let run = run_pipeline(h, s, &stim.tuples, pacing)
        .unwrap_or_else(|e| panic!("{label}: run_pipeline failed: {e:#}"));
    let model = model_output::<T>(s, &stim.tuples);
    assert_same_tuples(
        &run.output,
        &model.tuples,
        &format!("{label}: RTL vs model_output"),
    );

    let strings = oracle_strings(T::cell_address_bits(), &s.sort_settings());
    let internal = in_module_model(&s.input, &stim.tuples);
    let mut want = if s.sort_enable {
        oracle_sort(strings, s.input.key_words, s.descending, &internal)
    } else {
        internal
    };
    let dup = oracle_dup(&want, s.input.key_words);
    for (t, d) in want.iter_mut().zip(dup) {
        t.dup = d;
    }
    assert_same_tuples(
        &run.output,
        &want,
        &format!("{label}: RTL vs independent oracle"),
    );

    let st = run.status;
    assert_eq!(st.capacity_tuples, strings, "{label}: capacity_tuples");
    assert!(!st.parity_error, "{label}: parity_error set: {st:?}");
    assert!(!st.framing_error, "{label}: framing_error set: {st:?}");
    let violations = oracle_violations(&want, s.input.key_words, s.descending);
    assert_eq!(
        model.violations, violations,
        "{label}: model and oracle disagree on violations"
    );
    assert_eq!(
        st.violations,
        violations.min(0xffff),
        "{label}: violations: {st:?}"
    );
    assert_eq!(
        st.sort_error,
        violations != 0,
        "{label}: sort_error: {st:?}"
    );
    if s.sort_enable && stim.tuples.len() <= strings {
        assert!(
            !st.sort_error,
            "{label}: a relation within one string must leave sorted: {st:?}"
        );
    }
    run
}
