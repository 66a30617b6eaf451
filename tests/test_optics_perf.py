"""The optics-GPU-FPGA throughput model: frame counts and the rate that gives a speed-up."""

from dataclasses import replace

import pytest

from pyref import optics_perf
from pyref.convsharevit import CONFIGS


def test_frames_follow_the_layout():
    """valid qkv: 12 kernels x 2 masks; one image's 17 tokens x 2 signs fit one frame, and
    a 512x512 SLM (4,096 tiles of 8x8) needs ceil(2 * 17 * 1024 / 4096) = 9 frames."""
    config = CONFIGS["convshare-valid"]
    frames = optics_perf.optical_frames(config, 1, (1080, 1920))
    assert frames["qkv"] == config.depth * 12 * 2
    assert optics_perf.optical_frames(config, 1024, (512, 512))["qkv"] == config.depth * 24 * 9


def test_rate_for_speedup_inverts_the_model():
    config = CONFIGS["convshare-same"]
    for batch in (1, 64):
        rate = optics_perf.rate_for_speedup(config, batch, (1080, 1920), 3.04)
        system = replace(optics_perf.OPTICS["dmd8"], slm_hz=rate, camera_hz=rate)
        speedup = (optics_perf.gpu_time(config, batch)
                   / optics_perf.optical_time(config, batch, system))
        assert speedup == pytest.approx(3.04)


def test_slowest_part_sets_the_frame_time():
    config = CONFIGS["convshare-valid"]
    fast = replace(optics_perf.OPTICS["dmd8"], slm_hz=1e6, camera_hz=1e6)
    slow_camera = replace(fast, camera_hz=1e3)
    slow_io = replace(fast, io_pixels_per_s=1080 * 1920 * 1e3)
    base = optics_perf.optical_time(config, 64, replace(fast, slm_hz=1e3, camera_hz=1e3))
    assert optics_perf.optical_time(config, 64, slow_camera) == pytest.approx(base)
    assert optics_perf.optical_time(config, 64, slow_io) == pytest.approx(base)


def test_gpu_launches_amortise_with_batch():
    config = CONFIGS["convshare-valid"]
    assert optics_perf.gpu_time(config, 1) > optics_perf.gpu_time(config, 1024)
    work = optics_perf.layer_work(config)
    # 4 blocks x 17 tokens x 16 outputs per kernel x (kernels x kernel pixels) per layer.
    by_hand = 4 * 17 * 16 * (12 * 5 * 5 + 4 * 5 * 5 + 8 * 5 * 5 + 4 * 5 * 13)
    assert sum(w["macs"] for w in work.values()) == by_hand
