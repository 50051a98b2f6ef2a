//! The `verilator` backend: the same RDBE top the `rtl` backend simulates in rust-hdl
//! (`SmallRdbe` or `DeltaRdbe`), exported to Verilog and compiled by Verilator, run cycle
//! for cycle as the rust-hdl harness runs it. Tuples, DP, status and cycle counts are the
//! `rtl` backend's; only the speed differs.
//!
//! The model is built from rust-hdl's hierarchical Verilog, clocked on both edges
//! ([on_both_edges]: a cycle is one toggle of the clock, one `eval()`), in Verilator's
//! default (non-`--timing`) scheduling, where every clock derived through rust-hdl's
//! `always @(*)` clock assignments changes before any flip-flop updates. The co-simulation
//! (`rdbe_rtl::cosim`) flattens with yosys first because Verilator 5.006's `--timing` mode
//! mis-clocks that hierarchy; without `--timing` the hierarchy runs as rust-hdl does (the
//! tests in `sim/tests/verilator_backend.rs` compare outputs and cycle counts with the `rtl`
//! backend), and runs faster than the flattened netlist: 0.52 M against 0.32 M cycles/s
//! for `small` on the same machine (yosys splits every memory write into one-bit writes,
//! and even with those merged by `opt -full` the netlist ran at 0.31 M cycles/s).
//!
//! Verilator reads `sim/verilator/rdbe_perf.vlt` before the Verilog: `isolate_assignments`
//! rules that break the false combinational loops of rust-hdl's one-process-per-module
//! Verilog (UNOPTFLAT), so that each clock edge evaluates the logic once instead of
//! iterating around eight loops. The model is compiled at `-O3` with GCC's profile-guided
//! optimisation: an instrumented compile runs a PASS-1 of 20,000 tuples, then the final
//! compile uses its profile (when any step of that fails, e.g. with another compiler, an
//! ordinary compile; `RDBE_VERILATOR_PGO=0` asks for the ordinary compile, as the test
//! suite does). Together that cut the instructions per simulated cycle from about
//! 7,000 to 4,600 (docs/PERFORMANCE.md, "Verilator backend"). The build's output is kept in
//! the cache entry ([BUILD_LOG]); the tests check that it reports no loop.
//!
//! The Verilated model runs in a long-lived driver process (`sim/verilator/rdbe_driver.cpp`,
//! compiled in with the model) that the [VerilatorEngine] speaks a small binary protocol
//! with over stdin and stdout: register writes and reads (one bus cycle each, as
//! `rdbe_top::write_register` and `read_register` make them), idle cycles, and whole
//! streams, whose per-cycle loop (drive the beat and ready, settle, sample the handshakes
//! and `hm_stop`, clock edge: `Harness::run_with`) runs in C++. The control program's side
//! of the bus is shared with the `rtl` backend: `rdbe_top::configure_bus`,
//! `status_over_bus` and `clear_over_bus` over [rdbe_rtl::rdbe_top::RegisterBus].
//!
//! # Memory-word faults
//! The model above reaches only the top's ports. For memory-word faults
//! ([StepFault::Memory], `rdbe faults --memory-count`) a second model of the same top is
//! built ([Model::Signals], [VerilatorEngine::with_memory_access]): with `--vpi`, and a
//! generated configuration (`signals_config`) that makes public the arrays of every memory
//! a fault can hit and the `q` of every register bounding their live words, as the Rust
//! model of the top lists them ([rdbe_rtl::memory_fault::MemorySite]: instance paths of
//! the exported Verilog). The stream pauses after the clock edge of the fault's cycle, as
//! `Harness::run_stream_with` calls its hook; the engine reads the registers through VPI,
//! chooses the word and line with the same [strike] as the `rtl` backend, and the driver
//! inverts that bit of the memory's array (of the lane holding it, for a deep memory split
//! into two). So the same fault strikes the same bit with the same outcome on both
//! backends (`sim/tests/verilator_backend.rs` compares them fault by fault), two orders of
//! magnitude faster than rust-hdl (docs/RELIABILITY.md). Verilator's documentation warns
//! that public signals cost speed (not measured here), so that model is kept apart
//! (`verilator-<config>-signals-<hash>`, no profile-guided optimisation: about 20 s to
//! build).
//!
//! # Build cache
//! The first use of a configuration builds its model into
//! `<cache>/verilator-<config>-<hash>/`, where `<cache>` is `$RDBE_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/rdbe`, else `~/.cache/rdbe`, and `<hash>` covers the exported Verilog,
//! the driver's source, the build flags and Verilator's version. The build
//! happens in a temporary directory renamed into place when it is complete, so a killed
//! build leaves no half-built model behind (only a `.partial-*` directory, never used);
//! later runs start the cached binary at once. Building (two compiles and a training run)
//! takes about a minute for `small` and a minute and a half for `delta` on two busy cores.
use crate::engine::{Engine, EngineFault, Limits, Profile, StepFault, StepOutput};
use crate::sort_job::EngineConfig;
use anyhow::{anyhow, bail, ensure, Context, Result};
use rdbe_rtl::cosim::{pack, unpack};
use rdbe_rtl::memory_fault::{
    memory_sites, strike, LiveSpan, MemoryFault, MemoryHit, MemorySite, Strike,
};
use rdbe_rtl::merger::MergerConfig;
use rdbe_rtl::rdbe_top::{
    clear_over_bus, configure_bus, inject_writes, status_over_bus, DeltaRdbe, RegisterBus,
    SmallRdbe,
};
use rdbe_rtl::sort_pipeline::PipelineSettings;
use rdbe_rtl::tuple_stream::{split_tuples_with_dup, Beat};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

/// The driver's source, compiled with the Verilated model.
const DRIVER_SOURCE: &str = include_str!("../verilator/rdbe_driver.cpp");
/// Verilator configuration for speed (`isolate_assignments` on rust-hdl's false
/// combinational loops), passed before the Verilog; part of the cache key.
const PERF_CONFIG: &str = include_str!("../verilator/rdbe_perf.vlt");
/// The generated configuration of a [Model::Signals] build, in its build directory.
const SIGNALS_CONFIG: &str = "rdbe_signals.vlt";
/// Verilator's output of a build, kept in the cache entry.
pub const BUILD_LOG: &str = "verilator.log";
/// The protocol version the driver announces (`PROTOCOL_VERSION` in the driver).
const PROTOCOL_VERSION: u32 = 2;
/// The top's module (rust-hdl's export names it so).
const TOP_MODULE: &str = "top";
/// The hierarchical name of the top's instance in the model's VPI: Verilator's wrapper
/// `TOP` holding the top module's instance.
const VPI_ROOT: &str = "TOP.top";
/// The extra Verilator arguments of a [Model::Signals] build: VPI, and the driver's code
/// that uses it.
const SIGNALS_ARGS: &[&str] = &["--vpi", "-CFLAGS", "-DRDBE_VPI"];

/// Which model of a configuration to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Only the top's ports are reachable: the fastest model.
    Fast,
    /// Also the memories a fault can hit and the registers bounding their live words,
    /// through VPI ([rdbe_rtl::memory_fault::MemorySite]: those signals are public), for
    /// memory-word faults. Built without profile-guided optimisation.
    Signals,
}

/// The memories of `config`'s top a fault can hit, in [rdbe_rtl::memory_fault::StoredWords] order.
fn memory_sites_of(config: EngineConfig) -> Vec<MemorySite> {
    match config {
        EngineConfig::Delta => memory_sites(&mut DeltaRdbe::default()),
        EngineConfig::Small => memory_sites(&mut SmallRdbe::default()),
    }
}

/// A Verilog name of the top's hierarchy (a [MemorySite]'s paths) as the model's VPI
/// knows it.
fn vpi_name(path: &str) -> String {
    format!("{VPI_ROOT}.{path}")
}

/// The Verilator configuration of a [Model::Signals] build: the memories' arrays public
/// for writing, the live-range registers' outputs for reading. rust-hdl names a
/// sub-module after its path (`top$engine_core$…$memory_a`; the tool keeps '$' as
/// "__024", matched by '*') and a register's flip-flop is a module whose output is `q`.
fn signals_config(sites: &[MemorySite]) -> String {
    let module = |path: &str| format!("{TOP_MODULE}*{}", path.replace('.', "*"));
    let mut lines = vec![
        "`verilator_config".to_string(),
        "// Signals a memory-word fault reads or writes (sim/src/verilator_backend.rs,".to_string(),
        "// signals_config): generated from the memory sites of the Rust model.".to_string(),
    ];
    for site in sites {
        for (array, _, _) in site.arrays() {
            let (instance, var) = array.rsplit_once('.').unwrap_or(("", &array));
            lines.push(format!(
                "public_flat_rw -module \"{}\" -var \"{var}\"",
                module(instance)
            ));
        }
        for register in site.range.clone().registers_mut() {
            lines.push(format!(
                "public_flat_rd -module \"{}\" -var \"q\"",
                module(&register.path)
            ));
        }
    }
    lines.join("\n") + "\n"
}

/// The model's executable in a cache entry.
const BINARY: &str = "rdbe_sim";
/// Verilator's arguments besides the files (part of the cache key).
const VERILATOR_ARGS: &[&str] = &[
    "--cc",
    "--exe",
    "--build",
    "-O3",
    "-j",
    "2",
    "-Wno-fatal",
    "-Wno-lint",
    "-Wno-style",
    "--top-module",
    "top",
    // Verilator's makefile compiles the model with -Os by default.
    "-MAKEFLAGS",
    "OPT_FAST=-O3 OPT_GLOBAL=-O3",
    "-o",
    BINARY,
];
/// Profile-guided optimisation: the model is first compiled with these flags, run on a
/// training workload ([train]) and compiled again with [PROFILE_USE].
const PROFILE_GENERATE: &[&str] = &[
    "-CFLAGS",
    "-fprofile-generate",
    "-LDFLAGS",
    "-fprofile-generate",
];
/// The second compile of profile-guided optimisation (GCC's profile files).
const PROFILE_USE: &[&str] = &[
    "-CFLAGS",
    "-fprofile-use -fprofile-correction -Wno-missing-profile",
];
/// Tuples of the training workload: a PASS-1 as [measure_cycles_per_second] runs it.
const TRAINING_TUPLES: usize = 20_000;
/// Set to `0` to build models without profile-guided optimisation: one compile instead of
/// two and a training run (about half the build time; the test suite does this, since
/// the optimisation changes only the speed, never what the model computes).
pub const PGO_VARIABLE: &str = "RDBE_VERILATOR_PGO";

/// Whether models are built with profile-guided optimisation ([PGO_VARIABLE]).
fn profile_guided() -> bool {
    std::env::var(PGO_VARIABLE)
        .map(|v| v != "0")
        .unwrap_or(true)
}
const INSTALL_HINT: &str = "apt-get install -y verilator";

fn config_name(config: EngineConfig) -> &'static str {
    match config {
        EngineConfig::Delta => "delta",
        EngineConfig::Small => "small",
    }
}

/// The top's Verilog, as `rdbe verilog` exports it (module `top`), clocked on both edges
/// ([on_both_edges]): the model Verilator builds.
fn top_verilog(config: EngineConfig) -> String {
    on_both_edges(&match config {
        EngineConfig::Delta => rdbe_rtl::verilog::export(DeltaRdbe::default()),
        EngineConfig::Small => rdbe_rtl::verilog::export(SmallRdbe::default()),
    })
}

/// `verilog` with every `@(posedge c)` read as `@(posedge c or negedge c)`: each edge of
/// the driver's clock is then one clock cycle of the design, and a cycle costs the model
/// one evaluation instead of two (a rising edge, and a falling one that only re-arms the
/// next rise's edge detection but still evaluates every input's logic). rust-hdl's
/// Verilog acts on rising edges only (flip-flops, memories and their clocks passed down
/// through `always @(*)`), so nothing else changes: the driver toggles the clock once a
/// cycle (`sim/verilator/rdbe_driver.cpp`), and the tests in
/// `sim/tests/verilator_backend.rs` compare every output and cycle count with the `rtl`
/// backend. The exported Verilog (`rdbe verilog`, synthesis, the Icarus and Verilator
/// co-simulations of `rdbe_rtl::cosim`) is untouched.
pub fn on_both_edges(verilog: &str) -> String {
    const EDGE: &str = "@(posedge ";
    let mut out = String::with_capacity(verilog.len() + verilog.len() / 16);
    let mut rest = verilog;
    while let Some(at) = rest.find(EDGE) {
        let after = &rest[at + EDGE.len()..];
        // Every `@(posedge` is rewritten (one left alone would halve that clock); a
        // sensitivity list without its `)` is left to Verilator to report.
        let close = after.find(')').unwrap_or(after.len());
        let clock = &after[..close];
        out.push_str(&rest[..at]);
        out.push_str(&format!("@(posedge {clock} or negedge {clock})"));
        rest = after.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// The executable file `tool` in a directory of PATH (empty entries, which would mean the
/// current directory, are skipped).
fn find_on_path(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(tool))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Run `tool` (found on PATH) with `args` and return its stdout; a missing tool is named,
/// with the command that installs it.
fn tool_output(tool: &str, args: &[&str]) -> Result<String> {
    let Some(exe) = find_on_path(tool) else {
        bail!(
            "the verilator backend needs `{tool}`, which is not on PATH: install it with \
             `{INSTALL_HINT}`"
        )
    };
    let out = Command::new(&exe)
        .args(args)
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    ensure!(
        out.status.success(),
        "`{tool} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A stable 128-bit FNV-1a hash (two 64-bit lanes), hex: the cache key. Not for security.
fn content_hash(parts: &[&[u8]]) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    for part in parts {
        for &byte in (part.len() as u64).to_le_bytes().iter().chain(part.iter()) {
            a = (a ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ byte as u64)
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(5);
        }
    }
    format!("{a:016x}{b:016x}")
}

/// Where built models are kept: `$RDBE_CACHE_DIR`, else `$XDG_CACHE_HOME/rdbe`, else
/// `~/.cache/rdbe`.
pub fn cache_root() -> Result<PathBuf> {
    let non_empty = |v: &str| std::env::var_os(v).filter(|s| !s.is_empty());
    if let Some(dir) = non_empty("RDBE_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("rdbe"));
    }
    if let Some(home) = non_empty("HOME") {
        return Ok(PathBuf::from(home).join(".cache").join("rdbe"));
    }
    bail!(
        "no directory for the Verilator build cache: set RDBE_CACHE_DIR (or XDG_CACHE_HOME \
         or HOME)"
    )
}

/// Builds of this process, one at a time (tests start several engines at once; they
/// share one build). Other processes are kept apart by the atomic rename.
static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// The last `n` lines of a tool's output, for an error message.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The Verilated model of `config`'s RDBE top in the default cache ([cache_root]).
pub fn model_binary(config: EngineConfig, model: Model) -> Result<PathBuf> {
    model_binary_in(&cache_root()?, config, model)
}

/// The Verilated model of `config`'s RDBE top: the executable cached in `root`, built first
/// when there is none. Needs Verilator on PATH (and, to build, make and a C++ compiler).
pub fn model_binary_in(root: &Path, config: EngineConfig, model: Model) -> Result<PathBuf> {
    // Verilator's version is part of the key: a cached model from another version is not
    // used.
    let verilator = tool_output("verilator", &["--version"])?;
    let verilog = top_verilog(config);
    let signals = match model {
        Model::Fast => None,
        Model::Signals => Some(signals_config(&memory_sites_of(config))),
    };
    let args = if let Some(signals) = &signals {
        format!(
            "{} {} / {signals}",
            VERILATOR_ARGS.join(" "),
            SIGNALS_ARGS.join(" ")
        )
    } else if profile_guided() {
        format!(
            "{} / {} / {} / {TRAINING_TUPLES}",
            VERILATOR_ARGS.join(" "),
            PROFILE_GENERATE.join(" "),
            PROFILE_USE.join(" ")
        )
    } else {
        VERILATOR_ARGS.join(" ")
    };
    let hash = content_hash(&[
        verilog.as_bytes(),
        DRIVER_SOURCE.as_bytes(),
        PERF_CONFIG.as_bytes(),
        args.as_bytes(),
        verilator.as_bytes(),
    ]);
    let kind = if signals.is_some() { "-signals" } else { "" };
    let name = format!("verilator-{}{kind}-{}", config_name(config), &hash[..20]);
    let dir = root.join(&name);
    let binary = dir.join(BINARY);
    if binary.is_file() {
        return Ok(binary);
    }
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if binary.is_file() {
        return Ok(binary);
    }
    std::fs::create_dir_all(root)
        .with_context(|| format!("creating the build cache {}", root.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let partial = root.join(format!(".{name}.partial-{}-{nanos}", std::process::id()));
    let built = build_in(&partial, config, &verilog, signals.as_deref(), &verilator);
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e.context(format!(
            "building the Verilator model of the {} RDBE top",
            config_name(config)
        )));
    }
    if let Err(e) = std::fs::rename(&partial, &dir) {
        let _ = std::fs::remove_dir_all(&partial);
        // Another process finished the same build first: use it.
        ensure!(
            binary.is_file(),
            "moving the built model to {}: {e}",
            dir.display()
        );
    }
    Ok(binary)
}

/// Verilate the top in `dir` and compile it with the driver into `obj_dir`, with `extra`
/// arguments, as a [Model::Signals] build if `signals` (its configuration written into
/// `dir` first); returns Verilator's output.
fn verilate(dir: &Path, extra: &[&str], signals: bool) -> Result<Vec<u8>> {
    let out = Command::new("verilator")
        .current_dir(dir)
        .args(VERILATOR_ARGS)
        .args(extra)
        .args(if signals { SIGNALS_ARGS } else { &[] })
        .arg("rdbe_perf.vlt")
        .args(if signals { &[SIGNALS_CONFIG][..] } else { &[] })
        .args(["top.v", "rdbe_driver.cpp"])
        .output()
        .context("running verilator")?;
    if !out.status.success() {
        bail!(
            "verilator --build failed (it needs make and a C++ compiler too: apt-get install \
             -y make g++):\n{}\n{}",
            tail(&String::from_utf8_lossy(&out.stdout), 20),
            tail(&String::from_utf8_lossy(&out.stderr), 40)
        );
    }
    Ok([out.stdout, out.stderr].concat())
}

/// The training run of profile-guided optimisation: the instrumented model in `dir` runs a
/// PASS-1 of [TRAINING_TUPLES] tuples and exits, leaving its profile beside its objects.
fn train(dir: &Path, config: EngineConfig) -> Result<()> {
    let mut engine = VerilatorEngine::new(config, Profile::Modern);
    engine.driver = Some(Driver::start(
        &dir.join("obj_dir").join(BINARY),
        engine.limits,
    )?);
    crate::engine::pass1(&mut engine, TRAINING_TUPLES)?;
    Ok(())
}

/// The objects and the executable of a compile, so that the next compile redoes them (its
/// makefile does not know the flags changed); the profile files stay.
fn remove_objects(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir.join("obj_dir"))? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "o" | "a") || path.file_name() == Some(BINARY.as_ref()) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Build the model in `dir`: Verilate the top and compile it with the driver, with
/// profile-guided optimisation (an instrumented compile, a training run, the final
/// compile); when that fails (e.g. a compiler without GCC's profile files), an ordinary
/// compile. Leaves the executable, its sources, Verilator's output ([BUILD_LOG]) and a note
/// of what was built.
fn build_in(
    dir: &Path,
    config: EngineConfig,
    verilog: &str,
    signals: Option<&str>,
    verilator: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("top.v"), verilog)?;
    std::fs::write(dir.join("rdbe_driver.cpp"), DRIVER_SOURCE)?;
    std::fs::write(dir.join("rdbe_perf.vlt"), PERF_CONFIG)?;
    if let Some(signals) = signals {
        std::fs::write(dir.join(SIGNALS_CONFIG), signals)?;
    }
    let guided = if signals.is_some() {
        Err(anyhow!("a model with public signals"))
    } else if profile_guided() {
        verilate(dir, PROFILE_GENERATE, false)
            .and_then(|_| train(dir, config))
            .and_then(|()| remove_objects(dir))
            .and_then(|()| verilate(dir, PROFILE_USE, false))
    } else {
        Err(anyhow!("{PGO_VARIABLE}=0"))
    };
    let (log, how) = match guided {
        Ok(log) => (
            log,
            format!("{} after a training run", PROFILE_USE.join(" ")),
        ),
        Err(e) => {
            let _ = std::fs::remove_dir_all(dir.join("obj_dir"));
            let log = verilate(dir, &[], signals.is_some())?;
            (log, format!("no profile-guided optimisation ({e:#})"))
        }
    };
    std::fs::write(dir.join(BUILD_LOG), log)?;
    std::fs::rename(dir.join("obj_dir").join(BINARY), dir.join(BINARY))
        .context("the Verilated executable")?;
    std::fs::remove_dir_all(dir.join("obj_dir"))?;
    std::fs::write(
        dir.join("BUILT_FROM.txt"),
        format!(
            "the {} RDBE top, Verilated by {verilator} with `verilator {}{} rdbe_perf.vlt{} \
             top.v rdbe_driver.cpp`, {how}\n",
            config_name(config),
            VERILATOR_ARGS.join(" "),
            if signals.is_some() {
                format!(" {}", SIGNALS_ARGS.join(" "))
            } else {
                String::new()
            },
            if signals.is_some() {
                format!(" {SIGNALS_CONFIG}")
            } else {
                String::new()
            },
        ),
    )?;
    Ok(())
}

/// One stream through the model.
struct DriverRun {
    /// The end-of-stream beat left within the cycle bound.
    done: bool,
    output: Vec<Beat>,
}

/// A pause in a stream: after the clock edge of this cycle (from 0), act on the model.
type Pause<'a> = (u64, &'a mut dyn FnMut(&mut Driver) -> Result<()>);

/// The driver process of one Verilated model.
struct Driver {
    child: Child,
    to: BufWriter<ChildStdin>,
    from: BufReader<ChildStdout>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// Rising clock edges since the model was created (the driver's count).
    cycles: u64,
    /// An I/O error happened: the process is of no further use.
    broken: bool,
    limits: Limits,
}

impl Driver {
    fn start(binary: &Path, limits: Limits) -> Result<Driver> {
        let mut child = Command::new(binary)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the Verilated model {}", binary.display()))?;
        let (Some(to), Some(from), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the Verilated model's pipes could not be set up");
        };
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let mut d = Driver {
            child,
            to: BufWriter::with_capacity(1 << 16, to),
            from: BufReader::with_capacity(1 << 16, from),
            stderr: Some(stderr),
            cycles: 0,
            broken: false,
            limits,
        };
        let hello = d.guard(|d| {
            let tag = d.u8()?;
            let version = d.u32()?;
            Ok((tag, version))
        })?;
        ensure!(
            hello == (b'H', PROTOCOL_VERSION),
            "{} is not an RDBE model driver of protocol {PROTOCOL_VERSION}",
            binary.display()
        );
        Ok(d)
    }

    /// Run one exchange; on failure the process is ended and its stderr joins the error.
    fn guard<R>(&mut self, f: impl FnOnce(&mut Driver) -> std::io::Result<R>) -> Result<R> {
        ensure!(!self.broken, "the Verilated model's process failed before");
        match f(self) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.broken = true;
                let _ = self.child.kill();
                let status = self.child.wait();
                let stderr = self
                    .stderr
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
                Err(anyhow!(
                    "the Verilated model's process failed ({e}; exit {}): {}",
                    status.map(|s| s.to_string()).unwrap_or_default(),
                    stderr.trim()
                ))
            }
        }
    }

    fn u8(&mut self) -> std::io::Result<u8> {
        let mut b = [0u8; 1];
        self.from.read_exact(&mut b)?;
        Ok(b[0])
    }
    fn u16(&mut self) -> std::io::Result<u16> {
        let mut b = [0u8; 2];
        self.from.read_exact(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn u32(&mut self) -> std::io::Result<u32> {
        let mut b = [0u8; 4];
        self.from.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> std::io::Result<u64> {
        let mut b = [0u8; 8];
        self.from.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// The reply's tag ('K' or, for a stream, 'T') and the cycle count after the request.
    fn reply_head(&mut self) -> std::io::Result<u8> {
        let tag = self.u8()?;
        self.reply_tail(tag)
    }

    /// As [Driver::reply_head] with the tag already read.
    fn reply_tail(&mut self, tag: u8) -> std::io::Result<u8> {
        if tag != b'K' && tag != b'T' {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected reply byte {tag:#04x}"),
            ));
        }
        self.cycles = self.u64()?;
        Ok(tag)
    }

    /// Stream `beats` at full rate (the source stops at `hm_stop`) until the end-of-stream
    /// beat leaves, for at most `max_cycles` cycles. If the stream still runs after the
    /// clock edge of its cycle `pause.0` (from 0), `pause.1` acts on the paused model
    /// ([Driver::peek_signal], [Driver::flip_bit]); its error is returned once the stream
    /// has finished.
    fn stream(
        &mut self,
        beats: &[Beat],
        max_cycles: u64,
        pause: Option<Pause<'_>>,
    ) -> Result<DriverRun> {
        let n = u32::try_from(beats.len())
            .map_err(|_| anyhow!("a stream of {} words is too long", beats.len()))?;
        let (pause_at, mut on_pause) = match pause {
            Some((cycle, f)) => (cycle, Some(f)),
            None => (u64::MAX, None),
        };
        let mut tag = self.guard(|d| {
            let mut request = Vec::with_capacity(21 + 4 * beats.len());
            request.push(b'S');
            request.extend(n.to_le_bytes());
            request.extend(max_cycles.to_le_bytes());
            request.extend(pause_at.to_le_bytes());
            for b in beats {
                request.extend(pack(b).to_le_bytes());
            }
            d.to.write_all(&request)?;
            d.to.flush()?;
            d.u8()
        })?;
        let mut paused = Ok(());
        if tag == b'P' {
            self.guard(|d| d.u64().map(|cycles| d.cycles = cycles))?;
            if let Some(f) = on_pause.as_mut() {
                paused = f(self);
            }
            tag = self.guard(|d| {
                d.to.write_all(b"c")?;
                d.to.flush()?;
                d.u8()
            })?;
        }
        let run = self.guard(|d| {
            let done = d.reply_tail(tag)? == b'K';
            let _stream_cycles = d.u64()?;
            let _taken = d.u32()?;
            let count = d.u32()? as usize;
            let mut raw = vec![0u8; 4 * count];
            d.from.read_exact(&mut raw)?;
            let output = raw
                .chunks_exact(4)
                .map(|c| unpack(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect();
            Ok(DriverRun { done, output })
        })?;
        paused.map(|()| run)
    }

    /// The answer to a request in a pause: `Ok(Err(message))` for the driver's 'E'.
    fn pause_reply(&mut self) -> std::io::Result<std::result::Result<(), String>> {
        match self.u8()? {
            b'K' => Ok(Ok(())),
            b'E' => {
                let length = self.u16()? as usize;
                let mut message = vec![0u8; length];
                self.from.read_exact(&mut message)?;
                Ok(Err(String::from_utf8_lossy(&message).into_owned()))
            }
            tag => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected reply byte {tag:#04x} in a pause"),
            )),
        }
    }

    fn write_name(&mut self, name: &str) -> std::io::Result<()> {
        let length = u16::try_from(name.len()).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "signal name too long")
        })?;
        self.to.write_all(&length.to_le_bytes())?;
        self.to.write_all(name.as_bytes())
    }

    /// In a pause: the value of the signal `name` (a hierarchical Verilog name, at most 64
    /// bits), on a [Model::Signals] model.
    fn peek_signal(&mut self, name: &str) -> Result<u64> {
        let reply = self.guard(|d| {
            d.to.write_all(b"g")?;
            d.write_name(name)?;
            d.to.flush()?;
            match d.pause_reply()? {
                Ok(()) => d.u64().map(Ok),
                Err(message) => Ok(Err(message)),
            }
        })?;
        reply.map_err(|message| anyhow!("reading {name}: {message}"))
    }

    /// In a pause: invert bit `bit` of word `index` of the array `name`.
    fn flip_bit(&mut self, name: &str, index: usize, bit: usize) -> Result<()> {
        let reply = self.guard(|d| {
            d.to.write_all(b"f")?;
            d.write_name(name)?;
            d.to.write_all(&(index as u32).to_le_bytes())?;
            d.to.write_all(&(bit as u32).to_le_bytes())?;
            d.to.flush()?;
            d.pause_reply()
        })?;
        reply.map_err(|message| anyhow!("writing {name}[{index}]: {message}"))
    }

    /// A fresh model, as at power-up.
    fn power_up(&mut self) -> Result<()> {
        self.guard(|d| {
            d.to.write_all(b"X")?;
            d.to.flush()?;
            d.reply_head().map(|_| ())
        })
    }
}

impl RegisterBus for Driver {
    type Error = anyhow::Error;
    fn write_registers(&mut self, writes: &[(u8, u16)]) -> Result<()> {
        self.guard(|d| {
            d.to.write_all(b"W")?;
            d.to.write_all(&(writes.len() as u32).to_le_bytes())?;
            for &(a, v) in writes {
                d.to.write_all(&[a])?;
                d.to.write_all(&v.to_le_bytes())?;
            }
            d.to.flush()?;
            d.reply_head().map(|_| ())
        })
    }
    fn read_registers(&mut self, addresses: &[u8]) -> Result<Vec<u16>> {
        self.guard(|d| {
            d.to.write_all(b"R")?;
            d.to.write_all(&(addresses.len() as u32).to_le_bytes())?;
            d.to.write_all(addresses)?;
            d.to.flush()?;
            d.reply_head()?;
            addresses.iter().map(|_| d.u16()).collect()
        })
    }
    fn idle_cycles(&mut self, cycles: u64) -> Result<()> {
        let n = u32::try_from(cycles).map_err(|_| anyhow!("{cycles} idle cycles at once"))?;
        self.guard(|d| {
            d.to.write_all(b"I")?;
            d.to.write_all(&n.to_le_bytes())?;
            d.to.flush()?;
            d.reply_head().map(|_| ())
        })
    }
    fn max_tuple_words(&self) -> usize {
        self.limits.max_tuple_words
    }
    fn tuple_memory_words(&self) -> usize {
        self.limits.tuple_memory_words
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.broken {
            let _ = self.to.write_all(b"Q");
            let _ = self.to.flush();
        }
        // The driver exits on 'Q' (or at the end of its input); give it a second, then end
        // it, so that no process is left behind and a stuck one cannot hang the caller.
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(h) = self.stderr.take() {
            let _ = h.join();
        }
    }
}

/// The Verilated RDBE top behind the [Engine] interface. The model is built (or found in
/// the cache) and its process started at the first step or clear; an error there (a
/// missing tool, a failed build) is returned by every later step.
pub struct VerilatorEngine {
    config: EngineConfig,
    limits: Limits,
    /// The PACE register's value.
    pace: u8,
    driver: Option<Driver>,
    /// Why the model could not be built or started.
    failure: Option<String>,
    /// The build cache; `None`: [cache_root].
    cache: Option<PathBuf>,
    /// An error of a `clear`, reported by the next step.
    pending: Option<anyhow::Error>,
    /// Tuples in U-memory after the last step (the STATUS read), for the cycle budget:
    /// the `rtl` backend reads the same count from the core's lines.
    u_tuples: usize,
    /// The fault injectors are armed (the last step had a fault): disarm before the next.
    fault_armed: bool,
    /// Which model to build and run.
    model: Model,
    /// The memories a memory-word fault can hit (taken from the Rust model of the top at
    /// the first such fault).
    sites: Vec<MemorySite>,
    /// Where memory-word faults struck ([Engine::take_memory_hits]).
    memory_hits: Vec<MemoryHit>,
}

/// Strike `fault` in the paused model: read the registers bounding each site's live words,
/// choose the word and line as the `rtl` backend does ([strike]) and invert that bit of the
/// memory's array.
fn strike_model(
    driver: &mut Driver,
    sites: &[MemorySite],
    fault: &MemoryFault,
) -> Result<Option<MemoryHit>> {
    let mut spans = Vec::with_capacity(sites.len());
    for site in sites {
        let mut range = site.range.clone();
        for register in range.registers_mut() {
            register.value = driver.peek_signal(&vpi_name(&format!("{}.q", register.path)))?;
        }
        let (first, count) = range.span();
        spans.push(LiveSpan {
            first,
            count,
            words: site.words,
            lines: site.lines,
        });
    }
    let Some(Strike {
        index,
        address,
        line,
    }) = strike(&spans, fault)
    else {
        return Ok(None);
    };
    let site = &sites[index];
    let bit = line as usize;
    let (array, lsb, _) = (site.arrays().into_iter())
        .find(|&(_, lsb, width)| (lsb..lsb + width).contains(&bit))
        .ok_or_else(|| anyhow!("{} stores no line {line}", site.name))?;
    driver.flip_bit(&vpi_name(&array), address, bit - lsb)?;
    Ok(Some(MemoryHit {
        memory: site.name.clone(),
        address,
        line,
    }))
}

impl VerilatorEngine {
    /// An engine whose model is built and started at its first use.
    pub fn new(config: EngineConfig, profile: Profile) -> VerilatorEngine {
        VerilatorEngine {
            config,
            limits: Limits::of(config),
            pace: profile.pace(),
            driver: None,
            failure: None,
            cache: None,
            pending: None,
            u_tuples: 0,
            fault_armed: false,
            model: Model::Fast,
            sites: vec![],
            memory_hits: vec![],
        }
    }

    /// Run the [Model::Signals] model, which memory-word faults ([StepFault::Memory]) can
    /// reach.
    pub fn with_memory_access(mut self) -> VerilatorEngine {
        self.model = Model::Signals;
        self
    }

    /// Keep the built model in `dir` instead of [cache_root].
    pub fn with_cache_dir(mut self, dir: &Path) -> VerilatorEngine {
        self.cache = Some(dir.to_path_buf());
        self
    }

    /// Build (when not cached) and start the model now rather than at the first step.
    pub fn started(mut self) -> Result<VerilatorEngine> {
        self.driver()?;
        Ok(self)
    }

    fn driver(&mut self) -> Result<&mut Driver> {
        if let Some(f) = &self.failure {
            bail!("{f}");
        }
        if self.driver.as_ref().map(|d| d.broken).unwrap_or(true) {
            self.driver = None;
            self.u_tuples = 0;
            self.fault_armed = false;
            let binary = match &self.cache {
                Some(dir) => model_binary_in(dir, self.config, self.model),
                None => model_binary(self.config, self.model),
            };
            let started = binary.and_then(|binary| Driver::start(&binary, self.limits));
            match started {
                Ok(d) => self.driver = Some(d),
                Err(e) => {
                    let message = format!("{e:#}");
                    self.failure = Some(message.clone());
                    bail!("{message}");
                }
            }
        }
        self.driver
            .as_mut()
            .ok_or_else(|| anyhow!("the Verilated model is not running"))
    }
}

impl Engine for VerilatorEngine {
    fn limits(&self) -> Limits {
        self.limits
    }
    fn backend_name(&self) -> &'static str {
        crate::sort_job::Backend::Verilator.name()
    }
    fn step(
        &mut self,
        sort: &PipelineSettings,
        merge: &MergerConfig,
        input: &[Beat],
        fault: Option<StepFault>,
    ) -> Result<StepOutput> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        ensure!(
            input.last().map(|b| b.eos).unwrap_or(false),
            "the input stream must end with an end-of-stream beat"
        );
        let memory_fault = match fault {
            Some(StepFault::Memory(f)) => Some(f),
            _ => None,
        };
        if memory_fault.is_some() {
            ensure!(
                self.model == Model::Signals,
                "this Verilated model cannot reach its memories: memory-word faults need \
                 the model with public signals (VerilatorEngine::with_memory_access) or the \
                 rtl backend"
            );
            if self.sites.is_empty() {
                self.sites = memory_sites_of(self.config);
            }
        }
        let (hm, stream_fault) = StepFault::split(fault, self.pace);
        let budget = crate::engine::step_budget(merge, input.len(), self.u_tuples, self.pace);
        // Start the model first: a fresh one has its injectors disarmed.
        self.driver()?;
        let disarm = self.fault_armed;
        self.fault_armed = stream_fault.is_some();
        // The fields apart, so that a memory fault's pause can use the sites and the hits.
        let driver =
            (self.driver.as_mut()).ok_or_else(|| anyhow!("the Verilated model is not running"))?;
        let start = driver.cycles;
        configure_bus(driver, sort, merge, hm)?;
        if stream_fault.is_some() || disarm {
            driver.write_registers(&inject_writes(stream_fault))?;
        }
        let hits_before = self.memory_hits.len();
        let run = match memory_fault {
            Some(f) => {
                let sites = &self.sites;
                let hits = &mut self.memory_hits;
                let mut on_pause = |d: &mut Driver| -> Result<()> {
                    hits.extend(strike_model(d, sites, &f)?);
                    Ok(())
                };
                driver.stream(input, budget, Some((f.cycle, &mut on_pause)))
            }
            None => driver.stream(input, budget, None),
        }?;
        let struck = self.memory_hits.len() > hits_before;
        if !run.done {
            // The injectors' flag is read before the core is replaced (over the bus, which
            // works whatever the streams do).
            let hit =
                struck || (stream_fault.is_some() && status_over_bus(driver)?.0.fault_injected);
            // The core is in an unknown state: start a fresh one, as the rtl backend does.
            driver.power_up()?;
            self.u_tuples = 0;
            self.fault_armed = false;
            return Err(EngineFault::hang(merge.command.name(), budget, hit).into());
        }
        let (tuples, dup) = split_tuples_with_dup(&run.output).into_iter().unzip();
        let (status, _tuples_output) = status_over_bus(driver)?;
        let cycles = driver.cycles - start;
        self.u_tuples = status.u_tuples;
        Ok(StepOutput {
            tuples,
            dup,
            cycles,
            status,
            memory_fault_hit: struck,
        })
    }
    fn take_memory_hits(&mut self) -> Vec<MemoryHit> {
        std::mem::take(&mut self.memory_hits)
    }
    fn reset(&mut self) {
        let reset = self.driver().and_then(|d| d.power_up());
        match reset {
            Ok(()) => {
                self.u_tuples = 0;
                self.fault_armed = false;
            }
            Err(e) => {
                if self.pending.is_none() {
                    self.pending = Some(e.context("resetting the engine"));
                }
            }
        }
    }
    fn clear(&mut self) {
        let cleared = self.driver().and_then(clear_over_bus);
        match cleared {
            Ok(()) => self.u_tuples = 0,
            Err(e) => {
                if self.pending.is_none() {
                    self.pending = Some(e.context("clearing the engine"));
                }
            }
        }
    }
}

/// Simulation speed of the Verilated RDBE top: a PASS-1 of `tuples` random 4-word tuples
/// with the sorter on (so every cell works; relations beyond its capacity leave as sorted
/// strings), at full rate, on the model in the default cache ([cache_root]). Returns
/// (cycles, seconds) of that step alone: the build and the process start are not timed.
pub fn measure_cycles_per_second(config: EngineConfig, tuples: usize) -> Result<(u64, f64)> {
    measure_cycles_per_second_with(VerilatorEngine::new(config, Profile::Modern), tuples)
}

/// As [measure_cycles_per_second] on a given engine (e.g. with its own cache directory).
pub fn measure_cycles_per_second_with(
    engine: VerilatorEngine,
    tuples: usize,
) -> Result<(u64, f64)> {
    let mut engine = engine.started()?;
    crate::engine::pass1(&mut engine, tuples)
}
