//! Link check: a beat count and checksum of one tuple-stream connection, taken at both of
//! its ends (issue 7; an addition to the paper's checks, TR-063 §3.1, §4.2).
//!
//! The paper's parity lines (PT) cover the 16 data lines only, and the sorting checker sees
//! the stream before the merger does. So a fault between the sorting checker and the
//! merger, or between the merger and HM adapter OUT, on the NL, DP or `last` line, or a beat
//! lost or sent twice, reaches the result unseen: the fault campaign (`rdbe faults`,
//! `docs/RELIABILITY.md`) found such silent wrong results. The obvious next mechanism is a
//! count and a checksum carried beside the stream: the sending end counts the beats it
//! hands over and folds every line of each (data, parity, NL, DP, `last`, end of stream)
//! into a running checksum; the receiving end does the same with what it takes. Both ends
//! of a healthy link handshake the same beats in the same cycle, so the two (count,
//! checksum) pairs are equal after every cycle; `error` is set (sticky until `clear`) the
//! cycle after they differ.
//!
//! # Design choices
//! * **Observes, never drives.** The check takes the two ends' handshakes and beats as
//!   inputs (`tx_*` where the sender's beat leaves, `rx_*` where the receiver takes it),
//!   so it adds no cycle and nothing to the stream's timing paths but its own registers.
//! * **Checksum.** 16 bits, rotate left by one then XOR the beat's data with its six other
//!   lines (parity, NL, DP, `last`, end of stream in bits 0 to 5): any single flipped line
//!   changes it, and the rotation makes it depend on the beats' order. The 16-bit beat
//!   count catches a lost or repeated beat even where the checksum would cancel.
//! * **Where.** The engine core checks its two links that no other mechanism covers: sort
//!   pipeline → merger and merger → the core's output (`rtl/src/engine_core.rs`).
use crate::dff::DFF;
use crate::tuple_stream::{Beat, TupleWord};
use rust_hdl::prelude::*;

#[derive(LogicBlock, Default)]
pub struct LinkCheck {
    pub clock: Signal<In, Clock>,
    /// The sending end hands a beat over this cycle (its `valid & ready`).
    pub tx_fire: Signal<In, Bit>,
    pub tx_word: Signal<In, TupleWord>,
    /// The receiving end takes a beat this cycle.
    pub rx_fire: Signal<In, Bit>,
    pub rx_word: Signal<In, TupleWord>,
    /// Synchronous: counts, checksums and `error` back to 0.
    pub clear: Signal<In, Bit>,
    /// The two ends disagreed (sticky until `clear`).
    pub error: Signal<Out, Bit>,
    tx_beats: DFF<Bits<16>>,
    rx_beats: DFF<Bits<16>>,
    tx_sum: DFF<Bits<16>>,
    rx_sum: DFF<Bits<16>>,
    failed: DFF<Bit>,
    tx_fold: Signal<Local, Bits<16>>,
    rx_fold: Signal<Local, Bits<16>>,
}

impl Logic for LinkCheck {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, tx_beats, rx_beats, tx_sum, rx_sum, failed);
        // Each beat's lines folded into 16 bits: data XOR the other six lines in bits 5:0.
        self.tx_fold.next = self.tx_word.val().data ^ bit_cast::<16, 2>(self.tx_word.val().parity);
        if self.tx_word.val().null {
            self.tx_fold.next = self.tx_fold.val() ^ 0x0004;
        }
        if self.tx_word.val().dup {
            self.tx_fold.next = self.tx_fold.val() ^ 0x0008;
        }
        if self.tx_word.val().last {
            self.tx_fold.next = self.tx_fold.val() ^ 0x0010;
        }
        if self.tx_word.val().eos {
            self.tx_fold.next = self.tx_fold.val() ^ 0x0020;
        }
        self.rx_fold.next = self.rx_word.val().data ^ bit_cast::<16, 2>(self.rx_word.val().parity);
        if self.rx_word.val().null {
            self.rx_fold.next = self.rx_fold.val() ^ 0x0004;
        }
        if self.rx_word.val().dup {
            self.rx_fold.next = self.rx_fold.val() ^ 0x0008;
        }
        if self.rx_word.val().last {
            self.rx_fold.next = self.rx_fold.val() ^ 0x0010;
        }
        if self.rx_word.val().eos {
            self.rx_fold.next = self.rx_fold.val() ^ 0x0020;
        }
        if self.tx_fire.val() {
            self.tx_beats.d.next = self.tx_beats.q.val() + 1;
            self.tx_sum.d.next =
                ((self.tx_sum.q.val() << 1) | (self.tx_sum.q.val() >> 15)) ^ self.tx_fold.val();
        }
        if self.rx_fire.val() {
            self.rx_beats.d.next = self.rx_beats.q.val() + 1;
            self.rx_sum.d.next =
                ((self.rx_sum.q.val() << 1) | (self.rx_sum.q.val() >> 15)) ^ self.rx_fold.val();
        }
        if (self.tx_beats.q.val() != self.rx_beats.q.val())
            | (self.tx_sum.q.val() != self.rx_sum.q.val())
        {
            self.failed.d.next = true;
        }
        if self.clear.val() {
            self.tx_beats.d.next = 0.into();
            self.rx_beats.d.next = 0.into();
            self.tx_sum.d.next = 0.into();
            self.rx_sum.d.next = 0.into();
            self.failed.d.next = false;
        }
        self.error.next = self.failed.q.val();
    }
}

/// The reference model: one end's (beat count, checksum) over the beats it handshook.
pub fn link_check_model(beats: &[Beat]) -> (u16, u16) {
    let mut sum = 0u16;
    for b in beats {
        let fold = b.data
            ^ (b.parity as u16 & 3)
            ^ (b.null as u16) << 2
            ^ (b.dup as u16) << 3
            ^ (b.last as u16) << 4
            ^ (b.eos as u16) << 5;
        sum = sum.rotate_left(1) ^ fold;
    }
    (beats.len() as u16, sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault_injector::{fault_injector_model, Fault, FaultInjector, FaultKind};
    use crate::harness::{Harness, Pacing};
    use crate::tuple_stream::{compact_beats, TupleStreamIn, TupleStreamOut};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A fault injector with a link check across it: the check's two ends are the
    /// injector's input and output, as in the engine core.
    #[derive(LogicBlock, Default)]
    struct CheckedLink {
        clock: Signal<In, Clock>,
        data_in: TupleStreamIn,
        data_out: TupleStreamOut,
        kind: Signal<In, FaultKind>,
        target: Signal<In, Bits<32>>,
        line: Signal<In, Bits<4>>,
        injector: FaultInjector,
        link_check: LinkCheck,
    }

    impl Logic for CheckedLink {
        #[hdl_gen]
        fn update(&mut self) {
            clock!(self, clock, injector, link_check);
            TupleStreamIn::link(&mut self.data_in, &mut self.injector.data_in);
            TupleStreamOut::link(&mut self.data_out, &mut self.injector.data_out);
            self.link_check.tx_fire.next =
                self.injector.data_in.valid.val() & self.injector.data_in.ready.val();
            self.link_check.tx_word.next = self.injector.data_in.word.val();
            self.link_check.rx_fire.next =
                self.injector.data_out.valid.val() & self.injector.data_out.ready.val();
            self.link_check.rx_word.next = self.injector.data_out.word.val();
            self.link_check.clear.next = false;
            self.injector.restart.next = false;
            self.injector.kind.next = self.kind.val();
            self.injector.target.next = self.target.val();
            self.injector.line.next = self.line.val();
        }
    }

    crate::impl_stream_block!(CheckedLink);

    fn run(beats: &[Beat], fault: Option<Fault>, pacing: Pacing) -> Option<bool> {
        let mut h = Harness::new(CheckedLink::default());
        let f = fault.unwrap_or(Fault {
            kind: FaultKind::Off,
            target: 0,
            line: 0,
        });
        h.uut.kind.next = f.kind;
        h.uut.target.next = (f.target as u64).into();
        h.uut.line.next = (f.line as u64).into();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            h.run_stream(beats, pacing, 20 * beats.len() as u64 + 100)
        }));
        run.ok()?;
        // One more cycle: the comparison registers.
        h.cycle();
        Some(h.uut.link_check.error.val())
    }

    #[test]
    fn a_healthy_link_never_fails_and_the_model_matches_both_ends() {
        let beats = compact_beats(&[vec![0x1234, 0x0001], vec![0xBEEF, 0x8000]]);
        for pacing in [
            Pacing::FULL_RATE,
            Pacing {
                source_duty: 0.5,
                sink_duty: 0.4,
                seed: 3,
            },
        ] {
            assert_eq!(run(&beats, None, pacing), Some(false));
        }
        // The model's checksum changes with any single line and with the order.
        let base = link_check_model(&beats);
        let mut flipped = beats.clone();
        flipped[1].null = !flipped[1].null;
        assert_ne!(link_check_model(&flipped), base);
        let mut swapped = beats.clone();
        swapped.swap(0, 2);
        assert_ne!(link_check_model(&swapped), base);
    }

    #[test]
    fn every_transient_fault_that_changes_the_stream_is_caught() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for case in 0..150 {
            let tuples: Vec<Vec<u16>> = (0..rng.gen_range(1..5))
                .map(|_| (0..rng.gen_range(1..4)).map(|_| rng.gen()).collect())
                .collect();
            let beats = compact_beats(&tuples);
            let kind = FaultKind::TRANSIENT[rng.gen_range(0..FaultKind::TRANSIENT.len())];
            let fault = Fault {
                kind,
                target: rng.gen_range(0..beats.len() as u32 - 1),
                line: rng.gen_range(0..16),
            };
            let pacing = Pacing {
                source_duty: [1.0, 0.6][rng.gen_range(0..2)],
                sink_duty: [1.0, 0.5][rng.gen_range(0..2)],
                seed: case,
            };
            let sent = fault_injector_model(&beats, Some(fault));
            // Sender and receiver disagree by the model exactly when the fault changed the
            // stream; the RTL says so too.
            let differs = link_check_model(&sent) != link_check_model(&beats);
            assert!(
                differs,
                "case {case}: {fault:?} left the checksum as it was"
            );
            assert_eq!(
                run(&beats, Some(fault), pacing),
                Some(true),
                "case {case}: {fault:?}"
            );
        }
    }

    #[test]
    fn link_check_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(LinkCheck::default());
        crate::verilog::check_module("link_check", &v).unwrap();
    }
}
