"""FastAPI (and Starlette) integration: lifespan, health routes, route injection.

Install the ``fastapi`` extra. This is the only daybreak module that imports
FastAPI; ``import daybreak`` does not load it.

::

    from typing import Annotated
    from fastapi import FastAPI
    from daybreak.fastapi import Inject, health_router, lifespan

    app = FastAPI(lifespan=lifespan(registry))
    app.include_router(health_router())

    @app.get("/users/{name}")
    async def user(name: str, db: Annotated[Database, Inject]) -> dict[str, str]:
        return await db.user(name)

- :func:`lifespan` starts the system when the server starts and stops it when
  the server stops; the :class:`~daybreak.System` is ``app.state.daybreak``.
- :func:`health_router` serves ``/health/live``, ``/health/ready``,
  ``/health/startup`` and ``/health/memory`` (and, when asked for,
  ``/health/stacks``).
- :func:`metrics_route` serves the Prometheus metrics of the system at
  ``/metrics`` (extra ``prometheus``): ``metrics_route(app)``.
- ``Annotated[T, Inject]``, ``component(T)`` and ``provider(T)`` hand a
  component to a route through FastAPI's ``Depends``, so
  ``app.dependency_overrides[provider(T)]`` replaces it in tests.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import ipaddress
import logging
import math
import os
import signal
import threading
import time
import types
import typing
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocketException, params
from fastapi.responses import JSONResponse
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from daybreak._introspect import type_name
from daybreak._redact import redact
from daybreak.asgi import REGISTRY_ATTR
from daybreak.diagnostics import task_stacks, thread_stacks
from daybreak.errors import StartupError

if TYPE_CHECKING:
    from daybreak.registry import Registry
    from daybreak.system import System

__all__ = [
    "Inject",
    "component",
    "health_router",
    "lifespan",
    "metrics_route",
    "provider",
    "request_shutdown",
    "system_of",
]

T = TypeVar("T")
FailureHook = Callable[[BaseException], object]

logger = logging.getLogger("daybreak.fastapi")

#: Seconds a readiness probe reuses the result of the last health-check run.
DEFAULT_CHECK_INTERVAL: Final = 2.0

_STATE_ATTR: Final = "daybreak"
_ERROR_ATTR: Final = "daybreak_error"


# -- lifespan ------------------------------------------------------------------


def request_shutdown(error: BaseException | None = None) -> None:
    """Ask the server to shut down gracefully, so that the orchestrator restarts it.

    It sends ``SIGTERM`` to this process: uvicorn, hypercorn and gunicorn's
    workers treat it as a graceful shutdown (uvicorn stops accepting
    connections, runs the lifespan shutdown, then re-raises the signal, so
    the process exits with status 143). ASGI has no message for an
    application to stop its server, so a signal is the portable way. Under a
    server that installs no handler, the default action ends the process.

    This is the default ``on_failure`` of :func:`lifespan` with
    ``background=True``; ``error`` is ignored.
    """
    del error
    os.kill(os.getpid(), signal.SIGTERM)


def lifespan(
    registry: Registry,
    *,
    background: bool = False,
    on_failure: FailureHook | None = None,
    **start_options: Any,
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """A lifespan for ``FastAPI(lifespan=...)`` that starts and stops ``registry``.

    The :class:`~daybreak.System` is ``app.state.daybreak`` from the moment the
    lifespan begins; ``start_options`` go to :meth:`Registry.start`
    (``overrides=``, ``timeout=``, ...).

    Args:
        registry: what to start.
        background: ``False`` (default): the server accepts connections only
            once the system is ready or degraded; a failed critical start
            fails the lifespan, and the server exits (uvicorn: status 3) after
            logging the :class:`~daybreak.StartupError`, whose message is
            redacted. ``True``: the server accepts connections at once and the
            system starts in a background task, so that a long start passes
            liveness probes; ``/health/ready`` turns 200 when it is up. A
            failed start then turns ``/health/ready`` and ``/health/live`` to
            503 and calls ``on_failure``.
        on_failure: called with the exception when a background start fails
            (awaited if it returns an awaitable); default
            :func:`request_shutdown` (``SIGTERM`` to this process). The
            redacted message is also kept as ``app.state.daybreak_error``.

    The background task belongs to the lifespan: a shutdown that comes
    while it is still starting cancels it (the start rolls back what it
    started) and waits for it before stopping the system.
    """
    hook: FailureHook = request_shutdown if on_failure is None else on_failure

    @asynccontextmanager
    async def run(app: Starlette) -> AsyncIterator[None]:
        system = registry.start(**start_options)
        setattr(app.state, _STATE_ATTR, system)
        setattr(app.state, _ERROR_ATTR, None)
        if not background:
            await system.start()
            try:
                yield
            finally:
                await system.stop()
            return
        task = asyncio.get_running_loop().create_task(
            _start_in_background(app, system, hook), name=f"daybreak: start {system.name}")
        try:
            yield
        finally:
            if not task.done():
                task.cancel()
            await asyncio.wait({task})
            await system.stop()

    setattr(run, REGISTRY_ATTR, registry)  # `daybreak start app:app` checks the app through it
    return run


async def _start_in_background(app: Starlette, system: System, on_failure: FailureHook) -> None:
    try:
        await system.start()
    except StartupError as exc:
        failure: BaseException = exc
        message = str(exc)  # redacted by the engine
    except Exception as exc:
        failure = exc
        message = redact(f"{type(exc).__name__}: {exc}")
    else:
        return
    setattr(app.state, _ERROR_ATTR, message)
    logger.error("daybreak: %r failed to start in the background; asking the server to shut "
                 "down\n%s", system.name, message)
    try:
        result = on_failure(failure)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("daybreak: the on_failure hook of %r failed", system.name)


def system_of(connection: HTTPConnection) -> System:
    """The :class:`~daybreak.System` that :func:`lifespan` put on ``app.state``."""
    system = getattr(connection.app.state, _STATE_ATTR, None)
    if system is None:
        raise RuntimeError(
            "daybreak: app.state.daybreak is not set; pass "
            "lifespan=daybreak.fastapi.lifespan(registry) to FastAPI(), or set "
            "app.state.daybreak to a started System")
    return system  # type: ignore[no-any-return]


def _error_of(connection: HTTPConnection) -> str | None:
    value = getattr(connection.app.state, _ERROR_ATTR, None)
    return value if isinstance(value, str) else None


# -- route injection ---------------------------------------------------------

_providers: dict[tuple[Any, bool], Callable[..., Awaitable[Any]]] = {}
_providers_lock = threading.Lock()


def _split_optional(key: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(key)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(key) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(key)) == 2:
            return args[0], True
    return key, False


def provider(key: Any) -> Callable[..., Awaitable[Any]]:
    """The FastAPI dependency that returns the instance providing ``key``.

    The same callable for the same type, every time: override it in tests with
    ``app.dependency_overrides[provider(Database)] = lambda: fake_db``. For
    ``T | None`` it returns ``None`` when the component is not up (disabled,
    failed, skipped); for ``T`` it answers 503 (an HTTP error, or a websocket
    close with code 1013 "try again later") until the component is up.
    """
    inner, optional = _split_optional(key)
    cache_key = (inner, optional)
    with _providers_lock:
        found = _providers.get(cache_key)
        if found is None:
            found = _providers[cache_key] = _make_provider(inner, optional)
    return found


def _make_provider(key: Any, optional: bool) -> Callable[..., Awaitable[Any]]:
    label = type_name(key) + (" | None" if optional else "")

    async def provide(connection: HTTPConnection) -> Any:
        system = system_of(connection)
        if optional:
            return system.get(key)
        try:
            return system[key]
        except KeyError:
            raise  # nothing provides it: a programming error, not an outage
        except LookupError as exc:  # provided, but not up (yet)
            detail = str(exc)
            if connection.scope["type"] == "websocket":
                raise WebSocketException(code=1013, reason=detail[:120]) from None
            raise HTTPException(status_code=503, detail=detail) from None

    provide.__name__ = provide.__qualname__ = f"provide[{label}]"
    provide.__doc__ = f"daybreak: the {label} of app.state.daybreak"
    return provide


def component(key: Any, *, use_cache: bool = True) -> Any:
    """``Depends(provider(key))``: ``db: Database = component(Database)``."""
    return Depends(provider(key), use_cache=use_cache)


def _is_provider(value: object) -> bool:
    return any(value is p for p in _providers.values())


class _InjectMarker(params.Depends):
    """``Annotated[T, Inject]``: FastAPI fills in ``T``, which becomes ``provider(T)``.

    FastAPI replaces a ``Depends`` without a callable by a copy whose
    dependency is the parameter's type (``dataclasses.replace`` since FastAPI
    made ``Depends`` a dataclass, attribute assignment before). Both paths
    come through here and turn the type into its provider.
    """

    def __post_init__(self) -> None:
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()
        dependency = self.dependency
        if dependency is not None and not _is_provider(dependency):
            object.__setattr__(self, "dependency", provider(dependency))

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "dependency" and value is not None and not _is_provider(value):
            value = provider(value)
        object.__setattr__(self, name, value)

    def __call__(self) -> _InjectMarker:
        return self

    def __repr__(self) -> str:
        return "daybreak.fastapi.Inject" if self.dependency is None else \
            f"daybreak.fastapi.Inject({getattr(self.dependency, '__name__', self.dependency)})"


#: Marker for ``Annotated[T, Inject]``: the route receives ``app.state.daybreak[T]``.
Inject: Final = _InjectMarker()


# -- health routes -------------------------------------------------------------

_Status = Literal["ready", "degraded", "unhealthy"]


class _Readiness:
    """Health-check results of one system, shared by every probe for ``interval`` s."""

    __slots__ = ("at", "interval", "lock", "results")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.lock = asyncio.Lock()
        self.at = -math.inf
        self.results: list[dict[str, Any]] = []

    def fresh(self) -> bool:
        return time.monotonic() - self.at < self.interval

    async def run(self, system: System) -> tuple[list[dict[str, Any]], float]:
        if not self.fresh():
            async with self.lock:  # one run at a time; the probes that waited reuse it
                if not self.fresh():
                    self.results = await system.check()
                    self.at = time.monotonic()
        return self.results, time.monotonic() - self.at


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _unavailable() -> JSONResponse:
    """503 for a probe of an app whose lifespan has not put a system on its state."""
    return JSONResponse({"status": "unavailable", "error": "app.state.daybreak is not set"},
                        status_code=503)


def health_router(
    prefix: str = "/health",
    *,
    stacks: bool = False,
    token: str | None = None,
    allow_loopback: bool = True,
    check_interval: float = DEFAULT_CHECK_INTERVAL,
    include_in_schema: bool = True,
) -> APIRouter:
    """Health endpoints for probes and people, reading ``app.state.daybreak``.

    - ``GET {prefix}/live``: 200 while the process and its event loop answer;
      it depends on no external service. 503 only after a background start
      failed (see :func:`lifespan`).
    - ``GET {prefix}/ready``: 200 when the system is ``ready`` or
      ``degraded`` and no health check of a critical component fails; 503
      while ``starting``, ``failed``, ``stopping`` or ``stopped``, or when a
      critical check fails (``status: unhealthy``). JSON: ``status``,
      ``phase``, ``failed`` (components and checks that are not well) and
      ``checks_age_s``. It re-runs the health checks
      (:meth:`System.check`), but at most once per ``check_interval``
      seconds (default 2): probes in between get the cached result, and
      probes that arrive while a run is in progress wait for it instead of
      starting their own, so a probe storm costs the database one round of
      checks. Each check is bounded by its own ``timeout`` (default 5 s).
    - ``GET {prefix}/startup``: the start-up report (``StartupReport.to_dict()``,
      redacted); 200 once the start finished (ready or degraded, or since
      stopping), 503 while pending or starting and after a failed start, so
      it also serves as a Kubernetes ``startupProbe``.
    - ``GET {prefix}/memory``: the figures of the system's
      :class:`daybreak.monitor.MemoryMonitor` (its ``to_dict()``: ``rss_bytes``,
      ``growth_bytes_per_s``, ``warnings``, ``sites``...) when a component
      provides one and it is up; 503 while it is still starting; 404, with
      the reason in ``error``, when no component provides one or it is not
      up (disabled by configuration, failed, stopped).
    - ``GET {prefix}/stacks``: only with ``stacks=True``: the stack of every
      thread and the await chain of every asyncio task. It is served to
      loopback clients (unless ``allow_loopback=False``) and to requests with
      ``Authorization: Bearer <token>``. "Loopback" is the client address
      the ASGI server reports: behind a reverse proxy on the same host, make
      the server apply the proxy's forwarded headers (uvicorn does so for
      127.0.0.1 by default), or every request looks local.
    """
    if check_interval < 0:
        raise ValueError(f"daybreak: check_interval={check_interval!r}; expected seconds >= 0")
    if token is not None and not token:
        raise ValueError("daybreak: token='' would accept an empty bearer token; pass None or a secret")
    router = APIRouter(prefix=prefix, tags=["health"])
    readiness: weakref.WeakKeyDictionary[System, _Readiness] = weakref.WeakKeyDictionary()

    @router.get("/live", include_in_schema=include_in_schema)
    async def live(request: Request) -> JSONResponse:
        system = getattr(request.app.state, _STATE_ATTR, None)
        error = _error_of(request)
        if error is not None or (system is not None and system.state.status == "failed"):
            return JSONResponse({"status": "failed", "error": error or _system_error(system)},
                                status_code=503)
        return JSONResponse({"status": "alive"})

    @router.get("/ready", include_in_schema=include_in_schema)
    async def ready(request: Request) -> JSONResponse:
        system = getattr(request.app.state, _STATE_ATTR, None)
        if system is None:
            return _unavailable()
        status = system.state.status
        if status not in ("ready", "degraded"):
            body: dict[str, Any] = {"status": status, "phase": system.state.phase,
                                    "failed": _failed_components(system)}
            error = _error_of(request) or _system_error(system)
            if error:
                body["error"] = error
            return JSONResponse(body, status_code=503)
        cache = readiness.get(system)
        if cache is None:
            cache = readiness[system] = _Readiness(check_interval)
        results, age = await cache.run(system)
        status = system.state.status  # it may have changed while the checks ran
        if status not in ("ready", "degraded"):
            return JSONResponse({"status": status, "phase": system.state.phase,
                                 "failed": _failed_components(system)}, status_code=503)
        failed = _failed_components(system)
        critical_failure = False
        for result in results:
            if result.get("status") != "failed":
                continue
            critical = _is_critical(system, result.get("component"))
            critical_failure = critical_failure or critical
            failed.append({"name": result["name"], "kind": "check",
                           "component": result.get("component"), "critical": critical,
                           "status": "failed", "error": _error_text(result.get("error"))})
        verdict: _Status = "unhealthy" if critical_failure else (
            "degraded" if status == "degraded" or failed else "ready")
        return JSONResponse({"status": verdict, "phase": None, "failed": failed,
                             "checks_age_s": round(age, 3)},
                            status_code=503 if critical_failure else 200)

    @router.get("/startup", include_in_schema=include_in_schema)
    async def startup(request: Request) -> JSONResponse:
        system = getattr(request.app.state, _STATE_ATTR, None)
        if system is None:
            return _unavailable()
        status = system.state.status
        code = 503 if status in ("pending", "starting", "failed") else 200
        return JSONResponse(system.report().to_dict(), status_code=code)

    @router.get("/memory", include_in_schema=include_in_schema)
    async def memory(request: Request) -> JSONResponse:
        system = getattr(request.app.state, _STATE_ATTR, None)
        if system is None:
            return _unavailable()
        return _memory_response(system)

    if stacks:
        @router.get("/stacks", include_in_schema=False)
        async def stacks_endpoint(request: Request) -> JSONResponse:
            if not _authorized(request, token, allow_loopback):
                if token is None:
                    return JSONResponse(
                        {"error": "stacks are served to loopback clients only; pass token= to "
                                  "health_router() to allow a bearer token"}, status_code=403)
                return JSONResponse({"error": "a valid 'Authorization: Bearer <token>' is required"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return JSONResponse({
                "threads": [t.to_dict() for t in thread_stacks()],
                "tasks": [t.to_dict() for t in task_stacks()],
            })

    return router


def _memory_response(system: System) -> JSONResponse:
    from daybreak.monitor import MemoryMonitor

    monitor = system.get(MemoryMonitor)
    if isinstance(monitor, MemoryMonitor):
        return JSONResponse(monitor.to_dict())
    step = next((s for s in system.plan.steps if s.provides is MemoryMonitor), None)
    if step is None:
        return JSONResponse(
            {"status": "absent",
             "error": f"no component of {system.name!r} provides daybreak.monitor.MemoryMonitor; add "
                      "registry.add(daybreak.monitor.memory_monitor(), optional=True) to monitor memory"},
            status_code=404)
    cs = system.state.components[step.name]
    detail = f"the memory monitor (component {step.name!r}) is {cs.status}"
    if cs.reason:
        detail += f": {cs.reason}"
    elif cs.error is not None:
        detail += f": {cs.error}"
    code = 503 if cs.status in ("pending", "starting") else 404
    return JSONResponse({"status": cs.status, "error": detail}, status_code=code)


def _authorized(request: Request, token: str | None, allow_loopback: bool) -> bool:
    if token is not None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
                credentials.strip().encode(), token.encode()):
            return True
    client = request.client
    return allow_loopback and client is not None and _is_loopback(client.host)


def _system_error(system: System | None) -> str | None:
    if system is None or system.state.error is None:
        return None
    return str(system.state.error)


def _error_text(error: Any) -> str | None:
    if isinstance(error, dict):
        text = f"{error.get('type')}: {error.get('message')}"
        return f"{text} (at {error['where']})" if error.get("where") else text
    return None if error is None else str(error)


def _is_critical(system: System, name: str | None) -> bool:
    if name is None:
        return False
    try:
        return system.plan.step(name).component.critical
    except (KeyError, LookupError, ValueError):
        return False


def _failed_components(system: System) -> list[dict[str, Any]]:
    """Components that failed, and, when degraded, those skipped because of it.

    A component switched off by configuration (``disabled``) is not a failure,
    and neither is one skipped only because of that while the system is ready.
    """
    show_skipped = system.state.status == "degraded"
    out = []
    for step in system.plan.steps:
        cs = system.state.components[step.name]
        if cs.status == "failed" or (cs.status == "skipped" and show_skipped):
            out.append({"name": step.name, "kind": step.component.kind,
                        "critical": step.component.critical, "status": cs.status,
                        "error": str(cs.error) if cs.error else cs.reason})
    return out


# -- Prometheus ------------------------------------------------------------------


class _ASGIEndpoint:
    """An ASGI app as a route's endpoint: Starlette calls it as it is (a function it would wrap)."""

    __slots__ = ("app",)

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def metrics_route(
    app: Starlette,
    path: str = "/metrics",
    *,
    collector_registry: Any = None,
    include_in_schema: bool = False,
) -> None:
    """Serve the Prometheus metrics of ``app.state.daybreak`` at ``GET {path}`` (extra ``prometheus``).

    ::

        app = FastAPI(lifespan=lifespan(registry))
        metrics_route(app)

    The figures are those of :class:`daybreak.prometheus.DaybreakCollector`
    (``daybreak_system_status``, ``daybreak_start_seconds``, per component
    statuses, durations and retries, loop blocks, and the memory monitor's
    ``daybreak_memory_*`` when the system has one), read from the system at
    scrape time. They go to a ``prometheus_client.CollectorRegistry`` of their
    own, unless ``collector_registry`` is given (``prometheus_client.REGISTRY``
    to serve your own metrics and the process collectors as well; the
    collector is then registered on it, once per call). Unlike
    ``app.mount(path, ...)``, the route answers ``{path}`` itself, not
    ``{path}/`` after a redirect. ``prometheus_client`` is imported here, not
    when ``daybreak.fastapi`` is.
    """
    try:
        from daybreak.prometheus import metrics_app
    except ModuleNotFoundError as exc:
        if exc.name != "prometheus_client":
            raise
        raise ModuleNotFoundError("daybreak.fastapi.metrics_route needs prometheus_client: "
                                  "pip install 'daybreak[prometheus]'", name=exc.name) from exc
    state = app.state

    def current() -> System | None:
        return getattr(state, _STATE_ATTR, None)

    endpoint = _ASGIEndpoint(metrics_app(collector_registry, system=current))
    app.add_route(path, endpoint, methods=["GET"], name="daybreak_metrics",  # type: ignore[arg-type]
                  include_in_schema=include_in_schema)
