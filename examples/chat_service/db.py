"""The message store: SQLite by default, PostgreSQL when ``DATABASE_URL`` is set.

SQLite runs in a worker thread of its own (``chat-sqlite``): the stdlib
driver blocks, and one connection must stay on one thread. PostgreSQL uses
an asyncpg pool. Both implement :class:`Database`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from chat_service.settings import display_url

__all__ = ["Database", "Message", "PostgresDatabase", "SQLiteDatabase", "connect_postgres"]

T = TypeVar("T")
_CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    room: str
    role: str
    content: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "room": self.room, "role": self.role, "content": self.content,
                "created_at": self.created_at}


class Database(Protocol):
    backend: str

    async def add_message(self, room: str, role: str, content: str) -> Message: ...
    async def messages(self, room: str, limit: int = 50) -> list[Message]: ...
    async def delete_room(self, room: str) -> int: ...
    async def ping(self) -> None: ...
    async def schema_version(self) -> int: ...
    async def aclose(self) -> None: ...


class SQLiteDatabase:
    """SQLite on a single worker thread; every call is a job for that thread."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"<SQLiteDatabase {str(self.path)!r}>"

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chat-sqlite")
        try:
            await self._run(self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def _connect(self) -> None:
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        self._conn = conn

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("the database is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the database is closed")
        return self._conn

    async def add_message(self, room: str, role: str, content: str) -> Message:
        def insert() -> Message:
            now = time.time()
            cursor = self._db().execute(
                "INSERT INTO chat_messages (room, role, content, created_at) VALUES (?, ?, ?, ?)",
                (room, role, content, now))
            assert cursor.lastrowid is not None
            return Message(cursor.lastrowid, room, role, content, now)

        return await self._run(insert)

    async def messages(self, room: str, limit: int = 50) -> list[Message]:
        def select() -> list[Message]:
            rows = self._db().execute(
                "SELECT id, room, role, content, created_at FROM chat_messages WHERE room = ? "
                "ORDER BY id DESC LIMIT ?", (room, limit)).fetchall()
            return [Message(*row) for row in reversed(rows)]

        return await self._run(select)

    async def delete_room(self, room: str) -> int:
        def delete() -> int:
            return self._db().execute("DELETE FROM chat_messages WHERE room = ?", (room,)).rowcount

        return await self._run(delete)

    async def ping(self) -> None:
        await self._run(lambda: self._db().execute("SELECT 1").fetchone())

    async def schema_version(self) -> int:
        def version() -> int:
            db = self._db()
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chat_schema'"
                          ).fetchone() is None:
                return 0
            row = db.execute("SELECT max(version) FROM chat_schema").fetchone()
            return int(row[0] or 0)

        return await self._run(version)

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        finally:
            # The worker is idle now: joining it takes microseconds, and no thread stays behind.
            executor.shutdown(wait=True)


class PostgresDatabase:
    """PostgreSQL through an asyncpg pool."""

    backend = "postgresql"

    def __init__(self, pool: Any, url: str) -> None:
        self._pool = pool
        self.url = display_url(url)

    def __repr__(self) -> str:
        return f"<PostgresDatabase {self.url!r}>"

    async def add_message(self, room: str, role: str, content: str) -> Message:
        now = time.time()
        row = await self._pool.fetchrow(
            "INSERT INTO chat_messages (room, role, content, created_at) VALUES ($1, $2, $3, $4) "
            "RETURNING id", room, role, content, now)
        return Message(int(row["id"]), room, role, content, now)

    async def messages(self, room: str, limit: int = 50) -> list[Message]:
        rows = await self._pool.fetch(
            "SELECT id, room, role, content, created_at FROM chat_messages WHERE room = $1 "
            "ORDER BY id DESC LIMIT $2", room, limit)
        return [Message(int(r["id"]), r["room"], r["role"], r["content"], float(r["created_at"]))
                for r in reversed(rows)]

    async def delete_room(self, room: str) -> int:
        status = await self._pool.execute("DELETE FROM chat_messages WHERE room = $1", room)
        return int(status.rsplit(" ", 1)[-1])

    async def ping(self) -> None:
        await self._pool.fetchval("SELECT 1")

    async def schema_version(self) -> int:
        exists = await self._pool.fetchval("SELECT to_regclass('chat_schema') IS NOT NULL")
        if not exists:
            return 0
        return int(await self._pool.fetchval("SELECT coalesce(max(version), 0) FROM chat_schema"))

    async def aclose(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), _CLOSE_TIMEOUT)
        except TimeoutError:  # a connection is stuck in a query: do not wait for it
            self._pool.terminate()


async def connect_postgres(url: str, *, timeout: float) -> PostgresDatabase:
    """Open a pool; a failure names the URL, without its password."""
    import asyncpg  # only when PostgreSQL is configured

    try:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=5, timeout=timeout,
                                         command_timeout=max(timeout * 2, 5.0))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ConnectionError(f"cannot connect to PostgreSQL at {display_url(url)}: "
                              f"{type(exc).__name__}: {exc}") from exc
    return PostgresDatabase(pool, url)
