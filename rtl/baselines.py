"""Standard-attention baselines, generated at the core's d, w, N (issue 5).

The area saving of the binary-code core is ``1 - core / baseline`` with both designs built
by the same tools in one run. Each baseline is a real, verified design with the ports and
window protocol of SPEC §4 — ``s_kv_tdata`` = key | value << d·w, ``s_q``, ``m_out`` with
``tlast``/``tuser``, keys beyond N accepted and dropped with ``tuser = 1`` on the window's
outputs, synchronous reset from any state — so the core's harness, drivers and checks apply
unchanged. Their exact integer models, constants and widths live in
:mod:`hamattn.golden.baselines` (:func:`~hamattn.golden.baselines.run_baseline`), which this
module reads; nothing is derived twice.

* :class:`SoftmaxBaseline` (compared with modes ``topk`` and ``hsoftmax``): M (query, key)
  pairs per cycle, as many as the core's scan (``--keys-per-cycle``), each through a w-bit
  dot product (d multipliers, a pipelined adder tree), an exponent ROM, d multipliers
  weight · value and the running sums, then the core's pipelined
  :class:`~hamattn.rtl.divider.RoundingDivider`. Keys and values are held in
  ``amaranth.lib.memory`` like the core's scan path. Two passes per query: the max score,
  then the weights (the max makes every weight <= LUT[0] and the largest >= 1).
* :class:`LinearBaseline` (compared with mode ``linear``): the core's linear-attention
  datapath with w-bit ReLU features instead of ±1 codes: b·d multipliers update S and z,
  one key per cycle as the core; the per-query read-out is folded over as many cycles as the
  core's ``q_interval`` allows, so that both take a query every ``q_interval`` cycles.

:func:`baseline_for` picks the baseline of ``cfg.mode``
(:func:`hamattn.gen.verilog.generate_baseline` writes its Verilog). ``multipliers`` on each component counts its (non-constant) multipliers for the
report; whether they become DSP blocks is left to synthesis.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring

from ..golden.baselines import baseline_kind, linear_spec, softmax_spec
from . import layouts
from .divider import RoundingDivider
from .hash import row_terms
from .tree import Term, adder_tree, delay, register, shape_for

__all__ = ["SoftmaxBaseline", "LinearBaseline", "baseline_for", "DEFAULT_BASELINE_TOP"]

DEFAULT_BASELINE_TOP = "hamattn_baseline"


class _AxiBaseline(wiring.Component):
    """The flat SPEC §4 ports of :class:`~hamattn.rtl.AxiStreamCore`; ``clk``/``rst`` come
    from the ``sync`` domain."""

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__(layouts.axi_ports(cfg))

    @property
    def multipliers(self):
        """Count of (non-constant) multipliers in the design."""
        return self.spec.multipliers

    def _divider(self, m, num_width, den_width):
        """The core's divider, whole vectors, with the steps per pipeline stage and the
        depth of ``spec.divider`` (w steps, depth 1: one bit-serial stage), its output on
        ``m_out``."""
        cfg = self.cfg
        steps, depth, _ = self.spec.divider
        m.submodules.divider = div = RoundingDivider(cfg.d, num_width, den_width, cfg.w,
                                                     layouts.query_tag(), steps=steps,
                                                     depth=depth)
        m.d.comb += [
            self.m_out_tvalid.eq(div.o.valid), div.o.ready.eq(self.m_out_tready),
            self.m_out_tdata.eq(div.o.payload.q.as_value()),
            self.m_out_tlast.eq(div.o.payload.tag.last),
            self.m_out_tuser.eq(div.o.payload.tag.user),
        ]
        return div

    def _vectors(self, m):
        """Views of the key, value and query of the input ports."""
        vec = layouts.vector(self.cfg)
        dw = self.cfg.d * self.cfg.w
        key, value, query = Signal(vec), Signal(vec), Signal(vec)
        m.d.comb += [key.eq(self.s_kv_tdata[:dw]), value.eq(self.s_kv_tdata[dw:]),
                     query.eq(self.s_q_tdata)]
        return key, value, query


def _balanced_sum(xs):
    """Sum of a list of values as a balanced tree of adders (combinational)."""
    xs = list(xs)
    while len(xs) > 1:
        xs = [xs[i] + xs[i + 1] if i + 1 < len(xs) else xs[i] for i in range(0, len(xs), 2)]
    return xs[0]


# =========================================================================== softmax

class SoftmaxBaseline(_AxiBaseline):
    """Standard softmax attention, two passes of M (query, key) pairs per cycle.

    The integer model, the table and every width: :class:`~hamattn.golden.baselines.
    SoftmaxSpec` (``self.spec``); the meaning: :func:`~hamattn.golden.baselines.run_baseline`.
    M = ``spec.keys_per_cycle`` (``lanes``; default the core's ``--keys-per-cycle``), so that
    the baseline compares as many (query, key) pairs per cycle as the core's scan.

    Keys and values are written to two memories of B = ceil(N/M) words of M vectors (key j
    at word j // M, lane j % M: one write lane enabled per key). A query, once its window's
    keys are in, runs over the ceil(n/M) words that hold its n keys:

    * pass 1: word c read in cycle c; ``q[i] * k[i]`` for the M keys (M·d multipliers,
      registered) and M adder trees give M scores ``dot_latency`` edges later; the largest
      score of the used lanes (those of the keys j < n) is kept;
    * pass 2: the same pipeline again; ``min((m - s) >> shift, size-1)`` addresses the
      exponent ROM (M read ports) while the value memory is read; ``weight * v[e]`` (M·d
      multipliers, registered; 0 for an unused lane) is summed over the lanes and added to
      num[e], the weights to den;
    * (num, den) go to the :class:`RoundingDivider` (``spec.divider``: restoring steps
      per stage, so that it keeps up with the engine), whose output is ``m_out``.

    Pass 1 takes ceil(n/M) + ``dot_latency`` cycles, pass 2 ceil(n/M) + ``dot_latency`` + 2,
    so queries are taken every ``spec.query_interval(n)`` = 2·ceil(n/M) + 2·dot_latency + 4
    cycles (or the divider's intake if longer): two cycles per M keys, against one per M for
    the core's ``hsoftmax`` (an online softmax would save the second pass at the cost of
    rescaling the d accumulators, i.e. more multipliers). The engine takes the next query as
    the divider takes this one's (num, den).

    Window protocol as SPEC §4: queries only after the window's last key, one at a time;
    keys of the next window once the engine no longer reads the memories; keys beyond N are
    accepted and dropped, and the window's outputs carry ``tuser = 1``.
    """

    def __init__(self, cfg, lanes=None):
        self.spec = softmax_spec(cfg, lanes)
        super().__init__(cfg)

    def elaborate(self, platform):
        cfg, sp = self.cfg, self.spec
        d, N, M = cfg.d, cfg.N, sp.keys_per_cycle
        B = sp.blocks(N)
        m = Module()
        vec = layouts.vector(cfg)
        row = data.ArrayLayout(vec, M)
        key, value, query = self._vectors(m)

        m.submodules.keys = kmem = memory.Memory(shape=row, depth=B, init=[])
        m.submodules.values = vmem = memory.Memory(shape=row, depth=B, init=[])
        m.submodules.exp_lut = lut = memory.Memory(shape=unsigned(sp.weight_bits),
                                                   depth=sp.lut_size, init=sp.lut)
        kw, vw = kmem.write_port(granularity=1), vmem.write_port(granularity=1)
        kr, vr = kmem.read_port(transparent_for=()), vmem.read_port(transparent_for=())
        lrs = [lut.read_port(transparent_for=()) for _ in range(M)]
        div = self._divider(m, sp.num_width, sp.den_width)

        # ---- window protocol
        queries = Signal()                       # phase: 0 keys, 1 queries
        count = Signal(range(N + 1))             # used keys of this window
        waddr = Signal(range(B + 1))             # count // M
        wlane = Signal(range(M))                 # count % M
        over = Signal()                          # this window had more than N keys
        busy = Signal()                          # the engine reads the memories
        idle = Signal()                          # the engine can take a query
        start = Signal()

        use = count < N
        # each memory has one address (a 1RW SRAM on an ASIC, as the core's value memory):
        # the engine's reads while it runs (`busy`), else the window's next word; keys are
        # written only while the engine is not busy
        kaddr, vaddr = Signal.like(kr.addr), Signal.like(vr.addr)
        m.d.comb += [kw.addr.eq(kaddr), kr.addr.eq(kaddr), vw.addr.eq(vaddr),
                     vr.addr.eq(vaddr)]
        m.d.comb += [kw.data[i].eq(key) for i in range(M)]
        m.d.comb += [vw.data[i].eq(value) for i in range(M)]
        with m.If(~queries):
            m.d.comb += self.s_kv_tready.eq(~use | ~busy)
            with m.If(self.s_kv_tvalid & self.s_kv_tready):
                with m.If(use):
                    lane = Const(1, M) << wlane
                    m.d.comb += [kw.en.eq(lane), vw.en.eq(lane)]
                    m.d.sync += count.eq(count + 1)
                    with m.If(wlane == M - 1):
                        m.d.sync += [wlane.eq(0), waddr.eq(waddr + 1)]
                    with m.Else():
                        m.d.sync += wlane.eq(wlane + 1)
                with m.Else():
                    m.d.sync += over.eq(1)
                with m.If(self.s_kv_tlast):
                    m.d.sync += queries.eq(1)
        with m.Else():
            m.d.comb += [self.s_q_tready.eq(idle), start.eq(self.s_q_tvalid & idle)]
            with m.If(self.s_q_tlast & start):
                m.d.sync += [queries.eq(0), count.eq(0), waddr.eq(0), wlane.eq(0),
                             over.eq(0)]

        # ---- engine registers
        q = Signal(vec)
        tag = Signal(layouts.query_tag())
        nb = Signal(range(B + 1))                # words holding the used keys: ceil(n/M)
        last = Signal(range(M + 1))              # used lanes of the last of them
        L = sp.dot_latency
        cyc = Signal(range(B + L + 3))
        second = Signal()                        # pass 2 (weights) rather than pass 1 (max)
        mfirst = Signal()
        mx = Signal(signed(sp.score_width))
        num = Signal(data.ArrayLayout(signed(sp.num_width), d))
        den = Signal(unsigned(sp.den_width))
        issue = Signal()
        lanes = Signal(M)                        # the used lanes of the word read at cyc
        m.d.comb += lanes.eq(Cat(issue & ((cyc != nb - 1) | (i < last)) for i in range(M)))

        # ---- the dot products: read word c in cycle c, scores in cycle c + L
        m.d.comb += kaddr.eq(Mux(busy, cyc, waddr))
        lo, hi = cfg.vmin * cfg.vmax, cfg.vmin * cfg.vmin
        scores = []
        for lane in range(M):
            terms = []
            for i in range(d):
                p = Signal(shape_for(lo, hi), name=f"dot{lane}_p{i}")
                m.d.sync += p.eq(q[i] * kr.data[lane][i])
                terms.append(Term(p, False, lo, hi))
            root = adder_tree(m, terms, name=f"dot{lane}")
            score = Signal(signed(sp.score_width), name=f"score{lane}")
            m.d.comb += score.eq(root.value)
            scores.append(score)
        max_valid = delay(m, issue & ~second, L, name="max_v")
        acc_valid = delay(m, issue & second, L + 2, name="acc_v")
        score_lanes = delay(m, lanes, L, name="score_lanes")

        # pass 1: the max of the used lanes
        found, best = _lane_max([(score_lanes[i], scores[i]) for i in range(M)])
        with m.If(max_valid & found & (mfirst | (best > mx))):
            m.d.sync += [mx.eq(best), mfirst.eq(0)]

        # pass 2: the table addresses in cycle c + L, weights and values in c + L + 1,
        # products registered (0 for an unused lane), accumulated in c + L + 2
        m.d.comb += vaddr.eq(Mux(busy, delay(m, cyc, L, name="vcyc"), waddr))
        weight_lanes = delay(m, score_lanes, 1, name="weight_lanes")
        wmax = sp.weight_max
        wds, prods = [], [[] for _ in range(d)]
        for lane, (score, lr) in enumerate(zip(scores, lrs)):
            diff = Signal(sp.diff_width, name=f"diff{lane}")
            m.d.comb += diff.eq(mx - score)
            x = diff >> sp.shift
            m.d.comb += lr.addr.eq(Mux(x >= sp.lut_size - 1, sp.lut_size - 1, x))
            used = weight_lanes[lane]
            wd = Signal(unsigned(sp.weight_bits), name=f"wd{lane}")
            m.d.sync += wd.eq(Mux(used, lr.data, 0))
            wds.append(wd)
            for e in range(d):
                p = Signal(shape_for(wmax * cfg.vmin, wmax * cfg.vmax),
                           name=f"wv{lane}_p{e}" if M > 1 else f"wv_p{e}")
                m.d.sync += p.eq(Mux(used, lr.data * vr.data[lane][e], 0))
                prods[e].append(p)
        with m.If(acc_valid):
            m.d.sync += [num[e].eq(num[e] + _balanced_sum(prods[e])) for e in range(d)]
            m.d.sync += den.eq(den + _balanced_sum(wds))

        # ---- engine control
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                with m.If(start):
                    m.d.sync += [q.eq(query), tag.last.eq(self.s_q_tlast), tag.user.eq(over),
                                 nb.eq(waddr + (wlane != 0)),
                                 last.eq(Mux(wlane == 0, M, wlane)),
                                 cyc.eq(0), second.eq(0), mfirst.eq(1)]
                    m.next = "PASS"
            with m.State("PASS"):
                m.d.comb += [busy.eq(1), issue.eq(cyc < nb)]
                m.d.sync += cyc.eq(cyc + 1)
                with m.If(~second & (cyc == nb + (L - 1))):
                    m.d.sync += [second.eq(1), cyc.eq(0), den.eq(0)]
                    m.d.sync += [num[e].eq(0) for e in range(d)]
                with m.If(second & (cyc == nb + (L + 1))):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += div.i.valid.eq(1)
                with m.If(div.i.ready):
                    m.next = "IDLE"
        m.d.comb += [div.i.payload.num.eq(num), div.i.payload.den.eq(den),
                     div.i.payload.tag.eq(tag)]
        return m


def _lane_max(lanes):
    """(any used, the largest score of the used lanes) of a list of (used, score) pairs, as
    a balanced tree of comparators (combinational; a tie keeps either, they are equal)."""
    while len(lanes) > 1:
        nxt = []
        for i in range(0, len(lanes) - 1, 2):
            (ua, sa), (ub, sb) = lanes[i], lanes[i + 1]
            take_b = ub & (~ua | (sb > sa))
            nxt.append((ua | ub, Mux(take_b, sb, sa)))
        if len(lanes) % 2:
            nxt.append(lanes[-1])
        lanes = nxt
    return lanes[0]


# =========================================================================== linear

class LinearBaseline(_AxiBaseline):
    """Linear attention with w-bit real-valued features, at the core's key and query rate.

    The integer model, the feature matrix and every width: :class:`~hamattn.golden.
    baselines.LinearSpec` (``self.spec``); the meaning: :func:`~hamattn.golden.baselines.
    run_baseline`. ``features``: ``"dense"`` (a w-bit seeded matrix, default) or ``"hash"``
    (the core's own projection).

    Keys and queries go in window order through one pipeline: an input register, the
    constant projection ``M x`` as canonical-signed-digit adder trees (one level per
    register), and a register holding ``phi = min(max(y - beta, 0) >> shift, 2^(w-1)-1)``
    (b features of w-1 bits). Then:

    * a key: ``phi[t] * v[e]`` for every t, e — b·d multipliers, registered — and the next
      cycle ``S[t,e] += ...``, ``z[t] += phi[t]``: one key per cycle, as the unfolded core.
      Where the core takes a key every F = ``spec.key_fold`` > 1 cycles (folded), the key's
      features and value are held (state KEY) for F - 1 cycles of ``spec.key_rows`` rows
      each (key_rows·d multipliers), one key every F cycles, as the core.
    * a query: the read-out ``num[e] = sum_t phi_q[t] S[t,e]``, ``den = sum_t phi_q[t] z[t] +
      1`` is **folded**: ``group`` features per cycle over ``readout_cycles`` cycles, through
      group·d + group multipliers (the rows are picked by multiplexers, the query's features
      shift by ``group`` each cycle). ``group`` is the smallest that keeps the engine's
      occupancy ``readout_cycles + 3`` within the core's ``q_interval`` or the interval of
      its bit-serial divider (w + 2), whichever is longer — so the baseline takes a query as
      often as the core does where its divider allows, with
      the multipliers a parallel read-out (b·(d+1)) would leave idle most cycles removed.
      The window's last query clears S and z as it leaves the engine.

    Unlike the core, which holds the next window's keys at ``s_kv`` until its last query is
    done, the keys enter the feature pipeline at once and wait there (``feature_latency``
    of them) while the last read-out finishes, so the first keys of a window that follows
    a query immediately may pause; a window that finds the engine idle takes one key per
    cycle. Outputs are the same either way; only the key timing differs.
    """

    def __init__(self, cfg, features="dense"):
        self.spec = linear_spec(cfg, features)
        super().__init__(cfg)

    def _features(self, m, x, M, beta, en, name):
        """phi of the input register ``x`` through the rows of M: (list of b values)."""
        cfg, sp = self.cfg, self.spec
        phis = []
        for t in range(cfg.b):
            terms = [Term(x[i].as_signed() << s if s else x[i].as_signed(), sg < 0,
                          cfg.vmin << s, cfg.vmax << s)
                     for i, s, sg in row_terms(M[t])]
            root = adder_tree(m, terms, en=en, depth=sp.proj_depth, name=f"{name}{t}")
            y = Signal(signed(sp.y_width), name=f"{name}_y{t}")
            m.d.comb += y.eq((-root.value if root.neg else root.value) - beta[t])
            r = y >> sp.shift
            phis.append(Mux(y < 0, 0, Mux(r > sp.phi_max, sp.phi_max, r)))
        return phis

    def elaborate(self, platform):
        cfg, sp = self.cfg, self.spec
        b, d, N = cfg.b, cfg.d, cfg.N
        G, R = sp.group, sp.readout_cycles
        m = Module()
        vec = layouts.vector(cfg)
        key, value, query = self._vectors(m)
        div = self._divider(m, sp.num_width, sp.den_width)

        # ---- the shared feature pipeline, advancing when its output is empty or taken
        en = Signal()
        fo_valid = Signal()
        take = Signal()
        m.d.comb += en.eq(~fo_valid | take)
        in_valid = Signal()

        # ---- window protocol (as the core, without its query throttle)
        queries = Signal()
        count = Signal(range(N + 1))
        over = Signal()
        qtag = Signal(layouts.query_tag())
        m.d.comb += [qtag.last.eq(self.s_q_tlast), qtag.user.eq(over)]
        with m.If(~queries):
            use = count < N
            m.d.comb += [self.s_kv_tready.eq(Mux(use, en, 1)),
                         in_valid.eq(self.s_kv_tvalid & use)]
            with m.If(self.s_kv_tvalid & self.s_kv_tready):
                with m.If(use):
                    m.d.sync += count.eq(count + 1)
                with m.Else():
                    m.d.sync += over.eq(1)
                with m.If(self.s_kv_tlast):
                    m.d.sync += queries.eq(1)
        with m.Else():
            m.d.comb += [self.s_q_tready.eq(en), in_valid.eq(self.s_q_tvalid)]
            with m.If(self.s_q_tvalid & en & self.s_q_tlast):
                m.d.sync += [queries.eq(0), count.eq(0), over.eq(0)]

        # stage 1: input register
        x = Signal(vec)
        is_key = Signal()
        register(m, x, Mux(queries, query, key), en)
        register(m, is_key, ~queries, en)
        side = Cat(value.as_value(), qtag.as_value())
        side_r = Signal(len(side))
        register(m, side_r, side, en)
        # trees, then the phi register
        phis = self._features(m, x, sp.M, sp.beta, en, "fk")
        key_d = delay(m, is_key, sp.proj_depth, en=en, name="key")
        if sp.asymmetric:
            phq = self._features(m, x, sp.Mq, sp.betaq, en, "fq")
            phis = [Mux(key_d, a, c) for a, c in zip(phis, phq)]
        phi = [Signal(unsigned(sp.phi_width), name=f"phi{t}") for t in range(b)]
        for t in range(b):
            register(m, phi[t], phis[t], en)
        fo_key = delay(m, key_d, 1, en=en, name="fo_key")
        fo_side = delay(m, side_r, sp.proj_depth + 1, en=en, name="side")
        m.d.comb += fo_valid.eq(delay(m, in_valid, sp.feature_latency, en=en, name="valid"))
        fo_value = Signal(vec)
        fo_tag = Signal(layouts.query_tag())
        m.d.comb += Cat(fo_value.as_value(), fo_tag.as_value()).eq(fo_side)

        # ---- engine
        S = [[Signal(signed(sp.S_width), name=f"S_{t}_{e}") for e in range(d)]
             for t in range(b)]
        z = [Signal(unsigned(sp.z_width), name=f"z_{t}") for t in range(b)]
        idle = Signal()
        clear = Signal()
        take_key = fo_valid & fo_key & idle
        take_q = Signal()
        m.d.comb += [take_q.eq(fo_valid & ~fo_key & idle), take.eq(take_key | take_q)]

        # key: key_rows·d multipliers, registered, then accumulated into those rows
        pmax = sp.phi_max
        KG, KR = sp.key_rows, sp.key_cycles
        kp = [[Signal(shape_for(pmax * cfg.vmin, pmax * cfg.vmax), name=f"kp_{g}_{e}")
               for e in range(d)] for g in range(KG)]
        kz = [Signal(unsigned(sp.phi_width), name=f"kz_{g}") for g in range(KG)]
        kv = Signal()
        keying = Signal()                       # a folded key update is under way
        kr = Signal(range(max(KR, 1)))          # its block of KG rows
        kblk = Signal(range(max(KR, 1)))
        kphi = [Signal(unsigned(sp.phi_width), name=f"kphi{t}") for t in range(b)]
        kval = Signal(vec)
        if KR == 0:                             # one key per cycle: every row at once
            m.d.sync += kv.eq(take_key)
            for t in range(b):
                m.d.sync += [kp[t][e].eq(phi[t] * fo_value[e]) for e in range(d)]
                m.d.sync += kz[t].eq(phi[t])
        else:                                   # held, KG rows per cycle for KR cycles
            m.d.sync += [kv.eq(keying), kblk.eq(kr)]
            zero_phi = Const(0, unsigned(sp.phi_width))
            for g in range(KG):
                ph = Array([kphi[t] if t < b else zero_phi
                            for t in (r_ * KG + g for r_ in range(KR))])[kr]
                m.d.sync += [kp[g][e].eq(ph * kval[e]) for e in range(d)]
                m.d.sync += kz[g].eq(ph)
        with m.If(clear):
            m.d.sync += [s.eq(0) for row in S for s in row] + [s.eq(0) for s in z]
        with m.Elif(kv):
            for t in range(b):
                with m.If(kblk == t // KG if KR else 1):
                    m.d.sync += [S[t][e].eq(S[t][e] + kp[t % KG][e]) for e in range(d)]
                    m.d.sync += z[t].eq(z[t] + kz[t % KG])

        # query: group features per cycle
        qphi = [Signal(unsigned(sp.phi_width), name=f"qphi{t}") for t in range(b)]
        tag = Signal(layouts.query_tag())
        r = Signal(range(R))
        reading = Signal()
        qp = [[Signal(shape_for(pmax * sp.S_lo, pmax * sp.S_hi), name=f"qp_{g}_{e}")
               for e in range(d)] for g in range(G)]
        qz = [Signal(unsigned(sp.phi_width + sp.z_width), name=f"qz_{g}") for g in range(G)]
        qv = Signal()
        num = Signal(data.ArrayLayout(signed(sp.num_width), d))
        den = Signal(unsigned(sp.den_width))
        m.d.sync += qv.eq(reading)
        zero_s = Const(0, signed(sp.S_width))
        zero_z = Const(0, unsigned(sp.z_width))
        for g in range(G):
            rows = [r_ * G + g for r_ in range(R)]
            zsel = Array([z[t] if t < b else zero_z for t in rows])[r]
            m.d.sync += qz[g].eq(qphi[g] * zsel)
            for e in range(d):
                ssel = Array([S[t][e] if t < b else zero_s for t in rows])[r]
                m.d.sync += qp[g][e].eq(qphi[g] * ssel)
        with m.If(qv):
            m.d.sync += [num[e].eq(num[e] + _balanced_sum(qp[g][e] for g in range(G)))
                         for e in range(d)]
            m.d.sync += den.eq(den + _balanced_sum(qz))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                with m.If(take_q):
                    m.d.sync += [qphi[t].eq(phi[t]) for t in range(b)]
                    m.d.sync += [tag.eq(fo_tag), r.eq(0), den.eq(1)]
                    m.d.sync += [num[e].eq(0) for e in range(d)]
                    m.next = "READ"
                if KR:
                    with m.If(take_key):
                        m.d.sync += [kphi[t].eq(phi[t]) for t in range(b)]
                        m.d.sync += [kval.eq(fo_value), kr.eq(0)]
                        m.next = "KEY"
            if KR:
                with m.State("KEY"):
                    m.d.comb += keying.eq(1)
                    m.d.sync += kr.eq(kr + 1)
                    with m.If(kr == KR - 1):
                        m.next = "IDLE"
            with m.State("READ"):
                m.d.comb += reading.eq(1)
                m.d.sync += [qphi[t].eq(qphi[t + G] if t + G < b else 0) for t in range(b)]
                m.d.sync += r.eq(r + 1)
                with m.If(r == R - 1):
                    m.next = "FLUSH"
            with m.State("FLUSH"):
                m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += div.i.valid.eq(1)
                with m.If(div.i.ready):
                    m.d.comb += clear.eq(tag.last)
                    m.next = "IDLE"
        m.d.comb += [div.i.payload.num.eq(num), div.i.payload.den.eq(den),
                     div.i.payload.tag.eq(tag)]
        return m


# =========================================================================== entry points

def baseline_for(cfg, features="dense"):
    """The baseline the core of ``cfg`` is compared with: :class:`LinearBaseline` for mode
    ``linear``, :class:`SoftmaxBaseline` for ``topk`` and ``hsoftmax``."""
    if baseline_kind(cfg) == "linear":
        return LinearBaseline(cfg, features)
    return SoftmaxBaseline(cfg)
