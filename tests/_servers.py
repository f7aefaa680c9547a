"""Real servers for the web integration tests: uvicorn in this loop, or a server in a child process."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "web"


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


def loopback_socket() -> socket.socket:
    """A listening-ready TCP socket on a free loopback port (bound, so no other test takes it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _serve(server: Any, sock: socket.socket) -> int | str | None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn's way to say "startup failed"
        return exc.code
    return 0


@asynccontextmanager
async def serve(app: Any, *, expect_started: bool = True, forwarded_allow_ips: str = "127.0.0.1",
                ) -> AsyncIterator[Running]:
    """Run the ASGI ``app`` under uvicorn on a free loopback port, as a task of this loop."""
    import uvicorn

    sock = loopback_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None,
                            log_level="warning", proxy_headers=True,
                            forwarded_allow_ips=forwarded_allow_ips, timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(_serve(server, sock))
    await poll_until(lambda: server.started or task.done(), what="uvicorn to start")
    if expect_started:
        assert server.started, f"uvicorn exited: {task.result()!r}"
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10)
    running = Running(server, task, port, client)
    try:
        yield running
    finally:
        await client.aclose()
        if not task.done():
            await running.stop()
        sock.close()


async def poll_until(condition: Callable[[], object], *, what: str, timeout: float = 20.0) -> None:
    """Wait for ``condition()`` (checked each loop turn, on the loop) with a generous deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def poll(check: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Await ``check()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(interval)


def logging_ini(path: Path, *, level: str, line_format: str = "%(levelname)s %(name)s %(message)s") -> Path:
    """A ``logging.config.fileConfig`` file like Alembic's: the root logger on stderr at ``level``."""
    path.write_text(textwrap.dedent(f"""
        [loggers]
        keys = root
        [handlers]
        keys = console
        [formatters]
        keys = generic
        [logger_root]
        level = {level}
        handlers = console
        [handler_console]
        class = StreamHandler
        args = (sys.stderr,)
        formatter = generic
        [formatter_generic]
        format = {line_format}
    """))
    return path


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a server child: this one's, without pytest's, the fixtures importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = os.pathsep.join([str(FIXTURES), *sys.path])
    env.update(extra)
    return env


def run_child(argv: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a server in a child process (cwd: tests/fixtures/web) and wait for it to exit."""
    return subprocess.run(argv, cwd=FIXTURES, env=child_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


class Child:
    """A server in a child process whose stderr lines are collected as they come."""

    def __init__(self, argv: list[str], **env: str) -> None:
        self.proc = subprocess.Popen(argv, cwd=FIXTURES, env=child_env(**env), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<eof>")
            self._changed.notify_all()

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first stderr line that matches ``pattern`` (waiting for it to be written)."""
        regex = re.compile(pattern)
        seen = 0
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    found = regex.search(line)
                    if found:
                        return found
                seen = len(self.lines)
                assert "<eof>" not in self.lines[-1:], f"exited without {pattern!r}:\n{self.stderr}"
                left = deadline - time.monotonic()
                assert left > 0, f"no {pattern!r} in time:\n{self.stderr}"
                self._changed.wait(left)

    def index(self, text: str) -> int:
        """The number of the first stderr line that contains ``text``."""
        return next(i for i, line in enumerate(self.lines) if text in line)

    def exit_status(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        if self.proc.stderr is not None and not self._reader.is_alive():
            self.proc.stderr.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.exit_status()


class Base:
    pass


class Extra:
    pass


def gated_registry(name: str, gate: asyncio.Event) -> Any:
    """A registry whose ``base`` starts when ``gate`` is set, beside an optional ``extra`` that fails."""
    from daybreak import Registry

    registry = Registry(name)

    @registry.component
    async def base() -> AsyncIterator[Base]:
        await gate.wait()
        yield Base()

    @registry.component(optional=True)
    def extra() -> Extra:
        raise RuntimeError("the extra service is down")

    return registry


async def check_health_routes(client: httpx.AsyncClient, gate: asyncio.Event, name: str,
                              prefix: str = "/health") -> None:
    """The probes of a gated_registry(name) started in the background, before and after the gate opens."""
    assert (await client.get(f"{prefix}/live")).json() == {"status": "alive"}
    starting = await client.get(f"{prefix}/ready")
    assert (starting.status_code, starting.json()["status"]) == (503, "starting")
    summary = await client.get(f"{prefix}/startup")
    assert (summary.status_code, summary.json()) == (503, {"name": name, "status": "starting", "phase": None})
    gate.set()

    async def ready() -> httpx.Response | None:
        response = await client.get(f"{prefix}/ready")
        return response if response.status_code == 200 else None

    body = (await poll(ready)).json()
    assert body["status"] == "degraded"
    assert [f["name"] for f in body["failed"]] == ["extra"]
    assert "the extra service is down" in body["failed"][0]["error"]
    startup = await client.get(f"{prefix}/startup")
    assert (startup.status_code, startup.json()["status"]) == (200, "degraded")
    assert [c["name"] for c in startup.json()["components"]] == ["base", "extra"]
    memory = await client.get(f"{prefix}/memory")
    assert (memory.status_code, memory.json()["status"]) == (404, "absent")
