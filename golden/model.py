"""The golden model: a pure NumPy function of (config, inputs), bit-exact with SPEC §2-§3.

Codes are packed into 64-bit words (bit t of a code is bit t % 64 of word t // 64) so any b
up to 1024 works; Hamming distances are ``np.bitwise_count`` of the XOR. ``linear`` mode
uses the accumulate-only form of SPEC §3 (state S, z, V, n), so its memory grows linearly in
the number of keys; ``topk`` and ``hsoftmax`` work on blocks of queries so that the n × n
distance matrix is never held whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GoldenResult", "run", "hash_codes", "pack_codes", "hamming", "rdiv",
           "linear_state", "attention_outputs"]

#: queries per block in the modes that compare every query with every key
BLOCK = 256


def _as_vectors(cfg, x, name):
    x = np.asarray(x)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or x.shape[1] != cfg.d:
        raise ValueError(f"{name} must have shape (n, d={cfg.d}); got {x.shape}")
    if x.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers; got dtype {x.dtype}")
    x = x.astype(np.int64)
    if x.size and (x.min() < cfg.vmin or x.max() > cfg.vmax):
        raise ValueError(f"{name} must be {cfg.w}-bit signed integers in "
                         f"[{cfg.vmin}, {cfg.vmax}]; got [{x.min()}, {x.max()}]")
    return x


def _window(cfg, keys, values, queries):
    """A window's inputs checked (:func:`_as_vectors`) and cut to its first N keys: (keys,
    values, queries, overflow), overflow true where more than N keys came."""
    keys = _as_vectors(cfg, keys, "keys")
    values = _as_vectors(cfg, values, "values")
    queries = _as_vectors(cfg, queries, "queries")
    if len(keys) != len(values):
        raise ValueError(f"keys and values differ in count: {len(keys)} != {len(values)}")
    if len(keys) == 0:
        raise ValueError("a window holds at least one key")
    return keys[:cfg.N], values[:cfg.N], queries, len(keys) > cfg.N


def hash_codes(cfg, x, query=False):
    """Code bits (n, b) as uint8 of the vectors x: c[t] = (sum_i W[t,i] x[i] >= θ[t])."""
    x = _as_vectors(cfg, x, "x")
    W, theta = (cfg.Wq_array, cfg.thetaq_array) if query else (cfg.W_array, cfg.theta_array)
    y = x @ W.T                           # |y| < 1024 * 2**15 * 2**15: exact in int64
    return (y >= theta).astype(np.uint8)


def pack_codes(bits):
    """(n, b) bits -> (n, ceil(b/64)) uint64 words, bit t in word t//64 at position t%64."""
    bits = np.asarray(bits, dtype=np.uint8)
    n, b = bits.shape
    words = (b + 63) // 64
    padded = np.zeros((n, words * 64), dtype=np.uint8)
    padded[:, :b] = bits
    packed = np.packbits(padded, axis=1, bitorder="little")        # (n, words*8) bytes
    return packed.view("<u8").reshape(n, words).astype(np.uint64)


def hamming(qwords, kwords):
    """Hamming distances (nq, nk) between packed codes."""
    x = np.bitwise_xor(qwords[:, None, :], kwords[None, :, :])
    return np.bitwise_count(x).sum(axis=2, dtype=np.int64)


def rdiv(a, den):
    """sign(a) * floor((2|a| + den) / (2 den)): division rounded half away from zero.

    Exact for any size: int64 where the operands allow it, Python integers beyond."""
    a = np.asarray(a)
    den = np.asarray(den)
    if np.any(den <= 0):
        raise ValueError("rdiv needs den > 0")
    big = a.dtype == object or den.dtype == object or \
        (a.size and int(np.abs(a).max()) >= 2**61) or (den.size and int(den.max()) >= 2**61)
    if big:
        a = a.astype(object)
        den = den.astype(object)
    mag = (2 * np.abs(a) + den) // (2 * den)
    if big:
        mag = np.asarray(mag, dtype=object)    # 0-d object operands give a bare Python int
    out = np.where(a < 0, -mag, mag)
    if big and out.size and max(abs(int(x)) for x in out.ravel()) >= 2**63:
        return out.astype(object)          # a quotient beyond int64 stays a Python int
    return out.astype(np.int64)


def linear_state(cfg, kbits, values):
    """The accumulate-only state of SPEC §3 for keys with code bits ``kbits`` (n, b):
    S[t, e] = sum_j s_kj[t] v_j[e], z[t] = sum_j s_kj[t], V[e] = sum_j v_j[e], n."""
    s = 2 * kbits.astype(np.int64) - 1
    return s.T @ values, s.sum(axis=0), values.sum(axis=0), len(values)


@dataclass(frozen=True)
class GoldenResult:
    """What the golden model computed for one window (returned by :func:`run`).

    Attributes
    ----------
    out : :class:`numpy.ndarray` (nq, d) int64
        The outputs the core must emit, one row per query.
    num : :class:`numpy.ndarray` (nq, d)
        Numerators of the final rounding division, out = rdiv(num, den).
    den : :class:`numpy.ndarray` (nq,)
        Denominators, at least 1.
    q_codes, k_codes : :class:`numpy.ndarray` (nq, words), (n, words) uint64
        Packed codes of the queries and of the used keys (:func:`pack_codes`).
    n_keys : :class:`int`
        n, the used keys of the window (at most N).
    overflow : :class:`bool`
        The ``tuser`` flag of every output of the window: more than N keys were given.

    :meth:`hamming` gives the (nq, n) distance matrix on request."""

    out: np.ndarray
    num: np.ndarray
    den: np.ndarray
    q_codes: np.ndarray
    k_codes: np.ndarray
    n_keys: int
    overflow: bool

    def hamming(self):
        return hamming(self.q_codes, self.k_codes)


def _weighted_sums(cfg, qw, kw, values):
    """num, den of topk and hsoftmax, block by block over queries."""
    nq, n = len(qw), len(kw)
    obj = cfg.num_width > 62
    num = np.zeros((nq, cfg.d), dtype=object if obj else np.int64)
    den = np.zeros(nq, dtype=object if obj else np.int64)
    if cfg.mode == "topk":
        kk = min(cfg.k, n)
        idx = np.arange(n, dtype=np.int64)
        if kk == n:                                    # every key is kept by every query
            num[:] = values.sum(axis=0)
            den[:] = n
            return num, den
    else:
        wshift = np.array(cfg.weight_shifts, dtype=np.int64)
        # float64 is exact here: every product and every partial sum of weight @ values is
        # an integer of magnitude <= N * max_weight * 2^(w-1) <= 2^(num_width-1) <= 2^52
        fast = cfg.num_width <= 53
        vals = values.astype(object) if obj else \
            values.astype(np.float64) if fast else values
    for start in range(0, nq, BLOCK):
        H = hamming(qw[start:start + BLOCK], kw)
        if cfg.mode == "topk":
            order_key = H * n + idx                    # (H, j) ascending, unique per key
            sel = np.argpartition(order_key, kk - 1, axis=1)[:, :kk]
            num[start:start + BLOCK] = values[sel].sum(axis=1)
            den[start:start + BLOCK] = kk
        else:
            weight = np.left_shift(np.int64(1), wshift[H])          # 2^(s[b]-s[H]) >= 1
            den[start:start + BLOCK] = weight.sum(axis=1)
            if obj:
                num[start:start + BLOCK] = weight.astype(object) @ vals
            elif fast:
                num[start:start + BLOCK] = (weight.astype(np.float64) @ vals).astype(np.int64)
            else:
                num[start:start + BLOCK] = weight @ vals
    return num, den


def run(cfg, keys, values, queries):
    """Outputs of one window, bit-exact with the core (SPEC §2-§3).

    Parameters
    ----------
    cfg : :class:`~hamattn.CoreConfig`
        The core's config.
    keys, values : array-like (n, d) of integers within w signed bits
        Keys and their values in arrival order, n >= 1; only the first N are used, as in
        the core.
    queries : array-like (nq, d) of integers within w signed bits
        The window's queries.

    Returns
    -------
    :class:`GoldenResult`
    """
    keys, values, queries, overflow = _window(cfg, keys, values, queries)
    n = len(keys)
    kbits = hash_codes(cfg, keys)
    qbits = hash_codes(cfg, queries, query=True)
    kw, qw = pack_codes(kbits), pack_codes(qbits)

    if cfg.mode == "linear":
        S, z, V, n = linear_state(cfg, kbits, values)
        sq = 2 * qbits.astype(np.int64) - 1
        num = sq @ S + (cfg.b + 1) * V
        den = sq @ z + n * (cfg.b + 1)
    else:
        num, den = _weighted_sums(cfg, qw, kw, values)
    out = rdiv(num, den[:, None]) if len(queries) else np.zeros((0, cfg.d), dtype=np.int64)
    return GoldenResult(out=out, num=num, den=den, q_codes=qw, k_codes=kw, n_keys=n,
                        overflow=overflow)


def attention_outputs(cfg, windows):
    """Convenience: the flat list of (out row, last, user) beats for a list of windows
    ``[(keys, values, queries), ...]``, in the order the core emits them."""
    beats = []
    for keys, values, queries in windows:
        r = run(cfg, keys, values, queries)
        for i, row in enumerate(r.out):
            beats.append((row, i == len(r.out) - 1, r.overflow))
    return beats
