"""ConvShareViT: shared-kernel convolutions as linear layers, digital and through the 4f
model; the shipped checkpoints."""

import json

import numpy as np
import pytest
import torch

from pyref import data
from pyref.config import ConfigError
from pyref.convsharevit import (
    CONFIGS,
    ConvShareConfig,
    ConvShareViT,
    SharedConv,
    macs,
    parameter_count,
    predict,
    use_digital,
    use_optics,
)
from pyref.model import CHECKPOINTS, load_checkpoint
from pyref.optics import OpticsError


def test_shared_conv_is_a_structured_linear_layer():
    """Each token's output is a linear map of that token alone, the same for every token,
    equal to per-kernel cross-correlations of the token's map."""
    torch.manual_seed(0)
    shape = CONFIGS["convshare-valid"].layers()["qkv"]
    layer = SharedConv(shape).double()
    x = torch.randn(2, 5, 64, dtype=torch.float64)
    with torch.no_grad():
        out = layer(x)
    weight, bias = layer.weight.detach(), layer.bias.detach()
    assert out.shape == (2, 5, 192)
    maps = x.reshape(10, 8, 8)
    for k in range(shape.kernels):
        for token in range(10):
            for r in range(4):
                for c in range(4):
                    expected = (maps[token, r:r + 5, c:c + 5] * weight[k]).sum()
                    got = out.reshape(10, shape.kernels, 4, 4)[token, k, r, c] \
                        - bias.reshape(shape.kernels, 4, 4)[k, r, c]
                    assert float(got) == pytest.approx(float(expected))


def test_variants_have_the_documented_shapes():
    valid, same = CONFIGS["convshare-valid"].layers(), CONFIGS["convshare-same"].layers()
    assert {n: (s.kernel, s.kernels) for n, s in valid.items()} == {
        "qkv": ((5, 5), 12), "proj": ((5, 5), 4), "fc1": ((5, 5), 8), "fc2": ((5, 13), 4)}
    assert {n: (s.kernels, s.stride) for n, s in same.items()} == {
        "qkv": (3, (1, 1)), "proj": (1, (1, 1)), "fc1": (2, (1, 1)), "fc2": (1, (1, 2))}
    for config in CONFIGS.values():
        model = ConvShareViT(config)
        assert model(torch.randn(3, config.patches, config.patch_pixels)).shape == (3, 10)
    # The baseline was sized to about the same parameter count.
    counts = [parameter_count(ConvShareViT(c)) for c in CONFIGS.values()]
    assert max(counts) < 1.4 * min(counts)
    assert macs(CONFIGS["convshare-valid"])["optical"] > 0


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("name", ["convshare-valid", "convshare-same"])
def test_ideal_optics_equals_digital(name):
    torch.manual_seed(1)
    model = ConvShareViT(CONFIGS[name]).double().eval()
    x = torch.randn(4, 16, 49, dtype=torch.float64)
    with torch.no_grad():
        digital = model(x)
        optical = use_optics(model)(x)
    assert torch.allclose(optical, digital, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shipped_checkpoints_reproduce_their_accuracy(name):
    """The recorded test accuracy is recomputed from the shipped weights."""
    config = CONFIGS[name]
    record = json.loads((CHECKPOINTS / f"{name}.json").read_text())
    model = load_checkpoint(config, build=ConvShareViT)
    test = data.load(config, "test")
    assert float((predict(model, test) == test.labels).mean()) == record["accuracy"]
    assert record["parameters"] == parameter_count(model)


def test_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="mixer 'conv'"):
        ConvShareConfig("x", "conv")
    with pytest.raises(ConfigError, match="dim_map"):
        ConvShareConfig("x", "valid", dim_map=(4, 8))
    with pytest.raises(ConfigError, match="cannot be tiled"):
        ConvShareConfig("x", "valid", valid_out=(3, 3))
    with pytest.raises(ConfigError, match="expected"):
        ConvShareViT(CONFIGS["convshare-valid"])(torch.zeros(1, 16, 48))
    with pytest.raises(ConfigError, match="train-convshare"):
        load_checkpoint(CONFIGS["convshare-valid"], tmp_path / "none.npz", build=ConvShareViT,
                        train="make train-convshare")
    with pytest.raises(OpticsError, match="unknown device"):
        use_optics(ConvShareViT(CONFIGS["convshare-valid"]), pitch_um=8)
    np.testing.assert_equal(sorted(CONFIGS), ["convshare-same", "convshare-valid",
                                              "vit-baseline"])


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_physics_aware_executor_takes_optical_values_and_digital_gradients():
    torch.manual_seed(2)
    layer = SharedConv(CONFIGS["convshare-same"].layers()["fc1"]).double()
    x = torch.randn(1, 3, 64, dtype=torch.float64, requires_grad=True)
    digital = layer(x)
    (digital_grad,) = torch.autograd.grad(digital.sum(), layer.weight)

    class Holder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = layer

        def shared_convs(self):
            return [self.conv]

    holder = Holder()
    use_optics(holder, ideal=False, trainable=True, slm_bits=6, camera_bits=6)
    physical = layer(x)
    (physical_grad,) = torch.autograd.grad(physical.sum(), layer.weight)
    use_optics(holder, ideal=False, slm_bits=6, camera_bits=6)
    with torch.no_grad():
        # The same seeds: the optics' values, to the rounding of adding and subtracting.
        assert torch.allclose(physical, layer(x), rtol=0, atol=1e-12)
    assert not torch.allclose(physical, digital)
    assert torch.allclose(physical_grad, digital_grad)
    use_digital(holder)
    assert torch.equal(layer(x), digital)
