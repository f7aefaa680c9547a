"""Stacks of tasks and threads, a watchdog for the event loop, and what a stop leaves behind."""

from daybreak.diagnostics.frames import (
    Frame,
    TaskStack,
    ThreadStack,
    await_chain,
    frames_of,
    innermost_project_frame,
    task_stacks,
    thread_stacks,
)
from daybreak.diagnostics.leftovers import (
    LeftFd,
    Leftovers,
    LeftTask,
    LeftThread,
    Snapshot,
    leftovers_since,
)
from daybreak.diagnostics.watchdog import LoopBlock, LoopWatchdog

__all__ = [
    "Frame",
    "LeftFd",
    "LeftTask",
    "LeftThread",
    "Leftovers",
    "LoopBlock",
    "LoopWatchdog",
    "Snapshot",
    "TaskStack",
    "ThreadStack",
    "await_chain",
    "frames_of",
    "innermost_project_frame",
    "leftovers_since",
    "task_stacks",
    "thread_stacks",
]
