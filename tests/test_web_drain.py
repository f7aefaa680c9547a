"""Graceful shutdown on SIGTERM under a real uvicorn process: readiness 503 first, a drain, then stop."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from _servers import Child  # noqa: E402
from daybreak._drain import DEFAULT_DRAIN, DRAIN_ENV, drain_seconds  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def uvicorn(drain: str) -> Child:
    return Child([sys.executable, "-m", "uvicorn", "--factory", "draining:fastapi_app", "--host", "127.0.0.1",
                  "--port", "0", "--log-level", "info", "--timeout-graceful-shutdown", "30"], DRAIN_S=drain)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=30) as client:
        yield client


def started(child: Child) -> str:
    return child.wait_for(r"Uvicorn running on (http://127\.0\.0\.1:\d+)").group(1)


def test_sigterm_turns_readiness_503_drains_serving_requests_then_stops(client: httpx.Client) -> None:
    """Readiness answers 503 while every other route serves; a request in flight outlives the shutdown."""
    child = uvicorn(drain="600")  # the second SIGTERM ends it
    try:
        base = started(child)
        child.wait_for("Application startup complete")
        assert client.get(f"{base}/health/ready").json()["status"] == "ready"
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(client.get, f"{base}/slow")
            child.wait_for("draining-app: slow started")
            child.proc.send_signal(signal.SIGTERM)
            for _ in range(10_000):  # until the signal is handled
                ready = client.get(f"{base}/health/ready")
                if ready.status_code != 200:
                    break
            assert (ready.status_code, ready.json()["status"]) == (503, "draining")
            # Draining: the server still accepts connections, and answers them.
            assert client.get(f"{base}/health/live").json() == {"status": "alive"}
            assert client.get(f"{base}/work").json() == {"work": "done"}
            assert client.get(f"{base}/health/ready").status_code == 503
            assert child.proc.poll() is None
            assert "Shutting down" not in child.stderr

            child.proc.send_signal(signal.SIGTERM)  # ends the drain: the server shuts down now
            child.wait_for("Waiting for connections to close")
            assert "draining-app: base stopped" not in child.stderr  # the system serves the request
            child.proc.send_signal(signal.SIGUSR1)  # the request in flight finishes
            assert in_flight.result().json() == {"slow": "done"}
        assert child.exit_status() == -signal.SIGTERM  # uvicorn ends by the signal it got
        assert child.index("draining-app: slow done") < child.index("draining-app: base stopped")
        assert "Traceback" not in child.stderr
    finally:
        child.kill()


def test_aiohttp_run_app_drains_on_sigterm_too(client: httpx.Client) -> None:
    """web.run_app's SIGTERM handler is the loop's: the drain stands in front of it the same way."""
    pytest.importorskip("aiohttp")
    child = Child([sys.executable, "-c", "import draining; draining.aiohttp_main()"], DRAIN_S="600")
    try:
        base = "http://127.0.0.1:" + child.wait_for(r"draining-app: listening on (\d+)").group(1)
        child.wait_for("draining-app: serving")
        assert client.get(f"{base}/health/ready").json()["status"] == "ready"
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(client.get, f"{base}/slow")
            child.wait_for("draining-app: slow started")
            child.proc.send_signal(signal.SIGTERM)
            for _ in range(10_000):
                ready = client.get(f"{base}/health/ready")
                if ready.status_code != 200:
                    break
            assert (ready.status_code, ready.json()["status"]) == (503, "draining")
            assert client.get(f"{base}/work").json() == {"work": "done"}
            assert child.proc.poll() is None
            child.proc.send_signal(signal.SIGUSR1)  # the request in flight finishes while draining
            assert in_flight.result().json() == {"slow": "done"}
            child.proc.send_signal(signal.SIGTERM)  # ends the drain
        assert child.exit_status() == 0
        assert child.index("draining-app: slow done") < child.index("draining-app: base stopped") \
            < child.index("draining-app: run_app returned")
        assert "Traceback" not in child.stderr
    finally:
        child.kill()


def test_the_drain_ends_by_itself_and_the_server_stops(client: httpx.Client) -> None:
    child = uvicorn(drain="0.5")
    try:
        base = started(child)
        child.wait_for("Application startup complete")
        assert client.get(f"{base}/health/ready").status_code == 200
        child.proc.send_signal(signal.SIGTERM)
        child.wait_for("draining-app: base stopped")
        assert child.exit_status() == -signal.SIGTERM
        assert child.index("Shutting down") < child.index("draining-app: base stopped")
    finally:
        child.kill()


def test_drain_zero_stops_at_once(client: httpx.Client) -> None:
    child = uvicorn(drain="0")
    try:
        base = started(child)
        child.wait_for("Application startup complete")
        assert client.get(f"{base}/health/ready").status_code == 200
        child.proc.send_signal(signal.SIGTERM)
        assert child.exit_status() == -signal.SIGTERM
        assert "draining-app: base stopped" in child.stderr
    finally:
        child.kill()


def test_drain_seconds_come_from_the_argument_the_environment_or_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DRAIN_ENV, raising=False)
    assert drain_seconds(None) == DEFAULT_DRAIN == 5.0
    assert drain_seconds(0) == 0.0
    monkeypatch.setenv(DRAIN_ENV, "0")  # what a test suite sets
    assert drain_seconds(None) == 0.0
    assert drain_seconds(2.5) == 2.5
    monkeypatch.setenv(DRAIN_ENV, "soon")
    with pytest.raises(ValueError, match=r"DAYBREAK_DRAIN_S='soon'; expected seconds >= 0"):
        drain_seconds(None)
    with pytest.raises(ValueError, match=r"drain=-1; expected seconds >= 0"):
        drain_seconds(-1)
