"""What a recorded build was made from, shared by the benchmarks that keep builds
(``bench/fmax.py``, ``bench/goals.py``): the commit it started from and a key of everything
its result depends on, so that a kept result of other RTL or tools is seen as stale."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from ..gen.verilog import verilog_text
from ..rtl import board as board_rtl
from ..synth import outreg
from ..synth.board import BOARDS
from ..synth.flows import TARGETS
from ..synth.tools import package_versions

__all__ = ["commit", "build_key"]


def commit():
    """The short hash of the checked-out commit (None outside a git clone)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).resolve().parent.parent,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def _sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def build_key(cfg, flow, where, seed=None):
    """What a build of ``cfg`` depends on, hashed: the core's Verilog, the board top's source
    (``flow == "board"``), the flow, the device or board ``where``, the nextpnr seed (None:
    its default) and the tool versions."""
    parts = {"verilog": _sha(verilog_text(cfg)), "flow": flow, "where": where, "seed": seed,
             "versions": package_versions()}
    if flow == "board":
        parts["board_top"] = _sha(Path(board_rtl.__file__).read_text())
    family = BOARDS[where].family if where in BOARDS else getattr(TARGETS.get(where), "family",
                                                                   None)
    parts.update(outreg.key_parts(family))      # the netlist pass between Yosys and nextpnr
    return _sha(json.dumps(parts, sort_keys=True))
