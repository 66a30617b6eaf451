"""The key order of one attention head: which key row each step of the attention unit reads."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.token_gather import queue_layout


class KeySteps(wiring.Component):
    """For a head of ``tokens`` keys, the row of every key step: ``s mod tokens`` for
    ``s`` in ``0 .. steps - 1`` (`pyref.intmodel.attention_schedule`), ``final`` on the
    last.

    Fed to a `TokenGather` that holds the head's key (or value) rows, it replays them in
    the attention unit's order, so each row comes from memory once per head instead of once
    per block of ``parallelism`` queries.

    Parameters
    ----------
    parallelism : int
        The attention unit's P, a power of two.
    max_tokens : int

    Members
    -------
    cmd : In(stream.Signature(StructLayout({"tokens"})))
    o : Out(stream.Signature(queue_layout(max_tokens)))
    """

    def __init__(self, parallelism: int, max_tokens: int):
        if parallelism & (parallelism - 1):
            raise ValueError(f"KeySteps needs a power-of-two parallelism, got {parallelism}")
        self.parallelism, self.max_tokens = parallelism, max_tokens
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({"tokens": range(max_tokens + 1)}))),
            "o": Out(stream.Signature(queue_layout(max_tokens))),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.parallelism
        tokens = Signal(range(self.max_tokens + 1))
        row = Signal(range(self.max_tokens))
        # The steps are `blocks` passes over the rows, then `extra` more rows. The last
        # step is told by two registers compared with two set at the command (no multiply
        # of blocks by tokens: its multiplier would sit wherever one is free).
        passes_left = Signal(range(self.max_tokens + 1))
        last_pass = Signal(range(2))
        last_row = Signal(range(self.max_tokens))
        busy = Signal()
        final = (passes_left == last_pass) & (row == last_row)
        m.d.comb += [self.cmd.ready.eq(~busy), self.o.valid.eq(busy),
                     self.o.payload.token.eq(row), self.o.payload.final.eq(final)]
        with m.If(self.cmd.valid & self.cmd.ready & (self.cmd.payload.tokens != 0)):
            t = self.cmd.payload.tokens
            extra = (t - 1) & (p - 1)
            m.d.sync += [tokens.eq(t), row.eq(0), busy.eq(1),
                         passes_left.eq((t + p - 1) >> (p.bit_length() - 1)),
                         last_pass.eq(extra == 0),
                         last_row.eq(Mux(extra == 0, t - 1, extra - 1))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += row.eq(row + 1)
            with m.If(row == tokens - 1):
                m.d.sync += [row.eq(0), passes_left.eq(passes_left - 1)]
            with m.If(final):
                m.d.sync += busy.eq(0)
        return m
