"""A skid buffer: a stream register stage whose ready and valid are both flip-flops."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Two registers between a producer and a consumer, so that neither handshake reaches
    the other side through logic: ``i.ready`` and ``o.valid`` are flip-flops, and ``o.ready``
    drives only the output register's enable (the consumer's ready path ends here instead of
    in the producer, e.g. a FIFO's read pointer, level and memory enable).

    Parameters
    ----------
    shape : shape-like
        The payload's shape.

    Members
    -------
    i : :py:`In(stream.Signature(shape))`
        Input; ``i.ready`` = the skid register is empty (a flip-flop).
    o : :py:`Out(stream.Signature(shape))`
        Output from the output register.

    Latency: 1 edge from an input transfer to ``o.valid`` (the output register empty or
    taken). Throughput: one beat per cycle. A beat that arrives while the output register
    holds a beat that is not taken waits in the skid register (``i.ready`` falls one edge
    later).
    """

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        skid = Signal.like(self.i.payload, name="skid")
        skid_valid = Signal()
        out = Signal.like(self.o.payload, name="out")
        out_valid = Signal()
        m.d.comb += [self.i.ready.eq(~skid_valid), self.o.valid.eq(out_valid),
                     self.o.payload.eq(out)]
        with m.If(~skid_valid):                  # an enable from a flip-flop only
            m.d.sync += skid.eq(self.i.payload)
        with m.If(~out_valid | self.o.ready):
            # the output register loads the skid's beat, else the input's (if any)
            m.d.sync += [out.eq(Mux(skid_valid, skid, self.i.payload)),
                         out_valid.eq(skid_valid | self.i.valid), skid_valid.eq(0)]
        with m.Elif(self.i.valid & ~skid_valid):
            m.d.sync += skid_valid.eq(1)
        return m
