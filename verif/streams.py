"""A stream source and sink for one-in, one-out components in the Amaranth simulator.

:func:`run_stream` offers a list of payloads on ``dut.i`` and collects ``dut.o`` payloads,
with valid and ready raised at random (seeded) so every component is tested under arbitrary
back-pressure; it also records the cycles of every transfer so tests can check latency. The
source and sink are the cycle-stepped models of :mod:`.axis` (those of every bench).
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from .axis import Draws, Sink, Source

__all__ = ["run_stream", "StreamRun"]


class StreamRun:
    def __init__(self):
        self.outputs = []
        self.in_cycles = []
        self.out_cycles = []


def run_stream(dut, payloads, *, n_out=None, seed=0, p_in=1.0, p_out=1.0, max_cycles=None,
               convert=lambda c: c, side=None, writes=None):
    """Offer ``payloads`` (values accepted by ``ctx.set`` for ``dut.i.payload``) and return
    a :class:`StreamRun` with ``n_out`` (default: as many as inputs) outputs, each passed
    through ``convert`` (a ``data.Const`` in, anything comparable out). ``side``: payloads
    of a second input stream ``dut.v``, offered in order with the same valid probability.
    ``writes``: beside each payload, None or a payload of ``dut.w`` (always ready), valid in
    the cycle that payload transfers."""
    draw = Draws(np.random.default_rng(seed))
    n_out = len(payloads) if n_out is None else n_out
    max_cycles = max_cycles or 200 + 50 * (len(payloads) + 10) / min(p_in, p_out)
    run = StreamRun()
    # the AXI4-Stream models of axis.py, drawn in the order input, side input, output
    src, side_src, sink = Source(payloads, p_in, draw), Source(side or [], p_in, draw), \
        Sink(p_out, draw)

    async def bench(ctx):
        for cycle in range(int(max_cycles)):
            if len(sink.beats) == n_out and src.done and side_src.done:
                run.outputs, run.in_cycles, run.out_cycles = sink.beats, src.cycles, sink.cycles
                return
            if src.step():
                ctx.set(dut.i.payload, src.beat)
            ctx.set(dut.i.valid, src.valid)
            if side:
                if side_src.step():
                    ctx.set(dut.v.payload, side_src.beat)
                ctx.set(dut.v.valid, side_src.valid)
            ctx.set(dut.o.ready, sink.step())
            sink.handshake(ctx.get(dut.o.valid), cycle, lambda: convert(ctx.get(dut.o.payload)))
            if writes is not None:
                wr = writes[src.index] if src.valid and ctx.get(dut.i.ready) else None
                if wr is not None:
                    ctx.set(dut.w.payload, wr)
                ctx.set(dut.w.valid, wr is not None)
            if side:
                side_src.handshake(ctx.get(dut.v.ready), cycle)
            src.handshake(ctx.get(dut.i.ready), cycle)
            await ctx.tick()
        raise AssertionError(f"timeout: {src.index}/{len(payloads)} in, {side_src.index}/"
                             f"{len(side or [])} side, {len(sink.beats)}/{n_out} out after "
                             f"{int(max_cycles)} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return run
