"""Production memory monitoring as a component: RSS trend, growing allocation sites.

Add it to any registry::

    from daybreak.monitor import memory_monitor

    registry.add(memory_monitor(interval=1.0), phase="finalize", optional=True)

It samples on the event loop (no thread of its own), keeps a bounded window,
estimates growth with a robust trend (Theil–Sen) and logs a warning with the
top growing allocation sites when sustained growth exceeds the threshold.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import time
import tracemalloc
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from daybreak._stats import theil_sen

__all__ = ["MemoryMonitor", "memory_monitor", "rss_bytes"]

logger = logging.getLogger("daybreak.monitor")

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """The resident set size of this process, in bytes (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        import resource  # ru_maxrss is a peak, the best other platforms offer

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class MemoryMonitor:
    """Samples RSS every ``interval`` seconds into a window of ``window`` samples.

    ``threshold`` is the sustained growth, in bytes per minute, above which a
    warning is logged (once per ``window``, while it lasts). With
    ``top_sites > 0`` tracemalloc is started (it costs memory and CPU: use it
    to chase a leak, not by default) and the warning names the sites that grew.
    """

    interval: float = 1.0
    window: int = 300
    threshold: float = 1024 * 1024
    top_sites: int = 0
    min_samples: int = 12
    read_rss: Callable[[], int] = rss_bytes
    clock: Callable[[], float] = time.monotonic
    samples: deque[tuple[float, int]] = field(init=False)
    warnings: int = field(default=0, init=False)
    last_warning: str | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _baseline: tracemalloc.Snapshot | None = field(default=None, init=False, repr=False)
    _owns_tracemalloc: bool = field(default=False, init=False, repr=False)
    _warned_at: int = field(default=-(10**9), init=False, repr=False)
    _ticks: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ValueError(f"MemoryMonitor: interval={self.interval!r}; expected seconds > 0")
        if self.window < 2:
            raise ValueError(f"MemoryMonitor: window={self.window!r}; expected at least 2 samples")
        self.samples = deque(maxlen=self.window)

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        if self._task is not None:
            return
        if self.top_sites and not tracemalloc.is_tracing():
            tracemalloc.start(25)
            self._owns_tracemalloc = True
        if self.top_sites:
            self._baseline = tracemalloc.take_snapshot()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="daybreak-memory-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # waits without taking on the task's cancellation
        if self._owns_tracemalloc:
            tracemalloc.stop()
            self._owns_tracemalloc = False
        self._baseline = None

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    # -- measuring ----------------------------------------------------------
    def sample(self) -> None:
        """Take one sample now and warn if growth is sustained."""
        self.samples.append((self.clock(), self.read_rss()))
        self._ticks += 1
        growth = self.growth_bytes_per_s()
        if growth is None or growth * 60 <= self.threshold:
            return
        if not self._sustained(growth):
            return  # a sawtooth or a few jumps, not a trend
        if self._ticks - self._warned_at < self.window:
            return
        self._warned_at = self._ticks
        self.warnings += 1
        sites = self.growing_sites()
        detail = "; ".join(f"{s['where']} +{s['bytes']} B" for s in sites) or "run with top_sites=5 to see where"
        self.last_warning = (f"memory grows {growth * 60 / 1024:.0f} KiB/min over the last "
                             f"{len(self.samples)} samples (threshold {self.threshold / 1024:.0f} KiB/min): {detail}")
        logger.warning("%s", self.last_warning)

    def _sustained(self, growth: float) -> bool:
        # The slope alone can be fooled by a sawtooth: also ask that the
        # newest third of the window sit clearly above the oldest third.
        third = len(self.samples) // 3
        old = statistics.median(rss for _, rss in list(self.samples)[:third])
        new = statistics.median(rss for _, rss in list(self.samples)[-third:])
        span = self.samples[-1][0] - self.samples[0][0]
        return new - old > 0.5 * growth * span * 2 / 3

    def growth_bytes_per_s(self) -> float | None:
        """Robust RSS trend over the window, or None with too few samples."""
        if len(self.samples) < self.min_samples:
            return None
        xs = [t for t, _ in self.samples]
        ys = [float(rss) for _, rss in self.samples]
        return theil_sen(xs, ys)

    def growing_sites(self) -> list[dict[str, Any]]:
        if not self.top_sites or self._baseline is None or not tracemalloc.is_tracing():
            return []
        from daybreak.diagnostics import Frame, innermost_project_frame

        current = tracemalloc.take_snapshot().filter_traces(
            (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)))
        out = []
        for stat in current.compare_to(self._baseline, "traceback")[: self.top_sites * 4]:
            if stat.size_diff <= 0:
                continue
            frames = [Frame(f.filename, f.lineno, "?") for f in reversed(stat.traceback)]
            where = innermost_project_frame(frames)
            out.append({"where": where.where if where else "?", "bytes": stat.size_diff,
                        "count": stat.count_diff})
            if len(out) == self.top_sites:
                break
        return out

    def to_dict(self) -> dict[str, Any]:
        growth = self.growth_bytes_per_s()
        return {
            "rss_bytes": self.samples[-1][1] if self.samples else None,
            "samples": len(self.samples),
            "interval_s": self.interval,
            "window_s": round(self.samples[-1][0] - self.samples[0][0], 3) if len(self.samples) > 1 else 0.0,
            "growth_bytes_per_s": None if growth is None else round(growth, 3),
            "threshold_bytes_per_min": self.threshold,
            "warnings": self.warnings,
            "last_warning": self.last_warning,
            "sites": self.growing_sites(),
        }


def memory_monitor(**options: Any) -> Callable[[], AsyncIterator[MemoryMonitor]]:
    """A factory for ``registry.add``: a :class:`MemoryMonitor` started with the system."""

    async def memory_monitor() -> AsyncIterator[MemoryMonitor]:
        monitor = MemoryMonitor(**options)
        monitor.start()
        try:
            yield monitor
        finally:
            await monitor.stop()

    return memory_monitor
