"""The attention core: window protocol, hash, value path, divider (SPEC §4).

:class:`CorePlan` composes the plans of the blocks (their timing adds up to the core's);
:class:`AttentionCore` and its AXI4-Stream top :class:`AxiStreamCore` are built from it."""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import layouts
from .divider import DividerPlan
from .hash import HashPlan, group_select
from .linear import LinearPlan
from .hsoftmax import HsoftmaxPlan
from .plan import Timing, unsigned_width
from .queue import ROOM_LAG, RegisteredFIFO
from .scan import ScanPlan
from .skid import SkidBuffer

__all__ = ["CorePlan", "AttentionCore", "AxiStreamCore"]


def _or(values):
    out = values[0]
    for v in values[1:]:
        out = out | v
    return out

#: entries of the key-value queue beyond those the hash can hold: its room flag is
#: registered (it says "room" while the level leaves this many places)
_ROOM_MARGIN = 2


@dataclass(frozen=True)
class CorePlan:
    """The whole core for d-element w-bit vectors and windows of at most N keys: the
    ``hash`` of keys and queries, the ``value`` path (:class:`LinearPlan`, :class:`ScanPlan`
    or :class:`HsoftmaxPlan`, whose Hamming distance is its own) and the ``divider``, in
    that order."""

    d: int
    w: int
    N: int
    hash: HashPlan
    value: LinearPlan | ScanPlan | HsoftmaxPlan
    divider: DividerPlan

    @property
    def mode(self):
        return self.value.mode

    @property
    def lanes(self):
        return self.value.lanes

    @property
    def groups(self):
        """G = ceil(d / P): cycles per vector in the hash and the value path."""
        return self.value.groups

    @property
    def row_blocks(self):
        """R: passes of the hash and row blocks of a linear path per vector (1: unfolded)."""
        return self.hash.row_blocks

    @property
    def k(self):
        """Keys kept per query (topk), for the per-kept terms of the timing; None otherwise."""
        return getattr(self.value, "k", None)

    @property
    def key_count_width(self):
        """Bits of the count n of used keys, 0..N."""
        return unsigned_width(self.N)

    # ---------------------------------------------------------------- timing (SPEC §5)
    @property
    def latency(self):
        """Edges from a query transfer to its output transfer, with m_out_tready high and
        the core otherwise idle: the hash, the value path and the divider in a row."""
        return self.hash.latency + self.value.latency + self.divider.latency

    @property
    def q_interval(self):
        """Edges between accepted queries at full throughput, which the core enforces at
        ``s_q_tready``: the longest occupancy of the value path, the divider and the hash,
        so that every query sees them idle and its output comes exactly ``latency`` edges
        later (the divider's and the hash's are constant)."""
        v = self.value.interval
        return Timing(max(v.fixed, self.divider.interval.fixed, self.hash.interval.fixed),
                      v.per_key, v.per_block, v.block, v.per_kept)

    @property
    def kv_interval(self):
        """Edges between accepted keys: G (one group per cycle through the hash and the
        value path), G·R in a linear path that folds its rows."""
        return self.value.key_interval

    @property
    def out_credits(self):
        """F: queries the core lets be in flight (accepted, output not yet taken); F - 1 is
        the depth of its output queue (the divider holds one more). At full rate, when a
        query is accepted, the m earlier ones with m·q_interval <= latency are in flight
        (the oldest may be leaving at that very edge): F = floor(latency / q_interval) + 1,
        so the credit never throttles a core whose output is ready; when ``m_out_tready``
        is low the finished outputs wait in the queue and the pipeline itself never stalls.
        Folded (G > 1), one more: the query's readies are registered from the credit of the
        cycle before, not from the output taken in it (which then is in flight one cycle
        more), so that ``m_out_tready`` reaches no ready:
        F = floor(latency / q_interval) + 1 + (G > 1). At least 2, as latency > q_interval."""
        return max(self.latency.at(n, self.k) // self.q_interval.at(n, self.k)
                   for n in range(1, self.N + 1)) + 1 + (self.groups > 1)

    # ---------------------------------------------------------------- size
    @property
    def adder_bits(self):
        """A size estimate of the core: the bits of all its adders (hash trees, value path,
        divider). Used to refuse configs too large to elaborate in reasonable time and to
        warn about slow ones; not an area figure (see ``hamattn synth``)."""
        return self.hash.adder_bits + self.value.adder_bits \
            + 2 * self.d * (self.value.num_width + self.w)


def _at_most_one(counter):
    """``counter <= 1``, i.e. a down-counter's next value is 0, as a test of its high bits (no
    decrement before the compare; not a compare with a constant, which Verilator's -Wall
    reports as CMPCONST where the counter has one bit)."""
    return counter[1:] == 0 if len(counter) > 1 else Const(1, 1)


def _at_most_three(counter):
    """``counter <= 3``: its bits above the two lowest are zero."""
    return counter[2:] == 0 if len(counter) > 2 else Const(1, 1)


def _at_most_two(counter):
    """``counter <= 2``, i.e. a down-counter's next value is at most 1 (as
    :func:`_at_most_one`: its high bits zero, and not both low bits set)."""
    if len(counter) <= 1:
        return Const(1, 1)
    return (counter[2:] == 0) & ~(counter[0] & counter[1])


class AttentionCore(wiring.Component):
    """Binary-code attention over windows of keys then queries.

    Parameters
    ----------
    cfg : :class:`~hamattn.CoreConfig`
        The core's config.

    Members
    -------
    s_kv : :py:`In(stream.Signature({key: d × signed(w), value: d × signed(w), last: 1}))`
        Keys and their values; ``last`` on the last key of a window.
    s_q : :py:`In(stream.Signature({query: d × signed(w), last: 1}))`
        Queries; ``last`` on the last query of a window.
    m_out : :py:`Out(stream.Signature({data: d × signed(w), last: 1, user: 1}))`
        One output per query, in order (:func:`layouts.output`).

    Keys and queries share one :class:`HashProjection` pipeline in window order, then one
    value path (:class:`LinearValuePath` or :class:`ScanValuePath`), then one
    :class:`RoundingDivider`. Keys beyond the N-th of a window are accepted and dropped, and
    every output of that window carries ``user = 1``. ``s_q`` is throttled to one query per
    ``plan.q_interval`` cycles so that every query finds the value path idle and the
    divider's pipeline ready for it: its output then transfers exactly ``plan.latency`` edges
    after it (``m_out.ready`` high). Any valid/ready pattern gives the same beats.
    ``m_out.ready`` drives no pipeline enable: at most ``plan.out_credits`` (F) queries are
    in flight, finished outputs that are not taken wait in the divider (its output register
    and an (F-1)-entry queue, bypassed when empty, so the latency is unchanged), and the
    hash, value path and divider run without back-pressure from the output, which keeps the
    output handshake off the core's critical path.

    Latency: ``plan.latency`` = hash + value path + divider, ``A + C·n`` for n used keys.
    Throughput: ``plan.kv_interval`` (one key per G cycles) and ``plan.q_interval``.

    Folding (``lanes`` P < d): the hash, the value path and the divider each handle one
    group of P elements per cycle, G = ceil(d/P) cycles per vector; the ports and the bits
    do not change.

    A folded scan core (``q_interval`` longer than the hash's reading time) reads a query
    from the cycle after ``s_q.valid`` rises, from a flip-flop that takes it (the hash's
    read enable is then a flip-flop): it relies on AXI4-Stream's rule that a valid stays
    high, and its payload stable, until the beat transfers. Its latency and intervals do
    not change (the next query's reads never start at the edge after a query's transfer).

    ``readies_check`` (folded, after elaboration; None before, and unfolded): a pair of
    7-bit Values (9-bit where the query's valid is registered) for tests, equal on every
    cycle. Bits 0-3: the next values of the readies
    ``(s_kv, s_q)`` and of the key ready's two halves ``(s_kv & use, s_kv & ~use)`` as the
    folded core registers them, and the same from ``readies()`` of the flags' next values
    (the unfolded core's expression) with this cycle's credit. Bits 4-6: the registered
    flag ``keys_free`` against keys phase & use & free (<= 1), and the next values of the
    read flags ``rd_kv``, ``rd_q`` against their case-by-case expressions of the flags.
    Bits 7-8 (registered query valid): the hash's query read ``q_rd`` and its twin
    against ``q_held & rd_q``.
    """

    def __init__(self, plan):
        self.plan = plan
        self.readies_check = None
        vec = layouts.vector(plan)
        super().__init__({
            "s_kv": In(stream.Signature(data.StructLayout(
                {"key": vec, "value": vec, "last": 1}))),
            "s_q": In(stream.Signature(data.StructLayout({"query": vec, "last": 1}))),
            "m_out": Out(stream.Signature(layouts.output(plan))),
        })

    @property
    def latency(self):
        return self.plan.latency

    def elaborate(self, platform):
        plan = self.plan
        m = Module()
        m.submodules.hash = hsh = plan.hash.component(layouts.key_tag(plan), stalls=False,
                                                      select=not plan.hash.folded)
        m.submodules.value_path = vp = plan.value.component()
        m.submodules.divider = div = plan.divider.component(layouts.query_tag(),
                                                            depth=plan.out_credits)

        # ---- window protocol: keys, then queries
        # The readies are flip-flops, each written from the next values of the flags it is
        # made of (so no logic stands between a ready and the enables behind it, in the core
        # or in its source): `flop` makes a flag's next value a wire of its own (its value
        # where no statement below sets it: `default`, else the flag itself), registered
        # into the flag, and the statements that set the flag set that wire
        def flop(flag, default=None):
            nxt = Signal.like(flag, name=f"{flag.name}_d")
            m.d.comb += nxt.eq(flag if default is None else default)
            m.d.sync += flag.eq(nxt)
            return nxt
        queries = Signal()                       # phase: 0 keys, 1 queries
        queries_d = flop(queries)
        count = Signal(range(plan.N + 1))        # used keys of this window
        # count == 0, a flip-flop beside the count (the hash's `first` tag and a direct value
        # path's restart decode no counter)
        none_yet = Signal(init=1, name="count_zero")
        over = Signal()                          # this window had more than N keys
        qi = plan.q_interval
        # a value path at work on X queries at once (a pipelined scan) ends a window's last
        # query within X intervals of it: the next window's keys wait that long, rounded up
        # to 2**XS intervals (a shift, no multiplier)
        XS = (getattr(plan.value, "stages_in_flight", 1) - 1).bit_length()
        # (a query loads wait with qi.fixed - HI + scan_len, below: where that is always 0,
        # q_interval = HI with no per-key part and no XS, wait never leaves 0, and its flags
        # are the constant 1, not flip-flops that the readies and read flags would decode:
        # a linear core whose interval is its hash's)
        wait_zero_always = (qi.fixed == plan.hash.interval.fixed and not XS
                            and qi.at(plan.N, plan.k) == qi.fixed)
        # registered control: each counter's test (== 0, < N, < F) is a flip-flop written
        # beside the counter from the value the counter takes, so that no ready or enable
        # decodes a counter (the flag is the compare of the counter's next value)
        G = plan.groups
        wait_le1 = wait_le1_d = wait_le2 = wait_le2_d = None
        if wait_zero_always:
            wait = None
            wait_done = wait_done_d = 1
            if G > 1:
                wait_le1 = wait_le2 = 1
        else:
            wait = Signal(range((qi.at(plan.N, plan.k) << XS) + 1))
            wait_done = Signal(init=1)               # wait == 0
            wait_done_d = flop(wait_done, _at_most_one(wait))
            # (folded: wait <= 1 as well, the value wait_done takes after the edge unless a
            # query transfers, which a folded core's readies are registered from)
            if G > 1:
                # (wait <= 2 as well, the value wait_le1 takes after the edge unless a query
                # transfers: the keys' free flag below is registered from it)
                wait_le2 = Signal(init=1, name="wait_le2")
                wait_le2_d = flop(wait_le2, _at_most_three(wait))
                wait_le1 = Signal(init=1, name="wait_le1")
                wait_le1_d = flop(wait_le1, wait_le2)
            m.d.sync += wait.eq(Mux(wait_done, 0, wait - 1))      # (wait_done: wait == 0)
        # q_interval's parts that grow with the keys so far (C·n + D·ceil(n/M) + E·min(k, n)),
        # kept as a running sum (no multiply): C per key, D per key that opens a block of M,
        # E per key among the first k
        per = qi.at(plan.N, plan.k) - qi.fixed
        scan_len = Signal(range(per + 1), name="scan_len") if per else 0
        block_slot = Signal(range(qi.block)) if qi.per_block and qi.block > 1 else None
        opens = (block_slot == 0) if block_slot is not None else 1     # a block of M starts
        # one of the first k: count < k, a flip-flop written beside the count
        kept = Signal(init=plan.k > 0, name="kept") if qi.per_kept else 0

        def grows(o, kp):            # (constants chosen by a mux: one adder on scan_len)
            return qi.per_key + (qi.per_block if o else 0) + (qi.per_kept if kp else 0)
        grow = qi.per_key if not (qi.per_block or qi.per_kept) else \
            Mux(opens, Mux(kept, grows(1, 1), grows(1, 0)), Mux(kept, grows(0, 1), grows(0, 0)))
        # keys beyond the N-th are dropped at the pace of the used ones (kv_interval); a
        # linear path that folds its rows takes a vector per G·R cycles, and so does its
        # hash (R passes of T rows): dropped keys and the first query wait for kv_wait too
        HI = plan.hash.interval.fixed   # cycles the hash reads a vector: G, or G·R
        # (folded: scan_len == 0, where qi.fixed == HI: a query then leaves wait at 0, which
        # the hash's read flags below take without a compare of scan_len)
        wz = Signal(init=1, name="scan_none") if per and G > 1 and qi.fixed == HI else None
        KV = plan.kv_interval.fixed
        row_folded = plan.row_blocks > 1
        # (row-folded: the first key after reset also waits KV-1 cycles, while the value path
        # writes zeros to its G·R state words)
        kv_init = KV - 1 if row_folded else 0
        kv_wait = Signal(range(KV), init=kv_init) if KV > 1 else None
        kv_free = Signal(init=kv_init == 0) if KV > 1 else 1        # kv_wait == 0
        kv_free_d = 1
        # (folded: kv_wait <= 1, as wait_le1)
        kv_le1 = kv_le1_d = kv_le2 = kv_le2_d = None
        if KV > 1:
            kv_free_d = flop(kv_free, _at_most_one(kv_wait))
            if G > 1:
                # (and kv_wait <= 2, the value kv_le1 takes after the edge but for a load)
                kv_le2 = Signal(init=kv_init <= 2, name="kv_le2")
                kv_le2_d = flop(kv_le2, _at_most_three(kv_wait))
                kv_le1 = Signal(init=kv_init <= 1, name="kv_le1")
                kv_le1_d = flop(kv_le1, kv_le2)
            m.d.sync += kv_wait.eq(Mux(kv_free, 0, kv_wait - 1))   # (kv_free: kv_wait == 0)

        # ---- output credits: a query enters only if its output has a place in the queue
        F = plan.out_credits
        inflight = Signal(range(F + 1))
        credit = Signal(init=1)                  # inflight < F
        credit_d = flop(credit)
        q_in = Signal()
        out_tx = self.m_out.valid & self.m_out.ready
        with m.If(q_in & ~out_tx):
            m.d.sync += inflight.eq(inflight + 1)
            m.d.comb += credit_d.eq(inflight + 1 < F)
        with m.Elif(out_tx & ~q_in):
            m.d.sync += inflight.eq(inflight - 1)
            m.d.comb += credit_d.eq(1)

        # ---- a key's value waits beside the hash in a queue (a memory with a synchronous
        # read, block RAM or LUT RAM) instead of riding through every hash pipeline stage:
        # it is taken when the key's code leaves the hash. Unfolded, one d-wide entry per
        # key; folded, one P-wide entry per group, written as the hash reads the key's group
        # (a G:1 mux per lane) and taken by the value path one group per cycle. Depth: every
        # vector the hash can hold, so the queue never throttles a key. (Row-folded, the hash
        # reads a key for G·R cycles, the groups in its first pass, and the value path takes
        # them over the G·R cycles after the code leaves the hash: the keys that overlap are
        # at most 3 + ceil(L_H / (G·R)), G entries each.)
        # Folded, the write is registered: the G:1 mux of the value's groups (by the hash's
        # one-hot group) and the hash's read (from the input valid) end at flip-flops, not
        # in the queue's memory, pointers and level (one more entry in flight, so the room
        # flag keeps one more place; the value waits L_H edges for its code anyway). The
        # folded value path also takes the read through a skid buffer (below)
        # An unfolded topk path takes a key's value as the key enters the hash (port `w`,
        # written straight into its value memory at the key's index; the window's earlier
        # queries are done by then, see `wait`): no queue.
        margin = _ROOM_MARGIN + (G > 1)                     # (G > 1: the registered write)
        direct = getattr(plan.value, "direct_values", False)
        if direct:
            values = None
        elif G > 1:
            LH = plan.hash.latency.fixed
            depth = G * (3 + -(-LH // HI)) + 2 if row_folded else LH + 2 * G + 2
            depth += margin + ROOM_LAG
            m.submodules.value_queue = values = RegisteredFIFO(
                width=plan.lanes * plan.w, depth=depth, margin=margin)
        else:
            m.submodules.value_queue = values = RegisteredFIFO(
                width=plan.d * plan.w,
                depth=plan.hash.latency.fixed + 2 + margin + ROOM_LAG, margin=margin)
        # the queue has room for the key's value: its flag (a flip-flop, the queue's `room`)
        # says level + margin < depth, so that the writes still in flight when it falls (the
        # registered write, a key of the hash's next read) find the queue ready; the depth
        # has `margin` + ROOM_LAG more entries so that this never throttles a key. The flag
        # lags the level (:data:`~.queue.ROOM_LAG`): neither it nor `room_next`, its value
        # after the edge (the readies are registered from it), decodes this cycle's write
        # (the hash's read, from the input valid) nor read.
        # The queue's write (or the value path's, direct), from the key phase below (0 in
        # the query phase)
        if direct:
            # (the write registered: the value path's `w` is a register of the key's value,
            # loaded at every edge, its valid (the used key's transfer) and its restart, so
            # that the key's handshake and the input's value reach the value memory's write
            # data and enables from flip-flops, not through the handshake's LUTs: the
            # default `topk` core on the UP5K, the harness's input register -> `kv_used` ->
            # the write data's select -> the block RAM's WDATA, 18.8-20.9 ns. The value lands
            # an edge after its key's transfer, long before a query's value pass reads it,
            # and after the previous window's last read: no latency or interval changes)
            room = room_next = 1
            w_data, w_en = Signal.like(vp.w.payload.value), Signal()
            w_value = Signal.like(vp.w.payload.value, name="w_value", reset_less=True)
            w_restart = Signal(name="w_restart", reset_less=True)
            w_valid = Signal(name="w_valid")
            m.d.sync += [w_value.eq(self.s_kv.payload.value), w_restart.eq(none_yet),
                         w_valid.eq(w_en)]
            m.d.comb += [vp.w.payload.value.eq(w_value), vp.w.payload.restart.eq(w_restart),
                         vp.w.valid.eq(w_valid)]
        else:
            room, room_next = values.room, values.room_next
            w_data, w_en = Signal.like(values.w_data), Signal()
            m.d["sync" if G > 1 else "comb"] += [values.w_data.eq(w_data),
                                                  values.w_en.eq(w_en)]

        hash_valid = Signal()
        tag = hsh.i.payload.tag
        m.d.comb += [
            tag.key.eq(~queries), tag.first.eq(none_yet),
            tag.qtag.last.eq(self.s_q.payload.last), tag.qtag.user.eq(over),
            hsh.i.payload.query.eq(queries),
        ]
        key, query = Value.cast(self.s_kv.payload.key), Value.cast(self.s_q.payload.query)
        if G > 1:
            # the core selects the group the hash reads, by a one-hot of the key's groups and
            # one of the query's (flip-flops): one AND-OR of the two vectors, no phase mux
            # in front of it. Each moves on with the hash's one-hot at its own channel's reads
            # (``kv_read``, ``q_read`` below, clock enables of a flip-flop and a valid; their
            # inputs are the hash's group, flip-flops): a vector's last read (group G-1)
            # leaves it 0, and the phase changes only at a vector's last read, so the other
            # channel's one-hot holds 0 throughout a phase and the next phase's first read
            # (group 0) is selected by the hash's own one-hot and the phase instead (one LUT4)
            # The core's one-hots are shift registers of their own, fed by the hash's bit 0
            # (a read of group g, g >= 1, finds the channel's one-hot at group g - 1 and
            # moves it on; a read of group 0 loads bit 0; a read of group G-1 shifts the
            # bit out): the same values as loading the hash's one-hot, whose other bits
            # then load only the hash's ring and the value's group select (the read's clock
            # enable net reaches fewer places)
            key_group = Signal(G - 1, name="key_group")        # groups 1 .. G-1
            query_group = Signal(G - 1, name="query_group")
            kv_read, q_read = Signal(), Signal()
            with m.If(kv_read):
                m.d.sync += key_group.eq(Cat(hsh.group[0], key_group[:G - 2]))
            with m.If(q_read):
                m.d.sync += query_group.eq(Cat(hsh.group[0], query_group[:G - 2]))
            # (the value's group the hash reads, by the hash's one-hot: key_group has the
            # ahead selects as its loads)
            vgroup = group_select(m, Value.cast(self.s_kv.payload.value), hsh.group,
                                  plan.lanes * plan.w, name="v_group")
            # The groups after the first are selected a read ahead, into flip-flops: the
            # reads of a vector's groups come in order (group 0, 1, .., G-1, R passes) and
            # its beat holds still until its last read, so at a read of group g the group
            # g + 1 of the same beat is known: `ahead` loads it (group 1 by the hash's
            # one-hot group 0, groups 2 .. G-1 by key_group / query_group, a G-2:1 AND-OR
            # per channel) under the hash's read as a clock enable, and holds it between
            # reads. The hash's x is then group 0 straight from the input (the first read
            # of a beat) or the flip-flops: two LUT4 levels from the input, not the
            # ceil(log4(G-1)) + 1 of a 2(G-1):1 AND-OR (each half of `ahead` is one level
            # less than that, as it selects G-2 words, not 2(G-1))
            width = plan.lanes * plan.w
            g0 = hsh.group[0]
            first = Signal(width, name="x_first", attrs={"keep": 1})
            m.d.comb += first.eq(Mux(g0, Mux(queries, query[:width], key[:width]), 0))
            after = Mux(g0, Mux(queries, query[width:2 * width], key[width:2 * width]), 0)
            sels = [group_select(m, key[2 * width:], key_group[:G - 2], width,
                                 name="x_ahead_k", first=after)]
            if G > 2:
                sels.append(group_select(m, query[2 * width:], query_group[:G - 2], width,
                                         name="x_ahead_q"))
            ahead = [Signal(width, name=f"x_ahead{i}", reset_less=True)
                     for i in range(len(sels))]
            with m.If(kv_read | q_read):          # (the core's copy of the hash's read)
                m.d.sync += [a.eq(s) for a, s in zip(ahead, sels)]
            # (a read of group 0 takes the input alone: `ahead` then holds what a vector's
            # last read loaded, 0, but for a reset in the middle of a vector)
            later = Signal(width, name="x_later", attrs={"keep": 1})
            m.d.comb += [later.eq(Mux(g0, 0, _or(ahead))),
                         hsh.i.payload.x.eq(first | later)]
        else:
            m.d.comb += hsh.i.payload.x.eq(Mux(queries, query, key))
        use = Signal(init=1)                     # count < N
        use_d = flop(use)
        # count + 1 < N: a flip-flop written beside the count (from count + 2 < N, a compare
        # of the count with a constant), so that no handshake waits for an increment
        use_next = Signal(init=plan.N > 1, name="use_next")
        # the readies: flip-flops, each the value of its flags after the edge
        #   s_kv: keys phase, free, and a used key at the hash's last read with room in the
        #         value queue, or a key beyond the N-th when kv_wait is 0
        #   s_q:  queries phase, free, the hash's last read and an output credit
        # (a scan value path reads the key memory until the previous window's last query is
        # done: its keys wait, so that once they flow, they flow one per cycle; a linear path
        # that folds its rows takes a vector per G·R cycles). The hash's valid is the part of
        # a ready that does not wait for its last read (nor, for a query, for the credit,
        # which is needed where the query transfers, not while the hash reads its earlier
        # groups: a query of a full-rate stream then finds it whatever the hash's reading
        # time). The handshakes' effects (a used key, a key beyond the N-th, a query) are
        # then each a flat AND of a valid and flip-flops.
        def kv_free_of(wait_done, kv_free):
            return wait_done if plan.mode != "linear" else kv_free if row_folded else 1

        def q_free_of(wait_done, kv_free):
            return wait_done & (kv_free if row_folded else 1)

        def readies(queries, use, wait_done, kv_free, last, room, credit, mux=Mux):
            """(s_kv ready, s_q ready) of these flags (their next values, or with ints and a
            Python `mux`, their reset values)"""
            return (~queries & kv_free_of(wait_done, kv_free) & mux(use, last & room, kv_free),
                    queries & last & q_free_of(wait_done, kv_free) & credit)

        last, last_d = (hsh.i.ready, hsh.last_next) if G > 1 else (1, 1)
        inits = readies(*[v.init if isinstance(v, Signal) else v
                          for v in (queries, use, wait_done, kv_free, 0 if G > 1 else 1, room,
                                    credit)], mux=lambda c, a, b: a if c else b)
        kv_ready = Signal(init=inits[0] & 1, name="kv_ready")
        q_ready = Signal(init=inits[1] & 1, name="q_ready")
        rd_kv = Signal(init=bool(kv_free_of(1, kv_init == 0)), name="rd_kv")
        rd_q = Signal(name="rd_q")
        if G > 1:
            # folded (KV >= G > 1): after any transfer the hash's next read is a vector's
            # first, not its last (last_d = 0), and a key beyond the N-th is followed by
            # kv_wait = KV - 1 > 0: both readies are then 0 whatever the other flags' next
            # values. Without a transfer, the phase, `use` and the credit (but for an output
            # taken) keep their values and the counters' flags take their defaults. So
            # each ready is the flags' present values gated by "no transfer", not a
            # function of the flags' next values (which decode the handshakes): fewer
            # levels between the input valids and the readies
            kv_tx = self.s_kv.valid & kv_ready
            # The query's valid as the core reads it, ``qv``: where the next query's reads
            # never start at the edge after a query's transfer (qi.fixed > HI: `wait` is
            # then at least 1 after it, so the read flag rd_q is 0 in that cycle), the
            # flip-flop `q_held`, "s_q.valid was high in the cycle before and its beat did
            # not transfer" (s_q.valid & ~q_ready, registered). A stream's valid stays high
            # until its beat transfers (AXI4-Stream; the folded hash already reads the
            # payload over G cycles), so q_held implies s_q.valid, and the core reads a
            # query from the cycle after its valid rises: one cycle later than s_q.valid
            # would, which costs no throughput (the reads of the next query start two or
            # more edges after a transfer anyway) and no latency (counted from the
            # transfer, the last read, which q_ready, 0 in a beat's first cycle, says).
            # The hash's read of a query is then the flip-flop `q_rd` = q_held & rd_q,
            # written from the flags' next values: no input valid and no LUT before the
            # hash's counters, one-hot group and read flags (the iCEBreaker `topk` goal
            # build's rd_q -> the hash's `last_read` clock enable, 3 cells to 40 ends)
            held_q = qi.fixed > HI
            if held_q:
                q_held = Signal(name="q_held")
                m.d.sync += q_held.eq(self.s_q.valid & ~q_ready)
                qv = q_held
            else:
                qv = self.s_q.valid
            q_tx = qv & q_ready

            def wire(name, v):
                w = Signal(name=name, attrs={"keep": 1})
                m.d.comb += w.eq(v)
                return w
            # The hash's next last-read flag (last_d) is Mux(read, last_if_read, last) of
            # its read, the OR of both channels' reads: a net that also enables the hash's
            # counters and the group registers (a wide fan-out). Each phase has one channel
            # that reads (rd_kv implies the key phase and rd_q the query phase: each is
            # written 0 in the other phase, and at a phase change from the channel whose
            # last beat transfers), and the other phase's ready is 0, so each ready takes
            # the flag from its own channel's read, as a mux by its own valid (no read, the
            # flag holds; a read, the flag is last_if_read where the core reads, else it
            # holds), and folds ~transfer into the read case (a ready beat transfers where
            # its valid is high):
            #   q_ready' = queries & free & credit & Mux(s_q.valid, ~q_ready & Mux(rd_q,
            #              last_if_read, last), last)
            #   kv_ready' = keys & free & Mux(s_kv.valid, ~kv_ready & Mux(use, Mux(rd_kv,
            #               last_if_read, last) & room', kv_le1), Mux(use, last & room', kv_le1))
            # (the credit of this cycle, without the output taken in it: see out_credits).
            # Each is one LUT of its valid and LUTs of flip-flops (wires of their own); the
            # other channel's valid and read, and the hash's valid, reach neither
            lir = hsh.last_if_read
            q_hold = wire("q_ready_hold", queries & q_free_of(wait_le1, kv_le1) & credit)
            q_read_last = wire("q_ready_read", ~q_ready & Mux(rd_q, lir, last))
            kv_hold = wire("kv_ready_hold", ~queries & kv_free_of(wait_le1, kv_le1))
            kv_idle = wire("kv_ready_idle", Mux(use, last & room_next, kv_le1))
            kv_sel = wire("kv_ready_sel", Mux(rd_kv, lir, last) & room_next)
            kv_read_last = wire("kv_ready_read", ~kv_ready & Mux(use, kv_sel, kv_le1))
            kv_ready_d = kv_hold & Mux(self.s_kv.valid, kv_read_last, kv_idle)
            q_ready_d = q_hold & Mux(qv, q_read_last, last)
            m.d.sync += [kv_ready.eq(kv_ready_d), q_ready.eq(q_ready_d)]
            # (q_ready again, for the read flags alone: it reads its own output where q_ready
            # reads q_ready, so that no merge identifies the two, and the read flag's query
            # case shares no LUT with the query's transfer, whose logic is deeper)
            q_ready_r = Signal(init=q_ready.init, name="q_ready_rd")
            m.d.sync += q_ready_r.eq(q_hold & Mux(qv, ~q_ready_r & Mux(rd_q, lir, last), last))
            # the key ready twice more, split by `use`: kv_take = kv_ready & use (a used key
            # transfers where s_kv.valid is high) and kv_drop = kv_ready & ~use (a key beyond
            # the N-th), so that the enables of the count, its flags and the scan length are
            # one LUT of the input valid and one flip-flop (kv_ready alone was three LUT
            # levels before them, the phase and `use` folded in). A ready key implies the keys
            # phase, and `use` holds where kv_ready rises (it changes at a used key's transfer,
            # where kv_ready' = 0, and at a window's last query, in the query phase, where
            # kv_hold = 0): each is the ready's next value with `use`'s present value
            # (kv_hold & use, the keys phase with a key to use and free after the edge, is a
            # flip-flop, `keys_free`, written below from the flags' values after the edge; the
            # next read flag rd_kv takes it too)
            keys_free = Signal(init=bool(kv_free_of(1, kv_init <= 1)), name="keys_free")
            kv_hold_u = keys_free
            kv_hold_o = wire("kv_drop_hold", kv_hold & ~use)
            kv_step = Mux(self.s_kv.valid, kv_read_last, kv_idle)
            kv_take_d, kv_drop_d = kv_hold_u & kv_step, kv_hold_o & kv_step
            kv_take = Signal(init=inits[0] & 1, name="kv_take")     # (use's init is 1)
            kv_drop = Signal(name="kv_drop")
            m.d.sync += [kv_take.eq(kv_take_d), kv_drop.eq(kv_drop_d)]
            # (the same readies as readies() of the flags' next values, but for the credit,
            # this cycle's, and the two split key readies as the ready with `use`'s next
            # value: :attr:`readies_check`, which a test compares on every cycle)
            kv_ref, q_ref = readies(queries_d, use_d, wait_done_d, kv_free_d, last_d,
                                    room_next, credit)
            checks = [(Cat(kv_ready_d, q_ready_d, kv_take_d, kv_drop_d),
                       Cat(kv_ref, q_ref, kv_ref & use_d, kv_ref & ~use_d))]
            # the hash reads a group of the key (of the query) where s_kv.valid & rd_kv
            # (s_q.valid & rd_q): flip-flops, the part of the hash's valid that is not the
            # input's, so that the read, which enables the hash's counters and the group
            # one-hots, is one LUT of two valids and two flip-flops
            #   rd_kv = keys phase & use & free & room
            #   rd_q  = queries phase & free & (credit | not the last read)
            # Each is written from its flags' values after the edge, in three cases: a key
            # transfers (a vector's last read: the next read is a first, the phase follows
            # s_kv.last, `use` is use_next, the counters' flags their loaded values), a query
            # transfers (likewise), or neither (the phase and `use` hold, the counters' flags
            # are their <= 1 flags, the credit gains an output taken)
            kv_free_kv = Mux(use_next, KV == HI, KV == 1)    # kv_free after a key transfer
            kv_free_q = (KV == HI) if row_folded else kv_le1  # ... after a query transfer
            # wait == 0 after a query transfer (not the window's last: its keys' test)
            wait_zero = wz if wz is not None else Const(qi.fixed == HI and not per, 1)
            wait_done_q = 0 if XS else wait_zero   # ... after the window's last query
            # (qi.fixed - HI + scan_len <= 1 if qi.fixed - HI <= 1 else 0)
            # (each a mux of the transfer of its own phase, ORed with the other phase's
            # transfer: the no-transfer case is 0 in the other phase. A query phase reads no
            # key, so the query's read decides the hash's next last-read flag there)
            # (each case a wire of flip-flops of its own, so that the read's flip-flop is
            # one mux of the key's transfer and an AND of the query's valid behind them, and
            # the synthesis does not build it from the readies' shared wires: four LUT levels
            # from kv_le1 through kv_ready_hold in the iCEBreaker `linear` goal build)
            # The next value in two LUT levels of flip-flops and input wires: `use` holds a
            # used key's transfer (kv_take: kv_ready & use, where s_kv.valid) apart, and each
            # of its cases is one LUT4 (a key phase without a used key's transfer: a dropped
            # key leaves use = 0, so the idle case is 0 there, as the transfer's;
            # kv_ready and q_ready imply their phases):
            #   rd_kv' = Mux(s_kv.valid & kv_take, tx, idle | s_q.valid & q_ready & q_last)
            # with (where each is 0 without room in the value queue after the edge)
            #   tx   = ~s_kv.last & use_next & free after a used key
            #   idle = keys phase & use & free (<= 1: after the edge)
            #   q_last = s_q.last & free after the window's last query
            # (flip-flops: the phase, use, use_next, room_next, kv_le1 / wait_le1)
            free_kv = kv_free_of(wait_le1, KV == HI)   # free after a used key's transfer
            rd_kv_tx = wire("rd_kv_tx", ~self.s_kv.payload.last & use_next & free_kv
                            & room_next)
            rd_kv_idle = wire("rd_kv_idle", keys_free & room_next)
            free_q = kv_free_of(wait_done_q, kv_free_q)  # ... after the window's last query
            if isinstance(free_q, Const):
                free_q = free_q.value
            if isinstance(free_q, Value):       # (a flag: one LUT more, before the query's)
                q_last_ready = wire("rd_kv_q_ready", q_ready_r & free_q)
            else:
                q_last_ready = q_ready_r if free_q else 0
            rd_kv_q = wire("rd_kv_q", qv & q_last_ready & self.s_q.payload.last
                           & room_next)
            kv_take_tx = wire("rd_kv_take", self.s_kv.valid & kv_take)
            rd_kv_d = Mux(kv_take_tx, rd_kv_tx, rd_kv_idle | rd_kv_q)
            # rd_q's next value, as written above:
            #   Mux(q_tx, ~s_q.last & free after a query, queries & free & credit_q)
            #   | kv_tx & s_kv.last & free after a key
            # where credit_q, the credit (of this cycle, see out_credits) or the next read is
            # not the last (~last_d in the query phase, its read the query's), is
            # credit | ~Mux(s_q.valid & rd_q, last_if_read, last). q_ready implies rd_q, the
            # query flags (queries & free) and the credit, and the read after a vector's last
            # is not a last (last_if_read = 0), so with qf = queries & free:
            #   rd_q' = Mux(s_q.valid & rd_q,
            #               (qf & credit | qf & ~last_if_read) & ~(q_ready & ~(~s_q.last & free
            #                                                       after a query)),
            #               qf & credit | qf & ~last | kv_tx & s_kv.last & free after a key)
            # (qf is 0 in the key phase, q_ready and the key's transfer 0 in the query
            # phase): three LUT levels of flip-flops and the input valids, where the hash's
            # last-read flags (wide fan-outs of the hash) are in the second and the query's
            # valid and rd_q in the third
            qf = wire("rd_q_flags", queries & q_free_of(wait_le1, kv_le1))
            qf_credit = wire("rd_q_credit", queries & q_free_of(wait_le1, kv_le1) & credit)
            free_next = q_free_of(wait_zero, kv_free_q)
            q_ends = wire("rd_q_ends", q_ready & ~(~self.s_q.payload.last & free_next))
            rd_q_read = wire("rd_q_read", (qf_credit | (qf & ~hsh.last_if_read)) & ~q_ends)
            kv_flags = wire("rd_q_kv", self.s_kv.valid & self.s_kv.payload.last & kv_ready
                            & q_free_of(wait_le1, kv_free_kv))
            rd_q_hold = wire("rd_q_hold", qf_credit | (qf & ~last) | kv_flags)
            rd_q_d = Mux(qv & rd_q, rd_q_read, rd_q_hold)
            m.d.sync += [rd_kv.eq(rd_kv_d), rd_q.eq(rd_q_d)]
            if held_q:
                # the hash's read of a query, q_held & rd_q, as one flip-flop (its next
                # value: s_q.valid & ~q_ready & rd_q', where rd_q' muxes by this read)
                q_rd = Signal(name="q_rd")
                m.d.sync += q_rd.eq(self.s_q.valid & ~q_ready & Mux(q_rd, rd_q_read, rd_q_hold))
            # the read flags twice: rd_kv and rd_q make the hash's valid (its counters, its
            # one-hot group and its read flags), their twins the core's own reads (the group
            # registers `ahead`, P·w flip-flops per channel, the channels' one-hot groups and
            # the value queue's write), so that no read net, one LUT of an input valid, fans
            # out to both
            # (rd_kv's twin, written ``value ^ twin ^ reg`` as tree.twin, but in the key's
            # transfer, one LUT of two flip-flops, so that its input is two LUT levels too)
            # (the read flags against their expressions of the flags' next values, and
            # keys_free against its flags: :attr:`readies_check`'s bits 4 to 6)
            free_now = kv_free_of(wait_le1, kv_le1)
            rd_kv_ref = Mux(kv_tx, ~self.s_kv.payload.last & use & use_next
                            & kv_free_of(wait_le1, kv_free_kv) & room_next,
                            ~queries & use & free_now & room_next) \
                | (q_tx & self.s_q.payload.last & kv_free_of(wait_done_q, kv_free_q) & room_next)
            q_flags_ref = queries & q_free_of(wait_le1, kv_le1)
            rd_q_ref = Mux(qv, Mux(q_ready, ~self.s_q.payload.last
                                               & q_free_of(wait_zero, kv_free_q),
                                               q_flags_ref & (credit | ~Mux(rd_q, lir, last))),
                           q_flags_ref & (credit | ~last)) \
                | (kv_tx & self.s_kv.payload.last & q_free_of(wait_le1, kv_free_kv))
            checks.append((Cat(keys_free, rd_kv_d, rd_q_d),
                           Cat(~queries & use & free_now, rd_kv_ref, rd_q_ref)))
            rd_kv_c = Signal.like(rd_kv, name="rd_kv_core")
            take_c = wire("rd_kv_take_core", (self.s_kv.valid & kv_take) ^ rd_kv_c ^ rd_kv)
            m.d.sync += rd_kv_c.eq(Mux(take_c, rd_kv_tx, rd_kv_idle | rd_kv_q))
            # (rd_q's twin reads its own output where rd_q's input reads rd_q: the same bits,
            # as both hold the same values, in a logic cone of its own that no merge can
            # identify with rd_q's)
            if held_q:
                # (with q_held, the twin is q_rd's: the core's reads of a query are
                # q_held & rd_q too, written from q_ready's twin; bits 7-8 of
                # :attr:`readies_check` hold both against q_held & rd_q)
                rd_q_c = Signal(name="q_rd_core")
                m.d.sync += rd_q_c.eq(self.s_q.valid & ~q_ready_r
                                      & Mux(rd_q_c, rd_q_read, rd_q_hold))
                q_read_v, hash_q = rd_q_c, q_rd
                checks.append((Cat(q_rd, rd_q_c), Cat(q_held & rd_q, q_held & rd_q)))
            else:
                rd_q_c = Signal.like(rd_q, name="rd_q_core")
                m.d.sync += rd_q_c.eq(Mux(self.s_q.valid & rd_q_c, rd_q_read, rd_q_hold))
                q_read_v = self.s_q.valid & rd_q_c
                hash_q = self.s_q.valid & rd_q
            self.readies_check = tuple(Cat(*c) for c in zip(*checks))
        else:
            m.d.sync += [r.eq(d) for r, d in zip((kv_ready, q_ready), readies(
                queries_d, use_d, wait_done_d, kv_free_d, last_d, room_next, credit_d))]
        kv_used, kv_dropped, q_taken = (Signal(name=n, attrs={"keep": 1} if G > 1 else {})
                                        for n in ("kv_used", "kv_dropped", "q_taken"))
        m.d.comb += [self.s_kv.ready.eq(kv_ready), self.s_q.ready.eq(q_ready),
                     hsh.i.valid.eq(hash_valid)]
        if G > 1:
            m.d.comb += [kv_read.eq(self.s_kv.valid & rd_kv_c),
                         q_read.eq(q_read_v),
                         hash_valid.eq((self.s_kv.valid & rd_kv) | hash_q)]
        if G > 1:
            # (one LUT each, of the input valid and a ready flip-flop: kv_take, kv_drop and
            # q_ready imply their phase. Wires of their own, so that the logic they enable
            # does not absorb their gates into deeper cones)
            for sig, v in ((kv_used, self.s_kv.valid & kv_take),
                           (kv_dropped, self.s_kv.valid & kv_drop),
                           (q_taken, qv & q_ready)):
                m.d.comb += sig.eq(v)
        with m.If(~queries):
            if G == 1:
                m.d.comb += hash_valid.eq(self.s_kv.valid & use & kv_free_of(wait_done, kv_free)
                                          & room)
                m.d.comb += [kv_used.eq(self.s_kv.valid & kv_ready & use),
                             kv_dropped.eq(self.s_kv.valid & kv_ready & ~use)]
            if G > 1:
                # (the hash takes a group of this key, so use & free & room: with one pass
                # (R = 1) every read of a key is a first-pass read, kv_read, one LUT of the
                # key's valid and rd_kv, not the hash's valid (which also decodes the query's
                # read and enables the hash's counters and the group registers); row-folded,
                # hsh.reading, the reads of the first pass)
                m.d.comb += [w_data.eq(vgroup),
                             w_en.eq(hsh.reading if row_folded else kv_read)]
            else:
                m.d.comb += [w_data.eq(self.s_kv.payload.value), w_en.eq(kv_used)]
        with m.Else():
            if G == 1:
                m.d.comb += hash_valid.eq(self.s_q.valid & q_free_of(wait_done, kv_free)
                                          & (credit | ~last))
            if G == 1:
                m.d.comb += q_taken.eq(self.s_q.valid & q_ready)
        m.d.comb += q_in.eq(q_taken)
        with m.If(kv_used | kv_dropped):
            if KV > 1:
                # the next key transfers KV edges later: a dropped one at once when
                # kv_wait is 0, a used one after the hash has read its G (·R) groups
                m.d.sync += kv_wait.eq(Mux(use_next, KV - HI, KV - 1))
                m.d.comb += kv_free_d.eq(Mux(use_next, KV == HI, KV == 1))
                if kv_le1_d is not None:
                    m.d.comb += [kv_le1_d.eq(Mux(use_next, KV - HI <= 1, KV <= 2)),
                                 kv_le2_d.eq(Mux(use_next, KV - HI <= 2, KV <= 3))]
            with m.If(self.s_kv.payload.last):
                m.d.comb += queries_d.eq(1)
        if G > 1:
            # keys_free' = ~queries' & use' & free' (free: wait <= 1 or kv_wait <= 1 after
            # the edge, as the phase's ready reads it): after a used key's transfer, the next
            # key's (no query waits in the key phase: wait stays 0); after the window's last
            # query, the loaded counters'; otherwise the <= 2 flags (the phase and use hold,
            # and a dropped key leaves use = 0)
            le1_after_q = 0 if XS else 1 if wait is None else \
                (qi.fixed - HI + scan_len <= 1 if qi.fixed - HI <= 1 else 0)
            # (by phase, as a used key's transfer is in the key phase and a query's in the
            # query phase, where keys_free' is 0 but for the window's last query: each case
            # one LUT of flip-flops and inputs, then the key's transfer, then the phase)
            free_q1 = kv_free_of(le1_after_q, KV - HI <= 1)
            if isinstance(free_q1, Const):
                free_q1 = free_q1.value
            kf_last = wire("keys_free_last", qv & q_ready_r & self.s_q.payload.last
                           & free_q1)
            kf_key = wire("keys_free_key", ~self.s_kv.payload.last & use_next
                          & kv_free_of(1, KV - HI <= 1))
            kf_hold = wire("keys_free_hold", use & kv_free_of(wait_le2, kv_le2))
            m.d.sync += keys_free.eq(Mux(queries, kf_last, Mux(kv_used, kf_key, kf_hold)))
        scan_q = scan_len               # (scan_len as a query takes it)
        if per:
            # a used key's terms are added an edge later: the step (`grow` of the
            # key's flags) and the add are flip-flops, so that the adder's enable and its
            # operand decode no handshake. Folded, a query takes scan_len at its last read, G >= 2
            # edges after the key's transfer (its reads start after it): one edge later is
            # still in time. The step loads at every edge (no enable: its input is `grow` of
            # the flags `kept` and `block_slot`, flip-flops), so that after a key's transfer
            # it holds `grow` of that key's flags, which change at that same edge
            grow_r = Signal(range(qi.per_key + qi.per_block + qi.per_kept + 1), name="grow_r",
                            reset_less=True)      # (loaded at every edge, read after a key)
            add_r = Signal(name="scan_add")
            m.d.sync += [add_r.eq(kv_used), grow_r.eq(grow)]
            with m.If(add_r):
                m.d.sync += scan_len.eq(scan_len + grow_r)
            if G == 1:
                # unfolded, a query may transfer at the edge after the window's last key,
                # with that key's add pending: it takes `scan_plus`, the scan length with
                # the pending step (a flip-flop loaded at every edge with the scan length
                # after the edge, without the window's reset, plus `grow` of the present
                # flags, the step a key transferring now adds; after a reset add_r is 0),
                # so the key's valid reaches the scan length through no adder and the
                # query's load is one mux of flip-flops before its adder (the default
                # `topk` core's s_kv_tvalid -> scan_len: three LUT levels, two long routes)
                scan_plus = Signal.like(scan_len, name="scan_plus", reset_less=True)
                m.d.sync += scan_plus.eq(Mux(add_r, scan_len + grow_r, scan_len) + grow)
                scan_q = Mux(add_r, scan_plus, scan_len)
        with m.If(kv_used):
            m.d.sync += [count.eq(count + 1), none_yet.eq(0),
                         use_next.eq(count < plan.N - 2 if plan.N > 2 else 0)]
            m.d.comb += use_d.eq(use_next)
            if qi.per_kept:
                m.d.sync += kept.eq(count < plan.k - 1)
            if wz is not None:
                m.d.sync += wz.eq(wz & (grow == 0))
            if block_slot is not None:
                m.d.sync += block_slot.eq(Mux(block_slot == qi.block - 1, 0, block_slot + 1))
        with m.If(kv_dropped):
            m.d.sync += over.eq(1)
        with m.If(q_taken):
            # a folded hash reads a query's G (·R) groups before it takes the beat: it
            # may start HI-1 cycles before the interval is over
            if wait is not None:
                m.d.sync += wait.eq(qi.fixed - HI + scan_q)
                m.d.comb += wait_done_d.eq(qi.fixed - HI + scan_q == 0)
            if wait_le1_d is not None:
                m.d.comb += wait_le2_d.eq(qi.fixed - HI + scan_len <= 2
                                          if qi.fixed - HI <= 2 else 0)
                m.d.comb += wait_le1_d.eq(qi.fixed - HI + scan_len <= 1
                                          if qi.fixed - HI <= 1 else 0)
            if row_folded:               # the value path takes this query for G·R cycles
                m.d.sync += kv_wait.eq(KV - HI)
                m.d.comb += kv_free_d.eq(KV == HI)
                if kv_le1_d is not None:
                    m.d.comb += [kv_le1_d.eq(KV - HI <= 1), kv_le2_d.eq(KV - HI <= 2)]
            with m.If(self.s_q.payload.last):
                m.d.sync += [count.eq(0), none_yet.eq(1), over.eq(0), use_next.eq(plan.N > 1)]
                m.d.comb += [queries_d.eq(0), use_d.eq(1)]
                if XS:
                    m.d.sync += wait.eq((qi.fixed + scan_q) << XS)
                    m.d.comb += wait_done_d.eq(0)
                    if wait_le1_d is not None:         # ((qi.fixed + ...) << XS >= 4)
                        m.d.comb += [wait_le1_d.eq(0), wait_le2_d.eq(0)]
                if per:
                    m.d.sync += scan_len.eq(0)
                if qi.per_kept:
                    m.d.sync += kept.eq(plan.k > 0)
                if wz is not None:
                    m.d.sync += wz.eq(1)
                if block_slot is not None:
                    m.d.sync += block_slot.eq(0)

        # ---- hash -> value path -> divider -> output
        vt = vp.i.payload
        ht = hsh.o.payload
        m.d.comb += [vt.code.eq(ht.code), vt.key.eq(ht.tag.key), vt.first.eq(ht.tag.first),
                     vt.tag.eq(ht.tag.qtag)]
        if G > 1:
            # the value path joins a key's token with its G groups itself, and takes them
            # through a skid buffer: its ready (from the hash's valid, in every mode) then
            # ends at the buffer's flip-flops, not in the queue's pointers, level, its flags'
            # carry and its memory enable (the values wait in the queue for L_H edges or
            # more, so the buffer's edge delays no key)
            m.d.comb += [vp.i.valid.eq(hsh.o.valid), hsh.o.ready.eq(vp.i.ready)]
            m.submodules.value_skid = skid = SkidBuffer(layouts.group(plan))
            m.d.comb += [skid.i.valid.eq(values.r_rdy), skid.i.payload.eq(values.r_data),
                         values.r_en.eq(skid.i.ready)]
            wiring.connect(m, skid.o, vp.v)
        elif direct:
            m.d.comb += [vp.i.valid.eq(hsh.o.valid), hsh.o.ready.eq(vp.i.ready)]
        else:
            m.d.comb += [
                # (the value is always there by then: the queue's 2-edge latency <= the hash's)
                vp.i.valid.eq(hsh.o.valid & (~ht.tag.key | values.r_rdy)),
                hsh.o.ready.eq(vp.i.ready & (~ht.tag.key | values.r_rdy)),
                vt.value.eq(values.r_data),
                values.r_en.eq(vp.i.valid & vp.i.ready & ht.tag.key),
            ]
        # the value path and the divider never wait: the query throttle (q_interval >= the
        # divider's interval) lets a (num, den) enter the divider's pipeline whenever it
        # comes, and the credits (the divider's depth is F) leave its output room
        m.d.comb += [div.i.valid.eq(vp.o.valid), div.i.payload.eq(vp.o.payload),
                     vp.o.ready.eq(1)]
        m.d.comb += [
            self.m_out.valid.eq(div.o.valid), div.o.ready.eq(self.m_out.ready),
            self.m_out.payload.data.eq(div.o.payload.q),
            self.m_out.payload.last.eq(div.o.payload.tag.last),
            self.m_out.payload.user.eq(div.o.payload.tag.user),
        ]
        return m


class AxiStreamCore(wiring.Component):
    """:class:`AttentionCore` with the flat AXI4-Stream ports of SPEC §4: the top that
    ``hamattn gen`` writes. ``clk`` and ``rst`` (synchronous, active high) come from the
    ``sync`` domain.

    Parameters
    ----------
    cfg : :class:`~hamattn.CoreConfig`
        Passed to the :class:`AttentionCore` inside, which it wraps.

    Members
    -------
    s_kv_tdata : :py:`In(2·d·w)`
        The key in bits [d·w-1:0] and its value in bits [2·d·w-1:d·w], element e of each in
        bits [e·w + w-1 : e·w] of its field.
    s_kv_tvalid, s_kv_tlast : :py:`In(1)`; s_kv_tready : :py:`Out(1)`
        Key channel handshake; ``tlast`` on the last key of a window.
    s_q_tdata : :py:`In(d·w)`
        One query.
    s_q_tvalid, s_q_tlast : :py:`In(1)`; s_q_tready : :py:`Out(1)`
        Query channel handshake; ``tlast`` on the last query of a window.
    m_out_tdata : :py:`Out(d·w)`
        The output of one query, in query order.
    m_out_tvalid, m_out_tlast, m_out_tuser : :py:`Out(1)`; m_out_tready : :py:`In(1)`
        Output channel handshake; ``tlast`` copies the query's, ``tuser`` is 1 for every
        output of a window that had more than N keys.

    The same list with each port's role and field layout: :func:`layouts.top_ports` (the
    manifest's ``ports``); latency and intervals as in :class:`AttentionCore`.
    """

    def __init__(self, plan):
        self.plan = plan
        super().__init__(layouts.axi_ports(plan))

    @property
    def latency(self):
        return self.plan.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = AttentionCore(self.plan)
        dw = self.plan.d * self.plan.w
        m.d.comb += [
            core.s_kv.payload.key.eq(self.s_kv_tdata[:dw]),
            core.s_kv.payload.value.eq(self.s_kv_tdata[dw:]),
            core.s_kv.payload.last.eq(self.s_kv_tlast),
            core.s_kv.valid.eq(self.s_kv_tvalid), self.s_kv_tready.eq(core.s_kv.ready),
            core.s_q.payload.query.eq(self.s_q_tdata), core.s_q.payload.last.eq(self.s_q_tlast),
            core.s_q.valid.eq(self.s_q_tvalid), self.s_q_tready.eq(core.s_q.ready),
            self.m_out_tdata.eq(core.m_out.payload.data),
            self.m_out_tlast.eq(core.m_out.payload.last),
            self.m_out_tuser.eq(core.m_out.payload.user),
            self.m_out_tvalid.eq(core.m_out.valid), core.m_out.ready.eq(self.m_out_tready),
        ]
        return m
