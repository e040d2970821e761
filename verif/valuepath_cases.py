"""Token streams for the value-path components, and their golden (num, den)."""

import numpy as np

from .. import golden
from .scenario import random_windows

__all__ = ["value_path_case"]


def _as_int(bits):
    return sum(int(x) << t for t, x in enumerate(bits))


def value_path_case(cfg, seed, windows=3, n_queries=(1, 3), extreme=False):
    """(tokens, expected) for ``windows`` seeded windows of at most N keys: tokens are the
    payloads of :func:`layouts.token` in window order, expected the golden (num, den, last)
    of every query."""
    rng = np.random.default_rng(seed)
    wins = random_windows(cfg, rng, windows, n_keys=(1, cfg.N), n_queries=n_queries,
                          extreme=extreme)
    tokens, expected = [], []
    for win in wins:
        r = golden.run(cfg, win.keys, win.values, win.queries)
        kbits = golden.hash_codes(cfg, win.keys)
        qbits = golden.hash_codes(cfg, win.queries, query=True)
        for j, (bits, v) in enumerate(zip(kbits, win.values)):
            tokens.append({"code": _as_int(bits), "key": 1, "first": int(j == 0),
                           "value": [int(x) for x in v], "tag": {"last": 0, "user": 0}})
        for i, bits in enumerate(qbits):
            last = int(i == len(qbits) - 1)
            tokens.append({"code": _as_int(bits), "key": 0, "first": 0,
                           "value": [0] * cfg.d, "tag": {"last": last, "user": 0}})
            expected.append((tuple(int(x) for x in r.num[i]), int(r.den[i]), last))
    return tokens, expected, wins
