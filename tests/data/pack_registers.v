// Registers around a multiplier and a block-RAM read, for tests/test_netlist.py.
module pack_registers(input clk, input rst, input en, input [15:0] a, input [15:0] b, input [7:0] addr,
         output reg [31:0] p, output reg [15:0] q, output reg [31:0] pr, output [15:0] side);
  reg [15:0] ra, rb;
  always @(posedge clk) begin ra <= a; rb <= b; p <= ra * rb; end
  assign side = ra;  // ra has another reader: it stays, and the DSP takes a copy
  reg [15:0] rom [0:255];
  integer i; initial for (i = 0; i < 256; i = i + 1) rom[i] = i * 7;
  reg [15:0] d;
  always @(posedge clk) begin d <= rom[addr]; q <= d; end
  // enable and reset on the product register: left in the fabric
  always @(posedge clk) if (rst) pr <= 0; else if (en) pr <= ra * b;
endmodule
