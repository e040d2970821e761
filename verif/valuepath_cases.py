"""Token streams for the value-path components, and their golden (num, den)."""

import numpy as np

from .. import golden
from .scenario import random_windows

__all__ = ["value_path_case"]


def _as_int(bits):
    return sum(int(x) << t for t, x in enumerate(bits))


def value_path_case(cfg, seed, windows=3, n_queries=(1, 3), extreme=False, n_keys=None):
    """(tokens, groups, expected, windows) for ``windows`` seeded windows of at most N keys:
    tokens are the payloads of :func:`layouts.token` in window order, groups (folded configs
    only, else empty) the keys' values as G payloads of :func:`layouts.group` each, expected
    the golden (num, den, last) of every query. ``n_keys``: as for :func:`random_windows`
    (None: 1..N)."""
    rng = np.random.default_rng(seed)
    wins = random_windows(cfg, rng, windows, n_keys=n_keys or (1, cfg.N), n_queries=n_queries,
                          extreme=extreme)
    tokens, groups, expected = [], [], []
    P, G = cfg.lanes, cfg.groups
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
            else:
                tok["value"] = vals
            tokens.append(tok)
        for i, bits in enumerate(qbits):
            last = int(i == len(qbits) - 1)
            tok = {"code": _as_int(bits), "key": 0, "first": 0, "tag": {"last": last, "user": 0}}
            if not cfg.folded:
                tok["value"] = [0] * cfg.d
            tokens.append(tok)
            expected.append((tuple(int(x) for x in r.num[i]), int(r.den[i]), last))
    return tokens, groups, expected, wins
