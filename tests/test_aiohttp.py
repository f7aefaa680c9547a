"""daybreak.aiohttp on aiohttp.web's own runner."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

pytest.importorskip("aiohttp")
httpx = pytest.importorskip("httpx")

from aiohttp import web  # noqa: E402

from _servers import Base, check_health_routes, gated_registry, loopback_socket, run_child  # noqa: E402
from daybreak import Registry  # noqa: E402
from daybreak.aiohttp import cleanup_ctx, health_routes, system_of  # noqa: E402


@asynccontextmanager
async def run(app: web.Application) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``app`` with aiohttp's AppRunner on a free loopback port."""
    runner = web.AppRunner(app)
    await runner.setup()
    sock = loopback_socket()
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", trust_env=False,
                                     timeout=10) as client:
            yield client
    finally:
        await runner.cleanup()
        sock.close()


async def test_cleanup_ctx_starts_and_stops_the_system_and_the_routes_answer() -> None:
    gate = asyncio.Event()
    systems = []

    async def base_route(request: web.Request) -> web.Response:
        systems.append(system_of(request))
        return web.json_response({"base": type(systems[-1][Base]).__name__})

    app = web.Application()
    app.cleanup_ctx.append(cleanup_ctx(gated_registry("aio", gate), background=True))
    app.add_routes([*health_routes(stacks=True, token="t0ken"), web.get("/base", base_route)])
    async with run(app) as client:
        await check_health_routes(client, gate, "aio")
        assert (await client.get("/base")).json() == {"base": "Base"}
        assert (await client.get("/health/stacks")).status_code == 401
        assert (await client.get("/health/stacks?token=t0ken")).status_code == 400
        stacks = await client.get("/health/stacks", headers={"Authorization": "Bearer t0ken"})
        assert stacks.status_code == 200 and stacks.json()["threads"]
        assert systems[0].status == "degraded"
    assert systems[0].status == "stopped"


async def test_stacks_trust_the_socket_peer_only_when_asked_and_never_a_forwarded_one() -> None:
    gate = asyncio.Event()
    gate.set()
    app = web.Application()
    app.cleanup_ctx.append(cleanup_ctx(gated_registry("aio", gate)))
    app.add_routes([*health_routes(stacks=True, allow_loopback=True), *health_routes("/off")])
    async with run(app) as client:
        assert (await client.get("/off/stacks")).status_code == 404
        assert (await client.get("/health/stacks")).status_code == 200  # the socket peer is loopback
        for forwarded in ({"X-Forwarded-For": "127.0.0.1"}, {"X-Real-IP": "127.0.0.1"},
                          {"CF-Connecting-IP": "127.0.0.1"}):
            denied = await client.get("/health/stacks", headers=forwarded)
            assert denied.status_code == 403, forwarded
        assert (await client.get("/health/stacks?access_token=x")).status_code == 400


async def test_a_failed_critical_start_fails_the_app_start_up() -> None:
    registry = Registry("broken")

    @registry.component
    def base() -> Base:
        raise ConnectionError("cannot reach redis://:hunter2-secret@127.0.0.1:1")

    app = web.Application()
    app.cleanup_ctx.append(cleanup_ctx(registry))
    runner = web.AppRunner(app)
    with pytest.raises(Exception, match="critical component 'base' failed") as failed:
        await runner.setup()
    assert "hunter2" not in str(failed.value)
    await runner.cleanup()


def test_failed_background_start_exits_run_app_with_status_3() -> None:
    done = run_child([sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", "0", "failing:aiohttp_app"])
    assert done.returncode == 3, done.stderr
    assert "daybreak: 'late-failure' failed to start in the background" in done.stderr
    assert "postgresql://app:***@127.0.0.1:1/app" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_importing_daybreak_aiohttp_does_not_import_aiohttp() -> None:
    """aiohttp installs warning filters at import: daybreak.aiohttp imports it only when used."""
    code = ("import sys, json, daybreak.aiohttp; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []
