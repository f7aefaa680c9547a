"""Every target error is one line on stderr and exit 2, in the module form too (issue 13, item 8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "fixtures" / "target"


def daybreak(*args: str) -> subprocess.CompletedProcess[str]:
    # The installed script, as users run it: unlike `python -m`, it does not put the
    # working directory on sys.path, where the module form is looked up.
    script = Path(sys.executable).with_name("daybreak")
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120, cwd=HERE)


@pytest.mark.parametrize("command", ["plan", "start", "leaks", "doctor"])
@pytest.mark.parametrize(("target", "message"), [
    ("pkg.main:nope", "module 'pkg.main' has no attribute 'nope'"),
    ("pkg.nope:registry", "no module named 'pkg.nope'"),
    ("nope.main:registry", "no module named 'nope'"),
    ("pkg.main:not_a_registry", "is a int, not a daybreak.Registry or an ASGI app"),
    ("pkg.main:broken_factory", "raised RuntimeError: no config at postgresql://u:***@db/app"),
    ("exits:registry", "called sys.exit(3)"),
    ("crashes:registry", "raised ImportError: cannot import name 'Settings' from 'config'"),
])
def test_a_target_error_is_one_line_and_exit_2(command: str, target: str, message: str) -> None:
    result = daybreak(command, target)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"daybreak {command}: ") and message in line
    assert "hunter2" not in result.stderr and not result.stdout


def test_doctor_finds_the_package_of_the_module_form_from_the_working_directory() -> None:
    result = daybreak("doctor", "pkg.main:registry", "--cycles", "5", "--warmup", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imports  clean: 2 modules" in result.stdout
