"""The whole accelerator: the controller, the compute units, their ports and the memory."""

from fractions import Fraction

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.address_generator import connect_descriptors, descriptor_layout, port_descriptor_layout
from hw.attention import AttentionUnit
from hw.controller import Controller, command_layout, expert_layout
from hw.delay import delayed
from hw.expert_combine import ExpertCombine
from hw.key_steps import KeySteps
from hw.layernorm_unit import LayerNormUnit
from hw.linear import LinearUnit
from hw.memory_arbiter import MemoryArbiter
from hw.memory_port import MemoryPort
from hw.moe import MoeUnit
from hw.port_reader import PortReader
from hw.port_writer import PortWriter
from hw.residual import ResidualAdd
from hw.sdram_port import SdramPort, pins_signature
from hw.skid_buffer import SkidBuffer
from hw.stream_link import StreamLink
from hw.token_gather import TokenGather
from pyref import isa
from pyref.config import ConfigError, HardwareConfig
from pyref.sdram import Sdram

#: Beats a descriptor crosses the chip in: descriptors are few (a handful per layer and
#: port), and their links are the widest, so each carries a quarter of the wires.
DESCRIPTOR_BEATS = 4
#: Registers on a descriptor link's way: the controller's one descriptor register feeds
#: every port's link, and with one register the placer set a link's beat selection and
#: register by its far queue, 25 rows from the controller.
DESCRIPTOR_STAGES = 2

#: Registers each way on the host's links (see `Accelerator.elaborate`).
HOST_LINK_STAGES = 2

#: Fields of a unit's command that a ``CMD`` holds under another name (docs/isa.md).
COMMAND_FIELDS = {"linear": {"in_chunks": "chunks"}, "attention": {"scale_shift": "value"},
                  "layernorm": {"eps": "value"}, "moe": {"experts": "value"}}


class Accelerator(wiring.Component):
    """The accelerator of parameter set ``hw`` with ``memory_words`` words of memory: a
    simulation model (`hw.memory_port.MemoryPort`), or the SDRAM chip ``sdram`` behind
    `hw.sdram_port.SdramPort`, whose pins are then ``sdram``.

    Every unit's stream to or from memory is a port (`pyref.isa.ports`): a `PortReader` or
    `PortWriter` fed with descriptors by the `Controller`. All of them, the controller's
    instruction fetch and the host share one `MemoryPort` through a `MemoryArbiter`. The
    MoE unit's queue entries go straight to the gather, the combine and the controller.

    The host loads the memory image, the program included, through its own two ports
    (``host_write_desc`` and ``host_write``, ``host_read_desc`` and ``host_read``: a
    descriptor, then the words), then starts a task on ``start``; ``busy`` falls when the
    task's program has ended.

    Members
    -------
    start : In(stream.Signature(8))
    busy : Out(1)
    pc : Out(32)
        The controller's instruction address, and which ports are busy: where a run is.
    ports_busy : Out(ports)
    host_read_desc, host_write_desc : In(stream.Signature(descriptor_layout()))
    host_read : Out(stream.Signature(word_bits))
    host_write : In(stream.Signature(word_bits))
    host_busy : Out(1)
        The host's transfers have not all reached the memory port.
    read_bytes, write_bytes : Out(48)
    memory_ready : Out(1)
        The memory serves requests (the SDRAM is initialised).
    sdram : Out(hw.sdram_port.pins_signature(sdram)), with ``sdram`` only
    """

    def __init__(self, hw: HardwareConfig, memory_words: int, sdram: Sdram | None = None):
        self.hw, self.memory_words, self.sdram_chip = hw, memory_words, sdram
        self.word_bits = isa.word_bits(hw)
        if sdram is not None and memory_words != sdram.words(self.word_bits):
            raise ConfigError(f"memory_words={memory_words}, but the {sdram.name} holds "
                              f"{sdram.words(self.word_bits)} words of {self.word_bits} bits")
        self.per = isa.INSTRUCTION_BITS // self.word_bits
        chunks = -(-hw.max_dim // hw.tile_in)
        self.units = {
            "linear": LinearUnit(hw),
            "attention": AttentionUnit(hw, hw.max_head_dim),
            "layernorm": LayerNormUnit(hw.tile_in, hw.max_tokens, chunks),
            "moe": MoeUnit(hw.max_experts, hw.top_k, hw.max_tokens),
            "gather": TokenGather(hw.tile_in, hw.max_tokens, chunks),
            "combine": ExpertCombine(hw.tile_out, hw.max_tokens, chunks),
            "residual": ResidualAdd(hw.tile_in),
        }
        self.ports = isa.ports(hw)
        super().__init__({
            "start": In(stream.Signature(8)),
            "busy": Out(1),
            "pc": Out(32), "ports_busy": Out(len(self.ports)),
            "host_read_desc": In(stream.Signature(descriptor_layout())),
            "host_read": Out(stream.Signature(self.word_bits)),
            "host_write_desc": In(stream.Signature(descriptor_layout())),
            "host_write": In(stream.Signature(self.word_bits)),
            "host_busy": Out(1),
            "read_bytes": Out(48), "write_bytes": Out(48), "memory_ready": Out(1),
            **({"sdram": Out(pins_signature(sdram))} if sdram is not None else {}),
        })

    def elaborate(self, platform):
        m = Module()
        hw, word = self.hw, self.word_bits
        for name, unit in self.units.items():
            m.submodules[name] = unit
        ports = self.ports
        # Ports, links and the arbiter carry only the address bits the memory decodes.
        address_bits = max(1, (self.memory_words - 1).bit_length())
        m.submodules.controller = controller = Controller(
            self.per, len(isa.UNITS), len(ports), hw.max_experts, hw.max_tokens, address_bits)
        if self.sdram_chip is None:
            memory = MemoryPort(word, self.memory_words, Fraction(1), verilog_model=True)
            m.d.comb += self.memory_ready.eq(1)
        else:
            memory = SdramPort(word, self.sdram_chip)
            wiring.connect(m, memory.pins, wiring.flipped(self.sdram))
            # To the host's end of the chip, a cycle late: it rises once and stays.
            m.d.comb += self.memory_ready.eq(delayed(m, memory.ready, 1, name="memory_ready"))
        m.submodules.memory = memory
        readers = [p for p in ports if p.kind == "read"]
        writers = [p for p in ports if p.kind == "write"]
        # Readers: the units', the instruction fetch, the host's; writers: the units', the
        # host's. A group arbiter per unit, beside its ports; one for the fetch and the host.
        clients = [p.name.split(".")[0] for p in readers] + ["control"] * 2 + [
            p.name.split(".")[0] for p in writers] + ["control"]
        owners = list(dict.fromkeys(clients))
        groups = [[k for k, c in enumerate(clients) if c == owner] for owner in owners]
        m.submodules.arbiter = arbiter = MemoryArbiter(
            word, len(readers) + 2, len(writers) + 1, groups=groups, address_bits=address_bits)
        wiring.connect(m, arbiter.port_read_req, memory.read_req)
        wiring.connect(m, memory.read_data, arbiter.port_read_data)
        wiring.connect(m, arbiter.port_write_req, memory.write_req)
        wiring.connect(m, arbiter.port_write_data, memory.write_data)
        m.d.comb += [self.read_bytes.eq(memory.read_bytes),
                     self.write_bytes.eq(memory.write_bytes)]

        # Where a taker's decision is deep logic (the attention and linear units' issue, a
        # gather's take of a step), a skid buffer keeps it off the registers of what feeds
        # it: a far queue's head, a replay's counters.
        def skid_before(sink, name: str):
            m.submodules[f"{name}_skid"] = skid = SkidBuffer(sink.payload.shape())
            wiring.connect(m, skid.o, sink)
            return skid.i

        # Keys and values come from memory once per head, into a gather each, and are
        # replayed in the attention unit's key order (`KeySteps`): the attention unit reads
        # a key and a value row per step, which on the edge-moe set is two words per cycle.
        attention = self.units["attention"]
        replays = {}
        for name in ("k", "v"):
            rows = TokenGather(hw.attention_width, hw.max_tokens,
                               -(-hw.max_head_dim // hw.attention_width))
            steps = KeySteps(hw.parallelism, hw.max_tokens)
            m.submodules[f"{name}_rows"], m.submodules[f"{name}_steps"] = rows, steps
            wiring.connect(m, steps.o, skid_before(rows.queue, f"{name}_step"))
            wiring.connect(m, rows.o, skid_before(getattr(attention, name), f"attention_{name}"))
            replays[name] = (rows, steps)
        inputs = {f"attention.{name}": rows.i for name, (rows, _) in replays.items()}
        for name in ("attention.q", "linear.x", "linear.w", "linear.bias"):
            unit, stream_name = name.split(".")
            inputs[name] = skid_before(getattr(self.units[unit], stream_name),
                                       f"{unit}_{stream_name}")

        # A port sits by its group arbiter, its unit elsewhere: the beats between them
        # cross through a link.
        busy = []
        for index, port in enumerate(ports):
            unit, stream_name = port.name.split(".")
            label = f"{unit}_{stream_name}"
            m.submodules[f"{label}_beats"] = beats = StreamLink(port.beat_bits)
            if port.kind == "read":
                engine = PortReader(word, port.beat_bits, address_bits=address_bits)
                client = readers.index(port)
                wiring.connect(m, engine.req, arbiter.read[client])
                wiring.connect(m, arbiter.read_data[client], engine.data)
                wiring.connect(m, engine.o, beats.i)
                source, sink = beats.o, inputs.get(port.name,
                                                   getattr(self.units[unit], stream_name))
            else:
                engine = PortWriter(word, port.beat_bits, address_bits)
                k = writers.index(port)
                client = arbiter.readers + k
                wiring.connect(m, engine.req, arbiter.write[k])
                wiring.connect(m, beats.o, engine.i)
                source, sink = getattr(self.units[unit], stream_name), beats.i
            m.d.comb += [sink.valid.eq(source.valid), sink.payload.eq(source.payload),
                         source.ready.eq(sink.ready)]
            m.submodules[label] = engine
            m.submodules[f"{label}_queue"] = queue = StreamLink(
                port_descriptor_layout(address_bits), DESCRIPTOR_STAGES,
                depth=isa.QUEUE_DEPTH * DESCRIPTOR_BEATS, beats=DESCRIPTOR_BEATS)
            wiring.connect(m, controller.desc[index], queue.i)
            wiring.connect(m, queue.o, engine.desc)
            # A port is idle once the arbiter's root has granted its requests: the memory
            # then serves them in order, ahead of any later request. The port's
            # own part comes to the controller a cycle late (the ports are far from it);
            # its queue's part covers that cycle, as the queue's credit for a descriptor
            # comes back no sooner than the port shows it busy.
            busy.append(queue.pending | delayed(m, engine.busy | arbiter.queued[client], 1,
                                                name=f"{label}_busy"))
        # The ports' flags reach the controller a cycle later still, from a register by it
        # (the ports spread over the chip): a WAIT or END is looked at no sooner than four
        # cycles after the last descriptor went (next, fetch, decode, execute), which its
        # queue shows pending from the cycle after.
        m.d.comb += [controller.port_busy.eq(delayed(m, Cat(*busy), 1, name="ports_busy_late")),
                     self.ports_busy.eq(Cat(*busy)),
                     controller.memory_busy.eq(delayed(m, arbiter.busy, 1, name="memory_busy")),
                     self.pc.eq(controller.pc)]

        # The controller's commands, queued per unit and renamed to each unit's fields.
        for index, name in enumerate(isa.UNITS):
            queue = StreamLink(command_layout(), depth=isa.QUEUE_DEPTH)
            m.submodules[f"{name}_commands"] = queue
            wiring.connect(m, controller.cmd[index], queue.i)
            cmd = self.units[name].cmd
            fields = queue.o.payload
            rename = COMMAND_FIELDS.get(name, {})
            # An attention head also goes to its key and value replays (a flush does not).
            # Each takes it when it can (their streams keep them in step): a taker's valid
            # waits on no other's ready, and the command leaves the queue once all have it.
            followers = ([f.cmd for pair in replays.values() for f in pair]
                         if name == "attention" else [])
            if followers:
                wanted = Cat(1, *[~fields.flush for _ in followers])
                given = Signal(len(wanted), name=f"{name}_given")  # takers that have it
                takers = [cmd, *followers]
                took = Cat(t.valid & t.ready for t in takers)
                done = (given | took | ~wanted).all()
                m.d.comb += [*[t.valid.eq(queue.o.valid & wanted[k] & ~given[k])
                               for k, t in enumerate(takers)], queue.o.ready.eq(done)]
                m.d.sync += given.eq(Mux(done, 0, given | took))
            else:
                m.d.comb += [cmd.valid.eq(queue.o.valid), queue.o.ready.eq(cmd.ready)]
            for follower in followers:
                m.d.comb += follower.payload.tokens.eq(fields.tokens)
                if "chunks" in follower.payload.shape().members:
                    m.d.comb += follower.payload.chunks.eq(fields.chunks)
            for field_name, _ in cmd.payload.shape():
                m.d.comb += cmd.payload[field_name].eq(fields[rename.get(field_name, field_name)])

        # Instruction fetch and the host, after the units' ports on the arbiter.
        fetch_client, host_read_client = len(readers), len(readers) + 1
        host_write_client = len(writers)
        m.submodules.fetch = fetch = PortReader(word, isa.INSTRUCTION_BITS,
                                                address_bits=address_bits)
        wiring.connect(m, controller.fetch_desc, fetch.desc)
        wiring.connect(m, fetch.o, controller.fetch)
        wiring.connect(m, fetch.req, arbiter.read[fetch_client])
        wiring.connect(m, arbiter.read_data[fetch_client], fetch.data)
        m.submodules.host_reader = host_reader = PortReader(word, word,
                                                            address_bits=address_bits)
        m.submodules.host_writer = host_writer = PortWriter(word, word, address_bits)
        wiring.connect(m, host_reader.req, arbiter.read[host_read_client])
        wiring.connect(m, arbiter.read_data[host_read_client], host_reader.data)
        wiring.connect(m, host_writer.req, arbiter.write[host_write_client])
        # The host's streams cross the chip through links, two registers each way: the
        # host's end is the UART's corner of the chip, and with one register a link's
        # credit counter sits halfway between its ends, out of the host's reach in a
        # cycle. What a link holds counts as busy at the host's end until the far end
        # shows it (a cycle late): its credit comes back no sooner.
        inward = {"host_read_desc": host_reader.desc, "host_write_desc": host_writer.desc,
                  "host_write": host_writer.i, "start": controller.start}
        links = {}
        for name, sink in inward.items():
            descriptors = name.endswith("_desc")
            beats = DESCRIPTOR_BEATS if descriptors else 1
            m.submodules[f"{name}_link"] = links[name] = link = StreamLink(
                sink.payload.shape(), HOST_LINK_STAGES, isa.QUEUE_DEPTH * beats, beats)
            if descriptors:
                connect_descriptors(m, getattr(self, name), link.i)
            else:
                wiring.connect(m, wiring.flipped(getattr(self, name)), link.i)
            wiring.connect(m, link.o, sink)
        m.submodules.host_read_link = host_read = StreamLink(word, HOST_LINK_STAGES,
                                                             isa.QUEUE_DEPTH)
        wiring.connect(m, host_reader.o, host_read.i)
        wiring.connect(m, host_read.o, wiring.flipped(self.host_read))
        # The host loads while no task runs, so the arbiter's traffic is then the host's:
        # once it has all reached the port, the host's words are in memory.
        far = delayed(m, host_reader.busy | host_writer.busy | arbiter.busy
                      | arbiter.queued[host_read_client]
                      | arbiter.queued[arbiter.readers + host_write_client], 1, name="host_far")
        m.d.comb += [
            self.host_busy.eq(Cat(links[n].pending for n in inward if n != "start").any()
                              | far),
            self.busy.eq(links["start"].pending | delayed(m, controller.busy, 1, name="running"))]

        # The MoE unit's entries: to the gather, to the combine, and each expert's first
        # to the controller. The queues hold a whole layer, so the MoE unit never waits; their
        # heads are registers, so what takes an entry sees no level compare.
        moe, gather, combine = (self.units[n] for n in ("moe", "gather", "combine"))
        entries = hw.max_tokens * hw.top_k
        queues = {"gather": (gather.queue, entries), "combine": (combine.queue, entries),
                  "experts": (controller.experts, hw.max_experts)}
        fifos = {}
        for name, (sink, depth) in queues.items():
            fifo = SyncFIFOBuffered(width=sink.payload.shape().size, depth=depth)
            m.submodules[f"{name}_entries"] = fifo
            fifos[name] = fifo
            m.d.comb += [sink.valid.eq(fifo.r_rdy), sink.payload.eq(fifo.r_data),
                         fifo.r_en.eq(sink.ready)]
        e = moe.o.payload
        taken = moe.o.valid & moe.o.ready
        m.d.comb += [moe.o.ready.eq(fifos["gather"].w_rdy & fifos["combine"].w_rdy
                                    & fifos["experts"].w_rdy),
                     fifos["gather"].w_en.eq(taken), fifos["combine"].w_en.eq(taken),
                     fifos["experts"].w_en.eq(taken & e.first)]
        for name in ("gather", "combine"):
            view = data.View(queues[name][0].payload.shape(), fifos[name].w_data)
            for field_name, _ in view.shape():
                m.d.comb += view[field_name].eq(e[field_name])
        expert = data.View(expert_layout(hw.max_experts, hw.max_tokens), fifos["experts"].w_data)
        m.d.comb += [expert.expert.eq(e.expert), expert.tokens.eq(e.count)]
        return m
