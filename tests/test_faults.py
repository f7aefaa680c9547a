"""The fault matrix: every factory kind x every fault x critical/optional.

Each case declares four components::

    base  <-  faulty  <-  dependent          peer (independent)

and asserts the status of every one of them, the exact line of the fault, and
that nothing is left running once the test has released what it held.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from _markers import marker_line
from daybreak import Registry, StartupError, StartupReport, System

TIMEOUT = 0.6  # start timeout of the faulty component: generous, CI machines are loaded
STOP_TIMEOUT = 0.25
BLOCK = 0.3  # how long "blocks the loop" holds it; the threshold is 0.1 s
SLOW = 0.05  # "slow then OK" takes this long, well inside TIMEOUT

KINDS = ("async fn", "sync fn", "async gen", "context manager")
FAULTS = ("raises", "hangs", "blocks the loop", "slow then OK", "hangs on stop", "leaks a thread")
STOPLESS = ("async fn", "sync fn")  # no stop code, so nothing of theirs can hang on stop


def where(marker: str) -> str:
    """``file:line`` of the line of this file that ends with ``# at: <marker>``."""
    return marker_line(__file__, marker)


class Base: ...
class Faulty: ...
class Dependent: ...
class Peer: ...


@dataclass
class Case:
    kind: str
    fault: str
    optional: bool
    release: threading.Event = field(default_factory=threading.Event)
    log: list[str] = field(default_factory=list)
    leaked: list[threading.Thread] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return f"{self.kind.replace(' ', '-')}:{self.fault.replace(' ', '-')}"


class Boom(RuntimeError):
    pass


# -- the faulty factories: one per kind, every fault on its own marked line -----------------


def async_fn(case: Case) -> Callable[..., Any]:
    async def faulty(b: Base) -> Faulty:
        if case.fault == "raises":
            raise Boom("async fn fault")  # at: async-fn:raises
        if case.fault == "hangs":
            await asyncio.sleep(30)  # at: async-fn:hangs
        if case.fault == "blocks the loop":
            time.sleep(BLOCK)  # noqa: ASYNC251  # at: async-fn:blocks-the-loop
        if case.fault == "slow then OK":
            await asyncio.sleep(SLOW)
        if case.fault == "leaks a thread":
            def forgotten() -> None:
                case.release.wait()  # at: async-fn:leaks-a-thread
            thread = threading.Thread(target=forgotten, name="leaky-async-fn", daemon=True)
            case.leaked.append(thread)
            thread.start()
        return Faulty()

    return faulty


def sync_fn(case: Case) -> Callable[..., Any]:
    def faulty(b: Base) -> Faulty:
        if case.fault == "raises":
            raise Boom("sync fn fault")  # at: sync-fn:raises
        if case.fault == "hangs":
            case.release.wait()  # at: sync-fn:hangs
        if case.fault == "blocks the loop":
            time.sleep(BLOCK)  # at: sync-fn:blocks-the-loop
        if case.fault == "slow then OK":
            time.sleep(SLOW)
        if case.fault == "leaks a thread":
            def forgotten() -> None:
                case.release.wait()  # at: sync-fn:leaks-a-thread
            thread = threading.Thread(target=forgotten, name="leaky-sync-fn", daemon=True)
            case.leaked.append(thread)
            thread.start()
        return Faulty()

    return faulty


def async_gen(case: Case) -> Callable[..., Any]:
    async def faulty(b: Base) -> AsyncIterator[Faulty]:
        if case.fault == "raises":
            raise Boom("async gen fault")  # at: async-gen:raises
        if case.fault == "hangs":
            await asyncio.sleep(30)  # at: async-gen:hangs
        if case.fault == "blocks the loop":
            time.sleep(BLOCK)  # noqa: ASYNC251  # at: async-gen:blocks-the-loop
        if case.fault == "slow then OK":
            await asyncio.sleep(SLOW)
        if case.fault == "leaks a thread":
            def forgotten() -> None:
                case.release.wait()  # at: async-gen:leaks-a-thread
            thread = threading.Thread(target=forgotten, name="leaky-async-gen", daemon=True)
            case.leaked.append(thread)
            thread.start()
        yield Faulty()
        if case.fault == "hangs on stop":
            await asyncio.sleep(30)  # at: async-gen:hangs-on-stop
        case.log.append("faulty stopped")

    return faulty


def context_manager(case: Case) -> Callable[..., Any]:
    @contextlib.contextmanager
    def faulty(b: Base) -> Iterator[Faulty]:
        if case.fault == "raises":
            raise Boom("context manager fault")  # at: context-manager:raises
        if case.fault == "hangs":
            case.release.wait()  # at: context-manager:hangs
        if case.fault == "blocks the loop":
            time.sleep(BLOCK)  # at: context-manager:blocks-the-loop
        if case.fault == "slow then OK":
            time.sleep(SLOW)
        if case.fault == "leaks a thread":
            def forgotten() -> None:
                case.release.wait()  # at: context-manager:leaks-a-thread
            thread = threading.Thread(target=forgotten, name="leaky-context-manager", daemon=True)
            case.leaked.append(thread)
            thread.start()
        yield Faulty()
        if case.fault == "hangs on stop":
            case.release.wait()  # at: context-manager:hangs-on-stop
        case.log.append("faulty stopped")

    return faulty


FACTORIES = {"async fn": async_fn, "sync fn": sync_fn, "async gen": async_gen,
             "context manager": context_manager}


def build(case: Case) -> Registry:
    registry = Registry("faults")

    @registry.component
    async def base() -> AsyncIterator[Base]:
        yield Base()
        case.log.append("base stopped")

    # "blocks the loop" for a sync kind means running it on the loop: blocking=False.
    blocking = not (case.fault == "blocks the loop" and case.kind in ("sync fn", "context manager"))
    registry.add(FACTORIES[case.kind](case), name="faulty", optional=case.optional,
                 timeout=TIMEOUT, stop_timeout=STOP_TIMEOUT, blocking=blocking)

    @registry.component(optional=case.optional)
    async def dependent(f: Faulty) -> AsyncIterator[Dependent]:
        yield Dependent()
        case.log.append("dependent stopped")

    @registry.component
    async def peer() -> AsyncIterator[Peer]:
        yield Peer()
        case.log.append("peer stopped")

    return registry


def statuses(report: StartupReport) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report.components}


def cases() -> Iterator[Any]:
    for kind in KINDS:
        for fault in FAULTS:
            if fault == "hangs on stop" and kind in STOPLESS:
                continue
            for optional in (False, True):
                label = f"{kind}-{fault}-{'optional' if optional else 'critical'}".replace(" ", "_")
                yield pytest.param(kind, fault, optional, id=label)


async def run(case: Case) -> tuple[System, StartupReport, StartupError | None, StartupReport | None]:
    """Start and stop; returns the system, the report once stopped, the error, the report while up."""
    system = build(case).start()
    error: StartupError | None = None
    running: StartupReport | None = None
    t0 = time.perf_counter()
    try:
        async with system:
            running = system.report()
    except StartupError as exc:
        error = exc
    assert time.perf_counter() - t0 < 5, "start and stop must not hang"
    return system, system.report(), error, running


@pytest.mark.parametrize(("kind", "fault", "optional"), list(cases()))
async def test_fault(kind: str, fault: str, optional: bool) -> None:
    case = Case(kind, fault, optional)
    try:
        system, report, error, running = await run(case)
        check(case, system, report, error, running)
    finally:
        case.release.set()
    # Nothing left running once the test released what it held.
    for thread in [*case.leaked, *threading.enumerate()]:
        if thread.name.startswith(("daybreak", "leaky-")):
            thread.join(timeout=5)
            assert not thread.is_alive(), f"{thread.name} is still alive"
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


def check(case: Case, system: System, report: StartupReport, error: StartupError | None,
          running: StartupReport | None) -> None:
    c = report.component("faulty")
    sync_kind = case.kind in ("sync fn", "context manager")

    if case.fault in ("raises", "hangs"):
        marker = where(f"{case.slug}")
        if case.optional:
            assert error is None
            assert running is not None
            assert running.status == "degraded"
            assert statuses(running) == {"base": "started", "faulty": "failed",
                                         "dependent": "skipped", "peer": "started"}
            assert "'faulty'" in (running.component("dependent")["reason"] or "")
            assert statuses(report) == {"base": "stopped", "faulty": "failed",
                                        "dependent": "skipped", "peer": "stopped"}
            assert case.log.count("base stopped") == case.log.count("peer stopped") == 1
        else:
            assert error is not None, "a critical fault fails the start"
            assert error.component == "faulty"
            assert error.where == marker
            assert f"where: {marker}" in str(error)
            assert error.report.status == "failed"
            assert statuses(report) == {"base": "stopped", "faulty": "failed",
                                        "dependent": "skipped", "peer": "stopped"}
            assert sorted(case.log) == ["base stopped", "peer stopped"]
            assert system.status == "failed"
        assert c["error"]["where"] == marker
        if case.fault == "raises":
            assert c["error"]["type"] == "Boom"
            assert c["error"]["message"] == f"{case.kind} fault"
        else:
            assert c["error"]["type"] == "TimeoutError"
            assert c["hang"]["where"] == marker
            assert c["hang"]["threads"], "the stacks of all threads are recorded"
            if sync_kind:
                # the worker thread cannot be killed: still blocked after the stop, and named
                left = [t for t in report.leftovers["threads"] if t["name"] == "daybreak:faulty"]
                assert len(left) == 1
                assert left[0]["component"] == "faulty"
                assert left[0]["where"] == marker
        return

    assert error is None
    assert running is not None
    assert running.status == "ready"
    assert statuses(running) == dict.fromkeys(("base", "faulty", "dependent", "peer"), "started")
    assert statuses(report) == dict.fromkeys(("base", "faulty", "dependent", "peer"), "stopped")
    assert system.status == "stopped"
    stops = case.log
    if case.kind in STOPLESS:
        assert sorted(stops) == ["base stopped", "dependent stopped", "peer stopped"]
    elif case.fault != "hangs on stop":
        assert sorted(stops) == ["base stopped", "dependent stopped", "faulty stopped",
                                 "peer stopped"]
        assert stops.index("dependent stopped") < stops.index("faulty stopped") \
            < stops.index("base stopped")

    if case.fault == "blocks the loop":
        marker = where(case.slug)
        blocks = [b for b in report.loop_blocks if b["where"] == marker]
        assert blocks, report.loop_blocks
        assert blocks[0]["component"] == "faulty"
        assert blocks[0]["duration_s"] >= 0.2
    elif case.fault == "slow then OK":
        assert c["duration_s"] >= SLOW * 0.9
        assert c["attempts"] == 1
        assert c["error"] is None
    elif case.fault == "hangs on stop":
        marker = where(case.slug)
        assert c["stop"]["status"] == "failed"
        assert c["stop"]["error"]["type"] == "TimeoutError"
        assert "stop_timeout=0.25" in c["stop"]["error"]["message"]
        assert c["stop"]["error"]["where"] == marker
        assert c["stop"]["hang"]["where"] == marker
        # the others still stopped, base after the faulty one gave up
        assert sorted(stops) == ["base stopped", "dependent stopped", "peer stopped"]
        assert stops.index("dependent stopped") < stops.index("base stopped")
        if sync_kind:
            left = [t for t in report.leftovers["threads"] if t["name"] == "daybreak:faulty"]
            assert len(left) == 1 and left[0]["where"] == marker
    elif case.fault == "leaks a thread":
        marker = where(case.slug)
        left = [t for t in report.leftovers["threads"] if t["name"] == f"leaky-{case.slug.split(':')[0]}"]
        assert len(left) == 1, report.leftovers["threads"]
        assert left[0]["component"] == "faulty"
        assert left[0]["where"] == marker
        assert left[0]["daemon"] is True
    if case.fault != "leaks a thread" and not (case.fault == "hangs on stop" and sync_kind):
        assert report.leftovers == {"threads": [], "tasks": [], "fds": []}
