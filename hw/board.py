"""The accelerator as a board sees it: a serial line in and out."""

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.delay import delayed
from hw.host_link import HostLink
from hw.skid_buffer import SkidBuffer
from hw.top import Accelerator
from hw.uart_rx import UartRx
from hw.uart_tx import UartTx
from pyref.config import HardwareConfig
from pyref.sdram import Sdram

#: Bytes the board holds while its link waits: 16 bytes cover 160 bit times.
RX_FIFO_DEPTH = 16


class Board(wiring.Component):
    """`Accelerator` driven by `HostLink` over a UART (`pyref.host_link`, docs/host_link.md).

    Parameters
    ----------
    hw : HardwareConfig
    memory_words : int
    divisor : int
        Clock cycles per serial bit.
    sdram : pyref.sdram.Sdram or None
        The memory chip (`hw.top.Accelerator`); None simulates the memory.

    Members
    -------
    rx : In(1)
        From the host (idle high).
    tx : Out(1)
        To the host.
    status : Out(4)
        The accelerator runs a task, the link moves words, a framing error, an overrun
        (the last two stay set until reset): for LEDs.
    sdram : Out(hw.sdram_port.pins_signature(sdram)), with ``sdram`` only
    """

    def __init__(self, hw: HardwareConfig, memory_words: int, divisor: int,
                 sdram: Sdram | None = None):
        self.accelerator = Accelerator(hw, memory_words, sdram)
        self.link = HostLink(self.accelerator.word_bits, memory_words)
        self.uart_rx, self.uart_tx = UartRx(divisor), UartTx(divisor)
        pins = {"sdram": self.accelerator.signature.members["sdram"]} if sdram else {}
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "status": Out(4), **pins})

    def elaborate(self, platform):
        m = Module()
        acc, link = self.accelerator, self.link
        m.submodules.accelerator, m.submodules.link = acc, link
        m.submodules.uart_rx, m.submodules.uart_tx = self.uart_rx, self.uart_tx
        m.d.comb += [self.uart_rx.rx.eq(self.rx), self.tx.eq(self.uart_tx.tx)]
        # Bytes wait here while the link waits for the memory (a refresh, the arbiter):
        # the serial line has no flow control. A skid buffer hands them on, so the link's
        # state logic starts at flip-flops, and its decision to take a byte reaches only
        # the skid's flags, not the queue's level.
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=RX_FIFO_DEPTH)
        m.submodules.rx_skid = skid = SkidBuffer(8)
        wiring.connect(m, self.uart_rx.o, fifo.w_stream)
        wiring.connect(m, fifo.r_stream, skid.i)
        wiring.connect(m, skid.o, link.rx)
        wiring.connect(m, link.tx, self.uart_tx.i)
        for link_port, acc_port in (("write_desc", "host_write_desc"), ("write", "host_write"),
                                    ("read_desc", "host_read_desc"), ("start", "start")):
            wiring.connect(m, getattr(link, link_port), getattr(acc, acc_port))
        wiring.connect(m, acc.host_read, link.read)
        if "sdram" in self.signature.members:
            wiring.connect(m, acc.sdram, wiring.flipped(self.sdram))
        # The memory's ready flag (it rises once, after the chip's power-up) comes from the
        # far edge of the chip: two registers on its way let the link's logic stay together.
        m.d.comb += [link.memory_busy.eq(acc.host_busy),
                     link.memory_ready.eq(delayed(m, acc.memory_ready, 2, "memory_ready")),
                     link.busy.eq(acc.busy),
                     # The LEDs, a cycle late: their pins are far from the flags' sources.
                     self.status.eq(delayed(m, Cat(acc.busy, acc.host_busy, self.uart_rx.framing,
                                                   self.uart_rx.overrun), 1, "status"))]
        return m
