"""``daybreak start`` as a user runs it: signals while stopping, failed stops, sys.exit(), --json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from _markers import marker_line
from _watched import Watched

HERE = Path(__file__).resolve()
TARGETS = HERE.parent / "fixtures" / "engine" / "targets.py"
SRC = HERE.parent.parent / "src"


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(SRC), DAYBREAK_TEST_MARKER=str(tmp_path / "marker"),
                DAYBREAK_TEST_RELEASE=str(tmp_path / "release"), NO_COLOR="1", PYTHONUNBUFFERED="1")


def daybreak(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daybreak.cli", *args], capture_output=True, text=True,
                          timeout=120, env=_env(tmp_path), cwd=tmp_path)


def marks(tmp_path: Path) -> list[str]:
    path = tmp_path / "marker"
    return path.read_text().splitlines() if path.exists() else []


def where(marker: str) -> str:
    return marker_line(str(TARGETS), marker)


# -- signals while stopping ----------------------------------------------------------------------


class Running(Watched):
    """``daybreak start`` in a subprocess, its stderr in a file the test can watch."""

    def __init__(self, tmp_path: Path, target: str) -> None:
        self.tmp_path = tmp_path
        super().__init__([sys.executable, "-m", "daybreak.cli", "start", f"{TARGETS}:{target}"],
                         env=_env(tmp_path), cwd=tmp_path, err_path=tmp_path / "stderr")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_stopping_lets_every_stop_run(tmp_path: Path, signum: int, code: int) -> None:
    run = Running(tmp_path, "stops_slowly")
    try:
        run.wait_for(tmp_path / "marker", "second stopping")
        run.proc.send_signal(signum)
        run.wait_for(run.err_path, "interrupted while stopping")
        (tmp_path / "release").touch()
    finally:
        out, err = run.finish()
    assert marks(tmp_path) == ["first started", "second started", "second stopping", "second stopped",
                               "first stopped"]
    assert run.proc.returncode == code, (out, err)
    assert f"interrupted by {signal.Signals(signum).name}; stopped" in err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_second_signal_cuts_the_stops_in_progress_short_and_names_them(tmp_path: Path) -> None:
    run = Running(tmp_path, "stops_slowly")
    try:
        run.wait_for(tmp_path / "marker", "second stopping")
        run.proc.send_signal(signal.SIGTERM)
        run.wait_for(run.err_path, "interrupted while stopping")
        run.proc.send_signal(signal.SIGTERM)
    finally:
        out, err = run.finish()
    # What depends on nothing that was cut short still stops.
    assert marks(tmp_path) == ["first started", "second started", "second stopping", "first stopped"]
    assert run.proc.returncode == 1, (out, err)
    assert "interrupted by SIGTERM; did not stop cleanly:" in err
    assert (f"component 'second' did not stop cleanly: CancelledError: cut short: cancelled before it "
            f"finished (interrupted again while stopping) (at {where('waits-for-release')})") in err


# -- a stop that raises is a failure -----------------------------------------------------------


def test_a_stop_that_raises_fails_start_with_the_component_and_where(tmp_path: Path) -> None:
    result = daybreak(tmp_path, "start", f"{TARGETS}:stop_raises")
    assert result.returncode == 1, result
    assert (f"component 'database' did not stop cleanly: RuntimeError: the pool would not close "
            f"(at {where('stop-raises')})") in result.stdout


def test_a_stop_that_raises_fails_doctor(tmp_path: Path) -> None:
    result = daybreak(tmp_path, "doctor", f"{TARGETS}:stop_raises", "--skip", "imports", "--skip", "leaks",
                      "--json")
    assert result.returncode == 1, result
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "fail"
    assert any("component 'database' did not stop cleanly" in f and where("stop-raises") in f
               for f in doc["failures"])


# -- sys.exit() in a factory -----------------------------------------------------------------------


def test_sys_exit_without_a_code_is_a_failed_start(tmp_path: Path) -> None:
    result = daybreak(tmp_path, "start", f"{TARGETS}:exits")
    assert result.returncode == 1, result
    assert "critical component 'exits_plainly' failed: SystemExit: it called sys.exit()" in result.stdout


def test_sys_exit_with_a_code_exits_with_it_after_the_rollback(tmp_path: Path) -> None:
    result = daybreak(tmp_path, "start", f"{TARGETS}:exits_with_code")
    assert result.returncode == 3, result
    assert marks(tmp_path) == ["opens stopped"]
    assert "daybreak start: component 'quits' called sys.exit(3); rolled back, exit status 3" in result.stderr


# -- --json: stdout holds the JSON alone -------------------------------------------------------------


def test_json_keeps_the_apps_output_on_stderr_and_the_executor_is_no_leftover(tmp_path: Path) -> None:
    result = daybreak(tmp_path, "start", f"{TARGETS}:chatty", "--json")
    assert result.returncode == 0, result
    report = json.loads(result.stdout)
    assert report["status"] == "stopped" and report["leftovers"]["threads"] == []
    for line in ("printed at import", "printed by a factory", "logged to stdout by a factory",
                 "printed from a thread"):
        assert line in result.stderr
