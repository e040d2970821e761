"""topk's cut (the histogram selection's walk, rtl/scan.py): windows whose min(k, n)-th
nearest key is at each distance 0..b in turn, with ties across it, against the golden model.
Random codes rarely put the cut at the last bins (distances near b); the walk decides the
last word without a compare of its own being found (R = 1) or with one choosing between its
two bins (R = 2), so each bin, the last ones included, is the cut here."""

from types import SimpleNamespace

import numpy as np
import pytest

from hamattn import CoreConfig
from hamattn.golden.model import _weighted_sums, pack_codes
from hamattn.verif.valuepath_cases import check_value_path

# (config, R = plan.hist_bins, r = plan.hist_reg, w = plan.walk_reg): b + 1 even and odd,
# M = 1 and M = 2
# (S = 1), folded (histogram selection); the histograms' flags looked up in one step
# (r = 0) or two around a register (r = 1, where the counts' read-modify-write takes two
# cycles, its forwarding exercised by the ties); G a power of two (the value memory's read
# address without a counter) or not; the walk's reads into the adders straight (w = 0) or
# through a register (w = 1)
CONFIGS = [(dict(d=3, w=8, b=7, N=6, k=3, lanes=1), 2, 0, 0),
           (dict(d=3, w=8, b=8, N=6, k=3, lanes=1), 2, 0, 1),
           (dict(d=4, w=8, b=7, N=6, k=3, lanes=1, keys_per_cycle=2), 2, 1, 1),
           (dict(d=8, w=8, b=7, N=8, k=3, lanes=1), 1, 1, 1),
           (dict(d=8, w=8, b=6, N=8, k=3, lanes=1, keys_per_cycle=2), 1, 1, 1),
           (dict(d=8, w=8, b=9, N=8, k=4, lanes=2, keys_per_cycle=2), 2, 1, 1)]


def _code(distance, b, rng):
    """A b-bit code at ``distance`` from the all-zero query: that many bits set."""
    bits = np.zeros(b, dtype=np.uint8)
    bits[rng.choice(b, distance, replace=False)] = 1
    return bits


def _case(cfg, rng):
    """Per cut bin h in 0..b a window of one query (code 0) and keys at distances h - 1
    (where h > 0), h three times and b (k = 3: the third nearest is at h, one or two of
    the ties kept), then one with every key at b; in a random order."""
    b, d, P, G = cfg.b, cfg.d, cfg.lanes, cfg.groups
    tokens, groups, expected, wins = [], [], [], []
    layouts = [[h - 1] * (h > 0) + [h] * 3 + [b] for h in range(b + 1)] + [[b] * 4]
    for dists in layouts:
        dists = rng.permutation(dists)[:cfg.N]
        kbits = np.array([_code(int(x), b, rng) for x in dists])
        qbits = np.zeros((1, b), dtype=np.uint8)
        values = rng.integers(-(1 << (cfg.w - 1)), 1 << (cfg.w - 1), size=(len(dists), d))
        num, den = _weighted_sums(cfg, pack_codes(qbits), pack_codes(kbits), values)
        for j, (bits, v) in enumerate(zip(kbits, values)):
            tokens.append({"code": sum(int(x) << t for t, x in enumerate(bits)), "key": 1,
                           "first": int(j == 0), "tag": {"last": 0, "user": 0}})
            padded = [int(x) for x in v] + [0] * (G * P - d)
            groups += [padded[g * P:(g + 1) * P] for g in range(G)]
        tokens.append({"code": 0, "key": 0, "first": 0, "tag": {"last": 1, "user": 0}})
        expected.append((tuple(int(x) for x in num[0]), int(den[0]), 1))
        wins.append(SimpleNamespace(keys=kbits, queries=qbits))
    return tokens, groups, expected, wins, None


@pytest.mark.parametrize("params, R, r, w", CONFIGS, ids=lambda p: "-".join(
    f"{k}{v}" for k, v in p.items()) if isinstance(p, dict) else str(p))
@pytest.mark.parametrize("pattern", ["full_rate", "random_handshake"])
def test_cut_at_every_bin(params, R, r, w, pattern):
    cfg = CoreConfig.create(mode="topk", **params)
    plan = cfg.plan.value
    assert (plan.selection, plan.hist_bins, plan.hist_reg, plan.walk_reg) == \
        ("histogram", R, r, w)
    seed = params["b"] + 10 * params.get("keys_per_cycle", 1)
    rng = np.random.default_rng(seed)
    check_value_path(cfg, plan.component(), seed, pattern=pattern, case=_case(cfg, rng))
