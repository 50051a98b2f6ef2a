//! Stream register slice (two-entry skid buffer) for the tuple stream.
//!
//! Every module of the engine core drives its output through one of these, so its output
//! beat and its input `ready` both come straight from flip-flops: no combinational path
//! crosses a module boundary, and `ready` never ripples back through a chain of sorting
//! cells. It passes one beat per clock when the sink is always ready.
use crate::operation_part::{SelectedStreamIn, SelectedStreamOut};
use crate::tuple_stream::{TupleStreamIn, TupleStreamOut, TupleWord};
use rust_hdl::prelude::*;

#[derive(LogicBlock, Default)]
pub struct StreamSlice {
    pub clock: Signal<In, Clock>,
    pub data_in: TupleStreamIn,
    pub data_out: TupleStreamOut,
    main_valid: DFF<Bit>,
    main_word: DFF<TupleWord>,
    skid_valid: DFF<Bit>,
    skid_word: DFF<TupleWord>,
    input_fire: Signal<Local, Bit>,
    main_free: Signal<Local, Bit>,
}

impl Logic for StreamSlice {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, main_valid, main_word, skid_valid, skid_word);
        self.data_out.valid.next = self.main_valid.q.val();
        self.data_out.word.next = self.main_word.q.val();
        self.data_in.ready.next = !self.skid_valid.q.val();
        self.input_fire.next = self.data_in.valid.val() & !self.skid_valid.q.val();
        self.main_free.next = !self.main_valid.q.val() | self.data_out.ready.val();
        if self.main_free.val() {
            if self.skid_valid.q.val() {
                self.main_word.d.next = self.skid_word.q.val();
                self.skid_valid.d.next = false;
            } else {
                self.main_valid.d.next = self.input_fire.val();
                self.main_word.d.next = self.data_in.word.val();
            }
        } else if self.input_fire.val() {
            self.skid_valid.d.next = true;
            self.skid_word.d.next = self.data_in.word.val();
        }
    }
}

crate::impl_stream_block!(StreamSlice);

/// The same two-entry skid buffer for the merger's selected stream (operation part →
/// output control part: the word, `from_u` and `unit_end`). It keeps the operation part's
/// comparator → control ROM → selection logic and the output control part's write side in
/// different cycles (the HX8K small core's critical path ran through both).
#[derive(LogicBlock, Default)]
pub struct SelectedSlice {
    pub clock: Signal<In, Clock>,
    pub data_in: SelectedStreamIn,
    pub data_out: SelectedStreamOut,
    main_valid: DFF<Bit>,
    main_word: DFF<TupleWord>,
    main_from_u: DFF<Bit>,
    main_unit_end: DFF<Bit>,
    skid_valid: DFF<Bit>,
    skid_word: DFF<TupleWord>,
    skid_from_u: DFF<Bit>,
    skid_unit_end: DFF<Bit>,
    input_fire: Signal<Local, Bit>,
    main_free: Signal<Local, Bit>,
}

impl Logic for SelectedSlice {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            main_valid,
            main_word,
            main_from_u,
            main_unit_end,
            skid_valid,
            skid_word,
            skid_from_u,
            skid_unit_end
        );
        self.data_out.valid.next = self.main_valid.q.val();
        self.data_out.word.next = self.main_word.q.val();
        self.data_out.from_u.next = self.main_from_u.q.val();
        self.data_out.unit_end.next = self.main_unit_end.q.val();
        self.data_in.ready.next = !self.skid_valid.q.val();
        self.input_fire.next = self.data_in.valid.val() & !self.skid_valid.q.val();
        self.main_free.next = !self.main_valid.q.val() | self.data_out.ready.val();
        if self.main_free.val() {
            if self.skid_valid.q.val() {
                self.main_word.d.next = self.skid_word.q.val();
                self.main_from_u.d.next = self.skid_from_u.q.val();
                self.main_unit_end.d.next = self.skid_unit_end.q.val();
                self.skid_valid.d.next = false;
            } else {
                self.main_valid.d.next = self.input_fire.val();
                self.main_word.d.next = self.data_in.word.val();
                self.main_from_u.d.next = self.data_in.from_u.val();
                self.main_unit_end.d.next = self.data_in.unit_end.val();
            }
        } else if self.input_fire.val() {
            self.skid_valid.d.next = true;
            self.skid_word.d.next = self.data_in.word.val();
            self.skid_from_u.d.next = self.data_in.from_u.val();
            self.skid_unit_end.d.next = self.data_in.unit_end.val();
        }
    }
}

impl crate::harness::Clocked for SelectedSlice {
    fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
        &mut self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{Harness, Pacing};
    use crate::tuple_stream::{to_beats, StreamTuple};

    fn beats() -> Vec<crate::tuple_stream::Beat> {
        let tuples: Vec<_> = (0..50u16)
            .map(|i| StreamTuple::new(vec![i, i ^ 0xffff, 7], i % 3 == 0))
            .collect();
        to_beats(&tuples)
    }

    #[test]
    fn passes_every_beat_in_order_under_random_pacing() {
        let beats = beats();
        for seed in 0..20 {
            let mut h = Harness::new(StreamSlice::default());
            let pacing = Pacing {
                source_duty: 0.3 + 0.035 * seed as f64,
                sink_duty: 1.0 - 0.04 * seed as f64,
                seed,
            };
            let run = h.run_stream(&beats, pacing, 10_000);
            assert_eq!(run.output, beats, "seed {seed}");
        }
    }

    #[test]
    fn full_rate_is_one_beat_per_cycle() {
        let beats = beats();
        let mut h = Harness::new(StreamSlice::default());
        let run = h.run_stream(&beats, Pacing::FULL_RATE, 10_000);
        assert_eq!(run.output, beats);
        assert_eq!(run.cycles, beats.len() as u64 + 1, "one cycle of latency");
    }

    /// The selected-stream slice under random pacing on both sides: every beat (word,
    /// `from_u`, `unit_end`) in order, and at full rate one per cycle after one cycle.
    #[test]
    fn selected_slice_passes_every_beat_in_order() {
        use rand::{Rng, SeedableRng};
        let beats = beats();
        let sent: Vec<(crate::tuple_stream::Beat, bool, bool)> = beats
            .iter()
            .enumerate()
            .map(|(i, b)| (*b, i % 3 == 1, i % 5 == 2))
            .collect();
        for seed in 0..12u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let (source_duty, sink_duty) = if seed == 0 {
                (1.0, 1.0)
            } else {
                (rng.gen_range(0.3..1.0), rng.gen_range(0.3..1.0))
            };
            let mut h = Harness::new(SelectedSlice::default());
            let mut next = 0;
            let mut got = Vec::new();
            let mut first_out = None;
            for cycle in 0..5_000u64 {
                let offer = next < sent.len() && rng.gen_bool(source_duty);
                let take = rng.gen_bool(sink_duty);
                h.uut.data_in.valid.next = offer;
                if offer {
                    let (w, u, e) = sent[next];
                    h.uut.data_in.word.next = w.into();
                    h.uut.data_in.from_u.next = u;
                    h.uut.data_in.unit_end.next = e;
                }
                h.uut.data_out.ready.next = take;
                h.settle();
                let in_fire = offer && h.uut.data_in.ready.val();
                if take && h.uut.data_out.valid.val() {
                    first_out.get_or_insert(cycle);
                    got.push((
                        crate::tuple_stream::Beat::from(h.uut.data_out.word.val()),
                        h.uut.data_out.from_u.val(),
                        h.uut.data_out.unit_end.val(),
                    ));
                }
                h.cycle();
                if in_fire {
                    next += 1;
                }
                if got.len() == sent.len() {
                    if seed == 0 {
                        assert_eq!(first_out, Some(1), "one cycle of latency");
                        assert_eq!(cycle, sent.len() as u64, "one beat per cycle");
                    }
                    break;
                }
            }
            assert_eq!(got, sent, "seed {seed}");
        }
    }

    #[test]
    fn selected_slice_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(SelectedSlice::default());
        crate::verilog::check_module("selected_slice", &v).unwrap();
    }

    #[test]
    fn stream_slice_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(StreamSlice::default());
        crate::verilog::check_module("stream_slice", &v).unwrap();
    }
}
