"""MemoryRead (behind CreditStream) and Chain in Amaranth's simulator, with stalls."""

import gc
import random
import warnings

import pytest
from amaranth.lib import data
from amaranth.lib.memory import Memory

from hw.chain import Chain
from hw.credit_stream import CreditStream
from hw.memory_read import MemoryRead
from tests.amaranth_streams import run_stream

LOWS = [(7 * i * i + 3) % 1000 for i in range(40)]
HIGHS = [(5 * i + 11) % 1000 for i in range(40)]
IN = data.StructLayout({"tag": 8, "addr": 6})
OUT = data.StructLayout({"tag": 8, "low": 10, "high": 10})


def memory_read(registered=False):
    return MemoryRead({"low": Memory(shape=10, depth=len(LOWS), init=LOWS),
                       "high": Memory(shape=10, depth=len(HIGHS), init=HIGHS)}, IN, OUT,
                      registered=registered)


@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_read_returns_the_word_and_passes_fields(stall, registered):
    rng = random.Random(3)
    requests = [{"tag": rng.randrange(256), "addr": rng.randrange(len(LOWS))}
                for _ in range(200)]
    got = run_stream(CreditStream(memory_read(registered)), requests, len(requests), rng,
                     stall)
    assert [(g.tag, g.low, g.high) for g in got] == [
        (r["tag"], LOWS[r["addr"]], HIGHS[r["addr"]]) for r in requests]


def test_missing_fields_are_named():
    # The refused component is never elaborated; collect it while its warning is muted.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"lacks fields \['addr', 'high'\]") as refused:
            MemoryRead({"low": Memory(shape=10, depth=4, init=[])},
                       data.StructLayout({"tag": 8}), OUT)
        del refused
        gc.collect()


def test_chain_refuses_mismatched_payloads():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="MemoryRead gives .* but MemoryRead takes"):
            Chain(memory_read(), memory_read())
        gc.collect()
