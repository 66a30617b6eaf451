"""The functional model of the accelerator: it runs a program (docs/isa.md) on a memory image.

Each unit is its `pyref.intmodel` op behind the same streams as the RTL: read ports turn
memory words into beats, units turn a command and its input beats into output beats, write
ports store them. Buffers are unbounded and everything runs as soon as it can, so the model
checks what a program means, not how long it takes: the RTL (`hw/top.py`) must leave the
same words in memory. It also rejects programs the RTL could not run correctly: a read or
write that races a transfer not yet waited for, a ``WAIT`` that could never end, and work
left over at ``END``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from pyref import intmodel, isa
from pyref.config import HardwareConfig
from pyref.isa import Op, ProgramError


@dataclass
class Job:
    """One command a unit ran: what the performance model and the report count."""

    unit: str
    fields: dict
    #: the word address of the CMD that queued it
    pc: int = 0
    #: the MoE unit's routing of this layer (`intmodel.Routing`), for the report
    routing: object = None


@dataclass
class Run:
    """What one program run did."""

    jobs: list = field(default_factory=list)
    words_read: dict = field(default_factory=dict)  # by port
    words_written: dict = field(default_factory=dict)
    #: (pc, port, words) of every READ and WRITE, in order
    transfers: list = field(default_factory=list)
    #: the address of every instruction run, in order
    pcs: list = field(default_factory=list)

    @property
    def instructions(self) -> int:
        return len(self.pcs)


class Machine:
    """Runs programs on ``memory`` (``(words, tile_in)`` 16-bit lanes, changed in place).

    Parameters
    ----------
    hw : HardwareConfig
    memory : numpy array
        The memory image (`pyref.compiler.Image.words`, padded to the memory's size).
    """

    def __init__(self, hw: HardwareConfig, memory: np.ndarray):
        self.hw, self.memory = hw, memory
        self.ports = {p.name: p for p in isa.ports(hw)}
        self.names = list(self.ports)

    # -- streams ---------------------------------------------------------------------------
    def _reset(self):
        self.beats = {n: deque() for n in self.ports}  # read ports: beats for the unit
        self.pending_lanes = {n: np.zeros(0, np.uint16) for n, p in self.ports.items()
                              if p.kind == "write"}
        self.stores = {n: deque() for n, p in self.ports.items() if p.kind == "write"}
        self.cmds = {u: deque() for u in isa.UNITS}
        self.queues = {"gather": deque(), "combine": deque(), "experts": deque()}
        self.combined = []  # the combine's experts so far: (entries, rows)
        self.progress = False
        self.board = isa.Scoreboard()
        self.run_info = Run()

    def _take(self, port: str, n: int) -> np.ndarray:
        q = self.beats[port]
        self.progress |= n > 0
        return np.array([q.popleft() for _ in range(n)])

    def _has(self, port: str, n: int) -> bool:
        return len(self.beats[port]) >= n

    def _emit(self, port: str, beats):
        flat = isa.to_lanes(np.asarray(beats), self.ports[port].value_bits)
        self.pending_lanes[port] = np.concatenate([self.pending_lanes[port], flat])

    # -- units -----------------------------------------------------------------------------
    def _linear(self, c) -> bool:
        t, ci, co = c["tokens"], c["chunks"], c["out_chunks"]
        ti, to = self.hw.tile_in, self.hw.tile_out
        need = {"linear.x": t * ci, "linear.w": co * ci * to, "linear.bias": co * c["bias"]}
        if not all(self._has(p, n) for p, n in need.items()):
            return False
        x = self._take("linear.x", t * ci).reshape(ci, t, ti).transpose(1, 0, 2).reshape(t, -1)
        w = self._take("linear.w", co * ci * to).reshape(co, ci, to, ti)
        w = w.transpose(0, 2, 1, 3).reshape(co * to, ci * ti)
        b = self._take("linear.bias", co).ravel() if c["bias"] else None
        y = intmodel.linear(x, w, b, gelu=bool(c["gelu"]))
        self._emit("linear.o", y.reshape(t, co, to).transpose(1, 0, 2).reshape(-1, to))
        return True

    def _attention(self, c) -> bool:
        if c["flush"]:
            return True  # functionally nothing: rows leave in order either way
        # Each head's keys and values come once; the top replays them in key order.
        t, chunks, width = c["tokens"], c["chunks"], self.hw.attention_width
        ports = ("attention.q", "attention.k", "attention.v")
        if not all(self._has(p, t * chunks) for p in ports):
            return False
        q, k, v = (self._take(p, t * chunks).reshape(t, chunks * width) for p in ports)
        y = intmodel.attention_head(q, k, v, self.hw.parallelism, scale_shift=c["value"])
        self._emit("attention.o", y.reshape(-1, width))
        return True

    def _layernorm(self, c) -> bool:
        t, chunks, lanes = c["tokens"], c["chunks"], self.hw.tile_in
        if not (self._has("layernorm.params", chunks) and self._has("layernorm.i", t * chunks)):
            return False
        params = self._take("layernorm.params", chunks)
        x = self._take("layernorm.i", t * chunks).reshape(t, chunks * lanes)
        y = intmodel.layernorm_coded(x, params[:, :lanes].ravel(), params[:, lanes:].ravel(),
                                     c["value"])
        self._emit("layernorm.o", y.reshape(-1, lanes))
        return True

    def _moe(self, c) -> bool:
        t, experts = c["tokens"], c["value"]
        if not self._has("moe.logits", t * experts):
            return False
        logits = self._take("moe.logits", t * experts).reshape(t, experts)
        routing = intmodel.route_logits(logits, self.hw.top_k)
        entries = intmodel.schedule(routing)
        for i, (e, token, score) in enumerate(entries):
            last = i + 1 == len(entries) or entries[i + 1][0] != e
            final = i + 1 == len(entries)
            self.queues["gather"].append((token, final))
            self.queues["combine"].append((e, token, score, last, final))
        for e in routing.used:
            self.queues["experts"].append((e, len(routing.queues[e])))
        self.run_info.jobs[-1].routing = routing
        return True

    def _layer_entries(self, queue: str):
        """The queue's entries up to the layer's ``final``, or None if it has not come."""
        q = self.queues[queue]
        ends = [i for i, entry in enumerate(q) if entry[-1]]
        return [q.popleft() for _ in range(ends[0] + 1)] if ends else None

    def _gather(self, c) -> bool:
        t, chunks = c["tokens"], c["chunks"]
        ready = any(entry[-1] for entry in self.queues["gather"])
        if not (ready and self._has("gather.i", t * chunks)):
            return False
        rows = self._take("gather.i", t * chunks).reshape(t, chunks, -1)
        entries = self._layer_entries("gather")
        self._emit("gather.o", np.concatenate([rows[token] for token, _ in entries]))
        return True

    def _combine(self, c) -> bool:
        """Each expert's outputs as they come (a chunk of every queued token at a time),
        accumulated; the layer's rows leave after the final expert."""
        t, chunks = c["tokens"], c["chunks"]
        q = self.queues["combine"]
        while True:
            ends = [i for i, entry in enumerate(q) if entry[3]]
            if not ends or not self._has("combine.y", (ends[0] + 1) * chunks):
                return False
            entries = [q.popleft() for _ in range(ends[0] + 1)]
            n = len(entries)
            y = self._take("combine.y", n * chunks).reshape(chunks, n, -1).transpose(1, 0, 2)
            self.combined.append((entries, y.reshape(n, -1)))
            if entries[-1][4]:
                break
        rows = np.concatenate([y for _, y in self.combined])
        entries = [(e, tok, s) for group, _ in self.combined for e, tok, s, _, _ in group]
        self.combined = []
        self._emit("combine.o", intmodel.scatter(t, entries, rows).reshape(t * chunks, -1))
        return True

    def _residual(self) -> bool:
        n = min(len(self.beats["residual.a"]), len(self.beats["residual.b"]))
        if not n:
            return False
        self._emit("residual.o", intmodel.residual(self._take("residual.a", n),
                                                   self._take("residual.b", n)))
        return True

    def _settle(self):
        """Run every unit and write port until nothing can move."""
        units = {"linear": self._linear, "attention": self._attention,
                 "layernorm": self._layernorm, "moe": self._moe, "gather": self._gather,
                 "combine": self._combine}
        moved = True
        while moved:
            self.progress = False
            moved = self._residual()
            for unit, fire in units.items():
                while self.cmds[unit]:
                    cmd, pc = self.cmds[unit][0]
                    self.run_info.jobs.append(Job(unit, cmd, pc))
                    if not fire(cmd):
                        self.run_info.jobs.pop()
                        break
                    self.cmds[unit].popleft()
                    moved = True
            for port in self.stores:
                moved |= self._store(port)
            moved |= self.progress

    def _store(self, port: str) -> bool:
        lanes, stores, tile = self.pending_lanes[port], self.stores[port], self.hw.tile_in
        moved = False
        while stores and len(lanes) >= tile:
            addresses = stores[0]
            n = min(len(addresses), len(lanes) // tile)
            self.memory[addresses[:n]] = lanes[:n * tile].reshape(n, tile)
            lanes, stores[0] = lanes[n * tile:], addresses[n:]
            self.run_info.words_written[port] = self.run_info.words_written.get(port, 0) + n
            if not len(stores[0]):
                stores.popleft()
            moved = True
        self.pending_lanes[port] = lanes
        return moved

    # -- the controller --------------------------------------------------------------------
    def _transfer(self, pc: int, ins, expert) -> None:
        port = self.ports[self.names[ins.target]]
        tokens, offset = 0, 0
        if ins.token_level or ins.per_expert:
            if expert is None:
                raise ProgramError(f"pc {pc}: per-expert or per-token {port.name} outside an "
                                   "EXPERTS body")
            tokens = expert[1]
            offset = expert[0] * expert[2] if ins.per_expert else 0
        d = ins.descriptor()
        addresses = d.addresses(ins.token_level, tokens, offset)
        if addresses.max() >= len(self.memory):
            raise ProgramError(f"pc {pc}: {port.name} reaches word {addresses.max()}, past the "
                               f"memory's {len(self.memory)} words")
        kind = "read" if ins.op is Op.READ else "write"
        if (kind == "read") != (port.kind == "read"):
            raise ProgramError(f"pc {pc}: {ins.op.name} on {port.kind} port {port.name}")
        lo, hi = int(addresses.min()), int(addresses.max())
        racing = self.board.conflicts(port.name, kind, lo, hi)
        if racing:
            raise ProgramError(f"pc {pc}: {ins.op.name} {port.name} of words {lo}..{hi} races "
                               f"{', '.join(sorted(racing))}: WAIT on them first")
        self.board.issue(port.name, kind, lo, hi)
        self.run_info.transfers.append((pc, port.name, len(addresses)))
        if kind == "write":
            self._room(pc, port.name, self.stores[port.name])
        if kind == "read":
            words = self.memory[addresses]
            self.beats[port.name].extend(isa.words_to_beats(self.hw, port, words, d.lanes))
            self.run_info.words_read[port.name] = (self.run_info.words_read.get(port.name, 0)
                                                   + len(addresses))
        else:
            self.stores[port.name].append(addresses)

    def _room(self, pc: int, name: str, queue):
        """The controller stalls while a queue is full (`isa.QUEUE_DEPTH`): it must empty
        with what is already queued, or the program hangs."""
        if len(queue) >= isa.QUEUE_DEPTH:
            self._settle()
            if len(queue) >= isa.QUEUE_DEPTH:
                raise ProgramError(f"pc {pc}: {name}'s queue holds {isa.QUEUE_DEPTH} entries "
                                   "that nothing queued so far lets finish: the controller "
                                   "would wait here forever")

    def _wait(self, pc: int, mask: int):
        self._settle()
        for i, name in enumerate(self.names):
            if not mask >> i & 1:
                continue
            if self.ports[name].kind == "read":
                left, what = len(self.beats[name]), "beats are never taken"
            else:
                left = sum(len(a) for a in self.stores[name])
                what = "words are never produced"
            if left:
                raise ProgramError(f"pc {pc}: WAIT on {name} never ends: {left} {what} by the "
                                   "commands queued so far")
        self.board.wait([n for i, n in enumerate(self.names) if mask >> i & 1])

    def _end(self, pc: int):
        self._settle()
        self._wait(pc, (1 << len(self.names)) - 1)
        left = {**{u: len(q) for u, q in self.cmds.items()}, "combine experts": len(self.combined),
                **{f"{q} queue": len(v) for q, v in self.queues.items()},
                **{p: len(v) for p, v in self.pending_lanes.items()}}
        left = {k: v for k, v in left.items() if v}
        if left:
            raise ProgramError(f"pc {pc}: END with work left over: {left}")

    def run(self, task: int, max_instructions: int = 1_000_000) -> Run:
        """Run the program of ``task`` (from the entry table in word 0)."""
        self._reset()
        table = isa.from_lanes(self.memory[0, :4], 32, signed=False)
        if task not in range(len(table)) or not table[task]:
            raise ProgramError(f"no program for task {task} in the entry table")
        per = isa.INSTRUCTION_BITS // isa.word_bits(self.hw)
        pc, loop = int(table[task]), None  # loop: (start, end, left, expert)
        while True:
            if self.run_info.instructions >= max_instructions:
                raise ProgramError(f"more than {max_instructions} instructions: a loop?")
            ins = isa.instruction_at(self.hw, self.memory, pc)
            self.run_info.pcs.append(pc)
            here, pc = pc, pc + per
            expert = loop[3] if loop else None
            if ins.op is Op.END:
                self._end(here)
                # Fetches: the entry table, then every instruction, a beat of `per` words.
                self.run_info.words_read["fetch"] = (self.run_info.instructions + 1) * per
                return self.run_info
            if ins.op is Op.CMD:
                fields = dict(ins.fields)
                if ins.token_level:
                    if expert is None:
                        raise ProgramError(f"pc {here}: per-token CMD outside an EXPERTS body")
                    fields["tokens"] = expert[1]
                queue = self.cmds[isa.UNITS[ins.target]]
                self._room(here, isa.UNITS[ins.target], queue)
                queue.append((fields, here))
            elif ins.op in (Op.READ, Op.WRITE):
                self._transfer(here, ins, expert)
            elif ins.op is Op.WAIT:
                self._wait(here, ins.fields["ports"])
            elif ins.op is Op.EXPERTS:
                body = ins.fields
                loop = self._next_expert(here, pc, pc + body["body"] * per, body["entries"],
                                         body["expert_stride"])
                if loop is None:
                    pc += body["body"] * per
                continue
            if loop and pc == loop[1]:
                loop = self._next_expert(here, loop[0], loop[1], loop[2] - loop[3][1],
                                         loop[3][2])
                pc = loop[0] if loop else pc

    def _next_expert(self, pc: int, start: int, end: int, left: int, stride: int):
        """The loop's state for the next expert the MoE unit queued, or None when the
        layer's ``left`` entries are done."""
        if left == 0:
            return None
        self._settle()
        if not self.queues["experts"]:
            raise ProgramError(f"pc {pc}: EXPERTS waits for an expert ({left} queue entries "
                               "left) but the MoE unit has none queued")
        expert, tokens = self.queues["experts"].popleft()
        if tokens > left:
            raise ProgramError(f"pc {pc}: expert {expert} has {tokens} entries, more than the "
                               f"{left} left of the EXPERTS count")
        return start, end, left, (expert, tokens, stride)


def memory_of(image, memory_words: int | None = None) -> np.ndarray:
    """A memory of ``memory_words`` words (default the image's) holding ``image``."""
    memory = np.zeros((memory_words or image.memory_words, image.hw.tile_in), dtype=np.uint16)
    memory[:len(image.words)] = image.words
    return memory


def infer(image, patch_codes, task: int, memory: np.ndarray | None = None):
    """Run one image through the machine: its logits (ACT codes) and the `Run`."""
    memory = memory_of(image) if memory is None else memory
    memory[image.patches.base:image.patches.base + image.patches.words] = \
        image.input_words(patch_codes)
    run = Machine(image.hw, memory).run(image.check_task(task))
    return image.output_codes(memory, task), run

