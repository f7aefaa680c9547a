"""The ``daybreak`` logger under a real uvicorn process whose start runs ``logging.config.fileConfig``."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from _servers import FIXTURES, child_env, logging_ini, loopback_socket  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uvicorn --fd, POSIX signals")

PROBES = 3


def serve_and_probe(tmp_path: Path, level: str) -> str:
    """Run fixtures/web/logged.py under uvicorn, probe /health/ready, stop it; its stderr."""
    ini = logging_ini(tmp_path / "alembic.ini", level=level)
    # fileConfig() also disables uvicorn's own loggers ("Uvicorn running on" is never
    # printed): the test binds the socket and hands it over, so it knows the port.
    sock = loopback_socket()
    sock.listen()
    port = sock.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "logged:starlette_app", "--fd", str(sock.fileno()),
         "--log-level", "info"],
        cwd=FIXTURES, env=child_env(LOGGING_INI=str(ini), DAYBREAK_DRAIN_S="0"), pass_fds=[sock.fileno()],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=60) as client:
            for _ in range(PROBES):  # queued in the backlog until the start is over
                assert client.get("/health/ready").json()["status"] == "ready"
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
        sock.close()
    return stderr


def test_daybreak_logs_on_after_fileconfig_and_probe_checks_only_at_debug(tmp_path: Path) -> None:
    """Root at INFO: the events after fileConfig() are there, the probes' check.passed are not."""
    lines = serve_and_probe(tmp_path, "INFO").splitlines()
    assert "INFO daybreak component.started logged component=service" in "\n".join(lines), lines
    assert any(line.startswith("INFO daybreak system.ready logged") for line in lines), lines
    assert any(line.startswith("INFO daybreak system.stopped logged") for line in lines), lines
    assert not any("check.passed" in line for line in lines), lines


def test_probe_checks_log_check_passed_at_debug(tmp_path: Path) -> None:
    """Root at DEBUG: each readiness probe's check run is logged, at DEBUG and never above."""
    lines = serve_and_probe(tmp_path, "DEBUG").splitlines()
    passed = [line for line in lines if "check.passed logged" in line]
    assert len(passed) == 1 + PROBES, lines  # the start's run, then one per probe (check_interval=0)
    assert all(line.startswith("DEBUG daybreak check.passed logged component=service") for line in passed), passed


async def test_events_go_on_when_fileconfig_ran_before_the_start(caplog: pytest.LogCaptureFixture) -> None:
    """fileConfig() at import (the logger disabled before start() reads the level) silences nothing."""
    from daybreak import Registry

    registry = Registry("configured-early")

    @registry.component
    def base() -> Base:
        return Base()

    caplog.set_level(logging.INFO)
    logging.getLogger("daybreak").disabled = True  # what fileConfig() does to loggers it does not name
    try:
        async with registry.start():
            pass
    finally:
        logging.getLogger("daybreak").disabled = False
    assert "system.ready configured-early" in caplog.text
    assert "system.stopped configured-early" in caplog.text


class Base:
    pass
