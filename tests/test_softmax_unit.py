"""SoftmaxUnit's construction: sizes that follow from its parameters, and refused ones.

Its behaviour is checked bit-exactly in Verilator (tests/test_sim.py, sim/bench_softmax.py):
the XLS pipelines inside are Verilog instances that Amaranth's simulator cannot run.
"""

import gc
import warnings

import pytest

from hw.softmax_unit import SoftmaxUnit
from pyref.formats import PROB, SUM


def test_buffer_holds_a_row_plus_the_first_pass():
    unit = SoftmaxUnit(lanes=2, max_len=129)
    assert unit.depth >= 129 + unit.state.latency
    assert unit.depth & (unit.depth - 1) == 0  # a power of two, so the pointers wrap freely
    # The loop's total is as wide as a row of 129 ones needs.
    assert unit.state.total_shape.width == (129 << PROB.frac).bit_length()


@pytest.mark.parametrize("lanes,max_len,message", [
    (0, 16, "lanes >= 1"),
    (1, 0, "max_len >= 1"),
    (1, (SUM.max_code >> PROB.frac) + 1, "overflow the SUM format"),
])
def test_bad_parameters_are_refused_by_name(lanes, max_len, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=message):
            SoftmaxUnit(lanes=lanes, max_len=max_len)
        gc.collect()
