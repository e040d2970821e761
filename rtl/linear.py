"""Linear value path (SPEC §3, mode ``linear``): the EcoFormer kernel, accumulate-only.

:class:`LinearPlan` holds the numbers (state widths, read-out trees, timing);
:meth:`LinearPlan.component` builds :class:`LinearValuePath` (all d elements at once) or
:class:`FoldedLinearValuePath` (P lanes and T rows per cycle, the state in memories)."""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring

from . import layouts
from .queue import NO_RW_CHECK, UnguardedReadPort
from .plan import (Folding, Timing, WeightedSum, csd_digits, signed_width, tree_depth,
                   unsigned_width)
from .tree import Term, adder_tree, delay, register, twin

__all__ = ["state_widths", "LinearPlan", "LinearValuePath", "FoldedLinearValuePath"]


def state_widths(N, w):
    """Signed widths of the state over at most N keys of w-bit values: S[t, e] = sum_j
    s_kj[t] v_j[e] in ±N·2^(w-1), z[t] = sum_j s_kj[t] in ±N, V[e] = sum_j v_j[e]."""
    m = N << (w - 1)
    return {"S": signed_width(-m, m), "z": signed_width(-N, N),
            "V": signed_width(N * -(1 << (w - 1)), N * ((1 << (w - 1)) - 1))}


@dataclass(frozen=True)
class LinearPlan(Folding, WeightedSum):
    """The linear value path of d-element w-bit values and b-bit codes over windows of at
    most N keys, ``lanes`` P elements and ``rows`` T code rows per cycle, its read-out trees
    ``adders`` (rtl/tree.py)."""

    d: int
    w: int
    b: int
    N: int
    lanes: int | None = None
    rows: int | None = None
    adders: str = "sum"

    mode = "linear"

    def __post_init__(self):
        self._unfolded_by_default()

    @property
    def state_steps(self):
        """G·R: cycles spent on one vector (key or query)."""
        return self.groups * self.row_blocks

    # ---------------------------------------------------------------- widths
    @property
    def key_count_width(self):
        """Bits of the count n of used keys, 0..N."""
        return unsigned_width(self.N)

    @property
    def S_width(self):
        return state_widths(self.N, self.w)["S"]

    @property
    def z_width(self):
        return state_widths(self.N, self.w)["z"]

    @property
    def V_width(self):
        return state_widths(self.N, self.w)["V"]

    @property
    def kept(self):
        """Most keys a query's output sums over: N."""
        return self.N

    @property
    def max_weight(self):
        """Largest weight kappa of one key: 2b+1."""
        return 2 * self.b + 1

    @property
    def grouped(self):
        """Folded, (num, den) leaves one group of P nums per beat (:func:`layouts.grouped`)."""
        return self.folded

    # ---------------------------------------------------------------- read-out and timing
    @property
    def readout_terms(self):
        """Operands of one read-out tree: b masked S (or z) rows and the CSD terms of
        (b+1)·V (or (b+1)·n)."""
        return self.b + len(csd_digits(self.b + 1))

    @property
    def readout_latency(self):
        """One register per tree level (the first level masks the rows by the query code as
        it adds), one to add the count of zero query bits (the +1 of each complemented
        row)."""
        return tree_depth(self.readout_terms) + 1

    @property
    def data_regs(self):
        """Registers on the state memories' outputs, folded: 1 when a word is read again
        no sooner than 3 cycles later (G·R >= 3), so that its update, written back 2 edges
        after its read, is there for the next read; 0 otherwise (the update is written
        back at the edge after the read)."""
        return int(self.folded and self.state_steps >= 3)

    @property
    def reread_distance(self):
        """Folded: fewest token reads from the read of a state word whose update is written
        back to the next read of that word whose data is used: (G-1)·R + 1, V's word g read
        by a query at group g's first row block after a key's last block of it (the next
        read of an S word comes G·R token reads later)."""
        return (self.groups - 1) * self.row_blocks + 1

    @property
    def write_regs(self):
        """Registers on the state memories' writes (data, address, enable), folded with
        ``data_regs``: 1 when a word is read again no sooner than 4 token reads later
        (:attr:`reread_distance` >= 4), so that its update, written back 3 edges after its
        read, is there for the next read; then no path runs from a memory's output register
        through an update adder into a memory's write data (the adder's output register is
        in the adder's own cells); 0 otherwise. The latency is the same either way."""
        return int(self.data_regs and self.reread_distance >= 4)

    @property
    def block_regs(self):
        """Register stages between a row block's read-out tree and its accumulator: 1 when
        the rows are folded (R > 1): the count of zero query bits joins the first block's
        sum there, so that the accumulator's loop is its adder alone (the accumulator
        returns to 0 after a group's last block by a synchronous reset, no mux before the
        adder); 0 otherwise."""
        return int(self.folded and self.row_blocks > 1)

    @property
    def spare_levels(self):
        """Register levels of a folded read-out tree beyond the fewest it needs: its
        ``readout_latency - 1`` levels (the unfolded tree's, over all b rows) less those of
        a sum tree over T rows and the CSD terms of (b+1) or of the count of zero query
        bits over b bits, whichever is deeper, the count starting ``data_regs`` levels
        earlier, from the code read beside the memories (a bit heap needs 1); 0 unfolded."""
        if not self.folded:
            return 0
        if self.adders != "sum":
            own = 1
        else:
            own = max(tree_depth(self.rows + len(csd_digits(self.b + 1))),
                      tree_depth(self.b) - self.data_regs)
        return max(0, self.readout_latency - 1 - own)

    @property
    def mask_regs(self):
        """Register stages of a folded read-out tree's masked operands (``c ? S : ~S`` of
        each row, and (b+1)·V's operand) before its first adder level: 1 where the tree has
        a level to spare (:attr:`spare_levels`), so that no path runs from the state
        memories' read registers through the mask into a carry chain (on the ECP5 the read
        register is the block RAM's own output register, its mask and Yosys' collision mux
        one LUT after it); 0 otherwise. It takes a level of the tree: the latency is the
        same either way."""
        return int(self.spare_levels >= 1)

    @property
    def carry_regs(self):
        """Register stages of the row blocks' accumulator's carry, folded with R > 1: 1 when
        the accumulator is split in a low half and a high half (:attr:`acc_split` bits
        low), the low half's carry registered into the high half's adder one edge later, so
        that no adder in the accumulator's loop is wider than about half of ``num_width``
        (and the block's sum, root + the count of zero query bits, is split at the same
        place: its low half and carry out in the block register, its high half one edge
        later beside the low half's carry);
        this takes a stage from the read-out tree, so only where the tree has a level to
        spare beyond :attr:`mask_regs` (:attr:`spare_levels`); 0 otherwise (one adder over
        ``num_width`` bits). The latency is the same either way."""
        return int(self.row_blocks > 1 and self.spare_levels - self.mask_regs >= 1)

    @property
    def acc_split(self):
        """Bits of the low half of a split accumulator (:attr:`carry_regs`):
        ``num_width // 2``; 0 when it is not split."""
        return self.num_width // 2 if self.carry_regs else 0

    @property
    def tree_levels(self):
        """Register levels of a folded read-out tree, :attr:`mask_regs` of them before
        its adders (and of the count of zero query bits): ``readout_latency - 1 -
        carry_regs``."""
        return self.readout_latency - 1 - self.carry_regs

    @property
    def latency(self):
        """Edges from a query token's transfer to its (num, den) transfer, nothing stalled:
        the read-out; folded, one edge more for the memory read, ``data_regs`` for its
        register and ``block_regs`` before the row blocks' accumulator, after the token was
        held G·R - 1 cycles while its groups (and row blocks) were read. (The read-out's
        ``readout_latency - 1`` tree levels are ``tree_levels``, ``mask_regs`` of them
        before the adders, and ``carry_regs``, the split accumulator's carry stage.)"""
        if self.folded:
            return Timing(self.state_steps - 1 + self.readout_latency + 1 + self.data_regs
                          + self.block_regs)
        return Timing(self.readout_latency)

    @property
    def interval(self):
        """Cycles busy with one query (or key): the pipelined read-out takes a token every
        G·R cycles."""
        return Timing(self.state_steps)

    key_interval = interval

    @property
    def adder_bits(self):
        """Bits of the state's adders and the read-out accumulators (a size estimate)."""
        return 2 * self.rows * self.lanes * self.S_width

    def component(self):
        """:class:`FoldedLinearValuePath` when G > 1, else :class:`LinearValuePath`."""
        return (FoldedLinearValuePath if self.folded else LinearValuePath)(self)


def _scaled(b, x, lo, hi):
    """The CSD terms of (b+1)·x, for x in [lo, hi]: shifted additions and subtractions."""
    return [Term(x, sg < 0, lo << s, hi << s, s) for s, sg in csd_digits(b + 1)]


def _next(counter, wrap, n):
    """The value after ``counter`` of a count modulo ``n`` (``wrap``: it is at n - 1):
    ``counter + 1`` in its own width where n is a power of two (it wraps by itself), else
    0 where ``wrap``."""
    if n & (n - 1) == 0 and len(counter) == (n - 1).bit_length():
        return (counter + 1)[:len(counter)]
    return Mux(wrap, 0, counter + 1)


def _masked(x, bit):
    """A row masked by its query code bit: x where the bit is 1, ~x = -x - 1 where it is 0
    (the -1s are added back as the count of zero bits)."""
    return Mux(bit, x, ~x)


def _plus_carry(acc, part, carry):
    """``acc + part + carry`` (one bit): ``((2·acc + carry) + (2·part + carry)) >> 1``, one
    adder with ``carry`` as its carry in (signed where ``acc`` is)."""
    a, p = Cat(carry, acc), Cat(carry, part)
    if acc.shape().signed:
        a, p = a.as_signed(), p.as_signed()
    return (a + p) >> 1


def _accumulator(m, acc, part, carry, en, arrive, clear, name):
    """The accumulator ``acc`` (no reset of its own) of the blocks ``part`` (+ ``carry``,
    a bit or None), and the sum ``acc + part (+ carry)`` that leaves it, where ``arrive``:
    where ``en & arrive``, ``acc`` takes that sum, or 0 where ``clear`` (a group's last
    block).

    Two adders: the loop's, whose sum drives ``acc``'s flip-flops alone (so that each shares
    its logic cell with its adder bit: where one sum drives two sets of flip-flops, both are
    placed away from it, and the loop runs through a pass-through LUT and two routes), and
    the one that leaves (the group's sum, or a half's bits and carry out), whose result is
    used only where ``arrive`` (the next stage's enable, or the beat's). Their carry ins
    differ where their results are not used (the loop's is ``carry | ~arrive``, or the
    leaving one's ``~arrive``, a flip-flop), so that synthesis does not merge them.

    ``arrive`` and ``clear`` are flip-flops registered with ``en`` (``(value, next)``): the
    accumulator's enable and synchronous reset are copies of them that the domain's reset
    sets to 1, so that the reset returns ``acc`` to 0 at the next edge with ``en`` through
    the same controls (an ``acc`` with a reset of its own would need a LUT for the clear
    before its flip-flops)."""
    (arr, arr_next), (clr, clr_next) = arrive, clear
    acc_en = Signal(init=1, name=f"{name}_en")
    acc_clr = Signal(init=1, name=f"{name}_clr")
    register(m, acc_en, arr_next, en)
    register(m, acc_clr, clr_next, en)
    if carry is None:
        # (the leaving sum's carry in: ~arrive, a flip-flop of its own; and, for an
        # unsigned acc (a low half, whose carry out leaves), the top bit of acc's operand,
        # so that the carry out is a sum bit (a LUT that shares its logic cell with the
        # flip-flop it is registered in), not the carry chain's output)
        idle = Signal(init=1, name=f"{name}_idle")
        register(m, idle, ~arr_next, en)
        wide = acc if acc.shape().signed else Cat(acc, idle)
        loop, out = acc + part, _plus_carry(wide, part, idle)
    else:
        loop, out = _plus_carry(acc, part, carry | ~arr), _plus_carry(acc, part, carry)
    with m.If(en & acc_en):
        m.d.sync += acc.eq(Mux(acc_clr, 0, loop))
    return out


def _delayed(m, value, cycles, en, name):
    """``value`` delayed by ``cycles`` >= 1 (:func:`delay`) and the input of its last
    register: ``(value, next)``."""
    before = delay(m, value, cycles - 1, en=en, name=f"{name}_pre")
    return delay(m, before, 1, en=en, name=name), before


class LinearValuePath(wiring.Component):
    """State S[t,e], z[t], V[e], n updated per key with additions and subtractions only;
    per query, num[e] and den read out by add/subtract trees.

    With s = 2c - 1, a key updates ``S[t,e] += s[t]·v[e]``, ``z[t] += s[t]``, ``V[e] += v[e]``
    and ``n += 1``; the window's last query clears the state as it reads it. A query q reads

        num[e] = sum_t s_q[t]·S[t,e] + (b+1)·V[e],   den = sum_t s_q[t]·z[t] + (b+1)·n

    as ``sum_t (c_q[t] ? S[t,e] : ~S[t,e]) + zeros(c_q) + CSD terms of (b+1)·V[e]``, since
    ``~S = -S - 1``: every operand is added, none negated, and (b+1)· is shifts. The trees
    are binary adder trees, or with ``plan.adders`` lut6/lut4 bit heaps reduced by the
    popcount's counters (:func:`tree.heap_tree`), over the same register stages.

    Ports (:func:`layouts.value_path_ports`, the same for :class:`FoldedLinearValuePath`):
      ``i``: stream of :func:`layouts.token` (keys and queries in window order)
      ``o``: stream of :func:`layouts.weighted_sum`, one per query; folded, of
      :func:`layouts.weighted_group`, G beats per query (group g's P nums, den, ``last``)
      ``v`` (folded only): stream of :func:`layouts.group`, the keys' values, G per key

    Latency (query): ``plan.latency`` = ``plan.readout_latency`` = 1 + ceil(log2(b +
    |CSD(b+1)|)) edges.
    Throughput: one key or one query per cycle.
    """

    def __init__(self, plan):
        self.plan = plan
        super().__init__(layouts.value_path_ports(plan))

    @property
    def latency(self):
        return self.plan.latency

    def elaborate(self, platform):
        plan = self.plan
        b, d = plan.b, plan.d
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        p = self.i.payload
        take = self.i.valid & en

        S = [[Signal(signed(plan.S_width), name=f"S_{t}_{e}") for e in range(d)]
             for t in range(b)]
        z = [Signal(signed(plan.z_width), name=f"z_{t}") for t in range(b)]
        V = [Signal(signed(plan.V_width), name=f"V_{e}") for e in range(d)]
        n = Signal(plan.key_count_width)

        # ---- key: accumulate. The state is cleared (a synchronous reset of its registers)
        # on the edge at which the window's last query reads it, so that a key never has
        # to choose between S and 0.
        with m.If(take & ~p.key & p.tag.last):
            m.d.sync += [x.eq(0) for row in S for x in row]
            m.d.sync += [x.eq(0) for x in z + V] + [n.eq(0)]
        with m.Elif(take & p.key):
            for t in range(b):
                for e in range(d):
                    m.d.sync += S[t][e].eq(Mux(p.code[t], S[t][e] + p.value[e],
                                               S[t][e] - p.value[e]))
                m.d.sync += z[t].eq(Mux(p.code[t], z[t] + 1, z[t] - 1))
            for e in range(d):
                m.d.sync += V[e].eq(V[e] + p.value[e])
            m.d.sync += n.eq(n + 1)

        # ---- query: read-out trees. The first level adds the rows masked by the query
        # code (c ? S : ~S) straight from the state; zeros(c) and the CSD terms of (b+1)·V
        # (b+1)·n join as operands; one adder level per register level.
        depth = plan.readout_latency - 1
        smax = plan.N << (plan.w - 1)

        zeros = adder_tree(m, [Term(~p.code[t], False, 0, 1) for t in range(b)],
                           en=en, depth=depth, tree=plan.adders, name="zeros")
        num = Signal(data.ArrayLayout(signed(plan.num_width), d))
        for e in range(d):
            terms = [Term(_masked(S[t][e], p.code[t]), False, -smax - 1, smax)
                     for t in range(b)]
            terms += _scaled(b, V[e], plan.N * plan.vmin, plan.N * plan.vmax)
            root = adder_tree(m, terms, en=en, depth=depth, tree=plan.adders, name=f"num{e}")
            register(m, num[e], (zeros.value - root.value) if root.neg
                     else (root.value + zeros.value), en)
        den_terms = [Term(_masked(z[t], p.code[t]), False, -plan.N - 1, plan.N)
                     for t in range(b)]
        den_terms += _scaled(b, n, 0, plan.N)
        root = adder_tree(m, den_terms, en=en, depth=depth, tree=plan.adders, name="den")
        den = Signal(unsigned(plan.den_width))
        register(m, den, (zeros.value - root.value) if root.neg
                 else (root.value + zeros.value), en)

        valid = delay(m, take & ~p.key, plan.readout_latency, en=en, name="valid")
        tag = delay(m, p.tag.as_value(), plan.readout_latency, en=en, name="tag")
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.num.eq(num),
                     self.o.payload.den.eq(den), self.o.payload.tag.eq(tag)]
        return m


class FoldedLinearValuePath(LinearValuePath):
    """:class:`LinearValuePath` with P lanes and T rows per cycle, the state in memories.

    Folded (``lanes`` P < d, G = ceil(d/P) groups): S and V live in memories of G words
    (word g: S[t, gP+p] for every t and lane p, and V[gP+p]); z and n are one more lane of
    them, whose value is 1 in group 0 (z in lane P of group 0's words, or in b registers when
    there is one row block; n in lane P of V word 0),
    so den is that lane's read-out in group 0 (num for a value of 1), with no z registers
    and no den tree. A token
    is read one group per cycle while it is offered, and taken (``i.ready``) with its last
    group: a key reads, adds ±v and writes back each group (b·P adders and P for V), its
    value arriving one group per cycle on ``v`` (the key is read only while ``v`` is valid); a
    query reads each group into P read-out trees, whose results leave as one beat per group
    (no bank of sums here: the divider takes each group into its pipeline); the window's last
    query writes zeros back, and so does a sweep of G cycles after reset (no token is taken
    meanwhile).
    When a word is read again no sooner than 3 cycles later (G·R >= 3, ``plan.data_regs``),
    the memories' outputs are registered and the updates written back one edge later; when
    no sooner than 4 token reads later (``plan.reread_distance`` >= 4, ``plan.write_regs``),
    the writes (data, address, enable) are registered too, one more edge later; otherwise
    the memories' write enable, zeroing select and address are flip-flops, written with
    their next values (no LUT between them and a LUT RAM's write pins).
    Latency (query): ``plan.readout_latency + 1 + plan.data_regs + plan.block_regs`` edges
    from the transfer (one more for the memory read, one for its register, one before the
    row blocks' accumulator) to the transfer of the last group's beat, the token being held
    ``G·R - 1``
    cycles before it (``plan.latency`` counts from the first of those); throughput one token
    per G·R cycles (R row blocks of ``rows``). Of the read-out's ``readout_latency - 1``
    levels, the read-out trees over T rows need fewer than the unfolded one over b rows:
    the levels to spare (``plan.spare_levels``) register the trees' masked operands first
    (``plan.mask_regs``), then split the row blocks' accumulator in a low and a high half
    with the carry registered between them (``plan.carry_regs``, ``plan.acc_split`` bits
    low), so that its loop is a half-width adder; the latency is the same with or without.
    Each accumulator (or half) has two adders of the same sum, its loop's and the one whose
    result leaves, so that each sum bit drives one flip-flop (:func:`_accumulator`); the
    accumulators have no reset of their own (their clear and enable flip-flops, which the
    reset sets, clear them at the next edge). With R a power of two the group is the
    address's high bits (no counter of its own).
    """

    def elaborate(self, platform):
        plan = self.plan
        b, P, G = plan.b, plan.lanes, plan.groups
        T, R = plan.rows, plan.row_blocks
        GR = G * R
        m = Module()
        p = self.i.payload
        en = Signal()
        ovalid = Signal()
        m.d.comb += en.eq(~ovalid | self.o.ready)

        # S word g·R + r: rows rT .. rT+T-1 of lanes gP .. gP+P-1 and of one more lane, P,
        # whose value is 1 in group 0 and 0 elsewhere: in word r (group 0) it holds z[rT+t],
        # and lane P of V word 0 holds n, so den is that lane's read-out (num for a value of
        # 1) and needs no registers or tree of its own
        # (one memory per lane, T entries a word: narrower words simulate faster)
        # (with one row block, R = 1, lane P's word is all b rows of z and only address 0 of
        # G is used: b registers then, not a memory as wide as b rows and G words deep)
        PE = P + 1
        # A word is never read in the cycle it is written in, but for reads whose data is
        # not used: a token's word is written back 1 + data_regs + write_regs edges after
        # its read (at the latest: each of the pipeline's stages moves on at an edge with
        # `en`, which every token read has, and the write registers at every edge), and the
        # next read of it whose data is used comes plan.reread_distance >= 2 + data_regs +
        # write_regs token reads later (the address moves on at each token read and stays
        # put between them, a stall (en low) reads nothing, and V is read at a group's R
        # blocks, used at a query's first one, and written after a key's last one); reads at
        # the clearing sweep's addresses, or while no token is read (go low), are not taken
        # (s1.valid low): the read ports are UnguardedReadPorts (no collision logic)
        no_rw = NO_RW_CHECK
        rS, wS = [], []
        z_regs = None
        for q in range(PE):
            if q == P and R == 1:
                z_regs = Signal(data.ArrayLayout(signed(plan.z_width), T), name="z")
                continue
            # (lane P holds z, within ±N: entries of z_width bits)
            width = plan.S_width if q < P else plan.z_width
            mem = memory.Memory(shape=data.ArrayLayout(signed(width), T), depth=GR, init=[],
                                attrs=no_rw)
            m.submodules[f"S{q}" if q < P else "Sz"] = mem
            rS.append(UnguardedReadPort(m, mem, f"S{q}" if q < P else "Sz"))
            wS.append(mem.write_port())
        m.submodules.V = V_mem = memory.Memory(
            shape=data.ArrayLayout(signed(plan.V_width), PE), depth=G, init=[], attrs=no_rw)
        rV, wV = UnguardedReadPort(m, V_mem, "V"), V_mem.write_port()

        # ---- after reset, zeros are written to the G·R words (G·R cycles) before a token is
        # read, so that reset returns the state to an empty window as the registers' reset does
        clearing = Signal(init=1)
        sweep = Signal(range(GR))
        sweep_end = Signal(name="sweep_end")     # sweep == GR - 1, a flip-flop beside it
        with m.If(clearing):
            m.d.sync += [sweep.eq(_next(sweep, sweep_end, GR)), sweep_end.eq(sweep == GR - 2)]
            with m.If(sweep_end):
                m.d.sync += clearing.eq(0)

        # ---- stage 0: read word `addr` (group `grp`, row block `blk`) for the offered token
        # (a key's with its value group from `v`, taken with the group's last block); take
        # the token with its last word
        grp = Signal(range(G))
        blk = Signal(range(R)) if R > 1 else Const(0, 1)
        addr = Signal(range(GR))
        # blk == R - 1, a flip-flop written beside blk from its next value (R > 1)
        last_blk = Signal(name="last_blk") if R > 1 else Const(1, 1)
        # the token's last word: a flip-flop written beside the address from its next value
        # (it sets i.ready, which ends in the hash's output register enable)
        last = Signal(init=GR == 1, name="last_word")
        has_group = ~p.key | self.v.valid
        go = self.i.valid & has_group & en & ~clearing
        m.d.comb += [rV.addr.eq(grp), rV.en.eq(en)]
        m.d.comb += [x for r in rS for x in (r.addr.eq(addr), r.en.eq(en))]
        if R > 1:
            # i.ready = en & last: a flip-flop and `en`. `last` is set only by a read (go,
            # which has ~clearing and, for a key, v.valid), the token's word GR - 2 at block
            # R - 2 of group G - 1; so clearing is over, and a key's value group G - 1, read
            # there, is not taken until its last block (v_take below): both are 1 where `last`
            # is (no path from the sweep's flag or the value's valid into the hash's output
            # valid)
            m.d.comb += self.i.ready.eq(en & last)
        else:
            m.d.comb += self.i.ready.eq(en & ~clearing & has_group & last)
        if R > 1:
            # v.ready, a key's value group taken with the group's last block (go & key &
            # last_blk), from a flip-flop: at block R-1 the token was read at block 0 and not
            # taken since (it is taken with its last word, a last block), so it is still
            # offered (i.valid, the same key bit) and clearing is over; v_take = blk == R-1
            # and the token is a key, written with blk. (v.valid is left out: a transfer
            # needs it anyway, and go needs it for a key.) v.ready then reaches the value
            # queue's skid buffer from a flip-flop and `en` only.
            v_take = Signal(name="v_take")
            m.d.comb += self.v.ready.eq(v_take & en)
        else:
            m.d.comb += self.v.ready.eq(go & p.key)
        # (the counters count modulo their length: a counter whose length is a power of two
        # wraps by itself, no synchronous reset from its handshake; the group counter moves
        # on with its block's last read: for R > 1 a read at block R - 1 (last_blk) is one
        # after the sweep (blk moves only with reads, which wait for it), so its enable,
        # `go` with last_blk, needs no ~clearing: one LUT of the handshakes and last_blk)
        with m.If(go):
            m.d.sync += [addr.eq(_next(addr, last, GR)),
                         last.eq(Mux(last, GR == 1, addr == GR - 2))]
            if R > 1:
                m.d.sync += [blk.eq(_next(blk, last_blk, R)),
                             last_blk.eq(Mux(last_blk, 0, blk == R - 2)),
                             v_take.eq(p.key & (blk == R - 2))]
        if R & (R - 1) == 0:
            # (the group is the address's high bits, addr = grp·R + blk with R a power of
            # two: no counter of its own, whose enable would decode the handshakes again)
            m.d.comb += grp.eq(addr[(R - 1).bit_length():])
        else:
            grp_step = self.i.valid & has_group & en & last_blk
            with m.If(grp_step):
                m.d.sync += grp.eq(_next(grp, grp == G - 1, G))

        # ---- stage 1 (memory data out): the token's word, registered beside the read
        fields = {"valid": 1, "key": 1, "grp": range(G), "grp0": 1, "addr": range(GR),
                  "last": 1, "clear": 1, "code": unsigned(b),
                  "value": data.ArrayLayout(signed(plan.w), P), "tag": layouts.query_tag()}
        if R > 1:
            fields.update({"first_blk": 1, "last_blk": 1, "block_code": unsigned(T)})
        s1 = Signal(data.StructLayout(fields))
        with m.If(en):
            m.d.sync += [s1.valid.eq(go), s1.key.eq(p.key), s1.grp.eq(grp), s1.addr.eq(addr),
                         s1.grp0.eq(grp == 0),
                         s1.last.eq(last), s1.clear.eq(~p.key & p.tag.last),
                         s1.code.eq(p.code), s1.value.eq(self.v.payload), s1.tag.eq(p.tag)]
            if R > 1:
                # the code bits of the block, selected here and registered beside the read
                # (the R:1 select is then off the paths from the memory data to the adders)
                # a row past b (last block of a non-divisor) reads as a 1 bit over an S entry
                # that stays 0, so it adds nothing
                padded = Cat(p.code, Const(-1, R * T - b)) if R * T > b else p.code
                m.d.sync += [s1.first_blk.eq(blk == 0), s1.last_blk.eq(last_blk)]
                with m.Switch(blk):
                    for r in range(R):
                        with m.Case(r):
                            m.d.sync += s1.block_code.eq(padded.word_select(r, T))
        # ---- stage 2 (G·R >= 3): the memories' outputs and the token's fields registered
        # (plan.data_regs), so that no path runs from a block RAM's output through the
        # adders back to its input or into the read-out trees
        Sdata = [r.data for r in rS]
        Vg = rV.data
        # The state update of row t adds the lane's value where the row's code bit is 1 and
        # subtracts it where 0: S + u + c with u = v or ~v and c = 0 or 1 (u per row, so that
        # no value bit fans out to every row's adder and no add/sub select sits in one)
        def row_operand(code, value, t):
            """(u, c) of row t: the value's P lanes (a list), complemented where the bit is
            0, and c = the bit's complement."""
            return [Mux(code[t], value[q], ~value[q]) for q in range(P)], ~code[t]

        def z_step(code, one, t):
            """Lane P's step of row t, +-1 in group 0 (``one``) and 0 elsewhere: 2 bits,
            01 (+1) where the code bit is 1, 11 (-1) where it is 0, so that lane P's update is
            one adder, not an add and a subtract and their select."""
            return Cat(one, one & ~code[t]).as_signed()
        cb1 = s1.block_code if R > 1 else s1.code
        if plan.data_regs:
            st = Signal(data.StructLayout(fields), name="s2")
            Sdata = [Signal(r.data.shape(), name=f"S{q}_data", reset_less=True)
                     for q, r in enumerate(rS)]
            Vg = Signal(rV.data.shape(), name="V_data", reset_less=True)
            rows = [(Signal(data.ArrayLayout(signed(plan.w), P), name=f"u{t}"),
                     Signal(name=f"c{t}")) for t in range(T)]
            z_rows = [Signal(signed(2), name=f"dz{t}") for t in range(T)]
            with m.If(en):
                m.d.sync += [st.eq(s1), Vg.eq(rV.data)]
                m.d.sync += [d.eq(r.data) for d, r in zip(Sdata, rS)]
                for t, (u, c) in enumerate(rows):
                    ut, ct = row_operand(cb1, s1.value, t)
                    m.d.sync += [u.eq(Cat(*ut)), c.eq(ct)]
                m.d.sync += [dz.eq(z_step(cb1, s1.grp0, t)) for t, dz in enumerate(z_rows)]
            # the memories' write enables as flip-flops, decoded a stage early: a key's word
            # (its group's last block for V) or a clearing query's; without `en`: while the
            # pipeline stalls the word is written again with the same value, from registers
            # that hold (S_data, V_data, the rows), and no read is made (the read ports are
            # enabled by `en`), so the state is the same; the write enables, and the selects
            # of zeros, then reach the memories from flip-flops through one LUT
            w_key, w_key_last, w_clear = (Signal(name=n) for n in
                                          ("w_key", "w_key_last", "w_clear"))
            s1_last_blk = s1.last_blk if R > 1 else 1
            with m.If(en):
                m.d.sync += [w_key.eq(s1.valid & s1.key),
                             w_key_last.eq(s1.valid & s1.key & s1_last_blk),
                             w_clear.eq(s1.valid & ~s1.key & s1.clear)]
        else:
            st = s1
            rows = [row_operand(cb1, s1.value, t) for t in range(T)]
            z_rows = [z_step(cb1, s1.grp0, t) for t in range(T)]
        st_last_blk = st.last_blk if R > 1 else 1
        act = st.valid & en
        key = act & st.key
        clear = act & ~st.key & st.clear

        def Sg(t, q):
            return z_regs[t] if q == P and z_regs is not None else Sdata[q][t]
        # (lane P's value, 1 in group 0: a flip-flop, not a compare before the adders)
        v = [st.value[q] for q in range(P)] + [st.grp0]
        zero = clear | clearing
        if plan.data_regs:
            mem_key, mem_key_last, mem_zero = w_key, w_key_last, w_clear | clearing
        else:
            mem_key, mem_key_last, mem_zero = key, key & st_last_blk, zero
        # Without plan.write_regs, the memories' write enable, zeroing select and address
        # are flip-flops (one set for the S memories, one for V: no LUT between them and
        # the LUT RAM cells' write pins; Yosys merges identical flip-flops, so a copy per
        # memory would have to differ to survive), written with the values those controls
        # take after the edge: of the sweep's flags, and of the fields behind them (s2's
        # from s1 where `en`, s1's from the read where `en`).
        # Without plan.data_regs the writes then leave out `en` as well: while the pipeline
        # stalls, a word is written again with the same value (s1 and the read registers,
        # enabled by `en`, hold, and no read is made), so the state is the same.
        clearing_n = clearing & ~sweep_end
        sweep_n = Mux(clearing, _next(sweep, sweep_end, GR), sweep)
        if plan.data_regs:
            key_n = Mux(en, s1.valid & s1.key, w_key)
            key_last_n = Mux(en, s1.valid & s1.key & (s1.last_blk if R > 1 else 1), w_key_last)
            clear_n = Mux(en, s1.valid & ~s1.key & s1.clear, w_clear)
            addr_n, grp_n = Mux(en, s1.addr, st.addr), Mux(en, s1.grp, st.grp)
        else:                                   # (R = 1: G·R >= 3 otherwise)
            key_n = key_last_n = Mux(en, go & p.key, s1.valid & s1.key)
            clear_n = Mux(en, go & ~p.key & p.tag.last, s1.valid & ~s1.key & s1.clear)
            addr_n, grp_n = Mux(en, addr, s1.addr), Mux(en, grp, s1.grp)

        made = {}
        zeros_w = []

        def zero_select(name):
            """plan.write_regs: the zeroing select of memory ``name``'s registered write
            data, ``w_clear | clearing`` as a flip-flop of its own per memory (written with
            the values of both after the edge; the reset sets it, as it sets `clearing`),
            so that the select of every data register of a memory (their synchronous reset)
            is one flip-flop, not a LUT of the sweep's flag shared by all memories. (Each
            copy after the first is a :func:`tree.twin`: Yosys merges identical
            flip-flops.)"""
            nxt = clear_n | clearing_n
            if not zeros_w:
                zeros_w.append(Signal(init=1, name=f"{name}_zero"))
                m.d.sync += zeros_w[0].eq(nxt)
                return zeros_w[0]
            return twin(m, zeros_w[0], nxt, name=f"{name}_zero")

        def controls(last_only, name):
            """(address, enable, zeroing select) of memory ``name``'s write: S's (its word
            ``addr``), V's (``last_only``: its word ``grp`` at a group's last block)."""
            address = Mux(clearing, sweep, st.grp if last_only else st.addr)
            enable = (mem_key_last if last_only else mem_key) | mem_zero
            if plan.write_regs:
                return address, enable, zero_select(name)
            if last_only not in made:
                name = "V" if last_only else "S"
                made[last_only] = regs = (Signal(address.shape(), name=f"{name}_wa"),
                                          Signal(init=1, name=f"{name}_we"),
                                          Signal(init=1, name=f"{name}_wz"))
                m.d.sync += [
                    regs[0].eq(Mux(clearing_n, sweep_n, grp_n if last_only else addr_n)),
                    regs[1].eq((key_last_n if last_only else key_n) | clear_n | clearing_n),
                    regs[2].eq(clear_n | clearing_n)]
            return made[last_only]
        cb = st.block_code if R > 1 else st.code          # the code bits of the block
        # rows that the last block lacks (row (R-1)T + t >= b): their entries stay 0
        lacking = [(R - 1) * T + t >= b for t in range(T)]
        # the memories' writes (data, address, enable), plan.write_regs: registered with no
        # clock enable, so that a write repeated while the pipeline stalls is repeated one
        # edge later (the same words, the same order); the data registers have no reset of
        # their own, the zeros of a clear their synchronous reset
        def write(name, port, addr, en, data):
            """``port``'s address, enable and data (its word's fields, a list): ``addr``,
            ``en`` and ``data``, or registers of them (plan.write_regs)."""
            if plan.write_regs:
                waddr = Signal(port.addr.shape(), name=f"{name}_waddr", reset_less=True)
                wen = Signal(name=f"{name}_wen")
                wdata = [Signal(port.data[i].shape(), name=f"{name}_wdata{i}", reset_less=True)
                         for i in range(len(data))]
                m.d.sync += [waddr.eq(addr), wen.eq(en)]
                m.d.sync += [r.eq(x) for r, x in zip(wdata, data)]
                addr, en, data = waddr, wen, wdata
            m.d.comb += [port.addr.eq(addr), port.en.eq(Mux(en, -1, 0))]
            m.d.comb += [port.data[i].eq(x) for i, x in enumerate(data)]

        for q in range(PE):
            regs = q == P and z_regs is not None
            words = []
            for t in range(T):
                if q < P:
                    # S + u + c as one adder: (2S + c) + (2u + c), halved
                    u, c = rows[t]
                    upd = ((Cat(c, Sg(t, q)).as_signed() + Cat(c, u[q]).as_signed()) >> 1)
                else:
                    upd = Sg(t, q) + z_rows[t]
                if regs:            # (v is 0 beyond group 0: the other groups keep z)
                    # (registers, not a memory: updated once, where `en`)
                    with m.If(key | zero):
                        m.d.sync += z_regs[t].eq(
                            Mux(zero | (st_last_blk if lacking[t] else 0), 0, upd))
                else:
                    words.append((upd, lacking[t]))
            if not regs:
                name = f"S{q}" if q < P else "Sz"
                wa, we, wz = controls(False, name)
                write(name, wS[q], wa, we,
                      [Mux(wz | (st_last_blk if lack else 0), 0, upd) for upd, lack in words])
        wa, we, wz = controls(True, "V")
        write("V", wV, wa, we, [Mux(wz, 0, Vg[q] + v[q]) for q in range(PE)])

        # ---- read-out trees over the word (as in the parallel path; (b+1)·V and the count
        # of zero query bits with the first block), then the sum over the row blocks, then
        # the beat of the group
        depth = plan.tree_levels
        smax = plan.N << (plan.w - 1)

        first = st.first_blk if R > 1 else 1
        # (the count of zero query bits from the code beside the read, stage 1: data_regs
        # levels more than the rows' trees, the same edge out; with row blocks, counted for
        # the first block only, 0 for the others, so that it joins a block's sum with no
        # select in front of that adder)
        zero_bits = [~s1.code[t] & s1.first_blk if R > 1 else ~s1.code[t] for t in range(b)]
        zeros = adder_tree(m, [Term(x, False, 0, 1) for x in zero_bits],
                           en=en, depth=depth + plan.data_regs, tree=plan.adders,
                           name="zeros")
        # (the fields of a block's sum, past the trees and plan.block_regs; of a group's sum,
        # past plan.carry_regs more)
        blk_arrive_f = _delayed(m, act & ~st.key, depth + plan.block_regs, en, "qvalid")
        blk_arrive = blk_arrive_f[0]
        arrive_f = (_delayed(m, blk_arrive, plan.carry_regs, en, "qvalid_hi")
                    if plan.carry_regs else blk_arrive_f)
        arrive = arrive_f[0]
        out_depth = depth + plan.block_regs + plan.carry_regs
        last = delay(m, st.last, out_depth, en=en, name="qlast")
        tag = delay(m, st.tag.as_value(), out_depth, en=en, name="qtag")
        if R > 1:
            # the row blocks of a group arrive one per cycle: the first block's sum adds the
            # count of zero query bits in a register stage of its own (plan.block_regs),
            # then each block's sum adds the sum so far (acc), which returns to 0 after the
            # group's last block: the loop through acc is one adder, no mux
            blk_push_f = _delayed(m, st.last_blk, depth + plan.block_regs, en, "qlast_blk")
            push_f = (_delayed(m, blk_push_f[0], plan.carry_regs, en, "qlast_blk_hi")
                      if plan.carry_regs else blk_push_f)
            push = push_f[0]
            base = zeros.value
        else:
            push = 1
        group0 = delay(m, st.grp0, out_depth, en=en, name="qgroup0")
        W, k = plan.num_width, plan.acc_split
        totals = []
        for q in range(PE):
            # lane P (z and n) has the narrower ranges of z (±N) and n (0..N)
            top, vlo, vhi = (smax, plan.N * plan.vmin, plan.N * plan.vmax) if q < P else \
                (plan.N, 0, plan.N)
            rows_q = [_masked(Sg(t, q), cb[t]) for t in range(T)]
            vop = Vg[q] if R == 1 else Mux(first, Vg[q], 0)
            if plan.mask_regs:
                # the masked operands registered before the first adder level
                regs = [Signal(x.shape(), name=f"mask{q}_{t}") for t, x in enumerate(rows_q)]
                vreg = Signal(vop.shape(), name=f"mask{q}_v")
                for reg, x in zip(regs + [vreg], rows_q + [vop]):
                    register(m, reg, x, en)
                rows_q, vop = regs, vreg
            terms = [Term(x, False, -top - 1, top) for x in rows_q]
            terms += _scaled(b, vop, vlo, vhi)
            root = adder_tree(m, terms, en=en, depth=depth - plan.mask_regs,
                              tree=plan.adders, name=f"num{q}" if q < P else "den")
            if R == 1:
                totals.append((zeros.value - root.value) if root.neg
                              else (root.value + zeros.value))
                continue
            split = k and not root.neg and len(base) <= k
            if not split:
                part = Signal(signed(W), name=f"block_{q}")
                register(m, part, (base - root.value) if root.neg else (root.value + base),
                         en)
            if not k:
                acc = Signal(signed(W), name=f"acc_{q}", reset_less=True)
                totals.append(_accumulator(m, acc, part, None, en, arrive_f, push_f,
                                           f"acc_{q}")[:W])
                continue
            # split (plan.carry_regs): the low k bits of the block sums accumulate in acc_lo
            # (k-bit adder), their carry out and the block's high bits are registered, and
            # the high half accumulates one edge later in acc_hi (hi + high bits + carry in,
            # one adder of W - k bits); both return to 0 after the group's last block, and
            # the group's sum is the registered low bits beside the high half's sum (each
            # half an _accumulator: a loop's adder and the adder whose sum leaves).
            # Where the block's sum is root + base with base < 2**k (the count of zero query
            # bits), the block register holds its low k bits (root's low bits + base) and
            # their carry out, and root's high bits, whose sum with that carry is the
            # block's high half, registered at the next edge (``high``) beside the low
            # half's carry: the block's adder is k bits wide, not W
            acc_lo = Signal(k, name=f"acc_lo_{q}", reset_less=True)
            acc_hi = Signal(signed(W - k), name=f"acc_hi_{q}", reset_less=True)
            carry = Signal(name=f"carry_{q}")
            low = Signal(k, name=f"low_{q}")
            high = Signal(signed(W - k), name=f"block_hi_{q}")
            if split:
                full = Signal(signed(W), name=f"root_{q}")
                m.d.comb += full.eq(root.value)
                part_lo = Signal(k, name=f"block_lo_{q}")
                part_c = Signal(name=f"block_c_{q}")
                root_hi = Signal(signed(W - k), name=f"root_hi_{q}")
                register(m, Cat(part_lo, part_c), full[:k] + base, en)
                register(m, root_hi, full[k:].as_signed(), en)
                high_next = root_hi + part_c
            else:
                part_lo, high_next = part[:k], part[k:].as_signed()
            sum_lo = _accumulator(m, acc_lo, part_lo, None, en, blk_arrive_f, blk_push_f,
                                  f"acc_lo_{q}")
            with m.If(en):
                m.d.sync += [carry.eq(sum_lo[k]), low.eq(sum_lo[:k]), high.eq(high_next)]
            # acc_hi + high + carry as one adder: (2·acc_hi + c) + (2·high + c), halved
            sum_hi = _accumulator(m, acc_hi, high, carry, en, arrive_f, push_f,
                                  f"acc_hi_{q}")
            totals.append(Cat(low, sum_hi[:W - k]).as_signed())

        # one beat per group (P nums, den, last on group G-1) in a register: the divider
        # takes each group into its pipeline, so no bank of G·P sums is held here
        beat = Signal(layouts.weighted_group(plan))
        den = Signal(unsigned(plan.den_width))
        with m.If(self.o.ready):
            m.d.sync += ovalid.eq(0)
        with m.If(en & arrive & push):
            # den is lane P's sum in group 0, kept for the query's later groups
            den_now = Mux(group0, totals[P], den)
            m.d.sync += [ovalid.eq(1), beat.last.eq(last), beat.tag.eq(tag),
                         beat.den.eq(den_now), den.eq(den_now)]
            m.d.sync += [beat.num[q].eq(totals[q]) for q in range(P)]
        m.d.comb += [self.o.valid.eq(ovalid), self.o.payload.eq(beat)]
        return m
