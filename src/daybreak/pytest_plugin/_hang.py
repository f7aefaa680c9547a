"""The hang timeout: one timer thread for the session, a signal of its own, a last resort.

Each phase (setup, call, teardown) of each test is timed against its hang
timeout. The timer thread sleeps until the current phase's deadline and wakes
about once per timeout, not once per test: a phase that starts later than the
one it sleeps for has a later deadline, and only a shorter one (a marker)
wakes it early. At the deadline it takes the dump while the test is still
stuck, then interrupts the main thread with a real-time signal no one else
handles (not SIGALRM, which pytest-timeout and the code under test may use);
the handler raises :class:`HangTimeout` there. A phase that has not ended a
grace period later (it caught BaseException, or waits in C code) ends the
process with the dump and a clear message, as pytest-timeout's thread method
does: a run never hangs silently.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import types
from dataclasses import dataclass
from typing import Any

import pytest

from daybreak.pytest_plugin._dump import PHASE_NAMES, TIMER_NAME, hang_dump, on_trio

__all__ = ["HangWatch"]

MAX_GRACE = 10.0


@dataclass(eq=False)
class _Phase:
    nodeid: str
    when: str  # "setup", "call" or "teardown"
    seconds: float
    deadline: float
    error: BaseException | None = None  # set by the timer once it has taken the dump
    raised: bool = False
    grace_deadline: float = math.inf
    why: str = ""  # why it still runs, should the process have to end


class HangWatch:
    """The session's hang timer: ``begin()`` and ``end()`` around every timed phase."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._cond = threading.Condition(threading.Lock())
        self._phase: _Phase | None = None
        self._wake_at = math.inf
        self._closed = False
        self._main = threading.main_thread().ident
        self._signum, self._previous = _take_signal(self._on_signal)
        self._thread = threading.Thread(target=self._run, name=TIMER_NAME, daemon=True)
        self._thread.start()

    def begin(self, nodeid: str, when: str, seconds: float) -> None:
        phase = _Phase(nodeid, when, seconds, time.monotonic() + seconds)
        with self._cond:
            self._phase = phase
            if phase.deadline < self._wake_at:
                self._cond.notify()

    def end(self) -> None:
        # A plain store: the timer re-reads it under the lock before it acts, and
        # the signal handler, like this method, runs in the main thread.
        self._phase = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        if self._signum is not None:
            signal.signal(self._signum, self._previous)

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        phase = self._phase
        if phase is not None and phase.error is not None and not phase.raised:
            phase.raised = True
            raise phase.error
        if callable(self._previous):  # someone else's signal after all
            self._previous(signum, frame)

    def _wait(self, until: float) -> None:
        self._wake_at = until
        self._cond.wait(None if until == math.inf else max(0.0, until - time.monotonic()))

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                phase = self._phase
                now = time.monotonic()
                if phase is None:
                    self._wait(math.inf)
                elif phase.error is None and now < phase.deadline:
                    self._wait(phase.deadline)
                elif phase.error is None:
                    self._interrupt(phase)
                elif now < phase.grace_deadline:
                    self._wait(phase.grace_deadline)
                else:
                    self._cond.release()  # the process ends; nothing may wait on the lock
                    self._give_up(phase)

    def _interrupt(self, phase: _Phase) -> None:
        self._cond.release()  # the dump takes a while; the test may end meanwhile
        try:
            error = hang_dump(phase.when, phase.seconds, str(self._config.rootpath), phase.nodeid)
        finally:
            self._cond.acquire()
        if self._phase is not phase:
            return
        phase.error = error
        if self._signum is None:
            phase.why, phase.grace_deadline = "past its hang timeout (this platform cannot interrupt it)", 0.0
        elif on_trio():
            # Raised in the main thread, it would leave trio's run waiting for a task that never ends.
            phase.why, phase.grace_deadline = "past its hang timeout on trio, which daybreak cannot interrupt", 0.0
        else:
            grace = min(phase.seconds, MAX_GRACE)
            phase.why = (f"{grace:g} s after its hang timeout interrupted it "
                         "(does it catch BaseException, or wait in C code?)")
            phase.grace_deadline = time.monotonic() + grace
            signal.pthread_kill(self._main or 0, self._signum)

    def _give_up(self, phase: _Phase) -> None:
        capture = self._config.pluginmanager.getplugin("capturemanager")
        try:
            if capture is not None:
                capture.suspend_global_capture(in_=True)
            dump = hang_dump(phase.when, phase.seconds, str(self._config.rootpath), phase.nodeid).dump
            message = (f"daybreak: {phase.nodeid}: {PHASE_NAMES[phase.when]} still running {phase.why}; "
                       "ending the test process")
            os.write(2, f"\n{dump}\n\n{message}\n".encode(errors="replace"))
        finally:
            os._exit(1)


def _take_signal(handler: Any) -> tuple[int | None, Any]:
    """A signal for the timer to interrupt the main thread with, and its previous handler.

    The highest real-time signal whose handler is still the default (Linux); SIGUSR2
    or SIGUSR1 elsewhere. None where threads cannot be signalled (Windows).
    """
    if not hasattr(signal, "pthread_kill"):
        return None, None
    if hasattr(signal, "SIGRTMIN"):
        candidates = list(range(signal.SIGRTMAX, signal.SIGRTMIN, -1))
    else:
        candidates = [signal.SIGUSR2, signal.SIGUSR1]
    free = [n for n in candidates if signal.getsignal(n) == signal.SIG_DFL]
    signum = free[0] if free else candidates[0]
    return signum, signal.signal(signum, handler)
