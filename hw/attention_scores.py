"""Attention's scores: each lane's query against the key of the step, chunk by chunk."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from hw.delay import delayed, kept_copies
from hw.mac_array import MacArray
from hw.requant_lanes import RequantLanes
from hw.xls_pipe import lockstep
from pyref.formats import ACC, ACT


def chunk_layout(lanes: int, width: int, max_chunks: int) -> data.StructLayout:
    """One cycle of a key step: chunk ``chunk`` of the key and, for the lane that starts a
    query (``starts``, ``start_lane``), of its query. ``last`` ends the step; ``pre_shift``
    aligns the dot products for the requantiser (see `AttentionScores`)."""
    return data.StructLayout({
        "k": data.ArrayLayout(ACT.shape(), width), "q": data.ArrayLayout(ACT.shape(), width),
        "starts": 1, "start_lane": range(max(lanes, 2)), "chunk": range(max_chunks),
        "last": 1, "pre_shift": range(ACC.frac - 2 * ACT.frac + 1),
    })


class AttentionScores(wiring.Component):
    """Scores ``q·k / sqrt(head_dim)`` of ``lanes`` queries against one key, in lock step.

    Each lane keeps its query in a memory of chunks, written while the query's first step
    goes by; that step uses the arriving chunk directly. A `MacArray` of ``lanes`` rows
    adds ``width`` products per lane per chunk; the chunks' sums accumulate until the step's
    last chunk. The dot product (``2 * ACT.frac`` fraction bits) is shifted left by
    ``pre_shift`` so that the XLS requantiser's fixed shift (``ACC.frac - ACT.frac``) makes
    the ``1/sqrt(head_dim)`` scaled score (`pyref.intmodel.score_shift`): the same rounding,
    since only zeros come in below.

    Parameters
    ----------
    lanes, width, max_chunks : int
        Queries in flight, values per chunk, chunks of the longest row.

    Members
    -------
    i : In(stream.Signature(chunk_layout(...), always_ready=True))
    o : Out(stream.Signature(ArrayLayout(ACT, lanes), always_ready=True))
        One beat per step, after its last chunk.
    """

    def __init__(self, lanes: int, width: int, max_chunks: int):
        self.lanes, self.width = lanes, width
        self.queries = Memory(shape=data.ArrayLayout(data.ArrayLayout(ACT.shape(), width),
                                                     lanes), depth=max_chunks, init=[])
        self.mac = MacArray(lanes, width)
        self.requant = RequantLanes(lanes, gelu=False)
        self.latency = self.mac.latency + 1 + self.requant.latency
        super().__init__(lockstep(chunk_layout(lanes, width, max_chunks),
                                  data.ArrayLayout(ACT.shape(), lanes)))

    def elaborate(self, platform):
        m = Module()
        m.submodules.queries = self.queries
        m.submodules.mac = mac = self.mac
        m.submodules.requant = requant = self.requant
        i = self.i.payload

        store = self.queries.write_port(granularity=1)  # one lane's chunk
        load = self.queries.read_port()
        m.d.comb += [store.addr.eq(i.chunk), load.addr.eq(i.chunk),
                     mac.i.valid.eq(self.i.valid), mac.i.payload.eq(i.k)]
        for j in range(self.lanes):
            m.d.comb += [store.en[j].eq(self.i.valid & i.starts & (i.start_lane == j)),
                         store.data[j].eq(i.q)]
        # The MAC array reads its tile a cycle after the key chunk: the stored chunks by then.
        # Each lane has its own copy of the arriving query and its own flag for whether it
        # starts with it: the lanes' multipliers sit apart.
        arrivals = kept_copies(m, i.q, self.lanes, "arriving")
        for j, arriving in enumerate(arrivals):
            starts = delayed(m, i.starts & (i.start_lane == j), 1, f"starts{j}")
            m.d.comb += mac.tile[j].eq(Mux(starts, arriving, load.data[j]))

        # Per lane, the sum over the step's chunks.
        position = Signal(data.StructLayout({"chunk": i.chunk.shape(), "last": 1,
                                             "pre_shift": i.pre_shift.shape()}))
        m.d.comb += [position.chunk.eq(i.chunk), position.last.eq(i.last),
                     position.pre_shift.eq(i.pre_shift)]
        at_sum = delayed(m, position, mac.latency, "at_sum")
        sums = [Signal(ACC.shape(), name=f"sum{j}") for j in range(self.lanes)]
        for j, total in enumerate(sums):
            step_sum = Mux(at_sum.chunk == 0, 0, total) + mac.o.payload[j]
            with m.If(mac.o.valid):
                m.d.sync += total.eq(step_sum)
        m.d.sync += [requant.i.valid.eq(mac.o.valid & at_sum.last), requant.i.payload.gelu.eq(0)]
        shift = delayed(m, at_sum.pre_shift, 1, "shift")
        for j, total in enumerate(sums):
            m.d.comb += requant.i.payload.acc[j].eq(total << shift)
        wiring.connect(m, requant.o, wiring.flipped(self.o))
        return m
