//! The fuzz targets' checks on stable Rust, for CI: every file of `fuzz/corpus/<target>/`
//! and of `fuzz/regressions/<target>/` (inputs that once crashed), then seeded random
//! mutations of them (`RDBE_FUZZ_MUTATIONS` per input, default 300). The checks are the
//! cargo-fuzz targets' own (`fuzz/src/checks.rs`); the long coverage-guided runs are in
//! docs/RELIABILITY.md.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/checks.rs"]
mod checks;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = vec![];
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// Pieces a mutation may insert: the languages' keywords and delimiters, and bytes that
/// have hurt parsers before.
const DICTIONARY: &[&str] = &[
    " = ",
    ",",
    "(",
    ")",
    "'",
    "''",
    "\"",
    "\"\"",
    "\n",
    "\r\n",
    ":",
    "char(",
    "u16",
    "i64",
    "f32",
    "PASS ",
    "JOIN ",
    " ON ",
    "RESTRICT ",
    " WHERE ",
    "SORT ",
    " BY ",
    " DESC",
    "AGGREGATE ",
    " COMPUTE ",
    "count(*)",
    "sum(",
    "UNIQUE ",
    "UNION ",
    "ZONESORT ",
    " ZONE ",
    "DELETE FROM ",
    " IN (",
    " AND ",
    " OR ",
    "NOT ",
    " IS NULL",
    " BETWEEN ",
    "abs(",
    "length(",
    "coalesce(",
    "-",
    "--",
    "#",
    ".",
    "e",
    "1e39",
    "-0",
    "nan",
    "18446744073709551616",
    "-9223372036854775808",
    "\u{feff}",
    "\0",
    "\u{ff}",
    "é",
    "\t",
];

fn mutate(rng: &mut ChaCha8Rng, seed: &[u8], others: &[(PathBuf, Vec<u8>)]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let at = rng.gen_range(0..=v.len());
        match rng.gen_range(0..6) {
            0 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if !v.is_empty() => {
                let end = (at + rng.gen_range(1..8)).min(v.len());
                v.drain(at.min(end)..end);
            }
            2 => {
                let word = DICTIONARY[rng.gen_range(0..DICTIONARY.len())];
                v.splice(at..at, word.bytes());
            }
            3 => v.insert(at, rng.gen()),
            4 if !others.is_empty() => {
                // Splice in a piece of another input.
                let other = &others[rng.gen_range(0..others.len())].1;
                if !other.is_empty() {
                    let a = rng.gen_range(0..other.len());
                    let b = (a + rng.gen_range(1..32)).min(other.len());
                    v.splice(at..at, other[a..b].iter().copied());
                }
            }
            _ if !v.is_empty() => {
                // Repeat a piece (long lines, many fields, deep nesting).
                let a = rng.gen_range(0..v.len());
                let b = (a + rng.gen_range(1..16)).min(v.len());
                let piece = v[a..b].to_vec();
                for _ in 0..rng.gen_range(1..20) {
                    v.splice(at..at, piece.iter().copied());
                }
            }
            _ => {}
        }
    }
    v
}

fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(files.len() >= 5, "{target}: the corpus is missing");
    let per_input: usize = std::env::var("RDBE_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (path, bytes) in &files {
        let run = std::panic::catch_unwind(|| check(bytes));
        assert!(run.is_ok(), "{target}: {} fails its check", path.display());
        for i in 0..per_input {
            let input = mutate(&mut rng, bytes, &files);
            if std::panic::catch_unwind(|| check(&input)).is_err() {
                panic!(
                    "{target}: mutation {i} of {} fails its check; input: {:?}",
                    path.display(),
                    String::from_utf8_lossy(&input)
                );
            }
        }
    }
}

#[test]
fn script_corpus_and_mutations_pass_the_script_checks() {
    replay("script", checks::check_script);
}

#[test]
fn csv_corpus_and_mutations_pass_the_csv_checks() {
    replay("csv", checks::check_csv);
}

#[test]
fn expr_corpus_and_mutations_pass_the_expression_checks() {
    replay("expr", checks::check_expression);
}
