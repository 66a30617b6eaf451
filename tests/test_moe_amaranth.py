"""The MoE unit's pure-Amaranth parts in Amaranth's simulator, against pyref's routing."""

import random

import numpy as np
import pytest

from hw.patch_reorder import PatchReorder
from hw.top_k import TopK
from pyref import intmodel
from pyref.formats import ACT, PROB
from tests.amaranth_streams import run_stream


@pytest.mark.parametrize("k,length", [(1, 4), (2, 4), (2, 16), (3, 5)])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_top_k_is_a_stable_sort(k, length, stall):
    rng = np.random.default_rng(length * k)
    rows = [PROB.random(rng, length) for _ in range(30)]
    rows += [np.full(length, 7), np.arange(length)[::-1], rng.integers(0, 3, length)]  # ties
    beats = [{"value": int(v), "last": int(j == length - 1)} for row in rows
             for j, v in enumerate(row)]
    got = run_stream(TopK(k, length), beats, len(rows), random.Random(k), stall)
    for row, choice in zip(rows, got, strict=True):
        order = np.argsort(-row, kind="stable")[:k]
        assert [int(i) for i in choice.index] == order.tolist()
        assert [int(v) for v in choice.value] == row[order].tolist()


@pytest.mark.parametrize("experts,k,tokens", [(4, 2, 17), (16, 2, 129), (3, 1, 5)])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_patch_reorder_gives_each_used_experts_queue_in_token_order(experts, k, tokens, stall):
    rng = np.random.default_rng(experts + tokens)
    logits = ACT.quantise(rng.normal(0, 2, (tokens, experts)))
    logits[:, -1] = ACT.min_code  # an expert nobody chooses
    logits[1] = logits[1, 0]  # a row of ties
    layers = [intmodel.route_logits(logits, k), intmodel.route_logits(logits[:3], k)]
    beats = [{"choice": {"index": r.chosen[t].tolist(), "value": r.scores[t].tolist()},
              "last": int(t == len(r.chosen) - 1)} for r in layers for t in range(len(r.chosen))]
    expected = [entry for r in layers for entry in intmodel.schedule(r)]
    dut = PatchReorder(experts, k, tokens)
    got = run_stream(dut, beats, len(expected), random.Random(tokens), stall,
                     cycles_per_item=40)
    assert [(int(g.expert), int(g.token), int(g.score)) for g in got] == expected
    # Queue ends and the layer's end are marked.
    for layer_got in (got[:len(intmodel.schedule(layers[0]))],
                      got[len(intmodel.schedule(layers[0])):]):
        experts_seen = [int(g.expert) for g in layer_got]
        assert [bool(g.first) for g in layer_got] == [
            i == 0 or experts_seen[i - 1] != e for i, e in enumerate(experts_seen)]
        assert [bool(g.final) for g in layer_got] == [False] * (len(layer_got) - 1) + [True]
