"""Verilog emission: one config -> one deterministic Verilog module and its manifest."""

from __future__ import annotations

import os
import re

from amaranth._toolchain.yosys import find_yosys
from amaranth.back import rtlil
from amaranth.back import verilog as amaranth_verilog

from ..config import HEAP_ELABORATION_FACTOR, MAX_ADDER_BITS, SLOW_ADDER_BITS, ConfigError
from ..rtl import AxiStreamCore
from ..rtl.baselines import DEFAULT_BASELINE_TOP, baseline_for
from .manifest import DEFAULT_TOP, manifest_text, sha256

__all__ = ["DEFAULT_TOP", "sha256", "check_top_name", "check_buildable", "convert",
           "verilog_text", "generate", "baseline_verilog_text", "generate_baseline"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VERILOG_KEYWORDS = set("""always and assign automatic begin buf bufif0 bufif1 case casex casez
cell cmos config deassign default defparam design disable edge else end endcase endconfig
endfunction endgenerate endmodule endprimitive endspecify endtable endtask event for force
forever fork function generate genvar highz0 highz1 if ifnone incdir include initial inout
input instance integer join large liblist library localparam macromodule medium module nand
negedge nmos nor noshowcancelled not notif0 notif1 or output parameter pmos posedge primitive
pull0 pull1 pulldown pullup pulsestyle_onevent pulsestyle_ondetect rcmos real realtime reg
release repeat rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled signed small specify
specparam strong0 strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1
triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor xnor
xor logic bit byte int""".split())


def check_top_name(top):
    """Refuse a module name that is not a plain Verilog identifier."""
    if not isinstance(top, str) or not _IDENT.match(top) or top in _VERILOG_KEYWORDS \
            or len(top) > 200:
        raise ConfigError("top", top, "a Verilog identifier: a letter or _ then letters, "
                          "digits or _, not a Verilog keyword", "--top")
    return top


def check_buildable(cfg):
    """Refuse a config whose fully parallel core is too large to elaborate (minutes to hours
    and gigabytes of Verilog), saying which parameters make it so; with heap adder trees
    (``--adders`` lut4/lut6) the limit is HEAP_ELABORATION_FACTOR times lower. Returns the
    size in adder bits, times that factor for heap trees."""
    bits = cfg.plan.adder_bits
    what = "b·d state and read-out accumulators" if cfg.mode == "linear" else "adders"
    if bits > MAX_ADDER_BITS:
        raise ConfigError(
            "d, b", f"d={cfg.d}, b={cfg.b} ({cfg.mode})",
            f"a core of at most {MAX_ADDER_BITS:,} adder bits; this one needs about {bits:,} "
            f"(its {what}); lower d or b", "--head-dim, --code-bits")
    if cfg.adders != "sum":
        # heap trees elaborate HEAP_ELABORATION_FACTOR times slower: the same limits on
        # bits times that factor
        limit = MAX_ADDER_BITS // HEAP_ELABORATION_FACTOR
        if bits > limit:
            raise ConfigError(
                "d, b, adders", f"d={cfg.d}, b={cfg.b}, adders={cfg.adders} ({cfg.mode})",
                f"a core of at most {limit:,} adder bits with heap adder trees, which "
                f"elaborate about {HEAP_ELABORATION_FACTOR} times slower; this one needs about "
                f"{bits:,} (its {what}); lower d or b, or use --adders sum",
                "--head-dim, --code-bits, --adders")
        bits *= HEAP_ELABORATION_FACTOR
    return bits


#: Amaranth's internal attributes, stripped so that the text depends on the design alone
_INTERNAL_ATTRS = " ".join(f"-remove {a}" for a in (
    "generator", "top", "src", "amaranth.hierarchy", "amaranth.decoding"))


def convert(elaboratable, name):
    """Verilog of an Amaranth component, written so that every simulator runs it the same.

    Amaranth's own ``verilog.convert`` keeps its processes as ``always @*`` blocks that
    Yosys starts with a dummy register initialised at its declaration. Under SystemVerilog
    semantics (``iverilog -g2012``, and any simulator in SV mode) such an initialiser raises
    no event, so a block whose inputs never change after time 0 (an idle FSM's ``ready``)
    never runs and reads X. Here every process is lowered to multiplexers (Yosys ``proc``
    with ``proc_mux``), so the module holds only continuous assignments, which every
    simulator evaluates at time 0, and clocked ``always @(posedge clk)`` blocks. A
    multi-way multiplexer is written as a function whose ``case`` lists its one-hot selects
    (``-noparallelcase``: no ``parallel_case`` pragma, whose meaning differs between
    simulation and synthesis). Internal names are numbered (``_12_``: Icarus takes a call to
    a function named ``\\$...`` for a system function); no source locations, so the same
    design always gives the same bytes."""
    text = rtlil.convert(elaboratable, name=name, emit_src=False)
    yosys = find_yosys(lambda ver: ver >= (0, 40))
    script = [
        f"read_rtlil <<rtlil\n{text}\nrtlil",
        "proc -norom",
        "memory_collect",
        f"attrmap {_INTERNAL_ATTRS}",
        f"attrmap -modattr {_INTERNAL_ATTRS}",
        "write_verilog -noparallelcase",
    ]
    return yosys.run(["-q", "-"], "\n".join(script), ignore_warnings=False)


def verilog_text(cfg, top=DEFAULT_TOP, progress=None):
    """The Verilog of :class:`AxiStreamCore` for ``cfg`` as module ``top``, written by
    :func:`convert` (the same in every simulator, the same bytes for the same config).

    Parameters
    ----------
    cfg : :class:`~hamattn.CoreConfig`
        The core's config.
    top : :class:`str`
        Module name, a plain Verilog identifier.
    progress : callable or ``None``
        Called with a message before the long elaboration of a large design.

    Raises
    ------
    :class:`~hamattn.ConfigError`
        For a bad ``top`` or a core too large to elaborate.
    """
    check_top_name(top)
    bits = check_buildable(cfg)
    if progress is not None and bits > SLOW_ADDER_BITS:
        progress(f"elaborating a large core (about {cfg.plan.adder_bits:,} adder bits"
                 + (f", with --adders {cfg.adders}" if cfg.adders != "sum" else "")
                 + "); this can take a few minutes...")
    return convert(AxiStreamCore(cfg.plan), top)


def generate(cfg, out_dir, top=DEFAULT_TOP, progress=None):
    """Write ``out_dir/top.v`` and its manifest ``out_dir/top.json`` (SPEC §5, the keys:
    docs/interface.md), creating ``out_dir``.

    Parameters
    ----------
    cfg, top, progress
        As in :func:`verilog_text`.
    out_dir : path-like
        Output folder.

    Returns
    -------
    (:class:`str`, :class:`str`)
        The paths of the Verilog and of the manifest.
    """
    text = verilog_text(cfg, top, progress)
    os.makedirs(out_dir, exist_ok=True)
    vpath = os.path.join(out_dir, f"{top}.v")
    jpath = os.path.join(out_dir, f"{top}.json")
    with open(vpath, "w", newline="\n") as f:
        f.write(text)
    with open(jpath, "w", newline="\n") as f:
        f.write(manifest_text(cfg, text, top))
    return vpath, jpath


def baseline_verilog_text(cfg, top=DEFAULT_BASELINE_TOP, features="dense"):
    """The baseline's Verilog as module ``top``, deterministic (no source locations)."""
    check_top_name(top)
    return amaranth_verilog.convert(baseline_for(cfg, features), name=top, emit_src=False,
                                    strip_internal_attrs=True)


def generate_baseline(cfg, out_dir, top=DEFAULT_BASELINE_TOP, features="dense"):
    """Write ``out_dir/top.v``, the baseline of ``cfg``; return its path."""
    text = baseline_verilog_text(cfg, top, features)
    os.makedirs(out_dir, exist_ok=True)
    vpath = os.path.join(out_dir, f"{top}.v")
    with open(vpath, "w", newline="\n") as f:
        f.write(text)
    return vpath
