"""Rounding division (SPEC §3): rdiv(a, den) = sign(a)·floor((2|a| + den) / (2·den))."""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .plan import Timing
from .queue import RegisteredFIFO
from .tree import tag_width, tagged, twin

__all__ = ["DividerPlan", "RoundingDivider", "divider_latency", "divider_interval",
           "divider_steps"]


def divider_latency(q_bits, groups=1, steps=1, grouped=False, serial=False, parts=1,
                    x_bits=0):
    """Rising edges from the edge at which :class:`RoundingDivider` accepts (num, den) (its
    last group when ``grouped``) to the edge at which its result transfers, with the output
    ready: the accepting edge registers num XOR its sign (and the sign: the input register),
    where X = |num| + floor(den/2) has ``x_bits`` > :data:`CHAIN_BITS` bits the next adds
    its low half (the sign stage, :attr:`RoundingDivider.form_split`), the next forms X of
    the first group, ``q_bits`` restoring steps (``steps`` per pipeline stage), one edge
    registers the signed group (``signed_q``: where the last stage takes several steps the
    sign is added there), the result transfers on the next edge: ``q_bits + 4``, plus 1
    where ``x_bits`` > CHAIN_BITS; a whole-vector input of ``groups`` groups
    issues one group per ``steps`` edges, which adds ``(groups - 1)·steps``; ``serial``
    (one stage loads each group itself): ``groups·(q_bits + 1) + 1``. Where each step takes
    ``parts`` edges (:attr:`RoundingDivider.chunks`), every ``q_bits`` and ``steps`` above
    counts ``parts`` edges: ``q_bits·parts + 4 + (x_bits > CHAIN_BITS) +
    (groups - 1)·steps·parts``."""
    if serial:
        return groups * (q_bits + 1) + 1
    return (q_bits * parts + 4 + (x_bits > CHAIN_BITS)
            + (0 if grouped else (groups - 1) * steps * parts))


def divider_interval(groups=1, steps=1, serial=False, parts=1):
    """Edges between divisions that :class:`RoundingDivider` accepts at full rate: a pipeline
    stage takes a group every ``steps`` steps of ``parts`` edges, so ``groups·steps·parts``;
    ``serial``, a group every q_bits + 1 = ``steps`` + 1 edges (the load, then the steps),
    ``groups·(steps + 1)``."""
    return groups * (steps * parts + serial)


#: lanes of the serial divider that share one copy of its held den (:func:`~.tree.twin`)
DEN_LANES = 4

#: deepest divider (``depth``) whose credits are a thermometer code of ``depth`` flip-flops
#: (no adder between the handshakes and the count); deeper ones count with a binary counter
THERMOMETER_DEPTH = 16

#: bits of the longest carry chain of a held den's division step: where the remainder's
#: adder (den_width + 1 bits) is wider, each step is split into ``parts`` =
#: ceil((den_width + 1) / CHAIN_BITS) parts of one edge each (:attr:`RoundingDivider.chunks`)
CHAIN_BITS = 16

#: most remainder bits of all lanes, lanes·(den_width + 1), for which a held den's steps
#: are split (:func:`divider_parts`): the split adds a stage of that many flip-flops and
#: their part selects (its stages take parts edges per step), little with one or two lanes
#: (the iCEBreaker's hsoftmax, P = 1: +133 cells of 5,280), much with many (the ULX3S's,
#: P = 8: +1,059 cells, 97 % of the ECP5-25F, whose routing then cost 20 % of its Fmax)
SPLIT_BITS = 64


def divider_parts(den_width):
    """Edges per restoring step of a held den's stages of several steps: the parts of
    ``den_width + 1`` bits (the remainder's adder) of at most :data:`CHAIN_BITS` bits."""
    return -(-(den_width + 1) // CHAIN_BITS)


def divider_steps(q_bits, groups, interval):
    """Restoring steps per stage of the slowest divider that keeps up with one division per
    ``interval`` edges: the most steps per stage (fewest stages) with ``groups·steps <=
    interval``, balanced over ``ceil(q_bits / steps)`` stages; 1 (one step per stage) when
    ``interval < 2·groups``."""
    most = max(1, min(q_bits, interval // groups))
    return -(-q_bits // -(-q_bits // most))


@dataclass(frozen=True)
class DividerPlan:
    """A :class:`RoundingDivider` of ``elements`` quotients of ``q_bits`` bits, ``lanes`` at
    a time, its numerators ``num_width`` and its denominator ``den_width`` bits wide, with
    ``steps`` restoring steps per pipeline stage; with ``grouped`` it takes one group of
    lanes per beat; ``serial``: one stage of ``lanes`` units loads each group of a held
    input in turn (see :meth:`keeping_up`); ``parts``: edges per step (a held den's steps
    split into parts of the remainder's adder, :attr:`RoundingDivider.chunks`)."""

    elements: int
    num_width: int
    den_width: int
    q_bits: int
    lanes: int
    grouped: bool = False
    steps: int = 1
    held_den: bool = False
    serial: bool = False
    parts: int = 1

    @classmethod
    def keeping_up(cls, elements, num_width, den_width, q_bits, lanes, grouped, interval,
                   gap=None, hold=None):
        """The plan with the most steps per stage (the fewest stages) whose interval is at
        most ``interval``: a divider that never sets the core's query interval. ``gap``
        (None: unknown): the fewest edges from a division's transfer (its last group's when
        grouped) to the next division's first; when it is at least the latency, a division
        is out of the pipeline before the next enters and den is held once for all stages
        (``held_den``). ``hold`` (None: unknown; whole-vector input only): edges after its
        transfer during which the input stays unchanged. Given, the divider is
        ``serial``: one bit-serial stage of the fewest lanes L (G = ceil(elements
        / L) groups, loaded from the held input one after the other, (G-1)·(q_bits+1) <=
        ``hold``) whose interval G·(q_bits+1) is at most ``interval``; it has no form
        stage, and the cost of its lanes falls with G."""
        if hold is not None and not grouped:
            for g in range(elements, 0, -1):
                L = -(-elements // g)
                if -(-elements // L) != g:
                    continue
                if g * (q_bits + 1) <= interval and (g - 1) * (q_bits + 1) <= hold:
                    return cls(elements, num_width, den_width, q_bits, L, False, q_bits,
                               True, True)
        groups = -(-elements // lanes)
        steps = divider_steps(q_bits, groups, interval)
        x_bits = max(num_width, den_width)
        held = gap is not None and gap >= divider_latency(q_bits, groups, steps, grouped,
                                                          x_bits=x_bits)
        if (held and steps > 1 and divider_parts(den_width) > 1
                and lanes * (den_width + 1) <= SPLIT_BITS):
            # a held den's stages of several steps, its remainder wider than CHAIN_BITS
            # (and all lanes' remainders at most SPLIT_BITS):
            # each step in parts of one edge, as many steps per stage as the interval allows
            # (at least 2: the parts are a stage of several steps'), where the gap still
            # covers the latency
            parts = divider_parts(den_width)
            split = divider_steps(q_bits, groups, interval // parts)
            if split > 1 and gap >= divider_latency(q_bits, groups, split, grouped,
                                                    parts=parts, x_bits=x_bits):
                return cls(elements, num_width, den_width, q_bits, lanes, grouped, split,
                           True, False, parts)
        if grouped and not held:
            # divisions that overlap in the pipeline, a group per beat (a folded linear
            # core): one step per stage, whose registers load the previous stage's every
            # edge, so no start select, step counter or operand select stands in front of
            # or behind a step's carry chain (the latency of a grouped input does not
            # depend on the steps; only the interval, G·1, is shorter than needed)
            steps = 1
        return cls(elements, num_width, den_width, q_bits, lanes, grouped, steps, held)

    @property
    def groups(self):
        return -(-self.elements // self.lanes)

    @property
    def latency(self):
        return Timing(divider_latency(self.q_bits, self.groups, self.steps, self.grouped,
                                      self.serial, self.parts,
                                      max(self.num_width, self.den_width)))

    @property
    def interval(self):
        return Timing(divider_interval(self.groups, self.steps, self.serial, self.parts))

    def component(self, tag_shape=unsigned(0), depth=1):
        return RoundingDivider(self.elements, self.num_width, self.den_width, self.q_bits,
                               tag_shape, lanes=self.lanes, grouped=self.grouped,
                               steps=self.steps, depth=depth, held_den=self.held_den,
                               serial=self.serial, parts=self.parts)


class RoundingDivider(wiring.Component):
    """``elements`` quotients rounded half away from zero by a pipeline of shift-and-add
    division steps (non-restoring, no multiplier), ``lanes`` at a time.

    floor((2|a| + den) / (2·den)) = floor(X / den) with X = |a| + floor(den/2). The quotient
    is known to fit ``q_bits`` bits as a magnitude (an attention output lies between the
    smallest and the largest value, SPEC §3), so X < den·2^q_bits and restoring division
    needs ``q_bits`` steps whatever the width of the numerator: the partial remainder starts
    as X >> q_bits (< den) and each step shifts in the next bit of X and subtracts den where
    it can. The remainder is shifted, not the divisor, so every step's subtractor is only
    ``den_width + 1`` bits wide. In a pipeline with stages of several steps
    (:attr:`nonrestoring`) the steps are non-restoring (:meth:`_step`): a failed trial's
    negative remainder is kept and den added back at the next step, which gives the
    restoring quotient bits with one adder per step and no select after it; a stage's start
    select comes after its two adders where divisions overlap (:attr:`selects_after`), in
    front of its one adder where den is held.

    Pipeline (one group of ``lanes`` per stage): an input register (a XOR its sign, and the
    sign, loaded at every edge: the source's flip-flops, in another block, reach one LUT and
    these flip-flops; the sign's fanout and the XOR end there, not in front of a carry
    chain), where X is wider than :data:`CHAIN_BITS` a sign stage (X's low half,
    :attr:`form_split`), a form stage (X, one adder of registers), then
    S = ceil(q_bits / ``steps``) stages of up to ``steps`` steps each (a stage
    takes a new group every ``steps`` edges; ``steps`` = 1: fully pipelined, a group per
    edge; ``steps`` = q_bits: one bit-serial stage), then the sign, into an output register
    of ``elements`` quotients. The stages' registers load every edge (no clock enable); only
    their valid flags and step counters are control (a stage of several steps selects
    between the previous stage's group and its own registers, :attr:`selects_after`).

    With ``lanes`` < ``elements`` (folding, ``--lanes``) a division is G = ceil(elements /
    lanes) groups. Whole-vector input: the accepting edge forms group 0 and keeps groups 1
    .. G-1 in a register bank that issues one group per ``steps`` edges. Grouped input
    (``grouped=True``, a folded linear core): ``i`` carries one group per beat,
    ``{num: lanes × signed(num_width), den, last: 1, tag}``, groups 0 .. G-1 in order,
    ``last`` on group G-1, at least ``steps`` edges apart; each beat enters the pipeline at
    once (no bank). The quotients fill the output register group by group, group g into
    its slot g (a one-hot pointer: each slot's enable drives P quotients).

    ``depth`` (>= 1): divisions the divider holds before it refuses more (accepted and not
    yet taken from ``o``): its output register and a queue of ``depth - 1`` results behind
    it (block RAM from 2 on), bypassed when empty; with one group and depth 2 a second
    register instead, which takes the output register's result as the next lands
    (:attr:`keeps_pair`); grouped, the queue holds groups instead
    (``depth·G`` entries of one group, block RAM, a :class:`~.queue.RegisteredFIFO`), which
    wait there while the output register holds a result not yet taken and go in one per
    edge once it leaves, so the queue is P, not E, quotients wide and its output needs no
    E-wide mux. A division is only accepted (``i.ready``, on its first group when grouped)
    when its result will have a place, so ``o.ready`` never stalls the pipeline; with
    ``depth`` >= latency / interval + 1 a consumer whose ready stays high never throttles the
    input (grouped: a division is held from its first group, (G-1)·steps
    edges before the latency starts).

    Ports:
      ``i``: stream of ``{num: elements × signed(num_width), den: unsigned(den_width), tag}``
      ``o``: stream of ``{q: elements × signed(q_bits), tag}``

    ``parts`` (a held den's stages of several steps only): each step takes ``parts`` edges,
    its remainder's adder split into :attr:`chunks` (:meth:`_split_stage`), so that no
    carry chain is longer than :data:`CHAIN_BITS` (:func:`divider_parts`).

    Latency (:attr:`latency`): ``q_bits·parts + 4`` edges from the input transfer (the last
    group's when grouped) to the output transfer with ``o.ready`` high, plus one where X is
    wider than :data:`CHAIN_BITS` (:attr:`form_split`), plus ``(G - 1)·steps·parts`` for a
    whole-vector input. Interval (:attr:`interval`): ``G·steps·parts`` edges between
    accepted divisions at full rate (a grouped input's beats ``steps·parts`` edges apart).
    """

    def __init__(self, elements, num_width, den_width, q_bits, tag_shape=unsigned(0),
                 lanes=None, grouped=False, steps=1, depth=1, held_den=False, serial=False,
                 parts=1):
        self.elements, self.num_width, self.den_width, self.q_bits = \
            elements, num_width, den_width, q_bits
        self.lanes = elements if lanes is None else lanes
        if not 1 <= self.lanes <= elements:
            raise ValueError(f"lanes = {lanes!r} is not allowed: 1 .. elements = {elements}")
        if not 1 <= steps <= q_bits:
            raise ValueError(f"steps = {steps!r} is not allowed: 1 .. q_bits = {q_bits}")
        if depth < 1:
            raise ValueError(f"depth = {depth!r} is not allowed: at least 1")
        if serial and (grouped or steps != q_bits or not held_den):
            raise ValueError("serial: a whole-vector input, steps = q_bits and held_den")
        self.groups = -(-elements // self.lanes)
        self.steps, self.depth, self.held_den, self.serial = steps, depth, held_den, serial
        self.parts = parts
        if parts != 1 and (not held_den or serial or min(self.stage_steps) < 2
                           or not 1 <= parts <= den_width + 1):
            raise ValueError(f"parts = {parts!r} is not allowed: 1, or 2 .. den_width + 1 "
                             f"= {den_width + 1} with held_den, not serial, and stages of "
                             f"2 steps at least")
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
    def stage_steps(self):
        """Restoring steps of each pipeline stage: ``steps``, the last one the rest."""
        k, qb = self.steps, self.q_bits
        return [min(k, qb - s) for s in range(0, qb, k)]

    @property
    def nonrestoring(self):
        """Non-restoring steps (:meth:`_step`) in a pipeline with a stage of several steps:
        the adder's sum bits are the next remainder, no select by the step's carry out after
        the carry chain (a restoring step's compare fans out to every remainder bit there),
        one LUT level (the operand select and den XOR the remainder's sign) in front of it.
        Elsewhere (one step per stage, where the restoring step has no select in front of
        its adder, or ``serial``) the steps are restoring, which is smaller (its remainder a
        bit narrower, no operand XOR). See :attr:`selects_after`."""
        return not self.serial and any(k > 1 for k in self.stage_steps)

    @property
    def selects_after(self):
        """A stage of several non-restoring steps computes the step of the previous stage's
        group and that of its own registers and selects after the adders (one adder more per
        lane and stage): a pipeline of such stages whose divisions overlap (den not held, a
        folded ``linear`` core, whose divider takes a group every ``steps`` edges without
        pause), where den is the group's own and the select would otherwise stand in front
        of both operands. With a held den (divisions a latency apart, the scan modes) a
        stage selects its remainder in front of its one adder."""
        return self.nonrestoring and not self.held_den

    @property
    def late_bits(self):
        """Each non-restoring step of a held den's stages (:attr:`nonrestoring`, not
        :attr:`selects_after`) shifts the previous step's quotient bit into xq, not its own:
        that bit is the sign of the remainder the step starts from (the operand select of
        its adder, from flip-flops), so no LUT of xq waits for the carry chain. The first
        step's (the form stage's remainder, >= 0) ends at the top of xq and is dropped; the
        last step's quotient bit is the sign of the last stage's remainder, which the output
        takes (:meth:`_output`)."""
        return self.nonrestoring and self.held_den

    @property
    def ready_to_flops(self):
        """The consumer's ``o.ready`` reaches only flip-flops (o.valid's, the credits'), no
        slot enable or queue write: a grouped input with a queue of groups (``depth`` > 1)
        and G > 1 groups. Group 0 of a division, straight from the pipeline, goes into slot 0
        of the output register even where it holds a result (o.valid) not yet taken, whose
        slot 0 moves into ``keep0`` (P·q_bits flip-flops and as many selects in front of
        ``o.payload``); the groups after it wait (in the queue) for o.valid to fall. The
        latency (o.ready high) is unchanged: the result leaves at the edge group 0 of the
        next division arrives at the earliest, and group 1 comes an edge later. Also a
        divider of one group and ``depth`` 2 (:attr:`keeps_pair`; the default config's
        ``topk`` and ``hsoftmax``): a result always lands in the output register, whose
        result not yet taken moves into a second register at that edge."""
        return (self.grouped and self.depth > 1 and self.groups > 1) or self.keeps_pair

    @property
    def keeps_pair(self):
        """One group (G = 1) and ``depth`` 2: no queue, two registers of a whole result. A
        result from the pipeline always goes into the output register (its enable is the
        pipeline's `done`, a flip-flop); the result that register holds, where not yet taken
        (o.valid), moves at that edge into ``keep`` (the same enable), which o shows while it
        holds one (``keep_valid``, a flip-flop: it is older). The credits (two divisions)
        leave no third result. So ``o.ready`` reaches only o.valid's and ``keep_valid``'s
        flip-flops and the credits', no enable; the latency is unchanged."""
        return self.groups == 1 and self.depth == 2

    @property
    def plan(self):
        return DividerPlan(self.elements, self.num_width, self.den_width, self.q_bits,
                           self.lanes, self.grouped, self.steps, self.held_den, self.serial,
                           self.parts)

    @property
    def latency(self):
        return self.plan.latency

    @property
    def interval(self):
        return self.plan.interval

    @property
    def complemented_den(self):
        """Whether den is held or carried complemented (~den, ``den_width`` bits): the
        ``serial`` stage holds ~den (``held_den`` and its copies), and the pipeline's stages
        of restoring steps whose den is their own (not held, not :attr:`nonrestoring`) carry
        ~den (the form stage inverts den as it registers it). Their steps subtract it as
        t + ~den + 1, the +1 a carry in, so that no inverter stands between the registers
        and the carry chain (on the iCE40 a subtract of a register costs a LUT in front of
        the chain, then a route to it: the default ``topk`` core's ``held_den1`` →
        ``serial_r5``, 18.07 ns). (A held den's stages of several steps are
        :attr:`nonrestoring` and XOR it with the remainder's sign.)"""
        return self.serial or not (self.held_den or self.nonrestoring)

    def _stage(self, name, has_count, signed_r=None):
        """The registers of one pipeline stage: control, and per lane the remainder ``r``
        (``signed_r``, default :attr:`nonrestoring`: signed, ``den_width + 1`` bits; else
        ``den_width`` bits, r >= 0),
        ``xq`` (the bits of X not yet shifted in, the quotient bits below them, each XORed
        with the sign of a) and the sign of a."""
        P, dw, qb = self.lanes, self.den_width, self.q_bits
        signed_r = self.nonrestoring if signed_r is None else signed_r
        st = {"valid": Signal(name=f"{name}_valid"), "last": Signal(name=f"{name}_last"),
              "r": [Signal(signed(dw + 1) if signed_r else dw, name=f"{name}_r{p}")
                    for p in range(P)],
              "xq": [Signal(qb, name=f"{name}_xq{p}") for p in range(P)],
              "neg": Signal(P, name=f"{name}_neg")}
        if not self.held_den:
            st["den"] = Signal(dw, name=f"{name}_den")
        if tag_width(self.tag_shape):
            st["tag"] = Signal(self.tag_shape, name=f"{name}_tag")
        if has_count:
            st["count"] = Signal(range(self.steps * self.parts + 1), name=f"{name}_count")
        return st

    def _step(self, m, name, src, den, negs=None):
        """One division step of every lane of ``src`` (a stage's registers or values), t = 2r
        + the next bit of X, and the quotient bit shifted in, XORed with the lane's sign
        (``src["neg"]``; the output adds the sign, :meth:`_output`). ``den``: one value for every lane, or a list of one
        per lane (copies of a held den). Returns (r, xq) of every lane.

        Restoring: subtract ``den`` where t >= den (r in [0, den), ``den_width`` bits).
        Non-restoring (:attr:`nonrestoring`): r' = t - ``den`` where r >= 0, t + ``den``
        where r < 0 (r is then the last trial's remainder, den too small, so r' is the trial
        of the restoring step: r' >= 0 exactly where the restoring step subtracts), the
        quotient bit r' >= 0; one adder whose sum bits are the next r, in [-den, den)
        (``den_width + 1`` bits), no select after it. ``negs`` (non-restoring, one per lane):
        flip-flops holding r < 0 of ``src``'s r, loaded from next values (:meth:`_pipeline`),
        so that the sign's fanout to den's XOR starts at a flip-flop, not at the select of
        r."""
        dw = self.den_width
        out = []
        lane_dens = den if isinstance(den, list) else [den] * len(src["r"])
        for p, (r, xq) in enumerate(zip(src["r"], src["xq"])):
            neg, den = src["neg"][p], lane_dens[p]
            if not self.nonrestoring:
                t = Cat(xq[-1], r)                                   # dw + 1 bits
                # t - den lies in [-den, den) (r < den, so t < 2·den): dw + 1 bits, signed
                diff = Signal(signed(dw + 1), name=f"{name}_diff{p}")
                if self.complemented_den:
                    # (``den`` is ~den: t + ~den + 1 as one adder, the +1 a carry in,
                    # (2t + 1) + (2·~den + 1) halved, modulo 2^(dw + 1))
                    m.d.comb += diff.eq((Cat(Const(1, 1), t)
                                         + Cat(Const(1, 1), den, Const(1, 1))) >> 1)
                else:
                    m.d.comb += diff.eq(t - den)
                take = ~diff[-1]
                rem = Mux(take, diff[:dw], t[:dw])
            else:
                if not r.shape().signed:
                    r = Cat(r, Const(0, 1)).as_signed()    # the form stage's: r >= 0, sub = 1
                sub = ~r[-1] if negs is None else ~negs[p]
                t = Cat(xq[-1], r).as_signed()                       # dw + 2 bits
                # t + (den ^ sub..) + sub as one adder: (2t + sub) + (2(den ^ sub..) + sub),
                # halved (den ^ sub.. is ~den = -den - 1 when subtracting)
                d = Cat(den, Const(0, 2)) ^ sub.replicate(dw + 2)
                rem = Signal(signed(dw + 1), name=f"{name}_r{p}_next")
                m.d.comb += rem.eq((Cat(sub, t).as_signed() + Cat(sub, d).as_signed()) >> 1)
                take = ~rem[-1]
            # the quotient bit enters xq XORed with the lane's sign s (the bits of X above it
            # are never XORed: a quotient bit is never shifted out): q ^ s, and s ? -q : q
            # = (q ^ s) + s, added by the output (a last step that applied the sign put a
            # select after the longest carry chain: iCEBreaker `linear`, 15.5 ns)
            hi = xq[:-1]
            if self.late_bits:
                # (the previous step's quotient bit: r >= 0, the sign of the remainder this
                # step starts from, `sub`)
                out.append((rem, Cat(sub ^ neg, hi)))
            else:
                out.append((rem, Cat(take ^ neg, hi)))
        return out

    def elaborate(self, platform):
        m = Module()
        P, G, E, qb, dw = self.lanes, self.groups, self.elements, self.q_bits, self.den_width
        has_tag = tag_width(self.tag_shape) > 0
        keys = (["last"] if self.held_den else ["den", "last"]) + (["tag"] if has_tag else [])
        transfer = self.i.valid & self.i.ready
        out_tx = self.o.valid & self.o.ready

        # ---- credits: divisions accepted (first group) and not yet taken from o
        mid = Signal()                        # grouped: groups of a division still to come
        first = ~mid if self.grouped else 1
        accept = transfer & first
        if self.depth <= THERMOMETER_DEPTH:
            # (a thermometer code, bit j: more than j divisions held, shifted up at an
            # accept, down at an output transfer, held where both or neither come: each bit
            # one LUT of the accept, the neighbours' bits behind an enable of accept XOR
            # out_tx; no adder and no compare between the handshakes and the flip-flops, and
            # room = pending < depth is its top bit, inverted: i.ready is a LUT of
            # flip-flops, o.ready reaches no input handshake, except at depth 1, where the
            # next division enters as the result leaves)
            held = Signal(self.depth, name="credit_held")
            with m.If(accept ^ out_tx):
                m.d.sync += held.eq(Mux(accept, Cat(Const(1, 1), held[:-1]),
                                        Cat(held[1:], Const(0, 1))))
            room = ~held[-1]
        else:
            pending = Signal(range(self.depth + 1))
            with m.If(accept & ~out_tx):
                m.d.sync += pending.eq(pending + 1)
            with m.Elif(out_tx & ~accept):
                m.d.sync += pending.eq(pending - 1)
            # (pending < depth, a flip-flop written from the compares of the next count)
            room = Signal(init=1, name="credit_room")
            m.d.sync += room.eq(Mux(accept & ~out_tx, pending + 1 < self.depth,
                                    Mux(out_tx & ~accept, pending - 1 < self.depth,
                                        pending < self.depth)))
        credit = room | out_tx if self.depth == 1 else room
        if self.grouped:
            with m.If(transfer):
                m.d.sync += mid.eq(~self.i.payload.last)
        if self.serial:
            prev, prev_done = self._serial(m, transfer, credit, keys)
            prev_done_next = None
        else:
            prev, prev_done, prev_done_next = self._pipeline(m, transfer, accept, credit,
                                                             first, keys)
        self._output(m, prev, prev_done, prev_done_next)
        return m

    def _pipeline(self, m, transfer, accept, credit, first, keys):
        """The input (the bank of a whole-vector input), the form stage and the restoring
        stages. Returns the last stage's registers, its "group done" flag and the value
        that flag takes at the next edge."""
        P, G, E, qb, dw = self.lanes, self.groups, self.elements, self.q_bits, self.den_width
        has_tag = tag_width(self.tag_shape) > 0

        # ---- stage 0 spacing: a group enters every `steps` edges at most
        k = self.steps * self.parts
        gap = Signal(range(k), name="gap") if k > 1 else None
        # (gap == 0, a flip-flop written beside gap from its next value: the input's ready
        # decodes no counter)
        free = Signal(init=1, name="gap_free") if k > 1 else 1

        # ---- the source of the form stage: the input, or the bank's head group
        src_num = [self.i.payload.num[p] for p in range(P)]
        src = {"den": self.i.payload.den,
               "last": self.i.payload.last if self.grouped else (G == 1)}
        if has_tag:
            src["tag"] = self.i.payload.tag
        enter = transfer                     # a group enters the form stage
        if G > 1 and not self.grouped:
            # groups 1 .. G-1 wait in a bank, group 1 at the head; padding lanes hold 0
            bank = [[Signal(signed(self.num_width), name=f"num_{g}_{p}") for p in range(P)]
                    for g in range(1, G)]
            bank_ctl = {"den": Signal(dw, name="bank_den")}
            if has_tag:
                bank_ctl["tag"] = Signal(self.tag_shape, name="bank_tag")
            left = Signal(range(G), name="left")             # groups still in the bank
            issue = (left != 0) & free
            m.d.comb += self.i.ready.eq((left == 0) & free & credit)
            with m.If(transfer):
                for g in range(1, G):
                    for p in range(P):
                        e = g * P + p
                        m.d.sync += bank[g - 1][p].eq(self.i.payload.num[e] if e < E else 0)
                m.d.sync += [bank_ctl[key].eq(src[key]) for key in bank_ctl]
                m.d.sync += left.eq(G - 1)
            with m.Elif(issue):
                m.d.sync += [bank[g][p].eq(bank[g + 1][p] if g + 2 < G else 0)
                             for g in range(G - 1) for p in range(P)]
                m.d.sync += left.eq(left - 1)
            src_num = [Mux(issue, bank[0][p], self.i.payload.num[p]) for p in range(P)]
            src = {key: Mux(issue, bank_ctl[key], src[key]) for key in bank_ctl}
            src["last"] = issue & (left == 1)
            enter = transfer | issue
        else:
            m.d.comb += self.i.ready.eq(free & (credit | ~first))
        if k > 1:
            m.d.sync += [gap.eq(Mux(enter, k - 1, Mux(gap == 0, 0, gap - 1))),
                         free.eq(~enter & (gap <= 1))]

        # ---- input register: the group entering (the input's, or the bank's), registered
        # at every edge (no enable), and the handshake's outcome (a group enters; a division
        # is accepted) beside it: the source's registers (another block, placed elsewhere)
        # reach only these flip-flops, each num through one LUT (a XOR its sign, and the
        # sign: |a| = (a XOR s) + s), so that the sign stage's adder and the held den's
        # enable start from the divider's own flip-flops (one edge of latency)
        in_ax = [Signal(self.num_width - 1, name=f"in_ax{p}", reset_less=True)
                 for p in range(P)]
        in_s = [Signal(name=f"in_s{p}", reset_less=True) for p in range(P)]
        in_src = {key: Signal(self.tag_shape if key == "tag" else Value.cast(v).shape(),
                              name=f"in_{key}", reset_less=True) for key, v in src.items()}
        in_enter, in_accept = Signal(name="in_valid"), Signal(name="in_accept")
        for p, a in enumerate(src_num):
            m.d.sync += [in_ax[p].eq(a.as_unsigned()[:-1] ^ a[-1].replicate(len(a) - 1)),
                         in_s[p].eq(a[-1])]
        m.d.sync += [in_src[key].eq(v) for key, v in src.items()]
        m.d.sync += [in_enter.eq(enter), in_accept.eq(accept)]
        src, enter = in_src, in_enter

        # ---- sign stage (where X = |a| + floor(den/2), W bits, is wider than CHAIN_BITS):
        # the low L = :attr:`form_split` bits of X's adder, behind the input register's XOR,
        # registered with their carry out, the high bits of a XOR its sign, the sign, the
        # group's den and control beside them; the form stage adds the high bits. Else
        # (L = 0) the form stage takes the input register's bits and adds X at once.
        W, L = max(self.num_width, dw), self.form_split
        ax = [Cat(in_ax[p], Const(0, W - len(in_ax[p]))) for p in range(P)]
        if L:
            pre_valid = Signal(name="sign_valid")
            pre = {key: Signal.like(src[key], name=f"sign_{key}") for key in src}
            pre_a = [Signal(W - L, name=f"sign_a{p}") for p in range(P)]
            pre_s = [Signal(name=f"sign_s{p}") for p in range(P)]
            pre_lo = [Signal(L, name=f"sign_lo{p}") for p in range(P)]
            pre_c = [Signal(name=f"sign_c{p}") for p in range(P)]
            m.d.sync += [pre_valid.eq(enter)] + [pre[key].eq(src[key]) for key in src]
            h = Cat(src["den"] >> 1, Const(0, W))[:L]
            for p in range(P):
                neg = in_s[p]
                m.d.sync += [pre_a[p].eq(ax[p][L:]), pre_s[p].eq(neg)]
                # (the sign a carry in: (2·ax + s) + (2·half + s) halved, as in the form)
                lo = Signal(L + 1, name=f"sign_sum{p}")
                m.d.comb += lo.eq((Cat(neg, ax[p][:L]) + Cat(neg, h)) >> 1)
                m.d.sync += [pre_lo[p].eq(lo[:L]), pre_c[p].eq(lo[L])]
        else:
            pre_valid, pre, pre_a, pre_s, pre_lo = enter, src, ax, in_s, [Cat()] * P

        # ---- form: X = |a| + floor(den/2) as den/2 ± a (no separate negation);
        # r = X >> q_bits (< den for a quotient that fits), xq = the low q_bits of X
        form = self._stage("form", False, signed_r=False)          # (r >= 0: no sign bit)
        half = pre["den"] >> 1
        m.d.sync += [form["valid"].eq(pre_valid)]
        m.d.sync += [form[key].eq(~pre[key] if key == "den" and self.complemented_den
                                  else pre[key]) for key in keys]
        form_x = []
        for p, (pa, neg) in enumerate(zip(pre_a, pre_s)):
            # |a| + half as (a XOR its sign) + half + sign: one adder, the sign a carry in,
            # (2·(a ^ s) + s) + (2·half + s) halved (no select after two adders); split,
            # its high bits with the low part's carry as the carry in
            x = Signal(W, name=f"form_x{p}")
            cin = pre_c[p] if L else neg
            hi = (Cat(cin, pa) + Cat(cin, Cat(half, Const(0, W))[L:W])) >> 1
            m.d.comb += x.eq(Cat(pre_lo[p], hi[:W - L]))
            m.d.sync += [form["r"][p].eq(x[qb:]), form["xq"][p].eq(x[:qb]),
                         form["neg"][p].eq(neg)]
            form_x.append(x)

        # ---- restoring stages; a held den is the one of the division that entered last
        # (the previous one has left the pipeline by then, DividerPlan.keeping_up)
        if self.held_den:
            held = Signal(dw, name="held_den")
            with m.If(in_accept):
                m.d.sync += held.eq(src["den"])
        if self.parts > 1:
            # (~den's bits of the split steps' part 0, held beside den: the subtracting adder
            # of part 0 takes them from flip-flops, :meth:`_split_stage`)
            h0 = self.chunks[0][1]
            held_n = Signal(h0, name="held_nden", reset_less=True)
            with m.If(in_accept):
                m.d.sync += held_n.eq(~Cat(src["den"], Const(0, 1))[:h0])
            # the first split stage's part-0 operand of its group's first step (the shifted
            # remainder's low bits: X's next bit, then r), from the form stage's next values
            prev_low = [Cat(x[qb - 1], Cat(x[qb:], Const(0, h0))[:h0 - 1]) for x in form_x]

        def den_of(src):
            return held if self.held_den else src["den"]
        prev, prev_done = form, form["valid"]
        # (the values prev's r and prev_done take at the next edge: the form's r is >= 0)
        prev_neg_next, prev_done_next = [Const(0, 1)] * P, pre_valid
        for s, ks in enumerate(self.stage_steps):
            name = f"stage{s}"
            st = self._stage(name, ks > 1)
            start = prev_done
            # (two steps selected after the adders, the registers written before `done`)
            dual = ks > 1 and self.selects_after
            if self.parts > 1:
                # (prev_done_next: the previous stage's `ending`, or the sign stage's valid,
                # flip-flops; prev_neg_next: its top sum bits, or 0 after the form stage)
                done, done_next, prev_neg_next, prev_low = self._split_stage(
                    m, name, st, prev, start, prev_done_next, prev_neg_next, prev_low, ks,
                    keys, held, held_n)
                prev, prev_done, prev_done_next = st, done, done_next
                continue
            if ks == 1:
                # every edge: the previous stage's group takes one step
                m.d.sync += st["valid"].eq(start)
                from_ = prev
                done = st["valid"]
                done_next = start
            else:
                # the first step from the previous stage, the others from this one's registers
                more = st["valid"] & (st["count"] < ks)
                count = Mux(start, 1, st["count"] + 1)
                m.d.sync += [st["valid"].eq(start | more), st["count"].eq(count)]
                from_ = {key: Mux(start, prev[key], st[key]) for key in keys}
                # (a lane's select of its r and xq by a copy of `start` of its own, a
                # flip-flop loaded from prev_done_next and kept apart: `start` itself drives
                # the control, not P·(den_width + q_bits + 1) selects)
                lane_start = [Signal(name=f"{name}_start{p}", attrs={"keep": 1})
                              for p in range(P)]
                m.d.sync += [x.eq(prev_done_next) for x in lane_start]
                from_.update({key: [Mux(ls, a, b) for ls, a, b in
                                    zip(lane_start, prev[key], st[key])]
                              for key in ("r", "xq")})
                from_["neg"] = Mux(start, prev["neg"], st["neg"])
                if dual:
                    m.d.sync += [st[key].eq(from_[key]) for key in keys + ["neg"]]
                # (valid & count == ks as a flip-flop: the next stage's mux select and the
                # output's enable decode no counter)
                done = Signal(name=f"{name}_done")
                done_next = (start | more) & (count == ks)
                m.d.sync += done.eq(done_next)
            if not dual:
                m.d.sync += [st[key].eq(from_[key]) for key in keys + ["neg"]]
            if dual:
                # both steps, the previous stage's group's and this stage's own, and `start`
                # (a flip-flop with a load per register bit) selects after the adders, not
                # in front of them
                load, own = (self._step(m, f"{name}_{side}", src, den_of(src))
                             for side, src in (("load", prev), ("own", st)))
                steps = [(Mux(start, r0, r1), Mux(start, xq0, xq1))
                         for (r0, xq0), (r1, xq1) in zip(load, own)]
            else:
                negs = None
                if ks > 1 and self.nonrestoring:
                    # r < 0 of the step's r (the previous stage's where it starts, else its
                    # own), a flip-flop per lane loaded from the next values of `start`, the
                    # previous stage's r and this stage's (the adder's sign bit; after the
                    # form stage, whose r >= 0, `start` is a synchronous reset)
                    negs = [Signal(name=f"{name}_neg{p}_r") for p in range(P)]
                steps = self._step(m, name, from_, den_of(from_), negs=negs)
                if negs is not None:
                    m.d.sync += [neg.eq(Mux(prev_done_next, nxt, r[-1])) for neg, nxt, (r, _)
                                 in zip(negs, prev_neg_next, steps)]
            for p, (r, xq) in enumerate(steps):
                m.d.sync += [st["r"][p].eq(r), st["xq"][p].eq(xq)]
            prev, prev_done = st, done
            prev_neg_next = [r[-1] for r, _ in steps]
            prev_done_next = done_next
        return prev, prev_done, prev_done_next

    @property
    def form_split(self):
        """L: the low bits of X = |a| + floor(den/2) (W = max(num_width, den_width) bits)
        added in the sign stage, the others in the form stage: W // 2 where W is wider than
        :data:`CHAIN_BITS`, else 0 (one adder in the form stage). The same registers (the
        low part's sum instead of its operand bits, and its carry), the same latency."""
        W = max(self.num_width, self.den_width)
        return W // 2 if W > CHAIN_BITS else 0

    @property
    def chunks(self):
        """The bit ranges [lo, hi) of the remainder's ``den_width + 1`` bits that the
        ``parts`` parts of a split step add, one per edge, lowest first (as equal as can be,
        the lower ones the wider): each is a carry chain of hi - lo bits (and a carry in),
        whose carry out a flip-flop takes to the next part's carry in."""
        W, n = self.den_width + 1, self.parts
        base, extra = divmod(W, n)
        bounds = [0]
        for j in range(n):
            bounds.append(bounds[-1] + base + (j < extra))
        return list(zip(bounds, bounds[1:]))

    def _split_stage(self, m, name, st, prev, start, prev_ending, prev_tops, prev_low, ks,
                     keys, den, nden):
        """A held den's stage of ``ks`` non-restoring steps, each in ``parts`` edges
        (:attr:`chunks`): the step r' = 2r + x ∓ den is computed modulo 2^(den_width + 1)
        (r' fits that signed width), part j's bits at the j-th edge of the step. Every
        part's adder takes its operands straight from flip-flops and its sums end at
        flip-flops (one carry chain from flip-flops to flip-flops per edge, no LUT in front
        of it or behind it):

        - part 0 adds an operand register ``opa`` (the shifted remainder's low bits: the
          next bit of X, then r's bits), loaded at the edge before the step (the last edge
          of the previous step, or the previous stage's last edge of a group,
          ``prev_ending``: the low bits are final an edge before a step ends, parts >= 2;
          after the form stage, from its next values ``prev_low``), to den and to ~den
          (``nden``, held beside den) + 1 in two adders, each into registers of its own:
          family "a" (den added) and "b" (subtracted), sums and carry out; the step's sign
          select, known only at the end of the edge before, is registered beside them
          (``sel``) and names the family that holds the step's remainder;
        - part j >= 1 adds an operand register ``opa_j`` (the shifted remainder's bits of
          the part: the bit below it, then its bits but the top; this stage's loaded at the
          step's edge j - 1, before the part below is overwritten; in a group's first step
          the previous stage's, loaded at ``start`` (the form stage's registers hold a group
          for that edge only) and held while ``lead``, a copy of ``start`` delayed j - 1
          edges) and the register ``opb`` = den's bits XOR the sign (loaded at every edge,
          the sign holding from the step's first edge to its last) to each family's carry
          from the part below (two adders, two families of registers, a ``sel`` per part
          loaded with them from part 0's).

        The remainder (``st["r"]``) is each part's family chosen by its ``sel``: read by
        the operand registers and the output's register only. The sign select ``sub`` (r >= 0
        of the remainder the step starts from) is a LUT of flip-flops: the top bit of the
        previous stage's remainder in a group's first step (``first``, a flip-flop set at
        ``prev_ending``, cleared at the step's last edge; where both come at once a new
        group starts), else this stage's; no path goes from a carry chain into it
        (``prev_tops`` is not used: the previous stage's remainder is read instead).
        Parts 0 and 1 have their own copy of ``start`` (a flip-flop loaded from
        ``prev_ending``), each part its own registered load enable, so that no control net
        drives every part.
        Returns the stage's "done" flag, ``ending`` (a flip-flop: the stage's last edge of a
        group, the value ``done`` takes next), the top bits of its lanes' remainders and the
        next stage's ``prev_low`` (this stage's registers)."""
        P, dw, n = self.lanes, self.den_width, self.parts
        W = dw + 1
        edges = ks * n
        more = st["valid"] & (st["count"] < edges)
        count = Mux(start, 1, st["count"] + 1)
        m.d.sync += [st["valid"].eq(start | more), st["count"].eq(count)]
        # the group's last edge (count == edges after it), from the count one edge before;
        # `done` is the same an edge later (edges >= 4: `start` sets the count to 1)
        ending = Signal(name=f"{name}_ending")
        done = Signal(name=f"{name}_done")
        m.d.sync += [ending.eq(~start & st["valid"] & (st["count"] == edges - 2)),
                     done.eq(ending)]
        # the part the next edge adds, one-hot (zero when the stage is idle)
        phase = Signal(n, name=f"{name}_phase")
        now = Mux(start, 1, phase)                         # the part this edge adds
        phase_next = Mux(ending, 0, now.rotate_left(1))
        m.d.sync += phase.eq(phase_next)
        # per part: `start` (a copy, kept apart by `keep`) and the load enable, flip-flops
        starts = [Signal(name=f"{name}_start{j}", attrs={"keep": 1}) for j in range(2)]
        load = [Signal(name=f"{name}_load{j}", attrs={"keep": 1}) for j in range(n)]
        m.d.sync += [x.eq(prev_ending) for x in starts]
        # (part 0 loads at the step's first edge, also at `start`; part j >= 1 at its edge
        # of a step only: at `start` its operand comes from the previous stage, `opa`)
        m.d.sync += [load[j].eq((prev_ending if j == 0 else 0) | phase_next[j])
                     for j in range(n)]
        # per part j >= 1: the group's first step at the step's edge j - 1 (a copy of
        # `start` delayed j - 1 edges), where its operand register holds what it loaded
        # from the previous stage at `start`
        lead = [None, starts[1]] if n > 1 else [None]
        for j in range(2, n):
            lead.append(Signal(name=f"{name}_lead{j}"))
            m.d.sync += lead[j].eq(lead[j - 1])
        from_ = {key: Mux(starts[0], prev[key], st[key]) for key in keys}
        from_["neg"] = Mux(starts[0], prev["neg"], st["neg"])
        m.d.sync += [st[key].eq(from_[key]) for key in keys + ["neg"]]
        den_w = Cat(den, Const(0, W - dw))
        h0 = self.chunks[0][1]
        # (the group's first step: its sign select is the previous stage's remainder's, a
        # flip-flop set at `prev_ending` and cleared at the step's last edge, as the old
        # sign register loaded; where both come at once a new group starts)
        first = Signal(name=f"{name}_first")
        m.d.sync += first.eq(prev_ending | (first & ~phase[n - 1]))
        tops, lows = [], []
        for p in range(P):
            r_prev = prev["r"][p]
            if len(r_prev) < W:
                r_prev = Cat(r_prev, Const(0, W - len(r_prev)))   # the form stage's: r >= 0
            # both families of every part, "a" (part 0 added den: the step started from r <
            # 0) and "b" (it subtracted), each registered where its carry chain ends (the
            # sum LUT's own flip-flop); `sel` j: the step's sign select where part j was
            # written (loaded with it), which names the family that holds the remainder
            fam = [[Signal(hi - lo, name=f"{name}_r{p}_{j}{f}", reset_less=True)
                    for j, (lo, hi) in enumerate(self.chunks)] for f in "ab"]
            sels = [Signal(name=f"{name}_sel{p}_{j}", reset_less=True) for j in range(n)]
            r_own = Cat(*(Mux(sels[j], fam[1][j], fam[0][j]) for j in range(n))).as_signed()
            st["r"][p] = r_own
            # r >= 0 of the remainder the step starts from (a LUT of flip-flops: each sign
            # is its family select and two registered top sum bits)
            sub = ~Mux(first, r_prev[-1], r_own[-1])
            xq_from = Mux(starts[0], prev["xq"][p], st["xq"][p])
            # the step's first edge shifts in the previous step's quotient bit (``sub``,
            # :attr:`late_bits`) XORed with the lane's sign; x = xq's top bit went into opa
            with m.If(load[0]):
                m.d.sync += st["xq"][p].eq(Cat(sub ^ from_["neg"][p], xq_from[:-1]))
            # (the operand registers have no reset, so no reset joins their enables: they
            # are loaded before every use)
            # part 0's operand, an edge ahead: (2r + x)'s low bits of the previous stage's
            # group, or of this stage's (its low part and xq are final since the step's first
            # edge)
            opa = Signal(h0, name=f"{name}_opa{p}", reset_less=True)
            with m.If(prev_ending | phase[n - 1]):
                m.d.sync += opa.eq(Mux(prev_ending, prev_low[p],
                                       Cat(st["xq"][p][-1], r_own[:h0 - 1])))
            lows.append(Cat(st["xq"][p][-1], r_own[:h0 - 1]))
            carries = None
            for j, (lo, hi) in enumerate(self.chunks):
                if j == 0:
                    # both adders, den (family a) and ~den + 1 (b), each into its registers;
                    # the sign (known only at this edge's end) selects later, from `sel`
                    add = Signal(h0 + 1, name=f"{name}_add{p}")
                    dif = Signal(h0 + 1, name=f"{name}_dif{p}")
                    m.d.comb += [add.eq(opa + den_w[:h0]),
                                 dif.eq((Cat(Const(1, 1), opa) + Cat(Const(1, 1), nden)) >> 1)]
                    sums = (add, dif)
                    with m.If(load[0]):
                        m.d.sync += sels[0].eq(sub)
                else:
                    # the shifted remainder's bits of the part (the bit below it, then its
                    # bits but the top), an edge ahead, at the step's edge j - 1 (the part
                    # below is overwritten at that edge, this part after it): the previous
                    # stage's remainder in the group's first step, else this stage's
                    # (the previous stage's at `start`, the group's first edge: the form
                    # stage's registers hold its group only then; held through the step)
                    opa_j = Signal(hi - lo, name=f"{name}_opa{p}_{j}", reset_less=True)
                    with m.If(starts[1]):
                        m.d.sync += opa_j.eq(r_prev[lo - 1:hi - 1])
                    with m.Elif(load[j - 1] & ~lead[j]):
                        m.d.sync += opa_j.eq(r_own[lo - 1:hi - 1])
                    # den's bits XOR the sign, registered (the sign holds through the step)
                    opb = Signal(hi - lo, name=f"{name}_opb{p}_{j}", reset_less=True)
                    m.d.sync += opb.eq(den_w[lo:hi] ^ sub.replicate(hi - lo))
                    # one adder per family, each with its family's carry from the part below
                    sums = tuple(Signal(hi - lo + 1, name=f"{name}_sum{p}_{j}{f}")
                                 for f in "ab")
                    m.d.comb += [s.eq((Cat(c, opa_j) + Cat(c, opb)) >> 1)
                                 for s, c in zip(sums, carries)]
                    with m.If(load[j]):
                        m.d.sync += sels[j].eq(sels[0])
                with m.If(load[j]):
                    m.d.sync += [fam[f][j].eq(sums[f][:hi - lo]) for f in range(2)]
                if j + 1 < n:
                    carries = [Signal(name=f"{name}_carry{p}_{j + 1}{f}") for f in "ab"]
                    m.d.sync += [c.eq(s[-1]) for c, s in zip(carries, sums)]
            tops.append(r_own[-1])
        return done, ending, tops, lows

    def _serial(self, m, transfer, credit, keys):
        """One stage of ``lanes`` restoring units for the G groups in turn (``serial``): the
        accepting edge loads X of group 0 from the input, q_bits edges step it, the next
        edge gives it to the output and loads X of group 1 from the input (held by the
        source), and so on. Returns the stage's registers and its "group done" flag."""
        P, G, E, qb, dw = self.lanes, self.groups, self.elements, self.q_bits, self.den_width
        st = self._stage("serial", True)
        busy = Signal(name="serial_busy")
        g = Signal(range(max(G, 2)), name="serial_group")
        done = Signal(name="serial_done")           # (count == q_bits, as a flip-flop)
        # a division may enter at this edge: ~busy | (done & g == G-1), a flip-flop written
        # from its next value (below), so that i.ready is one LUT of flip-flops and the
        # credits, and the handshake reaches only the control's enable
        idle = Signal(init=1, name="serial_idle")
        m.d.comb += self.i.ready.eq(idle & credit)
        # The data registers do not wait for the handshake (only the control flip-flops
        # do): den and the tag load at every edge a division may enter, and X at every edge
        # the stage may load a group (idle, or a group done), from the input as it is (held
        # by the source while its groups load); where no division enters, the stage stays
        # idle and what they loaded is never used. So `transfer` (the credits, the source's
        # valid) reaches only the control, no select in front of the adder.
        # (~den, :attr:`complemented_den`)
        held = Signal(dw, name="held_den")
        with m.If(idle):
            m.d.sync += held.eq(~self.i.payload.den)
            m.d.sync += [st[key].eq(self.i.payload[key]) for key in keys if key != "last"]
        half = self.i.payload.den >> 1
        nxt = Mux(busy & (g != G - 1), g + 1, 0)    # the group the stage may load
        m.d.comb += st["last"].eq(g == G - 1)
        enter = transfer | (done & (g != G - 1))    # a group is loaded at this edge
        with m.If(enter):
            m.d.sync += [g.eq(nxt), st["count"].eq(0), busy.eq(1), done.eq(0)]
        with m.Elif(busy & ~done):
            m.d.sync += [st["count"].eq(st["count"] + 1), done.eq(st["count"] == qb - 1)]
        with m.Elif(done):
            m.d.sync += [busy.eq(0), done.eq(0)]
        # (the next values of ~busy | done, the lanes' load select, and of `idle`: after a
        # load both are 0, after a group's last step (count == q_bits - 1) 1, and `idle`
        # then only for the last group)
        ending = st["count"] == qb - 1
        load_next = ~enter & (done | ~busy | ending)
        m.d.sync += idle.eq(~enter & (done | ~busy | (ending & (g == G - 1))))
        # the load select per lane, a flip-flop each (kept apart): the select of a lane's
        # den_width + q_bits + 1 register bits, not one net of all lanes'
        loads = [Signal(init=1, name=f"serial_load{p}", attrs={"keep": 1}) for p in range(P)]
        m.d.sync += [ld.eq(load_next) for ld in loads]
        # (a copy of held den per DEN_LANES lanes, tree.twin: no one register drives the
        # carry chains of all lanes)
        dens = [held] + [twin(m, held, ~self.i.payload.den, en=idle, name=f"held_den{c}")
                         for c in range(1, -(-P // DEN_LANES))]
        steps = self._step(m, "serial", st, [dens[p // DEN_LANES] for p in range(P)])
        for p in range(P):
            with m.If(loads[p]):
                # lane p of group g: element gP + p (0 beyond E)
                elems = [self.i.payload.num[j * P + p] if j * P + p < E else 0
                         for j in range(G)]
                a = Signal(signed(self.num_width), name=f"serial_a{p}")
                m.d.comb += a.eq(elems[0])
                for j in range(1, G):
                    with m.If(nxt == j):
                        m.d.comb += a.eq(elems[j])
                # |a| + half as (a XOR its sign) + half + sign: one adder with a carry in
                neg = a[-1]
                x = Signal(max(self.num_width, dw), name=f"serial_x{p}")
                m.d.comb += x.eq((a.as_unsigned() ^ neg.replicate(len(a))) + half + neg)
                m.d.sync += [st["r"][p].eq(x[qb:]), st["xq"][p].eq(x[:qb]),
                             st["neg"][p].eq(a < 0)]
            with m.Else():
                r, xq = steps[p]
                m.d.sync += [st["r"][p].eq(r), st["xq"][p].eq(xq)]
        return st, done

    def _output(self, m, prev, prev_done, prev_done_next):
        """The sign of ``prev``'s group (its quotient bits and signs), into the output
        register where ``prev_done`` (``prev_done_next``: its next value, a grouped
        input's), and the output queue."""
        P, G, E, qb = self.lanes, self.groups, self.elements, self.q_bits
        has_tag = tag_width(self.tag_shape) > 0

        # ---- sign, into the output register: group g into its own slot g, chosen by a
        # one-hot pointer, so that each slot's enable drives only its P quotients (no
        # enable of E·q_bits flip-flops on a global buffer behind the handshake); the sign
        # is a carry in added to flip-flops (xq holds q XOR the sign, :meth:`_step`)
        # (no reset: o.valid is low after a reset, and an enable is not ORed with the reset)
        outb = [[Signal(signed(qb), name=f"q_{g}_{p}", reset_less=True) for p in range(P)]
                for g in range(G)]
        ovalid = Signal()
        tag = Signal(self.tag_shape, name="out_tag", reset_less=True) if has_tag else None
        group = Signal(data.StructLayout(
            {"q": data.ArrayLayout(signed(qb), P), "last": 1,
             **({"tag": self.tag_shape} if has_tag else {})}))
        for p in range(P):
            xq, neg = prev["xq"][p], prev["neg"][p]
            if self.late_bits:
                # (the last quotient bit, r >= 0 of the last remainder, below the others; the
                # first step's bit at the top of xq is dropped)
                xq = Cat(~prev["r"][p][-1] ^ neg, xq[:-1])
            m.d.comb += group.q[p].eq(xq + neg)
        m.d.comb += group.last.eq(prev["last"])
        if has_tag:
            m.d.comb += group.tag.eq(prev["tag"])
        if not self.serial:
            # (the signed group, registered: loaded at every edge, no enable; valid an edge
            # after the stage's `done`. The last stage's registers, whose D inputs end its
            # carry chain, then drive only this register, and it the P·q_bits·G flip-flops
            # of the output register's slots and the queue's write data: the placer keeps
            # each near its logic)
            signed_q = Signal(group.shape(), name="signed_q", reset_less=True)
            signed_valid = Signal(name="signed_valid")
            m.d.sync += [signed_q.eq(group), signed_valid.eq(prev_done)]
            group, prev_done, prev_done_next = signed_q, signed_valid, prev_done
        # (`come`: a group is there for its slot; `write0`: it goes into slot 0, where the
        # register may hold a result)
        slot = Signal(G, init=1, name="out_slot")
        slot0_ahead = slot[0]          # (the queue is empty: the next group of the pipeline)
        come = write0 = prev_done
        src = group
        step = None
        # (`keep0`: where a grouped result waits as groups, G > 1, group 0 of the next
        # division coming straight from the pipeline always goes into slot 0; where the
        # output register holds a result (o.valid) its slot 0 is copied into `keep0`, P
        # quotients, which o shows instead of slot 0 while the pointer is past slot 0. So no
        # slot and no queue write waits for o.ready: the consumer's ready reaches only
        # flip-flops (o.valid's and the credits'), :attr:`ready_to_flops`)
        keep0 = None
        if self.ready_to_flops and not self.keeps_pair:
            keep0 = [Signal(signed(qb), name=f"keep0_{p}", reset_less=True) for p in range(P)]
        if self.grouped and self.depth > 1 and not self.keeps_pair:
            # results wait as groups in a queue of depth·G groups (block RAM, as narrow as a
            # group) while the output register holds an untaken result; a group goes there
            # straight from the pipeline when the queue is empty and its slot is free, else
            # through the queue, in order, the queue's groups into an empty register only
            # (the queue's read enable is one LUT of flip-flops, o.ready does not reach it)
            # (its flags are flip-flops: `empty`, no group written and not taken out)
            # The queue has a head (a register of its own behind the memory's read register,
            # RegisteredFIFO's `head`: on the ECP5 synth.outreg moves the read register into
            # the block RAM's output register), so no logic stands behind the block RAM's
            # read; `queue.empty` and `queue.r_rdy` (the head's) are flip-flops.
            # `come` is a flip-flop too, written from the next values of the flags it is
            # made of (prev_done_next, the queue's empty_next and r_rdy_next; a group comes
            # from the pipeline past an empty queue, or from the head), so that the enables
            # of the slots (G·P·q_bits flip-flops) and the pointer's wait for no LUT in front
            # of them.
            # (unchecked: the credits leave the queue room for every group written to it)
            m.submodules.queue = queue = RegisteredFIFO(width=len(group.as_value()),
                                                        depth=self.depth * G, head=True,
                                                        checked=False)
            come = Signal(name="out_come")
            m.d.sync += come.eq((prev_done_next & queue.empty_next) | queue.r_rdy_next)
            if keep0 is not None:
                # a slot is free where the register holds no result; slot 0 also for a
                # group of the pipeline (not the head's), which moves the result's slot 0
                # into keep0: every term a flip-flop. (A group of the pipeline that finds
                # a result in the register past slot 0 goes into the queue, even where the
                # result leaves at that edge: only after a consumer's stall, so the latency
                # with o.ready high is unchanged.)
                write0 = come & ~(queue.r_rdy & ovalid)
                step = [write0] + [come & ~ovalid] * (G - 1)
                m.d.comb += [queue.w_data.eq(group),
                             queue.w_en.eq(prev_done & ~(queue.empty
                                                         & (slot0_ahead | ~ovalid))),
                             queue.r_en.eq(~ovalid)]
            else:
                # (`write0` is one LUT of `come`, the head's flag, the register's and o.ready
                # (`come & ~r_rdy` is a group of the pipeline past an empty queue))
                free = ~ovalid | self.o.ready               # the register is empty or leaves
                write0 = come & Mux(queue.r_rdy, ~ovalid, free)
                m.d.comb += [queue.w_data.eq(group),
                             queue.w_en.eq(prev_done & ~(queue.empty & free)),
                             queue.r_en.eq(~ovalid)]        # (the head goes to an empty register)
            # (a group is written only where the queue is empty or gives its head: the
            # select is the head's flag, a flip-flop)
            src = data.View(group.shape(), Mux(queue.r_rdy, queue.r_data, group.as_value()))
        # The pointer: one-hot, the slot the next group goes to, group 0 first. Without
        # keep0 the register holds a result (o.valid) only with the pointer at slot 0 (it
        # lands as group G-1 is written, and no group is written after it before it leaves),
        # so only slot 0 waits for the register (`write0`): each other slot's enable is one
        # LUT of flip-flops (`come`'s and its pointer bit); the pointer's bits step each on
        # their own, so that only slot 0's and 1's wait for `write0`, the others for `come`.
        # (With keep0 the others wait for ~o.valid too, a flip-flop.)
        if step is None:
            step = [write0] + [come] * (G - 1)              # the pointer leaves slot g
        enable = [Signal(name=f"out_en{g}") for g in range(G)]
        m.d.comb += [enable[g].eq(step[g] & slot[g]) for g in range(G)]
        m.d.sync += [slot[g].eq((slot[g] & ~step[g]) | (slot[g - 1] & step[g - 1]))
                     for g in range(G)]
        for g in range(G):
            with m.If(enable[g]):
                m.d.sync += [outb[g][p].eq(src.q[p]) for p in range(P)]
                if has_tag and g == G - 1:
                    m.d.sync += tag.eq(src.tag)
        if keep0 is not None:
            # (keep0 loads with slot 0, one enable of four flip-flops: where the register
            # holds no result, what it takes is never shown, since o.valid rises only with
            # the pointer at slot 0, which `shown` follows, and leaves slot 0 again only
            # through this enable)
            with m.If(enable[0]):
                m.d.sync += [keep0[p].eq(outb[0][p]) for p in range(P)]
            # (the pointer past slot 0 while o.valid: keep0 holds the result's slot 0; a
            # flip-flop of its own, the pointer's bit 0 inverted, for the P·q_bits selects)
            shown = Signal(name="out_keep0")
            m.d.sync += shown.eq(~((slot[0] & ~step[0]) | (slot[G - 1] & step[G - 1])))
            outb = [[Mux(shown, keep0[p], outb[0][p]) for p in range(P)]] + outb[1:]

        # ---- the result leaves directly, or waits in the queue (depth - 1 entries); a new
        # result lands only when the credits guarantee that the previous one leaves
        result = Signal(self.o.payload.shape())
        m.d.comb += [result.q[e].eq(outb[e // P][e % P]) for e in range(E)]
        if has_tag:
            m.d.comb += result.tag.eq(tag)
        if self.keeps_pair:
            # (the register's result moves into `keep` as the next lands, the same enable;
            # `keep_valid` is set there where the result is not taken at that edge; o shows
            # `keep` while it holds one (o.valid is the register's: keep_valid implies it))
            keep = Signal(self.o.payload.shape(), name="keep", reset_less=True)
            kvalid = Signal(name="keep_valid")
            with m.If(enable[0]):
                m.d.sync += keep.eq(result)
            m.d.sync += kvalid.eq(Mux(come, ovalid & ~(self.o.ready & ~kvalid),
                                      kvalid & ~self.o.ready))
            leave = self.o.ready & ~kvalid
            m.d.comb += [self.o.valid.eq(ovalid),
                         self.o.payload.eq(Mux(kvalid, keep.as_value(), result.as_value()))]
        elif self.depth > 1 and not self.grouped:
            # a memory with a synchronous read (block RAM) from 2 entries on, with one entry
            # to spare: its inner memory refuses a write while full even as its output
            # register drains, and a new result must always find room
            width = len(result.as_value())
            if self.depth > 2:
                m.submodules.queue = queue = SyncFIFOBuffered(width=width, depth=self.depth)
                empty = queue.level == 0
            else:
                m.submodules.queue = queue = _OneEntry(width)
                empty = ~queue.r_rdy
            # results leave in order: the newest (the output register) only past an empty
            # queue; an entry written to the block RAM shows after an edge or two
            leave = queue.w_rdy | (empty & self.o.ready)
            m.d.comb += [
                self.o.valid.eq(Mux(empty, ovalid, queue.r_rdy)),
                self.o.payload.eq(Mux(empty, result.as_value(), queue.r_data)),
                queue.r_en.eq(self.o.ready),
                queue.w_data.eq(result.as_value()),
                queue.w_en.eq(ovalid & ~(empty & self.o.ready)),
            ]
        else:
            leave = self.o.ready
            m.d.comb += [self.o.valid.eq(ovalid), self.o.payload.eq(result)]
        # o.valid comes from registers (not a decode of the pipeline), so the core's
        # m_out_tvalid is defined from reset in every simulator
        # (no enable: an enable would be ORed with the reset. A result lands as group G-1
        # is written: with G > 1 it needs no free register, so `come`)
        m.d.sync += ovalid.eq((((step[G - 1] if keep0 is not None else come) if G > 1
                                else write0) & slot[G - 1]) | (ovalid & ~leave))


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
