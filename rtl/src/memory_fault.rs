//! Memory-word faults (issue 7, `docs/RELIABILITY.md`): test equipment that corrupts one
//! stored line of one word in a sorting cell's FIFO memory (paper §4.2) or the merger's U-
//! or L-memory (§4.3) in the rust-hdl simulation, as a single-event upset in a block RAM
//! would. The stream injectors ([crate::fault_injector]) hit the connections between the
//! modules; these hit what the modules hold.
//!
//! Not hardware: nothing here is in the exported Verilog. The rust-hdl simulation reaches
//! the memories through [crate::block_ram::BlockRam::poke]. A simulation of the exported
//! Verilog reaches them by name: each [LiveMemory] also names its memory's instance and the
//! registers bounding its live words as the Verilog names them ([MemorySite]), and [strike]
//! chooses the word and line from the registers' values alike in both, so the same fault
//! strikes the same bit (`sim/src/verilator_backend.rs` reads and writes them through VPI;
//! its tests compare every outcome with rust-hdl's).
//!
//! A fault strikes after a given cycle of a step's stream, and picks a memory among those
//! holding **live** words at that moment (words a module may still read: a cell's FIFO
//! between its head tuple's start and its write pointer, U-memory's loaded relation,
//! L-memory between LADR* and its write pointer), a live word of it and a line of the stored
//! word. Free words (already read for the last time) are left alone: corrupting them cannot
//! matter, and most memories are empty most of the time. A fault that strikes when no
//! memory holds a live word, or after the stream ended, hits nothing (like an injector
//! target beyond the stream).
use crate::block_ram::BlockRam;
use crate::tuple_stream::TupleWord;
use rust_hdl::prelude::Bits;

/// A memory of tuple words, whatever its size.
pub trait TupleMemory {
    fn words(&self) -> usize;
    /// How many of a [TupleWord]'s lines it stores: the first `lines` of [STORED_LINES].
    fn lines(&self) -> u8 {
        STORED_LINES
    }
    fn peek_word(&self, address: usize) -> TupleWord;
    fn poke_word(&mut self, address: usize, word: TupleWord);
}

/// A memory of data and parity lines only (the output control part's tuple memories):
/// bits 15:0 data, 17:16 PT.
impl<const A: usize> TupleMemory for BlockRam<Bits<18>, A> {
    fn words(&self) -> usize {
        Self::WORDS
    }
    fn lines(&self) -> u8 {
        DATA_PARITY_LINES
    }
    fn peek_word(&self, address: usize) -> TupleWord {
        let stored = self.peek(address);
        TupleWord {
            data: stored.get_bits::<16>(0),
            parity: stored.get_bits::<2>(16),
            ..Default::default()
        }
    }
    fn poke_word(&mut self, address: usize, word: TupleWord) {
        let data: u64 = word.data.into();
        let parity: u64 = word.parity.into();
        self.poke(address, (data | parity << 16).into())
    }
}

impl<const A: usize> TupleMemory for BlockRam<TupleWord, A> {
    fn words(&self) -> usize {
        Self::WORDS
    }
    fn peek_word(&self, address: usize) -> TupleWord {
        self.peek(address)
    }
    fn poke_word(&mut self, address: usize, word: TupleWord) {
        self.poke(address, word)
    }
}

/// A register that bounds a memory's live words: its name in the exported Verilog (the
/// path of its flip-flop from the block, `cell_01.base_a`; the value is that instance's
/// `q`) and its value now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveRegister {
    pub path: String,
    pub value: u64,
}

impl LiveRegister {
    /// The register at `path` holding `value`.
    pub fn new(path: &str, value: impl Into<u64>) -> LiveRegister {
        LiveRegister {
            path: path.into(),
            value: value.into(),
        }
    }
}

/// Which words of a memory are live, from the registers that bound them: one rule for
/// both simulations (the rust-hdl one reads the registers directly, the Verilated model
/// through VPI by their paths: `sim/src/verilator_backend.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveRange {
    /// A ring: from pointer `base` up to (not including) pointer `write`, pointers
    /// `pointer_bits` wide (one bit wider than the address, to tell full from empty).
    Ring {
        base: LiveRegister,
        write: LiveRegister,
        pointer_bits: usize,
    },
    /// Words 0 up to (not including) `end`.
    Prefix { end: LiveRegister },
}

impl LiveRange {
    /// A ring between the registers `base` and `write` (paths and values), pointers
    /// `pointer_bits` wide.
    pub fn ring(
        base: (&str, impl Into<u64>),
        write: (&str, impl Into<u64>),
        pointer_bits: usize,
    ) -> LiveRange {
        LiveRange::Ring {
            base: LiveRegister::new(base.0, base.1),
            write: LiveRegister::new(write.0, write.1),
            pointer_bits,
        }
    }

    /// The first live word's address (before wrapping) and the live words' count.
    pub fn span(&self) -> (usize, usize) {
        match self {
            LiveRange::Ring {
                base,
                write,
                pointer_bits,
            } => (
                base.value as usize,
                pointer_distance(base.value, write.value, *pointer_bits),
            ),
            LiveRange::Prefix { end } => (0, end.value as usize),
        }
    }

    /// The registers the range is computed from.
    pub fn registers_mut(&mut self) -> Vec<&mut LiveRegister> {
        match self {
            LiveRange::Ring { base, write, .. } => vec![base, write],
            LiveRange::Prefix { end } => vec![end],
        }
    }
}

/// One memory and its live words at this moment: from address `first` of the range's
/// [LiveRange::span], wrapping around the end (the memories are rings).
pub struct LiveMemory<'a> {
    pub name: String,
    pub memory: &'a mut dyn TupleMemory,
    /// The memory's instance in the exported Verilog, from the block (`cell_01.memory_a`):
    /// a [BlockRam], its words in `mem0` (and `mem1` for a two-lane memory).
    pub path: String,
    pub range: LiveRange,
}

impl LiveMemory<'_> {
    /// The same memory seen from the block that holds this one's block as its field
    /// `instance`: the Verilog paths gain the instance's name.
    pub fn within(mut self, instance: &str) -> Self {
        self.path = format!("{instance}.{}", self.path);
        for register in self.range.registers_mut() {
            register.path = format!("{instance}.{}", register.path);
        }
        self
    }

    /// What the memory is, without it: enough to find it and its live words in the
    /// exported Verilog.
    pub fn site(&self) -> MemorySite {
        MemorySite {
            name: self.name.clone(),
            path: self.path.clone(),
            words: self.memory.words(),
            lines: self.memory.lines(),
            range: self.range.clone(),
        }
    }
}

/// A memory a fault can hit, described by names only (for a simulation of the exported
/// Verilog): [LiveMemory] without the memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemorySite {
    pub name: String,
    /// As [LiveMemory::path].
    pub path: String,
    pub words: usize,
    /// Stored lines per word: bit `i` of a stored word is line `i` ([STORED_LINES]).
    pub lines: u8,
    /// The registers' values are those of the block the site was taken from.
    pub range: LiveRange,
}

impl MemorySite {
    /// The Verilog arrays of the memory with the stored bits each holds: `(array path,
    /// lowest stored bit, bits)`, as [crate::block_ram::lanes] splits a deep memory.
    pub fn arrays(&self) -> Vec<(String, usize, usize)> {
        let address_bits = self.words.trailing_zeros() as usize;
        crate::block_ram::lanes(self.lines as usize, address_bits)
            .into_iter()
            .enumerate()
            .map(|(i, (lsb, width))| (format!("{}.mem{i}", self.path), lsb, width))
            .collect()
    }
}

/// Every memory of `block` a fault can hit, as [StoredWords::live_memories] lists them.
pub fn memory_sites(block: &mut impl StoredWords) -> Vec<MemorySite> {
    block.live_memories().iter().map(LiveMemory::site).collect()
}

/// A block whose memories a fault can hit. The list's order and names are fixed for a
/// block type (only the live ranges change).
pub trait StoredWords {
    fn live_memories(&mut self) -> Vec<LiveMemory<'_>>;
}

/// Lines of a stored word: data 0–15, parity 16–17, NL 18, DP 19, `last` 20,
/// end-of-stream 21 (a [TupleWord] as the block RAMs store it).
pub const STORED_LINES: u8 = 22;

/// Lines of a word stored as data and parity only (lines 0–17).
pub const DATA_PARITY_LINES: u8 = 18;

/// Draw [MemoryFault::line] from `0..LINE_DRAWS` for a uniform line in every memory: a
/// multiple of [STORED_LINES] and of [DATA_PARITY_LINES].
pub const LINE_DRAWS: u8 = 198;

/// The kinds of stored line, for tables: what [stored_line_kind] returns.
pub const STORED_LINE_KINDS: [&str; 6] = ["data", "parity", "NL", "DP", "last", "end of stream"];

/// What kind of line `line` (0..[STORED_LINES]) is.
pub fn stored_line_kind(line: u8) -> &'static str {
    match line {
        0..=15 => STORED_LINE_KINDS[0],
        16 | 17 => STORED_LINE_KINDS[1],
        18 => STORED_LINE_KINDS[2],
        19 => STORED_LINE_KINDS[3],
        20 => STORED_LINE_KINDS[4],
        _ => STORED_LINE_KINDS[5],
    }
}

/// `word` with stored line `line` inverted.
pub fn flip_stored_line(mut word: TupleWord, line: u8) -> TupleWord {
    match line {
        0..=15 => word.data = word.data ^ (1u64 << line),
        16 | 17 => word.parity = word.parity ^ (1u64 << (line - 16)),
        18 => word.null = !word.null,
        19 => word.dup = !word.dup,
        20 => word.last = !word.last,
        21 => word.eos = !word.eos,
        _ => panic!("a stored word has {STORED_LINES} lines, not line {line}"),
    }
    word
}

/// One memory-word fault.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemoryFault {
    /// Which memory, counted among those holding live words when the fault strikes (in
    /// [StoredWords::live_memories]' order), modulo their count.
    pub memory: u16,
    /// Which live word, counted from the oldest, modulo the live words' count.
    pub word: u32,
    /// The stored line, modulo the struck memory's [TupleMemory::lines] (draw it from
    /// `0..`[LINE_DRAWS]).
    pub line: u8,
    /// The fault strikes after this many clock cycles of the step's stream.
    pub cycle: u64,
}

/// Where a memory fault struck.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryHit {
    pub memory: String,
    pub address: usize,
    /// The line inverted (0..[STORED_LINES]).
    pub line: u8,
}

/// One memory's live words now, as [strike] chooses among them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveSpan {
    /// Address of the oldest live word.
    pub first: usize,
    /// Live words from `first` on (wrapping at `words`); 0: none.
    pub count: usize,
    /// The memory's size in words.
    pub words: usize,
    /// Stored lines a word.
    pub lines: u8,
}

/// Where a fault strikes: a memory (by its index in the list given to [strike]), a word
/// and a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strike {
    pub index: usize,
    pub address: usize,
    pub line: u8,
}

/// Which memory, word and line `fault` strikes, given each memory's live words now (in
/// [StoredWords::live_memories]' order), or `None` when no memory holds a live word.
pub fn strike(memories: &[LiveSpan], fault: &MemoryFault) -> Option<Strike> {
    let live: Vec<usize> = (0..memories.len())
        .filter(|&i| memories[i].count > 0)
        .collect();
    if live.is_empty() {
        return None;
    }
    let index = live[fault.memory as usize % live.len()];
    let m = memories[index];
    Some(Strike {
        index,
        address: (m.first + fault.word as usize % m.count) % m.words,
        line: fault.line % m.lines,
    })
}

/// Corrupt the word `fault` names, if a memory holds a live word now.
pub fn corrupt_memory(block: &mut impl StoredWords, fault: &MemoryFault) -> Option<MemoryHit> {
    let mut live = block.live_memories();
    let spans: Vec<_> = live
        .iter()
        .map(|m| {
            let (first, count) = m.range.span();
            LiveSpan {
                first,
                count,
                words: m.memory.words(),
                lines: m.memory.lines(),
            }
        })
        .collect();
    let Strike {
        index,
        address,
        line,
    } = strike(&spans, fault)?;
    let target = &mut live[index];
    let word = target.memory.peek_word(address);
    target
        .memory
        .poke_word(address, flip_stored_line(word, line));
    Some(MemoryHit {
        memory: target.name.clone(),
        address,
        line,
    })
}

/// Words from pointer `from` up to pointer `to` (`pointer_bits` wide: one bit wider than
/// the address, to tell full from empty), wrapping around.
pub(crate) fn pointer_distance(from: u64, to: u64, pointer_bits: usize) -> usize {
    (to.wrapping_sub(from) & ((1u64 << pointer_bits) - 1)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_flips_exactly_one_line_and_back() {
        let word = TupleWord {
            data: 0x1234.into(),
            parity: 2.into(),
            ..Default::default()
        };
        for line in 0..STORED_LINES {
            let flipped = flip_stored_line(word, line);
            assert_ne!(flipped, word, "line {line}");
            assert_eq!(flip_stored_line(flipped, line), word, "line {line}");
        }
        let kinds: std::collections::BTreeSet<_> =
            (0..STORED_LINES).map(stored_line_kind).collect();
        assert_eq!(kinds.len(), STORED_LINE_KINDS.len());
    }

    struct TwoMemories {
        a: BlockRam<TupleWord, 3>,
        b: BlockRam<TupleWord, 4>,
        a_live: usize,
    }
    impl StoredWords for TwoMemories {
        fn live_memories(&mut self) -> Vec<LiveMemory<'_>> {
            vec![
                LiveMemory {
                    name: "a".into(),
                    memory: &mut self.a,
                    path: "a".into(),
                    range: LiveRange::Ring {
                        base: LiveRegister::new("base_a", 6u64),
                        write: LiveRegister::new("write_a", (6 + self.a_live as u64) % 16),
                        pointer_bits: 4,
                    },
                },
                LiveMemory {
                    name: "b".into(),
                    memory: &mut self.b,
                    path: "b".into(),
                    range: LiveRange::Prefix {
                        end: LiveRegister::new("end_b", 0u64),
                    },
                },
            ]
        }
    }

    #[test]
    fn a_fault_hits_a_live_word_of_a_memory_holding_some_wrapping_around() {
        let mut block = TwoMemories {
            a: Default::default(),
            b: Default::default(),
            a_live: 4,
        };
        let fault = MemoryFault {
            memory: 0,
            word: 7, // the fourth live word (7 mod 4 = 3): address (6 + 3) mod 8 = 1
            line: 18,
            cycle: 0,
        };
        let hit = corrupt_memory(&mut block, &fault).unwrap();
        assert_eq!((hit.memory.as_str(), hit.address), ("a", 1));
        assert!(block.a.peek(1).null);
        assert_eq!(
            (0..8)
                .filter(|&a| block.a.peek(a) != TupleWord::default())
                .count(),
            1
        );
        // Memory b holds no live word: every index picks a.
        let hit = corrupt_memory(&mut block, &MemoryFault { memory: 1, ..fault }).unwrap();
        assert_eq!((hit.memory.as_str(), hit.address), ("a", 1));
        assert!(!block.a.peek(1).null, "the second flip restores the word");
        block.a_live = 0;
        assert_eq!(corrupt_memory(&mut block, &fault), None, "nothing live");
        assert_eq!(pointer_distance(14, 2, 4), 4);
    }

    struct DataParityMemory {
        m: BlockRam<Bits<18>, 2>,
    }
    impl StoredWords for DataParityMemory {
        fn live_memories(&mut self) -> Vec<LiveMemory<'_>> {
            vec![LiveMemory {
                name: "dp".into(),
                memory: &mut self.m,
                path: "m".into(),
                range: LiveRange::Ring {
                    base: LiveRegister::new("base", 3u64),
                    write: LiveRegister::new("write", 4u64),
                    pointer_bits: 3,
                },
            }]
        }
    }

    #[test]
    fn a_data_and_parity_memory_has_its_eighteen_lines_drawn_uniformly() {
        let mut block = DataParityMemory {
            m: Default::default(),
        };
        block.m.poke(3, (0x2_1234u64).into());
        assert_eq!(
            block.m.peek_word(3),
            TupleWord {
                data: 0x1234.into(),
                parity: 2.into(),
                ..Default::default()
            }
        );
        // Line 20 of a draw is line 2 (data) here; line 17 is PT1.
        for (drawn, line, stored) in [(20u8, 2u8, 0x2_1230u64), (17, 17, 0x0_1230)] {
            let fault = MemoryFault {
                memory: 0,
                word: 0,
                line: drawn,
                cycle: 0,
            };
            let hit = corrupt_memory(&mut block, &fault).unwrap();
            assert_eq!((hit.address, hit.line), (3, line));
            assert_eq!(block.m.peek(3), Bits::<18>::from(stored));
        }
        assert_eq!(LINE_DRAWS % STORED_LINES, 0);
        assert_eq!(LINE_DRAWS % DATA_PARITY_LINES, 0);
    }
}
