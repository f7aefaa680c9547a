"""HTTP and websocket routes. Components come in through ``daybreak.fastapi.Inject``."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket

from chat_service.bridge import AgentBridge, messages_key
from chat_service.cache import Cache
from chat_service.connections import ConnectionMonitor
from chat_service.db import Database
from chat_service.settings import Settings
from chat_service.ws import WebSocketConnection
from daybreak.fastapi import Inject, system_of

__all__ = ["router"]

router = APIRouter()
_MESSAGES_CACHED = 200
_MESSAGES_TTL = 5.0


@router.get("/")
async def index(request: Request, settings: Annotated[Settings, Inject],
                monitor: Annotated[ConnectionMonitor | None, Inject]) -> dict[str, Any]:
    system = system_of(request)
    return {"service": system.name, "status": system.status, "settings": settings.describe(),
            "connections": monitor.hub.stats() if monitor else None}


@router.get("/messages")
async def messages(db: Annotated[Database, Inject], cache: Annotated[Cache, Inject],
                   room: str = "lobby",
                   limit: Annotated[int, Query(ge=1, le=_MESSAGES_CACHED)] = 50) -> dict[str, Any]:
    """The latest messages of a room, oldest first (cached for a few seconds)."""
    key = messages_key(room)
    cached = await cache.get(key)
    if cached is not None:
        items = json.loads(cached)
    else:
        items = [m.to_dict() for m in await db.messages(room, limit=_MESSAGES_CACHED)]
        await cache.set(key, json.dumps(items), ttl=_MESSAGES_TTL)
    return {"room": room, "messages": items[-limit:]}


@router.websocket("/ws/chat")
async def chat(websocket: WebSocket, bridge: Annotated[AgentBridge, Inject],
               room: str = "lobby") -> None:
    await websocket.accept()
    await bridge.serve(WebSocketConnection(websocket), room)
