"""Configs, the bundled data set and the float model."""

import json

import numpy as np
import pytest
import torch

from pyref import data, metrics
from pyref.config import CONFIGS, ConfigError, ModelConfig, get_config
from pyref.model import CHECKPOINTS, MultiTaskViT, load_checkpoint, save_checkpoint, top_k

TINY = get_config("tiny")


def test_configs_follow_the_design_table():
    m3 = get_config("m3vit-tiny")
    assert (m3.tokens, m3.dim, m3.depth, m3.heads, m3.mlp) == (129, 192, 12, 3, 768)
    assert (m3.experts, m3.expert_hidden, m3.top_k, m3.head_dim) == (16, 384, 2, 64)
    assert (TINY.tokens, TINY.dim, TINY.depth, TINY.heads) == (17, 32, 4, 2)
    assert [TINY.is_moe(layer) for layer in range(4)] == [False, True, False, True]


@pytest.mark.parametrize("change, message", [
    ({"heads": 3}, "not divisible by heads"),
    ({"top_k": 5}, "top_k 5 must be between 1 and experts 4"),
    ({"patch": 5}, "not a whole number"),
    ({"dim": 24, "heads": 2}, "not a power of 4"),
])
def test_wrong_configs_get_clear_errors(change, message):
    fields = {**TINY.describe(), **change, "name": "bad"}
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**fields)


def test_unknown_config_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown config 'huge'.*tiny, m3vit-tiny"):
        get_config("huge")
    assert set(CONFIGS) == {"tiny", "m3vit-tiny"}


def test_data_split_is_fixed_and_labels_are_sane():
    train, test = data.load(TINY, "train"), data.load(TINY, "test")
    assert (len(train), len(test)) == (4000, data.TEST_IMAGES)
    again = data.load(TINY, "test")
    assert np.array_equal(test.labels, again.labels) and np.array_equal(test.ink, again.ink)
    labels = test.patch_labels
    assert labels.shape == (len(test), TINY.patches)
    # Background patches exist, and every digit patch carries its image's class.
    assert (labels == 0).mean() > 0.2
    digit = labels > 0
    image_class = np.broadcast_to(test.labels[:, None], labels.shape)
    assert np.array_equal(labels[digit] - 1, image_class[digit])
    with pytest.raises(data.DataError, match="28x28x1"):
        data.load(get_config("m3vit-tiny"), "test")


def test_patchify_is_row_major():
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28, 1).astype(np.float32)
    patches = data.patchify(images, 7)
    assert patches.shape == (2, 16, 49)
    assert np.array_equal(patches[0, 1], images[0, :7, 7:14, 0].ravel())
    assert np.array_equal(patches[1, 4], images[1, 7:14, :7, 0].ravel())


def test_top_k_breaks_ties_towards_the_lower_index():
    values, index = top_k(torch.tensor([[0.25, 0.25, 0.5, 0.125]]), 2)
    assert index.tolist() == [[2, 0]] and values.tolist() == [[0.5, 0.25]]


def test_moe_keeps_unnormalised_top_k_scores():
    torch.manual_seed(0)
    model = MultiTaskViT(TINY)
    moe = model.blocks[1].moe
    x = torch.randn(2, TINY.tokens, TINY.dim)
    out, probs, chosen = moe(x, 1)
    assert torch.allclose(probs.sum(-1), torch.ones(2, TINY.tokens))
    gate = torch.zeros_like(probs).scatter(-1, chosen, probs.gather(-1, chosen))
    reference = sum(gate[..., e:e + 1] * (
        torch.nn.functional.gelu(x @ moe.fc1_weight[e].T + moe.fc1_bias[e]) @ moe.fc2_weight[e].T
        + moe.fc2_bias[e]) for e in range(TINY.experts))
    assert torch.allclose(out, reference, atol=1e-5)
    assert not torch.equal(moe(x, 0)[2], chosen)  # each task has its own router


def test_shipped_checkpoint_meets_its_targets_and_loads():
    report = json.loads((CHECKPOINTS / "tiny.json").read_text())
    assert report["test"]["task0"]["accuracy"] >= 0.95
    assert (CHECKPOINTS / "tiny.npz").stat().st_size <= 2 * 2**20
    assert max(report["test"]["routing_disagreement"]) > 0.2  # the routers differ per task
    model = load_checkpoint(TINY)
    test = data.load(TINY, "test")
    patches = torch.from_numpy(data.patchify(test.images[:300], TINY.patch))
    with torch.no_grad():
        logits, _ = model(patches, 0)
    assert metrics.task_metric(0, logits.numpy(), test.labels[:300], None) >= 0.94


def test_checkpoint_mismatches_are_refused(tmp_path):
    path = tmp_path / "m.npz"
    save_checkpoint(MultiTaskViT(TINY), path)
    with pytest.raises(ConfigError, match="is for config 'tiny', not 'm3vit-tiny'"):
        load_checkpoint(get_config("m3vit-tiny"), path)
    other = ModelConfig(**{**TINY.describe(), "mlp": 64})
    with pytest.raises(ConfigError, match="does not match config 'tiny'.*mlp.fc1"):
        load_checkpoint(other, path)
    with pytest.raises(ConfigError, match="make train"):
        load_checkpoint(TINY, tmp_path / "missing.npz")


def test_bad_inputs_and_tasks_are_named():
    model = MultiTaskViT(TINY)
    with pytest.raises(ConfigError, match=r"expected \(n, 16, 49\)"):
        model(torch.zeros(1, 16, 48), 0)
    with pytest.raises(ConfigError, match="unknown task 2"):
        model(torch.zeros(1, 16, 49), 2)
