"""A failure never reads as ready: what the engine records when a step misbehaves."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import pytest

import daybreak.system
from _markers import marker_line
from daybreak import Disabled, Registry, StartupError


def where(marker: str) -> str:
    """``file:line`` of the line of this file that ends with ``# at: <marker>``."""
    return marker_line(__file__, marker)


class Database: ...
class Api: ...


class Unreadable(Exception):
    def __str__(self) -> str:
        raise ValueError("no text today")


def component(report: daybreak.StartupReport, name: str) -> dict[str, object]:
    return next(c for c in report.components if c["name"] == name)


# -- a failure that is hard to record is still a failure --------------------------------------


async def test_an_exception_whose_str_raises_fails_the_step_and_the_start() -> None:
    registry = Registry("unreadable")

    @registry.component
    async def database() -> Database:
        raise Unreadable  # at: unreadable

    with pytest.raises(StartupError) as caught:
        await registry.start().start()
    db = component(caught.value.report, "database")
    assert db["status"] == "failed"
    assert db["error"] == {
        "type": "Unreadable",
        "message": "Unreadable (its message could not be read: ValueError: no text today)",
        "where": where("unreadable"),
    }
    assert caught.value.report.status == "failed"


async def test_a_failure_while_finding_where_still_fails_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(frames: object) -> None:
        raise RuntimeError("where is broken")

    monkeypatch.setattr(daybreak.system, "innermost_project_frame", broken)
    registry = Registry("where")

    @registry.component
    async def database() -> Database:
        raise OSError("refused")

    with pytest.raises(StartupError) as caught:
        await registry.start().start()
    db = component(caught.value.report, "database")
    assert db["status"] == "failed"
    assert db["error"] == {"type": "OSError", "message": "refused", "where": None}


async def test_a_failure_while_redacting_still_fails_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: object, text: str) -> str:
        raise RuntimeError("redaction is broken")

    monkeypatch.setattr(daybreak.system.Redactor, "__call__", broken)
    registry = Registry("redact")

    @registry.component
    async def database() -> Database:
        raise OSError("postgresql://app:hunter2@db/app refused")

    with pytest.raises(StartupError) as caught:
        await registry.start().start()
    db = component(caught.value.report, "database")
    assert db["status"] == "failed"
    assert db["error"]["message"] == "OSError (its message could not be redacted: RuntimeError)"  # type: ignore[index]


async def test_an_unreadable_error_of_an_optional_step_degrades_the_start() -> None:
    registry = Registry("unreadable-optional")

    @registry.component(optional=True)
    async def database() -> Database:
        raise Unreadable

    async with registry.start() as system:
        assert system.status == "degraded"
        assert component(system.report(), "database")["status"] == "failed"


# -- Disabled(anything) ----------------------------------------------------------------------


async def test_disabled_with_an_exception_keeps_its_text_as_the_reason() -> None:
    registry = Registry("disabled")

    @registry.component
    async def database() -> Database:
        try:
            import daybreak_no_such_driver  # type: ignore[import-not-found]  # noqa: F401
        except ImportError as exc:
            raise Disabled(exc) from None
        return Database()

    async with registry.start() as system:
        db = component(system.report(), "database")
        assert system.status == "ready"
    assert db["status"] == "disabled"
    assert db["reason"] == "No module named 'daybreak_no_such_driver'"


@pytest.mark.parametrize(("reason", "text"), [
    (42, "42"),
    (None, "disabled by configuration"),
    (Unreadable(), "Unreadable (its message could not be read: ValueError: no text today)"),
    (OSError("postgresql://app:hunter2secret@db/app unreachable"), "postgresql://app:***@db/app unreachable"),
])
async def test_disabled_accepts_any_object_and_redacts_its_text(reason: object, text: str) -> None:
    registry = Registry("disabled-any")

    @registry.component
    async def database() -> Database:
        raise Disabled(reason)

    async with registry.start() as system:
        assert component(system.report(), "database")["reason"] == text


# -- a step that swallows its timeout's cancellation ------------------------------------------


async def test_a_step_that_ignores_its_timeout_fails_with_the_hang() -> None:
    registry = Registry("stubborn")
    finished = asyncio.Event()

    @registry.component(timeout=0.05)
    async def database() -> Database:
        with contextlib.suppress(BaseException):  # a retry loop that catches everything
            await asyncio.Event().wait()  # at: stubborn
        finished.set()
        return Database()

    @registry.component
    async def api(db: Database) -> Api:
        return Api()

    with pytest.raises(StartupError) as caught:
        await registry.start().start()
    assert finished.is_set()
    db = component(caught.value.report, "database")
    assert db["status"] == "failed"
    error = db["error"]
    assert isinstance(error, dict)
    assert error["type"] == "TimeoutError"
    assert error["message"].startswith("did not start within 0.05 s (timeout=0.05); it ignored the "
                                       "cancellation")
    assert error["where"] == where("stubborn")
    hang = db["hang"]
    assert isinstance(hang, dict) and hang["where"] == where("stubborn")
    assert component(caught.value.report, "api")["status"] == "skipped"


async def test_a_late_value_with_stop_code_is_stopped() -> None:
    registry = Registry("stubborn-gen")
    log: list[str] = []

    @registry.component(timeout=0.05, optional=True)
    async def database() -> AsyncIterator[Database]:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        yield Database()
        log.append("stopped")

    async with registry.start() as system:
        assert component(system.report(), "database")["status"] == "failed"
        assert log == ["stopped"]
        assert Database not in system


async def test_a_stop_that_ignores_its_stop_timeout_is_a_failed_stop() -> None:
    registry = Registry("stubborn-stop")

    @registry.component(stop_timeout=0.05)
    async def database() -> AsyncIterator[Database]:
        yield Database()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()  # at: stubborn-stop

    async with registry.start() as system:
        pass
    stop = component(system.report(), "database")["stop"]
    assert isinstance(stop, dict)
    assert stop["status"] == "failed"
    assert stop["error"]["type"] == "TimeoutError"
    assert "ignored the cancellation" in stop["error"]["message"]
    assert stop["error"]["where"] == where("stubborn-stop")


# -- sys.exit() in a factory ---------------------------------------------------------------------


async def test_sys_exit_without_a_code_is_the_failure_of_its_component() -> None:
    registry = Registry("exits")

    @registry.component
    async def database() -> Database:
        sys.exit()  # at: exit

    with pytest.raises(StartupError) as caught:
        await registry.start().start()
    assert caught.value.component == "database"
    error = component(caught.value.report, "database")["error"]
    assert isinstance(error, dict)
    assert error["type"] == "SystemExit"
    assert error["message"].startswith("it called sys.exit() without an exit code")
    assert error["where"] == where("exit")


async def test_sys_exit_with_a_code_rolls_back_then_exits_with_it() -> None:
    registry = Registry("exits-code")
    log: list[str] = []

    @registry.component
    async def database() -> AsyncIterator[Database]:
        yield Database()
        log.append("database stopped")

    @registry.component(optional=True)
    def api(db: Database) -> Api:  # a sync factory: it runs in a thread
        sys.exit(3)

    system = registry.start()
    with pytest.raises(SystemExit) as caught:
        await system.start()
    assert caught.value.code == 3
    assert log == ["database stopped"]
    report = system.report()
    assert report.status == "failed"
    assert component(report, "api")["error"]["message"].startswith("it called sys.exit(3)")  # type: ignore[index]


# -- None from a factory that promises an instance ----------------------------------------------


async def test_a_critical_factory_returning_none_fails_with_a_clear_message() -> None:
    registry = Registry("none")
    seen: list[object] = []

    @registry.component
    async def database() -> Database:
        return None  # type: ignore[return-value]

    @registry.component
    async def api(db: Database) -> Api:
        seen.append(db)
        return Api()

    with pytest.raises(StartupError) as caught:
        await registry.start().start()
    assert seen == []
    error = component(caught.value.report, "database")["error"]
    assert isinstance(error, dict)
    assert error["type"] == "TypeError"
    assert "returned None, but it provides Database" in error["message"]
    assert "-> Database | None" in error["message"]
    assert error["where"] == f"{__file__}:{database.factory.__code__.co_firstlineno}"


async def test_none_is_fine_where_the_annotation_admits_it() -> None:
    registry = Registry("none-ok")

    @registry.component
    async def warm_up() -> None:
        return None

    @registry.component(provides=Database)
    async def database() -> Database | None:
        return None

    async with registry.start() as system:
        assert system.status == "ready"
