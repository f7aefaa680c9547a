"""A long import audit in a CI log: progress on stderr, and what a signal leaves (issue 15.8).

Each test runs the real command in a subprocess whose fixture modules wait
on files this test creates once it has read the line it waits for.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from _watched import Watched
from daybreak._imports_progress import AuditProgress, Printer, Tracker

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "imports_progress"
SRC = HERE.parent / "src"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and sessions")


class Command(Watched):
    """``daybreak ARGS`` in a subprocess, with the folder its fixtures wait on and its own TMPDIR."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.gate = tmp_path / "gate"
        self.temp = tmp_path / "tmp"  # the command's TMPDIR: its daybreak-imports-* folder goes here
        self.gate.mkdir()
        self.temp.mkdir()
        env = dict(os.environ, PYTHONPATH=str(SRC), PROGRESS_GATE=str(self.gate), TMPDIR=str(self.temp),
                   NO_COLOR="1", PYTHONUNBUFFERED="1")
        super().__init__([sys.executable, "-m", "daybreak.cli", *args], env=env, cwd=tmp_path,
                         err_path=tmp_path / "stderr")

    def release(self, name: str) -> None:
        (self.gate / name).touch()

    def child_is_gone(self) -> bool:
        """Whether the audit's child (it wrote its pid at import) no longer exists."""
        pid = int((self.gate / "pid").read_text())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def imports(tmp_path: Path, target: str, *args: str) -> Command:
    # A timeout far above the test's waits: they must not count as hangs.
    return Command(tmp_path, "imports", target, "--path", str(FIXTURES), "--timeout", "600", *args)


def test_progress_names_done_total_and_the_slowest(tmp_path: Path) -> None:
    """A log line every few seconds: modules done of the total, the slowest finished one, the one importing."""
    run = imports(tmp_path, "progress_pkg", "--json")
    try:
        first = run.wait_for_line("daybreak imports: ", "importing progress_pkg.heavy")
        run.release("heavy")  # heavy has now taken a progress interval: the slowest by far
        line = run.wait_for_line("importing progress_pkg.last", "slowest so far: progress_pkg.heavy")
        run.release("last")
    finally:
        out, err = run.finish()
    assert run.proc.returncode == 0, err
    assert first.startswith("daybreak imports: 2/4 modules, "), first
    assert line.startswith("daybreak imports: 3/4 modules, "), line
    assert json.loads(out)["verdict"] == "clean"  # stdout holds the JSON alone
    assert not list(run.temp.iterdir())


@pytest.mark.parametrize(("signum", "code", "as_json"), [(signal.SIGTERM, 143, True), (signal.SIGINT, 130, False)])
def test_a_signal_prints_what_was_found_and_removes_the_temporary_folder(
    tmp_path: Path, signum: int, code: int, as_json: bool
) -> None:
    """The side effect found before the signal is reported, the rest is pending; no child, no folder is left."""
    run = imports(tmp_path, "signal_pkg", *(["--json"] if as_json else []))
    try:
        run.wait_for_line("importing signal_pkg.waits")  # writes is done, its finding read by the parent
        assert [p.name[:17] for p in run.temp.iterdir()] == ["daybreak-imports-"]
        run.proc.send_signal(signum)
    finally:
        out, err = run.finish()
    assert run.proc.returncode == code, (out, err)
    name = signal.Signals(signum).name
    assert f"daybreak imports: interrupted by {name}; the report holds what was found until then" in err
    writes = f"{FIXTURES / 'signal_pkg' / 'writes.py'}:5"
    if as_json:
        doc = json.loads(out)
        assert (doc["partial"], doc["verdict"], doc["pending"]) == (True, "dirty", ["signal_pkg.after"])
        (effect,) = [e for m in doc["modules"] for e in m["side_effects"]]
        assert (effect["event"], effect["where"]) == ("open", writes)
        assert {m["name"]: m["seconds"] for m in doc["modules"]}["signal_pkg.waits"] is None
    else:
        assert out.startswith("daybreak imports signal_pkg: dirty (3 modules, 1 side effect, ")
        assert "1 not reached)" in out.splitlines()[0]
        assert "  not reached (1): signal_pkg.after" in out
        assert f"at {writes}" in out
    assert not list(run.temp.iterdir())
    assert run.child_is_gone()


def test_doctor_shows_the_audits_progress_and_a_signal_ends_it_with_the_partial_report(tmp_path: Path) -> None:
    """Through doctor: progress lines on stderr; SIGTERM in the audit prints the partial audit and exits 143."""
    app = FIXTURES / "sigapp" / "app.py"
    run = Command(tmp_path, "doctor", f"{app}:registry", "--import-timeout", "600", "--json")
    try:
        line = run.wait_for_line("doctor: imports  ", "importing sigapp.waits")
        run.proc.send_signal(signal.SIGTERM)
    finally:
        out, err = run.finish()
    assert run.proc.returncode == 143, (out, err)
    assert line.startswith("doctor: imports  2/3 modules, "), line
    assert "daybreak doctor: interrupted by SIGTERM during the import audit" in err
    doc = json.loads(out)
    assert (doc["interrupted"], doc["verdict"], doc["imports"]["partial"]) == ("SIGTERM", "fail", True)
    assert doc["failures"][-1] == "interrupted by SIGTERM during the import audit (0 of 3 modules not reached)"
    (effect,) = [e for m in doc["imports"]["modules"] for e in m["side_effects"]]
    assert effect["where"] == f"{FIXTURES / 'sigapp' / 'waits.py'}:5"
    assert "start" not in doc and "leaks" not in doc
    assert not list(run.temp.iterdir())
    assert run.child_is_gone()


class TestDisplay:
    """What the tracker makes of the children's records, and how the printer shows it (no processes)."""

    def test_the_tracker_counts_done_and_settled_modules_and_keeps_the_slowest(self) -> None:
        seen: list[AuditProgress] = []
        track = Tracker(4, seen.append)
        track({"k": "begin", "module": "a"})
        track({"k": "done", "module": "a", "seconds": 2.0})
        track({"k": "begin", "module": "b"})
        track({"k": "done", "module": "b", "seconds": 0.5})
        track({"k": "begin", "module": "c"})
        track({"k": "settled", "modules": ["c", "d"], "hang": "/x/c.py:3"})
        last = seen[-1]
        assert (last.done, last.total, last.slowest, last.importing) == (4, 4, ("a", 2.0), ())
        assert last.hangs == (("c", "/x/c.py:3"),)
        assert seen[-2].importing[0][0] == "c"

    def test_a_log_gets_a_line_per_interval_and_each_hang_at_once(self) -> None:
        class Stream:
            def __init__(self) -> None:
                self.text = ""

            def write(self, text: str) -> int:
                self.text += text
                return len(text)

            def flush(self) -> None:
                pass

            def isatty(self) -> bool:
                return False

        stream = Stream()
        printer = Printer(stream, every=3600)  # type: ignore[arg-type]
        progress = AuditProgress(1, 3, ("a", 0.25), (("b", 2.0),), (), 3.0)
        printer(progress)
        assert stream.text == ""  # within the first interval: a short audit prints only its report
        printer(AuditProgress(1, 3, ("a", 0.25), (), (("b", "/nowhere/b.py:7"),), 4.0))
        assert stream.text == "daybreak imports: b hung at /nowhere/b.py:7; a fresh process goes on\n"
        printer.every = 0
        printer(progress)
        assert stream.text.splitlines()[-1] == (
            "daybreak imports: 1/3 modules, 3 s; slowest so far: a 250 ms; importing b (2 s)"
        )
