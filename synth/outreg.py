"""Absorb the fabric register after an ECP5 block RAM read into the RAM's output register.

Yosys maps every inferred memory of the ECP5 to ``DP16KD`` cells (its ``PDPW16KD`` mapping is
a ``DP16KD`` too) with ``REGMODE_A/B = "NOREG"``: the read data leaves the block through the
RAM's output latch, whose clock-to-output is 5.83 ns on the LFE5U-25F-6 (nextpnr's timing
database), against about 0.95 ns with the block's output register (``"OUTREG"``). Stock
Yosys never uses that register (yosys issue #5814). hamattn's RTL reads every block RAM into
a plain register; :func:`absorb` (``python -m hamattn.synth.outreg NETLIST``) moves that
register into the RAM, on Yosys' JSON netlist, between Yosys and nextpnr (the ``hamattn
board`` flow, the goal benchmark and ``hamattn synth --target ecp5-25k``).

The pattern (every condition checked; anything else is left as it is, counted under a reason
in :attr:`Result.left`). For one read port of a ``DP16KD`` (``A`` or ``B`` with 18 data bits
each; in the 36-bit pseudo-dual-port mode of Yosys' PDPW16KD mapping, ``DATA_WIDTH_A = 36``,
the one read port reads through ``DOA`` and ``DOB`` and is clocked by ``CLKB``):

* ``REGMODE = "NOREG"``; in the 36-bit mode both ``CLKA`` and ``CLKB`` are the same net with
  the same polarity (then which of the two clocks/enables the hardware uses for the ``DOA``
  half's register does not matter: both get the same), else ``"36-bit port"``; the port's
  reset ``RST`` tied to 0 (both in the 36-bit mode: ``"RAM reset"``);
* every ``DO`` bit with a load drives exactly one load (``"other loads"``: a second cell
  input or a module port), which is the ``DI`` input of a ``TRELLIS_FF`` (else ``"collision
  bypass"`` when that load is Yosys' read/write collision logic, see below, or ``"not a
  register"``);
* each such flip-flop is clocked by the RAM port's clock net with the same polarity
  (``CLKMUX`` against ``CLKxMUX``; ``"other clock"``), has no set/reset (its ``LSR`` absent or
  tied inactive: ``"register reset"``; Amaranth's ``sync`` signals have a synchronous reset
  unless ``reset_less=True``), powers up at 0 (``REGSET = "RESET"``: ``"register init"``)
  and has the RAM's ``GSR`` setting (``"GSR"``);
* all those flip-flops share one clock enable: none (``CEMUX = "1"`` or ``CE`` tied to 1) or
  one net, not inverted (``"mixed clock enables"``).

The collision bypass: an Amaranth read port that is not transparent for a write port
(``transparent_for=()``) must return the old word when the same address is written in the
same cycle. A DP16KD does not guarantee that across its two ports, so Yosys
(``memory_libmap``) registers the write data and an address-match flag and puts a LUT
(match ? registered write data : ``DO``) between the RAM and the read register. The
register then no longer reads the RAM, and the pattern does not apply; only RTL that
declares such collisions don't-care (``COLLISION_X_MASK`` of the ``$memrd_v2`` port, which
Amaranth 0.5 does not expose) removes the LUT.

Then the port's ``REGMODE`` becomes ``"OUTREG"`` (both ``REGMODE_A`` and ``REGMODE_B`` in the
36-bit mode), its ``OCE`` (both ``OCEA`` and ``OCEB`` in the 36-bit mode) is driven by that
clock enable (or 1), the flip-flops are removed and each ``DO`` bit drives the net its
flip-flop's ``Q`` drove.

Why the result is exact (Lattice TN1264, "ECP5 and ECP5-5G Memory Usage Guide", and the
DP16KD behaviour of the Lattice simulation library it describes). A read port latches the
array word at the address presented at a rising edge of ``CLKx`` where ``CEx`` = 1 (and the
chip select matches) into its output latch; ``NOREG`` drives ``DOx`` from that latch, so
``DOx`` changes only at such edges and holds in between. With ``OUTREG`` an output register
sits between that same latch and ``DOx``: at every rising ``CLKx`` edge where ``OCEx`` = 1 it
loads the latch's value from before the edge; ``RSTx`` (tied to 0 here, so ``RESETMODE`` and
``ASYNC_RESET_RELEASE`` never act) would clear it. The removed fabric flip-flop did exactly
the same: at each rising edge of the same clock where its enable was 1 it loaded ``DOx``,
the latch's value before the edge. ``CEx``, the write port, ``WRITEMODE`` and the chip
selects act on the latch only and are unchanged, so the latch sequence is the same in both
netlists and so is the register sequence, cycle for cycle. Initial state and global reset:
PUR (configuration) resets every storage element, the block's output register to 0 and the
flip-flop to its ``REGSET`` value, required to be ``"RESET"`` (0, what Amaranth's ``init=0``
becomes); a GSR pulse (Amaranth's ECP5 platform drives a ``GSR`` instance from the board's
reset) clears the register in both netlists alike, since the flip-flop and the RAM must
have the same ``GSR`` setting. (hamattn's read registers are ``reset_less`` because no
consumer uses their value before the first read, so the design does not depend on these
values either.) The read latency seen by the design is unchanged (the register was there
before; now it is in the RAM): the pass is a netlist mapping step that changes neither the
Verilog nor the manifest.

The FF's ``Q`` net keeps its name, so nextpnr's critical path still names the RTL register.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["PASS_VERSION", "FAMILIES", "REASONS", "key_parts", "Result", "absorb",
           "absorb_file", "read_report", "summary", "main"]

#: part of the synthesis cache key: bump when what the pass does changes
PASS_VERSION = 2

#: the device families whose flows run the pass
FAMILIES = ("ecp5",)


def key_parts(family):
    """What a build's cache key adds for the pass: ``{"outreg": PASS_VERSION}`` for a
    family that runs it (so results built before the pass, or by another version of it,
    are not reused), ``{}`` for the others (their keys stay as they were)."""
    return {"outreg": PASS_VERSION} if family in FAMILIES else {}


#: the reasons a read port is left in NOREG, in the order they are checked
REASONS = ("36-bit port", "RAM reset", "other loads", "not a register", "other clock",
           "register reset", "register init", "GSR", "mixed clock enables")

_PORT_BITS = 18


@dataclass
class Result:
    """What :func:`absorb` did: ``ports`` read ports set to OUTREG, ``ffs`` flip-flops
    removed, ``left`` {reason: read ports left in NOREG} (:data:`REASONS`)."""
    ports: int = 0
    ffs: int = 0
    luts: int = 0
    copies: int = 0
    left: dict = field(default_factory=dict)

    def as_dict(self):
        """``{"ports", "ffs", "luts", "copies", "left"}``: what the JSON reports say under
        ``bram_outreg``."""
        return {"ports": self.ports, "ffs": self.ffs, "luts": self.luts,
                "copies": self.copies, "left": dict(sorted(self.left.items()))}


def _param(cell, name, default=None):
    """A cell parameter as Yosys' JSON writes it: strings that could read as bit strings get
    a trailing space; bit strings (``"0101"``) are numbers."""
    v = cell.get("parameters", {}).get(name)
    if v is None:
        return default
    if isinstance(v, int):
        return v
    if v.endswith(" "):
        return v[:-1]
    if v and set(v) <= set("01xz"):
        return int(v.replace("x", "0").replace("z", "0"), 2)
    return v


def _conn(cell, port):
    """The single bit on ``port`` of ``cell`` (a net number or a constant string), or None
    when the port is not connected."""
    bits = cell.get("connections", {}).get(port)
    return bits[0] if bits else None


def _sinks(module):
    """{net bit: [(cell name or None for a module port, port)]} of every input that reads
    a net bit (constants excluded)."""
    sinks = defaultdict(list)
    for name, cell in module["cells"].items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell.get("connections", {}).items():
            if dirs.get(port, "input") == "output":
                continue
            for b in bits:
                if isinstance(b, int):
                    sinks[b].append((name, port))
    for pname, port in module.get("ports", {}).items():
        if port.get("direction") in ("output", "inout"):
            for b in port["bits"]:
                if isinstance(b, int):
                    sinks[b].append((None, pname))
    return sinks


def _ff_enable(ff):
    """The FF's clock enable: ``"1"`` (none), a net bit, or None (inverted, never, or not
    stated: Yosys always writes ``CEMUX``)."""
    mux = _param(ff, "CEMUX")
    if mux == "1":
        return "1"
    if mux != "CE":
        return None
    ce = _conn(ff, "CE")
    return "1" if ce in (None, "1") else (ce if isinstance(ce, int) else None)


def _ff_has_reset(ff):
    lsr, mux = _conn(ff, "LSR"), _param(ff, "LSRMUX", "LSR")
    if mux == "LSR":
        return lsr not in (None, "0")
    if mux == "INV":
        return lsr != "1"
    return True


def _clock(cell, clk_port, mux_param, plain):
    mux = _param(cell, mux_param, plain)
    return (_conn(cell, clk_port), mux == "INV")


def _read_ports(ram):
    """[(side, DO ports, control sides)] of the read ports of ``ram``: ``A`` and ``B`` with
    18 DO bits each; in the 36-bit pseudo-dual-port mode (``DATA_WIDTH_A = 36``, Yosys'
    PDPW16KD mapping) one port ``B`` reading through all 36 (``DOA`` and ``DOB``)."""
    if _param(ram, "DATA_WIDTH_A", 18) == 36:
        return [("B", [f"DO{s}{i}" for s in "AB" for i in range(_PORT_BITS)], "AB")]
    return [(s, [f"DO{s}{i}" for i in range(_PORT_BITS)], s) for s in "AB"]


@dataclass
class _Port:
    """One read port of a DP16KD (its DO bits with loads) and what reads them."""
    ram: dict
    sides: str                      # "A", "B", or "AB" (36-bit mode: controls of both)
    used: list                      # [(DO port, net bit)]
    clk: tuple = None
    reason: str = None
    direct: list = field(default_factory=list)     # [(DO port, FF name)]
    luts: dict = field(default_factory=dict)       # {LUT name: FF name}


#: LUT levels a read may pass through on its way to its register (Yosys' collision bypass
#: and depth cascade give one each)
MAX_LUTS = 4


def _path(bit, sinks, module):
    """([LUT names], FF name) of the path from net ``bit`` through LUT4s, each the only
    load of the net before it, to the ``DI`` of a TRELLIS_FF; None if it ends elsewhere."""
    luts = []
    while len(luts) <= MAX_LUTS:
        loads = sinks.get(bit, [])
        if len(loads) != 1 or loads[0][0] is None:
            return None
        name, pin = loads[0]
        cell = module["cells"][name]
        if cell["type"] == "TRELLIS_FF" and pin == "DI":
            return luts, name
        if cell["type"] != "LUT4":
            return None
        luts.append(name)
        bit = _conn(cell, "Z")
    return None


def _scan_port(ram, ports, sides, module, sinks):
    """The :class:`_Port` of a read port in NOREG with loads (its ``reason`` set when it
    cannot absorb a register), or None."""
    used = [(p, _conn(ram, p)) for p in ports]
    used = [(p, b) for p, b in used if isinstance(b, int) and sinks.get(b)]
    if not used or any(_param(ram, "REGMODE_" + s, "NOREG") != "NOREG" for s in sides):
        return None
    port = _Port(ram, sides, used)
    clocks = {_clock(ram, "CLK" + s, f"CLK{s}MUX", "CLK" + s) for s in sides}
    if (_param(ram, "DATA_WIDTH_B", 18) == 36 and sides != "AB") or len(clocks) != 1:
        port.reason = "36-bit port"
        return port
    port.clk = clocks.pop()
    if any(_conn(ram, "RST" + s) not in (None, "0") for s in sides):
        port.reason = "RAM reset"
        return port
    for do, b in used:
        if len(sinks[b]) != 1 or sinks[b][0][0] is None:
            port.reason = "other loads"
            return port
        path = _path(b, sinks, module)
        if path is None:
            port.reason = "not a register"
            return port
        luts, ff = path
        if not luts:
            port.direct.append((do, ff))
        port.luts.update(dict.fromkeys(luts, ff))
    return port


def _cone_at_zero(lut, cone, cells):
    """The output of LUT ``lut`` of the LUT cone ``cone`` ({LUT Z net: LUT name}) when every
    input from outside the cone but the constants is 0: the power-up state of the registers
    that feed it after the pass. None if an input is undefined (``x``)."""
    idx = 0
    for i, pin in enumerate("ABCD"):
        b = _conn(cells[lut], pin)
        v = (_cone_at_zero(cone[b], cone, cells) if b in cone
             else 0 if isinstance(b, int) or b in (None, "0") else 1 if b == "1" else None)
        if v is None:
            return None
        idx |= v << i
    init = _param(cells[lut], "INIT", 0)
    return (init >> idx) & 1 if isinstance(init, int) else None


def _group_reason(group, module):
    """Why a group of read ports (joined by the LUTs they share) cannot take its registers
    into the RAMs, or None; sets nothing."""
    for p in group:
        if p.reason:
            return p.reason
    clk = group[0].clk
    if any(p.clk != clk for p in group):
        return "other clock"
    enables = set()
    for p in group:
        ffs = [n for _, n in p.direct] + list(p.luts.values())
        for name in ffs:
            ff = module["cells"][name]
            if _clock(ff, "CLK", "CLKMUX", "CLK") != clk:
                return "other clock"
            if _ff_has_reset(ff):
                return "register reset"
            if _param(ff, "REGSET", "RESET") != "RESET":
                return "register init"
            if _param(ff, "GSR", "ENABLED") != _param(p.ram, "GSR", "ENABLED"):
                return "GSR"
            enables.add(_ff_enable(ff))
    if len(enables) != 1 or None in enables:
        return "mixed clock enables"
    cells = module["cells"]
    cone = {_conn(cells[lut], "Z"): lut for p in group for lut in p.luts}
    if any(_cone_at_zero(lut, cone, cells) != 0 for p in group for lut, ff in p.luts.items()
           if _conn(cells[lut], "Z") == _conn(cells[ff], "DI")):
        return "register init"
    return None


def _groups(ports, module):
    """The read ports joined into groups: two ports whose reads meet at a LUT or a register
    (Yosys' depth cascade of two blocks) must both take their registers, or neither."""
    owner = {b: i for i, p in enumerate(ports) for _, b in p.used}
    parent = list(range(len(ports)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen = {}                   # LUT or FF name -> a port whose reads reach it
    for i, p in enumerate(ports):
        for name in [*p.luts, *p.luts.values(), *(ff for _, ff in p.direct)]:
            parent[find(seen.setdefault(name, i))] = find(i)
        for lut in p.luts:
            for pin in "ABCD":
                b = _conn(module["cells"][lut], pin)
                if b in owner:
                    parent[find(owner[b])] = find(i)
    groups = defaultdict(list)
    for i in range(len(ports)):
        groups[find(i)].append(ports[i])
    return list(groups.values())


class _Copies:
    """The flip-flops that register a LUT's other inputs one edge later (clocked and
    enabled as the register the LUT fed), one per (net, register settings)."""

    def __init__(self, module):
        self.module = module
        self.next_bit = 1 + max([b for c in module["cells"].values()
                                 for bits in c.get("connections", {}).values() for b in bits
                                 if isinstance(b, int)]
                                + [b for p in module.get("ports", {}).values()
                                   for b in p["bits"] if isinstance(b, int)] + [1])
        self.made = {}

    def of(self, bit, like):
        """The Q bit of the copy of net ``bit`` registered as FF ``like``."""
        key = (bit, json.dumps(like["parameters"], sort_keys=True),
               json.dumps({k: v for k, v in like["connections"].items()
                           if k not in ("DI", "Q")}, sort_keys=True))
        if key not in self.made:
            q = self.next_bit
            self.next_bit += 1
            cell = json.loads(json.dumps(like))
            cell["connections"]["DI"], cell["connections"]["Q"] = [bit], [q]
            name = f"$outreg$copy{len(self.made)}"
            self.module["cells"][name] = cell
            self.module.setdefault("netnames", {})[name + "_Q"] = {"hide_name": 1,
                                                                     "bits": [q]}
            self.made[key] = q
        return self.made[key]


def _absorb_group(group, module, enable, copies, result):
    cells = module["cells"]
    group_bits = {b for p in group for _, b in p.used}
    cone = {_conn(cells[lut], "Z") for p in group for lut in p.luts}
    done = set()
    for p in group:
        for s in p.sides:
            p.ram["parameters"]["REGMODE_" + s] = "OUTREG"
            p.ram["connections"]["OCE" + s] = [enable]
        for do, name in p.direct:
            p.ram["connections"][do] = cells.pop(name)["connections"]["Q"]
            result.ffs += 1
        for lut_name, ff_name in p.luts.items():
            if lut_name in done:             # (a LUT that two ports of the group share)
                continue
            done.add(lut_name)
            lut, ff = cells[lut_name], cells[ff_name]
            for pin in "ABCD":
                b = _conn(lut, pin)
                if isinstance(b, int) and b not in group_bits and b not in cone:
                    lut["connections"][pin] = [copies.of(b, ff)]
            result.luts += 1
        result.ports += 1
    for p in group:
        for lut_name, ff_name in p.luts.items():
            if ff_name in cells and _conn(cells[lut_name], "Z") == _conn(cells[ff_name], "DI"):
                cells[lut_name]["connections"]["Z"] = cells.pop(ff_name)["connections"]["Q"]
                result.ffs += 1


def _absorb_module(module, result):
    sinks = _sinks(module)
    ports = [p for ram in [c for c in module["cells"].values() if c["type"] == "DP16KD"]
             for _, dos, sides in _read_ports(ram)
             for p in [_scan_port(ram, dos, sides, module, sinks)] if p is not None]
    copies = _Copies(module)
    changed = False
    for group in _groups(ports, module):
        reason = _group_reason(group, module)
        if reason:
            result.left[reason] = result.left.get(reason, 0) + len(group)
            continue
        enables = {_ff_enable(module["cells"][n]) for p in group
                   for n in [n for _, n in p.direct] + list(p.luts.values())}
        _absorb_group(group, module, enables.pop(), copies, result)
        changed = True
    result.copies += len(copies.made)
    if changed:
        _drop_dangling(module)


def _drop_dangling(module):
    """Net bits that no cell or port touches any more (the old RAM-to-FF nets) become
    ``"x"`` in the net names, so nextpnr does not create empty nets for them."""
    live = set()
    for cell in module["cells"].values():
        for bits in cell.get("connections", {}).values():
            live.update(b for b in bits if isinstance(b, int))
    for port in module.get("ports", {}).values():
        live.update(b for b in port["bits"] if isinstance(b, int))
    for name in list(module.get("netnames", {})):
        net = module["netnames"][name]
        bits = [b if not isinstance(b, int) or b in live else "x" for b in net["bits"]]
        if all(b == "x" for b in bits):
            del module["netnames"][name]
        else:
            net["bits"] = bits


def absorb(netlist):
    """Apply the pass to a Yosys JSON netlist (a dict, changed in place) and return its
    :class:`Result`. Black-box modules (the cell library) are skipped."""
    result = Result()
    for module in netlist.get("modules", {}).values():
        if module.get("attributes", {}).get("blackbox") or "cells" not in module:
            continue
        _absorb_module(module, result)
    return result


def absorb_file(path, report=None):
    """Apply :func:`absorb` to the netlist file ``path`` (rewritten atomically); write
    :meth:`Result.as_dict` as JSON to ``report`` when given. Returns the :class:`Result`."""
    path = pathlib.Path(path)
    netlist = json.loads(path.read_text())
    if not isinstance(netlist, dict) or not isinstance(netlist.get("modules"), dict):
        raise ValueError("no \"modules\" object at its top")
    result = absorb(netlist)
    _write_atomic(path, json.dumps(netlist))
    if report is not None:
        _write_atomic(pathlib.Path(report), json.dumps(result.as_dict(), indent=1) + "\n")
    return result


def _write_atomic(path, text):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def read_report(path):
    """The ``bram_outreg`` dict a build wrote with ``--report`` (None when it wrote none)."""
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return None


def summary(res):
    """One line: ``"4 RAM read ports got OUTREG (64 FFs absorbed, 0 LUTs moved after the RAM
    register, 0 FFs added); left NOREG: ..."``."""
    d = res if isinstance(res, dict) else res.as_dict()
    left = ", ".join(f"{n} ({r})" for r, n in d["left"].items())
    return (f"{d['ports']} RAM read ports got OUTREG ({d['ffs']} FFs absorbed, "
            f"{d.get('luts', 0)} LUTs moved after the RAM register, {d.get('copies', 0)} FFs "
            "added)" + (f"; left NOREG: {left}" if left else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.synth.outreg",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("netlist", type=pathlib.Path, help="Yosys JSON netlist (rewritten)")
    ap.add_argument("--report", type=pathlib.Path, metavar="PATH",
                    help="write {ports, ffs, left} as JSON here")
    args = ap.parse_args(argv)
    if not args.netlist.is_file():
        ap.error(f"netlist {str(args.netlist)!r} does not exist (allowed: a Yosys JSON file)")
    try:
        res = absorb_file(args.netlist, args.report)
    except (ValueError, AttributeError, KeyError, TypeError) as e:
        ap.error(f"netlist {str(args.netlist)!r} is not a Yosys JSON netlist: {e}")
    print(summary(res), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
