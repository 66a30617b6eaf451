"""Payload packing from port descriptions agrees with Amaranth's own layouts."""

import pytest
from amaranth.hdl import Const
from hypothesis import given
from hypothesis import strategies as st

from hw.emit import describe_shape
from hw.mac import beat_layout
from pyref.formats import ACT, WEIGHT
from sim.payload import pack, unpack

LANES = 3
LAYOUT = beat_layout(LANES)
SHAPE = describe_shape(LAYOUT)

act = st.integers(ACT.min_code, ACT.max_code)
weight = st.integers(WEIGHT.min_code, WEIGHT.max_code)
beats = st.fixed_dictionaries({
    "act": st.lists(act, min_size=LANES, max_size=LANES),
    "weight": st.lists(weight, min_size=LANES, max_size=LANES),
    "last": st.integers(0, 1),
})


@given(beats)
def test_pack_matches_amaranth_and_unpack_inverts_it(beat):
    bits = pack(SHAPE, beat)
    assert bits == Const.cast(LAYOUT.const(beat)).value & ((1 << LAYOUT.size) - 1)
    assert unpack(SHAPE, bits) == beat


def test_values_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="does not fit a 16-bit signed"):
        pack(SHAPE, {"act": [40000, 0, 0], "weight": [0, 0, 0], "last": 0})
    with pytest.raises(ValueError, match="needs 3 elements"):
        pack(SHAPE, {"act": [0], "weight": [0, 0, 0], "last": 0})
    with pytest.raises(ValueError, match="lacks fields"):
        pack(SHAPE, {"act": [0, 0, 0]})
