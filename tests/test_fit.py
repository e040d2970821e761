"""Hash fitting (fit/train.py) and ``hamattn fit``: determinism, a valid weights file,
weight width, ITQ's quantization loss, the ranking fit's recall, and clear CLI errors.
Synthetic data only (no model download); a few seconds in all."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hamattn.bench.fidelity import method_bits
from hamattn.cli import main as cli_main
from hamattn.config import CoreConfig
from hamattn.fit import (METHODS, fit_hash, hash_bits, quantization_loss, quantize_weights,
                         save_weights, window_data)
from hamattn.fit.train import _table_cos, _value_stats, refine_shifts
from hamattn.golden import run

D = 16


def clustered(seed=0, windows=6, n=32, d=D, clusters=6, spread=0.25, scale=60, offset=0.0):
    """Int8 queries and keys drawn around shared cluster centres (the same centres for every
    seed): a query attends mostly to the keys of its own cluster. ``offset`` adds a common
    vector to all queries and another to all keys, as real attention activations have.
    Returns (queries, keys) of shape (windows, n, d) and the logit scale of a sharp softmax
    on them."""
    crng = np.random.default_rng(12345)
    centres = crng.standard_normal((clusters, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    oq, ok = offset * crng.standard_normal((2, d)) / math.sqrt(d)
    rng = np.random.default_rng(seed)
    qc = rng.integers(0, clusters, (windows, n))
    kc = rng.integers(0, clusters, (windows, n))
    q = centres[qc] + oq + spread * rng.standard_normal((windows, n, d))
    k = centres[kc] + ok + spread * rng.standard_normal((windows, n, d))
    q = np.clip(np.rint(q * scale), -128, 127).astype(np.int64)
    k = np.clip(np.rint(k * scale), -128, 127).astype(np.int64)
    return q, k, 8.0 / scale ** 2


def recall8(arrays, q, k):
    """Top-8 recall of the Hamming ranking against the ranking by q.k, per window."""
    W, t = arrays["W"], arrays["theta"]
    Wq, tq = arrays.get("Wq", W), arrays.get("thetaq", t)
    hits = total = 0
    for qq, kk in zip(q, k):
        cq, ck = hash_bits(qq, Wq, tq), hash_bits(kk, W, t)
        H = (cq[:, None, :] != ck[None, :, :]).sum(axis=2)
        approx = np.argsort(H, axis=1, kind="stable")[:, :8]
        exact = np.argsort(-(qq @ kk.T), axis=1, kind="stable")[:, :8]
        hits += sum(len(set(a) & set(e)) for a, e in zip(approx, exact))
        total += 8 * len(qq)
    return hits / total


# =========================================================================== library

@pytest.mark.parametrize("method", METHODS)
def test_fit_is_deterministic_for_a_seed(method):
    q, k, ls = clustered()
    a = fit_hash(q, k, 24, method, 2, seed=3, logit_scale=ls, iters=40)
    b = fit_hash(q, k, 24, method, 2, seed=3, logit_scale=ls, iters=40)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    if method == "random":
        c = fit_hash(q, k, 24, method, 2, seed=4, logit_scale=ls)
        assert not np.array_equal(a["W"], c["W"])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("weight_bits", [2, 3, 4, 8])
def test_weights_respect_the_width(method, weight_bits):
    q, k, ls = clustered(windows=3)
    a = fit_hash(q, k, 20, method, weight_bits, seed=0, logit_scale=ls, iters=30)
    lim = 2 ** (weight_bits - 1) - 1
    for key in ("W", "Wq"):
        if key in a:
            assert a[key].dtype.kind == "i" and a[key].shape == (20, D)
            assert np.abs(a[key]).max() <= lim
            assert (np.abs(a[key]).sum(axis=1) > 0).all()      # no dead bit
    if weight_bits == 2:
        assert set(np.unique(a["W"])) <= {-1, 0, 1}


@pytest.mark.parametrize("method", METHODS)
def test_written_file_loads_and_runs(method, tmp_path):
    q, k, ls = clustered(windows=3)
    a = fit_hash(q, k, 32, method, 2, seed=0, logit_scale=ls, iters=30)
    path = save_weights(tmp_path / "hash.npz", a)
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) <= {"W", "theta", "Wq", "thetaq", "shifts"}
        assert all(z[f].dtype == np.int64 for f in z.files)
        assert "g" not in z.files
    for mode in ("linear", "topk", "hsoftmax"):
        cfg = CoreConfig.create(d=D, w=8, b=32, N=32, mode=mode, weights=str(path))
        np.testing.assert_array_equal(cfg.W_array, a["W"])
        np.testing.assert_array_equal(cfg.theta_array, a["theta"])
        if "Wq" in a:
            assert cfg.asymmetric
            np.testing.assert_array_equal(cfg.Wq_array, a["Wq"])
        if mode == "hsoftmax" and "shifts" in a:
            assert list(cfg.shifts) == list(a["shifts"])
        r = run(cfg, k[0], k[0], q[0])
        assert r.out.shape == (32, D)


def values_for(k, seed=7):
    """Int8 values of the keys' layout (a seeded draw)."""
    rng = np.random.default_rng(seed)
    return rng.integers(-100, 101, k.shape).astype(np.int64)


def test_default_ranking_fit_with_values_is_deterministic():
    # the defaults (output term, cosine-refined shift table) and the bench's input noise
    q, k, ls = clustered(windows=4)
    v = values_for(k)
    a = fit_hash(q, k, 16, "ranking", 4, seed=5, logit_scale=ls, iters=30, values=v,
                 noise=0.3)
    b = fit_hash(q, k, 16, "ranking", 4, seed=5, logit_scale=ls, iters=30, values=v,
                 noise=0.3)
    assert a.keys() == b.keys() and "shifts" in a
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    c = fit_hash(q, k, 16, "ranking", 4, seed=5, logit_scale=ls, iters=30, values=v,
                 noise=0.0)
    assert any(not np.array_equal(a[key], c[key]) for key in ("W", "Wq", "theta"))


def test_cosine_shift_table_raises_the_sample_cosine():
    q, k, ls = clustered(windows=4, spread=0.4)
    v = values_for(k)
    kw = dict(logit_scale=ls, iters=30, values=v, smax=20)
    ce = fit_hash(q, k, 24, "ranking", 4, seed=0, shift_fit="ce", **kw)
    co = fit_hash(q, k, 24, "ranking", 4, seed=0, shift_fit="cosine", **kw)
    for key in ("W", "theta", "Wq", "thetaq"):          # same hash, only the table differs
        np.testing.assert_array_equal(ce[key], co[key])
    s = co["shifts"]
    assert s[0] == 0 and (np.diff(s) >= 0).all() and s.max() <= 20
    Hs, rows = [], []
    for w, (qq, kk) in enumerate(zip(q, k)):
        cq, ck = hash_bits(qq, co["Wq"], co["thetaq"]), hash_bits(kk, co["W"], co["theta"])
        Hs.append((cq[:, None, :] != ck[None, :, :]).sum(axis=2))
        rows += [(w, i) for i in range(len(qq))]
    vsum = _value_stats(Hs, list(v.astype(np.float64)), rows, 24)
    P = [np.exp(ls * (qq @ kk.T) - (ls * (qq @ kk.T)).max(axis=1, keepdims=True))
         for qq, kk in zip(q, k)]
    ref = np.stack([(P[w][i] / P[w][i].sum()) @ v[w] for w, i in rows])
    assert _table_cos(co["shifts"].astype(float), vsum, ref) > \
        _table_cos(ce["shifts"].astype(float), vsum, ref) + 1e-4
    # the stats agree with a direct sum over the keys at each distance
    w, i = rows[5]
    for h in range(25):
        np.testing.assert_allclose(vsum[5, h], v[w][Hs[w][i] == h].sum(axis=0))


def test_shift_queries_samples_the_table_fit():
    # the table is fitted on a seeded sample of at most shift_queries queries; with all of
    # them (4 windows of 32 queries) a larger limit changes nothing, a smaller one only the
    # table (the hash is fitted before it), deterministically
    q, k, ls = clustered(windows=4, spread=0.4)
    v = values_for(k)
    kw = dict(logit_scale=ls, iters=30, values=v, smax=20)
    full = fit_hash(q, k, 24, "ranking", 4, seed=0, **kw)
    big = fit_hash(q, k, 24, "ranking", 4, seed=0, shift_queries=10_000, **kw)
    few = fit_hash(q, k, 24, "ranking", 4, seed=0, shift_queries=40, **kw)
    again = fit_hash(q, k, 24, "ranking", 4, seed=0, shift_queries=40, **kw)
    for key in ("W", "theta", "Wq", "thetaq", "shifts"):
        np.testing.assert_array_equal(full[key], big[key])
        np.testing.assert_array_equal(few[key], again[key])
    for key in ("W", "theta", "Wq", "thetaq"):
        np.testing.assert_array_equal(full[key], few[key])
    s = few["shifts"]
    assert s[0] == 0 and (np.diff(s) >= 0).all() and s.max() <= 20


@pytest.mark.parametrize("method,bits", [("ranking-w4", ("ranking", 4)),
                                         ("ranking-w8", ("ranking", 8)),
                                         ("itq", ("itq", 2)), ("random-w3", ("random", 3))])
def test_bench_method_names(method, bits):
    assert method_bits(method) == bits


@pytest.mark.parametrize("method,message", [
    ("pca", "method 'pca' is not allowed: random, itq or ranking"),
    ("ranking-w17", "method 'ranking-w17' is not allowed: the weight width N of -wN must be "
                    "from 2 to 16"),
    ("ranking-wx", "method 'ranking-wx' is not allowed"),
])
def test_bench_method_name_errors(method, message):
    with pytest.raises(ValueError, match=message):
        method_bits(method)


def test_shift_table_is_valid():
    q, k, ls = clustered()
    for b in (8, 64):
        a = fit_hash(q, k, b, "itq", 2, seed=0, logit_scale=ls, smax=12)
        s = a["shifts"]
        assert s.shape == (b + 1,) and s[0] == 0 and s.max() <= 12
        assert (np.diff(s) >= 0).all()
        assert 0 < float(a["g"]) <= 64


def test_itq_reduces_quantization_loss_against_random():
    q, k, _ = clustered(windows=8, spread=0.15, clusters=12)
    X = np.concatenate([q.reshape(-1, D), k.reshape(-1, D)])
    for b in (4, 8, 16, 32):
        itq = fit_hash(q, k, b, "itq", 4, seed=0)
        rnd = fit_hash(q, k, b, "random", 4, seed=0)
        loss_itq = quantization_loss(X, itq["W"], itq["theta"])
        loss_rnd = quantization_loss(X, rnd["W"], rnd["theta"])
        assert loss_itq < loss_rnd - 0.02, (b, loss_itq, loss_rnd)


def test_ranking_improves_recall_over_random():
    q, k, ls = clustered(windows=8, seed=1, offset=1.0, scale=50)
    qe, ke, _ = clustered(windows=4, seed=2, offset=1.0, scale=50)   # held-out draws
    rnd = fit_hash(q, k, 32, "random", 2, seed=0, logit_scale=ls)
    rk = fit_hash(q, k, 32, "ranking", 2, seed=0, logit_scale=ls, iters=150)
    r_rnd, r_rk = recall8(rnd, qe, ke), recall8(rk, qe, ke)
    assert r_rk > r_rnd + 0.04, (r_rnd, r_rk)


def test_quantize_weights_keeps_direction():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((40, 24))
    prev = -1
    for bits in (2, 3, 4, 6):
        Wi, s = quantize_weights(W, bits)
        assert np.abs(Wi).max() <= 2 ** (bits - 1) - 1 and (s > 0).all()
        cos = np.mean((Wi * W).sum(1) / np.linalg.norm(Wi, axis=1) / np.linalg.norm(W, axis=1))
        assert cos > prev
        prev = cos
    assert prev > 0.99


def test_window_data_layouts():
    q = np.zeros((100, 4), dtype=np.int64)
    qs, ks = window_data(q, q, 32)
    assert [len(x) for x in qs] == [32, 32, 32, 4]
    qs, ks = window_data(q, q[:10])                  # different counts: one window
    assert len(qs) == 1 and len(ks[0]) == 10
    qs, ks = window_data(q.reshape(5, 20, 4), q.reshape(5, 20, 4))
    assert len(qs) == 5


def test_window_lists_of_any_length():
    # a list of (n_i, d) windows (one sentence each) fits the same as the stacked windows
    # when the lengths agree, and windows of different lengths are accepted
    q, k, ls = clustered(windows=4)
    v = values_for(k)
    kw = dict(logit_scale=ls, iters=20, values=v, noise=0.3)
    a = fit_hash(q, k, 16, "ranking", 4, seed=3, **kw)
    b = fit_hash(list(q), list(k), 16, "ranking", 4, seed=3, **{**kw, "values": list(v)})
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    lens = (32, 9, 20, 3)
    c = fit_hash([x[:n] for x, n in zip(q, lens)], [x[:n] for x, n in zip(k, lens)], 16,
                 "ranking", 4, seed=3, logit_scale=ls, iters=20,
                 values=[x[:n] for x, n in zip(v, lens)])
    assert c["W"].shape == (16, D) and c["shifts"].shape == (17,)
    with pytest.raises(ValueError, match="lists of windows must pair"):
        window_data([q[0], q[1]], [k[0]])


def test_refined_table_is_a_local_optimum_of_the_cosine():
    # refine_shifts carries the outputs along incrementally; check the result against the
    # direct cosine: it is no worse than the start and no single legal move improves it
    rng = np.random.default_rng(4)
    b, smax = 12, 9
    vsum = rng.standard_normal((200, b + 1, 5)) * np.exp(-np.arange(b + 1) / 3)[None, :, None]
    ref = rng.standard_normal((200, 5)) + 2 * vsum[:, 0]
    start = np.minimum(np.arange(b + 1) // 2, smax)
    s = refine_shifts(start, vsum, ref, smax=smax, rounds=50)
    assert s[0] == 0 and (np.diff(s) >= 0).all() and s.max() <= smax
    best = _table_cos(s.astype(float), vsum, ref)
    assert best >= _table_cos(start.astype(float), vsum, ref)
    def legal(t):
        return (np.diff(t) >= 0).all() and 0 <= t.min() and t.max() <= smax

    moves = 0
    for i in range(1, b + 1):
        for delta in (-1, 1):
            t = np.r_[s[:i], s[i:] + delta]              # the tail, else entry i alone
            if not legal(t):
                t = np.r_[s[:i], s[i] + delta, s[i + 1:]]
            if legal(t):
                moves += 1
                assert _table_cos(t.astype(float), vsum, ref) <= best + 1e-9, (i, delta)
    assert moves > 0


@pytest.mark.parametrize("kw,message", [
    (dict(method="pca"), "method = 'pca' is not allowed"),
    (dict(weight_bits=1), "weight_bits = 1 is not allowed"),
    (dict(method="ranking"), "needs logit_scale"),
    (dict(logit_scale=-1.0), "logit_scale = -1.0 is not allowed"),
    (dict(noise=-0.1), r"noise = -0.1 is not allowed: a finite number >= 0"),
    (dict(out_weight=float("nan")), r"out_weight = nan is not allowed: a finite number >= 0"),
    (dict(lr=0.0), r"lr = 0.0 is not allowed: a finite number > 0"),
    (dict(iters=0), "iters = 0 is not allowed: a positive integer"),
    (dict(shift_queries=0), "shift_queries = 0 is not allowed: a positive integer"),
    (dict(shift_fit="mse", logit_scale=0.01), "shift_fit = 'mse' is not allowed: 'ce' or "
                                             "'cosine'"),
    (dict(shift_fit="cosine", logit_scale=0.01), r"shift_fit = 'cosine' needs values"),
])
def test_library_errors(kw, message):
    q, k, _ = clustered(windows=2)
    args = dict(method="itq", weight_bits=2)
    args.update(kw)
    with pytest.raises(ValueError, match=message):
        fit_hash(q, k, 16, args.pop("method"), args.pop("weight_bits"), 0, **args)
    with pytest.raises(ValueError, match="must be integers"):
        fit_hash(q.astype(float), k, 16, "itq")


# =========================================================================== command line

@pytest.fixture
def npy(tmp_path):
    q, k, ls = clustered(windows=4)
    paths = {}
    for name, a in (("q", q.reshape(-1, D)), ("k", k.reshape(-1, D)), ("k3", k),
                    ("q3", q), ("qf", q.reshape(-1, D).astype(np.float32)),
                    ("wide", k.reshape(-1, D) * 4), ("short", k.reshape(-1, D)[:, :8]),
                    ("flat", k.reshape(-1))):
        paths[name] = str(tmp_path / f"{name}.npy")
        np.save(paths[name], a)
    paths["ls"] = ls
    paths["npz"] = str(tmp_path / "x.npz")
    np.savez(paths["npz"], a=q)
    return paths


def fit_cli(npy, tmp_path, *extra, queries="q", keys="k"):
    out = tmp_path / "hash.npz"
    argv = ["fit", "--queries", npy[queries] if queries in npy else queries,
            "--keys", npy[keys] if keys in npy else keys, "--head-dim", str(D),
            "--code-bits", "32", "--seq-len", "32", "-o", str(out), *extra]
    return cli_main(argv), out


@pytest.mark.parametrize("extra", [
    ["--method", "itq"],
    ["--method", "random", "--weight-bits", "4"],
    ["--method", "ranking", "--iters", "40"],
    ["--method", "ranking", "--iters", "30", "--noise", "0.3", "--shift-queries", "512"],
])
def test_cli_fit_writes_a_loadable_file(npy, tmp_path, capsys, extra):
    if "ranking" in extra:
        extra = extra + ["--logit-scale", str(npy["ls"])]
    status, out = fit_cli(npy, tmp_path, *extra)
    assert status == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "hamattn gen --weights" in text
    cfg = CoreConfig.create(d=D, b=32, N=32, mode="hsoftmax", weights=str(out))
    assert cfg.weight_width <= (4 if "4" in extra else 2)
    status2, out2 = fit_cli(npy, tmp_path, *extra)     # same seed: same bytes
    assert out.read_bytes() == out2.read_bytes()


def test_cli_fit_accepts_windows(npy, tmp_path):
    status, out = fit_cli(npy, tmp_path, "--method", "itq", queries="q3", keys="k3")
    assert status == 0 and out.is_file()


@pytest.mark.parametrize("queries,keys,extra,message", [
    ("/nonexistent/q.npy", "k", [], "--queries /nonexistent/q.npy: no such file"),
    ("q", "/nonexistent/k.npy", [], "--keys /nonexistent/k.npy: no such file"),
    ("short", "k", ["--method", "itq"], "shape (128, 8) is not allowed: (n, d) or "
                                        "(windows, n, d) with d = --head-dim = 16"),
    ("q", "flat", ["--method", "itq"], "shape (2048,) is not allowed"),
    ("qf", "k", ["--method", "itq"], "the vectors must be integers (dtype float32 given)"),
    ("q", "wide", ["--method", "itq"], "do not fit --width 8"),
    ("npz", "k", ["--method", "itq"], "a .npy array is needed, not an .npz archive"),
    ("q", "k3", ["--method", "itq"], "do not match"),
    ("q", "k", [], "--method ranking needs --logit-scale"),
    ("q", "k", ["--method", "itq", "--weight-bits", "17"], "--weight-bits 17 is not allowed"),
    ("q", "k", ["--method", "itq", "--code-bits", "0"], "b (--code-bits) = 0 is not allowed"),
    ("q", "k", ["--method", "itq", "--noise", "-1"], "--noise -1.0 is not allowed: a finite "
                                                    "number >= 0"),
    ("q", "k", ["--method", "itq", "--noise", "nan"], "--noise nan is not allowed"),
    ("q", "k", ["--method", "itq", "--shift-queries", "0"], "--shift-queries 0 is not "
                                                            "allowed: a positive integer"),
])
def test_cli_fit_errors_are_clear(npy, tmp_path, capsys, queries, keys, extra, message):
    status, out = fit_cli(npy, tmp_path, *extra, queries=queries, keys=keys)
    err = capsys.readouterr().err
    assert status == 2
    assert message in err, err
    assert "Traceback" not in err and err.startswith("hamattn fit: error:")
    assert not out.exists()


def test_cli_fit_non_integer_text_flag(npy, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        fit_cli(npy, tmp_path, "--weight-bits", "two")
    assert e.value.code == 2
    assert "'two' is not allowed for --weight-bits" in capsys.readouterr().err


def test_cli_fit_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["fit", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--queries", "--keys", "--method", "--weight-bits", "--logit-scale",
                 "--code-bits", "--head-dim", "--seed"):
        assert flag in text
