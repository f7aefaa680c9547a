"""daybreak.litestar: the plugin on a real uvicorn server."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

pytest.importorskip("litestar")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from litestar import Litestar, Request, get

from _servers import Base, check_health_routes, gated_registry, run_child, serve
from daybreak.litestar import DaybreakPlugin, system_of


@get("/base")
async def base_route(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {"base": type(system_of(request)[Base]).__name__}


async def test_plugin_starts_the_system_and_serves_the_health_routes() -> None:
    gate = asyncio.Event()
    app = Litestar(route_handlers=[base_route],
                   plugins=[DaybreakPlugin(gated_registry("lite", gate), background=True, stacks=True, token="t0ken")])
    async with serve(app) as srv:
        await check_health_routes(srv.client, gate, "lite")
        assert (await srv.client.get("/base")).json() == {"base": "Base"}
        assert (await srv.client.get("/health/stacks")).status_code == 401
        assert (await srv.client.get("/health/stacks", headers={"X-Forwarded-For": "127.0.0.1"})).status_code == 401
        stacks = await srv.client.get("/health/stacks", headers={"Authorization": "Bearer t0ken"})
        assert stacks.status_code == 200 and stacks.json()["threads"]
        system = app.state.daybreak
    assert system.status == "stopped"


async def test_stacks_trust_loopback_only_when_asked_and_never_a_forwarded_one() -> None:
    """uvicorn --proxy-headers --forwarded-allow-ips='*' rewrites the client from X-Forwarded-For."""
    gate = asyncio.Event()
    gate.set()
    app = Litestar(plugins=[DaybreakPlugin(gated_registry("lite", gate), stacks=True, allow_loopback=True)])
    async with serve(app, forwarded_allow_ips="*") as srv:
        assert (await srv.client.get("/health/stacks")).status_code == 200  # the socket peer is loopback
        for forwarded in ({"X-Forwarded-For": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"},
                          {"True-Client-IP": "127.0.0.1"}):
            denied = await srv.client.get("/health/stacks", headers=forwarded)
            assert denied.status_code == 403, forwarded
            assert "not through a proxy" in denied.json()["error"]
        assert (await srv.client.get("/health/stacks?token=x")).status_code == 400
        schema = (await srv.client.get("/schema/openapi.json")).json()
        assert not any(path.endswith("/stacks") for path in schema["paths"])


def test_failed_background_start_exits_with_status_3() -> None:
    done = run_child([sys.executable, "-m", "uvicorn", "--factory", "failing:litestar_app",
                      "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"])
    assert done.returncode == 3, done.stderr
    assert "daybreak: 'late-failure' failed to start in the background" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
