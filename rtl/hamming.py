"""Hamming distance (SPEC §3): H = popcount(a XOR b), a pipelined popcount tree."""

import numbers
from dataclasses import dataclass

from amaranth.hdl import Module, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from . import popcount
from .plan import Timing, tree_depth, unsigned_width
from .tree import delay, tag_width, tagged

__all__ = ["POPCOUNT_TREES", "HammingPlan", "HammingDistance", "hamming_latency"]

#: popcount trees (``--popcount``): the plain adder sum, or a compressor tree of counters
#: for 4-input or 6-input LUTs (rtl/popcount.py)
POPCOUNT_TREES = ("sum", "lut4", "lut6")


def hamming_latency(b, tree="sum", stages=None):
    """Edges through :class:`HammingDistance` for b-bit codes: its ``stages`` pipeline
    registers. By default, ``sum``: one XOR register and one per adder level,
    ``1 + ceil(log2(b))``; ``lut6``: ``max(1, ceil(log2(b)))``, at least the levels of its
    compressor tree (one register each); ``lut4``: ``1 + ceil(log2(b))`` (its tree has up to
    two levels more; those share a register with the next)."""
    if tree not in POPCOUNT_TREES:
        raise ValueError(f"tree = {tree!r} is not allowed: one of "
                         f"{', '.join(POPCOUNT_TREES)}")
    if stages is None:
        return max(1, tree_depth(b)) if tree == "lut6" else 1 + tree_depth(b)
    if isinstance(stages, bool) or not isinstance(stages, numbers.Integral) \
            or not 1 <= stages <= 64:
        raise ValueError(f"stages = {stages!r} is not allowed: an integer from 1 to 64")
    return int(stages)


@dataclass(frozen=True)
class HammingPlan:
    """The Hamming distance of b-bit codes through a ``tree`` popcount in ``stages``
    registers (None: :func:`hamming_latency`'s default)."""

    b: int
    tree: str = "sum"
    stages: int | None = None

    @property
    def width(self):
        """Bits of H in [0, b]."""
        return unsigned_width(self.b)

    @property
    def latency(self):
        return Timing(hamming_latency(self.b, self.tree, self.stages))


class HammingDistance(wiring.Component):
    """Distance between two b-bit codes, usable on its own.

    Parameters
    ----------
    code_bits : :class:`int`
        b, the code length (1..1024).
    tag_shape : shape-like
        Side band that travels with each pair unchanged.
    tree : :class:`str`
        ``sum`` (XOR, then a binary adder tree), ``lut6`` or ``lut4`` (compressor trees of
        rtl/popcount.py with the XOR folded into the first counters) or ``auto`` (the tree
        for ``fabric``: lut6 on xc7 and with no fabric, lut4 on iCE40 and ECP5).
    stages : :class:`int` or ``None``
        Register stages; ``None``: the tree's natural depth.
    fabric : :class:`str` or ``None``
        ``None`` for behavioural logic (simulation, portable Verilog), or ``xc7`` /
        ``ice40`` / ``ecp5`` to build the tree from that fabric's primitive cells.

    Members
    -------
    i : :py:`In(stream.Signature({a: unsigned(b), b: unsigned(b), tag: tag_shape}))`
        The two codes.
    o : :py:`Out(stream.Signature({h: unsigned(bits(b)), tag: tag_shape}))`
        Their distance h in [0, b].

    Latency: ``stages`` edges, by default :func:`hamming_latency` of (b, tree) (sum:
    ``1 + ceil(log2(b))``, one XOR register and one per adder level).
    Throughput: one pair per cycle; the pipeline advances when its output is empty or
    taken (``i.ready = ~o.valid | o.ready``).
    """

    def __init__(self, code_bits, tag_shape=unsigned(0), tree="sum", stages=None, fabric=None):
        if not isinstance(code_bits, int) or not 1 <= code_bits <= 1024:
            raise ValueError(f"code_bits = {code_bits!r} is not allowed: an integer 1..1024")
        if fabric is not None and fabric not in popcount.FABRICS:
            raise ValueError(f"fabric = {fabric!r} is not allowed: None or one of "
                             f"{', '.join(popcount.FABRICS)}")
        if tree == "auto":
            tree = popcount.AUTO_TREE[fabric]
        if tree not in POPCOUNT_TREES:
            raise ValueError(f"tree = {tree!r} is not allowed: one of "
                             f"{', '.join(POPCOUNT_TREES)} or auto")
        self.code_bits = code_bits
        self.tag_shape = tag_shape
        self.tree = tree
        self.fabric = fabric
        self.stages = hamming_latency(code_bits, tree, stages)
        self.plan = HammingPlan(code_bits, tree, self.stages)
        super().__init__({
            "i": In(stream.Signature(tagged(
                {"a": unsigned(code_bits), "b": unsigned(code_bits)}, tag_shape))),
            "o": Out(stream.Signature(tagged(
                {"h": unsigned(self.plan.width)}, tag_shape))),
        })

    @property
    def latency(self):
        return self.plan.latency

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        a, b = self.i.payload.a, self.i.payload.b
        if self.tree == "sum":
            h = popcount.emit_sum(m, a, b, self.code_bits, stages=self.stages, en=en)
        else:
            h = popcount.emit(m, popcount.plan(self.code_bits, self.tree), a, b,
                              stages=self.stages, en=en, fabric=self.fabric)
        valid = delay(m, self.i.valid, self.stages, en=en, name="valid")
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.h.eq(h)]
        if tag_width(self.tag_shape):
            tag = delay(m, Value.cast(self.i.payload.tag), self.stages, en=en, name="tag")
            m.d.comb += self.o.payload.tag.eq(tag)
        return m
