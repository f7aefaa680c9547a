"""Every ``--json`` command keeps stdout for the JSON alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
