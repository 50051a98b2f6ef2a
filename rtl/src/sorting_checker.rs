//! The sorting checker (paper §4.2, Fig. 4): the element after the last sorting cell that
//! "verifies the results and marks duplicate tuples by turning the duplication line on".
//! The DP line it drives is what the merger's algorithms (§4.3, e.g. JOIN-EQ's `LADR*`
//! rewind) use to process duplicate keys without stalling the pipeline.
//!
//! # Semantics
//!
//! Input: one or more streams (relations) back to back in the engine's internal format:
//! tuples of `tuple_words` words, key words first, NL constant over a tuple's words, `last`
//! on each tuple's last word, and one end-of-stream beat ending each stream (an empty
//! relation is the end-of-stream beat alone). The key is the first `key_words` words,
//! compared as unsigned 16-bit words from the head (lexicographic).
//!
//! The sorter's order: ascending (descending when `descending` is high) by key; all tuples
//! with NL=1 after all tuples with NL=0 in both orders; equal keys keep input order.
//!
//! * **DP.** For tuples `t` and `t+1` of one stream, DP(t) = 1 iff both have NL=0 and equal
//!   keys, or both have NL=1 (nulls form one group, as SQL GROUP BY / DISTINCT treat them;
//!   the merger looks at NL itself where a null must never match, e.g. in joins and
//!   restrictions). The last tuple of a stream has DP=0. DP is put on every word of the
//!   tuple; the incoming DP line is ignored. Data, parity, NL and `last` pass unchanged; the
//!   end-of-stream beat passes unchanged (DP forced to 0) after the stream's last tuple.
//! * **Order violations.** An adjacent pair (t, t+1) of one stream is a violation when t has
//!   NL=1 and t+1 NL=0, or both have NL=0 and key(t) > key(t+1) (ascending) or key(t) <
//!   key(t+1) (descending). `violations` counts them, saturating at 0xFFFF; `sort_error` is
//!   high while `violations` is not zero. Violations are reported, the tuples are not
//!   changed.
//! * **Parity.** `parity_error` (sticky) is set when an incoming data beat's PT lines are not
//!   the odd parity of its bytes ([crate::tuple_stream::word_parity]).
//! * **Clear.** `clear` synchronously zeroes `violations` (hence `sort_error`) and
//!   `parity_error`; an error detected in the same cycle is still counted / flagged.
//! * **Configuration.** `tuple_words` (1 ..= 2^(A-1)), `key_words` (1 ..= `tuple_words`) and
//!   `descending` must be stable while a stream flows; they may change between streams
//!   (when the end-of-stream beat has left the module). Out-of-range values cannot hang the
//!   module as long as tuples carry `last` (a key longer than the tuple ends at `last`; a
//!   zero key length counts as one word), but the results are then meaningless.
//!
//! DP(t) is only known once tuple t+1's key has arrived (or the end-of-stream beat), so the
//! checker delays the stream by about one tuple; it never stalls it: one word per clock in
//! steady state, and a stream of `n` tuples of `w` words at full rate leaves `w + 5` clocks
//! after its end-of-stream beat entered (see the throughput test).
//!
//! # Micro-architecture
//!
//! * **Ring.** Every accepted beat (end-of-stream beats too) is written at `wr_ptr` into two
//!   [BlockRam] copies of 2^A words: `ring_out` (the whole beat, read by the output side)
//!   and `ring_cmp` (the data word, read by the compare side), so the two read ports are
//!   independent. Pointers are A+1 bits wide; a beat is accepted while fewer than 2^A words
//!   are held (`wr_ptr - rd_ptr`), so two tuples of the maximum length 2^(A-1) fit.
//! * **Compare stage.** In the accept cycle `ring_cmp` reads the word at `wr_ptr -
//!   tuple_words` (the previous tuple's word with the same index); one cycle later the
//!   registered incoming word is compared with it and per-tuple flags track "key equal so
//!   far" and "previous greater at the first difference". At the new tuple's last key word
//!   (or at the end-of-stream beat) DP and the violation of the previous tuple are decided:
//!   DP is written into `dp_ram` (one bit per tuple, indexed by the tuple's sequence number)
//!   and the release pointer `rel_ptr` moves to the start of the new tuple (past the
//!   end-of-stream beat, for one).
//! * **Registered read** (issue 6, deep rings of [DEEP_MEMORY_ADDRESS_BITS] or more: the
//!   Delta checker's 4K words). The previous tuple's word from `ring_cmp` and the beat it
//!   is compared with pass one more stage of registers (`d_*`) before the comparison:
//!   on the ECP5 the word comes out of the ring's blocks and their multiplexer late, and
//!   ring → comparator → DP memory was the Delta core's critical path (21.7 ns). The
//!   stage never stalls, so this costs one clock of latency, no throughput.
//! * **Output side.** `ring_out` is read at `rd_ptr` while `rd_ptr != rel_ptr`; the RAM's
//!   read register is the head word (held by read enable while the slice is full). `dp_ram`
//!   is read every cycle at the head tuple's sequence number, so its DP arrives with the
//!   head word; the head word with DP goes into a [StreamSlice], so `data_out` comes from
//!   flip-flops and `data_in.ready` is a function of this module's flip-flops only.
use crate::block_ram::{BlockRam, DEEP_MEMORY_ADDRESS_BITS};
use crate::dff::DFF;
use crate::sorting_cell::model::sort_order;
use crate::stream_slice::StreamSlice;
use crate::tuple_stream::{StreamTuple, TupleStreamIn, TupleStreamOut, TupleWord};
use anyhow::{bail, Result};
use rust_hdl::prelude::*;
use std::cmp::Ordering;

/// The sorting checker. `A` is the ring's address width (2^A words, tuples up to 2^(A-1)
/// words, `2 <= A <= 12`); `P` must be `A + 1` (pointer width; Rust cannot compute it in a
/// generic).
#[derive(LogicBlock)]
pub struct SortingChecker<const A: usize, const P: usize> {
    pub clock: Signal<In, Clock>,
    /// Sorted tuples from the last sorting cell, then the end-of-stream beat.
    pub data_in: TupleStreamIn,
    /// The same beats, in order, with DP driven.
    pub data_out: TupleStreamOut,
    /// Words per tuple (`1 ..= 2^(A-1)`).
    pub tuple_words: Signal<In, Bits<12>>,
    /// Key length in words, counted from the head of the tuple (`1 ..= tuple_words`).
    pub key_words: Signal<In, Bits<12>>,
    /// The sorter was configured for descending order.
    pub descending: Signal<In, Bit>,
    /// Synchronous clear of `violations`, `sort_error` and `parity_error`.
    pub clear: Signal<In, Bit>,
    /// High while `violations` is not zero.
    pub sort_error: Signal<Out, Bit>,
    /// Adjacent out-of-order tuple pairs seen since the last clear (saturates at 0xFFFF).
    pub violations: Signal<Out, Bits<16>>,
    /// Sticky: an input data beat had a wrong parity.
    pub parity_error: Signal<Out, Bit>,
    ring_out: BlockRam<TupleWord, A>,
    ring_cmp: BlockRam<Bits<16>, A>,
    dp_ram: BlockRam<Bit, P>,
    slice: StreamSlice,
    // ---- constants
    full_level: Constant<Bits<P>>,
    zero12: Constant<Bits<12>>,
    one12: Constant<Bits<12>>,
    zero16: Constant<Bits<16>>,
    one16: Constant<Bits<16>>,
    ones16: Constant<Bits<16>>,
    // ---- accept side
    wr_ptr: DFF<Bits<P>>,
    /// Index of the next word within its tuple.
    in_k: DFF<Bits<12>>,
    /// Ring pointer of the current input tuple's first word.
    in_base: DFF<Bits<P>>,
    /// Sequence number of the current input tuple (end-of-stream beats count as tuples).
    in_seq: DFF<Bits<P>>,
    /// The current input tuple has a predecessor in its stream.
    in_have_prev: DFF<Bit>,
    // ---- compare stage (the beat accepted in the previous cycle)
    c_valid: DFF<Bit>,
    c_eos: DFF<Bit>,
    c_null: DFF<Bit>,
    c_data: DFF<Bits<16>>,
    c_parity: DFF<Bits<2>>,
    c_first: DFF<Bit>,
    c_key: DFF<Bit>,
    c_last_key: DFF<Bit>,
    c_have_prev: DFF<Bit>,
    c_addr: DFF<Bits<P>>,
    c_base: DFF<Bits<P>>,
    c_seq: DFF<Bits<P>>,
    /// The compare stage's second cycle (deep rings, [SortingChecker::new]): the beat of the
    /// stage above and the previous tuple's word read for it, registered.
    registered: Constant<Bit>,
    d_valid: DFF<Bit>,
    d_eos: DFF<Bit>,
    d_null: DFF<Bit>,
    d_data: DFF<Bits<16>>,
    d_parity: DFF<Bits<2>>,
    d_first: DFF<Bit>,
    d_key: DFF<Bit>,
    d_last_key: DFF<Bit>,
    d_have_prev: DFF<Bit>,
    d_addr: DFF<Bits<P>>,
    d_base: DFF<Bits<P>>,
    d_seq: DFF<Bits<P>>,
    d_prev: DFF<Bits<16>>,
    /// The beat the comparison works on (`c_*`, or `d_*` with the registered read).
    v_valid: Signal<Local, Bit>,
    v_eos: Signal<Local, Bit>,
    v_null: Signal<Local, Bit>,
    v_data: Signal<Local, Bits<16>>,
    v_parity: Signal<Local, Bits<2>>,
    v_first: Signal<Local, Bit>,
    v_key: Signal<Local, Bit>,
    v_last_key: Signal<Local, Bit>,
    v_have_prev: Signal<Local, Bit>,
    v_addr: Signal<Local, Bits<P>>,
    v_base: Signal<Local, Bits<P>>,
    v_seq: Signal<Local, Bits<P>>,
    /// Keys of the current and the previous tuple are equal so far.
    eq_run: DFF<Bit>,
    /// At the first differing key word the previous tuple's word was greater.
    gt_run: DFF<Bit>,
    /// NL of the previous tuple.
    prev_null: DFF<Bit>,
    /// Words before this ring pointer are released to the output side.
    rel_ptr: DFF<Bits<P>>,
    viol_count: DFF<Bits<16>>,
    perr: DFF<Bit>,
    // ---- output side
    rd_ptr: DFF<Bits<P>>,
    /// `ring_out.read_data` holds a word not yet pushed into the slice.
    head_valid: DFF<Bit>,
    /// Sequence number of the head word's tuple.
    out_seq: DFF<Bits<P>>,
    // ---- combinational helpers
    kw_eff: Signal<Local, Bits<12>>,
    k_next: Signal<Local, Bits<12>>,
    /// `wr_ptr ^ rd_ptr`: 2^A exactly when the ring is full (`wr_ptr - rd_ptr == 2^A`;
    /// adding 2^A to a P-bit pointer flips its top bit only), without a carry chain.
    full_xor: Signal<Local, Bits<P>>,
    in_ready: Signal<Local, Bit>,
    in_fire: Signal<Local, Bit>,
    prev_word: Signal<Local, Bits<16>>,
    eq_in: Signal<Local, Bit>,
    eq_now: Signal<Local, Bit>,
    gt_now: Signal<Local, Bit>,
    decide: Signal<Local, Bit>,
    both_normal: Signal<Local, Bit>,
    dp_value: Signal<Local, Bit>,
    violation: Signal<Local, Bit>,
    bad_parity: Signal<Local, Bit>,
    count_base: Signal<Local, Bits<16>>,
    head_word: Signal<Local, TupleWord>,
    push: Signal<Local, Bit>,
    fetch: Signal<Local, Bit>,
    out_seq_next: Signal<Local, Bits<P>>,
}

/// Tuples up to 2048 words (the Delta RDBE's longest tuple).
pub type SortingCheckerDelta = SortingChecker<12, 13>;
/// Tuples up to 128 words.
pub type SortingCheckerSmall = SortingChecker<8, 9>;

impl<const A: usize, const P: usize> SortingChecker<A, P> {
    /// Largest tuple (in words) this instance accepts.
    pub const MAX_TUPLE_WORDS: usize = 1 << (A - 1);
    /// Words in the ring (two maximum-length tuples).
    pub const RING_WORDS: usize = 1 << A;
}

impl<const A: usize, const P: usize> Default for SortingChecker<A, P> {
    /// The registered read for a deep ring ([DEEP_MEMORY_ADDRESS_BITS]: the Delta
    /// checker's 4K-word ring, whose read → comparator → DP memory path was the Delta
    /// core's critical path, 21.7 ns, once the merger read through registers), else the
    /// one-cycle read.
    fn default() -> Self {
        Self::new(A >= DEEP_MEMORY_ADDRESS_BITS)
    }
}

impl<const A: usize, const P: usize> SortingChecker<A, P> {
    /// `registered`: the previous tuple's word read from `ring_cmp` goes into a register
    /// (with the beat it is compared with) before the comparison: one cycle more of
    /// latency, the same throughput. Else it is compared as it leaves the memory.
    pub fn new(registered: bool) -> Self {
        assert_eq!(P, A + 1, "SortingChecker<A, P> needs P = A + 1");
        assert!(
            (2..=12).contains(&A),
            "A must be 2..=12 (tuple_words is 12 bits)"
        );
        Self {
            clock: Default::default(),
            data_in: Default::default(),
            data_out: Default::default(),
            tuple_words: Default::default(),
            key_words: Default::default(),
            descending: Default::default(),
            clear: Default::default(),
            sort_error: Default::default(),
            violations: Default::default(),
            parity_error: Default::default(),
            ring_out: Default::default(),
            ring_cmp: Default::default(),
            dp_ram: Default::default(),
            slice: Default::default(),
            full_level: Constant::new((1u64 << A).into()),
            zero12: Constant::new(0.into()),
            one12: Constant::new(1.into()),
            zero16: Constant::new(0.into()),
            one16: Constant::new(1.into()),
            ones16: Constant::new(0xffff.into()),
            wr_ptr: Default::default(),
            in_k: Default::default(),
            in_base: Default::default(),
            in_seq: Default::default(),
            in_have_prev: Default::default(),
            c_valid: Default::default(),
            c_eos: Default::default(),
            c_null: Default::default(),
            c_data: Default::default(),
            c_parity: Default::default(),
            c_first: Default::default(),
            c_key: Default::default(),
            c_last_key: Default::default(),
            c_have_prev: Default::default(),
            c_addr: Default::default(),
            c_base: Default::default(),
            c_seq: Default::default(),
            registered: Constant::new(registered),
            d_valid: Default::default(),
            d_eos: Default::default(),
            d_null: Default::default(),
            d_data: Default::default(),
            d_parity: Default::default(),
            d_first: Default::default(),
            d_key: Default::default(),
            d_last_key: Default::default(),
            d_have_prev: Default::default(),
            d_addr: Default::default(),
            d_base: Default::default(),
            d_seq: Default::default(),
            d_prev: Default::default(),
            v_valid: Default::default(),
            v_eos: Default::default(),
            v_null: Default::default(),
            v_data: Default::default(),
            v_parity: Default::default(),
            v_first: Default::default(),
            v_key: Default::default(),
            v_last_key: Default::default(),
            v_have_prev: Default::default(),
            v_addr: Default::default(),
            v_base: Default::default(),
            v_seq: Default::default(),
            eq_run: Default::default(),
            gt_run: Default::default(),
            prev_null: Default::default(),
            rel_ptr: Default::default(),
            viol_count: Default::default(),
            perr: Default::default(),
            rd_ptr: Default::default(),
            head_valid: Default::default(),
            out_seq: Default::default(),
            kw_eff: Default::default(),
            k_next: Default::default(),
            full_xor: Default::default(),
            in_ready: Default::default(),
            in_fire: Default::default(),
            prev_word: Default::default(),
            eq_in: Default::default(),
            eq_now: Default::default(),
            gt_now: Default::default(),
            decide: Default::default(),
            both_normal: Default::default(),
            dp_value: Default::default(),
            violation: Default::default(),
            bad_parity: Default::default(),
            count_base: Default::default(),
            head_word: Default::default(),
            push: Default::default(),
            fetch: Default::default(),
            out_seq_next: Default::default(),
        }
    }
}

impl<const A: usize, const P: usize> Logic for SortingChecker<A, P> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            wr_ptr,
            in_k,
            in_base,
            in_seq,
            in_have_prev,
            c_valid,
            c_eos,
            c_null,
            c_data,
            c_parity,
            c_first,
            c_key,
            c_last_key,
            c_have_prev,
            c_addr,
            c_base,
            c_seq,
            d_valid,
            d_eos,
            d_null,
            d_data,
            d_parity,
            d_first,
            d_key,
            d_last_key,
            d_have_prev,
            d_addr,
            d_base,
            d_seq,
            d_prev,
            eq_run,
            gt_run,
            prev_null,
            rel_ptr,
            viol_count,
            perr,
            rd_ptr,
            head_valid,
            out_seq
        );
        clock!(self, clock, ring_out, ring_cmp, dp_ram, slice);
        self.data_out.word.next = self.slice.data_out.word.val();
        self.data_out.valid.next = self.slice.data_out.valid.val();
        self.slice.data_out.ready.next = self.data_out.ready.val();
        self.violations.next = self.viol_count.q.val();
        self.sort_error.next = self.viol_count.q.val() != self.zero16.val();
        self.parity_error.next = self.perr.q.val();

        // ---- Accept side: write every beat into both ring copies; fetch the previous
        // tuple's word with the same index for the compare stage.
        self.kw_eff.next = self.key_words.val();
        if self.key_words.val() == self.zero12.val() {
            self.kw_eff.next = self.one12.val();
        }
        self.k_next.next = self.in_k.q.val() + self.one12.val();
        self.full_xor.next = self.wr_ptr.q.val() ^ self.rd_ptr.q.val();
        self.in_ready.next = self.full_xor.val() != self.full_level.val();
        self.data_in.ready.next = self.in_ready.val();
        self.in_fire.next = self.data_in.valid.val() & self.in_ready.val();
        self.ring_out.write_address.next = bit_cast::<A, P>(self.wr_ptr.q.val());
        self.ring_out.write_data.next = self.data_in.word.val();
        self.ring_out.write_enable.next = self.in_fire.val();
        self.ring_cmp.write_address.next = bit_cast::<A, P>(self.wr_ptr.q.val());
        self.ring_cmp.write_data.next = self.data_in.word.val().data;
        self.ring_cmp.write_enable.next = self.in_fire.val();
        self.ring_cmp.read_address.next =
            bit_cast::<A, P>(self.wr_ptr.q.val() - bit_cast::<P, 12>(self.tuple_words.val()));
        self.ring_cmp.read_enable.next = self.in_fire.val();
        self.c_valid.d.next = self.in_fire.val();
        if self.in_fire.val() {
            self.c_eos.d.next = self.data_in.word.val().eos;
            self.c_null.d.next = self.data_in.word.val().null;
            self.c_data.d.next = self.data_in.word.val().data;
            self.c_parity.d.next = self.data_in.word.val().parity;
            self.c_first.d.next = self.in_k.q.val() == self.zero12.val();
            self.c_key.d.next = self.in_k.q.val() < self.kw_eff.val();
            self.c_last_key.d.next = (self.k_next.val() == self.kw_eff.val())
                | (self.data_in.word.val().last & (self.k_next.val() < self.kw_eff.val()));
            self.c_have_prev.d.next = self.in_have_prev.q.val();
            self.c_addr.d.next = self.wr_ptr.q.val();
            self.c_seq.d.next = self.in_seq.q.val();
            self.wr_ptr.d.next = self.wr_ptr.q.val() + 1;
            if self.in_k.q.val() == self.zero12.val() {
                self.c_base.d.next = self.wr_ptr.q.val();
                self.in_base.d.next = self.wr_ptr.q.val();
            } else {
                self.c_base.d.next = self.in_base.q.val();
            }
            if self.data_in.word.val().eos {
                self.in_k.d.next = self.zero12.val();
                self.in_have_prev.d.next = false;
                self.in_seq.d.next = self.in_seq.q.val() + 1;
            } else if self.data_in.word.val().last {
                self.in_k.d.next = self.zero12.val();
                self.in_have_prev.d.next = true;
                self.in_seq.d.next = self.in_seq.q.val() + 1;
            } else {
                self.in_k.d.next = self.k_next.val();
            }
        }

        // ---- Compare stage: the beat accepted last cycle (or, with the registered read,
        // the cycle before) against the previous tuple. (The stage never stalls.)
        self.d_valid.d.next = self.c_valid.q.val();
        self.d_eos.d.next = self.c_eos.q.val();
        self.d_null.d.next = self.c_null.q.val();
        self.d_data.d.next = self.c_data.q.val();
        self.d_parity.d.next = self.c_parity.q.val();
        self.d_first.d.next = self.c_first.q.val();
        self.d_key.d.next = self.c_key.q.val();
        self.d_last_key.d.next = self.c_last_key.q.val();
        self.d_have_prev.d.next = self.c_have_prev.q.val();
        self.d_addr.d.next = self.c_addr.q.val();
        self.d_base.d.next = self.c_base.q.val();
        self.d_seq.d.next = self.c_seq.q.val();
        self.d_prev.d.next = self.ring_cmp.read_data.val();
        if self.registered.val() {
            self.v_valid.next = self.d_valid.q.val();
            self.v_eos.next = self.d_eos.q.val();
            self.v_null.next = self.d_null.q.val();
            self.v_data.next = self.d_data.q.val();
            self.v_parity.next = self.d_parity.q.val();
            self.v_first.next = self.d_first.q.val();
            self.v_key.next = self.d_key.q.val();
            self.v_last_key.next = self.d_last_key.q.val();
            self.v_have_prev.next = self.d_have_prev.q.val();
            self.v_addr.next = self.d_addr.q.val();
            self.v_base.next = self.d_base.q.val();
            self.v_seq.next = self.d_seq.q.val();
            self.prev_word.next = self.d_prev.q.val();
        } else {
            self.v_valid.next = self.c_valid.q.val();
            self.v_eos.next = self.c_eos.q.val();
            self.v_null.next = self.c_null.q.val();
            self.v_data.next = self.c_data.q.val();
            self.v_parity.next = self.c_parity.q.val();
            self.v_first.next = self.c_first.q.val();
            self.v_key.next = self.c_key.q.val();
            self.v_last_key.next = self.c_last_key.q.val();
            self.v_have_prev.next = self.c_have_prev.q.val();
            self.v_addr.next = self.c_addr.q.val();
            self.v_base.next = self.c_base.q.val();
            self.v_seq.next = self.c_seq.q.val();
            self.prev_word.next = self.ring_cmp.read_data.val();
        }
        self.eq_in.next = self.v_first.val() | self.eq_run.q.val();
        self.eq_now.next = self.eq_in.val() & (self.prev_word.val() == self.v_data.val());
        self.gt_now.next = self.gt_run.q.val();
        if self.eq_in.val() {
            self.gt_now.next = self.prev_word.val() > self.v_data.val();
        }
        if self.v_valid.val() & !self.v_eos.val() & self.v_key.val() {
            self.eq_run.d.next = self.eq_now.val();
            self.gt_run.d.next = self.gt_now.val();
        }
        self.decide.next =
            self.v_valid.val() & !self.v_eos.val() & self.v_last_key.val() & self.v_have_prev.val();
        self.both_normal.next = !self.prev_null.q.val() & !self.v_null.val();
        self.dp_value.next = (self.both_normal.val() & self.eq_now.val())
            | (self.prev_null.q.val() & self.v_null.val());
        self.violation.next = self.decide.val()
            & ((self.prev_null.q.val() & !self.v_null.val())
                | (self.both_normal.val()
                    & !self.eq_now.val()
                    & (self.gt_now.val() ^ self.descending.val())));
        self.dp_ram.write_address.next = self.v_seq.val() - 1;
        self.dp_ram.write_data.next = self.dp_value.val();
        self.dp_ram.write_enable.next = false;
        if self.v_valid.val() & !self.v_eos.val() & self.v_last_key.val() {
            self.prev_null.d.next = self.v_null.val();
        }
        if self.decide.val() {
            // Tuple t+1's key is complete: DP(t) is known, release tuple t.
            self.dp_ram.write_enable.next = true;
            self.rel_ptr.d.next = self.v_base.val();
        }
        if self.v_valid.val() & self.v_eos.val() {
            // End of stream: the last tuple (if any) has DP = 0; release it and the beat.
            self.dp_ram.write_data.next = false;
            self.dp_ram.write_enable.next = self.v_have_prev.val();
            self.rel_ptr.d.next = self.v_addr.val() + 1;
        }
        // Error reporting.
        self.count_base.next = self.viol_count.q.val();
        if self.clear.val() {
            self.count_base.next = self.zero16.val();
        }
        self.viol_count.d.next = self.count_base.val();
        if self.violation.val() & (self.count_base.val() != self.ones16.val()) {
            self.viol_count.d.next = self.count_base.val() + self.one16.val();
        }
        self.bad_parity.next = self.v_valid.val()
            & !self.v_eos.val()
            & (!(self.v_data.val().get_bits::<8>(8).xor() ^ self.v_parity.val().get_bit(1))
                | !(self.v_data.val().get_bits::<8>(0).xor() ^ self.v_parity.val().get_bit(0)));
        if self.clear.val() {
            self.perr.d.next = false;
        }
        if self.bad_parity.val() {
            self.perr.d.next = true;
        }

        // ---- Output side: released words from the ring, with DP, into the slice.
        self.head_word.next = self.ring_out.read_data.val();
        self.head_word.next.dup = self.dp_ram.read_data.val() & !self.ring_out.read_data.val().eos;
        self.push.next = self.head_valid.q.val() & self.slice.data_in.ready.val();
        self.fetch.next = (self.rd_ptr.q.val() != self.rel_ptr.q.val())
            & (!self.head_valid.q.val() | self.slice.data_in.ready.val());
        self.ring_out.read_address.next = bit_cast::<A, P>(self.rd_ptr.q.val());
        self.ring_out.read_enable.next = self.fetch.val();
        if self.fetch.val() {
            self.rd_ptr.d.next = self.rd_ptr.q.val() + 1;
            self.head_valid.d.next = true;
        } else if self.push.val() {
            self.head_valid.d.next = false;
        }
        self.out_seq_next.next = self.out_seq.q.val();
        if self.push.val()
            & (self.ring_out.read_data.val().last | self.ring_out.read_data.val().eos)
        {
            self.out_seq_next.next = self.out_seq.q.val() + 1;
        }
        self.out_seq.d.next = self.out_seq_next.val();
        self.dp_ram.read_address.next = self.out_seq_next.val();
        self.dp_ram.read_enable.next = true;
        self.slice.data_in.valid.next = self.head_valid.q.val();
        self.slice.data_in.word.next = self.head_word.val();
    }
}

crate::impl_stream_block!(generic [const A: usize, const P: usize] SortingChecker<A, P>);

// ---------------------------------------------------------------------------------------
// Reference model.

/// The sorting checker's static configuration for one stream (set by the control program).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckerConfig {
    /// Words per tuple.
    pub tuple_words: usize,
    /// Key length in words, from the head of the tuple.
    pub key_words: usize,
    /// The sorter sorted in descending order.
    pub descending: bool,
}

impl CheckerConfig {
    /// Check the configuration against the Delta instance's limits (tuples up to 2048
    /// words).
    pub fn validate(&self) -> Result<()> {
        self.validate_for(SortingCheckerDelta::MAX_TUPLE_WORDS)
    }

    /// Check the configuration for an instance holding tuples of at most `max_tuple_words`.
    pub fn validate_for(&self, max_tuple_words: usize) -> Result<()> {
        let n = self.tuple_words;
        if n < 1 {
            bail!("tuple_words = 0: a tuple has at least one word");
        }
        if n > max_tuple_words {
            bail!(
                "tuple_words = {n} exceeds this sorting checker's limit of {max_tuple_words} \
                 words (its ring holds two tuples)"
            );
        }
        if self.key_words < 1 {
            bail!("key_words = 0: the key has at least one word");
        }
        if self.key_words > n {
            bail!(
                "key_words = {} is longer than the {n}-word tuple",
                self.key_words
            );
        }
        Ok(())
    }

    /// Validate against the instance's capacity and drive its configuration ports.
    pub fn apply<const A: usize, const P: usize>(
        &self,
        m: &mut SortingChecker<A, P>,
    ) -> Result<()> {
        self.validate_for(SortingChecker::<A, P>::MAX_TUPLE_WORDS)?;
        m.tuple_words.next = (self.tuple_words as u64).into();
        m.key_words.next = (self.key_words as u64).into();
        m.descending.next = self.descending;
        Ok(())
    }
}

/// The key comparison shared with the sorter ([crate::sorting_cell::model::compare_keys]).
pub use crate::sorting_cell::model::compare_keys;

/// What the sorting checker makes of one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckerReport {
    /// The input tuples with DP set.
    pub tuples: Vec<StreamTuple>,
    /// Adjacent out-of-order pairs (not saturated).
    pub violations: u32,
}

/// True when tuple `b` may not follow tuple `a`: it comes before `a` in the sorter's order
/// ([sort_order]: nulls last in both directions).
pub fn is_order_violation(cfg: &CheckerConfig, a: &StreamTuple, b: &StreamTuple) -> bool {
    sort_order(a, b, cfg.key_words, cfg.descending) == Ordering::Greater
}

/// True when tuples `a` and `b` (adjacent) belong to one duplicate group: equal in the
/// sorter's order (equal non-null keys, or both null).
pub fn is_duplicate(cfg: &CheckerConfig, a: &StreamTuple, b: &StreamTuple) -> bool {
    sort_order(a, b, cfg.key_words, cfg.descending) == Ordering::Equal
}

/// Reference model of the sorting checker for one stream: sets DP on every tuple (the
/// incoming DP is ignored) and counts order violations.
pub fn sorting_checker_model(cfg: &CheckerConfig, tuples: &[StreamTuple]) -> CheckerReport {
    let mut out: Vec<StreamTuple> = tuples.to_vec();
    let mut violations = 0u32;
    for i in 0..out.len() {
        out[i].dup = false;
        if i + 1 < tuples.len() {
            out[i].dup = is_duplicate(cfg, &tuples[i], &tuples[i + 1]);
            if is_order_violation(cfg, &tuples[i], &tuples[i + 1]) {
                violations += 1;
            }
        }
    }
    CheckerReport {
        tuples: out,
        violations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{Harness, Pacing, StreamBlock};
    use crate::tuple_stream::{from_beats, to_beats, Beat};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn cfg(tuple_words: usize, key_words: usize, descending: bool) -> CheckerConfig {
        CheckerConfig {
            tuple_words,
            key_words,
            descending,
        }
    }

    /// A tuple whose key words are `key` followed by `payload`.
    fn tup(key: &[u16], payload: &[u16], null: bool) -> StreamTuple {
        StreamTuple::new([key, payload].concat(), null)
    }

    /// Feed several streams back to back (no gap between them) and collect the output up to
    /// the last end-of-stream beat. Returns the output beats and the cycle count.
    fn run_streams<B: StreamBlock>(
        h: &mut Harness<B>,
        beats: &[Beat],
        pacing: Pacing,
        max_cycles: u64,
    ) -> (Vec<Beat>, u64) {
        let streams = beats.iter().filter(|b| b.eos).count();
        let mut rng = ChaCha8Rng::seed_from_u64(pacing.seed);
        let mut next_in = 0;
        let mut out = vec![];
        let mut eos_seen = 0;
        for cycle in 0..max_cycles {
            let offer = next_in < beats.len() && rng.gen_bool(pacing.source_duty);
            let take = rng.gen_bool(pacing.sink_duty);
            h.uut.stream_in().valid.next = offer;
            if offer {
                h.uut.stream_in().word.next = beats[next_in].into();
            }
            h.uut.stream_out().ready.next = take;
            h.settle();
            let in_fire = offer && h.uut.stream_in().ready.val();
            let out_fire = take && h.uut.stream_out().valid.val();
            let beat: Beat = h.uut.stream_out().word.val().into();
            h.cycle();
            if in_fire {
                next_in += 1;
            }
            if out_fire {
                out.push(beat);
                if beat.eos {
                    eos_seen += 1;
                    if eos_seen == streams {
                        h.uut.stream_in().valid.next = false;
                        h.uut.stream_out().ready.next = false;
                        h.settle();
                        return (out, cycle + 1);
                    }
                }
            }
        }
        panic!(
            "streams did not finish in {max_cycles} cycles: {next_in} of {} beats in, {} out",
            beats.len(),
            out.len()
        );
    }

    /// Split output beats at end-of-stream beats and re-assemble each stream's tuples.
    fn split_streams(beats: &[Beat], tuple_words: usize) -> Vec<Vec<StreamTuple>> {
        let mut result = vec![];
        let mut start = 0;
        for (i, b) in beats.iter().enumerate() {
            if b.eos {
                assert_eq!(*b, Beat::eos(), "end-of-stream beat passes unchanged");
                let tuples = from_beats(&beats[start..=i], tuple_words)
                    .unwrap_or_else(|e| panic!("framing error {e:?} in stream ending at {i}"));
                result.push(tuples);
                start = i + 1;
            }
        }
        assert_eq!(
            start,
            beats.len(),
            "beats after the last end-of-stream beat"
        );
        result
    }

    /// Run one stream through a checker and compare DP and the violation count (the count
    /// this stream added) with the model. Returns the output tuples.
    fn check_stream<const A: usize, const P: usize>(
        h: &mut Harness<SortingChecker<A, P>>,
        c: &CheckerConfig,
        tuples: &[StreamTuple],
        pacing: Pacing,
    ) -> Vec<StreamTuple> {
        c.apply(&mut h.uut).unwrap();
        let before = h.uut.violations.val().index() as u32;
        let beats = to_beats(tuples);
        let max = 500 + 30 * beats.len() as u64;
        let (out, _) = run_streams(h, &beats, pacing, max);
        let got = split_streams(&out, c.tuple_words).pop().unwrap();
        let want = sorting_checker_model(c, tuples);
        assert_eq!(got.len(), want.tuples.len(), "tuple count for {c:?}");
        for (i, (g, w)) in got.iter().zip(&want.tuples).enumerate() {
            assert_eq!(g, w, "tuple {i} for {c:?}");
        }
        let expected = (before + want.violations).min(0xffff);
        assert_eq!(
            h.uut.violations.val().index() as u32,
            expected,
            "violations for {c:?}"
        );
        assert_eq!(h.uut.sort_error.val(), expected != 0);
        assert!(!h.uut.parity_error.val(), "no parity error expected");
        got
    }

    fn small() -> Harness<SortingCheckerSmall> {
        Harness::new(SortingCheckerSmall::default())
    }

    /// The small checker with the one-cycle read, then with the registered read of the
    /// Delta checker's deep ring ([DEEP_MEMORY_ADDRESS_BITS]): every test that runs on the
    /// small checker runs on both.
    fn small_both() -> [(bool, Harness<SortingCheckerSmall>); 2] {
        [false, true].map(|registered| {
            (
                registered,
                Harness::new(SortingCheckerSmall::new(registered)),
            )
        })
    }

    fn dups(tuples: &[StreamTuple]) -> Vec<bool> {
        tuples.iter().map(|t| t.dup).collect()
    }

    const SLOW: Pacing = Pacing {
        source_duty: 0.6,
        sink_duty: 0.5,
        seed: 7,
    };

    #[test]
    fn duplicate_runs_and_nulls_get_dp() {
        // Keys 1,2,2,2,3,null,null with distinct payloads (and distinct words under the
        // nulls: a null key's words do not matter).
        let keys: [(u16, bool); 7] = [
            (1, false),
            (2, false),
            (2, false),
            (2, false),
            (3, false),
            (9, true),
            (4, true),
        ];
        let tuples: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, &(k, n))| tup(&[k], &[0x100 + i as u16, 0xbeef], n))
            .collect();
        let c = cfg(3, 1, false);
        let want = vec![false, true, true, false, false, true, false];
        assert_eq!(dups(&sorting_checker_model(&c, &tuples).tuples), want);
        for pacing in [Pacing::FULL_RATE, SLOW] {
            let mut h = small();
            let got = check_stream(&mut h, &c, &tuples, pacing);
            assert_eq!(dups(&got), want);
            assert_eq!(h.uut.violations.val(), 0);
            assert!(!h.uut.sort_error.val());
        }
    }

    #[test]
    fn unsorted_pairs_are_counted() {
        for (_, mut h) in small_both() {
            let c = cfg(2, 1, false);
            // 1,3,2,4: one violation (3,2). 3,3,1: DP 1,0,0 and one violation.
            let a: Vec<_> = [1u16, 3, 2, 4]
                .iter()
                .map(|&k| tup(&[k], &[k], false))
                .collect();
            let b: Vec<_> = [3u16, 3, 1]
                .iter()
                .map(|&k| tup(&[k], &[k], false))
                .collect();
            assert_eq!(sorting_checker_model(&c, &a).violations, 1);

            let got = check_stream(&mut h, &c, &a, Pacing::FULL_RATE);
            assert_eq!(dups(&got), vec![false; 4]);
            assert_eq!(h.uut.violations.val(), 1);
            assert!(h.uut.sort_error.val());
            let got = check_stream(&mut h, &c, &b, SLOW);
            assert_eq!(dups(&got), vec![true, false, false]);
            assert_eq!(
                h.uut.violations.val(),
                2,
                "the count accumulates over streams"
            );
        }
    }

    #[test]
    fn null_before_non_null_is_a_violation() {
        let c = cfg(1, 1, false);
        let t = vec![
            tup(&[5], &[], false),
            tup(&[0], &[], true),
            tup(&[7], &[], false),
            tup(&[7], &[], true),
        ];
        let model = sorting_checker_model(&c, &t);
        assert_eq!(model.violations, 1);
        // 5 -> null is fine; null -> 7 is the violation; 7 -> null is fine.
        assert_eq!(dups(&model.tuples), vec![false, false, false, false]);
        let mut h = small();
        check_stream(&mut h, &c, &t, Pacing::FULL_RATE);
        assert_eq!(h.uut.violations.val(), 1);
        // Same in descending order: nulls still come last.
        let mut h = small();
        check_stream(&mut h, &cfg(1, 1, true), &t, Pacing::FULL_RATE);
        assert_eq!(h.uut.violations.val(), 1);
    }

    #[test]
    fn descending_order() {
        let keys = [5u16, 5, 3, 1];
        let mut t: Vec<_> = keys.iter().map(|&k| tup(&[k], &[0x55], false)).collect();
        t.push(tup(&[0], &[0x55], true));
        let mut h = small();
        let got = check_stream(&mut h, &cfg(2, 1, true), &t, SLOW);
        assert_eq!(dups(&got), vec![true, false, false, false, false]);
        assert_eq!(h.uut.violations.val(), 0);
        // The same stream checked as ascending: 5>3 and 3>1 are violations.
        let mut h = small();
        check_stream(&mut h, &cfg(2, 1, false), &t, Pacing::FULL_RATE);
        assert_eq!(h.uut.violations.val(), 2);
    }

    #[test]
    fn key_shorter_than_tuple_and_multi_word_keys() {
        let c = cfg(4, 2, false);
        let t = vec![
            tup(&[1, 2], &[0xaaaa, 0x0001], false),
            tup(&[1, 2], &[0x0000, 0xffff], false), // payload differs, key equal: DP(prev)=1
            tup(&[1, 0xffff], &[0, 0], false),
            tup(&[2, 0], &[0, 0], false), // first word decides: no violation
            tup(&[1, 0xffff], &[0, 0], false), // 2 > 1 in word 0: violation
            tup(&[1, 0xffff], &[9, 9], false),
        ];
        let model = sorting_checker_model(&c, &t);
        assert_eq!(
            dups(&model.tuples),
            vec![true, false, false, false, true, false]
        );
        assert_eq!(model.violations, 1);
        for pacing in [Pacing::FULL_RATE, SLOW] {
            let mut h = small();
            check_stream(&mut h, &c, &t, pacing);
            assert_eq!(h.uut.violations.val(), 1);
        }
        // Descending, key equal in word 0 and ordered by word 1.
        let c = cfg(3, 3, true);
        let t = vec![
            tup(&[4, 9, 1], &[], false),
            tup(&[4, 8, 7], &[], false),
            tup(&[4, 8, 7], &[], false),
            tup(&[4, 8, 8], &[], false), // increases in word 2: violation
        ];
        let mut h = small();
        let got = check_stream(&mut h, &c, &t, Pacing::FULL_RATE);
        assert_eq!(dups(&got), vec![false, true, false, false]);
        assert_eq!(h.uut.violations.val(), 1);
    }

    #[test]
    fn one_tuple_and_empty_relations() {
        for (_, mut h) in small_both() {
            let c = cfg(3, 2, false);

            let got = check_stream(&mut h, &c, &[tup(&[1, 2], &[3], false)], Pacing::FULL_RATE);
            assert_eq!(dups(&got), vec![false]);
            let got = check_stream(&mut h, &c, &[], Pacing::FULL_RATE);
            assert!(got.is_empty());
            let got = check_stream(&mut h, &c, &[tup(&[1, 2], &[3], true)], SLOW);
            assert_eq!(dups(&got), vec![false]);
            // An empty relation at full rate is a single beat.
            let (out, _) = run_streams(&mut h, &to_beats(&[]), Pacing::FULL_RATE, 100);
            assert_eq!(out, vec![Beat::eos()]);
            assert_eq!(h.uut.violations.val(), 0);
        }
    }

    #[test]
    fn streams_back_to_back_with_clear_between() {
        let c = cfg(2, 1, false);
        // Stream 1 ends with key 7; stream 2 starts with key 7: no DP across the boundary.
        let s1 = vec![
            tup(&[7], &[1], false),
            tup(&[3], &[2], false),
            tup(&[7], &[3], false),
        ];
        let s2 = vec![tup(&[7], &[4], false), tup(&[7], &[5], false)];
        let s3: Vec<StreamTuple> = vec![];
        let s4 = vec![tup(&[1], &[6], true), tup(&[1], &[7], true)];
        let mut beats = to_beats(&s1);
        beats.extend(to_beats(&s2));
        beats.extend(to_beats(&s3));
        beats.extend(to_beats(&s4));
        for ((_, mut h), pacing) in small_both()
            .into_iter()
            .zip([Pacing::FULL_RATE, SLOW])
            .chain(small_both().into_iter().zip([SLOW, Pacing::FULL_RATE]))
        {
            c.apply(&mut h.uut).unwrap();
            let (out, _) = run_streams(&mut h, &beats, pacing, 1000);
            let streams = split_streams(&out, 2);
            assert_eq!(streams.len(), 4);
            assert_eq!(dups(&streams[0]), vec![false, false, false]);
            assert_eq!(dups(&streams[1]), vec![true, false]);
            assert!(streams[2].is_empty());
            assert_eq!(dups(&streams[3]), vec![true, false]);
            assert_eq!(streams[0], sorting_checker_model(&c, &s1).tuples);
            assert_eq!(h.uut.violations.val(), 1);
            assert!(h.uut.sort_error.val());
            // Clear, then a sorted stream: no error.
            h.uut.clear.next = true;
            h.cycle();
            h.uut.clear.next = false;
            h.cycle();
            assert_eq!(h.uut.violations.val(), 0);
            assert!(!h.uut.sort_error.val());
            check_stream(&mut h, &c, &s2, pacing);
            assert!(!h.uut.sort_error.val());
            check_stream(&mut h, &c, &s1, pacing);
            assert_eq!(h.uut.violations.val(), 1);
        }
    }

    /// A random stream: key words from a small domain (many duplicates), random payload,
    /// nulls with probability `null_p`; sorted in the checker's order when `sorted`, then
    /// with `swaps` random adjacent swaps.
    fn random_stream(
        rng: &mut ChaCha8Rng,
        c: &CheckerConfig,
        n: usize,
        domain: u16,
        null_p: f64,
        sorted: bool,
        swaps: usize,
    ) -> Vec<StreamTuple> {
        let mut t: Vec<StreamTuple> = (0..n)
            .map(|_| {
                let words = (0..c.tuple_words)
                    .map(|i| {
                        if i < c.key_words {
                            let v = rng.gen_range(0..domain);
                            // Spread a small domain over the word so high bits differ too.
                            v.wrapping_mul(0x9e37) ^ (v << 3)
                        } else {
                            rng.gen()
                        }
                    })
                    .collect();
                StreamTuple::new(words, rng.gen_bool(null_p))
            })
            .collect();
        if sorted {
            t.sort_by(|a, b| match (a.null, b.null) {
                (false, false) => {
                    let o = compare_keys(a, b, c.key_words);
                    if c.descending {
                        o.reverse()
                    } else {
                        o
                    }
                }
                (x, y) => x.cmp(&y),
            });
        }
        for _ in 0..swaps {
            if t.len() >= 2 {
                let i = rng.gen_range(0..t.len() - 1);
                t.swap(i, i + 1);
            }
        }
        t
    }

    /// Random differential run of several back-to-back streams against the model.
    fn differential<const A: usize, const P: usize>(
        h: &mut Harness<SortingChecker<A, P>>,
        rng: &mut ChaCha8Rng,
        c: &CheckerConfig,
        max_tuples: usize,
        pacing: Pacing,
    ) {
        c.apply(&mut h.uut).unwrap();
        let before = h.uut.violations.val().index() as u32;
        let mut beats = vec![];
        let mut want = vec![];
        let mut violations = 0;
        for _ in 0..rng.gen_range(1..=3) {
            let n = rng.gen_range(0..=max_tuples);
            let domain = *[1u16, 2, 3, 5, 40, 60000].get(rng.gen_range(0..6)).unwrap();
            let null_p = [0.0, 0.1, 0.5, 0.9][rng.gen_range(0..4)];
            let sorted = rng.gen_bool(0.7);
            let swaps = if rng.gen_bool(0.3) {
                rng.gen_range(0..4)
            } else {
                0
            };
            let s = random_stream(rng, c, n, domain, null_p, sorted, swaps);
            let m = sorting_checker_model(c, &s);
            violations += m.violations;
            want.push(m.tuples);
            beats.extend(to_beats(&s));
        }
        let (out, _) = run_streams(h, &beats, pacing, 1000 + 40 * beats.len() as u64);
        let got = split_streams(&out, c.tuple_words);
        assert_eq!(got.len(), want.len());
        for (s, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.len(), w.len(), "stream {s} length, {c:?} {pacing:?}");
            for (i, (gt, wt)) in g.iter().zip(w).enumerate() {
                assert_eq!(gt, wt, "stream {s} tuple {i}, {c:?} {pacing:?}");
            }
        }
        assert_eq!(
            h.uut.violations.val().index() as u32,
            (before + violations).min(0xffff),
            "violations, {c:?} {pacing:?}"
        );
        assert!(!h.uut.parity_error.val());
    }

    fn random_pacing(rng: &mut ChaCha8Rng) -> Pacing {
        match rng.gen_range(0..4) {
            0 => Pacing {
                source_duty: 1.0,
                sink_duty: 1.0,
                seed: rng.gen(),
            },
            1 => Pacing {
                source_duty: 1.0,
                sink_duty: rng.gen_range(0.05..0.6),
                seed: rng.gen(),
            },
            2 => Pacing {
                source_duty: rng.gen_range(0.05..0.6),
                sink_duty: 1.0,
                seed: rng.gen(),
            },
            _ => Pacing {
                source_duty: rng.gen_range(0.2..1.0),
                sink_duty: rng.gen_range(0.2..1.0),
                seed: rng.gen(),
            },
        }
    }

    #[test]
    fn random_streams_match_the_model() {
        for (_, mut h) in small_both() {
            let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_c4ec);

            for round in 0..40 {
                let tuple_words = if round % 5 == 0 {
                    1
                } else {
                    rng.gen_range(1..=32)
                };
                let key_words = rng.gen_range(1..=tuple_words.min(4));
                let key_words = if rng.gen_bool(0.2) {
                    tuple_words
                } else {
                    key_words
                };
                let c = cfg(tuple_words, key_words, rng.gen_bool(0.5));
                let pacing = random_pacing(&mut rng);
                let max_tuples = if tuple_words <= 4 { 300 } else { 120 };
                differential(&mut h, &mut rng, &c, max_tuples, pacing);
                if rng.gen_bool(0.2) {
                    h.uut.clear.next = true;
                    h.cycle();
                    h.uut.clear.next = false;
                    assert_eq!(h.uut.violations.val(), 0);
                }
            }
        }
    }

    #[test]
    fn longest_tuples_fill_the_ring_without_deadlock() {
        // Small: 128-word tuples, whole tuple as the key (the worst case for the ring).
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (_, mut h) in small_both() {
            for (kw, pacing) in [
                (128, Pacing::FULL_RATE),
                (128, SLOW),
                (1, Pacing::FULL_RATE),
                (
                    127,
                    Pacing {
                        source_duty: 1.0,
                        sink_duty: 0.3,
                        seed: 3,
                    },
                ),
            ] {
                differential(&mut h, &mut rng, &cfg(128, kw, false), 12, pacing);
            }
        }
    }

    #[test]
    fn delta_long_tuples_match_the_model() {
        let mut rng = ChaCha8Rng::seed_from_u64(2048);
        let mut h = Harness::new(SortingCheckerDelta::default());
        for (tw, kw, pacing) in [
            (2048, 2048, Pacing::FULL_RATE),
            (2048, 3, SLOW),
            (1000, 1000, SLOW),
            (5, 2, Pacing::FULL_RATE),
        ] {
            let c = cfg(tw, kw, rng.gen_bool(0.5));
            let max_tuples = if tw > 100 { 4 } else { 200 };
            differential(&mut h, &mut rng, &c, max_tuples, pacing);
        }
    }

    #[test]
    fn parity_error_is_sticky_and_cleared() {
        for (_, mut h) in small_both() {
            let c = cfg(2, 1, false);
            let t = vec![tup(&[1], &[2], false), tup(&[3], &[4], false)];
            let mut beats = to_beats(&t);

            c.apply(&mut h.uut).unwrap();
            run_streams(&mut h, &beats, Pacing::FULL_RATE, 100);
            assert!(!h.uut.parity_error.val(), "good parity raises no flag");
            for (beat, bit) in [(1usize, 1u8), (2, 2), (3, 3)] {
                beats[beat].parity ^= bit;
                let (out, _) = run_streams(&mut h, &beats, Pacing::FULL_RATE, 100);
                beats[beat].parity ^= bit;
                // The data passes unchanged (bad parity included).
                assert_eq!(out[beat].parity ^ bit, beats[beat].parity);
                assert!(h.uut.parity_error.val(), "beat {beat} parity {bit}");
                for _ in 0..3 {
                    h.cycle();
                }
                assert!(h.uut.parity_error.val(), "sticky");
                h.uut.clear.next = true;
                h.cycle();
                h.uut.clear.next = false;
                h.cycle();
                assert!(!h.uut.parity_error.val(), "cleared");
            }
            // A corrupted end-of-stream beat's parity lines are not checked.
            beats[4].parity = 1;
            run_streams(&mut h, &beats, Pacing::FULL_RATE, 100);
            assert!(!h.uut.parity_error.val());
        }
    }

    #[test]
    fn violation_count_saturates() {
        for (_, mut h) in small_both() {
            // 65541 tuples with two-word keys in strictly falling order, checked as ascending.
            let n = 0x1_0005usize;
            let t: Vec<_> = (0..n)
                .map(|i| {
                    let k = (n - i) as u32;
                    tup(&[(k >> 16) as u16, k as u16], &[], false)
                })
                .collect();
            let c = cfg(2, 2, false);
            assert_eq!(sorting_checker_model(&c, &t).violations, n as u32 - 1);

            c.apply(&mut h.uut).unwrap();
            let (out, _) =
                run_streams(&mut h, &to_beats(&t), Pacing::FULL_RATE, 2 * n as u64 + 100);
            assert_eq!(out.len(), 2 * n + 1);
            assert_eq!(h.uut.violations.val(), 0xffff);
            assert!(h.uut.sort_error.val());
        }
    }

    #[test]
    fn full_rate_throughput_is_one_word_per_clock() {
        for (registered, mut h) in small_both() {
            let mut rng = ChaCha8Rng::seed_from_u64(8);
            let c = cfg(8, 2, false);
            let t = random_stream(&mut rng, &c, 200, 30, 0.1, true, 0);
            let beats = to_beats(&t);
            // The registered read: one clock more through the compare stage.
            let stage = registered as u64;
            c.apply(&mut h.uut).unwrap();
            let run = h.run_stream(&beats, Pacing::FULL_RATE, 10_000);
            let got = from_beats(&run.output, 8).unwrap();
            assert_eq!(got, sorting_checker_model(&c, &t).tuples);
            // Input accepted every clock, output leaves every clock once it started.
            let n = beats.len() as u64;
            assert_eq!(run.input_cycles, (0..n).collect::<Vec<_>>());
            let first = run.output_cycles[0];
            assert_eq!(run.output_cycles, (first..first + n).collect::<Vec<_>>());
            // Latency is one tuple (8 words) plus the pipeline.
            assert!(first <= 8 + 2 + 4 + stage, "first output at cycle {first}");
            // The last tuple waits for the end-of-stream beat: it leaves 8 words + 5 clocks
            // (6 with the registered read) after the end-of-stream beat entered.
            assert!(
                run.cycles <= n + 8 + 5 + stage,
                "{} cycles for 200 tuples of 8 words",
                run.cycles
            );
            eprintln!(
                "throughput: {} beats in, first out at cycle {first}, done after {} cycles",
                n, run.cycles
            );
        }
    }

    #[test]
    fn out_of_range_key_length_does_not_hang() {
        // Ports driven directly (bypassing validate): a zero key length counts as one word,
        // a key longer than the tuple ends at `last`.
        let t: Vec<_> = [1u16, 1, 2, 2, 0]
            .iter()
            .map(|&k| tup(&[k, 7], &[], false))
            .collect();
        for (kw, want) in [(0u64, 1usize), (9, 2)] {
            let mut h = small();
            h.uut.tuple_words.next = 2.into();
            h.uut.key_words.next = kw.into();
            let (out, _) = run_streams(&mut h, &to_beats(&t), SLOW, 500);
            let got = split_streams(&out, 2).pop().unwrap();
            assert_eq!(got, sorting_checker_model(&cfg(2, want, false), &t).tuples);
            assert_eq!(h.uut.violations.val(), 1);
        }
    }

    #[test]
    fn config_validation() {
        assert!(cfg(8, 2, false).validate().is_ok());
        assert!(cfg(2048, 2048, true).validate().is_ok());
        assert!(cfg(0, 0, false).validate().is_err());
        assert!(cfg(4, 0, false).validate().is_err());
        assert!(cfg(4, 5, false).validate().is_err());
        assert!(cfg(2049, 1, false).validate().is_err());
        let mut m = SortingCheckerSmall::default();
        assert!(cfg(128, 1, false).apply(&mut m).is_ok());
        let e = cfg(129, 1, false).apply(&mut m).unwrap_err();
        assert!(e.to_string().contains("128"), "{e}");
    }

    #[test]
    fn sorting_checker_small_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(SortingCheckerSmall::default());
        crate::verilog::check_module("sorting_checker_small", &v).unwrap();
    }

    #[test]
    fn sorting_checker_delta_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(SortingCheckerDelta::default());
        crate::verilog::check_module("sorting_checker_delta", &v).unwrap();
    }
}
