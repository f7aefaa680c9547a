"""pytest plugin: systems as fixtures, hang dumps instead of silent timeouts, leak checks.

Loaded through the ``pytest11`` entry point. At pytest start it imports only
pytest and the standard library; daybreak's engine is imported when a test
first uses a fixture.

- ``daybreak_system``: ``async with daybreak_system(registry, overrides=...) as system``;
  ``with daybreak_system.sync(registry) as system`` for tests that are not async.
- ``--daybreak-hang-timeout=S`` (ini ``daybreak_hang_timeout``, env
  ``DAYBREAK_HANG_TIMEOUT``, marker ``@pytest.mark.daybreak_hang_timeout(S)``):
  a test still running after S seconds fails with the stacks of all threads
  and the await chains of all asyncio tasks, even when its event loop is blocked.
- ``@pytest.mark.daybreak_leaks(cycles=10, max_growth=1024)``: every registry the
  test started through ``daybreak_system`` is run again under the leak checker.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from daybreak.registry import Registry
    from daybreak.system import System

__all__ = ["SyncSystem", "SystemFactory"]

_HANG_HELP = ("fail a test that runs longer than S seconds, with the stacks of all threads "
              "and asyncio tasks (0 disables)")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("daybreak")
    group.addoption("--daybreak-hang-timeout", type=float, default=None, metavar="S",
                    dest="daybreak_hang_timeout", help=_HANG_HELP)
    parser.addini("daybreak_hang_timeout", _HANG_HELP, default="0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "daybreak_hang_timeout(seconds): fail this test after `seconds`, with stack dumps")
    config.addinivalue_line(
        "markers", "daybreak_leaks(cycles=10, warmup=2, max_growth=1024): run the systems this "
        "test starts through daybreak_system under the leak checker")


def _seconds(raw: object, source: str) -> float:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise pytest.UsageError(f"daybreak: invalid hang timeout {raw!r} from {source}") from None
    if value < 0:
        raise pytest.UsageError(f"daybreak: invalid hang timeout {raw!r} from {source}")
    return value


def _configured_timeout(config: pytest.Config) -> float:
    """The session-wide hang timeout: option, then environment, then ini."""
    if config.getoption("daybreak_hang_timeout") is not None:
        return _seconds(config.getoption("daybreak_hang_timeout"), "--daybreak-hang-timeout")
    if os.environ.get("DAYBREAK_HANG_TIMEOUT"):
        return _seconds(os.environ["DAYBREAK_HANG_TIMEOUT"], "DAYBREAK_HANG_TIMEOUT")
    return _seconds(config.getini("daybreak_hang_timeout") or 0, "the daybreak_hang_timeout ini option")


def _timeout_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("daybreak_hang_timeout")
    if marker is not None:
        raw = marker.args[0] if marker.args else marker.kwargs.get("seconds")
        return _seconds(raw, f"the daybreak_hang_timeout marker of {item.nodeid}")
    return _configured_timeout(item.config)


def pytest_report_header(config: pytest.Config) -> str | None:
    value = _configured_timeout(config)
    return f"daybreak: hang timeout {value:g} s" if value else None


class HangTimeout(Exception):
    """Raised in the main thread when a test exceeds its daybreak hang timeout."""


def _hang_dump(seconds: float) -> str:
    from daybreak.diagnostics import innermost_project_frame, task_stacks, thread_stacks

    lines = [f"test still running after {seconds:g} s (daybreak hang timeout)"]
    threads = thread_stacks()
    main = threading.main_thread().ident
    for t in sorted(threads, key=lambda t: t.ident != main):
        if t.name == "daybreak-hang-timer":
            continue
        where = innermost_project_frame(t.frames)
        lines.append(f"\n--- thread {t.name} ({'main' if t.ident == main else 'daemon' if t.daemon else 'thread'})"
                     + (f", stuck at {where.where}" if where else ""))
        lines.extend(f"    {f}" for f in t.frames)
    for loop in _running_loops():
        try:
            tasks = task_stacks(loop)
        except RuntimeError:  # the set of tasks changed while we read it
            continue
        for task in tasks:
            where = innermost_project_frame(task.frames)
            lines.append(f"\n--- asyncio task {task.name} ({task.coro})"
                         + (f", waiting at {where.where}" if where else ""))
            lines.extend(f"    {f}" for f in task.frames)
    return "\n".join(lines)


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    # The loop runs in another thread than this timer, so asyncio cannot tell
    # us about it; the garbage collector knows every loop object.
    return [o for o in gc.get_objects()
            if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]


class _HangTimer:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.dump: str | None = None
        self._cancel = threading.Event()
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._run, name="daybreak-hang-timer", daemon=True)
        self._previous: Any = None

    def _run(self) -> None:
        if self._cancel.wait(self.seconds):
            return
        self.dump = _hang_dump(self.seconds)
        if self._main is not None and not self._cancel.is_set():
            signal.pthread_kill(self._main, signal.SIGALRM)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.dump is not None:
            raise HangTimeout(self.dump)

    def __enter__(self) -> _HangTimer:
        self._previous = signal.signal(signal.SIGALRM, self._on_signal)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cancel.set()
        self._thread.join()
        signal.signal(signal.SIGALRM, self._previous)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    seconds = _timeout_of(item)
    usable = seconds > 0 and threading.current_thread() is threading.main_thread() \
        and hasattr(signal, "pthread_kill")
    if not usable:
        return (yield)
    with _HangTimer(seconds):
        try:
            return (yield)
        except HangTimeout as exc:
            pytest.fail(str(exc), pytrace=False)


class SyncSystem:
    """A system running on an event loop in a thread of its own, for sync tests.

    ``system[T]`` works as usual; ``run(coro)`` runs a coroutine on the
    system's loop and returns its result.
    """

    def __init__(self, system: System, loop: asyncio.AbstractEventLoop) -> None:
        self.system = system
        self.loop = loop

    def __getitem__(self, key: Any) -> Any:
        return self.system[key]

    def report(self) -> Any:
        return self.system.report()

    @property
    def state(self) -> Any:
        return self.system.state

    def run(self, coro: Any, timeout: float | None = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


class SystemFactory:
    """The ``daybreak_system`` fixture: starts systems and makes sure they stop."""

    def __init__(self) -> None:
        self.started: list[tuple[Registry, dict[str, Any]]] = []
        self._open: list[System] = []

    @asynccontextmanager
    async def __call__(self, registry: Registry, **start_options: Any) -> AsyncIterator[System]:
        self.started.append((registry, dict(start_options)))
        system = registry.start(**start_options)
        self._open.append(system)
        try:
            async with system:
                yield system
        finally:
            self._open.remove(system)

    @contextmanager
    def sync(self, registry: Registry, **start_options: Any) -> Iterator[SyncSystem]:
        self.started.append((registry, dict(start_options)))
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_forever()

        thread = threading.Thread(target=serve, name="daybreak-test-loop", daemon=True)
        thread.start()
        system = registry.start(**start_options)

        def call(fn: Callable[[], Any]) -> Any:
            return asyncio.run_coroutine_threadsafe(fn(), loop).result()

        try:
            call(system.start)
            try:
                yield SyncSystem(system, loop)
            finally:
                call(system.stop)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


@pytest.fixture
def daybreak_system(request: pytest.FixtureRequest) -> Iterator[SystemFactory]:
    """Start a registry for a test: ``async with daybreak_system(registry) as system``."""
    factory = SystemFactory()
    yield factory
    marker = request.node.get_closest_marker("daybreak_leaks")
    if marker is not None and factory.started:
        from daybreak.testing import assert_no_leaks

        options = dict(marker.kwargs)
        for registry, start_options in factory.started:
            assert_no_leaks(registry, overrides=start_options.get("overrides"), **options)

