"""The rounding divider alone on the iCE40 UP5K, one pipeline shape per row: logic cells,
flip-flops and Fmax of :class:`~hamattn.rtl.RoundingDivider` with the widths of a core
config and ``steps`` division steps per stage (1: one step per stage, a group per cycle;
w: one bit-serial stage, a group per w cycles), in the synth flow's harness
(:func:`hamattn.synth.flows.synthesize`, nextpnr seed 1).

    python -m hamattn.bench.divider            # writes bench/results/divider.json

docs/divider.md explains the choice these numbers support.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog

from ..config import CoreConfig
from ..rtl import RoundingDivider
from ..rtl import layouts
from ..synth.flows import synthesize
from ..process import stoppable

RESULTS = Path(__file__).resolve().parent / "results"

#: name -> (config, steps choices)
SHAPES = {
    "small-linear (d=4, b=8, N=16, P=4)": (dict(d=4, b=8, N=16), (1, 4, 8)),
    "icebreaker-linear (d=32, P=1, grouped)": (
        dict(d=32, b=32, N=256, lanes=1, rows=8), (1, 4)),
}
TARGET = "ice40-up5k"


def divider_of(cfg, steps):
    return RoundingDivider(cfg.d, cfg.num_width, cfg.den_width, cfg.w, layouts.query_tag(),
                           lanes=cfg.lanes, grouped=layouts.grouped(cfg), steps=steps)


def measure(build_dir):
    rows = []
    for name, (params, choices) in SHAPES.items():
        cfg = CoreConfig.create(**params)
        for steps in choices:
            div = divider_of(cfg, steps)
            folder = Path(build_dir) / f"{cfg.d}-{cfg.lanes}-{steps}"
            folder.mkdir(parents=True, exist_ok=True)
            vpath = folder / "divider.v"
            vpath.write_text(verilog.convert(div, name="divider", emit_src=False))
            r = synthesize(vpath, "divider", TARGET, folder, cache_dir=False)
            rows.append({"shape": name, "d": cfg.d, "lanes": cfg.lanes, "groups": div.groups,
                         "grouped": div.grouped, "num_width": cfg.num_width,
                         "den_width": cfg.den_width, "steps": steps,
                         "stages": len(div.stage_steps), "latency": div.latency.fixed,
                         "interval": div.interval.fixed, "config_steps": cfg.plan.divider.steps,
                         "logic_cells": r["area"], "ffs": r["ffs"], "fmax_mhz": r["fmax_mhz"],
                         "critical_path": r.get("critical_path"),
                         "tool_versions": r["tool_versions"]})
            print(f"{name} steps={steps}: {r['area']} LC, {r['ffs']} FF, "
                  f"{r['fmax_mhz']} MHz", flush=True)
    return rows


def main(argv=None):
    argparse.ArgumentParser(prog="python -m hamattn.bench.divider",
                            description=__doc__.split("\n\n")[0]).parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(tmp)
    out = {"target": TARGET, "machine": platform.platform(), "python": sys.version.split()[0],
           "seed": 1, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "divider.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS / 'divider.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(stoppable("python -m hamattn.bench.divider", main))
