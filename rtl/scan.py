"""Value paths that scan the window's stored keys (SPEC §3, modes ``topk`` and ``hsoftmax``)."""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from . import layouts
from .hamming import HammingDistance
from .tree import delay

__all__ = ["ScanValuePath", "TopkValuePath", "HsoftmaxValuePath"]


class ScanValuePath(wiring.Component):
    """Keys' codes and values held in memory; each query scans them through one
    :class:`HammingDistance` and adds the chosen (``topk``) or shifted (``hsoftmax``) values.

    A key is written at address n (0 for the first key of a window). A query runs passes over
    addresses 0..n-1, one key per cycle: the code memory is read at j, the distance comes out
    of the popcount tree ``hamming_latency`` cycles later, aligned with a read of the value
    memory issued as late. A pass takes ``n + hamming_latency + 1`` cycles.

    ``topk``: pass 1 fills a histogram of the b+1 possible distances; a walk over its bins
    (b+1 cycles) finds the cut distance h* and how many keys at h* are kept (the lowest
    indices first); pass 2 adds v_j for H_j < h* and for the first ``need`` keys with
    H_j = h*. num = that sum, den = min(k, n).

    ``hsoftmax``: one pass adds ``v_j << (s[b] - s[H_j])`` to num and ``1 << (s[b]-s[H_j])``
    to den: shifts, no multiplier.

    Ports:
      ``i``: stream of :func:`layouts.token`; ``o``: stream of :func:`layouts.weighted_sum`

    Latency (query, ``o.ready`` high): ``cfg.engine_timing`` = topk ``2n + 2(L_H + 1) + b + 2``,
    hsoftmax ``n + L_H + 2`` edges, L_H = ``cfg.hamming_latency``. A key takes one cycle;
    one query at a time (``i.ready`` only when idle).
    """

    def __init__(self, cfg):
        if cfg.mode not in ("topk", "hsoftmax"):
            raise ValueError(f"ScanValuePath serves modes topk and hsoftmax, not {cfg.mode!r}")
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(layouts.token(cfg))),
            "o": Out(stream.Signature(layouts.weighted_sum(cfg))),
        })

    @property
    def latency(self):
        return self.cfg.engine_timing

    def elaborate(self, platform):
        cfg = self.cfg
        b, d, N = cfg.b, cfg.d, cfg.N
        topk = cfg.mode == "topk"
        m = Module()
        p = self.i.payload

        m.submodules.codes = codes = memory.Memory(shape=unsigned(b), depth=N, init=[])
        m.submodules.values = values = memory.Memory(shape=layouts.vector(cfg), depth=N,
                                                     init=[])
        wc, wv = codes.write_port(), values.write_port()
        rc, rv = codes.read_port(transparent_for=()), values.read_port(transparent_for=())
        m.submodules.hamming = ham = HammingDistance(b, tree=cfg.popcount)
        m.d.comb += ham.o.ready.eq(1)
        L = ham.latency

        n = Signal(range(N + 1))
        cq = Signal(b)
        tag = Signal(layouts.query_tag())
        cyc = Signal(range(N + L + 2))            # cycle within a pass
        acc = Signal(data.ArrayLayout(signed(cfg.num_width), d))
        den = Signal(unsigned(cfg.den_width))

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

        if topk:
            kk = Signal(range(N + 1))
            hist = [Signal(range(N + 1), name=f"hist{i}") for i in range(b + 1)]
            cum = Signal(range(N + 1))
            hbin = Signal(range(b + 2))
            found = Signal()
            hstar = Signal(range(b + 1))
            need = Signal(range(N + 1))
            taken = Signal(range(N + 1))
            second = Signal()            # pass 2 (accumulate) rather than pass 1 (histogram)
            with m.If(act & ~second):
                for i in range(b + 1):
                    with m.If(h == i):
                        m.d.sync += hist[i].eq(hist[i] + 1)
            sel = (h < hstar) | ((h == hstar) & (taken < need))
            with m.If(act & second & sel):
                m.d.sync += [acc[e].eq(acc[e] + v[e]) for e in range(d)]
                with m.If(h == hstar):
                    m.d.sync += taken.eq(taken + 1)
        else:
            table = Array(Const(s, range(33)) for s in cfg.weight_shifts)
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
                        m.d.sync += [kk.eq(Mux(n < cfg.k, n, cfg.k)), second.eq(0)]
                        m.d.sync += [x.eq(0) for x in hist]
                    else:
                        m.d.sync += den.eq(0)
                    m.next = "PASS"
            with m.State("PASS"):
                m.d.comb += [in_pass.eq(1), issuing.eq(cyc < n)]
                m.d.sync += cyc.eq(cyc + 1)
                with m.If(pass_end):
                    if topk:
                        with m.If(second):
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += [cum.eq(0), hbin.eq(0), found.eq(0)]
                            m.next = "THRESH"
                    else:
                        m.next = "DONE"
            if topk:
                with m.State("THRESH"):
                    # walk the bins: shift the histogram down one bin per cycle
                    nxt = cum + hist[0]
                    m.d.sync += [hist[i].eq(hist[i + 1]) for i in range(b)]
                    m.d.sync += [cum.eq(nxt), hbin.eq(hbin + 1)]
                    with m.If(~found & (nxt >= kk)):
                        m.d.sync += [found.eq(1), hstar.eq(hbin), need.eq(kk - cum)]
                    with m.If(hbin == b):
                        m.d.sync += [second.eq(1), taken.eq(0)]
                        start_pass()
                        m.next = "PASS"
            with m.State("DONE"):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    m.next = "IDLE"

        m.d.comb += [self.o.payload.num.eq(acc), self.o.payload.tag.eq(tag),
                     self.o.payload.den.eq(kk if topk else den)]
        return m


TopkValuePath = HsoftmaxValuePath = ScanValuePath
