"""A lock-step pipeline with more fields carried past it."""

from amaranth.hdl import Module, Value
from amaranth.lib import data, wiring

from hw.delay import delayed
from hw.xls_pipe import lockstep


class Beside(wiring.Component):
    """Run ``pipe`` on some fields of a struct payload and delay the others beside it.

    Parameters
    ----------
    pipe : wiring.Component
        Lock-step pipeline with a ``latency``.
    inputs, outputs : sequence of str
        Names of ``pipe``'s input and output fields in order (a single field is the whole
        payload of its port).
    in_layout : data.StructLayout
        Input payload: ``inputs`` plus the fields to carry.
    out_layout : data.StructLayout
        Output payload: ``outputs`` plus the carried fields.

    Members
    -------
    i : In(stream.Signature(in_layout, always_ready=True))
    o : Out(stream.Signature(out_layout, always_ready=True))
    """

    def __init__(self, pipe: wiring.Component, inputs, outputs,
                 in_layout: data.StructLayout, out_layout: data.StructLayout):
        self.pipe, self.inputs, self.outputs = pipe, list(inputs), list(outputs)
        self.latency = pipe.latency
        self.carried = [n for n, _ in out_layout if n not in self.outputs]
        missing = {*self.inputs, *self.carried} - {n for n, _ in in_layout}
        if missing:
            raise ValueError(f"Beside input lacks fields {sorted(missing)}")
        super().__init__(lockstep(in_layout, out_layout))

    @staticmethod
    def _fields(payload, names):
        """Field ``name`` of a port's payload: the payload itself when it is the only one."""
        return {names[0]: payload} if len(names) == 1 else {n: payload[n] for n in names}

    def elaborate(self, platform):
        m = Module()
        m.submodules.pipe = pipe = self.pipe
        m.d.comb += pipe.i.valid.eq(self.i.valid)
        for name, port in self._fields(pipe.i.payload, self.inputs).items():
            m.d.comb += Value.cast(port).eq(self.i.payload[name])
        m.d.comb += self.o.valid.eq(pipe.o.valid)
        for name, port in self._fields(pipe.o.payload, self.outputs).items():
            m.d.comb += self.o.payload[name].eq(port)
        for name in self.carried:
            m.d.comb += self.o.payload[name].eq(
                delayed(m, self.i.payload[name], self.latency, name))
        return m
