//! The merger's output control part (paper §4.3, Fig. 6 and Fig. 7): "two 16Kbyte tuple
//! memories, two field ordering circuits, two field selection circuits, two data type
//! transformation circuits, a new TID generator, a selector and an output sequence
//! controller", which (1) reorders the fields of an output tuple (undoes the IN module's
//! rotation), (2) selects fields (projection by the pointers P1, P2), (3) undoes the key
//! transformation, (4) adds a new TID.
//!
//! # Output format
//! Every output tuple is in the compact format the HM stores and the IN module reads
//! (`in_module`): a tag word, then field words. For a unit of the operation part (one U
//! tuple, one L tuple, or a pair) the output tuple is
//!
//! `tag · U words [P1u, P2u) · L words [P1l, P2l) · NTID (2 words, if enabled)`
//!
//! where the word ranges are compact word indices of each side's tuple (the paper's P1 and
//! P2 per side), and the tag word gathers the selected fields' null bits: U's tag bits
//! `[first_field, first_field + fields)` at the bottom, L's above them. NTID (a 32-bit
//! tuple identifier, most significant word first) is `tid_base` plus the unit's index in
//! the stream; its field is never null. The control program derives P1, P2 and the field
//! range from the schema ([SideFormat]); a projection must not cut the key field in two
//! (the float key's undo reads its first word's sign).
//!
//! # How it works
//! * **Write side.** Each side's tuple memory is a ring. The operation part's words go to
//!   the memory of the side they came from; a completed unit pushes its kind (U, L, pair,
//!   end of stream) into a small queue. A unit cut short by an end-of-stream beat (the
//!   operation part's overflow abort) is dropped.
//! * **Sequencer.** A unit is read out only once it is complete (the tag word is the
//!   internal tuple's last word but the output's first). One output word is produced per
//!   cycle: the tag word from both memories at once, then each side's selected words in
//!   compact order, then the NTID; a unit's memory is freed as its last word is read, while
//!   the next units are being written.
//! * **Read stages.** The sequencer addresses both memories (stage 1: their read
//!   registers hold the words). With deep memories ([DEEP_MEMORY_ADDRESS_BITS]: the Delta
//!   merger's 8K words) a second stage of registers takes the words and their item before
//!   the selector, key undo, tag assembly and parity generator (issue 6: on the ECP5 the
//!   words come out of the blocks' multiplexer late); both stages move on together when
//!   the last one's word leaves, one word a cycle, one cycle more of latency.
//! * **Checks.** Parity is checked on every word written, and the tuple memories store it
//!   beside the data (18 bits a word) so that it is checked again on every word read from
//!   them: a word corrupted while stored (a memory upset, issue 7) is a parity error too
//!   (sticky `parity_error`). Parity is regenerated for every word sent (the key undo and
//!   the tag assembly change the data); a unit must end on a tuple's last word (sticky
//!   `framing_error`). NL is not used: nulls travel in the tag word.
//! * **DP.** An output tuple made from an L tuple alone carries that L tuple's DP (the
//!   sorting checker's "key equals the next tuple's key") on every word, tag and NTID
//!   included; tuples made from a U tuple or a pair carry DP = 0, and so does the
//!   end-of-stream beat. The DP bit of an L unit goes into the unit queue with its kind.
//!   After PASS-1 (or SORT-IN, COMP-ALL, REST-*) of a sorted relation it marks the groups
//!   of equal keys in the output, which the control program uses for aggregates; see
//!   `docs/TUPLE_STREAM.md` for what it means after the other commands.
use crate::block_ram::{BlockRam, DEEP_MEMORY_ADDRESS_BITS};
use crate::dff::DFF;
use crate::in_module::{rotate_to_compact, undo_transform_key, InConfig, KeyType};
use crate::memory_fault::{LiveMemory, LiveRange, StoredWords};
use crate::operation_part::SelectedStreamIn;
use crate::stream_slice::StreamSlice;
use crate::tuple_stream::{OddParity, StreamTuple, TupleStreamOut};
use anyhow::{bail, Result};
use rust_hdl::prelude::*;

/// How one side's tuples are turned into output words (static while a stream flows).
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct OutputFormat {
    /// Words per internal tuple (tag word included).
    pub tuple_words: Bits<12>,
    /// Compact index of the key's first word (the IN module's rotation).
    pub key_offset: Bits<12>,
    /// Key length in words.
    pub key_words: Bits<12>,
    /// Key transformation to undo (`KeyType::code`).
    pub key_type: Bits<2>,
    /// P1: first compact word sent (1 or more: word 0 is the tag).
    pub first_word: Bits<12>,
    /// P2: one past the last compact word sent.
    pub end_word: Bits<12>,
    /// Tag bit of the first field sent.
    pub first_field: Bits<4>,
    /// Number of fields sent (their tag bits go to the output tag).
    pub fields: Bits<5>,
}

#[derive(Copy, Clone, Debug, PartialEq, LogicState)]
pub enum SequencerState {
    /// Waiting for a complete unit; starts it with its tag word.
    Start,
    /// Sending the U tuple's selected words.
    UWords,
    /// Sending the L tuple's selected words.
    LWords,
    TidHigh,
    TidLow,
}

/// What the word in the read stage is.
#[derive(Copy, Clone, Debug, PartialEq, LogicState)]
pub enum OutputItem {
    Tag,
    UWord,
    LWord,
    TidHigh,
    TidLow,
    EndOfStream,
}

/// The output control part with two tuple memories of 2^A words. `P` must be `A + 1`.
#[derive(LogicBlock)]
pub struct OutputControlPart<const A: usize, const P: usize> {
    pub clock: Signal<In, Clock>,
    pub data_in: SelectedStreamIn,
    pub data_out: TupleStreamOut,
    pub u_format: Signal<In, OutputFormat>,
    pub l_format: Signal<In, OutputFormat>,
    /// Append a new TID to every output tuple.
    pub new_tid: Signal<In, Bit>,
    /// The first new TID of a stream.
    pub tid_base: Signal<In, Bits<32>>,
    pub clear: Signal<In, Bit>,
    /// Sticky: a word with bad parity reached the output control part, or was read back
    /// from a tuple memory with bad parity.
    pub parity_error: Signal<Out, Bit>,
    /// Sticky: a unit ended on a word that is not a tuple's last word.
    pub framing_error: Signal<Out, Bit>,
    /// Each side's tuple memory: bits 15:0 a word's data, 17:16 its PT lines.
    memory_u: BlockRam<Bits<18>, A>,
    memory_l: BlockRam<Bits<18>, A>,
    /// The complete units, in order: bits 1:0 their kind (0 end of stream, 1 U, 2 L,
    /// 3 pair), bit 2 the DP line of an L tuple alone.
    unit_queue: BlockRam<Bits<3>, 3>,
    out_slice: StreamSlice,
    capacity: Constant<Bits<P>>,
    queue_capacity: Constant<Bits<4>>,
    sign16: Constant<Bits<16>>,
    ones16: Constant<Bits<16>>,
    par0: Constant<Bits<2>>,
    /// Regenerates PT for the words sent.
    parity_gen: OddParity,
    /// The PT lines the words read from each tuple memory should have.
    read_parity_u: OddParity,
    read_parity_l: OddParity,
    // ---- write side
    write_u: DFF<Bits<P>>,
    write_l: DFF<Bits<P>>,
    unit_start_u: DFF<Bits<P>>,
    unit_start_l: DFF<Bits<P>>,
    unit_has_u: DFF<Bit>,
    unit_has_l: DFF<Bit>,
    queue_write: DFF<Bits<4>>,
    parity_flag: DFF<Bit>,
    framing_flag: DFF<Bit>,
    // ---- sequencer (read stage 0)
    seq: DFF<SequencerState>,
    queue_read: DFF<Bits<4>>,
    queue_ok: DFF<Bit>,
    base_u: DFF<Bits<P>>,
    base_l: DFF<Bits<P>>,
    has_u: DFF<Bit>,
    has_l: DFF<Bit>,
    /// DP of the unit being read (an L tuple alone: its DP; else 0).
    unit_dup: DFF<Bit>,
    /// Compact word index being read.
    c: DFF<Bits<12>>,
    /// Its internal word index (`word_offset`), kept beside it (the two-stage read): the
    /// read address is then the base plus a register, one adder (the ECP5's critical path
    /// was the sequencer → the key offset's subtraction → `word_offset` → the base's adder →
    /// the 8K-word memory's address, 17.4 ns).
    c_offset: DFF<Bits<12>>,
    tid_count: DFF<Bits<32>>,
    // ---- read stage 1 (the memories' read registers hold its words)
    s1_valid: DFF<Bit>,
    s1_item: DFF<OutputItem>,
    /// 0 none, 1 flip the sign bit, 2 float's first word, 3 float's second word.
    s1_undo: DFF<Bits<2>>,
    s1_last: DFF<Bit>,
    s1_has_u: DFF<Bit>,
    s1_has_l: DFF<Bit>,
    s1_dup: DFF<Bit>,
    s1_tid: DFF<Bits<32>>,
    /// Read stage 2 (the two-stage read, [OutputControlPart::new]): stage 1's item and the
    /// words the memories read for it, in registers.
    registered: Constant<Bit>,
    s2_valid: DFF<Bit>,
    s2_item: DFF<OutputItem>,
    s2_undo: DFF<Bits<2>>,
    s2_last: DFF<Bit>,
    s2_has_u: DFF<Bit>,
    s2_has_l: DFF<Bit>,
    s2_dup: DFF<Bit>,
    s2_tid: DFF<Bits<32>>,
    s2_word_u: DFF<Bits<18>>,
    s2_word_l: DFF<Bits<18>>,
    float_negative: DFF<Bit>,
    /// The last read stage (stage 1, or stage 2): its item and the words read for it.
    st_valid: Signal<Local, Bit>,
    st_item: Signal<Local, OutputItem>,
    st_undo: Signal<Local, Bits<2>>,
    st_last: Signal<Local, Bit>,
    st_has_u: Signal<Local, Bit>,
    st_has_l: Signal<Local, Bit>,
    st_dup: Signal<Local, Bit>,
    st_tid: Signal<Local, Bits<32>>,
    st_word_u: Signal<Local, Bits<18>>,
    st_word_l: Signal<Local, Bits<18>>,
    /// Stage 2 takes stage 1's item (it is free, or its item leaves).
    advance2: Signal<Local, Bit>,
    // ---- combinational
    input_ready: Signal<Local, Bit>,
    input_fire: Signal<Local, Bit>,
    in_data: Signal<Local, Bits<16>>,
    in_parity: Signal<Local, Bits<2>>,
    /// The word written: data and PT.
    stored_in: Signal<Local, Bits<18>>,
    /// The data lines of the words read.
    read_data_u: Signal<Local, Bits<16>>,
    read_data_l: Signal<Local, Bits<16>>,
    /// A word read has bad parity (read stage 1).
    read_bad_u: Signal<Local, Bit>,
    read_bad_l: Signal<Local, Bit>,
    write_u_after: Signal<Local, Bits<P>>,
    write_l_after: Signal<Local, Bits<P>>,
    kind: Signal<Local, Bits<2>>,
    queue_entry: Signal<Local, Bits<3>>,
    kind_u: Signal<Local, Bit>,
    kind_l: Signal<Local, Bit>,
    advance: Signal<Local, Bit>,
    next_queue_read: Signal<Local, Bits<4>>,
    queue_distance: Signal<Local, Bits<4>>,
    head_kind: Signal<Local, Bits<2>>,
    u_len: Signal<Local, Bits<P>>,
    l_len: Signal<Local, Bits<P>>,
    start_has_u: Signal<Local, Bit>,
    start_has_l: Signal<Local, Bit>,
    start_dup: Signal<Local, Bit>,
    u_words: Signal<Local, Bit>,
    l_words: Signal<Local, Bit>,
    /// Issue the unit's last item this cycle.
    unit_done: Signal<Local, Bit>,
    issue: Signal<Local, Bit>,
    issue_item: Signal<Local, OutputItem>,
    issue_last: Signal<Local, Bit>,
    issue_undo: Signal<Local, Bits<2>>,
    read_u: Signal<Local, Bits<P>>,
    read_l: Signal<Local, Bits<P>>,
    side_tuple_words: Signal<Local, Bits<12>>,
    side_key_offset: Signal<Local, Bits<12>>,
    side_key_words: Signal<Local, Bits<12>>,
    side_key_type: Signal<Local, Bits<2>>,
    key_index: Signal<Local, Bits<12>>,
    word_offset: Signal<Local, Bits<12>>,
    c_next: Signal<Local, Bits<12>>,
    /// `c_offset`'s next values: the first selected word's internal index for each side,
    /// and the index after `c_offset`'s (0 where the compact order reaches the key).
    first_offset_u: Signal<Local, Bits<12>>,
    first_offset_l: Signal<Local, Bits<12>>,
    offset_step: Signal<Local, Bits<12>>,
    /// The internal index the read address uses (`word_offset`, or `c_offset`).
    read_offset: Signal<Local, Bits<12>>,
    after_u: Signal<Local, SequencerState>,
    after_l: Signal<Local, SequencerState>,
    ends_after_u: Signal<Local, Bit>,
    unit_has_u_now: Signal<Local, Bit>,
    unit_has_l_now: Signal<Local, Bit>,
    unit_dup_now: Signal<Local, Bit>,
    raw: Signal<Local, Bits<16>>,
    undo_mask: Signal<Local, Bits<16>>,
    tag_u: Signal<Local, Bits<16>>,
    tag_l: Signal<Local, Bits<16>>,
    tag_shift: Signal<Local, Bits<5>>,
    out_data: Signal<Local, Bits<16>>,
}

impl<const A: usize, const P: usize> Default for OutputControlPart<A, P> {
    /// The two-stage read for deep memories ([DEEP_MEMORY_ADDRESS_BITS]: the Delta
    /// merger's 8K-word memories; their memory → tag assembly → parity → output slice
    /// path was the Delta core's critical path, 19.3 ns, once the operation part read
    /// through registers), else the one-stage read (the iCE40 configurations).
    fn default() -> Self {
        Self::new(A >= DEEP_MEMORY_ADDRESS_BITS)
    }
}

impl<const A: usize, const P: usize> OutputControlPart<A, P> {
    /// `registered`: the words read pass a second read stage (registers) before the
    /// selector, key undo and tag assembly; one cycle more from a unit to its output, the
    /// same throughput. Else they are used straight from the memories' read registers.
    pub fn new(registered: bool) -> Self {
        assert_eq!(P, A + 1, "OutputControlPart<A, P> needs P = A + 1");
        Self {
            clock: Default::default(),
            data_in: Default::default(),
            data_out: Default::default(),
            u_format: Default::default(),
            l_format: Default::default(),
            new_tid: Default::default(),
            tid_base: Default::default(),
            clear: Default::default(),
            parity_error: Default::default(),
            framing_error: Default::default(),
            memory_u: Default::default(),
            memory_l: Default::default(),
            unit_queue: Default::default(),
            out_slice: Default::default(),
            capacity: Constant::new((1u64 << A).into()),
            queue_capacity: Constant::new(8.into()),
            sign16: Constant::new(0x8000.into()),
            ones16: Constant::new(0xffff.into()),
            par0: Constant::new(0.into()),
            parity_gen: Default::default(),
            read_parity_u: Default::default(),
            read_parity_l: Default::default(),
            write_u: Default::default(),
            write_l: Default::default(),
            unit_start_u: Default::default(),
            unit_start_l: Default::default(),
            unit_has_u: Default::default(),
            unit_has_l: Default::default(),
            queue_write: Default::default(),
            parity_flag: Default::default(),
            framing_flag: Default::default(),
            seq: Default::default(),
            queue_read: Default::default(),
            queue_ok: Default::default(),
            base_u: Default::default(),
            base_l: Default::default(),
            has_u: Default::default(),
            has_l: Default::default(),
            unit_dup: Default::default(),
            c: Default::default(),
            c_offset: Default::default(),
            tid_count: Default::default(),
            s1_valid: Default::default(),
            s1_item: Default::default(),
            s1_undo: Default::default(),
            s1_last: Default::default(),
            s1_has_u: Default::default(),
            s1_has_l: Default::default(),
            s1_dup: Default::default(),
            s1_tid: Default::default(),
            registered: Constant::new(registered),
            s2_valid: Default::default(),
            s2_item: Default::default(),
            s2_undo: Default::default(),
            s2_last: Default::default(),
            s2_has_u: Default::default(),
            s2_has_l: Default::default(),
            s2_dup: Default::default(),
            s2_tid: Default::default(),
            s2_word_u: Default::default(),
            s2_word_l: Default::default(),
            float_negative: Default::default(),
            st_valid: Default::default(),
            st_item: Default::default(),
            st_undo: Default::default(),
            st_last: Default::default(),
            st_has_u: Default::default(),
            st_has_l: Default::default(),
            st_dup: Default::default(),
            st_tid: Default::default(),
            st_word_u: Default::default(),
            st_word_l: Default::default(),
            advance2: Default::default(),
            input_ready: Default::default(),
            input_fire: Default::default(),
            in_data: Default::default(),
            in_parity: Default::default(),
            stored_in: Default::default(),
            read_data_u: Default::default(),
            read_data_l: Default::default(),
            read_bad_u: Default::default(),
            read_bad_l: Default::default(),
            write_u_after: Default::default(),
            write_l_after: Default::default(),
            kind: Default::default(),
            queue_entry: Default::default(),
            kind_u: Default::default(),
            kind_l: Default::default(),
            advance: Default::default(),
            next_queue_read: Default::default(),
            queue_distance: Default::default(),
            head_kind: Default::default(),
            u_len: Default::default(),
            l_len: Default::default(),
            start_has_u: Default::default(),
            start_has_l: Default::default(),
            start_dup: Default::default(),
            u_words: Default::default(),
            l_words: Default::default(),
            unit_done: Default::default(),
            issue: Default::default(),
            issue_item: Default::default(),
            issue_last: Default::default(),
            issue_undo: Default::default(),
            read_u: Default::default(),
            read_l: Default::default(),
            side_tuple_words: Default::default(),
            side_key_offset: Default::default(),
            side_key_words: Default::default(),
            side_key_type: Default::default(),
            key_index: Default::default(),
            word_offset: Default::default(),
            c_next: Default::default(),
            first_offset_u: Default::default(),
            first_offset_l: Default::default(),
            offset_step: Default::default(),
            read_offset: Default::default(),
            after_u: Default::default(),
            after_l: Default::default(),
            ends_after_u: Default::default(),
            unit_has_u_now: Default::default(),
            unit_has_l_now: Default::default(),
            unit_dup_now: Default::default(),
            raw: Default::default(),
            undo_mask: Default::default(),
            tag_u: Default::default(),
            tag_l: Default::default(),
            tag_shift: Default::default(),
            out_data: Default::default(),
        }
    }
}

impl<const A: usize, const P: usize> StoredWords for OutputControlPart<A, P> {
    /// Each tuple memory's live words: from the unit being read (its base) to the write
    /// pointer (the queued units and the one being written).
    fn live_memories(&mut self) -> Vec<LiveMemory<'_>> {
        vec![
            LiveMemory {
                name: OUTPUT_TUPLE_MEMORY_NAMES[0].into(),
                range: LiveRange::ring(
                    ("base_u", self.base_u.q.val()),
                    ("write_u", self.write_u.q.val()),
                    P,
                ),
                memory: &mut self.memory_u,
                path: "memory_u".into(),
            },
            LiveMemory {
                name: OUTPUT_TUPLE_MEMORY_NAMES[1].into(),
                range: LiveRange::ring(
                    ("base_l", self.base_l.q.val()),
                    ("write_l", self.write_l.q.val()),
                    P,
                ),
                memory: &mut self.memory_l,
                path: "memory_l".into(),
            },
        ]
    }
}

/// The names [StoredWords::live_memories] gives the two tuple memories.
pub const OUTPUT_TUPLE_MEMORY_NAMES: [&str; 2] = ["output tuple memory U", "output tuple memory L"];

impl<const A: usize, const P: usize> Logic for OutputControlPart<A, P> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            write_u,
            write_l,
            unit_start_u,
            unit_start_l,
            unit_has_u,
            unit_has_l,
            queue_write,
            parity_flag,
            framing_flag,
            seq,
            queue_read,
            queue_ok,
            base_u,
            base_l,
            has_u,
            has_l,
            unit_dup,
            c,
            c_offset,
            tid_count,
            s1_valid,
            s1_item,
            s1_undo,
            s1_last,
            s1_has_u,
            s1_has_l,
            s1_dup,
            s1_tid,
            s2_valid,
            s2_item,
            s2_undo,
            s2_last,
            s2_has_u,
            s2_has_l,
            s2_dup,
            s2_tid,
            s2_word_u,
            s2_word_l,
            float_negative
        );
        clock!(self, clock, memory_u, memory_l, unit_queue, out_slice);
        self.data_out.word.next = self.out_slice.data_out.word.val();
        self.data_out.valid.next = self.out_slice.data_out.valid.val();
        self.out_slice.data_out.ready.next = self.data_out.ready.val();
        self.parity_error.next = self.parity_flag.q.val();
        self.framing_error.next = self.framing_flag.q.val();
        self.u_len.next = bit_cast::<P, 12>(self.u_format.val().tuple_words);
        self.l_len.next = bit_cast::<P, 12>(self.l_format.val().tuple_words);

        // ---- write side
        self.in_data.next = self.data_in.word.val().data;
        self.in_parity.next = self.data_in.word.val().parity;
        self.input_ready.next = ((self.write_u.q.val() - self.base_u.q.val())
            < self.capacity.val())
            & ((self.write_l.q.val() - self.base_l.q.val()) < self.capacity.val())
            & ((self.queue_write.q.val() - self.queue_read.q.val()) < self.queue_capacity.val());
        self.data_in.ready.next = self.input_ready.val();
        self.input_fire.next = self.data_in.valid.val() & self.input_ready.val();
        self.memory_u.write_address.next = bit_cast::<A, P>(self.write_u.q.val());
        self.memory_l.write_address.next = bit_cast::<A, P>(self.write_l.q.val());
        self.stored_in.next = bit_cast::<18, 16>(self.in_data.val())
            | (bit_cast::<18, 2>(self.in_parity.val()) << 16);
        self.memory_u.write_data.next = self.stored_in.val();
        self.memory_l.write_data.next = self.stored_in.val();
        self.memory_u.write_enable.next = false;
        self.memory_l.write_enable.next = false;
        self.unit_queue.write_address.next = bit_cast::<3, 4>(self.queue_write.q.val());
        self.unit_queue.write_enable.next = false;
        self.write_u_after.next = self.write_u.q.val();
        self.write_l_after.next = self.write_l.q.val();
        self.kind_u.next = self.unit_has_u.q.val() | self.data_in.from_u.val();
        self.kind_l.next = self.unit_has_l.q.val() | !self.data_in.from_u.val();
        if self.kind_u.val() & self.kind_l.val() {
            self.kind.next = 3.into();
        } else if self.kind_u.val() {
            self.kind.next = 1.into();
        } else {
            self.kind.next = 2.into();
        }
        // An L tuple alone keeps its DP line (constant over the tuple: the unit's last
        // word has it); U tuples and pairs get DP = 0.
        self.queue_entry.next = bit_cast::<3, 2>(self.kind.val());
        if (self.kind.val() == 2) & self.data_in.word.val().dup {
            self.queue_entry.next = 6.into();
        }
        self.unit_queue.write_data.next = self.queue_entry.val();
        if self.input_fire.val() {
            if self.data_in.word.val().eos {
                // The end of the command: drop a unit it cut short, queue the end.
                self.write_u.d.next = self.unit_start_u.q.val();
                self.write_l.d.next = self.unit_start_l.q.val();
                self.unit_has_u.d.next = false;
                self.unit_has_l.d.next = false;
                self.unit_queue.write_data.next = 0.into();
                self.unit_queue.write_enable.next = true;
                self.queue_write.d.next = self.queue_write.q.val() + 1;
            } else {
                if (self.in_data.val().get_bits::<8>(8).xor() == self.in_parity.val().get_bit(1))
                    | (self.in_data.val().get_bits::<8>(0).xor() == self.in_parity.val().get_bit(0))
                {
                    self.parity_flag.d.next = true;
                }
                if self.data_in.from_u.val() {
                    self.memory_u.write_enable.next = true;
                    self.write_u_after.next = self.write_u.q.val() + 1;
                    self.unit_has_u.d.next = true;
                } else {
                    self.memory_l.write_enable.next = true;
                    self.write_l_after.next = self.write_l.q.val() + 1;
                    self.unit_has_l.d.next = true;
                }
                self.write_u.d.next = self.write_u_after.val();
                self.write_l.d.next = self.write_l_after.val();
                if self.data_in.unit_end.val() & !self.data_in.word.val().last {
                    self.framing_flag.d.next = true;
                }
                if self.data_in.unit_end.val() {
                    self.unit_start_u.d.next = self.write_u_after.val();
                    self.unit_start_l.d.next = self.write_l_after.val();
                    self.unit_has_u.d.next = false;
                    self.unit_has_l.d.next = false;
                    self.unit_queue.write_enable.next = true;
                    self.queue_write.d.next = self.queue_write.q.val() + 1;
                }
            }
        }

        // ---- sequencer: one item per cycle when the read stage moves on
        // (Two-stage read: stage 1 moves on when stage 2 does.)
        self.advance2.next = !self.s2_valid.q.val() | self.out_slice.data_in.ready.val();
        if self.registered.val() {
            self.advance.next = !self.s1_valid.q.val() | self.advance2.val();
        } else {
            self.advance.next = !self.s1_valid.q.val() | self.out_slice.data_in.ready.val();
        }
        self.head_kind.next = self.unit_queue.read_data.val().get_bits::<2>(0);
        self.start_has_u.next = self.head_kind.val().get_bit(0);
        self.start_has_l.next = self.head_kind.val().get_bit(1);
        self.start_dup.next = self.unit_queue.read_data.val().get_bit(2);
        // Whether each side of the unit (being started, or running) has words to send.
        if self.seq.q.val() == SequencerState::Start {
            self.u_words.next = self.start_has_u.val()
                & (self.u_format.val().end_word > self.u_format.val().first_word);
            self.l_words.next = self.start_has_l.val()
                & (self.l_format.val().end_word > self.l_format.val().first_word);
        } else {
            self.u_words.next = self.has_u.q.val()
                & (self.u_format.val().end_word > self.u_format.val().first_word);
            self.l_words.next = self.has_l.q.val()
                & (self.l_format.val().end_word > self.l_format.val().first_word);
        }
        self.c_next.next = self.c.q.val() + 1;
        // What follows a unit's U words, and its L words: the next part, or its end.
        if self.new_tid.val() {
            self.after_l.next = SequencerState::TidHigh;
        } else {
            self.after_l.next = SequencerState::Start;
        }
        if self.l_words.val() {
            self.after_u.next = SequencerState::LWords;
        } else {
            self.after_u.next = self.after_l.val();
        }
        self.ends_after_u.next = !self.l_words.val() & !self.new_tid.val();
        if self.seq.q.val() == SequencerState::Start {
            self.unit_has_u_now.next = self.start_has_u.val();
            self.unit_has_l_now.next = self.start_has_l.val();
            self.unit_dup_now.next = self.start_dup.val();
        } else {
            self.unit_has_u_now.next = self.has_u.q.val();
            self.unit_has_l_now.next = self.has_l.q.val();
            self.unit_dup_now.next = self.unit_dup.q.val();
        }
        // Compact word c of a side: internal index c - key_offset for the fields from the
        // key on, n - key_offset + c - 1 for the fields before the key.
        if self.seq.q.val() == SequencerState::LWords {
            self.side_tuple_words.next = self.l_format.val().tuple_words;
            self.side_key_offset.next = self.l_format.val().key_offset;
            self.side_key_words.next = self.l_format.val().key_words;
            self.side_key_type.next = self.l_format.val().key_type;
        } else {
            self.side_tuple_words.next = self.u_format.val().tuple_words;
            self.side_key_offset.next = self.u_format.val().key_offset;
            self.side_key_words.next = self.u_format.val().key_words;
            self.side_key_type.next = self.u_format.val().key_type;
        }
        self.key_index.next = self.c.q.val() - self.side_key_offset.val();
        if self.c.q.val() >= self.side_key_offset.val() {
            self.word_offset.next = self.key_index.val();
        } else {
            self.word_offset.next =
                self.side_tuple_words.val() - self.side_key_offset.val() + self.c.q.val() - 1;
        }
        self.issue_undo.next = 0.into();
        if (self.c.q.val() >= self.side_key_offset.val())
            & (self.key_index.val() < self.side_key_words.val())
        {
            if self.side_key_type.val() == 1 {
                if self.key_index.val() == 0 {
                    self.issue_undo.next = 1.into();
                }
            } else if self.side_key_type.val() == 2 {
                if self.key_index.val() == 0 {
                    self.issue_undo.next = 2.into();
                } else if self.key_index.val() == 1 {
                    self.issue_undo.next = 3.into();
                }
            }
        }
        // `c_offset` follows `c`: each side's first selected word, then one on (0 at the
        // key), from registers and settings.
        if self.u_format.val().first_word >= self.u_format.val().key_offset {
            self.first_offset_u.next =
                self.u_format.val().first_word - self.u_format.val().key_offset;
        } else {
            self.first_offset_u.next = self.u_format.val().tuple_words
                - self.u_format.val().key_offset
                + self.u_format.val().first_word
                - 1;
        }
        if self.l_format.val().first_word >= self.l_format.val().key_offset {
            self.first_offset_l.next =
                self.l_format.val().first_word - self.l_format.val().key_offset;
        } else {
            self.first_offset_l.next = self.l_format.val().tuple_words
                - self.l_format.val().key_offset
                + self.l_format.val().first_word
                - 1;
        }
        if self.c_next.val() == self.side_key_offset.val() {
            self.offset_step.next = 0.into();
        } else {
            self.offset_step.next = self.c_offset.q.val() + 1;
        }
        if self.registered.val() {
            self.read_offset.next = self.c_offset.q.val();
        } else {
            self.read_offset.next = self.word_offset.val();
        }
        self.read_u.next = self.base_u.q.val() + bit_cast::<P, 12>(self.read_offset.val());
        self.read_l.next = self.base_l.q.val() + bit_cast::<P, 12>(self.read_offset.val());
        self.issue.next = false;
        self.issue_item.next = OutputItem::Tag;
        self.issue_last.next = false;
        self.unit_done.next = false;
        self.next_queue_read.next = self.queue_read.q.val();
        match self.seq.q.val() {
            SequencerState::Start => {
                // The tag words are the internal tuples' last words.
                self.read_u.next = self.base_u.q.val() + self.u_len.val() - 1;
                self.read_l.next = self.base_l.q.val() + self.l_len.val() - 1;
                if self.queue_ok.q.val() & self.advance.val() {
                    self.issue.next = true;
                    self.next_queue_read.next = self.queue_read.q.val() + 1;
                    self.has_u.d.next = self.start_has_u.val();
                    self.has_l.d.next = self.start_has_l.val();
                    self.unit_dup.d.next = self.start_dup.val();
                    if self.head_kind.val() == 0 {
                        self.issue_item.next = OutputItem::EndOfStream;
                        self.issue_last.next = true;
                        self.tid_count.d.next = 0.into();
                    } else if self.u_words.val() {
                        self.c.d.next = self.u_format.val().first_word;
                        self.c_offset.d.next = self.first_offset_u.val();
                        self.seq.d.next = SequencerState::UWords;
                    } else {
                        self.c.d.next = self.l_format.val().first_word;
                        self.c_offset.d.next = self.first_offset_l.val();
                        self.seq.d.next = self.after_u.val();
                        self.issue_last.next = self.ends_after_u.val();
                        self.unit_done.next = self.ends_after_u.val();
                    }
                }
            }
            SequencerState::UWords => {
                if self.advance.val() {
                    self.issue.next = true;
                    self.issue_item.next = OutputItem::UWord;
                    self.c.d.next = self.c_next.val();
                    self.c_offset.d.next = self.offset_step.val();
                    if self.c_next.val() == self.u_format.val().end_word {
                        self.c.d.next = self.l_format.val().first_word;
                        self.c_offset.d.next = self.first_offset_l.val();
                        self.seq.d.next = self.after_u.val();
                        self.issue_last.next = self.ends_after_u.val();
                        self.unit_done.next = self.ends_after_u.val();
                    }
                }
            }
            SequencerState::LWords => {
                if self.advance.val() {
                    self.issue.next = true;
                    self.issue_item.next = OutputItem::LWord;
                    self.c.d.next = self.c_next.val();
                    self.c_offset.d.next = self.offset_step.val();
                    if self.c_next.val() == self.l_format.val().end_word {
                        self.seq.d.next = self.after_l.val();
                        self.issue_last.next = !self.new_tid.val();
                        self.unit_done.next = !self.new_tid.val();
                    }
                }
            }
            SequencerState::TidHigh => {
                if self.advance.val() {
                    self.issue.next = true;
                    self.issue_item.next = OutputItem::TidHigh;
                    self.seq.d.next = SequencerState::TidLow;
                }
            }
            SequencerState::TidLow => {
                if self.advance.val() {
                    self.issue.next = true;
                    self.issue_item.next = OutputItem::TidLow;
                    self.issue_last.next = true;
                    self.unit_done.next = true;
                }
            }
        }
        if self.unit_done.val() {
            // The unit's last word is being read: free its memory, count its TID.
            if self.unit_has_u_now.val() {
                self.base_u.d.next = self.base_u.q.val() + self.u_len.val();
            }
            if self.unit_has_l_now.val() {
                self.base_l.d.next = self.base_l.q.val() + self.l_len.val();
            }
            self.tid_count.d.next = self.tid_count.q.val() + 1;
            self.seq.d.next = SequencerState::Start;
        }
        self.queue_read.d.next = self.next_queue_read.val();
        self.unit_queue.read_enable.next = true;
        self.unit_queue.read_address.next = bit_cast::<3, 4>(self.next_queue_read.val());
        // A kind is readable once written before this edge.
        // (The distance goes through a 4-bit signal: Verilog would compute it 32 bits wide.)
        self.queue_distance.next = self.queue_write.q.val() - self.next_queue_read.val();
        self.queue_ok.d.next = (self.queue_distance.val() != 0)
            & (self.queue_distance.val() <= self.queue_capacity.val());
        self.memory_u.read_enable.next = self.advance.val();
        self.memory_l.read_enable.next = self.advance.val();
        self.memory_u.read_address.next = bit_cast::<A, P>(self.read_u.val());
        self.memory_l.read_address.next = bit_cast::<A, P>(self.read_l.val());
        if self.advance.val() {
            self.s1_valid.d.next = self.issue.val();
            self.s1_item.d.next = self.issue_item.val();
            self.s1_undo.d.next = 0.into();
            if (self.seq.q.val() == SequencerState::UWords)
                | (self.seq.q.val() == SequencerState::LWords)
            {
                self.s1_undo.d.next = self.issue_undo.val();
            }
            self.s1_last.d.next = self.issue_last.val();
            self.s1_tid.d.next = self.tid_base.val() + self.tid_count.q.val();
            self.s1_has_u.d.next = self.unit_has_u_now.val();
            self.s1_has_l.d.next = self.unit_has_l_now.val();
            self.s1_dup.d.next = self.unit_dup_now.val();
        }

        // ---- read stage 2 (two-stage read): stage 1's item and words, registered
        if self.advance2.val() {
            self.s2_valid.d.next = self.s1_valid.q.val();
            self.s2_item.d.next = self.s1_item.q.val();
            self.s2_undo.d.next = self.s1_undo.q.val();
            self.s2_last.d.next = self.s1_last.q.val();
            self.s2_has_u.d.next = self.s1_has_u.q.val();
            self.s2_has_l.d.next = self.s1_has_l.q.val();
            self.s2_dup.d.next = self.s1_dup.q.val();
            self.s2_tid.d.next = self.s1_tid.q.val();
            self.s2_word_u.d.next = self.memory_u.read_data.val();
            self.s2_word_l.d.next = self.memory_l.read_data.val();
        }
        if self.registered.val() {
            self.st_valid.next = self.s2_valid.q.val();
            self.st_item.next = self.s2_item.q.val();
            self.st_undo.next = self.s2_undo.q.val();
            self.st_last.next = self.s2_last.q.val();
            self.st_has_u.next = self.s2_has_u.q.val();
            self.st_has_l.next = self.s2_has_l.q.val();
            self.st_dup.next = self.s2_dup.q.val();
            self.st_tid.next = self.s2_tid.q.val();
            self.st_word_u.next = self.s2_word_u.q.val();
            self.st_word_l.next = self.s2_word_l.q.val();
        } else {
            self.st_valid.next = self.s1_valid.q.val();
            self.st_item.next = self.s1_item.q.val();
            self.st_undo.next = self.s1_undo.q.val();
            self.st_last.next = self.s1_last.q.val();
            self.st_has_u.next = self.s1_has_u.q.val();
            self.st_has_l.next = self.s1_has_l.q.val();
            self.st_dup.next = self.s1_dup.q.val();
            self.st_tid.next = self.s1_tid.q.val();
            self.st_word_u.next = self.memory_u.read_data.val();
            self.st_word_l.next = self.memory_l.read_data.val();
        }

        // ---- the last read stage: parity check, selector, key undo, tag assembly, parity
        self.read_data_u.next = self.st_word_u.val().get_bits::<16>(0);
        self.read_data_l.next = self.st_word_l.val().get_bits::<16>(0);
        self.read_parity_u.data.next = self.read_data_u.val();
        self.read_parity_l.data.next = self.read_data_l.val();
        self.read_bad_u.next =
            self.read_parity_u.parity.val() != self.st_word_u.val().get_bits::<2>(16);
        self.read_bad_l.next =
            self.read_parity_l.parity.val() != self.st_word_l.val().get_bits::<2>(16);
        // The words this item reads: the tag item both sides' tag words, a U or L item
        // its side's word.
        if self.st_valid.val() {
            if ((self.st_item.val() == OutputItem::UWord)
                | ((self.st_item.val() == OutputItem::Tag) & self.st_has_u.val()))
                & self.read_bad_u.val()
            {
                self.parity_flag.d.next = true;
            }
            if ((self.st_item.val() == OutputItem::LWord)
                | ((self.st_item.val() == OutputItem::Tag) & self.st_has_l.val()))
                & self.read_bad_l.val()
            {
                self.parity_flag.d.next = true;
            }
        }
        if self.st_item.val() == OutputItem::LWord {
            self.raw.next = self.read_data_l.val();
        } else {
            self.raw.next = self.read_data_u.val();
        }
        self.undo_mask.next = 0.into();
        if self.st_undo.val() == 1 {
            self.undo_mask.next = self.sign16.val();
        } else if self.st_undo.val() == 2 {
            // A transformed positive float has its sign bit set, a negative one clear.
            if self.raw.val().get_bit(15) {
                self.undo_mask.next = self.sign16.val();
            } else {
                self.undo_mask.next = self.ones16.val();
            }
        } else if (self.st_undo.val() == 3) & self.float_negative.q.val() {
            self.undo_mask.next = self.ones16.val();
        }
        self.tag_u.next = 0.into();
        self.tag_l.next = 0.into();
        self.tag_shift.next = 0.into();
        if self.st_has_u.val() {
            self.tag_u.next = (self.read_data_u.val()
                >> bit_cast::<16, 4>(self.u_format.val().first_field))
                & !(self.ones16.val() << bit_cast::<16, 5>(self.u_format.val().fields));
            self.tag_shift.next = self.u_format.val().fields;
        }
        if self.st_has_l.val() {
            self.tag_l.next = ((self.read_data_l.val()
                >> bit_cast::<16, 4>(self.l_format.val().first_field))
                & !(self.ones16.val() << bit_cast::<16, 5>(self.l_format.val().fields)))
                << bit_cast::<16, 5>(self.tag_shift.val());
        }
        match self.st_item.val() {
            OutputItem::Tag => {
                self.out_data.next = self.tag_u.val() | self.tag_l.val();
            }
            OutputItem::TidHigh => {
                self.out_data.next = self.st_tid.val().get_bits::<16>(16);
            }
            OutputItem::TidLow => {
                self.out_data.next = self.st_tid.val().get_bits::<16>(0);
            }
            OutputItem::EndOfStream => {
                self.out_data.next = 0.into();
            }
            _ => {
                self.out_data.next = self.raw.val() ^ self.undo_mask.val();
            }
        }
        if self.st_valid.val() & self.out_slice.data_in.ready.val() & (self.st_undo.val() == 2) {
            self.float_negative.d.next = !self.raw.val().get_bit(15);
        }
        self.out_slice.data_in.valid.next = self.st_valid.val();
        self.out_slice.data_in.word.next.data = self.out_data.val();
        self.parity_gen.data.next = self.out_data.val();
        self.out_slice.data_in.word.next.parity = self.parity_gen.parity.val();
        self.out_slice.data_in.word.next.null = false;
        self.out_slice.data_in.word.next.dup = self.st_dup.val();
        self.out_slice.data_in.word.next.last = self.st_last.val();
        self.out_slice.data_in.word.next.eos = false;
        if self.st_item.val() == OutputItem::EndOfStream {
            self.out_slice.data_in.word.next.dup = false;
            self.out_slice.data_in.word.next.parity = self.par0.val();
            self.out_slice.data_in.word.next.last = false;
            self.out_slice.data_in.word.next.eos = true;
        }

        if self.clear.val() {
            self.write_u.d.next = 0.into();
            self.write_l.d.next = 0.into();
            self.unit_start_u.d.next = 0.into();
            self.unit_start_l.d.next = 0.into();
            self.unit_has_u.d.next = false;
            self.unit_has_l.d.next = false;
            self.queue_write.d.next = 0.into();
            self.queue_read.d.next = 0.into();
            self.queue_ok.d.next = false;
            self.base_u.d.next = 0.into();
            self.base_l.d.next = 0.into();
            self.seq.d.next = SequencerState::Start;
            self.s1_valid.d.next = false;
            self.s2_valid.d.next = false;
            self.tid_count.d.next = 0.into();
            self.parity_flag.d.next = false;
            self.framing_flag.d.next = false;
        }
    }
}

// ------------------------------------------------------------------------------------
// Configuration and reference model.
// ------------------------------------------------------------------------------------

/// One side's output format, as the control program derives it from the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SideFormat {
    /// Words per tuple (tag word included) and the IN module's rotation and transform.
    pub tuple_words: usize,
    pub key_offset: usize,
    pub key_words: usize,
    pub key_type: KeyType,
    /// Compact words [first_word, end_word) are sent (P1, P2).
    pub first_word: usize,
    pub end_word: usize,
    /// Their fields' null bits: tag bits [first_field, first_field + fields).
    pub first_field: usize,
    pub fields: usize,
}

impl SideFormat {
    /// A relation whose first field is a one-word unsigned key (no rotation, no
    /// transform), sent whole: `tuple_words - 1` one-word fields.
    pub const fn unrotated(tuple_words: usize) -> SideFormat {
        SideFormat {
            tuple_words,
            key_offset: 1,
            key_words: 1,
            key_type: KeyType::Unsigned,
            first_word: 1,
            end_word: tuple_words,
            first_field: 0,
            fields: tuple_words - 1,
        }
    }

    /// The whole tuple, as the IN module read it; `fields` is the relation's field count.
    pub fn whole(cfg: &InConfig, fields: usize) -> SideFormat {
        SideFormat {
            tuple_words: cfg.tuple_words,
            key_offset: cfg.key_offset,
            key_words: cfg.key_words,
            key_type: cfg.key_type,
            first_word: 1,
            end_word: cfg.tuple_words,
            first_field: 0,
            fields,
        }
    }

    pub fn validate(&self, max_tuple_words: usize) -> Result<()> {
        let n = self.tuple_words;
        if n < 2 || n > max_tuple_words {
            bail!("output format: tuple_words = {n} (2..={max_tuple_words})");
        }
        if self.key_offset < 1 || self.key_offset >= n {
            bail!("output format: key_offset = {} (1..{n})", self.key_offset);
        }
        if self.key_words < 1 || self.key_words > n - 1 {
            bail!("output format: key_words = {}", self.key_words);
        }
        if self.first_word < 1 || self.first_word > self.end_word || self.end_word > n {
            bail!(
                "output format: words [{}, {}) must lie within 1..{n}",
                self.first_word,
                self.end_word
            );
        }
        let key_end = self.key_offset + self.key_words.min(n - self.key_offset);
        for (what, p) in [("P1", self.first_word), ("P2", self.end_word)] {
            if p > self.key_offset && p < key_end {
                bail!(
                    "output format: {what} = {p} cuts the key field (words {}..{key_end})",
                    self.key_offset
                );
            }
        }
        if self.first_field + self.fields > 16 {
            bail!(
                "output format: fields [{}, {}) beyond the 16 tag bits",
                self.first_field,
                self.first_field + self.fields
            );
        }
        Ok(())
    }

    /// The hardware view.
    pub fn to_bits(&self) -> OutputFormat {
        OutputFormat {
            tuple_words: (self.tuple_words as u64).into(),
            key_offset: (self.key_offset as u64).into(),
            key_words: (self.key_words as u64).into(),
            key_type: self.key_type.code().into(),
            first_word: (self.first_word as u64).into(),
            end_word: (self.end_word as u64).into(),
            first_field: (self.first_field as u64).into(),
            fields: (self.fields as u64).into(),
        }
    }

    /// The side's tag bits and selected words for one internal tuple.
    pub fn extract(&self, t: &StreamTuple) -> (u16, Vec<u16>) {
        let cfg = InConfig {
            tuple_words: self.tuple_words,
            key_offset: self.key_offset,
            key_words: self.key_words,
            key_type: self.key_type,
            key_null_bit: None,
        };
        let mut compact = rotate_to_compact(&cfg, &t.words);
        let key_end = (self.key_offset + self.key_words).min(self.tuple_words);
        undo_transform_key(self.key_type, &mut compact[self.key_offset..key_end]);
        let mask = if self.fields >= 16 {
            0xffff
        } else {
            (1u16 << self.fields) - 1
        };
        let tag = (compact[0] >> self.first_field) & mask;
        (tag, compact[self.first_word..self.end_word].to_vec())
    }
}

/// All the output control part's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputSettings {
    pub u: SideFormat,
    pub l: SideFormat,
    pub new_tid: bool,
    pub tid_base: u32,
}

impl OutputSettings {
    /// Both sides in format `f`, no new TID.
    pub fn both(f: SideFormat) -> OutputSettings {
        OutputSettings {
            u: f,
            l: f,
            new_tid: false,
            tid_base: 0,
        }
    }

    pub fn validate(&self, max_tuple_words: usize) -> Result<()> {
        self.u.validate(max_tuple_words)?;
        self.l.validate(max_tuple_words)?;
        if self.u.fields + self.l.fields + self.new_tid as usize > 16 {
            bail!(
                "output tuple of {} fields: a tag word holds 16",
                self.u.fields + self.l.fields + self.new_tid as usize
            );
        }
        Ok(())
    }

    pub fn apply<const A: usize, const P: usize>(&self, o: &mut OutputControlPart<A, P>) {
        o.u_format.next = self.u.to_bits();
        o.l_format.next = self.l.to_bits();
        o.new_tid.next = self.new_tid;
        o.tid_base.next = (self.tid_base as u64).into();
    }
}

/// Reference model of the output's DP line for a unit: an L tuple alone keeps its DP, a U
/// tuple or a pair has DP = 0.
pub fn output_dup(u: Option<&StreamTuple>, l: Option<&StreamTuple>) -> bool {
    u.is_none() && l.is_some_and(|t| t.dup)
}

/// Reference model: the compact output tuple for each unit (U tuple, L tuple, or both),
/// `index` counting the stream's units from 0.
pub fn output_tuple(
    s: &OutputSettings,
    index: usize,
    u: Option<&StreamTuple>,
    l: Option<&StreamTuple>,
) -> Vec<u16> {
    let mut tag = 0u16;
    let mut words = vec![];
    let mut shift = 0;
    if let Some(t) = u {
        let (bits, w) = s.u.extract(t);
        tag |= bits;
        shift = s.u.fields;
        words.extend(w);
    }
    if let Some(t) = l {
        let (bits, w) = s.l.extract(t);
        tag |= ((bits as u32) << shift) as u16;
        words.extend(w);
    }
    let mut out = vec![tag];
    out.extend(words);
    if s.new_tid {
        let tid = s.tid_base.wrapping_add(index as u32);
        out.push((tid >> 16) as u16);
        out.push(tid as u16);
    }
    out
}

impl<const A: usize, const P: usize> crate::harness::Clocked for OutputControlPart<A, P> {
    fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
        &mut self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{Harness, Pacing, Schedule};
    use crate::in_module::{in_module_model, InConfig};
    use crate::tuple_stream::{to_beats, Beat};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    type SmallOutput = OutputControlPart<6, 7>;
    /// Every test runs both reads: one stage, and the two stages of the Delta merger's
    /// 8K-word memories ([DEEP_MEMORY_ADDRESS_BITS]).
    const BOTH_READS: [bool; 2] = [false, true];

    /// A unit as the operation part sends it.
    #[derive(Clone, Debug)]
    enum Unit {
        U(StreamTuple),
        L(StreamTuple),
        Pair(StreamTuple, StreamTuple),
    }

    fn unit_beats(units: &[Unit]) -> Vec<(bool, bool, Beat)> {
        let mut v = vec![];
        let side = |t: &StreamTuple, from_u: bool, end: bool, v: &mut Vec<(bool, bool, Beat)>| {
            let beats = to_beats(std::slice::from_ref(t));
            let n = beats.len() - 1;
            for (i, b) in beats[..n].iter().enumerate() {
                v.push((from_u, end && i + 1 == n, *b));
            }
        };
        for unit in units {
            match unit {
                Unit::U(t) => side(t, true, true, &mut v),
                Unit::L(t) => side(t, false, true, &mut v),
                Unit::Pair(a, b) => {
                    side(a, true, false, &mut v);
                    side(b, false, true, &mut v);
                }
            }
        }
        v.push((false, true, Beat::eos()));
        v
    }

    fn expected_with_dup(s: &OutputSettings, units: &[Unit]) -> Vec<(Vec<u16>, bool)> {
        units
            .iter()
            .enumerate()
            .map(|(i, unit)| {
                let (u, l) = match unit {
                    Unit::U(t) => (Some(t), None),
                    Unit::L(t) => (None, Some(t)),
                    Unit::Pair(a, b) => (Some(a), Some(b)),
                };
                (output_tuple(s, i, u, l), output_dup(u, l))
            })
            .collect()
    }

    /// Drive units in, collect output beats up to the end of stream.
    fn run<const A: usize, const P: usize>(
        h: &mut Harness<OutputControlPart<A, P>>,
        input: &[(bool, bool, Beat)],
        pacing: Pacing,
    ) -> (Vec<Beat>, u64) {
        let max = 200 + 8 * input.len();
        let schedule = Schedule::from_pacing(pacing, max);
        let mut next = 0;
        let mut out = vec![];
        for cycle in 0..max {
            let offer = next < input.len() && schedule.offer[cycle];
            h.uut.data_in.valid.next = offer;
            if offer {
                let (from_u, end, b) = input[next];
                h.uut.data_in.from_u.next = from_u;
                h.uut.data_in.unit_end.next = end;
                h.uut.data_in.word.next = b.into();
            }
            h.uut.data_out.ready.next = schedule.take[cycle];
            h.settle();
            let in_fire = offer && h.uut.data_in.ready.val();
            let out_fire = schedule.take[cycle] && h.uut.data_out.valid.val();
            let beat: Beat = h.uut.data_out.word.val().into();
            h.cycle();
            if in_fire {
                next += 1;
            }
            if out_fire {
                out.push(beat);
                if beat.eos {
                    h.uut.data_in.valid.next = false;
                    h.cycle();
                    return (out, cycle as u64 + 1);
                }
            }
        }
        panic!(
            "no end of stream in {max} cycles ({next} of {} in)",
            input.len()
        );
    }

    fn tuples_of(beats: &[Beat]) -> Vec<Vec<u16>> {
        tuples_with_dup_of(beats)
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    /// Output tuples with their DP; checks parity, framing and that NL is 0 and DP
    /// constant over each tuple (0 on the end-of-stream beat).
    fn tuples_with_dup_of(beats: &[Beat]) -> Vec<(Vec<u16>, bool)> {
        assert!(beats.iter().all(|b| !b.null), "NL is 0 on the output");
        assert!(
            crate::tuple_stream::dp_constant_per_tuple(beats),
            "DP constant over each tuple"
        );
        for b in beats.iter().take_while(|b| !b.eos) {
            assert_eq!(
                b.parity,
                crate::tuple_stream::word_parity(b.data),
                "parity regenerated"
            );
        }
        let eos = beats.iter().position(|b| b.eos).unwrap_or(beats.len());
        assert!(
            eos == 0 || beats[eos - 1].last,
            "a tuple without its last word"
        );
        crate::tuple_stream::split_tuples_with_dup(beats)
    }

    fn random_format(rng: &mut ChaCha8Rng, n: usize, fields: usize) -> SideFormat {
        let key_offset = rng.gen_range(1..n);
        let key_type = [KeyType::Unsigned, KeyType::Signed, KeyType::Float][rng.gen_range(0..3)];
        let key_words = if key_type == KeyType::Float {
            2.min(n - key_offset)
        } else {
            rng.gen_range(1..=(n - key_offset).min(3))
        };
        let key_type = if key_type == KeyType::Float && key_words < 2 {
            KeyType::Signed
        } else {
            key_type
        };
        let key_end = key_offset + key_words;
        // Cut points that do not split the key.
        let cuts: Vec<usize> = (1..=n)
            .filter(|&p| !(p > key_offset && p < key_end))
            .collect();
        let mut a = cuts[rng.gen_range(0..cuts.len())];
        let mut b = cuts[rng.gen_range(0..cuts.len())];
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        let first_field = rng.gen_range(0..fields);
        SideFormat {
            tuple_words: n,
            key_offset,
            key_words,
            key_type,
            first_word: a,
            end_word: b,
            first_field,
            fields: rng.gen_range(0..=fields - first_field),
        }
    }

    fn internal_tuple(rng: &mut ChaCha8Rng, f: &SideFormat) -> StreamTuple {
        let compact: Vec<u16> = (0..f.tuple_words).map(|_| rng.gen()).collect();
        let cfg = InConfig {
            tuple_words: f.tuple_words,
            key_offset: f.key_offset,
            key_words: f.key_words,
            key_type: f.key_type,
            key_null_bit: None,
        };
        let mut t = in_module_model(&cfg, &[compact]).remove(0);
        t.dup = rng.gen();
        t
    }

    #[test]
    fn random_units_and_formats_match_the_model() {
        for registered in BOTH_READS {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let mut h = Harness::new(SmallOutput::new(registered));
            for case in 0..150 {
                let (nu, nl) = (rng.gen_range(2..12), rng.gen_range(2..12));
                let s = OutputSettings {
                    u: random_format(&mut rng, nu, 6),
                    l: random_format(&mut rng, nl, 6),
                    new_tid: rng.gen(),
                    tid_base: rng.gen(),
                };
                s.validate(64).unwrap();
                s.apply(&mut h.uut);
                let units: Vec<Unit> = (0..rng.gen_range(0..12))
                    .map(|_| match rng.gen_range(0..3) {
                        0 => Unit::U(internal_tuple(&mut rng, &s.u)),
                        1 => Unit::L(internal_tuple(&mut rng, &s.l)),
                        _ => Unit::Pair(
                            internal_tuple(&mut rng, &s.u),
                            internal_tuple(&mut rng, &s.l),
                        ),
                    })
                    .collect();
                let pacing = Pacing {
                    source_duty: rng.gen_range(0.3..=1.0),
                    sink_duty: rng.gen_range(0.3..=1.0),
                    seed: case,
                };
                let (out, _) = run(&mut h, &unit_beats(&units), pacing);
                assert_eq!(
                    tuples_with_dup_of(&out),
                    expected_with_dup(&s, &units),
                    "case {case}: {s:?}"
                );
                assert!(!h.uut.parity_error.val() && !h.uut.framing_error.val());
            }
        }
    }

    #[test]
    fn fig7_reorder_project_and_new_tid() {
        for registered in BOTH_READS {
            // Fig. 7(a): fields A B C D E with B the key, one word each; the IN module rotates
            // the tuple to B C D E A (tag last), the merger restores A B C D E.
            let cfg = InConfig {
                tuple_words: 6,
                key_offset: 2,
                key_words: 1,
                key_type: KeyType::Signed,
                key_null_bit: Some(1),
            };
            let compact = vec![0b00010u16, 0xA, 0xFFFE, 0xC, 0xD, 0xE]; // B = -2, B null-flagged
            let internal = in_module_model(&cfg, std::slice::from_ref(&compact));
            assert_eq!(internal[0].words, vec![0x7FFE, 0xC, 0xD, 0xE, 0xA, 0b00010]);
            let whole = SideFormat::whole(&cfg, 5);
            let mut s = OutputSettings::both(whole);
            let mut h = Harness::new(SmallOutput::new(registered));
            let mut go = |s: &OutputSettings| {
                s.apply(&mut h.uut);
                let (out, _) = run(
                    &mut h,
                    &unit_beats(&[Unit::L(internal[0].clone())]),
                    Pacing::FULL_RATE,
                );
                tuples_of(&out)
            };
            assert_eq!(go(&s), vec![compact.clone()], "(a) original field order");
            // Fig. 7(b): project to fields B C D (P1 = 2, P2 = 5): tag bits 1..4.
            s.l = SideFormat {
                first_word: 2,
                end_word: 5,
                first_field: 1,
                fields: 3,
                ..whole
            };
            assert_eq!(
                go(&s),
                vec![vec![0b001, 0xFFFE, 0xC, 0xD]],
                "(b) projection"
            );
            // Fig. 7(c): a new TID appended.
            s.new_tid = true;
            s.tid_base = 0x0001_0002;
            assert_eq!(
                go(&s),
                vec![vec![0b001, 0xFFFE, 0xC, 0xD, 0x0001, 0x0002]],
                "(c) new TID"
            );
        }
    }

    #[test]
    fn dp_of_an_l_tuple_alone_is_on_every_word_and_zero_otherwise() {
        for registered in BOTH_READS {
            let f = SideFormat::unrotated(3);
            let s = OutputSettings {
                new_tid: true,
                tid_base: 5,
                ..OutputSettings::both(f)
            };
            let dup = |w: Vec<u16>| StreamTuple {
                dup: true,
                ..StreamTuple::new(w, false)
            };
            let units = vec![
                Unit::L(dup(vec![1, 2, 0])),
                Unit::L(StreamTuple::new(vec![1, 3, 0], false)),
                Unit::U(dup(vec![4, 5, 0])),
                Unit::Pair(dup(vec![6, 7, 0]), dup(vec![6, 8, 0])),
                Unit::L(dup(vec![9, 9, 0])),
            ];
            let mut h = Harness::new(SmallOutput::new(registered));
            s.apply(&mut h.uut);
            let (out, _) = run(&mut h, &unit_beats(&units), Pacing::FULL_RATE);
            let dps: Vec<bool> = out.iter().map(|b| b.dup).collect();
            // 3 data words + 2 NTID words per L or U unit, 5 + 2 for the pair, then eos.
            let mut want = vec![true; 5];
            want.extend([false; 5]);
            want.extend([false; 5]);
            want.extend([false; 7]);
            want.extend([true; 5]);
            want.push(false);
            assert_eq!(dps, want);
            assert_eq!(
                tuples_with_dup_of(&out)
                    .iter()
                    .map(|(_, d)| *d)
                    .collect::<Vec<_>>(),
                vec![true, false, false, false, true]
            );
        }
    }

    #[test]
    fn one_word_per_cycle_when_units_keep_coming() {
        for registered in BOTH_READS {
            let f = SideFormat::unrotated(8);
            let s = OutputSettings::both(f);
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let units: Vec<Unit> = (0..40)
                .map(|_| Unit::L(internal_tuple(&mut rng, &f)))
                .collect();
            let mut h = Harness::new(SmallOutput::new(registered));
            s.apply(&mut h.uut);
            let (out, cycles) = run(&mut h, &unit_beats(&units), Pacing::FULL_RATE);
            assert_eq!(out.len(), 40 * 8 + 1);
            // Input and output are both 8 words per tuple: the pipeline fill is the overhead.
            assert!(cycles <= 40 * 8 + 16, "{cycles} cycles");
        }
    }

    #[test]
    fn a_unit_cut_short_by_the_end_of_stream_is_dropped() {
        for registered in BOTH_READS {
            let f = SideFormat::unrotated(3);
            let s = OutputSettings::both(f);
            let t = StreamTuple::new(vec![5, 6, 0], false);
            let mut input = unit_beats(&[Unit::L(t.clone())]);
            input.pop();
            input.push((true, false, Beat::data(9, false, false)));
            input.push((false, true, Beat::eos()));
            let mut h = Harness::new(SmallOutput::new(registered));
            s.apply(&mut h.uut);
            let (out, _) = run(&mut h, &input, Pacing::FULL_RATE);
            assert_eq!(tuples_of(&out), vec![vec![0, 5, 6]]);
            // And the next stream starts clean.
            let (out, _) = run(&mut h, &unit_beats(&[Unit::U(t)]), Pacing::FULL_RATE);
            assert_eq!(tuples_of(&out), vec![vec![0, 5, 6]]);
        }
    }

    #[test]
    fn bad_parity_is_flagged() {
        for registered in BOTH_READS {
            let f = SideFormat::whole(
                &InConfig {
                    tuple_words: 2,
                    key_offset: 1,
                    key_words: 1,
                    key_type: KeyType::Unsigned,
                    key_null_bit: None,
                },
                1,
            );
            let s = OutputSettings::both(f);
            let mut input = unit_beats(&[Unit::L(StreamTuple::new(vec![1, 0], false))]);
            input[0].2.parity ^= 1;
            let mut h = Harness::new(SmallOutput::new(registered));
            s.apply(&mut h.uut);
            run(&mut h, &input, Pacing::FULL_RATE);
            assert!(h.uut.parity_error.val());
            h.uut.clear.next = true;
            h.cycle();
            h.uut.clear.next = false;
            assert!(!h.uut.parity_error.val());
        }
    }

    /// Issue 7: the tuple memories store PT beside the data and check it on every word
    /// read, so a stored line inverted while a unit waits in memory is a parity error.
    #[test]
    fn a_word_corrupted_in_a_tuple_memory_is_a_parity_error() {
        for registered in BOTH_READS {
            use crate::memory_fault::{corrupt_memory, MemoryFault, StoredWords};
            let f = SideFormat::unrotated(3);
            let s = OutputSettings::both(f);
            let mut rng = ChaCha8Rng::seed_from_u64(77);
            let mut t = || internal_tuple(&mut rng, &f);
            let units = vec![
                Unit::Pair(t(), t()),
                Unit::Pair(t(), t()),
                Unit::U(t()),
                Unit::L(t()),
            ];
            let input = unit_beats(&units);
            let expected = expected_with_dup(&s, &units);
            // No fault: the right output, no error. Then each memory and line: one word of a
            // unit after the first (the first unit's tag words are in the read stage already).
            let faults =
                (0..2u16).flat_map(|memory| (0..18u8).map(move |line| Some((memory, line))));
            for fault in std::iter::once(None).chain(faults) {
                let mut h = Harness::new(SmallOutput::new(registered));
                s.apply(&mut h.uut);
                // Everything in while the output stalls: the units wait in the memories.
                h.uut.data_out.ready.next = false;
                for &(from_u, end, b) in &input {
                    h.uut.data_in.valid.next = true;
                    h.uut.data_in.from_u.next = from_u;
                    h.uut.data_in.unit_end.next = end;
                    h.uut.data_in.word.next = b.into();
                    h.settle();
                    assert!(
                        h.uut.data_in.ready.val(),
                        "the memories hold the whole input"
                    );
                    h.cycle();
                }
                h.uut.data_in.valid.next = false;
                let live: Vec<usize> = h
                    .uut
                    .live_memories()
                    .iter()
                    .map(|m| m.range.span().1)
                    .collect();
                assert_eq!(
                    live,
                    vec![9, 9],
                    "three tuples of three words in each memory"
                );
                if let Some((memory, line)) = fault {
                    let fault = MemoryFault {
                        memory,
                        word: 3 + u32::from(line) % 6,
                        line,
                        cycle: 0,
                    };
                    let hit = corrupt_memory(&mut h.uut, &fault).unwrap();
                    assert_eq!(hit.line, line);
                }
                let (out, _) = run(&mut h, &[], Pacing::FULL_RATE);
                assert_eq!(h.uut.parity_error.val(), fault.is_some(), "{fault:?}");
                if fault.is_none() {
                    assert_eq!(tuples_with_dup_of(&out), expected);
                }
            }
        }
    }

    #[test]
    fn format_validation_names_the_problem() {
        let f = SideFormat {
            tuple_words: 6,
            key_offset: 2,
            key_words: 2,
            key_type: KeyType::Float,
            first_word: 3,
            end_word: 6,
            first_field: 0,
            fields: 3,
        };
        let e = f.validate(64).unwrap_err().to_string();
        assert!(e.contains("P1 = 3 cuts the key"), "{e}");
        let e = SideFormat {
            end_word: 7,
            first_word: 1,
            ..f
        }
        .validate(64)
        .unwrap_err()
        .to_string();
        assert!(e.contains("within"), "{e}");
    }

    #[test]
    fn output_control_part_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(SmallOutput::default());
        crate::verilog::check_module("output_control_part", &v).unwrap();
    }
}
