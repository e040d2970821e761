"""Benchmark of the golden model: one window of n keys and n queries, per value path.

    python -m hamattn.bench.golden [--repeat R] [--json PATH] [--check]

Times :func:`hamattn.golden.run` (best of R runs, inputs and config built beforehand) and
measures its peak memory with :mod:`tracemalloc` in a separate run (NumPy reports its
buffers to tracemalloc; the inputs exist before tracing starts, so the figure is the
model's own working set). Also runs ``linear`` at several n so that the growth of its
memory with n is visible. Writes ``bench/results/golden.json``. The goal is under 2 s per
mode at n = 4096 on 2 cores, and ``linear`` memory linear in n; ``--check`` turns a missed
goal into exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from hamattn.config import CoreConfig
from hamattn.golden import run
from hamattn.process import stoppable

RESULTS = Path(__file__).resolve().parent / "results" / "golden.json"
BASE = dict(d=64, b=64, w=8, N=4096, k=8)
N_MAIN = 4096
SCALING_N = (1024, 2048, 4096)
GOAL_SECONDS = 2.0
#: peak(n_max) / peak(n_min) above this is not linear growth (linear: 4, quadratic: 16)
LINEARITY_SLACK = 1.25
SEED = 2024


def window(cfg, n, seed=SEED):
    rng = np.random.default_rng(seed)
    draw = lambda: rng.integers(cfg.vmin, cfg.vmax + 1, size=(n, cfg.d), dtype=np.int64)
    return draw(), draw(), draw()


def measure(cfg, n, repeat):
    keys, values, queries = window(cfg, n)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run(cfg, keys, values, queries)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    try:
        run(cfg, keys, values, queries)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"n": n, "seconds": round(min(times), 4),
            "seconds_all": [round(t, 4) for t in times],
            "peak_mib": round(peak / 2**20, 3)}


def machine():
    return {"python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else None}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.bench.golden", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per case (best is kept)")
    ap.add_argument("--json", type=Path, default=RESULTS, help=f"output (default {RESULTS})")
    ap.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = ap.parse_args(argv)

    results = {}
    for mode in ("linear", "topk", "hsoftmax"):
        cfg = CoreConfig.create(mode=mode, **BASE)
        results[mode] = measure(cfg, N_MAIN, args.repeat)
    lin = CoreConfig.create(mode="linear", **BASE)
    scaling = [measure(lin, n, args.repeat) if n != N_MAIN else results["linear"]
               for n in SCALING_N]
    for row in scaling:
        row["peak_kib_per_key"] = round(row["peak_mib"] * 1024 / row["n"], 3)
    growth = scaling[-1]["peak_mib"] / scaling[0]["peak_mib"]
    n_ratio = SCALING_N[-1] / SCALING_N[0]
    linear_ok = growth <= n_ratio * LINEARITY_SLACK
    slow = [m for m in ("linear", "topk", "hsoftmax") if results[m]["seconds"] > GOAL_SECONDS]

    doc = {
        "description": f"golden model, one window of n = {N_MAIN} keys and {N_MAIN} queries, "
                       "seconds = best of the timed runs, peak_mib = tracemalloc peak of one "
                       "run (the model's own allocations)",
        "config": {**BASE, "g": lin.g, "smax": lin.smax, "weights": lin.weights,
                   "seed": lin.seed, "input_seed": SEED},
        **{m: results[m] for m in ("linear", "topk", "hsoftmax")},
        "linear_scaling": scaling,
        "goals": {"seconds_per_mode": GOAL_SECONDS, "modes_over_goal": slow,
                  "linear_peak_growth": round(growth, 3), "n_growth": n_ratio,
                  "linear_memory_linear": linear_ok},
        "machine": machine(),
    }

    print(f"golden model, d={BASE['d']} b={BASE['b']} w={BASE['w']} N={BASE['N']}, "
          f"n = {N_MAIN} keys and queries, best of {args.repeat}")
    print(f"{'mode':<10}{'seconds':>10}{'peak MiB':>12}")
    for m in ("linear", "topk", "hsoftmax"):
        print(f"{m:<10}{results[m]['seconds']:>10.3f}{results[m]['peak_mib']:>12.2f}")
    print("\nlinear, memory against n")
    print(f"{'n':>6}{'seconds':>10}{'peak MiB':>12}{'KiB/key':>10}")
    for row in scaling:
        print(f"{row['n']:>6}{row['seconds']:>10.3f}{row['peak_mib']:>12.2f}"
              f"{row['peak_kib_per_key']:>10.2f}")
    print(f"\npeak grows x{growth:.2f} for n x{n_ratio:.0f}: "
          f"{'linear' if linear_ok else 'NOT linear'}; "
          f"over {GOAL_SECONDS} s: {', '.join(slow) or 'none'}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.json}")
    if args.check and (slow or not linear_ok):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(stoppable("python -m hamattn.bench.golden", main))
