"""Timeouts of steps: many deadlines on one timer, and tasks that keep where their step hung.

What a timeout says is here too: the exception the engine raises for one
(:class:`StepTimeout`), and which exceptions end more than a step.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any, cast

from daybreak.report import ErrorInfo

__all__ = ["HANG", "INTERRUPTS", "OWN_TIMEOUT", "TASK", "Deadlines", "StepTask", "StepTimeout",
           "cancel_quietly", "hang_of", "late_timeout", "own_timeout", "propagates", "this_task"]

# Exceptions that are not a step's failure: they unwind the whole start or stop.
INTERRUPTS = (KeyboardInterrupt, SystemExit)


class StepTimeout(Exception):
    """A step exceeded its timeout; ``hang`` was captured before cancelling it.

    ``late_s`` is set when the step swallowed that cancellation and finished
    anyway, that many seconds after its deadline: a value that came too late.
    """

    def __init__(self, seconds: float, hang: dict[str, Any], late_s: float | None = None) -> None:
        super().__init__(f"did not finish within {seconds:g} s")
        self.seconds = seconds
        self.hang = hang
        self.late_s = late_s

    def message(self, what: str, option: str) -> str:
        """``did not <what> within S s (<option>=S)``, and how it ignored the cancellation."""
        text = f"did not {what} within {self.seconds:g} s ({option}={self.seconds:g})"
        if self.late_s is not None:
            text += (f"; it ignored the cancellation (an except that swallows CancelledError?) "
                     f"and finished {self.late_s:.3g} s after its deadline")
        return text


def late_timeout(task: asyncio.Task[Any] | None, entry: list[Any], timeout: float) -> StepTimeout:
    """The step of ``task`` finished although its deadline (``entry``) cancelled it."""
    loop = asyncio.get_running_loop()
    if task is not None:
        task.uncancel()  # the deadline's cancellation, which the step swallowed
    return StepTimeout(timeout, entry[HANG], max(0.0, loop.time() - entry[0]))


# An entry of Deadlines: [when, task (None once cancelled or fired), step, hang].
TASK, HANG = 1, 3


class Deadlines:
    """Many timeouts on one timer: a queue of deadlines per timeout value.

    Starting thousands of steps, a ``TimerHandle`` per step and its
    cancellation cost more than the steps themselves. Deadlines of one timeout
    value come in the order they end (the loop's clock only goes forward), so
    each queue is sorted by construction and the timer waits for the earliest
    head. When one fires, ``capture(step, task)`` records where the task is
    stuck (the entry's hang) before the task is cancelled.
    """

    __slots__ = ("_capture", "_handle", "_live", "_queues", "_when", "loop")

    def __init__(self, capture: Callable[[int, asyncio.Task[Any]], dict[str, Any]]) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._capture = capture
        self._queues: dict[float, collections.deque[list[Any]]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0
        self._live = 0

    def add(self, delay: float, step: int, task: asyncio.Task[Any]) -> list[Any]:
        assert self.loop is not None
        when = self.loop.time() + delay
        entry = [when, task, step, None]
        queue = self._queues.get(delay)
        if queue is None:
            queue = self._queues[delay] = collections.deque()
        queue.append(entry)
        self._live += 1
        if self._handle is None or when < self._when:
            self._arm(when)
        return entry

    def cancel(self, entry: list[Any]) -> None:
        if entry[TASK] is not None:
            entry[TASK] = None
            self._live -= 1
            if self._live == 0:
                # Nothing left to time: drop the queues. The timer stays armed until
                # close() (it would find nothing): re-arming it for every short step costs.
                for queue in self._queues.values():
                    queue.clear()

    def close(self) -> None:
        """Drop every deadline and the timer: nothing of the system stays in the loop."""
        for queue in self._queues.values():
            for entry in queue:
                entry[TASK] = None
        self._queues.clear()
        self._live = 0
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, when: float) -> None:
        assert self.loop is not None
        if self._handle is not None:
            self._handle.cancel()
        self._when = when
        self._handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        assert self.loop is not None
        self._handle = None
        now = self.loop.time()
        due = []
        heads = []
        for queue in self._queues.values():
            while queue and (queue[0][TASK] is None or queue[0][0] <= now):
                entry = queue.popleft()
                if entry[TASK] is not None:
                    due.append(entry)
            if queue:
                heads.append(queue[0][0])
        for entry in due:
            task = entry[TASK]
            entry[TASK] = None
            self._live -= 1
            task.cancel()  # a step's task keeps where it was stuck (StepTask)
            entry[HANG] = hang_of(task) or self._capture(entry[2], task)
        if heads:
            self._arm(min(heads))


class StepTask(asyncio.Task[Any]):
    """A worker of a walk: whatever cancels it, where its step was stuck is kept first.

    A timeout that a factory enforces itself (``asyncio.timeout`` with a value
    from the settings, ``wait_for``) cancels the task as daybreak's own
    timeouts do; the report then shows the same hang: the await chain and the
    stack of every thread, taken before the cancellation unwound them.
    """

    hang: dict[str, Any] | None = None
    step = -1
    capture: Callable[[int, asyncio.Task[Any]], dict[str, Any]] | None = None

    def cancel(self, msg: Any = None) -> bool:
        if self.capture is not None and not self.done():
            self.hang = self.capture(self.step, self)
        return super().cancel(msg)


def propagates(exc: BaseException) -> bool:
    """Whether ``exc`` ends more than the step: an interrupt, or a cancellation of its task.

    A CancelledError that the step's code raised while nothing was cancelling
    its task is the step's own failure, reported as any other error.
    """
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        return task is None or task.cancelling() > 0
    return isinstance(exc, INTERRUPTS)


def this_task() -> asyncio.Task[Any]:
    # Looked up only once a step waits: one that returns at once never needs it.
    return cast("asyncio.Task[Any]", asyncio.current_task())


def cancel_quietly(task: asyncio.Task[Any]) -> None:
    """Cancel for a rollback: what is stuck was recorded already, or does not matter."""
    if isinstance(task, StepTask):
        task.capture = None  # a thousand tasks, each with every thread's stack, would take seconds
    task.cancel()


def own_timeout(error: ErrorInfo, hang: dict[str, Any]) -> ErrorInfo:
    # The traceback of a TimeoutError ends at the `async with asyncio.timeout`
    # line; the hang knows the line that was waiting.
    return ErrorInfo(error.type, error.message or OWN_TIMEOUT, hang.get("where") or error.where)


OWN_TIMEOUT = "its own timeout expired (asyncio.timeout or wait_for in its code)"


def hang_of(task: asyncio.Task[Any] | None) -> dict[str, Any] | None:
    """Where ``task`` was stuck when it was last cancelled, if it is a step's task."""
    return task.hang if isinstance(task, StepTask) else None
