"""A physical model of a coherent 4f optical correlator running shared-kernel convolutions.

Light from a laser is shaped by a spatial light modulator (SLM) into the input amplitude.
Lens 1 (focal length f) puts the field's Fourier transform on its back focal plane, where a
mask multiplies it by the kernel's transfer function. Lens 2 transforms again, and a camera
in the output plane measures the intensity |field|^2. Every channel tile on the SLM frame
passes the same mask, so one frame convolves all of them with one kernel: this is why
ConvShareViT shares its kernels across channels.

Physics, as modelled here (docs/convsharevit.md, "The 4f model"):

* A lens is a centred 2D DFT scaled by ``pitch_y * pitch_x / (i * wavelength * f)``. Its
  focal plane is sampled at ``wavelength * f / (N * pitch)`` per axis. Two lenses give back
  the input at the SLM pitch, inverted; the camera's coordinates undo the inversion and the
  two scale factors multiply to -1.
* The mask is the centred DFT of the kernel's point-spread function, divided by its largest
  magnitude so that it is passive (transmission at most 1). The digital side multiplies
  that gain back.
* A camera sees intensity, so a field's sign needs care. SLM amplitudes are non-negative:
  inputs are split into positive and negative parts, which share a frame and are added with
  signs digitally. The output field's sign is found one of two ways (``detection``):

  - "homodyne" (default): a plane reference wave from the same laser, phase-locked to the
    output and of amplitude ``reference`` times the pass's largest field, joins the signal
    on the camera. Two exposures, with the reference at phase 0 and pi, give
    ``|E + R|^2 - |E - R|^2 = 4 R E``: the field itself, signed and linear in the camera's
    codes. One mask holds the whole signed kernel.
  - "direct": the camera alone. Kernels are split too, one mask per sign, and every pass's
    field is the square root of its intensity. Near zero the square root stretches the
    camera's codes, so 8 bits of intensity leave about 4 bits of field there.
* The DFT is circular; a tile's valid outputs read only that tile's pixels, so tiles sit
  edge to edge and no output wraps. "same" padding is explicit zeros around each tile.
* Non-ideal mode quantises SLM amplitudes to ``slm_bits``; the camera's exposure puts a
  pass's brightest pixel at ``full_well`` electrons, with Poisson shot noise, Gaussian read
  noise and a ``camera_bits`` ADC.

Each kernel shows its frames twice: two reference phases, or two masks (one, for direct
detection of a kernel of one sign).

The simulation transforms only the part of the frame that holds tiles: the zeros around it
change no camera pixel that is read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np


class OpticsError(ValueError):
    """A convolution or device the optical model cannot run."""


#: How the camera recovers a signed field (module docstring).
DETECTIONS = ("homodyne", "direct")
#: The 4f output field's phase: each lens scales by 1/i, so two give -1.
FOURF_PHASE = -1.0


@dataclass(frozen=True)
class Device:
    """The 4f system's physical parameters (sources in docs/convsharevit.md).

    Parameters
    ----------
    wavelength : float
        Laser wavelength in metres.
    pitch : float
        SLM and camera pixel pitch in metres (unit magnification).
    focal : float
        Focal length of both lenses in metres.
    slm : tuple of int
        SLM (and camera) resolution, rows by columns.
    slm_bits, camera_bits : int or None
        Amplitude levels of the SLM and the camera's ADC; None is unquantised.
    full_well : float
        Electrons at the camera's full scale; Poisson shot noise follows from it.
    read_noise : float
        Camera read noise, electrons rms.
    detection : {"homodyne", "direct"}
        How the camera finds the output field's sign (module docstring).
    reference : float
        Homodyne reference amplitude over the pass's largest output field.
    seed : int
        Seed of the camera noise.
    """

    wavelength: float = 532e-9
    pitch: float = 8e-6
    focal: float = 0.1
    slm: tuple = (1080, 1920)
    slm_bits: int | None = 8
    camera_bits: int | None = 8
    full_well: float = 10_000.0
    read_noise: float = 5.0
    detection: str = "homodyne"
    reference: float = 0.5
    seed: int = 0

    def __post_init__(self):
        for name in ("slm_bits", "camera_bits"):
            bits = getattr(self, name)
            if bits is not None and not 1 <= bits <= 24:
                raise OpticsError(f"{name}={bits}: use 1..24 bits, or None for unquantised")
        if min(self.wavelength, self.pitch, self.focal, self.full_well) <= 0:
            raise OpticsError("wavelength, pitch, focal and full_well must be positive")
        if self.read_noise < 0 or len(self.slm) != 2 or min(self.slm) < 1:
            raise OpticsError("read_noise must be >= 0 and slm a (rows, cols) resolution")
        if self.detection not in DETECTIONS:
            raise OpticsError(f"detection '{self.detection}': use one of {DETECTIONS}")
        if self.reference <= 0:
            raise OpticsError("reference must be positive (times the largest output field)")

    @classmethod
    def make(cls, **device) -> Device:
        """A device from keyword arguments, naming any that do not exist."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(device) - known)
        if unknown:
            raise OpticsError(f"unknown device parameter(s) {unknown}: use {sorted(known)}")
        return replace(cls(), **device)


def centred_fft(field: np.ndarray) -> np.ndarray:
    """2D DFT over the last two axes with index 0 at the array's centre (``N // 2``)."""
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(field, axes=axes)), axes=axes)


def lens(field: np.ndarray, pitch: tuple, device: Device) -> tuple:
    """Field on the back focal plane of a lens with ``field`` on its front focal plane.

    Returns the field and its sample pitch, ``wavelength * f / (N * pitch)`` per axis.
    """
    scale = pitch[0] * pitch[1] / (1j * device.wavelength * device.focal)
    shape = field.shape[-2:]
    out_pitch = tuple(device.wavelength * device.focal / (n * p)
                      for n, p in zip(shape, pitch, strict=True))
    return scale * centred_fft(field), out_pitch


def invert(field: np.ndarray) -> np.ndarray:
    """The field at ``-x`` about the frame centre: how the camera sees a 4f output."""
    rows, cols = field.shape[-2:]
    r = (2 * (rows // 2) - np.arange(rows)) % rows
    c = (2 * (cols // 2) - np.arange(cols)) % cols
    return field[..., r[:, None], c[None, :]]


def fourier_mask(kernel: np.ndarray, shape: tuple) -> tuple:
    """The passive Fourier-plane mask that cross-correlates a frame of ``shape`` with
    ``kernel``, and its gain.

    The point-spread function is the kernel flipped, ending at the frame centre, so the
    output at a pixel is ``sum kernel[a, b] * input[pixel + (a, b)]``. The mask is its
    centred DFT over the largest magnitude (the gain), so it transmits at most 1.
    """
    rows, cols = shape
    kh, kw = kernel.shape
    psf = np.zeros(shape)
    # Offsets -a from the centre, wrapped: the DFT is circular and the kernel may be as
    # large as the frame.
    r = (rows // 2 - np.arange(kh)) % rows
    c = (cols // 2 - np.arange(kw)) % cols
    psf[r[:, None], c[None, :]] = kernel
    transfer = centred_fft(psf)
    gain = float(np.abs(transfer).max())
    return transfer / gain, gain


def correlator(frames: np.ndarray, mask: np.ndarray, device: Device) -> np.ndarray:
    """Output-plane field of the 4f system for SLM amplitude ``frames``, as the camera sees
    it (not inverted)."""
    pitch = (device.pitch, device.pitch)
    spectrum, focal = lens(frames, pitch, device)
    out, _ = lens(spectrum * mask, focal, device)
    return invert(out)


def slm_amplitude(values: np.ndarray, device: Device, ideal: bool) -> np.ndarray:
    """Amplitudes in 0..1 as the SLM shows them: ``slm_bits`` levels unless ideal."""
    if ideal or device.slm_bits is None:
        return values
    levels = 2 ** device.slm_bits - 1
    return np.round(values * levels) / levels


def exposure(intensity: np.ndarray, device: Device, rng: np.random.Generator) -> tuple:
    """The camera's ADC codes for ``intensity`` and the intensity of full scale.

    One exposure covers every frame given (one mask's pass): it puts the brightest pixel at
    ``full_well`` electrons. Codes run 0 to ``2^camera_bits - 1``; unquantised, they are
    electrons over full well (0 to about 1).
    """
    full_scale = float(intensity.max())
    full_scale = full_scale if full_scale > 0 else 1.0
    electrons = rng.poisson(intensity / full_scale * device.full_well).astype(float)
    electrons += rng.normal(0.0, device.read_noise, electrons.shape)
    electrons = np.clip(electrons, 0, None)
    if device.camera_bits is None:
        return electrons / device.full_well, full_scale
    levels = 2 ** device.camera_bits - 1
    return np.clip(np.round(electrons / device.full_well * levels), 0, levels), full_scale


def camera(intensity: np.ndarray, device: Device, ideal: bool,
           rng: np.random.Generator) -> np.ndarray:
    """Measured intensity, in the same units as ``intensity`` (`exposure`, dequantised)."""
    if ideal:
        return intensity
    codes, full_scale = exposure(intensity, device, rng)
    levels = 1 if device.camera_bits is None else 2 ** device.camera_bits - 1
    return codes / levels * full_scale


@dataclass(frozen=True)
class Layout:
    """How ``tiles`` padded tiles of ``tile`` pixels fill SLM frames.

    Tiles sit edge to edge, row-major, ``grid`` (rows, cols) per frame.
    """

    tiles: int
    tile: tuple
    grid: tuple

    @classmethod
    def plan(cls, tiles: int, tile: tuple, device: Device) -> Layout:
        grid = (device.slm[0] // tile[0], device.slm[1] // tile[1])
        if min(grid) < 1:
            raise OpticsError(f"a {tile[0]}x{tile[1]} padded tile does not fit the "
                              f"{device.slm[0]}x{device.slm[1]} SLM: use a bigger slm=")
        return cls(tiles, tile, grid)

    @property
    def per_frame(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def frames(self) -> int:
        return -(-self.tiles // self.per_frame)

    @property
    def used(self) -> tuple:
        """Rows and columns of a frame that hold tiles (the simulated extent)."""
        rows = min(self.grid[0], -(-self.tiles // self.grid[1]))
        cols = min(self.grid[1], self.tiles)
        return rows * self.tile[0], cols * self.tile[1]

    def pack(self, tiles: np.ndarray) -> np.ndarray:
        """``(tiles, th, tw)`` to frames ``(frames, used rows, used cols)``."""
        th, tw = self.tile
        rows, cols = self.used[0] // th, self.used[1] // tw
        slots = self.frames * rows * cols
        padded = np.zeros((slots, th, tw))
        padded[:len(tiles)] = tiles
        grid = padded.reshape(self.frames, rows, cols, th, tw)
        return grid.transpose(0, 1, 3, 2, 4).reshape(self.frames, rows * th, cols * tw)

    def unpack(self, frames: np.ndarray) -> np.ndarray:
        """The inverse of `pack`: ``(tiles, th, tw)``."""
        th, tw = self.tile
        n, height, width = frames.shape
        grid = frames.reshape(n, height // th, th, width // tw, tw).transpose(0, 1, 3, 2, 4)
        return grid.reshape(-1, th, tw)[:self.tiles]


def same_padding(kernel: tuple) -> tuple:
    """Zeros before and after each axis for "same" output, as torch's conv2d pads."""
    return tuple((k - 1) // 2 for k in kernel), tuple(k - 1 - (k - 1) // 2 for k in kernel)


def padded_tile(image: tuple, kernel: tuple, padding: str) -> tuple:
    """The SLM tile of an ``image`` channel: with "same" padding, ``kernel - 1`` more."""
    if padding == "valid":
        return tuple(image)
    return tuple(i + k - 1 for i, k in zip(image, kernel, strict=True))


@dataclass(frozen=True)
class CameraPass:
    """One exposure of a kernel's frames: what the camera sees and how to read it.

    ``sign`` is the kernel part's sign (direct) or the reference's (homodyne); ``gain`` is
    the mask's; ``reference`` is the homodyne reference amplitude, None for direct.
    """

    sign: int
    intensity: np.ndarray
    gain: float
    reference: float | None

    def field(self, intensity):
        """The signed correlation, before the mask's gain, that a measured ``intensity``
        stands for: its square root (direct), or it over four references (homodyne; the
        other reference phase's pass subtracts). At the camera's full scale, this is the
        field of one unit of the readout's table (`pyref.optical_io.FIELD_TABLES`)."""
        if self.reference is None:
            return self.sign * np.sqrt(intensity)
        return self.sign * intensity / (4 * self.reference)


def camera_passes(amplitude: np.ndarray, kernel: np.ndarray, device: Device) -> list:
    """The `CameraPass` list correlating SLM ``amplitude`` frames with ``kernel``."""
    if device.detection == "homodyne":
        mask, gain = fourier_mask(kernel, amplitude.shape[-2:])
        signal = correlator(amplitude, mask, device)
        reference = device.reference * (float(np.abs(signal).max()) or 1.0)
        return [CameraPass(sign, np.abs(signal + sign * FOURF_PHASE * reference) ** 2, gain,
                           reference) for sign in (1, -1)]
    out = []
    for sign, part in ((1, np.maximum(kernel, 0)), (-1, np.maximum(-kernel, 0))):
        if part.any():
            mask, gain = fourier_mask(part, amplitude.shape[-2:])
            field = correlator(amplitude, mask, device)
            out.append(CameraPass(sign, np.abs(field) ** 2, gain, None))
    return out


def passes(tiles: np.ndarray, kernel: np.ndarray, device: Device, ideal: bool,
           rng: np.random.Generator) -> tuple:
    """Correlate signed ``tiles`` with ``kernel``; returns full-tile outputs
    ``(tiles, th, tw)`` and the camera exposures taken (frames times passes)."""
    total = np.zeros(tiles.shape)
    signed = [(1, np.maximum(tiles, 0)), (-1, np.maximum(-tiles, 0))]
    signed = [(sign, part) for sign, part in signed if part.any()]
    if not signed or not kernel.any():
        return total, 0
    layout = Layout.plan(len(signed) * len(tiles), tiles.shape[1:], device)
    frames = layout.pack(np.concatenate([part for _, part in signed]))
    scale = frames.max(axis=(-2, -1), keepdims=True)
    scale = np.where(scale > 0, scale, 1.0)
    amplitude = slm_amplitude(frames / scale, device, ideal)
    shots = camera_passes(amplitude, kernel, device)
    n = len(tiles)
    for shot in shots:
        measured = camera(shot.intensity, device, ideal, rng)
        values = layout.unpack(shot.gain * shot.field(measured) * scale)
        for k, (input_sign, _) in enumerate(signed):
            total += input_sign * values[k * n:(k + 1) * n]
    return total, len(shots) * layout.frames


def fourf_conv2d(image, kernel, padding: str = "valid", ideal: bool = True, **device):
    """Cross-correlate every channel of ``image`` with one shared ``kernel`` on the 4f model.

    Equals ``torch.nn.functional.conv2d`` of each ``(H, W)`` channel with ``kernel`` (to float
    rounding when ``ideal``).

    Parameters
    ----------
    image : array or torch.Tensor, shape ``(..., H, W)``
        Channels (any leading axes); each becomes one SLM tile.
    kernel : array or torch.Tensor, shape ``(kh, kw)``
        The shared kernel, signed.
    padding : {"valid", "same"}
        "same" pads each tile with zeros as torch does (more after than before for even
        kernels).
    ideal : bool
        Infinite SLM and camera bits, no noise.
    **device
        `Device` fields, e.g. ``slm_bits=8, camera_bits=8, read_noise=5, seed=1``.

    Returns
    -------
    Same type as ``image``: ``(..., H', W')``, float64 for numpy.
    """
    dev = Device.make(**device)
    torch_input = type(image).__module__.startswith("torch")
    x = _array(image, "image")
    k = _array(kernel, "kernel")
    if x.ndim < 2 or k.ndim != 2:
        raise OpticsError(f"image must be (..., H, W) and kernel (kh, kw); got {x.shape} "
                          f"and {k.shape}")
    if padding not in ("valid", "same"):
        raise OpticsError(f"padding '{padding}': use 'valid' or 'same'")
    lead, (height, width) = x.shape[:-2], x.shape[-2:]
    tiles = x.reshape(-1, height, width)
    if padding == "same":
        before, after = same_padding(k.shape)
        tiles = np.pad(tiles, ((0, 0), (before[0], after[0]), (before[1], after[1])))
    out_h, out_w = tiles.shape[1] - k.shape[0] + 1, tiles.shape[2] - k.shape[1] + 1
    if out_h < 1 or out_w < 1:
        raise OpticsError(f"a {k.shape} kernel is larger than the {height}x{width} image "
                          "with 'valid' padding")
    full, _ = passes(tiles, k, dev, ideal, np.random.default_rng(dev.seed))
    out = full[:, :out_h, :out_w].reshape(*lead, out_h, out_w)
    if torch_input:
        import torch

        return torch.from_numpy(out).to(image.dtype)
    return out


def _array(value, name: str) -> np.ndarray:
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().double().numpy()
    array = np.asarray(value, dtype=float)
    if not np.isfinite(array).all():
        raise OpticsError(f"{name} holds NaN or infinite values")
    return array
