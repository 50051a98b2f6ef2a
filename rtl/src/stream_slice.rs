//! Stream register slice (two-entry skid buffer) for the tuple stream.
//!
//! Every module of the engine core drives its output through one of these, so its output
//! beat and its input `ready` both come straight from flip-flops: no combinational path
//! crosses a module boundary, and `ready` never ripples back through a chain of sorting
//! cells. It passes one beat per clock when the sink is always ready.
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

    #[test]
    fn stream_slice_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(StreamSlice::default());
        crate::verilog::check_module("stream_slice", &v).unwrap();
    }
}
