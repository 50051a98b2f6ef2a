//! The power-up self check (paper §5.4: "During the power up sequence, the control program
//! drives the engine core and the HM adapters with test data to check them"), in hardware:
//! a built-in test pattern generator drives the engine core with a relation to SORT, a
//! sorting checker (§4.2, [crate::sorting_checker], the same block the core uses) verifies
//! the order of what comes back, and checksums and counts verify that nothing was lost or
//! altered. A board top ([SelfCheckBoard]) shows the verdict on LEDs, so a bitstream does
//! something useful on the bench with nothing but a clock. Design notes, LED meanings per
//! board and the build commands: `docs/SELF_CHECK.md`.
//!
//! # One round
//! rust-hdl designs have no reset: every flip-flop starts at 0, so the block starts by
//! itself after `start_delay` cycles, and runs **round after round** while they pass (each
//! round with fresh data: the generator's LFSR runs on); the first failure halts it with
//! `fail` and `failed_test` latched. A round:
//!
//! 1. **Clear**: one cycle of `clear` into the core and the sorting checker (sticky status
//!    flags, counters, U-memory) and of the round's accumulators and watchdog.
//! 2. **Send**: the generator sends `tuples` compact tuples of `tuple_words` words at full
//!    rate, then the end-of-stream beat ([docs/TUPLE_STREAM.md]: odd parity per byte from
//!    an [OddParity], NL = DP = 0, `last` on each tuple's last word). Word 0 of each tuple is
//!    the tag word, 0 (no nulls); word 1 the sort key, `lfsr & key_mask` (a small mask makes
//!    duplicate keys); the other words the LFSR. The 16-bit Galois LFSR
//!    ([model::lfsr_next], x^16 + x^14 + x^13 + x^11 + 1) starts at `seed` and steps once
//!    per data word. The core's static settings are constants: SORT of the compact relation
//!    by the one-word unsigned field 1 (IN module, sorter with `tuples_hint = tuples`,
//!    sorting checker), then PASS-1 with every field sent ([SelfCheckParams::sort_settings],
//!    [SelfCheckParams::merger_config]), so the core's output is the relation sorted, in
//!    compact form again.
//! 3. **Drain**: the core's output goes through this block's own [SortingChecker] (key:
//!    words 0 and 1, i.e. the tag word, always 0 in a good round, then the sort key), whose
//!    output this block consumes, until its end-of-stream beat. Meanwhile it accumulates,
//!    on the generator's clean words and on the checker's output, the order-independent
//!    checksum: the 16-bit sum of `word ^ mix` (`mix` = word index in the tuple × 0x9E37,
//!    so words swapped within a tuple change it) and the XOR of the words; it counts words
//!    and tuples, checks that `last` falls on word `tuple_words - 1` and NL is 0, checks
//!    the output parity once more, and counts the tuples whose DP line is set as they leave
//!    the core (the core's sorting checker's DP, passed by PASS-1) and as they leave this
//!    block's checker.
//! 4. **Settle** (4 cycles), then **verdict**: the checks in priority order (the lowest
//!    failing code is reported, [FailedTest]): parity (the core's `parity_error`, this
//!    checker's, or the output parity), core (any other core status: framing, sort error
//!    or violations of its internal sorting checker, command error, U or L overflow, a
//!    capacity below `tuples`, U-memory not empty, the merger still busy, `input_unneeded`
//!    high), count (tuples, words, tuple framing, the merger's `l_taken`), order (this
//!    checker's violations), DP (the two DP counts differ), checksum. A watchdog ends a
//!    round that has not reached its verdict within `watchdog_cycles` of its start: fail,
//!    code timeout.
//!
//! # Fault injection
//! While `fault_inject` is high, data word number `fault_word` of each round's stream
//! (counted from 0) has bit `fault_bit` flipped between the generator and the core; its
//! parity is the clean word's (a parity error: the IN module catches it) unless
//! `fault_fix_parity` is high (then the word is consistent and only the checksum, the order
//! or the DP count can catch it; a flip of a tag bit the output drops goes unseen, and the
//! model says so). The board top ties these inputs low.
//!
//! # Configurations
//! [define_self_check](crate::define_self_check) builds the block around any engine core configuration;
//! [SelfCheckSmall] uses [SmallEngineCore] (the iCE40-sized core, the HX8K breakout's and
//! the ULX3S's) with a `SortingChecker<4, 5>` (tuples up to 8 words, i.e. the paper's
//! 16-byte tuples; its 16-word ring in block RAM: on iCE40 that costs 3 blocks but about
//! 200 LUTs and 170 flip-flops less than an 8-word ring in logic). [SelfCheckTiny] uses
//! [TinyEngineCore] (3-cell sorter, 8 tuples of up to 16 words) with the same checker and
//! [SelfCheckParams::tiny]: the iCEBreaker's, since the small core does not fit its UP5K.
//! `define_self_check_board!` builds the board tops ([SelfCheckBoard], [SelfCheckTinyBoard]).
//!
//! # Verification
//! A pure-Rust reference model ([model::self_check_model]: the generator, the fault, the
//! engine core's model [crate::engine_core::core_step_model_with_dup], the checks), directed
//! tests (a good core passes round after round; an unfixed bit flip fails with parity; a
//! parity-consistent flip of a payload or key word fails with checksum, of the tag word
//! with order, of a tag bit the output drops passes; a short watchdog times out), random
//! tests over seeds, sizes and faults against the model, the board top's LEDs in both
//! polarities, and the exported Verilog of the tops through yosys and `verilator -Wall`;
//! the tiny configuration through the same helpers ([SelfCheckTop], [SelfCheckLeds]).
use crate::dff::DFF;
use crate::engine_core::{MergerTiny, SmallEngineCore, TinyEngineCore};
use crate::fault_injector::FaultKind;
use crate::in_module::{InConfig, KeyType};
use crate::merger::{MergerCommand, MergerConfig, MergerSettings, MergerSmall};
use crate::operation_part::CommandSettings;
use crate::output_control_part::{OutputFormat, OutputSettings, SideFormat};
use crate::sort_pipeline::{PipelinePort, PipelineSettings};
use crate::sorter::{capacity_tuples, SMALL_CELL_ADDRESS_BITS, TINY_CELL_ADDRESS_BITS};
use crate::sorting_checker::SortingChecker;
use crate::stream_slice::StreamSlice;
use crate::tuple_stream::{OddParity, TupleStreamOut};
use anyhow::{ensure, Result};
use rust_hdl::prelude::*;

/// The self check's parameters (fixed when the block is built: constants in the Verilog).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelfCheckParams {
    /// Tuples per round (1 ..= the sorter's capacity for `tuple_words`).
    pub tuples: usize,
    /// Words per compact tuple, tag word included (2 ..= the checker's limit).
    pub tuple_words: usize,
    /// The LFSR's first state (not 0).
    pub seed: u16,
    /// Mask of the sort key word (word 1): few bits, many duplicate keys.
    pub key_mask: u16,
    /// Cycles a round may take from its clear to its verdict (1 ..= 2^24 - 1).
    pub watchdog_cycles: u32,
    /// Cycles before each round (at power up and between rounds, 1 ..= 255).
    pub start_delay: u8,
    /// `heartbeat` is bit `heartbeat_log2` of the count of passed rounds (0 ..= 15).
    pub heartbeat_log2: u8,
}

impl Default for SelfCheckParams {
    /// The small core's board parameters (HX8K, ULX3S): 32 tuples of 4 words (the small
    /// sorter's capacity), keys from 256 values.
    fn default() -> Self {
        SelfCheckParams {
            tuples: 32,
            tuple_words: 4,
            seed: 0xACE1,
            key_mask: 0x00FF,
            watchdog_cycles: 1 << 16,
            start_delay: 16,
            heartbeat_log2: 14,
        }
    }
}

/// Cycles between the output's end-of-stream beat and the verdict (status flags settle).
pub const SETTLE_CYCLES: u8 = 4;

/// Step of the per-word checksum mix (word `k` of a tuple is added as `word ^ k * MIX_STEP`).
pub const MIX_STEP: u16 = 0x9E37;

impl SelfCheckParams {
    /// The tiny core's board parameters (the iCEBreaker, [SelfCheckTiny]): 8 tuples (the
    /// tiny sorter's capacity, so every cell sorts) of 8 words (the paper's 16-byte tuples:
    /// a round of 64 words, and the self check's checker takes up to 8), keys from 16
    /// values (8 keys from 16 values repeat in about 88 % of rounds, so DP is exercised as
    /// with the small core's 32 keys from 256), the heartbeat on bit 15 of the round count
    /// (rounds of 213 cycles, shorter than the small core's 359: about 0.9 Hz at 12 MHz).
    pub fn tiny() -> Self {
        SelfCheckParams {
            tuples: 8,
            tuple_words: 8,
            key_mask: 0x000F,
            heartbeat_log2: 15,
            ..SelfCheckParams::default()
        }
    }

    /// The IN module's view of the test relation: the key is field 1 (one unsigned word),
    /// never null.
    pub fn in_config(&self) -> InConfig {
        InConfig {
            tuple_words: self.tuple_words,
            key_offset: 1,
            key_words: 1,
            key_type: KeyType::Unsigned,
            key_null_bit: None,
        }
    }

    /// The sort pipeline's settings: sort ascending, `tuples_hint` = tuples.
    pub fn sort_settings(&self) -> PipelineSettings {
        PipelineSettings {
            input: self.in_config(),
            descending: false,
            sort_enable: true,
            tuples_hint: self.tuples,
        }
    }

    /// The merger's settings: PASS-1, every field sent, no new TID.
    pub fn merger_config(&self) -> MergerConfig {
        let whole = SideFormat::whole(&self.in_config(), self.tuple_words - 1);
        MergerConfig {
            command: MergerCommand::Pass1,
            delete: false,
            settings: MergerSettings::ascending(1),
            tuple_words: self.tuple_words,
            output: OutputSettings::both(whole),
        }
    }

    /// Check the parameters against a core with sorter `cells` and merger tuple memories of
    /// `tuple_memory_words`, and a self-check sorting checker of `max_tuple_words`.
    pub fn validate(
        &self,
        cells: &[usize],
        tuple_memory_words: usize,
        max_tuple_words: usize,
    ) -> Result<()> {
        ensure!(
            (2..=max_tuple_words).contains(&self.tuple_words),
            "tuple_words = {} (2..={max_tuple_words})",
            self.tuple_words
        );
        let capacity = capacity_tuples(cells, self.tuple_words);
        ensure!(
            (1..=capacity).contains(&self.tuples),
            "tuples = {} (1..={capacity}, the sorter's capacity for {}-word tuples)",
            self.tuples,
            self.tuple_words
        );
        ensure!(
            self.tuples * self.tuple_words < 1 << 16,
            "a round of {} words exceeds the 16-bit word counter",
            self.tuples * self.tuple_words
        );
        ensure!(self.seed != 0, "the LFSR seed must not be 0");
        ensure!(
            (1..1 << 24).contains(&self.watchdog_cycles),
            "watchdog_cycles = {} (1..2^24)",
            self.watchdog_cycles
        );
        ensure!(self.start_delay >= 1, "start_delay must be at least 1");
        ensure!(
            self.heartbeat_log2 < 16,
            "heartbeat_log2 = {} (0..=15)",
            self.heartbeat_log2
        );
        self.sort_settings().validate()?;
        self.merger_config().validate(tuple_memory_words)?;
        Ok(())
    }
}

/// Which check failed (`failed_test`); the lowest failing code is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailedTest {
    /// All checks passed (or no verdict yet).
    None = 0,
    /// The round did not reach its verdict within `watchdog_cycles`.
    Timeout = 1,
    /// A parity error: in the core, at this block's sorting checker, or on its output.
    Parity = 2,
    /// Another status line of the core (framing, its sorting checker, command, overflow,
    /// capacity, U-memory, busy, input_unneeded).
    Core = 3,
    /// Output tuples, words, tuple framing or the merger's `l_taken` wrong.
    Count = 4,
    /// This block's sorting checker found tuples out of order.
    Order = 5,
    /// The DP lines leaving the core disagree with this block's sorting checker.
    Dup = 6,
    /// The output's checksum differs from the generator's.
    Checksum = 7,
}

impl FailedTest {
    pub fn code(self) -> u64 {
        self as u64
    }
    pub fn from_code(code: u64) -> FailedTest {
        match code {
            0 => FailedTest::None,
            1 => FailedTest::Timeout,
            2 => FailedTest::Parity,
            3 => FailedTest::Core,
            4 => FailedTest::Count,
            5 => FailedTest::Order,
            6 => FailedTest::Dup,
            _ => FailedTest::Checksum,
        }
    }
}

/// The injected fault: data word `word` of each round (from 0) has bit `bit` flipped;
/// its parity is regenerated when `fix_parity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub word: u16,
    pub bit: u8,
    pub fix_parity: bool,
}

/// The outputs of a self-check block at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelfCheckOutputs {
    pub done: bool,
    pub pass: bool,
    pub fail: bool,
    pub failed_test: FailedTest,
    pub heartbeat: bool,
}

/// What testbenches need of a self-check configuration (every [define_self_check](crate::define_self_check) block).
pub trait SelfCheckTop: crate::harness::Clocked + Sized {
    /// The block for `params` (panics when they do not fit: see [SelfCheckTop::validate]).
    fn with_params(params: SelfCheckParams) -> Self;
    /// This configuration's board parameters (its `Default`).
    fn default_params() -> SelfCheckParams;
    /// Check `params` against this configuration.
    fn validate(params: &SelfCheckParams) -> Result<()>;
    /// Address bits of the core's sorter cells (for the model).
    fn cell_address_bits() -> &'static [usize];
    /// Drive the fault-injection inputs (`None`: no fault).
    fn set_fault(&mut self, fault: Option<Fault>);
    fn outputs(&self) -> SelfCheckOutputs;
    /// Rounds passed so far (wrapping at 2^16).
    fn rounds_passed(&self) -> u64;
    /// The sequencer's state.
    fn state(&self) -> SelfCheckState;
}

/// What testbenches need of a board top ([SelfCheckBoard], [SelfCheckTinyBoard]).
pub trait SelfCheckLeds: crate::harness::Clocked {
    /// The pin levels of `led_pass`, `led_fail`, `led_heartbeat`, `led_code0..2`.
    fn leds(&self) -> [bool; 6];
}

/// The self check's sequencer.
#[derive(Copy, Clone, Debug, PartialEq, LogicState)]
pub enum SelfCheckState {
    /// Counting `start_delay` cycles (power up, between rounds).
    Wait,
    /// One cycle: clear the core, the checker and the round's accumulators.
    Clear,
    /// The generator sends the relation and its end-of-stream beat.
    Send,
    /// Waiting for the checker's end-of-stream beat.
    Drain,
    /// [SETTLE_CYCLES] cycles for the status flags.
    Settle,
    /// One cycle: the checks.
    Verdict,
    /// A check failed: the verdict stays.
    Halt,
}

/// Builds a self-check block around an engine core configuration.
///
/// `$core`: the engine core; `$checker`: this block's sorting checker (tuples up to its
/// `MAX_TUPLE_WORDS`); `$merger`: the core's merger type (for its tuple memory size);
/// `$cells`: the core's sorter cells (address bits); `$defaults`: the parameters of its
/// `Default` (the board's).
#[macro_export]
macro_rules! define_self_check {
    ($(#[$meta:meta])* $name:ident, $core:ty, $checker:ty, $merger:ty, $cells:expr,
     $defaults:expr) => {
        $(#[$meta])*
        #[derive(LogicBlock)]
        pub struct $name {
            pub clock: Signal<In, Clock>,
            /// While high, data word `fault_word` of each round has bit `fault_bit` flipped
            /// between the generator and the core.
            pub fault_inject: Signal<In, Bit>,
            pub fault_word: Signal<In, Bits<16>>,
            pub fault_bit: Signal<In, Bits<4>>,
            /// The faulted word gets the parity of its new value (else of the clean one).
            pub fault_fix_parity: Signal<In, Bit>,
            /// A verdict has been reached (the first round ended, or the watchdog fired).
            pub done: Signal<Out, Bit>,
            /// `done` and no check has failed (rounds keep running).
            pub pass: Signal<Out, Bit>,
            /// A check failed (latched; the block halts).
            pub fail: Signal<Out, Bit>,
            /// The failed check ([FailedTest] code), 0 while none has.
            pub failed_test: Signal<Out, Bits<3>>,
            /// Bit `heartbeat_log2` of the count of passed rounds.
            pub heartbeat: Signal<Out, Bit>,
            core: $core,
            /// The generator's output register (the core's input comes from flip-flops).
            gen_slice: StreamSlice,
            order_checker: $checker,
            parity_gen: OddParity,
            fault_parity_gen: OddParity,
            out_parity_gen: OddParity,
            // ---- parameters (constants)
            sort_port: Constant<PipelinePort>,
            merge_port: Constant<CommandSettings>,
            format_port: Constant<OutputFormat>,
            tuples: Constant<Bits<16>>,
            tuples32: Constant<Bits<32>>,
            total_words: Constant<Bits<16>>,
            tuple_words: Constant<Bits<12>>,
            last_word: Constant<Bits<12>>,
            check_key_words: Constant<Bits<12>>,
            seed: Constant<Bits<16>>,
            key_mask: Constant<Bits<16>>,
            taps: Constant<Bits<16>>,
            mix_step: Constant<Bits<16>>,
            watchdog_limit: Constant<Bits<24>>,
            start_delay: Constant<Bits<8>>,
            settle_cycles: Constant<Bits<8>>,
            heartbeat_mask: Constant<Bits<16>>,
            zero12: Constant<Bits<12>>,
            one12: Constant<Bits<12>>,
            zero16: Constant<Bits<16>>,
            one16: Constant<Bits<16>>,
            // ---- sequencer
            state: DFF<SelfCheckState>,
            delay: DFF<Bits<8>>,
            seeded: DFF<Bit>,
            watchdog: DFF<Bits<24>>,
            // ---- generator
            lfsr: DFF<Bits<16>>,
            in_words: DFF<Bits<16>>,
            in_k: DFF<Bits<12>>,
            in_sum: DFF<Bits<16>>,
            in_xor: DFF<Bits<16>>,
            in_mix: DFF<Bits<16>>,
            // ---- output side
            out_words: DFF<Bits<16>>,
            out_tuples: DFF<Bits<16>>,
            out_k: DFF<Bits<12>>,
            out_sum: DFF<Bits<16>>,
            out_xor: DFF<Bits<16>>,
            out_mix: DFF<Bits<16>>,
            out_perr: DFF<Bit>,
            frame_err: DFF<Bit>,
            core_dups: DFF<Bits<16>>,
            check_dups: DFF<Bits<16>>,
            // ---- verdict
            failed: DFF<Bit>,
            code: DFF<Bits<3>>,
            done_r: DFF<Bit>,
            rounds: DFF<Bits<16>>,
            // ---- combinational helpers
            lfsr_next: Signal<Local, Bits<16>>,
            gen_word: Signal<Local, Bits<16>>,
            fault_here: Signal<Local, Bit>,
            fault_mask: Signal<Local, Bits<16>>,
            sent_word: Signal<Local, Bits<16>>,
            sent_parity: Signal<Local, Bits<2>>,
            in_k_last: Signal<Local, Bit>,
            send_eos: Signal<Local, Bit>,
            sending: Signal<Local, Bit>,
            in_fire: Signal<Local, Bit>,
            core_fire: Signal<Local, Bit>,
            out_fire: Signal<Local, Bit>,
            out_k_last: Signal<Local, Bit>,
            running: Signal<Local, Bit>,
            parity_bad: Signal<Local, Bit>,
            core_bad: Signal<Local, Bit>,
            count_bad: Signal<Local, Bit>,
            order_bad: Signal<Local, Bit>,
            dup_bad: Signal<Local, Bit>,
            sum_bad: Signal<Local, Bit>,
        }

        impl $name {
            /// Largest tuple (words) this configuration's checker takes.
            pub const MAX_TUPLE_WORDS: usize = <$checker>::MAX_TUPLE_WORDS;

            /// Address bits of the core's sorter cells.
            pub fn cell_address_bits() -> &'static [usize] {
                $cells
            }

            /// Check `params` against this configuration.
            pub fn validate(params: &SelfCheckParams) -> anyhow::Result<()> {
                params.validate($cells, <$merger>::TUPLE_MEMORY_WORDS, Self::MAX_TUPLE_WORDS)
            }

            /// The block for `params` (panics when they do not fit: see [Self::validate]).
            pub fn new(params: SelfCheckParams) -> Self {
                if let Err(e) = Self::validate(&params) {
                    panic!("self check parameters: {e}");
                }
                let merge = params.merger_config();
                let words = (params.tuples * params.tuple_words) as u64;
                Self {
                    clock: Default::default(),
                    fault_inject: Default::default(),
                    fault_word: Default::default(),
                    fault_bit: Default::default(),
                    fault_fix_parity: Default::default(),
                    done: Default::default(),
                    pass: Default::default(),
                    fail: Default::default(),
                    failed_test: Default::default(),
                    heartbeat: Default::default(),
                    core: Default::default(),
                    gen_slice: Default::default(),
                    order_checker: Default::default(),
                    parity_gen: Default::default(),
                    fault_parity_gen: Default::default(),
                    out_parity_gen: Default::default(),
                    sort_port: Constant::new(params.sort_settings().port()),
                    merge_port: Constant::new(merge.command_settings()),
                    format_port: Constant::new(merge.output.l.to_bits()),
                    tuples: Constant::new((params.tuples as u64).into()),
                    tuples32: Constant::new((params.tuples as u64).into()),
                    total_words: Constant::new(words.into()),
                    tuple_words: Constant::new((params.tuple_words as u64).into()),
                    last_word: Constant::new((params.tuple_words as u64 - 1).into()),
                    check_key_words: Constant::new(2.into()),
                    seed: Constant::new((params.seed as u64).into()),
                    key_mask: Constant::new((params.key_mask as u64).into()),
                    taps: Constant::new((model::LFSR_TAPS as u64).into()),
                    mix_step: Constant::new((MIX_STEP as u64).into()),
                    watchdog_limit: Constant::new((params.watchdog_cycles as u64).into()),
                    start_delay: Constant::new((params.start_delay as u64).into()),
                    settle_cycles: Constant::new((SETTLE_CYCLES as u64).into()),
                    heartbeat_mask: Constant::new((1u64 << params.heartbeat_log2).into()),
                    zero12: Constant::new(0.into()),
                    one12: Constant::new(1.into()),
                    zero16: Constant::new(0.into()),
                    one16: Constant::new(1.into()),
                    state: Default::default(),
                    delay: Default::default(),
                    seeded: Default::default(),
                    watchdog: Default::default(),
                    lfsr: Default::default(),
                    in_words: Default::default(),
                    in_k: Default::default(),
                    in_sum: Default::default(),
                    in_xor: Default::default(),
                    in_mix: Default::default(),
                    out_words: Default::default(),
                    out_tuples: Default::default(),
                    out_k: Default::default(),
                    out_sum: Default::default(),
                    out_xor: Default::default(),
                    out_mix: Default::default(),
                    out_perr: Default::default(),
                    frame_err: Default::default(),
                    core_dups: Default::default(),
                    check_dups: Default::default(),
                    failed: Default::default(),
                    code: Default::default(),
                    done_r: Default::default(),
                    rounds: Default::default(),
                    lfsr_next: Default::default(),
                    gen_word: Default::default(),
                    fault_here: Default::default(),
                    fault_mask: Default::default(),
                    sent_word: Default::default(),
                    sent_parity: Default::default(),
                    in_k_last: Default::default(),
                    send_eos: Default::default(),
                    sending: Default::default(),
                    in_fire: Default::default(),
                    core_fire: Default::default(),
                    out_fire: Default::default(),
                    out_k_last: Default::default(),
                    running: Default::default(),
                    parity_bad: Default::default(),
                    core_bad: Default::default(),
                    count_bad: Default::default(),
                    order_bad: Default::default(),
                    dup_bad: Default::default(),
                    sum_bad: Default::default(),
                }
            }

            /// Rounds passed so far (wrapping at 2^16).
            pub fn rounds_passed(&self) -> u64 {
                self.rounds.q.val().to_u64()
            }

            /// The sequencer's state.
            pub fn state(&self) -> SelfCheckState {
                self.state.q.val()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new($defaults)
            }
        }

        impl SelfCheckTop for $name {
            fn with_params(params: SelfCheckParams) -> Self {
                Self::new(params)
            }
            fn default_params() -> SelfCheckParams {
                $defaults
            }
            fn validate(params: &SelfCheckParams) -> anyhow::Result<()> {
                params.validate($cells, <$merger>::TUPLE_MEMORY_WORDS, Self::MAX_TUPLE_WORDS)
            }
            fn cell_address_bits() -> &'static [usize] {
                $cells
            }
            fn set_fault(&mut self, fault: Option<Fault>) {
                let f = fault.unwrap_or(Fault {
                    word: 0,
                    bit: 0,
                    fix_parity: false,
                });
                self.fault_inject.next = fault.is_some();
                self.fault_word.next = (f.word as u64).into();
                self.fault_bit.next = (f.bit as u64).into();
                self.fault_fix_parity.next = f.fix_parity;
            }
            fn outputs(&self) -> SelfCheckOutputs {
                SelfCheckOutputs {
                    done: self.done.val(),
                    pass: self.pass.val(),
                    fail: self.fail.val(),
                    failed_test: FailedTest::from_code(self.failed_test.val().to_u64()),
                    heartbeat: self.heartbeat.val(),
                }
            }
            fn rounds_passed(&self) -> u64 {
                self.rounds.q.val().to_u64()
            }
            fn state(&self) -> SelfCheckState {
                self.state.q.val()
            }
        }

        impl Logic for $name {
            #[hdl_gen]
            fn update(&mut self) {
                dff_setup!(
                    self, clock, state, delay, seeded, watchdog, lfsr, in_words, in_k, in_sum,
                    in_xor, in_mix, out_words, out_tuples, out_k, out_sum, out_xor, out_mix,
                    out_perr, frame_err, core_dups, check_dups, failed, code, done_r, rounds
                );
                clock!(self, clock, core, order_checker, gen_slice);

                // ---- Static settings: SORT then PASS-1, constants.
                self.core.sort_settings.next = self.sort_port.val();
                self.core.merge_settings.next = self.merge_port.val();
                self.core.u_format.next = self.format_port.val();
                self.core.l_format.next = self.format_port.val();
                self.core.new_tid.next = false;
                self.core.tid_base.next = 0.into();
                // No fault injection in the self check: the test equipment stays off.
                self.core.fault_site.next = 0.into();
                self.core.fault_kind.next = FaultKind::Off;
                self.core.fault_target.next = 0.into();
                self.core.fault_line.next = 0.into();
                self.core.fault_restart.next = false;
                self.core.clear.next = self.state.q.val() == SelfCheckState::Clear;
                self.order_checker.tuple_words.next = self.tuple_words.val();
                self.order_checker.key_words.next = self.check_key_words.val();
                self.order_checker.descending.next = false;
                self.order_checker.clear.next = self.state.q.val() == SelfCheckState::Clear;
                TupleStreamOut::join(&mut self.gen_slice.data_out, &mut self.core.data_in);
                TupleStreamOut::join(&mut self.core.data_out, &mut self.order_checker.data_in);
                self.order_checker.data_out.ready.next = true;

                // ---- Outputs.
                self.done.next = self.done_r.q.val();
                self.fail.next = self.failed.q.val();
                self.pass.next = self.done_r.q.val() & !self.failed.q.val();
                self.failed_test.next = self.code.q.val();
                self.heartbeat.next =
                    (self.rounds.q.val() & self.heartbeat_mask.val()) != self.zero16.val();

                // ---- Test pattern generator.
                self.lfsr_next.next = self.lfsr.q.val() >> 1;
                if self.lfsr.q.val().get_bit(0) {
                    self.lfsr_next.next = (self.lfsr.q.val() >> 1) ^ self.taps.val();
                }
                self.gen_word.next = self.lfsr.q.val();
                if self.in_k.q.val() == self.zero12.val() {
                    self.gen_word.next = self.zero16.val();
                } else if self.in_k.q.val() == self.one12.val() {
                    self.gen_word.next = self.lfsr.q.val() & self.key_mask.val();
                }
                self.parity_gen.data.next = self.gen_word.val();
                self.fault_here.next =
                    self.fault_inject.val() & (self.in_words.q.val() == self.fault_word.val());
                self.fault_mask.next = self.zero16.val();
                if self.fault_here.val() {
                    self.fault_mask.next = self.one16.val() << self.fault_bit.val();
                }
                self.sent_word.next = self.gen_word.val() ^ self.fault_mask.val();
                self.fault_parity_gen.data.next = self.sent_word.val();
                self.sent_parity.next = self.parity_gen.parity.val();
                if self.fault_here.val() & self.fault_fix_parity.val() {
                    self.sent_parity.next = self.fault_parity_gen.parity.val();
                }
                self.in_k_last.next = self.in_k.q.val() == self.last_word.val();
                self.send_eos.next = self.in_words.q.val() == self.total_words.val();
                self.sending.next = self.state.q.val() == SelfCheckState::Send;
                self.gen_slice.data_in.valid.next = self.sending.val();
                self.gen_slice.data_in.word.next.data = self.sent_word.val();
                self.gen_slice.data_in.word.next.parity = self.sent_parity.val();
                self.gen_slice.data_in.word.next.null = false;
                self.gen_slice.data_in.word.next.dup = false;
                self.gen_slice.data_in.word.next.last = self.in_k_last.val();
                self.gen_slice.data_in.word.next.eos = false;
                if self.send_eos.val() {
                    self.gen_slice.data_in.word.next.data = 0.into();
                    self.gen_slice.data_in.word.next.parity = 0.into();
                    self.gen_slice.data_in.word.next.last = false;
                    self.gen_slice.data_in.word.next.eos = true;
                }
                self.in_fire.next = self.sending.val() & self.gen_slice.data_in.ready.val();
                if self.in_fire.val() & !self.send_eos.val() {
                    self.in_words.d.next = self.in_words.q.val() + 1;
                    self.lfsr.d.next = self.lfsr_next.val();
                    self.in_sum.d.next =
                        self.in_sum.q.val() + (self.gen_word.val() ^ self.in_mix.q.val());
                    self.in_xor.d.next = self.in_xor.q.val() ^ self.gen_word.val();
                    if self.in_k_last.val() {
                        self.in_k.d.next = self.zero12.val();
                        self.in_mix.d.next = self.zero16.val();
                    } else {
                        self.in_k.d.next = self.in_k.q.val() + self.one12.val();
                        self.in_mix.d.next = self.in_mix.q.val() + self.mix_step.val();
                    }
                }

                // ---- DP as the core sends it (the core's sorting checker, through PASS-1).
                self.core_fire.next =
                    self.core.data_out.valid.val() & self.order_checker.data_in.ready.val();
                if self.core_fire.val()
                    & !self.core.data_out.word.val().eos
                    & self.core.data_out.word.val().last
                    & self.core.data_out.word.val().dup
                {
                    self.core_dups.d.next = self.core_dups.q.val() + self.one16.val();
                }

                // ---- Output side: after this block's sorting checker.
                self.out_fire.next = self.order_checker.data_out.valid.val();
                self.out_parity_gen.data.next = self.order_checker.data_out.word.val().data;
                self.out_k_last.next = self.out_k.q.val() == self.last_word.val();
                if self.out_fire.val() & !self.order_checker.data_out.word.val().eos {
                    self.out_words.d.next = self.out_words.q.val() + self.one16.val();
                    self.out_sum.d.next = self.out_sum.q.val()
                        + (self.order_checker.data_out.word.val().data ^ self.out_mix.q.val());
                    self.out_xor.d.next =
                        self.out_xor.q.val() ^ self.order_checker.data_out.word.val().data;
                    if self.out_parity_gen.parity.val() != self.order_checker.data_out.word.val().parity {
                        self.out_perr.d.next = true;
                    }
                    if self.order_checker.data_out.word.val().null {
                        self.frame_err.d.next = true;
                    }
                    if self.order_checker.data_out.word.val().last {
                        self.out_tuples.d.next = self.out_tuples.q.val() + self.one16.val();
                        self.out_k.d.next = self.zero12.val();
                        self.out_mix.d.next = self.zero16.val();
                        if !self.out_k_last.val() {
                            self.frame_err.d.next = true;
                        }
                        if self.order_checker.data_out.word.val().dup {
                            self.check_dups.d.next = self.check_dups.q.val() + self.one16.val();
                        }
                    } else {
                        self.out_k.d.next = self.out_k.q.val() + self.one12.val();
                        self.out_mix.d.next = self.out_mix.q.val() + self.mix_step.val();
                        if self.out_k_last.val() {
                            self.frame_err.d.next = true;
                        }
                    }
                }

                // ---- The checks (read in the verdict state).
                self.parity_bad.next = self.core.parity_error.val()
                    | self.order_checker.parity_error.val()
                    | self.out_perr.q.val();
                self.core_bad.next = self.core.framing_error.val()
                    | self.core.link_error.val()
                    | self.core.sort_error.val()
                    | (self.core.violations.val() != self.zero16.val())
                    | self.core.command_error.val()
                    | self.core.u_overflow.val()
                    | self.core.l_overflow.val()
                    | (self.core.capacity_tuples.val() < self.tuples.val())
                    | (self.core.u_tuples.val() != self.zero16.val())
                    | self.core.busy.val()
                    | self.core.input_unneeded.val();
                self.count_bad.next = (self.out_tuples.q.val() != self.tuples.val())
                    | (self.out_words.q.val() != self.total_words.val())
                    | self.frame_err.q.val()
                    | (self.core.l_taken.val() != self.tuples32.val());
                self.order_bad.next = self.order_checker.sort_error.val()
                    | (self.order_checker.violations.val() != self.zero16.val());
                self.dup_bad.next = self.core_dups.q.val() != self.check_dups.q.val();
                self.sum_bad.next = (self.out_sum.q.val() != self.in_sum.q.val())
                    | (self.out_xor.q.val() != self.in_xor.q.val());

                // ---- Sequencer.
                self.running.next = (self.state.q.val() == SelfCheckState::Send)
                    | (self.state.q.val() == SelfCheckState::Drain)
                    | (self.state.q.val() == SelfCheckState::Settle);
                if self.running.val() {
                    self.watchdog.d.next = self.watchdog.q.val() + 1;
                }
                match self.state.q.val() {
                    SelfCheckState::Wait => {
                        if !self.seeded.q.val() {
                            self.lfsr.d.next = self.seed.val();
                            self.seeded.d.next = true;
                        }
                        self.delay.d.next = self.delay.q.val() + 1;
                        if self.delay.q.val() == self.start_delay.val() {
                            self.state.d.next = SelfCheckState::Clear;
                        }
                    }
                    SelfCheckState::Clear => {
                        self.delay.d.next = 0.into();
                        self.watchdog.d.next = 0.into();
                        self.in_words.d.next = self.zero16.val();
                        self.in_k.d.next = self.zero12.val();
                        self.in_sum.d.next = self.zero16.val();
                        self.in_xor.d.next = self.zero16.val();
                        self.in_mix.d.next = self.zero16.val();
                        self.out_words.d.next = self.zero16.val();
                        self.out_tuples.d.next = self.zero16.val();
                        self.out_k.d.next = self.zero12.val();
                        self.out_sum.d.next = self.zero16.val();
                        self.out_xor.d.next = self.zero16.val();
                        self.out_mix.d.next = self.zero16.val();
                        self.out_perr.d.next = false;
                        self.frame_err.d.next = false;
                        self.core_dups.d.next = self.zero16.val();
                        self.check_dups.d.next = self.zero16.val();
                        self.state.d.next = SelfCheckState::Send;
                    }
                    SelfCheckState::Send => {
                        if self.in_fire.val() & self.send_eos.val() {
                            self.state.d.next = SelfCheckState::Drain;
                        }
                    }
                    SelfCheckState::Drain => {
                        if self.out_fire.val() & self.order_checker.data_out.word.val().eos {
                            self.state.d.next = SelfCheckState::Settle;
                        }
                    }
                    SelfCheckState::Settle => {
                        self.delay.d.next = self.delay.q.val() + 1;
                        if self.delay.q.val() == self.settle_cycles.val() {
                            self.state.d.next = SelfCheckState::Verdict;
                        }
                    }
                    SelfCheckState::Verdict => {
                        self.delay.d.next = 0.into();
                        self.done_r.d.next = true;
                        self.state.d.next = SelfCheckState::Halt;
                        self.failed.d.next = true;
                        if self.parity_bad.val() {
                            self.code.d.next = 2.into();
                        } else if self.core_bad.val() {
                            self.code.d.next = 3.into();
                        } else if self.count_bad.val() {
                            self.code.d.next = 4.into();
                        } else if self.order_bad.val() {
                            self.code.d.next = 5.into();
                        } else if self.dup_bad.val() {
                            self.code.d.next = 6.into();
                        } else if self.sum_bad.val() {
                            self.code.d.next = 7.into();
                        } else {
                            self.failed.d.next = false;
                            self.rounds.d.next = self.rounds.q.val() + self.one16.val();
                            self.state.d.next = SelfCheckState::Wait;
                        }
                    }
                    SelfCheckState::Halt => {}
                }
                // The watchdog: a round that has not reached its verdict in time fails.
                if self.running.val() & (self.watchdog.q.val() == self.watchdog_limit.val()) {
                    self.done_r.d.next = true;
                    self.failed.d.next = true;
                    self.code.d.next = 1.into();
                    self.state.d.next = SelfCheckState::Halt;
                }
            }
        }

        impl $crate::harness::Clocked for $name {
            fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
                &mut self.clock
            }
        }
    };
}

define_self_check!(
    /// The self check of the iCE40-sized engine core ([SmallEngineCore]): the HX8K
    /// breakout's and the ULX3S's.
    SelfCheckSmall,
    SmallEngineCore,
    SortingChecker<4, 5>,
    MergerSmall,
    &SMALL_CELL_ADDRESS_BITS,
    SelfCheckParams::default()
);

define_self_check!(
    /// The self check of the tiny engine core ([TinyEngineCore]: 3-cell sorter, 8 tuples of
    /// up to 16 words), the iCEBreaker's (the small core's does not fit the UP5K). Its
    /// checker is the small one's `SortingChecker<4, 5>` (tuples up to 8 words, the 16-word
    /// ring in block RAM), its parameters [SelfCheckParams::tiny].
    SelfCheckTiny,
    TinyEngineCore,
    SortingChecker<4, 5>,
    MergerTiny,
    &TINY_CELL_ADDRESS_BITS,
    SelfCheckParams::tiny()
);

/// Builds a board top around a self-check configuration `$check`: its verdict on six LEDs
/// (`led_pass` and `led_fail` active high, or active low when the block is built with
/// `new(_, true)`; the other LEDs active high on every board), no fault injection.
macro_rules! define_self_check_board {
    ($(#[$meta:meta])* $name:ident, $check:ty) => {
        $(#[$meta])*
        #[derive(LogicBlock)]
        pub struct $name {
            pub clock: Signal<In, Clock>,
            pub led_pass: Signal<Out, Bit>,
            pub led_fail: Signal<Out, Bit>,
            pub led_heartbeat: Signal<Out, Bit>,
            pub led_code0: Signal<Out, Bit>,
            pub led_code1: Signal<Out, Bit>,
            pub led_code2: Signal<Out, Bit>,
            check: $check,
            status_active_low: Constant<Bit>,
            code: Signal<Local, Bits<3>>,
        }

        impl $name {
            /// A board top running `params`; `status_active_low` inverts `led_pass` and
            /// `led_fail`.
            pub fn new(params: SelfCheckParams, status_active_low: bool) -> $name {
                $name {
                    clock: Default::default(),
                    led_pass: Default::default(),
                    led_fail: Default::default(),
                    led_heartbeat: Default::default(),
                    led_code0: Default::default(),
                    led_code1: Default::default(),
                    led_code2: Default::default(),
                    check: <$check>::new(params),
                    status_active_low: Constant::new(status_active_low),
                    code: Default::default(),
                }
            }
        }

        impl Logic for $name {
            #[hdl_gen]
            fn update(&mut self) {
                clock!(self, clock, check);
                // No fault injection on the board.
                self.check.fault_inject.next = false;
                self.check.fault_word.next = 0.into();
                self.check.fault_bit.next = 0.into();
                self.check.fault_fix_parity.next = false;
                self.led_pass.next = self.check.pass.val() ^ self.status_active_low.val();
                self.led_fail.next = self.check.fail.val() ^ self.status_active_low.val();
                self.led_heartbeat.next = self.check.heartbeat.val() & !self.check.fail.val();
                self.code.next = 0.into();
                if self.check.done.val() {
                    self.code.next = self.check.failed_test.val();
                }
                self.led_code0.next = self.code.val().get_bit(0);
                self.led_code1.next = self.code.val().get_bit(1);
                self.led_code2.next = self.code.val().get_bit(2);
            }
        }

        impl crate::harness::Clocked for $name {
            fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
                &mut self.clock
            }
        }

        impl SelfCheckLeds for $name {
            fn leds(&self) -> [bool; 6] {
                [
                    self.led_pass.val(),
                    self.led_fail.val(),
                    self.led_heartbeat.val(),
                    self.led_code0.val(),
                    self.led_code1.val(),
                    self.led_code2.val(),
                ]
            }
        }
    };
}

define_self_check_board!(
    /// The board top of the small engine core's self check ([SelfCheckSmall]) for the
    /// iCE40-HX8K breakout board and the ULX3S (ECP5-85); pins in
    /// `constraints/*-selfcheck.*`, LED meanings in `docs/SELF_CHECK.md`.
    ///
    /// `led_pass` and `led_fail` are active high, or active low when the block is built with
    /// [SelfCheckBoard::new]`(_, true)` (for boards with active-low LEDs; the iCEBreaker's
    /// UP5K does not hold the small core, its top is [SelfCheckTinyBoard::icebreaker]); the
    /// other LEDs are active high on every board.
    /// `led_heartbeat` blinks while rounds keep passing, `led_code0..2` show `failed_test`
    /// once a verdict is reached.
    SelfCheckBoard,
    SelfCheckSmall
);

impl Default for SelfCheckBoard {
    /// The iCE40-HX8K breakout's and the ULX3S's top: every LED active high.
    fn default() -> Self {
        SelfCheckBoard::new(SelfCheckParams::default(), false)
    }
}

define_self_check_board!(
    /// The board top of the tiny engine core's self check ([SelfCheckTiny]) for the
    /// iCEBreaker (iCE40UP5K): `constraints/up5k-selfcheck.pcf`, LEDs as [SelfCheckBoard]'s
    /// (`docs/SELF_CHECK.md`).
    SelfCheckTinyBoard,
    SelfCheckTiny
);

impl SelfCheckTinyBoard {
    /// The iCEBreaker's top: [SelfCheckParams::tiny], active-low pass and fail LEDs (the
    /// board's green LEDG_N and red LEDR_N).
    pub fn icebreaker() -> SelfCheckTinyBoard {
        SelfCheckTinyBoard::new(SelfCheckParams::tiny(), true)
    }
}

impl Default for SelfCheckTinyBoard {
    /// [SelfCheckTinyBoard::icebreaker]: the tiny core is the iCEBreaker's.
    fn default() -> Self {
        SelfCheckTinyBoard::icebreaker()
    }
}

/// The reference model: what the self check reports for given parameters and fault.
pub mod model {
    use super::{FailedTest, Fault, SelfCheckParams, MIX_STEP};
    use crate::engine_core::core_step_model_with_dup;
    use crate::sorting_checker::{sorting_checker_model, CheckerConfig};
    use crate::tuple_stream::{word_parity, StreamTuple};
    use anyhow::Result;

    /// Feedback taps of the Galois LFSR (x^16 + x^14 + x^13 + x^11 + 1, maximal length).
    pub const LFSR_TAPS: u16 = 0xB400;

    /// The LFSR's next state.
    pub fn lfsr_next(s: u16) -> u16 {
        if s & 1 == 1 {
            (s >> 1) ^ LFSR_TAPS
        } else {
            s >> 1
        }
    }

    /// One round's relation (compact tuples) from LFSR state `lfsr`, which is advanced
    /// once per data word.
    pub fn generate(p: &SelfCheckParams, lfsr: &mut u16) -> Vec<Vec<u16>> {
        (0..p.tuples)
            .map(|_| {
                (0..p.tuple_words)
                    .map(|k| {
                        let w = match k {
                            0 => 0,
                            1 => *lfsr & p.key_mask,
                            _ => *lfsr,
                        };
                        *lfsr = lfsr_next(*lfsr);
                        w
                    })
                    .collect()
            })
            .collect()
    }

    /// The order-independent checksum of a relation: (sum of `word ^ k * MIX_STEP` over
    /// word `k` of every tuple, XOR of every word), both modulo 2^16.
    pub fn checksum(tuples: &[Vec<u16>]) -> (u16, u16) {
        let mut sum = 0u16;
        let mut xor = 0u16;
        for t in tuples {
            for (k, &w) in t.iter().enumerate() {
                sum = sum.wrapping_add(w ^ (k as u16).wrapping_mul(MIX_STEP));
                xor ^= w;
            }
        }
        (sum, xor)
    }

    /// One round from LFSR state `lfsr` (advanced past the round's words) with `fault`:
    /// the failed check, or [FailedTest::None]. `cells`: the core's sorter.
    pub fn round_model(
        p: &SelfCheckParams,
        cells: &[usize],
        lfsr: &mut u16,
        fault: Option<Fault>,
    ) -> Result<FailedTest> {
        let clean = generate(p, lfsr);
        let mut sent = clean.clone();
        if let Some(f) = fault {
            let (t, k) = (
                f.word as usize / p.tuple_words,
                f.word as usize % p.tuple_words,
            );
            if t < p.tuples {
                let w = sent[t][k] ^ (1 << f.bit);
                if !f.fix_parity && word_parity(w) != word_parity(clean[t][k]) {
                    // The IN module checks every word's parity.
                    return Ok(FailedTest::Parity);
                }
                sent[t][k] = w;
            }
        }
        let out =
            core_step_model_with_dup(cells, &p.sort_settings(), &sent, &p.merger_config(), &[])?;
        if out.len() != p.tuples || out.iter().any(|(t, _)| t.len() != p.tuple_words) {
            return Ok(FailedTest::Count);
        }
        let check = CheckerConfig {
            tuple_words: p.tuple_words,
            key_words: 2,
            descending: false,
        };
        let stream: Vec<StreamTuple> = out
            .iter()
            .map(|(t, _)| StreamTuple::new(t.clone(), false))
            .collect();
        let report = sorting_checker_model(&check, &stream);
        if report.violations > 0 {
            return Ok(FailedTest::Order);
        }
        let core_dups = out.iter().filter(|(_, d)| *d).count();
        let check_dups = report.tuples.iter().filter(|t| t.dup).count();
        if core_dups != check_dups {
            return Ok(FailedTest::Dup);
        }
        let words: Vec<Vec<u16>> = out.into_iter().map(|(t, _)| t).collect();
        if checksum(&words) != checksum(&clean) {
            return Ok(FailedTest::Checksum);
        }
        Ok(FailedTest::None)
    }

    /// What the self check reports after its first `rounds` rounds (or its first failure):
    /// (rounds passed, the failed check or [FailedTest::None]). Timeouts are not modelled
    /// (a good core never takes `watchdog_cycles`).
    pub fn self_check_model(
        p: &SelfCheckParams,
        cells: &[usize],
        fault: Option<Fault>,
        rounds: usize,
    ) -> Result<(usize, FailedTest)> {
        let mut lfsr = p.seed;
        for r in 0..rounds {
            let verdict = round_model(p, cells, &mut lfsr, fault)?;
            if verdict != FailedTest::None {
                return Ok((r, verdict));
            }
        }
        Ok((rounds, FailedTest::None))
    }
}

#[cfg(test)]
mod tests {
    use super::model::*;
    use super::*;
    use crate::harness::Harness;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// What a run of the RTL reached.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Outcome {
        rounds: usize,
        failed: FailedTest,
    }

    /// Run the RTL of configuration `T` from power up until `rounds` rounds have passed or
    /// it fails; checks the outputs' consistency on the way. Returns the outcome and the
    /// cycles taken.
    fn run_on<T: SelfCheckTop>(
        p: SelfCheckParams,
        fault: Option<Fault>,
        rounds: usize,
    ) -> (Outcome, u64) {
        let mut h = Harness::new(T::with_params(p));
        h.uut.set_fault(fault);
        let limit = (rounds as u64 + 1) * (p.watchdog_cycles as u64 + 300);
        for _ in 0..limit {
            h.cycle();
            let o = h.uut.outputs();
            let (fail, code) = (o.fail, o.failed_test);
            assert_eq!(o.pass, o.done && !fail);
            assert!(!fail || o.done, "fail implies done");
            assert_eq!(fail, code != FailedTest::None, "code {code:?}");
            if fail || h.uut.rounds_passed() as usize >= rounds {
                // A failure halts the block: the verdict stays.
                for _ in 0..50 {
                    h.cycle();
                }
                assert_eq!(h.uut.outputs().fail, fail);
                assert_eq!(h.uut.outputs().failed_test, code);
                let r = h.uut.rounds_passed() as usize;
                if fail {
                    assert_eq!(h.uut.state(), SelfCheckState::Halt);
                }
                return (
                    Outcome {
                        rounds: if fail { r } else { rounds },
                        failed: code,
                    },
                    h.cycles,
                );
            }
        }
        panic!("no verdict in {limit} cycles");
    }

    /// [run_on] the small configuration.
    fn run(p: SelfCheckParams, fault: Option<Fault>, rounds: usize) -> (Outcome, u64) {
        run_on::<SelfCheckSmall>(p, fault, rounds)
    }

    /// The model's outcome for configuration `T`.
    fn expect_on<T: SelfCheckTop>(
        p: &SelfCheckParams,
        fault: Option<Fault>,
        rounds: usize,
    ) -> Outcome {
        let (r, failed) = self_check_model(p, T::cell_address_bits(), fault, rounds).unwrap();
        Outcome { rounds: r, failed }
    }

    fn expect(p: &SelfCheckParams, fault: Option<Fault>, rounds: usize) -> Outcome {
        expect_on::<SelfCheckSmall>(p, fault, rounds)
    }

    /// Cycles from power up to the first verdict of `T` with parameters `p` and no fault
    /// (which must be a pass).
    fn first_verdict<T: SelfCheckTop>(p: SelfCheckParams, limit: u64) -> u64 {
        let mut h = Harness::new(T::with_params(p));
        h.uut.set_fault(None);
        while !h.uut.outputs().done {
            h.cycle();
            assert!(h.cycles < limit, "no verdict in {limit} cycles");
        }
        assert!(h.uut.outputs().pass, "{:?}", h.uut.outputs());
        h.cycles
    }

    /// `cases` random parameter sets (seeds, sizes up to the capacity of `T`, key masks,
    /// start delays) and faults, two rounds each, the RTL of `T` against the model; the
    /// verdicts seen.
    fn random_cases_match_the_model<T: SelfCheckTop>(
        seed: u64,
        cases: usize,
    ) -> std::collections::HashSet<FailedTest> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut seen = std::collections::HashSet::new();
        for case in 0..cases {
            let tuple_words = rng.gen_range(2..=8);
            let cap = capacity_tuples(T::cell_address_bits(), tuple_words);
            let p = SelfCheckParams {
                tuples: rng.gen_range(1..=cap),
                tuple_words,
                seed: rng.gen_range(1..=u16::MAX),
                key_mask: [0x0003, 0x00FF, 0xFFFF][rng.gen_range(0..3)],
                start_delay: rng.gen_range(1..=20),
                ..SelfCheckParams::default()
            };
            let words = (p.tuples * p.tuple_words) as u16;
            let fault = rng.gen_bool(0.75).then(|| Fault {
                // Now and then a word past the round's end: no fault at all.
                word: rng.gen_range(0..words + 2),
                bit: rng.gen_range(0..16),
                fix_parity: rng.gen_bool(0.7),
            });
            let got = run_on::<T>(p, fault, 2).0;
            let want = expect_on::<T>(&p, fault, 2);
            assert_eq!(got, want, "case {case}: {p:?} {fault:?}");
            seen.insert(got.failed);
        }
        seen
    }

    #[test]
    fn lfsr_has_maximal_period_and_the_model_generates_the_documented_pattern() {
        let mut s = 1u16;
        let mut period = 0u32;
        loop {
            s = lfsr_next(s);
            period += 1;
            assert_ne!(s, 0);
            if s == 1 {
                break;
            }
        }
        assert_eq!(period, 65535);
        let p = SelfCheckParams {
            tuples: 2,
            tuple_words: 3,
            seed: 0x0003,
            key_mask: 0x000F,
            ..SelfCheckParams::default()
        };
        let mut lfsr = p.seed;
        let r = generate(&p, &mut lfsr);
        // 3 -> 0xB401 -> 0xEE00 -> 0x7700 -> 0x3B80 -> 0x1DC0 -> 0x0EE0.
        assert_eq!(
            r,
            vec![vec![0, 0xB401 & 0xF, 0xEE00], vec![0, 0x3B80 & 0xF, 0x1DC0]]
        );
        assert_eq!(lfsr, 0x0EE0);
    }

    #[test]
    fn checksum_ignores_tuple_order_but_not_word_order_or_values() {
        let a = vec![vec![0, 5, 9], vec![0, 2, 7]];
        let b = vec![vec![0, 2, 7], vec![0, 5, 9]];
        let swapped = vec![vec![0, 9, 5], vec![0, 2, 7]];
        let flipped = vec![vec![0, 5, 9 ^ 0x100], vec![0, 2, 7]];
        assert_eq!(checksum(&a), checksum(&b));
        assert_ne!(checksum(&a), checksum(&swapped));
        assert_ne!(checksum(&a), checksum(&flipped));
    }

    #[test]
    fn parameters_are_checked_against_the_small_core() {
        let ok = SelfCheckParams::default();
        SelfCheckSmall::validate(&ok).unwrap();
        for (bad, what) in [
            (SelfCheckParams { tuples: 33, ..ok }, "capacity"),
            (SelfCheckParams { tuples: 0, ..ok }, "tuples"),
            (
                SelfCheckParams {
                    tuple_words: 9,
                    ..ok
                },
                "tuple_words",
            ),
            (
                SelfCheckParams {
                    tuple_words: 1,
                    ..ok
                },
                "tuple_words",
            ),
            (SelfCheckParams { seed: 0, ..ok }, "seed"),
            (
                SelfCheckParams {
                    watchdog_cycles: 1 << 24,
                    ..ok
                },
                "watchdog",
            ),
        ] {
            let e = SelfCheckSmall::validate(&bad).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn self_check_passes_on_a_good_core_round_after_round() {
        let p = SelfCheckParams::default();
        let t = std::time::Instant::now();
        // The first verdict: start delay, clear, 128 words in, the sort, 128 words out.
        let first = first_verdict::<SelfCheckSmall>(p, 2_000);
        assert!(
            first > 2 * 128,
            "{first} cycles: the round cannot be shorter"
        );
        let (got, cycles) = run(p, None, 3);
        assert_eq!(got, expect(&p, None, 3));
        assert_eq!(
            got,
            Outcome {
                rounds: 3,
                failed: FailedTest::None
            }
        );
        eprintln!(
            "first verdict after {first} cycles; 3 rounds of {} x {} words: {cycles} cycles, \
             {:.1} s",
            p.tuples,
            p.tuple_words,
            t.elapsed().as_secs_f64()
        );
    }

    #[test]
    fn self_check_catches_a_bit_flip_by_parity() {
        let p = SelfCheckParams::default();
        for (word, bit) in [(0u16, 0u8), (5, 15), (127, 7)] {
            let f = Some(Fault {
                word,
                bit,
                fix_parity: false,
            });
            let got = run(p, f, 2).0;
            assert_eq!(got, expect(&p, f, 2));
            assert_eq!(
                got,
                Outcome {
                    rounds: 0,
                    failed: FailedTest::Parity
                },
                "{f:?}"
            );
        }
    }

    #[test]
    fn self_check_catches_parity_consistent_faults_by_checksum_and_order() {
        let p = SelfCheckParams::default();
        // Word 6 is tuple 1's payload, word 9 tuple 2's key, word 4 tuple 1's tag word
        // (bit 0: field 0's null bit, which the output keeps and the order check sees).
        for (word, bit, failed) in [
            (6u16, 3u8, FailedTest::Checksum),
            (9, 2, FailedTest::Checksum),
            (4, 0, FailedTest::Order),
        ] {
            let f = Some(Fault {
                word,
                bit,
                fix_parity: true,
            });
            let got = run(p, f, 2).0;
            assert_eq!(got, expect(&p, f, 2), "{f:?}");
            assert_eq!(got, Outcome { rounds: 0, failed }, "{f:?}");
        }
    }

    #[test]
    fn self_check_catches_a_dp_line_disagreement() {
        // All keys equal (mask 0): the stable sort keeps the input order, the core's DP is
        // set on every tuple but the last. A tag bit set in the last tuple breaks no order
        // (it stays last), but this block's checker, whose key includes the tag word, sees
        // the last two tuples differ: the DP counts disagree (before the checksum does).
        let p = SelfCheckParams {
            tuples: 8,
            key_mask: 0,
            ..SelfCheckParams::default()
        };
        let last_tag = (7 * p.tuple_words) as u16;
        let f = Some(Fault {
            word: last_tag,
            bit: 1,
            fix_parity: true,
        });
        let got = run(p, f, 1).0;
        assert_eq!(got, expect(&p, f, 1));
        assert_eq!(
            got,
            Outcome {
                rounds: 0,
                failed: FailedTest::Dup
            }
        );
        // The same bit in an earlier tuple's tag word: out of order.
        let f = Some(Fault {
            word: 0,
            bit: 1,
            fix_parity: true,
        });
        assert_eq!(
            run(p, f, 1).0,
            Outcome {
                rounds: 0,
                failed: FailedTest::Order
            }
        );
        assert_eq!(expect(&p, f, 1).failed, FailedTest::Order);
    }

    #[test]
    fn self_check_misses_only_a_tag_bit_the_output_drops() {
        // Tag bit 15 flags field 15 null; a 4-word tuple has 3 fields, so the output
        // control part drops it: the fault never reaches the output, the model and the
        // RTL agree that the check passes.
        let p = SelfCheckParams::default();
        let f = Some(Fault {
            word: 8,
            bit: 15,
            fix_parity: true,
        });
        let got = run(p, f, 1).0;
        assert_eq!(got, expect(&p, f, 1));
        assert_eq!(
            got,
            Outcome {
                rounds: 1,
                failed: FailedTest::None
            }
        );
    }

    #[test]
    fn self_check_watchdog_fails_a_round_that_takes_too_long() {
        let p = SelfCheckParams {
            watchdog_cycles: 40,
            ..SelfCheckParams::default()
        };
        let got = run(p, None, 1).0;
        assert_eq!(
            got,
            Outcome {
                rounds: 0,
                failed: FailedTest::Timeout
            }
        );
    }

    #[test]
    fn self_check_random_seeds_sizes_and_faults_match_the_model() {
        let t = std::time::Instant::now();
        let seen = random_cases_match_the_model::<SelfCheckSmall>(55, 30);
        eprintln!(
            "30 random cases: {:.1} s, verdicts {seen:?}",
            t.elapsed().as_secs_f64()
        );
        assert!(
            seen.contains(&FailedTest::None) && seen.len() >= 3,
            "{seen:?}"
        );
    }

    /// Run a board top until `cycles` and return the LED levels then, and whether the
    /// heartbeat LED changed on the way.
    fn board_leds<B: SelfCheckLeds>(board: B, cycles: u64) -> ([bool; 6], bool) {
        let mut h = Harness::new(board);
        let mut last_heartbeat = h.uut.leds()[2];
        let mut blinked = false;
        for _ in 0..cycles {
            h.cycle();
            blinked |= h.uut.leds()[2] != last_heartbeat;
            last_heartbeat = h.uut.leds()[2];
        }
        (h.uut.leds(), blinked)
    }

    /// A board top built by `new` with short rounds (`p`, 4 tuples) and a fast heartbeat:
    /// pass lit and fail dark in both polarities, no code, the heartbeat blinks.
    fn board_shows_pass_in_both_polarities<B: SelfCheckLeds>(
        new: fn(SelfCheckParams, bool) -> B,
        p: SelfCheckParams,
    ) {
        let p = SelfCheckParams {
            tuples: 4,
            heartbeat_log2: 1,
            ..p
        };
        let (leds, blinked) = board_leds(new(p, false), 3000);
        assert_eq!(&leds[..2], &[true, false], "pass lit, fail dark: {leds:?}");
        assert_eq!(
            &leds[3..],
            &[false, false, false],
            "no failed test: {leds:?}"
        );
        assert!(blinked, "heartbeat");
        let (leds, _) = board_leds(new(p, true), 3000);
        assert_eq!(
            &leds[..2],
            &[false, true],
            "active low: pass pin low: {leds:?}"
        );
    }

    /// A board top built by `new` whose watchdog fires: fail lit, code 1, no heartbeat.
    fn board_shows_a_timeout<B: SelfCheckLeds>(
        new: fn(SelfCheckParams, bool) -> B,
        p: SelfCheckParams,
    ) {
        let p = SelfCheckParams {
            tuples: 4,
            watchdog_cycles: 10,
            ..p
        };
        let (leds, blinked) = board_leds(new(p, false), 200);
        assert_eq!(
            leds,
            [false, true, false, true, false, false],
            "code 1: {leds:?}"
        );
        assert!(!blinked);
    }

    #[test]
    fn self_check_board_shows_pass_in_both_polarities_and_blinks() {
        // Short rounds and a fast heartbeat so a few thousand cycles show everything.
        board_shows_pass_in_both_polarities(SelfCheckBoard::new, SelfCheckParams::default());
    }

    #[test]
    fn self_check_board_shows_a_timeout_on_the_code_leds() {
        board_shows_a_timeout(SelfCheckBoard::new, SelfCheckParams::default());
    }

    #[test]
    fn self_check_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(SelfCheckSmall::default());
        crate::verilog::check_module("self_check", &v).unwrap();
    }

    #[test]
    fn self_check_board_verilog_passes_yosys_and_verilator() {
        for (name, board) in [
            ("self_check_board", SelfCheckBoard::default()),
            (
                "self_check_board_active_low",
                SelfCheckBoard::new(SelfCheckParams::default(), true),
            ),
        ] {
            let v = crate::verilog::export(board);
            crate::verilog::check_module(name, &v).unwrap();
        }
    }

    // ---- The tiny configuration (the iCEBreaker's): the same checks on its core.

    #[test]
    fn self_check_tiny_parameters_are_checked_against_the_tiny_core() {
        let ok = SelfCheckParams::tiny();
        SelfCheckTiny::validate(&ok).unwrap();
        assert_eq!(SelfCheckTiny::default_params(), ok);
        assert_eq!(
            capacity_tuples(SelfCheckTiny::cell_address_bits(), ok.tuple_words),
            ok.tuples,
            "a round fills the tiny sorter"
        );
        for (bad, what) in [
            // The tiny sorter's capacity is 8 tuples of up to 16 words.
            (SelfCheckParams { tuples: 9, ..ok }, "capacity"),
            // The self check's checker takes up to 8 words.
            (
                SelfCheckParams {
                    tuple_words: 9,
                    ..ok
                },
                "tuple_words",
            ),
            // The small core's default (32 tuples) does not fit the tiny one.
            (SelfCheckParams::default(), "capacity"),
        ] {
            let e = SelfCheckTiny::validate(&bad).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn self_check_tiny_passes_on_a_good_core_and_reports_injected_faults() {
        let p = SelfCheckParams::tiny();
        let t = std::time::Instant::now();
        // Start delay, clear, 64 words in, the sort, 64 words out.
        let first = first_verdict::<SelfCheckTiny>(p, 1_000);
        assert!(
            first > 2 * 64,
            "{first} cycles: the round cannot be shorter"
        );
        let (got, cycles) = run_on::<SelfCheckTiny>(p, None, 3);
        assert_eq!(got, expect_on::<SelfCheckTiny>(&p, None, 3));
        assert_eq!(
            got,
            Outcome {
                rounds: 3,
                failed: FailedTest::None
            }
        );
        // 8-word tuples: word 8 is tuple 1's tag word, 9 its key, 10 its payload.
        for (word, bit, fix_parity, failed) in [
            (0u16, 0u8, false, FailedTest::Parity),
            (63, 15, false, FailedTest::Parity),
            (10, 3, true, FailedTest::Checksum),
            (9, 2, true, FailedTest::Checksum),
            (8, 0, true, FailedTest::Order),
        ] {
            let f = Some(Fault {
                word,
                bit,
                fix_parity,
            });
            let got = run_on::<SelfCheckTiny>(p, f, 2).0;
            assert_eq!(got, expect_on::<SelfCheckTiny>(&p, f, 2), "{f:?}");
            assert_eq!(got, Outcome { rounds: 0, failed }, "{f:?}");
        }
        eprintln!(
            "tiny: first verdict after {first} cycles; 3 rounds of {} x {} words: {cycles} \
             cycles; with the faults {:.1} s",
            p.tuples,
            p.tuple_words,
            t.elapsed().as_secs_f64()
        );
    }

    #[test]
    fn self_check_tiny_random_seeds_sizes_and_faults_match_the_model() {
        let seen = random_cases_match_the_model::<SelfCheckTiny>(57, 20);
        assert!(
            seen.contains(&FailedTest::None) && seen.len() >= 3,
            "{seen:?}"
        );
    }

    #[test]
    fn self_check_tiny_board_shows_its_verdict_on_the_icebreaker_leds() {
        board_shows_pass_in_both_polarities(SelfCheckTinyBoard::new, SelfCheckParams::tiny());
        board_shows_a_timeout(SelfCheckTinyBoard::new, SelfCheckParams::tiny());
        // The exported top (the iCEBreaker's): the board's parameters, LEDG_N and LEDR_N
        // active low, so a pass drives led_pass low and led_fail high.
        let (leds, _) = board_leds(SelfCheckTinyBoard::default(), 1_000);
        assert_eq!(leds, [false, true, false, false, false, false], "{leds:?}");
    }

    #[test]
    fn self_check_tiny_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(SelfCheckTiny::default());
        crate::verilog::check_module("self_check_tiny", &v).unwrap();
        let v = crate::verilog::export(SelfCheckTinyBoard::icebreaker());
        crate::verilog::check_module("self_check_tiny_board_icebreaker", &v).unwrap();
    }
}
