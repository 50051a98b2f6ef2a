//! Simple dual-port block RAM: one synchronous read port with read enable, one write port,
//! one clock. The memory element under every FIFO of the sorting cells (paper §4.2: "two
//! memories each with a first-in/first-out function"), the IN module's tuple buffer and
//! the sorting checker's delay line.
//!
//! Why not rust-hdl's own `RAM`: its simulation model is a `BTreeMap` (slow in the inner
//! loop of a 12-cell sorter), it has no read enable (a stalled pipeline must hold the read
//! data), and its Verilog lacks `(* no_rw_check *)`, without which yosys wraps block RAM in
//! read-during-write bypass logic. Reads and writes to the same address in one cycle return
//! the old word in both the Rust model and the Verilog (read-first); the modules built on
//! this RAM never depend on that case.
use rust_hdl::prelude::*;

/// Memories of at most 2^this words are built from logic, not block RAM.
pub const LOGIC_RAM_MAX_ADDRESS_BITS: usize = 3;

/// The width of a block RAM word on the ECP5 (`DP16KD` in its ×18 mode, 1K words): a
/// tuple word's data and parity.
pub const BLOCK_RAM_LANE_BITS: usize = 18;

/// Memories of at least 2^this words and more than [BLOCK_RAM_LANE_BITS] bits are split.
pub const LANE_SPLIT_MIN_ADDRESS_BITS: usize = 12;

/// Memories of at least 2^this words are *deep*: on the ECP5 their word comes out of
/// several blocks and a multiplexer over them, 11–13 ns after the clock (the Delta merger's
/// and sorting checker's memories), so their users read them through a register stage (a
/// two-cycle read): the operation part ([crate::head_reader::HeadReader]'s two-cycle
/// mode), the output control part and the sorting checker (a stage of registers after
/// the memory). Shallower memories are read in one cycle: the iCE40 configurations' block
/// RAM comes out in 2.1 ns, and an iCE40 register fed by a block RAM costs a logic cell a
/// bit. (The sorting cells choose by their own rule,
/// [crate::sorting_cell::REGISTERED_READ_MIN_ADDRESS_BITS], and the Delta sorter by
/// [crate::sorter::DELTA_TWO_CYCLE_READ_FROM].) The operation part's deep memories and the
/// two-cycle cells' memories are also written through a register
/// ([BlockRam::new]).
pub const DEEP_MEMORY_ADDRESS_BITS: usize = 12;

/// Memories of exactly 2^this words (8K) are stored in 2-bit lanes: the ECP5 block's 8K × 2
/// shape, one block deep.
pub const NARROW_LANE_ADDRESS_BITS: usize = 13;

/// The memories the Verilog of a RAM of `bits`-wide words and `address_bits` address bits
/// is made of, as (lowest bit, width), because yosys maps each memory to one block shape:
/// * **8K words: 2-bit lanes.** As one memory, yosys builds an 8K-word memory from eight
///   1K × 18 blocks, and a read's data goes through an 8-to-1 multiplexer (three LUT
///   levels and the routing from eight blocks spread over the chip) before any logic sees
///   it; as 2-bit lanes each lane is one 8K × 2 block and there is no multiplexer, for one
///   more block per 18 bits (the Delta core: 198 → 202 of the LFE5U-85's 208; the
///   operation part's L-memory, the output control part's two tuple memories and cell
///   11's two memories). On the Delta core's ECP5 critical path (the operation part's
///   L-memory → its next read addresses) a word read left the multiplexer 15.8 ns after
///   the clock; from a 2-bit lane it reaches its first LUT at 10.9 ns (session 18,
///   docs/PERFORMANCE.md). Deeper memories (16K, 32K words) are
///   left whole: their narrow shapes cost 2 and 4 more blocks per 18 bits, which the
///   LFE5U-85 does not have (214 of 208 with every memory of 8K words or more split).
/// * **4K words or more, wider than [BLOCK_RAM_LANE_BITS]: an 18-bit lane** (a tuple
///   word's data and parity) and a lane of the rest (its NL, DP, last and end-of-stream
///   lines): as one 22-bit memory, a 4K-word memory takes 6 ECP5 blocks (×4 mode) where
///   18 + 4 bits take 4 + 1, and the Delta engine core needed 215 of the LFE5U-85's 208
///   blocks (measured with yosys 0.23 `synth_ecp5`); split, 198.
/// * **Smaller memories are left whole**: a split saves nothing on the ECP5 and costs
///   iCE40 blocks (the small engine core went from 27 to 36 of the HX8K's 32 when every
///   memory was split).
///
/// The lanes change nothing else: one address, one enable, one clock, written and read
/// together.
pub fn lanes(bits: usize, address_bits: usize) -> Vec<(usize, usize)> {
    if address_bits == NARROW_LANE_ADDRESS_BITS {
        (0..bits)
            .step_by(2)
            .map(|lsb| (lsb, 2.min(bits - lsb)))
            .collect()
    } else if bits > BLOCK_RAM_LANE_BITS && address_bits >= LANE_SPLIT_MIN_ADDRESS_BITS {
        vec![
            (0, BLOCK_RAM_LANE_BITS),
            (BLOCK_RAM_LANE_BITS, bits - BLOCK_RAM_LANE_BITS),
        ]
    } else {
        vec![(0, bits)]
    }
}

/// `D` is the stored word, `A` the address width (2^A words).
#[derive(LogicBlock)]
pub struct BlockRam<D: Synth, const A: usize> {
    pub clock: Signal<In, Clock>,
    pub read_address: Signal<In, Bits<A>>,
    /// When low, `read_data` keeps its value (the BRAM's read clock enable).
    pub read_enable: Signal<In, Bit>,
    pub read_data: Signal<Out, D>,
    pub write_address: Signal<In, Bits<A>>,
    pub write_enable: Signal<In, Bit>,
    pub write_data: Signal<In, D>,
    _memory: Vec<D>,
    /// The write port's inputs pass a register first ([BlockRam::new]).
    _write_register: bool,
    /// The write taken by that register at the last edge, done at the next.
    _pending_write: Option<(usize, D)>,
    /// Its Verilog asks for LUT RAM ([BlockRam::in_lut_ram]).
    _lut_ram: bool,
}

impl<D: Synth, const A: usize> Default for BlockRam<D, A> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            read_address: Default::default(),
            read_enable: Default::default(),
            read_data: Default::default(),
            write_address: Default::default(),
            write_enable: Default::default(),
            write_data: Default::default(),
            _memory: vec![D::default(); 1 << A],
            _write_register: false,
            _pending_write: None,
            _lut_ram: false,
        }
    }
}

impl<D: Synth, const A: usize> BlockRam<D, A> {
    /// Number of words.
    pub const WORDS: usize = 1 << A;

    /// With `write_register`, a memory whose write address, enable and data are registered
    /// before the memory (issue 6): a word is stored one edge later than it is offered, so
    /// the logic that decides a write (a stream's handshake) reaches a register next to
    /// it, not the write ports of a deep memory's blocks spread over the die (on the ECP5
    /// 5.6 ns of route to the Delta merger's 32 blocks). Its user must count a word as
    /// readable one cycle after it offered it. Without, the plain memory (`Default`).
    pub fn new(write_register: bool) -> Self {
        Self {
            _write_register: write_register,
            ..Default::default()
        }
    }

    /// The memory's Verilog asks for LUT RAM (`(* ram_style = "distributed" *)`): on the
    /// ECP5 yosys builds memories of up to 32 words from LUT RAM by itself but gives one of
    /// 64 words a whole block (the Delta sorter's cell 3 with its spare memory,
    /// [crate::sorter::DELTA_LUT_RAM_MAX_ADDRESS_BITS], where the core already uses 202 of
    /// the part's 208 blocks). For the ECP5 configuration only: the iCE40 has no LUT RAM.
    /// The behaviour and every other line of the Verilog are the same.
    pub fn in_lut_ram(mut self) -> Self {
        self._lut_ram = true;
        self
    }

    /// Test hook (fault injection, inspection): read a stored word directly.
    pub fn peek(&self, address: usize) -> D {
        self._memory[address]
    }
    /// Test hook (fault injection): overwrite a stored word directly.
    pub fn poke(&mut self, address: usize, value: D) {
        self._memory[address] = value;
    }
}

impl<D: Synth, const A: usize> Logic for BlockRam<D, A> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            if self.read_enable.val() {
                self.read_data.next = self._memory[self.read_address.val().index()];
            }
            // (Read first: a read at the edge that stores a word gets the old word.)
            if let Some((address, word)) = self._pending_write.take() {
                self._memory[address] = word;
            }
            if self.write_enable.val() {
                let write = (self.write_address.val().index(), self.write_data.val());
                if self._write_register {
                    self._pending_write = Some(write);
                } else {
                    self._memory[write.0] = write.1;
                }
            }
        }
    }

    fn connect(&mut self) {
        self.read_data.connect();
    }

    fn hdl(&self) -> Verilog {
        // A block RAM holds at least 256 words on iCE40 and 512 on ECP5: memories this
        // small are cheaper as flip-flops than as a whole block.
        let style = if A <= LOGIC_RAM_MAX_ADDRESS_BITS {
            " (* ram_style = \"logic\" *)"
        } else if self._lut_ram {
            " (* ram_style = \"distributed\" *)"
        } else {
            ""
        };
        // Zero-initialised like the Rust model, so the Verilog simulates exactly like the
        // rust-hdl simulation. The contents loop is for simulators only: yosys unrolls it
        // (minutes for the Delta sorter), and FPGA block RAM powers up zeroed anyway.
        let last = (1usize << A) - 1;
        let mut v = String::new();
        let lanes = lanes(D::BITS, A);
        for (i, &(_, width)) in lanes.iter().enumerate() {
            v += &format!(
                "(* no_rw_check *){style}\nreg [{}:0] mem{i} [0:{last}];\n",
                width - 1
            );
        }
        v += "\ninitial begin\n    read_data = 0;\nend\n\n`ifndef SYNTHESIS\ninteger init_index;\n";
        v += &format!(
            "initial begin\n    for (init_index = 0; init_index <= {last}; init_index = init_index + 1) begin\n"
        );
        for i in 0..lanes.len() {
            v += &format!("        mem{i}[init_index] = 0;\n");
        }
        v += "    end\nend\n`endif\n\n";
        // The registered write: the memory writes what these registers took at the last
        // edge (no reset: the enable starts low, as the Rust model's).
        let (write_enable, write_address, write_data) = if self._write_register {
            v += &format!(
                "reg write_enable_q;\nreg [{}:0] write_address_q;\nreg [{}:0] write_data_q;\n\
                 initial write_enable_q = 1'b0;\n\
                 always @(posedge clock) begin\n    write_enable_q <= write_enable;\n\
                 \x20   write_address_q <= write_address;\n    write_data_q <= write_data;\nend\n\n",
                A - 1,
                D::BITS - 1
            );
            ("write_enable_q", "write_address_q", "write_data_q")
        } else {
            ("write_enable", "write_address", "write_data")
        };
        v += "always @(posedge clock) begin\n    if (read_enable) begin\n";
        // A one-bit word is a scalar: no part select on it.
        let part = |lsb: usize, width: usize| {
            if lanes.len() == 1 {
                String::new()
            } else {
                format!("[{}:{lsb}]", lsb + width - 1)
            }
        };
        for (i, &(lsb, width)) in lanes.iter().enumerate() {
            v += &format!(
                "        read_data{} <= mem{i}[read_address];\n",
                part(lsb, width)
            );
        }
        v += &format!("    end\n    if ({write_enable}) begin\n");
        for (i, &(lsb, width)) in lanes.iter().enumerate() {
            v += &format!(
                "        mem{i}[{write_address}] <= {write_data}{};\n",
                part(lsb, width)
            );
        }
        v += "    end\nend\n";
        Verilog::Custom(v)
    }

    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "block_ram".into(),
            clock: "clock".into(),
            inputs: vec![
                "read_address".into(),
                "read_enable".into(),
                "write_address".into(),
                "write_enable".into(),
                "write_data".into(),
            ],
            outputs: vec!["read_data".into()],
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Harness;

    #[test]
    fn reads_are_synchronous_read_first_and_held_without_enable() {
        let mut h = Harness::new(BlockRam::<Bits<8>, 4>::default());
        h.uut.write_enable.next = true;
        h.uut.write_address.next = 3.into();
        h.uut.write_data.next = 0x5a.into();
        h.uut.read_enable.next = true;
        h.uut.read_address.next = 3.into();
        h.cycle();
        // Same-cycle read of the address being written returns the old word.
        assert_eq!(h.uut.read_data.val(), 0);
        h.uut.write_enable.next = false;
        h.cycle();
        assert_eq!(h.uut.read_data.val(), 0x5a);
        h.uut.read_enable.next = false;
        h.uut.read_address.next = 4.into();
        h.cycle();
        assert_eq!(h.uut.read_data.val(), 0x5a, "held while read_enable is low");
    }

    #[test]
    fn a_registered_write_stores_its_word_one_edge_later() {
        let mut h = Harness::new(BlockRam::<Bits<8>, 4>::new(true));
        h.uut.write_enable.next = true;
        h.uut.write_address.next = 3.into();
        h.uut.write_data.next = 0x5a.into();
        h.uut.read_enable.next = true;
        h.uut.read_address.next = 3.into();
        h.cycle();
        // The edge took the write into the register: the memory does not have it yet.
        h.uut.write_enable.next = false;
        h.uut.write_data.next = 0x11.into();
        assert_eq!(h.uut.peek(3), 0);
        h.cycle();
        // Stored at this edge; read first, so this edge's read still got the old word.
        assert_eq!(h.uut.peek(3), 0x5a);
        assert_eq!(h.uut.read_data.val(), 0);
        h.cycle();
        assert_eq!(h.uut.read_data.val(), 0x5a);
        // Back-to-back writes are each stored one edge late, none lost or repeated.
        for n in 0..6u64 {
            h.uut.write_enable.next = n % 3 != 2;
            h.uut.write_address.next = (8 + n).into();
            h.uut.write_data.next = (0x20 + n).into();
            h.cycle();
        }
        h.uut.write_enable.next = false;
        h.cycle();
        for n in 0..6u64 {
            let want = if n % 3 != 2 { 0x20 + n } else { 0 };
            assert_eq!(h.uut.peek(8 + n as usize), want, "address {}", 8 + n);
        }
    }

    #[test]
    fn block_ram_verilog_is_valid() {
        let mut uut = BlockRam::<Bits<22>, 6>::default();
        uut.connect_all();
        yosys_validate("rdbe_block_ram", &generate_verilog(&uut)).unwrap();
    }
}

impl<D: Synth, const A: usize> crate::harness::Clocked for BlockRam<D, A> {
    fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
        &mut self.clock
    }
}

#[test]
fn block_ram_verilog_passes_verilator_lint() {
    let v = crate::verilog::export(BlockRam::<Bits<22>, 6>::default());
    crate::verilog::check_module("block_ram", &v).unwrap();
    let v = crate::verilog::export(BlockRam::<Bit, 6>::default());
    crate::verilog::check_module("block_ram_bit", &v).unwrap();
    // A deep tuple-word memory is two lanes, written and read together.
    let v = crate::verilog::export(BlockRam::<Bits<22>, 12>::default());
    assert!(v.contains("reg [17:0] mem0 [0:4095]") && v.contains("reg [3:0] mem1 [0:4095]"));
    assert!(v.contains("read_data[21:18] <= mem1[read_address]"));
    crate::verilog::check_module("block_ram_lanes", &v).unwrap();
    // The registered write, whole and in lanes: the memory writes from the registers.
    let v = crate::verilog::export(BlockRam::<Bits<22>, 12>::new(true));
    assert!(v.contains("mem1[write_address_q] <= write_data_q[21:18]"));
    crate::verilog::check_module("block_ram_write_register", &v).unwrap();
    let v = crate::verilog::export(BlockRam::<Bit, 6>::new(true));
    crate::verilog::check_module("block_ram_bit_write_register", &v).unwrap();
}

#[test]
fn deep_memories_are_split_into_lanes() {
    assert_eq!(lanes(22, 11), vec![(0, 22)]);
    assert_eq!(lanes(22, 12), vec![(0, 18), (18, 4)]);
    assert_eq!(lanes(18, 15), vec![(0, 18)]);
    assert_eq!(lanes(22, 14), vec![(0, 18), (18, 4)]);
    // 8K words: 2-bit lanes (the ECP5's 8K × 2 block), an odd width's last lane 1 bit.
    assert_eq!(
        lanes(18, 13),
        (0..9).map(|i| (2 * i, 2)).collect::<Vec<_>>()
    );
    assert_eq!(lanes(3, 13), vec![(0, 2), (2, 1)]);
}
