"""Run a blocking call in a short-lived thread of its own.

Not ``asyncio.to_thread``: the loop's default executor keeps its idle
threads after the call, and daybreak would rightly report them as left
behind by the stop. A dedicated thread ends with its call, and the result
is delivered only once the thread is gone, so that nothing is left running
when the caller goes on (to a leak check, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["run_in_thread"]

T = TypeVar("T")


def run_in_thread(fn: Callable[..., T], *args: Any, name: str) -> asyncio.Future[T]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def deliver(ok: bool, value: Any) -> None:
        thread.join()  # it has nothing left to do but exit: this takes microseconds
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def run() -> None:
        try:
            outcome: tuple[bool, Any] = (True, context.run(fn, *args))
        except BaseException as exc:  # handed over to the awaiting task
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(deliver, *outcome)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return future
