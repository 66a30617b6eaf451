"""Out-of-context wrapper that lets any unit be placed and routed on a real package."""

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class PinHarness(wiring.Component):
    """Feed a unit's inputs from a shift chain and shift its outputs out, one pin each way.

    A unit's ports are usually wider than a package's pins. Here every input bit comes from
    a register of a serial chain and every output bit is captured into a register, so
    nothing is optimised away and timing is measured register to register, as it would be
    inside a larger design. The harness adds ``in_bits + out_bits`` flip-flops and about
    ``out_bits`` LUTs; reports state those numbers beside the totals.

    Parameters
    ----------
    unit : wiring.Component
        The design under implementation.

    Members
    -------
    sin : In(1)
        Serial input bit, shifted into the input chain every cycle.
    load : In(1)
        Capture the unit's outputs (otherwise shift them out).
    sout : Out(1)
        Serial output bit.
    """

    sin: In(1)
    load: In(1)
    sout: Out(1)

    def __init__(self, unit: wiring.Component):
        self.unit = unit
        self.inputs, self.outputs = [], []
        for _, member, value in unit.signature.flatten(unit):
            (self.inputs if member.flow is In else self.outputs).append(Value.cast(value))
        super().__init__()

    @property
    def in_bits(self) -> int:
        return sum(len(v) for v in self.inputs)

    @property
    def out_bits(self) -> int:
        return sum(len(v) for v in self.outputs)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = self.unit

        chain = Signal(self.in_bits)
        m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
        offset = 0
        for port in self.inputs:
            m.d.comb += port.eq(chain[offset:offset + len(port)])
            offset += len(port)

        captured = Signal(self.out_bits)
        with m.If(self.load):
            m.d.sync += captured.eq(Cat(*self.outputs))
        with m.Else():
            m.d.sync += captured.eq(captured >> 1)
        m.d.comb += self.sout.eq(captured[0])
        return m
