"""One attention head through the core, from float activations: a drop-in for softmax.

:func:`attention` takes the float query, key and value vectors of one head (as any NumPy
transformer computes them: after the projection and its bias, before the 1/sqrt(d) scale),
quantizes them to the core's w-bit integers, runs the golden model (:func:`.run`, bit-exact
with the generated Verilog: the hash of SPEC §2 and the integer value path of SPEC §3 of
``cfg.mode``) and returns the de-quantized outputs. A model that calls it in place of
``softmax(q·kᵀ/sqrt(d)) v`` computes what it would compute with the core in its datapath.

Quantization (the one of ``make bench-fidelity``, per head and per tensor)::

    s = max|x| / (2^(w-1) - 1)                     over a calibration sample
    x_int = clip(round(x / s), -2^(w-1), 2^(w-1) - 1)
    out = s_v · out_int

Give the calibration scales (s_q, s_k, s_v) measured on sample text as ``scales`` (the
scales the hash was fitted with, see :func:`hamattn.fit.fit_hash`); without them
each call scales its own inputs (dynamic quantization).
"""

from __future__ import annotations

import math

import numpy as np

from ..config import ConfigError
from .model import run

__all__ = ["quant_scale", "quantize", "attention", "softmax_attention"]


def quant_scale(x, w=8):
    """Scale ``max|x| / (2^(w-1) - 1)`` of a float array (1.0 for an all-zero array)."""
    m = float(np.abs(np.asarray(x, dtype=np.float64)).max(initial=0.0))
    return m / ((1 << (w - 1)) - 1) if m > 0 else 1.0


def quantize(x, scale, w=8):
    """``clip(round(x / scale), -2^(w-1), 2^(w-1) - 1)`` as int64."""
    lim = (1 << (w - 1)) - 1
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) / scale), -lim - 1,
                   lim).astype(np.int64)


def softmax_attention(q, k, v):
    """Exact float attention ``softmax(q·kᵀ / sqrt(d)) v`` (the function replaced)."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    s = q @ k.T / math.sqrt(q.shape[1])
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    return (p / p.sum(axis=1, keepdims=True)) @ v


def _float_matrix(name, x, d):
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != d or x.dtype.kind not in "fiu":
        raise ConfigError(name, f"array of shape {x.shape} and dtype {x.dtype}",
                          f"a real array of shape (n, d={d})")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ConfigError(name, "an array with NaN or infinity", "finite values")
    return x


def attention(q, k, v, cfg, scales=None, *, return_result=False):
    """Attention of one head through the core: float ``q`` (n_q, d), ``k`` and ``v``
    (n, d), ``cfg`` a :class:`hamattn.config.CoreConfig` (its hash, mode, width w and
    table), ``scales`` the calibration scales (s_q, s_k, s_v) or None for max|x| of these
    inputs. Returns the float outputs (n_q, d), ``s_v · out_int``, and with
    ``return_result`` also the :class:`.GoldenResult` of the integer model.

    Each query attends to all n keys (one window of SPEC §4, no causal mask); n must be at
    most ``cfg.N`` (the core would ignore the keys beyond, so they are refused here).
    Inputs beyond a given scale's range are clipped, as the int8 conversion would."""
    q = _float_matrix("q", q, cfg.d)
    k = _float_matrix("k", k, cfg.d)
    v = _float_matrix("v", v, cfg.d)
    if len(k) != len(v):
        raise ConfigError("v", f"{len(v)} rows", f"as many rows as k ({len(k)})")
    if not 1 <= len(k) <= cfg.N:
        raise ConfigError("k", f"{len(k)} keys", f"1 to N = {cfg.N} keys (the window of the "
                          "core; build the config with a larger N)")
    if scales is None:
        scales = tuple(quant_scale(x, cfg.w) for x in (q, k, v))
    else:
        given = scales
        try:
            scales = tuple(float(s) for s in scales)
        except (TypeError, ValueError):
            scales = ()
        if len(scales) != 3 or not all(math.isfinite(s) and s > 0 for s in scales):
            raise ConfigError("scales", given, "three positive finite numbers "
                              "(s_q, s_k, s_v), or None")
    sq, sk, sv = scales
    r = run(cfg, quantize(k, sk, cfg.w), quantize(v, sv, cfg.w), quantize(q, sq, cfg.w))
    out = r.out.astype(np.float64) * sv
    return (out, r) if return_result else out
