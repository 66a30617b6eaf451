"""Task metrics and routing statistics, shared by the float and integer models."""

from __future__ import annotations

import numpy as np

#: Name of each task's metric.
TASK_METRICS = {0: "accuracy", 1: "patch accuracy"}


def task_metric(task: int, logits: np.ndarray, labels: np.ndarray,
                patch_labels: np.ndarray) -> float:
    """Task 0: image accuracy from ``(n, classes)``; task 1: per-patch accuracy from
    ``(n, patches, classes + 1)``."""
    if task == 0:
        return float((np.argmax(logits, axis=-1) == labels).mean())
    return float((np.argmax(logits, axis=-1) == patch_labels).mean())


def expert_usage(chosen: np.ndarray, experts: int) -> np.ndarray:
    """Fraction of (token, slot) choices that went to each expert, from ``(..., k)`` indices."""
    counts = np.bincount(np.asarray(chosen).ravel(), minlength=experts)
    return counts / counts.sum()


def usage_distance(usage_a: np.ndarray, usage_b: np.ndarray) -> float:
    """Total-variation distance between two tasks' expert-usage distributions (0..1)."""
    return float(0.5 * np.abs(np.asarray(usage_a) - np.asarray(usage_b)).sum())


def routing_disagreement(chosen_a: np.ndarray, chosen_b: np.ndarray) -> float:
    """Mean fraction of a token's k experts that the other task's router did not choose.

    0 when both routers pick the same experts for every token, 1 when they never overlap.
    """
    a, b = np.asarray(chosen_a), np.asarray(chosen_b)
    shared = (a[..., :, None] == b[..., None, :]).any(axis=-1).sum(axis=-1)
    return float(1 - shared.mean() / a.shape[-1])
