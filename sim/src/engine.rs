//! The engine core as the control program sees it (paper §5.1): a device that the CPU sets
//! up for one *step* (the relation's layout and sort, the merger command and the output
//! format), feeds one tuple stream through the HM adapter IN, and reads back through the
//! HM adapter OUT, with status lines to check afterwards.
//!
//! Two backends implement [Engine] and must give identical tuples for every step:
//! * [RtlEngine]: the rust-hdl simulation of the whole RDBE top (`DeltaRdbe` or
//!   `SmallRdbe`: HM adapter IN → engine core → HM adapter OUT), clock edge by clock edge,
//!   set up and read through its register bus as the control program's CPU does
//!   (`rdbe_top::configure`, `rdbe_top::status_from_registers`); it reports simulated
//!   cycles, bus cycles included.
//! * [ModelEngine]: the pure reference models of the same modules (HM adapter IN, IN
//!   module, sorter, sorting checker, merger, output control part), holding U-memory in
//!   software.
//!
//! The profile sets the HM adapters' PACE register: `modern` moves a word every cycle;
//! `delta1984` paces both HM adapters to the 1984 machine's 3 MB/s at its 220 ns cycle
//! (one 16-bit word per 666 ns, i.e. one word every three cycles). The HM side of the
//! simulation itself is always ready: the adapters do the pacing, as in the machine.
use crate::sort_job::EngineConfig;
use anyhow::{anyhow, bail, ensure, Result};
use rdbe_rtl::engine_core::CoreStatus;
use rdbe_rtl::fault_injector::StreamFault;
use rdbe_rtl::harness::{Harness, Pacing};
use rdbe_rtl::hm_adapter::model::hm_in_model;
use rdbe_rtl::in_module::{InConfig, KeyType};
use rdbe_rtl::memory_fault::{corrupt_memory, MemoryFault, MemoryHit};
use rdbe_rtl::merger::{MergerCommand, MergerConfig, MergerDelta, MergerSettings, MergerSmall};
use rdbe_rtl::output_control_part::{OutputSettings, SideFormat};
use rdbe_rtl::rdbe_top::{
    configure, inject_writes, pulse_clear, status_from_registers, write_register, DeltaRdbe,
    HmSettings, RdbeTop, SmallRdbe,
};
use rdbe_rtl::sort_pipeline::{model::sort_pipeline_model, PipelineSettings};
use rdbe_rtl::sorter::capacity_tuples;
use rdbe_rtl::tuple_stream::{compact_beats, split_tuples_with_dup, Beat, StreamTuple};

use std::path::{Path, PathBuf};
use std::time::Instant;

/// Timing profile: how fast the HM side moves words and how long a clock cycle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// The HM adapters keep up with the core: a word every cycle.
    Modern,
    /// The 1984 machine: 220 ns cycle, HM transfers at 3 MB/s.
    Delta1984,
}

impl Profile {
    /// Clock period in nanoseconds. `modern` assumes issue 6's 100 MHz target: no Fmax has
    /// been measured yet (place and route is issue 5), so its modelled times are not a
    /// measurement of any part.
    pub fn cycle_ns(self) -> f64 {
        match self {
            Profile::Modern => 10.0,
            Profile::Delta1984 => 220.0,
        }
    }
    /// The HM adapters' PACE register: minimum cycles per word on the HM side. 3 MB/s of
    /// 2-byte words is a word per 667 ns, 3.03 cycles of 220 ns: pace 3.
    pub fn pace(self) -> u8 {
        match self {
            Profile::Modern => 0,
            Profile::Delta1984 => (2.0 / 3.0e6 / 220e-9_f64).round() as u8,
        }
    }
}

/// Sizes of an engine configuration that the control program plans with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub config: EngineConfig,
    /// The sorter's cells, as address bits per cell.
    pub cells: &'static [usize],
    /// U- and L-memory words each.
    pub memory_words: usize,
    /// Longest tuple the IN module and the merger's tuple memories take, in words.
    pub max_tuple_words: usize,
    /// Words of each of the output control part's tuple memories.
    pub tuple_memory_words: usize,
}

impl Limits {
    pub fn of(config: EngineConfig) -> Limits {
        match config {
            EngineConfig::Delta => Limits::of_top::<DeltaRdbe>(config, MergerDelta::MEMORY_WORDS),
            EngineConfig::Small => Limits::of_top::<SmallRdbe>(config, MergerSmall::MEMORY_WORDS),
        }
    }
    fn of_top<T: RdbeTop>(config: EngineConfig, memory_words: usize) -> Limits {
        Limits {
            config,
            cells: T::cell_address_bits(),
            memory_words,
            max_tuple_words: T::max_tuple_words(),
            tuple_memory_words: T::tuple_memory_words(),
        }
    }
    /// Tuples the sorter sorts in one pass (the paper's C, in tuples).
    pub fn sort_capacity(&self, tuple_words: usize) -> usize {
        capacity_tuples(self.cells, tuple_words)
    }
    /// Tuples U-memory holds.
    pub fn u_capacity(&self, tuple_words: usize) -> usize {
        self.memory_words / tuple_words
    }
    /// Tuples of one block that can be sorted and then held in U-memory.
    pub fn block_capacity(&self, tuple_words: usize) -> usize {
        self.sort_capacity(tuple_words)
            .min(self.u_capacity(tuple_words))
    }
}

/// What one step returned.
#[derive(Clone, Debug, Default)]
pub struct StepOutput {
    /// Output tuples in the HM compact format, with the DP line of each.
    pub tuples: Vec<Vec<u16>>,
    pub dup: Vec<bool>,
    /// Simulated clock cycles (0 on the model backend).
    pub cycles: u64,
    pub status: CoreStatus,
    /// A memory-word fault ([StepFault::Memory]) struck a live word during the step: test
    /// equipment outside the hardware, so not a status bit (the stream injectors' hits are
    /// `status.fault_injected`).
    pub memory_fault_hit: bool,
}

/// A fault for one step: test equipment for the check mechanisms (issue 7,
/// `docs/RELIABILITY.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepFault {
    /// HM adapter IN's diagnostic fault: the parity of this data word of the stream is
    /// inverted (the FAULT_ENABLE and FAULT_WORD registers).
    HmParity(u16),
    /// One of the engine core's fault injectors (the INJECT registers; RTL backends only).
    Stream(StreamFault),
    /// A stored word of a sorting cell's or the merger's memory corrupted during the step
    /// ([rdbe_rtl::memory_fault]; on the `verilator` backend, its model with public
    /// memories: `VerilatorEngine::with_memory_access`).
    Memory(MemoryFault),
}

impl From<StreamFault> for StepFault {
    fn from(fault: StreamFault) -> StepFault {
        StepFault::Stream(fault)
    }
}

impl From<MemoryFault> for StepFault {
    fn from(fault: MemoryFault) -> StepFault {
        StepFault::Memory(fault)
    }
}

impl StepFault {
    /// The HM adapter settings and the injector fault this fault makes.
    pub(crate) fn split(fault: Option<StepFault>, pace: u8) -> (HmSettings, Option<StreamFault>) {
        let parity_fault = match fault {
            Some(StepFault::HmParity(word)) => Some(word),
            _ => None,
        };
        let stream = match fault {
            Some(StepFault::Stream(f)) => Some(f),
            _ => None,
        };
        (HmSettings { pace, parity_fault }, stream)
    }
}

/// A detected engine fault that a retry may cure: the status lines flagged an error, or
/// the core did not finish its step in time (the watchdog: the engine is started afresh).
#[derive(Debug)]
pub struct EngineFault {
    pub message: String,
    /// A step's test fault ([StepFault]) had struck when the watchdog ended the step: its
    /// [StepOutput] is lost with the step, so this says it instead (a fault campaign
    /// counts the experiment).
    pub fault_hit: bool,
}
impl EngineFault {
    /// A fault the status lines or the control program's checks found.
    pub fn new(message: String) -> EngineFault {
        EngineFault {
            message,
            fault_hit: false,
        }
    }
    /// The watchdog: the core did not finish `command` in `budget` cycles.
    pub fn hang(command: &str, budget: u64, fault_hit: bool) -> EngineFault {
        EngineFault {
            message: format!("the engine core did not finish {command} in {budget} cycles"),
            fault_hit,
        }
    }
}
impl std::fmt::Display for EngineFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}
impl std::error::Error for EngineFault {}

/// One set-up of the engine core and one stream through it.
pub trait Engine {
    fn limits(&self) -> Limits;
    fn backend_name(&self) -> &'static str;
    /// Set the core up for `merge` on a relation laid out as `sort` says, stream `input`
    /// (raw HM words ending with the end-of-stream beat; their parity lines are ignored)
    /// and collect the result. `fault`: a fault for this step only ([StepFault]). The
    /// status flags are those after this step (the control program clears them before).
    /// A step that does not finish within [step_budget] is an [EngineFault].
    fn step(
        &mut self,
        sort: &PipelineSettings,
        merge: &MergerConfig,
        input: &[Beat],
        fault: Option<StepFault>,
    ) -> Result<StepOutput>;
    /// Pulse the clear line: status flags, stream counts and U-memory are cleared.
    fn clear(&mut self);
    /// Back to the power-up state (the control program's retry point after an error):
    /// every module's state, beats in flight included. The RTL designs have no reset
    /// flip-flops (their initial values are the FPGA configuration's), so this is a new
    /// simulation of the same top: on a board, a reconfiguration or a global reset.
    fn reset(&mut self) {
        self.clear();
    }
    /// Trace every signal of the following steps into a VCD file (RTL backend only).
    fn trace_to(&mut self, path: &Path) -> Result<()> {
        bail!(
            "the {} backend has no signals to trace into {}",
            self.backend_name(),
            path.display()
        )
    }
    /// Close the trace: keep the file, or delete it after a failed run.
    fn finish_trace(&mut self, _keep: bool) -> Result<()> {
        Ok(())
    }
    /// Where the [StepFault::Memory] faults struck since the last call (by default none: a
    /// backend that cannot reach its memories).
    fn take_memory_hits(&mut self) -> Vec<MemoryHit> {
        vec![]
    }
}

/// The rust-hdl simulation of an RDBE top, driven through its register bus.
pub struct RtlEngine<T: RdbeTop> {
    harness: Harness<T>,
    limits: Limits,
    /// The PACE register's value.
    pace: u8,
    trace: Option<(PathBuf, PathBuf)>,
    /// The fault injectors are armed (the last step had a fault): disarm before the next.
    fault_armed: bool,
    /// Where memory faults struck ([Engine::take_memory_hits]).
    memory_hits: Vec<MemoryHit>,
}

impl<T: RdbeTop> RtlEngine<T> {
    /// Settling passes and clock cycles simulated so far (the simulation's cost and work).
    pub fn passes_and_cycles(&self) -> (u64, u64) {
        (self.harness.passes, self.harness.cycles)
    }

    pub fn new(config: EngineConfig, profile: Profile) -> RtlEngine<T> {
        RtlEngine {
            harness: Harness::new(T::default()),
            limits: Limits::of(config),
            pace: profile.pace(),
            trace: None,
            fault_armed: false,
            memory_hits: vec![],
        }
    }

    /// Trace every signal into a VCD file. The file is written under a temporary name and
    /// renamed by `finish_trace`, so a failed run leaves no partial file.
    fn start_trace(&mut self, path: &Path) -> Result<()> {
        let partial = path.with_extension("vcd.partial");
        self.harness
            .trace_to(&partial)
            .map_err(|e| anyhow!("creating VCD file {}: {e}", partial.display()))?;
        self.trace = Some((partial, path.to_path_buf()));
        Ok(())
    }

    fn end_trace(&mut self, keep: bool) -> Result<()> {
        self.harness.finish_trace();
        if let Some((partial, path)) = self.trace.take() {
            if keep {
                std::fs::rename(&partial, &path)
                    .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
            } else {
                let _ = std::fs::remove_file(&partial);
            }
        }
        Ok(())
    }
}

impl<T: RdbeTop> Drop for RtlEngine<T> {
    fn drop(&mut self) {
        let _ = self.end_trace(false);
    }
}

/// The simulation's bound on one step (not something the CPU reads), shared by the `rtl`
/// and `verilator` backends: generous, since a JOIN's output can be quadratic in its input
/// (the only command whose output can exceed its input plus U-memory); beyond it the step
/// is reported as hung rather than simulated for ever.
pub fn step_budget(merge: &MergerConfig, input_words: usize, u_tuples: usize, pace: u8) -> u64 {
    let output_hint = if merge.command.is_join() {
        input_words * (u_tuples + 1) + u_tuples * merge.tuple_words.max(1)
    } else if merge.command.uses_u() {
        input_words + u_tuples * merge.tuple_words.max(1)
    } else {
        input_words
    };
    (20_000 + 30 * (input_words + output_hint) as u64) * pace.max(1) as u64
}

impl<T: RdbeTop> Engine for RtlEngine<T> {
    fn limits(&self) -> Limits {
        self.limits
    }
    fn backend_name(&self) -> &'static str {
        crate::sort_job::Backend::Rtl.name()
    }
    fn step(
        &mut self,
        sort: &PipelineSettings,
        merge: &MergerConfig,
        input: &[Beat],
        fault: Option<StepFault>,
    ) -> Result<StepOutput> {
        let start = self.harness.cycles;
        let (hm, stream_fault) = StepFault::split(fault, self.pace);
        configure(&mut self.harness, sort, merge, hm)?;
        if stream_fault.is_some() || self.fault_armed {
            for (addr, data) in inject_writes(stream_fault) {
                write_register(&mut self.harness, addr, data);
            }
            self.fault_armed = stream_fault.is_some();
        }
        let u_tuples = self.harness.uut.status().u_tuples;
        let budget = step_budget(merge, input.len(), u_tuples, self.pace);
        let memory_fault = match fault {
            Some(StepFault::Memory(f)) => Some(f),
            _ => None,
        };
        let mut memory_hit = None;
        let harness = &mut self.harness;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            harness.run_stream_with(input, Pacing::FULL_RATE, budget, |cycle, top| {
                if let Some(f) = memory_fault.filter(|f| f.cycle == cycle) {
                    memory_hit = corrupt_memory(top, &f);
                }
            })
        }));
        let struck = memory_hit.is_some();
        self.memory_hits.extend(memory_hit);
        let run = match run {
            Ok(Ok(run)) => run,
            // A panic inside the simulation (a corrupted word can drive a module into a
            // state no test reaches) is treated like a hang.
            Ok(Err(_)) | Err(_) => {
                // The injectors' flag is read before the core is replaced.
                let hit =
                    struck || (stream_fault.is_some() && self.harness.uut.status().fault_injected);
                // The core is in an unknown state: start a fresh one.
                self.harness = Harness::new(T::default());
                self.fault_armed = false;
                return Err(EngineFault::hang(merge.command.name(), budget, hit).into());
            }
        };
        let (tuples, dup) = split_tuples_with_dup(&run.output).into_iter().unzip();
        let (status, _tuples_output) = status_from_registers(&mut self.harness);
        Ok(StepOutput {
            tuples,
            dup,
            cycles: self.harness.cycles - start,
            status,
            memory_fault_hit: struck,
        })
    }
    fn trace_to(&mut self, path: &Path) -> Result<()> {
        self.start_trace(path)
    }
    fn finish_trace(&mut self, keep: bool) -> Result<()> {
        self.end_trace(keep)
    }
    fn clear(&mut self) {
        pulse_clear(&mut self.harness);
    }
    fn take_memory_hits(&mut self) -> Vec<MemoryHit> {
        std::mem::take(&mut self.memory_hits)
    }
    fn reset(&mut self) {
        // A new simulation of the same top, traced or not (a trace goes on through it): a
        // traced run retries exactly as an untraced one.
        self.harness.restart(T::default());
        self.fault_armed = false;
    }
}

/// The reference models of the engine core's modules, U-memory held in software.
pub struct ModelEngine {
    limits: Limits,
    u: Vec<StreamTuple>,
    /// Sticky flags, as the RTL's.
    parity_error: bool,
    /// Steps since the last clear: the stream counts the RTL keeps.
    steps: u64,
}

impl ModelEngine {
    pub fn new(config: EngineConfig) -> ModelEngine {
        ModelEngine {
            limits: Limits::of(config),
            u: vec![],
            parity_error: false,
            steps: 0,
        }
    }
}

impl Engine for ModelEngine {
    fn limits(&self) -> Limits {
        self.limits
    }
    fn backend_name(&self) -> &'static str {
        crate::sort_job::Backend::Model.name()
    }
    fn step(
        &mut self,
        sort: &PipelineSettings,
        merge: &MergerConfig,
        input: &[Beat],
        fault: Option<StepFault>,
    ) -> Result<StepOutput> {
        let parity_fault = match fault {
            None => None,
            Some(StepFault::HmParity(word)) => Some(word),
            Some(StepFault::Stream(f)) => bail!(
                "the model backend has no fault injectors ({} on the {} stream): use rtl or verilator",
                f.fault.kind.name(),
                f.site.name()
            ),
            Some(StepFault::Memory(_)) => {
                bail!("the model backend has no memories to corrupt: use rtl")
            }
        };
        sort.validate()?;
        merge.validate(self.limits.tuple_memory_words)?;
        // HM adapter IN generates the parity (and the diagnostic fault); the IN module
        // checks it on every data word.
        let input = hm_in_model(input, parity_fault);
        self.parity_error |= input.iter().any(|b| !b.eos && !b.parity_ok());
        let compact = split_tuples_with_dup(&input)
            .into_iter()
            .map(|(t, _)| t)
            .collect::<Vec<_>>();
        let report = sort_pipeline_model(self.limits.cells, sort, &compact);
        self.steps += 1;
        let streams = (self.steps % rdbe_rtl::engine_core::STREAM_COUNT_MODULUS) as u8;
        let mut status = CoreStatus {
            streams_in: streams,
            streams_merged: streams,
            streams_out: streams,
            capacity_tuples: self.limits.sort_capacity(sort.input.tuple_words),
            parity_error: self.parity_error,
            sort_error: report.violations != 0,
            violations: report.violations.min(0xffff),
            ..Default::default()
        };
        let loads = merge.command == MergerCommand::Load && !merge.delete;
        status.l_taken = if loads {
            report.tuples.len() as u32
        } else {
            merge.model_l_taken(&self.u, &report.tuples)? as u32
        };
        let (tuples, dup) = if loads {
            // A relation that does not fit leaves U empty, as in the RTL.
            if report.tuples.len() * merge.tuple_words > self.limits.memory_words {
                status.u_overflow = true;
                self.u.clear();
            } else {
                self.u = report.tuples;
            }
            (vec![], vec![])
        } else {
            merge
                .model_with_dup(&self.u, &report.tuples)?
                .into_iter()
                .unzip()
        };
        status.u_tuples = self.u.len();
        Ok(StepOutput {
            tuples,
            dup,
            cycles: 0,
            status,
            memory_fault_hit: false,
        })
    }
    fn clear(&mut self) {
        self.u.clear();
        self.parity_error = false;
        self.steps = 0;
    }
}

/// An engine of the chosen configuration and backend.
pub fn new_engine(
    config: EngineConfig,
    backend: crate::sort_job::Backend,
    profile: Profile,
) -> Box<dyn Engine> {
    use crate::sort_job::Backend;
    match (backend, config) {
        (Backend::Model, _) => Box::new(ModelEngine::new(config)),
        (Backend::Rtl, EngineConfig::Delta) => {
            Box::new(RtlEngine::<DeltaRdbe>::new(config, profile))
        }
        (Backend::Rtl, EngineConfig::Small) => {
            Box::new(RtlEngine::<SmallRdbe>::new(config, profile))
        }
        // Built (or found in the cache) and started at its first step.
        (Backend::Verilator, _) => Box::new(crate::verilator_backend::VerilatorEngine::new(
            config, profile,
        )),
    }
}

/// A PASS-1 of `tuples` random 4-word tuples with the sorter on, at full rate, on a
/// started engine of any backend: (cycles, seconds) of the step (the simulation-speed
/// workload of `rdbe bench`, on Verilator and on rust-hdl alike).
pub fn pass1(engine: &mut dyn Engine, tuples: usize) -> Result<(u64, f64)> {
    let (sort, pass, beats) = pass1_workload(tuples);
    engine.clear();
    let t0 = Instant::now();
    let out = engine.step(&sort, &pass, &beats, None)?;
    let seconds = t0.elapsed().as_secs_f64();
    ensure!(
        out.tuples.len() == tuples,
        "PASS-1 of {tuples} tuples returned {}",
        out.tuples.len()
    );
    Ok((out.cycles, seconds))
}

/// [pass1]'s workload on the small engine core alone on rust-hdl (no register bus, no HM
/// adapters: the settings applied to its ports, the stream straight into the IN module):
/// cycles of the stream, seconds, settling passes.
pub fn pass1_engine_core(tuples: usize) -> Result<(u64, f64, u64)> {
    use rdbe_rtl::engine_core::{EngineCoreTop, SmallEngineCore};
    let (sort, pass, beats) = pass1_workload(tuples);
    let mut h = Harness::new(SmallEngineCore::default());
    h.uut.apply(&sort, &pass)?;
    // A stream's first beat follows a settings change by a cycle (the sorting cells'
    // registered pass decision), as the IN module's slice gives it behind the bus.
    h.cycle();
    let (cycles, passes) = (h.cycles, h.passes);
    let t0 = Instant::now();
    let run = h.run_stream(&beats, Pacing::FULL_RATE, 100 * beats.len() as u64);
    let seconds = t0.elapsed().as_secs_f64();
    let out = split_tuples_with_dup(&run.output);
    ensure!(
        out.len() == tuples,
        "PASS-1 of {tuples} tuples on the engine core returned {}",
        out.len()
    );
    Ok((h.cycles - cycles, seconds, h.passes - passes))
}

/// PASS-1's settings and a fixed pseudo-random relation of 4-word tuples (tag word 0: no
/// nulls), as compact beats.
fn pass1_workload(tuples: usize) -> (PipelineSettings, MergerConfig, Vec<Beat>) {
    let input = InConfig {
        tuple_words: 4,
        key_offset: 1,
        key_words: 1,
        key_type: KeyType::Unsigned,
        key_null_bit: Some(0),
    };
    let sort = PipelineSettings {
        input: input.clone(),
        descending: false,
        sort_enable: true,
        tuples_hint: tuples.min(0xffff),
    };
    let pass = MergerConfig {
        command: MergerCommand::Pass1,
        delete: false,
        settings: MergerSettings::ascending(1),
        tuple_words: 4,
        output: OutputSettings::both(SideFormat::whole(&input, 3)),
    };
    // A fixed pseudo-random relation (xorshift), tag word 0 (no nulls).
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u16
    };
    let relation: Vec<Vec<u16>> = (0..tuples)
        .map(|i| vec![0, next(), next(), i as u16])
        .collect();
    let beats = compact_beats(&relation);
    (sort, pass, beats)
}
