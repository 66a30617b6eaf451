"""Lock-step pipelines one after another."""

from amaranth.hdl import Module
from amaranth.lib import wiring

from hw.xls_pipe import lockstep


class Chain(wiring.Component):
    """Lock-step pipelines in series, each one's output payload the next one's input.

    Parameters
    ----------
    *pipes : wiring.Component
        Lock-step pipelines (see `hw.xls_pipe.lockstep`), each with a ``latency``.

    Members
    -------
    i : In(stream.Signature(first pipe's input, always_ready=True))
    o : Out(stream.Signature(last pipe's output, always_ready=True))
    """

    def __init__(self, *pipes):
        for before, after in zip(pipes, pipes[1:], strict=False):
            if before.o.payload.shape() != after.i.payload.shape():
                raise ValueError(f"{type(before).__name__} gives {before.o.payload.shape()} "
                                 f"but {type(after).__name__} takes {after.i.payload.shape()}")
        self.pipes = pipes
        self.latency = sum(p.latency for p in pipes)
        super().__init__(lockstep(pipes[0].i.payload.shape(), pipes[-1].o.payload.shape()))

    def elaborate(self, platform):
        m = Module()
        ends = [wiring.flipped(self.i)]
        for index, pipe in enumerate(self.pipes):
            m.submodules[f"stage{index}"] = pipe
            wiring.connect(m, ends[-1], pipe.i)
            ends.append(pipe.o)
        wiring.connect(m, ends[-1], wiring.flipped(self.o))
        return m
