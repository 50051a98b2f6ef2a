//! Fault injector: test equipment for the paper's check mechanisms (issue 7).
//!
//! The paper claims reliability from its parity lines (PT, §3.1), the sorting checker
//! (§4.2), the power-up self check (§5.4) and retry-based error recovery (§5.3). To measure
//! that claim a fault must be put on the tuple stream at a chosen place and time. This block
//! is one stage of the stream that passes every beat unchanged, except the one beat it was
//! told to corrupt (or, for a stuck line, every beat from that one on).
//!
//! # Design choices
//! * **Beats, not cycles.** The target is the index of a beat taken from the source since
//!   the last `restart`, not a clock cycle: a fault at a cycle when no beat moves would be
//!   masked trivially, and beat indices do not depend on the handshake pacing, so the same
//!   experiment gives the same fault under any schedule and on every backend.
//! * **Combinational stage.** It adds no register and no cycle, so an experiment's cycle
//!   counts are the fault-free run's up to the fault. It is meant for testbenches and
//!   simulation builds; a synthesis top ties `kind` to [FaultKind::Off] and yosys removes it.
//! * **Fault classes.** Transient single-beat faults on each line group (a data bit, a
//!   parity line, NL, DP, `last`), the two framing faults of a flaky handshake (a beat
//!   dropped, a beat sent twice) and a permanent one (a data line stuck at 0 or 1 from the
//!   target beat on). Memory corruption inside a cell or the merger is done on the memory
//!   itself ([crate::block_ram::BlockRam] test hooks), not here.
use crate::dff::DFF;
use crate::tuple_stream::{Beat, TupleStreamIn, TupleStreamOut};
use rust_hdl::prelude::*;

/// What the injector does to the target beat.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, LogicState)]
pub enum FaultKind {
    /// Pass every beat unchanged.
    Off,
    /// Invert data bit `bit` (DT line 0..=15) of the target beat.
    FlipData,
    /// Invert parity line `line & 1` (PT) of the target beat.
    FlipParity,
    /// Invert the NL line of the target beat.
    FlipNull,
    /// Invert the DP line of the target beat.
    FlipDup,
    /// Invert `last` of the target beat.
    FlipLast,
    /// Take the target beat from the source and send nothing for it.
    Drop,
    /// Send the target beat twice.
    Duplicate,
    /// From the target beat on, data bit `bit` reads 0.
    StuckAt0,
    /// From the target beat on, data bit `bit` reads 1.
    StuckAt1,
}

impl FaultKind {
    pub const ALL: [FaultKind; 10] = [
        FaultKind::Off,
        FaultKind::FlipData,
        FaultKind::FlipParity,
        FaultKind::FlipNull,
        FaultKind::FlipDup,
        FaultKind::FlipLast,
        FaultKind::Drop,
        FaultKind::Duplicate,
        FaultKind::StuckAt0,
        FaultKind::StuckAt1,
    ];
    /// The transient kinds: one beat of one step (fault campaigns draw from these).
    pub const TRANSIENT: [FaultKind; 7] = [
        FaultKind::FlipData,
        FaultKind::FlipParity,
        FaultKind::FlipNull,
        FaultKind::FlipDup,
        FaultKind::FlipLast,
        FaultKind::Drop,
        FaultKind::Duplicate,
    ];
}

/// One fault: what, on which beat (counted from 0), which line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fault {
    pub kind: FaultKind,
    pub target: u32,
    /// Data line 0..=15 for the data and stuck-at kinds, parity line `line & 1` for
    /// [FaultKind::FlipParity]; ignored otherwise.
    pub line: u8,
}

/// Where in the engine core a fault hits: the three injector stages of
/// [crate::engine_core] (the `fault_site` port's value is the variant's index).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FaultSite {
    /// The core's input: HM adapter IN → IN module.
    Input,
    /// The sort pipeline's output: sorting checker → merger.
    Sorted,
    /// The core's output: merger → HM adapter OUT.
    Output,
}

impl FaultSite {
    pub const ALL: [FaultSite; 3] = [FaultSite::Input, FaultSite::Sorted, FaultSite::Output];
    /// The value of the engine core's `fault_site` port.
    pub fn index(self) -> u8 {
        self as u8
    }
    pub fn name(self) -> &'static str {
        match self {
            FaultSite::Input => "input",
            FaultSite::Sorted => "sorted",
            FaultSite::Output => "output",
        }
    }
}

/// One fault on one of the engine core's streams, for one step.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamFault {
    pub site: FaultSite,
    pub fault: Fault,
}

impl FaultKind {
    /// The kind's index (the RDBE top's INJECT register, bits 3:0).
    pub fn index(self) -> u8 {
        FaultKind::ALL.iter().position(|k| *k == self).unwrap() as u8
    }
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Off => "off",
            FaultKind::FlipData => "flip data",
            FaultKind::FlipParity => "flip parity",
            FaultKind::FlipNull => "flip NL",
            FaultKind::FlipDup => "flip DP",
            FaultKind::FlipLast => "flip last",
            FaultKind::Drop => "drop",
            FaultKind::Duplicate => "duplicate",
            FaultKind::StuckAt0 => "stuck at 0",
            FaultKind::StuckAt1 => "stuck at 1",
        }
    }
}

/// The injector: a combinational stage of the tuple stream.
#[derive(LogicBlock)]
pub struct FaultInjector {
    pub clock: Signal<In, Clock>,
    pub data_in: TupleStreamIn,
    pub data_out: TupleStreamOut,
    pub kind: Signal<In, FaultKind>,
    /// The beat the fault hits, counted from 0 since the last `restart`.
    pub target: Signal<In, Bits<32>>,
    /// The line (see [Fault::line]; `bit` is a SystemVerilog keyword).
    pub line: Signal<In, Bits<4>>,
    /// Synchronous: count beats from 0 again and forget that the fault hit.
    pub restart: Signal<In, Bit>,
    /// The fault has hit a beat since the last `restart` (an experiment whose target lies
    /// beyond the stream injected nothing).
    pub injected: Signal<Out, Bit>,
    one16: Constant<Bits<16>>,
    one2: Constant<Bits<2>>,
    beats_taken: DFF<Bits<32>>,
    hit: DFF<Bit>,
    /// The first copy of a duplicated beat has been sent.
    copy_sent: DFF<Bit>,
    at_target: Signal<Local, Bit>,
    stuck: Signal<Local, Bit>,
    data_mask: Signal<Local, Bits<16>>,
    parity_mask: Signal<Local, Bits<2>>,
    taken: Signal<Local, Bit>,
}

impl Default for FaultInjector {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            data_in: Default::default(),
            data_out: Default::default(),
            kind: Default::default(),
            target: Default::default(),
            line: Default::default(),
            restart: Default::default(),
            injected: Default::default(),
            one16: Constant::new(1.into()),
            one2: Constant::new(1.into()),
            beats_taken: Default::default(),
            hit: Default::default(),
            copy_sent: Default::default(),
            at_target: Default::default(),
            stuck: Default::default(),
            data_mask: Default::default(),
            parity_mask: Default::default(),
            taken: Default::default(),
        }
    }
}

impl FaultInjector {
    /// Set the fault ports (takes effect with the next beats; `restart` separately).
    pub fn arm(&mut self, fault: Option<Fault>) {
        let f = fault.unwrap_or(Fault {
            kind: FaultKind::Off,
            target: 0,
            line: 0,
        });
        self.kind.next = f.kind;
        self.target.next = (f.target as u64).into();
        self.line.next = ((f.line & 15) as u64).into();
    }
}

// rust-hdl's `hdl_gen` has no match guards, so an arm's condition is an `if` inside it.
#[allow(clippy::collapsible_match)]
impl Logic for FaultInjector {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, beats_taken, hit, copy_sent);
        self.injected.next = self.hit.q.val();
        self.at_target.next = self.beats_taken.q.val() == self.target.val();
        self.data_mask.next = self.one16.val() << self.line.val();
        self.parity_mask.next = self.one2.val() << self.line.val().get_bits::<1>(0);
        self.stuck.next = self.at_target.val() | self.hit.q.val();

        self.data_out.word.next = self.data_in.word.val();
        self.data_out.valid.next = self.data_in.valid.val();
        self.data_in.ready.next = self.data_out.ready.val();
        match self.kind.val() {
            FaultKind::FlipData => {
                if self.at_target.val() {
                    self.data_out.word.next.data =
                        self.data_in.word.val().data ^ self.data_mask.val();
                }
            }
            FaultKind::FlipParity => {
                if self.at_target.val() {
                    self.data_out.word.next.parity =
                        self.data_in.word.val().parity ^ self.parity_mask.val();
                }
            }
            FaultKind::FlipNull => {
                if self.at_target.val() {
                    self.data_out.word.next.null = !self.data_in.word.val().null;
                }
            }
            FaultKind::FlipDup => {
                if self.at_target.val() {
                    self.data_out.word.next.dup = !self.data_in.word.val().dup;
                }
            }
            FaultKind::FlipLast => {
                if self.at_target.val() {
                    self.data_out.word.next.last = !self.data_in.word.val().last;
                }
            }
            FaultKind::Drop => {
                if self.at_target.val() {
                    // Taken from the source, sent nowhere.
                    self.data_out.valid.next = false;
                    self.data_in.ready.next = true;
                }
            }
            FaultKind::Duplicate => {
                if self.at_target.val() & !self.copy_sent.q.val() {
                    // The first copy leaves without the source letting go of the beat.
                    self.data_in.ready.next = false;
                    if self.data_in.valid.val() & self.data_out.ready.val() {
                        self.copy_sent.d.next = true;
                        self.hit.d.next = true;
                    }
                }
            }
            FaultKind::StuckAt0 => {
                if self.stuck.val() {
                    self.data_out.word.next.data =
                        self.data_in.word.val().data & !self.data_mask.val();
                }
            }
            FaultKind::StuckAt1 => {
                if self.stuck.val() {
                    self.data_out.word.next.data =
                        self.data_in.word.val().data | self.data_mask.val();
                }
            }
            _ => {}
        }
        self.taken.next = self.data_in.valid.val() & self.data_in.ready.val();
        if self.taken.val() {
            self.beats_taken.d.next = self.beats_taken.q.val() + 1;
            if self.at_target.val() & (self.kind.val() != FaultKind::Off) {
                self.hit.d.next = true;
            }
        }
        if self.restart.val() {
            self.beats_taken.d.next = 0.into();
            self.hit.d.next = false;
            self.copy_sent.d.next = false;
        }
    }
}

crate::impl_stream_block!(FaultInjector);

/// The reference model: the beats a fault-free source stream becomes.
pub fn fault_injector_model(beats: &[Beat], fault: Option<Fault>) -> Vec<Beat> {
    let Some(f) = fault else {
        return beats.to_vec();
    };
    let mut out = Vec::with_capacity(beats.len() + 1);
    for (i, &b) in beats.iter().enumerate() {
        let at = i as u64 == f.target as u64;
        let from = i as u64 >= f.target as u64;
        let mask = 1u16 << (f.line & 15);
        let mut w = b;
        match f.kind {
            FaultKind::Off => {}
            FaultKind::FlipData if at => w.data ^= mask,
            FaultKind::FlipParity if at => w.parity ^= 1 << (f.line & 1),
            FaultKind::FlipNull if at => w.null = !w.null,
            FaultKind::FlipDup if at => w.dup = !w.dup,
            FaultKind::FlipLast if at => w.last = !w.last,
            FaultKind::Drop if at => continue,
            FaultKind::Duplicate if at => out.push(w),
            FaultKind::StuckAt0 if from => w.data &= !mask,
            FaultKind::StuckAt1 if from => w.data |= mask,
            _ => {}
        }
        out.push(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{Harness, Pacing};
    use crate::tuple_stream::compact_beats;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Everything the injector sent, up to and including the first end-of-stream beat.
    fn run(beats: &[Beat], fault: Option<Fault>, pacing: Pacing) -> (Vec<Beat>, bool) {
        let mut h = Harness::new(FaultInjector::default());
        h.uut.restart.next = true;
        h.cycle();
        h.uut.restart.next = false;
        h.uut.arm(fault);
        let r = h.run_stream(beats, pacing, 10 * beats.len() as u64 + 100);
        (r.output, h.uut.injected.val())
    }

    fn stream() -> Vec<Beat> {
        compact_beats(&[vec![0x1234, 0x0001], vec![0xBEEF, 0x8000], vec![7, 0]])
    }

    #[test]
    fn each_kind_corrupts_its_target_beat_as_the_model_says() {
        let beats = stream();
        let at = |kind, target, bit| {
            Some(Fault {
                kind,
                target,
                line: bit,
            })
        };
        // The paper's lines one by one, on beat 2 (0xBEEF, the second tuple's key).
        let (out, hit) = run(&beats, at(FaultKind::FlipData, 2, 0), Pacing::FULL_RATE);
        assert!(hit);
        assert_eq!(out[2].data, 0xBEEE);
        assert!(!out[2].parity_ok(), "a flipped data bit breaks the parity");
        let (out, _) = run(&beats, at(FaultKind::FlipParity, 2, 1), Pacing::FULL_RATE);
        assert_eq!((out[2].data, out[2].parity ^ beats[2].parity), (0xBEEF, 2));
        let (out, _) = run(&beats, at(FaultKind::Drop, 2, 0), Pacing::FULL_RATE);
        assert_eq!(out.len(), beats.len() - 1);
        assert_eq!(out[2].data, 0x8000);
        let (out, _) = run(&beats, at(FaultKind::Duplicate, 2, 0), Pacing::FULL_RATE);
        assert_eq!(
            (out.len(), out[2], out[3]),
            (beats.len() + 1, beats[2], beats[2])
        );
        let (out, _) = run(&beats, at(FaultKind::StuckAt1, 1, 15), Pacing::FULL_RATE);
        let data: Vec<u16> = out.iter().map(|b| b.data).collect();
        assert_eq!(
            data,
            vec![0x1234, 0x8001, 0xBEEF, 0x8000, 0x8007, 0x8000, 0x8000]
        );
        // Off, and a target beyond the stream: nothing changes, nothing was injected.
        assert_eq!(run(&beats, None, Pacing::FULL_RATE), (beats.clone(), false));
        assert_eq!(
            run(&beats, at(FaultKind::FlipData, 99, 3), Pacing::FULL_RATE),
            (beats.clone(), false)
        );
    }

    #[test]
    fn random_faults_and_pacing_match_the_model() {
        let mut rng = ChaCha8Rng::seed_from_u64(71);
        for case in 0..200 {
            let tuples: Vec<Vec<u16>> = (0..rng.gen_range(0..6))
                .map(|_| (0..rng.gen_range(1..4)).map(|_| rng.gen()).collect())
                .collect();
            let beats = compact_beats(&tuples);
            let fault = Fault {
                kind: FaultKind::ALL[rng.gen_range(0..FaultKind::ALL.len())],
                target: rng.gen_range(0..beats.len() as u32 + 2),
                line: rng.gen_range(0..16),
            };
            let pacing = Pacing {
                source_duty: [1.0, 0.5][rng.gen_range(0..2)],
                sink_duty: [1.0, 0.6][rng.gen_range(0..2)],
                seed: case,
            };
            let expected = fault_injector_model(&beats, Some(fault));
            if !expected.iter().any(|b| b.eos) {
                // The end-of-stream beat dropped: the sink waits for ever (the harness gives
                // up; in the engine the control program's step budget does).
                let ended = std::panic::catch_unwind(|| run(&beats, Some(fault), pacing));
                assert!(
                    ended.is_err(),
                    "case {case}: a stream without its end ended"
                );
                continue;
            }
            // The harness stops at the first end-of-stream beat it receives.
            let cut = expected
                .iter()
                .position(|b| b.eos)
                .map_or(expected.len(), |i| i + 1);
            let (out, hit) = run(&beats, Some(fault), pacing);
            assert_eq!(out, expected[..cut], "case {case}: {fault:?} {pacing:?}");
            let reached = (fault.target as usize) < cut.min(beats.len());
            assert_eq!(
                hit,
                fault.kind != FaultKind::Off && reached,
                "case {case}: injected flag, {fault:?}"
            );
        }
    }

    #[test]
    fn fault_injector_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(FaultInjector::default());
        crate::verilog::check_module("fault_injector", &v).unwrap();
    }
}
