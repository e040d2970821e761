"""The golden model against a plain O(n^2) Python reference written from SPEC §2-§3.

Every random case is drawn from a fixed seed that appears in the test id; the reference
(``reference_window``) is the only place the formulas are re-derived, with Python ints and
explicit loops over t, j and e, and it is never fed anything the model computed.
"""

from __future__ import annotations

import builtins
import math
import random
from fractions import Fraction

import numpy as np
import pytest

from hamattn.config import MODES, CoreConfig, WeightsError
from hamattn.golden import (attention_outputs, hash_codes, linear_state, pack_codes, rdiv,
                            run)


# =========================================================================== the reference
# SPEC §2-§3 straight from the page: Python ints, no NumPy, O(nq * n * (b + d)).

def reference_rdiv(a, den):
    """sign(a) * floor((2|a| + den) / (2 den))."""
    assert den > 0
    mag = (2 * abs(a) + den) // (2 * den)
    return -mag if a < 0 else mag


def reference_shifts(cfg):
    """s[h] = min(smax, floor(g*h*log2(e)/b + 1/2)) for h = 0..b."""
    return [min(cfg.smax, math.floor(cfg.g * h * math.log2(math.e) / cfg.b + 0.5))
            for h in range(cfg.b + 1)]


def reference_code(W, theta, x):
    """c[t] = 1 if sum_i W[t][i]*x[i] >= theta[t] (a tie gives 1)."""
    bits = []
    for t in range(len(W)):
        y = 0
        for i in range(len(x)):
            y += W[t][i] * x[i]
        bits.append(1 if y >= theta[t] else 0)
    return bits


def reference_window(cfg, keys, values, queries, shifts=None):
    """One window by SPEC §3. ``keys``/``values``/``queries`` are lists of lists of ints;
    ``shifts`` overrides the hsoftmax table (a weights file's own table), else the formula.
    Returns dict(out, num, den, H, n, overflow) of Python ints."""
    b, d, N = cfg.b, cfg.d, cfg.N
    overflow = len(keys) > N
    keys, values = keys[:N], values[:N]
    n = len(keys)
    W = [list(r) for r in cfg.W]
    theta = list(cfg.theta)
    Wq = [list(r) for r in cfg.Wq] if cfg.Wq is not None else W
    thetaq = list(cfg.thetaq) if cfg.thetaq is not None else theta
    kcodes = [reference_code(W, theta, x) for x in keys]
    s = list(shifts) if shifts is not None else reference_shifts(cfg)
    outs, nums, dens, Hs = [], [], [], []
    for q in queries:
        qc = reference_code(Wq, thetaq, q)
        H = []
        for j in range(n):
            h = 0
            for t in range(b):
                h += qc[t] ^ kcodes[j][t]
            H.append(h)
        if cfg.mode == "linear":
            weight = [2 * (b - H[j]) + 1 for j in range(n)]
        elif cfg.mode == "topk":
            order = sorted(range(n), key=lambda j: (H[j], j))[:min(cfg.k, n)]
            chosen = set(order)
            weight = [1 if j in chosen else 0 for j in range(n)]
        else:
            weight = [2 ** (s[b] - s[H[j]]) for j in range(n)]
        num = []
        for e in range(d):
            acc = 0
            for j in range(n):
                acc += weight[j] * values[j][e]
            num.append(acc)
        den = sum(weight)
        outs.append([reference_rdiv(num[e], den) for e in range(d)])
        nums.append(num)
        dens.append(den)
        Hs.append(H)
    return dict(out=outs, num=nums, den=dens, H=Hs, n=n, overflow=overflow)


# =========================================================================== helpers

def ints(a):
    """A NumPy array (int64 or object) as nested lists of Python ints."""
    a = np.asarray(a)
    if a.ndim == 0:
        return int(a)
    return [ints(x) for x in a]


def draw(rng, cfg, n, kind):
    """(n, d) w-bit inputs of one flavour."""
    lo, hi = cfg.vmin, cfg.vmax
    if kind == "uniform":
        return rng.integers(lo, hi + 1, size=(n, cfg.d))
    if kind == "extreme":
        return rng.choice(np.array([lo, hi]), size=(n, cfg.d))
    if kind == "small":
        return rng.integers(max(lo, -2), min(hi, 2) + 1, size=(n, cfg.d))
    if kind == "vmin":
        return np.full((n, cfg.d), lo)
    if kind == "vmax":
        return np.full((n, cfg.d), hi)
    if kind == "dup":      # few distinct vectors: many identical codes, many Hamming ties
        base = rng.integers(lo, hi + 1, size=(3, cfg.d))
        return base[rng.integers(0, 3, size=n)]
    raise AssertionError(kind)


def check_window(cfg, keys, values, queries, shifts=None, tag=""):
    """Run model and reference on the same window and compare every field exactly."""
    r = run(cfg, keys, values, queries)
    ref = reference_window(cfg, ints(keys), ints(values), ints(queries), shifts)
    assert r.overflow == ref["overflow"], tag
    assert r.n_keys == ref["n"], tag
    assert ints(r.den) == ref["den"], tag
    assert ints(r.num) == ref["num"], tag
    assert ints(r.out) == ref["out"], tag
    if len(queries):
        assert ints(r.hamming()) == ref["H"], tag
    assert r.out.shape == (len(queries), cfg.d)
    return r, ref


def save_weights(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


# =========================================================================== random configs

def random_case(seed):
    """A seeded random (config, window) for the comparison with the reference."""
    rng = random.Random(seed)
    N = rng.choice([1, 2, 3, 5, 8, 16, 33, 64])
    cfg = CoreConfig.create(
        d=rng.choice([1, 2, 3, 5, 8, 16]),
        w=rng.choice([2, 3, 4, 8, 12, 16]),
        b=rng.choice([1, 2, 7, 16, 63, 64, 65, 130]),
        N=N,
        mode=rng.choice(MODES),
        k=rng.randint(1, N),
        g=rng.choice([0.25, 1.0, 3.7, 12.0, 64.0]),
        smax=rng.choice([0, 1, 5, 16, 32]),
        weights=rng.choice(["random-ternary", "random-sign"]),
        seed=rng.randrange(2**63))
    n = rng.randint(1, N + 3)
    nq = rng.randint(0, 6)
    kind = rng.choice(["uniform", "extreme", "small", "dup"])
    nrng = np.random.default_rng(seed)
    keys = draw(nrng, cfg, n, kind)
    values = draw(nrng, cfg, n, rng.choice(["uniform", "extreme", "small"]))
    queries = np.concatenate([draw(nrng, cfg, nq, kind), keys[:min(2, n)]])  # H = 0 too
    return cfg, keys, values, queries


RANDOM_SEEDS = list(range(1000, 1300))


@pytest.mark.parametrize("seed", RANDOM_SEEDS, ids=[f"seed{s}" for s in RANDOM_SEEDS])
def test_random_configs_match_reference(seed):
    cfg, keys, values, queries = random_case(seed)
    check_window(cfg, keys, values, queries,
                 tag=f"seed={seed} {cfg!r} n={len(keys)} nq={len(queries)}")


# =========================================================================== named corners

def corner(name, mode, **kw):
    return pytest.param(name, mode, kw, id=f"{name}-{mode}")


CORNERS = [c for mode in MODES for c in (
    corner("b1", mode, b=1, d=4, N=12, n=12, k=3),
    corner("b63", mode, b=63, d=3, N=10, n=10, k=4),
    corner("b64", mode, b=64, d=3, N=10, n=10, k=4),
    corner("b65", mode, b=65, d=3, N=10, n=10, k=4),
    corner("b130", mode, b=130, d=2, N=8, n=8, k=2),
    corner("b1024", mode, b=1024, d=2, N=4, n=4, k=2, nq=2),
    corner("d1", mode, d=1, b=16, N=16, n=16, k=5),
    corner("d1024", mode, d=1024, b=3, N=4, n=4, k=2, nq=2),
    corner("n1", mode, n=1, N=16, k=8),
    corner("N1_n1", mode, n=1, N=1, k=1),
    corner("n_eq_N", mode, n=24, N=24, k=8),
    corner("n_gt_N", mode, n=31, N=24, k=8),
    corner("N1_n_gt_N", mode, n=5, N=1, k=1),
    corner("k_eq_N", mode, n=20, N=20, k=20),
    corner("k_gt_n", mode, n=5, N=20, k=12),
    corner("w2", mode, w=2, n=20, N=20, k=3),
    corner("w16", mode, w=16, n=20, N=20, k=3),
    corner("random_sign", mode, weights="random-sign", n=20, N=20),
    corner("no_queries", mode, nq=0, n=5, N=8),
)]


@pytest.mark.parametrize("name,mode,kw", CORNERS)
def test_corners_match_reference(name, mode, kw):
    kw = dict(kw)
    n = kw.pop("n")
    nq = kw.pop("nq", 6)
    seed = sum(map(ord, name + mode))
    cfg = CoreConfig.create(mode=mode, seed=seed, **kw)
    rng = np.random.default_rng(seed)
    keys, values = draw(rng, cfg, n, "uniform"), draw(rng, cfg, n, "uniform")
    queries = np.concatenate([draw(rng, cfg, nq, "uniform"), keys[:1]])[:nq]
    r, ref = check_window(cfg, keys, values, queries, tag=f"{name} seed={seed}")
    assert r.overflow == (n > cfg.N)
    assert r.n_keys == min(n, cfg.N)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("w", [2, 8, 16], ids=lambda w: f"w{w}")
@pytest.mark.parametrize("kkind,vkind", [("vmin", "vmin"), ("vmax", "vmax"),
                                         ("vmin", "vmax"), ("extreme", "extreme"),
                                         ("extreme", "vmin")],
                         ids=lambda s: s)
def test_extreme_values_match_reference(mode, w, kkind, vkind):
    seed = 7 * w + MODES.index(mode)
    cfg = CoreConfig.create(mode=mode, w=w, d=6, b=20, N=16, k=5, seed=seed)
    rng = np.random.default_rng(seed)
    keys, values = draw(rng, cfg, 16, kkind), draw(rng, cfg, 16, vkind)
    queries = np.concatenate([draw(rng, cfg, 3, kkind), draw(rng, cfg, 2, "extreme")])
    r, _ = check_window(cfg, keys, values, queries, tag=f"seed={seed}")
    if vkind in ("vmin", "vmax"):           # every value equal: so is every output
        assert (r.out == values[0]).all()


# the three arithmetic paths of hsoftmax: float64 (exact by bound), int64, Python ints
@pytest.mark.parametrize("path,kw", [
    ("float", dict(N=64, w=8, smax=16, g=12.0)),
    ("int64", dict(N=64, w=16, smax=32, g=64.0)),
    ("object", dict(N=65536, w=16, smax=32, g=64.0)),
], ids=["hs_float", "hs_int64", "hs_object"])
@pytest.mark.parametrize("kind", ["uniform", "vmin", "extreme"])
def test_hsoftmax_arithmetic_paths(path, kw, kind):
    cfg = CoreConfig.create(mode="hsoftmax", d=4, b=8, **kw)
    assert (cfg.num_width <= 53, 53 < cfg.num_width <= 62, cfg.num_width > 62)[
        ("float", "int64", "object").index(path)], cfg.num_width
    rng = np.random.default_rng(len(kind) + cfg.num_width)
    keys = draw(rng, cfg, 20, "dup")
    values = draw(rng, cfg, 20, kind)
    queries = np.concatenate([keys[:3], draw(rng, cfg, 3, "uniform")])
    r, ref = check_window(cfg, keys, values, queries)
    assert max(ref["den"]) > 1


@pytest.mark.parametrize("N,path", [(16, "float"), (32, "int64"), (256, "int64")],
                         ids=["hs_edge_N16_float", "hs_edge_N32_int64", "hs_edge_N256_int64"])
def test_hsoftmax_exact_at_width_limit(tmp_path, N, path):
    """Sums near 2^51..2^55 whose lowest bit matters: N-1 keys at distance 0 (weight 2^32)
    with value -2^15 and one key at distance b (weight 1) with an odd value. A float path
    that is not exact (float32, or float64 beyond 2^53) gets the low bits wrong."""
    b = 8
    W = np.ones((b, 2), dtype=np.int64)          # code: all ones iff x0 + x1 >= 0
    path_npz = save_weights(tmp_path / "edge.npz", W=W, theta=np.zeros(b, dtype=np.int64))
    cfg = CoreConfig.create(mode="hsoftmax", d=2, w=16, b=b, N=N, k=1, g=64.0, smax=32,
                            weights=path_npz)
    assert cfg.weight_shifts[0] == 32 and cfg.weight_shifts[b] == 0
    assert (cfg.num_width <= 53) == (path == "float"), cfg.num_width
    keys = np.array([[5, 5]] * (N - 1) + [[-5, -5]])
    values = np.array([[-32768, 32767]] * (N - 1) + [[1, -32767]])
    queries = np.array([[5, 5], [-5, -5], [0, 0], [-1, 0]])
    r, ref = check_window(cfg, keys, values, queries)
    assert ref["den"][0] == (N - 1) * 2**32 + 1


# =========================================================================== hash ties

def test_hash_tie_gives_one(tmp_path):
    """θ[t] = y[t] of a chosen vector on even rows (tie: bit 1) and y[t] + 1 on odd rows
    (y < θ: bit 0), so the code of that vector is 0b...0101."""
    rng = np.random.default_rng(11)
    b, d, w = 12, 5, 8
    W = rng.integers(-3, 4, size=(b, d))
    x = rng.integers(-128, 128, size=d)
    y = [int(sum(int(W[t, i]) * int(x[i]) for i in range(d))) for t in range(b)]
    theta = np.array([y[t] + (t % 2) for t in range(b)], dtype=np.int64)
    path = save_weights(tmp_path / "tie.npz", W=W, theta=theta)
    cfg = CoreConfig.create(d=d, w=w, b=b, N=8, k=2, weights=path)
    bits = hash_codes(cfg, x)[0]
    assert [int(c) for c in bits] == [1 - t % 2 for t in range(b)]
    packed = int(pack_codes(bits[None, :])[0, 0])
    assert packed == sum(1 << t for t in range(0, b, 2))
    # a whole window full of ties, every mode, against the reference
    keys = np.stack([x, x, -x, x + 1 - 2 * (x > 0)])
    values = rng.integers(-128, 128, size=(4, d))
    for mode in MODES:
        check_window(cfg.replace(mode=mode), keys, values, keys, tag=mode)


def test_asymmetric_query_hash(tmp_path):
    rng = np.random.default_rng(12)
    b, d = 9, 4
    arrays = dict(W=rng.integers(-2, 3, (b, d)), theta=rng.integers(-5, 6, b),
                  Wq=rng.integers(-2, 3, (b, d)), thetaq=rng.integers(-5, 6, b))
    path = save_weights(tmp_path / "asym.npz", **arrays)
    for mode in MODES:
        cfg = CoreConfig.create(d=d, b=b, N=10, k=3, mode=mode, weights=path)
        assert cfg.asymmetric
        assert ints(cfg.Wq_array) == ints(arrays["Wq"])
        keys, values = rng.integers(-128, 128, (10, d)), rng.integers(-128, 128, (10, d))
        queries = np.concatenate([keys[:3], rng.integers(-128, 128, (3, d))])
        check_window(cfg, keys, values, queries, tag=mode)
        # queries really use Wq: the same vector hashed as key and as query differ somewhere
    kq = hash_codes(cfg, keys, query=True)
    kk = hash_codes(cfg, keys)
    assert (kq != kk).any()


def test_file_shift_table(tmp_path):
    rng = np.random.default_rng(13)
    b, d = 6, 3
    shifts = np.array([0, 0, 3, 3, 9, 20, 32])
    path = save_weights(tmp_path / "s.npz", W=rng.integers(-1, 2, (b, d)),
                        theta=np.zeros(b, dtype=np.int64), shifts=shifts)
    cfg = CoreConfig.create(d=d, b=b, N=16, mode="hsoftmax", weights=path)
    keys, values = rng.integers(-128, 128, (16, d)), rng.integers(-128, 128, (16, d))
    check_window(cfg, keys, values, keys[:5], shifts=ints(shifts))


# =========================================================================== topk ties

@pytest.mark.parametrize("k", [1, 2, 5])
def test_topk_ties_go_to_lower_index(k):
    """Identical keys have identical codes: every H ties, and the first k keys win."""
    rng = np.random.default_rng(100 + k)
    cfg = CoreConfig.create(mode="topk", d=5, b=16, N=12, k=k, seed=k)
    keys = np.repeat(rng.integers(-128, 128, (1, 5)), 12, axis=0)
    values = rng.integers(-128, 128, (12, 5))
    queries = rng.integers(-128, 128, (4, 5))
    r = run(cfg, keys, values, queries)
    for e in range(5):
        want = reference_rdiv(sum(int(values[j, e]) for j in range(k)), k)
        assert (r.out[:, e] == want).all()
    check_window(cfg, keys, values, queries)


@pytest.mark.parametrize("seed", range(200, 210), ids=lambda s: f"seed{s}")
def test_topk_many_ties_small_b(seed):
    """b = 1 or 2: distances take 2 or 3 values over many keys; the cut falls inside a tie."""
    rng = np.random.default_rng(seed)
    cfg = CoreConfig.create(mode="topk", d=3, b=1 + seed % 2, N=40, k=1 + seed % 17,
                            seed=seed)
    keys, values = rng.integers(-128, 128, (40, 3)), rng.integers(-128, 128, (40, 3))
    check_window(cfg, keys, values, rng.integers(-128, 128, (8, 3)), tag=f"seed={seed}")


def test_topk_k_ge_n_is_mean():
    rng = np.random.default_rng(300)
    cfg = CoreConfig.create(mode="topk", d=4, b=16, N=32, k=32)
    values = rng.integers(-128, 128, (7, 4))
    r = run(cfg, rng.integers(-128, 128, (7, 4)), values, rng.integers(-128, 128, (3, 4)))
    for e in range(4):
        assert (r.out[:, e] == reference_rdiv(int(values[:, e].sum()), 7)).all()
    assert (r.den == 7).all()


# =========================================================================== identities

@pytest.mark.parametrize("b", [1, 7, 64, 65, 130], ids=lambda b: f"b{b}")
@pytest.mark.parametrize("w", [2, 8, 16], ids=lambda w: f"w{w}")
def test_accumulate_only_form_equals_kernel_form(b, w):
    """num[e] = sum_t s_q[t] S[t,e] + (b+1) V[e] and den = sum_t s_q[t] z[t] + n(b+1) equal
    sum_j kappa_j v_j[e] and sum_j kappa_j, kappa_j = 2(b - H) + 1, exactly."""
    seed = 17 * b + w
    rng = np.random.default_rng(seed)
    cfg = CoreConfig.create(d=7, w=w, b=b, N=300, seed=seed)
    n = 300
    keys, values = draw(rng, cfg, n, "uniform"), draw(rng, cfg, n, "extreme")
    queries = np.concatenate([draw(rng, cfg, 20, "uniform"), keys[:3]])
    kbits = hash_codes(cfg, keys).astype(np.int64)
    qbits = hash_codes(cfg, queries, query=True).astype(np.int64)
    S, z, V, nn = linear_state(cfg, kbits.astype(np.uint8), values)
    assert nn == n
    sk = 2 * kbits - 1
    assert (S == sk.T @ values).all() and (z == sk.sum(0)).all() and (V == values.sum(0)).all()
    sq = 2 * qbits - 1
    num_acc = sq @ S + (b + 1) * V
    den_acc = sq @ z + n * (b + 1)
    H = (qbits[:, None, :] != kbits[None, :, :]).sum(axis=2)
    kappa = 2 * (b - H) + 1
    assert kappa.min() >= 1 and kappa.max() <= 2 * b + 1
    assert (num_acc == kappa @ values).all()
    assert (den_acc == kappa.sum(axis=1)).all()
    r = run(cfg, keys, values, queries)
    assert (r.num == num_acc).all() and (r.den == den_acc).all()
    assert (r.hamming() == H).all()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(400, 410), ids=lambda s: f"seed{s}")
def test_outputs_within_value_range(mode, seed):
    pr = random.Random(seed)
    N = pr.choice([1, 7, 64, 500])
    cfg = CoreConfig.create(mode=mode, d=pr.choice([1, 5, 16]), w=pr.choice([2, 8, 16]),
                            b=pr.choice([1, 16, 65]), N=N, k=pr.randint(1, N),
                            smax=pr.choice([0, 16, 32]), g=pr.choice([1.0, 12.0, 64.0]),
                            seed=seed)
    rng = np.random.default_rng(seed)
    n = pr.randint(1, N + 5)
    kind = pr.choice(["uniform", "extreme", "dup"])
    keys, values = draw(rng, cfg, n, kind), draw(rng, cfg, n, kind)
    queries = draw(rng, cfg, 64, "uniform")
    r = run(cfg, keys, values, queries)
    used = values[:N]
    assert (r.out >= used.min(axis=0)).all() and (r.out <= used.max(axis=0)).all()
    assert r.out.min() >= cfg.vmin and r.out.max() <= cfg.vmax


# =========================================================================== rdiv

@pytest.mark.parametrize("a,den,want", [
    (5, 2, 3), (-5, 2, -3), (4, 3, 1), (-1, 2, -1), (1, 3, 0), (0, 7, 0), (1, 2, 1),
    (3, 2, 2), (-3, 2, -2), (7, 7, 1), (-7, 7, -1), (2, 4, 1), (-2, 4, -1), (5, 3, 2),
    (-4, 3, -1), (1, 1, 1), (-128, 1, -128),
], ids=lambda v: str(v))
def test_rdiv_hand_cases(a, den, want):
    got = rdiv(a, den)
    assert int(got) == want
    assert int(rdiv(np.array([a]), np.array([den]))[0]) == want


def test_rdiv_matches_half_away_from_zero_exhaustive():
    """Against an independent definition: round |a/den| with halves up, then the sign."""
    a = np.arange(-300, 301)
    for den in range(1, 40):
        got = rdiv(a, np.full_like(a, den))
        for ai, gi in zip(a.tolist(), got.tolist()):
            f = abs(Fraction(ai, den))
            mag = math.floor(f) + (1 if f - math.floor(f) >= Fraction(1, 2) else 0)
            assert gi == (-mag if ai < 0 else mag), (ai, den)


@pytest.mark.parametrize("a,den,want", [
    (35 * 10**29, 10**30, 4), (-35 * 10**29, 10**30, -4),          # 3.5 -> 4
    (34 * 10**29, 10**30, 3), (-36 * 10**29, 10**30, -4),
    (2**70, 2**70 - 1, 1), (-(2**70), 2**71, -1), (2**70 - 1, 2**71, 0),
    (10**40, 1, 10**40), (-(10**40) - 1, 2, -(5 * 10**39) - 1),
    (2**62, 1, 2**62), (2**63 - 1, 1, 2**63 - 1), (2**61 + 1, 2, 2**60 + 1),
], ids=lambda v: str(v)[:12])
def test_rdiv_huge_operands(a, den, want):
    assert int(rdiv(a, den)) == want
    got = rdiv(np.array([a, -a], dtype=object), np.array([den, den], dtype=object))
    assert [int(x) for x in got] == [want, -want]


def test_rdiv_huge_random_against_formula():
    rng = random.Random(5)
    a = [rng.randrange(-2**100, 2**100) for _ in range(300)]
    den = [rng.randrange(1, 2**rng.randrange(1, 90)) for _ in range(300)]
    got = rdiv(np.array(a, dtype=object), np.array(den, dtype=object))
    assert [int(x) for x in got] == [reference_rdiv(x, y) for x, y in zip(a, den)]


def test_rdiv_refuses_nonpositive_den():
    for den in (0, -1):
        with pytest.raises(ValueError):
            rdiv(3, den)


# =========================================================================== pack_codes

@pytest.mark.parametrize("b", [1, 63, 64, 65, 130, 1024], ids=lambda b: f"b{b}")
def test_pack_codes_bit_order(b):
    rng = np.random.default_rng(b)
    bits = rng.integers(0, 2, size=(9, b)).astype(np.uint8)
    words = pack_codes(bits)
    assert words.dtype == np.uint64 and words.shape == (9, (b + 63) // 64)
    for r in range(9):
        as_int = 0
        for t in range(b):
            assert (int(words[r, t // 64]) >> (t % 64)) & 1 == bits[r, t], (r, t)
            as_int |= int(bits[r, t]) << t
        # the words read as one little-endian integer: no stray padding bits
        assert sum(int(x) << (64 * i) for i, x in enumerate(words[r])) == as_int
    # a single set bit t lands in word t//64 as 1 << (t % 64)
    for t in {0, b - 1, b // 2, min(63, b - 1), min(64, b - 1)}:
        one = np.zeros((1, b), dtype=np.uint8)
        one[0, t] = 1
        w = pack_codes(one)[0]
        assert [int(x) for x in w] == [(1 << (t % 64)) if i == t // 64 else 0
                                       for i in range(len(w))]


# =========================================================================== random hashes

@pytest.mark.parametrize("source", ["random-ternary", "random-sign"])
def test_random_hash_reproducible(source):
    a = CoreConfig.create(b=64, d=64, weights=source, seed=123)
    b = CoreConfig.create(b=64, d=64, weights=source, seed=123)
    c = CoreConfig.create(b=64, d=64, weights=source, seed=124)
    assert a.W == b.W and a == b
    assert a.W != c.W
    assert set(a.theta) == {0}
    allowed = {-1, 0, 1} if source == "random-ternary" else {-1, 1}
    assert {x for r in a.W for x in r} == allowed
    assert a.W_array.shape == (64, 64)


@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1])
def test_random_hash_is_the_documented_pcg64_stream(seed):
    """Cross-machine reproducibility: W comes from the raw PCG64 stream (fixed across NumPy
    versions), one draw r per entry in row-major order; ternary maps r % 6 = 0 to -1,
    1 to +1, else 0; sign maps the top bit 1 to -1, 0 to +1 (config._random_hash)."""
    b, d = 7, 5
    raw = [int(r) for r in np.random.PCG64(seed).random_raw(b * d)]
    tern = [-1 if r % 6 == 0 else 1 if r % 6 == 1 else 0 for r in raw]
    sign = [-1 if r >> 63 else 1 for r in raw]
    for source, flat in (("random-ternary", tern), ("random-sign", sign)):
        cfg = CoreConfig.create(b=b, d=d, weights=source, seed=seed)
        assert [x for row in cfg.W for x in row] == flat, source


def test_random_ternary_frequencies():
    """1/6, 2/3, 1/6 over 1M entries; sd of each frequency is < 5e-4, the bound 5e-3."""
    W = CoreConfig.create(b=1024, d=1024, seed=9).W_array
    freq = [(W == v).mean() for v in (-1, 0, 1)]
    for f, p in zip(freq, (1 / 6, 2 / 3, 1 / 6)):
        assert abs(f - p) < 5e-3, freq


def test_random_sign_frequencies():
    W = CoreConfig.create(b=512, d=512, weights="random-sign", seed=9).W_array
    assert abs((W == 1).mean() - 0.5) < 5e-3


def test_ternary_rows_not_all_equal_across_seeds():
    """Different seeds give different hashes, and so different codes for the same input."""
    x = np.random.default_rng(0).integers(-128, 128, (50, 16))
    codes = {hash_codes(CoreConfig.create(seed=s), x).tobytes() for s in range(8)}
    assert len(codes) == 8


# =========================================================================== the interface

def test_run_refuses_bad_inputs():
    cfg = CoreConfig.create(d=4, w=4, N=8, k=2)
    ok = np.zeros((3, 4), dtype=np.int64)
    with pytest.raises(ValueError, match="4-bit"):
        run(cfg, ok + 8, ok, ok)                       # 8 does not fit 4 signed bits
    with pytest.raises(ValueError, match="4-bit"):
        run(cfg, ok, ok - 9, ok)
    with pytest.raises(ValueError, match="integers"):
        run(cfg, ok.astype(float), ok, ok)
    with pytest.raises(ValueError, match="shape"):
        run(cfg, np.zeros((3, 5), dtype=np.int64), ok, ok)
    with pytest.raises(ValueError, match="differ"):
        run(cfg, ok, ok[:2], ok)
    with pytest.raises(ValueError, match="at least one key"):
        run(cfg, ok[:0], ok[:0], ok)


def test_attention_outputs_beats():
    cfg = CoreConfig.create(d=3, N=4, k=2)
    rng = np.random.default_rng(1)
    w1 = (rng.integers(-128, 128, (6, 3)), rng.integers(-128, 128, (6, 3)),
          rng.integers(-128, 128, (2, 3)))
    w2 = (rng.integers(-128, 128, (2, 3)), rng.integers(-128, 128, (2, 3)),
          rng.integers(-128, 128, (3, 3)))
    beats = attention_outputs(cfg, [w1, w2])
    assert [(bool(last), bool(user)) for _, last, user in beats] == \
        [(False, True), (True, True), (False, False), (False, False), (True, False)]
    ref1 = reference_window(cfg, ints(w1[0]), ints(w1[1]), ints(w1[2]))["out"]
    ref2 = reference_window(cfg, ints(w2[0]), ints(w2[1]), ints(w2[2]))["out"]
    assert [ints(row) for row, _, _ in beats] == ref1 + ref2


def test_reference_shift_table_equals_config():
    for b in (1, 2, 7, 16, 64, 65, 1024):
        for g in (1e-3, 0.5, 1.0, 3.7, 12.0, 63.9, 64.0):
            for smax in (0, 1, 16, 32):
                cfg = CoreConfig.create(b=b, g=g, smax=smax, d=1)
                assert list(cfg.shifts) == reference_shifts(cfg), (b, g, smax)
                assert list(cfg.weight_shifts) == [cfg.shifts[b] - s for s in cfg.shifts]


def test_pickled_weights_never_unpickled(tmp_path):
    """Guard for the model's only file input: an object array in the weights file runs no
    code (see also tests/test_config.py)."""
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self):
            return builtins.open, (str(marker), "w")

    path = tmp_path / "evil.npz"
    np.savez(path, W=np.array([[Boom()]], dtype=object), theta=np.zeros(1, dtype=np.int64))
    with pytest.raises(WeightsError):
        CoreConfig.create(d=1, b=1, weights=str(path))
    assert not marker.exists()
