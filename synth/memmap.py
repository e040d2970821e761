"""Which memories of a design go to block RAM and which to distributed (LUT) RAM, on a fabric
that has both (ECP5), within the device's block RAMs.

Yosys (``memory_libmap``) picks each memory's kind on its own, by a cost per memory that
does not know how many block RAMs the device has: a core whose memories each look cheapest
in block RAM can ask for more than the device holds (an ECP5 ``topk`` core of d = 64,
b = 64, N = 1024, M = 16 asked for 62 of the LFE5U-25F's 56 DP16KD), while the same design
fits once its shallow memories (a code memory of ceil(N/M) words) go to LUT RAM instead.

:func:`allocate` decides for the whole design: every memory's cost both ways,

* block RAM: DP16KD blocks, the fewest over the aspect ratios 512x36 .. 16384x1
  (:func:`bram_blocks`);
* LUT RAM: logic cells, 6 per ``TRELLIS_DPR16X4`` of 16 words x 4 bits (4 LUT positions of
  RAM and the write slice's 2) plus a LUT per bit for every further 16 words (the read
  mux, :func:`lutram_cells`);

then block RAM goes to the memories that save the most cells per block first, while blocks
remain; the rest, and every memory below :data:`MIN_CELLS_PER_BLOCK`, are LUT RAM. The
memories given LUT RAM get ``setattr -set ram_style "distributed"`` after the design is read
(:func:`setattr_commands`), in ``hamattn synth`` and in ``hamattn board``; the others are left
to yosys (block RAM or, where it finds that cheaper, LUT RAM), so no memory is forced into a
block RAM that cannot hold its ports. A memory with an asynchronous (combinational) read port
cannot be a block RAM at all: it is LUT RAM and takes no block from the others, unless the
memory carries ``no_rw_check`` (:data:`hamattn.rtl.queue.NO_RW_CHECK`): hamattn gives that
attribute only to memories whose asynchronous reads are registered (an
:class:`~hamattn.rtl.queue.UnguardedReadPort`), which yosys' ``memory_dff`` merges into a
synchronous read port, so they are counted as block RAM candidates like any other. A memory
that carries ``hamattn_lut_ram_first`` (:data:`hamattn.rtl.queue.LUT_RAM_FIRST`: its read
feeds its own write at the next edge, as ``hsoftmax``'s staged bins do) is LUT RAM too,
whatever a block would save: a DP16KD's clock-to-out inside that one-cycle loop set the
default ``hsoftmax`` core's clock (78 MHz instead of about 130). Fabrics without LUT RAM
(iCE40) are left to yosys.

The memories are read from the design's text (:func:`memories`): Verilog from ``hamattn
gen`` (``reg [W-1:0] name [D-1:0];`` inside ``module``; an asynchronous read is an ``assign
... = name[...]``) or Amaranth's RTLIL (``memory width W size D \\name``; a read port is a
``$memrd_v2`` cell with ``MEMID`` and ``CLK_ENABLE 0`` if asynchronous).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

__all__ = ["Memory", "memories", "bram_blocks", "lutram_cells", "allocate",
           "setattr_commands", "BLOCK_RAMS", "MIN_CELLS_PER_BLOCK"]

#: block RAMs of the devices of a family that has LUT RAM (target or board device -> count)
BLOCK_RAMS = {"ecp5-25k": 56}
#: a memory whose LUT RAM costs fewer logic cells than this per block RAM it would take stays
#: in LUT RAM even when blocks remain (a block's slow clock-to-out is not worth so little)
MIN_CELLS_PER_BLOCK = 32
#: ECP5 DP16KD aspect ratios (words, bits) of a one-write one-read memory (512 x 36 as the
#: pseudo-dual-port PDPW16KD)
_DP16KD = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


@dataclass(frozen=True)
class Memory:
    module: str
    name: str
    width: int
    depth: int
    #: a read port is asynchronous (combinational): the memory cannot be a block RAM
    async_read: bool = False
    #: the flag attributes (set to 1) the memory carries, e.g. ``no_rw_check``,
    #: ``hamattn_lut_ram_first``, ``hamattn_one_address``
    attributes: frozenset = frozenset()

    @property
    def lut_ram_first(self):
        """The memory carries :data:`hamattn.rtl.queue.LUT_RAM_FIRST` (a read-modify-write
        closed in one cycle): LUT RAM, whatever a block would save."""
        return "hamattn_lut_ram_first" in self.attributes

    @property
    def selection(self):
        """The yosys selection of this memory: ``module/name``."""
        return f"{self.module}/{self.name}"


_MODULE = re.compile(r"^\s*module\s+\\?([^\s(;]+)")
_VERILOG_MEM = re.compile(r"^\s*reg\s+(?:signed\s+)?\[(\d+):0\]\s+\\?(\S+)\s+\[(\d+):0\];")
_VERILOG_ASYNC_READ = re.compile(r"^\s*assign\s+[^=]+=\s*\\?([^\s\[]+)\s*\[")
_RTLIL_MEM = re.compile(r"^\s*memory\s+width\s+(\d+)\s+size\s+(\d+)(?:\s+offset\s+\d+)?\s+"
                        r"\\?(\S+)\s*$")
_RTLIL_MEMRD = re.compile(r"^\s*cell\s+\$memrd(?:_v2)?\s")
_RTLIL_PARAM = re.compile(r'^\s*parameter\s+\\(MEMID|CLK_ENABLE)\s+"?\\*([^"\s]+)"?\s*$')
#: an attribute before a memory: Verilog ``(* name = 32'd1 *)`` or RTLIL ``attribute \name 1``;
#: ``no_rw_check`` marks its asynchronous reads as registered (UnguardedReadPort),
#: ``hamattn_lut_ram_first`` asks for LUT RAM (:data:`hamattn.rtl.queue.LUT_RAM_FIRST`)
_ATTRIBUTE = re.compile(r"^\s*(?:\(\*\s*(\w+)\s*=\s*(?:32'd)?1\s*\*\)|attribute\s+\\(\w+)\s+1)\s*$")


def memories(text):
    """The memories declared in ``text`` (generated Verilog or Amaranth RTLIL), in order,
    each with ``async_read`` set if one of its read ports is asynchronous and the memory
    does not carry ``no_rw_check`` (its asynchronous reads are then registered, see above)."""
    out, module, asynchronous, memrd = [], None, set(), None
    registered, attrs = set(), set()     # memories with no_rw_check; the attributes just read
    for line in text.splitlines():
        m = _MODULE.match(line)
        if m:
            module, memrd, attrs = m.group(1), None, set()
            continue
        if module is None:
            continue
        m = _ATTRIBUTE.match(line)
        if m:
            attrs.add(m.group(1) or m.group(2))
            continue
        m = _VERILOG_MEM.match(line) or _RTLIL_MEM.match(line)
        if m:
            if m.re is _VERILOG_MEM:
                mem = Memory(module, m.group(2), int(m.group(1)) + 1, int(m.group(3)) + 1,
                             attributes=frozenset(attrs))
            else:
                mem = Memory(module, m.group(3), int(m.group(1)), int(m.group(2)),
                             attributes=frozenset(attrs))
            out.append(mem)
            if "no_rw_check" in mem.attributes:
                registered.add((module, mem.name))
            attrs = set()
            continue
        if not line.lstrip().startswith("attribute") and not line.lstrip().startswith("(*"):
            attrs = set()
        m = _VERILOG_ASYNC_READ.match(line)
        if m:
            asynchronous.add((module, m.group(1)))
            continue
        if _RTLIL_MEMRD.match(line):
            memrd = {}
            continue
        if memrd is not None:
            m = _RTLIL_PARAM.match(line)
            if m:
                memrd[m.group(1)] = m.group(2)
            elif line.strip() == "end":
                if memrd.get("CLK_ENABLE") == "0" and "MEMID" in memrd:
                    asynchronous.add((module, memrd["MEMID"]))
                memrd = None
    return [dataclasses.replace(m, async_read=True)
            if (m.module, m.name) in asynchronous - registered else m for m in out]


def bram_blocks(width, depth):
    """DP16KD blocks of a ``depth`` x ``width`` memory: the fewest over the aspect ratios."""
    return min(-(-width // bits) * -(-depth // words) for words, bits in _DP16KD)


def lutram_cells(width, depth):
    """Logic cells of a ``depth`` x ``width`` memory in ECP5 LUT RAM: 6 per DPR16X4 (16 x 4)
    and, beyond 16 words, one LUT per bit for each further 16 words (the read mux)."""
    rows = -(-depth // 16)
    return 6 * -(-width // 4) * rows + width * (rows - 1)


def allocate(mems, blocks):
    """{memory: ``"block"`` or ``"distributed"``} for ``mems`` within ``blocks`` block RAMs:
    block RAM to the memories that save the most LUT RAM cells per block first; a memory
    with an asynchronous read port is LUT RAM (no block RAM can hold its port), and so is one
    marked ``lut_ram_first`` (a one-cycle read-modify-write: no block's clock-to-out in it)."""
    def gain(mem):
        return lutram_cells(mem.width, mem.depth) / bram_blocks(mem.width, mem.depth)

    out, left = {}, blocks
    for mem in sorted(mems, key=gain, reverse=True):
        need = bram_blocks(mem.width, mem.depth)
        if not mem.async_read and not mem.lut_ram_first and gain(mem) >= MIN_CELLS_PER_BLOCK \
                and need <= left:
            out[mem], left = "block", left - need
        else:
            out[mem] = "distributed"
    return out


def setattr_commands(text, target):
    """Yosys commands that put the memories of the design ``text`` (Verilog or RTLIL) that
    :func:`allocate` gives LUT RAM there (``ram_style "distributed"``), for ``target`` (a key
    of :data:`BLOCK_RAMS`); none for a target without LUT RAM."""
    if target not in BLOCK_RAMS:
        return []
    alloc = allocate(memories(text), BLOCK_RAMS[target])
    return [f'setattr -set ram_style "distributed" {mem.selection}'
            for mem, style in alloc.items() if style == "distributed"]
