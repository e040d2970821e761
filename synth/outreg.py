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
PASS_VERSION = 1

#: the device families whose flows run the pass
FAMILIES = ("ecp5",)


def key_parts(family):
    """What a build's cache key adds for the pass: ``{"outreg": PASS_VERSION}`` for a
    family that runs it (so results built before the pass, or by another version of it,
    are not reused), ``{}`` for the others (their keys stay as they were)."""
    return {"outreg": PASS_VERSION} if family in FAMILIES else {}


#: the reasons a read port is left in NOREG, in the order they are checked
REASONS = ("36-bit port", "RAM reset", "other loads", "collision bypass", "not a register",
           "other clock", "register reset", "register init", "GSR", "mixed clock enables")

_PORT_BITS = 18


@dataclass
class Result:
    """What :func:`absorb` did: ``ports`` read ports set to OUTREG, ``ffs`` flip-flops
    removed, ``left`` {reason: read ports left in NOREG} (:data:`REASONS`)."""
    ports: int = 0
    ffs: int = 0
    left: dict = field(default_factory=dict)

    def as_dict(self):
        """``{"ports", "ffs", "left"}``: what the JSON reports say under ``bram_outreg``."""
        return {"ports": self.ports, "ffs": self.ffs, "left": dict(sorted(self.left.items()))}


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
    """The FF's clock enable: ``"1"`` (none), a net bit, or None (inverted or never)."""
    mux = _param(ff, "CEMUX", "CE")
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


def _is_bypass(lut, ram, ff_q):
    """Whether ``lut`` is Yosys' read/write collision bypass of ``ram``: a LUT4 with an
    input from a flip-flop that registers one of the RAM's write data bits (Yosys adds it
    when a read port must return the old word on a same-cycle write to its address, which
    the block cannot do across its two ports)."""
    if lut["type"] != "LUT4":
        return False
    din = {b for p, bits in ram["connections"].items() if p.startswith("DI") for b in bits
           if isinstance(b, int)}
    ins = {b for p, bits in lut["connections"].items() if p != "Z" for b in bits
           if isinstance(b, int)}
    return any(ff_q[b] in din for b in ins if b in ff_q)


def _check_port(ram, ports, sides, module, sinks, ff_q):
    """(reason, None) if the read port of DP16KD ``ram`` whose data leaves on ``ports``
    (controls: ``sides``) cannot absorb its register, (None, None) if it reads nothing,
    else (None, (enable, [(DO port, FF name)]))."""
    used = [(p, _conn(ram, p)) for p in ports]
    used = [(p, b) for p, b in used if isinstance(b, int) and sinks.get(b)]
    if not used or any(_param(ram, "REGMODE_" + s, "NOREG") != "NOREG" for s in sides):
        return None, None
    if _param(ram, "DATA_WIDTH_B", 18) == 36 and sides != "AB":
        return "36-bit port", None
    clocks = {_clock(ram, "CLK" + s, f"CLK{s}MUX", "CLK" + s) for s in sides}
    if len(clocks) != 1:
        return "36-bit port", None
    if any(_conn(ram, "RST" + s) not in (None, "0") for s in sides):
        return "RAM reset", None
    ffs = []
    for port, b in used:
        if len(sinks[b]) != 1 or sinks[b][0][0] is None:
            return "other loads", None
        name, pin = sinks[b][0]
        if module["cells"][name]["type"] != "TRELLIS_FF" or pin != "DI":
            bypass = _is_bypass(module["cells"][name], ram, ff_q)
            return "collision bypass" if bypass else "not a register", None
        ffs.append((port, name))
    clk = clocks.pop()
    enables = set()
    for _, name in ffs:
        ff = module["cells"][name]
        if _clock(ff, "CLK", "CLKMUX", "CLK") != clk:
            return "other clock", None
        if _ff_has_reset(ff):
            return "register reset", None
        if _param(ff, "REGSET", "RESET") != "RESET":
            return "register init", None
        if _param(ff, "GSR", "ENABLED") != _param(ram, "GSR", "ENABLED"):
            return "GSR", None
        enables.add(_ff_enable(ff))
    if len(enables) != 1 or None in enables:
        return "mixed clock enables", None
    return None, (enables.pop(), ffs)


def _absorb_module(module, result):
    sinks = _sinks(module)
    ff_q = {_conn(c, "Q"): _conn(c, "DI") for c in module["cells"].values()
            if c["type"] == "TRELLIS_FF"}       # FF output net -> its data input net
    removed = set()
    for ram in [c for c in module["cells"].values() if c["type"] == "DP16KD"]:
        for _, ports, sides in _read_ports(ram):
            reason, match = _check_port(ram, ports, sides, module, sinks, ff_q)
            if reason:
                result.left[reason] = result.left.get(reason, 0) + 1
            if not match:
                continue
            enable, ffs = match
            for s in sides:
                ram["parameters"]["REGMODE_" + s] = "OUTREG"
                ram["connections"]["OCE" + s] = [enable]
            for port, name in ffs:
                ram["connections"][port] = module["cells"].pop(name)["connections"]["Q"]
                removed.add(name)
            result.ports += 1
            result.ffs += len(ffs)
    if removed:
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
    """One line: ``"4 RAM read ports got OUTREG (72 FFs absorbed); left NOREG: ..."``."""
    d = res if isinstance(res, dict) else res.as_dict()
    left = ", ".join(f"{n} ({r})" for r, n in d["left"].items())
    return (f"{d['ports']} RAM read ports got OUTREG ({d['ffs']} FFs absorbed)"
            + (f"; left NOREG: {left}" if left else ""))


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
    except ValueError as e:
        ap.error(f"netlist {str(args.netlist)!r} is not a Yosys JSON netlist: {e}")
    print(summary(res), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
