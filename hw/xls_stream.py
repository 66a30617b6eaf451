"""Stream adapter around an XLS pipeline, which has a valid signal but no ready."""

from amaranth.hdl import ClockSignal, Instance, ResetSignal, Signal, Value
from amaranth.lib import data

from hw.credit_stream import CreditStream


def payload(fields: dict):
    """One field's shape as is, several as a struct in the given order."""
    return next(iter(fields.values())) if len(fields) == 1 else data.StructLayout(fields)


class XlsStream(CreditStream):
    """An XLS function pipeline with ``lib.stream`` ports and backpressure (see `CreditStream`).

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
    """

    def __init__(self, module: str, latency: int, inputs: dict, outputs: dict):
        self.module = module
        self.inputs = dict(inputs)
        # XLS packs a returned tuple with its first element in the most significant bits,
        # while a struct layout starts at the least significant: list the fields reversed.
        super().__init__(latency, payload(self.inputs),
                         payload(dict(reversed(list(outputs.items())))))

    def datapath(self, m, accept):
        result_valid = Signal()
        result = Signal(Value.cast(self.o.payload).shape().width)
        if len(self.inputs) == 1:
            args = {f"i_{next(iter(self.inputs))}": self.i.payload}
        else:
            args = {f"i_{name}": self.i.payload[name] for name in self.inputs}
        m.submodules.kernel = Instance(
            self.module,
            i_clk=ClockSignal(), i_rst=ResetSignal(), i_i_valid=accept,
            o_o_valid=result_valid, o_out=result, **args,
        )
        return result_valid, result
