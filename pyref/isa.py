"""The accelerator's instruction set: memory words, stream ports, descriptors, instructions.

docs/isa.md explains the machine; this module is its one definition. The compiler
(`pyref.compiler`) writes programs with it, the functional model (`pyref.machine`) runs them,
and the RTL controller (`hw/top.py`) decodes the same fields.

Every unit talks to memory only through *ports*: a read port streams words from memory
into one of a unit's inputs, a write port streams one of a unit's outputs into memory. What
a port moves is described by a `Descriptor` (an address pattern); a unit's work by a
``CMD``. Nothing in the hardware knows the model: the program says what goes where.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from pyref.config import ConfigError, HardwareConfig
from pyref.formats import ACT, BIAS, WEIGHT

#: Bits of one instruction; it takes ``INSTRUCTION_BITS / word_bits`` memory words.
INSTRUCTION_BITS = 256
#: Descriptors a port queues, and commands a unit queues, before the controller waits.
QUEUE_DEPTH = 4
#: Loop levels of a descriptor.
LOOPS = 3
#: Words a read port buffers: enough to cover the memory's round trip (through the
#: arbiter's links) at a word per cycle.
READ_BUFFER_WORDS = 16


class ProgramError(ValueError):
    """A program that cannot run: a bad field, a hazard, or a wait that never ends."""


class Op(enum.IntEnum):
    END = 0  #: wait for every port and unit, then stop
    CMD = 1  #: queue a command for a unit
    READ = 2  #: queue a descriptor on a read port
    WRITE = 3  #: queue a descriptor on a write port
    WAIT = 4  #: wait until the listed ports have finished every queued descriptor
    EXPERTS = 5  #: run the next ``body`` instructions once per expert the MoE unit queues


#: Units that take commands, in the order of the ``target`` field. The residual adder has
#: none: it adds whatever its two read ports bring.
UNITS = ("linear", "attention", "layernorm", "moe", "gather", "combine")


@dataclass(frozen=True)
class Port:
    """A stream between memory and a unit.

    Parameters
    ----------
    name : str
        ``unit.stream``, as in docs/hardware.md.
    kind : str
        ``read`` (memory to unit) or ``write`` (unit to memory).
    value_bits, values : int
        A beat is ``values`` codes of ``value_bits`` bits, value 0 in the low bits.
    """

    name: str
    kind: str
    value_bits: int
    values: int

    @property
    def beat_bits(self) -> int:
        return self.value_bits * self.values


def word_bits(hw: HardwareConfig) -> int:
    """A memory word: one chunk of the linear unit's input (``tile_in`` codes)."""
    return hw.tile_in * ACT.bits


def ports(hw: HardwareConfig) -> list[Port]:
    """Every port of the accelerator, in the order of the ``target`` field."""
    act, row, out = ACT.bits, hw.tile_in, hw.tile_out
    table = [
        Port("linear.x", "read", act, row), Port("linear.w", "read", WEIGHT.bits, row),
        Port("linear.bias", "read", BIAS.bits, out), Port("linear.o", "write", act, out),
        Port("attention.q", "read", act, hw.attention_width),
        Port("attention.k", "read", act, hw.attention_width),
        Port("attention.v", "read", act, hw.attention_width),
        Port("attention.o", "write", act, hw.attention_width),
        # gamma then beta, a chunk of each
        Port("layernorm.params", "read", WEIGHT.bits, 2 * row),
        Port("layernorm.i", "read", act, row), Port("layernorm.o", "write", act, row),
        Port("residual.a", "read", act, row), Port("residual.b", "read", act, row),
        Port("residual.o", "write", act, row),
        Port("moe.logits", "read", act, 1),
        Port("gather.i", "read", act, row), Port("gather.o", "write", act, row),
        Port("combine.y", "read", act, out), Port("combine.o", "write", act, out),
    ]
    bits = word_bits(hw)
    for p in table:
        if bits % p.beat_bits and p.beat_bits % bits:
            raise ConfigError(f"parameter set '{hw.name}': port {p.name} beats of "
                              f"{p.beat_bits} bits do not split or fill {bits}-bit words")
    return table


def port_index(hw: HardwareConfig, name: str) -> int:
    names = [p.name for p in ports(hw)]
    if name not in names:
        raise ProgramError(f"unknown port '{name}': choose from {', '.join(names)}")
    return names.index(name)


# -- fields -------------------------------------------------------------------------------
# Each instruction is these fields, low bits first: the header, then the op's body.

HEADER = {"op": 3, "target": 5, "per_expert": 1, "token_level": 2}
BODIES = {
    # base + i0*stride0 + i1*stride1 + i2*stride2, i0 fastest; the loops wrap until
    # `words` words have moved. Addresses wrap at 2^32, so a stride may be negative.
    "descriptor": {"base": 32, "words": 32, "lanes": 8,
                   **{f"{k}{i}": b for i in range(LOOPS)
                      for k, b in (("count", 16), ("stride", 32))}},
    "command": {"tokens": 16, "chunks": 16, "out_chunks": 16, "bias": 1, "gelu": 1,
                "flush": 1, "value": 32},
    "wait": {"ports": 32},
    "experts": {"body": 8, "entries": 16, "expert_stride": 32},
}
#: The body each op uses.
OP_BODY = {Op.CMD: "command", Op.READ: "descriptor", Op.WRITE: "descriptor",
           Op.WAIT: "wait", Op.EXPERTS: "experts", Op.END: None}

assert all(sum(HEADER.values()) + sum(b.values()) <= INSTRUCTION_BITS for b in BODIES.values())


@dataclass(frozen=True)
class Descriptor:
    """An address pattern: ``words`` word addresses ``base + sum(i_k * stride_k)``.

    Parameters
    ----------
    base : int
    words : int
        Words moved; the loops wrap (the outermost too) until this many have moved. In
        an ``EXPERTS`` body with a ``token_level``, ``words`` counts per token of the
        expert's queue.
    loops : tuple of (count, stride)
        Innermost first, at most `LOOPS`.
    lanes : int
        Read ports whose beats are narrower than a word: beats taken from each word (the
        first ``lanes``); 0 takes them all.
    """

    base: int
    words: int
    loops: tuple = ((1, 1),)
    lanes: int = 0

    def __post_init__(self):
        if not 1 <= len(self.loops) <= LOOPS or any(c < 1 for c, _ in self.loops):
            raise ProgramError(f"descriptor needs 1 to {LOOPS} loops of count >= 1, "
                               f"got {self.loops}")
        if self.words < 1:
            raise ProgramError(f"descriptor moves no words ({self.words})")

    @classmethod
    def contiguous(cls, base: int, words: int, lanes: int = 0) -> Descriptor:
        """``words`` consecutive words (split into two loops past a count's 16 bits)."""
        inner = min(words, 1 << 15)
        return cls(base, words, ((inner, 1), (-(-words // inner), inner)), lanes)

    def fields(self) -> dict:
        loops = list(self.loops) + [(1, 0)] * (LOOPS - len(self.loops))
        return {"base": self.base, "words": self.words, "lanes": self.lanes,
                **{f"count{i}": c for i, (c, _) in enumerate(loops)},
                **{f"stride{i}": s for i, (_, s) in enumerate(loops)}}

    @classmethod
    def from_fields(cls, f: dict) -> Descriptor:
        loops = tuple((f[f"count{i}"], _signed(f[f"stride{i}"], 32)) for i in range(LOOPS))
        return cls(f["base"], f["words"], loops, f["lanes"])

    def addresses(self, token_level: int = 0, tokens: int = 0, offset: int = 0) -> np.ndarray:
        """The word addresses, in order, from ``base + offset``. With ``token_level`` (see
        `Instruction`) that loop counts ``tokens`` and ``words`` counts per token."""
        loops, words = list(self.loops) + [(1, 0)] * (LOOPS - len(self.loops)), self.words
        if token_level:
            loops[token_level - 1] = (tokens, loops[token_level - 1][1])
            words *= tokens
        index = np.zeros(1, dtype=np.int64)
        for count, stride in loops:
            index = (index[None, :] + stride * np.arange(count)[:, None]).ravel()
        index = np.tile(index, -(-words // len(index)))[:words]
        return (self.base + offset + index) & 0xFFFF_FFFF


@dataclass(frozen=True)
class Instruction:
    """One instruction: an op, its target (unit or port index) and its body's fields."""

    op: Op
    target: int = 0
    per_expert: bool = False
    #: In an ``EXPERTS`` body: 0, or 1 + the loop level whose count becomes the expert's
    #: tokens (a ``CMD``: 1, its ``tokens`` field).
    token_level: int = 0
    fields: dict = field(default_factory=dict)
    #: Readable text for listings (not encoded).
    note: str = ""

    def encode(self) -> int:
        values = {"op": int(self.op), "target": self.target, "per_expert": int(self.per_expert),
                  "token_level": self.token_level}
        layout = dict(HEADER)
        body = OP_BODY[self.op]
        if body:
            unknown = set(self.fields) - set(BODIES[body])
            if unknown:
                raise ProgramError(f"{self.op.name}: unknown fields {sorted(unknown)}")
            layout.update(BODIES[body])
            values.update({k: self.fields.get(k, 0) for k in BODIES[body]})
        word, offset = 0, 0
        for name, bits in layout.items():
            value = values[name]
            if name.startswith("stride"):
                value &= (1 << bits) - 1
            if not 0 <= value < 1 << bits:
                raise ProgramError(f"{self.op.name} {self.note}: field {name}={value} does not "
                                   f"fit {bits} bits")
            word |= value << offset
            offset += bits
        return word

    @classmethod
    def decode(cls, word: int) -> Instruction:
        values, offset = {}, 0
        for name, bits in HEADER.items():
            values[name] = (word >> offset) & ((1 << bits) - 1)
            offset += bits
        try:
            op = Op(values["op"])
        except ValueError:
            raise ProgramError(f"unknown opcode {values['op']}") from None
        fields = {}
        if OP_BODY[op]:
            for name, bits in BODIES[OP_BODY[op]].items():
                fields[name] = (word >> offset) & ((1 << bits) - 1)
                offset += bits
        return cls(op, values["target"], bool(values["per_expert"]), values["token_level"],
                   fields)

    def descriptor(self) -> Descriptor:
        return Descriptor.from_fields(self.fields)


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


# -- constructors -------------------------------------------------------------------------

def command(unit: str, per_token: bool = False, note: str = "", **fields) -> Instruction:
    """``CMD`` for ``unit`` (see docs/isa.md for each unit's fields)."""
    if unit not in UNITS:
        raise ProgramError(f"unknown unit '{unit}': choose from {', '.join(UNITS)}")
    return Instruction(Op.CMD, UNITS.index(unit), token_level=int(per_token), fields=fields,
                       note=note or unit)


def transfer(hw: HardwareConfig, port: str, descriptor: Descriptor, per_expert: bool = False,
             token_level: int = 0, note: str = "") -> Instruction:
    """``READ`` or ``WRITE`` (by the port's kind) of ``descriptor`` on ``port``."""
    p = ports(hw)[port_index(hw, port)]
    op = Op.READ if p.kind == "read" else Op.WRITE
    return Instruction(op, port_index(hw, port), per_expert, token_level, descriptor.fields(),
                       note or port)


def wait(hw: HardwareConfig, names) -> Instruction:
    mask = sum(1 << port_index(hw, n) for n in names)
    return Instruction(Op.WAIT, fields={"ports": mask}, note=" ".join(sorted(names)))


def experts(body: int, entries: int, expert_stride: int) -> Instruction:
    return Instruction(Op.EXPERTS, fields={"body": body, "entries": entries,
                                           "expert_stride": expert_stride})


def end() -> Instruction:
    return Instruction(Op.END)


def listing(hw: HardwareConfig, program: list[Instruction]) -> str:
    """The program as text, one instruction per line (what docs/isa.md shows)."""
    names = [p.name for p in ports(hw)]
    lines = []
    for pc, ins in enumerate(program):
        flags = (" [per_expert]" if ins.per_expert else "") + (
            f" [tokens at level {ins.token_level}]" if ins.token_level else "")
        if ins.op is Op.CMD:
            args = " ".join(f"{k}={v}" for k, v in ins.fields.items())
            text = f"CMD   {UNITS[ins.target]:<16} {args}"
        elif ins.op in (Op.READ, Op.WRITE):
            d = ins.descriptor()
            loops = " ".join(f"{c}x{s}" for c, s in d.loops if c > 1 or s)
            text = (f"{ins.op.name:<5} {names[ins.target]:<16} @{d.base} words={d.words} "
                    f"loops={loops or '1'}" + (f" lanes={d.lanes}" if d.lanes else ""))
        elif ins.op is Op.WAIT:
            text = "WAIT  " + " ".join(n for i, n in enumerate(names)
                                       if ins.fields["ports"] >> i & 1)
        elif ins.op is Op.EXPERTS:
            text = (f"EXPERTS body={ins.fields['body']} entries={ins.fields['entries']} "
                    f"expert_stride={ins.fields['expert_stride']}")
        else:
            text = "END"
        lines.append(f"{pc:4d}  {text}{flags}")
    return "\n".join(lines)


# -- words and beats ----------------------------------------------------------------------
# Memory is held as 16-bit lanes, `tile_in` per word (`word_bits`): a code of 16 bits is one
# lane, a 32-bit code two (low half first), and an instruction `INSTRUCTION_BITS / 16`.

LANE_BITS = 16


def to_lanes(codes, bits: int) -> np.ndarray:
    """Integer codes (two's complement) of ``bits`` bits as a flat array of 16-bit lanes."""
    codes = np.asarray(codes, dtype=np.int64).ravel()
    parts = [(codes >> (LANE_BITS * k)) & 0xFFFF for k in range(bits // LANE_BITS)]
    return np.stack(parts, axis=-1).ravel().astype(np.uint16)


def from_lanes(lanes, bits: int, signed: bool = True) -> np.ndarray:
    """The inverse of `to_lanes`."""
    parts = np.asarray(lanes, dtype=np.int64).reshape(-1, bits // LANE_BITS)
    codes = sum(parts[:, k] << (LANE_BITS * k) for k in range(parts.shape[1]))
    if signed:
        codes = np.where(codes >> (bits - 1) & 1, codes - (1 << bits), codes)
    return codes


def beats_to_words(hw: HardwareConfig, port: Port, beats) -> np.ndarray:
    """Beats (``(n, port.values)`` codes) as the words a write port stores: ``(w, tile_in)``
    lanes; beats narrower than a word fill it in order."""
    lanes = to_lanes(np.asarray(beats).reshape(-1, port.values), port.value_bits)
    if lanes.size % hw.tile_in:
        raise ProgramError(f"{port.name}: {len(lanes) * LANE_BITS // port.beat_bits} beats do "
                           f"not fill whole words")
    return lanes.reshape(-1, hw.tile_in)


def words_to_beats(hw: HardwareConfig, port: Port, words, lanes: int = 0) -> np.ndarray:
    """Words (``(w, tile_in)`` lanes) as the beats a read port delivers, ``(n, values)``.
    Beats narrower than a word: the first ``lanes`` of each word (0: all of them)."""
    words = np.asarray(words).reshape(-1, hw.tile_in)
    beat_lanes = port.beat_bits // LANE_BITS
    if beat_lanes < hw.tile_in:
        per_word = hw.tile_in // beat_lanes
        used = lanes or per_word
        if used > per_word:
            raise ProgramError(f"{port.name}: lanes={lanes} but a word holds {per_word} beats")
        words = words.reshape(len(words), per_word, beat_lanes)[:, :used]
    flat = words.ravel()
    if flat.size % beat_lanes:
        raise ProgramError(f"{port.name}: {len(words)} words are not a whole number of beats "
                           f"of {port.beat_bits} bits")
    return from_lanes(flat, port.value_bits).reshape(-1, port.values)


def instruction_words(hw: HardwareConfig, program: list[Instruction]) -> np.ndarray:
    """A program as memory words, ``INSTRUCTION_BITS / word_bits`` per instruction."""
    per = INSTRUCTION_BITS // LANE_BITS
    lanes = [(ins.encode() >> (LANE_BITS * k)) & 0xFFFF for ins in program for k in range(per)]
    return np.array(lanes, dtype=np.uint16).reshape(-1, hw.tile_in)


def instruction_at(hw: HardwareConfig, memory, address: int) -> Instruction:
    """Decode the instruction whose first word is at ``address``."""
    per = INSTRUCTION_BITS // word_bits(hw)
    lanes = np.asarray(memory[address:address + per], dtype=np.int64).ravel()
    return Instruction.decode(sum(int(v) << (LANE_BITS * k) for k, v in enumerate(lanes)))


# -- hazards ------------------------------------------------------------------------------

class Scoreboard:
    """Address ranges of the descriptors issued and not yet waited for, by port.

    A read may not overlap a pending write, and a write may not overlap a pending read
    or write: the program must ``WAIT`` on those ports first. The compiler uses this to
    place its waits; the functional model uses it to reject programs without them.
    """

    def __init__(self):
        self.pending: dict[str, list[tuple[str, int, int]]] = {}

    def conflicts(self, port: str, kind: str, lo: int, hi: int) -> set[str]:
        """Ports to wait for before ``port`` may ``kind`` (read or write) ``lo..hi``. A
        port's own descriptors run in order, so they never conflict with each other."""
        return {other for other, spans in self.pending.items() if other != port
                for k, a, b in spans if (kind == "write" or k == "write") and a <= hi and lo <= b}

    def issue(self, port: str, kind: str, lo: int, hi: int):
        self.pending.setdefault(port, []).append((kind, lo, hi))

    def wait(self, ports_done):
        for port in ports_done:
            self.pending.pop(port, None)
