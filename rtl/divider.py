"""Rounding division (SPEC §3): rdiv(a, den) = sign(a)·floor((2|a| + den) / (2·den))."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import divider_latency
from .tree import tag_width, tagged

__all__ = ["RoundingDivider"]


class RoundingDivider(wiring.Component):
    """``lanes`` quotients rounded half away from zero, by shift-and-subtract (no multiplier).

    The quotient is known to fit ``q_bits`` bits as a magnitude (an attention output lies
    between the smallest and the largest value, SPEC §3), so restoring division needs only
    ``q_bits`` steps whatever the width of the numerator: R = 2|a| + den is compared with
    ``(2·den) << i`` for i = q_bits-1 .. 0.

    Ports:
      ``i``: stream of ``{num: lanes × signed(num_width), den: unsigned(den_width), tag}``
      ``o``: stream of ``{q: lanes × signed(q_bits), tag}``

    Latency: ``q_bits + 3`` edges (|a| and sign; 2|a|+den; q_bits steps; apply the sign)
    from input transfer to output transfer with ``o.ready`` high. Throughput: one division
    every ``q_bits + 3`` cycles (a new input is taken in the cycle the result leaves).
    """

    def __init__(self, lanes, num_width, den_width, q_bits, tag_shape=unsigned(0)):
        self.lanes, self.num_width, self.den_width, self.q_bits = lanes, num_width, den_width, q_bits
        self.tag_shape = tag_shape
        super().__init__({
            "i": In(stream.Signature(tagged({
                "num": data.ArrayLayout(signed(num_width), lanes),
                "den": unsigned(den_width)}, tag_shape))),
            "o": Out(stream.Signature(tagged({
                "q": data.ArrayLayout(signed(q_bits), lanes)}, tag_shape))),
        })

    @property
    def latency(self):
        return divider_latency(self.q_bits)

    @property
    def interval(self):
        return self.latency

    def elaborate(self, platform):
        m = Module()
        L, qb = self.lanes, self.q_bits
        rw = max(self.num_width, self.den_width) + 1          # 2|a| + den
        dw = self.den_width + qb                              # (2 den) << (q_bits - 1)
        mag = [Signal(self.num_width, name=f"mag{e}") for e in range(L)]
        neg = Signal(L)
        den = Signal(self.den_width)
        rem = [Signal(rw, name=f"rem{e}") for e in range(L)]
        quo = [Signal(qb, name=f"quo{e}") for e in range(L)]
        dsh = Signal(dw)
        step = Signal(range(qb + 1))
        has_tag = tag_width(self.tag_shape) > 0
        tag = Signal(self.tag_shape) if has_tag else None
        out = Signal(data.ArrayLayout(signed(qb), L))
        ovalid = Signal()

        def load():
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                for e in range(L):
                    a = self.i.payload.num[e]
                    m.d.sync += [mag[e].eq(Mux(a < 0, -a, a)), neg[e].eq(a < 0)]
                m.d.sync += den.eq(self.i.payload.den)
                if has_tag:
                    m.d.sync += tag.eq(self.i.payload.tag)
                m.next = "FORM"

        with m.FSM():
            with m.State("IDLE"):
                load()
            with m.State("FORM"):
                m.d.sync += [rem[e].eq((mag[e] << 1) + den) for e in range(L)]
                m.d.sync += [dsh.eq(den << qb), step.eq(qb - 1)]
                m.d.sync += [q.eq(0) for q in quo]
                m.next = "STEP"
            with m.State("STEP"):
                for e in range(L):
                    # one subtractor per step: its sign is the comparison
                    diff = Signal(signed(max(rw, dw) + 1), name=f"diff{e}")
                    m.d.comb += diff.eq(rem[e] - dsh)
                    take = ~diff[-1]
                    m.d.sync += quo[e].eq(Cat(take, quo[e][:-1]) if qb > 1 else take)
                    with m.If(take):
                        m.d.sync += rem[e].eq(diff)
                m.d.sync += [dsh.eq(dsh >> 1), step.eq(step - 1)]
                with m.If(step == 0):
                    m.next = "SIGN"
            with m.State("SIGN"):
                for e in range(L):
                    m.d.sync += out[e].eq(Mux(neg[e], -quo[e], quo[e]))
                m.d.sync += ovalid.eq(1)
                m.next = "DONE"
            with m.State("DONE"):
                with m.If(self.o.ready):
                    m.d.sync += ovalid.eq(0)
                    m.next = "IDLE"
                    load()
        # o.valid is a register of its own (not a decode of the FSM state), so the core's
        # m_out_tvalid is a flip-flop output, defined from reset in every simulator
        m.d.comb += [self.o.valid.eq(ovalid), self.o.payload.q.eq(out)]
        if has_tag:
            m.d.comb += self.o.payload.tag.eq(tag)
        return m

