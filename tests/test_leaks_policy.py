"""The leak checker's policy: an allow-list with reasons, the threshold, hints, and once=True steps."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from daybreak._config import ConfigError
from daybreak._target import load_target
from daybreak.html import render
from daybreak.leaks import Allow, check, load_policy

HERE = Path(__file__).resolve().parent
POLICY = HERE / "fixtures" / "leaky" / "policy.py"
FAKELIB = HERE / "fixtures" / "leaky" / "fakelib" / "__init__.py"
SRC = HERE.parent / "src"
KIB = 1024
ALLOW_FAKELIB = '[tool.daybreak.leaks]\nallow = [{site = "fakelib/*", reason = "fakelib keeps what it saw"}]\n'


def where(path: Path, marker: str) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()
    (line,) = [n for n, text in enumerate(lines, 1) if text.rstrip().endswith(f"# marker: {marker}")]
    return f"{path}:{line}"


@pytest.fixture
def fixture() -> Iterator[types.ModuleType]:
    load_target(f"{POLICY}:known")
    module = sys.modules["leaky.policy"]
    yield module
    module.release()


def daybreak(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "daybreak.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


# -- the allow-list ------------------------------------------------------------------------------
class TestAllowMatches:
    def test_a_library_glob_matches_its_files_wherever_it_is_installed(self) -> None:
        allow = Allow("alembic/*", "re-run per cycle")
        assert allow.matches("/venv/lib/python3.11/site-packages/alembic/script/base.py:12")
        assert not allow.matches("/repo/app/alembic_helpers.py:3")

    def test_a_file_matches_at_any_line_and_a_line_only_itself(self) -> None:
        assert Allow("app/cache.py", "r").matches("/repo/app/cache.py:12")
        assert Allow("app/cache.py:12", "r").matches("/repo/app/cache.py:12")
        assert not Allow("app/cache.py:12", "r").matches("/repo/app/cache.py:13")

    def test_a_frame_of_the_stack_matches_too(self) -> None:
        stack = ("/site-packages/asyncpg/pool.py:400", "/repo/app/db.py:9")
        assert Allow("asyncpg/*", "r").matches("/repo/app/db.py:9", stack)
        assert not Allow("redis/*", "r").matches("/repo/app/db.py:9", stack)


class TestConfig:
    def test_allow_and_threshold_are_read_from_pyproject(self, tmp_path: Path) -> None:
        (tmp_path / "pyproject.toml").write_text(
            '[tool.daybreak.leaks]\nthreshold = "2KiB"\n'
            'allow = [{site = "alembic/*", reason = "Alembic re-reads its scripts per run"}]\n')
        policy = load_policy(str(tmp_path))
        assert policy.threshold == 2 * KIB
        assert policy.allow == (Allow("alembic/*", "Alembic re-reads its scripts per run"),)
        assert policy.threshold_or(None) == 2 * KIB and policy.threshold_or(64) == 64

    def test_no_section_is_the_default_policy(self, tmp_path: Path) -> None:
        (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
        policy = load_policy(str(tmp_path))
        assert policy.allow == () and policy.threshold_or(None) == KIB

    @pytest.mark.parametrize(("toml", "message"), [
        ('allow = [{site = "alembic/*"}]', r"allow\[0\] \(site 'alembic/\*'\): needs a reason"),
        ('allow = [{site = "a/*", reason = "  "}]', r"allow\[0\] \(site 'a/\*'\): needs a reason"),
        ('allow = [{reason = "x"}]', r"allow\[0\]: needs a site"),
        ('allow = [{site = "a", reason = "x", kind = "memory"}]', r"allow\[0\]: unknown key\(s\) kind"),
        ('allow = "alembic/*"', r"allow must be a list of tables"),
        ('threshold = "lots"', r"threshold: expected a size"),
        ('treshold = 10', r"unknown key\(s\) treshold; known keys are allow, threshold"),
    ])
    def test_a_bad_entry_is_one_clear_error(self, tmp_path: Path, toml: str, message: str) -> None:
        (tmp_path / "pyproject.toml").write_text(f"[tool.daybreak.leaks]\n{toml}\n")
        with pytest.raises(ConfigError, match=message):
            load_policy(str(tmp_path))

    @pytest.mark.parametrize("command", ["leaks", "doctor"])
    def test_the_commands_print_one_line_and_exit_2(self, tmp_path: Path, command: str) -> None:
        (tmp_path / "pyproject.toml").write_text('[tool.daybreak.leaks]\nallow = [{site = "alembic/*"}]\n')
        result = daybreak(tmp_path, command, f"{POLICY}:known")
        assert result.returncode == 2, result
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"daybreak {command}: {tmp_path / 'pyproject.toml'}: "
                                        "[tool.daybreak.leaks] allow[0] (site 'alembic/*'): needs a reason")


class TestAllowed:
    def test_without_the_allow_list_a_library_is_a_leak(self, fixture: types.ModuleType) -> None:
        report = check(fixture.known, cycles=4, warmup=1)
        assert report.verdict == "leak"
        assert [s.where for s in report.sites] == [where(FAKELIB, "fakelib")]

    def test_allowed_growth_is_shown_with_its_reason_and_does_not_fail(self, fixture: types.ModuleType) -> None:
        report = check(fixture.known, cycles=4, warmup=1, allow=[Allow("fakelib/*", "fakelib keeps what it saw")])
        assert report.verdict == "clean" and report.sites == ()
        (allowed,) = report.allowed
        assert (allowed.kind, allowed.where, allowed.site, allowed.reason) == (
            "memory", where(FAKELIB, "fakelib"), "fakelib/*", "fakelib keeps what it saw")
        assert 16 * KIB <= allowed.per_cycle < 17 * KIB
        doc = report.to_dict()
        assert doc["verdict"] == "clean" and doc["kinds"]["memory"] == "clean"
        assert doc["allowed"] == [allowed.to_dict()]
        text = report.to_text()
        assert "memory   allowed" in text
        assert re.search(rf"\n {{13}}allowed  \+16\.\d KiB/cycle  {re.escape(where(FAKELIB, 'fakelib'))}: "
                         "fakelib keeps what it saw\n", text), text

    def test_what_is_not_allowed_still_leaks(self, fixture: types.ModuleType) -> None:
        report = check(fixture.mixed, cycles=4, warmup=1, allow=[Allow("fakelib/*", "fakelib keeps it")])
        assert report.verdict == "leak"
        assert [s.where for s in report.sites] == [where(POLICY, "own")]
        assert [a.where for a in report.allowed] == [where(FAKELIB, "fakelib")]

    def test_the_html_report_lists_them_with_their_reason(self, fixture: types.ModuleType) -> None:
        report = check(fixture.known, cycles=4, warmup=1, allow=[Allow("fakelib/*", "fakelib keeps <what> it saw")])
        page = render({"leaks": report.to_dict()})
        assert "Allowed (pyproject.toml)" in page and "fakelib keeps &lt;what&gt; it saw" in page

    @pytest.mark.parametrize("command", ["leaks", "doctor"])
    def test_both_commands_follow_pyproject(self, tmp_path: Path, command: str) -> None:
        (tmp_path / "pyproject.toml").write_text(ALLOW_FAKELIB)
        extra = ["--skip", "imports"] if command == "doctor" else []
        result = daybreak(tmp_path, command, f"{POLICY}:known", "--json", "--cycles", "4", "--warmup", "1", *extra)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        doc = json.loads(result.stdout)
        leaks = doc["leaks"] if command == "doctor" else doc
        assert leaks["verdict"] == "clean"
        assert [(a["where"], a["reason"]) for a in leaks["allowed"]] == [
            (where(FAKELIB, "fakelib"), "fakelib keeps what it saw")]
        text = daybreak(tmp_path, command, f"{POLICY}:known", "--cycles", "4", "--warmup", "1", *extra).stdout
        assert "fakelib keeps what it saw" in text


# -- the threshold and the hint below it -----------------------------------------------------------
class TestThreshold:
    def test_small_steady_growth_passes_with_a_hint_naming_the_site(self, fixture: types.ModuleType) -> None:
        report = check(fixture.steady, cycles=6, warmup=1)
        assert report.verdict == "clean"
        (hint,) = report.hints
        site = re.escape(where(POLICY, "crumbs"))
        assert re.fullmatch(rf"\+0\.[23] KiB/cycle below threshold \(1 KiB\) at {site}; --threshold to tighten",
                            hint), hint
        assert f"hint: {hint}" in report.to_text()
        assert report.to_dict()["hints"] == [hint]

    def test_the_threshold_tightened_calls_it_a_leak(self, fixture: types.ModuleType) -> None:
        report = check(fixture.steady, cycles=6, warmup=1, threshold=128)
        assert report.verdict == "leak" and report.hints == ()
        assert report.sites[0].where == where(POLICY, "crumbs")

    def test_growth_under_a_raised_threshold_gets_its_hint(self, fixture: types.ModuleType) -> None:
        report = check(fixture.known, cycles=4, warmup=1, threshold=64 * KIB)
        assert report.verdict == "clean"
        (hint,) = report.hints
        site = re.escape(where(FAKELIB, "fakelib"))
        assert re.fullmatch(rf"\+16\.\d KiB/cycle below threshold \(64 KiB\) at {site}; --threshold to tighten",
                            hint), hint

    def test_nothing_growing_gets_no_hint(self, fixture: types.ModuleType) -> None:
        report = check(fixture.once, cycles=4, warmup=1)
        assert report.verdict == "clean" and report.hints == ()

    def test_doctor_takes_threshold_and_pyproject_s(self, tmp_path: Path) -> None:
        (tmp_path / "pyproject.toml").write_text('[tool.daybreak.leaks]\nthreshold = "64KiB"\n')
        args = ("doctor", f"{POLICY}:known", "--json", "--skip", "imports", "--cycles", "4", "--warmup", "1")
        doc = json.loads(daybreak(tmp_path, *args).stdout)
        assert doc["verdict"] == "pass" and doc["leaks"]["threshold_bytes"] == 64 * KIB
        doc = json.loads(daybreak(tmp_path, *args, "--threshold", "1KiB").stdout)
        assert doc["verdict"] == "fail" and doc["leaks"]["threshold_bytes"] == KIB


# -- once=True ----------------------------------------------------------------------------------------
class TestOnce:
    def test_a_once_step_runs_in_the_first_cycle_only_and_its_growth_is_not_counted(
            self, fixture: types.ModuleType) -> None:
        report = check(fixture.once, cycles=4, warmup=1)
        assert report.verdict == "clean", report.to_text()
        assert len(fixture.runs) == 1
        assert fixture.events == ["migrated", "stopped"]  # kept for every cycle, stopped at the very end

    def test_the_same_step_without_once_leaks(self, fixture: types.ModuleType) -> None:
        report = check(fixture.every, cycles=4, warmup=1)
        assert report.verdict == "leak"
        assert report.sites[0].where == where(POLICY, "migrate")
        assert len(fixture.runs) > 5
