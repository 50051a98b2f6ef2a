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
        }
    }
}

impl<D: Synth, const A: usize> BlockRam<D, A> {
    /// Number of words.
    pub const WORDS: usize = 1 << A;
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
            if self.write_enable.val() {
                self._memory[self.write_address.val().index()] = self.write_data.val();
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
        } else {
            ""
        };
        // Zero-initialised like the Rust model, so the Verilog simulates exactly like the
        // rust-hdl simulation. The contents loop is for simulators only: yosys unrolls it
        // (minutes for the Delta sorter), and FPGA block RAM powers up zeroed anyway.
        Verilog::Custom(format!(
            "\
(* no_rw_check *){style}
reg [{msb}:0] mem [0:{last}];

initial begin
    read_data = 0;
end

`ifndef SYNTHESIS
integer init_index;
initial begin
    for (init_index = 0; init_index <= {last}; init_index = init_index + 1) begin
        mem[init_index] = 0;
    end
end
`endif

always @(posedge clock) begin
    if (read_enable) begin
        read_data <= mem[read_address];
    end
    if (write_enable) begin
        mem[write_address] <= write_data;
    end
end
",
            msb = D::BITS - 1,
            last = (1usize << A) - 1,
        ))
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
    crate::verilog::verilator_lint("block_ram", &v).unwrap();
}
