"""Health checks of the components, and the two start-up validators.

The checks run once at start, right after their component, and again on
each (cached) readiness probe. The validators run once, in ``finalize``:
``comprehensive_validation`` exercises every component a chat needs;
``critical_path_validation`` chats once, through the same bridge as
``/ws/chat``, with an in-memory connection instead of a socket.
"""

from __future__ import annotations

import asyncio
import secrets

from chat_service.analytics import Analytics
from chat_service.bridge import AgentBridge, messages_key
from chat_service.cache import Cache
from chat_service.db import Database
from chat_service.llm import ChatTurn, LLMClient
from chat_service.migrations import SCHEMA_VERSION
from chat_service.tools import ToolRegistry
from chat_service.ws import MemoryConnection

__all__ = ["analytics_ping", "cache_ping", "comprehensive_validation", "critical_path_validation",
           "schema_check"]

VALIDATION_ROOM_PREFIX = "__validation__"


class ValidationError(RuntimeError):
    pass


async def schema_check(db: Database) -> None:
    """The schema is the one this code was written for (also a round trip to the database)."""
    version = await db.schema_version()
    if version < SCHEMA_VERSION:
        raise ValidationError(
            f"the {db.backend} schema is at version {version}, this code needs {SCHEMA_VERSION}: "
            "the migrations did not run (see the 'migrations' component)")
    if version > SCHEMA_VERSION:
        raise ValidationError(
            f"the {db.backend} schema is at version {version}, newer than this code knows "
            f"({SCHEMA_VERSION}): is an older release being deployed over a newer one?")


async def cache_ping(cache: Cache) -> None:
    await cache.ping()


async def analytics_ping(store: Analytics) -> None:
    await store.ping()


async def comprehensive_validation(db: Database, cache: Cache, llm: LLMClient, tools: ToolRegistry,
                                   analytics: Analytics | None) -> None:
    """Every check, plus a write and read of the cache and one completion of the LLM."""
    await schema_check(db)
    await db.ping()
    await cache_ping(cache)
    key = f"{VALIDATION_ROOM_PREFIX}:{secrets.token_hex(4)}"
    await cache.set(key, "ok", ttl=10)
    if await cache.get(key) != "ok":
        raise ValidationError(f"the {cache.backend} cache did not return what was just written")
    await cache.delete(key)
    if not await llm.complete([ChatTurn("user", "ping")]):
        raise ValidationError(f"the LLM provider {llm.provider.name!r} returned an empty answer")
    if not len(tools):
        raise ValidationError("no tool is registered")
    if analytics is not None:
        await analytics_ping(analytics)


async def critical_path_validation(bridge: AgentBridge, db: Database) -> None:
    """One chat message in, one answer out, both stored: the path every user takes."""
    room = f"{VALIDATION_ROOM_PREFIX}{secrets.token_hex(4)}"
    client = MemoryConnection()
    serving = asyncio.get_running_loop().create_task(bridge.serve(client, room),
                                                     name="chat-validation-client")
    try:
        welcome = await client.receive_until(lambda m: m["type"] == "welcome")
        if bridge.keys.verify(welcome["session"]) is None:
            raise ValidationError("the session token of the welcome message does not verify")
        await client.to_server.put({"type": "message", "content": "daybreak validation"})
        answer = await client.receive_until(
            lambda m: m["type"] == "error" or (m["type"] == "message" and m["role"] == "assistant"))
        if answer["type"] == "error":
            raise ValidationError(f"the chat answered with an error: {answer['error']}")
        if not answer["content"]:
            raise ValidationError("the assistant's answer is empty")
        stored = [m.role for m in await db.messages(room)]
        if stored != ["user", "assistant"]:
            raise ValidationError(f"expected the question and the answer in the database, found {stored}")
    finally:
        await client.close()
        await asyncio.wait([serving], timeout=5.0)
        if not serving.done():
            serving.cancel()
            await asyncio.wait([serving])
        await db.delete_room(room)
        await bridge.cache.delete(messages_key(room))
    if not serving.cancelled() and serving.exception() is not None:
        raise ValidationError("the chat connection failed") from serving.exception()
