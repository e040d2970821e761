"""The value paths of LinearPlan, ScanPlan (topk) and HsoftmaxPlan, unfolded and folded, against
the golden num and den, their timing against their plan's."""

from dataclasses import replace

import pytest

from hamattn import CoreConfig
from hamattn.rtl import (FoldedLinearValuePath, FoldedScanValuePath, HsoftmaxValuePath,
                         LinearValuePath, ScanPlan, ScanValuePath)
from hamattn.rtl.plan import Timing
from hamattn.rtl.scan import bound
from hamattn.verif.corners import HEAP_CORNERS, MODES, in_quick_suite
from hamattn.verif.corners import VALUE_PATH_CORNERS as CORNERS
from hamattn.verif.corners import VALUE_PATH_KEY_CORNERS as KEY_CORNERS
from hamattn.verif.corners import VALUE_PATH_ROW_CORNERS as ROW_CORNERS
from hamattn.verif.valuepath_cases import check_value_path, value_path_case

PATTERNS = ["full_rate", "random_handshake"]
HEAP_KINDS = ("lut6", "lut4")


def heap_case(pattern, corner, adders, fast):
    """A heap adder tree case, marked ``slow`` (``make sweep``) unless ``fast``."""
    return pytest.param(pattern, corner, "linear", adders, id=f"{pattern}-{corner}-linear-{adders}",
                        marks=() if fast else pytest.mark.slow)


# heap trees elaborate slowly: ``make test`` takes every heap corner once, the two kinds
# alternating (and the handshakes of one corner); ``make sweep`` adds the other kind of each
# corner and the handshakes of the second
CASES = [(p, c, m, "sum") for p in PATTERNS for c in CORNERS for m in MODES] + \
    [(p, c, "linear", "sum") for p in PATTERNS for c in ROW_CORNERS] + \
    [(p, c, m, "sum") for p in PATTERNS for c in KEY_CORNERS for m in MODES[1:]]
CASES = [pytest.param(*c, id="-".join(c)) for c in CASES] + \
    [heap_case("full_rate", c, a, in_quick_suite(i, j)) for i, c in enumerate(HEAP_CORNERS)
     for j, a in enumerate(HEAP_KINDS)] + \
    [heap_case("random_handshake", c, "lut6", i == 1) for i, c in enumerate(HEAP_CORNERS[4:6])]


def component(cfg):
    """The value path of the config's plan, of the class its folding asks for."""
    dut = cfg.plan.value.component()
    kind = {"linear": (LinearValuePath, FoldedLinearValuePath),
            "hsoftmax": (HsoftmaxValuePath, HsoftmaxValuePath)}.get(
        cfg.mode, (ScanValuePath, FoldedScanValuePath))
    assert type(dut) is kind[cfg.folded]
    return dut


@pytest.mark.parametrize("pattern, corner, mode, adders", CASES)
def test_value_path_matches_golden(corner, mode, adders, pattern):
    cfg = CoreConfig.create(mode=mode, adders=adders,
                            **{**CORNERS, **ROW_CORNERS, **KEY_CORNERS}[corner])
    check_value_path(cfg, component(cfg), sum(map(ord, corner + mode)),
                     windows=2 if cfg.N == 64 else 3, pattern=pattern)


# topk's stages work on queries at once (issue 16; three with the histogram selection, two
# streaming): M = 1, 2, 3 (divides neither N nor most n) and N, unfolded and folded (P = 2
# of d = 3), each selection
OVERLAP = [dict(d=3, w=8, b=7, N=7, k=2, keys_per_cycle=M, lanes=P)
           for M in (1, 2, 3, 7) for P in (3, 2)] + \
    [dict(d=d, w=4, b=3, N=16, k=2, keys_per_cycle=M, lanes=1) for d, M in ((17, 1), (16, 2))]


@pytest.mark.parametrize("selection", ScanPlan.SELECTIONS)
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("params", OVERLAP,
                         ids=lambda p: f"M{p['keys_per_cycle']}-P{p['lanes']}-d{p['d']}")
def test_topk_queries_overlap(params, pattern, selection):
    """Five queries per window back to back, windows of n = 1, n < M, n = N and between
    (the next window's keys wait until the last query is done): every output bit-exact; at
    full rate each query enters exactly ``interval`` after the previous one, which is less
    than the latency (the stages overlap), and leaves ``latency`` after it entered; with
    random handshakes on both sides (output stalls reach back through the stages). Both
    selections, whichever the plan would choose."""
    cfg = CoreConfig.create(mode="topk", **params)
    plan = replace(cfg.plan.value, selection=selection)
    # (G = 16, 17 of 5-bit sums: the accumulator bank in a memory; stage C long against A,
    # so r = 1: the histograms' two-cycle read-modify-write, whose forwarding the 4 bins of
    # b = 3 and runs of 16 keys per slot exercise)
    assert plan.bank_in_memory == (cfg.groups >= 16)
    if cfg.groups >= 16:
        assert plan.hist_reg == 1
    assert len(plan.stages) == (2 if selection == "stream" else 3)
    M, seed = cfg.keys_per_cycle, 11 * cfg.keys_per_cycle + cfg.lanes
    tokens, groups, expected, windows, writes = [], [], [], [], []
    for i, n in enumerate(sorted({1, max(1, M - 1), cfg.N, (cfg.N + 1) // 2})):
        case = value_path_case(cfg, seed + i, windows=1, n_queries=5, n_keys=n,
                               extreme=i % 2 == 0)
        for whole, part in zip((tokens, groups, expected, windows, writes), case):
            whole += part or []
    run = check_value_path(cfg, plan.component(), seed, pattern=pattern,
                           case=(tokens, groups, expected, windows,
                                 writes if plan.direct_values else None))
    q_in = [c for c, t in zip(run.in_cycles, tokens) if not t["key"]]
    out = run.out_cycles
    if pattern == "full_rate":
        # folded, a window's first query enters in the cycle after its last key's token:
        # the key's code and counters are written from registers (KeyWriter.lag = 1 edge
        # after its first group), at or before its token's transfer (G = 2: at it), so the
        # query loads the window's n and reads its codes (a lag of 2 fails here)
        steps = zip(run.in_cycles, run.in_cycles[1:], tokens, tokens[1:])
        after_keys = [c1 - c0 for c0, c1, t0, t1 in steps if t0["key"] and not t1["key"]]
        if cfg.groups > 1:
            assert after_keys == [1] * len(windows), after_keys
        for win, first in zip(windows, range(0, len(q_in), 5)):
            n = len(win.keys)
            # (streaming, at the histogram selection's interval, a query may be done first)
            overlap = plan.interval.at(n, cfg.k) < plan.latency.at(n, cfg.k)
            assert overlap or selection == "stream"
            # a query is in each stage for at most the interval
            assert all(t.at(n, cfg.k) <= plan.interval.at(n, cfg.k) for t in plan.stages)
            if overlap:
                assert q_in[first + 1] < out[first], "the next query waited for the output"


def test_topk_interval_bound():
    """The topk query interval is a SPEC §5 timing >= every stage for every n, never above
    the histogram selection's sum (one query at a time), the histogram selection's in both
    selections, and at the ULX3S goal config (d = b = 64, N = 1024, P = 8, M = 10) the
    longest stage's A + ceil(n/M) padded by the value stage at n = k."""
    for params in (dict(d=64, b=64, N=1024, lanes=8, keys_per_cycle=10),
                   dict(d=32, b=32, N=256, lanes=1, keys_per_cycle=4), dict(N=64, k=1),
                   dict(d=3, b=7, N=7, k=2, lanes=2, keys_per_cycle=3)):
        cfg = CoreConfig.create(mode="topk", **params)
        plan = cfg.plan.value
        histogram = replace(plan, selection="histogram")
        assert plan.interval == histogram.interval
        total = sum(histogram.stages, Timing())
        for n in range(1, cfg.N + 1):
            worst = max(t.at(n, cfg.k) for t in plan.stages)
            assert worst <= plan.interval.at(n, cfg.k) <= total.at(n, cfg.k)
    goal = CoreConfig.create(mode="topk", d=64, b=64, N=1024, lanes=8, keys_per_cycle=10)
    a, _, c = goal.plan.value.stages
    assert goal.plan.value.hist_reg == 1    # stage A two edges longer: the interval is the same
    assert a == Timing(54, per_block=1, block=10) and c == Timing(12, per_kept=8)
    assert goal.plan.value.interval == Timing(c.at(8, 8) - 1, per_block=1, block=10)
    # (the smallest at n = N, then over all n)
    assert bound([Timing(5), Timing(3, per_key=1)], 4) == Timing(7)
    assert bound([Timing(5), Timing(3, per_key=2)], 4) == Timing(3, per_key=2)
    assert bound([Timing(9)], 4) == Timing(9)


def test_scan_plan_is_topk_only():
    # ScanPlan serves topk alone (hsoftmax is HsoftmaxPlan): k is required and at least 1
    with pytest.raises(TypeError, match="'k'"):
        ScanPlan(d=4, w=8, b=2, N=4)
    with pytest.raises(ValueError, match="k = 0: keys kept per query, at least 1"):
        ScanPlan(d=4, w=8, b=2, N=4, k=0)
    plan = ScanPlan(d=4, w=8, b=2, N=4, k=2, lanes=2)
    assert (plan.mode, plan.groups, plan.kept, plan.max_weight, plan.hamming.b) == \
        ("topk", 2, 2, 1, 2)
    assert (plan.value_slots, plan.value_words) == (1, 8)
    assert not hasattr(plan, "weight_shifts")


@pytest.mark.parametrize("d, b, N, k, M", [(1, 1, 1, 1, 1), (64, 1, 1, 1, 1), (3, 7, 7, 2, 3),
                                           (16, 16, 64, 8, 4), (16, 64, 64, 64, 64),
                                           (2, 256, 300, 2, 7), (64, 3, 300, 64, 1)])
def test_topk_values_written_after_the_window_is_done(d, b, N, k, M):
    """An unfolded topk core writes a key's value into the value memory as it accepts the key
    (``direct_values``), before the code leaves the hash: the next window's first key waits
    (the core's ``wait``, 2**XS query intervals of the window's n) at least until the last
    query's value pass has read its last value, hash and value path latency after it."""
    cfg = CoreConfig.create(d=d, b=b, N=N, k=k, keys_per_cycle=M, mode="topk")
    plan = cfg.plan
    assert plan.value.direct_values
    XS = (plan.value.stages_in_flight - 1).bit_length()
    for n in range(1, N + 1):
        assert plan.q_interval.at(n, k) << XS >= \
            plan.hash.latency.at(n) + plan.value.latency.at(n, k), n


def test_topk_selection_is_a_plan_decision():
    """The plan streams where the path is unfolded and M·k <= ScanPlan.STREAM_CELLS (32),
    else it keeps the histogram selection: the default config at M = 1, 2, 4 streams; M = 5
    (40 cells), k = 64, a folded default config and the goals (iCEBreaker P = 1 M = 2,
    ULX3S P = 8 M = 10) do not; a selection can be asked for, and anything else is
    refused."""
    def selection(**params):
        return CoreConfig.create(mode="topk", **params).plan.value.selection
    assert [selection(keys_per_cycle=M) for M in (1, 2, 4)] == ["stream"] * 3
    assert selection(keys_per_cycle=5) == "histogram"                  # 40 cells
    assert selection(lanes=4, keys_per_cycle=2) == "histogram"
    assert selection(d=32, b=32, N=256, lanes=1, keys_per_cycle=2) == "histogram"
    assert selection(d=64, b=64, N=1024, lanes=8, keys_per_cycle=10) == "histogram"
    assert selection(N=64, k=64) == "histogram"
    assert ScanPlan(d=4, w=8, b=4, N=4, k=2, selection="histogram").selection == "histogram"
    with pytest.raises(ValueError, match="selection = 'heap': one of"):
        ScanPlan(d=4, w=8, b=4, N=4, k=2, selection="heap")
