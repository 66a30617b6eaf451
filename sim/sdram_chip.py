"""The SDRAM chip for cocotb benches: `pyref.sdram.Chip` on a design's SDRAM pins."""

import random

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge

from pyref.sdram import Chip, Sdram, SdramError


class ChipModel:
    """Watches the pins ``<prefix>__*`` and answers on ``<prefix>__dq_i``.

    It wakes only when the chip is selected (a command) and for the beats of a write
    burst, so a long simulation pays for the commands, not the cycles. Whenever the chip
    would not drive the data pins they carry random garbage, so a word taken a cycle early
    or late is wrong. A broken rule is logged and kept in ``errors``; the model then stops.
    """

    def __init__(self, dut, prefix: str, counter, sdram: Sdram, word_bits: int, seed: str):
        self.dut, self.prefix, self.counter = dut, prefix, counter
        self.chip = Chip(sdram, word_bits)
        self.bits = sdram.data_bits
        self.rng = random.Random(seed)
        self.errors = []
        self.dq_i = self.pin("dq_i")
        self.dq_i.value = self.rng.getrandbits(self.bits)
        cocotb.start_soon(self._watch())

    def pin(self, name: str):
        return getattr(self.dut, f"{self.prefix}__{name}")

    def finish(self):
        """Check the refresh interval up to now; returns the errors."""
        try:
            self.chip.finish(self.counter.now)
        except SdramError as e:
            self.errors.append(str(e))
        return self.errors

    async def _watch(self):
        cs_n = self.pin("cs_n")
        names = ("cs_n", "ras_n", "cas_n", "we_n", "ba", "a", "dq_o", "dq_oe")
        pins = {n: self.pin(n) for n in names}
        while True:
            if int(cs_n.value) and self.chip.write is None:
                await FallingEdge(cs_n)
            await FallingEdge(self.dut.clk)  # mid-cycle: what the next edge registers
            now = {n: int(p.value) for n, p in pins.items()}
            try:
                reads = self.chip.edge(self.counter.now + 1, now["cs_n"], now["ras_n"],
                                       now["cas_n"], now["we_n"], now["ba"], now["a"],
                                       now["dq_o"], now["dq_oe"])
            except SdramError as e:
                self.errors.append(str(e))
                self.dut._log.error("SDRAM chip model: %s", e)
                return
            if reads:
                cocotb.start_soon(self._drive(reads, self.counter.now))

    async def _drive(self, reads: list, at: int):
        """Put each beat on the data pins in the cycle after its edge."""
        for edge, value in reads:
            await ClockCycles(self.dut.clk, edge - at)
            at = edge
            self.dq_i.value = value
        await ClockCycles(self.dut.clk, 1)
        self.dq_i.value = self.rng.getrandbits(self.bits)
