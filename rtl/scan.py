"""The ``topk`` value path (SPEC §3): it scans the window's stored keys, M keys per cycle.

:class:`ScanPlan` holds the numbers (widths, memory layout, pass lengths, timing);
:meth:`ScanPlan.component` builds :class:`ScanValuePath` (whole values, G = 1) or
:class:`FoldedScanValuePath` (one group of P lanes per cycle, G > 1): one design, the folded
one takes its values on a stream of groups."""

from dataclasses import dataclass
from functools import cached_property

from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In

from . import layouts
from .hamming import HammingPlan
from .keystore import CODE_READ, KeyWriter, distances, key_memories
from .plan import Folding, Timing, WeightedSum, tree_depth, unsigned_width
from .tree import Term, adder_tree, delay

__all__ = ["bound", "ScanPlan", "ScanValuePath", "FoldedScanValuePath", "TopkValuePath"]


def bound(stages, N, k=None):
    """A SPEC §5 timing A + C·n + D·ceil(n/M) + E·min(k, n) that is >= every one of
    ``stages`` (:class:`Timing`, the occupancies of stages that work on different queries
    at once) for every n in 1..N: the smallest at n = N (the full window) among those that
    never exceed the stages' sum (one query at a time) at any n, ties broken by the sum
    over n. Its terms C, D, E are those of one stage, the largest of each, or the sum's;
    its A is padded to the largest excess of a stage over them. (The form cannot follow a
    maximum of stages of different shapes exactly: an interval exact at n = N may be far
    above the longest stage for small windows, which the cap rules out.)"""
    if len(stages) == 1:
        return stages[0]
    total = sum(stages, Timing())
    ns = range(1, N + 1)
    worst = [max(t.at(n, k) for t in stages) for n in ns]
    tops = (max(t.per_key for t in stages), max(t.per_block for t in stages),
            max(t.per_kept for t in stages))
    best = None
    for c, d, e in {(t.per_key, t.per_block, t.per_kept) for t in (*stages, total)} | {tops}:
        shape = Timing(0, c, d, total.block if d else 1, e)
        cand = Timing(max(x - shape.at(n, k) for n, x in zip(ns, worst))) + shape
        if any(cand.at(n, k) > total.at(n, k) for n in ns):
            continue
        key = (cand.at(N, k), sum(cand.at(n, k) for n in ns))
        if best is None or key < best[0]:
            best = (key, cand)
    return best[1]


@dataclass(frozen=True)
class ScanPlan(Folding, WeightedSum):
    """The ``topk`` value path of d-element w-bit values and b-bit codes over windows of at
    most N keys: keep ``k`` keys (the nearest, ties to the lower index); ``lanes`` P value
    elements per cycle; ``keys_per_cycle`` M stored keys compared with the query per cycle;
    the Hamming distance as planned by ``hamming``. (Mode ``hsoftmax`` is
    :class:`~.hsoftmax.HsoftmaxPlan`.)"""

    d: int
    w: int
    b: int
    N: int
    k: int
    lanes: int | None = None
    keys_per_cycle: int = 1
    hamming: HammingPlan | None = None
    selection: str | None = None

    mode = "topk"

    #: the two ways of keeping the k nearest keys (:attr:`selection`)
    SELECTIONS = ("histogram", "stream")

    def __post_init__(self):
        if not 1 <= self.k:
            raise ValueError(f"k = {self.k}: keys kept per query, at least 1")
        self._unfolded_by_default()
        if not 1 <= self.keys_per_cycle <= self.N:
            raise ValueError(f"keys_per_cycle = {self.keys_per_cycle}: 1 .. N = {self.N}")
        if self.hamming is None:
            object.__setattr__(self, "hamming", HammingPlan(self.b))
        if self.hamming.b != self.b:
            raise ValueError(f"a Hamming distance of {self.hamming.b}-bit codes, not b = "
                             f"{self.b}")
        if self.selection is None:
            object.__setattr__(self, "selection", self.cheaper_selection)
        if self.selection not in self.SELECTIONS:
            raise ValueError(f"selection = {self.selection!r}: one of {self.SELECTIONS}")

    # ---------------------------------------------------------------- widths and layout
    @property
    def key_count_width(self):
        return unsigned_width(self.N)

    @property
    def kept(self):
        """Most keys a query's output sums over: k."""
        return self.k

    @property
    def max_weight(self):
        """Largest weight of one key: 1."""
        return 1

    @property
    def grouped(self):
        """Folded, (num, den) leaves one group of P nums per cycle (:func:`layouts.grouped`),
        straight from the accumulator bank: the divider needs no bank of its own."""
        return self.folded

    @property
    def out_cycles(self):
        """Cycles from the first (num, den) beat to the last: G - 1 when grouped, else 0."""
        return self.groups - 1

    @property
    def M(self):
        return self.keys_per_cycle

    @property
    def code_words(self):
        """Words of each slot's code memory: ceil(N/M) (key j: word j//M of slot j%M)."""
        return -(-self.N // self.M)

    @property
    def direct_values(self):
        """Unfolded (G = 1): the keys' values come on port ``w`` of :func:`value_ports`,
        written into the value memory as the core accepts each key, before its code has
        left the hash (no queue beside the hash); folded, as G groups on ``v`` with the key's
        token."""
        return not self.folded

    @property
    def output_hold(self):
        """Unfolded (G = 1): edges after a (num, den) transfer during which num stays
        unchanged (the bank is not written until the next query's value pass adds): at
        least the interval less stage C's occupancy (:attr:`stages`), the least over n in
        1..N; folded (the bank rotates as it gives its groups): None."""
        if self.folded:
            return None
        *_, c = self.stages
        return min(self.interval.at(n, self.k) - c.at(n, self.k) for n in range(1, self.N + 1))

    #: fewest groups G, and most bits of a group (P·num_width), of an accumulator bank kept
    #: in a memory (:attr:`bank_in_memory`)
    BANK_MEMORY_GROUPS = 16
    BANK_MEMORY_BITS = 16

    @property
    def bank_in_memory(self):
        """The accumulator bank, G groups of P·num_width bits, in a memory of G words (one
        block RAM: 256 x 16 on the iCE40, 1024 x 18 on the ECP5), its head read a cycle
        ahead, where G >= :attr:`BANK_MEMORY_GROUPS` (16) and P·num_width <=
        :attr:`BANK_MEMORY_BITS` (16): G·P·num_width flip-flops (at least 16·num_width,
        each a logic cell of its own on the iCE40) for one block; else flip-flops (a wide
        group of few words, e.g. the ULX3S goal build's P = 8, G = 8, would take blocks
        that its memories of keys need)."""
        return self.groups >= self.BANK_MEMORY_GROUPS and \
            self.lanes * self.num_width <= self.BANK_MEMORY_BITS

    #: widest value group (P·w bits) of a value memory with one address when folded
    #: (:attr:`one_value_address`)
    ONE_ADDRESS_BITS = 16

    @property
    def one_value_address(self):
        """The value memory has one address for its read and its write (a 1RW memory: an
        ASIC's single-port SRAM, or the UP5K's 16-bit-wide SPRAM, which the iCE40 board
        flow gives it, ``synth.board``): unfolded (G = 1, :attr:`direct_values`), or where a
        group of P·w bits is at most :attr:`ONE_ADDRESS_BITS` (16) wide. Its reads (the
        value pass) and writes (a window's keys) never come in the same cycle: a window's
        keys come once its previous window's queries are done. Else (wide groups, the
        ULX3S goal build's block RAMs) the write keeps an address of its own: no
        multiplexer before the read address."""
        return self.direct_values or self.lanes * self.w <= self.ONE_ADDRESS_BITS

    @property
    def value_slots(self):
        """Keys per word of the value memory: 1 (the value pass reads only the kept keys,
        one per cycle)."""
        return 1

    @property
    def value_words(self):
        """Words of the value memory: N·G (key j's group g: word j·G + g)."""
        return self.N * self.groups

    @property
    def kept_max(self):
        """Entries of the list of kept keys, min(k, N)."""
        return min(self.k, self.N)

    @property
    def sum_stages(self):
        """S = ceil(log2 M): register levels of the M-key sums (the histogram counts of a
        word, a word's prefix counts), 0 for M = 1."""
        return tree_depth(self.M)

    #: most compare-and-move cells (M·k) of a streaming selection that the plan chooses
    STREAM_CELLS = 32

    @property
    def cheaper_selection(self):
        """The selection the plan makes (:attr:`selection` None): ``"stream"`` where the
        path is unfolded (G = 1) and M·k <= :attr:`STREAM_CELLS` (32), else
        ``"histogram"``. The streaming list costs M·k compare-and-move cells (one compare
        of the distance's width, two multiplexers of an entry's) in one cycle's logic, a
        chain of M cells deep; the histogram selection memories of (b+1)·M counts and N
        distances and a fixed walk, marking and list logic. Measured on ``gates`` at the
        default config (d = b = 16, N = 64, k = 8), the value path is smaller streaming at
        M = 1, 2 and 4 (M·k = 8 .. 32: docs/synthesis.md). Folded paths (every FPGA goal
        build) keep the histogram, whose memories are block RAM there: the iCEBreaker
        ``topk`` goal build (P = 1, M = 2) placed at 31.03 MHz streaming against 45.23 MHz
        (its chain of M cells sets the clock)."""
        if self.folded or self.M * self.k > self.STREAM_CELLS:
            return "histogram"
        return "stream"

    # ---------------------------------------------------------------- timing
    def _per_word(self, cycles):
        """``cycles`` per word of M codes: a per-key term for M = 1, else per block of M."""
        if self.M == 1:
            return Timing(per_key=cycles)
        return Timing(per_block=cycles, block=self.M)

    @property
    def mark_read(self):
        """Edges from a marking pass's read of a word of distances to their compares with
        h*: the block RAM's read, a register after it and the compares' register."""
        return 3

    @property
    def value_read(self):
        """Edges from the value pass's read of a group to its addition: the block RAM's
        read and a register after it."""
        return 2

    @property
    def distance_read(self):
        """L_D = ``CODE_READ`` + L_H: edges from a code word's read to its M distances (the
        block RAM's read, a plain register, the Hamming units' L_H)."""
        return CODE_READ + self.hamming.latency.fixed

    def _stages(self, bins, selection, reg=None, wreg=None):
        LD, S, G = self.distance_read, self.sum_stages, self.groups
        reg = self.hist_reg if reg is None else reg
        wreg = self.walk_reg if wreg is None else wreg
        word = self._per_word(1)
        values = Timing(self.value_read + G + 2, per_kept=G)
        if selection == "stream":
            return (word + Timing(LD + 1), values)
        walk = -(-(self.b + 1) // bins)
        return (word + Timing(LD + walk + 2 * S + 2 + 2 * reg + wreg),
                word + Timing(S + self.mark_read + 2), values)

    @cached_property
    def hist_reg(self):
        """r, registers between the Hamming units and the histograms (0 or 1): 1 where stage
        A (:attr:`stages`) two cycles longer leaves :attr:`interval` unchanged (A is not the
        longest stage), else 0. With it the histograms look up a word's "counted" flag in
        two registered steps (:func:`_count_bins`) instead of one (a multiplexer of b+1
        flags, 5 or more LUT levels), and read a count a cycle ahead (the register is the
        read's address register) and write it back over two cycles, through a register
        after the read and one before the write, instead of in the read's next cycle (the
        read, an increment and the write in one cycle: the ULX3S goal build's LUT-RAM
        histograms set its clock): A's histogram pass 2·r cycles longer."""
        bins = self.hist_bins
        without, with_ = (bound(self._stages(bins, "histogram", r, 0), self.N, self.k)
                          for r in (0, 1))
        return 1 if with_ == without else 0

    @cached_property
    def walk_reg(self):
        """w, registers between the histograms' read in the cut's walk and its adders (0
        or 1): 1 where stage A (:attr:`stages`, with r = :attr:`hist_reg`) a cycle longer
        leaves :attr:`interval` unchanged, else 0. With it no logic comes between a
        histogram's block RAM read and a register (the stale-word mask and the first adder
        after that register, not after the read): A's cut w cycles longer."""
        bins, r = self.hist_bins, self.hist_reg
        without, with_ = (bound(self._stages(bins, "histogram", r, w), self.N, self.k)
                          for w in (0, 1))
        return 1 if with_ == without else 0

    @property
    def hist_bins(self):
        """R, bins of a histogram word (1 or 2): the cut reads R bins of each slot's
        histogram per cycle. 2 where stage A (:attr:`stages`) is the longest at n = N with
        R = 1 (the query interval is then A's, and the walk takes half the cycles for an
        adder and a compare more), else 1."""
        one = [t.at(self.N, self.k) for t in self._stages(1, "histogram", 0, 0)]
        return 2 if one[0] >= max(one) else 1

    @property
    def stages(self):
        """The occupancy (cycles busy, plus the cycle in which it returns to idle) of
        each of the stages that work on different queries at once, with
        L_D = :attr:`distance_read` (L_H + 2), S = :attr:`sum_stages`, G groups, n keys,
        R = :attr:`hist_bins`, r = :attr:`hist_reg`, w = :attr:`walk_reg`; the histogram
        selection's three:

        * A, histogram and cut: the histogram pass (ceil(n/M) + L_D + S + 2·r: the
          distances r registers later into the histograms, counted r cycles later) and
          the cut, a walk over the histograms' ceil((b+1)/R) words (ceil((b+1)/R) + S + 1
          + w: each word's read registered w times before its adders),
          ``ceil(n/M) + L_D + ceil((b+1)/R) + 2·S + 2 + 2·r + w``;
        * B, marking: ``ceil(n/M) + S + 5``: the marking pass over the distances that A
          stored (read in :attr:`mark_read` edges), the list and a cycle to idle;
        * C, values and output: a cycle that takes the list, the value pass over the kept
          keys (G·min(k, n) + :attr:`value_read`), DONE (G: one group per cycle) and a
          cycle to idle, ``G·min(k, n) + G + 4``;

        the streaming selection's two: A, the pass that inserts each word's distances
        into the list, ``ceil(n/M) + L_D + 1`` (the last word's distances L_D cycles after
        its read, a cycle to idle), and C as above."""
        return self._stages(self.hist_bins, self.selection)

    @property
    def latency(self):
        """Edges from a query's transfer to its (num, den) transfer, nothing stalled, with
        L_D = :attr:`distance_read` (L_H + 2), S = :attr:`sum_stages`, G groups, n keys, R =
        :attr:`hist_bins`, r = :attr:`hist_reg`, w = :attr:`walk_reg`: ``L_D + 3·S +
        ceil((b+1)/R) + 8 + 2·r + w + G + 2·ceil(n/M) + G·min(k, n)``
        (histogram selection), ``L_D + 3 + G + ceil(n/M) + G·min(k, n)`` (streaming), the
        stages of :attr:`stages` in a row, each handing the query to the next as it ends
        (A: the histogram pass and the cut, or the streaming pass ``ceil(n/M) + L_D``; B:
        the marking pass ``ceil(n/M) + S + 4``; C: a cycle to take the list, the value
        pass ``G·min(k, n) + 2`` and DONE's G groups)."""
        # each stage's occupancy less its return to idle, the last one's output beats
        return sum(self.stages, Timing(-len(self.stages)))

    @cached_property
    def interval(self):
        """Edges between queries at full rate: the smallest SPEC §5 bound
        A + C·n + D·ceil(n/M) + E·min(k, n) of the longest of :attr:`stages` for every n in
        1..N (:func:`bound`): about the longest stage (the stages work on three queries at
        once). The histogram selection's stages in both selections: streaming, the query
        rate (and so the tokens/s) of a config does not depend on the selection, and its
        shorter stages leave the divider the same time to work (an unthrottled stream at
        the default config with M = 4, 27 cycles per query at n = N instead of 37, would
        need a divider of 16 lanes instead of 8: docs/synthesis.md)."""
        return bound(self._stages(self.hist_bins, "histogram"), self.N, self.k)

    @property
    def stages_in_flight(self):
        """Queries the path works on at once, as the core counts them: 3, the histogram
        selection's stages, in both selections. The last query of a window is done within
        this many intervals after it, when the next window's keys may come (the core waits
        the next power of two of intervals: their values go into the memory that stage C
        reads). A streaming query has two stages but is done no later than a histogram one
        at the same interval (shorter stages), so the histogram's count holds for it; its
        own 2 would be too short where the hash's latency is long against the interval
        (d = 64, b = 1, N = 1: 2 intervals of 7 against 7 + 9 edges)."""
        return len(self._stages(self.hist_bins, "histogram"))

    @property
    def key_interval(self):
        """Cycles per key: one value group per cycle."""
        return Timing(self.groups)

    @property
    def adder_bits(self):
        """Bits of the accumulators and the histograms' counters (a size estimate)."""
        return 2 * self.lanes * self.num_width + self.M * self.key_count_width

    def component(self):
        """:class:`FoldedScanValuePath` when G > 1, else :class:`ScanValuePath`."""
        return (FoldedScanValuePath if self.folded else ScanValuePath)(self)


def value_ports(plan):
    """The members of :class:`ScanValuePath`: those of :func:`layouts.value_path_ports`;
    with ``plan.direct_values`` the tokens carry no value, and ``w`` (its ready always 1)
    writes one: ``{value: layouts.group(plan), restart: 1}``, restart on the window's first
    key."""
    ports = layouts.value_path_ports(plan)
    if plan.direct_values:
        fields = dict(layouts.token(plan).members)
        del fields["value"]
        ports["i"] = In(stream.Signature(data.StructLayout(fields)))
        ports["w"] = In(stream.Signature(data.StructLayout(
            {"value": layouts.group(plan), "restart": 1})))
    return ports


def _copy(name, init=0):
    """A flip-flop that the caller writes with another (the same next value): a copy of it
    for some of its loads, so that no one net drives them all. ``keep``: synthesis does not
    merge it with the original."""
    return Signal(init=init, name=name, attrs={"keep": 1})


def _prefix_counts(m, bits, name):
    """Inclusive prefix counts [popcount(bits[:s+1]) for s < M] of M bits through
    ceil(log2 M) registered levels (Kogge-Stone: level i adds the count 2**i slots lower), so
    every adder has two register operands."""
    level = list(bits)
    dist = 1
    while dist < len(level):
        nxt = []
        for s, x in enumerate(level):
            c = Signal(range(min(2 * dist, s + 1) + 1), name=f"{name}_d{dist}_{s}")
            m.d.sync += c.eq(x + level[s - dist] if s >= dist else x)
            nxt.append(c)
        level, dist = nxt, 2 * dist
    return level


def _stream_list(m, k, live, h, valid, clear, G, addr_shape):
    """The streaming selection: a list of ``k`` entries (flag, distance, value address) in
    flip-flops, sorted by distance and, among equal ones, by key index (the golden model's
    order), with the flagged entries first. In a cycle where ``valid``, the M distances
    ``h`` of a word of keys (slot s a key where ``live[s]``, key index j = word·M + s, value
    address j·G) go in one after the other, slot 0 first: a key goes before the first entry
    that is unflagged or farther (strictly: an equal distance stays ahead, being an earlier
    key) and the entries from there move down one place, the last one dropping out. So after
    a window's words the list holds the min(k, n) nearest keys, ties to the lower index.
    ``clear`` (a query starts) unflags every entry. M·k compares of the distance's width
    and 2·M·k entry-wide 2:1 multiplexers, one register per entry; no memory. Returns the k
    entries' value addresses."""
    aw, hw = Shape.cast(addr_shape).width, len(h[0])
    entries = [Signal(aw + hw + 1, name=f"kept{i}") for i in range(k)]
    jG = Signal(aw, name="kept_jG")             # value address of the word's slot 0
    cur = list(entries)
    for s, (x, on) in enumerate(zip(h, live)):
        new = Cat((jG + s * G)[:aw], x, Const(1, 1))
        # before entry i: unflagged or farther (monotone in i, the list being sorted)
        pos = [on & (~e[-1] | (x < e[aw:aw + hw])) for e in cur]
        # each slot's list a named signal: the next slot reads it, not the expression
        # (nested, the expression would grow as 3^M in the generated code)
        nxt = [Signal.like(e, name=f"kept{i}_s{s}") for i, e in enumerate(entries)]
        m.d.comb += [n.eq(Mux(pos[i], Mux(pos[i - 1], cur[i - 1], new) if i else new, e))
                     for i, (n, e) in enumerate(zip(nxt, cur))]
        cur = nxt
    with m.If(valid):
        m.d.sync += [e.eq(x) for e, x in zip(entries, cur)]
        m.d.sync += jG.eq(jG + len(h) * G)
    with m.If(clear):
        m.d.sync += [e[-1].eq(0) for e in entries] + [jG.eq(0)]
    return [e[:aw] for e in entries]


def _count_bins(m, b, most, en, h, walking, waddr, name, per_word=1, reg=1, wreg=1):
    """A histogram of distances 0..b-1 (bin b is never read: not counted) in a memory of
    ceil(b/R) words of R = ``per_word`` (1 or 2) counts up to ``most`` (block RAM, not b
    counters; bin h in word h // R; the walk reads ceil((b+1)/R) words, the last as 0 where
    it holds bin b alone),
    with one flag per word, "counted in this query", to clear when a query starts (stale
    words, also after a reset, read as 0). ``h`` and ``en`` go through ``reg`` (0 or 1)
    registers first. reg = 0: bin h's word is read as ``en`` holds and written back with
    bin h plus one a cycle later (the read sees that write, so equal distances in
    consecutive cycles count right). reg = 1: the word is read as h comes (a cycle ahead of
    the register), registered, plus one into a register a cycle later and written back the
    next, 2 cycles after ``en`` holds behind the register: the two counts of the word not
    yet written when it was read are forwarded (from the write register, or a copy of it
    a cycle older; the read sees a write in its own cycle). Where ``walking`` (a flip-flop)
    the word read is ``waddr`` instead, out 1 + ``wreg`` cycles later, 0 where its flag
    says stale: wreg = 1, the read registered (no logic between the memory's read and that
    register) and the flag applied after the register, before the walk's adders. The flag of a word is set as it is read
    for a count (its write comes next). The flag of h's word is looked up in two steps,
    around that register where there is one: the flags of the words sharing h's low address
    bits (8:1 multiplexers) as h comes, then the one of its high bits (a multiplexer of
    those), the flag set in between by a compare beside it; the walk shifts the flags down a word
    per cycle (no count comes in a walk; the caller clears them before a query's counts,
    ``walking`` 0 there): no copy, no multiplexer of the walk's word. The walk clears the
    flags (it shifts in 0s for at least as many cycles as there are words, and no count
    comes between it and the next query's counts); the reset clears them where a reset
    cut a pass short: no state of the caller reaches their enables. Each flag's update is
    one LUT of flip-flops (the reset, ``walking``, and with reg = 1 the set as two one-hot
    registers of h's word, its low 3 bits and, with ``en``, its high bits, written as h
    comes, beside the register of h): no decode of the word and no handshake before the
    flags' enables. Returns the walk's word, 1 + wreg cycles after its read (a count, or
    R counts)."""
    words = -(-(b + 1) // per_word)
    shape = range(most + 1) if per_word == 1 else data.ArrayLayout(range(most + 1), per_word)
    # bin b (every bit differs) is never counted: the cut never reads its count (where the
    # walk reaches it without finding h*, h* = b, the window's kk <= n keys being all
    # counted). So the memory holds bins 0..b-1, ceil(b/R) words: b = 64, R = 2, 32 words
    # instead of 33, one LUT-RAM depth slice fewer on the ECP5 and a 2:1 multiplexer after
    # the read instead of 3:1 (the ULX3S topk goal build's `h` -> `rqp` paths); the walk's
    # read of a word beyond them is stale (its flag is never set) and reads as 0
    m.submodules[name] = mem = memory.Memory(shape=shape, depth=max(1, -(-b // per_word)),
                                             init=[])
    top = b.bit_length() - 1
    en = en & (~h[top] if b == 1 << top and len(h) > top else (h != b))
    w = mem.write_port()
    r = mem.read_port(transparent_for=(w,))
    touched = Signal(words, name=f"{name}_touched")
    hq = delay(m, h, reg, name=f"{name}_h")           # the distance, reg registers later
    enq = delay(m, en, reg, name=f"{name}_en")
    inc = Signal(name=f"{name}_inc")                  # a count is written back this cycle
    inc_bin = Signal(range(b + 1), name=f"{name}_inc_bin")
    inc_word = inc_bin if per_word == 1 else inc_bin[1:]
    live = Signal(name=f"{name}_live")                # the word read last cycle is counted
    word = Signal(shape, name=f"{name}_word")
    hnow = h if per_word == 1 else h[1:]
    haddr = hq if per_word == 1 else hq[1:]
    lo = min(3, (words - 1).bit_length())             # low address bits of the first step
    ngroups = -(-words // (1 << lo))
    # (reg = 1: the count's read a cycle ahead, at h's word as it comes: the read port's
    # own address register is the one before the histogram)
    m.d.comb += [r.addr.eq(Mux(walking, waddr, hnow if reg else haddr)),
                 word.eq(Mux(live, r.data, 0))]
    # the flags set this cycle (one per word): reg = 1, the one-hot registers of h's word
    # (the low bits', and the high bits' with en) written as h comes, as hq and enq are;
    # reg = 0, a decode of h's word where en holds
    setv = Signal(words, name=f"{name}_set")
    if reg:
        slo = Signal(1 << lo, name=f"{name}_setlo")
        shi = Signal(ngroups, name=f"{name}_sethi")
        m.d.sync += [slo.eq(Cat(*(hnow[:lo] == j for j in range(1 << lo)))),
                     shi.eq(Cat(*(en & (hnow[lo:] == j) for j in range(ngroups))))]
        m.d.comb += [setv[i].eq(slo[i % (1 << lo)] & shi[i >> lo]) for i in range(words)]
    else:
        m.d.comb += [setv[i].eq(enq & (haddr == i)) for i in range(words)]
    # (both steps' selects padded with 0s to a power of two: no select out of range)
    groups = Cat(touched, Const(0, (ngroups << lo) - words))
    part = delay(m, Cat(*(groups[j << lo:(j + 1) << lo].bit_select(hnow[:lo], 1)
                          for j in range(ngroups))), reg, name=f"{name}_part")
    # h's word is the one read now, its flag set now (after the first step's lookup)
    hit = delay(m, enq & (haddr == hnow), reg, name=f"{name}_hit") if reg else 0
    parts = Cat(part, Const(0, (1 << len(haddr[lo:])) - ngroups))
    m.d.sync += [inc.eq(enq), inc_bin.eq(hq),
                 live.eq(Mux(walking, touched[0], parts.bit_select(haddr[lo:], 1) | hit))]
    # the walk reads the flags in its order, shifted down a word per cycle (no counts
    # come in a walk; it shifts in 0s, clearing them for the next query's counts)
    with m.If(walking):
        m.d.sync += touched.eq(touched[1:])
    with m.Else():
        m.d.sync += touched.eq(touched | setv)

    def plus_one(x, hbin=inc_bin):
        """The word ``x`` with bin ``hbin`` one more (R = 2: its place in the word the low
        bit of the bin)."""
        if per_word == 1:
            return x + 1
        x = shape(x)                                  # (a view of its R counts)
        return Cat((x[0] + ~hbin[0])[:len(x[0])], (x[1] + hbin[0])[:len(x[1])])

    # the walk's word: wreg = 1, the read registered (rq), then 0 where stale (its flag,
    # liveq, beside); else the read, 0 where stale
    if wreg:
        rq = Signal(shape, name=f"{name}_rq")
        liveq = Signal(name=f"{name}_liveq")
        m.d.sync += [rq.eq(r.data), liveq.eq(live)]
        walked = Signal(shape, name=f"{name}_walked")
        m.d.comb += walked.eq(Mux(liveq, rq, 0))
    else:
        walked = word
    if not reg:
        # the read in the distance's cycle, the count written back the next
        with m.If(inc):
            m.d.comb += [w.data.eq(plus_one(word)), w.addr.eq(inc_word), w.en.eq(1)]
        return walked
    # reg = 1: read-modify-write over two cycles: the word read (ahead) in the distance's
    # cycle plus one registered (rqp, for the bin of the next count, hq), the count plus
    # one registered (wdat) a cycle later and written the next; the two counts of the
    # bin's word not yet written when it was read forwarded: the one written this cycle
    # (wdat) or last cycle (wold), flagged by compares of the words a cycle ahead (f1, f2).
    # Each candidate is incremented before the choice (one adder per candidate, none after
    # a multiplexer): wdat plus one, rqp (1 where stale), and wold plus one kept as a
    # register of its own (woldp: wdat plus one for that bin, as wdat moves to wold)
    wdat = Signal(shape, name=f"{name}_wdat")
    woldp = Signal(shape, name=f"{name}_woldp")
    rqp = Signal(shape, name=f"{name}_rqp")
    inc2 = Signal(name=f"{name}_inc2")
    inc2_bin = Signal.like(inc_bin, name=f"{name}_inc2_bin")
    inc2_word = inc2_bin if per_word == 1 else inc2_bin[1:]
    f1, f2 = Signal(name=f"{name}_f1"), Signal(name=f"{name}_f2")
    m.d.sync += [woldp.eq(plus_one(wdat, hq)), rqp.eq(plus_one(r.data, hq)),
                 inc2.eq(inc), inc2_bin.eq(inc_bin),
                 f1.eq(enq & inc & (haddr == inc_word)),
                 f2.eq(enq & inc2 & (haddr == inc2_word)),
                 wdat.eq(Mux(f1, plus_one(wdat), Mux(f2, woldp, Mux(
                     live, rqp, plus_one(Const(0, Shape.cast(shape)))))))]
    m.d.comb += [w.data.eq(wdat), w.addr.eq(inc2_word), w.en.eq(inc2)]
    return walked


class ScanValuePath(wiring.Component):
    """Keys' codes and values held in memory; each query scans them, M keys per cycle,
    through M :class:`HammingDistance` units and adds the values of the k nearest
    (``topk``).

    **Memory.** Codes: M memories, one per slot, of ceil(N/M) codes (key j at word j//M of
    slot j%M's), written one key per beat and read at one address, so that one read serves M
    keys; each slot's memory can go to block or LUT RAM on its own (``synth.memmap``
    fills the device's block RAMs, the rest goes to LUT RAM). Values, in
    groups of P lanes (G = ceil(d/P) groups, P = d unfolded): N·G words of one key's group
    (key j's group g at word j·G + g; the value pass reads only the kept keys). Slots beyond
    n in the last word never count (a mask j < n rides with each word).

    **Passes.** A pass over the codes issues one code word per cycle; its M codes go into a
    plain register (no logic after the block RAMs), the M distances come out of the Hamming
    units L_D = L_H + 2 edges after the read.

    (1) a histogram pass of ceil(n/M) cycles: slot s counts its distances in a
    memory of bins 0..b-1 (distance b is never needed, see :func:`_count_bins`; block RAM,
    M of them, R = ``plan.hist_bins`` bins per word) and the
    M distances of each word go to a memory (``dists``); (2) the cut, ceil((b+1)/R) + S + 1 + w
    cycles: a walk reads word i of the M memories in its cycle i (registered w = ``plan.walk_reg``
    times), adds each bin's counts
    (S = ceil(log2 M) register levels) to the count of keys below: h* = the least bin where
    it reaches kk = min(k, n), need = kk - keys below h*; (3) a marking pass of ceil(n/M)
    cycles over the stored distances: slot s of a word is kept when H < h*, or H = h* and
    fewer than ``need`` keys with H = h* came before it (earlier words, lower slots):
    ties go to the lower index exactly as in the golden model (prefix counts inside a word,
    S registered levels); a kept key's value address j·G goes to a list of min(k, N)
    entries, keys below h* from entry 0 up, kept ties from kk-1 down; (4) a value pass of
    G·min(k, n) cycles reads only the listed keys' groups and adds them. den = kk.
    Three stages work on three queries at once (``plan.stages``): A = (1) and (2), B = (3),
    C = (4) and the output; each hands its query to the next as it ends (where the output
    stalled, it waits for the next one to be free). B reads word w of the distances before
    A writes word w of the next query's; B writes one half of the list (M = 1, a memory)
    or its registers (copied by C as it starts) while C reads the other.

    **Streaming selection** (``plan.selection == "stream"``, where M·k is small: see
    :attr:`ScanPlan.cheaper_selection`): no histograms, distances or marking pass. One pass
    of ceil(n/M) cycles inserts each word's M distances, L_D cycles after its read, into a
    sorted list of min(k, N) entries in flip-flops (:func:`_stream_list`: the nearest first,
    ties to the lower index); two stages, A = the pass, C = (4) as above, which copies the
    list's value addresses as it starts. The query interval is the histogram selection's.

    The accumulators are a rotating bank of G groups of P lanes (flip-flops; a memory of G
    words where ``plan.bank_in_memory``, the head word's read enabled by each step): each
    step adds the addend to the head group and moves it to the tail (P adders, no d:P mux);
    the value pass makes a multiple of G steps, so the bank ends in order.

    Parameters
    ----------
    plan : :class:`ScanPlan`

    Members
    -------
    i : :py:`In(stream.Signature(layouts.token(plan)))`
        Hashed keys then queries of a window (unfolded with the key's d-wide value).
    o : :py:`Out(stream.Signature(layouts.weighted_sum(plan)))`
        d-wide num, den and the query's tag, one per query.
    v : :py:`In(stream.Signature(layouts.group(plan)))` (folded only)
        The keys' values, G groups per key; a key token transfers with its last group.

    Latency (edges from a query's transfer on ``i`` to its transfer on ``o``, ``o.ready``
    high): ``plan.latency`` = ``L_D + 3·S + ceil((b+1)/R) + 8 + 2·r + w + G + 2·ceil(n/M) +
    G·min(k, n)`` (L_D = ``plan.distance_read`` = L_H + 2, L_H = ``plan.hamming.latency``,
    S = ceil(log2 M), R = ``plan.hist_bins``, r = ``plan.hist_reg``, w = ``plan.walk_reg``).
    Throughput: one key per G cycles, once stages B and C are idle (the window's last query
    done); one query per ``plan.interval`` cycles, about the longest stage (``i.ready`` for
    a query when stage A is idle and a counter of ``plan.interval`` for the window's n has
    run out).
    """

    def __init__(self, plan):
        self.plan = plan
        super().__init__(value_ports(plan))

    @property
    def latency(self):
        return self.plan.latency

    def elaborate(self, platform):
        plan = self.plan
        b, d, N, P, G, M = plan.b, plan.d, plan.N, plan.lanes, plan.groups, plan.M
        S = plan.sum_stages
        m = Module()
        p = self.i.payload

        group = layouts.group(plan)
        # the codes (one memory per slot), the values (one key's group per word), the
        # Hamming units
        wc, rc, wv, rv, hams = key_memories(m, plan, plan.value_slots,
                                            one_address=plan.one_value_address)
        LD = plan.distance_read

        # ---- the window's keys: n, words of codes (nb) and of values (nv = n·G)
        keys = KeyWriter(plan)
        n, nb, wg = keys.n, keys.nb, keys.wg
        # value words written, n·G (the next word's address: it wraps after the last word,
        # N·G - 1, where it is no longer read)
        nv = Signal(range(max(N * G, 2)))
        cq = Signal(b)
        tag = Signal(layouts.query_tag())
        # cycles of the pass to its last one less one, counted down (the compare with 0
        # of one register, not of two)
        hleft = Signal(range(plan.code_words + LD + S + 2 * plan.hist_reg + 1))
        hdone = Signal()                          # its last cycle
        blk = Signal(range(plan.code_words + 1))  # word of the pass
        left = Signal(range(N + 1))               # keys of the window from word blk on
        lanes_shape = data.ArrayLayout(signed(plan.num_width), P)
        # the bank: registers, group 0 at the head (the value pass overwrites them first:
        # no reset); or (plan.bank_in_memory) a memory of G words, the head at word bptr,
        # read a cycle ahead
        if plan.bank_in_memory:
            m.submodules.bank = bmem = memory.Memory(shape=lanes_shape, depth=G, init=[])
            bw, br = bmem.write_port(), bmem.read_port(transparent_for=())
            bhead = br.data
        else:
            bank = Signal(data.ArrayLayout(lanes_shape, G), reset_less=True)
            bhead = bank[0]

        # ---- a pass over the words: code word blk read in cycle c, the M distances in cycle
        # c + L_D, with the mask of the slots that hold keys of the window
        issuing = Signal()
        reading = Signal()                        # issuing a code word (not a value)
        # unfolded (direct values), each memory of the keys has one address (see below)
        one_address = plan.direct_values
        caddr = Signal.like(rc[0].addr, name="caddr") if one_address else blk
        live = distances(m, rc, hams, cq, reading, caddr, left)
        h = [ham.o.payload.h for ham in hams]

        # the bank rotates where `adding` (a step of a pass) or `rotating` (DONE gives a
        # group): one enable, the tail's input chosen by `adding`
        adding, rotating = Signal(), Signal()
        tail = Signal(lanes_shape)

        def accumulate(en, first, addend):
            """A step of the bank where ``en``: the head group plus the addend to the tail;
            in the pass's first G steps (``first``) the addend alone, so that no query has
            to clear the bank (a pass makes at least G steps)."""
            m.d.comb += adding.eq(en)
            m.d.comb += [tail[l].eq(Mux(first, 0, bhead[l]) + addend(l)) for l in range(P)]

        # left - M - 1 beside left: its sign says left <= M (the word read is the last),
        # no compare; loaded from n - M - 1, a flip-flop beside n (no adder before the
        # load's multiplexer)
        nlm = Signal(range(-M - 1, N + 1), init=-M - 1)
        lm = Signal(range(-2 * M - 1, N + 1))
        amore = ~lm[-1]                           # left > M

        def start_pass():
            """The pass's counters loaded, in every cycle of state IDLE (not only as a query
            is taken: no handshake before their enables)."""
            m.d.sync += [blk.eq(0), left.eq(n), lm.eq(nlm)]

        def issue_words():
            """A cycle of stage A's pass: a code word in its first nb cycles (`issuing`, a
            flip-flop written from the next word's keys), `hdone` a cycle after `hleft`
            reaches 0."""
            with m.If(issuing):
                m.d.sync += [blk.eq(blk + 1), left.eq(left - M), lm.eq(lm - M)]
            m.d.sync += [hleft.eq(hleft - 1), issuing.eq(issuing & amore),
                         hdone.eq(hleft == 0)]

        # ---- the paths
        keys_ok = Signal(init=1)                  # A, B and C in state IDLE
        aidle, bidle, cidle = Signal(init=1), Signal(init=1), Signal(init=1)
        # copies of A's state for its wide enables: `abusy` (not idle: a flip-flop of reset
        # value 0 stays one, where one of 1 is stored inverted, behind a LUT shared by all
        # its loads) for the loads of every idle cycle; `walking`, one per histogram
        abusy = _copy("abusy")
        walks = []
        qaccept = Signal()                        # A takes a query
        c_out = Signal()                          # C returns to IDLE (its last output beat)
        qstart = Signal()                     # A is idle: the streaming list cleared
        kmax = plan.kept_max
        kk = Signal(range(plan.kept_max + 1))    # min(k, n)
        vaddr_w = range(max(N * G, 2))
        stream = plan.selection == "stream"
        if not stream:
            # (1) stage A, the histogram: slot s counts its distances below b in a memory
            # of ceil(b/R) words (block RAM), flags "counted in this query" cleared when a
            # query starts
            counting = Signal()
            walking = Signal()                    # state CUT (a flip-flop)
            walks.append(walking)
            R = plan.hist_bins
            walk = -(-(b + 1) // R)               # words of a histogram
            wreg = plan.walk_reg
            wbin = Signal(range(walk + S + 2 + wreg))    # walk cycle: reads word wbin
            bins = []
            for s in range(M):
                hname = f"hist{s}" if M > 1 else "hist"
                # (each histogram's own copy of `walking`: its flags' enables and its read
                # address from a flip-flop beside it)
                walks.append(_copy(f"{hname}_walking"))
                bins.append(_count_bins(m, b, plan.code_words, counting & live[s], h[s],
                                        walks[-1], wbin, hname, R, plan.hist_reg,
                                        plan.walk_reg))
            # ... and its distances, one word of M per cycle, for the marking pass (stage B
            # reads word w of a query before A writes word w of the next: no second buffer)
            hw = plan.hamming.width
            m.submodules.dists = dmem = memory.Memory(
                shape=data.ArrayLayout(unsigned(hw), M), depth=plan.code_words, init=[])
            dw, dr = dmem.write_port(), dmem.read_port(transparent_for=())
            dword = Signal(range(plan.code_words + 1))
            m.d.comb += [dw.addr.eq(dword), dw.en.eq(hams[0].o.valid)]
            m.d.comb += [dw.data[s].eq(h[s]) for s in range(M)]
            with m.If(hams[0].o.valid):
                m.d.sync += dword.eq(dword + 1)
            # (2) the cut: a walk reads word i in its cycle i, registered w = walk_reg times
            # (the histograms' rq, its flag applied after it); the M slots' counts of each of
            # its R bins add up (S register levels) and are taken in cycle i + 1 + w + S
            # (`wtake`, a flip-flop set a cycle ahead; `wi` = i): rem = kk - the keys below
            # (one subtractor, its compare with the bin's count a second carry chain beside
            # it, not after it), h* = the first bin whose count reaches rem, need = rem there
            # (rem wraps after h*, where it is no longer read); R = 2: the second bin's
            # compare and need after the first's count, each bin's counts summed by a tree of
            # its own (no adder between a histogram's read and its tree). Registered
            # decision: a word's compares go into flip-flops (`ge0`, `ge1`, with rem and
            # need beside them) and set found, h* and need a cycle later, from flip-flops
            # only (no compare before their enable); the last word needs no compare of its
            # own to be found (if no earlier bin reached rem, it holds h*: the window's
            # kk <= n keys are all counted), so that cycle later is still the walk's last
            # (R = 2: which of the last word's two bins, a compare choosing the data, not
            # the enable)
            # (rem and need at most kk <= min(k, N): their width, not N's; rem wraps only
            # after h*, where it is no longer read. Both kept negated, nrem = -rem and
            # nneed = -need: rem less a count is nrem plus it, and the compare with the count
            # that sum's sign, one carry chain and no inverter before it: on the iCE40 a
            # subtraction inverts its operand in a LUT of its own before the carry chain)
            nrem = Signal(range(-kmax, 1), name="nrem")
            found = Signal()
            hstar = Signal(range(b + 1))
            nneed = Signal(range(-kmax, 1), name="nneed")
            # (-v of a register v: a table, a LUT per bit)
            def neg_of(v):
                table = Array(Const(-x, nrem.shape()) for x in range(1 << len(v)))
                return table[v]
            # rem - a count, as nrem + it (and its sign: the count reached rem)
            def take(nr, x):
                t = Signal(signed(max(len(x) + 1, len(nr)) + 1))
                m.d.comb += t.eq(nr + x)
                return t
            wtake, wlast = Signal(), Signal()
            wi = Signal(range(walk + 1))
            wprev = Signal.like(wi)               # the word taken last cycle
            ge0, ge1 = Signal(), Signal()         # its compares (bin 2i, bin 2i + 1)
            nremq = Signal.like(nrem)             # its nrem
            nneedq1 = Signal.like(nrem)           # its nrem + bin 2i's count (R = 2)
            wsum = [adder_tree(m, [Term(x if R == 1 else x[r], False, 0, plan.code_words)
                                   for x in bins], depth=S, name=f"walk{r}" if R > 1 else "walk")
                    for r in range(R)]
            c = [x.value for x in wsum]           # the word's R bins' counts
            # (R = 2: rem less the first bin's count, then less the second's, from the
            # trees' registered sums: no pair sum after the histograms)
            if R == 2:
                # (read only where the word's first bin has not reached rem: then 1..kk)
                nless = take(nrem, c[0])         # -(rem less the first bin's count)
        to_mark = Signal()                    # A hands its query to B (last CUT cycle)
        b_idle, c_idle = Signal(), Signal()   # (B waits for C, A for B: output stalls)
        to_values = Signal()                  # the query goes to C (last MARK or SCAN cycle)
        if not stream:
            # (3) stage B, marking: kept slots and their places in the list, from the stored
            # distances (read in cycle c, registered, compared with h* into registers, used
            # in c + 3)
            # cycles of the pass to its last one less one, counted down
            bdn = Signal(range(plan.code_words + S + plan.mark_read + 1))
            bblk = Signal(range(plan.code_words + 1))
            bleft = Signal(range(N + 1))
            bissuing = Signal()
            bstart = Signal()                     # B's first cycle: takes A's results
            bend = Signal(name="bend")
            bhstar = Signal(range(b + 1))
            # keys at h* still to keep ("room"), as a thermometer: room[j] = room > j
            room = Signal(kmax, name="room")
            bkk = Signal(range(kmax + 1))
            btag = Signal(layouts.query_tag())
            m.d.comb += dr.addr.eq(bblk)
            bmask = Signal(M)
            m.d.comb += [bmask[s].eq(bleft > s) for s in range(M)]
            dreg = Signal(data.ArrayLayout(unsigned(hw), M), reset_less=True)
            m.d.sync += dreg.eq(dr.data)
            # the word's compares with h* registered (a register of their own: no adder of
            # the prefix counts after them in the cycle)
            bvalid = delay(m, bissuing, plan.mark_read - 1, name="bvalid")
            blive = [bvalid & x for x in delay(m, bmask, plan.mark_read - 1, name="bmask")]
            eq, lt = Signal(M, name="beq"), Signal(M, name="blt")
            # (equality as a XOR reduced, not beside the less-than's subtraction, which Yosys
            # would derive it from: after the carry chain)
            m.d.sync += [eq.eq(Cat(*(x & ~(dreg[s] ^ bhstar).any()
                                     for s, x in enumerate(blive)))),
                         lt.eq(Cat(*(x & (dreg[s] < bhstar) for s, x in enumerate(blive))))]
            # the value address of slot 0 of the word whose marks are listed
            jbG = Signal(vaddr_w)
            list_word = delay(m, bvalid, S + 2, name="lword")
            # the word's prefix counts (S register levels), its slots and base beside them
            eqin, ltin = _prefix_counts(m, eq, "eqpre"), _prefix_counts(m, lt, "ltpre")
            eq, lt = delay(m, eq, S, name="eq"), delay(m, lt, S, name="lt")
            eqex, ltex = [Const(0, 1)] + eqin[:-1], [Const(0, 1)] + ltin[:-1]
            # the list: keys with H < h* from entry 0 up, the kept ones with H = h* from
            # entry kk-1 down (the sum does not care about order)
            # (entries of the list: dest's width; both stay below kk where they are read)
            ltbase = Signal(range(max(kmax, 2)))  # keys with H < h* listed so far
            eqbase = Signal(range(max(kmax, 2)))  # kk - 1 - keys with H = h* listed so far
            sel = Signal(M)
            dest = [Signal(range(max(kmax, 2)), name=f"dest{s}") for s in range(M)]
            # room less min(the word's keys at h*, room): the thermometer shifted down by the
            # word's keys at h* (a multiplexer of ceil(log2(M+1)) levels; 0 where they do
            # not fit, no subtraction, compare or sign); slot s's tie kept where room > the
            # word's keys at h* before it, one bit of the thermometer. eqbase less the
            # word's keys at h* in every word (no multiplexer after its subtraction: once
            # they do not fit, room is 0 and no key at h* is listed, so eqbase is no longer
            # read). eqbase and ltbase are of the list's width (min(k, N) entries), not N's:
            # short carry chains
            roomx = Cat(room, Const(0, M))        # (room > s for every s < M)
            # (the thermometer of need: a table, a LUT per bit, not kmax compares, which
            # Yosys would map to carry chains; into a register of its own, loaded into room
            # a cycle after B starts, from flip-flops only: need, set by the cut's last cycle
            # at the latest, holds until the next query's cut, and room is first read as the
            # first word's marks are listed, S + mark_read cycles after B starts; until then
            # the word's keys at h* are 0 and room holds)
            # (need = -nneed: entry u of the table for nneed's bits u)
            nw = len(nneed)
            therm = Array(Const((1 << max(0, min(-(u - (u >> (nw - 1) << nw)), kmax))) - 1,
                                kmax) for u in range(1 << nw))
            needt = Signal(kmax, name="needt")
            m.d.sync += needt.eq(therm[nneed.as_unsigned()])
            m.d.sync += [sel[s].eq(lt[s] | (eq[s] & roomx.bit_select(eqex[s], 1)))
                         for s in range(M)]
            m.d.sync += [dest[s].eq(Mux(lt[s], ltbase + ltex[s], eqbase - eqex[s]))
                         for s in range(M)]
            m.d.sync += [ltbase.eq(ltbase + ltin[-1]),
                         room.eq(room >> eqin[-1]),
                         eqbase.eq(eqbase - eqin[-1])]
            with m.If(delay(m, bstart, 1, name="bstart")):
                m.d.sync += room.eq(needt)
            # (and slot s's, jbG + s·G, a register of its own: no adder before the list)
            jbGs = [jbG] + [Signal(vaddr_w, name=f"jbG{s}") for s in range(1, M)]
            with m.If(list_word):
                m.d.sync += [x.eq(x + M * G) for x in jbGs]
            with m.If(bstart):
                m.d.sync += [bhstar.eq(hstar), ltbase.eq(0),
                             eqbase.eq(kk - 1), bkk.eq(kk),
                             btag.eq(tag)]
                m.d.sync += [x.eq(s * G) for s, x in enumerate(jbGs)]
        # (4) stage C: the kept keys' values, then the output
        cstart = Signal()                     # C's first cycle: takes B's list
        cend = Signal(name="cend")
        cdone = Signal(name="cdone")          # C in state DONE
        # the value pass reads the first kept key's groups (its cycles 1 .. G, and the
        # first one, 0): a flag, not a count of the cycles compared with G
        cfirst = Signal(name="cfirst")
        cgc = Signal(range(max(G, 2)))
        cissuing = Signal()
        # G·kk - 1 less the cycle of VALUES: 0 in the last read's cycle less one,
        # -value_read in the pass's last cycle less one (a compare of one register with
        # constants)
        cdn = Signal(range(-plan.value_read - 2, kmax * G + 1))
        chit = Signal()                       # this cycle's read is the last (a flip-flop)
        cglast = Signal(init=G == 1)          # cgc == G - 1 (a flip-flop beside cgc)
        ckk = Signal(range(kmax + 1))
        ctag = Signal(layouts.query_tag())
        next_key = Signal()                   # the value pass moves to the next entry
        in_memory = M == 1 and not stream     # the list in a memory (else registers)
        if stream:
            # A's list, sorted as it goes: its addresses, copied for C as it starts
            kept = _stream_list(m, kmax, live, h, hams[0].o.valid, qstart, G, vaddr_w)
        elif in_memory:
            # one entry written per cycle: the list in a memory (block RAM) of two
            # halves, B writing one while C reads the other from entry 0, its next
            # entry addressed a cycle ahead
            half = 1 << (max(kmax, 2) - 1).bit_length()
            m.submodules.kept = lmem = memory.Memory(shape=vaddr_w, depth=2 * half,
                                                     init=[])
            lw = lmem.write_port()
            lr = lmem.read_port(transparent_for=(lw,))
            bbuf, cbuf = Signal(), Signal()
            entry = Signal(range(half))
            ahead = Signal.like(entry)        # the entry addressed: entry + next_key
            m.d.comb += [ahead.eq(entry + next_key), lw.addr.eq(Cat(dest[0], bbuf)),
                         lw.data.eq(jbG), lw.en.eq(sel[0]), lr.addr.eq(Cat(ahead, cbuf))]
            with m.If(next_key):
                m.d.sync += entry.eq(entry + 1)
            with m.If(to_values):
                m.d.sync += bbuf.eq(~bbuf)
            head = lr.data
        else:
            # up to M entries per cycle: registers, copied for C as it starts and
            # shifted down there as the keys are read
            kept = [Signal(vaddr_w, name=f"kept{i}") for i in range(kmax)]
            for i in range(kmax):
                # (at most one slot of a word lists entry i: an AND-OR of their addresses)
                hit = [sel[s] & (dest[s] == i) for s in range(M)]
                addr = 0
                for s in range(M):
                    addr = addr | Mux(hit[s], jbGs[s], 0)
                with m.If(Cat(*hit).any()):
                    m.d.sync += kept[i].eq(addr)
        if not in_memory:
            ckept = [Signal(vaddr_w, name=f"ckept{i}") for i in range(kmax)]
            with m.If(cstart):
                m.d.sync += [x.eq(y) for x, y in zip(ckept, kept)]
            with m.Elif(next_key):
                m.d.sync += [ckept[i].eq(ckept[i + 1]) for i in range(kmax - 1)]
            head = ckept[0]
            # the value memory's read address, head + cgc: where G is a power of two, a
            # key's groups are the low log2(G) bits of its words, so the address is cgc
            # beside the entry's upper bits, a register loaded as C starts and at each next
            # entry (no counter); else a register of its own, loaded so and else one more,
            # twice: the counter, and a copy that only addresses the memory, whose block
            # RAMs may be spread over the device (without a reset, so that synthesis does
            # not merge the two)
            lg = (G - 1).bit_length()
            if G == 1 << lg:
                vhi = Signal(Shape.cast(vaddr_w).width - lg, name="vhi")
                with m.If(cstart):
                    m.d.sync += vhi.eq(kept[0][lg:])
                if kmax > 1:
                    with m.Elif(next_key):
                        m.d.sync += vhi.eq(ckept[1][lg:])
                read_at = Cat(cgc[:lg], vhi)
            else:
                vrd = Signal(vaddr_w, name="vrd")
                vrdm = Signal(vaddr_w, name="vrdm", reset_less=True)
                with m.If(cstart):
                    m.d.sync += [x.eq(kept[0]) for x in (vrd, vrdm)]
                with m.Elif(next_key):
                    m.d.sync += [x.eq(ckept[1] if kmax > 1 else vrd + 1) for x in (vrd, vrdm)]
                with m.Elif(cissuing):
                    m.d.sync += [x.eq(vrd + 1) for x in (vrd, vrdm)]
                read_at = vrdm
        else:
            read_at = head + cgc
        # with plan.one_value_address, the value memory has one address (a 1RW SRAM):
        # the kept keys' groups, or the word written where a value comes in (never while
        # stage C reads: keys and values of a window come once its previous window's
        # queries are done); else the write port keeps its own address
        if plan.one_value_address:
            vaddr = Signal.like(rv.addr, name="vaddr")
            m.d.comb += [vaddr.eq(read_at), rv.addr.eq(vaddr), wv.addr.eq(vaddr)]
        else:
            m.d.comb += rv.addr.eq(read_at)
        m.d.comb += next_key.eq(cissuing & cglast)
        vreg = Signal(group, reset_less=True)  # the value read, registered
        m.d.sync += vreg.eq(rv.data[0])
        accumulate(delay(m, cissuing, plan.value_read, name="vlive"),
                   delay(m, cfirst, plan.value_read, name="vfirst"), lambda l: vreg[l])
        # the query throttle: plan.interval for the window's n, kept as a running sum
        # (qlen = interval - 1) as the keys are written, counted down from each query
        qi = plan.interval
        qlen = Signal(range(qi.at(N, plan.k)))
        qwait = Signal.like(qlen)
        qdone = Signal(init=1)
        qfree = qdone
        m.d.comb += reading.eq(issuing)
        # (qdone: qwait has been 0 or 1, a compare of the register; sticky until the next
        # query, so qwait counts down without stopping: no compare before its subtraction)
        m.d.sync += [qwait.eq(qwait - 1), qdone.eq(qdone | (qwait[1:] == 0))]

        def done(groups, glast):
            """C's state DONE (``cdone``, a flip-flop: no state decode before the output's
            valid and the bank's enable): the output, one group per beat from the head of
            the bank, which rotates (``groups`` counts them, ``glast`` = groups == G - 1 a
            flip-flop beside it), then IDLE (``c_out``)."""
            m.d.comb += self.o.valid.eq(cdone)
            if G > 1:
                m.d.comb += self.o.payload.last.eq(glast)
                with m.If(cdone & self.o.ready):
                    m.d.comb += rotating.eq(1)
                    m.d.sync += [groups.eq(Mux(glast, 0, groups + 1)),
                                 glast.eq(~glast & (groups == G - 2))]
                    with m.If(glast):
                        m.d.comb += c_out.eq(1)
            else:
                m.d.comb += c_out.eq(cdone & self.o.ready)

        if plan.direct_values:
            # key j's value at word j, written where the core sends it, in any state (the
            # core sends a window's values once its previous window's queries are done)
            m.d.comb += self.w.ready.eq(1)
            with m.If(self.w.valid):
                restart = self.w.payload.restart
                m.d.comb += [vaddr.eq(Mux(restart, 0, nv)), wv.en.eq(1),
                             wv.data[0].eq(self.w.payload.value)]
                # (the increment beside the restart, chosen after it)
                m.d.sync += nv.eq(Mux(restart, 1, nv + 1))

        # keys once every stage is idle (keys_ok, a flip-flop), queries at the throttle's
        # pace where A is idle; key j's value groups at words from j·G
        keys.take(m, wc, self.i, getattr(self, "v", None), keys_ok, qfree & aidle)
        # (unfolded, the value comes on `w` as the core accepts the key: written
        # above.) Folded, a group is written an edge after it is taken, from registers
        # (its pulse, its restart and its data; nv advances with the write): the handshake
        # reaches no enable of the memory or of nv. The last group of a window's last key
        # lands an edge after the key's token transfers; its query's value pass reads it
        # much later (stage C starts after A's and B's passes)
        if not plan.direct_values:
            vwrite = delay(m, keys.write, 1, name="vwrite")
            # (wg == 0, a flip-flop)
            restart = delay(m, p.first & keys.wg_first, 1, name="vrestart")
            vdata = Signal.like(keys.vdata, name="vdata", reset_less=True)
            m.d.sync += vdata.eq(keys.vdata)
            with m.If(vwrite):
                m.d.comb += [(vaddr if plan.one_value_address else wv.addr).eq(
                    Mux(restart, 0, nv)), wv.en.eq(1), wv.data[0].eq(vdata)]
                # (the increment beside the restart, chosen after it)
                m.d.sync += nv.eq(Mux(restart, 1, nv + 1))
        # (the key's counters advance with its code's write, keys.lag edges after its
        # first group: at or before its token's transfer)
        with m.If(keys.kwrite):
            m.d.sync += nlm.eq(Mux(keys.kfirst, -M, nlm + 1))      # n - M - 1
        # interval(n) - 1 for the n keys so far, a cycle after each key's counters advance
        # (at or before its token's transfer): the terms the key adds (constants chosen by
        # muxes) and its first flag into registers (kgrow, kfirst, kadd), added the next
        # cycle (qnext: one adder, from flip-flops only; no handshake or decode of the
        # token before it); a query taken in that cycle loads qnext
        def grows(o, kp):
            return qi.per_key + (qi.per_block if o else 0) + (qi.per_kept if kp else 0)
        kgrow = Signal(range(grows(1, 1) + 1), name="kgrow")
        kfirst, kadd = Signal(name="kfirst"), Signal(name="kadd")
        m.d.sync += [kadd.eq(keys.kwrite), kfirst.eq(keys.kfirst),
                     kgrow.eq(Mux(keys.kzero,                     # (slot == 0)
                                  Mux(n < plan.k, grows(1, 1), grows(1, 0)),
                                  Mux(n < plan.k, grows(0, 1), grows(0, 0))))]
        qnext = Signal.like(qlen, name="qnext")
        m.d.comb += qnext.eq(Mux(kadd, Mux(kfirst, qi.at(1, plan.k) - 1, qlen + kgrow), qlen))
        m.d.sync += qlen.eq(qnext)
        m.d.comb += qaccept.eq(self.i.valid & ~p.key & qfree & aidle)
        # while A is idle its query registers follow the input, the pass's counters are
        # loaded and (streaming) the list's flags cleared: the query taken is the last
        # cycle of it (no handshake before these enables)
        with m.If(~abusy):
            start_pass()
            m.d.sync += [cq.eq(p.code), tag.eq(p.tag),
                         hleft.eq(nb + (LD - 2 + (0 if stream else S + 2 * plan.hist_reg))),
                         hdone.eq(0),
                         kk.eq(Mux(n < plan.k, n, plan.k))]
            if stream:
                m.d.comb += qstart.eq(1)
            else:
                m.d.sync += dword.eq(0)

        if not stream:
            # the cut's words taken (wtake and wlast are 0 but in state CUT: no state decode
            # before these enables)
            sum0 = nless if R == 2 else take(nrem, c[0])
            with m.If(wtake):             # take word wi = wbin - 1 - S - w
                m.d.sync += [wi.eq(wi + 1), wprev.eq(wi), nremq.eq(nrem),
                             ge0.eq(~sum0[-1])]
                if R == 1:
                    m.d.sync += nrem.eq(sum0)
                else:
                    sum1 = take(nless, c[1])
                    m.d.sync += [nrem.eq(sum1), ge1.eq(~sum1[-1]), nneedq1.eq(nless)]
            # the word taken last cycle reached rem: a flip-flop of its own, set beside
            # ge0 and ge1 (no AND-OR of them before the enables below)
            prev = Signal(name="wprev_hit")
            m.d.sync += prev.eq(wtake & (~sum0[-1] | ~sum1[-1] if R == 2 else ~sum0[-1]))
            # ... or the last word is taken and none did
            with m.If(~found & (prev | wlast)):
                m.d.sync += found.eq(1)
                with m.If(prev):
                    if R == 1:
                        m.d.sync += [hstar.eq(wprev), nneed.eq(nremq)]
                    else:
                        m.d.sync += [hstar.eq(Cat(~ge0, wprev)),
                                     nneed.eq(Mux(ge0, nremq, nneedq1))]
                with m.Else():
                    if R == 1:
                        m.d.sync += [hstar.eq(walk - 1), nneed.eq(nrem)]
                    else:
                        # (b even: the last word holds bin b alone, h* = b)
                        first = ~sum0[-1] if b % 2 else Const(1, 1)
                        m.d.sync += [hstar.eq(Cat(~first, Const(walk - 1))),
                                     nneed.eq(Mux(first, nrem, nless))]
        # stage A's states as flip-flops, one per state (no state decode before their
        # enables): aidle (IDLE), apass (PASS: the next stage held the previous query),
        # ahist (HIST or SCAN), walking (CUT); each block below is its state's, the
        # flags exclusive
        ahist, apass = Signal(name="ahist"), Signal(name="apass")

        def a_hand_over(free, pulse):
            """A's pass ends: the query to the next stage if ``free``, else state PASS."""
            with m.If(free):
                m.d.comb += pulse.eq(1)
            with m.Else():
                m.d.sync += apass.eq(1)

        # (qaccept only where aidle)
        with m.If(qaccept):
            m.d.sync += [issuing.eq(1), qwait.eq(qnext), qdone.eq(0), ahist.eq(1)]
        if stream:
            with m.If(ahist):
                # SCAN, the pass: a code word per cycle while cyc < nb, as in HIST, its M
                # distances into the list L_D cycles later; the last cycle, cyc = nb +
                # L_D - 1, inserts the last word's and gives the list to C
                issue_words()
                with m.If(hdone):
                    m.d.sync += ahist.eq(0)
                    a_hand_over(c_idle, to_values)
        else:
            with m.If(ahist):
                # HIST, the histogram pass: a code word per cycle while cyc < nb
                # (`issuing`, a flip-flop written from the next word's keys, set as the
                # state is entered), then L_D + S cycles to the last word's counts
                # (registered control: the last cycle, nb + L_D - 1 + S + 2·r, flagged a
                # cycle ahead)
                m.d.comb += counting.eq(1)
                issue_words()
                with m.If(hdone):
                    m.d.sync += [issuing.eq(0), ahist.eq(0)] + [x.eq(1) for x in walks]
                m.d.sync += [wbin.eq(0), nrem.eq(neg_of(kk)), found.eq(0), wtake.eq(0),
                             wlast.eq(0), wi.eq(0)]
            with m.If(walking):
                # CUT (registered control: wbin >= 1 + S + w and wbin == walk + S + w a
                # cycle ahead)
                m.d.sync += [wbin.eq(wbin + 1),
                             wtake.eq(wbin >= S + wreg if S + wreg else 1),
                             wlast.eq(wbin == walk + S - 1 + wreg)]
                with m.If(wlast):
                    m.d.sync += [wtake.eq(0), wlast.eq(0)] + [x.eq(0) for x in walks]
                    a_hand_over(b_idle, to_mark)
        with m.If(apass):
            # PASS (only where the output stalled: the next stage holds the previous query)
            with m.If(c_idle if stream else b_idle):
                m.d.comb += (to_values if stream else to_mark).eq(1)
                m.d.sync += apass.eq(0)

        if not stream:
            # (B issues from the hand-over while bleft > M: bissuing and bstart are 0 but in
            # state MARK, set by to_mark, which comes only in state IDLE)
            blm = Signal.like(lm)                 # bleft - M - 1, as lm
            bmore = ~blm[-1]                      # bleft > M
            m.d.sync += [bissuing.eq(to_mark | (bissuing & bmore)), bstart.eq(to_mark)]
            # B's states as flip-flops, one per state (no state decode before their
            # enables): bidle (IDLE), bmark (MARK), bpass (PASS: C held the previous query)
            bmark, bpass = Signal(name="bmark"), Signal(name="bpass")
            with m.If(bidle):
                # the pass's counters loaded in every idle cycle (not only as the query
                # comes: no hand-over before their enables)
                m.d.sync += [bblk.eq(0), bleft.eq(n), blm.eq(nlm), bend.eq(0),
                             bdn.eq(nb + (S + plan.mark_read - 1))]
            with m.If(bmark):
                # MARK (registered control: the last cycle, nb + S + mark_read, flagged a
                # cycle ahead; bmore the sign of bleft - M - 1, beside bleft)
                with m.If(bissuing):
                    m.d.sync += [bblk.eq(bblk + 1), bleft.eq(bleft - M), blm.eq(blm - M)]
                m.d.sync += [bdn.eq(bdn - 1), bend.eq(bdn == 0)]
            # B's end (bend, 1 only in MARK's last cycle, or PASS): the query to C where C is
            # idle, else PASS
            bover = bend | bpass
            m.d.comb += to_values.eq(bover & c_idle)
            m.d.sync += [bmark.eq(Mux(bmark, ~bend, to_mark)), bpass.eq(bover & ~c_idle)]
        # C takes kk and the tag from the stage before it (kk·G a product of it, no register)
        skk, stag = (kk, tag) if stream else (bkk, btag)
        skkG = skk * G                        # (G·kk: a shift where G is a power of two)
        m.d.sync += cstart.eq(to_values)
        # C's states as flip-flops, one per state (no state decode before their enables):
        # cidle (IDLE), cval (VALUES), cdone (DONE, below)
        cval = Signal(name="cval")
        with m.If(cidle):
            # (the counters loaded in every idle cycle; cstart follows to_values, which
            # comes only here)
            m.d.sync += [cfirst.eq(1), cgc.eq(0), cglast.eq(G == 1), cend.eq(0)]
            if in_memory:
                m.d.sync += entry.eq(0)
        with m.If(cval):
            # VALUES: cycle 0 takes B's list, kk and tag; the kept keys' G groups are read
            # in cycles 1 .. G·kk, added value_read edges later
            # (registered control: the last cycle, G·kk + 2, flagged a cycle ahead)
            # (chit: the read of cycle G·kk, and cglast, flagged a cycle ahead)
            with m.If(cstart):
                m.d.sync += [cdn.eq(skkG - 2), cissuing.eq(1), ckk.eq(skk),
                             ctag.eq(stag)]
            with m.Else():
                m.d.sync += cdn.eq(cdn - 1)
            m.d.sync += chit.eq(Mux(cstart, skkG == 1, cdn == 0))
            with m.If(cissuing):
                m.d.sync += [cgc.eq(Mux(cglast, 0, cgc + 1)),
                             cglast.eq(~cglast & (cgc == G - 2) if G > 1 else 1)]
                with m.If(chit):
                    m.d.sync += cissuing.eq(0)
            with m.If(next_key):
                m.d.sync += cfirst.eq(0)
            m.d.sync += cend.eq(~cstart & (cdn == -plan.value_read))
            if in_memory:
                with m.If(cend):
                    m.d.sync += cbuf.eq(~cbuf)
        # VALUES entered as C takes a query, left in its last cycle (cend, 1 only there)
        m.d.sync += cval.eq(Mux(cval, ~cend, to_values))
        # DONE as a flip-flop, entered from VALUES's last cycle (cend, 1 only there), left
        # with the last beat
        m.d.sync += cdone.eq(Mux(cdone, ~c_out, cend))
        done(cgc, cglast)
        # each stage's "in state IDLE" a flip-flop written from its next state (it leaves
        # IDLE as it takes a query, returns as it hands it over), and keys_ok, A, B and C
        # all idle, another: no state decode before the handshakes
        a_next = Mux(aidle, ~qaccept, to_values if stream else to_mark)
        b_next = 1 if stream else Mux(bidle, ~to_mark, to_values)
        c_next = Mux(cidle, ~to_values, c_out)
        m.d.sync += [cidle.eq(c_next), keys_ok.eq(a_next & b_next & c_next)]
        m.d.sync += [aidle.eq(a_next), abusy.eq(~a_next)]
        if not stream:
            m.d.sync += bidle.eq(b_next)
        m.d.comb += [b_idle.eq(bidle), c_idle.eq(cidle)]
        if one_address:
            # the code memories have one address each too (1RW): the pass's word in state
            # HIST or SCAN (`ahist`, a flip-flop: the only state that reads them), else the
            # key's word (codes are written only where A, B and C are idle): no handshake
            # (the write's enables) before the address
            m.d.comb += caddr.eq(Mux(ahist, blk, keys.kaddr))
            m.d.comb += [x.addr.eq(caddr) for x in wc]

        # a step writes the head group plus the addend as the tail, the next group becomes
        # the head: after a multiple of G steps group g is at g again (one enable for every
        # flip-flop). DONE's rotation writes the adders' sum too, not the head: each group
        # leaves at the head before that sum reaches it, and the next pass's first G steps
        # write every group from the addend alone, so no multiplexer comes between the
        # adders and the tail's flip-flops (the ULX3S topk goal build's value block RAM ->
        # `bank` path)
        if plan.bank_in_memory:
            # the same steps in a memory: the head's word bptr written (adding) and the
            # head moved to the next word (bnext = bptr + 1 mod G, a register beside it),
            # read in the step's cycle (G >= 2: never the word written); the read enabled
            # only in a step, so the head stays between steps (no multiplexer before the
            # read address)
            bptr = Signal(range(G), name="bptr")
            bnext = Signal(range(G), name="bnext", init=1)
            step = adding | rotating
            with m.If(step):
                m.d.sync += [bptr.eq(bnext), bnext.eq(Mux(bnext == G - 1, 0, bnext + 1))]
            m.d.comb += [br.addr.eq(bnext), br.en.eq(step),
                         bw.addr.eq(bptr), bw.en.eq(adding), bw.data.eq(tail)]
        else:
            with m.If(adding | rotating):
                m.d.sync += [bank[G - 1].eq(tail)] + \
                    [bank[i].eq(bank[i + 1]) for i in range(G - 1)]
        if G > 1:
            m.d.comb += [self.o.payload.num[l].eq(bhead[l]) for l in range(P)]
        else:
            m.d.comb += [self.o.payload.num[e].eq(bhead[e]) for e in range(d)]
        m.d.comb += [self.o.payload.tag.eq(ctag), self.o.payload.den.eq(ckk)]
        return m


class FoldedScanValuePath(ScanValuePath):
    """:class:`ScanValuePath` with P < d lanes (G > 1): the same passes, memories and timing
    formulas; a key's value comes as G groups on the ``v`` stream, written one per cycle
    while its token is held, which transfers with the last group."""


TopkValuePath = ScanValuePath
