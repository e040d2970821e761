"""The attention core: window protocol, hash, value path, divider (SPEC §4)."""

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from . import layouts
from .divider import RoundingDivider
from .hash import HashProjection
from .linear import LinearValuePath
from .scan import ScanValuePath

__all__ = ["AttentionCore", "AxiStreamCore", "value_path"]


def value_path(cfg):
    """The value-path component of ``cfg.mode``."""
    return LinearValuePath(cfg) if cfg.mode == "linear" else ScanValuePath(cfg)


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
    ``cfg.q_interval`` cycles so that every query finds the value path and the divider idle:
    its output then transfers exactly ``cfg.latency`` edges after it (``m_out.ready`` high).
    Any valid/ready pattern gives the same beats. ``m_out.ready`` drives no pipeline enable:
    at most ``cfg.out_credits`` (F) queries are in flight, finished outputs that are not
    taken wait in the divider and an (F-1)-entry queue (bypassed when empty, so the latency
    is unchanged), and
    the hash, value path and divider run without back-pressure from the output, which keeps
    the output handshake off the core's critical path.

    Latency: ``cfg.latency`` = hash + value path + divider, ``A + C·n`` for n used keys.
    Throughput: ``cfg.kv_interval`` (one key per G cycles) and ``cfg.q_interval``.

    Folding (``lanes`` P < d): the hash, the value path and the divider each handle one
    group of P elements per cycle, G = ceil(d/P) cycles per vector; the ports and the bits
    do not change.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        vec = layouts.vector(cfg)
        super().__init__({
            "s_kv": In(stream.Signature(data.StructLayout(
                {"key": vec, "value": vec, "last": 1}))),
            "s_q": In(stream.Signature(data.StructLayout({"query": vec, "last": 1}))),
            "m_out": Out(stream.Signature(layouts.output(cfg))),
        })

    @property
    def latency(self):
        return self.cfg.latency

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.hash = hsh = HashProjection(cfg, layouts.key_tag(cfg))
        m.submodules.value_path = vp = value_path(cfg)
        m.submodules.divider = div = RoundingDivider(
            cfg.d, cfg.num_width, cfg.den_width, cfg.w, layouts.query_tag(), lanes=cfg.lanes,
            grouped=layouts.grouped(cfg))

        # ---- window protocol: keys, then queries
        queries = Signal()                       # phase: 0 keys, 1 queries
        count = Signal(range(cfg.N + 1))         # used keys of this window
        over = Signal()                          # this window had more than N keys
        qi = cfg.q_interval
        wait = Signal(range(qi["fixed"] + qi["per_key"] * cfg.N + 1))
        m.d.sync += wait.eq(Mux(wait == 0, 0, wait - 1))
        per = qi["per_key"]
        # q_interval's per-key part for the keys so far, kept as a running sum (no multiply)
        scan_len = Signal(range(per * cfg.N + 1)) if per else 0
        # keys beyond the N-th are dropped at the pace of the used ones (kv_interval); a
        # linear path that folds its rows takes a vector per G·R cycles, and so does its
        # hash (R passes of T rows): dropped keys and the first query wait for kv_wait too
        G = cfg.groups
        HI = cfg.hash_interval          # cycles the hash reads a vector: G, or G·R
        KV = cfg.kv_interval["fixed"]
        row_folded = cfg.row_blocks > 1
        # (row-folded: the first key after reset also waits KV-1 cycles, while the value path
        # writes zeros to its G·R state words)
        kv_wait = Signal(range(KV), init=KV - 1 if row_folded else 0) if KV > 1 else None
        kv_free = (kv_wait == 0) if KV > 1 else 1
        if KV > 1:
            m.d.sync += kv_wait.eq(Mux(kv_wait == 0, 0, kv_wait - 1))

        # ---- output credits: a query enters only if its output has a place in the queue
        F = cfg.out_credits
        inflight = Signal(range(F + 1))
        credit = Signal()
        q_in = self.s_q.valid & self.s_q.ready
        out_tx = self.m_out.valid & self.m_out.ready
        with m.If(q_in & ~out_tx):
            m.d.sync += inflight.eq(inflight + 1)
        with m.Elif(out_tx & ~q_in):
            m.d.sync += inflight.eq(inflight - 1)
        m.d.comb += credit.eq(inflight < F)

        # ---- a key's value waits beside the hash in a queue (a memory with a synchronous
        # read, block RAM or LUT RAM) instead of riding through every hash pipeline stage:
        # it is taken when the key's code leaves the hash. Unfolded, one d-wide entry per
        # key; folded, one P-wide entry per group, written as the hash reads the key's group
        # (a G:1 mux per lane) and taken by the value path one group per cycle. Depth: every
        # vector the hash can hold, so the queue never throttles a key. (Row-folded, the hash
        # reads a key for G·R cycles, the groups in its first pass, and the value path takes
        # them over the G·R cycles after the code leaves the hash: the keys that overlap are
        # at most 3 + ceil(L_H / (G·R)), G entries each.)
        if G > 1:
            depth = (G * (3 + -(-cfg.hash_latency // HI)) + 2 if row_folded
                     else cfg.hash_latency + 2 * G + 2)
            m.submodules.value_queue = values = SyncFIFOBuffered(
                width=cfg.lanes * cfg.w, depth=depth)
            flat = Value.cast(self.s_kv.payload.value)
            pad = G * cfg.lanes * cfg.w - len(flat)
            if pad:
                flat = Cat(flat, Const(0, pad))
            vgroup = Signal(cfg.lanes * cfg.w)
            with m.Switch(hsh.group):
                for g in range(G):
                    with m.Case(g):
                        m.d.comb += vgroup.eq(flat.word_select(g, cfg.lanes * cfg.w))
        else:
            m.submodules.value_queue = values = SyncFIFOBuffered(
                width=cfg.d * cfg.w, depth=cfg.hash_latency + 2)

        tag = hsh.i.payload.tag
        m.d.comb += [
            tag.key.eq(~queries), tag.first.eq(count == 0),
            tag.qtag.last.eq(self.s_q.payload.last), tag.qtag.user.eq(over),
            hsh.i.payload.query.eq(queries),
            hsh.i.payload.x.eq(Mux(queries, self.s_q.payload.query, self.s_kv.payload.key)),
        ]
        with m.If(~queries):
            use = count < cfg.N
            # a scan value path reads the key memory until the previous window's last query
            # is done: its keys wait here, so that once they flow, they flow one per cycle
            free = (wait == 0) if cfg.mode != "linear" else kv_free if row_folded else 1
            room = values.w_rdy                  # the key's value has a place in the queue
            m.d.comb += [self.s_kv.ready.eq(free & Mux(use, hsh.i.ready & room, kv_free)),
                         hsh.i.valid.eq(self.s_kv.valid & use & free & room)]
            if G > 1:
                # (hsh.reading: the hash takes a group of this key, so use & free & room)
                m.d.comb += [values.w_data.eq(vgroup), values.w_en.eq(hsh.reading)]
            else:
                m.d.comb += [values.w_data.eq(self.s_kv.payload.value),
                             values.w_en.eq(self.s_kv.valid & self.s_kv.ready & use)]
            with m.If(self.s_kv.valid & self.s_kv.ready):
                if KV > 1:
                    # the next key transfers KV edges later: a dropped one at once when
                    # kv_wait is 0, a used one after the hash has read its G (·R) groups
                    use_next = use & (count + 1 < cfg.N)
                    m.d.sync += kv_wait.eq(Mux(use_next, KV - HI, KV - 1))
                with m.If(use):
                    m.d.sync += count.eq(count + 1)
                    if per:
                        m.d.sync += scan_len.eq(scan_len + per)
                with m.Else():
                    m.d.sync += over.eq(1)
                with m.If(self.s_kv.payload.last):
                    m.d.sync += queries.eq(1)
        with m.Else():
            free = (wait == 0) & (kv_free if row_folded else 1)
            # the credit is needed where the query transfers (the hash's last read, i.ready
            # high), not while the hash reads its earlier groups: a query of a full-rate
            # stream then finds it whatever the hash's reading time
            m.d.comb += [self.s_q.ready.eq(hsh.i.ready & free & credit),
                         hsh.i.valid.eq(self.s_q.valid & free & (credit | ~hsh.i.ready))]
            with m.If(self.s_q.valid & self.s_q.ready):
                # a folded hash reads a query's G (·R) groups before it takes the beat: it
                # may start HI-1 cycles before the interval is over
                m.d.sync += wait.eq(qi["fixed"] - HI + scan_len)
                if row_folded:               # the value path takes this query for G·R cycles
                    m.d.sync += kv_wait.eq(KV - HI)
                with m.If(self.s_q.payload.last):
                    m.d.sync += [queries.eq(0), count.eq(0), over.eq(0)]
                    if per:
                        m.d.sync += scan_len.eq(0)

        # ---- hash -> value path -> divider -> output
        vt = vp.i.payload
        ht = hsh.o.payload
        m.d.comb += [vt.code.eq(ht.code), vt.key.eq(ht.tag.key), vt.first.eq(ht.tag.first),
                     vt.tag.eq(ht.tag.qtag)]
        if G > 1:
            # the value path joins a key's token with its G groups itself
            m.d.comb += [vp.i.valid.eq(hsh.o.valid), hsh.o.ready.eq(vp.i.ready),
                         vp.v.valid.eq(values.r_rdy), vp.v.payload.eq(values.r_data),
                         values.r_en.eq(vp.v.ready)]
        else:
            m.d.comb += [
                # (the value is always there by then: the queue's 2-edge latency <= the hash's)
                vp.i.valid.eq(hsh.o.valid & (~ht.tag.key | values.r_rdy)),
                hsh.o.ready.eq(vp.i.ready & (~ht.tag.key | values.r_rdy)),
                vt.value.eq(values.r_data),
                values.r_en.eq(vp.i.valid & vp.i.ready & ht.tag.key),
            ]
        # the value path and the divider never wait: the query throttle (q_interval >= the
        # divider's interval) leaves the divider idle whenever a (num, den) arrives, and the
        # output queue always has room for the divider's result (the credits)
        m.d.comb += [div.i.valid.eq(vp.o.valid), div.i.payload.eq(vp.o.payload),
                     vp.o.ready.eq(1)]
        result = Signal(layouts.output(cfg))
        m.d.comb += [result.data.eq(div.o.payload.q), result.last.eq(div.o.payload.tag.last),
                     result.user.eq(div.o.payload.tag.user)]
        # F results may wait: F - 1 in the queue and one in the divider's output register
        # (the divider holds it only when the queue is full, and then no other query is in
        # flight, so no (num, den) can arrive meanwhile)
        width = len(result.as_value())
        m.submodules.out_queue = queue = (SyncFIFO(width=width, depth=F - 1) if F > 2
                                          else _OneEntry(width))
        direct = ~queue.r_rdy            # the queue is empty: a result may leave at once
        m.d.comb += [
            div.o.ready.eq(queue.w_rdy | (direct & self.m_out.ready)),
            self.m_out.valid.eq(queue.r_rdy | div.o.valid),
            self.m_out.payload.eq(Mux(queue.r_rdy, queue.r_data, result.as_value())),
            queue.r_en.eq(self.m_out.ready),
            queue.w_data.eq(result.as_value()),
            queue.w_en.eq(div.o.valid & ~(direct & self.m_out.ready)),
        ]
        return m


class _OneEntry(Elaboratable):
    """A SyncFIFO of depth 1 (the same port names), without the zero-width address wires
    that SyncFIFO(depth=1) emits: one register and its valid flag; it takes a write only
    when empty, as SyncFIFO does when full."""

    def __init__(self, width):
        self.width = width
        self.w_data, self.w_en, self.w_rdy = Signal(width), Signal(), Signal()
        self.r_data, self.r_en, self.r_rdy = Signal(width), Signal(), Signal()

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.w_rdy.eq(~self.r_rdy)]
        with m.If(self.w_en & self.w_rdy):
            m.d.sync += [self.r_data.eq(self.w_data), self.r_rdy.eq(1)]
        with m.Elif(self.r_en & self.r_rdy):
            m.d.sync += self.r_rdy.eq(0)
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

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__(layouts.axi_ports(cfg))

    @property
    def latency(self):
        return self.cfg.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = AttentionCore(self.cfg)
        dw = self.cfg.d * self.cfg.w
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
