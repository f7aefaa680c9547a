"""FastAPI integration: lifespan, health routes, route injection (extra ``fastapi``).

It builds on :mod:`daybreak.starlette` (FastAPI is Starlette): the lifespan,
``system_of``, ``request_shutdown`` and ``metrics_route`` are the same
functions. FastAPI 0.110.1 and later are supported; ``import daybreak``
does not load FastAPI.

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
  ``/health/stacks``): :func:`daybreak.starlette.health_routes` as an
  ``APIRouter``, so that they appear in the OpenAPI schema.
- :func:`metrics_route` serves the Prometheus metrics of the system at
  ``/metrics`` (extra ``prometheus``): ``metrics_route(app)``.
- ``Annotated[T, Inject]``, ``component(T)`` and ``provider(T)`` hand a
  component to a route through FastAPI's ``Depends``, so
  ``app.dependency_overrides[provider(T)]`` replaces it in tests.
"""

from __future__ import annotations

import dataclasses
import threading
import types
import typing
from collections.abc import Awaitable, Callable
from typing import Any, Final

import fastapi

from daybreak._introspect import type_name

#: The oldest FastAPI release daybreak.fastapi supports (the ``fastapi`` extra's lower bound).
# 0.110.0 wrote the type of an ``Annotated[T, Inject]`` parameter into the shared
# marker itself (0.110.1 copies it first), so every route got the first route's T.
MINIMUM_FASTAPI: Final = (0, 110, 1)


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


if _release(fastapi.__version__) < MINIMUM_FASTAPI:
    raise ImportError(f"daybreak.fastapi supports FastAPI >= {'.'.join(map(str, MINIMUM_FASTAPI))}, "
                      f"this is FastAPI {fastapi.__version__}: pip install 'daybreak[fastapi]'")

from fastapi import APIRouter, Depends, HTTPException, WebSocketException, params  # noqa: E402
from starlette.requests import HTTPConnection  # noqa: E402

from daybreak import _health  # noqa: E402
from daybreak.starlette import (  # noqa: E402
    DEFAULT_CHECK_INTERVAL,
    _HealthEndpoints,
    lifespan,
    metrics_route,
    request_shutdown,
    system_of,
)

__all__ = [
    "DEFAULT_CHECK_INTERVAL",
    "MINIMUM_FASTAPI",
    "Inject",
    "component",
    "health_router",
    "lifespan",
    "metrics_route",
    "provider",
    "request_shutdown",
    "system_of",
]

T = typing.TypeVar("T")


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
    dependency is the parameter's type: by attribute assignment before
    ``Depends`` was a dataclass (``_set_dependency`` below), by
    ``dataclasses.replace`` since. ``replace`` calls the class's own
    ``__init__``, which runs ``__post_init__`` only if the dataclass that
    generated it had one when it was made: so this class is made a
    dataclass of its own (see below), whatever FastAPI's ``Depends`` has.
    """

    def __post_init__(self) -> None:
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()
        dependency = self.dependency
        if dependency is not None and not _is_provider(dependency):
            object.__setattr__(self, "dependency", provider(dependency))

    def __call__(self) -> _InjectMarker:
        return self

    def __repr__(self) -> str:
        return "daybreak.fastapi.Inject" if self.dependency is None else \
            f"daybreak.fastapi.Inject({getattr(self.dependency, '__name__', self.dependency)})"


def _set_dependency(self: _InjectMarker, name: str, value: Any) -> None:
    if name == "dependency" and value is not None and not _is_provider(value):
        value = provider(value)
    object.__setattr__(self, name, value)


if dataclasses.is_dataclass(params.Depends):  # FastAPI >= 0.122
    _frozen = bool(getattr(getattr(params.Depends, "__dataclass_params__", None), "frozen", False))
    _InjectMarker = dataclasses.dataclass(frozen=_frozen, repr=False, eq=False)(_InjectMarker)  # type: ignore[misc]
else:  # FastAPI < 0.122 sets the attribute on a copy
    _InjectMarker.__setattr__ = _set_dependency  # type: ignore[unreachable, unused-ignore]


#: Marker for ``Annotated[T, Inject]``: the route receives ``app.state.daybreak[T]``.
Inject: Final = _InjectMarker()


# -- health routes -------------------------------------------------------------


def health_router(
    prefix: str = "/health",
    *,
    stacks: bool = False,
    token: str | None = None,
    allow_loopback: bool = False,
    check_interval: float = DEFAULT_CHECK_INTERVAL,
    include_in_schema: bool = True,
) -> APIRouter:
    """:func:`daybreak.starlette.health_routes` as an ``APIRouter``: ``app.include_router(health_router())``.

    The same routes, answers and options (see there); ``/stacks`` stays out
    of the OpenAPI schema.
    """
    endpoints = _HealthEndpoints(_health.Probes(stacks=stacks, token=token, allow_loopback=allow_loopback,
                                               check_interval=check_interval))
    router = APIRouter(prefix=prefix, tags=["health"])
    for path, endpoint, public in endpoints.routes():
        router.add_api_route(path, endpoint, methods=["GET"], include_in_schema=include_in_schema and public)
    return router
