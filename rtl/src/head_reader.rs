//! Head reader (issue 6, not in the paper): the reading end of a FIFO kept in a
//! [crate::block_ram::BlockRam], with its head word in a flip-flop stage after the
//! memory's output: a two-cycle read, so that nothing but a register follows the block RAM
//! in the cycle its word comes out.
//!
//! Why: on the ECP5 a block RAM's word leaves the block 5.8 ns after the clock, and a deep
//! memory's words then pass a multiplexer over its blocks: the last Delta sorting cell's
//! word reaches logic 11.3 ns after the clock, and the cell, placed alone, stops at
//! 57.7 MHz (memory → comparator → output slice); with a register after the memory, at
//! 83 MHz or more (session 20's probe, docs/PERFORMANCE.md). A cell cannot simply wait a
//! cycle more for each word: it reads one word a cycle and decides from the word it has
//! which word to read next. This block keeps the memory's read register busy one word
//! ahead instead.
//!
//! # How it works
//! Two places hold words in flight, in address order: the **head register** (the word at
//! `head_ptr`, `head_ok` when valid) and the memory's own **read register** (the word
//! after it, or the head's own word while the head register is empty). Every cycle:
//! * the head register takes the read register's word if it is free (empty, or its word
//!   `pop`ped in this cycle) and the read register holds one;
//! * the memory reads the word at `fetch_ptr` if its read register is then free and that
//!   word was written before this edge (`fetch_ptr != write_ptr`, P = A + 1 bit ring
//!   pointers); otherwise its read enable stays low and it keeps its word;
//! * `restart` drops both words and reads from `restart_at` (a reader going back to a
//!   tuple's start): the head is there two cycles later.
//!
//! So in steady state a word is popped every cycle, and a word written at one edge can be
//! the head two edges later. The read address is `fetch_ptr` or `restart_at`, both from
//! registers of this block or of its user (chosen by `restart`, which is meant to come
//! from a register); `pop` reaches the read enable only. The words between `head_ptr` and
//! `write_ptr` must not be overwritten while the reader may still read them (the FIFO's
//! writer keeps its own `base` for that, as the sorting cell does).
//!
//! # Users and timing
//! The sorting cells read both memories through it: the Delta sorter's cells 2 to 12 in the
//! two-cycle mode, the iCE40 sorters' cells in the one-cycle mode
//! ([HeadReader::new]`(false)`, [crate::sorter::DELTA_TWO_CYCLE_READ_FROM],
//! [crate::sorting_cell::REGISTERED_READ_MIN_ADDRESS_BITS]).
//! So does the merger's operation part (two-cycle with the Delta merger's 32K-word
//! memories, [crate::block_ram::DEEP_MEMORY_ADDRESS_BITS]), with the restart registered in
//! both modes ([HeadReader::with_registered_restart]: its restarts are decided by the
//! longest control logic of the part, which then ends at this block's registers).
//! Measured with a scratch probe (a 2^A-word [crate::block_ram::BlockRam], its writer, this
//! block, and a comparison of the head with the previous head into a register; nextpnr's
//! seed): ECP5-85 with the last Delta cell's memory size (16K words, 20 DP16KD) **98.02
//! MHz**, the critical path the memory → its block multiplexer → the head register
//! (10.20 ns, 5.83 of it the block's clock-to-out); iCE40 HX8K with 128 words 149.90 MHz
//! (the comparison after the head). The last Delta cell alone went from 57.69 to 89.02 MHz
//! on the ECP5 with it (session 20, docs/PERFORMANCE.md); the Delta core went from 47.08
//! to 59.77 MHz with the operation part's memories read through it and the output control
//! part's and sorting checker's through a register stage (session 21).
//!
//! Each instance is one mode: the other mode's registers and logic stay in the Verilog
//! behind the constant `registered` and are removed by synthesis (a one-cycle reader's
//! head register, fetch pointer and `fetched` flag; a two-cycle reader's `fetch` choice).
//!
//! A user that pops every cycle and restarts after a decision (the sorting cell's loser)
//! sees its restarted head one cycle later than with the one-cycle read: hidden while the
//! winner streams the rest of its tuple, a bubble after a decision on a tuple's last word.
use crate::dff::DFF;
use crate::tuple_stream::TupleWord;
use rust_hdl::prelude::*;

/// One reader of a FIFO in a 2^A-word memory; `P` must be `A + 1` (pointer width).
/// [HeadReader::new]`(false)` builds the one-cycle read instead (the head is the memory's
/// read register, a restart's word is the head one cycle later): the same ports, for
/// memories where the block RAM is fast and logic is scarce (the iCE40 configurations).
#[derive(LogicBlock)]
pub struct HeadReader<const A: usize, const P: usize> {
    pub clock: Signal<In, Clock>,
    /// The memory's read port (`BlockRam::read_address`, `read_enable`, `read_data`).
    pub read_address: Signal<Out, Bits<A>>,
    pub read_enable: Signal<Out, Bit>,
    pub read_data: Signal<In, TupleWord>,
    /// The writer's pointer: the words before it are written.
    pub write_ptr: Signal<In, Bits<P>>,
    /// Drop the words in flight and read on from `restart_at` (ignores `pop`). The word at
    /// `restart_at` must be written (a reader goes back to a word it has read).
    pub restart: Signal<In, Bit>,
    pub restart_at: Signal<In, Bits<P>>,
    /// The head word is taken (only while `head_ok`).
    pub pop: Signal<In, Bit>,
    /// The word at `head_ptr`, valid while `head_ok`.
    pub head: Signal<Out, TupleWord>,
    pub head_ok: Signal<Out, Bit>,
    pub head_ptr: Signal<Out, Bits<P>>,
    /// The two-cycle read (else the one-cycle read).
    registered: Constant<Bit>,
    /// A restart is taken into registers and read from them in the next cycle (its word
    /// is the head a cycle later), so that `restart` and `restart_at` do not reach the
    /// memory's read address ([HeadReader::with_registered_restart]).
    registered_restart: Constant<Bit>,
    head_word: DFF<TupleWord>,
    head_valid: DFF<Bit>,
    head_addr: DFF<Bits<P>>,
    /// The memory's read register holds the next word in address order (the one after the
    /// head's, or the head's own while the head register is empty).
    fetched: DFF<Bit>,
    /// The address the memory reads next: `head_addr + head_valid + fetched`.
    fetch_ptr: DFF<Bits<P>>,
    /// The head register takes a word this cycle (it is free and one is fetched).
    moves_up: Signal<Local, Bit>,
    /// The memory's read register is free for the word at `fetch_ptr`.
    fetch_free: Signal<Local, Bit>,
    /// The memory reads the word at `fetch_ptr` (not restarting).
    issue: Signal<Local, Bit>,
    /// One-cycle read: the address after the head's, and the address read.
    after: Signal<Local, Bits<P>>,
    fetch: Signal<Local, Bits<P>>,
}

impl<const A: usize, const P: usize> Default for HeadReader<A, P> {
    /// The two-cycle read.
    fn default() -> Self {
        Self::new(true)
    }
}

impl<const A: usize, const P: usize> HeadReader<A, P> {
    /// `registered`: the two-cycle read; else the one-cycle read.
    pub fn new(registered: bool) -> Self {
        Self::with_registered_restart(registered, false)
    }

    /// [HeadReader::new], and with `registered_restart` a restart taken into registers: the
    /// read address and enable then come from registers of this block alone (plus `pop`
    /// in the one-cycle read), so the logic that decides a restart is not on the way to
    /// the memory's address, at the cost of one cycle more from a restart to its head
    /// (three in the two-cycle read, two in the one-cycle read).
    pub fn with_registered_restart(registered: bool, registered_restart: bool) -> Self {
        assert_eq!(P, A + 1, "HeadReader: P must be A + 1");
        Self {
            registered: Constant::new(registered),
            registered_restart: Constant::new(registered_restart),
            clock: Default::default(),
            read_address: Default::default(),
            read_enable: Default::default(),
            read_data: Default::default(),
            write_ptr: Default::default(),
            restart: Default::default(),
            restart_at: Default::default(),
            pop: Default::default(),
            head: Default::default(),
            head_ok: Default::default(),
            head_ptr: Default::default(),
            head_word: Default::default(),
            head_valid: Default::default(),
            head_addr: Default::default(),
            fetched: Default::default(),
            fetch_ptr: Default::default(),
            moves_up: Default::default(),
            fetch_free: Default::default(),
            issue: Default::default(),
            after: Default::default(),
            fetch: Default::default(),
        }
    }
}

impl<const A: usize, const P: usize> Logic for HeadReader<A, P> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, head_word, head_valid, head_addr, fetched, fetch_ptr);
        self.head_ok.next = self.head_valid.q.val();
        self.head_ptr.next = self.head_addr.q.val();
        self.moves_up.next = (!self.head_valid.q.val() | self.pop.val()) & self.fetched.q.val();
        self.fetch_free.next = !self.fetched.q.val() | self.moves_up.val();
        self.issue.next = self.fetch_free.val() & (self.fetch_ptr.q.val() != self.write_ptr.val());
        self.after.next = self.head_addr.q.val() + 1;
        if self.restart.val() & !self.registered_restart.val() {
            self.fetch.next = self.restart_at.val();
        } else if self.pop.val() {
            self.fetch.next = self.after.val();
        } else {
            self.fetch.next = self.head_addr.q.val();
        }
        if self.registered.val() {
            self.head.next = self.head_word.q.val();
            // The head register: the read register's word moves up, or the popped head
            // leaves.
            if self.moves_up.val() {
                self.head_word.d.next = self.read_data.val();
                self.head_valid.d.next = true;
            } else if self.pop.val() {
                self.head_valid.d.next = false;
            }
            if self.pop.val() {
                self.head_addr.d.next = self.after.val();
            }
            // The memory's read register: the word at `fetch_ptr` if it is free and
            // written.
            self.read_address.next = bit_cast::<A, P>(self.fetch_ptr.q.val());
            self.read_enable.next = self.issue.val();
            if self.issue.val() {
                self.fetch_ptr.d.next = self.fetch_ptr.q.val() + 1;
                self.fetched.d.next = true;
            } else if self.fetch_free.val() {
                self.fetched.d.next = false;
            }
            if self.restart.val() {
                self.head_valid.d.next = false;
                self.head_addr.d.next = self.restart_at.val();
                if self.registered_restart.val() {
                    // Read from `fetch_ptr` in the next cycle; whatever the memory reads
                    // now is dropped (`fetched` low).
                    self.fetched.d.next = false;
                    self.fetch_ptr.d.next = self.restart_at.val();
                } else {
                    self.read_address.next = bit_cast::<A, P>(self.restart_at.val());
                    self.read_enable.next = true;
                    self.fetched.d.next = true;
                    self.fetch_ptr.d.next = self.restart_at.val() + 1;
                }
            }
        } else {
            // The one-cycle read: the memory reads the head word every cycle (the word at
            // the head pointer, the one after it, or the restart's), and its read register
            // is the head. A word is valid once written before this edge; each candidate is
            // compared with the write pointer from registers, the choice only picks a
            // result (issue 6: no adder or comparator after it).
            self.head.next = self.read_data.val();
            self.read_address.next = bit_cast::<A, P>(self.fetch.val());
            self.read_enable.next = true;
            self.head_addr.d.next = self.fetch.val();
            if self.restart.val() & self.registered_restart.val() {
                // The head pointer moves now, its word is read in the next cycle (from the
                // head pointer: no pop while the head is not valid).
                self.head_addr.d.next = self.restart_at.val();
                self.head_valid.d.next = false;
            } else if self.restart.val() {
                self.head_valid.d.next = true;
            } else if self.pop.val() {
                self.head_valid.d.next = self.after.val() != self.write_ptr.val();
            } else {
                self.head_valid.d.next = self.head_addr.q.val() != self.write_ptr.val();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_ram::BlockRam;
    use crate::harness::{Clocked, Harness};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A FIFO memory with a writer (a pointer the test moves) and a [HeadReader].
    #[derive(LogicBlock)]
    struct ReaderBench<const A: usize, const P: usize> {
        clock: Signal<In, Clock>,
        write: Signal<In, Bit>,
        write_word: Signal<In, TupleWord>,
        restart: Signal<In, Bit>,
        restart_at: Signal<In, Bits<P>>,
        pop: Signal<In, Bit>,
        memory: BlockRam<TupleWord, A>,
        reader: HeadReader<A, P>,
        write_ptr: DFF<Bits<P>>,
    }

    impl<const A: usize, const P: usize> ReaderBench<A, P> {
        fn new(mode: Mode) -> Self {
            Self {
                clock: Default::default(),
                write: Default::default(),
                write_word: Default::default(),
                restart: Default::default(),
                restart_at: Default::default(),
                pop: Default::default(),
                memory: Default::default(),
                reader: HeadReader::with_registered_restart(mode.registered, mode.late_restart),
                write_ptr: Default::default(),
            }
        }
    }

    impl<const A: usize, const P: usize> Logic for ReaderBench<A, P> {
        #[hdl_gen]
        fn update(&mut self) {
            dff_setup!(self, clock, write_ptr);
            clock!(self, clock, memory, reader);
            self.memory.write_address.next = bit_cast::<A, P>(self.write_ptr.q.val());
            self.memory.write_data.next = self.write_word.val();
            self.memory.write_enable.next = self.write.val();
            if self.write.val() {
                self.write_ptr.d.next = self.write_ptr.q.val() + 1;
            }
            self.reader.write_ptr.next = self.write_ptr.q.val();
            self.reader.restart.next = self.restart.val();
            self.reader.restart_at.next = self.restart_at.val();
            self.reader.pop.next = self.pop.val();
            self.memory.read_address.next = self.reader.read_address.val();
            self.memory.read_enable.next = self.reader.read_enable.val();
            self.reader.read_data.next = self.memory.read_data.val();
        }
    }

    impl<const A: usize, const P: usize> Clocked for ReaderBench<A, P> {
        fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
            &mut self.clock
        }
    }

    /// A reader's mode: the two-cycle read or not, the restart registered or not.
    #[derive(Clone, Copy, Debug)]
    struct Mode {
        registered: bool,
        late_restart: bool,
    }

    /// Every mode: the two-cycle and one-cycle reads, each with and without the registered
    /// restart.
    const MODES: [Mode; 4] = [
        Mode {
            registered: true,
            late_restart: false,
        },
        Mode {
            registered: false,
            late_restart: false,
        },
        Mode {
            registered: true,
            late_restart: true,
        },
        Mode {
            registered: false,
            late_restart: true,
        },
    ];

    fn word(n: u64) -> TupleWord {
        TupleWord {
            data: (n & 0xffff).into(),
            parity: (n >> 16 & 3).into(),
            last: n & 1 << 18 != 0,
            ..Default::default()
        }
    }

    /// What a run saw: pops per cycle, and the checks made.
    struct ReaderRun {
        pops: u64,
        cycles: u64,
        checked_heads: u64,
    }

    /// Random writes, pops and restarts (to the test's `base`, a tuple start at or before
    /// the head), checking every cycle that the head is the word written at `head_ptr`,
    /// that pops walk the addresses one by one, and that a word there to read does not
    /// wait (see below).
    fn random_run<const A: usize, const P: usize>(
        mode: Mode,
        seed: u64,
        cycles: u64,
        write_duty: f64,
        pop_duty: f64,
        restart_chance: f64,
    ) -> ReaderRun {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut h = Harness::new(ReaderBench::<A, P>::new(mode));
        // Cycles from a word's write to the cycle it is the head in, and from a restart.
        let latency = if mode.registered { 3 } else { 2 };
        let restart_latency = latency - 1 + mode.late_restart as u64;
        let ring = 1u64 << P;
        let capacity = 1u64 << A;
        // The words by (unwrapped) address, and the pointers unwrapped.
        let mut written: Vec<u64> = vec![];
        let mut base = 0u64; // the oldest word still needed (restarts go here)
        let mut head = 0u64; // head_ptr, unwrapped
        let mut last_restart: Option<u64> = None;
        let mut run = ReaderRun {
            pops: 0,
            cycles,
            checked_heads: 0,
        };
        for cycle in 0..cycles {
            let uut = &h.uut;
            let ok = uut.reader.head_ok.val();
            assert_eq!(
                uut.reader.head_ptr.val().index() as u64,
                head % ring,
                "cycle {cycle}: head pointer"
            );
            if ok {
                assert!(
                    head < written.len() as u64,
                    "cycle {cycle}: head not written"
                );
                assert_eq!(
                    uut.reader.head.val(),
                    word(written[head as usize]),
                    "cycle {cycle}: head word at {head}"
                );
                run.checked_heads += 1;
            } else if let Some(w) = written_at(&written, head) {
                // A word there to read does not wait: the two-cycle read's head is valid
                // three cycles after the cycle its word was written in (two edges after
                // the one that wrote it), or two after a restart to it; the one-cycle
                // read's a cycle earlier; a registered restart's a cycle later.
                let restarting = last_restart
                    .map(|r| cycle < r + restart_latency)
                    .unwrap_or(false);
                assert!(
                    cycle < w + latency || restarting,
                    "cycle {cycle}: word {head}, written in cycle {w}, is not the head"
                );
            }
            // This cycle's inputs.
            let free = capacity - (written.len() as u64 - base);
            let write = free > 0 && rng.gen_bool(write_duty);
            let value = rng.gen::<u64>() & 0x7_ffff;
            // (Only to a word written: a reader goes back to a word it has read.)
            let restart = base < written.len() as u64 && rng.gen_bool(restart_chance);
            let pop = !restart && ok && rng.gen_bool(pop_duty);
            let uut = &mut h.uut;
            uut.write.next = write;
            uut.write_word.next = word(value);
            uut.restart.next = restart;
            uut.restart_at.next = (base % ring).into();
            uut.pop.next = pop;
            h.cycle();
            if write {
                written.push(value | (cycle + 1) << 20);
            }
            if restart {
                head = base;
                last_restart = Some(cycle);
            } else if pop {
                head += 1;
                run.pops += 1;
                // Sometimes the popped word ends a tuple: the next restart point.
                if rng.gen_bool(0.3) {
                    base = head;
                }
            }
        }
        run
    }

    /// The cycle at whose end the word at `address` was written (stored beside it).
    fn written_at(written: &[u64], address: u64) -> Option<u64> {
        written.get(address as usize).map(|&w| (w >> 20) - 1)
    }

    #[test]
    fn random_writes_pops_and_restarts_read_the_fifo_in_order() {
        for mode in MODES {
            for seed in 0..40 {
                let write_duty = [1.0, 0.7, 0.3][seed as usize % 3];
                let pop_duty = [1.0, 0.8, 0.4][seed as usize / 3 % 3];
                let run = random_run::<3, 4>(mode, seed, 2_000, write_duty, pop_duty, 0.02);
                assert!(
                    run.checked_heads > 200,
                    "{mode:?} seed {seed}: {}",
                    run.checked_heads
                );
                let run = random_run::<6, 7>(mode, seed + 100, 2_000, write_duty, pop_duty, 0.01);
                assert!(
                    run.checked_heads > 200,
                    "{mode:?} seed {seed}: {}",
                    run.checked_heads
                );
            }
        }
    }

    #[test]
    fn a_word_every_cycle_in_steady_state() {
        // The writer far ahead, the reader popping whenever it can, never restarting: after
        // the first read's latency, one pop every cycle.
        for mode in MODES {
            let first = if mode.registered { 3 } else { 2 };
            let run = random_run::<10, 11>(mode, 7, 1_000, 1.0, 1.0, 0.0);
            assert_eq!(run.pops, run.cycles - first, "{mode:?}");
        }
    }

    #[test]
    fn first_word_pops_and_a_restart_take_the_cycles_stated() {
        for mode in MODES {
            first_word_pops_and_a_restart(mode);
        }
    }

    fn first_word_pops_and_a_restart(mode: Mode) {
        let mut h = Harness::new(ReaderBench::<4, 5>::new(mode));
        for n in 0..8u64 {
            h.uut.write.next = true;
            h.uut.write_word.next = word(100 + n);
            h.cycle();
            // The first word, written in cycle 0, is the head in cycle 3: the memory reads
            // it in cycle 1 (it was written at the edge before), the head register takes
            // it in cycle 2. The one-cycle read's head is the memory's read register: in
            // cycle 2.
            let first = if mode.registered { 2 } else { 1 };
            assert_eq!(
                h.uut.reader.head_ok.val(),
                n >= first,
                "{mode:?} cycle {}",
                n + 1
            );
        }
        h.uut.write.next = false;
        for n in 0..5u64 {
            assert_eq!(h.uut.reader.head.val(), word(100 + n));
            h.uut.pop.next = true;
            h.cycle();
            assert!(
                h.uut.reader.head_ok.val(),
                "{mode:?}: no bubble after pop {n}"
            );
        }
        h.uut.pop.next = false;
        h.uut.restart.next = true;
        h.uut.restart_at.next = 2.into();
        h.cycle();
        h.uut.restart.next = false;
        // The head pointer moves at once; the word follows one cycle later (one-cycle read),
        // two (two-cycle), one more with the registered restart.
        let waits = mode.registered as u32 + mode.late_restart as u32;
        for wait in 0..waits {
            assert!(
                !h.uut.reader.head_ok.val(),
                "{mode:?}: head too early ({wait})"
            );
            assert_eq!(h.uut.reader.head_ptr.val().index(), 2, "{mode:?}");
            h.cycle();
        }
        assert!(
            h.uut.reader.head_ok.val(),
            "{mode:?}: the restart's word is the head"
        );
        assert_eq!(h.uut.reader.head.val(), word(102));
        assert_eq!(h.uut.reader.head_ptr.val().index(), 2);
    }

    /// With the registered restart, the read address and enable do not depend on
    /// `restart` or `restart_at` within the cycle (the point of the mode): the same
    /// reader state, restart or not, gives the same address and enable.
    #[test]
    fn a_registered_restart_does_not_reach_the_read_address() {
        for mode in MODES.into_iter().filter(|m| m.late_restart) {
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            let mut h = Harness::new(ReaderBench::<4, 5>::new(mode));
            let mut reads = 0;
            for cycle in 0..400u64 {
                h.uut.write.next = rng.gen_bool(0.6);
                h.uut.write_word.next = word(cycle);
                let pop = h.uut.reader.head_ok.val() && rng.gen_bool(0.5);
                h.uut.pop.next = pop;
                let mut seen = vec![];
                for (restart, at) in [(false, 0u64), (true, 3), (true, 9)] {
                    h.uut.restart.next = restart;
                    h.uut.restart_at.next = at.into();
                    h.settle();
                    seen.push((
                        h.uut.reader.read_address.val(),
                        h.uut.reader.read_enable.val(),
                    ));
                }
                assert!(
                    seen.iter().all(|s| *s == seen[0]),
                    "{mode:?} cycle {cycle}: {seen:?}"
                );
                reads += seen[0].1 as u32;
                h.uut.restart.next = rng.gen_bool(0.1);
                h.uut.restart_at.next = 0.into();
                h.cycle();
            }
            assert!(reads > 100, "{mode:?}: {reads} reads");
        }
    }

    #[test]
    fn head_reader_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(HeadReader::<10, 11>::new(true));
        crate::verilog::check_module("head_reader", &v).unwrap();
        let v = crate::verilog::export(HeadReader::<10, 11>::new(false));
        crate::verilog::check_module("head_reader_one_cycle", &v).unwrap();
        let v = crate::verilog::export(HeadReader::<10, 11>::with_registered_restart(true, true));
        crate::verilog::check_module("head_reader_registered_restart", &v).unwrap();
    }
}
