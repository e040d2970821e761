"""The one configuration object of hamattn (SPEC §1-§3).

:class:`CoreConfig` is frozen, validated once when it is built, and owns every number that a
later stage needs: the hash constants, the ``hsoftmax`` shift table, every accumulator width
and every latency and interval of the generated core. The golden model, the RTL, the
manifest and the testbenches read these properties; none of them recomputes one.

This module imports nothing else of the package.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = [
    "CoreConfig", "ConfigError", "WeightsError", "MODES", "WEIGHT_SOURCES", "PARAMS",
    "signed_width", "unsigned_width", "csd_digits", "tree_depth", "divider_latency",
    "hamming_latency", "POPCOUNT_TREES", "ADDER_TREES",
]

MODES = ("linear", "topk", "hsoftmax")
#: popcount trees of the Hamming distance (rtl/popcount.py): the plain adder sum, or a
#: compressor tree of counters for 4-input or 6-input LUTs
POPCOUNT_TREES = ("sum", "lut4", "lut6")
DEFAULT_POPCOUNT = "lut6"
#: multi-operand adder trees of the hash projection and the linear read-out
#: (rtl/tree.py): binary trees of two-operand adders, or one bit heap per sum reduced by
#: the popcount's counters for 4-input or 6-input LUTs
ADDER_TREES = ("sum", "lut4", "lut6")
DEFAULT_ADDERS = "sum"
WEIGHT_SOURCES = ("random-ternary", "random-sign")
#: widest weight a hash constant may have (signed bits); the projection sums stay < 2**63
MAX_WEIGHT_WIDTH = 16
MAX_SHIFT_ENTRY = 32
#: largest core (in adder bits, see CoreConfig.adder_bits) that `hamattn gen` elaborates
MAX_ADDER_BITS = 1 << 21
#: from this size on, generation says it may take minutes
SLOW_ADDER_BITS = 1 << 17
#: how much longer (and larger) a core with heap adder trees (--adders lut4/lut6) takes to
#: elaborate than with binary trees: each counter LUT is a truth-table lookup (measured at
#: d = b = 64, linear: 4.3 min of CPU and 60 MB of Verilog, against 35 s and 6 MB)
HEAP_ELABORATION_FACTOR = 8
#: keys kept per query in topk mode when --topk is not given (at most N)
DEFAULT_K = 8
LOG2E = math.log2(math.e)


class ConfigError(ValueError):
    """A refused parameter. ``parameter`` is the SPEC name, ``value`` what was given and
    ``allowed`` a human-readable description of what would be accepted."""

    def __init__(self, parameter, value, allowed, flag=None):
        self.parameter = parameter
        self.value = value
        self.allowed = allowed
        self.flag = flag
        name = f"{parameter} ({flag})" if flag else parameter
        super().__init__(f"{name} = {value!r} is not allowed: {allowed}")


class WeightsError(ConfigError):
    """A weights file that cannot be used (missing, unreadable, wrong shape/dtype/values)."""


@dataclass(frozen=True)
class Param:
    name: str       # SPEC symbol and attribute name
    flag: str       # command-line flag
    default: object
    help: str
    kind: type = str    # what a command-line value is converted to


#: the parameters of SPEC §1, in order; the command line and the manifest are built from this
PARAMS = (
    Param("d", "--head-dim", 16, "elements per q/k/v vector (1..1024)", int),
    Param("w", "--width", 8, "bits per element, two's complement (2..16)", int),
    Param("b", "--code-bits", 16, "hash code length (1..1024)", int),
    Param("N", "--seq-len", 64, "most keys in one window (1..65536)", int),
    Param("mode", "--mode", "linear", "value path: linear, topk or hsoftmax"),
    Param("k", "--topk", None, "keys kept per query, topk only (1..N, default min(8, N))",
          int),
    Param("g", "--temperature", 12.0, "sharpness of hsoftmax (0 < g <= 64)", float),
    Param("smax", "--max-shift", 16, "largest shift of hsoftmax (0..32)", int),
    Param("lanes", "--lanes", None, "value elements processed per cycle (1..d, default d)",
          int),
    Param("rows", "--rows", None, "code rows of the linear state processed per cycle, "
          "folded linear only (1..b, default b)", int),
    Param("weights", "--weights", "random-ternary",
          "hash projection: random-ternary, random-sign or a .npz file"),
    Param("seed", "--seed", 0, "seed of the random hash projection (0..2**63-1)", int),
    Param("popcount", "--popcount", DEFAULT_POPCOUNT,
          "popcount tree of the Hamming distance: sum, lut4 or lut6"),
    Param("adders", "--adders", DEFAULT_ADDERS,
          "adder trees of the hash projection and linear read-out: sum, lut4 or lut6"),
)
FLAGS = {p.name: p.flag for p in PARAMS}


# --------------------------------------------------------------------------- integer helpers

def signed_width(lo, hi):
    """Fewest two's-complement bits that hold every integer in [lo, hi] (at least 1)."""
    lo, hi = int(lo), int(hi)
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def unsigned_width(hi):
    """Fewest unsigned bits that hold every integer in [0, hi] (at least 1)."""
    return max(1, int(hi).bit_length())


def csd_digits(c):
    """Canonical signed-digit form of the integer ``c``: a list of ``(shift, sign)`` with
    ``c == sum(sign << shift)``, non-adjacent, so that a constant product is the fewest
    shifted additions and subtractions."""
    c = int(c)
    digits, shift = [], 0
    while c != 0:
        if c & 1:
            digit = 2 - (c & 3)        # +1 when c = 1 mod 4, -1 when c = 3 mod 4
            digits.append((shift, digit))
            c -= digit
        c >>= 1
        shift += 1
    return digits


def tree_depth(n_terms):
    """Adder levels of a binary tree over ``n_terms`` operands (0 for one or none)."""
    return max(0, math.ceil(math.log2(n_terms))) if n_terms > 1 else 0


def hamming_latency(b, tree="sum", stages=None):
    """Edges through :class:`HammingDistance` for b-bit codes: its ``stages`` pipeline
    registers. By default, ``sum``: one XOR register and one per adder level,
    ``1 + ceil(log2(b))``; ``lut6``: ``max(1, ceil(log2(b)))``, at least the levels of its
    compressor tree (one register each); ``lut4``: ``1 + ceil(log2(b))`` (its tree has up to
    two levels more; those share a register with the next)."""
    if tree not in POPCOUNT_TREES:
        raise ValueError(f"tree = {tree!r} is not allowed: one of {', '.join(POPCOUNT_TREES)}")
    if stages is None:
        return max(1, tree_depth(b)) if tree == "lut6" else 1 + tree_depth(b)
    if isinstance(stages, bool) or not isinstance(stages, (int, np.integer)) \
            or not 1 <= stages <= 64:
        raise ValueError(f"stages = {stages!r} is not allowed: an integer from 1 to 64")
    return int(stages)


def divider_latency(q_bits, groups=1):
    """Rising edges from the edge at which :class:`RoundingDivider` accepts (num, den) to the
    edge at which its result transfers, with the output ready: the accepting edge registers
    the numerators, then each of the ``groups`` groups of lanes takes one edge to form
    2|num|+den, ``q_bits`` restoring steps and one edge to apply the sign; the result
    transfers on the next edge: ``groups·(q_bits + 2) + 1``. It is also the divider's
    interval."""
    return groups * (q_bits + 2) + 1


def _check_int(name, value, lo, hi):
    flag = FLAGS.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(name, value, f"an integer from {lo} to {hi}", flag)
    if not lo <= int(value) <= hi:
        raise ConfigError(name, value, f"an integer from {lo} to {hi}", flag)
    return int(value)


# --------------------------------------------------------------------------- weight sources

def _random_hash(source, b, d, seed):
    """Random W of shape (b, d) from the raw 64-bit output of PCG64(seed).

    Only the BitGenerator's raw stream is used (it is fixed across machines and NumPy
    versions, unlike ``Generator`` methods): draw ``r`` (one per entry, row-major);
    ``random-ternary`` maps ``r % 6`` 0 to -1, 1 to +1 and 2..5 to 0; ``random-sign`` maps
    the top bit 1 to -1 and 0 to +1.
    """
    raw = np.random.PCG64(seed).random_raw(b * d).astype(np.uint64)
    if source == "random-ternary":
        r = raw % np.uint64(6)
        W = np.zeros(b * d, dtype=np.int64)
        W[r == 0] = -1
        W[r == 1] = 1
    else:
        W = np.where((raw >> np.uint64(63)) == 1, -1, 1).astype(np.int64)
    return W.reshape(b, d)


def _load_npz(path, b, d):
    """Read a weights file without pickle; return dict of int64 arrays."""
    if not os.path.isfile(path):
        raise WeightsError("weights", path, "an existing .npz file (no such file)", "--weights")
    if not zipfile.is_zipfile(path):    # np.load would return a bare .npy or try pickle
        raise WeightsError("weights", path, "a readable .npz file (not a zip archive)",
                           "--weights")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            arrays = {}
            for key in ("W", "theta", "Wq", "thetaq", "shifts"):
                if key in names:
                    arrays[key] = z[key]
    except ValueError as e:      # object arrays need pickle: refused
        raise WeightsError("weights", path,
                           f"a .npz of plain integer arrays (pickled objects are refused: {e})",
                           "--weights") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise WeightsError("weights", path, f"a readable .npz file ({e})", "--weights") from None
    for key in ("W", "theta"):
        if key not in arrays:
            raise WeightsError("weights", path,
                               f"a .npz holding integer arrays 'W' ({b}, {d}) and 'theta' ({b},);"
                               f" '{key}' is missing (found {sorted(names)})", "--weights")
    if ("Wq" in arrays) != ("thetaq" in arrays):
        raise WeightsError("weights", path, "'Wq' and 'thetaq' together or not at all",
                           "--weights")
    shapes = {"W": (b, d), "theta": (b,), "Wq": (b, d), "thetaq": (b,), "shifts": (b + 1,)}
    out = {}
    for key, a in arrays.items():
        if a.dtype.kind not in "iu":
            raise WeightsError(f"weights:{key}", f"dtype {a.dtype}",
                               "an integer array (int8..int64 or uint8..uint64)", "--weights")
        if a.shape != shapes[key]:
            raise WeightsError(f"weights:{key}", f"shape {a.shape}",
                               f"shape {shapes[key]} for code_bits b={b}, head_dim d={d}",
                               "--weights")
        if a.dtype.kind == "u" and a.size and int(a.max()) > 2**62:
            raise WeightsError(f"weights:{key}", int(a.max()), "values below 2**62", "--weights")
        out[key] = a.astype(np.int64)
    return out


# --------------------------------------------------------------------------- the config

@dataclass(frozen=True, eq=True)
class CoreConfig:
    """Every parameter of SPEC §1 plus the hash constants: the one object passed between the
    golden model, the RTL, the manifest and the testbenches.

    Construct with :meth:`create` (which draws or loads the weights); the constructor
    itself validates everything, so no invalid instance can exist. A refused value raises
    :class:`ConfigError` naming the parameter, its flag, the value and what is allowed.

    Parameters
    ----------
    d, w, b, N : :class:`int`
        Elements per vector (1..1024), bits per element (2..16), code bits (1..1024), most
        keys in a window (1..65536).
    mode : :class:`str`
        Value path: ``"linear"``, ``"topk"`` or ``"hsoftmax"``.
    k : :class:`int`
        Keys kept per query in ``topk`` (1..N).
    g : :class:`float`
        Temperature of ``hsoftmax`` (0 < g <= 64).
    smax : :class:`int`
        Largest shift of ``hsoftmax`` (0..32).
    lanes : :class:`int`
        P, value elements per cycle (1..d; d: fully parallel).
    rows : :class:`int`
        T, code rows of the ``linear`` state per cycle (1..b; below b only in ``linear``
        with P < d).
    weights : :class:`str`
        ``"random-ternary"``, ``"random-sign"`` or the path of a ``.npz`` weights file.
    seed : :class:`int`
        Seed of the random hash (0..2^63-1).
    W, theta : :class:`tuple`
        Hash projection (b rows of d integers) and thresholds (b integers).
    Wq, thetaq : :class:`tuple` or ``None``
        The queries' own hash, or ``None`` when queries use W and θ.
    shift_table : :class:`tuple` or ``None``
        The ``hsoftmax`` shifts s[0..b] of a weights file, or ``None`` for the formula.
    popcount, adders : :class:`str`
        Trees of the Hamming distance and of the hash / ``linear`` read-out sums: ``"sum"``,
        ``"lut4"`` or ``"lut6"``.

    Attributes
    ----------
    latency, q_interval, kv_interval : :class:`dict`
        ``{"fixed": A, "per_key": C}``: A + C·n clock edges for a window of n used keys
        (the formulas: docs/hardware.md); :meth:`at` evaluates one.
    groups, row_blocks : :class:`int`
        G = ceil(d/P) cycles per vector, R = ceil(b/T) row blocks.
    hash_latency, hamming_latency, readout_latency, divider_latency : :class:`int`
        Latency in edges of the hash projection, the Hamming distance, the ``linear``
        read-out and the divider.
    shifts : :class:`tuple`
        s[h] for h = 0..b (SPEC §3).
    weight_width, projection_width, hamming_width, S_width, z_width, V_width, num_width,
    den_width, out_width : :class:`int`
        The derived widths in bits, each exactly wide enough that no sum overflows.
    out_credits : :class:`int`
        F, the most queries in flight (the manifest's ``queries_in_flight``).
    """

    d: int = 16
    w: int = 8
    b: int = 16
    N: int = 64
    mode: str = "linear"
    k: int = 8
    g: float = 12.0
    smax: int = 16
    lanes: int = 16
    rows: int = 16
    weights: str = "random-ternary"
    seed: int = 0
    W: tuple = ()
    theta: tuple = ()
    Wq: tuple | None = None
    thetaq: tuple | None = None
    shift_table: tuple | None = None  # from a weights file; None: the SPEC formula
    popcount: str = DEFAULT_POPCOUNT
    adders: str = DEFAULT_ADDERS

    # ---------------------------------------------------------------- construction
    @classmethod
    def create(cls, d=16, w=8, b=16, N=64, mode="linear", k=None, g=12.0, smax=16, lanes=None,
               rows=None, weights="random-ternary", seed=0, popcount=DEFAULT_POPCOUNT,
               adders=DEFAULT_ADDERS):
        """Validate the scalar parameters, draw or load W/θ, and return the frozen config.

        Parameters
        ----------
        d, w, b, N, mode, g, smax, seed, popcount, adders
            As in the class (the defaults are the SPEC's).
        k : :class:`int` or ``None``
            ``None``: min(8, N), so a short window is not refused for a default.
        lanes : :class:`int` or ``None``
            ``None``: d (fully parallel).
        rows : :class:`int` or ``None``
            ``None``: b (no row folding).
        weights : :class:`str` or path-like
            ``"random-ternary"`` and ``"random-sign"`` draw W from ``PCG64(seed)`` with
            θ = 0; a ``.npz`` path loads ``W``, ``theta`` and optionally ``Wq``, ``thetaq``
            and ``shifts`` (without pickle).

        Raises
        ------
        :class:`ConfigError`
            For any refused value, :class:`WeightsError` for an unusable weights file.
        """
        d = _check_int("d", d, 1, 1024)
        w = _check_int("w", w, 2, 16)
        b = _check_int("b", b, 1, 1024)
        N = _check_int("N", N, 1, 65536)
        seed = _check_int("seed", seed, 0, 2**63 - 1)
        if not isinstance(weights, (str, os.PathLike)):
            raise ConfigError("weights", weights,
                              "random-ternary, random-sign or the path of a .npz file",
                              "--weights")
        weights = os.fspath(weights)
        Wq = thetaq = shift_table = None
        if weights in WEIGHT_SOURCES:
            W = _random_hash(weights, b, d, seed)
            theta = np.zeros(b, dtype=np.int64)
        elif weights.endswith(".npz") or os.path.exists(weights):
            arrays = _load_npz(weights, b, d)
            W, theta = arrays["W"], arrays["theta"]
            Wq, thetaq = arrays.get("Wq"), arrays.get("thetaq")
            shift_table = arrays.get("shifts")
        else:
            raise ConfigError("weights", weights,
                              "random-ternary, random-sign or the path of a .npz file",
                              "--weights")

        def tup(a):
            return None if a is None else tuple(map(int, np.asarray(a).ravel())) \
                if np.asarray(a).ndim == 1 else tuple(tuple(map(int, r)) for r in a)

        if k is None:
            k = min(DEFAULT_K, N)
        return cls(d=d, w=w, b=b, N=N, mode=mode, k=k, g=g, smax=smax,
                   lanes=d if lanes is None else lanes, rows=b if rows is None else rows,
                   weights=weights, seed=seed,
                   W=tup(W), theta=tup(theta), Wq=tup(Wq), thetaq=tup(thetaq),
                   shift_table=tup(shift_table), popcount=popcount, adders=adders)

    def __post_init__(self):
        _check_int("d", self.d, 1, 1024)
        _check_int("w", self.w, 2, 16)
        _check_int("b", self.b, 1, 1024)
        _check_int("N", self.N, 1, 65536)
        if self.mode not in MODES:
            raise ConfigError("mode", self.mode, "one of " + ", ".join(MODES), "--mode")
        if not isinstance(self.popcount, str) or self.popcount not in POPCOUNT_TREES:
            raise ConfigError("popcount", self.popcount, "one of " + ", ".join(POPCOUNT_TREES),
                              "--popcount")
        if not isinstance(self.adders, str) or self.adders not in ADDER_TREES:
            raise ConfigError("adders", self.adders, "one of " + ", ".join(ADDER_TREES),
                              "--adders")
        k = self.k
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.N:
            raise ConfigError("k", k, f"an integer from 1 to N = {self.N} (k keys kept of at "
                              f"most N = {self.N} keys)", "--topk")
        g = self.g
        if isinstance(g, bool) or not isinstance(g, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(g)) or not 0 < float(g) <= 64:
            raise ConfigError("g", g, "a number with 0 < g <= 64", "--temperature")
        object.__setattr__(self, "g", float(g))
        _check_int("smax", self.smax, 0, 32)
        _check_int("lanes", self.lanes, 1, self.d)
        _check_int("rows", self.rows, 1, self.b)
        if self.rows < self.b and self.mode != "linear":
            raise ConfigError("rows", self.rows, f"b = {self.b} in mode {self.mode}: only the "
                              "linear value path folds the rows of its state", "--rows")
        if self.rows < self.b and self.lanes == self.d:
            raise ConfigError("rows", self.rows, f"b = {self.b} when fully parallel (lanes = d "
                              f"= {self.d}): folding the rows needs --lanes below d", "--rows")
        _check_int("seed", self.seed, 0, 2**63 - 1)
        self._check_matrix("W", self.W)
        self._check_vector("theta", self.theta)
        if (self.Wq is None) != (self.thetaq is None):
            raise WeightsError("Wq", "given alone", "'Wq' and 'thetaq' together or neither",
                               "--weights")
        if self.Wq is not None:
            self._check_matrix("Wq", self.Wq)
            self._check_vector("thetaq", self.thetaq)
        if self.shift_table is not None:
            s = self.shift_table
            if len(s) != self.b + 1:
                raise WeightsError("shifts", f"length {len(s)}",
                                   f"b+1 = {self.b + 1} entries", "--weights")
            if any(not 0 <= x <= MAX_SHIFT_ENTRY for x in s):
                raise WeightsError("shifts", list(s),
                                   f"entries within 0..{MAX_SHIFT_ENTRY}", "--weights")
            if any(s[i] > s[i + 1] for i in range(len(s) - 1)):
                raise WeightsError("shifts", list(s), "a non-decreasing table", "--weights")

    def _check_matrix(self, name, M):
        if not isinstance(M, tuple) or len(M) != self.b or \
                any(not isinstance(r, tuple) or len(r) != self.d for r in M):
            raise WeightsError(name, "a matrix of another shape",
                               f"shape (b, d) = ({self.b}, {self.d})", "--weights")
        lim = 1 << (MAX_WEIGHT_WIDTH - 1)
        for r in M:
            for x in r:
                if not -lim <= x <= lim - 1:
                    raise WeightsError(name, x, f"integers of at most {MAX_WEIGHT_WIDTH} signed"
                                       f" bits ({-lim} .. {lim - 1})", "--weights")

    def _check_vector(self, name, v):
        if not isinstance(v, tuple) or len(v) != self.b:
            raise WeightsError(name, "a vector of another length",
                               f"length b = {self.b}", "--weights")
        lim = 1 << 47
        for x in v:
            if not -lim <= x < lim:
                raise WeightsError(name, x, "integers within ±2**47", "--weights")

    def replace(self, **changes):
        """A new validated config with some parameters changed (weights are re-drawn when
        their shape or source changes)."""
        params = {p.name: getattr(self, p.name) for p in PARAMS}
        if "lanes" not in changes and self.lanes == self.d:
            params["lanes"] = None          # lanes follows d unless set
        if "rows" not in changes and self.rows == self.b:
            params["rows"] = None           # rows follows b unless set
        if "k" not in changes and self.k == min(DEFAULT_K, self.N):
            params["k"] = None              # k follows N unless set
        params.update(changes)
        return CoreConfig.create(**params)

    # ---------------------------------------------------------------- arrays
    @cached_property
    def W_array(self):
        return np.array(self.W, dtype=np.int64).reshape(self.b, self.d)

    @cached_property
    def theta_array(self):
        return np.array(self.theta, dtype=np.int64).reshape(self.b)

    @property
    def asymmetric(self):
        """True when queries have their own hash (Wq, θq)."""
        return self.Wq is not None

    @cached_property
    def Wq_array(self):
        return np.array(self.Wq if self.asymmetric else self.W,
                        dtype=np.int64).reshape(self.b, self.d)

    @cached_property
    def thetaq_array(self):
        return np.array(self.thetaq if self.asymmetric else self.theta,
                        dtype=np.int64).reshape(self.b)

    # ---------------------------------------------------------------- element ranges
    @property
    def vmin(self):
        return -(1 << (self.w - 1))

    @property
    def vmax(self):
        return (1 << (self.w - 1)) - 1

    @property
    def words(self):
        """64-bit words per packed code."""
        return (self.b + 63) // 64

    # ---------------------------------------------------------------- hash widths
    def weight_width_of(self, M):
        """Signed bits of the widest entry of M (at least 2, a ternary weight needs 2)."""
        flat = [x for r in M for x in r]
        return max(2, signed_width(min(flat, default=0), max(flat, default=0)))

    @property
    def weight_width(self):
        ww = self.weight_width_of(self.W)
        return max(ww, self.weight_width_of(self.Wq)) if self.asymmetric else ww

    def projection_range(self, M):
        """(lo, hi) of y[t] = sum_i W[t,i] x[i] over all rows, for w-bit x."""
        A = np.array(M, dtype=object).reshape(self.b, self.d)
        lo = sum((np.minimum(A * self.vmin, A * self.vmax)).T)
        hi = sum((np.maximum(A * self.vmin, A * self.vmax)).T)
        return int(min(lo)), int(max(hi))

    @property
    def projection_width(self):
        lo, hi = self.projection_range(self.W)
        if self.asymmetric:
            lo2, hi2 = self.projection_range(self.Wq)
            lo, hi = min(lo, lo2), max(hi, hi2)
        return signed_width(lo, hi)

    @staticmethod
    def hash_row_terms(row):
        """Shifted operands of one projection row: ``[(i, shift, sign)]`` from the CSD form of
        each non-zero weight (a ternary weight is a single ±x[i])."""
        return [(i, s, sg) for i, c in enumerate(row) for s, sg in csd_digits(c)]

    def hash_depth_of(self, M):
        return max((tree_depth(len(self.hash_row_terms(r))) for r in M), default=0)

    @cached_property
    def folded_hash_terms(self):
        """Folded hash (G > 1): for each row t the shifted lane operands ``(p, s)`` of its
        P-lane tree, the union over the groups g (and over W and Wq when queries have their
        own hash) of the CSD digits at shift s of W[t, gP+p]; the digit itself is chosen by
        g (and the query flag) at run time."""
        P = self.lanes
        mats = [self.W] + ([self.Wq] if self.asymmetric else [])
        return tuple(tuple(sorted({(i % P, s) for M in mats for i, c in enumerate(M[t])
                                   for s, _ in csd_digits(c)})) for t in range(self.b))

    @cached_property
    def hash_slot_terms(self):
        """Folded hash: the operands ``(p, s)`` of the P-lane tree of each of its T = ``rows``
        slots. Slot j computes rows j, T + j, 2T + j, ... (< b), one row block per pass over
        the groups (R = ceil(b/T) passes, :attr:`hash_interval`), so its tree has the union
        of those rows' operands; with T = b (no row folding) slot t is row t."""
        T, b = self.rows, self.b
        rows = self.folded_hash_terms
        return tuple(tuple(sorted({ps for t in range(j, b, T) for ps in rows[t]}))
                     for j in range(T))

    @property
    def hash_latency(self):
        """Edges from the input transfer to the output transfer of :class:`HashProjection`
        (output ready, hash otherwise idle).

        Unfolded (G = 1): one input register, one per adder level of the deepest row (both
        hashes when queries have their own), one compare: ``2 + max_t ceil(log2(terms_t))``.

        Folded (G > 1): the transfer edge registers the last group of P lanes, then one edge
        per level of the deepest P-lane tree, one edge adds the group into the row
        accumulator (which starts at -θ), one edge registers its sign (y >= θ) into the output,
        which transfers on the next edge: ``3 + max_j ceil(log2(|hash_slot_terms[j]|))`` (a
        slot j is row j unless ``rows`` < b folds the rows)."""
        if self.folded:
            return 3 + max((tree_depth(len(r)) for r in self.hash_slot_terms), default=0)
        depth = self.hash_depth_of(self.W)
        if self.asymmetric:
            depth = max(depth, self.hash_depth_of(self.Wq))
        return 1 + depth + 1

    # ---------------------------------------------------------------- Hamming distance
    @property
    def hamming_width(self):
        return unsigned_width(self.b)

    @property
    def hamming_latency(self):
        return hamming_latency(self.b, self.popcount)

    # ---------------------------------------------------------------- hsoftmax table
    @cached_property
    def shifts(self):
        """s[h] for h = 0..b (SPEC §3): the weights file's table or
        min(smax, floor(g*h*log2(e)/b + 1/2))."""
        if self.shift_table is not None:
            return tuple(self.shift_table)
        return tuple(min(self.smax, math.floor(self.g * h * LOG2E / self.b + 0.5))
                     for h in range(self.b + 1))

    @property
    def weight_shifts(self):
        """log2 of weight_j for each distance h: s[b] - s[h]."""
        s = self.shifts
        return tuple(s[self.b] - x for x in s)

    # ---------------------------------------------------------------- folding (--lanes)
    @property
    def groups(self):
        """G = ceil(d / P): the groups of ``lanes`` elements that a folded stage processes one
        per cycle (1: fully parallel). Group g holds elements gP .. min(gP+P, d) - 1; the
        last group of a non-divisor P has lanes without an element (they carry zeros)."""
        return -(-self.d // self.lanes)

    @property
    def folded(self):
        return self.groups > 1

    @property
    def row_blocks(self):
        """R = ceil(b / rows): the blocks of ``rows`` code rows of the linear state S that a
        folded linear value path reads and writes one per cycle, so a vector takes G·R
        cycles there (1: all b rows at once); the folded hash computes the same blocks, one
        per pass over the groups. The last block of a non-divisor has rows without a code
        bit (they hold zeros)."""
        return -(-self.b // self.rows)

    @property
    def state_steps(self):
        """G·R: cycles the value path spends on one vector (key or query)."""
        return self.groups * (self.row_blocks if self.mode == "linear" else 1)

    @property
    def hash_interval(self):
        """Cycles :class:`HashProjection` spends on one vector: 1, or G when folded (it
        reads one group of P input elements per cycle), G·R when a linear path folds its
        rows (``rows`` T < b): the hash then also computes T rows at a time, in R passes."""
        return self.groups * self.row_blocks

    # ---------------------------------------------------------------- value-path widths
    @property
    def key_count_width(self):
        """Bits of the count n of used keys, 0..N."""
        return unsigned_width(self.N)

    @property
    def S_width(self):
        """S[t, e] = sum_j s_kj[t] v_j[e] lies in ±N·2^(w-1)."""
        m = self.N << (self.w - 1)
        return signed_width(-m, m)

    @property
    def z_width(self):
        return signed_width(-self.N, self.N)

    @property
    def V_width(self):
        return signed_width(self.N * self.vmin, self.N * self.vmax)

    @property
    def kept(self):
        """Most keys a query's output sums over: N (linear, hsoftmax) or k (topk)."""
        return self.k if self.mode == "topk" else self.N

    @property
    def max_weight(self):
        """Largest weight of one key: 2b+1 (linear), 1 (topk), 2^(s[b]-s[0]) (hsoftmax)."""
        if self.mode == "linear":
            return 2 * self.b + 1
        if self.mode == "topk":
            return 1
        return 1 << max(self.weight_shifts)

    @property
    def num_width(self):
        """Signed width of num[e] = sum_j weight_j v_j[e]."""
        m = self.kept * self.max_weight
        return signed_width(m * self.vmin, m * -self.vmin)

    @property
    def den_width(self):
        """Unsigned width of den = sum_j weight_j (>= 1)."""
        return unsigned_width(self.kept * self.max_weight)

    @property
    def out_width(self):
        return self.w

    # ---------------------------------------------------------------- timing (SPEC §5)
    @property
    def readout_terms(self):
        """Operands of one linear read-out tree: b masked S (or z) rows and the CSD terms of
        (b+1)·V (or (b+1)·n)."""
        return self.b + len(csd_digits(self.b + 1))

    @property
    def readout_latency(self):
        """Linear read-out: one register per tree level (the first level masks the rows by
        the query code as it adds), one to add the count of zero query bits (the +1 of each
        complemented row)."""
        return tree_depth(self.readout_terms) + 1

    @property
    def divider_latency(self):
        return divider_latency(self.w, self.groups)

    @property
    def threshold_cycles(self):
        """topk: cycles to walk the b+1 histogram bins and find the cut distance (b+1
        counters unfolded; folded, a histogram memory whose read takes one cycle more)."""
        return self.b + 2 if self.folded else self.b + 1

    @property
    def scan_cycles_fixed(self):
        """Fixed cycles of one pass over the stored keys: the memory read and the Hamming
        pipeline behind the last key (a pass takes n + this)."""
        return self.hamming_latency + 1

    @property
    def engine_timing(self):
        """(fixed, per_key) edges from a query token entering the value path to its (num,
        den) transferring to the divider, with nothing stalled."""
        if self.mode == "linear":
            if self.folded:
                # the token is held G·R-1 cycles while its groups (and row blocks) are read,
                # one edge more for the memory read
                return self.state_steps - 1 + self.readout_latency + 1, 0
            return self.readout_latency, 0
        # a scan walks n keys (the topk histogram pass) or n·G value groups, one per cycle,
        # each pass then drains in scan_cycles_fixed cycles; one edge more in DONE:
        # topk 2(L_H+1) + T + 1 + (G+1)·n (T = threshold_cycles), hsoftmax L_H + 2 + G·n
        if self.mode == "topk":
            return 2 * self.scan_cycles_fixed + self.threshold_cycles + 1, 1 + self.groups
        return self.scan_cycles_fixed + 1, self.groups

    @property
    def engine_interval(self):
        """(fixed, per_key) cycles the value path is busy with one query: the pipelined
        linear read-out takes a query every cycle; a scan takes its latency plus the cycle
        in which it returns to idle."""
        if self.mode == "linear":
            return self.state_steps, 0
        fixed, per_key = self.engine_timing
        return fixed + 1, per_key

    @property
    def latency(self):
        """{'fixed', 'per_key'}: edges from a query transfer to its output transfer, with
        m_out_tready high and the core otherwise idle (SPEC §5): hash, value path, divider."""
        fixed, per_key = self.engine_timing
        return {"fixed": self.hash_latency + fixed + self.divider_latency,
                "per_key": per_key}

    @property
    def q_interval(self):
        """{'fixed', 'per_key'}: edges between accepted queries at full throughput, which the
        core enforces at ``s_q_tready``: the longer of the value path's and the divider's
        occupancy, so that every query sees an idle value path and divider and its output
        comes exactly ``latency`` edges later."""
        fixed, per_key = self.engine_interval
        return {"fixed": max(fixed, self.divider_latency, self.hash_interval),
                "per_key": per_key}

    @property
    def kv_interval(self):
        """{'fixed', 'per_key'}: edges between accepted keys: G (one group per cycle through
        the hash and the value path), G·R in a linear path that folds its rows."""
        return {"fixed": self.state_steps, "per_key": 0}

    @property
    def out_credits(self):
        """F: queries the core lets be in flight (accepted, output not yet taken); F - 1 is
        the depth of its output queue (the divider holds one more). At full rate, when a
        query is accepted, the m earlier ones with m·q_interval <= latency are in flight
        (the oldest may be leaving at that very edge): F = floor(latency / q_interval) + 1,
        so the credit never throttles a core whose output is ready; when ``m_out_tready``
        is low the finished outputs wait in the queue and the pipeline itself never stalls.
        At least 2, as latency > q_interval."""
        return max(self.at(self.latency, n) // self.at(self.q_interval, n)
                   for n in {1, self.N}) + 1

    @staticmethod
    def at(timing, n):
        """Evaluate a {'fixed', 'per_key'} timing for a window of n used keys."""
        return timing["fixed"] + timing["per_key"] * n

    # ---------------------------------------------------------------- size
    @property
    def adder_bits(self):
        """A size estimate of the generated core: the bits of all its adders (hash trees,
        value path, divider). Used to refuse configs too large to elaborate in reasonable
        time and to warn about slow ones; not an area figure (see ``hamattn synth``)."""
        pw = self.projection_width
        hashes = [self.W] + ([self.Wq] if self.asymmetric else [])
        if self.folded:     # per row: a P-lane tree (terms - 1 adders) and its accumulator
            bits = sum(len(r) * pw for r in self.hash_slot_terms)
        else:
            bits = sum(max(0, len(self.hash_row_terms(r)) - 1) * pw for M in hashes for r in M)
        if self.mode == "linear":
            bits += 2 * self.rows * self.lanes * self.S_width
        else:
            bits += 2 * self.lanes * self.num_width + (self.b + 1) * self.key_count_width
        return bits + 2 * self.d * (self.num_width + self.w)

    # ---------------------------------------------------------------- description
    def params(self):
        """Every parameter of SPEC §1 by its symbol (JSON-ready)."""
        return {p.name: getattr(self, p.name) for p in PARAMS}

    def __repr__(self):
        return "CoreConfig(" + ", ".join(f"{k}={v!r}" for k, v in self.params().items()) + ")"
