//! A fast single-threaded clocked simulation harness for rust-hdl blocks, with optional
//! VCD tracing, and stream drivers (source with gaps, sink with back-pressure) that every
//! module test, the testbenches and the `rdbe` CLI share.
//!
//! rust-hdl's threaded `Simulation` runs about 7k cycles/s; stepping one clock edge at a
//! time and settling with `simulate` in this thread is more than ten times faster.
use crate::tuple_stream::{Beat, TupleStreamIn, TupleStreamOut};
use rust_hdl::core::block::SettleMode;
use rust_hdl::core::vcd_probe::VCDProbe;
use rust_hdl::prelude::*;
use std::fs::File;
use std::io::BufWriter;

/// A block with one clock input.
pub trait Clocked: Block {
    fn clock_mut(&mut self) -> &mut Signal<In, Clock>;
}

/// A block with one tuple-stream input and one tuple-stream output.
pub trait StreamBlock: Clocked {
    fn stream_in(&mut self) -> &mut TupleStreamIn;
    fn stream_out(&mut self) -> &mut TupleStreamOut;
    /// The block tells its source to end the transfer now (HM adapter IN's `hm_stop`): the
    /// source offers nothing more of the current stream, not even its end-of-stream beat.
    fn transfer_stopped(&self) -> bool {
        false
    }
}

/// Implements [Clocked] (and optionally [StreamBlock]) for a block whose ports are named
/// `clock`, `data_in` and `data_out`.
#[macro_export]
macro_rules! impl_stream_block {
    (generic [$($g:tt)*] $t:ty) => {
        impl<$($g)*> $crate::harness::Clocked for $t {
            fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
                &mut self.clock
            }
        }
        impl<$($g)*> $crate::harness::StreamBlock for $t {
            fn stream_in(&mut self) -> &mut $crate::tuple_stream::TupleStreamIn {
                &mut self.data_in
            }
            fn stream_out(&mut self) -> &mut $crate::tuple_stream::TupleStreamOut {
                &mut self.data_out
            }
        }
    };
    ($t:ty) => {
        $crate::impl_stream_block!(generic [] $t);
    };
}

/// Drives a block clock edge by clock edge.
pub struct Harness<B: Clocked> {
    pub uut: B,
    /// Rising edges so far.
    pub cycles: u64,
    /// Settling passes (`update_all` calls on the whole block, each running only what its
    /// settle mode needs) so far: the simulation's cost.
    pub passes: u64,
    /// Check every settle that runs blocks by [SettleMode::Local] or [SettleMode::Skip]:
    /// a pass as rust-hdl takes it must then change nothing (it panics if one does). Off
    /// unless the environment sets `RDBE_VERIFY_SETTLE=1`.
    pub check_settles: bool,
    vcd: Option<VCDProbe<BufWriter<File>>>,
    /// Simulated time in VCD units (one clock period = 10 units).
    time: u64,
    /// Untraced: whether the time has gone on by the fall since the last rise.
    fallen: bool,
}

impl<B: Clocked> Harness<B> {
    /// Connects and checks the block (undriven signals, logic loops), then settles it.
    pub fn new(mut uut: B) -> Harness<B> {
        uut.connect_all();
        check_all(&uut).expect("rust-hdl design check");
        let mut h = Harness {
            uut,
            cycles: 0,
            passes: 0,
            check_settles: std::env::var("RDBE_VERIFY_SETTLE").is_ok_and(|v| v == "1"),
            vcd: None,
            time: 0,
            fallen: true,
        };
        h.settle();
        h
    }

    /// Start writing every signal change to a VCD file (GTKWave opens it).
    pub fn trace_to(&mut self, path: &std::path::Path) -> anyhow::Result<()> {
        let file = BufWriter::new(File::create(path)?);
        // A trace starts with the clock low (an untraced run leaves it high), settled in
        // rust-hdl's passes: they latch every signal, where the settle modes leave a
        // flip-flop's `d` as it was at the last edge (`dff::DFF`), which the dump would show.
        if self.clock_high() {
            self.uut.clock_mut().next = Clock { clk: false };
        }
        {
            let _mode = SettleModeGuard::set(SettleMode::Passes);
            self.passes += settle_block(&mut self.uut);
        }
        let probe = write_vcd_header(file, &self.uut);
        self.vcd = Some(write_vcd_dump(probe, &self.uut));
        Ok(())
    }

    /// A new simulation of the same block, `uut` fresh (as after configuration), that goes
    /// on with the open trace, if any: the VCD shows the restart as the changes of one
    /// time step, and the cycle count goes on (runs measure differences).
    pub fn restart(&mut self, uut: B) {
        if self.vcd.is_some() {
            self.clock_fall();
        }
        let vcd = self.vcd.take();
        let (cycles, passes, time) = (self.cycles, self.passes, self.time);
        let check_settles = self.check_settles;
        *self = Harness::new(uut);
        self.check_settles = check_settles;
        self.cycles = cycles;
        self.passes += passes;
        self.time = time;
        self.vcd = vcd;
        self.trace_point();
    }

    /// Stop tracing and flush the VCD file (the last rise's fall dumped first). Untraced,
    /// nothing to do: as [Harness::restart], the block is left as it is.
    pub fn finish_trace(&mut self) {
        if self.vcd.is_some() {
            self.clock_fall();
        }
        self.vcd = None;
    }

    /// Propagate combinational changes until the circuit is stable. Untraced, one pass in
    /// which every block settles what is below it ([SettleMode::Local]: a block's
    /// `update_all` repeats until nothing it holds changes), so whatever a caller changed
    /// anywhere in the design is taken in; traced, whole-design passes as rust-hdl's own
    /// simulation takes them, until one changes nothing (the counter of the patched
    /// rust-hdl-core, vendor/README.md: what `has_changed` would say, without walking the
    /// whole hierarchy again).
    pub fn settle(&mut self) {
        if self.vcd.is_some() {
            let _mode = SettleModeGuard::set(SettleMode::Passes);
            self.passes += settle_block(&mut self.uut);
        } else {
            let _mode = SettleModeGuard::set(SettleMode::Local);
            self.uut.update_all();
            self.passes += 1;
            self.verify_settled();
        }
    }

    /// With [Harness::check_settles], checks that a pass as rust-hdl takes it changes
    /// nothing after a settle that ran blocks by [SettleMode::Local] or [SettleMode::Skip].
    /// It would if a block's `update` read one of its own locals or outputs before writing
    /// it (vendor/README.md, "Settle modes").
    fn verify_settled(&mut self) {
        if self.check_settles {
            let _mode = SettleModeGuard::set(SettleMode::Passes);
            let before = rust_hdl::core::block::latched_changes();
            self.uut.update_all();
            assert_eq!(
                rust_hdl::core::block::latched_changes(),
                before,
                "cycle {}: a pass after the settle changed the design",
                self.cycles
            );
        }
    }

    /// The inputs a stream loop set for the next cycle, settled: only the blocks whose
    /// inputs changed run ([SettleMode::Skip]), each until what is below it is settled, so
    /// one pass does it (and usually a small part of the design runs in it).
    fn settle_inputs(&mut self) {
        let _mode = SettleModeGuard::set(SettleMode::Skip);
        self.uut.update_all();
        self.passes += 1;
        self.verify_settled();
    }

    /// Untraced, the clock stays high; the time goes on as if it fell, once after each rise,
    /// so that a trace started later shows the cycles run before it as a traced run would.
    fn untraced_fall(&mut self) {
        if !self.fallen {
            self.time += 5;
            self.fallen = true;
        }
    }

    fn clock_high(&mut self) -> bool {
        self.uut.clock_mut().val().clk
    }

    /// The clock's fall after the last rising edge, settled together with the inputs the
    /// caller set for the next cycle: every block sees its clock fall in the first pass
    /// (the patched rust-hdl-core, vendor/README.md) and no flip-flop acts on it. Dumped
    /// when traced, as a scope shows it: the inputs change while the clock is low, and the
    /// waveform has one fall after every rise. Untraced, the clock stays high (the next
    /// rise is raised without a fall: `raise_clock_edge`) and only the inputs settle.
    fn clock_fall(&mut self) {
        if self.vcd.is_none() {
            self.untraced_fall();
            self.settle_inputs();
            return;
        }
        let was_high = self.clock_high();
        self.uut.clock_mut().next = Clock { clk: false };
        self.settle();
        self.fallen = true;
        if was_high {
            self.trace_point();
        }
    }

    /// The rising clock edge in a stream loop. Untraced, one pass in which every flip-flop
    /// takes its input (the clock reaches every block in one pass, vendor/README.md) and
    /// every block then settles what is below it ([SettleMode::Skip]): the design is
    /// settled when it returns. Traced, a settled edge as in [Harness::cycle], so that the
    /// waveform shows it.
    fn clock_rise(&mut self) {
        if self.vcd.is_some() {
            self.clock_edge();
        } else {
            let _mode = SettleModeGuard::set(SettleMode::Skip);
            rust_hdl::core::block::raise_clock_edge();
            self.uut.clock_mut().next = Clock { clk: true };
            self.fallen = false;
            self.uut.update_all();
            self.passes += 1;
            self.verify_settled();
        }
    }

    /// The rising clock edge, the inputs already settled with the clock low.
    fn clock_edge(&mut self) {
        if self.vcd.is_none() {
            self.clock_rise();
            self.time += 5;
            return;
        }
        self.uut.clock_mut().next = Clock { clk: true };
        self.settle();
        self.fallen = false;
        self.trace_point();
    }

    fn trace_point(&mut self) {
        self.time += 5;
        if let Some(vcd) = self.vcd.take() {
            let mut vcd = vcd;
            vcd.timestamp(self.time).expect("vcd write");
            self.vcd = Some(write_vcd_change(vcd, &self.uut));
        }
    }

    /// One full clock cycle: settle the inputs set by the caller, then the clock edge.
    /// Whatever the caller changed since the last cycle is taken in, wherever it is in
    /// the design (untraced, the settle runs every block).
    pub fn cycle(&mut self) {
        if self.vcd.is_some() {
            self.clock_fall();
        } else {
            self.untraced_fall();
            self.settle();
        }
        self.clock_edge();
        self.cycles += 1;
    }
}

/// Sets this thread's settle mode (the patched rust-hdl-core's `SettleMode`,
/// vendor/README.md) and restores the one before when dropped, a panic included, so that
/// code outside the harness (rust-hdl's `Simulation`, a test's own passes) settles as
/// rust-hdl does.
struct SettleModeGuard(SettleMode);

impl SettleModeGuard {
    fn set(mode: SettleMode) -> SettleModeGuard {
        SettleModeGuard(rust_hdl::core::block::set_settle_mode(mode))
    }
}

impl Drop for SettleModeGuard {
    fn drop(&mut self) {
        rust_hdl::core::block::set_settle_mode(self.0);
    }
}

/// Propagate combinational changes through `block` until it is stable, in whole passes of
/// this thread's settle mode ([SettleMode::Passes] outside the harness: until one changes
/// nothing); returns the passes it took. The harness settles every edge before a stream
/// loop's `after_edge` hook runs, so there it finds nothing to do (one pass that changes
/// nothing).
pub fn settle_block<B: Block>(block: &mut B) -> u64 {
    for pass in 1..=10_000 {
        let before = rust_hdl::core::block::latched_changes();
        block.update_all();
        if rust_hdl::core::block::latched_changes() == before {
            return pass;
        }
    }
    panic!("circuit failed to converge");
}

/// How a test paces the stream into and out of a block.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    /// Probability (0..=1) that the source offers a beat in a given cycle.
    pub source_duty: f64,
    /// Probability (0..=1) that the sink accepts in a given cycle.
    pub sink_duty: f64,
    pub seed: u64,
}

impl Pacing {
    /// Source always valid, sink always ready: measures the block's own throughput.
    pub const FULL_RATE: Pacing = Pacing {
        source_duty: 1.0,
        sink_duty: 1.0,
        seed: 0,
    };
}

/// Per-cycle handshake plan: whether the source offers a beat (if it has one left) and
/// whether the sink is ready, for each cycle from the start of a run.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub offer: Vec<bool>,
    pub take: Vec<bool>,
}

impl Schedule {
    pub fn from_pacing(pacing: Pacing, cycles: usize) -> Schedule {
        let mut rng = XorShift(pacing.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut offer = Vec::with_capacity(cycles);
        let mut take = Vec::with_capacity(cycles);
        for _ in 0..cycles {
            offer.push(rng.chance(pacing.source_duty));
            take.push(rng.chance(pacing.sink_duty));
        }
        Schedule { offer, take }
    }
}

/// Result of streaming beats through a block.
#[derive(Clone, Debug)]
pub struct StreamRun {
    pub output: Vec<Beat>,
    /// Cycle (from the start of the run) at which each input beat was accepted.
    pub input_cycles: Vec<u64>,
    /// Cycle at which each output beat was taken.
    pub output_cycles: Vec<u64>,
    /// Cycles from the start of the run until the end-of-stream beat left the block.
    pub cycles: u64,
}

/// A tiny deterministic PRNG for pacing (keeps the harness free of dependencies).
struct XorShift(u64);
impl XorShift {
    fn chance(&mut self, p: f64) -> bool {
        if p >= 1.0 {
            return true;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

impl<B: StreamBlock> Harness<B> {
    /// Feed `beats` (which must end with an end-of-stream beat) into the block and collect
    /// its output up to and including its end-of-stream beat. The source stops early when
    /// the block says so ([StreamBlock::transfer_stopped]); `input_cycles` tells how many
    /// beats were taken. Panics after `max_cycles`.
    pub fn run_stream(&mut self, beats: &[Beat], pacing: Pacing, max_cycles: u64) -> StreamRun {
        self.run_stream_with(beats, pacing, max_cycles, |_, _| {})
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [Harness::run_stream], calling `after_edge(cycle, block)` after each clock edge
    /// (cycles counted from 0): test equipment that acts on the block between cycles, such
    /// as a memory-word fault ([crate::memory_fault]). It sees the design settled after the
    /// edge. What it changes in memories is read at the next edge; a signal it changes is
    /// taken in only if it is an input of the top (the next cycle's settle runs only the
    /// blocks whose inputs changed). A
    /// stream that does not finish in `max_cycles` is an error (the block is left as it is,
    /// settled).
    pub fn run_stream_with(
        &mut self,
        beats: &[Beat],
        pacing: Pacing,
        max_cycles: u64,
        after_edge: impl FnMut(u64, &mut B),
    ) -> Result<StreamRun, String> {
        // The same handshakes as `Schedule::from_pacing(pacing, max_cycles)`, drawn cycle by
        // cycle: a generous bound costs no memory (a bound of 10^9 cycles would otherwise
        // allocate 2 GB up front).
        let mut rng = XorShift(pacing.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let handshake = move |_| {
            let offer = rng.chance(pacing.source_duty);
            (offer, rng.chance(pacing.sink_duty))
        };
        self.run_with(beats, 0, max_cycles, handshake, after_edge)
    }

    /// As [Harness::run_stream], with an explicit per-cycle schedule (shared with the
    /// Verilog co-simulation so both see the same handshakes).
    pub fn run_scheduled(&mut self, beats: &[Beat], schedule: &Schedule) -> StreamRun {
        self.run_scheduled_from(beats, schedule, 0)
    }

    /// As [Harness::run_scheduled], starting at cycle `start` of the schedule (the next
    /// stream of a multi-stream run); cycles in the result count from the schedule's start.
    pub fn run_scheduled_from(
        &mut self,
        beats: &[Beat],
        schedule: &Schedule,
        start: u64,
    ) -> StreamRun {
        let max_cycles = schedule.offer.len() as u64;
        let handshake = |cycle: u64| {
            (
                schedule.offer[cycle as usize],
                schedule.take[cycle as usize],
            )
        };
        self.run_with(beats, start, max_cycles, handshake, |_, _| {})
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The stream loop: `handshake(cycle)` says whether the source offers and the sink
    /// takes in that cycle; called once per cycle, in order, from `start` to `max_cycles`.
    /// `after_edge(cycle - start, block)` follows each clock edge.
    fn run_with(
        &mut self,
        beats: &[Beat],
        start: u64,
        max_cycles: u64,
        mut handshake: impl FnMut(u64) -> (bool, bool),
        mut after_edge: impl FnMut(u64, &mut B),
    ) -> Result<StreamRun, String> {
        assert!(
            beats.last().map(|b| b.eos).unwrap_or(false),
            "stream must end with eos"
        );
        let mut next_in = 0usize;
        let mut run = StreamRun {
            output: vec![],
            input_cycles: vec![],
            output_cycles: vec![],
            cycles: 0,
        };
        let mut stopped = false;
        // Whatever the caller changed before the stream is taken in; from here on, each
        // cycle's settle runs only the blocks whose inputs changed.
        self.settle();
        for cycle in start..max_cycles {
            let (offered, take) = handshake(cycle);
            let offer = !stopped && next_in < beats.len() && offered;
            {
                let input = self.uut.stream_in();
                input.valid.next = offer;
                if offer {
                    input.word.next = beats[next_in].into();
                }
            }
            self.uut.stream_out().ready.next = take;
            self.clock_fall();
            let in_fire = offer && self.uut.stream_in().ready.val();
            stopped |= self.uut.transfer_stopped();
            let out = self.uut.stream_out();
            let out_fire = take && out.valid.val();
            let out_beat: Beat = out.word.val().into();
            self.clock_rise();
            self.cycles += 1;
            after_edge(cycle - start, &mut self.uut);
            if in_fire {
                next_in += 1;
                run.input_cycles.push(cycle);
            }
            if out_fire {
                run.output.push(out_beat);
                run.output_cycles.push(cycle);
                if out_beat.eos {
                    run.cycles = cycle + 1;
                    let input = self.uut.stream_in();
                    input.valid.next = false;
                    self.uut.stream_out().ready.next = false;
                    self.clock_fall();
                    return Ok(run);
                }
            }
        }
        self.settle();
        Err(format!(
            "stream did not finish in {max_cycles} cycles: {} of {} beats in, {} out",
            next_in,
            beats.len(),
            run.output.len()
        ))
    }
}

/// Shape of a random relation for differential tests.
#[derive(Clone, Copy, Debug)]
pub struct RelationShape {
    pub tuples: usize,
    pub tuple_words: usize,
    pub key_words: usize,
    /// Probability that a tuple's key is null.
    pub null_probability: f64,
    /// Distinct values per key word (small: many duplicate keys).
    pub key_domain: u32,
}

/// A random relation in the engine's internal format (key first). Payload words after the
/// key are random, so tuples with equal keys are still distinguishable (stability checks).
pub fn random_relation<R: rand::Rng>(
    rng: &mut R,
    shape: RelationShape,
) -> Vec<crate::tuple_stream::StreamTuple> {
    (0..shape.tuples)
        .map(|_| {
            let words = (0..shape.tuple_words)
                .map(|i| {
                    if i < shape.key_words {
                        // Spread a small domain over the whole word range so the compare
                        // sees high bits differ too.
                        let v = rng.gen_range(0..shape.key_domain.max(1));
                        (v.wrapping_mul(0x9E37) ^ (v << 3)) as u16
                    } else {
                        rng.gen()
                    }
                })
                .collect();
            crate::tuple_stream::StreamTuple::new(words, rng.gen_bool(shape.null_probability))
        })
        .collect()
}
