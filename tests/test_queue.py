"""RegisteredFIFO (rtl/queue.py) in the Amaranth simulator, beside Amaranth's
SyncFIFOBuffered under the same random writes (offered where both are ready) and reads: the
same ``r_rdy``, ``r_data`` (while ``r_rdy``) and ``level`` in every cycle, and its flags
equal to their compares of the level (``w_rdy``: level < depth, so it is ready wherever
SyncFIFOBuffered is, and also while that one's inner memory is full and its output register
empty), and its room flags the compares of the level ROOM_LAG edges before (``room``) and one
edge before (``room_next``), which imply ``level + margin < depth``."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import memory
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.sim import Simulator

from hamattn.rtl.queue import NO_RW_CHECK, ROOM_LAG, RegisteredFIFO, UnguardedReadPort


def simulate(m, bench):
    """Run ``bench`` on module ``m`` with a clock (the sync domain)."""
    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def run(depth, margin, p_write, p_read, seed, cycles=1500, checked=True):
    """Drive both queues with the same random ``w_en``/``r_en`` and data; returns the list
    of cycles (and what) where they or a flag disagreed, and the entries taken."""
    m = Module()
    m.submodules.dut = dut = RegisteredFIFO(width=8, depth=depth, margin=margin,
                                            checked=checked)
    m.submodules.ref = ref = SyncFIFOBuffered(width=8, depth=depth)
    rng = random.Random(seed)
    bad, taken = [], []
    levels = [0] * ROOM_LAG                 # the level of the edges before (0 before reset)

    async def bench(ctx):
        for cycle in range(cycles):
            w_en, r_en, data = rng.random() < p_write, rng.random() < p_read, rng.randrange(256)
            w_en &= bool(ctx.get(ref.w_rdy))
            for q in (dut, ref):
                ctx.set(q.w_en, w_en)
                ctx.set(q.r_en, r_en)
                ctx.set(q.w_data, data)
            got = {k: ctx.get(getattr(dut, k)) for k in ("r_rdy", "level")}
            want = {k: ctx.get(getattr(ref, k)) for k in ("r_rdy", "level")}
            if got["r_rdy"]:
                got["r_data"], want["r_data"] = ctx.get(dut.r_data), ctx.get(ref.r_data)
            level = got["level"]
            got["empty"], want["empty"] = ctx.get(dut.empty), int(level == 0)
            got["w_rdy"], want["w_rdy"] = ctx.get(dut.w_rdy), int(level < depth)
            if margin is not None:
                top = depth - margin - ROOM_LAG
                got["room"], want["room"] = ctx.get(dut.room), int(levels[-ROOM_LAG] < top)
                got["room_next"] = ctx.get(dut.room_next)
                want["room_next"] = int(levels[-ROOM_LAG + 1] < top)
                got["safe"] = want["safe"] = 1       # room implies level + margin < depth
                if got["room"] and not level + margin < depth:
                    got["safe"] = 0
            levels.append(level)
            if got != want:
                bad.append((cycle, got, want))
            if r_en and got["r_rdy"]:
                taken.append(got["r_data"])
            await ctx.tick()

    simulate(m, bench)
    return bad, taken


@pytest.mark.parametrize("depth,margin", [(2, None), (3, 0), (5, 2), (8, 3), (13, 10)])
@pytest.mark.parametrize("p_write,p_read", [(0.9, 0.3), (0.3, 0.9), (0.6, 0.6), (1, 1)])
def test_same_as_sync_fifo_buffered(depth, margin, p_write, p_read):
    bad, taken = run(depth, margin, p_write, p_read, seed=depth * 7 + int(10 * p_write))
    assert bad == []
    assert len(taken) > 50           # the queue was exercised, not stuck


@pytest.mark.parametrize("depth,margin", [(2, None), (5, 2), (13, 10)])
@pytest.mark.parametrize("p_write,p_read", [(0.9, 0.3), (0.3, 0.9), (1, 1)])
def test_unchecked_same_as_sync_fifo_buffered(depth, margin, p_write, p_read):
    """``checked=False`` (w_en is the write): the same as SyncFIFOBuffered for a writer
    that never writes a full queue (as ``run``'s: only where the reference's w_rdy)."""
    bad, taken = run(depth, margin, p_write, p_read, seed=depth * 5 + int(10 * p_read),
                     checked=False)
    assert bad == []
    assert len(taken) > 50


@pytest.mark.parametrize("depth,margin", [(2, None), (3, 0), (5, 2), (13, 10)])
@pytest.mark.parametrize("p_write,p_read", [(0.9, 0.3), (0.3, 0.9), (1, 1)])
def test_no_read_during_write(depth, margin, p_write, p_read, monkeypatch):
    """The memory's UnguardedReadPort never reads a word in the cycle it is written: with
    collisions poisoned (the word inverted) the queue still matches SyncFIFOBuffered."""
    monkeypatch.setattr(UnguardedReadPort, "poison", True)
    bad, taken = run(depth, margin, p_write, p_read, seed=depth * 11 + int(10 * p_read))
    assert bad == []
    assert len(taken) > 50


@pytest.mark.parametrize("poison", [False, True])
def test_poison_inverts_a_collision(poison, monkeypatch):
    """A read at the address written at the same edge registers the old word, or (poison)
    its inverse; other reads are not touched; with ``en`` low the register holds."""
    monkeypatch.setattr(UnguardedReadPort, "poison", poison)
    m = Module()
    m.submodules.mem = mem = memory.Memory(shape=8, depth=4, init=[1, 2, 3, 4],
                                           attrs=NO_RW_CHECK)
    w = mem.write_port()
    r = UnguardedReadPort(m, mem, "r")
    seen = []

    async def bench(ctx):
        # (write addr, data, en; read addr, en) per edge
        for wa, wd, we, ra, re in [(0, 9, 1, 1, 1), (2, 7, 1, 2, 1), (3, 5, 1, 2, 1),
                                   (2, 6, 1, 2, 0), (0, 0, 0, 2, 1)]:
            ctx.set(w.addr, wa)
            ctx.set(w.data, wd)
            ctx.set(w.en, we)
            ctx.set(r.addr, ra)
            ctx.set(r.en, re)
            await ctx.tick()
            seen.append(ctx.get(r.data))

    simulate(m, bench)
    hit = 3 ^ 0xff if poison else 3          # the old word 3 of address 2, or its inverse
    assert seen == [2, hit, 7, 7, 6]     # (edge 4: a collision, but en low: held)


def test_bad_parameters():
    with pytest.raises(ValueError, match="depth = 1 is not allowed: at least 2"):
        RegisteredFIFO(width=4, depth=1)
    with pytest.raises(ValueError, match=r"margin = 2 is not allowed: 0 \.\. depth - 3 = 1"):
        RegisteredFIFO(width=4, depth=4, margin=2)


def run_timed(depth, head, p_write, p_read, seed, cycles=1500):
    """Drive a RegisteredFIFO (``head`` or not) with random writes (where ``w_rdy``) and
    reads; returns the cycles where it disagreed with a model of its timing, and the entries
    taken. The model: the entry k, written in cycle w_k, can be taken from cycle
    max(w_k + L, t + 1) on (L = 2, 3 with a head; t the cycle in which entry k - 1 was
    taken); ``empty`` is level == 0 and ``w_rdy`` is level - (the head's entry) < depth;
    ``empty_next`` and ``r_rdy_next`` are the next cycle's ``empty`` and ``r_rdy``."""
    m = Module()
    m.submodules.dut = dut = RegisteredFIFO(width=8, depth=depth, head=head)
    lat = 2 + head
    rng = random.Random(seed)
    bad, written, taken = [], [], []          # written: (cycle, data)
    state = {"free_from": 0, "next": None}    # first cycle the next entry may be taken

    async def bench(ctx):
        for cycle in range(cycles):
            w_en, r_en, data = rng.random() < p_write, rng.random() < p_read, rng.randrange(256)
            ctx.set(dut.w_en, w_en)
            ctx.set(dut.r_en, r_en)
            ctx.set(dut.w_data, data)
            level = len(written) - len(taken)
            k = len(taken)                                # the oldest entry not taken
            ready = k < len(written) and cycle >= max(written[k][0] + lat, state["free_from"])
            got = {"r_rdy": ctx.get(dut.r_rdy), "empty": ctx.get(dut.empty),
                   "w_rdy": ctx.get(dut.w_rdy), "level": ctx.get(dut.level)}
            want = {"r_rdy": int(ready), "empty": int(level == 0),
                    "w_rdy": int(level - (head and ready) < depth), "level": level}
            if state["next"] is not None:
                got["prev_next"], want["prev_next"] = state["next"], (want["empty"],
                                                                      want["r_rdy"])
            if got["r_rdy"] and ready:
                got["r_data"], want["r_data"] = ctx.get(dut.r_data), written[k][1]
            if got != want:
                bad.append((cycle, got, want))
            state["next"] = (ctx.get(dut.empty_next), ctx.get(dut.r_rdy_next))
            if r_en and ready:
                taken.append(written[k][1])
                state["free_from"] = cycle + 1
            if w_en and got["w_rdy"]:
                written.append((cycle, data))
            await ctx.tick()

    simulate(m, bench)
    return bad, taken


@pytest.mark.parametrize("head", [False, True])
@pytest.mark.parametrize("depth", [2, 5, 8])
@pytest.mark.parametrize("p_write,p_read", [(0.9, 0.3), (0.3, 0.9), (0.6, 0.6), (1, 1)])
def test_timing_model(head, depth, p_write, p_read):
    """Both queues (with and without a head) against the model of their timing: every
    entry taken in the first cycle the model allows, in order, and the flags (a head adds
    one edge to an entry's way through an empty queue and one entry to the room)."""
    bad, taken = run_timed(depth, head, p_write, p_read, seed=depth * 13 + 3 * head
                           + int(10 * p_write))
    assert bad == []
    assert len(taken) > 50
