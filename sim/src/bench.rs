//! `rdbe bench`: the figures of `docs/PERFORMANCE.md`, measured on the rust-hdl simulation.
//! Every number comes from a run made here; nothing is computed from formulas.
use anyhow::{ensure, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rdbe_rtl::harness::{random_relation, Harness, Pacing, RelationShape, StreamRun};
use rdbe_rtl::merger::{MergerCommand, MergerConfig, MergerDelta, MergerSettings};
use rdbe_rtl::output_control_part::{OutputSettings, SideFormat};
use rdbe_rtl::sorter::model::block_sort;
use rdbe_rtl::sorter::{DeltaSorter, SortSettings, DELTA_SPARE_MEMORY};
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

/// `tuples` random 16-byte tuples (the whole tuple as key, 16-bit words) from `seed`.
pub fn random_16_byte_tuples(tuples: usize, seed: u64) -> Vec<StreamTuple> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shape = RelationShape {
        tuples,
        tuple_words: 8,
        key_words: 8,
        null_probability: 0.0,
        key_domain: 1 << 16,
    };
    random_relation(&mut rng, shape)
}

/// One sorting cell at full rate on 16-byte tuples (the whole tuple as key, ascending),
/// strings of `run_in` tuples in: its output is checked against the model, and the
/// cycles from the first to the last data word accepted, and leaving, are returned over
/// the words (in, out).
pub fn cell_stream_rates<const A: usize, const P: usize>(
    cell: SortingCell<A, P>,
    run_in: usize,
    input: &[StreamTuple],
) -> Result<(f64, f64)> {
    let mut h = Harness::new(cell);
    h.uut.tuple_words.next = 8.into();
    h.uut.key_words.next = 8.into();
    h.uut.descending.next = false;
    h.uut.sort_enable.next = true;
    h.uut.run_in.next = (run_in as u64).into();
    let run = h.run_stream(
        &to_beats(input),
        Pacing::FULL_RATE,
        100 * input.len() as u64,
    );
    let out = from_beats(&run.output, 8).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(
        out == sorting_cell_model(input, run_in, 8, false),
        "cell output differs from the model"
    );
    let words = (input.len() * 8) as f64;
    // The last beat each way is the end-of-stream beat.
    let span = |cycles: &[u64]| (cycles[cycles.len() - 2] - cycles[0] + 1) as f64 / words;
    Ok((span(&run.input_cycles), span(&run.output_cycles)))
}

/// Steady-state cycles per output word of one cell: the span between the first and the
/// last output data word, divided by the words.
fn cell_cycles_per_word<const A: usize, const P: usize>(
    cell: SortingCell<A, P>,
    run_in: usize,
    tuples: usize,
    seed: u64,
) -> Result<f64> {
    let input = random_16_byte_tuples(tuples, seed);
    Ok(cell_stream_rates(cell, run_in, &input)?.1)
}

/// Sort `tuples` 16-byte tuples in the Delta sorter.
/// What one sort of the Delta sorter measured.
struct DeltaSort {
    /// Cycles from the first word accepted to the last data word leaving (fill and drain).
    first_in_to_last_out: u64,
    /// Cycles from the first to the last data word accepted: the rate the sorter takes a
    /// relation in.
    input_span: u64,
    /// Cycles from the first to the last data word leaving: the rate it gives it out.
    output_span: u64,
    /// Data words in (and out).
    words: u64,
    /// Simulated cycles of the whole run, its wall-clock seconds and settling passes.
    total_cycles: u64,
    wall: f64,
    passes: u64,
}

fn delta_sort(tuples: usize, seed: u64) -> Result<DeltaSort> {
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
    let words = input.iter().map(|t| t.words.len()).sum::<usize>();
    // The last beat each way is the end-of-stream beat.
    let data_in = &run.input_cycles[..run.input_cycles.len() - 1];
    let data_out = &run.output_cycles[..run.output_cycles.len() - 1];
    ensure!(data_in.len() == words && data_out.len() == words);
    Ok(DeltaSort {
        first_in_to_last_out: first_in_to_last_out(&run),
        input_span: data_in[words - 1] - data_in[0] + 1,
        output_span: data_out[words - 1] - data_out[0] + 1,
        words: words as u64,
        total_cycles: h.cycles - start_cycles,
        wall,
        passes: h.passes - start_passes,
    })
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
    // As the Delta sorter builds them: cell 1 reads in one cycle, cell 6 in two, with
    // twice the memory it sorts with (`DELTA_SPARE_MEMORY`).
    let cell1 = cell_cycles_per_word(SortingCell::<3, 4>::new(false), 1, 2000, 1)?;
    let cell6 = cell_cycles_per_word(
        SortingCell::<9, 10>::new(true).with_spare_memory(DELTA_SPARE_MEMORY[5]),
        32,
        2048,
        2,
    )?;
    figures.push(Figure {
        key: "cell_cycles_per_word",
        value: cell1.max(cell6),
        unit: "cycles/word",
        what: format!("worst of Delta cell 1 ({cell1:.4}) and cell 6 ({cell6:.4}); target <= 1.125, 1984 cell: 3"),
    });
    progress("Delta sorter, 4096 x 16-byte tuples");
    let sort = delta_sort(4096, 3)?;
    let (cycles, total, wall, passes) = (
        sort.first_in_to_last_out,
        sort.total_cycles,
        sort.wall,
        sort.passes,
    );
    figures.push(Figure {
        key: "sorter_cycles_4096x16",
        value: cycles as f64,
        unit: "cycles",
        what: format!(
            "first word in to last word out; {} words in, so {:.3} cycles/word",
            sort.words,
            cycles as f64 / sort.words as f64
        ),
    });
    let cycles_per_word_in = sort.input_span as f64 / sort.words as f64;
    let cycles_per_word_out = sort.output_span as f64 / sort.words as f64;
    figures.push(Figure {
        key: "sorter_cycles_per_word_in",
        value: cycles_per_word_in,
        unit: "cycles/word",
        what: format!(
            "the same sort: first to last data word accepted, {} cycles for {} words",
            sort.input_span, sort.words
        ),
    });
    figures.push(Figure {
        key: "sorter_cycles_per_word_out",
        value: cycles_per_word_out,
        unit: "cycles/word",
        what: format!(
            "the same sort: first to last data word leaving, {} cycles for {} words",
            sort.output_span, sort.words
        ),
    });
    for f in crate::baseline::RECORDED_FMAX {
        figures.push(Figure {
            key: f.key,
            value: f.mhz,
            unit: "MHz",
            what: format!(
                "{:?} engine core on the {}, as recorded (not measured by this run): {}",
                f.config,
                f.fpga(),
                f.source
            ),
        });
    }
    let delta_fmax = crate::baseline::recorded_fmax(crate::sort_job::EngineConfig::Delta);
    let cycles_per_word = cycles as f64 / sort.words as f64;
    figures.push(Figure {
        key: "sort_mb_per_s_at_fmax",
        value: delta_fmax.mhz / cycles_per_word * 2.0,
        unit: "MB/s",
        what: format!(
            "Delta sorter at {} MHz ({}'s recorded Fmax): 2 bytes a word / {cycles_per_word:.3} \
             simulated cycles a word (sorter_cycles_4096x16, fill and drain)",
            delta_fmax.mhz,
            delta_fmax.fpga()
        ),
    });
    // Delta's 3 MB/s is a stream rate (a 2-byte word every three 220 ns cycles), and a sort
    // of N words through a merge sorter takes at least 2N cycles (nothing leaves before the
    // last word is in): at one word a cycle both ways, 2 bytes x F / 2 cycles. So the
    // rate to compare with Delta's is the slower of the sorter's two streams.
    let stream_cycles_per_word = cycles_per_word_in.max(cycles_per_word_out);
    figures.push(Figure {
        key: "sort_stream_mb_per_s_at_fmax",
        value: delta_fmax.mhz / stream_cycles_per_word * 2.0,
        unit: "MB/s",
        what: format!(
            "Delta sorter's stream rate at {} MHz: 2 bytes a word / {stream_cycles_per_word:.3} \
             cycles a word (the slower of sorter_cycles_per_word_in and _out); Delta: 3 MB/s",
            delta_fmax.mhz
        ),
    });
    let (sim_cycles, sim_wall) = if quick {
        let quick_sort = delta_sort(512, 4)?;
        (quick_sort.total_cycles, quick_sort.wall)
    } else {
        (total, wall)
    };
    for key in ["sim_cycles_per_s", "sim_cycles_per_s_rtl"] {
        figures.push(Figure {
            key,
            value: (sim_cycles as f64 / sim_wall).round(),
            unit: "cycles/s",
            what: format!("rust-hdl simulation of the 12-cell Delta sorter, {sim_cycles} cycles in {sim_wall:.2} s (single thread)"),
        });
    }
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
        what: format!("SORT-EX of two interleaved 1024-tuple runs, {w} output words; target <= 1.125 (1 + 1/8)"),
    });
    let (join_eq, w) =
        merger_cycles_per_word(MergerCommand::JoinEq, &keyed(0..1024), &keyed(0..1024))?;
    figures.push(Figure {
        key: "merger_cycles_per_word_join_eq",
        value: join_eq,
        unit: "cycles/word",
        what: format!("JOIN-EQ of two 1024-tuple relations, keys 1:1, {w} output words (15-word pairs); target <= 1.125 (1 + 1/8)"),
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
            "REST-EQ, 64 condition values, 2048 tuples all selected, {w} output words; target <= 1.125 (1 + 1/8)"
        ),
    });
    figures.push(Figure {
        key: "sim_passes_per_cycle",
        value: passes as f64 / total as f64,
        unit: "passes",
        what: "settling passes per simulated clock (each runs the blocks whose inputs changed, \
               each until what is below it is settled: vendor/README.md)"
            .into(),
    });
    // The whole small RDBE top on rust-hdl (issue 6's "full engine core" figure), on the
    // same workload as the Verilator figure below.
    {
        let tuples = if quick { 250 } else { 2_000 };
        progress(&format!(
            "rust-hdl backend: PASS-1 of {tuples} tuples through the small RDBE top"
        ));
        let mut engine = crate::engine::RtlEngine::<rdbe_rtl::rdbe_top::SmallRdbe>::new(
            crate::sort_job::EngineConfig::Small,
            crate::engine::Profile::Modern,
        );
        let (passes_before, cycles_before) = engine.passes_and_cycles();
        let (cycles, seconds) = crate::engine::pass1(&mut engine, tuples)?;
        let (passes_after, cycles_after) = engine.passes_and_cycles();
        figures.push(Figure {
            key: "sim_cycles_per_s_rtl_top",
            value: (cycles as f64 / seconds).round(),
            unit: "cycles/s",
            what: format!(
                "rust-hdl simulation of the small RDBE top (engine core, HM adapters, register \
                 bus), {cycles} cycles in {seconds:.2} s; target 50,000"
            ),
        });
        figures.push(Figure {
            key: "sim_passes_per_cycle_rtl_top",
            value: (passes_after - passes_before) as f64 / (cycles_after - cycles_before) as f64,
            unit: "passes",
            what:
                "settling passes per simulated clock of the small RDBE top (the figure above's run)"
                    .into(),
        });
    }
    // The same workload on the small engine core alone (what issue 6's "full engine core"
    // names, without the register bus and the HM adapters the figure above includes).
    {
        let tuples = if quick { 250 } else { 2_000 };
        progress(&format!(
            "rust-hdl backend: PASS-1 of {tuples} tuples through the small engine core alone"
        ));
        let (cycles, seconds, passes) = crate::engine::pass1_engine_core(tuples)?;
        figures.push(Figure {
            key: "sim_cycles_per_s_rtl_core",
            value: (cycles as f64 / seconds).round(),
            unit: "cycles/s",
            what: format!(
                "rust-hdl simulation of the small engine core alone (no register bus, no HM \
                 adapters), the same PASS-1, {cycles} cycles in {seconds:.2} s; target 50,000"
            ),
        });
        figures.push(Figure {
            key: "sim_passes_per_cycle_rtl_core",
            value: passes as f64 / cycles as f64,
            unit: "passes",
            what: "settling passes per simulated clock of the engine core alone (the figure \
                   above's run)"
                .into(),
        });
    }
    if !quick {
        // Builds the Verilated model on first use (about 30 s), so not in --quick.
        progress("Verilator backend: PASS-1 of 200,000 tuples through the small RDBE top");
        let (cycles, seconds) = crate::verilator_backend::measure_cycles_per_second(
            crate::sort_job::EngineConfig::Small,
            200_000,
        )?;
        figures.push(Figure {
            key: "sim_cycles_per_s_verilator",
            value: (cycles as f64 / seconds).round(),
            unit: "cycles/s",
            what: format!(
                "Verilated small RDBE top (rdbe run --backend verilator), {cycles} cycles in \
                 {seconds:.2} s; target 2,000,000"
            ),
        });
    }
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

// ----------------------------------------------------------------------------------------
// `rdbe bench --paper`: the 1984 machine's sort timing against the paper's §6 formulas.
// ----------------------------------------------------------------------------------------

/// Tuple length of every `--paper` relation, bytes: seven u16 fields and the tag word
/// (HM compact format, `Schema::tuple_bytes`), as in the paper's Fig. 11 (L = 16).
pub const PAPER_TUPLE_BYTES: usize = 16;

/// §6's effective sorter capacity C in bytes: min(4096·L, 2^16).
pub fn paper_c_bytes(l_bytes: usize) -> usize {
    (4096 * l_bytes).min(1 << 16)
}

/// What §6's formula gives for N tuples of L bytes. Only for comparison: the modelled time
/// never uses it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaperEstimate {
    /// 1, 2 or 3, by NL/C.
    pub case: u8,
    /// Case 3's i (2^i < NL/C ≤ 2^(i+1)), else 0.
    pub i: u32,
    /// The engine-core term (case 1: NL/1500; case 2: NL/1500 + C/3000; case 3:
    /// (2.5 + 1.5i)·NL/3000), ms.
    pub engine_ms: f64,
    /// The rest (12; 20; 10(i+1)·NL/C + 10), ms: request analysis and driving the devices.
    pub cpu_ms: f64,
}

impl PaperEstimate {
    pub fn total_ms(&self) -> f64 {
        self.engine_ms + self.cpu_ms
    }
}

/// §6's estimate T for sorting `n` tuples of `l_bytes` bytes.
pub fn paper_estimate(n: usize, l_bytes: usize) -> PaperEstimate {
    let c = paper_c_bytes(l_bytes);
    let nl = n * l_bytes;
    let (ncf, nlf) = (c as f64, nl as f64);
    if nl <= c {
        PaperEstimate {
            case: 1,
            i: 0,
            engine_ms: nlf / 1500.0,
            cpu_ms: 12.0,
        }
    } else if nl <= 2 * c {
        PaperEstimate {
            case: 2,
            i: 0,
            engine_ms: nlf / 1500.0 + ncf / 3000.0,
            cpu_ms: 20.0,
        }
    } else {
        // The i with 2^i·C < NL ≤ 2^(i+1)·C.
        let mut i = 1u32;
        while nl > (c << (i + 1)) {
            i += 1;
        }
        PaperEstimate {
            case: 3,
            i,
            engine_ms: (2.5 + 1.5 * i as f64) * nlf / 3000.0,
            cpu_ms: 10.0 * (i + 1) as f64 * nlf / ncf + 10.0,
        }
    }
}

/// One `r = SORT t BY k` run by the control program on the Delta RDBE top (`rtl` or
/// `verilator` backend: the same cycles; `delta1984` profile), with §6's estimate for the
/// same N and L.
#[derive(Clone, Debug)]
pub struct PaperSort {
    pub n: usize,
    pub l_bytes: usize,
    /// The backend that simulated it.
    pub backend: crate::sort_job::Backend,
    /// The control program's `Report.sort_case`: (case, blocks counted for its overhead).
    pub sort_case: Option<(u8, usize)>,
    /// Simulated cycles of the whole command (register bus, HM adapters, engine core).
    pub cycles: u64,
    /// Simulated cycles of each engine step, in order.
    pub step_cycles: Vec<u64>,
    /// `Report::modelled_ms(Profile::Delta1984)`.
    pub modelled_ms: f64,
    pub estimate: PaperEstimate,
    /// Wall-clock seconds of the command's simulation.
    pub wall_s: f64,
}

impl PaperSort {
    pub fn nl(&self) -> usize {
        self.n * self.l_bytes
    }
    pub fn nl_over_c(&self) -> f64 {
        self.nl() as f64 / paper_c_bytes(self.l_bytes) as f64
    }
    /// Simulated cycles × 220 ns, ms.
    pub fn core_ms(&self) -> f64 {
        self.cycles as f64 * crate::engine::Profile::Delta1984.cycle_ns() * 1e-6
    }
    /// Modelled time over §6's estimate.
    pub fn ratio(&self) -> f64 {
        self.modelled_ms / self.estimate.total_ms()
    }
    /// Simulated engine time over §6's engine-core term.
    pub fn engine_ratio(&self) -> f64 {
        self.core_ms() / self.estimate.engine_ms
    }
}

/// The relation `t` of the `--paper` runs: `n` tuples of seven u16 fields (16 bytes with
/// the tag word), key `k` random (seeded), `seq` the tuple's position (to check stability),
/// the rest random.
pub fn paper_relation(n: usize, seed: u64) -> Result<crate::relation::Relation> {
    use crate::relation::{FieldType, Relation, Schema, Value};
    use rand::Rng;
    ensure!(n <= 1 << 16, "at most 65536 tuples (seq is a u16)");
    let names = ["k", "seq", "a", "b", "c", "d", "e"];
    let fields: Vec<(&str, FieldType)> = names.iter().map(|n| (*n, FieldType::U16)).collect();
    let schema = Schema::new(&fields)?;
    ensure!(
        schema.tuple_bytes() == PAPER_TUPLE_BYTES,
        "the --paper schema has {}-byte tuples",
        schema.tuple_bytes()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tuples = (0..n)
        .map(|i| {
            let mut t = vec![Value::Unsigned(rng.gen::<u16>() as u64)];
            t.push(Value::Unsigned(i as u64));
            t.extend((0..5).map(|_| Value::Unsigned(rng.gen::<u16>() as u64)));
            t
        })
        .collect();
    Relation::new("t", schema, tuples)
}

/// Run `r = SORT t BY k` through the control program (`ControlProgram::execute`, its
/// external sort included) on the Delta RDBE top, `delta1984` profile, on `backend` (`rtl`:
/// the rust-hdl simulation; `verilator`: the same top's Verilog, cycle for cycle the same,
/// much faster; `model` has no cycles and is refused), and check the result: sorted by k,
/// the same multiset of tuples, and in the order of a stable sort. Fails if the result is
/// wrong.
pub fn paper_sort(n: usize, seed: u64, backend: crate::sort_job::Backend) -> Result<PaperSort> {
    use crate::command::parse_script;
    use crate::control_program::ControlProgram;
    use crate::engine::Profile;
    use std::cell::RefCell;
    use std::rc::Rc;

    ensure!(
        backend != crate::sort_job::Backend::Model,
        "the model backend counts no cycles: use rtl or verilator"
    );
    let profile = Profile::Delta1984;
    let t = paper_relation(n, seed)?;
    let engine = crate::engine::new_engine(crate::sort_job::EngineConfig::Delta, backend, profile);
    let mut cp = ControlProgram::new(engine, profile)?;
    cp.hm.store(&t)?;
    let input = cp.hm.read_tuples("t")?;
    let after_step = Rc::new(RefCell::new(Vec::<u64>::new()));
    let record = after_step.clone();
    cp.on_step = Some(Box::new(move |cycles| record.borrow_mut().push(cycles)));
    let statements = parse_script("bench --paper", "r = SORT t BY k")?;
    let t0 = Instant::now();
    let report = cp.execute(&statements[0])?;
    let wall_s = t0.elapsed().as_secs_f64();
    cp.on_step = None;

    // The key is the first field: word 1 of a compact tuple (word 0 is the tag).
    let out = cp.hm.read_tuples("r")?;
    ensure!(
        out.len() == n,
        "SORT of {n} tuples returned {} tuples",
        out.len()
    );
    if let Some(w) = out.windows(2).position(|w| w[0][1] > w[1][1]) {
        anyhow::bail!(
            "SORT of {n} tuples: result not sorted by k at position {w} ({} then {})",
            out[w][1],
            out[w + 1][1]
        );
    }
    let (mut a, mut b) = (input.clone(), out.clone());
    a.sort();
    b.sort();
    ensure!(
        a == b,
        "SORT of {n} tuples: result is not the same multiset"
    );
    let mut stable = input;
    stable.sort_by_key(|t| t[1]);
    ensure!(
        stable == out,
        "SORT of {n} tuples: equal keys not in input order (the sort is not stable)"
    );

    let cumulative = after_step.borrow();
    let mut step_cycles = Vec::with_capacity(cumulative.len());
    let mut previous = 0;
    for &c in cumulative.iter() {
        step_cycles.push(c - previous);
        previous = c;
    }
    Ok(PaperSort {
        n,
        l_bytes: PAPER_TUPLE_BYTES,
        backend,
        sort_case: report.sort_case,
        cycles: report.cycles,
        step_cycles,
        modelled_ms: report.modelled_ms(profile),
        estimate: paper_estimate(n, PAPER_TUPLE_BYTES),
        wall_s,
    })
}

/// NL/C of the points of `rdbe bench --paper` (L = 16 bytes, C = 4096 tuples): case 1 from
/// 0.1 to 1, case 2 up to 2, case 3 with i = 1 (up to 4), i = 2 (up to 8) and i = 3 (up to
/// 16, where N = 65,536, the most `paper_relation` numbers). Each boundary is a point, so
/// both sides of every jump of the formula are measured (1 and 1.02, 2 and 2.02, ...).
pub const PAPER_SWEEP_NL_OVER_C: &[f64] = &[
    0.1, 0.25, 0.5, 0.75, 1.0, 1.02, 1.25, 1.5, 1.75, 2.0, 2.02, 2.5, 3.0, 3.5, 4.0, 4.02, 5.0,
    6.0, 7.0, 8.0, 8.02, 10.0, 12.0, 14.0, 16.0,
];

/// NL/C of `rdbe bench --paper --quick`: one or two points per case, i ≤ 2.
pub const PAPER_QUICK_NL_OVER_C: &[f64] = &[0.25, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];

/// Relation sizes (tuples of [PAPER_TUPLE_BYTES]) of `rdbe bench --paper`: N = NL/C · C / L
/// for each point of [PAPER_SWEEP_NL_OVER_C] (or [PAPER_QUICK_NL_OVER_C] if `quick`).
pub fn paper_sizes(quick: bool) -> Vec<usize> {
    let c_tuples = paper_c_bytes(PAPER_TUPLE_BYTES) / PAPER_TUPLE_BYTES;
    let points = if quick {
        PAPER_QUICK_NL_OVER_C
    } else {
        PAPER_SWEEP_NL_OVER_C
    };
    points
        .iter()
        .map(|x| (x * c_tuples as f64).round() as usize)
        .collect()
}

/// Measure every size of [paper_sizes] on `backend`.
pub fn run_paper(
    quick: bool,
    backend: crate::sort_job::Backend,
    progress: impl Fn(&str),
) -> Result<Vec<PaperSort>> {
    let mut rows = vec![];
    for (i, n) in paper_sizes(quick).into_iter().enumerate() {
        let e = paper_estimate(n, PAPER_TUPLE_BYTES);
        progress(&format!(
            "SORT of {n} x {PAPER_TUPLE_BYTES}-byte tuples (§6 case {}), delta1984, {backend:?}",
            e.case
        ));
        rows.push(paper_sort(n, 1984 + i as u64, backend)?);
    }
    Ok(rows)
}

/// The sorter's capacity against §6's C, one sentence.
pub fn paper_capacity_note(l_bytes: usize) -> String {
    use crate::engine::Limits;
    use crate::sort_job::EngineConfig;
    let limits = Limits::of(EngineConfig::Delta);
    let words = l_bytes / 2;
    let cap = limits.sort_capacity(words);
    let block = limits.block_capacity(words);
    let c = paper_c_bytes(l_bytes);
    let same = if cap * l_bytes == c {
        "the same"
    } else {
        "they DIFFER"
    };
    format!(
        "§6: C = min(4096·L, 2^16) = {c} bytes = {} tuples of {l_bytes} bytes; the delta sorter \
         (Limits::sort_capacity) sorts {cap} tuples = {} bytes: {same}. A block of the \
         external sort (sorter and U-memory): {block} tuples.",
        c / l_bytes,
        cap * l_bytes
    )
}

/// The table and the cycles of every engine step (no JSON).
pub fn paper_table(rows: &[PaperSort]) -> String {
    let l = rows.first().map_or(PAPER_TUPLE_BYTES, |r| r.l_bytes);
    let mut out = paper_capacity_note(l) + "\n";
    out += "Modelled = simulated cycles x 220 ns + the CPU overhead of Report::modelled_ms; \
            §6 = the paper's formula (engine term + CPU term).\n\n";
    out += &format!(
        "{:>6} {:>7} {:>5} {:>9} {:>5} {:>10} {:>9} {:>9} {:>9} {:>9} {:>6} {:>7} {:>7}\n",
        "N",
        "NL",
        "NL/C",
        "case",
        "steps",
        "cycles",
        "core ms",
        "§6 eng",
        "model ms",
        "§6 ms",
        "ratio",
        "eng rt",
        "wall s"
    );
    for r in rows {
        let case = match r.sort_case {
            Some((c, blocks)) => format!("{c} ({blocks})"),
            None => "-".into(),
        };
        let formula_case = if r.estimate.case == 3 {
            format!("3, i={}", r.estimate.i)
        } else {
            r.estimate.case.to_string()
        };
        out += &format!(
            "{:>6} {:>7} {:>5.2} {:>9} {:>5} {:>10} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>6.3} {:>7.3} {:>7.1}   (§6 case {formula_case})\n",
            r.n,
            r.nl(),
            r.nl_over_c(),
            case,
            r.step_cycles.len(),
            r.cycles,
            r.core_ms(),
            r.estimate.engine_ms,
            r.modelled_ms,
            r.estimate.total_ms(),
            r.ratio(),
            r.engine_ratio(),
            r.wall_s
        );
    }
    out += "\ncase: Report.sort_case (case, blocks); ratio = model ms / §6 ms; eng rt = core ms / §6's engine term.\n";
    out += "cycles of each engine step:\n";
    for r in rows {
        let steps: Vec<String> = r.step_cycles.iter().map(u64::to_string).collect();
        out += &format!("  N = {:>5}: {}\n", r.n, steps.join(" "));
    }
    out
}

/// The paper-reproduction figures as JSON: `paper_c_bytes`, `sort_capacity_tuples` and
/// `paper_sort`, one object per row (keys in docs/PERFORMANCE.md).
pub fn paper_json(rows: &[PaperSort]) -> serde_json::Value {
    let l = rows.first().map_or(PAPER_TUPLE_BYTES, |r| r.l_bytes);
    let json_rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            json!({
                "n": r.n,
                "l_bytes": r.l_bytes,
                "nl": r.nl(),
                "nl_over_c": r.nl_over_c(),
                "backend": format!("{:?}", r.backend).to_lowercase(),
                "sort_case": r.sort_case.map(|(c, _)| c),
                "sort_case_blocks": r.sort_case.map(|(_, b)| b),
                "paper_case": r.estimate.case,
                "paper_i": r.estimate.i,
                "steps": r.step_cycles.len(),
                "cycles": r.cycles,
                "core_ms": r.core_ms(),
                "modelled_ms": r.modelled_ms,
                "paper_engine_ms": r.estimate.engine_ms,
                "paper_ms": r.estimate.total_ms(),
                "ratio": r.ratio(),
                "engine_ratio": r.engine_ratio(),
                "wall_s": r.wall_s,
            })
        })
        .collect();
    json!({
        "paper_c_bytes": paper_c_bytes(l),
        "sort_capacity_tuples": crate::engine::Limits::of(crate::sort_job::EngineConfig::Delta)
            .sort_capacity(l / 2),
        "paper_sort": json_rows,
    })
}

/// The table, the cycles of every engine step, and as the last line one JSON object.
pub fn paper_report(rows: &[PaperSort]) -> String {
    paper_table(rows) + &paper_json(rows).to_string()
}

// ----------------------------------------------------------------------------------------
// `rdbe bench`'s command line.
// ----------------------------------------------------------------------------------------

/// What `rdbe bench` measures (its command-line options).
#[derive(Clone, Debug, clap::Args)]
pub struct BenchOptions {
    /// Shorter runs (simulation speed on a 512-tuple sort, no Verilator figure; with
    /// `--paper` seven sizes up to NL/C = 6 ([PAPER_QUICK_NL_OVER_C]); with `--baselines`
    /// 1024-tuple workloads).
    #[arg(long)]
    pub quick: bool,
    /// Instead: SORT through the control program on the Delta RDBE top (`delta1984`
    /// profile), §6's three cases (NL/C 0.1 to 16), against the paper's formulas
    /// ([run_paper]).
    #[arg(long)]
    pub paper: bool,
    /// Instead: the same sorts and joins with SQLite and Rust's sort beside the engine's
    /// simulated cycles at the recorded Fmax (`baseline::run_baselines`).
    #[arg(long)]
    pub baselines: bool,
    /// Everything: the default figures, `--paper` and `--baselines`, one JSON line.
    #[arg(long)]
    pub all: bool,
    /// Backend of `--paper` and `--baselines` (same cycles; verilator is much faster).
    #[arg(long, value_enum, default_value_t = crate::sort_job::Backend::Verilator)]
    pub backend: crate::sort_job::Backend,
    /// With `--paper`: write the plot of time against N (SVG) here.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
}

/// Run what `o` asks for; returns the tables and, as the last line, one JSON object with
/// every figure measured.
pub fn run_cli(o: &BenchOptions, progress: impl Fn(&str)) -> Result<String> {
    let paper = o.paper || o.all;
    let baselines = o.baselines || o.all;
    let default = o.all || !(o.paper || o.baselines);
    ensure!(
        o.plot.is_none() || paper,
        "--plot draws the paper sweep: add --paper"
    );
    let mut out = String::new();
    let mut obj = serde_json::Map::new();
    if default {
        let figures = run(o.quick, &progress)?;
        let text = report(&figures);
        let (table, json_line) = text.rsplit_once('\n').unwrap_or(("", &text));
        out += table;
        out += "\n\n";
        if let serde_json::Value::Object(m) = serde_json::from_str(json_line)? {
            obj.extend(m);
        }
    }
    if paper {
        let t0 = Instant::now();
        let rows = run_paper(o.quick, o.backend, &progress)?;
        let sweep_s = t0.elapsed().as_secs_f64();
        out += &paper_table(&rows);
        out += &format!(
            "sweep: {} sorts in {sweep_s:.1} s wall on the {:?} backend\n\n",
            rows.len(),
            o.backend
        );
        if let serde_json::Value::Object(m) = paper_json(&rows) {
            obj.extend(m);
        }
        obj.insert("paper_sweep_wall_s".into(), json!(sweep_s));
        if let Some(path) = &o.plot {
            crate::bench_plot::write_paper_plot(&rows, path)?;
            out += &format!("plot: {}\n\n", path.display());
        }
    }
    if baselines {
        let rows = crate::baseline::run_baselines(o.quick, o.backend, &progress)?;
        out += &crate::baseline::baseline_table(&rows);
        out += "\n";
        if let serde_json::Value::Object(m) = crate::baseline::baseline_json(&rows) {
            obj.extend(m);
        }
        if !default {
            for f in crate::baseline::RECORDED_FMAX {
                obj.insert(f.key.into(), json!(f.mhz));
            }
        }
    }
    out += &serde_json::Value::Object(obj).to_string();
    Ok(out)
}
