//! `rdbe`: run the Delta RDBE's engine core in simulation.
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rdbe_sim::join_job::{join_relations, JoinSpec};
use rdbe_sim::relation::{FieldType, Relation, Schema, Value};
use rdbe_sim::sort_job::{group_sizes, sort_relation, Backend, EngineConfig, SortKey, SortSpec};
use rdbe_sim::{bench, demo_data, verilog_export};
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
    /// Sort the lecture's photos relation and run the access-log `sort | uniq -c | sort -rn`
    /// pipeline through the RTL sort pipeline; print the results and write a VCD.
    Demo {
        /// Where to write the waveform of the photos sort.
        #[arg(long, default_value = "rdbe-demo.vcd")]
        vcd: PathBuf,
        #[arg(long, value_enum, default_value_t = EngineConfig::Delta)]
        config: EngineConfig,
        #[arg(long, value_enum, default_value_t = Backend::Rtl)]
        backend: Backend,
    },
    /// Write the Verilog of every module built so far, one file per module.
    Verilog {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = EngineConfig::Delta)]
        config: EngineConfig,
    },
    /// Measure cycles per word, sort cycles and simulation speed; the last line is JSON.
    Bench {
        /// Measure simulation speed on a shorter run.
        #[arg(long)]
        quick: bool,
    },
}

fn print_sorted(title: &str, r: &Relation, dup: &[bool], cycles: u64) {
    println!("== {title} ({cycles} engine cycles)");
    let table = r.to_table();
    for (i, line) in table.lines().enumerate() {
        // Lines 0-2 are the title, header and rule; then one line per tuple.
        let mark = if i >= 3 && dup.get(i - 3).copied().unwrap_or(false) {
            " DP"
        } else {
            ""
        };
        println!("{line}{mark}");
    }
    println!();
}

fn demo(vcd: PathBuf, config: EngineConfig, backend: Backend) -> Result<()> {
    let photos = demo_data::photos(24, 1)?;
    let by_user = SortSpec {
        key: SortKey::Field("user_id".into()),
        descending: false,
    };
    let vcd_arg = if backend == Backend::Rtl {
        Some(vcd.as_path())
    } else {
        None
    };
    let sorted = sort_relation(config, backend, &photos, &by_user, vcd_arg)?;
    print_sorted(
        "photos sorted by user_id (nulls last; DP: same user as the next tuple)",
        &sorted.relation,
        &sorted.dup,
        sorted.cycles,
    );

    // The lecture's users/photos join, on the whole engine core: users loaded into
    // U-memory (LOAD), photos streamed through JOIN-EQ, both projected by the output
    // control part.
    let users = demo_data::users(3)?;
    let join = JoinSpec {
        left_key: "user_id".into(),
        right_key: "user_id".into(),
        left_fields: vec!["account_name".into(), "photos_total".into()],
        right_fields: vec!["photo_id".into(), "user_id".into(), "path".into()],
    };
    let joined = join_relations(config, backend, &users, &photos, &join)?;
    println!(
        "== users JOIN photos ON user_id, projected ({} pairs, {} engine cycles)",
        joined.relation.tuples.len(),
        joined.cycles
    );
    print!("{}", joined.relation.to_table());
    println!();

    // The lecture's pipeline: cat access.log | sort | uniq -c | sort -rn | head -5
    let log = demo_data::access_log(300, 2)?;
    let by_path = SortSpec {
        key: SortKey::WholeTuple,
        descending: false,
    };
    let sorted_log = sort_relation(config, backend, &log, &by_path, None)?;
    // uniq -c: the sorting checker's DP line marks group boundaries; the CPU counts.
    let counts_schema = Schema::new(&[("count", FieldType::U32), ("path", FieldType::Char(16))])?;
    let counts: Vec<Vec<Value>> = group_sizes(&sorted_log.dup)
        .into_iter()
        .map(|(start, len)| {
            vec![
                Value::Unsigned(len as u64),
                sorted_log.relation.tuples[start][0].clone(),
            ]
        })
        .collect();
    let counts = Relation::new("path_counts", counts_schema, counts)?;
    let by_count = SortSpec {
        key: SortKey::Field("count".into()),
        descending: true,
    };
    let ranked = sort_relation(config, backend, &counts, &by_count, None)?;
    let top5 = Relation {
        tuples: ranked.relation.tuples[..5.min(ranked.relation.tuples.len())].to_vec(),
        ..ranked.relation.clone()
    };
    println!(
        "== access log: sort | uniq -c | sort -rn | head -5 ({} lines, {} + {} engine cycles)",
        log.tuples.len(),
        sorted_log.cycles,
        ranked.cycles
    );
    print!("{}", top5.to_table());
    if backend == Backend::Rtl {
        println!("\nwaveform of the photos sort: {}", vcd.display());
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo {
            vcd,
            config,
            backend,
        } => demo(vcd, config, backend),
        Command::Verilog { out, config } => {
            let files = verilog_export::write_all(config, &out)
                .with_context(|| format!("writing Verilog to {}", out.display()))?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(())
        }
        Command::Bench { quick } => {
            let figures = bench::run(quick, |what| eprintln!("measuring: {what}"))?;
            println!("{}", bench::report(&figures));
            Ok(())
        }
    }
}
