"""Stimulus and expectations shared by every testbench (Amaranth simulator and cocotb).

A test is a list of :class:`Window` (keys, values, queries). The golden model turns it into
the expected output beats; :func:`check_beats` and :func:`check_timing` compare what a
simulator observed. Nothing here knows about a simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import golden

__all__ = ["Window", "Beat", "random_windows", "expected_beats", "kv_stream", "q_stream",
           "pack_vector", "unpack_vector", "check_beats", "check_timing", "check_q_interval",
           "check_kv_interval", "Observed"]


@dataclass
class Window:
    keys: np.ndarray
    values: np.ndarray
    queries: np.ndarray

    @property
    def n_keys(self):
        return len(self.keys)


@dataclass(frozen=True)
class Beat:
    data: tuple
    last: int
    user: int
    n_used: int      # used keys of its window (for the n-dependent latency)


def pack_vector(vec, w):
    """d signed integers -> one unsigned int, element e in bits [e·w + w-1 : e·w]."""
    mask = (1 << w) - 1
    x = 0
    for e, v in enumerate(vec):
        x |= (int(v) & mask) << (e * w)
    return x


def unpack_vector(x, d, w):
    mask = (1 << w) - 1
    out = []
    for e in range(d):
        v = (int(x) >> (e * w)) & mask
        out.append(v - (1 << w) if v >> (w - 1) else v)
    return tuple(out)


def random_windows(cfg, rng, count, *, n_keys=None, n_queries=(1, 4), extreme=False):
    """``count`` windows of random w-bit data. ``n_keys``: an int, a (lo, hi) range
    (inclusive) or None for 1..N. ``extreme``: every element at -2^(w-1) or 2^(w-1)-1."""
    wins = []
    for _ in range(count):
        if n_keys is None:
            nk = int(rng.integers(1, cfg.N + 1))
        elif isinstance(n_keys, int):
            nk = n_keys
        else:
            nk = int(rng.integers(n_keys[0], n_keys[1] + 1))
        nq = n_queries if isinstance(n_queries, int) else \
            int(rng.integers(n_queries[0], n_queries[1] + 1))

        def draw(n):
            if extreme:
                return np.where(rng.integers(0, 2, (n, cfg.d)) == 1, cfg.vmax, cfg.vmin)
            return rng.integers(cfg.vmin, cfg.vmax + 1, (n, cfg.d))
        wins.append(Window(draw(nk), draw(nk), draw(nq)))
    return wins


def expected_beats(cfg, windows, model=None):
    """The output beats the core must emit, in order, from the golden model. ``model``:
    another model with the signature and result fields (``out``, ``overflow``, ``n_keys``)
    of :func:`golden.run`, e.g. a baseline's (default: :func:`golden.run`)."""
    model = golden.run if model is None else model
    beats = []
    for win in windows:
        r = model(cfg, win.keys, win.values, win.queries)
        for i, row in enumerate(r.out):
            beats.append(Beat(tuple(int(x) for x in row), int(i == len(r.out) - 1),
                              int(r.overflow), r.n_keys))
    return beats


def kv_stream(cfg, windows):
    """(tdata, tlast) of every key beat, window after window."""
    dw = cfg.d * cfg.w
    return [(pack_vector(k, cfg.w) | (pack_vector(v, cfg.w) << dw), int(j == win.n_keys - 1))
            for win in windows for j, (k, v) in enumerate(zip(win.keys, win.values))]


def q_stream(cfg, windows):
    """(tdata, tlast) of every query beat, window after window."""
    return [(pack_vector(q, cfg.w), int(i == len(win.queries) - 1))
            for win in windows for i, q in enumerate(win.queries)]


@dataclass
class Observed:
    """What a monitor saw: the transfer cycle of every beat on each channel, the output
    beats, and every cycle on which ``m_out_tvalid`` was high."""
    kv_cycles: list
    q_cycles: list
    out_cycles: list
    out_beats: list          # (data tuple, last, user)
    out_valid_cycles: list


def check_beats(cfg, windows, obs, model=None):
    """Every expected beat, once, in order, exact; and no beat accepted against the window
    protocol (a query before its window's last key, a key before the previous window's last
    query). Raises AssertionError with the first difference. ``model``: as in
    :func:`expected_beats`."""
    exp = expected_beats(cfg, windows, model)
    assert len(obs.out_beats) == len(exp), \
        f"{len(obs.out_beats)} output beats, expected {len(exp)}"
    for i, (got, want) in enumerate(zip(obs.out_beats, exp)):
        assert got == (want.data, want.last, want.user), \
            f"output beat {i}: got {got}, expected {(want.data, want.last, want.user)}"
    kv_i = q_i = 0
    for w_i, win in enumerate(windows):
        last_key = obs.kv_cycles[kv_i + win.n_keys - 1]
        first_q = obs.q_cycles[q_i]
        assert first_q > last_key, f"window {w_i}: a query accepted at cycle {first_q}, " \
            f"before the last key at cycle {last_key}"
        kv_i += win.n_keys
        q_i += len(win.queries)
        if kv_i < len(obs.kv_cycles):
            assert obs.kv_cycles[kv_i] > obs.q_cycles[q_i - 1], \
                f"window {w_i + 1}: a key accepted before window {w_i}'s last query"
    return exp


def check_timing(cfg, windows, obs):
    """With ``m_out_tready`` always high: every output transfers exactly ``latency`` edges
    after its query, ``m_out_tvalid`` is low on every other cycle, and, where the query
    source never paused, queries of a window were accepted ``q_interval`` edges apart."""
    exp = expected_beats(cfg, windows)
    want_out = []
    for qc, beat in zip(obs.q_cycles, exp):
        want_out.append(qc + cfg.at(cfg.latency, beat.n_used))
    assert obs.out_cycles == want_out, \
        f"output transfer cycles {obs.out_cycles[:8]}..., expected {want_out[:8]}... " \
        f"(latency {cfg.latency})"
    assert obs.out_valid_cycles == obs.out_cycles, \
        "m_out_tvalid was high on a cycle with no expected output"
    return want_out


def check_kv_interval(cfg, windows, obs):
    """Keys of one window offered back to back were accepted exactly kv_interval apart."""
    kv_i = 0
    gap = cfg.at(cfg.kv_interval, 0)
    for w_i, win in enumerate(windows):
        cyc = obs.kv_cycles[kv_i:kv_i + win.n_keys]
        for a, b_ in zip(cyc, cyc[1:]):
            assert b_ - a == gap, \
                f"window {w_i}: keys accepted {b_ - a} cycles apart, expected {gap}"
        kv_i += win.n_keys


def check_q_interval(cfg, windows, obs):
    """Queries of one window offered back to back were accepted exactly q_interval apart."""
    q_i = 0
    for win in windows:
        n = min(win.n_keys, cfg.N)
        gap = cfg.at(cfg.q_interval, n)
        cyc = obs.q_cycles[q_i:q_i + len(win.queries)]
        for a, b_ in zip(cyc, cyc[1:]):
            assert b_ - a == gap, f"queries accepted {b_ - a} cycles apart, expected {gap}"
        q_i += len(win.queries)
