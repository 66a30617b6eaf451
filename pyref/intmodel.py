"""Bit-exact integer model (numpy int64): the specification the RTL must match.

Every op takes and returns integer codes of `pyref.formats`; docs/numerics.md gives each
op's widths, rounding and saturation. The model is built from a float checkpoint by
quantising every parameter (a parameter outside its format is an error naming it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pyref import approx
from pyref.config import ConfigError, ModelConfig
from pyref.formats import ACC, ACT, BIAS, DATAPATH, NORM, PROB, WEIGHT, FormatError, QFormat

# -- ops ---------------------------------------------------------------------------------


def linear(x, weight, bias=None, *, gelu: bool = False, act: QFormat = ACT) -> np.ndarray:
    """``x @ weight.T + bias`` requantised to ``act`` (and GELU if asked): the linear unit.

    ``x`` is ``act`` ``(..., in)``, ``weight`` WEIGHT ``(out, in)``, ``bias`` ``(out,)`` with
    the accumulator's fraction (``act.frac + WEIGHT.frac``), like BIAS for ACT. The
    accumulator wraps at `ACC`'s width.
    """
    acc = np.asarray(x) @ np.asarray(weight).T
    if bias is not None:
        acc = acc + bias
    y = act.fit(act.round_shift(ACC.fit(acc), WEIGHT.frac))
    return approx.gelu_fixed(y, act) if gelu else y


def residual(x, y, act: QFormat = ACT) -> np.ndarray:
    """Saturating add of two activation tensors."""
    return act.fit(np.asarray(x) + y)


def layernorm(x, gamma, beta, eps: float, act: QFormat = ACT) -> np.ndarray:
    """LayerNorm over the last axis in one pass (sum and sum of squares), integer rsqrt.

    With ``S = sum(x)`` and ``Q = sum(x^2)`` over ``D`` values, ``V = D*Q - S^2`` is
    ``D^2 * variance`` exactly, so ``(x - mean) / std = (D*x - S) / sqrt(V)``: no divide.
    The three steps are the LayerNorm kernels: accumulate, `layernorm_stats`,
    `layernorm_apply`.
    """
    return layernorm_coded(x, gamma, beta, layernorm_eps(eps, np.shape(x)[-1], act), act)


def layernorm_coded(x, gamma, beta, eps_code: int, act: QFormat = ACT) -> np.ndarray:
    """`layernorm` with ``eps`` already in the units of `layernorm_eps` (the unit's command)."""
    x = np.asarray(x)
    dim = x.shape[-1]
    total = x.sum(axis=-1)
    r, e = layernorm_stats(total, (x * x).sum(axis=-1), dim, eps_code)
    return layernorm_apply(x, total[..., None], dim, r[..., None], e[..., None], gamma, beta,
                           act)


def layernorm_accumulate(total, squares, x):
    """One step of the single pass: add a value to the sum and its square to the sum of
    squares."""
    x = np.asarray(x)
    return np.asarray(total) + x, np.asarray(squares) + x * x


def layernorm_eps(eps: float, dim: int, act: QFormat = ACT) -> int:
    """``eps`` in the units of ``V = D*Q - S^2`` (at least 1, so rsqrt is defined)."""
    return max(1, round(eps * dim * dim * 4**act.frac))


def layernorm_stats(total, squares, dim: int, eps_code: int):
    """``(r, e)`` of ``1/sqrt(D*Q - S^2 + eps)`` from the sums ``S`` and ``Q``."""
    return approx.rsqrt(dim * np.asarray(squares) - np.asarray(total) ** 2 + eps_code)


def layernorm_apply(x, total, dim: int, r, e, gamma, beta, act: QFormat = ACT) -> np.ndarray:
    """Normalise ``x`` with the row's sum and rsqrt, then scale by ``gamma``, shift by ``beta``."""
    centred = dim * np.asarray(x) - total
    xhat = NORM.fit(NORM.round_shift(centred * r, approx.TABLE_FRAC + e - NORM.frac))
    scaled = xhat * gamma + (np.asarray(beta) << NORM.frac)
    return act.fit(act.round_shift(scaled, NORM.frac + WEIGHT.frac - act.frac))


def key_order(tokens: int, parallelism: int) -> np.ndarray:
    """Edge-MoE's attention reordering: query ``q`` visits keys from ``q mod P``, wrapping.

    Returns ``(tokens, tokens)``: row ``q`` lists the keys in the order query ``q`` sees them.
    """
    start = np.arange(tokens) % parallelism
    return (start[:, None] + np.arange(tokens)) % tokens


def attention_schedule(tokens: int, parallelism: int) -> np.ndarray:
    """The attention unit's steps: ``(steps, parallelism)``, the query lane ``j`` works on at
    step ``s`` (which reads key ``s mod tokens``), or -1.

    Lane ``j`` starts query ``b * P + j`` at step ``b * tokens + j`` and keeps it for
    ``tokens`` steps, so each query sees its keys in `key_order` and each step starts at
    most one query and ends at most one.
    """
    blocks = -(-tokens // parallelism)
    steps = blocks * tokens + (tokens - 1) % parallelism
    step, lane = np.arange(steps)[:, None], np.arange(parallelism)[None, :]
    query = (step - lane) // tokens * parallelism + lane
    return np.where((step >= lane) & (query < tokens), query, -1)


def score_shift(head_dim: int, act: QFormat = ACT) -> int:
    """Right shift from a ``q·k`` product sum (``2 * act.frac`` fraction bits) to an ``act``
    score scaled by ``1/sqrt(head_dim)`` (a power of two, see `ModelConfig`)."""
    return act.frac + round(math.log2(math.sqrt(head_dim)))


def attention_head(q, k, v, parallelism: int = 1, act: QFormat = ACT,
                   scale_shift: int | None = None) -> np.ndarray:
    """One head's ``softmax(q k^T / sqrt(head_dim)) v`` with the softmax fused into A·V.

    ``q, k, v`` are ``act`` codes ``(..., tokens, head_dim)``. Scores are requantised to
    ``act``. Each query walks its keys once in `key_order`, keeping a running maximum, a
    running sum and an output accumulator (``PROB.frac + act.frac`` fraction bits) that are
    rescaled together when the maximum grows; the output is divided by the sum (a
    reciprocal and a multiply) at the end. Scores are scaled by ``2^-scale_shift``
    (default: ``1/sqrt(head_dim)``).
    """
    tokens = q.shape[-2]
    shift = (score_shift(q.shape[-1], act) if scale_shift is None
             else act.frac + scale_shift)
    scores = act.fit(act.round_shift(q @ np.swapaxes(k, -1, -2), shift))
    order = key_order(tokens, parallelism)
    rows = np.arange(tokens)
    maximum = scores[..., rows, order[:, 0]]
    total = np.full(maximum.shape, 1 << PROB.frac, dtype=np.int64)
    out = (1 << PROB.frac) * v[..., order[:, 0], :]
    for step in range(1, tokens):
        keys = order[:, step]
        maximum, total, rescale, term = approx.softmax_step(
            maximum, total, scores[..., rows, keys], act)
        out = (DATAPATH.round_shift(out * rescale[..., None], PROB.frac)
               + term[..., None] * v[..., keys, :])
    return act.fit(approx.normalise(out, total, drop_bits=PROB.frac))


def attention(x, qkv_weight, qkv_bias, proj_weight, proj_bias, heads: int,
              parallelism: int = 1, act: QFormat = ACT) -> np.ndarray:
    """Multi-head self-attention: the QKV projection, `attention_head` per head, the
    projection back."""
    n, tokens, dim = x.shape
    head_dim = dim // heads
    qkv = linear(x, qkv_weight, qkv_bias, act=act).reshape(n, tokens, 3, heads, head_dim)
    q, k, v = (np.moveaxis(qkv[:, :, i], 2, 1) for i in range(3))  # (n, heads, tokens, hd)
    out = attention_head(q, k, v, parallelism, act)
    merged = np.moveaxis(out, 1, 2).reshape(n, tokens, dim)
    return linear(merged, proj_weight, proj_bias, act=act)


@dataclass
class Routing:
    """One MoE layer's routing of one image: what the patch-reorder unit consumes.

    Members
    -------
    probs : (tokens, experts) PROB codes of the router's softmax.
    chosen : (tokens, k) experts per token, best first (ties: lower index).
    scores : (tokens, k) their PROB codes, not renormalised.
    queues : list of int arrays, per expert the tokens that chose it, in token order.
    used : experts with a non-empty queue, ascending: only their weights are fetched.
    """

    probs: np.ndarray
    chosen: np.ndarray
    scores: np.ndarray
    queues: list
    used: list


def route(x, router, top_k: int, act: QFormat = ACT) -> Routing:
    """Router logits (a linear layer without bias), then `route_logits`."""
    return route_logits(linear(x, router, act=act), top_k, act)


def route_logits(logits, top_k: int, act: QFormat = ACT) -> Routing:
    """Softmax over every expert's logit, top-k and the per-expert token queues.

    ``logits`` are ``act`` codes ``(tokens, experts)``.
    """
    probs = approx.softmax_fixed(logits, fmt=act)
    # A stable sort on -p keeps the lower expert index first among equal probabilities.
    chosen = np.argsort(-probs, axis=-1, kind="stable")[:, :top_k]
    scores = np.take_along_axis(probs, chosen, axis=-1)
    queues = [np.flatnonzero((chosen == e).any(axis=-1)) for e in range(logits.shape[-1])]
    return Routing(probs, chosen, scores, queues, [e for e, q in enumerate(queues) if q.size])


def schedule(routing: Routing) -> list:
    """The patch-reorder unit's output: ``(expert, token, score)`` for every used expert's
    queue, experts ascending, tokens in order."""
    return [(e, int(t), int(routing.scores[t][list(routing.chosen[t]).index(e)]))
            for e in routing.used for t in routing.queues[e]]


def gather(x, routing: Routing) -> np.ndarray:
    """The rows each used expert reads, in `schedule` order: ``x[queue]`` of each expert."""
    return np.concatenate([np.asarray(x)[routing.queues[e]] for e in routing.used])


def combine(routing: Routing, outputs: dict, act: QFormat = ACT) -> np.ndarray:
    """The MoE scatter: ``sum over experts of score * y`` per token, rounded once.

    ``outputs`` maps each used expert to its ``act`` outputs, one row per token of its
    queue.
    """
    rows = np.concatenate([outputs[e] for e in routing.used])
    return scatter(len(routing.chosen), schedule(routing), rows, act)


def scatter(tokens: int, entries, rows, act: QFormat = ACT) -> np.ndarray:
    """``sum of score * row`` per token over the queue ``entries`` (expert, token, score),
    row ``i`` belonging to entry ``i``, rounded once. The accumulator (``PROB.frac +
    act.frac`` fraction bits) is exact, so the order of the entries does not matter."""
    rows = np.asarray(rows)
    acc = np.zeros((tokens, rows.shape[-1]), dtype=np.int64)
    for (_, token, score), row in zip(entries, rows, strict=True):
        acc[token] += score * row
    return act.fit(act.round_shift(acc, PROB.frac))


def moe(x, routing: Routing, fc1_weight, fc1_bias, fc2_weight, fc2_bias,
        act: QFormat = ACT) -> np.ndarray:
    """Experts of one image ``(tokens, dim)`` in patch-reordered form: each used expert
    gathers its queue and runs fc1+GELU and fc2 on the linear unit, then `combine`."""
    outputs = {}
    for e in routing.used:
        hidden = linear(x[routing.queues[e]], fc1_weight[e], fc1_bias[e], gelu=True, act=act)
        outputs[e] = linear(hidden, fc2_weight[e], fc2_bias[e], act=act)
    return combine(routing, outputs, act)


# -- the model ---------------------------------------------------------------------------

#: Which format each kind of parameter is quantised to, by the end of its name.
_WEIGHT_SUFFIXES = ("weight", "routers")


def quantise_parameters(state: dict, act: QFormat = ACT) -> dict:
    """Float parameters (name -> array) to integer codes: ``pos`` to ``act``, biases to the
    accumulator's fraction (BIAS for ACT), LayerNorm and all other weights to WEIGHT."""
    bias = QFormat(BIAS.bits, act.frac + WEIGHT.frac)
    codes = {}
    for name, value in state.items():
        value = np.asarray(value, dtype=np.float64)
        is_norm = ".ln" in name or name.startswith("norm.")
        if name == "pos":
            fmt = act
        elif name.endswith("bias") and not is_norm:
            fmt = bias
        else:
            fmt = WEIGHT
        try:
            codes[name] = fmt.quantise(value, check=True)
        except FormatError as e:
            raise FormatError(f"parameter {name}: {e}") from None
    return codes


class IntModel:
    """The integer model of one config, from float parameters.

    Parameters
    ----------
    config : ModelConfig
    state : dict
        Float parameters by checkpoint name (``MultiTaskViT.state_dict()`` as numpy).
    parallelism : int
        Queries the attention unit runs at once; sets the key order (`key_order`).
    act : QFormat
        Activation format (ACT; other widths for the format sweep).
    """

    def __init__(self, config: ModelConfig, state: dict, parallelism: int = 1,
                 act: QFormat = ACT):
        if parallelism < 1:
            raise ConfigError(f"parallelism must be >= 1, got {parallelism}")
        self.config, self.parallelism, self.act = config, parallelism, act
        self.p = quantise_parameters(state, act)

    def quantise_input(self, patches) -> np.ndarray:
        """Float patches ``(n, patches, patch_pixels)`` to activation codes, shape checked."""
        c = self.config
        patches = np.asarray(patches)
        if patches.ndim != 3 or patches.shape[1:] != (c.patches, c.patch_pixels):
            raise ConfigError(f"input of shape {patches.shape} does not fit config '{c.name}': "
                              f"expected (n, {c.patches}, {c.patch_pixels})")
        return self.act.quantise(patches, check=True)

    def block(self, layer: int, x, task: int, trace: dict | None = None):
        """One encoder block on ACT tokens ``(n, tokens, dim)``; returns tokens and routing."""
        p, c, act, name = self.p, self.config, self.act, f"blocks.{layer}"
        h = layernorm(x, p[f"{name}.ln1.weight"], p[f"{name}.ln1.bias"], c.ln_eps, act)
        a = attention(h, p[f"{name}.attn.qkv.weight"], p[f"{name}.attn.qkv.bias"],
                      p[f"{name}.attn.proj.weight"], p[f"{name}.attn.proj.bias"],
                      c.heads, self.parallelism, act)
        x = residual(x, a, act)
        h2 = layernorm(x, p[f"{name}.ln2.weight"], p[f"{name}.ln2.bias"], c.ln_eps, act)
        routings = None
        if c.is_moe(layer):
            m = f"{name}.moe"
            routings = [route(img, p[f"{m}.routers"][task], c.top_k, act) for img in h2]
            y = np.stack([moe(img, r, p[f"{m}.fc1_weight"], p[f"{m}.fc1_bias"],
                              p[f"{m}.fc2_weight"], p[f"{m}.fc2_bias"], act)
                          for img, r in zip(h2, routings, strict=True)])
        else:
            hidden = linear(h2, p[f"{name}.mlp.fc1.weight"], p[f"{name}.mlp.fc1.bias"],
                            gelu=True, act=act)
            y = linear(hidden, p[f"{name}.mlp.fc2.weight"], p[f"{name}.mlp.fc2.bias"], act=act)
        out = residual(x, y, act)
        if trace is not None:
            trace.update({f"{name}.ln1": h, f"{name}.attn": a, f"{name}.ln2": h2,
                          f"{name}.ffn": y, f"{name}.out": out})
        return out, routings

    def tokens(self, patch_codes, task: int, trace: dict | None = None):
        """The last block's ACT tokens ``(n, tokens, dim)`` and the routing of each MoE layer."""
        c, p, act = self.config, self.p, self.act
        if task not in range(c.tasks):
            raise ConfigError(f"unknown task {task}: config '{c.name}' has tasks 0..{c.tasks - 1}")
        embedded = linear(act.fit(patch_codes, check=True), p["patch_embed.weight"],
                          p["patch_embed.bias"], act=act)
        x = np.concatenate([np.zeros_like(embedded[:, :1]), embedded], axis=1)
        x = residual(x, p["pos"], act)
        if trace is not None:
            trace["embed"] = x
        routing = []
        for layer in range(c.depth):
            x, r = self.block(layer, x, task, trace)
            if r is not None:
                routing.append(r)
        return x, routing

    def forward(self, patch_codes, task: int, trace: dict | None = None):
        """Task logits as activation codes (task 0: ``(n, classes)``; task 1: per patch) and
        the routing."""
        x, routing = self.tokens(patch_codes, task, trace)
        p, act = self.p, self.act
        x = layernorm(x, p["norm.weight"], p["norm.bias"], self.config.ln_eps, act)
        head = x[:, 0] if task == 0 else x[:, 1:]
        return linear(head, p[f"heads.{task}.weight"], p[f"heads.{task}.bias"], act=act), routing
