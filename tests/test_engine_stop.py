"""Stops are never lost: a rollback owned to its end, hurried stops, the loop's own executor."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from _markers import marker_line
from daybreak import Registry
from daybreak.system import failed_stops


def where(marker: str) -> str:
    return marker_line(__file__, marker)


class Database: ...
class Api: ...


async def test_cancelling_the_start_again_hurries_the_rollback_instead_of_abandoning_it() -> None:
    registry = Registry("rollback")
    api_starting = asyncio.Event()
    db_stopping = asyncio.Event()
    log: list[str] = []

    @registry.component
    async def database() -> AsyncIterator[Database]:
        yield Database()
        db_stopping.set()
        try:
            await asyncio.Event().wait()  # at: db-stop
        finally:
            log.append("database stop ended")

    @registry.component
    async def api(db: Database) -> Api:
        api_starting.set()
        await asyncio.Event().wait()
        return Api()

    system = registry.start()
    start = asyncio.ensure_future(system.start())
    await api_starting.wait()
    start.cancel()  # the first signal: roll back
    await db_stopping.wait()
    start.cancel()  # the second: cut the stop in progress short
    with pytest.raises(asyncio.CancelledError):
        await start
    # The start returns only once its rollback has ended: nothing of it still runs.
    assert log == ["database stop ended"]
    report = system.report()
    assert report.status == "failed"
    db = report.component("database")
    assert db["status"] == "stopped"
    assert db["stop"]["status"] == "failed"
    assert db["stop"]["error"]["type"] == "CancelledError"
    assert db["stop"]["error"]["where"] == where("db-stop")
    assert failed_stops(report.to_dict()) == [
        "component 'database' did not stop cleanly: CancelledError: cut short: cancelled before it "
        f"finished (interrupted again while stopping) (at {where('db-stop')})"]


async def test_hurry_cuts_short_the_stops_in_progress_and_the_rest_still_stop() -> None:
    registry = Registry("hurry")
    api_stopping = asyncio.Event()
    log: list[str] = []

    @registry.component
    async def database() -> AsyncIterator[Database]:
        yield Database()
        log.append("database stopped")

    @registry.component
    async def api(db: Database) -> AsyncIterator[Api]:
        yield Api()
        api_stopping.set()
        await asyncio.Event().wait()

    system = registry.start()
    await system.start()
    system.hurry()  # not stopping: nothing to cut short
    stop = asyncio.ensure_future(system.stop())
    await api_stopping.wait()
    system.hurry()
    await stop
    assert log == ["database stopped"]
    report = system.report()
    assert report.component("api")["stop"]["error"]["type"] == "CancelledError"
    assert report.component("database")["stop"]["status"] == "stopped"
    assert [line.split(":")[0] for line in failed_stops(report.to_dict())] == [
        "component 'api' did not stop cleanly"]


# -- the loop's default executor is the loop's, not a leftover ---------------------------------------


async def test_the_loops_idle_executor_threads_are_no_leftovers() -> None:
    registry = Registry("executor")
    server = await asyncio.start_server(lambda r, w: w.close(), "localhost", 0)
    port = server.sockets[0].getsockname()[1]

    @registry.component
    async def database() -> AsyncIterator[Database]:
        await asyncio.to_thread(sum, [1, 2])
        _, writer = await asyncio.open_connection("localhost", port)
        yield Database()
        writer.close()
        await writer.wait_closed()

    try:
        async with registry.start() as system:
            pass
    finally:
        server.close()
        await server.wait_closed()
    assert system.report().leftovers["threads"] == []


async def test_an_executor_thread_still_running_a_call_is_a_leftover() -> None:
    registry = Registry("executor-busy")
    release = threading.Event()

    @registry.component
    async def database() -> Database:
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, release.wait)  # at: busy-executor
        return Database()

    try:
        async with registry.start() as system:
            pass
        threads = system.report().leftovers["threads"]
        assert len(threads) == 1
        assert threads[0]["name"].startswith("asyncio_")
    finally:
        release.set()


# -- a hung sync health check: one instance at a time -------------------------------------------------


async def test_a_hung_sync_check_runs_once_at_a_time_and_is_reported_hung() -> None:
    registry = Registry("hung-check")
    release = threading.Event()
    calls: list[int] = []

    @registry.component
    def database() -> Database:
        return Database()

    @database.check(timeout=0.05)
    def ping(db: Database) -> None:
        calls.append(1)
        if len(calls) > 1:  # the readiness runs after the start hang
            release.wait()  # at: check-hangs

    def check_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "daybreak:database"]

    try:
        async with registry.start() as system:
            first = await system.check()
            assert first[0]["status"] == "failed"
            assert first[0]["error"]["message"].startswith("did not finish within 0.05 s")
            for _ in range(3):
                again = await system.check()
                assert again[0]["status"] == "failed"
                assert again[0]["error"]["message"].startswith("hung: its run of ")
                assert again[0]["error"]["where"] == where("check-hangs")
            assert len(calls) == 2 and len(check_threads()) == 1
            release.set()
            for thread in check_threads():
                thread.join(10)
            assert (await system.check())[0]["status"] == "passed"
            assert len(calls) == 3
    finally:
        release.set()


async def test_a_sync_check_still_within_its_timeout_answers_its_last_result() -> None:
    registry = Registry("slow-check")
    entered = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    @registry.component
    def database() -> Database:
        return Database()

    @database.check(timeout=60)
    def ping(db: Database) -> None:
        calls.append(1)
        if len(calls) > 1:
            entered.set()
            release.wait()

    try:
        async with registry.start() as system:
            slow = asyncio.ensure_future(system.check())
            await asyncio.to_thread(entered.wait)
            meanwhile = await system.check()  # a second probe while the first still runs
            assert meanwhile[0]["status"] == "passed" and len(calls) == 2
            release.set()
            assert (await slow)[0]["status"] == "passed"
    finally:
        release.set()
