"""Issue 17's Fmax table: every point placed with several nextpnr seeds, the median reported.

    python -m hamattn.bench.fmax [--only TEXT ...] [--seeds 1 2 3] [--rebuild]
                                 [--summary-only] [--list]

A *point* (:data:`POINTS`) is a config on a fabric, built by one of two flows:

* ``synth``: ``hamattn synth --no-baseline`` (the core inside the registered harness of
  :mod:`hamattn.synth.harness`), used for the default config (d=16 b=16 N=64) wherever it
  fits the device;
* ``board``: ``hamattn board`` (the board top of :mod:`hamattn.rtl.board`, bitstream), used
  for the goal configs (d=32 b=32 N=256 on the iCEBreaker's UP5K, d=64 b=64 N=1024 on the
  ULX3S's LFE5U-25F) at the folding ``make bench-goals`` found best: they fit the device only
  without the synth harness.

Every (point, seed) build is written to ``bench/results/fmax/<point>-s<seed>.json`` with its
key: the SHA-256 of the core's Verilog (and of the board top's source for ``board``), the
flow, the device, the seed and the tool versions. A build whose JSON holds the same key is
not run again (``--rebuild`` runs it anyway), so an interrupted or partial run resumes where
it stopped, and points and seeds can be run a few at a time. The summary,
``bench/results/fmax.json``, has one row per point with the seeds that ran, Fmax per seed,
their median, the fabric's Fmax ceiling (``hamattn synth``'s, nextpnr seed 1), the median
as a fraction of it, the goal (>= 0.3 of the ceiling) and the critical path of the median
seed's build; ``make docs`` turns it into the table of docs/timing.md. ``make bench-fmax``
runs the first form (the ECP5 goal builds take about 20 minutes each).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .builds import build_key, commit as _commit
from ..process import stoppable

RESULTS = Path(__file__).resolve().parent / "results"
RUN_DIR = RESULTS / "fmax"
SEEDS = (1, 2, 3)
#: issue 17's goal: the median Fmax at least this fraction of the fabric's ceiling
GOAL_FRACTION = 0.3
#: how many of the median run's slowest paths a summary row keeps
SUMMARY_PATHS = 5

DEFAULT = dict(d=16, w=8, b=16, N=64)
ICE = dict(d=32, w=8, b=32, N=256)
ECP = dict(d=64, w=8, b=64, N=1024)


@dataclass(frozen=True)
class Point:
    """A config placed on one device: ``flow`` ``"synth"`` (``where`` = a synth target) or
    ``"board"`` (``where`` = a board of :data:`hamattn.synth.board.BOARDS`)."""
    name: str
    flow: str
    where: str
    params: dict = field(hash=False)

    @property
    def target(self):
        """The synth target of the device's fabric (whose ceiling the Fmax is compared to)."""
        if self.flow == "board":
            from ..synth.board import BOARDS
            return BOARDS[self.where].synth_target
        return self.where

    def config(self):
        from ..config import CoreConfig
        return CoreConfig.create(**self.params)


#: the default config where it fits (the UP5K holds `topk` unfolded and `topk`/`hsoftmax` at
#: P = 4; no `linear` fits it; the LFE5U-25F every mode but unfolded `linear`), and the goal
#: configs at the foldings of bench/results/goals.json (the builds in its README headline)
POINTS = [
    Point("default-topk-up5k", "synth", "ice40-up5k", dict(DEFAULT, mode="topk")),
    Point("default-topk-P4-up5k", "synth", "ice40-up5k", dict(DEFAULT, mode="topk", lanes=4)),
    Point("default-hsoftmax-P4-up5k", "synth", "ice40-up5k",
          dict(DEFAULT, mode="hsoftmax", lanes=4)),
    Point("icebreaker-linear", "board", "icebreaker",
          dict(ICE, mode="linear", lanes=1, rows=8)),
    Point("icebreaker-topk", "board", "icebreaker",
          dict(ICE, mode="topk", lanes=1, keys_per_cycle=2, popcount="lut4")),
    Point("icebreaker-hsoftmax", "board", "icebreaker",
          dict(ICE, mode="hsoftmax", lanes=1, keys_per_cycle=2, popcount="lut4")),
    Point("default-topk-ecp5", "synth", "ecp5-25k", dict(DEFAULT, mode="topk")),
    Point("default-hsoftmax-ecp5", "synth", "ecp5-25k", dict(DEFAULT, mode="hsoftmax")),
    Point("default-linear-P8-ecp5", "board", "ulx3s", dict(DEFAULT, mode="linear", lanes=8)),
    Point("ulx3s-linear", "board", "ulx3s", dict(ECP, mode="linear", lanes=2, rows=32)),
    Point("ulx3s-topk", "board", "ulx3s", dict(ECP, mode="topk", lanes=8, keys_per_cycle=10)),
    Point("ulx3s-hsoftmax", "board", "ulx3s",
          dict(ECP, mode="hsoftmax", lanes=8, keys_per_cycle=8)),
]


def run_key(point, seed):
    """What a build of ``point`` with ``seed`` depends on, hashed
    (:func:`hamattn.bench.builds.build_key`)."""
    return build_key(point.config(), point.flow, point.where, seed)


def build_point(point, seed, say):
    """Build ``point`` with nextpnr seed ``seed``: ``{"fits", "fmax_mhz", "critical_path",
    "top_paths", "area", "area_unit", "bram", "error", "tools"}``."""
    from ..errors import UserError
    cfg = point.config()
    if point.flow == "board":
        from ..synth.board import build_board
        build_dir = Path("build") / "fmax" / f"{point.name}-s{seed}"
        try:
            rep = build_board(cfg, point.where, build_dir=build_dir, progress=say,
                              timeout=7200, seed=seed)
        except UserError as e:
            return {"fits": False, "fmax_mhz": None, "critical_path": None, "error": str(e)}
        util = rep["utilization"]
        return {"fits": True, "fmax_mhz": rep["fmax_mhz"], "critical_path": rep["critical_path"],
                "top_paths": rep.get("top_paths"),
                "area": util["logic_cells"]["used"],
                "area_available": util["logic_cells"]["available"],
                "area_unit": "logic cells", "bram": (util.get("bram") or {}).get("used"),
                "error": None, "tools": rep["tools"]}
    from ..synth.cli import synth_config
    from ..synth.flows import SynthError
    try:
        rep = synth_config(cfg, point.where, build_dir="build/fmax", baseline=False, seed=seed,
                           progress=say)
    except SynthError as e:
        # e.g. nextpnr's "Unable to find legal placement" of a design that packs but
        # cannot be placed: recorded as not fitting, with the tool's words
        return {"fits": False, "fmax_mhz": None, "critical_path": None, "error": str(e)}
    d = rep["design"]
    return {"fits": bool(d["fits"]), "fmax_mhz": d["fmax_mhz"],
            "critical_path": d["critical_path"], "top_paths": d.get("top_paths"),
            "area": d["area"],
            "area_available": (d.get("placed") or {}).get("available"),
            "area_unit": rep["area_unit"], "bram": None,
            "error": (d.get("placed") or {}).get("error"), "tools": rep["tool_versions"]}


def run_points(points, seeds, *, run_dir=RUN_DIR, rebuild=False, build=build_point,
               key=run_key, say=print):
    """Build every (point, seed) whose JSON in ``run_dir`` is missing or has another key;
    return ``{point name: [run, ...]}`` of every run of those seeds found there. A point that
    does not fit is built with the first seed only."""
    out = {}
    todo = [(p, s) for p in points for s in seeds]
    for i, (point, seed) in enumerate(todo, 1):
        path = Path(run_dir) / f"{point.name}-s{seed}.json"
        k = key(point, seed)
        old = json.loads(path.read_text()) if path.exists() else None
        runs = out.setdefault(point.name, [])
        head = f"[{i}/{len(todo)}] {point.name} seed {seed}"
        if old is not None and old.get("key") == k and not rebuild:
            say(f"{head}: kept ({_fmax_text(old)})")
            runs.append(old)
            continue
        if any(not r["fits"] for r in runs):
            say(f"{head}: skipped (does not fit)")
            continue
        say(f"{head}: building ({point.flow} flow, {point.where})")
        t0, commit = time.monotonic(), _commit()        # the code the build starts from
        run = dict(build(point, seed, say), point=point.name, seed=seed, key=k,
                   flow=point.flow, where=point.where, config=point.params,
                   commit=commit, seconds=round(time.monotonic() - t0, 1))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run, indent=2) + "\n")
        say(f"{head}: {_fmax_text(run)}")
        runs.append(run)
    return out


def load_runs(point, seeds, run_dir=RUN_DIR):
    """The runs of ``point`` with ``seeds`` found in ``run_dir`` (any key)."""
    paths = [Path(run_dir) / f"{point.name}-s{s}.json" for s in seeds]
    return [json.loads(f.read_text()) for f in paths if f.exists()]


def _fmax_text(run):
    if not run["fits"]:
        return "does not fit"
    return f"Fmax {run['fmax_mhz']} MHz"


def median_run(runs):
    """The run whose Fmax is the median of ``runs`` (those that placed; of an even count the
    lower middle one), or None."""
    placed = sorted((r for r in runs if r.get("fmax_mhz")), key=lambda r: r["fmax_mhz"])
    return placed[(len(placed) - 1) // 2] if placed else None


def summarize(point, runs, ceiling):
    """One row of the table: Fmax per seed, the median (``statistics.median``), the fraction
    of ``ceiling`` (MHz), the goal, the critical path of the median run and its
    :data:`SUMMARY_PATHS` slowest paths (:mod:`hamattn.synth.paths`), area and rates."""
    cfg = point.config()
    runs = sorted(runs, key=lambda r: r["seed"])
    fmaxes = [r["fmax_mhz"] for r in runs if r.get("fmax_mhz")]
    med = round(statistics.median(fmaxes), 2) if fmaxes else None
    mid = median_run(runs)
    fits = bool(runs) and all(r["fits"] for r in runs)
    frac = round(med / ceiling, 3) if med and ceiling else None
    qi, kv = cfg.at(cfg.q_interval, cfg.N), cfg.at(cfg.kv_interval, 0)
    first = runs[0] if runs else {}
    return {
        "point": point.name, "flow": point.flow, "where": point.where,
        "target": point.target, "config": point.params, "fits": fits,
        "seeds": [r["seed"] for r in runs], "fmax_mhz_by_seed": [r["fmax_mhz"] for r in runs],
        "median_fmax_mhz": med, "ceiling_mhz": ceiling, "fraction_of_ceiling": frac,
        "goal_met": None if frac is None else frac >= GOAL_FRACTION,
        "critical_path": mid["critical_path"] if mid else None,
        "critical_path_seed": mid["seed"] if mid else None,
        "top_paths": (mid.get("top_paths") or [])[:SUMMARY_PATHS] if mid else None,
        "area": first.get("area"), "area_available": first.get("area_available"),
        "area_unit": first.get("area_unit"), "bram": first.get("bram"),
        "q_interval_full_window": qi, "kv_interval": kv,
        "tokens_per_s": round(med * 1e6 / (qi + kv), 1) if med else None,
        "commits": sorted({r["commit"] for r in runs if r.get("commit")}),
        "error": next((r["error"] for r in runs if r.get("error")), None),
    }


def ceilings(targets, say=print):
    """{target: Fmax ceiling in MHz} (``hamattn synth``'s, nextpnr seed 1, cached)."""
    from ..synth.flows import fmax_ceiling
    out = {}
    for t in targets:
        say(f"Fmax ceiling of {t}")
        out[t] = fmax_ceiling(t, Path("build") / "fmax", progress=say)
    return out


def write_summary(rows, seeds, tools, path=RESULTS / "fmax.json"):
    from ..versions import python_version
    doc = {"description": "issue 17: Fmax of each point, median over nextpnr seeds, as a "
                          f"fraction of the fabric's ceiling (goal >= {GOAL_FRACTION})",
           "goal_fraction": GOAL_FRACTION, "seeds": list(seeds), "rows": rows,
           "tools": tools,
           "machine": {"python": python_version(), "platform": platform.platform(),
                       "cpu_count": os.cpu_count()}}
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def select(only):
    """The points whose name contains any of the texts ``only`` (all when empty); a text
    that matches none is a :class:`ValueError` naming the points."""
    if not only:
        return list(POINTS)
    for text in only:
        if not any(text in p.name for p in POINTS):
            raise ValueError(f"--only {text!r} matches no point: one of "
                             + ", ".join(p.name for p in POINTS))
    return [p for p in POINTS if any(t in p.name for t in only)]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.bench.fmax", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=[], metavar="TEXT",
                    help="points whose name contains this text (repeatable)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), metavar="S",
                    help=f"nextpnr seeds (default: {' '.join(map(str, SEEDS))})")
    ap.add_argument("--rebuild", action="store_true", help="build even when a run is kept")
    ap.add_argument("--summary-only", action="store_true",
                    help="build nothing; summarize the runs already there")
    ap.add_argument("--list", action="store_true", help="list the points and exit")
    args = ap.parse_args(argv)
    if args.list:
        for p in POINTS:
            print(f"{p.name:26} {p.flow:5} {p.where:11} {p.params}")
        return 0
    try:
        points = select(args.only)
    except ValueError as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    if any(s < 0 for s in args.seeds):
        print(f"{ap.prog}: error: --seeds {args.seeds} is not allowed: integers >= 0",
              file=sys.stderr)
        return 2

    def say(msg):
        print(msg, file=sys.stderr, flush=True)

    if not args.summary_only:
        run_points(points, args.seeds, rebuild=args.rebuild, say=say)
    # the summary holds every point with runs of these seeds, built in this run or before
    found = {p.name: load_runs(p, args.seeds) for p in POINTS}
    shown = [p for p in POINTS if found.get(p.name)]
    ceil = ceilings(sorted({p.target for p in shown}), say)
    rows = [summarize(p, found[p.name], ceil[p.target]) for p in shown]
    tools = next((r["tools"] for p in shown for r in found[p.name] if r.get("tools")), {})
    write_summary(rows, args.seeds, tools)
    from ..ci.docs_tables import render
    table = render("fmax")
    (RESULTS / "fmax.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(stoppable("python -m hamattn.bench.fmax", main))
