"""Hash projection (SPEC §2): c[t] = (sum_i W[t,i] x[i] >= θ[t]), multiplier-free."""

from amaranth.hdl import Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .tree import Term, adder_tree, delay, register, tag_width, tagged

__all__ = ["HashProjection"]


class HashProjection(wiring.Component):
    """Binary hash of a d-vector with constant weights baked into the logic.

    Each row t is an adder tree over the canonical-signed-digit terms ``±x[i] << s`` of its
    weights (a ternary or sign weight is one ``±x[i]``; zero weights cost nothing), the sign
    of every node carried beside it so that no operand is ever negated. One adder level per
    pipeline stage; rows shallower than the deepest are padded with registers.

    When the config gives queries their own hash (``Wq``, ``θq``), both sets of trees read
    the same input register and ``i.payload.query`` picks the code.

    Ports:
      ``i``: stream of ``{x: d × signed(w), query: 1, tag: tag_shape}``
      ``o``: stream of ``{code: unsigned(b), tag: tag_shape}``; ``tag`` passes unchanged.

    Latency: ``cfg.hash_latency`` = 2 + ceil(log2(most terms in a row)) edges from input
    transfer to output transfer. Throughput: one vector per cycle. The pipeline advances as
    a whole when its output is empty or taken (``i.ready = ~o.valid | o.ready``).
    """

    def __init__(self, cfg, tag_shape=unsigned(0)):
        self.cfg = cfg
        self.tag_shape = tag_shape
        super().__init__({
            "i": In(stream.Signature(tagged(
                {"x": data.ArrayLayout(signed(cfg.w), cfg.d), "query": 1}, tag_shape))),
            "o": Out(stream.Signature(tagged({"code": unsigned(cfg.b)}, tag_shape))),
        })

    @property
    def latency(self):
        return self.cfg.hash_latency

    def _codes(self, m, x, W, theta, en, depth, name):
        cfg = self.cfg
        bits = []
        for t in range(cfg.b):
            terms = [Term(x[i].as_signed() << s if s else x[i].as_signed(), sg < 0,
                          cfg.vmin << s, cfg.vmax << s)
                     for i, s, sg in cfg.hash_row_terms(W[t])]
            root = adder_tree(m, terms, en=en, depth=depth, name=f"{name}{t}")
            th = int(theta[t])
            lo, hi = root.contribution_range
            if lo >= th or hi < th:
                # y >= θ (or y < θ) for every input, e.g. a row of zeros or of only
                # positive weights with θ <= 0: the bit is a constant
                bits.append(Const(int(lo >= th), 1))
            else:
                bits.append((root.value <= -th) if root.neg else (root.value >= th))
        return bits

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]

        # stage 1: input register
        x = Signal(data.ArrayLayout(signed(cfg.w), cfg.d))
        query = Signal()
        register(m, x, self.i.payload.x, en)
        register(m, query, self.i.payload.query, en)

        depth = cfg.hash_latency - 2
        codes_k = self._codes(m, x, cfg.W, cfg.theta, en, depth, "k")
        query_d = delay(m, query, depth, en=en, name="query")
        code = Signal(cfg.b)
        if cfg.asymmetric:
            codes_q = self._codes(m, x, cfg.Wq, cfg.thetaq, en, depth, "q")
            sel = [Mux(query_d, cq, ck) for ck, cq in zip(codes_k, codes_q)]
        else:
            sel = codes_k
        # final stage: compare to θ and register the code
        for t, s in enumerate(sel):
            register(m, code[t], s, en)

        valid = delay(m, self.i.valid, cfg.hash_latency, en=en, name="valid")
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.code.eq(code)]
        if tag_width(self.tag_shape):
            tag = delay(m, Value.cast(self.i.payload.tag), cfg.hash_latency, en=en, name="tag")
            m.d.comb += self.o.payload.tag.eq(tag)
        return m
