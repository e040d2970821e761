"""Reading what nextpnr writes: its device utilisation table and its ``--report`` JSON.

One parser used by every flow that runs nextpnr (``hamattn synth``'s placed flow, the board
build, the goal benchmark), so they cannot disagree on what was used or achieved.

* :func:`utilisation_table` reads the 'Device utilisation' table nextpnr logs after packing,
  before placement (``Info: \\t  ICESTORM_LC:   30594/   5280   579%``): ``{cell type: (used,
  available)}``. Its counts are those placement then uses, so a design that does not fit is
  reported from it without a (hopeless) placement.
* :func:`overuse` lists the rows of such a table above 100 %.
* :func:`read_report` reads the ``--report`` JSON of a finished place-and-route:
  utilisation ``{cell type: {"used", "available"}}``, achieved and constrained Fmax per
  clock (MHz; ``None`` where nextpnr gave none) and the critical path
  (:func:`critical_path`), which :func:`path_text` writes on one line.
"""

from __future__ import annotations

import json
import pathlib
import re
from dataclasses import dataclass

__all__ = ["utilisation_table", "overuse", "read_report", "critical_path", "path_text",
           "PnrReport"]

_UTIL_LINE = re.compile(r"^Info:\s+([A-Za-z0-9_]+):\s+(\d+)/\s*(\d+)\s+\d+%")


def utilisation_table(log_path):
    """``{cell type: (used, available)}`` from the first 'Device utilisation' table in the
    nextpnr log at ``log_path`` (``{}`` if the file is missing or has none)."""
    out = {}
    try:
        lines = pathlib.Path(log_path).read_text(errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        m = _UTIL_LINE.match(line.strip())
        if m and m[1] not in out:
            out[m[1]] = (int(m[2]), int(m[3]))
    return out


def overuse(table):
    """``[(cell type, used, available)]`` of the rows of a :func:`utilisation_table` that use
    more than is available, in table order."""
    return [(k, u, a) for k, (u, a) in table.items() if u > a]


@dataclass(frozen=True)
class PnrReport:
    """A nextpnr ``--report`` JSON: ``utilization`` ``{cell type: {"used", "available"}}``
    (ints), ``fmax`` / ``constraint`` ``{clock: MHz or None}`` (as nextpnr wrote them),
    ``critical_path`` (:func:`critical_path`)."""
    utilization: dict
    fmax: dict
    constraint: dict
    critical_path: dict | None

    def used(self):
        """``{cell type: used}`` of the cell types with a non-zero use."""
        return {k: v["used"] for k, v in self.utilization.items() if v["used"]}

    def available(self):
        """``{cell type: available}`` of the cell types with a non-zero use."""
        return {k: v["available"] for k, v in self.utilization.items() if v["used"]}


def read_report(path):
    """The :class:`PnrReport` of the nextpnr ``--report`` JSON file at ``path``."""
    report = json.loads(pathlib.Path(path).read_text())
    util = {k: {"used": int(v.get("used", 0)), "available": int(v.get("available", 0))}
            for k, v in report.get("utilization", {}).items()}
    fmax = report.get("fmax", {})
    return PnrReport(utilization=util,
                     fmax={clk: v.get("achieved") for clk, v in fmax.items()},
                     constraint={clk: v.get("constraint") for clk, v in fmax.items()},
                     critical_path=critical_path(report))


def critical_path(report):
    """The critical path of nextpnr's ``--report`` JSON: the register-to-register path of
    the slowest clock, as ``{"from", "to", "delay_ns", "clock", "from_net", "to_net"}``:
    the start and end cells, the sum of the path's delays (clock-to-out, logic, routing,
    setup: 1000 / Fmax), the clock (a key of its ``fmax``), the first and last nets (named
    after the generated Verilog's signals, e.g. ``dut.core.divider.stage3_r0``). None
    without such a path."""
    paths = {}
    for p in report.get("critical_paths", []):
        clock = p.get("from", "").removeprefix("posedge ").removeprefix("negedge ")
        if p.get("path") and p.get("from") == p.get("to") and clock in report.get("fmax", {}):
            paths[clock] = p["path"]
    if not paths:
        return None
    clock = min(paths, key=lambda c: report["fmax"][c].get("achieved") or float("inf"))
    path = paths[clock]
    nets = [seg["net"] for seg in path if seg.get("net")]
    return {"from": path[0]["from"]["cell"], "to": path[-1]["to"]["cell"],
            "delay_ns": round(sum(seg["delay"] for seg in path), 3), "clock": clock,
            "from_net": nets[0] if nets else None, "to_net": nets[-1] if nets else None}


def path_text(path):
    """``from_net -> to_net (delay ns)`` of a :func:`critical_path` (the nets carry the
    generated signals' names; the cells where a net is missing)."""
    return (f"{path.get('from_net') or path['from']} -> {path.get('to_net') or path['to']} "
            f"({path['delay_ns']} ns)")
