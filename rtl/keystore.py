"""The stored keys of the scan modes (``topk``: :mod:`.scan`, ``hsoftmax``: :mod:`.hsoftmax`):
their code and value memories, the M Hamming units that compare a word of M codes with the
query, and the write of a key's code.

Key j of a window sits at word j//M of slot j%M's code memory (M = ``plan.keys_per_cycle``,
one memory of ceil(N/M) codes per slot, so that one address reads M keys and each memory
can go to block or LUT RAM on its own, ``synth.memmap``). The value memory holds
``plan.value_words`` words of ``value_slots`` groups of P lanes (:func:`layouts.group`)."""

from amaranth.hdl import Signal, unsigned
from amaranth.lib import data, memory

from . import layouts
from .hamming import HammingDistance
from .tree import delay

__all__ = ["CODE_READ", "key_memories", "distances", "write_code"]

#: edges from a code word's address to the register that holds its M codes: the block RAM's
#: synchronous read, then a plain register (no logic, no enable) so that the RAM's slow
#: clock-to-out (5.8 ns on the ECP5-25F) sees only routing; the Hamming units start there
CODE_READ = 2


def key_memories(m, plan, value_slots):
    """Adds to ``m`` the M code memories (``codes``, or ``codes0`` .. ``codes{M-1}``), the
    value memory (``values``: ``plan.value_words`` words of ``value_slots`` groups, a write
    port with one enable per group) and the M :class:`HammingDistance` units of
    ``plan.hamming`` (``hamming``, or ``hamming0`` ..). Returns (code write ports, code read
    ports, value write port, value read port, Hamming units); the read ports are
    synchronous (one edge from address to data)."""
    b, M = plan.b, plan.M
    wc, rc = [], []
    for s in range(M):
        codes = memory.Memory(shape=unsigned(b), depth=plan.code_words, init=[])
        m.submodules[f"codes{s}" if M > 1 else "codes"] = codes
        wc.append(codes.write_port())
        rc.append(codes.read_port(transparent_for=()))
    m.submodules.values = values = memory.Memory(
        shape=data.ArrayLayout(layouts.group(plan), value_slots), depth=plan.value_words,
        init=[])
    # (the ports unnamed: their Verilog wires keep the names they had)
    ports = values.write_port(granularity=1), values.read_port(transparent_for=())
    hams = []
    for s in range(M):
        ham = HammingDistance(b, tree=plan.hamming.tree, stages=plan.hamming.stages)
        m.submodules[f"hamming{s}" if M > 1 else "hamming"] = ham
        hams.append(ham)
    return wc, rc, *ports, hams


def distances(m, rc, hams, query, reading, word, left, also=()):
    """The M distances of code word ``word``, read where ``reading`` (its keys j from the
    window's ``left`` keys still to read: slot s holds one where ``left`` > s), against
    ``query``: they leave the Hamming units :data:`CODE_READ` + L_H edges later (L_H =
    ``hams[0].latency``; the codes read are registered before the units). Returns the M flags "slot s holds a key of the window", aligned
    with the distances (``hams[s].o.payload.h``). ``also``: statements added beside the
    codes' addresses (a value memory's address: its place among the statements keeps the
    Verilog's names as they were)."""
    L = hams[0].latency.fixed
    m.d.comb += [r.addr.eq(word) for r in rc]
    m.d.comb += also
    rd_valid = delay(m, reading, CODE_READ, name="rd_valid")
    for s, ham in enumerate(hams):
        code = Signal.like(rc[s].data, name=f"code{s}")
        m.d.sync += code.eq(rc[s].data)
        m.d.comb += [ham.i.payload.a.eq(query), ham.i.payload.b.eq(code),
                     ham.i.valid.eq(rd_valid), ham.o.ready.eq(1)]
    mask = Signal(len(hams))
    m.d.comb += [mask[s].eq(left > s) for s in range(len(hams))]
    return [hams[0].o.valid & x for x in delay(m, mask, L + CODE_READ, name="mask")]


def write_code(m, wc, code, slot, word):
    """In the caller's condition (a key token transfers): ``code`` to word ``word`` of slot
    ``slot``'s code memory (the ports ``wc``)."""
    m.d.comb += [x.addr.eq(word) for x in wc]
    m.d.comb += [x.data.eq(code) for x in wc]
    m.d.comb += [x.en.eq(slot == s) for s, x in enumerate(wc)]

