//! HM adapters IN and OUT (paper §2, §5.1: "HM adapters IN and OUT move tuple streams
//! between the hierarchical memory and the core"). Both live in this one file because they
//! share their shape: a tuple stream on each side, one [OddParity] generator, one
//! [StreamSlice] driving the output from flip-flops, and a valid/ready handshake on both
//! sides.
//!
//! # The HM side
//! The hierarchical memory sends and receives *raw HM words*: 16-bit data with the `last`
//! (last word of a tuple) and `eos` (end-of-stream beat) framing, and no parity. Both
//! adapters use the tuple-stream bundle ([TupleStreamIn], [TupleStreamOut]) on the HM side
//! too, so that a whole engine (`rdbe_top`) is a [crate::harness::StreamBlock] the
//! harness, the co-simulation and the drivers can run; on that side only some lines mean
//! something:
//!
//! | HM side line | adapter IN (`hm_in`, from the HM) | adapter OUT (`hm_out`, to the HM) |
//! |---|---|---|
//! | DT `data` | the word | the word |
//! | `last`, `eos` | framing | framing |
//! | PT `parity` | ignored (the HM has no parity lines) | as the core sent it (checked) |
//! | NL `null` | ignored | 0 (the core's compact output) |
//! | DP `dup` | ignored | the core's DP (`docs/TUPLE_STREAM.md`): groups of equal keys |
//! | `valid`/`ready` | handshake | handshake |
//!
//! # HM adapter IN ([HmAdapterIn])
//! Turns raw HM words into the core's tuple stream: odd parity per byte is generated for
//! every data word (the rule of [crate::tuple_stream::word_parity], in hardware the shared
//! [OddParity] block), NL and DP are driven 0 (the IN module flags an HM word with either
//! high), and an end-of-stream beat leaves with every other field 0. The adapter does not
//! check the framing: the IN module does, against the relation's tuple length.
//!
//! **Pacing.** `pace` is the minimum number of cycles between two accepted beats (the
//! end-of-stream beat included): 0 or 1 is full rate (one word per cycle), `p > 1` accepts
//! at most one beat every `p` cycles. The 1984 machine moved 3 MB/s between the HM and
//! the engine; 16-bit words at 3 MB/s are one word per 666 ns, about 3 cycles of the
//! paper's 220 ns clock, so the `delta1984` profile sets `pace = 3`. A [Pacer] holds
//! `ready` low for `p - 1` cycles after each accepted beat (a down-counter), so pacing costs
//! nothing when the HM itself is slower.
//!
//! **Cut (§5.1: "the relation to be supplied to the engine core is determined dynamically
//! according to the state of the engine core").** When the core needs no more of the
//! current stream (`cut`, the engine core's `input_unneeded`: its command has ended, e.g. a
//! partial SORT-EX whose U-memory chunk has run out), the adapter takes the rest of the
//! tuple it is in, then holds `ready` low, raises `hm_stop` (the HM stops this transfer and
//! sends nothing more of it, not even its end-of-stream beat) and sends the core an
//! end-of-stream beat itself. The control program then supplies what the core's state
//! asks for next (the next chunk of the other run) and resumes this relation where the core
//! stopped taking it (`l_taken`). A cut applies only to a stream that has begun and not
//! ended: the control program starts the next stream after the previous one's end left the
//! engine, as it must anyway to change the settings.
//!
//! **Diagnostic parity fault.** While `fault_enable` is high, data word number
//! `fault_word` of every stream (counted from 0 at the first word after an end-of-stream
//! beat, modulo 2^16) leaves with parity bit 0 inverted. It lets the control program (and
//! the fault campaigns) check the core's parity checkers and its own recovery on the real
//! data path, as the 1984 self check drove the core with test data (§5.4).
//!
//! # HM adapter OUT ([HmAdapterOut])
//! Passes the core's output to the HM word for word and checks the parity of every data
//! word on the way (sticky `parity_error`, cleared by a synchronous `clear`; an error
//! detected in the clear cycle still sets it). It also counts the tuples passed (data
//! words with `last`) in `tuples` since the last `clear` (32 bits, wrapping), the control
//! program's "tuples output" status. Its HM side is paced by the same [Pacer] as
//! adapter IN's (`pace`: at most one beat to the HM every `pace` cycles).
//!
//! # Verification
//! Pure-Rust reference models ([model::hm_in_model], [model::hm_out_model]), directed tests
//! (parity on every byte pattern, pacing rates on both adapters, the diagnostic fault, eos
//! handling, the sticky flag), random differential tests against the models with random
//! handshakes, random `pace` and random diagnostic faults, which also check that beats
//! are never closer than `pace` cycles on the HM side, and a check that
//! the exported Verilog passes yosys and `verilator -Wall`.
use crate::dff::DFF;
use crate::stream_slice::StreamSlice;
use crate::tuple_stream::{OddParity, TupleStreamIn, TupleStreamOut};
use rust_hdl::prelude::*;

/// Paces a handshake: once a beat has fired, `open` stays low for `pace - 1` cycles (a
/// down-counter), so at most one beat passes every `pace` cycles (0 or 1: every cycle).
/// Both HM adapters use it on their HM side.
#[derive(LogicBlock, Default)]
pub struct Pacer {
    pub clock: Signal<In, Clock>,
    /// Minimum cycles between two beats.
    pub pace: Signal<In, Bits<8>>,
    /// A beat passes in this cycle.
    pub fire: Signal<In, Bit>,
    /// A beat may pass in this cycle (depends on flip-flops only).
    pub open: Signal<Out, Bit>,
    /// Cycles left before the next beat may pass.
    gap_count: DFF<Bits<8>>,
}

impl Logic for Pacer {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, gap_count);
        self.open.next = self.gap_count.q.val() == 0;
        if self.gap_count.q.val() != 0 {
            self.gap_count.d.next = self.gap_count.q.val() - 1;
        }
        if self.fire.val() {
            if self.pace.val() > 1 {
                self.gap_count.d.next = self.pace.val() - 1;
            } else {
                self.gap_count.d.next = 0.into();
            }
        }
    }
}

/// HM adapter IN: raw HM words in, the core's tuple stream (with parity) out, paced.
#[derive(LogicBlock, Default)]
pub struct HmAdapterIn {
    pub clock: Signal<In, Clock>,
    /// Raw HM words: `data`, `last`, `eos` (the PT, NL and DP lines are ignored).
    pub hm_in: TupleStreamIn,
    /// The tuple stream into the core: parity generated, NL = DP = 0.
    pub data_out: TupleStreamOut,
    /// Minimum cycles between accepted beats (0 or 1: one beat per cycle).
    pub pace: Signal<In, Bits<8>>,
    /// Diagnostic parity fault: while high, data word number `fault_word` of each stream
    /// leaves with parity bit 0 inverted.
    pub fault_enable: Signal<In, Bit>,
    /// The word the diagnostic fault hits, counted from 0 in each stream (modulo 2^16).
    pub fault_word: Signal<In, Bits<16>>,
    /// The core needs no more of the current stream (the engine core's
    /// `input_unneeded`): end it at the next tuple boundary.
    pub cut: Signal<In, Bit>,
    /// To the HM: end the current transfer now (send nothing more of it, not even its
    /// end-of-stream beat); the adapter ends the stream into the core itself.
    pub hm_stop: Signal<Out, Bit>,
    parity_gen: OddParity,
    slice: StreamSlice,
    pacer: Pacer,
    /// Data words accepted in the current stream (wrapping).
    word_index: DFF<Bits<16>>,
    /// A tuple has begun and its last word is still to come.
    in_tuple: DFF<Bit>,
    /// The current stream has ended (its end-of-stream beat has passed).
    stream_done: DFF<Bit>,
    /// Cutting: the HM is told to stop, and the end-of-stream beat goes to the core.
    stopping: DFF<Bit>,
    fire: Signal<Local, Bit>,
    fault_here: Signal<Local, Bit>,
    stop_now: Signal<Local, Bit>,
    eos_fire: Signal<Local, Bit>,
}

impl Logic for HmAdapterIn {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, word_index, in_tuple, stream_done, stopping);
        clock!(self, clock, slice, pacer);
        self.pacer.pace.next = self.pace.val();
        // A cut is taken at a tuple boundary of a stream that has not ended yet.
        self.stop_now.next = self.stopping.q.val()
            | (self.cut.val() & !self.in_tuple.q.val() & !self.stream_done.q.val());
        self.hm_stop.next = self.stop_now.val();
        self.hm_in.ready.next =
            self.pacer.open.val() & self.slice.data_in.ready.val() & !self.stop_now.val();
        self.fire.next = self.hm_in.valid.val()
            & self.pacer.open.val()
            & self.slice.data_in.ready.val()
            & !self.stop_now.val();
        self.pacer.fire.next = self.fire.val();
        self.slice.data_in.valid.next =
            (self.hm_in.valid.val() & self.pacer.open.val() & !self.stop_now.val())
                | self.stop_now.val();
        self.fault_here.next =
            self.fault_enable.val() & (self.word_index.q.val() == self.fault_word.val());
        self.parity_gen.data.next = self.hm_in.word.val().data;
        self.slice.data_in.word.next.data = self.hm_in.word.val().data;
        self.slice.data_in.word.next.parity = self.parity_gen.parity.val();
        if self.fault_here.val() {
            self.slice.data_in.word.next.parity = self.parity_gen.parity.val() ^ 1;
        }
        self.slice.data_in.word.next.null = false;
        self.slice.data_in.word.next.dup = false;
        self.slice.data_in.word.next.last = self.hm_in.word.val().last;
        self.slice.data_in.word.next.eos = false;
        if self.hm_in.word.val().eos | self.stop_now.val() {
            self.slice.data_in.word.next.data = 0.into();
            self.slice.data_in.word.next.parity = 0.into();
            self.slice.data_in.word.next.last = false;
            self.slice.data_in.word.next.eos = true;
        }
        // The stream's end: the HM's end-of-stream beat, or the one a cut makes.
        self.eos_fire.next = (self.fire.val() & self.hm_in.word.val().eos)
            | (self.stop_now.val() & self.slice.data_in.ready.val());
        if self.fire.val() {
            self.word_index.d.next = self.word_index.q.val() + 1;
            self.in_tuple.d.next = !self.hm_in.word.val().last;
            self.stream_done.d.next = false;
        }
        self.stopping.d.next = self.stop_now.val();
        if self.eos_fire.val() {
            self.word_index.d.next = 0.into();
            self.in_tuple.d.next = false;
            self.stream_done.d.next = true;
            self.stopping.d.next = false;
        }
        self.data_out.word.next = self.slice.data_out.word.val();
        self.data_out.valid.next = self.slice.data_out.valid.val();
        self.slice.data_out.ready.next = self.data_out.ready.val();
    }
}

impl crate::harness::Clocked for HmAdapterIn {
    fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
        &mut self.clock
    }
}

impl crate::harness::StreamBlock for HmAdapterIn {
    fn stream_in(&mut self) -> &mut TupleStreamIn {
        &mut self.hm_in
    }
    fn stream_out(&mut self) -> &mut TupleStreamOut {
        &mut self.data_out
    }
    fn transfer_stopped(&self) -> bool {
        self.hm_stop.val()
    }
}

/// HM adapter OUT: the core's tuple stream in, checked for parity, to the HM.
#[derive(LogicBlock, Default)]
pub struct HmAdapterOut {
    pub clock: Signal<In, Clock>,
    /// The core's output tuple stream.
    pub data_in: TupleStreamIn,
    /// To the HM: the same beats (data, DP, last, eos; PT as received, NL 0).
    pub hm_out: TupleStreamOut,
    /// Synchronous clear of `parity_error` and `tuples`.
    pub clear: Signal<In, Bit>,
    /// Sticky: a data word with bad parity came out of the core.
    pub parity_error: Signal<Out, Bit>,
    /// Tuples passed to the HM since the last `clear` (wrapping).
    pub tuples: Signal<Out, Bits<32>>,
    /// Minimum cycles between beats sent to the HM (0 or 1: one beat per cycle).
    pub pace: Signal<In, Bits<8>>,
    parity_gen: OddParity,
    slice: StreamSlice,
    pacer: Pacer,
    perr: DFF<Bit>,
    count: DFF<Bits<32>>,
    fire: Signal<Local, Bit>,
}

impl Logic for HmAdapterOut {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, perr, count);
        clock!(self, clock, slice, pacer);
        self.slice.data_in.word.next = self.data_in.word.val();
        self.slice.data_in.valid.next = self.data_in.valid.val();
        self.data_in.ready.next = self.slice.data_in.ready.val();
        self.pacer.pace.next = self.pace.val();
        self.pacer.fire.next =
            self.slice.data_out.valid.val() & self.pacer.open.val() & self.hm_out.ready.val();
        self.hm_out.word.next = self.slice.data_out.word.val();
        self.hm_out.valid.next = self.slice.data_out.valid.val() & self.pacer.open.val();
        self.slice.data_out.ready.next = self.hm_out.ready.val() & self.pacer.open.val();
        self.parity_error.next = self.perr.q.val();
        self.tuples.next = self.count.q.val();
        self.fire.next = self.data_in.valid.val() & self.slice.data_in.ready.val();
        self.parity_gen.data.next = self.data_in.word.val().data;
        if self.clear.val() {
            self.perr.d.next = false;
        }
        if self.fire.val() & !self.data_in.word.val().eos {
            if self.parity_gen.parity.val() != self.data_in.word.val().parity {
                self.perr.d.next = true;
            }
            if self.data_in.word.val().last {
                self.count.d.next = self.count.q.val() + 1;
            }
        }
        if self.clear.val() {
            self.count.d.next = 0.into();
        }
    }
}

impl crate::harness::Clocked for HmAdapterOut {
    fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
        &mut self.clock
    }
}

impl crate::harness::StreamBlock for HmAdapterOut {
    fn stream_in(&mut self) -> &mut TupleStreamIn {
        &mut self.data_in
    }
    fn stream_out(&mut self) -> &mut TupleStreamOut {
        &mut self.hm_out
    }
}

/// Pure-Rust reference models of both adapters.
pub mod model {
    use crate::tuple_stream::Beat;

    /// What HM adapter IN sends the core for `hm` (raw HM words; their PT, NL and DP are
    /// ignored): data words with generated parity and NL = DP = 0, end-of-stream beats
    /// with every other field 0. `fault_word`: the diagnostic fault is enabled and hits
    /// this data word of every stream (counted from 0, modulo 2^16): its parity bit 0 is
    /// inverted.
    pub fn hm_in_model(hm: &[Beat], fault_word: Option<u16>) -> Vec<Beat> {
        let mut index: u16 = 0;
        hm.iter()
            .map(|b| {
                if b.eos {
                    index = 0;
                    Beat::eos()
                } else {
                    let mut out = Beat::data(b.data, false, b.last);
                    if fault_word == Some(index) {
                        out.parity ^= 1;
                    }
                    index = index.wrapping_add(1);
                    out
                }
            })
            .collect()
    }

    /// What HM adapter OUT does with the core's beats: sends them on unchanged, and
    /// reports (any data word with bad parity, tuples passed).
    pub fn hm_out_model(core: &[Beat]) -> (Vec<Beat>, bool, u32) {
        let parity_error = core.iter().any(|b| !b.eos && !b.parity_ok());
        let tuples = core.iter().filter(|b| !b.eos && b.last).count() as u32;
        (core.to_vec(), parity_error, tuples)
    }

    /// Cycles per accepted beat that `pace` allows at most.
    pub fn min_spacing(pace: u8) -> u64 {
        pace.max(1) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::model::*;
    use super::*;
    use crate::harness::{Harness, Pacing};
    use crate::tuple_stream::{word_parity, Beat};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Random HM streams (random tuple lengths, including empty relations), with garbage
    /// on the PT, NL and DP lines; several streams back to back, ending with eos.
    fn random_hm_beats(rng: &mut ChaCha8Rng, streams: usize) -> Vec<Beat> {
        let mut v = vec![];
        for _ in 0..streams {
            let n = rng.gen_range(1..6);
            for _ in 0..rng.gen_range(0..8) {
                for i in 0..n {
                    v.push(Beat {
                        data: rng.gen(),
                        parity: rng.gen_range(0..4),
                        null: rng.gen(),
                        dup: rng.gen(),
                        last: i + 1 == n,
                        eos: false,
                    });
                }
            }
            v.push(Beat {
                data: rng.gen(),
                parity: rng.gen_range(0..4),
                null: rng.gen(),
                dup: rng.gen(),
                last: rng.gen(),
                eos: true,
            });
        }
        v
    }

    fn run_in(h: &mut Harness<HmAdapterIn>, hm: &[Beat], pace: u8, pacing: Pacing) -> Vec<Beat> {
        h.uut.pace.next = (pace as u64).into();
        let mut out = vec![];
        let mut start = 0;
        // run_stream stops at each end-of-stream beat: one call per stream.
        for (i, b) in hm.iter().enumerate() {
            if b.eos {
                let beats = &hm[start..=i];
                let max = 1000 + 40 * beats.len() as u64 * (pace.max(1) as u64);
                let run = h.run_stream(beats, pacing, max);
                for w in run.input_cycles.windows(2) {
                    assert!(
                        w[1] - w[0] >= min_spacing(pace),
                        "beats accepted {} cycles apart at pace {pace}",
                        w[1] - w[0]
                    );
                }
                out.extend(run.output);
                start = i + 1;
            }
        }
        out
    }

    #[test]
    fn adapter_in_generates_parity_for_every_word_and_drops_nl_dp() {
        let hm: Vec<Beat> = (0..=255u16)
            .map(|i| {
                let data = i << 8 | (255 - i);
                Beat {
                    data,
                    parity: 0,
                    null: true,
                    dup: true,
                    last: i % 2 == 1,
                    eos: false,
                }
            })
            .chain(std::iter::once(Beat {
                data: 0x1234,
                last: true,
                eos: true,
                ..Default::default()
            }))
            .collect();
        let mut h = Harness::new(HmAdapterIn::default());
        let out = run_in(&mut h, &hm, 0, Pacing::FULL_RATE);
        assert_eq!(out, hm_in_model(&hm, None));
        for (b, o) in hm.iter().zip(&out) {
            if !b.eos {
                assert_eq!(o.parity, word_parity(b.data));
                assert!(!o.null && !o.dup);
            }
        }
        assert_eq!(
            *out.last().unwrap(),
            Beat::eos(),
            "eos beat with all else 0"
        );
    }

    #[test]
    fn adapter_in_paces_full_rate_and_every_third_cycle() {
        let hm: Vec<Beat> = (0..60u16)
            .map(|i| Beat::data(i, false, i % 4 == 3))
            .chain(std::iter::once(Beat::eos()))
            .collect();
        for (pace, spacing) in [(0u8, 1u64), (1, 1), (2, 2), (3, 3), (7, 7)] {
            let mut h = Harness::new(HmAdapterIn::default());
            h.uut.pace.next = (pace as u64).into();
            let run = h.run_stream(&hm, Pacing::FULL_RATE, 2000);
            assert_eq!(run.output, hm_in_model(&hm, None));
            let c = &run.input_cycles;
            assert!(c.windows(2).all(|w| w[1] - w[0] == spacing), "pace {pace}");
            assert_eq!(c[c.len() - 1] - c[0], spacing * (hm.len() as u64 - 1));
        }
    }

    #[test]
    fn adapter_in_matches_the_model_under_random_handshakes_and_pace() {
        let mut rng = ChaCha8Rng::seed_from_u64(61);
        let mut h = Harness::new(HmAdapterIn::default());
        for case in 0..200 {
            let streams = rng.gen_range(1..4);
            let hm = random_hm_beats(&mut rng, streams);
            let pace = [0u8, 1, 2, 3, 5][rng.gen_range(0..5)];
            let fault = rng.gen_bool(0.3).then(|| rng.gen_range(0..12u16));
            h.uut.fault_enable.next = fault.is_some();
            h.uut.fault_word.next = (fault.unwrap_or(0) as u64).into();
            let pacing = Pacing {
                source_duty: rng.gen_range(0.3..=1.0),
                sink_duty: rng.gen_range(0.3..=1.0),
                seed: case,
            };
            let out = run_in(&mut h, &hm, pace, pacing);
            assert_eq!(out, hm_in_model(&hm, fault), "case {case}, pace {pace}");
        }
    }

    #[test]
    fn adapter_in_diagnostic_fault_hits_one_word_of_each_stream() {
        let stream: Vec<Beat> = (0..8u16)
            .map(|i| Beat::data(0x0101 * i, false, i % 2 == 1))
            .chain(std::iter::once(Beat::eos()))
            .collect();
        let hm = [stream.clone(), stream].concat();
        let mut h = Harness::new(HmAdapterIn::default());
        h.uut.fault_enable.next = true;
        h.uut.fault_word.next = 5.into();
        let out = run_in(&mut h, &hm, 0, Pacing::FULL_RATE);
        assert_eq!(out, hm_in_model(&hm, Some(5)));
        let bad: Vec<usize> = (0..out.len())
            .filter(|&i| !out[i].eos && !out[i].parity_ok())
            .collect();
        assert_eq!(bad, [5, 14], "word 5 of each stream, nothing else");
        h.uut.fault_enable.next = false;
        let out = run_in(&mut h, &hm, 0, Pacing::FULL_RATE);
        assert!(out.iter().all(|b| b.eos || b.parity_ok()), "disabled");
    }

    /// Drive `hm` into the adapter by hand, raising `cut` from cycle `cut_at` on (until
    /// the adapter has ended the stream); returns the beats sent to the core, the HM beats
    /// taken, and whether `hm_stop` was seen.
    fn run_in_with_cut(
        h: &mut Harness<HmAdapterIn>,
        hm: &[Beat],
        cut_at: u64,
    ) -> (Vec<Beat>, usize, bool) {
        let (mut out, mut taken, mut stop_seen) = (vec![], 0, false);
        h.uut.data_out.ready.next = true;
        for cycle in 0..200u64 {
            let offer = !stop_seen && taken < hm.len();
            h.uut.hm_in.valid.next = offer;
            if offer {
                h.uut.hm_in.word.next = hm[taken].into();
            }
            h.uut.cut.next = cycle >= cut_at && out.last().is_none_or(|b: &Beat| !b.eos);
            h.settle();
            let fire = offer && h.uut.hm_in.ready.val();
            stop_seen |= h.uut.hm_stop.val();
            let beat: Option<Beat> = h
                .uut
                .data_out
                .valid
                .val()
                .then(|| h.uut.data_out.word.val().into());
            h.cycle();
            taken += fire as usize;
            if let Some(b) = beat {
                out.push(b);
                if b.eos {
                    break;
                }
            }
        }
        h.uut.hm_in.valid.next = false;
        h.uut.cut.next = false;
        h.cycle();
        (out, taken, stop_seen)
    }

    #[test]
    fn adapter_in_cuts_the_transfer_at_a_tuple_boundary() {
        // Six 3-word tuples. The cut comes while tuple 2 is half taken: the adapter
        // finishes that tuple, tells the HM to stop, and ends the stream itself.
        let hm: Vec<Beat> = (0..18u16)
            .map(|i| Beat::data(i, false, i % 3 == 2))
            .chain(std::iter::once(Beat::eos()))
            .collect();
        let mut h = Harness::new(HmAdapterIn::default());
        let (out, taken, stop_seen) = run_in_with_cut(&mut h, &hm, 7);
        assert!(stop_seen);
        assert_eq!(taken, 9, "tuples 0, 1 and 2 whole, nothing after");
        let mut want = hm_in_model(&hm[..9], None);
        want.push(Beat::eos());
        assert_eq!(out, want);
        // A cut raised before the stream begins is not for it (the core raises it only
        // during a command, which its first beat starts): it acts after the first tuple.
        let (out, taken, stop_seen) = run_in_with_cut(&mut h, &hm, 0);
        assert!(stop_seen);
        assert_eq!(taken, 3);
        assert_eq!(
            out,
            [hm_in_model(&hm[..3], None), vec![Beat::eos()]].concat()
        );
        // No cut: the whole stream; and a cut after the stream's end is ignored.
        let (out, taken, stop_seen) = run_in_with_cut(&mut h, &hm, 1000);
        assert_eq!((out, taken, stop_seen), (hm_in_model(&hm, None), 19, false));
        h.uut.cut.next = true;
        h.cycle();
        assert!(!h.uut.hm_stop.val(), "the stream has ended: nothing to cut");
        h.uut.cut.next = false;
        // With pace 3, a cut still ends at a boundary, and the next stream is whole.
        h.uut.pace.next = 3.into();
        let (out, taken, _) = run_in_with_cut(&mut h, &hm, 10);
        assert_eq!(taken % 3, 0);
        assert_eq!(out.len(), taken + 1);
        let (out, _, _) = run_in_with_cut(&mut h, &hm, 1000);
        assert_eq!(out, hm_in_model(&hm, None));
    }

    #[test]
    fn adapter_out_paces_every_third_cycle() {
        let core: Vec<Beat> = (0..30u16)
            .map(|i| Beat::data(i, false, i % 3 == 2))
            .chain(std::iter::once(Beat::eos()))
            .collect();
        for (pace, spacing) in [(0u8, 1u64), (3, 3), (7, 7)] {
            let mut h = Harness::new(HmAdapterOut::default());
            h.uut.pace.next = (pace as u64).into();
            let run = h.run_stream(&core, Pacing::FULL_RATE, 2000);
            assert_eq!(run.output, core);
            let c = &run.output_cycles;
            assert!(c.windows(2).all(|w| w[1] - w[0] == spacing), "pace {pace}");
        }
    }

    fn run_out(
        h: &mut Harness<HmAdapterOut>,
        core: &[Beat],
        pace: u8,
        pacing: Pacing,
    ) -> Vec<Beat> {
        h.uut.pace.next = (pace as u64).into();
        let mut out = vec![];
        let mut start = 0;
        for (i, b) in core.iter().enumerate() {
            if b.eos {
                let max = (1000 + 40 * (i - start) as u64) * pace.max(1) as u64;
                let run = h.run_stream(&core[start..=i], pacing, max);
                for w in run.output_cycles.windows(2) {
                    assert!(
                        w[1] - w[0] >= min_spacing(pace),
                        "beats sent {} cycles apart at pace {pace}",
                        w[1] - w[0]
                    );
                }
                out.extend(run.output);
                start = i + 1;
            }
        }
        out
    }

    /// Core output beats: compact tuples with DP, some with a flipped parity bit.
    fn random_core_beats(rng: &mut ChaCha8Rng, bad_parity: f64) -> Vec<Beat> {
        let mut v = vec![];
        for _ in 0..rng.gen_range(1..4) {
            let n = rng.gen_range(1..6);
            for _ in 0..rng.gen_range(0..8) {
                let dup = rng.gen();
                for i in 0..n {
                    let mut b = Beat::data(rng.gen(), false, i + 1 == n);
                    b.dup = dup;
                    if rng.gen_bool(bad_parity) {
                        b.parity ^= 1 << rng.gen_range(0..2);
                    }
                    v.push(b);
                }
            }
            v.push(Beat::eos());
        }
        v
    }

    fn clear(h: &mut Harness<HmAdapterOut>) {
        h.uut.clear.next = true;
        h.cycle();
        h.uut.clear.next = false;
    }

    #[test]
    fn adapter_out_matches_the_model_under_random_handshakes() {
        let mut rng = ChaCha8Rng::seed_from_u64(62);
        let mut h = Harness::new(HmAdapterOut::default());
        for case in 0..200 {
            let core = random_core_beats(&mut rng, if case % 3 == 0 { 0.05 } else { 0.0 });
            let pacing = Pacing {
                source_duty: rng.gen_range(0.3..=1.0),
                sink_duty: rng.gen_range(0.3..=1.0),
                seed: case,
            };
            clear(&mut h);
            let pace = [0u8, 1, 2, 3, 5][rng.gen_range(0..5)];
            let out = run_out(&mut h, &core, pace, pacing);
            let (want, parity_error, tuples) = hm_out_model(&core);
            assert_eq!(out, want, "case {case}");
            assert_eq!(h.uut.parity_error.val(), parity_error, "case {case}");
            assert_eq!(h.uut.tuples.val().index() as u32, tuples, "case {case}");
        }
    }

    #[test]
    fn adapter_out_parity_error_is_sticky_until_clear() {
        let mut core = vec![
            Beat::data(0x0000, false, false),
            Beat::data(0x00ff, false, true),
            Beat::eos(),
        ];
        let mut h = Harness::new(HmAdapterOut::default());
        h.run_stream(&core, Pacing::FULL_RATE, 100);
        assert!(!h.uut.parity_error.val());
        assert_eq!(h.uut.tuples.val().index(), 1);
        core[0].parity = 0; // all-zero bus: a stuck-at-0 fault is a parity error
        h.run_stream(&core, Pacing::FULL_RATE, 100);
        assert!(h.uut.parity_error.val());
        h.run_stream(&core[1..], Pacing::FULL_RATE, 100);
        assert!(h.uut.parity_error.val(), "sticky across streams");
        assert_eq!(h.uut.tuples.val().index(), 3);
        clear(&mut h);
        assert!(!h.uut.parity_error.val());
        assert_eq!(h.uut.tuples.val().index(), 0);
        // The end-of-stream beat carries no parity: never an error.
        h.run_stream(&[Beat::eos()], Pacing::FULL_RATE, 100);
        assert!(!h.uut.parity_error.val());
    }

    #[test]
    fn hm_adapter_in_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(HmAdapterIn::default());
        crate::verilog::check_module("hm_adapter_in", &v).unwrap();
    }

    #[test]
    fn hm_adapter_out_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(HmAdapterOut::default());
        crate::verilog::check_module("hm_adapter_out", &v).unwrap();
    }
}
