"""Synthesis and place-and-route flows per target, and the SPEC §6 report.

Targets (:data:`TARGETS`):

=============  ==========================================  =================  ===========
target         synthesis / place and route                 ``area`` counts    ``ffs``
=============  ==========================================  =================  ===========
ice40-up5k     ``synth_ice40``; nextpnr ``--up5k sg48``     ICESTORM_LC used   SB_DFF*
ice40-hx8k     ``synth_ice40``; nextpnr ``--hx8k ct256``    ICESTORM_LC used   SB_DFF*
ecp5-25k       ``synth_ecp5 -nowidelut -nodsp``;           TRELLIS_COMB used  TRELLIS_FF
               nextpnr ``--25k CABGA256``
xc7            ``synth_xilinx -flatten -noiopad -nodsp``   LUT1..LUT6 (+SRL,  FD*
               (no place and route)                        LUT-RAM sites)
gates          ``synth -flatten`` without                  CMOS transistors   $_DFF_*
               ``memory_map``; every flip-flop made a      + SRAM macros
               plain DFF (``dfflegalize``); ``abc -g
               cmos2``
=============  ==========================================  =================  ===========

On ``gates`` a memory stays a memory (``$mem_v2``): it costs what an ASIC's SRAM macro of
its words, width and ports would (:func:`memory_transistors`: 6 transistors per bit plus
each port's access transistors, address decoder, sense amplifiers or write drivers), not
flip-flops. The report lists ``memory_bits``, ``memory_transistors`` and
``logic_transistors`` (gates and flip-flops); ``area`` is their sum.

On the placed targets (iCE40, ECP5) the design is placed inside the registered harness of
:mod:`.harness` and ``area`` = cells used by (harness + design) - cells used by (harness +
stub). An ``ICESTORM_LC`` is one iCE40 logic cell (LUT4 + carry + FF); a ``TRELLIS_COMB`` is
one ECP5 LUT4 position (half a SLICE; a ``CCU2C`` carry takes two), the LUT-level count —
nextpnr reports no SLICE total. ``ffs`` is the design module's own flip-flop count after
synthesis (the harness is a separate module then, so the count is exact). ``fmax_mhz`` is
nextpnr's achieved Fmax of the harness clock (the harness's own paths are single LUT levels,
as in the Fmax-ceiling design, so they never hide a slower design path). ``critical_path``
names the path that sets it, from nextpnr's report (:func:`critical_path`): start and end
cells, ``delay_ns`` (= 1000 / ``fmax_mhz``), the clock, the first and last nets;
``top_paths`` the :data:`~.paths.REPORT_PATHS` slowest paths, one per end cell, from the SDF
that nextpnr writes (:mod:`.paths`).

nextpnr first packs the netlist (``--pack-only``). A design that does not fit the device
is not placed: ``fits`` is false, ``area_kind`` is ``"packed"`` and ``area`` comes from the
packed cell counts (the counts that placement would use; they equal the placed counts of a
design that fits). Its ``fmax_mhz`` is null, unless ``fmax_fallback=True`` asks for it to be
measured on a larger device of the same fabric (``fmax_device``: ECP5 LFE5U-85F for
``ecp5-25k``; iCE40 has no larger device). That is off by default: placing and routing
~30k cells under WebAssembly takes the better part of an hour.

DSP blocks are disabled on ECP5 and xc7 (and not enabled on iCE40) so that arithmetic is
counted in ``area`` on every target; block RAMs are allowed and reported as ``bram``.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import pathlib
import re
from dataclasses import dataclass

from .. import process
from . import harness as _h
from . import memmap
from .cache import cache_key, cache_load, cache_store, resolve_cache_dir
from . import outreg
from .nextpnr import critical_path, overuse, read_report, utilisation_table
from .paths import report_paths
from .tools import (DEFAULT_TIMEOUT, ToolError, package_versions, run_nextpnr, run_yosys,
                    tool_versions)

__all__ = [
    "TARGETS", "Target", "synthesize", "synth_report", "fmax_ceiling", "read_ports",
    "critical_path",
    "cell_counts", "classify_cells", "CMOS_TRANSISTORS", "SynthError", "amount", "PLURAL",
    "SRAM_COSTS", "memory_transistors", "parse_memories", "MEMORY_CELL",
]

log = logging.getLogger("hamattn.synth")

#: transistors per gate: yosys' ``stat -tech cmos`` table (kernel/cost.h), plus estimates for
#: the flip-flop kinds it has no entry for (async-reset DFF, latch)
CMOS_TRANSISTORS = {
    "$_BUF_": 1, "$_NOT_": 2, "$_AND_": 6, "$_NAND_": 4, "$_OR_": 6, "$_NOR_": 4,
    "$_ANDNOT_": 6, "$_ORNOT_": 6, "$_XOR_": 12, "$_XNOR_": 12, "$_AOI3_": 6, "$_OAI3_": 6,
    "$_AOI4_": 8, "$_OAI4_": 8, "$_MUX_": 12, "$_NMUX_": 10, "$_DFF_P_": 16, "$_DFF_N_": 16,
}
_CMOS_ESTIMATES = [(re.compile(r"^\$_DFF_[NP][NP][01]_$"), 20),
                   (re.compile(r"^\$_DLATCH_[NP]_$"), 8)]

#: LUT sites taken by xc7 distributed-RAM and shift-register primitives
_XC7_LUT_SITES = {
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2,
    "RAM256X1S": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4,
    "RAM32M16": 8, "RAM64M8": 8,
}

IGNORED_CELLS = ("$scopeinfo",)


class SynthError(RuntimeError):
    """A flow that cannot give a result (a tool failed, the design does not fit, ...)."""


#: the ``gates`` flow: yosys' ``synth`` with every step but ``memory_map`` (its ``fine``
#: section written out), so memories stay ``$mem_v2`` cells (counted by
#: :func:`memory_transistors`) and the rest becomes CMOS gates and plain flip-flops
_GATES_SCRIPT = ("synth -flatten -top {top} -run :fine\n"
                 "opt -fast -full\nopt -full\ntechmap\nopt -fast\nabc\nopt -fast\n"
                 "dfflegalize -cell $_DFF_?_ 01 -cell $_DFF_???_ 01 -cell $_DLATCH_?_ x\n"
                 "abc -g cmos2\nopt_clean")
#: the yosys cell type of a memory kept whole
MEMORY_CELL = "$mem_v2"

#: what a ``gates`` report adds to each side: the SRAM bits and transistors beside the logic
MEMORY_KEYS = ("memory_bits", "memory_transistors", "logic_transistors")

#: the version of :func:`parse_memories` and :func:`memory_transistors` that cached gates
#: results were costed with (2: a read and a write port on one address are one port)
MEMORY_MODEL = 2

#: transistors of an SRAM macro, per bit and per port (:func:`memory_transistors`)
SRAM_COSTS = {
    "cell": 6,              # per bit: the 6T cell, one read/write port
    "extra_port": 2,        # per bit and port beyond the first: its access transistors
    "decode_per_word_abit": 2,  # per port: per word an A-input NAND (2A) ...
    "decode_per_word": 2,   # ... and its word-line driver (an inverter)
    "decode_per_abit": 2,   # per port: an inverter per address bit (the complements)
    "read_per_bit": 9,      # per read port and bit: precharge (3) and sense amplifier (6)
    "read_register_per_bit": 16,   # per clocked read port and bit: the output flip-flop
    "write_per_bit": 6,     # per write port and bit: the write driver with its enable
}


def memory_transistors(words, width, read_ports, write_ports, clocked_read_ports=None,
                       shared_ports=0):
    """Transistors of a ``words`` x ``width`` memory built as an ASIC's SRAM macro::

        bits = words * width,  A = ceil(log2(words))
        ports = read_ports + write_ports - shared_ports
        array   = 6 * bits + 2 * bits * (ports - 1)
        decode  = ports * (words * (2*A + 2) + 2*A)
        read    = read_ports * 9 * width + clocked_read_ports * 16 * width
        write   = write_ports * 6 * width

    (constants: :data:`SRAM_COSTS`). A 6T cell serves one port; each further port adds its
    two access transistors to every bit (the 8T cell of a 1R1W SRAM). Every port decodes its
    address: an inverter per address bit, per word an A-input NAND and a word-line driver.
    A read port precharges and senses every bit; a clocked (synchronous) read port also
    registers its output, at the cost of the gates flow's flip-flop (``$_DFF_P_``). A write
    port drives every bit. ``clocked_read_ports`` defaults to ``read_ports``.

    ``shared_ports``: pairs of a read and a write port on one address (the RTL drives both
    from the same signal, so it never reads one word while writing another): such a pair is
    one read/write port of the macro (1RW, the 6T cell, one decoder), as an ASIC builds a
    memory whose reads and writes never happen in the same cycle; it keeps the read port's
    sensing and register and the write port's drivers."""
    c = SRAM_COSTS
    if clocked_read_ports is None:
        clocked_read_ports = read_ports
    if not 0 <= shared_ports <= min(read_ports, write_ports):
        raise ValueError(f"shared_ports = {shared_ports!r} is not allowed: 0 .. "
                         f"min(read_ports, write_ports) = {min(read_ports, write_ports)}")
    bits = words * width
    ports = read_ports + write_ports - shared_ports
    abits = max(0, (words - 1).bit_length())
    array = c["cell"] * bits + c["extra_port"] * bits * max(0, ports - 1)
    decode = ports * (words * (c["decode_per_word_abit"] * abits + c["decode_per_word"])
                      + c["decode_per_abit"] * abits)
    read = width * (read_ports * c["read_per_bit"]
                    + clocked_read_ports * c["read_register_per_bit"])
    write = width * write_ports * c["write_per_bit"]
    return array + decode + read + write


_DUMP_MODULE = re.compile(r"^module (\S+)$")
_DUMP_CELL = re.compile(r"^\s*cell \$mem_v2 (\S+)$")
_DUMP_PARAM = re.compile(r"^\s*parameter \\(\w+) (\S+)$")


def _param_bits(value):
    """An RTLIL constant (``12``, ``1'1``, ``3'101``) as (integer, its bit string)."""
    if "'" in value:
        bits = value.split("'", 1)[1]
        return int(bits.replace("x", "0") or "0", 2), bits
    return int(value), None


_MEM_PARAMS = ("SIZE", "WIDTH", "RD_PORTS", "WR_PORTS", "RD_CLK_ENABLE")
_DUMP_CONNECT = re.compile(r"^\s*connect \\(\w+) (.+)$")
_MEM_ADDRS = ("RD_ADDR", "WR_ADDR")
#: an RTLIL signal of constant bits only (``4'0101``, ``{ 2'01 1'x }``)
_CONSTANT = re.compile(r"[{}\s\d'01xz-]+")


def parse_memories(dump_text):
    """``{module: [memory, ...]}`` of yosys ``dump -m t:$mem_v2`` output; each memory a
    dict ``{"name", "words", "width", "bits", "read_ports", "clocked_read_ports",
    "write_ports", "shared_ports", "transistors"}`` (:func:`memory_transistors`). Ports of
    a wide port (``*_WIDE_CONTINUATION``) count once per ``width`` bits, as separate ports.
    ``shared_ports`` is 1 where a memory of one read and one write port has the same signal
    on both addresses (``RD_ADDR`` and ``WR_ADDR`` connected alike, not a constant): one
    read/write port of the macro; memories of more ports keep them apart."""
    mods, module, cell, params, conns = {}, None, None, {}, {}

    def flush():
        if cell is None:
            return
        words, width = params["SIZE"][0], params["WIDTH"][0]
        rd, wr = params["RD_PORTS"][0], params["WR_PORTS"][0]
        clk_bits = params.get("RD_CLK_ENABLE", (0, ""))[1] or ""
        clocked = clk_bits.count("1") if rd else 0
        addr = conns.get("RD_ADDR")
        shared = int(rd == wr == 1 and addr is not None and not _CONSTANT.fullmatch(addr)
                     and addr == conns.get("WR_ADDR"))
        mods.setdefault(module, []).append({
            "name": _unescape(cell), "words": words, "width": width, "bits": words * width,
            "read_ports": rd, "clocked_read_ports": clocked, "write_ports": wr,
            "shared_ports": shared,
            "transistors": memory_transistors(words, width, rd, wr, clocked, shared)})

    for line in dump_text.splitlines():
        m = _DUMP_MODULE.match(line)
        if m:
            flush()
            module, cell, params, conns = _unescape(m.group(1)), None, {}, {}
            continue
        m = _DUMP_CELL.match(line)
        if m:
            flush()
            cell, params, conns = m.group(1), {}, {}
            continue
        m = _DUMP_PARAM.match(line)
        if m and cell is not None and m.group(1) in _MEM_PARAMS:
            params[m.group(1)] = _param_bits(m.group(2))
        m = _DUMP_CONNECT.match(line)
        if m and cell is not None and m.group(1) in _MEM_ADDRS:
            conns[m.group(1)] = " ".join(m.group(2).split())
    flush()
    return mods


@dataclass(frozen=True)
class Target:
    name: str
    family: str                 # ice40 | ecp5 | xc7 | gates
    synth: str                  # yosys synthesis command; {top} is filled in
    pnr: tuple = ()             # nextpnr device arguments (empty: no place and route)
    area_unit: str = ""
    lut_inputs: int = 4
    description: str = ""
    #: a larger device of the same fabric, placed only to measure Fmax when the design does
    #: not fit (its area is still counted on the target device)
    fallback: tuple = ()
    fallback_name: str = ""

    @property
    def placed(self):
        return bool(self.pnr)


TARGETS = {
    "ice40-up5k": Target("ice40-up5k", "ice40", "synth_ice40 -top {top}",
                         ("--up5k", "--package", "sg48"), "ICESTORM_LC", 4,
                         "Lattice iCE40 UltraPlus 5K (5280 logic cells)"),
    "ice40-hx8k": Target("ice40-hx8k", "ice40", "synth_ice40 -top {top}",
                         ("--hx8k", "--package", "ct256"), "ICESTORM_LC", 4,
                         "Lattice iCE40 HX8K (7680 logic cells)"),
    "ecp5-25k": Target("ecp5-25k", "ecp5", "synth_ecp5 -nowidelut -nodsp -top {top}",
                       ("--25k", "--package", "CABGA256"), "TRELLIS_COMB", 4,
                       "Lattice ECP5 LFE5U-25F (24288 LUT4)",
                       ("--85k", "--package", "CABGA381"), "LFE5U-85F"),
    "xc7": Target("xc7", "xc7", "synth_xilinx -flatten -noiopad -nodsp -top {top}", (),
                  "LUT", 6, "Xilinx 7-series, synthesis only"),
    "gates": Target("gates", "gates", _GATES_SCRIPT, (), "transistor", 2,
                    "generic CMOS gates (NAND/NOR/NOT) and SRAM macros, synthesis only"),
}

#: plural of an area unit in a sentence ("486,922 transistors", "1,204 LUTs")
PLURAL = {"transistor": "transistors", "LUT": "LUTs"}


def amount(n, unit):
    """``n`` with thousands separators and its unit: ``486,922 transistors``."""
    return f"{n:,} {PLURAL.get(unit, unit) if n != 1 else unit}"


#: the placed-cell type whose 'used' count is ``area`` on a placed family
_PLACED_AREA = {"ice40": "ICESTORM_LC", "ecp5": "TRELLIS_COMB"}
_PLACED_FF = {"ice40": None, "ecp5": "TRELLIS_FF"}


def _target(target):
    if isinstance(target, Target):
        return target
    try:
        return TARGETS[target]
    except KeyError:
        raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGETS)}") from None


# --------------------------------------------------------------------------- cell counting

def cell_counts(stat_json, module=None):
    """Cells by type of ``module`` (default: the whole design) from yosys ``stat -json``
    output (a dict or a path), without :data:`IGNORED_CELLS`. Submodule instances are
    counted by their module name, as yosys does for the module-local count."""
    if not isinstance(stat_json, dict):
        with open(stat_json) as f:
            stat_json = json.load(f)
    if module is None:
        by_type = stat_json["design"]["num_cells_by_type"]
    else:
        mods = stat_json["modules"]
        key = module if module in mods else "\\" + module
        by_type = mods[key]["num_cells_by_type"]
    return {_unescape(t): int(n) for t, n in sorted(by_type.items())
            if _unescape(t) not in IGNORED_CELLS}


def _unescape(name):
    return name[1:] if name.startswith("\\") else name


def classify_cells(cells, target, memories=None):
    """Summary counts of a cells-by-type dict for ``target``: ``area`` (the synthesis-level
    area in the target's unit; for placed targets an estimate before packing), ``ffs``,
    ``luts``, ``carry``, ``bram``, ``dsp``, and ``unknown`` cell types (gates only).

    On ``gates``, ``memories`` (the module's memories, :func:`parse_memories`) cost each
    ``$mem_v2`` cell as an SRAM macro; the summary adds ``memory_bits``,
    ``memory_transistors``, ``logic_transistors`` (``area`` = the sum of the two) and
    ``memories``. A ``$mem_v2`` cell without its memory's description is ``unknown``."""
    fam = _target(target).family
    get = cells.get
    out = {"luts": 0, "ffs": 0, "carry": 0, "bram": 0, "dsp": 0}
    if fam == "ice40":
        out["luts"] = get("SB_LUT4", 0)
        out["ffs"] = sum(n for t, n in cells.items() if t.startswith("SB_DFF"))
        out["carry"] = get("SB_CARRY", 0)
        out["bram"] = sum(n for t, n in cells.items()
                          if t.startswith("SB_RAM40_4K") or t == "SB_SPRAM256KA")
        out["dsp"] = get("SB_MAC16", 0)
        out["area"] = out["luts"]
    elif fam == "ecp5":
        out["luts"] = get("LUT4", 0)
        out["ffs"] = get("TRELLIS_FF", 0)
        out["carry"] = get("CCU2C", 0)
        out["lutram"] = get("TRELLIS_DPR16X4", 0)
        out["bram"] = get("DP16KD", 0) + get("PDPW16KD", 0)
        out["dsp"] = get("MULT18X18D", 0) + get("ALU54B", 0)
        # a CCU2C fills two LUT4 positions; a DPR16X4 takes a SLICE of LUT RAM
        out["area"] = out["luts"] + 2 * out["carry"] + 2 * out["lutram"]
    elif fam == "xc7":
        out["luts"] = sum(get(f"LUT{i}", 0) for i in range(1, 7))
        out["ffs"] = sum(n for t, n in cells.items()
                         if re.fullmatch(r"FD[RSCP]E(_1)?|LD[CP]E", t))
        out["carry"] = get("CARRY4", 0)
        out["lut_sites_other"] = sum(_XC7_LUT_SITES.get(t, 0) * n for t, n in cells.items())
        out["muxf"] = get("MUXF7", 0) + get("MUXF8", 0)
        out["bram"] = get("RAMB18E1", 0) + get("RAMB36E1", 0)
        out["dsp"] = get("DSP48E1", 0)
        out["area"] = out["luts"] + out["lut_sites_other"]
    elif fam == "gates":
        total, unknown, estimated = 0, {}, {}
        memories = list(memories or ())
        for t, n in cells.items():
            if t == MEMORY_CELL and n == len(memories):
                continue
            if t in CMOS_TRANSISTORS:
                total += CMOS_TRANSISTORS[t] * n
            else:
                for pat, cost in _CMOS_ESTIMATES:
                    if pat.match(t):
                        total += cost * n
                        estimated[t] = n
                        break
                else:
                    unknown[t] = n
        out["ffs"] = sum(n for t, n in cells.items() if t.startswith(("$_DFF", "$_DLATCH")))
        out["luts"] = None
        out["gates"] = sum(n for t, n in cells.items()
                           if t != MEMORY_CELL and not t.startswith(("$_DFF", "$_DLATCH")))
        if cells.get(MEMORY_CELL, 0) != len(memories):
            memories = []
        out["memories"] = memories
        out["memory_bits"] = sum(mem["bits"] for mem in memories)
        out["memory_transistors"] = sum(mem["transistors"] for mem in memories)
        out["logic_transistors"] = total
        out["area"] = total + out["memory_transistors"]
        if estimated:
            out["estimated_cost_cells"] = estimated
        if unknown:
            out["unknown"] = unknown
    else:
        raise ValueError(f"unknown family {fam!r}")
    return out


# --------------------------------------------------------------------------- jobs

def _read_sources(verilog_path):
    paths = [verilog_path] if isinstance(verilog_path, (str, pathlib.Path)) else verilog_path
    srcs = []
    for i, p in enumerate(paths):
        p = pathlib.Path(p)
        try:
            text = p.read_text()
        except OSError as e:
            raise SynthError(f"cannot read Verilog {p}: {e}") from e
        srcs.append((f"src{i}_{re.sub(r'[^A-Za-z0-9_.-]', '_', p.name)}", text))
    return srcs


def _job_dir(build_dir, kind, key):
    d = pathlib.Path(build_dir).resolve() / f"{kind}-{key[:12]}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _memory_styles(sources, tgt):
    """Yosys lines (each ending in a newline) that give LUT RAM to the memories of
    ``sources`` that do not get the device's block RAMs (:func:`.memmap.setattr_commands`;
    none on a fabric without LUT RAM)."""
    cmds = memmap.setattr_commands("\n".join(text for _, text in sources), tgt.name)
    return "".join(c + "\n" for c in cmds)


def _write_sources(job_dir, sources):
    for name, text in sources:
        (job_dir / name).write_text(text)
    return "\n".join(f"read_verilog {name}" for name, _ in sources)


def read_ports(verilog_path, top, build_dir, *, cache_dir=None, timeout=DEFAULT_TIMEOUT):
    """The ports of module ``top`` as a list of :class:`harness.Port` (via yosys
    ``portlist``; cached like every job)."""
    sources = _read_sources(verilog_path)
    return _ports_of(sources, top, build_dir, resolve_cache_dir(cache_dir), timeout)


_PORT_LINE = re.compile(r"^(input|output|inout)\s+\[(\d+):(\d+)\]\s+(\S+)\s*$")


def _ports_of(sources, top, build_dir, cache_dir, timeout):
    script_tail = f"hierarchy -top {top}\ntee -q -o ports.txt portlist {top}\n"
    key = cache_key(job="ports", sources=sources, script=script_tail, top=top,
                    versions=package_versions())
    hit = cache_load(cache_dir, key)
    if hit is None:
        job = _job_dir(build_dir, "ports", key)
        script = _write_sources(job, sources) + "\n" + script_tail
        run_yosys(script, cwd=job, name="ports", timeout=timeout)
        ports = []
        for line in (job / "ports.txt").read_text().splitlines():
            m = _PORT_LINE.match(line.strip())
            if m:
                hi, lo = int(m.group(2)), int(m.group(3))
                ports.append([_unescape(m.group(4)), m.group(1), abs(hi - lo) + 1])
        if not ports:
            raise SynthError(f"module {top!r} has no ports (see {job / 'ports.log'})")
        hit = {"ports": ports}
        cache_store(cache_dir, key, hit)
    return [_h.Port(*p) for p in hit["ports"]]


def abc9_crashed(log_text):
    """Whether a Yosys log (or error text) shows Yosys 0.70's abc9 assertion (rtlil.cc:3091)
    in ``synth_ecp5``, which :func:`abc_lut4_ecp5`'s classic mapper avoids."""
    return "rtlil.cc" in log_text


def abc_lut4_ecp5(script):
    """``script`` with its ``synth_ecp5`` line split at the LUT mapping: the same passes
    before and after, and the classic ``abc -lut 4`` mapper instead of ``abc9``."""
    out = []
    for line in script.splitlines():
        cmd = line.strip()
        if cmd.startswith("synth_ecp5 "):
            out += [cmd + " -run :map_luts",
                    "techmap -map +/lattice/latches_map.v", "abc -lut 4", "clean",
                    cmd + " -run map_cells:"]
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _run_synth(script, job, timeout):
    """run_yosys, with one known Yosys 0.70 crash worked around: ``synth_ecp5``'s abc9 step
    can fail an internal assertion (rtlil.cc:3091, seen on large linear designs); the script
    then runs again with the classic ``abc -lut 4`` mapper in its place (Yosys 0.70's
    synth_ecp5 has no option to skip abc9). Returns (result, fallback used)."""
    try:
        return run_yosys(script, cwd=job, name="synth", timeout=timeout), False
    except ToolError as e:
        text = f"{e} {getattr(e, 'log_tail', '')}"
        if "synth_ecp5 " not in script or "abc -lut 4" in script or not abc9_crashed(text):
            raise
    return run_yosys(abc_lut4_ecp5(script), cwd=job, name="synth", timeout=timeout), True


def _synth_only_job(sources, top, tgt, build_dir, cache_dir, timeout, keep_hierarchy=False,
                    say=None):
    """Synthesis without placement; returns {"modules": {name: cells}, "cells": {...},
    "top": top}. ``say`` (when given) receives ``"synth"`` as the tool starts, or
    ``"synth: cached"``."""
    say = say or _quiet
    synth = tgt.synth.format(top=top)
    if keep_hierarchy:
        synth = _no_flatten(synth, tgt)
    script_tail = (f"hierarchy -check -top {top}\n{_memory_styles(sources, tgt)}{synth}\n"
                   "tee -q -o stat.json stat -json\n")
    if tgt.family == "gates":
        script_tail += f"tee -q -o memories.txt dump -m t:{MEMORY_CELL}\n"
    # (a gates result holds its memories' costs: a change of the memory model is a new key)
    model = {"memory_model": MEMORY_MODEL} if tgt.family == "gates" else {}
    key = cache_key(job="synth", sources=sources, script=script_tail, top=top,
                    target=tgt.name, versions=package_versions(), **model)
    hit, job, script = _hit_or_job(cache_dir, build_dir, key, f"synth-{tgt.name}", sources,
                                   script_tail, say, "synth")
    if hit is not None:
        return hit
    say("synth")
    res, noabc9 = _run_synth(script, job, timeout)
    stat = json.loads((job / "stat.json").read_text())
    result = {
        "top": top,
        "noabc9_fallback": noabc9,
        "cells": cell_counts(stat),
        "modules": {_unescape(m): cell_counts(stat, m) for m in stat["modules"]},
        "memories": (parse_memories((job / "memories.txt").read_text())
                     if tgt.family == "gates" else {}),
        "seconds": round(res.seconds, 2),
        "build_dir": str(job),
        "tool_versions": tool_versions(),
        "cache_key": key,
    }
    cache_store(cache_dir, key, result)
    result["cached"] = False
    return result


def _hit_or_job(cache_dir, build_dir, key, name, sources, script_tail, say, what):
    """(the cached result of ``key``, marked ``cached``, None, None) after ``say(f"{what}:
    cached")``; or (None, the job folder ``name`` with the sources written, the whole Yosys
    script)."""
    hit = cache_load(cache_dir, key)
    if hit is not None:
        say(f"{what}: cached")
        hit["cached"] = True
        return hit, None, None
    job = _job_dir(build_dir, name, key)
    return None, job, _write_sources(job, sources) + "\n" + script_tail


def _all_memories(job):
    """Every memory of a synthesis job's design (all modules), as :func:`classify_cells`
    takes them for the design's whole cell count."""
    return [mem for mems in job.get("memories", {}).values() for mem in mems]


def _no_flatten(synth, tgt):
    if tgt.family in ("ice40", "ecp5"):
        return synth.replace(" -top", " -noflatten -top", 1)
    return synth.replace(" -flatten", "", 1)


def _pnr_args(tgt, seed, freq_mhz, device=None):
    return list(device or tgt.pnr) + ["--json", "netlist.json", "--report", "report.json",
                            "--sdf", "timing.sdf", "--timing-allow-fail", "--seed", str(seed),
                            "--freq", f"{freq_mhz:g}"]


def _placed_job(kind, sources, top, tgt, build_dir, cache_dir, timeout, seed, freq_mhz,
                wrapped=True, fmax_fallback=True, say=None):
    """Synthesis + place and route of ``sources`` (which hold module ``top``); with
    ``wrapped``, ``top`` is the harness and its ``dut`` instance keeps its own module through
    synthesis. Returns placed utilization, Fmax and per-module synthesized cells. ``say``
    (when given) receives ``"synth"`` and ``"place-and-route"`` as those tools start, or
    ``"synth + place-and-route: cached"``."""
    say = say or _quiet
    synth = tgt.synth.format(top=top)
    lines = [f"hierarchy -check -top {top}"]
    if wrapped:
        lines.append(f"setattr -set keep_hierarchy 1 {top}/dut")
    lines += [_memory_styles(sources, tgt) + synth, "tee -q -o stat.json stat -json"]
    if wrapped:
        lines += [f"setattr -unset keep_hierarchy {top}/dut", "flatten"]
    lines += ["write_json -noscopeinfo netlist.json"]
    script_tail = "\n".join(lines) + "\n"
    pnr = _pnr_args(tgt, seed, freq_mhz)
    fallback = (_pnr_args(tgt, seed, freq_mhz, tgt.fallback)
                if tgt.fallback and fmax_fallback else None)
    key = cache_key(job=kind, sources=sources, script=script_tail, top=top, target=tgt.name,
                    pnr=pnr, fallback=fallback, versions=package_versions(),
                    **outreg.key_parts(tgt.family))
    hit, job, script = _hit_or_job(cache_dir, build_dir, key, f"{kind}-{tgt.name}", sources,
                                   script_tail, say, "synth + place-and-route")
    if hit is not None:
        return hit
    say("synth")
    ys, noabc9 = _run_synth(script, job, timeout)
    stat = json.loads((job / "stat.json").read_text())
    modules = {_unescape(m): cell_counts(stat, m) for m in stat["modules"]}
    # block RAM reads into the RAMs' output registers (ECP5), between Yosys and nextpnr
    bram_outreg = (outreg.absorb_file(job / "netlist.json").as_dict()
                   if tgt.family in outreg.FAMILIES else None)
    # pack first: a design that does not fit the device is reported from its packed cell
    # counts (those that placement would use) instead of sending the placer into a hopeless
    # search; there is then no Fmax
    pack_args = list(tgt.pnr) + ["--json", "netlist.json", "--pack-only"]
    say("place-and-route")
    try:
        pk = run_nextpnr(tgt.family, pack_args, cwd=job, name="pack", timeout=timeout)
    except ToolError as e:
        raise SynthError(f"packing {kind} for {tgt.name} failed: {e}") from e
    packed = utilisation_table(job / "pack.log")
    over = {k: f"{u}/{a}" for k, u, a in overuse(packed)}
    fits, error, fmax_device = not over, None, tgt.description
    if over:
        error = "does not fit the device: " + ", ".join(f"{k} {v}" for k, v in over.items())
        util = {k: u for k, (u, a) in packed.items() if u}
        avail = {k: a for k, (u, a) in packed.items() if u}
        fmax, pr_seconds, fmax_device, path, top = {}, round(pk.seconds, 2), None, None, None
        if fallback:
            try:
                pr = run_nextpnr(tgt.family, fallback, cwd=job, name="pnr-fallback",
                                 timeout=timeout)
                report = read_report(job / "report.json")
                fmax, path = report.fmax, report.critical_path
                top = report_paths(job / "timing.sdf")
                fmax_device = tgt.fallback_name
                pr_seconds = round(pk.seconds + pr.seconds, 2)
            except ToolError as e:
                error += f"; placing on {tgt.fallback_name} failed too: " \
                    + str(e).splitlines()[0]
    else:
        try:
            pr = run_nextpnr(tgt.family, pnr, cwd=job, name="pnr", timeout=timeout)
        except ToolError as e:
            raise SynthError(f"place and route of {kind} on {tgt.name} failed: {e}") from e
        pr_seconds = round(pk.seconds + pr.seconds, 2)
        report = read_report(job / "report.json")
        fmax, util, avail = report.fmax, report.used(), report.available()
        path = report.critical_path
        top = report_paths(job / "timing.sdf")
    result = {
        "top": top,
        "noabc9_fallback": noabc9,
        "modules": modules,
        "fits": fits,
        "error": error,
        "utilization": util,
        "available": avail,
        "fmax_by_clock": fmax,
        "fmax_mhz": _round(min(fmax.values())) if fmax else None,
        "fmax_device": fmax_device,
        "critical_path": path,
        "top_paths": top,
        "bram_outreg": bram_outreg,
        "seconds": {"yosys": round(ys.seconds, 2), "nextpnr": pr_seconds},
        "build_dir": str(job),
        "tool_versions": tool_versions(),
        "cache_key": key,
    }
    cache_store(cache_dir, key, result)
    result["cached"] = False
    return result


def _quiet(msg):
    pass


def _round(x, nd=2):
    return None if x is None else round(float(x), nd)


# --------------------------------------------------------------------------- public flows

def synthesize(verilog_path, top, target, build_dir, *, place=True, cache_dir=None,
               seed=1, freq_mhz=100.0, clocks=("clk",), timeout=DEFAULT_TIMEOUT, jobs=2,
               fmax_fallback=False, progress=None, label="design"):
    """Synthesize module ``top`` of ``verilog_path`` (a path or a list of paths) for
    ``target`` (a name of :data:`TARGETS`); tool files go under ``build_dir``.

    Returns a dict with at least ``target``, ``top``, ``area_unit``, ``area``, ``ffs``,
    ``fmax_mhz`` (None without place and route), ``cells`` (the design's cells by type after
    synthesis, ``$scopeinfo`` excluded), ``synth`` (summary counts of those cells),
    ``placed`` (placed targets: the used cells of harness+design and of the harness alone),
    ``tool_versions``, ``cached`` (every job came from the cache).

    With ``place=False`` on iCE40/ECP5 no place and route runs; ``area`` is then the
    synthesis-level LUT estimate (``area_kind`` says which). A design that does not fit the
    device has ``fits`` false and its packed cell count as ``area``; with ``fmax_fallback``
    its Fmax is measured on the target's larger device (``fmax_device``), which for a big
    design is the slowest step of all (tens of minutes).

    ``progress`` (when given) receives one line as each tool starts: ``"synth <label>"``,
    ``"place-and-route <label>"`` (or ``"... <label>: cached"``)."""
    tgt = _target(target)
    say = None if progress is None else _stage_say(progress, label)
    cache = resolve_cache_dir(cache_dir)
    build_dir = pathlib.Path(build_dir)
    sources = _read_sources(verilog_path)
    if not (tgt.placed and place):
        r = _synth_only_job(sources, top, tgt, build_dir, cache, timeout, say=say)
        summary = classify_cells(r["cells"], tgt, _all_memories(r))
        _check_gates(summary, tgt)
        return {
            "target": tgt.name, "top": top, "area_unit": tgt.area_unit,
            "area": summary["area"], "ffs": summary["ffs"], "fmax_mhz": None,
            **{k: summary.get(k) for k in MEMORY_KEYS},
            "area_kind": "synthesis" if not tgt.placed else "synthesis-estimate",
            "fits": None,
            "cells": r["cells"], "synth": summary, "placed": None,
            "tool_versions": r["tool_versions"], "build_dir": r["build_dir"],
            "cached": r["cached"],
        }

    ports = _ports_of(sources, top, build_dir, cache, timeout)
    wrapper = ("harness.v", _h.harness_verilog(top, ports, clocks=clocks))
    stub = ("stub.v", _h.stub_verilog(top, ports))
    args = dict(tgt=tgt, build_dir=build_dir, cache_dir=cache, timeout=timeout, seed=seed,
                freq_mhz=freq_mhz)
    bare_args = dict(args, fmax_fallback=False)     # the harness alone always fits
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        f_full = ex.submit(_placed_job, "placed", sources + [wrapper], _h.HARNESS_TOP,
                           fmax_fallback=fmax_fallback, say=say, **args)
        f_bare = ex.submit(_placed_job, "harness", [stub, wrapper], _h.HARNESS_TOP,
                           **bare_args)
        try:
            full, bare = f_full.result(), f_bare.result()
        except BaseException:
            # Ctrl-C or SIGTERM here: the tools of the other thread are ended too, so that
            # the executor's exit does not wait for them
            process.kill_started()
            raise
    return _placed_summary(tgt, top, full, bare)


def _stage_say(progress, label):
    """``say`` of a job: "synth" -> progress("synth <label>"), "synth: cached" ->
    progress("synth <label>: cached")."""
    def say(stage):
        head, sep, rest = stage.partition(":")
        progress(f"{head} {label}{sep}{rest}")
    return say


def _placed_summary(tgt, top, full, bare):
    cells = full["modules"].get(top)
    if cells is None:
        raise SynthError(f"design module {top!r} missing after synthesis "
                         f"(modules: {', '.join(full['modules'])})")
    summary = classify_cells(cells, tgt)
    area_type = _PLACED_AREA[tgt.family]
    used_full = full["utilization"].get(area_type, 0)
    used_bare = bare["utilization"].get(area_type, 0)
    placed = {
        "area_cell": area_type,
        "total": {"area": used_full, "utilization": full["utilization"],
                  "fmax_mhz": full["fmax_mhz"]},
        "harness": {"area": used_bare, "utilization": bare["utilization"],
                    "fmax_mhz": bare["fmax_mhz"],
                    "cells": bare["modules"].get(_h.HARNESS_TOP, {})},
        "available": full["available"].get(area_type),
        "fits": full["fits"],
    }
    if not full["fits"]:
        placed["error"] = full["error"]
    if not bare["fits"]:
        raise SynthError(f"the harness alone does not fit {tgt.name}: {bare['error']}")
    ff_type = _PLACED_FF[tgt.family]
    if ff_type:
        placed["ffs_by_subtraction"] = (full["utilization"].get(ff_type, 0)
                                        - bare["utilization"].get(ff_type, 0))
    return {
        "target": tgt.name, "top": top, "area_unit": tgt.area_unit,
        "area": used_full - used_bare, "ffs": summary["ffs"], "fmax_mhz": full["fmax_mhz"],
        "area_kind": "placed" if full["fits"] else "packed",
        "fits": full["fits"],
        "fmax_device": full.get("fmax_device"),
        "critical_path": full.get("critical_path"),
        "top_paths": full.get("top_paths"),
        "bram_outreg": full.get("bram_outreg"),
        "cells": cells, "synth": summary, "placed": placed,
        "tool_versions": full["tool_versions"],
        "build_dir": full["build_dir"],
        "cached": bool(full["cached"] and bare["cached"]),
    }


def _check_gates(summary, tgt):
    if tgt.family == "gates" and summary.get("unknown"):
        raise SynthError("gates flow left cells with no transistor cost: "
                         + ", ".join(f"{t} x{n}" for t, n in summary["unknown"].items()))


def fmax_ceiling(target, build_dir, *, cache_dir=None, seed=1, freq_mhz=100.0,
                 timeout=DEFAULT_TIMEOUT, progress=None):
    """Fmax (MHz) of the smallest registered path (flip-flops -> one LUT -> flip-flop) on the
    device of ``target``, placed like a design; None for targets without place and route."""
    tgt = _target(target)
    if not tgt.placed:
        return None
    src = [("ceiling.v", _h.ceiling_verilog(tgt.lut_inputs))]
    r = _placed_job("ceiling", src, _h.CEILING_TOP, tgt, pathlib.Path(build_dir),
                    resolve_cache_dir(cache_dir), timeout, seed, freq_mhz, wrapped=False,
                    fmax_fallback=False,
                    say=None if progress is None else _stage_say(progress, "Fmax ceiling"))
    return r["fmax_mhz"]


_NULL_SIDE = {"area": None, "ffs": None, "fmax_mhz": None, "critical_path": None,
              "top_paths": None, "bram_outreg": None, **dict.fromkeys(MEMORY_KEYS)}


def synth_report(design_verilog, design_top, baseline_verilog, baseline_top, target,
                 build_dir, *, place=True, cache_dir=None, seed=1, freq_mhz=100.0,
                 clocks=("clk",), timeout=DEFAULT_TIMEOUT, jobs=2, fmax_fallback=False,
                 progress=None):
    """The SPEC §6 report of the design against a baseline on ``target``.

    ``baseline_verilog=None`` gives null baseline fields and a null ``area_reduction``.
    Returns ``{"target", "area_unit", "design": {"area", "ffs", "fmax_mhz", ...},
    "baseline": {...}, "area_reduction", "fmax_ceiling_mhz", "tool_versions", ...}``;
    ``design``/``baseline`` also hold ``top``, ``cells`` (by type), ``synth`` (summary
    counts) and ``placed`` (placed targets). ``progress`` receives a line as each tool
    starts (see :func:`synthesize`; the labels are ``core`` and ``baseline``)."""
    tgt = _target(target)
    kw = dict(place=place, cache_dir=cache_dir, seed=seed, freq_mhz=freq_mhz, timeout=timeout,
              fmax_fallback=fmax_fallback)
    build_dir = pathlib.Path(build_dir)
    design = synthesize(design_verilog, design_top, tgt, build_dir, clocks=clocks, jobs=jobs,
                        progress=progress, label="core", **kw)
    baseline = None
    if baseline_verilog is not None:
        baseline = synthesize(baseline_verilog, baseline_top, tgt, build_dir, clocks=clocks,
                              jobs=jobs, progress=progress, label="baseline", **kw)
    ceiling = None
    if tgt.placed and place:
        ceiling = fmax_ceiling(tgt, build_dir, cache_dir=cache_dir, seed=seed,
                               freq_mhz=freq_mhz, timeout=timeout, progress=progress)
    reduction = None
    if baseline is not None and baseline["area"]:
        reduction = round(1.0 - design["area"] / baseline["area"], 6)
    return {
        "target": tgt.name,
        "area_unit": tgt.area_unit,
        "design": _side(design),
        "baseline": _side(baseline) if baseline is not None else dict(_NULL_SIDE),
        "area_reduction": reduction,
        "fmax_ceiling_mhz": ceiling,
        "area_kind": design["area_kind"],
        "tool_versions": design["tool_versions"],
        "settings": {"seed": seed, "freq_mhz": freq_mhz, "place": place,
                     "synth": tgt.synth.format(top="<top>"), "pnr": list(tgt.pnr)},
    }


def _side(r):
    keys = ("area", "ffs", "fmax_mhz", "critical_path", "top_paths", "bram_outreg", "top", "area_kind", "fits",
            *MEMORY_KEYS,
            "fmax_device", "synth", "cells", "placed", "build_dir", "cached")
    return {k: r.get(k) for k in keys}
