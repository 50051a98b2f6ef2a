//! The merger's control ROM (paper §4.3: "a ROM table of 1Kwords × 10bit. The address of
//! the ROM table consists of a null flag, duplication flag, comparison result and so on.
//! On the other hand, the output of the ROM table consists of memory address control
//! signals, tuple selection signals used for the next part, an operation end signal").
//!
//! The contents are generated from [rule], a readable table with one rule per program and
//! situation; nothing is written in hex. [interpret] runs the merger's operation part at
//! tuple granularity from the ROM words alone; the tests check it against the semantics
//! model ([crate::merger::model::merger_model]) for all 29 commands, so the RTL only has to
//! match this interpreter.
//!
//! # Address (11 bits, 2048 words)
//! `program[4:0] | situation[3:0] | dp_u | dp_l` — the program is the command (commands
//! with identical rules share one; multi-phase commands have a second program), the
//! situation combines the end, null and comparison flags of the current U and L tuples.
//!
//! # Word (13 bits)
//! `output[1:0]` (none, U, L, pair), `advance_u`, `advance_l`, `rewind_u` (U back to its
//! first tuple), `rewind_l` (L back to LADR*), `mark_l` (LADR* := L's position after this
//! step), `next_program[4:0]`, `end`.
//!
//! # The partial-U gate (SORT-EX's `u_partial`)
//! The program field is full (32 programs), so SORT-EX's partial-U mode (§5.1's two-way
//! merge of runs longer than U-memory: U holds a chunk, a prefix, of run A) is not a
//! program of its own but one gate on the ROM's output, [partial_end]: with `u_partial`
//! set, program SORT-EX, no U tuple left and an L tuple present, the word looked up (which
//! would emit L) is replaced by [partial_end_word], the end of the command. The remaining
//! L tuples may sort after A's tuples not loaded yet; the control program resumes L there
//! with the next chunk. [interpret] applies the same gate, so the ROM-level tests cover it.
use crate::in_module::transform_key;
use crate::merger::{MergerCommand, MergerSettings, Selected};
use crate::tuple_stream::StreamTuple;
use anyhow::{bail, Result};
use rust_hdl::prelude::*;
use std::cmp::Ordering;

/// The current U and L tuples as the operation part sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Situation {
    /// L has ended and U has no tuple left.
    EndBoth = 0,
    /// L has ended; U's tuple has a normal key.
    EndLUNormal = 1,
    /// L has ended; U's tuple has a null key.
    EndLUNull = 2,
    /// U has no tuple left; L's key is normal.
    EndULNormal = 3,
    /// U's key is null, L's is normal.
    UNullLNormal = 4,
    /// Both keys normal, U's before L's in the compare order.
    Less = 5,
    Equal = 6,
    Greater = 7,
    /// U has no tuple left; L's key is null.
    EndULNull = 8,
    /// U's key is normal, L's null.
    UNormalLNull = 9,
    /// Both keys null.
    BothNull = 10,
}

impl Situation {
    pub const ALL: [Situation; 11] = [
        Situation::EndBoth,
        Situation::EndLUNormal,
        Situation::EndLUNull,
        Situation::EndULNormal,
        Situation::UNullLNormal,
        Situation::Less,
        Situation::Equal,
        Situation::Greater,
        Situation::EndULNull,
        Situation::UNormalLNull,
        Situation::BothNull,
    ];
    fn from_code(c: usize) -> Option<Situation> {
        Situation::ALL.get(c).copied()
    }
    /// Classify U's and L's current tuples (None: that side has none left).
    pub fn of(u: Option<bool>, l: Option<bool>, cmp: impl FnOnce() -> Ordering) -> Situation {
        use Situation::*;
        match (u, l) {
            (None, None) => EndBoth,
            (Some(false), None) => EndLUNormal,
            (Some(true), None) => EndLUNull,
            (None, Some(false)) => EndULNormal,
            (None, Some(true)) => EndULNull,
            (Some(true), Some(false)) => UNullLNormal,
            (Some(false), Some(true)) => UNormalLNull,
            (Some(true), Some(true)) => BothNull,
            (Some(false), Some(false)) => match cmp() {
                Ordering::Less => Less,
                Ordering::Equal => Equal,
                Ordering::Greater => Greater,
            },
        }
    }
    fn l_present(self) -> bool {
        !matches!(
            self,
            Situation::EndBoth | Situation::EndLUNormal | Situation::EndLUNull
        )
    }
    fn u_present(self) -> bool {
        !matches!(
            self,
            Situation::EndBoth | Situation::EndULNormal | Situation::EndULNull
        )
    }
    fn l_null(self) -> bool {
        matches!(
            self,
            Situation::EndULNull | Situation::UNormalLNull | Situation::BothNull
        )
    }
    fn u_null(self) -> bool {
        matches!(
            self,
            Situation::EndLUNull | Situation::UNullLNormal | Situation::BothNull
        )
    }
    fn both_normal(self) -> Option<Ordering> {
        match self {
            Situation::Less => Some(Ordering::Less),
            Situation::Equal => Some(Ordering::Equal),
            Situation::Greater => Some(Ordering::Greater),
            _ => None,
        }
    }
}

/// Programs of the ROM: the 29 commands, with identical ones merged and the extra phases
/// of multi-phase commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Program {
    Load,
    /// PASS-1 (NOP), SORT-IN, COMP-ALL: every L tuple.
    Pass,
    /// PASS-2 (UNQ-IN): the first tuple of a DP group …
    Unique,
    /// … then skip the rest of the group.
    UniqueSkip,
    SortEx,
    UnqEx,
    /// UNQ-EX: skipping U tuples equal to the one just output.
    UnqExSkipU,
    /// UNQ-EX: skipping L tuples equal to the one just output.
    UnqExSkipL,
    RestNull,
    RestNonull,
    RestEq,
    RestNe,
    /// REST-RANGE, U at the low bound …
    RangeLow,
    /// … then at the high bound.
    RangeHigh,
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
    /// Delete mode's first pass (§5.1): the L tuples that match no condition value, null
    /// keys included (they match nothing), so that no tuple of the page is lost.
    DeleteKeep,
}

impl Program {
    pub const ALL: [Program; 32] = [
        Program::Load,
        Program::Pass,
        Program::Unique,
        Program::UniqueSkip,
        Program::SortEx,
        Program::UnqEx,
        Program::UnqExSkipU,
        Program::UnqExSkipL,
        Program::RestNull,
        Program::RestNonull,
        Program::RestEq,
        Program::RestNe,
        Program::RangeLow,
        Program::RangeHigh,
        Program::CompNull,
        Program::CompNonull,
        Program::CompEq,
        Program::CompNe,
        Program::CompLt,
        Program::CompGt,
        Program::CompLe,
        Program::CompGe,
        Program::JoinAll,
        Program::JoinNull,
        Program::JoinNonull,
        Program::JoinEq,
        Program::JoinNe,
        Program::JoinLt,
        Program::JoinGt,
        Program::JoinLe,
        Program::JoinGe,
        Program::DeleteKeep,
    ];
    fn from_code(c: usize) -> Option<Program> {
        Program::ALL.get(c).copied()
    }
    /// The program a command starts with.
    pub fn start(cmd: MergerCommand) -> Program {
        use MergerCommand as C;
        match cmd {
            C::Load => Program::Load,
            C::Pass1 | C::SortIn | C::CompAll => Program::Pass,
            C::Pass2 => Program::Unique,
            C::SortEx => Program::SortEx,
            C::UnqEx => Program::UnqEx,
            C::RestNull => Program::RestNull,
            C::RestNonull => Program::RestNonull,
            C::RestEq => Program::RestEq,
            C::RestNe => Program::RestNe,
            C::RestRange => Program::RangeLow,
            C::CompNull => Program::CompNull,
            C::CompNonull => Program::CompNonull,
            C::CompEq => Program::CompEq,
            C::CompNe => Program::CompNe,
            C::CompLt => Program::CompLt,
            C::CompGt => Program::CompGt,
            C::CompLe => Program::CompLe,
            C::CompGe => Program::CompGe,
            C::JoinAll => Program::JoinAll,
            C::JoinNull => Program::JoinNull,
            C::JoinNonull => Program::JoinNonull,
            C::JoinEq => Program::JoinEq,
            C::JoinNe => Program::JoinNe,
            C::JoinLt => Program::JoinLt,
            C::JoinGt => Program::JoinGt,
            C::JoinLe => Program::JoinLe,
            C::JoinGe => Program::JoinGe,
        }
    }
}

/// Which tuple(s) the output control part receives for this step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    None = 0,
    U = 1,
    L = 2,
    Pair = 3,
}

/// One ROM word, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Action {
    pub output: Output,
    pub advance_u: bool,
    pub advance_l: bool,
    /// U returns to its first tuple (after the advances).
    pub rewind_u: bool,
    /// L returns to LADR* (after the advances and the mark).
    pub rewind_l: bool,
    /// LADR* := L's position after this step's advance.
    pub mark_l: bool,
    pub next: Program,
    pub end: bool,
}

impl Action {
    fn step(p: Program) -> Action {
        Action {
            output: Output::None,
            advance_u: false,
            advance_l: false,
            rewind_u: false,
            rewind_l: false,
            mark_l: false,
            next: p,
            end: false,
        }
    }
    fn end(p: Program) -> Action {
        Action {
            end: true,
            ..Action::step(p)
        }
    }
    fn out(mut self, o: Output) -> Action {
        self.output = o;
        self
    }
    fn adv_u(mut self) -> Action {
        self.advance_u = true;
        self
    }
    fn adv_l(mut self) -> Action {
        self.advance_l = true;
        self
    }
    fn then(mut self, p: Program) -> Action {
        self.next = p;
        self
    }
    /// L-major scans: this L tuple is done, take the next one and rescan U from its start.
    fn next_l(p: Program) -> Action {
        Action {
            advance_l: true,
            rewind_u: true,
            ..Action::step(p)
        }
    }
}

pub const ADDRESS_BITS: usize = 11;
pub const WORD_BITS: usize = 13;
pub const WORDS: usize = 1 << ADDRESS_BITS;

pub fn address(p: Program, s: Situation, dp_u: bool, dp_l: bool) -> usize {
    ((p as usize) << 6) | ((s as usize) << 2) | ((dp_u as usize) << 1) | dp_l as usize
}

/// The rule table: what the operation part does for each program and situation.
/// Every (program, situation, DP) combination has a rule; see [contents] for the rest.
///
/// L-memory frees the words before LADR*. Only JOIN-EQ ever returns L to LADR*, so every
/// other program moves LADR* with each L advance, and L streams through a bounded memory.
pub fn rule(p: Program, s: Situation, dp_u: bool, dp_l: bool) -> Action {
    let a = rule_table(p, s, dp_u, dp_l);
    if p != Program::JoinEq && a.advance_l {
        Action { mark_l: true, ..a }
    } else {
        a
    }
}

fn rule_table(p: Program, s: Situation, dp_u: bool, dp_l: bool) -> Action {
    use Output as O;
    use Program as P;
    use Situation as S;
    let keep = Action::step(p);
    if !s.l_present() && !matches!(p, P::SortEx | P::UnqEx | P::UnqExSkipU) {
        // L has ended: every command but the merges is done (the rest of U is not needed).
        return Action::end(p);
    }
    match p {
        P::Load => keep.adv_l(),
        P::Pass => keep.out(O::L).adv_l(),
        P::Unique => keep
            .out(O::L)
            .adv_l()
            .then(if dp_l { P::UniqueSkip } else { P::Unique }),
        P::UniqueSkip => keep
            .adv_l()
            .then(if dp_l { P::UniqueSkip } else { P::Unique }),
        P::SortEx => {
            // Merge in sort order; on equal keys (and two nulls) U first: stable.
            let u_first = match s {
                S::EndBoth => return Action::end(p),
                S::EndLUNormal
                | S::EndLUNull
                | S::UNormalLNull
                | S::BothNull
                | S::Less
                | S::Equal => true,
                _ => false,
            };
            if u_first {
                keep.out(O::U).adv_u()
            } else {
                keep.out(O::L).adv_l()
            }
        }
        P::UnqEx => match s {
            S::EndBoth => Action::end(p),
            // An L tuple equal to the current U tuple is dropped; U's goes out later.
            S::Equal | S::BothNull => keep.adv_l(),
            S::EndLUNormal | S::EndLUNull | S::UNormalLNull | S::Less => keep
                .out(O::U)
                .adv_u()
                .then(if dp_u { P::UnqExSkipU } else { P::UnqEx }),
            _ => keep
                .out(O::L)
                .adv_l()
                .then(if dp_l { P::UnqExSkipL } else { P::UnqEx }),
        },
        P::UnqExSkipU => {
            if s.u_present() {
                keep.adv_u()
                    .then(if dp_u { P::UnqExSkipU } else { P::UnqEx })
            } else if s.l_present() {
                keep.then(P::UnqEx)
            } else {
                Action::end(p)
            }
        }
        P::UnqExSkipL => keep
            .adv_l()
            .then(if dp_l { P::UnqExSkipL } else { P::UnqEx }),
        P::RestNull => {
            if s.l_null() {
                keep.out(O::L).adv_l()
            } else {
                keep.adv_l()
            }
        }
        P::RestNonull => {
            if s.l_null() {
                keep.adv_l()
            } else {
                keep.out(O::L).adv_l()
            }
        }
        P::RestEq => match s {
            S::Less => keep.adv_u(),
            S::Equal => keep.out(O::L).adv_l(),
            S::Greater => keep.adv_l(),
            // No condition value left (or only nulls), or L's keys are null from here on.
            _ => Action::end(p),
        },
        P::RestNe => match s {
            S::Less => keep.adv_u(),
            S::Equal => keep.adv_l(),
            S::Greater | S::EndULNormal | S::UNullLNormal => keep.out(O::L).adv_l(),
            _ => Action::end(p),
        },
        P::DeleteKeep => match s {
            S::Less => keep.adv_u(),
            S::Equal => keep.adv_l(),
            // Greater, no condition value left, a null condition value or a null L key:
            // this tuple matches none, so it is kept.
            _ => keep.out(O::L).adv_l(),
        },
        P::RangeLow => match s {
            S::Less | S::Equal => keep.adv_u().then(P::RangeHigh),
            S::Greater => keep.adv_l(),
            _ => Action::end(p),
        },
        P::RangeHigh => match s {
            S::Equal | S::Greater => keep.out(O::L).adv_l(),
            _ => Action::end(p),
        },
        P::CompNull
        | P::CompNonull
        | P::CompEq
        | P::CompNe
        | P::CompLt
        | P::CompGt
        | P::CompLe
        | P::CompGe => {
            // U is the second attribute of the same L tuple, so U is present with L, and
            // the situation compares second attribute (U) with key (L): key < second is
            // "Greater".
            let pick = match (p, s.both_normal()) {
                (P::CompNull, _) => s.u_null() || s.l_null(),
                (P::CompNonull, o) => o.is_some(),
                (_, None) => false,
                (P::CompEq, Some(o)) => o == Ordering::Equal,
                (P::CompNe, Some(o)) => o != Ordering::Equal,
                (P::CompLt, Some(o)) => o == Ordering::Greater,
                (P::CompGt, Some(o)) => o == Ordering::Less,
                (P::CompLe, Some(o)) => o != Ordering::Less,
                (P::CompGe, Some(o)) => o != Ordering::Greater,
                _ => false,
            };
            if pick {
                keep.out(O::L).adv_l()
            } else {
                keep.adv_l()
            }
        }
        P::JoinEq => match s {
            // §4.3's algorithm; LADR* marks the first L tuple of a group of equal keys.
            S::Less => keep.adv_u(),
            S::Greater => Action {
                mark_l: !dp_l,
                ..keep.adv_l()
            },
            S::Equal => match (dp_u, dp_l) {
                (true, true) | (false, true) => keep.out(O::Pair).adv_l(),
                (true, false) => Action {
                    rewind_l: true,
                    ..keep.out(O::Pair).adv_u()
                },
                (false, false) => Action {
                    mark_l: true,
                    ..keep.out(O::Pair).adv_u().adv_l()
                },
            },
            // Nulls sort last and match nothing; an exhausted side ends the join.
            _ => Action::end(p),
        },
        P::JoinAll
        | P::JoinNull
        | P::JoinNonull
        | P::JoinNe
        | P::JoinLt
        | P::JoinGt
        | P::JoinLe
        | P::JoinGe => {
            // L-major: for each L tuple, scan U from its start.
            if !s.u_present() {
                return Action::next_l(p);
            }
            let (pick, scan_on) = match (p, s.both_normal()) {
                (P::JoinAll, _) => (true, true),
                (P::JoinNull, o) => (o.is_none(), true),
                (P::JoinNonull, o) => (o.is_some(), true),
                // A comparison needs normal keys: from a null L key on (nulls sort last),
                // nothing pairs any more.
                (_, None) if s.l_null() => return Action::end(p),
                // U's nulls come after all its normal keys: this L tuple is done.
                (_, None) => (false, false),
                (P::JoinNe, Some(o)) => (o != Ordering::Equal, true),
                // u < l holds for a prefix of U: stop at the first u >= l.
                (P::JoinLt, Some(o)) => (o == Ordering::Less, o == Ordering::Less),
                (P::JoinLe, Some(o)) => (o != Ordering::Greater, o != Ordering::Greater),
                (P::JoinGt, Some(o)) => (o == Ordering::Greater, true),
                (P::JoinGe, Some(o)) => (o != Ordering::Less, true),
                _ => (false, true),
            };
            if !scan_on {
                Action::next_l(p)
            } else if pick {
                keep.out(O::Pair).adv_u()
            } else {
                keep.adv_u()
            }
        }
    }
}

pub fn pack(a: &Action) -> u16 {
    (a.output as u16)
        | (a.advance_u as u16) << 2
        | (a.advance_l as u16) << 3
        | (a.rewind_u as u16) << 4
        | (a.rewind_l as u16) << 5
        | (a.mark_l as u16) << 6
        | (a.next as u16) << 7
        | (a.end as u16) << 12
}

pub fn unpack(w: u16) -> Action {
    Action {
        output: [Output::None, Output::U, Output::L, Output::Pair][(w & 3) as usize],
        advance_u: w >> 2 & 1 == 1,
        advance_l: w >> 3 & 1 == 1,
        rewind_u: w >> 4 & 1 == 1,
        rewind_l: w >> 5 & 1 == 1,
        mark_l: w >> 6 & 1 == 1,
        next: Program::from_code((w >> 7 & 31) as usize).unwrap_or(Program::Load),
        end: w >> 12 & 1 == 1,
    }
}

/// The partial-U gate (see the module documentation): in SORT-EX's partial-U mode, the
/// step at which U has no tuple left while L still has one ends the command instead of
/// emitting L. Only program SORT-EX (started by SORT-EX alone) is gated, so `u_partial` has
/// no effect on any other command (`MergerConfig::validate` refuses it there).
pub fn partial_end(p: Program, s: Situation, u_partial: bool) -> bool {
    u_partial && p == Program::SortEx && !s.u_present() && s.l_present()
}

/// The word the partial-U gate puts in place of the ROM's: end, nothing output, no move.
pub fn partial_end_word() -> u16 {
    pack(&Action::end(Program::SortEx))
}

/// The ROM image. Addresses with no program or situation (codes beyond the tables) hold an
/// end word, so a corrupted address stops the operation rather than running on.
pub fn contents() -> Vec<u16> {
    (0..WORDS)
        .map(|a| {
            let p = Program::from_code(a >> 6);
            let s = Situation::from_code(a >> 2 & 15);
            match (p, s) {
                (Some(p), Some(s)) => pack(&rule(p, s, a & 2 != 0, a & 1 != 0)),
                _ => pack(&Action::end(Program::Load)),
            }
        })
        .collect()
}

/// What the ROM-level interpreter found: the command's output and its `l_taken`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RomRun {
    pub selected: Vec<Selected>,
    /// L advances carried out (ROM words with `advance_l`; LOAD's program advances over
    /// every tuple of the stream), the operation part's `l_taken` counter at the end.
    pub l_taken: usize,
}

/// Run the operation part at tuple granularity from the ROM words alone. U and L are the
/// stored and the arriving relation (for COMPARE ATTRIBUTES, U is the second attribute of
/// the current L tuple). Comparisons: in sort order for SORT-EX and UNQ-EX, by value
/// otherwise. SORT-EX's partial-U mode (`s.u_partial`) goes through [partial_end].
pub fn interpret(
    rom: &[u16],
    cmd: MergerCommand,
    s: &MergerSettings,
    u: &[StreamTuple],
    l: &[StreamTuple],
) -> Result<Vec<Selected>> {
    Ok(interpret_run(rom, cmd, s, u, l)?.selected)
}

/// As [interpret], with the L advances (`l_taken`).
pub fn interpret_run(
    rom: &[u16],
    cmd: MergerCommand,
    s: &MergerSettings,
    u: &[StreamTuple],
    l: &[StreamTuple],
) -> Result<RomRun> {
    let decoded = decode_command(cmd);
    let no_u: &[StreamTuple] = &[];
    let u = if decoded.uses_u { u } else { no_u };
    run_rom(rom, decoded, s, u, l)
}

/// Delete mode (§5.1) at tuple granularity: the DELETE-KEEP program over L, then L and U
/// replayed from their first tuple under REST-EQ.
pub fn interpret_delete(
    rom: &[u16],
    s: &MergerSettings,
    u: &[StreamTuple],
    l: &[StreamTuple],
) -> Result<Vec<Selected>> {
    Ok(interpret_delete_run(rom, s, u, l)?.selected)
}

/// As [interpret_delete], with the L advances of both passes (`l_taken`).
pub fn interpret_delete_run(
    rom: &[u16],
    s: &MergerSettings,
    u: &[StreamTuple],
    l: &[StreamTuple],
) -> Result<RomRun> {
    let mut run = run_rom(rom, DecodedCommand::delete_keep(), s, u, l)?;
    let second = run_rom(rom, decode_command(MergerCommand::RestEq), s, u, l)?;
    run.selected.extend(second.selected);
    run.l_taken += second.l_taken;
    Ok(run)
}

fn run_rom(
    rom: &[u16],
    d: DecodedCommand,
    s: &MergerSettings,
    u: &[StreamTuple],
    l: &[StreamTuple],
) -> Result<RomRun> {
    let descending = d.is_merge && s.descending;
    let k = s.key_words;
    let mut program = d.start;
    let (mut pu, mut pl, mut l_mark) = (0usize, 0usize, 0usize);
    let mut out = Vec::new();
    let mut l_taken = 0usize;
    let limit = 16 + 4 * (u.len() + 1) * (l.len() + 1) + 4 * (u.len() + l.len());
    let mut second: Vec<u16>;
    for _ in 0..limit {
        let lt = l.get(pl);
        let (u_null, u_words): (Option<bool>, Option<&[u16]>) = if d.is_comp {
            match lt {
                Some(t) => {
                    if s.second_offset + k > t.words.len() {
                        bail!("second attribute outside the tuple");
                    }
                    let null = s
                        .second_null_bit
                        .map(|b| t.words.last().unwrap() >> b & 1 == 1)
                        .unwrap_or(false);
                    second = t.words[s.second_offset..s.second_offset + k].to_vec();
                    transform_key(s.second_type, &mut second);
                    (Some(null), Some(&second[..]))
                }
                None => (None, None),
            }
        } else {
            (u.get(pu).map(|t| t.null), u.get(pu).map(|t| &t.words[..k]))
        };
        let situation = Situation::of(u_null, lt.map(|t| t.null), || {
            let o = u_words.unwrap().cmp(&lt.unwrap().words[..k]);
            if descending {
                o.reverse()
            } else {
                o
            }
        });
        let dp_u = !d.is_comp && u.get(pu).map(|t| t.dup).unwrap_or(false);
        let dp_l = lt.map(|t| t.dup).unwrap_or(false);
        let word = if partial_end(program, situation, s.u_partial) {
            partial_end_word()
        } else {
            rom[address(program, situation, dp_u, dp_l)]
        };
        let a = unpack(word);
        if a.end {
            return Ok(RomRun {
                selected: out,
                l_taken,
            });
        }
        match a.output {
            Output::None => {}
            Output::U => out.push(Selected::U(pu)),
            Output::L => out.push(Selected::L(pl)),
            Output::Pair => out.push(Selected::Pair(pu, pl)),
        }
        if a.advance_u {
            pu += 1;
        }
        if a.advance_l {
            pl += 1;
            l_taken += 1;
        }
        if a.mark_l {
            l_mark = pl;
        }
        if a.rewind_l {
            pl = l_mark;
        }
        if a.rewind_u {
            pu = 0;
        }
        program = a.next;
    }
    bail!("{:?} did not end within {limit} steps", d.start)
}

/// What the operation part needs to know about a command besides its ROM program: the
/// command decoder's word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedCommand {
    /// The ROM program the command starts with.
    pub start: Program,
    /// The command reads U-memory.
    pub uses_u: bool,
    /// COMPARE ATTRIBUTES: U is the second attribute of the current L tuple.
    pub is_comp: bool,
    /// SORT-EX, UNQ-EX: compare in the configured sort order (else by value, ascending).
    pub is_merge: bool,
}

impl DecodedCommand {
    fn delete_keep() -> DecodedCommand {
        DecodedCommand {
            start: Program::DeleteKeep,
            uses_u: true,
            is_comp: false,
            is_merge: false,
        }
    }
}

pub fn decode_command(cmd: MergerCommand) -> DecodedCommand {
    DecodedCommand {
        start: Program::start(cmd),
        uses_u: cmd.uses_u(),
        is_comp: cmd.compares_attributes(),
        is_merge: matches!(cmd, MergerCommand::SortEx | MergerCommand::UnqEx),
    }
}

/// Command decoder address bits: the command code (`MergerCommand::code`).
pub const COMMAND_BITS: usize = 5;
/// Command decoder word: `start[4:0] | uses_u | is_comp | is_merge | valid`.
pub const DECODER_BITS: usize = 9;

pub fn pack_decoded(d: &DecodedCommand) -> u16 {
    d.start as u16
        | (d.uses_u as u16) << 5
        | (d.is_comp as u16) << 6
        | (d.is_merge as u16) << 7
        | 1 << 8
}

/// The command decoder ROM: one word per command code; codes beyond Fig. 5's 29 commands
/// hold 0 (`valid` clear), which the operation part reports as a command error.
pub fn decoder_contents() -> Vec<u16> {
    (0..1usize << COMMAND_BITS)
        .map(|code| {
            MergerCommand::from_code(code)
                .map(|c| pack_decoded(&decode_command(c)))
                .unwrap_or(0)
        })
        .collect()
}

/// The control ROM's words for one situation: 128 words addressed by program · DP of U ·
/// DP of L (the full ROM's address without its situation field). The operation part looks
/// up the three comparison situations (Less, Equal, Greater) in three such slices while its
/// comparator's carry chain settles, and picks one with the comparison's result, so the
/// ROM's depth is not added after the comparator ([crate::operation_part]).
pub fn situation_slice(situation: Situation) -> Vec<u16> {
    let rom = contents();
    (0..(WORDS >> 4))
        .map(|a| rom[(a >> 2) << 6 | (situation as usize) << 2 | (a & 3)])
        .collect()
}

/// A combinational ROM (an `always @*` case table; FPGA tools build it from LUTs, so its
/// word is there in the same cycle as its address). Used for the control ROM and the
/// command decoder. `N` address bits, `W` data bits.
#[derive(LogicBlock)]
pub struct RomTable<const N: usize, const W: usize> {
    pub address: Signal<In, Bits<N>>,
    pub data: Signal<Out, Bits<W>>,
    _words: Vec<u64>,
}

impl<const N: usize, const W: usize> RomTable<N, W> {
    pub fn new(words: &[u16]) -> Self {
        assert_eq!(words.len(), 1 << N, "ROM image size");
        assert!(words.iter().all(|&w| (w as u64) < 1 << W), "ROM word width");
        Self {
            address: Default::default(),
            data: Default::default(),
            _words: words.iter().map(|&w| w as u64).collect(),
        }
    }
    /// The control ROM of §4.3.
    pub fn control_rom() -> Self {
        Self::new(&contents())
    }
    /// One situation's slice of the control ROM ([situation_slice]).
    pub fn control_rom_slice(situation: Situation) -> Self {
        Self::new(&situation_slice(situation))
    }
    /// The command decoder.
    pub fn command_decoder() -> Self {
        Self::new(&decoder_contents())
    }
}

impl<const N: usize, const W: usize> Logic for RomTable<N, W> {
    fn update(&mut self) {
        self.data.next = self._words[self.address.val().index()].into();
    }

    fn connect(&mut self) {
        self.data.connect();
    }

    fn hdl(&self) -> Verilog {
        let cases = self
            ._words
            .iter()
            .enumerate()
            .map(|(a, w)| format!("    {N}'d{a}: data = {W}'h{w:x};"))
            .collect::<Vec<_>>()
            .join("\n");
        Verilog::Custom(format!(
            "\
always @(*) begin
    case (address)
{cases}
    endcase
end
"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::in_module::KeyType;
    use crate::merger::model::{merger_l_taken, merger_model};
    use crate::sorting_cell::model::sort_order;
    use crate::sorting_checker::{sorting_checker_model, CheckerConfig};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn situation_slices_hold_the_rules_of_their_situation() {
        for s in [Situation::Less, Situation::Equal, Situation::Greater] {
            let slice = situation_slice(s);
            assert_eq!(slice.len(), 128);
            for p in Program::ALL {
                for dp_u in [false, true] {
                    for dp_l in [false, true] {
                        let a = (p as usize) << 2 | (dp_u as usize) << 1 | dp_l as usize;
                        assert_eq!(unpack(slice[a]), rule(p, s, dp_u, dp_l), "{p:?} {s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_rom_word_decodes_to_its_rule() {
        let rom = contents();
        assert_eq!(rom.len(), WORDS);
        let mut used = 0;
        for p in Program::ALL {
            for s in Situation::ALL {
                for dp_u in [false, true] {
                    for dp_l in [false, true] {
                        let w = rom[address(p, s, dp_u, dp_l)];
                        assert!(w < 1 << WORD_BITS);
                        assert_eq!(
                            unpack(w),
                            rule(p, s, dp_u, dp_l),
                            "{p:?} {s:?} {dp_u} {dp_l}"
                        );
                        used += 1;
                    }
                }
            }
        }
        assert_eq!(used, 32 * 11 * 4);
        // Unused addresses stop the operation.
        assert!(unpack(rom[address(Program::JoinGe, Situation::BothNull, true, true) + 4]).end);
        assert!(unpack(rom[WORDS - 1]).end);
    }

    #[test]
    fn only_join_eq_ever_returns_l_so_every_other_program_frees_l_as_it_goes() {
        for p in Program::ALL {
            for s in Situation::ALL {
                for (dp_u, dp_l) in [(false, false), (false, true), (true, false), (true, true)] {
                    let a = rule(p, s, dp_u, dp_l);
                    if p != Program::JoinEq {
                        assert!(!a.rewind_l, "{p:?} {s:?}");
                        assert_eq!(a.mark_l, a.advance_l, "{p:?} {s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn rom_rules_follow_the_papers_join_eq_algorithm() {
        let a = |dp_u, dp_l| rule(Program::JoinEq, Situation::Equal, dp_u, dp_l);
        assert!(a(true, true).advance_l && !a(true, true).advance_u);
        assert!(
            a(true, false).advance_u && a(true, false).rewind_l,
            "UADR+1, LADR = LADR*"
        );
        assert!(a(false, true).advance_l && !a(false, true).advance_u);
        assert!(a(false, false).advance_u && a(false, false).advance_l);
        assert!([
            a(true, true),
            a(true, false),
            a(false, true),
            a(false, false)
        ]
        .iter()
        .all(|x| x.output == Output::Pair));
        assert!(rule(Program::JoinEq, Situation::Greater, false, false).advance_l);
        assert!(rule(Program::JoinEq, Situation::Less, false, false).advance_u);
    }

    fn prepared(rng: &mut ChaCha8Rng, n: usize, kw: usize, descending: bool) -> Vec<StreamTuple> {
        let domain = [2u16, 4, 9][rng.gen_range(0..3)];
        let mut v: Vec<StreamTuple> = (0..n)
            .map(|i| {
                let mut w: Vec<u16> = (0..kw).map(|_| rng.gen_range(0..domain)).collect();
                w.push(rng.gen_range(0..domain)); // second attribute for COMPARE
                w.push(i as u16); // payload
                w.push(if rng.gen_bool(0.2) { 0b100 } else { 0 }); // tag word
                StreamTuple::new(w, rng.gen_bool(0.15))
            })
            .collect();
        v.sort_by(|a, b| sort_order(a, b, kw, descending));
        sorting_checker_model(
            &CheckerConfig {
                tuple_words: kw + 3,
                key_words: kw,
                descending,
            },
            &v,
        )
        .tuples
    }

    #[test]
    fn the_rom_runs_delete_mode_as_the_model_says() {
        use crate::merger::model::{delete_l_taken, delete_model};
        let rom = contents();
        let mut rng = ChaCha8Rng::seed_from_u64(51);
        for case in 0..400 {
            let kw = rng.gen_range(1..=2);
            let s = MergerSettings {
                key_words: kw,
                descending: false,
                second_offset: kw,
                second_null_bit: None,
                second_type: KeyType::Unsigned,
                u_partial: false,
            };
            let (nu, nl) = (rng.gen_range(0..6), rng.gen_range(0..14));
            let u = prepared(&mut rng, nu, kw, false);
            let l = prepared(&mut rng, nl, kw, false);
            let run = interpret_delete_run(&rom, &s, &u, &l).unwrap();
            let got = run.selected;
            assert_eq!(
                got,
                delete_model(&s, &u, &l),
                "case {case}\nU {u:?}\nL {l:?}"
            );
            assert_eq!(got.len(), l.len(), "every tuple of the page comes out once");
            assert_eq!(run.l_taken, delete_l_taken(&s, &u, &l), "case {case}");
        }
    }

    #[test]
    fn command_decoder_words_follow_the_commands() {
        let rom = decoder_contents();
        assert_eq!(rom.len(), 32);
        for c in MergerCommand::ALL {
            let w = rom[c.code()];
            assert_eq!(w >> 8 & 1, 1, "{} valid", c.name());
            assert_eq!(
                Program::from_code((w & 31) as usize),
                Some(Program::start(c))
            );
            assert_eq!(w >> 5 & 1 == 1, c.uses_u(), "{}", c.name());
            // The COMPARE ATTRIBUTES commands but COMP-ALL, which compares nothing.
            assert_eq!(
                w >> 6 & 1 == 1,
                c.name().starts_with("COMP-") && c != MergerCommand::CompAll,
                "{}",
                c.name()
            );
            assert_eq!(
                w >> 7 & 1 == 1,
                matches!(c, MergerCommand::SortEx | MergerCommand::UnqEx)
            );
        }
        assert!(
            rom[29..].iter().all(|&w| w == 0),
            "unknown codes are not valid"
        );
    }

    #[test]
    fn the_rom_runs_every_command_as_the_semantics_say() {
        let rom = contents();
        let mut rng = ChaCha8Rng::seed_from_u64(29);
        for cmd in MergerCommand::ALL {
            for case in 0..150 {
                let kw = rng.gen_range(1..=2);
                let merge = matches!(cmd, MergerCommand::SortEx | MergerCommand::UnqEx);
                let descending = merge && rng.gen();
                let s = MergerSettings {
                    key_words: kw,
                    descending,
                    second_offset: kw,
                    second_null_bit: Some(2),
                    second_type: match rng.gen_range(0..3) {
                        0 => KeyType::Unsigned,
                        1 => KeyType::Signed,
                        _ if kw == 2 => KeyType::Float,
                        _ => KeyType::Signed,
                    },
                    u_partial: false,
                };
                let (nu, nl) = (rng.gen_range(0..9), rng.gen_range(0..12));
                let mut u = prepared(&mut rng, nu, kw, descending);
                let l = prepared(&mut rng, nl, kw, descending);
                if cmd == MergerCommand::RestRange {
                    // Two condition values, low <= high, normal keys.
                    u.retain(|t| !t.null);
                    u.truncate(2);
                    if u.len() != 2 {
                        continue;
                    }
                }
                // SORT-EX runs both ways on the same operands: whole U, and U as a chunk.
                let partial = if cmd == MergerCommand::SortEx {
                    vec![false, true]
                } else {
                    vec![false]
                };
                for u_partial in partial {
                    let s = MergerSettings { u_partial, ..s };
                    let expect = merger_model(cmd, &s, &u, &l).unwrap();
                    let run = interpret_run(&rom, cmd, &s, &u, &l).unwrap();
                    let what = format!("{} u_partial {u_partial} case {case}", cmd.name());
                    assert_eq!(run.selected, expect, "{what}\nU {u:?}\nL {l:?}");
                    assert_eq!(
                        run.l_taken,
                        merger_l_taken(cmd, &s, &u, &l).unwrap(),
                        "l_taken of {what}\nU {u:?}\nL {l:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_partial_u_gate_ends_sort_ex_only_when_u_is_used_up_and_l_is_not() {
        for p in Program::ALL {
            for s in Situation::ALL {
                let gated = partial_end(p, s, true);
                assert_eq!(
                    gated,
                    p == Program::SortEx
                        && matches!(s, Situation::EndULNormal | Situation::EndULNull),
                    "{p:?} {s:?}"
                );
                assert!(!partial_end(p, s, false));
                if gated {
                    // Where the gate acts, the ROM itself would emit L.
                    let a = rule(p, s, false, false);
                    assert!(a.output == Output::L && a.advance_l && !a.end);
                }
            }
        }
        let w = unpack(partial_end_word());
        assert!(w.end && w.output == Output::None && !w.advance_l && !w.advance_u);
        // U [1, 3, 5] as a chunk, L [2, 4, 6, 7]: 1 2 3 4 5, then the command ends.
        let mk = |k: u16| StreamTuple::new(vec![k, 0], false);
        let u: Vec<_> = [1, 3, 5].map(mk).to_vec();
        let l: Vec<_> = [2, 4, 6, 7].map(mk).to_vec();
        let s = MergerSettings {
            u_partial: true,
            ..MergerSettings::ascending(1)
        };
        let run = interpret_run(&contents(), MergerCommand::SortEx, &s, &u, &l).unwrap();
        use Selected::{L, U};
        assert_eq!(run.selected, vec![U(0), L(0), U(1), L(1), U(2)]);
        assert_eq!(run.l_taken, 2);
    }
}
