"""Verilog emission: one config -> one deterministic Verilog module and its manifest."""

from __future__ import annotations

import hashlib
import keyword
import os
import re

from amaranth.back import verilog

from ..config import ConfigError
from ..rtl import AxiStreamCore

__all__ = ["DEFAULT_TOP", "check_top_name", "verilog_text", "generate"]

DEFAULT_TOP = "hamattn_core"
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


def verilog_text(cfg, top=DEFAULT_TOP):
    """The Verilog of :class:`AxiStreamCore` for ``cfg`` as module ``top``, without source
    locations so that the same config always gives the same bytes."""
    check_top_name(top)
    return verilog.convert(AxiStreamCore(cfg), name=top, emit_src=False,
                           strip_internal_attrs=True)


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def generate(cfg, out_dir, top=DEFAULT_TOP):
    """Write ``out_dir/top.v`` and ``out_dir/top.json`` (SPEC §5); return both paths."""
    from .manifest import manifest_text
    text = verilog_text(cfg, top)
    os.makedirs(out_dir, exist_ok=True)
    vpath = os.path.join(out_dir, f"{top}.v")
    jpath = os.path.join(out_dir, f"{top}.json")
    with open(vpath, "w", newline="\n") as f:
        f.write(text)
    with open(jpath, "w", newline="\n") as f:
        f.write(manifest_text(cfg, text, top))
    return vpath, jpath
