"""rtl/tree.py: the multi-operand adder trees, binary (``sum``) and bit heap (``lut6``,
``lut4``), simulated in the Amaranth simulator against the exact integer sum.

Operands mix every kind the core uses: signed and unsigned values, negated ones (``-x`` as
``~x`` plus a constant in the heap), shifted ones (CSD digits), one-bit ones; the trees run
at their own depth, with fewer register stages than the heap has levels, with more, and all
combinational. The output must follow the input by exactly ``depth`` cycles.
"""

import random

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hamattn.config import ADDER_TREES, tree_depth
from hamattn.rtl.tree import Term, adder_tree, heap_tree
from hamattn.verif.amaranth_driver import run_clocked

#: named operand sets: (shape, neg, shift) per operand
OPERANDS = {
    "one_operand": [(signed(8), False, 0)],
    "one_negated_unsigned": [(unsigned(5), True, 0)],
    "one_unsigned": [(unsigned(5), False, 0)],
    "signed_pm": [(signed(8), i % 3 == 0, 0) for i in range(7)],
    "csd_shifts": [(signed(6), i % 2 == 1, i % 4) for i in range(9)],
    "mixed": [(signed(4), False, 0), (unsigned(3), True, 2), (unsigned(1), False, 0),
              (signed(2), True, 5), (unsigned(7), False, 1), (signed(16), True, 0)],
    "bits_21": [(unsigned(1), False, 0)] * 21,
}
#: the constant a heap tree adds (``offset``; -37 unless named): 0 for one plain unsigned
#: operand leaves a heap of at most one bit per column, which needs no counter
OFFSET = {"one_unsigned": 0}


def _range(shape, shift):
    lo, hi = (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed \
        else (0, (1 << shape.width) - 1)
    return lo << shift, hi << shift


class _Tree(wiring.Component):
    def __init__(self, ops, tree, depth, offset):
        self.ops, self.tree, self.depth, self.offset = ops, tree, depth, offset
        members = {f"x{k}": In(s) for k, (s, _, _) in enumerate(ops)}
        members["y"] = Out(signed(40))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        terms = [Term(getattr(self, f"x{k}"), neg, *_range(shape, shift), shift)
                 for k, (shape, neg, shift) in enumerate(self.ops)]
        if self.tree == "sum":
            root = adder_tree(m, terms, depth=self.depth)
            value = -root.value if root.neg else root.value
        else:
            root = heap_tree(m, terms, tree=self.tree, depth=self.depth, offset=self.offset)
            assert not root.neg
            value = root.value
        m.d.comb += self.y.eq(value)
        m.d.sync += Signal(name="tick").eq(1)      # a clock domain even when depth is 0
        return m


def _exact(ops, values, offset):
    return offset + sum((-v if neg else v) << shift for (_, neg, shift), v in zip(ops, values))


def _draw(rng, shape):
    lo, hi = _range(shape, 0)
    return rng.choice([lo, hi, 0, rng.randint(lo, hi)])


#: register stages beyond the binary tree's depth: the binary tree needs at least its depth,
#: a heap tree takes fewer (its levels then share stages)
EXTRA = {"own_depth": 0, "one_stage_less": -1, "two_more": 2}
CASES = [(t, n, e) for t in ADDER_TREES for n in OPERANDS for e in EXTRA
         if not (t == "sum" and EXTRA[e] < 0)]


@pytest.mark.parametrize("tree,name,extra", CASES, ids=["-".join(c) for c in CASES])
def test_tree_sum_and_latency(tree, name, extra):
    extra = EXTRA[extra]
    ops = OPERANDS[name]
    own = tree_depth(len(ops))
    depth = max(0, own + extra)
    offset = 0 if tree == "sum" else OFFSET.get(name, -37)
    dut = _Tree(ops, tree, depth, offset)
    seed = sum(map(ord, name + tree)) + extra
    rng = random.Random(seed)
    stimulus = [[_draw(rng, s) for s, _, _ in ops] for _ in range(40)]
    got = []

    async def bench(ctx):
        for values in stimulus + [[0] * len(ops)] * depth:
            for k, v in enumerate(values):
                ctx.set(getattr(dut, f"x{k}"), v)
            await ctx.delay(1e-9)
            got.append(ctx.get(dut.y))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = [_exact(ops, values, offset) for values in stimulus]
    assert got[depth:depth + len(want)] == want, f"seed {seed}"


def test_heap_tree_checks():
    m = Module()
    with pytest.raises(ValueError, match="tree = 'sum' is not allowed: one of lut4, lut6"):
        heap_tree(m, [Term(Signal(4), False, 0, 15)], tree="sum", depth=1)


# --------------------------------------------------------------------------- twin

def _twin_top(kind):
    """A flip-flop ``reg`` (loaded from an input where an enable is high) and its copy, each
    driving an output of its own: the copy a :func:`twin`, or (``plain``) the same
    assignment written twice."""
    from amaranth.hdl import Mux
    from hamattn.rtl.tree import register, twin

    class Top(wiring.Component):
        a: In(1)
        b: In(1)
        en: In(1)
        x: Out(1)
        y: Out(1)

        def elaborate(self, platform):
            m = Module()
            reg = Signal(init=1, name="reg")
            value = Mux(self.a, ~reg, self.b)
            register(m, reg, value, self.en)
            if kind == "twin":
                copy = twin(m, reg, value, en=self.en)
            else:
                copy = Signal(init=1, name="copy", attrs={"keep": 1})
                register(m, copy, value, self.en)
            m.d.comb += [self.x.eq(reg), self.y.eq(copy)]
            return m
    return Top()


def test_twin_follows_its_register():
    """On every cycle of random inputs and enables the twin holds its register's bit."""
    top = _twin_top("twin")
    rng = random.Random(3)
    seen = set()

    async def bench(ctx):
        for _ in range(300):
            for s in (top.a, top.b, top.en):
                ctx.set(s, rng.random() < 0.5)
            x, y = ctx.get(top.x), ctx.get(top.y)
            assert x == y
            seen.add(x)
            await ctx.tick()

    run_clocked(top, bench)
    assert seen == {0, 1}


@pytest.mark.parametrize("kind, ffs", [("twin", 2), ("plain", 1)])
def test_twin_survives_synthesis(kind, ffs, tmp_path):
    """Yosys (synth_ice40) keeps a twin as a flip-flop of its own, and merges a plain copy
    written alike, a ``keep`` attribute on its wire notwithstanding (why twin exists)."""
    import json
    from amaranth.back import rtlil
    from hamattn.synth.tools import run_yosys

    (tmp_path / "top.il").write_text(rtlil.convert(_twin_top(kind), name="top"))
    run_yosys("read_rtlil top.il\nsynth_ice40 -top top\ntee -q -o stat.json stat -json\n",
              cwd=tmp_path, name="synth")
    stat = json.loads((tmp_path / "stat.json").read_text())
    cells = stat["modules"]["\\top"]["num_cells_by_type"]
    assert sum(n for t, n in cells.items() if t.startswith("SB_DFF")) == ffs, cells
