"""Steps that run once per deployment, however many processes start at once.

With ``uvicorn --workers 4`` or several replicas, every process starts the
same registry, and migrations or seeding must run in just one of them. These
guards take a lock on the coordination service the app already has. The
process that gets it first runs the step; the others wait until it is done
and then go on without running it. The step is done when its block exits
without an exception, and that is recorded under ``key``: a process that
starts later does not run it again. If the process running it fails or dies,
the lock is released, and the next one in line runs the step.

::

    from daybreak.once import postgres_lock

    @registry.component(phase="database")
    async def migrations(settings: Settings) -> Migrated:
        async with postgres_lock(settings.database_url, f"migrations:{HEAD}") as leader:
            if leader:
                await migrate(settings.database_url)
        return Migrated()

Put what changes between deployments in ``key`` (the release, the migration
head): a key is done once, for good. While a process waits, its step is
starting, so the component's ``timeout=`` bounds the wait, and a hang report
shows the ``async with`` line.

The client libraries are imported on first use: ``asyncpg`` for
:func:`postgres_lock` (extra ``postgres``), ``redis`` for :func:`redis_lock`
(extra ``redis``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

__all__ = ["postgres_lock", "redis_lock"]

#: The PostgreSQL table of the keys that are done.
TABLE: Final = "daybreak_once"
_CREATE: Final = (f"CREATE TABLE IF NOT EXISTS {TABLE} "
                  "(key text PRIMARY KEY, done_at timestamptz NOT NULL DEFAULT now())")
# Two processes creating the table at once can both fail on pg_type's unique
# index; creating it under one transaction-scoped lock of its own avoids that.
_CREATE_LOCK: Final = 0x6461796272656B  # "daybrek"


def _lock_id(key: str) -> int:
    """A stable 64-bit advisory lock id for ``key`` (Python's hash() differs per process)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


@asynccontextmanager
async def postgres_lock(dsn: str, key: str) -> AsyncIterator[bool]:
    """Run the block in one process: ``True`` there, ``False`` where it was done already.

    A PostgreSQL session-level advisory lock: the processes queue on it in
    the server, and a process that dies releases it with its connection.
    Done keys are rows of the table ``daybreak_once``, created when missing.
    """
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _lock_id(key))  # waits for the one running it
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _CREATE_LOCK)
            await conn.execute(_CREATE)
        leader = not await conn.fetchval(f"SELECT true FROM {TABLE} WHERE key = $1", key)
    except BaseException:
        conn.terminate()  # a cancelled query leaves the connection in no state to close politely
        raise
    if not leader:
        await conn.close()
        yield False
        return
    try:
        yield True
        await conn.execute(f"INSERT INTO {TABLE} (key) VALUES ($1) ON CONFLICT DO NOTHING", key)
    finally:
        await conn.close()  # the session ends: the lock is released


@asynccontextmanager
async def redis_lock(url: str, key: str, *, ttl: float = 30.0) -> AsyncIterator[bool]:
    """Run the block in one process: ``True`` there, ``False`` where it was done already.

    A Redis lock (``SET NX PX``) at ``daybreak:once:<key>:lock``, renewed
    every ``ttl / 3`` seconds while the block runs: a process that dies holds
    it for at most ``ttl`` seconds more. The done key is
    ``daybreak:once:<key>:done`` (the time it was done).
    """
    import redis.asyncio as redis

    client: Any = redis.Redis.from_url(url)
    done = f"daybreak:once:{key}:done"
    try:
        lock = client.lock(f"daybreak:once:{key}:lock", timeout=ttl, sleep=0.05)
        await lock.acquire()  # waits for the one running it
        try:
            leader = not await client.exists(done)
        except BaseException:
            await lock.release()
            raise
        if not leader:
            await lock.release()
            yield False
            return
        renew = asyncio.get_running_loop().create_task(_renew(lock, ttl), name=f"daybreak: renew {key}")
        try:
            yield True
            await client.set(done, str(time.time()))
        finally:
            renew.cancel()
            await asyncio.wait({renew})  # a renewal in flight must not re-take the lock after release
            if not renew.cancelled():
                renew.exception()  # the lock was lost (it expired): release() says so
            await lock.release()
    finally:
        await client.aclose()


async def _renew(lock: Any, ttl: float) -> None:
    while True:
        await asyncio.sleep(ttl / 3)
        await lock.reacquire()  # back to the full ttl
