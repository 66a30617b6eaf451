"""One memory port shared by many readers and writers, a word at a time."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.delay import delayed, kept_copies, short_of
from hw.memory_port import ADDRESS_BITS, request_layout
from hw.port_writer import write_layout
from hw.stream_link import StreamLink


def _pick(grant, values):
    """The one of ``values`` that one-hot ``grant`` selects (zero when none), as a balanced
    OR tree: a chain of ORs over every client would be as deep as there are clients."""
    def tree(items):
        if len(items) == 1:
            return items[0]
        half = len(items) // 2
        return tree(items[:half]) | tree(items[half:])
    return tree([Mux(grant[k], v, 0) for k, v in enumerate(values)])


def _round_robin(m: Module, asking, ready, name: str):
    """Round robin over ``asking``, decided a cycle ahead.

    The grant is a register, chosen among the clients asking the cycle before: the
    lowest above the last one chosen, else the lowest (one carry chain over the asking
    clients twice, those above first, not a priority mux chain; the same chain gives
    the clients above the new choice). It is held until used
    (its client asking and ``ready``), so no client is passed over. The grant's logic
    ends at a register, and what it feeds (the pops, the payload's select) starts at one.

    Returns
    -------
    chosen, live : Value
        The registered one-hot grant, and the same while its client still asks.
    """
    n = len(asking)
    above = Signal(n, name=f"{name}_above")  # those after the last one chosen
    chosen = Signal(n, name=f"{name}_chosen")
    live = chosen & asking
    # For the lowest set bit of `both`, `both & negated` is that bit alone and
    # `both ^ negated` every bit above it.
    both = Cat(asking & above, asking)
    negated = (~both + 1)[:2 * n]
    lowest, higher = both & negated, both ^ negated
    following = Signal(n, name=f"{name}_next")
    m.d.comb += following.eq(lowest[:n] | lowest[n:])
    with m.If(~live.any() | ready):
        m.d.sync += chosen.eq(following)
        with m.If(asking.any()):  # as following.any(), without the carry chain
            # A choice among the clients above the last has its higher ones in the lower
            # half; the lowest of all, in the upper half.
            m.d.sync += above.eq(Mux((asking & above).any(), higher[:n], higher[n:]))
    return chosen, live


class MemoryArbiter(wiring.Component):
    """Grants the `MemoryPort` to one client per cycle, round robin in two levels.

    Every request is one word. The clients are spread over the chip, so the arbiter is a
    tree of registered hops. Each client reaches its group's arbiter through a
    `StreamLink` of ``stages`` registers into a queue of its own; the group grants one of
    its queues' heads per cycle into a link to the root, and the root grants one group's
    head per cycle into a last link before the port. Each grant sees only queue heads
    and a link's credits, so no path in a cycle runs from a client to a grant, from one
    grant to the next, or on into the port's controller; a group can sit beside its
    unit's ports. Requests reach the port in the order the root granted them, reads and
    writes alike. A reader's words come back in the order it asked for them, through its
    group's register and ``stages`` registers of its own; the root keeps the reader of
    each outstanding word in a small FIFO, and readers take their words at once (they ask
    only when they have room). A writer's word goes to the port a cycle after its request
    does.

    Parameters
    ----------
    word_bits : int
    readers, writers : int
    outstanding : int
        Reads granted but not yet answered, at most.
    stages : int
        Registers on each hop, each way.
    groups : list of list of int, optional
        The clients of each group arbiter, readers numbered first, then writers; each
        client in one group (default: one group of all).
    address_bits : int
        Address bits the memory decodes, and the requests carry.

    Members
    -------
    read : In(stream.Signature(address_bits)).array(readers)
    read_data : Out(stream.Signature(word_bits)).array(readers)
    write : In(stream.Signature(write_layout(word_bits, address_bits))).array(writers)
    port_read_req, port_write_req : Out(stream.Signature(request_layout()))
    port_read_data : In(stream.Signature(word_bits))
    port_write_data : Out(stream.Signature(word_bits))
    queued : Out(readers + writers)
        A client has requests (readers first, then writers) the root has not granted:
        they may still be overtaken by other clients'.
    busy : Out(1)
        Granted requests, or a write's word, have yet to reach the port.
    """

    def __init__(self, word_bits: int, readers: int, writers: int, outstanding: int = 8,
                 stages: int = 1, groups: list[list[int]] | None = None,
                 address_bits: int = ADDRESS_BITS):
        n = readers + writers
        groups = [list(range(n))] if groups is None else [list(g) for g in groups]
        if sorted(k for g in groups for k in g) != list(range(n)) or not all(groups):
            raise ValueError(f"arbiter groups {groups} must hold each of the {n} clients "
                             "once, and no group may be empty")
        if not 0 < address_bits <= ADDRESS_BITS:
            raise ValueError(f"address_bits={address_bits}: the port takes 1 to "
                             f"{ADDRESS_BITS}")
        self.word_bits, self.readers, self.writers = word_bits, readers, writers
        self.outstanding, self.stages = outstanding, stages
        self.groups, self.address_bits = groups, address_bits
        super().__init__({
            "read": In(stream.Signature(address_bits)).array(readers),
            "read_data": Out(stream.Signature(word_bits)).array(readers),
            "write": In(stream.Signature(write_layout(word_bits, address_bits))).array(writers),
            "port_read_req": Out(stream.Signature(request_layout())),
            "port_read_data": In(stream.Signature(word_bits)),
            "port_write_req": Out(stream.Signature(request_layout())),
            "port_write_data": Out(stream.Signature(word_bits)),
            "queued": Out(readers + writers),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        clients = [*self.read, *self.write]
        n, stages = len(clients), self.stages
        entry_layout = data.StructLayout({
            "read": 1, "client": max(1, (n - 1).bit_length()),
            "addr": self.address_bits, "word": self.word_bits})
        m.submodules.tags = tags = SyncFIFO(width=max(1, (self.readers - 1).bit_length()),
                                            depth=self.outstanding)

        # Each client's requests through its link to its group: a reader's address, a
        # writer's address and word. The group makes them entries (who and which kind are
        # constants there).
        client_links, client_entries = [], []
        for k, c in enumerate(clients):
            m.submodules[f"client{k}"] = link = StreamLink(c.payload.shape(), stages)
            wiring.connect(m, wiring.flipped(c), link.i)
            request = Signal(entry_layout, name=f"client{k}_entry")
            is_read = k < self.readers
            m.d.comb += [request.read.eq(is_read), request.client.eq(k),
                         request.addr.eq(link.o.payload if is_read else link.o.payload.addr)]
            if not is_read:
                m.d.comb += request.word.eq(link.o.payload.word)
            client_links.append(link)
            client_entries.append(request)

        # Group arbiters, each into a link to the root. A client's requests in its group's
        # link are not yet in order with other groups': ``unordered`` counts them (down a
        # cycle late, the safe direction), and ``queued`` covers them.
        unordered = [Signal(range(2 * stages + 5), name=f"unordered{k}") for k in range(n)]
        group_links = []
        for g, members in enumerate(self.groups):
            m.submodules[f"group{g}"] = out = StreamLink(entry_layout, stages)
            queues = [client_links[k].o for k in members]
            chosen, live = _round_robin(m, Cat(q.valid for q in queues), out.i.ready,
                                        f"group{g}")
            m.d.comb += [out.i.valid.eq(live.any()),
                         out.i.payload.eq(_pick(chosen, [client_entries[k].as_value()
                                                         for k in members])),
                         *[q.ready.eq(live[j] & out.i.ready) for j, q in enumerate(queues)]]
            group_links.append(out)

        # The root: one group's head per cycle into the link to the port. A read may go
        # only while its reader's tag has room.
        m.submodules.to_port = to_port = StreamLink(entry_layout, stages)
        group_heads = [link.o for link in group_links]
        tag_room = short_of(m, tags.level, self.outstanding, tags.w_en, tags.r_en, "tag_room")
        chosen, live = _round_robin(
            m, Cat(h.valid & (~h.payload.read | tag_room) for h in group_heads),
            to_port.i.ready, "root")
        entry = Signal(entry_layout)
        take = live.any() & to_port.i.ready
        m.d.comb += [entry.eq(_pick(chosen, [h.payload.as_value() for h in group_heads])),
                     to_port.i.valid.eq(live.any()), to_port.i.payload.eq(entry),
                     tags.w_en.eq(take & entry.read), tags.w_data.eq(entry.client),
                     *[h.ready.eq(live[g] & to_port.i.ready) for g, h in enumerate(group_heads)]]
        # Which client's request went is decoded a cycle after, from registers.
        ordered = delayed(m, take, 1, name="ordered")
        ordered_client = delayed(m, entry.client, 1, name="ordered_client", reset_less=True)
        for k in range(n):
            taken = client_links[k].o.valid & client_links[k].o.ready
            m.d.sync += unordered[k].eq(unordered[k] + taken
                                        - (ordered & (ordered_client == k)))
        m.d.comb += self.queued.eq(Cat(link.pending | (u != 0)
                                       for link, u in zip(client_links, unordered, strict=True)))

        # The link's head goes to the port.
        head = to_port.o
        for req, kind in ((self.port_read_req, head.payload.read),
                          (self.port_write_req, ~head.payload.read)):
            m.d.comb += [req.valid.eq(head.valid & kind), req.payload.addr.eq(head.payload.addr),
                         req.payload.beats.eq(1)]
        read_taken = self.port_read_req.valid & self.port_read_req.ready
        write_taken = self.port_write_req.valid & self.port_write_req.ready
        m.d.comb += head.ready.eq(read_taken | write_taken)
        with m.If(self.port_write_data.ready):
            m.d.sync += self.port_write_data.valid.eq(0)
        with m.If(write_taken):
            m.d.sync += [self.port_write_data.valid.eq(1),
                         self.port_write_data.payload.eq(head.payload.word)]

        m.d.comb += self.busy.eq(to_port.pending | self.port_write_data.valid)

        # Read words go back to whoever asked: first through a copy per group, which can sit
        # on the way to its unit (one register driving every reader across the chip was too
        # slow), then through registers of each reader's own.
        m.d.comb += [self.port_read_data.ready.eq(1), tags.r_en.eq(self.port_read_data.valid)]
        answer = self.port_read_data
        group_words = kept_copies(m, answer.payload, len(self.groups), "group_word",
                                  reset_less=True)
        for g, members in enumerate(self.groups):
            for k in (k for k in members if k < self.readers):
                word = group_words[g]
                for stage in range(stages):
                    [word] = kept_copies(m, word, 1, f"reader{k}_word{stage}", reset_less=True)
                m.d.comb += [self.read_data[k].payload.eq(word),
                             self.read_data[k].valid.eq(delayed(
                                 m, answer.valid & (tags.r_data == k), stages + 1,
                                 name=f"reader{k}_valid"))]
        return m
