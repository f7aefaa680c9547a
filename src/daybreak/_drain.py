"""Graceful shutdown on SIGTERM: readiness turns 503 first, the app serves on for a drain delay, then the server stops.

A server that gets SIGTERM closes its listening socket at once, while the
proxies in front of it (kube-proxy, ingress controllers, cloud load
balancers) go on sending it requests for a few seconds until they learn that
the pod is going away. So the lifespan holds the signal back: on the first
SIGTERM ``/health/ready`` answers 503 (``status: draining``) while every other
route, ``/health/live`` included, answers as before; after ``drain`` seconds
(or at a second SIGTERM) the server gets the signal and shuts down as it
would have: no new connections, the requests in flight finish, then the
lifespan's shutdown stops the system.

The server's handler is found where the server put it: a Python signal
handler (uvicorn, also as a gunicorn worker), or the event loop's
``add_signal_handler`` (aiohttp's ``run_app``). Under neither (no server, a
lifespan driven outside the main thread) nothing is installed. A system that
is not serving (still starting, failed, stopping) has nothing to drain: the
signal goes through at once, so a failed background start shuts down without
a delay.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from daybreak.system import System

#: Seconds between the first SIGTERM and the server's shutdown, when the lifespan is not given ``drain=``.
DEFAULT_DRAIN: Final = 5.0

#: The environment variable that sets the drain delay of every lifespan not given ``drain=`` (seconds).
DRAIN_ENV: Final = "DAYBREAK_DRAIN_S"

#: Systems whose readiness answers 503 because their server is about to stop.
draining: weakref.WeakSet[System] = weakref.WeakSet()

_SERVING: Final = ("ready", "degraded")


def drain_seconds(drain: float | None) -> float:
    """``drain``, or :data:`DRAIN_ENV`, or :data:`DEFAULT_DRAIN`; a ValueError names the bad value."""
    source = "drain"
    value: object = drain
    if drain is None:
        raw = os.environ.get(DRAIN_ENV)
        if raw is None:
            return DEFAULT_DRAIN
        source, value = DRAIN_ENV, raw
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"daybreak: {source}={value!r}; expected seconds >= 0")
    return seconds


class Drain:
    """The SIGTERM handler of one lifespan: :meth:`install` at its start, :meth:`uninstall` at its end."""

    __slots__ = ("_log", "_loop", "_pass_on", "_restore", "_seconds", "_system", "_timer")

    def __init__(self, system: System, seconds: float, log: logging.Logger) -> None:
        self._system = system
        self._seconds = seconds
        self._log = log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pass_on: Callable[[], object] | None = None  # the server's own handling of SIGTERM
        self._restore: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def install(self) -> None:
        """Put the drain in front of the server's SIGTERM handler, when there is one."""
        if self._seconds <= 0 or threading.current_thread() is not threading.main_thread():
            return
        loop = self._loop = asyncio.get_running_loop()
        # loop.add_signal_handler() keeps its callbacks here; signal.getsignal() then
        # shows only asyncio's no-op, and replacing that would not stop the callback.
        handles: Any = getattr(loop, "_signal_handlers", None)
        handle = handles.get(signal.SIGTERM) if isinstance(handles, dict) else None
        if isinstance(handle, asyncio.Handle):
            callback, args = getattr(handle, "_callback", None), getattr(handle, "_args", ())
            if callback is None:
                return
            loop.add_signal_handler(signal.SIGTERM, self._on_loop_signal)

            def restore_loop() -> None:
                mine = handles.get(signal.SIGTERM)
                if getattr(mine, "_callback", None) == self._on_loop_signal:
                    loop.add_signal_handler(signal.SIGTERM, callback, *args)

            self._pass_on = lambda: callback(*args)
            self._restore = restore_loop
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):  # SIG_DFL, SIG_IGN: no server listens
            return
        signal.signal(signal.SIGTERM, self._on_signal)

        def restore_signal() -> None:
            if signal.getsignal(signal.SIGTERM) == self._on_signal:
                signal.signal(signal.SIGTERM, previous)

        self._pass_on = lambda: previous(signal.SIGTERM, None)
        self._restore = restore_signal

    def uninstall(self) -> None:
        """Give SIGTERM back to the server (the lifespan is ending)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        draining.discard(self._system)
        if self._restore is not None:
            self._restore()
            self._restore = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        del signum, frame
        # A Python signal handler runs between two bytecodes of the main thread,
        # possibly inside the loop's own code: only schedule from here.
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._on_loop_signal)

    def _on_loop_signal(self) -> None:
        if self._system in draining:  # a second SIGTERM: stop now
            self._log.info("daybreak: second SIGTERM; %r stops without waiting for the drain",
                           self._system.name)
            self._finish()
        elif self._system.state.status not in _SERVING:
            self._pass()
        else:
            draining.add(self._system)
            self._log.disabled = False  # as in _health.report_error: fileConfig() may have disabled it
            self._log.info("daybreak: SIGTERM; %r answers 503 on readiness and serves on for %g s "
                           "(drain), then the server stops", self._system.name, self._seconds)
            assert self._loop is not None
            self._timer = self._loop.call_later(self._seconds, self._finish)

    def _finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pass()

    def _pass(self) -> None:
        if self._pass_on is not None:
            self._pass_on()
