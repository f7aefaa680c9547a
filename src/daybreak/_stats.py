"""Robust trend estimation shared by the leak checker and the memory monitor."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence

__all__ = ["growing_share", "theil_sen"]

_MAX_POINTS = 64  # pairwise slopes are O(n^2): thin long series first


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Median of pairwise slopes: one outlier cycle cannot fake or hide a trend."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    n = len(xs)
    if n < 2:
        return 0.0
    if n > _MAX_POINTS:
        step = n / _MAX_POINTS
        picks = sorted({int(i * step) for i in range(_MAX_POINTS)} | {n - 1})
        xs = [xs[i] for i in picks]
        ys = [ys[i] for i in picks]
        n = len(xs)
    slopes = [(ys[j] - ys[i]) / (xs[j] - xs[i])
              for i in range(n) for j in range(i + 1, n) if xs[j] != xs[i]]
    return statistics.median(slopes) if slopes else 0.0


def growing_share(ys: Sequence[float]) -> float:
    """The share of consecutive steps that grow (0.0 for fewer than two points)."""
    steps = [b - a for a, b in itertools.pairwise(ys)]
    return sum(1 for d in steps if d > 0) / len(steps) if steps else 0.0
