"""daybreak.fastapi against a real uvicorn server on 127.0.0.1, probed with httpx."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from fastapi import FastAPI, WebSocket  # noqa: E402
from websockets.asyncio.client import connect as ws_connect  # noqa: E402

from daybreak import Disabled, Registry  # noqa: E402
from daybreak.fastapi import (  # noqa: E402
    Inject,
    component,
    health_router,
    lifespan,
    metrics_route,
    provider,
)
from daybreak.monitor import MemoryMonitor, memory_monitor  # noqa: E402


@dataclass
class Running:
    server: Any
    task: asyncio.Task[int | str | None]
    port: int
    client: httpx.AsyncClient

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self, timeout: float = 10.0) -> int | str | None:
        self.server.should_exit = True
        return await asyncio.wait_for(asyncio.shield(self.task), timeout)


async def _serve(server: Any, sock: socket.socket) -> int | str | None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn's way to say "startup failed"
        return exc.code
    return 0


@asynccontextmanager
async def serve(app: FastAPI, *, expect_started: bool = True) -> AsyncIterator[Running]:
    """Run ``app`` under uvicorn on a free loopback port, as a task of this loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None,
                            log_level="warning", proxy_headers=True,
                            forwarded_allow_ips="127.0.0.1", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(_serve(server, sock))
    deadline = time.monotonic() + 10
    while not server.started and not task.done():
        assert time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.01)
    if expect_started:
        assert server.started, f"uvicorn exited: {task.result()!r}"
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5)
    running = Running(server, task, port, client)
    try:
        yield running
    finally:
        await client.aclose()
        if not task.done():
            await running.stop()
        sock.close()


async def poll(check: Any, timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Call ``check()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(interval)


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


@pytest.fixture
def sigterm() -> Iterator[list[int]]:
    """Record SIGTERM instead of dying of it: uvicorn re-raises it after a graceful exit."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- lifespan ------------------------------------------------------------------


async def test_background_start_is_live_at_once_and_ready_when_up() -> None:
    """With background=True the server answers during a slow start; ready turns 503 -> 200."""
    registry = Registry("slow")

    @registry.component
    async def slow() -> Slow:
        await asyncio.sleep(1.0)
        return Slow()

    t0 = time.monotonic()
    async with serve(make_app(registry, background=True)) as srv:
        assert time.monotonic() - t0 < 0.8, "the server waited for the start"
        live = await srv.client.get("/health/live")
        assert live.status_code == 200
        assert live.json() == {"status": "alive"}
        ready = await srv.client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "starting"
        assert (await srv.client.get("/health/startup")).status_code == 503

        async def is_ready() -> httpx.Response | None:
            response = await srv.client.get("/health/ready")
            return response if response.status_code == 200 else None

        ready = await poll(is_ready)
        assert time.monotonic() - t0 >= 0.9
        assert ready.json()["status"] == "ready"
        assert ready.json()["failed"] == []
        startup = await srv.client.get("/health/startup")
        assert startup.status_code == 200
        report = startup.json()
        assert report["status"] == "ready"
        assert [c["name"] for c in report["components"]] == ["slow"]
        assert report["components"][0]["duration_s"] >= 0.9
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

    async with serve(make_app(registry, router={"check_interval": 0.3})) as srv:
        assert state["calls"] == 1  # at start
        responses = await asyncio.gather(*(srv.client.get("/health/ready") for _ in range(20)))
        assert {r.status_code for r in responses} == {200}
        assert state["calls"] == 2
        await srv.client.get("/health/ready")
        assert state["calls"] == 2  # cached
        state["healthy"] = False
        await asyncio.sleep(0.35)
        ready = await srv.client.get("/health/ready")
        assert state["calls"] == 3
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unhealthy"
        assert body["failed"][0]["name"] == "base_ping"
        assert body["failed"][0]["critical"] is True
        assert "base is unreachable" in body["failed"][0]["error"]
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


async def test_failed_background_start_turns_probes_503_and_calls_on_failure() -> None:
    registry = Registry("late-failure")
    failures: list[BaseException] = []

    @registry.component
    async def base() -> Base:
        await asyncio.sleep(0.2)
        raise ConnectionError("redis://:hunter2-secret@127.0.0.1:1 refused")

    app = make_app(registry, background=True, on_failure=failures.append)
    async with serve(app) as srv:
        assert (await srv.client.get("/health/live")).status_code == 200

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


async def test_failed_background_start_shuts_the_server_down(
        sigterm: list[int], caplog: pytest.LogCaptureFixture) -> None:
    """The default on_failure sends SIGTERM; uvicorn shuts down gracefully."""
    registry = Registry("late-failure")

    @registry.component
    async def base() -> Base:
        await asyncio.sleep(0.2)
        raise RuntimeError("cannot start")

    caplog.set_level(logging.ERROR, logger="daybreak.fastapi")
    async with serve(make_app(registry, background=True)) as srv:
        code = await asyncio.wait_for(asyncio.shield(srv.task), 10)
    assert code == 0
    assert sigterm == [signal.SIGTERM]  # handled by uvicorn, then re-raised to the previous handler
    assert "failed to start in the background" in caplog.text


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
        t0 = time.monotonic()
        assert await srv.stop() == 0
        assert time.monotonic() - t0 < 3
    assert events == ["start base", "stop base"]
    assert app.state.daybreak.status == "failed"  # cancelled start
    assert [t for t in asyncio.all_tasks() if "daybreak: start" in t.get_name()] == []


# -- route injection -----------------------------------------------------------


class Greeter:
    def __init__(self, word: str) -> None:
        self.word = word


class Missing:
    pass


def injection_app() -> FastAPI:
    registry = Registry("injection")

    @registry.component
    def greeter() -> Greeter:
        return Greeter("hello")

    @registry.component(optional=True)
    def missing() -> Missing:
        raise Disabled("MISSING_URL is not set")

    app = make_app(registry)

    @app.get("/annotated")
    async def annotated(greeter: Annotated[Greeter, Inject]) -> dict[str, str]:
        return {"word": greeter.word}

    @app.get("/depends")
    async def depends(greeter: Greeter = component(Greeter)) -> dict[str, str]:  # noqa: B008
        return {"word": greeter.word}

    @app.get("/optional")
    async def optional(missing: Annotated[Missing | None, Inject]) -> dict[str, bool]:
        return {"missing": missing is None}

    @app.get("/required")
    async def required(missing: Annotated[Missing, Inject]) -> dict[str, str]:
        raise AssertionError("unreachable")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, greeter: Annotated[Greeter, Inject]) -> None:
        await websocket.accept()
        await websocket.send_text(greeter.word)
        await websocket.close()

    return app


async def test_route_injection_and_dependency_overrides() -> None:
    app = injection_app()
    assert provider(Greeter) is provider(Greeter)
    async with serve(app) as srv:
        assert (await srv.client.get("/annotated")).json() == {"word": "hello"}
        assert (await srv.client.get("/depends")).json() == {"word": "hello"}
        assert (await srv.client.get("/optional")).json() == {"missing": True}
        required = await srv.client.get("/required")
        assert required.status_code == 503
        assert "disabled" in required.json()["detail"]
        async with ws_connect(f"ws://127.0.0.1:{srv.port}/ws", proxy=None) as websocket:
            assert await websocket.recv() == "hello"

        app.dependency_overrides[provider(Greeter)] = lambda: Greeter("fake")
        assert (await srv.client.get("/annotated")).json() == {"word": "fake"}
        assert (await srv.client.get("/depends")).json() == {"word": "fake"}
        async with ws_connect(f"ws://127.0.0.1:{srv.port}/ws", proxy=None) as websocket:
            assert await websocket.recv() == "fake"
        app.dependency_overrides.clear()
        assert (await srv.client.get("/annotated")).json() == {"word": "hello"}


# -- stacks --------------------------------------------------------------------


async def test_stacks_endpoint_is_off_by_default_and_guarded_when_on() -> None:
    registry = Registry("stacks")

    @registry.component
    def base() -> Base:
        return Base()

    app = FastAPI(lifespan=lifespan(registry))
    app.include_router(health_router("/off"))
    app.include_router(health_router("/token", stacks=True, token="s3cret-token"))
    app.include_router(health_router("/local", stacks=True))
    remote = {"X-Forwarded-For": "203.0.113.7"}  # uvicorn trusts it from 127.0.0.1
    async with serve(app) as srv:
        assert (await srv.client.get("/off/stacks")).status_code == 404

        local = await srv.client.get("/token/stacks")
        assert local.status_code == 200
        body = local.json()
        assert any(t["name"] == "MainThread" for t in body["threads"])
        assert body["tasks"] and all("frames" in t for t in body["tasks"])

        denied = await srv.client.get("/token/stacks", headers=remote)
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"] == "Bearer"
        wrong = await srv.client.get("/token/stacks",
                                     headers={**remote, "Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = await srv.client.get("/token/stacks",
                                       headers={**remote, "Authorization": "Bearer s3cret-token"})
        assert allowed.status_code == 200
        assert allowed.json()["threads"]

        assert (await srv.client.get("/local/stacks")).status_code == 200
        assert (await srv.client.get("/local/stacks", headers=remote)).status_code == 403
        schema = (await srv.client.get("/openapi.json")).json()
        assert not any(path.endswith("/stacks") for path in schema["paths"])


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

    @registry.component
    async def slow() -> Slow:
        await asyncio.sleep(0.3)
        return Slow()

    @registry.component
    async def memory(slow: Slow) -> AsyncIterator[MemoryMonitor]:
        async with MemoryMonitor(interval=0.02) as monitor:
            yield monitor

    async with serve(make_app(registry, background=True)) as srv:
        pending = await srv.client.get("/health/memory")
        assert pending.status_code == 503
        assert pending.json()["status"] == "pending"

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
