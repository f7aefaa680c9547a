"""Litestar integration: a plugin that starts the system and serves the health routes (extra ``litestar``).

::

    from litestar import Litestar
    from daybreak.litestar import DaybreakPlugin

    app = Litestar(route_handlers=[...], plugins=[DaybreakPlugin(registry, background=True)])

The plugin adds a lifespan that starts the system when the server starts and
stops it when the server stops (the :class:`~daybreak.System` is
``app.state.daybreak``; :func:`system_of` reads it), and the routes of
:func:`health_router` under ``/health``. The answers, options and the
handling of a failed background start are those of
:mod:`daybreak.starlette`. ``import daybreak`` does not load Litestar.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request, Response, Router, get
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from daybreak import _health
from daybreak._drain import drain_seconds
from daybreak._health import DEFAULT_CHECK_INTERVAL, FAILED_START_EXIT_STATUS, FailureHook

if TYPE_CHECKING:
    from daybreak.registry import Registry
    from daybreak.system import System

__all__ = ["DEFAULT_CHECK_INTERVAL", "FAILED_START_EXIT_STATUS", "DaybreakPlugin", "health_router", "system_of"]

logger = logging.getLogger("daybreak.litestar")


def system_of(request: Request[Any, Any, Any]) -> System:
    """The :class:`~daybreak.System` that :class:`DaybreakPlugin` put on ``app.state``."""
    system = getattr(request.app.state, _health.STATE_ATTR, None)
    if system is None:
        raise RuntimeError("daybreak: app.state.daybreak is not set; pass "
                           "plugins=[daybreak.litestar.DaybreakPlugin(registry)] to Litestar()")
    return system  # type: ignore[no-any-return]


def _json(answer: tuple[int, dict[str, Any]], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(answer[1], status_code=answer[0], headers=headers, media_type="application/json")


def health_router(
    prefix: str = "/health",
    *,
    stacks: bool = False,
    token: str | None = None,
    allow_loopback: bool = False,
    check_interval: float = DEFAULT_CHECK_INTERVAL,
    include_in_schema: bool = True,
) -> Router:
    """``/live``, ``/ready``, ``/startup``, ``/memory`` (and ``/stacks``) under ``prefix``, as a Litestar router.

    The same answers and options as :func:`daybreak.starlette.health_routes`.
    """
    probes = _health.Probes(stacks=stacks, token=token, allow_loopback=allow_loopback,
                            check_interval=check_interval)

    def state(request: Request[Any, Any, Any]) -> tuple[System | None, str | None]:
        app_state = request.app.state
        return getattr(app_state, _health.STATE_ATTR, None), getattr(app_state, _health.ERROR_ATTR, None)

    @get("/live", include_in_schema=include_in_schema)
    async def live(request: Request[Any, Any, Any]) -> Response[Any]:
        return _json(_health.live(*state(request)))

    @get("/ready", include_in_schema=include_in_schema)
    async def ready(request: Request[Any, Any, Any]) -> Response[Any]:
        return _json(await probes.ready(*state(request)))

    @get("/startup", include_in_schema=include_in_schema)
    async def startup(request: Request[Any, Any, Any]) -> Response[Any]:
        system, _ = state(request)
        if system is None:
            return _json(_health.unavailable())
        code, body = await _health.startup(system)
        return Response(body, status_code=code, media_type="application/json")

    @get("/memory", include_in_schema=include_in_schema)
    async def memory(request: Request[Any, Any, Any]) -> Response[Any]:
        system, _ = state(request)
        return _json(_health.unavailable() if system is None else _health.memory(system))

    @get("/stacks", include_in_schema=False)
    async def stacks_endpoint(request: Request[Any, Any, Any]) -> Response[Any]:
        client = request.client
        denied = probes.stacks_denied(
            authorization=request.headers.get("authorization"), query=request.query_params.keys(),
            peer=client.host if client is not None else None,
            headers=[name.lower() for name in request.headers])
        if denied is not None:
            code, body, headers = denied
            return _json((code, body), headers)
        return _json(_health.stacks())

    handlers = [live, ready, startup, memory] + ([stacks_endpoint] if stacks else [])
    return Router(path=prefix, route_handlers=handlers, tags=["health"])


class DaybreakPlugin(InitPluginProtocol):
    """Start ``registry`` with the app and serve its health routes: ``Litestar(plugins=[DaybreakPlugin(registry)])``.

    Args:
        registry: what to start; ``start_options`` go to :meth:`Registry.start`.
        background: as for :func:`daybreak.starlette.lifespan`: ``False``
            (default) waits for the start before the server accepts
            connections, and a failed critical start fails the lifespan;
            ``True`` starts in the background, and a failed start turns the
            probes to 503, is logged on ``daybreak.litestar`` (stderr when no
            handler would show it) and calls ``on_failure``, by default a
            graceful shutdown and exit status 3.
        drain: the delay between the first ``SIGTERM`` and the server's
            shutdown, while readiness answers 503 (as for
            :func:`daybreak.starlette.lifespan`; default ``$DAYBREAK_DRAIN_S``,
            else 5 s).
        health_prefix: where the health routes go (:func:`health_router`);
            ``None`` for none.
        stacks, token, allow_loopback, check_interval, include_in_schema:
            the options of :func:`health_router`.
    """

    __slots__ = ("_background", "_drain", "_on_failure", "_registry", "_router", "_start_options")

    def __init__(
        self,
        registry: Registry,
        *,
        background: bool = False,
        on_failure: FailureHook | None = None,
        drain: float | None = None,
        health_prefix: str | None = "/health",
        stacks: bool = False,
        token: str | None = None,
        allow_loopback: bool = False,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        include_in_schema: bool = True,
        **start_options: Any,
    ) -> None:
        self._registry = registry
        self._background = background
        self._on_failure = on_failure
        self._drain = drain_seconds(drain)
        self._start_options = start_options
        self._router = None if health_prefix is None else health_router(
            health_prefix, stacks=stacks, token=token, allow_loopback=allow_loopback,
            check_interval=check_interval, include_in_schema=include_in_schema)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self._lifespan)
        if self._router is not None:
            app_config.route_handlers.append(self._router)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        async with _health.running(self._registry, app.state, background=self._background,
                                   on_failure=self._on_failure, log=logger,
                                   start_options=self._start_options, drain=self._drain):
            yield
