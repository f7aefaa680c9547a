"""Background work: two worker threads for blocking jobs, and owned asyncio tasks.

Everything the manager starts, it stops: :meth:`TaskManager.aclose` cancels
and awaits its tasks, then ends its threads and waits until they are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from chat_service.cache import Cache

__all__ = ["TaskManager", "task_manager"]

T = TypeVar("T")
logger = logging.getLogger("chat_service.tasks")

_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
HOUSEKEEPING_INTERVAL = 30.0


def _deliver(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class TaskManager:
    def __init__(self, workers: int = 2, *, name: str = "chat-worker") -> None:
        self.workers = workers
        self.name = name
        self.jobs_done = 0
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exited = 0
        self._all_exited: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"<TaskManager threads={len(self._threads)} tasks={len(self._tasks)}>"

    def start(self) -> None:
        """Start the worker threads; call it from the event loop that will use them."""
        self._loop = asyncio.get_running_loop()
        self._all_exited = asyncio.Event()
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"{self.name}-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                fn, args, loop, future = job
                try:
                    outcome: tuple[bool, Any] = (True, fn(*args))
                except BaseException as exc:  # handed to the awaiting task
                    outcome = (False, exc)
                self.jobs_done += 1
                with contextlib.suppress(RuntimeError):  # the loop is closed
                    loop.call_soon_threadsafe(_deliver, future, *outcome)
        finally:
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._worker_exited)

    def _worker_exited(self) -> None:
        self._exited += 1
        if self._exited == len(self._threads) and self._all_exited is not None:
            self._all_exited.set()

    def run_in_worker(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run a blocking ``fn(*args)`` on a worker thread; await the result."""
        if self._closed or not self._threads:
            raise RuntimeError("the task manager is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, args, loop, future))
        return future

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Start an owned task: cancelled and awaited by :meth:`aclose`."""
        if self._closed:
            coro.close()
            raise RuntimeError("the task manager is closed")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %r failed", task.get_name(), exc_info=task.exception())

    def every(self, interval: float, fn: Callable[[], Awaitable[Any]], *, name: str) -> asyncio.Task[None]:
        """Call ``fn`` every ``interval`` seconds until cancelled; a failure is logged, not fatal."""

        async def periodic() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await fn()
                except Exception:
                    logger.exception("periodic task %r failed", name)

        return self.spawn(periodic(), name=name)

    def stats(self) -> dict[str, int]:
        return {"threads": sum(t.is_alive() for t in self._threads), "tasks": len(self._tasks),
                "jobs_done": self.jobs_done}

    async def aclose(self, timeout: float = 5.0) -> None:
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for _ in self._threads:
            self._queue.put(None)
        if self._all_exited is not None and self._threads:
            # A job may still be running: wait for the threads without blocking the loop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._all_exited.wait()
            for thread in self._threads:
                thread.join(timeout=0.1)  # they have returned from _work: this is instant
        alive = [t.name for t in self._threads if t.is_alive()]
        stuck = [t.get_name() for t in tasks if not t.done()]
        if alive or stuck:
            raise RuntimeError(f"still running after {timeout:g} s: threads {alive}, tasks {stuck}")


async def task_manager(cache: Cache) -> AsyncIterator[TaskManager]:
    """Component: the manager, with its housekeeping job (expired cache entries)."""
    manager = TaskManager(workers=2)
    manager.start()
    try:
        manager.every(HOUSEKEEPING_INTERVAL, cache.prune, name="chat-housekeeping")
        yield manager
    finally:
        await manager.aclose()
