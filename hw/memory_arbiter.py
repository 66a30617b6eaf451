"""One memory port shared by many readers and writers, a word at a time."""

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.memory_port import ADDRESS_BITS, request_layout
from hw.port_writer import write_layout


def _lowest(bits):
    """The lowest set bit of ``bits``, one-hot (zero when none is set)."""
    return (bits & (~bits + 1))[:len(bits)]


def _pick(grant, values):
    """The one of ``values`` that one-hot ``grant`` selects (zero when none), as a balanced
    OR tree: a chain of ORs over every client would be as deep as there are clients."""
    def tree(items):
        if len(items) == 1:
            return items[0]
        half = len(items) // 2
        return tree(items[:half]) | tree(items[half:])
    return tree([Mux(grant[k], v, 0) for k, v in enumerate(values)])


class MemoryArbiter(wiring.Component):
    """Grants the `MemoryPort` to one client per cycle, round robin.

    Every request is one word. Each client's requests wait in a two-entry queue of its
    own, and a granted request in another before the port: a client sees only its queue's
    room, the grant only the queues' heads, and the port only the last queue's head. So no
    path in a cycle runs from a client through the arbiter and back, or on into the port's
    controller; the clients are spread over the chip, and such paths would cross it
    twice. Requests reach the port in the order they were granted, reads and writes
    alike. A reader's words come back in the order it asked for them; the arbiter keeps
    the reader of each outstanding word in a small FIFO, and readers take their words at
    once (they ask only when they have room). A writer's word goes to the port a cycle
    after its request does.

    Parameters
    ----------
    word_bits : int
    readers, writers : int
    outstanding : int
        Reads granted but not yet answered, at most.

    Members
    -------
    read : In(stream.Signature(32)).array(readers)
    read_data : Out(stream.Signature(word_bits)).array(readers)
    write : In(stream.Signature(write_layout(word_bits))).array(writers)
    port_read_req, port_write_req : Out(stream.Signature(request_layout()))
    port_read_data : In(stream.Signature(word_bits))
    port_write_data : Out(stream.Signature(word_bits))
    queued : Out(readers + writers)
        A client's own queue holds requests (readers first, then writers): until it is
        empty, the client's requests may still be overtaken by other clients'.
    busy : Out(1)
        Granted requests, or a write's word, have yet to reach the port.
    """

    def __init__(self, word_bits: int, readers: int, writers: int, outstanding: int = 8):
        self.word_bits, self.readers, self.writers = word_bits, readers, writers
        self.outstanding = outstanding
        super().__init__({
            "read": In(stream.Signature(32)).array(readers),
            "read_data": Out(stream.Signature(word_bits)).array(readers),
            "write": In(stream.Signature(write_layout(word_bits))).array(writers),
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
        n = len(clients)
        granted_layout = data.StructLayout({"read": 1, "addr": ADDRESS_BITS,
                                            "word": self.word_bits})
        m.submodules.queue = queue = SyncFIFO(width=granted_layout.size, depth=2)
        m.submodules.tags = tags = SyncFIFO(width=max(1, (self.readers - 1).bit_length()),
                                            depth=self.outstanding)

        queues = []
        for k, c in enumerate(clients):
            q = SyncFIFO(width=len(Value.cast(c.payload)), depth=2)
            m.submodules[f"client{k}"] = q
            m.d.comb += [q.w_data.eq(c.payload), q.w_en.eq(c.valid), c.ready.eq(q.w_rdy)]
            queues.append(q)
        m.d.comb += self.queued.eq(Cat(q.r_rdy for q in queues))
        reads, writes = queues[:self.readers], queues[self.readers:]
        written = [write_layout(self.word_bits)(q.r_data) for q in writes]

        # Round robin over one-hot vectors: the lowest client asking above the last one
        # granted, else the lowest asking. Two carry chains, not a priority mux chain.
        # A read may ask only while its tag has room.
        asking = Signal(n)
        m.d.comb += asking.eq(Cat(*(q.r_rdy & tags.w_rdy for q in reads),
                                  *(q.r_rdy for q in writes)))
        above = Signal(n)  # the clients after the last one granted
        after_last = _lowest(asking & above)
        grant = Signal(n)
        m.d.comb += grant.eq(Mux(after_last != 0, after_last, _lowest(asking)))
        take = grant.any() & queue.w_rdy
        with m.If(take):
            m.d.sync += above.eq(~((grant << 1) - 1)[:n])
        m.d.comb += [q.r_en.eq(grant[k] & queue.w_rdy) for k, q in enumerate(queues)]

        entry = Signal(granted_layout)
        m.d.comb += [
            entry.read.eq(grant[:self.readers].any()),
            entry.addr.eq(_pick(grant, [q.r_data for q in reads] + [w.addr for w in written])),
            entry.word.eq(_pick(grant[self.readers:], [w.word for w in written])),
            queue.w_data.eq(entry), queue.w_en.eq(take),
            tags.w_en.eq(take & entry.read),
            tags.w_data.eq(_pick(grant, list(range(self.readers)))),
        ]

        # The queue's head goes to the port.
        head = granted_layout(queue.r_data)
        for req, kind in ((self.port_read_req, head.read), (self.port_write_req, ~head.read)):
            m.d.comb += [req.valid.eq(queue.r_rdy & kind), req.payload.addr.eq(head.addr),
                         req.payload.beats.eq(1)]
        read_taken = self.port_read_req.valid & self.port_read_req.ready
        write_taken = self.port_write_req.valid & self.port_write_req.ready
        m.d.comb += queue.r_en.eq(read_taken | write_taken)
        with m.If(self.port_write_data.ready):
            m.d.sync += self.port_write_data.valid.eq(0)
        with m.If(write_taken):
            m.d.sync += [self.port_write_data.valid.eq(1),
                         self.port_write_data.payload.eq(head.word)]

        m.d.comb += self.busy.eq(queue.r_rdy | self.port_write_data.valid)

        # Read words go back to whoever asked.
        m.d.comb += [self.port_read_data.ready.eq(1), tags.r_en.eq(self.port_read_data.valid)]
        for k, c in enumerate(self.read_data):
            m.d.comb += [c.payload.eq(self.port_read_data.payload),
                         c.valid.eq(self.port_read_data.valid & (tags.r_data == k))]
        return m
