"""How far ``daybreak imports`` has got, and what a signal does to it.

An audit of thousands of modules takes minutes; a CI log that stays silent
that long looks hung, and a job killed by its time limit must still say what
was found. So the audit reports :class:`AuditProgress` as its children write
records, :class:`Printer` shows it on stderr (a live line on a terminal, a
line every few seconds in a log), and :func:`stop_on_signals` turns SIGINT
and SIGTERM into a request to stop: the audit then kills its children, keeps
what they found, and removes its temporary folder before the command prints
the partial report.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from daybreak._imports_report import _show_where

__all__ = ("AuditProgress", "Printer", "Signalled", "Tracker", "stop_on_signals")

# Seconds between two progress lines in a log (not a terminal): a line per
# poll would bury the report, and nothing for minutes looks hung.
EVERY = 5.0
# Seconds between two redraws of the live line on a terminal.
_REDRAW = 0.1


@dataclass(frozen=True, slots=True)
class AuditProgress:
    """How far an import audit has got: what ``audit(progress=...)`` is called with.

    Attributes:
        done: Modules settled: imported, failed, hung, or left out because
            they need one that hung or failed.
        total: Modules to audit.
        slowest: The slowest import finished so far and its wall time in
            seconds (with what it imported first), or None.
        importing: The imports in progress, each with its seconds so far,
            the longest first (one in the one-pass mode).
        hangs: Every hang found so far, as (module, ``file:line`` it was stuck at).
        elapsed: Seconds since the first child started.
    """

    done: int
    total: int
    slowest: tuple[str, float] | None
    importing: tuple[tuple[str, float], ...]
    hangs: tuple[tuple[str, str | None], ...]
    elapsed: float

    def to_text(self) -> str:
        """One line: ``312/1800 modules, 41 s; slowest so far: pkg.x 3.2 s; importing pkg.y (6 s)``."""
        parts = [f"{self.done}/{self.total} modules, {self.elapsed:.0f} s"]
        if self.slowest is not None:
            parts.append(f"slowest so far: {self.slowest[0]} {_duration(self.slowest[1])}")
        if self.importing:
            name, seconds = self.importing[0]
            more = f" and {len(self.importing) - 1} more" if len(self.importing) > 1 else ""
            parts.append(f"importing {name} ({seconds:.0f} s){more}")
        if self.hangs:
            parts.append(f"{len(self.hangs)} hung")
        return "; ".join(parts)


def _duration(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


class Tracker:
    """Turns the children's records (see :class:`daybreak._imports_run.Runner`) into :class:`AuditProgress`.

    Called from every thread that watches a child (several with ``isolate``),
    hence the lock; ``callback`` runs under it, so it sees snapshots in order.
    """

    def __init__(self, total: int, callback: Callable[[AuditProgress], None]) -> None:
        self.total = total
        self.callback = callback
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.done = 0
        self.slowest: tuple[str, float] | None = None
        self.importing: dict[str, float] = {}
        self.hangs: list[tuple[str, str | None]] = []

    def __call__(self, record: dict[str, Any]) -> None:
        kind = record.get("k")
        with self.lock:
            now = time.monotonic()
            if kind == "begin":
                self.importing[str(record.get("module"))] = now
            elif kind == "done":
                name = str(record.get("module"))
                self.importing.pop(name, None)
                self.done += 1
                seconds = record.get("seconds")
                if isinstance(seconds, (int, float)) and (self.slowest is None or seconds > self.slowest[1]):
                    self.slowest = (name, float(seconds))
            elif kind == "settled":
                names = [str(name) for name in record.get("modules", ())]
                for name in names:
                    self.importing.pop(name, None)
                self.done += len(names)
                if names and record.get("hang") is not None:
                    self.hangs.append((names[0], record["hang"]))
            importing = sorted(((name, now - began) for name, began in self.importing.items()), key=lambda i: -i[1])
            self.callback(
                AuditProgress(
                    min(self.done, self.total),
                    self.total,
                    self.slowest,
                    tuple(importing),
                    tuple(self.hangs),
                    now - self.started,
                )
            )


class Printer:
    """Shows progress on ``stream`` (stderr): a live line on a terminal, else a line every ``every`` seconds.

    In a log the first line comes ``every`` seconds after the start, so a
    short audit prints nothing but its report. A hang is printed when it is
    found, on a line of its own.

    Args:
        stream: Where to write (never stdout: it holds the report).
        prefix: What each line begins with (``daybreak imports: ``).
        label: Put before the audit's progress (``imports  `` in ``doctor``).
        tty: Live line or log lines; default: whether ``stream`` is a terminal.
        every: Seconds between two lines in a log.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        prefix: str = "daybreak imports: ",
        label: str = "",
        tty: bool | None = None,
        every: float = EVERY,
    ) -> None:
        self.stream = stream
        self.prefix = prefix
        self.label = label
        self.tty = _isatty(stream) if tty is None else tty
        self.every = every
        self.last = time.monotonic()
        self.hangs_shown = 0
        self.live = False

    def __call__(self, progress: AuditProgress) -> None:
        for module, where in progress.hangs[self.hangs_shown :]:
            self._permanent(f"{self.label}{module} hung at {_show_where(where)}; a fresh process goes on")
        self.hangs_shown = len(progress.hangs)
        now = time.monotonic()
        if now - self.last < (_REDRAW if self.tty else self.every):
            return
        self.last = now
        text = self.label + progress.to_text()
        if self.tty:
            self._live(text)
        else:
            self._write(f"{self.prefix}{text}\n")

    def line(self, text: str) -> None:
        """A step of a longer command (``doctor``'s checks): the live line on a terminal.

        Not in a log: the summary there says it all again.
        """
        if self.tty:
            self.last = time.monotonic()
            self._live(text)

    def clear(self) -> None:
        """Erase the live line (before the report)."""
        if self.live:
            self.live = False
            self._write("\r\033[2K")

    def _live(self, text: str) -> None:
        # Cut to the terminal's width: a wrapped line cannot be redrawn in place.
        width = shutil.get_terminal_size((80, 24)).columns - 1
        line = f"{self.prefix}{text}"
        self.live = True
        self._write(f"\r\033[2K{line[:width]}")

    def _permanent(self, text: str) -> None:
        self._write(("\r\033[2K" if self.live else "") + f"{self.prefix}{text}\n")
        self.live = False

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr must not end the audit
            self.stream.write(text)
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Signalled:
    """What :func:`stop_on_signals` yields: ``event`` is set by the first signal, ``signum`` names it."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Signalled]:
    """While the body runs, SIGINT and SIGTERM set an event instead of ending the process.

    The body polls the event and winds down (kills its children, keeps what
    they found) instead of dying where it stands, which would leave the
    children running in their own sessions and the temporary folder behind.
    Outside the main thread, where handlers cannot be installed, nothing changes.
    """
    signalled = Signalled()
    if threading.current_thread() is not threading.main_thread():
        yield signalled
        return

    def handler(signum: int, frame: object) -> None:
        if signalled.signum is None:
            signalled.signum = signum
        # Safe in a handler: the main thread only reads the event (is_set takes no lock).
        signalled.event.set()

    saved: dict[signal.Signals, Any] = {}
    try:
        for which in (signal.SIGINT, signal.SIGTERM):
            saved[which] = signal.signal(which, handler)
        yield signalled
    finally:
        for which, previous in saved.items():
            signal.signal(which, previous)
