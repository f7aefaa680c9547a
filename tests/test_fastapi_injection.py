"""``Annotated[T, Inject]``, ``component(T)`` and ``provider(T)`` on a real uvicorn server.

scripts/fastapi-matrix runs this file alone against several FastAPI releases
(the lowest the ``fastapi`` extra admits up to the latest), so it needs only
FastAPI, uvicorn, httpx and websockets.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect as ws_connect

from _servers import serve
from daybreak import Disabled, Registry
from daybreak.fastapi import Inject, component, health_router, lifespan, provider


class Greeter:
    # Constructor arguments: where FastAPI 0.122-0.162 saw query parameters.
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

    app = FastAPI(lifespan=lifespan(registry))
    app.include_router(health_router())

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
        annotated = await srv.client.get("/annotated")
        assert (annotated.status_code, annotated.json()) == (200, {"word": "hello"})
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


def test_injected_types_are_not_request_parameters() -> None:
    """The OpenAPI schema shows no query parameter taken from an injected class's constructor."""
    schema = injection_app().openapi()
    for path in ("/annotated", "/depends", "/optional"):
        assert schema["paths"][path]["get"].get("parameters", []) == [], path


def test_too_old_a_fastapi_fails_with_one_line_naming_the_supported_versions(tmp_path: Path) -> None:
    fake = tmp_path / "fastapi"
    fake.mkdir()
    (fake / "__init__.py").write_text('__version__ = "0.79.0"\n')
    code = textwrap.dedent("""
        try:
            import daybreak.fastapi
        except ImportError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60, env={"PYTHONPATH": str(tmp_path), "PATH": ""})
    assert out.stdout == ("daybreak.fastapi supports FastAPI >= 0.110.1, this is FastAPI 0.79.0: "
                          "pip install 'daybreak[fastapi]'\n")
