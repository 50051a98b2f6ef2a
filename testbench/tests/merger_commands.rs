//! Merger testbench (issue 3): every command of Fig. 5 on the RTL merger.
//!
//! * `hand_written_expectations`: one small case per command whose expected output was
//!   worked out by hand from the semantics table (`docs/MERGER.md`), not by the model, so a
//!   misunderstanding shared by the model and the RTL shows up here.
//! * `sorter_fed_random_commands`: both operands sorted by the RTL sort pipeline (IN
//!   module → small sorter → sorting checker, which drives DP), then the RTL merger, against
//!   the merger's model applied to the pipeline's output, for every command.
use rand::Rng;
use rdbe_rtl::harness::{Harness, Pacing};
use rdbe_rtl::in_module::{InConfig, KeyType};
use rdbe_rtl::merger::{MergerCommand, MergerConfig, MergerSettings, MergerSmall};
use rdbe_rtl::output_control_part::{OutputSettings, SideFormat};
use rdbe_rtl::sort_pipeline::{run_pipeline, PipelineSettings, SmallSortPipeline};
use rdbe_rtl::sorting_checker::{sorting_checker_model, CheckerConfig};
use rdbe_rtl::tuple_stream::{split_tuples, to_beats, StreamTuple};
use rdbe_testbench::seeded;

/// Internal tuples `[key, (second,) payload, tag]`, already sorted, DP as the checker
/// drives it. `None` is a null key.
fn relation(rows: &[(Option<u16>, u16)]) -> Vec<StreamTuple> {
    let tuples: Vec<StreamTuple> = rows
        .iter()
        .map(|&(k, p)| StreamTuple::new(vec![k.unwrap_or(0), p, 0], k.is_none()))
        .collect();
    with_dp(tuples, 3)
}

fn with_dp(tuples: Vec<StreamTuple>, tuple_words: usize) -> Vec<StreamTuple> {
    sorting_checker_model(
        &CheckerConfig {
            tuple_words,
            key_words: 1,
            descending: false,
        },
        &tuples,
    )
    .tuples
}

fn config(command: MergerCommand, tuple_words: usize) -> MergerConfig {
    MergerConfig {
        command,
        delete: false,
        settings: MergerSettings {
            key_words: 1,
            descending: false,
            second_offset: 1,
            second_null_bit: Some(0),
            second_type: KeyType::Unsigned,
            u_partial: false,
        },
        tuple_words,
        output: OutputSettings {
            u: SideFormat::unrotated(3),
            l: SideFormat::unrotated(tuple_words),
            new_tid: false,
            tid_base: 0,
        },
    }
}

fn run(h: &mut Harness<MergerSmall>, cfg: &MergerConfig, input: &[StreamTuple]) -> Vec<Vec<u16>> {
    cfg.apply(&mut h.uut).unwrap();
    let beats = to_beats(input);
    let out = split_tuples(&h.run_stream(&beats, Pacing::FULL_RATE, 20_000).output);
    assert!(!h.uut.l_overflow.val() && !h.uut.command_error.val());
    out
}

/// The payloads of each output tuple (compact: tag, then fields; payload is the field
/// after the key; COMPARE tuples carry the second attribute before it).
fn payloads(out: &[Vec<u16>], comp: bool) -> Vec<String> {
    out.iter()
        .map(|t| match t.len() {
            3 => format!("{}", t[2]),
            4 if comp => format!("{}", t[3]),
            5 => format!("{}-{}", t[2], t[4]),
            n => panic!("unexpected {n}-word output tuple {t:?}"),
        })
        .collect()
}

fn pairs(list: &[(u16, &[u16])]) -> Vec<String> {
    // L-major listing: for each L payload, the U payloads it pairs with.
    list.iter()
        .flat_map(|(l, us)| us.iter().map(move |u| format!("{u}-{l}")))
        .collect()
}

fn strings(v: &[u16]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn hand_written_expectations() {
    use MergerCommand as C;
    // U: keys 2 4 4 6 null (payloads 10–14); L: keys 1 4 4 5 6 null null (20–26).
    let u = relation(&[
        (Some(2), 10),
        (Some(4), 11),
        (Some(4), 12),
        (Some(6), 13),
        (None, 14),
    ]);
    let l = relation(&[
        (Some(1), 20),
        (Some(4), 21),
        (Some(4), 22),
        (Some(5), 23),
        (Some(6), 24),
        (None, 25),
        (None, 26),
    ]);
    let all_l = strings(&[20, 21, 22, 23, 24, 25, 26]);
    let normal_u: &[u16] = &[10, 11, 12, 13];
    let mut h = Harness::new(MergerSmall::default());
    let mut check = |command: MergerCommand, u: &[StreamTuple], expected: Vec<String>| {
        let load = config(C::Load, 3);
        assert!(run(&mut h, &load, u).is_empty(), "LOAD outputs nothing");
        let got = payloads(&run(&mut h, &config(command, 3), &l), false);
        assert_eq!(got, expected, "{}", command.name());
    };
    check(C::Load, &u, vec![]);
    check(C::Pass1, &u, all_l.clone());
    check(C::Pass2, &u, strings(&[20, 21, 23, 24, 25]));
    check(C::SortIn, &u, all_l.clone());
    check(
        C::SortEx,
        &u,
        strings(&[20, 10, 11, 12, 21, 22, 23, 13, 24, 14, 25, 26]),
    );
    check(C::UnqEx, &u, strings(&[20, 10, 11, 23, 13, 14]));
    check(C::RestNull, &u, strings(&[25, 26]));
    check(C::RestNonull, &u, strings(&[20, 21, 22, 23, 24]));
    check(C::RestEq, &u, strings(&[21, 22, 24]));
    check(C::RestNe, &u, strings(&[20, 23]));
    let range = relation(&[(Some(3), 30), (Some(5), 31)]);
    check(C::RestRange, &range, strings(&[21, 22, 23]));
    let every_u: &[u16] = &[10, 11, 12, 13, 14];
    check(
        C::JoinAll,
        &u,
        pairs(&[
            (20, every_u),
            (21, every_u),
            (22, every_u),
            (23, every_u),
            (24, every_u),
            (25, every_u),
            (26, every_u),
        ]),
    );
    check(
        C::JoinNull,
        &u,
        pairs(&[
            (20, &[14]),
            (21, &[14]),
            (22, &[14]),
            (23, &[14]),
            (24, &[14]),
            (25, every_u),
            (26, every_u),
        ]),
    );
    check(
        C::JoinNonull,
        &u,
        pairs(&[
            (20, normal_u),
            (21, normal_u),
            (22, normal_u),
            (23, normal_u),
            (24, normal_u),
        ]),
    );
    // JOIN-EQ: key order, U-major within a key (§4.3 with LADR*).
    check(
        C::JoinEq,
        &u,
        vec!["11-21", "11-22", "12-21", "12-22", "13-24"]
            .into_iter()
            .map(String::from)
            .collect(),
    );
    check(
        C::JoinNe,
        &u,
        pairs(&[
            (20, normal_u),
            (21, &[10, 13]),
            (22, &[10, 13]),
            (23, normal_u),
            (24, &[10, 11, 12]),
        ]),
    );
    check(
        C::JoinLt,
        &u,
        pairs(&[
            (21, &[10]),
            (22, &[10]),
            (23, &[10, 11, 12]),
            (24, &[10, 11, 12]),
        ]),
    );
    check(
        C::JoinGt,
        &u,
        pairs(&[(20, normal_u), (21, &[13]), (22, &[13]), (23, &[13])]),
    );
    check(
        C::JoinLe,
        &u,
        pairs(&[
            (21, &[10, 11, 12]),
            (22, &[10, 11, 12]),
            (23, &[10, 11, 12]),
            (24, normal_u),
        ]),
    );
    check(
        C::JoinGe,
        &u,
        pairs(&[
            (20, normal_u),
            (21, &[11, 12, 13]),
            (22, &[11, 12, 13]),
            (23, &[13]),
            (24, &[13]),
        ]),
    );
    // Empty operands.
    check(C::JoinEq, &[], vec![]);
    check(C::SortEx, &[], all_l.clone());
    check(C::RestEq, &[], vec![]);
    check(C::RestNe, &[], strings(&[20, 21, 22, 23, 24]));

    // Delete mode (§5.1): conditions 2 4 6 null; kept 1 5 null null, then deleted 4 4 6.
    let conditions = relation(&[(Some(2), 1), (Some(4), 2), (Some(6), 3), (None, 4)]);
    run(&mut h, &config(C::Load, 3), &conditions);
    let delete = MergerConfig {
        delete: true,
        ..config(C::RestNe, 3)
    };
    assert_eq!(
        payloads(&run(&mut h, &delete, &l), false),
        strings(&[20, 23, 25, 26, 21, 22, 24])
    );
    // An empty L relation: nothing, for every command but the merges, which give U.
    for c in MergerCommand::ALL {
        run(&mut h, &config(C::Load, 3), &u);
        let expected = match c {
            C::SortEx => strings(&[10, 11, 12, 13, 14]),
            C::UnqEx => strings(&[10, 11, 13, 14]),
            _ => vec![],
        };
        let got = payloads(&run(&mut h, &config(c, 3), &[]), false);
        assert_eq!(got, expected, "{} with an empty L", c.name());
    }
}

#[test]
fn hand_written_compare_attributes() {
    use MergerCommand as C;
    // [key, second, payload, tag]; tag bit 0 flags the second attribute null.
    let row = |k: Option<u16>, second: Option<u16>, p: u16| {
        StreamTuple::new(
            vec![
                k.unwrap_or(0),
                second.unwrap_or(0),
                p,
                second.is_none() as u16,
            ],
            k.is_none(),
        )
    };
    let l = with_dp(
        vec![
            row(Some(1), Some(2), 40),
            row(Some(3), Some(3), 41),
            row(Some(5), Some(4), 42),
            row(Some(7), None, 43),
            row(None, Some(1), 44),
        ],
        4,
    );
    let mut h = Harness::new(MergerSmall::default());
    for (c, expected) in [
        (C::CompAll, vec![40, 41, 42, 43, 44]),
        (C::CompNull, vec![43, 44]),
        (C::CompNonull, vec![40, 41, 42]),
        (C::CompEq, vec![41]),
        (C::CompNe, vec![40, 42]),
        (C::CompLt, vec![40]),
        (C::CompGt, vec![42]),
        (C::CompLe, vec![40, 41]),
        (C::CompGe, vec![41, 42]),
    ] {
        let mut cfg = config(c, 4);
        cfg.output.u = SideFormat::unrotated(4);
        let got = payloads(&run(&mut h, &cfg, &l), true);
        assert_eq!(got, strings(&expected), "{}", c.name());
    }
}

#[test]
fn sorter_fed_random_commands() {
    // Both operands: random compact relations (key field nullable, few distinct keys)
    // sorted by the RTL sort pipeline; then LOAD and the command on the RTL merger.
    let mut rng = seeded(2024);
    let input = InConfig {
        tuple_words: 4,
        key_offset: 2,
        key_words: 1,
        key_type: KeyType::Signed,
        key_null_bit: Some(1),
    };
    let settings = PipelineSettings {
        input: input.clone(),
        descending: false,
        sort_enable: true,
        tuples_hint: 0,
    };
    let mut pipeline = Harness::new(SmallSortPipeline::default());
    let mut merger = Harness::new(MergerSmall::default());
    let format = SideFormat {
        tuple_words: 4,
        key_offset: 2,
        key_words: 1,
        key_type: KeyType::Signed,
        first_word: 1,
        end_word: 4,
        first_field: 0,
        fields: 3,
    };
    for (case, command) in MergerCommand::ALL.iter().copied().enumerate() {
        let random_compact = |n: usize, rng: &mut rand_chacha::ChaCha8Rng| -> Vec<Vec<u16>> {
            (0..n)
                .map(|i| {
                    let null = rng.gen_bool(0.15);
                    vec![
                        (null as u16) << 1,
                        rng.gen_range(0x7ffe..0x8003u16),
                        rng.gen_range(0..5u16).wrapping_sub(2),
                        i as u16,
                    ]
                })
                .collect()
        };
        let (nu, nl) = (rng.gen_range(0..20), rng.gen_range(0..28));
        let mut u_compact = random_compact(nu, &mut rng);
        if command == MergerCommand::RestRange {
            // Exactly two condition values with normal keys: the sorter puts low first.
            u_compact = random_compact(2, &mut rng);
            for t in &mut u_compact {
                t[0] = 0;
            }
        }
        let l_compact = random_compact(nl, &mut rng);
        let u = run_pipeline(&mut pipeline, &settings, &u_compact, Pacing::FULL_RATE)
            .unwrap()
            .output;
        let l = run_pipeline(&mut pipeline, &settings, &l_compact, Pacing::FULL_RATE)
            .unwrap()
            .output;
        let cfg = MergerConfig {
            command,
            delete: false,
            // COMPARE ATTRIBUTES: the internal tuple is [key, payload, first field, tag];
            // the key is compared with the first field, a signed number as the key is
            // (its null flag, tag bit 0, is never set here).
            settings: MergerSettings {
                second_offset: 2,
                second_null_bit: Some(0),
                second_type: KeyType::Signed,
                ..MergerSettings::ascending(1)
            },
            tuple_words: 4,
            output: OutputSettings {
                u: format,
                l: format,
                new_tid: true,
                tid_base: 100 * case as u32,
            },
        };
        let load = MergerConfig {
            command: MergerCommand::Load,
            ..cfg
        };
        let pacing = Pacing {
            source_duty: 0.7,
            sink_duty: 0.8,
            seed: case as u64,
        };
        load.apply(&mut merger.uut).unwrap();
        merger.run_stream(&to_beats(&u), pacing, 100_000);
        cfg.apply(&mut merger.uut).unwrap();
        let got = split_tuples(&merger.run_stream(&to_beats(&l), pacing, 100_000).output);
        assert_eq!(
            got,
            cfg.model(&u, &l).unwrap(),
            "{} (case {case})",
            command.name()
        );
        // Whole-tuple outputs of one relation are the HM's compact tuples again.
        if matches!(command, MergerCommand::Pass1 | MergerCommand::SortIn) {
            assert_eq!(got.len(), l_compact.len());
            for t in &got {
                assert!(
                    l_compact.iter().any(|c| c[..] == t[..4]),
                    "{t:?} is an input tuple"
                );
            }
        }
    }
}
