"""Small cycle-stepped AXI4-Stream source and sink models.

They hold no coroutine of their own: one testbench loop calls them once per clock cycle, in
two phases, so that a single ``await`` pair per cycle drives and samples every channel
(cocotb is dominated by the cost of each trigger, not by this arithmetic):

1. before the cycle settles, :meth:`Source.step` / :meth:`Sink.step` decide what to drive
   (a source that is idle and has a beat left raises ``valid`` with probability ``p``; a
   source that raised ``valid`` keeps it, and the same beat, until the beat transfers; a
   sink raises ``ready`` with probability ``p`` on every cycle);
2. after it settles (cocotb ``ReadOnly``), :meth:`Source.handshake` / :meth:`Sink.handshake`
   record a transfer on this cycle (``valid && ready``).

The random draws come from :class:`Draws`, which reads a ``numpy`` generator in blocks but
yields exactly the sequence of successive ``rng.random()`` calls, so a bench built on these
models consumes its generator in the same order as :mod:`hamattn.verif.amaranth_driver`
(key source, query source, output sink on every cycle) and makes the same choices.
Nothing here knows about a simulator.
"""

from __future__ import annotations

__all__ = ["Draws", "Source", "Sink"]


class Draws:
    """Uniform draws in [0, 1) from ``rng``, one per call, fetched ``block`` at a time."""

    __slots__ = ("rng", "block", "_buf", "_i")

    def __init__(self, rng, block=4096):
        self.rng = rng
        self.block = block
        self._buf = []
        self._i = 0

    def __call__(self):
        i = self._i
        if i == len(self._buf):
            self._buf = self.rng.random(self.block).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]

    def skip(self, n):
        """Consume ``n`` draws unseen (cycles a bench fast-forwarded over)."""
        while n > 0:
            left = len(self._buf) - self._i
            if left == 0:
                self._buf = self.rng.random(self.block).tolist()
                self._i = 0
                left = self.block
            k = min(n, left)
            self._i += k
            n -= k


class Source:
    """Offers ``beats`` (a list of ``(tdata, tlast)``) in order.

    After :meth:`step`, ``valid`` and :attr:`beat` are what to drive this cycle; ``loaded``
    tells whether :attr:`beat` changed since the previous cycle (so the data pins need a
    write). :meth:`handshake` with the sampled ``tready`` advances on a transfer and records
    its cycle in ``cycles``."""

    __slots__ = ("beats", "p", "draw", "index", "valid", "cycles", "_n")

    def __init__(self, beats, p=1.0, draw=None):
        if not 0.0 < p <= 1.0:
            raise ValueError(f"probability p = {p!r}: must be in (0, 1]")
        self.beats = beats
        self.p = p
        self.draw = draw
        self.index = 0
        self.valid = 0
        self.cycles = []
        self._n = len(beats)

    @property
    def done(self):
        return self.index == self._n

    @property
    def beat(self):
        return self.beats[self.index]

    def step(self):
        """Decide ``valid`` for this cycle; return True when a new beat was raised."""
        if not self.valid and self.index < self._n and self.draw() < self.p:
            self.valid = 1
            return True
        return False

    def handshake(self, ready, cycle):
        """``ready`` sampled on ``cycle`` (after settling); return True on a transfer."""
        if self.valid and ready:
            self.cycles.append(cycle)
            self.index += 1
            self.valid = 0
            return True
        return False

    def abort(self):
        """Drop ``valid`` (e.g. for a reset); the current beat is offered again later."""
        self.valid = 0


class Sink:
    """Takes beats: ``ready`` is high on a cycle with probability ``p``. Records every cycle
    on which ``valid`` was high (``valid_cycles``), and for each transfer its cycle
    (``cycles``) and the beat returned by the ``read`` callback (``beats``)."""

    __slots__ = ("p", "draw", "ready", "cycles", "beats", "valid_cycles")

    def __init__(self, p=1.0, draw=None):
        if not 0.0 < p <= 1.0:
            raise ValueError(f"probability p = {p!r}: must be in (0, 1]")
        self.p = p
        self.draw = draw
        self.ready = 0
        self.cycles = []
        self.beats = []
        self.valid_cycles = []

    def step(self):
        """Decide ``ready`` for this cycle and return it."""
        self.ready = int(self.draw() < self.p)
        return self.ready

    def handshake(self, valid, cycle, read):
        """``valid`` sampled on ``cycle``; on a transfer store ``read()``. Return True on a
        transfer."""
        if valid:
            self.valid_cycles.append(cycle)
            if self.ready:
                self.cycles.append(cycle)
                self.beats.append(read())
                return True
        return False
