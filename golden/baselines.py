"""Exact integer models of the standard-attention baselines (issue 5), and every number
their hardware needs.

The area saving of the binary-code core is measured against a design that does the same
job without binary codes, at the same d, w, N and the same work per cycle. Two baselines:

* :class:`SoftmaxSpec` — standard softmax attention (compared with modes ``topk`` and
  ``hsoftmax``): a w-bit dot product per (query, key) pair, an exponent look-up table,
  a weighted sum of the values, one rounding division;
* :class:`LinearSpec` — linear attention with w-bit real-valued feature maps (compared
  with mode ``linear``): the datapath of the core's linear path with phi(x) in place of the
  ±1 code, so every kappa·v becomes a multiplication.

Each spec is a frozen dataclass built once from the :class:`~hamattn.config.CoreConfig`
(:func:`softmax_spec`, :func:`linear_spec`, :func:`baseline_spec`); it holds the constants
(look-up table, feature matrix, shifts), every width and the pipeline depths. The model
(:func:`run_baseline`) and the RTL (``hamattn.rtl.baselines``) both read them, so nothing
is derived twice. The window rules are those of SPEC §4: only the first N keys are used and
``overflow`` marks a window that had more.

Softmax baseline — the integer model
------------------------------------
For one query q and the used keys k_0..k_{n-1}::

    s_j      = sum_i q[i] * k_j[i]                     exact w-bit dot product
    m        = max_j s_j                               pass 1
    x_j      = min((m - s_j) >> shift, size - 1)       pass 2: table index, >= 0
    weight_j = LUT[x_j]
    num[e]   = sum_j weight_j * v_j[e]       den = sum_j weight_j
    out[e]   = rdiv(num[e], den)                       SPEC §3 rounding

with the table ``LUT[i] = floor((2^F - 1) * exp(-i * scale) + 1/2)``, i = 0..size-1:

* ``F = w`` weight bits: ``LUT[0] = 2^F - 1 >= 3``, so the key with the largest score
  always weighs at least 1 and ``den >= 1``; later entries may round to 0;
* ``size = 2^min(w, 8)`` entries (one 256 × w ROM at most);
* ``scale = 2^shift / (4^(w-1) * sqrt(d))``: the elements are read as fixed-point numbers
  with w-1 fraction bits (in [-1, 1)), so ``(m - s_j) / 4^(w-1)`` is the real score
  difference, and ``1/sqrt(d)`` is the usual softmax temperature;
* ``shift`` is the smallest shift >= 0 at which the table either covers every possible
  difference (``size << shift > max(m - s)``) or reaches the point where a weight rounds to
  zero (``size * scale >= (F+1) ln 2``). Differences beyond the table use its last entry.

The weights are non-negative with ``den >= 1``, so ``out`` is a weighted average of the
values, rounded: it lies between min_j v_j[e] and max_j v_j[e] and fits w bits.

Linear baseline — the integer model
-----------------------------------
A constant integer matrix ``M`` (b, d) and bias ``beta`` (b,) give a w-bit non-negative
feature map of b features::

    y[t]   = sum_i M[t, i] * x[i] - beta[t]             exact
    phi[t] = min(max(y[t], 0) >> shift, 2^(w-1) - 1)    ReLU, scaled, clamped

    S[t, e] = sum_j phi_k_j[t] * v_j[e]      z[t] = sum_j phi_k_j[t]      (per key)
    num[e]  = sum_t phi_q[t] * S[t, e]       den  = sum_t phi_q[t] * z[t] + 1
    out[e]  = rdiv(num[e], den)

``num[e] = sum_j a_j v_j[e]`` with ``a_j = phi_q . phi_k_j >= 0`` and ``den = sum_j a_j + 1``,
so ``out`` is a convex combination of the values and of 0, shrunk by the +1, rounded: its
magnitude never exceeds 2^(w-1) on the negative side nor 2^(w-1) - 1 on the positive side
(``|num| <= 2^(w-1) (den-1)`` gives ``(2|num| + den) / (2 den) < 2^(w-1) + 1``), so it fits w
bits. The ``+1`` keeps ``den >= 1`` when every ``a_j`` is 0 (a query whose features are all
0, or orthogonal to every key's): then ``out = 0``.

``features`` picks ``M``:

* ``"dense"`` (default, the baseline of issue 5): a dense w-bit matrix, each entry uniform
  in [-2^(w-1), 2^(w-1) - 1], from the raw PCG64 stream of the config's seed (the draws
  after the b·d the hash projection takes, so the two never share a draw; the raw stream is
  fixed across NumPy versions); ``beta = 0``; keys and queries share it;
* ``"hash"``: the core's own projection ``W``, ``θ`` (and ``Wq``, ``θq`` for queries when
  the config has them): the feature map then costs the same constant adder trees as the
  core's hash, so the saving measured is that of binary codes alone.

``shift = ceil(log2(max_t ||M_t||_2))`` (0 for a zero matrix): a projection of the size of
the largest row's norm times one element's scale maps to about one element's scale; bigger
values clamp at 2^(w-1) - 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..config import (csd_digits, divider_latency, divider_steps, signed_width, tree_depth,
                      unsigned_width)
from .model import _window, rdiv

__all__ = ["SoftmaxSpec", "LinearSpec", "BaselineResult", "softmax_spec", "linear_spec",
           "divider_for",
           "baseline_spec", "baseline_kind", "run_baseline", "softmax_lut", "FEATURES",
           "LUT_MAX_BITS"]

#: queries per block in the softmax model (the (nq, n) score matrix is never held whole)
BLOCK = 256
#: address bits of the softmax exponent table at most (256 entries)
LUT_MAX_BITS = 8
FEATURES = ("dense", "hash")


# =========================================================================== divider

def divider_for(w, interval, x_bits=0):
    """(steps, depth, intake) of the baselines' divider (the core's pipelined
    :class:`~hamattn.rtl.divider.RoundingDivider`) when its engine hands it a division
    every ``interval`` edges at the most: the most restoring steps per stage (the cheapest
    divider) with ``steps <= interval``, as the core picks its own; ``depth`` = 1 (one
    division in flight) where its latency L = :func:`~hamattn.config.divider_latency` of w
    and ``x_bits`` = max(num width, den width) (w + 4, w + 5 where x_bits > CHAIN_BITS = 16:
    the divider's sign stage) fits the interval, else enough room for every division in
    flight, ``ceil(L / interval) + 1``; ``intake``: the edges it then needs between
    divisions, L at depth 1, ``steps`` otherwise."""
    steps = divider_steps(w, 1, interval)
    latency = divider_latency(w, x_bits=x_bits)
    if latency <= interval:
        return steps, 1, latency
    return steps, -(-latency // interval) + 1, steps


# =========================================================================== softmax

def softmax_lut(weight_bits, size, scale):
    """``LUT[i] = floor((2^F - 1) * exp(-i * scale) + 1/2)`` for i = 0..size-1."""
    top = (1 << weight_bits) - 1
    return tuple(int(math.floor(top * math.exp(-i * scale) + 0.5)) for i in range(size))


@dataclass(frozen=True)
class SoftmaxSpec:
    """Constants, widths and pipeline depths of the softmax baseline (module docstring).

    Hardware (``hamattn.rtl.baselines.SoftmaxBaseline``): keys and values in two
    memories of ceil(N/M) words of M vectors (M = ``keys_per_cycle``, the core's
    ``--keys-per-cycle``: the same (query, key) pairs per cycle as the core's scan); per
    query two passes over the stored keys, M keys per cycle through M·d multipliers
    ``q[i] * k_j[i]`` and M adder trees (``dot_latency`` edges from the key memory's address
    to the score registers); pass 1 keeps the max, pass 2 reads the table (M read ports) and
    multiplies the M weights into the M values (M·d multipliers), then the divider: the
    core's pipelined :class:`~hamattn.rtl.divider.RoundingDivider` with the most steps per
    stage that keeps up with the engine (``divider``), as the core chooses its own."""

    d: int
    w: int
    N: int
    weight_bits: int          # F
    lut_bits: int             # the table has 2^lut_bits entries
    shift: int
    scale: float
    lut: tuple
    score_lo: int
    score_hi: int
    diff_max: int
    keys_per_cycle: int = 1   # M

    def blocks(self, n):
        """Cycles of one pass over n keys: ceil(n / M)."""
        return -(-n // self.keys_per_cycle)

    @property
    def lut_size(self):
        return 1 << self.lut_bits

    @property
    def weight_max(self):
        return self.lut[0]

    @property
    def score_width(self):
        return signed_width(self.score_lo, self.score_hi)

    @property
    def diff_width(self):
        return unsigned_width(self.diff_max)

    @property
    def num_lo(self):
        return self.N * self.weight_max * -(1 << (self.w - 1))

    @property
    def num_hi(self):
        return self.N * self.weight_max * ((1 << (self.w - 1)) - 1)

    @property
    def num_width(self):
        return signed_width(self.num_lo, self.num_hi)

    @property
    def den_width(self):
        return unsigned_width(self.N * self.weight_max)

    @property
    def dot_latency(self):
        """Edges from the key memory's address to the registered score: the synchronous
        read, the product register, one register per adder-tree level."""
        return 2 + tree_depth(self.d)

    @property
    def engine_interval(self):
        """``{fixed, per_block, block}`` cycles from one accepted query to the next when the
        divider is free (SPEC §5 terms: fixed + per_block·ceil(n/block)): the accepting
        cycle, pass 1 (ceil(n/M) + ``dot_latency``), pass 2 (ceil(n/M) + ``dot_latency`` +
        2: the table read and the product register), the hand-off."""
        return {"fixed": 2 * self.dot_latency + 4, "per_block": 2,
                "block": self.keys_per_cycle}

    @property
    def divider(self):
        """(steps, depth, intake) of the divider (:func:`divider_for`) for the engine's
        shortest interval (one block of keys): the divider never sets the query rate; one
        bit-serial stage (steps = w, depth 1) unless the engine is faster than w + 3."""
        e = self.engine_interval
        return divider_for(self.w, e["fixed"] + e["per_block"],
                           max(self.num_width, self.den_width))

    def query_interval(self, n):
        """Cycles between queries at full throughput for a window of n used keys: the
        engine's, fixed + 2·ceil(n/M), or the divider's intake, whichever is longer."""
        e = self.engine_interval
        return max(e["fixed"] + e["per_block"] * self.blocks(n), self.divider[2])

    #: edges between accepted keys at full throughput: a key is written to memory per edge
    key_interval = 1

    @property
    def multipliers(self):
        """M·d for the dot products, M·d for weight · value."""
        return 2 * self.d * self.keys_per_cycle

    @property
    def multiplier_shapes(self):
        """(count, a bits, b bits) of each kind of multiplier (signed operands)."""
        m = self.keys_per_cycle * self.d
        return ((m, self.w, self.w), (m, self.weight_bits + 1, self.w))


def softmax_spec(cfg, lanes=None):
    """The softmax baseline of ``cfg`` with ``lanes`` keys per cycle (default: the core's
    M, ``cfg.keys_per_cycle``: as many (query, key) pairs per cycle as its scan)."""
    M = cfg.keys_per_cycle if lanes is None else lanes
    if type(M) is not int or not 1 <= M <= cfg.N:
        raise ValueError(f"lanes = {M!r} is not allowed: an integer in 1 .. N = {cfg.N}")
    return _softmax_spec(cfg, M)


@lru_cache(maxsize=64)
def _softmax_spec(cfg, M):
    d, w, N = cfg.d, cfg.w, cfg.N
    vmin, vmax = cfg.vmin, cfg.vmax
    F = w
    A = min(w, LUT_MAX_BITS)
    size = 1 << A
    score_hi = d * vmin * vmin
    score_lo = d * vmin * vmax
    diff_max = score_hi - score_lo
    base = 1.0 / (4.0 ** (w - 1) * math.sqrt(d))
    target = (F + 1) * math.log(2)
    shift = 0
    while not ((size << shift) > diff_max or size * math.ldexp(base, shift) >= target):
        shift += 1
    scale = math.ldexp(base, shift)
    lut = softmax_lut(F, size, scale)
    assert lut[0] >= 1 and all(a >= b for a, b in zip(lut, lut[1:]))
    return SoftmaxSpec(d=d, w=w, N=N, weight_bits=F, lut_bits=A, shift=shift, scale=scale,
                       lut=lut, score_lo=score_lo, score_hi=score_hi, diff_max=diff_max,
                       keys_per_cycle=M)


# =========================================================================== linear

def _dense_matrix(cfg):
    """(b, d) w-bit entries from the raw PCG64 stream of ``cfg.seed``: the draws after the
    b·d that the random hash projection uses; the top w bits of each, minus 2^(w-1)."""
    n = cfg.b * cfg.d
    raw = np.random.PCG64(cfg.seed).random_raw(2 * n)[n:].astype(np.uint64)
    M = (raw >> np.uint64(64 - cfg.w)).astype(np.int64) - (1 << (cfg.w - 1))
    return tuple(tuple(int(x) for x in row) for row in M.reshape(cfg.b, cfg.d))


def _feature_shift(*mats):
    """ceil(log2(max row L2 norm)) over the matrices (0 for zero matrices)."""
    sq = max((sum(x * x for x in row) for M in mats for row in M), default=0)
    return ((sq - 1).bit_length() + 1) // 2 if sq > 1 else 0


def _row_range(row, vmin, vmax):
    lo = sum(min(c * vmin, c * vmax) for c in row)
    hi = sum(max(c * vmin, c * vmax) for c in row)
    return lo, hi


@dataclass(frozen=True)
class LinearSpec:
    """Constants, widths and pipeline depths of the real-valued linear baseline (module
    docstring).

    Hardware (``hamattn.rtl.baselines.LinearBaseline``): keys and queries share one
    feature pipeline (input register, constant CSD adder trees ``proj_depth`` levels deep,
    the ReLU/shift/clamp register). Equal throughput: the baseline takes keys and queries
    as often as the core (its ``kv_interval`` and ``q_interval``), with the fewest
    multipliers that allow it:

    * a key, where the core takes one per cycle (``key_fold`` = 1): one cycle of b·d
      multipliers ``phi[t] * v[e]`` (registered) and one of accumulation into S and z;
      where the core takes one every F = ``key_fold`` > 1 cycles (a folded core): the key's
      features and value are held for ``key_cycles`` = F - 1 cycles of ``key_rows`` =
      ceil(b / (F-1)) rows each (``key_rows``·d multipliers), a key every F cycles;
    * a query's read-out is folded: ``group`` features per cycle over ``readout_cycles``
      cycles through ``group·(d+1)`` multipliers, so that the engine takes a query every
      ``readout_cycles + 3`` cycles, no slower than the core's ``q_interval`` (or 4, its
      shortest), and the divider keeps up (:attr:`divider`)."""

    d: int
    w: int
    b: int
    N: int
    features: str
    M: tuple                  # (b, d) feature matrix of keys
    beta: tuple               # (b,)
    Mq: tuple                 # (b, d) feature matrix of queries (M unless asymmetric)
    betaq: tuple
    shift: int
    group: int                # features read out per cycle
    readout_cycles: int
    target_interval: int      # the core's q_interval (4 at least), which the engine meets
    key_fold: int = 1         # F: the core's kv_interval, cycles per key

    @property
    def key_cycles(self):
        """Cycles a folded key update takes after its accepting cycle: F - 1 (0: unfolded)."""
        return self.key_fold - 1

    @property
    def key_rows(self):
        """Rows of S (features) a key updates per cycle: b unfolded, else ceil(b/(F-1))."""
        return self.b if self.key_fold == 1 else -(-self.b // self.key_cycles)

    @property
    def asymmetric(self):
        return self.Mq != self.M or self.betaq != self.beta

    @property
    def phi_max(self):
        return (1 << (self.w - 1)) - 1

    @property
    def phi_width(self):
        return self.w - 1

    def _y_range(self, M, beta):
        vmin, vmax = -(1 << (self.w - 1)), (1 << (self.w - 1)) - 1
        rs = [_row_range(r, vmin, vmax) for r in M]
        return min(lo - t for (lo, _), t in zip(rs, beta)), \
            max(hi - t for (_, hi), t in zip(rs, beta))

    @property
    def y_width(self):
        """Signed width of y[t] - beta[t] over both matrices."""
        lo, hi = self._y_range(self.M, self.beta)
        lo2, hi2 = self._y_range(self.Mq, self.betaq)
        return signed_width(min(lo, lo2, 0), max(hi, hi2, 0))

    @property
    def proj_depth(self):
        """Adder levels of the deepest feature row (CSD terms of each constant)."""
        depth = 0
        for M in (self.M, self.Mq):
            for row in M:
                depth = max(depth, tree_depth(sum(len(csd_digits(c)) for c in row)))
        return depth

    @property
    def feature_latency(self):
        """Edges through the shared feature pipeline: input register, tree, phi register."""
        return 1 + self.proj_depth + 1

    @property
    def S_lo(self):
        return self.N * self.phi_max * -(1 << (self.w - 1))

    @property
    def S_hi(self):
        return self.N * self.phi_max * ((1 << (self.w - 1)) - 1)

    @property
    def S_width(self):
        return signed_width(self.S_lo, self.S_hi)

    @property
    def z_max(self):
        return self.N * self.phi_max

    @property
    def z_width(self):
        return unsigned_width(self.z_max)

    @property
    def num_lo(self):
        return self.b * self.phi_max * self.S_lo

    @property
    def num_hi(self):
        return self.b * self.phi_max * self.S_hi

    @property
    def num_width(self):
        return signed_width(self.num_lo, self.num_hi)

    @property
    def den_max(self):
        return self.b * self.phi_max * self.z_max + 1

    @property
    def den_width(self):
        return unsigned_width(self.den_max)

    @property
    def engine_interval(self):
        """Cycles the read-out engine holds one query when the divider is free: accept,
        ``readout_cycles`` product cycles, the last accumulation, the hand-off."""
        return self.readout_cycles + 3

    @property
    def divider(self):
        """(steps, depth, intake) of the divider (:func:`divider_for`) for the core's query
        interval (4 at least)."""
        return divider_for(self.w, self.target_interval, max(self.num_width, self.den_width))

    def query_interval(self, n=None):
        """Cycles between queries at full throughput (any n): the engine's or the divider's
        intake, whichever is longer: the core's ``q_interval`` by construction of ``group``
        and the divider, or 4 (the engine's shortest: one read-out cycle) where the core is
        faster."""
        return max(self.engine_interval, self.divider[2])

    @property
    def key_interval(self):
        """Edges between accepted keys at full throughput: F, the core's."""
        return self.key_fold

    @property
    def multipliers(self):
        """key_rows·d for the key update phi_k[t]·v[e]; group·d for phi_q[t]·S[t,e] and
        group for phi_q[t]·z[t] in the read-out."""
        return self.key_rows * self.d + self.group * (self.d + 1)

    @property
    def multiplier_shapes(self):
        """(count, a bits, b bits) of each kind of multiplier (unsigned phi, signed rest)."""
        return ((self.key_rows * self.d, self.phi_width, self.w),
                (self.group * self.d, self.phi_width, self.S_width),
                (self.group, self.phi_width, self.z_width))


@lru_cache(maxsize=64)
def linear_spec(cfg, features="dense"):
    if features not in FEATURES:
        raise ValueError(f"features = {features!r} is not allowed: one of {FEATURES}")
    if features == "dense":
        M = Mq = _dense_matrix(cfg)
        beta = betaq = (0,) * cfg.b
    else:
        M, beta = cfg.W, cfg.theta
        Mq = cfg.Wq if cfg.asymmetric else cfg.W
        betaq = cfg.thetaq if cfg.asymmetric else cfg.theta
    shift = _feature_shift(M, Mq)
    # the fewest features per read-out cycle with readout_cycles + 3 <= the core's interval
    # (4 at least: one read-out cycle); the divider keeps up with it (LinearSpec.divider)
    qi = max(cfg.q_interval["fixed"], 4)
    budget = max(1, min(cfg.b, qi - 3))
    group = -(-cfg.b // budget)
    readout = -(-cfg.b // group)
    return LinearSpec(d=cfg.d, w=cfg.w, b=cfg.b, N=cfg.N, features=features, M=M,
                      beta=tuple(beta), Mq=Mq, betaq=tuple(betaq), shift=shift,
                      group=group, readout_cycles=readout, target_interval=qi,
                      key_fold=max(1, cfg.kv_interval["fixed"]))


# =========================================================================== dispatch

def baseline_kind(cfg):
    """``"linear"`` for mode linear, ``"softmax"`` for topk and hsoftmax."""
    return "linear" if cfg.mode == "linear" else "softmax"


def baseline_spec(cfg, features="dense"):
    """The spec of the baseline the core of ``cfg`` is compared with."""
    return linear_spec(cfg, features) if baseline_kind(cfg) == "linear" else softmax_spec(cfg)


# =========================================================================== the models

@dataclass(frozen=True)
class BaselineResult:
    """One window of a baseline: ``out`` (nq, d) is what the baseline's hardware emits,
    ``overflow`` the ``tuser`` of the window; ``num`` (nq, d) and ``den`` (nq,) the divider's
    operands; ``weights`` (nq, n) the softmax weights or the linear a_j = phi_q . phi_k_j."""

    out: np.ndarray
    num: np.ndarray
    den: np.ndarray
    weights: np.ndarray
    n_keys: int
    overflow: bool


def softmax_weights(spec, queries, keys):
    """(nq, n) weights of the softmax model for a block of queries."""
    s = queries @ keys.T
    m = s.max(axis=1, keepdims=True)
    idx = np.minimum((m - s) >> spec.shift, spec.lut_size - 1)
    return np.asarray(spec.lut, dtype=np.int64)[idx]


def features(spec, x, query=False):
    """phi(x) (n, b) of the linear model."""
    M, beta = (spec.Mq, spec.betaq) if query else (spec.M, spec.beta)
    M = np.array(M, dtype=np.int64).reshape(spec.b, spec.d)
    y = x @ M.T - np.array(beta, dtype=np.int64)
    return np.minimum(np.maximum(y, 0) >> spec.shift, spec.phi_max)


def _check_fits(cfg, out):
    if out.size and (int(out.min()) < cfg.vmin or int(out.max()) > cfg.vmax):
        raise AssertionError(f"baseline output outside {cfg.w} bits: "
                             f"[{int(out.min())}, {int(out.max())}]")


def run_baseline(cfg, keys, values, queries, features_kind="dense"):
    """Outputs of one window of the baseline of ``cfg.mode`` (softmax for topk and
    hsoftmax, real-valued linear for linear): ``keys``, ``values`` (n, d) in arrival order,
    only the first N used; ``queries`` (nq, d). ``features_kind`` picks the linear
    baseline's feature matrix (``"dense"`` or ``"hash"``). Returns :class:`BaselineResult`."""
    keys, values, queries, overflow = _window(cfg, keys, values, queries)
    n, nq = len(keys), len(queries)

    if baseline_kind(cfg) == "softmax":
        spec = softmax_spec(cfg)
        weights = np.zeros((nq, n), dtype=np.int64)
        for start in range(0, nq, BLOCK):
            weights[start:start + BLOCK] = softmax_weights(spec, queries[start:start + BLOCK],
                                                           keys)
        num = weights @ values                       # |num| <= N (2^w - 1) 2^(w-1) < 2^63
        den = weights.sum(axis=1)
    else:
        spec = linear_spec(cfg, features_kind)
        phk = features(spec, keys)
        phq = features(spec, queries, query=True)
        S = phk.T @ values                           # |S| <= N 2^(2w-2) < 2^63
        z = phk.sum(axis=0)
        if spec.num_width > 62:
            num = phq.astype(object) @ S.astype(object)
        else:
            num = phq @ S
        den = phq @ z + 1
        weights = phq @ phk.T
    out = rdiv(num, den[:, None]) if nq else np.zeros((0, cfg.d), dtype=np.int64)
    _check_fits(cfg, out)
    return BaselineResult(out=np.asarray(out, dtype=np.int64), num=num, den=den,
                          weights=weights, n_keys=n, overflow=overflow)
