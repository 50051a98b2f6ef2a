//! The merger's operation part (paper §4.3, Fig. 6): "two 64Kbyte memories (U-memory and
//! L-memory) each with a FIFO function, a comparator, a control ROM table and other
//! circuits", which (1) stores two sorted streams, (2) reads a tuple from each memory and
//! gives it to the comparator and to the output control part, (3) compares keys and
//! detects the output tuples of the command.
//!
//! # How this implementation works
//! * **U-memory** holds a relation stored earlier by LOAD (condition values, the run held
//!   for SORT-EX, a join's inner relation). It keeps its contents from command to command;
//!   its tuple length is measured while it is loaded. A relation that does not fit sets
//!   `u_overflow` and leaves U empty.
//! * **L-memory** is a ring (the FIFO) written by the arriving stream, end-of-stream beat
//!   included, while the comparator reads it. Words before LADR* (the `l_mark` register)
//!   are free; every program but JOIN-EQ moves LADR* with each L advance (see
//!   [crate::control_rom::rule]), so L streams through; JOIN-EQ keeps one group of equal
//!   keys. A group (or, in delete mode, a page) larger than L-memory sets `l_overflow`, and
//!   the command ends after draining its input.
//! * **Comparator**: the head tuples of U and L are read together and compared word by
//!   word from the head (one key word per cycle, stopping at the first difference), with
//!   the NL and DP lines of the words read. Nothing waits for a whole tuple: the decision
//!   is made as soon as the key decides it, and null keys and duplicates go through the
//!   same single-cycle ROM lookup as everything else (the paper's claim of processing
//!   "null values and duplicate tuples without disturbing the pipeline operation").
//! * **Control ROM**: the command decoder gives the start program; each decision looks up
//!   `program · situation · DP(U) · DP(L)` in the control ROM
//!   ([crate::control_rom::contents]), whose word says which tuple(s) go to the output
//!   control part, how the U and L addresses move (advance, rewind U, LADR* mark and
//!   return), the next program, and the operation end.
//! * **Reads** (issue 6): each memory is read through a [HeadReader], the reading end of
//!   a FIFO: its head word (the word at its head pointer) is there or not, the control
//!   takes it (`pop`: the reader fetches the words after it ahead, one a cycle) or sends
//!   the reader back to a tuple's start (`restart`). With the Delta merger's 32K-word
//!   memories the reader is two-cycle: a register after the memory's block multiplexer
//!   holds the head, so nothing but a register follows the memory in the cycle its word
//!   comes out (the ECP5's critical path was L-memory → comparator → control word, 21.2
//!   ns, the memory's word arriving 12.8 ns after the clock); a restart's word is the
//!   head three cycles later. The iCE40 configurations read in one cycle, as before
//!   ([DEEP_MEMORY_ADDRESS_BITS]), a restart's word the head two cycles later. Both
//!   readers take a restart into registers and read from them in the next cycle
//!   ([HeadReader::with_registered_restart], session 22): the logic that decides a
//!   restart (a selection's last word leaving → `apply_now` → the new base) ends at a
//!   register, not at the memory's address (the critical path of both parts, 16–17 ns,
//!   in session 21), for one cycle more per restart. A restart to the writer's place
//!   waits there for its word. L's reader (and LADR* with it) may
//!   jump past the writer when it skips a tuple that has not arrived yet: its head is then
//!   ignored (`seek_l`) until the writer has passed the place, where it restarts again.
//! * **Writes**: with the two-cycle read the memories' write ports are registered too
//!   ([BlockRam::new]): a word is in the memory one cycle after the stream
//!   offered it, and the readers see the writer's pointer one cycle late (`l_stored`).
//!   On the ECP5 the stream's handshake → the write enables of U's and L's 64 blocks was
//!   the Delta core's critical path once the reads were registered (15.0 ns, 12.7 of it
//!   routing).
//! * **Selection**: the selected U tuple, L tuple or pair (U's words then L's) goes out on
//!   the [SelectedStreamOut] word by word, one word per cycle, the readers' head words; the
//!   address moves are applied as its last word leaves, and the next comparison starts in
//!   the following cycle. The decision is registered (issue 6): the comparing cycle stores
//!   the control ROM's word in `action` and the two words it compared in
//!   `held_u`/`held_l`, while both readers take the key's word whatever the comparator
//!   says; the next cycle (state Decide) carries the word out. So the comparator feeds
//!   registers only and the read addresses never wait for it. When the first key word
//!   decides (always, for one-word keys), the selection's first word leaves in the Decide
//!   cycle, from `held_*`, and its reader goes on from the second word; the other reader
//!   goes back to its tuple's start then, hidden behind the selection's words. The
//!   action's moves leave a reader where it is when they move its base by what was sent
//!   from it (a tuple, or nothing): so a stream of selected W-word tuples leaves at W + 1
//!   cycles a tuple with either read (issue 6's bound: 1 + 1/W cycles a word). A decision
//!   that selects nothing costs one cycle per key word compared, plus one (plus one more
//!   with the two-cycle read, whose readers restart). The selection's last word is known
//!   from registers (`u_end_addr`, `l_end_addr`: tuples are of one length in each memory),
//!   not from the word's `last` line as it leaves the memory: so neither the memories'
//!   data nor a carry chain is on the way to the next read address.
//! * **COMPARE ATTRIBUTES** compares two attributes of the same L tuple: the stream is
//!   written into U-memory too, at the same addresses, so that the comparator reads the
//!   key from L-memory and the second attribute from U-memory in the same cycle. Its null
//!   flag is in the tuple's tag word (its last word, read first), so the comparison waits
//!   for the whole tuple. U's earlier contents are lost (U is empty afterwards). The
//!   second attribute's words are transformed (signed, float) as they are written into
//!   U-memory, so nothing stands between the memories and the comparator.
//! * **Delete mode** (§5.1, Fig. 9): L is kept whole (LADR* does not move); the
//!   DELETE-KEEP program emits the tuples that match no condition value in U, then both
//!   memories are replayed from their first tuple under REST-EQ, which emits the matching
//!   ones.
//! * **Sequencing**: a command starts when the first beat of its stream is offered (the
//!   `command` and `delete_mode` ports are sampled then), and ends with one end-of-stream
//!   beat on the selected stream, after the whole input stream was taken.
//! * **Partial-U SORT-EX** (§5.1: "the relation to be supplied to the engine core is
//!   determined dynamically according to the state of the engine core"): with the
//!   `u_partial` setting, U holds a chunk (a prefix) of a run longer than U-memory. When U
//!   has no tuple left while L still has one, the command ends (state Drain: the rest of L
//!   is taken and dropped) instead of emitting L's rest. One gate on the control ROM's
//!   output does it ([crate::control_rom::partial_end]): the ROM's program field is full.
//! * **Stored parity** (issue 7, not in the paper): a word is stored in U- and L-memory
//!   with its low parity line folded over its NL, DP, `last` and end-of-stream lines
//!   (an end-of-stream beat is stored as data 0 with good parity first), and
//!   unfolded as it is read, so every stored line is covered by one of the two parity
//!   lines. Every word the comparator looks at (both head words while comparing) is
//!   checked (`parity_error`, sticky); words selected for output are checked by the output
//!   control part, which sees the unfolded word. Without it, a corrupted key word in
//!   U-memory that changes a comparison (a RESTRICT condition value is compared, never
//!   output) or a flipped `last` or NL line gave wrong results silently (the fault
//!   campaign's memory-word experiments, `docs/RELIABILITY.md`). The fold costs no memory
//!   bit and keeps the XOR off the comparator's path (only the parity lines change).
//!   COMPARE ATTRIBUTES' U words are not checked (their data was transformed after its
//!   parity was made).
//! * **Demand lines**: `l_taken` counts the L advances of the current command (after a
//!   partial-U SORT-EX: where in L the next chunk resumes); `input_unneeded` is high while
//!   the command has ended but its input has not, so the source may cut the stream short.
use crate::block_ram::{BlockRam, DEEP_MEMORY_ADDRESS_BITS};
use crate::control_rom::{partial_end_word, Program, RomTable, Situation};
use crate::dff::DFF;
use crate::head_reader::HeadReader;
use crate::memory_fault::{LiveMemory, LiveRange, LiveRegister, StoredWords};
use crate::tuple_stream::{ParityFold, TupleStreamIn, TupleWord};
use rust_hdl::prelude::*;

/// The operation part's readers take a restart into registers in every configuration
/// ([HeadReader::with_registered_restart], issue 6's session 22): a restart's word comes a
/// cycle later, and the logic that decides a restart ends at a register instead of at a
/// memory's read address. A parameter, not a literal, because the Idle state's restart
/// relies on it (with it a reader sent to the writer's place waits for the word there).
/// (Measured in session 22 as this constant: the iCEBreaker's tiny board placed in 4,629
/// logic cells; with the Idle test folded by hand into `true`, the same logic, yosys' ABC
/// mapping gave 4,771, over the CI's limit of 4,752.)
pub const REGISTERED_RESTART: bool = true;

/// The operation part's output to the output control part: the selected tuples, word by
/// word, each word tagged with the memory it came from. A *unit* is one output item of the
/// command: one U tuple, one L tuple, or a pair (the U tuple's words, then the L tuple's).
/// `unit_end` marks a unit's last word. The command's end is one beat with `word.eos` set
/// (and `unit_end`). valid/ready as on the tuple stream.
#[derive(LogicInterface, Default)]
#[join = "SelectedStreamIn"]
pub struct SelectedStreamOut {
    pub word: Signal<Out, TupleWord>,
    pub from_u: Signal<Out, Bit>,
    pub unit_end: Signal<Out, Bit>,
    pub valid: Signal<Out, Bit>,
    pub ready: Signal<In, Bit>,
}

/// Receiving side of [SelectedStreamOut].
#[derive(LogicInterface, Default)]
#[join = "SelectedStreamOut"]
pub struct SelectedStreamIn {
    pub word: Signal<In, TupleWord>,
    pub from_u: Signal<In, Bit>,
    pub unit_end: Signal<In, Bit>,
    pub valid: Signal<In, Bit>,
    pub ready: Signal<Out, Bit>,
}

/// The static settings of one merger command, as the control program sets them (one port
/// of the operation part and of the merger; `MergerConfig::command_settings` fills it).
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct CommandSettings {
    /// The merger command (`MergerCommand::code`).
    pub command: Bits<5>,
    /// Delete mode (§5.1) instead of `command`.
    pub delete_mode: Bit,
    /// Key length in words (1..tuple_words).
    pub key_words: Bits<12>,
    /// SORT-EX and UNQ-EX merge descending.
    pub descending: Bit,
    /// Words per tuple of the arriving (L) stream.
    pub tuple_words: Bits<12>,
    /// COMPARE ATTRIBUTES: word offset of the second attribute in the internal tuple …
    pub second_offset: Bits<12>,
    /// … whether it can be null …
    pub second_nullable: Bit,
    /// … flagged by this bit of the tag word …
    pub second_null_bit: Bits<4>,
    /// … and its type (`KeyType::code`): its words are transformed as they are written
    /// into U-memory, as the IN module transformed the key.
    pub second_type: Bits<2>,
    /// SORT-EX's partial-U mode (`MergerSettings::u_partial`): U holds a chunk of a longer
    /// run, so the command ends when U has no tuple left while L has one (the control ROM's
    /// partial-U gate, [crate::control_rom::partial_end]). Last field: bit 50.
    pub u_partial: Bit,
}

#[derive(Copy, Clone, Debug, PartialEq, LogicState)]
pub enum OperationState {
    /// Between commands: waiting for the first beat of the next stream.
    Idle,
    /// LOAD: the stream goes into U-memory.
    Load,
    /// COMPARE ATTRIBUTES: waiting for the whole L tuple, then reading its tag word.
    CompareTag,
    /// COMPARE ATTRIBUTES: the tag word is being read.
    CompareTagRead,
    /// Comparing key word `k` of the U and L head tuples.
    Compare,
    /// The comparison decided in the previous cycle; its control ROM word (registered in
    /// `action`) is carried out: the address moves, or the selection's first word.
    Decide,
    /// Sending the U head tuple.
    EmitU,
    /// Sending the L head tuple.
    EmitL,
    /// The command has ended: taking (and dropping) the rest of its input stream.
    Drain,
    /// Sending the end-of-stream beat.
    Finish,
}

/// Whether a word is there to read at a position of L-memory's ring: the writer is
/// `1..=2^A` words ahead of it (`ring_reach`). `ahead` is the writer's pointer minus the
/// position, P = A + 1 bits, wrapping. With `step` 1 the block answers for the position
/// after it (the writer `2..=2^A + 1` ahead of the position given), so that a reader
/// choosing between `x` and `x + 1` needs one subtraction only.
///
/// The range tests are bit tests, no carry chain: `d >= 1 + step` is `d & above_step != 0`
/// (`above_step` is `!0` or `!1`), `d <= 2^A + step` is `d & 2^A == 0 | d & (2^A - 1 -
/// step) == 0`.
/// One block serves the operation part's seven tests of the writer's distance.
#[derive(LogicBlock)]
pub struct RingReach<const P: usize> {
    pub ahead: Signal<In, Bits<P>>,
    pub reach: Signal<Out, Bit>,
    /// `!0` (step 0) or `!1` (step 1): some bit of `d` above `step` is set.
    above_step: Constant<Bits<P>>,
    /// `2^A`, the ring's size: P's top bit.
    capacity: Constant<Bits<P>>,
    /// `2^A - 1 - step`: with `capacity`'s bit set, no bit of these may be.
    low_bits: Constant<Bits<P>>,
}

impl<const P: usize> RingReach<P> {
    /// The test for the position given (`step` 0) or the one after it (`step` 1).
    pub fn new(step: u64) -> Self {
        assert!((2..=17).contains(&P) && step <= 1);
        let address_bits = P - 1;
        let all = (1u64 << P) - 1;
        Self {
            ahead: Default::default(),
            reach: Default::default(),
            above_step: Constant::new((all & !step).into()),
            capacity: Constant::new((1u64 << address_bits).into()),
            low_bits: Constant::new(((1u64 << address_bits) - 1 - step).into()),
        }
    }
}

impl<const P: usize> Logic for RingReach<P> {
    #[hdl_gen]
    fn update(&mut self) {
        self.reach.next = ((self.ahead.val() & self.above_step.val()) != 0)
            & (((self.ahead.val() & self.capacity.val()) == 0)
                | ((self.ahead.val() & self.low_bits.val()) == 0));
    }
}

/// [RingReach]'s model: the writer, `ahead` words past a position (mod 2^(A+1)), is
/// `1..=2^A` words ahead of the position `step` words after it.
pub fn ring_reach(ahead: u64, address_bits: usize, step: u64) -> bool {
    let distance = ahead.wrapping_sub(step) & ((1u64 << (address_bits + 1)) - 1);
    (1..=1u64 << address_bits).contains(&distance)
}

/// The operation part with U- and L-memories of 2^A words each. `P` must be `A + 1`.
#[derive(LogicBlock)]
pub struct OperationPart<const A: usize, const P: usize> {
    pub clock: Signal<In, Clock>,
    pub data_in: TupleStreamIn,
    pub selected: SelectedStreamOut,
    /// The command and its settings, sampled when a stream starts (static while it flows).
    pub settings: Signal<In, CommandSettings>,
    /// Synchronous reset: both memories empty, errors cleared.
    pub clear: Signal<In, Bit>,
    /// Sticky: a command code outside Fig. 5 (the command outputs nothing).
    pub command_error: Signal<Out, Bit>,
    /// Sticky: a LOAD relation did not fit in U-memory (U is left empty).
    pub u_overflow: Signal<Out, Bit>,
    /// Sticky: a JOIN-EQ group or a delete-mode page did not fit in L-memory (the command
    /// was cut short).
    pub l_overflow: Signal<Out, Bit>,
    /// Sticky: a word the comparator read from U- or L-memory had bad (stored) parity.
    pub parity_error: Signal<Out, Bit>,
    /// Tuples in U-memory.
    pub u_tuples: Signal<Out, Bits<16>>,
    /// A command is running.
    pub busy: Signal<Out, Bit>,
    /// L advances of the current command (ROM words with `advance_l`; LOAD: every tuple of
    /// its stream), cleared when a command starts (and by `clear`), held after it ends until
    /// the next one starts. After a partial-U SORT-EX: the L tuples emitted, i.e. the index
    /// in L where the next chunk's SORT-EX resumes.
    pub l_taken: Signal<Out, Bits<32>>,
    /// The command has ended but its input stream has not: high in every cycle in which the
    /// state is Drain and L's end-of-stream beat has not been written yet (that beat's own
    /// cycle included: it is written at the end of the cycle in which it is taken). From
    /// the cycle after the Decide step whose word has `end` (ROM or partial-U gate), the
    /// `l_overflow` detection, or, for a command error, the cycle after the first beat is
    /// offered, until the cycle in which the end-of-stream beat is taken; never high when
    /// the input had ended first. Every word taken meanwhile is dropped, so the source may cut the
    /// stream short (at a tuple boundary, then the end-of-stream beat). Comes from registers.
    pub input_unneeded: Signal<Out, Bit>,
    memory_u: BlockRam<TupleWord, A>,
    memory_l: BlockRam<TupleWord, A>,
    /// The reading ends of the two memories (see "Reads" in the module doc): the head word
    /// of each, one-cycle or two-cycle ([OperationPart::new]).
    reader_u: HeadReader<A, P>,
    reader_l: HeadReader<A, P>,
    /// The readers take a restart into registers ([REGISTERED_RESTART]): a restart to the
    /// writer's place waits there for its word by itself, no `seek_l` needed.
    restart_waits_for_writer: Constant<Bit>,
    decoder: RomTable<5, 9>,
    control: RomTable<11, 13>,
    /// The control ROM's words for the situations Less, Equal and Greater (addressed by
    /// program · DP bits), looked up in parallel with the comparator: its result only
    /// picks one of them ([crate::control_rom::situation_slice]).
    control_less: RomTable<7, 13>,
    control_equal: RomTable<7, 13>,
    control_greater: RomTable<7, 13>,
    capacity: Constant<Bits<P>>,
    sign16: Constant<Bits<16>>,
    ones16: Constant<Bits<16>>,
    rest_eq_program: Constant<Bits<5>>,
    delete_keep_program: Constant<Bits<5>>,
    load_program: Constant<Bits<5>>,
    sort_ex_program: Constant<Bits<5>>,
    /// The partial-U gate's word: [crate::control_rom::partial_end_word].
    partial_end_word: Constant<Bits<13>>,
    // ---- command
    state: DFF<OperationState>,
    current_program: DFF<Bits<5>>,
    uses_u: DFF<Bit>,
    is_comp: DFF<Bit>,
    is_merge: DFF<Bit>,
    is_delete: DFF<Bit>,
    /// Delete mode's second pass (REST-EQ) is running.
    second_pass: DFF<Bit>,
    /// The ROM word being carried out while its selection is sent.
    action: DFF<Bits<13>>,
    /// The head words of the last cycle (those the comparator looked at): the Decide
    /// cycle sends the selection's first word from here, because both memories have
    /// fetched their next word meanwhile.
    held_u: DFF<TupleWord>,
    held_l: DFF<TupleWord>,
    k: DFF<Bits<12>>,
    second_null: DFF<Bit>,
    /// COMPARE ATTRIBUTES: word position in its tuple of the next word written into L- (and
    /// U-) memory.
    write_pos: DFF<Bits<12>>,
    /// The second attribute's first word, as written, had its sign bit set (float
    /// transform of its second word).
    write_negative: DFF<Bit>,
    /// L advances of the current command (the `l_taken` output).
    l_taken_count: DFF<Bits<32>>,
    // ---- U-memory
    u_base: DFF<Bits<P>>,
    u_end: DFF<Bits<P>>,
    u_write: DFF<Bits<P>>,
    u_len: DFF<Bits<12>>,
    u_len_known: DFF<Bit>,
    u_count: DFF<Bits<16>>,
    load_count: DFF<Bits<16>>,
    load_overflowed: DFF<Bit>,
    // ---- L-memory
    l_write: DFF<Bits<P>>,
    /// `l_write` one cycle late: with the registered write (two-cycle mode) the words
    /// before it are in the memories, so the readers wait for it.
    l_write_late: DFF<Bits<P>>,
    /// The writer's pointer the readers see: `l_write_late` or `l_write`.
    l_stored: Signal<Local, Bits<P>>,
    registered_write: Constant<Bit>,
    l_base: DFF<Bits<P>>,
    l_mark: DFF<Bits<P>>,
    l_eos_written: DFF<Bit>,
    /// L's reader must go back to `seek_at_l`, a word not written yet (the reader, and
    /// LADR* with it, may jump past the writer when it skips a tuple that has not arrived):
    /// it restarts there once the writer has passed it, and L's head is not there before.
    seek_l: DFF<Bit>,
    seek_at_l: DFF<Bits<P>>,
    // ---- errors
    command_error_flag: DFF<Bit>,
    u_overflow_flag: DFF<Bit>,
    l_overflow_flag: DFF<Bit>,
    parity_flag: DFF<Bit>,
    // ---- stored parity (see the module doc)
    ones2: Constant<Bits<2>>,
    /// The arriving word (an end-of-stream beat's parity made good: data 0, parity 11) …
    in_word: Signal<Local, TupleWord>,
    /// … folded over its lines: what the memories store.
    fold_in: ParityFold,
    /// The words the memories hold, unfolded.
    unfold_u: ParityFold,
    unfold_l: ParityFold,
    u_check_data: Signal<Local, Bits<16>>,
    u_check_parity: Signal<Local, Bits<2>>,
    l_check_data: Signal<Local, Bits<16>>,
    l_check_parity: Signal<Local, Bits<2>>,
    u_word_ok: Signal<Local, Bit>,
    l_word_ok: Signal<Local, Bit>,
    // ---- combinational
    word_u: Signal<Local, TupleWord>,
    word_l: Signal<Local, TupleWord>,
    eos_word: Signal<Local, TupleWord>,
    l_len: Signal<Local, Bits<P>>,
    l_full: Signal<Local, Bit>,
    /// L's reader waits for a word the writer has not written (not a restart in flight).
    l_starved: Signal<Local, Bit>,
    /// L's head word is the one the control wants (the reader's, no restart pending) …
    l_ok: Signal<Local, Bit>,
    /// … and U's, or U has no tuple to compare.
    u_ok: Signal<Local, Bit>,
    /// Compare: both heads are there, the comparator works on them (and both readers move
    /// to the key's next word, whatever it says).
    comparing: Signal<Local, Bit>,
    /// What the control asks of the readers this cycle: take the head word …
    pop_u: Signal<Local, Bit>,
    pop_l: Signal<Local, Bit>,
    /// … or go back to a tuple's start (L's head is used once the word there is written:
    /// `restart_l_written`, else after `seek_l`).
    restart_u: Signal<Local, Bit>,
    restart_u_at: Signal<Local, Bits<P>>,
    restart_l: Signal<Local, Bit>,
    restart_l_at: Signal<Local, Bits<P>>,
    restart_l_written: Signal<Local, Bit>,
    /// The action's moves leave the reader where the next comparison starts (see
    /// `apply_now`): no restart.
    keep_u: Signal<Local, Bit>,
    keep_l: Signal<Local, Bit>,
    l_accept: Signal<Local, Bit>,
    input_fire: Signal<Local, Bit>,
    u_present: Signal<Local, Bit>,
    l_present: Signal<Local, Bit>,
    u_null: Signal<Local, Bit>,
    l_null: Signal<Local, Bit>,
    /// U's word as the comparator sees it (for COMPARE ATTRIBUTES, the second attribute,
    /// transformed when it was written).
    u_data: Signal<Local, Bits<16>>,
    /// COMPARE ATTRIBUTES: the transform of the word written into U-memory.
    write_mask: Signal<Local, Bits<16>>,
    u_write_word: Signal<Local, TupleWord>,
    in_data: Signal<Local, Bits<16>>,
    words_differ: Signal<Local, Bit>,
    u_before_l: Signal<Local, Bit>,
    decided: Signal<Local, Bit>,
    situation: Signal<Local, Bits<4>>,
    /// Both tuples are there with normal keys: the comparison's situation (Less, Equal,
    /// Greater) and one of the three ROM slices apply.
    both_normal: Signal<Local, Bit>,
    slice_address: Signal<Local, Bits<7>>,
    dp_u: Signal<Local, Bit>,
    dp_l: Signal<Local, Bit>,
    dp_bits: Signal<Local, Bits<2>>,
    u_word_data: Signal<Local, Bits<16>>,
    deciding: Signal<Local, Bit>,
    /// The partial-U gate fires: SORT-EX with `u_partial`, no U tuple left, an L tuple there.
    partial_end: Signal<Local, Bit>,
    /// The control ROM's word, or the gate's end word in its place.
    rom_word: Signal<Local, Bits<13>>,
    act_output: Signal<Local, Bits<2>>,
    apply_now: Signal<Local, Bit>,
    l_advanced: Signal<Local, Bits<P>>,
    new_u_base: Signal<Local, Bits<P>>,
    new_l_base: Signal<Local, Bits<P>>,
    /// The writer's distance ahead of each place L's reader restarts at, and whether the
    /// word there is written (the writer 1..=2^A words ahead of it): `l_base`, `l_base +
    /// len` (the base advanced), `l_mark`, 0 and `seek_at_l`, each a [RingReach], worked
    /// out from registers beside the choice of the place (P-bit signals: Verilog would
    /// compute the differences 32 bits wide).
    l_ahead_base: Signal<Local, Bits<P>>,
    l_ahead_base_end: Signal<Local, Bits<P>>,
    l_ahead_mark: Signal<Local, Bits<P>>,
    l_ahead_seek: Signal<Local, Bits<P>>,
    l_reach_base: RingReach<P>,
    l_reach_base_end: RingReach<P>,
    l_reach_mark: RingReach<P>,
    l_reach_zero: RingReach<P>,
    l_reach_seek: RingReach<P>,
    /// … and of `new_l_base`.
    l_reach_new_base: Signal<Local, Bit>,
    /// The address after the current U (L) tuple, `u_base + u_len` (`l_base +
    /// tuple_words`), registered from the next values of both, and whether the head word
    /// is the tuple's last (the address after the reader's head is that address): the
    /// end of a selected tuple from registers, not from the
    /// word's `last` line (issue 6: memory → `last` → `apply_now` → read address was the
    /// critical path on both parts). Tuples are of one length in each memory. A `last`
    /// line flipped in memory no longer moves the control; the word's parity reports it.
    u_end_addr: DFF<Bits<P>>,
    /// `u_end_addr`'s next value, chosen beside every assignment of `u_base` and `u_len`,
    /// so that no adder follows the choice of the base (the HX8K's critical path on four
    /// seeds of four in session 18: `apply_now` → `u_base` → `u_base + u_len`). Unchanged
    /// by default; `len` (`u_len`'s next value) for a base of 0, and at LOAD, which
    /// measures `u_len` while `u_base` is 0 (it is set to 0 as every command starts);
    /// `u_end_addr + len` for a base moved one tuple on (`u_end_addr` is `u_base + u_len`).
    next_u_end: Signal<Local, Bits<P>>,
    new_u_end: Signal<Local, Bits<P>>,
    u_len_next: Signal<Local, Bits<P>>,
    u_end_advance: Signal<Local, Bits<P>>,
    /// The address after each reader's head word, as P-bit signals: compared in the
    /// Verilog expression itself, the sum would be 32 bits wide and not wrap (a hang at the
    /// pointers' wrap on the Verilated model, which the rust-hdl simulation does not show).
    u_after_head: Signal<Local, Bits<P>>,
    l_after_head: Signal<Local, Bits<P>>,
    u_at_last: Signal<Local, Bit>,
    l_end_addr: DFF<Bits<P>>,
    /// `l_end_addr`'s next value, chosen like `next_u_end` beside every assignment of
    /// `l_base` (the HX8K's critical path on one seed of four in session 18 ended in the
    /// adder after `l_base`'s choice): `l_base + len` while the base stays (`len` is
    /// `tuple_words`, a setting, so it is added every cycle, from registers), `len` for a
    /// base of 0, and for the action's new base `l_mark + len`, `l_base + 2 len` or
    /// `l_base + len`.
    next_l_end: Signal<Local, Bits<P>>,
    new_l_end: Signal<Local, Bits<P>>,
    l_base_end: Signal<Local, Bits<P>>,
    l_advanced_end: Signal<Local, Bits<P>>,
    l_mark_end: Signal<Local, Bits<P>>,
    l_at_last: Signal<Local, Bit>,
    emit_fire: Signal<Local, Bit>,
    wait_for_l: Signal<Local, Bit>,
    /// COMPARE ATTRIBUTES waits for a whole tuple (not for the word at the write pointer).
    tuple_stuck: Signal<Local, Bit>,
}

impl<const A: usize, const P: usize> Default for OperationPart<A, P> {
    /// The two-cycle read for deep memories ([DEEP_MEMORY_ADDRESS_BITS]: the Delta merger's
    /// 32K-word memories, 40 ECP5 blocks each, whose word comes out of the blocks'
    /// multiplexer 12.8 ns after the clock), else the one-cycle read (the iCE40
    /// configurations).
    fn default() -> Self {
        Self::new(A >= DEEP_MEMORY_ADDRESS_BITS)
    }
}

impl<const A: usize, const P: usize> OperationPart<A, P> {
    /// `registered`: both memories are read through two-cycle [HeadReader]s and written
    /// through a register ([BlockRam::new]), else read through one-cycle ones; in
    /// both, a restart is registered ([HeadReader::with_registered_restart]).
    pub fn new(registered: bool) -> Self {
        assert_eq!(P, A + 1, "OperationPart<A, P> needs P = A + 1");
        assert!((4..=16).contains(&A));
        Self {
            clock: Default::default(),
            data_in: Default::default(),
            selected: Default::default(),
            settings: Default::default(),
            clear: Default::default(),
            command_error: Default::default(),
            u_overflow: Default::default(),
            l_overflow: Default::default(),
            parity_error: Default::default(),
            u_tuples: Default::default(),
            busy: Default::default(),
            l_taken: Default::default(),
            input_unneeded: Default::default(),
            // (With the two-cycle read the writes are registered too: on the ECP5 the
            // stream's handshake → the write enables of 64 blocks was the Delta core's
            // critical path once the reads were registered, 15.0 ns.)
            memory_u: BlockRam::new(registered),
            memory_l: BlockRam::new(registered),
            reader_u: HeadReader::with_registered_restart(registered, REGISTERED_RESTART),
            reader_l: HeadReader::with_registered_restart(registered, REGISTERED_RESTART),
            restart_waits_for_writer: Constant::new(REGISTERED_RESTART),
            decoder: RomTable::command_decoder(),
            control: RomTable::control_rom(),
            control_less: RomTable::control_rom_slice(Situation::Less),
            control_equal: RomTable::control_rom_slice(Situation::Equal),
            control_greater: RomTable::control_rom_slice(Situation::Greater),
            capacity: Constant::new((1u64 << A).into()),
            sign16: Constant::new(0x8000.into()),
            ones16: Constant::new(0xffff.into()),
            rest_eq_program: Constant::new((Program::RestEq as u64).into()),
            delete_keep_program: Constant::new((Program::DeleteKeep as u64).into()),
            load_program: Constant::new((Program::Load as u64).into()),
            sort_ex_program: Constant::new((Program::SortEx as u64).into()),
            partial_end_word: Constant::new((partial_end_word() as u64).into()),
            state: Default::default(),
            current_program: Default::default(),
            uses_u: Default::default(),
            is_comp: Default::default(),
            is_merge: Default::default(),
            is_delete: Default::default(),
            second_pass: Default::default(),
            action: Default::default(),
            held_u: Default::default(),
            held_l: Default::default(),
            k: Default::default(),
            second_null: Default::default(),
            write_pos: Default::default(),
            write_negative: Default::default(),
            l_taken_count: Default::default(),
            u_base: Default::default(),
            u_end: Default::default(),
            u_write: Default::default(),
            u_len: Default::default(),
            u_len_known: Default::default(),
            u_count: Default::default(),
            load_count: Default::default(),
            load_overflowed: Default::default(),
            l_write: Default::default(),
            l_write_late: Default::default(),
            l_stored: Default::default(),
            registered_write: Constant::new(registered),
            l_base: Default::default(),
            l_mark: Default::default(),
            l_eos_written: Default::default(),
            seek_l: Default::default(),
            seek_at_l: Default::default(),
            command_error_flag: Default::default(),
            u_overflow_flag: Default::default(),
            l_overflow_flag: Default::default(),
            parity_flag: Default::default(),
            ones2: Constant::new(3.into()),
            in_word: Default::default(),
            fold_in: Default::default(),
            unfold_u: Default::default(),
            unfold_l: Default::default(),
            u_check_data: Default::default(),
            u_check_parity: Default::default(),
            l_check_data: Default::default(),
            l_check_parity: Default::default(),
            u_word_ok: Default::default(),
            l_word_ok: Default::default(),
            word_u: Default::default(),
            word_l: Default::default(),
            eos_word: Default::default(),
            l_len: Default::default(),
            l_full: Default::default(),
            l_starved: Default::default(),
            l_ok: Default::default(),
            u_ok: Default::default(),
            comparing: Default::default(),
            pop_u: Default::default(),
            pop_l: Default::default(),
            restart_u: Default::default(),
            restart_u_at: Default::default(),
            restart_l: Default::default(),
            restart_l_at: Default::default(),
            restart_l_written: Default::default(),
            keep_u: Default::default(),
            keep_l: Default::default(),
            l_accept: Default::default(),
            input_fire: Default::default(),
            u_present: Default::default(),
            l_present: Default::default(),
            u_null: Default::default(),
            l_null: Default::default(),
            u_data: Default::default(),
            write_mask: Default::default(),
            u_write_word: Default::default(),
            in_data: Default::default(),
            words_differ: Default::default(),
            u_before_l: Default::default(),
            decided: Default::default(),
            situation: Default::default(),
            both_normal: Default::default(),
            slice_address: Default::default(),
            dp_u: Default::default(),
            dp_l: Default::default(),
            dp_bits: Default::default(),
            u_word_data: Default::default(),
            deciding: Default::default(),
            partial_end: Default::default(),
            rom_word: Default::default(),
            act_output: Default::default(),
            apply_now: Default::default(),
            l_advanced: Default::default(),
            new_u_base: Default::default(),
            new_l_base: Default::default(),
            l_ahead_base: Default::default(),
            l_ahead_base_end: Default::default(),
            l_ahead_mark: Default::default(),
            l_ahead_seek: Default::default(),
            l_reach_base: RingReach::new(0),
            l_reach_base_end: RingReach::new(0),
            l_reach_mark: RingReach::new(0),
            l_reach_zero: RingReach::new(0),
            l_reach_seek: RingReach::new(0),
            l_reach_new_base: Default::default(),
            u_end_addr: Default::default(),
            next_u_end: Default::default(),
            new_u_end: Default::default(),
            u_len_next: Default::default(),
            u_end_advance: Default::default(),
            u_after_head: Default::default(),
            l_after_head: Default::default(),
            u_at_last: Default::default(),
            l_end_addr: Default::default(),
            next_l_end: Default::default(),
            new_l_end: Default::default(),
            l_base_end: Default::default(),
            l_advanced_end: Default::default(),
            l_mark_end: Default::default(),
            l_at_last: Default::default(),
            emit_fire: Default::default(),
            wait_for_l: Default::default(),
            tuple_stuck: Default::default(),
        }
    }
}

impl<const A: usize, const P: usize> StoredWords for OperationPart<A, P> {
    /// U-memory's live words: the loaded relation (kept from command to command); L's: from
    /// LADR* (the words a command may still read again) to the write pointer.
    fn live_memories(&mut self) -> Vec<LiveMemory<'_>> {
        // (With the registered write the word at `l_write - 1` may not be stored yet.)
        let l_stored = if self.registered_write.val() {
            ("l_write_late", self.l_write_late.q.val())
        } else {
            ("l_write", self.l_write.q.val())
        };
        vec![
            LiveMemory {
                name: "U-memory".into(),
                range: LiveRange::Prefix {
                    end: LiveRegister::new("u_end", self.u_end.q.val()),
                },
                memory: &mut self.memory_u,
                path: "memory_u".into(),
            },
            LiveMemory {
                name: "L-memory".into(),
                range: LiveRange::ring(("l_mark", self.l_mark.q.val()), l_stored, P),
                memory: &mut self.memory_l,
                path: "memory_l".into(),
            },
        ]
    }
}

// rust-hdl's `hdl_gen` has no match guards, so an arm's condition is an `if` inside it.
#[allow(clippy::collapsible_match)]
impl<const A: usize, const P: usize> Logic for OperationPart<A, P> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            l_write_late,
            state,
            current_program,
            uses_u,
            is_comp,
            is_merge,
            is_delete,
            second_pass,
            action,
            held_u,
            held_l,
            k,
            second_null,
            write_pos,
            write_negative,
            l_taken_count,
            u_base,
            u_end,
            u_write,
            u_len,
            u_len_known,
            u_count,
            load_count,
            load_overflowed,
            l_write,
            l_base,
            l_mark,
            l_eos_written,
            seek_l,
            seek_at_l,
            u_end_addr,
            l_end_addr,
            command_error_flag,
            u_overflow_flag,
            l_overflow_flag,
            parity_flag
        );
        clock!(self, clock, memory_u, memory_l, reader_u, reader_l);
        self.command_error.next = self.command_error_flag.q.val();
        self.u_overflow.next = self.u_overflow_flag.q.val();
        self.l_overflow.next = self.l_overflow_flag.q.val();
        self.parity_error.next = self.parity_flag.q.val();
        self.u_tuples.next = self.u_count.q.val();
        self.busy.next = self.state.q.val() != OperationState::Idle;
        self.l_taken.next = self.l_taken_count.q.val();
        self.input_unneeded.next =
            (self.state.q.val() == OperationState::Drain) & !self.l_eos_written.q.val();
        self.decoder.address.next = self.settings.val().command;

        self.next_u_end.next = self.u_end_addr.q.val();
        self.l_len.next = bit_cast::<P, 12>(self.settings.val().tuple_words);
        self.l_base_end.next = self.l_base.q.val() + self.l_len.val();
        self.next_l_end.next = self.l_base_end.val();
        // ---- what the memories say: the readers' head words
        self.reader_u.read_data.next = self.memory_u.read_data.val();
        self.reader_l.read_data.next = self.memory_l.read_data.val();
        self.memory_u.read_address.next = self.reader_u.read_address.val();
        self.memory_u.read_enable.next = self.reader_u.read_enable.val();
        self.memory_l.read_address.next = self.reader_l.read_address.val();
        self.memory_l.read_enable.next = self.reader_l.read_enable.val();
        // The words before a writer's pointer are written: L's stream, U's loaded relation
        // (COMPARE ATTRIBUTES: U is written beside L). With the registered write a word is
        // in the memory one cycle after `l_write` passed it. (LOAD ends with its
        // end-of-stream beat, a cycle or more after its last word: `u_end` is late
        // enough.)
        self.l_write_late.d.next = self.l_write.q.val();
        if self.registered_write.val() {
            self.l_stored.next = self.l_write_late.q.val();
        } else {
            self.l_stored.next = self.l_write.q.val();
        }
        self.reader_l.write_ptr.next = self.l_stored.val();
        if self.is_comp.q.val() {
            self.reader_u.write_ptr.next = self.l_stored.val();
        } else {
            self.reader_u.write_ptr.next = self.u_end.q.val();
        }
        self.l_ok.next = self.reader_l.head_ok.val() & !self.seek_l.q.val();
        // Unfold the stored parity (see the module doc).
        self.unfold_u.word_in.next = self.reader_u.head.val();
        self.unfold_l.word_in.next = self.reader_l.head.val();
        self.word_u.next = self.unfold_u.word_out.val();
        self.word_l.next = self.unfold_l.word_out.val();
        // (Through flat signals: Verilog cannot slice a struct's field.)
        self.u_check_data.next = self.word_u.val().data;
        self.u_check_parity.next = self.word_u.val().parity;
        self.l_check_data.next = self.word_l.val().data;
        self.l_check_parity.next = self.word_l.val().parity;
        self.u_word_ok.next = (self.u_check_data.val().get_bits::<8>(8).xor()
            != self.u_check_parity.val().get_bit(1))
            & (self.u_check_data.val().get_bits::<8>(0).xor()
                != self.u_check_parity.val().get_bit(0));
        self.l_word_ok.next = (self.l_check_data.val().get_bits::<8>(8).xor()
            != self.l_check_parity.val().get_bit(1))
            & (self.l_check_data.val().get_bits::<8>(0).xor()
                != self.l_check_parity.val().get_bit(0));
        self.u_word_data.next = self.word_u.val().data;
        self.held_u.d.next = self.word_u.val();
        self.held_l.d.next = self.word_l.val();
        self.eos_word.next = self.word_l.val();
        self.eos_word.next.data = 0.into();
        self.eos_word.next.parity = 0.into();
        self.eos_word.next.null = false;
        self.eos_word.next.dup = false;
        self.eos_word.next.last = false;
        self.eos_word.next.eos = true;
        self.u_after_head.next = self.reader_u.head_ptr.val() + 1;
        self.l_after_head.next = self.reader_l.head_ptr.val() + 1;
        self.u_at_last.next = self.u_after_head.val() == self.u_end_addr.q.val();
        self.l_at_last.next = self.l_after_head.val() == self.l_end_addr.q.val();
        // Pointers are one bit wider than addresses: occupancy 2^A (full) differs from 0.
        // (`l_write - l_mark == 2^A` as `l_write ^ l_mark == 2^A`: no carry chain.)
        self.l_full.next = (self.l_write.q.val() ^ self.l_mark.q.val()) == self.capacity.val();
        // (A restart in flight leaves the head empty but at a written word.)
        self.l_starved.next =
            self.seek_l.q.val() | (self.reader_l.head_ptr.val() == self.l_write.q.val());
        // The reader (and LADR* with it) may jump past the writer when it skips a tuple
        // that has not arrived yet: it restarts at a word once the writer was 1..=2^A
        // words ahead of it (`seek_l`).
        self.l_ahead_base.next = self.l_write.q.val() - self.l_base.q.val();
        self.l_ahead_mark.next = self.l_write.q.val() - self.l_mark.q.val();
        self.l_ahead_base_end.next = self.l_write.q.val() - self.l_base_end.val();
        self.l_ahead_seek.next = self.l_write.q.val() - self.seek_at_l.q.val();
        self.l_reach_base.ahead.next = self.l_ahead_base.val();
        self.l_reach_mark.ahead.next = self.l_ahead_mark.val();
        self.l_reach_zero.ahead.next = self.l_write.q.val();
        self.l_reach_base_end.ahead.next = self.l_ahead_base_end.val();
        self.l_reach_seek.ahead.next = self.l_ahead_seek.val();

        // ---- write side: L-memory (and U-memory for COMPARE ATTRIBUTES, or U for LOAD)
        // Fold the parity (see the module doc): an end-of-stream beat is stored as data 0
        // with good parity, so that it is checked like any word.
        // (`in_word` first, then the fold's input written once: a fold input written twice
        // in the block that reads the fold's output loops forever in an event-driven
        // Verilog simulator, each write waking the block again.)
        self.in_word.next = self.data_in.word.val();
        if self.data_in.word.val().eos {
            self.in_word.next.parity = self.ones2.val();
        }
        self.fold_in.word_in.next = self.in_word.val();
        self.memory_l.write_address.next = bit_cast::<A, P>(self.l_write.q.val());
        self.memory_l.write_data.next = self.fold_in.word_out.val();
        if self.data_in.word.val().eos {
            self.memory_l.write_data.next.data = 0.into();
        }
        self.memory_l.write_enable.next = false;
        self.memory_u.write_address.next = bit_cast::<A, P>(self.l_write.q.val());
        self.memory_u.write_data.next = self.fold_in.word_out.val();
        self.memory_u.write_enable.next = false;
        // COMPARE ATTRIBUTES: the second attribute's words go into U-memory transformed as
        // the IN module transformed the key's (signed: sign bit of word 0; float:
        // totalOrder on words 0 and 1), so the comparator compares both as unsigned words
        // straight from the memories (the transform is not on its path). Only the
        // comparator reads U-memory during COMPARE ATTRIBUTES (the output is L's tuple; the
        // tag word, read for the null flag, is never transformed).
        self.in_data.next = self.data_in.word.val().data;
        self.write_mask.next = 0.into();
        if !self.data_in.word.val().eos {
            if self.write_pos.q.val() == self.settings.val().second_offset {
                if self.settings.val().second_type == 1 {
                    self.write_mask.next = self.sign16.val();
                } else if self.settings.val().second_type == 2 {
                    if self.in_data.val().get_bit(15) {
                        self.write_mask.next = self.ones16.val();
                    } else {
                        self.write_mask.next = self.sign16.val();
                    }
                }
            } else if (self.write_pos.q.val() == self.settings.val().second_offset + 1)
                & (self.settings.val().second_type == 2)
                & self.write_negative.q.val()
            {
                self.write_mask.next = self.ones16.val();
            }
        }
        self.u_write_word.next = self.fold_in.word_out.val();
        self.u_write_word.next.data = self.in_data.val() ^ self.write_mask.val();
        self.l_accept.next = (self.state.q.val() != OperationState::Idle)
            & (self.state.q.val() != OperationState::Load)
            & (self.state.q.val() != OperationState::Finish)
            & !self.l_eos_written.q.val()
            & !self.l_full.val();
        self.data_in.ready.next =
            self.l_accept.val() | (self.state.q.val() == OperationState::Load);
        self.input_fire.next = self.data_in.valid.val() & self.data_in.ready.val();
        if self.input_fire.val() & (self.state.q.val() == OperationState::Load) {
            // LOAD: U-memory from address 0; its tuple length is measured on the way.
            self.memory_u.write_address.next = bit_cast::<A, P>(self.u_write.q.val());
            if self.data_in.word.val().eos {
                if self.load_overflowed.q.val() {
                    self.u_end.d.next = 0.into();
                    self.u_count.d.next = 0.into();
                } else {
                    self.u_end.d.next = self.u_write.q.val();
                    self.u_count.d.next = self.load_count.q.val();
                }
                self.state.d.next = OperationState::Finish;
            } else if self.u_write.q.val() == self.capacity.val() {
                self.load_overflowed.d.next = true;
                self.u_overflow_flag.d.next = true;
            } else {
                self.memory_u.write_enable.next = true;
                self.u_write.d.next = self.u_write.q.val() + 1;
                if self.data_in.word.val().last {
                    self.load_count.d.next = self.load_count.q.val() + 1;
                    if !self.u_len_known.q.val() {
                        self.u_len.d.next = bit_cast::<12, P>(self.u_write.q.val() + 1);
                        self.next_u_end.next = bit_cast::<P, 12>(self.u_len.d.val());
                        self.u_len_known.d.next = true;
                    }
                }
            }
            if !self.data_in.word.val().eos & self.data_in.word.val().last {
                // l_taken: every tuple of a LOAD stream is taken (stored, or dropped on
                // overflow).
                self.l_taken_count.d.next = self.l_taken_count.q.val() + 1;
            }
        } else if self.input_fire.val() {
            self.memory_l.write_enable.next = true;
            self.memory_u.write_enable.next = self.is_comp.q.val();
            self.memory_u.write_data.next = self.u_write_word.val();
            if self.data_in.word.val().last | self.data_in.word.val().eos {
                self.write_pos.d.next = 0.into();
            } else {
                self.write_pos.d.next = self.write_pos.q.val() + 1;
            }
            if self.write_pos.q.val() == self.settings.val().second_offset {
                self.write_negative.d.next = self.in_data.val().get_bit(15);
            }
            self.l_write.d.next = self.l_write.q.val() + 1;
            if self.data_in.word.val().eos {
                self.l_eos_written.d.next = true;
            }
        }

        // ---- comparator: U and L head tuples, key word k
        if self.is_comp.q.val() {
            self.u_present.next = !self.word_l.val().eos;
            self.u_null.next = self.second_null.q.val();
        } else {
            // Commands that do not read U see it empty (as the ROM's rules assume).
            self.u_present.next = self.uses_u.q.val() & (self.u_base.q.val() != self.u_end.q.val());
            self.u_null.next = self.word_u.val().null;
        }
        self.l_present.next = !self.word_l.val().eos;
        self.l_null.next = self.word_l.val().null;
        // (COMPARE ATTRIBUTES: U-memory holds the second attribute transformed already.)
        self.u_data.next = self.word_u.val().data;
        self.words_differ.next = self.u_data.val() != self.word_l.val().data;
        if self.is_merge.q.val() & self.settings.val().descending {
            self.u_before_l.next = self.u_data.val() > self.word_l.val().data;
        } else {
            self.u_before_l.next = self.u_data.val() < self.word_l.val().data;
        }
        self.decided.next = !self.u_present.val()
            | !self.l_present.val()
            | self.u_null.val()
            | self.l_null.val()
            | self.words_differ.val()
            | (self.k.q.val() + 1 >= self.settings.val().key_words);
        // Situation codes of control_rom::Situation.
        if !self.l_present.val() {
            if !self.u_present.val() {
                self.situation.next = 0.into();
            } else if self.u_null.val() {
                self.situation.next = 2.into();
            } else {
                self.situation.next = 1.into();
            }
        } else if !self.u_present.val() {
            if self.l_null.val() {
                self.situation.next = 8.into();
            } else {
                self.situation.next = 3.into();
            }
        } else if self.u_null.val() & self.l_null.val() {
            self.situation.next = 10.into();
        } else if self.u_null.val() {
            self.situation.next = 4.into();
        } else if self.l_null.val() {
            self.situation.next = 9.into();
        } else {
            // Less, Equal or Greater: the slices below (this address is not used).
            self.situation.next = 6.into();
        }
        self.both_normal.next =
            self.u_present.val() & self.l_present.val() & !self.u_null.val() & !self.l_null.val();
        self.dp_u.next = !self.is_comp.q.val() & self.u_present.val() & self.word_u.val().dup;
        self.dp_l.next = self.l_present.val() & self.word_l.val().dup;
        self.dp_bits.next = 0.into();
        if self.dp_u.val() & self.dp_l.val() {
            self.dp_bits.next = 3.into();
        } else if self.dp_u.val() {
            self.dp_bits.next = 2.into();
        } else if self.dp_l.val() {
            self.dp_bits.next = 1.into();
        }
        self.control.address.next = (bit_cast::<11, 5>(self.current_program.q.val()) << 6)
            | (bit_cast::<11, 4>(self.situation.val()) << 2)
            | bit_cast::<11, 2>(self.dp_bits.val());
        self.slice_address.next = (bit_cast::<7, 5>(self.current_program.q.val()) << 2)
            | bit_cast::<7, 2>(self.dp_bits.val());
        self.control_less.address.next = self.slice_address.val();
        self.control_equal.address.next = self.slice_address.val();
        self.control_greater.address.next = self.slice_address.val();
        // The partial-U gate (control_rom::partial_end): in SORT-EX's partial-U mode, U out
        // of tuples while L has one ends the command instead of emitting L (whose rest may
        // sort after the run's tuples not loaded yet). Only program SORT-EX is gated.
        self.partial_end.next = self.settings.val().u_partial
            & (self.current_program.q.val() == self.sort_ex_program.val())
            & !self.u_present.val()
            & self.l_present.val();
        if self.partial_end.val() {
            self.rom_word.next = self.partial_end_word.val();
        } else if !self.both_normal.val() {
            self.rom_word.next = self.control.data.val();
        } else if !self.words_differ.val() {
            self.rom_word.next = self.control_equal.data.val();
        } else if self.u_before_l.val() {
            self.rom_word.next = self.control_less.data.val();
        } else {
            self.rom_word.next = self.control_greater.data.val();
        }
        // U's head is needed while it has a tuple (COMPARE ATTRIBUTES: while L has one).
        self.u_ok.next = self.reader_u.head_ok.val() | !self.u_present.val();
        self.comparing.next =
            (self.state.q.val() == OperationState::Compare) & self.l_ok.val() & self.u_ok.val();
        self.deciding.next = self.comparing.val() & self.decided.val();
        // Stored parity of the head words the comparator looks at.
        if self.comparing.val()
            & (!self.l_word_ok.val()
                | (!self.is_comp.q.val() & self.u_present.val() & !self.u_word_ok.val()))
        {
            self.parity_flag.d.next = true;
        }
        // The decision is registered: what it does comes from `action` in the next cycle
        // (state Decide), so the comparator is not on the read-address path.
        self.act_output.next = self.action.q.val().get_bits::<2>(0);

        // ---- selection out
        self.selected.valid.next = false;
        self.selected.word.next = self.word_u.val();
        self.selected.from_u.next = true;
        self.selected.unit_end.next = false;
        self.emit_fire.next = false;
        match self.state.q.val() {
            OperationState::Decide => {
                // A decision made on the key's first word selects a tuple whose first word
                // the comparator looked at: it leaves in the Decide cycle, from `held_*`.
                if (self.k.q.val() == 0)
                    & (self.act_output.val() != 0)
                    & !self.action.q.val().get_bit(12)
                {
                    self.selected.valid.next = true;
                    self.selected.word.next = self.held_u.q.val();
                    if self.act_output.val() == 2 {
                        self.selected.word.next = self.held_l.q.val();
                        self.selected.from_u.next = false;
                    }
                    self.emit_fire.next = self.selected.ready.val();
                }
            }
            OperationState::EmitU => {
                self.selected.valid.next = self.reader_u.head_ok.val();
                self.selected.unit_end.next = self.u_at_last.val() & (self.act_output.val() == 1);
                self.emit_fire.next = self.selected.ready.val() & self.reader_u.head_ok.val();
            }
            OperationState::EmitL => {
                self.selected.valid.next = self.l_ok.val();
                self.selected.word.next = self.word_l.val();
                self.selected.from_u.next = false;
                self.selected.unit_end.next = self.l_at_last.val();
                self.emit_fire.next = self.selected.ready.val() & self.l_ok.val();
            }
            OperationState::Finish => {
                self.selected.valid.next = true;
                self.selected.word.next = self.eos_word.val();
                self.selected.from_u.next = false;
                self.selected.unit_end.next = true;
            }
            _ => {}
        }
        // Stored parity of every word emitted from EmitU and EmitL: the output control part
        // checks what it stores, but not a word whose end-of-stream line was flipped in
        // memory, which ends the selected stream there (100,000 memory-word experiments).
        if self.emit_fire.val()
            & (((self.state.q.val() == OperationState::EmitU) & !self.u_word_ok.val())
                | ((self.state.q.val() == OperationState::EmitL) & !self.l_word_ok.val()))
        {
            self.parity_flag.d.next = true;
        }

        // ---- address moves of the current action (applied at its decision when it
        // selects nothing, else as its selection's last word leaves)
        self.l_advanced_end.next = self.l_base_end.val() + self.l_len.val();
        self.l_mark_end.next = self.l_mark.q.val() + self.l_len.val();
        if self.action.q.val().get_bit(3) {
            self.l_advanced.next = self.l_base_end.val();
        } else {
            self.l_advanced.next = self.l_base.q.val();
        }
        // (`u_end_addr` is `u_base + u_len` of the cycle: the base moved one tuple on ends
        // at `u_end_addr + len`.)
        self.u_len_next.next = bit_cast::<P, 12>(self.u_len.d.val());
        self.u_end_advance.next = self.u_end_addr.q.val() + self.u_len_next.val();
        if self.action.q.val().get_bit(4) {
            self.new_u_base.next = 0.into();
            self.new_u_end.next = self.u_len_next.val();
        } else if self.action.q.val().get_bit(2) {
            self.new_u_base.next = self.u_base.q.val() + bit_cast::<P, 12>(self.u_len.q.val());
            self.new_u_end.next = self.u_end_advance.val();
        } else {
            self.new_u_base.next = self.u_base.q.val();
            self.new_u_end.next = self.u_end_addr.q.val();
        }
        if self.action.q.val().get_bit(5) {
            self.new_l_base.next = self.l_mark.q.val();
            self.new_l_end.next = self.l_mark_end.val();
            self.l_reach_new_base.next = self.l_reach_mark.reach.val();
        } else if self.action.q.val().get_bit(3) {
            self.new_l_base.next = self.l_advanced.val();
            self.new_l_end.next = self.l_advanced_end.val();
            self.l_reach_new_base.next = self.l_reach_base_end.reach.val();
        } else {
            self.new_l_base.next = self.l_advanced.val();
            self.new_l_end.next = self.l_base_end.val();
            self.l_reach_new_base.next = self.l_reach_base.reach.val();
        }
        self.apply_now.next = false;
        self.wait_for_l.next = false;
        self.tuple_stuck.next = false;
        self.pop_u.next = false;
        self.pop_l.next = false;
        self.restart_u.next = false;
        self.restart_u_at.next = self.u_base.q.val();
        self.restart_l.next = false;
        self.restart_l_at.next = self.l_base.q.val();
        self.restart_l_written.next = self.l_reach_base.reach.val();
        // The action's moves leave a reader where the next comparison starts when they
        // move its base by what was emitted from it: one tuple if the selection took its
        // tuple (the reader went through it), none if not (Decide sent the reader back to
        // its base). A decision that selects nothing left both readers inside their keys.
        // (The control ROM rewinds U and returns L to LADR* only with selections that
        // restart the reader anyway; the rule does not rely on it.)
        self.keep_u.next = ((self.state.q.val() == OperationState::EmitU)
            | (self.state.q.val() == OperationState::EmitL))
            & !self.action.q.val().get_bit(4)
            & (self.action.q.val().get_bit(2) == self.action.q.val().get_bit(0));
        self.keep_l.next = ((self.state.q.val() == OperationState::EmitU)
            | (self.state.q.val() == OperationState::EmitL))
            & !self.action.q.val().get_bit(5)
            & (self.action.q.val().get_bit(3) == self.action.q.val().get_bit(1));
        match self.state.q.val() {
            OperationState::Idle => {
                // (The writer is at 0 in Idle: a registered restart waits there for the
                // first word.)
                self.restart_u.next = true;
                self.restart_u_at.next = 0.into();
                self.restart_l.next = true;
                self.restart_l_at.next = 0.into();
                self.restart_l_written.next =
                    self.l_reach_zero.reach.val() | self.restart_waits_for_writer.val();
                if self.data_in.valid.val() {
                    // A stream starts: take its command.
                    self.current_program.d.next = self.decoder.data.val().get_bits::<5>(0);
                    self.uses_u.d.next = self.decoder.data.val().get_bit(5);
                    self.is_comp.d.next = self.decoder.data.val().get_bit(6);
                    self.is_merge.d.next = self.decoder.data.val().get_bit(7);
                    self.is_delete.d.next = self.settings.val().delete_mode;
                    self.second_pass.d.next = false;
                    self.l_taken_count.d.next = 0.into();
                    self.k.d.next = 0.into();
                    self.write_pos.d.next = 0.into();
                    self.u_base.d.next = 0.into();
                    self.next_u_end.next = self.u_len_next.val();
                    if self.settings.val().delete_mode {
                        self.current_program.d.next = self.delete_keep_program.val();
                        self.uses_u.d.next = true;
                        self.is_comp.d.next = false;
                        self.is_merge.d.next = false;
                        self.state.d.next = OperationState::Compare;
                    } else if !self.decoder.data.val().get_bit(8) {
                        self.command_error_flag.d.next = true;
                        self.state.d.next = OperationState::Drain;
                    } else if self.decoder.data.val().get_bits::<5>(0) == self.load_program.val() {
                        self.u_write.d.next = 0.into();
                        self.u_len_known.d.next = false;
                        self.load_count.d.next = 0.into();
                        self.load_overflowed.d.next = false;
                        self.state.d.next = OperationState::Load;
                    } else if self.decoder.data.val().get_bit(6) {
                        self.state.d.next = OperationState::CompareTag;
                    } else {
                        self.state.d.next = OperationState::Compare;
                    }
                }
            }
            OperationState::Load => {}
            OperationState::CompareTag => {
                // L's reader is at the tuple's start (`l_base`). U reads the tuple's tag word
                // (its last word) once the whole tuple is in: from registers, so L-memory's
                // output is not on the way to U-memory's read address (the ECP5 critical
                // path in session 19: L-memory → `eos` → U-memory's address, 23.9 ns).
                if self.l_ok.val() & self.word_l.val().eos {
                    // No L tuple left: the comparison stage sees the end.
                    self.state.d.next = OperationState::Compare;
                } else if (self.l_write.q.val() - self.l_base.q.val()) >= self.l_len.val() {
                    // The whole tuple is in: read its tag word.
                    self.restart_u.next = true;
                    self.restart_u_at.next = self.l_base_end.val() - 1;
                    self.state.d.next = OperationState::CompareTagRead;
                } else {
                    self.wait_for_l.next = true;
                    self.tuple_stuck.next = true;
                }
            }
            OperationState::CompareTagRead => {
                if self.reader_u.head_ok.val() {
                    self.second_null.d.next = self.settings.val().second_nullable
                        & self
                            .u_word_data
                            .val()
                            .get_bit(self.settings.val().second_null_bit.index());
                    self.restart_u.next = true;
                    self.restart_u_at.next =
                        self.l_base.q.val() + bit_cast::<P, 12>(self.settings.val().second_offset);
                    self.k.d.next = 0.into();
                    self.state.d.next = OperationState::Compare;
                }
            }
            OperationState::Compare => {
                if !self.l_ok.val() {
                    self.wait_for_l.next = true;
                } else if self.u_ok.val() {
                    // Both readers take the key's word before the comparator has decided
                    // (so it feeds registers only): the next word is needed if it does not
                    // decide, unused if it does (Decide sends the first word from `held_*`
                    // and sends the readers back to the tuples' starts).
                    self.pop_l.next = true;
                    self.pop_u.next = self.reader_u.head_ok.val();
                    if self.deciding.val() {
                        self.action.d.next = self.rom_word.val();
                        self.state.d.next = OperationState::Decide;
                    } else {
                        self.k.d.next = self.k.q.val() + 1;
                    }
                }
            }
            OperationState::Decide => {
                if (self.act_output.val() == 0) | self.action.q.val().get_bit(12) {
                    self.apply_now.next = true;
                } else {
                    // Send the selection from the tuples' first words: a reader goes back to
                    // its tuple's start unless the selection's first word has left from
                    // `held_*` (its reader is at the second word already).
                    if !self.emit_fire.val() | (self.act_output.val() == 2) {
                        self.restart_u.next = true;
                    }
                    if !self.emit_fire.val() | (self.act_output.val() != 2) {
                        self.restart_l.next = true;
                    }
                    if self.act_output.val() == 2 {
                        self.state.d.next = OperationState::EmitL;
                    } else {
                        self.state.d.next = OperationState::EmitU;
                    }
                }
            }
            OperationState::EmitU => {
                if self.emit_fire.val() {
                    self.pop_u.next = true;
                    if self.u_at_last.val() {
                        if self.act_output.val() == 3 {
                            self.state.d.next = OperationState::EmitL;
                        } else {
                            self.apply_now.next = true;
                        }
                    }
                }
            }
            OperationState::EmitL => {
                if !self.l_ok.val() {
                    self.wait_for_l.next = true;
                } else if self.emit_fire.val() {
                    self.pop_l.next = true;
                    if self.l_at_last.val() {
                        self.apply_now.next = true;
                    }
                }
            }
            OperationState::Drain => {
                // Everything written is free: the rest of the input is dropped.
                self.l_mark.d.next = self.l_write.q.val();
                if self.l_eos_written.q.val() {
                    self.state.d.next = OperationState::Finish;
                }
            }
            OperationState::Finish => {
                if self.selected.ready.val() {
                    self.l_write.d.next = 0.into();
                    self.l_base.d.next = 0.into();
                    self.next_l_end.next = self.l_len.val();
                    self.l_mark.d.next = 0.into();
                    self.l_eos_written.d.next = false;
                    self.u_base.d.next = 0.into();
                    self.next_u_end.next = self.u_len_next.val();
                    if self.is_comp.q.val() {
                        // U-memory held a copy of L: nothing is loaded any more.
                        self.u_end.d.next = 0.into();
                        self.u_count.d.next = 0.into();
                    }
                    self.is_comp.d.next = false;
                    self.state.d.next = OperationState::Idle;
                }
            }
        }
        if self.apply_now.val() {
            self.current_program.d.next = self.action.q.val().get_bits::<5>(7);
            self.k.d.next = 0.into();
            self.u_base.d.next = self.new_u_base.val();
            self.next_u_end.next = self.new_u_end.val();
            self.l_base.d.next = self.new_l_base.val();
            self.next_l_end.next = self.new_l_end.val();
            self.restart_u.next = !self.keep_u.val();
            self.restart_u_at.next = self.new_u_base.val();
            self.restart_l.next = !self.keep_l.val();
            self.restart_l_at.next = self.new_l_base.val();
            self.restart_l_written.next = self.l_reach_new_base.val();
            if self.action.q.val().get_bit(6) & !self.is_delete.q.val() {
                self.l_mark.d.next = self.l_advanced.val();
            }
            if self.action.q.val().get_bit(3) {
                self.l_taken_count.d.next = self.l_taken_count.q.val() + 1;
            }
            if self.action.q.val().get_bit(12) {
                if self.is_delete.q.val() & !self.second_pass.q.val() {
                    // Delete mode: replay the page and the condition values under REST-EQ.
                    self.second_pass.d.next = true;
                    self.current_program.d.next = self.rest_eq_program.val();
                    self.u_base.d.next = 0.into();
                    self.next_u_end.next = self.u_len_next.val();
                    self.l_base.d.next = 0.into();
                    self.next_l_end.next = self.l_len.val();
                    self.restart_u.next = true;
                    self.restart_u_at.next = 0.into();
                    self.restart_l.next = true;
                    self.restart_l_at.next = 0.into();
                    self.restart_l_written.next = self.l_reach_zero.reach.val();
                    self.state.d.next = OperationState::Compare;
                } else {
                    self.state.d.next = OperationState::Drain;
                }
            } else if self.is_comp.q.val() {
                self.state.d.next = OperationState::CompareTag;
            } else {
                self.state.d.next = OperationState::Compare;
            }
        }
        if self.wait_for_l.val()
            & self.l_full.val()
            & (self.l_starved.val() | self.tuple_stuck.val())
        {
            // The tuple being read needs more input, and L-memory is full of what the
            // command still needs: a group (or page) larger than L-memory.
            self.l_overflow_flag.d.next = true;
            self.state.d.next = OperationState::Drain;
        }

        // ---- the readers: pops and restarts. L's reader restarts at once (so whether the
        // word is written, two carry chains from the settings, is not on the way to the
        // read address: the ECP5's critical path, 20.8 ns, when it gated the restart); if
        // the word is not written, what it reads is not used (`seek_l` hides its head) and
        // it restarts there again once the writer has passed.
        self.reader_u.pop.next = self.pop_u.val();
        self.reader_u.restart.next = self.restart_u.val();
        self.reader_u.restart_at.next = self.restart_u_at.val();
        self.reader_l.pop.next = self.pop_l.val();
        if self.restart_l.val() {
            self.reader_l.restart.next = true;
            self.reader_l.restart_at.next = self.restart_l_at.val();
            self.seek_l.d.next = !self.restart_l_written.val();
            self.seek_at_l.d.next = self.restart_l_at.val();
        } else {
            self.reader_l.restart.next = self.seek_l.q.val() & self.l_reach_seek.reach.val();
            self.reader_l.restart_at.next = self.seek_at_l.q.val();
            if self.l_reach_seek.reach.val() {
                self.seek_l.d.next = false;
            }
        }

        if self.clear.val() {
            self.state.d.next = OperationState::Idle;
            self.l_write.d.next = 0.into();
            self.l_base.d.next = 0.into();
            self.next_l_end.next = self.l_len.val();
            self.l_mark.d.next = 0.into();
            self.l_eos_written.d.next = false;
            self.u_base.d.next = 0.into();
            self.next_u_end.next = self.u_len_next.val();
            self.u_end.d.next = 0.into();
            self.u_count.d.next = 0.into();
            self.l_taken_count.d.next = 0.into();
            self.write_pos.d.next = 0.into();
            self.is_comp.d.next = false;
            self.command_error_flag.d.next = false;
            self.u_overflow_flag.d.next = false;
            self.l_overflow_flag.d.next = false;
            self.parity_flag.d.next = false;
        }
        // The tuples' ends for the next cycle, from the bases and lengths it will have
        // (after every assignment above).
        self.u_end_addr.d.next = self.next_u_end.val();
        self.l_end_addr.d.next = self.next_l_end.val();
    }
}

impl<const A: usize, const P: usize> crate::harness::Clocked for OperationPart<A, P> {
    fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
        &mut self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{Harness, Pacing, Schedule};
    use crate::in_module::KeyType;
    use crate::merger::model::{delete_l_taken, delete_model, merger_l_taken, merger_model};
    use crate::merger::{
        random_sorted_operand, MergerCommand, MergerConfig, MergerSettings, Selected,
    };
    use crate::output_control_part::{OutputSettings, SideFormat};
    use crate::tuple_stream::{to_beats, Beat, StreamTuple};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    type SmallOperation = OperationPart<8, 9>;
    /// Every test runs both reads: the one-cycle read and the two-cycle read that the Delta
    /// merger's 32K-word memories use ([DEEP_MEMORY_ADDRESS_BITS]).
    const BOTH_READS: [bool; 2] = [false, true];
    /// One output unit: its words, each with the memory it came from.
    type Unit = Vec<(bool, Beat)>;

    struct Run {
        units: Vec<Unit>,
        cycles: u64,
        /// Cycles in which `input_unneeded` was high.
        unneeded_cycles: u64,
        /// Input beats taken (the end-of-stream beat included).
        beats_taken: usize,
    }

    fn configure<const A: usize, const P: usize>(
        op: &mut OperationPart<A, P>,
        cmd: MergerCommand,
        delete: bool,
        s: &MergerSettings,
        tuple_words: usize,
    ) {
        op.settings.next = MergerConfig {
            command: cmd,
            delete,
            settings: *s,
            tuple_words,
            output: OutputSettings::both(SideFormat::unrotated(tuple_words.max(2))),
        }
        .command_settings();
        op.clear.next = false;
    }

    /// Stream `beats` in and collect the selected units up to the end-of-stream beat.
    fn run<const A: usize, const P: usize>(
        h: &mut Harness<OperationPart<A, P>>,
        beats: &[Beat],
        pacing: Pacing,
        max_cycles: usize,
    ) -> Run {
        run_with(h, beats, pacing, max_cycles, false)
    }

    /// As [run]; with `cut`, the source acts on `input_unneeded` as the HM adapter IN may:
    /// once it is high, the source skips to the end-of-stream beat at the next tuple
    /// boundary. Checks that `input_unneeded` is high only while the command is over (no
    /// selected word leaves from then on but the end-of-stream beat) and falls once the
    /// end-of-stream beat was taken.
    fn run_with<const A: usize, const P: usize>(
        h: &mut Harness<OperationPart<A, P>>,
        beats: &[Beat],
        pacing: Pacing,
        max_cycles: usize,
        cut: bool,
    ) -> Run {
        let schedule = Schedule::from_pacing(pacing, max_cycles);
        let mut next_in = 0;
        let mut units = vec![];
        let mut unit: Unit = vec![];
        let mut unneeded_cycles = 0;
        let mut unneeded_seen = false;
        let mut eos_taken = false;
        let mut beats_taken = 0;
        for cycle in 0..max_cycles {
            if cut && unneeded_seen && (next_in == 0 || beats[next_in - 1].last) {
                // A tuple boundary: the rest of the stream is not needed.
                next_in = beats.len() - 1;
            }
            let offer = next_in < beats.len() && schedule.offer[cycle];
            let take = schedule.take[cycle];
            h.uut.data_in.valid.next = offer;
            if offer {
                h.uut.data_in.word.next = beats[next_in].into();
            }
            h.uut.selected.ready.next = take;
            h.settle();
            let in_fire = offer && h.uut.data_in.ready.val();
            let out_fire = take && h.uut.selected.valid.val();
            let beat: Beat = h.uut.selected.word.val().into();
            let from_u = h.uut.selected.from_u.val();
            let unit_end = h.uut.selected.unit_end.val();
            let unneeded = h.uut.input_unneeded.val();
            if unneeded {
                unneeded_cycles += 1;
                unneeded_seen = true;
                assert!(h.uut.busy.val(), "input_unneeded while a command runs");
                assert!(!eos_taken, "input_unneeded after the input's end");
            }
            if unneeded_seen && h.uut.selected.valid.val() {
                assert!(
                    beat.eos,
                    "nothing but the end is sent once the input is unneeded"
                );
            }
            h.cycle();
            if in_fire {
                eos_taken |= beats[next_in].eos;
                next_in += 1;
                beats_taken += 1;
            }
            if out_fire {
                if beat.eos {
                    assert!(unit.is_empty(), "end of stream inside a unit");
                    assert!(unit_end, "end of stream beat ends a unit");
                    assert_eq!(next_in, beats.len(), "the whole input is taken first");
                    assert!(!h.uut.input_unneeded.val());
                    h.uut.data_in.valid.next = false;
                    h.uut.selected.ready.next = false;
                    h.cycle();
                    return Run {
                        units,
                        cycles: cycle as u64 + 1,
                        unneeded_cycles,
                        beats_taken,
                    };
                }
                unit.push((from_u, beat));
                if unit_end {
                    units.push(std::mem::take(&mut unit));
                }
            }
        }
        panic!("no end of stream low_bits {max_cycles} cycles ({next_in} beats in)");
    }

    /// Units as `U:key/payload` lists, for failure messages.
    fn summary(units: &[Unit]) -> String {
        units
            .iter()
            .map(|u| {
                u.iter()
                    .map(|(from_u, b)| format!("{}{}", if *from_u { "u" } else { "l" }, b.data))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn tuple_unit(t: &StreamTuple, from_u: bool) -> Unit {
        let beats = to_beats(std::slice::from_ref(t));
        beats[..beats.len() - 1]
            .iter()
            .map(|b| (from_u, *b))
            .collect()
    }

    fn expected_units(sel: &[Selected], u: &[StreamTuple], l: &[StreamTuple]) -> Vec<Unit> {
        sel.iter()
            .map(|s| match *s {
                Selected::U(i) => tuple_unit(&u[i], true),
                Selected::L(j) => tuple_unit(&l[j], false),
                Selected::Pair(i, j) => {
                    let mut v = tuple_unit(&u[i], true);
                    v.extend(tuple_unit(&l[j], false));
                    v
                }
            })
            .collect()
    }

    fn budget(u: &[StreamTuple], l: &[StreamTuple], tuple_words: usize) -> usize {
        1000 + 12 * tuple_words * (u.len() + 2) * (l.len() + 2)
    }

    fn load<const A: usize, const P: usize>(
        h: &mut Harness<OperationPart<A, P>>,
        u: &[StreamTuple],
        s: &MergerSettings,
        pacing: Pacing,
    ) {
        let tw = u.first().map(|t| t.words.len()).unwrap_or(2);
        let s = MergerSettings {
            u_partial: false,
            ..*s
        };
        configure(&mut h.uut, MergerCommand::Load, false, &s, tw);
        let r = run(h, &to_beats(u), pacing, budget(u, &[], tw));
        assert!(r.units.is_empty(), "LOAD outputs nothing");
        assert_eq!(h.uut.u_tuples.val().index(), u.len());
        assert_eq!(
            h.uut.l_taken.val().index(),
            u.len(),
            "LOAD takes every tuple"
        );
    }

    fn random_pacing(rng: &mut ChaCha8Rng) -> Pacing {
        if rng.gen_bool(0.3) {
            Pacing::FULL_RATE
        } else {
            Pacing {
                source_duty: rng.gen_range(0.3..1.0),
                sink_duty: rng.gen_range(0.3..1.0),
                seed: rng.gen(),
            }
        }
    }

    /// One random case of `cmd` (or delete mode): U loaded first, then L streamed.
    fn differential_case(
        h: &mut Harness<SmallOperation>,
        rng: &mut ChaCha8Rng,
        cmd: MergerCommand,
        delete: bool,
        u_partial: bool,
    ) {
        let kw = rng.gen_range(1..=2);
        let merge = matches!(cmd, MergerCommand::SortEx | MergerCommand::UnqEx);
        let descending = merge && rng.gen();
        let s = MergerSettings {
            key_words: kw,
            descending,
            second_offset: kw,
            second_null_bit: if rng.gen_bool(0.8) { Some(2) } else { None },
            second_type: match rng.gen_range(0..3) {
                0 => KeyType::Unsigned,
                1 => KeyType::Signed,
                _ if kw == 2 => KeyType::Float,
                _ => KeyType::Signed,
            },
            u_partial,
        };
        let sizes = [0, 1, 2, 5, 9, 14];
        let nu = sizes[rng.gen_range(0..sizes.len())];
        let nl = sizes[rng.gen_range(0..sizes.len())];
        let mut u = random_sorted_operand(rng, nu, kw, descending);
        let l = random_sorted_operand(rng, nl, kw, descending);
        if cmd == MergerCommand::RestRange {
            u.retain(|t| !t.null);
            u.truncate(2);
            if u.len() != 2 {
                return;
            }
        }
        // Commands that do not read U run with something loaded anyway: it must not matter.
        load(h, &u, &s, random_pacing(rng));
        let tw = kw + 3;
        configure(&mut h.uut, cmd, delete, &s, tw);
        let r = run(h, &to_beats(&l), random_pacing(rng), budget(&u, &l, tw));
        let (sel, l_taken) = if delete {
            (delete_model(&s, &u, &l), delete_l_taken(&s, &u, &l))
        } else {
            (
                merger_model(cmd, &s, &u, &l).unwrap(),
                merger_l_taken(cmd, &s, &u, &l).unwrap(),
            )
        };
        let name = if delete { "delete mode" } else { cmd.name() };
        let expected = expected_units(&sel, &u, &l);
        assert!(
            r.units == expected,
            "{name}\ngot      {}\nexpected {}\nU {u:?}\nL {l:?}",
            summary(&r.units),
            summary(&expected)
        );
        assert!(!h.uut.l_overflow.val() && !h.uut.command_error.val());
        assert_eq!(
            h.uut.l_taken.val().index(),
            l_taken,
            "l_taken of {name} (u_partial {u_partial})\nU {u:?}\nL {l:?}"
        );
    }

    #[test]
    fn every_command_matches_the_model_on_random_relations() {
        for registered in BOTH_READS {
            let mut h = Harness::new(SmallOperation::new(registered));
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            for cmd in MergerCommand::ALL {
                for _ in 0..25 {
                    differential_case(&mut h, &mut rng, cmd, false, false);
                }
            }
        }
    }

    #[test]
    fn partial_u_sort_ex_matches_the_model_on_random_relations() {
        // U holds a chunk of a longer run: the merge ends when the chunk is used up.
        for registered in BOTH_READS {
            let mut h = Harness::new(SmallOperation::new(registered));
            let mut rng = ChaCha8Rng::seed_from_u64(13);
            for _ in 0..150 {
                differential_case(&mut h, &mut rng, MergerCommand::SortEx, false, true);
            }
        }
    }

    #[test]
    fn delete_mode_emits_kept_tuples_then_deleted_ones() {
        for registered in BOTH_READS {
            let mut h = Harness::new(SmallOperation::new(registered));
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            for _ in 0..60 {
                differential_case(&mut h, &mut rng, MergerCommand::RestNe, true, false);
            }
        }
    }

    fn t(key: u16, payload: u16, dup: bool) -> StreamTuple {
        StreamTuple {
            dup,
            ..StreamTuple::new(vec![key, payload], false)
        }
    }

    /// A tuple with a null key.
    fn null(payload: u16, dup: bool) -> StreamTuple {
        StreamTuple {
            dup,
            ..StreamTuple::new(vec![0, payload], true)
        }
    }

    /// What a partial-U SORT-EX of `l` against the chunk `u` did.
    struct Partial {
        /// Payloads of the output tuples, in order.
        payloads: Vec<u16>,
        l_taken: usize,
        run: Run,
    }

    /// LOAD the chunk `u`, run SORT-EX with `u_partial` on `l` (two-word tuples), and check
    /// it against the model, word by word, and its `l_taken`.
    fn partial_sort_ex(
        h: &mut Harness<SmallOperation>,
        u: &[StreamTuple],
        l: &[StreamTuple],
        descending: bool,
        pacing: Pacing,
        cut: bool,
    ) -> Partial {
        let s = MergerSettings {
            descending,
            u_partial: true,
            ..MergerSettings::ascending(1)
        };
        load(h, u, &s, Pacing::FULL_RATE);
        configure(&mut h.uut, MergerCommand::SortEx, false, &s, 2);
        let run = run_with(h, &to_beats(l), pacing, budget(u, l, 2), cut);
        let expected = expected_units(
            &merger_model(MergerCommand::SortEx, &s, u, l).unwrap(),
            u,
            l,
        );
        assert!(
            run.units == expected,
            "got      {}\nexpected {}",
            summary(&run.units),
            summary(&expected)
        );
        let l_taken = h.uut.l_taken.val().index();
        assert_eq!(
            l_taken,
            merger_l_taken(MergerCommand::SortEx, &s, u, l).unwrap()
        );
        Partial {
            payloads: run.units.iter().map(|unit| unit[1].1.data).collect(),
            l_taken,
            run,
        }
    }

    #[test]
    fn partial_u_sort_ex_directed() {
        for registered in BOTH_READS {
            let mut h = Harness::new(SmallOperation::new(registered));
            // A slow source, so that L's end has not arrived when the chunk is used up.
            let slow = Pacing {
                source_duty: 0.25,
                sink_duty: 1.0,
                seed: 5,
            };
            // Chunk [1 3 5] of a longer run, L [2 4 6 7]: 1 2 3 4 5, then the command ends;
            // L's 6 and 7 may sort after the run's next chunk.
            let u = [t(1, 10, false), t(3, 11, false), t(5, 12, false)];
            let l = [
                t(2, 20, false),
                t(4, 21, false),
                t(6, 22, false),
                t(7, 23, false),
            ];
            let p = partial_sort_ex(&mut h, &u, &l, false, slow, false);
            assert_eq!(p.payloads, vec![10, 20, 11, 21, 12]);
            assert_eq!(p.l_taken, 2, "the next chunk resumes at L's third tuple");
            assert!(p.run.unneeded_cycles > 0, "input_unneeded during the drain");
            assert_eq!(p.run.beats_taken, 9, "the rest of L is taken and dropped");
            // With more of L and a source that cuts the stream on input_unneeded (at a tuple
            // boundary, then the end-of-stream beat): L's last tuples are never sent.
            let longer: Vec<_> = l
                .iter()
                .cloned()
                .chain([t(8, 24, false), t(9, 25, false)])
                .collect();
            let p = partial_sort_ex(&mut h, &u, &longer, false, slow, true);
            assert_eq!(p.payloads, vec![10, 20, 11, 21, 12]);
            assert_eq!(p.l_taken, 2);
            assert!(p.run.beats_taken < 13, "{} beats", p.run.beats_taken);
            // Without u_partial the same operands give the whole merge.
            let s = MergerSettings::ascending(1);
            load(&mut h, &u, &s, Pacing::FULL_RATE);
            configure(&mut h.uut, MergerCommand::SortEx, false, &s, 2);
            let r = run(&mut h, &to_beats(&l), slow, 2000);
            assert_eq!(r.units.len(), 7);
            assert_eq!(r.unneeded_cycles, 0);
            assert_eq!(h.uut.l_taken.val().index(), 4);
            // L empty: the rest of U is emitted as usual.
            let p = partial_sort_ex(&mut h, &u, &[], false, Pacing::FULL_RATE, false);
            assert_eq!(p.payloads, vec![10, 11, 12]);
            assert_eq!((p.l_taken, p.run.unneeded_cycles), (0, 0));
            // U empty: the command ends at once, nothing out, nothing of L taken.
            let p = partial_sort_ex(&mut h, &[], &l, false, slow, false);
            assert!(p.payloads.is_empty());
            assert_eq!(p.l_taken, 0);
            assert!(p.run.unneeded_cycles > 0);
            // Nulls last: a null in the chunk goes after L's normal keys; two nulls, U first.
            let u = [t(1, 10, false), null(11, false)];
            let l = [t(2, 20, false), t(4, 21, false)];
            let p = partial_sort_ex(&mut h, &u, &l, false, slow, false);
            assert_eq!((p.payloads, p.l_taken), (vec![10, 20, 21, 11], 2));
            let u = [t(1, 10, false), t(3, 11, false), null(12, false)];
            let l = [t(2, 20, false), null(21, true), null(22, false)];
            let p = partial_sort_ex(&mut h, &u, &l, false, slow, false);
            assert_eq!((p.payloads, p.l_taken), (vec![10, 20, 11, 12], 1));
            // Equal keys: U first (stable), so an equal L tuple waits for the next chunk.
            let u = [t(2, 10, false), t(4, 11, false)];
            let l = [t(2, 20, false), t(4, 21, false), t(5, 22, false)];
            let p = partial_sort_ex(&mut h, &u, &l, false, slow, false);
            assert_eq!((p.payloads, p.l_taken), (vec![10, 20, 11], 1));
            // Descending.
            let u = [t(9, 10, false), t(5, 11, false), t(3, 12, false)];
            let l = [
                t(8, 20, false),
                t(6, 21, false),
                t(2, 22, false),
                t(1, 23, false),
            ];
            let p = partial_sort_ex(&mut h, &u, &l, true, slow, false);
            assert_eq!((p.payloads, p.l_taken), (vec![10, 20, 21, 11, 12], 2));
        }
    }

    #[test]
    fn join_eq_of_fig8_kind_pairs_every_duplicate() {
        // U keys 1 2 2 3 5, L keys 2 2 2 3 4 5 5: 2×3 pairs of key 2, 1 of 3, 2 of 5.
        let u = vec![
            t(1, 10, false),
            t(2, 11, true),
            t(2, 12, false),
            t(3, 13, false),
            t(5, 14, false),
        ];
        let l = vec![
            t(2, 20, true),
            t(2, 21, true),
            t(2, 22, false),
            t(3, 23, false),
            t(4, 24, false),
            t(5, 25, true),
            t(5, 26, false),
        ];
        let s = MergerSettings::ascending(1);
        for registered in BOTH_READS {
            let mut h = Harness::new(SmallOperation::new(registered));
            load(&mut h, &u, &s, Pacing::FULL_RATE);
            configure(&mut h.uut, MergerCommand::JoinEq, false, &s, 2);
            let r = run(&mut h, &to_beats(&l), Pacing::FULL_RATE, 2000);
            let pairs: Vec<(u16, u16)> = r
                .units
                .iter()
                .map(|unit| (unit[1].1.data, unit[3].1.data))
                .collect();
            assert_eq!(
                pairs,
                vec![
                    (11, 20),
                    (11, 21),
                    (11, 22),
                    (12, 20),
                    (12, 21),
                    (12, 22),
                    (13, 23),
                    (14, 25),
                    (14, 26)
                ]
            );
        }
    }

    #[test]
    fn sort_ex_sends_a_tuple_every_words_plus_one_cycles() {
        // Disjoint interleaved keys, 8-word tuples, one key word: each decision (one cycle
        // to compare, one to carry it out) sends the first word of its tuple in the Decide
        // cycle, so 20 tuples take 20 × (8 + 1) cycles, plus the last decision (both empty)
        // and six cycles to start (the first L word must arrive) and to end: 1 + 1/8 cycles
        // a word, issue 6's bound.
        let mk = |k: u16| StreamTuple::new(vec![k, 1, 2, 3, 4, 5, 6, 7], false);
        let u: Vec<_> = (0..10).map(|i| mk(2 * i)).collect();
        let l: Vec<_> = (0..10).map(|i| mk(2 * i + 1)).collect();
        let s = MergerSettings::ascending(1);
        for registered in BOTH_READS {
            let mut h = Harness::new(SmallOperation::new(registered));
            load(&mut h, &u, &s, Pacing::FULL_RATE);
            configure(&mut h.uut, MergerCommand::SortEx, false, &s, 8);
            let r = run(&mut h, &to_beats(&l), Pacing::FULL_RATE, 2000);
            assert_eq!(r.units.len(), 20);
            // (The two-cycle read: L's first word is the head a cycle later, and a cycle
            // later still for the registered write.)
            let start = 6 + 2 * registered as u64;
            assert!(
                r.cycles <= 20 * (8 + 1) + 1 + start,
                "{} cycles (two-cycle read {registered})",
                r.cycles
            );
        }
    }

    #[test]
    fn oversized_load_and_join_group_raise_overflow_and_still_end() {
        let s = MergerSettings::ascending(1);
        // 16-word memories: a LOAD of 9 two-word tuples does not fit.
        for registered in BOTH_READS {
            let mut h = Harness::new(OperationPart::<4, 5>::new(registered));
            let big: Vec<_> = (0..9).map(|i| t(7, i, i < 8)).collect();
            configure(&mut h.uut, MergerCommand::Load, false, &s, 2);
            let r = run(&mut h, &to_beats(&big), Pacing::FULL_RATE, 1000);
            assert!(r.units.is_empty());
            assert!(h.uut.u_overflow.val());
            assert_eq!(h.uut.u_tuples.val().index(), 0, "U is left empty");
            // A JOIN-EQ group of 9 equal L keys (18 words) does not fit in L-memory.
            h.uut.clear.next = true;
            h.cycle();
            load(&mut h, &[t(7, 99, false)], &s, Pacing::FULL_RATE);
            configure(&mut h.uut, MergerCommand::JoinEq, false, &s, 2);
            let mut l = big.clone();
            l.push(t(8, 0, false));
            let r = run(&mut h, &to_beats(&l), Pacing::FULL_RATE, 1000);
            assert!(h.uut.l_overflow.val());
            assert!(r.units.len() < 9, "cut short");
            // Clear resets the flags; a command after it works again.
            h.uut.clear.next = true;
            h.cycle();
            assert!(!h.uut.l_overflow.val() && !h.uut.u_overflow.val());
            configure(&mut h.uut, MergerCommand::Pass1, false, &s, 2);
            let r = run(&mut h, &to_beats(&big[..3]), Pacing::FULL_RATE, 1000);
            assert_eq!(r.units.len(), 3);
        }
    }

    #[test]
    fn unknown_command_code_is_an_error_and_consumes_its_stream() {
        for registered in BOTH_READS {
            let mut h = Harness::new(SmallOperation::new(registered));
            let s = MergerSettings::ascending(1);
            configure(&mut h.uut, MergerCommand::Pass1, false, &s, 2);
            let mut settings = h.uut.settings.val();
            settings.command = 30.into();
            h.uut.settings.next = settings;
            let r = run(&mut h, &to_beats(&[t(1, 1, false)]), Pacing::FULL_RATE, 100);
            assert!(r.units.is_empty());
            assert!(h.uut.command_error.val());
        }
    }

    #[test]
    fn operation_part_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(SmallOperation::default());
        crate::verilog::check_module("operation_part", &v).unwrap();
    }

    /// Every distance, both steps: the block answers as [ring_reach] does.
    fn ring_reach_follows_its_model<const P: usize>() {
        for step in 0..=1u64 {
            let mut reach = RingReach::<P>::new(step);
            reach.connect_all();
            for ahead in 0..1u64 << P {
                reach.ahead.next = ahead.into();
                reach.update_all();
                reach.update_all();
                assert_eq!(
                    reach.reach.val(),
                    ring_reach(ahead, P - 1, step),
                    "P = {P}, step {step}, ahead {ahead}"
                );
            }
        }
    }

    #[test]
    fn ring_reach_block_follows_its_model_for_every_distance() {
        ring_reach_follows_its_model::<2>();
        ring_reach_follows_its_model::<3>();
        ring_reach_follows_its_model::<5>();
        ring_reach_follows_its_model::<10>();
        ring_reach_follows_its_model::<14>();
        ring_reach_follows_its_model::<17>();
    }

    #[test]
    fn ring_reach_model_counts_the_ring() {
        // A = 3: the writer 1..=8 words ahead of a position (mod 16) has written it.
        let there: Vec<u64> = (0..16).filter(|&d| ring_reach(d, 3, 0)).collect();
        assert_eq!(there, (1..=8).collect::<Vec<_>>());
        // … and the position after it when 2..=9 ahead.
        let next: Vec<u64> = (0..16).filter(|&d| ring_reach(d, 3, 1)).collect();
        assert_eq!(next, (2..=9).collect::<Vec<_>>());
    }

    #[test]
    fn ring_reach_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(RingReach::<10>::new(1));
        crate::verilog::check_module("ring_reach", &v).unwrap();
    }
}
