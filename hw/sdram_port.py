"""The accelerator's memory port on a board: an SDR SDRAM controller."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hw.memory_port import ADDRESS_BITS, request_layout
from pyref.sdram import AUTO_PRECHARGE_BIT, COMMANDS, INIT, Sdram

#: Cycles before tREFI at which a refresh is due: the longest word (a write, 15 cycles)
#: may finish first.
REFRESH_SLACK = 32


def pins_signature(sdram: Sdram) -> wiring.Signature:
    """The chip's pins, from the controller's side; the data pins are split into
    ``dq_o``, ``dq_oe`` and ``dq_i`` (the board's top joins them in a tristate buffer)."""
    # The command pins start deselected: all low would be LOAD MODE.
    return wiring.Signature({
        "cke": Out(1), "cs_n": Out(1, init=1), "ras_n": Out(1, init=1),
        "cas_n": Out(1, init=1), "we_n": Out(1, init=1),
        "ba": Out(sdram.bank_bits), "a": Out(sdram.row_bits), "dqm": Out(sdram.data_bits // 8),
        "dq_o": Out(sdram.data_bits), "dq_oe": Out(1), "dq_i": In(sdram.data_bits)})


class SdramPort(wiring.Component):
    """`hw.memory_port.MemoryPort`'s interface on an SDRAM: each word is one burst.

    Every word opens its row, reads or writes its burst with auto-precharge and closes it
    again (one bank at a time: simple, and about a word per 14 cycles). Refreshes come
    between words. After reset it waits the chip's power-up time and initialises it
    (precharge all, two refreshes, the mode register). A request is taken into a register
    (a read before a write), so the arbiter's queue sees a flip-flop for its ready, not the
    controller's state; a request's words move in address order. Read words leave from a
    register too, the head of a small FIFO, as they fan out to every reader.
    `pyref.sdram.Chip` is the checking model.

    Parameters
    ----------
    width : int
        Bits per word: a burst of 1, 2, 4 or 8 beats.
    sdram : pyref.sdram.Sdram
        The chip and its timings in cycles of this clock.

    Members
    -------
    read_req, write_req : In(stream.Signature(request_layout()))
    read_data : Out(stream.Signature(width))
    write_data : In(stream.Signature(width))
    read_bytes, write_bytes : Out(48)
    ready : Out(1)
        The chip is initialised (200 us after reset): requests are served from now on.
    pins : Out(pins_signature(sdram))
    """

    def __init__(self, width: int, sdram: Sdram):
        self.width, self.sdram, self.burst = width, sdram, sdram.burst(width)
        super().__init__({
            "read_req": In(stream.Signature(request_layout())),
            "read_data": Out(stream.Signature(width)),
            "write_req": In(stream.Signature(request_layout())),
            "write_data": In(stream.Signature(width)),
            "read_bytes": Out(48), "write_bytes": Out(48), "ready": Out(1),
            "pins": Out(pins_signature(sdram)),
        })

    def elaborate(self, platform):
        m = Module()
        s, burst, pins = self.sdram, self.burst, self.pins
        m.submodules.out = out = SyncFIFOBuffered(width=self.width, depth=4)
        wiring.connect(m, wiring.flipped(self.read_data), out.r_stream)

        # Command pins are registered: a command set in a cycle reaches the chip at the end
        # of the next one. Unless a state sets one, the chip is deselected (a NOP).
        def command(name: str, bank=0, addr=0):
            cs_n, ras_n, cas_n, we_n = COMMANDS[name]
            m.d.sync += [pins.cs_n.eq(cs_n), pins.ras_n.eq(ras_n), pins.cas_n.eq(cas_n),
                         pins.we_n.eq(we_n), pins.ba.eq(bank), pins.a.eq(addr)]
        command("deselect")
        m.d.sync += [pins.cke.eq(1), pins.dqm.eq(0), pins.dq_oe.eq(0)]

        longest = max(s.power_up, s.t_refi)
        wait = Signal(range(longest + 1))
        # ``wait == 0`` kept in a register: each state's move starts at a flip-flop, not
        # at a 15-bit compare.
        waited = Signal(init=1)
        with m.If(~waited):
            m.d.sync += [wait.eq(wait - 1), waited.eq(wait == 1)]

        def wait_for(cycles: int):
            m.d.sync += [wait.eq(cycles), waited.eq(cycles == 0)]
        refresh_timer = Signal(range(s.t_refi + 1), init=s.t_refi - REFRESH_SLACK)
        refresh_due = Signal()
        with m.If(refresh_timer != 0):
            m.d.sync += refresh_timer.eq(refresh_timer - 1)
        with m.Else():
            m.d.sync += refresh_due.eq(1)

        reading, writing = Signal(), Signal()
        addr = Signal(ADDRESS_BITS)
        left = Signal(16)
        words_per_row_bits = s.col_bits - ceil_log2(burst)
        column = Cat(Signal(ceil_log2(burst)), addr[:words_per_row_bits])
        bank = addr[words_per_row_bits:words_per_row_bits + s.bank_bits]
        row = addr[words_per_row_bits + s.bank_bits:][:s.row_bits]
        with_precharge = 1 << AUTO_PRECHARGE_BIT
        beat = Signal(range(burst + 1))
        word = Signal(self.width)
        init_refreshes = Signal(range(INIT.count("refresh") + 1))
        # The word shifts the same way for a read and a write, the pins' beat in at the
        # top: a write sends from the bottom and never reaches what came in.
        shifted = Cat(word[s.data_bits:], pins.dq_i)

        def done_word():
            m.d.sync += [addr.eq(addr + 1), left.eq(left - 1)]
            with m.If(left == 1):
                m.d.sync += [reading.eq(0), writing.eq(0)]

        held = Signal(request_layout())
        held_read = Signal()
        held_valid = Signal()
        # A write is taken only once the last one's word has gone in: the arbiter hands its
        # word over as the port takes the request, and holds one word at a time.
        m.d.comb += [self.read_req.ready.eq(~held_valid),
                     self.write_req.ready.eq(~held_valid & ~writing & ~self.read_req.valid),
                     self.write_data.ready.eq(0)]
        with m.If(self.read_req.valid & self.read_req.ready):
            m.d.sync += [held.eq(self.read_req.payload), held_read.eq(1), held_valid.eq(1)]
        with m.Elif(self.write_req.valid & self.write_req.ready):
            m.d.sync += [held.eq(self.write_req.payload), held_read.eq(0), held_valid.eq(1)]
        with m.FSM():
            with m.State("power-up"):
                wait_for(s.power_up)
                m.next = "precharge all"
            with m.State("precharge all"):
                with m.If(waited):
                    command("precharge", addr=with_precharge)
                    wait_for(s.t_rp)
                    m.d.sync += init_refreshes.eq(INIT.count("refresh"))
                    m.next = "init refresh"
            with m.State("init refresh"):
                with m.If(waited):
                    command("refresh")
                    wait_for(s.t_rc)
                    m.d.sync += init_refreshes.eq(init_refreshes - 1)
                    with m.If(init_refreshes == 1):
                        m.next = "mode"
            with m.State("mode"):
                with m.If(waited):
                    command("mode", addr=s.mode_register(self.width))
                    wait_for(s.t_mrd)
                    m.d.sync += [refresh_timer.eq(s.t_refi - REFRESH_SLACK),
                                 self.ready.eq(1)]
                    m.next = "idle"
            with m.State("idle"):
                # The word register takes the arbiter's write word in every idle cycle
                # (it holds nothing then): its enable is the state alone, not the choice
                # below, and in the cycle a write starts it takes that write's word.
                m.d.sync += word.eq(self.write_data.payload)
                with m.If(~waited):
                    pass  # the last command's recovery time
                with m.Elif(refresh_due):
                    command("refresh")
                    wait_for(s.t_rc)
                    m.d.sync += [refresh_due.eq(0),
                                 refresh_timer.eq(s.t_refi - REFRESH_SLACK)]
                with m.Elif(reading):
                    with m.If(out.w_rdy):
                        command("active", bank, row)
                        wait_for(s.t_rcd - 1)
                        m.next = "read"
                with m.Elif(writing):
                    m.d.comb += self.write_data.ready.eq(1)
                    with m.If(self.write_data.valid):
                        command("active", bank, row)
                        wait_for(s.t_rcd - 1)
                        m.d.sync += self.write_bytes.eq(self.write_bytes + self.width // 8)
                        m.next = "write"
                with m.Elif(held_valid):
                    m.d.sync += [held_valid.eq(0), reading.eq(held_read & (held.beats != 0)),
                                 writing.eq(~held_read & (held.beats != 0)),
                                 addr.eq(held.addr), left.eq(held.beats)]
            with m.State("read"):
                with m.If(waited):
                    command("read", bank, column | with_precharge)
                    # The first beat is on the pins CAS latency cycles after the chip
                    # takes the command, which is the end of the next cycle.
                    wait_for(s.cas_latency)
                    m.d.sync += beat.eq(0)
                    m.next = "read data"
            with m.State("read data"):
                # The word shifts the pins in every cycle of the state (its enable is the
                # state's): the burst's beats, the last to come, fill all of it.
                m.d.sync += word.eq(shifted)
                with m.If(waited):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(beat == burst - 1):
                        m.next = "read done"
            with m.State("read done"):
                m.d.comb += [out.w_en.eq(1), out.w_data.eq(word)]
                m.d.sync += self.read_bytes.eq(self.read_bytes + self.width // 8)
                done_word()
                m.next = "idle"
            with m.State("write"):
                with m.If(waited):
                    command("write", bank, column | with_precharge)
                    m.d.sync += [pins.dq_o.eq(word[:s.data_bits]), pins.dq_oe.eq(1),
                                 word.eq(shifted), beat.eq(1)]
                    m.next = "write data"
            with m.State("write data"):
                # The word shifts in every cycle of the state, as in "read data": after the
                # last beat nothing reads it.
                m.d.sync += word.eq(shifted)
                with m.If(beat == burst):
                    # The chip's write recovery and the auto-precharge after the last beat.
                    wait_for(s.t_wr + s.t_rp)
                    done_word()
                    m.next = "idle"
                with m.Else():
                    m.d.sync += [pins.dq_o.eq(word[:s.data_bits]), pins.dq_oe.eq(1),
                                 beat.eq(beat + 1)]
        return m
