//! `rdbe`: run the Delta RDBE's engine core in simulation.
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rdbe_sim::command::parse_script;
use rdbe_sim::control_program::{ControlProgram, PAGE_BYTES};
use rdbe_sim::engine::{new_engine, Profile};
use rdbe_sim::relation::{Relation, HM_CAPACITY_PAGES};
use rdbe_sim::run::{run, summary, RunOptions};
use rdbe_sim::sort_job::{Backend, EngineConfig};
use rdbe_sim::{bench, demo_data, faults, synth, verilog_export};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "rdbe",
    version,
    about = "Delta Relational Database Engine (ICOT TR-063, 1984) in rust-hdl"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The lecture's photos/users/cameras query (join, restrict, project) and its access-log
    /// `sort | uniq -c | sort -rn | head -5` pipeline, as Delta commands on the engine core;
    /// prints the results and writes a VCD of the first join and an SVG picture of its
    /// stream ports.
    Demo {
        /// Where to write the waveform of the first join; its SVG picture goes next to it
        /// (same name, `.svg`).
        #[arg(long, default_value = "rdbe-demo.vcd")]
        vcd: PathBuf,
        #[arg(long, value_enum, default_value_t = EngineConfig::Delta)]
        config: EngineConfig,
        #[arg(long, value_enum, default_value_t = Backend::Rtl)]
        backend: Backend,
    },
    /// Run a Delta command script on the CSV relations of a directory; write each named
    /// result as CSV (all or nothing) and print what each command cost.
    Run {
        /// The command script (grammar: docs/COMMANDS.md).
        script: PathBuf,
        /// Directory of input relations, one `<name>.csv` each with a typed header.
        #[arg(long)]
        data: PathBuf,
        /// Directory for the results.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = Backend::Rtl)]
        backend: Backend,
        #[arg(long, value_enum, default_value_t = EngineConfig::Delta)]
        config: EngineConfig,
        /// `delta1984` paces the HM adapters to 3 MB/s at a 220 ns cycle.
        #[arg(long, value_enum, default_value_t = Profile::Modern)]
        profile: Profile,
        /// Trace every engine-core signal into this VCD file (rtl backend).
        #[arg(long)]
        vcd: Option<PathBuf>,
        /// The HM's capacity in pages of 4096 bytes, shared by the input relations and the
        /// results [default: the environment variable RDBE_HM_PAGES, else 32768 (128 MB)]
        #[arg(long, value_name = "N", value_parser = parse_hm_pages, allow_negative_numbers = true)]
        hm_pages: Option<usize>,
    },
    /// Write the Verilog of every module built so far, one file per module.
    Verilog {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = EngineConfig::Delta)]
        config: EngineConfig,
    },
    /// Synthesise (yosys), place and route (nextpnr) and pack a bitstream of one top for an
    /// FPGA; print LUTs, flip-flops, block RAMs and Fmax (the last line is JSON). Targets:
    /// hx8k (iCE40HX8K ct256, default 50 MHz), up5k (iCE40UP5K sg48, 25 MHz), ecp5-85
    /// (LFE5U-85F CABGA381 speed 6, 100 MHz).
    Synth {
        #[arg(long, value_enum)]
        target: synth::Target,
        #[arg(long, value_enum, default_value_t = EngineConfig::Small)]
        config: EngineConfig,
        /// `core` (engine core), `rdbe` (register-bus top with the HM adapters) or any
        /// module `rdbe verilog` writes (e.g. `sorting_cell_first`).
        #[arg(long, default_value = "rdbe")]
        top: synth::SynthTop,
        /// Results go to `OUT/<target>-<config>-<top>/`.
        #[arg(long, default_value = "rdbe-synth")]
        out: PathBuf,
        /// Requested clock frequency in MHz (default: the target's, above).
        #[arg(long)]
        freq: Option<f64>,
        /// Map LUTs with yosys' timing-driven ABC9 flow (`synth_ice40 -abc9`); off by
        /// default (yosys 0.23 calls it experimental).
        #[arg(long)]
        abc9: bool,
        /// nextpnr's placement seed (default: nextpnr's own). The same netlist placed with
        /// other seeds shows how much of an Fmax is placement.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Measure cycles per word, sort cycles, simulation speed and the recorded Fmax; the
    /// last line is JSON (keys: docs/PERFORMANCE.md).
    Bench(bench::BenchOptions),
    /// Fault-injection campaign: single transient faults on the engine core's streams
    /// (masked / recovered by retry / reported / silent), then stuck-at lines against the
    /// power-up self check; the last line is JSON (docs/RELIABILITY.md).
    Faults(faults::FaultOptions),
}

/// The lecture's query and pipeline as Delta commands.
const DEMO_SCRIPT: &str = "\
pu = JOIN users, photos ON users.user_id = photos.user_id PROJECT account_name, photo_id, path, camera_id
mine = RESTRICT pu WHERE account_name = 'ckaestne' PROJECT photo_id, path, camera_id
shots = JOIN cameras, mine ON cameras.camera_id = mine.camera_id PROJECT path, manufacturer, print_name
hits = AGGREGATE log BY path COMPUTE count(*) AS hits
ranked = SORT hits BY hits DESC
";

fn demo(vcd: PathBuf, config: EngineConfig, backend: Backend) -> Result<()> {
    let relations = vec![
        demo_data::users(3)?,
        demo_data::photos(40, 4)?,
        demo_data::cameras()?,
        Relation {
            name: "log".into(),
            ..demo_data::access_log(300, 2)?
        },
    ];
    let mut cp = ControlProgram::new(
        new_engine(config, backend, Profile::Modern),
        Profile::Modern,
    )?;
    // Trace the first command (the join) when simulating the RTL.
    let statements = parse_script("demo", DEMO_SCRIPT)?;
    for r in relations {
        cp.hm.store(&r)?;
    }
    println!("Delta RDBE demo on the {backend:?} backend, {config:?} configuration\n");
    for (i, s) in statements.iter().enumerate() {
        let tracing = i == 0 && backend == Backend::Rtl;
        if tracing {
            cp.engine().trace_to(&vcd)?;
        }
        let report = cp.execute(s);
        if tracing {
            cp.engine().finish_trace(report.is_ok())?;
        }
        let report = report?;
        println!(
            "== line {}: {} ({} engine steps, {} cycles)",
            s.line,
            DEMO_SCRIPT.lines().nth(i).unwrap_or(""),
            report.steps,
            report.cycles
        );
        for p in &report.plan {
            println!("   {p}");
        }
        let r = &cp.hm.relation(&s.target)?;
        let shown = Relation {
            tuples: r.tuples[..r
                .tuples
                .len()
                .min(if s.target == "ranked" { 5 } else { 12 })]
                .to_vec(),
            ..r.clone()
        };
        print!("{}", shown.to_table());
        if shown.tuples.len() < r.tuples.len() {
            println!("   … {} tuples in all", r.tuples.len());
        }
        println!();
    }
    if backend == Backend::Rtl {
        println!(
            "waveform of the first join (the whole RDBE: HM adapters, engine core, register bus): {}",
            vcd.display()
        );
        // A picture of its top-level stream ports, next to the VCD.
        let mut svg = vcd.with_extension("svg");
        if svg == vcd {
            svg = vcd.with_extension("svg.svg");
        }
        rdbe_sim::waveform::render_stream_ports(&vcd, &svg)
            .with_context(|| format!("drawing the waveform of {}", vcd.display()))?;
        println!(
            "picture of its stream ports (first words in, first results out): {}",
            svg.display()
        );
        // The Verilog of what ran: every module of this configuration, the RDBE top too.
        let dir = vcd.with_file_name(format!(
            "{}-verilog",
            vcd.file_stem().unwrap_or_default().to_string_lossy()
        ));
        let files = rdbe_sim::verilog_export::write_all(config, &dir)
            .with_context(|| format!("writing Verilog to {}", dir.display()))?;
        println!(
            "Verilog ({} modules, top `rdbe`): {}",
            files.len(),
            dir.display()
        );
    }
    Ok(())
}

/// `--hm-pages` (and `RDBE_HM_PAGES`): a positive whole number of pages.
fn parse_hm_pages(v: &str) -> std::result::Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(pages) if pages > 0 => Ok(pages),
        _ => Err(format!(
            "not a positive whole number of HM pages (of {PAGE_BYTES} bytes)"
        )),
    }
}

/// The HM capacity of `rdbe run`, in pages: `--hm-pages`, else the environment variable
/// `RDBE_HM_PAGES`, else [HM_CAPACITY_PAGES] (128 MB). Resolved here, once: the library
/// takes it as [RunOptions::hm_pages].
fn hm_pages(flag: Option<usize>) -> Result<usize> {
    if let Some(pages) = flag {
        return Ok(pages);
    }
    match std::env::var("RDBE_HM_PAGES") {
        Err(std::env::VarError::NotPresent) => Ok(HM_CAPACITY_PAGES),
        Ok(v) => parse_hm_pages(&v).map_err(|_| {
            anyhow::anyhow!(
                "the environment variable RDBE_HM_PAGES is '{v}', not a positive whole \
                 number of HM pages (--hm-pages overrides it)"
            )
        }),
        Err(e) => anyhow::bail!("the environment variable RDBE_HM_PAGES: {e}"),
    }
}

/// Errors go to stderr as one line, `error: ` and the chain of causes (`file: line 3,
/// column 7: …`), without a backtrace, and the exit code is 1 (clap's usage errors: 2).
fn main() {
    if let Err(e) = cli_main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn cli_main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo {
            vcd,
            config,
            backend,
        } => demo(vcd, config, backend),
        Command::Run {
            script,
            data,
            out,
            backend,
            config,
            profile,
            vcd,
            hm_pages: flag,
        } => {
            let opts = RunOptions {
                script,
                data,
                out,
                backend,
                config,
                profile,
                vcd,
                progress: true,
                hm_pages: hm_pages(flag)?,
            };
            let (reports, files) = run(&opts)?;
            print!("{}", summary(&reports, profile));
            for f in files {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
        Command::Verilog { out, config } => {
            let files = verilog_export::write_all(config, &out)
                .with_context(|| format!("writing Verilog to {}", out.display()))?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(())
        }
        Command::Synth {
            target,
            config,
            top,
            out,
            freq,
            abc9,
            seed,
        } => {
            let opts = synth::SynthOptions {
                target,
                config,
                top,
                out,
                freq,
                abc9,
                seed,
            };
            let result = synth::run(&opts, |what| eprintln!("{what}"))?;
            print!("{}", result.table());
            println!("{}", result.to_json());
            Ok(())
        }
        Command::Faults(opts) => {
            let bar = indicatif::ProgressBar::new((opts.count + opts.memory_count) as u64);
            let result = faults::run_campaign(&opts, |n| bar.set_position(n as u64))?;
            bar.finish_and_clear();
            print!("{}", result.table());
            println!("{}", result.to_json());
            Ok(())
        }
        Command::Bench(opts) => {
            println!(
                "{}",
                bench::run_cli(&opts, |what| eprintln!("measuring: {what}"))?
            );
            Ok(())
        }
    }
}
