"""``hamattn synth``: one config, one target, the core against its baseline (SPEC §6).

:func:`synth_config` is the library entry point (the demo, the sweep and the CLI use it):
it generates the core and its baseline (:mod:`hamattn.synth.baselines`), runs
:func:`hamattn.synth.flows.synth_report` and adds what a reader needs beside the SPEC's
fields: the config, the throughput at the achieved Fmax, the baseline with DSP blocks where
the fabric has them, and the fraction of the fabric's Fmax ceiling the core reaches.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys

from .flows import TARGETS, synth_report, synthesize

__all__ = ["synth_config", "run_synth", "run_sweep", "run_report", "DSP_TARGETS"]

#: targets whose baseline is also synthesized with hard multipliers (DSP blocks)
DSP_TARGETS = {"ecp5-25k": "-nodsp", "xc7": "-nodsp"}


def dsp_variant(target):
    """The same target with its multipliers mapped to DSP blocks (no ``-nodsp``)."""
    t = TARGETS[target]
    return dataclasses.replace(t, name=f"{t.name}+dsp",
                               synth=t.synth.replace(" " + DSP_TARGETS[target], ""))


def _sources(cfg, build_dir, progress, baseline=True):
    from ..gen.verilog import generate, sha256, verilog_text
    from .baselines import DEFAULT_BASELINE_TOP, generate_baseline
    text = verilog_text(cfg, progress=progress)
    folder = pathlib.Path(build_dir) / "designs" / sha256(text)[:16]
    vpath = folder / "hamattn_core.v"
    if not vpath.exists():
        generate(cfg, folder)
    bdir = folder / "baseline"
    bpath = bdir / f"{DEFAULT_BASELINE_TOP}.v"
    if baseline and not bpath.exists():
        generate_baseline(cfg, bdir)
    return str(vpath), str(bpath), DEFAULT_BASELINE_TOP


def synth_config(cfg, target, *, build_dir="build/synth", baseline=True, place=True,
                 cache_dir=None, progress=None):
    """The SPEC §6 report of ``cfg`` on ``target`` plus ``config``, ``throughput``,
    ``fmax_fraction_of_ceiling`` and (ECP5, 7-series) ``baseline_dsp``."""
    say = progress or (lambda msg: None)
    if target not in TARGETS:
        from ..errors import UserError
        raise UserError(f"target {target!r} is not allowed: one of {', '.join(TARGETS)}")
    say(f"generating the core{' and its baseline' if baseline else ''} ({cfg.mode}, d={cfg.d}, "
        f"b={cfg.b}, N={cfg.N})")
    core_v, base_v, base_top = _sources(cfg, build_dir, say, baseline)
    say(f"synthesizing for {target} (Yosys{' + nextpnr' if TARGETS[target].placed else ''})")
    rep = synth_report(core_v, "hamattn_core", base_v if baseline else None, base_top,
                       target, build_dir, place=place, cache_dir=cache_dir)
    if baseline and target in DSP_TARGETS:
        say(f"synthesizing the baseline again with DSP blocks for {target}")
        r = synthesize(base_v, base_top, dsp_variant(target), build_dir, place=False,
                       cache_dir=cache_dir)
        rep["baseline_dsp"] = {"area": r["area"], "ffs": r["ffs"],
                               "dsps": r["synth"]["dsp"],
                               "area_kind": "synthesis"}
    fmax = rep["design"]["fmax_mhz"]
    n = cfg.N
    qi, kvi = cfg.at(cfg.q_interval, n), cfg.at(cfg.kv_interval, n)
    rep["config"] = cfg.params()
    rep["throughput"] = {
        "window_keys": n, "q_interval": qi, "kv_interval": kvi,
        "latency": cfg.at(cfg.latency, n),
        "queries_per_s": None if fmax is None else round(fmax * 1e6 / qi),
        "keys_per_s": None if fmax is None else round(fmax * 1e6 / kvi),
    }
    ceil = rep.get("fmax_ceiling_mhz")
    rep["fmax_fraction_of_ceiling"] = None if not (fmax and ceil) else round(fmax / ceil, 3)
    return rep


def format_report(rep):
    d, bl = rep["design"], rep["baseline"]
    unit = rep["area_unit"]
    lines = [f"target {rep['target']}: core {d['area']} {unit}, {d['ffs']} FFs"
             + (f", Fmax {d['fmax_mhz']} MHz" if d.get("fmax_mhz") else "")]
    if bl.get("area") is not None:
        lines.append(f"  baseline {bl['area']} {unit}, {bl['ffs']} FFs"
                     + (f", Fmax {bl['fmax_mhz']} MHz" if bl.get("fmax_mhz") else ""))
        lines.append(f"  area reduction {rep['area_reduction']:.1%}")
    if rep.get("baseline_dsp"):
        b = rep["baseline_dsp"]
        lines.append(f"  baseline with DSP blocks: {b['area']} {unit}, {b['dsps']} DSPs")
    if d.get("critical_path"):
        c = d["critical_path"]
        lines.append(f"  critical path {c['from']} -> {c['to']}, {c['delay_ns']} ns "
                     f"({c['from_net']} -> {c['to_net']})")
    if rep.get("fmax_ceiling_mhz"):
        lines.append(f"  Fmax ceiling of the fabric {rep['fmax_ceiling_mhz']} MHz"
                     + (f" (core at {rep['fmax_fraction_of_ceiling']:.0%})"
                        if rep.get("fmax_fraction_of_ceiling") else ""))
    t = rep["throughput"]
    if t.get("queries_per_s"):
        lines.append(f"  {t['queries_per_s']:,} queries/s, {t['keys_per_s']:,} keys/s at "
                     f"Fmax for windows of {t['window_keys']} keys")
    return "\n".join(lines)


def run_synth(cfg, args):
    """``hamattn synth``: print the summary; write the JSON to ``--json`` when given."""
    rep = synth_config(cfg, args.target, build_dir=args.build_dir or "build/synth",
                       baseline=not args.no_baseline,
                       progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    print(format_report(rep))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"wrote {args.json}")
    return 0


def run_sweep(args):
    from .sweep import run_cli
    return run_cli(args)


def run_report(args):
    from .report import run_cli
    return run_cli(args)
