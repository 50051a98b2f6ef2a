//! The engine core (paper §4, Fig. 2): IN module → sorter → sorting checker → merger (its
//! operation part and output control part), as one synthesizable block.
//!
//! HM compact tuples go in, HM compact tuples come out. Each stream is one step of an
//! operation: the control program sets `sort_settings` (the relation's layout and the
//! sort) and the merger's settings, sends the relation, and waits for the end-of-stream
//! beat at the output before it changes them. A LOAD step sorts the relation into U-memory
//! (it outputs only the end-of-stream beat); the next step's stream is merged against it.
//!
//! The control program's register interface in front of these ports and the HM adapters
//! are in [crate::rdbe_top] and [crate::hm_adapter].
//!
//! Demand-driven two-way merge (§5.1, external sort case 3): SORT-EX with
//! `MergerSettings::u_partial` merges a chunk of run A held in U-memory with run B and ends
//! when the chunk runs out; `l_taken` (and [CoreStatus::l_taken]) then says how many
//! tuples of B it took, so the next chunk's SORT-EX resumes B there, and `input_unneeded`
//! tells the HM adapter IN that the rest of the stream will be dropped. Both come from the
//! merger's operation part (see `docs/MERGER.md`); the register top and the HM adapter do
//! not use them yet.
use crate::dff::DFF;
use crate::fault_injector::{FaultInjector, FaultKind};
use crate::harness::StreamBlock;
use crate::link_check::LinkCheck;
use crate::merger::{Merger, MergerConfig, MergerDelta, MergerSmall};
use crate::operation_part::CommandSettings;
use crate::output_control_part::OutputFormat;
use crate::sort_pipeline::{
    model::sort_pipeline_model, DeltaSortPipeline, PipelinePort, PipelineSettings,
    SmallSortPipeline, TinySortPipeline,
};
use crate::sorter::{DELTA_CELL_ADDRESS_BITS, SMALL_CELL_ADDRESS_BITS, TINY_CELL_ADDRESS_BITS};
use crate::tuple_stream::{TupleStreamIn, TupleStreamOut};
use anyhow::Result;
use rust_hdl::prelude::*;

/// Status lines of the engine core (sticky flags until `clear`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CoreStatus {
    pub capacity_tuples: usize,
    /// A word with bad parity entered the IN module, the sorting checker or the merger's
    /// output control part (with `rdbe_top`: or HM adapter OUT).
    pub parity_error: bool,
    pub framing_error: bool,
    /// The sorting checker found tuples out of order.
    pub sort_error: bool,
    pub violations: u32,
    pub command_error: bool,
    pub u_overflow: bool,
    pub l_overflow: bool,
    pub u_tuples: usize,
    /// L tuples the last (or current) merger command advanced past: after a partial-U
    /// SORT-EX, the index in the L run where the next chunk's SORT-EX resumes (the model's
    /// value: [core_step_l_taken]).
    pub l_taken: u32,
    /// An armed fault injector has hit its beat (test equipment, not an error).
    pub fault_injected: bool,
    /// End-of-stream beats (modulo 32) since `clear` into the sort pipeline, into the
    /// merger and (RDBE top) out of HM adapter OUT: each must equal the steps since the
    /// clear, and no beat may wait at the output between steps (`output_pending`).
    /// [CoreStatus::stream_count_error] checks them.
    pub streams_in: u8,
    pub streams_merged: u8,
    pub streams_out: u8,
    pub output_pending: bool,
    /// A link check ([crate::link_check]) found the two ends of a connection disagreeing,
    /// or the sorter let out a different number of tuples than it took
    /// (the sort pipeline's `tuple_count_error`).
    pub link_error: bool,
}

/// The stream counts wrap at this (5-bit counters).
pub const STREAM_COUNT_MODULUS: u64 = 32;

impl CoreStatus {
    /// The stream counts against `steps` steps since the last clear: a message when a
    /// stage saw another number of end-of-stream beats, or a beat waits at the output.
    pub fn stream_count_error(&self, steps: u64) -> Option<String> {
        let want = (steps % STREAM_COUNT_MODULUS) as u8;
        if self.output_pending {
            return Some(
                "stream counts: a beat waits at the output after the end of the stream".into(),
            );
        }
        for (count, stage) in [
            (self.streams_in, "the sort pipeline took"),
            (self.streams_merged, "the merger took"),
            (self.streams_out, "HM adapter OUT sent"),
        ] {
            if count != want {
                return Some(format!(
                    "stream counts: {stage} {count} streams (modulo {STREAM_COUNT_MODULUS}) where {want} were sent"
                ));
            }
        }
        None
    }

    /// Any error flag.
    pub fn error(&self) -> bool {
        self.parity_error
            || self.framing_error
            || self.sort_error
            || self.command_error
            || self.u_overflow
            || self.l_overflow
    }
}

/// What the drivers need of an engine core configuration.
pub trait EngineCoreTop: StreamBlock + Default {
    /// Drive the static inputs for one step: the relation's sort and the merger command.
    fn apply(&mut self, sort: &PipelineSettings, merge: &MergerConfig) -> Result<()>;
    fn set_clear(&mut self, clear: bool);
    fn status(&self) -> CoreStatus;
    /// Address bits of the sorter's cells, for the model.
    fn cell_address_bits() -> &'static [usize];
}

macro_rules! define_engine_core {
    ($(#[$meta:meta])* $name:ident, $pipeline:ty, $merger:ty, $cells:expr) => {
        $(#[$meta])*
        #[derive(LogicBlock, Default)]
        pub struct $name {
            pub clock: Signal<In, Clock>,
            /// HM compact tuples, then the end-of-stream beat.
            pub data_in: TupleStreamIn,
            /// The step's result as HM compact tuples, then the end-of-stream beat.
            pub data_out: TupleStreamOut,
            /// The relation's layout and sort order (IN module, sorter, checker).
            pub sort_settings: Signal<In, PipelinePort>,
            /// The merger command and its settings.
            pub merge_settings: Signal<In, CommandSettings>,
            pub u_format: Signal<In, OutputFormat>,
            pub l_format: Signal<In, OutputFormat>,
            pub new_tid: Signal<In, Bit>,
            pub tid_base: Signal<In, Bits<32>>,
            /// Synchronous clear of the status flags (and of U-memory).
            pub clear: Signal<In, Bit>,
            pub capacity_tuples: Signal<Out, Bits<16>>,
            pub parity_error: Signal<Out, Bit>,
            pub framing_error: Signal<Out, Bit>,
            pub sort_error: Signal<Out, Bit>,
            pub violations: Signal<Out, Bits<16>>,
            pub command_error: Signal<Out, Bit>,
            pub u_overflow: Signal<Out, Bit>,
            pub l_overflow: Signal<Out, Bit>,
            pub u_tuples: Signal<Out, Bits<16>>,
            /// The merger is running a command.
            pub busy: Signal<Out, Bit>,
            /// The merger's `l_taken`: L tuples its current (or last) command advanced past,
            /// cleared when a command starts.
            pub l_taken: Signal<Out, Bits<32>>,
            /// The merger's `input_unneeded`: its command has ended but its input has not
            /// (every tuple still coming, in the sort pipeline or not sent yet, is dropped),
            /// so the HM adapter IN may end the stream early: at a tuple boundary, with the
            /// end-of-stream beat. Meaningful when the sorter passes the stream through
            /// (`sort_enable` off, as for the runs of a two-way merge).
            pub input_unneeded: Signal<Out, Bit>,
            /// Test equipment ([crate::fault_injector], issue 7): the stream the fault hits
            /// ([FaultSite](crate::fault_injector::FaultSite) index: 0 input, 1 sorted, 2 output). A synthesis top ties every
            /// `fault_*` input to 0 (kind Off) and yosys removes the injectors.
            pub fault_site: Signal<In, Bits<2>>,
            pub fault_kind: Signal<In, FaultKind>,
            /// The beat it hits, counted from 0 on its stream since `fault_restart`.
            pub fault_target: Signal<In, Bits<32>>,
            pub fault_line: Signal<In, Bits<4>>,
            /// Synchronous: the injectors count beats from 0 again and forget their hits.
            pub fault_restart: Signal<In, Bit>,
            /// The fault has hit a beat since `fault_restart`.
            pub fault_injected: Signal<Out, Bit>,
            /// End-of-stream beats the sort pipeline took since `clear` (modulo 32): one per
            /// step, or the stream was mis-framed (a duplicated or lost end of stream).
            pub streams_in: Signal<Out, Bits<5>>,
            /// End-of-stream beats the merger took since `clear` (modulo 32).
            pub streams_merged: Signal<Out, Bits<5>>,
            /// A link check failed: the beats the merger took differ from those the sort
            /// pipeline sent, or those leaving the core from those the merger sent
            /// ([crate::link_check]); or the sorter lost or made a tuple (the sort
            /// pipeline's `tuple_count_error`).
            pub link_error: Signal<Out, Bit>,
            streams_in_count: DFF<Bits<5>>,
            streams_merged_count: DFF<Bits<5>>,
            sort_pipeline: $pipeline,
            merger: $merger,
            injector_input: FaultInjector,
            injector_sorted: FaultInjector,
            injector_output: FaultInjector,
            link_check_sorted: LinkCheck,
            link_check_output: LinkCheck,
        }

        impl Logic for $name {
            #[hdl_gen]
            fn update(&mut self) {
                dff_setup!(self, clock, streams_in_count, streams_merged_count);
                clock!(
                    self,
                    clock,
                    sort_pipeline,
                    merger,
                    injector_input,
                    injector_sorted,
                    injector_output,
                    link_check_sorted,
                    link_check_output
                );
                TupleStreamIn::link(&mut self.data_in, &mut self.injector_input.data_in);
                TupleStreamOut::join(
                    &mut self.injector_input.data_out,
                    &mut self.sort_pipeline.data_in,
                );
                TupleStreamOut::join(
                    &mut self.sort_pipeline.data_out,
                    &mut self.injector_sorted.data_in,
                );
                TupleStreamOut::join(&mut self.injector_sorted.data_out, &mut self.merger.data_in);
                TupleStreamOut::join(&mut self.merger.data_out, &mut self.injector_output.data_in);
                TupleStreamOut::link(&mut self.data_out, &mut self.injector_output.data_out);
                self.injector_input.kind.next = FaultKind::Off;
                self.injector_sorted.kind.next = FaultKind::Off;
                self.injector_output.kind.next = FaultKind::Off;
                if self.fault_site.val() == 0 {
                    self.injector_input.kind.next = self.fault_kind.val();
                }
                if self.fault_site.val() == 1 {
                    self.injector_sorted.kind.next = self.fault_kind.val();
                }
                if self.fault_site.val() == 2 {
                    self.injector_output.kind.next = self.fault_kind.val();
                }
                self.injector_input.target.next = self.fault_target.val();
                self.injector_sorted.target.next = self.fault_target.val();
                self.injector_output.target.next = self.fault_target.val();
                self.injector_input.line.next = self.fault_line.val();
                self.injector_sorted.line.next = self.fault_line.val();
                self.injector_output.line.next = self.fault_line.val();
                self.injector_input.restart.next = self.fault_restart.val();
                self.injector_sorted.restart.next = self.fault_restart.val();
                self.injector_output.restart.next = self.fault_restart.val();
                // ---- link checks: sort pipeline → merger, merger → the core's output
                self.link_check_sorted.tx_fire.next =
                    self.sort_pipeline.data_out.valid.val() & self.sort_pipeline.data_out.ready.val();
                self.link_check_sorted.tx_word.next = self.sort_pipeline.data_out.word.val();
                self.link_check_sorted.rx_fire.next =
                    self.merger.data_in.valid.val() & self.merger.data_in.ready.val();
                self.link_check_sorted.rx_word.next = self.merger.data_in.word.val();
                self.link_check_sorted.clear.next = self.clear.val();
                self.link_check_output.tx_fire.next =
                    self.merger.data_out.valid.val() & self.merger.data_out.ready.val();
                self.link_check_output.tx_word.next = self.merger.data_out.word.val();
                // (The injector's output is the core's `data_out`, linked.)
                self.link_check_output.rx_fire.next =
                    self.data_out.valid.val() & self.data_out.ready.val();
                self.link_check_output.rx_word.next = self.data_out.word.val();
                self.link_check_output.clear.next = self.clear.val();
                self.link_error.next = self.link_check_sorted.error.val()
                    | self.link_check_output.error.val()
                    | self.sort_pipeline.tuple_count_error.val();
                // ---- stream counts (a framing check beside the paper's)
                if self.sort_pipeline.data_in.valid.val()
                    & self.sort_pipeline.data_in.ready.val()
                    & self.sort_pipeline.data_in.word.val().eos
                {
                    self.streams_in_count.d.next = self.streams_in_count.q.val() + 1;
                }
                if self.merger.data_in.valid.val()
                    & self.merger.data_in.ready.val()
                    & self.merger.data_in.word.val().eos
                {
                    self.streams_merged_count.d.next = self.streams_merged_count.q.val() + 1;
                }
                if self.clear.val() {
                    self.streams_in_count.d.next = 0.into();
                    self.streams_merged_count.d.next = 0.into();
                }
                self.streams_in.next = self.streams_in_count.q.val();
                self.streams_merged.next = self.streams_merged_count.q.val();
                self.fault_injected.next = self.injector_input.injected.val()
                    | self.injector_sorted.injected.val()
                    | self.injector_output.injected.val();
                self.sort_pipeline.settings.next = self.sort_settings.val();
                self.sort_pipeline.clear.next = self.clear.val();
                self.merger.settings.next = self.merge_settings.val();
                self.merger.u_format.next = self.u_format.val();
                self.merger.l_format.next = self.l_format.val();
                self.merger.new_tid.next = self.new_tid.val();
                self.merger.tid_base.next = self.tid_base.val();
                self.merger.clear.next = self.clear.val();
                self.capacity_tuples.next = self.sort_pipeline.capacity_tuples.val();
                self.parity_error.next =
                    self.sort_pipeline.parity_error.val() | self.merger.parity_error.val();
                self.framing_error.next =
                    self.sort_pipeline.framing_error.val() | self.merger.framing_error.val();
                self.sort_error.next = self.sort_pipeline.sort_error.val();
                self.violations.next = self.sort_pipeline.violations.val();
                self.command_error.next = self.merger.command_error.val();
                self.u_overflow.next = self.merger.u_overflow.val();
                self.l_overflow.next = self.merger.l_overflow.val();
                self.u_tuples.next = self.merger.u_tuples.val();
                self.busy.next = self.merger.busy.val();
                self.l_taken.next = self.merger.l_taken.val();
                self.input_unneeded.next = self.merger.input_unneeded.val();
            }
        }

        impl EngineCoreTop for $name {
            fn apply(&mut self, sort: &PipelineSettings, merge: &MergerConfig) -> Result<()> {
                sort.validate()?;
                merge.validate(<$merger>::TUPLE_MEMORY_WORDS)?;
                anyhow::ensure!(
                    merge.tuple_words == sort.input.tuple_words,
                    "the merger expects {}-word tuples, the relation has {}",
                    merge.tuple_words,
                    sort.input.tuple_words
                );
                self.sort_settings.next = sort.port();
                self.merge_settings.next = merge.command_settings();
                self.u_format.next = merge.output.u.to_bits();
                self.l_format.next = merge.output.l.to_bits();
                self.new_tid.next = merge.output.new_tid;
                self.tid_base.next = (merge.output.tid_base as u64).into();
                self.clear.next = false;
                Ok(())
            }
            fn set_clear(&mut self, clear: bool) {
                self.clear.next = clear;
            }
            fn status(&self) -> CoreStatus {
                CoreStatus {
                    capacity_tuples: self.capacity_tuples.val().index(),
                    parity_error: self.parity_error.val(),
                    framing_error: self.framing_error.val(),
                    sort_error: self.sort_error.val(),
                    violations: self.violations.val().index() as u32,
                    command_error: self.command_error.val(),
                    u_overflow: self.u_overflow.val(),
                    l_overflow: self.l_overflow.val(),
                    u_tuples: self.u_tuples.val().index(),
                    l_taken: self.l_taken.val().to_u32(),
                    fault_injected: self.fault_injected.val(),
                    streams_in: self.streams_in.val().index() as u8,
                    streams_merged: self.streams_merged.val().index() as u8,
                    // HM adapter OUT's, in the RDBE top.
                    streams_out: 0,
                    output_pending: false,
                    link_error: self.link_error.val(),
                }
            }
            fn cell_address_bits() -> &'static [usize] {
                $cells
            }
        }

        crate::impl_stream_block!($name);

        impl crate::memory_fault::StoredWords for $name {
            /// The sorter's cells' memories, then the merger's U- and L-memories.
            fn live_memories(&mut self) -> Vec<crate::memory_fault::LiveMemory<'_>> {
                let mut all: Vec<_> = (self.sort_pipeline.sorter.live_memories().into_iter())
                    .map(|m| m.within("sort_pipeline.sorter"))
                    .collect();
                all.extend(self.merger.live_memories().into_iter().map(|m| m.within("merger")));
                all
            }
        }
    };
}

define_engine_core!(
    /// The paper-size engine core: 12-cell sorter, 64 KB U- and L-memories.
    DeltaEngineCore,
    DeltaSortPipeline,
    MergerDelta,
    &DELTA_CELL_ADDRESS_BITS
);

define_engine_core!(
    /// The iCE40 HX8K engine core: 5-cell sorter, 256-word merger memories.
    SmallEngineCore,
    SmallSortPipeline,
    MergerSmall,
    &SMALL_CELL_ADDRESS_BITS
);

/// The tiny core's merger: 128-word U- and L-memories (the tiny sorter's string of 8
/// tuples of 16 words) and 16-word tuple memories (one tuple of the longest length the
/// tiny pipeline takes).
pub type MergerTiny = Merger<7, 8, 4, 5>;

define_engine_core!(
    /// The iCEBreaker (UP5K) engine core for the self check: 3-cell sorter, tuples up to
    /// 16 words, 128-word merger memories.
    TinyEngineCore,
    TinySortPipeline,
    MergerTiny,
    &TINY_CELL_ADDRESS_BITS
);

/// Reference model of one engine-core step: `l_compact` sorted by `l_sort` and merged
/// against `u` (the internal tuples U-memory holds) by `merge`.
pub fn core_step_model(
    cells: &[usize],
    l_sort: &PipelineSettings,
    l_compact: &[Vec<u16>],
    merge: &MergerConfig,
    u: &[crate::tuple_stream::StreamTuple],
) -> Result<Vec<Vec<u16>>> {
    let l = sort_pipeline_model(cells, l_sort, l_compact).tuples;
    merge.model(u, &l)
}

/// The merger's `l_taken` after the step [core_step_model] models
/// ([MergerConfig::model_l_taken] on the sorted stream).
pub fn core_step_l_taken(
    cells: &[usize],
    l_sort: &PipelineSettings,
    l_compact: &[Vec<u16>],
    merge: &MergerConfig,
    u: &[crate::tuple_stream::StreamTuple],
) -> Result<usize> {
    let l = sort_pipeline_model(cells, l_sort, l_compact).tuples;
    merge.model_l_taken(u, &l)
}

/// As [core_step_model], with each output tuple's DP line ([MergerConfig::model_with_dup]):
/// after PASS-1 of a sorted relation, DP marks the groups of equal keys.
pub fn core_step_model_with_dup(
    cells: &[usize],
    l_sort: &PipelineSettings,
    l_compact: &[Vec<u16>],
    merge: &MergerConfig,
    u: &[crate::tuple_stream::StreamTuple],
) -> Result<Vec<(Vec<u16>, bool)>> {
    let l = sort_pipeline_model(cells, l_sort, l_compact).tuples;
    merge.model_with_dup(u, &l)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::harness::{Harness, Pacing};
    use crate::in_module::{InConfig, KeyType};
    use crate::merger::{MergerCommand, MergerSettings};
    use crate::output_control_part::{OutputSettings, SideFormat};
    use crate::tuple_stream::{compact_beats, dp_constant_per_tuple, split_tuples_with_dup, Beat};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Output tuples with their DP line.
    type TuplesWithDup = Vec<(Vec<u16>, bool)>;

    /// LOAD `u` then run `command` on `l`, through the RTL core and the model.
    fn step<T: EngineCoreTop>(
        h: &mut Harness<T>,
        command: MergerCommand,
        u: &[Vec<u16>],
        l: &[Vec<u16>],
        pacing: Pacing,
    ) -> (TuplesWithDup, TuplesWithDup) {
        step_with(h, command, MergerSettings::ascending(1), u, l, pacing)
    }

    /// As [step], with the merger's settings; checks `l_taken` against the model too.
    fn step_with<T: EngineCoreTop>(
        h: &mut Harness<T>,
        command: MergerCommand,
        settings: MergerSettings,
        u: &[Vec<u16>],
        l: &[Vec<u16>],
        pacing: Pacing,
    ) -> (TuplesWithDup, TuplesWithDup) {
        let input = InConfig {
            tuple_words: 4,
            key_offset: 2,
            key_words: 1,
            key_type: KeyType::Signed,
            key_null_bit: Some(1),
        };
        let sort = PipelineSettings {
            input: input.clone(),
            descending: false,
            sort_enable: true,
            tuples_hint: 0,
        };
        let merge = MergerConfig {
            command,
            delete: false,
            settings,
            tuple_words: 4,
            output: OutputSettings {
                new_tid: true,
                tid_base: 7,
                ..OutputSettings::both(SideFormat::whole(&input, 3))
            },
        };
        let load = MergerConfig {
            command: MergerCommand::Load,
            settings: MergerSettings {
                u_partial: false,
                ..settings
            },
            ..merge
        };
        h.uut.apply(&sort, &load).unwrap();
        let r = h.run_stream(&compact_beats(u), pacing, 200_000);
        assert_eq!(r.output, vec![Beat::eos()], "LOAD outputs nothing");
        h.uut.apply(&sort, &merge).unwrap();
        let r = h.run_stream(&compact_beats(l), pacing, 200_000);
        assert!(!h.uut.status().error(), "{:?}", h.uut.status());
        let cells = T::cell_address_bits();
        let u_internal = sort_pipeline_model(cells, &sort, u).tuples;
        assert_eq!(
            h.uut.status().l_taken as usize,
            core_step_l_taken(cells, &sort, l, &merge, &u_internal).unwrap(),
            "l_taken of {}",
            command.name()
        );
        let expected = core_step_model_with_dup(cells, &sort, l, &merge, &u_internal).unwrap();
        assert_eq!(
            core_step_model(cells, &sort, l, &merge, &u_internal).unwrap(),
            expected.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>()
        );
        assert!(dp_constant_per_tuple(&r.output));
        (split_tuples_with_dup(&r.output), expected)
    }

    /// Random compact tuples `[tag, payload, signed key in -3..3, index]`, nulls 15 %.
    pub(crate) fn relation(rng: &mut ChaCha8Rng, n: usize) -> Vec<Vec<u16>> {
        (0..n)
            .map(|i| {
                let null = rng.gen_bool(0.15);
                vec![
                    (null as u16) << 1,
                    rng.gen(),
                    rng.gen_range(0..6u16).wrapping_sub(3),
                    i as u16,
                ]
            })
            .collect()
    }

    /// The sorter's order of [relation]'s compact tuples: signed keys, nulls last (all
    /// equal), for `sort_by_key` (stable).
    pub(crate) fn sort_key(t: &[u16]) -> (bool, i16) {
        let null = t[0] & 2 != 0;
        (null, if null { 0 } else { t[2] as i16 })
    }

    /// A sorted run of [relation]'s tuples, in the order the sorter gives them.
    pub(crate) fn sorted_run(rng: &mut ChaCha8Rng, n: usize) -> Vec<Vec<u16>> {
        let mut r = relation(rng, n);
        r.sort_by_key(|t| sort_key(t));
        r
    }

    /// LOAD then `command` for each of `commands` on one core, random relations of up to
    /// `max_u` and `max_l` tuples at random pacing, each step against the model.
    fn runs_like_the_model<T: EngineCoreTop>(
        seed: u64,
        commands: &[MergerCommand],
        max_u: usize,
        max_l: usize,
    ) -> Harness<T> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut h = Harness::new(T::default());
        for &command in commands {
            let (nu, nl) = (rng.gen_range(0..=max_u), rng.gen_range(0..=max_l));
            let u = relation(&mut rng, nu);
            let l = relation(&mut rng, nl);
            let pacing = Pacing {
                source_duty: rng.gen_range(0.5..=1.0),
                sink_duty: rng.gen_range(0.5..=1.0),
                seed: rng.gen(),
            };
            let (got, expected) = step(&mut h, command, &u, &l, pacing);
            assert_eq!(got, expected, "{}", command.name());
        }
        h
    }

    #[test]
    fn small_core_runs_loads_and_commands_like_the_model() {
        use MergerCommand::*;
        runs_like_the_model::<SmallEngineCore>(
            41,
            &[JoinEq, SortEx, UnqEx, RestNe, Pass2, JoinGe],
            24,
            29,
        );
    }

    #[test]
    fn tiny_core_runs_loads_and_commands_like_the_model() {
        // The iCEBreaker's core (3-cell sorter: 8 tuples, 128-word U-memory), relations
        // within its capacity (beyond it, the sorting checker flags the unsorted strings).
        use MergerCommand::*;
        let h = runs_like_the_model::<TinyEngineCore>(45, &[JoinEq, SortEx, Pass1, RestNe], 8, 8);
        assert_eq!(h.uut.status().capacity_tuples, 8);
    }

    #[test]
    fn small_core_runs_partial_u_sort_ex_like_the_model() {
        // U holds a chunk of a longer run (the relation is sorted on LOAD): SORT-EX ends
        // when the chunk is used up, and l_taken says how much of L it merged.
        let mut rng = ChaCha8Rng::seed_from_u64(44);
        let mut h = Harness::new(SmallEngineCore::default());
        let settings = MergerSettings {
            u_partial: true,
            ..MergerSettings::ascending(1)
        };
        let mut partial_ends = 0;
        for case in 0..5 {
            let (nu, nl) = (rng.gen_range(0..12), rng.gen_range(0..25));
            let u = relation(&mut rng, nu);
            let l = relation(&mut rng, nl);
            let pacing = Pacing {
                source_duty: rng.gen_range(0.5..=1.0),
                sink_duty: rng.gen_range(0.5..=1.0),
                seed: rng.gen(),
            };
            let (got, expected) =
                step_with(&mut h, MergerCommand::SortEx, settings, &u, &l, pacing);
            assert_eq!(got, expected, "case {case}");
            partial_ends += ((h.uut.status().l_taken as usize) < l.len()) as usize;
        }
        assert!(partial_ends > 0, "some case ended before L did");
    }

    #[test]
    fn pass1_of_a_sorted_relation_carries_dp_for_its_groups() {
        // PASS-1 after the sort: the output tuples carry the sorting checker's DP, which
        // marks the groups of equal keys (nulls form one group) for aggregates.
        let mut rng = ChaCha8Rng::seed_from_u64(43);
        let mut h = Harness::new(SmallEngineCore::default());
        for case in 0..4 {
            let l = relation(&mut rng, [0, 1, 17, 30][case]);
            let pacing = Pacing {
                source_duty: rng.gen_range(0.5..=1.0),
                sink_duty: rng.gen_range(0.5..=1.0),
                seed: rng.gen(),
            };
            let (got, expected) = step(&mut h, MergerCommand::Pass1, &[], &l, pacing);
            assert_eq!(got, expected, "case {case}");
            // The compact output's key is word 2 (signed), its null flag tag bit 1.
            let key = |t: &Vec<u16>| {
                (
                    t[0] >> 1 & 1 == 1,
                    if t[0] >> 1 & 1 == 1 { 0 } else { t[2] },
                )
            };
            for (i, (t, dup)) in got.iter().enumerate() {
                let equal_next = got.get(i + 1).is_some_and(|(n, _)| key(n) == key(t));
                assert_eq!(*dup, equal_next, "case {case}, tuple {i}: {got:?}");
            }
            if l.len() > 10 {
                assert!(got.iter().any(|(_, d)| *d), "duplicates exist");
            }
        }
    }

    #[test]
    fn delta_core_joins_at_paper_size() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut h = Harness::new(DeltaEngineCore::default());
        let u = relation(&mut rng, 60);
        let l = relation(&mut rng, 80);
        let (got, expected) = step(&mut h, MergerCommand::JoinEq, &u, &l, Pacing::FULL_RATE);
        assert!(!got.is_empty());
        assert_eq!(got, expected);
    }

    #[test]
    fn mismatched_layouts_are_refused() {
        let mut h = Harness::new(SmallEngineCore::default());
        let input = InConfig {
            tuple_words: 4,
            key_offset: 1,
            key_words: 1,
            key_type: KeyType::Unsigned,
            key_null_bit: None,
        };
        let sort = PipelineSettings {
            input: input.clone(),
            descending: false,
            sort_enable: true,
            tuples_hint: 0,
        };
        let merge = MergerConfig {
            command: MergerCommand::Pass1,
            delete: false,
            settings: MergerSettings::ascending(1),
            tuple_words: 5,
            output: OutputSettings::both(SideFormat::unrotated(5)),
        };
        let e = h.uut.apply(&sort, &merge).unwrap_err().to_string();
        assert!(e.contains("5-word"), "{e}");
    }

    #[test]
    fn small_engine_core_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(SmallEngineCore::default());
        crate::verilog::check_module("engine_core_small", &v).unwrap();
    }

    #[test]
    fn delta_engine_core_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(DeltaEngineCore::default());
        crate::verilog::check_module("engine_core_delta", &v).unwrap();
    }
}
