"""Lock-step stage that reads one memory word per cycle."""

from amaranth.hdl import Module
from amaranth.lib import data, wiring

from hw.delay import delayed
from hw.xls_pipe import lockstep


class MemoryRead(wiring.Component):
    """Read each memory at its address field; the words join the other fields a cycle later.

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
        Input payload: the address fields plus the fields to pass through.
    out_layout : data.StructLayout
        Output payload: the memories' fields plus the passed ones.
    addresses : dict of str to str, optional
        The input field that addresses each memory; ``addr`` for those not named.
    registered : bool
        Register the words once more (reset-less, so the netlist pass moves the register
        into the block RAM's output register): for a reader that has no register of its
        own right behind the memory.

    Members
    -------
    i : In(stream.Signature(in_layout, always_ready=True))
    o : Out(stream.Signature(out_layout, always_ready=True))
    """

    def __init__(self, memories: dict, in_layout: data.StructLayout,
                 out_layout: data.StructLayout, addresses: dict = None,
                 registered: bool = False):
        self.passed = [name for name, _ in out_layout if name not in memories]
        self.addresses = {name: (addresses or {}).get(name, "addr") for name in memories}
        missing = {*self.addresses.values(), *self.passed} - {name for name, _ in in_layout}
        if missing:
            raise ValueError(f"MemoryRead input lacks fields {sorted(missing)}")
        self.memories = memories
        self.latency = 1 + registered
        self._reads = {name: memory.read_port() for name, memory in memories.items()}
        super().__init__(lockstep(in_layout, out_layout))

    def elaborate(self, platform):
        m = Module()
        for name, memory in self.memories.items():
            m.submodules[name] = memory
            read = self._reads[name]
            m.d.comb += [read.addr.eq(self.i.payload[self.addresses[name]]),
                         self.o.payload[name].eq(delayed(m, read.data, self.latency - 1, name,
                                                         reset_less=True))]
        m.d.comb += self.o.valid.eq(delayed(m, self.i.valid, self.latency, "valid"))
        m.d.comb += [self.o.payload[n].eq(delayed(m, self.i.payload[n], self.latency, n))
                     for n in self.passed]
        return m
