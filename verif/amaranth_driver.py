"""Drive :class:`AxiStreamCore` in the Amaranth simulator, cycle by cycle.

Three independent sources/sinks: the key/value source offers every key beat of every window
in order, the query source every query beat, the output sink takes beats; each asserts
valid (ready) on a cycle with its own probability from a seeded generator: the cycle-stepped
models of :mod:`.axis`, as in the cocotb bench. The core alone enforces the window order.
Returns an :class:`~hamattn.verif.scenario.Observed`.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from ..rtl import AxiStreamCore
from .axis import Draws, Sink, Source
from .scenario import Observed, kv_stream, q_stream, unpack_vector

__all__ = ["simulate", "run_clocked"]


def simulate(cfg, windows, *, seed=0, p_kv=1.0, p_q=1.0, p_out=1.0, max_cycles=None,
             prelude=None, dut=None):
    """Run ``windows`` through the core and return what was observed.

    ``prelude = (windows, cycles)``: first offer the beats of these windows (typically one
    left unfinished) for ``cycles`` cycles, discarding every output, then hold ``rst`` high
    for two cycles with every valid low; ``windows`` then start from a clean core.
    ``dut``: another component with the same SPEC §4 ports, e.g. a baseline (default: a new
    :class:`AxiStreamCore` of ``cfg``)."""
    dut = AxiStreamCore(cfg.plan) if dut is None else dut
    rng = np.random.default_rng(seed)
    kv = kv_stream(cfg, windows)
    qs = q_stream(cfg, windows)
    n_out = sum(len(w.queries) for w in windows)
    if max_cycles is None:
        per_q = cfg.at(cfg.latency, cfg.N) + cfg.at(cfg.q_interval, cfg.N)
        slow = 1 / min(p_kv, p_q, p_out)
        per_kv = cfg.at(cfg.kv_interval, 0)         # G (·R) cycles per key when folded
        max_cycles = int((len(kv) * per_kv + n_out * per_q + 50) * slow * 3) + 200
    draw = Draws(rng)       # one sequence of draws for the prelude and the three channels

    async def run_prelude(ctx):
        pkv, pq = kv_stream(cfg, prelude[0]), q_stream(cfg, prelude[0])
        i = j = 0
        for _ in range(prelude[1]):
            ctx.set(dut.s_kv_tvalid, i < len(pkv) and draw() < p_kv)
            ctx.set(dut.s_q_tvalid, j < len(pq) and draw() < p_q)
            if i < len(pkv):
                ctx.set(dut.s_kv_tdata, pkv[i][0])
                ctx.set(dut.s_kv_tlast, pkv[i][1])
            if j < len(pq):
                ctx.set(dut.s_q_tdata, pq[j][0])
                ctx.set(dut.s_q_tlast, pq[j][1])
            ctx.set(dut.m_out_tready, draw() < p_out)
            i += int(ctx.get(dut.s_kv_tvalid) and ctx.get(dut.s_kv_tready))
            j += int(ctx.get(dut.s_q_tvalid) and ctx.get(dut.s_q_tready))
            await ctx.tick()
        for sig in (dut.s_kv_tvalid, dut.s_q_tvalid, dut.m_out_tready):
            ctx.set(sig, 0)
        ctx.set(cd.rst, 1)
        await ctx.tick()
        await ctx.tick()
        ctx.set(cd.rst, 0)

    # the AXI4-Stream models of axis.py, drawn in the order key source, query source, sink
    src_kv, src_q, sink = Source(kv, p_kv, draw), Source(qs, p_q, draw), Sink(p_out, draw)
    sources = ((src_kv, dut.s_kv_tdata, dut.s_kv_tlast, dut.s_kv_tvalid, dut.s_kv_tready),
               (src_q, dut.s_q_tdata, dut.s_q_tlast, dut.s_q_tvalid, dut.s_q_tready))

    def read(ctx):
        return (unpack_vector(ctx.get(dut.m_out_tdata), cfg.d, cfg.w),
                ctx.get(dut.m_out_tlast), ctx.get(dut.m_out_tuser))

    async def bench(ctx):
        if prelude is not None:
            await run_prelude(ctx)
        for cycle in range(max_cycles):
            if len(sink.beats) == n_out:
                break
            for src, *_ in sources:
                src.step()
            ctx.set(dut.m_out_tready, sink.step())
            for src, tdata, tlast, tvalid, _ in sources:
                if src.valid:
                    ctx.set(tdata, src.beat[0])
                    ctx.set(tlast, src.beat[1])
                ctx.set(tvalid, src.valid)
            sink.handshake(ctx.get(dut.m_out_tvalid), cycle, lambda: read(ctx))
            for src, *_, tready in sources:
                src.handshake(ctx.get(tready), cycle)
            await ctx.tick()
        else:
            raise AssertionError(f"timeout after {max_cycles} cycles: {len(sink.beats)} of "
                                 f"{n_out} outputs, {src_kv.index}/{len(kv)} keys, "
                                 f"{src_q.index}/{len(qs)} queries accepted")

    cd = ClockDomain("sync")
    run_clocked(dut, bench, domain=cd)
    return Observed(src_kv.cycles, src_q.cycles, sink.cycles, sink.beats, sink.valid_cycles)


def run_clocked(dut, bench, *, domain=None):
    """Run the testbench ``bench`` (an async function of the simulator context) on ``dut``
    in a module whose ``sync`` domain is ``domain`` (a new one if None), clocked at 100 MHz
    of simulated time, until ``bench`` returns."""
    top = Module()
    top.domains.sync = domain if domain is not None else ClockDomain("sync")
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
