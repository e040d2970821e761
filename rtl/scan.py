"""Value paths that scan the window's stored keys (SPEC §3, modes ``topk`` and ``hsoftmax``).

:class:`ScanPlan` holds the numbers (widths, walk and pass lengths, timing);
:meth:`ScanPlan.component` builds :class:`ScanValuePath` (whole values) or
:class:`FoldedScanValuePath` (one group of P lanes per cycle)."""

from dataclasses import dataclass

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring

from . import layouts
from .hamming import HammingDistance, HammingPlan
from .plan import Folding, Timing, WeightedSum, unsigned_width
from .tree import delay

__all__ = ["ScanPlan", "ScanValuePath", "FoldedScanValuePath", "TopkValuePath",
           "HsoftmaxValuePath"]


@dataclass(frozen=True)
class ScanPlan(Folding, WeightedSum):
    """The ``topk`` or ``hsoftmax`` value path of d-element w-bit values and b-bit codes over
    windows of at most N keys: keep ``k`` keys (topk) or weight key j by
    ``2**weight_shifts[H_j]`` (hsoftmax); ``lanes`` P value elements per cycle; the Hamming
    distance as planned by ``hamming``."""

    mode: str
    d: int
    w: int
    b: int
    N: int
    k: int | None = None
    weight_shifts: tuple | None = None
    lanes: int | None = None
    keys_per_cycle: int = 1
    hamming: HammingPlan | None = None

    def __post_init__(self):
        if self.mode not in ("topk", "hsoftmax"):
            raise ValueError(f"ScanValuePath serves modes topk and hsoftmax, not {self.mode!r}")
        if (self.k is None) != (self.mode == "hsoftmax") or \
                (self.weight_shifts is None) != (self.mode == "topk"):
            raise ValueError("a scan plan takes k in mode topk, weight_shifts in hsoftmax")
        self._unfolded_by_default()
        if not 1 <= self.keys_per_cycle <= self.N:
            raise ValueError(f"keys_per_cycle = {self.keys_per_cycle}: 1 .. N = {self.N}")
        if self.hamming is None:
            object.__setattr__(self, "hamming", HammingPlan(self.b))
        if self.hamming.b != self.b:
            raise ValueError(f"a Hamming distance of {self.hamming.b}-bit codes, not b = "
                             f"{self.b}")

    # ---------------------------------------------------------------- widths
    @property
    def key_count_width(self):
        return unsigned_width(self.N)

    @property
    def kept(self):
        """Most keys a query's output sums over: k (topk) or N (hsoftmax)."""
        return self.k if self.mode == "topk" else self.N

    @property
    def max_weight(self):
        """Largest weight of one key: 1 (topk), 2^(s[b]-s[0]) (hsoftmax)."""
        return 1 if self.mode == "topk" else 1 << max(self.weight_shifts)

    #: (num, den) leaves whole, one beat per query
    grouped = False

    # ---------------------------------------------------------------- timing
    @property
    def threshold_cycles(self):
        """topk: cycles to walk the b+1 histogram bins and find the cut distance (b+1
        counters unfolded; folded, a histogram memory whose read takes one cycle more)."""
        return self.b + 2 if self.folded else self.b + 1

    @property
    def pass_fixed(self):
        """Fixed cycles of one pass over the stored keys: the memory read and the Hamming
        pipeline behind the last key (a pass takes n + this, or n·G + this)."""
        return self.hamming.latency.fixed + 1

    @property
    def latency(self):
        """Edges from a query's transfer to its (num, den) transfer, nothing stalled: a scan
        walks n keys (the topk histogram pass) or n·G value groups, one per cycle, each pass
        then drains in :attr:`pass_fixed` cycles; one edge more in DONE: topk
        ``2(L_H+1) + T + 1 + (G+1)·n`` (T = :attr:`threshold_cycles`), hsoftmax
        ``L_H + 2 + G·n``."""
        if self.mode == "topk":
            return Timing(2 * self.pass_fixed + self.threshold_cycles + 1, 1 + self.groups)
        return Timing(self.pass_fixed + 1, self.groups)

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
        """Bits of the accumulators and the histogram (a size estimate)."""
        return 2 * self.lanes * self.num_width + (self.b + 1) * self.key_count_width

    def component(self):
        """:class:`FoldedScanValuePath` when G > 1, else :class:`ScanValuePath`."""
        return (FoldedScanValuePath if self.folded else ScanValuePath)(self)


class _Cut:
    """topk: the histogram of distances and the cut (h*, how many keys at h* to keep) that a
    walk over its bins finds (the parallel scan: b+1 counters, a walk of b+1 cycles that
    shifts them down one bin per cycle)."""

    def __init__(self, N, b):
        self.b = b
        self.kk = Signal(range(N + 1), name="kk")
        self.hist = [Signal(range(N + 1), name=f"hist{i}") for i in range(b + 1)]
        self.cum = Signal(range(N + 1), name="cum")
        self.hbin = Signal(range(b + 2), name="hbin")
        self.found = Signal(name="found")
        self.hstar = Signal(range(b + 1), name="hstar")
        self.need = Signal(range(N + 1), name="need")
        self.taken = Signal(range(N + 1), name="taken")   # keys (not groups) taken at h*

    def count(self, m, en, h):
        """Count distance h when en (pass 1)."""
        with m.If(en):
            for i in range(self.b + 1):
                with m.If(h == i):
                    m.d.sync += self.hist[i].eq(self.hist[i] + 1)

    def clear(self, m):
        """Empty the histogram (a query starts)."""
        m.d.sync += [x.eq(0) for x in self.hist]

    def _take(self, m, bin_count, bin_index):
        nxt = self.cum + bin_count
        m.d.sync += self.cum.eq(nxt)
        with m.If(~self.found & (nxt >= self.kk)):
            m.d.sync += [self.found.eq(1), self.hstar.eq(bin_index),
                         self.need.eq(self.kk - self.cum)]

    def walk(self, m, finish):
        """Body of state THRESH; calls ``finish()`` in its last cycle."""
        b = self.b
        self._take(m, self.hist[0], self.hbin)
        m.d.sync += [self.hist[i].eq(self.hist[i + 1]) for i in range(b)]
        m.d.sync += self.hbin.eq(self.hbin + 1)
        with m.If(self.hbin == b):
            finish()


class _MemCut(_Cut):
    """The histogram of the folded scan in a memory of b+1 words (block RAM, not b+1
    counters and their shift), with one flag per bin, "counted in this query", cleared when
    a query starts (so stale words, also after a reset, read as 0 and nothing is swept).
    Pass 1 reads bin h when H arrives and writes it back plus one a cycle later (read and
    flag see that write, so equal distances in consecutive cycles count right); the walk
    reads bin i in its cycle i and takes it a cycle later, so it lasts b+2 cycles."""

    def __init__(self, m, N, b):
        super().__init__(N, b)
        self.hist = None
        m.submodules.hist = mem = memory.Memory(shape=range(N + 1), depth=b + 1, init=[])
        self._w = mem.write_port()
        self._r = mem.read_port(transparent_for=(self._w,))
        self._touched = Signal(b + 1, name="hist_touched")
        self._inc = Signal(name="hist_inc")           # a count is written back this cycle
        self._inc_bin = Signal(range(b + 1), name="hist_inc_bin")
        self._live = Signal(name="hist_live")         # the word read last cycle is counted
        self._walking = Signal(name="hist_walking")   # state THRESH

    def _word(self):
        return Mux(self._live, self._r.data, 0)

    def count(self, m, en, h):
        w, r = self._w, self._r
        addr = Mux(self._walking, self.hbin, h)
        m.d.comb += r.addr.eq(addr)
        m.d.sync += [self._inc.eq(en), self._inc_bin.eq(h),
                     self._live.eq(self._touched.bit_select(addr, 1) |
                                   (self._inc & (self._inc_bin == addr)))]
        with m.If(self._inc):
            m.d.comb += [w.addr.eq(self._inc_bin), w.data.eq(self._word() + 1), w.en.eq(1)]
            m.d.sync += self._touched.bit_select(self._inc_bin, 1).eq(1)

    def clear(self, m):
        m.d.sync += self._touched.eq(0)

    def walk(self, m, finish):
        # cycle i reads bin i (i <= b) and takes bin i - 1 (i >= 1): b + 2 cycles
        m.d.comb += self._walking.eq(1)
        with m.If(self.hbin != 0):
            self._take(m, self._word(), self.hbin - 1)
        m.d.sync += self.hbin.eq(self.hbin + 1)
        with m.If(self.hbin == self.b + 1):
            finish()


def _end_pass(m, cut, second):
    """At the end of a pass (inside state PASS): topk's histogram pass goes on to walk the
    bins, any other pass is done."""
    if cut is None:
        m.next = "DONE"
        return
    with m.If(second):
        m.next = "DONE"
    with m.Else():
        m.d.sync += [cut.cum.eq(0), cut.hbin.eq(0), cut.found.eq(0)]
        m.next = "THRESH"


def _walk_and_done(m, cut, second, start_pass, o):
    """States THRESH (topk: walk the bins, then start the accumulating pass) and DONE (hold
    the result until it is taken)."""
    if cut is not None:
        with m.State("THRESH"):
            def finish():
                m.d.sync += [second.eq(1), cut.taken.eq(0)]
                start_pass()
                m.next = "PASS"
            cut.walk(m, finish)
    with m.State("DONE"):
        m.d.comb += o.valid.eq(1)
        with m.If(o.ready):
            m.next = "IDLE"


class ScanValuePath(wiring.Component):
    """Keys' codes and values held in memory; each query scans them through one
    :class:`HammingDistance` and adds the chosen (``topk``) or shifted (``hsoftmax``) values.

    **Unfolded** (G = ``plan.groups`` = ceil(d/P) = 1; :class:`FoldedScanValuePath` when
    G > 1). A key is written at address n (0 for
    the first key of a window). A query runs passes over addresses 0..n-1, one key per cycle:
    the code memory is read at j, the distance comes out of the popcount tree
    ``hamming_latency`` cycles later, aligned with a read of the value memory issued as late.
    A pass takes ``n + hamming_latency + 1`` cycles.

    ``topk``: pass 1 fills a histogram of the b+1 possible distances (counters unfolded, a
    memory of b+1 words folded); a walk over its bins (T = b+1 cycles unfolded, b+2 folded:
    ``plan.threshold_cycles``) finds the cut distance h* and how many keys at h* are kept (the
    lowest indices first); pass 2 adds v_j for H_j < h* and for the first ``need`` keys with
    H_j = h* (decided once per key: ``taken`` counts keys, not groups). num = that sum,
    den = min(k, n).

    ``hsoftmax``: one pass adds ``v_j << (s[b] - s[H_j])`` to num and ``1 << (s[b]-s[H_j])``
    to den (once per key): shifts, no multiplier.

    Parameters
    ----------
    cfg : :class:`~hamattn.CoreConfig`
        A ``topk`` or ``hsoftmax`` config.

    Members
    -------
    i : :py:`In(stream.Signature(layouts.token(cfg)))`
        Hashed keys then queries of a window (unfolded with the key's d-wide value).
    o : :py:`Out(stream.Signature(layouts.weighted_sum(cfg)))`
        d-wide num, den and the query's tag, one per query.
    v : :py:`In(stream.Signature(layouts.group(cfg)))` (folded only)
        The keys' values, G groups per key.

    Latency (edges from a query's transfer on ``i`` to its transfer on ``o``, ``o.ready``
    high), ``plan.latency``, L_H = ``plan.hamming.latency``, n keys in the window:
    topk ``2(L_H + 1) + T + 1 + (G + 1)·n``, hsoftmax ``L_H + 2 + G·n`` (G = 1:
    ``... + 2n`` and ``... + n``).
    Throughput: one key per G cycles; one query at a time (``i.ready`` for a query only when
    idle), ``plan.interval`` = latency + 1 cycles per query.
    """

    def __init__(self, plan):
        self.plan = plan
        super().__init__(layouts.value_path_ports(plan))

    @property
    def latency(self):
        return self.plan.latency

    def elaborate(self, platform):
        plan = self.plan
        b, d, N = plan.b, plan.d, plan.N
        topk = plan.mode == "topk"
        m = Module()
        p = self.i.payload

        m.submodules.codes = codes = memory.Memory(shape=unsigned(b), depth=N, init=[])
        m.submodules.values = values = memory.Memory(shape=layouts.vector(plan), depth=N,
                                                     init=[])
        wc, wv = codes.write_port(), values.write_port()
        rc, rv = codes.read_port(transparent_for=()), values.read_port(transparent_for=())
        m.submodules.hamming = ham = HammingDistance(b, tree=plan.hamming.tree,
                                                     stages=plan.hamming.stages)
        m.d.comb += ham.o.ready.eq(1)
        L = ham.latency.fixed

        n = Signal(range(N + 1))
        cq = Signal(b)
        tag = Signal(layouts.query_tag())
        cyc = Signal(range(N + L + 2))            # cycle within a pass
        acc = Signal(data.ArrayLayout(signed(plan.num_width), d))
        den = Signal(unsigned(plan.den_width))

        # ---- a pass: read code j in cycle j, value j in cycle j + L, act when H arrives
        issuing = Signal()
        in_pass = Signal()
        m.d.comb += [rc.addr.eq(cyc), ham.i.payload.a.eq(cq), ham.i.payload.b.eq(rc.data)]
        rd_valid = Signal()
        m.d.sync += rd_valid.eq(issuing)
        m.d.comb += ham.i.valid.eq(rd_valid)
        m.d.comb += rv.addr.eq(delay(m, cyc, L, name="vaddr"))
        pass_end = cyc == n + L
        act = ham.o.valid & in_pass
        h = ham.o.payload.h
        v = rv.data

        cut = None
        if topk:
            cut = _Cut(N, b)
            kk, hstar, need, taken = cut.kk, cut.hstar, cut.need, cut.taken
            second = Signal()            # pass 2 (accumulate) rather than pass 1 (histogram)
            cut.count(m, act & ~second, h)
            sel = (h < hstar) | ((h == hstar) & (taken < need))
            with m.If(act & second & sel):
                m.d.sync += [acc[e].eq(acc[e] + v[e]) for e in range(d)]
                with m.If(h == hstar):
                    m.d.sync += taken.eq(taken + 1)
        else:
            table = Array(Const(s, range(33)) for s in plan.weight_shifts)
            sh = Signal(range(33))
            m.d.comb += sh.eq(table[h])
            with m.If(act):
                m.d.sync += [acc[e].eq(acc[e] + (v[e] << sh)) for e in range(d)]
                m.d.sync += den.eq(den + (Const(1, 1) << sh))

        def start_pass():
            m.d.sync += cyc.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid & p.key):
                    addr = Mux(p.first, 0, n)
                    m.d.comb += [wc.addr.eq(addr), wc.data.eq(p.code), wc.en.eq(1),
                                 wv.addr.eq(addr), wv.data.eq(p.value), wv.en.eq(1)]
                    m.d.sync += n.eq(addr + 1)
                with m.If(self.i.valid & ~p.key):
                    m.d.sync += [cq.eq(p.code), tag.eq(p.tag)]
                    m.d.sync += [acc[e].eq(0) for e in range(d)]
                    start_pass()
                    if topk:
                        m.d.sync += [kk.eq(Mux(n < plan.k, n, plan.k)), second.eq(0)]
                        cut.clear(m)
                    else:
                        m.d.sync += den.eq(0)
                    m.next = "PASS"
            with m.State("PASS"):
                m.d.comb += [in_pass.eq(1), issuing.eq(cyc < n)]
                m.d.sync += cyc.eq(cyc + 1)
                with m.If(pass_end):
                    _end_pass(m, cut, cut and second)
            _walk_and_done(m, cut, cut and second, start_pass, self.o)

        m.d.comb += [self.o.payload.num.eq(acc), self.o.payload.tag.eq(tag),
                     self.o.payload.den.eq(kk if topk else den)]
        return m


class FoldedScanValuePath(ScanValuePath):
    """:class:`ScanValuePath` (same ports, passes, modes and timing formulas) with P lanes:

    **Folded** (G > 1, P = ``plan.lanes``). Group g of a value holds elements gP ..
    min(gP+P, d)-1 (missing lanes of the last group hold 0 and are dropped from ``num``).
    The values memory is N·G words of P·w bits (synchronous read, block RAM); key j's group
    g is at address j·G+g, kept by a running address counter. A key token is consumed then
    transferred: while it is valid, one group per cycle is taken from ``v`` and written, and
    ``i.ready`` rises in the cycle of its last group, when its code is written (codes: N
    words of b bits). A value pass walks (key j, group g) one per cycle, address j·G+g; the
    code of key j is read (and its distance computed) for each of its groups, so H and the
    value group arrive together; a pass takes ``n·G + hamming_latency + 1`` cycles. The
    accumulators are a rotating bank of G groups of P lanes: each step adds the addend to
    the head group and moves it to the tail (P adders, no d:P mux); after n·G steps the
    bank is back in order. The topk histogram pass reads only codes, one key per cycle.
    """

    def elaborate(self, platform):
        plan = self.plan
        b, d, N, P, G = plan.b, plan.d, plan.N, plan.lanes, plan.groups
        topk = plan.mode == "topk"
        m = Module()
        p = self.i.payload

        group = layouts.group(plan)
        m.submodules.codes = codes = memory.Memory(shape=unsigned(b), depth=N, init=[])
        m.submodules.values = values = memory.Memory(shape=group, depth=N * G, init=[])
        wc, wv = codes.write_port(), values.write_port()
        rc, rv = codes.read_port(transparent_for=()), values.read_port(transparent_for=())
        m.submodules.hamming = ham = HammingDistance(b, tree=plan.hamming.tree,
                                                     stages=plan.hamming.stages)
        m.d.comb += ham.o.ready.eq(1)
        L = ham.latency.fixed

        n = Signal(range(N + 1))                  # keys of the window
        nv = Signal(range(N * G + 1))             # value words written: n·G
        wg = Signal(range(G))                     # group of the key token being written
        cq = Signal(b)
        tag = Signal(layouts.query_tag())
        cyc = Signal(range(N * G + L + 2))        # cycle within a pass; value address j·G+g
        jc = Signal(range(N + 1))                 # key of the value group issued
        gc = Signal(range(G))                     # its group
        # rotating accumulator bank: the head (group 0) takes the addend and moves to the tail
        bank = Signal(data.ArrayLayout(data.ArrayLayout(signed(plan.num_width), P), G))
        den = Signal(unsigned(plan.den_width))

        # ---- a pass: read the code of key j and the value word j·G+g in cycle j·G+g (or
        # code j in cycle j in the topk histogram pass), act when H arrives
        issuing = Signal()
        in_pass = Signal()
        second = Signal()            # topk: pass 2 (accumulate) rather than pass 1 (histogram)
        values_pass = second if topk else Const(1, 1)
        m.d.comb += [rc.addr.eq(Mux(values_pass, jc, cyc)),
                     ham.i.payload.a.eq(cq), ham.i.payload.b.eq(rc.data)]
        rd_valid = Signal()
        m.d.sync += rd_valid.eq(issuing)
        m.d.comb += ham.i.valid.eq(rd_valid)
        m.d.comb += rv.addr.eq(delay(m, cyc, L, name="vaddr"))
        last_group = delay(m, gc == G - 1, L + 1, name="vlast")   # aligned with H and v
        pass_end = cyc == Mux(values_pass, nv, n) + L
        act = ham.o.valid & in_pass
        h = ham.o.payload.h
        v = rv.data

        def accumulate(addend):
            m.d.sync += [bank[G - 1][l].eq(bank[0][l] + addend(l)) for l in range(P)]
            m.d.sync += [bank[i].eq(bank[i + 1]) for i in range(G - 1)]

        cut = None
        if topk:
            cut = _MemCut(m, N, b)
            kk, hstar, need, taken = cut.kk, cut.hstar, cut.need, cut.taken
            cut.count(m, act & ~second, h)
            sel = (h < hstar) | ((h == hstar) & (taken < need))
            with m.If(act & second):
                accumulate(lambda l: Mux(sel, v[l], 0))
                with m.If(sel & (h == hstar) & last_group):
                    m.d.sync += taken.eq(taken + 1)
        else:
            table = Array(Const(s, range(33)) for s in plan.weight_shifts)
            sh = Signal(range(33))
            m.d.comb += sh.eq(table[h])
            with m.If(act):
                accumulate(lambda l: v[l] << sh)
                with m.If(last_group):
                    m.d.sync += den.eq(den + (Const(1, 1) << sh))

        def start_pass():
            m.d.sync += [cyc.eq(0), jc.eq(0), gc.eq(0)]

        with m.FSM():
            with m.State("IDLE"):
                # a key token stays valid for G cycles, one value group (from `v`) written
                # per cycle, and transfers in the cycle of its last group; a query transfers
                # at once
                m.d.comb += [self.i.ready.eq(~p.key | ((wg == G - 1) & self.v.valid)),
                             self.v.ready.eq(self.i.valid & p.key)]
                with m.If(self.i.valid & p.key & self.v.valid):
                    waddr = Mux(p.first & (wg == 0), 0, nv)
                    m.d.comb += [wv.addr.eq(waddr), wv.en.eq(1), wv.data.eq(self.v.payload)]
                    m.d.sync += nv.eq(waddr + 1)
                    with m.If(wg == G - 1):
                        addr = Mux(p.first, 0, n)
                        m.d.comb += [wc.addr.eq(addr), wc.data.eq(p.code), wc.en.eq(1)]
                        m.d.sync += [n.eq(addr + 1), wg.eq(0)]
                    with m.Else():
                        m.d.sync += wg.eq(wg + 1)
                with m.If(self.i.valid & ~p.key):
                    m.d.sync += [cq.eq(p.code), tag.eq(p.tag)]
                    m.d.sync += [bank[i][l].eq(0) for i in range(G) for l in range(P)]
                    start_pass()
                    if topk:
                        m.d.sync += [kk.eq(Mux(n < plan.k, n, plan.k)), second.eq(0)]
                        cut.clear(m)
                    else:
                        m.d.sync += den.eq(0)
                    m.next = "PASS"
            with m.State("PASS"):
                m.d.comb += [in_pass.eq(1),
                             issuing.eq(cyc < Mux(values_pass, nv, n))]
                m.d.sync += cyc.eq(cyc + 1)
                with m.If(gc == G - 1):
                    m.d.sync += [gc.eq(0), jc.eq(jc + 1)]
                with m.Else():
                    m.d.sync += gc.eq(gc + 1)
                with m.If(pass_end):
                    _end_pass(m, cut, cut and second)
            _walk_and_done(m, cut, cut and second, start_pass, self.o)

        # after n·G rotations the bank is back in order: group g at position g
        m.d.comb += [self.o.payload.num[e].eq(bank[e // P][e % P]) for e in range(d)]
        m.d.comb += [self.o.payload.tag.eq(tag), self.o.payload.den.eq(kk if topk else den)]
        return m


TopkValuePath = HsoftmaxValuePath = ScanValuePath
