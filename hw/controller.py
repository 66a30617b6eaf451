"""The controller: fetches a task's program from memory and hands out its instructions."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.address_generator import descriptor_layout, port_descriptor, port_descriptor_layout
from hw.arith import limb_product
from pyref import isa
from pyref.isa import Op


def instruction_layout() -> data.StructLayout:
    """`pyref.isa`'s fields: the header, then the op's body."""
    bodies = {name: data.StructLayout(fields) for name, fields in isa.BODIES.items()}
    return data.StructLayout({**isa.HEADER, "body": data.UnionLayout(bodies)})


def command_layout() -> data.StructLayout:
    """A ``CMD``'s fields, as the top maps them onto each unit's command."""
    return data.StructLayout(dict(isa.BODIES["command"]))


def expert_layout(max_experts: int, max_tokens: int) -> data.StructLayout:
    """A used expert, as the MoE unit's queue announces it: its index and queued tokens."""
    return data.StructLayout({"expert": range(max_experts), "tokens": range(max_tokens + 1)})


class Controller(wiring.Component):
    """Runs a task's program (docs/isa.md) from memory.

    ``start`` takes a task; the controller reads the entry table (word 0), then fetches each
    instruction through ``fetch_desc`` and ``fetch`` (a `PortReader` as wide as an
    instruction; its descriptor, in the ports' form, comes from registers) and hands it out:
    a ``CMD`` to its unit, a ``READ`` or ``WRITE`` descriptor to its port, a ``WAIT`` holds
    until the listed ports are idle. ``EXPERTS`` runs its body once per expert announced on
    ``experts``, with the expert's index and token count put into the body's per-expert and
    per-token fields, until the layer's queue entries are used up. ``END`` waits until every
    port is idle and the memory has taken every request (``memory_busy``); ``busy`` then
    falls.

    Parameters
    ----------
    words_per_instruction : int
    units, ports : int
    max_experts, max_tokens : int
    address_bits : int
        Address bits of the ports' descriptors (`port_descriptor`).

    Members
    -------
    start : In(stream.Signature(8))
    busy : Out(1)
    pc : Out(32)
        The word address of the instruction being run.
    fetch_desc : Out(stream.Signature(port_descriptor_layout(address_bits)))
    fetch : In(stream.Signature(INSTRUCTION_BITS))
    cmd : Out(stream.Signature(command_layout())).array(units)
    desc : Out(stream.Signature(port_descriptor_layout(address_bits))).array(ports)
        A ``READ`` or ``WRITE``'s descriptor, in the ports' form from a register.
    port_busy : In(ports)
    memory_busy : In(1)
    experts : In(stream.Signature(expert_layout(...)))
    """

    def __init__(self, words_per_instruction: int, units: int, ports: int, max_experts: int,
                 max_tokens: int, address_bits: int):
        self.per, self.units, self.ports = words_per_instruction, units, ports
        self.address_bits = address_bits
        super().__init__({
            "start": In(stream.Signature(8)),
            "busy": Out(1),
            "pc": Out(32),
            "fetch_desc": Out(stream.Signature(port_descriptor_layout(address_bits))),
            "fetch": In(stream.Signature(isa.INSTRUCTION_BITS)),
            "cmd": Out(stream.Signature(command_layout())).array(units),
            "desc": Out(stream.Signature(port_descriptor_layout(address_bits))).array(ports),
            "port_busy": In(ports),
            "memory_busy": In(1),
            "experts": In(stream.Signature(expert_layout(max_experts, max_tokens))),
        })

    def elaborate(self, platform):
        m = Module()
        task = Signal(8)
        pc = self.pc
        ins = Signal(instruction_layout())
        # The EXPERTS loop: its body's first and last instructions, the queue entries still
        # to come, and the current expert.
        loop_start = Signal(32)
        loop_last = Signal(32)
        looping = Signal()
        left = Signal(16)
        expert = Signal.like(self.experts.payload)
        stride = Signal(32)
        # The loop's two ends, compared every cycle: pc, the loop's last instruction, the
        # entries left and the expert have all held still for a few cycles by the time
        # "next" reads them (a fetch and a decode at least since pc moved). pc's compare
        # takes two cycles, a byte's in the first.
        same_bytes = Signal(4)
        body_ends = Signal()
        entries_end = Signal()
        m.d.sync += [same_bytes.eq(Cat(pc.word_select(k, 8) == loop_last.word_select(k, 8)
                                       for k in range(4))),
                     body_ends.eq(same_bytes.all()),
                     entries_end.eq(left == expert.tokens)]
        # The descriptor being handed out, made into the ports' form here, once: its
        # register then drives every port's link with no logic on the way (the links'
        # serialisers cut their beats from it).
        desc = Signal(port_descriptor_layout(self.address_bits))
        # The expert's products, pipelined (`limb_product`) from copies of their factors
        # kept for them alone: each partial product is then a MULT18X18D with registers on
        # both sides, not a multiply and an adder in one cycle. Unsigned factors get a 0
        # on top (the product takes a signed one). ``settle`` counts a product's cycles.
        word_factor = Signal(32, reset_less=True)  # a token-level descriptor's words
        # An EXPERTS body's words, and the loop's, worked out at decode: each of the loop's
        # addresses is then pc plus a register.
        body_words = Signal(32, reset_less=True)
        loop_words = Signal(32, reset_less=True)
        # An EXPERTS with no queue entries skips its body: known at decode, so pc's enable
        # in ``execute`` is this flag, not the op's decode and a 16-bit compare.
        skip_loop = Signal(reset_less=True)
        tokens_factor = Signal.like(expert.tokens, reset_less=True)
        index_factor = Signal.like(expert.expert, reset_less=True)
        stride_factor = Signal.like(stride, reset_less=True)
        m.d.sync += [tokens_factor.eq(expert.tokens), index_factor.eq(expert.expert),
                     stride_factor.eq(stride)]
        scaled = limb_product(m, Cat(word_factor, Const(0, 1)), tokens_factor, "scaled_words")
        offset = limb_product(m, Cat(stride_factor, Const(0, 1)), index_factor, "offset")
        settle = Signal(2)
        # Cycles from a factor's register to its product's: its copy, then the product's two.
        product_cycles = 3
        # The instruction's target, one-hot and registered with it: the unit or port
        # handshake is then one AND-OR over the targets, not a chain of compares.
        target = Signal(max(self.units, self.ports))

        # A fetch: the instruction's words from ``pc`` on, or the entry table's from 0. Its
        # valid flag is set as the FSM goes to a fetching state, so the generator's load
        # (and its loops' enables behind it) start at flip-flops, not at the FSM's state
        # decode; ``pc`` is set in the same cycle.
        fetch_valid = Signal()
        entry = Signal(32, reset_less=True)  # the address of the task's program
        fetching_table = Signal()
        fetch_desc = {"base": pc & ~fetching_table.replicate(len(pc)), "words": self.per,
                      "lanes": 0, "count0": self.per, "stride0": 1,
                      **{f"{name}{k}": value for k in range(1, isa.LOOPS)
                         for name, value in (("count", 1), ("stride", 0))}}
        m.d.comb += [self.fetch_desc.valid.eq(fetch_valid),
                     *[self.fetch_desc.payload[name].eq(value) for name, value
                       in port_descriptor(fetch_desc, self.address_bits).items()]]

        def fetch_next(state="fetch"):
            m.d.sync += [fetch_valid.eq(1), fetching_table.eq(state == "table")]
            m.next = state

        with m.If(self.fetch_desc.ready):
            m.d.sync += fetch_valid.eq(0)

        m.d.comb += self.fetch.ready.eq(1)
        body = ins.body
        fetched = ins.shape()(self.fetch.payload[:ins.shape().size])
        for cmd in self.cmd:
            m.d.comb += cmd.payload.eq(body.command)
            with m.If(ins.token_level != 0):
                m.d.comb += cmd.payload.tokens.eq(expert.tokens)
        m.d.comb += [port.payload.eq(desc) for port in self.desc]
        # The instruction's descriptor with the expert's fields put in.
        named = Signal(descriptor_layout())
        m.d.comb += named.eq(body.descriptor)
        with m.If(ins.per_expert):
            m.d.comb += named.base.eq(body.descriptor.base + offset)
        for level in range(isa.LOOPS):
            with m.If(ins.token_level == level + 1):
                m.d.comb += named[f"count{level}"].eq(expert.tokens)
        # The next expert is taken from the queue as soon as there is room for it, into
        # registers of its own: the queue's ready is then a flip-flop, not the FSM's state
        # decode (the queue sits by the MoE unit, across the chip).
        held = Signal()
        held_expert = Signal.like(self.experts.payload, reset_less=True)
        m.d.comb += self.experts.ready.eq(~held)
        with m.If(self.experts.valid & ~held):
            m.d.sync += [held.eq(1), held_expert.eq(self.experts.payload)]
        with m.FSM():
            with m.State("idle"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    m.d.sync += [task.eq(self.start.payload), self.busy.eq(1)]
                    fetch_next("table")
            with m.State("table"):
                with m.If(self.fetch_desc.ready):
                    m.next = "table_wait"
            with m.State("table_wait"):
                # The task's entry goes through a register of its own on its way to pc:
                # the fetch's words and the task's select sit apart from pc's logic.
                m.d.sync += entry.eq(self.fetch.payload.word_select(task, 32))
                with m.If(self.fetch.valid):
                    m.next = "table_entry"
            with m.State("table_entry"):
                m.d.sync += pc.eq(entry)
                fetch_next()
            with m.State("fetch"):
                with m.If(self.fetch_desc.ready):
                    m.next = "decode"
            with m.State("decode"):
                # The instruction's registers take the fetch's payload in every cycle of
                # this state, valid or not: their enable is the state alone, and the cycle
                # the instruction comes leaves them holding it.
                m.d.sync += [ins.eq(self.fetch.payload),
                             target.eq(1 << fetched.target),
                             word_factor.eq(fetched.body.descriptor.words),
                             body_words.eq(fetched.body.experts.body * self.per),
                             loop_words.eq((fetched.body.experts.body + 1) * self.per),
                             skip_loop.eq((fetched.op == Op.EXPERTS)
                                          & (fetched.body.experts.entries == 0))]
                with m.If(self.fetch.valid):
                    m.next = "execute"
            with m.State("execute"):
                # A READ or WRITE's descriptor, with the expert's fields put in, is
                # registered in every cycle of the state, whatever the op: its registers'
                # enable is then the state alone, not the op's decode (only ``transfer``
                # hands it out).
                m.d.sync += [desc[name].eq(value) for name, value
                             in port_descriptor(named, self.address_bits).items()]
                with m.Switch(ins.op):
                    with m.Case(Op.CMD):
                        m.d.comb += [cmd.valid.eq(target[k]) for k, cmd in enumerate(self.cmd)]
                        with m.If(_selected(self.cmd, target)):
                            m.next = "next"
                    with m.Case(Op.READ, Op.WRITE):
                        # A token-level descriptor's words wait for their product.
                        with m.If(ins.token_level != 0):
                            # The word factor was loaded at decode, a cycle ago.
                            m.d.sync += settle.eq(product_cycles - 2)
                            m.next = "scale"
                        with m.Else():
                            m.next = "transfer"
                    with m.Case(Op.WAIT):
                        with m.If((self.port_busy & body.wait.ports) == 0):
                            m.next = "next"
                    with m.Case(Op.EXPERTS):
                        m.d.sync += [loop_start.eq(pc + self.per),
                                     loop_last.eq(pc + body_words),
                                     left.eq(body.experts.entries),
                                     stride.eq(body.experts.expert_stride)]
                        with m.If(skip_loop):
                            m.d.sync += pc.eq(pc + loop_words)
                            fetch_next()
                        with m.Else():
                            m.next = "expert"
                    with m.Case(Op.END):
                        with m.If((self.port_busy == 0) & ~self.memory_busy):
                            m.d.sync += self.busy.eq(0)
                            m.next = "idle"
            with m.State("scale"):
                # The words load in every cycle of the state (an enable from the state
                # alone); the last cycle's, the product's, are the ones handed out.
                words = scaled[:len(desc.words)]
                m.d.sync += [settle.eq(settle - 1),
                             desc.words.eq(words), desc.final.eq(words == 1)]
                with m.If(settle == 0):
                    m.next = "transfer"
            with m.State("transfer"):
                m.d.comb += [port.valid.eq(target[k]) for k, port in enumerate(self.desc)]
                with m.If(_selected(self.desc, target)):
                    m.next = "next"
            with m.State("expert"):
                # Take the next expert, then run the body from its start. As at decode, the
                # registers load in every cycle of the state; the held flag only moves on.
                m.d.sync += [expert.eq(held_expert), looping.eq(1),
                             pc.eq(loop_start), settle.eq(product_cycles - 1)]
                with m.If(held):
                    m.d.sync += held.eq(0)
                    m.next = "expert_offset"
            with m.State("expert_offset"):
                # The body's per-expert bases need the new expert's offset.
                m.d.sync += settle.eq(settle - 1)
                with m.If(settle == 0):
                    fetch_next()
            with m.State("next"):
                after = pc + self.per
                m.d.sync += pc.eq(after)
                with m.If(looping & body_ends):
                    m.d.sync += left.eq(left - expert.tokens)
                    with m.If(entries_end):
                        m.d.sync += looping.eq(0)
                        fetch_next()
                    with m.Else():
                        m.next = "expert"
                with m.Else():
                    fetch_next()
        return m


def _selected(streams, target) -> Signal:
    """The ready of the stream ``target`` (one-hot) picks."""
    return (Cat(s.ready for s in streams) & target[:len(streams)]).any()
