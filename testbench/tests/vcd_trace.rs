//! Testbench: the VCD waveform the harness writes (`Harness::trace_to`, and the `vcd`
//! argument of `sim::sort_job::sort_relation`), read back with the `vcd` crate.
//!
//! Checked:
//! * the file parses (header, then value changes to the end);
//! * the header: a 1 ps timescale, the top scope `uut` with its clock, both stream ports
//!   (`data_in`, `data_out`: 16-bit `word$data`, 2-bit `word$parity`, `word$null`,
//!   `word$dup`, `word$last`, `word$eos`, `valid`, `ready`), the status outputs, and the
//!   hierarchy (IN module, sorter with one scope per sorting cell, sorting checker);
//! * time: timestamps strictly increase, one every half clock period (5 units);
//! * the clock: one rising and one falling edge per simulated cycle, alternating, high
//!   for half a period;
//! * the content: the beats that crossed each port, rebuilt from the waveform alone
//!   (valid and ready high at a rising edge), equal the beats the testbench sent and the
//!   tuples, NL and DP it received.
//!
//! Parameters: the Small pipeline, 4-word tuples with a nullable key and duplicates,
//! random pacing on both sides (so valid and ready both toggle); and one sort through
//! `sort_relation` at full rate.
use rdbe_rtl::harness::{Harness, Pacing};
use rdbe_rtl::sort_pipeline::SmallSortPipeline;
use rdbe_rtl::sorter::SMALL_CELL_ADDRESS_BITS;
use rdbe_rtl::tuple_stream::{compact_beats, from_beats, Beat, StreamTuple};
use rdbe_sim::relation::{FieldType, Relation, Schema, Value};
use rdbe_sim::sort_job::{sort_relation, Backend, EngineConfig, SortKey, SortSpec};
use rdbe_testbench::*;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use vcd::{Command, Header, IdCode, ScopeItem, TimescaleUnit};

/// A file under the temporary directory, unique per process and test, removed on drop.
struct TempVcd(PathBuf);
impl TempVcd {
    fn new(name: &str) -> TempVcd {
        TempVcd(
            std::env::temp_dir().join(format!("rdbe-testbench-{}-{name}.vcd", std::process::id())),
        )
    }
}
impl Drop for TempVcd {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The id code and width of variable `name` in scope `path`.
fn var(header: &Header, path: &[&str], name: &str) -> (IdCode, u32) {
    let scope = header
        .find_scope(path)
        .unwrap_or_else(|| panic!("VCD header has no scope {path:?}"));
    let v = scope
        .find_var(name)
        .unwrap_or_else(|| panic!("VCD scope {path:?} has no variable {name}"));
    (v.code, v.size)
}

/// The ports of one tuple stream in the waveform.
struct StreamVars {
    data: IdCode,
    parity: IdCode,
    null: IdCode,
    dup: IdCode,
    last: IdCode,
    eos: IdCode,
    valid: IdCode,
    ready: IdCode,
}

fn stream_vars(header: &Header, port: &str) -> StreamVars {
    let p = ["uut", port];
    let get = |name: &str, width: u32| {
        let (code, size) = var(header, &p, name);
        assert_eq!(size, width, "{port}.{name} width");
        code
    };
    StreamVars {
        data: get("word$data", 16),
        parity: get("word$parity", 2),
        null: get("word$null", 1),
        dup: get("word$dup", 1),
        last: get("word$last", 1),
        eos: get("word$eos", 1),
        valid: get("valid", 1),
        ready: get("ready", 1),
    }
}

fn beat(state: &HashMap<IdCode, u64>, s: &StreamVars) -> Beat {
    let g = |c: IdCode| {
        *state
            .get(&c)
            .unwrap_or_else(|| panic!("no value for {c:?}"))
    };
    Beat {
        data: g(s.data) as u16,
        parity: g(s.parity) as u8,
        null: g(s.null) == 1,
        dup: g(s.dup) == 1,
        last: g(s.last) == 1,
        eos: g(s.eos) == 1,
    }
}

/// What a waveform shows.
struct Waveform {
    timestamps: Vec<u64>,
    clock_rises: u64,
    clock_falls: u64,
    /// (timestamp, rising) of every clock edge after the initial dump.
    clock_edges: Vec<(u64, bool)>,
    /// Beats accepted on `data_in` / taken from `data_out`, rebuilt from the waveform.
    beats_in: Vec<Beat>,
    beats_out: Vec<Beat>,
}

/// Parse a VCD written by the harness: check its header and clock, and rebuild the beats
/// of both stream ports. At the rising edge of cycle c a beat moves when valid and ready
/// are high. The harness writes the changes of one edge under that edge's timestamp:
/// the testbench's inputs for cycle c (data_in.word/valid, data_out.ready) appear at
/// c's rising edge, while the block's outputs there are already the post-edge values;
/// the block's outputs before the edge (data_out.word/valid and data_in.ready, all from
/// flip-flops) are those from before that timestamp.
fn read_waveform(path: &Path, cells: usize) -> Waveform {
    let mut p = vcd::Parser::new(BufReader::new(File::open(path).expect("VCD file")));
    let header = p.parse_header().expect("VCD header parses");
    assert_eq!(header.timescale, Some((1, TimescaleUnit::PS)), "timescale");
    let (clock, w) = var(&header, &["uut"], "clock");
    assert_eq!(w, 1);
    let din = stream_vars(&header, "data_in");
    let dout = stream_vars(&header, "data_out");
    for (name, width) in [
        ("capacity_tuples", 16),
        ("sort_error", 1),
        ("violations", 16),
        ("parity_error", 1),
        ("framing_error", 1),
    ] {
        assert_eq!(
            var(&header, &["uut"], name).1,
            width,
            "status output {name}"
        );
    }
    for sub in ["in_module", "sorter", "sorting_checker"] {
        assert!(
            header.find_scope(&["uut", sub]).is_some(),
            "VCD hierarchy lacks {sub}"
        );
    }
    let sorter = header.find_scope(&["uut", "sorter"]).unwrap();
    let cell_scopes = sorter
        .children
        .iter()
        .filter(|c| matches!(c, ScopeItem::Scope(s) if s.identifier.starts_with("cell_")))
        .count();
    assert_eq!(cell_scopes, cells, "one scope per sorting cell");

    let mut state: HashMap<IdCode, u64> = HashMap::new();
    let mut wf = Waveform {
        timestamps: vec![],
        clock_rises: 0,
        clock_falls: 0,
        clock_edges: vec![],
        beats_in: vec![],
        beats_out: vec![],
    };
    // Outputs as they were before the current timestamp's changes.
    let mut pre: Option<HashMap<IdCode, u64>> = None;
    let mut rising = false;
    let finish_edge =
        |state: &HashMap<IdCode, u64>, pre: &HashMap<IdCode, u64>, wf: &mut Waveform| {
            if state[&din.valid] == 1 && pre[&din.ready] == 1 {
                wf.beats_in.push(beat(state, &din));
            }
            if pre[&dout.valid] == 1 && state[&dout.ready] == 1 {
                wf.beats_out.push(beat(pre, &dout));
            }
        };
    for cmd in p {
        let cmd = cmd.expect("VCD body parses");
        match cmd {
            Command::Timestamp(t) => {
                if rising {
                    finish_edge(&state, pre.as_ref().unwrap(), &mut wf);
                }
                if let Some(&last) = wf.timestamps.last() {
                    assert!(t > last, "timestamps must increase: {last} then {t}");
                }
                wf.timestamps.push(t);
                pre = Some(state.clone());
                rising = false;
            }
            Command::ChangeScalar(id, v) => {
                let bit = match v {
                    vcd::Value::V0 => 0,
                    vcd::Value::V1 => 1,
                    other => panic!("signal {id:?} is {other:?}: the simulation drives every bit"),
                };
                if id == clock && !wf.timestamps.is_empty() {
                    let old = state.get(&clock).copied();
                    assert_ne!(old, Some(bit), "the clock changes only when it toggles");
                    wf.clock_edges
                        .push((*wf.timestamps.last().unwrap(), bit == 1));
                    if bit == 1 {
                        wf.clock_rises += 1;
                        rising = true;
                    } else {
                        wf.clock_falls += 1;
                    }
                }
                state.insert(id, bit);
            }
            Command::ChangeVector(id, bits) => {
                let mut x = 0u64;
                for b in bits.iter().rev().take(64).rev() {
                    x = (x << 1)
                        | match b {
                            vcd::Value::V1 => 1,
                            vcd::Value::V0 => 0,
                            other => panic!("vector {id:?} has a {other:?} bit"),
                        };
                }
                state.insert(id, x);
            }
            // Enumerated state registers are written as strings; $dumpvars brackets.
            Command::ChangeString(..) | Command::Begin(_) | Command::End(_) => {}
            other => panic!("unexpected VCD command after the header: {other:?}"),
        }
    }
    if rising {
        finish_edge(&state, pre.as_ref().unwrap(), &mut wf);
    }
    wf
}

/// Check the time axis and the clock against the number of simulated cycles.
fn check_clock(wf: &Waveform, cycles: u64, what: &str) {
    assert!(cycles > 10, "{what}: a real run");
    assert_eq!(
        wf.clock_rises, cycles,
        "{what}: one rising clock edge per cycle"
    );
    assert_eq!(
        wf.clock_falls, cycles,
        "{what}: one falling clock edge per cycle"
    );
    // Time advances half a period (5 units) per timestamp, from the first edge at 5.
    assert_eq!(wf.timestamps.first(), Some(&5), "{what}: first timestamp");
    if let Some(p) = wf.timestamps.windows(2).position(|p| p[1] != p[0] + 5) {
        panic!(
            "{what}: timestamps {} then {}: not half a period apart",
            wf.timestamps[p],
            wf.timestamps[p + 1]
        );
    }
    // Edges alternate, rising first; the clock is high for exactly half a period and low
    // for exactly half a period, also across a plain `cycle()` followed by a stream.
    assert_eq!(wf.clock_edges.len() as u64, 2 * cycles);
    let mut long_low = 0;
    for (i, e) in wf.clock_edges.iter().enumerate() {
        assert_eq!(
            e.1,
            i % 2 == 0,
            "{what}: edge {i} at {} must alternate, rising first",
            e.0
        );
        if let Some(next) = wf.clock_edges.get(i + 1) {
            let phase = next.0 - e.0;
            if e.1 {
                assert_eq!(
                    phase, 5,
                    "{what}: clock high from {} for {phase} units",
                    e.0
                );
            } else if phase != 5 {
                assert_eq!(
                    phase, 10,
                    "{what}: clock low from {} for {phase} units",
                    e.0
                );
                long_low += 1;
            }
        }
    }
    assert_eq!(long_low, 0, "{what}: {long_low} irregular low phases");
}

#[test]
fn harness_trace_shows_clock_ports_and_every_beat() {
    const SEED: u64 = 0x0FCD_0001;
    let mut rng = seeded(SEED);
    let file = TempVcd::new("harness");
    let spec = RelationSpec {
        tuple_words: 4,
        kind: KeyKind::Signed,
        position: KeyPosition::Middle,
        key_words: 1,
        null_density: 0.1,
        key_domain: 3,
        tuples: 21,
        descending: false,
        hint: true,
    };
    let stim = generate(&mut rng, &spec);
    // Both sides paced, so valid and ready are both seen low and high.
    let pacing = Pacing {
        source_duty: 0.7,
        sink_duty: 0.6,
        seed: 3,
    };
    let mut h = Harness::new(SmallSortPipeline::default());
    h.trace_to(&file.0).expect("create VCD");
    let run = check_pipeline(&mut h, &stim, pacing, &format!("vcd seed {SEED:#x}"));
    h.finish_trace();
    let wf = read_waveform(&file.0, SMALL_CELL_ADDRESS_BITS.len());
    check_clock(&wf, h.cycles, "harness trace");

    // The compact beats sent, in order, with `last` on each tuple's last word, then eos.
    let sent = compact_beats(&stim.tuples);
    assert_eq!(wf.beats_in, sent, "data_in beats rebuilt from the VCD");
    let got: Vec<StreamTuple> = from_beats(&wf.beats_out, spec.tuple_words)
        .expect("data_out beats in the VCD are well framed");
    assert_eq!(
        got, run.output,
        "data_out tuples (with NL and DP) rebuilt from the VCD"
    );
    assert!(
        got.iter().any(|t| t.dup),
        "the case has duplicates, so DP is exercised"
    );
}

#[test]
fn sort_relation_trace_matches_its_cycle_count() {
    let file = TempVcd::new("sort-relation");
    let schema = Schema::new(&[("name", FieldType::Char(5)), ("score", FieldType::F32)]).unwrap();
    let names = ["delta", "icot", "rdbe", "hm", "", "ie", "delta", "sort"];
    let tuples = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            vec![
                Value::Text(n.to_string()),
                if i == 3 {
                    Value::Null
                } else {
                    Value::Float(1.5 - i as f32)
                },
            ]
        })
        .collect();
    let rel = Relation::new("scores", schema.clone(), tuples).unwrap();
    let spec = SortSpec {
        key: SortKey::Field("name".into()),
        descending: true,
    };
    let result = sort_relation(
        EngineConfig::Small,
        Backend::Rtl,
        &rel,
        &spec,
        Some(&file.0),
    )
    .expect("sort with VCD");
    let wf = read_waveform(&file.0, SMALL_CELL_ADDRESS_BITS.len());
    // `run_pipeline` spends one cycle clearing the status, then streams for `cycles`.
    check_clock(&wf, result.cycles + 1, "sort_relation trace");
    assert_eq!(
        wf.beats_in.len(),
        names.len() * schema.tuple_words() + 1,
        "every input beat is in the VCD"
    );
    let out = from_beats(&wf.beats_out, schema.tuple_words()).expect("well framed");
    assert_eq!(out.len(), names.len());
    assert_eq!(
        out.iter().map(|t| t.dup).collect::<Vec<_>>(),
        result.dup,
        "DP in the VCD"
    );
}
