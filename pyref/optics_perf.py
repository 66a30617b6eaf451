"""Throughput and energy of ConvShareViT's shared convolutions: 4f optics, a GPU, our FPGA.

Only the layers the optics would run are timed (qkv, proj, fc1, fc2 of every block); the
rest of the model is the same digital work on every platform. Every device number carries
its source in `SOURCES`; docs/convsharevit.md explains the model and its assumptions.

* **Optics.** A batch of images puts all its token tiles, both input signs, edge to edge on
  SLM frames (`pyref.optics.Layout`). Every kernel takes two masks (its positive and
  negative parts), each over ``ceil(2 * tiles / tiles_per_frame)`` frames. A frame takes the
  longest of the SLM's, the mask SLM's and the camera's frame time and the time the digital
  side needs to read its pixels (``io_pixels_per_s``).
* **GPU.** Per layer the roofline time (FP32 multiplies at peak, or activations through
  memory at peak bandwidth) plus a kernel launch.
* **FPGA.** The layer's multiplies over our MAC array at the measured MAC utilisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from pyref.convsharevit import ConvShareConfig
from pyref.optics import Device, Layout, padded_tile


@dataclass(frozen=True)
class OpticalSystem:
    """A 4f system's rates and power."""

    name: str
    slm_hz: float
    resolution: tuple
    camera_hz: float
    watts: float
    io_pixels_per_s: float = math.inf


@dataclass(frozen=True)
class Gpu:
    name: str
    flops: float
    bytes_per_s: float
    launch_s: float
    watts: float


@dataclass(frozen=True)
class Fpga:
    name: str
    macs_per_cycle: int
    hz: float
    utilisation: float
    watts: float


#: Where each device number comes from. "assumption" marks a value we chose, not measured.
SOURCES = {
    "lcos": "LCoS SLM, 1920x1080 at 60 Hz: ../shared/DESIGN.md (typical LCoS SLMs)",
    "dmd8": "DMD, 8-bit grey levels at about 1.9 kHz, 1920x1080: ../shared/DESIGN.md",
    "dmd1": "DMD, binary patterns at up to 32 kHz, 1920x1080: ../shared/DESIGN.md; 8-bit "
            "inputs then need 8 bit-plane frames, so 4 kHz per 8-bit frame",
    "camera": "assumption: the camera matches the SLM's frame rate over the used rows",
    "optics_power": "assumption: 1 W laser, 2 x 2 W SLM drivers, 3 W camera = 8 W",
    "gpu": "RTX 3090-class: 35.6 TFLOP/s FP32, 936 GB/s, 350 W board power (vendor "
           "figures quoted from memory, not checked offline); 5 us per kernel launch "
           "(assumption, typical CUDA launch latency)",
    "fpga": "lumoe's ecp5-85f set: peak MACs per cycle from pyref.config, the clock "
            "`make bench` uses, MAC utilisation 87.9 % (the cycle model's m3vit-tiny "
            "projection on the same compute, ecp5-85f-m3vit, docs/results.md); 2 W "
            "(assumption)",
    "io": "not limiting (infinite) in every system here; our optical I/O unit reads 4 "
          "camera pixels a cycle at 104.8 MHz, 0.42 Gpixel/s, which would cap a full "
          "1080x1920 frame at about 200 Hz (io_pixels_per_s)",
}

OPTICS = {
    "lcos": OpticalSystem("LCoS 60 Hz", 60.0, (1080, 1920), 60.0, 8.0),
    "dmd8": OpticalSystem("DMD 8-bit 1.9 kHz", 1900.0, (1080, 1920), 1900.0, 8.0),
    "dmd1": OpticalSystem("DMD bit-planes 4 kHz", 4000.0, (1080, 1920), 4000.0, 8.0),
}
GPU = Gpu("RTX 3090-class", 35.6e12, 936e9, 5e-6, 350.0)
#: Our FPGA's MAC utilisation (m3vit-tiny projected on ecp5-85f's compute) and board power.
FPGA_UTILISATION, FPGA_WATTS = 0.879, 2.0
#: Bytes of one FP32 activation on the GPU.
GPU_BYTES = 4


def optical_frames(config: ConvShareConfig, batch: int, resolution: tuple) -> dict:
    """SLM exposures per layer name for ``batch`` images (every block; two camera passes
    per kernel, each of frames holding both input signs)."""
    device = Device(slm=resolution)
    out = {}
    for name, shape in config.layers().items():
        tile = padded_tile(shape.in_map, shape.kernel, shape.padding)
        layout = Layout.plan(2 * batch * config.tokens, tile, device)
        out[name] = config.depth * shape.kernels * 2 * layout.frames
    return out


def optical_time(config: ConvShareConfig, batch: int, system: OpticalSystem) -> float:
    """Seconds per image for the shared convolutions on ``system``."""
    pixels = math.prod(system.resolution)
    frame_s = max(1 / system.slm_hz, 1 / system.camera_hz, pixels / system.io_pixels_per_s)
    return sum(optical_frames(config, batch, system.resolution).values()) * frame_s / batch


def layer_work(config: ConvShareConfig) -> dict:
    """Per image and layer name: multiplies and the activations read and written."""
    out = {}
    for name, shape in config.layers().items():
        inputs = math.prod(shape.in_map)
        outputs = shape.kernels * math.prod(shape.out_map)
        out[name] = {"macs": config.depth * config.tokens * shape.macs_per_token,
                     "values": config.depth * config.tokens * (inputs + outputs)}
    return out


def gpu_time(config: ConvShareConfig, batch: int, gpu: Gpu = GPU) -> float:
    """Seconds per image for the same layers on ``gpu``."""
    total = 0.0
    for work in layer_work(config).values():
        roofline = max(2 * work["macs"] / gpu.flops, work["values"] * GPU_BYTES / gpu.bytes_per_s)
        total += roofline + config.depth * gpu.launch_s / batch
    return total


def fpga_time(config: ConvShareConfig, fpga: Fpga) -> float:
    macs = sum(w["macs"] for w in layer_work(config).values())
    return macs / (fpga.macs_per_cycle * fpga.hz * fpga.utilisation)


def compare(config: ConvShareConfig, batch: int, fpga: Fpga, gpu: Gpu = GPU,
            optics: dict = OPTICS) -> list:
    """One row per platform: seconds and joules per image, images per second, and the
    optics' speed-up over the GPU and the FPGA."""
    rows = [{"platform": gpu.name, "seconds": gpu_time(config, batch, gpu), "watts": gpu.watts},
            {"platform": fpga.name, "seconds": fpga_time(config, fpga), "watts": fpga.watts}]
    rows += [{"platform": s.name, "seconds": optical_time(config, batch, s), "watts": s.watts}
             for s in optics.values()]
    for row in rows:
        row["images_per_s"] = 1 / row["seconds"]
        row["joules"] = row["seconds"] * row["watts"]
        row["speedup_vs_gpu"] = rows[0]["seconds"] / row["seconds"]
        row["speedup_vs_fpga"] = rows[1]["seconds"] / row["seconds"]
    return rows


def rate_for_speedup(config: ConvShareConfig, batch: int, resolution: tuple, target: float,
                     gpu: Gpu = GPU) -> float:
    """The SLM (and camera) frame rate at which the optics is ``target`` times the GPU."""
    frames = sum(optical_frames(config, batch, resolution).values())
    return target * frames / (batch * gpu_time(config, batch, gpu))


def sweep(config: ConvShareConfig, batch: int, rates, resolutions, gpu: Gpu = GPU) -> dict:
    """Speed-up over the GPU for each resolution (key ``"RxC"``) across SLM ``rates``."""
    base = OPTICS["dmd8"]
    out = {}
    for resolution in resolutions:
        key = f"{resolution[0]}x{resolution[1]}"
        out[key] = [gpu_time(config, batch, gpu) / optical_time(
            config, batch, replace(base, slm_hz=r, camera_hz=r, resolution=resolution))
            for r in rates]
    return out
