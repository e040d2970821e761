"""A stream source and sink for one-in, one-out components in the Amaranth simulator.

:func:`run_stream` offers a list of payloads on ``dut.i`` and collects ``dut.o`` payloads,
with valid and ready raised at random (seeded) so every component is tested under arbitrary
back-pressure; it also records the cycles of every transfer so tests can check latency.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

__all__ = ["run_stream", "StreamRun"]


class StreamRun:
    def __init__(self):
        self.outputs = []
        self.in_cycles = []
        self.out_cycles = []


def run_stream(dut, payloads, *, n_out=None, seed=0, p_in=1.0, p_out=1.0, max_cycles=None,
               convert=lambda c: c, side=None):
    """Offer ``payloads`` (values accepted by ``ctx.set`` for ``dut.i.payload``) and return
    a :class:`StreamRun` with ``n_out`` (default: as many as inputs) outputs, each passed
    through ``convert`` (a ``data.Const`` in, anything comparable out). ``side``: payloads
    of a second input stream ``dut.v``, offered in order with the same valid probability."""
    rng = np.random.default_rng(seed)
    n_out = len(payloads) if n_out is None else n_out
    max_cycles = max_cycles or 200 + 50 * (len(payloads) + 10) / min(p_in, p_out)
    run = StreamRun()

    side = side or []

    async def bench(ctx):
        k = ks = 0
        valid = svalid = False
        for cycle in range(int(max_cycles)):
            if len(run.outputs) == n_out and k == len(payloads) and ks == len(side):
                return
            if not valid and k < len(payloads) and rng.random() < p_in:
                valid = True
                ctx.set(dut.i.payload, payloads[k])
            ctx.set(dut.i.valid, valid)
            if side:
                if not svalid and ks < len(side) and rng.random() < p_in:
                    svalid = True
                    ctx.set(dut.v.payload, side[ks])
                ctx.set(dut.v.valid, svalid)
            rdy = rng.random() < p_out
            ctx.set(dut.o.ready, rdy)
            if rdy and ctx.get(dut.o.valid):
                run.outputs.append(convert(ctx.get(dut.o.payload)))
                run.out_cycles.append(cycle)
            if side and svalid and ctx.get(dut.v.ready):
                ks += 1
                svalid = False
            if valid and ctx.get(dut.i.ready):
                run.in_cycles.append(cycle)
                k += 1
                valid = False
            await ctx.tick()
        raise AssertionError(f"timeout: {k}/{len(payloads)} in, {ks}/{len(side)} side, "
                             f"{len(run.outputs)}/{n_out} out after {int(max_cycles)} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return run
