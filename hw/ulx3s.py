"""The ULX3S 85F board's top level: clock, reset, pins and the `Board` behind them."""

from amaranth.hdl import (
    Cat,
    ClockDomain,
    ClockSignal,
    Const,
    Instance,
    IOPort,
    Module,
    ResetSignal,
    Signal,
)
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer

from hw.board import Board
from pyref import host_link, isa
from pyref.config import HardwareConfig, get_hw_config
from pyref.sdram import ULX3S as CHIP

#: The board's oscillator and the accelerator's clock, from the ECP5 PLL (EHXPLLL):
#: 25 MHz x CLKFB_DIV / CLKI_DIV; the VCO runs at that times CLKOP_DIV (400 to 800 MHz).
OSCILLATOR_MHZ, CLOCK_MHZ = 25, 100
PLL = {"CLKI_DIV": 1, "CLKFB_DIV": 4, "CLKOP_DIV": 6}
assert OSCILLATOR_MHZ * PLL["CLKFB_DIV"] // PLL["CLKI_DIV"] == CLOCK_MHZ
assert 400 <= CLOCK_MHZ * PLL["CLKOP_DIV"] <= 800

#: Package sites of every pin (ULX3S v2.x/v3.0.x schematic and constraint file): name,
#: sites lowest bit first.
PINS = [
    ("clk_25mhz", ["G2"]),
    ("btn_pwr_n", ["D6"]),  # pressed is low: the reset
    ("ftdi_txd", ["M1"]),   # the host's transmit, our receive
    ("ftdi_rxd", ["L4"]),
    ("led", ["B2", "C2", "C1", "D2", "D1", "E2", "E1", "H3"]),
    ("sdram_clk", ["F19"]), ("sdram_cke", ["F20"]), ("sdram_csn", ["P20"]),
    ("sdram_wen", ["T20"]), ("sdram_rasn", ["R20"]), ("sdram_casn", ["T19"]),
    ("sdram_a", ["M20", "M19", "L20", "L19", "K20", "K19", "K18", "J20", "J19", "H20", "N19",
                 "G20", "G19"]),
    ("sdram_ba", ["P19", "N20"]),
    ("sdram_dqm", ["U19", "E20"]),
    ("sdram_d", ["J16", "L18", "M18", "N18", "P18", "T18", "T17", "U20", "E19", "D20", "D19",
                 "C20", "E18", "F18", "J18", "J17"]),
]


def memory_words(hw: str) -> int:
    """Words of the board's memory for parameter set ``hw``."""
    return CHIP.words(isa.word_bits(get_hw_config(hw)))


def lpf() -> str:
    """The nextpnr constraint file: sites, 3.3 V I/O and the oscillator's frequency."""
    lines = []
    for name, sites in PINS:
        for k, site in enumerate(sites):
            port = f"{name}[{k}]" if len(sites) > 1 else name
            pull = "UP" if name in ("btn_pwr_n", "ftdi_txd") else "NONE"
            lines += [f'LOCATE COMP "{port}" SITE "{site}";',
                      f'IOBUF PORT "{port}" PULLMODE={pull} IO_TYPE=LVCMOS33;']
    lines.append(f'FREQUENCY PORT "clk_25mhz" {OSCILLATOR_MHZ} MHZ;')
    return "\n".join(lines) + "\n"


class Ulx3s(wiring.Component):
    """`Board` on a ULX3S 85F: the PLL's 100 MHz clock, a reset from the power button (and
    until the PLL locks), the FTDI serial port at `pyref.host_link.BAUD`, the SDRAM chip
    and the LEDs: the board's four status bits, then a heartbeat.

    Parameters
    ----------
    hw : HardwareConfig
    """

    def __init__(self, hw: HardwareConfig):
        self.board = Board(hw, memory_words(hw.name), CLOCK_MHZ * 1_000_000 // host_link.BAUD,
                           CHIP)
        self.ports = {name: IOPort(len(sites), name=name)
                      for name, sites in PINS}
        super().__init__({})  # every pin is an IOPort, a top-level port of its own

    def elaborate(self, platform):
        m = Module()
        p = self.ports
        m.domains.sync = ClockDomain()
        clock, locked = Signal(), Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            p_CLKI_DIV=PLL["CLKI_DIV"], p_CLKFB_DIV=PLL["CLKFB_DIV"],
            p_CLKOP_DIV=PLL["CLKOP_DIV"], p_CLKOP_CPHASE=PLL["CLKOP_DIV"] - 1,
            p_CLKOP_FPHASE=0, p_CLKOP_ENABLE="ENABLED", p_FEEDBK_PATH="CLKOP",
            p_OUTDIVIDER_MUXA="DIVA", p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED",
            p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
            a_FREQUENCY_PIN_CLKI=str(OSCILLATOR_MHZ), a_FREQUENCY_PIN_CLKOP=str(CLOCK_MHZ),
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
            i_CLKI=p["clk_25mhz"], i_CLKFB=clock, i_RST=0, i_STDBY=0, i_PHASESEL0=0,
            i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
            i_ENCLKOP=0, o_CLKOP=clock, o_LOCK=locked)
        m.d.comb += ClockSignal("sync").eq(clock)
        m.submodules.button = button = io.Buffer("i", io.SingleEndedPort(p["btn_pwr_n"]))
        # The reset reaches every flip-flop of the design: from its synchroniser it goes
        # through a global buffer onto a clock network, as fabric routing would take
        # a cycle to cross the chip.
        m.domains.power_on = ClockDomain(local=True)
        m.d.comb += ClockSignal("power_on").eq(clock)
        m.submodules.reset = ResetSynchronizer(~locked | ~button.i, domain="power_on")
        reset = Signal()
        m.submodules.reset_global = Instance("DCCA", i_CLKI=ResetSignal("power_on"), i_CE=1,
                                             o_CLKO=reset)
        m.d.comb += ResetSignal("sync").eq(reset)

        m.submodules.board = board = self.board
        sdram = board.sdram
        # The SDRAM's clock is ours inverted (an output DDR register sends 0 then 1), so
        # the chip takes each command in the middle of the cycle that holds it.
        m.submodules.sdram_clk = Instance("ODDRX1F", i_SCLK=clock, i_RST=0, i_D0=0, i_D1=1,
                                          o_Q=p["sdram_clk"])
        heartbeat = Signal(27)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        outputs = {"sdram_cke": sdram.cke, "sdram_csn": sdram.cs_n, "sdram_rasn": sdram.ras_n,
                   "sdram_casn": sdram.cas_n, "sdram_wen": sdram.we_n, "sdram_a": sdram.a,
                   "sdram_ba": sdram.ba, "sdram_dqm": sdram.dqm, "ftdi_rxd": board.tx,
                   "led": Cat(board.status, Const(0, 3), heartbeat[-1])}
        for name, value in outputs.items():
            m.submodules[name] = buffer = io.Buffer("o", io.SingleEndedPort(p[name]))
            m.d.comb += buffer.o.eq(value)
        m.submodules.ftdi_txd = rx = io.Buffer("i", io.SingleEndedPort(p["ftdi_txd"]))
        m.d.comb += board.rx.eq(rx.i)
        for k in range(len(p["sdram_d"])):
            m.submodules[f"sdram_d{k}"] = Instance(
                "BB", i_I=sdram.dq_o[k], i_T=~sdram.dq_oe, o_O=sdram.dq_i[k],
                io_B=p["sdram_d"][k])
        return m
