//! Testbench: the Delta sorter (12 sorting cells, paper §4.2) at its capacity.
//!
//! The paper: "As the last cell has two 32Kbyte memories, our sorter creates 4096 sorted
//! tuples when the tuple length is not greater than 16 bytes", cells run in pass mode
//! "when the tuple length is greater than 16 bytes", and the capacity is
//! C = min(4096·L, 64 KB) (§6). Cell i has two memories of 2^(i-1) × 16 bytes; a cell
//! whose memory cannot hold one tuple passes, so each doubling of the tuple length past
//! 16 bytes halves the number of tuples per sorted string.
//!
//! Parameters swept:
//! * tuple length L (bytes; the sorter counts words, L = 2·words): 2 (a single word), 4,
//!   16, 18, 32, 34, 128, 130, 1024, 1026, 4094 for the capacity port; full sorts of
//!   exactly C tuples for 2 B (C = 4096), 16 B (C = 4096, the paper's full capacity,
//!   32 KB: the one expensive run), 1024 B (C = 64, 6 of 12 cells in pass mode) and
//!   4094 B (C = 16, 8 cells in pass mode);
//! * key length: short keys with nulls and duplicates, and long keys (up to the whole
//!   tuple) whose words are equal for a long prefix, so the cells compare deep into the
//!   tuple before deciding;
//! * order: ascending and descending; the size hint: given and unknown (0); sort enable.
//!
//! Oracle: `rdbe_testbench::oracle_sort` (a plain stable sort, nulls last), and the
//! crate's `sorter::model::block_sort`; the capacity from the paper's memory sizes.
use rand::Rng;
use rdbe_rtl::harness::{random_relation, Harness, Pacing, RelationShape};
use rdbe_rtl::sorter::model::block_sort;
use rdbe_rtl::sorter::{capacity_tuples, DeltaSorter, SortSettings, DELTA_CELL_ADDRESS_BITS};
use rdbe_rtl::tuple_stream::{from_beats, to_beats, StreamTuple};
use rdbe_testbench::*;

/// Words in each memory of paper cell i (1-based): 2^(i-1) × 16 bytes.
fn paper_cell_memory_words(i: usize) -> usize {
    (1 << (i - 1)) * 16 / 2
}

/// Tuples per sorted string for tuples of `words` words: 2^(cells whose memory holds a
/// tuple), from the paper's memory sizes.
fn paper_strings(words: usize) -> usize {
    1 << (1..=12)
        .filter(|&i| paper_cell_memory_words(i) >= words)
        .count()
}

fn settings(
    tuple_words: usize,
    key_words: usize,
    descending: bool,
    tuples_hint: usize,
) -> SortSettings {
    SortSettings {
        tuple_words,
        key_words,
        descending,
        sort_enable: true,
        tuples_hint,
    }
}

/// `capacity_tuples` as the sorter reports it for these settings (no stream needed: it
/// is the chain of the cells' combinational `run_out`).
fn capacity_port(h: &mut Harness<DeltaSorter>, s: &SortSettings) -> usize {
    h.uut.apply(s);
    // Every cell registers the string length it passes on: the port settles one clock
    // per cell after the settings change.
    for _ in 0..DELTA_CELL_ADDRESS_BITS.len() {
        h.cycle();
    }
    h.uut.capacity_tuples.val().index()
}

#[test]
fn capacity_port_follows_the_paper_for_every_tuple_length() {
    let mut h = Harness::new(DeltaSorter::default());
    // (tuple bytes, tuples per string): from the formula, written out.
    let table = [
        (2usize, 4096usize),
        (4, 4096),
        (16, 4096),
        (18, 2048),
        (32, 2048),
        (34, 1024),
        (128, 512),
        (130, 256),
        (1024, 64),
        (1026, 32),
        (4094, 16),
    ];
    for (bytes, want) in table {
        let words = bytes / 2;
        let c = capacity_port(&mut h, &settings(words, 1, false, 0));
        assert_eq!(c, want, "capacity_tuples for {bytes}-byte tuples");
        assert_eq!(
            c,
            paper_strings(words),
            "2^(active cells) for {bytes}-byte tuples"
        );
        assert_eq!(
            c,
            capacity_tuples(&DELTA_CELL_ADDRESS_BITS, words),
            "crate's capacity_tuples, {bytes} B"
        );
        let paper = paper_capacity_bytes(bytes);
        assert!(
            c * bytes <= paper && 2 * c * bytes > paper,
            "{bytes} B: C·L = {} vs paper min(4096·L, 64 KB) = {paper}",
            c * bytes
        );
        // The order does not change the capacity; sorting disabled passes in every cell.
        assert_eq!(
            capacity_port(&mut h, &settings(words, 1, true, 0)),
            want,
            "{bytes} B descending"
        );
        let off = SortSettings {
            sort_enable: false,
            ..settings(words, 1, false, 0)
        };
        assert_eq!(
            capacity_port(&mut h, &off),
            1,
            "{bytes} B with sorting disabled"
        );
        // A size hint stops the chain once the strings cover the relation.
        for hint in [1usize, 2, 3, 100, 4096, 65535] {
            let want_hint = (1..=12)
                .filter(|&i| paper_cell_memory_words(i) >= words)
                .fold(1usize, |run, _| if run < hint { run * 2 } else { run });
            assert_eq!(
                capacity_port(&mut h, &settings(words, 1, false, hint)),
                want_hint,
                "{bytes} B, hint {hint}"
            );
        }
    }
}

/// Sort `input` in a fresh Delta sorter and check it against the oracles: one sorted
/// string of exactly the capacity.
fn sort_exactly_capacity(label: &str, s: &SortSettings, input: &[StreamTuple], pacing: Pacing) {
    let cap = paper_strings(s.tuple_words);
    assert_eq!(
        input.len(),
        cap,
        "{label}: the relation is exactly the capacity"
    );
    let mut h = Harness::new(DeltaSorter::default());
    h.uut.apply(s);
    // The sorter's contract (`apply`): the first beat follows the settings by a cycle, in
    // which each cell registers its pass decision (cell 1 passes 1,024-byte tuples).
    h.cycle();
    let beats = to_beats(input);
    let run = h.run_stream(&beats, pacing, 40 * beats.len() as u64 + 10_000);
    assert_eq!(
        h.uut.capacity_tuples.val().index(),
        cap,
        "{label}: capacity_tuples"
    );
    let out =
        from_beats(&run.output, s.tuple_words).unwrap_or_else(|e| panic!("{label}: framing {e:?}"));
    let want = oracle_sort(cap, s.key_words, s.descending, input);
    assert_same_tuples(
        &out,
        &want,
        &format!("{label}: RTL vs oracle (one sorted string)"),
    );
    assert_eq!(
        out,
        block_sort(cap, s, input),
        "{label}: RTL vs block_sort model"
    );
    assert_eq!(
        oracle_violations(&out, s.key_words, s.descending),
        0,
        "{label}: fully sorted"
    );
    println!(
        "{label}: {} tuples × {} words in {} cycles",
        cap, s.tuple_words, run.cycles
    );
}

/// Tuples whose keys (the first `key_words` words) share one long prefix and differ
/// only at a few positions (`diverge`), so a comparison runs deep into the tuple; a few
/// keys are null; the rest of each tuple is random (visible stability).
fn deep_key_relation(
    rng: &mut rand_chacha::ChaCha8Rng,
    tuples: usize,
    words: usize,
    key_words: usize,
    diverge: &[usize],
) -> Vec<StreamTuple> {
    let prefix: Vec<u16> = (0..key_words).map(|_| rng.gen()).collect();
    (0..tuples)
        .map(|_| {
            let mut w: Vec<u16> = (0..words).map(|_| rng.gen()).collect();
            w[..key_words].copy_from_slice(&prefix);
            // Most tuples differ at one chosen position (domain of 3 values there), some
            // keep the common key (duplicates).
            if rng.gen_bool(0.8) {
                let at = diverge[rng.gen_range(0..diverge.len())];
                w[at] = prefix[at].wrapping_add(rng.gen_range(0..3u16).wrapping_sub(1));
            }
            StreamTuple::new(w, rng.gen_bool(0.1))
        })
        .collect()
}

/// The paper's full capacity: 4096 tuples of 16 bytes (8 words), 64 KB in the last cell's
/// two memories. Descending, a 3-word key with duplicates and nulls, size hint given,
/// mildly paced output.
#[test]
fn full_capacity_4096_tuples_of_16_bytes() {
    const SEED: u64 = 0xCA9_0016;
    let mut rng = seeded(SEED);
    let shape = RelationShape {
        tuples: 4096,
        tuple_words: 8,
        key_words: 3,
        null_probability: 0.05,
        key_domain: 40,
    };
    let input = random_relation(&mut rng, shape);
    let s = settings(8, 3, true, 4096);
    let pacing = Pacing {
        source_duty: 1.0,
        sink_duty: 0.95,
        seed: SEED,
    };
    sort_exactly_capacity(&format!("seed {SEED:#x} 16 B"), &s, &input, pacing);
}

/// 2-byte tuples (one word: the whole tuple is the key): C = 4096 as for 16 bytes (every
/// cell sorts), but only 8 KB; no size hint.
#[test]
fn exactly_capacity_2_byte_tuples() {
    const SEED: u64 = 0xCA9_0002;
    let mut rng = seeded(SEED);
    let shape = RelationShape {
        tuples: 4096,
        tuple_words: 1,
        key_words: 1,
        null_probability: 0.1,
        key_domain: 65536,
    };
    let input = random_relation(&mut rng, shape);
    sort_exactly_capacity(
        &format!("seed {SEED:#x} 2 B"),
        &settings(1, 1, false, 0),
        &input,
        Pacing::FULL_RATE,
    );
}

/// 1024-byte tuples (512 words): cells 1–6 pass, C = 64. The key is the whole tuple and
/// keys differ only at word 0, 1, 255, 510 or 511.
#[test]
fn exactly_capacity_1024_byte_tuples() {
    const SEED: u64 = 0xCA9_1024;
    let mut rng = seeded(SEED);
    let input = deep_key_relation(&mut rng, 64, 512, 512, &[0, 1, 255, 510, 511]);
    let s = settings(512, 512, false, 64);
    sort_exactly_capacity(
        &format!("seed {SEED:#x} 1024 B"),
        &s,
        &input,
        Pacing::FULL_RATE,
    );
}

/// The longest tuples, 4094 bytes (2047 words): cells 1–8 pass, C = 16. A 2000-word key
/// whose words differ only at word 0, 1000 or 1999; descending; random pacing.
#[test]
fn exactly_capacity_4094_byte_tuples() {
    const SEED: u64 = 0xCA9_4094;
    let mut rng = seeded(SEED);
    let input = deep_key_relation(&mut rng, 16, 2047, 2000, &[0, 1000, 1999]);
    let s = settings(2047, 2000, true, 16);
    let pacing = Pacing {
        source_duty: 0.9,
        sink_duty: 0.9,
        seed: SEED,
    };
    sort_exactly_capacity(&format!("seed {SEED:#x} 4094 B"), &s, &input, pacing);
}
