"""HashProjection in the Amaranth simulator against golden.hash_codes."""

import numpy as np
import pytest
from amaranth.hdl import unsigned

from hamattn import CoreConfig, golden
from hamattn.rtl import HashProjection
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


def stimulus(cfg, rng, count, ties=False):
    x = rng.integers(cfg.vmin, cfg.vmax + 1, (count, cfg.d))
    x[0] = cfg.vmin
    x[1 % count] = cfg.vmax
    query = rng.integers(0, 2, count)
    return x, query


@pytest.mark.parametrize("corner", list(CORNERS))
@pytest.mark.parametrize("pattern", ["full_rate", "random_handshake"])
def test_hash_matches_golden(corner, pattern, tmp_path):
    cfg = CoreConfig.create(**CORNERS[corner](tmp_path))
    seed = sum(map(ord, corner))
    rng = np.random.default_rng(seed)
    x, query = stimulus(cfg, rng, 24)
    expect = [int(golden.pack_codes(golden.hash_codes(cfg, x[i:i + 1], query=bool(query[i])))
                  [0].astype(object).dot([1 << (64 * j) for j in range(cfg.words)]))
              for i in range(len(x))]
    dut = HashProjection(cfg, tag_shape=unsigned(8))
    p = (1.0, 1.0) if pattern == "full_rate" else (0.6, 0.5)
    run = run_stream(dut, [{"x": [int(v) for v in row], "query": int(q), "tag": i}
                           for i, (row, q) in enumerate(zip(x, query))],
                     seed=seed, p_in=p[0], p_out=p[1],
                     convert=lambda c: (int(c.code), int(c.tag)))
    assert [c for c, _ in run.outputs] == expect, f"seed {seed}"
    assert [t for _, t in run.outputs] == list(range(len(x)))
    if pattern == "full_rate":
        lat = [o - i for i, o in zip(run.in_cycles, run.out_cycles)]
        assert lat == [cfg.hash_latency] * len(x) == [dut.latency] * len(x)


def test_hash_tie_gives_one(tmp_path):
    """y[t] == θ[t] must give bit 1 (SPEC §2)."""
    W = np.array([[1, 2], [-1, 1], [3, -2]])
    x = np.array([[5, -3]])
    theta = (W @ x[0])                     # exactly y: every bit ties
    cfg = CoreConfig.create(b=3, d=2, w=4, weights=_npz(tmp_path, "tie", W=W, theta=theta))
    run = run_stream(HashProjection(cfg), [{"x": [5, -3], "query": 0}],
                     convert=lambda c: int(c.code))
    assert run.outputs == [0b111]
    theta_above = theta + 1                # one more: every bit 0
    cfg = CoreConfig.create(b=3, d=2, w=4,
                            weights=_npz(tmp_path, "above", W=W, theta=theta_above))
    run = run_stream(HashProjection(cfg), [{"x": [5, -3], "query": 0}],
                     convert=lambda c: int(c.code))
    assert run.outputs == [0]
