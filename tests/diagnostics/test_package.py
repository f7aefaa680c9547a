from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import daybreak.diagnostics as diagnostics

SRC = Path(diagnostics.__file__).resolve().parents[2]


def test_all_is_sorted_and_names_every_public_name() -> None:
    assert diagnostics.__all__ == sorted(diagnostics.__all__)
    public = {
        name for name, value in vars(diagnostics).items() if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert set(diagnostics.__all__) == public


def test_importing_starts_no_thread_opens_nothing_and_installs_no_hook() -> None:
    script = textwrap.dedent(
        """
        import json, sys, threading
        seen = []
        WATCHED = {
            "open", "os.listdir", "os.scandir", "socket.__new__", "socket.connect",
            "_thread.start_new_thread", "_thread.start_joinable_thread",
            "sys.addaudithook", "sys.setprofile", "sys.settrace", "subprocess.Popen",
        }
        def hook(event, args):
            if event not in WATCHED:
                return
            path = str(args[0]) if args else ""
            # What the import system itself does: read module files, list the
            # directories it searches.
            if event == "open" and path.endswith((".py", ".pyc", ".so")):
                return
            if event == "os.listdir" and not path.startswith("/proc"):
                return
            seen.append([event, path])
        sys.addaudithook(hook)
        before = (threading.active_count(), sys.gettrace(), sys.getprofile(),
                  sys.excepthook, threading.excepthook)
        import daybreak.diagnostics
        after = (threading.active_count(), sys.gettrace(), sys.getprofile(),
                 sys.excepthook, threading.excepthook)
        print(json.dumps({"events": seen, "same": before == after}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {"events": [], "same": True}
