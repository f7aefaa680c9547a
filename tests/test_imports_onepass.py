"""The one-pass import audit: each module's body once in one child, hangs and crashes replaced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daybreak import _imports_run
from daybreak._imports_graph import dependency_order, needing
from daybreak.imports import ImportAudit, audit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "imports_onepass"
PKG = FIXTURES / "onepass_pkg"


def where(path: Path, marker: str) -> str:
    """``file:line`` of the fixture line tagged ``# <- marker``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.rstrip().endswith(f"# <- {marker}"):
            return f"{path}:{number}"
    raise AssertionError(f"no '# <- {marker}' in {path}")


@pytest.fixture(scope="module")
def onepass() -> ImportAudit:
    """One audit of onepass_pkg (three hangs, a failure, a crash, a slow module), timeout 1 s."""
    return audit("onepass_pkg", path=[str(FIXTURES)], timeout=1)


class TestOnePass:
    """Hangs, failures and crashes in the one-pass mode."""

    def test_a_hang_is_one_finding_per_stuck_frame(self, onepass: ImportAudit) -> None:
        """a and b hang in the same config read: one finding naming both, and what needs them."""
        by_where = {h.where: h for h in onepass.hung}
        stuck = by_where[where(PKG / "config.py", "stuck")]
        assert stuck.modules == ("onepass_pkg.a", "onepass_pkg.b")
        assert stuck.blocked == ("onepass_pkg.uses_a",)
        assert stuck.stack[0] == f"{stuck.where} in load"
        assert f"{where(PKG / 'a.py', 'a')} in <module>" in stuck.stack
        assert onepass.module("onepass_pkg.uses_a").blocked_by == "onepass_pkg.a"
        assert onepass.module("onepass_pkg.a").seconds is None

    def test_hangs_and_failures_are_causes_with_what_they_block(self, onepass: ImportAudit) -> None:
        """The shared stuck frame is the cause touching the most modules; the failure comes with what needs it."""
        causes = onepass.causes
        assert (causes[0].kind, causes[0].where) == ("hung", where(PKG / "config.py", "stuck"))
        assert causes[0].modules == ("onepass_pkg.a", "onepass_pkg.b", "onepass_pkg.uses_a")
        assert causes[0].detail == "time.sleep(60)  # <- stuck"
        failure = next(c for c in causes if c.kind == "error" and c.where == where(PKG / "fails.py", "fails"))
        assert failure.modules == ("onepass_pkg.fails", "onepass_pkg.needs_fails")

    def test_a_hang_reports_every_thread(self, onepass: ImportAudit) -> None:
        """The thread an earlier module started is in the hang's threads, at its line."""
        stuck = next(h for h in onepass.hung if h.module == "onepass_pkg.a")
        (worker,) = [t for t in stuck.threads if t.name == "onepass-worker"]
        assert any(frame.startswith(where(PKG / "_worker.py", "waits")) for frame in worker.stack)

    def test_a_deep_stack_keeps_the_project_line(self, onepass: ImportAudit) -> None:
        """150 library frames deep, 'stuck at' is still the project's line, and the stack keeps it."""
        deep = next(h for h in onepass.hung if h.module == "onepass_pkg.deep")
        assert deep.where == where(PKG / "deep.py", "deep")
        assert deep.stack[-1].startswith(deep.where) or f"{deep.where} in <module>" in deep.stack
        assert deep.stack[0].startswith(where(FIXTURES / "deep_lib.py", "bottom"))
        assert len(onepass.hung) == 2

    def test_the_text_shows_the_stuck_line(self, onepass: ImportAudit) -> None:
        """The hung section names the modules, the stuck frame and its source line."""
        text = onepass.to_text()
        assert "onepass_pkg.a, onepass_pkg.b  stuck at" in text
        assert "      time.sleep(60)  # <- stuck" in text
        assert "blocked (they need it): onepass_pkg.uses_a" in text

    def test_slow_is_not_hung(self, onepass: ImportAudit) -> None:
        """A module busy longer than the timeout, its stack changing, is slow with its time."""
        slow = onepass.module("onepass_pkg.slow")
        assert slow.blocked_by is None and slow.cumulative_s is not None and slow.cumulative_s > 1
        assert "onepass_pkg.slow" not in {m for h in onepass.hung for m in h.modules}
        assert onepass.slow == (slow,)
        assert json.loads(json.dumps(onepass.to_dict()))["slow"] == [
            {"module": "onepass_pkg.slow", "cumulative_s": round(slow.cumulative_s, 6)}
        ]

    def test_a_failure_is_reported_once_and_what_needs_it_is_blocked(self, onepass: ImportAudit) -> None:
        """fails raises; needs_fails fails because of it: blocked_by, not a second error."""
        errors = {e.module: e for e in onepass.errors}
        assert errors["onepass_pkg.fails"].type == "LookupError"
        assert errors["onepass_pkg.fails"].where == where(PKG / "fails.py", "fails")
        assert "onepass_pkg.needs_fails" not in errors
        assert onepass.module("onepass_pkg.needs_fails").blocked_by == "onepass_pkg.fails"

    def test_the_audit_goes_on_after_a_crash(self, onepass: ImportAudit) -> None:
        """os._exit() in one module: its error, and the modules after it still audited."""
        errors = {e.module: e for e in onepass.errors}
        assert errors["onepass_pkg.exits"].type == "ProcessExited"
        last = onepass.module("onepass_pkg.zz_last")
        assert [(e.event, e.where) for e in last.side_effects] == [
            ("socket.getaddrinfo", where(PKG / "zz_last.py", "last"))
        ]

    def test_an_effect_belongs_to_the_module_whose_body_runs(self, onepass: ImportAudit) -> None:
        """_worker's thread start is _worker's, not that of the modules importing it."""
        found = {m.name: [e.event for e in m.side_effects] for m in onepass.modules if m.side_effects}
        assert found == {
            "onepass_pkg._worker": ["threading.Thread.start"],
            "onepass_pkg.zz_last": ["socket.getaddrinfo"],
        }


class TestIsolate:
    """--isolate: one child per module, so a shared module's effect shows in each importer."""

    def test_one_pass_reports_the_shared_module_once(self) -> None:
        result = audit("order_pkg", path=[str(FIXTURES)], timeout=5)
        assert result.mode == "one-pass"
        assert {m.name for m in result.modules if m.side_effects} == {"order_pkg.shared"}
        shared = result.module("order_pkg.shared")
        x = result.module("order_pkg.x")
        assert x.seconds is not None and shared.cumulative_s is not None
        assert x.cumulative_s is not None and x.cumulative_s >= x.seconds

    def test_isolate_reports_it_in_every_importer(self) -> None:
        result = audit("order_pkg", path=[str(FIXTURES)], timeout=5, isolate=True)
        assert result.mode == "isolate"
        bind = where(FIXTURES / "order_pkg" / "shared.py", "bind")
        found = {m.name: [(e.event, e.where) for e in m.side_effects] for m in result.modules}
        assert found == {
            "order_pkg": [],
            "order_pkg.shared": [("socket.bind", bind)],
            "order_pkg.x": [("socket.bind", bind)],
            "order_pkg.y": [("socket.bind", bind)],
        }


def test_the_parent_takes_the_stack_of_a_child_holding_the_gil(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither of the child's watchdogs can run: the parent's signal still gets the stuck line."""
    monkeypatch.setattr(_imports_run, "_STARTUP_GRACE", 0.5)
    monkeypatch.setattr(_imports_run, "_DUMP_GRACE", 0.5)
    result = audit("gil_hang", path=[str(FIXTURES)], timeout=1)
    assert [(h.module, h.where) for h in result.hung] == [("gil_hang", where(FIXTURES / "gil_hang.py", "gil"))]


class TestOrder:
    """dependency_order() and needing(), without child processes."""

    def test_dependencies_and_parents_come_first(self) -> None:
        graph = {"p": (), "p.a": ("p.b",), "p.b": (), "p.c": ("p.a",), "p.s": (), "p.s.x": ()}
        order = dependency_order(graph)
        assert sorted(order) == sorted(graph)
        for module, needs in graph.items():
            for name in (*needs, *([module.rpartition(".")[0]] if "." in module else [])):
                assert order.index(name) < order.index(module)

    def test_a_cycle_is_broken_not_looped(self) -> None:
        assert dependency_order({"a": ("b",), "b": ("a",)}) == ["b", "a"]

    def test_needing_follows_imports_and_parents(self) -> None:
        graph = {"p": (), "p.a": ("p.b",), "p.b": (), "p.c": ("p.a",), "p.s": (), "p.s.x": ()}
        assert needing(graph, {"p.b"}) == {"p.a", "p.c"}
        assert needing(graph, {"p.s"}) == {"p.s.x"}
        assert needing(graph, {"p"}) == {"p.a", "p.b", "p.c", "p.s", "p.s.x"}
