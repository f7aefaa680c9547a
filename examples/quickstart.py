"""The README's example: a small service whose start shows what daybreak reports.

    daybreak plan examples/quickstart.py:registry
    daybreak start examples/quickstart.py:registry
    SEARCH_HANGS=1 daybreak start examples/quickstart.py:registry
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from daybreak import Disabled, Registry

registry = Registry("quickstart", phases=("init", "data", "services"))


@dataclass(frozen=True)
class Settings:
    database_url: str
    search_hangs: bool


class Database: ...
class Cache: ...
class Search: ...
class Mailer: ...


@registry.component(phase="init")
def settings() -> Settings:
    return Settings(database_url=os.environ.get("DATABASE_URL", "postgresql://app:hunter2@127.0.0.1/app"),
                    search_hangs=os.environ.get("SEARCH_HANGS") == "1")


@registry.component(phase="data", timeout=5, retries=2)
async def database(settings: Settings) -> AsyncIterator[Database]:
    await asyncio.sleep(0.05)  # connect
    yield Database()
    await asyncio.sleep(0.01)  # close


@registry.component(phase="data")
async def cache(settings: Settings) -> Cache:
    await asyncio.sleep(0.03)
    return Cache()


@database.check
async def database_ping(db: Database) -> None:
    await asyncio.sleep(0.001)


@registry.component(phase="services", optional=True, timeout=0.5)
async def search(settings: Settings, db: Database) -> Search:
    if settings.search_hangs:
        await asyncio.Event().wait()  # a connection that never answers
    return Search()


@registry.component(phase="services", optional=True)
def mailer(settings: Settings) -> Mailer:
    raise Disabled("SMTP_URL is not set")


@registry.validator(phase="services")
async def round_trip(db: Database, cache: Cache, search: Search | None) -> None:
    time.sleep(0.15)  # noqa: ASYNC251 - on purpose: daybreak reports this line
