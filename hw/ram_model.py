"""A large simulation RAM as a Verilog behavioural model: the memory behind the port."""

from amaranth.hdl import ClockSignal, Instance, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

#: The model's Verilog. Amaranth writes a memory's initial value as one constant of every
#: bit (``$meminit_v2``), so a memory of millions of words cannot be emitted at all;
#: Verilator starts this array at zero and simulates it like any other.
VERILOG = """\
module lumoe_ram #(parameter WIDTH = 8, parameter ABITS = 8) (
  input clk,
  input [ABITS-1:0] read_addr,
  output reg [WIDTH-1:0] read_data,
  input write_en,
  input [ABITS-1:0] write_addr,
  input [WIDTH-1:0] write_data
);
  reg [WIDTH-1:0] words [0:(1 << ABITS) - 1];
  always @(posedge clk) begin
    read_data <= words[read_addr];
    if (write_en) words[write_addr] <= write_data;
  end
endmodule
"""


class RamModel(wiring.Component):
    """``2^abits`` words of ``width`` bits, read a cycle after the address (the old word when
    the same word is written in that cycle), written at a clock edge.

    Members
    -------
    read_addr : In(abits)
    read_data : Out(width)
    write_en : In(1)
    write_addr : In(abits)
    write_data : In(width)
    """

    def __init__(self, width: int, abits: int):
        self.width, self.abits = width, abits
        super().__init__({"read_addr": In(abits), "read_data": Out(width), "write_en": In(1),
                          "write_addr": In(abits), "write_data": In(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = Instance(
            "lumoe_ram", p_WIDTH=self.width, p_ABITS=self.abits, i_clk=ClockSignal(),
            i_read_addr=self.read_addr, o_read_data=self.read_data, i_write_en=self.write_en,
            i_write_addr=self.write_addr, i_write_data=self.write_data)
        return m
