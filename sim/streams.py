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

    def __init__(self, dut, name, shape, rng, pause=0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.shape, self.rng, self.pause = shape, rng, pause
        # A source's valid and a sink's ready start low.
        (self.valid if self.is_source else self.ready).value = 0

    @property
    def is_source(self) -> bool:
        return isinstance(self, StreamSource)

    def hold_back(self) -> bool:
        return self.rng.random() < self.pause


class StreamSource(StreamEnd):
    """Drives a stream input; idles only between transfers (a raised valid stays up)."""


class StreamSink(StreamEnd):
    """Takes a stream output, holding ready low at random."""


class Scoreboard:
    """In-order comparison of received values against the golden model's."""

    def __init__(self, log):
        self.log = log

    def compare(self, got: list, expected: list, port: str = "o") -> int:
        """Count mismatches (missing and extra values count too) and log the first few."""
        mismatches = abs(len(expected) - len(got))
        if len(got) != len(expected):
            self.log.error("%s: %d results arrived, %d expected", port, len(got), len(expected))
        for index, (g, e) in enumerate(zip(got, expected, strict=False)):
            if g != e:
                if mismatches < 5:
                    self.log.error("%s: mismatch at #%d: got %s, expected %s", port, index, g, e)
                mismatches += 1
        return mismatches


class StreamTB:
    """Clock, reset, a source for every stream input and a sink for every stream output.

    The runner passes the run through the environment: ``LUMOE_PORTS`` (the port JSON of
    `hw.emit`), ``LUMOE_VECTORS`` (vector directory), ``LUMOE_SEED`` and ``LUMOE_RESULTS``.
    One coroutine drives every port, with one wait for the settled signals and one for the
    clock edge per cycle, so a bench of many streams costs little more than one of two.

    Parameters
    ----------
    dut : cocotb handle
        The top level.
    stalls : bool
        Randomly idle every source and stall the sink, each with probability 0.3.
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
        streams = {n: d for n, d in self.info["ports"].items() if d["stream"]}
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        self.counter = CycleCounter(dut.clk)
        self.sources = {n: StreamSource(dut, n, d["shape"], rng, pause=p)
                        for n, d in streams.items() if d["flow"] == "in"}
        self.sinks = {n: StreamSink(dut, n, d["shape"], rng, pause=p)
                      for n, d in streams.items() if d["flow"] == "out"}
        self.scoreboard = Scoreboard(self.log)
        self.first_cycle = self.last_cycle = None
        #: Set to log the cycle of every transfer of the next run, per port, in beat_cycles.
        self.log_beats = False
        self.beat_cycles = {}

    async def reset(self):
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def transfer(self, inputs: dict, counts: dict, max_cycles: int) -> dict:
        """Send each source's list of ``inputs`` and take up to ``counts[name]`` results from
        each sink, stopping after ``max_cycles`` (a hang). Time-stamps the first input and
        the last result."""
        pending = {name: list(reversed(values)) for name, values in inputs.items()}
        holding = dict.fromkeys(pending, False)
        got = {name: [] for name in counts}
        start = self.counter.now

        def wanting():
            return any(len(got[n]) < c for n, c in counts.items())

        while (wanting() or any(pending.values())) and self.counter.now - start < max_cycles:
            for name, values in pending.items():
                source = self.sources[name]
                if not holding[name] and values and not source.hold_back():
                    source.payload.value = pack(source.shape, values[-1])
                    source.valid.value = holding[name] = 1
            for name, count in counts.items():
                sink = self.sinks[name]
                sink.ready.value = int(len(got[name]) < count and not sink.hold_back())
            await ReadOnly()
            taken = [name for name in pending if holding[name] and self.sources[name].ready.value]
            for name in counts:
                sink = self.sinks[name]
                if sink.valid.value == 1 and sink.ready.value == 1:
                    got[name].append(unpack(sink.shape, sink.payload.value.to_unsigned()))
                    self.last_cycle = self.counter.now
                    taken.append(name)
            if self.log_beats:
                for name in taken:
                    self.beat_cycles.setdefault(name, []).append(self.counter.now)
            await RisingEdge(self.counter.clk)
            for name in taken:
                if name in pending:
                    pending[name].pop()
                    holding[name] = False
                    self.sources[name].valid.value = 0
                    if self.first_cycle is None:
                        self.first_cycle = self.counter.now - 1
        for name in pending:
            self.sources[name].valid.value = 0
        for sink in self.sinks.values():
            sink.ready.value = 0
        return got

    async def run(self, inputs, expected) -> dict:
        """Send ``inputs`` (a list for source ``i``, or lists by source name), collect as
        many results as ``expected`` holds (a list for sink ``o``, or lists by sink name)
        plus any surplus, and score them."""
        inputs = inputs if isinstance(inputs, dict) else {"i": inputs}
        expected = expected if isinstance(expected, dict) else {"o": expected}
        await self.reset()
        self.first_cycle = self.last_cycle = None
        self.beat_cycles = {}
        beats = sum(len(v) for v in inputs.values())
        results = sum(len(v) for v in expected.values())
        got = await self.transfer(inputs, {n: len(v) for n, v in expected.items()},
                                  100 + 20 * (beats + results))
        last = self.last_cycle
        # Keep taking results for a while, never stalling: a unit that emits too many fails.
        pauses = {n: s.pause for n, s in self.sinks.items()}
        for sink in self.sinks.values():
            sink.pause = 0.0
        surplus = await self.transfer({}, {n: beats + 1 for n in expected}, self.DRAIN_CYCLES)
        for name, sink in self.sinks.items():
            sink.pause = pauses[name]
        self.last_cycle = last
        mismatches = sum(self.scoreboard.compare(got[n] + surplus[n], expected[n], n)
                         for n in expected)
        cycles = (last - self.first_cycle + 1
                  if last is not None and self.first_cycle is not None else 0)
        return {"vectors": results, "mismatches": mismatches, "cycles": cycles}

    async def run_jobs(self, jobs: list) -> dict:
        """`run` the jobs one after another. A job has ``inputs`` (lists by source name),
        ``expected`` (a list for sink ``o``, or lists by sink name) and ``ideal_cycles``;
        the result's ideal is their sum."""
        def joined(key):
            if isinstance(jobs[0][key], dict):
                return {n: [b for j in jobs for b in j[key][n]] for n in jobs[0][key]}
            return [b for j in jobs for b in j[key]]

        result = await self.run(joined("inputs"), joined("expected"))
        return {**result, "ideal_cycles": sum(j["ideal_cycles"] for j in jobs)}

    def record(self, name: str, result: dict):
        """Add this test's result to the runner's results file."""
        path = Path(os.environ["LUMOE_RESULTS"])
        results = json.loads(path.read_text()) if path.exists() else {}
        name = f"{name}[stalls]" if self.stalls else name
        results[name] = {**result, "stalls": self.stalls}
        path.write_text(json.dumps(results, indent=2) + "\n")
        self.log.info("%s: %s", name, results[name])
