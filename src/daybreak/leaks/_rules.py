"""The verdict rules: when a series of per-cycle measures is a leak, and the defaults of a check."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence

from daybreak._stats import growing_share, theil_sen

DEFAULT_CYCLES = 20
# One or two differences cannot tell a trend from a one-time step (a thread pool
# adding a worker, a cache filling late): with fewer than three measured cycles a
# clean service is called leaky a few times in a hundred; with three, never in our runs.
MIN_CYCLES = 3
DEFAULT_WARMUP = 3
DEFAULT_THRESHOLD = 1024
DEFAULT_TRACEBACK_LIMIT = 25

_PERSISTENT_SHARE = 0.75  # of the cycle-to-cycle differences that must grow


def memory_trend(traced: Sequence[float]) -> tuple[float, float, float]:
    """(Theil-Sen growth per cycle, share of cycles that grew, median growth of a cycle)."""
    if len(traced) < 2:
        return 0.0, 0.0, 0.0
    diffs = [b - a for a, b in itertools.pairwise(traced)]
    slope = theil_sen([float(i) for i in range(len(traced))], list(traced))
    return slope, growing_share(traced), statistics.median(diffs)


def memory_leaks(traced: Sequence[float], threshold: float) -> bool:
    """The memory rule: Theil-Sen growth above ``threshold``, and persistent.

    Persistent means at least 75% of the cycle-to-cycle differences grow and the
    median difference is at least half the threshold: a steady drift of a few
    bytes plus one step (a lazy import, a cache filling late) is not a leak.
    """
    return steady_growth(*memory_trend(traced), threshold)


def steady_growth(slope: float, share: float, median: float, threshold: float) -> bool:
    """The memory rule on a :func:`memory_trend`: also what a hint below the threshold uses."""
    return slope > threshold and share >= _PERSISTENT_SHARE and median >= threshold / 2


def counted_leaks(counts: Sequence[int]) -> bool:
    """The counted rule (CPython's refleak hunting): every measured cycle adds at least one."""
    return len(counts) >= 2 and all(b - a >= 1 for a, b in itertools.pairwise(counts))
