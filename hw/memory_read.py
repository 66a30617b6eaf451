"""Lock-step stage that reads one memory word per cycle."""

from amaranth.hdl import Module
from amaranth.lib import data, wiring

from hw.xls_pipe import lockstep


class MemoryRead(wiring.Component):
    """Read each memory at ``i.payload.addr``; the words join the other fields a cycle later.

    The reads are synchronous, so yosys maps the memories to block RAM. Every output field
    that no memory gives is the input field of the same name, delayed to match. The memories
    become this component's submodules; their owner may add write ports beforehand. Keep a
    memory at most 18 bits wide where timing matters: then its block RAM's output register
    can take the next register in (see `scripts.netlist`).

    Parameters
    ----------
    memories : dict of str to Memory
        The output field each memory's word becomes.
    in_layout : data.StructLayout
        Input payload: ``addr`` plus the fields to pass through.
    out_layout : data.StructLayout
        Output payload: the memories' fields plus the passed ones.

    Members
    -------
    i : In(stream.Signature(in_layout, always_ready=True))
    o : Out(stream.Signature(out_layout, always_ready=True))
    """

    latency = 1

    def __init__(self, memories: dict, in_layout: data.StructLayout,
                 out_layout: data.StructLayout):
        self.passed = [name for name, _ in out_layout if name not in memories]
        missing = {"addr", *self.passed} - {name for name, _ in in_layout}
        if missing:
            raise ValueError(f"MemoryRead input lacks fields {sorted(missing)}")
        self.memories = memories
        self._reads = {name: memory.read_port() for name, memory in memories.items()}
        super().__init__(lockstep(in_layout, out_layout))

    def elaborate(self, platform):
        m = Module()
        for name, memory in self.memories.items():
            m.submodules[name] = memory
            m.d.comb += [self._reads[name].addr.eq(self.i.payload.addr),
                         self.o.payload[name].eq(self._reads[name].data)]
        m.d.sync += self.o.valid.eq(self.i.valid)
        m.d.sync += [self.o.payload[n].eq(self.i.payload[n]) for n in self.passed]
        return m
