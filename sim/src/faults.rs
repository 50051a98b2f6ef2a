//! `rdbe faults`: a fault-injection campaign against the paper's check mechanisms (issue 7,
//! TR-063 §1, §3.1, §4.2, §5.3, §5.4; results in `docs/RELIABILITY.md`).
//!
//! Each **transient experiment** draws a workload (random relations and one Delta command,
//! see [Workload]) and one single fault: a site (the engine core's input, the sort
//! pipeline → merger stream, the core's output: `rtl/src/fault_injector.rs`), a kind (a
//! flipped data, parity, NL, DP or `last` line, a dropped or duplicated beat), the engine
//! step it hits (drawn from the steps the fault-free run takes) and the beat of that step's
//! stream (drawn from the stream's length, so the fault lands). The control program runs
//! the command on the RTL with that fault; the outcome is compared with the reference
//! model's fault-free result:
//! * **masked**: no error, no retry, the right result (the corrupted line did not matter);
//! * **recovered**: an error was detected, the unit retried (§5.3) and the result is right;
//! * **reported**: the command failed with an error (detected, not recovered);
//! * **silent**: no error and a wrong result — what must not happen.
//!
//! An experiment whose fault never hit a beat (the injector's FAULT_INJECTED bit stayed
//! off, e.g. a merger command that stopped reading its input early) is not counted; another
//! is drawn. Before its faults, each workload runs once fault-free on the RTL backend, which
//! must give the model's result (otherwise the campaign stops: that is a bug, not a fault).
//!
//! Each **memory-word experiment** (`--memory-count`; on `verilator` a model of its own
//! whose memories are reachable through VPI, `verilator_backend::Model::Signals`) draws a
//! workload the same way and one upset of a stored word ([rdbe_rtl::memory_fault]): the
//! step, the cycle of that step (from the fault-free run's length), a memory among those
//! holding live words then (the sorting cells' FIFOs, U-memory, L-memory, the output
//! control part's tuple memories), a live word of it and one of its stored lines. It is
//! run and judged as above; one that strikes when no memory holds a live word, or after
//! its step ended, is not counted. A fault that struck counts even when the step then
//! hung and the watchdog ended it ([crate::engine::EngineFault::fault_hit]): its outcome
//! is what the retry made of it.
//!
//! Each **permanent experiment** puts a data line stuck at 0 or 1 on one site for every
//! step and runs the power-up self check (§5.4): the engine must refuse work and say which
//! test failed.
use crate::command::parse_script;
use crate::control_program::{ControlProgram, InjectedFault, StepShape};
use crate::engine::{new_engine, Profile, StepFault};
use crate::relation::{FieldType, Relation, Schema, Value};
use crate::sort_job::{Backend, EngineConfig};
use crate::verilator_backend::VerilatorEngine;
use anyhow::{bail, ensure, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdbe_rtl::fault_injector::{Fault, FaultKind, FaultSite, StreamFault};
use rdbe_rtl::memory_fault::{
    stored_line_kind, MemoryFault, MemoryHit, LINE_DRAWS, STORED_LINE_KINDS,
};
use rdbe_rtl::output_control_part::OUTPUT_TUPLE_MEMORY_NAMES;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Faults drawn per workload (the workload's fault-free runs are shared by them).
const FAULTS_PER_WORKLOAD: usize = 20;
/// Drawn faults that did not land, in a row, after which the campaign stops with an error.
const MAX_MISSES_IN_A_ROW: usize = 1_000;

#[derive(clap::Args, Clone, Debug)]
pub struct FaultOptions {
    /// Transient single-fault experiments (each one's fault hits a beat).
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Seed of the workloads and faults: the same seed gives the same campaign.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `verilator` (fast) or `rtl` (rust-hdl, 100x slower or more: docs/PERFORMANCE.md); the model has no injectors.
    #[arg(long, value_enum, default_value_t = Backend::Verilator)]
    pub backend: Backend,
    #[arg(long, value_enum, default_value_t = EngineConfig::Small)]
    pub config: EngineConfig,
    /// Memory-word experiments: one stored line of one live word of a sorting cell's or
    /// the merger's memory inverted during a step. On `verilator`, a model of its own whose
    /// memories are reachable (built on first use, like the other).
    #[arg(long, default_value_t = 1_000)]
    pub memory_count: usize,
    /// Skip the permanent (stuck-at) experiments on the self check.
    #[arg(long)]
    pub no_permanent: bool,
    /// Act only on the paper's check mechanisms (parity, sorting checker, framing, the
    /// watchdog), not on the stream counts and link checks added here: the "before" table.
    #[arg(long)]
    pub paper_checks_only: bool,
}

/// What became of one experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Masked,
    Recovered,
    Reported,
    Silent,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Masked,
        Outcome::Recovered,
        Outcome::Reported,
        Outcome::Silent,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Masked => "masked",
            Outcome::Recovered => "recovered",
            Outcome::Reported => "reported",
            Outcome::Silent => "silent",
        }
    }
}

/// One workload: relations `a`, `b` (same schema) and a one-command script.
#[derive(Clone, Debug)]
pub struct Workload {
    pub relations: Vec<Relation>,
    pub script: String,
}

/// The commands a workload draws from (relations `a` and `b`: `k:i16` nullable with
/// repeated values, `v:u16`, `s:char(3)`). They cover every merger command family: sorts
/// (in the stream and external), the unique and join families, restrictions, aggregates
/// (DP line), set operations and delete mode.
pub const COMMANDS: [&str; 14] = [
    "x = SORT a BY k",
    "x = SORT a BY v DESC, k",
    "x = UNIQUE a BY k",
    "x = UNIQUE a",
    "x = JOIN a, b ON a.k = b.k",
    "x = JOIN a, b ON a.k < b.k",
    "x = RESTRICT a WHERE k BETWEEN -2 AND 2",
    "x = RESTRICT a WHERE k = 1",
    "x = RESTRICT a WHERE k IS NULL",
    "x = AGGREGATE a BY k COMPUTE count(*) AS n, sum(v) AS t",
    "x = UNION a, b",
    "x = DIFFERENCE a, b",
    "x = INTERSECTION a, b",
    "DELETE FROM a WHERE k IN (1, 2)",
];

impl Workload {
    pub fn random(rng: &mut impl Rng) -> Result<Workload> {
        let schema = Schema::new(&[
            ("k", FieldType::I16),
            ("v", FieldType::U16),
            ("s", FieldType::Char(3)),
        ])?;
        let relation = |name: &str, rng: &mut dyn rand::RngCore| -> Result<Relation> {
            let n = rng.gen_range(1..=14);
            let tuples = (0..n)
                .map(|_| {
                    let k = if rng.gen_bool(0.15) {
                        Value::Null
                    } else {
                        Value::Signed(rng.gen_range(-4..=4))
                    };
                    let s: String = (0..rng.gen_range(0..=3))
                        .map(|_| (b'a' + rng.gen_range(0..3u8)) as char)
                        .collect();
                    vec![k, Value::Unsigned(rng.gen_range(0..6)), Value::Text(s)]
                })
                .collect();
            Relation::new(name, schema.clone(), tuples)
        };
        let a = relation("a", rng)?;
        let b = relation("b", rng)?;
        let script = COMMANDS[rng.gen_range(0..COMMANDS.len())].to_string();
        Ok(Workload {
            relations: vec![a, b],
            script,
        })
    }
}

/// A workload's result: every statement's result as compact tuples, and the retries.
struct Run {
    results: Vec<Vec<Vec<u16>>>,
    retries: usize,
}

fn run_workload(cp: &mut ControlProgram, w: &Workload) -> Result<Run> {
    for r in &w.relations {
        cp.hm.store(r)?;
    }
    let mut run = Run {
        results: vec![],
        retries: 0,
    };
    for s in parse_script("campaign", &w.script)? {
        let report = cp.execute(&s)?;
        run.retries += report.retries;
        run.results.push(cp.hm.read_tuples(&s.target)?);
    }
    Ok(run)
}

/// One transient experiment's record.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub command: String,
    pub fault: StreamFault,
    pub step: u64,
    pub outcome: Outcome,
    /// The error of a reported experiment.
    pub error: Option<String>,
}

/// One memory-word experiment's record.
#[derive(Clone, Debug)]
pub struct MemoryExperiment {
    pub command: String,
    /// Where it struck: the memory (`cell_03 memory B`, `U-memory`, `L-memory`, `output
    /// tuple memory U`...), the address and the line inverted.
    pub hit: MemoryHit,
    pub fault: MemoryFault,
    pub step: u64,
    pub outcome: Outcome,
    pub error: Option<String>,
}

/// The memories of the campaign's table: the sorting cells' FIFOs together, U, L, the
/// output control part's two tuple memories together.
pub const MEMORY_CLASSES: [&str; 4] = [
    "sorting cell",
    "U-memory",
    "L-memory",
    "output tuple memory",
];

/// A memory's row in the table: its class in [MEMORY_CLASSES].
pub fn memory_class(name: &str) -> &'static str {
    match name {
        "U-memory" => MEMORY_CLASSES[1],
        "L-memory" => MEMORY_CLASSES[2],
        _ if OUTPUT_TUPLE_MEMORY_NAMES.contains(&name) => MEMORY_CLASSES[3],
        _ => MEMORY_CLASSES[0],
    }
}

/// One outcome table (the stream faults' and the memory faults'): a row per key pair
/// with experiments (rows without any are left out), then the totals.
fn write_outcome_table(
    s: &mut String,
    heads: [&str; 2],
    rows: &[(&str, &str, [usize; 4])],
    total: [usize; 4],
) {
    let _ = writeln!(
        s,
        "| {} | {} | experiments | masked | recovered | reported | silent |",
        heads[0], heads[1]
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
    let row = |s: &mut String, a: &str, b: &str, t: &[usize; 4]| {
        let n: usize = t.iter().sum();
        let _ = writeln!(
            s,
            "| {a} | {b} | {n} | {} | {} | {} | {} |",
            t[0], t[1], t[2], t[3]
        );
    };
    for (a, b, t) in rows.iter().filter(|(_, _, t)| t.iter().sum::<usize>() > 0) {
        row(s, a, b, t);
    }
    row(s, "all", "all", &total);
}

/// Experiments by outcome, in [Outcome::ALL]'s order.
fn tally(outcomes: impl Iterator<Item = Outcome>) -> [usize; 4] {
    let mut t = [0; 4];
    for o in outcomes {
        t[o as usize] += 1;
    }
    t
}

/// What the campaign found.
#[derive(Default, Debug)]
pub struct CampaignResult {
    pub experiments: Vec<Experiment>,
    /// Drawn faults that never hit a beat (not counted).
    pub not_injected: usize,
    pub memory_experiments: Vec<MemoryExperiment>,
    /// Drawn memory faults whose memory held no live word when they struck, or that struck
    /// after the step had ended (not counted).
    pub memory_not_injected: usize,
    pub workloads: usize,
    /// Permanent faults: (site, kind, line) and the self check's verdict (`Err`: refused,
    /// with its message).
    pub permanent: Vec<(StreamFault, std::result::Result<(), String>)>,
    pub seconds: f64,
    pub backend: &'static str,
    /// The backend of the memory-word experiments: the stream experiments' one (for
    /// `verilator`, its model with public memories).
    pub memory_backend: &'static str,
}

impl CampaignResult {
    fn tally(&self, filter: impl Fn(&Experiment) -> bool) -> [usize; 4] {
        tally(
            self.experiments
                .iter()
                .filter(|e| filter(e))
                .map(|e| e.outcome),
        )
    }

    pub fn totals(&self) -> [usize; 4] {
        self.tally(|_| true)
    }

    fn memory_tally(&self, filter: impl Fn(&MemoryExperiment) -> bool) -> [usize; 4] {
        tally(
            self.memory_experiments
                .iter()
                .filter(|e| filter(e))
                .map(|e| e.outcome),
        )
    }

    /// The memory-word table's rows: (memory class, line kind, tally), for kinds hit.
    fn memory_rows(&self) -> Vec<(&'static str, &'static str, [usize; 4])> {
        let mut rows = vec![];
        for class in MEMORY_CLASSES {
            for kind in STORED_LINE_KINDS {
                let t = self.memory_tally(|e| {
                    memory_class(&e.hit.memory) == class && stored_line_kind(e.hit.line) == kind
                });
                if t.iter().sum::<usize>() > 0 {
                    rows.push((class, kind, t));
                }
            }
        }
        rows
    }

    /// The table: one row per site and kind, then the totals; the permanent faults; and
    /// the first silent experiments, if any.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} transient single-fault experiments over {} workloads ({} backend, {:.0} s); {} drawn faults never hit a beat and are not counted",
            self.experiments.len(),
            self.workloads,
            self.backend,
            self.seconds,
            self.not_injected
        );
        let mut rows = vec![];
        for site in FaultSite::ALL {
            for kind in FaultKind::TRANSIENT {
                let t = self.tally(|e| e.fault.site == site && e.fault.fault.kind == kind);
                rows.push((site.name(), kind.name(), t));
            }
        }
        write_outcome_table(&mut s, ["site", "fault"], &rows, self.totals());
        if !self.memory_experiments.is_empty() {
            let _ = writeln!(
                s,
                "{} memory-word experiments ({} backend): one stored line of one live word inverted during a step; {} drawn faults found no live word and are not counted",
                self.memory_experiments.len(),
                self.memory_backend,
                self.memory_not_injected
            );
            let total = self.memory_tally(|_| true);
            write_outcome_table(&mut s, ["memory", "line"], &self.memory_rows(), total);
        }
        if !self.permanent.is_empty() {
            let refused = self.permanent.iter().filter(|p| p.1.is_err()).count();
            let _ = writeln!(
                s,
                "permanent faults (a data line stuck at 0 or 1 on every step): the self check refused work for {refused} of {}",
                self.permanent.len()
            );
            let mut by_test: BTreeMap<String, usize> = BTreeMap::new();
            for (_, verdict) in &self.permanent {
                let key = match verdict {
                    Ok(()) => "passed (the fault did not show in the self check)".to_string(),
                    Err(e) => e.split(':').next().unwrap_or(e).to_string(),
                };
                *by_test.entry(key).or_default() += 1;
            }
            for (test, n) in by_test {
                let _ = writeln!(s, "  {n:4} {test}");
            }
        }
        // The first few experiments that went wrong, with the error of a reported one.
        for e in self
            .experiments
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Silent | Outcome::Reported))
            .take(10)
        {
            let _ = writeln!(
                s,
                "{}: `{}`, step {}, {} on the {} stream, beat {}, line {}{}",
                e.outcome.name(),
                e.command,
                e.step,
                e.fault.fault.kind.name(),
                e.fault.site.name(),
                e.fault.fault.target,
                e.fault.fault.line,
                e.error
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
        }
        for e in self
            .memory_experiments
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Silent | Outcome::Reported))
            .take(10)
        {
            let _ = writeln!(
                s,
                "{}: `{}`, step {}, cycle {}: {} line {} of a live word of {}{}",
                e.outcome.name(),
                e.command,
                e.step,
                e.fault.cycle,
                stored_line_kind(e.hit.line),
                e.hit.line,
                e.hit.memory,
                e.error
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
        }
        s
    }

    pub fn to_json(&self) -> serde_json::Value {
        let t = self.totals();
        let mut rows = vec![];
        for site in FaultSite::ALL {
            for kind in FaultKind::TRANSIENT {
                let t = self.tally(|e| e.fault.site == site && e.fault.fault.kind == kind);
                rows.push(serde_json::json!({
                    "site": site.name(), "kind": kind.name(),
                    "masked": t[0], "recovered": t[1], "reported": t[2], "silent": t[3],
                }));
            }
        }
        serde_json::json!({
            "experiments": self.experiments.len(),
            "masked": t[0],
            "recovered": t[1],
            "reported": t[2],
            "silent": t[3],
            "not_injected": self.not_injected,
            "workloads": self.workloads,
            "backend": self.backend,
            "seconds": self.seconds,
            "memory_experiments": self.memory_experiments.len(),
            "memory_backend": self.memory_backend,
            "memory_silent": self.memory_tally(|_| true)[3],
            "memory_not_injected": self.memory_not_injected,
            "memory_by_class_and_line": self.memory_rows().iter().map(|(class, kind, t)| serde_json::json!({
                "memory": class, "line": kind,
                "masked": t[0], "recovered": t[1], "reported": t[2], "silent": t[3],
            })).collect::<Vec<_>>(),
            "permanent": self.permanent.len(),
            "permanent_refused": self.permanent.iter().filter(|p| p.1.is_err()).count(),
            "by_site_and_kind": rows,
        })
    }
}

/// Run one workload fault-free on the model and on `cp`: the model's results and the
/// shape of each engine step (from `cp`'s run, cycles included). A difference between the
/// two is a bug, not a fault: the campaign stops.
fn reference_run(
    model: &mut ControlProgram,
    cp: &mut ControlProgram,
    w: &Workload,
) -> Result<(Run, Vec<StepShape>)> {
    model.reset();
    let reference = run_workload(model, w)?;
    cp.reset();
    cp.step_log = Some(vec![]);
    let clean = run_workload(cp, w);
    let steps = cp.step_log.take().unwrap_or_default();
    let clean = clean?;
    ensure!(!steps.is_empty(), "`{}` took no engine step", w.script);
    ensure!(
        clean.results == reference.results && clean.retries == 0,
        "without a fault the {} backend differs from the model on `{}`: {} retries, {:?} against the model's {:?} (relations {:?})",
        cp.engine().backend_name(),
        w.script,
        clean.retries,
        clean.results,
        reference.results,
        w.relations
    );
    Ok((reference, steps))
}

/// Run `w` with `fault` from a reset, then once more fault-free on the same engine (no
/// reset: a fault may leave something behind, such as a beat of a mis-framed stream, that
/// only the next command would meet), and judge both against `reference`. `None`: the
/// fault hit nothing. A run whose fault hit nothing and that failed all the same is an
/// error of the campaign (e.g. test equipment the backend could not work), not an outcome.
fn experiment(
    cp: &mut ControlProgram,
    w: &Workload,
    reference: &Run,
    fault: InjectedFault,
) -> Result<Option<(Outcome, Option<String>)>> {
    cp.reset();
    cp.inject(&[fault]);
    let hits = cp.faults_hit;
    let run = run_workload(cp, w);
    if cp.faults_hit == hits {
        if let Err(e) = run {
            bail!(
                "`{}` failed with a fault that hit nothing ({fault:?}): {e:#}",
                w.script
            );
        }
        return Ok(None);
    }
    cp.hm = Default::default();
    let next = run_workload(cp, w);
    Ok(Some(match (run, next) {
        (Err(e), _) => (Outcome::Reported, Some(format!("{e:#}"))),
        (Ok(r), _) if r.results != reference.results => (Outcome::Silent, None),
        (Ok(_), Err(e)) => (Outcome::Reported, Some(format!("the next command: {e:#}"))),
        (Ok(_), Ok(n)) if n.results != reference.results => (
            Outcome::Silent,
            Some("the next command's result is wrong".into()),
        ),
        (Ok(r), Ok(n)) if r.retries + n.retries > 0 => (Outcome::Recovered, None),
        (Ok(_), Ok(_)) => (Outcome::Masked, None),
    }))
}

/// Run experiments on `cp` until `count` are counted: random workloads, each with
/// [FAULTS_PER_WORKLOAD] faults, each on a random step of it, drawn by `draw` from that
/// step's shape; `record` gets each experiment's outcome (`None`: the fault hit nothing)
/// and says whether it counts. Returns the workloads drawn.
fn run_experiments<F: Copy + Into<StepFault>>(
    count: usize,
    rng: &mut ChaCha8Rng,
    model: &mut ControlProgram,
    cp: &mut ControlProgram,
    mut draw: impl FnMut(&mut ChaCha8Rng, &StepShape) -> F,
    mut record: impl FnMut(
        &mut ControlProgram,
        &Workload,
        u64,
        F,
        Option<(Outcome, Option<String>)>,
    ) -> bool,
) -> Result<usize> {
    let (mut counted, mut workloads, mut missed_in_a_row) = (0, 0, 0);
    while counted < count {
        let w = Workload::random(rng)?;
        let (reference, steps) = reference_run(model, cp, &w)?;
        workloads += 1;
        for _ in 0..FAULTS_PER_WORKLOAD {
            if counted >= count {
                break;
            }
            let step = rng.gen_range(0..steps.len());
            let fault = draw(rng, &steps[step]);
            let injected = InjectedFault {
                step: step as u64,
                fault: fault.into(),
            };
            let outcome = experiment(cp, &w, &reference, injected)?;
            if record(cp, &w, step as u64, fault, outcome) {
                counted += 1;
                missed_in_a_row = 0;
            } else {
                // Many miss (over half of the memory faults find no memory holding a live
                // word); a thousand in a row means the backend cannot inject them.
                missed_in_a_row += 1;
                ensure!(
                    missed_in_a_row < MAX_MISSES_IN_A_ROW,
                    "{MAX_MISSES_IN_A_ROW} drawn faults in a row did not land on the {} \
                     backend: it does not inject them (the last: {:?})",
                    cp.engine().backend_name(),
                    injected.fault
                );
            }
        }
    }
    Ok(workloads)
}

/// Run the campaign; `progress` is called after each experiment with the count so far
/// (stream experiments, then memory-word experiments).
pub fn run_campaign(
    opts: &FaultOptions,
    mut progress: impl FnMut(usize),
) -> Result<CampaignResult> {
    if opts.backend == Backend::Model {
        bail!("the model backend has no fault injectors: use --backend verilator or rtl");
    }
    let t0 = std::time::Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let profile = Profile::Modern;
    let program = |engine| -> Result<ControlProgram> {
        let mut cp = ControlProgram::new(engine, profile)?;
        cp.added_checks = !opts.paper_checks_only;
        Ok(cp)
    };
    let new_program = |backend| program(new_engine(opts.config, backend, profile));
    let mut model = ControlProgram::new(new_engine(opts.config, Backend::Model, profile), profile)?;
    let mut result = CampaignResult {
        backend: opts.backend.name(),
        ..Default::default()
    };
    // The program for the stream experiments and the permanent faults; not started (a
    // model build and a self check) when the campaign has neither.
    let mut stream_cp = if opts.count > 0 || !opts.no_permanent {
        let mut cp = new_program(opts.backend)?;
        debug_assert_eq!(cp.engine().backend_name(), result.backend);
        Some(cp)
    } else {
        None
    };
    let workloads = match stream_cp.as_mut() {
        None => 0,
        Some(cp) => run_experiments(
            opts.count,
            &mut rng,
            &mut model,
            cp,
            |rng, shape| {
                let site = FaultSite::ALL[rng.gen_range(0..FaultSite::ALL.len())];
                let beats = match site {
                    FaultSite::Input => shape.input_beats,
                    FaultSite::Sorted => shape.sorted_beats,
                    FaultSite::Output => shape.output_beats,
                };
                StreamFault {
                    site,
                    fault: Fault {
                        kind: FaultKind::TRANSIENT[rng.gen_range(0..FaultKind::TRANSIENT.len())],
                        target: rng.gen_range(0..beats as u32),
                        line: rng.gen_range(0..16),
                    },
                }
            },
            |_, w, step, fault, outcome| {
                let Some((outcome, error)) = outcome else {
                    result.not_injected += 1;
                    return false;
                };
                result.experiments.push(Experiment {
                    command: w.script.clone(),
                    fault,
                    step,
                    outcome,
                    error,
                });
                progress(result.experiments.len());
                true
            },
        )?,
    };
    result.workloads += workloads;
    if opts.memory_count > 0 {
        // The Verilated model that reaches its memories (a build of its own), or rust-hdl.
        let mut memory_cp = match opts.backend {
            Backend::Verilator => program(Box::new(
                VerilatorEngine::new(opts.config, profile).with_memory_access(),
            ))?,
            backend => new_program(backend)?,
        };
        result.memory_backend = memory_cp.engine().backend_name();
        let workloads = run_experiments(
            opts.memory_count,
            &mut rng,
            &mut model,
            &mut memory_cp,
            |rng, shape| MemoryFault {
                memory: rng.gen(),
                word: rng.gen(),
                line: rng.gen_range(0..LINE_DRAWS),
                cycle: rng.gen_range(0..shape.cycles.max(1)),
            },
            |cp, w, step, fault, outcome| {
                let hits = cp.engine().take_memory_hits();
                let (Some((outcome, error)), Some(hit)) = (outcome, hits.first()) else {
                    result.memory_not_injected += 1;
                    return false;
                };
                result.memory_experiments.push(MemoryExperiment {
                    command: w.script.clone(),
                    hit: hit.clone(),
                    fault,
                    step,
                    outcome,
                    error,
                });
                progress(result.experiments.len() + result.memory_experiments.len());
                true
            },
        )?;
        result.workloads += workloads;
    }
    if let (false, Some(cp)) = (opts.no_permanent, stream_cp.as_mut()) {
        for site in FaultSite::ALL {
            for kind in [FaultKind::StuckAt0, FaultKind::StuckAt1] {
                for line in 0..16 {
                    let fault = StreamFault {
                        site,
                        fault: Fault {
                            kind,
                            target: 0,
                            line,
                        },
                    };
                    cp.reset();
                    cp.set_permanent_fault(Some(StepFault::Stream(fault)));
                    let verdict = cp.self_check().map_err(|e| format!("{e:#}"));
                    cp.set_permanent_fault(None);
                    result.permanent.push((fault, verdict));
                }
            }
        }
    }
    result.seconds = t0.elapsed().as_secs_f64();
    Ok(result)
}
