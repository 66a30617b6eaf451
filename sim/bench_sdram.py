"""cocotb bench: the SDRAM controller (`hw/sdram_port.py`) on the checking chip model
`pyref.sdram.Chip`.

Rounds of random write requests, then read requests of words written before (and of some
never written, which read 0), at random addresses across rows, banks and the top of the
chip. Every word read must be the one written, and the chip model must see no broken
timing rule, initialisation included, through idle stretches long enough to need refreshes.
The writes come as bursts on free streams, or a word per request as `MemoryArbiter` hands
them over (the word follows its request and replaces one still waiting).
"""

import random

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from pyref.sdram import ULX3S
from sim.payload import pack
from sim.sdram_chip import ChipModel
from sim.streams import StreamTB

ROUNDS = 6
#: Rounds of words handed over as the arbiter does. A port that took a request while the
#: last word waited loses that word only when a refresh falls due in the cycle it would
#: have taken it: with 12 rounds two seeds of five caught such a port, with 40 all five.
HANDED_OVER_ROUNDS = 40
#: Idle cycles after the traffic: several refresh intervals.
IDLE_CYCLES = 4 * ULX3S.t_refi


class TB(StreamTB):
    """Requests and data through the port's streams; the chip model on its pins."""

    def __init__(self, dut, stalls: bool):
        super().__init__(dut, stalls)
        self.width = self.info["width"]
        self.chip = ChipModel(dut, "pins", self.counter, ULX3S, self.width,
                              f"{self.seed}-chip-{stalls}")
        self.rng = random.Random(f"{self.seed}-sdram-{stalls}")

    def base(self, count: int) -> int:
        """A random first word: low, or at the top of the chip."""
        top = ULX3S.words(self.width)
        return self.rng.choice([self.rng.randrange(0, 4096),
                                self.rng.randrange(top - 512, top - count)])

    async def handed_over(self, words: list, max_cycles: int):
        """Write ``(addr, value)`` pairs as `MemoryArbiter` does: a request per word, its
        word valid from the cycle after the request is taken until the port takes it, and
        replaced by the next request's word if the port takes that request first."""
        req, data = self.sources["write_req"], self.sources["write_data"]
        pending, word, offered = list(reversed(words)), None, False
        start = self.counter.now
        while (pending or word is not None) and self.counter.now - start < max_cycles:
            if not offered and pending and not req.hold_back():
                req.payload.value = pack(req.shape, {"addr": pending[-1][0], "beats": 1})
                req.valid.value = offered = 1
            data.valid.value = int(word is not None)
            if word is not None:
                data.payload.value = pack(data.shape, word)
            await ReadOnly()
            request_taken = offered and req.ready.value == 1
            word_taken = word is not None and data.ready.value == 1
            await RisingEdge(self.dut.clk)
            if word_taken:
                word = None
            if request_taken:
                word = pending.pop()[1]
                req.valid.value = offered = 0
        data.valid.value = 0

    async def rounds(self, arbiter: bool) -> dict:
        await self.reset()
        memory = {}
        words = read_cycles = 0
        mismatches = 0
        for _ in range(HANDED_OVER_ROUNDS if arbiter else ROUNDS):
            writes = []
            for _ in range(self.rng.randrange(1, 4)):
                count = self.rng.randrange(1, 40)
                writes.append((self.base(count), count))
            data = []
            for base, count in writes:
                for k in range(count):
                    value = self.rng.getrandbits(self.width)
                    memory[base + k] = value
                    data.append(value)
            if arbiter:
                addresses = [b + k for b, c in writes for k in range(c)]
                await self.handed_over(list(zip(addresses, data, strict=True)), 100_000)
            else:
                requests = [{"addr": b, "beats": c} for b, c in writes]
                await self.transfer({"write_req": requests, "write_data": data}, {},
                                    100_000)
            reads = [writes[self.rng.randrange(len(writes))],
                     (self.rng.randrange(8192, 16384), self.rng.randrange(1, 5))]
            count = sum(c for _, c in reads)
            start = self.counter.now
            got = await self.transfer({"read_req": [{"addr": b, "beats": c}
                                                    for b, c in reads]},
                                      {"read_data": count}, 100_000)
            read_cycles += self.counter.now - start
            expected = [memory.get(b + k, 0) for b, c in reads for k in range(c)]
            mismatches += self.scoreboard.compare(got["read_data"], expected, "read_data")
            words += count
        await ClockCycles(self.dut.clk, IDLE_CYCLES)
        mismatches += len(self.chip.finish())
        chip = self.chip.chip
        return {"vectors": words, "mismatches": mismatches, "cycles": read_cycles,
                "ideal_cycles": words * chip.burst, "refreshes": chip.refreshes}


@cocotb.test()
@cocotb.parametrize(stalls=[False, True], arbiter=[False, True])
async def reads_what_was_written(dut, stalls, arbiter):
    tb = TB(dut, stalls)
    result = await tb.rounds(arbiter)
    # ideal: the data pins busy every cycle (a burst per word, back to back).
    name = "reads_what_was_handed_over" if arbiter else "reads_what_was_written"
    tb.record(name, {**result, "macs": 0, "peak_macs_per_cycle": 0})
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches; chip: {tb.chip.errors}"
    assert result["refreshes"] > IDLE_CYCLES // ULX3S.t_refi
