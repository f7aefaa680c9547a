"""A failed background start under gunicorn with uvicorn workers: no crash loop that looks alive."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("gunicorn")
httpx = pytest.importorskip("httpx")

from _servers import Child  # noqa: E402

pytestmark = pytest.mark.slow


def test_after_a_failed_start_live_is_never_200_again_and_gunicorn_exits_non_zero() -> None:
    """/health/live answers 200 while starting, 503 (or nothing) once the start failed; one boot, exit 3."""
    child = Child([sys.executable, "-W", "ignore::DeprecationWarning", "-m", "gunicorn",
                   "-k", "uvicorn.workers.UvicornWorker", "-w", "1", "--bind", "127.0.0.1:0",
                   "--no-control-socket", "failing:on_request_app()"])
    try:
        base = child.wait_for(r"Listening at: (http://127\.0\.0\.1:\d+)").group(1)
        child.wait_for("Application startup complete")
        after: list[int | str] = []
        with httpx.Client(base_url=base, trust_env=False, timeout=30) as client:
            assert client.get("/health/live").json() == {"status": "alive"}  # starting, and alive
            assert client.get("/fail").json() == {"failed": "yes"}
            while child.proc.poll() is None and len(after) < 10_000:
                try:
                    after.append(client.get("/health/live").status_code)
                except httpx.TransportError as exc:  # the worker shut down: nobody answers
                    after.append(type(exc).__name__)
        status = child.exit_status()
    finally:
        child.kill()
    assert set(after) - {503} <= {"ConnectError", "RemoteProtocolError", "ReadError", "ConnectTimeout",
                                  "ReadTimeout"}, after
    assert 200 not in after
    assert status == 3, child.stderr  # gunicorn halts: "Worker failed to boot."
    assert "exited with code 3" in child.stderr
    assert child.stderr.count("Booting worker") == 1  # no reboot
    assert child.stderr.count("failed to start in the background") == 1
    assert "hunter2" not in child.stderr
