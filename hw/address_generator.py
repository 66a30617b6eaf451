"""The address pattern of a port's descriptor: nested loops of counts and strides."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.memory_port import ADDRESS_BITS
from hw.stream_link import StreamLink
from pyref import isa


def descriptor_layout(address_bits: int = ADDRESS_BITS) -> data.StructLayout:
    """A descriptor: `pyref.isa`'s fields (``lanes`` included).

    The controller sends ``base`` and the strides whole. A port may keep only the
    ``address_bits`` the memory decodes: addresses are sums, so their low bits depend on
    the operands' low bits only, and the memory drops the rest anyway.
    """
    fields = dict(isa.BODIES["descriptor"])
    for name in fields:
        if name == "base" or name.startswith("stride"):
            fields[name] = min(fields[name], address_bits)
    return data.StructLayout(fields)


def connect_descriptors(m: Module, source, sink):
    """Drives descriptor stream ``sink`` from ``source``; a sink of fewer address bits
    keeps the low ones (`descriptor_layout`)."""
    m.d.comb += [sink.valid.eq(source.valid), source.ready.eq(sink.ready),
                 *[sink.payload[name].eq(source.payload[name])
                   for name, _ in sink.payload.shape()]]


class AddressGenerator(wiring.Component):
    """Turns each descriptor into its ``words`` addresses, one per cycle.

    ``base + i0*stride0 + i1*stride1 + i2*stride2`` with ``i0`` fastest; the loops wrap,
    the outermost too, until ``words`` addresses have left (`pyref.isa.Descriptor`). The
    address is built by additions only, one level's partial sum per register, and which
    level steps is chosen from registered flags. Addresses leave through a short queue (a
    `StreamLink` of no stages): whoever takes them sees registers only, and their
    ``ready`` does not reach the loop logic in the same cycle.

    Parameters
    ----------
    address_bits : int
        Bits of the addresses made (`descriptor_layout`).

    Members
    -------
    desc : In(stream.Signature(descriptor_layout(address_bits)))
    o : Out(stream.Signature(StructLayout({"addr": address_bits, "lanes": 8})))
    busy : Out(1)
        A descriptor is being worked through.
    """

    def __init__(self, address_bits: int = ADDRESS_BITS):
        self.address_bits = address_bits
        super().__init__({
            "desc": In(stream.Signature(descriptor_layout(address_bits))),
            "o": Out(stream.Signature(data.StructLayout({"addr": address_bits, "lanes": 8}))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.out = out = StreamLink(self.o.payload.shape(), stages=0)
        wiring.connect(m, out.o, wiring.flipped(self.o))
        step = out.i  # the address being made, into the queue
        d = Signal(descriptor_layout(self.address_bits))
        left = Signal(isa.BODIES["descriptor"]["words"])
        final = Signal()  # the address being made is the descriptor's last
        # Per level: the steps left before it wraps, its count less one to restart from,
        # and whether it is at its end (and starts there), kept beside the count: the
        # step's choice is then a few flags, with no compare in front of it.
        remaining = [Signal(16, name=f"remaining{k}") for k in range(isa.LOOPS)]
        last = [Signal(16, name=f"last{k}") for k in range(isa.LOOPS)]
        at_end = [Signal(name=f"at_end{k}") for k in range(isa.LOOPS)]
        starts_at_end = [Signal(name=f"starts_at_end{k}") for k in range(isa.LOOPS)]
        # partial[k]: base plus the terms of levels k and up (partial[LOOPS] is the base).
        partial = [Signal(self.address_bits, name=f"partial{k}") for k in range(isa.LOOPS)]
        strides = [d[f"stride{k}"] for k in range(isa.LOOPS)]

        def restart(levels):
            return [*[r.eq(t) for r, t in zip(remaining[:levels], last, strict=False)],
                    *[e.eq(s) for e, s in zip(at_end[:levels], starts_at_end, strict=False)]]

        def count_down(k):
            return [remaining[k].eq(remaining[k] - 1), at_end[k].eq(remaining[k] == 1)]

        m.d.comb += [self.busy.eq(step.valid | out.pending), self.desc.ready.eq(~step.valid),
                     step.payload.addr.eq(partial[0]), step.payload.lanes.eq(d.lanes)]
        with m.If(self.desc.valid & self.desc.ready):
            counts = [self.desc.payload[f"count{k}"] for k in range(isa.LOOPS)]
            m.d.sync += [d.eq(self.desc.payload), left.eq(self.desc.payload.words),
                         final.eq(self.desc.payload.words == 1), step.valid.eq(1),
                         *[r.eq(c - 1) for r, c in zip(remaining, counts, strict=True)],
                         *[t.eq(c - 1) for t, c in zip(last, counts, strict=True)],
                         *[e.eq(c == 1) for e, c in zip(at_end, counts, strict=True)],
                         *[e.eq(c == 1) for e, c in zip(starts_at_end, counts, strict=True)],
                         *[p.eq(self.desc.payload.base) for p in partial]]
        with m.If(step.valid & step.ready):
            m.d.sync += [left.eq(left - 1), final.eq(left == 2)]
            with m.If(final):
                m.d.sync += step.valid.eq(0)
            # The innermost level that does not wrap steps; every level below restarts
            # from its new partial sum. All levels wrapping restarts from the base.
            with m.If(~at_end[0]):
                m.d.sync += [*count_down(0), partial[0].eq(partial[0] + strides[0])]
            for k in range(1, isa.LOOPS):
                with m.Elif(~at_end[k]):
                    stepped = partial[k] + strides[k]
                    m.d.sync += [*count_down(k), *restart(k),
                                 *[p.eq(stepped) for p in partial[:k + 1]]]
            with m.Else():
                m.d.sync += [*restart(isa.LOOPS), *[p.eq(d.base) for p in partial]]
        return m
