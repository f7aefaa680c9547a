"""``daybreak doctor``: imports, start, stop and leaks in one report and one exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "doctor"
APP = FIXTURES / "dirtyapp" / "app.py"
ROOT = Path(__file__).resolve().parent.parent


def line_of(marker: str) -> int:
    return next(i for i, text in enumerate(APP.read_text().splitlines(), 1) if marker in text)


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "daybreak.cli", "doctor", f"{APP}:registry", "--cycles", "4",
                           *args], capture_output=True, text=True, timeout=120, env=environment)


def test_a_clean_service_passes_with_one_combined_json(tmp_path: Path) -> None:
    junit = tmp_path / "doctor.xml"
    result = doctor("--json", "--junit", str(junit))
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "pass" and doc["failures"] == []
    assert doc["imports"]["verdict"] == "clean"
    assert doc["start"]["start_status"] == "ready"
    assert doc["leaks"]["verdict"] == "clean"
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests") or 0) >= 4


def test_import_side_effect_fails_with_its_line() -> None:
    result = doctor("--json", "--skip", "leaks", DIRTYAPP_THREAD_AT_IMPORT="1")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    effects = [e for m in doc["imports"]["modules"] for e in m["side_effects"]]
    assert any(e["event"] == "threading.Thread.start" and e["where"].endswith(f"app.py:{line_of('IMPORT-LINE')}")
               for e in effects)
    assert doc["failures"][0].startswith("imports:")


def test_failed_start_is_reported_redacted_and_skips_the_leak_check(tmp_path: Path) -> None:
    junit = tmp_path / "doctor.xml"
    result = doctor("--junit", str(junit), DIRTYAPP_FAIL="1")
    assert result.returncode == 1
    assert f"app.py:{line_of('FAIL-LINE')}" in result.stdout
    assert "t0ps3cret" not in result.stdout + result.stderr + junit.read_text()
    assert "leaks    " not in result.stdout  # no leak check of a service that cannot start
    failures = [c for c in ET.parse(junit).getroot() if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["start"]


def test_leak_fails_with_the_allocation_site(tmp_path: Path) -> None:
    html = tmp_path / "doctor.html"
    result = doctor("--html", str(html), "--skip", "imports", DIRTYAPP_LEAK="1")
    assert result.returncode == 1
    assert f"app.py:{line_of('LEAK-LINE')}" in result.stdout
    assert "leaks: resources grow" in result.stdout
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and 'id="leaks"' in page


@pytest.mark.parametrize("args", [["--cycles", "2"], ["--warmup", "-1"]])
def test_bad_options_are_usage_errors(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "daybreak.cli", "doctor", f"{APP}:registry", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_the_readme_command_passes_on_the_reference_service() -> None:
    result = subprocess.run([sys.executable, "-m", "daybreak.cli", "doctor",
                             str(ROOT / "examples" / "chat_service" / "app.py") + ":registry"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "doctor   pass" in result.stdout
