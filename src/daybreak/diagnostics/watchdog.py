"""A thread that notices when the event loop stops answering, and what holds it.

The thread posts a probe callback to the loop and checks, a quarter threshold
later, that it ran. A healthy loop costs one wake-up and O(1) work per quarter
threshold. A block is timed from the first probe it held up, so its duration is
short by at most that quarter threshold (a block that began just after a probe
was answered). When the probe is late, the thread samples the loop thread's stack
every quarter threshold until it answers: if one callback held the loop (the
same frame object just below the loop's callback dispatch, sample after sample)
for long enough, it is a block; a queue of short callbacks gives samples that
differ, and is not.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daybreak.diagnostics._owners import Codes, Owners
from daybreak.diagnostics.frames import Frame, innermost_project_frame

__all__ = ["LoopBlock", "LoopWatchdog"]

THREAD_NAME = "daybreak-watchdog"

# How much of the threshold one frame must be seen holding the loop, between its
# first and last sample. Samples are a quarter threshold apart and start a quarter
# threshold after the probe, so a block just over the threshold shows four.
_HELD = 0.4


@dataclass(frozen=True)
class LoopBlock:
    where: str
    duration_s: float
    component: str | None
    frames: tuple[Frame, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "duration_s": round(self.duration_s, 6),
            "component": self.component,
            "frames": [frame.to_dict() for frame in self.frames],
        }


class LoopWatchdog:
    """Records in `blocks` every time one frame held `loop` longer than `threshold` seconds.

    `codes` maps code objects (a component's factory, its checks) to the name of
    the component a block inside them is blamed on. `late_answers` counts the
    probes answered later than the threshold, blocks or not.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        threshold: float = 0.1,
        codes: Codes | Callable[[], Codes] | None = None,
    ) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be a positive number of seconds, not {threshold!r}")
        self.loop = loop
        self.threshold = threshold
        self.blocks: list[LoopBlock] = []
        self.late_answers = 0
        self._codes = codes
        self._owners = Owners(codes)
        self._loop_ident = 0
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._probe: _Probe | None = None
        self._released_at = 0.0

    @property
    def codes(self) -> Codes | Callable[[], Codes] | None:
        return self._codes

    def set_codes(self, codes: Codes | Callable[[], Codes] | None) -> None:
        self._codes = codes
        # One assignment, so the watchdog thread sees either the old map or the new one.
        self._owners = Owners(self._codes)

    def start(self) -> None:
        """Start watching; call it from the thread that runs the loop.

        A stopped watchdog may be started again; `blocks` keeps what it found.
        """
        if self._thread is not None:
            raise RuntimeError("this LoopWatchdog is already started; stop() it first")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is not self.loop:
            raise RuntimeError(
                "LoopWatchdog.start() must be called from the thread that runs its loop, "
                "so that it knows which thread to sample"
            )
        self._loop_ident = threading.get_ident()
        self._stopping.clear()
        self._released_at = 0.0
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if threading.get_ident() == self._loop_ident:
            # The loop's own thread is here: whatever blocked it has ended, though
            # the loop may not have run a callback (and answered a probe) since.
            self._released_at = time.perf_counter()
        self._stopping.set()
        probe = self._probe
        if probe is not None:  # wakes the thread if it is waiting for a late answer
            probe.answered.set()
        thread.join()

    def __enter__(self) -> LoopWatchdog:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopping.is_set():
            probe = self._probe = _Probe()
            try:
                self.loop.call_soon_threadsafe(probe)
            except RuntimeError:  # the loop is closed: nothing left to watch
                return
            if self._stopping.wait(self.threshold / 4):
                return
            if not probe.answered.is_set():
                self._follow(probe)

    def _follow(self, probe: _Probe) -> None:
        runs = _Runs()
        # A stopped loop answers when it runs again; the wait is not a block.
        stopped = False
        while not probe.answered.is_set():
            if self._stopping.is_set() or self.loop.is_closed():
                break
            if self.loop.is_running():
                sample = self._sample()
                if sample is not None and not probe.answered.is_set():
                    runs.add(sample)
            else:
                stopped = True
            probe.answered.wait(self.threshold / (2 if stopped else 4))
        answered_at = probe.answered_at or self._released_at
        if not answered_at:  # stopped from another thread while the loop was still busy
            return
        duration = answered_at - probe.posted_at
        if stopped or duration < self.threshold:
            return
        self.late_answers += 1
        sample = runs.held(self.threshold * _HELD)
        if sample is not None:
            where = innermost_project_frame(sample.frames)
            # list.append is atomic, so readers on the loop thread need no lock.
            self.blocks.append(
                LoopBlock(
                    where.where if where is not None else "<unknown>",
                    duration,
                    sample.component,
                    sample.frames,
                )
            )

    def _sample(self) -> _Sample | None:
        frame = sys._current_frames().get(self._loop_ident)
        if frame is None:
            return None
        return _Sample.take(frame, self._owners)


class _Probe:
    __slots__ = ("answered", "answered_at", "posted_at")

    def __init__(self) -> None:
        self.answered = threading.Event()
        self.answered_at = 0.0
        self.posted_at = time.perf_counter()

    def __call__(self) -> None:
        self.answered_at = time.perf_counter()
        self.answered.set()


_DISPATCH = asyncio.events.Handle._run.__code__


@dataclass(frozen=True, slots=True)
class _Sample:
    # The frame the loop called for the current callback (for a task step, the
    # task's outermost coroutine). Held, not just its id: a live reference keeps
    # the object from being reused by the next callback's frame.
    key: types.FrameType
    at: float
    frames: tuple[Frame, ...]
    component: str | None

    @classmethod
    def take(cls, innermost: types.FrameType, owners: Owners) -> _Sample:
        at = time.perf_counter()
        stack: list[types.FrameType] = []
        # Without asyncio's dispatch frame (another loop implementation), judge by
        # the innermost frame.
        key = innermost
        frame: types.FrameType | None = innermost
        while frame is not None:
            if frame.f_code is _DISPATCH:
                # A callback written in C leaves the dispatch frame itself innermost.
                key = stack[-1] if stack else frame
                stack = stack or [frame]
                break
            stack.append(frame)
            frame = frame.f_back
        component = owners.component_of(f.f_code for f in stack)
        return cls(key, at, tuple(Frame.of(f) for f in reversed(stack)), component)


class _Runs:
    """The longest stretch of consecutive samples that saw the same frame."""

    __slots__ = ("_best", "_best_span", "_first")

    def __init__(self) -> None:
        self._first: _Sample | None = None
        self._best: _Sample | None = None
        self._best_span = -1.0

    def add(self, sample: _Sample) -> None:
        if self._first is None or sample.key is not self._first.key:
            self._first = sample
        span = sample.at - self._first.at
        if span > self._best_span:
            self._best, self._best_span = self._first, span

    def held(self, at_least: float) -> _Sample | None:
        return self._best if self._best_span >= at_least else None
