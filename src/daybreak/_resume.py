"""Await a coroutine that has already been stepped once by hand.

The engine sends ``None`` into a factory's coroutine itself: most factories
of a large plan return without ever waiting, and those need no deadline, no
task lookup, no bookkeeping at all. The few that do suspend hand over the
future they wait on, and :func:`resume` finishes them exactly as ``await``
would have: the first resumption goes back into the coroutine as if the
awaited future had just completed, everything after is plain ``yield from``.
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar, cast

__all__ = ["resume"]

T = TypeVar("T")


@types.coroutine
def resume(coro: Coroutine[Any, Any, T], pending: Any) -> Generator[Any, Any, T]:
    """The rest of ``await coro`` after ``pending = coro.send(None)``."""
    while True:
        try:
            yield pending
        except BaseException as exc:  # a cancellation (or close()) belongs to the coroutine
            try:
                pending = coro.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            continue
        break
    result = yield from coro  # a native coroutine: allowed in a types.coroutine generator
    return cast("T", result)
