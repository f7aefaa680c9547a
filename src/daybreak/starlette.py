"""Starlette integration: lifespan, health routes, Prometheus metrics (extra ``starlette``).

::

    from starlette.applications import Starlette
    from daybreak.starlette import health_routes, lifespan

    app = Starlette(lifespan=lifespan(registry), routes=[*health_routes(), *my_routes])

- :func:`lifespan` starts the system when the server starts and stops it when
  the server stops; the :class:`~daybreak.System` is ``app.state.daybreak``.
- :func:`health_routes` are ``/health/live``, ``/health/ready``,
  ``/health/startup`` and ``/health/memory`` (and, when asked for,
  ``/health/stacks``) as Starlette routes: pass them to ``Starlette(routes=)``,
  or mount them (``Mount("/health", routes=health_routes(prefix=""))``).
- :func:`metrics_route` serves the Prometheus metrics of the system at
  ``/metrics`` (extra ``prometheus``).

:mod:`daybreak.fastapi` builds on this module. ``import daybreak`` does not
load it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from daybreak import _health
from daybreak._drain import drain_seconds
from daybreak._health import DEFAULT_CHECK_INTERVAL, FAILED_START_EXIT_STATUS, FailureHook, request_shutdown
from daybreak.asgi import REGISTRY_ATTR

if TYPE_CHECKING:
    from daybreak.registry import Registry
    from daybreak.system import System

__all__ = [
    "DEFAULT_CHECK_INTERVAL",
    "FAILED_START_EXIT_STATUS",
    "health_routes",
    "lifespan",
    "metrics_route",
    "request_shutdown",
    "system_of",
]

logger = logging.getLogger("daybreak.starlette")

_STATE_ATTR: Final = _health.STATE_ATTR


def lifespan(
    registry: Registry,
    *,
    background: bool = False,
    on_failure: FailureHook | None = None,
    drain: float | None = None,
    **start_options: Any,
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """A lifespan for ``Starlette(lifespan=...)`` (and FastAPI's) that starts and stops ``registry``.

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
            failed start turns ``/health/ready`` and ``/health/live`` to 503
            (until the process exits), is logged on the ``daybreak.starlette``
            logger (on stderr when no handler would show it), and calls
            ``on_failure``.
        on_failure: called with the exception when a background start fails
            (awaited if it returns an awaitable). The default asks the server
            to shut down (:func:`request_shutdown`: ``SIGTERM`` to this
            process) and, once the lifespan has stopped, ends the process
            with status :data:`FAILED_START_EXIT_STATUS` (3): a restart
            policy ``on-failure`` restarts it, and gunicorn stops instead of
            booting workers in a loop. The redacted message is also kept as
            ``app.state.daybreak_error``.
        drain: seconds between the first ``SIGTERM`` and the server's
            shutdown (default: ``$DAYBREAK_DRAIN_S``, else 5). Meanwhile
            ``/health/ready`` answers 503 (``status: draining``), so that the
            load balancers take the pod out of rotation, and every other
            route serves as before; then the server stops as it would have
            (no new connections, requests in flight finish, the system
            stops). A second ``SIGTERM`` ends the drain at once; ``0`` turns
            it off. A system that is not serving yet (or failed) does not
            drain.

    The background task belongs to the lifespan: a shutdown that comes
    while it is still starting cancels it (the start rolls back what it
    started) and waits for it before stopping the system.
    """

    seconds = drain_seconds(drain)

    @asynccontextmanager
    async def run(app: Starlette) -> AsyncIterator[None]:
        async with _health.running(registry, app.state, background=background, on_failure=on_failure,
                                   log=logger, start_options=start_options, drain=seconds):
            yield

    setattr(run, REGISTRY_ATTR, registry)  # `daybreak start app:app` checks the app through it
    return run


def system_of(connection: HTTPConnection) -> System:
    """The :class:`~daybreak.System` that :func:`lifespan` put on ``app.state``."""
    system = getattr(connection.app.state, _STATE_ATTR, None)
    if system is None:
        raise RuntimeError(
            "daybreak: app.state.daybreak is not set; pass "
            "lifespan=daybreak.starlette.lifespan(registry) to Starlette() (or FastAPI()), or set "
            "app.state.daybreak to a started System")
    return system  # type: ignore[no-any-return]


def _json(answer: tuple[int, dict[str, Any]], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(answer[1], status_code=answer[0], headers=headers)


def _peer(request: Request) -> str | None:
    client = request.client
    return client.host if client is not None else None


class _HealthEndpoints:
    """The endpoints behind :func:`health_routes`, shared with :func:`daybreak.fastapi.health_router`."""

    __slots__ = ("probes",)

    def __init__(self, probes: _health.Probes) -> None:
        self.probes = probes

    def routes(self) -> list[tuple[str, Callable[[Request], Awaitable[Response]], bool]]:
        """(path, endpoint, public): ``public`` is False for what stays out of API schemas."""
        out: list[tuple[str, Callable[[Request], Awaitable[Response]], bool]] = [
            ("/live", self.live, True), ("/ready", self.ready, True),
            ("/startup", self.startup, True), ("/memory", self.memory, True)]
        if self.probes.stacks:
            out.append(("/stacks", self.stacks, False))
        return out

    async def live(self, request: Request) -> Response:
        state = request.app.state
        return _json(_health.live(getattr(state, _STATE_ATTR, None),
                                  getattr(state, _health.ERROR_ATTR, None)))

    async def ready(self, request: Request) -> Response:
        state = request.app.state
        return _json(await self.probes.ready(getattr(state, _STATE_ATTR, None),
                                             getattr(state, _health.ERROR_ATTR, None)))

    async def startup(self, request: Request) -> Response:
        system = getattr(request.app.state, _STATE_ATTR, None)
        if system is None:
            return _json(_health.unavailable())
        code, body = await _health.startup(system)
        return Response(body, status_code=code, media_type="application/json")

    async def memory(self, request: Request) -> Response:
        system = getattr(request.app.state, _STATE_ATTR, None)
        return _json(_health.unavailable() if system is None else _health.memory(system))

    async def stacks(self, request: Request) -> Response:
        denied = self.probes.stacks_denied(
            authorization=request.headers.get("authorization"), query=request.query_params.keys(),
            peer=_peer(request), headers=request.headers.keys())
        if denied is not None:
            code, body, headers = denied
            return JSONResponse(body, status_code=code, headers=headers)
        return _json(_health.stacks())


def health_routes(
    prefix: str = "/health",
    *,
    stacks: bool = False,
    token: str | None = None,
    allow_loopback: bool = False,
    check_interval: float = DEFAULT_CHECK_INTERVAL,
    include_in_schema: bool = True,
) -> list[BaseRoute]:
    """Health endpoints for probes and people, reading ``app.state.daybreak``, as Starlette routes.

    - ``GET {prefix}/live``: 200 while the process and its event loop answer;
      it depends on no external service. 503 after a background start
      failed (see :func:`lifespan`), until the process exits.
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
      stopping), 503 while pending or starting (a summary: ``name``,
      ``status``, ``phase``) and after a failed start, so it also serves as
      a Kubernetes ``startupProbe``. The report is rendered once after the
      start and once after the stop, not per request.
    - ``GET {prefix}/memory``: the figures of the system's
      :class:`daybreak.monitor.MemoryMonitor` (its ``to_dict()``: ``rss_bytes``,
      ``growth_bytes_per_s``, ``warnings``, ``sites``...) when a component
      provides one and it is up; 503 while it is still starting; 404, with
      the reason in ``error``, when no component provides one or it is not
      up (disabled by configuration, failed, stopped).
    - ``GET {prefix}/stacks``: only with ``stacks=True``: the stack of every
      thread and the await chain of every asyncio task. It needs
      ``Authorization: Bearer <token>`` (compared in constant time; a token in
      the query string is refused), unless the app opts into
      ``allow_loopback=True``: then a request whose peer is a loopback
      address and that carries no forwarding header (``Forwarded``,
      ``X-Forwarded-For``, ``X-Real-IP``, ``True-Client-IP``, ...: servers and
      middlewares rewrite the client address from them) is served without a token. ``stacks=True`` with neither is
      an error.
    """
    endpoints = _HealthEndpoints(_health.Probes(stacks=stacks, token=token, allow_loopback=allow_loopback,
                                               check_interval=check_interval))
    return [Route(prefix + path, endpoint, methods=["GET"], include_in_schema=include_in_schema and public)
            for path, endpoint, public in endpoints.routes()]


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

        app = FastAPI(lifespan=lifespan(registry))   # or Starlette(...)
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
    when this module is.
    """
    try:
        from daybreak.prometheus import metrics_app
    except ModuleNotFoundError as exc:
        if exc.name != "prometheus_client":
            raise
        raise ModuleNotFoundError("daybreak's metrics_route needs prometheus_client: "
                                  "pip install 'daybreak[prometheus]'", name=exc.name) from exc
    state = app.state

    def current() -> System | None:
        return getattr(state, _STATE_ATTR, None)

    endpoint = _ASGIEndpoint(metrics_app(collector_registry, system=current))
    app.add_route(path, endpoint, methods=["GET"], name="daybreak_metrics",  # type: ignore[arg-type]
                  include_in_schema=include_in_schema)
