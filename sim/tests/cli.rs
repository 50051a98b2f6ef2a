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
fn demo_sorts_photos_and_ranks_the_access_log_and_writes_a_vcd() {
    let dir = scratch("demo");
    let vcd = dir.join("demo.vcd");
    let out = rdbe(&["demo", "--vcd", vcd.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("photos sorted by user_id"), "{text}");
    // The top of the access log, computed through the RTL with counts from the DP line,
    // must agree with counting in plain Rust.
    let log = rdbe_sim::demo_data::access_log(300, 2).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for t in &log.tuples {
        *counts.entry(t[0].to_string()).or_insert(0usize) += 1;
    }
    let mut ranked: Vec<_> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1));
    let top_line = text
        .lines()
        .skip_while(|l| !l.starts_with("count"))
        .nth(2)
        .unwrap_or("");
    assert!(
        top_line.contains(&ranked[0].0) && top_line.contains(&ranked[0].1.to_string()),
        "{top_line} vs {:?}",
        ranked[0]
    );
    let vcd_text = std::fs::read_to_string(&vcd).unwrap();
    assert!(vcd_text.contains("$enddefinitions") && vcd_text.contains("clock"));
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
        "sim_cycles_per_s",
        "merger_cycles_per_word_sort_ex",
        "merger_cycles_per_word_join_eq",
        "merger_cycles_per_word_rest_eq",
        "control_rom_words",
        "control_rom_bits",
    ] {
        assert!(json[key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert!(
        json["cell_cycles_per_word"].as_f64().unwrap() <= 1.125,
        "{last}"
    );
}

#[test]
fn bad_arguments_fail_cleanly() {
    let out = rdbe(&["demo", "--config", "huge"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("huge"));
    // The photos relation (40-byte tuples) does not fit the small sorter: a clear error.
    let dir = scratch("small_demo");
    let out = rdbe(&[
        "demo",
        "--config",
        "small",
        "--vcd",
        dir.join("x.vcd").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("photos") && err.contains("capacity"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
