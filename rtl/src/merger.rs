//! Merger (paper §4.3, Fig. 5–9): the engine core's module for every relational operation,
//! run as a merge of two sorted streams held in U-memory and L-memory.
//!
//! This file holds, so far, the merger's command set and its pure-Rust reference model:
//! the semantics of all 29 commands of Fig. 5 as written in `docs/MERGER.md`, and §4.3's
//! JOIN-EQ algorithm with the DP lines and LADR*. The RTL (operation part with its control
//! ROM, output control part) is still to come (issue 3); its tests will compare against
//! [model::merger_model].
use crate::tuple_stream::StreamTuple;
use anyhow::{bail, ensure, Result};

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
    /// REST-RANGE are exactly two U tuples, low then high.
    pub fn merger_model(
        cmd: MergerCommand,
        s: &MergerSettings,
        u: &[StreamTuple],
        l: &[StreamTuple],
    ) -> Result<Vec<Selected>> {
        use MergerCommand::*;
        ensure!(s.key_words >= 1, "key_words must be at least 1");
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
                    let second = &t.words[s.second_offset..s.second_offset + k];
                    if selects(cond, t.null, second_null(t, s), || t.words[..k].cmp(second)) {
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

    /// Delete mode (§5.1, Fig. 9): with the condition values in U, the L tuples (a page)
    /// that match none of them come first, then the ones that match (the deleted tuples),
    /// each group in L's order. A null key matches nothing, so it is kept: no tuple is lost.
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

    /// §4.3's JOIN-EQ algorithm, step by step, on ascending U and L with DP lines: what the
    /// control ROM will implement. Nulls sort last and are never equal.
    pub fn join_eq_with_dp(
        u: &[StreamTuple],
        l: &[StreamTuple],
        s: &MergerSettings,
    ) -> Vec<Selected> {
        let (mut ua, mut la, mut la_star) = (0usize, 0usize, 0usize);
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
                }
                Ordering::Less => ua += 1,
                Ordering::Equal => {
                    out.push(Selected::Pair(ua, la));
                    match (a.dup, b.dup) {
                        (true, true) | (false, true) => la += 1,
                        (true, false) => {
                            ua += 1;
                            la = la_star;
                        }
                        (false, false) => {
                            ua += 1;
                            la += 1;
                            la_star = la;
                        }
                    }
                }
            }
        }
        out
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
    const S: MergerSettings = MergerSettings {
        key_words: 1,
        descending: false,
        second_offset: 1,
        second_null_bit: None,
    };

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

    #[test]
    fn compare_attributes_within_a_tuple() {
        use MergerCommand::*;
        // Tuples [key, second, tag]; second attribute at word 1, its null flag tag bit 3.
        let s = MergerSettings {
            key_words: 1,
            descending: false,
            second_offset: 1,
            second_null_bit: Some(3),
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
