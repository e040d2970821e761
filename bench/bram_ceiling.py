"""What an inferred block RAM allows on the ECP5-25F: the Fmax bound of a RAM read.

``python -m hamattn.bench.bram_ceiling [--seed S]`` builds one small design with the flow of
the ULX3S builds (``synth_ecp5 -nowidelut``, nextpnr-ecp5 on the board's LFE5U-25F-6
CABGA381): a 1024 x 64 memory written and read at addresses from an LFSR, its read data
straight into a register (no logic between), and reports the achieved Fmax and the critical
path's segments. Yosys maps an inferred memory to DP16KD / PDPW16KD without the RAM's output
register (``REGMODE "NOREG"``), so the first segment of every path that starts at a RAM is
the RAM's clock-to-output delay from nextpnr's timing database: no core whose RAM reads are
registered after the RAM (as hamattn's are) can run faster than 1 / that delay. The result,
``bench/results/bram_ceiling.json``, puts it beside issue 17's goal (0.3 x the fabric
ceiling that ``hamattn synth --target ecp5-25k`` measures, bench/results/fmax.json).

It builds the design four ways (:data:`MODES`), so that what each step gains shows:

* ``noreg``: as Yosys maps it (the read register has Amaranth's synchronous reset, and the
  read port returns the old word on a same-cycle write to its address, which Yosys emulates
  with a LUT after the RAM: see :mod:`hamattn.synth.outreg`);
* ``outreg``: the read register ``reset_less`` (as hamattn's are) and
  :mod:`hamattn.synth.outreg` run on the netlist: the register goes into the RAM
  (``REGMODE "OUTREG"``) and Yosys' collision LUT after it, as in hamattn's ECP5 builds;
* ``direct``: the read register ``reset_less`` and same-cycle read/write collisions declared
  don't-care (``COLLISION_X_MASK`` of the read port set in the Yosys script: the LFSR's data
  mean nothing), so the RAM's output drives the register with no logic between, no pass;
* ``direct_outreg``: ``direct`` with the pass: the RAM's own bound.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..process import stoppable
from ..synth import outreg

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "bram_ceiling.json"
DEVICE = ("--25k", "--package", "CABGA381", "--speed", "6")   # the ULX3S's LFE5U-25F-6

#: mode -> (read register reset_less, collisions don't-care, run the outreg pass)
MODES = {"noreg": (False, False, False), "outreg": (True, False, True),
         "direct": (True, True, False), "direct_outreg": (True, True, True)}


class RamRead(wiring.Component):
    """A ``depth`` x ``width`` memory (one write, one synchronous read port) whose read data
    goes into a register; address, data and enables from an LFSR fed by a registered pin, its
    XOR-reduced register the only output (so nothing is optimized away and no path is I/O).
    ``mix`` (tests): read bit 0 goes into the register XORed with an LFSR bit (a LUT
    between the RAM and the register, fed by another register)."""

    def __init__(self, width=64, depth=1024, reset_less=False, mix=False):
        self.width, self.depth, self.reset_less, self.mix = width, depth, reset_less, mix
        super().__init__({"din": In(1), "dout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self.width, depth=self.depth, init=[])
        w, r = mem.write_port(), mem.read_port(transparent_for=())
        abits = (self.depth - 1).bit_length()
        n = 2 * abits + self.width + 1
        lfsr, pin = Signal(n, init=1), Signal()
        m.d.sync += [pin.eq(self.din),
                     lfsr.eq(Cat(lfsr[n - 1] ^ lfsr[n - 2] ^ lfsr[n // 2] ^ pin, lfsr[:n - 1]))]
        m.d.sync += [w.addr.eq(lfsr[:abits]), r.addr.eq(lfsr[abits:2 * abits]),
                     w.data.eq(lfsr[2 * abits:2 * abits + self.width]), w.en.eq(lfsr[n - 1])]
        data, out = Signal(self.width, reset_less=self.reset_less), Signal()
        m.d.sync += [data.eq(r.data ^ (lfsr[3] if self.mix else 0)), out.eq(data.xor())]
        m.d.comb += self.dout.eq(out)
        return m


def segments(report):
    """The critical path of a nextpnr ``--report`` JSON as ``[(type, from cell, delay ns)]``."""
    path = report["critical_paths"][0]["path"]
    return [(s["type"], s["from"]["cell"], round(s["delay"], 3)) for s in path]


def yosys_script(mode):
    """The Yosys script of ``mode`` (:data:`MODES`): reads ``top.il``, writes ``top.json``."""
    dont_care = MODES[mode][1]
    return ("read_rtlil top.il\n"
            + ("setparam -set COLLISION_X_MASK 1'1 t:$memrd_v2\n" if dont_care else "")
            + "synth_ecp5 -nowidelut -top top\nwrite_json top.json\n")


def synth_netlist(workdir, mode, width=64, depth=1024, apply_pass=True, mix=False):
    """:class:`RamRead` synthesized in ``workdir`` as ``mode`` builds it (``top.json``, with
    the outreg pass applied in the ``*outreg`` modes unless not ``apply_pass``). Returns the
    pass's counts (None when it did not run)."""
    from ..synth.tools import run_yosys
    reset_less, _, absorb = MODES[mode]
    absorb = absorb and apply_pass
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "top.il").write_text(rtlil.convert(RamRead(width, depth, reset_less, mix),
                                                  name="top"))
    run_yosys(yosys_script(mode), cwd=workdir, name="yosys")
    return outreg.absorb_file(workdir / "top.json").as_dict() if absorb else None


def measure(workdir, seed=1, mode="noreg"):
    """Build :class:`RamRead` in ``workdir`` as ``mode`` (:data:`MODES`): ``{"fmax_mhz",
    "path", "ram_clk_to_out_ns", "bound_mhz", "bram_outreg"}``."""
    from ..synth.tools import run_nextpnr
    workdir = Path(workdir)
    counts = synth_netlist(workdir, mode)
    run_nextpnr("ecp5", [*DEVICE, "--freq", "200", "--seed", str(seed), "--timing-allow-fail",
                         "--json", "top.json", "--report", "report.json"],
                cwd=workdir, name="nextpnr")
    report = json.loads((workdir / "report.json").read_text())
    fmax = min(v["achieved"] for v in report["fmax"].values())
    path = segments(report)
    ram = [d for kind, cell, d in path if kind == "clk-to-q" and cell.startswith("mem")]
    clk_to_out = ram[0] if ram else None
    return {"fmax_mhz": round(fmax, 2), "path": path, "ram_clk_to_out_ns": clk_to_out,
            "bound_mhz": round(1000 / clk_to_out, 1) if clk_to_out else None,
            "bram_outreg": counts}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.bench.bram_ceiling",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1, help="nextpnr seed [default: 1]")
    ap.add_argument("--out", type=Path, default=OUT, help=f"[default: {OUT}]")
    args = ap.parse_args(argv)
    if not args.out.parent.is_dir():
        ap.error(f"--out {str(args.out)!r}: its folder {str(args.out.parent)!r} does not exist "
                 "(allowed: a path in an existing folder)")
    from ..synth.tools import tool_versions
    modes = {}
    for mode in MODES:
        with tempfile.TemporaryDirectory(prefix="hamattn-bram-") as tmp:
            print(f"building a 1024 x 64 RAM read into a register on the LFE5U-25F ({mode}) "
                  "...", file=sys.stderr, flush=True)
            modes[mode] = measure(tmp, args.seed, mode)
    res = modes["noreg"]
    fmax_rows = json.loads((RESULTS / "fmax.json").read_text()).get("rows", []) \
        if (RESULTS / "fmax.json").exists() else []
    ceiling = next((r.get("ceiling_mhz") for r in fmax_rows
                    if r.get("target") == "ecp5-25k" and r.get("ceiling_mhz")), None)
    goal = round(0.3 * ceiling, 1) if ceiling else None
    out = {"design": "1024 x 64 memory, synchronous read into a register", "seed": args.seed,
           "device": "LFE5U-25F-6 CABGA381", **res, "ecp5_ceiling_mhz": ceiling,
           "goal_mhz": goal,
           "goal_reachable": None if goal is None or res["bound_mhz"] is None
           else res["bound_mhz"] >= goal,
           "modes": modes,
           "machine": f"{platform.platform()}, Python {platform.python_version()}",
           "tools": tool_versions()}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    for mode, r in modes.items():
        print(f"{mode}: Fmax {r['fmax_mhz']} MHz; the RAM's clock-to-output "
              f"{r['ram_clk_to_out_ns']} ns bounds any path from it at {r['bound_mhz']} MHz"
              + (f"; {outreg.summary(r['bram_outreg'])}" if r["bram_outreg"] else ""))
    print(f"issue 17's goal on the ECP5: {goal} MHz; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(stoppable("python -m hamattn.bench.bram_ceiling", main))
