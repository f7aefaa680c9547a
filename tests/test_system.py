"""The engine: factory forms, order, concurrency, retries, failures, state, events, signals."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import AsyncContextManager, ContextManager

import pytest

import daybreak
from _markers import marker_line
from daybreak import Disabled, Registry, StartupError, System, UsageError
from daybreak.system import current_component

HERE = Path(__file__).resolve()
FIXTURES = HERE.parent / "fixtures"
SRC = HERE.parent.parent / "src"


def where(marker: str) -> str:
    """``file:line`` of the line of this file that ends with ``# at: <marker>``."""
    return marker_line(__file__, marker)


class Settings: ...
class Database: ...
class Cache: ...
class Api: ...
class Worker: ...
class Analytics: ...
class Mailer: ...


def statuses(system_or_report: System | daybreak.StartupReport) -> dict[str, str]:
    report = system_or_report.report() if isinstance(system_or_report, System) else system_or_report
    return {c["name"]: c["status"] for c in report.components}


# -- factory forms ---------------------------------------------------------------------------


class Probe:
    """Something a factory provides, which knows whether it is open."""

    def __init__(self, label: str, log: list[str]) -> None:
        self.label = label
        self.log = log
        self.open = False


class SyncResource:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def __enter__(self) -> Probe:
        self.log.append("enter sync cm")
        return Probe("cm", self.log)

    def __exit__(self, *exc: object) -> None:
        self.log.append("exit sync cm")


class AsyncResource:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def __aenter__(self) -> Probe:
        self.log.append("enter async cm")
        return Probe("acm", self.log)

    async def __aexit__(self, *exc: object) -> None:
        self.log.append("exit async cm")


class ClientLike:
    """An async context manager that is provided as it is (like ``httpx.AsyncClient``)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def __aenter__(self) -> ClientLike:
        self.log.append("entered client")  # must never happen
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.log.append("exited client")  # must never happen


class F1: ...
class F2: ...
class F3: ...
class F4: ...
class F5: ...
class F6: ...
class F7: ...
class F8: ...
class F9: ...


def every_form(log: list[str]) -> Registry:
    """A chain f1 <- f2 <- ... <- f9, one factory form each, so the order is forced."""
    registry = Registry("forms")

    @registry.component
    def f1() -> F1:
        log.append("start f1")
        return F1()

    @registry.component
    async def f2(x: F1) -> F2:
        log.append("start f2")
        return F2()

    @registry.component
    def f3(x: F2) -> Iterator[F3]:
        log.append("start f3")
        yield F3()
        log.append("stop f3")

    @registry.component
    async def f4(x: F3) -> AsyncIterator[F4]:
        log.append("start f4")
        yield F4()
        log.append("stop f4")

    @registry.component
    @contextlib.contextmanager
    def f5(x: F4) -> Iterator[F5]:
        log.append("start f5")
        yield F5()
        log.append("stop f5")

    @registry.component
    @contextlib.asynccontextmanager
    async def f6(x: F5) -> AsyncIterator[F6]:
        log.append("start f6")
        yield F6()
        log.append("stop f6")

    @registry.component(provides=F7)
    def f7(x: F6) -> ContextManager[Probe]:
        log.append("start f7")
        return SyncResource(log)

    @registry.component(provides=F8)
    async def f8(x: F7) -> AsyncContextManager[Probe]:
        log.append("start f8")
        return AsyncResource(log)

    @registry.component
    def f9(x: F8) -> ClientLike:
        log.append("start f9")
        return ClientLike(log)

    return registry


class TestFactoryForms:
    async def test_every_form_starts_and_stops_in_order(self) -> None:
        log: list[str] = []
        registry = every_form(log)
        async with registry.start() as system:
            assert log == ["start f1", "start f2", "start f3", "start f4", "start f5", "start f6",
                           "start f7", "enter sync cm", "start f8", "enter async cm", "start f9"]
            log.clear()
            assert isinstance(system[F1], F1)
            assert isinstance(system[F3], F3)
            assert isinstance(system[F4], F4)
            assert isinstance(system[F5], F5)
            assert isinstance(system[F6], F6)
            # what __enter__ / __aenter__ returned, not the manager itself
            assert isinstance(system[F7], Probe) and system[F7].label == "cm"
            assert isinstance(system[F8], Probe) and system[F8].label == "acm"
            # merely being an async context manager does not get it entered
            assert isinstance(system[ClientLike], ClientLike)
            assert system.status == "ready"
        assert log == ["exit async cm", "exit sync cm", "stop f6", "stop f5", "stop f4", "stop f3"]
        assert set(statuses(system).values()) == {"stopped"}

    async def test_the_factories_stay_plain_callables(self) -> None:
        log: list[str] = []
        registry = every_form(log)
        f1 = registry.components[0]
        assert isinstance(f1(), F1)
        assert log == ["start f1"]

    async def test_sync_factories_run_in_a_thread_named_after_the_component(self) -> None:
        seen: dict[str, str] = {}
        registry = Registry("threads")

        @registry.component
        def plain() -> Settings:
            seen["plain"] = threading.current_thread().name
            return Settings()

        @registry.component
        def gen() -> Iterator[Database]:
            seen["gen start"] = threading.current_thread().name
            yield Database()
            seen["gen stop"] = threading.current_thread().name

        @registry.component
        @contextlib.contextmanager
        def managed() -> Iterator[Cache]:
            seen["cm start"] = threading.current_thread().name
            yield Cache()
            seen["cm stop"] = threading.current_thread().name

        @registry.component(blocking=False)
        def inline() -> Api:
            seen["inline"] = threading.current_thread().name
            return Api()

        @registry.component(blocking=False)
        def inline_gen() -> Iterator[Worker]:
            seen["inline gen start"] = threading.current_thread().name
            yield Worker()
            seen["inline gen stop"] = threading.current_thread().name

        @registry.component
        async def coroutine() -> Mailer:
            seen["async"] = threading.current_thread().name
            return Mailer()

        loop_thread = threading.current_thread().name
        async with registry.start():
            pass
        assert seen == {
            "plain": "daybreak:plain",
            "gen start": "daybreak:gen", "gen stop": "daybreak:gen",
            "cm start": "daybreak:managed", "cm stop": "daybreak:managed",
            "inline": loop_thread,
            "inline gen start": loop_thread, "inline gen stop": loop_thread,
            "async": loop_thread,
        }
        assert not [t for t in threading.enumerate() if t.name.startswith("daybreak")]

    async def test_registry_value_is_provided_as_is(self) -> None:
        registry = Registry("values")
        settings = Settings()
        registry.value(settings)

        @registry.component
        def db(s: Settings) -> Database:
            assert s is settings
            return Database()

        async with registry.start() as system:
            assert system[Settings] is settings
            assert statuses(system) == {"settings": "started", "db": "started"}


# -- concurrency -----------------------------------------------------------------------------


def sleepers(count: int, seconds: float) -> tuple[Registry, dict[str, int], list[str]]:
    registry = Registry("sleepers")
    gauge = {"now": 0, "max": 0}
    started: list[str] = []
    for i in range(count):
        async def factory(i: int = i) -> object:
            started.append(f"s{i}")
            gauge["now"] += 1
            gauge["max"] = max(gauge["max"], gauge["now"])
            await asyncio.sleep(seconds)
            gauge["now"] -= 1
            return object()

        registry.add(factory, name=f"s{i}", provides=type(f"S{i}", (), {}))
    return registry, gauge, started


class TestConcurrency:
    async def test_independent_components_overlap(self) -> None:
        registry, gauge, _ = sleepers(6, 0.1)
        async with registry.start():
            pass
        assert gauge["max"] == 6  # all six were sleeping at the same time

    async def test_concurrency_bounds_how_many_start_at_once(self) -> None:
        registry, gauge, _ = sleepers(6, 0.05)
        async with registry.start(concurrency=2):
            pass
        assert gauge["max"] == 2

    async def test_sequential_starts_one_at_a_time_in_plan_order(self) -> None:
        registry, gauge, started = sleepers(5, 0.01)

        async def joiner(a: object, b: object) -> Worker:
            started.append("joiner")
            return Worker()

        joiner.__annotations__ = {"a": registry.components[-1].provides,
                                  "b": registry.components[0].provides, "return": Worker}
        registry.add(joiner)
        async with registry.start(sequential=True):
            pass
        assert gauge["max"] == 1
        assert started == [c.name for c in registry.plan().order]

    def test_bad_concurrency_is_refused(self) -> None:
        registry, _, _ = sleepers(1, 0)
        with pytest.raises(ValueError, match="concurrency=0"):
            registry.start(concurrency=0)

    async def test_dependents_wait_for_their_dependencies_only(self) -> None:
        registry = Registry("deps")
        log: list[str] = []

        @registry.component
        async def slow() -> Database:
            await asyncio.sleep(0.2)
            log.append("slow done")
            return Database()

        @registry.component
        async def fast() -> Cache:
            log.append("fast done")
            return Cache()

        @registry.component
        async def needs_fast(c: Cache) -> Api:
            log.append("needs_fast")
            return Api()

        @registry.component
        async def needs_slow(d: Database) -> Worker:
            log.append("needs_slow")
            return Worker()

        async with registry.start():
            pass
        assert log.index("needs_fast") < log.index("slow done") < log.index("needs_slow")


# -- retries ---------------------------------------------------------------------------------


class TestRetries:
    async def test_succeeds_on_the_third_attempt(self) -> None:
        registry = Registry("retry")
        calls: list[float] = []

        @registry.component(retries=2, backoff=0.02)
        async def flaky() -> Database:
            calls.append(time.perf_counter())
            if len(calls) < 3:
                raise ConnectionRefusedError("not yet")
            return Database()

        async with registry.start() as system:
            assert system.state.components["flaky"].attempts == 3
            assert system.report().component("flaky")["attempts"] == 3
            assert system.report().component("flaky")["status"] == "started"
        assert len(calls) == 3

    async def test_fails_after_retries_plus_one_attempts_with_backoff(self) -> None:
        registry = Registry("retry")
        calls: list[float] = []
        events: list[daybreak.Event] = []

        @registry.component(retries=3, backoff=0.04)
        async def broken() -> Database:
            calls.append(time.perf_counter())
            raise ConnectionRefusedError("refused")  # at: broken-retry

        with pytest.raises(StartupError) as caught:
            await registry.start(listeners=[events.append]).start()
        assert len(calls) == 4
        gaps = [b - a for a, b in itertools.pairwise(calls)]
        # 0.04, 0.08, 0.16 s, each with +-25% jitter: doubling, never shorter than 75%
        for k, gap in enumerate(gaps):
            assert gap >= 0.04 * 2**k * 0.75 - 0.005, gaps
        assert [e.attempt for e in events if e.kind == "component.retrying"] == [1, 2, 3]
        message = str(caught.value)
        assert "attempts: 4 (retries=3)" in message
        assert where("broken-retry") in message
        assert caught.value.report.component("broken")["attempts"] == 4


# -- failures --------------------------------------------------------------------------------


class TestCriticalFailure:
    async def test_start_error_names_component_cause_and_line_and_rolls_back(self) -> None:
        registry = Registry("app", phases=("base", "top"))
        log: list[str] = []
        cancelled = asyncio.Event()

        @registry.component(phase="base")
        async def settings() -> AsyncIterator[Settings]:
            log.append("start settings")
            yield Settings()
            log.append("stop settings")

        @registry.component(phase="top")
        async def database(s: Settings) -> AsyncIterator[Database]:
            log.append("start database")
            yield Database()
            log.append("stop database")

        @registry.component(phase="top")
        def cache(s: Settings) -> Iterator[Cache]:
            log.append("start cache")
            yield Cache()
            log.append("stop cache")

        @registry.component(phase="top")
        async def never_finishes(s: Settings) -> Worker:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return Worker()

        @registry.component(phase="top")
        async def api(d: Database, c: Cache) -> Api:
            raise ValueError("api exploded")  # at: api-raise

        system = registry.start()
        t0 = time.perf_counter()
        with pytest.raises(StartupError) as caught:
            async with system:
                pytest.fail("the start should have failed")
        assert time.perf_counter() - t0 < 5
        error = caught.value
        message = str(error)
        assert "'api'" in message
        assert "in phase 'top'" in message
        assert "ValueError: api exploded" in message
        assert f"where: {where('api-raise')}" in message
        assert error.component == "api"
        assert error.where == where("api-raise")
        report = error.report
        assert report.status == "failed"
        assert report.error is not None and report.error.where == where("api-raise")
        assert report.component("api")["error"] == {
            "type": "ValueError", "message": "api exploded", "where": where("api-raise")}
        # started ones stopped, dependents first
        assert log.index("stop database") < log.index("stop settings")
        assert log.index("stop cache") < log.index("stop settings")
        assert log[-1] == "stop settings"
        # the one still starting was cancelled, not left behind
        assert cancelled.is_set()
        s = statuses(report)
        assert s["api"] == "failed"
        assert s["settings"] == s["database"] == s["cache"] == "stopped"
        assert s["never_finishes"] == "skipped"
        assert report.component("never_finishes")["reason"] == "cancelled while starting: 'api' failed"
        assert system.state.status == "failed"
        assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    async def test_a_failed_start_cannot_be_stopped_or_restarted(self) -> None:
        registry = Registry("app")

        @registry.component
        async def boom() -> Database:
            raise RuntimeError("no")

        system = registry.start()
        with pytest.raises(StartupError):
            await system.start()
        await system.stop()  # a no-op, not an error
        with pytest.raises(UsageError, match="already started"):
            await system.start()

    async def test_whole_start_timeout_lists_what_is_still_starting(self) -> None:
        registry = Registry("app")

        @registry.component
        async def quick() -> AsyncIterator[Settings]:
            yield Settings()

        @registry.component
        async def stuck(s: Settings) -> Database:
            await asyncio.sleep(30)  # at: whole-timeout
            return Database()

        @registry.component
        async def also_stuck(s: Settings) -> Cache:
            await asyncio.Event().wait()  # at: whole-timeout-2
            return Cache()

        t0 = time.perf_counter()
        with pytest.raises(StartupError) as caught:
            async with registry.start(timeout=0.3):
                pass
        assert time.perf_counter() - t0 < 5
        message = str(caught.value)
        assert "timeout=0.3" in message
        assert f"stuck (at {where('whole-timeout')})" in message
        assert f"also_stuck (at {where('whole-timeout-2')})" in message
        report = caught.value.report
        assert report.component("stuck")["hang"]["where"] == where("whole-timeout")
        assert report.component("quick")["status"] == "stopped"
        assert report.component("stuck")["status"] == "failed"
        assert report.component("stuck")["error"]["type"] == "TimeoutError"
        assert caught.value.where == where("whole-timeout")

    @pytest.mark.parametrize("shape", ["nested await", "task", "gather", "wait_for", "sync in thread"])
    async def test_hang_where_is_the_innermost_line_through_tasks(self, shape: str) -> None:
        registry = Registry("app")
        release = threading.Event()

        async def innermost() -> None:
            await asyncio.sleep(30)  # at: innermost-hang

        def blocking_helper() -> None:
            release.wait(10)  # at: innermost-thread-hang

        async def middle() -> None:
            if shape == "nested await":
                await innermost()
            elif shape == "task":
                await asyncio.create_task(innermost())
            elif shape == "gather":
                await asyncio.gather(asyncio.sleep(0), innermost())
            elif shape == "wait_for":
                await asyncio.wait_for(innermost(), 20)

        if shape == "sync in thread":
            @registry.component(timeout=0.2)
            def connect() -> Database:
                blocking_helper()
                return Database()
        else:
            @registry.component(timeout=0.2)
            async def connect() -> Database:
                await middle()
                return Database()

        try:
            with pytest.raises(StartupError) as caught:
                await registry.start().start()
        finally:
            release.set()
        expected = where("innermost-thread-hang" if shape == "sync in thread" else "innermost-hang")
        assert caught.value.where == expected
        hang = caught.value.report.component("connect")["hang"]
        assert hang["where"] == expected
        if shape != "sync in thread":
            frames = [f["where"] for f in hang["tasks"][0]["frames"]]
            assert expected in frames  # the chain goes all the way down, into asyncio.sleep
            assert frames[-1].rsplit(":", 1)[0].endswith(os.path.join("asyncio", "tasks.py"))
        await asyncio.sleep(0)
        assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    async def test_component_timeout_reports_the_hanging_line(self) -> None:
        registry = Registry("app")

        @registry.component(timeout=0.2)
        async def hangs() -> Database:
            await asyncio.sleep(30)  # at: component-timeout
            return Database()

        with pytest.raises(StartupError) as caught:
            await registry.start().start()
        assert caught.value.where == where("component-timeout")
        assert "did not start within 0.2 s" in str(caught.value)
        assert "what to do" in str(caught.value)
        assert caught.value.report.component("hangs")["hang"]["where"] == where("component-timeout")


class TestOptional:
    async def test_optional_failure_degrades_and_propagates_none_or_skips(self) -> None:
        registry = Registry("app")
        received: dict[str, object] = {}

        @registry.component(optional=True)
        async def analytics() -> Analytics:
            raise ConnectionError("analytics is down")  # at: analytics-down

        @registry.component
        async def api(a: Analytics | None) -> Api:
            received["api"] = a
            return Api()

        @registry.component(optional=True)
        async def reporter(a: Analytics) -> Mailer:
            received["reporter"] = a
            return Mailer()

        @registry.component(optional=True)
        async def digest(m: Mailer) -> Worker:
            received["digest"] = m
            return Worker()

        async with registry.start() as system:
            assert system.status == "degraded"
            assert received == {"api": None}
            s = statuses(system)
            assert s == {"analytics": "failed", "api": "started", "reporter": "skipped",
                         "digest": "skipped"}
            report = system.report()
            assert report.component("analytics")["error"]["where"] == where("analytics-down")
            reason = report.component("reporter")["reason"]
            assert "'analytics'" in reason and "failed" in reason and "analytics is down" in reason
            reason = report.component("digest")["reason"]
            assert "'reporter'" in reason and "skipped" in reason and "'analytics'" in reason
            with pytest.raises(LookupError, match=r"Mailer is not available: component 'reporter' is skipped"):
                system[Mailer]
            assert system.get(Mailer) is None
            assert system.get(Mailer, "fallback") == "fallback"
            assert Mailer not in system
            assert Api in system
            assert report.to_dict()["status"] == "degraded"

    async def test_disabled_is_not_degraded_and_dependents_say_why(self) -> None:
        registry = Registry("app")
        received: dict[str, object] = {}

        @registry.component(optional=True)
        async def analytics() -> Analytics:
            raise Disabled("no URL")

        @registry.component
        async def api(a: Analytics | None) -> Api:
            received["api"] = a
            return Api()

        @registry.component(optional=True)
        async def reporter(a: Analytics) -> Mailer:
            return Mailer()

        @registry.component(optional=True)
        async def digest(m: Mailer) -> Worker:
            return Worker()

        async with registry.start() as system:
            assert system.status == "ready"
            assert received == {"api": None}
            assert statuses(system) == {"analytics": "disabled", "api": "started",
                                        "reporter": "skipped", "digest": "skipped"}
            report = system.report()
            assert report.component("analytics")["reason"] == "no URL"
            assert "disabled" in report.component("reporter")["reason"]
            assert "no URL" in report.component("reporter")["reason"]
            assert "no URL" in report.component("digest")["reason"]
            with pytest.raises(LookupError, match="disabled"):
                system[Analytics]

    async def test_a_critical_component_disabled_by_configuration_keeps_the_system_ready(self) -> None:
        registry = Registry("app")

        @registry.component
        def feature() -> Analytics:
            raise Disabled("FEATURE_X is off")

        @registry.component
        def uses_it(a: Analytics) -> Api:
            return Api()

        async with registry.start() as system:
            assert system.status == "ready"
            assert statuses(system) == {"feature": "disabled", "uses_it": "skipped"}


class TestChecksAndValidators:
    async def test_checks_run_after_the_component_is_up(self) -> None:
        registry = Registry("app")
        log: list[str] = []

        @registry.component
        async def database() -> AsyncIterator[Database]:
            log.append("database up")
            yield Database()

        @database.check
        async def ping(db: Database) -> None:
            assert isinstance(db, Database)
            log.append("ping")

        @registry.component
        async def api(db: Database) -> Api:
            log.append("api")
            return Api()

        async with registry.start() as system:
            assert log == ["database up", "ping", "api"]
            entry = system.report().validation[0]
            assert entry["name"] == "ping" and entry["kind"] == "check"
            assert entry["component"] == "database" and entry["status"] == "passed"
            assert entry["error"] is None and entry["duration_s"] >= 0
            again = await system.check()
            assert [r["status"] for r in again] == ["passed"]
            assert log.count("ping") == 2

    async def test_failing_check_fails_a_critical_component(self) -> None:
        registry = Registry("app")
        log: list[str] = []

        @registry.component
        async def database() -> AsyncIterator[Database]:
            yield Database()
            log.append("database stopped")

        @database.check
        def ping(db: Database) -> None:
            raise AssertionError("ping failed")  # at: ping-fails

        with pytest.raises(StartupError) as caught:
            await registry.start().start()
        assert "check 'ping' failed" in str(caught.value)
        assert caught.value.where == where("ping-fails")
        assert log == ["database stopped"]
        assert caught.value.report.validation[0]["status"] == "failed"

    async def test_failing_check_degrades_an_optional_component(self) -> None:
        registry = Registry("app")
        log: list[str] = []

        @registry.component(optional=True)
        async def cache() -> AsyncIterator[Cache]:
            yield Cache()
            log.append("cache stopped")

        @cache.check(timeout=0.2)
        async def warm(c: Cache) -> None:
            await asyncio.sleep(30)  # at: warm-hangs

        @registry.component
        async def api(c: Cache | None) -> Api:
            assert c is None
            return Api()

        async with registry.start() as system:
            assert system.status == "degraded"
            assert log == ["cache stopped"]  # its stop ran when the check failed
            assert statuses(system)["cache"] == "failed"
            entry = system.report().validation[0]
            assert entry["status"] == "failed"
            assert entry["error"]["type"] == "TimeoutError"
            assert entry["error"]["where"] == where("warm-hangs")
        assert log == ["cache stopped"]  # and only once

    async def test_validators_run_after_their_dependencies(self) -> None:
        registry = Registry("app", phases=("base", "final"))
        log: list[str] = []

        @registry.component(phase="base")
        async def database() -> Database:
            await asyncio.sleep(0.05)
            log.append("database")
            return Database()

        @registry.component(phase="base")
        async def cache() -> Cache:
            log.append("cache")
            return Cache()

        @registry.validator(phase="base")
        async def round_trip(db: Database, c: Cache) -> None:
            log.append("round_trip")

        @registry.component(phase="final")
        async def api() -> Api:
            log.append("api")
            return Api()

        async with registry.start() as system:
            assert log == ["cache", "database", "round_trip", "api"]
            entry = system.report().component("round_trip")
            assert entry["kind"] == "validator" and entry["status"] == "passed"
            assert "round_trip" not in statuses(system)  # validators are not components

    async def test_critical_validator_failure_fails_the_start(self) -> None:
        registry = Registry("app")

        @registry.component
        async def database() -> Database:
            return Database()

        @registry.validator
        def schema_is_current(db: Database) -> None:
            raise RuntimeError("schema is 3 migrations behind")  # at: validator-fails

        with pytest.raises(StartupError) as caught:
            await registry.start().start()
        assert "critical validator 'schema_is_current'" in str(caught.value)
        assert caught.value.where == where("validator-fails")
        entry = caught.value.report.component("schema_is_current")
        assert entry["status"] == "failed"
        assert entry["error"]["where"] == where("validator-fails")

    async def test_optional_validator_failure_degrades(self) -> None:
        registry = Registry("app")

        @registry.component
        async def database() -> Database:
            return Database()

        @registry.validator(optional=True)
        def nice_to_have(db: Database) -> None:
            raise RuntimeError("meh")

        async with registry.start() as system:
            assert system.status == "degraded"
            assert system.report().component("nice_to_have")["status"] == "failed"


class TestEdgeFailures:
    async def test_a_sync_check_runs_in_the_component_thread_and_its_timeout_fires(self) -> None:
        registry = Registry("app")
        release = threading.Event()
        seen: list[str] = []

        @registry.component
        def database() -> Database:
            return Database()

        @database.check(timeout=0.2)
        def ping(db: Database) -> None:
            seen.append(threading.current_thread().name)
            release.wait(10)  # at: sync-check-hangs

        t0 = time.perf_counter()
        try:
            with pytest.raises(StartupError) as caught:
                await registry.start().start()
        finally:
            release.set()
        assert time.perf_counter() - t0 < 5
        assert seen == ["daybreak:database"]
        assert caught.value.where == where("sync-check-hangs")
        message = str(caught.value)
        assert "check 'ping' failed: TimeoutError" not in message  # the cause, said once
        assert "check 'ping' failed: did not finish within 0.2 s" in message
        assert "the check's timeout=" in message
        entry = caught.value.report.validation[0]
        assert entry["error"]["where"] == where("sync-check-hangs")
        assert not caught.value.report.loop_blocks  # it did not hold the loop

    async def test_a_base_exception_from_a_factory_fails_the_start(self) -> None:
        class Fatal(BaseException):
            pass

        registry = Registry("app")

        @registry.component
        async def database() -> Database:
            raise Fatal("not an Exception")  # at: base-exception

        @registry.component
        async def api(d: Database) -> Api:
            return Api()

        with pytest.raises(StartupError) as caught:
            await registry.start().start()
        assert caught.value.component == "database"
        assert caught.value.where == where("base-exception")
        assert statuses(caught.value.report) == {"database": "failed", "api": "skipped"}

    async def test_a_stop_that_raises_is_reported_and_the_others_still_stop(self) -> None:
        registry = Registry("app")
        log: list[str] = []

        @registry.component
        async def settings() -> AsyncIterator[Settings]:
            yield Settings()
            log.append("settings stopped")

        @registry.component
        def database(s: Settings) -> Iterator[Database]:
            yield Database()
            raise OSError("close failed")  # at: stop-raises

        @registry.component
        async def api(d: Database) -> AsyncIterator[Api]:
            yield Api()
            log.append("api stopped")

        async with registry.start() as system:
            pass
        assert log == ["api stopped", "settings stopped"]
        stop = system.report().component("database")["stop"]
        assert stop["status"] == "failed"
        assert stop["error"] == {"type": "OSError", "message": "close failed",
                                 "where": where("stop-raises")}
        assert system.status == "stopped"

    async def test_a_generator_that_yields_twice_is_a_stop_error(self) -> None:
        registry = Registry("app")

        @registry.component
        async def twice() -> AsyncIterator[Database]:
            yield Database()
            yield Database()

        async with registry.start() as system:
            pass
        stop = system.report().component("twice")["stop"]
        assert "yielded more than once" in stop["error"]["message"]

    async def test_a_generator_that_never_yields_fails(self) -> None:
        registry = Registry("app")

        @registry.component
        def empty() -> Iterator[Database]:
            return
            yield Database()

        t0 = time.perf_counter()
        with pytest.raises(StartupError, match="finished without yielding"):
            await registry.start().start()
        assert time.perf_counter() - t0 < 5

    async def test_a_sync_factory_raising_stop_iteration_fails_at_once(self) -> None:
        registry = Registry("app")

        @registry.component
        def first_of_nothing() -> Database:
            return next(iter([]))  # at: stop-iteration

        t0 = time.perf_counter()
        with pytest.raises(StartupError, match="raised StopIteration") as caught:
            await registry.start().start()
        assert time.perf_counter() - t0 < 5
        assert caught.value.where == where("stop-iteration")

    async def test_whole_timeout_during_a_check_fails_the_component_and_stops_it(self) -> None:
        registry = Registry("app")
        log: list[str] = []

        @registry.component
        async def database() -> AsyncIterator[Database]:
            yield Database()
            log.append("database stopped")

        @database.check(timeout=None)
        async def ping(db: Database) -> None:
            await asyncio.sleep(30)  # at: check-never-ends

        with pytest.raises(StartupError) as caught:
            await registry.start(timeout=0.2).start()
        assert log == ["database stopped"]
        entry = caught.value.report.component("database")
        assert entry["status"] == "failed"
        assert entry["error"]["where"] == where("check-never-ends")
        assert entry["stop"]["status"] == "stopped"

    async def test_leftover_tasks_and_files_are_blamed_on_their_component(self, tmp_path: Path) -> None:
        registry = Registry("app")
        held: dict[str, object] = {}

        @registry.component
        async def poller() -> Worker:
            async def poll() -> None:
                await asyncio.sleep(30)  # at: leftover-task

            held["task"] = asyncio.get_running_loop().create_task(poll(), name="poll-forever")
            return Worker()

        @registry.component
        def journal() -> Mailer:
            held["file"] = open(tmp_path / "journal.log", "w")  # noqa: SIM115
            return Mailer()

        try:
            async with registry.start() as system:
                pass
            left = system.report().leftovers
            tasks = [t for t in left["tasks"] if t["name"] == "poll-forever"]
            assert len(tasks) == 1
            assert tasks[0]["component"] == "poller"
            assert tasks[0]["where"] == where("leftover-task")
            files = [f for f in left["fds"] if "journal.log" in f["detail"]]
            assert len(files) == 1
        finally:
            task = held["task"]
            assert isinstance(task, asyncio.Task)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            held["file"].close()  # type: ignore[attr-defined]


class TestLeftoverThreads:
    async def test_a_thread_with_no_project_code_is_blamed_on_the_step_that_made_it(self) -> None:
        registry = Registry("app")
        release = threading.Event()

        @registry.component
        def worker() -> Worker:
            # the target is the stdlib's: nothing in its stack says whose it is
            threading.Thread(target=release.wait, name="forgotten", daemon=True).start()
            return Worker()

        try:
            async with registry.start() as system:
                pass
            left = system.report().leftovers["threads"]
            assert [(t["name"], t["component"]) for t in left] == [("forgotten", "worker")]
        finally:
            release.set()

    async def test_a_thread_born_while_two_steps_ran_is_not_blamed_on_either(self) -> None:
        registry = Registry("app")
        release = threading.Event()
        born = asyncio.Event()
        watching = asyncio.Event()

        @registry.component
        async def spawner() -> Worker:
            await watching.wait()  # the bystander is starting too
            threading.Thread(target=release.wait, name="whose", daemon=True).start()
            born.set()
            return Worker()

        @registry.component
        async def bystander() -> Api:
            watching.set()
            await born.wait()
            return Api()

        try:
            async with registry.start() as system:
                pass
            left = system.report().leftovers["threads"]
            assert [(t["name"], t["component"]) for t in left] == [("whose", None)]
        finally:
            release.set()


# -- overrides and selection -----------------------------------------------------------------


def app_registry(log: list[str]) -> Registry:
    registry = Registry("app")

    @registry.component
    def settings() -> Settings:
        log.append("settings")
        return Settings()

    @registry.component
    async def database(s: Settings) -> AsyncIterator[Database]:
        log.append("database")
        yield Database()
        log.append("database stopped")

    @registry.component
    async def cache(s: Settings) -> Cache:
        log.append("cache")
        return Cache()

    @registry.component
    async def api(d: Database, c: Cache) -> Api:
        log.append("api")
        return Api()

    return registry


class TestOverridesAndOnly:
    async def test_instance_override_replaces_the_component(self) -> None:
        log: list[str] = []
        fake = Database()
        async with app_registry(log).start(overrides={Database: fake}) as system:
            assert system[Database] is fake
            assert "database" not in log
            assert statuses(system)["database"] == "started"
        assert "database stopped" not in log

    async def test_factory_override_replaces_the_component(self) -> None:
        log: list[str] = []
        fake = Cache()

        async def fake_cache() -> AsyncIterator[Cache]:
            log.append("fake cache")
            yield fake
            log.append("fake cache stopped")

        async with app_registry(log).start(overrides={Cache: fake_cache}) as system:
            assert system[Cache] is fake
            assert "cache" not in log and "fake cache" in log
        assert log[-1] in ("fake cache stopped", "database stopped")
        assert "fake cache stopped" in log

    async def test_override_drops_what_only_the_replaced_component_needed(self) -> None:
        registry = Registry("app")
        log: list[str] = []

        @registry.component
        def settings() -> Settings:
            log.append("settings")
            return Settings()

        @registry.component
        def database(s: Settings) -> Database:
            log.append("database")
            return Database()

        async with registry.start(overrides={Database: Database()}) as system:
            assert log == []
            assert Settings not in system

    async def test_only_starts_the_needed_subgraph(self) -> None:
        log: list[str] = []
        async with app_registry(log).start(only=[Database]) as system:
            assert log == ["settings", "database"]
            with pytest.raises(KeyError, match="no component of 'app' provides Api"):
                system[Api]


class TestAccess:
    async def test_getitem_get_and_contains(self) -> None:
        log: list[str] = []
        async with app_registry(log).start() as system:
            assert isinstance(system[Database], Database)
            assert system.get(Database) is system[Database]
            assert system.get(Mailer) is None
            assert system.get(Mailer, 7) == 7
            assert Database in system and Mailer not in system
            with pytest.raises(KeyError) as caught:
                system[Mailer]
            text = str(caught.value)
            assert "provides Mailer" in text
            assert "Database" in text and "Settings" in text  # what is provided instead
        with pytest.raises(LookupError, match="'database' is stopped"):
            system[Database]

    async def test_before_start_nothing_is_available(self) -> None:
        system = app_registry([]).start()
        with pytest.raises(LookupError, match="'database' is pending"):
            system[Database]
        await system.stop()  # stopping a never-started system is harmless
        assert system.status == "stopped"


# -- lifecycle -------------------------------------------------------------------------------


class TestLifecycle:
    async def test_second_stop_is_a_no_op(self) -> None:
        log: list[str] = []
        system = app_registry(log).start()
        await system.start()
        await system.stop()
        await system.stop()
        assert log.count("database stopped") == 1
        assert system.status == "stopped"

    async def test_concurrent_stops_stop_once(self) -> None:
        log: list[str] = []
        system = app_registry(log).start()
        await system.start()
        await asyncio.gather(system.stop(), system.stop())
        assert log.count("database stopped") == 1

    async def test_start_twice_is_a_usage_error(self) -> None:
        system = app_registry([]).start()
        async with system:
            with pytest.raises(UsageError, match="already started"):
                await system.start()

    def test_sync_with_is_a_usage_error_that_shows_the_fix(self) -> None:
        registry = app_registry([])
        with pytest.raises(UsageError, match="use 'async with registry.start"), registry.start():
            pass

    async def test_live_state_while_starting_and_stopping(self) -> None:
        registry = Registry("live", phases=("one", "two"))
        holder: dict[str, System] = {}
        seen: dict[str, object] = {}
        release = asyncio.Event()

        @registry.component(phase="one")
        async def base() -> Settings:
            return Settings()

        @registry.component(phase="two")
        async def slow(s: Settings) -> AsyncIterator[Database]:
            await release.wait()
            yield Database()
            state = holder["system"].state
            seen["stopping"] = (state.status, state.components["slow"].status,
                                state.components["watcher"].status)

        @registry.component(phase="two")
        async def watcher(s: Settings) -> Cache:
            state = holder["system"].state
            seen["starting"] = (state.status, state.phase, state.components["base"].status,
                                state.components["slow"].status, state.components["watcher"].status,
                                state.startup_complete)
            release.set()
            return Cache()

        system = holder["system"] = registry.start()
        assert system.state.status == "pending"
        assert {cs.status for cs in system.state.components.values()} == {"pending"}
        async with system:
            assert seen["starting"] == ("starting", "two", "started", "starting", "starting", False)
            assert system.state.status == "ready"
            assert system.state.startup_complete
            assert system.state.components["slow"].status == "started"
            assert system.state.components["slow"].attempts == 1
            assert system.state.components["slow"].duration_s is not None
        # watcher has no stop code, slow is stopping: watcher is already stopped (nothing needs slow)
        assert seen["stopping"][:2] == ("stopping", "stopping")
        assert system.state.status == "stopped"
        assert {cs.status for cs in system.state.components.values()} == {"stopped"}

    async def test_phases_in_the_report(self) -> None:
        registry = Registry("phased", phases=("init", "services", "finalize"))

        @registry.component(phase="init")
        async def settings() -> Settings:
            await asyncio.sleep(0.05)
            return Settings()

        @registry.component(phase="services")
        async def database(s: Settings) -> Database:
            await asyncio.sleep(0.05)
            return Database()

        @registry.component(phase="services", optional=True)
        async def analytics() -> Analytics:
            raise ConnectionError("down")

        async with registry.start() as system:
            phases = system.report().to_dict()["phases"]
        assert [p["name"] for p in phases] == ["init", "services", "finalize"]
        # an empty phase has nothing to wait for: done, with no timings
        assert [p["status"] for p in phases] == ["done", "degraded", "done"]
        init, services, empty = phases
        assert empty["start_s"] is None and empty["duration_s"] is None
        assert init["start_s"] >= 0 and init["duration_s"] >= 0.04
        assert services["start_s"] >= init["start_s"] + init["duration_s"] - 0.001
        assert services["duration_s"] >= 0.04

    async def test_listeners_receive_events(self) -> None:
        registry = Registry("events", phases=("one", "two"))
        events: list[daybreak.Event] = []

        @registry.component(phase="one")
        async def settings() -> AsyncIterator[Settings]:
            yield Settings()

        @registry.component(phase="two", optional=True)
        async def analytics() -> Analytics:
            raise Disabled("off")

        def broken_listener(event: daybreak.Event) -> None:
            raise RuntimeError("a listener that raises must not break the start")

        logger = __import__("logging").getLogger("daybreak")
        logger.disabled = True
        try:
            async with registry.start(listeners=[events.append, broken_listener]):
                pass
        finally:
            logger.disabled = False
        kinds = [(e.kind, e.component) for e in events]
        assert kinds[0] == ("system.starting", None)
        assert ("phase.started", None) in kinds
        assert [e.phase for e in events if e.kind == "phase.started"] == ["one", "two"]
        for expected in [("component.starting", "settings"), ("component.started", "settings"),
                         ("component.disabled", "analytics"), ("system.ready", None),
                         ("system.stopping", None), ("component.stopping", "settings"),
                         ("component.stopped", "settings")]:
            assert expected in kinds
        assert kinds[-1] == ("system.stopped", None)
        # one stopped event per component that was up, with stop code or not
        assert kinds.count(("component.stopped", "settings")) == 1
        assert kinds.index(("component.started", "settings")) < kinds.index(("system.ready", None))
        started = next(e for e in events if e.kind == "component.started")
        assert started.system == "events" and started.phase == "one" and started.duration_s is not None

    async def test_each_phase_starts_once_and_in_order(self) -> None:
        registry = Registry("phases", phases=("one", "two", "three"))
        events: list[daybreak.Event] = []
        phases_seen: list[str | None] = []
        holder: dict[str, System] = {}
        # Events, not sleeps: the optional steps of phase one finish while phase three runs.
        third_running = asyncio.Event()
        after_late_done = asyncio.Event()

        @registry.component(phase="one")
        async def quick() -> Settings:
            return Settings()

        @registry.component(phase="one", optional=True)
        async def late_optional() -> Analytics:
            await third_running.wait()  # phase two does not wait for an optional step
            phases_seen.append(holder["system"].state.phase)
            return Analytics()

        @registry.component(phase="one", optional=True)
        async def after_late(a: Analytics) -> Mailer:
            phases_seen.append(holder["system"].state.phase)
            after_late_done.set()
            return Mailer()

        @registry.component(phase="two")
        async def second(s: Settings) -> Database:
            return Database()

        @registry.component(phase="three")
        async def third(d: Database) -> Api:
            third_running.set()
            await after_late_done.wait()
            return Api()

        holder["system"] = registry.start(listeners=[events.append])
        async with holder["system"]:
            pass
        assert [e.phase for e in events if e.kind == "phase.started"] == ["one", "two", "three"]
        assert phases_seen == ["three", "three"]  # the live phase never goes back

    async def test_cancelling_start_rolls_back_and_reraises(self) -> None:
        registry = Registry("app")
        log: list[str] = []
        hanging = asyncio.Event()

        @registry.component
        async def database() -> AsyncIterator[Database]:
            yield Database()
            log.append("database stopped")

        @registry.component
        def cache() -> Iterator[Cache]:
            yield Cache()
            log.append("cache stopped")

        @registry.component
        async def slow(d: Database, c: Cache) -> Api:
            hanging.set()
            await asyncio.sleep(30)
            return Api()

        system = registry.start()
        task = asyncio.create_task(system.start())
        await hanging.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sorted(log) == ["cache stopped", "database stopped"]
        assert system.status == "failed"
        assert statuses(system)["database"] == "stopped"
        assert statuses(system)["slow"] == "skipped"
        assert system.report().component("slow")["reason"] == (
            "cancelled while starting: the start was cancelled")
        assert system.report().error is not None
        assert system.report().error.type == "CancelledError"

    async def test_a_cancelled_stop_still_finishes_before_it_says_stopped(self) -> None:
        registry = Registry("app")
        log: list[str] = []

        @registry.component
        async def database() -> AsyncIterator[Database]:
            yield Database()
            log.append("database stopped")

        stopping = asyncio.Event()
        release = asyncio.Event()

        @registry.component
        async def api(d: Database) -> AsyncIterator[Api]:
            yield Api()
            stopping.set()
            await release.wait()
            log.append("api stopped")

        system = registry.start()
        await system.start()
        first = asyncio.create_task(system.stop())
        await stopping.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert system.status == "stopping"  # not "stopped": api is still stopping
        assert log == []
        release.set()
        await system.stop()  # waits for the stop under way
        assert log == ["api stopped", "database stopped"]
        assert system.status == "stopped"
        assert system.report().leftovers["tasks"] == []  # the engine's own walk is not one

    async def test_stop_during_start_is_a_usage_error(self) -> None:
        registry = Registry("app")
        entered = asyncio.Event()

        @registry.component
        async def slow() -> Database:
            entered.set()
            await asyncio.sleep(30)
            return Database()

        system = registry.start()
        task = asyncio.create_task(system.start())
        await entered.wait()
        with pytest.raises(UsageError, match="cancel the start instead"):
            await system.stop()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert system.status == "failed"

    async def test_an_error_in_the_body_stops_the_system_and_propagates(self) -> None:
        log: list[str] = []
        with pytest.raises(ZeroDivisionError):
            async with app_registry(log).start() as system:
                1 / 0  # noqa: B018
        assert "database stopped" in log
        assert system.status == "stopped"

    async def test_cancelling_the_rollback_too_still_ends_the_start(self) -> None:
        registry = Registry("app")
        stopping = asyncio.Event()
        entered = asyncio.Event()

        @registry.component
        async def database() -> AsyncIterator[Database]:
            yield Database()
            stopping.set()
            await asyncio.sleep(0.2)

        @registry.component
        async def slow(d: Database) -> Api:
            entered.set()
            await asyncio.sleep(30)
            return Api()

        system = registry.start()
        task = asyncio.create_task(system.start())
        await entered.wait()
        task.cancel()  # first: roll back
        await stopping.wait()
        task.cancel()  # second: while rolling back
        with pytest.raises(asyncio.CancelledError):
            await task
        assert system.status == "failed"
        with pytest.raises(UsageError):
            await system.start()
        # The shielded rollback finishes on its own: wait until its tasks are gone (a fixed
        # sleep could leave them running into the next test of this worker).
        deadline = time.monotonic() + 10
        while [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            assert time.monotonic() < deadline, asyncio.all_tasks()
            await asyncio.sleep(0.01)

    async def test_start_and_stop_leave_nothing_running(self) -> None:
        log: list[str] = []
        before = set(threading.enumerate())
        async with app_registry(log).start() as system:
            pass
        assert set(threading.enumerate()) <= before
        assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert system.report().leftovers == {"threads": [], "tasks": [], "fds": []}

    async def test_report_json_schema(self) -> None:
        log: list[str] = []
        async with app_registry(log).start() as system:
            data = system.report().to_dict()
        assert set(data) >= {"name", "status", "duration_s", "critical_path_s", "critical_path",
                             "phases", "components", "validation", "loop_blocks", "leftovers"}
        component = data["components"][0]
        assert set(component) >= {"name", "provides", "phase", "critical", "status", "depends_on",
                                  "start_s", "duration_s", "attempts", "error", "hang"}
        assert data["critical_path"][0] == "settings" and data["critical_path"][-1] == "api"
        api = next(c for c in data["components"] if c["name"] == "api")
        assert api["depends_on"] == ["database", "cache"]
        assert api["provides"] == "Api"
        import json

        json.dumps(data)


# -- signals through the command line --------------------------------------------------------


def _cli(tmp_path: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), DAYBREAK_TEST_MARKER=str(tmp_path / "marker"),
               NO_COLOR="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "daybreak.cli", "start", str(FIXTURES / "slow_target.py") + ":registry"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        start_new_session=True,
    )


def _wait_for(path: Path, text: str, proc: subprocess.Popen[str], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited early with {proc.returncode}: {proc.communicate()}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"{text!r} never appeared in {path}: {proc.communicate()}")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_start_rolls_back(tmp_path: Path, signum: int, code: int) -> None:
    proc = _cli(tmp_path)
    marker = tmp_path / "marker"
    try:
        _wait_for(marker, "slow starting", proc)
        t0 = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert time.monotonic() - t0 < 5
    assert proc.returncode == code, (out, err)
    lines = marker.read_text().splitlines()
    assert lines == ["first started", "slow starting", "slow cancelled", "first stopped"]
    assert "interrupted by " + signal.Signals(signum).name in err
    assert "rolled back" in err


# -- factories the engine steps by hand ---------------------------------------------------------
# A coroutine factory is first stepped by the engine itself (most return at once);
# one that waits is finished by daybreak._resume.resume, which must be `await`.


async def test_a_factory_that_waits_several_times_gets_its_value_and_its_context() -> None:
    registry = Registry("waits")
    seen: list[object] = []

    @registry.component
    async def settings() -> Settings:
        await asyncio.sleep(0)
        seen.append(current_component.get())
        await asyncio.sleep(0.01)
        seen.append(asyncio.current_task())
        return Settings()

    @registry.component
    async def database(s: Settings) -> Database:
        return Database()

    async with registry.start() as system:
        assert isinstance(system[Settings], Settings)
        assert isinstance(system[Database], Database)
    assert seen[0] == "settings"
    assert isinstance(seen[1], asyncio.Task) and seen[1] is not asyncio.current_task()


async def test_a_timeout_reaches_the_factory_at_its_first_wait_and_its_cleanup_runs() -> None:
    registry = Registry("cleanup")
    log: list[str] = []

    @registry.component(timeout=0.1, optional=True)
    async def database() -> Database:
        try:
            await asyncio.Event().wait()  # at: first-wait
        except asyncio.CancelledError:
            log.append("cancelled")
            await asyncio.sleep(0.01)  # cleanup that waits, after the cancellation
            log.append("cleaned up")
            raise
        return Database()

    async with registry.start() as system:
        c = system.report().component("database")
    assert log == ["cancelled", "cleaned up"]
    assert c["status"] == "failed"
    assert c["error"]["type"] == "TimeoutError"
    assert c["hang"]["where"] == where("first-wait")
    assert c["hang"]["tasks"][0]["name"] == "daybreak:database"
    frames = c["hang"]["tasks"][0]["frames"]
    assert [f["function"] for f in frames][-2:] == ["database", "wait"]


async def test_a_factory_that_swallows_its_cancellation_fails_and_the_next_steps_do_not_inherit_it() -> None:
    registry = Registry("swallow")

    @registry.component(timeout=0.05, optional=True)
    async def database() -> Database:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        await asyncio.sleep(0)  # waits again after the swallowed cancellation
        return Database()

    @registry.component(timeout=0.05, optional=True)
    async def cache(db: Database | None) -> Cache:
        # Next in the same worker: its timeout must still be told from a cancellation.
        await asyncio.Event().wait()
        return Cache()

    @registry.component
    async def api(db: Database | None) -> Api:
        # Started after the swallowed cancellation: it must not inherit it.
        async with asyncio.timeout(1):
            await asyncio.sleep(0.01)
        return Api()

    async with registry.start() as system:
        # Its timeout fired; it returned anyway, after its deadline: a failure (issue 11).
        assert Database not in system
        assert "ignored the cancellation" in system.report().component("database")["error"]["message"]
        assert statuses(system) == {"database": "failed", "api": "started", "cache": "failed"}
        assert system.report().component("cache")["error"]["message"].startswith("did not start within")


async def test_a_cancellation_a_factory_raises_itself_is_its_failure() -> None:
    # Nothing cancelled it: the start must neither stop with it nor leave the
    # step "starting" for ever.
    registry = Registry("self-cancel")

    @registry.component(optional=True)
    async def cache() -> Cache:
        raise asyncio.CancelledError  # at: raises-cancelled

    @registry.component
    async def api(c: Cache | None) -> Api:
        return Api()

    @registry.component(optional=True)
    async def database() -> Database:
        return Database()

    @database.check
    async def ping(db: Database) -> None:
        await asyncio.sleep(0)
        raise asyncio.CancelledError("gave up")  # at: check-raises-cancelled

    async with registry.start() as system:
        assert statuses(system) == {"cache": "failed", "api": "started", "database": "failed"}
        error = system.report().component("cache")["error"]
    assert error["type"] == "CancelledError"
    assert error["where"] == where("raises-cancelled")
    assert "nothing was cancelling it" in error["message"]
    check = system.report().validation[0]
    assert (check["name"], check["status"], check["error"]["where"]) == (
        "ping", "failed", where("check-raises-cancelled"))


async def test_an_empty_registry_starts_and_stops() -> None:
    async with Registry("empty").start() as system:
        assert system.status == "ready"
        assert system.report().components == []
    assert system.status == "stopped"


_REQUEST = contextvars.ContextVar("request", default="none")


async def test_steps_that_return_at_once_run_each_in_a_context_of_its_own() -> None:
    # Steps that never wait share a worker task; each still gets a copy of the
    # context, as a task of its own would give it.
    registry = Registry("contexts")
    seen: dict[str, str] = {}

    @registry.component
    async def settings() -> Settings:
        _REQUEST.set("settings")
        return Settings()

    @registry.component
    async def cache() -> Cache:
        seen["cache"] = _REQUEST.get()
        _REQUEST.set("cache")
        return Cache()

    @registry.component
    async def database(s: Settings) -> Database:
        seen["database"] = _REQUEST.get()
        await asyncio.sleep(0)
        _REQUEST.set("database")
        await asyncio.sleep(0)
        seen["database after waits"] = _REQUEST.get()
        return Database()

    @registry.component
    async def api(db: Database, c: Cache) -> Api:
        seen["api"] = _REQUEST.get()
        return Api()

    async with registry.start():
        pass
    assert seen == {"cache": "none", "database": "none", "database after waits": "database", "api": "none"}
    assert _REQUEST.get() == "none"


async def test_a_step_that_waits_has_a_task_of_its_own() -> None:
    # asyncio.timeout (and anything else that keeps asyncio.current_task()) must
    # cancel the step that set it, never a step that ran in the same worker before.
    registry = Registry("own-task")
    tasks: dict[str, list[asyncio.Task[object] | None]] = {}

    def note(name: str) -> None:
        tasks.setdefault(name, []).append(asyncio.current_task())

    @registry.component(optional=True)
    async def search() -> Analytics:
        note("search")
        async with asyncio.timeout(0.05):
            await asyncio.Event().wait()
        return Analytics()

    @registry.component
    async def database() -> Database:
        note("database")
        await asyncio.sleep(0.2)
        note("database")
        return Database()

    @registry.component
    async def cache() -> Cache:
        note("cache")
        async with asyncio.timeout(1):
            await asyncio.sleep(0.1)
        note("cache")
        return Cache()

    async with registry.start() as system:
        assert statuses(system) == {"search": "failed", "database": "started", "cache": "started"}
        error = system.report().component("search")["error"]
    assert error["type"] == "TimeoutError"
    assert len({id(t) for ts in tasks.values() for t in ts}) == 3  # one each, the same before and after waits
    assert all(t is not None and t is not asyncio.current_task() for ts in tasks.values() for t in ts)


async def test_a_block_that_ends_just_before_the_start_does_is_still_reported() -> None:
    # On 3.12+, a step that returns at once after blocking the loop lets the start
    # finish without a turn of the loop: the watchdog must not miss the block.
    registry = Registry("late")

    @registry.component
    async def database() -> Database:
        time.sleep(0.3)  # noqa: ASYNC251  # at: blocks-then-returns
        return Database()

    async with registry.start(block_threshold=0.1) as system:
        blocks = system.report().loop_blocks
    # Only this block: a loaded machine may add short ones of its own elsewhere.
    mine = [b for b in blocks if b["where"] == where("blocks-then-returns")]
    assert [b["component"] for b in mine] == ["database"], blocks
    # A block is timed from the first probe it held up: short by at most a quarter
    # threshold, plus the watchdog thread's wake-up latency on a loaded machine.
    assert mine[0]["duration_s"] >= 0.3 - 0.1 / 2


async def test_a_timeout_the_factory_enforces_itself_is_reported_as_a_hang() -> None:
    # The timeout comes from the factory (settings, asyncio.timeout): daybreak's
    # report still shows where it was stuck and every thread's stack.
    registry = Registry("own-timeout")

    @registry.component(optional=True)
    async def database() -> Database:
        async with asyncio.timeout(0.05):
            await asyncio.Event().wait()  # at: own-timeout
        return Database()

    @registry.component
    async def cache() -> AsyncIterator[Cache]:
        yield Cache()
        async with asyncio.timeout(0.05):  # its stop code bounds itself too
            await asyncio.Event().wait()  # at: own-stop-timeout

    async with registry.start() as system:
        c = system.report().component("database")
    assert c["error"] == {"type": "TimeoutError", "where": where("own-timeout"),
                          "message": "its own timeout expired (asyncio.timeout or wait_for in its code)"}
    assert c["hang"]["where"] == where("own-timeout")
    assert c["hang"]["threads"], "every thread's stack is kept"
    stop = system.report().component("cache")["stop"]
    assert (stop["error"]["type"], stop["error"]["where"]) == ("TimeoutError", where("own-stop-timeout"))
    assert stop["hang"]["where"] == where("own-stop-timeout")


async def test_a_factory_that_fails_fast_after_a_retried_own_timeout_keeps_no_old_hang() -> None:
    registry = Registry("retried")
    attempts: list[int] = []

    @registry.component(optional=True, retries=1, backoff=0)
    async def database() -> Database:
        attempts.append(1)
        if len(attempts) == 1:
            async with asyncio.timeout(0.02):
                await asyncio.Event().wait()
        raise TimeoutError("the server said it timed out")  # not a cancellation of ours

    async with registry.start() as system:
        c = system.report().component("database")
    assert len(attempts) == 2
    assert c["error"]["message"] == "the server said it timed out"
    assert c["hang"] is None


async def test_a_rollback_cancels_without_taking_stacks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Taking every thread's stack for each of many cancelled steps would make a
    # failed start slow; a rollback is not a hang.
    registry = Registry("rollback")
    captured: list[str] = []
    original = System._capture_hang

    def counting(self: System, i: int, task: asyncio.Task[object]) -> dict[str, object]:
        captured.append(self.plan.steps[i].name)
        return original(self, i, task)

    monkeypatch.setattr(System, "_capture_hang", counting)
    for k in range(20):
        async def waits() -> None:
            await asyncio.Event().wait()

        registry.add(waits, name=f"waits{k}", provides=None)

    @registry.component
    async def fails() -> Database:
        await asyncio.sleep(0.01)
        raise ConnectionError("no database")

    with pytest.raises(StartupError):
        async with registry.start():
            pass
    assert captured == []
