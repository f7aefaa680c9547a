"""ASGI applications as targets: daybreak drives an app's lifespan itself, without a server.

An app built on ``daybreak.fastapi.lifespan(registry)`` is checked through
that registry (every component in detail). Any other app — FastAPI,
Starlette, Litestar, Quart, anything that speaks the ASGI lifespan protocol —
becomes a registry of one component named after the app, whose factory sends
``lifespan.startup``, yields once ``lifespan.startup.complete`` comes back,
and sends ``lifespan.shutdown`` at stop. The engine then does the rest as for
any component: the timeline, the timeout, the await chain of a hang, loop
blocks, leftovers and leak cycles.

::

    from daybreak.asgi import registry_of

    async with registry_of(app).start() as system:
        ...  # the app's lifespan has started; it shuts down when the block ends

Standard library only: the app brings its framework.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Final

from daybreak.registry import Registry

__all__ = [
    "REGISTRY_ATTR",
    "LifespanFailed",
    "LifespanUnsupported",
    "check_lifespan",
    "is_asgi_app",
    "registry_in",
    "registry_of",
]

Message = MutableMapping[str, Any]
ASGIApp = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

#: The attribute ``daybreak.fastapi.lifespan`` sets on the lifespan it returns:
#: the registry it starts.
REGISTRY_ATTR: Final = "__daybreak_registry__"

#: Seconds an app may take, called with a lifespan scope, to ask for its first message.
PROBE_TIMEOUT: Final = 10.0


class LifespanFailed(RuntimeError):
    """The app answered ``lifespan.*.failed`` (or stopped answering) without raising."""


class LifespanUnsupported(Exception):
    """The app does not speak the ASGI lifespan protocol; the message is one line."""


def is_asgi_app(obj: object) -> bool:
    """Whether ``obj`` is an ASGI 3 application: ``async (scope, receive, send)``."""
    call = obj if inspect.isroutine(obj) else getattr(obj, "__call__", None)  # noqa: B004
    if not inspect.iscoroutinefunction(call):
        return False
    try:
        inspect.signature(obj).bind({}, None, None)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def registry_of(app: ASGIApp, *, name: str = "app", timeout: float | None = None) -> Registry:
    """The registry to check ``app`` with.

    The registry ``daybreak.fastapi.lifespan(registry)`` was given, when the
    app was built on it; otherwise a registry of one component, ``name``,
    that runs the app's whole lifespan. ``timeout`` is that component's start
    timeout (default: the registry's, 30 s).
    """
    own = registry_in(app)
    if own is not None:
        return own
    registry = Registry(name)
    options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    registry.add(_lifespan_factory(app, name), name=name, provides=type(app), blocking=False, **options)
    return registry


def registry_in(app: object) -> Registry | None:
    """The registry of ``daybreak.fastapi.lifespan(registry)`` when ``app`` was built on it."""
    # Starlette and FastAPI keep the lifespan on the router; FastAPI wraps it
    # when routers are included (its merged lifespan holds the original in a
    # closure), so follow __wrapped__ and the closures' callables.
    pending: list[object] = [getattr(getattr(app, "router", None), "lifespan_context", None)]
    seen: set[int] = set()
    while pending:
        fn = pending.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        registry = getattr(fn, REGISTRY_ATTR, None)
        if isinstance(registry, Registry):
            return registry
        pending.append(getattr(fn, "__wrapped__", None))
        for cell in getattr(fn, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if callable(value):
                pending.append(value)
    return None


def _scope() -> Message:
    return {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}


class _Probed(BaseException):
    """Raised from the probe's receive(): the app asked for its first message."""


async def check_lifespan(app: ASGIApp) -> None:
    """Raise :class:`LifespanUnsupported` unless ``app`` speaks the lifespan protocol.

    The app is called with a lifespan scope and stopped when it asks for its
    first message, before it has started anything. An app that raises first,
    returns first, or does not ask within :data:`PROBE_TIMEOUT` does not
    support lifespan (ASGI servers treat the first two the same way).
    """
    asked = False

    async def receive() -> Message:
        nonlocal asked
        asked = True
        raise _Probed

    async def send(message: Message) -> None:
        del message

    what = "returned"
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await app(_scope(), receive, send)
    except _Probed:
        return
    except TimeoutError:
        what = f"did not ask for lifespan.startup within {PROBE_TIMEOUT:g} s"
    except Exception as exc:
        what = f"raised {type(exc).__name__}"
    if not asked:
        raise LifespanUnsupported(f"the app does not support the ASGI lifespan protocol: called with a "
                                  f"lifespan scope, it {what} without asking for lifespan.startup")


class _Answer(asyncio.Future[None]):
    """Resolved when the app answers lifespan.startup, or ends without answering.

    ``resolver`` is the app's task: a hang report follows it from the step
    that waits here into the app's own frames.
    """

    resolver: asyncio.Task[None] | None = None


class _Session:
    """One run of an app's lifespan: what it was sent and what it answered."""

    __slots__ = ("_asked", "answer", "answered", "failure", "shutdown")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.answer = _Answer(loop=loop)
        self.answered: str | None = None  # the type of the app's last message
        self.failure: str | None = None  # the message of a lifespan.*.failed
        self.shutdown: asyncio.Future[Message] = loop.create_future()  # resolved at stop
        self._asked = False

    async def receive(self) -> Message:
        if not self._asked:
            self._asked = True
            return {"type": "lifespan.startup"}
        return await self.shutdown

    async def send(self, message: Message) -> None:
        self.answered = str(message.get("type"))
        if self.answered.endswith(".failed"):
            self.failure = _last_line(str(message.get("message") or ""))
        self.app_ended()

    def app_ended(self, *_: object) -> None:
        if not self.answer.done():
            self.answer.set_result(None)

    def error(self, when: str) -> LifespanFailed:
        if self.failure is not None:
            return LifespanFailed(f"lifespan.{when}.failed: {self.failure or 'no message'}")
        if self.answered in (None, f"lifespan.{when}.complete"):
            return LifespanFailed(f"the app's lifespan ended during its {when} (an ASGI app waits "
                                  "for lifespan.shutdown, then answers lifespan.shutdown.complete)")
        return LifespanFailed(f"the app answered lifespan.{when} with {self.answered!r}")


def _last_line(message: str) -> str:
    # Starlette sends the whole traceback; its last line says what failed.
    lines = message.strip().splitlines()
    return lines[-1] if message.lstrip().startswith("Traceback") and lines else message


async def _ended(task: asyncio.Task[None]) -> BaseException | None:
    """Wait for the app's task; what it raised, a lone exception out of its group."""
    try:
        await asyncio.wait({task})  # one task: a hang report follows it into the app
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task.cancelled():
        return None
    exc = task.exception()
    # anyio-based frameworks (Litestar) run the lifespan in a task group: the
    # app's own exception is the one inside, with the app's line.
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _lifespan_factory(app: ASGIApp, name: str) -> Callable[[], AsyncIterator[Any]]:
    async def lifespan() -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        session = _Session(loop)

        async def serve() -> None:  # nested here, so the app's frames belong to this component
            await app(_scope(), session.receive, session.send)

        # The app runs in one task from startup to shutdown, as under a server:
        # frameworks on anyio enter cancel scopes that must exit in the same task.
        task = loop.create_task(serve(), name=f"daybreak:{name} lifespan")
        task.add_done_callback(session.app_ended)
        session.answer.resolver = task
        try:
            await session.answer
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait({task})
            raise
        if session.answered != "lifespan.startup.complete":
            if not task.done():  # it answered failed and goes on: nothing more to wait for
                task.cancel()
            raise await _ended(task) or session.error("startup")
        try:
            yield app
        finally:
            session.shutdown.set_result({"type": "lifespan.shutdown"})
            exc = await _ended(task)
        if exc is not None:
            raise exc
        if session.answered != "lifespan.shutdown.complete":
            raise session.error("shutdown")

    return lifespan
