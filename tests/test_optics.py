"""The 4f model: exact in ideal mode, physically scaled (checked against LightPipes), and
degraded as expected by bits and noise."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from pyref.optics import (
    DETECTIONS,
    Device,
    Layout,
    OpticsError,
    centred_fft,
    correlator,
    fourf_conv2d,
    fourier_mask,
    lens,
    passes,
)


def conv2d(x: np.ndarray, k: np.ndarray, padding: str) -> np.ndarray:
    """torch's cross-correlation of each channel of ``x`` with ``k``, float64."""
    out = F.conv2d(torch.from_numpy(x)[:, None], torch.from_numpy(k)[None, None],
                   padding=padding)
    return out[:, 0].numpy()


def relative(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("detection", DETECTIONS)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_ideal_equals_conv2d(padding, detection):
    """Random shapes, even and odd sizes, kernels up to the image size: <= 1e-9 relative."""
    rng = np.random.default_rng(7)
    sizes = set()
    for _ in range(60):
        height, width = rng.integers(2, 15, size=2)
        kh, kw = rng.integers(1, height + 1), rng.integers(1, width + 1)
        sizes.add((kh % 2, kw % 2))
        x = rng.normal(size=(rng.integers(1, 9), height, width))
        k = rng.normal(size=(kh, kw))
        out = fourf_conv2d(x, k, padding, detection=detection)
        assert relative(out, conv2d(x, k, padding)) <= 1e-9
    assert len(sizes) == 4  # every parity of kernel rows and columns was drawn


def test_many_frames_and_torch_tensors():
    """Tiles spill over several small SLM frames; torch in, torch out."""
    rng = np.random.default_rng(1)
    x, k = rng.normal(size=(2, 37, 6, 7)), rng.normal(size=(3, 2))
    out = fourf_conv2d(torch.from_numpy(x), torch.from_numpy(k), slm=(16, 30))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 37, 4, 6)
    assert Layout.plan(2 * 74, (6, 7), Device(slm=(16, 30))).frames > 1
    ref = conv2d(x.reshape(-1, 6, 7), k, "valid").reshape(out.shape)
    assert relative(out.numpy(), ref) <= 1e-9


def test_lens_matches_lightpipes_fresnel_propagation():
    """Independent check of the lens scaling: LightPipes propagates f, applies a thin lens,
    propagates f. At critical sampling (N * pitch^2 = wavelength * f) its grid is our focal
    plane's, and the fields agree up to the propagation phase exp(2ikf)."""
    lp = pytest.importorskip("LightPipes")
    n, pitch, wavelength = 128, 8e-6, 532e-9
    device = Device(wavelength=wavelength, pitch=pitch, focal=n * pitch**2 / wavelength)
    rng = np.random.default_rng(3)
    field = np.zeros((n, n))
    field[40:80, 50:70] = rng.random((40, 20))
    beam = lp.Begin(n * pitch, wavelength, n)
    beam.field[:] = field
    beam = lp.Forvard(lp.Lens(lp.Forvard(beam, device.focal), device.focal), device.focal)
    ours, focal = lens(field, (pitch, pitch), device)
    assert focal == pytest.approx((pitch, pitch))
    phase = np.vdot(ours, beam.field)
    phase /= abs(phase)
    assert relative(beam.field, phase * ours) < 1e-5
    # 2f of propagation, about 7.5e5 radians here: float rounding leaves ~1e-4.
    assert phase == pytest.approx(np.exp(2j * (2 * np.pi / wavelength) * device.focal), abs=1e-3)

    # The whole 4f system, with our mask in LightPipes' focal plane, gives our camera image.
    kernel = rng.random((5, 4))
    mask, _ = fourier_mask(kernel, (n, n))
    beam.field *= mask
    beam = lp.Forvard(lp.Lens(lp.Forvard(beam, device.focal), device.focal), device.focal)
    camera_lp = np.abs(beam.field[::-1, ::-1]) ** 2
    camera_lp = np.roll(camera_lp, (1, 1), axis=(0, 1))  # invert about the centre pixel
    camera_ours = np.abs(correlator(field, mask, device)) ** 2
    assert relative(camera_lp, camera_ours) < 1e-5


def test_focal_plane_scale_and_energy():
    """A grating of period L lands at wavelength * f / L, and a lens keeps the power."""
    device = Device()
    n, period = 256, 8
    x = np.arange(n) * device.pitch
    grating = np.tile(1 + np.cos(2 * np.pi * np.arange(n) / period), (n, 1))
    spectrum, (_, pitch_x) = lens(grating, (device.pitch, device.pitch), device)
    row = np.abs(spectrum[n // 2])
    row[n // 2] = 0  # the zero order
    position = abs(int(np.argmax(row)) - n // 2) * pitch_x
    assert position == pytest.approx(device.wavelength * device.focal / (period * x[1]))
    power_in = (np.abs(grating) ** 2).sum() * device.pitch**2
    assert (np.abs(spectrum) ** 2).sum() * pitch_x**2 == pytest.approx(power_in)


def test_mask_is_passive_and_centred_fft_is_unitary_up_to_n():
    rng = np.random.default_rng(2)
    mask, gain = fourier_mask(rng.random((3, 3)), (20, 24))
    assert np.abs(mask).max() == pytest.approx(1.0)
    field = rng.normal(size=(20, 24))
    assert (np.abs(centred_fft(field)) ** 2).sum() == pytest.approx(
        20 * 24 * (field**2).sum())
    assert gain > 0


def test_non_ideal_errors_shrink_with_bits_and_photons():
    rng = np.random.default_rng(4)
    x, k = rng.normal(size=(64, 8, 8)), rng.normal(size=(5, 5))
    ref = conv2d(x, k, "valid")

    def error(**device):
        return relative(fourf_conv2d(x, k, ideal=False, **device), ref)

    coarse = error(slm_bits=4, camera_bits=6)
    fine = error(slm_bits=8, camera_bits=8)
    noiseless = error(slm_bits=None, camera_bits=None, read_noise=0, full_well=1e14)
    assert noiseless < 1e-5 < fine < coarse < 0.5
    assert error(full_well=1e3, camera_bits=None) > error(full_well=1e5, camera_bits=None)
    # The camera noise is seeded: the same seed gives the same image.
    assert error(seed=5) == error(seed=5) != error(seed=6)


def test_homodyne_reads_the_field_linearly():
    """At 8 bits with no noise, homodyne's error is rounding alone; direct detection's square
    root of 8-bit intensities leaves about 4 bits of field near zero, several times worse."""
    rng = np.random.default_rng(3)
    x, k = rng.normal(size=(64, 8, 8)), rng.normal(size=(5, 5))
    ref = conv2d(x, k, "same")
    noiseless = {"read_noise": 0, "full_well": 1e14}
    homodyne, direct = (relative(fourf_conv2d(x, k, "same", ideal=False, detection=d,
                                              **noiseless), ref) for d in DETECTIONS)
    assert homodyne < 0.02 and direct > 4 * homodyne
    # With 10,000 electrons, shot noise dominates and homodyne still wins.
    homodyne, direct = (relative(fourf_conv2d(x, k, "same", ideal=False, detection=d), ref)
                        for d in DETECTIONS)
    assert direct > 2 * homodyne


def test_sign_passes():
    """Direct detection: non-negative inputs and kernels need one mask and one input part,
    so one exposure of one frame; signed ones two masks. Homodyne always takes two."""
    rng = np.random.default_rng(0)
    tiles = rng.random((4, 6, 6))
    cases = [(tiles, rng.random((2, 2)), 1), (tiles - 0.5, rng.random((2, 2)) - 0.5, 2)]
    for x, k, direct in cases:
        assert passes(x, k, Device(detection="direct"), True, rng)[1] == direct
        assert passes(x, k, Device(), True, rng)[1] == 2


@pytest.mark.parametrize("call, message", [
    (lambda: fourf_conv2d(np.ones((4, 4)), np.ones((2, 2)), "full"), "use 'valid' or 'same'"),
    (lambda: fourf_conv2d(np.ones((4, 4)), np.ones((5, 2))), "larger than"),
    (lambda: fourf_conv2d(np.ones(4), np.ones((2, 2))), "must be"),
    (lambda: fourf_conv2d(np.ones((4, 4)), np.ones((2, 2)), pixel=1), "unknown device"),
    (lambda: fourf_conv2d(np.ones((40, 40)), np.ones((2, 2)), slm=(32, 32)), "does not fit"),
    (lambda: fourf_conv2d(np.ones((4, 4)), np.ones((2, 2)), slm_bits=0), "1..24 bits"),
    (lambda: fourf_conv2d(np.ones((4, 4)), np.ones((2, 2)), detection="x"), "use one of"),
    (lambda: fourf_conv2d(np.ones((4, 4)), np.ones((2, 2)), reference=0), "positive"),
    (lambda: fourf_conv2d(np.full((4, 4), np.nan), np.ones((2, 2))), "NaN"),
])
def test_clear_errors(call, message):
    with pytest.raises(OpticsError, match=message):
        call()
