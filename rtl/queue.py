"""A first-in first-out queue in a memory with a synchronous read (block RAM), its level
flags flip-flops."""

from amaranth.hdl import Elaboratable, Module, Mux, Signal, Value
from amaranth.lib import memory

__all__ = ["RegisteredFIFO", "ROOM_LAG", "NO_RW_CHECK", "UnguardedReadPort"]

#: attributes of a memory none of whose read ports returns a word that is written in the
#: cycle it is read (where the read's data is used): Yosys (``memory_dff``) then leaves the
#: collision of a synchronous read port formed from an :class:`UnguardedReadPort` undefined,
#: as a block RAM's is, instead of emulating the old word (a delayed write and a bypass: a
#: flip-flop and a mux per data bit, and an address compare)
NO_RW_CHECK = {"no_rw_check": 1}

#: marks a memory whose word read feeds the write of the next edge (a read-modify-write
#: closed in one cycle): on a fabric with LUT RAM the flow (:mod:`hamattn.synth.memmap`)
#: gives it LUT RAM, never a block RAM, whose clock-to-out would sit inside that loop; on a
#: fabric without LUT RAM (iCE40) it changes nothing
LUT_RAM_FIRST = {"hamattn_lut_ram_first": 1}


class UnguardedReadPort:
    """A synchronous read port of ``mem`` (a memory with :data:`NO_RW_CHECK`) made of an
    asynchronous one and a register, which Yosys merges into a block RAM's read port:
    ``data`` is the word at ``addr`` registered at an edge with ``en`` (held without), as
    a ``transparent_for=()`` read port's (the old word on a collision, in simulation).
    Members ``addr``, ``en``, ``data`` as :class:`amaranth.lib.memory.ReadPort`'s.

    :attr:`poison` (a class attribute, for tests in the Amaranth simulator): with it set,
    a port built afterwards registers the inverted word on a collision (an edge with ``en``
    where a write port of ``mem`` writes at ``addr``), so that a design that uses such a
    word, which a block RAM leaves undefined, fails its golden-model checks."""

    poison = False

    def __init__(self, m, mem, name):
        port = mem.read_port(domain="comb")
        self.addr = port.addr
        self.en = Signal(init=1, name=f"{name}_ren")
        self.data = Signal.like(port.data, name=f"{name}_rdata", reset_less=True)
        word = port.data
        if self.poison:
            word = Signal.like(port.data, name=f"{name}_poisoned")
            m.submodules[f"{name}_poison"] = _Poison(mem, port, word)
        with m.If(self.en):
            m.d.sync += self.data.eq(word)


class _Poison(Elaboratable):
    """``word`` = the read port ``port``'s word, inverted where a write port of ``mem``
    writes at its address (elaborated after the caller's module: every port exists then)."""

    def __init__(self, mem, port, word):
        self.mem, self.port, self.word = mem, port, word

    def elaborate(self, platform):
        m = Module()
        hit = 0
        for w in self.mem.write_ports:
            hit = hit | (Value.cast(w.en).any() & (w.addr == self.port.addr))
        data = Value.cast(self.port.data)
        m.d.comb += Value.cast(self.word).eq(Mux(hit, ~data, data))
        return m

#: edges by which the ``room`` flag lags the level: it is a compare of the level ROOM_LAG
#: edges before (ROOM_LAG - 1 flip-flops after the compare's register), so that neither the
#: flag nor its next value ``room_next`` decodes this cycle's write or read (a consumer's
#: ready registered from ``room_next`` then does not wait for the write enable); the level
#: rises by at most one per edge, so the flag still implies ``level + margin < depth``
ROOM_LAG = 2


class RegisteredFIFO(Elaboratable):
    """The queue of :class:`amaranth.lib.fifo.SyncFIFOBuffered` (the same port names and the
    same timing) whose every flag is a flip-flop, so that no handshake decodes the level.

    ``SyncFIFOBuffered`` decodes its ready flags from its level counters (``level != 0``,
    ``level != depth``) and adds its output register to its inner level: on an iCE40 those
    compares and that adder stand between the level and the read enable. Here the level is
    a counter whose tests are flip-flops written beside it from the counter's next value,
    found without an adder: each test of ``level + 1`` or ``level - 1`` is the test of
    ``level`` and one compare of ``level`` with a constant, chosen by the write and the read.

    Parameters
    ----------
    width : int
        Bits of an entry.
    depth : int (>= 2)
        Entries: the memory's words, its output register holding the oldest one.
    margin : int or None (0 .. depth - 1 - ROOM_LAG)
        With an int, ``room`` is a flip-flop: ``level + margin + ROOM_LAG < depth`` of the
        level :data:`ROOM_LAG` edges before, which implies ``level + margin < depth`` now
        (a writer that stops when it falls may still write ``margin`` entries). A queue
        that must never throttle such a writer has ``margin + ROOM_LAG`` entries more.

    Members
    -------
    w_data : ``Signal(width)``, w_en : ``Signal()``, w_rdy : ``Signal()`` (a flip-flop,
    ``level < depth``)
        Write side: an entry is written at an edge with ``w_en & w_rdy``.
    r_data : ``Signal(width)``, r_rdy : ``Signal()`` (a flip-flop), r_en : ``Signal()``
        Read side: ``r_data`` is the memory's output register (the oldest entry, valid while
        ``r_rdy``); it is taken at an edge with ``r_en & r_rdy``.
    level : ``Signal(range(depth + 1))``
        Entries written and not yet taken.
    empty, room : ``Signal()``
        Flip-flops: ``level == 0``; the room flag above (``margin`` given).
    room_next : ``Signal()``
        A flip-flop, the value ``room`` takes at the next edge (``margin`` given; it implies
        ``level + margin < depth`` after the edge), for a consumer that registers a flag of
        its own from it.

    empty_next, r_rdy_next : ``Signal()``
        The values ``empty`` and ``r_rdy`` take at the next edge (their flip-flops' inputs),
        for a consumer that registers a flag of its own a cycle ahead.
    checked : bool
        Without it (``checked=False``) the writer promises never to write while ``w_rdy``
        is low (a full queue), and ``w_en`` alone is the write: no LUT of ``w_rdy`` stands
        between the writer's enable and the pointer's, the level's and the memory's. (A
        write to a full unchecked queue leaves it undefined.)
    head : bool
        With it, the memory's output register is followed by a register of its own (the
        queue's head, loaded from the memory's read register and nothing else: no logic
        stands behind the block RAM's read, and on the ECP5 ``synth.outreg`` moves the read
        register into the block RAM's output register): ``r_data``/``r_rdy`` are the head's,
        the queue holds ``depth + 1`` entries (the memory's ``depth``, its read register
        among them, and the head), ``w_rdy`` and the room flags are the memory's (``depth``
        entries beyond the head), ``level`` counts the head too (``empty``: no entry in
        either).

    Timing: an entry written to an empty queue at an edge is read from the memory at the
    next edge, which raises ``r_rdy``: it can be taken at the edge after that (2 edges;
    with ``head`` 3: the head loads at the edge after the read). The entry after one taken
    at an edge can be taken at the next edge (it waits in the read register, or the head).
    Throughput: one entry per cycle on each side.
    """

    def __init__(self, *, width, depth, margin=None, head=False, checked=True):
        if depth < 2:
            raise ValueError(f"depth = {depth!r} is not allowed: at least 2")
        if margin is not None and not 0 <= margin < depth - ROOM_LAG:
            raise ValueError(f"margin = {margin!r} is not allowed: 0 .. depth - "
                             f"{ROOM_LAG + 1} = {depth - ROOM_LAG - 1}")
        self.width, self.depth, self.margin, self.head = width, depth, margin, head
        self.checked = checked
        self.w_data, self.w_en, self.w_rdy = Signal(width), Signal(), Signal(init=1)
        self.r_data, self.r_en, self.r_rdy = Signal(width, reset_less=True), Signal(), Signal()
        self.level = Signal(range(depth + 1 + head))
        self.empty = Signal(init=1)
        self.room = Signal(init=1)
        self.room_next = Signal(init=1)
        self.empty_next, self.r_rdy_next = Signal(init=1), Signal()

    def elaborate(self, platform):
        if self.head:
            return self._headed()
        m = Module()
        D = self.depth
        level = self.level
        # (unchecked: the writer never writes a full queue, so w_en is the write itself and
        # the pointer's, the level's and the memory's enables wait for no LUT of w_rdy)
        write = self.w_en & self.w_rdy if self.checked else self.w_en
        take = self.r_en & self.r_rdy
        up, down = write & ~take, take & ~write        # the level's next step

        def flag(f, below, above):
            """Keep ``f``, a test level <= L, from the next level: after a step up it is
            ``below`` (the test level <= L - 1), after a step down ``above`` (level <= L + 1)
            of the current level."""
            nxt = Mux(up, below, Mux(down, above, f))
            m.d.sync += f.eq(nxt)
            return nxt

        with m.If(up):
            m.d.sync += level.eq(level + 1)
        with m.Elif(down):
            m.d.sync += level.eq(level - 1)
        # empty: level <= 0; at least two: ~(level <= 1), so that the memory holds an entry
        # not yet read into its output register (r_rdy high, or being raised)
        two = Signal(name="two")                                     # level >= 2
        m.d.comb += self.empty_next.eq(flag(self.empty, 0, ~two))
        m.d.sync += two.eq(Mux(up, ~self.empty, Mux(down, level >= 3 if D >= 3 else 0, two)))
        # w_rdy: level <= D - 1
        flag(self.w_rdy, self.w_rdy & (level != D - 1), 1)
        if self.margin is not None:
            # (ROOM_LAG = 2: room_next is the compare's register, room its copy)
            m.d.sync += [self.room_next.eq(level < D - self.margin - ROOM_LAG),
                         self.room.eq(self.room_next)]

        # the memory: entries at `produce`, read at `consume` into the read port's register
        # (no read is enabled in a cycle that writes its word: a fetch reads an entry
        # written at an earlier edge, k >= 1 entries ahead of `produce`, and a write needs
        # level < D, so k < D: an UnguardedReadPort)
        storage = m.submodules.storage = memory.Memory(shape=self.width, depth=D, init=[],
                                                       attrs=NO_RW_CHECK)
        w_port = storage.write_port()
        r_port = UnguardedReadPort(m, storage, "storage")

        def pointer(name, step):
            """An address that steps through 0 .. D-1 where ``step``: where D is not a
            power of two its wrap is a flip-flop (``p == D - 1``, written beside it from
            ``p == D - 2``), so that no compare of the pointer stands before its reset."""
            p = Signal(range(D), name=name)
            if D & (D - 1) == 0:
                with m.If(step):
                    m.d.sync += p.eq(p + 1)
            else:
                end = Signal(name=f"{name}_end")
                with m.If(step):
                    m.d.sync += [p.eq(Mux(end, 0, p + 1)), end.eq(p == D - 2)]
            return p

        # the memory holds an entry beyond the output register: level >= 2, or 1 and the
        # output register empty; it is read when the register is empty or taken
        inner = two | (~self.empty & ~self.r_rdy)
        fetch = inner & (~self.r_rdy | self.r_en)
        produce, consume = pointer("produce", write), pointer("consume", fetch)
        m.d.comb += [w_port.addr.eq(produce), w_port.data.eq(self.w_data),
                     w_port.en.eq(write),
                     r_port.addr.eq(consume), r_port.en.eq(fetch), self.r_data.eq(r_port.data)]
        m.d.comb += self.r_rdy_next.eq(fetch | (self.r_rdy & ~self.r_en))
        m.d.sync += self.r_rdy.eq(self.r_rdy_next)
        return m

    def _headed(self):
        """The queue without a head (``memory``: ``depth`` entries, its read register among
        them) and the head register behind it, loaded where the memory's read register holds
        an entry and the head is empty or taken."""
        m = Module()
        inner = m.submodules.memory = RegisteredFIFO(width=self.width, depth=self.depth,
                                                     margin=self.margin, checked=self.checked)
        load = inner.r_rdy & (~self.r_rdy | self.r_en)
        with m.If(load):
            m.d.sync += self.r_data.eq(inner.r_data)
        m.d.comb += [
            inner.w_data.eq(self.w_data), inner.w_en.eq(self.w_en), inner.r_en.eq(load),
            self.w_rdy.eq(inner.w_rdy), self.room.eq(inner.room),
            self.room_next.eq(inner.room_next),
            self.level.eq(inner.level + self.r_rdy),
            self.r_rdy_next.eq(load | (self.r_rdy & ~self.r_en)),
            self.empty_next.eq(inner.empty_next & ~self.r_rdy_next),
        ]
        m.d.sync += [self.r_rdy.eq(self.r_rdy_next), self.empty.eq(self.empty_next)]
        return m
