"""AttentionCore (through its AXI-Stream top) in the Amaranth simulator: window protocol,
overflow, back-pressure, exact latency and reset, against the golden model."""

import numpy as np
import pytest

from hamattn import CoreConfig
from hamattn.rtl import Timing
from hamattn.rtl.divider import CHAIN_BITS
from hamattn.rtl.queue import UnguardedReadPort
from hamattn.verif.amaranth_driver import run_clocked, simulate
from hamattn.verif.corners import CORE_CORNERS as CORNERS
from hamattn.verif.corners import CORE_KEY_CORNERS as KEY_CORNERS
from hamattn.verif.corners import CORE_ROW_CORNERS as ROW_CORNERS
from hamattn.verif.corners import MODES
from hamattn.verif.scenario import (check_beats, check_kv_interval, check_q_interval,
                                    check_timing, expected_beats, kv_stream, q_stream,
                                    random_windows, unpack_vector)

CASES = [(c, m) for c in CORNERS for m in MODES] + [(c, "linear") for c in ROW_CORNERS] + \
    [(c, m) for c in KEY_CORNERS for m in MODES[1:]]


def make(corner, mode, adders="sum"):
    cfg = CoreConfig.create(mode=mode, adders=adders,
                            **{**CORNERS, **ROW_CORNERS, **KEY_CORNERS}[corner])
    seed = sum(map(ord, corner + mode))
    return cfg, seed, np.random.default_rng(seed)


# the adder trees of the hash and the linear read-out as bit heaps (--adders): unfolded,
# folded and row-folded, w = 16 and b = 65
HEAP_CASES = [("b65_d3_w16_N5_kN", "linear", "lut6"), ("b16_d4_w8_N16", "topk", "lut4"),
              ("b16_d4_w8_N16_P2_T4", "linear", "lut4"), ("b65_d5_w16_N5_P2", "hsoftmax", "lut6")]


@pytest.mark.parametrize("corner, mode, adders", [(c, m, "sum") for c, m in CASES] + HEAP_CASES)
def test_full_rate_is_cycle_exact(corner, mode, adders):
    """Sources always valid, sink always ready: every output exactly `latency` after its
    query, queries exactly `q_interval` apart, m_out_tvalid low on every other cycle;
    windows of 1..N+2 keys (overflow included), back to back."""
    cfg, seed, rng = make(corner, mode, adders)
    wins = random_windows(cfg, rng, 4, n_keys=(1, cfg.N + 2), n_queries=(1, 3))
    obs = simulate(cfg, wins, seed=seed)
    check_beats(cfg, wins, obs)
    check_timing(cfg, wins, obs)
    check_q_interval(cfg, wins, obs)
    check_kv_interval(cfg, wins, obs)


@pytest.mark.parametrize("corner, mode", CASES)
def test_random_handshakes(corner, mode):
    """Random valid/ready on all three channels: the same beats, in order, none lost."""
    cfg, seed, rng = make(corner, mode)
    wins = random_windows(cfg, rng, 4, n_keys=(1, cfg.N + 2), n_queries=(1, 3))
    obs = simulate(cfg, wins, seed=seed, p_kv=0.5, p_q=0.7, p_out=0.3)
    check_beats(cfg, wins, obs)


@pytest.mark.parametrize("mode", MODES)
def test_extreme_values_and_single_key_windows(mode):
    cfg, seed, rng = make("b16_d4_w8_N16", mode)
    wins = random_windows(cfg, rng, 3, n_keys=1, n_queries=2, extreme=True)
    wins += random_windows(cfg, rng, 2, n_keys=cfg.N, n_queries=2, extreme=True)
    obs = simulate(cfg, wins, seed=seed, p_out=0.8)
    check_beats(cfg, wins, obs)


@pytest.mark.parametrize("corner, mode", [(c, m) for c in ["b7_d3_w8_N5_k1", "b16_d4_w8_N16",
                                                            "b16_d4_w8_N16_P2"]
                                          for m in MODES] + [("b16_d4_w8_N16_P2_T4", "linear")])
def test_no_read_during_write(corner, mode, monkeypatch):
    """Every UnguardedReadPort (the value queue's, the key store's codes and values, a
    linear path's state) poisoned: a word read in the cycle it is written, undefined in a
    block RAM, comes out inverted. Full rate, random handshakes and a reset mid-window
    still give the golden model's beats: no such word is ever used."""
    monkeypatch.setattr(UnguardedReadPort, "poison", True)
    cfg, seed, rng = make(corner, mode)
    wins = random_windows(cfg, rng, 4, n_keys=(1, cfg.N + 2), n_queries=(1, 3))
    obs = simulate(cfg, wins, seed=seed)
    check_beats(cfg, wins, obs)
    check_timing(cfg, wins, obs)
    obs = simulate(cfg, wins, seed=seed + 1, p_kv=0.5, p_q=0.7, p_out=0.3)
    check_beats(cfg, wins, obs)
    broken = random_windows(cfg, rng, 2, n_keys=(3, cfg.N + 1), n_queries=(2, 3))
    obs = simulate(cfg, wins, seed=seed + 2, prelude=(broken, 11))
    check_beats(cfg, wins, obs)


RESET_CASES = [(c, m) for c in ["b7_d3_w8_N5_k1", "b16_d4_w8_N16_P2"] for m in MODES] + \
    [("b16_d4_w8_N16_P2_T4", "linear")]


@pytest.mark.parametrize("corner, mode", RESET_CASES)
@pytest.mark.parametrize("cut", [3, 11, 40])
def test_reset_mid_window(mode, cut, corner):
    """A window cut by reset after `cut` cycles (keys, queries or outputs in flight); the
    next windows work normally, as if the core had just come out of reset (folded: the
    state in memory included)."""
    cfg, seed, rng = make(corner, mode)
    broken = random_windows(cfg, rng, 2, n_keys=(3, cfg.N + 1), n_queries=(2, 3))
    wins = random_windows(cfg, rng, 3, n_keys=(1, cfg.N), n_queries=(1, 2))
    obs = simulate(cfg, wins, seed=seed + cut, prelude=(broken, cut))
    check_beats(cfg, wins, obs)
    check_timing(cfg, wins, obs)


def test_overflow_flag_only_for_its_window():
    cfg = CoreConfig.create(d=2, w=4, b=5, N=3, mode="topk", k=2)
    rng = np.random.default_rng(5)
    wins = (random_windows(cfg, rng, 1, n_keys=3, n_queries=2)
            + random_windows(cfg, rng, 1, n_keys=7, n_queries=2)
            + random_windows(cfg, rng, 1, n_keys=2, n_queries=2))
    obs = simulate(cfg, wins, seed=5)
    check_beats(cfg, wins, obs)
    assert [u for _, _, u in obs.out_beats] == [0, 0, 1, 1, 0, 0]


def test_weights_file_asymmetric_wide_and_shift_table(tmp_path):
    """A .npz with wide (CSD) weights, a separate query hash and its own shift table, in
    every mode, through the whole core."""
    rng = np.random.default_rng(21)
    b, d = 6, 3
    path = tmp_path / "fit.npz"
    np.savez(path, W=rng.integers(-40, 41, (b, d)), theta=rng.integers(-50, 50, b),
             Wq=rng.integers(-3, 4, (b, d)), thetaq=rng.integers(-5, 5, b),
             shifts=np.array([0, 0, 1, 3, 3, 7, 9]))
    for mode in MODES:
        cfg = CoreConfig.create(mode=mode, d=d, w=6, b=b, N=6, k=3, weights=str(path))
        assert cfg.asymmetric and cfg.shifts == (0, 0, 1, 3, 3, 7, 9)
        wins = random_windows(cfg, rng, 3, n_keys=(1, 8), n_queries=(1, 3))
        obs = simulate(cfg, wins, seed=21)
        check_beats(cfg, wins, obs)
        check_timing(cfg, wins, obs)


@pytest.mark.parametrize("corner, mode", RESET_CASES)
def test_slow_output_fills_the_queue(corner, mode):
    """A consumer ready one cycle in twenty: every output waits, so the credits (at most
    cfg.plan.out_credits queries in flight) and the output queue are exercised to their limit;
    the beats are still all there, in order."""
    cfg, seed, rng = make(corner, mode)
    wins = random_windows(cfg, rng, 3, n_keys=(1, cfg.N), n_queries=(4, 8))
    obs = simulate(cfg, wins, seed=seed, p_out=0.05)
    check_beats(cfg, wins, obs)


CREDIT_CASES = [("b16_d4_w8_N16", m) for m in MODES] + \
    [("b16_d4_w8_N16_P2", m) for m in MODES] + [("b16_d4_w8_N16_P2_T4", "linear")]


@pytest.mark.parametrize("corner, mode", CREDIT_CASES)
def test_registered_ready_accepts_only_queries_with_a_place(corner, mode):
    """Keys and queries always valid, ``m_out_tready`` low: the core accepts exactly F =
    ``plan.out_credits`` queries (the places for their outputs: the divider's output
    register and its F-1 queue entries) and then holds ``s_q_tready`` low, cycle after
    cycle. ``s_q_tready`` is a flip-flop written from the credit of the cycle before; one
    registered a cycle too optimistically (from a credit that misses the query taken in
    that cycle) accepts an F+1-th query here, whose output has no place. Then
    ``m_out_tready`` high: every output, the F waiting ones first, exactly the golden
    model's."""
    from hamattn.rtl import AxiStreamCore

    cfg, seed, rng = make(corner, mode)
    F = cfg.plan.out_credits
    wins = random_windows(cfg, rng, 1, n_keys=cfg.N, n_queries=F + 2)
    kv, qs = kv_stream(cfg, wins), q_stream(cfg, wins)
    # long enough for the keys, F queries and their outputs, many times over
    hold = 4 * (len(kv) * cfg.at(cfg.kv_interval, 0) + (F + 2) * (
        cfg.at(cfg.latency, cfg.N) + cfg.at(cfg.q_interval, cfg.N))) + 100
    dut = AxiStreamCore(cfg.plan)
    got, taken = [], []

    async def bench(ctx):
        i = j = 0
        for cycle in range(hold + 4 * hold):
            stalled = cycle < hold
            ctx.set(dut.s_kv_tvalid, i < len(kv))
            ctx.set(dut.s_q_tvalid, j < len(qs))
            if i < len(kv):
                ctx.set(dut.s_kv_tdata, kv[i][0])
                ctx.set(dut.s_kv_tlast, kv[i][1])
            if j < len(qs):
                ctx.set(dut.s_q_tdata, qs[j][0])
                ctx.set(dut.s_q_tlast, qs[j][1])
            ctx.set(dut.m_out_tready, not stalled)
            if ctx.get(dut.m_out_tvalid) and not stalled:
                got.append((unpack_vector(ctx.get(dut.m_out_tdata), cfg.d, cfg.w),
                            ctx.get(dut.m_out_tlast), ctx.get(dut.m_out_tuser)))
            i += int(i < len(kv) and ctx.get(dut.s_kv_tready))
            if j < len(qs) and ctx.get(dut.s_q_tready):
                j += 1
                taken.append(cycle)
            if stalled:
                # never more queries taken than places for their outputs
                assert j <= F, f"cycle {cycle}: query {j} accepted with {F} places"
            if len(got) == len(qs):
                break
            await ctx.tick()

    run_clocked(dut, bench)
    assert len([c for c in taken if c < hold]) == F, (F, taken, hold)
    exp = expected_beats(cfg, wins)
    assert got == [(e.data, e.last, e.user) for e in exp]


# =========================================================================== CorePlan

@pytest.mark.parametrize("corner, mode", CASES)
def test_core_timing_is_the_sum_of_its_blocks(corner, mode):
    """The core's latency is hash + value path + divider (SPEC §5 terms added), its query
    interval the longest occupancy of the three, its key interval the value path's; the
    config's manifest objects are the plan's; the credits cover latency / q_interval."""
    cfg, _, _ = make(corner, mode)
    plan = cfg.plan
    total = plan.hash.latency + plan.value.latency + plan.divider.latency
    assert plan.latency == total and cfg.latency == total.to_manifest()
    # per word of M codes: 2 passes (topk: the histogram's and the marking one; 1 streaming)
    # or G cycles (hsoftmax); G per kept key (topk)
    passes = 1 if getattr(plan.value, "selection", None) == "stream" else 2
    per_word = {"linear": 0, "topk": passes, "hsoftmax": cfg.groups}[mode]
    M = cfg.keys_per_cycle
    assert (plan.latency.per_key, plan.latency.per_block) == \
        ((per_word, 0) if M == 1 else (0, per_word))
    assert plan.latency.per_kept == (cfg.groups if mode == "topk" else 0)
    assert plan.latency.block == (M if M > 1 and mode != "linear" else 1)
    qi = plan.q_interval
    assert qi.fixed == max(plan.value.interval.fixed, plan.divider.interval.fixed,
                           plan.hash.interval.fixed)
    v = plan.value.interval
    assert (qi.per_key, qi.per_block, qi.block, qi.per_kept) == \
        (v.per_key, v.per_block, v.block, v.per_kept) and cfg.q_interval == qi.to_manifest()
    assert cfg.kv_interval == plan.kv_interval.to_manifest()
    for n in range(1, cfg.N + 1):
        assert plan.latency.at(n, cfg.k) // qi.at(n, cfg.k) < plan.out_credits
    dv = plan.divider
    if dv.serial:       # one stage loading each of its G groups from the held sums
        assert dv.latency == Timing(dv.groups * (cfg.w + 1) + 1)
        assert dv.interval == Timing(dv.groups * (cfg.w + 1))
    else:
        # (+ 1 where X = |num| + den/2 is wider than CHAIN_BITS: a sign stage adds its low
        # half)
        wide = max(dv.num_width, dv.den_width) > CHAIN_BITS
        # (each step in dv.parts edges, a held den's split steps)
        assert dv.latency == Timing(cfg.w * dv.parts + 4 + wide + (
            0 if dv.grouped else (cfg.groups - 1) * dv.steps * dv.parts))
        assert dv.interval == Timing(cfg.groups * dv.steps * dv.parts)
    assert qi.fixed >= dv.interval.fixed


@pytest.mark.parametrize("b,rows,blocks", [(16, 16, 1), (16, 4, 4), (16, 5, 4), (7, 3, 3),
                                           (16, 1, 16), (1, 1, 1)])
def test_row_folded_plan(b, rows, blocks):
    """R = ceil(b/rows); a folded linear path takes G·R cycles per vector: the key and query
    intervals follow, the hash reads R passes (G·R), the divider takes each group as it comes
    (its latency w + 4 edges after the last group, its interval at most G·R); the value
    path holds a query G·R - 1 cycles, then reads its memory and the read-out trees."""
    plan = CoreConfig.create(d=6, lanes=2, b=b, rows=rows, N=4).plan
    G = plan.groups
    assert plan.row_blocks == blocks and plan.value.state_steps == G * blocks
    assert plan.kv_interval == Timing(G * blocks)
    # the division never sets the query interval: the state read (G·R) does
    assert plan.q_interval == Timing(G * blocks) and plan.divider.interval.fixed <= G * blocks
    # (a word is read again G·R >= 3 cycles later: the memories' outputs are registered)
    assert plan.value.data_regs == (G * blocks >= 3)
    # (row-folded: one register stage between a block's tree and the accumulator)
    assert plan.value.block_regs == (blocks > 1)
    assert plan.value.latency == Timing(G * blocks - 1 + plan.value.readout_latency + 1
                                        + plan.value.data_regs + (blocks > 1))
    assert plan.hash.interval == Timing(G * blocks)
    dv = plan.divider
    assert dv.grouped and dv.latency == Timing(
        8 + 4 + (max(dv.num_width, dv.den_width) > CHAIN_BITS))


@pytest.mark.parametrize("corner, mode", [("b16_d4_w8_N16_P2", m) for m in MODES]
                         + [("b16_d4_w8_N16_P2_T4", "linear"), ("b7_d3_w8_N5_k1_P1", "topk"),
                            ("b16_d4_w8_N11_k4_P3_M4", "hsoftmax")])
def test_folded_readies_agree_with_readies(corner, mode):
    """A folded core registers its readies from a flat expression of its flags, its
    channels' read flags and the input valids; on every cycle (random valid/ready on the
    three channels, windows with dropped keys, a sink slow for stretches so that the
    credits run out) it equals ``readies()`` of the flags' next values, the unfolded core's
    expression, with this cycle's credit, and so do its split key readies (ready & use,
    ready & ~use) with ``use``'s next value (``AttentionCore.readies_check``)."""
    from amaranth.hdl import Value
    from hamattn.rtl import AttentionCore

    cfg, seed, rng = make(corner, mode)
    assert cfg.groups > 1
    wins = random_windows(cfg, rng, 4, n_keys=(1, cfg.N + 2), n_queries=(3, 8))
    kv, qs = kv_stream(cfg, wins), q_stream(cfg, wins)
    dw = cfg.d * cfg.w
    dut = AttentionCore(cfg.plan)
    cycles, seen = [0], set()

    async def bench(ctx):
        folded, reference = dut.readies_check
        i = j = n_out = 0
        q_v = False
        while n_out < len(qs):
            # (the query's valid, once high, stays high until its beat transfers, as
            # AXI4-Stream asks: a scan core reads a query from the flip-flop q_held; the
            # key's valid is drawn on every cycle)
            kv_v = i < len(kv) and rng.random() < 0.6
            q_v = q_v or (j < len(qs) and rng.random() < 0.7)
            ctx.set(dut.s_kv.valid, kv_v)
            ctx.set(dut.s_q.valid, q_v)
            if i < len(kv):
                ctx.set(Value.cast(dut.s_kv.payload.key), kv[i][0] & ((1 << dw) - 1))
                ctx.set(Value.cast(dut.s_kv.payload.value), kv[i][0] >> dw)
                ctx.set(dut.s_kv.payload.last, kv[i][1])
            if j < len(qs):
                ctx.set(Value.cast(dut.s_q.payload.query), qs[j][0])
                ctx.set(dut.s_q.payload.last, qs[j][1])
            # (the sink slow for stretches: the credits run out, then come back)
            ctx.set(dut.m_out.ready, rng.random() < (0.03 if cycles[0] // 150 % 2 else 0.6))
            got, want = ctx.get(folded), ctx.get(reference)
            assert got == want, (cycles[0], i, j, got, want)
            seen.add(got & 15)
            i += int(kv_v and ctx.get(dut.s_kv.ready))
            if q_v and ctx.get(dut.s_q.ready):
                j, q_v = j + 1, False
            n_out += int(ctx.get(dut.m_out.valid) and ctx.get(dut.m_out.ready))
            cycles[0] += 1
            assert cycles[0] < 200_000
            await ctx.tick()

    run_clocked(dut, bench)
    # both readies rise, the key ready for used keys and for dropped ones (the check is
    # not vacuous)
    assert {5, 2} <= seen
    assert 9 in seen or all(len(w.keys) <= cfg.N for w in wins)    # (dropped keys)
