"""rtl/plan.py: Timing, the SPEC §5 terms of every block plan, and the integer helpers."""

import pytest

from hamattn.config import CoreConfig
from hamattn.rtl.plan import (Timing, csd_digits, signed_width, sum_widths, timing_at,
                              unsigned_width)


def test_timing_adds_term_by_term():
    a = Timing(3, 1)
    b = Timing(5, 0, per_block=2, block=4)
    c = Timing(1, per_kept=3)
    total = a + b + c
    assert total == Timing(9, 1, per_block=2, block=4, per_kept=3)
    assert a + Timing() == a and (b + a).block == 4
    # A + C·n + D·ceil(n/M) + E·min(k, n)
    assert total.at(10, k=4) == 9 + 10 + 2 * 3 + 3 * 4
    assert total.at(2, k=4) == 9 + 2 + 2 * 1 + 3 * 2
    with pytest.raises(ValueError, match="give k"):
        total.at(3)
    with pytest.raises(ValueError, match="blocks 4 and 2"):
        b + Timing(per_block=1, block=2)


def test_timing_manifest_object_has_only_its_terms():
    assert Timing(22).to_manifest() == {"fixed": 22, "per_key": 0}
    assert Timing(44, 2).to_manifest() == {"fixed": 44, "per_key": 2}
    assert Timing(1, per_block=3, block=8).to_manifest() == \
        {"fixed": 1, "per_key": 0, "per_block": 3, "block": 8}
    assert Timing(1, per_kept=2).to_manifest() == {"fixed": 1, "per_key": 0, "per_kept": 2}
    assert list(Timing(4, 1).to_manifest()) == ["fixed", "per_key"]    # the manifest's order


def test_manifest_timing_evaluated_by_one_function():
    """timing_at (and CoreConfig.at, with the config's k) evaluates every SPEC §5 term."""
    t = Timing(5, 1, per_block=3, block=4, per_kept=2)
    for n in (1, 4, 5, 9):
        assert timing_at(t.to_manifest(), n, 3) == t.at(n, 3) == \
            5 + n + 3 * -(-n // 4) + 2 * min(3, n)
    assert timing_at({"fixed": 7, "per_key": 2}, 3) == 13
    cfg = CoreConfig.create(mode="topk", k=3, N=8)
    assert cfg.at(t.to_manifest(), 9) == t.at(9, 3)


def test_integer_helpers():
    assert [signed_width(-1, 0), signed_width(-128, 127), signed_width(-129, 0)] == [1, 8, 9]
    assert [unsigned_width(0), unsigned_width(1), unsigned_width(255), unsigned_width(256)] \
        == [1, 1, 8, 9]
    for c in range(-70, 70):
        digits = csd_digits(c)
        assert sum(sg << s for s, sg in digits) == c
        shifts = [s for s, _ in digits]
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))    # non-adjacent
    # num of 5 unit weights of 8-bit values: ±5·128 -> 11 bits signed; den 5 -> 3 bits
    assert sum_widths(5, 8) == (11, 3)


def test_timing_text_names_its_terms():
    """The text the command line and the demo print: only the terms that are not 0."""
    assert str(Timing(21)) == "21"
    assert str(Timing(43, 2)) == "43 + 2·n"
    assert str(Timing(5, 0, 3, 4, 2)) == "5 + 3·ceil(n/4) + 2·min(k, n)"
