"""The compiler: a model config and its integer parameters to a memory image and a program
per task (docs/isa.md).

Memory holds, in order: the entry table (word 0: each task's program address, 32 bits per
task), the programs, the parameters in the order the units read them, the input patches,
each task's output, and the activation buffers. Activations are row-major, a token's row
padded to whole words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyref import intmodel, isa
from pyref.config import ConfigError, HardwareConfig, ModelConfig
from pyref.formats import ACT
from pyref.isa import Descriptor, ProgramError


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Buffer:
    """A row-major activation tensor in memory: ``rows`` rows of ``row_words`` words."""

    name: str
    base: int
    rows: int
    row_words: int

    @property
    def words(self) -> int:
        return self.rows * self.row_words

    def rows_of(self, first: int = 0, rows: int | None = None) -> Descriptor:
        """Whole rows, in order (a unit's rows, one chunk after another)."""
        rows = self.rows - first if rows is None else rows
        return Descriptor.contiguous(self.base + first * self.row_words, rows * self.row_words)

    def columns(self, first_word: int, words: int, rows: int) -> Descriptor:
        """Words ``first_word ..`` of each row, row by row: a head's slice of QKV."""
        return Descriptor(self.base + first_word, rows * words,
                          ((words, 1), (rows, self.row_words)))

    def chunk_major(self, rows: int, words: int | None = None, first_row: int = 0) -> Descriptor:
        """Word 0 of every row, then word 1 of every row, ...: the linear unit's order."""
        words = self.row_words if words is None else words
        return Descriptor(self.base + first_row * self.row_words, rows * words,
                          ((rows, self.row_words), (words, 1)))


@dataclass
class Image:
    """A compiled model: the memory's initial words, the programs and where things are.

    Members
    -------
    words : (n, tile_in) uint16 lanes from address 0
    programs : {task: list of Instruction}
    entries : {task: program address}
    regions : {name: (base, words)} for the report
    patches : Buffer the host writes an image's patches into
    outputs : {task: (Buffer, values per row)} the host reads the task's logits from
    marks : {task: [(first instruction, layer name)]} where each layer starts
    """

    config: ModelConfig
    hw: HardwareConfig
    words: np.ndarray
    programs: dict
    entries: dict
    regions: dict
    patches: Buffer
    outputs: dict
    memory_words: int
    marks: dict = field(default_factory=dict)

    def layer_at(self, task: int, address: int) -> str:
        """The layer the instruction at word ``address`` of ``task``'s program belongs to."""
        index = (address - self.entries[task]) // (isa.INSTRUCTION_BITS
                                                    // isa.word_bits(self.hw))
        names = [name for first, name in self.marks[task] if first <= index]
        return names[-1] if names else "start"

    def input_words(self, patch_codes) -> np.ndarray:
        """One image's ACT patch codes ``(patches, patch_pixels)`` as the words of `patches`."""
        codes = np.asarray(patch_codes)
        want = (self.config.patches, self.config.patch_pixels)
        if codes.shape != want:
            raise ConfigError(f"image of shape {codes.shape} does not fit config "
                              f"'{self.config.name}': expected {want}")
        ACT.fit(codes, check=True)
        padded = np.zeros((want[0], self.patches.row_words * self.hw.tile_in), dtype=np.int64)
        padded[:, :want[1]] = codes
        return isa.to_lanes(padded, ACT.bits).reshape(-1, self.hw.tile_in)

    def output_codes(self, memory, task: int) -> np.ndarray:
        """Task ``task``'s logits (ACT codes) from the memory after its program ran."""
        buffer, width = self.outputs[self.check_task(task)]
        lanes = np.asarray(memory[buffer.base:buffer.base + buffer.words])
        return isa.from_lanes(lanes.ravel(), ACT.bits).reshape(buffer.rows, -1)[:, :width]

    def check_task(self, task: int) -> int:
        if task not in self.programs:
            raise ConfigError(f"unknown task {task}: config '{self.config.name}' has tasks "
                              f"{', '.join(map(str, self.programs))}")
        return task


def parameter_shapes(config: ModelConfig) -> dict:
    """Every parameter's shape by checkpoint name (what `MultiTaskViT.state_dict` holds)."""
    d, c = config.dim, config
    shapes = {"pos": (c.tokens, d), "patch_embed.weight": (d, c.patch_pixels),
              "patch_embed.bias": (d,), "norm.weight": (d,), "norm.bias": (d,),
              "heads.0.weight": (c.classes, d), "heads.0.bias": (c.classes,),
              "heads.1.weight": (c.patch_classes, d), "heads.1.bias": (c.patch_classes,)}
    for layer in range(c.depth):
        b = f"blocks.{layer}"
        for ln in ("ln1", "ln2"):
            shapes.update({f"{b}.{ln}.weight": (d,), f"{b}.{ln}.bias": (d,)})
        shapes.update({f"{b}.attn.qkv.weight": (3 * d, d), f"{b}.attn.qkv.bias": (3 * d,),
                       f"{b}.attn.proj.weight": (d, d), f"{b}.attn.proj.bias": (d,)})
        if c.is_moe(layer):
            e, h = c.experts, c.expert_hidden
            shapes.update({f"{b}.moe.routers": (c.tasks, e, d),
                           f"{b}.moe.fc1_weight": (e, h, d), f"{b}.moe.fc1_bias": (e, h),
                           f"{b}.moe.fc2_weight": (e, d, h), f"{b}.moe.fc2_bias": (e, d)})
        else:
            shapes.update({f"{b}.mlp.fc1.weight": (c.mlp, d), f"{b}.mlp.fc1.bias": (c.mlp,),
                           f"{b}.mlp.fc2.weight": (d, c.mlp), f"{b}.mlp.fc2.bias": (d,)})
    return shapes


def check_parameters(config: ModelConfig, params: dict):
    """Raise `ConfigError` naming every parameter missing, extra or of the wrong shape."""
    want = parameter_shapes(config)
    problems = [f"{n} is missing" for n in want if n not in params]
    problems += [f"{n} is not a parameter of the config" for n in params if n not in want]
    problems += [f"{n} is {tuple(np.shape(params[n]))}, expected {s}"
                 for n, s in want.items() if n in params and np.shape(params[n]) != s]
    if problems:
        raise ConfigError(f"checkpoint does not match config '{config.name}': "
                          + "; ".join(problems[:5])
                          + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))


def check_fit(config: ModelConfig, hw: HardwareConfig):
    """Raise `ConfigError` when the config's layers do not map onto parameter set ``hw``."""
    t = hw.tile_in
    problems = []
    if hw.tile_out != t:
        problems.append(f"the linear tile is {t} x {hw.tile_out}; the memory layout needs a "
                        "square tile")
    if config.dim % t or config.head_dim % t:
        problems.append(f"dim {config.dim} and head_dim {config.head_dim} must be multiples of "
                        f"tile_in {t}, so rows and heads are whole words (and LayerNorm sees "
                        "no padding)")
    if config.head_dim % hw.attention_width:
        problems.append(f"head_dim {config.head_dim} is not a multiple of the attention "
                        f"width {hw.attention_width}")
    if config.experts > hw.max_experts or config.top_k != hw.top_k:
        problems.append(f"the MoE unit routes {hw.max_experts} experts with top-{hw.top_k}; "
                        f"config has {config.experts} with top-{config.top_k}")
    if config.experts > t and config.experts % t:
        problems.append(f"{config.experts} router logits are neither one word nor whole words "
                        f"of {t}")
    if problems:
        raise ConfigError(f"config '{config.name}' does not fit parameter set '{hw.name}': "
                          + "; ".join(problems))
    for layer in config.linear_layers():
        hw.check_layer(layer)


class _Program:
    """Instructions of one task, with waits placed by a `isa.Scoreboard`."""

    def __init__(self, hw: HardwareConfig, tokens: int):
        self.hw, self.code, self.board = hw, [], isa.Scoreboard()
        self.token_limit = tokens  # the longest an expert's queue can be
        self.experts = (1, 0)  # in an EXPERTS body: the experts and their stride
        self.marks: list[tuple[int, str]] = []  # (first instruction, layer name)

    def mark(self, layer: str):
        """The next instructions belong to ``layer`` (for per-layer reports)."""
        self.marks.append((len(self.code), layer))

    def _span(self, ins) -> tuple[int, int]:
        a = ins.descriptor().addresses(ins.token_level, self.token_limit)
        last = (self.experts[0] - 1) * self.experts[1] if ins.per_expert else 0
        return int(a.min()), int(a.max()) + last

    def name(self, ins) -> str:
        return isa.ports(self.hw)[ins.target].name

    def conflicts(self, ins, kind: str) -> set[str]:
        return self.board.conflicts(self.name(ins), kind, *self._span(ins))

    def op(self, cmds=(), reads=(), writes=()):
        """One job: ``cmds`` and the reads that need no wait go first (so a unit's weights
        load while the last job ends), then a ``WAIT`` for the ports the rest conflict
        with, then the writes and the other reads."""
        waits = set()
        for ins in writes:
            waits |= self.conflicts(ins, "write")
        for ins in reads:
            waits |= self.conflicts(ins, "read")
        early = [r for r in reads if not self.conflicts(r, "read") and self.name(r) not in waits]
        late = [r for r in reads if r not in early]
        self.code += [*cmds, *early]
        for ins in early:
            self.board.issue(self.name(ins), "read", *self._span(ins))
        if waits:
            self.code.append(isa.wait(self.hw, waits))
            self.board.wait(waits)
        for ins, kind in [*((w, "write") for w in writes), *((r, "read") for r in late)]:
            self.code.append(ins)
            self.board.issue(self.name(ins), kind, *self._span(ins))


class Compiler:
    """Lays out one config's parameters and buffers, and writes each task's program.

    Parameters
    ----------
    config : ModelConfig
    hw : HardwareConfig
    params : dict
        Integer parameters (`pyref.intmodel.quantise_parameters`), checked against the config.
    memory_words : int
        Words the accelerator's memory holds.
    """

    def __init__(self, config: ModelConfig, hw: HardwareConfig, params: dict,
                 memory_words: int):
        check_parameters(config, params)
        check_fit(config, hw)
        self.config, self.hw, self.p, self.memory_words = config, hw, params, memory_words
        self.tile = hw.tile_in
        self.blocks: list[tuple[str, int, np.ndarray]] = []
        self.next = 1  # word 0: the entry table

    # -- layout ---------------------------------------------------------------------------
    def place(self, name: str, words: np.ndarray) -> int:
        base = self.next
        self.blocks.append((name, base, words))
        self.next += len(words)
        return base

    def reserve(self, name: str, rows: int, width: int) -> Buffer:
        buffer = Buffer(name, self.next, rows, _ceil(width, self.tile))
        self.next += buffer.words
        return buffer

    def linear_words(self, weight, bias=None) -> tuple[np.ndarray, np.ndarray | None]:
        """A layer's weights as the ``linear.w`` beats (output chunk, input chunk, row), and
        its biases as the ``linear.bias`` beats, zero-padded to whole tiles."""
        t = self.tile
        out, inp = weight.shape
        w = np.zeros((_ceil(out, t) * t, _ceil(inp, t) * t), dtype=np.int64)
        w[:out, :inp] = weight
        tiles = w.reshape(-1, t, w.shape[1] // t, t).transpose(0, 2, 1, 3)
        ports = {p.name: p for p in isa.ports(self.hw)}
        w_words = isa.beats_to_words(self.hw, ports["linear.w"], tiles.reshape(-1, t))
        if bias is None:
            return w_words, None
        b = np.zeros(w.shape[0], dtype=np.int64)
        b[:out] = bias
        return w_words, isa.beats_to_words(self.hw, ports["linear.bias"], b.reshape(-1, t))

    def layer(self, name: str, weight, bias=None) -> dict:
        """Place a linear layer; its shape in chunks and where its words are."""
        w, b = self.linear_words(weight, bias)
        out, inp = weight.shape
        return {"name": name, "w": (self.place(f"{name}.w", w), len(w)),
                "bias": (self.place(f"{name}.bias", b), len(b)) if b is not None else None,
                "in": _ceil(inp, self.tile), "out": _ceil(out, self.tile)}

    def layernorm_params(self, name: str) -> tuple[int, int]:
        t = self.tile
        gamma, beta = self.p[f"{name}.weight"], self.p[f"{name}.bias"]
        beats = np.concatenate([gamma.reshape(-1, t), beta.reshape(-1, t)], axis=1)
        port = isa.ports(self.hw)[isa.port_index(self.hw, "layernorm.params")]
        words = isa.beats_to_words(self.hw, port, beats)
        return self.place(f"{name}", words), len(words)

    # -- jobs -----------------------------------------------------------------------------
    def stream(self, port, desc, **flags):
        return isa.transfer(self.hw, port, desc, **flags)

    def expert_rows(self, port: str, base: int, words: int):
        """The expert's tokens' rows of ``words`` words each, from ``base``, on ``port`` (in an
        ``EXPERTS`` body the outer loop counts the expert's tokens)."""
        return self.stream(port, Descriptor(base, words, ((words, 1), (1, words))), token_level=2)

    def linear(self, prog: _Program, layer: dict, src: Buffer, dst: Buffer, tokens: int,
               first_row: int = 0, dst_row: int = 0, gelu: bool = False):
        """``dst = linear(src)`` on ``tokens`` rows from ``first_row``."""
        has_bias = layer["bias"] is not None
        reads = [self.stream("linear.w", Descriptor.contiguous(*layer["w"]))]
        if has_bias:
            reads.append(self.stream("linear.bias", Descriptor.contiguous(*layer["bias"])))
        reads.append(self.stream("linear.x", src.chunk_major(tokens, layer["in"], first_row)))
        cmd = isa.command("linear", tokens=tokens, chunks=layer["in"], out_chunks=layer["out"],
                          bias=int(has_bias), gelu=int(gelu), note=layer["name"])
        prog.op([cmd], reads, [self.stream("linear.o", dst.chunk_major(tokens, layer["out"],
                                                                     dst_row))])

    def layernorm(self, prog: _Program, params: tuple, src: Buffer, dst: Buffer):
        c = self.config
        eps = intmodel.layernorm_eps(c.ln_eps, c.dim)
        cmd = isa.command("layernorm", tokens=src.rows, chunks=src.row_words, value=eps)
        prog.op([cmd], [self.stream("layernorm.params", Descriptor.contiguous(*params)),
                        self.stream("layernorm.i", src.rows_of())],
                [self.stream("layernorm.o", dst.rows_of())])

    def residual(self, prog: _Program, a: Buffer, b: Buffer, dst: Buffer):
        prog.op((), [self.stream("residual.a", a.rows_of()),
                     self.stream("residual.b", b.rows_of())],
                [self.stream("residual.o", dst.rows_of())])

    def attention(self, prog: _Program, qkv: Buffer, dst: Buffer):
        c, hw = self.config, self.hw
        hd = c.head_dim // self.tile  # words of a head's row
        chunks = c.head_dim // hw.attention_width
        shift = intmodel.score_shift(c.head_dim) - ACT.frac
        for head in range(c.heads):
            q, k, v = (head * hd + part * c.dim // self.tile for part in range(3))
            cmd = isa.command("attention", tokens=c.tokens, chunks=chunks, value=shift,
                              note=f"head {head}")
            prog.op([cmd], [self.stream("attention.q", qkv.columns(q, hd, c.tokens)),
                            self.stream("attention.k", qkv.columns(k, hd, c.tokens)),
                            self.stream("attention.v", qkv.columns(v, hd, c.tokens))],
                    [self.stream("attention.o", dst.columns(head * hd, hd, c.tokens))])
        prog.op([isa.command("attention", chunks=chunks, flush=1, note="flush")])

    def moe(self, prog: _Program, layer: int, task: int, experts: dict, src: Buffer,
            dst: Buffer, scratch: dict):
        """Router, routing, then each used expert: gather, fc1 + GELU, fc2, combine."""
        c = self.config
        logits = scratch["logits"]
        prog.mark(f"blocks.{layer}.router")
        self.linear(prog, experts[f"router{task}"], src, logits, c.tokens)
        prog.mark(f"blocks.{layer}.experts")
        lanes = c.experts if c.experts < self.tile else 0
        prog.op([isa.command("moe", tokens=c.tokens, value=c.experts)],
                [self.stream("moe.logits", Descriptor.contiguous(logits.base, logits.words,
                                                               lanes))])
        prog.op([isa.command("gather", tokens=c.tokens, chunks=src.row_words)],
                [self.stream("gather.i", src.rows_of())])
        prog.op([isa.command("combine", tokens=c.tokens, chunks=dst.row_words)], (),
                [self.stream("combine.o", dst.rows_of())])

        def body(prog: _Program):
            fc1, fc2 = experts["fc1"], experts["fc2"]
            rows, hidden, out = scratch["rows"], scratch["hidden"], scratch["out"]
            d = src.row_words
            prog.op((), (), [self.expert_rows("gather.o", rows.base, d)])
            # fc1 reads the gathered rows a chunk of every token at a time; fc2 reads fc1's
            # output in the order it was written, which is the order it needs.
            by_chunk = self.stream("linear.x", Descriptor(rows.base, d, ((1, d), (d, 1))),
                                   token_level=1)
            for unit, x, y, gelu in (
                    (fc1, by_chunk, hidden, 1),
                    (fc2, self.expert_rows("linear.x", hidden.base, fc1["out"]), out, 0)):
                cmd = isa.command("linear", per_token=True, chunks=unit["in"],
                                  out_chunks=unit["out"], bias=1, gelu=gelu, note=unit["name"])
                prog.op([cmd], [self.stream("linear.w", Descriptor.contiguous(*unit["w"]),
                                          per_expert=True),
                                self.stream("linear.bias", Descriptor.contiguous(*unit["bias"]),
                                          per_expert=True),
                                x],
                        [self.expert_rows("linear.o", y.base, unit["out"])])
            prog.op((), [self.expert_rows("combine.y", out.base, d)])

        # Waits inside the loop must also cover what the previous expert left pending:
        # compile the body once on a copy to learn what it leaves, then for real.
        prog.experts = (c.experts, experts["stride"])
        trial = _Program(self.hw, c.tokens)
        trial.experts = prog.experts
        trial.board.pending = {k: list(v) for k, v in prog.board.pending.items()}
        body(trial)
        start = len(prog.code)
        prog.code.append(None)  # the EXPERTS instruction, once the body's length is known
        prog.board.pending = {k: list(v) for k, v in trial.board.pending.items()}
        body(prog)
        prog.code[start] = isa.experts(len(prog.code) - start - 1, c.tokens * c.top_k,
                                       experts["stride"])
        prog.experts = (1, 0)

    # -- the model ------------------------------------------------------------------------
    def build(self) -> Image:
        c, p, t = self.config, self.p, self.tile
        embed = self.layer("patch_embed", p["patch_embed.weight"], p["patch_embed.bias"])
        pos_words = isa.to_lanes(np.pad(p["pos"], ((0, 0), (0, _ceil(c.dim, t) * t - c.dim))),
                                 ACT.bits).reshape(-1, t)
        pos = Buffer("pos", self.place("pos", pos_words), c.tokens, _ceil(c.dim, t))
        blocks = []
        for layer in range(c.depth):
            b = f"blocks.{layer}"
            block = {"ln1": self.layernorm_params(f"{b}.ln1"),
                     "qkv": self.layer(f"{b}.qkv", p[f"{b}.attn.qkv.weight"],
                                       p[f"{b}.attn.qkv.bias"]),
                     "proj": self.layer(f"{b}.proj", p[f"{b}.attn.proj.weight"],
                                        p[f"{b}.attn.proj.bias"]),
                     "ln2": self.layernorm_params(f"{b}.ln2")}
            if c.is_moe(layer):
                m = f"{b}.moe"
                block["moe"] = {f"router{task}": self.layer(f"{m}.router{task}",
                                                            p[f"{m}.routers"][task])
                                for task in range(c.tasks)}
                # Each expert's fc1 and fc2 follow one another, `stride` words apart.
                for e in range(c.experts):
                    fc1 = self.layer(f"{m}.expert{e}.fc1", p[f"{m}.fc1_weight"][e],
                                     p[f"{m}.fc1_bias"][e])
                    fc2 = self.layer(f"{m}.expert{e}.fc2", p[f"{m}.fc2_weight"][e],
                                     p[f"{m}.fc2_bias"][e])
                    if e == 0:
                        block["moe"].update(fc1=fc1, fc2=fc2, start=fc1["w"][0])
                block["moe"]["stride"] = (self.next - block["moe"]["start"]) // c.experts
            else:
                block["fc1"] = self.layer(f"{b}.fc1", p[f"{b}.mlp.fc1.weight"],
                                          p[f"{b}.mlp.fc1.bias"])
                block["fc2"] = self.layer(f"{b}.fc2", p[f"{b}.mlp.fc2.weight"],
                                          p[f"{b}.mlp.fc2.bias"])
            blocks.append(block)
        norm = self.layernorm_params("norm")
        heads = [self.layer(f"heads.{k}", p[f"heads.{k}.weight"], p[f"heads.{k}.bias"])
                 for k in range(c.tasks)]
        parameters_end = self.next

        patches = self.reserve("patches", c.patches, c.patch_pixels)
        outputs = {0: (self.reserve("logits0", 1, c.classes), c.classes),
                   1: (self.reserve("logits1", c.patches, c.patch_classes), c.patch_classes)}
        buf = {name: self.reserve(name, c.tokens, width) for name, width in (
            ("embed", c.dim), ("x", c.dim), ("x2", c.dim), ("h", c.dim), ("qkv", 3 * c.dim),
            ("a", c.dim), ("p", c.dim), ("hid", c.mlp), ("logits", c.experts),
            ("rows", c.dim), ("hidden", c.expert_hidden), ("out", c.dim))}
        buffers_end = self.next

        programs, marks = {}, {}
        for task in range(c.tasks):
            prog = _Program(self.hw, c.tokens)
            prog.mark("patch_embed")
            self.linear(prog, embed, patches, buf["embed"], c.patches, dst_row=1)
            prog.mark("pos")
            self.residual(prog, buf["embed"], pos, buf["x"])
            for layer, block in enumerate(blocks):
                b = f"blocks.{layer}"
                prog.mark(f"{b}.ln1")
                self.layernorm(prog, block["ln1"], buf["x"], buf["h"])
                prog.mark(f"{b}.qkv")
                self.linear(prog, block["qkv"], buf["h"], buf["qkv"], c.tokens)
                prog.mark(f"{b}.attention")
                self.attention(prog, buf["qkv"], buf["a"])
                prog.mark(f"{b}.proj")
                self.linear(prog, block["proj"], buf["a"], buf["p"], c.tokens)
                prog.mark(f"{b}.residual1")
                self.residual(prog, buf["x"], buf["p"], buf["x2"])
                prog.mark(f"{b}.ln2")
                self.layernorm(prog, block["ln2"], buf["x2"], buf["h"])
                if c.is_moe(layer):
                    self.moe(prog, layer, task, block["moe"], buf["h"], buf["p"], buf)
                else:
                    prog.mark(f"{b}.fc1")
                    self.linear(prog, block["fc1"], buf["h"], buf["hid"], c.tokens, gelu=True)
                    prog.mark(f"{b}.fc2")
                    self.linear(prog, block["fc2"], buf["hid"], buf["p"], c.tokens)
                prog.mark(f"{b}.residual2")
                self.residual(prog, buf["x2"], buf["p"], buf["x"])
            prog.mark("norm")
            self.layernorm(prog, norm, buf["x"], buf["h"])
            prog.mark("head")
            out, _ = outputs[task]
            self.linear(prog, heads[task], buf["h"], out, out.rows, first_row=int(task == 1))
            prog.code.append(isa.end())
            programs[task], marks[task] = prog.code, prog.marks

        entries = {}
        for task, code in programs.items():
            entries[task] = self.place(f"program{task}", isa.instruction_words(self.hw, code))
        if self.next > self.memory_words:
            raise ProgramError(
                f"config '{c.name}' needs {self.next} words of memory (parameters "
                f"{parameters_end}, buffers {buffers_end - parameters_end}, programs "
                f"{self.next - buffers_end}) but the memory holds {self.memory_words}: "
                f"build the accelerator with memory_words >= {self.next}")
        words = np.zeros((self.next, t), dtype=np.uint16)
        table = isa.to_lanes([entries[k] for k in range(c.tasks)], 32)
        words[0, :len(table)] = table
        for _, base, block_words in self.blocks:
            words[base:base + len(block_words)] = block_words
        regions = {"parameters": (1, parameters_end - 1),
                   "buffers": (parameters_end, buffers_end - parameters_end),
                   "programs": (buffers_end, self.next - buffers_end)}
        return Image(c, self.hw, words, programs, entries, regions, patches, outputs,
                     self.memory_words, marks)


def compile_model(config: ModelConfig, hw: HardwareConfig, params: dict,
                  memory_words: int) -> Image:
    """Compile ``config`` with integer ``params`` for parameter set ``hw``."""
    return Compiler(config, hw, params, memory_words).build()
