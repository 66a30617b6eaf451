"""The serial transmitter of the host link."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class UartTx(wiring.Component):
    """Sends each byte 8N1 (a low start bit, 8 data bits LSB first, a high stop bit), one
    bit every ``divisor`` cycles.

    Parameters
    ----------
    divisor : int
        Clock cycles a bit: the clock frequency over the baud rate.

    Members
    -------
    i : In(stream.Signature(8))
    tx : Out(1)
        The line; high when idle.
    """

    def __init__(self, divisor: int):
        if divisor < 2:
            raise ValueError(f"divisor {divisor}: a bit takes at least 2 cycles")
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        frame = Signal(10)
        bits_left = Signal(range(11))
        wait = Signal(range(self.divisor))
        m.d.comb += [self.i.ready.eq(bits_left == 0),
                     self.tx.eq(Mux(bits_left == 0, 1, frame[0]))]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                         bits_left.eq(10), wait.eq(self.divisor - 1)]
        with m.Elif(bits_left != 0):
            with m.If(wait == 0):
                m.d.sync += [frame.eq(frame >> 1), bits_left.eq(bits_left - 1),
                             wait.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += wait.eq(wait - 1)
        return m
