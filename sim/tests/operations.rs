//! End to end: every Fig. 3 operation through the control program, on the RTL backend and
//! on the model backend (identical relations), checked against oracles computed directly
//! from the typed values.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdbe_sim::command::parse_script;
use rdbe_sim::control_program::{compare_values, tuples_per_page, ControlProgram, InjectedFault};
use rdbe_sim::engine::{new_engine, Profile};
use rdbe_sim::relation::{FieldType, Relation, Schema, Value};
use rdbe_sim::sort_job::{Backend, EngineConfig};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// r(k i16 nullable, v u16, s char(2)): small domains so keys repeat.
fn relation(name: &str, n: usize, seed: u64) -> Relation {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let schema = Schema::new(&[
        ("k", FieldType::I16),
        ("v", FieldType::U16),
        ("s", FieldType::Char(2)),
        ("w", FieldType::I16),
    ])
    .unwrap();
    let tuples = (0..n)
        .map(|_| {
            vec![
                if rng.gen_bool(0.1) {
                    Value::Null
                } else {
                    Value::Signed(rng.gen_range(-4..5))
                },
                Value::Unsigned(rng.gen_range(0..6)),
                Value::Text(["a", "b", "zz"][rng.gen_range(0..3)].to_string()),
                if rng.gen_bool(0.1) {
                    Value::Null
                } else {
                    Value::Signed(rng.gen_range(-3..3))
                },
            ]
        })
        .collect();
    Relation::new(name, schema, tuples).unwrap()
}

fn program(backend: Backend, config: EngineConfig, relations: &[&Relation]) -> ControlProgram {
    let mut cp = ControlProgram::new(
        new_engine(config, backend, Profile::Modern),
        Profile::Modern,
    )
    .unwrap();
    for r in relations {
        cp.hm.store(r).unwrap();
    }
    cp
}

/// Every relation in the HM, read back typed.
fn relations(cp: &ControlProgram) -> BTreeMap<String, Relation> {
    cp.hm
        .names()
        .map(|n| (n.to_string(), cp.hm.relation(n).unwrap()))
        .collect()
}

fn run(cp: &mut ControlProgram, script: &str) {
    for s in parse_script("test", script).unwrap() {
        let t = std::time::Instant::now();
        let r = cp.execute(&s).unwrap_or_else(|e| panic!("{e:#}"));
        eprintln!(
            "line {}: {} steps, {} cycles, {:.2?}",
            s.line,
            r.steps,
            r.cycles,
            t.elapsed()
        );
    }
}

fn sorted(mut t: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    t.sort_by(|a, b| {
        for (x, y) in a.iter().zip(b) {
            let o = compare_values(x, y);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    t
}

fn distinct(t: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    let mut t = sorted(t);
    t.dedup();
    t
}

const SCRIPT: &str = "\
p = PASS r PROJECT s, k
j = JOIN r, q ON r.k = q.k PROJECT r.v, q.v, q.k
jl = JOIN r, q ON r.k < q.k
jx = JOIN r, q
re = RESTRICT r WHERE k IN (1, -2, 3)
rn = RESTRICT r WHERE k <> 0
rr = RESTRICT r WHERE k BETWEEN -1 AND 2
rg = RESTRICT r WHERE k > 1
rnull = RESTRICT r WHERE k IS NULL
rc = RESTRICT r WHERE k >= 0 AND (v * 2 > 5 OR s = 'a')
rcpu = RESTRICT r WHERE v + 1 = 3 OR k IS NULL
s1 = SORT r BY k DESC, v
a1 = AGGREGATE r BY k COMPUTE count(*), sum(v) AS total, avg(v), max(s), min(v * 10)
a2 = AGGREGATE r COMPUTE count(k), max(k), sum(v)
u1 = UNIQUE r
u2 = UNIQUE r BY k
un = UNION r, q
ix = INTERSECTION r, q
di = DIFFERENCE r, q
eq = EQUAL r, r2
ct = CONTAIN un, q
cm = COMPARE r WHERE k < w
cw = COMPARE r WHERE w >= k
z = ZONESORT r BY k ZONE 5
DELETE FROM r2 WHERE k IN (0, 1)
";

#[test]
fn every_operation_rtl_equals_model_and_the_oracles() {
    let r = relation("r", 28, 1);
    let q = relation("q", 20, 2);
    let r2 = Relation {
        name: "r2".into(),
        ..r.clone()
    };
    let mut rtl = program(Backend::Rtl, EngineConfig::Small, &[&r, &q, &r2]);
    let mut model = program(Backend::Model, EngineConfig::Small, &[&r, &q, &r2]);
    run(&mut rtl, SCRIPT);
    run(&mut model, SCRIPT);
    let h = &relations(&model);
    let hr = relations(&rtl);
    assert_eq!(hr.keys().collect::<Vec<_>>(), h.keys().collect::<Vec<_>>());
    for (name, rel) in h {
        assert_eq!(
            &hr[name].tuples, &rel.tuples,
            "relation {name}: RTL differs from model"
        );
        assert_eq!(&hr[name].schema, &rel.schema, "relation {name}");
    }
    let rt = &r.tuples;
    let qt = &q.tuples;
    let null = |v: &Value| matches!(v, Value::Null);
    let int = |v: &Value| match v {
        Value::Signed(x) => *x,
        Value::Unsigned(x) => *x as i64,
        _ => panic!(),
    };
    // PASS with projection.
    assert_eq!(
        h["p"].tuples,
        rt.iter()
            .map(|t| vec![t[2].clone(), t[0].clone()])
            .collect::<Vec<_>>()
    );
    // JOIN-EQ: every pair with equal non-null keys.
    let mut pairs = vec![];
    for a in rt {
        for b in qt {
            if !null(&a[0]) && a[0] == b[0] {
                pairs.push(vec![a[1].clone(), b[1].clone(), b[0].clone()]);
            }
        }
    }
    assert_eq!(sorted(h["j"].tuples.clone()), sorted(pairs));
    let mut lt = vec![];
    for a in rt {
        for b in qt {
            if !null(&a[0]) && !null(&b[0]) && int(&a[0]) < int(&b[0]) {
                lt.push([a.clone(), b.clone()].concat());
            }
        }
    }
    assert_eq!(sorted(h["jl"].tuples.clone()), sorted(lt));
    assert_eq!(h["jx"].tuples.len(), rt.len() * qt.len());
    // RESTRICT.
    let pick =
        |f: &dyn Fn(&Vec<Value>) -> bool| sorted(rt.iter().filter(|t| f(t)).cloned().collect());
    assert_eq!(
        sorted(h["re"].tuples.clone()),
        pick(&|t| !null(&t[0]) && [1, -2, 3].contains(&int(&t[0])))
    );
    assert_eq!(
        sorted(h["rn"].tuples.clone()),
        pick(&|t| !null(&t[0]) && int(&t[0]) != 0)
    );
    assert_eq!(
        sorted(h["rr"].tuples.clone()),
        pick(&|t| !null(&t[0]) && (-1..=2).contains(&int(&t[0])))
    );
    assert_eq!(
        sorted(h["rg"].tuples.clone()),
        pick(&|t| !null(&t[0]) && int(&t[0]) > 1)
    );
    assert_eq!(sorted(h["rnull"].tuples.clone()), pick(&|t| null(&t[0])));
    assert_eq!(
        sorted(h["rc"].tuples.clone()),
        pick(&|t| !null(&t[0])
            && int(&t[0]) >= 0
            && (int(&t[1]) * 2 > 5 || t[2] == Value::Text("a".into())))
    );
    assert_eq!(
        sorted(h["rcpu"].tuples.clone()),
        pick(&|t| int(&t[1]) + 1 == 3 || null(&t[0]))
    );
    // SORT by k DESC, v ASC (nulls last), stable.
    let mut s1 = rt.clone();
    s1.sort_by(|a, b| match (null(&a[0]), null(&b[0])) {
        (true, true) => compare_values(&a[1], &b[1]),
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => int(&b[0])
            .cmp(&int(&a[0]))
            .then(compare_values(&a[1], &b[1])),
    });
    assert_eq!(h["s1"].tuples, s1);
    // AGGREGATE by k: groups in key order (nulls last), one row each.
    let mut keys: Vec<Value> = distinct(rt.iter().map(|t| vec![t[0].clone()]).collect())
        .into_iter()
        .map(|t| t[0].clone())
        .collect();
    keys.sort_by(compare_values);
    assert_eq!(h["a1"].tuples.len(), keys.len());
    for (row, k) in h["a1"].tuples.iter().zip(&keys) {
        let g: Vec<_> = rt.iter().filter(|t| &t[0] == k).collect();
        assert_eq!(&row[0], k);
        assert_eq!(row[1], Value::Unsigned(g.len() as u64));
        assert_eq!(row[2], Value::Signed(g.iter().map(|t| int(&t[1])).sum()));
    }
    let a2 = &h["a2"].tuples[0];
    assert_eq!(
        a2[0],
        Value::Unsigned(rt.iter().filter(|t| !null(&t[0])).count() as u64)
    );
    assert_eq!(a2[2], Value::Signed(rt.iter().map(|t| int(&t[1])).sum()));
    // UNIQUE and the set operations (set semantics).
    assert_eq!(sorted(h["u1"].tuples.clone()), distinct(rt.clone()));
    assert_eq!(h["u2"].tuples.len(), keys.len());
    assert_eq!(
        sorted(h["un"].tuples.clone()),
        distinct([rt.clone(), qt.clone()].concat())
    );
    assert_eq!(
        sorted(h["ix"].tuples.clone()),
        distinct(rt.iter().filter(|t| qt.contains(t)).cloned().collect())
    );
    assert_eq!(
        sorted(h["di"].tuples.clone()),
        distinct(rt.iter().filter(|t| !qt.contains(t)).cloned().collect())
    );
    assert_eq!(h["eq"].tuples, vec![vec![Value::Unsigned(1)]]);
    assert_eq!(h["ct"].tuples, vec![vec![Value::Unsigned(1)]]);
    assert_eq!(
        sorted(h["cm"].tuples.clone()),
        pick(&|t| !null(&t[0]) && !null(&t[3]) && int(&t[0]) < int(&t[3]))
    );
    assert_eq!(
        sorted(h["cw"].tuples.clone()),
        pick(&|t| !null(&t[0]) && !null(&t[3]) && int(&t[3]) >= int(&t[0]))
    );
    // ZONE-SORT: sorted by k, a group never split across zones.
    let z = &h["z"].tuples;
    assert_eq!(z.len(), rt.len());
    for w in z.windows(2) {
        if w[0][0] == w[1][0] {
            assert_eq!(w[0][4], w[1][4], "group split across zones");
        }
    }
    // DELETE rewrote r2.
    assert_eq!(
        sorted(h["r2"].tuples.clone()),
        pick(&|t| null(&t[0]) || ![0, 1].contains(&int(&t[0])))
    );
}

/// The engine's sort capacity for `r`'s tuples on the small configuration.
fn capacity(r: &Relation) -> (usize, usize) {
    let l = rdbe_sim::engine::Limits::of(EngineConfig::Small);
    let tw = r.schema.tuple_words();
    (l.sort_capacity(tw), l.block_capacity(tw))
}

fn stable_sort_by_k(t: &[Vec<Value>], descending: bool) -> Vec<Vec<Value>> {
    let mut s = t.to_vec();
    s.sort_by(|a, b| match (&a[0], &b[0]) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (x, y) if descending => compare_values(y, x),
        (x, y) => compare_values(x, y),
    });
    s
}

#[test]
fn external_sorts_case_2_and_case_3_on_both_backends() {
    let probe = relation("x", 1, 0);
    let (c, block) = capacity(&probe);
    for (n, case) in [(block + block / 2, 2u8), (4 * c + 3, 3)] {
        let big = relation("big", n, 7 + n as u64);
        let mut results = vec![];
        for backend in [Backend::Rtl, Backend::Model] {
            let mut cp = program(backend, EngineConfig::Small, &[&big]);
            let s = &parse_script("t", "s = SORT big BY k DESC\na = SORT big BY k").unwrap();
            let r1 = cp.execute(&s[0]).unwrap();
            let r2 = cp.execute(&s[1]).unwrap();
            assert_eq!(r1.sort_case.map(|c| c.0), Some(case), "N = {n}, C = {c}");
            assert_eq!(r2.sort_case.map(|c| c.0), Some(case));
            let s_tuples = cp.hm.relation("s").unwrap().tuples;
            assert_eq!(
                s_tuples,
                stable_sort_by_k(&big.tuples, true),
                "{backend:?} N = {n}"
            );
            assert_eq!(
                cp.hm.relation("a").unwrap().tuples,
                stable_sort_by_k(&big.tuples, false),
                "{backend:?} N = {n}"
            );
            // The runs went through HM work buffers (written and read back), which are
            // gone afterwards.
            let pages = |t: usize| t.div_ceil(tuples_per_page(big.schema.tuple_words())) as u64;
            if case == 3 {
                assert!(r1.pages_written > pages(n), "{r1:?}");
                assert!(r1.pages_read > pages(n), "{r1:?}");
            } else {
                assert_eq!((r1.pages_read, r1.pages_written), (pages(n), pages(n)));
            }
            assert_eq!(
                cp.hm.names().collect::<Vec<_>>(),
                ["a", "big", "s"],
                "no work buffer left"
            );
            if backend == Backend::Rtl {
                assert!(r1.cycles > 0);
            }
            results.push(s_tuples);
        }
        assert_eq!(results[0], results[1]);
    }
}

#[test]
fn relations_beyond_the_sorter_and_u_memory_in_every_operation() {
    let probe = relation("x", 1, 0);
    let (c, _) = capacity(&probe);
    let big = relation("big", 3 * c + 5, 99);
    let r = relation("r", 12, 5);
    let script = "\
u = UNIQUE big BY k
ag = AGGREGATE big BY k COMPUTE count(*), sum(v)
j = JOIN big, r ON big.k = r.k
re = RESTRICT big WHERE k IN (1, 2)
di = DIFFERENCE big, r
un = UNION big, r
";
    let mut rtl = program(Backend::Rtl, EngineConfig::Small, &[&big, &r]);
    let mut model = program(Backend::Model, EngineConfig::Small, &[&big, &r]);
    run(&mut rtl, script);
    run(&mut model, script);
    let h = &relations(&model);
    let hr = relations(&rtl);
    for (name, rel) in h {
        assert_eq!(&hr[name].tuples, &rel.tuples, "relation {name}");
    }
    let keys = distinct(big.tuples.iter().map(|t| vec![t[0].clone()]).collect());
    assert_eq!(h["u"].tuples.len(), keys.len());
    assert_eq!(h["ag"].tuples.len(), keys.len());
    let total: u64 = h["ag"]
        .tuples
        .iter()
        .map(|t| match t[1] {
            Value::Unsigned(c) => c,
            _ => 0,
        })
        .sum();
    assert_eq!(total as usize, big.tuples.len());
    let mut pairs = 0;
    for a in &big.tuples {
        for b in &r.tuples {
            if a[0] != Value::Null && a[0] == b[0] {
                pairs += 1;
            }
        }
    }
    assert_eq!(h["j"].tuples.len(), pairs);
    let want = big
        .tuples
        .iter()
        .filter(|t| matches!(t[0], Value::Signed(1) | Value::Signed(2)))
        .cloned()
        .collect();
    assert_eq!(sorted(h["re"].tuples.clone()), sorted(want));
    assert_eq!(
        sorted(h["di"].tuples.clone()),
        distinct(
            big.tuples
                .iter()
                .filter(|t| !r.tuples.contains(t))
                .cloned()
                .collect()
        )
    );
    assert_eq!(
        sorted(h["un"].tuples.clone()),
        distinct([big.tuples.clone(), r.tuples.clone()].concat())
    );
}

#[test]
fn a_parity_error_is_recovered_by_retry_with_the_same_result() {
    let r = relation("r", 20, 3);
    let q = relation("q", 15, 4);
    let script = parse_script("t", "j = JOIN r, q ON r.k = q.k").unwrap();
    for backend in [Backend::Rtl, Backend::Model] {
        let mut clean = program(backend, EngineConfig::Small, &[&r, &q]);
        let want = clean.execute(&script[0]).unwrap();
        let mut faulty = program(backend, EngineConfig::Small, &[&r, &q]);
        // Step 0 is the LOAD of r, step 1 the JOIN-EQ stream: hit a word of each once.
        faulty.inject(&[InjectedFault::hm_parity(1, 7)]);
        let got = faulty.execute(&script[0]).unwrap();
        assert_eq!(got.retries, 1, "{backend:?}");
        assert_eq!(
            faulty.hm.relation("j").unwrap(),
            clean.hm.relation("j").unwrap()
        );
        assert_eq!(want.retries, 0);
        // A fault on every attempt: bounded retries, then a clear error.
        let mut broken = program(backend, EngineConfig::Small, &[&r, &q]);
        broken.inject(
            &(0..8)
                .map(|step| InjectedFault::hm_parity(step, 3))
                .collect::<Vec<_>>(),
        );
        let e = format!("{:#}", broken.execute(&script[0]).unwrap_err());
        assert!(
            e.contains("parity") && e.contains("after 3 retries") && e.contains("line 1"),
            "{e}"
        );
        assert!(!broken.hm.contains("j"), "no partial result");
    }
}

/// An engine with a permanent fault: the model, but every output tuple loses its last word's
/// low bit (a stuck-at-0 data line).
struct StuckAtZero(rdbe_sim::engine::ModelEngine);
impl rdbe_sim::engine::Engine for StuckAtZero {
    fn limits(&self) -> rdbe_sim::engine::Limits {
        self.0.limits()
    }
    fn backend_name(&self) -> &'static str {
        "stuck"
    }
    fn step(
        &mut self,
        sort: &rdbe_rtl::sort_pipeline::PipelineSettings,
        merge: &rdbe_rtl::merger::MergerConfig,
        input: &[rdbe_rtl::tuple_stream::Beat],
        fault: Option<rdbe_sim::engine::StepFault>,
    ) -> anyhow::Result<rdbe_sim::engine::StepOutput> {
        let mut out = self.0.step(sort, merge, input, fault)?;
        for t in &mut out.tuples {
            *t.last_mut().unwrap() &= !1;
        }
        Ok(out)
    }
    fn clear(&mut self) {
        self.0.clear()
    }
}

#[test]
fn the_self_check_refuses_a_faulty_engine() {
    let e = ControlProgram::new(
        Box::new(StuckAtZero(rdbe_sim::engine::ModelEngine::new(
            EngineConfig::Small,
        ))),
        Profile::Modern,
    )
    .err()
    .expect("a faulty engine must be refused");
    let e = format!("{e:#}");
    assert!(
        e.contains("self check failed") && e.contains("test 1"),
        "{e}"
    );
}

#[test]
fn the_delta1984_profile_paces_the_hm_adapters_to_three_cycles_a_word() {
    // PASS streams the relation once in and once out: the paced HM adapters take three
    // cycles a word on both sides, while at full rate the step runs at the merger's rate,
    // one decision cycle plus one cycle a word for each 5-word tuple (the registered
    // decision, issue 6): 6/5 cycles a word. So the step costs about 3 - 6/5 = 1.8 more
    // cycles per word paced than at full rate (the register set-up, the status reads and
    // the pipeline latency are the same in both profiles).
    let r = relation("r", 300, 9);
    let words = 300 * 5;
    let script = parse_script("t", "p = PASS r").unwrap();
    let mut cycles = vec![];
    for profile in [Profile::Modern, Profile::Delta1984] {
        let mut cp = ControlProgram::new(
            new_engine(EngineConfig::Small, Backend::Rtl, profile),
            profile,
        )
        .unwrap();
        cp.hm.store(&r).unwrap();
        let report = cp.execute(&script[0]).unwrap();
        assert_eq!(report.steps, 1);
        assert_eq!(cp.hm.relation("p").unwrap().tuples, r.tuples);
        cycles.push(report.cycles as f64);
    }
    let extra_per_word = (cycles[1] - cycles[0]) / words as f64;
    assert!(
        (1.75..=1.9).contains(&extra_per_word),
        "{cycles:?}: {extra_per_word:.3} extra cycles per word"
    );
    // Full rate: 6/5 cycles a word plus the set-up and latency (about 70 cycles).
    assert!(cycles[0] < words as f64 * 1.2 + 150.0, "{cycles:?}");
}
