"""RoundingDivider in the Amaranth simulator against golden.rdiv."""

import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.sim import Simulator

from hamattn import golden
from hamattn.rtl import RoundingDivider, Timing
from hamattn.rtl.divider import divider_latency
from hamattn.rtl.plan import signed_width, unsigned_width

from hamattn.verif.streams import run_stream

# (elements, q_bits = w, largest den, lanes): den widths from 1 bit to wide ones; folded
# corners (issue 8): lanes = 1, a divisor and a non-divisor of the element count
CORNERS = {"w2_den1": (1, 2, 1, 1), "w2_den7": (3, 2, 7, 3), "w8_den12": (4, 8, 4095, 4),
           "w16_den20": (2, 16, (1 << 20) - 1, 2), "w16_den48": (2, 16, (1 << 48) - 1, 2),
           "w2_den7_P1": (3, 2, 7, 1), "w8_den12_P2": (4, 8, 4095, 2),
           "w8_den12_P3": (7, 8, 4095, 3), "w16_den20_P1": (5, 16, (1 << 20) - 1, 1)}


@pytest.mark.parametrize("corner", list(CORNERS))
@pytest.mark.parametrize("pattern", ["full_rate", "random_handshake"])
def test_divider_matches_golden(corner, pattern):
    lanes, qb, dmax, P = CORNERS[corner]
    seed = sum(map(ord, corner))
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (qb - 1)), (1 << (qb - 1)) - 1
    num_w = signed_width(lo * dmax, -lo * dmax)
    den_w = unsigned_width(dmax)
    count = 16
    cases = []
    for i in range(count):
        den = int(rng.integers(1, dmax + 1)) if i > 1 else (1 if i == 0 else dmax)
        # any num in [lo·den, hi·den] rounds into [lo, hi]; exact halves included
        nums = [int(rng.integers(lo * den, hi * den + 1)) for _ in range(lanes)]
        if i == 2:
            nums = [lo * den, hi * den][:lanes] + [den // 2] * max(0, lanes - 2)
        cases.append((nums, den))
    want = [tuple(int(x) for x in golden.rdiv(np.array(n, dtype=object), np.array(d)))
            for n, d in cases]
    dut = RoundingDivider(lanes, num_w, den_w, qb, tag_shape=unsigned(5), lanes=P)
    p = (1.0, 1.0) if pattern == "full_rate" else (0.5, 0.5)
    run = run_stream(dut, [{"num": n, "den": d, "tag": i} for i, (n, d) in enumerate(cases)],
                     seed=seed, p_in=p[0], p_out=p[1],
                     convert=lambda c: (tuple(int(c.q[e]) for e in range(lanes)), int(c.tag)))
    assert run.outputs == list(zip(want, range(count))), f"seed {seed}"
    if pattern == "full_rate":
        lat = divider_latency(qb, -(-lanes // P))
        assert [o - i for i, o in zip(run.in_cycles, run.out_cycles)] == [lat] * count
        assert [b - a for a, b in zip(run.in_cycles, run.in_cycles[1:])] == \
            [dut.interval.fixed] * (count - 1)
        assert dut.latency == dut.interval == Timing(lat)


def test_divider_half_cases():
    """Exact halves round away from zero: 5/2 -> 3, -5/2 -> -3, 1/2 -> 1, -1/2 -> -1."""
    cases = [([5, -5, 1, -1], 2), ([4, -4, 2, -2], 3)]
    dut = RoundingDivider(4, 8, 3, 4)
    run = run_stream(dut, [{"num": n, "den": d} for n, d in cases],
                     convert=lambda c: [int(c.q[e]) for e in range(4)])
    assert run.outputs == [[3, -3, 1, -1], [1, -1, 1, -1]]


def test_divider_refuses_lanes_out_of_range():
    with pytest.raises(ValueError, match=r"lanes = 5 is not allowed: 1 .. elements = 4"):
        RoundingDivider(4, 8, 3, 4, lanes=5)


@pytest.mark.parametrize("corner", ["w2_den7_P1", "w8_den12_P2", "w8_den12_P3",
                                    "w16_den20_P1"])
@pytest.mark.parametrize("pattern", ["full_rate", "random_handshake"])
def test_grouped_divider_matches_golden(corner, pattern):
    """Grouped input (a folded linear core): G beats of P nums per division, ``last`` on the
    last; the division starts with the last beat and its result leaves divider_latency edges
    after it (full rate). The next division's beats follow its output."""
    elements, qb, dmax, P = CORNERS[corner]
    G = -(-elements // P)
    seed = sum(map(ord, corner + pattern))
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (qb - 1)), (1 << (qb - 1)) - 1
    num_w = signed_width(lo * dmax, -lo * dmax)
    cases = []
    for i in range(12):
        den = int(rng.integers(1, dmax + 1)) if i else dmax
        cases.append(([int(rng.integers(lo * den, hi * den + 1)) for _ in range(elements)], den))
    want = [tuple(int(x) for x in golden.rdiv(np.array(n, dtype=object), np.array(d)))
            for n, d in cases]
    dut = RoundingDivider(elements, num_w, unsigned_width(dmax), qb, tag_shape=unsigned(5),
                          lanes=P, grouped=True)
    p_in, p_out = (1.0, 1.0) if pattern == "full_rate" else (0.5, 0.4)
    got, last_in, outs = [], [], []

    async def bench(ctx):
        k, beat, busy = 0, 0, False
        for cycle in range(200 * len(cases) * (G + 1) * (qb + 3)):
            send = k < len(cases) and not busy and rng.random() < p_in
            if send:
                nums, den = cases[k]
                group = (nums + [0] * (G * P - elements))[beat * P:(beat + 1) * P]
                ctx.set(dut.i.payload, {"num": group, "den": den, "last": beat == G - 1,
                                        "tag": k})
            ctx.set(dut.i.valid, send)
            rdy = rng.random() < p_out
            ctx.set(dut.o.ready, rdy)
            if send:
                assert ctx.get(dut.i.ready)
                if beat == G - 1:
                    last_in.append(cycle)
                    k, beat, busy = k + 1, 0, True
                else:
                    beat += 1
            if rdy and ctx.get(dut.o.valid):
                c = ctx.get(dut.o.payload)
                got.append((tuple(int(c.q[e]) for e in range(elements)), int(c.tag)))
                outs.append(cycle)
                busy = False
            if len(got) == len(cases):
                return
            await ctx.tick()
        raise AssertionError(f"timeout: {len(got)}/{len(cases)} out")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == list(zip(want, range(len(cases)))), f"seed {seed}"
    if pattern == "full_rate":
        assert [o - i for i, o in zip(last_in, outs)] == [dut.latency.fixed] * len(cases)
        assert dut.latency == Timing(divider_latency(qb, G))
