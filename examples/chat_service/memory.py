"""Memory monitoring: a placeholder, to be wired to ``daybreak.monitor``.

Off unless ``MEMORY_MONITOR=1``. When on, it samples the peak resident size
of the process every ``MONITOR_INTERVAL`` seconds through the task manager.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from chat_service.settings import Settings
from chat_service.tasks import TaskManager
from daybreak import Disabled

__all__ = ["MemoryMonitor", "memory_monitor"]


def _peak_rss_bytes() -> int:
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class MemoryMonitor:
    def __init__(self, max_samples: int = 360) -> None:
        self.samples: list[int] = []
        self.max_samples = max_samples

    def __repr__(self) -> str:
        return f"<MemoryMonitor samples={len(self.samples)}>"

    async def sample(self) -> None:
        self.samples.append(_peak_rss_bytes())
        del self.samples[: -self.max_samples]


async def memory_monitor(settings: Settings, tasks: TaskManager) -> AsyncIterator[MemoryMonitor]:
    """Component (optional)."""
    if not settings.memory_monitor:
        raise Disabled("MEMORY_MONITOR is not enabled")
    monitor = MemoryMonitor()
    await monitor.sample()
    sampler = tasks.every(settings.monitor_interval, monitor.sample, name="chat-memory-monitor")
    try:
        yield monitor
    finally:
        sampler.cancel()
        await asyncio.wait([sampler])
