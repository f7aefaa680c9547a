"""Optional analytics: events buffered in memory and written to ClickHouse over HTTP.

Without ``CLICKHOUSE_URL`` the component is switched off (``Disabled``): the
service is ``ready``, not ``degraded``. When ClickHouse is configured but
unreachable, the component fails; it is optional, so the service starts
``degraded`` and chats without counting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from chat_service.settings import Settings, display_url
from chat_service.tasks import TaskManager
from daybreak import Disabled

__all__ = ["Analytics", "ClickHouseAnalytics", "analytics"]

logger = logging.getLogger("chat_service.analytics")
TABLE = "chat_events"
FLUSH_INTERVAL = 5.0
MAX_BUFFER = 10_000
_CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (ts DateTime64(3), event String, room String, "
           "chars UInt32) ENGINE = MergeTree ORDER BY ts")


class Analytics(Protocol):
    def record(self, event: str, **fields: Any) -> None: ...
    async def flush(self) -> int: ...
    async def ping(self) -> None: ...


class ClickHouseAnalytics:
    def __init__(self, client: Any, url: str, *, timeout: float) -> None:
        self._client = client
        self.url = display_url(url)
        self.timeout = timeout
        self._buffer: list[dict[str, Any]] = []
        self.written = 0
        self.dropped = 0

    def __repr__(self) -> str:
        return f"<ClickHouseAnalytics {self.url!r} buffered={len(self._buffer)}>"

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def record(self, event: str, **fields: Any) -> None:
        if len(self._buffer) >= MAX_BUFFER:
            self.dropped += 1
            return
        self._buffer.append({"ts": round(time.time(), 3), "event": event,
                             "room": str(fields.get("room", "")), "chars": int(fields.get("chars", 0))})

    async def _query(self, query: str, body: str | None = None) -> str:
        params = {"query": query}
        response = await self._client.post("/", params=params, content=body or "",
                                           timeout=self.timeout)
        if response.status_code != 200:
            raise RuntimeError(f"ClickHouse at {self.url} answered {response.status_code}: "
                               f"{response.text[:200]}")
        return str(response.text)

    async def ping(self) -> None:
        response = await self._client.get("/ping", timeout=self.timeout)
        if response.status_code != 200:
            raise RuntimeError(f"ClickHouse at {self.url} answered {response.status_code} to /ping")

    async def create_table(self) -> None:
        await self._query(_CREATE)

    async def flush(self) -> int:
        if not self._buffer:
            return 0
        batch, self._buffer = self._buffer, []
        body = "\n".join(json.dumps(e) for e in batch)
        try:
            await self._query(f"INSERT INTO {TABLE} FORMAT JSONEachRow", body)
        except Exception:
            self._buffer[:0] = batch[: MAX_BUFFER - len(self._buffer)]  # try again next time
            raise
        self.written += len(batch)
        return len(batch)


async def analytics(settings: Settings, tasks: TaskManager) -> AsyncIterator[Analytics]:
    """Component (optional)."""
    if not settings.clickhouse_url:
        raise Disabled("CLICKHOUSE_URL is not set")
    import httpx  # only when analytics is configured

    url = settings.clickhouse_url
    client = httpx.AsyncClient(base_url=url, timeout=settings.analytics_timeout, trust_env=False)
    store = ClickHouseAnalytics(client, url, timeout=settings.analytics_timeout)
    try:
        try:
            await store.ping()
            await store.create_table()
        except httpx.HTTPError as exc:
            raise ConnectionError(f"ClickHouse at {display_url(url)} is unreachable: "
                                  f"{type(exc).__name__}: {exc}") from exc
        flusher = tasks.every(FLUSH_INTERVAL, store.flush, name="chat-analytics-flush")
        try:
            yield store
        finally:
            flusher.cancel()
            await asyncio.wait([flusher])
            try:
                await store.flush()
            except Exception as exc:  # the service stops anyway; say what is lost
                logger.warning("analytics: %d event(s) not written at stop: %s",
                               store.pending, exc)
    finally:
        await client.aclose()
