"""A command in a subprocess of its own session, its stderr in a file the test watches.

Tests synchronise on what the command writes (a marker file, a stderr line),
never on sleeps racing the clock.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


class Watched:
    """``command`` running; ``err_path`` fills with its stderr as it goes."""

    def __init__(self, command: Sequence[str], *, env: Mapping[str, str], cwd: Path, err_path: Path) -> None:
        self.err_path = err_path
        self._err = err_path.open("w")
        self.proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=self._err, text=True,
                                     env=dict(env), cwd=cwd, start_new_session=True)

    def wait_for(self, path: Path, text: str, seconds: float = 60) -> None:
        """Return once ``path`` holds ``text``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if path.exists() and text in path.read_text():
                return
            self._alive()
            time.sleep(0.01)
        self.proc.kill()
        raise AssertionError(f"{text!r} never appeared in {path}: {self.finish()}")

    def wait_for_line(self, *texts: str, seconds: float = 120) -> str:
        """The first stderr line that holds every one of ``texts``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in self.err_path.read_text().splitlines():
                if all(text in line for text in texts):
                    return line
            self._alive()
            time.sleep(0.01)
        self.proc.kill()
        raise AssertionError(f"no line with {texts!r} on stderr: {self.finish()}")

    def _alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"exited early with {self.proc.returncode}: {self.finish()}")

    def finish(self) -> tuple[str, str]:
        """Wait for the end; (stdout, stderr)."""
        try:
            out, _ = self.proc.communicate(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
            self._err.close()
        return out, self.err_path.read_text()
