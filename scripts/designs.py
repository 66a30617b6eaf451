"""Every hardware design lumoe builds: how to elaborate it, its XLS kernels and its bench."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from hls import flow
from hw import ram_model, ulx3s
from hw.attention import AttentionUnit
from hw.board import Board
from hw.emit import emit
from hw.expert_combine import ExpertCombine
from hw.kernels import kernel_unit
from hw.layernorm_unit import LayerNormUnit
from hw.linear import LinearUnit
from hw.mac import MacUnit
from hw.moe import MoeUnit
from hw.optical_io import OpticalIO
from hw.residual import ResidualAdd
from hw.sdram_port import SdramPort
from hw.softmax_unit import SoftmaxUnit
from hw.token_gather import TokenGather
from hw.top import Accelerator
from pyref import isa, optical_io, vectors
from pyref.config import CONFIGS, HW_CONFIGS, get_hw_config
from pyref.sdram import ULX3S
from scripts.common import HLS, VERILOG
from sim.runner import Bench


@dataclass(frozen=True)
class Design:
    """One top-level design.

    Parameters
    ----------
    name : str
        Unit name in reports, and the build directory.
    top : str
        Verilog module name of the Amaranth top (must differ from any XLS module).
    factory : callable
        Builds the Amaranth component from ``params``.
    params : dict
        Parameters of ``factory``; they also go into the port JSON for the bench.
    kernels : tuple of str
        XLS kernels the design instantiates.
    bench : str
        cocotb test module.
    bench_args : dict
        Extra settings for the bench only (they go into the port JSON).
    target_mhz : float
        Clock the implementation must meet on the LFE5U-85F.
    baseline : bool
        Built only to compare costs (Edge-MoE's way): its clock is reported, not required.
    router : str
        nextpnr's router for this design (see the attention unit's).
    placer_args : tuple of str
        More nextpnr placer options for this design (see the board's).
    split_nets : bool
        Split multi-bit nets before yosys maps the design to cells (see the board's).
    floorplan : bool
        Give each multiplier its site before placement (`scripts.floorplan`).
    internals : bool
        Its bench reads signals inside the design (slower simulation).
    models : tuple of (str, str)
        Verilog models the design instantiates, as (file name, text).
    lpf : callable or None
        A board's top level: the constraint file's text, its pins the design's own. Without
        one, the bitstream wraps the design in a `hw.pin_harness.PinHarness`.
    """

    name: str
    top: str
    factory: Callable
    params: dict = field(default_factory=dict)
    kernels: tuple = ()
    bench: str = ""
    bench_args: dict = field(default_factory=dict)
    target_mhz: float = 100.0
    baseline: bool = False
    router: str = "router1"
    placer_args: tuple = ()
    split_nets: bool = False
    floorplan: bool = False
    internals: bool = True
    models: tuple = ()
    lpf: Callable | None = None

    def component(self):
        return self.factory(**self.params)

    def verilog(self, verilog_dir: Path = VERILOG, hls_dir: Path = HLS) -> list[Path]:
        """Emit the design and its kernels; returns every Verilog source, top first.

        A design emitted from the same sources and parameters is not emitted again (the
        whole accelerator takes about 15 s)."""
        here = Path(verilog_dir) / self.name
        outputs = [here / f"{self.top}.v", here / f"{self.top}.ports.json",
                   *(Path(hls_dir) / f"{k}.v" for k in self.kernels),
                   *(here / name for name, _ in self.models)]
        stamp = here / "sources.sha256"
        digest = _source_digest(repr((self.params, self.bench_args, self.kernels, self.models)))
        if stamp.exists() and stamp.read_text() == digest and all(p.exists() for p in outputs):
            return [outputs[0], *outputs[2:]]
        sources = self._emit(verilog_dir, hls_dir)
        stamp.write_text(digest)
        return sources

    def _emit(self, verilog_dir: Path, hls_dir: Path) -> list[Path]:
        unit = self.component()
        extra = {"peak_macs_per_cycle": getattr(unit, "peak_macs_per_cycle", 0),
                 "latency": getattr(unit, "latency", 0),
                 "min_step_cycles": getattr(unit, "min_step_cycles", 1),
                 "interval": getattr(unit, "interval", 1),
                 **self.params, **self.bench_args}
        if "kernel" in self.params:
            k = flow.KERNELS[self.params["kernel"]]
            extra.update(inputs=list(k.inputs), outputs=list(k.outputs))
        top = emit(unit, self.top, Path(verilog_dir) / self.name, **extra)
        models = []
        for name, text in self.models:
            models.append(Path(verilog_dir) / self.name / name)
            models[-1].write_text(text)
        return [top] + [flow.codegen(k, hls_dir) for k in self.kernels] + models

    def bench_spec(self, sources: list[Path]) -> Bench:
        return Bench(self.name, self.top, tuple(sources),
                     sources[0].with_suffix(".ports.json"), self.bench, self.internals)


def _source_digest(extra: str) -> str:
    """A digest of every source that shapes a design's Verilog."""
    digest = hashlib.sha256(extra.encode())
    root = Path(__file__).resolve().parents[1]
    for path in sorted(p for d in ("hw", "hls", "pyref") for p in (root / d).rglob("*")
                       if p.suffix in (".py", ".x")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


#: Special-function kernels must keep up with the compute units at a faster clock.
KERNEL_TARGET_MHZ = 150.0
#: Kernels held to less, and why. ln_apply at two operations a stage (13 stages, not 26)
#: carries half the flip-flops; in the whole top that is 3,600 fewer, and with them the
#: board routed (docs/results.md). Its saturating select then shares a stage with the
#: gamma multiply, whose unregistered input needs 3.5 ns: 146.7 MHz, still far above the
#: board's 100 MHz.
KERNEL_TARGET_EXCEPTIONS = {"ln_apply": 145.0}


#: The streaming softmax keeps its running sum in a one-cycle loop of a 23x16 multiply, a
#: rounding add and a select: bit-exact with the sequential reference at one score per cycle
#: per row, it cannot be pipelined. Measured: 84 MHz (docs/results.md).
SOFTMAX_UNIT_TARGET_MHZ = 80.0


def kernel_design(kernel: str) -> Design:
    """An XLS kernel behind its stream adapter, checked by the generic kernel bench."""
    return Design(kernel, f"{kernel}_stream", kernel_unit, {"kernel": kernel},
                  kernels=flow.pipelines(kernel), bench="sim.bench_kernel",
                  target_mhz=KERNEL_TARGET_EXCEPTIONS.get(kernel, KERNEL_TARGET_MHZ),
                  baseline=flow.KERNELS[kernel].module == "baseline")


def linear_unit(hw: str) -> LinearUnit:
    return LinearUnit(get_hw_config(hw))


def attention_unit(hw: str, parallelism: int) -> AttentionUnit:
    """The attention unit of parameter set ``hw`` at ``parallelism``, for every config."""
    return AttentionUnit(replace(get_hw_config(hw), parallelism=parallelism),
                         max(c.head_dim for c in CONFIGS.values()))


def expert_combine(hw: str) -> ExpertCombine:
    """The MoE scatter for every config, as wide as the linear unit's output tile."""
    lanes = get_hw_config(hw).tile_out
    return ExpertCombine(lanes, max(c.tokens for c in CONFIGS.values()),
                         max(-(-c.dim // lanes) for c in CONFIGS.values()))


def token_gather(hw: str) -> TokenGather:
    """The MoE gather for every config, as wide as the linear unit's input tile."""
    lanes = get_hw_config(hw).tile_in
    return TokenGather(lanes, max(c.tokens for c in CONFIGS.values()),
                       max(-(-c.dim // lanes) for c in CONFIGS.values()))


def layernorm_unit(hw: str) -> LayerNormUnit:
    """The LayerNorm unit for every config, as wide as the linear unit's input tile."""
    lanes = get_hw_config(hw).tile_in
    return LayerNormUnit(lanes, max(c.tokens for c in CONFIGS.values()),
                         max(-(-c.dim // lanes) for c in CONFIGS.values()))


def moe_unit(hw: str) -> MoeUnit:
    """The MoE unit of parameter set ``hw``."""
    hw = get_hw_config(hw)
    return MoeUnit(hw.max_experts, hw.top_k, hw.max_tokens)


def sdram_port(width: int) -> SdramPort:
    """The board's memory port on the ULX3S's SDRAM."""
    return SdramPort(width, ULX3S)


#: The compute units alone are built and benched at their own design point, with buffers
#: for both configs, so that their benches run m3vit-tiny's layers too
#: (`pyref.config.HW_CONFIGS`); the board's set is ``ecp5-85f``.
UNIT_HW = "ecp5-8x8"

DESIGNS = {d.name: d for d in [
    *(kernel_design(k) for k in flow.KERNELS),
    Design("mac", "mac", MacUnit, {"lanes": 4}, bench="sim.bench_mac"),
    Design("softmax", "softmax_unit", SoftmaxUnit,
           {"lanes": 2, "max_len": vectors.SOFTMAX_MAX_ROW},
           kernels=(*flow.pipelines("exp2"), *flow.pipelines("reciprocal"), "normalise"),
           bench="sim.bench_softmax", target_mhz=SOFTMAX_UNIT_TARGET_MHZ),
    Design("linear", "linear_unit", linear_unit, {"hw": UNIT_HW},
           kernels=(*flow.pipelines("requant"), *flow.pipelines("gelu")),
           bench="sim.bench_linear", bench_args={"configs": list(CONFIGS)}),
    Design("attention", "attention_unit", attention_unit,
           {"hw": UNIT_HW, "parallelism": HW_CONFIGS[UNIT_HW].parallelism},
           kernels=(*flow.pipelines("requant"), *flow.pipelines("exp2"),
                    *flow.pipelines("reciprocal"), "attention_normalise"),
           bench="sim.bench_attention", bench_args={"configs": list(CONFIGS)},
           # router1, nextpnr-ecp5's default, spent over 20 minutes ripping up this unit's
           # last overused wires; router2 takes about 90 s. On the linear unit router2
           # leaves long detours (79 MHz against router1's 103 MHz), so each
           # design keeps the router that does better on it.
           router="router2"),
    Design("moe", "moe_unit", moe_unit, {"hw": UNIT_HW},
           kernels=(*flow.pipelines("exp2"), *flow.pipelines("reciprocal"), "normalise"),
           bench="sim.bench_moe", bench_args={"configs": list(CONFIGS)}),
    Design("gather", "token_gather", token_gather, {"hw": UNIT_HW},
           bench="sim.bench_gather", bench_args={"configs": list(CONFIGS)}),
    Design("combine", "expert_combine", expert_combine, {"hw": UNIT_HW},
           bench="sim.bench_combine", bench_args={"configs": list(CONFIGS)}),
    Design("layernorm", "layernorm_unit", layernorm_unit, {"hw": UNIT_HW},
           kernels=(*flow.pipelines("ln_stats"), "ln_apply"), bench="sim.bench_layernorm",
           bench_args={"configs": list(CONFIGS)}),
    Design("residual", "residual_add", ResidualAdd,
           {"lanes": HW_CONFIGS[UNIT_HW].tile_out}, bench="sim.bench_residual"),
    Design("sdram", "sdram_port", sdram_port,
           {"width": isa.word_bits(HW_CONFIGS["ecp5-85f"])}, bench="sim.bench_sdram"),
    Design("optical_io", "optical_io", OpticalIO,
           {"lanes": optical_io.LANES, "depth": optical_io.READOUT_DEPTH,
            "detection": optical_io.DETECTION},
           bench="sim.bench_optical_io"),
]}


#: Memory of the accelerator `make sim` runs: the tiny model's image fits in 2^15 words.
TOP_MEMORY_WORDS = 1 << 15


def accelerator(hw: str, memory_words: int) -> Accelerator:
    return Accelerator(get_hw_config(hw), memory_words)


#: Clock cycles per serial bit of the simulated board: the fastest its receiver takes.
BOARD_SIM_DIVISOR = 4


def board(hw: str, memory_words: int, divisor: int, sdram: bool) -> Board:
    return Board(get_hw_config(hw), memory_words, divisor, ULX3S if sdram else None)


def top_design(name: str, hw: str, memory_words: int, **bench_args) -> Design:
    """The whole accelerator of parameter set ``hw``, with the end-to-end bench."""
    kernels = dict.fromkeys(k for unit in ("linear", "attention", "moe", "layernorm")
                            for k in DESIGNS[unit].kernels)
    return Design(name, "accelerator", accelerator, {"hw": hw, "memory_words": memory_words},
                  kernels=tuple(kernels), bench="sim.bench_top", internals=False,
                  models=(("lumoe_ram.v", ram_model.VERILOG),),
                  bench_args={"hw": hw, "memory_words": memory_words, **bench_args})


#: The end-to-end runs: `make sim`'s (the shipped tiny model, 8 images, both tasks), and for
#: `make bench` 256 tiny images and m3vit-tiny with random weights on the edge-moe set: its
#: first two blocks (a dense one and a MoE one) and all twelve.
TOP_DESIGNS = {d.name: d for d in [
    top_design("top", "ecp5-85f", TOP_MEMORY_WORDS, config="tiny", images=8, stall_images=2,
               max_cycles=200_000),
    top_design("top_256", "ecp5-85f", TOP_MEMORY_WORDS, config="tiny", images=256,
               stall_images=8, max_cycles=200_000),
    top_design("top_m3vit_blocks", "edge-moe", 1 << 18, config="m3vit-tiny", depth=2,
               images=1, stall_images=1, max_cycles=3_000_000),
    top_design("top_m3vit", "edge-moe", 1 << 21, config="m3vit-tiny", images=1,
               stall_images=1, max_cycles=20_000_000),
]}


def board_design(name: str, sdram: bool) -> Design:
    """The board through its UART (sim/bench_board.py), its memory simulated or the
    ULX3S's SDRAM on the chip model: the tiny model end to end."""
    words = ulx3s.memory_words("ecp5-85f") if sdram else TOP_MEMORY_WORDS
    return Design(name, "board", board,
                  {"hw": "ecp5-85f", "memory_words": words, "divisor": BOARD_SIM_DIVISOR,
                   "sdram": sdram},
                  kernels=TOP_DESIGNS["top"].kernels, bench="sim.bench_board",
                  internals=False,
                  models=() if sdram else (("lumoe_ram.v", ram_model.VERILOG),),
                  bench_args={"config": "tiny", "max_cycles": 2_000_000})


#: `make sim-board`: the board with a simulated memory, then on the SDRAM chip model.
BOARD_DESIGNS = {d.name: d for d in [board_design("board", False),
                                     board_design("board_sdram", True)]}


def ulx3s_board(hw: str) -> ulx3s.Ulx3s:
    return ulx3s.Ulx3s(get_hw_config(hw))


#: Boards: the whole accelerator behind its host link, with the board's clock, reset and
#: SDRAM (`python -m scripts.bitstream ulx3s`).
BOARDS = {"ulx3s": Design("ulx3s", "ulx3s_top", ulx3s_board, {"hw": "ecp5-85f"},
                          kernels=TOP_DESIGNS["top"].kernels, lpf=ulx3s.lpf,
                          # nextpnr takes the clock from the PLL's output, not from --freq.
                          target_mhz=ulx3s.CLOCK_MHZ,
                          # yosys 0.70 asserts on the whole top while putting ABC's
                          # netlist back (a wire name taken twice, YosysHQ/yosys#4349);
                          # splitting nets first is its maintainers' workaround. The
                          # units do not need it and route worse with it (the softmax
                          # unit 907 s instead of 96, the MoE unit's router1 stalled).
                          router="router2", split_nets=True,
                          # On the whole top, HeAP's default timing weight (10) leaves
                          # small modules spread over 40 tiles and more; at 40 the
                          # slowest path after placement fell from 22.8 to 14.8 ns
                          # (docs/results.md).
                          placer_args=("--placer-heap-timingweight", "40"),
                          # Left to HeAP, a kernel's multipliers end up to 90 columns
                          # apart (docs/results.md).
                          floorplan=True)}


def design_argument(parser: argparse.ArgumentParser, known: dict = DESIGNS,
                    default: str = "all"):
    """Positional design names, each checked against ``known``."""
    def design_name(text: str) -> str:
        if text not in known:
            raise argparse.ArgumentTypeError(
                f"unknown design '{text}': choose from {', '.join(known)}")
        return text

    parser.add_argument("designs", nargs="*", type=design_name,
                        help=f"designs to use (default {default}): {', '.join(known)}")
