"""Element-wise ops of the special-function kernels: input domains and references.

Each `OpCase` draws inputs (edge cases first, then random values over the whole legal
domain) and computes the reference outputs with the integer model. Vector files, the XLS
JIT checks and the Verilator benches all use these, with the kernels' argument names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pyref import approx, intmodel, ops
from pyref.formats import ACC, ACT, ATTN, PROB, SUM, WEIGHT


@dataclass(frozen=True)
class OpCase:
    """Inputs ``draw(rng, n) -> {arg: int array}`` and ``reference(**inputs) -> {out: array}``."""

    draw: Callable
    reference: Callable


def _mixed(edges, random_values) -> np.ndarray:
    return np.concatenate([np.asarray(edges, dtype=np.int64).ravel(), random_values])


def _requant_inputs(rng, n):
    shift = ACC.frac - ACT.frac
    half = 1 << (shift - 1)
    limits = np.array([ACT.min_code, ACT.max_code], dtype=np.int64) << shift
    ties = (ACT.random(rng, 400) << shift) + half
    near = np.add.outer(np.concatenate([ACC.edges(), limits, ties]), np.arange(-2, 3))
    in_range = rng.integers(limits[0] - half, limits[1] + half, size=n * 2 // 3)
    # Edges' neighbours wrap like the accumulator register would.
    return {"x": ACC.fit(_mixed(near, np.concatenate([in_range, ACC.random(rng, n // 3)])))}


def _exp_inputs(rng, n):
    low = ACT.min_code - ACT.max_code  # the most negative score difference
    return {"d": _mixed([0, -1, -2, low, low + 1, -256, -257],
                        -np.abs(rng.integers(low, 1, size=n)))}


def _exp_float_inputs(rng, n):
    low = approx.EXP_FLOAT_MIN << ACT.frac
    return {"d": _mixed([0, -1, -2, -255, -256, -257, low, low + 1],
                        rng.integers(low, 1, size=n))}


def _softmax_step_inputs(rng, n):
    one = 1 << PROB.frac
    # Every pair of edge scores with a fresh, a mid and a saturating running sum.
    maximum, score, total = np.meshgrid(ACT.edges(), ACT.edges(),
                                        [one, one + 1, SUM.max_code // 2, SUM.max_code],
                                        indexing="ij")
    return {"maximum": _mixed(maximum, ACT.random(rng, n)),
            "total": _mixed(total, rng.integers(one, SUM.max_code // 2, size=n)),
            "score": _mixed(score, ACT.random(rng, n))}


def _reciprocal_inputs(rng, n):
    one = 1 << PROB.frac
    powers = np.int64(1) << np.arange(32)
    return {"total": _mixed(np.concatenate([powers[:-1], powers[1:] - 1, [one, SUM.max_code]]),
                            rng.integers(one, SUM.max_code, size=n, endpoint=True))}


def _normalise_inputs(rng, n):
    inputs = _divide_inputs(rng, n)
    r, e = approx.reciprocal(inputs["total"])
    return {"term": inputs["term"], "r": r, "e": e}


def _attention_normalise_inputs(rng, n):
    """Accumulators of rows of 1 to 511 keys with their totals' reciprocals, edges included."""
    one = 1 << PROB.frac
    total = _mixed(np.array([one, 2 * one, 511 * one, SUM.max_code // 2]),
                   rng.integers(one, 511 * one, size=n, endpoint=True))
    bound = total << (ACT.bits - 1)
    acc = np.clip(rng.integers(-bound, bound, endpoint=True), ATTN.min_code, ATTN.max_code)
    acc[:4] = [ATTN.max_code, ATTN.min_code, 0, -1]
    r, e = approx.reciprocal(total)
    return {"acc": acc, "r": r, "e": e}


def _ln_rows(rng, count: int):
    """``count`` (at least 4) rows of both configs' widths, edge rows first; and their widths."""
    dims = rng.choice([32, 192], size=max(count, 4))
    rows = [ACT.quantise(rng.normal(0, rng.uniform(0.01, 30), d)) for d in dims]
    rows[:3] = [np.zeros(dims[0], dtype=np.int64), np.full(dims[1], ACT.max_code),
                np.where(np.arange(dims[2]) % 2, ACT.max_code, ACT.min_code)]
    return rows, dims


def _ln_sums(rows, dims) -> dict:
    """The per-row inputs of ``ln_stats``."""
    return {"total": np.array([r.sum() for r in rows]),
            "squares": np.array([(r * r).sum() for r in rows]), "dim": dims,
            "eps": np.array([intmodel.layernorm_eps(1e-6, d) for d in dims])}


def _ln_accumulate_inputs(rng, n):
    rows, _ = _ln_rows(rng, n // 32)  # about n values
    x = np.concatenate(rows)
    before = [np.concatenate([[0], np.cumsum(r)[:-1]]) for r in rows]
    squares = [np.concatenate([[0], np.cumsum(r * r)[:-1]]) for r in rows]
    return {"total": np.concatenate(before), "squares": np.concatenate(squares), "x": x}


def _ln_stats_inputs(rng, n):
    return _ln_sums(*_ln_rows(rng, n))


def _ln_apply_inputs(rng, n):
    rows, dims = _ln_rows(rng, n // 32)  # about n values
    sums = _ln_sums(rows, dims)
    r, e = intmodel.layernorm_stats(sums["total"], sums["squares"], dims, sums["eps"])
    repeat = [len(row) for row in rows]
    x = np.concatenate(rows)
    return {"x": x, "total": np.repeat(sums["total"], repeat), "dim": np.repeat(dims, repeat),
            "r": np.repeat(r, repeat), "e": np.repeat(e, repeat),
            "gamma": _mixed([WEIGHT.min_code, WEIGHT.max_code, 0],
                            WEIGHT.random(rng, len(x) - 3)),
            "beta": _mixed([WEIGHT.max_code, WEIGHT.min_code, 0], WEIGHT.random(rng, len(x) - 3))}


def _softmax_step(maximum, total, score):
    new_max, new_total, scale, term = approx.softmax_step(maximum, total, score)
    return {"new_max": new_max, "new_total": new_total, "scale": scale, "term": term}


def _divide_inputs(rng, n):
    totals = _reciprocal_inputs(rng, n)["total"]
    totals = totals[totals >= 1 << PROB.frac]  # a softmax sum is at least 1.0
    term = PROB.random(rng, len(totals)) >> 1  # terms are at most 1.0
    term[:3] = [0, 1 << PROB.frac, 1]
    return {"term": term, "total": totals}


def _ln_accumulate(total, squares, x):
    new_total, new_squares = intmodel.layernorm_accumulate(total, squares, x)
    return {"new_total": new_total, "new_squares": new_squares}


def _pair(r_e) -> dict:
    return {"r": r_e[0], "e": r_e[1]}


#: Every op with a kernel, by kernel name.
OPCASES = {
    "requant": OpCase(_requant_inputs, lambda x: {"y": ops.requantise(x)}),
    "gelu": OpCase(lambda rng, n: {"x": np.arange(ACT.min_code, ACT.max_code + 1)},
                   lambda x: {"y": approx.gelu_fixed(x)}),
    "exp2": OpCase(_exp_inputs, lambda d: {"power": approx.exp_fixed(d)}),
    "softmax_step": OpCase(_softmax_step_inputs, _softmax_step),
    "reciprocal": OpCase(_reciprocal_inputs, lambda total: _pair(approx.reciprocal(total))),
    "normalise": OpCase(_normalise_inputs, lambda term, r, e: {
        "p": PROB.fit(approx.scale_by_reciprocal(term, r, e))}),
    "attention_normalise": OpCase(_attention_normalise_inputs, lambda acc, r, e: {
        "y": ACT.fit(approx.scale_by_reciprocal(acc, r, e, drop_bits=PROB.frac))}),
    # Baselines of the comparison with Edge-MoE: its float exp, and term * 2^15 / total.
    "exp_float": OpCase(_exp_float_inputs, lambda d: {"bits": approx.exp_float32(d)}),
    "divide": OpCase(_divide_inputs, lambda term, total: {
        "p": PROB.fit((term << PROB.frac) // total)}),
    "ln_accumulate": OpCase(_ln_accumulate_inputs, _ln_accumulate),
    "ln_stats": OpCase(_ln_stats_inputs, lambda total, squares, dim, eps: _pair(
        intmodel.layernorm_stats(total, squares, dim, eps))),
    "ln_apply": OpCase(_ln_apply_inputs, lambda x, total, dim, r, e, gamma, beta: {
        "y": intmodel.layernorm_apply(x, total, dim, r, e, gamma, beta)}),
}


def vectors(name: str, rng: np.random.Generator, n: int) -> dict:
    """Inputs and reference outputs of op ``name``: about ``n`` cases plus the edges."""
    case = OPCASES[name]
    inputs = case.draw(rng, n)
    return {**inputs, **case.reference(**inputs)}
