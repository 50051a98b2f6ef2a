//! The front half of the engine core (paper §4, Fig. 2): IN module → sorter → sorting
//! checker, as one synthesizable block.
//!
//! HM compact tuples go in; tuples in the internal format (key first, transformed, tag word
//! at the tail) come out sorted in strings of `capacity_tuples`, with NL and DP driven. The
//! merger (issue 3) and the output control part that undoes the rotation and the key
//! transformation come after it; until then software undoes them
//! ([crate::in_module::rotate_to_compact], [crate::in_module::undo_transform_key]).
use crate::dff::DFF;
use crate::harness::{Harness, Pacing, StreamBlock};
use crate::in_module::{InConfig, InModule, InModuleDelta, InModuleSmall};
use crate::sorter::{
    DeltaSorter, SmallSorter, SortSettings, TinySorter, DELTA_CELL_ADDRESS_BITS,
    SMALL_CELL_ADDRESS_BITS, TINY_CELL_ADDRESS_BITS,
};
use crate::sorting_checker::CheckerReport;
use crate::sorting_checker::{SortingChecker, SortingCheckerDelta, SortingCheckerSmall};
use crate::tuple_stream::from_beats;
use crate::tuple_stream::{TupleStreamIn, TupleStreamOut};
use rust_hdl::prelude::*;

/// Static settings of one sort through the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineSettings {
    /// IN module: tuple length (tag word included), key position, length, type, null bit.
    pub input: InConfig,
    pub descending: bool,
    /// Low: tuples pass the sorter unsorted (the checker still drives DP and counts
    /// violations).
    pub sort_enable: bool,
    /// Tuples in the relation if known (0: unknown): lets cells a small relation does not
    /// need pass (see `SortingCell::run_limit`).
    pub tuples_hint: usize,
}

impl PipelineSettings {
    pub fn sort_settings(&self) -> SortSettings {
        SortSettings {
            tuple_words: self.input.tuple_words,
            key_words: self.input.key_words,
            descending: self.descending,
            sort_enable: self.sort_enable,
            tuples_hint: self.tuples_hint,
        }
    }
    pub fn validate(&self) -> anyhow::Result<()> {
        self.input.validate()?;
        self.sort_settings().validate()
    }
}

/// The pipeline's settings as one port value (the pipeline's and the engine core's).
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct PipelinePort {
    pub tuple_words: Bits<12>,
    pub key_offset: Bits<12>,
    pub key_words: Bits<12>,
    pub key_type: Bits<2>,
    pub key_nullable: Bit,
    pub key_null_bit: Bits<4>,
    pub descending: Bit,
    pub sort_enable: Bit,
    pub tuples_hint: Bits<16>,
}

impl PipelineSettings {
    pub fn port(&self) -> PipelinePort {
        let i = &self.input;
        PipelinePort {
            tuple_words: (i.tuple_words as u64).into(),
            key_offset: (i.key_offset as u64).into(),
            key_words: (i.key_words as u64).into(),
            key_type: i.key_type.code().into(),
            key_nullable: i.key_null_bit.is_some(),
            key_null_bit: (i.key_null_bit.unwrap_or(0) as u64).into(),
            descending: self.descending,
            sort_enable: self.sort_enable,
            tuples_hint: self.sort_settings().hint_port().into(),
        }
    }
}

/// Status lines the control program reads after a sort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PipelineStatus {
    pub capacity_tuples: usize,
    pub parity_error: bool,
    pub framing_error: bool,
    pub sort_error: bool,
    pub violations: u32,
    /// The sorter let out a different number of tuples than it took.
    pub tuple_count_error: bool,
}

/// What the drivers need of a pipeline configuration.
pub trait SortPipelineTop: StreamBlock + Default {
    /// Drive the static configuration inputs.
    fn apply(&mut self, s: &PipelineSettings);
    fn set_clear(&mut self, clear: bool);
    fn status(&self) -> PipelineStatus;
    /// Address bits of the sorter's cells, for the model.
    fn cell_address_bits() -> &'static [usize];
    /// Longest tuple (words, tag included) this configuration takes.
    fn max_tuple_words() -> usize;
}

/// One sort through the RTL pipeline.
#[derive(Clone, Debug)]
pub struct PipelineRun {
    /// Output tuples (internal format) with DP, as the checker emitted them.
    pub output: Vec<crate::tuple_stream::StreamTuple>,
    pub status: PipelineStatus,
    /// Cycles from the first input beat offered to the end-of-stream beat leaving.
    pub cycles: u64,
}

/// Configure a harnessed pipeline, clear its status, stream `compact` tuples through it.
pub fn run_pipeline<T: SortPipelineTop>(
    h: &mut Harness<T>,
    s: &PipelineSettings,
    compact: &[Vec<u16>],
    pacing: Pacing,
) -> anyhow::Result<PipelineRun> {
    s.input.validate_for(T::max_tuple_words())?;
    s.sort_settings().validate()?;
    for (i, t) in compact.iter().enumerate() {
        anyhow::ensure!(
            t.len() == s.input.tuple_words,
            "tuple {} has {} words, the relation's tuples have {}",
            i + 1,
            t.len(),
            s.input.tuple_words
        );
    }
    h.uut.apply(s);
    h.uut.set_clear(true);
    h.cycle();
    h.uut.set_clear(false);
    let beats = crate::tuple_stream::compact_beats(compact);
    // Generous bound: the pipeline moves about one word per cycle.
    let limit = 10_000
        + 4 * beats.len() as u64
            * if pacing.source_duty < 1.0 || pacing.sink_duty < 1.0 {
                8
            } else {
                1
            };
    let run = h.run_stream(&beats, pacing, limit);
    let output = from_beats(&run.output, s.input.tuple_words)
        .map_err(|e| anyhow::anyhow!("pipeline output framing: {e:?}"))?;
    Ok(PipelineRun {
        output,
        status: h.uut.status(),
        cycles: run.cycles,
    })
}

/// The model's answer in the same shape as [PipelineRun::output].
pub fn model_output<T: SortPipelineTop>(
    s: &PipelineSettings,
    compact: &[Vec<u16>],
) -> CheckerReport {
    model::sort_pipeline_model(T::cell_address_bits(), s, compact)
}

macro_rules! define_pipeline {
    ($(#[$meta:meta])* $name:ident, $in_module:ty, $sorter:ty, $checker:ty, $cells:expr) => {
        $(#[$meta])*
        #[derive(LogicBlock, Default)]
        pub struct $name {
            pub clock: Signal<In, Clock>,
            /// HM compact tuples, then the end-of-stream beat.
            pub data_in: TupleStreamIn,
            /// Sorted internal-format tuples with NL and DP, then the end-of-stream beat.
            pub data_out: TupleStreamOut,
            /// The relation's layout and the sort ([PipelineSettings::port]).
            pub settings: Signal<In, PipelinePort>,
            /// Synchronous clear of all status flags.
            pub clear: Signal<In, Bit>,
            /// Tuples per sorted string leaving the sorter.
            pub capacity_tuples: Signal<Out, Bits<16>>,
            /// Sticky: a word with bad parity entered the IN module or the checker.
            pub parity_error: Signal<Out, Bit>,
            /// Sticky: the IN module saw a tuple whose framing disagrees with `tuple_words`.
            pub framing_error: Signal<Out, Bit>,
            /// The sorting checker found tuples out of order.
            pub sort_error: Signal<Out, Bit>,
            pub violations: Signal<Out, Bits<16>>,
            /// Sticky: the sorter let out a different number of tuples in a stream than it
            /// took (issue 7, not in the paper: a cell's memory word whose end-of-stream
            /// line flipped ends a string early and loses its tuples, with nothing out of
            /// order or mis-framed for the checker to see). Compared when the stream's end
            /// leaves the sorter.
            pub tuple_count_error: Signal<Out, Bit>,
            tuples_into_sorter: DFF<Bits<16>>,
            tuples_out_of_sorter: DFF<Bits<16>>,
            tuple_count_flag: DFF<Bit>,
            pub in_module: $in_module,
            pub sorter: $sorter,
            pub sorting_checker: $checker,
        }

        impl Logic for $name {
            #[hdl_gen]
            fn update(&mut self) {
                dff_setup!(self, clock, tuples_into_sorter, tuples_out_of_sorter, tuple_count_flag);
                clock!(self, clock, in_module, sorter, sorting_checker);
                TupleStreamIn::link(&mut self.data_in, &mut self.in_module.data_in);
                TupleStreamOut::join(&mut self.in_module.data_out, &mut self.sorter.data_in);
                TupleStreamOut::join(&mut self.sorter.data_out, &mut self.sorting_checker.data_in);
                TupleStreamOut::link(&mut self.data_out, &mut self.sorting_checker.data_out);
                self.in_module.tuple_words.next = self.settings.val().tuple_words;
                self.in_module.key_offset.next = self.settings.val().key_offset;
                self.in_module.key_words.next = self.settings.val().key_words;
                self.in_module.key_type.next = self.settings.val().key_type;
                self.in_module.key_nullable.next = self.settings.val().key_nullable;
                self.in_module.key_null_bit.next = self.settings.val().key_null_bit;
                self.in_module.clear.next = self.clear.val();
                self.sorter.tuple_words.next = self.settings.val().tuple_words;
                self.sorter.key_words.next = self.settings.val().key_words;
                self.sorter.descending.next = self.settings.val().descending;
                self.sorter.sort_enable.next = self.settings.val().sort_enable;
                self.sorter.tuples_hint.next = self.settings.val().tuples_hint;
                self.sorting_checker.tuple_words.next = self.settings.val().tuple_words;
                self.sorting_checker.key_words.next = self.settings.val().key_words;
                self.sorting_checker.descending.next = self.settings.val().descending;
                self.sorting_checker.clear.next = self.clear.val();
                self.capacity_tuples.next = self.sorter.capacity_tuples.val();
                self.parity_error.next =
                    self.in_module.parity_error.val() | self.sorting_checker.parity_error.val();
                self.framing_error.next = self.in_module.framing_error.val();
                self.sort_error.next = self.sorting_checker.sort_error.val();
                self.violations.next = self.sorting_checker.violations.val();
                // ---- tuples into and out of the sorter, per stream
                self.tuple_count_error.next = self.tuple_count_flag.q.val();
                if self.sorter.data_in.valid.val()
                    & self.sorter.data_in.ready.val()
                    & self.sorter.data_in.word.val().last
                    & !self.sorter.data_in.word.val().eos
                {
                    self.tuples_into_sorter.d.next = self.tuples_into_sorter.q.val() + 1;
                }
                if self.sorter.data_out.valid.val() & self.sorter.data_out.ready.val() {
                    if self.sorter.data_out.word.val().eos {
                        // The stream has left the sorter whole (the next one enters only
                        // after the merger has finished this one).
                        if self.tuples_into_sorter.q.val() != self.tuples_out_of_sorter.q.val() {
                            self.tuple_count_flag.d.next = true;
                        }
                        self.tuples_into_sorter.d.next = 0.into();
                        self.tuples_out_of_sorter.d.next = 0.into();
                    } else if self.sorter.data_out.word.val().last {
                        self.tuples_out_of_sorter.d.next = self.tuples_out_of_sorter.q.val() + 1;
                    }
                }
                if self.clear.val() {
                    self.tuples_into_sorter.d.next = 0.into();
                    self.tuples_out_of_sorter.d.next = 0.into();
                    self.tuple_count_flag.d.next = false;
                }
            }
        }

        impl SortPipelineTop for $name {
            fn status(&self) -> PipelineStatus {
                PipelineStatus {
                    capacity_tuples: self.capacity_tuples.val().index(),
                    parity_error: self.parity_error.val(),
                    framing_error: self.framing_error.val(),
                    sort_error: self.sort_error.val(),
                    violations: self.violations.val().index() as u32,
                    tuple_count_error: self.tuple_count_error.val(),
                }
            }
            fn cell_address_bits() -> &'static [usize] {
                $cells
            }
            fn max_tuple_words() -> usize {
                <$in_module>::MAX_TUPLE_WORDS.min(2047)
            }
            fn set_clear(&mut self, clear: bool) {
                self.clear.next = clear;
            }
            fn apply(&mut self, s: &PipelineSettings) {
                self.settings.next = s.port();
                self.clear.next = false;
            }
        }

        crate::impl_stream_block!($name);
    };
}

define_pipeline!(
    /// Paper-size pipeline: tuples up to 2047 words, 12-cell sorter (C = min(4096·L, 64 KB)).
    DeltaSortPipeline,
    InModuleDelta,
    DeltaSorter,
    SortingCheckerDelta,
    &DELTA_CELL_ADDRESS_BITS
);

define_pipeline!(
    /// iCE40 HX8K pipeline: tuples up to 128 words, 5-cell sorter (32 tuples of ≤ 16 bytes).
    SmallSortPipeline,
    InModuleSmall,
    SmallSorter,
    SortingCheckerSmall,
    &SMALL_CELL_ADDRESS_BITS
);

/// The tiny pipeline's IN module: tuples up to 16 words, the longest the tiny sorter sorts
/// (a double buffer of 32 words).
pub type InModuleTiny = InModule<4, 5>;
/// The tiny pipeline's sorting checker: tuples up to 16 words (a 32-word ring).
pub type SortingCheckerTiny = SortingChecker<5, 6>;

define_pipeline!(
    /// The iCEBreaker's (UP5K) pipeline for the self check: tuples up to 16 words, 3-cell
    /// sorter (8 tuples of ≤ 32 bytes).
    TinySortPipeline,
    InModuleTiny,
    TinySorter,
    SortingCheckerTiny,
    &TINY_CELL_ADDRESS_BITS
);

/// Pure-Rust reference model of the whole pipeline.
pub mod model {
    use super::PipelineSettings;
    use crate::in_module::in_module_model;
    use crate::sorter::model::sorter_model;
    use crate::sorting_checker::{sorting_checker_model, CheckerConfig, CheckerReport};

    /// `cells`: the sorter's cell address bits (e.g. `DELTA_CELL_ADDRESS_BITS`).
    pub fn sort_pipeline_model(
        cells: &[usize],
        s: &PipelineSettings,
        compact: &[Vec<u16>],
    ) -> CheckerReport {
        let internal = in_module_model(&s.input, compact);
        let sorted = sorter_model(cells, &s.sort_settings(), &internal);
        let checker = CheckerConfig {
            tuple_words: s.input.tuple_words,
            key_words: s.input.key_words,
            descending: s.descending,
        };
        sorting_checker_model(&checker, &sorted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::in_module::KeyType;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_case(
        rng: &mut ChaCha8Rng,
        max_words: usize,
        max_tuples: usize,
    ) -> (PipelineSettings, Vec<Vec<u16>>) {
        let n = rng.gen_range(2..=max_words);
        let key_offset = rng.gen_range(1..n);
        let key_type = match rng.gen_range(0..3) {
            0 => KeyType::Unsigned,
            1 => KeyType::Signed,
            _ => KeyType::Float,
        };
        let key_type = if key_type == KeyType::Float && n - key_offset < 2 {
            KeyType::Signed
        } else {
            key_type
        };
        let key_words = match key_type {
            KeyType::Float => 2,
            _ => rng.gen_range(1..=(n - key_offset).min(3)),
        };
        let domain = [3u16, 40, u16::MAX][rng.gen_range(0..3)];
        let tuples: Vec<Vec<u16>> = (0..rng.gen_range(0..=max_tuples))
            .map(|_| {
                let mut t: Vec<u16> = (0..n).map(|_| rng.gen_range(0..=domain)).collect();
                t[0] = if rng.gen_bool(0.2) { 0xffff } else { 0 };
                t
            })
            .collect();
        let s = PipelineSettings {
            input: InConfig {
                tuple_words: n,
                key_offset,
                key_words,
                key_type,
                key_null_bit: if rng.gen() {
                    Some(rng.gen_range(0..16))
                } else {
                    None
                },
            },
            descending: rng.gen(),
            sort_enable: true,
            tuples_hint: 0,
        };
        let s = PipelineSettings {
            tuples_hint: [0, tuples.len()][rng.gen_range(0..2)],
            ..s
        };
        (s, tuples)
    }

    /// Issue 7: an end-of-stream line flipped in a sorting cell's memory ends a string
    /// early and can lose tuples with nothing out of order, mis-framed or of bad parity
    /// for the checker to see; the tuple count across the sorter catches every loss.
    #[test]
    fn tuples_lost_in_a_cell_are_a_tuple_count_error() {
        use crate::memory_fault::{corrupt_memory, MemoryFault};
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let s = PipelineSettings {
            input: InConfig {
                tuple_words: 3,
                key_offset: 1,
                key_words: 1,
                key_type: KeyType::Unsigned,
                key_null_bit: None,
            },
            descending: false,
            sort_enable: true,
            tuples_hint: 0,
        };
        let tuples: Vec<Vec<u16>> = (0..24)
            .map(|_| vec![0, rng.gen_range(0..1000), rng.gen()])
            .collect();
        let beats = crate::tuple_stream::compact_beats(&tuples);
        let (mut losses, mut silent_without_count) = (0, 0);
        for cycle in 0..80u64 {
            let mut h = Harness::new(SmallSortPipeline::default());
            h.uut.apply(&s);
            let fault = MemoryFault {
                memory: cycle as u16,
                word: (cycle * 7) as u32,
                line: 21, // end of stream
                cycle,
            };
            let run = h.run_stream_with(&beats, Pacing::FULL_RATE, 5_000, |c, top| {
                if c == fault.cycle {
                    corrupt_memory(&mut top.sorter, &fault);
                }
            });
            // A cell that waits for a string's end for ever: the control program's
            // watchdog's case, not this test's.
            let Ok(run) = run else { continue };
            let status = h.uut.status();
            let tuples_out = run.output.iter().filter(|b| b.last && !b.eos).count();
            if tuples_out != tuples.len() {
                losses += 1;
                assert!(status.tuple_count_error, "cycle {cycle}: {status:?}");
                if !status.parity_error && !status.framing_error && !status.sort_error {
                    silent_without_count += 1;
                }
            } else {
                assert!(!status.tuple_count_error, "cycle {cycle}: {status:?}");
            }
        }
        assert!(
            silent_without_count > 0,
            "some losses only the count sees ({losses} losses, {silent_without_count} of them silent without it)"
        );
    }

    /// `cases` random relations (tuples of up to `max_words` words, up to `max_tuples`
    /// tuples) at four pacings through one pipeline, each against the model; a relation
    /// within the capacity must leave sorted.
    fn matches_model<T: SortPipelineTop>(
        seed: u64,
        cases: usize,
        max_words: usize,
        max_tuples: usize,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut h = Harness::new(T::default());
        for case in 0..cases {
            let (s, tuples) = random_case(&mut rng, max_words, max_tuples);
            let pacing = Pacing {
                source_duty: [1.0, 0.6][case % 2],
                sink_duty: [1.0, 0.7][(case / 2) % 2],
                seed: case as u64,
            };
            let run = run_pipeline(&mut h, &s, &tuples, pacing).unwrap();
            let model = model_output::<T>(&s, &tuples);
            assert_eq!(run.output, model.tuples, "case {case}: {s:?}");
            assert_eq!(run.status.violations, model.violations.min(0xffff));
            assert!(!run.status.parity_error && !run.status.framing_error);
            assert!(!run.status.tuple_count_error, "case {case}: {s:?}");
            if tuples.len() <= run.status.capacity_tuples {
                assert!(
                    !run.status.sort_error,
                    "a relation within capacity leaves sorted"
                );
            }
        }
    }

    #[test]
    fn small_pipeline_matches_model() {
        matches_model::<SmallSortPipeline>(21, 20, 12, 150);
    }

    #[test]
    fn tiny_pipeline_matches_model() {
        // Tuples up to 16 words (the IN module's limit), which all three cells sort;
        // relations beyond 8 tuples leave in sorted strings of 8.
        matches_model::<TinySortPipeline>(22, 12, 16, 30);
    }

    #[test]
    fn oversized_tuple_is_refused_before_streaming() {
        let mut h = Harness::new(SmallSortPipeline::default());
        let s = PipelineSettings {
            input: InConfig {
                tuple_words: 200,
                key_offset: 1,
                key_words: 1,
                key_type: KeyType::Unsigned,
                key_null_bit: None,
            },
            descending: false,
            sort_enable: true,
            tuples_hint: 1,
        };
        let e = run_pipeline(&mut h, &s, &[vec![0; 200]], Pacing::FULL_RATE).unwrap_err();
        assert!(e.to_string().contains("200"), "{e}");
    }

    #[test]
    fn pipeline_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(SmallSortPipeline::default());
        crate::verilog::check_module("small_sort_pipeline", &v).unwrap();
        let v = crate::verilog::export(DeltaSortPipeline::default());
        crate::verilog::check_module("delta_sort_pipeline", &v).unwrap();
    }
}
