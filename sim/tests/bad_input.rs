//! Bad input through the `rdbe run` CLI, one test per class (issue 7): each must fail with
//! exit code 1, an `error: ` line on stderr naming the file, the line (and the column where
//! one applies) and the offending thing, no panic, and no output file left behind — also
//! when earlier commands of the script had succeeded.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Fixture {
    dir: PathBuf,
    data: PathBuf,
    script: PathBuf,
    out: PathBuf,
}

/// A scratch directory with `data/` holding `csvs` and the script `q.rdbe`.
fn fixture(name: &str, csvs: &[(&str, &[u8])], script: &[u8]) -> Fixture {
    let dir = std::env::temp_dir().join(format!("rdbe_bad_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for (file, text) in csvs {
        std::fs::write(data.join(file), text).unwrap();
    }
    let script_path = dir.join("q.rdbe");
    std::fs::write(&script_path, script).unwrap();
    Fixture {
        out: dir.join("out"),
        dir,
        data,
        script: script_path,
    }
}

impl Fixture {
    fn run(&self, env: &[(&str, &str)]) -> Output {
        self.run_with(&[], env)
    }

    /// [Fixture::run] with more command-line `args` (e.g. `--hm-pages 3`).
    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rdbe"));
        cmd.args(["run", self.script.to_str().unwrap(), "--data"])
            .arg(&self.data)
            .arg("--out")
            .arg(&self.out)
            .args(["--backend", "model"])
            .args(args)
            // No backtrace in the message, whatever the caller's environment says.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run rdbe")
    }

    /// Run, expect a clean failure whose message holds every `expected` part; return it.
    fn fails_with(&self, env: &[(&str, &str)], expected: &[&str]) -> String {
        self.fails_with_args(&[], env, 1, expected)
    }

    /// [Fixture::fails_with] with more command-line `args`, expecting the exit code `code`
    /// (1; 2 for a bad command line, which clap refuses).
    fn fails_with_args(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        code: i32,
        expected: &[&str],
    ) -> String {
        let o = self.run_with(args, env);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(code),
            "exit code; stdout:\n{}\nstderr:\n{err}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!err.contains("backtrace"), "{err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no `error:` line in:\n{err}"));
        for e in expected {
            assert!(line.contains(e), "expected '{e}' in: {line}");
        }
        assert_eq!(
            written(&self.out),
            Vec::<String>::new(),
            "no output on error"
        );
        line.to_string()
    }

    fn csv(&self, name: &str) -> String {
        self.data.join(name).display().to_string()
    }
    fn script_name(&self) -> String {
        self.script.display().to_string()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every entry of `dir` (none when it does not exist), hidden staging files included.
fn written(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

const GOOD: (&str, &[u8]) = ("r.csv", b"a:u16,b:char(3)\n1,x\n2,y\n");

/// The first command succeeds, so a result exists when the data or the second line fails.
fn script_after_a_good_command(second: &str) -> Vec<u8> {
    format!("ok = PASS r\n{second}\n").into_bytes()
}

#[test]
fn malformed_csv_an_unclosed_quote() {
    let f = fixture(
        "malformed",
        &[("r.csv", b"a:u16,b:char(4)\n1,\"ab\n2,x\n3,y\n")],
        b"x = PASS r\n",
    );
    let csv = f.csv("r.csv");
    f.fails_with(
        &[],
        &[&format!("{csv}: line 2, column 2 ('b')"), "'\"' not closed"],
    );
}

#[test]
fn malformed_csv_a_header_without_types() {
    let f = fixture("untyped", &[("r.csv", b"a,b\n1,2\n")], b"x = PASS r\n");
    let csv = f.csv("r.csv");
    f.fails_with(&[], &[&format!("{csv}: line 1, column 1: 'a' has no type")]);
}

#[test]
fn wrong_column_count() {
    let f = fixture(
        "columns",
        &[("r.csv", b"a:u16,b:u16\n1,2\n3\n4,5\n")],
        b"x = PASS r\n",
    );
    let csv = f.csv("r.csv");
    f.fails_with(
        &[],
        &[&format!(
            "{csv}: line 3: 1 field, the header has 2: column 2 ('b') is missing"
        )],
    );
    let f = fixture(
        "columns_extra",
        &[("r.csv", b"a:u16\n1,2\n")],
        b"x = PASS r\n",
    );
    let csv = f.csv("r.csv");
    f.fails_with(
        &[],
        &[&format!(
            "{csv}: line 2: 2 fields, the header has 1: column 2 is one too many"
        )],
    );
}

#[test]
fn value_out_of_range_for_its_type() {
    for (ty, value, why) in [
        ("u16", "70000", "70000 is out of range for u16"),
        ("i16", "-40000", "-40000 is out of range for i16"),
        ("u32", "-1", "-1 is out of range for u32"),
        ("i64", "99999999999999999999", "out of range for i64"),
        ("f32", "1e39", "'1e39' is out of range for f32"),
    ] {
        let text = format!("k:u16,v:{ty}\n1,0\n2,{value}\n");
        let f = fixture(
            &format!("range_{ty}"),
            &[("r.csv", text.as_bytes())],
            b"x = PASS r\n",
        );
        let csv = f.csv("r.csv");
        f.fails_with(&[], &[&format!("{csv}: line 3, column 2 ('v')"), why]);
    }
}

#[test]
fn string_longer_than_its_char_n() {
    let f = fixture(
        "long_string",
        &[("r.csv", b"a:u16,name:char(3)\n1,abc\n2,abcd\n")],
        b"x = PASS r\n",
    );
    let csv = f.csv("r.csv");
    f.fails_with(
        &[],
        &[
            &format!("{csv}: line 3, column 2 ('name')"),
            "'abcd' is 4 bytes, longer than char(3)",
        ],
    );
}

#[test]
fn unknown_type() {
    let f = fixture(
        "unknown_type",
        &[("r.csv", b"a:u16,b:float\n1,2\n")],
        b"x = PASS r\n",
    );
    let csv = f.csv("r.csv");
    f.fails_with(
        &[],
        &[
            &format!("{csv}: line 1, column 2 ('b')"),
            "unknown type 'float'",
        ],
    );
    let f = fixture("bad_char", &[("r.csv", b"a:char(0)\n\n")], b"x = PASS r\n");
    let csv = f.csv("r.csv");
    f.fails_with(
        &[],
        &[
            &format!("{csv}: line 1, column 1 ('a')"),
            "must be at least 1",
        ],
    );
}

#[test]
fn tuple_of_4_kb_or_more() {
    // 2 + 4000 + 100 bytes: beyond the 4094 bytes (tag included) a tuple may have.
    let f = fixture(
        "huge_tuple",
        &[("r.csv", b"a:char(4000),b:char(100)\nx,y\n")],
        b"x = PASS r\n",
    );
    let csv = f.csv("r.csv");
    f.fails_with(
        &[],
        &[
            &format!("{csv}: line 1 (header)"),
            "tuple of 4102 bytes",
            "4094-byte limit",
        ],
    );
}

#[test]
fn relation_beyond_the_hm_capacity() {
    // char(2000): two tuples a page; an HM of 3 pages holds 6, line 8 holds the seventh.
    let mut text = b"a:char(2000)\n".to_vec();
    for i in 0..10 {
        text.extend_from_slice(format!("t{i}\n").as_bytes());
    }
    let f = fixture("hm_load", &[("r.csv", &text)], b"x = PASS r\n");
    let csv = f.csv("r.csv");
    f.fails_with(
        &[("RDBE_HM_PAGES", "3")],
        &[
            &format!("{csv}: line 8: relation 'r' does not fit the HM"),
            "3 pages",
        ],
    );
    // Several files together: the second one gets what the first left (5 pages of 6).
    let f = fixture(
        "hm_load_two",
        &[("a.csv", &text), ("b.csv", &text)],
        b"x = PASS a\n",
    );
    let csv = f.csv("b.csv");
    f.fails_with(
        &[("RDBE_HM_PAGES", "6")],
        &[&format!(
            "{csv}: line 4: relation 'b' does not fit the HM: 1 pages"
        )],
    );
    // A capacity that is not a positive number of pages is refused, not ignored.
    for bad in ["lots", "0", "-3"] {
        f.fails_with(
            &[("RDBE_HM_PAGES", bad)],
            &[&format!(
                "RDBE_HM_PAGES is '{bad}', not a positive whole number"
            )],
        );
    }
    // Within the HM (a, b and the result x: 15 pages), the same data runs.
    let o = f.run(&[("RDBE_HM_PAGES", "15")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A result that outgrows it: the Cartesian product of r and s, 100 tuples of 4002
    // bytes, a page each, after r, s and ok (5 pages each).
    let other = String::from_utf8(text.clone()).unwrap().replace("a:", "c:");
    let f = fixture(
        "hm_result",
        &[("r.csv", &text), ("s.csv", other.as_bytes())],
        &script_after_a_good_command("big = JOIN r, s"),
    );
    let script = f.script_name();
    f.fails_with(
        &[("RDBE_HM_PAGES", "20")],
        &[
            &format!("{script}: line 2: the relations in the HM now need 115 pages"),
            "beyond its capacity of 20 pages",
            "'big' has 100 tuples",
        ],
    );
}

/// The data of [relation_beyond_the_hm_capacity]: `char(2000)`, two tuples a page, ten
/// tuples (5 pages).
fn ten_tuples_of_2002_bytes() -> Vec<u8> {
    let mut text = b"a:char(2000)\n".to_vec();
    for i in 0..10 {
        text.extend_from_slice(format!("t{i}\n").as_bytes());
    }
    text
}

#[test]
fn hm_pages_flag_sets_the_hm_capacity_as_the_environment_variable_does() {
    let text = ten_tuples_of_2002_bytes();
    // The cases of relation_beyond_the_hm_capacity, with `--hm-pages N` instead of
    // RDBE_HM_PAGES=N: the same error, word for word.
    let f = fixture("hm_flag_load", &[("r.csv", &text)], b"x = PASS r\n");
    let csv = f.csv("r.csv");
    let by_flag = f.fails_with_args(
        &["--hm-pages", "3"],
        &[],
        1,
        &[
            &format!("{csv}: line 8: relation 'r' does not fit the HM"),
            "3 pages",
        ],
    );
    assert_eq!(by_flag, f.fails_with(&[("RDBE_HM_PAGES", "3")], &[]));
    let f = fixture(
        "hm_flag_load_two",
        &[("a.csv", &text), ("b.csv", &text)],
        b"x = PASS a\n",
    );
    let csv = f.csv("b.csv");
    let by_flag = f.fails_with_args(
        &["--hm-pages", "6"],
        &[],
        1,
        &[&format!(
            "{csv}: line 4: relation 'b' does not fit the HM: 1 pages"
        )],
    );
    assert_eq!(by_flag, f.fails_with(&[("RDBE_HM_PAGES", "6")], &[]));
    // `--hm-pages=N` is the same flag.
    f.fails_with_args(
        &["--hm-pages=6"],
        &[],
        1,
        &["relation 'b' does not fit the HM"],
    );
    // Within the HM (a, b and the result x: 15 pages), the same data runs.
    let o = f.run_with(&["--hm-pages", "15"], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(written(&f.out), ["x.csv"]);
    // A result that outgrows it.
    let other = String::from_utf8(text.clone()).unwrap().replace("a:", "c:");
    let f = fixture(
        "hm_flag_result",
        &[("r.csv", &text), ("s.csv", other.as_bytes())],
        &script_after_a_good_command("big = JOIN r, s"),
    );
    let script = f.script_name();
    f.fails_with_args(
        &["--hm-pages", "20"],
        &[],
        1,
        &[
            &format!("{script}: line 2: the relations in the HM now need 115 pages"),
            "beyond its capacity of 20 pages",
            "'big' has 100 tuples",
        ],
    );
}

#[test]
fn hm_pages_flag_overrides_the_environment_variable() {
    let text = ten_tuples_of_2002_bytes();
    let f = fixture(
        "hm_flag_over_env",
        &[("a.csv", &text), ("b.csv", &text)],
        b"x = PASS a\n",
    );
    let csv = f.csv("b.csv");
    // The environment's HM is large enough, the flag's is not: the flag counts.
    f.fails_with_args(
        &["--hm-pages", "6"],
        &[("RDBE_HM_PAGES", "15")],
        1,
        &[&format!(
            "{csv}: line 4: relation 'b' does not fit the HM: 1 pages"
        )],
    );
    // And the other way round; an environment value that is no number is not read at all
    // when the flag is given.
    for env in ["6", "lots", "0"] {
        let o = f.run_with(&["--hm-pages", "15"], &[("RDBE_HM_PAGES", env)]);
        assert!(
            o.status.success(),
            "RDBE_HM_PAGES={env}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(written(&f.out), ["x.csv"]);
        std::fs::remove_dir_all(&f.out).unwrap();
    }
}

#[test]
fn hm_pages_flag_refuses_a_value_that_is_not_a_positive_whole_number() {
    let f = fixture("hm_flag_bad", &[GOOD], b"x = PASS r\n");
    // A bad command line: clap's exit code 2, the flag and the value named, nothing
    // written; whatever RDBE_HM_PAGES says.
    for bad in ["0", "lots", "-3", "", "1.5", "99999999999999999999999"] {
        for env in [&[][..], &[("RDBE_HM_PAGES", "15")][..]] {
            f.fails_with_args(
                &["--hm-pages", bad],
                env,
                2,
                &[
                    &format!("invalid value '{bad}' for '--hm-pages <N>'"),
                    "not a positive whole number of HM pages",
                ],
            );
        }
    }
    // With no value at all.
    f.fails_with_args(&["--hm-pages"], &[], 2, &["--hm-pages"]);
}

#[test]
fn unknown_relation_in_a_script() {
    let f = fixture(
        "unknown_relation",
        &[GOOD],
        &script_after_a_good_command("y = JOIN r, nobody"),
    );
    let script = f.script_name();
    f.fails_with(
        &[],
        &[
            // The line is said once, with its column, then the command.
            &format!("{script}: line 2, column 13: JOIN (Cartesian product): unknown relation 'nobody' (known: ok, r)"),
        ],
    );
}

#[test]
fn unknown_column_in_a_script() {
    let f = fixture(
        "unknown_column",
        &[GOOD],
        &script_after_a_good_command("y = SORT r BY colour"),
    );
    let script = f.script_name();
    f.fails_with(
        &[],
        &[
            &format!("{script}: line 2"),
            "line 2, column 15",
            "no field 'colour' (fields: a, b)",
        ],
    );
    let f = fixture(
        "unknown_column_where",
        &[GOOD],
        &script_after_a_good_command("y = RESTRICT r WHERE a > 1 AND size = 2"),
    );
    let script = f.script_name();
    f.fails_with(&[], &[&format!("{script}: line 2"), "'size'"]);
}

#[test]
fn type_mismatch_in_a_comparison() {
    let f = fixture(
        "mismatch_literal",
        &[GOOD],
        &script_after_a_good_command("y = RESTRICT r WHERE b = 5"),
    );
    let script = f.script_name();
    f.fails_with(
        &[],
        &[
            &format!("{script}: line 2"),
            "line 2, column 26: RESTRICT: '5' is a number; the field is char(3)",
        ],
    );
    let f = fixture(
        "mismatch_columns",
        &[GOOD],
        &script_after_a_good_command("y = COMPARE r WHERE a = b"),
    );
    let script = f.script_name();
    f.fails_with(
        &[],
        &[
            &format!("{script}: line 2"),
            "line 2, column 21",
            "a is u16, b is char(3)",
        ],
    );
}

#[test]
fn empty_script() {
    for (name, text) in [
        ("empty", &b""[..]),
        ("comments_only", b"# nothing to do\n\n-- still nothing\n"),
    ] {
        let f = fixture(name, &[GOOD], text);
        let script = f.script_name();
        f.fails_with(&[], &[&format!("{script}: the script has no command")]);
    }
}

#[test]
fn binary_garbage_as_the_script() {
    let f = fixture(
        "garbage_script",
        &[GOOD],
        b"ok = PASS r\n\x7fELF\x02\x01\x01\x00\xff\xfe\x00\x01",
    );
    let script = f.script_name();
    f.fails_with(
        &[],
        &[&format!(
            "{script}: line 2, column 9: not UTF-8 text (byte 0xff)"
        )],
    );
    // UTF-8, but not text a script holds: the first control character.
    let f = fixture("control_script", &[GOOD], b"ok = PASS r\x01\x02\n");
    let script = f.script_name();
    f.fails_with(
        &[],
        &[&format!(
            "{script}: line 1, column 12: unexpected character '\\u{{1}}'"
        )],
    );
}

#[test]
fn binary_garbage_as_a_csv() {
    let f = fixture(
        "garbage_csv",
        &[("r.csv", b"a:u16,b:char(3)\n1,x\n2,\x00\x9f\x92\x96\n")],
        b"x = PASS r\n",
    );
    let csv = f.csv("r.csv");
    f.fails_with(
        &[],
        &[&format!(
            "{csv}: line 3, column 2 ('b'): not UTF-8 text (byte 2 of the field is 0x9f"
        )],
    );
    let f = fixture(
        "garbage_header",
        &[("r.csv", b"\x89PNG\r\n\x1a\n\x00\x00")],
        b"x = PASS r\n",
    );
    let csv = f.csv("r.csv");
    f.fails_with(&[], &[&format!("{csv}: line 1, column 1: not UTF-8 text")]);
}

#[test]
fn a_failing_script_leaves_earlier_outputs_untouched_and_adds_none() {
    let f = fixture(
        "keeps_old",
        &[GOOD],
        &script_after_a_good_command("y = PASS nobody"),
    );
    std::fs::create_dir_all(&f.out).unwrap();
    std::fs::write(f.out.join("ok.csv"), "from:u16\n1\n").unwrap();
    let o = f.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(written(&f.out), ["ok.csv"]);
    assert_eq!(
        std::fs::read_to_string(f.out.join("ok.csv")).unwrap(),
        "from:u16\n1\n"
    );
}

#[test]
fn a_result_that_cannot_be_written_undoes_the_ones_already_placed() {
    // `ok` is placed first, then `y.csv` cannot be: it is a directory. Nothing may remain
    // of `ok`, and the file `ok.csv` had before comes back.
    let f = fixture(
        "rollback",
        &[GOOD],
        &script_after_a_good_command("y = PASS r"),
    );
    std::fs::create_dir_all(f.out.join("y.csv")).unwrap();
    std::fs::write(f.out.join("y.csv").join("keep"), "mine").unwrap();
    std::fs::write(f.out.join("ok.csv"), "old:u16\n").unwrap();
    let o = f.run(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("y.csv: it is a directory"), "{err}");
    let mut left = written(&f.out);
    left.sort();
    assert_eq!(left, ["ok.csv", "y.csv"]);
    assert_eq!(
        std::fs::read_to_string(f.out.join("ok.csv")).unwrap(),
        "old:u16\n"
    );
    assert_eq!(
        std::fs::read_to_string(f.out.join("y.csv").join("keep")).unwrap(),
        "mine"
    );
    // Once the way is clear the same run writes both.
    std::fs::remove_dir_all(f.out.join("y.csv")).unwrap();
    let o = f.run(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut left = written(&f.out);
    left.sort();
    assert_eq!(left, ["ok.csv", "y.csv"]);
    assert_eq!(
        std::fs::read_to_string(f.out.join("ok.csv")).unwrap(),
        "a:u16,b:char(3)\n1,x\n2,y\n"
    );
}

#[test]
fn a_condition_nested_too_deep_is_an_error_not_a_stack_overflow() {
    // 20 000 parentheses used to recurse until the stack ran out (SIGSEGV, exit 134).
    let script = format!(
        "ok = PASS r\ny = RESTRICT r WHERE {}a = 1{}\n",
        "(".repeat(20_000),
        ")".repeat(20_000)
    );
    let f = fixture("deep", &[GOOD], script.as_bytes());
    let name = f.script_name();
    f.fails_with(
        &[],
        &[
            &format!("{name}: line 2"),
            "the expression nests deeper than 100 levels",
        ],
    );
}
