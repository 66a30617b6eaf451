"""The unified linear unit: one MAC tile for every linear layer of the model."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.credit_stream import CreditStream
from hw.delay import delayed, kept_copies, wrapping_count
from hw.linear_datapath import LinearDatapath
from hw.weight_tiles import WeightTiles
from pyref.config import HardwareConfig
from pyref.formats import ACT, BIAS, WEIGHT


def command_layout(max_tokens: int, max_chunks: int) -> data.StructLayout:
    """One job: ``tokens`` rows of ``in_chunks`` input chunks to ``out_chunks`` output
    chunks (each at least 1), with or without bias and GELU."""
    return data.StructLayout({"tokens": range(max_tokens + 1), "in_chunks": range(max_chunks + 1),
                              "out_chunks": 16, "bias": 1, "gelu": 1})


class LinearUnit(wiring.Component):
    """``y = requant(x @ W.T + b)`` and optionally GELU, on a ``tile_in`` x ``tile_out`` tile.

    One job per ``cmd`` beat. The loops run output chunk ``o``, input chunk ``i``, token
    ``t``, innermost first: each weight tile is used for every token, and each token's
    partial sums stay on chip until its last input chunk.

    Streams, in order (docs/hardware.md):

    * ``x``: the input, input-chunk-major: chunk 0 of every token, then chunk 1, ... While
      ``o = 0`` it goes straight to the MAC tile, and into a buffer that serves the other
      output chunks, so the input loads while the first outputs compute.
    * ``w``: the tiles for ``o``, then ``i``; a tile is ``tile_out`` rows of ``tile_in``
      weights. The next tile loads while the current one computes (`WeightTiles`).
    * ``bias``: one beat of ``tile_out`` biases per output chunk, only when ``bias`` is set.
    * ``o``: for each output chunk, one beat of ``tile_out`` activations per token.

    Pad inputs and outputs to whole chunks with zeros.

    Parameters
    ----------
    hw : HardwareConfig
        Tile and buffer sizes.

    Members
    -------
    cmd, x, w, bias : In(stream.Signature(...))
    o : Out(stream.Signature(ArrayLayout(ACT, tile_out)))
    """

    def __init__(self, hw: HardwareConfig):
        self.hw = hw
        self.max_chunks = -(-hw.max_inputs // hw.tile_in)
        self.datapath = LinearDatapath(hw.tile_in, hw.tile_out, hw.max_tokens, self.max_chunks)
        self.tiles = WeightTiles(hw.tile_out, hw.tile_in, LinearDatapath.tile_delay)
        self.results = CreditStream(self.datapath, emits=("control", "last"))
        super().__init__({
            "cmd": In(stream.Signature(command_layout(hw.max_tokens, self.max_chunks))),
            "x": In(stream.Signature(data.ArrayLayout(ACT.shape(), hw.tile_in))),
            "w": In(stream.Signature(data.ArrayLayout(WEIGHT.shape(), hw.tile_in))),
            "bias": In(stream.Signature(data.ArrayLayout(BIAS.shape(), hw.tile_out))),
            "o": Out(stream.Signature(data.ArrayLayout(ACT.shape(), hw.tile_out))),
        })

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.hw.peak_macs_per_cycle

    @property
    def latency(self) -> int:
        """Cycles from a token's last input chunk entering to its output leaving."""
        return self.datapath.latency + 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.tiles = tiles = self.tiles
        m.submodules.results = results = self.results
        wiring.connect(m, wiring.flipped(self.w), tiles.w)
        wiring.connect(m, results.o, wiring.flipped(self.o))
        datapath = self.datapath
        m.d.comb += datapath.tile.eq(tiles.tile)

        job = Signal(self.cmd.payload.shape())
        busy = Signal()
        addr = Signal(range(datapath.depth))
        m.d.comb += self.cmd.ready.eq(~busy)
        start = self.cmd.valid & ~busy
        with m.If(start):
            m.d.sync += [job.eq(self.cmd.payload), busy.eq(1), addr.eq(0)]
        # The loop counters, each with registered flags for its first and last value, so
        # the handshake below only combines registers (it reaches far across the unit).
        # The chunk loops step once a pass, and a pass claims a tile, at most every other
        # cycle (`WeightTiles`): their counts step a cycle late, so the handshake reaches
        # only their flags.
        accept = Signal()
        token, pass_start, token_last = wrapping_count(
            m, range(self.hw.max_tokens), start, self.cmd.payload.tokens, accept, "token")
        _, first, last = wrapping_count(m, range(self.max_chunks), start,
                                        self.cmd.payload.in_chunks, accept & token_last,
                                        "in_chunk", late=True)
        _, from_stream, out_last = wrapping_count(m, 16, start, self.cmd.payload.out_chunks,
                                                  accept & token_last & last, "out_chunk",
                                                  late=True)
        needs_bias = pass_start & first & job.bias
        # The bias register is read at its stage: a new bias waits until every slot
        # that started from the old one has passed it. Whether it has is a register beside
        # the age, so the handshake sees a flip-flop, not a compare.
        bias_age = Signal(range(datapath.bias_stage + 1), init=datapath.bias_stage)
        bias_free = Signal(init=1)
        slot = results.i
        m.d.comb += accept.eq(slot.valid & slot.ready)
        m.d.comb += [
            slot.valid.eq(busy & (~from_stream | self.x.valid) & (~pass_start | tiles.ready)
                          & (~needs_bias | (self.bias.valid & bias_free))),
            slot.payload.x.eq(self.x.payload),
            slot.payload.from_stream.eq(from_stream),
            slot.payload.addr.eq(addr),
            slot.payload.control.token.eq(token),
            slot.payload.control.first.eq(first),
            slot.payload.control.last.eq(last),
            slot.payload.control.bias.eq(job.bias),
            slot.payload.control.gelu.eq(job.gelu),
            self.x.ready.eq(accept & from_stream),
            tiles.claim.eq(accept & pass_start),
            self.bias.ready.eq(accept & needs_bias),
        ]
        # A bias beat lands a cycle after its handshake, each output's part on its own copy
        # of the enable: the handshake settles late, and its enable reached every bias bit.
        # The first slot that adds the bias reaches the bias stage long after.
        arrived = delayed(m, self.bias.payload, 1, "bias_arrived", reset_less=True)
        takes = kept_copies(m, self.bias.ready, len(arrived), "bias_taken")
        for lane, taken in enumerate(takes):
            with m.If(taken):
                m.d.sync += datapath.bias[lane].eq(arrived[lane])
        with m.If(accept & first):
            m.d.sync += [bias_age.eq(1), bias_free.eq(datapath.bias_stage == 1)]
        with m.Elif(~bias_free):
            m.d.sync += [bias_age.eq(bias_age + 1),
                         bias_free.eq(bias_age + 1 == datapath.bias_stage)]

        with m.If(accept):
            m.d.sync += addr.eq(addr + 1)
            with m.If(token_last & last):
                m.d.sync += addr.eq(0)
                with m.If(out_last):
                    m.d.sync += busy.eq(0)
        return m
