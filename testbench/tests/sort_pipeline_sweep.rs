//! Testbench: the sort pipeline top (IN module → sorter → sorting checker), both
//! configurations, swept over their parameters and compared exactly with the reference
//! model (`sort_pipeline::model_output`) and with the independent oracle of
//! `rdbe_testbench` (output tuples, their order, NL and DP, and the status lines).
//!
//! Parameters swept (each case prints them in its failure message, with the seed):
//! * configuration: [DeltaSortPipeline] (12 cells, tuples up to 2047 words) and
//!   [SmallSortPipeline] (the iCE40-sized sorter, tuples up to 128 words);
//! * tuple length `n` in words, tag word included (bytes = 2n): the minimum (a tag word
//!   and one 2-byte field), and each side of every cell's memory size, where one more cell
//!   goes to pass mode and the capacity halves (16/18, 32/34, 128/130, 1024/1026 bytes),
//!   up to the maximum (Delta 4094 bytes = 2047 words; Small 128 words). (2-byte tuples,
//!   one word with no room for a tag word, exist only behind the IN module: the sorter
//!   sorts them in `sorter_capacity.rs`.)
//! * key kind: unsigned (or char), signed (sign flip), float (totalOrder transform), and
//!   the whole tuple (unsigned over all fields then the tag word);
//! * key position: first field, a middle field, last field; key length 1..4 words; and a
//!   key from a middle field wrapping round the rotated tuple through the tag word;
//! * null density of the key: 0 (not nullable, or nullable with no nulls), 10 %, 90 %;
//! * duplicate density: key domain of 1 (all keys equal), 3, 1000 and 65536 values (the
//!   first values of each domain are boundary patterns: MIN/MAX/-1/0, ±0, ±inf, NaNs…);
//! * order: ascending and descending;
//! * relation size: 0, 1, 2, non-powers of two, exactly the capacity, and above it (the
//!   sorter then emits sorted blocks of `capacity_tuples`: the block sort);
//! * the size hint (`tuples_hint`): the relation's size, or 0 (unknown);
//! * pacing: random valid/ready duty cycles on the input and output streams.
//!
//! Also: sorting disabled, a size hint below the relation's size, and injected parity and
//! framing faults (the status lines must rise, stick, and clear).
//!
//! One harness per test is reused for all its cases: the configuration changes between
//! streams, as the control program does.
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rdbe_rtl::harness::{Harness, Pacing};
use rdbe_rtl::sort_pipeline::{
    model_output, DeltaSortPipeline, PipelineRun, PipelineSettings, SmallSortPipeline,
    SortPipelineTop,
};
use rdbe_rtl::sorter::{capacity_tuples, DELTA_CELL_ADDRESS_BITS, SMALL_CELL_ADDRESS_BITS};
use rdbe_rtl::tuple_stream::{compact_beats, from_beats};
use rdbe_testbench::*;

/// Duty cycles the random pacing picks from, per side (1.0 = every cycle).
const DUTIES: [f64; 4] = [1.0, 0.9, 0.6, 0.35];
/// Milder duty cycles for the long Delta relations (keeps the suite fast).
const DELTA_DUTIES: [f64; 3] = [1.0, 0.9, 0.75];

/// Probability that a tuple's key is null: none, a few, nearly all.
const NULL_DENSITIES: [f64; 3] = [0.0, 0.1, 0.9];
/// Distinct key values: all equal, a few large duplicate groups, some duplicates, nearly
/// unique.
const KEY_DOMAINS: [u32; 4] = [1, 3, 1000, 65536];
/// Key field positions every key kind is tried at.
const POSITIONS: [KeyPosition; 3] = [KeyPosition::First, KeyPosition::Middle, KeyPosition::Last];

/// Key configurations: three kinds at three positions, the whole tuple, and integer keys
/// wrapping from a middle field round through the tag word.
fn key_configs() -> Vec<(KeyKind, KeyPosition)> {
    let mut v = vec![];
    for kind in [KeyKind::Unsigned, KeyKind::Signed, KeyKind::Float] {
        for pos in POSITIONS {
            v.push((kind, pos));
        }
    }
    v.push((KeyKind::WholeTuple, KeyPosition::First));
    v.push((KeyKind::Unsigned, KeyPosition::Wrapping));
    v.push((KeyKind::Signed, KeyPosition::Wrapping));
    v
}

/// A random key kind and position that fit an `n`-word tuple.
fn random_key(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> (KeyKind, KeyPosition, usize) {
    let mut kinds = vec![KeyKind::Unsigned, KeyKind::Signed, KeyKind::WholeTuple];
    if n >= 3 {
        kinds.push(KeyKind::Float);
    }
    let kind = *kinds.choose(rng).unwrap();
    let pos = *[
        KeyPosition::First,
        KeyPosition::Middle,
        KeyPosition::Last,
        KeyPosition::Wrapping,
    ]
    .choose(rng)
    .unwrap();
    let key_words = rng.gen_range(1..=4usize.min(n - 1));
    (kind, pos, key_words)
}

fn label(
    test: &str,
    seed: u64,
    case: usize,
    spec: &RelationSpec,
    s: &PipelineSettings,
    pacing: Pacing,
) -> String {
    format!(
        "{test} seed {seed:#x} case {case}: {spec:?} in={:?} pacing={pacing:?}",
        s.input
    )
}

/// One random case of a sweep: the stimulus for `spec`, a pacing drawn from `duties`, run
/// and checked against the model and the oracle; returns the run and the case's label.
fn run_case<T: SortPipelineTop>(
    h: &mut Harness<T>,
    rng: &mut ChaCha8Rng,
    test: &str,
    seed: u64,
    case: usize,
    spec: &RelationSpec,
    duties: &[f64],
) -> (PipelineRun, String) {
    let stim = generate(rng, spec);
    let pacing = random_pacing(rng, duties);
    let l = label(test, seed, case, spec, &stim.settings, pacing);
    (check_pipeline(h, &stim, pacing, &l), l)
}

/// Small pipeline: every key configuration against every null density and key domain,
/// both orders (alternating so each key configuration meets each order with each null
/// density and each domain), tuple lengths and sizes varying, random pacing.
#[test]
fn small_pipeline_key_sweep() {
    const SEED: u64 = 0x5EED_0001;
    let mut rng = seeded(SEED);
    let mut h = Harness::new(SmallSortPipeline::default());
    // Tuple lengths (words, tag included) the key cases rotate through: room for a
    // middle field, each side of the cells' memory sizes, up to the Small maximum.
    let lengths = [3usize, 4, 5, 8, 9, 12, 16, 17, 24, 33, 40, 65, 100, 128];
    let mut case = 0;
    for (kc, &(kind, position)) in key_configs().iter().enumerate() {
        for (ni, &null_density) in NULL_DENSITIES.iter().enumerate() {
            for (di, &key_domain) in KEY_DOMAINS.iter().enumerate() {
                let n = lengths[case % lengths.len()];
                let cap = capacity_tuples(&SMALL_CELL_ADDRESS_BITS, n);
                // Up to twice the capacity (block sort), bounded to keep cases short.
                let max_tuples = (2 * cap + 3).min(700 / n + 2);
                let spec = RelationSpec {
                    tuple_words: n,
                    kind,
                    position,
                    key_words: rng.gen_range(1..=4usize.min(n - 1)),
                    null_density,
                    key_domain,
                    tuples: rng.gen_range(0..=max_tuples),
                    descending: (kc + ni + di) % 2 == 1,
                    hint: rng.gen_bool(0.5),
                };
                run_case(
                    &mut h,
                    &mut rng,
                    "small_pipeline_key_sweep",
                    SEED,
                    case,
                    &spec,
                    &DUTIES,
                );
                case += 1;
            }
        }
    }
    assert_eq!(case, 12 * 3 * 4);
}

/// Small pipeline: every tuple length from the minimum to the maximum (128 words), each
/// with the boundary sizes 0, 1, 2, a non-power of two below the capacity, exactly the
/// capacity, one above it, and several blocks; other parameters random.
#[test]
fn small_pipeline_length_and_size_sweep() {
    const SEED: u64 = 0x5EED_0002;
    let mut rng = seeded(SEED);
    let mut h = Harness::new(SmallSortPipeline::default());
    let lengths = [2usize, 3, 4, 8, 9, 16, 17, 32, 33, 64, 65, 127, 128];
    let mut case = 0;
    for &n in &lengths {
        let cap = capacity_tuples(&SMALL_CELL_ADDRESS_BITS, n);
        // 2^(cells whose memories hold one tuple): the Small sorter's cells have memories
        // of 2^a words, a in SMALL_CELL_ADDRESS_BITS.
        let active = SMALL_CELL_ADDRESS_BITS
            .iter()
            .filter(|&&a| n <= 1 << a)
            .count();
        assert_eq!(cap, 1 << active, "Small capacity for {n} words");
        let non_pow2 = if cap > 4 {
            cap - 1 - rng.gen_range(0..cap / 4)
        } else {
            3
        };
        for tuples in [
            0,
            1,
            2,
            non_pow2,
            cap,
            cap + 1,
            3 * cap + rng.gen_range(1..cap.max(2)),
        ] {
            let (kind, position, key_words) = random_key(&mut rng, n);
            let spec = RelationSpec {
                tuple_words: n,
                kind,
                position,
                key_words,
                null_density: *NULL_DENSITIES.choose(&mut rng).unwrap(),
                key_domain: *KEY_DOMAINS.choose(&mut rng).unwrap(),
                tuples,
                descending: rng.gen(),
                hint: rng.gen_bool(0.5),
            };
            let (run, l) = run_case(
                &mut h,
                &mut rng,
                "small_pipeline_length_and_size_sweep",
                SEED,
                case,
                &spec,
                &DUTIES,
            );
            if tuples > cap {
                // The block sort: the sorter's strings are the capacity.
                assert_eq!(run.status.capacity_tuples, cap, "{l}");
            }
            case += 1;
        }
    }
}

/// Small pipeline, settings off the main path: sorting disabled (tuples pass in input
/// order; the checker still drives DP and counts the violations, so `sort_error` is set
/// without any capacity overflow), and a size hint below the relation's size (fewer cells
/// sort, the strings shorten accordingly).
#[test]
fn small_pipeline_sort_disabled_and_short_hint() {
    const SEED: u64 = 0x5EED_0003;
    let mut rng = seeded(SEED);
    let mut h = Harness::new(SmallSortPipeline::default());
    for case in 0..12 {
        let n = [2usize, 5, 9, 20][case % 4];
        let (kind, position, key_words) = random_key(&mut rng, n);
        let spec = RelationSpec {
            tuple_words: n,
            kind,
            position,
            key_words,
            null_density: NULL_DENSITIES[case % 3],
            key_domain: KEY_DOMAINS[case % 4],
            tuples: rng.gen_range(5..60),
            descending: case % 2 == 1,
            hint: true,
        };
        let mut stim = generate(&mut rng, &spec);
        if case < 6 {
            stim.settings.sort_enable = false;
        } else {
            stim.settings.tuples_hint = rng.gen_range(1..spec.tuples);
        }
        let pacing = random_pacing(&mut rng, &DUTIES);
        let l = label(
            "small_pipeline_sort_disabled_and_short_hint",
            SEED,
            case,
            &spec,
            &stim.settings,
            pacing,
        );
        let run = check_pipeline(&mut h, &stim, pacing, &l);
        if !stim.settings.sort_enable {
            assert_eq!(run.status.capacity_tuples, 1, "{l}: every cell passes");
        }
    }
}

/// The status lines are live, so "no error" above means something: a word with bad
/// parity sets `parity_error`, a `last` on the wrong word or an NL/DP line driven by the
/// HM sets `framing_error` (each alone); the tuples still leave as the model says (framed
/// by the configured length, parity regenerated); the flags stay set (sticky) until the
/// next `run_pipeline` clears them, and a clean relation then leaves no flag.
#[test]
fn small_pipeline_status_flags_are_live() {
    const SEED: u64 = 0x5EED_0006;
    let mut rng = seeded(SEED);
    let mut h = Harness::new(SmallSortPipeline::default());
    let spec = RelationSpec {
        tuple_words: 5,
        kind: KeyKind::Signed,
        position: KeyPosition::Middle,
        key_words: 2,
        null_density: 0.1,
        key_domain: 1000,
        tuples: 20,
        descending: false,
        hint: true,
    };
    let stim = generate(&mut rng, &spec);
    let model = model_output::<SmallSortPipeline>(&stim.settings, &stim.tuples);
    // (fault, beat index, parity_error expected, framing_error expected)
    let faults: [(&str, usize, bool, bool); 4] = [
        ("bad parity on the high byte", 7, true, false),
        ("bad parity on the low byte", 0, true, false),
        ("last on the third word of a tuple", 12, false, true),
        ("NL driven by the HM", 3, false, true),
    ];
    for (case, (fault, at, parity, framing)) in faults.into_iter().enumerate() {
        let l = format!("small_pipeline_status_flags_are_live seed {SEED:#x} case {case}: {fault}");
        check_pipeline(
            &mut h,
            &stim,
            Pacing::FULL_RATE,
            &format!("{l} (clean run before)"),
        );
        let mut beats = compact_beats(&stim.tuples);
        match case {
            0 => beats[at].parity ^= 2,
            1 => beats[at].parity ^= 1,
            2 => beats[at].last = true,
            _ => beats[at].null = true,
        }
        let pacing = random_pacing(&mut rng, &DUTIES);
        let run = h.run_stream(&beats, pacing, 100_000);
        let out = from_beats(&run.output, spec.tuple_words)
            .unwrap_or_else(|e| panic!("{l}: output framing {e:?}"));
        assert_same_tuples(&out, &model.tuples, &format!("{l}: output"));
        for _ in 0..3 {
            h.cycle();
            let st = h.uut.status();
            assert_eq!(
                (st.parity_error, st.framing_error),
                (parity, framing),
                "{l}: flags (sticky): {st:?}"
            );
        }
    }
    check_pipeline(
        &mut h,
        &stim,
        Pacing::FULL_RATE,
        "status flags: clean run after the faults",
    );
}

/// Delta pipeline: the paper's tuple lengths, 4 bytes (tag + one 2-byte field) to 4094
/// bytes (2047 words), on each side of every cell memory size; sizes 0, 1, 2 and non-powers
/// of two; key kind, position, nulls, duplicates, order and pacing random per case.
#[test]
fn delta_pipeline_length_sweep() {
    const SEED: u64 = 0x5EED_0004;
    let mut rng = seeded(SEED);
    let mut h = Harness::new(DeltaSortPipeline::default());
    // (words incl. tag, sizes): bytes 4, 16, 18, 34, 130, 1026, 4094.
    let plan: [(usize, &[usize]); 7] = [
        (2, &[0, 1, 2, 37]),
        (8, &[3, 100]),
        (9, &[1, 130]),
        (17, &[2, 61]),
        (65, &[0, 33]),
        (513, &[1, 5]),
        (2047, &[1, 2]),
    ];
    let mut case = 0;
    for (n, sizes) in plan {
        let cap = capacity_tuples(&DELTA_CELL_ADDRESS_BITS, n);
        let bytes = 2 * n;
        let paper = paper_capacity_bytes(bytes);
        assert!(
            cap * bytes <= paper && 2 * cap * bytes > paper,
            "Delta capacity for {bytes} B: {cap} tuples"
        );
        for &tuples in sizes {
            let (kind, position, key_words) = random_key(&mut rng, n);
            let spec = RelationSpec {
                tuple_words: n,
                kind,
                position,
                key_words,
                null_density: *NULL_DENSITIES.choose(&mut rng).unwrap(),
                key_domain: *KEY_DOMAINS.choose(&mut rng).unwrap(),
                tuples,
                descending: rng.gen(),
                // Without the hint every active cell holds the whole relation once: only
                // for the short relations.
                hint: tuples * n > 600 || rng.gen_bool(0.5),
            };
            run_case(
                &mut h,
                &mut rng,
                "delta_pipeline_length_sweep",
                SEED,
                case,
                &spec,
                &DELTA_DUTIES,
            );
            case += 1;
        }
    }
}

/// Delta pipeline at its capacity with the cheapest tuples (4 bytes: 4096 tuples = 8192
/// words): exactly the capacity (one full string) and one tuple more (a full block and a
/// block of one), random pacing.
#[test]
fn delta_pipeline_capacity_boundary() {
    const SEED: u64 = 0x5EED_0005;
    let mut rng = seeded(SEED);
    let mut h = Harness::new(DeltaSortPipeline::default());
    let n = 2;
    let cap = capacity_tuples(&DELTA_CELL_ADDRESS_BITS, n);
    assert_eq!(cap, 4096);
    for (case, tuples) in [cap, cap + 1].into_iter().enumerate() {
        let spec = RelationSpec {
            tuple_words: n,
            kind: [KeyKind::Signed, KeyKind::Unsigned][case],
            position: KeyPosition::First,
            key_words: 1,
            null_density: [0.1, 0.0][case],
            key_domain: [1000, 65536][case],
            tuples,
            descending: case == 0,
            hint: true,
        };
        let (run, l) = run_case(
            &mut h,
            &mut rng,
            "delta_pipeline_capacity_boundary",
            SEED,
            case,
            &spec,
            &DELTA_DUTIES,
        );
        assert_eq!(run.status.capacity_tuples, cap, "{l}");
    }
}
