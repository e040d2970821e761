"""Every long register-to-register path of a synthesized netlist, not just the worst one.

nextpnr reports one critical path per clock. When a design has many paths near that delay,
removing the worst shows the next, one place-and-route at a time. This module reads the
netlist that nextpnr reads (Yosys ``write_json`` after ``synth_ice40`` / ``synth_ecp5``: the
``<name>.json`` of a ``hamattn board`` or ``bench.goals`` build directory) and estimates the
arrival time of every register, block-RAM and LUT-RAM input with a unit delay model, so
that all paths longer than a target are listed at once, grouped by source and destination
register.

The model (nanoseconds, per device family, :data:`MODELS`) is a clock-to-out, a logic
delay per LUT, a carry delay per carry cell in a chain, one routing hop per net between
cells (none along a carry chain), and a setup. A clock-enable or set/reset net with a fanout
of at least ``global_fanout`` is one that nextpnr promotes to a global buffer, which costs
``global_extra`` more. It places nothing, so it ranks paths rather than predicting Fmax:
the real delays of the iCEBreaker goal builds are within about 20 % of it; a build proves
a change, this finds what to change.

Command line::

    python -m hamattn.synth.depth build/goals/icebreaker-linear-P1-T8 --target-mhz 68
    python -m hamattn.synth.depth build/fmax/ulx3s-linear-s1/hamattn_board.json --json
    python -m hamattn.synth.depth --candidate icebreaker-topk-P1-M2 --target-mhz 68

The last synthesizes a ``bench.goals`` candidate's board top with Yosys alone (no place and
route: about a minute on the iCE40) into ``build/depth/<candidate>`` and analyses that, so
that a change to the RTL can be judged before a full build.

prints, for each (source register, destination register) pair with an estimated delay over
the target, the worst estimate, the LUT levels on that path and how many destination bits
it reaches; ``--json`` writes the same as a list of objects.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

from .. import process
from .tools import ToolError, run_yosys

__all__ = ["MODELS", "DepthError", "analyse", "format_table", "synthesize_candidate", "main"]


class DepthError(Exception):
    """A netlist that cannot be analysed (missing, not Yosys JSON, unknown family)."""


# Per family: which cell types are combinational and how their outputs depend on inputs,
# which are sequential (their outputs start paths, their inputs end them), and delays in ns.
# Fitted by hand to the critical paths nextpnr 0.11 printed for the iCEBreaker and ULX3S
# goal builds (routing hop = the median hop of those paths).
MODELS = {
    "ice40": {
        "clk_to_q": 1.4, "ram_clk_to_q": 2.3, "lut": 1.0, "carry": 0.2, "route": 1.8,
        "setup": 0.3, "global_fanout": 64, "global_extra": 3.7,
        "luts": {"SB_LUT4": (("I0", "I1", "I2", "I3"), ("O",))},
        "carries": {"SB_CARRY": (("I0", "I1"), "CI", ("CO",))},
        "ffs": re.compile(r"^SB_DFF"),
        "rams": re.compile(r"^SB_(RAM|SPRAM)"),
        "lutrams": {},
        "enables": ("E", "R", "S"),
    },
    "ecp5": {
        "clk_to_q": 0.5, "ram_clk_to_q": 1.0, "lut": 0.3, "carry": 0.06, "route": 0.75,
        "setup": 0.1, "global_fanout": 10**9, "global_extra": 0.0,
        "luts": {"LUT4": (("A", "B", "C", "D"), ("Z",)),
                 "PFUMX": (("ALUT", "BLUT", "C0"), ("Z",)),
                 "L6MUX21": (("D0", "D1", "SD"), ("Z",))},
        "carries": {"CCU2C": (("A0", "B0", "C0", "D0", "A1", "B1", "C1", "D1"), "CIN",
                              ("S0", "S1", "COUT"))},
        "ffs": re.compile(r"^TRELLIS_FF$"),
        "rams": re.compile(r"^(DP16KD|PDPW16KD)$"),
        # LUT-RAM: the read is combinational from the read address.
        "lutrams": {"TRELLIS_DPR16X4": (("RAD",), ("DO",))},
        "enables": ("CE", "LSR"),
    },
}


def _family(cell_types):
    if any(t.startswith("SB_") for t in cell_types):
        return "ice40"
    if any(t.startswith("TRELLIS_") or t in ("LUT4", "CCU2C") for t in cell_types):
        return "ecp5"
    raise DepthError("netlist has neither iCE40 (SB_*) nor ECP5 (TRELLIS_*, LUT4) cells")


def _load(path):
    p = pathlib.Path(path)
    if p.is_dir():
        cands = sorted(q for q in p.glob("*.json")
                       if not q.name.endswith((".report.json", ".stat.json"))
                       and not q.name.startswith("build_"))
        if not cands:
            raise DepthError(f"netlist: no Yosys JSON netlist in directory {str(p)!r}")
        p = cands[0]
    if not p.is_file():
        raise DepthError(f"netlist: {str(p)!r} is not a file or a build directory")
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise DepthError(f"netlist: cannot read {str(p)!r} as JSON: {e}") from None
    mods = data.get("modules") if isinstance(data, dict) else None
    if not isinstance(mods, dict):
        raise DepthError(f"netlist: {str(p)!r} is not a Yosys JSON netlist (no 'modules')")
    tops = [m for m in mods.values() if int(str(m.get("attributes", {}).get("top", "0")), 2)]
    if len(tops) != 1:
        raise DepthError(f"netlist: {str(p)!r} has {len(tops)} top modules, expected 1 "
                         "(a flattened netlist, as nextpnr reads)")
    return p, tops[0]


_BIT = re.compile(r"\[\d+\]$")


def _base(name):
    """A register's name without its bit index and Yosys's cell-name suffixes."""
    name = name.lstrip("\\")
    name = re.sub(r"_(SB_|TRELLIS_|LUT4_|CCU2C_|PFUMX_|L6MUX21_|DP16KD_|\$).*$", "", name)
    return _BIT.sub("", name)


def _bits(conn, ports):
    """The net bits (not constants) of ``ports`` of a cell's connections."""
    return [b for port in ports for b in conn.get(port, ()) if isinstance(b, int)]


def analyse(path, *, target_mhz=None, model=None):
    """Estimated arrival at every sequential input of the netlist at ``path``.

    Returns ``{"netlist", "family", "model", "target_ns", "paths": [{"from", "to", "ns",
    "levels", "bits", "global"}, ...]}`` with one entry per (source register, destination
    register), worst first; ``from``/``to`` are register (or memory) names, ``levels`` the
    LUT levels on the worst path, ``bits`` how many destination inputs it reaches, ``global``
    whether it ends on an enable or reset that nextpnr would put on a global buffer. With
    ``target_mhz`` only pairs slower than ``1000 / target_mhz`` ns are listed."""
    p, top = _load(path)
    cells = top.get("cells", {})
    fam = _family({c["type"] for c in cells.values()})
    m = dict(MODELS[fam], **(model or {}))

    names = {}
    for n, info in top.get("netnames", {}).items():
        for i, b in enumerate(info["bits"]):
            if isinstance(b, int):
                label = n if len(info["bits"]) == 1 else f"{n}[{i}]"
                old = names.get(b)
                if old is None or (info.get("hide_name", 0), len(label)) < old[0]:
                    names[b] = ((info.get("hide_name", 0), len(label)), label)
    names = {b: v[1] for b, v in names.items()}

    fanout = {}
    for c in cells.values():
        ins = [p for p, d in c["port_directions"].items() if d == "input"]
        for b in _bits(c["connections"], ins):
            fanout[b] = fanout.get(b, 0) + 1

    # the driver of each net bit: start[bit] = clock-to-out of a sequential cell's output;
    # comb[bit] = ("lut", input bits) or ("carry", input bits, carry-in bits)
    start, comb = {}, {}
    seq_inputs = []

    for cname, c in cells.items():
        t, conn = c["type"], c["connections"]
        if t in m["luts"] or t in m["lutrams"]:
            ins, outs = (m["luts"] if t in m["luts"] else m["lutrams"])[t]
            for b in _bits(conn, outs):
                comb[b] = ("lut", _bits(conn, ins))
            if t in m["lutrams"]:  # its write side ends paths
                seq_inputs += [(cname, t, port, pbits) for port, pbits in conn.items()
                               if c["port_directions"].get(port) == "input"
                               and port not in ins]
        elif t in m["carries"]:
            ins, ci, outs = m["carries"][t]
            for b in _bits(conn, outs):
                comb[b] = ("carry", _bits(conn, ins), _bits(conn, (ci,)))
        elif m["ffs"].match(t) or m["rams"].match(t):
            delay = m["clk_to_q"] if m["ffs"].match(t) else m["ram_clk_to_q"]
            for port, bits in conn.items():
                d = c["port_directions"].get(port)
                if d == "output":
                    for b in bits:
                        if isinstance(b, int):
                            start[b] = delay
                elif d == "input" and not port.startswith(("C", "RCLK", "WCLK", "CLK")) \
                        or port in ("CE", "CEA", "CEB", "RCLKE", "WCLKE"):
                    seq_inputs.append((cname, t, port, bits))

    memo = {}

    visiting = object()

    def arrival(b):
        """(ns, LUT levels, source bit) of net bit b; iterative, for long carry chains.
        A combinational loop is cut where it closes (that input counts as 0)."""
        stack = [(b, False)]
        while stack:
            x, expanded = stack.pop()
            have = memo.get(x)
            if have is not None and (have is not visiting or not expanded):
                continue
            if x in start:
                memo[x] = (start[x], 0, x)
                continue
            drv = comb.get(x)
            if drv is None:  # a top-level input or a constant: starts at 0
                memo[x] = (0.0, 0, x)
                continue
            deps = list(drv[1]) + (list(drv[2]) if drv[0] == "carry" else [])
            if not expanded:
                memo[x] = visiting
                stack.append((x, True))
                stack.extend((d, False) for d in deps if d not in memo)
                continue

            def at(d):
                v = memo.get(d)
                return (0.0, 0, d) if v is None or v is visiting else v

            best = (0.0, 0, x)
            step = m["lut"] if drv[0] == "lut" else m["carry"]
            for d in drv[1]:
                a = at(d)
                best = max(best, (a[0] + m["route"] + step, a[1] + 1, a[2]))
            if drv[0] == "carry":
                for d in drv[2]:
                    a = at(d)
                    best = max(best, (a[0] + m["carry"], a[1], a[2]))
            memo[x] = best
        return memo[b]

    target = 1000.0 / target_mhz if target_mhz else None
    pairs = {}
    for cname, t, port, bits in seq_inputs:
        # the destination is named after the cell's (first) output net, else the cell
        outs = _bits(cells[cname]["connections"], ("Q", "RDATA", "DO", "Q0"))
        dst = _base(names[outs[0]] if outs and outs[0] in names else cname)
        for b in bits:
            if not isinstance(b, int):
                continue
            a = arrival(b)
            glob = port in m["enables"] and fanout.get(b, 0) >= m["global_fanout"]
            ns = a[0] + m["route"] + m["setup"] + (m["global_extra"] if glob else 0.0)
            if target is not None and ns <= target:
                continue
            src = _base(names.get(a[2], f"net{a[2]}"))
            key = (src, dst)
            old = pairs.get(key)
            if old is None:
                pairs[key] = {"from": src, "to": dst, "ns": round(ns, 2), "levels": a[1],
                              "bits": 1, "global": glob}
            else:
                old["bits"] += 1
                if ns > old["ns"]:
                    old.update(ns=round(ns, 2), levels=a[1], **{"global": glob})
    paths = sorted(pairs.values(), key=lambda r: (-r["ns"], r["from"], r["to"]))
    return {"netlist": str(p), "family": fam, "target_ns": target,
            "model": {k: v for k, v in m.items() if isinstance(v, (int, float))},
            "paths": paths}


def format_table(result, top=40):
    """A Markdown table of the ``top`` worst (source, destination) pairs."""
    rows = result["paths"][:top]
    lines = ["| est. ns | LUT levels | bits | from | to |", "|---:|---:|---:|---|---|"]
    for r in rows:
        g = " (global enable)" if r["global"] else ""
        lines.append(f"| {r['ns']:.1f} | {r['levels']} | {r['bits']} | `{r['from']}` | "
                     f"`{r['to']}`{g} |")
    more = len(result["paths"]) - len(rows)
    tgt = result["target_ns"]
    head = (f"{len(result['paths'])} register pairs"
            + (f" over {tgt:.2f} ns" if tgt else "")
            + f" ({result['family']} model, {result['netlist']})")
    return "\n".join([head, ""] + lines + ([f"\n... and {more} more (--top)"] if more > 0 else []))


def synthesize_candidate(name, build_dir=None, progress=print):
    """Run only the Yosys step of ``bench.goals`` candidate ``name``'s board build into
    ``build_dir`` (default ``build/depth/<name>``); return the netlist's path."""
    from ..bench import goals
    from ..errors import UserError
    from . import board as boardmod
    cands = goals.all_candidates()
    if name not in cands:
        raise DepthError(f"--candidate {name!r} is not allowed: one of "
                         f"{', '.join(sorted(cands))}")
    goal, fold = cands[name]
    brd_name = goals.GOALS[goal][0]
    cfg = goals.config_of(goal, fold)
    out = pathlib.Path(build_dir or pathlib.Path("build") / "depth" / name)
    try:
        _, _, plan = boardmod.prepare_board(cfg, brd_name)
    except UserError as e:
        raise DepthError(str(e)) from None
    out.mkdir(parents=True, exist_ok=True)
    plan.extract(out)
    netlist = out / f"{boardmod.DESIGN_NAME}.json"
    netlist.unlink(missing_ok=True)
    progress(f"{name}: Yosys in {out} (no place and route)")
    try:
        run_yosys(plan.files[f"{boardmod.DESIGN_NAME}.ys"], cwd=out, name="depth")
    except ToolError as e:
        raise DepthError(f"candidate {name}: {e} (log: {e.log_path})") from None
    if not netlist.is_file():
        raise DepthError(f"candidate {name}: Yosys wrote no {netlist}")
    return netlist


def build_parser():
    """The command line's parser (also used by the docs' parse check)."""
    ap = argparse.ArgumentParser(
        prog="python -m hamattn.synth.depth",
        description="List every long register-to-register path of a synthesized netlist "
                    "(Yosys JSON, as nextpnr reads it), estimated with a unit delay model.")
    ap.add_argument("netlist", nargs="?",
                    help="a Yosys JSON netlist, or a build directory holding one")
    ap.add_argument("--candidate", metavar="NAME",
                    help="synthesize this bench.goals candidate's board top (Yosys only, "
                         "into build/depth/NAME) and analyse it")
    ap.add_argument("--target-mhz", type=float, default=None,
                    help="list only paths slower than this clock (default: every path)")
    ap.add_argument("--top", type=int, default=40, help="rows of the table (default 40)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return ap


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.target_mhz is not None and not args.target_mhz > 0:
        ap.error(f"--target-mhz = {args.target_mhz} is not allowed: a frequency above 0")
    if args.top < 1:
        ap.error(f"--top = {args.top} is not allowed: an integer of at least 1")
    if (args.netlist is None) == (args.candidate is None):
        ap.error("give either a netlist or --candidate NAME")
    try:
        netlist = args.netlist
        if args.candidate:
            netlist = synthesize_candidate(args.candidate,
                                           progress=lambda m: print(m, file=sys.stderr))
        res = analyse(netlist, target_mhz=args.target_mhz)
    except DepthError as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=1) if args.json else format_table(res, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(process.stoppable("python -m hamattn.synth.depth", main))
