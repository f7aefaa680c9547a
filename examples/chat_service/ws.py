"""The websocket hub: who is connected to which room, broadcast, sweep, close.

The hub speaks to :class:`Connection`, not to Starlette: the ``/ws/chat``
endpoint wraps its ``WebSocket`` in :class:`WebSocketConnection`, and the
start-up validation uses an in-memory :class:`MemoryConnection` to drive
the same code without a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

__all__ = ["Connection", "Disconnected", "HubClosed", "MemoryConnection", "WebSocketConnection",
           "WebSocketHub", "ws_hub"]

_SEND_TIMEOUT = 5.0
GOING_AWAY = 1001


class Disconnected(Exception):
    """The other side went away."""


class BadMessage(ValueError):
    """A frame that is not a JSON object."""


class HubClosed(RuntimeError):
    """The hub is shutting down or full; the connection is refused."""


class Connection(Protocol):
    async def send_json(self, data: dict[str, Any]) -> None: ...
    async def receive_json(self) -> dict[str, Any]: ...
    async def close(self, code: int = 1000) -> None: ...


class WebSocketConnection:
    """Adapts a Starlette ``WebSocket`` (already accepted) to :class:`Connection`."""

    def __init__(self, websocket: Any) -> None:
        self._ws = websocket

    async def send_json(self, data: dict[str, Any]) -> None:
        from starlette.websockets import WebSocketDisconnect

        try:
            await self._ws.send_json(data)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise Disconnected(str(exc)) from exc

    async def receive_json(self) -> dict[str, Any]:
        from starlette.websockets import WebSocketDisconnect

        try:
            text = await self._ws.receive_text()
        except (WebSocketDisconnect, RuntimeError) as exc:
            raise Disconnected(str(exc)) from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BadMessage(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadMessage("expected a JSON object")
        return data

    async def close(self, code: int = 1000) -> None:
        with contextlib.suppress(RuntimeError, OSError):  # already closed
            await self._ws.close(code)


class MemoryConnection:
    """An in-process connection: the test or validator is the client."""

    def __init__(self) -> None:
        self.to_server: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.to_client: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed: int | None = None

    async def send_json(self, data: dict[str, Any]) -> None:
        if self.closed is not None:
            raise Disconnected("closed")
        await self.to_client.put(data)

    async def receive_json(self) -> dict[str, Any]:
        data = await self.to_server.get()
        if data is None:
            raise Disconnected("closed by the client")
        return data

    async def close(self, code: int = 1000) -> None:
        if self.closed is None:
            self.closed = code
            self.to_server.put_nowait(None)

    async def receive_until(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
        """Client side: the first message from the server that satisfies ``predicate``."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.to_client.get()
                if predicate(message):
                    return message


class _Member:
    __slots__ = ("conn", "lock")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = asyncio.Lock()  # one send at a time per connection


class WebSocketHub:
    def __init__(self, max_connections: int = 10_000) -> None:
        self.max_connections = max_connections
        self._rooms: dict[str, dict[int, _Member]] = {}
        self._closing = False
        self.sent = 0
        self.dropped = 0

    def __repr__(self) -> str:
        return f"<WebSocketHub {self.stats()}>"

    @property
    def connections(self) -> int:
        return sum(len(m) for m in self._rooms.values())

    def stats(self) -> dict[str, int]:
        return {"rooms": len(self._rooms), "connections": self.connections, "sent": self.sent,
                "dropped": self.dropped}

    def join(self, room: str, conn: Connection) -> None:
        if self._closing:
            raise HubClosed("the service is shutting down")
        if self.connections >= self.max_connections:
            raise HubClosed("too many connections")
        self._rooms.setdefault(room, {})[id(conn)] = _Member(conn)

    def leave(self, room: str, conn: Connection) -> None:
        members = self._rooms.get(room)
        if members is not None:
            members.pop(id(conn), None)
            if not members:
                del self._rooms[room]

    async def _send(self, room: str, member: _Member, payload: dict[str, Any]) -> bool:
        try:
            async with member.lock, asyncio.timeout(_SEND_TIMEOUT):
                await member.conn.send_json(payload)
        except (Disconnected, TimeoutError, OSError):
            self.leave(room, member.conn)
            self.dropped += 1
            return False
        self.sent += 1
        return True

    async def send(self, room: str, conn: Connection, payload: dict[str, Any]) -> bool:
        member = self._rooms.get(room, {}).get(id(conn))
        if member is None:
            return False
        return await self._send(room, member, payload)

    async def broadcast(self, room: str, payload: dict[str, Any]) -> int:
        members = list(self._rooms.get(room, {}).values())
        results = await asyncio.gather(*(self._send(room, m, payload) for m in members))
        return sum(results)

    async def sweep(self) -> dict[str, int]:
        """Ping every connection; those that do not take it are dropped."""
        for room, members in list(self._rooms.items()):
            await asyncio.gather(*(self._send(room, m, {"type": "ping"}) for m in list(members.values())))
        return self.stats()

    async def aclose(self) -> None:
        self._closing = True
        members = [m for ms in self._rooms.values() for m in ms.values()]
        self._rooms.clear()
        if not members:
            return
        closing = [asyncio.ensure_future(m.conn.close(GOING_AWAY)) for m in members]
        _, pending = await asyncio.wait(closing, timeout=_SEND_TIMEOUT)
        for task in pending:  # a peer that does not read: give up on the close handshake
            task.cancel()
        if pending:
            await asyncio.wait(pending)


async def ws_hub() -> AsyncIterator[WebSocketHub]:
    """Component."""
    hub = WebSocketHub()
    try:
        yield hub
    finally:
        await hub.aclose()
