"""Memory monitoring: daybreak's :class:`~daybreak.monitor.MemoryMonitor`, switched by settings.

Off unless ``MEMORY_MONITOR=1``. When on, it samples the resident size of the
process every ``MEMORY_INTERVAL`` seconds on the event loop (no thread, no
task manager job), warns on ``daybreak.monitor`` when memory keeps growing,
and, with ``MEMORY_TOP_SITES=5``, names the lines that allocate it (tracemalloc:
for chasing a leak, not for every day). ``/health/memory`` serves its figures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from chat_service.settings import Settings
from daybreak import Disabled
from daybreak.monitor import MemoryMonitor

__all__ = ["MemoryMonitor", "memory_monitor"]


async def memory_monitor(settings: Settings) -> AsyncIterator[MemoryMonitor]:
    """Component (optional): daybreak's memory monitor, with the interval and sites of the settings."""
    if not settings.memory_monitor:
        raise Disabled("MEMORY_MONITOR is not enabled")
    async with MemoryMonitor(interval=settings.memory_interval,
                             top_sites=settings.memory_top_sites) as monitor:
        yield monitor
