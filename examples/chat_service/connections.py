"""Connection monitoring: a periodic sweep of the websocket hub.

Every ``MONITOR_INTERVAL`` seconds it pings every connection (dropping the
dead ones) and keeps the latest numbers for ``GET /``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from chat_service.settings import Settings
from chat_service.tasks import TaskManager
from chat_service.ws import WebSocketHub

__all__ = ["ConnectionMonitor", "connection_monitor"]

logger = logging.getLogger("chat_service.connections")


class ConnectionMonitor:
    def __init__(self, hub: WebSocketHub) -> None:
        self.hub = hub
        self.sweeps = 0
        self.last: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<ConnectionMonitor sweeps={self.sweeps}>"

    async def sweep(self) -> None:
        stats = await self.hub.sweep()
        self.sweeps += 1
        self.last = {**stats, "at": time.time()}
        logger.debug("connections: %s", stats)


async def connection_monitor(settings: Settings, hub: WebSocketHub,
                             tasks: TaskManager) -> AsyncIterator[ConnectionMonitor]:
    """Component."""
    monitor = ConnectionMonitor(hub)
    sweeper = tasks.every(settings.monitor_interval, monitor.sweep, name="chat-connection-monitor")
    try:
        yield monitor
    finally:
        sweeper.cancel()
        await asyncio.wait([sweeper])
