"""pytest plugin: systems as fixtures, hang dumps instead of silent timeouts, leak checks.

Loaded through the ``pytest11`` entry point in every pytest run of the
environment, so this module imports only what pytest has already imported:
the hang timer (``_hang``) is imported when a hang timeout is in force, the
dump (asyncio, daybreak's diagnostics) when a test hangs, and daybreak's
engine (``_systems``) when a test uses a fixture.

- ``daybreak_system``: ``async with daybreak_system(registry, overrides=...) as system``;
  ``with daybreak_system.sync(registry) as system`` for tests that are not async.
- ``system_fixture(registry, scope="session")``: a fixture that starts the
  registry once per session (or module), in the event loop of that scope.
- ``--daybreak-hang-timeout=S`` (ini ``daybreak_hang_timeout``, env
  ``DAYBREAK_HANG_TIMEOUT``, marker ``@pytest.mark.daybreak_hang_timeout(S)``):
  a setup, call or teardown still running after S seconds fails with the
  stacks of all threads and the await chains of all asyncio tasks, even when
  its event loop is blocked.
- ``@pytest.mark.daybreak_leaks(cycles=10, max_growth=1024)``: every registry the
  test started through ``daybreak_system`` is run again under the leak checker.

Hook wrappers are old-style (``hookwrapper=True``): new-style ones crash every
pytest run with pluggy < 1.2, which pytest 7.4 allows.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

# pytest.fail.Exception, named so that type checkers accept it as a base class.
from _pytest.outcomes import Failed

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from daybreak.pytest_plugin._hang import HangWatch
    from daybreak.pytest_plugin._systems import SyncSystem, SystemFactory
    from daybreak.registry import Registry
    from daybreak.system import System

__all__ = ["HangTimeout", "SyncSystem", "SystemFactory", "system_fixture"]

_HANG_HELP = ("fail a test whose setup, call or teardown runs longer than S seconds, with the "
              "stacks of all threads and asyncio tasks (0 disables)")

_TIMEOUT = pytest.StashKey[float]()
_WATCH = pytest.StashKey["HangWatch"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("daybreak")
    group.addoption("--daybreak-hang-timeout", type=float, default=None, metavar="S",
                    dest="daybreak_hang_timeout", help=_HANG_HELP)
    parser.addini("daybreak_hang_timeout", _HANG_HELP, default="0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "daybreak_hang_timeout(seconds): fail this test's setup, call or teardown "
        "after `seconds`, with stack dumps")
    config.addinivalue_line(
        "markers", "daybreak_leaks(cycles=10, warmup=2, max_growth=1024): run the systems this "
        "test starts through daybreak_system under the leak checker")
    config.stash[_TIMEOUT] = _configured_timeout(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    watch = config.stash.get(_WATCH, None)
    if watch is not None:
        watch.close()
        del config.stash[_WATCH]


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
    return item.config.stash[_TIMEOUT]


def pytest_report_header(config: pytest.Config) -> str | None:
    value = config.stash[_TIMEOUT]
    return f"daybreak: hang timeout {value:g} s" if value else None


class HangTimeout(Failed):
    """Raised in the main thread when a test phase exceeds its daybreak hang timeout.

    A ``BaseException``, as pytest's own outcomes are, so that ``except Exception``
    in the code under test does not swallow it. ``dump`` is the report: its first
    line names where the test is stuck, ``where`` is that ``(file, line)``.
    """

    def __init__(self, dump: str, where: tuple[str, int] | None = None, summary: str = "") -> None:
        super().__init__(dump, pytrace=False)
        self.dump = dump
        self.where = where
        self.summary = summary or dump.partition("\n")[0]

    def longrepr(self) -> TerminalRepr:
        """The failure as pytest prints it: the dump once, and ``file:line`` in the short summary."""
        from _pytest._code.code import ReprExceptionInfo, ReprFileLocation, ReprTracebackNative

        file, line = self.where or ("", 0)
        return ReprExceptionInfo(reprtraceback=ReprTracebackNative([self.dump + "\n"]),
                                 reprcrash=ReprFileLocation(file, line, f"HangTimeout: {self.summary}"))


def _watch(item: pytest.Item, when: str) -> HangWatch | None:
    """Start timing a phase of ``item``; None when no hang timeout applies."""
    if when == "setup":
        item.stash[_TIMEOUT] = _timeout_of(item)
    seconds = item.stash.get(_TIMEOUT, 0.0)
    if not seconds or threading.current_thread() is not threading.main_thread():
        return None
    config = item.config
    watch = config.stash.get(_WATCH, None)
    if watch is None:
        from daybreak.pytest_plugin._hang import HangWatch

        watch = config.stash[_WATCH] = HangWatch(config)
    watch.begin(item.nodeid, when, seconds)
    return watch


def _timed(item: pytest.Item, when: str) -> Generator[None, object, None]:
    """The body of the three phase wrappers: the phase runs under the hang timeout."""
    watch = _watch(item, when)
    yield
    if watch is not None:
        watch.end()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, None]:
    yield from _timed(item, "setup")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, None]:
    yield from _timed(item, "call")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, None]:
    yield from _timed(item, "teardown")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    hang = _hang_in(call.excinfo.value) if call.excinfo is not None else None
    if hang is not None:
        outcome.get_result().longrepr = hang.longrepr()


def _hang_in(exc: BaseException | None, depth: int = 0) -> HangTimeout | None:
    """The HangTimeout behind a failure: itself, inside an exception group, or what it caused."""
    if exc is None or depth > 20:
        return None
    if isinstance(exc, HangTimeout):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _hang_in(inner, depth + 1)) is not None:
                return found
    return _hang_in(exc.__cause__ or exc.__context__, depth + 1)


@pytest.fixture
def daybreak_system(request: pytest.FixtureRequest) -> Iterator[SystemFactory]:
    """Start a registry for a test: ``async with daybreak_system(registry) as system``."""
    from daybreak.pytest_plugin._systems import SystemFactory

    factory = SystemFactory()
    yield factory
    marker = request.node.get_closest_marker("daybreak_leaks")
    if marker is not None and factory.started:
        from daybreak.testing import assert_no_leaks

        options = dict(marker.kwargs)
        for registry, start_options in factory.started:
            assert_no_leaks(registry, overrides=start_options.get("overrides"), **options)


def system_fixture(registry: Registry, *, scope: str = "session", sync: bool = False,
                   **start_options: Any) -> Any:
    """A fixture that starts ``registry`` once per ``scope`` and stops it after the last test.

    ``conftest.py``: ``system = system_fixture(registry, overrides={...})``; a test
    takes ``system`` and reads ``system[Database]``. The system runs in the event
    loop of ``scope``: with pytest-asyncio the fixture's ``loop_scope`` is ``scope``
    and the tests that use it say ``@pytest.mark.asyncio(loop_scope=scope)`` (or
    set ``asyncio_default_test_loop_scope``); with anyio, make ``anyio_backend``
    a fixture of that scope. ``sync=True`` gives a :class:`SyncSystem` whose loop
    runs in a thread, for tests that are not async.
    """
    if sync:
        def sync_system() -> Iterator[SyncSystem]:
            from daybreak.pytest_plugin._systems import SystemFactory

            with SystemFactory().sync(registry, **start_options) as system:
                yield system

        return pytest.fixture(sync_system, scope=scope)  # type: ignore[call-overload]

    async def async_system() -> AsyncIterator[System]:
        from daybreak.pytest_plugin._systems import SystemFactory

        async with SystemFactory()(registry, **start_options) as system:
            yield system

    if "pytest_asyncio" in sys.modules:  # its plugin is loaded: it runs async fixtures
        import pytest_asyncio

        return pytest_asyncio.fixture(async_system, scope=scope, loop_scope=scope)  # type: ignore[call-overload]
    return pytest.fixture(async_system, scope=scope)  # type: ignore[call-overload]


def __getattr__(name: str) -> Any:
    # The fixtures' classes live with daybreak's engine, imported on first use.
    if name in ("SyncSystem", "SystemFactory"):
        from daybreak.pytest_plugin import _systems

        return getattr(_systems, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
