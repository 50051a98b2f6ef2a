//! The hierarchical memory: relations as pages of fixed-length compact tuples, and the page
//! transfers a command's report counts.
use rdbe_sim::command::parse_script;
use rdbe_sim::control_program::{tuples_per_page, ControlProgram, Hm, PAGE_WORDS};
use rdbe_sim::engine::{new_engine, Profile};
use rdbe_sim::relation::{Field, FieldType, Relation, Schema, Value};
use rdbe_sim::sort_job::{Backend, EngineConfig};

/// A relation of one char(n) field (tuples of 1 + ⌈n/2⌉ words) and `count` tuples.
fn text_relation(name: &str, n: usize, count: usize) -> Relation {
    let schema = Schema::new(&[("s", FieldType::Char(n))]).unwrap();
    let tuples = (0..count)
        .map(|i| {
            vec![Value::Text(
                format!("{}", i % 100).chars().take(n).collect(),
            )]
        })
        .collect();
    Relation::new(name, schema, tuples).unwrap()
}

/// The pages of `name`, as the HM yields them.
fn pages(hm: &Hm, name: &str) -> Vec<Vec<u16>> {
    hm.pages(name).unwrap().map(<[u16]>::to_vec).collect()
}

#[test]
fn tuples_per_page_for_several_tuple_lengths() {
    // (tuple words, tuples per page): 2048 words a page, whole tuples only.
    for (tw, per_page) in [
        (2, 1024),
        (3, 682),
        (5, 409),
        (7, 292),
        (1024, 2),
        (1025, 1),
        (2047, 1),
    ] {
        assert_eq!(tuples_per_page(tw), per_page, "{tw}-word tuples");
    }
}

#[test]
fn pages_hold_whole_tuples_every_page_full_but_the_last() {
    // char(n) → 1 + ⌈n/2⌉ words: 2, 3, 7, 1025 and 2047 (the largest tuple) words.
    for n in [2, 4, 12, 2048, 4092] {
        let probe = text_relation("r", n, 0);
        let tw = probe.schema.tuple_words();
        let per_page = tuples_per_page(tw);
        let count = 2 * per_page + per_page.div_ceil(2) + 1;
        let r = text_relation("r", n, count);
        let mut hm = Hm::default();
        hm.store(&r).unwrap();
        let stored = hm.stored("r").unwrap();
        assert_eq!(stored.len(), count);
        assert_eq!(stored.tuples_per_page(), per_page);
        let pages = pages(&hm, "r");
        assert_eq!(pages.len(), count.div_ceil(per_page), "n = {n}");
        assert_eq!(stored.page_count(), pages.len());
        for (i, page) in pages.iter().enumerate() {
            assert!(page.len() <= PAGE_WORDS, "page {i} of {} words", page.len());
            assert_eq!(page.len() % tw, 0, "a tuple split across pages");
            if i + 1 < pages.len() {
                assert_eq!(page.len(), per_page * tw, "page {i} not full");
                // Not even one more tuple would fit.
                assert!(page.len() + tw > PAGE_WORDS);
            }
        }
        let last = count - (pages.len() - 1) * per_page;
        assert_eq!(
            pages.last().unwrap().len(),
            last * tw,
            "the last page partial"
        );
        // The pages are the compact tuples, one after another, exactly as encoded.
        assert_eq!(pages.concat(), r.encode().unwrap().concat());
        assert_eq!(hm.relation("r").unwrap(), r);
    }
}

#[test]
fn a_relation_of_exactly_one_page_and_an_empty_relation() {
    let per_page = tuples_per_page(3);
    let one = text_relation("one", 4, per_page);
    let empty = text_relation("empty", 4, 0);
    let mut hm = Hm::default();
    hm.store(&one).unwrap();
    hm.store(&empty).unwrap();
    let p = pages(&hm, "one");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].len(), per_page * 3);
    assert_eq!(hm.stored("empty").unwrap().page_count(), 0);
    assert!(hm.stored("empty").unwrap().is_empty());
    assert_eq!(hm.relation("empty").unwrap(), empty);
    assert_eq!(hm.schema("empty").unwrap(), &empty.schema);
    assert_eq!(hm.names().collect::<Vec<_>>(), ["empty", "one"]);
    assert!(hm.contains("one") && !hm.contains("two"));
    // Reading counts pages: one for `one`, none for the empty relation.
    let before = hm.pages_read();
    hm.read_tuples("one").unwrap();
    hm.read_tuples("empty").unwrap();
    assert_eq!(hm.pages_read() - before, 1);
    assert_eq!(hm.pages_written(), 1);
}

#[test]
fn typed_to_pages_to_typed_keeps_nulls_and_every_type() {
    let schema = Schema::new(&[
        ("id", FieldType::U32),
        ("d", FieldType::I16),
        ("x", FieldType::F32),
        ("name", FieldType::Char(5)),
        ("big", FieldType::I64),
        ("u", FieldType::U64),
    ])
    .unwrap();
    let tw = schema.tuple_words();
    let n = tuples_per_page(tw) + 7;
    let tuples: Vec<Vec<Value>> = (0..n)
        .map(|i| {
            let null = |k: usize| i % (k + 2) == 0;
            vec![
                if null(0) {
                    Value::Null
                } else {
                    Value::Unsigned(i as u64)
                },
                if null(1) {
                    Value::Null
                } else {
                    Value::Signed(-(i as i64))
                },
                if null(2) {
                    Value::Null
                } else {
                    Value::Float(i as f32 / 4.0)
                },
                if null(3) {
                    Value::Null
                } else {
                    Value::Text(format!("n{}", i % 999))
                },
                if null(4) {
                    Value::Null
                } else {
                    Value::Signed(i64::MIN + i as i64)
                },
                Value::Unsigned(u64::MAX - i as u64),
            ]
        })
        .collect();
    let r = Relation::new("nulls", schema, tuples).unwrap();
    let mut hm = Hm::default();
    hm.store(&r).unwrap();
    assert_eq!(hm.stored("nulls").unwrap().page_count(), 2);
    // The null bits are in the tag words on the pages.
    let first = &pages(&hm, "nulls")[0];
    assert_eq!(first[0], 0b11111, "tuple 0: every nullable field null");
    assert_eq!(first[tw], 0, "tuple 1: no null");
    assert_eq!(hm.relation("nulls").unwrap(), r);
    assert_eq!(hm.read_tuples("nulls").unwrap(), r.encode().unwrap());
}

#[test]
fn refusals_name_the_relation() {
    let mut hm = Hm::default();
    // A 4096-byte tuple (tag word + char(4094)) cannot be stored.
    let huge = Relation {
        name: "huge".into(),
        schema: Schema {
            fields: vec![Field {
                name: "s".into(),
                ty: FieldType::Char(4094),
            }],
        },
        tuples: vec![],
    };
    let e = hm.store(&huge).unwrap_err().to_string();
    assert!(e.contains("'huge'") && e.contains("4094"), "{e}");
    assert!(!hm.contains("huge"));
    // A tuple of the wrong length.
    let schema = Schema::new(&[("a", FieldType::U32)]).unwrap();
    let e = hm
        .store_tuples("short", &schema, &[vec![0, 1, 2], vec![0, 1]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("'short'") && e.contains("tuple 2"), "{e}");
    // Work-buffer names are the HM's own.
    assert!(hm.store_tuples("/work/0", &schema, &[]).is_err());
    // An unknown relation: the known ones listed.
    hm.store(&text_relation("t", 2, 1)).unwrap();
    let e = hm.relation("nope").unwrap_err().to_string();
    assert!(e.contains("'nope'") && e.contains("known: t"), "{e}");
}

fn program(relations: &[&Relation]) -> ControlProgram {
    let mut cp = ControlProgram::new(
        new_engine(EngineConfig::Small, Backend::Model, Profile::Modern),
        Profile::Modern,
    )
    .unwrap();
    for r in relations {
        cp.hm.store(r).unwrap();
    }
    cp
}

#[test]
fn a_pass_of_two_and_a_half_pages_reads_three_pages_and_writes_three() {
    let schema = Schema::new(&[("a", FieldType::U32), ("b", FieldType::U32)]).unwrap();
    let per_page = tuples_per_page(schema.tuple_words());
    assert_eq!(per_page, 409);
    let n = 2 * per_page + per_page / 2;
    let tuples = (0..n)
        .map(|i| {
            vec![
                Value::Unsigned(i as u64),
                if i % 3 == 0 {
                    Value::Null
                } else {
                    Value::Unsigned(7)
                },
            ]
        })
        .collect();
    let r = Relation::new("r", schema, tuples).unwrap();
    let mut cp = program(&[&r]);
    let script = parse_script(
        "t",
        "p = PASS r\nq = PASS r PROJECT a\ne = RESTRICT r WHERE a IS NULL",
    )
    .unwrap();
    let pass = cp.execute(&script[0]).unwrap();
    assert_eq!((pass.pages_read, pass.pages_written), (3, 3));
    assert_eq!(cp.hm.relation("p").unwrap().tuples, r.tuples);
    assert_eq!(cp.hm.stored("p").unwrap().page_count(), 3);
    // Projected to a 3-word tuple: 682 a page, two pages.
    let project = cp.execute(&script[1]).unwrap();
    assert_eq!((project.pages_read, project.pages_written), (3, 2));
    // An empty result occupies no page.
    let none = cp.execute(&script[2]).unwrap();
    assert_eq!(
        (none.pages_read, none.pages_written, none.tuples),
        (3, 0, 0)
    );
    assert_eq!(cp.hm.stored("e").unwrap().page_count(), 0);
}

#[test]
fn delete_goes_page_by_page_and_rewrites_the_relation() {
    let r = text_relation("r", 4, 2 * tuples_per_page(3) + 5);
    let mut cp = program(&[&r]);
    let script = parse_script("t", "DELETE FROM r WHERE s IN ('1', '2')").unwrap();
    let report = cp.execute(&script[0]).unwrap();
    let text = |t: &[Value]| match &t[0] {
        Value::Text(s) => s.clone(),
        v => panic!("{v:?}"),
    };
    let mut want: Vec<String> = r
        .tuples
        .iter()
        .map(|t| text(t))
        .filter(|s| s != "1" && s != "2")
        .collect();
    // Delete mode sorts each page part by the key: compare as multisets.
    let mut got: Vec<String> = cp
        .hm
        .relation("r")
        .unwrap()
        .tuples
        .iter()
        .map(|t| text(t))
        .collect();
    want.sort();
    got.sort();
    assert!(
        got == want,
        "{} tuples kept, {} expected",
        got.len(),
        want.len()
    );
    assert_eq!(report.pages_read, 3);
    assert_eq!(
        report.pages_written,
        want.len().div_ceil(tuples_per_page(3)) as u64
    );
}

#[test]
fn an_unknown_relation_in_a_command_lists_the_known_ones() {
    let r = text_relation("photos", 2, 3);
    let mut cp = program(&[&r]);
    let script = parse_script("t", "p = PASS photo").unwrap();
    let e = format!("{:#}", cp.execute(&script[0]).unwrap_err());
    assert!(
        e.contains("unknown relation 'photo'") && e.contains("known: photos"),
        "{e}"
    );
}

#[test]
fn external_sort_case_3_writes_its_runs_to_hm_work_buffers_and_reads_them_back() {
    let schema = Schema::new(&[("k", FieldType::U16), ("v", FieldType::U16)]).unwrap();
    let tw = schema.tuple_words();
    let limits = rdbe_sim::engine::Limits::of(EngineConfig::Small);
    let block = limits.block_capacity(tw);
    // Five runs of two blocks (the last one short): three merge passes.
    let n = 9 * block + 3;
    let tuples = (0..n)
        .map(|i| {
            vec![
                Value::Unsigned((i * 7919 % 1000) as u64),
                Value::Unsigned(i as u64),
            ]
        })
        .collect();
    let r = Relation::new("r", schema, tuples).unwrap();
    let mut cp = program(&[&r]);
    let report = cp
        .execute(&parse_script("t", "s = SORT r BY k").unwrap()[0])
        .unwrap();
    assert_eq!(report.sort_case.map(|c| c.0), Some(3));
    let mut want = r.tuples.clone();
    want.sort_by_key(|t| match t[0] {
        Value::Unsigned(k) => k,
        _ => unreachable!(),
    });
    assert_eq!(cp.hm.relation("s").unwrap().tuples, want);
    // The same passes worked out here: runs written to work buffers, read back two at a
    // time, merged runs written again except in the last pass.
    let pages = |t: usize| t.div_ceil(tuples_per_page(tw)) as u64;
    let mut runs: Vec<usize> = (0..n)
        .step_by(2 * block)
        .map(|s| (n - s).min(2 * block))
        .collect();
    assert_eq!(runs.len(), 5);
    let (mut read, mut written) = (pages(n), pages(n));
    written += runs.iter().map(|&t| pages(t)).sum::<u64>();
    while runs.len() > 1 {
        let last = runs.len() == 2;
        let mut next = vec![];
        for pair in runs.chunks(2) {
            if let [a, b] = pair {
                read += pages(*a) + pages(*b);
                if !last {
                    written += pages(a + b);
                }
                next.push(a + b);
            } else {
                next.push(pair[0]);
            }
        }
        runs = next;
    }
    assert_eq!((report.pages_read, report.pages_written), (read, written));
    assert_eq!(
        cp.hm.names().collect::<Vec<_>>(),
        ["r", "s"],
        "work buffers freed"
    );
}
