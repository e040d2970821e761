"""Hash projection (SPEC §2): c[t] = (sum_i W[t,i] x[i] >= θ[t]), multiplier-free.

:class:`HashPlan` holds the numbers (weights, widths, tree operands, timing);
:meth:`HashPlan.component` builds :class:`HashProjection` (all d elements at once) or
:class:`FoldedHashProjection` (P lanes per cycle, optionally T rows per pass)."""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from amaranth.hdl import (Cat, Const, Module, Mux, ResetSignal, Signal, Value, signed,
                          unsigned)
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .plan import Folding, Timing, csd_digits, signed_width, tree_depth
from .tree import (Term, adder_tree, delay, heap_tree, register, shape_for, tag_width, tagged,
                   twin)

__all__ = ["HashPlan", "HashProjection", "FoldedHashProjection", "row_terms", "group_select"]

#: the two selects of an operand whose digit varies: bit 0 of its ROM pair, and bit 1
_SELECTS = {"neg": lambda v: v < 0, "nonzero": lambda v: v != 0}


def group_select(m, flat, onehot, width, name="sel", first=None):
    """Word g (``width`` bits) of ``flat`` where bit g of ``onehot`` (one-hot, a flip-flop
    per word) is high, 0 where ``flat`` has no word g: an AND-OR in LUT4-sized pieces, each
    a wire of its own (``keep``, so that synthesis maps each piece as one LUT4 level and does
    not chain them): two words and their bits per piece (``a & sa | b & sb``), then ORs of
    four, ceil(log4(G / 2)) + 1 LUT4 levels, each select bit driving ``width`` gates (a
    binary G:1 mux fans its select bits out to every level of a tree twice as deep).
    ``first``: a word already gated (a piece of its own, e.g. ``Mux(c, x, y) & s``), ORed
    with the others."""
    terms = [(flat[g * width:(g + 1) * width], onehot[g]) for g in range(len(onehot))
             if len(flat[g * width:(g + 1) * width])]
    level = [] if first is None else [first]
    level += [_or([Mux(s, word, 0) for word, s in terms[i:i + 2]])
              for i in range(0, len(terms), 2)]
    depth = 0
    while True:
        depth += 1
        wires = []
        for i, piece in enumerate(level):
            wire = Signal(width, name=f"{name}_{depth}_{i}", attrs={"keep": 1})
            m.d.comb += wire.eq(piece)
            wires.append(wire)
        if len(wires) == 1:
            return wires[0]
        level = [_or(wires[i:i + 4]) for i in range(0, len(wires), 4)]


def _lookup(m, bits, idx, pieces, name):
    """Bit ``idx`` of the constant ``bits`` (a table of 2**len(idx) one-bit entries) in at
    most two LUT4 levels for an index of up to 6 bits: a LUT4 per 16-entry piece of the table
    (indexed by idx[:4]; each a wire of its own, ``keep``, shared through ``pieces`` by the
    lookups of the same piece, none for a constant piece), then a mux of the pieces by the
    high bits of idx (synthesis would otherwise share logic between the tables of many
    lookups of one counter and chain it, several levels deep)."""
    if len(idx) <= 4:
        return Const(bits, 1 << len(idx)).bit_select(idx, 1)
    parts = []
    for h in range(1 << (len(idx) - 4)):
        piece = (bits >> (16 * h)) & 0xFFFF
        if piece in (0, 0xFFFF):
            parts.append(Const(piece & 1, 1))
            continue
        if piece not in pieces:
            pieces[piece] = wire = Signal(name=f"{name}_p{len(pieces)}", attrs={"keep": 1})
            m.d.comb += wire.eq(Const(piece, 16).bit_select(idx[:4], 1))
        parts.append(pieces[piece])
    return Cat(*parts).bit_select(idx[4:], 1)


def _or(values):
    out = values[0]
    for v in values[1:]:
        out = out | v
    return out


def row_terms(row):
    """Shifted operands of one projection row: ``[(i, shift, sign)]`` from the CSD form of
    each non-zero weight (a ternary weight is a single ±x[i])."""
    return [(i, s, sg) for i, c in enumerate(row) for s, sg in csd_digits(c)]


@dataclass(frozen=True)
class HashPlan(Folding):
    """The hash of d-vectors of w-bit elements into b-bit codes by the constants ``W`` (b
    rows of d) and ``theta`` (and ``Wq``, ``thetaq`` for queries, or None), read ``lanes``
    elements per cycle and, folded, ``rows`` code rows per pass; its adder trees are
    ``adders`` (rtl/tree.py)."""

    d: int
    w: int
    b: int
    W: tuple
    theta: tuple
    Wq: tuple | None = None
    thetaq: tuple | None = None
    lanes: int | None = None
    rows: int | None = None
    adders: str = "sum"

    def __post_init__(self):
        self._unfolded_by_default()

    @property
    def asymmetric(self):
        """True when queries have their own hash (Wq, θq)."""
        return self.Wq is not None

    @property
    def hashes(self):
        """[(W, θ)], and (Wq, θq) after it when queries have their own hash."""
        return [(self.W, self.theta)] + ([(self.Wq, self.thetaq)] if self.asymmetric else [])

    # ---------------------------------------------------------------- widths
    @staticmethod
    def weight_width_of(M):
        """Signed bits of the widest entry of M (at least 2, a ternary weight needs 2)."""
        flat = [x for r in M for x in r]
        return max(2, signed_width(min(flat, default=0), max(flat, default=0)))

    @property
    def weight_width(self):
        return max(self.weight_width_of(M) for M, _ in self.hashes)

    def projection_range(self, M):
        """(lo, hi) of y[t] = sum_i W[t,i] x[i] over all rows, for w-bit x."""
        A = np.array(M, dtype=object).reshape(self.b, self.d)
        lo = sum((np.minimum(A * self.vmin, A * self.vmax)).T)
        hi = sum((np.maximum(A * self.vmin, A * self.vmax)).T)
        return int(min(lo)), int(max(hi))

    @property
    def projection_width(self):
        ranges = [self.projection_range(M) for M, _ in self.hashes]
        return signed_width(min(lo for lo, _ in ranges), max(hi for _, hi in ranges))

    # ---------------------------------------------------------------- trees
    @cached_property
    def folded_terms(self):
        """Folded: for each row t the shifted lane operands ``(p, s)`` of its P-lane tree,
        the union over the groups g (and over W and Wq when queries have their own hash) of
        the CSD digits at shift s of W[t, gP+p]; the digit itself is chosen by g (and the
        query flag) at run time."""
        P = self.lanes
        return tuple(tuple(sorted({(i % P, s) for M, _ in self.hashes
                                   for i, c in enumerate(M[t]) for s, _ in csd_digits(c)}))
                     for t in range(self.b))

    @cached_property
    def slot_terms(self):
        """Folded: the operands ``(p, s)`` of the P-lane tree of each of its T = ``rows``
        slots. Slot j computes rows j, T + j, 2T + j, ... (< b), one row block per pass over
        the groups (R = ceil(b/T) passes, :attr:`interval`), so its tree has the union of
        those rows' operands; with T = b (no row folding) slot t is row t."""
        T, b = self.rows, self.b
        rows = self.folded_terms
        return tuple(tuple(sorted({ps for t in range(j, b, T) for ps in rows[t]}))
                     for j in range(T))

    def slot_digits(self, j):
        """Folded: {(p, s): {(g, r, h): digit}} for slot j: the CSD digit at shift s of the
        weight of hash h (0: W, 1: Wq) at element gP+p of row rT+j, for every group g and row
        block r (0 where it has none, or where block r has no row j)."""
        P, G, T, R = self.lanes, self.groups, self.rows, self.row_blocks
        hashes = [M for M, _ in self.hashes]
        out = {ps: {(g, r, h): 0 for g in range(G) for r in range(R)
                    for h in range(len(hashes))}
               for ps in self.slot_terms[j]}
        for r in range(R):
            t = r * T + j
            if t >= self.b:
                continue
            for h, M in enumerate(hashes):
                for i, c in enumerate(M[t]):
                    g, p = divmod(i, P)
                    for s, sg in csd_digits(c):
                        out[p, s][g, r, h] = sg
        return out

    @cached_property
    def varying(self):
        """Folded: the slot operands ``(j, (p, s))`` whose digit varies with (group, block,
        hash), each chosen at run time by two selects (negative, non-zero)."""
        return tuple((j, ps) for j in range(self.rows)
                     for ps, dig in self.slot_digits(j).items() if len(set(dig.values())) > 1)

    #: slot trees per copy of the folded hash's last lane register (a flip-flop per lane
    #: bit and copy, :func:`tree.twin`): ceil(T / LANE_ROWS) copies, so that no lane bit
    #: drives the operands of more than LANE_ROWS trees
    LANE_ROWS = 16

    #: widest memory of a row-folded digit ROM (:attr:`HashPlan.rom_ahead`): 18 bits, an ECP5
    #: block RAM's read port (a wider word takes its 36-bit mode, whose output register the
    #: read-ahead's second register cannot move into)
    ROM_PORT = 18

    #: widest digit ROM word (2 bits per varying operand) that an unfolded-row hash (R = 1)
    #: reads from a ROM: 64 bits, 4 iCE40 block RAMs of 16 bits (2 ECP5 ones of 36)
    ROM_WIDTH = 64

    @property
    def digit_rom(self):
        """Folded: the digits of the varying operands come from a ROM (a synchronous read,
        block RAM) addressed by (group, block, hash) beside the lane register, rather than
        from a flip-flop per select looked up from the group counter: always when the rows
        are folded (R > 1), and for R = 1 when its word, 2·len(:attr:`varying`) bits, is at
        most :attr:`ROM_WIDTH` (a P = 1 hash of up to 32 rows)."""
        return self.folded and len(self.varying) > 0 and (
            self.row_blocks > 1 or 2 * len(self.varying) <= self.ROM_WIDTH)

    @property
    def rom_regs(self):
        """Register stages of a row-folded digit ROM's word (and of the lanes and the
        vector's flags beside it) beyond the lane register: 2 where the ROM's bits per
        (group, block), 2·|varying|·H, take more than one memory of :attr:`ROM_PORT` bits
        (block RAMs that the placer cannot put beside every slot tree they feed): the ROM is
        then read in step, its address the group counters (flip-flops, no logic before the
        block RAMs' address pins), its word registered twice (the block RAM's output
        register, then flip-flops that the placer puts between the block RAMs and the
        trees); 0 otherwise. They add as many edges to the latency."""
        return 2 * int(self.digit_rom and self.row_blocks > 1
                       and 2 * len(self.varying) * len(self.hashes) > self.ROM_PORT)

    @property
    def rom_ahead(self):
        """Folded with the digit ROM and the rows folded (R > 1), in one memory
        (:attr:`rom_regs` 0): the ROM is read a cycle ahead: its word at the counters'
        (group, block) is the word of the group read after that one, read at each group
        read (the counters are its address, flip-flops with no logic before the block
        RAM's address pins, and the read its enable), so that it holds the word of the group
        the counters point at; that word is registered again beside the lane register (a
        block RAM's read, then its output register; the hashes' words side by side, the
        query flag picking one into that register), so that no logic stands between the
        block RAM and the operands' selects; the latency is the same. Otherwise the ROM is
        read in step: for R = 1 beside the lane register (one register), where
        :attr:`rom_regs` with two registers more."""
        return self.digit_rom and self.row_blocks > 1 and not self.rom_regs

    @property
    def rom_pieces(self):
        """Memories of the digit ROM (:attr:`digit_rom`), side by side: with
        :attr:`rom_regs`, the fewest of at most :attr:`ROM_PORT` bits over its word,
        ``ceil(2·|varying| / ROM_PORT)`` (a word per (group, block, hash)); else 1; 0
        without a ROM."""
        if not self.digit_rom:
            return 0
        return -(-2 * len(self.varying) // self.ROM_PORT) if self.rom_regs else 1

    @property
    def depth(self):
        """Register levels of the adder trees: of the deepest row (both hashes) unfolded, of
        the widest P-lane slot tree folded, at least 1 folded: a slot tree of one operand
        (P = 1) registers that operand (its select, ±x or 0, one LUT level) so that the
        accumulator's carry chain starts from a flip-flop."""
        if self.folded:
            return max(1, max((tree_depth(len(r)) for r in self.slot_terms), default=0))
        return max((tree_depth(len(row_terms(r))) for M, _ in self.hashes for r in M),
                   default=0)

    # ---------------------------------------------------------------- timing
    @property
    def latency(self):
        """Edges from the input transfer to the output transfer (output ready, hash
        otherwise idle).

        Unfolded (G = 1): one input register, one per adder level of the deepest row (both
        hashes when queries have their own), one compare: ``2 + max_t ceil(log2(terms_t))``.

        Folded (G > 1): the transfer edge registers the last group of P lanes, then one edge
        per level of the deepest P-lane tree (at least one: a lone operand is registered),
        one edge adds the group into the row accumulator (which starts at -θ), one edge
        registers its sign (y >= θ) into the output, which transfers on the next edge:
        ``3 + rom_regs + max(1, max_j ceil(log2(|slot_terms[j]|)))`` (a slot j is row j
        unless ``rows`` < b folds the rows; P = 1: 4; :attr:`rom_regs`, 2 where a row-folded
        digit ROM spans several memories: register stages between the lane register and
        the trees)."""
        return Timing((3 + self.rom_regs if self.folded else 2) + self.depth)

    @property
    def interval(self):
        """Cycles spent on one vector: 1, or G when folded (one group of P input elements per
        cycle), G·R when the rows are folded too (``rows`` T < b: R passes of T rows)."""
        return Timing(self.groups * self.row_blocks)

    @property
    def adder_bits(self):
        """Bits of the hash's adders (a size estimate): per row a tree of terms - 1 adders
        unfolded; per slot a P-lane tree and its accumulator folded."""
        pw = self.projection_width
        if self.folded:
            return sum(len(r) * pw for r in self.slot_terms)
        return sum(max(0, len(row_terms(r)) - 1) * pw for M, _ in self.hashes for r in M)

    def component(self, tag_shape=unsigned(0), *, stalls=True, select=True):
        """The hash of this plan: :class:`FoldedHashProjection` when G > 1, else
        :class:`HashProjection` (``stalls``, ``select``: see there)."""
        return (FoldedHashProjection if self.folded else HashProjection)(
            self, tag_shape, stalls=stalls, select=select)


def _members(plan, tag_shape, folded=False, select=True):
    """``i``: ``{x: d × signed(w), query: 1, tag}``, ``o``: ``{code: unsigned(b), tag}``;
    folded, also ``reading`` and ``group``: which group of ``i.payload.x`` is read in this
    cycle (a core reads the same group of the key's value beside it), ``advance``: the group
    read moves on to the next (``group`` rotated left by one) at the edge, and
    ``last_next``: the read after the edge is the vector's last (``i.ready`` then, unless the
    pipeline stalls), so that a consumer can register a ready or a select of its own a cycle
    ahead, and ``last_if_read`` (a flip-flop): ``last_next`` where a read happens in this cycle
    (``last_next = Mux(read, last_if_read, i.ready)``), for a consumer that knows the read
    better than the hash does. Folded with ``select=False``, ``x`` is the
    group itself (P × signed(w)), selected by the consumer."""
    lanes = plan.d if select else plan.lanes
    members = {
        "i": In(stream.Signature(tagged(
            {"x": data.ArrayLayout(signed(plan.w), lanes), "query": 1}, tag_shape))),
        "o": Out(stream.Signature(tagged({"code": unsigned(plan.b)}, tag_shape))),
    }
    if folded:
        members["reading"] = Out(1)
        members["group"] = Out(plan.groups)
        members["advance"] = Out(1)
        members["last_next"] = Out(1)
        members["last_if_read"] = Out(1)
    return members


class HashProjection(wiring.Component):
    """Binary hash of a d-vector with constant weights baked into the logic.

    Ports (both cases, :func:`_members`):
      ``i``: stream of ``{x: d × signed(w), query: 1, tag: tag_shape}``
      ``o``: stream of ``{code: unsigned(b), tag: tag_shape}``; ``tag`` passes unchanged.

    **Unfolded** (``plan.groups`` G = 1, ``lanes`` = d). Each row t is an adder tree over the
    canonical-signed-digit terms ``±x[i] << s`` of its weights (a ternary or sign weight is
    one ``±x[i]``; zero weights cost nothing), the sign of every node carried beside it so
    that no operand is ever negated. One adder level per pipeline stage; rows shallower than
    the deepest are padded with registers. When the config gives queries their own hash
    (``Wq``, ``θq``), both sets of trees read the same input register and
    ``i.payload.query`` picks the code. With ``plan.adders`` lut6/lut4, a row is instead one
    bit heap of its operands' bits and the constant -θ (:func:`tree.heap_tree`), reduced by
    the popcount's counters over the same stages, and the code bit is the sign of y - θ (the
    folded P-lane trees become heaps the same way).
    Latency: ``plan.latency`` = 2 + ceil(log2(most terms in a row)) edges from input
    transfer to output transfer. Throughput: one vector per cycle. The pipeline advances as
    a whole when its output is empty or taken (``i.ready = ~o.valid | o.ready``).

    With ``stalls=False`` the pipeline never stalls: its registers have no clock enable
    (no enable net fanning out to every stage) and ``i.ready`` is 1; the consumer must take
    every output in the cycle it is valid (``o.ready`` is not read). The core builds it so:
    its throttles already keep the value path ready for every token the hash delivers.

    ``select`` (folded only: :class:`FoldedHashProjection`) is True here.
    """

    folded = False

    def __init__(self, plan, tag_shape=unsigned(0), *, stalls=True, select=True):
        if not select and not self.folded:
            raise ValueError("select=False is not allowed for an unfolded hash (G = 1): it "
                             "reads the whole vector, there is no group to select")
        self.plan = plan
        self.tag_shape = tag_shape
        self.stalls = stalls
        self.select = select
        super().__init__(_members(plan, tag_shape, self.folded, select))

    @property
    def latency(self):
        return self.plan.latency

    def _codes(self, m, x, W, theta, en, depth, name):
        plan = self.plan
        bits = []
        for t in range(plan.b):
            terms = [Term(x[i].as_signed(), sg < 0, plan.vmin << s, plan.vmax << s, s)
                     for i, s, sg in row_terms(W[t])]
            th = int(theta[t])
            lo = sum(tm.contribution_range[0] for tm in terms)
            hi = sum(tm.contribution_range[1] for tm in terms)
            if lo >= th or hi < th:
                # y >= θ (or y < θ) for every input, e.g. a row of zeros or of only
                # positive weights with θ <= 0: the bit is a constant
                bits.append(Const(int(lo >= th), 1))
            elif plan.adders != "sum":
                # one bit heap of the operands and -θ: the code bit is the sign of y - θ
                root = heap_tree(m, terms, tree=plan.adders, en=en, depth=depth,
                                 name=f"{name}{t}", offset=-th)
                bits.append(root.value >= 0)
            else:
                root = adder_tree(m, terms, en=en, depth=depth, name=f"{name}{t}")
                bits.append((root.value <= -th) if root.neg else (root.value >= th))
        return bits

    def elaborate(self, platform):
        plan = self.plan
        m = Module()
        if self.stalls:
            en = Signal()
            m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        else:
            en = None
            m.d.comb += self.i.ready.eq(1)

        # stage 1: input register
        x = Signal(data.ArrayLayout(signed(plan.w), plan.d))
        query = Signal()
        register(m, x, self.i.payload.x, en)
        register(m, query, self.i.payload.query, en)

        depth = plan.depth
        codes_k = self._codes(m, x, plan.W, plan.theta, en, depth, "k")
        query_d = delay(m, query, depth, en=en, name="query")
        code = Signal(plan.b)
        if plan.asymmetric:
            codes_q = self._codes(m, x, plan.Wq, plan.thetaq, en, depth, "q")
            sel = [Mux(query_d, cq, ck) for ck, cq in zip(codes_k, codes_q)]
        else:
            sel = codes_k
        # final stage: compare to θ and register the code
        for t, s in enumerate(sel):
            register(m, code[t], s, en)

        latency = plan.latency.fixed
        valid = delay(m, self.i.valid, latency, en=en, name="valid")
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.code.eq(code)]
        if tag_width(self.tag_shape):
            tag = delay(m, Value.cast(self.i.payload.tag), latency, en=en, name="tag")
            m.d.comb += self.o.payload.tag.eq(tag)
        return m


class FoldedHashProjection(HashProjection):
    """The hash of :class:`HashProjection` (same ports and code), reading P lanes per cycle.

    **Folded** (G = ceil(d/P) > 1, P = ``plan.lanes``). Consume-then-transfer input: while
    ``i.valid`` is high the hash reads one group of P elements of ``i.payload.x`` per cycle
    (group g holds elements gP .. gP+P-1, missing ones read as 0; the payload must stay
    stable while valid is high, as a stream requires) and raises ``i.ready`` only in the
    cycle it reads group G-1: the beat transfers then. Per row t a P-lane tree adds the
    operands ``(p, s)`` of ``plan.folded_terms[t]``: lane x_p shifted by s, passed,
    complemented (``~x_p``) or zeroed according to the CSD digit of W[t, gP+p] at shift s, a
    constant of the group index (and of the query flag when queries have their own hash; W
    and Wq share the trees). As
    ``-x = ~x + 1``, the sum of the complemented operands falls short of the true sum by a
    constant C per row (the weights of the negative digits over all groups); it is folded
    into the threshold, so there is no negation, no correction adder and no multiplier. A row
    accumulator of exact width starts a vector at -(θ - C) and adds the G partial sums; its
    sign is the code bit (``y >= θ``), so there is no comparator either. A bit that is the
    same for every input (the row's range never or always reaches θ) is a constant.
    Registers: the lane register (written by the group read) and beside it the digit
    selects (a ROM's read, or a flip-flop per select looked up from the group counter), one
    per tree level (at least one: with P = 1 the lone operand ±x or 0, one LUT level, is
    registered before the accumulator's carry chain), the accumulators (an accumulator
    returns to its start value, or to 0 where the start value varies with the block or the
    hash, by a synchronous set/reset as it adds a block's last group: its clock enable and
    its set/reset are flip-flops, no mux stands before its adder) and their signs (a
    flip-flop each, loaded where a block ends: the top bit of the accumulator's last sum,
    or, where it returns to 0, of acc + root + the block's start value, a 3:2 compression
    and an adder of their own), the output.
    **Digit ROM** (``plan.digit_rom``): the two selects (negative, non-zero) of every
    operand whose digit varies come from one ROM word per (group, block, hash), read beside
    the lane register: always when the rows are folded, and for R = 1 when the word is at
    most ``HashPlan.ROM_WIDTH`` bits (a block RAM; otherwise a flip-flop per select).
    **Row-folded** (``rows`` T < b, a linear core folding its state's rows, R = ceil(b/T)):
    T row slots instead of b rows; the hash reads the G groups R times, pass r computing
    rows rT .. rT+T-1 in the slots (slot j's tree has the union of the operands of rows
    j, T+j, ...; the digits of (group, pass, hash) come from a ROM read beside the lane
    register, the start value -θ' from a table of (pass, hash), added where the sign
    leaves). A pass's bits wait in a
    register until the last pass; ``i.ready`` rises on group G-1 of pass R-1. Throughput one
    vector per G·R cycles (``plan.interval``), the latency formula unchanged.

    Ports ``reading`` and ``group`` (folded only): ``reading`` is high in each cycle that the
    hash reads a group of ``i.payload.x`` in its first pass, ``group`` (G bits, one-hot, a
    flip-flop per group) says which (:func:`group_select`); ``last_next`` is the flag behind
    ``i.ready`` as it will be after the edge (``i.ready = last_read``, and ``en`` when the
    pipeline can stall): a core registers its own readies from it. With ``select=False`` the
    consumer selects the group: ``i.payload.x`` is the P lanes of group ``group`` (a consumer
    that has the vectors as flip-flop-driven wires keeps a one-hot select of its own,
    rotated where ``advance`` is high: the select is one AND-OR and no flag fans out before
    it, and ``advance`` is a clock enable, not a mux before every flip-flop of the select).
    Latency: ``plan.latency`` = 3 + max(1, ceil(log2(most operands of a row tree))) edges
    from the transfer (group G-1) to the output transfer. Throughput: one vector per G cycles.
    The lane register and the trees stall only while the accumulators hold a finished
    vector that the output register cannot take; so the groups of the next vector proceed
    while the previous code waits in the output register, and only the accumulation of the
    last group needs the output free (or emptied in that cycle). A downstream that takes one
    code per G cycles still sees one vector every G cycles.
    With ``stalls=False`` the consumer may hold a code in the output register (``o.ready``
    low) but must have taken it by the edge at which the next vector finishes: the code and
    the tag load at that edge (their clock enable is the accumulators' ``full`` flag, a
    flip-flop), and ``o.ready`` reaches only ``o.valid``'s flip-flop.
    """

    folded = True

    def _row_bounds(self, t, h, M, theta):
        """(lo, hi, θ') of row t of hash h: the range of y' (the sum with ~x for -x) and the
        threshold θ' = θ - C that y' is compared with (C: the weights of the negative
        digits)."""
        plan = self.plan
        lo = hi = corr = 0
        for _, s, sg in row_terms(M[t]):
            lo += plan.vmin << s
            hi += plan.vmax << s
            if sg < 0:
                corr += 1 << s
        return lo, hi, int(theta[t]) - corr

    def elaborate(self, platform):
        plan = self.plan
        m = Module()
        G, P, w = plan.groups, plan.lanes, plan.w
        T, R = plan.rows, plan.row_blocks
        gbits = max(1, (G - 1).bit_length())
        rbits = (R - 1).bit_length()
        hashes = plan.hashes
        H = len(hashes)
        has_tag = tag_width(self.tag_shape) > 0

        # handshakes: the output register loads when empty or taken; the lane register and
        # the trees advance unless the accumulators hold a finished vector that cannot leave
        # (never, with stalls=False: the trees then have no clock enable, and the output
        # register is always empty or taken when a vector finishes)
        en_out = Signal()
        full = Signal()                    # the accumulators hold the last block of a vector
        m.d.comb += en_out.eq(~self.o.valid | self.o.ready)
        if self.stalls:
            en = Signal()
            m.d.comb += en.eq(~full | en_out)
        else:
            en = Const(1, 1)

        # group read: one group of P lanes per cycle while i.valid, R passes (row blocks)
        # over the G groups; transfer on group G-1 of block R-1
        cnt = Signal(range(G))
        blk = Signal(range(R), name="block") if R > 1 else Const(0, 1)
        last_grp = cnt == G - 1
        # (registered: the read is the last one when the counters' next values say so, so
        # i.ready decodes no counter)
        last_read = Signal(name="last_read")
        cnt_next = Mux(last_grp, 0, cnt + 1)
        blk_next = Mux(last_grp, Mux(blk == R - 1, 0, blk + 1), blk) if R > 1 else blk
        m.d.comb += self.i.ready.eq(en & last_read)
        # the group read, one-hot beside the counter: it selects the group (an AND-OR, not
        # a G:1 mux of the counter's bits)
        onehot = Signal(G, init=1, name="group_onehot")
        # (the flag's and the group's next values, ports: the core registers its readies
        # and its own group select from them)
        # (the one-hot moves on under the read as a clock enable: its flip-flops' inputs are
        # its own bits, so the input's valid reaches them as an enable, not through a mux)
        read = en & self.i.valid
        # (a read now is the vector's last: a flip-flop beside the counters, written from
        # their values after the edge, so that the next flag is one mux of the read)
        def is_last_after(c, b):
            if isinstance(c, int):
                return int((0 if c == G - 1 else c + 1) == G - 1
                           and ((b + 1) % R if c == G - 1 else b) == R - 1)
            c2 = Mux(c == G - 1, 0, c + 1)
            b2 = Mux(c == G - 1, Mux(b == R - 1, 0, b + 1), b) if R > 1 else b
            return (c2 == G - 1) & (b2 == R - 1)
        last_if_read = Signal(init=is_last_after(0, 0), name="last_if_read")
        with m.If(read):
            m.d.sync += last_if_read.eq(is_last_after(cnt_next, blk_next))
        # (the port is a twin of the flag: the core's readies are its only loads, so the
        # placer can put it beside them, away from the hash's own `last_next` mux)
        lir_port = twin(m, last_if_read, is_last_after(cnt_next, blk_next), en=read,
                        name="last_if_read_port")
        m.d.comb += [self.last_next.eq(Mux(read, last_if_read, last_read)),
                     self.last_if_read.eq(lir_port),
                     self.advance.eq(read)]
        m.d.sync += last_read.eq(self.last_next)
        with m.If(read):
            m.d.sync += [cnt.eq(cnt_next), onehot.eq(onehot.rotate_left(1))]
            if R > 1:
                m.d.sync += blk.eq(blk_next)
        # (the core queues a key's value groups as the first pass reads them)
        m.d.comb += [self.reading.eq(read & (blk == 0)), self.group.eq(onehot)]
        group = (group_select(m, Value.cast(self.i.payload.x), onehot, P * w)
                 if self.select else Value.cast(self.i.payload.x))

        lanes = Signal(data.ArrayLayout(signed(w), P), name="lanes")
        # the group's place in its block, the last one, as a flag taken from the one-hot
        # (no compare of the counter between the lane register and the accumulators'
        # adders) with the valid (the block's end: a flip-flop at the accumulators, not a
        # gate)
        llast = Signal(name="lane_last")
        lq = Signal(name="lane_query")
        lv = Signal(name="lane_valid")
        register(m, lanes, group, en)
        lanes_in = group                # (the last lane register's input)
        register(m, llast, onehot[G - 1] & self.i.valid, en)
        register(m, lq, self.i.payload.query, en)
        register(m, lv, self.i.valid, en)
        lb = None
        if R > 1:
            lb = Signal(range(R), name="lane_block")
            register(m, lb, blk, en)
        ltag = None
        if has_tag:
            ltag = Signal.like(Value.cast(self.i.payload.tag), name="lane_tag")
            register(m, ltag, Value.cast(self.i.payload.tag), en)

        digits = [plan.slot_digits(j) for j in range(T)]
        if plan.digit_rom:
            # the digit of each slot operand, a function of (group, block, hash), comes from
            # a ROM (block RAM) read beside the lane register: two bits (negative, non-zero)
            # per operand whose digit varies
            varying = plan.varying
            V2 = 2 * len(varying)
            ahead = plan.rom_ahead

            def word_of(g, r, h):
                word = 0
                for k, (j, ps) in enumerate(varying):
                    v = digits[j][ps].get((g, r, h), 0)
                    for i, pred in enumerate(_SELECTS.values()):
                        word |= int(pred(v)) << (2 * k + i)
                return word
            if ahead:
                # (read a cycle ahead: word (g, r) holds the H hashes' words side by side
                # of the group read after (g, r), (g + 1, r), or (0, r + 1) after group
                # G - 1 (and (0, 0) after the last block), so that the counters themselves
                # address it)
                def after(g, r):
                    return (g + 1, r) if g < G - 1 else (0, (r + 1) % R)
                words = [sum(word_of(*after(g, r), h) << (V2 * h) for h in range(H))
                         if g < G and r < R else 0
                         for a in range(1 << (gbits + rbits))
                         for g, r in [(a & ((1 << gbits) - 1), a >> gbits)]]
            else:
                words = [word_of(a & ((1 << gbits) - 1), (a >> gbits) & ((1 << rbits) - 1),
                                 a >> (gbits + rbits))
                         for a in range(1 << (gbits + rbits + (H > 1)))]
            # (a block RAM by attribute: R = 1, as Yosys would build the shallow ROM, G·H
            # words, from LUTs, a table per bit with the address fanning out to every bit,
            # the cells and the levels of the select flip-flops it replaces; R > 1, as Yosys
            # builds a ROM of G·R words on a fabric with LUT RAM from LUT4 levels, five for
            # 64 words, between the counters and the word's register)
            width = max(1, V2 * (H if ahead else 1))
            # the ROM in plan.rom_pieces pieces side by side behind one read port: one, or
            # with plan.rom_regs the fewest memories of at most ROM_PORT bits, of even
            # widths (an ECP5 block RAM's 18-bit read port, whose output register
            # hamattn.synth.outreg can absorb; a wider one, 36 bits, reads through both of
            # its ports)
            size = -(-width // plan.rom_pieces)                 # (even pieces)
            rps = []
            for i, lo in enumerate(range(0, width, size)):
                hi = min(width, lo + size)
                mask = (1 << (hi - lo)) - 1
                m.submodules[f"digits{i}"] = rom = memory.Memory(
                    shape=unsigned(hi - lo), depth=len(words),
                    init=[w >> lo & mask for w in words], attrs={"ram_style": "block"})
                rps.append(rom.read_port())
            rp = wiring.Signature({"addr": In((len(words) - 1).bit_length()), "en": In(1),
                                   "data": Out(width)}).flip().create()
            m.d.comb += rp.data.eq(Cat(*(r.data for r in rps)))
            m.d.comb += [x for r in rps for x in (r.addr.eq(rp.addr), r.en.eq(rp.en))]
            if ahead:
                # the word of the group read after the next read: the counters' flip-flops
                # are the address (no logic before the block RAM's address pins), the read
                # is the counters' own clock enable (a read at an edge moves the counters
                # and the block RAM's register onto the next group together; without one
                # both hold). Its word then goes into a register of its own beside the lane
                # register (with `en`, so the two hold the same group's; the hash's query
                # flag picks a word there): a block RAM's output register on the ECP5, no
                # logic between the memory and the operand selects. In the reset and until
                # the first read after it (`digit_fresh`, a flip-flop that the reset sets),
                # the block RAM has read no word of group 0, block 0: that register then
                # loads group 0's word (a constant: its synchronous set/reset) instead
                m.d.comb += [rp.addr.eq(Cat(cnt, blk)), rp.en.eq(read)]
                fresh = Signal(init=1, name="digit_fresh")
                with m.If(read):
                    m.d.sync += fresh.eq(0)
                rword = Signal(V2, name="digit_word", reset_less=True)
                w0 = [word_of(0, 0, h) for h in range(H)]
                if H > 1:
                    word = Mux(self.i.payload.query, rp.data[V2:2 * V2], rp.data[:V2])
                    start = Mux(self.i.payload.query, w0[1], w0[0])
                else:
                    word, start = rp.data, w0[0]
                register(m, rword, Mux(fresh, start, word), en)
            else:
                addr = Cat(cnt, *([blk] if R > 1 else []),
                           *([self.i.payload.query] if H > 1 else []))
                m.d.comb += [rp.addr.eq(addr), rp.en.eq(en)]
                rword = rp.data
            for k in range(plan.rom_regs):
                # (the word registered once more (the block RAM's output register), then
                # again (flip-flops that the placer puts between the block RAMs and the slot
                # trees), and the lanes beside it, all with `en`: the word read at an edge
                # with `en` meets the group registered at that edge)
                rnext = Signal(V2, name=f"digit_word_{k}")
                register(m, rnext, rword, en)
                lnext = Signal.like(lanes, name=f"lanes_{k}")
                register(m, lnext, lanes, en)
                rword, lanes, lanes_in = rnext, lnext, lanes
            where = {key: k for k, key in enumerate(varying)}

            def select(j, ps, which):
                b = 2 * where[j, ps] + list(_SELECTS).index(which)
                return rword[b]
        else:
            # digit tables are indexed by the group (and the query flag when asymmetric):
            # each select is looked up from the counter as the group is read and registered
            # beside the lane register (a flip-flop per select, not a G:1 mux of the
            # registered group index between the lane register and the accumulators)
            idx = Cat(cnt, self.i.payload.query) if plan.asymmetric else cnt
            selects, pieces = {}, {}

            def select(j, ps, which):
                pred = _SELECTS[which]
                bits = 0
                for (g, r, h), v in digits[j][ps].items():
                    if pred(v):
                        bits |= 1 << (g | (h << gbits))
                if bits not in selects:
                    selects[bits] = Signal(name=f"select{len(selects)}")
                    register(m, selects[bits], _lookup(m, bits, idx, pieces,
                                                       f"select{len(selects)}"), en)
                return selects[bits]

        # the last lane register, and a copy of it (tree.twin) per LANE_ROWS slot trees
        # after the first LANE_ROWS: no lane bit drives the operands of every slot
        copies = -(-T // plan.LANE_ROWS)
        layout = data.ArrayLayout(signed(w), P)
        lane_regs = [lanes] + [
            layout(twin(m, Value.cast(lanes), Value.cast(lanes_in), en=en,
                        name=f"{Value.cast(lanes).name}_copy{c}"))
            for c in range(1, copies)]
        depth = plan.depth
        roots = []
        for j in range(T):
            terms = []
            for (p, s), dig in digits[j].items():
                values = set(dig.values())
                x = lane_regs[j * copies // T][p].as_signed()
                if values == {1}:
                    op = x
                elif values == {-1}:
                    op = ~x
                else:
                    op = Mux(select(j, (p, s), "neg"), ~x, x) if -1 in values else x
                    if 0 in values:
                        op = Mux(select(j, (p, s), "nonzero"), op, 0)
                terms.append(Term(op, False, plan.vmin << s, plan.vmax << s, s))
            roots.append(adder_tree(m, terms, en=en, depth=depth, name=f"row{j}",
                                    tree=plan.adders))

        # (the vector's flags beside the trees, and beside plan.rom_regs before them)
        stages = depth + plan.rom_regs
        tv = delay(m, lv, stages, en=en, name="tree_valid")
        tend = delay(m, llast, stages, en=en, name="tree_last")
        tq = delay(m, lq, stages, en=en, name="tree_query")
        tb = delay(m, lb, stages, en=en, name="tree_block") if R > 1 else Const(0, 1)
        ttag = delay(m, ltag, stages, en=en, name="tree_tag") if has_tag else None
        # the clock enable and the synchronous set/reset of the accumulators that return to
        # one start value: the valid and the block's end delayed beside the trees by flip-
        # flops of their own that the domain's reset sets to 1 (so the reset returns the
        # accumulators, which have no reset of their own, to their start value through the
        # same set/reset, and neither control is a gate)
        acc_en, acc_clr = lv, llast
        for c in range(stages):
            nxt_en = Signal(init=1, name=f"acc_en_{c}")
            nxt_clr = Signal(init=1, name=f"acc_clr_{c}")
            register(m, nxt_en, acc_en, en)
            register(m, nxt_clr, acc_clr, en)
            acc_en, acc_clr = nxt_en, nxt_clr

        # accumulators: y' - θ', the threshold θ' = θ - C taken as the start value, so that
        # the code bit is the accumulator's sign (y >= θ  <=>  y' - θ' >= 0): no comparator.
        # Slot j holds row rT+j during block r; its start value is chosen by (r, hash).
        aq = Signal(name="acc_query")
        ab = Signal(range(R), name="acc_block") if R > 1 else None
        done = Signal(name="acc_done")        # the accumulators hold a finished block
        atag = Signal.like(ttag, name="acc_tag") if has_tag else None
        end_blk = tend                      # (tv & the block's last group)
        with m.If(en):
            m.d.sync += [full.eq(end_blk & (tb == R - 1)), done.eq(end_blk)]
            with m.If(tv):
                m.d.sync += aq.eq(tq)
                if R > 1:
                    m.d.sync += ab.eq(tb)
                if has_tag:
                    m.d.sync += atag.eq(ttag)
        sign = []                   # per slot: the accumulator's sign bit (or None)
        consts = {}                 # row t -> per hash: a constant bit or None
        for j in range(T):
            rows = [(r, r * T + j) for r in range(R) if r * T + j < plan.b]
            starts, lo, hi = {}, [], []
            for r, t in rows:
                consts[t] = []
                for h, (M, theta) in enumerate(hashes):
                    hlo, hhi, th = self._row_bounds(t, h, M, theta)
                    if hlo < th <= hhi:
                        consts[t].append(None)
                        starts[r, h] = -th
                        lo.append(hlo - th)
                        hi.append(hhi - th)
                    else:   # y' >= θ' for every input (or for none): a constant bit
                        consts[t].append(Const(int(hlo >= th), 1))
            if not lo:
                sign.append(None)
                continue
            shape = shape_for(min(lo), max(hi))
            # a (block, hash) whose bit is constant never reads the sum: it starts like another
            init_values = {(r, h): starts.get((r, h), next(iter(starts.values())))
                           for r in range(R) for h in range(H)}
            bw = len(tb)
            if len(set(init_values.values())) == 1:
                # one start value: the accumulator returns to it as it adds a block's last
                # group (a synchronous set/reset of its flip-flops, ``acc_clr``, no mux
                # before or after the adder; its clock enable ``acc_en``, a flip-flop), and
                # the top bit of that last sum goes to a flip-flop of its own (the sign,
                # inverted where it is read: the sum's LUT drives both flip-flops). The
                # accumulator's init is 0, not the start value: its value before the first
                # edge is never read (acc_en and acc_clr start at 1, so the first edge loads
                # the start value), and an iCE40 flip-flop powers up at 0, so Yosys stores a
                # bit whose init is 1 inverted, with a LUT after it inside the loop and
                # before the carry chain
                start = next(iter(init_values.values()))
                acc = Signal(shape, reset_less=True, name=f"acc{j}")
                total = Signal(shape, name=f"sum{j}")
                neg = Signal(name=f"neg{j}")
                m.d.comb += total.eq(acc + roots[j].value)
                with m.If(en & acc_en):
                    m.d.sync += acc.eq(Mux(acc_clr, start, total))
                with m.If(en & end_blk):
                    m.d.sync += neg.eq(total[-1])
                sign.append(~neg)
                continue
            # start values chosen by (block, hash): the accumulator starts every block at 0
            # instead (it returns to 0 as it adds a block's last group: the synchronous
            # reset of its flip-flops, ``acc_clr``, and its clock enable ``acc_en``, as
            # above: no mux of the block's start value before the adder, inside the loop),
            # and the start value joins where the sign leaves: the sign of acc + root +
            # init(block, hash), the three added as a 3:2 compression (a LUT per bit of
            # acc's, the root's and the block's flags: sum and carry) and an adder of their
            # own whose top bit goes to a flip-flop (the sign) where the block ends. (The
            # sums are modulo 2**len(acc): acc's partial sums may wrap, the total does not.)
            W = shape.width
            acc = Signal(shape, reset_less=True, name=f"acc{j}")
            init = Signal(shape, name=f"init{j}")
            with m.Switch(Cat(tb, tq) if H > 1 else tb):
                for (r, h), v in init_values.items():
                    with m.Case(r | (h << bw)):
                        m.d.comb += init.eq(v)
            root = Signal(shape, name=f"root{j}")
            m.d.comb += root.eq(roots[j].value)
            with m.If(en & acc_en):
                m.d.sync += acc.eq(Mux(acc_clr, 0, acc + root))
            half = Signal(W, name=f"half{j}")
            maj = Signal(W, name=f"maj{j}")
            m.d.comb += [half.eq(acc ^ root ^ init),
                         maj.eq((acc & root) | (acc & init) | (root & init))]
            total = Signal(W, name=f"sum{j}")
            m.d.comb += total.eq(half + Cat(Const(0, 1), maj[:W - 1]))
            neg = Signal(name=f"neg{j}")
            with m.If(en & end_blk):
                m.d.sync += neg.eq(total[-1])
            sign.append(~neg)

        def bit(t, source):
            """Row t's code bit for the vector in the accumulators: its constant (per hash)
            or ``source``, the sign computed for it."""
            c = [x if x is not None else source for x in consts[t]]
            return Mux(aq, c[1], c[0]) if plan.asymmetric else c[0]

        bits = []
        if R > 1:
            # the blocks before the last leave their bits in a register as they finish
            early = Signal((R - 1) * T, name="early_bits")
            with m.If(en & done & (ab != R - 1)):
                with m.Switch(ab):
                    for r in range(R - 1):
                        with m.Case(r):
                            m.d.sync += [early[r * T + j].eq(sign[j])
                                         for j in range(T) if sign[j] is not None]
        for t in range(plan.b):
            r, j = divmod(t, T)
            if sign[j] is None:
                src = Const(0, 1)           # every (block, hash) of the slot is constant
            elif r < R - 1:
                src = early[t]
            else:
                src = sign[j]
            bits.append(bit(t, src))

        # output register: the compare of a finished vector. With stalls=False it is empty
        # or taken whenever a vector finishes (the consumer's promise), so the code and the
        # tag load where a vector finishes (``full``, a flip-flop, their clock enable) and
        # the consumer's ready reaches only the valid flag (cleared where taken): no path
        # runs from the consumer's ready into the hash's enables or datapath
        ovalid = Signal(name="out_valid")
        code = Signal(plan.b, name="code")
        load = en_out if self.stalls else full
        with m.If(load):
            m.d.sync += code.eq(Cat(*bits))
        if self.stalls:
            with m.If(en_out):
                m.d.sync += ovalid.eq(full)
        else:
            with m.If(full):
                m.d.sync += ovalid.eq(1)
            with m.Elif(self.o.ready):
                m.d.sync += ovalid.eq(0)
        m.d.comb += [self.o.valid.eq(ovalid), self.o.payload.code.eq(code)]
        if has_tag:
            otag = Signal.like(atag, name="out_tag")
            register(m, otag, atag, load)
            m.d.comb += self.o.payload.tag.eq(otag)
        return m
