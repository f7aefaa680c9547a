"""ASGI apps as targets: daybreak drives their lifespan itself (issue 10, part 2).

The apps in fixtures/asgi/apps.py are written as teams write them today, with
hand-written lifespans and no daybreak in them (except ``daybreak_app``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from _markers import marker_line
from daybreak._run import start_once
from daybreak._target import TargetError, load_target
from daybreak.asgi import LifespanFailed, is_asgi_app, registry_of
from fixtures.asgi import apps, litestar_app

APPS = Path(apps.__file__)


def target(name: str) -> str:
    return f"{APPS}:{name}"


def daybreak(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daybreak.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=APPS.parent)


async def start_and_stop(app: Any, name: str, **options: Any) -> dict[str, Any]:
    return await start_once(registry_of(app, name=name, **options))


@pytest.fixture(autouse=True)
def _events() -> None:
    apps.EVENTS.clear()
    litestar_app.EVENTS.clear()


class TestLifespanAsOneStep:
    @pytest.mark.parametrize(("name", "events"), [
        ("starlette_app", ["starlette up", "starlette down"]),
        ("fastapi_app", ["fastapi up", "fastapi down"]),
        # FastAPI 0.165 still runs on_startup/on_shutdown (Starlette 1.x dropped them; FastAPI kept them)
        ("old_style_app", ["old up", "old down"]),
    ])
    async def test_starts_and_stops_the_app_in_one_step_named_after_it(self, name: str, events: list[str]) -> None:
        report = await start_and_stop(getattr(apps, name), name)
        assert events == apps.EVENTS
        assert report["status"] == "stopped" and report["start_status"] == "ready"
        assert [c["name"] for c in report["components"]] == [name]
        assert not any(report["leftovers"].values())

    def test_the_target_may_name_the_app_or_a_factory_of_it(self) -> None:
        assert [c.name for c in load_target(target("fastapi_app")).components] == ["fastapi_app"]
        assert [c.name for c in load_target(target("create_app")).components] == ["create_app"]

    def test_timeout_becomes_the_steps_start_timeout(self) -> None:
        assert load_target(target("fastapi_app"), timeout=2.5).components[0].timeout == 2.5

    async def test_a_failed_startup_is_a_failed_start_with_the_apps_line_redacted(self) -> None:
        report = await start_and_stop(apps.failing_app, "failing")
        error = report["components"][0]["error"]
        assert report["status"] == "failed"
        assert error["type"] == "ConnectionError" and "hunter2" not in json.dumps(report)
        assert error["where"] == marker_line(str(APPS), "failing")

    async def test_startup_failed_without_an_exception_carries_the_apps_message(self) -> None:
        report = await start_and_stop(apps.raw_failing, "raw")
        error = report["components"][0]["error"]
        assert error["type"] == LifespanFailed.__name__
        assert error["message"] == "lifespan.startup.failed: redis://:***@cache:6379 refused"

    async def test_a_hang_is_reported_with_the_stuck_line_and_the_await_chain(self) -> None:
        report = await start_and_stop(apps.hanging_app, "hanging", timeout=0.5)
        component = report["components"][0]
        assert apps.HANG_ENTERED.is_set()
        assert component["status"] == "failed"
        assert component["hang"]["where"] == marker_line(str(APPS), "hanging")
        functions = [f["function"] for f in component["hang"]["tasks"][0]["frames"]]
        assert "hanging_lifespan" in functions and "lifespan" in functions  # Starlette's frames too

    async def test_a_loop_block_names_the_line_and_the_app(self) -> None:
        report = await start_and_stop(apps.blocking_app, "blocking")
        [block] = [b for b in report["loop_blocks"] if b["where"] == marker_line(str(APPS), "blocking")]
        assert block["component"] == "blocking"

    async def test_a_failed_shutdown_is_the_steps_stop_error(self) -> None:
        report = await start_and_stop(apps.shutdown_failing_app, "flush")
        stop = report["components"][0]["stop"]
        assert stop["status"] == "failed"
        assert stop["error"]["where"] == marker_line(str(APPS), "shutdown-failing")

    def test_an_app_built_on_daybreak_is_checked_through_its_registry(self) -> None:
        registry = load_target(target("daybreak_app"))
        assert registry.name == "notes" and [c.name for c in registry.components] == ["settings"]
        assert registry_of(apps.daybreak_app) is apps.registry

    def test_what_is_and_is_not_an_asgi_app(self) -> None:
        assert is_asgi_app(apps.fastapi_app) and is_asgi_app(apps.http_only)
        assert not is_asgi_app(apps.create_app) and not is_asgi_app(apps.registry)


class TestLitestar:
    """Litestar runs its lifespan in an anyio task group: one task from startup to shutdown."""

    LITESTAR = Path(litestar_app.__file__)

    async def test_starts_and_stops_with_its_lifespans_and_hooks(self) -> None:
        report = await start_and_stop(litestar_app.app, "app")
        assert report["status"] == "stopped" and not any(report["leftovers"].values())
        assert litestar_app.EVENTS == ["litestar up", "on_startup", "litestar down"]

    async def test_a_failure_is_the_apps_own_exception_and_line(self) -> None:
        error = (await start_and_stop(litestar_app.failing_app, "app"))["components"][0]["error"]
        assert error["type"] == "ConnectionError" and "s3cret" not in error["message"]
        assert error["where"] == marker_line(str(self.LITESTAR), "litestar-failing")

    async def test_a_hang_is_reported_at_its_line(self) -> None:
        component = (await start_and_stop(litestar_app.hanging_app, "app", timeout=0.5))["components"][0]
        assert component["hang"]["where"] == marker_line(str(self.LITESTAR), "litestar-hanging")


class TestCommands:
    def test_start_prints_the_timeline_of_the_app(self) -> None:
        result = daybreak("start", target("starlette_app"))
        assert result.returncode == 0, result.stderr
        assert "starlette_app ready" in result.stdout

    def test_a_failed_lifespan_exits_1_redacted(self) -> None:
        result = daybreak("start", target("failing_app"))
        assert result.returncode == 1
        assert "ConnectionError" in result.stdout and "hunter2" not in result.stdout + result.stderr

    def test_an_app_without_lifespan_is_one_line_exit_2(self) -> None:
        result = daybreak("start", target("http_only"))
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"daybreak start: {target('http_only')}: the app does not support the ASGI lifespan protocol: "
            "called with a lifespan scope, it raised AssertionError without asking for lifespan.startup"]

    def test_leaks_finds_the_list_and_the_thread_with_their_lines(self) -> None:
        result = daybreak("leaks", target("leaky_app"), "--cycles", "10", "--json")
        assert result.returncode == 1, result.stderr
        report = json.loads(result.stdout)
        assert report["verdict"] == "leak"
        sites = [s["where"] for s in report["sites"]]
        assert marker_line(str(APPS), "leaky-list") in sites
        assert marker_line(str(APPS), "leaky-thread") in sites  # the Thread each start creates
        assert [t["name"] for t in report["threads"]] == ["poller"]

    def test_a_clean_lifespan_is_clean_over_20_cycles(self) -> None:
        result = daybreak("leaks", target("fastapi_app"), "--cycles", "20", "--json")
        assert result.returncode == 0, result.stdout
        assert json.loads(result.stdout)["verdict"] == "clean"

    def test_doctor_audits_the_apps_package_and_passes(self) -> None:
        result = daybreak("doctor", target("starlette_app"), "--json", "--cycles", "5", "--warmup", "1")
        assert result.returncode == 0, result.stdout
        doc = json.loads(result.stdout)
        assert doc["verdict"] == "pass"
        assert doc["imports"]["verdict"] == "clean" and doc["leaks"]["verdict"] == "clean"

    def test_plan_of_an_app_is_its_one_step(self) -> None:
        result = daybreak("plan", target("fastapi_app"), "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["order"] == ["fastapi_app"]


def test_a_target_that_is_neither_says_what_it_is() -> None:
    with pytest.raises(TargetError, match="is a list, not a daybreak.Registry or an ASGI app"):
        load_target(target("EVENTS"))
