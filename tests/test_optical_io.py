"""The optical I/O unit's integer model: packing agrees with the optical layout, readout with
its float meaning, and the whole integer path with conv2d within the 8-bit optics' error."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from pyref import optical_io, optics
from pyref.formats import ACT, AMPLITUDE, OPTICAL_ACC, OPTICAL_SCALE


def test_slm_shift_is_the_smallest_that_fits():
    assert optical_io.slm_shift(np.array([0, 255, -255])) == 0
    assert optical_io.slm_shift(np.array([256])) == 1
    assert optical_io.slm_shift(np.array([ACT.min_code])) == 8
    assert optical_io.slm_shift(np.array([], dtype=np.int64)) == 0


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pack_places_parts_where_the_optical_layout_does(padding):
    rng = np.random.default_rng(0)
    device = optics.Device(slm=(24, 32))
    x = ACT.random(rng, (11, 6, 7))
    layout = optical_io.FrameLayout.make(11, (6, 7), (3, 4), padding, device)
    shift = optical_io.slm_shift(x)
    packed = optical_io.pack(x, shift, layout)
    grid = optics.Layout.plan(22, (layout.tile_rows, layout.tile_cols), device)
    frames = np.zeros((grid.frames, *grid.used), dtype=np.int64)
    for part in ("pos", "neg"):
        frames[packed[f"{part}_frame"], packed[f"{part}_row"], packed[f"{part}_col"]] = \
            packed[part]
    pos = np.minimum((np.maximum(x, 0) + (1 << shift - 1)) >> shift, 255)
    neg = np.minimum((np.maximum(-x, 0) + (1 << shift - 1)) >> shift, 255)
    tiles = np.concatenate([pos, neg])
    if padding == "same":
        (top, left), (bottom, right) = optics.same_padding((3, 4))
        tiles = np.pad(tiles, ((0, 0), (top, bottom), (left, right)))
    np.testing.assert_array_equal(frames, grid.pack(tiles))
    # The hardware's registers hold the negative parts' first slot without a divide.
    regs = layout.registers(shift)
    first_neg = layout.per_frame - 1 - regs["neg"]["slots_left"]
    assert regs["neg"]["frame"] * layout.per_frame + first_neg == 11


@pytest.mark.parametrize("detection", optics.DETECTIONS)
def test_readout_is_the_rounded_signed_sum(detection):
    rng = np.random.default_rng(1)
    camera = rng.integers(0, 256, (4, 64))
    scales = rng.integers(-2**18, 2**18, 4)
    field = {"homodyne": camera / 255, "direct": np.sqrt(camera / 255)}[detection]
    assert np.abs(AMPLITUDE.dequantise(optical_io.FIELD_TABLES[detection][camera])
                  - field).max() <= 2.0**-AMPLITUDE.frac / 2
    exact = (field * OPTICAL_SCALE.dequantise(scales)[:, None]).sum(axis=0)
    got = optical_io.readout(camera, scales, detection)
    # Rounding to ACT, plus the table's rounding times four scales below 2^18 codes.
    table_error = 4 * 2.0 ** -(AMPLITUDE.frac + 1) * 2.0 ** (18 - OPTICAL_SCALE.frac)
    assert np.abs(got - np.clip(exact, ACT.min_code, ACT.max_code)).max() <= 0.5 + table_error
    assert OPTICAL_ACC.bits >= 1 + AMPLITUDE.bits + OPTICAL_SCALE.bits + 2  # four passes


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("detection", optics.DETECTIONS)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_integer_path_matches_conv2d_within_the_optics_error(padding, detection):
    """8-bit SLM and camera: a few percent, like the float model at the same settings."""
    rng = np.random.default_rng(2)
    x = ACT.quantise(rng.normal(0, 2, (34, 8, 8)))
    k = rng.normal(0, 0.3, (5, 5))
    ref = F.conv2d(torch.from_numpy(ACT.dequantise(x))[:, None],
                   torch.from_numpy(k)[None, None], padding=padding)[:, 0].numpy()
    integer = ACT.dequantise(optical_io.conv(x, k, padding, detection=detection))
    floating = optics.fourf_conv2d(ACT.dequantise(x), k, padding, ideal=False,
                                   detection=detection)
    error = np.linalg.norm(integer - ref) / np.linalg.norm(ref)
    assert error < 0.1
    assert error < 1.5 * np.linalg.norm(floating - ref) / np.linalg.norm(ref)


def test_clear_errors():
    layout = optical_io.FrameLayout.make(70_000, (1, 1), (1, 1), "valid",
                                         optics.Device(slm=(4096, 4096)))
    with pytest.raises(optics.OpticsError, match="does not fit the unit"):
        layout.registers(0)
    with pytest.raises(optics.OpticsError, match="8-bit"):
        optical_io.conv(np.zeros((1, 4, 4), dtype=np.int64), np.ones((2, 2)), slm_bits=6)
    with pytest.raises(Exception, match="outside"):
        optical_io.readout(np.array([[256]]), np.array([1]), "homodyne")
    with pytest.raises(optics.OpticsError, match="5 passes"):
        optical_io.readout(np.zeros((5, 4), dtype=np.int64), np.ones(5, dtype=np.int64),
                           "homodyne")
