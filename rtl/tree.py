"""Pipelined multi-operand adder trees with exact node widths.

An operand is a :class:`Term`: a signal ``value`` whose contribution to the sum is
``-value`` when ``neg`` is set, and whose integer value is known to lie in ``[lo, hi]``.
Keeping the sign beside the node instead of negating lets a tree of ``+x`` and ``-x``
operands (a ternary projection, a masked read-out) use one adder or subtractor per node and
no negation at all. Every node register is exactly as wide as its range needs.
"""

from dataclasses import dataclass

from amaranth.hdl import Const, Signal, signed, unsigned

from ..config import signed_width, tree_depth, unsigned_width

__all__ = ["Term", "shape_for", "adder_tree", "register", "delay"]


@dataclass(frozen=True)
class Term:
    value: object
    neg: bool
    lo: int
    hi: int

    @property
    def contribution_range(self):
        return (-self.hi, -self.lo) if self.neg else (self.lo, self.hi)


def shape_for(lo, hi):
    """The narrowest shape for integers in [lo, hi]: unsigned when lo >= 0."""
    return unsigned(unsigned_width(hi)) if lo >= 0 else signed(signed_width(lo, hi))


def _combine(a, b):
    if a.neg == b.neg:
        return a.value + b.value, a.neg, a.lo + b.lo, a.hi + b.hi
    if b.neg:                                   # a - b
        return a.value - b.value, False, a.lo - b.hi, a.hi - b.lo
    return b.value - a.value, False, b.lo - a.hi, b.hi - a.lo


def adder_tree(m, terms, *, en=None, depth=None, name="tree"):
    """Sum ``terms`` through ``depth`` register levels (default: the binary tree's depth,
    ``ceil(log2(len(terms)))``), one adder level per register level, registers enabled by
    ``en``. Extra levels beyond the tree's own depth are plain delay registers. Returns the
    root :class:`Term` (a signal when ``depth`` > 0, else the lone operand itself)."""
    level = list(terms) or [Term(Const(0, 1), False, 0, 0)]
    own = tree_depth(len(level))
    depth = own if depth is None else depth
    if depth < own:
        raise ValueError(f"a tree of {len(level)} operands needs {own} levels, not {depth}")
    for lv in range(depth):
        nxt = []
        for i in range(0, len(level), 2):
            if i + 1 < len(level):
                expr, neg, lo, hi = _combine(level[i], level[i + 1])
            else:
                t = level[i]
                expr, neg, lo, hi = t.value, t.neg, t.lo, t.hi
            reg = Signal(shape_for(lo, hi), name=f"{name}_l{lv}_{i // 2}")
            register(m, reg, expr, en)
            nxt.append(Term(reg, neg, lo, hi))
        level = nxt
    assert len(level) == 1
    return level[0]


def register(m, reg, expr, en=None):
    """``reg <= expr`` on the clock edge, only where ``en`` (when given) is high."""
    if en is None:
        m.d.sync += reg.eq(expr)
    else:
        with m.If(en):
            m.d.sync += reg.eq(expr)


def delay(m, value, cycles, *, en=None, name="dly"):
    """``value`` delayed by ``cycles`` registers enabled by ``en``."""
    for c in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_{c}")
        register(m, reg, value, en)
        value = reg
    return value


def tag_width(tag_shape):
    """Bits of a side-band ``tag`` shape (a plain shape or a data layout)."""
    from amaranth.hdl import Shape
    return Shape.cast(tag_shape).width


def tagged(fields, tag_shape):
    """A struct layout of ``fields`` plus a ``tag`` field, omitted when the tag has no bits
    (so the Verilog holds no zero-width wires)."""
    from amaranth.lib import data
    fields = dict(fields)
    if tag_width(tag_shape):
        fields["tag"] = tag_shape
    return data.StructLayout(fields)
