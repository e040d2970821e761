"""A skid buffer: a stream register stage whose ready and valid are both flip-flops."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .tree import twin

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Two registers between a producer and a consumer, so that neither handshake reaches
    the other side through logic: ``i.ready`` and ``o.valid`` are flip-flops, and ``o.ready``
    drives only the valid flags (the consumer's ready path ends here instead of in the
    producer, e.g. a FIFO's read pointer, level and memory enable).

    The input lands in one plain register, ``a`` (no reset, its enable a flip-flop): a
    block RAM read into the buffer (a :class:`~.queue.RegisteredFIFO`'s ``r_data``) is then
    read into a register and nothing else, which the ECP5 flow moves into the RAM's output
    register (:mod:`hamattn.synth.outreg`). The older beat, when two are held, waits in
    ``b``, loaded from ``a`` with the same enable; ``o.payload`` is ``b`` while it holds a
    beat, else ``a`` (one mux of two flip-flops).

    Parameters
    ----------
    shape : shape-like
        The payload's shape.

    Members
    -------
    i : :py:`In(stream.Signature(shape))`
        Input; ``i.ready`` = ``b`` is empty: a flip-flop of its own (a :func:`~.tree.twin`
        of the enable of ``a`` and ``b``), so that the producer's logic behind it (a
        FIFO's read enable, pointer and memory enable) is placed beside the producer, not
        beside the buffer's registers.
    o : :py:`Out(stream.Signature(shape))`
        Output: the older of the beats held.

    Latency: 1 edge from an input transfer to ``o.valid``. Throughput: one beat per cycle.
    A beat that arrives while the buffer holds a beat that is not taken pushes that beat into
    ``b``, and ``i.ready`` falls one edge later.
    """

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        a = Signal.like(self.i.payload, name="a", reset_less=True)
        b = Signal.like(self.i.payload, name="b", reset_less=True)
        a_valid, b_valid, o_valid = Signal(), Signal(), Signal()
        b_free = Signal(init=1)                 # ~b_valid, the enable of a and b
        m.d.comb += [self.o.valid.eq(o_valid),
                     self.o.payload.eq(Mux(b_valid, b, a))]
        take = o_valid & self.o.ready
        a_next, b_next = Signal(), Signal()
        with m.If(b_free):
            # a loads the input (a beat if i.valid), b the beat in a (kept if not taken)
            m.d.sync += [a.eq(self.i.payload), b.eq(a)]
            m.d.comb += [a_next.eq(self.i.valid), b_next.eq(a_valid & ~take)]
        with m.Else():
            # b leaves first; a holds
            m.d.comb += [a_next.eq(a_valid), b_next.eq(~take)]
        m.d.sync += [a_valid.eq(a_next), b_valid.eq(b_next), b_free.eq(~b_next),
                     o_valid.eq(a_next | b_next)]
        m.d.comb += self.i.ready.eq(twin(m, b_free, ~b_next, name="i_ready"))
        return m
