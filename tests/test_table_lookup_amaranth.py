"""TableLookup in Amaranth's simulator: neighbouring entries and passed fields, with stalls."""

import gc
import random
import warnings

import pytest
from amaranth.lib import data

from hw.table_lookup import TableLookup
from tests.amaranth_streams import run_stream

TABLE = [(7 * i * i + 3) % 1000 for i in range(40)]
IN = data.StructLayout({"tag": 8, "index": 6})
OUT = data.StructLayout({"tag": 8, "low": 10, "high": 10})


@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_lookup_returns_neighbours_and_passes_fields(stall):
    rng = random.Random(3)
    requests = [{"tag": rng.randrange(256), "index": rng.randrange(len(TABLE) - 1)}
                for _ in range(200)]
    got = run_stream(TableLookup(TABLE, IN, OUT), requests, len(requests), rng, stall)
    assert [(g.tag, g.low, g.high) for g in got] == [
        (r["tag"], TABLE[r["index"]], TABLE[r["index"] + 1]) for r in requests]


def test_missing_fields_are_named():
    # The refused component is never elaborated; collect it while its warning is muted.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"lacks fields \['index'\]") as refused:
            TableLookup(TABLE, data.StructLayout({"tag": 8}), OUT)
        del refused
        gc.collect()
