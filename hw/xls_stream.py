"""Stream adapter around an XLS pipeline, which has a valid signal but no ready."""

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out


class XlsStream(wiring.Component):
    """Give an XLS function pipeline ``lib.stream`` ports with backpressure.

    The pipeline cannot stall, so results land in a FIFO, and an input is accepted only
    when a FIFO slot is certain to be free when its result arrives: the FIFO's level plus
    the results still in flight stays below its depth (credits). A depth of latency + 2
    sustains one result per cycle while ``o.ready`` stays high.

    Parameters
    ----------
    module : str
        Verilog module made by the XLS codegen (ports ``clk, rst, i_valid, <inputs>,
        o_valid, out``).
    latency : int
        Cycles from ``i_valid`` to ``o_valid``.
    inputs : dict of str to Shape
        The module's data inputs in order; with more than one, ``i.payload`` is a struct.
    outputs : dict of str to Shape
        The elements of ``out`` in order; with more than one, ``o.payload`` is a struct.

    Members
    -------
    i : In(stream.Signature(...))
        Arguments.
    o : Out(stream.Signature(...))
        Results, in order.
    """

    def __init__(self, module: str, latency: int, inputs: dict, outputs: dict):
        self.module = module
        self.latency = latency
        self.inputs = dict(inputs)
        # XLS packs a returned tuple with its first element in the most significant bits,
        # while a struct layout starts at the least significant: list the fields reversed.
        results = dict(reversed(list(outputs.items())))
        super().__init__({
            "i": In(stream.Signature(self._payload(self.inputs))),
            "o": Out(stream.Signature(self._payload(results))),
        })

    @staticmethod
    def _payload(fields: dict):
        return next(iter(fields.values())) if len(fields) == 1 else data.StructLayout(fields)

    def elaborate(self, platform):
        m = Module()
        depth = self.latency + 2
        m.submodules.results = results = SyncFIFO(
            width=Value.cast(self.o.payload).shape().width, depth=depth)

        accept = self.i.valid & self.i.ready
        result_valid = Signal()
        result = Signal(results.width)
        if len(self.inputs) == 1:
            args = {f"i_{next(iter(self.inputs))}": self.i.payload}
        else:
            args = {f"i_{name}": self.i.payload[name] for name in self.inputs}
        m.submodules.kernel = Instance(
            self.module,
            i_clk=ClockSignal(), i_rst=ResetSignal(), i_i_valid=accept,
            o_o_valid=result_valid, o_out=result, **args,
        )

        in_flight = Signal(range(self.latency + 2))
        m.d.sync += in_flight.eq(in_flight + accept - result_valid)
        m.d.comb += [
            self.i.ready.eq(results.level + in_flight < depth),
            results.w_en.eq(result_valid),
            results.w_data.eq(result),
            self.o.valid.eq(results.r_rdy),
            Value.cast(self.o.payload).eq(results.r_data),
            results.r_en.eq(self.o.ready),
        ]
        return m
