"""An XLS pipeline as a lock-step component: a valid signal and no ready."""

from amaranth.hdl import ClockSignal, Instance, Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.delay import delayed


def payload(fields: dict):
    """One field's shape as is, several as a struct in the given order."""
    return next(iter(fields.values())) if len(fields) == 1 else data.StructLayout(fields)


def lockstep(in_shape, out_shape) -> wiring.Signature:
    """Ports of a pipeline that never stalls: ``o.valid`` follows ``i.valid`` after a fixed
    latency, and both ``ready`` signals are constant 1."""
    return wiring.Signature({
        "i": In(stream.Signature(in_shape, always_ready=True)),
        "o": Out(stream.Signature(out_shape, always_ready=True)),
    })


class XlsPipe(wiring.Component):
    """The Verilog pipeline of one XLS function, with ``lib.stream`` ports and no stalls.

    The pipeline's registers load in every cycle; the valid flag travels beside them in
    registers of its own, so ``o.payload`` holds a result only while ``o.valid``.

    Parameters
    ----------
    module : str
        Verilog module made by the XLS codegen (ports ``clk, <inputs>, out``).
    latency : int
        Cycles from an input to its result.
    inputs : dict of str to Shape
        The module's data inputs in order; with more than one, ``i.payload`` is a struct.
    outputs : dict of str to Shape
        The elements of ``out`` in order; with more than one, ``o.payload`` is a struct.

    Members
    -------
    i : In(stream.Signature(inputs, always_ready=True))
    o : Out(stream.Signature(outputs, always_ready=True))
    """

    def __init__(self, module: str, latency: int, inputs: dict, outputs: dict):
        self.module, self.latency = module, latency
        self.inputs = dict(inputs)
        # XLS packs a returned tuple with its first element in the most significant bits,
        # while a struct layout starts at the least significant: list the fields reversed.
        super().__init__(lockstep(payload(self.inputs),
                                  payload(dict(reversed(list(outputs.items()))))))

    def elaborate(self, platform):
        m = Module()
        if len(self.inputs) == 1:
            args = {f"i_{next(iter(self.inputs))}": self.i.payload}
        else:
            args = {f"i_{name}": self.i.payload[name] for name in self.inputs}
        m.submodules.kernel = Instance(self.module, i_clk=ClockSignal(),
                                       o_out=self.o.payload, **args)
        m.d.comb += self.o.valid.eq(delayed(m, self.i.valid, self.latency, "valid"))
        return m
