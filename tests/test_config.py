"""CoreConfig (SPEC §1-§2): every refused boundary with its message, every accepted boundary,
every malformed weights file, and that the derived widths hold what the golden model
computes, extreme inputs included."""

from __future__ import annotations

import builtins
import dataclasses
import math
import random

import numpy as np
import pytest

from hamattn.config import MODES, ConfigError, CoreConfig, WeightsError
from hamattn.golden import hash_codes, linear_state, run
from hamattn.rtl.divider import CHAIN_BITS
from hamattn.rtl.hamming import HammingPlan
from hamattn.rtl.linear import state_widths

FLAG = {"d": "--head-dim", "w": "--width", "b": "--code-bits", "N": "--seq-len",
        "mode": "--mode", "k": "--topk", "g": "--temperature", "smax": "--max-shift",
        "lanes": "--lanes", "rows": "--rows", "weights": "--weights", "seed": "--seed",
        "popcount": "--popcount", "adders": "--adders", "keys_per_cycle": "--keys-per-cycle"}


def refused(exc=ConfigError, **kw):
    with pytest.raises(exc) as info:
        CoreConfig.create(**kw)
    return info.value


# =========================================================================== full messages

@pytest.mark.parametrize("kw,message", [
    (dict(d=0), "d (--head-dim) = 0 is not allowed: an integer from 1 to 1024"),
    (dict(d=1025), "d (--head-dim) = 1025 is not allowed: an integer from 1 to 1024"),
    (dict(d="16"), "d (--head-dim) = '16' is not allowed: an integer from 1 to 1024"),
    (dict(w=17), "w (--width) = 17 is not allowed: an integer from 2 to 16"),
    (dict(N=65537), "N (--seq-len) = 65537 is not allowed: an integer from 1 to 65536"),
    (dict(k=65), "k (--topk) = 65 is not allowed: an integer from 1 to N = 64 "
                 "(k keys kept of at most N = 64 keys)"),
    (dict(g=float("nan")), "g (--temperature) = nan is not allowed: a number with 0 < g <= 64"),
    (dict(mode="softmax"),
     "mode (--mode) = 'softmax' is not allowed: one of linear, topk, hsoftmax"),
    (dict(d=16, lanes=17), "lanes (--lanes) = 17 is not allowed: an integer from 1 to 16"),
    (dict(popcount="lut5"),
     "popcount (--popcount) = 'lut5' is not allowed: one of sum, lut4, lut6"),
    (dict(adders="heap"), "adders (--adders) = 'heap' is not allowed: one of sum, lut4, lut6"),
], ids=["d0", "d1025", "d_str", "w17", "N65537", "k_gt_N", "g_nan", "mode_bad", "lanes_gt_d",
        "popcount_bad", "adders_bad"])
def test_refused_full_message(kw, message):
    e = refused(**kw)
    assert str(e) == message
    (name, value), = kw.items() if len(kw) == 1 else [("lanes", kw["lanes"])]
    assert e.parameter == name and e.flag == FLAG[name]
    assert e.value == value or (isinstance(value, float) and math.isnan(value))


# =========================================================================== key parts

def _int_range(lo, hi):
    return f"an integer from {lo} to {hi}"


REFUSED = [
    # (id, kwargs, parameter, repr of value, allowed text)
    ("d0", dict(d=0), "d", "0", _int_range(1, 1024)),
    ("d1025", dict(d=1025), "d", "1025", _int_range(1, 1024)),
    ("d_neg", dict(d=-1), "d", "-1", _int_range(1, 1024)),
    ("d_float", dict(d=1.5), "d", "1.5", _int_range(1, 1024)),
    ("d_float_integral", dict(d=16.0), "d", "16.0", _int_range(1, 1024)),
    ("d_bool", dict(d=True), "d", "True", _int_range(1, 1024)),
    ("d_none", dict(d=None), "d", "None", _int_range(1, 1024)),
    ("w1", dict(w=1), "w", "1", _int_range(2, 16)),
    ("w17", dict(w=17), "w", "17", _int_range(2, 16)),
    ("w_str", dict(w="8"), "w", "'8'", _int_range(2, 16)),
    ("b0", dict(b=0), "b", "0", _int_range(1, 1024)),
    ("b1025", dict(b=1025), "b", "1025", _int_range(1, 1024)),
    ("b_bool", dict(b=False), "b", "False", _int_range(1, 1024)),
    ("N0", dict(N=0), "N", "0", _int_range(1, 65536)),
    ("N65537", dict(N=65537), "N", "65537", _int_range(1, 65536)),
    ("N_float", dict(N=64.0), "N", "64.0", _int_range(1, 65536)),
    ("k0", dict(k=0), "k", "0", "an integer from 1 to N = 64"),
    ("k_gt_N", dict(N=16, k=17), "k", "17", "an integer from 1 to N = 16"),
    ("k_gt_N_linear", dict(N=4, k=8, mode="linear"), "k", "8", "an integer from 1 to N = 4"),
    ("k_float", dict(k=2.0), "k", "2.0", "an integer from 1 to N = 64"),
    ("k_bool", dict(k=True), "k", "True", "an integer from 1 to N = 64"),
    ("g0", dict(g=0), "g", "0", "0 < g <= 64"),
    ("g0.0", dict(g=0.0), "g", "0.0", "0 < g <= 64"),
    ("g_neg", dict(g=-1), "g", "-1", "0 < g <= 64"),
    ("g64.0001", dict(g=64.0001), "g", "64.0001", "0 < g <= 64"),
    ("g_nan", dict(g=float("nan")), "g", "nan", "0 < g <= 64"),
    ("g_inf", dict(g=float("inf")), "g", "inf", "0 < g <= 64"),
    ("g_str", dict(g="12"), "g", "'12'", "0 < g <= 64"),
    ("g_bool", dict(g=True), "g", "True", "0 < g <= 64"),
    ("smax_neg", dict(smax=-1), "smax", "-1", _int_range(0, 32)),
    ("smax33", dict(smax=33), "smax", "33", _int_range(0, 32)),
    ("smax_float", dict(smax=1.0), "smax", "1.0", _int_range(0, 32)),
    ("mode_bad", dict(mode="softmax"), "mode", "'softmax'", "one of linear, topk, hsoftmax"),
    ("mode_case", dict(mode="Linear"), "mode", "'Linear'", "one of linear, topk, hsoftmax"),
    ("mode_none", dict(mode=None), "mode", "None", "one of linear, topk, hsoftmax"),
    ("lanes0", dict(lanes=0), "lanes", "0", _int_range(1, 16)),
    ("lanes_d_plus_1", dict(lanes=17), "lanes", "17", _int_range(1, 16)),
    ("lanes_d_plus_1_d5", dict(d=5, lanes=6), "lanes", "6", _int_range(1, 5)),
    ("lanes_str", dict(lanes="16"), "lanes", "'16'", _int_range(1, 16)),
    ("rows0", dict(rows=0, lanes=4), "rows", "0", _int_range(1, 16)),
    ("rows_b_plus_1", dict(rows=17, lanes=4), "rows", "17", _int_range(1, 16)),
    ("rows_topk", dict(rows=4, lanes=4, mode="topk"), "rows", "4",
     "b = 16 in mode topk: only the linear value path folds the rows of its state"),
    ("rows_parallel", dict(rows=4), "rows", "4",
     "b = 16 when fully parallel (lanes = d = 16): folding the rows needs --lanes below d"),
    ("M0", dict(keys_per_cycle=0, mode="topk"), "keys_per_cycle", "0", _int_range(1, 64)),
    ("M_N_plus_1", dict(keys_per_cycle=9, N=8, mode="hsoftmax"), "keys_per_cycle", "9",
     _int_range(1, 8)),
    ("M_float", dict(keys_per_cycle=2.0, mode="topk"), "keys_per_cycle", "2.0",
     _int_range(1, 64)),
    ("M_linear", dict(keys_per_cycle=2), "keys_per_cycle", "2",
     "1 in mode linear: only the topk and hsoftmax value paths scan stored keys"),
    ("seed_neg", dict(seed=-1), "seed", "-1", _int_range(0, 2**63 - 1)),
    ("seed_big", dict(seed=2**63), "seed", str(2**63), _int_range(0, 2**63 - 1)),
    ("weights_unknown", dict(weights="gaussian"), "weights", "'gaussian'",
     "random-ternary, random-sign or the path of a .npz file"),
    ("weights_int", dict(weights=3), "weights", "3",
     "random-ternary, random-sign or the path of a .npz file"),
]


@pytest.mark.parametrize("kw,name,value,allowed", [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_refused_names_parameter_flag_value_and_range(kw, name, value, allowed):
    e = refused(**kw)
    msg = str(e)
    assert msg.startswith(f"{name} ({FLAG[name]}) = {value} is not allowed: "), msg
    assert allowed in msg, msg
    assert e.parameter == name and e.flag == FLAG[name] and allowed in e.allowed


def test_refused_when_built_directly():
    """The constructor validates too: no invalid instance can exist, not even by replace."""
    good = CoreConfig.create()
    for change in (dict(d=0), dict(mode="x"), dict(k=65), dict(g=0.0), dict(smax=33)):
        with pytest.raises(ConfigError):
            dataclasses.replace(good, **change)
    with pytest.raises(ConfigError):
        good.replace(N=4, k=8)                              # k = 8 > N = 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        good.d = 3


# =========================================================================== accepted

@pytest.mark.parametrize("kw", [
    dict(d=1), dict(d=1024), dict(w=2), dict(w=16), dict(b=1), dict(b=1024),
    dict(N=1, k=1), dict(N=65536), dict(N=64, k=64), dict(N=65536, k=65536), dict(k=1),
    dict(g=64), dict(g=64.0), dict(g=1e-9), dict(g=np.float32(3.5)), dict(smax=0),
    dict(smax=32), dict(d=1, lanes=1), dict(d=1024, lanes=1024), dict(seed=2**63 - 1),
    dict(d=np.int64(7), b=np.int16(3)), dict(mode="topk"), dict(mode="hsoftmax"),
    dict(weights="random-sign"),
], ids=lambda kw: "_".join(f"{k}{v}" for k, v in kw.items()))
def test_accepted_boundaries(kw):
    cfg = CoreConfig.create(**kw)
    for name, value in kw.items():
        got = getattr(cfg, name)
        assert got == value, (name, got)
        if name in ("d", "w", "b", "N", "k", "smax", "lanes", "seed"):
            assert type(got) is int, (name, type(got))       # NumPy integers normalised
    assert cfg.lanes == cfg.d
    assert isinstance(cfg.g, float)
    assert cfg.W_array.shape == (cfg.b, cfg.d) and cfg.theta_array.shape == (cfg.b,)


def test_defaults_are_the_spec_table():
    cfg = CoreConfig.create()
    assert (cfg.d, cfg.w, cfg.b, cfg.N, cfg.mode, cfg.k, cfg.g, cfg.smax, cfg.lanes,
            cfg.weights, cfg.seed) == (16, 8, 16, 64, "linear", 8, 12.0, 16, 16,
                                       "random-ternary", 0)
    assert not cfg.asymmetric and cfg.shift_table is None


def test_replace_keeps_lanes_following_d():
    cfg = CoreConfig.create(d=8)
    assert cfg.replace(d=32).lanes == 32
    assert cfg.replace(mode="topk").lanes == 8
    folded = cfg.replace(d=32, lanes=8)
    assert (folded.lanes, folded.groups) == (8, 4)
    assert folded.replace(b=8).lanes == 8            # an explicit lanes is kept
    with pytest.raises(ConfigError, match=r"lanes \(--lanes\) = 8 is not allowed: an integer "
                                          r"from 1 to 4"):
        folded.replace(d=4)


@pytest.mark.parametrize("b,rows,blocks", [(16, 16, 1), (16, 4, 4), (16, 5, 4), (7, 3, 3),
                                           (16, 1, 16), (1, 1, 1)])
def test_row_blocks_and_intervals(b, rows, blocks):
    """R = ceil(b/rows); a folded linear path takes G·R cycles per vector: kv_interval and
    the query interval follow, the hash reads R passes (G·R), the divider keeps up (its
    stages take up to R steps, one group per R cycles) and does not add to the interval."""
    cfg = CoreConfig.create(d=6, lanes=2, b=b, rows=rows, N=4)
    G = cfg.groups
    assert cfg.row_blocks == blocks
    assert cfg.kv_interval == {"fixed": G * blocks, "per_key": 0}   # (test_core: the plan's)
    dv = cfg.plan.divider
    assert cfg.q_interval["fixed"] == G * blocks >= dv.interval.fixed
    # (+ 1 where X = |num| + den/2 is wider than CHAIN_BITS: a sign stage adds its low half)
    wide = max(dv.num_width, dv.den_width) > CHAIN_BITS
    assert dv.latency.fixed == cfg.w + 4 + wide and dv.steps <= blocks
    assert dv.interval.fixed == G * dv.steps
    assert cfg.replace(N=5).rows == rows                  # an explicit rows is kept
    assert CoreConfig.create(b=b).replace(b=2 * b).rows == 2 * b   # rows follows b


@pytest.mark.parametrize("d,lanes,groups", [(16, 16, 1), (16, 1, 16), (16, 4, 4), (16, 5, 4),
                                            (3, 2, 2), (1, 1, 1), (1024, 1023, 2)])
def test_groups_and_folded_intervals(d, lanes, groups):
    """G = ceil(d/P); keys take G cycles each; every query interval covers the folded
    divider's, G·steps edges, and is the value path's or the hash's: the division never
    sets it. A folded value path (any mode) hands the divider one group per cycle, so its
    division takes w + 4 edges after the last group (w + 5 where X = |num| + den/2 is
    wider than CHAIN_BITS); an unfolded one a whole vector at once
    (unfolded topk, which holds its sums: a serial divider, one stage of restoring units
    loading each of its own groups G' in turn, G'·(w + 1) edges, w + 1 per group)."""
    cfg = CoreConfig.create(d=d, lanes=lanes, b=4, N=4)
    assert cfg.groups == groups and cfg.folded == (groups > 1)
    assert cfg.kv_interval == {"fixed": groups, "per_key": 0}
    for mode in ("linear", "topk", "hsoftmax"):
        c = cfg.replace(mode=mode)
        dv = c.plan.divider
        k = dv.steps
        assert c.q_interval["fixed"] == max(c.plan.value.interval.fixed,
                                            c.plan.hash.interval.fixed) >= dv.interval.fixed
        assert dv.grouped == (groups > 1)
        if dv.serial:
            assert mode == "topk" and groups == 1 and k == c.w
            assert dv.interval.fixed == dv.groups * (c.w + 1) == dv.latency.fixed - 1
        else:
            # (each step in dv.parts edges: a held den's split steps)
            assert 1 <= k <= c.w and dv.interval.fixed == groups * k * dv.parts
            # (+ 1 where X = |num| + den/2 is wider than CHAIN_BITS: a sign stage)
            wide = max(dv.num_width, dv.den_width) > CHAIN_BITS
            assert dv.latency.fixed == c.w * dv.parts + 4 + wide


# =========================================================================== weights files

def savez(tmp_path, name="w.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def good_arrays(b=4, d=3, **extra):
    rng = np.random.default_rng(b * 100 + d)
    arrays = dict(W=rng.integers(-2, 3, (b, d)), theta=rng.integers(-3, 4, b))
    arrays.update(extra)
    return arrays


def test_good_weights_file_loaded_exactly(tmp_path):
    arrays = good_arrays(Wq=np.full((4, 3), -7, dtype=np.int8),
                         thetaq=np.arange(4, dtype=np.uint16),
                         shifts=np.array([0, 1, 1, 5, 32], dtype=np.int32))
    cfg = CoreConfig.create(b=4, d=3, weights=savez(tmp_path, **arrays))
    assert (cfg.W_array == arrays["W"]).all() and (cfg.theta_array == arrays["theta"]).all()
    assert (cfg.Wq_array == -7).all() and list(cfg.thetaq) == [0, 1, 2, 3]
    assert cfg.shifts == (0, 1, 1, 5, 32) and cfg.asymmetric


def test_weight_width_boundaries(tmp_path):
    for lo_hi in ((-32768, 32767), (-32768, 0), (0, 32767)):
        W = np.array([[lo_hi[0], lo_hi[1]]])
        cfg = CoreConfig.create(b=1, d=2, weights=savez(tmp_path, W=W, theta=np.zeros(1, int)))
        assert cfg.weight_width == 16
    cfg = CoreConfig.create(b=1, d=2, weights=savez(tmp_path, W=np.array([[-2, 1]]),
                                                     theta=np.zeros(1, int)))
    assert cfg.weight_width == 2
    cfg = CoreConfig.create(b=1, d=2, weights=savez(tmp_path, W=np.array([[-3, 2]]),
                                                     theta=np.zeros(1, int)))
    assert cfg.weight_width == 3


BAD_FILES = [
    # id, arrays (or raw bytes), substrings the message must hold
    ("W_shape", dict(W=np.zeros((4, 2), int), theta=np.zeros(4, int)),
     ["weights:W (--weights) = 'shape (4, 2)' is not allowed", "shape (4, 3)", "b=4", "d=3"]),
    ("W_shape_transposed", dict(W=np.zeros((3, 4), int), theta=np.zeros(4, int)),
     ["weights:W", "shape (3, 4)", "shape (4, 3)"]),
    ("W_1d", dict(W=np.zeros(12, int), theta=np.zeros(4, int)), ["weights:W", "shape (12,)"]),
    ("theta_shape", dict(W=np.zeros((4, 3), int), theta=np.zeros(5, int)),
     ["weights:theta (--weights) = 'shape (5,)' is not allowed", "shape (4,)"]),
    ("theta_2d", dict(W=np.zeros((4, 3), int), theta=np.zeros((4, 1), int)),
     ["weights:theta", "shape (4, 1)"]),
    ("W_float", dict(W=np.zeros((4, 3)), theta=np.zeros(4, int)),
     ["weights:W (--weights) = 'dtype float64' is not allowed", "an integer array"]),
    ("theta_float", dict(W=np.zeros((4, 3), int), theta=np.zeros(4, np.float32)),
     ["weights:theta", "dtype float32", "an integer array"]),
    ("W_bool", dict(W=np.zeros((4, 3), bool), theta=np.zeros(4, int)),
     ["weights:W", "dtype bool"]),
    ("W_too_wide_pos", dict(W=np.full((4, 3), 32768), theta=np.zeros(4, int)),
     ["W (--weights) = 32768 is not allowed", "16 signed bits", "-32768 .. 32767"]),
    ("W_too_wide_neg", dict(W=np.full((4, 3), -32769), theta=np.zeros(4, int)),
     ["W (--weights) = -32769 is not allowed", "16 signed bits"]),
    ("W_uint64_huge", dict(W=np.full((4, 3), 2**64 - 1, np.uint64), theta=np.zeros(4, int)),
     ["weights:W", str(2**64 - 1)]),
    ("Wq_too_wide", dict(W=np.zeros((4, 3), int), theta=np.zeros(4, int),
                         Wq=np.full((4, 3), 40000), thetaq=np.zeros(4, int)),
     ["Wq (--weights) = 40000 is not allowed", "16 signed bits"]),
    ("theta_too_big", dict(W=np.zeros((4, 3), int), theta=np.full(4, 2**50)),
     ["theta (--weights)", str(2**50)]),
    ("W_missing", dict(theta=np.zeros(4, int)), ["'W' is missing", "found ['theta']"]),
    ("theta_missing", dict(W=np.zeros((4, 3), int)), ["'theta' is missing"]),
    ("Wq_alone", dict(W=np.zeros((4, 3), int), theta=np.zeros(4, int),
                      Wq=np.zeros((4, 3), int)), ["'Wq' and 'thetaq' together"]),
    ("thetaq_alone", dict(W=np.zeros((4, 3), int), theta=np.zeros(4, int),
                          thetaq=np.zeros(4, int)), ["'Wq' and 'thetaq' together"]),
    ("Wq_shape", dict(W=np.zeros((4, 3), int), theta=np.zeros(4, int),
                      Wq=np.zeros((4, 4), int), thetaq=np.zeros(4, int)),
     ["weights:Wq", "shape (4, 4)"]),
    ("shifts_length", dict(W=np.zeros((4, 3), int), theta=np.zeros(4, int),
                           shifts=np.zeros(4, int)),
     ["weights:shifts (--weights) = 'shape (4,)' is not allowed", "shape (5,)"]),
    ("shifts_decreasing", dict(W=np.zeros((4, 3), int), theta=np.zeros(4, int),
                               shifts=np.array([0, 2, 1, 3, 4])),
     ["shifts (--weights) = [0, 2, 1, 3, 4] is not allowed", "non-decreasing"]),
    ("shifts_gt_32", dict(W=np.zeros((4, 3), int), theta=np.zeros(4, int),
                          shifts=np.array([0, 1, 2, 3, 33])), ["shifts", "0..32"]),
    ("shifts_negative", dict(W=np.zeros((4, 3), int), theta=np.zeros(4, int),
                             shifts=np.array([-1, 1, 2, 3, 4])), ["shifts", "0..32"]),
    ("shifts_float", dict(W=np.zeros((4, 3), int), theta=np.zeros(4, int),
                          shifts=np.zeros(5)), ["weights:shifts", "dtype float64"]),
    ("garbage_bytes", b"this is not a zip file at all" * 20, ["not a zip archive"]),
    ("empty_file", b"", ["not a zip archive"]),
    ("npy_not_npz", "npy", ["not a zip archive"]),
    ("truncated_zip", "truncated", ["not a zip archive"]),
]


@pytest.mark.parametrize("content,parts", [r[1:] for r in BAD_FILES],
                         ids=[r[0] for r in BAD_FILES])
def test_malformed_weights_file_refused(tmp_path, content, parts):
    path = tmp_path / "bad.npz"
    if isinstance(content, dict):
        np.savez(path, **content)
    elif content == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros((4, 3), dtype=np.int64))
    elif content == "truncated":
        np.savez(path, **good_arrays())
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    else:
        path.write_bytes(content)
    e = refused(WeightsError, b=4, d=3, weights=str(path))
    msg = str(e)
    for part in parts:
        assert part in msg, msg
    assert "(--weights)" in msg and e.flag == "--weights"


def test_missing_weights_file(tmp_path):
    path = str(tmp_path / "nope.npz")
    e = refused(WeightsError, weights=path)
    assert str(e) == (f"weights (--weights) = {path!r} is not allowed: "
                      "an existing .npz file (no such file)")
    e = refused(WeightsError, weights=str(tmp_path))            # a directory
    assert "no such file" in str(e)


def test_pickled_object_array_refused_and_never_unpickled(tmp_path):
    """An object array in the file is a pickle: loading it would run code. The sentinel's
    __reduce__ creates a file when unpickled; the positive control proves it would."""
    marker = tmp_path / "was_unpickled"

    class Sentinel:
        def __reduce__(self):
            return builtins.open, (str(marker), "w")

    W = np.empty((4, 3), dtype=object)
    W[:] = 0
    W[0, 0] = Sentinel()
    path = savez(tmp_path, "evil.npz", W=W, theta=np.zeros(4, int))
    e = refused(WeightsError, b=4, d=3, weights=path)
    assert "pickled objects are refused" in str(e) and "weights (--weights)" in str(e)
    assert not marker.exists()
    # control: with pickle allowed the same file does create the marker
    with np.load(path, allow_pickle=True) as z:
        z["W"]
    assert marker.exists()


def test_pickled_theta_refused(tmp_path):
    theta = np.array([0, 0, 0, 0], dtype=object)
    e = refused(WeightsError, b=4, d=3,
                weights=savez(tmp_path, W=np.zeros((4, 3), int), theta=theta))
    assert "pickled objects are refused" in str(e)


def test_weights_errors_are_config_errors():
    assert issubclass(WeightsError, ConfigError) and issubclass(ConfigError, ValueError)


# =========================================================================== derived widths

def fits_signed(a, bits):
    a = [int(x) for x in np.asarray(a).ravel()]
    return all(-(1 << (bits - 1)) <= x <= (1 << (bits - 1)) - 1 for x in a)


def fits_unsigned(a, bits):
    a = [int(x) for x in np.asarray(a).ravel()]
    return all(0 <= x <= (1 << bits) - 1 for x in a)


def extreme_projection_inputs(cfg, M):
    """For each hash row the two inputs that reach its y extremes (x[i] = vmax or vmin by
    the sign of W[t, i])."""
    M = np.asarray(M)
    hi = np.where(M > 0, cfg.vmax, cfg.vmin)
    lo = np.where(M > 0, cfg.vmin, cfg.vmax)
    return np.concatenate([hi, lo])


def check_widths(cfg, keys, values, queries):
    r = run(cfg, keys, values, queries)
    assert fits_signed(r.num, cfg.num_width), (cfg, cfg.num_width)
    assert fits_unsigned(r.den, cfg.den_width), (cfg, cfg.den_width)
    kbits = hash_codes(cfg, keys[:cfg.N])
    S, z, V, _ = linear_state(cfg, kbits, values[:cfg.N])
    widths = state_widths(cfg.N, cfg.w)
    assert fits_signed(S, widths["S"]) and fits_signed(z, widths["z"])
    assert fits_signed(V, widths["V"])
    for M in (cfg.W_array, cfg.Wq_array):
        for x in (keys, queries, extreme_projection_inputs(cfg, M)):
            y = np.asarray(x, dtype=np.int64) @ M.T        # |y| < 2^41: exact in int64
            assert fits_signed(y, cfg.plan.hash.projection_width), cfg
    assert fits_unsigned(r.hamming(), HammingPlan(cfg.b).width) and r.hamming().max() <= cfg.b
    return r


@pytest.mark.parametrize("seed", range(500, 530), ids=lambda s: f"seed{s}")
def test_derived_widths_hold_random(seed):
    pr = random.Random(seed)
    N = pr.choice([1, 3, 16, 100, 1000])
    cfg = CoreConfig.create(d=pr.choice([1, 4, 16]), w=pr.choice([2, 5, 8, 16]),
                            b=pr.choice([1, 16, 65]), N=N, k=pr.randint(1, N),
                            mode=pr.choice(MODES), g=pr.choice([0.5, 12.0, 64.0]),
                            smax=pr.choice([0, 8, 32]),
                            weights=pr.choice(["random-ternary", "random-sign"]), seed=seed)
    rng = np.random.default_rng(seed)
    n = pr.randint(1, N + 2)
    keys = rng.integers(cfg.vmin, cfg.vmax + 1, (n, cfg.d))
    values = rng.choice(np.array([cfg.vmin, cfg.vmax]), (n, cfg.d))
    check_widths(cfg, keys, values, rng.integers(cfg.vmin, cfg.vmax + 1, (8, cfg.d)))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("extreme", ["vmin", "vmax"])
@pytest.mark.parametrize("w,b,N,smax", [(2, 1, 1, 0), (8, 16, 64, 16), (16, 65, 300, 32),
                                        (16, 8, 4096, 32)],
                         ids=lambda v: str(v))
def test_derived_widths_hold_at_worst_case(mode, extreme, w, b, N, smax):
    """n = N identical keys, the queries equal to them (H = 0: the largest weight on every
    key), every value at one extreme: num and den reach their bounds; every key code bit
    is the same, so S and z reach theirs too."""
    cfg = CoreConfig.create(mode=mode, d=3, w=w, b=b, N=N, k=N, g=64.0, smax=smax,
                            seed=N)
    v = cfg.vmin if extreme == "vmin" else cfg.vmax
    keys = np.full((N, 3), v)
    values = np.full((N, 3), v)
    r = check_widths(cfg, keys, values, keys[:2])
    assert (r.hamming() == 0).all()
    assert int(r.den[0]) == N * cfg.max_weight
    if extreme == "vmin":   # num reaches its bound -(N * max_weight) * 2^(w-1)
        assert int(r.num[0, 0]) == -(N * cfg.max_weight) << (w - 1)


def test_projection_width_is_reached(tmp_path):
    """W of 16-bit entries at d = 1024, w = 16: |y| up to 1024 * 2^15 * 2^15 = 2^40."""
    rng = np.random.default_rng(3)
    W = rng.choice(np.array([-32768, 32767]), (2, 1024))
    cfg = CoreConfig.create(d=1024, w=16, b=2, weights=savez(tmp_path, W=W,
                                                              theta=np.zeros(2, int)))
    x = extreme_projection_inputs(cfg, W)
    y = x @ W.T
    assert fits_signed(y, cfg.plan.hash.projection_width)
    lo, hi = cfg.plan.hash.projection_range(cfg.W)
    assert lo == int(y.min()) and hi == int(y.max())
    assert cfg.weight_width == 16


def test_projection_width_covers_query_hash(tmp_path):
    """Queries with their own, wider hash: projection_width must hold their y as well."""
    rng = np.random.default_rng(4)
    W = rng.integers(-1, 2, (4, 8))
    Wq = rng.choice(np.array([-300, 300]), (4, 8))
    cfg = CoreConfig.create(d=8, b=4, weights=savez(tmp_path, W=W, theta=np.zeros(4, int),
                                                     Wq=Wq, thetaq=np.zeros(4, int)))
    yq = extreme_projection_inputs(cfg, Wq) @ Wq.T
    assert fits_signed(yq, cfg.plan.hash.projection_width)
    assert not fits_signed(yq, cfg.plan.hash.projection_width - 1)
    x = rng.integers(cfg.vmin, cfg.vmax + 1, (30, 8))
    check_widths(cfg, x, x, x)


@pytest.mark.parametrize("N,k", [(1, 1), (4, 4), (8, 8), (64, 8)])
def test_default_k_is_min_8_N(N, k):
    """Without --topk, k = min(8, N): a short window is not refused for a default."""
    assert CoreConfig.create(N=N, mode="topk").k == k
    assert CoreConfig.create(N=64).replace(N=N).k == k
