"""The named test corners: the configs the tests, ``make sweep`` and the same-Verilog check
run, defined once.

Each corner is a dict of :meth:`hamattn.config.CoreConfig.create` keyword arguments (the
mode is left out where a test crosses the corner with :data:`MODES`). ``tests/conftest.py``
hands them to the tests as arguments (``sweep_corner``, ``cocotb_corner``,
``baseline_corner``, ``baseline_sim_corner``); tests that cross several tables import them by
absolute name (``from hamattn.verif.corners import SWEEP``; pytest runs with
``--import-mode=importlib``, under which a ``conftest.py`` cannot be imported by name); and
``ci/same_verilog.py`` hashes :data:`CORNER`, :data:`CORNER_W16` and :data:`SWEEP`.

* :data:`CORNER`, :data:`CORNER_W16`, :data:`SWEEP` (:func:`corner_id` names them): the
  whole-core cocotb corners (``tests/test_cocotb.py``; ``make sweep`` runs :data:`SWEEP`).
* :data:`VALUE_PATH_CORNERS`, :data:`VALUE_PATH_KEY_CORNERS`, :data:`VALUE_PATH_ROW_CORNERS`,
  :data:`HEAP_CORNERS`: the value-path blocks (``tests/test_value_paths.py``).
* :data:`CORE_CORNERS`, :data:`CORE_KEY_CORNERS`, :data:`CORE_ROW_CORNERS`: the core in the
  Amaranth simulator (``tests/test_core.py``).
* :data:`BASELINE_CORNERS`, :data:`BASELINE_SIM_CORNERS`: the baselines' golden models and
  RTL (``tests/test_baselines.py``).

This module imports nothing (the same-Verilog check runs without the package's code).
"""

__all__ = ["MODES", "CORNER", "CORNER_W16", "SWEEP", "corner_id", "VALUE_PATH_CORNERS",
           "VALUE_PATH_KEY_CORNERS", "VALUE_PATH_ROW_CORNERS", "HEAP_CORNERS", "CORE_CORNERS",
           "CORE_KEY_CORNERS", "CORE_ROW_CORNERS",
           "BASELINE_CORNERS", "BASELINE_SIM_CORNERS"]

#: the value-path modes, in the order the tests cross them with a corner
MODES = ["linear", "topk", "hsoftmax"]

# ------------------------------------------------------------------ make test / make sweep

def in_quick_suite(*position):
    """Whether a case of a cross product runs in ``make test`` (the others are marked
    ``slow``: ``make sweep`` runs them): its index along each axis summed is even. Along an
    axis of two values (two adder kinds, two language modes) they alternate, so each corner
    runs once and each value on half of the corners; the tests that use it say which axes."""
    return sum(position) % 2 == 0


# ------------------------------------------------------------------ whole core (cocotb)

# b > 64 and not a multiple of 8, d = 1, w = 2 or 16, N = 1
CORNER = dict(d=1, w=2, b=70, N=1, mode="topk", k=1)
CORNER_W16 = dict(d=3, w=16, b=65, N=5, mode="hsoftmax")


def corner_id(p):
    """The test id of a whole-core corner: ``b65-d16-w8-N5-linear-P5``, ``...-P4-M2``."""
    s = f"b{p['b']}-d{p['d']}-w{p['w']}-N{p['N']}-{p['mode']}"
    s += f"-k{p['k']}" if p["mode"] == "topk" else ""
    s += f"-P{p['lanes']}" if "lanes" in p else ""
    return s + (f"-M{p['keys_per_cycle']}" if "keys_per_cycle" in p else "")


#: every named corner value at least once: b in {1, 7, 65, 130}, d in {1, 3, 16},
#: w in {2, 8, 16}, N in {1, 5, 64}, k in {1, N}, each mode. (linear with b = 130 and
#: d = 16 is left out: its 3 MB of Verilog (b·d accumulators, b-term read-out trees) takes
#: Verilator over half an hour to convert on a 2-core machine)
SWEEP = [
    dict(b=1, d=1, w=2, N=1, mode="linear", k=1),
    dict(b=1, d=3, w=8, N=5, mode="topk", k=1),
    dict(b=1, d=16, w=16, N=64, mode="hsoftmax", k=8),
    dict(b=7, d=1, w=16, N=5, mode="topk", k=5),
    dict(b=7, d=3, w=2, N=64, mode="linear", k=8),
    dict(b=7, d=16, w=8, N=1, mode="hsoftmax", k=1),
    dict(b=65, d=1, w=8, N=64, mode="topk", k=64),
    dict(b=65, d=3, w=16, N=1, mode="linear", k=1),
    dict(b=65, d=16, w=2, N=5, mode="hsoftmax", k=5),
    dict(b=130, d=1, w=8, N=5, mode="hsoftmax", k=5),
    dict(b=130, d=3, w=2, N=64, mode="topk", k=1),
    dict(b=130, d=1, w=16, N=5, mode="linear", k=5),
    dict(b=130, d=16, w=16, N=5, mode="hsoftmax", k=5),
    dict(b=130, d=16, w=8, N=1, mode="topk", k=1),
    # folded (issue 8): lanes = 1, divisors and non-divisors of d
    dict(b=7, d=16, w=8, N=64, mode="linear", k=8, lanes=1),
    dict(b=65, d=16, w=8, N=5, mode="linear", k=5, lanes=5),
    dict(b=16, d=16, w=8, N=64, mode="topk", k=8, lanes=4),
    dict(b=7, d=3, w=16, N=5, mode="hsoftmax", k=5, lanes=2),
    dict(b=1, d=3, w=2, N=1, mode="topk", k=1, lanes=1),
    # M keys per cycle (issue 16): M = 2, M dividing neither N nor most n, M = N; folded
    dict(b=16, d=16, w=8, N=64, mode="topk", k=8, lanes=4, keys_per_cycle=2),
    dict(b=65, d=3, w=16, N=5, mode="topk", k=5, keys_per_cycle=5),
    dict(b=1, d=3, w=2, N=9, mode="topk", k=2, lanes=2, keys_per_cycle=4),
    dict(b=7, d=16, w=8, N=64, mode="hsoftmax", k=8, lanes=5, keys_per_cycle=7),
    dict(b=130, d=3, w=8, N=10, mode="hsoftmax", k=1, lanes=1, keys_per_cycle=10),
    dict(b=16, d=4, w=16, N=12, mode="hsoftmax", k=4, keys_per_cycle=2),
]

# ------------------------------------------------------------------------ value paths

# named corners of issue 3: b = 1, 7, 64, 65; d = 1, 3, 16; w = 2, 8, 16; N = 1, 5, 64;
# k = 1 and k = N
VALUE_PATH_CORNERS = {
    "b1_d1_w2_N1": dict(b=1, d=1, w=2, N=1, k=1),
    "b7_d3_w8_N5_k1": dict(b=7, d=3, w=8, N=5, k=1),
    "b7_d3_w8_N5_kN": dict(b=7, d=3, w=8, N=5, k=5),
    "b64_d3_w16_N5": dict(b=64, d=3, w=16, N=5, k=2),
    "b65_d1_w8_N5": dict(b=65, d=1, w=8, N=5, k=3),
    "b7_d16_w8_N64": dict(b=7, d=16, w=8, N=64, k=8),
    # folded (issue 8): lanes = 1, a divisor of d, a non-divisor of d
    "b7_d3_w8_N5_k1_P1": dict(b=7, d=3, w=8, N=5, k=1, lanes=1),
    "b65_d3_w16_N5_P2": dict(b=65, d=3, w=16, N=5, k=2, lanes=2),
    "b7_d16_w8_N20_P4": dict(b=7, d=16, w=8, N=20, k=8, lanes=4),
    "b16_d16_w8_N9_P5": dict(b=16, d=16, w=8, N=9, k=9, lanes=5),
    "b3_d5_w2_N3_P1": dict(b=3, d=5, w=2, N=3, k=1, lanes=1),
}
# M keys per cycle (--keys-per-cycle, topk and hsoftmax; issue 16): M = 2, an M that divides
# neither N nor most n, M = N; unfolded and folded (P = 1, a divisor, a non-divisor of d)
VALUE_PATH_KEY_CORNERS = {
    "b7_d3_w8_N5_k2_M2": dict(b=7, d=3, w=8, N=5, k=2, keys_per_cycle=2),
    "b16_d16_w8_N9_k4_P5_M4": dict(b=16, d=16, w=8, N=9, k=4, lanes=5, keys_per_cycle=4),
    "b65_d4_w16_N7_k3_P2_M3": dict(b=65, d=4, w=16, N=7, k=3, lanes=2, keys_per_cycle=3),
    "b7_d3_w8_N5_kN_P2_MN": dict(b=7, d=3, w=8, N=5, k=5, lanes=2, keys_per_cycle=5),
    "b3_d5_w2_N6_k1_P1_MN": dict(b=3, d=5, w=2, N=6, k=1, lanes=1, keys_per_cycle=6),
}
# the linear path folding its rows too (--rows): a divisor of b, a non-divisor, one row
VALUE_PATH_ROW_CORNERS = {
    "b8_d4_w8_N6_P2_T4": dict(b=8, d=4, w=8, N=6, lanes=2, rows=4),
    "b7_d3_w8_N5_P1_T3": dict(b=7, d=3, w=8, N=5, lanes=1, rows=3),
    "b5_d5_w4_N4_P2_T1": dict(b=5, d=5, w=4, N=4, lanes=2, rows=1),
    "b65_d3_w16_N5_P2_T16": dict(b=65, d=3, w=16, N=5, lanes=2, rows=16),
}
# the linear read-out trees as bit heaps (--adders lut6/lut4): b = 1, 64, 65; w = 2, 16;
# N = 1, 64; unfolded, folded and row-folded
HEAP_CORNERS = ["b1_d1_w2_N1", "b64_d3_w16_N5", "b65_d1_w8_N5", "b7_d16_w8_N64",
                "b65_d3_w16_N5_P2", "b16_d16_w8_N9_P5", "b7_d3_w8_N5_P1_T3",
                "b65_d3_w16_N5_P2_T16"]

# ------------------------------------------------------------- core (Amaranth simulator)

CORE_CORNERS = {
    "b1_d1_w2_N1": dict(b=1, d=1, w=2, N=1, k=1),
    "b7_d3_w8_N5_k1": dict(b=7, d=3, w=8, N=5, k=1),
    "b65_d3_w16_N5_kN": dict(b=65, d=3, w=16, N=5, k=5),
    "b16_d4_w8_N16": dict(b=16, d=4, w=8, N=16, k=4),
    # folded (issue 8): lanes = 1, a divisor of d, a non-divisor of d
    "b7_d3_w8_N5_k1_P1": dict(b=7, d=3, w=8, N=5, k=1, lanes=1),
    "b16_d4_w8_N16_P2": dict(b=16, d=4, w=8, N=16, k=4, lanes=2),
    "b65_d5_w16_N5_P2": dict(b=65, d=5, w=16, N=5, k=5, lanes=2),
}
# M keys per cycle (topk, hsoftmax): M = 2, M = 4 dividing neither N = 11 nor most n with
# P = 3 (a non-divisor of d), M = N with P = 1
CORE_KEY_CORNERS = {
    "b7_d3_w8_N5_k2_M2": dict(b=7, d=3, w=8, N=5, k=2, keys_per_cycle=2),
    "b16_d4_w8_N11_k4_P3_M4": dict(b=16, d=4, w=8, N=11, k=4, lanes=3, keys_per_cycle=4),
    "b7_d3_w8_N5_kN_P1_MN": dict(b=7, d=3, w=8, N=5, k=5, lanes=1, keys_per_cycle=5),
}
# linear folding its rows too (--rows): a divisor and a non-divisor of b
CORE_ROW_CORNERS = {
    "b16_d4_w8_N16_P2_T4": dict(b=16, d=4, w=8, N=16, k=4, lanes=2, rows=4),
    "b7_d3_w8_N5_k1_P1_T3": dict(b=7, d=3, w=8, N=5, k=1, lanes=1, rows=3),
    # (a digit ROM of 20 bits per (group, block): read in step, two pieces, rom_regs = 2)
    "b12_d6_w8_N10_P2_T5": dict(b=12, d=6, w=8, N=10, lanes=2, rows=5),
}

# -------------------------------------------------------------------------- baselines

BASELINE_CORNERS = {
    "d1": dict(d=1, w=8, b=4, N=6),
    "w2": dict(d=3, w=2, b=5, N=6),
    "w16": dict(d=3, w=16, b=5, N=6),
    "N1": dict(d=4, w=8, b=5, N=1, k=1),
    "d1_w2_b1_N1": dict(d=1, w=2, b=1, N=1, k=1),
}
BASELINE_SIM_CORNERS = {
    "b1_d1_w2_N1": dict(b=1, d=1, w=2, N=1, k=1),
    "b7_d3_w8_N5": dict(b=7, d=3, w=8, N=5, k=2),
    "b5_d2_w16_N4": dict(b=5, d=2, w=16, N=4, k=2),
    "b16_d4_w8_N12": dict(b=16, d=4, w=8, N=12, k=4),
}
