//! Input and output rates of the Delta sorter's first seven cells, each alone at full rate,
//! in the read mode the Delta sorter gives it (cell 1 reads in one cycle, cells 2 to 12 in
//! two, [rdbe_rtl::sorter::DELTA_TWO_CYCLE_READ_FROM]), with memories of one string and
//! with the spare memory the Delta sorter gives it ([DELTA_SPARE_MEMORY]): `cargo run
//! --release -p rdbe-sim --example cell_rates [random|ascending|descending]`. 16-byte
//! tuples, the whole tuple as key, random 16-bit words, in random order or already sorted
//! either way (ascending: the earlier of two strings always wins; descending: the later one
//! always does); cycles from the first to the last data word accepted (in) and leaving
//! (out), over the words. docs/PERFORMANCE.md ("The sorter's two streams", "Spare memory")
//! explains what the figures show.
use rdbe_rtl::sorter::{DELTA_SPARE_MEMORY, DELTA_TWO_CYCLE_READ_FROM};
use rdbe_rtl::sorting_cell::SortingCell;
use rdbe_sim::bench::{cell_stream_rates, random_16_byte_tuples};

/// Cell `number` of the Delta sorter with memories of 2^A words, `spare` of whose address
/// bits are spare (it sorts strings of 2^(A − spare) words).
fn cell<const A: usize, const P: usize>(
    number: usize,
    spare: usize,
    input: &[rdbe_rtl::tuple_stream::StreamTuple],
) -> anyhow::Result<()> {
    let run_in = 1usize << (number - 1);
    let two_cycle = A - spare >= DELTA_TWO_CYCLE_READ_FROM;
    let (word_in, word_out) = cell_stream_rates(
        SortingCell::<A, P>::new(two_cycle).with_spare_memory(spare),
        run_in,
        input,
    )?;
    println!(
        "cell {number:2} (2^{A} words a memory, strings of {run_in:3} tuples, {} read): \
         in {word_in:.4}, out {word_out:.4} cycles a word",
        if two_cycle { "two-cycle" } else { "one-cycle" },
    );
    Ok(())
}

/// Cell `number` with memories of one string (2^A words), then as the Delta sorter builds
/// it (2^(A + spare)).
macro_rules! both {
    ($number:expr, $a:literal, $input:expr) => {
        cell::<$a, { $a + 1 }>($number, 0, $input)?;
        match DELTA_SPARE_MEMORY[$number - 1] {
            0 => {}
            1 => cell::<{ $a + 1 }, { $a + 2 }>($number, 1, $input)?,
            other => anyhow::bail!("cell {}: {other} spare bits not built here", $number),
        }
    };
}

fn main() -> anyhow::Result<()> {
    let order = std::env::args().nth(1).unwrap_or_else(|| "random".into());
    let mut input = random_16_byte_tuples(2048, 1);
    match order.as_str() {
        "random" => {}
        "ascending" => input.sort_by(|a, b| a.words.cmp(&b.words)),
        "descending" => input.sort_by(|a, b| b.words.cmp(&a.words)),
        other => anyhow::bail!("order must be random, ascending or descending, not {other:?}"),
    }
    both!(1, 3, &input);
    both!(2, 4, &input);
    both!(3, 5, &input);
    both!(4, 6, &input);
    both!(5, 7, &input);
    both!(6, 8, &input);
    both!(7, 9, &input);
    Ok(())
}
