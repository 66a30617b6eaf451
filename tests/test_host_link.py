"""The host's side of the link (`pyref.host_link`) against a Python stand-in for the board:
sessions, chunking, byte order and the errors a user sees. The RTL's side is
sim/bench_board.py."""

import struct

import numpy as np
import pytest

from pyref import host_link, isa, machine
from pyref.config import ConfigError
from pyref.workload import workload
from scripts.designs import TOP_MEMORY_WORDS as MEMORY_WORDS


class FakeBoard:
    """The protocol in Python, as pyserial would show it: the functional machine
    (`pyref.machine`) runs the tasks. ``answer`` replaces the identify reply."""

    def __init__(self, hw, memory_words: int, answer: bytes | None = None):
        self.hw, self.answer = hw, answer
        self.memory = np.zeros((memory_words, hw.tile_in), dtype=np.uint16)
        self.pending, self.replies = b"", b""
        self.word_bytes = isa.word_bits(hw) // 8

    def write(self, data: bytes):
        self.pending += data
        while self.pending:
            op, rest = self.pending[:1], self.pending[1:]
            if op == host_link.IDENTIFY:
                self.replies += self.answer or (host_link.MAGIC + struct.pack(
                    "<BI", self.word_bytes, len(self.memory)))
            elif op == host_link.WRITE:
                base, count = struct.unpack("<IH", rest[:6])
                raw = rest[6:6 + count * self.word_bytes]
                self.memory[base:base + count] = host_link.bytes_to_words(raw, self.hw.tile_in)
                rest = rest[6 + len(raw):]
                self.replies += host_link.WRITTEN
            elif op == host_link.READ:
                base, count = struct.unpack("<IH", rest[:6])
                self.replies += host_link.words_to_bytes(self.memory[base:base + count])
                rest = rest[6:]
            elif op == host_link.START:
                run = machine.Machine(self.hw, self.memory).run(rest[0])
                self.replies += host_link.DONE + struct.pack("<I", run.instructions)
                rest = rest[1:]
            else:
                self.replies += host_link.UNKNOWN
            self.pending = rest

    def read(self, count: int) -> bytes:
        out, self.replies = self.replies[:count], self.replies[count:]
        return out


@pytest.fixture(scope="module")
def work():
    return workload("tiny", "ecp5-85f", 2, 3, MEMORY_WORDS)


def test_load_and_infer_give_the_integer_models_logits(work):
    board = FakeBoard(work.image.hw, MEMORY_WORDS)
    host_link.run(host_link.load(work.image), board)
    assert (board.memory[:len(work.image.words)] == work.image.words).all()
    for task in work.image.programs:
        for index, codes in enumerate(work.codes):
            logits, cycles = host_link.run(host_link.infer(work.image, codes, task), board)
            assert (logits == work.expected(task)[index]).all() and cycles > 0


def test_words_go_lane_0_first_little_endian():
    words = np.array([[0x0102, 0xA0B0], [7, 0xFFFF]], dtype=np.uint16)
    raw = host_link.words_to_bytes(words)
    assert raw == bytes([0x02, 0x01, 0xB0, 0xA0, 7, 0, 0xFF, 0xFF])
    assert (host_link.bytes_to_words(raw, 2) == words).all()


def test_long_transfers_are_split_into_commands():
    pieces = list(host_link.chunks(100, 2 * host_link.MAX_COUNT + 3))
    assert pieces == [(100, host_link.MAX_COUNT), (100 + host_link.MAX_COUNT, host_link.MAX_COUNT),
                      (100 + 2 * host_link.MAX_COUNT, 3)]
    with pytest.raises(ConfigError, match="1 to 65535"):
        host_link.read(0, 0, 8)
    with pytest.raises(ConfigError, match="1 to 65535"):
        host_link.write(0, np.zeros((host_link.MAX_COUNT + 1, 8), dtype=np.uint16))


@pytest.mark.parametrize("answer, message", [
    (b"HELLO0000", "not b'LUMO'"),
    (host_link.MAGIC + struct.pack("<BI", 16, 1 << 12), "same parameter set and memory"),
])
def test_a_board_that_is_not_the_one_built_is_named(work, answer, message):
    board = FakeBoard(work.image.hw, MEMORY_WORDS, answer)
    with pytest.raises(host_link.HostLinkError, match=message):
        host_link.run(host_link.load(work.image), board)


def test_a_silent_board_is_named(work):
    class Silent:
        def write(self, data):
            pass

        def read(self, count):
            return b""

    with pytest.raises(host_link.HostLinkError, match="powered, programmed"):
        host_link.run(host_link.load(work.image), Silent())


def test_a_wrong_task_is_named_before_anything_is_sent(work):
    with pytest.raises(ConfigError, match="unknown task 5"):
        host_link.run(host_link.infer(work.image, work.codes[0], 5), None)
