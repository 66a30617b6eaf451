"""cocotb bench: the board (`hw/board.py`) through its serial line, driven by the host's own
code (`pyref.host_link`) over a UART model.

``link`` checks the protocol: identify, words written and read back, a byte that is no
command. ``end_to_end`` loads the compiled tiny model, runs one image through every task and
compares the logits with `pyref.intmodel.IntModel`'s. With stalls, the host leaves random
gaps between its bytes. On a board with SDRAM, the chip model (`sim.sdram_chip`) holds the
memory and any broken timing rule counts as a mismatch.
"""

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.queue import Queue
from cocotb.triggers import ClockCycles, FallingEdge, with_timeout

from pyref import host_link, isa
from pyref.config import get_hw_config
from pyref.sdram import ULX3S
from pyref.workload import workload
from sim.sdram_chip import ChipModel
from sim.streams import CLOCK_NS, StreamTB


class UartModel:
    """The host's serial port: drives ``rx``, decodes ``tx`` into a byte queue."""

    def __init__(self, dut, divisor: int, gaps: random.Random | None):
        self.dut, self.divisor, self.gaps = dut, divisor, gaps
        dut.rx.value = 1
        self.received = Queue()
        self.framing_errors = 0
        cocotb.start_soon(self._monitor())

    async def send(self, data: bytes):
        for byte in data:
            bits = [0] + [byte >> k & 1 for k in range(8)] + [1]
            for bit in bits:
                self.dut.rx.value = bit
                await ClockCycles(self.dut.clk, self.divisor)
            if self.gaps and self.gaps.random() < 0.3:
                await ClockCycles(self.dut.clk, self.gaps.randrange(1, 4 * self.divisor))

    async def receive(self, count: int, max_cycles: int) -> bytes:
        out = bytearray()
        for _ in range(count):
            out.append(await with_timeout(self.received.get(), max_cycles * CLOCK_NS, "ns"))
        return bytes(out)

    async def _monitor(self):
        """Sample each bit in its middle, as a receiver would."""
        while True:
            await FallingEdge(self.dut.tx)
            await ClockCycles(self.dut.clk, self.divisor // 2)
            byte = 0
            for k in range(8):
                await ClockCycles(self.dut.clk, self.divisor)
                byte |= int(self.dut.tx.value) << k
            await ClockCycles(self.dut.clk, self.divisor)
            if not int(self.dut.tx.value):
                self.framing_errors += 1
            self.received.put_nowait(byte)


class TB(StreamTB):
    """The board, its UART and the host session driver."""

    def __init__(self, dut, stalls: bool):
        super().__init__(dut, stalls)
        self.divisor = self.info["divisor"]
        gaps = random.Random(f"{self.seed}-gaps") if stalls else None
        self.uart = UartModel(dut, self.divisor, gaps)
        self.rng = np.random.default_rng(self.seed)
        hw = get_hw_config(self.info["hw"])
        self.chip = (ChipModel(dut, "sdram", self.counter, ULX3S, isa.word_bits(hw),
                               f"{self.seed}-chip-{stalls}") if self.info["sdram"] else None)

    def board_errors(self) -> int:
        """A framing error or an overrun the board flagged, and the rules the SDRAM chip
        model saw broken."""
        flags = int(self.dut.status.value) >> 2
        if flags:
            self.log.error("the board's UART flagged %s", {1: "a framing error",
                                                           2: "an overrun"}.get(flags, "both"))
        return int(flags != 0) + (len(self.chip.finish()) if self.chip else 0)

    def cycles_for(self, count: int) -> int:
        """A generous bound on the cycles ``count`` bytes take on the line."""
        return 100_000 + 60 * self.divisor * count

    async def send(self, request: bytes):
        """Send ``request``, telling `make sim` how much of it has gone (long loads)."""
        path = os.environ.get("LUMOE_PROGRESS")
        piece = 4096
        for first in range(0, len(request), piece):
            await self.uart.send(request[first:first + piece])
            if path and len(request) > piece:
                state = {"done": min(first + piece, len(request)) // 1024,
                         "total": -(-len(request) // 1024), "label": "",
                         "what": "KiB sent"}
                Path(path).write_text(json.dumps(state))

    async def session(self, session: host_link.Session, run_cycles: int = 0):
        """Drive one of `pyref.host_link`'s sessions, as `host_link.run` does over pyserial."""
        reply = None
        try:
            while True:
                step = session.send(reply)
                await self.send(step.request)
                wait = self.cycles_for(step.reply) + run_cycles
                reply = step.parse(await self.uart.receive(step.reply, wait))
        except StopIteration as end:
            return end.value

    async def link(self) -> dict:
        """The protocol on random words: identify, write, read back, an unknown byte."""
        await self.reset()
        word_bytes, memory_words = await self.session(_single(host_link.identify()))
        hw = get_hw_config(self.info["hw"])
        want = (isa.word_bits(hw) // 8, self.info["memory_words"])
        mismatches = int((word_bytes, memory_words) != want)
        tile = hw.tile_in
        checked = 0
        for count in (1, 5, 37):
            base = int(self.rng.integers(0, memory_words - count))
            words = self.rng.integers(0, 1 << 16, (count, tile), dtype=np.uint16)
            await self.session(_single(host_link.write(base, words)))
            got = await self.session(_single(host_link.read(base, count, tile)))
            mismatches += int((got != words).sum())
            checked += words.size
        await self.uart.send(b"x")
        unknown = await self.uart.receive(1, self.cycles_for(1))
        mismatches += int(unknown != host_link.UNKNOWN) + self.uart.framing_errors
        return {"vectors": checked, "mismatches": mismatches + self.board_errors()}

    async def end_to_end(self) -> dict:
        """Load the tiny model, run one image through every task, compare the logits."""
        await self.reset()
        i = self.info
        work = workload(i["config"], i["hw"], 1, self.seed, i["memory_words"])
        start = self.counter.now
        await self.session(host_link.load(work.image))
        load_cycles = self.counter.now - start
        result = {"vectors": 0, "mismatches": 0, "cycles": 0, "load_cycles": load_cycles,
                  "macs": sum(work.linear_macs(t) for t in work.image.programs),
                  "peak_macs_per_cycle": work.image.hw.peak_macs_per_cycle, "runs": []}
        for task in work.image.programs:
            logits, cycles = await self.session(
                host_link.infer(work.image, work.codes[0], task), i["max_cycles"])
            expected = work.expected(task)[0]
            wrong = int((logits != expected).sum())
            if wrong:
                self.log.error("task %d: %d of %d logits differ from the integer model", task,
                               wrong, expected.size)
            result["vectors"] += expected.size
            result["mismatches"] += wrong
            result["cycles"] += cycles
            result["runs"].append({"task": task, "cycles": cycles, "logits": logits.tolist()})
        result["mismatches"] += self.board_errors()
        return result


def _single(step: host_link.Exchange):
    """A session of one exchange: its parsed reply."""
    return (yield step)


async def run_test(dut, name: str, stalls: bool):
    tb = TB(dut, stalls)
    result = await getattr(tb, name)()
    runs = result.pop("runs", [])
    tb.record(name, {"cycles": 0, "ideal_cycles": 0, "macs": 0, "peak_macs_per_cycle": 0,
                     **result, "breakdown": {"runs": runs} if runs else {}})
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches"


@cocotb.test()
async def end_to_end(dut):
    """The whole model over the serial line: load, one image per task, logits."""
    await run_test(dut, "end_to_end", False)


@cocotb.test()
async def link(dut):
    """The protocol, the host sending without gaps."""
    await run_test(dut, "link", False)


@cocotb.test()
async def link_with_gaps(dut):
    """The same with random gaps between the host's bytes."""
    await run_test(dut, "link", True)
