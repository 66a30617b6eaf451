"""One memory port shared by many readers and writers, a word at a time."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.delay import delayed, kept_copies
from hw.memory_port import ADDRESS_BITS, request_layout
from hw.port_writer import write_layout
from hw.stream_link import StreamLink


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

    Every request is one word. The clients are spread over the chip, so each reaches the
    arbiter through a `StreamLink` of ``stages`` registers into a queue of its own, and a
    granted request waits in another queue before the port: a client sees only its
    credits, the grant only the queues' heads, and the port only the last queue's head.
    No path in a cycle runs from a client to the arbiter, or through it back or on into
    the port's controller. Requests reach the port in the order they were granted, reads
    and writes alike. A reader's words come back in the order it asked for them, through
    ``stages`` registers of its own; the arbiter keeps the reader of each outstanding
    word in a small FIFO, and readers take their words at once (they ask only when they
    have room). A writer's word goes to the port a cycle after its request does.

    Parameters
    ----------
    word_bits : int
    readers, writers : int
    outstanding : int
        Reads granted but not yet answered, at most.
    stages : int
        Registers between a client and the arbiter, each way.

    Members
    -------
    read : In(stream.Signature(32)).array(readers)
    read_data : Out(stream.Signature(word_bits)).array(readers)
    write : In(stream.Signature(write_layout(word_bits))).array(writers)
    port_read_req, port_write_req : Out(stream.Signature(request_layout()))
    port_read_data : In(stream.Signature(word_bits))
    port_write_data : Out(stream.Signature(word_bits))
    queued : Out(readers + writers)
        A client's link holds requests (readers first, then writers), at the client's
        end: until they are all granted, they may still be overtaken by other clients'.
    busy : Out(1)
        Granted requests, or a write's word, have yet to reach the port.
    """

    def __init__(self, word_bits: int, readers: int, writers: int, outstanding: int = 8,
                 stages: int = 1):
        self.word_bits, self.readers, self.writers = word_bits, readers, writers
        self.outstanding, self.stages = outstanding, stages
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

        links = []
        for k, c in enumerate(clients):
            m.submodules[f"client{k}"] = link = StreamLink(c.payload.shape(), self.stages)
            wiring.connect(m, wiring.flipped(c), link.i)
            links.append(link)
        m.d.comb += self.queued.eq(Cat(link.pending for link in links))
        heads = [link.o for link in links]
        reads, writes = heads[:self.readers], heads[self.readers:]
        written = [w.payload for w in writes]

        # Round robin over one-hot vectors: the lowest client asking above the last one
        # granted, else the lowest asking. Two carry chains, not a priority mux chain.
        # A read may ask only while its tag has room.
        asking = Signal(n)
        m.d.comb += asking.eq(Cat(*(q.valid & tags.w_rdy for q in reads),
                                  *(q.valid for q in writes)))
        above = Signal(n)  # the clients after the last one granted
        after_last = _lowest(asking & above)
        grant = Signal(n)
        m.d.comb += grant.eq(Mux(after_last != 0, after_last, _lowest(asking)))
        take = grant.any() & queue.w_rdy
        with m.If(take):
            m.d.sync += above.eq(~((grant << 1) - 1)[:n])
        m.d.comb += [q.ready.eq(grant[k] & queue.w_rdy) for k, q in enumerate(heads)]

        entry = Signal(granted_layout)
        m.d.comb += [
            entry.read.eq(grant[:self.readers].any()),
            entry.addr.eq(_pick(grant, [q.payload for q in reads] + [w.addr for w in written])),
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

        # Read words go back to whoever asked, through registers of each reader's own:
        # copies of the word kept apart, so each can sit on the way to its reader.
        m.d.comb += [self.port_read_data.ready.eq(1), tags.r_en.eq(self.port_read_data.valid)]
        answer = self.port_read_data
        for k, c in enumerate(self.read_data):
            word = answer.payload
            for stage in range(self.stages):
                [word] = kept_copies(m, word, 1, f"reader{k}_word{stage}", reset_less=True)
            m.d.comb += [c.payload.eq(word),
                         c.valid.eq(delayed(m, answer.valid & (tags.r_data == k), self.stages,
                                            name=f"reader{k}_valid"))]
        return m
