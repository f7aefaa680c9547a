"""daybreak.starlette on a plain Starlette app under a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Mount, Route  # noqa: E402

from _servers import Base, Child, check_health_routes, gated_registry, logging_ini, serve  # noqa: E402
from daybreak.starlette import health_routes, lifespan, metrics_route, system_of  # noqa: E402


async def test_health_routes_on_a_plain_starlette_app() -> None:
    gate = asyncio.Event()

    async def base_route(request: Request) -> JSONResponse:
        return JSONResponse({"base": type(system_of(request)[Base]).__name__})

    app = Starlette(lifespan=lifespan(gated_registry("plain", gate), background=True),
                    routes=[*health_routes(), Route("/base", base_route)])
    async with serve(app) as srv:
        await check_health_routes(srv.client, gate, "plain")
        assert (await srv.client.get("/base")).json() == {"base": "Base"}
        assert (await srv.client.get("/health/stacks")).status_code == 404  # off unless asked for


async def test_health_routes_mount_under_any_prefix_with_metrics() -> None:
    pytest.importorskip("prometheus_client")
    gate = asyncio.Event()
    gate.set()
    app = Starlette(lifespan=lifespan(gated_registry("plain", gate)),
                    routes=[Mount("/probes", routes=health_routes(prefix="", stacks=True, token="t0ken"))])
    metrics_route(app)
    async with serve(app) as srv:
        ready = await srv.client.get("/probes/ready")
        assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
        assert (await srv.client.get("/probes/stacks")).status_code == 401
        stacks = await srv.client.get("/probes/stacks", headers={"Authorization": "Bearer t0ken"})
        assert stacks.status_code == 200 and stacks.json()["threads"]
        metrics = await srv.client.get("/metrics")
        assert 'daybreak_system_status{status="degraded",system="plain"} 1.0' in metrics.text


def test_system_of_says_how_to_set_the_lifespan() -> None:
    app = Starlette()
    request = Request({"type": "http", "app": app, "headers": []})
    with pytest.raises(RuntimeError, match=r"lifespan=daybreak.starlette.lifespan\(registry\)"):
        system_of(request)


def test_daybreak_keeps_logging_across_fileconfig_and_probe_checks_log_at_debug(tmp_path: Path) -> None:
    """Alembic's env.py runs fileConfig() in the middle of a start; daybreak's events go on."""
    ini = logging_ini(tmp_path / "alembic.ini", level="INFO")
    script = textwrap.dedent(f"""
        import asyncio, logging, logging.config
        from daybreak import Registry

        logging.basicConfig(level=logging.INFO)
        registry = Registry("migrated")

        class Migrated: ...
        class Service: ...

        @registry.component
        def migrations() -> Migrated:
            logging.config.fileConfig({str(ini)!r})  # what Alembic's env.py does
            return Migrated()

        @registry.component
        def service(m: Migrated) -> Service:
            return Service()

        @service.check
        def ping(s: Service) -> None:
            pass

        async def main() -> None:
            async with registry.start() as system:
                await system.check()

        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    lines = out.stderr.splitlines()
    assert any("component.started migrated component=service" in line for line in lines), out.stderr
    assert any("system.ready migrated" in line for line in lines), out.stderr
    assert not any("check.passed" in line for line in lines), out.stderr


def test_a_failed_background_start_reaches_the_handlers_of_fileconfig(tmp_path: Path) -> None:
    """fileConfig() disables daybreak.starlette too: the failure still goes to the configured handler."""
    pytest.importorskip("uvicorn")
    ini = logging_ini(tmp_path / "logging.ini", level="WARNING",
                      line_format="configured %(levelname)s %(name)s: %(message)s")
    child = Child([sys.executable, "-m", "uvicorn", "--factory", "failing:fileconfig_app", "--host", "127.0.0.1",
                   "--port", "0", "--log-level", "warning"], LOGGING_INI=str(ini))
    try:
        assert child.exit_status() == 3, child.stderr
    finally:
        child.kill()
    assert "configured ERROR daybreak.starlette: daybreak: 'late-failure' failed to start in the background" \
        in child.stderr
    assert "hunter2" not in child.stderr


def test_import_daybreak_starlette_does_not_import_fastapi() -> None:
    code = ("import sys, json, daybreak.starlette; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'prometheus_client'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []
