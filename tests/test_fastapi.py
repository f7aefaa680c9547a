"""daybreak.fastapi against a real uvicorn server on 127.0.0.1, probed with httpx."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from fastapi import FastAPI  # noqa: E402

import daybreak.system  # noqa: E402
from _servers import poll, poll_until, run_child, serve  # noqa: E402
from daybreak import Disabled, Registry  # noqa: E402
from daybreak.fastapi import health_router, lifespan, metrics_route  # noqa: E402
from daybreak.monitor import MemoryMonitor, memory_monitor  # noqa: E402


def make_app(registry: Registry, **options: Any) -> FastAPI:
    router_options = options.pop("router", {})
    app = FastAPI(lifespan=lifespan(registry, **options))
    app.include_router(health_router(**router_options))
    return app


class Slow:
    pass


class Base:
    pass


class Extra:
    pass


class A:
    pass


class B:
    pass


class C:
    pass


# -- lifespan ------------------------------------------------------------------


async def test_background_start_is_live_at_once_and_ready_when_up() -> None:
    """With background=True the server answers during a slow start; ready turns 503 -> 200."""
    registry = Registry("slow")
    gate = asyncio.Event()

    @registry.component
    async def slow() -> Slow:
        await gate.wait()
        return Slow()

    async with serve(make_app(registry, background=True)) as srv:
        live = await srv.client.get("/health/live")
        assert live.status_code == 200
        assert live.json() == {"status": "alive"}
        ready = await srv.client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "starting"
        startup = await srv.client.get("/health/startup")
        assert startup.status_code == 503
        assert startup.json() == {"name": "slow", "status": "starting", "phase": None}
        gate.set()

        async def is_ready() -> httpx.Response | None:
            response = await srv.client.get("/health/ready")
            return response if response.status_code == 200 else None

        ready = await poll(is_ready)
        assert ready.json()["status"] == "ready"
        assert ready.json()["failed"] == []
        startup = await srv.client.get("/health/startup")
        assert startup.status_code == 200
        report = startup.json()
        assert report["status"] == "ready"
        assert [c["name"] for c in report["components"]] == ["slow"]
        assert srv.server.started


async def test_degraded_is_ready_and_names_what_failed() -> None:
    registry = Registry("degraded")

    @registry.component
    def base() -> Base:
        return Base()

    @registry.component(optional=True)
    def extra() -> Extra:
        raise RuntimeError("the extra service is down")

    async with serve(make_app(registry)) as srv:
        ready = await srv.client.get("/health/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "degraded"
        assert [f["name"] for f in body["failed"]] == ["extra"]
        assert body["failed"][0]["critical"] is False
        assert "the extra service is down" in body["failed"][0]["error"]
        assert (await srv.client.get("/health/live")).status_code == 200


async def test_disabled_component_leaves_readiness_ready() -> None:
    registry = Registry("disabled")

    @registry.component
    def base() -> Base:
        return Base()

    @registry.component(optional=True)
    def extra() -> Extra:
        raise Disabled("EXTRA_URL is not set")

    async with serve(make_app(registry)) as srv:
        ready = await srv.client.get("/health/ready")
        assert (ready.status_code, ready.json()["status"], ready.json()["failed"]) == (200, "ready", [])


async def test_ready_reruns_checks_at_most_once_per_interval() -> None:
    """A probe storm costs one run of the checks; a failing critical check turns ready to 503."""
    registry = Registry("checked")
    state = {"calls": 0, "healthy": True}

    @registry.component
    def base() -> Base:
        return Base()

    @base.check
    async def base_ping(b: Base) -> None:
        state["calls"] += 1
        await asyncio.sleep(0.05)
        if not state["healthy"]:
            raise ConnectionError("base is unreachable")

    app = make_app(registry, router={"check_interval": 3600})
    app.include_router(health_router("/always", check_interval=0))  # its own cache: runs every time
    async with serve(app) as srv:
        assert state["calls"] == 1  # at start
        responses = await asyncio.gather(*(srv.client.get("/health/ready") for _ in range(20)))
        assert {r.status_code for r in responses} == {200}
        assert state["calls"] == 2
        await srv.client.get("/health/ready")
        assert state["calls"] == 2  # cached
        state["healthy"] = False
        ready = await srv.client.get("/always/ready")
        assert state["calls"] == 3
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unhealthy"
        assert body["failed"][0]["name"] == "base_ping"
        assert body["failed"][0]["critical"] is True
        assert "base is unreachable" in body["failed"][0]["error"]
        assert (await srv.client.get("/health/ready")).status_code == 200  # its cache still holds
        assert (await srv.client.get("/health/live")).status_code == 200  # never the checks


async def test_failed_critical_start_exits_the_server_with_a_redacted_error(
        caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry("broken")

    @registry.component
    def base() -> Base:
        raise ConnectionError("cannot reach postgresql://app:hunter2-secret@127.0.0.1:1/app")

    caplog.set_level(logging.ERROR)
    async with serve(make_app(registry), expect_started=False) as srv:
        code = await asyncio.wait_for(srv.task, 10)
    assert code == 3  # uvicorn's STARTUP_FAILURE
    assert not srv.server.started
    assert "StartupError" in caplog.text
    assert "critical component 'base' failed" in caplog.text
    assert "postgresql://app:***@127.0.0.1:1/app" in caplog.text
    assert "hunter2" not in caplog.text


async def test_failed_background_start_turns_probes_503_and_calls_on_failure(
        caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry("late-failure")
    failures: list[BaseException] = []
    gate = asyncio.Event()

    @registry.component
    async def base() -> Base:
        await gate.wait()
        raise ConnectionError("redis://:hunter2-secret@127.0.0.1:1 refused")

    app = make_app(registry, background=True, on_failure=failures.append)
    async with serve(app) as srv:
        assert (await srv.client.get("/health/live")).status_code == 200
        gate.set()

        async def failed() -> bool:
            return bool(failures)

        await poll(failed)
        live = await srv.client.get("/health/live")
        ready = await srv.client.get("/health/ready")
        startup = await srv.client.get("/health/startup")
        assert (live.status_code, ready.status_code, startup.status_code) == (503, 503, 503)
        assert live.json()["status"] == ready.json()["status"] == "failed"
        assert "critical component 'base' failed" in live.json()["error"]
        for response in (live, ready, startup):
            assert "hunter2" not in response.text
        assert type(failures[0]).__name__ == "StartupError"
        assert app.state.daybreak.status == "failed"
        # A handler is there (pytest's): the failure goes to the logger, not to stderr.
        assert "'late-failure' failed to start in the background; calling its on_failure hook" in caplog.text
        assert "hunter2" not in caplog.text
    # Until the process exits: still 503 once the lifespan has shut down.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app") as client:
        assert (await client.get("/health/live")).status_code == 503


@pytest.mark.parametrize("factory", ["fastapi_app", "starlette_app"])
def test_failed_background_start_exits_uvicorn_with_status_3_and_says_why_on_stderr(factory: str) -> None:
    """Nothing configured logging: the failure still reaches stderr, and the exit status is not 0."""
    done = run_child([sys.executable, "-m", "uvicorn", "--factory", f"failing:{factory}",
                      "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"])
    assert done.returncode == 3, done.stderr
    assert "daybreak: 'late-failure' failed to start in the background; shutting the server down " \
           "(exit status 3)" in done.stderr
    assert "critical component 'base' failed" in done.stderr
    assert "postgresql://app:***@127.0.0.1:1/app" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


@pytest.mark.slow
def test_failed_background_start_stops_gunicorn_instead_of_rebooting_workers() -> None:
    """Under gunicorn the worker exits 3 ("failed to boot"): gunicorn stops, the pod restarts."""
    pytest.importorskip("gunicorn")
    done = run_child([sys.executable, "-W", "ignore::DeprecationWarning", "-m", "gunicorn",
                      "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "--bind", "127.0.0.1:0", "--no-control-socket",
                      "failing:fastapi_app()"])
    # gunicorn halts with 3, or with 1 when two workers fail at once (its halt raises twice).
    assert done.returncode in (1, 3), done.stderr
    assert "exited with code 3" in done.stderr
    assert "Worker failed to boot" in done.stderr
    assert done.stderr.count("failed to start in the background") <= 2  # one per worker, no reboots
    assert "hunter2" not in done.stderr + done.stdout


async def test_shutdown_stops_components_in_reverse_order() -> None:
    registry = Registry("ordered")
    events: list[str] = []

    @registry.component
    async def a() -> AsyncIterator[A]:
        events.append("start a")
        yield A()
        events.append("stop a")

    @registry.component
    async def b(a: A) -> AsyncIterator[B]:
        events.append("start b")
        yield B()
        events.append("stop b")

    @registry.component
    async def c(b: B) -> AsyncIterator[C]:
        events.append("start c")
        yield C()
        events.append("stop c")

    app = make_app(registry)
    async with serve(app) as srv:
        assert events == ["start a", "start b", "start c"]
        assert (await srv.client.get("/health/ready")).status_code == 200
        assert await srv.stop() == 0
    assert events == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert app.state.daybreak.status == "stopped"


async def test_shutdown_during_a_background_start_rolls_it_back() -> None:
    """The background task is owned: shutting down cancels it, and what started is stopped."""
    registry = Registry("interrupted")
    events: list[str] = []

    @registry.component
    async def base() -> AsyncIterator[Base]:
        events.append("start base")
        yield Base()
        events.append("stop base")

    @registry.component
    async def slow(base: Base) -> Slow:
        await asyncio.sleep(30)
        return Slow()

    app = make_app(registry, background=True)
    async with serve(app) as srv:
        async def base_started() -> bool:
            return events == ["start base"]

        await poll(base_started)
        assert await srv.stop() == 0
    assert events == ["start base", "stop base"]
    assert app.state.daybreak.status == "failed"  # cancelled start
    assert [t for t in asyncio.all_tasks() if "daybreak: start" in t.get_name()] == []


# -- stacks --------------------------------------------------------------------


async def test_stacks_need_the_token_unless_loopback_is_trusted_and_not_forwarded() -> None:
    registry = Registry("stacks")

    @registry.component
    def base() -> Base:
        return Base()

    app = FastAPI(lifespan=lifespan(registry))
    app.include_router(health_router("/off"))
    app.include_router(health_router("/token", stacks=True, token="s3cret-token"))
    app.include_router(health_router("/local", stacks=True, allow_loopback=True))
    bearer = {"Authorization": "Bearer s3cret-token"}
    # Behind a load balancer: uvicorn --proxy-headers --forwarded-allow-ips='*' rewrites the
    # client address from X-Forwarded-For, so a stranger can claim to be 127.0.0.1.
    spoofed = {"X-Forwarded-For": "127.0.0.1"}
    async with serve(app, forwarded_allow_ips="*") as srv:
        assert (await srv.client.get("/off/stacks")).status_code == 404

        assert (await srv.client.get("/token/stacks", headers=spoofed)).status_code == 401
        anonymous = await srv.client.get("/token/stacks")  # loopback alone is not enough
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert (await srv.client.get("/token/stacks", headers={"Authorization": "Bearer nope"})).status_code == 401
        assert (await srv.client.get("/token/stacks", headers={"Authorization": "s3cret-token"})).status_code == 401
        in_url = await srv.client.get("/token/stacks?token=s3cret-token")
        assert in_url.status_code == 400
        assert "Authorization: Bearer" in in_url.json()["error"]
        assert (await srv.client.get("/token/stacks?token=s3cret-token", headers=bearer)).status_code == 400
        allowed = await srv.client.get("/token/stacks", headers={**bearer, "X-Forwarded-For": "203.0.113.7"})
        assert allowed.status_code == 200
        body = allowed.json()
        assert any(t["name"] == "MainThread" for t in body["threads"])
        assert body["tasks"] and all("frames" in t for t in body["tasks"])

        assert (await srv.client.get("/local/stacks")).status_code == 200  # the socket peer is loopback
        for forwarded in (spoofed, {"Forwarded": "for=127.0.0.1"}, {"X-Real-IP": "127.0.0.1"},
                          {"X-Forwarded-For": "203.0.113.7"}, {"True-Client-IP": "127.0.0.1"},
                          {"CF-Connecting-IP": "127.0.0.1"}, {"X-Client-IP": "::1"}):
            denied = await srv.client.get("/local/stacks", headers=forwarded)
            assert denied.status_code == 403, forwarded
            assert "not through a proxy" in denied.json()["error"]
        schema = (await srv.client.get("/openapi.json")).json()
        assert not any(path.endswith("/stacks") for path in schema["paths"])


def test_stacks_without_a_token_or_loopback_trust_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match=r"stacks=True serves every thread's stack; pass token="):
        health_router(stacks=True)
    with pytest.raises(ValueError, match="empty bearer token"):
        health_router(stacks=True, token="")


def test_stacks_compare_the_token_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from daybreak import _health

    compared: list[tuple[bytes, bytes]] = []
    real = _health.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(_health.hmac, "compare_digest", spy)
    probes = _health.Probes(stacks=True, token="s3cret", allow_loopback=False, check_interval=1)
    assert probes.stacks_denied(authorization="Bearer s3cret", query=(), peer="203.0.113.7", headers=()) is None
    assert compared == [(b"s3cret", b"s3cret")]


async def test_startup_report_is_rendered_once_after_start_and_once_after_stop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """/health/startup is open to every prober: it must not build the report per request."""
    registry = Registry("rendered")

    @registry.component
    def base() -> Base:
        return Base()

    renders: list[str] = []
    real = daybreak.system.System.report

    def counting(self: daybreak.system.System) -> Any:
        renders.append(self.state.status)
        return real(self)

    monkeypatch.setattr(daybreak.system.System, "report", counting)
    app = make_app(registry)
    async with serve(app) as srv:
        for _ in range(10):
            response = await srv.client.get("/health/startup")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.json()["status"] == "ready"
    assert renders == ["ready"]
    # The server stopped; the app still answers in-process, with the report of the stop.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app") as client:
        for _ in range(3):
            stopped = await client.get("/health/startup")
            assert (stopped.status_code, stopped.json()["status"]) == (200, "stopped")
    assert renders == ["ready", "stopped"]


async def test_startup_report_of_a_large_plan_renders_once_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Concurrent /health/startup requests share one render, which leaves the loop free to serve."""
    registry = Registry("large")
    for i in range(1000):
        provided = type(f"T{i}", (), {})
        registry.add(provided, name=f"c{i}", provides=provided, blocking=False)
    began, release = threading.Event(), threading.Event()
    outcome: list[str] = []
    real = daybreak.system.System.report

    def held(self: daybreak.system.System) -> Any:
        began.set()
        # On the loop this wait would hold every request, /health/live's included, until the deadline.
        outcome.append("released" if release.wait(timeout=20) else "the loop was blocked")
        return real(self)

    monkeypatch.setattr(daybreak.system.System, "report", held)
    async with serve(make_app(registry)) as srv:
        requests = [asyncio.ensure_future(srv.client.get("/health/startup")) for _ in range(20)]
        await poll_until(began.is_set, what="the report to be rendered")
        live = await srv.client.get("/health/live")  # answered while the render runs
        release.set()
        responses = await asyncio.gather(*requests)
    assert live.status_code == 200
    assert outcome == ["released"]  # one render for 20 requests, not on the loop
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert len(responses[0].json()["components"]) == 1000


# -- memory and metrics ------------------------------------------------------------


async def test_health_memory_serves_the_memory_monitor() -> None:
    registry = Registry("monitored")

    @registry.component
    def base() -> Base:
        return Base()

    registry.add(memory_monitor(interval=0.02), name="memory", optional=True)
    app = make_app(registry)
    async with serve(app) as srv:
        response = await srv.client.get("/health/memory")
        assert response.status_code == 200
        body = response.json()
        assert body["rss_bytes"] > 1024 * 1024
        assert body["samples"] >= 1
        assert (body["interval_s"], body["warnings"], body["running"], body["sites"]) == (0.02, 0, True, [])
        assert set(body) >= {"growth_bytes_per_s", "window", "window_s", "threshold_bytes_per_min",
                             "last_warning", "top_sites", "errors"}
        monitor = app.state.daybreak[MemoryMonitor]
    assert not monitor.running  # stopped with the server


async def test_health_memory_is_404_without_a_monitor_and_says_why() -> None:
    bare = Registry("bare")

    @bare.component
    def base() -> Base:
        return Base()

    switched_off = Registry("switched-off")

    @switched_off.component(optional=True)
    def memory() -> MemoryMonitor:
        raise Disabled("MEMORY_MONITOR is not enabled")

    async with serve(make_app(bare)) as srv:
        missing = await srv.client.get("/health/memory")
    assert missing.status_code == 404
    assert missing.json()["status"] == "absent"
    assert ("no component of 'bare' provides daybreak.monitor.MemoryMonitor; add "
            "registry.add(daybreak.monitor.memory_monitor(), optional=True)") in missing.json()["error"]
    async with serve(make_app(switched_off)) as srv:
        disabled = await srv.client.get("/health/memory")
    assert disabled.status_code == 404
    assert disabled.json() == {
        "status": "disabled",
        "error": "the memory monitor (component 'memory') is disabled: MEMORY_MONITOR is not enabled"}


async def test_health_memory_is_503_while_the_monitor_is_starting() -> None:
    registry = Registry("later")
    gate = asyncio.Event()

    @registry.component
    async def slow() -> Slow:
        await gate.wait()
        return Slow()

    @registry.component
    async def memory(slow: Slow) -> AsyncIterator[MemoryMonitor]:
        async with MemoryMonitor(interval=0.02) as monitor:
            yield monitor

    async with serve(make_app(registry, background=True)) as srv:
        pending = await srv.client.get("/health/memory")
        assert pending.status_code == 503
        assert pending.json()["status"] == "pending"
        gate.set()

        async def up() -> httpx.Response | None:
            response = await srv.client.get("/health/memory")
            return response if response.status_code == 200 else None

        assert (await poll(up)).json()["rss_bytes"] > 0


async def test_metrics_route_serves_prometheus_metrics_over_uvicorn() -> None:
    """metrics_route(app) in one line; the documented mount of metrics_app() serves the same."""
    pytest.importorskip("prometheus_client")
    from daybreak.prometheus import metrics_app

    registry = Registry("metered")

    @registry.component
    def base() -> Base:
        return Base()

    @registry.component(optional=True)
    def extra() -> Extra:
        raise RuntimeError("extra is down")

    registry.add(memory_monitor(interval=0.02), name="memory", optional=True)
    app = make_app(registry)
    metrics_route(app)
    app.mount("/mounted", metrics_app(system=lambda: app.state.daybreak))
    async with serve(app) as srv:
        response = await srv.client.get("/metrics")
        assert response.status_code == 200  # at /metrics itself: no redirect to /metrics/
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert 'daybreak_system_status{status="degraded",system="metered"} 1.0' in text
        assert 'daybreak_system_status{status="ready",system="metered"} 0.0' in text
        assert 'daybreak_component_status{component="base",status="started",system="metered"} 1.0' in text
        assert 'daybreak_component_status{component="extra",status="failed",system="metered"} 1.0' in text
        assert re.search(r'^daybreak_start_seconds\{system="metered"\} \d', text, re.M)
        assert re.search(r'^daybreak_memory_rss_bytes\{system="metered"\} [1-9]', text, re.M)
        assert 'daybreak_memory_warnings_total{system="metered"} 0.0' in text
        assert (await srv.client.post("/metrics")).status_code == 405
        mounted = await srv.client.get("/mounted/")
        assert mounted.status_code == 200
        assert 'daybreak_system_status{status="degraded",system="metered"} 1.0' in mounted.text
        schema = (await srv.client.get("/openapi.json")).json()
        assert "/metrics" not in schema["paths"]
        assert "/health/memory" in schema["paths"]


# -- packaging -----------------------------------------------------------------


def test_import_daybreak_does_not_import_fastapi() -> None:
    """Nor does daybreak.fastapi import prometheus_client (only metrics_route does, when called)."""
    code = ("import sys, json, daybreak; daybreak.Registry; daybreak.System; "
            "print(json.dumps(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('fastapi', 'starlette') or m == 'daybreak.fastapi'))); "
            "import daybreak.fastapi; "
            "print(json.dumps(sorted(m for m in sys.modules "
            "if m.split('.')[0] == 'prometheus_client' or m == 'daybreak.prometheus')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=30)
    assert [json.loads(line) for line in out.stdout.splitlines()] == [[], []]
