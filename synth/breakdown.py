"""Area per component: synthesis with the design's hierarchy kept.

Amaranth writes one Verilog module per component instance, named after its path
(``hamattn_core``, ``hamattn_core.hash``, ``hamattn_core.divider``, ...). Synthesizing
without ``-flatten`` keeps those modules, and ``stat -json`` then gives each module's own
(local) cells. :func:`breakdown` adds each module's children into it (``total``) so that the
top's total is the whole design, and lists the tree in depth-first order.

Command line (prints the table, or JSON with ``--json``)::

    python -m hamattn.synth.breakdown build/core/hamattn_core.v --target ice40-up5k

The numbers are synthesis-level (before packing and placement) and, because no optimisation
crosses a kept module boundary, the top's total can differ a little from a flat synthesis.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from .cache import resolve_cache_dir
from .flows import SynthError, TARGETS, _read_sources, _synth_only_job, _target, classify_cells
from .tools import DEFAULT_TIMEOUT

__all__ = ["breakdown", "format_breakdown", "main"]


def breakdown(verilog_path, top, target, build_dir, *, cache_dir=None,
              timeout=DEFAULT_TIMEOUT):
    """Per-module area of module ``top`` of ``verilog_path`` on ``target`` (hierarchy kept).

    Returns ``{"target", "area_unit", "top", "total": {"area", "ffs"}, "modules": {name:
    {"local": {"area", "ffs", "cells"}, "total": {"area", "ffs"}, "children": {module:
    count}, "instances": n}}, "tree": [{"module", "depth", "count", "area", "ffs",
    "local_area", "local_ffs", "share"}, ...]}`` where ``area`` is in the target's unit
    (LUT-level estimate on iCE40/ECP5), ``instances`` how many times the module occurs under
    ``top`` and ``share`` a module's total area over the top's total."""
    tgt = _target(target)
    sources = _read_sources(verilog_path)
    r = _synth_only_job(sources, top, tgt, pathlib.Path(build_dir),
                        resolve_cache_dir(cache_dir), timeout, keep_hierarchy=True)
    mods = r["modules"]
    if top not in mods:
        raise SynthError(f"module {top!r} missing after synthesis (have: {', '.join(mods)})")

    local, children = {}, {}
    for name, cells in mods.items():
        kids = {t: n for t, n in cells.items() if t in mods}
        leaf = {t: n for t, n in cells.items() if t not in mods}
        s = classify_cells(leaf, tgt, r.get("memories", {}).get(name))
        local[name] = {"area": s["area"], "ffs": s["ffs"], "cells": leaf}
        children[name] = kids

    totals = {}

    def total(name, stack=()):
        if name in totals:
            return totals[name]
        if name in stack:
            raise SynthError(f"recursive module hierarchy at {name!r}")
        a, f = local[name]["area"], local[name]["ffs"]
        for kid, n in children[name].items():
            ka, kf = total(kid, stack + (name,))
            a += n * ka
            f += n * kf
        totals[name] = (a, f)
        return totals[name]

    top_area, top_ffs = total(top)
    instances = {}
    tree = []

    def walk(name, depth, count):
        instances[name] = instances.get(name, 0) + count
        a, f = total(name)
        tree.append({
            "module": name, "depth": depth, "count": count, "area": a, "ffs": f,
            "local_area": local[name]["area"], "local_ffs": local[name]["ffs"],
            "share": round(a * count / top_area, 4) if top_area else None,
        })
        for kid, n in sorted(children[name].items()):
            walk(kid, depth + 1, count * n)

    walk(top, 0, 1)
    modules = {}
    for name in mods:
        if name not in instances:
            continue        # not under top
        a, f = total(name)
        modules[name] = {"local": local[name], "total": {"area": a, "ffs": f},
                         "children": children[name], "instances": instances[name]}
    return {
        "target": tgt.name, "area_unit": tgt.area_unit, "top": top,
        "total": {"area": top_area, "ffs": top_ffs},
        "modules": modules, "tree": tree,
        "tool_versions": r["tool_versions"], "cached": r["cached"],
    }


def format_breakdown(result):
    """A plain-text table of :func:`breakdown`'s tree."""
    unit = result["area_unit"]
    rows = [f"{'module':<48} {'area':>10} {'local':>10} {'ffs':>8} {'share':>7}   ({unit})"]
    for row in result["tree"]:
        name = "  " * row["depth"] + row["module"]
        if row["count"] != 1:
            name += f" x{row['count']}"
        share = "" if row["share"] is None else f"{100 * row['share']:.1f}%"
        rows.append(f"{name:<48} {row['area']:>10} {row['local_area']:>10} "
                    f"{row['ffs']:>8} {share:>7}")
    return "\n".join(rows)


def main(argv=None):

    ap = argparse.ArgumentParser(prog="python -m hamattn.synth.breakdown",
                                 description="Area per component of a generated core "
                                 "(synthesis with the hierarchy kept).")
    ap.add_argument("verilog", type=pathlib.Path, help="Verilog file from `hamattn gen`")
    ap.add_argument("--top", default="hamattn_core", help="top module [default: %(default)s]")
    ap.add_argument("--target", default="ice40-up5k", choices=sorted(TARGETS),
                    help="[default: %(default)s]")
    ap.add_argument("--build-dir", type=pathlib.Path, default=pathlib.Path("build/breakdown"))
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    if not args.verilog.is_file():
        print(f"breakdown: {args.verilog}: no such file", file=sys.stderr)
        return 2
    try:
        r = breakdown(args.verilog, args.top, args.target, args.build_dir)
    except SynthError as e:
        print(f"breakdown: {e}", file=sys.stderr)
        return 2
    print(json.dumps(r, indent=2) if args.json else format_breakdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
