"""Hardware approximations of the non-linear functions, bit-exact in int64 numpy.

Each function is a table of a smooth function plus linear interpolation, so it costs one
small multiplier and one block RAM, and its error is bounded by the table step (documented
per table in docs/numerics.md, measured by `scripts/approx_report.py`).

* GELU, as Edge-MoE computes it: ``GELU(x) = ReLU(x) - delta(|x|)`` with
  ``delta(a) = a * Phi(-a)`` tabulated every 1/32 on [0, 5.5]; past the table GELU is ReLU.
* ``exp`` in base 2: ``e^d = 2^(d log2 e)``, an integer shift times a table of ``2^f``.
* Reciprocal and reciprocal square root: normalise to [1, 2) or [1, 4) by the leading
  one, then a table of ``1/m`` or ``1/sqrt(m)``.
* Softmax in one pass: a running maximum and a running sum that is rescaled whenever the
  maximum grows; normalised at the end with the reciprocal of the sum.
"""

from __future__ import annotations

import math

import numpy as np

from pyref.formats import ACT, DATAPATH, PROB, SUM, FormatError, QFormat

#: Fraction bits of every table entry and of the interpolated table outputs.
TABLE_FRAC = 16


def _table(function, start: float, entries: int, step_bits: int) -> np.ndarray:
    """``function`` at ``start + i / 2**step_bits`` as codes with `TABLE_FRAC` fraction bits."""
    return np.array([round(function(start + i / 2**step_bits) * 2**TABLE_FRAC)
                     for i in range(entries)], dtype=np.int64)


def _interpolate(table: np.ndarray, index: np.ndarray, rest: np.ndarray, rest_bits: int):
    """``table[index] + (table[index + 1] - table[index]) * rest / 2**rest_bits``, rounded."""
    low = table[index]
    return low + DATAPATH.round_shift((table[index + 1] - low) * rest, rest_bits)


# -- GELU ----------------------------------------------------------------------------------
GELU_STEP_BITS = 5  #: table step 2**-5 = 1/32, as in Edge-MoE
GELU_LIMIT = 5.5  #: past this |x|, delta(|x|) < 1e-7 and GELU is ReLU
GELU_DELTA = _table(lambda a: a * 0.5 * math.erfc(a / math.sqrt(2)), 0,
                    int(GELU_LIMIT * 2**GELU_STEP_BITS) + 1, GELU_STEP_BITS)


def gelu_fixed(x, fmt: QFormat = ACT) -> np.ndarray:
    """GELU of ``fmt`` codes, returning ``fmt`` codes (saturated)."""
    x = fmt.fit(x, check=True)
    a = np.abs(x)
    shift = fmt.frac - GELU_STEP_BITS
    index = a >> shift if shift >= 0 else a << -shift
    rest = a & ((1 << shift) - 1) if shift > 0 else np.zeros_like(a)
    inside = index < len(GELU_DELTA) - 1
    safe = np.where(inside, index, 0)
    delta = np.where(inside, _interpolate(GELU_DELTA, safe, rest, max(shift, 0)), 0)
    delta = fmt.round_shift(delta, TABLE_FRAC - fmt.frac)
    return fmt.fit(np.maximum(x, 0) - delta)


# -- exp ------------------------------------------------------------------------------------
#: log2(e) as an unsigned code with 15 fraction bits.
LOG2E = round(math.log2(math.e) * 2**15)
EXP2_INDEX_BITS = 8  #: table of 2^f every 1/256 on [0, 1]
EXP2_TABLE = _table(lambda f: 2.0**f, 0, 2**EXP2_INDEX_BITS + 1, EXP2_INDEX_BITS)


def exp_fixed(d, fmt: QFormat = ACT) -> np.ndarray:
    """``e^d`` for ``d <= 0`` given as ``fmt`` codes (any width), as `PROB` codes."""
    d = np.asarray(d, dtype=np.int64)
    if (d > 0).any():
        raise FormatError("exp_fixed takes d <= 0 (differences from the running maximum)")
    if fmt.frac + 15 < TABLE_FRAC:
        raise FormatError(f"exp_fixed needs at least {TABLE_FRAC - 15} fraction bits in {fmt}")
    # z = d * log2(e) with TABLE_FRAC fraction bits, floored: z = -n + f, 0 <= f < 1.
    z = (d * LOG2E) >> (fmt.frac + 15 - TABLE_FRAC)
    n = -(z >> TABLE_FRAC)
    f = z & ((1 << TABLE_FRAC) - 1)
    rest_bits = TABLE_FRAC - EXP2_INDEX_BITS
    power = _interpolate(EXP2_TABLE, f >> rest_bits, f & ((1 << rest_bits) - 1), rest_bits)
    return DATAPATH.round_shift(power, TABLE_FRAC - PROB.frac + n)


# -- float exp, as Edge-MoE computes it (a baseline to compare costs with) -----------------
#: Least-squares fit of 2^f on [0, 1] at 200 Chebyshev nodes, degree 5, in float32.
_NODES = 0.5 - 0.5 * np.cos(np.pi * (np.arange(200) + 0.5) / 200)
EXP_FLOAT_COEFFS = np.polynomial.polynomial.polyfit(_NODES, 2.0**_NODES, 5).astype(np.float32)
EXP_FLOAT_LOG2E = np.float32(math.log2(math.e))
#: Lowest input (in units) whose result is still a normal float32: below it float32 results
#: go subnormal, which the hardware flushes to zero like XLS's float library.
EXP_FLOAT_MIN = -87


def exp_float32(d, fmt: QFormat = ACT) -> np.ndarray:
    """``e^(d / 2^fmt.frac)`` in float32, returned as its bit patterns (int64).

    The usual float recipe, each step rounded to float32 (to nearest, ties to even):
    ``t = x * log2(e)``, ``n = floor(t)``, ``2^(t - n)`` by Horner's rule on
    `EXP_FLOAT_COEFFS` (a multiply and an add per step), then scaled by ``2^n``.
    """
    d = np.asarray(d, dtype=np.int64)
    if (d > 0).any() or (d < EXP_FLOAT_MIN << fmt.frac).any():
        raise FormatError(f"exp_float32 takes {EXP_FLOAT_MIN} <= d <= 0")
    x = d.astype(np.float32) * np.float32(2.0**-fmt.frac)
    t = x * EXP_FLOAT_LOG2E
    n = np.floor(t)
    f = t - n
    p = np.full(f.shape, EXP_FLOAT_COEFFS[-1], dtype=np.float32)
    for c in EXP_FLOAT_COEFFS[-2::-1]:
        p = p * f + c
    return np.ldexp(p, n.astype(np.int64)).astype(np.float32).view(np.uint32).astype(np.int64)


# -- reciprocal and reciprocal square root -------------------------------------------------
RECIP_INDEX_BITS = 8  #: table of 1/m every 1/256 on [1, 2]
RECIP_TABLE = _table(lambda m: 1.0 / m, 1, 2**RECIP_INDEX_BITS + 1, RECIP_INDEX_BITS)
RSQRT_INDEX_BITS = 7  #: table of 1/sqrt(m) every 1/128 on [1, 4]
RSQRT_TABLE = _table(lambda m: 1.0 / math.sqrt(m), 1, 3 * 2**RSQRT_INDEX_BITS + 1,
                     RSQRT_INDEX_BITS)


def _normalise(v: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """``v / 2**exponent`` with `TABLE_FRAC` fraction bits, truncated (a plain shifter)."""
    up = TABLE_FRAC - exponent
    return np.where(up >= 0, v << np.maximum(up, 0), v >> np.maximum(-up, 0))


def reciprocal(v) -> tuple[np.ndarray, np.ndarray]:
    """``1/v`` for integers ``v >= 1`` as ``(r, e)``: ``1/v ~ r * 2**-(TABLE_FRAC + e)``.

    ``r`` lies in (2**15, 2**16]: a 17-bit mantissa from the table of ``1/m``, ``m`` in [1, 2).
    """
    v = np.asarray(v, dtype=np.int64)
    if (v < 1).any():
        raise FormatError("reciprocal takes integers >= 1")
    e = _bit_length(v) - 1
    m = _normalise(v, e) - (1 << TABLE_FRAC)
    rest_bits = TABLE_FRAC - RECIP_INDEX_BITS
    return _interpolate(RECIP_TABLE, m >> rest_bits, m & ((1 << rest_bits) - 1), rest_bits), e


def rsqrt(v) -> tuple[np.ndarray, np.ndarray]:
    """``1/sqrt(v)`` for integers ``v >= 1`` as ``(r, e)``: ``~ r * 2**-(TABLE_FRAC + e)``."""
    v = np.asarray(v, dtype=np.int64)
    if (v < 1).any():
        raise FormatError("rsqrt takes integers >= 1")
    e = (_bit_length(v) - 1) // 2
    m = _normalise(v, 2 * e) - (1 << TABLE_FRAC)
    rest_bits = TABLE_FRAC - RSQRT_INDEX_BITS
    return _interpolate(RSQRT_TABLE, m >> rest_bits, m & ((1 << rest_bits) - 1), rest_bits), e


def _bit_length(v: np.ndarray) -> np.ndarray:
    """Position of the leading one plus one, for positive int64 (a priority encoder)."""
    out = np.zeros(v.shape, dtype=np.int64)
    rest = v.copy()
    for step in (32, 16, 8, 4, 2, 1):
        big = rest >= (1 << step)
        out += np.where(big, step, 0)
        rest = np.where(big, rest >> step, rest)
    return out + (rest > 0)


# -- softmax --------------------------------------------------------------------------------
def softmax_step(maximum, total, score, fmt: QFormat = ACT):
    """One online-softmax update with a new score.

    ``total`` is a `SUM` code of ``sum exp(s - maximum)`` over the scores seen so far.
    Returns ``(maximum, total, scale, term)``: the new running state, the factor
    ``exp(old maximum - new maximum)`` (exactly 1.0 when the maximum holds) that rescaled
    the old total, and the new score's ``exp(score - new maximum)``. Attention applies the
    same ``scale`` and ``term`` to its output accumulator.
    """
    new_max = np.maximum(maximum, score)
    scale = exp_fixed(maximum - new_max, fmt)
    term = exp_fixed(score - new_max, fmt)
    total = SUM.fit(DATAPATH.round_shift(total * scale, PROB.frac) + term)
    return new_max, total, scale, term


def softmax_state(scores, fmt: QFormat = ACT, order=None):
    """Single pass over the last axis of ``scores``: the running (maximum, total) at the end.

    ``order`` (a permutation of the last axis, per row if 2-D) is the visiting order; the
    result depends on it only through rounding.
    """
    scores = fmt.fit(scores, check=True)
    if order is not None:
        scores = np.take_along_axis(scores, np.broadcast_to(order, scores.shape), axis=-1)
    maximum = scores[..., 0]
    total = np.full(maximum.shape, 1 << PROB.frac, dtype=np.int64)
    for j in range(1, scores.shape[-1]):
        maximum, total, _, _ = softmax_step(maximum, total, scores[..., j], fmt)
    return maximum, total


def softmax_fixed(x, axis: int = -1, fmt: QFormat = ACT) -> np.ndarray:
    """Softmax of ``fmt`` codes along ``axis`` as `PROB` codes (one pass, then normalise)."""
    x = np.moveaxis(fmt.fit(x, check=True), axis, -1)
    if x.shape[-1] == 0:
        raise FormatError("softmax of an empty row")
    maximum, total = softmax_state(x, fmt)
    terms = exp_fixed(x - maximum[..., None], fmt)
    return np.moveaxis(PROB.fit(normalise(terms, total)), -1, axis)


def normalise(values, total, drop_bits: int = 0) -> np.ndarray:
    """``values / total / 2**drop_bits``, rounded once, with the reciprocal of a `SUM` code.

    ``total`` has one entry per row of ``values``; the last axis of ``values`` runs along a
    row. ``drop_bits`` removes fraction bits in the same rounding.
    """
    r, e = reciprocal(total)
    return scale_by_reciprocal(values, r[..., None], e[..., None], drop_bits)


def scale_by_reciprocal(values, r, e, drop_bits: int = 0) -> np.ndarray:
    """``values`` times ``1/total`` given as `reciprocal`'s ``(r, e)`` of a `SUM` code."""
    # 1/total = r * 2**-(TABLE_FRAC + e) * 2**SUM.frac.
    shift = TABLE_FRAC + np.asarray(e) - SUM.frac + drop_bits
    return DATAPATH.round_shift(np.asarray(values) * r, shift)
