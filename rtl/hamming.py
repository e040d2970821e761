"""Hamming distance (SPEC §3): H = popcount(a XOR b), a pipelined popcount tree."""

from amaranth.hdl import Module, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import hamming_latency, unsigned_width
from .tree import Term, adder_tree, delay, register, tag_width, tagged

__all__ = ["HammingDistance"]


class HammingDistance(wiring.Component):
    """Distance between two b-bit codes, usable on its own.

    Ports:
      ``i``: stream of ``{a: unsigned(b), b: unsigned(b), tag: tag_shape}``
      ``o``: stream of ``{h: unsigned(bits(b)), tag: tag_shape}``, h in [0, b]

    Latency: ``1 + ceil(log2(b))`` edges (one XOR register, one register per popcount
    level, each level one adder of the narrowest width that holds its count).
    Throughput: one pair per cycle; the pipeline advances when its output is empty or
    taken (``i.ready = ~o.valid | o.ready``).
    """

    def __init__(self, code_bits, tag_shape=unsigned(0)):
        if not isinstance(code_bits, int) or not 1 <= code_bits <= 1024:
            raise ValueError(f"code_bits = {code_bits!r} is not allowed: an integer 1..1024")
        self.code_bits = code_bits
        self.tag_shape = tag_shape
        super().__init__({
            "i": In(stream.Signature(tagged(
                {"a": unsigned(code_bits), "b": unsigned(code_bits)}, tag_shape))),
            "o": Out(stream.Signature(tagged(
                {"h": unsigned(unsigned_width(code_bits))}, tag_shape))),
        })

    @property
    def latency(self):
        return hamming_latency(self.code_bits)

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        x = Signal(self.code_bits)
        register(m, x, self.i.payload.a ^ self.i.payload.b, en)
        root = adder_tree(m, [Term(x[t], False, 0, 1) for t in range(self.code_bits)],
                          en=en, depth=self.latency - 1, name="pop")
        valid = delay(m, self.i.valid, self.latency, en=en, name="valid")
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.h.eq(root.value)]
        if tag_width(self.tag_shape):
            tag = delay(m, Value.cast(self.i.payload.tag), self.latency, en=en, name="tag")
            m.d.comb += self.o.payload.tag.eq(tag)
        return m
