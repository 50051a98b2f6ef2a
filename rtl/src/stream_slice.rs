//! Stream register slice (two-entry skid buffer) for the tuple stream.
//!
//! Every module of the engine core drives its output through one of these, so its output
//! beat and its input `ready` both come straight from flip-flops: no combinational path
//! crosses a module boundary, and `ready` never ripples back through a chain of sorting
//! cells. It passes one beat per clock when the sink is always ready.
use crate::dff::DFF;
use crate::operation_part::{SelectedStreamIn, SelectedStreamOut};
use crate::tuple_stream::{TupleStreamIn, TupleStreamOut, TupleWord};
use rust_hdl::prelude::*;

/// The two-entry skid buffer under both slices, for any payload `T`: `out_valid` and
/// `out_payload` come from its main register, `in_ready` from its skid register, so
/// neither follows the other side within a cycle.
#[derive(LogicBlock)]
pub struct SkidBuffer<T: Synth> {
    pub clock: Signal<In, Clock>,
    pub in_valid: Signal<In, Bit>,
    pub in_payload: Signal<In, T>,
    pub in_ready: Signal<Out, Bit>,
    pub out_valid: Signal<Out, Bit>,
    pub out_payload: Signal<Out, T>,
    pub out_ready: Signal<In, Bit>,
    main_valid: DFF<Bit>,
    main_payload: DFF<T>,
    skid_valid: DFF<Bit>,
    skid_payload: DFF<T>,
    input_fire: Signal<Local, Bit>,
    main_free: Signal<Local, Bit>,
}

impl<T: Synth> Default for SkidBuffer<T> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_payload: Default::default(),
            in_ready: Default::default(),
            out_valid: Default::default(),
            out_payload: Default::default(),
            out_ready: Default::default(),
            main_valid: Default::default(),
            main_payload: Default::default(),
            skid_valid: Default::default(),
            skid_payload: Default::default(),
            input_fire: Default::default(),
            main_free: Default::default(),
        }
    }
}

impl<T: Synth> Logic for SkidBuffer<T> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            main_valid,
            main_payload,
            skid_valid,
            skid_payload
        );
        self.out_valid.next = self.main_valid.q.val();
        self.out_payload.next = self.main_payload.q.val();
        self.in_ready.next = !self.skid_valid.q.val();
        self.input_fire.next = self.in_valid.val() & !self.skid_valid.q.val();
        self.main_free.next = !self.main_valid.q.val() | self.out_ready.val();
        if self.main_free.val() {
            if self.skid_valid.q.val() {
                self.main_payload.d.next = self.skid_payload.q.val();
                self.skid_valid.d.next = false;
            } else {
                self.main_valid.d.next = self.input_fire.val();
                self.main_payload.d.next = self.in_payload.val();
            }
        } else if self.input_fire.val() {
            self.skid_valid.d.next = true;
            self.skid_payload.d.next = self.in_payload.val();
        }
    }
}

/// The tuple stream's slice: a [SkidBuffer] of [TupleWord]s.
#[derive(LogicBlock, Default)]
pub struct StreamSlice {
    pub clock: Signal<In, Clock>,
    pub data_in: TupleStreamIn,
    pub data_out: TupleStreamOut,
    buffer: SkidBuffer<TupleWord>,
}

impl Logic for StreamSlice {
    #[hdl_gen]
    fn update(&mut self) {
        self.buffer.clock.next = self.clock.val();
        self.buffer.in_valid.next = self.data_in.valid.val();
        self.buffer.in_payload.next = self.data_in.word.val();
        self.data_in.ready.next = self.buffer.in_ready.val();
        self.data_out.valid.next = self.buffer.out_valid.val();
        self.data_out.word.next = self.buffer.out_payload.val();
        self.buffer.out_ready.next = self.data_out.ready.val();
    }
}

crate::impl_stream_block!(StreamSlice);

/// A beat of the merger's selected stream as the [SelectedSlice] stores it.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct SelectedBeat {
    pub word: TupleWord,
    pub from_u: Bit,
    pub unit_end: Bit,
}

/// The same two-entry skid buffer for the merger's selected stream (operation part →
/// output control part: the word, `from_u` and `unit_end`). It keeps the operation part's
/// comparator → control ROM → selection logic and the output control part's write side in
/// different cycles (the HX8K small core's critical path ran through both).
#[derive(LogicBlock, Default)]
pub struct SelectedSlice {
    pub clock: Signal<In, Clock>,
    pub data_in: SelectedStreamIn,
    pub data_out: SelectedStreamOut,
    buffer: SkidBuffer<SelectedBeat>,
}

impl Logic for SelectedSlice {
    #[hdl_gen]
    fn update(&mut self) {
        self.buffer.clock.next = self.clock.val();
        self.buffer.in_valid.next = self.data_in.valid.val();
        self.buffer.in_payload.next.word = self.data_in.word.val();
        self.buffer.in_payload.next.from_u = self.data_in.from_u.val();
        self.buffer.in_payload.next.unit_end = self.data_in.unit_end.val();
        self.data_in.ready.next = self.buffer.in_ready.val();
        self.data_out.valid.next = self.buffer.out_valid.val();
        self.data_out.word.next = self.buffer.out_payload.val().word;
        self.data_out.from_u.next = self.buffer.out_payload.val().from_u;
        self.data_out.unit_end.next = self.buffer.out_payload.val().unit_end;
        self.buffer.out_ready.next = self.data_out.ready.val();
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
