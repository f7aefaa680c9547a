"""aiohttp.web integration: a cleanup context that starts the system, and the health routes (extra ``aiohttp``).

::

    from aiohttp import web
    from daybreak.aiohttp import cleanup_ctx, health_routes

    app = web.Application()
    app.cleanup_ctx.append(cleanup_ctx(registry, background=True))
    app.add_routes(health_routes())
    web.run_app(app)

- :func:`cleanup_ctx` starts the system when the app starts up and stops it
  when the app cleans up; handlers reach the :class:`~daybreak.System` with
  :func:`system_of` (also from sub-applications).
- :func:`health_routes` are ``/health/live``, ``/health/ready``,
  ``/health/startup`` and ``/health/memory`` (and, when asked for,
  ``/health/stacks``), with the answers and options of
  :func:`daybreak.starlette.health_routes`.

``import daybreak`` does not load aiohttp, nor does importing this module:
aiohttp is imported when :func:`cleanup_ctx` or :func:`health_routes` is
called (importing aiohttp installs warning filters, a side effect that
``daybreak imports`` would report against this module).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from daybreak import _health
from daybreak._drain import drain_seconds
from daybreak._health import DEFAULT_CHECK_INTERVAL, FAILED_START_EXIT_STATUS, FailureHook

if TYPE_CHECKING:
    from aiohttp import web

    from daybreak.registry import Registry
    from daybreak.system import System

__all__ = ["DEFAULT_CHECK_INTERVAL", "FAILED_START_EXIT_STATUS", "cleanup_ctx", "health_routes", "system_of"]

logger = logging.getLogger("daybreak.aiohttp")


class _State:
    """What the cleanup context leaves on the app: the system, and why a background start failed."""

    __slots__ = ("daybreak", "daybreak_error")

    def __init__(self) -> None:
        self.daybreak: System | None = None
        self.daybreak_error: str | None = None


@functools.cache
def _key() -> web.AppKey[_State]:
    from aiohttp import web

    return web.AppKey("daybreak", _State)


def cleanup_ctx(
    registry: Registry,
    *,
    background: bool = False,
    on_failure: FailureHook | None = None,
    drain: float | None = None,
    **start_options: Any,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """For ``app.cleanup_ctx.append(...)``: start ``registry`` with the app, stop it at clean-up.

    ``background`` and ``on_failure`` are those of
    :func:`daybreak.starlette.lifespan`: with ``background=False`` (default)
    the app serves once the system is ready or degraded, and a failed
    critical start fails the start-up (``web.run_app`` raises the
    :class:`~daybreak.StartupError`); with ``True`` it serves at once, and a
    failed start turns the probes to 503, is logged on ``daybreak.aiohttp``
    (stderr when no handler would show it) and calls ``on_failure``, by
    default a graceful shutdown and exit status 3. ``drain``: on the first
    ``SIGTERM`` (``web.run_app`` handles it), readiness answers 503 for that
    many seconds before the app shuts down (default ``$DAYBREAK_DRAIN_S``,
    else 5; see :func:`daybreak.starlette.lifespan`). ``start_options`` go to
    :meth:`Registry.start`.
    """

    key = _key()
    seconds = drain_seconds(drain)

    async def context(app: web.Application) -> AsyncIterator[None]:
        state = app[key] = _State()
        async with _health.running(registry, state, background=background, on_failure=on_failure,
                                   log=logger, start_options=start_options, drain=seconds,
                                   end_process=_health.exit_now):
            yield

    return context


def _state(request: web.Request) -> _State | None:
    return request.config_dict.get(_key())


def system_of(request: web.Request) -> System:
    """The :class:`~daybreak.System` that :func:`cleanup_ctx` started for this app (or a parent app)."""
    state = _state(request)
    if state is None or state.daybreak is None:
        raise RuntimeError("daybreak: no system on this app; add "
                           "app.cleanup_ctx.append(daybreak.aiohttp.cleanup_ctx(registry))")
    return state.daybreak


def _json(answer: tuple[int, dict[str, Any]], headers: dict[str, str] | None = None) -> web.Response:
    from aiohttp import web

    return web.json_response(answer[1], status=answer[0], headers=headers)


def _peer(request: web.Request) -> str | None:
    # The socket's own peer: aiohttp's request.remote can be rewritten (clone(remote=...)
    # by forwarded-header middlewares).
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return peer[0] if isinstance(peer, tuple) and peer else None


def health_routes(
    prefix: str = "/health",
    *,
    stacks: bool = False,
    token: str | None = None,
    allow_loopback: bool = False,
    check_interval: float = DEFAULT_CHECK_INTERVAL,
) -> list[web.RouteDef]:
    """The health endpoints, for ``app.add_routes(...)``; answers and options as in daybreak.starlette."""
    from aiohttp import web

    probes = _health.Probes(stacks=stacks, token=token, allow_loopback=allow_loopback,
                            check_interval=check_interval)

    def parts(request: web.Request) -> tuple[System | None, str | None]:
        state = _state(request)
        return (None, None) if state is None else (state.daybreak, state.daybreak_error)

    async def live(request: web.Request) -> web.Response:
        return _json(_health.live(*parts(request)))

    async def ready(request: web.Request) -> web.Response:
        return _json(await probes.ready(*parts(request)))

    async def startup(request: web.Request) -> web.Response:
        system, _ = parts(request)
        if system is None:
            return _json(_health.unavailable())
        code, body = await _health.startup(system)
        return web.Response(body=body, status=code, content_type="application/json")

    async def memory(request: web.Request) -> web.Response:
        system, _ = parts(request)
        return _json(_health.unavailable() if system is None else _health.memory(system))

    async def stacks_endpoint(request: web.Request) -> web.Response:
        denied = probes.stacks_denied(
            authorization=request.headers.get("Authorization"), query=request.query.keys(),
            peer=_peer(request), headers=[name.lower() for name in request.headers])
        if denied is not None:
            code, body, headers = denied
            return _json((code, body), headers)
        return _json(_health.stacks())

    routes = [web.get(f"{prefix}/live", live), web.get(f"{prefix}/ready", ready),
              web.get(f"{prefix}/startup", startup), web.get(f"{prefix}/memory", memory)]
    if stacks:
        routes.append(web.get(f"{prefix}/stacks", stacks_endpoint))
    return routes
