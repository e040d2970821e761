"""Linear value path (SPEC §3, mode ``linear``): the EcoFormer kernel, accumulate-only."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import csd_digits
from . import layouts
from .tree import Term, adder_tree, delay, register

__all__ = ["LinearValuePath"]


class LinearValuePath(wiring.Component):
    """State S[t,e], z[t], V[e], n updated per key with additions and subtractions only;
    per query, num[e] and den read out by add/subtract trees.

    With s = 2c - 1, a key updates ``S[t,e] += s[t]·v[e]``, ``z[t] += s[t]``, ``V[e] += v[e]``
    and ``n += 1``; the window's last query clears the state as it reads it. A query q reads

        num[e] = sum_t s_q[t]·S[t,e] + (b+1)·V[e],   den = sum_t s_q[t]·z[t] + (b+1)·n

    as ``sum_t (c_q[t] ? S[t,e] : ~S[t,e]) + zeros(c_q) + CSD terms of (b+1)·V[e]``, since
    ``~S = -S - 1``: every operand is added, none negated, and (b+1)· is shifts.

    Ports:
      ``i``: stream of :func:`layouts.token` (keys and queries in window order)
      ``o``: stream of :func:`layouts.weighted_sum`, one per query

    Latency (query): ``cfg.readout_latency`` = 1 + ceil(log2(b + |CSD(b+1)|)) edges.
    Throughput: one key or one query per cycle.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(layouts.token(cfg))),
            "o": Out(stream.Signature(layouts.weighted_sum(cfg))),
        })

    @property
    def latency(self):
        return self.cfg.readout_latency

    def elaborate(self, platform):
        cfg = self.cfg
        b, d = cfg.b, cfg.d
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        p = self.i.payload
        take = self.i.valid & en

        S = [[Signal(signed(cfg.S_width), name=f"S_{t}_{e}") for e in range(d)]
             for t in range(b)]
        z = [Signal(signed(cfg.z_width), name=f"z_{t}") for t in range(b)]
        V = [Signal(signed(cfg.V_width), name=f"V_{e}") for e in range(d)]
        n = Signal(cfg.key_count_width)

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
        depth = cfg.readout_latency - 1
        smax = cfg.N << (cfg.w - 1)
        bp1 = csd_digits(b + 1)

        def scaled(x, lo, hi):          # CSD terms of (b+1)·x
            return [Term(x << s if s else x, sg < 0, lo << s, hi << s) for s, sg in bp1]

        def masked(x, t):
            return Mux(p.code[t], x, ~x)

        zeros = adder_tree(m, [Term(~p.code[t], False, 0, 1) for t in range(b)],
                           en=en, depth=depth, name="zeros")
        num = Signal(data.ArrayLayout(signed(cfg.num_width), d))
        for e in range(d):
            terms = [Term(masked(S[t][e], t), False, -smax - 1, smax) for t in range(b)]
            terms += scaled(V[e], cfg.N * cfg.vmin, cfg.N * cfg.vmax)
            root = adder_tree(m, terms, en=en, depth=depth, name=f"num{e}")
            register(m, num[e], (zeros.value - root.value) if root.neg
                     else (root.value + zeros.value), en)
        den_terms = [Term(masked(z[t], t), False, -cfg.N - 1, cfg.N) for t in range(b)]
        den_terms += scaled(n, 0, cfg.N)
        root = adder_tree(m, den_terms, en=en, depth=depth, name="den")
        den = Signal(unsigned(cfg.den_width))
        register(m, den, (zeros.value - root.value) if root.neg
                 else (root.value + zeros.value), en)

        valid = delay(m, take & ~p.key, cfg.readout_latency, en=en, name="valid")
        tag = delay(m, p.tag.as_value(), cfg.readout_latency, en=en, name="tag")
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.num.eq(num),
                     self.o.payload.den.eq(den), self.o.payload.tag.eq(tag)]
        return m
