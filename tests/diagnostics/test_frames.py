from __future__ import annotations

import _thread
import asyncio
import os
import sys
import sysconfig
import threading
import time

import pytest

import daybreak.diagnostics.frames as frames_module
from daybreak.diagnostics import (
    Frame,
    ThreadStack,
    frames_of,
    innermost_project_frame,
    task_stacks,
    thread_stacks,
)

from ._markers import line_of, where

STDLIB = sysconfig.get_paths()["stdlib"]
DAYBREAK_FILE = frames_module.__file__
LIBRARY_FILE = os.path.join(STDLIB, "site-packages", "somelib", "client.py")


def frame(file: str, line: int = 1, function: str = "f") -> Frame:
    return Frame(file, line, function)


def test_frame_where_str_and_dict() -> None:
    f = Frame("/app/db.py", 12, "connect")
    assert f.where == "/app/db.py:12"
    assert str(f) == "/app/db.py:12 in connect"
    assert f.to_dict() == {
        "file": "/app/db.py",
        "line": 12,
        "function": "connect",
        "where": "/app/db.py:12",
    }


def test_frames_of_runs_from_outermost_to_the_given_frame() -> None:
    def inner() -> list[Frame]:
        return frames_of(sys._getframe())  # marker: frames-of

    stack = inner()
    assert stack[-1].function == "inner"
    assert stack[-1].where == where(__file__, "frames-of")
    assert stack[-2].function == "test_frames_of_runs_from_outermost_to_the_given_frame"
    assert frames_of(None) == []


class TestInnermostProjectFrame:
    def test_skips_stdlib_daybreak_and_library_frames(self) -> None:
        project = frame(__file__, 10, "handler")
        stack = [
            frame(os.path.join(STDLIB, "asyncio", "events.py")),
            project,
            frame(DAYBREAK_FILE),
            frame(LIBRARY_FILE),
            frame(os.path.join(STDLIB, "threading.py")),
            frame("<frozen importlib._bootstrap>"),
        ]
        assert innermost_project_frame(stack) is project

    def test_takes_the_innermost_of_several_project_frames(self) -> None:
        stack = [frame("/srv/app/main.py", 1), frame("/srv/app/db.py", 2)]
        assert innermost_project_frame(stack) == stack[1]

    def test_falls_back_to_a_library_frame(self) -> None:
        library = frame(LIBRARY_FILE)
        stack = [frame(os.path.join(STDLIB, "runpy.py")), library, frame(DAYBREAK_FILE)]
        assert innermost_project_frame(stack) is library

    def test_falls_back_to_the_innermost_frame(self) -> None:
        stack = [frame(DAYBREAK_FILE), frame(os.path.join(STDLIB, "selectors.py"))]
        assert innermost_project_frame(stack) is stack[-1]

    def test_pseudo_files_are_not_project_code(self) -> None:
        project = frame("/srv/app/main.py")
        assert innermost_project_frame([project, frame("<string>")]) is project

    def test_none_for_no_frames(self) -> None:
        assert innermost_project_frame([]) is None


def wait_until_blocked(ident: int, *, code: object = None, line: int | None = None) -> None:
    """Wait (5 s guard) until thread ``ident``'s innermost frame runs ``code`` or is at ``line``.

    An event the thread sets just before it blocks says nothing about whether it
    has reached the blocking call yet; its own frame does.
    """
    deadline = time.monotonic() + 5
    while True:
        top = sys._current_frames().get(ident)
        if top is not None and (top.f_code is code or top.f_lineno == line):
            return
        assert time.monotonic() < deadline, f"thread {ident} never blocked: {top}"
        time.sleep(0.001)


def find(name: str) -> ThreadStack:
    matches = [stack for stack in thread_stacks() if stack.name == name]
    assert len(matches) == 1, [stack.name for stack in thread_stacks()]
    return matches[0]


def test_thread_stacks_show_a_blocked_thread_at_its_line() -> None:
    release = threading.Event()
    waiting = threading.Event()

    def worker() -> None:
        waiting.set()
        release.wait(5)  # marker: thread-wait

    thread = threading.Thread(target=worker, name="blocked-worker", daemon=True)
    thread.start()
    try:
        assert waiting.wait(5)
        assert thread.ident is not None
        wait_until_blocked(thread.ident, code=threading.Condition.wait.__code__)
        stack = find("blocked-worker")
        assert stack.ident == thread.ident
        assert stack.daemon is True
        # Innermost is threading's own wait; the test's line is the one to report.
        assert stack.frames[-1].file == threading.__file__
        project = innermost_project_frame(stack.frames)
        assert project is not None
        assert project.where == where(__file__, "thread-wait")
        assert stack.to_dict()["frames"][-1] == stack.frames[-1].to_dict()
    finally:
        release.set()
        thread.join()


def test_thread_stacks_include_threads_unknown_to_threading() -> None:
    lock = _thread.allocate_lock()
    lock.acquire()
    started = _thread.allocate_lock()
    started.acquire()
    done = _thread.allocate_lock()
    done.acquire()

    def raw() -> None:
        started.release()
        lock.acquire()  # marker: raw-thread
        done.release()

    ident = _thread.start_new_thread(raw, ())
    try:
        assert started.acquire(timeout=5)
        wait_until_blocked(ident, line=line_of(__file__, "raw-thread"))
        (stack,) = [s for s in thread_stacks() if s.ident == ident]
        assert stack.name == "<unknown>"
        assert stack.frames[-1].where == where(__file__, "raw-thread")
    finally:
        lock.release()
        assert done.acquire(timeout=5)


async def test_task_stacks_cover_pending_tasks_with_their_await_chain() -> None:
    forever = asyncio.Event()

    async def listen() -> None:
        await forever.wait()  # marker: task-wait

    task = asyncio.create_task(listen(), name="listener")
    await asyncio.sleep(0)
    try:
        stacks = {stack.name: stack for stack in task_stacks()}
        assert "listener" in stacks
        stack = stacks["listener"]
        assert stack.coro.endswith("listen")
        project = innermost_project_frame(stack.frames)
        assert project is not None
        assert project.line == line_of(__file__, "task-wait")
        assert stack.to_dict()["name"] == "listener"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert "listener" not in {stack.name for stack in task_stacks()}
