"""examples/plain_fastapi: an unmodified FastAPI app, checked as it is (README, "Check the app you have")."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from daybreak.asgi import registry_of

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "plain_fastapi" / "app.py"


async def test_the_app_serves_notes_from_sqlite_while_daybreak_runs_its_lifespan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTES_DATABASE", str(tmp_path / "notes.sqlite3"))
    spec = importlib.util.spec_from_file_location("plain_fastapi_app", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    async with registry_of(module.app).start(), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=module.app), base_url="http://notes") as client:
        assert (await client.post("/notes", json={"text": "hello"})).json() == {"id": 1}
        assert (await client.get("/notes")).json() == [{"id": 1, "text": "hello"}]


def test_doctor_passes_on_the_unmodified_app(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daybreak.cli", "doctor", "examples/plain_fastapi/app.py:app", "--json"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "NOTES_DATABASE": str(tmp_path / "notes.sqlite3")})
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert [m["name"] for m in doc["imports"]["modules"]] == ["app"]
    assert [c["name"] for c in doc["start"]["components"]] == ["app"]
    assert doc["leaks"]["verdict"] == "clean"
    assert (tmp_path / "notes.sqlite3").exists()  # the lifespan really opened the database
