"""What a stop leaves behind: threads, tasks and file descriptors that outlived it."""

from __future__ import annotations

import asyncio
import concurrent.futures.thread
import sys
import threading
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from daybreak.diagnostics._chain import raw_await_chain
from daybreak.diagnostics._fds import describe_sockets, kind_of, open_fds
from daybreak.diagnostics._owners import Codes, Owners, codes_of_frames
from daybreak.diagnostics.frames import Frame, coro_name, frames_of, innermost_project_frame

__all__ = ["LeftFd", "LeftTask", "LeftThread", "Leftovers", "Snapshot", "leftovers_since"]

THREAD_PREFIX = "daybreak:"
_WATCHDOG = "daybreak-watchdog"


@dataclass(frozen=True)
class Snapshot:
    """The threads, tasks and descriptors alive at one moment.

    `threads` holds `(id(thread), ident)` pairs (`(0, ident)` for threads that
    `threading` does not know); `tasks` holds `id(task)`. Ids and idents are
    both reused once their owner is gone, so the snapshot also keeps weak
    references: an object counts as old only while it is still that object.
    """

    threads: frozenset[tuple[int, int]]
    tasks: frozenset[int]
    fds: frozenset[tuple[int, str]]
    _alive: tuple[weakref.ref[Any], ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def take(cls, loop: asyncio.AbstractEventLoop | None = None) -> Snapshot:
        threads = threading.enumerate()
        known = {thread.ident for thread in threads}
        unknown = {(0, ident) for ident in sys._current_frames() if ident not in known}
        loop = loop or _running_loop()
        tasks = list(asyncio.all_tasks(loop)) if loop is not None else []
        return cls(
            threads=frozenset({(id(t), t.ident or 0) for t in threads} | unknown),
            tasks=frozenset(id(task) for task in tasks),
            fds=open_fds(),
            _alive=tuple(weakref.ref(obj) for obj in [*threads, *tasks]),
        )

    def _old_ids(self) -> Callable[[object], bool]:
        if not self._alive:  # built by hand, not by take(): trust the ids
            return lambda obj: True
        alive = {id(obj) for ref in self._alive if (obj := ref()) is not None}
        return lambda obj: id(obj) in alive


@dataclass(frozen=True)
class LeftThread:
    name: str
    ident: int
    daemon: bool
    component: str | None
    where: str | None
    stack: tuple[Frame, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ident": self.ident,
            "daemon": self.daemon,
            "component": self.component,
            "where": self.where,
            "stack": [frame.to_dict() for frame in self.stack],
        }


@dataclass(frozen=True)
class LeftTask:
    name: str
    coro: str
    component: str | None
    where: str | None
    stack: tuple[Frame, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "coro": self.coro,
            "component": self.component,
            "where": self.where,
            "stack": [frame.to_dict() for frame in self.stack],
        }


@dataclass(frozen=True)
class LeftFd:
    fd: int
    kind: str
    detail: str
    component: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fd": self.fd,
            "kind": self.kind,
            "detail": self.detail,
            "component": self.component,
        }


@dataclass(frozen=True)
class Leftovers:
    threads: tuple[LeftThread, ...] = ()
    tasks: tuple[LeftTask, ...] = ()
    fds: tuple[LeftFd, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.threads or self.tasks or self.fds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "threads": [thread.to_dict() for thread in self.threads],
            "tasks": [task.to_dict() for task in self.tasks],
            "fds": [fd.to_dict() for fd in self.fds],
        }


def leftovers_since(
    before: Snapshot,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    exclude_tasks: Collection[asyncio.Task[Any]] = (),
    codes: Codes | Callable[[], Codes] | None = None,
    task_component: Callable[[asyncio.Task[Any]], str | None] | None = None,
) -> Leftovers:
    """Threads, pending tasks and descriptors alive now that were not in `before`.

    Each is blamed on a component where it can be told: a thread by its name
    (`daybreak:<component>`) or its stack, a task by `task_component` or its
    await chain, both through `codes` (code object -> component name, or a
    callable returning that map: it is called only when something is left).
    """
    owners = Owners(codes)
    was_alive = before._old_ids()
    loop = loop or _running_loop()
    return Leftovers(
        threads=tuple(_threads(before, was_alive, owners, _idle_executor_threads(loop))),
        tasks=tuple(_tasks(before, was_alive, owners, loop, exclude_tasks, task_component)),
        fds=tuple(_fds(before)),
    )


def _idle_executor_threads(loop: asyncio.AbstractEventLoop | None) -> set[int]:
    """The idents of the loop's default-executor threads that wait for work.

    ``asyncio.to_thread`` and every name lookup (``open_connection("localhost")``)
    start them; they belong to the loop, which ends them in
    ``shutdown_default_executor``, and are no component's leftover. A thread of
    that executor still running a call is one, and is reported.
    """
    executor = getattr(loop, "_default_executor", None)
    idle = set()
    frames = sys._current_frames()
    for thread in getattr(executor, "_threads", ()):
        frame = frames.get(thread.ident or 0)
        while frame is not None and frame.f_code is not _RUN_CODE:
            frame = frame.f_back
        # Waiting for the next call, or handing over the result of the last one.
        future = getattr(frame.f_locals.get("self"), "future", None) if frame is not None else None
        if frame is None or (isinstance(future, concurrent.futures.Future) and future.done()):
            idle.add(thread.ident or 0)
    return idle


# The frame of a work item of an executor thread: the call it runs, then its result.
_RUN_CODE = concurrent.futures.thread._WorkItem.run.__code__


def _threads(before: Snapshot, was_alive: Callable[[object], bool], owners: Owners,
             idle: set[int]) -> list[LeftThread]:
    frames = sys._current_frames()
    current = threading.get_ident()
    left = []
    threads = {thread.ident: thread for thread in threading.enumerate()}
    for ident, frame in frames.items():
        if ident == current or ident in idle:
            continue
        thread = threads.get(ident)
        if thread is None:
            if (0, ident) in before.threads:
                continue
            name, daemon = "<unknown>", False
        else:
            if (id(thread), ident) in before.threads and was_alive(thread):
                continue
            name, daemon = thread.name, thread.daemon
        if name == _WATCHDOG:
            continue
        component = (
            name[len(THREAD_PREFIX) :]
            if name.startswith(THREAD_PREFIX)
            else owners.component_of(codes_of_frames(frame))
        )
        stack = tuple(frames_of(frame))
        left.append(LeftThread(name, ident, daemon, component, _where(stack), stack))
    left.sort(key=lambda thread: (thread.name, thread.ident))
    return left


def _tasks(
    before: Snapshot,
    was_alive: Callable[[object], bool],
    owners: Owners,
    loop: asyncio.AbstractEventLoop | None,
    exclude: Collection[asyncio.Task[Any]],
    task_component: Callable[[asyncio.Task[Any]], str | None] | None,
) -> list[LeftTask]:
    if loop is None:
        return []
    excluded = {id(task) for task in exclude}
    try:
        current = asyncio.current_task(loop)
    except RuntimeError:
        current = None
    left = []
    for task in asyncio.all_tasks(loop):
        if task.done() or task is current or id(task) in excluded:
            continue
        if id(task) in before.tasks and was_alive(task):
            continue
        raw = raw_await_chain(task)
        component = task_component(task) if task_component is not None else None
        if component is None:
            component = owners.component_of(frame.f_code for frame in reversed(raw))
        stack = tuple(Frame.of(frame) for frame in raw)
        left.append(LeftTask(task.get_name(), coro_name(task), component, _where(stack), stack))
    left.sort(key=lambda task: task.name)
    return left


def _fds(before: Snapshot) -> list[LeftFd]:
    new = sorted(open_fds() - before.fds)
    sockets = describe_sockets(target for _, target in new)
    return [LeftFd(fd, kind_of(target), sockets.get(target, target)) for fd, target in new]


def _where(stack: tuple[Frame, ...]) -> str | None:
    frame = innermost_project_frame(stack)
    return frame.where if frame is not None else None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
