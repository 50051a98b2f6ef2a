//! Merger (paper §4.3, Fig. 5–9): the engine core's module for every relational operation,
//! run as a merge of two sorted streams held in U-memory and L-memory.
//!
//! This file holds the merger's command set, its pure-Rust reference model (the semantics
//! of all 29 commands of Fig. 5 as written in `docs/MERGER.md`, §4.3's JOIN-EQ algorithm
//! with the DP lines and LADR*, delete mode) and the [Merger] block: the operation part
//! ([crate::operation_part], with the control ROM of [crate::control_rom]) feeding the
//! output control part ([crate::output_control_part]), as in Fig. 6.
//!
//! The merger takes the sorted stream from the sorting checker (the L input; LOAD stores
//! it into U-memory instead) and sends compact tuples to the HM adapter (OUT).
use crate::in_module::{transform_key, KeyType};
use crate::memory_fault::{LiveMemory, StoredWords};
use crate::operation_part::{CommandSettings, OperationPart};
use crate::output_control_part::{
    output_dup, output_tuple, OutputControlPart, OutputFormat, OutputSettings,
};
use crate::stream_slice::SelectedSlice;
use crate::tuple_stream::{StreamTuple, TupleStreamIn, TupleStreamOut};
use anyhow::{bail, ensure, Result};
use rust_hdl::prelude::*;

/// The merger (Fig. 6): operation part and output control part. U- and L-memory hold 2^A
/// words each, the tuple memories 2^B; `P = A + 1`, `Q = B + 1`.
#[derive(LogicBlock)]
pub struct Merger<const A: usize, const P: usize, const B: usize, const Q: usize> {
    pub clock: Signal<In, Clock>,
    pub data_in: TupleStreamIn,
    pub data_out: TupleStreamOut,
    /// The command and its settings, sampled when a stream starts.
    pub settings: Signal<In, CommandSettings>,
    pub u_format: Signal<In, OutputFormat>,
    pub l_format: Signal<In, OutputFormat>,
    pub new_tid: Signal<In, Bit>,
    pub tid_base: Signal<In, Bits<32>>,
    pub clear: Signal<In, Bit>,
    pub command_error: Signal<Out, Bit>,
    pub u_overflow: Signal<Out, Bit>,
    pub l_overflow: Signal<Out, Bit>,
    pub parity_error: Signal<Out, Bit>,
    pub framing_error: Signal<Out, Bit>,
    pub u_tuples: Signal<Out, Bits<16>>,
    pub busy: Signal<Out, Bit>,
    /// L tuples the current (or last) command advanced past (the operation part's
    /// `l_taken`): after a partial-U SORT-EX, the index in L where the next chunk resumes.
    pub l_taken: Signal<Out, Bits<32>>,
    /// The command has ended but its input stream has not: the rest of the input is
    /// dropped, so its source may cut it short (the operation part's `input_unneeded`).
    pub input_unneeded: Signal<Out, Bit>,
    operation_part: OperationPart<A, P>,
    /// A register slice on the selected stream: the operation part's Decide cycle
    /// (registered ROM word → selection) and the output control part's write side are in
    /// different cycles (one cycle of latency, no throughput cost).
    selected_slice: SelectedSlice,
    output_control_part: OutputControlPart<B, Q>,
}

impl<const A: usize, const P: usize, const B: usize, const Q: usize> Default
    for Merger<A, P, B, Q>
{
    fn default() -> Self {
        Self {
            clock: Default::default(),
            data_in: Default::default(),
            data_out: Default::default(),
            settings: Default::default(),
            u_format: Default::default(),
            l_format: Default::default(),
            new_tid: Default::default(),
            tid_base: Default::default(),
            clear: Default::default(),
            command_error: Default::default(),
            u_overflow: Default::default(),
            l_overflow: Default::default(),
            parity_error: Default::default(),
            framing_error: Default::default(),
            u_tuples: Default::default(),
            busy: Default::default(),
            l_taken: Default::default(),
            input_unneeded: Default::default(),
            operation_part: Default::default(),
            selected_slice: Default::default(),
            output_control_part: Default::default(),
        }
    }
}

impl<const A: usize, const P: usize, const B: usize, const Q: usize> Logic for Merger<A, P, B, Q> {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(
            self,
            clock,
            operation_part,
            selected_slice,
            output_control_part
        );
        self.operation_part.data_in.word.next = self.data_in.word.val();
        self.operation_part.data_in.valid.next = self.data_in.valid.val();
        self.data_in.ready.next = self.operation_part.data_in.ready.val();
        self.selected_slice.data_in.word.next = self.operation_part.selected.word.val();
        self.selected_slice.data_in.from_u.next = self.operation_part.selected.from_u.val();
        self.selected_slice.data_in.unit_end.next = self.operation_part.selected.unit_end.val();
        self.selected_slice.data_in.valid.next = self.operation_part.selected.valid.val();
        self.operation_part.selected.ready.next = self.selected_slice.data_in.ready.val();
        self.output_control_part.data_in.word.next = self.selected_slice.data_out.word.val();
        self.output_control_part.data_in.from_u.next = self.selected_slice.data_out.from_u.val();
        self.output_control_part.data_in.unit_end.next =
            self.selected_slice.data_out.unit_end.val();
        self.output_control_part.data_in.valid.next = self.selected_slice.data_out.valid.val();
        self.selected_slice.data_out.ready.next = self.output_control_part.data_in.ready.val();
        self.data_out.word.next = self.output_control_part.data_out.word.val();
        self.data_out.valid.next = self.output_control_part.data_out.valid.val();
        self.output_control_part.data_out.ready.next = self.data_out.ready.val();
        self.operation_part.settings.next = self.settings.val();
        self.operation_part.clear.next = self.clear.val();
        self.output_control_part.u_format.next = self.u_format.val();
        self.output_control_part.l_format.next = self.l_format.val();
        self.output_control_part.new_tid.next = self.new_tid.val();
        self.output_control_part.tid_base.next = self.tid_base.val();
        self.output_control_part.clear.next = self.clear.val();
        self.command_error.next = self.operation_part.command_error.val();
        self.u_overflow.next = self.operation_part.u_overflow.val();
        self.l_overflow.next = self.operation_part.l_overflow.val();
        self.u_tuples.next = self.operation_part.u_tuples.val();
        self.busy.next = self.operation_part.busy.val();
        self.l_taken.next = self.operation_part.l_taken.val();
        self.input_unneeded.next = self.operation_part.input_unneeded.val();
        self.parity_error.next =
            self.output_control_part.parity_error.val() | self.operation_part.parity_error.val();
        self.framing_error.next = self.output_control_part.framing_error.val();
    }
}

crate::impl_stream_block!(
    generic [const A: usize, const P: usize, const B: usize, const Q: usize] Merger<A, P, B, Q>
);

/// The paper's merger: 64 KB U- and L-memories (32K words), 16 KB tuple memories.
pub type MergerDelta = Merger<15, 16, 13, 14>;
/// A merger for the iCE40 HX8K: 256-word U- and L-memories and tuple memories.
pub type MergerSmall = Merger<8, 9, 8, 9>;

impl<const A: usize, const P: usize, const B: usize, const Q: usize> StoredWords
    for Merger<A, P, B, Q>
{
    /// The operation part's U- and L-memories, then the output control part's two tuple
    /// memories.
    fn live_memories(&mut self) -> Vec<LiveMemory<'_>> {
        let mut memories: Vec<_> = (self.operation_part.live_memories().into_iter())
            .map(|m| m.within("operation_part"))
            .collect();
        memories.extend(
            (self.output_control_part.live_memories().into_iter())
                .map(|m| m.within("output_control_part")),
        );
        memories
    }
}

impl<const A: usize, const P: usize, const B: usize, const Q: usize> Merger<A, P, B, Q> {
    /// Words of U-memory and of L-memory.
    pub const MEMORY_WORDS: usize = 1 << A;
    /// Words of each tuple memory of the output control part (a tuple must fit).
    pub const TUPLE_MEMORY_WORDS: usize = 1 << B;
}

/// Everything the control program sets for one merger command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergerConfig {
    pub command: MergerCommand,
    /// Delete mode (§5.1) instead of `command`.
    pub delete: bool,
    pub settings: MergerSettings,
    /// Words per tuple of the arriving stream.
    pub tuple_words: usize,
    pub output: OutputSettings,
}

impl MergerConfig {
    pub fn validate(&self, tuple_memory_words: usize) -> Result<()> {
        let s = &self.settings;
        // The key may be the whole tuple, tag word included (set operations compare whole
        // tuples); `testbench/tests/merger_commands.rs` checks such keys on the RTL.
        ensure!(
            s.key_words >= 1 && s.key_words <= self.tuple_words,
            "key_words = {} for {}-word tuples",
            s.key_words,
            self.tuple_words
        );
        if self.command.compares_attributes() {
            ensure!(
                s.second_offset + s.key_words < self.tuple_words,
                "second attribute at words {}..{} lies outside the {}-word tuple (tag word last)",
                s.second_offset,
                s.second_offset + s.key_words,
                self.tuple_words
            );
        }
        if let Some(b) = s.second_null_bit {
            ensure!(b < 16, "second_null_bit = {b}: the tag word has 16 bits");
        }
        if s.u_partial {
            ensure!(
                self.command == MergerCommand::SortEx && !self.delete,
                "u_partial (partial-U mode) is a SORT-EX setting, not one of {}",
                if self.delete {
                    "delete mode"
                } else {
                    self.command.name()
                }
            );
        }
        if s.second_type == KeyType::Float {
            ensure!(
                s.key_words == 2,
                "a float second attribute is 2 words; key_words = {}",
                s.key_words
            );
        }
        self.output.validate(tuple_memory_words)?;
        // LOAD sends nothing out: the formats may describe the relation it will meet.
        let loads = self.command == MergerCommand::Load && !self.delete;
        ensure!(
            loads || self.output.l.tuple_words == self.tuple_words,
            "the output format's L tuple length ({}) differs from the stream's ({})",
            self.output.l.tuple_words,
            self.tuple_words
        );
        Ok(())
    }

    pub fn apply<const A: usize, const P: usize, const B: usize, const Q: usize>(
        &self,
        m: &mut Merger<A, P, B, Q>,
    ) -> Result<()> {
        self.validate(Merger::<A, P, B, Q>::TUPLE_MEMORY_WORDS)?;
        m.settings.next = self.command_settings();
        m.u_format.next = self.output.u.to_bits();
        m.l_format.next = self.output.l.to_bits();
        m.new_tid.next = self.output.new_tid;
        m.tid_base.next = (self.output.tid_base as u64).into();
        m.clear.next = false;
        Ok(())
    }

    /// The operation part's settings port for this command.
    pub fn command_settings(&self) -> CommandSettings {
        let s = &self.settings;
        CommandSettings {
            command: (self.command.code() as u64).into(),
            delete_mode: self.delete,
            key_words: (s.key_words as u64).into(),
            descending: s.descending,
            tuple_words: (self.tuple_words as u64).into(),
            second_offset: (s.second_offset as u64).into(),
            second_nullable: s.second_null_bit.is_some(),
            second_null_bit: (s.second_null_bit.unwrap_or(0) as u64).into(),
            second_type: s.second_type.code().into(),
            u_partial: s.u_partial,
        }
    }

    /// Reference model of the whole merger: the compact tuples it sends for this command
    /// with `u` in U-memory and `l` arriving.
    pub fn model(&self, u: &[StreamTuple], l: &[StreamTuple]) -> Result<Vec<Vec<u16>>> {
        Ok(self
            .model_with_dup(u, l)?
            .into_iter()
            .map(|(t, _)| t)
            .collect())
    }

    /// The model's `l_taken` for this command ([model::merger_l_taken], or
    /// [model::delete_l_taken] in delete mode): the merger's `l_taken` port after it.
    pub fn model_l_taken(&self, u: &[StreamTuple], l: &[StreamTuple]) -> Result<usize> {
        if self.delete {
            Ok(model::delete_l_taken(&self.settings, u, l))
        } else {
            model::merger_l_taken(self.command, &self.settings, u, l)
        }
    }

    /// As [MergerConfig::model], with each output tuple's DP line: an output tuple made
    /// from an L tuple alone carries that L tuple's DP, one made from a U tuple or a pair
    /// DP = 0 (`docs/TUPLE_STREAM.md`).
    pub fn model_with_dup(
        &self,
        u: &[StreamTuple],
        l: &[StreamTuple],
    ) -> Result<Vec<(Vec<u16>, bool)>> {
        let selected = if self.delete {
            model::delete_model(&self.settings, u, l)
        } else {
            model::merger_model(self.command, &self.settings, u, l)?
        };
        Ok(selected
            .iter()
            .enumerate()
            .map(|(i, sel)| {
                let (a, b) = match *sel {
                    Selected::U(a) => (Some(&u[a]), None),
                    Selected::L(b) => (None, Some(&l[b])),
                    Selected::Pair(a, b) => (Some(&u[a]), Some(&l[b])),
                };
                (output_tuple(&self.output, i, a, b), output_dup(a, b))
            })
            .collect())
    }
}

/// The merger commands of Fig. 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MergerCommand {
    Load,
    Pass1,
    Pass2,
    SortIn,
    SortEx,
    UnqEx,
    RestNull,
    RestNonull,
    RestEq,
    RestNe,
    RestRange,
    CompAll,
    CompNull,
    CompNonull,
    CompEq,
    CompNe,
    CompLt,
    CompGt,
    CompLe,
    CompGe,
    JoinAll,
    JoinNull,
    JoinNonull,
    JoinEq,
    JoinNe,
    JoinLt,
    JoinGt,
    JoinLe,
    JoinGe,
}

/// A value comparison between two keys (or key and second attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Relop {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Relop {
    pub fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Relop::Eq => o == Equal,
            Relop::Ne => o != Equal,
            Relop::Lt => o == Less,
            Relop::Gt => o == Greater,
            Relop::Le => o != Greater,
            Relop::Ge => o != Less,
        }
    }
}

/// Which tuples a comparison-family command selects (see the null rule in MERGER.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// Every tuple or pair.
    All,
    /// The comparison is unknown: some compared value is null.
    Null,
    /// The comparison is defined: no compared value is null.
    NoNull,
    /// The comparison holds (never with a null).
    Compare(Relop),
}

impl MergerCommand {
    pub const ALL: [MergerCommand; 29] = [
        MergerCommand::Load,
        MergerCommand::Pass1,
        MergerCommand::Pass2,
        MergerCommand::SortIn,
        MergerCommand::SortEx,
        MergerCommand::UnqEx,
        MergerCommand::RestNull,
        MergerCommand::RestNonull,
        MergerCommand::RestEq,
        MergerCommand::RestNe,
        MergerCommand::RestRange,
        MergerCommand::CompAll,
        MergerCommand::CompNull,
        MergerCommand::CompNonull,
        MergerCommand::CompEq,
        MergerCommand::CompNe,
        MergerCommand::CompLt,
        MergerCommand::CompGt,
        MergerCommand::CompLe,
        MergerCommand::CompGe,
        MergerCommand::JoinAll,
        MergerCommand::JoinNull,
        MergerCommand::JoinNonull,
        MergerCommand::JoinEq,
        MergerCommand::JoinNe,
        MergerCommand::JoinLt,
        MergerCommand::JoinGt,
        MergerCommand::JoinLe,
        MergerCommand::JoinGe,
    ];

    /// The command's code on the merger's `command` port (its index in Fig. 5's order).
    pub fn code(self) -> usize {
        MergerCommand::ALL.iter().position(|&c| c == self).unwrap()
    }

    pub fn from_code(code: usize) -> Option<MergerCommand> {
        MergerCommand::ALL.get(code).copied()
    }

    /// The paper's name (Fig. 5).
    pub fn name(self) -> &'static str {
        use MergerCommand::*;
        match self {
            Load => "LOAD",
            Pass1 => "PASS-1",
            Pass2 => "PASS-2",
            SortIn => "SORT-IN",
            SortEx => "SORT-EX",
            UnqEx => "UNQ-EX",
            RestNull => "REST-NULL",
            RestNonull => "REST-NONULL",
            RestEq => "REST-EQ",
            RestNe => "REST-NE",
            RestRange => "REST-RANGE",
            CompAll => "COMP-ALL",
            CompNull => "COMP-NULL",
            CompNonull => "COMP-NONULL",
            CompEq => "COMP-EQ",
            CompNe => "COMP-NE",
            CompLt => "COMP-LT",
            CompGt => "COMP-GT",
            CompLe => "COMP-LE",
            CompGe => "COMP-GE",
            JoinAll => "JOIN-ALL",
            JoinNull => "JOIN-NULL",
            JoinNonull => "JOIN-NONULL",
            JoinEq => "JOIN-EQ",
            JoinNe => "JOIN-NE",
            JoinLt => "JOIN-LT",
            JoinGt => "JOIN-GT",
            JoinLe => "JOIN-LE",
            JoinGe => "JOIN-GE",
        }
    }

    /// Parse a Fig. 5 name; also accepts NOP and UNQ-IN for PASS-1 and PASS-2.
    pub fn parse(text: &str) -> Result<MergerCommand> {
        let t = text.trim().to_ascii_uppercase();
        match t.as_str() {
            "NOP" => return Ok(MergerCommand::Pass1),
            "UNQ-IN" => return Ok(MergerCommand::Pass2),
            _ => {}
        }
        MergerCommand::ALL
            .iter()
            .copied()
            .find(|c| c.name() == t)
            .ok_or_else(|| {
                anyhow::anyhow!("unknown merger command '{text}' (Fig. 5 names, e.g. JOIN-EQ)")
            })
    }

    /// The condition of a COMPARE ATTRIBUTES or JOIN command.
    pub fn condition(self) -> Option<Condition> {
        use MergerCommand::*;
        Some(match self {
            CompAll | JoinAll => Condition::All,
            CompNull | JoinNull => Condition::Null,
            CompNonull | JoinNonull => Condition::NoNull,
            CompEq | JoinEq => Condition::Compare(Relop::Eq),
            CompNe | JoinNe => Condition::Compare(Relop::Ne),
            CompLt | JoinLt => Condition::Compare(Relop::Lt),
            CompGt | JoinGt => Condition::Compare(Relop::Gt),
            CompLe | JoinLe => Condition::Compare(Relop::Le),
            CompGe | JoinGe => Condition::Compare(Relop::Ge),
            _ => return None,
        })
    }

    /// COMPARE ATTRIBUTES commands that look at the second attribute (all but COMP-ALL,
    /// which selects every tuple as PASS-1 does).
    pub fn compares_attributes(self) -> bool {
        use MergerCommand::*;
        matches!(
            self,
            CompNull | CompNonull | CompEq | CompNe | CompLt | CompGt | CompLe | CompGe
        )
    }

    /// The JOIN commands: the only ones whose output can exceed their input plus U-memory
    /// (every L tuple may pair with every U tuple).
    pub fn is_join(self) -> bool {
        use MergerCommand::*;
        matches!(
            self,
            JoinAll | JoinNull | JoinNonull | JoinEq | JoinNe | JoinLt | JoinGt | JoinLe | JoinGe
        )
    }

    /// Whether the command reads U-memory (a relation or condition values stored before).
    pub fn uses_u(self) -> bool {
        use MergerCommand::*;
        matches!(
            self,
            SortEx
                | UnqEx
                | RestEq
                | RestNe
                | RestRange
                | JoinAll
                | JoinNull
                | JoinNonull
                | JoinEq
                | JoinNe
                | JoinLt
                | JoinGt
                | JoinLe
                | JoinGe
        )
    }
}

/// What one output item of the merger is, by index into the inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Selected {
    /// The U tuple with this index.
    U(usize),
    /// The L tuple with this index.
    L(usize),
    /// The pair (U tuple, L tuple).
    Pair(usize, usize),
}

/// Static settings of a merger command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergerSettings {
    pub key_words: usize,
    /// SORT-EX and UNQ-EX merge descending.
    pub descending: bool,
    /// COMPARE ATTRIBUTES: word offset of the second attribute in the internal tuple.
    pub second_offset: usize,
    /// COMPARE ATTRIBUTES: tag bit of the second attribute (None: never null).
    pub second_null_bit: Option<u8>,
    /// COMPARE ATTRIBUTES: the second attribute's type. The IN module transforms only the
    /// key, so the comparator transforms the second attribute's words the same way on the
    /// fly (`in_module::transform_key`); it must have the key's type for the comparison to
    /// mean anything.
    pub second_type: KeyType,
    /// SORT-EX only, partial-U mode (§5.1's two-way merge of runs longer than U-memory):
    /// U holds a chunk (a prefix) of a longer sorted run, so when U has no tuple left while
    /// L still has one, the command ends (the rest of L is taken and dropped) instead of
    /// emitting the rest of L, which may sort after the run's tuples not loaded yet. The
    /// merger's `l_taken` then says where in L the next chunk's SORT-EX resumes. False in
    /// every constructor; `MergerConfig::validate` refuses it with any other command.
    pub u_partial: bool,
}

/// A random merger operand for differential tests: `n` tuples of `key_words + 3` words
/// (key, a second attribute for COMPARE ATTRIBUTES, a payload word holding the tuple's
/// index, and a tag word whose bit 2 flags the second attribute null), keys from a small
/// domain (many duplicates) with some null, sorted as the sorter sorts them, with the DP
/// lines the sorting checker drives.
pub fn random_sorted_operand<R: rand::Rng>(
    rng: &mut R,
    n: usize,
    key_words: usize,
    descending: bool,
) -> Vec<StreamTuple> {
    use crate::sorting_cell::model::sort_order;
    use crate::sorting_checker::{sorting_checker_model, CheckerConfig};
    let domain = [2u16, 4, 9, 1000][rng.gen_range(0..4)];
    let mut v: Vec<StreamTuple> = (0..n)
        .map(|i| {
            let mut w: Vec<u16> = (0..key_words)
                .map(|_| rng.gen_range(0..domain).wrapping_mul(0x9E37))
                .collect();
            w.push(rng.gen_range(0..domain).wrapping_mul(0x9E37));
            w.push(i as u16);
            w.push(if rng.gen_bool(0.2) { 0b100 } else { 0 });
            StreamTuple::new(w, rng.gen_bool(0.15))
        })
        .collect();
    v.sort_by(|a, b| sort_order(a, b, key_words, descending));
    sorting_checker_model(
        &CheckerConfig {
            tuple_words: key_words + 3,
            key_words,
            descending,
        },
        &v,
    )
    .tuples
}

impl MergerSettings {
    /// An ascending key of `key_words` words; COMPARE ATTRIBUTES (if used) compares the
    /// words right after it, never null.
    pub const fn ascending(key_words: usize) -> MergerSettings {
        MergerSettings {
            key_words,
            descending: false,
            second_offset: key_words,
            second_null_bit: None,
            second_type: KeyType::Unsigned,
            u_partial: false,
        }
    }
}

/// Pure-Rust reference model: the semantics of `docs/MERGER.md`, stated directly.
pub mod model {
    use super::*;
    use crate::sorting_cell::model::{compare_keys, sort_order};
    use std::cmp::Ordering;

    /// Value comparison of two keys (unsigned words from the head), nulls aside.
    pub fn key_cmp(a: &StreamTuple, b: &StreamTuple, s: &MergerSettings) -> Ordering {
        compare_keys(a, b, s.key_words)
    }

    fn selects(cond: Condition, a_null: bool, b_null: bool, o: impl FnOnce() -> Ordering) -> bool {
        match cond {
            Condition::All => true,
            Condition::Null => a_null || b_null,
            Condition::NoNull => !a_null && !b_null,
            Condition::Compare(op) => !a_null && !b_null && op.holds(o()),
        }
    }

    /// Null flag of the COMPARE ATTRIBUTES second attribute (tag word = last word).
    fn second_null(t: &StreamTuple, s: &MergerSettings) -> bool {
        match s.second_null_bit {
            Some(bit) => t
                .words
                .last()
                .map(|tag| tag >> bit & 1 == 1)
                .unwrap_or(false),
            None => false,
        }
    }

    /// First tuple of each group of equal keys, by the DP lines (DP(t): t equals t+1).
    fn first_of_groups(l: &[StreamTuple]) -> Vec<Selected> {
        let mut out = Vec::new();
        let mut previous_dup = false;
        for (i, t) in l.iter().enumerate() {
            if !previous_dup {
                out.push(Selected::L(i));
            }
            previous_dup = t.dup;
        }
        out
    }

    /// What the merger outputs for `cmd` on U and L (U is ignored by commands that do not
    /// read it). Inputs must be sorted as the command requires; condition values for
    /// REST-RANGE are exactly two U tuples, low then high. SORT-EX with `s.u_partial`
    /// (U holds a chunk of a longer run) stops when U has no tuple left: the L tuples not
    /// emitted by then are not output ([merger_l_taken] counts the ones that were).
    pub fn merger_model(
        cmd: MergerCommand,
        s: &MergerSettings,
        u: &[StreamTuple],
        l: &[StreamTuple],
    ) -> Result<Vec<Selected>> {
        use MergerCommand::*;
        ensure!(s.key_words >= 1, "key_words must be at least 1");
        ensure!(
            !s.u_partial || cmd == SortEx,
            "u_partial (partial-U mode) is a SORT-EX setting, not one of {}",
            cmd.name()
        );
        let all_l = || (0..l.len()).map(Selected::L).collect::<Vec<_>>();
        Ok(match cmd {
            Load => vec![],
            Pass1 | SortIn | CompAll => all_l(),
            Pass2 => first_of_groups(l),
            SortEx | UnqEx => {
                // Tag each tuple with its origin, merge stably with U first on ties.
                let mut merged: Vec<(Selected, &StreamTuple)> =
                    Vec::with_capacity(u.len() + l.len());
                let (mut i, mut j) = (0, 0);
                while i < u.len() || j < l.len() {
                    if i == u.len() && s.u_partial {
                        // U's chunk is used up: L's rest may sort after the run's next chunk.
                        break;
                    }
                    let take_l = i == u.len()
                        || (j < l.len()
                            && sort_order(&u[i], &l[j], s.key_words, s.descending)
                                == Ordering::Greater);
                    if take_l {
                        merged.push((Selected::L(j), &l[j]));
                        j += 1;
                    } else {
                        merged.push((Selected::U(i), &u[i]));
                        i += 1;
                    }
                }
                if cmd == SortEx {
                    merged.into_iter().map(|(sel, _)| sel).collect()
                } else {
                    let mut out: Vec<Selected> = Vec::new();
                    let mut last: Option<&StreamTuple> = None;
                    for (sel, t) in merged {
                        let same = last
                            .map(|p| sort_order(p, t, s.key_words, s.descending) == Ordering::Equal)
                            .unwrap_or(false);
                        if !same {
                            out.push(sel);
                        }
                        last = Some(t);
                    }
                    out
                }
            }
            RestNull => (0..l.len())
                .filter(|&i| l[i].null)
                .map(Selected::L)
                .collect(),
            RestNonull => (0..l.len())
                .filter(|&i| !l[i].null)
                .map(Selected::L)
                .collect(),
            RestEq | RestNe => {
                let values: Vec<&StreamTuple> = u.iter().filter(|c| !c.null).collect();
                (0..l.len())
                    .filter(|&i| {
                        let t = &l[i];
                        if t.null {
                            return false;
                        }
                        let hit = values.iter().any(|c| key_cmp(c, t, s) == Ordering::Equal);
                        hit == (cmd == RestEq)
                    })
                    .map(Selected::L)
                    .collect()
            }
            RestRange => {
                if u.len() != 2 {
                    bail!("REST-RANGE needs exactly two condition values (low, high) in U-memory, found {}", u.len());
                }
                let (low, high) = (&u[0], &u[1]);
                (0..l.len())
                    .filter(|&i| {
                        let t = &l[i];
                        !t.null
                            && !low.null
                            && !high.null
                            && key_cmp(low, t, s) != Ordering::Greater
                            && key_cmp(t, high, s) != Ordering::Greater
                    })
                    .map(Selected::L)
                    .collect()
            }
            CompNull | CompNonull | CompEq | CompNe | CompLt | CompGt | CompLe | CompGe => {
                let cond = cmd.condition().expect("comparison command");
                let k = s.key_words;
                let mut out = Vec::new();
                for (i, t) in l.iter().enumerate() {
                    ensure!(
                        s.second_offset + k <= t.words.len(),
                        "second attribute (words {}..{}) lies outside a {}-word tuple",
                        s.second_offset,
                        s.second_offset + k,
                        t.words.len()
                    );
                    let mut second = t.words[s.second_offset..s.second_offset + k].to_vec();
                    transform_key(s.second_type, &mut second);
                    if selects(cond, t.null, second_null(t, s), || {
                        t.words[..k].cmp(&second[..])
                    }) {
                        out.push(Selected::L(i));
                    }
                }
                out
            }
            JoinAll | JoinNull | JoinNonull | JoinEq | JoinNe | JoinLt | JoinGt | JoinLe
            | JoinGe => {
                let cond = cmd.condition().expect("join command");
                let mut out = Vec::new();
                if cmd == JoinEq {
                    // Keys in order; within a key U-major, as §4.3's algorithm emits them.
                    for (i, a) in u.iter().enumerate() {
                        for (j, b) in l.iter().enumerate() {
                            if selects(cond, a.null, b.null, || key_cmp(a, b, s)) {
                                out.push(Selected::Pair(i, j));
                            }
                        }
                    }
                } else {
                    // L-major: U is held in U-memory and rescanned for each L tuple as L
                    // streams in.
                    for (j, b) in l.iter().enumerate() {
                        for (i, a) in u.iter().enumerate() {
                            if selects(cond, a.null, b.null, || key_cmp(a, b, s)) {
                                out.push(Selected::Pair(i, j));
                            }
                        }
                    }
                }
                out
            }
        })
    }

    /// The merger's `l_taken` after `cmd` on U and L: how many times the command advanced
    /// L (emitting or dropping its current tuple), stated per command from the semantics
    /// (inputs sorted as [merger_model] requires).
    ///
    /// * Commands that read L to its end (LOAD, PASS-1/2, SORT-IN, UNQ-EX, REST-NULL,
    ///   REST-NONULL, COMPARE ATTRIBUTES, JOIN-ALL/NULL/NONULL): every L tuple.
    /// * SORT-EX: every L tuple; with `u_partial`, the L tuples emitted before U's chunk
    ///   ran out: the index in L where the next chunk's SORT-EX resumes.
    /// * REST-EQ: the L tuples up to the last normal condition value (the command ends when
    ///   U has no normal value left, or at L's first null key).
    /// * REST-NE, and the comparison joins (NE, LT, GT, LE, GE) with U not empty: L's
    ///   tuples before its first null key (nulls sort last and select nothing).
    /// * REST-RANGE: L's normal tuples up to the high bound (none if the low bound is null;
    ///   the ones below the low bound if the high bound is null).
    /// * JOIN-EQ: the L advances of §4.3's algorithm ([join_eq_with_dp]); a return to
    ///   LADR* makes L read a group again, so the count may exceed L's length.
    ///
    /// An overflow or a command error cuts a command short; the count is not modelled then.
    pub fn merger_l_taken(
        cmd: MergerCommand,
        s: &MergerSettings,
        u: &[StreamTuple],
        l: &[StreamTuple],
    ) -> Result<usize> {
        use MergerCommand::*;
        // The same checks as the output's (u_partial, REST-RANGE's two values, …).
        let selected = merger_model(cmd, s, u, l)?;
        // L's leading tuples that satisfy `f` (the ones a scan advances past).
        let prefix = |f: &dyn Fn(&StreamTuple) -> bool| l.iter().take_while(|t| f(t)).count();
        let le = |a: &StreamTuple, b: &StreamTuple| key_cmp(a, b, s) != Ordering::Greater;
        Ok(match cmd {
            Load | Pass1 | Pass2 | SortIn | UnqEx | RestNull | RestNonull | CompAll | CompNull
            | CompNonull | CompEq | CompNe | CompLt | CompGt | CompLe | CompGe | JoinAll
            | JoinNull | JoinNonull => l.len(),
            SortEx => selected
                .iter()
                .filter(|sel| matches!(sel, Selected::L(_)))
                .count(),
            RestEq => match u.iter().rfind(|c| !c.null) {
                Some(high) => prefix(&|t| !t.null && le(t, high)),
                None => 0,
            },
            RestNe => prefix(&|t| !t.null),
            RestRange => {
                let (low, high) = (&u[0], &u[1]);
                if low.null {
                    0
                } else {
                    prefix(&|t| {
                        !t.null
                            && (key_cmp(t, low, s) == Ordering::Less || (!high.null && le(t, high)))
                    })
                }
            }
            JoinEq => join_eq_steps(u, l, s).1,
            JoinNe | JoinLt | JoinGt | JoinLe | JoinGe => {
                if u.is_empty() {
                    l.len()
                } else {
                    prefix(&|t| !t.null)
                }
            }
        })
    }

    /// Delete mode (§5.1, Fig. 9): with the condition values in U, the L tuples (a page)
    /// that match none of them come first, then the ones that match (the deleted tuples),
    /// each group in L's order. A null key matches nothing, so it is kept: no tuple is lost.
    /// [delete_l_taken] gives the merger's `l_taken` after it.
    pub fn delete_model(s: &MergerSettings, u: &[StreamTuple], l: &[StreamTuple]) -> Vec<Selected> {
        let matches = |t: &StreamTuple| {
            !t.null
                && u.iter()
                    .any(|c| !c.null && key_cmp(c, t, s) == Ordering::Equal)
        };
        let kept = (0..l.len()).filter(|&i| !matches(&l[i]));
        let deleted = (0..l.len()).filter(|&i| matches(&l[i]));
        kept.chain(deleted).map(Selected::L).collect()
    }

    /// The merger's `l_taken` after delete mode: its first pass reads the whole page, the
    /// second (REST-EQ over the replayed page) as [merger_l_taken] says.
    pub fn delete_l_taken(s: &MergerSettings, u: &[StreamTuple], l: &[StreamTuple]) -> usize {
        let rest_eq = MergerSettings {
            u_partial: false,
            ..*s
        };
        l.len() + merger_l_taken(MergerCommand::RestEq, &rest_eq, u, l).unwrap_or(0)
    }

    /// §4.3's JOIN-EQ algorithm, step by step, on ascending U and L with DP lines: what the
    /// control ROM will implement. Nulls sort last and are never equal.
    pub fn join_eq_with_dp(
        u: &[StreamTuple],
        l: &[StreamTuple],
        s: &MergerSettings,
    ) -> Vec<Selected> {
        join_eq_steps(u, l, s).0
    }

    /// [join_eq_with_dp] with the number of L advances it makes.
    fn join_eq_steps(
        u: &[StreamTuple],
        l: &[StreamTuple],
        s: &MergerSettings,
    ) -> (Vec<Selected>, usize) {
        let (mut ua, mut la, mut la_star) = (0usize, 0usize, 0usize);
        let mut advances = 0;
        let mut out = Vec::new();
        while ua < u.len() && la < l.len() {
            let (a, b) = (&u[ua], &l[la]);
            if a.null || b.null {
                // Nulls are at the end of both streams and match nothing.
                break;
            }
            match key_cmp(a, b, s) {
                Ordering::Greater => {
                    if !b.dup {
                        la_star = la + 1;
                    }
                    la += 1;
                    advances += 1;
                }
                Ordering::Less => ua += 1,
                Ordering::Equal => {
                    out.push(Selected::Pair(ua, la));
                    match (a.dup, b.dup) {
                        (true, true) | (false, true) => {
                            la += 1;
                            advances += 1;
                        }
                        (true, false) => {
                            ua += 1;
                            la = la_star;
                        }
                        (false, false) => {
                            ua += 1;
                            la += 1;
                            advances += 1;
                            la_star = la;
                        }
                    }
                }
            }
        }
        (out, advances)
    }
}

#[cfg(test)]
mod tests {
    use super::model::*;
    use super::*;
    use crate::sorting_checker::{sorting_checker_model, CheckerConfig};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn t(key: u16, payload: u16) -> StreamTuple {
        StreamTuple::new(vec![key, payload], false)
    }
    fn n(payload: u16) -> StreamTuple {
        StreamTuple::new(vec![0, payload], true)
    }
    const S: MergerSettings = MergerSettings::ascending(1);

    /// Sort ascending (stable, nulls last) and set DP as the sorting checker does.
    fn prepared(mut v: Vec<StreamTuple>) -> Vec<StreamTuple> {
        v.sort_by(|a, b| crate::sorting_cell::model::sort_order(a, b, 1, false));
        sorting_checker_model(
            &CheckerConfig {
                tuple_words: 2,
                key_words: 1,
                descending: false,
            },
            &v,
        )
        .tuples
    }

    #[test]
    fn names_round_trip_and_there_are_29() {
        assert_eq!(MergerCommand::ALL.len(), 29);
        for c in MergerCommand::ALL {
            assert_eq!(MergerCommand::parse(c.name()).unwrap(), c);
        }
        assert_eq!(
            MergerCommand::parse("unq-in").unwrap(),
            MergerCommand::Pass2
        );
        assert!(MergerCommand::parse("JOIN-XX")
            .unwrap_err()
            .to_string()
            .contains("JOIN-XX"));
    }

    #[test]
    fn fig8_style_join_eq_gives_every_pair_of_duplicate_keys() {
        // U: keys 1 2 2 4 5 ; L: keys 2 2 2 3 5 5 null — 2×3 pairs for key 2, 1×2 for 5.
        let u = prepared(vec![t(1, 0), t(2, 1), t(2, 2), t(4, 3), t(5, 4)]);
        let l = prepared(vec![
            t(2, 10),
            t(2, 11),
            t(2, 12),
            t(3, 13),
            t(5, 14),
            t(5, 15),
            n(16),
        ]);
        let spec = merger_model(MergerCommand::JoinEq, &S, &u, &l).unwrap();
        let expect = vec![
            Selected::Pair(1, 0),
            Selected::Pair(1, 1),
            Selected::Pair(1, 2),
            Selected::Pair(2, 0),
            Selected::Pair(2, 1),
            Selected::Pair(2, 2),
            Selected::Pair(4, 4),
            Selected::Pair(4, 5),
        ];
        assert_eq!(spec, expect);
        assert_eq!(
            join_eq_with_dp(&u, &l, &S),
            expect,
            "the paper's DP algorithm"
        );
    }

    #[test]
    fn papers_join_eq_algorithm_equals_the_semantics_on_random_relations() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for case in 0..300 {
            let gen = |rng: &mut ChaCha8Rng, n: usize| -> Vec<StreamTuple> {
                (0..n)
                    .map(|i| {
                        if rng.gen_bool(0.1) {
                            StreamTuple::new(vec![0, i as u16], true)
                        } else {
                            t(rng.gen_range(0..6), i as u16)
                        }
                    })
                    .collect()
            };
            let (nu, nl) = (rng.gen_range(0..12), rng.gen_range(0..12));
            let u = prepared(gen(&mut rng, nu));
            let l = prepared(gen(&mut rng, nl));
            assert_eq!(
                join_eq_with_dp(&u, &l, &S),
                merger_model(MergerCommand::JoinEq, &S, &u, &l).unwrap(),
                "case {case}"
            );
        }
    }

    #[test]
    fn null_rule_partitions_every_family() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let gen = |rng: &mut ChaCha8Rng| -> Vec<StreamTuple> {
            (0..rng.gen_range(0..10))
                .map(|i| {
                    if rng.gen_bool(0.25) {
                        n(i)
                    } else {
                        t(rng.gen_range(0..4), i)
                    }
                })
                .collect()
        };
        use std::collections::HashSet;
        let run = |c, u: &[StreamTuple], l: &[StreamTuple]| -> HashSet<Selected> {
            merger_model(c, &S, u, l).unwrap().into_iter().collect()
        };
        for _ in 0..100 {
            let u = prepared(gen(&mut rng));
            let l = prepared(gen(&mut rng));
            use MergerCommand::*;
            let all = run(JoinAll, &u, &l);
            let null = run(JoinNull, &u, &l);
            let nonull = run(JoinNonull, &u, &l);
            assert!(null.is_disjoint(&nonull));
            assert_eq!(&null | &nonull, all);
            assert_eq!(&run(JoinEq, &u, &l) | &run(JoinNe, &u, &l), nonull);
            assert_eq!(
                &(&run(JoinLt, &u, &l) | &run(JoinEq, &u, &l)) | &run(JoinGt, &u, &l),
                nonull
            );
            assert_eq!(
                &run(JoinLt, &u, &l) | &run(JoinEq, &u, &l),
                run(JoinLe, &u, &l)
            );
            assert_eq!(
                &run(JoinGt, &u, &l) | &run(JoinEq, &u, &l),
                run(JoinGe, &u, &l)
            );
            assert_eq!(
                &run(RestNull, &u, &l) | &run(RestNonull, &u, &l),
                run(Pass1, &u, &l)
            );
            assert_eq!(
                &run(RestEq, &u, &l) | &run(RestNe, &u, &l),
                run(RestNonull, &u, &l)
            );
        }
    }

    #[test]
    fn restrict_unique_and_merge_directed() {
        use MergerCommand::*;
        let values = prepared(vec![t(2, 0), t(2, 1), t(7, 2), n(3)]);
        let l = prepared(vec![
            t(1, 10),
            t(2, 11),
            t(2, 12),
            t(5, 13),
            t(7, 14),
            n(15),
        ]);
        let sel = |c| merger_model(c, &S, &values, &l).unwrap();
        assert_eq!(
            sel(RestEq),
            vec![Selected::L(1), Selected::L(2), Selected::L(4)]
        );
        assert_eq!(sel(RestNe), vec![Selected::L(0), Selected::L(3)]);
        assert_eq!(sel(RestNull), vec![Selected::L(5)]);
        assert_eq!(
            sel(Pass2),
            vec![
                Selected::L(0),
                Selected::L(1),
                Selected::L(3),
                Selected::L(4),
                Selected::L(5)
            ]
        );
        let range = vec![t(2, 0), t(5, 1)];
        assert_eq!(
            merger_model(RestRange, &S, &range, &l).unwrap(),
            vec![Selected::L(1), Selected::L(2), Selected::L(3)]
        );
        assert!(
            merger_model(RestRange, &S, &values, &l).is_err(),
            "REST-RANGE needs two values"
        );
        // SORT-EX: stable, U first on equal keys; UNQ-EX keeps the first of each key.
        let u = prepared(vec![t(2, 0), t(5, 1), n(2)]);
        let l = prepared(vec![t(2, 10), t(3, 11), n(12)]);
        assert_eq!(
            merger_model(SortEx, &S, &u, &l).unwrap(),
            vec![
                Selected::U(0),
                Selected::L(0),
                Selected::L(1),
                Selected::U(1),
                Selected::U(2),
                Selected::L(2)
            ]
        );
        assert_eq!(
            merger_model(UnqEx, &S, &u, &l).unwrap(),
            vec![
                Selected::U(0),
                Selected::L(1),
                Selected::U(1),
                Selected::U(2)
            ]
        );
        assert!(merger_model(Load, &S, &u, &l).unwrap().is_empty());
    }

    /// Case 3 of the external sort on the model: run A loaded a chunk at a time (`chunks`:
    /// their lengths); each chunk but the last runs a partial-U SORT-EX on B from the
    /// resume index, which then moves by `l_taken`; the last chunk runs a plain SORT-EX on
    /// the rest of B. The output as (from A, index in its run).
    fn chunked_merge(
        s: &MergerSettings,
        a: &[StreamTuple],
        b: &[StreamTuple],
        chunks: &[usize],
    ) -> Vec<(bool, usize)> {
        let (mut out, mut start, mut resume) = (vec![], 0, 0);
        for (c, &len) in chunks.iter().enumerate() {
            let s = MergerSettings {
                u_partial: c + 1 < chunks.len(),
                ..*s
            };
            let chunk = &a[start..start + len];
            let rest = &b[resume..];
            for sel in merger_model(MergerCommand::SortEx, &s, chunk, rest).unwrap() {
                out.push(match sel {
                    Selected::U(i) => (true, start + i),
                    Selected::L(j) => (false, resume + j),
                    Selected::Pair(..) => unreachable!("SORT-EX sends single tuples"),
                });
            }
            resume += merger_l_taken(MergerCommand::SortEx, &s, chunk, rest).unwrap();
            start += len;
        }
        assert_eq!(start, a.len());
        out
    }

    #[test]
    fn chunked_partial_sort_ex_is_the_stable_merge_of_the_runs() {
        use crate::sorting_cell::model::sort_order;
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        for case in 0..500 {
            let kw = rng.gen_range(1..=2);
            let s = MergerSettings {
                descending: rng.gen(),
                ..MergerSettings::ascending(kw)
            };
            let (na, nb) = (rng.gen_range(0..30), rng.gen_range(0..30));
            let a = random_sorted_operand(&mut rng, na, kw, s.descending);
            let b = random_sorted_operand(&mut rng, nb, kw, s.descending);
            let mut chunks = vec![];
            let mut left = a.len();
            while left > 0 {
                let len = rng.gen_range(1..=left.min(9));
                chunks.push(len);
                left -= len;
            }
            if chunks.is_empty() {
                chunks.push(0);
            }
            // The stable merge: A before B, then a stable sort (A first on ties).
            let mut expected: Vec<(bool, usize)> = (0..a.len())
                .map(|i| (true, i))
                .chain((0..b.len()).map(|j| (false, j)))
                .collect();
            let tuple = |&(from_a, i): &(bool, usize)| if from_a { &a[i] } else { &b[i] };
            expected.sort_by(|x, y| sort_order(tuple(x), tuple(y), kw, s.descending));
            assert_eq!(
                chunked_merge(&s, &a, &b, &chunks),
                expected,
                "case {case}: chunks {chunks:?}\nA {a:?}\nB {b:?}"
            );
        }
    }

    #[test]
    fn u_partial_is_a_sort_ex_setting_only() {
        let s = MergerSettings {
            u_partial: true,
            ..S
        };
        let u = prepared(vec![t(1, 0), t(3, 1)]);
        let l = prepared(vec![t(2, 10), t(4, 11)]);
        assert_eq!(
            merger_model(MergerCommand::SortEx, &s, &u, &l).unwrap(),
            vec![Selected::U(0), Selected::L(0), Selected::U(1)]
        );
        assert_eq!(
            merger_l_taken(MergerCommand::SortEx, &s, &u, &l).unwrap(),
            1
        );
        assert_eq!(
            merger_l_taken(MergerCommand::SortEx, &S, &u, &l).unwrap(),
            2
        );
        let e = merger_model(MergerCommand::UnqEx, &s, &u, &l)
            .unwrap_err()
            .to_string();
        assert!(e.contains("u_partial") && e.contains("UNQ-EX"), "{e}");
        let f = crate::output_control_part::SideFormat::unrotated(2);
        let cfg = MergerConfig {
            command: MergerCommand::SortEx,
            delete: false,
            settings: s,
            tuple_words: 2,
            output: OutputSettings::both(f),
        };
        assert!(cfg.validate(256).is_ok());
        assert!(cfg.command_settings().u_partial);
        assert!(
            !MergerConfig { settings: S, ..cfg }
                .command_settings()
                .u_partial
        );
        for (command, delete, name) in [
            (MergerCommand::Load, false, "LOAD"),
            (MergerCommand::JoinEq, false, "JOIN-EQ"),
            (MergerCommand::SortEx, true, "delete mode"),
        ] {
            let e = MergerConfig {
                command,
                delete,
                ..cfg
            }
            .validate(256)
            .unwrap_err()
            .to_string();
            assert!(e.contains("u_partial") && e.contains(name), "{e}");
        }
    }

    #[test]
    fn compare_attributes_within_a_tuple() {
        use MergerCommand::*;
        // Tuples [key, second, tag]; second attribute at word 1, its null flag tag bit 3.
        let s = MergerSettings {
            key_words: 1,
            descending: false,
            second_offset: 1,
            second_null_bit: Some(3),
            second_type: KeyType::Unsigned,
            u_partial: false,
        };
        let mk = |k: u16, v: u16, key_null: bool, v_null: bool| {
            StreamTuple::new(vec![k, v, if v_null { 8 } else { 0 }], key_null)
        };
        let l = vec![
            mk(1, 1, false, false),
            mk(1, 2, false, false),
            mk(3, 2, false, false),
            mk(0, 2, true, false),
            mk(4, 0, false, true),
        ];
        let sel = |c| merger_model(c, &s, &[], &l).unwrap();
        assert_eq!(sel(CompEq), vec![Selected::L(0)]);
        assert_eq!(sel(CompLt), vec![Selected::L(1)]);
        assert_eq!(sel(CompGt), vec![Selected::L(2)]);
        assert_eq!(sel(CompNull), vec![Selected::L(3), Selected::L(4)]);
        assert_eq!(sel(CompNonull).len(), 3);
        assert_eq!(sel(CompAll).len(), 5);
        let bad = MergerSettings {
            second_offset: 3,
            ..s
        };
        assert!(merger_model(CompEq, &bad, &[], &l).is_err());
    }
}

#[cfg(test)]
mod merger_block_tests {
    use super::*;
    use crate::harness::{Harness, Pacing, Schedule};
    use crate::in_module::KeyType;
    use crate::output_control_part::SideFormat;
    use crate::tuple_stream::{dp_constant_per_tuple, split_tuples_with_dup, to_beats, Beat};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn format(rng: &mut ChaCha8Rng, n: usize, kw: usize) -> SideFormat {
        // Any rotation: the operand is already internal, the output control part rotates
        // it back to some compact tuple, the model likewise.
        let key_offset = rng.gen_range(1..n);
        SideFormat {
            tuple_words: n,
            key_offset,
            key_words: kw.min(n - key_offset),
            key_type: if rng.gen() {
                KeyType::Unsigned
            } else {
                KeyType::Signed
            },
            first_word: 1,
            end_word: n,
            first_field: 0,
            fields: 4,
        }
    }

    fn run_command<const A: usize, const P: usize, const B: usize, const Q: usize>(
        h: &mut Harness<Merger<A, P, B, Q>>,
        cfg: &MergerConfig,
        input: &[StreamTuple],
        pacing: Pacing,
    ) -> Vec<Vec<u16>> {
        run_command_with_dup(h, cfg, input, pacing)
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    /// Output tuples with their DP line (checked constant over each tuple).
    fn run_command_with_dup<const A: usize, const P: usize, const B: usize, const Q: usize>(
        h: &mut Harness<Merger<A, P, B, Q>>,
        cfg: &MergerConfig,
        input: &[StreamTuple],
        pacing: Pacing,
    ) -> Vec<(Vec<u16>, bool)> {
        cfg.apply(&mut h.uut).unwrap();
        let beats = to_beats(input);
        let max = 2000 + 40 * (beats.len() as u64) * (beats.len() as u64 + 20);
        let output = h.run_stream(&beats, pacing, max).output;
        assert!(
            dp_constant_per_tuple(&output),
            "DP constant over each tuple"
        );
        split_tuples_with_dup(&output)
    }

    fn merger_case<const A: usize, const P: usize, const B: usize, const Q: usize>(
        h: &mut Harness<Merger<A, P, B, Q>>,
        rng: &mut ChaCha8Rng,
        command: MergerCommand,
        delete: bool,
        sizes: &[usize],
    ) {
        merger_case_with(h, rng, command, delete, sizes, false)
    }

    /// One random case: LOAD U, then `command` on L (`u_partial`: SORT-EX's partial-U
    /// mode), output and DP against the model, and `l_taken`.
    fn merger_case_with<const A: usize, const P: usize, const B: usize, const Q: usize>(
        h: &mut Harness<Merger<A, P, B, Q>>,
        rng: &mut ChaCha8Rng,
        command: MergerCommand,
        delete: bool,
        sizes: &[usize],
        u_partial: bool,
    ) {
        let kw = rng.gen_range(1..=2);
        let n = kw + 3;
        let merge = matches!(command, MergerCommand::SortEx | MergerCommand::UnqEx);
        let settings = MergerSettings {
            key_words: kw,
            descending: merge && rng.gen(),
            second_offset: kw,
            second_null_bit: Some(2),
            second_type: KeyType::Unsigned,
            u_partial: false,
        };
        let (nu, nl) = (
            sizes[rng.gen_range(0..sizes.len())],
            sizes[rng.gen_range(0..sizes.len())],
        );
        let mut u = random_sorted_operand(rng, nu, kw, settings.descending);
        let l = random_sorted_operand(rng, nl, kw, settings.descending);
        if command == MergerCommand::RestRange {
            u.retain(|t| !t.null);
            u.truncate(2);
            if u.len() != 2 {
                return;
            }
        }
        let f = format(rng, n, kw);
        let output = OutputSettings {
            u: f,
            l: f,
            new_tid: rng.gen(),
            tid_base: rng.gen(),
        };
        let pacing = Pacing {
            source_duty: rng.gen_range(0.4..=1.0),
            sink_duty: rng.gen_range(0.4..=1.0),
            seed: rng.gen(),
        };
        let load = MergerConfig {
            command: MergerCommand::Load,
            delete: false,
            settings,
            tuple_words: n,
            output,
        };
        assert!(run_command(h, &load, &u, pacing).is_empty());
        assert_eq!(
            h.uut.l_taken.val().index(),
            u.len(),
            "LOAD takes every tuple"
        );
        let cfg = MergerConfig {
            command,
            delete,
            settings: MergerSettings {
                u_partial,
                ..settings
            },
            ..load
        };
        let got = run_command_with_dup(h, &cfg, &l, pacing);
        let name = if delete {
            "delete mode"
        } else {
            command.name()
        };
        assert_eq!(
            got,
            cfg.model_with_dup(&u, &l).unwrap(),
            "{name} (u_partial {u_partial})\nU {u:?}\nL {l:?}"
        );
        assert_eq!(
            h.uut.l_taken.val().index(),
            cfg.model_l_taken(&u, &l).unwrap(),
            "l_taken of {name} (u_partial {u_partial})\nU {u:?}\nL {l:?}"
        );
        assert!(!h.uut.parity_error.val() && !h.uut.framing_error.val());
    }

    /// Issue 7: U-memory holds RESTRICT's condition values, which the comparator reads and
    /// never outputs. A stored line of one, corrupted after LOAD, is a parity error (the
    /// stored parity is folded over NL, DP and `last`); without the corruption, none.
    #[test]
    fn a_corrupted_u_memory_word_the_comparator_reads_is_a_parity_error() {
        use crate::memory_fault::{corrupt_memory, MemoryFault};
        let mut rng = ChaCha8Rng::seed_from_u64(70);
        let u = random_sorted_operand(&mut rng, 3, 1, false);
        let l = random_sorted_operand(&mut rng, 6, 1, false);
        let settings = MergerSettings {
            key_words: 1,
            descending: false,
            second_offset: 1,
            second_null_bit: Some(2),
            second_type: KeyType::Unsigned,
            u_partial: false,
        };
        let n = u[0].words.len();
        let f = format(&mut rng, n, 1);
        let load = MergerConfig {
            command: MergerCommand::Load,
            delete: false,
            settings,
            tuple_words: n,
            output: OutputSettings {
                u: f,
                l: f,
                new_tid: false,
                tid_base: 0,
            },
        };
        let restrict = MergerConfig {
            command: MergerCommand::RestEq,
            ..load
        };
        // No line: the fault-free run. Lines 0 and 9: data; 18: NL; 19: DP; 20: last.
        for line in [None, Some(0), Some(9), Some(18), Some(19), Some(20)] {
            let mut h = Harness::new(MergerSmall::default());
            run_command(&mut h, &load, &u, Pacing::FULL_RATE);
            if let Some(line) = line {
                // U-memory (the only memory holding live words now), its first word: the
                // first condition value's key, which the first comparison reads.
                let fault = MemoryFault {
                    memory: 0,
                    word: 0,
                    line,
                    cycle: 0,
                };
                let hit = corrupt_memory(&mut h.uut, &fault).expect("U holds live words");
                assert_eq!((hit.memory.as_str(), hit.address), ("U-memory", 0));
            }
            let got = run_command(&mut h, &restrict, &l, Pacing::FULL_RATE);
            assert_eq!(
                h.uut.parity_error.val(),
                line.is_some(),
                "line {line:?}: {got:?}"
            );
            if line.is_none() {
                assert_eq!(got, restrict.model(&u, &l).unwrap());
            }
        }
    }

    #[test]
    fn partial_u_sort_ex_end_to_end_matches_the_model() {
        let mut h = Harness::new(MergerSmall::default());
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        for _ in 0..60 {
            merger_case_with(
                &mut h,
                &mut rng,
                MergerCommand::SortEx,
                false,
                &[0, 1, 3, 8, 13],
                true,
            );
        }
    }

    /// Stream `beats` into the merger as the HM adapter IN may on the demand line: once
    /// `input_unneeded` is high, the stream is cut at the next tuple boundary and ended with
    /// its end-of-stream beat. Returns the output and the input beats sent.
    fn run_demand_driven<const A: usize, const P: usize, const B: usize, const Q: usize>(
        h: &mut Harness<Merger<A, P, B, Q>>,
        beats: &[Beat],
        pacing: Pacing,
        max_cycles: usize,
    ) -> (Vec<Beat>, usize) {
        let schedule = Schedule::from_pacing(pacing, max_cycles);
        let (mut next_in, mut sent, mut output, mut unneeded) = (0, 0, vec![], false);
        for cycle in 0..max_cycles {
            if unneeded && (next_in == 0 || beats[next_in - 1].last) {
                next_in = beats.len() - 1;
            }
            let offer = next_in < beats.len() && schedule.offer[cycle];
            h.uut.data_in.valid.next = offer;
            if offer {
                h.uut.data_in.word.next = beats[next_in].into();
            }
            h.uut.data_out.ready.next = schedule.take[cycle];
            h.settle();
            unneeded |= h.uut.input_unneeded.val();
            let in_fire = offer && h.uut.data_in.ready.val();
            let out_fire = schedule.take[cycle] && h.uut.data_out.valid.val();
            let beat: Beat = h.uut.data_out.word.val().into();
            h.cycle();
            next_in += in_fire as usize;
            sent += in_fire as usize;
            if out_fire {
                output.push(beat);
                if beat.eos {
                    h.uut.data_in.valid.next = false;
                    h.uut.data_out.ready.next = false;
                    h.cycle();
                    return (output, sent);
                }
            }
        }
        panic!("no end of stream within {max_cycles} cycles");
    }

    #[test]
    fn chunked_two_way_merge_on_the_rtl_is_the_merge_of_the_runs() {
        // External sort case 3 on the merger: run A is longer than U-memory, so it is
        // loaded a chunk at a time; each chunk but the last merges with B from the resume
        // index under partial-U SORT-EX, B's stream cut when the merger no longer needs it,
        // and the resume index moves by l_taken; the last chunk takes the rest of B.
        let mut h = Harness::new(MergerSmall::default());
        let mut rng = ChaCha8Rng::seed_from_u64(16);
        let (mut sent, mut offered) = (0, 0);
        for case in 0..10 {
            let kw = rng.gen_range(1..=2);
            let n = kw + 3;
            let settings = MergerSettings {
                descending: rng.gen(),
                ..MergerSettings::ascending(kw)
            };
            let (na, nb) = (rng.gen_range(10..30), rng.gen_range(0..30));
            let a = random_sorted_operand(&mut rng, na, kw, settings.descending);
            let b = random_sorted_operand(&mut rng, nb, kw, settings.descending);
            let pacing = Pacing {
                source_duty: rng.gen_range(0.3..=1.0),
                sink_duty: rng.gen_range(0.5..=1.0),
                seed: rng.gen(),
            };
            let sort_ex = MergerConfig {
                command: MergerCommand::SortEx,
                delete: false,
                settings,
                tuple_words: n,
                output: OutputSettings::both(SideFormat::unrotated(n)),
            };
            let load = MergerConfig {
                command: MergerCommand::Load,
                ..sort_ex
            };
            let partial = MergerConfig {
                settings: MergerSettings {
                    u_partial: true,
                    ..settings
                },
                ..sort_ex
            };
            let mut out = vec![];
            let (mut start, mut resume) = (0, 0);
            while start < a.len() {
                let end = (start + rng.gen_range(1..=8)).min(a.len());
                let chunk = &a[start..end];
                assert!(run_command(&mut h, &load, chunk, pacing).is_empty());
                let cfg = if end < a.len() { partial } else { sort_ex };
                cfg.apply(&mut h.uut).unwrap();
                let beats = to_beats(&b[resume..]);
                let (beats_out, taken) = run_demand_driven(&mut h, &beats, pacing, 20_000);
                let tuples: Vec<Vec<u16>> = split_tuples_with_dup(&beats_out)
                    .into_iter()
                    .map(|(t, _)| t)
                    .collect();
                assert_eq!(tuples, cfg.model(chunk, &b[resume..]).unwrap());
                let l_taken = h.uut.l_taken.val().index();
                assert_eq!(l_taken, cfg.model_l_taken(chunk, &b[resume..]).unwrap());
                out.extend(tuples);
                resume += l_taken;
                sent += taken;
                offered += beats.len();
                start = end;
            }
            assert_eq!(resume, b.len(), "case {case}: all of B merged");
            assert_eq!(
                out,
                sort_ex.model(&a, &b).unwrap(),
                "case {case}: the chunked merge is the merge of the runs"
            );
        }
        assert!(
            sent < offered,
            "the demand line saved input: {sent} of {offered} beats"
        );
    }

    #[test]
    fn every_command_end_to_end_matches_the_model() {
        let mut h = Harness::new(MergerSmall::default());
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for command in MergerCommand::ALL {
            for _ in 0..12 {
                merger_case(&mut h, &mut rng, command, false, &[0, 1, 3, 8, 13]);
            }
        }
        for _ in 0..20 {
            merger_case(
                &mut h,
                &mut rng,
                MergerCommand::RestNe,
                true,
                &[0, 1, 3, 8, 13],
            );
        }
    }

    #[test]
    fn delta_merger_runs_joins_and_merges_at_paper_size() {
        let mut h = Harness::new(MergerDelta::default());
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        for command in [
            MergerCommand::JoinEq,
            MergerCommand::SortEx,
            MergerCommand::UnqEx,
            MergerCommand::RestEq,
            MergerCommand::CompLe,
        ] {
            merger_case(&mut h, &mut rng, command, false, &[40, 120]);
        }
    }

    #[test]
    fn delete_mode_rewrites_a_page_with_deleted_tuples_last() {
        // Fig. 9: condition values 3 and 7 delete the tuples with those keys.
        let t = |k: u16, p: u16, dup: bool| StreamTuple {
            dup,
            ..StreamTuple::new(vec![k, p, 0], false)
        };
        let page = vec![
            t(1, 100, false),
            t(3, 101, true),
            t(3, 102, false),
            t(5, 103, false),
            t(7, 104, false),
            t(9, 105, false),
        ];
        let conditions = vec![t(3, 0, false), t(7, 0, false)];
        let f = SideFormat::unrotated(3);
        let load = MergerConfig {
            command: MergerCommand::Load,
            delete: false,
            settings: MergerSettings::ascending(1),
            tuple_words: 3,
            output: OutputSettings::both(f),
        };
        let mut h = Harness::new(MergerSmall::default());
        run_command(&mut h, &load, &conditions, Pacing::FULL_RATE);
        let delete = MergerConfig {
            delete: true,
            ..load
        };
        let got = run_command(&mut h, &delete, &page, Pacing::FULL_RATE);
        let payloads: Vec<u16> = got.iter().map(|t| t[2]).collect();
        assert_eq!(payloads, vec![100, 103, 105, 101, 102, 104]);
    }

    #[test]
    fn bad_configuration_is_refused_with_its_reason() {
        let f = SideFormat::unrotated(4);
        let cfg = MergerConfig {
            command: MergerCommand::CompEq,
            delete: false,
            settings: MergerSettings {
                key_words: 1,
                descending: false,
                second_offset: 3,
                second_null_bit: None,
                second_type: KeyType::Unsigned,
                u_partial: false,
            },
            tuple_words: 4,
            output: OutputSettings::both(f),
        };
        let e = cfg.validate(256).unwrap_err().to_string();
        assert!(e.contains("second attribute"), "{e}");
        let cfg = MergerConfig {
            tuple_words: 5,
            command: MergerCommand::JoinEq,
            ..cfg
        };
        let e = cfg.validate(256).unwrap_err().to_string();
        assert!(e.contains("differs"), "{e}");
    }

    #[test]
    fn merger_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(MergerSmall::default());
        crate::verilog::check_module("merger_small", &v).unwrap();
    }
}
