"""The accelerator as a board sees it: a serial line in and out."""

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.host_link import HostLink
from hw.top import Accelerator
from hw.uart_rx import UartRx
from hw.uart_tx import UartTx
from pyref.config import HardwareConfig


class Board(wiring.Component):
    """`Accelerator` driven by `HostLink` over a UART (`pyref.host_link`, docs/host_link.md).

    Parameters
    ----------
    hw : HardwareConfig
    memory_words : int
    divisor : int
        Clock cycles per serial bit.

    Members
    -------
    rx : In(1)
        From the host (idle high).
    tx : Out(1)
        To the host.
    status : Out(4)
        The accelerator runs a task, the link moves words, a framing error, an overrun
        (the last two stay set until reset): for LEDs.
    """

    def __init__(self, hw: HardwareConfig, memory_words: int, divisor: int):
        self.accelerator = Accelerator(hw, memory_words)
        self.link = HostLink(self.accelerator.word_bits, memory_words)
        self.uart_rx, self.uart_tx = UartRx(divisor), UartTx(divisor)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "status": Out(4)})

    def elaborate(self, platform):
        m = Module()
        acc, link = self.accelerator, self.link
        m.submodules.accelerator, m.submodules.link = acc, link
        m.submodules.uart_rx, m.submodules.uart_tx = self.uart_rx, self.uart_tx
        m.d.comb += [self.uart_rx.rx.eq(self.rx), self.tx.eq(self.uart_tx.tx)]
        wiring.connect(m, self.uart_rx.o, link.rx)
        wiring.connect(m, link.tx, self.uart_tx.i)
        for link_port, acc_port in (("write_desc", "host_write_desc"), ("write", "host_write"),
                                    ("read_desc", "host_read_desc"), ("start", "start")):
            wiring.connect(m, getattr(link, link_port), getattr(acc, acc_port))
        wiring.connect(m, acc.host_read, link.read)
        m.d.comb += [link.memory_busy.eq(acc.host_busy), link.busy.eq(acc.busy),
                     self.status.eq(Cat(acc.busy, acc.host_busy, self.uart_rx.framing,
                                        self.uart_rx.overrun))]
        return m
