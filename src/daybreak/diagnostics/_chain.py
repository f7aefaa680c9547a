"""The raw frames of an await chain, followed through coroutines, generators and tasks.

`Task.get_stack()` returns only the outermost frame of a suspended task on 3.11-3.13,
so the chain is followed by hand: each coroutine, async generator and generator
names what it waits on (`cr_await`, `ag_await`, `gi_yieldfrom`), and a task's wait
ends on a future that may itself be a task or a gathering of tasks.
"""

from __future__ import annotations

import asyncio
import asyncio.tasks
import functools
import gc
import types
from collections.abc import Callable, Iterable
from typing import Any

from daybreak._resume import resume

MAX_DEPTH = 200

# C-level awaitables that hide what they wrap behind no attribute; their traverse
# function still names it, so gc.get_referents can see through them.
_WRAPPERS = frozenset(
    {
        "async_generator_asend",  # `async for`, `await agen.asend(...)`
        "async_generator_athrow",  # `await agen.athrow(...)`, `aclose()`
        "anext_awaitable",  # `await anext(agen, default)`
        "coroutine_wrapper",  # `yield from coro.__await__()`
        "FutureIter",  # `await future` on the C Future
    }
)

_Bridge = Callable[[types.FrameType], object]


def raw_await_chain(awaitable: object) -> list[types.FrameType]:
    """Frames from the outermost coroutine down to the innermost awaited one."""
    frames: list[types.FrameType] = []
    visited: list[object] = []  # keeps each visited object alive, so its id stays unique
    seen: set[int] = set()
    # A task's own record of what it waits on, used when its coroutine chain ends in
    # an awaitable this walk cannot see through.
    waiters: list[object] = []
    current: object = awaitable
    while len(frames) < MAX_DEPTH and len(visited) < 4 * MAX_DEPTH:
        if current is None or id(current) in seen:
            current = _unseen(waiters, seen)
            if current is None:
                break
        seen.add(id(current))
        visited.append(current)
        current = _step(current, frames, waiters)
    return frames


def _unseen(waiters: list[object], seen: set[int]) -> object:
    while waiters:
        waiter = waiters.pop()
        if id(waiter) not in seen:
            return waiter
    return None


def _step(obj: object, frames: list[types.FrameType], waiters: list[object]) -> object:
    if asyncio.isfuture(obj):
        return _into_future(obj, frames, waiters)
    if isinstance(obj, types.CoroutineType):
        frame, awaited = obj.cr_frame, obj.cr_await
    elif isinstance(obj, types.AsyncGeneratorType):
        frame, awaited = obj.ag_frame, obj.ag_await
    elif isinstance(obj, types.GeneratorType):
        frame, awaited = obj.gi_frame, obj.gi_yieldfrom
    elif type(obj).__name__ in _WRAPPERS:
        return next((r for r in gc.get_referents(obj) if _walkable(r)), None)
    else:
        return None
    if frame is None:  # finished: nothing below it is waiting
        return None
    if awaited is None and frame.f_code is resume.__code__:
        # The engine's hand-stepped factory: the future it yields is the
        # coroutine's, and the coroutine is what the chain is about.
        return frame.f_locals.get("coro")
    frames.append(frame)
    return awaited


def _into_future(future: Any, frames: list[types.FrameType], waiters: list[object]) -> object:
    if future.done():
        return None
    get_coro = getattr(future, "get_coro", None)
    if get_coro is not None:
        waiters.append(getattr(future, "_fut_waiter", None))
        return get_coro()
    children = getattr(future, "_children", None)
    if children is not None:  # asyncio.gather
        return _first_pending(children)
    resolver = getattr(future, "resolver", None)
    if asyncio.isfuture(resolver):  # a future that names the task that will resolve it
        return resolver
    # A plain future: whoever resolves it is invisible from here, except for the
    # asyncio helpers that keep the awaited tasks in their locals.
    bridge = _bridges().get(frames[-1].f_code) if frames else None
    return bridge(frames[-1]) if bridge is not None else None


def _first_pending(futures: Iterable[Any]) -> object:
    return next((f for f in futures if asyncio.isfuture(f) and not f.done()), None)


def _walkable(obj: object) -> bool:
    return (
        asyncio.isfuture(obj)
        or isinstance(obj, types.CoroutineType | types.AsyncGeneratorType | types.GeneratorType)
        or type(obj).__name__ in _WRAPPERS
    )


@functools.cache
def _bridges() -> dict[types.CodeType, _Bridge]:
    # Only frames suspended on the plain future they wait for get here, so reading
    # their locals races with nothing.
    bridges: dict[types.CodeType, _Bridge] = {}

    def local(name: str) -> _Bridge:
        return lambda frame: frame.f_locals.get(name)

    def pending_in(name: str) -> _Bridge:
        return lambda frame: _first_pending(frame.f_locals.get(name) or ())

    def group_tasks(frame: types.FrameType) -> object:
        return _first_pending(getattr(frame.f_locals.get("self"), "_tasks", ()))

    # 3.11's wait_for waits on a private future while the task runs beside it.
    bridges[asyncio.tasks.wait_for.__code__] = local("fut")
    wait = getattr(asyncio.tasks, "_wait", None)
    if isinstance(wait, types.FunctionType):
        bridges[wait.__code__] = pending_in("fs")
    for name in ("__aexit__", "_aexit"):
        method = getattr(asyncio.TaskGroup, name, None)
        if isinstance(method, types.FunctionType):
            bridges[method.__code__] = group_tasks
    return bridges
