"""The host link's byte protocol (`hw/host_link.py`), and the host's side of it.

Every command is an opcode byte and a little-endian header; the board answers each with a
reply of known length, so the host never has to parse a stream (docs/host_link.md):

============  ============================  =============================================
command       then the host sends           the board replies
============  ============================  =============================================
``I``         nothing                       ``LUMO``, word bytes (u8), memory words (u32)
``W``         base (u32), count (u16),      ``K`` once the last word is in memory
              count words
``R``         base (u32), count (u16)       count words
``S``         task (u8)                     ``D``, cycles from start to end (u32)
============  ============================  =============================================

A word is its ``tile_in`` 16-bit lanes, lane 0 first, each little-endian. A byte that is no
command is answered with ``?`` and dropped.

The host's code is written once, without I/O: a session is a generator that yields
`Exchange` objects (bytes to send, reply length, how to read the reply) and is sent each
parsed reply. `run` drives it over a serial port; the cocotb bench drives the same
generators over its UART model.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from pyref import isa
from pyref.compiler import Image
from pyref.config import ConfigError

IDENTIFY, WRITE, READ, START = b"I", b"W", b"R", b"S"
MAGIC, WRITTEN, DONE, UNKNOWN = b"LUMO", b"K", b"D", b"?"
#: The board's serial rate, 8N1 (FTDI bridges such as the ULX3S's FT231X take it).
BAUD = 1_000_000
#: Most words one ``W`` or ``R`` moves (the count's 16 bits).
MAX_COUNT = (1 << 16) - 1
#: Header bytes after each opcode, and the opcodes the board knows.
HEADERS = {IDENTIFY: 0, WRITE: 6, READ: 6, START: 1}
#: The identify reply's length: magic, word bytes, memory words.
IDENTITY_BYTES = len(MAGIC) + 1 + 4
#: The start reply's length: ``D`` and the cycle count.
DONE_BYTES = 1 + 4


class HostLinkError(RuntimeError):
    """The board answered something the protocol does not allow, or is not the one built."""


@dataclass(frozen=True)
class Exchange:
    """One command: ``request`` goes out, ``reply`` bytes come back, ``parse`` reads them."""

    request: bytes
    reply: int
    parse: Callable[[bytes], object]


def words_to_bytes(words) -> bytes:
    """``(n, tile_in)`` 16-bit lanes as the link sends them."""
    return np.asarray(words).astype("<u2").tobytes()


def bytes_to_words(raw: bytes, tile: int) -> np.ndarray:
    """The inverse of `words_to_bytes`: ``(n, tile)`` uint16 lanes."""
    return np.frombuffer(raw, dtype="<u2").reshape(-1, tile).astype(np.uint16)


def identify() -> Exchange:
    def parse(raw: bytes) -> tuple:
        if raw[:len(MAGIC)] != MAGIC:
            raise HostLinkError(f"the board answered {raw!r} to identify, not {MAGIC!r}: "
                                "is the lumoe bitstream loaded and the baud rate right?")
        word_bytes, memory_words = struct.unpack("<BI", raw[len(MAGIC):])
        return word_bytes, memory_words
    return Exchange(IDENTIFY, IDENTITY_BYTES, parse)


def write(base: int, words) -> Exchange:
    """At most `MAX_COUNT` words from ``base``."""
    raw = words_to_bytes(words)
    count = len(words)
    _check_count(count)

    def parse(reply: bytes) -> None:
        if reply != WRITTEN:
            raise HostLinkError(f"write of {count} words at {base}: the board answered "
                                f"{reply!r}, not {WRITTEN!r}")
    return Exchange(WRITE + struct.pack("<IH", base, count) + raw, 1, parse)


def read(base: int, count: int, tile: int) -> Exchange:
    """At most `MAX_COUNT` words from ``base``."""
    _check_count(count)
    return Exchange(READ + struct.pack("<IH", base, count), count * 2 * tile,
                    lambda raw: bytes_to_words(raw, tile))


def start(task: int) -> Exchange:
    def parse(reply: bytes) -> int:
        if reply[:1] != DONE:
            raise HostLinkError(f"task {task}: the board answered {reply!r}, not {DONE!r}")
        return struct.unpack("<I", reply[1:])[0]
    return Exchange(START + bytes([task]), DONE_BYTES, parse)


def chunks(base: int, count: int):
    """``(base, count)`` pieces of at most `MAX_COUNT` words."""
    for first in range(0, count, MAX_COUNT):
        yield base + first, min(MAX_COUNT, count - first)


Session = Generator[Exchange, object, object]


def load(image: Image) -> Session:
    """Check the board is the one ``image`` was compiled for, then write the image."""
    word_bytes, memory_words = yield identify()
    want = isa.word_bits(image.hw) // 8
    if (word_bytes, memory_words) != (want, image.memory_words):
        raise HostLinkError(f"the board has {word_bytes}-byte words and {memory_words} words "
                            f"of memory; the image needs {want} and {image.memory_words}: "
                            "build the bitstream for the same parameter set and memory")
    for base, count in chunks(0, len(image.words)):
        yield write(base, image.words[base:base + count])


def infer(image: Image, codes, task: int) -> Session:
    """One image's patch ``codes`` through ``task``: returns its logits and cycles."""
    image.check_task(task)
    words = image.input_words(codes)
    for base, count in chunks(image.patches.base, len(words)):
        first = base - image.patches.base
        yield write(base, words[first:first + count])
    cycles = yield start(task)
    buffer, _ = image.outputs[task]
    lanes = []
    for base, count in chunks(buffer.base, buffer.words):
        lanes.append((yield read(base, count, image.hw.tile_in)))
    memory = np.zeros((buffer.base + buffer.words, image.hw.tile_in), dtype=np.uint16)
    memory[buffer.base:] = np.concatenate(lanes)
    return image.output_codes(memory, task), cycles


def run(session: Session, port) -> object:
    """Drive ``session`` over ``port`` (anything with pyserial's ``write`` and ``read``)."""
    reply = None
    try:
        while True:
            exchange = session.send(reply)
            port.write(exchange.request)
            raw = port.read(exchange.reply)
            if len(raw) != exchange.reply:
                raise HostLinkError(f"the board sent {len(raw)} of {exchange.reply} bytes "
                                    "before the timeout: is it powered, programmed and on "
                                    "this port?")
            reply = exchange.parse(raw)
    except StopIteration as end:
        return end.value


def _check_count(count: int):
    if not 1 <= count <= MAX_COUNT:
        raise ConfigError(f"{count} words: one command moves 1 to {MAX_COUNT} (`chunks` "
                          "splits longer transfers)")
