"""Token streams for the value-path components, and their golden (num, den)."""

import numpy as np

from .. import golden
from ..rtl import layouts
from .scenario import random_windows
from .streams import run_stream

__all__ = ["value_path_case", "check_value_path"]


def _as_int(bits):
    return sum(int(x) << t for t, x in enumerate(bits))


def value_path_case(cfg, seed, windows=3, n_queries=(1, 3), extreme=False, n_keys=None):
    """(tokens, groups, expected, windows, writes) for ``windows`` seeded windows of at most
    N keys: tokens are the payloads of the path's ``i`` in window order, groups (folded
    configs only, else empty) the keys' values as G payloads of :func:`layouts.group` each,
    expected the golden (num, den, last) of every query, writes (a path with
    ``direct_values``, else None) beside each token None or its key's value for port ``w``
    (written as the token transfers). ``n_keys``: as for :func:`random_windows`
    (None: 1..N)."""
    rng = np.random.default_rng(seed)
    wins = random_windows(cfg, rng, windows, n_keys=n_keys or (1, cfg.N), n_queries=n_queries,
                          extreme=extreme)
    tokens, groups, expected, writes = [], [], [], []
    P, G = cfg.lanes, cfg.groups
    direct = getattr(cfg.plan.value, "direct_values", False)
    for win in wins:
        r = golden.run(cfg, win.keys, win.values, win.queries)
        kbits = golden.hash_codes(cfg, win.keys)
        qbits = golden.hash_codes(cfg, win.queries, query=True)
        for j, (bits, v) in enumerate(zip(kbits, win.values)):
            tok = {"code": _as_int(bits), "key": 1, "first": int(j == 0),
                   "tag": {"last": 0, "user": 0}}
            vals = [int(x) for x in v]
            if cfg.folded:
                padded = vals + [0] * (G * P - cfg.d)
                groups += [padded[g * P:(g + 1) * P] for g in range(G)]
            elif direct:
                writes.append({"value": vals, "restart": int(j == 0)})
            else:
                tok["value"] = vals
            tokens.append(tok)
        for i, bits in enumerate(qbits):
            last = int(i == len(qbits) - 1)
            tok = {"code": _as_int(bits), "key": 0, "first": 0, "tag": {"last": last, "user": 0}}
            if direct:
                writes.append(None)
            elif not cfg.folded:
                tok["value"] = [0] * cfg.d
            tokens.append(tok)
            expected.append((tuple(int(x) for x in r.num[i]), int(r.den[i]), last))
    return tokens, groups, expected, wins, (writes if direct else None)


def check_value_path(cfg, dut, seed, windows=3, pattern="full_rate", case=None):
    """Run ``dut`` (the value path of ``cfg``'s plan) on :func:`value_path_case` windows
    (or on ``case``, such a tuple made by the caller) under ``pattern`` (``full_rate`` with
    extreme values, or ``random_handshake``) and assert its (num, den, tag) against the
    golden model's; at full rate also its latency per query, the interval between a
    window's queries and one key per ``plan.key_interval`` cycles (a linear path: its fixed
    latency and interval). Returns the run: ``in_cycles`` per token, ``out_cycles`` per
    query."""
    mode = cfg.mode
    tokens, groups, expected, wins, writes = case or value_path_case(
        cfg, seed, windows=windows, extreme=pattern == "full_rate")
    p = (1.0, 1.0) if pattern == "full_rate" else (0.6, 0.4)
    # a folded path gives one beat per group (P nums, den, last on group G-1)
    G = cfg.groups if layouts.grouped(cfg) else 1
    if G > 1:
        def convert(c):
            return (tuple(int(c.num[q]) for q in range(cfg.lanes)), int(c.den),
                    int(c.tag.last), int(c.last))
    else:
        def convert(c):
            return (tuple(int(c.num[e]) for e in range(cfg.d)), int(c.den), int(c.tag.last))
    run = run_stream(dut, tokens, n_out=G * len(expected), seed=seed, p_in=p[0], p_out=p[1],
                     max_cycles=200 + 20 * len(tokens) * (cfg.N + cfg.b + 20),
                     convert=convert, side=groups, writes=writes)
    if G > 1:
        beats = run.outputs
        assert [b[3] for b in beats] == ([0] * (G - 1) + [1]) * len(expected)
        outputs = []
        for i in range(0, len(beats), G):
            query = beats[i:i + G]
            assert len({b[1:3] for b in query}) == 1, "den and tag differ within a query"
            nums = tuple(x for b in query for x in b[0])
            assert not any(nums[cfg.d:]), "a lane past d is not 0"
            outputs.append((nums[:cfg.d], query[-1][1], query[-1][2]))
        run.outputs, run.out_cycles = outputs, run.out_cycles[G - 1::G]
    assert run.outputs == expected, f"seed {seed}"
    if pattern == "full_rate" and mode == "linear":
        q_in = [c for c, t in zip(run.in_cycles, tokens) if not t["key"]]
        # the plan counts from the first cycle a token is offered: at full rate, G·R - 1
        # cycles before it transfers (a folded path reads its G·R words first)
        GR = cfg.plan.value.state_steps
        assert [o - i for i, o in zip(q_in, run.out_cycles)] == \
            [dut.latency.fixed - (GR - 1)] * len(q_in)
        assert dut.latency == cfg.plan.value.latency and dut.latency.per_key == 0
        steps = {c1 - c0 for c0, c1 in zip(run.in_cycles, run.in_cycles[1:])}
        assert steps == {GR} == {cfg.plan.value.interval.fixed}   # one token per G·R cycles
    if pattern == "full_rate" and mode != "linear":
        # latency A + C·n with n the keys of the query's window; a query that follows one
        # of its window waits for the path to return to idle: engine_interval
        q_in = [c for c, t in zip(run.in_cycles, tokens) if not t["key"]]
        ns = [len(win.keys) for win in wins for _ in win.queries]
        assert [o - i for i, o in zip(q_in, run.out_cycles)] == \
            [dut.latency.at(n, cfg.k) for n in ns]
        firsts = {0} | set(np.cumsum([len(win.queries) for win in wins])[:-1].tolist())
        assert [b - a for i, (a, b) in enumerate(zip(q_in, q_in[1:])) if i + 1 not in firsts] \
            == [dut.plan.interval.at(n, cfg.k) for i, n in enumerate(ns[1:])
                if i + 1 not in firsts]
        steps = zip(run.in_cycles, run.in_cycles[1:], tokens, tokens[1:])
        key_steps = {c1 - c0 for c0, c1, t0, t1 in steps if t0["key"] and t1["key"]}
        assert key_steps <= {dut.plan.key_interval.fixed}   # one key per G cycles
    return run
