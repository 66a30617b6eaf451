"""cocotb bench: the streaming softmax unit against `pyref.approx` on the ``softmax`` set.

Lanes take consecutive rows of the set (rows of one length come in groups of six, so 1, 2, 3
or 6 lanes pair rows of equal length).
Every output beat carries the probabilities and the rows' final state.
"""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from pyref import approx, vectors
from sim.streams import StreamTB


class TB(StreamTB):
    """Softmax bench: rows become beats of one score per lane; each beat's expected output
    is its probabilities plus the rows' state, all from pyref."""

    def rows(self):
        """The set as ``(scores, probs, state)`` per row; ``state`` holds its final
        maximum, total and reciprocal."""
        v = vectors.load("softmax", self.vector_dir, self.seed)
        return [(v["scores"][span], v["probs"][span],
                 {n: int(v[n][row]) for n in ("maximum", "total", "r", "e")})
                for row, span in enumerate(vectors.segments(v["lengths"]))]

    def beats(self, rows) -> tuple[list, list]:
        """Input and expected output beats for ``rows``, taken ``lanes`` at a time."""
        lanes = self.info["lanes"]
        inputs, expected = [], []
        for g in range(0, len(rows), lanes):
            group = rows[g:g + lanes]
            n = len(group[0][0])
            if len(group) != lanes or any(len(r[0]) != n for r in group):
                raise ValueError(f"{lanes} lanes need groups of rows of one length")
            state = {k: [r[2][k] for r in group] for k in ("maximum", "total", "r", "e")}
            for j in range(n):
                last = int(j == n - 1)
                inputs.append({"score": [int(r[0][j]) for r in group], "last": last})
                expected.append({"p": [int(r[1][j]) for r in group], **state, "last": last})
        return inputs, expected


def expected_row(scores) -> tuple:
    """One row's probabilities and state from pyref (for rows made up by a test)."""
    maximum, total = approx.softmax_state(scores)
    r, e = approx.reciprocal(total)
    return (np.asarray(scores), approx.softmax_fixed(scores),
            {"maximum": int(maximum), "total": int(total), "r": int(r), "e": int(e)})


@cocotb.test()
@cocotb.parametrize(stalls=[False, True])
async def rows(dut, stalls):
    tb = TB(dut, stalls)
    all_rows = tb.rows()
    inputs, expected = tb.beats(all_rows)
    result = await tb.run(inputs, expected)
    # One score per cycle, then the last row waits for its state and comes out.
    ideal = len(inputs) + tb.info["latency"] + len(all_rows[-1][0]) - 1
    tb.record("rows", {**result, "macs": 0, "peak_macs_per_cycle": 0, "ideal_cycles": ideal})
    assert int(dut.overflow.value) == 0, "overflow rose on rows within max_len"
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"


@cocotb.test()
async def reset_mid_row(dut):
    """Reset while a row is half in: the state clears and the rows after are right."""
    tb = TB(dut, stalls=False)
    rows = tb.rows()
    inputs, expected = tb.beats(rows[-tb.info["lanes"] * 2:])
    await tb.reset()
    half = [dict(b, last=0) for b in inputs[:len(inputs) // 4]]
    await tb.transfer({"i": half}, {}, 20 * len(half))
    await ClockCycles(dut.clk, 5)
    result = await tb.run(inputs, expected)  # run() resets first
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches after a reset"


@cocotb.test()
async def overlong_row(dut):
    """A row past max_len is cut at max_len, and the overflow flag rises."""
    tb = TB(dut, stalls=False)
    lanes, max_len = tb.info["lanes"], tb.info["max_len"]
    rng = np.random.default_rng(tb.seed)
    scores = [rng.integers(-2000, 2000, max_len + 3) for _ in range(lanes)]
    parts = [[expected_row(s[:max_len]) for s in scores], [expected_row(s[max_len:])
                                                            for s in scores]]
    inputs, expected = [], []
    for part in parts:
        i, e = tb.beats(part)
        inputs += i
        expected += e
    for b in inputs:
        b["last"] = 0
    inputs[-1]["last"] = 1
    result = await tb.run(inputs, expected)
    assert int(dut.overflow.value) == 1, "overflow did not rise on a row past max_len"
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches on a cut row"
