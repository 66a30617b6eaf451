"""The MoE unit's pure-Amaranth parts in Amaranth's simulator, against pyref's routing."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.expert_combine import ExpertCombine
from hw.patch_reorder import PatchReorder
from hw.top_k import TopK
from pyref import intmodel
from pyref.formats import ACT, PROB
from tests.amaranth_streams import receive, run_stream, send


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


# One token of one chunk: both experts' only beat adds into the same row, as close
# together as the unit allows.
@pytest.mark.parametrize("lanes,chunks,tokens", [(4, 2, 9), (8, 1, 9), (8, 1, 1)])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_expert_combine_sums_weighted_expert_outputs(lanes, chunks, tokens, stall):
    # Two layers one after the other: the second must not see the first's sums.
    rng = np.random.default_rng(lanes + chunks)
    experts, k = 4, 2
    layers = []
    for _ in range(2):
        routing = intmodel.route_logits(ACT.quantise(rng.normal(0, 2, (tokens, experts))), k)
        y = {e: ACT.random(rng, (len(routing.queues[e]), lanes * chunks)) for e in routing.used}
        y[routing.used[0]][0] = ACT.min_code  # a full-scale row
        layers.append((routing, y))
    dut = ExpertCombine(lanes, tokens, chunks + 1)  # room for longer rows than these
    got = []

    async def drive(ctx):
        for routing, y in layers:
            schedule = intmodel.schedule(routing)
            await send(ctx, dut.cmd, [{"tokens": tokens, "chunks": chunks}], random.Random(1))
            for e in routing.used:
                mine = [(t, s) for se, t, s in schedule if se == e]
                await send(ctx, dut.queue, [
                    {"token": t, "score": s, "last": int(i == len(mine) - 1),
                     "final": int(e == routing.used[-1] and i == len(mine) - 1)}
                    for i, (t, s) in enumerate(mine)], random.Random(e), idle=stall)
                await send(ctx, dut.y, [row for c in range(chunks)
                                        for row in y[e][:, c * lanes:(c + 1) * lanes].tolist()],
                           random.Random(e + 10), idle=stall)

    async def collect(ctx):
        got.extend(await receive(ctx, dut.o, 2 * tokens * chunks, random.Random(2), stall))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(drive)
    sim.add_testbench(collect)
    sim.run_until(1e-8 * 6000)
    expected = [intmodel.combine(routing, y) for routing, y in layers]
    assert [[int(v) for v in row] for row in got] == [
        out[t, c * lanes:(c + 1) * lanes].tolist() for out in expected for t in range(tokens)
        for c in range(chunks)]
