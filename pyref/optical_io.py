"""Integer model of the optical I/O unit (`hw/optical_io.py`): the electronics around the 4f
system.

Towards the SLM, ``pack`` turns ACT activations into 8-bit SLM amplitude codes, a positive
and a negative part per value, each with the SLM pixel it goes to. A convolution's values
share one power-of-two scale, ``2^shift`` ACT codes per SLM code (block floating point: no
divider). From the camera, ``readout`` turns each pass's 8-bit intensity codes into fields
through a table (linear for homodyne detection, the square root for direct), multiplies them
by the pass's signed scale and adds the up to four passes (two camera passes, see
`pyref.optics.camera_passes`, times two input signs), then rounds to ACT.

``conv`` runs one shared-kernel convolution through both sides and the physical model,
everything the hardware would see in integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyref import optics
from pyref.formats import (
    ACT,
    AMPLITUDE,
    CAMERA_PIXEL,
    DATAPATH,
    OPTICAL_ACC,
    OPTICAL_SCALE,
    SLM_PIXEL,
)

#: Full-scale codes: SLM amplitude 1 and camera intensity at full well.
SLM_FULL = SLM_PIXEL.max_code
CAMERA_FULL = CAMERA_PIXEL.max_code
#: The field of every camera code, per unit of the pass's scale (`optics.CameraPass.field`):
#: the intensity over full scale (homodyne), or its square root (direct).
_INTENSITY = np.arange(CAMERA_FULL + 1) / CAMERA_FULL
FIELD_TABLES = {"homodyne": AMPLITUDE.quantise(_INTENSITY, check=True),
                "direct": AMPLITUDE.quantise(np.sqrt(_INTENSITY), check=True)}
#: Passes a convolution can take: camera passes times input parts.
MAX_PASSES = 4
#: Register widths of the unit: SLM pixel coordinates (4096 pixels a side), tile and slot
#: counts, frame numbers and the SLM shift (ACT codes need at most 8).
COORD_BITS, COUNT_BITS, FRAME_BITS, SHIFT_BITS = 12, 16, 16, 4
#: Camera pixels a beat, most beats in a pass and the detection of the unit `make sim` builds.
LANES, READOUT_DEPTH, DETECTION = 4, 1024, optics.Device().detection


@dataclass(frozen=True)
class FrameLayout:
    """Where a convolution's tiles go on the SLM: the unit's layout registers.

    Tile ``t``'s positive part is in slot ``t``, its negative part in slot ``tiles + t``;
    slot ``s`` is on frame ``s // per_frame`` at grid position ``divmod(s % per_frame,
    grid_cols)``. A value at ``(y, x)`` of its ``rows x cols`` input sits at ``(y + top,
    x + left)`` of its ``tile_rows x tile_cols`` tile ("same" padding is the offset).
    """

    tiles: int
    rows: int
    cols: int
    tile_rows: int
    tile_cols: int
    top: int
    left: int
    grid_cols: int
    per_frame: int

    @classmethod
    def make(cls, tiles: int, image: tuple, kernel: tuple, padding: str,
             device: optics.Device) -> FrameLayout:
        top_left = optics.same_padding(kernel)[0] if padding == "same" else (0, 0)
        tile = optics.padded_tile(image, kernel, padding)
        layout = optics.Layout.plan(2 * tiles, tile, device)
        return cls(tiles, *image, *tile, *top_left, layout.grid[1], layout.per_frame)

    def registers(self, shift: int) -> dict:
        """The SLM packer's layout descriptor (`hw.slm_packer.LAYOUT`)."""
        frame, slot = divmod(self.tiles, self.per_frame)
        grid_row, grid_col = divmod(slot, self.grid_cols)
        neg = {"frame": frame, "slots_left": self.per_frame - 1 - slot,
               "cols_left": self.grid_cols - 1 - grid_col,
               "row": grid_row * self.tile_rows, "col": grid_col * self.tile_cols}
        regs = {"tiles": self.tiles, "rows": self.rows, "cols": self.cols,
                "tile_rows": self.tile_rows, "tile_cols": self.tile_cols, "top": self.top,
                "left": self.left, "grid_cols": self.grid_cols, "per_frame": self.per_frame,
                "shift": shift, "neg": neg}
        widths = {"tiles": COUNT_BITS, "per_frame": COUNT_BITS, "shift": SHIFT_BITS}
        for name, value in [*regs.items(), ("frames", frame + 1)]:
            bits = FRAME_BITS if name == "frames" else widths.get(name, COORD_BITS)
            if not isinstance(value, dict) and not 0 <= value < 2**bits:
                raise optics.OpticsError(f"layout register {name}={value} does not fit the "
                                         f"unit's {bits} bits: use fewer tiles per call")
        return regs


def slm_shift(codes: np.ndarray) -> int:
    """The smallest shift that brings every ``|code|`` within the SLM's 8 bits."""
    shift, largest = 0, int(np.abs(codes).max(initial=0))
    while DATAPATH.round_shift(largest, shift) > SLM_FULL:
        shift += 1
    return shift


def pack(codes: np.ndarray, shift: int, layout: FrameLayout) -> dict:
    """SLM codes and pixels of ACT ``codes`` ``(tiles, rows, cols)``, in tile raster order.

    Returns flat arrays ``pos``, ``neg`` (SLM codes) and ``pos_frame``, ``pos_row``,
    ``pos_col``, ``neg_frame``, ``neg_row``, ``neg_col``.
    """
    codes = np.asarray(codes, dtype=np.int64).reshape(layout.tiles, layout.rows, layout.cols)
    out = {}
    y, x = np.meshgrid(np.arange(layout.rows), np.arange(layout.cols), indexing="ij")
    for part, values, first_slot in (("pos", codes, 0), ("neg", -codes, layout.tiles)):
        out[part] = np.minimum(DATAPATH.round_shift(np.maximum(values, 0), shift),
                               SLM_FULL).reshape(-1)
        slot = first_slot + np.arange(layout.tiles)[:, None, None]
        grid_row, grid_col = np.divmod(slot % layout.per_frame, layout.grid_cols)
        out[f"{part}_frame"] = np.broadcast_to(slot // layout.per_frame, codes.shape).reshape(-1)
        out[f"{part}_row"] = (grid_row * layout.tile_rows + layout.top + y).reshape(-1)
        out[f"{part}_col"] = (grid_col * layout.tile_cols + layout.left + x).reshape(-1)
    return out


def readout(camera: np.ndarray, scales: np.ndarray, detection: str) -> np.ndarray:
    """ACT codes from ``camera`` codes ``(passes, n)`` and each pass's OPTICAL_SCALE code,
    through ``detection``'s field table."""
    camera = np.asarray(camera, dtype=np.int64)
    if not 1 <= len(camera) <= MAX_PASSES:
        raise optics.OpticsError(f"{len(camera)} passes: the readout sums 1 to {MAX_PASSES} "
                                 "(camera pass x input sign), as OPTICAL_ACC is sized for")
    scales = OPTICAL_SCALE.fit(np.asarray(scales, dtype=np.int64), check=True)
    CAMERA_PIXEL.fit(camera, check=True)
    products = FIELD_TABLES[detection][camera] * scales[:, None]
    acc = OPTICAL_ACC.fit(products.sum(axis=0))
    return ACT.fit(DATAPATH.round_shift(acc, OPTICAL_ACC.frac))


def pass_scale(sign: int, gain: float, shift: int, field: float) -> int:
    """OPTICAL_SCALE code of a pass: ACT codes per unit of the field table.

    An SLM code ``c`` shows amplitude ``c / SLM_FULL`` for ``c * 2^shift`` ACT codes; the
    mask divides by ``gain``; ``field`` is the correlation of one table unit (the pass's
    `optics.CameraPass.field` at the camera's full scale).
    """
    return int(OPTICAL_SCALE.quantise(sign * gain * SLM_FULL * 2.0**shift * field, check=True))


def conv(codes: np.ndarray, kernel: np.ndarray, padding: str = "valid",
         **device) -> np.ndarray:
    """ACT codes of ``codes`` ``(tiles, H, W)`` correlated with the float ``kernel``, through
    `pack`, the 4f model (8-bit SLM and camera, its noise) and `readout`.
    """
    dev = optics.Device.make(**{"slm_bits": 8, "camera_bits": 8, **device})
    if (dev.slm_bits, dev.camera_bits) != (8, 8):
        raise optics.OpticsError("the optical I/O unit drives an 8-bit SLM and 8-bit camera")
    codes = np.asarray(codes, dtype=np.int64)
    kernel = np.asarray(kernel, dtype=float)
    layout = FrameLayout.make(len(codes), codes.shape[1:], kernel.shape, padding, dev)
    shift = slm_shift(codes)
    packed = pack(codes, shift, layout)
    grid = optics.Layout.plan(2 * layout.tiles, (layout.tile_rows, layout.tile_cols), dev)
    frames = np.zeros((grid.frames, *grid.used), dtype=np.int64)
    for part in ("pos", "neg"):
        frames[packed[f"{part}_frame"], packed[f"{part}_row"], packed[f"{part}_col"]] = \
            packed[part]
    rng = np.random.default_rng(dev.seed)
    out_rows = layout.tile_rows - kernel.shape[0] + 1
    out_cols = layout.tile_cols - kernel.shape[1] + 1
    camera, scales = [], []
    for shot in optics.camera_passes(frames / SLM_FULL, kernel, dev):
        codes_out, full_scale = optics.exposure(shot.intensity, dev, rng)
        tiles = grid.unpack(codes_out)[:, :out_rows, :out_cols].astype(np.int64)
        for input_sign, half in ((1, slice(0, layout.tiles)), (-1, slice(layout.tiles, None))):
            camera.append(tiles[half].reshape(-1))
            scales.append(pass_scale(input_sign, shot.gain, shift, shot.field(full_scale)))
    out = readout(np.array(camera), np.array(scales), dev.detection)
    return out.reshape(layout.tiles, out_rows, out_cols)
