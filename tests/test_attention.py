"""hamattn.golden.attention: one head's float attention through the golden model."""

from __future__ import annotations

import numpy as np
import pytest

from hamattn.config import ConfigError, CoreConfig
from hamattn.golden import attention, quant_scale, quantize, run, softmax_attention

D = 16


def cfg_of(mode, b=64, N=32, **kw):
    return CoreConfig.create(d=D, w=8, b=b, N=N, mode=mode, **kw)


def int_inputs(seed, n=20, nq=7):
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(-128, 128, (m, D)) for m in (nq, n, n))


@pytest.mark.parametrize("mode,k", [("linear", None), ("topk", 1), ("topk", 5),
                                    ("hsoftmax", None)])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_the_integer_model_on_quantized_inputs(mode, k, seed):
    # float inputs that are exact multiples of the scales quantize back to the integers
    cfg = cfg_of(mode, k=k, g=20.0, seed=seed)
    qi, ki, vi = int_inputs(seed)
    scales = (0.013, 0.11, 0.0625)
    out, r = attention(qi * scales[0], ki * scales[1], vi * scales[2], cfg, scales,
                       return_result=True)
    ref = run(cfg, ki, vi, qi)
    np.testing.assert_array_equal(r.out, ref.out)
    np.testing.assert_array_equal(out, ref.out * scales[2])
    assert out.shape == (7, D) and out.dtype == np.float64


def test_dynamic_scales_are_max_over_127():
    cfg = cfg_of("hsoftmax")
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((m, D)) * s for m, s in ((5, 2.0), (9, 0.5), (9, 3.0)))
    scales = tuple(np.abs(x).max() / 127 for x in (q, k, v))
    assert scales == tuple(quant_scale(x) for x in (q, k, v))
    np.testing.assert_array_equal(attention(q, k, v, cfg), attention(q, k, v, cfg, scales))
    r = run(cfg, *(quantize(x, s) for x, s in ((k, scales[1]), (v, scales[2]),
                                              (q, scales[0]))))
    np.testing.assert_array_equal(attention(q, k, v, cfg), r.out * scales[2])
    assert quantize(np.array([1e9, -1e9, 0.49]), 1.0).tolist() == [127, -128, 0]


def test_identical_key_dominates_in_topk_1_like_sharp_softmax():
    # a symmetric hash gives distance 0 between a vector and itself: with k = 1 the output
    # is that key's value, the limit of exact softmax attention for a sharp query
    cfg = cfg_of("topk", b=64, k=1)
    rng = np.random.default_rng(5)
    k = rng.standard_normal((24, D))
    v = rng.standard_normal((24, D))
    j = 13
    q = 4.0 * k[j:j + 1]
    scales = (quant_scale(q), quant_scale(k), quant_scale(v))
    out, r = attention(q, k, v, cfg, (scales[1] * 4.0, scales[1], scales[2]),
                       return_result=True)
    assert r.hamming()[0, j] == 0 and (np.delete(r.hamming()[0], j) > 0).all()
    np.testing.assert_allclose(out[0], quantize(v[j], scales[2]) * scales[2])
    exact = softmax_attention(8.0 * q, k, v)            # sharp: nearly all weight on key j
    cos = out[0] @ exact[0] / np.linalg.norm(out[0]) / np.linalg.norm(exact[0])
    assert cos > 0.999


def test_hsoftmax_follows_the_exact_direction_on_clustered_keys():
    # keys in two tight clusters with distinct values: the output points to the values of
    # the cluster the query belongs to, as exact softmax attention does
    cfg = cfg_of("hsoftmax", b=64, g=40.0)
    rng = np.random.default_rng(9)
    c = rng.standard_normal((2, D)) * 3
    k = np.repeat(c, 10, axis=0) + 0.05 * rng.standard_normal((20, D))
    v = np.repeat(rng.standard_normal((2, D)), 10, axis=0)
    q = c + 0.05 * rng.standard_normal((2, D))
    out = attention(q, k, v, cfg)
    exact = softmax_attention(q, k, v)
    cos = (out * exact).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(exact, axis=1)
    assert (cos > 0.99).all()


@pytest.mark.parametrize("args,message", [
    (dict(n=40), r"k = '40 keys' is not allowed: 1 to N = 32 keys"),
    (dict(v_rows=5), r"v = '5 rows' is not allowed: as many rows as k \(20\)"),
    (dict(d=8), r"q = 'array of shape \(7, 8\) and dtype float64' is not allowed"),
    (dict(scales=(1.0, 0.0, 1.0)), r"scales = \(1.0, 0.0, 1.0\) is not allowed: three "
                                   "positive finite numbers"),
    (dict(scales=(1.0, 1.0)), r"scales = \(1.0, 1.0\) is not allowed"),
    (dict(scales="abc"), r"scales = 'abc' is not allowed"),
    (dict(nan=True), r"k = 'an array with NaN or infinity' is not allowed: finite values"),
])
def test_errors_name_the_parameter(args, message):
    cfg = cfg_of("linear")
    rng = np.random.default_rng(0)
    q = rng.standard_normal((7, args.get("d", D)))
    k = rng.standard_normal((args.get("n", 20), D))
    v = rng.standard_normal((args.get("v_rows", len(k)), D))
    if args.get("nan"):
        k[0, 0] = np.nan
    with pytest.raises(ConfigError, match=message):
        attention(q, k, v, cfg, args.get("scales"))
