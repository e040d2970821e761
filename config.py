"""The one configuration object of hamattn (SPEC §1-§3).

:class:`CoreConfig` is frozen and validated once when it is built; it holds the parameters,
the hash constants and the ``hsoftmax`` shift table, and composes the plans of the core's
blocks (:attr:`CoreConfig.plan`, a :class:`~hamattn.rtl.core.CorePlan`): every width,
latency and interval of the generated core is computed by the block's plan beside its RTL
(rtl/), and read from there by the RTL, the manifest and the testbenches. A few properties
(``latency``, ``q_interval``, ``kv_interval``, ``num_width``, ...) delegate to the plans for
their many callers.

This module imports only the plain-Python plans of rtl/ (no command line, golden model or
testbench).
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .rtl.core import CorePlan
from .rtl.divider import DividerPlan, divider_interval, divider_latency, divider_steps
from .rtl.hamming import POPCOUNT_TREES, HammingPlan, hamming_latency
from .rtl.hash import HashPlan
from .rtl.linear import LinearPlan
from .rtl.plan import (Folding, csd_digits, signed_width, timing_at, tree_depth,
                       unsigned_width)
from .rtl.hsoftmax import HsoftmaxPlan
from .rtl.scan import ScanPlan
from .rtl.tree import ADDER_TREES

__all__ = [
    "CoreConfig", "ConfigError", "WeightsError", "MODES", "WEIGHT_SOURCES", "PARAMS", "PARAM",
    "DEFAULTS", "FLAGS", "Param",
    "signed_width", "unsigned_width", "csd_digits", "tree_depth", "divider_latency",
    "divider_interval", "divider_steps",
    "hamming_latency", "POPCOUNT_TREES", "ADDER_TREES", "MODE_PARAMS", "unused_reason",
    "check_given",
]

MODES = ("linear", "topk", "hsoftmax")
#: popcount trees of the Hamming distance: POPCOUNT_TREES (rtl/hamming.py)
DEFAULT_POPCOUNT = "lut6"
#: adder trees of the hash projection and the linear read-out: ADDER_TREES (rtl/tree.py)
DEFAULT_ADDERS = "sum"
WEIGHT_SOURCES = ("random-ternary", "random-sign")
#: widest weight a hash constant may have (signed bits); the projection sums stay < 2**63
MAX_WEIGHT_WIDTH = 16
MAX_SHIFT_ENTRY = 32
#: largest core (in adder bits, see CorePlan.adder_bits) that `hamattn gen` elaborates
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


#: the largest seed (the range of PCG64's seed as the config takes it)
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Param:
    """One parameter of SPEC §1: the one place its flag, default and range are written.
    The config's validation, the command line's ``--help`` and type checks and every
    refusal message are built from it.

    ``lo`` and ``hi`` bound an ``int`` (inclusive) or a ``float`` (``lo < x <= hi``); ``hi``
    may name another parameter (``"N"``: k <= N). ``choices`` are the allowed strings (a
    parameter that also takes a file, ``weights``, lists them in ``help`` instead);
    ``default_text`` describes a default that depends on another parameter."""

    name: str       # SPEC symbol and attribute name
    flag: str       # command-line flag
    default: object
    help: str
    kind: type = str    # what a command-line value is converted to
    lo: object = None
    hi: object = None
    choices: tuple = ()
    default_text: str = ""

    def bound(self, cfg=None):
        """``hi`` as a number (read from ``cfg`` when it names a parameter), or its name
        when there is no ``cfg``."""
        if isinstance(self.hi, str):
            return self.hi if cfg is None else getattr(cfg, self.hi)
        return "2**63-1" if self.hi == MAX_SEED and cfg is None else self.hi

    def allowed(self, cfg=None):
        """What the parameter accepts, as the refusal messages say it (with ``cfg``: a bound
        that names another parameter as that parameter's value)."""
        if self.kind is int:
            return f"an integer from {self.lo} to {self.bound(cfg)}"
        if self.kind is float:
            return f"a number with {self.lo} < {self.name} <= {self.bound(cfg)}"
        return "one of " + ", ".join(self.choices)

    @property
    def help_text(self):
        """The ``--help`` line: what the parameter is, then its range or choices."""
        if self.kind is int:
            rng = f"{self.lo}..{self.bound()}"
        elif self.kind is float:
            rng = f"{self.lo} < {self.name} <= {self.bound()}"
        elif self.choices:
            return f"{self.help}: {', '.join(self.choices[:-1])} or {self.choices[-1]}"
        else:
            return self.help
        default = f", default {self.default_text}" if self.default_text else ""
        return f"{self.help} ({rng}{default})"

    def check(self, value, cfg=None):
        """``value`` as an ``int`` (``kind`` int) within the range, else :class:`ConfigError`
        naming the parameter, its flag, the value and what is allowed."""
        hi = self.bound(cfg) if isinstance(self.hi, str) else self.hi
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not self.lo <= int(value) <= hi:
            raise ConfigError(self.name, value, f"an integer from {self.lo} to {hi}", self.flag)
        return int(value)


#: the parameters of SPEC §1, in order; the validation, the command line and the manifest
#: are built from this
PARAMS = (
    Param("d", "--head-dim", 16, "elements per q/k/v vector", int, 1, 1024),
    Param("w", "--width", 8, "bits per element, two's complement", int, 2, 16),
    Param("b", "--code-bits", 16, "hash code length", int, 1, 1024),
    Param("N", "--seq-len", 64, "most keys in one window", int, 1, 65536),
    Param("mode", "--mode", "linear", "value path", choices=MODES),
    Param("k", "--topk", None, "keys kept per query, topk only", int, 1, "N",
          default_text=f"min({DEFAULT_K}, N)"),
    Param("g", "--temperature", 12.0, "sharpness of hsoftmax", float, 0, 64),
    Param("smax", "--max-shift", 16, "largest shift of hsoftmax", int, 0, MAX_SHIFT_ENTRY),
    Param("lanes", "--lanes", None, "value elements processed per cycle", int, 1, "d",
          default_text="d"),
    Param("rows", "--rows", None, "code rows of the linear state processed per cycle, "
          "folded linear only", int, 1, "b", default_text="b"),
    Param("keys_per_cycle", "--keys-per-cycle", 1, "stored keys compared with a query per "
          "cycle, topk and hsoftmax only", int, 1, "N"),
    Param("weights", "--weights", "random-ternary",
          "hash projection: random-ternary, random-sign or a .npz file"),
    Param("seed", "--seed", 0, "seed of the random hash projection", int, 0, MAX_SEED),
    Param("popcount", "--popcount", DEFAULT_POPCOUNT, "popcount tree of the Hamming distance",
          choices=POPCOUNT_TREES),
    Param("adders", "--adders", DEFAULT_ADDERS,
          "adder trees of the hash projection and linear read-out", choices=ADDER_TREES),
)
FLAGS = {p.name: p.flag for p in PARAMS}
PARAM = {p.name: p for p in PARAMS}
#: the default of each parameter (None: derived from another, see Param.default_text)
DEFAULTS = {p.name: p.default for p in PARAMS}
#: the parameters that only some value paths use: the modes that use each
MODE_PARAMS = {"k": ("topk",), "g": ("hsoftmax",), "smax": ("hsoftmax",), "rows": ("linear",),
               "popcount": ("topk", "hsoftmax"), "keys_per_cycle": ("topk", "hsoftmax")}


def unused_reason(cfg, name):
    """Why ``cfg`` does not use parameter ``name`` (a mode-specific one in another mode,
    the temperature or largest shift when the weights file brings the shift table), or None
    when it does."""
    modes = MODE_PARAMS.get(name)
    if modes and cfg.mode not in modes:
        return (f"not given: {FLAGS[name]} applies to mode {' and '.join(modes)} only "
                f"(the mode is {cfg.mode})")
    if name in ("g", "smax") and cfg.shift_table is not None:
        return (f"not given: the shift table of --weights {cfg.weights} replaces "
                "--temperature and --max-shift")
    return None


def check_given(cfg, given):
    """Refuse by name each parameter in ``given`` (the names the user set) that ``cfg``
    does not use (:func:`unused_reason`): a flag accepted and ignored would leave the user
    believing the hardware has it."""
    for p in PARAMS:
        why = unused_reason(cfg, p.name) if p.name in given else None
        if why:
            raise ConfigError(p.name, getattr(cfg, p.name), why, p.flag)


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
class CoreConfig(Folding):
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
    keys_per_cycle : :class:`int`
        M, stored keys compared with a query per cycle (1..N; above 1 only in ``topk`` and
        ``hsoftmax``).
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
    plan : :class:`~hamattn.rtl.core.CorePlan`
        The blocks' plans (hash, value path with its Hamming distance, divider), each owning
        its widths and its :class:`~hamattn.rtl.plan.Timing`; the core's timing is their sum.
    latency, q_interval, kv_interval : :class:`dict`
        ``{"fixed": A, "per_key": C}`` (with ``per_block``, ``block``, ``per_kept`` where
        not 0): A + C·n + D·ceil(n/M) + E·min(k, n) clock edges for a window of n used keys
        (the plan's Timing as in the manifest; the formulas: docs/hardware.md); :meth:`at`
        evaluates one.
    groups, row_blocks : :class:`int`
        G = ceil(d/P) cycles per vector, R = ceil(b/T) row blocks.
    shifts : :class:`tuple`
        s[h] for h = 0..b (SPEC §3).
    weight_width, num_width, den_width : :class:`int`
        Derived widths in bits (the plans'), each exactly wide enough that no sum overflows.
    """

    d: int = DEFAULTS["d"]
    w: int = DEFAULTS["w"]
    b: int = DEFAULTS["b"]
    N: int = DEFAULTS["N"]
    mode: str = DEFAULTS["mode"]
    k: int = DEFAULT_K
    g: float = DEFAULTS["g"]
    smax: int = DEFAULTS["smax"]
    lanes: int = DEFAULTS["d"]
    rows: int = DEFAULTS["b"]
    keys_per_cycle: int = DEFAULTS["keys_per_cycle"]
    weights: str = DEFAULTS["weights"]
    seed: int = DEFAULTS["seed"]
    W: tuple = ()
    theta: tuple = ()
    Wq: tuple | None = None
    thetaq: tuple | None = None
    shift_table: tuple | None = None  # from a weights file; None: the SPEC formula
    popcount: str = DEFAULT_POPCOUNT
    adders: str = DEFAULT_ADDERS

    # ---------------------------------------------------------------- construction
    @classmethod
    def create(cls, d=DEFAULTS["d"], w=DEFAULTS["w"], b=DEFAULTS["b"], N=DEFAULTS["N"],
               mode=DEFAULTS["mode"], k=None, g=DEFAULTS["g"], smax=DEFAULTS["smax"],
               lanes=None, rows=None, keys_per_cycle=DEFAULTS["keys_per_cycle"],
               weights=DEFAULTS["weights"], seed=DEFAULTS["seed"],
               popcount=DEFAULT_POPCOUNT, adders=DEFAULT_ADDERS):
        """Validate the scalar parameters, draw or load W/θ, and return the frozen config.

        Parameters
        ----------
        d, w, b, N, mode, g, smax, keys_per_cycle, seed, popcount, adders
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
        d, w, b, N, seed = (PARAM[n].check(v) for n, v in
                            (("d", d), ("w", w), ("b", b), ("N", N), ("seed", seed)))
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
                   keys_per_cycle=keys_per_cycle, weights=weights, seed=seed,
                   W=tup(W), theta=tup(theta), Wq=tup(Wq), thetaq=tup(thetaq),
                   shift_table=tup(shift_table), popcount=popcount, adders=adders)

    def __post_init__(self):
        for name in ("d", "w", "b", "N"):
            PARAM[name].check(getattr(self, name))
        for name in ("mode", "popcount", "adders"):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in PARAM[name].choices:
                raise ConfigError(name, value, PARAM[name].allowed(), FLAGS[name])
        k = self.k
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) \
                or not PARAM["k"].lo <= k <= self.N:
            raise ConfigError("k", k, f"an integer from 1 to N = {self.N} (k keys kept of at "
                              f"most N = {self.N} keys)", "--topk")
        g = self.g
        if isinstance(g, bool) or not isinstance(g, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(g)) or not PARAM["g"].lo < float(g) <= PARAM["g"].hi:
            raise ConfigError("g", g, PARAM["g"].allowed(), "--temperature")
        object.__setattr__(self, "g", float(g))
        for name in ("smax", "lanes", "rows"):
            PARAM[name].check(getattr(self, name), self)
        if self.rows < self.b and self.mode != "linear":
            raise ConfigError("rows", self.rows, f"b = {self.b} in mode {self.mode}: only the "
                              "linear value path folds the rows of its state", "--rows")
        if self.rows < self.b and self.lanes == self.d:
            raise ConfigError("rows", self.rows, f"b = {self.b} when fully parallel (lanes = d "
                              f"= {self.d}): folding the rows needs --lanes below d", "--rows")
        PARAM["keys_per_cycle"].check(self.keys_per_cycle, self)
        if self.keys_per_cycle > 1 and self.mode == "linear":
            raise ConfigError("keys_per_cycle", self.keys_per_cycle, "1 in mode linear: only "
                              "the topk and hsoftmax value paths scan stored keys",
                              "--keys-per-cycle")
        PARAM["seed"].check(self.seed)
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
    # (vmin, vmax, groups, folded and row_blocks: from Folding, as in the plans)
    @property
    def words(self):
        """64-bit words per packed code."""
        return (self.b + 63) // 64

    # ---------------------------------------------------------------- the plans (rtl/)
    @cached_property
    def plan(self):
        """The core's blocks planned from this config's numbers and composed
        (:class:`~hamattn.rtl.core.CorePlan`): every width, memory layout, latency and
        interval of the generated core is computed there, beside the RTL that realises it."""
        hamming = HammingPlan(self.b, self.popcount)        # (the scans')
        if self.mode == "linear":
            value = LinearPlan(self.d, self.w, self.b, self.N, self.lanes, self.rows,
                               self.adders)
        elif self.mode == "topk":
            value = ScanPlan(self.d, self.w, self.b, self.N, self.k, lanes=self.lanes,
                             keys_per_cycle=self.keys_per_cycle, hamming=hamming)
        else:
            value = HsoftmaxPlan(self.d, self.w, self.b, self.N, self.weight_shifts,
                                 lanes=self.lanes, keys_per_cycle=self.keys_per_cycle,
                                 hamming=hamming)
        hash_plan = HashPlan(self.d, self.w, self.b, self.W, self.theta, self.Wq, self.thetaq,
                             self.lanes, self.rows, self.adders)
        interval = max(value.interval.fixed, hash_plan.interval.fixed)
        gap = None
        if self.mode != "linear":
            if value.grouped:
                # a folded topk gives a group per cycle (1 step per stage), hsoftmax one per
                # fold, at least beat_spacing edges apart
                interval = value.groups * getattr(value, "beat_spacing", 1)
            # a scan gives one division per query, the queries interval.at(1) edges apart
            gap = value.interval.at(1, self.k) - value.out_cycles
        return CorePlan(
            d=self.d, w=self.w, N=self.N,
            hash=hash_plan,
            value=value,
            divider=DividerPlan.keeping_up(
                self.d, value.num_width, value.den_width, self.w, self.lanes, value.grouped,
                interval, gap, getattr(value, "output_hold", None)))

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

    # ---------------------------------------------------------------- delegations
    @property
    def kept(self):
        """Most keys a query's output sums over: N (linear, hsoftmax) or k (topk)."""
        return self.plan.value.kept

    @property
    def max_weight(self):
        """Largest weight of one key: 2b+1 (linear), 1 (topk), 2^(s[b]-s[0]) (hsoftmax)."""
        return self.plan.value.max_weight

    @property
    def num_width(self):
        """Signed width of num[e] = sum_j weight_j v_j[e] (the value path's)."""
        return self.plan.value.num_width

    @property
    def den_width(self):
        """Unsigned width of den = sum_j weight_j (>= 1)."""
        return self.plan.value.den_width

    @property
    def weight_width(self):
        """Signed bits of the widest hash weight (the hash's)."""
        return self.plan.hash.weight_width

    @property
    def latency(self):
        """The manifest object {'fixed', 'per_key', ...} of :attr:`CorePlan.latency`: edges from a
        query transfer to its output transfer (SPEC §5)."""
        return self.plan.latency.to_manifest()

    @property
    def q_interval(self):
        """The manifest object of :attr:`CorePlan.q_interval`."""
        return self.plan.q_interval.to_manifest()

    @property
    def kv_interval(self):
        """The manifest object of :attr:`CorePlan.kv_interval`."""
        return self.plan.kv_interval.to_manifest()

    def at(self, timing, n):
        """Evaluate a manifest timing object (SPEC §5) for a window of n used keys:
        A + C·n + D·ceil(n/M) + E·min(k, n), this config's k (:func:`timing_at`)."""
        return timing_at(timing, n, self.k)

    # ---------------------------------------------------------------- description
    def params(self):
        """Every parameter of SPEC §1 by its symbol (JSON-ready)."""
        return {p.name: getattr(self, p.name) for p in PARAMS}

    def __repr__(self):
        return "CoreConfig(" + ", ".join(f"{k}={v!r}" for k, v in self.params().items()) + ")"
