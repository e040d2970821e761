"""The ``hsoftmax`` value path (SPEC §3) with sums per shift class: no barrel shifter.

num[e] = sum_j v_j[e]·2^(c_j) and den = sum_j 2^(c_j), c_j = s[b] - s[H_j] in 0..smax'
(smax' = max(weight_shifts)). Grouping the keys by their class c, num[e] = sum_c 2^c·B_c[e]
with B_c[e] the plain sum of the values of the keys of class c: the adders of a scan add
plain values into bins, and the shifts are applied once per query, by Horner's rule over the
classes (acc = 2·acc + B_c, from the largest class down), so that no value is ever shifted by
a data-dependent amount.

:class:`HsoftmaxPlan` holds the numbers (widths, bins, pass lengths, timing);
:meth:`HsoftmaxPlan.component` builds :class:`HsoftmaxValuePath`.
"""

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring

from . import layouts
from .hamming import HammingPlan
from .keystore import CODE_READ, KeyWriter, distances, key_memories
from .plan import Folding, Timing, WeightedSum, signed_width, tree_depth, unsigned_width
from .queue import LUT_RAM_FIRST, NO_RW_CHECK, UnguardedReadPort
from .tree import Term, adder_tree, delay, twin

__all__ = ["BIN_DEPTH", "BIN_STAGE_BITS", "HsoftmaxPlan", "HsoftmaxValuePath"]

#: most bins (shift classes) of a slot: the depth of one LUT RAM of the ECP5 (16 x 4 bits),
#: so that a slot's bins are one column of LUT RAMs read asynchronously
BIN_DEPTH = 16

#: most bits of all M slots' bins (M·(P·bin_width + count_width)) for which the bins'
#: read-modify-write is split by a register (``bin_stage``): the bins are then block RAM read
#: synchronously (on an FPGA without LUT RAM, the iCE40, a memory read asynchronously is
#: flip-flops and a mux tree, whose read sets the clock), at the cost of a few flip-flops per
#: bin bit (the values, the sum written, registered) and a LUT per bin bit (the forwarding
#: mux), little where the bins are small; larger bins keep the one-cycle update from LUT RAM
BIN_STAGE_BITS = 256


@dataclass(frozen=True)
class HsoftmaxPlan(Folding, WeightedSum):
    """The ``hsoftmax`` value path of d-element w-bit values and b-bit codes over windows of
    at most N keys: key j weighs ``2**weight_shifts[H_j]``; ``lanes`` P value elements per
    cycle; ``keys_per_cycle`` M stored keys compared with the query per cycle; the Hamming
    distance as planned by ``hamming``; ``class_bits`` f (None: the fewest with at most
    :data:`BIN_DEPTH` bins): the low f bits of a key's class c shift its value before it
    enters bin c >> f; ``bin_stage`` (None: where the bins hold at most
    :data:`BIN_STAGE_BITS` bits): the bins' read-modify-write is split by a register."""

    d: int
    w: int
    b: int
    N: int
    weight_shifts: tuple
    lanes: int | None = None
    keys_per_cycle: int = 1
    hamming: HammingPlan | None = None
    class_bits: int | None = None
    bin_stage: bool | None = None

    mode = "hsoftmax"

    def __post_init__(self):
        self._unfolded_by_default()
        if len(self.weight_shifts) != self.b + 1 or min(self.weight_shifts) < 0:
            raise ValueError(f"weight_shifts: b + 1 = {self.b + 1} shifts >= 0, not "
                             f"{self.weight_shifts!r}")
        if not 1 <= self.keys_per_cycle <= self.N:
            raise ValueError(f"keys_per_cycle = {self.keys_per_cycle}: 1 .. N = {self.N}")
        if self.hamming is None:
            object.__setattr__(self, "hamming", HammingPlan(self.b))
        if self.hamming.b != self.b:
            raise ValueError(f"a Hamming distance of {self.hamming.b}-bit codes, not b = "
                             f"{self.b}")
        if self.class_bits is None:
            f = 0
            while (self.max_shift >> f) + 1 > BIN_DEPTH:
                f += 1
            object.__setattr__(self, "class_bits", f)
        if not 0 <= self.class_bits <= 5:
            raise ValueError(f"class_bits = {self.class_bits}: 0 .. 5")
        if self.bin_stage is None:
            bits = self.M * (self.lanes * self.bin_width + self.count_width)
            object.__setattr__(self, "bin_stage", bits <= BIN_STAGE_BITS)

    # ---------------------------------------------------------------- widths and layout
    @property
    def M(self):
        return self.keys_per_cycle

    @property
    def kept(self):
        """Most keys a query's output sums over: N."""
        return self.N

    @property
    def max_shift(self):
        """Largest shift of a value, smax' = max(weight_shifts) (s[b] - s[0])."""
        return max(self.weight_shifts)

    @property
    def max_weight(self):
        return 1 << self.max_shift

    @property
    def grouped(self):
        """Folded, (num, den) leaves one group of P nums per beat (:func:`layouts.grouped`),
        as each group's fold ends: the divider needs no bank of its own."""
        return self.folded

    @property
    def code_words(self):
        """Words of each slot's code memory: ceil(N/M) (key j: word j//M of slot j%M)."""
        return -(-self.N // self.M)

    @property
    def value_words(self):
        """Words of the value memory: ceil(N/M)·G (key j's group g: word (j//M)·G + g, slot
        j%M): one read gives the M keys of a code word their group g."""
        return self.code_words * self.groups

    @property
    def bins(self):
        """Cb = (smax' >> f) + 1: bins per slot, one per class c >> f."""
        return (self.max_shift >> self.class_bits) + 1

    @property
    def fine_shift(self):
        """Largest shift a value takes before its bin, min(2^f - 1, smax')."""
        return min((1 << self.class_bits) - 1, self.max_shift)

    @property
    def horner_shift(self):
        """Shift of Horner's rule between bins: 2^f (bin i weighs 2^(i·2^f))."""
        return 1 << self.class_bits

    @property
    def bin_width(self):
        """Signed bits of a value bin: at most ceil(N/M) keys of a slot, each v·2^r."""
        k = self.code_words << self.fine_shift
        return signed_width(k * self.vmin, k * self.vmax)

    @property
    def count_width(self):
        """Unsigned bits of a slot's den bin (the sum of its keys' 2^r)."""
        return unsigned_width(self.code_words << self.fine_shift)

    @property
    def fold_stages(self):
        """FS = max(1, ceil(log2 M)): register levels from a bin's read to the M slots' sum."""
        return max(1, tree_depth(self.M))

    @property
    def pipe_depth(self):
        """D = L_H + 4: edges from a code word's read to its keys' read of their bins (the
        memories' read and a plain register after it, ``CODE_READ``; the Hamming distance;
        the class registered; the bin address and shifted values registered)."""
        return CODE_READ + self.hamming.latency.fixed + 2

    @property
    def fold_delay(self):
        """FD = FS + 1 with ``bin_stage`` (the bins read into a register first), else FS:
        edges from a fold's read of a bin to the M slots' sum."""
        return self.fold_stages + self.bin_stage

    @property
    def fold_wait(self):
        """X = max(0, Cb - D, ceil((Cb + FD)/2) - D): cycles from a fold's start to the next
        group's first read, so that the fold reads its bins before that group updates them
        (X + D >= Cb), and, at full rate, the beat of two folds before has left the output
        register when a fold starts (2·(1 + D + X) >= Cb + FD + 2)."""
        Cb, D = self.bins, self.pipe_depth
        return max(0, Cb - D, -(-(Cb + self.fold_delay) // 2) - D)

    @property
    def group_overhead(self):
        """Cycles of a group beyond its ceil(n/M) reads: D + X."""
        return self.pipe_depth + self.fold_wait

    @property
    def beat_spacing(self):
        """Fewest edges between two beats of a query (grouped): ceil(n/M) + D + X at n = 1."""
        return 1 + self.group_overhead

    @property
    def out_cycles(self):
        """Edges from the first (num, den) beat of a query to its last at n = 1 (the gap the
        divider may count on): (G - 1)·:attr:`beat_spacing`."""
        return (self.groups - 1) * self.beat_spacing

    # ---------------------------------------------------------------- timing
    @property
    def latency(self):
        """Edges from a query's transfer to its (last) (num, den) transfer, nothing stalled:
        ``G·(D + X) + Cb + FD + 3 + G·ceil(n/M)``: the bins' clearing (the first fold, one
        edge after the query's, X cycles before the first read), G groups of ceil(n/M) reads
        and D + X cycles to the next fold's start, the last fold (Cb reads, FD levels), the
        output register and the beat."""
        G = self.groups
        fixed = G * self.group_overhead + self.bins + self.fold_delay + 3
        per = Timing(per_key=G) if self.M == 1 else Timing(per_block=G, block=self.M)
        return Timing(fixed) + per

    @property
    def interval(self):
        """Cycles busy with one query: its latency plus the cycle in which it returns to
        idle."""
        return self.latency + Timing(1)

    @property
    def key_interval(self):
        """Cycles per key: one value group per cycle."""
        return Timing(self.groups)

    @property
    def adder_bits(self):
        """Bits of the bins' adders, the fold's trees and the Horner accumulators (a size
        estimate)."""
        lanes = self.M * (self.lanes * self.bin_width + self.count_width)
        return 2 * lanes + 2 * (self.lanes * self.num_width + self.den_width)

    def component(self):
        return HsoftmaxValuePath(self)


def _lookup(table, index, width):
    """``table[index]`` (``width`` bits): each output bit of each 16 entries a function of
    the index's low 4 bits (one LUT4: an OR of its ones' decodes), then a mux by the high
    bits: two LUT levels for up to 32 entries, where a plain table (a ROM of the synthesis
    tools) maps to several more."""
    lo, hi = index[:4], index[4:]
    parts = []
    for v in range(-(-len(table) // 16)):
        chunk = table[16 * v:16 * v + 16]
        parts.append(Cat(Cat(lo == j for j, x in enumerate(chunk) if (x >> k) & 1).any()
                         for k in range(width)))
    return parts[0] if len(parts) == 1 else Array(parts)[hi]


class HsoftmaxValuePath(wiring.Component):
    """Keys' codes and values held in memory; each query makes G passes over them (one per
    group of P lanes), M keys per cycle, and sums their values by shift class.

    **Memory.** Codes: M memories (one per slot) of ceil(N/M) codes, key j at word j//M of
    slot j%M's. Values: ceil(N/M)·G words of M keys' group g (key j's group g at word
    (j//M)·G + g, slot j%M), one address register for reads and writes. Slots beyond n in
    the last word never count.

    **Bins.** Per slot, P + 1 memories of Cb + 1 words (LUT RAM, read asynchronously, each
    with its own copy of the read address register, a ``tree.twin``; one write address
    register per slot), the P lanes' value bins of
    ``plan.bin_width`` bits and the den bin: word i < Cb holds the sums of the slot's
    keys of class c = s[b] - s[H] with c >> f = i, each value shifted by r = c & (2^f - 1) (at
    most 2^f - 1 bits, a small mux) and the den bin 2^r. The class is registered, then the
    bin address and the shifted values. A key's bin is read, added to and written back in
    one cycle, so equal classes in a row need no forwarding. A flag per bin (``held``,
    flip-flops) says that it was written since a fold last read it; a bin without it is read
    at word Cb instead, which is never written (0 since configuration): so a bin starts each
    group at 0 without a write of 0 or a mux of 0 before its adders (the read address is a
    register of its own, from the flags' and the address's next values).
    With ``plan.bin_stage`` (small bins, for an iCE40 without LUT RAM) the bins are a memory
    of Cb words read synchronously (block RAM), and the update takes two cycles: the bin is
    read into the memory's read register (taken as 0 where not ``held``), and its sum with
    the values written back a cycle later; a read of the bin being written takes that sum
    instead (forwarding, from a register), and a fold's sum of the slots starts from the
    read register, one edge later (FD = FS + 1).

    **A query.** Its first fold clears the bins' flags (they may hold anything after a
    reset). Then for each group g: ceil(n/M) reads (code word w, value word w·G + g, one per
    cycle); D = L_H + 4 edges after a read its keys update (read) their bins. After a group's
    last update, its fold reads bin Cb-1 down to 0 (clearing their flags), adds the M slots'
    bins of each lane (FD register levels) and forms acc = acc·2^(2^f) + sum (Horner), so
    acc = num[e] of the group's lanes and den; the group leaves as one beat (grouped) or the
    d-wide sum (G = 1).
    The next group's reads start X cycles after a fold starts. A fold waits for the
    previous beat to leave (``o.ready`` low stalls the passes, never loses a beat); at full
    rate no fold waits (X is chosen so).

    Parameters
    ----------
    plan : :class:`HsoftmaxPlan`

    Members
    -------
    i : :py:`In(stream.Signature(layouts.token(plan)))`
        Hashed keys then queries of a window (unfolded with the key's d-wide value).
    o : :py:`Out(stream.Signature(layouts.weighted_sum(plan)))`, or of
        :func:`layouts.weighted_group` when folded (one beat per group, ``last`` on G-1).
    v : :py:`In(stream.Signature(layouts.group(plan)))` (folded only)
        The keys' values, G groups per key; a key token transfers with its last group.

    Latency (edges from a query's transfer on ``i`` to its (last) transfer on ``o``,
    ``o.ready`` high): ``plan.latency`` = ``G·(D + X) + Cb + FD + 3 + G·ceil(n/M)``, X =
    ``plan.fold_wait``.
    Throughput: one key per G cycles; one query at a time, ``plan.interval`` = latency + 1
    cycles per query.
    """

    def __init__(self, plan):
        self.plan = plan
        super().__init__(layouts.value_path_ports(plan))

    @property
    def latency(self):
        return self.plan.latency

    def _staged_bins(self, m, name, word, cb, x, at_next, nxt, flags, fstart, folding):
        """A slot's bins with a register in their read-modify-write (``plan.bin_stage``): a
        memory of Cb words with a synchronous read (block RAM), whose read register is the
        stage (block RAM on the iCE40; where the fabric has LUT RAM, :data:`LUT_RAM_FIRST` gives
        it LUT RAM, since a block RAM's clock-to-out would sit in the read-modify-write's
        one-cycle loop). Bin ``at`` is read (the address a register, loaded with ``at_next``), and an
        edge later the word read (0 where the bin is not held) plus the values is written
        back to it. Where the bin read is the one being written (the previous cycle's, unless
        that was a fold's read, which leaves the bin cleared), the sum written then (``tot1``,
        a register, which keeps it only then: 0 else) is taken instead of the stale word:
        equal classes in a row need no stall.
        A fold reads the same way: ``base`` (returned) is the bin of a fold's read one edge
        later, a mux of registers and the memory's read register (no logic in front of the
        memory's read, no bins in flip-flops).

        Every select is a flip-flop loaded from next values: ``rsel`` (bin i is read and held)
        from ``nxt`` (the next address one-hot) AND ``flags`` (the bins' held flags,
        flip-flops), and ``forward`` (the bin read next is the one written now: the class bin
        ``cb`` equals the previous one, ``cprev``, or at a fold start, bin Cb-1 is ``at``;
        never while folding), each delayed by an edge beside the memory's read."""
        Cb = self.plan.bins
        P = self.plan.lanes
        # (at least 2 words: a memory of one word would have a zero-width address)
        mem = memory.Memory(shape=word, depth=max(Cb, 2), init=[],
                            attrs={**NO_RW_CHECK, **LUT_RAM_FIRST, "ram_style": "block"})
        m.submodules[name] = mem
        # (an UnguardedReadPort, which Yosys merges into a synchronous read port of the block
        # RAM with no bypass logic: a word read as it is written is never used, see
        # ``forward``)
        wp, rp = mem.write_port(), UnguardedReadPort(m, mem, name)
        rdata = rp.data
        at = Signal(range(max(Cb, 2)), name=f"{name}_at")     # the bin read this cycle
        at1 = Signal.like(at, name=f"{name}_at1")             # the bin written this cycle
        top = Signal(name=f"{name}_top")                      # at == Cb - 1
        rsel = Signal(Cb, name=f"{name}_rsel")           # the bin read, where held
        # the word read is taken (held, not forwarded), and the sum forwarded instead
        take1 = Signal(name=f"{name}_take1")
        x1 = Signal.like(x, name=f"{name}_x1")
        cprev = Signal.like(cb, name=f"{name}_cprev")
        forward = Signal(name=f"{name}_fwd")
        keep = Signal(name=f"{name}_keep")                    # ~forward, a flip-flop
        tot1 = Signal(word, name=f"{name}_tot1")
        base = Signal(word, name=f"{name}_base")
        total = Signal(word, name=f"{name}_sum")
        m.d.comb += [total.v[l].eq(base.v[l] + x1.v[l]) for l in range(P)]
        m.d.comb += total.c.eq(base.c + x1.c)
        fwd_next = ~folding & Mux(fstart, top, cb == cprev)
        take1_next = rsel.any() & ~forward
        m.d.sync += [at.eq(at_next), top.eq(nxt[Cb - 1]), rsel.eq(nxt & flags), at1.eq(at),
                     x1.eq(x), cprev.eq(cb), forward.eq(fwd_next), keep.eq(~fwd_next),
                     take1.eq(take1_next)]
        # the word's parts (the P lanes' value bins and the den bin, each a run of bits of
        # the memory's word): each part has its own copy of `take1` and `keep` (twins), so
        # that no one flip-flop drives the selects of all P·bw + cw bits
        bw = word["v"].shape.elem_shape.width
        parts = [(word["v"].offset + l * bw, bw) for l in range(P)]
        parts.append((word["c"].offset, word["c"].shape.width))
        parts.sort()
        rflat, tflat, sflat = rdata.as_value(), tot1.as_value(), total.as_value()
        based = []
        for k, (off, width) in enumerate(parts):
            if k == 0:
                take_k, keep_k = take1, keep
            else:
                take_k = twin(m, take1, take1_next, name=f"{name}_take1_{k}")
                keep_k = twin(m, keep, ~fwd_next, name=f"{name}_keep_{k}")
            # the sum written, kept only where it is forwarded (0 else: `keep` a
            # synchronous reset of its flip-flops), so that the select in front of the
            # adders has four inputs per bit: the word read, the memory's power-up flag
            # (Yosys' emulation of the read register's initial value on the iCE40), `take1`
            # and tot1
            seg = slice(off, off + width)
            with m.If(keep_k):
                m.d.sync += tflat[seg].eq(0)
            with m.Else():
                m.d.sync += tflat[seg].eq(sflat[seg])
            # (an AND-OR of flip-flops per bit: one LUT in front of the adders)
            based.append((rflat[seg] & take_k.replicate(width)) | tflat[seg])
        m.d.comb += [rp.addr.eq(at), wp.addr.eq(at1), wp.en.eq(1), wp.data.eq(total)]
        m.d.comb += base.eq(Cat(*based))
        return base

    def elaborate(self, platform):
        plan = self.plan
        b, d, N, P, G, M = plan.b, plan.d, plan.N, plan.lanes, plan.groups, plan.M
        Cb, FS, D, X = plan.bins, plan.fold_stages, plan.pipe_depth, plan.fold_wait
        f = plan.class_bits
        m = Module()
        p = self.i.payload

        # ---- memories: codes (one per slot), values (M keys' group per word), Hamming units
        wc, rc, wv, rv, hams = key_memories(m, plan, M)
        L = hams[0].latency.fixed

        # ---- the window's keys: n, words of codes (nb); the value word of the next key's
        # code word where it is not a window's first (``vopen``: (nb - 1)·G where that word
        # has a slot left, else nb·G, kept as the keys are written)
        keys = KeyWriter(plan)
        n, nb = keys.n, keys.nb
        vopen = Signal(range(plan.value_words + 1), name="vopen")
        cq = Signal(b)
        tag = Signal(layouts.query_tag())

        # ---- issue side: group gi's words, one per cycle where `issue`
        gi = Signal(range(G + 1))                 # group being read
        blk = Signal(range(plan.code_words + 1))  # its next word
        left = Signal(range(N + 1))               # keys of the window from word blk on
        vaddr = Signal(range(plan.value_words + G))
        arm = Signal()                            # group gi reads once `wait` is 0
        wait = Signal(range(X + 2))                 # (at least 1 bit)
        issue = Signal()
        # the word issued is the group's last: left <= M, a flip-flop loaded beside `left`
        # (from n <= M where left is loaded with n, else from left <= 2·M)
        last_word = Signal(name="last_word")
        m.d.comb += issue.eq(arm & (wait == 0))
        # (n <= M, registered: n changes only as keys are taken, in IDLE, and a query's
        # first read is at least two edges after its transfer, `wait` being X + 1 then)
        n_small = Signal(name="n_small")
        m.d.sync += n_small.eq(n <= M)
        with m.If(arm & (wait != 0)):
            # (a group's reads wait: left = n)
            m.d.sync += [wait.eq(wait - 1), last_word.eq(n_small)]
        with m.If(issue):
            m.d.sync += [blk.eq(blk + 1), left.eq(left - M), last_word.eq(left <= 2 * M),
                         vaddr.eq(vaddr + G)]
            with m.If(last_word):
                m.d.sync += [arm.eq(0), blk.eq(0), left.eq(n), last_word.eq(n_small),
                             vaddr.eq(gi + 1), gi.eq(gi + 1)]
        # (the values are read L + 1 edges after the codes' word, so that they arrive beside
        # their keys' classes.) The value memory has one address, a register (`va`): the
        # pass's word, or in IDLE (no pass then), where a key's group comes in, the word it
        # is written to, an edge later (below)
        vread = delay(m, vaddr, L, name="vaddr")
        va = Signal.like(rv.addr, name="vmaddr")
        m.d.sync += va.eq(vread)
        m.d.comb += [rv.addr.eq(va), wv.addr.eq(va)]
        live = distances(m, rc, hams, cq, issue, blk, left)
        # the values read, into a plain register as the codes (no logic after the block
        # RAMs): beside their keys' classes
        # (a plain signal, viewed with the read data's layout where it is read: a signal
        # of a nested array layout is named in RTLIL per element, vreg[s] and vreg[s][l]
        # beside vreg, which Yosys 0.70's abc9 cannot reintegrate: its wide-port
        # reconstruction takes bit s of `vreg` and word `vreg[s]` for one name, and fails
        # the assertion of rtlil.cc:3091, seen in the ULX3S hsoftmax P8 M8 build)
        layout = rv.data.shape()
        vflat = Signal(layout.size, name="vreg", reset_less=True)
        m.d.sync += vflat.eq(rv.data.as_value())
        vreg = layout(vflat)

        # ---- class and shifted values (registered): bin c >> f, value << (c & (2^f - 1))
        cls = range(max(plan.max_shift, 1) + 1)   # (a class signal has at least 1 bit)
        bw, cw = plan.bin_width, plan.count_width
        word = data.StructLayout({"v": data.ArrayLayout(signed(bw), P), "c": unsigned(cw)})
        folding = Signal()                        # the bins are read by a fold (and cleared)
        faddr = Signal(range(max(Cb, 2)))
        fstart = Signal()                         # a fold starts at the next edge
        # ... the same, for slot s's bin address, flags and selects: an OR of its own copies
        # of the fold control's flip-flops (`pend`, `qstart`), so that the fold start's
        # fanout is one slot's, not the M slots' (see the fold control below)
        fstarts = [Signal(name=f"fstart{s}") for s in range(M)]
        # Each slot's bin address is one register (no mux between it and the LUT RAMs' read),
        # loaded with its next value: the fold's next address where a fold starts (Cb - 1)
        # or goes on (faddr - 1, where `fold_more`: folding and faddr != 0, a flip-flop),
        # else the slot's next class bin. Each test of that next address (registered: the
        # forwarding and held flags, the read address) is the same test of those three
        # addresses, each from flip-flops, chosen last by the fold start, which comes from
        # the value path's state and the output register (one mux after it)
        fold_more = Signal(name="fold_more")     # folding & (faddr != 0)
        # fsel: one-hot faddr while folding (0 otherwise), a shift register
        fsel = Signal(max(Cb, 2), name="fsel")
        fdown = (faddr - 1)[:len(faddr)]
        m.d.sync += [folding.eq(fstart | fold_more), faddr.eq(Mux(fstart, Cb - 1, fdown)),
                     fold_more.eq(Mux(fstart, Cb > 1, fsel[2:].any())),
                     fsel.eq(Mux(fstart, 1 << (Cb - 1), fsel >> 1))]

        def next_bin(fn, a):
            """fn of the bin address after the edge, a slot's next class bin being ``a``."""
            return Mux(fstart, fn(Const(Cb - 1, len(faddr))), Mux(fold_more, fn(fdown), fn(a)))
        bins = []
        whole_fstart = fstart
        for s in range(M):
            fstart = fstarts[s]
            # the class of the key's distance, registered (a table of b + 1 entries), and
            # whether the slot holds a key of the window, beside it
            c = Signal(cls, name=f"class{s}")
            lv = Signal(name=f"live{s}")
            oh = Signal(Cb, name=f"class_bin{s}")      # one-hot c >> f
            h = hams[s].o.payload.h
            m.d.sync += [c.eq(_lookup(plan.weight_shifts, h, len(c))),
                         oh.eq(_lookup([1 << (x >> f) for x in plan.weight_shifts], h, Cb)),
                         lv.eq(live[s])]
            x = Signal(word, name=f"x{s}")
            r = c[:f] if f else Const(0, 1)
            m.d.sync += [x.v[l].eq(Mux(lv, vreg[s][l] << r, 0)) for l in range(P)]
            m.d.sync += x.c.eq(Mux(lv, Const(1, 1) << r, 0))
            name = f"bins{s}" if M > 1 else "bins"
            # the next bin address one-hot: the fold's first bin where a fold starts, its
            # next where it goes on (fsel shifted), else the class bin (`oh`); `flags`: bin i
            # was written since a fold last read it, after this edge (flip-flops, loaded
            # from the next address: an update marks its bin, a fold's read clears it)
            nxt = Signal(Cb, name=f"next_bin{s}")
            flags = Signal(Cb, name=f"held{s}")
            for i in range(Cb):
                m.d.comb += nxt[i].eq(Mux(fstart, i == Cb - 1,
                                          Mux(fold_more, fsel[i + 1] if i + 1 < Cb else 0,
                                              oh[i])))
                m.d.sync += flags[i].eq(Mux(nxt[i], ~(fstart | fold_more), flags[i]))
            cb = (c >> f)[:len(faddr)]
            if plan.bin_stage:
                bins.append(self._staged_bins(m, name, word, cb, x, next_bin(lambda a: a, cb),
                                              nxt, flags, fstart, folding))
                continue
            # a bin not held reads word Cb, never written (0 since configuration), instead
            # of itself, so that neither an update nor a fold sees what an earlier group (or
            # a reset) left there: the bins are cleared by these flags, not by a mux of 0
            # before the adders. `rd`, the read address, is a register from the next values:
            # a fold's start reads bin Cb-1 where held; a fold going on, bin faddr - 1 where
            # held (`fheld`, the flags copied at the fold's start and shifted: no update
            # changes them during a fold); else the class bin where held
            at_next = next_bin(lambda a: a, cb)
            fheld = Signal(Cb, name=f"fold_held{s}")     # fheld[Cb-1]: bin faddr's flag
            m.d.sync += fheld.eq(Mux(fstart, flags, fheld << 1))
            rd_next = Mux(fstart, Mux(flags[Cb - 1], Cb - 1, Cb),
                          Mux(fold_more, Mux(fheld[Cb - 2] if Cb > 1 else 0, fdown, Cb),
                              Mux((oh & flags).any(), cb, Cb)))
            # a memory per lane and one for the den bins (each a column of LUT RAMs)
            bword = Signal(word, name=f"bins{s}_read")
            parts = [(f"v{l}", signed(bw), x.v[l], bword.v[l]) for l in range(P)]
            parts.append(("c", unsigned(cw), x.c, bword.c))
            # the write address `at` is one register per slot (it reaches only the LUT RAMs'
            # write ports, no adder after it); the read address starts the read-modify-
            # write (read, add, write data), so each memory has its own copy of it
            # (`tree.twin`: Yosys merges plain copies of a flip-flop, `keep` or not): a read
            # address register drives one lane's LUT RAMs, not the P + 1 memories' (a net
            # of ~(P + 1)·bw/4 LUT RAMs' address inputs)
            at = Signal(range(max(Cb, 2)), name=f"bin{s}_at")
            rd0 = Signal(range(Cb + 1), name=f"rd{s}")
            m.d.sync += [at.eq(at_next), rd0.eq(rd_next)]
            for k, (tag_, shape, xv, out) in enumerate(parts):
                rd = rd0 if k == 0 else twin(m, rd0, rd_next, name=f"rd{s}_{tag_}")
                mem = memory.Memory(shape=shape, depth=Cb + 1, init=[])
                m.submodules[f"{name}_{tag_}"] = mem
                bwp, brp = mem.write_port(), mem.read_port(domain="comb")
                # every cycle: the bin of the keys D edges after their read gets their
                # values (0 where no key) added to what it holds in this group (0 if
                # nothing); a fold reads bin faddr (0 if nothing) and writes it back
                # unchanged (x is 0 then), and the bin leaves `held`
                m.d.comb += [brp.addr.eq(rd), bwp.addr.eq(at), bwp.en.eq(1),
                             bwp.data.eq(brp.data + xv), out.eq(brp.data)]
            bins.append(bword)

        fstart = whole_fstart

        # ---- the fold: the M slots' bins of each lane summed (FS levels), then Horner
        k = plan.code_words << plan.fine_shift
        vroots = [adder_tree(m, [Term(x.v[l], False, k * plan.vmin, k * plan.vmax)
                                 for x in bins], depth=FS, name=f"fold{l}") for l in range(P)]
        croot = adder_tree(m, [Term(x.c, False, 0, k) for x in bins], depth=FS, name="foldc")
        # (acc is cleared the edge before a fold's first step, a synchronous reset of its
        # flip-flops rather than a mux before its adders; the previous beat has left by then)
        FD = plan.fold_delay
        clear = delay(m, fsel[Cb - 1], FD - 1, name="hclear")
        step = delay(m, folding, FD, name="hstep")
        acc = Signal(data.ArrayLayout(signed(plan.num_width), P))
        den = Signal(unsigned(plan.den_width))
        sh = plan.horner_shift
        with m.If(clear):
            m.d.sync += [acc.eq(0), den.eq(0)]
        with m.Elif(step):
            m.d.sync += [acc[l].eq((acc[l] << sh) + vroots[l].value) for l in range(P)]
            m.d.sync += den.eq((den << sh) + croot.value)

        # fold control: a group's fold is asked for in its last update (D edges after its
        # last read) and starts when the output register is free (or is taken now): the
        # previous group's beat is then copied out of acc before this fold clears acc (it
        # is final by then, X + D >= Cb). The request is a flip-flop (`pend`, written from
        # its delay line one edge early, kept until the fold starts) and so is a query's
        # first fold (`qstart`, the edge after the query's transfer): the fold start is an
        # OR of flip-flops and the output handshake (1 in the core), not a function of the
        # value path's state and input handshake
        o_tx = self.o.valid & self.o.ready
        req_pre = delay(m, issue & last_word, D - 1, name="freq")
        last_pre = delay(m, issue & last_word & (gi == G - 1), D - 1, name="freqlast")
        pend = Signal(name="fold_pend")           # a group's fold asked for, not started
        pend_last = Signal(name="fold_pend_last")  # ... the query's last group's
        qstart = Signal(name="qstart")            # a query's first fold starts (no beat)
        beat = Signal(name="beat")                # the fold running gives a beat
        blast = Signal(name="blast")              # ... the query's last
        ovalid = Signal()                         # the output register holds a beat
        free = ~ovalid | self.o.ready
        start = pend & free
        m.d.sync += [pend.eq(req_pre | (pend & ~start)),
                     pend_last.eq(Mux(req_pre, last_pre, pend_last))]
        m.d.comb += fstart.eq(start | qstart)
        m.d.sync += qstart.eq(0)
        # each slot's copies: the same flip-flops, each written from its own output (so
        # that the synthesis tools keep them apart; qstart is 0 in IDLE, so ~qstart = 1)
        pends = [Signal(name=f"fold_pend{s}") for s in range(M)]
        qstarts = [Signal(name=f"qstart{s}") for s in range(M)]
        for ps, qs, fs in zip(pends, qstarts, fstarts):
            m.d.sync += [ps.eq(req_pre | (ps & ~free)), qs.eq(0)]
            m.d.comb += fs.eq((ps & free) | qs)
        with m.If(start):
            m.d.sync += [beat.eq(1), blast.eq(pend_last)]
            with m.If(gi != G):                   # the next group reads X cycles later
                m.d.sync += [arm.eq(1), wait.eq(X)]
        # the beat: acc is final FD edges after the fold's last read (`afull`), then copied
        # into the output register (flip-flops loaded from acc only: no mux) once it is free
        # (the next fold may start before then: the beat's `last` rides with it)
        done = delay(m, fsel[0] & beat, FD, name="hdone")
        done_last = delay(m, fsel[0] & blast, FD, name="hlast")
        afull, alast = Signal(name="afull"), Signal(name="alast")
        onum = Signal.like(acc)
        oden, olast = Signal.like(den, name="oden"), Signal(name="olast")
        with m.If(done):
            m.d.sync += [afull.eq(1), alast.eq(done_last)]
        with m.If(afull & (~ovalid | self.o.ready)):
            m.d.sync += [onum.eq(acc), oden.eq(den), olast.eq(alast), ovalid.eq(1),
                         afull.eq(0)]
        with m.Elif(self.o.ready):
            m.d.sync += ovalid.eq(0)
        m.d.comb += self.o.valid.eq(ovalid)
        if G > 1:
            m.d.comb += [self.o.payload.num[l].eq(onum[l]) for l in range(P)]
            m.d.comb += self.o.payload.last.eq(olast)
        else:
            m.d.comb += [self.o.payload.num[e].eq(onum[e]) for e in range(d)]
        m.d.comb += [self.o.payload.den.eq(oden), self.o.payload.tag.eq(tag)]

        # the value memory's write port from registers (a group lands an edge after it is
        # taken, long before a query reads it) at the one address `va`: the synthesis tools'
        # read-during-write logic of the block RAMs (they return the old word) then compares
        # no two addresses
        wd = Signal(layouts.group(plan), name="vwdata", reset_less=True)
        we = Signal.like(wv.en, name="vwen")
        m.d.comb += [wv.en.eq(we)] + [wv.data[s].eq(wd) for s in range(M)]
        m.d.sync += we.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                # key tokens and queries at any time (one query at a time); key j's value
                # groups at words from (j//M)·G, slot j%M
                keys.take(m, wc, self.i, getattr(self, "v", None), 1, 1)
                slot = keys.slot
                vword = Mux(p.first, 0, vopen)
                with m.If(keys.write):
                    m.d.sync += [va.eq(vword + keys.wg), we.eq(1 << slot), wd.eq(keys.vdata)]
                    with m.If(keys.last):
                        m.d.sync += vopen.eq(Mux(slot == M - 1, vword + G, vword))
                # the query's code and tag load at every edge in IDLE (their enable is the
                # state, a flip-flop: the hash's valid reaches none of these b + tag bits),
                # kept from the query's transfer on (SCAN); nothing reads them in IDLE (the
                # last beat has left, no pass runs)
                m.d.sync += [cq.eq(p.code), tag.eq(p.tag)]
                with m.If(self.i.valid & ~p.key):
                    # the first fold clears the bins (no beat): it starts at the next edge
                    # (`qstart`, a flip-flop); group 0 reads X cycles after it
                    m.d.sync += [gi.eq(0), blk.eq(0),
                                 left.eq(n), vaddr.eq(0), arm.eq(1),
                                 wait.eq(X + 1), beat.eq(0)]
                    m.d.sync += qstart.eq(1)
                    m.d.sync += [qs.eq(~qs) for qs in qstarts]
                    m.next = "SCAN"
            with m.State("SCAN"):
                with m.If((o_tx & olast) if G > 1 else o_tx):
                    m.next = "IDLE"
        return m
