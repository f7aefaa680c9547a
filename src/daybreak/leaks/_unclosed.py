"""What only the garbage collector closed: ResourceWarnings, libraries' "Unclosed ..." records, executors.

An SQLAlchemy engine never disposed, a redis client or an aiohttp session never
closed, a ThreadPoolExecutor never shut down: none of them grows a count, because
the collector closes them when the stopped system is dropped. What it leaves is
a trace of that: a ``ResourceWarning`` (unclosed socket, transport, connection,
event loop; ignored by default, so shown here for the check alone), the record a
library logs through the loop's exception handler ("Unclosed client session",
"Unclosed connector") and, for an executor, worker threads still alive when it
is collected. Each is counted in the cycle it happens and named by the line that
created the object (tracemalloc's traceback of it, cut where daybreak called the
project's code) and by the component whose factory that line is in.

Warnings filters, ``warnings``' display hook and the ``asyncio`` logger are put
back as they were when the check ends.
"""

from __future__ import annotations

import gc
import logging
import re
import sys
import threading
import tracemalloc
import warnings
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

from daybreak.diagnostics.frames import Frame, innermost_project_frame
from daybreak.leaks._report import LeakedUnclosed
from daybreak.leaks._sites import cut

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_MAX_GROUPS = 10


@dataclass(frozen=True)
class _Seen:
    cycle: int
    what: str
    where: str | None
    component: str | None
    message: str
    source: str


def _type_name(obj: object) -> str:
    t = type(obj)
    module = getattr(t, "__module__", "")
    return t.__qualname__ if module in ("builtins", "") else f"{module}.{t.__qualname__}"


def _finalized(frame: FrameType | None) -> object | None:
    """The object whose ``__del__`` is running up the stack (a warning given without ``source=``)."""
    for _ in range(12):
        if frame is None:
            return None
        if frame.f_code.co_name == "__del__" and "self" in frame.f_locals:
            finalized: object = frame.f_locals["self"]
            return finalized
        frame = frame.f_back
    return None


def _traceback(obj: object) -> tracemalloc.Traceback | None:
    found = tracemalloc.get_object_traceback(obj)
    if found is not None:
        return found
    # 3.11's tracemalloc cannot find objects with a managed __dict__ (most classes):
    # what they hold was made with them (a transport's socket, a session's connector).
    for part in gc.get_referents(obj):
        if not isinstance(part, type | str | int | float | bool) and part is not None:
            found = tracemalloc.get_object_traceback(part)
            if found is not None:
                return found
    return None


class Unclosed:
    """Counts, per cycle, what the collector closed while the check runs."""

    def __init__(self, codes: dict[CodeType, str]) -> None:
        self.lines: dict[tuple[str, int], str] = {}
        for code, name in codes.items():
            for _, _, line in code.co_lines():
                if line is not None:
                    self.lines.setdefault((code.co_filename, line), name)
        self.cycle = 0
        self.seen: list[_Seen] = []
        self.addresses: set[str] = set()  # of this cycle's warnings: a library's record of one is not another
        self.executors: dict[int, tuple[weakref.ref[Any], list[threading.Thread], str | None, str | None]] = {}
        self._catch: warnings.catch_warnings[None] | None = None
        self._handler = _Records(self)
        self._impl: Any = None

    # -- capture --------------------------------------------------------------------------------
    def __enter__(self) -> Unclosed:
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("always", ResourceWarning)
        self._impl = warnings._showwarnmsg_impl  # type: ignore[attr-defined]
        warnings._showwarnmsg_impl = self._on_warning  # type: ignore[attr-defined]
        logging.getLogger("asyncio").addHandler(self._handler)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger("asyncio").removeHandler(self._handler)
        if self._catch is not None:
            self._catch.__exit__(None, None, None)
        self.executors.clear()

    @property
    def handlers(self) -> tuple[logging.Handler, ...]:
        return (self._handler,)

    def next_cycle(self, k: int) -> None:
        self.cycle = k
        self.addresses.clear()

    def _on_warning(self, msg: warnings.WarningMessage) -> None:
        if not issubclass(msg.category, ResourceWarning):
            self._impl(msg)
            return
        source = msg.source if msg.source is not None else _finalized(sys._getframe(1))
        text = str(msg.message)
        if source is not None:
            self.addresses.add(hex(id(source)))
        self.addresses.update(a.lower() for a in _ADDRESS.findall(text))
        what = _type_name(source) if source is not None else text.split(" <")[0]
        self._add(what, source, text, "warning")

    def on_record(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if not text.lower().startswith("unclosed"):
            return
        if any(a.lower() in self.addresses for a in _ADDRESS.findall(text)):
            return  # the same object's ResourceWarning was counted
        self._add(text.splitlines()[0], None, text, "log")

    def _add(self, what: str, obj: object | None, message: str, source: str) -> None:
        where = component = None
        traceback = _traceback(obj) if obj is not None else None
        if traceback is not None:
            where, component = self._place(traceback)
        first = message.splitlines()[0] if message else ""
        self.seen.append(_Seen(self.cycle, what, where, component, _ADDRESS.sub("0x…", first)[:200], source))

    def _place(self, traceback: tracemalloc.Traceback) -> tuple[str | None, str | None]:
        frames = cut(traceback)
        site = innermost_project_frame(frames) or innermost_project_frame(
            [Frame(f.filename, f.lineno, "") for f in traceback])
        component = next((self.lines[(f.file, f.line)] for f in frames if (f.file, f.line) in self.lines),
                         None)
        return (site.where if site is not None else None), component

    # -- executors ------------------------------------------------------------------------------
    def watch_executors(self) -> None:
        """Note the running system's thread pools; one collected with live workers was never shut down."""
        from concurrent.futures import ThreadPoolExecutor

        for thread in threading.enumerate():
            args = getattr(thread, "_args", None)
            if not args or not isinstance(args[0], weakref.ref):
                continue
            executor = args[0]()
            if not isinstance(executor, ThreadPoolExecutor) or id(executor) in self.executors:
                continue
            threads = list(getattr(executor, "_threads", ()))
            traceback = _traceback(executor)
            where, component = self._place(traceback) if traceback is not None else (None, None)
            key = id(executor)
            ref = weakref.ref(executor, lambda _, key=key: self._collected(key))  # type: ignore[misc]
            self.executors[key] = (ref, threads, where, component)

    def _collected(self, key: int) -> None:
        entry = self.executors.pop(key, None)
        if entry is None:
            return
        _, threads, where, component = entry
        if any(t.is_alive() for t in threads):
            self.seen.append(_Seen(self.cycle, "concurrent.futures.ThreadPoolExecutor", where, component,
                                   f"{len(threads)} worker threads ended only when the executor was "
                                   "collected (never shut down)", "executor"))

    # -- results --------------------------------------------------------------------------------
    def counts(self, cycles: Iterable[int]) -> list[int]:
        per: dict[int, int] = {}
        for s in self.seen:
            per[s.cycle] = per.get(s.cycle, 0) + 1
        return [per.get(k, 0) for k in cycles]

    def groups(self, first: int, last: int, cycles: int) -> tuple[LeakedUnclosed, ...]:
        """What was closed by the collector in cycles ``first..last``, grouped, per cycle over ``cycles``."""
        grouped: dict[tuple[str, str | None, str | None, str], list[_Seen]] = {}
        for s in self.seen:
            if first <= s.cycle <= last:
                grouped.setdefault((s.what, s.where, s.component, s.source), []).append(s)
        out = [LeakedUnclosed(what, where, len(items) / cycles, component, items[0].message, source)
               for (what, where, component, source), items in grouped.items()]
        out.sort(key=lambda u: (-u.per_cycle, u.what, u.where or ""))
        return tuple(out[:_MAX_GROUPS])


class _Records(logging.Handler):
    def __init__(self, owner: Unclosed) -> None:
        super().__init__(logging.DEBUG)
        self.owner = owner

    def emit(self, record: logging.LogRecord) -> None:
        self.owner.on_record(record)
