//! Sorter (paper §4.2, Fig. 4): a chain of sorting cells, cell *i* doubling the length of
//! the sorted strings it receives.
//!
//! The paper's sorter has 12 cells; the last has two 32 KB memories and so "creates 4096
//! sorted tuples when the tuple length is not greater than 16 bytes"; its effective
//! capacity is C = min(4096·L, 64 KB) (§6). Cells whose memories cannot hold one tuple run
//! in pass mode, so for longer tuples fewer cells sort and C stays near 64 KB.
//!
//! Two configurations are built from the same cell:
//! * [DeltaSorter]: the paper's 12 cells, cell *i* with two memories of 2^(i-1) × 16 bytes
//!   (8 words for cell 1 … 16384 words = 32 KB for cell 12).
//! * [SmallSorter]: 5 cells with memories of 8 … 128 words, for an iCE40 HX8K; capacity 32
//!   tuples of up to 16 bytes (512 bytes), fewer for longer tuples (see [capacity_tuples]);
//!   tuples longer than 128 words pass unsorted. On iCE40 every memory of up to 256 × 16
//!   bits costs whole block RAMs, so cell 1's 8-word memories are built from logic and the
//!   other four cells take 16 of the part's 32 block RAMs (see docs/ARCHITECTURE.md).
//!
//! Each cell works out its own mode from the tuple length, and passes the length of the
//! strings it emits to the next cell (`run_out` → `run_in`, registered in each cell so the
//! chain is no combinational path: cell *k* has it *k* cycles after the settings change,
//! before any beat can reach it); the first cell receives strings of one tuple. A relation larger than the capacity comes out as consecutive sorted
//! strings of `capacity_tuples` tuples each: the block sort that external sort (§6 cases 2
//! and 3) starts from.
use crate::sorting_cell::{SortingCell, REGISTERED_READ_MIN_ADDRESS_BITS};
use crate::tuple_stream::{TupleStreamIn, TupleStreamOut};
use rust_hdl::prelude::*;

/// Address bits (log2 of words per memory) of each cell, first to last.
pub const DELTA_CELL_ADDRESS_BITS: [usize; 12] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
/// The Delta sorter's cells of 2^4 words or more (cells 2 to 12) read in two cycles
/// ([crate::head_reader::HeadReader]); cell 1's 8-word memories live in logic. The iCE40
/// sorters follow [REGISTERED_READ_MIN_ADDRESS_BITS] (all their cells read in one cycle).
/// Why the Delta sorter differs: on the ECP5 a one-cycle cell's memory → `HeadMoves` →
/// `pop` → read address was the core's critical path (cell 5, 16.7 ns, session 21).
pub const DELTA_TWO_CYCLE_READ_FROM: usize = 4;
/// Spare address bits of the Delta sorter's cells, first to last
/// ([SortingCell::with_spare_memory], issue 6): cells 2 to 7 have memories of twice the
/// words they sort with, so none waits for room for a pair's strings while the pair before
/// leaves (each cell then takes a word every cycle: the sorter's input went from 1.081
/// cycles a word to 1.00x, docs/PERFORMANCE.md, "Spare memory"). On the ECP5 the doubled
/// memories cost no block RAM: 18-bit words of cells 4 to 7 take one block either way
/// (512 × 36 or 1,024 × 18), and cells 2 and 3's are LUT RAM. Cell 1 runs at one word a
/// cycle without (its write choice); from cell 8 on a doubled memory takes twice the blocks
/// (the core uses 202 of the part's 208) for under 0.1 % of a word each.
pub const DELTA_SPARE_MEMORY: [usize; 12] = [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0];
/// The Delta sorter's memories of up to 2^this words ask for LUT RAM
/// ([SortingCell::with_lut_ram]): cells 2 and 3, of 32 and 64 words with their spare
/// memory. Cell 1's 8-word memories are flip-flops ([crate::block_ram::LOGIC_RAM_MAX_ADDRESS_BITS]).
pub const DELTA_LUT_RAM_MAX_ADDRESS_BITS: usize = 6;
/// Address bits of the cells of the iCE40-sized sorter.
pub const SMALL_CELL_ADDRESS_BITS: [usize; 5] = [3, 4, 5, 6, 7];
/// Address bits of the cells of the tiny sorter (the iCEBreaker's self check,
/// `docs/SELF_CHECK.md`): three cells of 16, 32 and 64 words per memory. It starts at 16
/// words, not 8, because on iCE40 an 8-word memory is built from flip-flops (the small
/// sorter's cell 1: about 530 flip-flops) while 16 to 256 words cost the same two block RAMs
/// per memory; three cells (12 block RAMs) leave the UP5K's logic cells room for the
/// merger and the self check. Capacity: 8 tuples of up to 16 words (32 bytes).
pub const TINY_CELL_ADDRESS_BITS: [usize; 3] = [4, 5, 6];

/// Builds a sorter type from a list of cells: `field: address_bits`, in chain order, where
/// `address_bits + spare` gives a cell memories of 2^(address_bits + spare) words that sort
/// as 2^address_bits ([SortingCell::with_spare_memory]).
macro_rules! define_sorter {
    ($(#[$meta:meta])* $name:ident, $first:ident : $first_bits:literal,
     [$($cell:ident <- $prev:ident : $bits:literal $(+ $spare:literal)?),*], last = $last:ident,
     two_cycle_read_from = $two_cycle:expr, write_choice = $write_choice:expr,
     lut_ram_max_bits = $lut_ram:expr) => {
        $(#[$meta])*
        #[derive(LogicBlock)]
        pub struct $name {
            pub clock: Signal<In, Clock>,
            pub data_in: TupleStreamIn,
            pub data_out: TupleStreamOut,
            /// Words per tuple (static while a stream flows).
            pub tuple_words: Signal<In, Bits<12>>,
            /// Key length in words from the head of the tuple.
            pub key_words: Signal<In, Bits<12>>,
            pub descending: Signal<In, Bit>,
            /// Low: every cell passes and the relation leaves in input order.
            pub sort_enable: Signal<In, Bit>,
            /// Tuples in the relation, when known (0: unknown); cells not needed for a
            /// relation this small pass (see [SortingCell]'s `run_limit`).
            pub tuples_hint: Signal<In, Bits<16>>,
            /// Tuples per sorted string at the output: the capacity for this tuple length
            /// (2^(cells that sort)).
            pub capacity_tuples: Signal<Out, Bits<16>>,
            $first: SortingCell<$first_bits, { $first_bits + 1 }>,
            $($cell: SortingCell<{ $bits $(+ $spare)? }, { $bits $(+ $spare)? + 1 }>,)*
        }

        // (`bits + spare <= lut_ram_max_bits` reads as the macro's table does.)
        #[allow(clippy::int_plus_one)]
        impl Default for $name {
            /// Cells of 2^`two_cycle_read_from` words or more read in two cycles.
            fn default() -> Self {
                Self {
                    clock: Default::default(),
                    data_in: Default::default(),
                    data_out: Default::default(),
                    tuple_words: Default::default(),
                    key_words: Default::default(),
                    descending: Default::default(),
                    sort_enable: Default::default(),
                    tuples_hint: Default::default(),
                    capacity_tuples: Default::default(),
                    $first: SortingCell::with_write_choice($first_bits >= $two_cycle, $write_choice)
                        .with_lut_ram($first_bits <= $lut_ram),
                    $($cell: SortingCell::with_write_choice($bits >= $two_cycle, $write_choice)
                        .with_spare_memory(0 $(+ $spare)?)
                        .with_lut_ram($bits $(+ $spare)? <= $lut_ram),)*
                }
            }
        }

        impl Logic for $name {
            #[hdl_gen]
            fn update(&mut self) {
                clock!(self, clock, $first $(, $cell)*);
                self.$first.tuple_words.next = self.tuple_words.val();
                self.$first.key_words.next = self.key_words.val();
                self.$first.descending.next = self.descending.val();
                self.$first.sort_enable.next = self.sort_enable.val();
                self.$first.run_in.next = 1.into();
                self.$first.run_limit.next = self.tuples_hint.val();
                TupleStreamIn::link(&mut self.data_in, &mut self.$first.data_in);
                $(
                    self.$cell.tuple_words.next = self.tuple_words.val();
                    self.$cell.key_words.next = self.key_words.val();
                    self.$cell.descending.next = self.descending.val();
                    self.$cell.sort_enable.next = self.sort_enable.val();
                    self.$cell.run_in.next = self.$prev.run_out.val();
                    self.$cell.run_limit.next = self.tuples_hint.val();
                    TupleStreamOut::join(&mut self.$prev.data_out, &mut self.$cell.data_in);
                )*
                TupleStreamOut::link(&mut self.data_out, &mut self.$last.data_out);
                self.capacity_tuples.next = self.$last.run_out.val();
            }
        }

        crate::impl_stream_block!($name);

        impl crate::memory_fault::StoredWords for $name {
            /// Every cell's two FIFO memories, in chain order (`cell_01 memory A`, …).
            fn live_memories(&mut self) -> Vec<crate::memory_fault::LiveMemory<'_>> {
                let mut all = vec![];
                for (cell, memories) in [
                    (stringify!($first), self.$first.live_memories()),
                    $((stringify!($cell), self.$cell.live_memories()),)*
                ] {
                    for mut m in memories {
                        m.name = format!("{cell} {}", m.name);
                        all.push(m.within(cell));
                    }
                }
                all
            }
        }
    };
}

define_sorter!(
    /// The paper's sorter: 12 cells, capacity C = min(4096·L, 64 KB). Cells 2 to 7 have
    /// twice the memory they sort with ([DELTA_SPARE_MEMORY]).
    DeltaSorter,
    cell_01: 3,
    [
        cell_02 <- cell_01: 4 + 1,
        cell_03 <- cell_02: 5 + 1,
        cell_04 <- cell_03: 6 + 1,
        cell_05 <- cell_04: 7 + 1,
        cell_06 <- cell_05: 8 + 1,
        cell_07 <- cell_06: 9,
        cell_08 <- cell_07: 10,
        cell_09 <- cell_08: 11,
        cell_10 <- cell_09: 12,
        cell_11 <- cell_10: 13,
        cell_12 <- cell_11: 14
    ],
    last = cell_12,
    two_cycle_read_from = DELTA_TWO_CYCLE_READ_FROM,
    write_choice = true,
    // Cells 2 and 3's memories of 32 and 64 words (with their spare memory) in LUT RAM:
    // yosys gives a 64-word memory a whole block by itself, and the core uses 202 of the
    // ECP5-85's 208.
    lut_ram_max_bits = DELTA_LUT_RAM_MAX_ADDRESS_BITS
);

define_sorter!(
    /// The iCE40 HX8K sorter: 5 cells, 32 tuples of up to 16 bytes.
    SmallSorter,
    cell_01: 3,
    [
        cell_02 <- cell_01: 4,
        cell_03 <- cell_02: 5,
        cell_04 <- cell_03: 6,
        cell_05 <- cell_04: 7
    ],
    last = cell_05,
    two_cycle_read_from = REGISTERED_READ_MIN_ADDRESS_BITS,
    write_choice = true,
    // The iCE40 has no LUT RAM.
    lut_ram_max_bits = 0
);

define_sorter!(
    /// The iCEBreaker's (UP5K) sorter for the self check: 3 cells of 16 to 64 words, 8
    /// tuples of up to 32 bytes ([TINY_CELL_ADDRESS_BITS]).
    TinySorter,
    cell_01: 4,
    [
        cell_02 <- cell_01: 5,
        cell_03 <- cell_02: 6
    ],
    last = cell_03,
    two_cycle_read_from = REGISTERED_READ_MIN_ADDRESS_BITS,
    // With the cells' choice of memory for a pair's first string
    // (`SortingCell::with_write_choice`) the iCEBreaker's board took 4,858 of its 5,280
    // logic cells, over the 4,752 the CI allows; without it 4,712 (4,629 before the choice
    // was written). Its strings of 2 to 8 tuples lose little to the wait.
    write_choice = false,
    lut_ram_max_bits = 0
);

/// A cell sorts (rather than passes) when one tuple fits in one of its memories.
pub fn cell_active(cell_address_bits: usize, tuple_words: usize) -> bool {
    tuple_words <= 1 << cell_address_bits
}

/// Tuples per sorted string leaving a sorter built from `cells` (address bits per cell):
/// 2^(number of cells that sort).
pub fn capacity_tuples(cells: &[usize], tuple_words: usize) -> usize {
    1 << cells
        .iter()
        .filter(|&&a| cell_active(a, tuple_words))
        .count()
}

/// Static settings of a sort, shared by the RTL driver and the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortSettings {
    pub tuple_words: usize,
    pub key_words: usize,
    pub descending: bool,
    pub sort_enable: bool,
    /// Tuples in the relation if known, else 0. Values above 65535 mean unknown.
    pub tuples_hint: usize,
}

impl SortSettings {
    /// The `tuples_hint` port value.
    pub fn hint_port(&self) -> u64 {
        if self.tuples_hint > 0xffff {
            0
        } else {
            self.tuples_hint as u64
        }
    }
    /// Whether a cell with these address bits, receiving strings of `run` tuples, sorts.
    pub fn cell_sorts(&self, cell_address_bits: usize, run: usize) -> bool {
        let hint = self.hint_port() as usize;
        self.sort_enable
            && cell_active(cell_address_bits, self.tuple_words)
            && (hint == 0 || run < hint)
    }
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=2047).contains(&self.tuple_words),
            "tuple length {} words is outside 1..=2047 (2..=4094 bytes)",
            self.tuple_words
        );
        anyhow::ensure!(
            (1..=self.tuple_words).contains(&self.key_words),
            "key length {} words must be between 1 and the tuple length {}",
            self.key_words,
            self.tuple_words
        );
        Ok(())
    }
}

macro_rules! sorter_settings {
    ($name:ident) => {
        impl $name {
            /// Drive the static configuration inputs. A stream's first beat must follow them by
            /// at least one cycle: each cell registers its pass decision
            /// ([SortingCell]'s `pass_mode`); in the engine the IN module's output slice
            /// gives that cycle.
            pub fn apply(&mut self, s: &SortSettings) {
                self.tuple_words.next = (s.tuple_words as u64).into();
                self.key_words.next = (s.key_words as u64).into();
                self.descending.next = s.descending;
                self.sort_enable.next = s.sort_enable;
                self.tuples_hint.next = s.hint_port().into();
            }
        }
    };
}
sorter_settings!(DeltaSorter);
sorter_settings!(SmallSorter);
sorter_settings!(TinySorter);

/// Pure-Rust reference model of the sorter: the cell model applied cell by cell.
pub mod model {
    use super::SortSettings;
    use crate::sorting_cell::model::{sort_order, sorting_cell_model};
    use crate::tuple_stream::StreamTuple;

    pub fn sorter_model(
        cells: &[usize],
        s: &SortSettings,
        input: &[StreamTuple],
    ) -> Vec<StreamTuple> {
        let mut data = input.to_vec();
        let mut run = 1;
        for &bits in cells {
            if s.cell_sorts(bits, run) {
                data = sorting_cell_model(&data, run, s.key_words, s.descending);
                run *= 2;
            }
        }
        data
    }

    /// What the sorter must compute, stated directly: each block of `capacity` tuples
    /// stably sorted, normal keys before null keys.
    pub fn block_sort(
        capacity: usize,
        s: &SortSettings,
        input: &[StreamTuple],
    ) -> Vec<StreamTuple> {
        let mut out = Vec::with_capacity(input.len());
        for block in input.chunks(capacity.max(1)) {
            let mut b = block.to_vec();
            if s.sort_enable {
                b.sort_by(|x, y| sort_order(x, y, s.key_words, s.descending));
            }
            out.extend(b);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::model::*;
    use super::*;
    use crate::harness::{random_relation, Harness, Pacing, RelationShape};
    use crate::tuple_stream::{from_beats, to_beats, StreamTuple};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn capacity_follows_the_paper() {
        // C = min(4096·L, 64 KB) for the paper's sorter.
        for bytes in [2usize, 4, 8, 16, 32, 64, 128, 1024, 2048, 4094] {
            let words = bytes / 2;
            let c = capacity_tuples(&DELTA_CELL_ADDRESS_BITS, words) * bytes;
            let paper = (4096 * bytes).min(1 << 16);
            assert!(
                c <= paper && c * 2 > paper,
                "L={bytes}: ours {c}, paper {paper}"
            );
        }
        assert_eq!(capacity_tuples(&DELTA_CELL_ADDRESS_BITS, 8), 4096);
        assert_eq!(capacity_tuples(&SMALL_CELL_ADDRESS_BITS, 8), 32);
        assert_eq!(capacity_tuples(&SMALL_CELL_ADDRESS_BITS, 300), 1);
    }

    #[test]
    fn chained_cell_model_equals_block_sort() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let tuple_words = rng.gen_range(1..40);
            let shape = RelationShape {
                tuples: rng.gen_range(0..300),
                tuple_words,
                key_words: rng.gen_range(1..=tuple_words),
                null_probability: 0.2,
                key_domain: 7,
            };
            let input = random_relation(&mut rng, shape);
            let s = SortSettings {
                tuple_words,
                key_words: shape.key_words,
                descending: rng.gen(),
                sort_enable: true,
                tuples_hint: [0, shape.tuples][rng.gen_range(0..2)],
            };
            let cap = capacity_tuples(&SMALL_CELL_ADDRESS_BITS, tuple_words);
            assert_eq!(
                sorter_model(&SMALL_CELL_ADDRESS_BITS, &s, &input),
                block_sort(cap, &s, &input)
            );
        }
    }

    fn sort_small(s: &SortSettings, input: &[StreamTuple], pacing: Pacing) -> Vec<StreamTuple> {
        let mut h = Harness::new(SmallSorter::default());
        h.uut.apply(s);
        h.cycle(); // the cells' pass decision (see `apply`)
        let beats = to_beats(input);
        let run = h.run_stream(&beats, pacing, 1000 + 30 * beats.len() as u64);
        let mut strings = 1;
        for &bits in &SMALL_CELL_ADDRESS_BITS {
            if s.cell_sorts(bits, strings) {
                strings *= 2;
            }
        }
        assert_eq!(h.uut.capacity_tuples.val().index(), strings);
        from_beats(&run.output, s.tuple_words).expect("framing")
    }

    #[test]
    fn a_size_hint_passes_the_cells_a_small_relation_does_not_need() {
        // 300 tuples of 9 words in the Delta sorter: without the hint the three cells whose
        // strings exceed 300 tuples each hold the relation until its end; with it they pass.
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let shape = RelationShape {
            tuples: 300,
            tuple_words: 9,
            key_words: 9,
            null_probability: 0.0,
            key_domain: 12,
        };
        let input = random_relation(&mut rng, shape);
        let mut cycles = vec![];
        for hint in [0, 300] {
            let s = SortSettings {
                tuple_words: 9,
                key_words: 9,
                descending: false,
                sort_enable: true,
                tuples_hint: hint,
            };
            let mut h = Harness::new(DeltaSorter::default());
            h.uut.apply(&s);
            h.cycle(); // the cells' pass decision (see `apply`)
            let run = h.run_stream(&to_beats(&input), Pacing::FULL_RATE, 100_000);
            assert_eq!(
                from_beats(&run.output, 9).unwrap(),
                block_sort(2048, &s, &input)
            );
            cycles.push(run.cycles);
        }
        assert!(
            cycles[1] * 3 < cycles[0] * 2,
            "cycles without/with hint: {cycles:?}"
        );
        // What remains is the merge sorter's fill latency: each active cell waits for one
        // whole string (1 + 2 + … + 256 tuples here) before it merges, then the relation
        // drains: about (511 + 300) × 9 words.
        assert!(
            cycles[1] < (511 + 300) * 9 + 500,
            "with the hint: {cycles:?}"
        );
    }

    #[test]
    fn cell_model_chain_honours_any_hint() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..30 {
            let shape = RelationShape {
                tuples: rng.gen_range(0..200),
                tuple_words: 2,
                key_words: 1,
                null_probability: 0.1,
                key_domain: 9,
            };
            let input = random_relation(&mut rng, shape);
            let hint = rng.gen_range(0..300);
            let s = SortSettings {
                tuple_words: 2,
                key_words: 1,
                descending: false,
                sort_enable: true,
                tuples_hint: hint,
            };
            let mut h = Harness::new(SmallSorter::default());
            h.uut.apply(&s);
            h.cycle(); // the cells' pass decision (see `apply`)
            let run = h.run_stream(&to_beats(&input), Pacing::FULL_RATE, 100_000);
            assert_eq!(
                from_beats(&run.output, 2).unwrap(),
                sorter_model(&SMALL_CELL_ADDRESS_BITS, &s, &input),
                "hint {hint}"
            );
        }
    }

    #[test]
    fn small_sorter_random_differential() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for case in 0..25 {
            let tuple_words = [1, 2, 3, 8, 9, 17, 40, 256, 300][rng.gen_range(0..9)];
            let cap = capacity_tuples(&SMALL_CELL_ADDRESS_BITS, tuple_words);
            let shape = RelationShape {
                tuples: rng.gen_range(0..=(2 * cap + 5).min(4000 / tuple_words + 2)),
                tuple_words,
                key_words: rng.gen_range(1..=tuple_words.min(4)),
                null_probability: [0.0, 0.1, 0.6][rng.gen_range(0..3)],
                key_domain: [3, 50, 60000][rng.gen_range(0..3)],
            };
            let input = random_relation(&mut rng, shape);
            let s = SortSettings {
                tuple_words,
                key_words: shape.key_words,
                descending: rng.gen(),
                sort_enable: rng.gen_bool(0.9),
                tuples_hint: [0, shape.tuples][rng.gen_range(0..2)],
            };
            let pacing = Pacing {
                source_duty: [1.0, 0.5][rng.gen_range(0..2)],
                sink_duty: [1.0, 0.6][rng.gen_range(0..2)],
                seed: case,
            };
            let out = sort_small(&s, &input, pacing);
            assert_eq!(
                out,
                block_sort(cap, &s, &input),
                "case {case} {shape:?} {s:?}"
            );
        }
    }

    #[test]
    fn delta_sorter_sorts_a_full_4096_tuple_relation() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let shape = RelationShape {
            tuples: 4096,
            tuple_words: 8,
            key_words: 2,
            null_probability: 0.05,
            key_domain: 300,
        };
        let input = random_relation(&mut rng, shape);
        let s = SortSettings {
            tuple_words: 8,
            key_words: 2,
            descending: false,
            sort_enable: true,
            tuples_hint: 0,
        };
        let mut h = Harness::new(DeltaSorter::default());
        h.uut.apply(&s);
        let run = h.run_stream(&to_beats(&input), Pacing::FULL_RATE, 200_000);
        let out = from_beats(&run.output, 8).unwrap();
        assert_eq!(out, block_sort(4096, &s, &input));
        assert_eq!(h.uut.capacity_tuples.val().index(), 4096);
        // 32-byte tuples: cell 1 (16 bytes per memory) passes, the other 11 sort.
        h.uut.apply(&SortSettings {
            tuple_words: 16,
            ..s
        });
        // Each cell registers its `run_out`: the capacity settles one cycle per cell.
        for _ in 0..DELTA_CELL_ADDRESS_BITS.len() - 1 {
            h.cycle();
            assert_eq!(h.uut.capacity_tuples.val().index(), 4096, "not settled yet");
        }
        h.cycle();
        assert_eq!(h.uut.capacity_tuples.val().index(), 2048);
    }

    /// The macro's `bits + spare` and the two tables the model and the docs use agree:
    /// each Delta cell's memories hold 2^(bits + spare) words.
    #[test]
    fn delta_cells_have_the_memories_the_tables_give() {
        use crate::memory_fault::StoredWords;
        let mut sorter = DeltaSorter::default();
        let words: Vec<usize> = sorter
            .live_memories()
            .iter()
            .map(|m| m.memory.words())
            .collect();
        let expected: Vec<usize> = DELTA_CELL_ADDRESS_BITS
            .iter()
            .zip(DELTA_SPARE_MEMORY)
            .flat_map(|(&bits, spare)| [1 << (bits + spare), 1 << (bits + spare)])
            .collect();
        assert_eq!(words, expected);
    }

    #[test]
    fn sorter_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(SmallSorter::default());
        crate::verilog::check_module("small_sorter", &v).unwrap();
        let v = crate::verilog::export(DeltaSorter::default());
        crate::verilog::check_module("delta_sorter", &v).unwrap();
    }
}
