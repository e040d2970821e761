"""The slowest register-to-register paths of a placed design, read from nextpnr's SDF.

nextpnr's ``--report`` names one critical path per clock (:func:`~.nextpnr.critical_path`),
so each fix of a design with many paths near that delay shows only the next one. Given
``--sdf FILE``, nextpnr also writes every delay it timed the design with, as SDF:

* ``IOPATH A B``: through a cell from input pin ``A`` to output pin ``B``; from a clock pin
  (``CLK``, ``RCLK``, ``WCLK``) it is the clock-to-output delay where a path starts;
* ``INTERCONNECT A B``: a routed wire from one cell's pin to another's;
* ``TIMINGCHECK (SETUPHOLD ...)``: the setup of a clocked input, where a path ends.

:func:`read_sdf` builds that graph; :func:`top_paths` gives the latest arrival plus setup at
each clocked input, slowest first, each with the pins it crosses: one path per end cell (its
worst input) and one per last net (a driver that reaches many end cells, as a clock enable
does, is listed once with the count of its end cells). Both flows keep the slowest :data:`REPORT_PATHS` in their reports
(``top_paths``: from/to cells, delay, cells crossed) next to nextpnr's own critical path,
which stays the authority for Fmax; one clock domain is assumed, as in every hamattn build.
From the shell, with every step of the slowest paths::

    python -m hamattn.synth.paths build/goals/icebreaker-linear-P1-T8 --top 20 --steps 3
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["REPORT_PATHS", "TimingGraph", "parse_sdf", "read_sdf", "top_paths", "find_sdf",
           "report_paths", "build_parser", "main"]

#: how many paths a synthesis or board report keeps
REPORT_PATHS = 20

_TOKEN = re.compile(r'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+')
_CLOCK_PINS = frozenset({"CLK", "RCLK", "WCLK", "CLKA", "CLKB", "CLK0", "CLK1"})


@dataclass
class TimingGraph:
    """``edges`` ``{(cell, pin): [((cell, pin), ps)]}`` through cells and wires; ``starts``
    ``{(cell, output pin): clock-to-output ps}``; ``setups`` ``{(cell, input pin): ps}``."""
    edges: dict = field(default_factory=lambda: defaultdict(list))
    starts: dict = field(default_factory=dict)
    setups: dict = field(default_factory=dict)


def _tree(text):
    """The SDF text as nested lists of atoms (strings without their quotes)."""
    stack, top = [], []
    cur = top
    for tok in _TOKEN.findall(text):
        if tok == "(":
            stack.append(cur)
            cur.append([])
            cur = cur[-1]
        elif tok == ")":
            if not stack:
                raise ValueError("unbalanced ')' in the SDF")
            cur = stack.pop()
        else:
            cur.append(tok[1:-1] if tok.startswith('"') else tok)
    if stack:
        raise ValueError("unbalanced '(' in the SDF")
    return top


def _name(s):
    """An SDF identifier without its escapes (``core\\.x`` -> ``core.x``)."""
    return re.sub(r"\\(.)", r"\1", s)


def _ps(value):
    """The largest of an SDF delay triple ``(min:typ:max)``, in the file's unit (ps)."""
    return max(int(round(float(x))) for x in value[0].split(":") if x)


def _pin(path):
    cell, _, pin = _name(path).rpartition("/")
    return cell, pin


def parse_sdf(text):
    """The :class:`TimingGraph` of nextpnr's SDF ``text``."""
    g = TimingGraph()
    root = _tree(text)
    cells = root[0][1:] if root and root[0] and root[0][0] == "DELAYFILE" else root
    for cell in cells:
        if not isinstance(cell, list) or not cell or cell[0] != "CELL":
            continue
        inst = ""
        for item in cell[1:]:
            if item[0] == "INSTANCE":
                inst = _name(item[1]) if len(item) > 1 else ""
            elif item[0] == "DELAY":
                for kind in item[1:]:
                    for e in kind[1:]:
                        if e[0] == "INTERCONNECT":
                            g.edges[_pin(e[1])].append((_pin(e[2]), _ps(e[3])))
                        elif e[0] == "IOPATH":
                            src, dst, d = e[1], e[2], _ps(e[3])
                            if src in _CLOCK_PINS:
                                g.starts[(inst, dst)] = max(g.starts.get((inst, dst), 0), d)
                            else:
                                g.edges[(inst, src)].append(((inst, dst), d))
            elif item[0] == "TIMINGCHECK":
                for c in item[1:]:
                    if c[0] in ("SETUPHOLD", "SETUP"):
                        pin = (inst, c[1][-1] if isinstance(c[1], list) else c[1])
                        g.setups[pin] = max(g.setups.get(pin, 0), _ps(c[3]))
    return g


def read_sdf(path):
    """The :class:`TimingGraph` of the SDF file at ``path``."""
    return parse_sdf(pathlib.Path(path).read_text())


def _arrivals(g):
    """Latest arrival (ps) and its predecessor at every pin reached from a path start."""
    reach, stack = set(), list(g.starts)
    while stack:
        n = stack.pop()
        if n not in reach:
            reach.add(n)
            stack.extend(d for d, _ in g.edges.get(n, ()) if d not in g.starts)
    indeg = defaultdict(int)
    for n in reach:
        for d, _ in g.edges.get(n, ()):
            if d in reach and d not in g.starts:
                indeg[d] += 1
    arrival, pred = dict(g.starts), dict.fromkeys(g.starts)
    ready = [n for n in reach if indeg[n] == 0]
    while ready:
        n = ready.pop()
        at = arrival.get(n, 0)
        for d, ps in g.edges.get(n, ()):
            if d in g.starts or d not in reach:
                continue
            if at + ps > arrival.get(d, -1):
                arrival[d], pred[d] = at + ps, n
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    return arrival, pred


def _path(pred, end):
    path, n = [], end
    while n is not None:
        path.append(n)
        n = pred.get(n)
    return path[::-1]


def top_paths(g, count=REPORT_PATHS, through=None):
    """The ``count`` slowest paths of ``g``, slowest first: ``{"from", "to", "to_pin",
    "delay_ns", "cells", "ends", "steps"}``. ``delay_ns`` is the arrival plus the setup of
    the end pin (each end cell counted at its worst input); paths whose last wire comes from
    the same driver pin (one net fanning out, often with equal delays) are one entry, the
    slowest, and ``ends`` counts the end cells of that net. ``cells``: the cells the path
    passes through between its ends; ``steps`` ``[{"cell", "pin", "at_ns"}]`` every pin from
    the start. ``through``: only paths with a cell whose name contains it."""
    arrival, pred = _arrivals(g)
    worst = {}
    for n, s in g.setups.items():
        if n in arrival and n not in g.starts:
            t = arrival[n] + s
            if n[0] not in worst or t > worst[n[0]][0]:
                worst[n[0]] = (t, n)
    groups = {}                      # driver pin -> [slowest (total, end), end cells]
    for total, end in sorted(worst.values(), reverse=True):
        driver = pred.get(end) or end
        if driver in groups:
            groups[driver][1] += 1
        else:
            groups[driver] = [(total, end), 1]
    out = []
    for (total, end), ends in groups.values():
        path = _path(pred, end)
        if through and not any(through in cell for cell, _ in path):
            continue
        crossed = {cell for cell, _ in path[1:-1]} - {path[0][0], end[0]}
        out.append({"from": path[0][0], "to": end[0], "to_pin": end[1],
                    "delay_ns": round(total / 1000, 3), "cells": len(crossed), "ends": ends,
                    "steps": [{"cell": c, "pin": p, "at_ns": round(arrival[(c, p)] / 1000, 3)}
                              for c, p in path]})
        if len(out) >= count:
            break
    return out


def report_paths(sdf_path, count=REPORT_PATHS):
    """What a report keeps of the SDF at ``sdf_path``: :func:`top_paths` without their steps,
    or ``None`` when nextpnr wrote no SDF (a design that did not fit)."""
    sdf_path = pathlib.Path(sdf_path)
    if not sdf_path.exists():
        return None
    return [{k: v for k, v in p.items() if k != "steps"}
            for p in top_paths(read_sdf(sdf_path), count)]


def find_sdf(where):
    """The SDF file ``where`` names: the file itself, or the only ``*.sdf`` in a build
    folder (searched below it). Raises ``FileNotFoundError`` saying what was looked for."""
    p = pathlib.Path(where)
    if p.is_file():
        return p
    if p.is_dir():
        found = sorted(p.rglob("*.sdf"))
        if len(found) == 1:
            return found[0]
        if found:
            raise FileNotFoundError(f"{where} holds {len(found)} SDF files: name one of "
                                    + ", ".join(str(f) for f in found[:5]))
    raise FileNotFoundError(f"no SDF file at {where} (an SDF file, or a build folder with "
                            f"one: `hamattn synth` and `hamattn board` builds write it)")


def build_parser():
    """The command line of ``python -m hamattn.synth.paths``."""
    ap = argparse.ArgumentParser(
        prog="python -m hamattn.synth.paths",
        description="The slowest register-to-register paths of a placed design, from the SDF "
                    "that nextpnr wrote (one path per end cell and per last net, slowest "
                    "first).")
    ap.add_argument("where", help="an SDF file, or a build folder that holds one")
    ap.add_argument("--top", type=int, default=REPORT_PATHS, metavar="N",
                    help=f"how many paths (default {REPORT_PATHS})")
    ap.add_argument("--steps", type=int, default=1, metavar="K",
                    help="show every pin of the K slowest paths (default 1)")
    ap.add_argument("--through", metavar="TEXT",
                    help="only paths through a cell whose name contains TEXT")
    ap.add_argument("--json", action="store_true", help="print JSON")
    return ap


def main(argv=None):
    ap = build_parser()
    a = ap.parse_args(argv)
    if a.top < 1 or a.steps < 0:
        ap.error(f"--top must be at least 1 and --steps at least 0 (got {a.top}, {a.steps})")
    try:
        sdf = find_sdf(a.where)
        paths = top_paths(read_sdf(sdf), a.top, a.through)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(paths, indent=1))
        return 0
    print(f"{sdf}: {len(paths)} slowest paths")
    for i, p in enumerate(paths):
        more = f", {p['ends'] - 1} more end cells of its last net" if p["ends"] > 1 else ""
        print(f"{p['delay_ns']:7.2f} ns  {p['from']} -> {p['to']}.{p['to_pin']}  "
              f"({p['cells']} cells between{more})")
        if i < a.steps:
            prev = 0.0
            for s in p["steps"]:
                print(f"           {s['at_ns']:7.2f} (+{s['at_ns'] - prev:5.2f})  "
                      f"{s['cell']}.{s['pin']}")
                prev = s["at_ns"]
    return 0


if __name__ == "__main__":
    sys.exit(main())
