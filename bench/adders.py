"""Benchmark of ``--adders``: the hash projection's and linear read-out's adder trees as
binary adder trees (``sum``) or as bit heaps reduced by the popcount's counters (``lut6``,
``lut4``), in whole generated cores.

    python -m hamattn.bench.adders [--targets T ...] [--configs C ...] [--json PATH]
                                   [--build-dir DIR]

For each named config (:data:`CONFIGS`), each target and each ``--adders`` value, generates
the core as ``hamattn gen`` does and synthesizes it with its hierarchy kept
(:func:`hamattn.synth.breakdown.breakdown`, synthesis-level, before placement), so that the
hash projection and the value path are counted on their own. Writes
``bench/results/adders.json`` (one row per (config, target, adders) with the core's, the
hash's and the value path's area and flip-flops) and prints a Markdown table with the
change against ``sum``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from hamattn.config import ADDER_TREES, CoreConfig
from hamattn.gen.verilog import generate
from hamattn.synth import flows
from hamattn.synth.breakdown import breakdown
from hamattn.process import stoppable

RESULTS = Path(__file__).resolve().parent / "results" / "adders.json"
TARGETS = ("xc7", "ice40-up5k")
#: name -> core parameters. ``default``: the defaults of `hamattn gen` (linear, d = b = 16:
#: the hash rows have about 5 operands, the read-out trees 18 of 16 bits); ``hash64``: the
#: hash of d = 64, b = 64 (rows of about 21 operands) in a small topk core
CONFIGS = {
    "default": {},
    "hash64": dict(d=64, b=64, N=16, mode="topk", k=4),
}
PARTS = ("hash", "value_path")


def _part(result, part):
    for name, mod in result["modules"].items():
        if name.endswith("." + part):
            return {"area": mod["total"]["area"], "ffs": mod["total"]["ffs"]}
    return None


def run(configs, targets, build_dir, progress=print):
    rows = []
    jobs = [(c, t, a) for c in configs for t in targets for a in ADDER_TREES]
    for n, (cname, target, adders) in enumerate(jobs, 1):
        cfg = CoreConfig.create(**CONFIGS[cname], adders=adders)
        out = Path(build_dir) / f"{cname}-{adders}"
        vpath, _ = generate(cfg, out)
        t0 = time.time()
        r = breakdown(vpath, "hamattn_core", target, out / f"synth-{target}")
        row = {"config": cname, "params": CONFIGS[cname], "target": target, "adders": adders,
               "area_unit": r["area_unit"], "area": r["total"]["area"],
               "ffs": r["total"]["ffs"]}
        # Yosys leaves an inverter that no LUT absorbs (one driving a carry chain's DI or
        # CYINIT, or a flip-flop) as an INV cell, which the xc7 LUT count leaves out;
        # Vivado makes each a LUT1
        row["inv"] = sum(m["local"]["cells"].get("INV", 0) * m["instances"]
                         for m in r["modules"].values())
        for part in PARTS:
            row[part] = _part(r, part)
        rows.append(row)
        progress(f"[{n}/{len(jobs)}] {cname} {target} adders={adders}: {row['area']} "
                 f"{r['area_unit']}, {row['ffs']} FF ({time.time() - t0:.0f} s)")
    return rows


def table(rows):
    """Markdown: per (config, target, adders) the core, hash and value path, and the change
    of the core's area against ``sum``."""
    base = {(r["config"], r["target"]): r for r in rows if r["adders"] == "sum"}
    out = ["| config | target (unit) | adders | core | INV | core FFs | hash | value path | "
           "core vs sum |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        b = base.get((r["config"], r["target"]))
        delta = f"{r['area'] / b['area'] - 1:+.1%}" if b else "-"
        part = lambda p: str(r[p]["area"]) if r[p] else "-"     # noqa: E731
        out.append(f"| {r['config']} | {r['target']} ({r['area_unit']}) | {r['adders']} | "
                   f"{r['area']} | {r['inv']} | {r['ffs']} | {part('hash')} | "
                   f"{part('value_path')} | {delta} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.bench.adders",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", nargs="+", default=list(TARGETS))
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--json", default=str(RESULTS))
    ap.add_argument("--build-dir", default="build/bench-adders")
    args = ap.parse_args(argv)
    t0 = time.time()
    rows = run(args.configs, args.targets, args.build_dir,
               progress=lambda s: print(s, file=sys.stderr, flush=True))
    doc = {"bench": "adders", "rows": rows, "seconds": round(time.time() - t0),
           "machine": {"platform": platform.platform(), "python": platform.python_version()},
           "tools": flows.tool_versions()}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(stoppable("python -m hamattn.bench.adders", main))
