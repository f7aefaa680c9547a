"""``import daybreak`` and declaring components have no side effects (PEP 578 audit).

Each check runs in a fresh interpreter whose first act is to install an audit
hook, so everything the import does is seen: no socket, thread, subprocess,
file opened for writing, trace or audit hook, signal handler or excepthook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

CHILD = r'''
import os, sys, sysconfig
STDLIB = tuple({sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]})
PACKAGE = os.path.join(os.path.realpath(sys.argv[1]), "daybreak") + os.sep
WATCHED = ("socket.", "subprocess.", "os.system", "os.posix_spawn", "os.fork", "os.forkpty",
           "os.exec", "os.spawn", "os.kill", "os.killpg", "_thread.start", "sys.settrace",
           "sys.setprofile", "sys.addaudithook", "ctypes.", "urllib.Request",
           "http.client.connect", "ftplib.", "smtplib.", "webbrowser.", "shutil.",
           "os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.chmod", "os.truncate",
           "tempfile.", "sqlite3.connect", "mmap.")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
found = []


def culprit():
    """The innermost frame outside the stdlib: daybreak's own, or a library's."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith("<frozen") and not name.startswith(STDLIB):
            return name if os.path.realpath(name).startswith(PACKAGE) else None
        frame = frame.f_back
    return None


def hook(event, args):
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if isinstance(mode, str):
            writes = any(c in mode for c in "wax+")
        else:
            writes = isinstance(flags, int) and bool(flags & WRITE_FLAGS)
        if not writes:
            return
    elif not event.startswith(WATCHED):
        return
    where = culprit()
    if where is not None:
        found.append([event, repr(args)[:200], where])


sys.addaudithook(hook)

import json, signal, threading

def snapshot():
    sigs = {}
    for s in signal.valid_signals():
        try:
            sigs[int(s)] = repr(signal.getsignal(s))
        except (ValueError, OSError):
            pass
    return {
        "threads": sorted(t.name for t in threading.enumerate()),
        "signals": sigs,
        "hooks": [repr(sys.excepthook), repr(threading.excepthook), repr(sys.unraisablehook),
                  repr(sys.gettrace()), repr(sys.getprofile())],
    }

before = snapshot()
modules_before = set(sys.modules)
stage = sys.argv[2]
out = {}

import daybreak
out["bare"] = sorted(set(sys.modules) - modules_before)

if stage in ("public", "declare", "submodules"):
    out["public"] = {name: type(getattr(daybreak, name)).__name__ for name in daybreak.__all__}
    out["after_public"] = sorted(set(sys.modules) - modules_before)

if stage in ("declare", "submodules"):
    from collections.abc import AsyncIterator

    class Settings: ...
    class Database: ...

    registry = daybreak.Registry("audit", phases=("a", "b"))

    @registry.component(phase="a")
    def settings() -> Settings:
        raise AssertionError("declaring must run nothing")

    @registry.component(phase="b", timeout=3, retries=2)
    async def database(s: Settings) -> AsyncIterator[Database]:
        raise AssertionError("declaring must run nothing")
        yield Database()

    @database.check
    async def ping(db: Database) -> None:
        raise AssertionError("declaring must run nothing")

    plan = registry.plan()
    out["plan"] = [c.name for c in plan.order]
    plan.to_dict(), plan.to_dot(), plan.to_mermaid(), plan.to_text()
    system = registry.start()  # a System is made, nothing runs until it is awaited
    out["system"] = system.state.status
    system._lifecycle = "stopped"  # never started: keep its finaliser quiet

if stage == "submodules":
    import importlib, pkgutil
    out["skipped"] = []
    for info in pkgutil.walk_packages(daybreak.__path__, "daybreak."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as exc:  # an optional extra that is not installed
            if (exc.name or "").startswith("daybreak"):
                raise
            out["skipped"].append([info.name, exc.name])
    out["submodules"] = sorted(m for m in sys.modules if m.startswith("daybreak."))

after = snapshot()
out["found"] = found
out["new_threads"] = sorted(set(after["threads"]) - set(before["threads"]))
out["signals_changed"] = sorted(s for s in before["signals"]
                                if before["signals"][s] != after["signals"].get(s))
out["hooks_changed"] = [i for i, (a, b) in enumerate(zip(before["hooks"], after["hooks"])) if a != b]
sys.stdout.write(json.dumps(out))
'''


def audit(stage: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "COV_"))}
    env["PYTHONPATH"] = str(SRC)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the .pyc writes of an ordinary import are not ours
    proc = subprocess.run([sys.executable, "-s", "-c", CHILD, str(SRC), stage],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def assert_no_side_effects(result: dict[str, Any]) -> None:
    assert result["found"] == []
    assert result["new_threads"] == []
    assert result["signals_changed"] == []
    assert result["hooks_changed"] == []


HEAVY = ("fastapi", "starlette", "click", "pytest", "_pytest", "pydantic", "uvicorn", "httpx",
         "prometheus_client", "opentelemetry")


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


def test_bare_import_is_cheap_and_clean() -> None:
    result = audit("bare")
    assert_no_side_effects(result)
    loaded = result["bare"]
    assert "daybreak" in loaded
    assert "daybreak.system" not in loaded
    assert "daybreak.plan" not in loaded
    assert "asyncio" not in loaded
    assert heavy(loaded) == []


def test_every_public_name_loads_cleanly() -> None:
    result = audit("public")
    assert_no_side_effects(result)
    public = result["public"]
    import daybreak

    assert sorted(public) == sorted(daybreak.__all__)
    assert public["Registry"] == "type" and public["__version__"] == "str"
    assert heavy(result["after_public"]) == []


def test_declaring_and_planning_run_nothing() -> None:
    result = audit("declare")
    assert_no_side_effects(result)
    assert result["plan"] == ["settings", "database"]
    assert result["system"] == "pending"


def test_every_submodule_imports_cleanly() -> None:
    result = audit("submodules")
    assert_no_side_effects(result)
    for name in ("daybreak.system", "daybreak.plan", "daybreak.report", "daybreak.cli",
                 "daybreak.diagnostics.watchdog", "daybreak.diagnostics.leftovers"):
        assert name in result["submodules"]


@pytest.mark.parametrize("name", ["fastapi", "click", "pytest"])
def test_heavy_dependencies_are_not_imported_by_the_core(name: str) -> None:
    result = audit("declare")
    assert name not in [m.split(".")[0] for m in result["after_public"]]
