"""The linear unit's datapath: activation buffer, MAC tile, partial sums, requantisers."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.column_memory import ColumnMemory
from hw.delay import delayed, kept_copies
from hw.mac_array import MacArray, tile_layout
from hw.requant_lanes import RequantLanes
from pyref.formats import ACC, ACT, BIAS


def control_layout(max_tokens: int) -> data.StructLayout:
    """What a slot needs at the sum stage: ``token`` addresses its partial sums, ``first``
    starts them (from the bias when ``bias``), ``last`` sends them to the requantisers."""
    return data.StructLayout({"token": range(max_tokens), "first": 1, "last": 1, "bias": 1,
                              "gelu": 1})


def slot_layout(tile_in: int, depth: int, max_tokens: int) -> data.StructLayout:
    """One cycle's work: an input chunk of one token against the current tile.

    ``x`` is the chunk when it comes from the stream (``from_stream``), otherwise it is read
    from the activation buffer at ``addr``.
    """
    return data.StructLayout({"x": data.ArrayLayout(ACT.shape(), tile_in), "from_stream": 1,
                              "addr": range(depth), "control": control_layout(max_tokens)})


class LinearDatapath(wiring.Component):
    """Lock-step (`hw.xls_pipe.lockstep`): slots in, one row of activations per ``last`` slot.

    Stage 0 writes a streamed chunk into the activation buffer or reads a stored one (the
    buffer registers both on the way in, and the read data at the block RAM's output);
    stage 3 feeds it to the `MacArray`, which reads ``tile`` at stage 4; at stage
    `sum_stage` the tile's dot products join the token's partial sums. ``bias`` is read a
    cycle before, at `bias_stage`.

    Parameters
    ----------
    tile_in, tile_out : int
        MAC tile: inputs by outputs.
    max_tokens, max_chunks : int
        Tokens and input chunks the buffers hold.

    Members
    -------
    i : In(stream.Signature(slot_layout(...), always_ready=True))
    tile : In(tile_layout(tile_out, tile_in))
    bias : In(ArrayLayout(BIAS, tile_out))
    o : Out(stream.Signature(ArrayLayout(ACT, tile_out), always_ready=True))
    """

    #: Cycles from a slot's entry to the stage where the MAC tile reads ``tile``, minus one.
    tile_delay = 3
    #: The activation buffer's columns (block RAMs) per copy of its ports' address: the
    #: buffer spans most of the chip's block RAMs, and one address net to all of them
    #: took 19 ns to route.
    columns_per_copy = 8

    def __init__(self, tile_in: int, tile_out: int, max_tokens: int, max_chunks: int):
        self.depth = max_tokens * max_chunks
        self.mac = MacArray(tile_out, tile_in)
        self.lanes = RequantLanes(tile_out)
        self.sum_stage = self.tile_delay + self.mac.latency
        #: The stage that reads ``bias``: a slot's bias must stay until it has passed.
        self.bias_stage = self.sum_stage - 1
        self.latency = self.sum_stage + self.lanes.latency
        # A chunk is read back in a later pass, never in the cycle it is written.
        self.acts = ColumnMemory(shape=data.ArrayLayout(ACT.shape(), tile_in),
                                 depth=self.depth, collisions_undefined=True,
                                 columns_per_copy=self.columns_per_copy)
        # A token's partial sums are read in its next pass, never in the cycle they are
        # written (see `elaborate`).
        self.sums = ColumnMemory(shape=data.ArrayLayout(ACC.shape(), tile_out),
                                 depth=max_tokens, collisions_undefined=True)
        super().__init__({
            "i": In(stream.Signature(slot_layout(tile_in, self.depth, max_tokens),
                                     always_ready=True)),
            "tile": In(tile_layout(tile_out, tile_in)),
            "bias": In(data.ArrayLayout(BIAS.shape(), tile_out)),
            "o": Out(stream.Signature(data.ArrayLayout(ACT.shape(), tile_out),
                                      always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = self.mac
        m.submodules.lanes = lanes = self.lanes
        m.submodules.acts = self.acts
        m.submodules.sums = self.sums
        slot = self.i.payload

        # -- stage 0: streamed chunks are stored for the tile's other output rows. A stored
        # chunk is next read in a later pass, long after.
        store, load = self.acts.write_port(), self.acts.read_port()
        m.d.comb += [store.en.eq(self.i.valid & slot.from_stream), store.addr.eq(slot.addr),
                     store.data.eq(slot.x), load.addr.eq(slot.addr)]
        stage = self.tile_delay
        stored = delayed(m, load.data, stage - self.acts.read_latency, "stored",
                         reset_less=True)
        m.d.comb += [mac.i.valid.eq(delayed(m, self.i.valid, stage, "valid_mac")),
                     mac.i.payload.eq(Mux(delayed(m, slot.from_stream, stage, "from_stream"),
                                          delayed(m, slot.x, stage, "streamed"), stored)),
                     mac.tile.eq(self.tile)]

        # -- sum stage: start from the bias or zero, or add to the stored partial sums. They
        # are read two cycles ahead and registered at the block RAM's output. A token's next
        # chunk is in the next pass, which cannot start before its tile's rows have loaded
        # (at least tile_delay + 1 cycles): so the read always comes after the write.
        write = self.sums.write_port()
        read = self.sums.read_port()
        ahead = delayed(m, slot.control, self.sum_stage - 2, "ahead")
        at_sum = delayed(m, ahead, 2, "at_sum")
        m.d.comb += read.addr.eq(ahead.token)
        # Each output's start (the bias, zero or the stored sums) is chosen a cycle early
        # into a register, so only the adder stands between the MAC tile and the write.
        # Each choice has its own copy of first and bias: one pair of nets to every bit of
        # every sum crowded the routing around the multipliers.
        starts = kept_copies(m, Cat(ahead.first, ahead.bias), len(self.bias), "starts")
        addends = [Signal(ACC.shape(), name=f"addend{k}", reset_less=True)
                   for k in range(len(self.bias))]
        for k, (start, addend) in enumerate(zip(starts, addends, strict=True)):
            m.d.sync += addend.eq(Mux(start[0], Mux(start[1], self.bias[k], 0), read.data[k]))
        total = [mac.o.payload[k] + addend for k, addend in enumerate(addends)]
        m.d.comb += [
            write.en.eq(mac.o.valid), write.addr.eq(at_sum.token),
            *[write.data[k].eq(t) for k, t in enumerate(total)],
            lanes.i.valid.eq(mac.o.valid & at_sum.last), lanes.i.payload.gelu.eq(at_sum.gelu),
            *[lanes.i.payload.acc[k].eq(t) for k, t in enumerate(total)],
        ]
        wiring.connect(m, lanes.o, wiring.flipped(self.o))
        return m
