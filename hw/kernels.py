"""The XLS kernels of `hls.flow` as lock-step pipes and as stream units."""

from amaranth.lib.memory import Memory

from hls import flow
from hw.beside import Beside
from hw.chain import Chain
from hw.credit_stream import CreditStream
from hw.memory_read import MemoryRead
from hw.xls_pipe import XlsPipe
from pyref import approx


def _xls_pipe(kernel: flow.Kernel) -> XlsPipe:
    return XlsPipe(kernel.name, kernel.latency,
                   {n: f.shape() for n, f in kernel.inputs.items()},
                   {n: f.shape() for n, f in kernel.outputs.items()})


def table_read(table: list, index: XlsPipe, finish: XlsPipe) -> MemoryRead:
    """Read neighbouring entries ``low, high = table[addr], table[addr + 1]`` from block RAM,
    between the pipeline that makes ``addr`` and the one that interpolates.

    Each neighbour has its own memory, so each block RAM reads at most 18 bits and can keep
    its output register (see `scripts.netlist`)."""
    neighbours = {"low": table[:-1], "high": table[1:]}
    memories = {name: Memory(shape=finish.i.payload.shape()[name].shape, depth=len(entries),
                             init=entries)
                for name, entries in neighbours.items()}
    return MemoryRead(memories, index.o.payload.shape(), finish.i.payload.shape())


def kernel_pipe(kernel: str):
    """Kernel ``kernel`` in lock step: its pipeline, or the steps of `hls.flow.COMPOSED` in a
    `Chain`. The result has a ``latency``; its ports carry the kernel's inputs and outputs."""
    if kernel not in flow.COMPOSED:
        return _xls_pipe(flow.KERNELS[kernel])
    steps = flow.COMPOSED[kernel]
    parts = {i: _xls_pipe(flow.PARTS[s]) for i, s in enumerate(steps) if s in flow.PARTS}
    pipes = []
    for i, step in enumerate(steps):
        if i in parts:
            pipes.append(parts[i])
            continue
        before, after = parts[i - 1], parts[i + 1]  # a table or kernel sits between parts
        if isinstance(step, flow.Table):
            pipes.append(table_read(getattr(approx, step.name).tolist(), before, after))
        else:
            inner = flow.KERNELS[step]
            pipes.append(Beside(kernel_pipe(step), inner.inputs, inner.outputs,
                                before.o.payload.shape(), after.i.payload.shape()))
    return Chain(*pipes)


def kernel_unit(kernel: str) -> CreditStream:
    """Kernel ``kernel`` with stream ports and backpressure."""
    return CreditStream(kernel_pipe(kernel))
