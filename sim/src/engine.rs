//! The engine core as the control program sees it (paper §5.1): a device that the CPU sets
//! up for one *step* (the relation's layout and sort, the merger command and the output
//! format), feeds one tuple stream through the HM adapter IN, and reads back through the
//! HM adapter OUT, with status lines to check afterwards.
//!
//! Two backends implement [Engine] and must give identical tuples for every step:
//! * [RtlEngine]: the rust-hdl simulation of the engine core top (`DeltaEngineCore` or
//!   `SmallEngineCore`), clock edge by clock edge; it reports simulated cycles.
//! * [ModelEngine]: the pure reference models of the same modules (IN module, sorter,
//!   sorting checker, merger, output control part), holding U-memory in software.
//!
//! The profile sets the HM pacing: `modern` offers and accepts a word every cycle;
//! `delta1984` paces both HM adapters to the 1984 machine's 3 MB/s at its 220 ns cycle
//! (one 16-bit word per 666 ns, i.e. one word every three cycles).
use crate::sort_job::EngineConfig;
use anyhow::{anyhow, bail, Result};
use rdbe_rtl::engine_core::{CoreStatus, DeltaEngineCore, EngineCoreTop, SmallEngineCore};
use rdbe_rtl::harness::{Harness, Pacing};
use rdbe_rtl::merger::{MergerCommand, MergerConfig, MergerDelta, MergerSmall};
use rdbe_rtl::sort_pipeline::{model::sort_pipeline_model, PipelineSettings};
use rdbe_rtl::sorter::capacity_tuples;
use rdbe_rtl::tuple_stream::{split_tuples_with_dup, Beat, StreamTuple};

use std::path::{Path, PathBuf};

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
    /// HM adapter pacing: the chance per cycle that a word is offered (IN) or accepted
    /// (OUT). 3 MB/s of 2-byte words at 220 ns per cycle is 0.33 words per cycle.
    pub fn pacing(self) -> Pacing {
        match self {
            Profile::Modern => Pacing::FULL_RATE,
            Profile::Delta1984 => {
                let words_per_cycle = 3.0e6 / 2.0 * 220e-9;
                Pacing {
                    source_duty: words_per_cycle,
                    sink_duty: words_per_cycle,
                    seed: 1984,
                }
            }
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
            EngineConfig::Delta => Limits {
                config,
                cells: DeltaEngineCore::cell_address_bits(),
                memory_words: MergerDelta::MEMORY_WORDS,
                max_tuple_words: 2047,
                tuple_memory_words: MergerDelta::TUPLE_MEMORY_WORDS,
            },
            EngineConfig::Small => Limits {
                config,
                cells: SmallEngineCore::cell_address_bits(),
                memory_words: MergerSmall::MEMORY_WORDS,
                max_tuple_words: 128,
                tuple_memory_words: MergerSmall::TUPLE_MEMORY_WORDS,
            },
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
}

/// One set-up of the engine core and one stream through it.
pub trait Engine {
    fn limits(&self) -> Limits;
    fn backend_name(&self) -> &'static str;
    /// Set the core up for `merge` on a relation laid out as `sort` says, stream `input`
    /// (HM compact beats ending with the end-of-stream beat) and collect the result. The
    /// status flags are those after this step (the control program clears them before).
    fn step(
        &mut self,
        sort: &PipelineSettings,
        merge: &MergerConfig,
        input: &[Beat],
    ) -> Result<StepOutput>;
    /// Pulse the clear line: status flags and U-memory are cleared (after an error).
    fn clear(&mut self);
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
}

/// The rust-hdl simulation of an engine core top.
pub struct RtlEngine<T: EngineCoreTop> {
    harness: Harness<T>,
    limits: Limits,
    pacing: Pacing,
    /// Per-step pacing seeds differ so the 1984 pacing does not repeat one pattern.
    steps: u64,
    trace: Option<(PathBuf, PathBuf)>,
}

impl<T: EngineCoreTop> RtlEngine<T> {
    pub fn new(config: EngineConfig, profile: Profile) -> RtlEngine<T> {
        RtlEngine {
            harness: Harness::new(T::default()),
            limits: Limits::of(config),
            pacing: profile.pacing(),
            steps: 0,
            trace: None,
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

impl<T: EngineCoreTop> Drop for RtlEngine<T> {
    fn drop(&mut self) {
        let _ = self.end_trace(false);
    }
}

/// Cycle budget for a stream: generous, since a JOIN's output can be quadratic in its
/// input; beyond it the step is reported as hung rather than simulated for ever.
fn cycle_budget(input_words: usize, output_hint: usize, pacing: Pacing) -> u64 {
    let slow = (1.0 / pacing.source_duty.min(pacing.sink_duty)).ceil() as u64;
    (20_000 + 30 * (input_words + output_hint) as u64) * slow
}

impl<T: EngineCoreTop> Engine for RtlEngine<T> {
    fn limits(&self) -> Limits {
        self.limits
    }
    fn backend_name(&self) -> &'static str {
        "rtl"
    }
    fn step(
        &mut self,
        sort: &PipelineSettings,
        merge: &MergerConfig,
        input: &[Beat],
    ) -> Result<StepOutput> {
        self.harness.uut.apply(sort, merge)?;
        let u_words = self.harness.uut.status().u_tuples * merge.tuple_words.max(1);
        let output_hint = if merge.command.uses_u() {
            input.len() * (self.harness.uut.status().u_tuples + 1) + u_words
        } else {
            input.len()
        };
        let mut pacing = self.pacing;
        pacing.seed = pacing.seed.wrapping_add(self.steps);
        self.steps += 1;
        let budget = cycle_budget(input.len(), output_hint, pacing);
        let start = self.harness.cycles;
        let harness = &mut self.harness;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            harness.run_stream(input, pacing, budget)
        }));
        let run = match run {
            Ok(run) => run,
            Err(_) => {
                // The core is in an unknown state: start a fresh one.
                self.harness = Harness::new(T::default());
                bail!(
                    "the engine core did not finish {} in {budget} cycles",
                    merge.command.name()
                );
            }
        };
        let (tuples, dup) = split_tuples_with_dup(&run.output).into_iter().unzip();
        Ok(StepOutput {
            tuples,
            dup,
            cycles: self.harness.cycles - start,
            status: self.harness.uut.status(),
        })
    }
    fn trace_to(&mut self, path: &Path) -> Result<()> {
        self.start_trace(path)
    }
    fn finish_trace(&mut self, keep: bool) -> Result<()> {
        self.end_trace(keep)
    }
    fn clear(&mut self) {
        self.harness.uut.set_clear(true);
        self.harness.cycle();
        self.harness.uut.set_clear(false);
        self.harness.cycle();
    }
}

/// The reference models of the engine core's modules, U-memory held in software.
pub struct ModelEngine {
    limits: Limits,
    u: Vec<StreamTuple>,
    /// Sticky flags, as the RTL's.
    parity_error: bool,
}

impl ModelEngine {
    pub fn new(config: EngineConfig) -> ModelEngine {
        ModelEngine {
            limits: Limits::of(config),
            u: vec![],
            parity_error: false,
        }
    }
}

impl Engine for ModelEngine {
    fn limits(&self) -> Limits {
        self.limits
    }
    fn backend_name(&self) -> &'static str {
        "model"
    }
    fn step(
        &mut self,
        sort: &PipelineSettings,
        merge: &MergerConfig,
        input: &[Beat],
    ) -> Result<StepOutput> {
        sort.validate()?;
        merge.validate(self.limits.tuple_memory_words)?;
        // The IN module checks the parity of every data word.
        self.parity_error |= input.iter().any(|b| !b.eos && !b.parity_ok());
        let compact = split_tuples_with_dup(input)
            .into_iter()
            .map(|(t, _)| t)
            .collect::<Vec<_>>();
        let report = sort_pipeline_model(self.limits.cells, sort, &compact);
        let mut status = CoreStatus {
            capacity_tuples: self.limits.sort_capacity(sort.input.tuple_words),
            parity_error: self.parity_error,
            sort_error: report.violations != 0,
            violations: report.violations.min(0xffff),
            ..Default::default()
        };
        let loads = merge.command == MergerCommand::Load && !merge.delete;
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
        })
    }
    fn clear(&mut self) {
        self.u.clear();
        self.parity_error = false;
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
            Box::new(RtlEngine::<DeltaEngineCore>::new(config, profile))
        }
        (Backend::Rtl, EngineConfig::Small) => {
            Box::new(RtlEngine::<SmallEngineCore>::new(config, profile))
        }
    }
}
