"""The classes behind the plugin's fixtures; imported when a test first uses one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from daybreak.registry import Registry
from daybreak.system import System

__all__ = ["SyncSystem", "SystemFactory"]


class SyncSystem:
    """A system running on an event loop in a thread of its own, for sync tests.

    ``system[T]`` works as usual; ``run(coro)`` runs a coroutine on the
    system's loop and returns its result.
    """

    def __init__(self, system: System, loop: asyncio.AbstractEventLoop) -> None:
        self.system = system
        self.loop = loop

    def __getitem__(self, key: Any) -> Any:
        return self.system[key]

    def report(self) -> Any:
        return self.system.report()

    @property
    def state(self) -> Any:
        return self.system.state

    def run(self, coro: Any, timeout: float | None = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


class SystemFactory:
    """The ``daybreak_system`` fixture: starts systems and makes sure they stop."""

    def __init__(self) -> None:
        self.started: list[tuple[Registry, dict[str, Any]]] = []
        self._open: list[System] = []

    @asynccontextmanager
    async def __call__(self, registry: Registry, **start_options: Any) -> AsyncIterator[System]:
        self.started.append((registry, dict(start_options)))
        system = registry.start(**start_options)
        self._open.append(system)
        try:
            async with system:
                yield system
        finally:
            self._open.remove(system)

    @contextmanager
    def sync(self, registry: Registry, **start_options: Any) -> Iterator[SyncSystem]:
        self.started.append((registry, dict(start_options)))
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_forever()

        thread = threading.Thread(target=serve, name="daybreak-test-loop", daemon=True)
        thread.start()
        system = registry.start(**start_options)

        def call(fn: Callable[[], Any]) -> Any:
            return asyncio.run_coroutine_threadsafe(fn(), loop).result()

        try:
            call(system.start)
            try:
                yield SyncSystem(system, loop)
            finally:
                call(system.stop)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
