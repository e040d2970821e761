"""SkidBuffer (rtl/skid.py) in the Amaranth simulator: every beat passes once and in order
under random valid on the input and random ready on the output, one beat per cycle when the
output is always ready, and its ready and valid depend on no input of the same cycle."""

import random

import pytest
from amaranth.sim import Simulator

from hamattn.rtl.skid import SkidBuffer


def run(beats, p_valid, p_ready, seed, cycles=2000):
    """Send ``beats`` through a SkidBuffer(8); returns (received, cycles used, ready/valid
    changes seen in the same cycle as an input change)."""
    dut = SkidBuffer(8)
    rng = random.Random(seed)
    got, same_cycle = [], []
    done_at = []

    async def bench(ctx):
        i = 0
        for cycle in range(cycles):
            before = (ctx.get(dut.i.ready), ctx.get(dut.o.valid))
            valid = i < len(beats) and rng.random() < p_valid
            ready = rng.random() < p_ready
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload, beats[i] if i < len(beats) else 0)
            ctx.set(dut.o.ready, ready)
            # the flip-flop outputs do not move when the inputs do
            if (ctx.get(dut.i.ready), ctx.get(dut.o.valid)) != before:
                same_cycle.append(cycle)
            if valid and ctx.get(dut.i.ready):
                i += 1
            if ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            if len(got) == len(beats):
                done_at.append(cycle)
                break
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, done_at[0] if done_at else None, same_cycle


@pytest.mark.parametrize("p_valid,p_ready", [(1, 1), (1, 0.3), (0.3, 1), (0.5, 0.5)])
def test_beats_in_order(p_valid, p_ready):
    beats = [random.Random(p_valid + p_ready).randrange(256) for _ in range(300)]
    got, done, same_cycle = run(beats, p_valid, p_ready, seed=int(10 * (p_valid + p_ready)))
    assert got == beats
    assert same_cycle == []


def test_full_rate():
    """Always valid, always ready: one beat per cycle after the one edge of latency."""
    beats = list(range(200))
    got, done, _ = run(beats, 1, 1, seed=1)
    assert got == beats and done == len(beats)
