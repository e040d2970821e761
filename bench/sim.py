"""Simulation speed: simulated clock cycles per second and build time of the default config
under Verilator and Icarus, through the same cocotb bench as the tests.

    python -m hamattn.bench.sim [--windows N] [--out bench/results/sim.json]   (make bench-sim)

For each simulator: a cold build (a fresh folder, ccache off) timed, then the ``full``
scenario (full throughput) and the ``random`` scenario (random valid/ready on all three
channels), every cycle driven from Python (Verilator: ``pulse`` clocking, one wake-up per
cycle), and ``full`` again with the free-running GPI clock and the bench's fast-forward
over idle cycles. ``cycles_per_s`` is all cycles of the two scenarios over the wall time
spent in the bench's cycle loops; ``cycles_per_cpu_s`` over the CPU time of the simulator
process in them, the rate on an idle core (the figure to compare on a shared, loaded
machine; the load average is recorded). Verilator builds with ``-O2`` here (the tests
default to ``-O0``, which compiles ~3x faster).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..config import CoreConfig
from ..verif.simulate import run_sim, simulator_available, tool_versions
from ..process import stoppable

OUT = Path(__file__).resolve().parent / "results" / "sim.json"


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine():
    return {"platform": platform.platform(), "cpu": _cpu_model(), "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def measure(sim, cfg, windows, seed=0, opt="-O2"):
    root = Path(os.environ.get("HAMATTN_BUILD_DIR", "build")) / "bench"
    root.mkdir(parents=True, exist_ok=True)
    bdir = Path(tempfile.mkdtemp(prefix=f"{sim}-", dir=root))
    old = os.environ.get("CCACHE_DISABLE")
    os.environ["CCACHE_DISABLE"] = "1"                    # a cold build, as on a new machine
    try:
        t0 = time.perf_counter()
        main = run_sim(cfg, sim=sim, seed=seed, windows=windows, scenario="full,random",
                       build_dir=bdir, opt=opt)
        total_s = time.perf_counter() - t0
    finally:
        if old is None:
            os.environ.pop("CCACHE_DISABLE", None)
        else:
            os.environ["CCACHE_DISABLE"] = old
    slow = run_sim(cfg, sim=sim, seed=seed, windows=windows, scenario="full", build_dir=bdir,
                   opt=opt, clocking="gpi")
    shutil.rmtree(bdir, ignore_errors=True)
    if not (main["passed"] and slow["passed"]):
        raise SystemExit(f"{sim}: the simulation failed: {main['errors'] or slow['errors']}")
    sc = main["scenarios"]
    per_cycle = slow["scenarios"]["full"]

    def rates(s):
        return {"cycles": s["cycles"], "cycles_per_s": round(s["cycles"] / s["loop_s"]),
                "cycles_per_cpu_s": round(s["cycles"] / s["loop_cpu_s"])}
    return {
        "cycles_per_s": round(main["sim_cycles_per_s"]),
        "build_s": round(main["build_s"], 1),
        "cycles_per_cpu_s": round(main["sim_cycles_per_cpu_s"]),
        "build_cpu_s": round(main["build_cpu_s"], 1),
        "cycles": main["cycles"],
        "scenarios": {
            "full": dict(rates(sc["full"]), skipped=sc["full"]["skipped"]),
            "random": rates(sc["random"]),
            "full_gpi_clock_fast_forward": dict(rates(per_cycle),
                                                skipped=per_cycle["skipped"]),
        },
        "run_s": round(main["run_s"], 1),
        "total_s": round(total_s, 1),
        "cxx_opt": opt if sim == "verilator" else None,
        "windows": windows,
        "tools": tool_versions(sim),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.bench.sim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=40, help="windows per phase (default 40)")
    ap.add_argument("--icarus-windows", type=int, default=6)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    cfg = CoreConfig.create()
    res = {"config": cfg.params(), "machine": machine(),
           "latency": cfg.latency, "q_interval": cfg.q_interval}
    for sim, windows in (("verilator", args.windows), ("icarus", args.icarus_windows)):
        why = simulator_available(sim)
        if why:
            print(f"{sim}: skipped ({why})")
            res[sim] = {"skipped": why}
            continue
        print(f"{sim}: building (cold) and simulating the default config ...", flush=True)
        r = measure(sim, cfg, windows)
        res[sim] = r
        s = r["scenarios"]
        print(f"{sim}: {r['cycles_per_s']:,} cycles/s, {r['cycles_per_cpu_s']:,} per CPU "
              f"second (full throughput {s['full']['cycles_per_s']:,}, random valid/ready "
              f"{s['random']['cycles_per_s']:,}, full with the gpi clock and fast-forward "
              f"{s['full_gpi_clock_fast_forward']['cycles_per_s']:,}); build "
              f"{r['build_s']} s ({r['build_cpu_s']} CPU s)", flush=True)
    res["machine"]["loadavg_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") \
        else None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(stoppable("python -m hamattn.bench.sim", main))
