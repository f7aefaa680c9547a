"""The child processes of ``daybreak imports``: one pass by default, or one per module.

One pass (:meth:`Runner.one_pass`): a child imports every module in dependency
order, each body once. When a module hangs the child reports the stuck stack
and ends; a fresh child goes on with the modules still to import, leaving out
those that need the hung one (they are ``blocked_by`` it). A child that dies
(``os._exit``, a crash) is replaced the same way, its module an error.

Isolation (:meth:`Runner.isolated`): one fresh child per module, as when a
user suspects effects that depend on the order of imports.

The parent watches each child's result file; a child that writes nothing for
``timeout + _STARTUP_GRACE`` seconds (its own watchdogs could not run) is
asked for its stacks (``SIGUSR1``) and killed, with whatever its import left
running in its session.

Once ``stop`` is set (a signal), each child is killed at its next poll and no
new one starts; what the children wrote until then is kept, and the modules
never reached stay unreached (``Runner.interrupted`` says the audit was cut short).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from daybreak._audit_child import Frame, FrameClassifier, parse_faulthandler_dump
from daybreak._imports_graph import Target, interpreter_dirs, needing
from daybreak._imports_report import ImportFailure, SideEffect, ThreadStack
from daybreak._redact import redact

__all__ = ("Hang", "Outcome", "Runner")

_CHILD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_audit_child.py")
# Time a child gets, on top of ``timeout``, to start the interpreter and to dump
# its stacks itself before the parent asks for the dump and then kills it.
_STARTUP_GRACE = 10.0
_DUMP_GRACE = 1.0
# How often the parent reads what a child wrote.
_POLL = 0.2
_IMPORT_TIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| *(\S+)\s*$", re.MULTILINE)


@dataclass(slots=True)
class Outcome:
    """What happened to one module."""

    name: str
    seconds: float | None = None
    cumulative_s: float | None = None
    events: list[SideEffect] = field(default_factory=list)
    error: ImportFailure | None = None
    blocked_by: str | None = None
    reached: bool = False  # a child began its import (or a hang or failure decided its fate)


@dataclass(frozen=True, slots=True)
class Hang:
    """One module found stuck (hangs are grouped by ``where`` afterwards)."""

    module: str
    where: str | None
    stack: tuple[str, ...]
    threads: tuple[ThreadStack, ...] = ()


@dataclass(slots=True)
class _Child:
    """What one child process wrote."""

    records: list[dict[str, Any]]
    dump: str
    stderr_path: str
    returncode: int
    deadline_hit: bool
    interrupted: bool = False

    @property
    def ended(self) -> bool:
        return any(record.get("k") == "end" for record in self.records)


class Runner:
    """Starts, watches and cleans up the child processes of one audit.

    Args:
        target: What is audited (its modules' files attribute the findings).
        roots: Directories of every first-party package (``where`` points there).
        search_path: ``sys.path`` of the children.
        timeout: Seconds without progress that make a hang.
        workdir: A private temporary directory for the children's files.
        on_record: Called with every record a child writes, with ``{"k": "poll"}``
            at each poll and with ``{"k": "settled", "modules": [...], "hang": ...}``
            for modules that will have no ``done`` record (hung, crashed, blocked):
            the progress display.
        stop: Once set, the audit ends at the next poll (see the module's docstring).
    """

    def __init__(
        self,
        target: Target,
        roots: Sequence[str],
        search_path: list[str],
        timeout: float,
        workdir: str,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        stdlib, site = interpreter_dirs()
        files = {m.source: m.name for m in target.modules if m.source is not None}
        self.timeout = timeout
        self.workdir = workdir
        self.on_record = on_record
        self.stop = stop if stop is not None else threading.Event()
        self.interrupted = False
        self.config = {
            "sys_path": search_path,
            "roots": list(roots),
            "stdlib": stdlib,
            "site": site,
            "files": files,
            "timeout": timeout,
            "fallback_grace": _STARTUP_GRACE / 2,
        }
        self.classifier = FrameClassifier(roots, stdlib, site, machinery=[_CHILD_SCRIPT], files=files)
        self.lock = threading.Lock()
        self.live: set[subprocess.Popen[bytes]] = set()
        self.count = 0
        self.closed = False

    # -- the two modes ------------------------------------------------------

    def one_pass(
        self, order: Sequence[str], graph: Mapping[str, Iterable[str]]
    ) -> tuple[dict[str, Outcome], list[Hang]]:
        """Import ``order`` in as few children as hangs and crashes allow."""
        outcomes = {name: Outcome(name) for name in order}
        hangs: list[Hang] = []
        stuck_modules: set[str] = set()
        remaining = list(order)
        while remaining:
            child = self._run(remaining, isolate=False)
            current, finished = self._read(child, outcomes, isolate=False)
            remaining = [name for name in remaining if name not in finished]
            if child.ended or not remaining or child.interrupted:
                break
            before = set(remaining)
            # The child stopped early: ``current`` hung or ended the process.
            current = current or remaining[0]
            hang, on_stack = self._hang(child, current)
            if hang is not None:
                culprit = hang.module
                if culprit not in stuck_modules:
                    stuck_modules.add(culprit)
                    hangs.append(hang)
            else:
                culprit = current
                outcomes[current].error = self._crash(child, current)
            waiting = (needing(graph, {culprit}) | on_stack | {current}) - {culprit}
            for name in waiting:
                if name in outcomes and outcomes[name].blocked_by is None and name not in finished:
                    outcomes[name].blocked_by = culprit
            remaining = [name for name in remaining if name != culprit and name not in waiting]
            settled = sorted(before - set(remaining))
            for name in settled:
                outcomes[name].reached = True
            self._note({"k": "settled", "modules": settled, "hang": None if hang is None else hang.where})
        return outcomes, hangs

    def isolated(self, name: str) -> tuple[Outcome, Hang | None]:
        """Import ``name`` alone in a fresh child."""
        outcome = Outcome(name)
        child = self._run([name], isolate=True)
        _, finished = self._read(child, {name: outcome}, isolate=True)
        if name in finished or child.interrupted:
            return outcome, None
        outcome.reached = True
        hang, _ = self._hang(child, name)
        self._note({"k": "settled", "modules": [name], "hang": None if hang is None else hang.where})
        if hang is None:
            outcome.error = self._crash(child, name)
            return outcome, None
        return outcome, Hang(name, hang.where, hang.stack, hang.threads)

    def kill_all(self) -> None:
        with self.lock:
            self.closed = True
            for proc in self.live:
                _kill_group(proc)

    # -- one child ------------------------------------------------------------

    def _run(self, modules: Sequence[str], *, isolate: bool) -> _Child:
        with self.lock:
            number = self.count
            self.count += 1
        base = os.path.join(self.workdir, str(number))
        config = dict(self.config, modules=list(modules), isolate=isolate, out=f"{base}.out", dump=f"{base}.dump")
        with open(f"{base}.json", "w", encoding="utf-8") as file:
            json.dump(config, file)
        command = [sys.executable, "-P", "-X", "importtime", _CHILD_SCRIPT, f"{base}.json"]
        with self.lock:
            if self.closed:
                raise KeyboardInterrupt("the audit was interrupted")
            if self.stop.is_set():
                self.interrupted = True
                return _Child([], "", f"{base}.err", 0, deadline_hit=False, interrupted=True)
            with open(f"{base}.err", "wb") as err:
                proc = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=os.name == "posix"
                )
            self.live.add(proc)
        records: list[dict[str, Any]] = []
        reader = _Lines(f"{base}.out")
        deadline_hit = interrupted = False
        try:
            quiet_since = time.monotonic()
            while not _wait_exited(proc, _POLL):
                if self.stop.is_set():
                    interrupted = self.interrupted = True
                    break
                self._note({"k": "poll"})
                if self._take(reader, records):
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > self.timeout + _STARTUP_GRACE:
                    deadline_hit = True
                    _request_dump(proc)
                    _wait_exited(proc, _DUMP_GRACE)
                    break
            self._take(reader, records)
        finally:
            _kill_group(proc)
            proc.wait()
            with self.lock:
                self.live.discard(proc)
        try:
            with open(f"{base}.dump", encoding="utf-8", errors="replace") as file:
                dump = file.read()
        except OSError:
            dump = ""
        return _Child(records, dump, f"{base}.err", proc.returncode, deadline_hit, interrupted)

    def _take(self, reader: _Lines, records: list[dict[str, Any]]) -> bool:
        new = [record for record in map(_json_line, reader.read()) if record is not None]
        records.extend(new)
        for record in new:
            self._note(record)
        return bool(new)

    def _note(self, record: dict[str, Any]) -> None:
        if self.on_record is not None:
            self.on_record(record)

    def _read(self, child: _Child, outcomes: dict[str, Outcome], *, isolate: bool) -> tuple[str | None, set[str]]:
        """Fill ``outcomes`` from a child's records; (module in progress, modules done)."""
        current: str | None = None
        finished: set[str] = set()
        internal: list[str] = []
        for record in child.records:
            kind = record.get("k")
            if kind == "begin":
                current = str(record["module"])
                if current in outcomes:
                    outcomes[current].reached = True
            elif kind == "event":
                owner = record.get("module")
                owner = owner if owner in outcomes else current
                if owner is not None:
                    outcomes[owner].events.append(
                        SideEffect(str(record["event"]), redact(str(record["detail"])), record.get("where"))
                    )
            elif kind == "done":
                name = str(record["module"])
                finished.add(name)
                error = record.get("error")
                if error:
                    culprit = error.get("module")
                    if not isolate and culprit in outcomes and culprit != name:
                        outcomes[name].blocked_by = culprit  # the module it needs failed
                    else:
                        outcomes[name].error = ImportFailure(
                            name, str(error["type"]), redact(str(error["message"])), error.get("where")
                        )
                current = None
            elif kind == "internal":
                internal.append(f"{current}: {record.get('message')}")
        if internal and current is None:
            for name in finished:  # an auditor failure must not pass for a clean module
                if outcomes[name].error is None and outcomes[name].blocked_by is None:
                    outcomes[name].error = ImportFailure(name, "daybreak.AuditorError", redact(internal[0]))
                    break
        for self_us, cumulative_us, name in _import_times(child.stderr_path):
            outcome = outcomes.get(name)
            if outcome is not None and outcome.seconds is None:
                outcome.seconds = self_us / 1e6
                outcome.cumulative_s = cumulative_us / 1e6
        return current, finished

    def _hang(self, child: _Child, current: str) -> tuple[Hang | None, set[str]]:
        """The hang a child stopped on, and the audited modules whose bodies were on its stack."""
        record = next((r for r in child.records if r.get("k") == "hung"), None)
        threads: tuple[ThreadStack, ...] = ()
        frames: list[Frame]
        if record is not None:
            frames = [(str(f), int(n), str(fn)) for f, n, fn in record["stack"]]
            threads = tuple(
                ThreadStack(str(t["name"]), tuple(self._lines(tuple(f) for f in t["stack"])))
                for t in record.get("threads", ())
            )
        elif child.deadline_hit or "Timeout (" in child.dump:
            main = next((r.get("tid") for r in child.records if r.get("k") == "start"), None)
            dumped = parse_faulthandler_dump(child.dump)
            frames = next((f for ident, f in reversed(dumped) if ident == main), dumped[-1][1] if dumped else [])
            threads = tuple(
                ThreadStack(f"thread {ident:#x}" if ident else "?", tuple(self._lines(f)))
                for ident, f in dumped
                if ident != main
            )
        else:
            return None, set()
        owner = self.classifier.module_frame(frames) or current
        where = self.classifier.pick(frames)
        on_stack = {
            name
            for file, _, function in frames
            if function == "<module>" and (name := self.classifier.module_of(file)) is not None
        }
        return Hang(owner, where, tuple(self._lines(frames)), threads), on_stack

    def _lines(self, frames: Iterable[tuple[Any, ...]]) -> list[str]:
        machinery = self.classifier.is_machinery
        return [f"{file}:{line} in {function}" for file, line, function in frames if not machinery(file)]

    def _crash(self, child: _Child, module: str) -> ImportFailure:
        threads = parse_faulthandler_dump(child.dump)
        frames = threads[-1][1] if threads else []
        where = self.classifier.pick(frames)
        fatal = re.search(r"^Fatal Python error: (.*)$", child.dump, re.MULTILINE)
        if fatal is not None:
            return ImportFailure(module, "FatalError", redact(fatal.group(1)), where)
        last = _last_line(child.stderr_path)
        message = f"the import ended the process (exit status {child.returncode})"
        if last:
            message += f"; last output: {last}"
        return ImportFailure(module, "ProcessExited", redact(message), where)


class _Lines:
    """Complete lines appended to a file since the last read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                data = file.read()
        except OSError:
            return []
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]


def _json_line(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _import_times(path: str) -> list[tuple[int, int, str]]:
    """``-X importtime`` lines of a child's stderr: (self µs, cumulative µs, module)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:
        return []
    return [(int(own), int(cumulative), name) for own, cumulative, name in _IMPORT_TIME.findall(text)]


def _last_line(path: str) -> str:
    """The last line the modules printed (``-X importtime`` lines are the auditor's)."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 65536))
            tail = file.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip() and "import time:" not in line]
    return lines[-1][:500] if lines else ""


def _wait_exited(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Wait until ``proc`` exits, without reaping it (its process group stays ours)."""
    waitid = getattr(os, "waitid", None)
    if waitid is None:  # pragma: no cover - not Linux
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + seconds
    delay = 0.0005
    while True:
        try:
            if waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:  # already reaped
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.01)


def _request_dump(proc: subprocess.Popen[bytes]) -> None:
    import signal

    dump_signal = getattr(signal, "SIGUSR1", None)
    if dump_signal is not None:
        with contextlib.suppress(OSError):
            proc.send_signal(dump_signal)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child and whatever the audited import left running in its session."""
    import signal

    if os.name == "posix" and proc.returncode is None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    else:
        with contextlib.suppress(OSError):
            proc.kill()
