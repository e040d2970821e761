"""The cycle-stepped AXI4-Stream models of verif/axis.py, against a Python model of a small
FIFO: no beat lost, duplicated or reordered; valid and data held until the transfer; the
draws identical to successive ``rng.random()`` calls."""

import numpy as np
import pytest

from hamattn.verif.axis import Draws, Sink, Source


def test_draws_match_scalar_calls():
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    d = Draws(a, block=5)
    assert [d() for _ in range(23)] == [b.random() for _ in range(23)]
    d.skip(11)
    [b.random() for _ in range(11)]
    assert d() == b.random()


def run_fifo(beats, p_in, p_out, seed, depth=2, cycles=10_000):
    """Source -> FIFO of ``depth`` (ready when not full) -> Sink, for ``cycles`` cycles."""
    draw = Draws(np.random.default_rng(seed))
    src, snk = Source(beats, p_in, draw), Sink(p_out, draw)
    fifo = []
    held = None                 # (index, beat) offered while valid, must not change
    for cycle in range(cycles):
        src.step()
        snk.step()
        if src.valid:
            if held is not None:
                assert held == (src.index, src.beat), "a source changed its beat while valid"
            held = (src.index, src.beat)
        elif held is not None:
            pytest.fail("a source dropped valid before the transfer")
        out_valid = bool(fifo)
        snk.handshake(out_valid, cycle, lambda: fifo[0])
        popped = out_valid and snk.ready
        if src.handshake(len(fifo) < depth, cycle):
            fifo.append(held[1])
            held = None
        if popped:
            fifo.pop(0)
        if src.done and not fifo:
            break
    return src, snk


@pytest.mark.parametrize("p_in,p_out", [(1.0, 1.0), (0.3, 1.0), (1.0, 0.2), (0.5, 0.5)])
def test_source_sink_through_fifo(p_in, p_out):
    beats = [(i * 7 + 3, int(i % 5 == 4)) for i in range(300)]
    src, snk = run_fifo(beats, p_in, p_out, seed=3)
    assert src.done
    assert snk.beats == beats
    assert len(src.cycles) == len(beats) and src.cycles == sorted(set(src.cycles))
    assert snk.cycles == sorted(set(snk.cycles))
    assert set(snk.cycles) <= set(snk.valid_cycles)
    if p_in == p_out == 1.0:                       # full throughput: one beat per cycle
        assert src.cycles == list(range(len(beats)))


def test_probability_range():
    with pytest.raises(ValueError, match="probability"):
        Source([], 0.0)
    with pytest.raises(ValueError, match="probability"):
        Sink(1.5)


def test_abort_offers_the_beat_again():
    draw = Draws(np.random.default_rng(0))
    src = Source([(1, 0), (2, 1)], 1.0, draw)
    assert src.step() and src.beat == (1, 0)
    src.abort()
    assert not src.valid and src.step() and src.beat == (1, 0)
    assert src.handshake(1, 0) and src.beat == (2, 1)
