//! Input and output rates of the Delta sorter's first cells, each alone at full rate, in
//! the read mode the Delta sorter gives it (cell 1 reads in one cycle, cells 2 to 12 in
//! two, [rdbe_rtl::sorter::DELTA_TWO_CYCLE_READ_FROM]): `cargo run --release -p rdbe-sim
//! --example cell_rates [random|ascending|descending]`. 16-byte tuples, the whole tuple as
//! key, random 16-bit words, in random order or already sorted either way (ascending: the
//! earlier of two strings always wins; descending: the later one always does); cycles
//! from the first to the last data word accepted (in) and leaving (out), over the words.
//! docs/PERFORMANCE.md ("The sorter's two streams") explains what the figures show.
use rdbe_rtl::sorter::DELTA_TWO_CYCLE_READ_FROM;
use rdbe_rtl::sorting_cell::SortingCell;
use rdbe_sim::bench::{cell_stream_rates, random_16_byte_tuples};

fn cell<const A: usize, const P: usize>(
    number: usize,
    tuples: usize,
    order: &str,
) -> anyhow::Result<()> {
    let run_in = 1usize << (number - 1);
    let two_cycle = A >= DELTA_TWO_CYCLE_READ_FROM;
    let mut input = random_16_byte_tuples(tuples, 1);
    match order {
        "random" => {}
        "ascending" => input.sort_by(|a, b| a.words.cmp(&b.words)),
        "descending" => input.sort_by(|a, b| b.words.cmp(&a.words)),
        other => anyhow::bail!("order must be random, ascending or descending, not {other:?}"),
    }
    let (word_in, word_out) =
        cell_stream_rates(SortingCell::<A, P>::new(two_cycle), run_in, &input)?;
    println!(
        "cell {number:2} (2^{A} words a memory, strings of {run_in:3}, {} read): \
         in {word_in:.4}, out {word_out:.4} cycles a word",
        if two_cycle { "two-cycle" } else { "one-cycle" },
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
