"""Rounding division (SPEC §3): rdiv(a, den) = sign(a)·floor((2|a| + den) / (2·den))."""

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .plan import Timing
from .tree import tag_width, tagged

__all__ = ["DividerPlan", "RoundingDivider", "divider_latency"]


def divider_latency(q_bits, groups=1):
    """Rising edges from the edge at which :class:`RoundingDivider` accepts (num, den) to the
    edge at which its result transfers, with the output ready: the accepting edge registers
    the numerators, then each of the ``groups`` groups of lanes takes one edge to form
    2|num|+den, ``q_bits`` restoring steps and one edge to apply the sign; the result
    transfers on the next edge: ``groups·(q_bits + 2) + 1``. It is also the divider's
    interval."""
    return groups * (q_bits + 2) + 1


@dataclass(frozen=True)
class DividerPlan:
    """A :class:`RoundingDivider` of ``elements`` quotients of ``q_bits`` bits, ``lanes`` at
    a time, its numerators ``num_width`` and its denominator ``den_width`` bits wide; with
    ``grouped`` it takes one group of lanes per beat."""

    elements: int
    num_width: int
    den_width: int
    q_bits: int
    lanes: int
    grouped: bool = False

    @property
    def groups(self):
        return -(-self.elements // self.lanes)

    @property
    def latency(self):
        return Timing(divider_latency(self.q_bits, self.groups))

    @property
    def interval(self):
        """One division at a time: the next input is taken as the result leaves."""
        return self.latency

    def component(self, tag_shape=unsigned(0)):
        return RoundingDivider(self.elements, self.num_width, self.den_width, self.q_bits,
                               tag_shape, lanes=self.lanes, grouped=self.grouped)


class RoundingDivider(wiring.Component):
    """``elements`` quotients rounded half away from zero, by shift-and-subtract (no
    multiplier), computed ``lanes`` at a time.

    The quotient is known to fit ``q_bits`` bits as a magnitude (an attention output lies
    between the smallest and the largest value, SPEC §3), so restoring division needs only
    ``q_bits`` steps whatever the width of the numerator: R = 2|a| + den is compared with
    ``(2·den) << i`` for i = q_bits-1 .. 0.

    With ``lanes`` < ``elements`` the numerators are held in a rotating bank of
    G = ceil(elements / lanes) groups and divided one group after the other by ``lanes``
    subtractors (folding, ``--lanes``); the quotients fill an output bank the same way.

    Ports:
      ``i``: stream of ``{num: elements × signed(num_width), den: unsigned(den_width), tag}``
      ``o``: stream of ``{q: elements × signed(q_bits), tag}``

    Grouped input (``grouped=True``, a folded linear core): ``i`` carries one group per beat,
    ``{num: lanes × signed(num_width), den, last: 1, tag}``, groups 0 .. G-1 of a division in
    order, ``last`` on group G-1; ``i.ready`` is always high (the core's query throttle
    guarantees room). The groups go to a memory of G words (block RAM) instead of a register
    bank; group g of the next division may be written once group g of this one was read,
    which the query interval guarantees. The last beat starts the division, with the same
    latency as the whole-vector input.

    Latency: ``G·(q_bits + 2) + 1`` edges (the accepting edge registers num and den; per
    group one edge forms 2|a|+den, ``q_bits`` steps, one applies the sign; then the result
    transfers) from input transfer to output transfer with ``o.ready`` high. Throughput: one
    division per latency (a new input is taken in the cycle the result leaves).
    """

    def __init__(self, elements, num_width, den_width, q_bits, tag_shape=unsigned(0),
                 lanes=None, grouped=False):
        self.elements, self.num_width, self.den_width, self.q_bits = \
            elements, num_width, den_width, q_bits
        self.lanes = elements if lanes is None else lanes
        if not 1 <= self.lanes <= elements:
            raise ValueError(f"lanes = {lanes!r} is not allowed: 1 .. elements = {elements}")
        self.groups = -(-elements // self.lanes)
        self.tag_shape = tag_shape
        self.grouped = grouped
        if grouped:
            fields = {"num": data.ArrayLayout(signed(num_width), self.lanes),
                      "den": unsigned(den_width), "last": 1}
        else:
            fields = {"num": data.ArrayLayout(signed(num_width), elements),
                      "den": unsigned(den_width)}
        super().__init__({
            "i": In(stream.Signature(tagged(fields, tag_shape))),
            "o": Out(stream.Signature(tagged({
                "q": data.ArrayLayout(signed(q_bits), elements)}, tag_shape))),
        })

    @property
    def plan(self):
        return DividerPlan(self.elements, self.num_width, self.den_width, self.q_bits,
                           self.lanes, self.grouped)

    @property
    def latency(self):
        return self.plan.latency

    @property
    def interval(self):
        return self.plan.interval

    def elaborate(self, platform):
        m = Module()
        P, G, E, qb = self.lanes, self.groups, self.elements, self.q_bits
        rw = max(self.num_width, self.den_width) + 1          # 2|a| + den
        dw = self.den_width + qb                              # (2 den) << (q_bits - 1)
        # numerator bank: group 0 is the head; padding lanes of the last group hold 0
        # (grouped: a memory of G words, group g at address g)
        if self.grouped:
            m.submodules.groups = mem = memory.Memory(
                shape=data.ArrayLayout(signed(self.num_width), P), depth=G, init=[])
            wp, rp = mem.write_port(), mem.read_port(transparent_for=())
            waddr = Signal(range(G))
            raddr = Signal(range(G))                 # the group that FORM reads next
            m.d.comb += [self.i.ready.eq(1), wp.addr.eq(waddr), wp.data.eq(self.i.payload.num),
                         wp.en.eq(Mux(self.i.valid, -1, 0)), rp.addr.eq(raddr)]
            with m.If(self.i.valid):
                m.d.sync += waddr.eq(Mux(self.i.payload.last, 0, waddr + 1))
            head = [rp.data[p] for p in range(P)]
        else:
            bank = [[Signal(signed(self.num_width), name=f"num_{g}_{p}") for p in range(P)]
                    for g in range(G)]
            head = bank[0]
        outb = [[Signal(signed(qb), name=f"q_{g}_{p}") for p in range(P)] for g in range(G)]
        neg = Signal(P)
        den = Signal(self.den_width)
        rem = [Signal(rw, name=f"rem{p}") for p in range(P)]
        quo = [Signal(qb, name=f"quo{p}") for p in range(P)]
        dsh = Signal(dw)
        step = Signal(range(qb + 1))
        group = Signal(range(G + 1))
        has_tag = tag_width(self.tag_shape) > 0
        tag = Signal(self.tag_shape) if has_tag else None
        ovalid = Signal()

        def load():
            # whole input: every transfer starts a division; grouped: the last group does
            # (the memory took the others; raddr is 0 outside SIGN)
            if not self.grouped:
                m.d.comb += self.i.ready.eq(1)
            start = (self.i.valid & self.i.payload.last) if self.grouped else self.i.valid
            with m.If(start):
                if not self.grouped:
                    for g in range(G):
                        for p in range(P):
                            e = g * P + p
                            m.d.sync += bank[g][p].eq(self.i.payload.num[e] if e < E else 0)
                m.d.sync += [den.eq(self.i.payload.den), group.eq(0)]
                if has_tag:
                    m.d.sync += tag.eq(self.i.payload.tag)
                m.next = "FORM"

        with m.FSM():
            with m.State("IDLE"):
                load()
            with m.State("FORM"):
                # 2|a| + den of the head group, as den ± 2a: no separate negation
                for p in range(P):
                    a = head[p]
                    m.d.sync += [neg[p].eq(a < 0),
                                 rem[p].eq(Mux(a < 0, den - (a << 1), den + (a << 1)))]
                if G > 1 and not self.grouped:
                    m.d.sync += [bank[g][p].eq(bank[(g + 1) % G][p])
                                 for g in range(G) for p in range(P)]
                m.d.sync += [dsh.eq(den << qb), step.eq(qb - 1)]
                m.d.sync += [q.eq(0) for q in quo]
                m.next = "STEP"
            with m.State("STEP"):
                for p in range(P):
                    # one subtractor per step: its sign is the comparison
                    diff = Signal(signed(max(rw, dw) + 1), name=f"diff{p}")
                    m.d.comb += diff.eq(rem[p] - dsh)
                    take = ~diff[-1]
                    m.d.sync += quo[p].eq(Cat(take, quo[p][:-1]) if qb > 1 else take)
                    with m.If(take):
                        m.d.sync += rem[p].eq(diff)
                m.d.sync += [dsh.eq(dsh >> 1), step.eq(step - 1)]
                with m.If(step == 0):
                    m.next = "SIGN"
            with m.State("SIGN"):
                # the quotients enter the output bank at the tail; after G groups group 0
                # is back at the head
                for p in range(P):
                    m.d.sync += outb[G - 1][p].eq(Mux(neg[p], -quo[p], quo[p]))
                if G > 1:
                    m.d.sync += [outb[g][p].eq(outb[g + 1][p])
                                 for g in range(G - 1) for p in range(P)]
                m.d.sync += group.eq(group + 1)
                if self.grouped and G > 1:
                    m.d.comb += raddr.eq(Mux(group == G - 1, 0, group + 1))
                with m.If(group == G - 1):
                    m.d.sync += ovalid.eq(1)
                    m.next = "DONE"
                with m.Else():
                    m.next = "FORM"
            with m.State("DONE"):
                with m.If(self.o.ready):
                    m.d.sync += ovalid.eq(0)
                    m.next = "IDLE"
                    load()
        # o.valid is a register of its own (not a decode of the FSM state), so the core's
        # m_out_tvalid is a flip-flop output, defined from reset in every simulator
        m.d.comb += self.o.valid.eq(ovalid)
        m.d.comb += [self.o.payload.q[e].eq(outb[e // P][e % P]) for e in range(E)]
        if has_tag:
            m.d.comb += self.o.payload.tag.eq(tag)
        return m
