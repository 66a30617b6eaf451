"""The integer model: each op against float math, routing, and the whole model's fidelity."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyref import data, intmodel, metrics, ops
from pyref.config import ConfigError, get_config
from pyref.formats import ACT, BIAS, PROB, WEIGHT, FormatError
from pyref.model import load_checkpoint, parameters

TINY = get_config("tiny")


def act_like(rng, shape, scale=2.0):
    """ACT codes of roughly unit-scale activations."""
    return ACT.quantise(rng.normal(0, scale, shape))


def test_linear_is_the_mac_unit_followed_by_the_requantiser():
    rng = np.random.default_rng(1)
    x, w = act_like(rng, (5, 32)), WEIGHT.quantise(rng.normal(0, 0.3, (8, 32)))
    b = BIAS.quantise(rng.normal(0, 0.5, 8))
    expected = ops.requantise(ops.dot(x[:, None, :], w[None, :, :]) + b)
    assert np.array_equal(intmodel.linear(x, w, b), expected)


def test_layernorm_matches_float_within_its_error_budget():
    rng = np.random.default_rng(2)
    x = act_like(rng, (200, 32), 3.0)
    gamma = WEIGHT.quantise(rng.uniform(0.5, 1.5, 32))
    beta = WEIGHT.quantise(rng.normal(0, 0.2, 32))
    got = ACT.dequantise(intmodel.layernorm(x, gamma, beta, 1e-6))
    ref = torch.nn.functional.layer_norm(torch.from_numpy(ACT.dequantise(x)), (32,),
                                         torch.from_numpy(WEIGHT.dequantise(gamma)),
                                         torch.from_numpy(WEIGHT.dequantise(beta)), 1e-6).numpy()
    # Output rounding (2^-9) + NORM rounding times |gamma| < 2 (2^-11) + the rsqrt table's
    # relative 2^-14 on |x_hat * gamma| < 2*sqrt(31).
    assert np.abs(got - ref).max() <= 2**-9 + 2**-11 + 2**-14 * 2 * np.sqrt(31)


def float_attention(x, qkv_w, qkv_b, proj_w, proj_b, heads):
    """Reference attention on the dequantised integer inputs and parameters."""
    f = torch.from_numpy
    xf, qkv = f(ACT.dequantise(x)), None
    qkv = xf @ f(WEIGHT.dequantise(qkv_w)).T + f(BIAS.dequantise(qkv_b))
    n, t, d = xf.shape
    q, k, v = qkv.reshape(n, t, 3, heads, d // heads).unbind(2)
    s = torch.einsum("nqhd,nkhd->nhqk", q, k) / (d // heads) ** 0.5
    out = torch.einsum("nhqk,nkhd->nqhd", s.softmax(-1), v).reshape(n, t, d)
    return (out @ f(WEIGHT.dequantise(proj_w)).T + f(BIAS.dequantise(proj_b))).numpy()


@pytest.fixture(scope="module")
def attention_case():
    rng = np.random.default_rng(3)
    x = act_like(rng, (3, TINY.tokens, TINY.dim))
    qkv_w = WEIGHT.quantise(rng.normal(0, 0.25, (3 * TINY.dim, TINY.dim)))
    qkv_b = BIAS.quantise(rng.normal(0, 0.1, 3 * TINY.dim))
    proj_w = WEIGHT.quantise(rng.normal(0, 0.2, (TINY.dim, TINY.dim)))
    proj_b = BIAS.quantise(rng.normal(0, 0.1, TINY.dim))
    return x, qkv_w, qkv_b, proj_w, proj_b


def test_attention_matches_float(attention_case):
    got = ACT.dequantise(intmodel.attention(*attention_case, TINY.heads))
    ref = float_attention(*attention_case, TINY.heads)
    # q, k, v and the scores are each rounded to ACT (2^-9). A score off by d moves the
    # probabilities by about d relative, so the output by about d * |v| (|v| up to ~8 here,
    # 2^-6 at worst) before the projection sums 32 of those errors with |w| ~ 0.2: a few
    # LSBs typically, 10.5 the worst over 30 seeds. The bounds leave room for that and
    # still catch a wrong scale shift or a lost rescale, which cost hundreds of LSBs.
    assert np.abs(got - ref).max() <= 16 * ACT.lsb
    assert np.abs(got - ref).mean() <= 1.5 * ACT.lsb


def test_key_order_is_edge_moe_reordering():
    order = intmodel.key_order(17, 4)
    assert all(sorted(row) == list(range(17)) for row in order)
    assert order[:, 0].tolist() == [q % 4 for q in range(17)]
    assert np.array_equal(intmodel.key_order(9, 1), np.tile(np.arange(9), (9, 1)))


def test_key_order_changes_only_rounding(attention_case):
    one = intmodel.attention(*attention_case, TINY.heads, parallelism=1)
    four = intmodel.attention(*attention_case, TINY.heads, parallelism=4)
    assert np.abs(one - four).max() <= 2


@settings(max_examples=200)
@given(st.integers(1, 8), st.integers(1, 20), st.data())
def test_route_picks_top_k_with_ties_to_the_lower_index(experts, tokens, draw):
    rng = np.random.default_rng(draw.draw(st.integers(0, 2**32 - 1)))
    k = draw.draw(st.integers(1, experts))
    x = act_like(rng, (tokens, 8))
    router = WEIGHT.quantise(rng.normal(0, 0.5, (experts, 8)))
    if draw.draw(st.booleans()):
        router[-1] = router[0]  # equal logits: the tie must go to expert 0
    r = intmodel.route(x, router, k)
    for t in range(tokens):
        reference = sorted(range(experts), key=lambda e: (-r.probs[t, e], e))[:k]
        assert r.chosen[t].tolist() == reference
        assert r.scores[t].tolist() == r.probs[t, reference].tolist()
    for e in range(experts):
        assert r.queues[e].tolist() == [t for t in range(tokens) if e in r.chosen[t]]
    assert r.used == [e for e in range(experts) if r.queues[e].size]


def test_moe_reads_only_the_experts_that_tokens_chose():
    rng = np.random.default_rng(4)
    # Positive tokens and routers: expert 0's weights are all negative, so its logit is the
    # only negative one and, with k = 2 of 4, it is never chosen.
    x = np.abs(act_like(rng, (TINY.tokens, TINY.dim)))
    router = np.abs(WEIGHT.quantise(rng.normal(0, 0.5, (TINY.experts, TINY.dim))))
    router[0] = WEIGHT.min_code
    r = intmodel.route(x, router, 2)
    params = [WEIGHT.quantise(rng.normal(0, 0.2, (TINY.experts, 64, TINY.dim))),
              BIAS.quantise(rng.normal(0, 0.1, (TINY.experts, 64))),
              WEIGHT.quantise(rng.normal(0, 0.2, (TINY.experts, TINY.dim, 64))),
              BIAS.quantise(rng.normal(0, 0.1, (TINY.experts, TINY.dim)))]
    unused = [e for e in range(TINY.experts) if e not in r.used]
    assert unused, "the test needs an expert no token chose"
    garbage = [p.copy() for p in params]
    for p in garbage:
        p[unused] = p[unused][..., ::-1] + 7  # any change to an unread expert must not matter
    assert np.array_equal(intmodel.moe(x, r, *params), intmodel.moe(x, r, *garbage))


@pytest.fixture(scope="module")
def tiny_models():
    model = load_checkpoint(TINY)
    state = parameters(model)
    return model, intmodel.IntModel(TINY, state)


def test_integer_model_keeps_the_float_models_accuracy(tiny_models):
    model, integer = tiny_models
    test = data.load(TINY, "test")
    patches = data.patchify(test.images, TINY.patch)
    codes = integer.quantise_input(patches)
    for task, allowed_drop in ((0, 0.005), (1, 0.01)):
        with torch.no_grad():
            float_logits, _ = model(torch.from_numpy(patches), task)
        int_logits, _ = integer.forward(codes, task)
        labels = (test.labels, test.patch_labels)
        float_metric = metrics.task_metric(task, float_logits.numpy(), *labels)
        int_metric = metrics.task_metric(task, ACT.dequantise(int_logits), *labels)
        assert float_metric - int_metric <= allowed_drop


def test_integer_model_errors_are_named(tiny_models):
    _, integer = tiny_models
    with pytest.raises(ConfigError, match=r"expected \(n, 16, 49\)"):
        integer.quantise_input(np.zeros((1, 17, 49)))
    with pytest.raises(ConfigError, match="unknown task 3"):
        integer.forward(np.zeros((1, 16, 49), dtype=np.int64), 3)
    with pytest.raises(FormatError, match="outside"):
        integer.forward(np.full((1, 16, 49), 1 << 20), 0)
    with pytest.raises(FormatError, match="parameter heads.0.weight"):
        intmodel.quantise_parameters({"heads.0.weight": np.full((2, 2), 3.0)})
    assert PROB.frac == 15  # scores below are PROB codes; this guards the test's arithmetic


@pytest.mark.parametrize("tokens,parallelism", [(17, 1), (17, 2), (17, 3), (129, 4), (5, 8),
                                                 (1, 1)])
def test_attention_schedule_visits_each_querys_keys_in_key_order(tokens, parallelism):
    schedule = intmodel.attention_schedule(tokens, parallelism)
    order = intmodel.key_order(tokens, parallelism)
    for query in range(tokens):
        steps = np.flatnonzero((schedule == query).any(axis=1))
        assert np.array_equal(steps % tokens, order[query])
    # A step starts at most one query and ends at most one: the constant-bandwidth property.
    before = np.vstack([np.full((1, parallelism), -1), schedule[:-1]])
    after = np.vstack([schedule[1:], np.full((1, parallelism), -1)])
    assert ((schedule != before) & (schedule >= 0)).sum(axis=1).max() == 1
    assert ((schedule != after) & (schedule >= 0)).sum(axis=1).max() == 1
    assert (schedule[-1] >= 0).any()  # no idle step at the end
