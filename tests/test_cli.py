"""The ``daybreak`` command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "cli"
TARGET = f"{FIXTURES / 'services.py'}"


def daybreak(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daybreak.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=FIXTURES)


class TestPlan:
    def test_text(self) -> None:
        result = daybreak("plan", f"{TARGET}:ok")
        assert result.returncode == 0, result.stderr
        assert "phase init" in result.stdout and "database  <- settings" in result.stdout

    @pytest.mark.parametrize(("fmt", "marker"), [("dot", "digraph"), ("mermaid", "flowchart LR")])
    def test_graph_formats(self, fmt: str, marker: str) -> None:
        result = daybreak("plan", f"{TARGET}:ok", "--format", fmt)
        assert result.returncode == 0
        assert result.stdout.startswith(marker)

    def test_json_by_module_name_and_factory_callable(self) -> None:
        result = daybreak("plan", "services:make_registry", "--format", "json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["order"] == ["settings", "database", "analytics"]

    def test_declaration_error_is_exit_2_without_traceback(self) -> None:
        result = daybreak("plan", f"{TARGET}:broken")
        assert result.returncode == 2
        assert "needs Cache" in result.stderr and "Traceback" not in result.stderr

    @pytest.mark.parametrize(("target", "message"), [
        ("services:nope", "has no attribute 'nope'"),
        ("services:not_a_registry", "is a int, not a daybreak.Registry"),
        ("no_such_module:registry", "no module named 'no_such_module'"),
        ("missing/file.py:registry", "no such file"),
        ("services", "TARGET must be module:attribute"),
    ])
    def test_bad_targets_are_one_line_and_exit_2(self, target: str, message: str) -> None:
        result = daybreak("plan", target)
        assert result.returncode == 2
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


class TestStart:
    def test_ready_prints_timeline_and_exits_0(self) -> None:
        result = daybreak("start", f"{TARGET}:ok")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ok ready" in result.stdout
        assert "ANALYTICS_URL is not set" in result.stdout  # the disabled reason

    def test_json_is_the_report_and_nothing_else(self) -> None:
        result = daybreak("start", f"{TARGET}:ok", "--json")
        report = json.loads(result.stdout)
        assert report["status"] == "stopped"
        assert [c["status"] for c in report["components"]] == ["stopped", "stopped", "disabled"]

    def test_degraded_is_ok_unless_strict(self) -> None:
        assert daybreak("start", f"{TARGET}:degraded").returncode == 0
        assert daybreak("start", f"{TARGET}:degraded", "--strict").returncode == 1

    def test_failure_exit_1_names_component_where_and_hides_password(self) -> None:
        result = daybreak("start", f"{TARGET}:failing")
        assert result.returncode == 1
        line = next(i for i, text in enumerate((FIXTURES / "services.py").read_text().splitlines(), 1)
                    if "FAILING-LINE" in text)
        assert "failing_database" in result.stdout
        assert f"services.py:{line}" in result.stdout
        assert "s3cr3t-pass" not in result.stdout + result.stderr
        assert "app:***@127.0.0.1" in result.stdout

    def test_leftover_thread_is_reported_and_fails(self) -> None:
        result = daybreak("start", f"{TARGET}:leaky", "--json")
        assert result.returncode == 1
        threads = json.loads(result.stdout)["leftovers"]["threads"]
        assert [t["name"] for t in threads] == ["forgotten-worker"]
        assert threads[0]["component"] == "leaky_worker"


class TestProgress:
    async def test_lines_follow_the_start(self) -> None:
        import io
        import sys

        sys.path.insert(0, str(FIXTURES))
        from services import ok

        from daybreak._console import Progress

        stream = io.StringIO()
        system = ok.start()
        progress = Progress(system, stream=stream)
        progress.draw()
        assert "settings" in stream.getvalue() and "waiting" in stream.getvalue()
        async with system:
            progress.draw()
        redrawn = stream.getvalue().split("F", 1)[1]  # after the cursor went back up
        assert "done" in redrawn and "disabled" in redrawn and "ANALYTICS_URL is not set" in redrawn
        assert "waiting" not in redrawn

    def test_long_lines_are_cut_to_the_width(self) -> None:
        import io

        from daybreak._console import Progress

        progress = Progress.__new__(Progress)
        progress.stream = io.StringIO()
        cut = progress._fit("\x1b[31mx\x1b[0m" + "y" * 500)
        assert len(cut) == 120 and cut.endswith("…") and "\x1b" not in cut
