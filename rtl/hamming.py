"""Hamming distance (SPEC §3): H = popcount(a XOR b), a pipelined popcount tree."""

from amaranth.hdl import Module, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import POPCOUNT_TREES, hamming_latency, unsigned_width
from . import popcount
from .tree import delay, tag_width, tagged

__all__ = ["HammingDistance"]


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

    Latency: ``stages`` edges, by default :func:`config.hamming_latency` of (b, tree) (sum:
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
        super().__init__({
            "i": In(stream.Signature(tagged(
                {"a": unsigned(code_bits), "b": unsigned(code_bits)}, tag_shape))),
            "o": Out(stream.Signature(tagged(
                {"h": unsigned(unsigned_width(code_bits))}, tag_shape))),
        })

    @property
    def latency(self):
        return hamming_latency(self.code_bits, self.tree, self.stages)

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
        valid = delay(m, self.i.valid, self.latency, en=en, name="valid")
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.h.eq(h)]
        if tag_width(self.tag_shape):
            tag = delay(m, Value.cast(self.i.payload.tag), self.latency, en=en, name="tag")
            m.d.comb += self.o.payload.tag.eq(tag)
        return m
