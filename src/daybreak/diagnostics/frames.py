"""Where code is: the stacks of threads and the await chains of tasks."""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from collections.abc import AsyncGenerator, Coroutine, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from daybreak.diagnostics._chain import raw_await_chain
from daybreak.diagnostics._places import Place, place_of

__all__ = [
    "Frame",
    "TaskStack",
    "ThreadStack",
    "await_chain",
    "frames_of",
    "innermost_project_frame",
    "task_stacks",
    "thread_stacks",
]

_Chainable = asyncio.Future[Any] | Coroutine[Any, Any, Any] | AsyncGenerator[Any, Any] | Generator[Any, Any, Any]


@dataclass(frozen=True, slots=True)
class Frame:
    """One line of a stack, detached from the live frame so it can be kept and sent."""

    file: str
    line: int
    function: str

    @classmethod
    def of(cls, frame: types.FrameType) -> Frame:
        # f_lineno is None while a frame is between instructions with no line.
        return cls(frame.f_code.co_filename, frame.f_lineno or 0, frame.f_code.co_name)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where} in {self.function}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "function": self.function,
            "where": self.where,
        }


def frames_of(frame: types.FrameType | None) -> list[Frame]:
    """The stack ending at `frame`, outermost first."""
    frames = []
    while frame is not None:
        frames.append(Frame.of(frame))
        frame = frame.f_back
    frames.reverse()
    return frames


def await_chain(awaitable: _Chainable) -> list[Frame]:
    """The frames a stuck task, coroutine or generator waits in, outermost first.

    The chain goes on through awaited tasks, into the first pending task of an
    `asyncio.gather`, and into async generators driven by `async for`.
    """
    return [Frame.of(frame) for frame in raw_await_chain(awaitable)]


def innermost_project_frame(frames: Sequence[Frame]) -> Frame | None:
    """The frame a person should look at first: the innermost one of the project's code.

    Failing that, the innermost frame outside daybreak and the stdlib (a library
    the project calls), then simply the innermost frame.
    """
    for frame in reversed(frames):
        if place_of(frame.file) is Place.PROJECT:
            return frame
    for frame in reversed(frames):
        if place_of(frame.file) not in (Place.DAYBREAK, Place.STDLIB):
            return frame
    return frames[-1] if frames else None


@dataclass(frozen=True, slots=True)
class ThreadStack:
    name: str
    ident: int
    daemon: bool
    frames: tuple[Frame, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ident": self.ident,
            "daemon": self.daemon,
            "frames": [frame.to_dict() for frame in self.frames],
        }


def thread_stacks() -> list[ThreadStack]:
    """The stack of every thread, including threads started behind `threading`'s back."""
    known = {thread.ident: thread for thread in threading.enumerate()}
    stacks = []
    for ident, frame in sys._current_frames().items():
        thread = known.get(ident)
        name = thread.name if thread is not None else "<unknown>"
        daemon = thread.daemon if thread is not None else False
        stacks.append(ThreadStack(name, ident, daemon, tuple(frames_of(frame))))
    return stacks


@dataclass(frozen=True)
class TaskStack:
    name: str
    coro: str
    frames: tuple[Frame, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "coro": self.coro,
            "frames": [frame.to_dict() for frame in self.frames],
        }


def task_stacks(loop: asyncio.AbstractEventLoop | None = None) -> list[TaskStack]:
    """The await chain of every pending task of `loop` (default: the running loop)."""
    tasks = sorted(asyncio.all_tasks(loop), key=lambda task: task.get_name())
    return [TaskStack(task.get_name(), coro_name(task), tuple(await_chain(task))) for task in tasks if not task.done()]


def coro_name(task: asyncio.Task[Any]) -> str:
    coro: object = task.get_coro()
    name = getattr(coro, "__qualname__", None)
    return name if isinstance(name, str) else type(coro).__name__
