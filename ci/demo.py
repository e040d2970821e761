"""``make demo``: generate, simulate and synthesize the default config; print one summary.

Steps (each says what it does while it runs):
1. build the default :class:`CoreConfig` and write ``build/demo/hamattn_core.{v,json}``;
2. run the golden model on one seeded window and show a few outputs;
3. simulate the generated Verilog with cocotb + Verilator against the golden model
   (every scenario: full-rate cycle-exact timing, random handshakes, overflow, reset...);
4. synthesize the core and its standard-attention baseline for the demo targets with
   Yosys + nextpnr (the first YoWASP run compiles for up to two minutes);
5. print one table.

Environment: ``HAMATTN_DEMO_TARGETS`` (comma-separated, default ``xc7``: the default linear
core, fully parallel, is larger than the small iCE40 parts; add ``ecp5-25k`` for a placed
Fmax),
``HAMATTN_DEMO_MODE`` (default ``linear``, the SPEC's default mode),
``HAMATTN_DEMO_BASELINE`` (``1``: also synthesize the standard-attention baseline and print the
area reduction; off by default because the baselines' multipliers make that run several times
longer).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from .. import golden
from ..config import CoreConfig
from ..gen import generate
from ..synth.cli import synth_config
from ..verif.simulate import format_result, run_sim, simulator_available

BUILD = os.environ.get("HAMATTN_DEMO_DIR", "build/demo")


def step(msg):
    print(f"\n== {msg}", flush=True)


def main():
    t0 = time.time()
    mode = os.environ.get("HAMATTN_DEMO_MODE", "linear")
    targets = [t for t in os.environ.get("HAMATTN_DEMO_TARGETS", "xc7").split(",")
               if t]
    cfg = CoreConfig.create(mode=mode)
    rows = []

    step(f"generate: {cfg!r}")
    vpath, jpath = generate(cfg, BUILD)
    print(f"wrote {vpath}\nwrote {jpath}")
    rows.append(("latency (edges)", str(cfg.plan.latency)))
    rows.append(("query interval", str(cfg.plan.q_interval)))

    step("golden model on one seeded window (seed 0, 16 keys, 3 queries)")
    rng = np.random.default_rng(0)
    keys, values, queries = (rng.integers(cfg.vmin, cfg.vmax + 1, (n, cfg.d))
                             for n in (16, 16, 3))
    r = golden.run(cfg, keys, values, queries)
    for i, row in enumerate(r.out):
        print(f"query {i}: out[:8] = {row[:8].tolist()}  den = {int(r.den[i])}")

    step("simulate the generated Verilog (cocotb + Verilator) against the golden model")
    why = simulator_available("verilator")
    if why:
        print(f"cannot simulate: {why}")
        rows.append(("simulation", f"not run: {why}"))
        sim_ok = False
    else:
        res = run_sim(cfg, sim="verilator", seed=0, windows=10, scenario="all",
                      progress=lambda m: print(f"  {m}", flush=True))
        print(format_result(res))
        sim_ok = res["passed"]
        rows.append(("simulation", f"{'PASS' if sim_ok else 'FAIL'}: "
                     f"{len(res['scenarios'])} scenarios, {res['cycles']:,} cycles, "
                     f"{res['sim_cycles_per_s']:,.0f} cycles/s (Verilator)"))

    baseline = os.environ.get("HAMATTN_DEMO_BASELINE", "0") == "1"
    for target in targets:
        step(f"synthesize for {target} ({'core and baseline' if baseline else 'core'}; the "
             "first YoWASP run compiles for up to two minutes)")
        rep = synth_config(cfg, target, baseline=baseline,
                           progress=lambda m: print(f"  {m}", flush=True))
        d, bl = rep["design"], rep["baseline"]
        red = rep.get("area_reduction")
        fmax = f", Fmax {d['fmax_mhz']} MHz" if d.get("fmax_mhz") else ""
        ceil = f" (ceiling {rep['fmax_ceiling_mhz']} MHz)" if rep.get("fmax_ceiling_mhz") else ""
        rows.append((f"{target} core", f"{d['area']} {rep['area_unit']}, {d['ffs']} FFs"
                     + fmax + ceil + ("" if d.get("fits", True) is not False
                                      else " (does not fit the device)")))
        if bl and bl.get("area") is not None:
            rows.append((f"{target} baseline", f"{bl['area']} {rep['area_unit']}, "
                         f"{bl['ffs']} FFs" + (f", Fmax {bl['fmax_mhz']} MHz"
                                               if bl.get("fmax_mhz") else "")))
            rows.append((f"{target} area reduction", f"{red:.1%}" if red is not None else "-"))

    step(f"summary: default config ({cfg.mode} mode, d={cfg.d}, w={cfg.w}, b={cfg.b}, "
         f"N={cfg.N}) in {time.time() - t0:.0f} s")
    width = max(len(k) for k, _ in rows)
    print(f"| {'what'.ljust(width)} | result |\n|{'-' * (width + 2)}|--------|")
    for k, v in rows:
        print(f"| {k.ljust(width)} | {v} |")
    return 0 if sim_ok else 1


if __name__ == "__main__":
    sys.exit(main())
