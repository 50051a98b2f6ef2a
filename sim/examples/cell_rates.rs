//! Input and output rates of the Delta sorter's first cells, each alone at full rate, in
//! the read mode the Delta sorter gives it (cell 1 reads in one cycle, cells 2 to 12 in
//! two, [rdbe_rtl::sorter::DELTA_TWO_CYCLE_READ_FROM]): `cargo run --release -p rdbe-sim
//! --example cell_rates [random|ascending|descending]`. 16-byte tuples, the whole tuple as
//! key, random 16-bit words, in random order or already sorted either way (ascending: the
//! earlier of two strings always wins; descending: the later one always does); cycles
//! from the first to the last data word accepted (in) and leaving (out), over the words. docs/PERFORMANCE.md ("The sorter's two streams") explains what the figures show.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rdbe_rtl::harness::{random_relation, Harness, Pacing, RelationShape};
use rdbe_rtl::sorter::DELTA_TWO_CYCLE_READ_FROM;
use rdbe_rtl::sorting_cell::model::sorting_cell_model;
use rdbe_rtl::sorting_cell::SortingCell;
use rdbe_rtl::tuple_stream::{from_beats, to_beats};

fn cell<const A: usize, const P: usize>(
    number: usize,
    tuples: usize,
    order: &str,
) -> anyhow::Result<()> {
    let run_in = 1usize << (number - 1);
    let two_cycle = A >= DELTA_TWO_CYCLE_READ_FROM;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let shape = RelationShape {
        tuples,
        tuple_words: 8,
        key_words: 8,
        null_probability: 0.0,
        key_domain: 1 << 16,
    };
    let mut input = random_relation(&mut rng, shape);
    match order {
        "random" => {}
        "ascending" => input.sort_by(|a, b| a.words.cmp(&b.words)),
        "descending" => input.sort_by(|a, b| b.words.cmp(&a.words)),
        other => anyhow::bail!("order must be random, ascending or descending, not {other:?}"),
    }
    let mut h = Harness::new(SortingCell::<A, P>::new(two_cycle));
    h.uut.tuple_words.next = 8.into();
    h.uut.key_words.next = 8.into();
    h.uut.descending.next = false;
    h.uut.sort_enable.next = true;
    h.uut.run_in.next = (run_in as u64).into();
    let run = h.run_stream(&to_beats(&input), Pacing::FULL_RATE, 100 * tuples as u64);
    let out = from_beats(&run.output, 8).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    anyhow::ensure!(out == sorting_cell_model(&input, run_in, 8, false));
    let words = (tuples * 8) as f64;
    // The last beat each way is the end-of-stream beat.
    let span = |cycles: &[u64]| (cycles[cycles.len() - 2] - cycles[0] + 1) as f64 / words;
    println!(
        "cell {number:2} (2^{A} words a memory, strings of {run_in:3}, {} read): \
         in {:.4}, out {:.4} cycles a word",
        if two_cycle { "two-cycle" } else { "one-cycle" },
        span(&run.input_cycles),
        span(&run.output_cycles)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let order = std::env::args().nth(1).unwrap_or_else(|| "random".into());
    cell::<3, 4>(1, 2048, &order)?;
    cell::<4, 5>(2, 2048, &order)?;
    cell::<5, 6>(3, 2048, &order)?;
    cell::<6, 7>(4, 2048, &order)?;
    cell::<7, 8>(5, 2048, &order)?;
    cell::<8, 9>(6, 2048, &order)?;
    Ok(())
}
