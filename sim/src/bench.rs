//! `rdbe bench`: the figures of `docs/PERFORMANCE.md`, measured on the rust-hdl simulation.
//! Every number comes from a run made here; nothing is computed from formulas.
use anyhow::{ensure, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rdbe_rtl::harness::{random_relation, Harness, Pacing, RelationShape, StreamRun};
use rdbe_rtl::merger::{MergerCommand, MergerConfig, MergerDelta, MergerSettings};
use rdbe_rtl::output_control_part::{OutputSettings, SideFormat};
use rdbe_rtl::sorter::model::block_sort;
use rdbe_rtl::sorter::{DeltaSorter, SortSettings};
use rdbe_rtl::sorting_cell::model::sorting_cell_model;
use rdbe_rtl::sorting_cell::SortingCell;
use rdbe_rtl::tuple_stream::{from_beats, split_tuples, to_beats, StreamTuple};
use serde_json::json;
use std::time::Instant;

/// One measured figure.
pub struct Figure {
    pub key: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub what: String,
}

/// Cycles from the first input word accepted to the last data word leaving.
fn first_in_to_last_out(run: &StreamRun) -> u64 {
    let last_data = run.output_cycles[run.output_cycles.len() - 2];
    last_data - run.input_cycles[0] + 1
}

/// Steady-state cycles per output word of one cell: the span between the first and the
/// last output data word, divided by the words.
fn cell_cycles_per_word<const A: usize, const P: usize>(
    run_in: usize,
    tuples: usize,
    seed: u64,
) -> Result<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shape = RelationShape {
        tuples,
        tuple_words: 8,
        key_words: 8,
        null_probability: 0.0,
        key_domain: 1 << 16,
    };
    let input = random_relation(&mut rng, shape);
    let mut h = Harness::new(SortingCell::<A, P>::default());
    h.uut.tuple_words.next = 8.into();
    h.uut.key_words.next = 8.into();
    h.uut.descending.next = false;
    h.uut.sort_enable.next = true;
    h.uut.run_in.next = (run_in as u64).into();
    let run = h.run_stream(&to_beats(&input), Pacing::FULL_RATE, 100 * tuples as u64);
    let out = from_beats(&run.output, 8).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(
        out == sorting_cell_model(&input, run_in, 8, false),
        "cell output differs from the model"
    );
    let span = run.output_cycles[run.output_cycles.len() - 2] - run.output_cycles[0] + 1;
    Ok(span as f64 / (tuples * 8) as f64)
}

/// Sort `tuples` 16-byte tuples in the Delta sorter; returns (cycles first word in to last
/// word out, total simulated cycles, wall seconds).
fn delta_sort(tuples: usize, seed: u64) -> Result<(u64, u64, f64, u64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shape = RelationShape {
        tuples,
        tuple_words: 8,
        key_words: 8,
        null_probability: 0.0,
        key_domain: 1 << 16,
    };
    let input: Vec<StreamTuple> = random_relation(&mut rng, shape);
    let s = SortSettings {
        tuple_words: 8,
        key_words: 8,
        descending: false,
        sort_enable: true,
        tuples_hint: tuples,
    };
    let mut h = Harness::new(DeltaSorter::default());
    h.uut.apply(&s);
    let start_cycles = h.cycles;
    let start_passes = h.passes;
    let t0 = Instant::now();
    let run = h.run_stream(
        &to_beats(&input),
        Pacing::FULL_RATE,
        50 * tuples as u64 + 10_000,
    );
    let wall = t0.elapsed().as_secs_f64();
    let out = from_beats(&run.output, 8).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(
        out == block_sort(4096, &s, &input),
        "sorter output differs from the model"
    );
    Ok((
        first_in_to_last_out(&run),
        h.cycles - start_cycles,
        wall,
        h.passes - start_passes,
    ))
}

/// Steady-state cycles per output word of the Delta merger at full rate: U is loaded
/// first (not timed), then L streams in; the span from the first to the last output data
/// word over the output words.
fn merger_cycles_per_word(
    command: MergerCommand,
    u: &[StreamTuple],
    l: &[StreamTuple],
) -> Result<(f64, usize)> {
    let f = SideFormat::unrotated(8);
    let load = MergerConfig {
        command: MergerCommand::Load,
        delete: false,
        settings: MergerSettings::ascending(1),
        tuple_words: 8,
        output: OutputSettings::both(f),
    };
    let mut h = Harness::new(MergerDelta::default());
    load.apply(&mut h.uut)?;
    h.run_stream(
        &to_beats(u),
        Pacing::FULL_RATE,
        20 * (u.len() as u64 * 8) + 1000,
    );
    let cfg = MergerConfig { command, ..load };
    cfg.apply(&mut h.uut)?;
    let run = h.run_stream(
        &to_beats(l),
        Pacing::FULL_RATE,
        20 * ((u.len() + l.len()) as u64 * 16) + 1000,
    );
    ensure!(
        split_tuples(&run.output) == cfg.model(u, l)?,
        "{}: the merger's output differs from the model",
        command.name()
    );
    let words = run.output.len() - 1;
    let span = run.output_cycles[words - 1] - run.output_cycles[0] + 1;
    Ok((span as f64 / words as f64, words))
}

fn keyed(keys: impl Iterator<Item = u16>) -> Vec<StreamTuple> {
    keys.map(|k| StreamTuple::new(vec![k, 1, 2, 3, 4, 5, 6, 0], false))
        .collect()
}

/// Run every benchmark. `quick` uses a 512-tuple sort for the simulation-speed figure only;
/// the named 4096-tuple figure is always measured in full.
pub fn run(quick: bool, progress: impl Fn(&str)) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    progress("sorting cell, steady state (Delta cell 1 and cell 6, L = 16 B)");
    let cell1 = cell_cycles_per_word::<3, 4>(1, 2000, 1)?;
    let cell6 = cell_cycles_per_word::<8, 9>(32, 2048, 2)?;
    figures.push(Figure {
        key: "cell_cycles_per_word",
        value: cell1.max(cell6),
        unit: "cycles/word",
        what: format!("worst of Delta cell 1 ({cell1:.4}) and cell 6 ({cell6:.4}); target <= 1.125, 1984 cell: 3"),
    });
    progress("Delta sorter, 4096 x 16-byte tuples");
    let (cycles, total, wall, passes) = delta_sort(4096, 3)?;
    figures.push(Figure {
        key: "sorter_cycles_4096x16",
        value: cycles as f64,
        unit: "cycles",
        what: format!(
            "first word in to last word out; {} words in, so {:.3} cycles/word",
            4096 * 8,
            cycles as f64 / 32768.0
        ),
    });
    let (sim_cycles, sim_wall) = if quick {
        let (_, c, w, _) = delta_sort(512, 4)?;
        (c, w)
    } else {
        (total, wall)
    };
    figures.push(Figure {
        key: "sim_cycles_per_s",
        value: (sim_cycles as f64 / sim_wall).round(),
        unit: "cycles/s",
        what: format!("rust-hdl simulation of the 12-cell Delta sorter, {sim_cycles} cycles in {sim_wall:.2} s (single thread)"),
    });
    let rom = rdbe_rtl::control_rom::contents();
    let widest = rom.iter().copied().max().unwrap_or(0);
    figures.push(Figure {
        key: "control_rom_words",
        value: rom.len() as f64,
        unit: "words",
        what: "merger control ROM generated from the rule table (paper: 1K words)".into(),
    });
    figures.push(Figure {
        key: "control_rom_bits",
        value: (16 - widest.leading_zeros()) as f64,
        unit: "bits",
        what: "widest ROM word actually used (paper: 10 bits)".into(),
    });
    progress("Delta merger: SORT-EX, JOIN-EQ 1:1, REST-EQ (16-byte tuples)");
    let (sort_ex, w) = merger_cycles_per_word(
        MergerCommand::SortEx,
        &keyed((0..1024).map(|i| 2 * i)),
        &keyed((0..1024).map(|i| 2 * i + 1)),
    )?;
    figures.push(Figure {
        key: "merger_cycles_per_word_sort_ex",
        value: sort_ex,
        unit: "cycles/word",
        what: format!("SORT-EX of two interleaved 1024-tuple runs, {w} output words; target 1"),
    });
    let (join_eq, w) =
        merger_cycles_per_word(MergerCommand::JoinEq, &keyed(0..1024), &keyed(0..1024))?;
    figures.push(Figure {
        key: "merger_cycles_per_word_join_eq",
        value: join_eq,
        unit: "cycles/word",
        what: format!("JOIN-EQ of two 1024-tuple relations, keys 1:1, {w} output words (15-word pairs); target 1"),
    });
    let (rest_eq, w) = merger_cycles_per_word(
        MergerCommand::RestEq,
        &keyed((0..64).map(|i| 3 * i)),
        &keyed((0..2048).map(|i| 3 * (i / 32))),
    )?;
    figures.push(Figure {
        key: "merger_cycles_per_word_rest_eq",
        value: rest_eq,
        unit: "cycles/word",
        what: format!(
            "REST-EQ, 64 condition values, 2048 tuples all selected, {w} output words; target 1"
        ),
    });
    figures.push(Figure {
        key: "sim_passes_per_cycle",
        value: passes as f64 / total as f64,
        unit: "passes",
        what: "whole-design settling passes per simulated clock (what the simulation speed depends on)".into(),
    });
    Ok(figures)
}

/// The table, and as its last line one JSON object with every figure.
pub fn report(figures: &[Figure]) -> String {
    let mut out = format!(
        "{:<32} {:>14} {:<12} {}\n",
        "figure", "value", "unit", "how"
    );
    for f in figures {
        out += &format!(
            "{:<32} {:>14.4} {:<12} {}\n",
            f.key, f.value, f.unit, f.what
        );
    }
    let mut obj = serde_json::Map::new();
    for f in figures {
        obj.insert(f.key.to_string(), json!(f.value));
    }
    out += &serde_json::Value::Object(obj).to_string();
    out
}
