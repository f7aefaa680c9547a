"""Schema migrations, applied at start-up when possible.

The ``migrations`` component is optional: in production migrations often
run as a separate job, and a start that cannot apply them (no DDL rights,
another replica holding the lock too long) still starts, ``degraded``. The
database's schema check then decides: the service refuses to start on a
schema older than the code needs, or newer than it knows.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from chat_service.settings import display_url

__all__ = ["SCHEMA_VERSION", "MigrationReport", "migrate_postgres", "migrate_sqlite"]

# (version, SQLite statement, PostgreSQL statement)
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1,
     "CREATE TABLE chat_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, "
     "role TEXT NOT NULL, content TEXT NOT NULL, created_at REAL NOT NULL)",
     "CREATE TABLE IF NOT EXISTS chat_messages (id BIGSERIAL PRIMARY KEY, room TEXT NOT NULL, "
     "role TEXT NOT NULL, content TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)"),
    (2,
     "CREATE INDEX chat_messages_room ON chat_messages (room, id)",
     "CREATE INDEX IF NOT EXISTS chat_messages_room ON chat_messages (room, id)"),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
_PG_LOCK = 0x63686174  # "chat": one replica migrates at a time


@dataclass(frozen=True, slots=True)
class MigrationReport:
    backend: str
    before: int
    after: int
    applied: list[int] = field(default_factory=list)


def migrate_sqlite(path: Path) -> MigrationReport:
    """Apply pending migrations to the SQLite file at ``path`` (blocking)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")  # the write lock: one migrator at a time
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS chat_schema (version INTEGER NOT NULL)")
            before = int(conn.execute("SELECT coalesce(max(version), 0) FROM chat_schema").fetchone()[0])
            applied = []
            for version, statement, _ in MIGRATIONS:
                if version > before:
                    conn.execute(statement)
                    applied.append(version)
            if applied:
                conn.execute("DELETE FROM chat_schema")
                conn.execute("INSERT INTO chat_schema (version) VALUES (?)", (applied[-1],))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return MigrationReport("sqlite", before, applied[-1] if applied else before, applied)


async def migrate_postgres(url: str, *, timeout: float) -> MigrationReport:
    """Apply pending migrations over one connection, under an advisory lock."""
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise ConnectionError(f"cannot connect to PostgreSQL at {display_url(url)} to migrate: "
                              f"{type(exc).__name__}: {exc}") from exc
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _PG_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS chat_schema (version INTEGER NOT NULL)")
            before = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM chat_schema"))
            applied = []
            for version, _, statement in MIGRATIONS:
                if version > before:
                    await conn.execute(statement)
                    applied.append(version)
            if applied:
                await conn.execute("DELETE FROM chat_schema")
                await conn.execute("INSERT INTO chat_schema (version) VALUES ($1)", applied[-1])
    finally:
        await conn.close(timeout=timeout)
    return MigrationReport("postgresql", before, applied[-1] if applied else before, applied)
