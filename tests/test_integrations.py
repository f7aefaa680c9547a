"""Prometheus, OpenTelemetry, the event listener API and the memory monitor."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from daybreak import Event, Registry

prometheus_client = pytest.importorskip("prometheus_client")
otel_sdk = pytest.importorskip("opentelemetry.sdk.trace")


class Settings: ...
class Database: ...
class Cache: ...


def make_registry() -> Registry:
    registry = Registry("svc", phases=("init", "data"))

    @registry.component(phase="init")
    def settings() -> Settings:
        return Settings()

    @registry.component(phase="data", retries=1, backoff=0.0)
    async def database(s: Settings) -> AsyncIterator[Database]:
        yield Database()

    attempts = []

    @registry.component(phase="data", optional=True, retries=1, backoff=0.0)
    async def cache(s: Settings) -> Cache:
        attempts.append(1)
        raise ConnectionRefusedError("cache down")

    return registry


async def test_listeners_get_every_lifecycle_event_in_order() -> None:
    seen: list[Event] = []
    async with make_registry().start(listeners=[seen.append]):
        pass
    kinds = [e.kind for e in seen]
    assert kinds[0] == "system.starting" and kinds[-1] == "system.stopped"
    assert kinds.index("component.started") > kinds.index("component.starting")
    assert "system.degraded" in kinds
    retry = next(e for e in seen if e.kind == "component.retrying")
    assert retry.component == "cache" and retry.attempt == 1 and "cache down" in (retry.error or "")
    failed = next(e for e in seen if e.kind == "component.failed")
    assert failed.component == "cache" and failed.phase == "data"


async def test_default_listener_logs_one_greppable_line_per_event(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="daybreak")
    async with make_registry().start():
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "daybreak"]
    assert any(line.startswith("component.started svc component=database phase=data") for line in lines)
    failed = [r for r in caplog.records if r.getMessage().startswith("component.failed")]
    assert failed and failed[0].levelno == logging.ERROR


async def test_a_failing_listener_does_not_break_the_start(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    async with make_registry().start(listeners=[broken]) as system:
        assert system.status == "degraded"
    assert "listener bug" in caplog.text


async def test_prometheus_collector_reports_statuses_durations_and_retries() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from daybreak.prometheus import DaybreakCollector

    async with make_registry().start() as system:
        registry = CollectorRegistry()
        registry.register(DaybreakCollector(system))
        text = generate_latest(registry).decode()
    assert 'daybreak_system_status{status="degraded",system="svc"} 1.0' in text
    assert 'daybreak_component_status{component="cache",status="failed",system="svc"} 1.0' in text
    assert 'daybreak_component_retries_total{component="cache",system="svc"} 1.0' in text
    assert 'daybreak_component_start_seconds{component="database",phase="data",system="svc"}' in text
    assert 'daybreak_phase_start_seconds{phase="init",system="svc"}' in text


async def test_otel_spans_per_phase_and_component_with_errors() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from daybreak.otel import TracingListener

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    listener = TracingListener(provider.get_tracer("test"), also=None)
    async with make_registry().start(listeners=[listener]):
        pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert {"daybreak.start svc", "phase init", "phase data", "start settings", "start database",
            "start cache", "stop database", "daybreak.stop svc"} <= set(spans)
    assert spans["start cache"].status.status_code.name == "ERROR"
    assert spans["start database"].status.status_code.name == "UNSET"
    assert spans["start database"].parent.span_id == spans["phase data"].context.span_id
    assert spans["phase data"].parent.span_id == spans["daybreak.start svc"].context.span_id


async def test_memory_monitor_samples_on_the_loop_and_warns_on_sustained_growth(
        caplog: pytest.LogCaptureFixture) -> None:
    from daybreak.monitor import MemoryMonitor, memory_monitor

    fake = iter(range(0, 10**9, 1_000_000))  # +1 MB per sample: a steady leak
    registry = Registry("m")
    registry.add(memory_monitor(interval=0.01, window=20, min_samples=5, threshold=1024,
                                read_rss=lambda: next(fake)), name="memory")
    threads_before = threading.active_count()
    async with registry.start() as system:
        monitor = system[MemoryMonitor]
        assert threading.active_count() == threads_before  # no thread of its own
        # Wait for the warning itself: a fixed sleep held too few samples on a loaded machine.
        deadline = time.monotonic() + 10
        while not monitor.warnings:
            assert time.monotonic() < deadline, f"no warning: {monitor.to_dict()}"
            await asyncio.sleep(0.01)
        data = monitor.to_dict()
    assert data["samples"] >= 5
    assert data["growth_bytes_per_s"] > 0
    assert data["warnings"] >= 1
    assert "memory grows" in caplog.text
    assert monitor._task is None  # stopped with the system


def test_memory_monitor_is_quiet_on_a_flat_series() -> None:
    from daybreak.monitor import MemoryMonitor

    values = iter([100_000_000 + (i % 3) * 4096 for i in range(200)])
    ticks = iter(range(200))
    monitor = MemoryMonitor(interval=1, window=50, min_samples=12, threshold=1024,
                            read_rss=lambda: next(values), clock=lambda: float(next(ticks)))
    for _ in range(200):
        monitor.sample()
    assert monitor.warnings == 0


def test_theil_sen_ignores_one_outlier() -> None:
    from daybreak._stats import theil_sen

    xs = list(range(20))
    ys = [100.0 * x for x in xs]
    ys[7] = 1e9
    assert theil_sen(xs, ys) == pytest.approx(100.0)


def test_memory_monitor_keeps_a_bounded_window() -> None:
    """Old samples leave the window, and the growth they showed goes with them."""
    from daybreak.monitor import MemoryMonitor

    rss = iter([min(i, 30) * 1_000_000 for i in range(60)])  # +1 MB/s for 30 s, then flat
    ticks = itertools.count()
    monitor = MemoryMonitor(interval=1, window=10, min_samples=5, threshold=1024,
                            read_rss=lambda: next(rss), clock=lambda: float(next(ticks)))
    warned_at = []
    for tick in range(60):
        before = monitor.warnings
        monitor.sample()
        if monitor.warnings > before:
            warned_at.append(tick)
        assert len(monitor.samples) == min(tick + 1, 10)
    assert [t for t, _ in monitor.samples] == [float(t) for t in range(50, 60)]
    data = monitor.to_dict()
    assert (data["samples"], data["window"], data["window_s"]) == (10, 10, 9.0)
    assert data["rss_bytes"] == 30_000_000
    assert data["growth_bytes_per_s"] == 0.0  # the growth left the window with its samples
    assert warned_at == [4, 14, 24, 34]  # from min_samples on, at most once per window, while it grows


def test_memory_monitor_checks_a_long_window_every_thirtieth_of_it() -> None:
    """With window=60 the window is checked every 2 samples: the first warning waits for an even tick."""
    from daybreak.monitor import MemoryMonitor

    ticks = itertools.count()
    monitor = MemoryMonitor(interval=1, window=60, min_samples=5, threshold=1024,
                            read_rss=lambda: next(ticks) * 1_000_000, clock=lambda: float(len(monitor.samples)))
    for _ in range(5):
        monitor.sample()
    assert monitor.warnings == 0  # 5 samples, but 5 is odd
    monitor.sample()
    assert monitor.warnings == 1


def test_memory_monitor_checks_its_options_at_declaration() -> None:
    from daybreak.monitor import memory_monitor

    with pytest.raises(ValueError, match=r"min_samples=50; expected an int from 2 to window=20"):
        memory_monitor(window=20, min_samples=50)
    with pytest.raises(ValueError, match=r"interval=0; expected seconds > 0"):
        memory_monitor(interval=0)
    with pytest.raises(ValueError, match=r"top_sites=-1"):
        memory_monitor(top_sites=-1)
    with pytest.raises(ValueError, match=r"trace_frames=0"):
        memory_monitor(top_sites=5, trace_frames=0)
    with pytest.raises(TypeError, match="intervall"):
        memory_monitor(intervall=1)


def test_rss_bytes_reads_the_current_resident_size() -> None:
    from daybreak.monitor import rss_bytes

    rss = rss_bytes()
    assert rss > 1024 * 1024
    assert rss % os.sysconf("SC_PAGE_SIZE") == 0


async def test_a_failing_sample_is_logged_once_and_sampling_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    from daybreak.monitor import MemoryMonitor

    calls = itertools.count()

    def flaky() -> int:
        n = next(calls)
        if n in (1, 2):
            raise OSError("statm is unreadable")
        return 1_000_000 + n

    async with MemoryMonitor(interval=0.005, read_rss=flaky) as monitor:
        deadline = time.monotonic() + 5
        while len(monitor.samples) < 3:
            assert time.monotonic() < deadline, "the monitor stopped sampling"
            await asyncio.sleep(0.005)
        assert monitor.running
    assert not monitor.running
    assert monitor.errors == 2
    assert [r.getMessage() for r in caplog.records if r.name == "daybreak.monitor"] == [
        "daybreak: the memory monitor could not take a sample; it keeps trying and logs no further failure"]


_kept: list[bytearray] = []


def _grow() -> None:
    _kept.append(bytearray(128 * 1024))


class Leaky: ...


@pytest.mark.parametrize("already_tracing", [False, True], ids=["own-tracing", "tracing-of-others"])
async def test_memory_monitor_top_sites_names_the_line_that_leaks(
        caplog: pytest.LogCaptureFixture, already_tracing: bool) -> None:
    """With top_sites, the warning names the allocating line, not the line that called it.

    The monitor starts tracemalloc and stops it after, or, when it already
    runs, compares snapshots and leaves it running.
    """
    from daybreak.monitor import MemoryMonitor, memory_monitor

    registry = Registry("leaky")

    @registry.component
    async def leaky() -> AsyncIterator[Leaky]:
        async def leak() -> None:
            while True:
                _grow()  # the caller: not the site
                await asyncio.sleep(0.002)

        task = asyncio.get_running_loop().create_task(leak())
        yield Leaky()
        task.cancel()
        await asyncio.wait([task])

    fake = itertools.count(0, 1_000_000)  # the trigger is deterministic; the sites are real
    registry.add(memory_monitor(interval=0.01, window=10, min_samples=5, threshold=1024, top_sites=3,
                                read_rss=lambda: next(fake)), name="memory")
    tracing_before = tracemalloc.is_tracing()
    if already_tracing and not tracing_before:
        tracemalloc.start(10)
    leak_line = f"{__file__}:{_grow.__code__.co_firstlineno + 1}"
    try:
        async with registry.start() as system:
            monitor = system[MemoryMonitor]
            deadline = time.monotonic() + 5
            while not monitor.warnings:
                assert time.monotonic() < deadline, "no warning"
                await asyncio.sleep(0.01)
            data = monitor.to_dict()
        tracing_after = tracemalloc.is_tracing()
    finally:
        _kept.clear()
        if already_tracing and not tracing_before:
            tracemalloc.stop()
    # The sites thread may compare again between two reads while the system runs: judge
    # the one snapshot to_dict() took, and the monitor's own sites after the stop, each alone.
    for sites in (data["sites"], monitor.sites):
        top = sites[0]
        assert top["where"] == leak_line
        assert top["bytes"] >= 2 * 128 * 1024 and top["count"] >= 2 and top["internal"] is False
        assert len(sites) <= 3
    assert f"{leak_line} +{monitor.sites[0]['bytes']} B" in (monitor.last_warning or "")
    warning = [r for r in caplog.records if r.name == "daybreak.monitor"]
    assert warning and warning[0].levelno == logging.WARNING and leak_line in warning[0].getMessage()
    assert tracing_after == (tracing_before or already_tracing)  # stopped only by the monitor that started it
    assert system.report().leftovers == {"threads": [], "tasks": [], "fds": []}
    assert not [t for t in threading.enumerate() if t.name == "daybreak-memory-sites"]
