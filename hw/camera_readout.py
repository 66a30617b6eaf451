"""The camera side of the optical I/O unit: intensity codes to signed, scaled, accumulated
ACT outputs (`pyref.optical_io.readout`)."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hw.arith import saturate
from hw.column_memory import ColumnMemory
from pyref.formats import ACT, AMPLITUDE, CAMERA_PIXEL, OPTICAL_ACC, OPTICAL_SCALE
from pyref.optical_io import FIELD_TABLES


def pass_layout(depth: int) -> data.StructLayout:
    """A pass: its signed scale, ``beats`` camera beats, and whether it is the first or the
    last pass of its outputs."""
    return data.StructLayout({"scale": OPTICAL_SCALE.shape(), "beats": unsigned(
        ceil_log2(depth + 1)), "first": 1, "last": 1})


class CameraReadout(wiring.Component):
    """Accumulates up to four passes of camera codes per output, ``lanes`` pixels a beat.

    Each pass starts with a `pass_layout` descriptor and brings ``beats`` camera beats. A
    pixel's field comes from ``detection``'s table (`pyref.optical_io.FIELD_TABLES`),
    times the pass's scale, plus the sum so far (half an output LSB in the first pass). The
    last pass rounds the sum to ACT and sends it out; the others keep it in a
    ``depth``-beat memory. A new pass starts once the one before has left the pipeline, so
    no read meets a pending write (four cycles a pass).

    Parameters
    ----------
    lanes : int
        Camera pixels per beat.
    depth : int
        Most beats in a pass.
    detection : {"homodyne", "direct"}
        The 4f system's detection, which picks the field table.

    Members
    -------
    passes : In(stream.Signature(pass_layout(depth)))
    camera : In(stream.Signature(ArrayLayout(CAMERA_PIXEL, lanes)))
    o : Out(stream.Signature(ArrayLayout(ACT, lanes)))
    """

    def __init__(self, lanes: int, depth: int, detection: str):
        self.lanes, self.depth, self.table = lanes, depth, FIELD_TABLES[detection]
        super().__init__({
            "passes": In(stream.Signature(pass_layout(depth))),
            "camera": In(stream.Signature(data.ArrayLayout(CAMERA_PIXEL.shape(), lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(ACT.shape(), lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        sums = data.ArrayLayout(OPTICAL_ACC.shape(), lanes)
        m.submodules.sums = memory = ColumnMemory(shape=sums, depth=self.depth)
        read, write = memory.read_port(), memory.write_port()

        current = Signal(pass_layout(self.depth))
        running = Signal()
        beat = Signal(range(self.depth + 1))
        # A beat's address and validity through the three stages after it is taken: 1 the
        # table and the sum read arrive, 2 the multiply, 3 the add. The pass's scale and
        # flags stay in `current` until the pipeline is empty.
        valid = [Signal(name=f"valid{s}") for s in (1, 2, 3)]
        addr = [Signal(range(self.depth), name=f"addr{s}") for s in (1, 2, 3)]
        amplitudes = Signal(data.ArrayLayout(AMPLITUDE.shape(), lanes))
        olds2, olds3, products = Signal(sums), Signal(sums), Signal(sums)

        advance = ~self.o.valid | self.o.ready
        take = running & self.camera.valid & advance
        m.d.comb += self.camera.ready.eq(running & advance)
        # The next pass waits for the pipeline to empty: its reads then see every write.
        m.d.comb += self.passes.ready.eq(~running & ~valid[0] & ~valid[1] & ~valid[2])
        with m.If(self.passes.valid & self.passes.ready):
            m.d.sync += [current.eq(self.passes.payload), running.eq(1), beat.eq(0)]
        with m.If(take):
            m.d.sync += beat.eq(beat + 1)
            with m.If(beat + 1 == current.beats):
                m.d.sync += running.eq(0)
        with m.If(advance):
            m.d.sync += [valid[0].eq(take), addr[0].eq(beat)]
            m.d.sync += [v.eq(u) for u, v in zip(valid, valid[1:], strict=False)]
            m.d.sync += [b.eq(a) for a, b in zip(addr, addr[1:], strict=False)]

        m.d.comb += [read.en.eq(advance), read.addr.eq(beat)]
        # The first pass starts each sum at half an output LSB, so the last pass only
        # shifts: round to nearest, ties up, with no add after the sum.
        half = 1 << (OPTICAL_ACC.frac - 1)
        for k in range(lanes):
            table = Memory(shape=AMPLITUDE.shape(), depth=len(self.table),
                           init=[int(v) for v in self.table])
            m.submodules[f"field{k}"] = table
            port = table.read_port(domain="sync")
            m.d.comb += [port.en.eq(advance), port.addr.eq(self.camera.payload[k])]
            with m.If(advance):
                # A register after each block RAM and after the multiply: ECP5's block
                # RAM output (5.6 ns) and multiplier (3.9 ns) leave no room for more.
                m.d.sync += [amplitudes[k].eq(port.data),
                             olds2[k].eq(Mux(current.first, half, read.data[k])),
                             products[k].eq(amplitudes[k] * current.scale),
                             olds3[k].eq(olds2[k])]

        totals = [Signal(OPTICAL_ACC.shape(), name=f"total{k}") for k in range(lanes)]
        for k in range(lanes):
            m.d.comb += [totals[k].eq(olds3[k] + products[k]), write.data[k].eq(totals[k])]
        finished = advance & valid[2]
        m.d.comb += [write.addr.eq(addr[2]), write.en.eq(finished & ~current.last)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(finished & current.last):
            m.d.sync += self.o.valid.eq(1)
            for k in range(lanes):
                m.d.sync += self.o.payload[k].eq(saturate(totals[k] >> OPTICAL_ACC.frac, ACT))
        return m
