"""Seeded test vectors from the golden models, with manifests that catch stale files.

Each vector set ``name`` is written as ``<dir>/<name>.npz`` plus ``<dir>/<name>.json``. The
manifest records the seed, the formats, the array shapes, the sha256 of the ``.npz`` and a
fingerprint of the pyref sources that made it, so a bench never runs on a file that no
longer matches the model.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np

from pyref import approx, data, intmodel, opcases, ops
from pyref.config import LinearLayer, get_config
from pyref.formats import ACT, BIAS, FORMATS, WEIGHT

FIX = "run `make vectors` to regenerate it"


class VectorError(RuntimeError):
    """A vector file that is missing, corrupt or stale."""


def segments(lengths) -> list[slice]:
    """Slices of consecutive vectors of the given lengths in one flat array."""
    ends = np.cumsum(lengths)
    return [slice(int(end - n), int(end)) for n, end in zip(lengths, ends, strict=True)]


def _mac(rng: np.random.Generator) -> dict:
    """Dot products of ragged length, including the largest products and length one."""
    lengths = np.concatenate([[1, 2, 64, 64, 64], rng.integers(1, 65, size=195)])
    act = ACT.random(rng, int(lengths.sum()))
    weight = WEIGHT.random(rng, int(lengths.sum()))
    # Vectors 2..4 hold full-scale products of every sign combination.
    spans = segments(lengths)
    for span, (a, w) in zip(spans[2:5], [(ACT.min_code, WEIGHT.min_code),
                                          (ACT.min_code, WEIGHT.max_code),
                                          (ACT.max_code, WEIGHT.max_code)], strict=True):
        act[span], weight[span] = a, w
    acc = np.array([ops.dot(act[span], weight[span]) for span in spans])
    return {"act": act, "weight": weight, "lengths": lengths, "acc": acc}


#: Longest softmax row: the attention rows of the largest config.
SOFTMAX_MAX_ROW = get_config("m3vit-tiny").tokens


def _softmax(rng: np.random.Generator) -> dict:
    """Rows of every length up to `SOFTMAX_MAX_ROW`, six of each length: random, narrow,
    equal, all at the most negative code, all at the most positive, one dominant score.

    Per score: ``scores`` and ``probs``; per row: its length (``lengths``), its final state
    ``maximum`` and ``total``, and the reciprocal ``(r, e)`` of the total.
    """
    blocks, states = [], []
    for n in range(1, SOFTMAX_MAX_ROW + 1):
        dominant = ACT.random(rng, n) // 64
        dominant[rng.integers(n)] = ACT.max_code
        block = np.stack([ACT.random(rng, n), ACT.random(rng, n) // 256,
                          np.full(n, ACT.random(rng, 1)[0]), np.full(n, ACT.min_code),
                          np.full(n, ACT.max_code), dominant])
        blocks.append(block)
        states.append(approx.softmax_state(block))
    total = np.concatenate([t for _, t in states])
    r, e = approx.reciprocal(total)
    return {"scores": np.concatenate([b.ravel() for b in blocks]),
            "lengths": np.concatenate([np.full(len(b), b.shape[1]) for b in blocks]),
            "probs": np.concatenate([approx.softmax_fixed(b).ravel() for b in blocks]),
            "maximum": np.concatenate([m for m, _ in states]),
            "total": total, "r": r, "e": e}


def _layernorm(rng: np.random.Generator) -> dict:
    """A LayerNorm layer of every config: ``<config>.{x, gamma, beta, y}`` with ``x`` of
    ``(tokens, dim)`` at random scales (a zero, a full-scale and an alternating row among
    them), and ``<config>.eps``, the config's epsilon as `intmodel.layernorm_eps` codes."""
    from pyref.config import CONFIGS

    out = {}
    for config in CONFIGS.values():
        shape = (config.tokens, config.dim)
        x = ACT.quantise(rng.normal(0, rng.uniform(0.05, 8, (config.tokens, 1)), shape))
        x[0], x[1], x[2] = 0, ACT.max_code, np.where(np.arange(config.dim) % 2, ACT.max_code,
                                                       ACT.min_code)
        gamma = WEIGHT.quantise(rng.uniform(-1.5, 1.5, config.dim))
        beta = WEIGHT.quantise(rng.normal(0, 0.5, config.dim))
        out.update({f"{config.name}.{k}": v for k, v in {
            "x": x, "gamma": gamma, "beta": beta,
            "y": intmodel.layernorm(x, gamma, beta, config.ln_eps),
            "eps": np.array(intmodel.layernorm_eps(config.ln_eps, config.dim))}.items()})
    return out


#: Layers at the edges of the linear unit's schedule, beside every config's layers: two
#: tokens (a token's next chunk two slots later), one token (every pass waits for its tile)
#: and one input chunk (every pass is a token's first and last), on odd widths.
EDGE_LAYERS = [LinearLayer("two_tokens", 2, 24, 12, gelu=True),
               LinearLayer("one_token", 1, 20, 9, bias=False),
               LinearLayer("one_chunk", 3, 5, 17)]


def _linear(rng: np.random.Generator) -> dict:
    """Every linear layer of both configs (`ModelConfig.linear_layers`), and the
    `EDGE_LAYERS` (as config ``edge``), with random data.

    Keys are ``<config>.<layer>.{x, weight, bias, y}``; a layer without bias has none.
    Activations are normal with a spread of 2 and weights scaled by ``1/sqrt(inputs)``, so
    outputs use ACT's range; token 0 is full scale, so the requantiser saturates too.
    """
    from pyref.config import CONFIGS

    out = {}
    sets = {**{c.name: c.linear_layers() for c in CONFIGS.values()}, "edge": EDGE_LAYERS}
    for name, layers in sets.items():
        for layer in layers:
            key = f"{name}.{layer.name}"
            x = ACT.quantise(rng.normal(0, 2, (layer.tokens, layer.inputs)))
            x[0] = np.where(rng.integers(2, size=layer.inputs), ACT.max_code, ACT.min_code)
            weight = WEIGHT.quantise(rng.normal(0, layer.inputs**-0.5,
                                                (layer.outputs, layer.inputs)))
            bias = BIAS.quantise(rng.normal(0, 1, layer.outputs)) if layer.bias else None
            out.update({f"{key}.x": x, f"{key}.weight": weight,
                        f"{key}.y": intmodel.linear(x, weight, bias, gelu=layer.gelu)})
            if bias is not None:
                out[f"{key}.bias"] = bias
    return out


#: Attention parallelisms the ``attention`` set has results for.
ATTENTION_PARALLELISMS = (1, 2, 3, 4, 8)
#: Heads at the edges of the attention unit's schedule, as (tokens, head_dim): one token (a
#: query's first key is its last), fewer tokens than lanes, and a row length that changes
#: (long rows, flushed, then short ones).
EDGE_HEADS = ((1, 16), (2, 64), (3, 16))


def _attention(rng: np.random.Generator) -> dict:
    """Every head of both configs: ``<config>.{q, k, v}`` ``(heads, tokens, head_dim)`` and
    ``<config>.p<P>.y`` for each of `ATTENTION_PARALLELISMS` (the key order depends on P).

    Each head has its own spread (0.25 to 6), so some rows' softmax is nearly flat and some
    is dominated by one key; head 0 has a full-scale query, key and value row. The
    `EDGE_HEADS` are ``edge.h<i>.{q, k, v, p<P>.y}``, one head each.
    """
    from pyref.config import CONFIGS

    out = {}
    for i, shape in enumerate(EDGE_HEADS):
        q, k, v = (ACT.quantise(rng.normal(0, 3, shape)) for _ in range(3))
        out.update({f"edge.h{i}.q": q, f"edge.h{i}.k": k, f"edge.h{i}.v": v})
        for p in ATTENTION_PARALLELISMS:
            out[f"edge.h{i}.p{p}.y"] = intmodel.attention_head(q, k, v, p)
    for config in CONFIGS.values():
        shape = (config.heads, config.tokens, config.head_dim)
        spread = rng.uniform(0.25, 6, (3, config.heads, 1, 1))
        q, k, v = (ACT.quantise(rng.normal(0, 1, shape) * s) for s in spread)
        # Full-scale rows: a saturated score and the accumulator's extremes.
        q[0, 0], k[0, 1], v[0, 1] = ACT.max_code, ACT.max_code, ACT.min_code
        out.update({f"{config.name}.q": q, f"{config.name}.k": k, f"{config.name}.v": v})
        for p in ATTENTION_PARALLELISMS:
            out[f"{config.name}.p{p}.y"] = intmodel.attention_head(q, k, v, p)
    return out


def _moe(rng: np.random.Generator) -> dict:
    """Router logits of every config, ``<config>.logits`` ``(tokens, experts)``, and the
    patch-reorder unit's output ``<config>.schedule`` ``(entries, 3)``: expert, token, score.

    The last quarter of the experts is never chosen (their logits are the lowest code), so
    their weights must never be fetched; row 1 is all ties.
    """
    from pyref.config import CONFIGS

    out = {}
    for config in CONFIGS.values():
        logits = ACT.quantise(rng.normal(0, 2, (config.tokens, config.experts)))
        logits[:, config.experts - config.experts // 4:] = ACT.min_code
        logits[1] = logits[1, 0]
        routing = intmodel.route_logits(logits, config.top_k)
        out.update({f"{config.name}.logits": logits,
                    f"{config.name}.schedule": np.array(intmodel.schedule(routing))})
    return out


def _combine(rng: np.random.Generator) -> dict:
    """The MoE scatter of every config: ``<config>.schedule`` (expert, token, score per
    queue entry, as the patch-reorder unit sends them), ``<config>.y`` (the experts' outputs,
    one row per entry, full-scale rows included) and ``<config>.out``."""
    from pyref.config import CONFIGS

    out = {}
    for config in CONFIGS.values():
        logits = ACT.quantise(rng.normal(0, 2, (config.tokens, config.experts)))
        routing = intmodel.route_logits(logits, config.top_k)
        y = ACT.quantise(rng.normal(0, 4, (2 * config.tokens, config.dim)))
        y[0], y[1] = ACT.min_code, ACT.max_code
        rows = np.cumsum([0] + [len(routing.queues[e]) for e in routing.used])
        outputs = {e: y[a:b] for e, a, b in zip(routing.used, rows[:-1], rows[1:], strict=True)}
        out.update({f"{config.name}.schedule": np.array(intmodel.schedule(routing)),
                    f"{config.name}.y": y[:rows[-1]],
                    f"{config.name}.out": intmodel.combine(routing, outputs)})
    return out


def _gather(rng: np.random.Generator) -> dict:
    """The MoE gather of every config: ``<config>.x`` (a layer's rows), ``<config>.schedule``
    (expert, token, score per queue entry) and ``<config>.rows``, the rows in queue order."""
    from pyref.config import CONFIGS

    out = {}
    for config in CONFIGS.values():
        logits = ACT.quantise(rng.normal(0, 2, (config.tokens, config.experts)))
        routing = intmodel.route_logits(logits, config.top_k)
        x = ACT.random(rng, (config.tokens, config.dim))
        out.update({f"{config.name}.x": x,
                    f"{config.name}.schedule": np.array(intmodel.schedule(routing)),
                    f"{config.name}.rows": intmodel.gather(x, routing)})
    return out


#: Values of the ``residual`` set: a multiple of every lane count the benches use.
RESIDUAL_VALUES = 16 * 1024


def _residual(rng: np.random.Generator) -> dict:
    """Pairs of activations ``a, b`` and their saturating sum ``y``; the first pairs are
    the edges of every sign, so both limits saturate."""
    a, b = ACT.random(rng, RESIDUAL_VALUES), ACT.random(rng, RESIDUAL_VALUES)
    edges = ACT.edges()
    pairs = np.array([(x, y) for x in edges for y in edges])
    a[:len(pairs)], b[:len(pairs)] = pairs[:, 0], pairs[:, 1]
    return {"a": a, "b": b, "y": intmodel.residual(a, b)}


#: The ``optical_io`` set's packings: (tiles, image, kernel, padding, shift or None for the
#: smallest that fits). The small SLM makes both parts span several frames.
OPTICAL_PACKS = ((13, (8, 8), (5, 5), "valid", None), (9, (6, 7), (3, 4), "same", 8),
                 (4, (8, 16), (5, 13), "valid", 3))
OPTICAL_SLM = (24, 32)
#: Its camera readouts: passes and beats of each; short ones test the pass-to-pass drain,
#: and each of those has one of OPTICAL_SCALE's edges as its first scale.
OPTICAL_READOUTS = ((4, 20), (1, 1), (2, 2), (3, 7), (4, 1), (1, 12), (4, 3), (3, 1), (2, 1),
                    (1, 2))
OPTICAL_EDGE_BEATS = 3


def _optical_io(rng: np.random.Generator) -> dict:
    """The optical I/O unit (`pyref.optical_io`): ``pack<i>.x`` and its layout registers
    ``pack<i>.reg.<name>`` with the packed codes and pixels ``pack<i>.<field>``; and
    ``read<j>.camera`` ``(passes, n)``, ``read<j>.scales``, ``read<j>.y``. The first values
    and codes are the formats' edges."""
    from pyref import optical_io, optics
    from pyref.formats import CAMERA_PIXEL, OPTICAL_SCALE

    out = {}
    device = optics.Device(slm=OPTICAL_SLM)
    for i, (tiles, image, kernel, padding, shift) in enumerate(OPTICAL_PACKS):
        x = ACT.random(rng, (tiles, *image))
        x.reshape(-1)[:len(ACT.edges())] = ACT.edges()
        shift = optical_io.slm_shift(x) if shift is None else shift
        layout = optical_io.FrameLayout.make(tiles, image, kernel, padding, device)
        regs = layout.registers(shift)
        out[f"pack{i}.x"] = x.reshape(-1)
        for name, value in regs.items():
            for field, v in (value.items() if isinstance(value, dict) else [("", value)]):
                out[f"pack{i}.reg.{name}{'.' + field if field else ''}"] = np.array(v)
        out.update({f"pack{i}.{k}": v for k, v in optical_io.pack(x, shift, layout).items()})
    edges = iter(OPTICAL_SCALE.edges())
    for j, (passes, beats) in enumerate(OPTICAL_READOUTS):
        camera = CAMERA_PIXEL.random(rng, (passes, beats * optical_io.LANES))
        camera.reshape(-1)[:2] = CAMERA_PIXEL.min_code, CAMERA_PIXEL.max_code
        # Magnitudes 2^8 to 2^18 keep most outputs inside ACT; the edges mostly saturate.
        scales = rng.choice([-1, 1], passes) * 2 ** rng.uniform(8, 18, passes)
        scales = scales.astype(np.int64)
        if beats <= OPTICAL_EDGE_BEATS:
            scales[0] = next(edges)
        out.update({f"read{j}.camera": camera, f"read{j}.scales": scales,
                    f"read{j}.y": optical_io.readout(camera, scales, optical_io.DETECTION)})
    return out


#: Images and attention parallelism of the ``trace`` set.
TRACE_IMAGES = 8
TRACE_PARALLELISM = 1


def _trace(rng: np.random.Generator) -> dict:
    """The tiny model on `TRACE_IMAGES` test images, both tasks: every intermediate.

    Keys are ``task<t>.<name>``: ``input`` (ACT patches), ``embed``, per block
    ``blocks.<l>.{ln1, attn, ln2, ffn, out}``, the ``logits``, and per MoE layer ``moe<m>``
    the routing of each image: ``chosen`` and ``scores`` ``(images, tokens, k)`` and ``used``
    ``(images, experts)``. Expert ``e``'s queue is the tokens whose ``chosen`` holds ``e``,
    in token order.
    """
    from pyref.model import load_checkpoint, parameters  # torch only here: other sets stay light

    config = get_config("tiny")
    state = parameters(load_checkpoint(config))
    model = intmodel.IntModel(config, state, TRACE_PARALLELISM)
    test = data.load(config, "test")
    chosen = np.sort(rng.choice(len(test), TRACE_IMAGES, replace=False))
    split = test.subset(chosen)
    codes = model.quantise_input(data.patchify(split.images, config.patch))
    out = {"images": chosen, "labels": split.labels, "patch_labels": split.patch_labels}
    for task in range(config.tasks):
        trace = {}
        logits, routing = model.forward(codes, task, trace)
        out.update({f"task{task}.input": codes, f"task{task}.logits": logits})
        out.update({f"task{task}.{k}": v for k, v in trace.items()})
        for moe_index, layer in enumerate(routing):
            key = f"task{task}.moe{moe_index}"
            out[f"{key}.chosen"] = np.stack([r.chosen for r in layer])
            out[f"{key}.scores"] = np.stack([r.scores for r in layer])
            used = np.zeros((len(layer), config.experts), dtype=np.int64)
            for i, r in enumerate(layer):
                used[i, r.used] = 1
            out[f"{key}.used"] = used
    return out


#: Cases per element-wise kernel set (the issue asks for at least 10k per kernel bench).
KERNEL_CASES = 12_000


def _op(name: str):
    return lambda rng: opcases.vectors(name, rng, KERNEL_CASES)


#: Every vector set: name -> generator taking a seeded numpy Generator. Sets named after a
#: kernel hold its inputs and outputs under the kernel's argument names.
GENERATORS = {**{name: _op(name) for name in opcases.OPCASES},
              "mac": _mac, "softmax": _softmax, "linear": _linear, "attention": _attention,
              "moe": _moe, "gather": _gather, "combine": _combine, "residual": _residual,
              "layernorm": _layernorm, "optical_io": _optical_io, "trace": _trace}


def fingerprint() -> str:
    """A digest of the pyref sources and checkpoints: vectors made by others are stale."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for path in sorted([*here.glob("*.py"), *here.glob("checkpoints/*.npz")]):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _rng(name: str, seed: int) -> np.random.Generator:
    # One stream per set, so adding a set never changes another set's vectors.
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(name: str, directory: Path, seed: int) -> Path:
    """Generate vector set ``name`` with ``seed`` into ``directory``; returns the manifest."""
    if name not in GENERATORS:
        raise VectorError(f"unknown vector set '{name}': choose from {', '.join(GENERATORS)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = GENERATORS[name](_rng(name, seed))
    npz = directory / f"{name}.npz"
    np.savez(npz, **arrays)
    manifest = {
        "name": name,
        "seed": seed,
        "generator": fingerprint(),
        "formats": {k: f.describe() for k, f in FORMATS.items()},
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        "sha256": _sha256(npz),
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def check(name: str, directory: Path, seed: int | None = None) -> dict:
    """Return the manifest of set ``name`` or raise `VectorError` saying what is wrong."""
    directory = Path(directory)
    npz, path = directory / f"{name}.npz", directory / f"{name}.json"
    for f in (npz, path):
        if not f.exists():
            raise VectorError(f"vector file {f} is missing: {FIX}")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise VectorError(f"manifest {path} is corrupt ({e}): {FIX}") from None
    if manifest.get("sha256") != _sha256(npz):
        raise VectorError(f"vector file {npz} does not match its manifest's sha256: {FIX}")
    formats = {k: f.describe() for k, f in FORMATS.items()}
    if manifest.get("generator") != fingerprint() or manifest.get("formats") != formats:
        raise VectorError(f"vector file {npz} is stale: pyref changed since it was made; {FIX}")
    if seed is not None and manifest.get("seed") != seed:
        raise VectorError(
            f"vector file {npz} was made with SEED={manifest.get('seed')}, not SEED={seed}: {FIX}"
        )
    return manifest


def load(name: str, directory: Path, seed: int | None = None) -> dict:
    """Load set ``name`` as a dict of int64 arrays after `check`."""
    manifest = check(name, directory, seed)
    with np.load(Path(directory) / f"{name}.npz") as data:
        arrays = {k: data[k] for k in data.files}
    if set(arrays) != set(manifest["arrays"]):
        raise VectorError(f"vector file {name}.npz holds other arrays than its manifest: {FIX}")
    return arrays


def ensure(name: str, directory: Path, seed: int) -> Path:
    """Write set ``name`` unless an up-to-date one with this seed already exists."""
    try:
        check(name, directory, seed)
    except VectorError:
        return write(name, directory, seed)
    return Path(directory) / f"{name}.json"
