"""Tests for daybreak.imports, the import auditor (``daybreak imports``)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daybreak import _imports_run
from daybreak._audit_child import OTHER, PACKAGE, STDLIB, USER, FrameClassifier, parse_faulthandler_dump
from daybreak._redact import redact
from daybreak.imports import (
    HungModule,
    ImportAudit,
    ImportFailure,
    ModuleReport,
    SideEffect,
    TargetNotFoundError,
    add_arguments,
    audit,
    find_cycles,
    module_level_imports,
    run,
)

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures" / "importcases"
PKG = FIXTURES / "sidefx_pkg"
SRC = TESTS.parent / "src"

SIDEFX_MODULES = [
    "sidefx_pkg",
    "sidefx_pkg.boom",
    "sidefx_pkg.clean",
    "sidefx_pkg.cyc_a",
    "sidefx_pkg.cyc_b",
    "sidefx_pkg.dep_user",
    "sidefx_pkg.hang",
    "sidefx_pkg.hooks",
    "sidefx_pkg.lazy_a",
    "sidefx_pkg.lazy_b",
    "sidefx_pkg.rawthread",
    "sidefx_pkg.sighandler",
    "sidefx_pkg.sock",
    "sidefx_pkg.subproc",
    "sidefx_pkg.tc_a",
    "sidefx_pkg.tc_b",
    "sidefx_pkg.threads",
    "sidefx_pkg.uses_clean",
    "sidefx_pkg.writes",
]
CLEAN_MODULES = [
    "sidefx_pkg",
    "sidefx_pkg.clean",
    "sidefx_pkg.cyc_a",
    "sidefx_pkg.cyc_b",
    "sidefx_pkg.lazy_a",
    "sidefx_pkg.lazy_b",
    "sidefx_pkg.tc_a",
    "sidefx_pkg.tc_b",
    "sidefx_pkg.uses_clean",
]


def where(path: Path, marker: str) -> str:
    """``file:line`` of the fixture line tagged ``# <- marker``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.rstrip().endswith(f"# <- {marker}"):
            return f"{path}:{number}"
    raise AssertionError(f"no '# <- {marker}' in {path}")


def effects(report: ModuleReport) -> list[tuple[str, str, str | None]]:
    return [(e.event, e.detail, e.where) for e in report.side_effects]


@dataclass(frozen=True)
class Env:
    port: int
    written: Path
    pycache: Path


@pytest.fixture(scope="module")
def sidefx_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A loopback listener, a directory to write to, and a fresh pycache prefix."""
    written = tmp_path_factory.mktemp("written")
    pycache = tmp_path_factory.mktemp("pycache")
    with socket.create_server(("127.0.0.1", 0)) as listener, pytest.MonkeyPatch.context() as patch:
        port = listener.getsockname()[1]
        patch.setenv("DAYBREAK_TEST_PORT", str(port))
        patch.setenv("DAYBREAK_TEST_TMP", str(written))
        # A fresh prefix and bytecode writing on: every child really writes .pyc files.
        patch.setenv("PYTHONPYCACHEPREFIX", str(pycache))
        patch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
        yield Env(port, written, pycache)


@dataclass(frozen=True)
class Audited:
    result: ImportAudit
    elapsed: float
    env: Env


@pytest.fixture(scope="module")
def sidefx(sidefx_env: Env) -> Audited:
    """One audit of the whole fixture package, shared by the tests that read it."""
    started = time.monotonic()
    result = audit("sidefx_pkg", path=[str(FIXTURES)], timeout=2)
    return Audited(result, time.monotonic() - started, sidefx_env)


class TestPackageAudit:
    """Auditing the sidefx_pkg fixture package."""

    def test_every_module_is_audited_without_importing_in_the_parent(self, sidefx: Audited) -> None:
        """Discovery walks the directory; the package never enters this process."""
        assert [m.name for m in sidefx.result.modules] == SIDEFX_MODULES
        assert not any(name == "sidefx_pkg" or name.startswith("sidefx_pkg.") for name in sys.modules)

    def test_side_effects_are_exact_with_their_lines(self, sidefx: Audited) -> None:
        """Each side effect once, with its detail and the line of the package that caused it."""
        port = sidefx.env.port
        found = {m.name: effects(m) for m in sidefx.result.modules if m.side_effects}
        assert found == {
            "sidefx_pkg.sock": [
                ("socket.getaddrinfo", f"127.0.0.1:{port}", where(PKG / "sock.py", "connect")),
                ("socket.connect", f"127.0.0.1:{port}", where(PKG / "sock.py", "connect")),
            ],
            "sidefx_pkg.threads": [
                (
                    "threading.Thread.start",
                    "sidefx_pkg.threads._work (thread 'sidefx-worker')",
                    where(PKG / "threads.py", "thread"),
                ),
            ],
            "sidefx_pkg.rawthread": [
                ("_thread.start_new_thread", "sidefx_pkg.rawthread._work", where(PKG / "rawthread.py", "rawthread")),
            ],
            "sidefx_pkg.writes": [
                ("open", f"{sidefx.env.written / 'written.txt'} (mode w)", where(PKG / "writes.py", "write")),
            ],
            "sidefx_pkg.subproc": [
                (
                    "subprocess.Popen",
                    "true postgresql://user:***@localhost/db",
                    where(PKG / "subproc.py", "popen"),
                ),
                ("os.system", "true", where(PKG / "subproc.py", "system")),
            ],
            "sidefx_pkg.sighandler": [
                (
                    "signal.signal",
                    "SIGUSR2 -> sidefx_pkg.sighandler._on_signal",
                    where(PKG / "sighandler.py", "signal"),
                ),
            ],
            "sidefx_pkg.hooks": [
                ("sys.setprofile", "", where(PKG / "hooks.py", "setprofile")),
                ("threading.settrace", "sidefx_pkg.hooks._trace", where(PKG / "hooks.py", "settrace")),
            ],
            # The bind happens in sidefx_dep, outside the package: reported at
            # the package line that imported it.
            "sidefx_pkg.dep_user": [
                ("socket.bind", "127.0.0.1:0", where(PKG / "dep_user.py", "dep")),
            ],
        }

    def test_the_side_effects_really_happened(self, sidefx: Audited) -> None:
        """The findings are not guesses: the file was written."""
        assert (sidefx.env.written / "written.txt").read_text(encoding="utf-8") == "written at import\n"

    def test_pyc_writes_of_an_ordinary_import_are_not_side_effects(self, sidefx: Audited) -> None:
        """The children wrote .pyc files (fresh prefix), and no module reports them."""
        for name in CLEAN_MODULES:
            assert sidefx.result.module(name).side_effects == (), name
        written = {p.name.split(".")[0] for p in sidefx.env.pycache.rglob("*.pyc")}
        assert {"__init__", "clean", "cyc_a", "cyc_b", "lazy_a", "tc_b", "uses_clean", "writes"} <= written

    def test_the_cycle_is_reported_once(self, sidefx: Audited) -> None:
        """cyc_a <-> cyc_b, rotated and closed; lazy and TYPE_CHECKING back-imports are not cycles."""
        assert sidefx.result.cycles == (("sidefx_pkg.cyc_a", "sidefx_pkg.cyc_b", "sidefx_pkg.cyc_a"),)

    def test_static_imports_resolve_submodules(self, sidefx: Audited) -> None:
        """`from pkg import mod` and `from . import mod` are imports of pkg.mod."""
        graph = {m.name: m.imports for m in sidefx.result.modules}
        assert graph["sidefx_pkg.uses_clean"] == ("sidefx_pkg.clean",)
        assert graph["sidefx_pkg.cyc_a"] == ("sidefx_pkg.cyc_b",)
        assert graph["sidefx_pkg.cyc_b"] == ("sidefx_pkg.cyc_a",)  # inside a module-level try
        assert graph["sidefx_pkg.lazy_a"] == ("sidefx_pkg.lazy_b",)
        assert graph["sidefx_pkg.lazy_b"] == ()  # only inside a function and a method
        assert graph["sidefx_pkg.tc_b"] == ()  # only under TYPE_CHECKING

    def test_a_hung_import_is_reported_at_its_line_within_the_timeout(self, sidefx: Audited) -> None:
        """time.sleep(60) in a module: reported after timeout=2, stuck at that exact line."""
        (hung,) = sidefx.result.hung
        assert hung.module == "sidefx_pkg.hang"
        assert hung.where == where(PKG / "hang.py", "hang")
        assert hung.stack[0] == f"{hung.where} in <module>"
        assert not any("_audit_child.py" in frame for frame in hung.stack)  # the auditor's own frames
        assert sidefx.result.module("sidefx_pkg.hang").seconds is None
        # The child dumped its stacks and ended itself after 2 s: the parent's
        # last resort (at timeout + _STARTUP_GRACE) was not needed.
        assert 2.0 <= sidefx.elapsed < 2.0 + _imports_run._STARTUP_GRACE

    def test_an_import_error_is_reported_redacted(self, sidefx: Audited) -> None:
        """The exception type, its message without the password, and where it was raised."""
        assert sidefx.result.errors == (
            ImportFailure(
                "sidefx_pkg.boom",
                "RuntimeError",
                "cannot reach postgresql://admin:***@db.internal/app",
                where(PKG / "boom.py", "boom"),
            ),
        )

    def test_import_cost_is_measured_per_module(self, sidefx: Audited) -> None:
        """Every finished import has a duration shorter than the timeout."""
        for module in sidefx.result.modules:
            if module.name != "sidefx_pkg.hang":
                assert module.seconds is not None and 0.0 < module.seconds < 2.0, module

    def test_to_dict_is_the_documented_json(self, sidefx: Audited) -> None:
        """verdict, target, modules, cycles, hung, errors; JSON-serialisable."""
        doc = json.loads(json.dumps(sidefx.result.to_dict()))
        assert doc["verdict"] == "dirty" and sidefx.result.verdict == "dirty" and not sidefx.result.clean
        assert doc["target"] == "sidefx_pkg"
        assert set(doc) == {
            *("verdict", "target", "mode", "modules", "cycles", "hung", "errors"),
            *("slow", "causes", "skipped", "partial", "pending"),
        }
        assert doc["mode"] == "one-pass" and doc["slow"] == []
        assert doc["partial"] is False and doc["pending"] == []
        sock = next(m for m in doc["modules"] if m["name"] == "sidefx_pkg.sock")
        assert set(sock) == {"name", "seconds", "cumulative_s", "blocked_by", "side_effects"}
        assert sock["blocked_by"] is None and sock["cumulative_s"] >= sock["seconds"] > 0
        assert sock["side_effects"][1] == {
            "event": "socket.connect",
            "detail": f"127.0.0.1:{sidefx.env.port}",
            "where": where(PKG / "sock.py", "connect"),
        }
        assert doc["cycles"] == [["sidefx_pkg.cyc_a", "sidefx_pkg.cyc_b", "sidefx_pkg.cyc_a"]]
        assert doc["hung"][0]["module"] == "sidefx_pkg.hang"
        assert doc["hung"][0]["where"] == where(PKG / "hang.py", "hang")
        assert doc["hung"][0]["modules"] == ["sidefx_pkg.hang"] and doc["hung"][0]["blocked"] == []
        assert doc["errors"][0]["type"] == "RuntimeError"

    def test_junit_has_a_case_per_module_plus_cycles_and_hung(self, sidefx: Audited) -> None:
        """Failures list the side effects; the import error is an error element."""
        suite = ET.fromstring(sidefx.result.to_junit()).find("testsuite")
        assert suite is not None
        cases = {case.get("name"): case for case in suite.iter("testcase")}
        assert list(cases) == [*SIDEFX_MODULES, "import cycles", "hung: sidefx_pkg.hang"]
        failure = cases["sidefx_pkg.sock"].find("failure")
        assert failure is not None and "socket.connect 127.0.0.1" in (failure.text or "")
        assert cases["sidefx_pkg.clean"].find("failure") is None
        error = cases["sidefx_pkg.boom"].find("error")
        assert error is not None and error.get("type") == "RuntimeError"
        cycles = cases["import cycles"].find("failure")
        assert cycles is not None and cycles.text == "sidefx_pkg.cyc_a -> sidefx_pkg.cyc_b -> sidefx_pkg.cyc_a"
        hung = cases["hung: sidefx_pkg.hang"].find("failure")
        assert hung is not None and where(PKG / "hang.py", "hang") in (hung.get("message") or "")
        assert suite.get("tests") == str(len(SIDEFX_MODULES) + 2)
        assert suite.get("failures") == str(8 + 1 + 1) and suite.get("errors") == "1"

    def test_text_summary_names_everything(self, sidefx: Audited) -> None:
        """The readable summary has the verdict, each finding, and the slowest imports."""
        text = sidefx.result.to_text()
        assert text.startswith("daybreak imports sidefx_pkg: dirty (19 modules, 11 side effects, 1 cycle, 1 hung")
        assert "socket.connect 127.0.0.1" in text
        assert "sidefx_pkg.cyc_a -> sidefx_pkg.cyc_b -> sidefx_pkg.cyc_a" in text
        assert "sidefx_pkg.hang  stuck at" in text
        assert "RuntimeError: cannot reach postgresql://admin:***@db.internal/app" in text
        assert "hunter2" not in text and "\033[" not in text


class TestTargets:
    """Plain modules, paths, missing targets and option values."""

    def test_a_plain_module_audits_just_that_module(self) -> None:
        """A submodule target: only it is imported (after its parent package)."""
        result = audit("sidefx_pkg.threads", path=[str(FIXTURES)], timeout=5)
        assert [m.name for m in result.modules] == ["sidefx_pkg.threads"]
        assert [e.event for e in result.module("sidefx_pkg.threads").side_effects] == ["threading.Thread.start"]

    def test_a_top_level_module_is_its_own_package(self) -> None:
        """For a module target, `where` points into the module itself."""
        result = audit("sidefx_dep", path=[str(FIXTURES)], timeout=5)
        assert effects(result.module("sidefx_dep")) == [
            ("socket.bind", "127.0.0.1:0", where(FIXTURES / "sidefx_dep.py", "bind"))
        ]

    def test_a_path_names_the_module(self) -> None:
        """`path/to/pkg/mod.py` audits pkg.mod with the directory above pkg on the path."""
        result = audit(str(PKG / "clean.py"))
        assert result.target == "sidefx_pkg.clean"
        assert [m.name for m in result.modules] == ["sidefx_pkg.clean"]
        assert result.clean and result.verdict == "clean"

    @pytest.mark.parametrize("target", ["no_such_package_xyz", "sidefx_pkg.no_such_module", "not a name!"])
    def test_a_missing_target_raises_without_importing(self, target: str) -> None:
        """TargetNotFoundError (a ModuleNotFoundError), and nothing imported."""
        with pytest.raises(TargetNotFoundError):
            audit(target, path=[str(FIXTURES)])
        assert "sidefx_pkg" not in sys.modules

    @pytest.mark.parametrize(
        "options",
        [{"timeout": 0}, {"timeout": float("nan")}, {"jobs": 0}, {"allow": [":detail"]}],
    )
    def test_bad_option_values_raise(self, options: dict[str, object]) -> None:
        """ValueError before anything starts."""
        with pytest.raises(ValueError):  # noqa: PT011  (each case has its own message)
            audit("sidefx_pkg.clean", path=[str(FIXTURES)], **options)  # type: ignore[arg-type]


class TestChildren:
    """The child processes: allow rules, crashes, stubborn hangs, leftovers."""

    def test_allow_rules_suppress_matching_findings(self, sidefx_env: Env) -> None:
        """EVENT and EVENT:detail-substring; a detail that does not match keeps the finding."""
        result = audit(
            "sidefx_pkg.sock",
            path=[str(FIXTURES)],
            allow=["socket.getaddrinfo", "socket.connect:10.0.0.1", "signal.*"],
        )
        assert [e.event for e in result.module("sidefx_pkg.sock").side_effects] == ["socket.connect"]
        assert [(m, e.event) for m, e in result.allowed] == [("sidefx_pkg.sock", "socket.getaddrinfo")]
        assert result.verdict == "dirty"

    def test_a_process_that_ends_during_its_import_is_an_error(self) -> None:
        """os._exit() at import: an error naming the exit status."""
        result = audit("exits", path=[str(FIXTURES)])
        (error,) = result.errors
        assert error.module == "exits" and error.type == "ProcessExited"
        assert "exit status 3" in error.message

    def test_the_parent_asks_for_the_stack_when_the_child_cannot(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With the child's own timer cancelled, the parent's signal still gets the stuck line."""
        monkeypatch.setattr(_imports_run, "_STARTUP_GRACE", 0.5)
        monkeypatch.setattr(_imports_run, "_DUMP_GRACE", 0.5)
        result = audit("stubborn_hang", path=[str(FIXTURES)], timeout=1)
        assert [(h.module, h.where) for h in result.hung] == [
            ("stubborn_hang", where(FIXTURES / "stubborn_hang.py", "stubborn"))
        ]

    def test_processes_left_running_by_an_import_are_killed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The child runs in its own session; whatever the import left there is killed."""
        monkeypatch.setenv("DAYBREAK_TEST_TMP", str(tmp_path))
        result = audit("spawns_daemon", path=[str(FIXTURES)])
        assert [e.event for e in result.module("spawns_daemon").side_effects] == ["subprocess.Popen", "open"]
        pid = int((tmp_path / "daemon.pid").read_text(encoding="utf-8"))
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class TestCommandLine:
    """add_arguments() and run(): what `daybreak imports` prints and returns."""

    @staticmethod
    def parse(*argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser(prog="daybreak imports")
        add_arguments(parser)
        return parser.parse_args([*argv, "--path", str(FIXTURES)])

    def test_json_prints_only_json_and_writes_junit(
        self, sidefx_env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json: stdout parses as one JSON document; --junit FILE is written; dirty exits 1."""
        junit = tmp_path / "imports.xml"
        code = run(self.parse("sidefx_pkg.writes", "--json", "--junit", str(junit), "--timeout", "5"))
        out = capsys.readouterr().out
        assert code == 1
        doc = json.loads(out)
        assert doc["verdict"] == "dirty"
        assert [e["event"] for e in doc["modules"][0]["side_effects"]] == ["open"]
        cases = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
        assert cases == ["sidefx_pkg.writes", "import cycles"]

    def test_clean_exits_0_with_a_readable_summary(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The default output is the summary."""
        assert run(self.parse("sidefx_pkg.clean")) == 0
        out = capsys.readouterr().out
        assert out.startswith("daybreak imports sidefx_pkg.clean: clean (1 module, 0 side effects")

    def test_allow_turns_a_finding_off(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--allow EVENT:detail makes the module clean."""
        assert run(self.parse("sidefx_pkg.sighandler", "--allow", "signal.signal:SIGUSR2")) == 0
        assert "1 allowed" in capsys.readouterr().out

    def test_a_missing_target_exits_2_with_one_line(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No traceback: one line on stderr, nothing on stdout."""
        assert run(self.parse("no_such_package_xyz", "--json")) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1 and "no_such_package_xyz" in captured.err
        assert "Traceback" not in captured.err

    def test_bad_timeout_is_a_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """argparse rejects it (exit 2)."""
        with pytest.raises(SystemExit) as exit_info:
            self.parse("sidefx_pkg.clean", "--timeout", "0")
        assert exit_info.value.code == 2
        assert "positive" in capsys.readouterr().err


def test_daybreak_itself_audits_clean() -> None:
    """The library passes its own import audit (as the package is at test time)."""
    result = audit("daybreak", path=[str(SRC)])
    names = {m.name for m in result.modules}
    assert {"daybreak", "daybreak.imports", "daybreak._audit_child"} <= names
    # An optional third-party dependency missing from this environment is not
    # daybreak's fault; every other finding is.
    errors = [e for e in result.errors if not _missing_third_party(e)]
    assert result.side_effects == ()
    assert (result.cycles, result.hung, tuple(errors)) == ((), (), ()), result.to_text()


def _missing_third_party(error: ImportFailure) -> bool:
    if error.type != "ModuleNotFoundError":
        return False
    name = error.message.partition("'")[2].partition("'")[0]
    return bool(name) and not name.startswith("daybreak") and importlib.util.find_spec(name.split(".")[0]) is None


class TestStaticGraph:
    """module_level_imports() and find_cycles(), without child processes."""

    KNOWN = ("pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.sub.d")

    def edges(self, source: str, module: str = "pkg.a", *, is_package: bool = False) -> set[str]:
        return module_level_imports(source, module, is_package=is_package, known=self.KNOWN)

    def test_plain_and_from_imports(self) -> None:
        assert self.edges("import pkg.b\nimport json\n") == {"pkg.b"}
        assert self.edges("from pkg import b, helper\n") == {"pkg.b", "pkg"}
        assert self.edges("from pkg.sub import d\n") == {"pkg.sub.d"}
        assert self.edges("import pkg.sub.nothing\n") == {"pkg.sub"}
        assert self.edges("from pkg.b import *\n") == {"pkg.b"}

    def test_relative_imports(self) -> None:
        assert self.edges("from . import b\nfrom .c import x\n") == {"pkg.b", "pkg.c"}
        assert self.edges("from .. import b\n", "pkg.sub.d") == {"pkg.b"}
        assert self.edges("from . import d\n", "pkg.sub", is_package=True) == {"pkg.sub.d"}
        assert self.edges("from .a import x\n", "pkg", is_package=True) == {"pkg.a"}
        assert self.edges("from ... import b\n", "pkg.a") == set()  # beyond the top level

    def test_what_runs_at_import_counts(self) -> None:
        source = (
            "try:\n    import pkg.b\nexcept ImportError:\n    import pkg.c\n"
            "if X:\n    pass\nelse:\n    from pkg import sub\n"
            "with ctx:\n    from . import a\n"
            "class K:\n    from pkg.sub import d\n"
        )
        assert self.edges(source, "pkg.x") == {"pkg.b", "pkg.c", "pkg.sub", "pkg.a", "pkg.sub.d"}

    def test_functions_methods_and_type_checking_do_not(self) -> None:
        source = (
            "from typing import TYPE_CHECKING\nimport typing\n"
            "if TYPE_CHECKING:\n    import pkg.b\nelse:\n    import pkg.c\n"
            "if typing.TYPE_CHECKING:\n    import pkg.sub\n"
            "if not TYPE_CHECKING:\n    import pkg.sub.d\n"
            "def f():\n    import pkg\n"
            "async def g():\n    import pkg\n"
            "class K:\n    def m(self):\n        from . import b\n"
            "import pkg.a\n"  # itself
        )
        assert self.edges(source) == {"pkg.c", "pkg.sub.d"}

    def test_a_two_cycle_is_reported_once_rotated_and_closed(self) -> None:
        assert find_cycles({"b": ["a"], "a": ["b"]}) == [["a", "b", "a"]]

    def test_a_longer_cycle_starts_at_its_smallest_name(self) -> None:
        assert find_cycles({"c": ["a"], "b": ["c"], "a": ["b"], "d": ["a"]}) == [["a", "b", "c", "a"]]

    def test_one_shortest_cycle_per_component(self) -> None:
        graph = {"a": ["b", "c"], "b": ["c"], "c": ["a"], "x": ["y"], "y": ["x", "x"], "z": ["z"]}
        assert find_cycles(graph) == [["a", "c", "a"], ["x", "y", "x"]]

    def test_no_cycle_in_a_dag(self) -> None:
        assert find_cycles({"a": ["b", "c"], "b": ["c"], "c": []}) == []

    def test_a_long_chain_does_not_recurse(self) -> None:
        chain = {f"m{i:05d}": [f"m{i + 1:05d}"] for i in range(5000)}
        chain["m05000"] = ["m00000"]
        (cycle,) = find_cycles(chain)
        assert len(cycle) == 5002 and cycle[0] == cycle[-1] == "m00000"


class TestHelpers:
    """Redaction, faulthandler parsing, frame attribution."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("postgresql://user:pw@host/db", "postgresql://user:***@host/db"),
            ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
            ("x amqp://u:p@ss@mq/vh y", "x amqp://u:***@mq/vh y"),
            ("https://example.com/a:b@c", "https://example.com/a:b@c"),
            ("no url here", "no url here"),
        ],
    )
    def test_redact(self, text: str, expected: str) -> None:
        assert redact(text) == expected

    def test_parse_faulthandler_dump(self) -> None:
        dump = (
            "Timeout (0:00:02)!\n"
            "Thread 0x00007f00000000aa (most recent call first):\n"
            '  File "/x/threading.py", line 320 in wait\n'
            "\n"
            "Current thread 0x00007f00000000bb (most recent call first):\n"
            '  File "/p/pkg/m.py", line 5 in <module>\n'
            '  File "<frozen importlib._bootstrap>", line 241 in _call_with_frames_removed\n'
        )
        assert parse_faulthandler_dump(dump) == [
            (0x7F00000000AA, [("/x/threading.py", 320, "wait")]),
            (
                0x7F00000000BB,
                [("/p/pkg/m.py", 5, "<module>"), ("<frozen importlib._bootstrap>", 241, "_call_with_frames_removed")],
            ),
        ]

    def test_frame_classifier_prefers_the_package(self, tmp_path: Path) -> None:
        stdlib = tmp_path / "lib"
        site = stdlib / "site-packages"
        package = tmp_path / "proj" / "pkg"
        machinery = tmp_path / "aud.py"
        classifier = FrameClassifier([str(package)], [str(stdlib)], [str(site)], [str(machinery)])
        assert classifier.kind(str(package / "m.py")) == PACKAGE
        assert classifier.kind(str(tmp_path / "proj" / "pkg2" / "m.py")) == USER
        assert classifier.kind(str(site / "dep.py")) == USER
        assert classifier.kind(str(stdlib / "socket.py")) == STDLIB
        assert classifier.kind(str(machinery)) == OTHER
        assert classifier.kind("<frozen os>") == OTHER
        frames = [(str(stdlib / "socket.py"), 1, "f"), (str(site / "dep.py"), 2, "g"), (str(package / "m.py"), 3, "h")]
        assert classifier.pick(frames) == f"{package / 'm.py'}:3"
        assert classifier.pick(frames[:2]) == f"{site / 'dep.py'}:2"
        assert classifier.pick(frames[:1]) is None

    def test_results_compare_by_content(self) -> None:
        effect = SideEffect("open", "/tmp/x (mode w)", "m.py:1")
        assert ModuleReport("m", 0.1, (effect,)).to_dict() == {
            "name": "m",
            "seconds": 0.1,
            "cumulative_s": None,
            "blocked_by": None,
            "side_effects": [{"event": "open", "detail": "/tmp/x (mode w)", "where": "m.py:1"}],
        }
        assert HungModule("m", None).to_dict() == {
            "module": "m",
            "where": None,
            "stack": [],
            "modules": ["m"],
            "blocked": [],
            "threads": [],
        }
        assert ImportAudit("m", (ModuleReport("m", 0.1),)).verdict == "clean"
