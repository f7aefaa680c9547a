"""The leak checker: finds each kind of leak, says where, and calls clean services clean."""

from __future__ import annotations

import asyncio
import asyncio.events
import itertools
import json
import os
import subprocess
import sys
import tracemalloc
import types
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daybreak import Registry, StartupError, UsageError
from daybreak._target import load_target
from daybreak.cli import main
from daybreak.leaks import (
    LeakedFd,
    acheck,
    check,
    counted_leaks,
    growth_sites,
    memory_leaks,
    memory_trend,
    parse_size,
)
from daybreak.testing import assert_no_leaks, assert_no_leaks_async

HERE = Path(__file__).resolve().parent
LEAKY = HERE / "fixtures" / "leaky"
SRC = HERE.parent / "src"
HAS_PROC_FDS = os.path.isdir("/proc/self/fd")
KIB = 1024


class Conn: ...


class Db: ...


class FakeDb(Db): ...


def spec(name: str) -> str:
    return f"{LEAKY / name}.py:registry"


def where(module: types.ModuleType, marker: str) -> str:
    """``file:line`` of the line of ``module`` that ends with ``# marker: <marker>``."""
    assert module.__file__ is not None
    lines = Path(module.__file__).read_text(encoding="utf-8").splitlines()
    hits = [n for n, text in enumerate(lines, 1) if text.rstrip().endswith(f"# marker: {marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times"
    return f"{module.__file__}:{hits[0]}"


Loader = Callable[[str], tuple[Registry, types.ModuleType]]
Capture = pytest.CaptureFixture[str]


@pytest.fixture
def leaky() -> Iterator[Loader]:
    """Load a fixture registry by name; what its leaks kept is released after the test."""
    loaded: list[types.ModuleType] = []

    def load(name: str) -> tuple[Registry, types.ModuleType]:
        registry = load_target(spec(name))
        module = sys.modules[registry.components[0].factory.__module__]
        loaded.append(module)
        return registry, module

    yield load
    for module in loaded:
        module.release()


# -- finding leaks ------------------------------------------------------------------------------
def test_memory_leak_is_found_at_the_line_that_allocates(leaky: Loader) -> None:
    registry, module = leaky("memory_leak")
    report = check(registry, cycles=6, warmup=2)
    assert report.verdict == "leak"
    assert report.leaks["memory"]
    assert not (report.leaks["threads"] or report.leaks["tasks"] or report.leaks["fds"])
    assert report.growth_bytes_per_cycle == pytest.approx(96 * KIB, rel=0.05)
    first, second = report.sites[:2]
    assert first.where == where(module, "alloc")
    assert 64 * KIB <= first.bytes_per_cycle < 65 * KIB
    assert 1 <= first.count_per_cycle <= 3
    # A sync factory runs in a daybreak worker thread: still its own line.
    assert second.where == where(module, "sync-alloc")
    assert 32 * KIB <= second.bytes_per_cycle < 33 * KIB
    assert not first.internal
    assert first.stack[-1] == first.where


def test_thread_leak_is_found_with_where_it_waits(leaky: Loader) -> None:
    registry, module = leaky("thread_leak")
    report = check(registry, cycles=5, warmup=1)
    assert report.leaks["threads"]
    assert report.per_cycle["threads"] == 1.0
    (thread,) = report.threads
    assert thread.name == "poller"
    assert thread.where == where(module, "thread-wait")
    assert thread.per_cycle == 1.0
    assert thread.component == "poller"


@pytest.mark.skipif(not HAS_PROC_FDS, reason="needs /proc/self/fd")
def test_file_descriptor_leak_is_found(leaky: Loader) -> None:
    registry, module = leaky("fd_leak")
    report = check(registry, cycles=5, warmup=1)
    assert report.leaks["fds"]
    assert report.fds == (LeakedFd("file", str(module.__file__), 1.0),)


@pytest.mark.skipif(not HAS_PROC_FDS, reason="needs /proc/self/fd")
def test_socket_leak_is_one_group_whatever_the_ports(leaky: Loader) -> None:
    registry, _ = leaky("socket_leak")
    report = check(registry, cycles=5, warmup=1)
    assert report.leaks["fds"]
    assert report.fds == (LeakedFd("socket", "tcp 127.0.0.1:* (listening)", 1.0),)


async def test_task_leak_is_found_inside_a_running_loop(leaky: Loader) -> None:
    registry, module = leaky("task_leak")
    leaked = module._tasks
    try:
        report = await acheck(registry, cycles=5, warmup=1)
    finally:
        pending = list(leaked)
        module.release()
        await asyncio.gather(*pending, return_exceptions=True)
    assert report.leaks["tasks"]
    (task,) = report.tasks
    assert task.name == "_beat"  # a default "Task-12" name says nothing: the coroutine's does
    assert task.where == where(module, "task-wait")
    assert task.per_cycle == 1.0
    assert task.component == "heartbeat"


def test_task_leak_found_by_check_is_swept_when_its_loop_closes(leaky: Loader) -> None:
    registry, module = leaky("task_leak")
    report = check(registry, cycles=3, warmup=1)
    assert report.leaks["tasks"]
    assert all(task.done() for task in module._tasks)


# -- not flagging what is not a leak ------------------------------------------------------------
def test_a_service_that_cleans_up_is_clean_every_time(leaky: Loader) -> None:
    registry, _ = leaky("clean_service")
    for _ in range(5):
        report = check(registry)  # the defaults: 20 cycles after 3 warm-up
        assert report.verdict == "clean", report.to_text()
        assert (report.sites, report.threads, report.tasks, report.fds, report.objects) == (
            (), (), (), (), ())
        assert abs(report.growth_bytes_per_cycle) < 1024


def test_a_bounded_cache_that_fills_during_warmup_is_clean(leaky: Loader) -> None:
    registry, module = leaky("bounded_cache")
    assert check(registry).verdict == "clean"
    module.release()
    # Empty again, and only two warm-up cycles: the third entry comes in the first
    # measured cycle, a step, not a trend.
    assert_no_leaks(registry, cycles=10, warmup=2)


# -- the verdict rules --------------------------------------------------------------------------
def test_memory_rule_needs_growth_above_the_threshold_and_persistent() -> None:
    assert memory_leaks([1100.0 * k + (37 * k) % 200 for k in range(21)], 1024)
    assert not memory_leaks([100.0 * k for k in range(21)], 1024)  # asyncio-sized drift
    assert not memory_leaks([0.0, 5000, 0, 5000, 0, 5000, 0, 5000, 0], 1024)  # noise


def test_one_step_on_a_steady_drift_is_not_a_leak() -> None:
    series = [32.0 * k + (100 * KIB if k > 10 else 0) for k in range(21)]
    slope, share, median = memory_trend(series)
    assert slope > 1024 and share == 1.0  # Theil-Sen and "most cycles grow" alone would say leak
    assert median == 32
    assert not memory_leaks(series, 1024)


def test_counted_rule_is_every_cycle_adds_one() -> None:
    assert counted_leaks([3, 4, 5, 6])
    assert counted_leaks([3, 5, 6, 9])
    assert not counted_leaks([3, 4, 4, 5])
    assert not counted_leaks([3, 4, 5, 4])
    assert not counted_leaks([3])


@settings(max_examples=60, deadline=None)
@given(rate=st.floats(2 * KIB, 1024 * KIB),
       noise=st.lists(st.floats(-0.2, 0.2), min_size=6, max_size=30))
def test_steady_growth_above_the_threshold_is_always_a_leak(rate: float, noise: list[float]) -> None:
    series = [rate * k + rate * e for k, e in enumerate(noise)]
    assert memory_leaks(series, 1024)


@settings(max_examples=100, deadline=None)
@given(drift=st.integers(0, 100), noise=st.lists(st.integers(-200, 200), min_size=6, max_size=30),
       step=st.integers(0, 16 * 1024 * KIB), at=st.integers(0, 30))
def test_drift_noise_and_one_step_are_never_a_leak(drift: int, noise: list[int], step: int,
                                                   at: int) -> None:
    series = [float(drift * k + e + (step if k >= at else 0)) for k, e in enumerate(noise)]
    assert not memory_leaks(series, 1024)


# -- attribution --------------------------------------------------------------------------------
DAYBREAK_SYSTEM = str(SRC / "daybreak" / "system.py")
STDLIB = os.path.dirname(os.__file__)
RUN_LINE = next(line for _, _, line in asyncio.events.Handle._run.__code__.co_lines() if line)
HANDLE_RUN = (asyncio.events.__file__, RUN_LINE)
LIBRARY = os.path.join(STDLIB, "site-packages", "somelib", "pool.py")


def snapshot(*traces: tuple[int, list[tuple[str, int]]]) -> tracemalloc.Snapshot:
    """A snapshot from (size, frames most recent first): tracemalloc's raw order."""
    raw = [(0, size, tuple(frames), len(frames)) for size, frames in traces]
    return tracemalloc.Snapshot(raw, 25)


def test_a_site_is_the_innermost_project_frame_below_the_engine() -> None:
    app = str(HERE / "app.py")
    helper = str(HERE / "helper.py")
    after = snapshot(
        # app.py:12 calls helper.py:3, which calls the stdlib; the engine called app.py
        (4096, [(os.path.join(STDLIB, "json", "decoder.py"), 9), (helper, 3), (app, 12),
                (DAYBREAK_SYSTEM, 600), (str(HERE / "test_app.py"), 40)]),
        (4096, [(os.path.join(STDLIB, "json", "decoder.py"), 9), (helper, 3), (app, 12),
                (DAYBREAK_SYSTEM, 600), (str(HERE / "test_app.py"), 40)]),
    )
    (site,) = growth_sites(snapshot(), after, 2, 1024)
    assert site.where == f"{helper}:3"
    assert (site.bytes_per_cycle, site.count_per_cycle) == (4096, 1)
    assert site.stack == (f"{app}:12", f"{helper}:3", os.path.join(STDLIB, "json", "decoder.py") + ":9")
    assert not site.internal


def test_the_event_loop_and_its_caller_are_not_sites() -> None:
    outer = str(HERE / "test_app.py")  # the test that runs the loop: project code, but the harness
    base_events = os.path.join(os.path.dirname(asyncio.events.__file__), "base_events.py")
    loop_only = snapshot((8192, [(base_events, 1), HANDLE_RUN, (LIBRARY, 7), (outer, 40)]))
    (site,) = growth_sites(snapshot(), loop_only, 1, 1024)
    assert site.internal and site.where == f"{base_events}:1"
    library = snapshot((8192, [(LIBRARY, 7), HANDLE_RUN, (outer, 40)]))
    (site,) = growth_sites(snapshot(), library, 1, 1024)
    assert not site.internal and site.where == f"{LIBRARY}:7"


def test_sites_below_the_minimum_are_left_out() -> None:
    app = str(HERE / "app.py")
    after = snapshot((10 * KIB, [(app, 1)]), (32, [(app, 2)]))  # 64 B: 1/16 of the threshold
    assert [s.where for s in growth_sites(snapshot(), after, 1, 1024)] == [f"{app}:1"]


def test_with_tracemalloc_already_tracing_sites_come_from_its_snapshots(leaky: Loader) -> None:
    registry, module = leaky("memory_leak")
    tracemalloc.start(25)
    try:
        report = check(registry, cycles=3, warmup=1)
    finally:
        tracemalloc.stop()
    assert report.attribution_cycles == 0 and report.traceback_limit == 25
    assert report.sites[0].where == where(module, "alloc")
    assert report.sites[0].bytes_per_cycle == pytest.approx(64 * KIB, rel=0.01)


def test_without_tracemalloc_sites_come_from_extra_deep_cycles(leaky: Loader) -> None:
    registry, _ = leaky("memory_leak")
    report = check(registry, cycles=3, warmup=1)
    assert report.attribution_cycles == 3 and report.traceback_limit == 25
    assert len(report.samples) == 5  # the extra cycles are not samples


# -- the report ---------------------------------------------------------------------------------
def test_json_has_the_documented_fields(leaky: Loader) -> None:
    registry, module = leaky("memory_leak")
    doc = json.loads(json.dumps(check(registry, cycles=3, warmup=2).to_dict()))
    assert {"verdict", "cycles", "warmup", "growth_bytes_per_cycle", "threshold_bytes", "sites",
            "threads", "tasks", "fds", "objects", "samples", "seconds_per_cycle"} <= set(doc)
    assert (doc["verdict"], doc["cycles"], doc["warmup"], doc["threshold_bytes"]) == ("leak", 3, 2, 1024)
    assert doc["kinds"] == {"memory": "leak", "native": "clean", "threads": "clean", "tasks": "clean",
                            "fds": "clean", "unclosed": "clean", "hooks": "clean"}
    assert {"where", "bytes_per_cycle", "count_per_cycle"} <= set(doc["sites"][0])
    assert doc["sites"][0]["where"] == where(module, "alloc")
    assert [s["cycle"] for s in doc["samples"]] == list(range(6))
    assert [s["warmup"] for s in doc["samples"]] == [True, True, False, False, False, False]
    assert {"cycle", "traced_bytes", "threads", "tasks", "fds"} <= set(doc["samples"][0])
    assert doc["seconds_per_cycle"] > 0
    for kind in ("threads", "tasks"):
        assert doc[kind] == []


def test_text_summary_names_the_verdict_growth_and_sites(leaky: Loader) -> None:
    registry, module = leaky("memory_leak")
    text = check(registry, cycles=3, warmup=1).to_text()
    assert text.startswith("daybreak leaks leaky-memory: leak: 3 cycles after 1 warm-up")
    assert "memory   leak" in text and "KiB per cycle" in text
    assert where(module, "alloc") in text
    assert "threads  clean" in text


def test_junit_has_a_testcase_per_kind_and_fails_the_leaking_one(leaky: Loader, tmp_path: Path) -> None:
    registry, _ = leaky("thread_leak")
    path = tmp_path / "leaks.xml"
    check(registry, cycles=3, warmup=1, threshold=1024 * KIB).write_junit(str(path))
    root = ET.parse(path).getroot()
    (suite,) = root.iter("testsuite")
    assert suite.get("name") == "daybreak.leaks"
    assert (suite.get("tests"), suite.get("failures")) == ("7", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == ["memory", "native", "threads", "tasks", "fds", "unclosed", "hooks"]
    failure = cases["threads"].find("failure")
    assert failure is not None and "poller" in (failure.text or "")
    assert cases["memory"].find("failure") is None


# -- API edges ----------------------------------------------------------------------------------
def test_tracemalloc_is_left_as_it_was_found() -> None:
    registry = Registry("empty")
    assert not tracemalloc.is_tracing()
    check(registry, cycles=3, warmup=0)
    assert not tracemalloc.is_tracing()
    tracemalloc.start(3)
    try:
        report = check(registry, cycles=3, warmup=0)
        assert tracemalloc.is_tracing() and tracemalloc.get_traceback_limit() == 3
        assert report.traceback_limit == 3
    finally:
        tracemalloc.stop()


async def test_check_inside_a_running_loop_says_to_await_acheck() -> None:
    with pytest.raises(UsageError, match=r"await daybreak\.leaks\.acheck"):
        check(Registry("empty"))


@pytest.mark.parametrize(("options", "message"), [
    ({"cycles": 2}, r"cycles=2; expected an int >= 3"),
    ({"warmup": -1}, "warmup=-1"),
    ({"threshold": -5}, "threshold=-5"),
    ({"traceback_limit": 0}, "traceback_limit=0"),
])
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check(Registry("empty"), **options)


def test_a_started_system_is_not_a_registry() -> None:
    registry = Registry("empty")
    with pytest.raises(TypeError, match="not a started system"):
        check(registry.start())  # type: ignore[arg-type]


def test_a_failed_start_says_in_which_cycle() -> None:
    registry = Registry("flaky")
    starts = itertools.count(1)

    @registry.component
    async def conn() -> Conn:
        if next(starts) == 3:
            raise ConnectionRefusedError("no database")
        return Conn()

    with pytest.raises(StartupError) as caught:
        check(registry, cycles=3, warmup=1)
    assert "daybreak.leaks: the start failed in cycle 3 of 4" in caught.value.__notes__


def test_exercise_and_overrides_run_in_every_cycle() -> None:
    registry = Registry("exercised")

    @registry.component
    async def db() -> AsyncIterator[Db]:
        yield Db()

    seen: list[type] = []

    async def exercise(system: object) -> None:
        seen.append(type(system[Db]))  # type: ignore[index]

    report = check(registry, cycles=3, warmup=1, overrides={Db: FakeDb()}, exercise=exercise)
    assert report.verdict == "clean"
    assert seen == [FakeDb] * 4


# -- daybreak.testing ---------------------------------------------------------------------------
def test_assert_no_leaks_passes_clean_and_fails_with_the_summary(leaky: Loader) -> None:
    clean, _ = leaky("clean_service")
    assert assert_no_leaks(clean, cycles=4, warmup=2).verdict == "clean"
    registry, module = leaky("memory_leak")
    with pytest.raises(AssertionError) as caught:
        assert_no_leaks(registry, cycles=3, warmup=1)
    assert where(module, "alloc") in str(caught.value)
    assert "memory   leak" in str(caught.value)


async def test_assert_no_leaks_async_fails_on_a_task_leak(leaky: Loader) -> None:
    registry, module = leaky("task_leak")
    pending = module._tasks
    try:
        with pytest.raises(AssertionError, match="_beat"):
            await assert_no_leaks_async(registry, cycles=3, warmup=1, max_growth=1024 * KIB)
    finally:
        tasks = list(pending)
        module.release()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- command line -------------------------------------------------------------------------------
def test_cli_json_is_the_report_only_and_exits_1_on_leak(leaky: Loader, capsys: Capture) -> None:
    _, module = leaky("memory_leak")
    code = main(["leaks", spec("memory_leak"), "--json", "--cycles", "3", "--warmup", "1"])
    out = capsys.readouterr().out
    assert code == 1
    doc = json.loads(out)
    assert doc["verdict"] == "leak"
    assert doc["sites"][0]["where"] == where(module, "alloc")


def test_cli_text_and_junit_for_a_clean_target(leaky: Loader, capsys: Capture, tmp_path: Path) -> None:
    leaky("clean_service")
    path = tmp_path / "junit.xml"
    code = main(["leaks", spec("clean_service"), "--cycles", "3", "--warmup", "1",
                 "--threshold", "64KiB", "--junit", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "daybreak leaks clean-service: clean" in out
    assert "threshold 64.0 KiB" in out
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"


def test_cli_target_error_exits_2_with_one_line(capsys: Capture) -> None:
    code = main(["leaks", str(LEAKY / "no_such_file.py") + ":registry"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "no such file" in err


def test_cli_failed_start_exits_1(tmp_path: Path, capsys: Capture) -> None:
    target = tmp_path / "broken_target.py"
    target.write_text(
        "from daybreak import Registry\n"
        "registry = Registry('broken')\n"
        "class Db: ...\n"
        "@registry.component\n"
        "async def db() -> Db:\n"
        "    raise ConnectionRefusedError('no database')\n", encoding="utf-8")
    code = main(["leaks", f"{target}:registry", "--cycles", "3", "--warmup", "0"])
    out = capsys.readouterr().out  # the report, whose verdict is error
    assert code == 1
    assert "error: the start failed in cycle 1 of 3" in out


def test_cli_refuses_fewer_than_three_cycles(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["leaks", spec("clean_service"), "--cycles", "2"])
    assert caught.value.code == 2
    assert "expected an integer >= 3" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "size"), [("1024", 1024), ("64KiB", 65536), ("1k", 1024),
                                            ("2MiB", 2 * 1024 * 1024), ("0.5 kb", 512)])
def test_parse_size(text: str, size: float) -> None:
    assert parse_size(text) == size


def test_importing_has_no_side_effects() -> None:
    code = (
        "import os, sys, threading, tracemalloc\n"
        "fds = sorted(os.listdir('/proc/self/fd')) if os.path.isdir('/proc/self/fd') else []\n"
        "import daybreak.leaks, daybreak.testing\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert not tracemalloc.is_tracing()\n"
        "after = sorted(os.listdir('/proc/self/fd')) if fds else []\n"
        "assert len(after) == len(fds), (fds, after)\n"
        "assert 'pytest' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
