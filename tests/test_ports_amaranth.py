"""Read and write ports, the arbiter and the memory port together in Amaranth's simulator:
every word lands where `pyref.isa.Descriptor` says and every beat is cut or joined as
`pyref.isa` says, with random stalls on the units' side."""

import random

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from hw.address_generator import port_descriptor
from hw.memory_arbiter import MemoryArbiter
from hw.memory_port import MemoryPort
from hw.port_reader import PortReader
from hw.port_writer import PortWriter
from pyref import isa
from pyref.config import get_hw_config
from pyref.isa import Descriptor
from tests.amaranth_streams import assert_refused, receive, send

HW = get_hw_config("ecp5-85f")
WORD = isa.word_bits(HW)
DEPTH = 256
ADDRESS_BITS = (DEPTH - 1).bit_length()
#: Beats narrower than a word (attention's), as wide (activations), wider (biases).
BEATS = (WORD // 2, WORD, 2 * WORD)


class Memory(wiring.Component):
    """A writer and a reader per beat width on one arbitrated memory port."""

    def __init__(self, groups=None, outstanding=8):
        self.readers = [PortReader(WORD, b, address_bits=ADDRESS_BITS) for b in BEATS]
        self.writers = [PortWriter(WORD, b, ADDRESS_BITS) for b in BEATS]
        self.arbiter = MemoryArbiter(WORD, len(self.readers), len(self.writers), outstanding,
                                     groups=groups, address_bits=ADDRESS_BITS)
        self.port = MemoryPort(WORD, DEPTH)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.port, m.submodules.arbiter = self.port, self.arbiter
        a = self.arbiter
        wiring.connect(m, a.port_read_req, self.port.read_req)
        wiring.connect(m, self.port.read_data, a.port_read_data)
        wiring.connect(m, a.port_write_req, self.port.write_req)
        wiring.connect(m, a.port_write_data, self.port.write_data)
        for k, (r, w) in enumerate(zip(self.readers, self.writers, strict=True)):
            m.submodules[f"reader{k}"], m.submodules[f"writer{k}"] = r, w
            wiring.connect(m, r.req, a.read[k])
            wiring.connect(m, a.read_data[k], r.data)
            wiring.connect(m, w.req, a.write[k])
        return m


def port(beat_bits: int, kind: str) -> isa.Port:
    return isa.Port("test", kind, 16, beat_bits // 16)


def lanes_to_int(lanes) -> int:
    return sum(int(v) << (16 * k) for k, v in enumerate(lanes))


def int_to_lanes(value: int, count: int) -> np.ndarray:
    return np.array([(value >> (16 * k)) & 0xFFFF for k in range(count)], dtype=np.uint16)


# Three groups with two reads outstanding: the readers wait on the root's tags.
@pytest.mark.parametrize(("groups", "outstanding"), [(None, 8), ([[0, 3], [1, 2, 5], [4]], 2)],
                         ids=["one group", "three groups, 2 outstanding"])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_words_go_where_descriptors_say_and_come_back_as_beats(stall, groups, outstanding):
    rng = random.Random(stall)
    dut = Memory(groups, outstanding)
    # Each writer fills its own 48 words with a strided pattern, then each reader reads
    # another writer's region back with loops that wrap (one of a single step) and a word
    # limit.
    writes = [Descriptor(64 * k, 48, ((4, 2), (2, 1), (6, 8))) for k in range(3)]
    read_loops = [((3, 8), (2, 1), (2, 0)), ((3, 8), (1, 5), (2, 1)), ((3, 8), (2, 1), (2, 0))]
    reads = [Descriptor(64 * ((k + 1) % 3), 20, loops, lanes=k == 0)
             for k, loops in enumerate(read_loops)]
    memory = np.zeros((DEPTH, HW.tile_in), dtype=np.uint16)
    beats_in = []
    for k, (desc, bits) in enumerate(zip(writes, BEATS, strict=True)):
        p = port(bits, "write")
        values = np.arange(desc.words * HW.tile_in, dtype=np.int64) * 7 + 1000 * k
        beats = values.reshape(-1, p.values)
        beats_in.append([lanes_to_int(isa.to_lanes(b, 16)) for b in beats])
        memory[desc.addresses()] = isa.beats_to_words(HW, p, beats)
    expected = []
    for desc, bits in zip(reads, BEATS, strict=True):
        words = memory[desc.addresses()]
        beats = isa.words_to_beats(HW, port(bits, "read"), words, desc.lanes)
        expected.append([lanes_to_int(isa.to_lanes(b, 16)) for b in beats])
    got = [None] * 3

    def writer(k):
        async def bench(ctx):
            desc = port_descriptor(writes[k].fields(), ADDRESS_BITS)
            await send(ctx, dut.writers[k].desc, [desc], rng)
            await send(ctx, dut.writers[k].i, beats_in[k], rng, idle=stall)
        return bench

    def reader(k):
        async def bench(ctx):
            await ctx.tick().repeat(400)  # after every write
            desc = port_descriptor(reads[k].fields(), ADDRESS_BITS)
            await send(ctx, dut.readers[k].desc, [desc], rng)
            got[k] = await receive(ctx, dut.readers[k].o, len(expected[k]), rng, stall)
        return bench

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for k in range(3):
        sim.add_testbench(writer(k))
        sim.add_testbench(reader(k))
    sim.run_until(1e-8 * 2000)
    for k in range(3):
        assert got[k] == expected[k], f"reader of {BEATS[k]}-bit beats"


@pytest.mark.parametrize("groups", [[[0, 1, 2], [3, 4]], [[0, 1, 2], [3, 4, 5, 5]],
                                    [[], list(range(6))]])
def test_arbiter_groups_must_hold_each_client_once(groups):
    assert_refused(lambda: MemoryArbiter(WORD, 3, 3, groups=groups), "each of the 6 clients")
