"""Pipelined multi-operand adder trees with exact node widths.

An operand is a :class:`Term`: a signal ``value`` whose contribution to the sum is
``-value`` when ``neg`` is set, and whose integer value is known to lie in ``[lo, hi]``.
Keeping the sign beside the node instead of negating lets a tree of ``+x`` and ``-x``
operands (a ternary projection, a masked read-out) use one adder or subtractor per node and
no negation at all. Every node register is exactly as wide as its range needs.
"""

from dataclasses import dataclass

from amaranth.hdl import Const, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data

from . import popcount
from .plan import signed_width, tree_depth, unsigned_width

__all__ = ["ADDER_TREES", "Term", "shape_for", "adder_tree", "heap_tree", "heap_bits", "heap_sum",
           "register", "twin", "delay"]

#: multi-operand adder trees (``--adders``): binary trees of two-operand adders, or one bit
#: heap per sum reduced by the popcount's counters for 4-input or 6-input LUTs
ADDER_TREES = ("sum", "lut4", "lut6")


@dataclass(frozen=True)
class Term:
    """An operand contributing ``±(value << shift)``; [lo, hi] bounds ``value << shift``."""
    value: object
    neg: bool
    lo: int
    hi: int
    shift: int = 0

    @property
    def contribution_range(self):
        return (-self.hi, -self.lo) if self.neg else (self.lo, self.hi)

    @property
    def shifted(self):
        """``value << shift`` as one Value."""
        return self.value << self.shift if self.shift else self.value


def shape_for(lo, hi):
    """The narrowest shape for integers in [lo, hi]: unsigned when lo >= 0."""
    return unsigned(unsigned_width(hi)) if lo >= 0 else signed(signed_width(lo, hi))


def _combine(a, b):
    if a.neg == b.neg:
        return a.shifted + b.shifted, a.neg, a.lo + b.lo, a.hi + b.hi
    if b.neg:                                   # a - b
        return a.shifted - b.shifted, False, a.lo - b.hi, a.hi - b.lo
    return b.shifted - a.shifted, False, b.lo - a.hi, b.hi - a.lo


def adder_tree(m, terms, *, en=None, depth=None, name="tree", tree="sum"):
    """Sum ``terms`` through ``depth`` register levels (default: the binary tree's depth,
    ``ceil(log2(len(terms)))``), one adder level per register level, registers enabled by
    ``en``. Extra levels beyond the tree's own depth are plain delay registers. Returns the
    root :class:`Term` (a signal when ``depth`` > 0, else the lone operand itself).
    ``tree`` other than ``sum``: the same sum as a compressor tree (:func:`heap_tree`) over
    the same ``depth`` (default: the binary tree's)."""
    if tree != "sum":
        if depth is None:
            depth = tree_depth(len(terms))
        return heap_tree(m, terms, tree=tree, en=en, depth=depth, name=name)
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
                expr, neg, lo, hi = t.shifted, t.neg, t.lo, t.hi
            reg = Signal(shape_for(lo, hi), name=f"{name}_l{lv}_{i // 2}")
            register(m, reg, expr, en)
            nxt.append(Term(reg, neg, lo, hi))
        level = nxt
    assert len(level) == 1
    return level[0]


def heap_bits(value, shape, neg, shift):
    """The bit heap of ``±(value << shift)`` for ``value`` of ``shape``: ``(bits, const)``,
    ``bits`` a list of ``(column, 1-bit Value, complemented)`` of positive weight and
    ``const`` an integer, their sum equal to the operand for every value. With n = width - 1
    and v_j the bits of ``value``, signed:
    ``+value = sum_{j<n} v_j 2^j + (~v_n) 2^n - 2^n`` and
    ``-value = sum_{j<n} (~v_j) 2^j + v_n 2^n - 2^n + 1``; unsigned: ``+value`` its bits
    and ``-value = sum_j (~v_j) 2^j - 2^width + 1`` (each shifted by ``shift``)."""
    n = shape.width - 1
    bits = []
    for j in range(shape.width):
        flip = bool(neg) != (shape.signed and j == n)
        bits.append((shift + j, ~value[j] if flip else value[j], flip))
    if shape.signed:
        const = -(1 << n) + (1 if neg else 0)
    else:
        const = -(1 << shape.width) + 1 if neg else 0
    return bits, const << shift


def heap_tree(m, terms, *, tree, en=None, depth, name="heap", offset=0):
    """``offset`` plus the sum of ``terms`` as one bit heap reduced by a compressor tree of
    ``tree`` (``lut6`` or ``lut4``) over ``depth`` register levels (levels of the plan share
    a register stage when it has more than ``depth``). Each operand enters as its bits
    (:func:`heap_bits`: a negated operand is its complemented bits plus a constant), the
    constants of all operands and ``offset`` as
    one constant, and the heap is summed modulo 2**W, W the bits of the exact range of the
    result: no operand is ever negated or sign-extended. Returns the root :class:`Term`
    (``neg`` False; signed when its range has negative values)."""
    if tree not in ADDER_TREES[1:]:
        raise ValueError(f"tree = {tree!r} is not allowed: one of "
                         f"{', '.join(ADDER_TREES[1:])}")
    lo = hi = offset
    bits, const = [], offset
    for t in terms:
        tlo, thi = t.contribution_range
        lo, hi = lo + tlo, hi + thi
        v = Value.cast(t.value)
        tb, tc = heap_bits(v, v.shape(), t.neg, t.shift)
        bits += tb
        const += tc
    width = unsigned_width(hi) if lo >= 0 else signed_width(lo, hi)
    total = heap_sum(m, bits, const, width, tree=tree, stages=depth, en=en, name=name)
    value = Signal(shape_for(lo, hi), name=f"{name}_sum")
    m.d.comb += value.eq(total if lo >= 0 else total.as_signed())
    return Term(value, False, lo, hi)


def heap_sum(m, bits, const, width, *, tree, stages, en=None, fabric=None, name="heap"):
    """``(sum(bit << col for col, bit, _ in bits) + const) mod 2**width`` through a compressor
    tree of ``tree`` (``lut6``/``lut4``, :func:`hamattn.rtl.popcount.plan_heap`) over
    ``stages`` pipeline registers enabled by ``en``; returns a ``width``-bit Value. The
    constant enters the heap as constant-one bits; bits of weight 2**width and above are
    dropped. For a sum known to lie in a ``width``-bit signed range, bit ``width - 1`` of
    the result is its sign."""
    cols = [[] for _ in range(width)]
    for c, bit, flip in bits:
        if c < width:
            cols[c].append((bit, flip))
    k = const % (1 << width)
    for c in range(width):
        if (k >> c) & 1:
            cols[c].append((Const(1, 1), False))
        # plain bits first: the planner gives a column's first bits to the carry chains'
        # generate inputs (xc7 DI), where a complemented bit would take an inverter, and the
        # rest to LUTs, which absorb it
        cols[c].sort(key=lambda item: item[1])
    heap_plan = popcount.plan_heap(tuple(len(col) for col in cols), tree, width)
    ordered = [bit for col in cols for bit, _ in col]
    return popcount.emit_heap(m, heap_plan, ordered, stages=stages, en=en, fabric=fabric,
                              name=name)


def register(m, reg, expr, en=None):
    """``reg <= expr`` on the clock edge, only where ``en`` (when given) is high."""
    if en is None:
        m.d.sync += reg.eq(expr)
    else:
        with m.If(en):
            m.d.sync += reg.eq(expr)


def twin(m, reg, value, *, en=None, name=None):
    """A second flip-flop equal to ``reg`` on every cycle, where the caller registers ``reg``
    from ``value`` (where ``en``, when given): a copy for a share of ``reg``'s consumers, so
    that no one net drives them all. Yosys merges identical flip-flops (``opt_merge``; a
    ``keep`` attribute on their wires does not stop it), so the twin is written
    ``value ^ twin ^ reg``: ``value`` itself, as the two hold the same bits (the same init
    and reset, the same loads), but a function of its own output, which no structural
    merge can identify with ``reg``'s."""
    copy = Signal.like(reg, name=name or f"{reg.name}_twin")
    register(m, copy, value ^ copy ^ reg, en)
    return copy


def delay(m, value, cycles, *, en=None, name="dly"):
    """``value`` delayed by ``cycles`` registers enabled by ``en``."""
    for c in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_{c}")
        register(m, reg, value, en)
        value = reg
    return value


def tag_width(tag_shape):
    """Bits of a side-band ``tag`` shape (a plain shape or a data layout)."""
    return Shape.cast(tag_shape).width


def tagged(fields, tag_shape):
    """A struct layout of ``fields`` plus a ``tag`` field, omitted when the tag has no bits
    (so the Verilog holds no zero-width wires)."""
    fields = dict(fields)
    if tag_width(tag_shape):
        fields["tag"] = tag_shape
    return data.StructLayout(fields)
