"""The agent bridge: the chat protocol between a connection, the agents and the store.

Client → server: ``{"type": "message", "content": "..."}`` or ``{"type": "ping"}``.
Server → client: ``welcome`` (room and a signed session token), ``message``
(every message of the room, the user's and the assistant's, with its id),
``pong``, ``ping`` (from the connection monitor) and ``error``.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from chat_service.agents import AgentSupervisor
from chat_service.analytics import Analytics
from chat_service.cache import Cache
from chat_service.db import Database
from chat_service.keys import KeyManager
from chat_service.settings import Settings
from chat_service.ws import BadMessage, Connection, Disconnected, HubClosed, WebSocketHub

__all__ = ["MAX_MESSAGE", "AgentBridge", "agent_bridge", "messages_key"]

logger = logging.getLogger("chat_service.bridge")
MAX_MESSAGE = 4000
RATE_WINDOW = 60.0
INTERNAL_ROOM_PREFIX = "__"


def messages_key(room: str) -> str:
    return f"messages:{room}"


class AgentBridge:
    def __init__(self, *, hub: WebSocketHub, agents: AgentSupervisor, db: Database, cache: Cache,
                 keys: KeyManager, analytics: Analytics | None, rate_limit: int) -> None:
        self.hub = hub
        self.agents = agents
        self.db = db
        self.cache = cache
        self.keys = keys
        self.analytics = analytics
        self.rate_limit = rate_limit
        self.served = 0

    def __repr__(self) -> str:
        return f"<AgentBridge served={self.served}>"

    async def serve(self, conn: Connection, room: str) -> None:
        """Run one client until it disconnects (or the hub closes it)."""
        try:
            self.hub.join(room, conn)
        except HubClosed as exc:
            await conn.close(1013)
            logger.info("refused a connection to %r: %s", room, exc)
            return
        self.served += 1
        try:
            session = self.keys.sign(secrets.token_urlsafe(12))
            await self.hub.send(room, conn, {"type": "welcome", "room": room, "session": session})
            while True:
                try:
                    data = await conn.receive_json()
                except Disconnected:
                    return
                except BadMessage as exc:
                    await self.hub.send(room, conn, {"type": "error", "error": str(exc)})
                    continue
                await self.handle(conn, room, data)
        finally:
            self.hub.leave(room, conn)

    async def handle(self, conn: Connection, room: str, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "ping":
            await self.hub.send(room, conn, {"type": "pong"})
            return
        if kind == "pong":
            return
        content = data.get("content")
        if kind != "message" or not isinstance(content, str) or not content.strip():
            await self.hub.send(room, conn, {"type": "error",
                                             "error": "expected {'type': 'message', 'content': '...'}"})
            return
        if len(content) > MAX_MESSAGE:
            await self.hub.send(room, conn, {"type": "error",
                                             "error": f"a message has at most {MAX_MESSAGE} characters"})
            return
        if await self.cache.incr(f"rate:{room}", RATE_WINDOW) > self.rate_limit:
            await self.hub.send(room, conn, {"type": "error", "error": "rate limit: slow down"})
            return
        question = await self.db.add_message(room, "user", content)
        await self.cache.delete(messages_key(room))
        await self.hub.broadcast(room, {"type": "message", **question.to_dict()})
        try:
            answer_text = await self.agents.respond(room, content)
        except (TimeoutError, RuntimeError) as exc:
            logger.warning("no answer in %r: %s", room, exc)
            await self.hub.send(room, conn, {"type": "error", "error": "the assistant is unavailable"})
            return
        answer = await self.db.add_message(room, "assistant", answer_text)
        await self.cache.delete(messages_key(room))
        await self.hub.broadcast(room, {"type": "message", **answer.to_dict()})
        if self.analytics is not None and not room.startswith(INTERNAL_ROOM_PREFIX):
            self.analytics.record("message", room=room, chars=len(content))


def agent_bridge(settings: Settings, hub: WebSocketHub, agents: AgentSupervisor, db: Database,
                 cache: Cache, keys: KeyManager, analytics: Analytics | None) -> AgentBridge:
    """Component. Analytics is optional: without it, messages are simply not counted."""
    return AgentBridge(hub=hub, agents=agents, db=db, cache=cache, keys=keys, analytics=analytics,
                       rate_limit=settings.rate_limit)
