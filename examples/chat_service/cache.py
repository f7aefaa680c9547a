"""The cache: in-process with TTLs by default, Redis when ``REDIS_URL`` is set.

It holds short-lived data: the recent messages of a room (``GET /messages``)
and per-room rate-limit counters. Both implementations share :class:`Cache`.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from chat_service._deadline import deadline
from chat_service.settings import display_url

__all__ = ["Cache", "MemoryCache", "RedisCache", "connect_redis"]


class Cache(Protocol):
    backend: str

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, ttl: float) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def incr(self, key: str, ttl: float) -> int: ...
    async def ping(self) -> None: ...
    async def prune(self) -> int: ...
    async def aclose(self) -> None: ...


class MemoryCache:
    """A dict with expiry times; expired entries go on read and on :meth:`prune`."""

    backend = "memory"

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._clock = clock

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._data[key]
            return None
        return item[0]

    async def set(self, key: str, value: str, ttl: float) -> None:
        self._data[key] = (value, self._clock() + ttl)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, ttl: float) -> int:
        current = await self.get(key)
        value = int(current or 0) + 1
        expires = self._data[key][1] if current is not None else self._clock() + ttl
        self._data[key] = (str(value), expires)
        return value

    async def ping(self) -> None:
        return None

    async def prune(self) -> int:
        now = self._clock()
        expired = [k for k, (_, at) in self._data.items() if at <= now]
        for key in expired:
            del self._data[key]
        return len(expired)

    async def aclose(self) -> None:
        self._data.clear()


class RedisCache:
    backend = "redis"

    def __init__(self, client: Any, url: str) -> None:
        self._client = client
        self.url = display_url(url)

    def __repr__(self) -> str:
        return f"<RedisCache {self.url!r}>"

    async def get(self, key: str) -> str | None:
        value = await self._client.get(key)
        return None if value is None else value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._client.set(key, value, px=max(1, int(ttl * 1000)))

    async def delete(self, key: str) -> None:
        await self._client.delete(key)

    async def incr(self, key: str, ttl: float) -> int:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, max(1, int(ttl * 1000)), nx=True)
            value, _ = await pipe.execute()
        return int(value)

    async def ping(self) -> None:
        await self._client.ping()

    async def prune(self) -> int:
        return 0  # Redis expires keys itself

    async def aclose(self) -> None:
        await self._client.aclose()


async def connect_redis(url: str, *, timeout: float) -> RedisCache:
    """Connect and ping, within ``timeout`` (``CACHE_TIMEOUT``)."""
    import redis.asyncio as redis  # only when Redis is configured

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout,
                                  socket_timeout=max(timeout * 4, 1.0), health_check_interval=30)
    try:
        async with deadline(timeout, f"Redis at {display_url(url)}", setting="CACHE_TIMEOUT"):
            await client.ping()  # the first command: connects, then waits for PONG
    except BaseException as exc:
        await client.aclose()
        if isinstance(exc, (OSError, redis.RedisError)) and not isinstance(exc, TimeoutError):
            raise ConnectionError(f"cannot connect to Redis at {display_url(url)}: "
                                  f"{type(exc).__name__}: {exc}") from exc
        raise
    return RedisCache(client, url)
