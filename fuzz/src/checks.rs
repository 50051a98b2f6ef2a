//! The properties the fuzz targets check, shared by the cargo-fuzz targets
//! (`fuzz_targets/*.rs`) and the stable-Rust replay of the corpus
//! (`sim/tests/fuzz_corpus.rs`, which includes this file by path).
//!
//! * `check_script`: the command-script parser never panics; an error names the script and
//!   the line (and the column where one applies); a script that parses has commands; the
//!   same script with CR LF line ends parses the same; every condition and aggregate
//!   argument compiles or fails cleanly, and what compiles evaluates without panicking on
//!   rows of extreme values.
//! * `check_csv`: the CSV loader never panics; an error names the file and the line; a
//!   relation that loads stores into the HM and reads back from its pages unchanged, and
//!   its CSV text (`to_csv`) loads back to the same relation.
#![allow(dead_code)]
use rdbe_sim::command::{parse_script, parse_script_bytes, tokens_text, Operation};
use rdbe_sim::control_program::Hm;
use rdbe_sim::csv_io::{parse_csv, parse_csv_bytes, to_csv};
use rdbe_sim::expr::Program;
use rdbe_sim::relation::{FieldType, Schema, Value};

/// The schema conditions compile against: every type, names a fuzzer finds in the seeds.
fn schema() -> Schema {
    Schema::new(&[
        ("k", FieldType::U32),
        ("s", FieldType::I16),
        ("x", FieldType::F32),
        ("name", FieldType::Char(8)),
        ("big", FieldType::U64),
        ("neg", FieldType::I64),
        ("w", FieldType::U16),
    ])
    .expect("schema")
}

fn rows() -> Vec<Vec<Value>> {
    use Value::*;
    vec![
        vec![
            Unsigned(7),
            Signed(-2),
            Float(1.5),
            Text("ann".into()),
            Unsigned(1),
            Signed(-1),
            Unsigned(3),
        ],
        vec![Null, Null, Null, Null, Null, Null, Null],
        vec![
            Unsigned(u32::MAX as u64),
            Signed(i16::MIN as i64),
            Float(f32::MAX),
            Text("zzzzzzzz".into()),
            Unsigned(u64::MAX),
            Signed(i64::MIN),
            Unsigned(0),
        ],
        vec![
            Unsigned(0),
            Signed(i16::MAX as i64),
            Float(-0.0),
            Text(String::new()),
            Unsigned(0),
            Signed(i64::MAX),
            Unsigned(u16::MAX as u64),
        ],
    ]
}

fn exercise_expression(src: &str, condition: bool) {
    let schema = schema();
    let compiled = if condition {
        Program::compile_condition(src, &schema)
    } else {
        Program::compile(src, &schema)
    };
    if let Ok(p) = compiled {
        let _ = p.field_type();
        let _ = p.columns_used();
        for row in rows() {
            if condition {
                let _ = p.eval_condition(&row);
            } else {
                let _ = p.eval(&row);
            }
        }
    }
}

pub fn check_script(data: &[u8]) {
    let parsed = parse_script_bytes("fuzz.rdbe", data);
    let statements = match parsed {
        Err(e) => {
            let m = format!("{e:#}");
            assert!(m.starts_with("fuzz.rdbe: "), "error without the file: {m}");
            assert!(
                m.contains("line ") || m.contains("has no command"),
                "error without a line: {m}"
            );
            return;
        }
        Ok(s) => s,
    };
    assert!(!statements.is_empty(), "a script that parses has commands");
    let text = std::str::from_utf8(data).expect("parsed, so UTF-8");
    let lines = text.lines().count();
    for s in &statements {
        assert!(s.line >= 1 && s.line <= lines, "line {} of {lines}", s.line);
    }
    if !text.contains('\r') {
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(
            parse_script("fuzz.rdbe", &crlf).expect("CR LF parses as LF does"),
            statements,
            "CR LF line ends change the parse"
        );
    }
    for s in &statements {
        match &s.operation {
            Operation::Restrict { condition, .. } => {
                exercise_expression(&tokens_text(condition), true)
            }
            Operation::Aggregate { items, .. } => {
                for item in items {
                    if let Some(arg) = &item.argument {
                        exercise_expression(&tokens_text(arg), false);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Expressions on their own (the CPU's compiler, `expr.rs`), as a condition and as a value.
pub fn check_expression(data: &[u8]) {
    if let Ok(src) = std::str::from_utf8(data) {
        exercise_expression(src, true);
        exercise_expression(src, false);
    }
}

pub fn check_csv(data: &[u8]) {
    let relation = match parse_csv_bytes("r", "fuzz.csv", data) {
        Err(e) => {
            let m = format!("{e:#}");
            assert!(m.starts_with("fuzz.csv: "), "error without the file: {m}");
            assert!(m.contains("line "), "error without a line: {m}");
            return;
        }
        Ok(r) => r,
    };
    // Into the HM's pages and back.
    let mut hm = Hm::default();
    hm.store(&relation)
        .expect("a loaded relation stores in the HM");
    assert_eq!(
        hm.relation("r").expect("reads back"),
        relation,
        "HM pages round trip"
    );
    // Out as CSV and in again.
    let text = to_csv(&relation).expect("a loaded relation writes as CSV");
    let back = parse_csv("r", "fuzz.csv", &text)
        .unwrap_or_else(|e| panic!("its own CSV does not load: {e:#}\n{text}"));
    assert_eq!(back, relation, "CSV round trip of\n{text}");
}
