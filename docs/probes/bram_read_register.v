// Probe (not part of the design; docs/PERFORMANCE.md, "Fmax", session 14): how fast a block
// RAM read can go on its own, with and without a fabric register between the read data and
// the logic after it. A W x 16 memory (written and read through registered ports), its read
// data compared with another registered word into a register.
//   EXTRA = 0: read data -> 16-bit compare -> register (the shape of the design's loops)
//   EXTRA = 1: read data -> register -> compare -> register (a two-cycle read)
// Yosys 0.23 maps every ECP5 block RAM with REGMODE "NOREG" (share/yosys/ecp5/brams_map.v),
// so the DP16KD's own output register cannot be inferred; EXTRA = 1 uses a fabric register.
//
// ECP5-85 (32K words: 32 DP16KD), as measured:
//   yosys -q -p "chparam -set EXTRA 1 probe; synth_ecp5 -top probe -json p.json" bram_read_register.v
//   nextpnr-ecp5 --85k --package CABGA381 --speed 6 --json p.json --freq 100 \
//       --timing-allow-fail --lpf-allow-unconstrained
// iCE40 HX8K (ADDR_BITS = 11, 2K words: 8 SB_RAM40_4K):
//   yosys -q -p "chparam -set EXTRA 1 -set ADDR_BITS 11 probe; synth_ice40 -top probe -json h.json" bram_read_register.v
//   nextpnr-ice40 --hx8k --package ct256 --json h.json --freq 100 --timing-allow-fail
module probe #(
    parameter EXTRA = 0,      // 1: a fabric register on the read data before the compare
    parameter ADDR_BITS = 15  // memory depth 2^ADDR_BITS words of 16 bits
) (
    input clk,
    input [ADDR_BITS-1:0] waddr,
    input [ADDR_BITS-1:0] raddr_in,
    input [15:0] wdata,
    input we,
    input [15:0] other,
    output reg gt,
    output reg [15:0] q
);
  reg [15:0] mem[0:(1<<ADDR_BITS)-1];
  reg [15:0] rd, rd2, other_r, wdata_r;
  reg [ADDR_BITS-1:0] raddr, waddr_r;
  reg we_r;
  always @(posedge clk) begin
    waddr_r <= waddr;
    wdata_r <= wdata;
    we_r <= we;
    other_r <= other;
    if (we_r) mem[waddr_r] <= wdata_r;
    raddr <= raddr_in;
    rd <= mem[raddr];
    rd2 <= rd;
    gt <= (EXTRA ? rd2 : rd) > other_r;
    q <= EXTRA ? rd2 : rd;
  end
endmodule
