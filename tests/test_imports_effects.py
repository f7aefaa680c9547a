"""Import-time changes to process-wide state: atexit, environment, sys.path, sys.modules, hooks, logging, warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from daybreak.imports import ImportAudit, audit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "imports_effects"
PKG = FIXTURES / "globals_pkg"


def where(name: str, marker: str) -> str:
    path = PKG / f"{name}.py"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.rstrip().endswith(f"# <- {marker}"):
            return f"{path}:{number}"
    raise AssertionError(f"no '# <- {marker}' in {path}")


@pytest.fixture(scope="module")
def result() -> ImportAudit:
    return audit("globals_pkg", path=[str(FIXTURES)], timeout=5)


def test_each_lasting_change_is_a_side_effect_with_its_line(result: ImportAudit) -> None:
    """One finding per change; a path entry or filter gone again, and a NullHandler, are none."""
    found = {m.name: [(e.event, e.detail, e.where) for e in m.side_effects] for m in result.modules}
    assert found == {
        "globals_pkg": [],
        "globals_pkg.atexit_hook": [
            ("atexit.register", "globals_pkg.atexit_hook._bye", where("atexit_hook", "atexit")),
        ],
        "globals_pkg.env": [("os.putenv", "GLOBALS_PKG_MODE", where("env", "putenv"))],
        "globals_pkg.fake": [("sys.modules", "+ globals_pkg_fake", None)],
        "globals_pkg.hooks": [
            ("sys.excepthook", "globals_pkg.hooks._excepthook", where("hooks", "excepthook")),
            ("threading.excepthook", "globals_pkg.hooks._thread_hook", where("hooks", "threadhook")),
        ],
        "globals_pkg.logs": [
            ("logging.addHandler", "root <- StreamHandler", where("logs", "basicconfig")),
            ("logging.addHandler", "'globals_pkg.app' <- StreamHandler", where("logs", "dictconfig")),
        ],
        "globals_pkg.path": [("sys.path", "+ /opt/globals-pkg", where("path", "path"))],
        # multiprocessing.util and weakref.finalize call atexit.register themselves.
        "globals_pkg.stdlib_only": [],
        "globals_pkg.warns": [
            ("warnings.filterwarnings", "ignore DeprecationWarning", where("warns", "filter")),
        ],
    }


def test_findings_are_grouped_by_cause_most_modules_first() -> None:
    """A helper's lookup reached from three module bodies: one cause listing the three."""
    result = audit("cause_pkg", path=[str(FIXTURES)], timeout=5)
    helper = FIXTURES / "cause_pkg" / "helper.py"
    solo = FIXTURES / "cause_pkg" / "solo.py"
    lookup = next(f"{helper}:{n}" for n, line in enumerate(helper.read_text().splitlines(), 1) if "<- lookup" in line)
    putenv = next(f"{solo}:{n}" for n, line in enumerate(solo.read_text().splitlines(), 1) if "<- solo" in line)
    assert [c.to_dict() for c in result.causes] == [
        {
            "kind": "side_effect",
            "where": lookup,
            "detail": "socket.getaddrinfo 127.0.0.1:9",
            "modules": ["cause_pkg.m1", "cause_pkg.m2", "cause_pkg.m3"],
        },
        {"kind": "side_effect", "where": putenv, "detail": "os.putenv CAUSE_PKG_SOLO", "modules": ["cause_pkg.solo"]},
    ]
    assert result.to_dict()["causes"] == [c.to_dict() for c in result.causes]
    text = result.to_text()
    assert "3 modules: cause_pkg.m1, cause_pkg.m2, cause_pkg.m3" in text
    assert text.index("socket.getaddrinfo") < text.index("os.putenv")
