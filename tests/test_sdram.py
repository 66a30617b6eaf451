"""The SDRAM chip model (`pyref.sdram`): the address map, and that it refuses broken rules.
The controller against it is sim/bench_sdram.py."""

import pytest

from pyref.sdram import AUTO_PRECHARGE_BIT, COMMANDS, ULX3S, Chip, SdramError

WORD = 128
PRECHARGE = 1 << AUTO_PRECHARGE_BIT


class Driver:
    """Issues commands to a `Chip` at consecutive edges, ``then`` idle edges after each."""

    def __init__(self):
        self.chip = Chip(ULX3S, WORD)
        self.cycle = 0
        self.reads = []

    def issue(self, name="nop", bank=0, addr=0, dq=0, dq_oe=0, then=0):
        self.cycle += 1
        cs_n, ras_n, cas_n, we_n = COMMANDS[name]
        self.reads += self.chip.edge(self.cycle, cs_n, ras_n, cas_n, we_n, bank, addr, dq,
                                     dq_oe)
        self.cycle += then

    def initialise(self):
        self.issue(then=ULX3S.power_up - 1)
        self.issue("precharge", addr=PRECHARGE, then=ULX3S.t_rp)
        self.issue("refresh", then=ULX3S.t_rc)
        self.issue("refresh", then=ULX3S.t_rc)
        self.issue("mode", addr=ULX3S.mode_register(WORD), then=ULX3S.t_mrd)


def test_address_map_covers_the_chip_once():
    seen = {ULX3S.split(w, WORD) for w in range(0, ULX3S.words(WORD), 977)}
    assert len(seen) == len(range(0, ULX3S.words(WORD), 977))
    assert ULX3S.words(WORD) * WORD // 8 == 32 << 20
    assert ULX3S.split(64, WORD) == (1, 0, 0)  # a row holds 64 words, then the next bank


def test_a_written_burst_reads_back_after_cas_latency():
    d = Driver()
    d.initialise()
    d.issue("active", bank=2, addr=5, then=ULX3S.t_rcd - 1)
    d.issue("write", bank=2, addr=8 | PRECHARGE, dq=100, dq_oe=1)
    for beat in range(1, 8):
        d.issue(dq=100 + beat, dq_oe=1)
    d.issue(then=ULX3S.t_wr + ULX3S.t_rp)
    d.issue("active", bank=2, addr=5, then=ULX3S.t_rcd - 1)
    d.issue("read", bank=2, addr=8 | PRECHARGE)
    # The chip drives beat k in the cycle after the edge it names; the controller takes it
    # at the next edge: CAS latency edges after the READ.
    assert d.reads == [(d.cycle + ULX3S.cas_latency - 1 + k, 100 + k) for k in range(8)]


@pytest.mark.parametrize("steps, message", [
    (lambda d: d.issue("precharge", addr=PRECHARGE), "after 1 cycles of power-up"),
    (lambda d: (d.initialise(), d.issue("active", bank=1, addr=3),
                d.issue("read", bank=1, addr=PRECHARGE)), r"READ 1 cycles after ACTIVE"),
    (lambda d: (d.initialise(), d.issue("active", bank=1, addr=3, then=2),
                d.issue("active", bank=1, addr=4)), "whose row 3 is open"),
    (lambda d: (d.initialise(), d.issue("active", then=2), d.issue("read", addr=0)),
     "must auto-precharge"),
    (lambda d: (d.initialise(), d.issue(then=ULX3S.t_refi + 1), d.chip.finish(d.cycle)),
     "no REFRESH for"),
    (lambda d: (d.initialise(), d.issue("active", then=2), d.issue("read", addr=PRECHARGE),
                d.issue("precharge", addr=PRECHARGE)), "not used after initialisation"),
    (lambda d: (d.initialise(), d.issue("active", then=2),
                d.issue("write", addr=PRECHARGE, dq_oe=1), d.issue()),
     "without the data pins driven"),
])
def test_broken_rules_are_named(steps, message):
    with pytest.raises(SdramError, match=message):
        steps(Driver())
