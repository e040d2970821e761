"""HashPlan and its components in the Amaranth simulator against golden.hash_codes:
HashProjection (lanes = d) and FoldedHashProjection (lanes P < d: one group of P elements
per cycle, consume-then-transfer)."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.sim import Simulator

from hamattn import CoreConfig, golden
from hamattn.rtl import FoldedHashProjection, HashProjection, Timing
from hamattn.rtl.hash import _members, group_select, row_terms
from hamattn.rtl.plan import csd_digits, tree_depth
from hamattn.rtl.tree import ADDER_TREES
from hamattn.verif.corners import in_quick_suite
from hamattn.verif.streams import run_stream


def _npz(tmp_path, name, **arrays):
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return str(path)


def wide_weights(tmp_path):
    rng = np.random.default_rng(11)
    W = rng.integers(-300, 301, (9, 4))
    W[0] = 0                                  # an all-zero row: y = 0
    theta = rng.integers(-500, 500, 9)
    theta[0] = 0                              # 0 >= 0: the bit is 1
    return dict(b=9, d=4, w=8, weights=_npz(tmp_path, "wide", W=W, theta=theta))


def asymmetric(tmp_path):
    rng = np.random.default_rng(12)
    W = rng.integers(-1, 2, (5, 3))
    Wq = rng.integers(-7, 8, (5, 3))
    return dict(b=5, d=3, w=4, weights=_npz(tmp_path, "asym", W=W, theta=np.zeros(5, int),
                                            Wq=Wq, thetaq=rng.integers(-3, 4, 5)))


CORNERS = {
    "b1_d1_w2": lambda tmp: dict(b=1, d=1, w=2),
    "b7_d3_w8": lambda tmp: dict(b=7, d=3, w=8),
    "b64_d16_w8": lambda tmp: dict(b=64, d=16, w=8),
    "b65_d3_w16": lambda tmp: dict(b=65, d=3, w=16),
    "sign_b7_d16": lambda tmp: dict(b=7, d=16, w=8, weights="random-sign"),
    "wide_csd_weights": wide_weights,
    "asymmetric_query_hash": asymmetric,
}


#: the adder trees (--adders) every unfolded corner and the heap corners of the folded hash
#: are simulated with
ADDERS = list(ADDER_TREES)
HEAP_KINDS = [a for a in ADDERS if a != "sum"]


def adder_case(*values, position, adders):
    """A case of a cross product with the adder trees: ``sum`` always runs in ``make test``;
    of the two heap kinds one runs there and the other only in ``make sweep`` (marked
    ``slow``), alternating along ``position`` (:func:`~hamattn.verif.corners.in_quick_suite`),
    so that every corner is simulated with a heap tree in ``make test``."""
    quick = adders == "sum" or in_quick_suite(*position, HEAP_KINDS.index(adders))
    return pytest.param(*values, adders, id="-".join((*values, adders)),
                        marks=() if quick else pytest.mark.slow)


def stimulus(cfg, rng, count, ties=False):
    x = rng.integers(cfg.vmin, cfg.vmax + 1, (count, cfg.d))
    x[0] = cfg.vmin
    x[1 % count] = cfg.vmax
    query = rng.integers(0, 2, count)
    return x, query


@pytest.mark.parametrize("pattern,corner,adders", [
    adder_case(p, c, position=(i, j), adders=a)
    for j, p in enumerate(("full_rate", "random_handshake")) for i, c in enumerate(CORNERS)
    for a in ADDERS])
def test_hash_matches_golden(corner, pattern, adders, tmp_path):
    cfg = CoreConfig.create(**CORNERS[corner](tmp_path), adders=adders)
    seed = sum(map(ord, corner))
    rng = np.random.default_rng(seed)
    x, query = stimulus(cfg, rng, 24)
    expect = [int(golden.pack_codes(golden.hash_codes(cfg, x[i:i + 1], query=bool(query[i])))
                  [0].astype(object).dot([1 << (64 * j) for j in range(cfg.words)]))
              for i in range(len(x))]
    dut = cfg.plan.hash.component(tag_shape=unsigned(8))
    p = (1.0, 1.0) if pattern == "full_rate" else (0.6, 0.5)
    run = run_stream(dut, [{"x": [int(v) for v in row], "query": int(q), "tag": i}
                           for i, (row, q) in enumerate(zip(x, query))],
                     seed=seed, p_in=p[0], p_out=p[1],
                     convert=lambda c: (int(c.code), int(c.tag)))
    assert [c for c, _ in run.outputs] == expect, f"seed {seed}"
    assert [t for _, t in run.outputs] == list(range(len(x)))
    if pattern == "full_rate":
        lat = [o - i for i, o in zip(run.in_cycles, run.out_cycles)]
        assert lat == [cfg.plan.hash.latency.fixed] * len(x)
        assert dut.latency == cfg.plan.hash.latency == Timing(lat[0])


@pytest.mark.parametrize("lanes", [2, 1])
def test_hash_tie_gives_one(tmp_path, lanes):
    """y[t] == θ[t] must give bit 1 (SPEC §2), unfolded and folded."""
    W = np.array([[1, 2], [-1, 1], [3, -2]])
    x = np.array([[5, -3]])
    theta = (W @ x[0])                     # exactly y: every bit ties
    cfg = CoreConfig.create(b=3, d=2, w=4, lanes=lanes,
                            weights=_npz(tmp_path, "tie", W=W, theta=theta))
    run = run_stream(cfg.plan.hash.component(), [{"x": [5, -3], "query": 0}],
                     convert=lambda c: int(c.code))
    assert run.outputs == [0b111]
    theta_above = theta + 1                # one more: every bit 0
    cfg = CoreConfig.create(b=3, d=2, w=4, lanes=lanes,
                            weights=_npz(tmp_path, "above", W=W, theta=theta_above))
    run = run_stream(cfg.plan.hash.component(), [{"x": [5, -3], "query": 0}],
                     convert=lambda c: int(c.code))
    assert run.outputs == [0]


# ------------------------------------------------------------------------- folded (P < d)

def asymmetric_wide(tmp_path):
    """Ternary W, wide Wq (multi-digit CSD) and rows whose bit is a constant of one hash
    only: a zero row of W, a zero row of Wq, an unreachable θq and a θ always reached."""
    rng = np.random.default_rng(13)
    b, d = 12, 7
    W = rng.integers(-1, 2, (b, d))
    Wq = rng.integers(-100, 101, (b, d))
    theta = rng.integers(-3, 4, b)
    thetaq = rng.integers(-2000, 2000, b)
    W[0] = 0                                  # W row 0: 0 >= θ, constant
    theta[0] = 1                              # ... 0
    Wq[1] = 0                                 # Wq row 1: constant 1
    thetaq[1] = -5
    thetaq[2] = 10**6                         # never reached: constant 0 for queries
    theta[3] = -(10**6)                       # always reached: constant 1 for keys
    return dict(b=b, d=d, w=6, weights=_npz(tmp_path, "asymw", W=W, theta=theta, Wq=Wq,
                                            thetaq=thetaq))


def lanes(P, corner, **more):
    return lambda tmp: dict(corner(tmp), lanes=P, **more)


FOLDED = {
    "d3_P1": lambda tmp: dict(b=7, d=3, w=8, lanes=1),
    "d3_P2": lambda tmp: dict(b=7, d=3, w=8, lanes=2),
    "d16_P4_b64": lambda tmp: dict(b=64, d=16, w=8, lanes=4),
    "d16_P5": lambda tmp: dict(b=16, d=16, w=8, lanes=5),
    "d5_P1": lambda tmp: dict(b=16, d=5, w=8, lanes=1),
    "b1_d3_P2_w2": lambda tmp: dict(b=1, d=3, w=2, lanes=2),
    "b65_d3_P2_w16": lambda tmp: dict(b=65, d=3, w=16, lanes=2),
    "sign_d16_P3": lambda tmp: dict(b=7, d=16, w=8, lanes=3, weights="random-sign"),
    "sign_d16_P8": lambda tmp: dict(b=9, d=16, w=8, lanes=8, weights="random-sign"),
    "wide_csd_P1": lanes(1, wide_weights),
    "wide_csd_P3": lanes(3, wide_weights),
    "asym_P1": lanes(1, asymmetric),
    "asym_P2": lanes(2, asymmetric),
    "asym_wide_P3": lanes(3, asymmetric_wide),
    # rows T < b (a linear path folding its rows): T rows per pass, R = ceil(b/T) passes
    "rows_d3_P1_T2": lambda tmp: dict(b=7, d=3, w=8, lanes=1, rows=2),
    "rows_d16_P5_T1": lambda tmp: dict(b=16, d=16, w=8, lanes=5, rows=1),
    "rows_b65_d3_P2_T64_w16": lambda tmp: dict(b=65, d=3, w=16, lanes=2, rows=64),
    "rows_wide_csd_P3_T3": lanes(3, wide_weights, rows=3),
    "rows_asym_P1_T4": lanes(1, asymmetric, rows=4),
    "rows_asym_wide_P3_T5": lanes(3, asymmetric_wide, rows=5),
}


def expected_codes(cfg, x, query):
    return [int(sum(int(v) << t for t, v in
                    enumerate(golden.hash_codes(cfg, x[i:i + 1], query=bool(query[i]))[0])))
            for i in range(len(x))]


def run_folded(dut, payloads, *, seed=0, p_in=1.0, sink="ready", p_out=1.0, G=1):
    """Offer ``payloads`` on ``dut.i`` (valid raised with probability ``p_in`` per idle
    cycle, then held with a stable payload until the transfer) and take ``dut.o`` with
    ``sink``: ``ready`` (ready with probability ``p_out``), or ``ctt`` (consume-then-transfer:
    the sink spends G valid cycles on a token and is ready from its G-th valid cycle on,
    then with probability ``p_out``). Returns (codes, tags, in_cycles, out_cycles,
    valid cycles each input spent offered before and including its transfer)."""
    rng = np.random.default_rng(seed)
    res = dict(codes=[], tags=[], ins=[], outs=[], offered=[])

    async def bench(ctx):
        k, valid, offered, seen = 0, False, 0, 0
        for cycle in range(400 + 60 * (G + 4) * len(payloads)):
            if len(res["codes"]) == len(payloads) and k == len(payloads):
                return
            if not valid and k < len(payloads) and rng.random() < p_in:
                valid, offered = True, 0
                ctx.set(dut.i.payload, payloads[k])
            ctx.set(dut.i.valid, valid)
            ovalid = ctx.get(dut.o.valid)
            if sink == "ctt":
                seen += ovalid
                rdy = ovalid and seen >= G and rng.random() < p_out
            else:
                rdy = rng.random() < p_out
            ctx.set(dut.o.ready, rdy)
            if rdy and ovalid:
                c = ctx.get(dut.o.payload)
                res["codes"].append(int(c.code))
                res["tags"].append(int(c.tag))
                res["outs"].append(cycle)
                seen = 0
            if valid:
                offered += 1
                if ctx.get(dut.i.ready):
                    res["ins"].append(cycle)
                    res["offered"].append(offered)
                    k += 1
                    valid = False
            await ctx.tick()
        raise AssertionError(f"timeout: {k}/{len(payloads)} in, "
                             f"{len(res['codes'])}/{len(payloads)} out")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return res


PATTERNS = {
    # name: (p_in, sink, p_out)
    "full_rate_ready": (1.0, "ready", 1.0),
    "full_rate_ctt_sink": (1.0, "ctt", 1.0),
    "random_source_ctt_sink": (0.5, "ctt", 0.6),
    "random_handshake": (0.6, "ready", 0.4),
}


#: folded corners also simulated with the compressor trees (--adders lut6/lut4): one lane,
#: several, multi-digit CSD weights, both hashes with wide Wq, w = 16, row folding
HEAP_FOLDED = ["d3_P1", "d16_P5", "wide_csd_P3", "asym_wide_P3", "b65_d3_P2_w16",
               "rows_asym_wide_P3_T5"]
FOLDED_CASES = [adder_case(c, p, position=(), adders="sum")
                for c in FOLDED for p in PATTERNS] + \
    [adder_case(c, p, position=(i, j), adders=a) for i, c in enumerate(HEAP_FOLDED)
     for j, p in enumerate(("full_rate_ready", "random_handshake")) for a in HEAP_KINDS]


@pytest.mark.parametrize("corner,pattern,adders", FOLDED_CASES)
def test_folded_hash_matches_golden(corner, pattern, adders, tmp_path):
    cfg = CoreConfig.create(**FOLDED[corner](tmp_path), adders=adders)
    G = cfg.groups
    assert cfg.folded and G == -(-cfg.d // cfg.lanes)
    HI = cfg.plan.hash.interval.fixed   # cycles per vector: G groups, R passes
    assert HI == G * -(-cfg.b // cfg.rows)
    seed = sum(map(ord, corner + pattern))
    rng = np.random.default_rng(seed)
    x, query = stimulus(cfg, rng, 24)
    expect = expected_codes(cfg, x, query)
    dut = cfg.plan.hash.component(tag_shape=unsigned(8))
    p_in, sink, p_out = PATTERNS[pattern]
    res = run_folded(dut, [{"x": [int(v) for v in row], "query": int(q), "tag": i}
                           for i, (row, q) in enumerate(zip(x, query))],
                     seed=seed, p_in=p_in, sink=sink, p_out=p_out, G=HI)
    assert res["codes"] == expect, f"seed {seed}"
    assert res["tags"] == list(range(len(x)))
    # consume-then-transfer input: ready only once all G groups (of all R passes) were read
    assert min(res["offered"]) >= HI, res["offered"]
    if p_in == 1.0:
        # one vector per G·R cycles, from the first: no stall with either sink
        assert res["ins"] == [HI - 1 + HI * n for n in range(len(x))]
        assert np.all(np.diff(res["outs"]) == HI)
    if pattern == "full_rate_ready":
        lat = [o - i for i, o in zip(res["ins"], res["outs"])]
        assert lat == [cfg.plan.hash.latency.fixed] * len(x)
        assert dut.latency == cfg.plan.hash.latency == Timing(lat[0])


@pytest.mark.parametrize("corner", ["d16_P5", "asym_wide_P3", "b65_d3_P2_w16"])
def test_folded_hash_run_stream_random(corner, tmp_path):
    """The shared random-handshake driver, with no tag (the tagless ports)."""
    cfg = CoreConfig.create(**FOLDED[corner](tmp_path))
    seed = sum(map(ord, corner))
    x, query = stimulus(cfg, np.random.default_rng(seed), 30)
    run = run_stream(cfg.plan.hash.component(), [{"x": [int(v) for v in row], "query": int(q)}
                                           for row, q in zip(x, query)],
                     seed=seed, p_in=0.7, p_out=0.3, convert=lambda c: int(c.code))
    assert run.outputs == expected_codes(cfg, x, query)


def test_folded_hash_stalled_output_keeps_every_vector(tmp_path):
    """A long stall of the output: the hash fills up, takes no more than it can hold, and
    every code comes out once, in order, when the sink resumes."""
    cfg = CoreConfig.create(b=16, d=16, w=8, lanes=4)
    x, query = stimulus(cfg, np.random.default_rng(3), 12)
    dut = cfg.plan.hash.component(tag_shape=unsigned(8))
    res = dict(codes=[], tags=[], ins=[])

    async def bench(ctx):
        k = 0
        for cycle in range(2000):
            if k < len(x):
                ctx.set(dut.i.payload, {"x": [int(v) for v in x[k]], "query": int(query[k]),
                                        "tag": k})
            ctx.set(dut.i.valid, k < len(x))
            rdy = cycle >= 200
            ctx.set(dut.o.ready, rdy)
            if rdy and ctx.get(dut.o.valid):
                c = ctx.get(dut.o.payload)
                res["codes"].append(int(c.code))
                res["tags"].append(int(c.tag))
            if k < len(x) and ctx.get(dut.i.ready):
                res["ins"].append(cycle)
                k += 1
            if len(res["codes"]) == len(x):
                return
            await ctx.tick()
        raise AssertionError("timeout")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert res["codes"] == expected_codes(cfg, x, query)
    assert res["tags"] == list(range(len(x)))
    held = sum(c < 200 for c in res["ins"])
    # in flight while stalled: the output register, the accumulators and the
    # lane register + tree levels (at most one vector's worth of groups each)
    assert 1 <= held <= 2 + -(-(cfg.plan.hash.latency.fixed - 2) // cfg.groups), res["ins"]


@pytest.mark.parametrize("corner", ["d16_P5", "wide_csd_P3", "asym_wide_P3", "sign_d16_P3",
                                    "rows_wide_csd_P3_T3", "rows_asym_wide_P3_T5", "d3_P1",
                                    "asym_P1", "rows_d3_P1_T2"])
def test_folded_hash_latency_formula(corner, tmp_path):
    """The hash's latency = 3 + levels of the widest P-lane tree, at least 1 (a lone operand,
    P = 1, is registered before the accumulator): the operands (p, s) of slot j are the
    lanes p and CSD shifts s used by some group of W (or Wq) in a row t = j mod T."""
    cfg = CoreConfig.create(**FOLDED[corner](tmp_path))
    mats = [cfg.W_array] + ([np.array(cfg.Wq)] if cfg.asymmetric else [])
    T = cfg.rows
    most = max(len({(i % cfg.lanes, s) for M in mats for t in range(j, cfg.b, T)
                    for i in range(cfg.d) for s, _ in csd_digits(int(M[t, i]))})
               for j in range(T))
    assert most <= cfg.lanes * 16
    assert cfg.plan.hash.latency == Timing(3 + cfg.plan.hash.rom_regs + max(1, tree_depth(most)))
    assert isinstance(cfg.plan.hash.component(), FoldedHashProjection)
    unfolded = cfg.replace(lanes=cfg.d, rows=None)
    assert unfolded.plan.hash.latency == Timing(2 + max(
        (tree_depth(len(row_terms(r))) for M in
         ([unfolded.W] + ([unfolded.Wq] if unfolded.asymmetric else [])) for r in M),
        default=0))
    assert type(unfolded.plan.hash.component()) is HashProjection


@pytest.mark.parametrize("corner", ["d3_P1", "d5_P1", "asym_P1", "wide_csd_P1", "d3_P2",
                                    "d16_P4_b64", "b65_d3_P2_w16", "sign_d16_P8",
                                    "rows_d3_P1_T2", "rows_asym_P1_T4"])
def test_digit_rom_choice(corner, tmp_path):
    """The varying operands are those whose CSD digit differs between (group, block, hash);
    their selects come from a ROM when the rows are folded, or (R = 1) when its word, two
    bits per varying operand, is at most 64 bits: then a block RAM by attribute."""
    cfg = CoreConfig.create(**FOLDED[corner](tmp_path))
    plan = cfg.plan.hash
    P, G, T = cfg.lanes, cfg.groups, cfg.rows
    R = -(-cfg.b // T)
    mats = [np.array(M, dtype=object).reshape(cfg.b, cfg.d)
            for M in [cfg.W] + ([cfg.Wq] if cfg.asymmetric else [])]
    varying = 0
    for j in range(T):
        digits = {}                     # (p, s) -> {(g, r, h): digit}
        for r in range(R):
            for h, M in enumerate(mats):
                for g in range(G):
                    for p in range(P):
                        i = g * P + p
                        if r * T + j < cfg.b and i < cfg.d:
                            for s, sg in csd_digits(int(M[r * T + j, i])):
                                digits.setdefault((p, s), {})[g, r, h] = sg
        cells = G * R * len(mats)
        varying += sum(len(set(d.values()) | ({0} if len(d) < cells else set())) > 1
                       for d in digits.values())
    assert len(plan.varying) == varying
    rom = varying > 0 and (R > 1 or 2 * varying <= 64)
    assert plan.digit_rom == rom, (R, varying)
    m = plan.component().elaborate(None)
    mems = [s[0] for n, s in m._named_submodules.items() if n.startswith("digits")]
    assert bool(mems) == rom
    if rom:
        # (R > 1: a word of more than ROM_PORT bits per (group, block), the hashes' words
        # side by side, is read in step in the fewest memories of at most ROM_PORT bits
        # and registered twice; else, read a cycle ahead in one memory)
        H = len(mats)
        spread = R > 1 and 2 * varying * H > plan.ROM_PORT
        assert plan.rom_regs == 2 * spread
        assert plan.rom_ahead == (R > 1 and not spread)
        width = 2 * varying * (H if plan.rom_ahead else 1)
        assert sum(mem.shape.width for mem in mems) == width
        assert len(mems) == plan.rom_pieces == (-(-width // plan.ROM_PORT) if spread else 1)
        assert all(mem.shape.width <= plan.ROM_PORT for mem in mems) or not spread
        for mem in mems:
            assert mem.depth >= G * R * (1 if plan.rom_ahead else H)
            assert mem.attrs == {"ram_style": "block"}


@pytest.mark.parametrize("corner", ["d3_P1", "d16_P5", "asym_P1", "rows_d3_P1_T2",
                                    "rows_d16_P5_T1", "rows_asym_P1_T4"])
def test_folded_hash_reset_mid_vector(corner, tmp_path):
    """A reset of the domain in the middle of a vector: the accumulators (those returning to
    one start value have no reset of their own, their set/reset and enable flip-flops reset
    to 1) start over, and every vector offered after the reset gets its code (row-folded:
    the digit ROM read a cycle ahead holds no word of group 0 after the reset: group 0's word
    is loaded by the digit register's set/reset until the first read)."""
    from amaranth.hdl import ClockDomain
    from amaranth.sim import DomainReset
    cfg = CoreConfig.create(**FOLDED[corner](tmp_path))
    G = cfg.groups
    x, query = stimulus(cfg, np.random.default_rng(5), 6)
    # (the first two vectors after the reset: group 0 alone, at the ends of the range, so
    # that their codes are group 0's digits)
    x[:2, cfg.lanes:] = 0
    expect = expected_codes(cfg, x, query)
    dut = cfg.plan.hash.component()
    top = Module()
    top.domains.sync = cd = ClockDomain("sync")
    top.submodules.dut = dut
    codes = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        # G - 1 groups of a vector of large values, summed into the accumulators, then a
        # reset
        ctx.set(dut.i.payload, {"x": [cfg.vmax] * cfg.d, "query": 0})
        ctx.set(dut.i.valid, 1)
        await ctx.tick().repeat(G - 1)
        ctx.set(dut.i.valid, 0)
        await ctx.tick().repeat(cfg.plan.hash.depth + 2)
        ctx.set(cd.rst, 1)
        for _ in range(2):
            try:
                await ctx.tick()
            except DomainReset:         # (the tick of a domain held in reset says so)
                pass
        ctx.set(cd.rst, 0)
        k = 0
        for _ in range(60 * G * len(x) + 100):
            if len(codes) == len(x):
                return
            if k < len(x):
                ctx.set(dut.i.payload, {"x": [int(v) for v in x[k]], "query": int(query[k])})
            ctx.set(dut.i.valid, k < len(x))
            if ctx.get(dut.o.valid):
                codes.append(int(ctx.get(dut.o.payload.code)))
            if k < len(x) and ctx.get(dut.i.ready):
                k += 1
            await ctx.tick()
        raise AssertionError(f"timeout: {len(codes)}/{len(x)} codes")

    sim = Simulator(top)
    sim.add_clock(1e-8, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    assert codes == expect


def test_folded_hash_is_smaller():
    """The size estimate counts P-lane trees when folded: it shrinks with P."""
    sizes = [CoreConfig.create(d=64, b=64, lanes=P).plan.adder_bits for P in (64, 16, 4, 1)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0] / 2, sizes


@pytest.mark.parametrize("P", [1, 3, 7])
def test_hash_extreme_thresholds(tmp_path, P):
    """θ at the ends of y's range, where a bit is (or is nearly) a constant: θ = max y gives
    1 only for the maximising x, θ = min y + 1 gives 0 only for the minimising x, θ = min y
    always 1, θ = max y + 1 always 0 (unfolded P = d and folded)."""
    rng = np.random.default_rng(5)
    d, w = 7, 4
    W = rng.integers(-1, 2, (8, d))
    W[:, 0] = 1                                   # no zero row
    vmin, vmax = -(1 << (w - 1)), (1 << (w - 1)) - 1
    xmax = np.where(W > 0, vmax, vmin)            # row t's maximiser (per row)
    xmin = np.where(W > 0, vmin, vmax)
    hi = (W * xmax).sum(1)
    lo = (W * xmin).sum(1)
    theta = np.concatenate([hi[:2], lo[2:4] + 1, lo[4:6], hi[6:] + 1])
    cfg = CoreConfig.create(b=8, d=d, w=w, lanes=P,
                            weights=_npz(tmp_path, "ext", W=W, theta=theta))
    x = np.concatenate([xmax, xmin, xmax - np.sign(W), rng.integers(vmin, vmax + 1, (8, d))])
    x = np.clip(x, vmin, vmax)
    query = np.zeros(len(x), int)
    expect = expected_codes(cfg, x, query)
    assert len(set(expect)) > 4
    run = run_stream(cfg.plan.hash.component(), [{"x": [int(v) for v in row], "query": 0}
                                           for row in x], convert=lambda c: int(c.code))
    assert run.outputs == expect


@pytest.mark.parametrize("corner", ["b7_d3_w8", "rows_asym_P1_T4", "d16_P5"])
def test_hash_without_stalls(corner, tmp_path):
    """``stalls=False`` (as the core builds it): the same codes and latency as the stalling
    hash for a consumer that takes every output, with random input gaps; an unfolded one is
    always ready, a folded one ready on the last read of every vector (never held longer)."""
    make = {**CORNERS, **FOLDED}[corner]
    cfg = CoreConfig.create(**make(tmp_path))
    HI = cfg.plan.hash.interval.fixed
    rng = np.random.default_rng(7)
    x, query = stimulus(cfg, rng, 16)
    dut = cfg.plan.hash.component(tag_shape=unsigned(8), stalls=False)
    res = run_folded(dut, [{"x": [int(v) for v in row], "query": int(q), "tag": i}
                           for i, (row, q) in enumerate(zip(x, query))],
                     seed=3, p_in=0.5, sink="ready", p_out=1.0, G=HI)
    assert res["codes"] == expected_codes(cfg, x, query)
    assert res["tags"] == list(range(len(x)))
    assert res["offered"] == [HI] * len(x)
    lat = [o - i for i, o in zip(res["ins"], res["outs"])]
    assert lat == [cfg.plan.hash.latency.fixed] * len(x)


@pytest.mark.parametrize("corner", ["d3_P1", "rows_asym_P1_T4", "d16_P5"])
def test_folded_hash_without_stalls_holds_its_output(corner, tmp_path):
    """A folded ``stalls=False`` hash whose consumer holds each code (``o.ready`` low) for a
    random 0 .. interval - 1 cycles, the input at full rate: the same codes and tags, and the
    output's code and tag change only where a new vector enters the output register (their
    clock enable is the accumulators' ``full``, not the consumer's ready: a take does not
    load them)."""
    cfg = CoreConfig.create(**FOLDED[corner](tmp_path))
    HI = cfg.plan.hash.interval.fixed
    rng = np.random.default_rng(9)
    x, query = stimulus(cfg, rng, 12)
    dut = cfg.plan.hash.component(tag_shape=unsigned(8), stalls=False)
    payloads = [{"x": [int(v) for v in row], "query": int(q), "tag": i}
                for i, (row, q) in enumerate(zip(x, query))]
    trace, taken = [], []

    async def bench(ctx):
        k, hold = 0, None
        for _ in range(60 * (HI + 4) * len(payloads)):
            if len(taken) == len(payloads):
                return
            if k < len(payloads):
                ctx.set(dut.i.payload, payloads[k])
            ctx.set(dut.i.valid, k < len(payloads))
            ovalid = ctx.get(dut.o.valid)
            c = ctx.get(dut.o.payload)
            if ovalid and hold is None:
                hold = int(rng.integers(0, HI))         # cycles the consumer holds it
            rdy = bool(ovalid) and hold == 0
            ctx.set(dut.o.ready, rdy)
            trace.append((bool(ovalid), int(c.code), int(c.tag), rdy))
            if rdy:
                taken.append((int(c.code), int(c.tag)))
                hold = None
            elif hold is not None:
                hold -= 1
            if k < len(payloads) and ctx.get(dut.i.ready):
                k += 1
            await ctx.tick()
        raise AssertionError(f"timeout: {len(taken)}/{len(payloads)} out")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert [c for c, _ in taken] == expected_codes(cfg, x, query)
    assert [t for _, t in taken] == list(range(len(x)))
    for (v0, c0, t0, r0), (v1, c1, t1, _) in zip(trace, trace[1:]):
        if (c1, t1) != (c0, t0):
            assert v1 and (r0 or not v0), "the output changed with no new vector"


class _CallerSelect(wiring.Component):
    """A folded hash built with ``select=False`` (as the core builds it) behind the ports of
    one that selects its groups itself: the group is selected by a one-hot of its own,
    rotated where the hash's ``advance`` is high, and ``i.ready`` is a flip-flop registered
    from its ``last_next``, so that a wrong next value misplaces a group or a transfer."""

    def __init__(self, cfg):
        self.hash = cfg.plan.hash.component(unsigned(8), stalls=False, select=False)
        self.cfg = cfg
        super().__init__(_members(cfg.plan.hash, unsigned(8)))

    def elaborate(self, platform):
        m = Module()
        m.submodules.hash = h = self.hash
        plan = self.cfg.plan.hash
        group = Signal(plan.groups, init=1)
        last = Signal()
        m.d.sync += last.eq(h.last_next)
        with m.If(h.advance):
            m.d.sync += group.eq(group.rotate_left(1))
        m.d.comb += [h.i.valid.eq(self.i.valid), self.i.ready.eq(last),
                     h.i.payload.query.eq(self.i.payload.query),
                     h.i.payload.tag.eq(self.i.payload.tag),
                     h.i.payload.x.eq(group_select(m, Value.cast(self.i.payload.x), group,
                                                   plan.lanes * plan.w))]
        wiring.connect(m, h.o, wiring.flipped(self.o))
        return m


@pytest.mark.parametrize("corner", ["d3_P1", "d16_P5", "rows_asym_P1_T4"])
def test_hash_caller_selects_the_group(corner, tmp_path):
    """``select=False``: the caller moves its group on ``advance`` and reads ``last_next`` a
    cycle ahead; the
    codes, latency and reading time are those of the hash that selects itself."""
    cfg = CoreConfig.create(**FOLDED[corner](tmp_path))
    HI = cfg.plan.hash.interval.fixed
    x, query = stimulus(cfg, np.random.default_rng(5), 12)
    res = run_folded(_CallerSelect(cfg), [{"x": [int(v) for v in row], "query": int(q),
                                           "tag": i}
                                          for i, (row, q) in enumerate(zip(x, query))],
                     seed=4, p_in=0.5, sink="ready", p_out=1.0, G=HI)
    assert res["codes"] == expected_codes(cfg, x, query)
    assert res["tags"] == list(range(len(x)))
    assert res["offered"] == [HI] * len(x)
    assert [o - i for i, o in zip(res["ins"], res["outs"])] == \
        [cfg.plan.hash.latency.fixed] * len(x)


def test_unfolded_hash_refuses_caller_select():
    cfg = CoreConfig.create(b=7, d=3, w=8)
    with pytest.raises(ValueError, match="select=False is not allowed for an unfolded hash"):
        cfg.plan.hash.component(select=False)


@pytest.mark.parametrize("goal", [
    # one start value per row (R = 1): the accumulator returns to it by a set/reset
    dict(d=32, w=8, b=32, N=256, mode="topk", lanes=1, keys_per_cycle=2),
    # start values that vary with the row block (R = 4): the accumulator returns to 0
    dict(d=32, w=8, b=32, N=256, mode="linear", lanes=1, rows=8)])
def test_accumulator_loops_are_one_lut(goal, tmp_path):
    """In a synth_ice40 netlist of the folded hash (the iCEBreaker goal configs), every row
    accumulator's flip-flop is loaded from a LUT (its adder's sum bit) that reads that
    flip-flop's own output: the loop is flip-flop → carry chain → sum LUT → flip-flop, with
    no LUT inside it. (With the start value as the accumulator's init, Yosys stored each
    bit whose init is 1 inverted, behind a LUT; with start values chosen by the block, a
    mux of the start value stood before the adder.)"""
    import json
    import re
    from amaranth.back import rtlil
    from hamattn.synth.tools import run_yosys

    plan = CoreConfig.create(**goal).plan.hash
    comp = plan.component(stalls=False, select=False)
    (tmp_path / "top.il").write_text(rtlil.convert(comp, name="top"))
    run_yosys("read_rtlil top.il\nsynth_ice40 -top top\nwrite_json top.json\n",
              cwd=tmp_path, name="synth")
    top = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]
    names = {}
    for n, v in top["netnames"].items():
        for b in v["bits"]:
            if isinstance(b, int) and (b not in names or len(n) < len(names[b])):
                names[b] = n
    drivers = {b: cell for cell in top["cells"].values()
               for port, bits in cell["connections"].items()
               if cell["port_directions"][port] == "output" for b in bits}
    checked = 0
    for name, cell in top["cells"].items():
        # (an accumulator's flip-flop: Yosys names it after acc<j>, also where it stores
        # the bit inverted)
        if not (cell["type"].startswith("SB_DFF") and re.match(r"acc\d+_", name)):
            continue
        d, q = cell["connections"]["D"][0], cell["connections"]["Q"][0]
        lut = drivers.get(d)
        assert lut is not None and lut["type"] == "SB_LUT4", names.get(q)
        ins = [lut["connections"][p][0] for p in ("I0", "I1", "I2", "I3")]
        assert q in ins, f"{names.get(q)}: its sum LUT reads {[names.get(b, b) for b in ins]}"
        checked += 1
    assert checked >= plan.rows * 8
