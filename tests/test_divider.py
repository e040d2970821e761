"""RoundingDivider in the Amaranth simulator against golden.rdiv: every pipeline shape (one
restoring step per stage up to one bit-serial stage), whole-vector and grouped input, back to
back at the divider's interval and under random back-pressure."""

import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.sim import Simulator

from hamattn import golden
from hamattn.config import CoreConfig
from hamattn.rtl import RoundingDivider
from hamattn.rtl.divider import (CHAIN_BITS, DividerPlan, divider_interval, divider_latency,
                                 divider_steps)
from hamattn.rtl.plan import signed_width, unsigned_width

from hamattn.verif.streams import run_stream

# (elements, q_bits = w, largest den, lanes): den widths from 1 bit to wide ones; folded
# corners (issue 8): lanes = 1, a divisor and a non-divisor of the element count
CORNERS = {"w2_den1": (1, 2, 1, 1), "w2_den7": (3, 2, 7, 3), "w8_den12": (4, 8, 4095, 4),
           "w16_den20": (2, 16, (1 << 20) - 1, 2), "w16_den48": (2, 16, (1 << 48) - 1, 2),
           "w2_den7_P1": (3, 2, 7, 1), "w8_den12_P2": (4, 8, 4095, 2),
           "w8_den12_P3": (7, 8, 4095, 3), "w16_den20_P1": (5, 16, (1 << 20) - 1, 1)}


def operands(elements, qb, dmax, count, rng):
    """``count`` (nums, den) whose quotients fit q_bits (nums in [lo·den, hi·den]): den = 1
    and den = dmax with the extreme nums lo·den and hi·den, exact halves (den even, |num| =
    m·den + den/2, which round away from zero), then random ones of either sign."""
    lo, hi = -(1 << (qb - 1)), (1 << (qb - 1)) - 1
    cases = []
    for i in range(count):
        den = [1, dmax, dmax, 1][i] if i < 4 else int(rng.integers(1, dmax + 1))
        if i < 2:
            nums = [[lo * den, hi * den][(i + e) % 2] for e in range(elements)]
        elif i < 4 or (i % 3 == 1 and dmax > 1):
            den = den - den % 2 if den > 1 else 2 if dmax > 1 else 1
            m = rng.integers(0, hi, elements) if hi > 0 else np.zeros(elements, int)
            sign = rng.choice([-1, 1], elements)
            nums = [int(s) * (int(x) * den + den // 2) for s, x in zip(sign, m)]
        else:
            nums = [int(rng.integers(lo * den, hi * den + 1)) for _ in range(elements)]
        cases.append((nums, den))
    return cases


def expected(cases):
    return [tuple(int(x) for x in golden.rdiv(np.array(n, dtype=object), np.array(d)))
            for n, d in cases]


def widths(qb, dmax):
    lo = -(1 << (qb - 1))
    return signed_width(lo * dmax, -lo * dmax), unsigned_width(dmax)


def full_depth(dut):
    """Results to hold so that a ready consumer never throttles the input: a division is
    held from its (first) beat to its output, (G-1)·steps edges more when grouped."""
    span = dut.latency.fixed + (dut.groups - 1) * dut.steps * dut.grouped
    return span // dut.interval.fixed + 1


def step_choices(qb):
    """One step per stage, two, a non-divisor of q_bits, and one bit-serial stage."""
    return sorted({1, min(2, qb), min(3, qb), qb})


@pytest.mark.parametrize("corner", list(CORNERS))
@pytest.mark.parametrize("pattern", ["full_rate", "random_handshake", "slow_output",
                                     "one_at_a_time"])
def test_divider_matches_golden(corner, pattern):
    """Whole-vector input, for every steps choice: at full rate (depth for every division in
    flight) the divisions enter back to back every ``interval`` edges and each result
    leaves ``latency`` edges after its input; with random valid/ready and a small depth, or
    a slow consumer that fills a deep queue (block RAM), the credits hold the input back and
    the results are the same."""
    elements, qb, dmax, P = CORNERS[corner]
    num_w, den_w = widths(qb, dmax)
    for steps in step_choices(qb):
        seed = sum(map(ord, corner + pattern)) + steps
        cases = operands(elements, qb, dmax, 24, np.random.default_rng(seed))
        probe = RoundingDivider(elements, num_w, den_w, qb, lanes=P, steps=steps)
        depth = {"full_rate": full_depth(probe), "random_handshake": 2,
                 "slow_output": max(3, full_depth(probe)), "one_at_a_time": 1}[pattern]
        dut = RoundingDivider(elements, num_w, den_w, qb, tag_shape=unsigned(5), lanes=P,
                              steps=steps, depth=depth)
        p_in, p_out = {"random_handshake": (0.5, 0.5), "slow_output": (1.0, 0.3)}.get(
            pattern, (1.0, 1.0))
        run = run_stream(dut, [{"num": n, "den": d, "tag": i} for i, (n, d) in enumerate(cases)],
                         seed=seed, p_in=p_in, p_out=p_out,
                         max_cycles=500 + 8 * len(cases) * (dut.latency.fixed + dut.interval.fixed),
                         convert=lambda c: (tuple(int(c.q[e]) for e in range(elements)),
                                            int(c.tag)))
        assert run.outputs == list(zip(expected(cases), range(len(cases)))), (steps, seed)
        G = -(-elements // P)
        wide = max(num_w, den_w) > CHAIN_BITS          # (X's adder split: a sign stage)
        assert dut.latency.fixed == divider_latency(qb, G, steps,
                                                    x_bits=max(num_w, den_w)) == \
            qb + 4 + wide + (G - 1) * steps
        assert dut.interval.fixed == divider_interval(G, steps) == G * steps
        if pattern in ("full_rate", "one_at_a_time"):
            lat = [o - i for i, o in zip(run.in_cycles, run.out_cycles)]
            gaps = [b - a for a, b in zip(run.in_cycles, run.in_cycles[1:])]
            assert lat == [dut.latency.fixed] * len(cases), steps
            # depth 1: the next division enters as the result leaves
            want = dut.interval.fixed if pattern == "full_rate" else dut.latency.fixed
            assert gaps == [want] * (len(cases) - 1), steps


def test_divider_half_cases():
    """Exact halves round away from zero: 5/2 -> 3, -5/2 -> -3, 1/2 -> 1, -1/2 -> -1."""
    cases = [([5, -5, 1, -1], 2), ([4, -4, 2, -2], 3)]
    dut = RoundingDivider(4, 8, 3, 4)
    run = run_stream(dut, [{"num": n, "den": d} for n, d in cases],
                     convert=lambda c: [int(c.q[e]) for e in range(4)])
    assert run.outputs == [[3, -3, 1, -1], [1, -1, 1, -1]]


@pytest.mark.parametrize("kwargs,message", [
    (dict(lanes=5), r"lanes = 5 is not allowed: 1 .. elements = 4"),
    (dict(steps=0), r"steps = 0 is not allowed: 1 .. q_bits = 4"),
    (dict(steps=5), r"steps = 5 is not allowed: 1 .. q_bits = 4"),
    (dict(depth=0), r"depth = 0 is not allowed: at least 1")])
def test_divider_refuses_out_of_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RoundingDivider(4, 8, 3, 4, **kwargs)


def test_stage_steps_cover_q_bits():
    for qb in range(2, 17):
        for steps in range(1, qb + 1):
            dut = RoundingDivider(1, 8, 3, qb, steps=steps)
            assert sum(dut.stage_steps) == qb and max(dut.stage_steps) == steps
            assert len(dut.stage_steps) == -(-qb // steps)


def run_grouped(dut, cases, gap, p_in, p_out, rng):
    """Offer each division as G beats of P nums, ``last`` on the last, ``gap`` edges apart
    at least (the divider's contract: ``steps``), the first beat only when ``i.ready``.
    Returns (outputs, cycles of the last beats, output cycles)."""
    G, P, E = dut.groups, dut.lanes, dut.elements
    got, last_in, outs = [], [], []

    async def bench(ctx):
        k, beat, wait = 0, 0, 0
        for cycle in range(100 * len(cases) * (G * gap + dut.latency.fixed)):
            send = k < len(cases) and wait == 0 and (beat > 0 or rng.random() < p_in)
            if send:
                nums, den = cases[k]
                group = (nums + [0] * (G * P - E))[beat * P:(beat + 1) * P]
                ctx.set(dut.i.payload, {"num": group, "den": den, "last": beat == G - 1,
                                        "tag": k})
            ctx.set(dut.i.valid, send)
            rdy = rng.random() < p_out
            ctx.set(dut.o.ready, rdy)
            wait = max(0, wait - 1)
            if send and ctx.get(dut.i.ready):
                wait = gap - 1
                if beat == G - 1:
                    last_in.append(cycle)
                    k, beat = k + 1, 0
                else:
                    beat += 1
            elif send:
                # only the first beat of a division may wait (for a credit)
                assert beat == 0, f"beat {beat} refused at cycle {cycle}"
            if rdy and ctx.get(dut.o.valid):
                c = ctx.get(dut.o.payload)
                got.append((tuple(int(c.q[e]) for e in range(E)), int(c.tag)))
                outs.append(cycle)
            if len(got) == len(cases):
                return
            await ctx.tick()
        raise AssertionError(f"timeout: {len(got)}/{len(cases)} out")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, last_in, outs


@pytest.mark.parametrize("corner", ["w2_den7_P1", "w8_den12_P2", "w8_den12_P3",
                                    "w16_den20_P1"])
@pytest.mark.parametrize("pattern", ["full_rate", "random_handshake"])
def test_grouped_divider_matches_golden(corner, pattern):
    """Grouped input (a folded linear core): G beats of P nums per division, ``last`` on the
    last, at least ``steps`` edges apart (a linear core's R row blocks per group). Full rate:
    the beats come back to back (every ``steps`` edges, one division per ``interval``) and
    each result leaves ``latency`` = q_bits + 4 (+ 1 where X is wider than CHAIN_BITS) edges
    after its last beat; random valid on the first beat and random ready give the same
    results."""
    elements, qb, dmax, P = CORNERS[corner]
    G = -(-elements // P)
    num_w, den_w = widths(qb, dmax)
    for steps in step_choices(qb):
        seed = sum(map(ord, corner + pattern)) + steps
        rng = np.random.default_rng(seed)
        cases = operands(elements, qb, dmax, 16, rng)
        probe = RoundingDivider(elements, num_w, den_w, qb, lanes=P, grouped=True,
                                steps=steps)
        # (random: results wait in the queue of groups; 2 or 3 divisions held)
        depth = full_depth(probe) if pattern == "full_rate" else 2 + steps % 2
        dut = RoundingDivider(elements, num_w, den_w, qb, tag_shape=unsigned(5), lanes=P,
                              grouped=True, steps=steps, depth=depth)
        p_in, p_out = (1.0, 1.0) if pattern == "full_rate" else (0.5, 0.4)
        got, last_in, outs = run_grouped(dut, cases, steps, p_in, p_out, rng)
        assert got == list(zip(expected(cases), range(len(cases)))), (steps, seed)
        wide = max(num_w, den_w) > CHAIN_BITS          # (X's adder split: a sign stage)
        assert dut.latency.fixed == divider_latency(qb, G, steps, grouped=True,
                                                    x_bits=max(num_w, den_w)) == \
            qb + 4 + wide
        if pattern == "full_rate":
            assert [o - i for i, o in zip(last_in, outs)] == [dut.latency.fixed] * len(cases)
            assert [b - a for a, b in zip(last_in, last_in[1:])] == \
                [dut.interval.fixed] * (len(cases) - 1)


@pytest.mark.parametrize("q_bits,groups,interval,steps", [
    (8, 1, 1, 1), (8, 1, 7, 4), (8, 1, 8, 8), (8, 1, 100, 8), (8, 4, 8, 2), (8, 4, 7, 1),
    (8, 32, 128, 4), (8, 32, 96, 3), (16, 2, 11, 4), (2, 3, 1, 1)])
def test_divider_steps(q_bits, groups, interval, steps):
    """The most steps per stage that keeps groups·steps within the interval, balanced over
    the stages (7 allowed of 8: two stages of 4)."""
    assert divider_steps(q_bits, groups, interval) == steps
    assert groups * steps <= max(interval, groups)


@pytest.mark.parametrize("mode,fold", [
    (mode, fold) for mode in ("linear", "topk", "hsoftmax")
    for fold in [{}, dict(lanes=4), dict(lanes=1), dict(lanes=3)]] + [
    ("linear", dict(lanes=3, rows=5)), ("linear", dict(lanes=1, rows=4))])
def test_division_never_sets_the_query_interval(mode, fold):
    """q_interval is the value path's (linear: the state read, G·R) or the hash's, never
    the divider's."""
    cfg = CoreConfig.create(d=16, b=16, N=32, mode=mode, **fold)
    plan = cfg.plan
    engine, hsh = plan.value.interval.fixed, plan.hash.interval.fixed
    assert plan.divider.interval.fixed <= max(engine, hsh)
    assert cfg.q_interval["fixed"] == max(engine, hsh)
    if mode == "linear":
        assert cfg.q_interval == {"fixed": plan.value.state_steps, "per_key": 0}


def run_held_stream(dut, cases, seed):
    """A whole-vector held-den divider's (quotients, tag) for ``cases``, each offered as
    soon as it is ready, to a consumer ready one edge in two."""
    return run_stream(dut, [{"num": n, "den": d, "tag": i} for i, (n, d) in enumerate(cases)],
                      seed=seed, p_in=1.0, p_out=0.5,
                      max_cycles=500 + 8 * len(cases) * dut.latency.fixed,
                      convert=lambda c: (tuple(int(c.q[e]) for e in range(dut.elements)),
                                         int(c.tag))).outputs


@pytest.mark.parametrize("corner", list(CORNERS))
@pytest.mark.parametrize("grouped", [False, True])
def test_held_den_divider(corner, grouped):
    """``held_den`` (den held once for every stage, planned when divisions come at least a
    latency apart): at depth 1 the next division enters only as the result leaves, the gap
    the plan requires; with a consumer ready one edge in two, the results are golden's."""
    elements, qb, dmax, P = CORNERS[corner]
    num_w, den_w = widths(qb, dmax)
    for steps in step_choices(qb):
        seed = sum(map(ord, corner)) + steps + grouped
        rng = np.random.default_rng(seed)
        cases = operands(elements, qb, dmax, 12, rng)
        dut = RoundingDivider(elements, num_w, den_w, qb, tag_shape=unsigned(5), lanes=P,
                              grouped=grouped, steps=steps, held_den=True)
        assert dut.plan.held_den
        if grouped:
            got, _, _ = run_grouped(dut, cases, steps, 1.0, 0.5, rng)
        else:
            got = run_held_stream(dut, cases, seed)
        assert got == list(zip(expected(cases), range(len(cases)))), (steps, seed)


@pytest.mark.parametrize("grouped", [False, True])
def test_held_den_needs_a_gap_of_a_latency(grouped):
    """keeping_up holds den only when the gap between divisions covers the latency."""
    lat = divider_latency(8, 4, 1, grouped, x_bits=20)
    args = (16, 20, 12, 8, 4, grouped, 4)
    assert not DividerPlan.keeping_up(*args).held_den
    assert not DividerPlan.keeping_up(*args, gap=lat - 1).held_den
    assert DividerPlan.keeping_up(*args, gap=lat).held_den


@pytest.mark.parametrize("interval", [8, 32, 128])
def test_overlapping_grouped_divisions_take_a_step_per_stage(interval):
    """A grouped divider whose den is not held (a folded linear core: divisions overlap)
    gets one restoring step per stage whatever its interval allows (no start select, step
    counter or operand select at a carry chain), its stages carrying ~den; a held den
    (divisions a latency apart) keeps the most steps per stage its interval allows, and so
    does a whole-vector input. The latency of a grouped input is q_bits + 4, one more where
    X is wider than CHAIN_BITS (here: a sign stage adds its low half)."""
    args = (32, 23, 15, 8, 1)
    overlapping = DividerPlan.keeping_up(*args, True, interval)
    assert (overlapping.steps, overlapping.held_den) == (1, False)
    dut = overlapping.component()
    assert dut.complemented_den and not dut.nonrestoring
    assert overlapping.latency.fixed == 8 + 4 + 1
    held = DividerPlan.keeping_up(*args, True, interval, gap=10 ** 6)
    assert held.held_den and held.steps == divider_steps(8, 32, interval)
    assert held.component().nonrestoring == (held.steps > 1)
    assert held.latency.fixed == 8 + 4 + 1
    assert not held.component().complemented_den
    assert not held.component().selects_after
    # (a whole-vector input, G = 4: its latency depends on the steps, which stay the most)
    whole = DividerPlan.keeping_up(16, 20, 12, 8, 4, False, interval)
    assert whole.steps == divider_steps(8, 4, interval)
    # the non-restoring stages of several steps remain for a divider built with them
    assert RoundingDivider(32, 23, 15, 8, lanes=1, grouped=True, steps=4).nonrestoring


def run_held(dut, cases, hold, p_out, rng):
    """Offer each division once the previous one's payload is no longer held: a payload
    stays ``hold`` edges after its transfer, then changes (to the next division's, or to
    garbage after the last), so a serial divider must have read it by then. Returns
    (outputs, input cycles, output cycles)."""
    E = dut.elements
    got, ins, outs = [], [], []

    async def bench(ctx):
        i, since = 0, None                  # cycles since the last transfer
        for cycle in range(100 * len(cases) * dut.latency.fixed):
            since = None if since is None else since + 1
            free = since is None or since > hold
            if free and i < len(cases):
                ctx.set(dut.i.payload, {"num": cases[i][0], "den": cases[i][1]})
            elif free:
                ctx.set(dut.i.payload, {"num": [int(x) for x in rng.integers(-9, 9, E)],
                                        "den": int(rng.integers(1, 3))})
            ctx.set(dut.i.valid, int(free and i < len(cases)))
            ready = int(rng.random() < p_out)
            ctx.set(dut.o.ready, ready)
            if ctx.get(dut.o.valid) and ready:
                got.append(tuple(int(x) for x in ctx.get(dut.o.payload.q)))
                outs.append(cycle)
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                ins.append(cycle)
                i, since = i + 1, 0
            if len(got) == len(cases):
                return
            await ctx.tick()
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, ins, outs


@pytest.mark.parametrize("corner", list(CORNERS))
@pytest.mark.parametrize("p_out,depth", [(1.0, 3), (0.4, 3), (0.4, 2)])
def test_serial_divider(corner, p_out, depth):
    """``serial`` (one bit-serial stage of L lanes loading each of the G groups of a held
    input in turn, no form stage): golden's results whatever the consumer; at full rate each
    result leaves ``latency`` = G·(q_bits+1) + 1 edges after its input and the divisions
    enter ``interval`` = G·(q_bits+1) apart; the input is read only within ``hold`` =
    (G-1)·(q_bits+1) edges of its transfer. Depth 2 with G = 1 is the output pair
    (:attr:`~RoundingDivider.keeps_pair`, the default ``topk``'s)."""
    elements, qb, dmax, _ = CORNERS[corner]
    num_w, den_w = widths(qb, dmax)
    for G in sorted({1, 2, elements}):
        L = -(-elements // G)
        if -(-elements // L) != G:
            continue
        hold = (G - 1) * (qb + 1)
        plan = DividerPlan.keeping_up(elements, num_w, den_w, qb, elements, False,
                                      G * (qb + 1), hold=hold)
        assert (plan.serial, plan.lanes, plan.groups) == (True, L, G)
        assert plan.latency.fixed == G * (qb + 1) + 1 and plan.interval.fixed == G * (qb + 1)
        seed = sum(map(ord, corner)) + G + int(10 * p_out) + depth
        rng = np.random.default_rng(seed)
        cases = operands(elements, qb, dmax, 16, rng)
        dut = plan.component(depth=depth)
        assert dut.keeps_pair == (G == 1 and depth == 2)
        got, ins, outs = run_held(dut, cases, hold, p_out, rng)
        assert got == expected(cases), (G, seed)
        if p_out == 1.0:
            assert [o - i for i, o in zip(ins, outs)] == [plan.latency.fixed] * len(cases)
            assert {b - a for a, b in zip(ins, ins[1:])} == {plan.interval.fixed}


def test_serial_divider_needs_a_held_input():
    """keeping_up plans a serial divider only for a held whole-vector input, of the most
    groups that its interval and the hold allow; a RoundingDivider refuses serial otherwise."""
    args = (16, 12, 4, 8, 16, False)
    assert not DividerPlan.keeping_up(*args, 21).serial
    assert DividerPlan.keeping_up(*args, 21, hold=9).lanes == 8
    assert DividerPlan.keeping_up(*args, 21, hold=8).lanes == 16
    assert DividerPlan.keeping_up(*args, 40, hold=100).lanes == 4     # G = 4: 36 edges
    assert not DividerPlan.keeping_up(*args, 8, hold=100).serial     # a group needs 9 edges
    assert not DividerPlan.keeping_up(16, 12, 4, 8, 4, True, 21, hold=100).serial
    with pytest.raises(ValueError, match="serial"):
        RoundingDivider(16, 12, 4, 8, lanes=8, steps=4, held_den=True, serial=True)


# (corner, parts): every corner with 2 and 3 parts where its remainder (den width + 1 bits)
# has at least as many bits as parts; ``make test`` takes 3 parts on THREE_PARTS only (the
# others are slow: ``make sweep``)
THREE_PARTS = ("w2_den7", "w8_den12_P3")
SPLITS = [pytest.param(corner, parts, id=f"{corner}-{parts}",
                       marks=() if parts == 2 or corner in THREE_PARTS else pytest.mark.slow)
          for corner, (_, qb, dmax, _) in CORNERS.items() for parts in (2, 3)
          if parts <= widths(qb, dmax)[1] + 1]


@pytest.mark.parametrize("corner,parts", SPLITS)
@pytest.mark.parametrize("grouped", [False, True])
def test_split_steps(corner, grouped, parts):
    """``parts`` (a held den's steps split into parts of the remainder's adder, one edge
    each): golden's results with a consumer ready one edge in two; grouped, with a ready
    consumer, each result leaves ``latency`` = q_bits·parts + 4 edges after its last beat
    (+ 1 where X is wider than CHAIN_BITS)
    (beats ``steps·parts`` edges apart)."""
    elements, qb, dmax, P = CORNERS[corner]
    num_w, den_w = widths(qb, dmax)
    for steps in sorted({min(2, qb), min(3, qb), qb} - {1}):
        if (qb % steps) == 1:
            continue                        # (a last stage of one step: not split)
        seed = sum(map(ord, corner)) + steps + grouped + parts
        rng = np.random.default_rng(seed)
        cases = operands(elements, qb, dmax, 12, rng)
        dut = RoundingDivider(elements, num_w, den_w, qb, tag_shape=unsigned(5), lanes=P,
                              grouped=grouped, steps=steps, held_den=True, parts=parts)
        wide = max(num_w, den_w) > CHAIN_BITS          # (X's adder split: a sign stage)
        assert dut.latency.fixed == divider_latency(qb, dut.groups, steps, grouped,
                                                    parts=parts, x_bits=max(num_w, den_w))
        assert dut.interval.fixed == dut.groups * steps * parts
        if grouped:
            got, _, _ = run_grouped(dut, cases, steps * parts, 1.0, 0.5, rng)
            assert got == list(zip(expected(cases), range(len(cases)))), (steps, seed)
            got, last_in, outs = run_grouped(dut, cases, steps * parts, 1.0, 1.0, rng)
            assert dut.latency.fixed == qb * parts + 4 + wide
            assert [o - i for i, o in zip(last_in, outs)] == [dut.latency.fixed] * len(cases)
        else:
            got = run_held_stream(dut, cases, seed)
        assert got == list(zip(expected(cases), range(len(cases)))), (steps, seed)


def _alumacc_netlist(dut, tmp_path):
    """The flattened Yosys JSON module of ``dut`` after ``alumacc`` (adders as ``$alu``)."""
    import json
    from amaranth.back import rtlil
    from hamattn.synth.tools import run_yosys

    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "top.il").write_text(rtlil.convert(dut, name="top"))
    run_yosys("read_rtlil top.il\nhierarchy -top top\nproc\nflatten\nopt\nwreduce\n"
              "alumacc\nopt\nopt_dff\nopt_clean\nwrite_json net.json\n",
              cwd=tmp_path, name="synth")
    return json.loads((tmp_path / "net.json").read_text())["modules"]["top"]


def _adder_inputs(dut, tmp_path, lines):
    """The drivers of the operand bits (A, B, CI, BI) of every adder (Yosys ``$alu`` after
    ``alumacc``) of ``dut`` made at divider.py lines ``lines``: a set of driver cell types
    (``const`` for a constant bit)."""
    mod = _alumacc_netlist(dut, tmp_path)
    driver = {}
    for cell in mod["cells"].values():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "output":
                driver.update({b: cell["type"] for b in bits})
    found, kinds = 0, set()
    for cell in mod["cells"].values():
        src = cell["attributes"].get("src", "")
        if cell["type"] != "$alu" or not any(f"divider.py:{n}" in src for n in lines):
            continue
        found += 1
        for port in ("A", "B", "CI", "BI"):
            kinds |= {"const" if isinstance(b, str) else driver.get(b, "port")
                      for b in cell["connections"].get(port, [])}
    return found, kinds


@pytest.mark.parametrize("parts", [2, 3])
def test_split_adders_take_flip_flops(parts, tmp_path):
    """Every adder of a split step (:meth:`RoundingDivider._split_stage`) takes its operands
    and carry in straight from flip-flops (or constants): no operand select and no XOR with
    the remainder's sign in front of a carry chain (the iCEBreaker ``hsoftmax`` divider's
    ``stage1_neg0_r`` → ``stage1_carry0_1``, 18.0 ns)."""
    import inspect
    dut = RoundingDivider(4, 33, 25, 8, tag_shape=unsigned(3), lanes=1, grouped=True,
                          steps=4, held_den=True, parts=parts, depth=3)
    code, first = inspect.getsourcelines(RoundingDivider._split_stage)
    found, kinds = _adder_inputs(dut, tmp_path, range(first, first + len(code)))
    # part 0's two adders and one per other part, per lane (and the stage's count)
    assert found >= parts + 1, found
    assert all(k == "const" or "dff" in k.lower() for k in kinds), kinds


def test_keeping_up_splits_few_lanes_of_wide_remainders():
    """keeping_up splits a held den's steps (parts = ceil((den_width + 1) / CHAIN_BITS))
    only where all lanes' remainders hold at most SPLIT_BITS bits, the interval leaves
    stages of 2 steps at least and the gap covers the longer latency."""
    from hamattn.rtl.divider import CHAIN_BITS, SPLIT_BITS
    dw = 2 * CHAIN_BITS - 7                     # (2 parts)
    P = SPLIT_BITS // (dw + 1)
    I = -(-32 // P) * 11                        # (groups 11 edges apart, as hsoftmax's)
    plan = DividerPlan.keeping_up(32, dw + 8, dw, 8, P, True, I, gap=10 ** 6)
    assert (plan.parts, plan.steps, plan.held_den) == (2, 4, True)
    assert plan.latency.fixed == 8 * 2 + 4 + 1 and plan.interval.fixed == plan.groups * 4 * 2
    wide = DividerPlan.keeping_up(32, dw + 8, dw, 8, P + 1, True, I, gap=10 ** 6)
    assert (wide.parts, wide.steps) == (1, 8)
    narrow = DividerPlan.keeping_up(32, 20, CHAIN_BITS - 1, 8, 1, True, 352, gap=10 ** 6)
    assert narrow.parts == 1
    short_gap = DividerPlan.keeping_up(32, dw + 8, dw, 8, P, True, I, gap=13)
    assert short_gap.held_den and short_gap.parts == 1


def _ready_fanout(dut, tmp_path):
    """The flip-flop bits and memory ports that ``o.ready`` reaches through logic alone in
    ``dut`` synthesized by Yosys (``synth -flatten``): a list of (cell type, cell name)."""
    import json
    from amaranth.back import rtlil
    from hamattn.synth.tools import run_yosys

    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "top.il").write_text(rtlil.convert(dut, name="top"))
    run_yosys("read_rtlil top.il\nsynth -flatten -top top\nwrite_json net.json\n",
              cwd=tmp_path, name="synth")
    mod = json.loads((tmp_path / "net.json").read_text())["modules"]["top"]
    frontier = set(mod["ports"]["o__ready"]["bits"])
    seen, sinks = set(frontier), []
    while frontier:
        reach = set()
        for name, cell in mod["cells"].items():
            ins = [b for p, bits in cell["connections"].items()
                   if cell["port_directions"].get(p) == "input" for b in bits]
            if not frontier & set(ins):
                continue
            if "DFF" in cell["type"] or "mem" in cell["type"]:
                sinks.append((cell["type"], name))
                continue
            for p, bits in cell["connections"].items():
                if cell["port_directions"].get(p) == "output":
                    reach |= set(bits) - seen
        seen |= reach
        frontier = reach
    return sinks


@pytest.mark.parametrize("depth", [2, 3])
def test_grouped_output_ready_reaches_only_flops(depth, tmp_path):
    """``ready_to_flops`` (grouped, a queue of groups, G > 1): the consumer's ready reaches
    no slot enable, no queue and no memory, only o.valid's flip-flop and the credits'
    thermometer (depth bits): 1 + depth flip-flop bits, while the whole-vector output with
    its queue behind the register reaches more (a queue's write)."""
    dut = RoundingDivider(8, 12, 4, 8, lanes=2, grouped=True, depth=depth)
    assert dut.ready_to_flops
    sinks = _ready_fanout(dut, tmp_path / "grouped")
    assert len(sinks) <= 1 + depth and not any("mem" in t for t, _ in sinks), sinks
    whole = RoundingDivider(8, 12, 4, 8, lanes=2, depth=depth)
    assert not whole.ready_to_flops
    assert len(_ready_fanout(whole, tmp_path / "whole")) > 1 + depth


@pytest.mark.parametrize("serial", [False, True])
def test_pair_output_ready_reaches_only_flops(serial, tmp_path):
    """``keeps_pair`` (one group, depth 2: the default config's dividers, whole-vector and
    serial): the consumer's ready reaches only o.valid's and keep_valid's flip-flops and the
    credits' thermometer (2 bits), no register enable; with depth 3 (a queue behind the
    output register) it reaches more."""
    def make(depth):
        if serial:
            plan = DividerPlan.keeping_up(8, 12, 4, 8, 8, False, 9, hold=0)
            assert plan.serial and plan.groups == 1
            return plan.component(depth=depth)
        return RoundingDivider(8, 12, 4, 8, depth=depth)
    dut = make(2)
    assert dut.keeps_pair and dut.ready_to_flops
    sinks = _ready_fanout(dut, tmp_path / "pair")
    assert len(sinks) <= 4 and not any("mem" in t for t, _ in sinks), sinks
    deeper = make(3)
    assert not deeper.ready_to_flops
    assert len(_ready_fanout(deeper, tmp_path / "queue")) > 4


def test_serial_divider_copies_held_den():
    """The serial divider keeps a copy of its held den per DEN_LANES lanes (tree.twin)."""
    from amaranth.back import rtlil
    from hamattn.rtl.divider import DEN_LANES
    plan = DividerPlan.keeping_up(16, 12, 4, 8, 16, False, 9, hold=8)
    assert plan.serial and plan.lanes == 16
    text = rtlil.convert(plan.component(depth=2), name="top")
    copies = {c for c in range(1, 16) if f"held_den{c} " in text or f"held_den{c}\n" in text}
    assert copies == set(range(1, -(-16 // DEN_LANES))), copies


def _adder_sinks(dut, tmp_path, lines, wider):
    """The cell types that the sum bits (Y) of every adder (Yosys ``$alu`` after
    ``alumacc``) of ``dut`` made at divider.py lines ``lines``, wider than ``wider`` bits,
    drive."""
    mod = _alumacc_netlist(dut, tmp_path)
    sinks = {}
    for cell in mod["cells"].values():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "input":
                for b in bits:
                    sinks.setdefault(b, set()).add(cell["type"])
    found, kinds = 0, set()
    for cell in mod["cells"].values():
        src = cell["attributes"].get("src", "")
        if (cell["type"] != "$alu" or not any(f"divider.py:{n}" in src for n in lines)
                or len(cell["connections"]["Y"]) <= wider):
            continue
        found += 1
        for b in cell["connections"]["Y"]:
            kinds |= sinks.get(b, set())
    return found, kinds


@pytest.mark.parametrize("parts", [2, 3])
def test_split_sums_end_at_flip_flops(parts, tmp_path):
    """Every adder of a split step (:meth:`RoundingDivider._split_stage`) ends at flip-flops:
    each family's sum bits and carry out are registers of their own (no select by the
    step's sign after a carry chain: the sign is known only at the end of the edge before,
    the iCEBreaker ``hsoftmax`` divider's ``stage0_opa0`` → ``stage0_r0``, 16.15 ns)."""
    import inspect
    dut = RoundingDivider(4, 33, 25, 8, tag_shape=unsigned(3), lanes=1, grouped=True,
                          steps=4, held_den=True, parts=parts, depth=3)
    code, first = inspect.getsourcelines(RoundingDivider._split_stage)
    # (not the stage's step counter, whose adder is a select's input)
    counter = (dut.steps * parts).bit_length() + 1
    found, kinds = _adder_sinks(dut, tmp_path, range(first, first + len(code)), counter)
    assert found >= 2 * parts, found
    assert kinds and all("dff" in k.lower() for k in kinds), kinds
