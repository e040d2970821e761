"""``hamattn sweep``: synthesize a grid of configs on several targets, in parallel.

Every (config, target) job runs :func:`hamattn.synth.cli.synth_config`; the tool jobs inside
it are cached by the SHA-256 of their Verilog, scripts, tool versions and target
(:mod:`hamattn.synth.cache`), so a rerun, or a sweep that shares points with an earlier one,
reuses results. Jobs run on a local process pool (``--jobs``, default: the number of CPUs)
or on a Dask distributed scheduler (``--scheduler ADDRESS``) for users who outgrow one
machine. Each job says on stderr which stage it starts, one line each; results go to
``DIR/results.json`` and ``DIR/results.csv``, one row per job (a failed job has its
``error`` and no numbers).
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

from .. import process
from ..config import FLAGS, MODE_PARAMS, PARAMS, ConfigError, CoreConfig, unused_reason
from ..errors import UserError
from .cli import synth_config
from .flows import MEMORY_KEYS, amount
from .tools import tool_versions

__all__ = ["parse_grid", "grid_configs", "run_sweep", "ROW_FIELDS", "run_cli"]

_NAMES = {p.flag.lstrip("-"): p.name for p in PARAMS}
_NAMES.update({p.name: p.name for p in PARAMS})
_NAMES.update({p.flag.lstrip("-").replace("-", "_"): p.name for p in PARAMS})

ROW_FIELDS = ["mode", "d", "w", "b", "N", "k", "g", "smax", "lanes", "rows", "keys_per_cycle",
              "weights", "seed", "popcount", "adders", "target", "area_unit", "area", "ffs",
              "fmax_mhz", "fits",
              "baseline_area", "baseline_ffs", "baseline_fmax_mhz", "baseline_dsp_area",
              "baseline_dsps", "area_reduction", "fmax_ceiling_mhz", "fmax_fraction",
              "latency", "q_interval", "kv_interval", "queries_per_s", "keys_per_s",
              "memory_bits", "memory_transistors", "logic_transistors",
              "baseline_memory_bits", "baseline_memory_transistors",
              "baseline_logic_transistors", "baseline_q_interval", "baseline_kv_interval",
              "baseline_dsp_fmax_mhz", "area_reduction_dsp", "tokens_per_s",
              "tokens_per_s_per_1k_cells", "baseline_tokens_per_s",
              "baseline_tokens_per_s_per_1k_cells", "baseline_dsp_tokens_per_s",
              "seconds", "error"]


def parse_grid(items):
    """``["b=16,32", "mode=linear,topk"]`` -> ``{"b": ["16", "32"], "mode": [...]}`` keyed by
    the SPEC symbols (flags without dashes are accepted too)."""
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
    t, bt = rep["throughput"], rep.get("baseline_throughput") or {}
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
        "tokens_per_s": t.get("tokens_per_s"),
        "tokens_per_s_per_1k_cells": t.get("tokens_per_s_per_1k_cells"),
        "baseline_q_interval": bt.get("q_interval"), "baseline_kv_interval":
        bt.get("kv_interval"), "baseline_tokens_per_s": bt.get("tokens_per_s"),
        "baseline_tokens_per_s_per_1k_cells": bt.get("tokens_per_s_per_1k_cells"),
        "baseline_dsp_fmax_mhz": dsp.get("fmax_mhz"),
        "area_reduction_dsp": dsp.get("area_reduction"),
        "baseline_dsp_tokens_per_s": (dsp.get("throughput") or {}).get("tokens_per_s"),
        "seconds": round(seconds, 1), "error": None,
    })
    for key in MEMORY_KEYS:
        row[key], row[f"baseline_{key}"] = d.get(key), bl.get(key)
    return row


def job_label(params, target):
    """``linear d=16 b=16 N=64 lanes=4 on xc7``: the parameters a reader tells jobs apart by
    (k, lanes, rows, M and the trees only where they are not the defaults)."""
    p = params
    text = f"{p['mode']} d={p['d']} b={p['b']} N={p['N']}"
    if p["mode"] == "topk":
        text += f" k={p['k']}"
    if p.get("lanes") not in (None, p["d"]):
        text += f" lanes={p['lanes']}"
    if p.get("rows") not in (None, p["b"]):
        text += f" rows={p['rows']}"
    if p.get("keys_per_cycle") not in (None, 1):
        text += f" M={p['keys_per_cycle']}"
    for prm in PARAMS:
        if prm.name in ("popcount", "adders", "w", "weights", "seed") and \
                p.get(prm.name) != prm.default:
            text += f" {prm.name}={p[prm.name]}"
    return f"{text} on {target}"


def _say(tag):
    def say(msg):
        # one write per line: the lines of parallel workers must not interleave
        sys.stderr.write(f"{tag} {msg}\n")
        sys.stderr.flush()
    return say


def sweep_job(params, target, build_dir, baseline=True, tag=None):
    """One job (runs in a worker): the flat row of :func:`synth_config`, or the error.
    With ``tag`` (e.g. ``[job 2/4]``), one line per stage goes to stderr, prefixed by it."""
    t0 = time.time()
    cfg = CoreConfig.create(**params)
    try:
        rep = synth_config(cfg, target, build_dir=build_dir, baseline=baseline,
                           progress=None if tag is None else _say(tag))
        return _flatten(rep, time.time() - t0), rep
    except Exception as e:                     # noqa: BLE001 - reported per job, not fatal
        row = dict(cfg.params(), target=target, error=f"{type(e).__name__}: {e}"[:2000],
                   seconds=round(time.time() - t0, 1))
        return row, None


def run_sweep(configs, targets, *, jobs=None, scheduler=None, build_dir="build/synth",
              baseline=True, progress=True):
    """Run every (config, target) job; return (rows, reports) in grid order.

    With ``progress``, each job says on stderr what it starts (``[job 2/4] synth core``,
    ``... place-and-route baseline``) and the sweep one line per finished job. Locally the
    jobs run in ``jobs`` worker processes (default: the number of CPUs); Ctrl-C or SIGTERM
    ends every worker and every tool it started (:func:`hamattn.process.end_children`)
    before the interrupt goes on."""
    tasks = [(cfg.params(), t) for cfg in configs for t in targets]
    n = len(tasks)
    results = [None] * n
    build_dir = os.path.abspath(build_dir)
    tags = [f"[job {i + 1}/{n}]" if progress else None for i in range(n)]
    say = _say("[sweep]") if progress else (lambda msg: None)
    for i, (p, t) in enumerate(tasks):
        say(f"job {i + 1}/{n}: {job_label(p, t)}")

    def finished(i, result):
        results[i] = result
        row = result[0]
        done = sum(r is not None for r in results)
        what = (f"failed: {row['error'].splitlines()[0][:120]}" if row.get("error") else
                f"{amount(row['area'], row['area_unit'])} in {row['seconds']} s")
        say(f"{done}/{n} done: job {i + 1} {what}")

    if scheduler:
        from distributed import Client, as_completed    # lazy: Dask only with --scheduler
        with Client(scheduler) as client:
            futs = {client.submit(sweep_job, p, t, build_dir, baseline, tags[i],
                                  pure=False): i for i, (p, t) in enumerate(tasks)}
            for fut in as_completed(futs):
                finished(futs[fut], fut.result())
        return [r[0] for r in results], [r[1] for r in results]
    workers = min(jobs or os.cpu_count() or 1, max(1, n))
    ex = concurrent.futures.ProcessPoolExecutor(max_workers=workers,
                                                initializer=process.worker_signals)
    try:
        futs = {ex.submit(sweep_job, p, t, build_dir, baseline, tags[i]): i
                for i, (p, t) in enumerate(tasks)}
        for fut in concurrent.futures.as_completed(futs):
            finished(futs[fut], fut.result())
    except BaseException:
        process.end_children()
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown()
    return [r[0] for r in results], [r[1] for r in results]


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


def check_used(configs, names):
    """Refuse by name a parameter in ``names`` (given by the user, as a flag or a grid
    axis) that no config of the sweep uses, e.g. ``--topk`` in a sweep of linear cores."""
    for name in names:
        reasons = [unused_reason(c, name) for c in configs]
        if configs and all(reasons):
            raise ConfigError(name, getattr(configs[0], name),
                              reasons[0] + " (and no config of the sweep has that mode)"
                              if name in MODE_PARAMS else reasons[0], FLAGS[name])


def run_cli(args, base):
    """``hamattn sweep``: every point of the grid over ``base`` (the parameters the user
    gave) on every ``--target``; exit 1 when a job failed."""
    grid = parse_grid(args.grid)
    configs = grid_configs(base, grid)
    check_used(configs, list(base) + list(grid))
    targets = list(dict.fromkeys(args.target))
    n = len(configs) * len(targets)
    print(f"sweep: {len(configs)} configs x {len(targets)} targets "
          f"({', '.join(targets)}) = {n} jobs"
          + ("" if args.baseline else ", no baselines")
          + (f" on {args.scheduler}" if args.scheduler else
             f", {min(args.jobs or os.cpu_count() or 1, n)} local workers"), file=sys.stderr)
    t0 = time.time()
    rows, reports = run_sweep(configs, targets, jobs=args.jobs, scheduler=args.scheduler,
                              build_dir=os.path.join(args.output, "build"),
                              baseline=args.baseline)
    meta = {"grid": grid, "targets": targets, "seconds": round(time.time() - t0, 1),
            "tool_versions": tool_versions(), "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    jpath, cpath = write_results(args.output, rows, reports, meta)
    failed = [r for r in rows if r.get("error")]
    print(f"wrote {jpath} and {cpath}: {len(rows) - len(failed)} jobs done, "
          f"{len(failed)} failed")
    for r in failed:
        print(f"  failed: {job_label(r, r['target'])}: {r['error'].splitlines()[0]}")
    return 0 if not failed else 1
