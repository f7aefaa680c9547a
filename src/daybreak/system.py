"""The engine: start a plan concurrently, stop it in reverse, diagnose what hangs.

A :class:`System` runs one step's life here (start, retries, checks, stop)
and keeps the state and the report; the graph walk that schedules the steps
is :mod:`daybreak._walk`, their timeouts :mod:`daybreak._timeouts`, and the
texts of failures that are not plain exceptions :mod:`daybreak._failures`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import random
import threading
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from types import CodeType, CoroutineType, TracebackType
from typing import Any, Literal, TypeVar, cast, overload

from daybreak._failures import CANCELLED_ITSELF, exit_message, returned_none, still_running
from daybreak._introspect import code_of, type_name
from daybreak._redact import Redactor, redact_strings
from daybreak._resume import resume
from daybreak._timeouts import (
    HANG,
    Deadlines,
    StepTask,
    StepTimeout,
    cancel_quietly,
    hang_of,
    late_timeout,
    own_timeout,
    propagates,
    this_task,
)
from daybreak._walk import walk
from daybreak.diagnostics import (
    LoopWatchdog,
    Snapshot,
    await_chain,
    innermost_project_frame,
    leftovers_since,
    thread_stacks,
)
from daybreak.diagnostics.frames import Frame
from daybreak.errors import Disabled, StartupError, UsageError, text_of
from daybreak.events import Event, Listener, level_of, log_event, logger
from daybreak.plan import Plan, Step
from daybreak.registry import UNSET, Component
from daybreak.report import ErrorInfo, StartupReport

__all__ = ["ComponentState", "System", "SystemState", "current_component", "failed_stops"]

T = TypeVar("T")
SystemStatus = Literal["pending", "starting", "ready", "degraded", "failed", "stopping", "stopped"]
ComponentStatus = Literal["pending", "starting", "started", "failed", "skipped", "disabled",
                          "stopping", "stopped"]

current_component: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "daybreak_component", default=None)

_MAX_BACKOFF = 5.0


class ComponentState:
    """The live state of one component or validator."""

    __slots__ = ("attempts", "duration_s", "error", "hang", "name", "reason", "start_s",
                 "status", "stop_duration_s", "stop_error", "stop_hang", "stop_start_s", "stop_status")

    def __init__(self, name: str) -> None:
        self.name = name
        self.status: ComponentStatus = "pending"
        self.start_s: float | None = None
        self.duration_s: float | None = None
        self.attempts = 0
        self.error: ErrorInfo | None = None
        self.reason: str | None = None
        self.hang: dict[str, Any] | None = None
        self.stop_status: str | None = None
        self.stop_start_s: float | None = None
        self.stop_duration_s: float | None = None
        self.stop_error: ErrorInfo | None = None
        self.stop_hang: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<ComponentState {self.name!r} {self.status}>"


class SystemState:
    """The live state of a system, for health checks and progress displays."""

    __slots__ = ("components", "error", "phase", "status")

    def __init__(self, names: Iterable[str]) -> None:
        self.status: SystemStatus = "pending"
        self.phase: str | None = None
        self.error: ErrorInfo | None = None
        self.components: dict[str, ComponentState] = {n: ComponentState(n) for n in names}

    @property
    def startup_complete(self) -> bool:
        return self.status in ("ready", "degraded")

    def __repr__(self) -> str:
        return f"<SystemState {self.status} phase={self.phase!r}>"


class System:
    """A running (or runnable) plan. Use ``async with registry.start() as system``.

    Frameworks that cannot use ``async with`` call ``await system.start()``
    and ``await system.stop()``.
    """

    def __init__(self, plan: Plan, *, concurrency: int | None = None, sequential: bool = False,
                 timeout: float | None = None, block_threshold: float | None = 0.1,
                 listeners: Iterable[Listener] = ()) -> None:
        if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                        or concurrency < 1):
            raise ValueError(f"daybreak: concurrency={concurrency!r}; expected an int >= 1 or None")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"daybreak: timeout={timeout!r}; expected seconds > 0 or None")
        if block_threshold is not None and not block_threshold > 0:
            raise ValueError(f"daybreak: block_threshold={block_threshold!r}; expected seconds > 0 or None")
        self.plan = plan
        self.name = plan.name
        self._limit = 1 if sequential else concurrency
        self._timeout = timeout
        self._block_threshold = block_threshold
        self._listeners = list(listeners)
        self._steps = plan.steps
        n = len(self._steps)
        self.state = SystemState(s.name for s in self._steps)
        self._cstate = list(self.state.components.values())  # in plan order, as built
        self._values: list[Any] = [None] * n
        self._up = [False] * n
        # True where a step is off because configuration switched it (or what
        # it needs) off: such a step leaves the system ready, not degraded.
        self._by_config = [False] * n
        self._stoppers: list[tuple[str, Any] | None] = [None] * n
        self._by_type: dict[Any, int] = {}
        for s in self._steps:
            if s.provides is not None:
                self._by_type[s.provides] = s.position
        self._validation: dict[tuple[str, str], dict[str, Any]] = {}
        # The thread of each sync check's latest run, (step, check) -> (thread, when it began).
        self._check_threads: dict[tuple[int, int], tuple[threading.Thread, float]] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._finishing: set[threading.Thread] = set()
        # When each step's last blocking call returned in its thread, and how long
        # the loop then took to resume the step (busy with another step's code):
        # that wait is not the step's, and it comes off its duration.
        self._thread_done: dict[int, float] = {}
        self._lag: dict[int, float] = {}
        # Threads born while steps were starting: id(thread) -> (the thread, the names
        # of the steps in progress then). One name means we know whose it is.
        self._births: dict[int, tuple[weakref.ref[threading.Thread], set[str]]] = {}
        self._running: set[str] = set()  # the steps starting right now
        self._thread_count = 0
        self._phase_index = -1  # the latest phase that has started
        self._redact = Redactor()
        self._lifecycle: Literal["new", "starting", "started", "stopping", "stopped"] = "new"
        self._t0 = 0.0
        self._started_s: float | None = None
        # How the start ended (ready, degraded, failed): the report keeps it after the stop.
        self._start_status: SystemStatus | None = None
        self._stopped_s: float | None = None
        self._watchdog: LoopWatchdog | None = None
        self._snapshot: Snapshot | None = None
        self._leftovers: dict[str, list[dict[str, Any]]] = {"threads": [], "tasks": [], "fds": []}
        self._failure: tuple[int | None, ErrorInfo, str] | None = None
        # sys.exit(code) in a factory: raised again by start() once it has rolled back.
        self._exit: SystemExit | None = None
        # The tasks of the graph walk under way, each with its node.
        self._running_tasks: dict[asyncio.Task[Any], int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_done: asyncio.Future[None] | None = None
        self._emit_on = bool(self._listeners)
        self._log_level: int | None = logger.getEffectiveLevel()
        # Whether routine events (a step starting or started) reach anyone.
        self._chatty = True
        # A provider's step, for its value: one dict, not an object per edge.
        self._position = {s.component: s.position for s in self._steps}
        self._deadlines = Deadlines(self._capture_hang)

    # -- access ------------------------------------------------------------
    @overload
    def __getitem__(self, key: type[T]) -> T: ...
    @overload
    def __getitem__(self, key: Any) -> Any: ...
    def __getitem__(self, key: Any) -> Any:
        """The instance that a component provides: ``system[Database]``."""
        i = self._by_type.get(key)
        if i is None:
            known = ", ".join(sorted(type_name(t) for t in self._by_type)) or "nothing"
            raise KeyError(f"no component of {self.name!r} provides {type_name(key)} "
                           f"(provided: {known})")
        if not self._up[i]:
            cs = self._cstate[i]
            raise LookupError(
                f"{type_name(key)} is not available: component {cs.name!r} is {cs.status}"
                + (f" ({cs.reason})" if cs.reason else ""))
        return self._values[i]

    def get(self, key: type[T], default: Any = None) -> T | Any:
        """Like ``system[key]``, but ``default`` when it is not provided or not up."""
        i = self._by_type.get(key)
        return self._values[i] if i is not None and self._up[i] else default

    def __contains__(self, key: object) -> bool:
        i = self._by_type.get(key)
        return i is not None and self._up[i]

    @property
    def status(self) -> SystemStatus:
        return self.state.status

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> None:
        raise UsageError("use 'async with registry.start() as system:', not 'with registry.start()'")

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ always raises
        pass

    async def __aenter__(self) -> System:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def __del__(self) -> None:
        if getattr(self, "_lifecycle", "new") in ("started", "starting"):
            warnings.warn(f"daybreak: system {self.name!r} was garbage-collected without being "
                          "stopped; use 'async with registry.start()' or await system.stop()",
                          ResourceWarning, stacklevel=1)

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    def _emit(self, kind: str, i: int | None = None, **fields: Any) -> None:
        if not self._emit_on and (self._log_level is None or level_of(kind) < self._log_level):
            return
        step = self._steps[i] if i is not None else None
        phase = None
        if step is not None and self.plan.phases:
            phase = self.plan.phases[step.phase_index]
        event = Event(kind, self.name, step.name if step else None, phase or fields.pop("phase", None),
                      **fields)
        for listener in self._listeners or (log_event,):
            try:
                listener(event)
            except Exception:
                logger.exception("daybreak: event listener %r failed on %s", listener, event.kind)

    async def start(self) -> None:
        """Start every step of the plan; raise :class:`StartupError` on a critical failure."""
        if self._lifecycle != "new":
            raise UsageError(f"system {self.name!r} was already started; a System starts once, "
                             "build another with registry.start()")
        self._lifecycle = "starting"
        loop = self._loop = asyncio.get_running_loop()
        self._t0 = time.perf_counter()
        self._redact.learn_environment()
        self._snapshot = Snapshot.take(loop)
        self._births = {id(t): (weakref.ref(t), set()) for t in threading.enumerate()}
        self._thread_count = _thread_count()
        self._read_log_level()
        self._deadlines.loop = loop
        self.state.status = "starting"
        self._emit("system.starting")
        self._start_watchdog(loop)
        deadline = None
        if self._timeout is not None:
            deadline = loop.call_later(self._timeout, self._on_start_timeout)
        try:
            await self._walk_start()
        except BaseException as exc:
            if deadline is not None:
                deadline.cancel()
            if self._failure is None:
                what = ("the start was cancelled" if isinstance(exc, asyncio.CancelledError)
                        else f"the start was interrupted by {type(exc).__name__}")
                self._failure = (None, ErrorInfo(type(exc).__name__, what), what)
            try:
                await self._rollback()
            finally:  # even when the rollback itself is cancelled: never left "starting"
                self._finish_failed()
            raise
        if deadline is not None:
            deadline.cancel()
        if self._failure is not None:
            try:
                await self._rollback()
            finally:
                self._finish_failed()
            if self._exit is not None:
                raise self._exit
            i, info, message = self._failure
            raise StartupError(message, report=self.report(),
                               component=self._steps[i].name if i is not None else None,
                               where=info.where)
        self._started_s = self._now()
        self._settle()
        degraded = any(cs.status in ("failed", "skipped") and not self._by_config[i]
                       for i, cs in enumerate(self._cstate))
        self.state.status = self._start_status = "degraded" if degraded else "ready"
        self.state.phase = None
        self._lifecycle = "started"
        self._emit(f"system.{self.state.status}", duration_s=self._started_s)

    def _read_log_level(self) -> None:
        # Read per start, per step started, per check run and per stop: per event it would
        # cost more than the step. Per step, because logging is often configured by a step
        # (Alembic's env.py runs fileConfig()); `disabled` is not read: events.log_event
        # undoes what fileConfig() does to the logger, logging.disable() still counts.
        disabled = logging.root.manager.disable
        self._log_level = None if disabled >= logging.CRITICAL else max(logger.getEffectiveLevel(), disabled + 1)
        self._chatty = self._emit_on or (self._log_level is not None and self._log_level <= logging.INFO)

    def _finish_failed(self) -> None:
        self.state.status = self._start_status = "failed"
        self.state.error = self._failure[1] if self._failure else None
        self._lifecycle = "stopped"
        self._stopped_s = self._now()
        self._settle()
        self._redact.settle()
        self._collect_leftovers()
        self._emit("system.failed", error=self._failure[2] if self._failure else None)

    async def stop(self) -> None:
        """Stop what started, in reverse dependency order. A second call is a no-op."""
        if self._lifecycle in ("new", "stopped"):
            if self._lifecycle == "new":
                self._lifecycle = "stopped"
                self.state.status = "stopped"
            return
        if self._lifecycle == "stopping":
            assert self._stop_done is not None
            await asyncio.shield(self._stop_done)
            return
        if self._lifecycle == "starting":
            raise UsageError("stop() was called while start() is running; cancel the start instead, "
                             "it rolls back what it started")
        self._lifecycle = "stopping"
        loop = asyncio.get_running_loop()
        done = self._stop_done = loop.create_future()
        self.state.status = "stopping"
        self._read_log_level()
        self._emit("system.stopping")
        self._resume_watchdog()
        # The walk finishes even when this call is cancelled (every stop has its own
        # timeout); the system is "stopped" only once it has, not when the caller gave up.
        caller = asyncio.current_task()
        walk = loop.create_task(self._walk_stop())
        walk.add_done_callback(lambda task: self._finish_stop(task, done, caller))
        await asyncio.shield(done)

    def _finish_stop(self, walk: asyncio.Task[None], done: asyncio.Future[None],
                     caller: asyncio.Task[Any] | None) -> None:
        self._settle()
        self._redact.settle()  # learn what the stopped values held, and let them go
        self._lifecycle = "stopped"
        self.state.status = "stopped"
        self._stopped_s = self._now()
        self._collect_leftovers(caller)
        error = None if walk.cancelled() else walk.exception()
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(None)
        self._emit("system.stopped", duration_s=self._stopped_s - (self._started_s or 0.0))

    # -- watchdog ----------------------------------------------------------
    def _codes(self) -> dict[CodeType, str]:
        """The code objects of this system's components (asked for only to blame a frame)."""
        return component_codes(s.component for s in self._steps)

    def _start_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._block_threshold is None:
            return
        self._watchdog = LoopWatchdog(loop, threshold=self._block_threshold, codes=self._codes)
        self._watchdog.start()

    def _pause_watchdog(self) -> None:
        # The watchdog runs only while starting and stopping: its thread must
        # not outlive them, or every running service would carry it.
        if self._watchdog is not None:
            self._watchdog.stop()

    def _resume_watchdog(self) -> None:
        if self._watchdog is not None:
            old = self._watchdog
            self._watchdog = LoopWatchdog(old.loop, threshold=old.threshold, codes=old.codes)
            self._watchdog.blocks.extend(old.blocks)
            self._watchdog.start()

    def _settle(self) -> None:
        """Between start and stop, nothing of daybreak runs: no watchdog, no timer."""
        self._pause_watchdog()
        self._deadlines.close()

    # -- graph walks -------------------------------------------------------
    async def _walk(self, preds: list[int], targets: list[int], start: list[int],
                    run: Callable[[int], Coroutine[Any, Any, None] | None], priority: Sequence[int],
                    abort: Callable[[], bool]) -> None:
        running: dict[asyncio.Task[Any], int] = {}
        self._running_tasks = running  # the steps waiting now, for a timeout of the start or hurry()
        await walk(preds, targets, start, run, priority, abort, limit=self._limit, steps=self._steps,
                   capture=self._capture_hang, running=running)

    async def _walk_start(self) -> None:
        n, targets, start, indeg = self.plan.edges
        gates = self.plan.gate_count

        def run(i: int) -> Coroutine[Any, Any, None] | None:
            if i >= n:
                return None
            return self._begin(i)

        # Plan order; a gate before any step, so that it opens as soon as it can.
        priority = [*range(n), *range(-gates, 0)]
        await self._walk(indeg, targets, start, run, priority, lambda: self._failure is not None)

    async def _walk_stop(self) -> None:
        n, _, start, _ = self.plan.edges

        def run(i: int) -> Coroutine[Any, Any, None] | None:
            if i >= n or self._stoppers[i] is None:
                if i < n:
                    self._mark_stopped(i)
                return None
            return self._stop_step(i)

        count = len(start) - 1
        # A node stops once everything it started before has stopped.
        await self._walk([start[i + 1] - start[i] for i in range(count)], *self.plan.waits, run,
                         range(0, -count, -1), lambda: False)

    async def _rollback(self) -> None:
        # Every step that came up is stopped, also those without stop code,
        # so that none of them is still reported "started".
        cancelled: asyncio.CancelledError | None = None
        if any(self._up) or any(s is not None for s in self._stoppers):
            self.state.status = "stopping"
            # The rollback is owned to its end: cancelling the start again (a second
            # signal) hurries the stops in progress instead of abandoning them all.
            walk = asyncio.ensure_future(self._walk_stop())
            while True:
                try:
                    await asyncio.shield(walk)
                    break
                except asyncio.CancelledError as exc:
                    cancelled = exc
                    if walk.done():
                        break
                    self.hurry()
        culprit = self._failure[0] if self._failure else None
        why = f"{self._steps[culprit].name!r} failed" if culprit is not None else (
            self._failure[2].partition(";")[0] if self._failure else "the start was cancelled")
        for cs in self._cstate:
            if cs.status == "starting":
                cs.status = "skipped"
                cs.reason = cs.reason or f"cancelled while starting: {why}"
            elif cs.status == "pending":
                cs.status = "skipped"
                cs.reason = cs.reason or f"not started: {why}"
        if cancelled is not None:
            raise cancelled

    # -- starting one step -------------------------------------------------
    def _begin(self, i: int) -> Coroutine[Any, Any, None] | None:
        """Decide a ready step: skip it, or return the coroutine that starts it."""
        step = self._steps[i]
        kwargs: dict[str, Any] = {}
        for name, provider, maybe in zip(step.param_names, step.providers, step.param_optional, strict=True):
            if provider is None:  # the parameter keeps its default
                continue
            j = self._position[provider]
            if self._up[j]:
                kwargs[name] = self._values[j]
            elif maybe:
                kwargs[name] = None
            else:
                cs = self._cstate[i]
                dep = self._cstate[j]
                cs.status = "skipped"
                self._by_config[i] = self._by_config[j]
                why = dep.reason if dep.status in ("skipped", "disabled") else str(dep.error or "")
                cs.reason = f"needs {dep.name!r}, which is {dep.status}" + (f": {why}" if why else "")
                if step.component.kind == "validator":
                    self._record_validation(step, "validator", step.name, "skipped", 0.0, None, cs.reason)
                self._emit("component.skipped", i, error=cs.reason)
                return None
        if step.component.value is not UNSET:
            self._values[i] = step.component.value
            self._redact.learn(step.component.value)  # a ready settings instance has secrets too
            self._up[i] = True
            cs = self._cstate[i]
            cs.status = "started"
            cs.start_s = self._now()
            cs.duration_s = 0.0
            cs.attempts = 1
            self._emit("component.started", i, duration_s=0.0, attempt=1)
            return None
        return self._start_step(i, kwargs)

    def _update_phase(self, step: Step) -> None:
        # Only forward: an optional step of an earlier phase may start after the
        # next phase has begun, and that phase has not started again.
        if step.phase_index > self._phase_index:
            self._phase_index = step.phase_index
            if not self.plan.phases:
                return
            phase = self.plan.phases[step.phase_index]
            self.state.phase = phase
            self._emit("phase.started", phase=phase)

    async def _start_step(self, i: int, kwargs: dict[str, Any]) -> None:
        # Most of a large plan is steps that finish at once: every line here is
        # paid ten thousand times, so the rare cases stay out of the way.
        step = self._steps[i]
        name = step.name
        # A thread whose stack shows no code of the project (a target such as
        # ``event.wait``) can still be blamed: on the one step that was starting
        # when it was born.
        self._running.add(name)
        try:
            c = step.component
            cs = self._cstate[i]
            current_component.set(name)
            if step.phase_index > self._phase_index:
                self._update_phase(step)
            cs.status = "starting"
            cs.start_s = time.perf_counter() - self._t0
            if self._chatty:
                self._emit("component.starting", i)
            attempts = c.retries + 1
            error: ErrorInfo | None = None
            timeout = step.timeout
            deadlines = self._deadlines
            task: asyncio.Task[Any] | None = None
            for attempt in range(1, attempts + 1):
                cs.attempts = attempt
                entry = None
                if isinstance(task, StepTask):  # an earlier attempt's: the report shows the last one's
                    task.hang = cs.hang = None
                try:
                    try:
                        work = c.factory(**kwargs) if step.direct else None
                        if type(work) is CoroutineType:
                            # Stepped by hand: a factory that returns at once needs
                            # no deadline, and most of a large plan is such factories.
                            try:
                                pending = work.send(None)
                            except StopIteration as finished:
                                self._values[i] = finished.value
                            else:
                                task = task or this_task()
                                if timeout is not None:
                                    entry = deadlines.add(timeout, i, task)
                                self._values[i] = await resume(work, pending)
                        else:
                            task = task or this_task()
                            if timeout is not None:
                                entry = deadlines.add(timeout, i, task)
                            if work is None:
                                await self._invoke(i, kwargs)
                            else:  # a callable marked as a coroutine function
                                self._values[i] = await work
                    except asyncio.CancelledError:
                        if (entry is not None and entry[HANG] is not None
                                and cast("asyncio.Task[Any]", task).uncancel() == 0):
                            raise StepTimeout(cast("float", timeout), entry[HANG]) from None
                        raise
                    else:
                        if entry is not None and entry[HANG] is not None:
                            raise late_timeout(task, entry, cast("float", timeout))
                    finally:
                        if entry is not None:
                            deadlines.cancel(entry)
                except Disabled as exc:
                    cs.status = "disabled"
                    self._by_config[i] = True
                    cs.reason = self._reason_of(exc)
                    cs.duration_s = self._now() - cs.start_s - self._lag.pop(i, 0.0)
                    self._emit("component.disabled", i, error=cs.reason)
                    return
                except StepTimeout as exc:
                    cs.hang = exc.hang
                    error = ErrorInfo("TimeoutError", exc.message("start", "timeout"), exc.hang.get("where"))
                    if self._stoppers[i] is not None:  # what came too late is not kept
                        await self._stop_step(i, after_check=True)
                except SystemExit as exc:  # sys.exit() in a factory: its failure, not a success
                    error = self._error_info(exc)
                    error = ErrorInfo(error.type, exit_message(exc), error.where)
                    if exc.code is not None:  # an explicit code: exit with it, once rolled back
                        self._exit = exc
                    break
                except BaseException as exc:  # any other BaseException is this step's failure too
                    if propagates(exc):
                        raise
                    error = self._error_info(exc)
                    hang = hang_of(task) if isinstance(exc, TimeoutError) else None
                    if hang is not None:  # its own timeout cancelled it: show where it hung
                        cs.hang = hang
                        error = own_timeout(error, hang)
                else:
                    error = None
                    break
                if attempt < attempts:
                    task = task or this_task()
                    delay = min(c.backoff * 2 ** (attempt - 1), _MAX_BACKOFF) * random.uniform(0.75, 1.25)
                    cs.error = error  # while it waits to retry: why (the live display shows it)
                    self._emit("component.retrying", i, attempt=attempt, error=str(error))
                    await asyncio.sleep(delay)
            if error is None and c.wrapper is not None:  # an override by daybreak.wrap()
                error = await self._wrap(i, c.wrapper)
            if error is None and self._values[i] is None and step.provides is not None:
                error = returned_none(step)
            if error is None and step.checks:
                task = task or this_task()
                error = await self._run_checks(i)
            if error is not None and self._stoppers[i] is not None:
                await self._stop_step(i, after_check=True)
            cs.duration_s = self._now() - cs.start_s - self._lag.pop(i, 0.0)
            if error is not None:
                cs.status = "failed"
                cs.error = error
                if c.kind == "validator":
                    self._record_validation(step, "validator", step.name, "failed", cs.duration_s, error)
                    self._emit("validator.failed", i, error=str(error), where=error.where)
                self._emit("component.failed", i, error=str(error), where=error.where,
                           duration_s=cs.duration_s)
                if (c.critical or self._exit is not None) and self._failure is None:
                    self._failure = (i, error, self._failure_message(i, error))
                return
            self._up[i] = True
            cs.status = "started"
            cs.error = None  # an earlier attempt's
            if c.kind == "validator":
                self._record_validation(step, "validator", step.name, "passed", cs.duration_s, None)
                self._emit("validator.passed", i, duration_s=cs.duration_s)
            self._redact.learn(self._values[i])
            self._read_log_level()
            if self._chatty:
                self._emit("component.started", i, duration_s=cs.duration_s, attempt=cs.attempts)
        finally:
            self._running.discard(name)
            self._note_births(name)

    async def _wrap(self, i: int, wrapper: Callable[[Any], Any]) -> ErrorInfo | None:
        """Provide ``wrapper(instance)`` instead of the instance; the error if it fails."""
        real = self._values[i]
        self._redact.learn(real)
        try:
            value = wrapper(real)
            if inspect.isawaitable(value):
                value = await value
        except BaseException as exc:
            if propagates(exc):
                raise
            error = self._error_info(exc)
            return ErrorInfo(error.type, f"its override's wrap() failed: {error.message}", error.where)
        self._values[i] = value
        return None

    def _note_births(self, name: str) -> None:
        # Counting is O(1); listing threads is only worth it when one appeared.
        count = _thread_count()
        if count <= self._thread_count:
            self._thread_count = count
            return
        self._thread_count = count
        for t in threading.enumerate():
            if t.name.startswith(("daybreak:", "daybreak-")):
                continue
            born = self._births.get(id(t))
            if born is None or born[0]() is not t:
                self._births[id(t)] = (weakref.ref(t), {name, *self._running})

    def _owner_of_thread(self, ident: int) -> str | None:
        thread = next((t for t in threading.enumerate() if t.ident == ident), None)
        born = self._births.get(id(thread)) if thread is not None else None
        if born is None or born[0]() is not thread or len(born[1]) != 1:
            return None
        return next(iter(born[1]))

    def _failure_message(self, i: int, error: ErrorInfo) -> str:
        step = self._steps[i]
        cs = self._cstate[i]
        phase = f" in phase {self.plan.phases[step.phase_index]!r}" if self.plan.phases else ""
        kind = "validator" if step.component.kind == "validator" else "component"
        lines = [f"critical {kind} {step.name!r}{phase} failed: {error.type}: {error.message}"]
        if error.where:
            lines.append(f"  where: {error.where}")
        if cs.attempts > 1:
            lines.append(f"  attempts: {cs.attempts} (retries={step.component.retries})")
        if error.type == "TimeoutError":
            if error.message.startswith("check "):
                what = "the check's timeout= (@component.check(timeout=...))"
            elif error.message.startswith("did not start within"):
                what = f"timeout= on {step.name!r}"
            else:
                what = "the timeout its own code sets"
            lines.append("  what to do: the stuck line is shown above; fix the hang, or raise "
                         f"{what} if it is just slow")
        elif error.type in ("ConnectionRefusedError", "OSError", "ConnectionError"):
            lines.append("  what to do: check that the service it connects to is running and "
                         "reachable, or mark the component optional=True to start degraded")
        return "\n".join(lines)

    def _reason_of(self, exc: Disabled) -> str:
        try:
            return self._redact(text_of(getattr(exc, "reason", exc)))
        except Exception as bug:
            return f"disabled (its reason could not be read: {text_of(bug)})"

    def _error_info(self, exc: BaseException) -> ErrorInfo:
        """What ``exc`` says, redacted, and where; never raises.

        A failure that cannot be recorded would leave its step "starting" and
        the start "ready": whatever goes wrong here still gives an ErrorInfo.
        """
        try:
            message = self._redact(text_of(exc))
        except Exception as bug:  # the unredacted text must not go out instead
            message = f"{type(exc).__name__} (its message could not be redacted: {type(bug).__name__})"
        try:
            frames: list[Frame] = []
            tb = exc.__traceback__
            while tb is not None:
                frames.append(Frame(tb.tb_frame.f_code.co_filename, tb.tb_lineno,
                                    tb.tb_frame.f_code.co_name))
                tb = tb.tb_next
            frame = innermost_project_frame(frames)
            where = frame.where if frame is not None else None
        except Exception:
            where = None
        if isinstance(exc, asyncio.CancelledError) and not message:
            message = CANCELLED_ITSELF
        return ErrorInfo(type(exc).__name__, message, where)

    async def _invoke(self, i: int, kwargs: dict[str, Any]) -> None:
        step = self._steps[i]
        factory = step.component.factory
        blocking = step.component.blocking
        if step.call == "async":
            obj = await factory(**kwargs)
        elif step.call == "agen":
            gen = factory(**kwargs)
            try:
                obj = await gen.__anext__()
            except StopAsyncIteration:
                raise RuntimeError(f"{step.name!r} is an async generator that finished without "
                                   "yielding; yield the instance once, stop code after the yield") from None
            self._stoppers[i] = ("agen", gen)
        elif step.call == "gen":
            gen = factory(**kwargs)
            empty = object()
            obj = await self._resumed(i, self._call_sync(i, next, gen, empty)) if blocking else next(gen, empty)
            if obj is empty:
                raise RuntimeError(f"{step.name!r} is a generator that finished without "
                                   "yielding; yield the instance once, stop code after the yield")
            self._stoppers[i] = ("gen", gen)
        else:
            obj = await self._resumed(i, self._call_sync(i, factory, **kwargs)) if blocking else factory(**kwargs)
            if step.await_result:
                obj = await obj
        if step.enter == "async":
            cm = obj
            obj = await cm.__aenter__()
            self._stoppers[i] = ("acm", cm)
        elif step.enter == "sync":
            cm = obj
            obj = await self._resumed(i, self._call_sync(i, cm.__enter__)) if blocking else cm.__enter__()
            self._stoppers[i] = ("cm", cm)
        self._values[i] = obj

    async def _resumed(self, i: int, work: asyncio.Future[T]) -> T:
        try:
            return await work
        finally:
            done = self._thread_done.pop(i, None)
            if done is not None:
                self._lag[i] = self._lag.get(i, 0.0) + time.perf_counter() - done

    def _call_sync(self, i: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run a blocking call in a thread of its own, named after its component.

        A thread per call, not a pool: a call that never returns keeps only its
        own thread, which the leftovers report names, and a pool's idle
        workers would otherwise look like leftovers after every stop.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()

        def deliver(ok: bool, value: Any) -> None:
            if future.done():
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        def run() -> None:
            try:
                result = context.run(fn, *args, **kwargs)
            except BaseException as exc:  # handed to the awaiting task
                if isinstance(exc, StopIteration):  # a future refuses it: it would never resolve
                    error = RuntimeError(f"{getattr(fn, '__name__', fn)!r} raised StopIteration")
                    error.__cause__ = exc
                    exc = error.with_traceback(exc.__traceback__)
                outcome: tuple[bool, Any] = (False, exc)
            else:
                outcome = (True, result)
            self._finishing.add(threading.current_thread())
            self._thread_done[i] = time.perf_counter()
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(deliver, *outcome)

        thread = threading.Thread(target=run, name=f"daybreak:{self._steps[i].name}", daemon=True)
        self._threads[i] = thread
        thread.start()
        return future

    async def _with_timeout(self, i: int, timeout: float | None, work: Awaitable[T]) -> T:
        if timeout is None:
            return await work
        task = asyncio.current_task()
        assert task is not None
        entry = self._deadlines.add(timeout, i, task)
        try:
            result = await work
        except asyncio.CancelledError:
            if entry[HANG] is not None and task.uncancel() == 0:
                raise StepTimeout(timeout, entry[HANG]) from None
            raise
        finally:
            self._deadlines.cancel(entry)
        if entry[HANG] is not None:
            raise late_timeout(task, entry, timeout)
        return result

    def _capture_hang(self, i: int, task: asyncio.Task[Any]) -> dict[str, Any]:
        chain = await_chain(task)
        threads = thread_stacks()
        where = innermost_project_frame(chain)
        worker = self._threads.get(i)
        if worker is not None and worker.is_alive():
            for t in threads:
                if t.ident == worker.ident:
                    where = innermost_project_frame(t.frames) or where
        return {
            "where": where.where if where else None,
            "tasks": [{"name": task.get_name(), "frames": [f.to_dict() for f in chain]}],
            "threads": [t.to_dict() for t in threads],
        }

    def _on_start_timeout(self) -> None:
        assert self._timeout is not None
        stuck = []
        for task, i in self._running_tasks.items():  # the start's walk: steps and their tasks
            cs = self._cstate[i]
            if cs.status == "starting" and cs.hang is None:
                cs.hang = self._capture_hang(i, task)
        still = [cs for cs in self._cstate if cs.status == "starting"]
        for cs in still:
            where = cs.hang.get("where") if cs.hang else None
            stuck.append(f"{cs.name} (at {where})" if where else cs.name)
        info = ErrorInfo("TimeoutError", f"the start did not finish within {self._timeout:g} s",
                         still[0].hang.get("where") if still and still[0].hang else None)
        message = (f"system {self.name!r} did not start within timeout={self._timeout:g} s; "
                   f"still starting: {', '.join(stuck) or 'nothing'}")
        if self._failure is None:
            self._failure = (None, info, message)
            # What was still starting is what made the start late: failed, not skipped.
            for i, cs in enumerate(self._cstate):
                if cs.status == "starting":
                    cs.status = "failed"
                    cs.error = ErrorInfo("TimeoutError", f"still starting when the start timed out "
                                         f"(timeout={self._timeout:g})",
                                         cs.hang.get("where") if cs.hang else None)
                    if cs.start_s is not None:
                        cs.duration_s = self._now() - cs.start_s
                    self._emit("component.failed", i, error=str(cs.error), where=cs.error.where)
        for task in list(self._running_tasks):
            cancel_quietly(task)

    # -- checks and validators --------------------------------------------
    def _record_validation(self, step: Step, kind: str, name: str, status: str, duration: float,
                           error: ErrorInfo | None, reason: str | None = None,
                           start_s: float | None = None) -> None:
        if start_s is None and kind == "validator":
            start_s = self._cstate[step.position].start_s
        self._validation[(step.name, name)] = {
            "name": name, "kind": kind, "component": step.name if kind == "check" else None,
            "phase": self.plan.phases[step.phase_index] if self.plan.phases else None,
            "status": status, "start_s": _r(start_s), "duration_s": round(duration, 6),
            "error": error.to_dict() if error else None, "reason": reason,
        }

    async def _run_checks(self, i: int) -> ErrorInfo | None:
        step = self._steps[i]
        first: ErrorInfo | None = None
        for k, pc in enumerate(step.checks):
            kwargs = {}
            for d in pc.dependencies:
                if d.provider is not None:
                    j = self.plan.step(d.provider).position
                    kwargs[d.parameter] = self._values[j] if (self._up[j] or j == i) else None
            t0 = time.perf_counter()
            error: ErrorInfo | None = None
            fn = pc.check.fn
            in_thread = step.component.blocking and not inspect.iscoroutinefunction(inspect.unwrap(fn))
            running = self._check_threads.pop((i, k), None) if in_thread else None
            if running is not None and running[0].is_alive():
                # One instance of a check at a time: a thread cannot be cancelled, and
                # a thread per readiness probe would pile up for ever.
                self._check_threads[(i, k)] = running
                timeout = pc.check.timeout
                if (timeout is not None and time.perf_counter() - running[1] < timeout
                        and (step.name, str(pc.check.name)) in self._validation):
                    continue  # a run still within its timeout: the last result stands
                error = still_running(*running)
            else:
                timed_out = False
                try:
                    if in_thread:
                        # a sync check runs in a thread like a sync factory: its timeout can fire
                        work = self._call_sync(i, fn, **kwargs)
                        self._check_threads[(i, k)] = (self._threads[i], t0)
                        result = await self._with_timeout(i, pc.check.timeout, work)
                    else:
                        result = fn(**kwargs)
                    if inspect.isawaitable(result):
                        await self._with_timeout(i, pc.check.timeout, result)
                except StepTimeout as exc:
                    error = ErrorInfo("TimeoutError", exc.message("finish", "check timeout"),
                                      exc.hang.get("where"))
                    self._cstate[i].hang = exc.hang
                    timed_out = True
                except BaseException as exc:
                    if propagates(exc):
                        raise
                    error = self._error_info(exc)
                if in_thread and not timed_out:
                    # The run ended: its thread may still be exiting, but it is not running the check.
                    self._check_threads.pop((i, k), None)
            status = "failed" if error else "passed"
            self._record_validation(step, "check", str(pc.check.name), status,
                                    time.perf_counter() - t0, error, start_s=t0 - self._t0)
            self._emit(f"check.{status}", i, error=str(error) if error else None)
            if error is not None and first is None:
                first = ErrorInfo(error.type, f"check {pc.check.name!r} failed: {error.message}", error.where)
        return first

    async def check(self) -> list[dict[str, Any]]:
        """Run every health check of the started components again (readiness).

        Returns the results in the ``validation`` schema; nothing is stopped
        when a check fails.
        """
        self._read_log_level()  # a probe logs at the level the app has now
        results = []
        for step in self._steps:
            if not step.checks or not self._up[step.position]:
                continue
            await self._run_checks(step.position)
            for pc in step.checks:
                results.append(dict(self._validation[(step.name, str(pc.check.name))]))
        return results

    # -- stopping ----------------------------------------------------------
    def _mark_stopped(self, i: int) -> None:
        cs = self._cstate[i]
        if self._up[i]:
            self._up[i] = False
            cs.status = "stopped"
            cs.stop_status = "stopped"
            cs.stop_start_s = self._now()
            cs.stop_duration_s = 0.0
            if self._chatty:
                self._emit("component.stopped", i, duration_s=0.0)

    async def _stop_step(self, i: int, *, after_check: bool = False) -> None:
        stopper = self._stoppers[i]
        self._stoppers[i] = None
        if stopper is None:
            return
        cs = self._cstate[i]
        step = self._steps[i]
        # A step cancelled half-way (its instance made, its checks still running) is
        # cleaned up here too, but keeps the status that says why it is not up.
        was_up = self._up[i] and not after_check
        if was_up:
            current_component.set(step.name)
            cs.status = "stopping"
            self._emit("component.stopping", i)
        t0 = time.perf_counter()
        kind, obj = stopper
        blocking = step.component.blocking
        try:
            await self._with_timeout(i, step.stop_timeout, self._run_stopper(i, kind, obj, blocking))
        except StepTimeout as exc:
            cs.stop_hang = exc.hang
            cs.stop_error = ErrorInfo("TimeoutError", exc.message("stop", "stop_timeout"),
                                      exc.hang.get("where"))
        except BaseException as exc:
            if propagates(exc):
                if isinstance(exc, asyncio.CancelledError):  # hurried (a second signal): cut short
                    hang = hang_of(asyncio.current_task())
                    cs.stop_hang = hang
                    cs.stop_error = ErrorInfo("CancelledError", "cut short: cancelled before it finished "
                                              "(interrupted again while stopping)",
                                              hang.get("where") if hang else None)
                    self._stop_ended(i, t0, was_up)
                raise
            cs.stop_error = self._error_info(exc)
            hang = hang_of(asyncio.current_task()) if isinstance(exc, TimeoutError) else None
            if hang is not None:
                cs.stop_hang = hang
                cs.stop_error = own_timeout(cs.stop_error, hang)
        self._stop_ended(i, t0, was_up)

    def _stop_ended(self, i: int, t0: float, was_up: bool) -> None:
        cs = self._cstate[i]
        cs.stop_start_s = t0 - self._t0
        cs.stop_duration_s = time.perf_counter() - t0
        cs.stop_status = "failed" if cs.stop_error else "stopped"
        if not was_up:
            return
        self._up[i] = False
        cs.status = "stopped"
        self._emit("component.stopped", i, duration_s=cs.stop_duration_s,
                   error=str(cs.stop_error) if cs.stop_error else None,
                   where=cs.stop_error.where if cs.stop_error else None)

    def hurry(self) -> None:
        """Cut short the stops in progress; the stops still waiting run as usual.

        For a second SIGINT or SIGTERM while stopping: each stop cut short is
        reported failed (``CancelledError``, with where it was), and what
        depends on it still stops, each within its own ``stop_timeout``.
        Outside a stop or a rollback it does nothing.
        """
        if self.state.status != "stopping":
            return
        for task in list(self._running_tasks):
            task.cancel()  # a step's task records where it was first (StepTask)

    async def _run_stopper(self, i: int, kind: str, obj: Any, blocking: bool) -> None:
        name = self._steps[i].name
        if kind == "agen":
            try:
                await obj.__anext__()
            except StopAsyncIteration:
                return
            await obj.aclose()
            raise RuntimeError(f"{name!r} yielded more than once; an async generator factory "
                               "yields its instance exactly once")
        if kind == "gen":
            def finish() -> bool:
                try:
                    next(obj)
                except StopIteration:
                    return True
                obj.close()
                return False

            ok = await self._call_sync(i, finish) if blocking else finish()
            if not ok:
                raise RuntimeError(f"{name!r} yielded more than once; a generator factory "
                                   "yields its instance exactly once")
            return
        if kind == "acm":
            await obj.__aexit__(None, None, None)
            return
        if blocking:
            await self._call_sync(i, obj.__exit__, None, None, None)
        else:
            obj.__exit__(None, None, None)

    # -- reporting ---------------------------------------------------------
    def _collect_leftovers(self, caller: asyncio.Task[Any] | None = None) -> None:
        if self._snapshot is None:
            return
        # A worker that has handed over its result is about to end: wait for
        # that, or the leftovers would race with its last instructions.
        for worker in self._finishing:
            worker.join(1.0)
        self._finishing.clear()
        current = asyncio.current_task() if caller is None else caller
        found = leftovers_since(self._snapshot, loop=self._loop,
                                exclude_tasks=[t for t in (current,) if t is not None],
                                codes=self._codes,
                                task_component=component_of_task)
        self._leftovers = found.to_dict()
        for thread in self._leftovers["threads"]:
            if thread.get("component") is None:
                thread["component"] = self._owner_of_thread(thread["ident"])

    def report(self) -> StartupReport:
        """The report as of now: a snapshot, safe to call at any time."""
        plan = self.plan
        # Messages are redacted when recorded; stacks, thread and task names here.
        def scrub(value: Any) -> Any:
            return None if value is None else redact_strings(value, self._redact)

        durations = {cs.name: cs.duration_s or 0.0 for cs in self._cstate}
        path, path_s = plan.critical_path_for(durations)
        components = []
        for s, cs in zip(self._steps, self._cstate, strict=True):
            if s.component.kind == "validator":
                continue
            components.append({
                "name": s.name,
                "provides": type_name(s.provides) if s.provides is not None else None,
                "phase": plan.phases[s.phase_index] if plan.phases else None,
                "critical": s.component.critical,
                "status": cs.status,
                "reason": cs.reason,
                "depends_on": [c.name for c in s.providers if c is not None],
                "start_s": _r(cs.start_s),
                "duration_s": _r(cs.duration_s),
                "attempts": cs.attempts,
                "error": cs.error.to_dict() if cs.error else None,
                "hang": scrub(cs.hang),
                "stop": None if cs.stop_status is None else {
                    "status": cs.stop_status, "start_s": _r(cs.stop_start_s),
                    "duration_s": _r(cs.stop_duration_s),
                    "error": cs.stop_error.to_dict() if cs.stop_error else None,
                    "hang": scrub(cs.stop_hang),
                },
                "tags": sorted(s.component.tags),
            })
        validation = list(self._validation.values())
        for s, cs in zip(self._steps, self._cstate, strict=True):
            if s.component.kind == "validator" and (s.name, s.name) not in self._validation:
                validation.append({"name": s.name, "kind": "validator", "component": None,
                                   "phase": plan.phases[s.phase_index] if plan.phases else None,
                                   "status": cs.status, "start_s": _r(cs.start_s),
                                   "duration_s": _r(cs.duration_s), "error": None, "reason": cs.reason})
        blocks = [b.to_dict() for b in self._watchdog.blocks] if self._watchdog else []
        for b in blocks:
            b.pop("frames", None)
        duration = self._started_s if self._started_s is not None else (
            self._now() if self._lifecycle == "starting" else self._stopped_s)
        return StartupReport(
            name=self.name,
            status=self.state.status,
            start_status=self._start_status,
            duration_s=duration,
            critical_path_s=path_s,
            critical_path=path,
            phases=self._phase_rows(),
            components=components,
            validation=validation,
            loop_blocks=scrub(blocks),
            leftovers=scrub(self._leftovers),
            error=self._failure[1] if self._failure else None,
        )

    def _phase_rows(self) -> list[dict[str, Any]]:
        rows = []
        by_phase: list[list[tuple[Step, ComponentState]]] = [[] for _ in self.plan.phases]
        for s, cs in zip(self._steps, self._cstate, strict=True) if by_phase else ():
            by_phase[s.phase_index].append((s, cs))  # one pass, not one per phase
        for phase, members in zip(self.plan.phases, by_phase, strict=True):
            starts = [cs.start_s for _, cs in members if cs.start_s is not None]
            ends = [cs.start_s + cs.duration_s for _, cs in members
                    if cs.start_s is not None and cs.duration_s is not None]
            statuses = {cs.status for _, cs in members}
            if any(cs.status == "failed" and s.component.critical for s, cs in members):
                status = "failed"
            elif statuses & {"pending", "starting"}:
                status = "starting" if starts else "pending"
            elif any(cs.status in ("failed", "skipped") and not self._by_config[s.position]
                     for s, cs in members):
                status = "degraded"
            else:
                status = "done"
            rows.append({"name": phase, "status": status,
                         "start_s": _r(min(starts)) if starts else None,
                         "duration_s": _r(max(ends) - min(starts)) if starts and ends else None})
        return rows

    def __repr__(self) -> str:
        return f"<System {self.name!r} {self.state.status}>"


# threading.active_count() takes a lock in Python code, and every step counts
# threads once: the dict it counts, read directly, costs a tenth of that. A
# thread is in it from the moment its start() returns.
_ACTIVE_THREADS: dict[int, threading.Thread] | None = getattr(threading, "_active", None)


def _thread_count() -> int:
    return len(_ACTIVE_THREADS) if _ACTIVE_THREADS is not None else threading.active_count()


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def failed_stops(report: Mapping[str, Any]) -> list[str]:
    """One line per component of a report (its dict) that did not stop cleanly.

    Its stop raised, timed out or was cut short, or never ended: a failure of
    ``daybreak start`` and ``doctor`` as much as a failed start is.
    """
    lines = []
    for c in report["components"]:
        stop = c.get("stop")
        if stop is not None and stop["status"] == "failed" and stop["error"]:
            error = stop["error"]
            at = f" (at {error['where']})" if error["where"] else ""
            lines.append(f"component {c['name']!r} did not stop cleanly: {error['type']}: "
                         f"{error['message']}{at}")
        elif c["status"] == "stopping":
            lines.append(f"component {c['name']!r} did not stop: its stop never ended")
    return lines


def component_codes(components: Iterable[Component[Any]]) -> dict[CodeType, str]:
    """The code of each factory and check, mapped to its component's name.

    A frame running one of these codes belongs to that component: that is how
    a blocked loop, a leftover thread or a leftover task is attributed.
    """
    codes: dict[CodeType, str] = {}
    for c in components:
        for fn in (c.factory, *(check.fn for check in c.checks)):
            code = code_of(fn)
            if code is not None:
                codes.setdefault(code, c.name)
    return codes


def component_of_task(task: asyncio.Task[Any]) -> str | None:
    """The component whose code created ``task`` (3.12+, where tasks show their context)."""
    get_context = getattr(task, "get_context", None)
    if get_context is None:
        return None
    value = get_context().get(current_component)
    return value if isinstance(value, str) else None

