"""The XLS flow: DSLX -> IR -> optimised IR -> pipelined Verilog, plus a native JIT.

Every kernel takes integer codes of `pyref.formats` and returns one code; `KERNELS` lists
them with their formats and pipeline depth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from hls import generated
from pyref import approx
from pyref.formats import ACC, ACT, ATTN, PROB, SUM, WEIGHT, QFormat

HERE = Path(__file__).parent


class HlsError(RuntimeError):
    """A DSLX kernel that does not convert, or a stale generated file."""


#: XLS has no ECP5 delay model, and an ASIC one misleads on an FPGA: with sky130's delays the
#: scheduler kept shifters and adders in a multiply's stage (normalise stayed at 97 MHz with
#: 3 to 6 stages), while on the ECP5 a multiply with its registers in the DSP block is the
#: fastest path there is. Counting every operation as one ("unit") and limiting how many
#: chain within a stage splits the work evenly, and leaves each multiply between registers
#: that move into its MULT18X18D (`scripts.netlist`).
DELAY_MODEL = "unit"


#: Register a pipeline's inputs and outputs, so neither its first nor its last stage shares
#: a cycle with the stream adapter's FIFO around it.
FLOP_IO = True


def raw(bits: int, signed: bool = False) -> QFormat:
    """A plain integer port (no fraction) of a kernel."""
    return QFormat(bits, 0, signed)


@dataclass(frozen=True)
class Kernel:
    """One DSLX function compiled to a pipeline of plain registers: no valid, no enable
    and no reset in it (`hw.xls_pipe.XlsPipe` carries the valid beside it).

    Parameters
    ----------
    name : str
        DSLX function and Verilog module name; also the name of its `pyref.opcases` case.
    module : str
        DSLX source ``hls/<module>.x``.
    inputs : dict of str to QFormat
        The function's parameters, in order, with their formats.
    outputs : dict of str to QFormat
        Its result (the elements of a returned tuple, in order), with their formats.
    ops_per_stage : int
        Operations that may chain within one pipeline stage (`DELAY_MODEL`'s clock period);
        the scheduler then picks the number of stages. A kernel in `COMPOSED` has none of
        its own: its function only runs in the JIT, while the hardware uses its steps.
    """

    name: str
    module: str
    inputs: dict = field(hash=False)
    outputs: dict = field(hash=False)
    ops_per_stage: int = 2

    @property
    def source(self) -> Path:
        return HERE / f"{self.module}.x"

    @property
    def stages(self) -> int:
        """Stages XLS made for this kernel (the input registers are its stage 0)."""
        return _verilog(self).count("// ===== Pipe stage") - FLOP_IO

    @property
    def latency(self) -> int:
        """Cycles from an input to its result: registers between the stages plus the
        input and output registers (`FLOP_IO`)."""
        return self.stages - 1 + 2 * FLOP_IO

    def describe(self) -> dict:
        return {
            "module": self.name,
            "source": self.source.name,
            "stages": self.stages,
            "ops_per_stage": self.ops_per_stage,
            "latency": self.latency,
            "inputs": {k: f.describe() for k, f in self.inputs.items()},
            "outputs": {k: f.describe() for k, f in self.outputs.items()},
            "ports": {"clock": "clk", "result": "out (tuples: first element in the "
                      "most significant bits)"},
        }


MANTISSA, EXPONENT = raw(17), raw(6)  # a reciprocal or rsqrt as r * 2^-(16 + e)
DIFF = raw(ACT.bits + 1, signed=True)  # a score minus a maximum
TOTAL, SQUARES = raw(32, signed=True), raw(48)  # LayerNorm's running sums

KERNELS = {k.name: k for k in [
    Kernel("requant", "requant", {"x": ACC}, {"y": ACT}),
    Kernel("gelu", "gelu", {"x": ACT}, {"y": ACT}),
    Kernel("exp2", "softmax", {"d": DIFF}, {"power": PROB}),
    Kernel("softmax_step", "softmax", {"maximum": ACT, "total": SUM, "score": ACT},
           {"new_max": ACT, "new_total": SUM, "scale": PROB, "term": PROB}),
    Kernel("reciprocal", "softmax", {"total": SUM}, {"r": MANTISSA, "e": EXPONENT}),
    Kernel("normalise", "softmax", {"term": PROB, "r": MANTISSA, "e": EXPONENT}, {"p": PROB}),
    Kernel("attention_normalise", "softmax", {"acc": ATTN, "r": MANTISSA, "e": EXPONENT},
           {"y": ACT}, ops_per_stage=1),
    Kernel("divide", "baseline", {"term": PROB, "total": SUM}, {"p": PROB}),
    # XLS's float library is many small operations: 4 to a stage gives 128 stages.
    Kernel("exp_float", "baseline", {"d": DIFF}, {"bits": raw(32)}, ops_per_stage=4),
    Kernel("ln_accumulate", "layernorm", {"total": TOTAL, "squares": SQUARES, "x": ACT},
           {"new_total": TOTAL, "new_squares": SQUARES}),
    Kernel("ln_stats", "layernorm", {"total": TOTAL, "squares": SQUARES, "dim": raw(16),
                                     "eps": raw(32)}, {"r": MANTISSA, "e": EXPONENT}),
    Kernel("ln_apply", "layernorm", {"x": ACT, "total": TOTAL, "dim": raw(16), "r": MANTISSA,
                                     "e": EXPONENT, "gamma": WEIGHT, "beta": WEIGHT},
           {"y": ACT}),
]}

@dataclass(frozen=True)
class Table:
    """A block-RAM read of neighbouring entries of `pyref.approx` table ``name``."""

    name: str


#: Kernels the hardware builds from other pipelines, in order: parts (`PARTS`), a block-RAM
#: table read between two parts, or another kernel, with the fields around it carried
#: beside it. Fields named alike flow from one step to the next. The kernel's own DSLX
#: function does the same in one piece for the JIT check.
COMPOSED = {
    "gelu": ("gelu_index", Table("GELU_DELTA"), "gelu_finish"),
    "exp2": ("exp2_index", Table("EXP2_TABLE"), "exp2_finish"),
    "softmax_step": ("softmax_prepare", "exp2", "softmax_finish"),
    "reciprocal": ("reciprocal_index", Table("RECIP_TABLE"), "reciprocal_finish"),
    "ln_stats": ("ln_stats_index", Table("RSQRT_TABLE"), "ln_stats_finish"),
}


def _entry(table: str) -> QFormat:
    return raw(int(getattr(approx, table).max()).bit_length())


_GELU_INDEX = raw((len(approx.GELU_DELTA) - 2).bit_length())
_GELU_REST = raw(ACT.frac - approx.GELU_STEP_BITS)
_EXP2_INDEX = raw(approx.EXP2_INDEX_BITS)
_EXP2_REST = raw(approx.TABLE_FRAC - approx.EXP2_INDEX_BITS)
_RECIP_INDEX = raw(approx.RECIP_INDEX_BITS)
_RECIP_REST = raw(approx.TABLE_FRAC - approx.RECIP_INDEX_BITS)
_RSQRT_INDEX = raw((len(approx.RSQRT_TABLE) - 2).bit_length())
_RSQRT_REST = raw(approx.TABLE_FRAC - approx.RSQRT_INDEX_BITS)
#: The parts of composed kernels: compiled like kernels, checked through the kernel they make.
PARTS = {k.name: k for k in [
    Kernel("gelu_index", "gelu", {"x": ACT},
           {"x": ACT, "addr": _GELU_INDEX, "rest": _GELU_REST, "in_table": raw(1)}),
    Kernel("gelu_finish", "gelu", {"x": ACT, "rest": _GELU_REST, "in_table": raw(1),
                                   "low": _entry("GELU_DELTA"), "high": _entry("GELU_DELTA")},
           {"y": ACT}),
    Kernel("exp2_index", "softmax", {"d": DIFF},
           {"addr": _EXP2_INDEX, "rest": _EXP2_REST, "shift": raw(16)}, ops_per_stage=1),
    Kernel("exp2_finish", "softmax", {"rest": _EXP2_REST, "shift": raw(16),
                                      "low": _entry("EXP2_TABLE"), "high": _entry("EXP2_TABLE")},
           {"power": PROB}, ops_per_stage=1),
    Kernel("softmax_prepare", "softmax", {"maximum": ACT, "total": SUM, "score": ACT},
           {"d": DIFF, "rises": raw(1), "new_max": ACT, "total": SUM}, ops_per_stage=1),
    Kernel("softmax_finish", "softmax", {"power": PROB, "rises": raw(1), "new_max": ACT,
                                         "total": SUM},
           {"new_max": ACT, "new_total": SUM, "scale": PROB, "term": PROB}, ops_per_stage=1),
    Kernel("reciprocal_index", "softmax", {"total": SUM},
           {"addr": _RECIP_INDEX, "rest": _RECIP_REST, "e": EXPONENT}, ops_per_stage=1),
    Kernel("reciprocal_finish", "softmax", {"rest": _RECIP_REST, "e": EXPONENT,
                                            "low": _entry("RECIP_TABLE"),
                                            "high": _entry("RECIP_TABLE")},
           {"r": MANTISSA, "e": EXPONENT}),
    Kernel("ln_stats_index", "layernorm", {"total": TOTAL, "squares": SQUARES, "dim": raw(16),
                                           "eps": raw(32)},
           {"addr": _RSQRT_INDEX, "rest": _RSQRT_REST, "e": EXPONENT}, ops_per_stage=1),
    Kernel("ln_stats_finish", "layernorm", {"rest": _RSQRT_REST, "e": EXPONENT,
                                            "low": _entry("RSQRT_TABLE"),
                                            "high": _entry("RSQRT_TABLE")},
           {"r": MANTISSA, "e": EXPONENT}, ops_per_stage=1),
]}


def _kernel(name: str) -> Kernel:
    return KERNELS[name] if name in KERNELS else PARTS[name]


def pipelines(kernel: str) -> tuple:
    """The XLS pipelines the unit of ``kernel`` instantiates: itself, or those of the steps
    of a composed kernel (whose own function only runs in the JIT)."""
    if kernel not in COMPOSED:
        return (kernel,)
    return tuple(p for step in COMPOSED[kernel] if not isinstance(step, Table)
                 for p in (pipelines(step) if step in KERNELS else (step,)))


def all_pipelines() -> list[str]:
    """Every XLS pipeline the hardware instantiates."""
    return [p for kernel in KERNELS for p in pipelines(kernel)]


def _xls():
    try:
        import xls
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise HlsError(f"xls-python is not importable ({e}): run `make setup`") from None
    return xls


def _check_generated_fresh():
    stale = generated.stale()
    if stale:
        raise HlsError(f"{', '.join(str(p) for p in stale)} stale against pyref: run `make hls` "
                       "(it regenerates them) and commit the result")


@cache
def optimised_ir(name: str) -> str:
    """The optimised IR package text of kernel ``name``."""
    _check_generated_fresh()
    kernel = _kernel(name)
    xls = _xls()
    try:
        ir = xls.convert_dslx_to_ir(
            kernel.source.read_text(), str(kernel.source), kernel.module,
            additional_search_paths=[str(HERE)],
        )
    except Exception as e:
        raise HlsError(f"DSLX conversion of {kernel.source} failed:\n{e}") from None
    return xls.optimize_ir(ir, _top(kernel))


def _top(kernel: Kernel) -> str:
    return _xls().mangle_dslx_name(kernel.module, kernel.name)


def _function(name: str):
    package = _xls().parse_ir_package(optimised_ir(name))
    return package, package.get_function(_top(_kernel(name)))


def jit(name: str):
    """Kernel ``name`` as a function of numpy code arrays, run natively by the XLS JIT.

    Returns
    -------
    callable
        ``f(**codes) -> {output: np.ndarray}`` taking one int array per kernel input, by
        argument name.
    """
    xls = _xls()
    kernel = _kernel(name)
    compiled = _function(name)[1].to_jit()
    makers = [(xls.Value.make_sbits if f.signed else xls.Value.make_ubits, f.bits)
              for f in kernel.inputs.values()]
    outputs = list(kernel.outputs.items())

    def to_int(value, fmt):
        bits = value.get_bits()
        return bits.to_int64() if fmt.signed else bits.to_uint64()

    def run(**codes):
        if set(codes) != set(kernel.inputs):
            raise TypeError(f"{name} takes {', '.join(kernel.inputs)}, got {', '.join(codes)}")
        arrays = [f.fit(codes[k], check=True).ravel() for k, f in kernel.inputs.items()]
        out = np.empty((len(outputs), arrays[0].size), dtype=np.int64)
        for i, args in enumerate(zip(*arrays, strict=True)):
            result = compiled.run([make(w, int(a)) for (make, w), a in zip(makers, args,
                                                                           strict=True)])
            if len(outputs) == 1:
                out[0, i] = to_int(result, outputs[0][1])
            else:
                for j, (_, fmt) in enumerate(outputs):
                    out[j, i] = to_int(result.get_element(j), fmt)
        return {k: row for (k, _), row in zip(outputs, out, strict=True)}

    return run


@cache
def _verilog(kernel: Kernel) -> str:
    """The pipeline of ``kernel``, cached per schedule (a changed stage count is new)."""
    name = kernel.name
    if name in COMPOSED:
        raise HlsError(f"{name} is built from {pipelines(name)}, not compiled itself")
    package, _ = _function(name)
    # No valid signal: with one, XLS loads each stage's registers only while that stage's
    # valid is set, an enable net to every register of the stage and to its multipliers'
    # input registers, which the placer then carries across the chip.
    try:
        result = package.schedule_and_codegen(
            generator="pipeline", delay_model=DELAY_MODEL, clock_period_ps=kernel.ops_per_stage,
            module_name=kernel.name, top=_top(kernel), flop_inputs=FLOP_IO,
            flop_outputs=FLOP_IO,
        )
    except Exception as e:
        raise HlsError(f"XLS could not schedule {name}: {e}") from None
    return result.get_verilog_text()


def codegen(name: str, outdir: Path) -> Path:
    """Write ``<outdir>/<name>.v`` (pipelined Verilog) and ``<name>.json``; returns the .v."""
    kernel = _kernel(name)
    text = _verilog(kernel)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    verilog = outdir / f"{name}.v"
    verilog.write_text(text)
    (outdir / f"{name}.json").write_text(json.dumps(kernel.describe(), indent=2) + "\n")
    return verilog
