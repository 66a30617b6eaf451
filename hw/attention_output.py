"""Attention's output accumulators: A·V with the softmax's rescaling, and the late divide."""

from amaranth.hdl import C, Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from hw.arith import limb_product
from hw.attention_softmax import factors_layout
from hw.column_memory import ColumnMemory
from hw.delay import delayed, feed_apart, kept_copies
from hw.kernels import kernel_pipe
from hw.softmax_state import EXPONENT, MANTISSA
from hw.xls_pipe import lockstep
from pyref.formats import ACT, ATTN, PROB


def burst_layout(lanes: int, max_chunks: int, v_depth: int) -> data.StructLayout:
    """One key step for the accumulators: the softmax factors, where the key's value row
    starts in the value buffer, how many chunks a row has, and the lane whose finished query
    leaves (``finalize``, ``final_lane``)."""
    return data.StructLayout({**{n: f.shape for n, f in factors_layout(lanes)},
                              "base": range(v_depth), "chunks": range(max_chunks + 1),
                              "finalize": 1, "final_lane": range(max(lanes, 2))})


class AttentionOutput(wiring.Component):
    """Per lane, ``out = round(out * scale / 2^15) + term * v`` over a value row, chunk by
    chunk; and the finished rows divided by their totals.

    Each step (one key) runs as a burst of one cycle per chunk. Each lane keeps its row
    (`ATTN` codes) in small memories, one per value of a chunk, a chunk per address; a
    chunk's update reads them, makes
    one product per value (``out * power`` when the maximum rose, else ``power * v``: the
    other factor is exactly 1) in registered 17-bit limbs, registered again in the fabric
    (`limb_product`'s ``far``), and writes it back
    `loop_latency` cycles later, so a lane's steps must be at least that far apart. A
    query's first key sets ``out = 2^15 * v``. The lane named by ``finalize`` first sends
    its finished row, chunk by chunk, through `lanes` XLS ``attention_normalise``
    pipelines with the reciprocal its query ended with.

    The value buffer is written by the owner (``v_en, v_addr, v_data``) when a key's chunks
    arrive, and read here at the step's ``base``.

    Parameters
    ----------
    lanes : int
        Queries in flight.
    width : int
        Values per chunk.
    max_chunks : int
        Chunks of the longest row.
    v_depth : int
        Chunks the value buffer holds.

    Members
    -------
    i : In(stream.Signature(burst_layout(...), always_ready=True))
    v_en, v_addr, v_data : In
    o : Out(stream.Signature(ArrayLayout(ACT, width), always_ready=True))
    """

    def __init__(self, lanes: int, width: int, max_chunks: int, v_depth: int):
        self.lanes, self.width, self.max_chunks = lanes, width, max_chunks
        # A key's value row is read by its step, after the scores' pipeline: never in the
        # cycle it is written.
        self.values = ColumnMemory(shape=data.ArrayLayout(ACT.shape(), width), depth=v_depth,
                                   collisions_undefined=True)
        # A memory per lane and value, each addressed from a register of its own: one
        # address for a lane's whole row fanned out to every LUT-RAM by its multipliers.
        self.rows = [[Memory(shape=ATTN.shape(), depth=max_chunks, init=[])
                      for _ in range(width)] for _ in range(lanes)]
        self.normalise = [kernel_pipe("attention_normalise") for _ in range(width)]
        #: Cycles from a lane's chunk's read to its write back: a row's steps must be this
        #: far apart.
        self.loop_latency = 5
        # From a chunk's cycle to its output: B2, then each lane's own input register.
        self.latency = 3 + self.normalise[0].latency
        super().__init__({
            **lockstep(burst_layout(lanes, max_chunks, v_depth),
                       data.ArrayLayout(ACT.shape(), width)).members,
            "v_en": In(1), "v_addr": In(range(v_depth)),
            "v_data": In(data.ArrayLayout(ACT.shape(), width)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.values = self.values
        store = self.values.write_port()
        m.d.comb += [store.en.eq(self.v_en), store.addr.eq(self.v_addr),
                     store.data.eq(self.v_data)]

        # Burst: chunk 0 in the step's own cycle, the rest from a copy of the step.
        held = Signal(self.i.payload.shape())
        chunk = Signal(range(self.max_chunks))
        busy = Signal()
        step = Signal(self.i.payload.shape())
        m.d.comb += step.eq(Mux(self.i.valid, self.i.payload, held))
        now_chunk = Mux(self.i.valid, 0, chunk)
        going = self.i.valid | busy
        with m.If(self.i.valid):
            m.d.sync += [held.eq(self.i.payload), chunk.eq(1),
                         busy.eq(self.i.payload.chunks > 1)]
        with m.Elif(busy):
            m.d.sync += [chunk.eq(chunk + 1), busy.eq(chunk + 1 < held.chunks)]

        # B0 reads the values; B1 has them and reads each lane's chunk; B2 has both (the value
        # buffer's register moves into its block RAM); B3 registers the operands (in the
        # multipliers' input registers); B4 registers the partial products of 17-bit limbs (one
        # multiplier each), B5 copies them near the adders; B6 has their sums, adds the other term
        # (one carry chain), chooses and writes the new chunk back. So a lane's chunk is read at B1
        # and written `loop_latency` later, and a finished row leaves at B2. Both products are made,
        # out * power and power * v, so no choice sits in front of a multiplier.
        # When the maximum rose, round(out * power / 2^15) + 2^15 * v is
        # (out * power + 2^30 * v + 2^14) >> 15, and the added term is v beside a constant.
        load = self.values.read_port()
        m.d.comb += load.addr.eq(step.base + now_chunk)
        b1 = delayed(m, step, 1, "b1")
        b1_valid = delayed(m, going, 1, "b1_valid")
        b1_chunk = delayed(m, now_chunk, 1, "b1_chunk")
        b2 = delayed(m, b1, 1, "b2")
        b2_valid = delayed(m, b1_valid, 1, "b2_valid")
        late = delayed(m, b1, self.loop_latency, "late")
        late_valid = delayed(m, b1_valid, self.loop_latency, "late_valid")
        # Each value's row memory has its own copies of the chunk it reads and writes: the
        # memories sit apart, each by its multipliers.
        memories = self.lanes * self.width
        read_chunks = kept_copies(m, now_chunk, memories, "read_chunk")
        write_chunks = kept_copies(m, delayed(m, b1_chunk, self.loop_latency - 1, "late_chunk"),
                                   memories, "write_chunk")
        v_held = delayed(m, load.data, 1, "v_held", reset_less=True)
        v_b3 = delayed(m, v_held, 1, "v_b3", reset_less=True)
        late_v = delayed(m, v_b3, self.loop_latency - 2, "late_v", reset_less=True)
        one_v = [v << PROB.frac for v in late_v]  # term * v for a term of exactly 1
        round_half = C(1 << (PROB.frac - 1), 2 * PROB.frac)
        one_v_rounded = [Cat(round_half, v).as_signed() for v in late_v]  # 2^30 v + 2^14

        # Reciprocals of the finished queries, per lane, until their rows leave. Set a
        # cycle after the step arrives, as the rows leave a cycle after they are read.
        recips = [Signal(data.StructLayout({"r": MANTISSA, "e": EXPONENT}), name=f"recip{j}")
                  for j in range(self.lanes)]
        with m.If(delayed(m, self.i.valid, 1, "arrived") & b1.ended):
            for j, recip in enumerate(recips):
                with m.If(b1.end_lane == j):
                    m.d.sync += [recip.r.eq(b1.r), recip.e.eq(b1.e)]

        leaving = []
        for j, row in enumerate(self.rows):
            power = delayed(m, b1.power[j], 2, f"power{j}", reset_less=True)
            lane_chunk = []
            for w, memory in enumerate(row):
                m.submodules[f"row{j}_{w}"] = memory
                write = memory.write_port()
                read = memory.read_port(transparent_for=(write,))
                m.d.comb += read.addr.eq(read_chunks[j * self.width + w])
                lane_chunk.append(read.data)
                old = delayed(m, read.data, self.loop_latency - 1, f"old{j}_{w}",
                              reset_less=True)
                operand = delayed(m, read.data, 1, f"operand{j}_{w}", reset_less=True)
                rescaled = limb_product(m, operand, power, f"rescaled{j}_{w}", far=True)
                term = limb_product(m, v_b3[w], power, f"term{j}_{w}", far=True)
                new = Mux(late.flags.first[j], one_v[w],
                          Mux(late.rises[j], (rescaled + one_v_rounded[w]) >> PROB.frac,
                              old + term))
                m.d.comb += [write.en.eq(late_valid & late.flags.active[j]),
                             write.addr.eq(write_chunks[j * self.width + w]),
                             write.data.eq(new)]
            leaving.append(Cat(lane_chunk))

        # The finished row of the finalised lane, divided by its total.
        final = Signal(data.ArrayLayout(ATTN.shape(), self.width))
        recip = Signal(recips[0].shape())
        for j in range(self.lanes):
            with m.If(b2.final_lane == j):
                m.d.comb += [final.eq(leaving[j]), recip.eq(recips[j])]
        for w, normalise in enumerate(self.normalise):
            m.submodules[f"normalise{w}"] = normalise
            inputs = Signal(normalise.i.payload.shape(), name=f"normalise{w}_inputs")
            m.d.comb += [inputs.acc.eq(final[w]), inputs.r.eq(recip.r), inputs.e.eq(recip.e),
                         self.o.payload[w].eq(normalise.o.payload)]
            feed_apart(m, normalise.i, b2_valid & b2.finalize, inputs, f"normalise{w}_fed")
        m.d.comb += self.o.valid.eq(self.normalise[0].o.valid)
        return m
