"""``hamattn synth``: one config, one target, the core against its baseline (SPEC §6).

:func:`synth_config` is the library entry point (the demo, the sweep and the CLI use it):
it generates the core and its baseline (:mod:`hamattn.rtl.baselines`), runs
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

from ..errors import UserError
from ..gen.verilog import (baseline_verilog_text, generate, generate_baseline, sha256,
                           verilog_text)
from ..golden.baselines import baseline_spec
from ..rtl.baselines import DEFAULT_BASELINE_TOP
from .flows import PLURAL, TARGETS, amount, synth_report, synthesize

__all__ = ["synth_config", "run_synth", "DSP_TARGETS", "throughput"]

#: targets whose baseline is also synthesized with hard multipliers (DSP blocks)
DSP_TARGETS = {"ecp5-25k": "-nodsp", "xc7": "-nodsp"}


def dsp_variant(target):
    """The same target with its multipliers mapped to DSP blocks (no ``-nodsp``)."""
    t = TARGETS[target]
    return dataclasses.replace(t, name=f"{t.name}+dsp",
                               synth=t.synth.replace(" " + DSP_TARGETS[target], ""))


def _sources(cfg, build_dir, progress, baseline=True):
    text = verilog_text(cfg, progress=progress)
    folder = pathlib.Path(build_dir) / "designs" / sha256(text)[:16]
    vpath = folder / "hamattn_core.v"
    if not vpath.exists():
        generate(cfg, folder)
    bpath = None
    if baseline:
        # in a folder of the baseline's own hash: configs with the same core (M before the
        # core used it, say) have different baselines, and runs side by side share folders
        btext = baseline_verilog_text(cfg)
        bpath = folder / f"baseline-{sha256(btext)[:16]}" / f"{DEFAULT_BASELINE_TOP}.v"
        if not bpath.exists():
            generate_baseline(cfg, bpath.parent)
    return str(vpath), str(bpath), DEFAULT_BASELINE_TOP


def synth_config(cfg, target, *, build_dir="build/synth", baseline=True, place=True,
                 cache_dir=None, progress=None, seed=1):
    """The SPEC §6 report of ``cfg`` on ``target`` plus ``config``, ``throughput`` and
    ``baseline_throughput`` (:func:`throughput`, the baseline's from its own intervals),
    ``fmax_fraction_of_ceiling`` and, on ECP5 and 7-series, ``baseline_dsp``: the baseline
    synthesized (and on ECP5 placed) with its multipliers in DSP blocks, with its area
    (the DSPs not counted), ``dsps``, ``fmax_mhz``, ``area_reduction`` against it and its
    ``throughput``; ``seed`` is nextpnr's."""
    say = progress or (lambda msg: None)
    if target not in TARGETS:
        raise UserError(f"target {target!r} is not allowed: one of {', '.join(TARGETS)}")
    say(f"generate the core{' and its baseline' if baseline else ''}")
    core_v, base_v, base_top = _sources(cfg, build_dir, say, baseline)
    rep = synth_report(core_v, "hamattn_core", base_v if baseline else None, base_top,
                       target, build_dir, place=place, cache_dir=cache_dir, progress=say,
                       seed=seed)
    n = cfg.N
    rep["config"] = cfg.params()
    rep["throughput"] = throughput(rep["design"], cfg.at(cfg.q_interval, n),
                                   cfg.at(cfg.kv_interval, n), n, rep["area_unit"])
    rep["throughput"]["latency"] = cfg.at(cfg.latency, n)
    if baseline:
        spec = baseline_spec(cfg)
        bq, bkv = spec.query_interval(n), spec.key_interval
        rep["baseline_throughput"] = throughput(rep["baseline"], bq, bkv, n, rep["area_unit"])
    if baseline and target in DSP_TARGETS:
        r = synthesize(base_v, base_top, dsp_variant(target), build_dir, place=place,
                       cache_dir=cache_dir, progress=say, label="baseline with DSP blocks")
        rep["baseline_dsp"] = {
            "area": r["area"], "ffs": r["ffs"], "dsps": r["synth"]["dsp"],
            "fmax_mhz": r["fmax_mhz"], "area_kind": r["area_kind"], "fits": r["fits"],
            "area_reduction": (None if not r["area"] else
                               round(1.0 - rep["design"]["area"] / r["area"], 6)),
            "throughput": throughput(r, bq, bkv, n, rep["area_unit"])}
    fmax, ceil = rep["design"]["fmax_mhz"], rep.get("fmax_ceiling_mhz")
    rep["fmax_fraction_of_ceiling"] = None if not (fmax and ceil) else round(fmax / ceil, 3)
    return rep


def throughput(side, q_interval, kv_interval, n, unit):
    """Throughput of one side of a report for windows of ``n`` keys: ``cycles_per_token``
    = ``kv_interval + q_interval`` (a token is one key and one query of the window, as in
    self-attention: the keys go in first, then the queries), and where the side has an
    Fmax ``tokens_per_s`` = Fmax / cycles_per_token, ``queries_per_s``, ``keys_per_s`` and,
    where ``area`` counts logic cells or LUTs, ``tokens_per_s_per_1k_cells`` = tokens/s per
    1,000 of them."""
    fmax = side.get("fmax_mhz")
    cycles = kv_interval + q_interval
    tps = None if fmax is None else round(fmax * 1e6 / cycles, 1)
    per_cell = (None if tps is None or not side.get("area") or unit == "transistor"
                else round(tps * 1000 / side["area"], 1))
    return {"window_keys": n, "q_interval": q_interval, "kv_interval": kv_interval,
            "cycles_per_token": cycles,
            "queries_per_s": None if fmax is None else round(fmax * 1e6 / q_interval),
            "keys_per_s": None if fmax is None else round(fmax * 1e6 / kv_interval),
            "tokens_per_s": tps, "tokens_per_s_per_1k_cells": per_cell}


def _fit_text(side, unit, target):
    """``5,378/5,280 ICESTORM_LC with the harness: does NOT fit`` (placed targets)."""
    placed = side.get("placed") or {}
    total, avail = placed.get("total", {}).get("area"), placed.get("available")
    if total is None or not avail:
        return None
    verdict = "fits" if side.get("fits") else "does NOT fit"
    return f"{total:,}/{avail:,} {unit} with the harness: {verdict} {target}"


def _fmax_text(side, target, placed_target):
    if side.get("fmax_mhz"):
        dev = side.get("fmax_device")
        return f"Fmax {side['fmax_mhz']} MHz" + (f" (on {dev})" if dev and
                                                  side.get("fits") is False else "")
    if not placed_target:
        return f"no Fmax: {target} is synthesis only (no place and route)"
    if side.get("fits") is False:
        return "no Fmax: it does not fit, so it is not placed"
    return "no Fmax: not placed"


def _side_line(name, side, rep):
    unit, target = rep["area_unit"], rep["target"]
    placed_target = TARGETS[target].placed
    synth = side.get("synth") or {}
    parts = [amount(side["area"], unit), f"{side['ffs']:,} FFs"]
    if side.get("memory_bits") is not None:
        parts[0] += (f" = {amount(side['logic_transistors'], unit)} of logic + "
                     f"{amount(side['memory_transistors'], unit)} of SRAM "
                     f"({side['memory_bits']:,} bits)")
    if synth.get("bram") is not None and TARGETS[target].family != "gates":
        parts.append(f"{synth['bram']} BRAM")
    fit = _fit_text(side, unit, target) if placed_target else None
    if fit:
        parts.append(fit)
    parts.append(_fmax_text(side, target, placed_target))
    return f"  {name:<9}{', '.join(parts)}"


def _kind_text(side, target):
    if side.get("fits") is False:
        return f"packed count, it does not fit {target}"
    return {"placed": "placed count", "packed": "packed count",
            "synthesis": "count after synthesis",
            "synthesis-estimate": "estimate after synthesis, not placed"}.get(
                side.get("area_kind"), side.get("area_kind") or "?")


def reduction_line(rep):
    """``area reduction 68.1%``, saying which count each side has when they differ or a
    side does not fit; None without a baseline."""
    d, bl, target = rep["design"], rep["baseline"], rep["target"]
    if bl.get("area") is None or rep.get("area_reduction") is None:
        return None
    line = f"  area reduction {rep['area_reduction']:.1%} (1 - core/baseline)"
    kinds = (_kind_text(d, target), _kind_text(bl, target))
    if kinds[0] != kinds[1] or d.get("fits") is False:
        line += f": core {kinds[0]}; baseline {kinds[1]}"
    return line


def format_report(rep):
    """The summary ``hamattn synth`` prints: per side its area (with thousands separators),
    flip-flops, BRAM, on placed targets whether it fits the device with the harness, and
    Fmax or why there is none; the reduction line says which counts it compares."""
    d, bl = rep["design"], rep["baseline"]
    tgt = TARGETS[rep["target"]]
    unit = rep["area_unit"]
    lines = [f"target {tgt.name}: {tgt.description}; area in {PLURAL.get(unit, unit)}"]
    if tgt.family == "gates":
        lines.append("  memories as SRAM macros (6 transistors per bit plus their ports' "
                     "decoders, sense amplifiers and drivers), the rest as gates and FFs")
    lines.append(_side_line("core", d, rep))
    if bl.get("area") is not None:
        lines.append(_side_line("baseline", bl, rep))
        lines.append(reduction_line(rep))
    if rep.get("baseline_dsp"):
        b = rep["baseline_dsp"]
        red = b.get("area_reduction")
        lines.append(f"  baseline with DSP blocks: {amount(b['area'], rep['area_unit'])} + "
                     f"{b['dsps']} DSPs ({_kind_text(b, rep['target'])})"
                     + ("" if red is None else
                        f": area reduction {red:.1%} when the DSPs are free"))
    if tgt.family != "gates" and bl.get("area") is not None:
        lines.append("  (the headline reduction is the one on --target gates, where no "
                     "block is free)")
    if d.get("critical_path"):
        c = d["critical_path"]
        lines.append(f"  critical path {c['from']} -> {c['to']}, {c['delay_ns']} ns "
                     f"({c['from_net']} -> {c['to_net']})")
    if rep.get("fmax_ceiling_mhz"):
        lines.append(f"  Fmax ceiling of the fabric {rep['fmax_ceiling_mhz']} MHz"
                     + (f" (core at {rep['fmax_fraction_of_ceiling']:.0%})"
                        if rep.get("fmax_fraction_of_ceiling") else ""))
    sides = [("core", rep["throughput"])]
    if rep.get("baseline_throughput"):
        sides.append(("baseline", rep["baseline_throughput"]))
    if (rep.get("baseline_dsp") or {}).get("throughput"):
        sides.append(("baseline with DSPs", rep["baseline_dsp"]["throughput"]))
    for name, t in sides:
        lines.append(f"  {name}: {_throughput_text(t)}")
    return "\n".join(lines)


def _throughput_text(t):
    """``8,769 cycles per token (32 + 8,737); 3,718 tokens/s, 744.1 per 1,000 cells`` for
    windows of N keys."""
    text = (f"{t['cycles_per_token']:,} cycles per token ({t['kv_interval']:,} per key + "
            f"{t['q_interval']:,} per query, {t['window_keys']} keys)")
    if t.get("tokens_per_s"):
        text += f"; {t['tokens_per_s']:,.0f} tokens/s at Fmax"
        if t.get("tokens_per_s_per_1k_cells"):
            text += f", {t['tokens_per_s_per_1k_cells']:,.1f} per 1,000 cells"
    return text


def run_synth(cfg, args):
    """``hamattn synth``: print the summary; write the JSON to ``--json`` when given."""
    rep = synth_config(cfg, args.target, build_dir=args.build_dir or "build/synth",
                       baseline=not args.no_baseline, seed=args.pnr_seed,
                       progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    print(format_report(rep))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"wrote {args.json}")
    return 0
