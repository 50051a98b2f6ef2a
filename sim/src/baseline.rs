//! `rdbe bench --baselines`: what a user would pick instead of the engine. The same sorts
//! and equi-joins timed on this machine with SQLite (rusqlite's bundled library, in-memory
//! database) and with Rust's own sort, beside the engine's time at the Fmax that place and
//! route achieved: the control program's command simulated cycle for cycle on the RDBE top
//! (`modern` profile: the HM side keeps up, one word per cycle), cycles ÷ Fmax.
//!
//! Every run checks that the three give the same result (sorts: the same tuples in the same
//! order, that of a stable sort by the key; joins: the same multiset of pairs) and fails
//! otherwise.
use crate::bench::paper_relation;
use crate::command::parse_script;
use crate::control_program::ControlProgram;
use crate::engine::{new_engine, Profile};
use crate::relation::{FieldType, Relation, Schema, Value};
use crate::sort_job::{Backend, EngineConfig};
use anyhow::{anyhow, bail, ensure, Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::time::Instant;

/// An Fmax that `rdbe synth` measured, as recorded in docs/PERFORMANCE.md (not measured
/// again here: a place and route takes 4 to 30 minutes). `verilog_sha256` ties it to the
/// engine core it measured: a test (`sim/tests/synth.rs`) fails when the core's Verilog
/// changes and the record is not measured again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecordedFmax {
    /// The key of `rdbe bench`'s JSON.
    pub key: &'static str,
    pub config: EngineConfig,
    /// `rdbe synth --target` of the measurement (its top is always `core`).
    pub synth_target: crate::synth::Target,
    pub mhz: f64,
    /// The `verilog_sha256` of `rdbe synth`'s JSON: the engine core's Verilog measured.
    pub verilog_sha256: &'static str,
    /// The command that measured it and when.
    pub source: &'static str,
}

impl RecordedFmax {
    /// The FPGA measured (its part number, from the `rdbe synth` target).
    pub fn fpga(&self) -> &'static str {
        self.synth_target.spec().device
    }
}

/// The engine cores' Fmax as placed and routed (docs/PERFORMANCE.md, "Place and route").
pub const RECORDED_FMAX: &[RecordedFmax] = &[
    RecordedFmax {
        key: "fmax_mhz_hx8k_small",
        config: EngineConfig::Small,
        synth_target: crate::synth::Target::Hx8k,
        mhz: 56.60,
        verilog_sha256: "6d683f281a4fb4079e63e4311caa2e17ae47895bee81854dbdf7ece15c56632c",
        source: "rdbe synth --target hx8k --config small --top core (yosys 0.23, nextpnr-ice40 \
                 0.4), 2026-11-25 (session 27): session 26's logic (the registered run flags \
                 are removed in this configuration's one-cycle cells), new Verilog text \
                 (nextpnr's seed; seeds 1/2/3: 63.39 / 58.39 / 57.11, mean of four 58.87 \
                 against session 26's 59.58), docs/PERFORMANCE.md",
    },
    RecordedFmax {
        key: "fmax_mhz_ecp5_delta",
        config: EngineConfig::Delta,
        synth_target: crate::synth::Target::Ecp5_85,
        mhz: 62.35,
        verilog_sha256: "f987141cdc811ee3c4451ad319692a5e2f2dfe60283d40e38f792c7f455b13c9",
        source: "rdbe synth --target ecp5-85 --config delta --top core (yosys 0.23, YoWASP \
                 nextpnr-ecp5), 2026-11-25 (session 27): spare memory in the Delta sorter's \
                 cells 2 to 6 and registered run flags in its two-cycle cells (nextpnr's \
                 seed; seeds 1/2: 68.44 / 62.46, mean of three 64.42; session 26's core \
                 67.10 on nextpnr's seed, not swept), docs/PERFORMANCE.md",
    },
];

/// The recorded Fmax of an engine configuration.
pub fn recorded_fmax(config: EngineConfig) -> &'static RecordedFmax {
    RECORDED_FMAX
        .iter()
        .find(|f| f.config == config)
        .expect("every configuration has a recorded Fmax")
}

/// What is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// `r = SORT t BY k`: `n` tuples of seven u16 fields (16 bytes with the tag), random
    /// keys (`bench::paper_relation`).
    Sort { n: usize },
    /// `j = JOIN r, s ON r.rk = s.sk`: two relations of `n` tuples of seven u16 fields,
    /// each key a shuffled permutation of 0..n, so every tuple pairs exactly once (n pairs of
    /// 14 fields).
    JoinEq { n: usize },
}

impl Workload {
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Sort { .. } => "sort",
            Workload::JoinEq { .. } => "join_eq",
        }
    }
    pub fn n(&self) -> usize {
        match *self {
            Workload::Sort { n } | Workload::JoinEq { n } => n,
        }
    }
    /// Bytes of input the engine streams (16-byte tuples; a join reads both relations).
    pub fn input_bytes(&self) -> usize {
        match *self {
            Workload::Sort { n } => 16 * n,
            Workload::JoinEq { n } => 2 * 16 * n,
        }
    }
}

/// The engine's time for one workload on one configuration.
#[derive(Clone, Debug)]
pub struct EngineTiming {
    pub config: EngineConfig,
    pub fmax: RecordedFmax,
    /// Simulated cycles of the whole command (register bus, HM adapters, engine core).
    pub cycles: u64,
    pub steps: usize,
    /// The control program's external sort case, if it sorted beyond C.
    pub sort_case: Option<(u8, usize)>,
    /// Wall-clock seconds of the simulation.
    pub sim_wall_s: f64,
}

impl EngineTiming {
    /// Cycles ÷ Fmax, seconds.
    pub fn seconds_at_fmax(&self) -> f64 {
        self.cycles as f64 / (self.fmax.mhz * 1e6)
    }
}

/// One workload timed every way.
#[derive(Clone, Debug)]
pub struct BaselineRow {
    pub workload: Workload,
    pub result_tuples: usize,
    /// SQLite: creating the table(s) and inserting the tuples in one transaction.
    pub sqlite_load_s: f64,
    /// SQLite: the query (`ORDER BY` or the join), rows read into a Vec; best of runs.
    pub sqlite_query_s: f64,
    /// Rust: `slice::sort_by_key` (stable) on the tuples; for a join, sort both sides
    /// (stable) and merge. Best of runs, copying the input excluded.
    pub rust_sort_s: f64,
    /// Rust: `slice::sort_unstable_by_key`; for a join, the same merge.
    pub rust_sort_unstable_s: f64,
    pub engines: Vec<EngineTiming>,
}

type Row = Vec<u16>;

/// The two relations of a join workload.
fn join_relations(n: usize, seed: u64) -> Result<(Relation, Relation)> {
    ensure!(n <= 1 << 16, "at most 65536 tuples (the keys are u16)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut make = |name: &str, prefix: &str| -> Result<Relation> {
        let names: Vec<String> = std::iter::once(format!("{prefix}k"))
            .chain((1..7).map(|i| format!("{prefix}{i}")))
            .collect();
        let fields: Vec<(&str, FieldType)> =
            names.iter().map(|n| (n.as_str(), FieldType::U16)).collect();
        let schema = Schema::new(&fields)?;
        let mut keys: Vec<u64> = (0..n as u64).collect();
        keys.shuffle(&mut rng);
        let tuples = keys
            .into_iter()
            .map(|k| {
                let mut t = vec![Value::Unsigned(k)];
                t.extend((1..7).map(|_| Value::Unsigned(rng.gen::<u16>() as u64)));
                t
            })
            .collect();
        Relation::new(name, schema, tuples)
    };
    let r = make("r", "r")?;
    let s = make("s", "s")?;
    Ok((r, s))
}

fn rows_of(r: &Relation) -> Result<Vec<Row>> {
    r.tuples
        .iter()
        .map(|t| {
            t.iter()
                .map(|v| match v {
                    Value::Unsigned(x) if *x <= 0xffff => Ok(*x as u16),
                    other => Err(anyhow!("relation '{}': unexpected value {other:?}", r.name)),
                })
                .collect()
        })
        .collect()
}

/// The shortest of `reps` timings of `f` (run on a fresh copy of `input` each time; the
/// copy is not timed): the run least disturbed by other work on the machine. Returns the
/// last result too.
fn best_time<I: Clone, O>(reps: usize, input: &I, mut f: impl FnMut(I) -> O) -> (f64, O) {
    let mut times = vec![];
    let mut out = None;
    for _ in 0..reps.max(1) {
        let copy = input.clone();
        let t0 = Instant::now();
        let o = f(copy);
        times.push(t0.elapsed().as_secs_f64());
        out = Some(o);
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    (best, out.expect("at least one run"))
}

/// Repetitions for a timing of `n` tuples: enough that short runs are not noise.
fn reps_for(n: usize) -> usize {
    (200_000 / n.max(1)).clamp(3, 51) | 1
}

/// Sort-merge equi-join on field 0 of both sides: sort each by its key with `sort`, then
/// pair every run of equal keys (output: r's fields, then s's).
fn merge_join(mut r: Vec<Row>, mut s: Vec<Row>, sort: fn(&mut [Row])) -> Vec<Row> {
    sort(&mut r);
    sort(&mut s);
    let mut out = Vec::with_capacity(r.len().min(s.len()));
    let (mut i, mut j) = (0, 0);
    while i < r.len() && j < s.len() {
        match r[i][0].cmp(&s[j][0]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                let k = r[i][0];
                let i_end = i + r[i..].iter().take_while(|t| t[0] == k).count();
                let j_end = j + s[j..].iter().take_while(|t| t[0] == k).count();
                for a in &r[i..i_end] {
                    for b in &s[j..j_end] {
                        let mut t = a.clone();
                        t.extend_from_slice(b);
                        out.push(t);
                    }
                }
                i = i_end;
                j = j_end;
            }
        }
    }
    out
}

fn stable(v: &mut [Row]) {
    v.sort_by_key(|t| t[0]);
}
fn unstable(v: &mut [Row]) {
    v.sort_unstable_by_key(|t| t[0]);
}

fn sqlite_table(
    db: &rusqlite::Connection,
    name: &str,
    columns: &[String],
    rows: &[Row],
) -> Result<()> {
    db.execute_batch(&format!(
        "CREATE TABLE {name} ({});",
        columns
            .iter()
            .map(|c| format!("{c} INTEGER NOT NULL"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let tx = db.unchecked_transaction()?;
    {
        let marks = vec!["?"; columns.len()].join(", ");
        let mut insert = tx.prepare(&format!("INSERT INTO {name} VALUES ({marks})"))?;
        for r in rows {
            insert.execute(rusqlite::params_from_iter(r.iter().map(|&x| x as i64)))?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn sqlite_query(db: &rusqlite::Connection, sql: &str, width: usize) -> Result<Vec<Row>> {
    let mut stmt = db.prepare_cached(sql)?;
    let rows = stmt.query_map([], |row| {
        (0..width)
            .map(|i| row.get::<_, i64>(i).map(|x| x as u16))
            .collect::<rusqlite::Result<Row>>()
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<Row>>>()?)
}

/// Run `script` (one statement) through the control program on `config`/`backend` in the
/// `modern` profile after storing `relations`; returns the result and the timing.
fn on_engine(
    config: EngineConfig,
    backend: Backend,
    relations: &[&Relation],
    script: &str,
) -> Result<(Vec<Row>, EngineTiming)> {
    ensure!(
        backend != Backend::Model,
        "the model backend counts no cycles: use rtl or verilator"
    );
    let profile = Profile::Modern;
    let mut cp = ControlProgram::new(new_engine(config, backend, profile), profile)?;
    for r in relations {
        cp.hm.store(r)?;
    }
    let statements = parse_script("bench --baselines", script)?;
    let t0 = Instant::now();
    let report = cp.execute(&statements[0])?;
    let sim_wall_s = t0.elapsed().as_secs_f64();
    let result = rows_of(&cp.hm.relation(&statements[0].target)?)?;
    Ok((
        result,
        EngineTiming {
            config,
            fmax: *recorded_fmax(config),
            cycles: report.cycles,
            steps: report.steps,
            sort_case: report.sort_case,
            sim_wall_s,
        },
    ))
}

/// Time `workload` with SQLite, Rust's sorts and the engine on each of `configs` (each at
/// its recorded Fmax), and check that all give the same result.
pub fn run_workload(
    workload: Workload,
    configs: &[EngineConfig],
    backend: Backend,
    seed: u64,
) -> Result<BaselineRow> {
    let n = workload.n();
    let reps = reps_for(n);
    let db = rusqlite::Connection::open_in_memory().context("opening SQLite in memory")?;
    match workload {
        Workload::Sort { n } => {
            let t = paper_relation(n, seed)?;
            let input = rows_of(&t)?;
            let columns: Vec<String> = t.schema.fields.iter().map(|f| f.name.clone()).collect();
            let t0 = Instant::now();
            sqlite_table(&db, "t", &columns, &input)?;
            let sqlite_load_s = t0.elapsed().as_secs_f64();
            // `seq` is the input position: ORDER BY k, seq is the stable order.
            let sql = format!("SELECT {} FROM t ORDER BY k, seq", columns.join(", "));
            let (sqlite_query_s, by_sqlite) = best_time(reps, &(), |_| sqlite_query(&db, &sql, 7));
            let by_sqlite = by_sqlite?;
            let (rust_sort_s, by_rust) = best_time(reps, &input, |mut v| {
                stable(&mut v);
                v
            });
            let (rust_sort_unstable_s, by_unstable) = best_time(reps, &input, |mut v| {
                unstable(&mut v);
                v
            });
            ensure!(
                by_sqlite == by_rust,
                "SORT of {n}: SQLite and Rust's stable sort differ"
            );
            let keys = |v: &[Row]| v.iter().map(|t| t[0]).collect::<Vec<_>>();
            ensure!(
                keys(&by_unstable) == keys(&by_rust),
                "SORT of {n}: Rust's unstable sort is not in key order"
            );
            let mut engines = vec![];
            for &config in configs {
                let (by_engine, timing) = on_engine(config, backend, &[&t], "r = SORT t BY k")?;
                ensure!(
                    by_engine == by_rust,
                    "SORT of {n} on the {config:?} engine: the result differs from Rust's stable sort"
                );
                engines.push(timing);
            }
            Ok(BaselineRow {
                workload,
                result_tuples: by_rust.len(),
                sqlite_load_s,
                sqlite_query_s,
                rust_sort_s,
                rust_sort_unstable_s,
                engines,
            })
        }
        Workload::JoinEq { n } => {
            let (r, s) = join_relations(n, seed)?;
            let (rr, sr) = (rows_of(&r)?, rows_of(&s)?);
            let cols = |x: &Relation| -> Vec<String> {
                x.schema.fields.iter().map(|f| f.name.clone()).collect()
            };
            let t0 = Instant::now();
            sqlite_table(&db, "r", &cols(&r), &rr)?;
            sqlite_table(&db, "s", &cols(&s), &sr)?;
            let sqlite_load_s = t0.elapsed().as_secs_f64();
            let sql = "SELECT r.*, s.* FROM r JOIN s ON r.rk = s.sk";
            let (sqlite_query_s, by_sqlite) = best_time(reps, &(), |_| sqlite_query(&db, sql, 14));
            let mut by_sqlite = by_sqlite?;
            let pair = (rr.clone(), sr.clone());
            let (rust_sort_s, by_rust) = best_time(reps, &pair, |(a, b)| merge_join(a, b, stable));
            let (rust_sort_unstable_s, mut by_unstable) =
                best_time(reps, &pair, |(a, b)| merge_join(a, b, unstable));
            let mut expected = by_rust;
            expected.sort();
            by_sqlite.sort();
            by_unstable.sort();
            ensure!(
                by_sqlite == expected,
                "JOIN of {n}: SQLite and Rust's merge join differ"
            );
            ensure!(
                by_unstable == expected,
                "JOIN of {n}: the two Rust joins differ"
            );
            let mut engines = vec![];
            for &config in configs {
                let (mut by_engine, timing) =
                    on_engine(config, backend, &[&r, &s], "j = JOIN r, s ON r.rk = s.sk")?;
                by_engine.sort();
                if by_engine != expected {
                    bail!(
                        "JOIN of {n} on the {config:?} engine: {} pairs, {} expected, or different pairs",
                        by_engine.len(),
                        expected.len()
                    );
                }
                engines.push(timing);
            }
            Ok(BaselineRow {
                workload,
                result_tuples: expected.len(),
                sqlite_load_s,
                sqlite_query_s,
                rust_sort_s,
                rust_sort_unstable_s,
                engines,
            })
        }
    }
}

/// The workloads of `rdbe bench --baselines` (`quick`: smaller ones).
pub fn workloads(quick: bool) -> Vec<Workload> {
    if quick {
        vec![Workload::Sort { n: 1024 }, Workload::JoinEq { n: 1024 }]
    } else {
        vec![
            Workload::Sort { n: 4096 },
            Workload::Sort { n: 65536 },
            Workload::JoinEq { n: 4096 },
            Workload::JoinEq { n: 16384 },
        ]
    }
}

/// The engine configurations a workload of `rdbe bench --baselines` runs on: both, except
/// the small engine's joins beyond 4096 tuples (its U-memory holds 32 tuples of 16 bytes, so
/// a join streams the other relation once per 32 tuples: 68 M cycles and 5 minutes of
/// simulation for 16,384 tuples).
pub fn configs_for(w: Workload) -> Vec<EngineConfig> {
    match w {
        Workload::JoinEq { n } if n > 4096 => vec![EngineConfig::Delta],
        _ => vec![EngineConfig::Small, EngineConfig::Delta],
    }
}

/// Time every workload of [workloads] on the configurations of [configs_for].
pub fn run_baselines(
    quick: bool,
    backend: Backend,
    progress: impl Fn(&str),
) -> Result<Vec<BaselineRow>> {
    let mut rows = vec![];
    for (i, w) in workloads(quick).into_iter().enumerate() {
        progress(&format!(
            "{} of {} x 16-byte tuples: SQLite, Rust, the engine ({:?}, {backend:?})",
            w.name(),
            w.n(),
            configs_for(w)
        ));
        rows.push(run_workload(w, &configs_for(w), backend, 2026 + i as u64)?);
    }
    Ok(rows)
}

fn ms(s: f64) -> f64 {
    s * 1e3
}

/// The table (no JSON).
pub fn baseline_table(rows: &[BaselineRow]) -> String {
    let mut out = String::from(
        "Engine time = simulated cycles of the whole command (modern profile: HM at one word \
         per cycle) / the recorded Fmax; SQLite and Rust measured on this machine (best of several runs).\n\n",
    );
    out += &format!(
        "{:<8} {:>6} {:>7} {:>10} {:>10} {:>10} {:>10} {:>11} {:>12} {:>11} {:>12}\n",
        "what",
        "N",
        "result",
        "sqlite ms",
        "(load ms)",
        "rust ms",
        "unstbl ms",
        "hx8k ms",
        "hx8k cycles",
        "ecp5 ms",
        "ecp5 cycles"
    );
    for r in rows {
        let eng = |c: EngineConfig| r.engines.iter().find(|e| e.config == c);
        let cell = |c: EngineConfig| {
            eng(c).map_or(("-".to_string(), "-".to_string()), |e| {
                (
                    format!("{:.3}", ms(e.seconds_at_fmax())),
                    e.cycles.to_string(),
                )
            })
        };
        let (hx, hxc) = cell(EngineConfig::Small);
        let (ec, ecc) = cell(EngineConfig::Delta);
        out += &format!(
            "{:<8} {:>6} {:>7} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>11} {:>12} {:>11} {:>12}\n",
            r.workload.name(),
            r.workload.n(),
            r.result_tuples,
            ms(r.sqlite_query_s),
            ms(r.sqlite_load_s),
            ms(r.rust_sort_s),
            ms(r.rust_sort_unstable_s),
            hx,
            hxc,
            ec,
            ecc
        );
    }
    for f in RECORDED_FMAX {
        out += &format!("{}: {} MHz ({})\n", f.key, f.mhz, f.source);
    }
    out
}

/// The baselines as JSON: `baselines`, one object per workload (keys in
/// docs/PERFORMANCE.md).
pub fn baseline_json(rows: &[BaselineRow]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut o = json!({
                "workload": r.workload.name(),
                "n": r.workload.n(),
                "input_bytes": r.workload.input_bytes(),
                "result_tuples": r.result_tuples,
                "sqlite_load_ms": ms(r.sqlite_load_s),
                "sqlite_query_ms": ms(r.sqlite_query_s),
                "rust_sort_ms": ms(r.rust_sort_s),
                "rust_sort_unstable_ms": ms(r.rust_sort_unstable_s),
            });
            for e in &r.engines {
                let tag = match e.config {
                    EngineConfig::Small => "hx8k_small",
                    EngineConfig::Delta => "ecp5_delta",
                };
                o[format!("engine_cycles_{tag}")] = json!(e.cycles);
                o[format!("engine_steps_{tag}")] = json!(e.steps);
                o[format!("engine_ms_at_fmax_{tag}")] = json!(ms(e.seconds_at_fmax()));
                o[format!("engine_mb_per_s_at_fmax_{tag}")] =
                    json!(r.workload.input_bytes() as f64 / e.seconds_at_fmax() / 1e6);
                o[format!("engine_sim_wall_s_{tag}")] = json!(e.sim_wall_s);
            }
            o
        })
        .collect();
    json!({ "baselines": rows })
}
