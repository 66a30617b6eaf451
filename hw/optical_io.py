"""The optical I/O unit: the electronics between the accelerator and a 4f system."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.camera_readout import CameraReadout
from hw.slm_packer import SlmPacker


class OpticalIO(wiring.Component):
    """`SlmPacker` towards the SLM and `CameraReadout` from the camera, side by side.

    The two halves share no state: a convolution's values go out through ``layout``/``x``
    to ``slm`` (codes and pixels for a frame buffer), and its camera frames come back
    through ``passes``/``camera`` to ``o``. `pyref.optical_io` is the integer model.

    Parameters
    ----------
    lanes : int
        Camera pixels a beat.
    depth : int
        Most camera beats in a pass.
    detection : {"homodyne", "direct"}
        The 4f system's detection (`CameraReadout`).
    """

    def __init__(self, lanes: int, depth: int, detection: str):
        self.packer = SlmPacker()
        self.readout = CameraReadout(lanes, depth, detection)
        members = {"layout": In(self.packer.layout.signature.flip()),
                   "x": In(self.packer.x.signature.flip()),
                   "slm": Out(self.packer.o.signature),
                   "passes": In(self.readout.passes.signature.flip()),
                   "camera": In(self.readout.camera.signature.flip()),
                   "o": Out(self.readout.o.signature)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.packer, m.submodules.readout = self.packer, self.readout
        for outer, inner in (("layout", self.packer.layout), ("x", self.packer.x),
                             ("passes", self.readout.passes),
                             ("camera", self.readout.camera)):
            wiring.connect(m, wiring.flipped(getattr(self, outer)), inner)
        wiring.connect(m, self.packer.o, wiring.flipped(self.slm))
        wiring.connect(m, self.readout.o, wiring.flipped(self.o))
        return m
