"""Compressor-tree popcount of ``a XOR b`` for LUT fabrics (the Hamming distance, SPEC §3).

Yosys turns any sum of bits into the same full-adder tree, 2.2 to 2.8 LUTs per bit pair
whatever the source says. This module plans the tree itself, as a *bit heap*: a list of
columns (column c holds bits of weight 2**c) reduced level by level with counters chosen
for the fabric, and emits each counter as logic that the synthesis tool maps to one LUT per
output bit and cannot restructure.

The plan (:func:`plan`, pure Python) is the same for every fabric; only how it is emitted
differs (:func:`emit`):

* ``fabric=None``: behavioural logic, a truth-table lookup per LUT output and ``+`` for the
  carry chains. It simulates in the Amaranth simulator and in any Verilog simulator, and it
  is what the core uses.
* ``fabric="xc7" | "ice40" | "ecp5"``: the fabric's primitive cells (``LUT1..LUT6`` and
  ``CARRY4``; ``SB_LUT4`` and ``SB_CARRY``; ``LUT4`` with ``+`` chains that Yosys maps to
  ``CCU2C``) so that the planned structure survives synthesis exactly. Yosys proves each
  such netlist equal to the behavioural one (tests/test_popcount.py).

Trees (``tree``):

``lut6``
    Xilinx-style 6-input LUTs with a carry chain whose propagate input is a LUT output.
    Level 0 absorbs the XOR: one LUT6 pair per 3 bit pairs gives their 2-bit count. Later
    levels use *chain counters*: on a carry chain of width w, position i's LUT6 computes
    ``u_i XOR V_i``, where ``u_i`` is a heap bit (also the chain's generate input) and ``V``
    is the count of up to five more heap bits; with the chain's carry-in the counter adds
    ``U + V + cin``: e.g. 9 bits in, 4 out for 3 LUTs. Plain LUT counters (6:3, 5:3, ...)
    fill in. The final two rows are added on the carry chain.
``lut4``
    4-input LUTs with a plain carry chain (iCE40, ECP5). Level 0 gives the 2-bit count of 3
    bit pairs per four LUT4 (two LUT levels); later levels use full adders (two LUT4) and
    ripple adders on the carry chain with a carry-in, whichever removes more bits per
    logic cell (on iCE40 a carry-in and a carry-out each take a cell to enter or leave the
    chain, so a full adder and a 2-position ripple adder with a carry-in tie at 1/2).

The planner also reduces any *bit heap* (:func:`plan_heap`: columns of single bits summed
modulo 2**width), which is how ``--adders`` builds the hash projection's and the linear
read-out's multi-operand sums (:func:`hamattn.rtl.tree.heap_tree`).

Every level's outputs may be registered; :func:`register_after` chooses which levels end
in a register for a given number of pipeline stages (the component's latency).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Instance, Signal

from .plan import tree_depth

__all__ = ["TREES", "FABRICS", "AUTO_TREE", "Lut", "Chain", "Level", "Plan", "plan",
           "plan_heap", "natural_levels", "register_after", "level_weights", "level_live",
           "emit", "emit_heap", "emit_sum", "fabric_family", "lut_inputs", "PRIMITIVE_STUBS"]

#: compressor trees this module plans (``sum`` is the plain adder tree of rtl/tree.py)
TREES = ("lut4", "lut6")
#: fabrics whose primitives :func:`emit` can instantiate
FABRICS = ("xc7", "ice40", "ecp5")
#: the tree chosen for each fabric by ``tree="auto"`` (None: no fabric named)
AUTO_TREE = {"xc7": "lut6", "ice40": "lut4", "ecp5": "lut4", None: "lut6"}

_K = {"lut6": 6, "lut4": 4}
#: chain counters of the lut6 tree: widest chain, most counted bits beside u_i in a LUT6
_CHAIN_W = 4
_V_INPUTS = 5


def fabric_family(target):
    """The fabric of a synthesis target name (``ice40-hx8k`` -> ``ice40``), or None."""
    if target is None:
        return None
    for fam in FABRICS:
        if target == fam or target.startswith(fam + "-"):
            return fam
    raise ValueError(f"fabric = {target!r} is not allowed: one of {', '.join(FABRICS)} "
                     "(or a target name starting with one) or None")


# --------------------------------------------------------------------------- the plan

@dataclass(frozen=True)
class Lut:
    """A counter with one LUT per output bit: ``outs`` (bits of columns col, col+1, ...)
    are the binary digits of ``sum(bit << off for bit, off in ins)``. An input bit below
    ``Plan.b`` is the bit pair t (``a[t] ^ b[t]``, two LUT inputs), any other a heap bit."""
    col: int
    ins: tuple
    outs: tuple


@dataclass(frozen=True)
class Chain:
    """A counter on the carry chain: ``outs`` (columns col, col+1, ...) are the digits of
    ``U + V + cin`` with ``U = sum(u[i] << i)`` (``None``: no bit), ``V = sum(bit << off for
    bit, off in v)`` and ``cin`` a bit of column col or None. Position i's LUT computes
    ``u[i] ^ V_i`` (lut6: V may count several bits per position; lut4: one bit)."""
    col: int
    u: tuple
    v: tuple
    cin: object
    outs: tuple

    @property
    def width(self):
        return len(self.u)


@dataclass(frozen=True)
class Level:
    ops: tuple
    keep: tuple          # ((col, bit), ...) passing through unchanged


@dataclass(frozen=True)
class Plan:
    b: int
    tree: str
    levels: tuple
    result: tuple        # ((col, bit), ...) at most one bit per column: h = sum(bit << col)
    n_bits: int          # bit ids used (pairs 0..b-1, heap bits b..n_bits-1)
    width: int = 0       # bits of the result (popcount: bits of b; heap: the sum mod 2**width)
    inputs: tuple = ()   # heap plans (b = 0): ((col, bit), ...) the input bits, ids 0..

    @property
    def depth(self):
        return len(self.levels)

    def ops(self, kind=None):
        return [op for lv in self.levels for op in lv.ops if kind is None or isinstance(op, kind)]

    def evaluate(self, a, b):
        """popcount(a ^ b) computed through the plan (integers a, b of ``self.b`` bits)."""
        return self._run({t: ((a ^ b) >> t) & 1 for t in range(self.b)})

    def evaluate_heap(self, bits):
        """``sum(bits[x] << col for col, x in self.inputs) % 2**self.width`` computed through
        a heap plan (``bits``: one 0/1 per input bit, in the order of ``inputs``)."""
        return self._run({x: bits[k] & 1 for k, (_, x) in enumerate(self.inputs)})

    def _run(self, val):
        for lv in self.levels:
            for op in lv.ops:
                if isinstance(op, Lut):
                    s = sum(val[x] << off for x, off in op.ins)
                else:
                    s = sum(val[x] << i for i, x in enumerate(op.u) if x is not None)
                    s += sum(val[x] << off for x, off in op.v)
                    s += val[op.cin] if op.cin is not None else 0
                for j, o in enumerate(op.outs):
                    val[o] = (s >> j) & 1
                # a heap plan drops the digits of weight 2**width and above (mod 2**width)
                assert s >> len(op.outs) == 0 or (not self.b and op.col + len(op.outs)
                                                  == self.width), f"{op} overflows"
        return sum(val[x] << c for c, x in self.result)

    def cells(self):
        """Estimated LUTs (logic cells on lut4) by kind: ``pair_counts`` (level 0, the
        counters of bit pairs), ``counters`` (later LUT counters), ``positions`` (carry-chain
        positions with a LUT of their own; lut6: those whose V bit can be set, the others
        are u_i XOR carry in the carry cell alone), and on lut4 ``carry_outs`` and
        ``carry_ins`` (a cell each for a carry that leaves a chain or enters one)."""
        n = dict.fromkeys(("pair_counts", "counters", "positions", "carry_outs",
                           "carry_ins"), 0)
        for lv, level in enumerate(self.levels):
            for op in level.ops:
                if isinstance(op, Lut):
                    n["pair_counts" if lv == 0 and self.b else "counters"] += \
                        _lut_cells(op, self.b, _K[self.tree])
                elif self.tree == "lut6":
                    vmax = sum(1 << off for _, off in op.v)
                    n["positions"] += sum(1 for i in range(op.width) if vmax >> i)
                else:
                    n["positions"] += min(op.width, len(op.outs))
                    n["carry_outs"] += len(op.outs) > op.width
                    n["carry_ins"] += op.cin is not None
        return n

    def cost(self):
        """Estimated LUTs (logic cells on lut4): the sum of :meth:`cells`."""
        return sum(self.cells().values())


def lut_inputs(op, b):
    """LUT inputs of a :class:`Lut` counter: two per bit pair, one per heap bit."""
    return sum(2 if x < b else 1 for x, _ in op.ins)


def _lut_cells(op, b, K):
    """LUTs of a :class:`Lut` counter: one per output; a 3-pair count on 4-input LUTs
    takes four (see :func:`emit`)."""
    return 4 if lut_inputs(op, b) > K else len(op.outs)


@functools.lru_cache(maxsize=None)
def _shapes(tree, room):
    """Counter shapes of ``tree`` sorted best first (bits removed per LUT), for an anchor
    column with ``room`` columns up to the top one (outputs above it are always 0 and
    dropped). A shape is (kind, bits consumed per column, outputs, cost, extra); ``extra``
    describes a lut6 chain counter: (width, u mask, counted bits per column, cin)."""
    K = _K[tree]
    out = []
    # LUT counters: k_j heap bits of column anchor+j, one LUT per output
    for m in (1, 2, 3):
        for ks in itertools.product(range(K + 1), repeat=m):
            if ks[0] == 0 or ks[-1] == 0 or sum(ks) > K or m > room:
                continue
            n = min((sum(k << j for j, k in enumerate(ks))).bit_length(), room)
            if sum(ks) - n >= 1:
                out.append(("lut", ks, n, n, None))
    if tree == "lut6":
        for w in range(1, min(_CHAIN_W, room) + 1):
            for umask in range(1 << w):
                for cin in (0, 1):
                    for vs in itertools.product(range(_V_INPUTS + 1), repeat=w):
                        if sum(vs) > _V_INPUTS or sum(vs) == 0:
                            continue
                        vmax = sum(k << j for j, k in enumerate(vs))
                        if vmax >> w:
                            continue
                        n = min((umask + vmax + cin).bit_length(), room)
                        cons = tuple(vs[j] + ((umask >> j) & 1) + (cin if j == 0 else 0)
                                     for j in range(w))
                        if cons[0] == 0:
                            continue
                        cost = sum(1 for i in range(w) if vmax >> i)
                        if sum(cons) - n >= 1:
                            out.append(("chain", cons, n, cost, (w, umask, vs, cin)))
    out.sort(key=lambda s: (-(sum(s[1]) - s[2]) / s[3], -(sum(s[1]) - s[2]), s[3]))
    return tuple(out)


class _Planner:
    """Greedy bit-heap reduction: level by level, from the lowest column up, the counter
    that removes the most bits per LUT among those the column's bits allow, until every
    column holds at most two bits (three in column 0 where the carry-in is free); then
    one carry-chain adder. Every heap bit remembers the counter it came from, so a counter
    that takes several digits of one earlier count knows their joint maximum (the 2-bit
    count of 2 pairs is at most 2, not 3)."""

    def __init__(self, b, tree, width=None):
        self.b, self.tree, self.K = b, tree, _K[tree]
        # popcount: bits of weight > b are always 0; heap: the sum is taken mod 2**width
        self.width = b.bit_length() if width is None else width
        self.top = self.width - 1
        self.next_id = b
        self.levels = []
        self.src = {}                            # heap bit -> (col of digit 0, digit, max)
        self.inputs = ()

    def outs(self, col, vmax):
        n = min(int(vmax).bit_length(), self.top - col + 1)
        ids = tuple(range(self.next_id, self.next_id + n))
        self.next_id += n
        for j, x in enumerate(ids):
            self.src[x] = (col, j, vmax)
        return ids

    def bound(self, col, items):
        """Largest value of ``sum(bit << off)`` over ``items`` ((bit, off), offsets from
        ``col``), using the joint maximum of digits of one earlier count."""
        groups, total = {}, 0
        for x, off in items:
            if x < self.b:                       # a bit pair
                total += 1 << off
                continue
            c0, j, m = self.src[x]
            key = (c0, m, id_of_group(self.src, x))
            groups.setdefault(key, []).append((j, off))
        for (c0, m, _), digits in groups.items():
            shift = c0 - col
            cap = min(m, sum(1 << j for j, _ in digits))
            total += cap << shift if shift >= 0 else cap >> -shift
        return total

    # ---- level 0: the bit pairs, XOR absorbed into the first counters
    def absorb_pairs(self):
        t, ops = 0, []
        while t < self.b:
            g = min(3, self.b - t)
            if self.tree == "lut4" and self.b - t == 4:
                g = 2                            # 4 left: 2 + 2 (LUT4 pairs) beats 3 + 1
            ins = tuple((p, 0) for p in range(t, t + g))
            ops.append(Lut(0, ins, self.outs(0, g)))
            t += g
        self.levels.append(Level(tuple(ops), ()))
        heap = [[] for _ in range(self.top + 1)]
        for op in ops:
            for j, o in enumerate(op.outs):
                heap[op.col + j].append(o)
        return heap

    # ---- levels 1..: counters until every column holds at most `target` bits
    def target(self, c):
        return 3 if (self.tree == "lut6" and c == 0) else 2

    def compress(self, heap):
        avail = [list(col) for col in heap]
        nxt = [[] for _ in heap]
        ops = []
        for c in range(len(heap)):
            while len(avail[c]) + len(nxt[c]) > self.target(c):
                op = self.best(avail, c)
                if op is None:
                    break
                ops.append(op)
                for j, o in enumerate(op.outs):
                    nxt[c + j].append(o)
        keep = tuple((c, x) for c in range(len(heap)) for x in avail[c])
        for c, x in keep:
            nxt[c].append(x)
        self.levels.append(Level(tuple(ops), keep))
        return nxt

    def best(self, avail, c):
        """Place the most efficient counter anchored at column c (consuming its bits from
        ``avail``) and return it, or None."""
        room = self.top - c + 1
        if self.tree == "lut4":
            chain = self.segment(avail, c)
            if chain is not None:
                return chain
        for shape in _shapes(self.tree, room):
            cons = shape[1]
            if all(c + j < len(avail) and len(avail[c + j]) >= k for j, k in enumerate(cons)):
                return self.place(shape, avail, c)
        return None

    def segment(self, avail, c):
        """lut4: a ripple adder from column c over every following column holding two bits,
        with a third bit of column c as its carry-in when there is one. L positions take
        2L (+1) bits and give L digits and the carry out, which takes a cell of its own to
        leave the chain (none where it is above the top column); a carry-in from the fabric
        also takes a cell to enter it. Placed when it removes at least as many bits per cell
        as a full adder (1/2: from two positions with a carry-in, three without); at equal
        cost it takes one level where full adders take several."""
        L = 0
        while c + L <= self.top and len(avail[c + L]) >= 2:
            L += 1
        cin = len(avail[c]) >= 3
        extract = 1 if c + L <= self.top else 0
        removed = L + cin - extract
        if L == 0 or removed < 1 or removed / (L + extract + cin) < 0.5:
            return None
        u = tuple(avail[c + i].pop(0) for i in range(L))
        v = tuple((avail[c + i].pop(0), i) for i in range(L))
        ci = avail[c].pop(0) if cin else None
        items = [(x, i) for i, x in enumerate(u)] + list(v) + ([(ci, 0)] if cin else [])
        return Chain(c, u, v, ci, self.outs(c, self.bound(c, items)))

    def place(self, shape, avail, c):
        kind, cons, n, cost, extra = shape
        take = lambda j: avail[c + j].pop(0)          # noqa: E731
        if kind == "lut":
            ins = tuple((take(j), j) for j, k in enumerate(cons) for _ in range(k))
            return Lut(c, ins, self.outs(c, self.bound(c, ins)))
        w, umask, vs, cin = extra
        u = tuple(take(i) if (umask >> i) & 1 else None for i in range(w))
        v = tuple((take(j), j) for j, k in enumerate(vs) for _ in range(k))
        ci = take(0) if cin else None
        items = [(x, i) for i, x in enumerate(u) if x is not None] + list(v) \
            + ([(ci, 0)] if ci is not None else [])
        return Chain(c, u, v, ci, self.outs(c, self.bound(c, items)))

    # ---- last level: the remaining two rows (and a carry in) on the carry chain
    def final_add(self, heap):
        lo = next((c for c, col in enumerate(heap) if len(col) >= 2), None)
        if lo is None:
            return heap
        hi = max(c for c, col in enumerate(heap) if col)
        keep = tuple((c, heap[c][0]) for c in range(lo) if heap[c])
        u = tuple(heap[c][0] if heap[c] else None for c in range(lo, hi + 1))
        v = tuple((heap[c][1], c - lo) for c in range(lo, hi + 1) if len(heap[c]) > 1)
        cin = heap[lo][2] if len(heap[lo]) > 2 else None
        items = [(x, i) for i, x in enumerate(u) if x is not None] + list(v) \
            + ([(cin, 0)] if cin is not None else [])
        op = Chain(lo, u, v, cin, self.outs(lo, self.bound(lo, items)))
        self.levels.append(Level((op,), keep))
        out = [[] for _ in heap]
        for c, x in keep:
            out[c].append(x)
        for j, o in enumerate(op.outs):
            out[lo + j].append(o)
        return out

    def run(self, heap=None):
        heap = self.absorb_pairs() if heap is None else heap
        while any(len(col) > self.target(c) for c, col in enumerate(heap)):
            heap = self.compress(heap)
        heap = self.final_add(heap)
        assert all(len(col) <= 1 for col in heap)
        result = tuple((c, col[0]) for c, col in enumerate(heap) if col)
        return Plan(self.b, self.tree, tuple(self.levels), result, self.next_id, self.width,
                    self.inputs)


def id_of_group(src, x):
    """The first bit id of the count that heap bit x is a digit of."""
    return x - src[x][1]


@functools.lru_cache(maxsize=None)
def plan(b, tree):
    """The compressor tree of ``tree`` (``lut4``/``lut6``) for b-bit codes."""
    if tree not in TREES:
        raise ValueError(f"tree = {tree!r} is not allowed: one of {', '.join(TREES)}")
    if not isinstance(b, int) or b < 1:
        raise ValueError(f"b = {b!r} is not allowed: a positive integer")
    return _Planner(b, tree).run()


@functools.lru_cache(maxsize=None)
def plan_heap(columns, tree, width):
    """The compressor tree of ``tree`` for a *bit heap*: ``columns[c]`` input bits of weight
    2**c (single bits, no pairs), summed modulo ``2**width`` (bits of weight 2**width and
    above are dropped). The plan's ``inputs`` are ((col, id), ...) in column order, and its
    ``b`` is 0. Used for the multi-operand sums of the hash projection and the linear
    read-out (:func:`hamattn.rtl.tree.heap_sum`)."""
    if tree not in TREES:
        raise ValueError(f"tree = {tree!r} is not allowed: one of {', '.join(TREES)}")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width = {width!r} is not allowed: a positive integer")
    columns = tuple(columns)[:width]
    if any(not isinstance(n, int) or n < 0 for n in columns):
        raise ValueError(f"columns = {columns!r} is not allowed: counts of bits (integers >= 0)")
    p = _Planner(0, tree, width)
    heap = [[] for _ in range(width)]
    inputs = []
    for c, n in enumerate(columns):
        for _ in range(n):
            x = p.next_id
            p.next_id += 1
            p.src[x] = (c, 0, 1)
            heap[c].append(x)
            inputs.append((c, x))
    p.inputs = tuple(inputs)
    return p.run(heap)


def natural_levels(b, tree):
    """Levels of :func:`plan` (each one LUT level, possibly followed by a carry chain)."""
    return plan(b, tree).depth


def register_after(levels, stages, weights=None, live=None):
    """Which of ``levels`` combinational levels end in a register, for ``stages`` pipeline
    registers: a tuple of ``levels`` counts (registers after level i) summing to
    ``stages``. With enough stages every level ends in one and the extra stages are delay
    registers after the last level. With fewer, consecutive levels share a stage: the
    split minimises the deepest stage (sum of ``weights``, a level's LUT depth; default 1
    each), then the bits registered (``live``: bits leaving each level; default 1 each);
    the last level always ends in a register. ``stages = 0``: all combinational."""
    if stages == 0:
        return (0,) * levels
    if stages < 0:
        raise ValueError(f"stages = {stages!r} is not allowed: at least 0")
    if stages >= levels:
        return tuple([1] * (levels - 1) + [stages - levels + 1])
    weights = list(weights or [1] * levels)
    live = list(live or [1] * levels)

    @functools.lru_cache(maxsize=None)
    def best(i, k):
        """(deepest stage, registered bits, cuts) for levels i.. in k stages."""
        if k == 1:
            return (sum(weights[i:]), live[-1], (levels - 1,))
        options = []
        for j in range(i, levels - k + 1):          # first stage: levels i..j
            deep, bits, cuts = best(j + 1, k - 1)
            options.append((max(deep, sum(weights[i:j + 1])), bits + live[j], (j,) + cuts))
        return min(options)

    cuts = best(0, stages)[2]
    return tuple(1 if i in cuts else 0 for i in range(levels))


def level_weights(tree_plan):
    """LUT depth of each level of a plan: 2 for the 3-pair count on 4-input LUTs, else 1
    (a carry chain behind the LUTs adds little)."""
    out = []
    for level in tree_plan.levels:
        deep = any(isinstance(op, Lut) and lut_inputs(op, tree_plan.b) > _K[tree_plan.tree]
                   for op in level.ops)
        out.append(2 if deep else 1)
    return out


def level_live(tree_plan):
    """Bits leaving each level of a plan (its counters' outputs and the bits it passes)."""
    return [sum(len(op.outs) for op in level.ops) + len(level.keep)
            for level in tree_plan.levels]


# --------------------------------------------------------------------------- emission

def _truth_table(n_pins, fn):
    """Integer truth table of ``fn(bits)`` (bits: tuple of n_pins 0/1, pin k = index bit k)."""
    return sum(fn(tuple((i >> k) & 1 for k in range(n_pins))) << i for i in range(1 << n_pins))


class _Emitter:
    """Turns a :class:`Plan` into Amaranth logic in module ``m``."""

    def __init__(self, m, plan, a, b, en, fabric, name):
        self.m, self.plan, self.a, self.b, self.en = m, plan, a, b, en
        self.fabric, self.name = fabric, name
        self.val = {}
        self.cells = 0

    # ---- pins: a bit pair is two LUT inputs (its XOR is folded into the truth table)
    def pins_of(self, items):
        pins, terms = [], []
        for x, off in items:
            if x < self.plan.b:
                terms.append(((len(pins), len(pins) + 1), off))
                pins += [self.a[x], self.b[x]]
            else:
                terms.append(((len(pins),), off))
                pins.append(self.val[x])
        return pins, terms

    @staticmethod
    def value_fn(terms):
        def f(bits):
            s = 0
            for idx, off in terms:
                v = bits[idx[0]] ^ bits[idx[1]] if len(idx) == 2 else bits[idx[0]]
                s += v << off
            return s
        return f

    def lut(self, pins, tt, name):
        """One LUT output: ``tt`` (truth table over ``pins``) as a primitive cell or as a
        behavioural lookup."""
        o = Signal(name=name)
        n = len(pins)
        if n == 0:
            self.m.d.comb += o.eq(tt & 1)
            return o
        fam = self.fabric
        if fam == "xc7" and n <= 6:
            ports = {f"i_I{k}": p for k, p in enumerate(pins)}
            self.m.submodules[name + "_lut"] = Instance(
                f"LUT{n}", p_INIT=Const(tt, 1 << n), o_O=o, **ports)
        elif fam in ("ice40", "ecp5") and n <= 4:
            full = _truth_table(4, lambda bits: (tt >> sum(bits[k] << k for k in range(n))) & 1)
            if fam == "ice40":
                ports = {f"i_I{k}": (pins[k] if k < n else Const(0, 1)) for k in range(4)}
                self.m.submodules[name + "_lut"] = Instance(
                    "SB_LUT4", p_LUT_INIT=Const(full, 16), o_O=o, **ports)
            else:
                ports = {f"i_{'ABCD'[k]}": (pins[k] if k < n else Const(0, 1)) for k in range(4)}
                self.m.submodules[name + "_lut"] = Instance(
                    "LUT4", p_INIT=Const(full, 16), o_Z=o, **ports)
        elif fam is not None:
            raise ValueError(f"a {n}-input LUT does not fit fabric {fam}")
        else:
            self.m.d.comb += o.eq(Const(tt, 1 << n).bit_select(Cat(*pins), 1))
        self.cells += 1
        return o

    # ---- counters
    def emit_lut(self, k, op):
        pins, terms = self.pins_of(op.ins)
        f = self.value_fn(terms)
        K = 6 if self.fabric in (None, "xc7") else 4
        if len(pins) > K:
            return self.emit_pairs3(k, op, pins)
        for j, o in enumerate(op.outs):
            self.val[o] = self.lut(pins, _truth_table(len(pins), lambda bits: (f(bits) >> j) & 1),
                                   f"{self.name}_b{o}")

    def emit_pairs3(self, k, op, pins):
        """The count of 3 bit pairs on 4-input LUTs: s = x0^x1 and t = x0&x1 from the first
        two pairs, then c0 = s ^ x2 and c1 = t | (s & x2)."""
        assert [x for x, _ in op.ins] == [x for x, _ in op.ins if x < self.plan.b] \
            and len(op.ins) == 3, op
        n = f"{self.name}_p{k}"
        s = self.lut(pins[:4], _truth_table(4, lambda p: (p[0] ^ p[1]) ^ (p[2] ^ p[3])), n + "_s")
        t = self.lut(pins[:4], _truth_table(4, lambda p: (p[0] ^ p[1]) & (p[2] ^ p[3])), n + "_t")
        x2 = pins[4:6]
        c0 = self.lut([s, *x2], _truth_table(3, lambda p: p[0] ^ p[1] ^ p[2]),
                      f"{self.name}_b{op.outs[0]}")
        self.val[op.outs[0]] = c0
        if len(op.outs) > 1:
            c1 = self.lut([t, s, *x2], _truth_table(4, lambda p: p[0] | (p[1] & (p[2] ^ p[3]))),
                          f"{self.name}_b{op.outs[1]}")
            self.val[op.outs[1]] = c1

    def emit_chain(self, k, op):
        w = op.width
        n = f"{self.name}_c{k}"
        vpins, vterms = self.pins_of(op.v)
        vf = self.value_fn(vterms)
        vmax = sum(1 << off for _, off in op.v)
        u = [self.val[x] if x is not None else None for x in op.u]
        cin = self.val[op.cin] if op.cin is not None else None
        outs = [Signal(name=f"{self.name}_b{o}") for o in op.outs]
        for o, sig in zip(op.outs, outs):
            self.val[o] = sig
        direct_v = all(x >= self.plan.b for x, _ in op.v) and \
            len({off for _, off in op.v}) == len(op.v)
        if self.fabric == "xc7":
            S, DI = [], []
            for i in range(w):
                if vmax >> i:
                    # V_i, digit i of V: bit i itself when V is one bit per position (no
                    # carries inside V), else the count of the V bits up to offset i
                    vp, vfi = (([p for p, (_, off) in zip(vpins, op.v) if off == i],
                                lambda bits: bits[0] if bits else 0) if direct_v
                               else (vpins, lambda bits, i=i: (vf(bits) >> i) & 1))
                    pins = ([u[i]] if u[i] is not None else []) + vp
                    has_u = u[i] is not None
                    tt = _truth_table(len(pins), lambda bits, has_u=has_u, vfi=vfi:
                                      (bits[0] if has_u else 0)
                                      ^ vfi(bits[1:] if has_u else bits))
                    S.append(self.lut(pins, tt, f"{n}_s{i}"))
                else:
                    S.append(u[i] if u[i] is not None else Const(0, 1))
                DI.append(u[i] if u[i] is not None else Const(0, 1))
            self.carry4(n, S, DI, cin, outs)
        elif self.fabric == "ice40":
            if not direct_v:
                raise ValueError("iCE40 carry chains add two bits per position")
            vbit = {off: self.val[x] for x, off in op.v}
            c = cin if cin is not None else Const(0, 1)
            for i in range(len(outs)):
                if i < w:
                    ui = u[i] if u[i] is not None else Const(0, 1)
                    vi = vbit.get(i, Const(0, 1))
                    self.m.submodules[f"{n}_lut{i}"] = Instance(
                        "SB_LUT4", p_LUT_INIT=Const(0x6996, 16),
                        i_I0=Const(0, 1), i_I1=ui, i_I2=vi, i_I3=c, o_O=outs[i])
                    if i + 1 < len(outs):
                        co = Signal(name=f"{n}_co{i}")
                        self.m.submodules[f"{n}_cy{i}"] = Instance(
                            "SB_CARRY", i_I0=ui, i_I1=vi, i_CI=c, o_CO=co)
                        c = co
                else:                                    # the carry leaves the chain
                    self.m.submodules[f"{n}_lut{i}"] = Instance(
                        "SB_LUT4", p_LUT_INIT=Const(0xFF00, 16), i_I0=Const(0, 1),
                        i_I1=Const(0, 1), i_I2=Const(0, 1), i_I3=c, o_O=outs[i])
                self.cells += 1
        else:
            # behavioural (and ECP5, whose CCU2C Yosys maps from +): U + V + cin
            if direct_v:
                V = Cat(*[next((self.val[x] for x, off in op.v if off == i), Const(0, 1))
                          for i in range(w)])
            else:
                V = Cat(*[self.lut(vpins, _truth_table(len(vpins), lambda bits, i=i:
                                                      (vf(bits) >> i) & 1), f"{self.name}_v{k}_{i}")
                          for i in range(w)])
            U = Cat(*[x if x is not None else Const(0, 1) for x in u])
            total = U + V
            if cin is not None:
                total = total + cin
            self.m.d.comb += Cat(*outs).eq(total)

    def carry4(self, n, S, DI, cin, outs):
        w = len(S)
        ci = Const(0, 1)
        O, CO = [], []
        for blk in range(0, w, 4):
            s = S[blk:blk + 4] + [Const(0, 1)] * (4 - len(S[blk:blk + 4]))
            di = DI[blk:blk + 4] + [Const(0, 1)] * (4 - len(DI[blk:blk + 4]))
            o, co = Signal(4, name=f"{n}_o{blk // 4}"), Signal(4, name=f"{n}_co{blk // 4}")
            init = (cin if cin is not None else Const(0, 1)) if blk == 0 else Const(0, 1)
            self.m.submodules[f"{n}_cy{blk // 4}"] = Instance(
                "CARRY4", i_CI=ci, i_CYINIT=init, i_DI=Cat(*di), i_S=Cat(*s), o_O=o, o_CO=co)
            O += [o[i] for i in range(4)]
            CO += [co[i] for i in range(4)]
            ci = co[3]
        for i, sig in enumerate(outs):
            self.m.d.comb += sig.eq(O[i] if i < w else CO[w - 1])

    # ---- levels and registers
    def run(self, marks):
        for lv, (level, regs) in enumerate(zip(self.plan.levels, marks)):
            for k, op in enumerate(level.ops):
                if isinstance(op, Lut):
                    self.emit_lut(f"{lv}_{k}", op)
                else:
                    self.emit_chain(f"{lv}_{k}", op)
            live = [o for op in level.ops for o in op.outs] + [x for _, x in level.keep]
            for r in range(regs):
                for x in live:
                    reg = Signal(name=f"{self.name}_b{x}_q{lv}_{r}")
                    _register(self.m, reg, self.val[x], self.en)
                    self.val[x] = reg
        bits = [Const(0, 1)] * self.plan.width
        for c, x in self.plan.result:
            bits[c] = self.val[x]
        return Cat(*bits)


def _register(m, reg, expr, en):
    if en is None:
        m.d.sync += reg.eq(expr)
    else:
        with m.If(en):
            m.d.sync += reg.eq(expr)


def emit(m, tree_plan, a, b, *, stages, en=None, fabric=None, name="pop", _inputs=()):
    """Add ``tree_plan``'s tree to module ``m`` for the codes ``a`` and ``b`` (Values of
    ``plan.b`` bits); return the distance, ``plan.b.bit_length()`` bits, after ``stages``
    pipeline registers (enabled by ``en``). ``fabric``: None for behavioural logic, else
    one of :data:`FABRICS` for its primitive cells."""
    if fabric is not None and fabric not in FABRICS:
        raise ValueError(f"fabric = {fabric!r} is not allowed: None or one of "
                         f"{', '.join(FABRICS)}")
    if fabric in ("ice40", "ecp5") and tree_plan.tree == "lut6":
        raise ValueError(f"tree lut6 needs 6-input LUTs; fabric {fabric} has 4 "
                         "(use tree lut4, or no fabric for behavioural logic)")
    e = _Emitter(m, tree_plan, a, b, en, fabric, name)
    for (_, x), bit in zip(tree_plan.inputs, _inputs):
        e.val[x] = bit
    if tree_plan.depth == 0:
        # a heap of at most one bit per column needs no counter: its bits are the sum,
        # delayed by the stages asked for
        out = e.run(())
        for r in range(stages):
            reg = Signal(len(out), name=f"{name}_q{r}")
            _register(m, reg, out, en)
            out = reg
        return out
    marks = register_after(tree_plan.depth, stages, level_weights(tree_plan),
                           level_live(tree_plan))
    return e.run(marks)


def emit_heap(m, heap_plan, bits, *, stages, en=None, fabric=None, name="heap"):
    """Add a heap plan's tree (:func:`plan_heap`) to module ``m``: ``bits`` (one 1-bit Value
    per input of ``heap_plan.inputs``, in that order); return the sum mod
    ``2**heap_plan.width`` after ``stages`` pipeline registers (enabled by ``en``).
    ``fabric`` as in :func:`emit`."""
    if heap_plan.b:
        raise ValueError("emit_heap takes a heap plan (plan_heap); use emit for a popcount")
    if len(bits) != len(heap_plan.inputs):
        raise ValueError(f"bits: {len(bits)} given, the plan has {len(heap_plan.inputs)} inputs")
    return emit(m, heap_plan, None, None, stages=stages, en=en, fabric=fabric, name=name,
                _inputs=bits)


def emit_sum(m, a, b, width, *, stages, en=None, name="pop"):
    """The plain sum: ``x = a ^ b`` then a binary tree of adders, each as narrow as its
    count, over ``1 + ceil(log2(width))`` levels spread over ``stages`` registers; at the
    default (one register per level) it is the XOR register and the pipelined adder tree
    of rtl/tree.py. Yosys makes a full-adder tree of any such sum."""
    levels = 1 + tree_depth(width)
    marks = register_after(levels, stages)
    nodes = [((a ^ b)[t], 1) for t in range(width)]

    def reg_level(lv, nodes):
        for r in range(marks[lv]):
            out = []
            for i, (v, hi) in enumerate(nodes):
                q = Signal(range(hi + 1), name=f"{name}_l{lv}_{i}" + (f"_d{r}" if r else ""))
                _register(m, q, v, en)
                out.append((q, hi))
            nodes = out
        return nodes

    nodes = reg_level(0, nodes)
    for lv in range(1, levels):
        nxt = []
        for i in range(0, len(nodes), 2):
            if i + 1 < len(nodes):
                (x, hx), (y, hy) = nodes[i], nodes[i + 1]
                nxt.append(((x + y)[:(hx + hy).bit_length()], hx + hy))
            else:
                nxt.append(nodes[i])
        nodes = reg_level(lv, nxt)
    (v, _), = nodes
    return v


#: blackbox declarations of the primitives :func:`emit` instantiates, per fabric: read them
#: with the design where a flow checks the hierarchy before it loads the vendor library
#: (Yosys ``hierarchy -check`` before ``synth_*``); the synthesis then uses its own models
PRIMITIVE_STUBS = {
    "xc7": "".join(
        f"(* blackbox *) module LUT{n}(output O, input {', '.join(f'I{k}' for k in range(n))});"
        f" parameter [{(1 << n) - 1}:0] INIT = 0; endmodule\n" for n in range(1, 7))
        + "(* blackbox *) module CARRY4(output [3:0] CO, output [3:0] O, input CI, input CYINIT,"
          " input [3:0] DI, input [3:0] S); endmodule\n",
    "ice40": "(* blackbox *) module SB_LUT4(output O, input I0, input I1, input I2, input I3);"
             " parameter [15:0] LUT_INIT = 0; endmodule\n"
             "(* blackbox *) module SB_CARRY(output CO, input I0, input I1, input CI);"
             " endmodule\n",
    "ecp5": "(* blackbox *) module LUT4(input A, input B, input C, input D, output Z);"
            " parameter [15:0] INIT = 0; endmodule\n",
}
