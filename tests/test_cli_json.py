"""Every ``--json`` command keeps stdout for the JSON alone, and ``leaks --json`` reports a failed start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _markers import marker_line

HERE = Path(__file__).resolve().parent
APP = HERE / "fixtures" / "chatty" / "chatty_app.py"
SRC = HERE.parent / "src"

FACTORY_LINES = ("printed by a factory", "written to sys.__stdout__ by a factory",
                 "written to descriptor 1 by a factory", "printed from a thread")


def daybreak(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), NO_COLOR="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "daybreak.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)


@pytest.mark.parametrize(("command", "runs_factories"), [
    (["plan", f"{APP}:registry", "--json"], False),
    (["start", f"{APP}:registry", "--json"], True),
    (["leaks", f"{APP}:registry", "--json", "--cycles", "3", "--warmup", "0"], True),
    (["doctor", f"{APP}:registry", "--json", "--cycles", "3", "--warmup", "0"], True),
    (["imports", str(APP), "--json"], False),
], ids=lambda v: v[0] if isinstance(v, list) else None)
def test_the_apps_output_goes_to_stderr(tmp_path: Path, command: list[str], runs_factories: bool) -> None:
    result = daybreak(tmp_path, *command)
    doc = json.loads(result.stdout)  # stdout is the JSON alone
    assert isinstance(doc, dict), result
    assert result.returncode == 0, result.stderr[-2000:]
    if command[0] != "imports":  # the audit's children keep what modules print to themselves
        assert "printed at import" in result.stderr
    for line in FACTORY_LINES if runs_factories else ():
        assert line in result.stderr


class TestAFailedStart:
    def test_leaks_json_prints_the_report_with_verdict_error(self, tmp_path: Path) -> None:
        result = daybreak(tmp_path, "leaks", f"{APP}:fails", "--json", "--cycles", "3")
        assert result.returncode == 1, result
        doc = json.loads(result.stdout)
        assert doc["verdict"] == "error" and doc["name"] == "chatty-fails"
        error = doc["error"]
        assert error["type"] == "StartupError" and error["cycle"] == 1
        assert error["component"] == "database"
        assert error["where"] == marker_line(str(APP), "FAIL")
        assert "ConnectionError: cannot reach postgresql://app:***@127.0.0.1:1/db" in error["message"]
        assert "t0ps3cret" not in result.stdout + result.stderr
        assert "printed before failing" in result.stderr

    def test_leaks_text_names_the_cycle_and_the_error(self, tmp_path: Path) -> None:
        result = daybreak(tmp_path, "leaks", f"{APP}:fails_later", "--cycles", "3", "--warmup", "0")
        assert result.returncode == 1, result
        assert "daybreak leaks chatty-fails-later: error: the start failed in cycle 3 of 3" in result.stdout
        assert "cannot reach postgresql://app:***@" in result.stdout
        assert "t0ps3cret" not in result.stdout + result.stderr

    def test_doctor_reports_a_leak_cycle_that_fails_to_start(self, tmp_path: Path) -> None:
        # The doctor's own start succeeds (start 1); the leak check's second cycle (start 3) fails.
        result = daybreak(tmp_path, "doctor", f"{APP}:fails_later", "--json", "--skip", "imports",
                          "--cycles", "3", "--warmup", "0")
        assert result.returncode == 1, result
        doc = json.loads(result.stdout)
        assert doc["start"]["status"] == "stopped"
        leaks = doc["leaks"]
        assert leaks["verdict"] == "error" and leaks["error"]["cycle"] == 2
        assert doc["failures"] == ["leaks: the start failed in cycle 2 of 3: critical component 'database' "
                                   "failed: ConnectionError: start 3: cannot reach "
                                   "postgresql://app:***@127.0.0.1:1/db"]
        assert "t0ps3cret" not in result.stdout + result.stderr

    def test_doctor_text_and_html_say_it(self, tmp_path: Path) -> None:
        result = daybreak(tmp_path, "doctor", f"{APP}:fails_later", "--skip", "imports",
                          "--cycles", "3", "--warmup", "0", "--html", str(tmp_path / "doctor.html"))
        assert result.returncode == 1, result
        assert "leaks    error: the start failed in cycle 2 of 3" in result.stdout
        assert "Traceback" not in result.stderr
        page = (tmp_path / "doctor.html").read_text(encoding="utf-8")
        assert "the start failed in cycle 2 of 3" in page and "t0ps3cret" not in page
