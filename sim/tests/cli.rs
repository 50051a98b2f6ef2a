//! The `rdbe` binary as a user runs it: demo, verilog, bench, and clean errors.
use std::process::Command;

fn rdbe(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rdbe"))
        .args(args)
        .output()
        .expect("run rdbe")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rdbe_cli_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn demo_sorts_photos_and_ranks_the_access_log_and_writes_a_vcd_and_an_svg() {
    let dir = scratch("demo");
    let vcd = dir.join("demo.vcd");
    let out = rdbe(&["demo", "--vcd", vcd.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("shots = JOIN cameras"), "{text}");
    // The top of the access log, computed through the RTL (counts per group from the DP
    // line), must agree with counting in plain Rust.
    let log = rdbe_sim::demo_data::access_log(300, 2).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for t in &log.tuples {
        *counts.entry(t[0].to_string()).or_insert(0usize) += 1;
    }
    let mut ranked: Vec<_> = counts.into_iter().collect();
    ranked.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    let top_line = text
        .lines()
        .skip_while(|l| !l.starts_with("ranked ("))
        .nth(3)
        .unwrap_or("");
    assert!(
        top_line.contains(&ranked[0].0) && top_line.contains(&ranked[0].1.to_string()),
        "{top_line} vs {:?}",
        ranked[0]
    );
    let vcd_text = std::fs::read_to_string(&vcd).unwrap();
    assert!(vcd_text.contains("$enddefinitions") && vcd_text.contains("clock"));
    let top = std::fs::read_to_string(dir.join("demo-verilog").join("rdbe.v")).unwrap();
    assert!(top.contains("module rdbe(") && top.contains("hm_stop"));
    let svg = std::fs::read_to_string(dir.join("demo.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("data_in.valid") && svg.contains("data_out"),
        "the waveform picture"
    );
}

#[test]
fn verilog_writes_every_module_for_both_configurations() {
    for config in ["delta", "small"] {
        let dir = scratch(&format!("verilog_{config}"));
        let out = rdbe(&[
            "verilog",
            "--out",
            dir.to_str().unwrap(),
            "--config",
            config,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for m in [
            "in_module",
            "sorting_cell_first",
            "sorting_cell_last",
            "sorter",
            "sorting_checker",
            "sort_pipeline",
            "merger",
            "engine_core",
            "hm_adapter_in",
            "hm_adapter_out",
            "rdbe",
        ] {
            let v = std::fs::read_to_string(dir.join(format!("{m}.v"))).unwrap();
            assert!(v.contains(&format!("module {m}(")), "{config}/{m}");
        }
        let partial = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".partial")
            })
            .count();
        assert_eq!(partial, 0);
    }
}

#[test]
fn bench_prints_a_table_and_a_json_last_line() {
    let out = rdbe(&["bench", "--quick"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap();
    let json: serde_json::Value = serde_json::from_str(last).expect("last line is JSON");
    for key in [
        "cell_cycles_per_word",
        "sorter_cycles_4096x16",
        "sorter_cycles_per_word_in",
        "sorter_cycles_per_word_out",
        "sort_mb_per_s_at_fmax",
        "sort_stream_mb_per_s_at_fmax",
        "sim_cycles_per_s",
        "merger_cycles_per_word_sort_ex",
        "merger_cycles_per_word_join_eq",
        "merger_cycles_per_word_rest_eq",
        "control_rom_words",
        "control_rom_bits",
        "sim_cycles_per_s_rtl_top",
        "sim_cycles_per_s_rtl_core",
        "sim_passes_per_cycle_rtl_core",
    ] {
        assert!(json[key].as_f64().unwrap() > 0.0, "{key}");
    }
    // A cycle of a stream is two settling passes, the inputs' and the edge's, each of which
    // leaves the design settled (the vendored rust-hdl's settle modes, vendor/README.md);
    // 4.96 and 4.93 when every pass ran the whole design until one changed nothing, 8.66
    // and 8.9 before a register's new output reached its parent in the pass it changed.
    for key in [
        "sim_passes_per_cycle_rtl_core",
        "sim_passes_per_cycle_rtl_top",
    ] {
        assert!(json[key].as_f64().unwrap() < 2.1, "{key}: {last}");
    }
    assert!(
        json["cell_cycles_per_word"].as_f64().unwrap() <= 1.125,
        "{last}"
    );
    // A merge sorter gives no word out before its last word is in, so the sort's cycles
    // hold both streams' (32,768 words each way), and neither stream beats a word a cycle.
    let words = 32768.0;
    let word_in = json["sorter_cycles_per_word_in"].as_f64().unwrap();
    let word_out = json["sorter_cycles_per_word_out"].as_f64().unwrap();
    let sort = json["sorter_cycles_4096x16"].as_f64().unwrap();
    assert!(word_in >= 1.0 && word_out >= 1.0, "{last}");
    assert!(sort >= (word_in + word_out) * words, "{last}");
    assert!(
        json["sort_stream_mb_per_s_at_fmax"].as_f64().unwrap()
            > json["sort_mb_per_s_at_fmax"].as_f64().unwrap(),
        "{last}"
    );
}

#[test]
fn bad_arguments_fail_cleanly() {
    let out = rdbe(&["demo", "--config", "huge"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("huge"));
    // The small configuration runs the same demo through external sorts.
    let out = rdbe(&["demo", "--config", "small", "--backend", "model"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ranked (5 tuples)"), "{text}");
}

/// A data directory with two small relations and a script using them.
fn run_fixture(
    name: &str,
    script: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = scratch(name);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("photos.csv"),
        "photo_id:u32,user_id:u32,path:char(12)\n1,7,/a.jpg\n2,8,/b.jpg\n3,,/c.jpg\n4,7,/d.jpg\n",
    )
    .unwrap();
    std::fs::write(
        data.join("users.csv"),
        "user_id:u32,name:char(8)\n7,ann\n8,bob\n9,cy\n",
    )
    .unwrap();
    let script_path = dir.join("q.rdbe");
    std::fs::write(&script_path, script).unwrap();
    (data, script_path, dir.join("out"))
}

fn run_cli(
    data: &std::path::Path,
    script: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "run",
        script.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    rdbe(&args)
}

#[test]
fn run_writes_every_result_as_csv_on_both_backends() {
    let script = "r = JOIN users, photos ON users.user_id = photos.user_id PROJECT name, path\ns = SORT r BY path DESC\n";
    for backend in ["rtl", "model"] {
        let (data, script_path, out) = run_fixture(&format!("run_{backend}"), script);
        let o = run_cli(
            &data,
            &script_path,
            &out,
            &[
                "--backend",
                backend,
                "--config",
                "small",
                "--profile",
                "delta1984",
            ],
        );
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            text.contains("modelled ms") && text.contains("JOIN-EQ"),
            "{text}"
        );
        let s = std::fs::read_to_string(out.join("s.csv")).unwrap();
        assert_eq!(
            s,
            "name:char(8),path:char(12)\nann,/d.jpg\nbob,/b.jpg\nann,/a.jpg\n"
        );
        assert!(out.join("r.csv").exists());
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}

/// A bad input case: its name, the script, a data file to write (name, text), and what
/// the error must say.
type BadInputCase<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>, &'a [&'a str]);

#[test]
fn run_rejects_every_bad_input_with_its_location_and_writes_nothing() {
    let cases: &[BadInputCase] = &[
        (
            "unknown_relation",
            "r = PASS nobody",
            None,
            &["line 1, column 10", "unknown relation 'nobody'"],
        ),
        (
            "unknown_column",
            "r = SORT photos BY colour",
            None,
            &["line 1, column 20", "no field 'colour'"],
        ),
        (
            "type_mismatch",
            "r = RESTRICT photos WHERE user_id = 'x'",
            None,
            &["line 1", "'x'", "u32"],
        ),
        (
            "syntax",
            "r = JOIN photos users",
            None,
            &["q.rdbe: line 1, column 17", "expected ','"],
        ),
        (
            "malformed_csv",
            "r = PASS photos",
            Some((
                "photos.csv",
                "photo_id:u32,user_id:u32,path:char(12)\n1,7\n",
            )),
            &["photos.csv", "line 2"],
        ),
        (
            "out_of_range",
            "r = PASS photos",
            Some(("photos.csv", "photo_id:u16\n70000\n")),
            &["photos.csv", "line 2", "out of range"],
        ),
        (
            "long_string",
            "r = PASS photos",
            Some(("photos.csv", "path:char(3)\nabcdef\n")),
            &["photos.csv", "line 2", "longer than char(3)"],
        ),
        (
            "huge_tuple",
            "r = PASS photos",
            Some(("photos.csv", "a:char(4000),b:char(200)\nx,y\n")),
            &["photos.csv", "4094"],
        ),
        (
            "second_fails",
            "ok = PASS users\nr = RESTRICT photos WHERE nothing = 1",
            None,
            &["line 2", "nothing"],
        ),
    ];
    for (name, script, csv, expected) in cases {
        let (data, script_path, out) = run_fixture(name, script);
        if let Some((file, text)) = csv {
            std::fs::write(data.join(file), text).unwrap();
        }
        let o = run_cli(&data, &script_path, &out, &["--backend", "model"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name}: should fail");
        assert!(!err.contains("panicked"), "{name}: {err}");
        for e in *expected {
            assert!(err.contains(e), "{name}: expected '{e}' in: {err}");
        }
        let written = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
        assert_eq!(written, 0, "{name}: no output on error");
    }
}
