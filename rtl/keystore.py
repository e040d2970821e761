"""The stored keys of the scan modes (``topk``: :mod:`.scan`, ``hsoftmax``: :mod:`.hsoftmax`):
their code and value memories, the M Hamming units that compare a word of M codes with the
query, and the writes of the keys' codes (:class:`KeyWriter`).

Key j of a window sits at word j//M of slot j%M's code memory (M = ``plan.keys_per_cycle``,
one memory of ceil(N/M) codes per slot, so that one address reads M keys and each memory
can go to block or LUT RAM on its own, ``synth.memmap``). The value memory holds
``plan.value_words`` words of ``value_slots`` groups of P lanes (:func:`layouts.group`)."""

from amaranth.hdl import Cat, Const, Mux, Signal, unsigned
from amaranth.lib import data, memory

from . import layouts
from .hamming import HammingDistance
from .queue import NO_RW_CHECK, UnguardedReadPort
from .tree import delay

__all__ = ["CODE_READ", "ONE_ADDRESS", "key_memories", "distances", "KeyWriter"]

#: edges from a code word's address to the register that holds its M codes: the block RAM's
#: synchronous read, then a plain register (no logic, no enable) so that the RAM's slow
#: clock-to-out (5.8 ns on the ECP5-25F) sees only routing; the Hamming units start there
CODE_READ = 2


#: the attribute of a value memory with one address for its read and its write, whose
#: words are all written before they are read (its initial contents never read): the
#: iCE40 board flow may give it a single-port SPRAM (``synth.board``)
ONE_ADDRESS = "hamattn_one_address"


def key_memories(m, plan, value_slots, one_address=False):
    """Adds to ``m`` the M code memories (``codes``, or ``codes0`` .. ``codes{M-1}``), the
    value memory (``values``: ``plan.value_words`` words of ``value_slots`` groups, a write
    port with one enable per group) and the M :class:`HammingDistance` units of
    ``plan.hamming`` (``hamming``, or ``hamming0`` ..). Returns (code write ports, code read
    ports, value write port, value read port, Hamming units); the read ports are
    synchronous (one edge from address to data), each an
    :class:`~.queue.UnguardedReadPort`: no word read where it is used is written in the
    cycle it is read (a window's keys and values are written before its queries' passes
    read them, and the next window's once they are done: the core makes its keys wait for
    that), so no read-during-write logic stands beside the block RAMs. ``one_address``: the
    caller gives the value memory's read and write ports one address (never both in a
    cycle); the memory carries the attribute :data:`ONE_ADDRESS`."""
    b, M = plan.b, plan.M
    wc, rc = [], []
    for s in range(M):
        name = f"codes{s}" if M > 1 else "codes"
        codes = memory.Memory(shape=unsigned(b), depth=plan.code_words, init=[],
                              attrs=NO_RW_CHECK)
        m.submodules[name] = codes
        wc.append(codes.write_port())
        rc.append(UnguardedReadPort(m, codes, name))
    m.submodules.values = values = memory.Memory(
        shape=data.ArrayLayout(layouts.group(plan), value_slots), depth=plan.value_words,
        init=[], attrs={**NO_RW_CHECK, **({ONE_ADDRESS: 1} if one_address else {})})
    wv, rv = values.write_port(granularity=1), UnguardedReadPort(m, values, "values")
    hams = []
    for s in range(M):
        ham = HammingDistance(b, tree=plan.hamming.tree, stages=plan.hamming.stages)
        m.submodules[f"hamming{s}" if M > 1 else "hamming"] = ham
        hams.append(ham)
    return wc, rc, wv, rv, hams


def distances(m, rc, hams, query, reading, word, left):
    """The M distances of code word ``word``, read where ``reading`` (its keys j from the
    window's ``left`` keys still to read: slot s holds one where ``left`` > s), against
    ``query``: they leave the Hamming units :data:`CODE_READ` + L_H edges later (L_H =
    ``hams[0].latency``; the codes read are registered before the units). Returns the M
    flags "slot s holds a key of the window", aligned with the distances
    (``hams[s].o.payload.h``)."""
    L = hams[0].latency.fixed
    m.d.comb += [r.addr.eq(word) for r in rc]
    rd_valid = delay(m, reading, CODE_READ, name="rd_valid")
    for s, ham in enumerate(hams):
        code = Signal.like(rc[s].data, name=f"code{s}", reset_less=True)
        m.d.sync += code.eq(rc[s].data)
        m.d.comb += [ham.i.payload.a.eq(query), ham.i.payload.b.eq(code),
                     ham.i.valid.eq(rd_valid), ham.o.ready.eq(1)]
    mask = Signal(len(hams))
    m.d.comb += [mask[s].eq(left > s) for s in range(len(hams))]
    return [hams[0].o.valid & x for x in delay(m, mask, L + CODE_READ, name="mask")]


class KeyWriter:
    """The key tokens of a window written to the code memories, one per G cycles: key j at
    word j//M of slot j%M's (M = ``plan.keys_per_cycle``, G = ``plan.groups``).

    A key token stays valid for G cycles, one value group taken per cycle, and transfers
    with its last group. Its code is written, and the window's counters advance, from
    flip-flops :attr:`lag` edges after its FIRST group is taken (``lag`` = 1 folded, 0
    unfolded): the handshake (the hash's valid, the value queue's valid, ``keys_ok``) ends
    at the pulse's register (``kwrite``) and at the registers of the write's address and
    enables, and reaches neither a counter's enable nor a code memory. The key's effects
    still come no later than before: folded, its first group is taken at least G - 1 >= 1
    edges before its token transfers (its last group), so the code is written and ``n``,
    ``nb`` hold the key by the edge its token transfers, as they did when they were written
    at that edge; a query that follows the key in the next cycle sees them (and its passes
    read the codes later still). The code written is the token's, which it holds until it
    transfers (no register of the code). Unfolded (G = 1) the first group is the last and
    the writes stay at the token's edge.

    Members (flip-flops): ``n``, the window's keys; ``nb``, its code words (ceil(n/M));
    ``wg``, the group (0 .. G-1) of the key token being written, ``wg_first`` and
    ``wg_last`` its tests ``wg == 0``, ``wg == G - 1``; ``cslot``, the slot of the
    window's next key (not its first), advanced as a token transfers, ``cslot_zero`` and
    ``cslot_last`` its tests ``cslot == 0``, ``cslot == M - 1``. :meth:`take` adds the writes, in the caller's state that takes tokens,
    and sets: ``slot``, the token's slot; ``slot_zero``, ``slot == 0`` (of flip-flops and
    the token's ``first``, no compare); ``opened``, its word already holds keys;
    ``cword``, its code word; ``vdata``, its value group; ``write``, a group is taken this
    cycle; ``last``, the token's last group (it transfers); and, :attr:`lag` edges after
    a key's first group (the cycle its code is written and ``n``, ``nb`` advance at the
    end of): ``kwrite``, that pulse; ``kfirst``, the key starts a window; ``kzero``, its
    slot is 0; ``kaddr``, its code word."""

    def __init__(self, plan):
        self.plan = plan
        #: edges from a key's first value group taken to its code's write and its
        #: counters' advance: 1 where folded (registered: at or before its token's
        #: transfer, G - 1 >= 1 edges after the first group), 0 unfolded (G = 1)
        self.lag = 1 if plan.groups > 1 else 0
        # (n, nb, cslot and cslot_zero have no reset: a window's first key loads them, and
        # nothing reads them before it, so that their enable is not ORed with the reset)
        self.n = Signal(range(plan.N + 1), name="n", reset_less=True)
        self.nb = Signal(range(plan.code_words + 1), name="nb", reset_less=True)
        # slot of the next key (0 when M = 1)
        self.cslot = Signal(range(max(plan.M, 2)), name="cslot", reset_less=True)
        # cslot == 0, a flip-flop beside cslot (no compare of cslot before the write
        # address, the write enables or a consumer's `slot == 0`)
        self.cslot_zero = Signal(init=1, name="cslot_zero", reset_less=True)
        # cslot == M - 1, another (no compare of cslot before cslot's and cslot_zero's
        # next values)
        self.cslot_last = Signal(init=plan.M == 1, name="cslot_last", reset_less=True)
        self.wg = Signal(range(max(plan.groups, 2)))
        # wg == G - 1 and wg == 0, flip-flops beside wg (the writes' enables and addresses
        # decode no counter)
        self.wg_last = Signal(init=plan.groups == 1, name="wg_last")
        self.wg_first = Signal(init=1, name="wg_first")

    def take(self, m, wc, token, group, keys_ok, query_ok):
        """Drives ``token.ready`` (and ``group.ready``): a key token is taken where
        ``keys_ok``, a query token where ``query_ok``; a key token stays valid for G
        cycles, one value group per cycle (from ``group`` when folded, else in the token),
        and transfers with its last group; its code is written to the write ports ``wc``
        :attr:`lag` edges after its first group; ``first`` starts a window. The caller
        writes the value groups."""
        M, G, D = self.plan.M, self.plan.groups, self.lag
        n, nb, cslot, wg = self.n, self.nb, self.cslot, self.wg
        p = token.payload
        self.last = self.wg_last if G > 1 else Const(1, 1)
        if G > 1:
            vvalid, self.vdata = group.valid, group.payload
            m.d.comb += [token.ready.eq(Mux(p.key, self.last & vvalid & keys_ok, query_ok)),
                         group.ready.eq(token.valid & p.key & keys_ok)]
        else:
            # (no value where the caller writes the values itself, as it accepts the keys)
            vvalid = 1
            self.vdata = p.value if "value" in token.payload.shape().members else None
            m.d.comb += token.ready.eq(Mux(p.key, keys_ok, query_ok))
        # key j: code word j//M (nb - 1 when it has a slot left, else nb), slot j%M
        self.slot = slot = Mux(p.first, 0, cslot)
        self.slot_zero = p.first | self.cslot_zero            # slot == 0
        self.opened = ~self.cslot_zero
        self.cword = cword = Mux(p.first, 0, nb - self.opened)   # the word written
        self.write = token.valid & p.key & vvalid & keys_ok
        # the key's first group taken: its code's write and its counters, D edges later
        # (registered where folded; nb and cslot do not change between the first group
        # and the write: nb advances at the write, cslot as the token transfers, at or
        # after it), from flip-flops: the pulse, the window's first key, slot 0, the word
        # and the slots' selects (each slot's enable the pulse AND its select)
        opening = self.write & self.wg_first if G > 1 else self.write
        self.kwrite = kw = delay(m, opening, D, name="kwrite")
        self.kfirst = kfirst = delay(m, p.first, D, name="kfirst")
        self.kzero = kzero = delay(m, self.slot_zero, D, name="kzero")
        self.kaddr = delay(m, cword, D, name="kaddr")
        # (the slots' selects registered whatever the handshake, from the token's first
        # flag and cslot; ANDed with the pulse after the registers: the handshake reaches
        # only the pulse's register)
        sel = Cat(*(self.slot_zero if s == 0 else ~p.first & (cslot == s) for s in range(M)))
        ksel = delay(m, sel, D, name="ksel")
        kens = Cat(*(kw & ksel[s] for s in range(M)))
        # (the address and the data whatever the enable: the write's handshake reaches
        # the code memories' enables only, through their registers; the data is the
        # token's code, held until the token transfers, at or after the write)
        m.d.comb += [x.addr.eq(self.kaddr) for x in wc]
        m.d.comb += [x.data.eq(p.code) for x in wc]
        m.d.comb += [x.en.eq(kens[s]) for s, x in enumerate(wc)]
        with m.If(kw):
            m.d.sync += n.eq(Mux(kfirst, 0, n) + 1)
            with m.If(kzero):
                # (kaddr + 1: slot 0 opens a word, so the word is 0 for a window's first
                # key and nb otherwise (cslot == 0, nothing opened): no subtract, and no
                # compare of cslot, before the increment)
                m.d.sync += nb.eq(Mux(kfirst, 1, nb + 1))
        with m.If(self.write):
            with m.If(self.last):
                slot_last = Mux(p.first, M == 1, self.cslot_last)     # slot == M - 1
                m.d.sync += [cslot.eq(Mux(slot_last, 0, slot + 1)),
                             self.cslot_zero.eq(slot_last),
                             self.cslot_last.eq(Mux(slot_last, M == 1,
                                                    Mux(p.first, M == 2, cslot == M - 2)))]
                if G > 1:
                    m.d.sync += [wg.eq(0), self.wg_last.eq(0), self.wg_first.eq(1)]
            if G > 1:
                with m.Else():
                    m.d.sync += [wg.eq(wg + 1), self.wg_last.eq(wg == G - 2),
                                 self.wg_first.eq(0)]
