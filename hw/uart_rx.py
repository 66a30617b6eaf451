"""The serial receiver of the host link."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class UartRx(wiring.Component):
    """Receives 8N1 bytes, one bit every ``divisor`` cycles, sampled mid-bit.

    A start bit that is high again at its middle was a glitch and is ignored. A byte whose
    stop bit is low sets ``framing``; a byte that arrives while the one before still waits
    on ``o`` sets ``overrun``. Both stay set until reset, and the byte is dropped.

    Parameters
    ----------
    divisor : int
        Clock cycles a bit.

    Members
    -------
    rx : In(1)
    o : Out(stream.Signature(8))
    framing, overrun : Out(1)
    """

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor {divisor}: the receiver needs 4 cycles a bit or more")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)),
                          "framing": Out(1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        # Two flops bring the line into the clock domain (it comes from another clock).
        meta, line = Signal(init=1), Signal(init=1)
        m.d.sync += [meta.eq(self.rx), line.eq(meta)]
        receiving = Signal()
        bit = Signal(range(10))  # 0 start, 1..8 data, 9 stop
        wait = Signal(range(self.divisor))
        byte = Signal(8)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(~receiving):
            with m.If(~line):
                m.d.sync += [receiving.eq(1), bit.eq(0), wait.eq(self.divisor // 2 - 1)]
        with m.Elif(wait != 0):
            m.d.sync += wait.eq(wait - 1)
        with m.Else():
            m.d.sync += [wait.eq(self.divisor - 1), bit.eq(bit + 1)]
            with m.If(bit == 0):
                m.d.sync += receiving.eq(~line)
            with m.Elif(bit < 9):
                m.d.sync += byte.eq(Cat(byte[1:], line))
            with m.Else():
                m.d.sync += receiving.eq(0)
                with m.If(~line):
                    m.d.sync += self.framing.eq(1)
                with m.Elif(self.o.valid & ~self.o.ready):
                    m.d.sync += self.overrun.eq(1)
                with m.Else():
                    m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(byte)]
        return m
