"""Approximations against float64 math, with the error bounds docs/numerics.md states."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyref import approx
from pyref.formats import ACT, PROB, FormatError

ALL_ACT = np.arange(ACT.min_code, ACT.max_code + 1)
erf = np.vectorize(math.erf)


def exact_gelu(x):
    return x * 0.5 * (1 + erf(x / math.sqrt(2)))


def exact_softmax(codes):
    x = ACT.dequantise(codes)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_gelu_error_over_every_act_code_is_below_2_to_minus_8():
    # Half an output LSB (2^-9) is unavoidable; the table adds under 2^-14.
    error = np.abs(ACT.dequantise(approx.gelu_fixed(ALL_ACT)) - exact_gelu(ACT.dequantise(ALL_ACT)))
    assert error.max() <= 2**-8
    assert error.max() < 2**-9 + 2**-14


def test_gelu_is_monotonic_wherever_the_exact_function_is():
    got = approx.gelu_fixed(ALL_ACT)
    exact = exact_gelu(ACT.dequantise(ALL_ACT))
    step_exact, step_got = np.diff(exact), np.diff(got)
    # Exact GELU falls until x = -0.7518 and rises after; pairs straddling the minimum are
    # neither, so only pairs on one side are checked.
    rising, falling = step_exact > 0, step_exact < 0
    minimum = np.argmin(exact)
    side = np.arange(len(step_exact))
    assert (step_got[rising & (side >= minimum)] >= 0).all()
    assert (step_got[falling & (side < minimum - 1)] <= 0).all()


@st.composite
def score_rows(draw):
    n = draw(st.integers(1, 129))
    kind = draw(st.sampled_from(["random", "equal", "dominant", "narrow"]))
    if kind == "equal":
        return np.full(n, draw(st.integers(ACT.min_code, ACT.max_code)))
    codes = np.array(draw(st.lists(st.integers(ACT.min_code, ACT.max_code), min_size=n,
                                   max_size=n)))
    if kind == "narrow":
        codes = codes // 256  # scores within +-0.5, where every term matters
    if kind == "dominant":
        codes[draw(st.integers(0, n - 1))] = ACT.max_code
    return codes


def softmax_bound(n: int) -> float:
    """2^-10 for the exp2, the reciprocal and the output rounding, plus half a PROB LSB
    per exp term: each of a row's ``n`` terms is rounded to PROB before it joins the
    total, so a row of many tiny terms carries their rounding into every probability."""
    return 2**-10 + n * 2**-16


@settings(max_examples=300)
@given(score_rows())
def test_softmax_is_within_its_bound_and_sums_to_one(row):
    p = approx.softmax_fixed(row)
    assert np.abs(PROB.dequantise(p) - exact_softmax(row)).max() <= softmax_bound(len(row))
    # Each probability rounds by half an LSB; the sum of the exponentials is exact to 2^-15.
    assert abs(PROB.dequantise(p).sum() - 1) <= len(row) * 2**-16 + 2**-12


def test_softmax_worst_rows_are_many_tiny_terms_beside_one_score():
    # Found by hypothesis: zeros and one score near 0.3, whose exp terms each round up by
    # most of an LSB. The worst such row (measured) sits at twice 2^-10 but within bound.
    worst = 0.0
    for top in range(2000, 3200, 2):
        row = np.zeros(129, dtype=np.int64)
        row[-1] = top
        error = np.abs(PROB.dequantise(approx.softmax_fixed(row)) - exact_softmax(row)).max()
        worst = max(worst, error)
    assert 2**-10 < worst <= softmax_bound(129)


def test_softmax_edge_rows():
    for n in range(1, 130):
        for row in (np.full(n, ACT.min_code), np.full(n, ACT.max_code), np.arange(n) * 250,
                    np.where(np.arange(n) == n // 2, ACT.max_code, ACT.min_code)):
            assert np.abs(PROB.dequantise(approx.softmax_fixed(row))
                          - exact_softmax(row)).max() <= 2**-10
    assert approx.softmax_fixed([5]).tolist() == [1 << PROB.frac]


def test_softmax_along_another_axis_matches_the_last():
    rng = np.random.default_rng(0)
    x = ACT.random(rng, (4, 7, 3)) // 64
    assert np.array_equal(approx.softmax_fixed(x, axis=1),
                          np.moveaxis(approx.softmax_fixed(np.moveaxis(x, 1, -1)), -1, 1))


def test_exp_reciprocal_and_rsqrt_errors():
    d = np.arange(-(1 << 16) + 1, 1)
    assert np.abs(PROB.dequantise(approx.exp_fixed(d)) - np.exp(ACT.dequantise(d))).max() < 2**-15
    assert approx.exp_fixed([0]).tolist() == [1 << PROB.frac]
    v = np.unique(np.geomspace(1, 2**46, 200_000).astype(np.int64))
    r, e = approx.reciprocal(v)
    assert np.abs(r * 2.0 ** -(approx.TABLE_FRAC + e) * v - 1).max() < 2**-14
    r, e = approx.rsqrt(v)
    assert np.abs(r * 2.0 ** -(approx.TABLE_FRAC + e) * np.sqrt(v) - 1).max() < 2**-14


def test_bad_inputs_are_named():
    with pytest.raises(FormatError, match="outside"):
        approx.gelu_fixed([1 << 20])
    with pytest.raises(FormatError, match="d <= 0"):
        approx.exp_fixed([1])
    with pytest.raises(FormatError, match=">= 1"):
        approx.reciprocal([0])
    with pytest.raises(FormatError, match="empty"):
        approx.softmax_fixed(np.zeros((3, 0), dtype=np.int64))


def test_float_exp_baseline_is_float32_accurate():
    # Rounding t = x log2(e) to float32 costs up to 2^-24 |t| of the exponent, so the error
    # grows with |x|: 3.9e-6 at x = -87, 1.5e-7 above -1.
    d = np.arange(approx.EXP_FLOAT_MIN << ACT.frac, 1)
    got = approx.exp_float32(d).astype(np.uint32).view(np.float32).astype(np.float64)
    relative = np.abs(got / np.exp(d / 2**ACT.frac) - 1)
    assert relative.max() < 4e-6 and relative[d > -(1 << ACT.frac)].max() < 2e-7
    with pytest.raises(FormatError, match="exp_float32 takes"):
        approx.exp_float32([1])
