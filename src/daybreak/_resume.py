"""Await a coroutine that has already been stepped once by hand.

The engine sends ``None`` into a step's coroutine itself: most steps of a
large plan return without ever waiting, and those need no task of their own,
no deadline, no bookkeeping at all. The few that do suspend hand over the
future they wait on, and :func:`resume` finishes them exactly as ``await``
would have: each resumption goes back into the coroutine as if the awaited
future had just completed, a cancellation (or ``close()``) is passed on.
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar, cast

__all__ = ["resume"]

T = TypeVar("T")


@types.coroutine
def resume(coro: Coroutine[Any, Any, T], pending: Any,
           context: contextvars.Context | None = None) -> Generator[Any, Any, T]:
    """The rest of ``await coro`` after ``pending = coro.send(None)``.

    With ``context``, the coroutine runs in it at every resumption, as a task
    runs its coroutine in a context of its own.
    """
    if context is not None:
        step: Callable[[Any], Any]
        while True:
            try:
                value = yield pending
            except BaseException as exc:  # a cancellation (or close()) belongs to the coroutine
                step, arg = coro.throw, exc
            else:
                step, arg = coro.send, value
            try:
                pending = context.run(step, arg)
            except StopIteration as stop:
                return cast("T", stop.value)
    while True:
        try:
            yield pending
        except BaseException as exc:
            try:
                pending = coro.throw(exc)
            except StopIteration as stop:
                return cast("T", stop.value)
            continue
        break
    result = yield from coro  # a native coroutine: allowed in a types.coroutine generator
    return cast("T", result)
