"""Model configurations: the M³ViT-style multi-task MoE ViT in two sizes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


class ConfigError(ValueError):
    """A configuration that cannot describe a working model."""


@dataclass(frozen=True)
class ModelConfig:
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

    @property
    def patch_classes(self) -> int:
        """Task 1's labels: background plus every class."""
        return self.classes + 1

    def is_moe(self, layer: int) -> bool:
        """MoE on odd layers, as in M³ViT."""
        return layer % 2 == 1

    def describe(self) -> dict:
        return asdict(self)


CONFIGS = {c.name: c for c in [
    # CI-sized: 28x28 MNIST digits, 16 patches of 7x7.
    ModelConfig("tiny", image=(28, 28, 1), patch=7, dim=32, depth=4, heads=2, mlp=128,
                experts=4, expert_hidden=64, top_k=2),
    # Edge-MoE's M³ViT: 128x256 RGB, 16x16 patches (128 of them), ViT-tiny widths.
    ModelConfig("m3vit-tiny", image=(128, 256, 3), patch=16, dim=192, depth=12, heads=3,
                mlp=768, experts=16, expert_hidden=384, top_k=2),
]}


def get_config(name: str) -> ModelConfig:
    """The config called ``name``, or a `ConfigError` listing the known ones."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(f"unknown config '{name}': choose from {', '.join(CONFIGS)}") from None
