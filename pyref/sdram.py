"""The board's SDR SDRAM: its geometry, its timings in clock cycles, and a checking model.

`hw/sdram_port.py` is the controller. `Chip` stands in for the chip in simulation: it is
told the pins at each rising edge that registers a command or a write beat (every other
edge is a NOP and changes nothing), keeps the words, schedules read data, and stops with a
clear `SdramError` on any command that breaks the chip's rules (the initialisation
sequence, tRCD, tRP, tRC, tRFC, tWR, tMRD, the refresh interval, a burst cut short, both
sides driving the data pins).

One accelerator word of ``word_bits`` is one burst of ``word_bits / data_bits`` beats in one
row: word address ``w`` is column ``(w % words_per_row) * burst``, then the bank, then the
row (`Sdram.split`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Command pins (cs_n, ras_n, cas_n, we_n) of each command the controller uses. A
#: deselected chip (cs_n high) does nothing, as for NOP.
COMMANDS = {"deselect": (1, 1, 1, 1), "nop": (0, 1, 1, 1), "active": (0, 0, 1, 1),
            "read": (0, 1, 0, 1), "write": (0, 1, 0, 0), "precharge": (0, 0, 1, 0),
            "refresh": (0, 0, 0, 1), "mode": (0, 0, 0, 0)}
#: The chip's initialisation after power-up: precharge all banks, refresh, load the mode.
INIT = ("precharge", "refresh", "refresh", "mode")
#: Address bit that asks READ and WRITE for auto-precharge, and PRECHARGE for all banks.
AUTO_PRECHARGE_BIT = 10


class SdramError(RuntimeError):
    """The controller broke one of the chip's rules."""


@dataclass(frozen=True)
class Sdram:
    """An SDR SDRAM chip at the accelerator's clock (timings in cycles, rounded up).

    The default is the ULX3S's 32 MB chip (IS42S16160G-7: 4 banks of 8,192 rows of 512
    16-bit columns) at 100 MHz, CAS latency 2.
    """

    name: str = "IS42S16160G-7 at 100 MHz"
    row_bits: int = 13
    col_bits: int = 9
    bank_bits: int = 2
    data_bits: int = 16
    cas_latency: int = 2
    t_rcd: int = 2    # 15 ns: ACTIVE to READ or WRITE
    t_rp: int = 2     # 15 ns: PRECHARGE to ACTIVE
    t_rc: int = 6     # 60 ns: ACTIVE to ACTIVE, and REFRESH to anything (tRFC)
    t_wr: int = 2     # last data in to precharge
    t_mrd: int = 2    # LOAD MODE to the next command
    t_refi: int = 781  # 7.8 us: 8,192 rows refreshed in 64 ms
    power_up: int = 20_000  # 200 us of NOPs before the first command

    def burst(self, word_bits: int) -> int:
        """Beats per accelerator word."""
        beats = word_bits // self.data_bits
        if beats * self.data_bits != word_bits or beats not in (1, 2, 4, 8):
            raise ValueError(f"a {word_bits}-bit word is not a burst of 1, 2, 4 or 8 "
                             f"{self.data_bits}-bit beats")
        return beats

    def words(self, word_bits: int) -> int:
        """Words the chip holds."""
        return (1 << (self.row_bits + self.col_bits + self.bank_bits)) // self.burst(word_bits)

    def split(self, word: int, word_bits: int) -> tuple:
        """``(bank, row, column)`` of the burst holding word address ``word``."""
        burst = self.burst(word_bits)
        per_row = (1 << self.col_bits) // burst
        column = (word % per_row) * burst
        bank = (word // per_row) % (1 << self.bank_bits)
        row = word // per_row >> self.bank_bits
        return bank, row % (1 << self.row_bits), column

    def mode_register(self, word_bits: int) -> int:
        """Sequential bursts of one word, the CAS latency, burst writes."""
        return {1: 0, 2: 1, 4: 2, 8: 3}[self.burst(word_bits)] | self.cas_latency << 4


ULX3S = Sdram()


class Chip:
    """A cycle model of ``sdram`` that checks every command (see the module docstring).

    Call `edge` with the number of each rising edge that registers a command, or a beat of
    a write burst (the edges after a WRITE), and the pins the controller drove in the cycle
    before it. It returns the read data the command starts: ``(edge, value)`` pairs, each
    value on the data pins in the cycle after that edge.
    """

    def __init__(self, sdram: Sdram, word_bits: int):
        self.sdram, self.burst = sdram, sdram.burst(word_bits)
        self.mode = sdram.mode_register(word_bits)
        self.cells: dict = {}
        self.now = 0
        self.init_step = 0  # commands of INIT done
        self.open = {}      # bank: row
        self.ready_at = {}  # bank: first cycle it may be activated
        self.activated_at = {}
        self.busy_until = 0  # after REFRESH or LOAD MODE: no command before this
        self.last_refresh = 0
        self.refreshes = 0
        self.reads_until = 0  # the last edge after which the chip drives read data
        self.write = None     # (bank, row, column, next beat) of a write burst

    @property
    def initialised(self) -> bool:
        return self.init_step == len(INIT)

    def _fail(self, text: str):
        raise SdramError(f"cycle {self.now}: {text}")

    def edge(self, cycle: int, cs_n: int, ras_n: int, cas_n: int, we_n: int, bank: int,
             addr: int, dq: int, dq_oe: int) -> list:
        s = self.sdram
        if cycle <= self.now:
            raise ValueError(f"edge {cycle} after edge {self.now}: edges go forwards")
        if self.write is not None and cycle != self.now + 1:
            self.now = cycle
            self._fail("a write burst's beats must come on consecutive edges")
        self.now = cycle
        command = "nop" if cs_n else next(
            (n for n, pins in COMMANDS.items() if pins == (cs_n, ras_n, cas_n, we_n)), None)
        if command is None:
            self._fail(f"pins cs_n ras_n cas_n we_n = {cs_n}{ras_n}{cas_n}{we_n} are no command")
        if dq_oe and self.now <= self.reads_until + 1:
            self._fail("the controller drove the data pins while the chip did")
        if self.initialised and command in ("active", "refresh") \
                and self.now - self.last_refresh > s.t_refi:
            self._fail(f"no REFRESH for {self.now - self.last_refresh} cycles (tREFI is "
                       f"{s.t_refi})")
        if self.write is not None:
            self._write_beat(command, dq, dq_oe)
            return []
        if command == "nop":
            return []
        return self._command(command, bank, addr, dq, dq_oe)

    def finish(self, cycle: int):
        """Check the time since the last refresh at edge ``cycle`` (the end of a run)."""
        self.now = max(self.now, cycle)
        if self.initialised and self.now - self.last_refresh > self.sdram.t_refi:
            self._fail(f"no REFRESH for {self.now - self.last_refresh} cycles (tREFI is "
                       f"{self.sdram.t_refi})")

    def _command(self, command: str, bank: int, addr: int, dq: int, dq_oe: int):
        s = self.sdram
        if self.now < self.busy_until:
            self._fail(f"{command.upper()} before the last REFRESH or LOAD MODE ended")
        if not self.initialised:
            self._init(command, addr)
            return []
        if command == "active":
            if bank in self.open:
                self._fail(f"ACTIVE to bank {bank}, whose row {self.open[bank]} is open")
            if self.now < self.ready_at.get(bank, 0):
                self._fail(f"ACTIVE to bank {bank} {self.ready_at[bank] - self.now} cycles "
                           "early (tRP after its precharge, tRC after its last ACTIVE)")
            self.open[bank], self.activated_at[bank] = addr, self.now
            self.ready_at[bank] = self.now + s.t_rc
        elif command in ("read", "write"):
            if bank not in self.open:
                self._fail(f"{command.upper()} to bank {bank}, which has no open row")
            if self.now < self.activated_at[bank] + s.t_rcd:
                self._fail(f"{command.upper()} {self.now - self.activated_at[bank]} cycles "
                           f"after ACTIVE (tRCD is {s.t_rcd})")
            if self.now <= self.reads_until:
                self._fail(f"{command.upper()} while a read burst is still moving")
            column = addr & ((1 << s.col_bits) - 1)
            if column % self.burst:
                self._fail(f"column {column} is not the start of a {self.burst}-beat burst")
            precharge = bool(addr >> AUTO_PRECHARGE_BIT & 1)
            if not precharge:
                self._fail("READ and WRITE must auto-precharge (the controller's policy)")
            row = self.open[bank]
            if command == "read":
                first = self.now + s.cas_latency - 1
                self.reads_until = first + self.burst - 1
                self._close(bank, self.now + self.burst + s.t_rp)
                return [(first + beat, self.cells.get((bank, row, column + beat), 0))
                        for beat in range(self.burst)]
            self.write = (bank, row, column, 0)
            self._write_beat("write", dq, dq_oe)
        elif command == "refresh":
            if self.open:
                self._fail(f"REFRESH with banks {sorted(self.open)} open")
            if self.now < max(self.ready_at.values(), default=0):
                self._fail("REFRESH before every bank's precharge ended")
            self._refreshed()
        else:
            self._fail(f"{command.upper()} is not used after initialisation")
        return []

    def _write_beat(self, command: str, dq: int, dq_oe: int):
        bank, row, column, beat = self.write
        if command != ("write" if beat == 0 else "nop"):
            self._fail(f"{command.upper()} during beat {beat} of a write burst")
        if not dq_oe:
            self._fail(f"beat {beat} of a write burst without the data pins driven")
        self.cells[(bank, row, column + beat)] = dq
        beat += 1
        if beat < self.burst:
            self.write = (bank, row, column, beat)
            return
        self.write = None
        self._close(bank, self.now + self.sdram.t_wr + self.sdram.t_rp)

    def _close(self, bank: int, ready: int):
        del self.open[bank]
        self.ready_at[bank] = max(self.ready_at[bank], ready)

    def _refreshed(self):
        self.last_refresh = self.now
        self.busy_until = self.now + self.sdram.t_rc
        self.refreshes += 1

    def _init(self, command: str, addr: int):
        s = self.sdram
        expected = INIT[self.init_step]
        if command != expected:
            self._fail(f"initialisation step {self.init_step + 1} must be "
                       f"{expected.upper()}, not {command.upper()}")
        if self.init_step == 0:
            if self.now < s.power_up:
                self._fail(f"PRECHARGE after {self.now} cycles of power-up (at least "
                           f"{s.power_up})")
            if not addr >> AUTO_PRECHARGE_BIT & 1:
                self._fail("the first PRECHARGE must be to all banks (A10 high)")
            self.busy_until = self.now + s.t_rp
        elif command == "refresh":
            self._refreshed()
        else:
            if addr != self.mode:
                self._fail(f"mode register {addr:#x}, expected {self.mode:#x}")
            self.busy_until = self.now + s.t_mrd
            self.last_refresh = self.now
        self.init_step += 1
