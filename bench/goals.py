"""Issue 8's goal configs on real boards, the folding and keys per cycle that serve each
best, and how they compare with one CPU thread (issue 16).

For every goal (a board and a config) a grid of candidates, ``--lanes`` P, ``--keys-per-cycle``
M (``topk``, ``hsoftmax``) and, for ``linear``, ``--rows`` T, is searched; the promising ones are
built with :func:`hamattn.synth.board.build_board` (the board top around the core, synthesis,
placement, routing and the bitstream; ~20 min on the ECP5). The best candidate is the one that
fits the device with the most tokens per second at its own Fmax, a token being one key and
one query of a window of N keys, as in self-attention (``Fmax / (kv_interval +
q_interval(N))``).

The search (:func:`search`), per goal:

1. every candidate's cycles per token, exact from its config (no tool runs);
2. candidates from the fewest cycles per token (ties: the smaller design first);
3. a candidate whose P, M and T are each at least those of one predicted not to fit is
   skipped unestimated (area grows with each);
4. the others are **estimated**: a synthesis-only run of the core (``hamattn synth
   --target <board's fabric>``, no place and route, minutes instead of tens) gives its
   LUT-level cell estimate, scaled by a **calibration** ratio (placed board cells / estimate)
   fitted on the built candidates of *other* goals on the same board (1.0 where there are
   none); a prediction above the device's cells by more than :data:`SLACK` is not built;
5. the rest are built in that order until a build fits; after it only candidates within
   :data:`FMAX_SPREAD` of its cycles per token (a higher Fmax could still win) are built,
   at most ``--max-builds`` per goal.

What is fitted (the calibration), what choices are made on (estimates, predictions,
decisions: ``bench/results/goals/search.json``) and what is reported (the built candidates'
own placed cells and Fmax: ``goals.json``, ``goals.md``) are kept apart; no row of the
summary comes from an estimate.

The CPU column: one thread (OpenBLAS/OMP/MKL threads set to 1 in a subprocess) running NumPy
exact softmax attention in float32, Q·Kᵀ, softmax, P·V for N queries over N keys of the goal's
d (:func:`cpu_tokens_per_s`), timed in the same run on the machine running the bench, so the
ratio ``vs_cpu`` holds wherever it runs.

Writes one JSON per built candidate to ``bench/results/goals/``, the search log to
``bench/results/goals/search.json`` and the summary, with the best of every goal, to
``bench/results/goals.json`` and ``goals.md``::

    python -m hamattn.bench.goals                      # every goal (hours)
    python -m hamattn.bench.goals --only icebreaker    # goals whose name contains this
    python -m hamattn.bench.goals --reuse              # keep candidate JSONs of the same RTL
    python -m hamattn.bench.goals --summary-only       # only rewrite the summary
    python -m hamattn.bench.goals --candidate ulx3s-topk-P8-M10   # build one, no search

``make bench-goals`` runs the first form.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import CoreConfig
from ..errors import UserError
from ..synth.board import build_board
from ..synth.nextpnr import utilisation_table
from .builds import build_key as _build_key, commit as _commit
from ..process import stoppable

RESULTS = Path(__file__).resolve().parent / "results"
CAND_DIR = RESULTS / "goals"

ICE = dict(d=32, w=8, b=32, N=256)
ECP = dict(d=64, w=8, b=64, N=1024)

#: name -> (board, config, candidate grid: each parameter's values). The iCEBreaker scan
#: modes use the ``lut4`` popcount tree (``--popcount lut4``): on the iCE40's LUT4s the
#: default ``lut6`` tree's 6-input counters take 5 LUT levels between registers, ``lut4``
#: at most 2 per stage (one edge more of latency, about the same LUTs; issue 17, branch
#: ``scn``). On the ECP5 both trees map to 4 levels, so the ULX3S goals keep the default.
GOALS = {
    "icebreaker-topk": ("icebreaker", dict(ICE, mode="topk", popcount="lut4"),
                        {"lanes": (1, 2, 4), "keys_per_cycle": (1, 2, 4, 8, 16)}),
    "icebreaker-linear": ("icebreaker", dict(ICE, mode="linear"),
                          {"lanes": (1,), "rows": (4, 8, 16)}),
    "icebreaker-hsoftmax": ("icebreaker", dict(ICE, mode="hsoftmax", popcount="lut4"),
                            {"lanes": (1, 2, 4), "keys_per_cycle": (1, 2, 4, 8)}),
    "ulx3s-linear": ("ulx3s", dict(ECP, mode="linear"),
                     {"lanes": (1, 2), "rows": (32, 64)}),
    "ulx3s-topk": ("ulx3s", dict(ECP, mode="topk"),
                   {"lanes": (4, 8, 16), "keys_per_cycle": (1, 4, 8, 10, 12, 16, 32)}),
    "ulx3s-hsoftmax": ("ulx3s", dict(ECP, mode="hsoftmax"),
                       {"lanes": (4, 8, 16), "keys_per_cycle": (1, 4, 6, 7, 8, 16)}),
}

#: a prediction up to this fraction above the device's cells is still built (the estimate
#: is not the placed count)
SLACK = 0.10
#: after a build fits, candidates needing up to this factor more cycles per token are built
#: too: a higher Fmax could still make them faster
FMAX_SPREAD = 1.5
#: builds per goal at most (``--max-builds``)
MAX_BUILDS = 3
#: the order of the grid's parameters in a candidate's name
_SHORT = (("lanes", "P"), ("keys_per_cycle", "M"), ("rows", "T"))


def folds(goal):
    """Every candidate of ``goal``'s grid, as dicts of parameters."""
    grid = GOALS[goal][2]
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]


def candidate_name(goal, fold):
    """``ulx3s-topk-P8-M4``: P always, M and T where they are not the defaults (M = 1,
    T = b), so that the builds of before the search keep their names."""
    name = f"{goal}-P{fold['lanes']}"
    if fold.get("keys_per_cycle", 1) != 1:
        name += f"-M{fold['keys_per_cycle']}"
    if fold.get("rows", GOALS[goal][1]["b"]) != GOALS[goal][1]["b"]:
        name += f"-T{fold['rows']}"
    return name


def config_of(goal, fold):
    return CoreConfig.create(**GOALS[goal][1], **fold)


def cycles_per_token(cfg):
    """kv_interval + q_interval(N): one key and one query of a window of N keys."""
    return cfg.at(cfg.kv_interval, cfg.N) + cfg.at(cfg.q_interval, cfg.N)


# --------------------------------------------------------------------------- CPU reference

_CPU_SCRIPT = r"""
import json, sys, time
import numpy as np
d, N, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
q, k, v = (rng.standard_normal((N, d)).astype(np.float32) for _ in range(3))
scale = np.float32(1 / np.sqrt(d))
def attention():
    s = (q @ k.T) * scale
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    return p @ v
attention()
best = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter()
    out = attention()
    best = min(best, time.perf_counter() - t0)
assert out.dtype == np.float32 and out.shape == (N, d)
info = {}
try:
    from threadpoolctl import threadpool_info
    info = {"threadpools": [{k: p.get(k) for k in ("internal_api", "num_threads")}
                            for p in threadpool_info()]}
except ImportError:
    pass
print(json.dumps(dict(info, seconds=best, numpy=np.__version__)))
"""

#: environment variables that pin NumPy's BLAS and OpenMP pools to one thread
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "BLIS_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1",
              "NUMEXPR_NUM_THREADS": "1"}


def cpu_tokens_per_s(d, N, repeats=20):
    """Tokens per second of one CPU thread running exact softmax attention in float32 with
    NumPy (Q·Kᵀ/sqrt(d), softmax, P·V) for N queries over N keys of d elements: N / the best
    of ``repeats`` timed runs, in a subprocess whose BLAS/OpenMP pools have one thread.
    Returns ``{"tokens_per_s", "seconds", "numpy", "threadpools"?, "load_average"}``: the
    machine's 1-minute load average just before (other work on the cores slows even the best
    run; the summary states it beside the CPU column)."""
    env = dict(os.environ, **ONE_THREAD)
    load = round(os.getloadavg()[0], 2)
    r = subprocess.run([sys.executable, "-c", _CPU_SCRIPT, str(d), str(N), str(repeats)],
                       capture_output=True, text=True, env=env, check=True, timeout=600)
    info = json.loads(r.stdout.strip().splitlines()[-1])
    info["tokens_per_s"] = round(N / info["seconds"], 1)
    info["load_average"] = load
    return info


# --------------------------------------------------------------------------- the search

@dataclass
class Candidate:
    """One point of a goal's grid and what the search learnt about it."""
    goal: str
    fold: dict
    cycles: int                       # per token, exact from the config
    estimate: int | None = None       # synthesis-only cells (the raw estimate)
    predicted: float | None = None    # estimate x calibration: what choices are made on
    decision: str = "not reached"
    report: dict | None = field(default=None, repr=False)

    @property
    def name(self):
        return candidate_name(self.goal, self.fold)

    def record(self):
        return {"name": self.name, "fold": self.fold, "cycles_per_token": self.cycles,
                "estimate_cells": self.estimate,
                "predicted_cells": None if self.predicted is None else round(self.predicted),
                "decision": self.decision}


def _dominates(a, b):
    """Every grid parameter of ``b`` at least that of ``a``: b is no smaller a design."""
    return all(b.get(k, 1) >= v for k, v in a.items())


def _fits(rep):
    lc = (rep.get("utilization") or {}).get("logic_cells") or {}
    return rep.get("error") is None and lc.get("used") is not None \
        and lc["used"] <= lc["available"]


def _size(fold):
    """A key that puts a candidate after every candidate it dominates: the product of its
    grid parameters, then the parameters."""
    prod = 1
    for v in fold.values():
        prod *= v
    return prod, tuple(fold.get(k, 1) for k, _ in _SHORT)


def search(goal, build, estimate, available, calibration=1.0, *, max_builds=MAX_BUILDS,
           say=print):
    """Search ``goal``'s grid (module docstring): ``estimate(cfg)`` returns the
    synthesis-only cell estimate of a candidate, ``build(cfg, name)`` builds it and returns
    its board report, ``available`` is the device's logic cells, ``calibration`` the ratio
    placed / estimate fitted on other goals. Returns the candidates, fewest cycles per token
    first, each with its ``decision`` (and ``estimate``, ``predicted``, ``report`` where
    made).

    Estimates go from the smallest design up: a candidate that dominates (is no smaller
    in any parameter than) one predicted not to fit is not estimated, nor one needing more
    than :data:`FMAX_SPREAD` times the cycles of one predicted to fit. Builds then go from
    the fewest cycles per token among those predicted to fit, until one fits, then only
    within :data:`FMAX_SPREAD` of its cycles, ``max_builds`` at most."""
    cands = [Candidate(goal, f, cycles_per_token(config_of(goal, f))) for f in folds(goal)]
    limit = available * (1 + SLACK)
    too_big, fitting = [], []
    for i, c in enumerate(sorted(cands, key=lambda c: _size(c.fold)), 1):
        head = f"[{goal} estimate {i}/{len(cands)}] {c.name}, {c.cycles:,} cycles per token"
        big = next((t for t in too_big if _dominates(t.fold, c.fold)), None)
        fast = min(fitting, key=lambda f: f.cycles, default=None)
        if big is not None:
            c.decision = f"skipped: no smaller than {big.name}, predicted not to fit"
        elif fast is not None and c.cycles > fast.cycles * FMAX_SPREAD:
            c.decision = (f"skipped: over {FMAX_SPREAD}x the cycles of {fast.name} "
                          f"({fast.cycles:,}), predicted to fit")
        else:
            c.estimate = estimate(config_of(goal, c.fold))
            c.predicted = c.estimate * calibration
            if c.predicted > limit:
                too_big.append(c)
                c.decision = (f"skipped: predicted {c.predicted:,.0f} cells > "
                              f"{available:,} + {SLACK:.0%}")
            else:
                fitting.append(c)
                c.decision = f"predicted to fit ({c.predicted:,.0f} cells)"
        say(f"{head}: {c.decision}")
    cands.sort(key=lambda c: (c.cycles, _size(c.fold)))
    best, builds = None, 0
    for c in (c for c in cands if c in fitting):
        head = f"[{goal} build] {c.name}, {c.cycles:,} cycles per token"
        if best is not None and c.cycles > best.cycles * FMAX_SPREAD:
            c.decision = (f"not built: over {FMAX_SPREAD}x the cycles of {best.name} "
                          f"({best.cycles:,}), which fits")
        elif builds >= max_builds:
            c.decision = f"not built: {max_builds} builds made"
        else:
            say(f"{head}: building (predicted {c.predicted:,.0f} cells)")
            c.report = build(config_of(goal, c.fold), c.name)
            builds += 1
            fits = _fits(c.report)
            c.decision = "built: fits" if fits else "built: does not fit"
            if fits and best is None:
                best = c
        say(f"{head}: {c.decision}")
    return cands


def calibration_ratio(pairs):
    """The median of placed / estimated cells over (estimate, placed) pairs of built
    candidates; 1.0 without any."""
    ratios = [placed / est for est, placed in pairs if est and placed]
    return round(statistics.median(ratios), 4) if ratios else 1.0


# --------------------------------------------------------------------------- builds and rows

def row_of(goal, board_name, cfg, rep, cpu=None, current=True):
    """One summary row: the folding, area, Fmax and throughput of a built candidate;
    ``cpu`` (tokens/s of one CPU thread at the same d and N) adds ``vs_cpu``; ``current``:
    the build is of the RTL and tools of now (:func:`build_key`)."""
    util = rep.get("utilization") or {}
    lc, bram = util.get("logic_cells") or {}, util.get("bram") or {}
    fits = _fits(rep)
    fmax = rep.get("fmax_mhz")
    # the timing of the RTL that was built where the report has it (builds of before it
    # was recorded: the current config's if the build is current, ``timing_from``; a stale
    # build without it: unknown, no cycles and no throughput)
    timing = rep.get("timing") or (current and {
        "q_interval": cfg.q_interval, "kv_interval": cfg.kv_interval, "latency": cfg.latency})
    at = (lambda key, n: cfg.at(timing[key], n)) if timing else (lambda key, n: None)
    qi, kv = at("q_interval", cfg.N), at("kv_interval", 0)
    fits_at = fits and fmax and timing
    tps = round(fmax * 1e6 / (kv + qi), 1) if fits_at else None
    return {
        "goal": goal, "board": board_name, "mode": cfg.mode, "d": cfg.d, "b": cfg.b,
        "N": cfg.N, "lanes": cfg.lanes, "rows": cfg.rows, "groups": cfg.groups,
        "row_blocks": cfg.row_blocks,
        "keys_per_cycle": cfg.keys_per_cycle, "popcount": cfg.popcount, "fits": bool(fits),
        "logic_cells": lc.get("used"), "logic_cells_available": lc.get("available"),
        "bram": bram.get("used"), "bram_available": bram.get("available"),
        "fmax_mhz": fmax, "kv_interval": kv, "q_interval_full_window": qi,
        "latency_full_window": at("latency", cfg.N),
        "timing_from": ("build" if rep.get("timing") else
                        "current config" if timing else None),
        "queries_per_s": round(fmax * 1e6 / qi, 1) if fits_at else None,
        "keys_per_s": round(fmax * 1e6 / kv, 1) if fits_at else None,
        "tokens_per_s": tps, "cpu_tokens_per_s": cpu,
        "vs_cpu": round(tps / cpu, 3) if tps and cpu else None,
        "bitstream_bytes": (rep.get("bitstream") or {}).get("bytes"),
        "commit": rep.get("commit"), "error": rep.get("error"), "current": bool(current),
    }


_PACKED_KINDS = {"ICESTORM_LC": "logic_cells", "TRELLIS_COMB": "logic_cells",
                 "ICESTORM_RAM": "bram", "DP16KD": "bram"}


def _packed_utilization(tim_path):
    """Logic cells and block RAM from nextpnr's utilisation table after packing (a build
    stopped because the design does not fit has no report JSON)."""
    return {_PACKED_KINDS[k]: {"used": u, "available": a}
            for k, (u, a) in utilisation_table(tim_path).items() if k in _PACKED_KINDS}


def build_key(cfg, board_name):
    """What a candidate's build depends on, hashed: the core's Verilog, the board top's
    source, the board and the tool versions (:func:`hamattn.bench.builds.build_key`, nextpnr's
    default seed). A candidate JSON whose ``build_key`` differs was built from other RTL or
    tools: ``--reuse`` rebuilds it and the summary marks it stale."""
    return _build_key(cfg, "board", board_name)


def build_candidate(goal, board_name, cfg, path, say):
    t0 = time.monotonic()
    commit = _commit()                         # the code the build starts from
    key = build_key(cfg, board_name)
    build_dir = Path("build") / "goals" / path.stem
    try:
        rep = build_board(cfg, board_name, build_dir=build_dir, progress=say, timeout=7200)
    except UserError as e:       # e.g. does not fit: the build's own message, and the
        rep = {"board": board_name, "config": cfg.params(), "error": str(e),   # packing
               "utilization": _packed_utilization(build_dir / "hamattn_board.tim")}
        say(f"{path.stem}: {e}")
    rep["commit"] = commit
    rep["build_key"] = key
    rep["timing"] = {"q_interval": cfg.q_interval, "kv_interval": cfg.kv_interval,
                     "latency": cfg.latency}     # of the RTL built, for its row
    rep["seconds"] = round(time.monotonic() - t0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rep, indent=2) + "\n")
    return rep


def estimate_cells(cfg, board_name, say):
    """Synthesis-only logic-cell estimate of the core alone on the board's fabric (no
    place and route; cached by the Verilog's hash like every synthesis job)."""
    from ..synth.board import board
    from ..synth.cli import synth_config
    target = board(board_name).synth_target
    rep = synth_config(cfg, target, build_dir="build/goals/estimates", baseline=False,
                       place=False, progress=say)
    return rep["design"]["area"]


def summarize(names, cpu=None, key=None):
    """Rows of every built candidate of ``names`` (their JSONs in :data:`CAND_DIR`) and the
    best of each goal; ``cpu`` maps (d, N) to one CPU thread's tokens/s. Only a current
    build (its ``build_key`` equal to ``key(cfg, board)`` now) can be the best: a build of
    older RTL keeps its row, marked stale. ``key``: :func:`build_key` unless given."""
    cpu, key = cpu or {}, key or build_key
    rows, best = [], {}
    for goal in names:
        board_name, base, _ = GOALS[goal]
        for fold in folds(goal):
            path = CAND_DIR / f"{candidate_name(goal, fold)}.json"
            if not path.exists():
                continue
            cfg = config_of(goal, fold)
            rep = json.loads(path.read_text())
            rows.append(row_of(goal, board_name, cfg, rep,
                               (cpu.get((cfg.d, cfg.N)) or {}).get("tokens_per_s"),
                               current=rep.get("build_key") == key(cfg, board_name)))
        fitting = [r for r in rows if r["goal"] == goal and r["fits"] and r["current"]]
        if fitting:
            b = max(fitting, key=lambda r: r["tokens_per_s"] or 0)
            best[goal] = {"lanes": b["lanes"], "rows": b["rows"],
                          "keys_per_cycle": b["keys_per_cycle"],
                          "tokens_per_s": b["tokens_per_s"], "fmax_mhz": b["fmax_mhz"],
                          "logic_cells": b["logic_cells"], "vs_cpu": b["vs_cpu"]}
        else:
            best[goal] = None
    return rows, best


def _is_best(r, bst):
    return bool(bst) and all(bst.get(k) == r[k] for k in ("lanes", "rows", "keys_per_cycle"))


def _dash(v):
    return "-" if v is None else v


def _best_cell(r, bst):
    if not r["current"]:
        return f"stale ({r['commit'] or 'older'})"
    return "**best**" if _is_best(r, bst) else ""


def markdown(rows, best):
    out = ["| goal | P | T | M | fits | logic cells | BRAM | Fmax MHz | kv cycles | "
           "q cycles (N keys) | tokens/s | one CPU thread, tokens/s | vs CPU | best |",
           "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        vs = f"{r['vs_cpu']:.2f}x" if r.get("vs_cpu") else "-"
        cpu = f"{r['cpu_tokens_per_s']:,.0f}" if r.get("cpu_tokens_per_s") else "-"
        out.append(f"| {r['goal']} | {r['lanes']} | {r['rows']} | {r['keys_per_cycle']} | "
                   f"{'yes' if r['fits'] else 'no'} | {r['logic_cells']}/"
                   f"{r['logic_cells_available']} | {r['bram']}/{r['bram_available']} | "
                   f"{r['fmax_mhz'] if r['fits'] else '-'} | {_dash(r['kv_interval'])} | "
                   f"{_dash(r['q_interval_full_window'])} | {r['tokens_per_s'] or '-'} | {cpu} | "
                   f"{vs} | {_best_cell(r, best.get(r['goal']))} |")
    return "\n".join(out) + "\n"


def _load_search():
    path = CAND_DIR / "search.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _calibration(log, goal, board_name):
    """(ratio, names it was fitted on): placed / estimated cells of the built candidates of
    the other goals on ``board_name`` whose search recorded an estimate."""
    pairs, names = [], []
    for other, entry in log.items():
        if other == goal or GOALS.get(other, (None,))[0] != board_name:
            continue
        for rec in entry.get("candidates", []):
            path = CAND_DIR / f"{rec['name']}.json"
            if rec.get("estimate_cells") and path.exists():
                rep = json.loads(path.read_text())
                used = ((rep.get("utilization") or {}).get("logic_cells") or {}).get("used")
                if used:
                    pairs.append((rec["estimate_cells"], used))
                    names.append(rec["name"])
    return calibration_ratio(pairs), names


def build_or_keep(goal, board_name, cfg, name, *, reuse, say):
    """Build candidate ``name`` into ``CAND_DIR/<name>.json``; with ``reuse``, keep a JSON
    already there whose build key is this RTL's and these tools'."""
    path = CAND_DIR / f"{name}.json"
    if reuse and path.exists():
        rep = json.loads(path.read_text())
        if rep.get("build_key") == build_key(cfg, board_name):
            say(f"{name}: kept")
            return rep
        say(f"{name}: built from other RTL or tools ({rep.get('commit')}): rebuilt")
    return build_candidate(goal, board_name, cfg, path, say)


def all_candidates():
    """Every candidate of every goal's grid: name -> (goal, fold)."""
    return {candidate_name(g, f): (g, f) for g in GOALS for f in folds(g)}


def build_named(goal, fold, *, reuse, say):
    """One candidate of ``goal``'s grid built (``--candidate``), no search: the search log
    is left as it is."""
    cfg = config_of(goal, fold)
    name = candidate_name(goal, fold)
    say(f"{name}: {cycles_per_token(cfg)} cycles per token")
    return build_or_keep(goal, GOALS[goal][0], cfg, name, reuse=reuse, say=say)


def run_search(names, *, reuse, max_builds, say):
    """Search every goal of ``names``; the log goes to ``CAND_DIR/search.json``."""
    from ..synth.board import board
    log = _load_search()
    for goal in names:
        board_name = GOALS[goal][0]
        ratio, fitted_on = _calibration(log, goal, board_name)
        available = DEVICE_CELLS[board_name]

        def build(cfg, name, goal=goal, board_name=board_name):
            return build_or_keep(goal, board_name, cfg, name, reuse=reuse, say=say)

        say(f"{goal}: calibration {ratio} (placed / estimated cells"
            + (f", fitted on {', '.join(fitted_on)})" if fitted_on else ": no other build)")
            + f"; {available:,} cells on {board(board_name).name}")
        cands = search(goal, build, lambda cfg: estimate_cells(cfg, board_name, say),
                       available, ratio, max_builds=max_builds, say=say)
        log[goal] = {"calibration": ratio, "calibration_fitted_on": fitted_on,
                     "available_cells": available, "slack": SLACK,
                     "fmax_spread": FMAX_SPREAD, "commit": _commit(),
                     "candidates": [c.record() for c in cands]}
        CAND_DIR.mkdir(parents=True, exist_ok=True)
        (CAND_DIR / "search.json").write_text(json.dumps(log, indent=2) + "\n")


#: logic cells of each board's device (nextpnr's count: ICESTORM_LC, TRELLIS_COMB)
DEVICE_CELLS = {"icebreaker": 5280, "ulx3s": 24288}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.bench.goals", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="goals whose name contains this text")
    ap.add_argument("--reuse", action="store_true",
                    help="keep a candidate whose JSON is already in bench/results/goals")
    ap.add_argument("--summary-only", action="store_true", help="build nothing")
    ap.add_argument("--list", action="store_true", help="list every candidate's name")
    ap.add_argument("--max-builds", type=int, default=MAX_BUILDS,
                    help="builds per goal at most [default: %(default)s]")
    ap.add_argument("--candidate", action="append", default=[], metavar="NAME",
                    help="build this candidate (e.g. ulx3s-topk-P8-M10; repeatable) instead "
                         "of searching, then rewrite the summary")
    args = ap.parse_args(argv)
    known = all_candidates()
    unknown = [c for c in args.candidate if c not in known]
    if unknown:
        print(f"--candidate {unknown[0]!r} is not a candidate of the goals' grids: a name "
              f"such as {', '.join(list(known)[:3])}, ... ({len(known)} in all; "
              f"`--list` shows them)", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(known))
        return 0
    names = [g for g in GOALS if args.only in g]
    if not names:
        print(f"--only {args.only!r} matches no goal: one of {', '.join(GOALS)}",
              file=sys.stderr)
        return 2
    if args.max_builds < 1:
        print(f"--max-builds {args.max_builds} is not allowed: at least 1", file=sys.stderr)
        return 2

    def say(msg):
        print(msg, file=sys.stderr, flush=True)

    if args.candidate:
        for name in args.candidate:
            goal, fold = known[name]
            build_named(goal, fold, reuse=args.reuse, say=say)
    elif not args.summary_only:
        run_search(names, reuse=args.reuse, max_builds=args.max_builds, say=say)
    cpu = {}
    for goal in GOALS:
        base = GOALS[goal][1]
        key = (base["d"], base["N"])
        if key not in cpu:
            say(f"one CPU thread, NumPy softmax attention, d={key[0]} N={key[1]}")
            cpu[key] = cpu_tokens_per_s(*key)
    rows, best = summarize(list(GOALS), cpu)
    doc = {"description": "issue 8/16 goal configs on the iCEBreaker (iCE40 UP5K) and the "
                          "ULX3S (ECP5 LFE5U-25F): candidates (P, M, T) searched and built "
                          "with hamattn board (search log: goals/search.json); best = fits, "
                          "most tokens/s at its Fmax (a token: one key and one query of a "
                          "window of N keys, kv_interval + q_interval(N) cycles); "
                          "cpu_tokens_per_s: one thread of this machine, NumPy float32 "
                          "exact softmax attention, N queries over N keys, same d",
           "rows": rows, "best": best,
           "cpu": [{"d": d, "N": N, **info} for (d, N), info in cpu.items()],
           "machine": {"python": platform.python_version(), "platform": platform.platform(),
                       "cpu_count": os.cpu_count(), "processor": platform.processor()}}
    (RESULTS / "goals.json").write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / "goals.md").write_text(markdown(rows, best))
    print(markdown(rows, best))
    return 0


if __name__ == "__main__":
    sys.exit(stoppable("python -m hamattn.bench.goals", main))
