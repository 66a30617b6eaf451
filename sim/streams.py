"""cocotb drivers, monitors and a scoreboard for Amaranth ``lib.stream`` ports.

A stream port ``p`` appears in Verilog as ``p__valid``, ``p__ready`` and ``p__payload``.
Handshakes are sampled in the ReadOnly phase, when every combinational path has settled,
and a transfer happens at the next rising edge when valid and ready are both high.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from sim.payload import pack, unpack

#: Simulated clock period; only cycle counts matter, so any period would do.
CLOCK_NS = 10


class CycleCounter:
    """Counts rising edges so drivers can time-stamp transfers."""

    def __init__(self, clk):
        self.clk = clk
        self.now = 0
        cocotb.start_soon(self._count())

    async def _count(self):
        while True:
            await RisingEdge(self.clk)
            self.now += 1


class StreamEnd:
    """The testbench's end of stream port ``name``, holding back with probability ``pause``."""

    def __init__(self, dut, name, shape, counter, rng, pause=0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.shape, self.counter, self.rng, self.pause = shape, counter, rng, pause


class StreamSource(StreamEnd):
    """Drives values into a stream input, idling between transfers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_cycle = None
        self.valid.value = 0

    async def send(self, values):
        clk = self.counter.clk
        for value in values:
            # Idle only between transfers: a raised valid stays up until it is taken.
            while self.rng.random() < self.pause:
                self.valid.value = 0
                await RisingEdge(clk)
            self.payload.value = pack(self.shape, value)
            self.valid.value = 1
            while True:
                await ReadOnly()
                taken = bool(self.ready.value)
                await RisingEdge(clk)
                if taken:
                    break
            if self.first_cycle is None:
                self.first_cycle = self.counter.now - 1
        self.valid.value = 0


class StreamSink(StreamEnd):
    """Collects values from a stream output, holding ready low at random."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_cycle = None
        self.ready.value = 0

    async def receive(self, count: int, max_cycles: int) -> list:
        """Return up to ``count`` values; fewer if ``max_cycles`` pass first (a hang)."""
        got = []
        start = self.counter.now
        while len(got) < count and self.counter.now - start < max_cycles:
            self.ready.value = int(self.rng.random() >= self.pause)
            await ReadOnly()
            if self.valid.value == 1 and self.ready.value == 1:
                got.append(unpack(self.shape, self.payload.value.to_unsigned()))
                self.last_cycle = self.counter.now
            await RisingEdge(self.counter.clk)
        self.ready.value = 0
        return got


class Scoreboard:
    """In-order comparison of received values against the golden model's."""

    def __init__(self, log):
        self.log = log

    def compare(self, got: list, expected: list) -> int:
        """Count mismatches (missing and extra values count too) and log the first few."""
        mismatches = abs(len(expected) - len(got))
        if len(got) != len(expected):
            self.log.error("%d results arrived, %d expected", len(got), len(expected))
        for index, (g, e) in enumerate(zip(got, expected, strict=False)):
            if g != e:
                if mismatches < 5:
                    self.log.error("mismatch at #%d: got %s, expected %s", index, g, e)
                mismatches += 1
        return mismatches


class StreamTB:
    """Clock, reset, one stream source ``i`` and one sink ``o``, configured by the runner.

    The runner passes the run through the environment: ``LUMOE_PORTS`` (the port JSON of
    `hw.emit`), ``LUMOE_VECTORS`` (vector directory), ``LUMOE_SEED`` and ``LUMOE_RESULTS``.

    Parameters
    ----------
    dut : cocotb handle
        The top level.
    stalls : bool
        Randomly idle the source and stall the sink, each with probability 0.3.
    """

    STALL_PROBABILITY = 0.3
    #: Cycles to watch for surplus results once every expected one has arrived.
    DRAIN_CYCLES = 64

    def __init__(self, dut, stalls: bool):
        self.dut = dut
        self.log = dut._log
        self.stalls = stalls
        self.info = json.loads(Path(os.environ["LUMOE_PORTS"]).read_text())
        self.vector_dir = Path(os.environ["LUMOE_VECTORS"])
        self.seed = int(os.environ["LUMOE_SEED"])
        rng = random.Random(f"{self.seed}-{dut._name}-{stalls}")
        p = self.STALL_PROBABILITY if stalls else 0.0
        ports = self.info["ports"]
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        self.counter = CycleCounter(dut.clk)
        self.source = StreamSource(dut, "i", ports["i"]["shape"], self.counter, rng, pause=p)
        self.sink = StreamSink(dut, "o", ports["o"]["shape"], self.counter, rng, pause=p)
        self.scoreboard = Scoreboard(self.log)

    async def reset(self):
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def run(self, inputs: list, expected: list) -> dict:
        """Send ``inputs``, collect as many results as ``expected`` holds, and score them."""
        await self.reset()
        cocotb.start_soon(self.source.send(inputs))
        budget = 100 + 20 * (len(inputs) + len(expected))
        got = await self.sink.receive(len(expected), budget)
        # Keep taking results for a while: a unit that emits too many must fail too.
        self.sink.pause, pause = 0.0, self.sink.pause
        got += await self.sink.receive(len(inputs) + 1, self.DRAIN_CYCLES)
        self.sink.pause = pause
        mismatches = self.scoreboard.compare(got, expected)
        cycles = (self.sink.last_cycle - self.source.first_cycle + 1
                  if got and self.source.first_cycle is not None else 0)
        return {"vectors": len(expected), "mismatches": mismatches, "cycles": cycles}

    def record(self, name: str, result: dict):
        """Add this test's result to the runner's results file."""
        path = Path(os.environ["LUMOE_RESULTS"])
        results = json.loads(path.read_text()) if path.exists() else {}
        name = f"{name}[stalls]" if self.stalls else name
        results[name] = {**result, "stalls": self.stalls}
        path.write_text(json.dumps(results, indent=2) + "\n")
        self.log.info("%s: %s", name, results[name])
