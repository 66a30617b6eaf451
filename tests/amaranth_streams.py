"""Stream driver and receiver for Amaranth's own simulator, with random stalls."""

import gc
import random
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator


async def send(ctx, port, payloads, rng: random.Random, idle: float = 0.0):
    """Drive ``payloads`` into stream ``port``, idling with probability ``idle`` per cycle."""
    for payload in payloads:
        while rng.random() < idle:
            await ctx.tick()
        ctx.set(port.payload, payload)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)


async def receive(ctx, port, count: int, rng: random.Random, stall: float = 0.0) -> list:
    """Collect ``count`` payloads from ``port``, holding ready low with probability ``stall``."""
    got = []
    while len(got) < count:
        ctx.set(port.ready, rng.random() >= stall)
        *_, valid, ready, payload = await ctx.tick().sample(port.valid, port.ready, port.payload)
        if valid and ready:
            got.append(payload)
    ctx.set(port.ready, 0)
    return got


async def count_through(ctx, dut, count: int, each_cycle=None) -> tuple[list, int]:
    """Offer payloads 0 to ``count`` - 1 on ``dut.i`` as fast as they are taken, with
    ``dut.o`` always ready; returns what came out and the cycles it took. ``each_cycle(ctx)``
    runs before each clock edge."""
    ctx.set(dut.o.ready, 1)
    sent, got, cycles = 0, [], 0
    while len(got) < count:
        ctx.set(dut.i.valid, sent < count)
        ctx.set(dut.i.payload, sent)
        if each_cycle is not None:
            each_cycle(ctx)
        *_, ready, valid, payload = await ctx.tick().sample(
            dut.i.ready, dut.o.valid, dut.o.payload)
        sent += bool(ready and sent < count)
        if valid:
            got.append(payload)
        cycles += 1
    return got, cycles


def run_stream(dut, payloads: list, count: int, rng: random.Random, stall: float = 0.0,
               cycles_per_item: int = 20) -> list:
    """Simulate ``dut`` (stream ports ``i`` and ``o``): send ``payloads``, collect ``count``
    results, both sides pausing at random with probability ``stall``."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got = []

    async def driver(ctx):
        await send(ctx, dut.i, payloads, rng, idle=stall)

    async def monitor(ctx):
        got.extend(await receive(ctx, dut.o, count, rng, stall=stall))

    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    sim.run_until(1e-8 * cycles_per_item * (len(payloads) + 10))
    return got


def assert_refused(make, match: str):
    """``make()`` raises a ValueError matching ``match``. The refused component is never
    elaborated, which Amaranth would warn of when it goes; that warning is expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match=match) as refused:
            make()
        del refused
        gc.collect()
