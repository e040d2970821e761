"""``hamattn sweep``: synthesize a grid of configs on several targets, in parallel.

Every (config, target) job runs :func:`hamattn.synth.cli.synth_config`; the tool jobs inside
it are cached by the SHA-256 of their Verilog, scripts, tool versions and target
(:mod:`hamattn.synth.cache`), so a rerun, or a sweep that shares points with an earlier one,
reuses results. Jobs run on a local process pool (``--jobs``, default: the number of CPUs)
or on a Dask distributed scheduler (``--scheduler ADDRESS``) for users who outgrow one
machine. A progress bar shows jobs done; results go to ``DIR/results.json`` and
``DIR/results.csv``, one row per job (a failed job has its ``error`` and no numbers).
"""

from __future__ import annotations

import concurrent.futures
import csv
import itertools
import json
import os
import pathlib
import platform
import sys
import time

from ..config import PARAMS, CoreConfig

__all__ = ["parse_grid", "grid_configs", "run_sweep", "ROW_FIELDS", "run_cli"]

_NAMES = {p.flag.lstrip("-"): p.name for p in PARAMS}
_NAMES.update({p.name: p.name for p in PARAMS})
_NAMES.update({p.flag.lstrip("-").replace("-", "_"): p.name for p in PARAMS})

ROW_FIELDS = ["mode", "d", "w", "b", "N", "k", "g", "smax", "lanes", "rows", "weights", "seed",
              "popcount", "adders", "target", "area_unit", "area", "ffs", "fmax_mhz", "fits",
              "baseline_area", "baseline_ffs", "baseline_fmax_mhz", "baseline_dsp_area",
              "baseline_dsps", "area_reduction", "fmax_ceiling_mhz", "fmax_fraction",
              "latency", "q_interval", "kv_interval", "queries_per_s", "keys_per_s",
              "seconds", "error"]


def parse_grid(items):
    """``["b=16,32", "mode=linear,topk"]`` -> ``{"b": ["16", "32"], "mode": [...]}`` keyed by
    the SPEC symbols (flags without dashes are accepted too)."""
    from ..errors import UserError
    grid = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--grid {item!r} is not allowed: PARAM=V1,V2,... "
                            f"(e.g. b=16,32,64)")
        key, values = item.split("=", 1)
        name = _NAMES.get(key.strip())
        if name is None:
            raise UserError(f"--grid parameter {key!r} is not allowed: one of "
                            + ", ".join(p.name for p in PARAMS))
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not vals:
            raise UserError(f"--grid {item!r} is not allowed: at least one value")
        grid[name] = vals
    return grid


def _convert(name, text):
    kind = next(p.kind for p in PARAMS if p.name == name)
    if kind is str:
        return text
    try:
        return kind(text)
    except ValueError:
        from ..config import ConfigError, FLAGS
        raise ConfigError(name, text, f"a number ({kind.__name__})", FLAGS.get(name)) from None


def grid_configs(base, grid):
    """Every combination of ``grid`` over the ``base`` parameters, each a validated
    :class:`CoreConfig` (a refused point raises, naming the parameter and value)."""
    names = list(grid)
    points = []
    for combo in itertools.product(*(grid[n] for n in names)):
        params = dict(base)
        params.update({n: _convert(n, v) for n, v in zip(names, combo)})
        if "k" not in grid and params.get("k") is not None and params["k"] > params["N"]:
            params["k"] = None                 # the default k follows N across the grid
        points.append(CoreConfig.create(**params))
    return points


def _flatten(rep, seconds):
    d, bl = rep["design"], rep["baseline"]
    t = rep["throughput"]
    dsp = rep.get("baseline_dsp") or {}
    row = dict(rep["config"])
    row.update({
        "target": rep["target"], "area_unit": rep["area_unit"], "area": d["area"],
        "ffs": d["ffs"], "fmax_mhz": d["fmax_mhz"], "fits": d.get("fits"),
        "baseline_area": bl.get("area"), "baseline_ffs": bl.get("ffs"),
        "baseline_fmax_mhz": bl.get("fmax_mhz"), "baseline_dsp_area": dsp.get("area"),
        "baseline_dsps": dsp.get("dsps"), "area_reduction": rep["area_reduction"],
        "fmax_ceiling_mhz": rep.get("fmax_ceiling_mhz"),
        "fmax_fraction": rep.get("fmax_fraction_of_ceiling"), "latency": t["latency"],
        "q_interval": t["q_interval"], "kv_interval": t["kv_interval"],
        "queries_per_s": t["queries_per_s"], "keys_per_s": t["keys_per_s"],
        "seconds": round(seconds, 1), "error": None,
    })
    return row


def sweep_job(params, target, build_dir, baseline=True):
    """One job (runs in a worker): the flat row of :func:`synth_config`, or the error."""
    from .cli import synth_config
    t0 = time.time()
    cfg = CoreConfig.create(**params)
    try:
        rep = synth_config(cfg, target, build_dir=build_dir, baseline=baseline)
        return _flatten(rep, time.time() - t0), rep
    except Exception as e:                     # noqa: BLE001 - reported per job, not fatal
        row = dict(cfg.params(), target=target, error=f"{type(e).__name__}: {e}"[:2000],
                   seconds=round(time.time() - t0, 1))
        return row, None


def run_sweep(configs, targets, *, jobs=None, scheduler=None, build_dir="build/synth",
              baseline=True, progress=True):
    """Run every (config, target) job; return (rows, reports) in grid order."""
    tasks = [(cfg.params(), t) for cfg in configs for t in targets]
    results = [None] * len(tasks)
    bar = _progress(len(tasks), progress)
    build_dir = os.path.abspath(build_dir)
    if scheduler:
        from distributed import Client, as_completed
        with Client(scheduler) as client:
            futs = {client.submit(sweep_job, p, t, build_dir, baseline, pure=False): i
                    for i, (p, t) in enumerate(tasks)}
            for fut in as_completed(futs):
                results[futs[fut]] = fut.result()
                bar.update(1)
    else:
        workers = jobs or os.cpu_count() or 1
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as ex:
            futs = {ex.submit(sweep_job, p, t, build_dir, baseline): i
                    for i, (p, t) in enumerate(tasks)}
            for fut in concurrent.futures.as_completed(futs):
                results[futs[fut]] = fut.result()
                bar.update(1)
    bar.close()
    return [r[0] for r in results], [r[1] for r in results]


def _progress(total, enabled):
    from tqdm import tqdm
    return tqdm(total=total, desc="sweep", unit="job", disable=not enabled, file=sys.stderr)


def write_results(out_dir, rows, reports, meta):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.json", "w") as f:
        json.dump({"meta": meta, "rows": rows, "reports": reports}, f, indent=1,
                  sort_keys=True)
        f.write("\n")
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ROW_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return out / "results.json", out / "results.csv"


def run_cli(args):
    from ..errors import UserError
    from .flows import TARGETS
    from .tools import tool_versions
    base = {p.name: getattr(args, p.name) for p in PARAMS}
    grid = parse_grid(args.grid)
    configs = grid_configs(base, grid)
    targets = args.target or ["ice40-up5k"]
    for t in targets:
        if t not in TARGETS:
            raise UserError(f"--target {t!r} is not allowed: one of {', '.join(TARGETS)}")
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs} is not allowed: at least 1")
    print(f"sweep: {len(configs)} configs x {len(targets)} targets = "
          f"{len(configs) * len(targets)} jobs"
          + (f" on {args.scheduler}" if args.scheduler else f", {args.jobs or os.cpu_count()}"
             " local workers"), file=sys.stderr)
    t0 = time.time()
    rows, reports = run_sweep(configs, targets, jobs=args.jobs, scheduler=args.scheduler,
                              build_dir=os.path.join(args.output, "build"))
    meta = {"grid": grid, "targets": targets, "seconds": round(time.time() - t0, 1),
            "tool_versions": tool_versions(), "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    jpath, cpath = write_results(args.output, rows, reports, meta)
    failed = [r for r in rows if r.get("error")]
    print(f"wrote {jpath} and {cpath}: {len(rows) - len(failed)} jobs done, "
          f"{len(failed)} failed")
    for r in failed:
        print(f"  failed: {r['mode']} d={r['d']} b={r['b']} N={r['N']} on {r['target']}: "
              f"{r['error'].splitlines()[0]}")
    return 0 if not failed else 1
