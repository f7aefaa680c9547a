"""The reference service, examples/chat_service: embedded defaults, real services, real faults.

Tests marked ``services`` use the machine's PostgreSQL and Redis
(``CHAT_TEST_DATABASE_URL``, ``CHAT_TEST_REDIS_URL`` override the defaults).
They are skipped when those are unreachable, except under ``CI=true``, where
they fail instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from websockets.asyncio.client import connect as ws_connect  # noqa: E402

from chat_service.app import create_app, registry  # noqa: E402
from chat_service.bridge import AgentBridge  # noqa: E402
from chat_service.cache import Cache  # noqa: E402
from chat_service.db import Database  # noqa: E402
from chat_service.llm import LLMClient  # noqa: E402
from chat_service.storage import DataDir  # noqa: E402
from chat_service.tasks import TaskManager  # noqa: E402
from chat_service.ws import MemoryConnection  # noqa: E402
from daybreak import StartupError  # noqa: E402
from daybreak.monitor import MemoryMonitor  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("CHAT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHAT_ENV = ("ENVIRONMENT", "DATA_DIR", "DATABASE_URL", "REDIS_URL", "CLICKHOUSE_URL", "LLM_PROVIDER",
            "SECRET_KEY", "MEMORY_MONITOR", "MEMORY_INTERVAL", "MEMORY_TOP_SITES", "DATABASE_TIMEOUT", "CACHE_TIMEOUT",
            "ANALYTICS_TIMEOUT", "LLM_TIMEOUT", "MONITOR_INTERVAL", "HISTORY_LIMIT", "RATE_LIMIT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Embedded defaults: no outside service is configured, data goes to tmp_path."""
    for name in CHAT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["components"]}


def chat_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("chat-", "daybreak:"))]


async def chat(bridge: AgentBridge, room: str, text: str) -> dict[str, Any]:
    """One message through the bridge, as /ws/chat does it; the assistant's answer."""
    client = MemoryConnection()
    serving = asyncio.get_running_loop().create_task(bridge.serve(client, room))
    try:
        await client.receive_until(lambda m: m["type"] == "welcome")
        await client.to_server.put({"type": "message", "content": text})
        return await client.receive_until(
            lambda m: m["type"] == "error" or (m["type"] == "message" and m["role"] == "assistant"))
    finally:
        await client.close()
        await asyncio.wait_for(serving, 5)


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[int]:
    """uvicorn on a free loopback port, as a task of this loop; yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None, log_level="warning",
                                           timeout_graceful_shutdown=3))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 10
    while not server.started:
        assert not task.done() and time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


# -- embedded defaults ---------------------------------------------------------


async def test_embedded_defaults_start_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    """No outside service: SQLite in a temporary directory, in-process cache, echo LLM."""
    monkeypatch.delenv("DATA_DIR")
    async with registry.start() as system:
        report = system.report().to_dict()
        assert report["status"] == "ready"
        assert statuses(report) == {
            "settings": "started", "data_dir": "started", "key_manager": "started",
            "llm_client": "started", "tool_registry": "started", "migrations": "started",
            "database": "started", "cache": "started", "task_manager": "started",
            "agent_supervisor": "started", "analytics": "disabled", "ws_hub": "started",
            "agent_bridge": "started", "connection_monitor": "started",
            "memory_monitor": "disabled",
        }
        reasons = {c["name"]: c["reason"] for c in report["components"] if c["reason"]}
        assert reasons == {"analytics": "CLICKHOUSE_URL is not set",
                           "memory_monitor": "MEMORY_MONITOR is not enabled"}
        assert {v["name"]: v["status"] for v in report["validation"]} == {
            "schema_check": "passed", "cache_ping": "passed",
            "comprehensive_validation": "passed", "critical_path_validation": "passed"}
        assert [p["name"] for p in report["phases"]] == [
            "init", "dependencies", "database", "cache", "services", "websocket", "finalize"]
        assert system[Database].backend == "sqlite"
        assert system[Cache].backend == "memory"
        data = system[DataDir]
        assert data.temporary and data.sqlite_path.exists()
        assert sorted(n for n in chat_threads() if n.startswith("chat-worker")) == [
            "chat-worker-0", "chat-worker-1"]
        assert system.state.startup_complete
    assert not data.path.exists()  # the temporary directory goes with the system
    final = system.report().to_dict()
    assert final["leftovers"] == {"threads": [], "tasks": [], "fds": []}
    assert chat_threads() == []


def test_import_has_no_side_effects() -> None:
    """Importing the app opens no socket or file, starts no thread, reads no setting."""
    script = textwrap.dedent("""
        import json, os, sys, threading
        events = []
        WATCH = {"socket.connect", "socket.bind", "sqlite3.connect", "os.mkdir",
                 "tempfile.mkdtemp", "_thread.start_new_thread", "_thread.start_joinable_thread",
                 "subprocess.Popen"}
        def hook(event, args):
            if event in WATCH:
                events.append([event, repr(args)[:100]])
            elif event == "open" and isinstance(args[0], str) and args[1] not in (None, "r", "rb") \\
                    and not args[0].endswith(".pyc") and not str(args[0]).endswith(".tmp"):
                events.append([event, repr(args)[:100]])
        sys.addaudithook(hook)
        os.environ["DATABASE_URL"] = "postgresql://nobody:pw@127.0.0.1:1/none"
        os.environ["REDIS_URL"] = "redis://127.0.0.1:1/0"
        import chat_service.app
        print(json.dumps({"events": events, "threads": threading.active_count()}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(EXAMPLES)]),
           "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=60, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"events": [], "threads": 1}


async def test_chat_round_trip_over_a_real_websocket() -> None:
    """uvicorn on loopback: /ws/chat in, echo answer out, stored; /messages and /health agree."""
    app = create_app()
    async with serve(app) as port:
        async with ws_connect(f"ws://127.0.0.1:{port}/ws/chat?room=r1", proxy=None,
                              open_timeout=5) as websocket:
            welcome = json.loads(await websocket.recv())
            assert welcome["type"] == "welcome" and welcome["room"] == "r1"
            await websocket.send(json.dumps({"type": "message", "content": "hello there"}))
            received = [json.loads(await asyncio.wait_for(websocket.recv(), 5)) for _ in range(2)]
        assert [(m["role"], m["content"]) for m in received] == [
            ("user", "hello there"), ("assistant", "echo: hello there")]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            messages = (await client.get("/messages", params={"room": "r1"})).json()
            assert [(m["role"], m["content"]) for m in messages["messages"]] == [
                ("user", "hello there"), ("assistant", "echo: hello there")]
            assert [m["id"] for m in messages["messages"]] == [m["id"] for m in received]
            ready = await client.get("/health/ready")
            assert (ready.status_code, ready.json()["status"]) == (200, "ready")
            index = (await client.get("/")).json()
            assert index["status"] == "ready"
            assert index["settings"]["database"] == "sqlite"
            memory = await client.get("/health/memory")
            assert memory.status_code == 404
            assert "MEMORY_MONITOR is not enabled" in memory.json()["error"]
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert 'daybreak_system_status{status="ready",system="chat-service"} 1.0' in metrics.text
    assert app.state.daybreak.status == "stopped"
    assert app.state.daybreak.report().leftovers == {"threads": [], "tasks": [], "fds": []}


class ShoutingProvider:
    name = "shout"

    async def complete(self, turns: Any) -> str:
        return turns[-1].content.upper()

    async def aclose(self) -> None:
        return None


async def test_overrides_tools_and_worker_threads() -> None:
    """An override replaces the LLM; /calc runs on the task manager's worker threads."""
    shouting = LLMClient(ShoutingProvider(), timeout=5)
    async with registry.start(overrides={LLMClient: shouting}) as system:
        bridge = system[AgentBridge]
        assert (await chat(bridge, "tools", "hi"))["content"] == "HI"
        jobs = system[TaskManager].jobs_done
        assert (await chat(bridge, "tools", "/calc 6*(3+4)"))["content"] == "42"
        assert system[TaskManager].jobs_done == jobs + 1
        assert "calc" in (await chat(bridge, "tools", "/tools"))["content"]
        assert [m.role for m in await system[Database].messages("tools")] == ["user", "assistant"] * 3
    assert shouting.calls >= 2


async def test_memory_monitor_starts_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """MEMORY_MONITOR=1: daybreak's monitor samples on the loop, /health/memory serves it, stop ends it."""
    monkeypatch.setenv("MEMORY_MONITOR", "1")
    monkeypatch.setenv("MEMORY_INTERVAL", "0.02")
    app = create_app()
    async with serve(app) as port:
        system = app.state.daybreak
        assert system.status == "ready"
        assert statuses(system.report().to_dict())["memory_monitor"] == "started"
        monitor = system[MemoryMonitor]
        assert monitor.running and monitor.interval == 0.02 and monitor.top_sites == 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            deadline = time.monotonic() + 5
            while True:
                memory = await client.get("/health/memory")
                assert memory.status_code == 200
                body = memory.json()
                if body["samples"] >= 3:
                    break
                assert time.monotonic() < deadline, f"the monitor does not sample: {body}"
                await asyncio.sleep(0.02)
        assert body["rss_bytes"] > 1024 * 1024
        assert (body["interval_s"], body["running"], body["errors"]) == (0.02, True, 0)
        assert "daybreak-memory-monitor" in {t.get_name() for t in asyncio.all_tasks()}
    assert system.status == "stopped"
    assert statuses(system.report().to_dict())["memory_monitor"] == "stopped"
    assert not monitor.running
    assert "daybreak-memory-monitor" not in {t.get_name() for t in asyncio.all_tasks()}
    assert system.report().leftovers == {"threads": [], "tasks": [], "fds": []}
    assert chat_threads() == []


async def test_invalid_settings_fail_the_start_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("CACHE_TIMEOUT", "soon")
    with pytest.raises(StartupError) as caught:
        async with registry.start():
            pass
    error = caught.value
    assert error.component == "settings"
    assert "SECRET_KEY is required in production" in str(error)
    assert "CACHE_TIMEOUT='soon' is not a number" in str(error)
    assert {n: s for n, s in statuses(error.report.to_dict()).items() if s != "skipped"} == {
        "settings": "failed"}


# -- real faults without outside services --------------------------------------


async def test_postgres_at_a_closed_port_fails_clearly_without_the_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://chat:hunter2-Secret@127.0.0.1:{port}/chat")
    monkeypatch.setenv("DATABASE_TIMEOUT", "1")
    with pytest.raises(StartupError) as caught:
        async with registry.start():
            pass
    error = caught.value
    message = str(error)
    assert error.component == "database"
    assert f"postgresql://chat:***@127.0.0.1:{port}/chat" in message
    assert "ConnectionRefusedError" in message
    assert "hunter2" not in message
    report = error.report.to_json()
    assert "hunter2" not in report
    assert error.report.component("database")["attempts"] == 3
    assert error.report.component("migrations")["status"] == "failed"  # optional, reported too
    assert error.report.status == "failed"
    assert chat_threads() == []


async def test_unreachable_analytics_leaves_the_service_degraded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKHOUSE_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("ANALYTICS_TIMEOUT", "0.5")
    async with registry.start() as system:
        report = system.report().to_dict()
        assert report["status"] == "degraded"
        analytics = report["components"][[c["name"] for c in report["components"]].index("analytics")]
        assert analytics["status"] == "failed"
        assert "ClickHouse at http://127.0.0.1" in analytics["error"]["message"]
        assert f"chat_service{os.sep}analytics.py:" in analytics["error"]["where"]
        assert {n: s for n, s in statuses(report).items() if s not in ("started", "disabled")} == {
            "analytics": "failed"}
        answer = await chat(system[AgentBridge], "degraded", "still here?")
        assert answer["content"] == "echo: still here?"


def fake_clickhouse() -> tuple[Any, list[str]]:
    """An ASGI app that answers like ClickHouse's HTTP interface, and the queries it got."""
    queries: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope["query_string"].decode()
        queries.append(f"{scope['method']} {scope['path']} {query} {body.decode()}")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"Ok.\n"})

    return app, queries


async def test_analytics_writes_events_to_clickhouse(monkeypatch: pytest.MonkeyPatch) -> None:
    app, queries = fake_clickhouse()
    async with serve(app) as port:
        monkeypatch.setenv("CLICKHOUSE_URL", f"http://127.0.0.1:{port}")
        async with registry.start() as system:
            assert system.status == "ready"
            await chat(system[AgentBridge], "counted", "count me")
        assert statuses(system.report().to_dict())["analytics"] == "stopped"
    assert queries[0].startswith("GET /ping")
    assert "CREATE+TABLE+IF+NOT+EXISTS+chat_events" in queries[1]
    inserts = [q for q in queries if "INSERT" in q]
    assert len(inserts) == 1  # flushed at stop
    event = json.loads(inserts[0].split(" ", 3)[3])
    assert (event["event"], event["room"], event["chars"]) == ("message", "counted", 8)


# -- real PostgreSQL and Redis ---------------------------------------------------


@pytest.fixture
async def services() -> dict[str, str]:
    """The machine's PostgreSQL and Redis: skip when unreachable, fail under CI."""
    problems = []
    try:
        import asyncpg

        conn = await asyncpg.connect(PG_URL, timeout=2)
        await conn.close()
    except Exception as exc:
        problems.append(f"PostgreSQL at {PG_URL}: {type(exc).__name__}: {exc}")
    try:
        import redis.asyncio as redis

        # socket_timeout outlasts the 3 s CLIENT PAUSE of a concurrent test (xdist)
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
        try:
            await client.ping()
        finally:
            await client.aclose()
    except Exception as exc:
        problems.append(f"Redis at {REDIS_URL}: {type(exc).__name__}: {exc}")
    if problems:
        message = "services unreachable: " + "; ".join(problems)
        if CI:
            pytest.fail(message + " (CI=true: these tests must run)")
        pytest.skip(message)
    return {"database": PG_URL, "redis": REDIS_URL}


@pytest.mark.services
async def test_postgres_and_redis(services: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncpg
    import redis.asyncio as redis

    monkeypatch.setenv("DATABASE_URL", services["database"])
    monkeypatch.setenv("REDIS_URL", services["redis"])
    monkeypatch.setenv("CACHE_TIMEOUT", "5")  # outlasts the pause of the test below, under xdist
    room = f"pg-redis-{os.getpid()}-{time.monotonic_ns()}"
    async with registry.start() as system:
        report = system.report().to_dict()
        assert report["status"] == "ready"
        assert system[Database].backend == "postgresql"
        assert system[Cache].backend == "redis"
        answer = await chat(system[AgentBridge], room, "persist me")
        assert answer["content"] == "echo: persist me"
    assert system.report().leftovers == {"threads": [], "tasks": [], "fds": []}
    conn = await asyncpg.connect(services["database"], timeout=5)
    try:
        rows = await conn.fetch("SELECT role, content FROM chat_messages WHERE room = $1 ORDER BY id",
                                room)
        assert [tuple(r) for r in rows] == [("user", "persist me"), ("assistant", "echo: persist me")]
        await conn.execute("DELETE FROM chat_messages WHERE room = $1", room)
    finally:
        await conn.close()
    client = redis.Redis.from_url(services["redis"])
    try:
        assert await client.get(f"rate:{room}") == b"1"
        await client.delete(f"rate:{room}")
    finally:
        await client.aclose()


@pytest.mark.services
async def test_paused_redis_times_out_at_the_awaited_line(
        services: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """CLIENT PAUSE: the cache step times out after CACHE_TIMEOUT, naming cache.py's await line."""
    import redis.asyncio as redis

    source = (EXAMPLES / "chat_service" / "cache.py").read_text().splitlines()
    stuck_line = next(i for i, line in enumerate(source, 1) if "await client.ping()" in line)
    monkeypatch.setenv("REDIS_URL", services["redis"])
    monkeypatch.setenv("CACHE_TIMEOUT", "0.5")
    admin = redis.Redis.from_url(services["redis"], socket_timeout=10)
    try:
        await admin.execute_command("CLIENT", "PAUSE", 3000)
        t0 = time.monotonic()
        with pytest.raises(StartupError) as caught:
            async with registry.start():
                pass
        elapsed = time.monotonic() - t0
    finally:
        await admin.ping()  # returns when the pause is over: the next tests find Redis answering
        await admin.aclose()
    error = caught.value
    assert error.component == "cache"
    assert elapsed < 2.5  # two tries of 0.5 s, not the 3 s pause
    cache = error.report.component("cache")
    assert cache["attempts"] == 2
    assert cache["error"]["type"] == "TimeoutError"
    assert "did not answer within 0.5 s (CACHE_TIMEOUT=0.5)" in cache["error"]["message"]
    expected = f"{os.sep}chat_service{os.sep}cache.py:{stuck_line}"
    assert cache["error"]["where"].endswith(expected)
    assert error.where is not None and error.where.endswith(expected)
    assert f"cache.py:{stuck_line}" in str(error)
    assert error.report.component("database")["stop"]["status"] == "stopped"  # rolled back
