"""``daybreak doctor`` says on the terminal which check runs: each takes seconds."""

from __future__ import annotations

import itertools
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).parent / "fixtures" / "doctor" / "dirtyapp" / "app.py"


def doctor_on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Exit status, stdout, and what the terminal on stderr received."""
    main, side = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "daybreak.cli", "doctor", f"{APP}:registry", *args],
                               stdout=subprocess.PIPE, stderr=side, text=True)
    os.close(side)
    received = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the other side closed: the process is done with it
            break
        if not chunk:
            break
        received += chunk
    os.close(main)
    stdout, _ = process.communicate(timeout=120)
    return process.returncode, stdout, received.decode()


def test_doctor_shows_each_check_on_one_status_line_then_erases_it() -> None:
    code, stdout, terminal = doctor_on_a_terminal("--cycles", "4")
    assert code == 0, stdout + terminal
    shown = re.findall(r"\r\x1b\[2Kdoctor: ([^\r]*)", terminal)
    # As each begins and ends; the import audit redraws its line as it goes.
    assert [check for check, _ in itertools.groupby(line.split()[0] for line in shown)] == ["imports", "start", "leaks"]
    done = shown.index("imports  clean: 2 modules")
    assert shown[0].startswith("imports  auditing")
    assert all(re.fullmatch(r"imports  \d+/2 modules, .*", line) for line in shown[1:done])
    assert [line.split()[0] for line in shown[-4:]] == ["start"] * 2 + ["leaks"] * 2
    assert terminal.endswith("\r\x1b[2K")  # erased: the summary on stdout says it all
    assert "doctor   pass" in stdout and "doctor:" not in stdout


def test_doctor_shows_no_status_line_in_a_log_or_with_json() -> None:
    piped = subprocess.run([sys.executable, "-m", "daybreak.cli", "doctor", f"{APP}:registry", "--cycles", "4",
                            "--skip", "imports"], capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and "doctor:" not in piped.stderr
    code, _, terminal = doctor_on_a_terminal("--cycles", "4", "--skip", "imports", "--json")
    assert code == 0 and "doctor:" not in terminal
