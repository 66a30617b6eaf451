"""Model configurations: the M³ViT-style multi-task MoE ViT in two sizes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from pyref.formats import BIAS, WEIGHT


class ConfigError(ValueError):
    """A configuration that cannot describe a working model."""


class ViTGeometry:
    """Sizes every ViT config derives from its ``image``, ``patch``, ``dim`` and ``heads``.
    Token 0 is the class token."""

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def patches(self) -> int:
        return (self.image[0] // self.patch) * (self.image[1] // self.patch)

    @property
    def tokens(self) -> int:
        return self.patches + 1

    @property
    def patch_pixels(self) -> int:
        return self.patch * self.patch * self.image[2]


@dataclass(frozen=True)
class ModelConfig(ViTGeometry):
    """Shape of a multi-task mixture-of-experts ViT.

    Odd layers (1, 3, ...) are MoE layers with one router per task; even layers have a dense
    MLP. Token 0 is the class token, folded into the position embedding.

    Parameters
    ----------
    name : str
        Config name.
    image : tuple of int
        Height, width and channels of an input image.
    patch : int
        Side of a square patch.
    dim, depth, heads, mlp : int
        Embedding width, number of blocks, attention heads and dense-MLP hidden width.
    experts, expert_hidden, top_k : int
        Experts per MoE layer, their hidden width, and experts kept per token.
    tasks : int
        Tasks, each with its own router per MoE layer (task 0: image class, task 1:
        per-patch label).
    classes : int
        Classes of task 0; task 1 labels each patch with background or one of them.
    """

    name: str
    image: tuple
    patch: int
    dim: int
    depth: int
    heads: int
    mlp: int
    experts: int
    expert_hidden: int
    top_k: int
    tasks: int = 2
    classes: int = 10
    ln_eps: float = 1e-6

    def __post_init__(self):
        height, width, _ = self.image
        problems = []
        if height % self.patch or width % self.patch:
            problems.append(f"image {height}x{width} is not a whole number of "
                            f"{self.patch}x{self.patch} patches")
        if self.dim % self.heads:
            problems.append(f"dim {self.dim} is not divisible by heads {self.heads}")
        elif math.sqrt(self.head_dim) != 2 ** round(math.log2(math.sqrt(self.head_dim))):
            problems.append(f"head_dim {self.head_dim} is not a power of 4, so the attention "
                            "scale 1/sqrt(head_dim) would not be a shift")
        if not 1 <= self.top_k <= self.experts:
            problems.append(f"top_k {self.top_k} must be between 1 and experts {self.experts}")
        if self.tasks != 2:
            problems.append(f"tasks is {self.tasks}; the heads implement exactly 2 tasks")
        if min(self.dim, self.depth, self.mlp, self.expert_hidden) < 1:
            problems.append("dim, depth, mlp and expert_hidden must be positive")
        if problems:
            raise ConfigError(f"config '{self.name}': " + "; ".join(problems))

    @property
    def patch_classes(self) -> int:
        """Task 1's labels: background plus every class."""
        return self.classes + 1

    def is_moe(self, layer: int) -> bool:
        """MoE on odd layers, as in M³ViT."""
        return layer % 2 == 1

    @property
    def expert_bytes(self) -> int:
        """One expert's parameters in memory: WEIGHT fc1 and fc2, BIAS biases."""
        weights = 2 * self.dim * self.expert_hidden * WEIGHT.bits // 8
        return weights + (self.expert_hidden + self.dim) * BIAS.bits // 8

    @property
    def expert_tokens(self) -> int:
        """Tokens an expert gets when routing is even: ``tokens * top_k / experts``, rounded
        up."""
        return -(-self.tokens * self.top_k // self.experts)

    def linear_layers(self) -> list[LinearLayer]:
        """Every distinct linear layer the linear unit runs, in model order. Experts appear
        with `expert_tokens`; the heads with one token (task 0) and every patch (task 1)."""
        d = self.dim
        return [
            LinearLayer("patch_embed", self.patches, self.patch_pixels, d),
            LinearLayer("qkv", self.tokens, d, 3 * d),
            LinearLayer("proj", self.tokens, d, d),
            LinearLayer("fc1", self.tokens, d, self.mlp, gelu=True),
            LinearLayer("fc2", self.tokens, self.mlp, d),
            LinearLayer("router", self.tokens, d, self.experts, bias=False),
            LinearLayer("expert_fc1", self.expert_tokens, d, self.expert_hidden, gelu=True),
            LinearLayer("expert_fc2", self.expert_tokens, self.expert_hidden, d),
            LinearLayer("head0", 1, d, self.classes),
            LinearLayer("head1", self.patches, d, self.patch_classes),
        ]

    def describe(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LinearLayer:
    """One job of the linear unit: ``tokens`` rows of ``inputs`` values to ``outputs``.

    Parameters
    ----------
    name : str
        Layer name (the same in every block).
    tokens, inputs, outputs : int
        Rows, input width and output width.
    bias, gelu : bool
        Whether the layer adds a bias and applies GELU.
    """

    name: str
    tokens: int
    inputs: int
    outputs: int
    bias: bool = True
    gelu: bool = False

    @property
    def macs(self) -> int:
        return self.tokens * self.inputs * self.outputs


CONFIGS = {c.name: c for c in [
    # CI-sized: 28x28 MNIST digits, 16 patches of 7x7.
    ModelConfig("tiny", image=(28, 28, 1), patch=7, dim=32, depth=4, heads=2, mlp=128,
                experts=4, expert_hidden=64, top_k=2),
    # Edge-MoE's M³ViT: 128x256 RGB, 16x16 patches (128 of them), ViT-tiny widths.
    ModelConfig("m3vit-tiny", image=(128, 256, 3), patch=16, dim=192, depth=12, heads=3,
                mlp=768, experts=16, expert_hidden=384, top_k=2),
]}


@dataclass(frozen=True)
class HardwareConfig:
    """A parameter set of the accelerator.

    Parameters
    ----------
    name : str
        Parameter-set name.
    tile_in, tile_out : int
        The linear unit's MAC tile: ``tile_in`` inputs times ``tile_out`` outputs per cycle.
    parallelism : int
        Queries the attention unit runs at once (P).
    attention_width : int
        Values of a query, key or value row the attention unit takes per cycle.
    max_tokens, max_inputs : int
        Largest job the linear unit buffers: rows, and input width.
    max_dim, max_head_dim : int
        Widest token row and attention head the other units buffer.
    max_experts, top_k : int
        Experts the MoE unit routes among, and experts it keeps per token.
    port_bits : int
        Width of the external-memory port (Edge-MoE: 256-bit AXI).
    """

    name: str
    tile_in: int
    tile_out: int
    parallelism: int
    attention_width: int
    max_tokens: int
    max_inputs: int
    max_dim: int
    max_head_dim: int
    max_experts: int
    top_k: int
    port_bits: int = 256

    def __post_init__(self):
        if min(self.tile_in, self.tile_out, self.parallelism, self.attention_width,
               self.max_tokens, self.max_inputs, self.max_dim, self.max_head_dim,
               self.max_experts, self.top_k) < 1:
            raise ConfigError(f"parameter set '{self.name}': every size must be positive")

    @property
    def compute(self) -> tuple:
        """The tile, attention P and chunk width: what sets cycle counts, buffers aside."""
        return self.tile_in, self.tile_out, self.parallelism, self.attention_width

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.tile_in * self.tile_out

    def check_layer(self, layer: LinearLayer):
        """Raise `ConfigError` when ``layer`` does not fit the linear unit's buffers."""
        if layer.tokens > self.max_tokens or layer.inputs > self.max_inputs:
            raise ConfigError(
                f"layer {layer.name} ({layer.tokens} tokens x {layer.inputs} inputs) does not "
                f"fit parameter set '{self.name}' (at most {self.max_tokens} tokens x "
                f"{self.max_inputs} inputs): choose a larger set")


def _sized_for(*configs: ModelConfig) -> dict:
    """Buffer sizes that hold every layer of ``configs`` (which share one ``top_k``)."""
    layers = [layer for c in configs for layer in c.linear_layers()]
    (top_k,) = {c.top_k for c in configs}
    return {"max_tokens": max(layer.tokens for layer in layers),
            "max_inputs": max(layer.inputs for layer in layers),
            "max_dim": max(c.dim for c in configs),
            "max_head_dim": max(c.head_dim for c in configs),
            "max_experts": max(c.experts for c in configs), "top_k": top_k}


def get_config(name: str) -> ModelConfig:
    """The config called ``name``, or a `ConfigError` listing the known ones."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(f"unknown config '{name}': choose from {', '.join(CONFIGS)}") from None


#: ``ecp5-85f`` is the set the board runs (``make bitstream``): the whole accelerator fits
#: an LFE5U-85F, with buffers for the tiny model. At 8 x 8 it needs 200 multipliers of the
#: 156, and the memory layout needs a square tile (`pyref.compiler.check_fit`), so its tile
#: is 4 x 4. ``ecp5-85f-m3vit`` is the same compute with buffers for m3vit-tiny too, for
#: the cycle model's projection only: the linear unit's activation buffer alone would be
#: deeper than a block RAM column. ``ecp5-8x8`` is the compute units' own design point
#: (each unit alone is built and benched with it, on both configs); ``edge-moe`` is
#: Edge-MoE's 16x16 tile with attention parallelism 4, for like-for-like cycle counts.
_ECP5_COMPUTE = {"tile_in": 4, "tile_out": 4, "parallelism": 2, "attention_width": 4}
HW_CONFIGS = {h.name: h for h in [
    HardwareConfig("ecp5-85f", **_ECP5_COMPUTE, **_sized_for(CONFIGS["tiny"])),
    HardwareConfig("ecp5-85f-m3vit", **_ECP5_COMPUTE, **_sized_for(*CONFIGS.values())),
    HardwareConfig("ecp5-8x8", tile_in=8, tile_out=8, parallelism=2, attention_width=4,
                   **_sized_for(*CONFIGS.values())),
    HardwareConfig("edge-moe", tile_in=16, tile_out=16, parallelism=4, attention_width=16,
                   **_sized_for(*CONFIGS.values())),
]}


def get_hw_config(name: str) -> HardwareConfig:
    """The parameter set called ``name``, or a `ConfigError` listing the known ones."""
    try:
        return HW_CONFIGS[name]
    except KeyError:
        raise ConfigError(f"unknown parameter set '{name}': choose from "
                          f"{', '.join(HW_CONFIGS)}") from None
