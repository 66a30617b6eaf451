"""The address pattern of a port's descriptor: nested loops of counts and strides."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.delay import kept_copies
from hw.memory_port import ADDRESS_BITS
from hw.stream_link import StreamLink
from pyref import isa


def descriptor_layout() -> data.StructLayout:
    """A descriptor as the controller and the host send it: `pyref.isa`'s fields."""
    return data.StructLayout(dict(isa.BODIES["descriptor"]))


def port_descriptor_layout(address_bits: int = ADDRESS_BITS) -> data.StructLayout:
    """A descriptor as a port takes it (`port_descriptor`)."""
    body = isa.BODIES["descriptor"]
    return data.StructLayout({
        "base": address_bits, "words": body["words"], "final": 1, "lanes": body["lanes"],
        **{f"{name}{k}": width for k in range(isa.LOOPS)
           for name, width in (("last", body[f"count{k}"]), ("single", 1),
                               ("stride", address_bits))}})


def port_descriptor(desc, address_bits: int = ADDRESS_BITS) -> dict:
    """Descriptor ``desc`` (`pyref.isa`'s fields, as ints or Amaranth values) in a port's
    form: each count less one and whether it is 1, whether ``words`` is 1, and only the
    ``address_bits`` of ``base`` and the strides that the memory decodes.

    A port then loads a descriptor into its loop counters with no arithmetic between its
    queue and them. Addresses are sums, so their low bits need only the operands' low bits.
    """
    mask = (1 << address_bits) - 1
    return {"base": desc["base"] & mask, "words": desc["words"], "final": desc["words"] == 1,
            "lanes": desc["lanes"],
            **{f"{name}{k}": value for k in range(isa.LOOPS)
               for name, value in (("last", desc[f"count{k}"] - 1),
                                   ("single", desc[f"count{k}"] == 1),
                                   ("stride", desc[f"stride{k}"] & mask))}}


def connect_descriptors(m: Module, source, sink):
    """Drives ``sink``, a stream of port descriptors, from ``source``, a stream of
    descriptors (`port_descriptor`)."""
    fields = port_descriptor(source.payload, len(sink.payload.base))
    m.d.comb += [sink.valid.eq(source.valid), source.ready.eq(sink.ready),
                 *[sink.payload[name].eq(value) for name, value in fields.items()]]


class AddressGenerator(wiring.Component):
    """Turns each descriptor into its ``words`` addresses, one per cycle.

    ``base + i0*stride0 + i1*stride1 + i2*stride2`` with ``i0`` fastest; the loops wrap, the
    outermost too, until ``words`` addresses have left (`pyref.isa.Descriptor`). The address
    is built by additions only, one level's partial sum per register, and which level steps
    is chosen from registered flags. A descriptor is taken into a register first and the
    loops start from it a cycle later, so neither the loops' enables nor their loads see the
    queue the descriptor came from; the next one is taken in the cycle after the last
    address leaves (the queue's pop is then a flip-flop's, the descriptor queue may sit
    far away), so descriptors in a row follow each other with two cycles between (and an
    idle generator starts two cycles after a descriptor comes). Addresses leave through a
    `StreamLink` of one stage: whoever takes them sees registers only, their ``ready``
    does not reach the loop logic in the same cycle, and the loop logic may sit far from
    the taker (the arbiter), with a register on the way each way.

    Parameters
    ----------
    address_bits : int
        Bits of the addresses made (`port_descriptor`).

    Members
    -------
    desc : In(stream.Signature(port_descriptor_layout(address_bits)))
    o : Out(stream.Signature(StructLayout({"addr": address_bits, "lanes": 8})))
    busy : Out(1)
        A descriptor is being worked through.
    """

    def __init__(self, address_bits: int = ADDRESS_BITS):
        self.address_bits = address_bits
        super().__init__({
            "desc": In(stream.Signature(port_descriptor_layout(address_bits))),
            "o": Out(stream.Signature(data.StructLayout({
                "addr": address_bits, "lanes": isa.BODIES["descriptor"]["lanes"]}))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.out = out = StreamLink(self.o.payload.shape(), stages=1)
        wiring.connect(m, out.o, wiring.flipped(self.o))
        step = out.i  # the address being made, into the queue
        d = Signal(port_descriptor_layout(self.address_bits))
        holding = Signal()  # d has a descriptor whose last address has not left
        left = Signal.like(d.words)
        final = Signal()  # the address being made is the descriptor's last
        # Per level: the steps left before it wraps, and whether it is at its end, kept
        # beside the count: the step's choice is then a few flags, with no compare in
        # front of it. A level restarts from its count less one, and from its end if
        # that count is 1.
        remaining = [Signal.like(d[f"last{k}"], name=f"remaining{k}") for k in range(isa.LOOPS)]
        at_end = [Signal(name=f"at_end{k}") for k in range(isa.LOOPS)]
        last = [d[f"last{k}"] for k in range(isa.LOOPS)]
        starts_at_end = [d[f"single{k}"] for k in range(isa.LOOPS)]
        # partial[k]: base plus the terms of levels k and up (partial[LOOPS] is the base).
        partial = [Signal(self.address_bits, name=f"partial{k}") for k in range(isa.LOOPS)]
        strides = [d[f"stride{k}"] for k in range(isa.LOOPS)]

        def restart_level(k):
            return [remaining[k].eq(last[k]), at_end[k].eq(starts_at_end[k])]

        def restart(levels):
            return [s for k in range(levels) for s in restart_level(k)]

        def count_down(k):
            return [remaining[k].eq(remaining[k] - 1), at_end[k].eq(remaining[k] == 1)]

        last_leaves = step.valid & final & step.ready
        m.d.comb += [self.busy.eq(holding | out.pending),
                     self.desc.ready.eq(~holding),
                     step.payload.addr.eq(partial[0]), step.payload.lanes.eq(d.lanes)]
        # The loop steps whenever the link has room, with or without an address to make:
        # without one, it only moves registers that the next descriptor loads afresh. So
        # their enable is the link's ready alone, a flip-flop, with no gate in front.
        with m.If(step.ready):
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
        # d was loaded a cycle ago: the loops start from it now. A copy of that flag per
        # loop level and one for the count: each drives a few dozen enables near its own.
        take = self.desc.valid & self.desc.ready
        *level_loaded, count_loaded = kept_copies(m, take, isa.LOOPS + 1, "loaded")
        with m.If(count_loaded):
            m.d.sync += [left.eq(d.words), final.eq(d.final), step.valid.eq(1)]
        for k, loaded in enumerate(level_loaded):
            with m.If(loaded):
                m.d.sync += [*restart_level(k), partial[k].eq(d.base)]
        with m.If(take):
            m.d.sync += [d.eq(self.desc.payload), holding.eq(1)]
        with m.Elif(last_leaves):
            m.d.sync += holding.eq(0)
        return m
