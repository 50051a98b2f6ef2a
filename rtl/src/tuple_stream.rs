//! The tuple stream: the bus between the engine core's modules (paper §3.1, Fig. 2).
//!
//! The paper names four line groups between the HM adapters, the IN module, the sorter
//! and the merger: DT (16 data lines), PT (2 parity lines, one per byte), NL (null line)
//! and DP (duplication line). We add the framing a clocked, back-pressured implementation
//! needs: `last` marks the last word of a tuple, `eos` marks the end-of-stream beat, and a
//! valid/ready handshake moves one beat per clock when both are high.
//!
//! The full contract (beat order, what each line means on which beat, parity convention)
//! is written once in `docs/TUPLE_STREAM.md`.
use rust_hdl::prelude::*;

/// One beat of the tuple stream: the paper's DT, PT, NL and DP lines plus framing.
///
/// A *data beat* (`eos == false`) carries one 16-bit word of a tuple. Tuples are sent
/// word-serially, key first; `null` and `dup` are constant over all words of one tuple;
/// `last` is set on the tuple's final word. An *end-of-stream beat* (`eos == true`) follows
/// the last tuple of every relation (an empty relation is the end-of-stream beat alone);
/// its other fields are zero.
#[derive(Clone, Copy, Debug, Default, LogicStruct)]
pub struct TupleWord {
    /// DT: the data word, most significant byte first in the tuple's byte order.
    pub data: Bits<16>,
    /// PT: odd parity, bit 1 over `data[15:8]`, bit 0 over `data[7:0]`.
    pub parity: Bits<2>,
    /// NL: this tuple's key is null.
    pub null: Bit,
    /// DP: this tuple's key equals the next tuple's key (driven by the sorting checker).
    pub dup: Bit,
    /// Framing: last word of the tuple.
    pub last: Bit,
    /// Framing: end-of-stream beat (carries no tuple data).
    pub eos: Bit,
}

/// The fields compared all at once, not one branch after another as the derived `eq`
/// does: the simulation compares a stream signal's word whenever it visits the signal,
/// about 2 M times in `rtl_speed 1 600` (callgrind: 533.8 M instructions with the derived
/// `eq`, 528.6 M with this one).
impl PartialEq for TupleWord {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        (self.data == other.data)
            & (self.parity == other.parity)
            & (self.null == other.null)
            & (self.dup == other.dup)
            & (self.last == other.last)
            & (self.eos == other.eos)
    }
}

/// Sending side of a tuple stream (a module's output port).
#[derive(LogicInterface, Default)]
#[join = "TupleStreamIn"]
pub struct TupleStreamOut {
    pub word: Signal<Out, TupleWord>,
    pub valid: Signal<Out, Bit>,
    pub ready: Signal<In, Bit>,
}

/// Receiving side of a tuple stream (a module's input port).
#[derive(LogicInterface, Default)]
#[join = "TupleStreamOut"]
pub struct TupleStreamIn {
    pub word: Signal<In, TupleWord>,
    pub valid: Signal<In, Bit>,
    pub ready: Signal<Out, Bit>,
}

/// Odd parity of one byte: the bit that makes the byte plus parity hold an odd number of
/// ones, so an all-zero (stuck-at-0) bus is a parity error.
pub fn odd_parity_byte(byte: u8) -> bool {
    byte.count_ones().is_multiple_of(2)
}

/// The PT lines for a data word: bit 1 covers the high byte, bit 0 the low byte.
pub fn word_parity(data: u16) -> u8 {
    ((odd_parity_byte((data >> 8) as u8) as u8) << 1) | odd_parity_byte(data as u8) as u8
}

/// The parity generator of every module that (re)generates or checks PT: [word_parity]'s
/// rule in hardware, one combinational block shared by the IN module, the output control
/// part and the HM adapters. `parity` is the PT value for `data` (bit 1 over the high
/// byte, bit 0 over the low byte, odd); a checker compares it with the PT lines it got.
#[derive(LogicBlock, Default)]
pub struct OddParity {
    pub data: Signal<In, Bits<16>>,
    pub parity: Signal<Out, Bits<2>>,
}

impl Logic for OddParity {
    #[hdl_gen]
    fn update(&mut self) {
        // `xor()` is the byte's parity; odd parity sets the bit when it is even.
        self.parity.next = 0.into();
        if !self.data.val().get_bits::<8>(8).xor() {
            if !self.data.val().get_bits::<8>(0).xor() {
                self.parity.next = 3.into();
            } else {
                self.parity.next = 2.into();
            }
        } else if !self.data.val().get_bits::<8>(0).xor() {
            self.parity.next = 1.into();
        }
    }
}

/// How a word is stored in the sorting cells' and the operation part's memories (issue 7):
/// its low parity line folded over its NL, DP, `last` and end-of-stream lines, so that one
/// of the two parity lines covers every stored line. Folding twice gives the word back, so
/// the same rule stores a word and unfolds it as it is read ([ParityFold] in hardware).
pub fn fold_parity(beat: Beat) -> Beat {
    let lines = beat.null ^ beat.dup ^ beat.last ^ beat.eos;
    Beat {
        parity: beat.parity ^ lines as u8,
        ..beat
    }
}

/// [fold_parity] in hardware: one combinational block for the write side (fold) and the
/// read side (unfold) of every memory that stores folded words.
#[derive(LogicBlock)]
pub struct ParityFold {
    pub word_in: Signal<In, TupleWord>,
    pub word_out: Signal<Out, TupleWord>,
    low_line: Constant<Bits<2>>,
}

impl Default for ParityFold {
    fn default() -> Self {
        Self {
            word_in: Default::default(),
            word_out: Default::default(),
            low_line: Constant::new(1.into()),
        }
    }
}

impl Logic for ParityFold {
    #[hdl_gen]
    fn update(&mut self) {
        self.word_out.next = self.word_in.val();
        if self.word_in.val().null
            ^ self.word_in.val().dup
            ^ self.word_in.val().last
            ^ self.word_in.val().eos
        {
            self.word_out.next.parity = self.word_in.val().parity ^ self.low_line.val();
        }
    }
}

/// A software view of one beat, used by reference models and testbench drivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Beat {
    pub data: u16,
    pub parity: u8,
    pub null: bool,
    pub dup: bool,
    pub last: bool,
    pub eos: bool,
}

impl Beat {
    /// A data beat with correct parity.
    pub fn data(data: u16, null: bool, last: bool) -> Beat {
        Beat {
            data,
            parity: word_parity(data),
            null,
            dup: false,
            last,
            eos: false,
        }
    }
    /// The end-of-stream beat.
    pub fn eos() -> Beat {
        Beat {
            eos: true,
            ..Default::default()
        }
    }
    pub fn parity_ok(&self) -> bool {
        self.eos || self.parity == word_parity(self.data)
    }
}

impl From<Beat> for TupleWord {
    fn from(b: Beat) -> TupleWord {
        TupleWord {
            data: (b.data as u64).into(),
            parity: (b.parity as u64).into(),
            null: b.null,
            dup: b.dup,
            last: b.last,
            eos: b.eos,
        }
    }
}

impl From<TupleWord> for Beat {
    fn from(w: TupleWord) -> Beat {
        Beat {
            data: w.data.index() as u16,
            parity: w.parity.index() as u8,
            null: w.null,
            dup: w.dup,
            last: w.last,
            eos: w.eos,
        }
    }
}

/// A tuple as the engine core sees it: its words (key first) and its NL/DP lines.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct StreamTuple {
    pub words: Vec<u16>,
    pub null: bool,
    pub dup: bool,
}

impl StreamTuple {
    pub fn new(words: Vec<u16>, null: bool) -> StreamTuple {
        StreamTuple {
            words,
            null,
            dup: false,
        }
    }
}

/// Serialise tuples into beats (with correct parity), ending with the end-of-stream beat.
pub fn to_beats(tuples: &[StreamTuple]) -> Vec<Beat> {
    let mut beats = Vec::new();
    for t in tuples {
        assert!(!t.words.is_empty(), "a tuple has at least one word");
        for (i, &w) in t.words.iter().enumerate() {
            let mut b = Beat::data(w, t.null, i + 1 == t.words.len());
            b.dup = t.dup;
            beats.push(b);
        }
    }
    beats.push(Beat::eos());
    beats
}

/// What went wrong when re-assembling a beat sequence into tuples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// A word's parity does not match its data.
    Parity { beat: usize },
    /// NL or DP changed inside one tuple.
    LineChangedInTuple { beat: usize },
    /// A tuple did not have the expected number of words.
    TupleLength { beat: usize, words: usize },
    /// The stream ended without its end-of-stream beat, or had beats after it.
    Eos { beat: usize },
}

/// Tuples as the HM sends them (compact format, no NL or DP): each tuple's words with
/// `last` on its final word, then the end-of-stream beat.
pub fn compact_beats(tuples: &[Vec<u16>]) -> Vec<Beat> {
    let mut beats = Vec::with_capacity(tuples.iter().map(Vec::len).sum::<usize>() + 1);
    for t in tuples {
        for (i, &w) in t.iter().enumerate() {
            beats.push(Beat::data(w, false, i + 1 == t.len()));
        }
    }
    beats.push(Beat::eos());
    beats
}

/// The data words of each tuple before the end-of-stream beat, cut at `last`: a quick
/// view of a stream whose tuples may differ in length (the merger's output when SORT-EX
/// mixes U and L formats). No checks: [from_beats] checks framing and parity.
pub fn split_tuples(beats: &[Beat]) -> Vec<Vec<u16>> {
    let mut tuples = vec![];
    let mut current = vec![];
    for b in beats.iter().take_while(|b| !b.eos) {
        current.push(b.data);
        if b.last {
            tuples.push(std::mem::take(&mut current));
        }
    }
    tuples
}

/// As [split_tuples], with each tuple's DP line: the data words of each tuple before the
/// end-of-stream beat, cut at `last`, and the DP of the tuple's first word (DP is constant
/// over a tuple; [from_beats] and [dp_constant_per_tuple] check that). The merger's output
/// carries the DP of an L tuple output alone (`docs/TUPLE_STREAM.md`).
pub fn split_tuples_with_dup(beats: &[Beat]) -> Vec<(Vec<u16>, bool)> {
    let mut tuples = vec![];
    let mut current = vec![];
    let mut dup = false;
    for b in beats.iter().take_while(|b| !b.eos) {
        if current.is_empty() {
            dup = b.dup;
        }
        current.push(b.data);
        if b.last {
            tuples.push((std::mem::take(&mut current), dup));
        }
    }
    tuples
}

/// Whether NL and DP are constant over every tuple before the end-of-stream beat and 0 on
/// the end-of-stream beat (tuples of any length, cut at `last`).
pub fn dp_constant_per_tuple(beats: &[Beat]) -> bool {
    let mut first: Option<Beat> = None;
    for b in beats {
        if b.eos {
            return !b.dup && !b.null;
        }
        let f = *first.get_or_insert(*b);
        if f.dup != b.dup || f.null != b.null {
            return false;
        }
        if b.last {
            first = None;
        }
    }
    true
}

/// Re-assemble beats into tuples, checking framing and parity. `words_per_tuple` is the
/// relation's fixed tuple length.
pub fn from_beats(
    beats: &[Beat],
    words_per_tuple: usize,
) -> Result<Vec<StreamTuple>, FramingError> {
    let mut tuples = Vec::new();
    let mut current: Option<StreamTuple> = None;
    for (i, b) in beats.iter().enumerate() {
        if b.eos {
            if current.is_some() || i + 1 != beats.len() {
                return Err(FramingError::Eos { beat: i });
            }
            return Ok(tuples);
        }
        if !b.parity_ok() {
            return Err(FramingError::Parity { beat: i });
        }
        let t = current.get_or_insert_with(|| StreamTuple {
            words: vec![],
            null: b.null,
            dup: b.dup,
        });
        if t.null != b.null || t.dup != b.dup {
            return Err(FramingError::LineChangedInTuple { beat: i });
        }
        t.words.push(b.data);
        if b.last || t.words.len() >= words_per_tuple {
            if !b.last || t.words.len() != words_per_tuple {
                return Err(FramingError::TupleLength {
                    beat: i,
                    words: t.words.len(),
                });
            }
            tuples.push(current.take().unwrap());
        }
    }
    Err(FramingError::Eos { beat: beats.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_is_odd_per_byte() {
        for v in [0u16, 1, 0x8000, 0xffff, 0x1234, 0x0101] {
            let p = word_parity(v);
            let hi = (v >> 8).count_ones() + ((p >> 1) & 1) as u32;
            let lo = (v & 0xff).count_ones() + (p & 1) as u32;
            assert_eq!(hi % 2, 1);
            assert_eq!(lo % 2, 1);
        }
        assert_eq!(word_parity(0), 0b11, "all-zero bus must carry parity ones");
    }

    #[test]
    fn beats_round_trip_and_framing_errors_are_found() {
        let tuples = vec![
            StreamTuple::new(vec![1, 2], false),
            StreamTuple::new(vec![3, 4], true),
        ];
        let beats = to_beats(&tuples);
        assert_eq!(beats.len(), 5);
        assert_eq!(from_beats(&beats, 2).unwrap(), tuples);
        assert!(from_beats(&to_beats(&[]), 2).unwrap().is_empty());
        let mut bad = beats.clone();
        bad[1].parity ^= 1;
        assert_eq!(from_beats(&bad, 2), Err(FramingError::Parity { beat: 1 }));
        let mut bad = beats.clone();
        bad[1].null = true;
        assert_eq!(
            from_beats(&bad, 2),
            Err(FramingError::LineChangedInTuple { beat: 1 })
        );
        assert_eq!(
            from_beats(&beats[..4], 2),
            Err(FramingError::Eos { beat: 4 })
        );
        assert!(matches!(
            from_beats(&beats, 3),
            Err(FramingError::TupleLength { .. })
        ));
        let w: TupleWord = beats[2].into();
        assert_eq!(Beat::from(w), beats[2]);
    }

    #[test]
    fn parity_block_follows_word_parity_for_every_word() {
        let mut p = OddParity::default();
        p.connect_all();
        for v in 0..=u16::MAX {
            p.data.next = (v as u64).into();
            p.update_all();
            p.update_all();
            assert_eq!(p.parity.val().index() as u8, word_parity(v), "{v:#06x}");
        }
    }

    #[test]
    fn fold_flips_the_low_parity_line_with_the_lines_and_undoes_itself() {
        // The paper-free rule's own cases: no line set, one line, two lines, eos alone.
        let plain = Beat::data(0x1234, false, false);
        assert_eq!(fold_parity(plain), plain);
        let last = Beat::data(0x1234, false, true);
        assert_eq!(fold_parity(last).parity, last.parity ^ 1);
        let null_last = Beat::data(0x1234, true, true);
        assert_eq!(fold_parity(null_last), null_last);
        assert_eq!(fold_parity(Beat::eos()).parity, Beat::eos().parity ^ 1);
        for bits in 0..64u32 {
            let b = Beat {
                data: 0xa5c3,
                parity: (bits & 3) as u8,
                null: bits & 4 != 0,
                dup: bits & 8 != 0,
                last: bits & 16 != 0,
                eos: bits & 32 != 0,
            };
            assert_eq!(fold_parity(fold_parity(b)), b);
        }
    }

    #[test]
    fn fold_block_follows_fold_parity() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut f = ParityFold::default();
        f.connect_all();
        for _ in 0..2_000 {
            let b = Beat {
                data: rng.gen(),
                parity: rng.gen_range(0..4),
                null: rng.gen(),
                dup: rng.gen(),
                last: rng.gen(),
                eos: rng.gen(),
            };
            f.word_in.next = b.into();
            f.update_all();
            f.update_all();
            assert_eq!(Beat::from(f.word_out.val()), fold_parity(b));
        }
    }

    #[test]
    fn fold_block_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(ParityFold::default());
        crate::verilog::check_module("parity_fold", &v).unwrap();
    }

    #[test]
    fn parity_block_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(OddParity::default());
        crate::verilog::check_module("odd_parity", &v).unwrap();
    }

    #[test]
    fn split_with_dup_takes_each_tuples_dp() {
        let mut a = StreamTuple::new(vec![1, 2], false);
        a.dup = true;
        let b = StreamTuple::new(vec![3], true);
        let beats = to_beats(&[a, b]);
        assert_eq!(
            split_tuples_with_dup(&beats),
            vec![(vec![1, 2], true), (vec![3], false)]
        );
        assert!(dp_constant_per_tuple(&beats));
        let mut bad = beats.clone();
        bad[1].dup = false;
        assert!(!dp_constant_per_tuple(&bad));
        let mut bad = beats;
        bad[3].dup = true;
        assert!(!dp_constant_per_tuple(&bad), "end of stream with DP");
    }
}
