"""What every block plan is made of: :class:`Timing` (the terms of SPEC §5) and the integer
helpers that size a block's signals. Plain Python, no Amaranth: a plan is computed from
explicit numbers before any hardware is built, and the component is built from it.

The plans themselves sit beside the RTL that realises them: :class:`~.hash.HashPlan`,
:class:`~.hamming.HammingPlan`, :class:`~.linear.LinearPlan`, :class:`~.scan.ScanPlan`,
:class:`~.divider.DividerPlan` and :class:`~.core.CorePlan`, which composes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Timing", "timing_at", "Folding", "WeightedSum", "signed_width", "unsigned_width",
           "csd_digits", "tree_depth", "sum_widths"]


@dataclass(frozen=True)
class Timing:
    """Rising clock edges (or cycles) as the SPEC §5 terms: ``fixed + per_key·n +
    per_block·ceil(n / block) + per_kept·min(k, n)`` for a window of n used keys of which a
    query keeps at most k. Blocks in a row add up (``+``) to the timing of the whole."""

    fixed: int = 0
    per_key: int = 0
    per_block: int = 0
    block: int = 1
    per_kept: int = 0

    def __add__(self, other):
        if not isinstance(other, Timing):
            return NotImplemented
        if self.per_block and other.per_block and self.block != other.block:
            raise ValueError(f"cannot add per-block terms of blocks {self.block} and "
                             f"{other.block}")
        return Timing(self.fixed + other.fixed, self.per_key + other.per_key,
                      self.per_block + other.per_block,
                      self.block if self.per_block else other.block,
                      self.per_kept + other.per_kept)

    def at(self, n, k=None):
        """The value for a window of ``n`` used keys (``k``: keys kept per query, needed
        only when there is a per-kept term)."""
        if self.per_kept and k is None:
            raise ValueError("this timing has a per-kept term: give k")
        kept = min(k, n) if self.per_kept else 0
        return (self.fixed + self.per_key * n + self.per_block * -(-n // self.block)
                + self.per_kept * kept)

    def __str__(self):
        """``21``, ``43 + 2·n``, ``5 + 3·ceil(n/4) + 2·min(k, n)``: the terms that are not 0."""
        terms = [str(self.fixed)]
        if self.per_key:
            terms.append(f"{self.per_key}·n")
        if self.per_block:
            terms.append(f"{self.per_block}·ceil(n/{self.block})")
        if self.per_kept:
            terms.append(f"{self.per_kept}·min(k, n)")
        return " + ".join(terms)

    def to_manifest(self):
        """The manifest object of SPEC §5: ``{"fixed", "per_key"}``, plus ``per_block`` and
        ``block`` and/or ``per_kept`` where those terms are not 0."""
        out = {"fixed": self.fixed, "per_key": self.per_key}
        if self.per_block:
            out.update(per_block=self.per_block, block=self.block)
        if self.per_kept:
            out["per_kept"] = self.per_kept
        return out


def timing_at(timing, n, k=None):
    """SPEC §5: a manifest timing object (:meth:`Timing.to_manifest`) evaluated for a window
    of ``n`` used keys, A + C·n + D·ceil(n/M) + E·min(k, n) (an absent term is 0)."""
    return Timing(**timing).at(n, k)


class Folding:
    """What the plans of blocks that fold d elements of w bits onto ``lanes`` P (and, the
    hash and the linear path, b code rows onto ``rows`` T) have in common; ``lanes`` (and
    ``rows``) None mean d (b): fully parallel."""

    def _unfolded_by_default(self):
        # (for __post_init__ of a frozen dataclass)
        if self.lanes is None:
            object.__setattr__(self, "lanes", self.d)
        if getattr(self, "rows", 0) is None:
            object.__setattr__(self, "rows", self.b)

    @property
    def vmin(self):
        return -(1 << (self.w - 1))

    @property
    def vmax(self):
        return (1 << (self.w - 1)) - 1

    @property
    def groups(self):
        """G = ceil(d / P): groups of P elements, one per cycle (1: fully parallel). Group g
        holds elements gP .. min(gP+P, d) - 1; the last group of a non-divisor P has lanes
        without an element (they carry zeros)."""
        return -(-self.d // self.lanes)

    @property
    def folded(self):
        return self.groups > 1

    @property
    def row_blocks(self):
        """R = ceil(b / T): blocks of T code rows, one per cycle (1: all b rows at once): the
        blocks of rows of the linear state S that a folded linear value path reads and
        writes one per cycle, so a vector takes G·R cycles there; the folded hash computes
        the same blocks, one per pass over the groups. The last block of a non-divisor has
        rows without a code bit (they hold zeros)."""
        return -(-self.b // self.rows)


class WeightedSum:
    """What the plans of value paths have in common: the widths of num[e] = sum_j weight_j
    v_j[e] and den = sum_j weight_j over at most ``kept`` keys of weight at most
    ``max_weight`` (SPEC §3), w-bit values."""

    @property
    def num_width(self):
        """Signed width of num[e]."""
        return sum_widths(self.kept * self.max_weight, self.w)[0]

    @property
    def den_width(self):
        """Unsigned width of den (>= 1)."""
        return sum_widths(self.kept * self.max_weight, self.w)[1]


# --------------------------------------------------------------------------- integer helpers

def signed_width(lo, hi):
    """Fewest two's-complement bits that hold every integer in [lo, hi] (at least 1)."""
    lo, hi = int(lo), int(hi)
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def unsigned_width(hi):
    """Fewest unsigned bits that hold every integer in [0, hi] (at least 1)."""
    return max(1, int(hi).bit_length())


def csd_digits(c):
    """Canonical signed-digit form of the integer ``c``: a list of ``(shift, sign)`` with
    ``c == sum(sign << shift)``, non-adjacent, so that a constant product is the fewest
    shifted additions and subtractions."""
    c = int(c)
    digits, shift = [], 0
    while c != 0:
        if c & 1:
            digit = 2 - (c & 3)        # +1 when c = 1 mod 4, -1 when c = 3 mod 4
            digits.append((shift, digit))
            c -= digit
        c >>= 1
        shift += 1
    return digits


def tree_depth(n_terms):
    """Adder levels of a binary tree over ``n_terms`` operands (0 for one or none)."""
    return max(0, math.ceil(math.log2(n_terms))) if n_terms > 1 else 0


def sum_widths(terms, w):
    """(num, den) widths of a weighted sum of SPEC §3: num[e] = sum_j weight_j·v_j[e] over
    at most ``terms`` = (keys summed) · (largest weight) unit weights of w-bit values is
    signed, den = sum_j weight_j (>= 1) unsigned."""
    vmin = -(1 << (w - 1))
    return signed_width(terms * vmin, terms * -vmin), unsigned_width(terms)
