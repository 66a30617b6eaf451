"""cocotb bench: the whole accelerator, end to end, against the integer model.

The host loads the compiled image (programs and parameters) through the memory port,
then for each image and task writes the patches, starts the task's program, waits for it
to end and reads the logits back. Every logit must equal `pyref.intmodel.IntModel`'s, and
the bytes the memory port moved must equal what the functional model
(`pyref.machine`) moves for the same program.
"""

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import (
    ClockCycles,
    FallingEdge,
    RisingEdge,
    SimTimeoutError,
    ValueChange,
    with_timeout,
)

from pyref import isa, machine
from pyref.isa import Descriptor
from pyref.workload import workload
from sim.streams import CLOCK_NS, StreamTB


def word_values(words) -> list[int]:
    """``(n, tile_in)`` 16-bit lanes as one integer per word."""
    words = np.asarray(words, dtype=np.uint16)
    return [int.from_bytes(w.astype("<u2").tobytes(), "little") for w in words]


def word_lanes(values: list[int], tile: int) -> np.ndarray:
    return np.array([[(v >> (16 * k)) & 0xFFFF for k in range(tile)] for v in values],
                    dtype=np.uint16)


class TB(StreamTB):
    """End-to-end bench: the host's loads and reads, one program run per image and task."""

    def __init__(self, dut, stalls: bool):
        super().__init__(dut, stalls)
        i = self.info
        # The stall test repeats fewer images: the stalls are the host's.
        images = i["stall_images"] if stalls else i["images"]
        self.work = workload(i["config"], i["hw"], images, self.seed, i["memory_words"],
                             i.get("depth"))
        self.image = self.work.image
        self.tile = self.image.hw.tile_in

    async def write(self, base: int, words):
        values = word_values(words)
        desc = Descriptor.contiguous(base, len(values)).fields()
        await self.transfer({"host_write_desc": [desc], "host_write": values}, {},
                            100 + 4 * len(values))
        while self.dut.host_busy.value:
            await RisingEdge(self.dut.clk)
        # The last word reaches the memory a cycle after its address is taken.
        await ClockCycles(self.dut.clk, 2)

    async def read(self, base: int, count: int) -> np.ndarray:
        desc = Descriptor.contiguous(base, count).fields()
        got = await self.transfer({"host_read_desc": [desc]}, {"host_read": count},
                                  100 + 4 * count)
        return word_lanes(got["host_read"], self.tile)

    async def watch(self, signal, trace: list):
        """Time-stamp every change of ``signal`` (the controller's instruction address, or
        which ports are busy)."""
        while True:
            await ValueChange(signal)
            trace.append((self.counter.now, int(signal.value)))

    def layers(self, task: int, pcs: list, busy: list, start: int) -> dict:
        """Cycles per layer: from the end of the layer before to the end of this one, which
        is when the last word of its last write on each of its write ports has gone.

        The layers run as a chain (each reads what the one before wrote), so the cycles of
        the layers add up to the run's."""
        hw, program = self.image.hw, self.image.programs[task]
        per = isa.INSTRUCTION_BITS // isa.word_bits(hw)
        entry = self.image.entries[task]
        # When each write was handed out: the controller's next instruction starts.
        handed = {}
        for (_, pc), (after, _) in zip(pcs, pcs[1:] + [(None, None)], strict=True):
            ins = program[(pc - entry) // per]
            if ins.op is isa.Op.WRITE and after is not None:
                layer = self.image.layer_at(task, pc)
                handed.setdefault(layer, {})[ins.target] = after
        ends, previous = {}, start
        for layer, writes in handed.items():
            end = previous
            for port, issued in writes.items():
                # The descriptor reaches the port a cycle or two after it is handed out.
                rise = next((c for c, v in busy if c >= issued and v >> port & 1), issued)
                idle = next((c for c, v in busy if c > rise and not v >> port & 1), rise)
                end = max(end, idle)
            ends[layer], previous = end - previous, max(previous, end)
        return ends

    async def infer(self, codes, task: int) -> dict:
        """One image through the task's program: logits, cycles and bytes moved."""
        patches = self.image.patches
        await self.write(patches.base, self.image.input_words(codes))
        before = int(self.dut.read_bytes.value), int(self.dut.write_bytes.value)
        pcs, busy = [], []
        watchers = [cocotb.start_soon(self.watch(self.dut.pc, pcs)),
                    cocotb.start_soon(self.watch(self.dut.ports_busy, busy))]
        await self.transfer({"start": [task]}, {}, 10)
        start = self.counter.now - 1
        limit = self.info["max_cycles"]
        try:
            await with_timeout(FallingEdge(self.dut.busy), limit * CLOCK_NS, "ns")
        except SimTimeoutError:
            raise AssertionError(f"task {task} did not end within {limit} cycles: "
                                 f"{self.hang()}") from None
        for watcher in watchers:
            watcher.cancel()
        cycles = self.counter.now - start
        moved = (int(self.dut.read_bytes.value) - before[0],
                 int(self.dut.write_bytes.value) - before[1])
        buffer, _ = self.image.outputs[task]
        lanes = await self.read(buffer.base, buffer.words)
        memory = np.zeros((buffer.base + buffer.words, self.tile), dtype=np.uint16)
        memory[buffer.base:] = lanes
        return {"logits": self.image.output_codes(memory, task), "cycles": cycles,
                "read_bytes": moved[0], "write_bytes": moved[1],
                "layers": self.layers(task, pcs, busy, start)}

    def hang(self) -> str:
        """Where the run is stuck: the controller's instruction and the ports still busy."""
        hw, pc = self.image.hw, int(self.dut.pc.value)
        text = isa.listing(hw, [isa.instruction_at(hw, self.image.words, pc)])
        busy = int(self.dut.ports_busy.value)
        names = [p.name for k, p in enumerate(isa.ports(hw)) if busy >> k & 1]
        return (f"the controller is at word {pc} on `{text.split(maxsplit=1)[1]}`; ports "
                f"busy: {', '.join(names) or 'none'}")

    async def run_all(self) -> dict:
        """Load the image, then every image and task; score against the integer model."""
        await self.reset()
        start = self.counter.now
        await self.write(0, self.image.words)
        load_cycles = self.counter.now - start
        word_bytes = isa.word_bits(self.image.hw) // 8
        result = {"vectors": 0, "mismatches": 0, "cycles": 0, "runs": [],
                  "load_cycles": load_cycles}
        for task in self.image.programs:
            expected = self.work.expected(task)
            for index, codes in enumerate(self.work.codes):
                got = await self.infer(codes, task)
                _, run = machine.infer(self.image, codes, task)
                want_bytes = (sum(run.words_read.values()) * word_bytes,
                              sum(run.words_written.values()) * word_bytes)
                wrong = int((got["logits"] != expected[index]).sum())
                traffic = (got["read_bytes"], got["write_bytes"]) != want_bytes
                if wrong or traffic:
                    self.log.error("task %d image %d: %d wrong logits; bytes read and written "
                                   "%s, functional model %s", task, index, wrong,
                                   (got["read_bytes"], got["write_bytes"]), want_bytes)
                result["vectors"] += expected[index].size
                result["mismatches"] += wrong + traffic
                result["cycles"] += got["cycles"]
                result["runs"].append({"task": task, "image": index, "cycles": got["cycles"],
                                       "read_bytes": got["read_bytes"],
                                       "write_bytes": got["write_bytes"],
                                       "layers": got["layers"],
                                       "logits": got["logits"].tolist()})
                self.progress(len(result["runs"]))
        return result

    def progress(self, done: int):
        """Tell `make sim` how many runs are done (it draws the progress bar)."""
        path = os.environ.get("LUMOE_PROGRESS")
        if path:
            total = len(self.image.programs) * len(self.work.codes)
            label = "[stalls] " if self.stalls else ""
            Path(path).write_text(json.dumps({"done": done, "total": total, "label": label}))


def task_metrics(work, runs: list) -> dict:
    """Each task's accuracy from the RTL's logits (task 0: the class; task 1: every
    patch's label), beside the integer model's on the same images."""
    if work.labels is None:
        return {}
    metrics = {}
    for task in work.image.programs:
        rtl = np.array([r["logits"] for r in runs if r["task"] == task])
        model = work.expected(task)
        labels = work.labels[:, None] if task == 0 else work.patch_labels
        metrics[task] = {name: float((logits.argmax(-1) == labels).mean())
                         for name, logits in (("rtl", rtl), ("intmodel", model))}
    return metrics


async def run_test(dut, stalls: bool, name: str):
    tb = TB(dut, stalls=stalls)
    result = await tb.run_all()
    runs = result.pop("runs")
    macs = sum(tb.work.linear_macs(r["task"]) for r in runs)
    tb.record(name, {**result, "ideal_cycles": 0, "macs": macs,
                     "peak_macs_per_cycle": tb.image.hw.peak_macs_per_cycle,
                     "breakdown": {"runs": runs, "metrics": task_metrics(tb.work, runs)}})
    assert result["mismatches"] == 0, f"{result['mismatches']} mismatches against pyref"


@cocotb.test()
async def end_to_end(dut):
    """Every image, both tasks, the host never stalling."""
    await run_test(dut, False, "end_to_end")


@cocotb.test()
async def end_to_end_with_stalls(dut):
    """The same, the host's streams idling and stalling at random."""
    await run_test(dut, True, "end_to_end")
