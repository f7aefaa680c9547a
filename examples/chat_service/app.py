"""The chat service: its registry (``chat_service.app:registry``) and ASGI app (``:app``).

This module is the start-up plan in one page. Phases, in order:

========  ===================================================================
phase     components (``?`` optional, ``✓`` validator)
========  ===================================================================
init      settings
deps      data_dir, key_manager, llm_client, tool_registry
database  migrations?, database (check: schema_check)
cache     cache (check: cache_ping)
services  task_manager, agent_supervisor, analytics? (check: analytics_ping)
websocket ws_hub, agent_bridge, connection_monitor
finalize  comprehensive_validation ✓, critical_path_validation ✓, memory_monitor?
========  ===================================================================

Probes: ``/health/live``, ``/health/ready``, ``/health/startup``, and
``/health/memory`` (the memory monitor's figures; 404 unless ``MEMORY_MONITOR=1``);
``/metrics`` serves the start-up figures to Prometheus.

Run it with ``uvicorn chat_service.app:app`` (``examples/`` on ``sys.path``),
or ``uvicorn --factory chat_service.app:create_app``; check it with
``daybreak start chat_service.app:registry``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from chat_service import (
    agents,
    analytics,
    api,
    bridge,
    connections,
    memory,
    storage,
    tasks,
    tools,
    validation,
)
from chat_service.cache import Cache, MemoryCache, connect_redis
from chat_service.db import Database, SQLiteDatabase, connect_postgres
from chat_service.keys import KeyManager
from chat_service.llm import LLMClient
from chat_service.migrations import MigrationReport, migrate_postgres, migrate_sqlite
from chat_service.settings import Settings
from chat_service.storage import DataDir
from chat_service.ws import ws_hub
from daybreak import Registry
from daybreak.fastapi import health_router, lifespan, metrics_route

__all__ = ["app", "create_app", "registry"]

registry = Registry(
    "chat-service",
    phases=("init", "dependencies", "database", "cache", "services", "websocket", "finalize"),
)


# -- init ----------------------------------------------------------------------

@registry.component(phase="init", timeout=2, blocking=False)
def settings() -> Settings:
    """Read and validate the environment, at start (never at import)."""
    return Settings.from_env(os.environ)


# -- dependencies --------------------------------------------------------------

registry.add(storage.data_dir, phase="dependencies", timeout=10)


@registry.component(phase="dependencies", timeout=2, blocking=False)
def key_manager(settings: Settings) -> KeyManager:
    return KeyManager(settings.secret_key)


@registry.component(phase="dependencies", timeout=10, retries=1)
async def llm_client(settings: Settings) -> AsyncIterator[LLMClient]:
    client = LLMClient.from_settings(settings)
    try:
        yield client
    finally:
        await client.aclose()


registry.add(tools.tool_registry, phase="dependencies", timeout=2, blocking=False)


# -- database ------------------------------------------------------------------

@registry.component(phase="database", optional=True, timeout=30, retries=1)
async def migrations(settings: Settings, data: DataDir) -> MigrationReport:
    """Bring the schema up to date; optional: the schema check decides whether to start."""
    if settings.database_url:
        return await migrate_postgres(settings.database_url, timeout=settings.database_timeout)
    from chat_service._threads import run_in_thread

    return await run_in_thread(migrate_sqlite, data.sqlite_path, name="chat-migrations")


@registry.component(phase="database", timeout=30, retries=2, backoff=0.2, stop_timeout=10)
async def database(settings: Settings, data: DataDir,
                   migrations: MigrationReport | None) -> AsyncIterator[Database]:
    """PostgreSQL when DATABASE_URL is set, else SQLite in DATA_DIR. After the migrations."""
    del migrations  # only the order matters: the schema check reads the result
    db: Database
    if settings.database_url:
        db = await connect_postgres(settings.database_url, timeout=settings.database_timeout)
    else:
        sqlite = SQLiteDatabase(data.sqlite_path)
        await sqlite.open()
        db = sqlite
    try:
        yield db
    finally:
        await db.aclose()


database.check(validation.schema_check, timeout=5)


# -- cache -----------------------------------------------------------------------

@registry.component(phase="cache", timeout=30, retries=1, backoff=0.1)
async def cache(settings: Settings) -> AsyncIterator[Cache]:
    """Redis when REDIS_URL is set (each try bounded by CACHE_TIMEOUT), else in-process."""
    store: Cache
    if settings.redis_url:
        store = await connect_redis(settings.redis_url, timeout=settings.cache_timeout)
    else:
        store = MemoryCache()
    try:
        yield store
    finally:
        await store.aclose()


cache.check(validation.cache_ping, timeout=2)


# -- services --------------------------------------------------------------------

registry.add(tasks.task_manager, phase="services", timeout=5, stop_timeout=10)
registry.add(agents.agent_supervisor, phase="services", timeout=5, stop_timeout=10)
analytics_component = registry.add(analytics.analytics, phase="services", optional=True,
                                   timeout=15, retries=1, backoff=0.2)
analytics_component.check(validation.analytics_ping, timeout=3)


# -- websocket -------------------------------------------------------------------

registry.add(ws_hub, phase="websocket", timeout=2, stop_timeout=10)
registry.add(bridge.agent_bridge, phase="websocket", timeout=2, blocking=False)
registry.add(connections.connection_monitor, phase="websocket", timeout=2)


# -- finalize --------------------------------------------------------------------

registry.validator(validation.comprehensive_validation, phase="finalize", timeout=15)
registry.validator(validation.critical_path_validation, phase="finalize", timeout=15)
registry.add(memory.memory_monitor, phase="finalize", optional=True, timeout=5)


# -- the app -----------------------------------------------------------------------

def create_app(*, background: bool = False, **start_options: Any) -> FastAPI:
    """A new app: ``background=True`` accepts connections while the system starts.

    ``start_options`` go to ``registry.start()`` (``overrides=``, ``timeout=``...).
    """
    application = FastAPI(title="chat-service",
                          lifespan=lifespan(registry, background=background, **start_options))
    application.include_router(api.router)
    application.include_router(health_router("/health"))
    metrics_route(application)  # start-up figures for Prometheus, read from the report at scrape time
    return application


app = create_app()
