"""ConvShareViT: a ViT whose MHSA and MLP linear layers are shared-kernel convolutions.

A token's features are laid out as a 2D map (`ConvShareConfig.dim_map`, `mlp_map`), and the
tokens are the channels. A `SharedConv` layer correlates every token's map with each of its
``m`` kernels, the same kernels for every token, which is what a linear layer's weight
sharing across tokens becomes. On a 4f system one Fourier mask per kernel then convolves
every token tile of an SLM frame at once. The patch embedding, the attention products, the
LayerNorms and the head stay digital. Layout and variants: docs/convsharevit.md.

Three mixers share this model: ``"valid"`` (each kernel yields a `valid_out` map),
``"same"`` (`same_kernel` kernels keep the map size; a stride shrinks it where a layer has
fewer outputs than inputs) and ``"linear"`` (the standard ViT baseline).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pyref import data
from pyref.config import ConfigError, ViTGeometry
from pyref.optics import Device, fourf_conv2d

MIXERS = ("valid", "same", "linear")


@dataclass(frozen=True)
class ConvShareConfig(ViTGeometry):
    """Shape of a single-task (digit class) ViT with shared-kernel convolutions.

    Parameters
    ----------
    name : str
        Config name; also the checkpoint's name.
    mixer : {"valid", "same", "linear"}
        How the MHSA and MLP layers mix a token's features.
    image, patch, dim, depth, heads, mlp, classes
        As in `pyref.config.ModelConfig`.
    dim_map, mlp_map : tuple of int
        The 2D map of a token's ``dim`` and ``mlp`` features.
    valid_out : tuple of int
        Output map of one "valid" kernel; its size is the input map minus this plus one.
    same_kernel : tuple of int
        Kernel size of the "same" mixer.
    """

    name: str
    mixer: str
    image: tuple = (28, 28, 1)
    patch: int = 7
    dim: int = 64
    depth: int = 4
    heads: int = 2
    mlp: int = 128
    classes: int = 10
    dim_map: tuple = (8, 8)
    mlp_map: tuple = (8, 16)
    valid_out: tuple = (4, 4)
    same_kernel: tuple = (5, 5)
    ln_eps: float = 1e-6

    def __post_init__(self):
        problems = []
        if self.mixer not in MIXERS:
            problems.append(f"mixer '{self.mixer}' is not one of {MIXERS}")
        if self.dim % self.heads:
            problems.append(f"dim {self.dim} is not divisible by heads {self.heads}")
        for features, shape, name in ((self.dim, self.dim_map, "dim_map"),
                                      (self.mlp, self.mlp_map, "mlp_map")):
            if self.mixer != "linear" and math.prod(shape) != features:
                problems.append(f"{name} {shape} does not hold {features} features")
        if problems:
            raise ConfigError(f"config '{self.name}': " + "; ".join(problems))
        if self.mixer != "linear":
            self.layers()  # every layer's kernels must tile its outputs

    def layers(self) -> dict:
        """Each block's shared convolutions by name: `SharedConvShape`."""
        d, h = (self.dim, self.dim_map), (self.mlp, self.mlp_map)
        io = {"qkv": (d, 3 * self.dim), "proj": (d, self.dim), "fc1": (d, self.mlp),
              "fc2": (h, self.dim)}
        return {name: SharedConvShape.make(self, name, m, out) for name, ((_, m), out)
                in io.items()}

    def describe(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SharedConvShape:
    """``kernels`` kernels of ``kernel`` over an ``in_map``, read every ``stride`` pixel."""

    in_map: tuple
    kernel: tuple
    kernels: int
    padding: str
    stride: tuple

    @classmethod
    def make(cls, config: ConvShareConfig, name: str, in_map: tuple, outputs: int):
        if config.mixer == "valid":
            kernel = tuple(i - o + 1 for i, o in zip(in_map, config.valid_out, strict=True))
            per_kernel, stride = math.prod(config.valid_out), (1, 1)
        else:
            kernel = config.same_kernel
            # Fewer outputs than inputs: read every k-th column of the camera image.
            step = max(1, math.prod(in_map) // outputs)
            stride, per_kernel = (1, step), math.prod(in_map) // step
        if min(kernel) < 1 or outputs % per_kernel or in_map[1] % stride[1]:
            raise ConfigError(f"config '{config.name}': layer {name} ({in_map} map, {outputs} "
                              f"outputs) cannot be tiled by {config.mixer} kernels giving "
                              f"{per_kernel} outputs each")
        return cls(in_map, kernel, outputs // per_kernel, config.mixer, stride)

    @property
    def out_map(self) -> tuple:
        rows, cols = self.in_map
        if self.padding == "valid":
            rows, cols = rows - self.kernel[0] + 1, cols - self.kernel[1] + 1
        return rows // self.stride[0], cols // self.stride[1]

    @property
    def macs_per_token(self) -> int:
        """Multiplies the camera image holds per token: every output before the stride."""
        rows, cols = self.out_map
        return self.kernels * math.prod(self.kernel) * rows * cols * math.prod(self.stride)


def digital_conv(tiles: torch.Tensor, kernels: torch.Tensor, padding: str) -> torch.Tensor:
    """``(n, h, w)`` tiles correlated with every ``(m, kh, kw)`` kernel: ``(n, m, h', w')``."""
    return F.conv2d(tiles[:, None], kernels[:, None], padding=padding)


class SharedConv(nn.Module):
    """A linear layer as shared-kernel convolutions: ``(n, T, in)`` to ``(n, T, out)``.

    ``executor(tiles, kernels, padding)`` runs the convolutions; `digital_conv` by default,
    the 4f model after `use_optics`.
    """

    def __init__(self, shape: SharedConvShape):
        super().__init__()
        self.shape = shape
        fan_in = math.prod(shape.kernel)
        self.weight = nn.Parameter(torch.randn(shape.kernels, *shape.kernel) / math.sqrt(fan_in))
        rows, cols = shape.out_map
        self.bias = nn.Parameter(torch.zeros(shape.kernels * rows * cols))
        self.executor = digital_conv

    def forward(self, x):
        n, tokens, _ = x.shape
        s = self.shape
        tiles = x.reshape(n * tokens, *s.in_map)
        out = self.executor(tiles, self.weight, s.padding)[..., ::s.stride[0], ::s.stride[1]]
        return out.reshape(n, tokens, -1) + self.bias


def mixer(config: ConvShareConfig, name: str, inputs: int, outputs: int) -> nn.Module:
    if config.mixer == "linear":
        return nn.Linear(inputs, outputs)
    return SharedConv(config.layers()[name])


class Block(nn.Module):
    def __init__(self, config: ConvShareConfig):
        super().__init__()
        d = config.dim
        self.heads = config.heads
        self.ln1 = nn.LayerNorm(d, eps=config.ln_eps)
        self.qkv = mixer(config, "qkv", d, 3 * d)
        self.proj = mixer(config, "proj", d, d)
        self.ln2 = nn.LayerNorm(d, eps=config.ln_eps)
        self.fc1 = mixer(config, "fc1", d, config.mlp)
        self.fc2 = mixer(config, "fc2", config.mlp, d)

    def forward(self, x):
        n, tokens, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).reshape(n, tokens, 3, self.heads, -1).unbind(2)
        scores = torch.einsum("nqhd,nkhd->nhqk", q, k) / math.sqrt(q.shape[-1])
        attended = torch.einsum("nhqk,nkhd->nqhd", scores.softmax(-1), v).reshape(n, tokens, d)
        x = x + self.proj(attended)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ConvShareViT(nn.Module):
    """``forward(patches)`` takes ``(n, patches, patch_pixels)`` and returns class logits."""

    def __init__(self, config: ConvShareConfig):
        super().__init__()
        self.config = config
        self.patch_embed = nn.Linear(config.patch_pixels, config.dim)
        # Token 0 is the class token, folded into the position embedding.
        self.pos = nn.Parameter(torch.randn(config.tokens, config.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.dim, eps=config.ln_eps)
        self.head = nn.Linear(config.dim, config.classes)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        c = self.config
        if patches.ndim != 3 or tuple(patches.shape[1:]) != (c.patches, c.patch_pixels):
            raise ConfigError(f"input of shape {tuple(patches.shape)} does not fit config "
                              f"'{c.name}': expected (n, {c.patches}, {c.patch_pixels})")
        x = self.patch_embed(patches)
        x = torch.cat([x.new_zeros(x.shape[0], 1, x.shape[2]), x], dim=1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])

    def shared_convs(self) -> list:
        return [m for m in self.modules() if isinstance(m, SharedConv)]


def predict(model: ConvShareViT, split, batch: int = 250) -> np.ndarray:
    """Predicted classes of a `pyref.data.Split`, ``batch`` images at a time (on the 4f
    model, one batch shares its SLM frames)."""
    dtype = next(model.parameters()).dtype
    patches = torch.from_numpy(data.patchify(split.images, model.config.patch)).to(dtype)
    with torch.no_grad():
        return np.concatenate([model(patches[i:i + batch]).argmax(-1).numpy()
                               for i in range(0, len(patches), batch)])


def use_optics(model: ConvShareViT, ideal: bool = True, trainable: bool = False,
               **device) -> ConvShareViT:
    """Run every shared convolution of ``model`` on the 4f model (`pyref.optics`).

    ``device`` holds `pyref.optics.Device` fields. Each kernel's convolution draws its own
    camera noise: the seeds count up from ``device["seed"]`` (default 0) in call order.
    ``trainable`` gives physics-aware training: the values come from the optics, the
    gradients from the digital convolution.
    """
    Device.make(**device)  # name a bad parameter now, not at the first convolution
    seeds = iter(range(device.pop("seed", 0), 2**63))

    def optical(tiles, kernels, padding):
        with torch.no_grad():
            out = torch.stack([fourf_conv2d(tiles.double(), kernel.double(), padding, ideal,
                                            seed=next(seeds), **device)
                               for kernel in kernels], dim=1).to(tiles.dtype)
        if not trainable:
            return out
        exact = digital_conv(tiles, kernels, padding)
        return exact + (out - exact).detach()

    for conv in model.shared_convs():
        conv.executor = optical
    return model


def use_digital(model: ConvShareViT) -> ConvShareViT:
    """Undo `use_optics`: every shared convolution digital again."""
    for conv in model.shared_convs():
        conv.executor = digital_conv
    return model


def macs(config: ConvShareConfig) -> dict:
    """Multiplies per image by where they run: ``optical`` (the shared convolutions, or the
    baseline's linear layers in their place) and ``digital`` (everything else)."""
    t, d = config.tokens, config.dim
    if config.mixer == "linear":
        mixed = t * (3 * d * d + d * d + 2 * d * config.mlp)
    else:
        mixed = t * sum(s.macs_per_token for s in config.layers().values())
    attention = 2 * t * t * d
    digital = config.patches * config.patch_pixels * d + config.depth * attention \
        + d * config.classes
    return {"optical": config.depth * mixed, "digital": digital}


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


CONFIGS = {c.name: c for c in [
    ConvShareConfig("convshare-valid", "valid"),
    ConvShareConfig("convshare-same", "same"),
    # The baseline: a standard ViT of about the same parameter count.
    ConvShareConfig("vit-baseline", "linear", dim=16, mlp=32),
]}


def get_convshare_config(name: str) -> ConvShareConfig:
    if name not in CONFIGS:
        raise ConfigError(f"unknown ConvShareViT config '{name}': use one of {sorted(CONFIGS)}")
    return CONFIGS[name]
