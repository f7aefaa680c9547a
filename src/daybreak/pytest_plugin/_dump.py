"""The hang dump: where the test is stuck, then every thread and asyncio task.

Taken by the timer thread while the test is still stuck. Frames of pytest, its
plugins and the interpreter's start-up are left out (a line says how many);
the first line names the innermost frame of the project's code: for a test
that waits in an idle event loop, the innermost project frame of the await
chain that leads to it, not the runner that drives the loop.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daybreak.diagnostics import Frame, TaskStack, ThreadStack
    from daybreak.pytest_plugin import HangTimeout

__all__ = ["PHASE_NAMES", "TIMER_NAME", "hang_dump", "on_trio"]

PHASE_NAMES = {"setup": "setup", "call": "test", "teardown": "teardown"}
TIMER_NAME = "daybreak-hang-timer"

# Top-level names under site-packages whose frames only drive the test.
_RUNNER = frozenset({"_pytest", "pytest", "pluggy", "xdist", "execnet", "pytest_asyncio", "pytest_timeout.py"})
_LIBRARY_DIRS = frozenset({"site-packages", "dist-packages"})
_TRIO_DIR = "/trio/"


def hang_dump(when: str, seconds: float, rootdir: str, nodeid: str = "") -> HangTimeout:
    """The dump as the error to raise: its text, the ``(file, line)`` its first line names."""
    from daybreak.diagnostics import thread_stacks
    from daybreak.pytest_plugin import HangTimeout

    main = threading.main_thread().ident
    threads = sorted((t for t in thread_stacks() if t.name != TIMER_NAME), key=lambda t: t.ident != main)
    main_thread = next((t for t in threads if t.ident == main), None)
    tasks, main_tasks = _tasks(main)
    test_file = os.path.join(rootdir, nodeid.partition("::")[0]) if nodeid else ""
    awaited = _awaited_in(main)
    main_tasks.sort(key=lambda task: (task.name == awaited, *_task_rank(task, test_file)), reverse=True)

    # An idle loop in the main thread: the test is the task it waits for, not the loop.
    main_frames = _not_runner(main_thread.frames) if main_thread else []
    idle = bool(main_tasks) and (not main_frames or _waits_in_loop(main_frames[-1]))
    chains = [list(t.frames) for t in main_tasks]
    order = [*chains, main_frames] if idle else [main_frames, *chains]
    trio_tasks = _trio_tasks()
    trio_tasks.sort(key=lambda task: _task_rank(task, test_file), reverse=True)
    where = _first_project_frame([*order, *(t.frames for t in trio_tasks), *(t.frames for t in threads),
                                  *(t.frames for t in tasks)])

    phase = PHASE_NAMES.get(when, when)
    rel = _relative(rootdir)
    if where is not None:
        at = f"{rel(where.file)}:{where.line} in {where.function}"
        lines = [f"{phase} stuck at {at} after {seconds:g} s (daybreak hang timeout)"]
        summary = f"{at} ({phase}, {seconds:g} s)"  # the place first: pytest cuts long lines
    else:
        lines = [f"{phase} still running after {seconds:g} s (daybreak hang timeout)"]
        summary = lines[0]
    if trio_tasks:
        lines.append("(the test runs on trio: daybreak cannot interrupt it, so the process ends; "
                     "a hang timeout that fails the test and goes on needs asyncio)")
    for thread in threads:
        lines.extend(_thread_lines(thread, main, rel))
    for task in [*main_tasks, *(t for t in tasks if t not in main_tasks)]:
        lines.extend(_task_lines(task, "asyncio", rel))
    for task in trio_tasks:
        lines.extend(_task_lines(task, "trio", rel))
    return HangTimeout("\n".join(lines), (where.file, where.line) if where is not None else None, summary)


def _tasks(main: int | None) -> tuple[list[TaskStack], list[TaskStack]]:
    """The pending tasks of every running asyncio loop, and those of the main thread's loop."""
    if "asyncio" not in sys.modules:
        return [], []
    import asyncio

    from daybreak.diagnostics import task_stacks

    every: list[TaskStack] = []
    in_main: list[TaskStack] = []
    # The loops run in other threads than this timer, so asyncio cannot tell us
    # about them; the garbage collector knows every loop object.
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]
    for loop in loops:
        try:
            stacks = task_stacks(loop)
        except RuntimeError:  # the set of tasks changed while we read it
            continue
        every.extend(stacks)
        if getattr(loop, "_thread_id", None) == main:
            in_main.extend(stacks)
    return every, in_main


def on_trio() -> bool:
    """Whether trio runs tasks in this process (anyio's trio backend)."""
    return bool(_trio_tasks())


def _trio_tasks() -> list[TaskStack]:
    """The await chains of trio's tasks, found as asyncio's loops are (trio keeps no list either)."""
    if "trio" not in sys.modules:
        return []
    import trio

    from daybreak.diagnostics import TaskStack, await_chain

    stacks = []
    for task in [o for o in gc.get_objects() if isinstance(o, trio.lowlevel.Task)]:
        coro = task.coro
        if getattr(coro, "cr_frame", None) is None:  # finished
            continue
        frames = tuple(await_chain(coro))
        if not all(_TRIO_DIR in f.file.replace("\\", "/") for f in frames):  # not one of trio's own
            stacks.append(TaskStack(task.name, getattr(coro, "__qualname__", type(coro).__name__), frames))
    return stacks


def _awaited_in(ident: int | None) -> str | None:
    """The name of the task the loop in thread ``ident`` runs until it completes, if one does.

    That is the phase's own task (pytest-asyncio runs each fixture and test so);
    tasks an interrupted earlier phase left pending come after it.
    """
    frame = sys._current_frames().get(ident) if ident is not None else None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "run_until_complete" and os.path.basename(code.co_filename) == "base_events.py":
            name = getattr(frame.f_locals.get("future"), "get_name", None)
            return name() if callable(name) else None
        frame = frame.f_back
    return None


def _task_rank(task: TaskStack, test_file: str) -> tuple[bool, bool, int]:
    """Which task most likely is the test: it runs the test file, daybreak did not start it, the deepest."""
    from daybreak.diagnostics._places import Place, place_of

    frames = task.frames
    in_test = bool(test_file) and any(os.path.normcase(f.file) == os.path.normcase(test_file) for f in frames)
    not_ours = not frames or place_of(frames[0].file) is not Place.DAYBREAK
    return in_test, not_ours, len(frames)


def _waits_in_loop(frame: Frame) -> bool:
    return os.path.basename(frame.file) in ("selectors.py", "base_events.py")


def _first_project_frame(stacks: Iterable[Sequence[Frame]]) -> Frame | None:
    from daybreak.diagnostics import innermost_project_frame
    from daybreak.diagnostics._places import Place, place_of

    stacks = [s for s in stacks if s]
    for frames in stacks:
        found = innermost_project_frame(frames)
        if found is not None and place_of(found.file) is Place.PROJECT:
            return found
    return innermost_project_frame(stacks[0]) if stacks else None


def _thread_lines(thread: ThreadStack, main: int | None, rel: Any) -> list[str]:
    from daybreak.diagnostics import innermost_project_frame

    kept = _not_runner(thread.frames)
    if thread.ident != main and not kept:
        return []  # a thread of the test runner itself (xdist's, execnet's)
    kind = "main" if thread.ident == main else "daemon" if thread.daemon else "thread"
    where = innermost_project_frame(kept)
    head = f"\n--- thread {thread.name} ({kind})" + (f", stuck at {rel(where.file)}:{where.line}" if where else "")
    return [head, *_frame_lines(thread.frames, rel)]


def _task_lines(task: TaskStack, kind: str, rel: Any) -> list[str]:
    from daybreak.diagnostics import innermost_project_frame

    where = innermost_project_frame(task.frames)
    head = f"\n--- {kind} task {task.name} ({task.coro})" + (
        f", waiting at {rel(where.file)}:{where.line}" if where else "")
    return [head, *_frame_lines(task.frames, rel)]


def _frame_lines(frames: Sequence[Frame], rel: Any) -> list[str]:
    lines: list[str] = []
    skipped = 0
    for frame, runner in zip(frames, _runner_flags(frames), strict=True):
        if runner:
            skipped += 1
            continue
        if skipped:
            lines.append(f"    ... {skipped} frame{'s' * (skipped > 1)} of the test runner")
            skipped = 0
        lines.append(f"    {rel(frame.file)}:{frame.line} in {frame.function}")
    if skipped:
        lines.append(f"    ... {skipped} frame{'s' * (skipped > 1)} of the test runner")
    return lines


def _not_runner(frames: Sequence[Frame]) -> list[Frame]:
    return [f for f, runner in zip(frames, _runner_flags(frames), strict=True) if not runner]


def _runner_flags(frames: Sequence[Frame]) -> list[bool]:
    """Which of a stack's frames (outermost first) only drive the test.

    The runner's own, and the ``<string>`` frames below the first of them:
    execnet starts pytest-xdist's workers with ``python -c``.
    """
    flags = [_is_runner(f.file) for f in frames]
    first = flags.index(True) if True in flags else 0
    for i in range(first):
        flags[i] = flags[i] or frames[i].file == "<string>"
    return flags


def _is_runner(file: str) -> bool:
    """A frame of pytest, pluggy, a runner plugin or the interpreter's ``-m`` start-up."""
    if file == "<frozen runpy>" or os.path.basename(file) == "runpy.py":
        return True
    parts = file.replace("\\", "/").split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in _LIBRARY_DIRS:
            return parts[i + 1] in _RUNNER or parts[-2:] == ["anyio", "pytest_plugin.py"]
    return False


def _relative(rootdir: str) -> Any:
    prefix = rootdir.rstrip(os.sep) + os.sep

    def rel(file: str) -> str:
        return file[len(prefix):] if file.startswith(prefix) else file

    return rel
