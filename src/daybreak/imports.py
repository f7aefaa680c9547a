"""Import auditor: what merely importing a package does.

``audit("mypkg")`` imports every module of ``mypkg``, each in a fresh child
interpreter (``sys.executable``; in parallel, at most ``jobs`` at a time) with
PEP 578 audit hooks and thread tracking installed before the import, and
reports:

* **side effects** of the import: network (``socket.connect``, ``socket.bind``,
  ``socket.getaddrinfo``, ``socket.gethostbyname``, ...), processes
  (``subprocess.Popen``, ``os.system``, ``os.fork``, ``os.exec``,
  ``os.posix_spawn``, ...), files opened for writing (``open``) and other file
  system changes (``os.mkdir``, ``os.remove``, ``os.rename``, ...), threads
  (``threading.Thread.start``, ``_thread.start_new_thread``), signal handlers
  (``signal.signal``), global hooks (``sys.settrace``, ``sys.setprofile``,
  ``sys.addaudithook``, ``threading.settrace``, ``threading.setprofile``,
  ``sys.monitoring.register_callback``), ``ctypes.dlopen`` and
  ``webbrowser.open``. Each finding has ``where``: ``file:line`` of the
  innermost frame of the audited package, so an effect of a dependency is
  reported at the line of the package that imported it (fallback: the
  innermost frame outside the standard library). The ``.pyc`` writes of an
  ordinary import, reads, and the auditor's own work are not findings;
* **import cycles**, from a static graph (see :func:`find_cycles`);
* **import cost**: seconds for the import of each module in its own fresh
  process. Every module is measured cold, so a module's time includes the
  dependencies it pulls in (and its parent packages); the sum over modules is
  more than importing the package once;
* **hung** imports: a module whose import does not finish within ``timeout``
  seconds is reported with the frame it is stuck on. The child arms
  ``faulthandler.dump_traceback_later``, whose watchdog is a C thread that dumps
  every thread's stack even when the main thread is stuck in a C call;
* **errors**: modules whose import raised.

Thread starts: 3.11 raises no audit event for them, 3.12 raises
``_thread.start_new_thread`` and 3.13 ``_thread.start_joinable_thread``. The
child wraps ``threading.Thread.start`` (reported as ``threading.Thread.start``,
on every version) and, on 3.11, ``_thread.start_new_thread``; the low-level
events raised inside a wrapped start are ignored, so each start counts once.
Likewise the ``os.posix_spawn``/``os.fork`` raised inside ``subprocess.Popen``
count as that one ``subprocess.Popen``.

Discovery never imports the target in the calling process: the package is
found with ``importlib.machinery.PathFinder`` and walked with
``pkgutil.iter_modules``. Subpackages without ``__init__.py`` are not walked
(as with ``pkgutil.walk_packages``), and ``__main__`` modules are skipped:
importing them runs the program.

Importing this module starts nothing and opens nothing.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fnmatch
import json
import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec, PathFinder
from typing import Any, Literal

from daybreak._audit_child import FrameClassifier, parse_faulthandler_dump
from daybreak._redact import redact

__all__ = (
    "HungModule",
    "ImportAudit",
    "ImportFailure",
    "ModuleReport",
    "SideEffect",
    "TargetNotFoundError",
    "add_arguments",
    "audit",
    "find_cycles",
    "module_level_imports",
    "run",
)

_CHILD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_audit_child.py")
# Time a child gets, on top of ``timeout``, to start the interpreter and to dump
# its stacks itself before the parent asks for the dump and then kills it.
_STARTUP_GRACE = 10.0
_DUMP_GRACE = 1.0


class TargetNotFoundError(ModuleNotFoundError):
    """The package or module to audit cannot be found (nothing was imported)."""


# --------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class SideEffect:
    """One side effect of an import.

    Attributes:
        event: The audit event (``socket.connect``, ``open``, ...) or the name
            of the wrapped function (``threading.Thread.start``, ``signal.signal``).
        detail: What it touched (address, path and mode, command line, ...),
            with credentials in URLs redacted.
        where: ``file:line`` of the innermost frame of the audited package
            (fallback: the innermost frame outside the standard library).
    """

    event: str
    detail: str
    where: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "detail": self.detail, "where": self.where}


@dataclass(frozen=True, slots=True)
class ModuleReport:
    """The import of one module, measured in its own fresh process.

    Attributes:
        name: Fully dotted module name.
        seconds: Duration of the import (None when it hung).
        side_effects: Findings that no ``allow`` rule suppressed.
        imports: Modules of the audited package this module imports at module
            level (the static graph the cycles come from).
    """

    name: str
    seconds: float | None
    side_effects: tuple[SideEffect, ...] = ()
    imports: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": None if self.seconds is None else round(self.seconds, 6),
            "side_effects": [effect.to_dict() for effect in self.side_effects],
        }


@dataclass(frozen=True, slots=True)
class HungModule:
    """A module whose import did not finish within the timeout.

    Attributes:
        module: Fully dotted module name.
        where: ``file:line`` the import was stuck on (innermost package frame
            of the importing thread), or None when no stack could be dumped.
        stack: That thread's stack, innermost first, as ``file:line in function``.
    """

    module: str
    where: str | None
    stack: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"module": self.module, "where": self.where, "stack": list(self.stack)}


@dataclass(frozen=True, slots=True)
class ImportFailure:
    """A module whose import raised (or whose child process died).

    Attributes:
        module: Fully dotted module name.
        type: Exception type (``module.Class`` unless builtin).
        message: Exception message, credentials redacted.
        where: ``file:line`` of the innermost package frame of the traceback.
    """

    module: str
    type: str
    message: str
    where: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "type": self.type,
            "message": self.message,
            "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class ImportAudit:
    """What importing a package does; ``to_dict()`` is the ``--json`` output.

    The verdict is ``dirty`` when any side effect (not allowed), import cycle,
    hung module or import error exists.
    """

    target: str
    modules: tuple[ModuleReport, ...]
    cycles: tuple[tuple[str, ...], ...] = ()
    hung: tuple[HungModule, ...] = ()
    errors: tuple[ImportFailure, ...] = ()
    allowed: tuple[tuple[str, SideEffect], ...] = field(default=(), compare=False)
    timeout: float = field(default=10.0, compare=False)

    @property
    def verdict(self) -> Literal["clean", "dirty"]:
        return "clean" if self.clean else "dirty"

    @property
    def clean(self) -> bool:
        return not (self.side_effects or self.cycles or self.hung or self.errors)

    @property
    def side_effects(self) -> tuple[tuple[str, SideEffect], ...]:
        """All findings as ``(module, side_effect)`` pairs."""
        return tuple((m.name, e) for m in self.modules for e in m.side_effects)

    def module(self, name: str) -> ModuleReport:
        """Return the report of module ``name`` (KeyError if it was not audited)."""
        for report in self.modules:
            if report.name == name:
                return report
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "target": self.target,
            "modules": [m.to_dict() for m in self.modules],
            "cycles": [list(cycle) for cycle in self.cycles],
            "hung": [h.to_dict() for h in self.hung],
            "errors": [e.to_dict() for e in self.errors],
        }

    def to_text(self, *, color: bool = False) -> str:
        """A readable summary (the default output of ``daybreak imports``)."""
        return _format_text(self, color=color)

    def to_junit(self) -> str:
        """JUnit XML: a testcase per module, one for cycles, one per hung module."""
        return _format_junit(self)


# --------------------------------------------------------------------------
# Redaction (to be replaced by daybreak._redact.redact)



def _redact(text: str) -> str:
    """Hide passwords in URLs and secret-looking pairs, like every daybreak message."""
    return redact(text)


# --------------------------------------------------------------------------
# Allow rules


@dataclass(frozen=True, slots=True)
class _AllowRule:
    event: str
    detail: str | None

    @classmethod
    def parse(cls, spec: str) -> _AllowRule:
        event, sep, detail = spec.partition(":")
        event = event.strip()
        if not event:
            raise ValueError(f"--allow {spec!r}: expected EVENT or EVENT:detail-substring")
        return cls(event, detail if sep else None)

    def matches(self, effect: SideEffect) -> bool:
        if not fnmatch.fnmatchcase(effect.event, self.event):
            return False
        return self.detail is None or self.detail in effect.detail


# --------------------------------------------------------------------------
# Discovery


@dataclass(frozen=True, slots=True)
class _Module:
    name: str
    source: str | None  # path of the .py file, when there is one
    is_package: bool


@dataclass(frozen=True, slots=True)
class _Target:
    name: str
    roots: tuple[str, ...]
    modules: tuple[_Module, ...]


def _name_and_path(target: str) -> tuple[str, list[str]]:
    """Accept ``pkg.mod``, ``pkg.mod:attribute``, ``path/to/pkg`` or ``path/to/mod.py``."""
    text = target.strip()
    head, sep, tail = text.rpartition(":")
    if sep and head and tail.isidentifier() and not (len(head) == 1 and head.isalpha()):
        text = head  # module:attribute, as the other commands take it
    is_path = text.endswith(".py") or os.sep in text or (os.altsep is not None and os.altsep in text)
    if not is_path:
        if not text or not all(part.isidentifier() for part in text.split(".")):
            raise TargetNotFoundError(f"not a module name: {target!r}", name=text)
        return text, []
    location = os.path.abspath(text)
    if not os.path.exists(location):
        raise TargetNotFoundError(f"no such file or directory: {text!r}", name=text)
    if os.path.isfile(location):
        stem = os.path.splitext(os.path.basename(location))[0]
        location = os.path.dirname(location)
        parts = [] if stem == "__init__" else [stem]
    else:
        parts = []
    # Walk up through the packages, so that a file inside a package audits as
    # ``pkg.sub.mod`` with the directory above ``pkg`` on the path.
    if not parts or os.path.isfile(os.path.join(location, "__init__.py")):
        parts.insert(0, os.path.basename(location))
        location = os.path.dirname(location)
        while os.path.isfile(os.path.join(location, "__init__.py")):
            parts.insert(0, os.path.basename(location))
            location = os.path.dirname(location)
    name = ".".join(parts)
    if not all(part.isidentifier() for part in parts):
        raise TargetNotFoundError(f"not importable as a module: {text!r}", name=name)
    return name, [location]


def _find_spec(name: str, search_path: list[str]) -> ModuleSpec | None:
    """Find ``name`` without importing it, nor any of its parent packages."""
    parts = name.split(".")
    spec = PathFinder.find_spec(parts[0], search_path)
    if spec is None:  # an import hook (editable installs), builtin or frozen
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is PathFinder or find_spec is None:
                continue
            try:
                spec = find_spec(parts[0], None)
            except Exception:  # a finder that cannot answer has not found it
                spec = None
            if spec is not None:
                break
    for depth in range(1, len(parts)):
        if spec is None or spec.submodule_search_locations is None:
            return None
        spec = PathFinder.find_spec(".".join(parts[: depth + 1]), list(spec.submodule_search_locations))
    return spec


def _source_of(spec: ModuleSpec) -> str | None:
    origin = spec.origin
    if spec.has_location and origin is not None and origin.endswith(".py"):
        return origin
    return None


def _discover(name: str, search_path: list[str]) -> _Target:
    import pkgutil

    spec = _find_spec(name, search_path)
    if spec is None:
        raise TargetNotFoundError(
            f"no module named {name!r} (searched --path/path= and sys.path; nothing was imported)",
            name=name,
        )
    locations = spec.submodule_search_locations
    if locations is None:  # a plain module
        source = _source_of(spec)
        roots = (spec.origin,) if spec.has_location and spec.origin is not None else ()
        return _Target(name, roots, (_Module(name, source, False),))

    modules = [_Module(name, _source_of(spec), True)]
    pending: list[tuple[str, list[str]]] = [(name, list(locations))]
    while pending:
        package, paths = pending.pop()
        for info in pkgutil.iter_modules(paths, prefix=package + "."):
            if info.name.rpartition(".")[2] == "__main__":
                continue  # importing it runs the program
            sub = PathFinder.find_spec(info.name, paths)
            if sub is None:
                continue
            modules.append(_Module(info.name, _source_of(sub), info.ispkg))
            if info.ispkg and sub.submodule_search_locations is not None:
                pending.append((info.name, list(sub.submodule_search_locations)))
    modules.sort(key=lambda m: m.name)
    return _Target(name, tuple(locations), tuple(modules))


def _search_path(extra: Iterable[str]) -> list[str]:
    entries: list[str] = []
    for entry in [*extra, *sys.path]:
        absolute = os.path.abspath(entry) if entry else os.getcwd()
        if absolute not in entries:
            entries.append(absolute)
    return entries


def _interpreter_dirs() -> tuple[list[str], list[str]]:
    """The standard library's directories, and the site-packages ones."""
    import sysconfig

    paths = sysconfig.get_paths()
    stdlib = {paths["stdlib"], paths["platstdlib"], os.path.dirname(os.__file__)}
    site = {paths["purelib"], paths["platlib"]}
    site.update(p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages"))
    site_module = sys.modules.get("site")
    getsitepackages = getattr(site_module, "getsitepackages", None)
    if callable(getsitepackages):
        site.update(getsitepackages())
    return sorted(stdlib), sorted(site)


# --------------------------------------------------------------------------
# Static import graph and cycles


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _module_level_statements(body: Iterable[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported.

    Descends into module-level ``if``/``try``/``with``/``for``/``while``/``match``
    blocks and class bodies (they run at import); not into function bodies
    (methods included) nor ``if TYPE_CHECKING:`` blocks (their ``else`` runs).
    """
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            test = node.test
            if _is_type_checking(test):
                yield from _module_level_statements(node.orelse)
            elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and _is_type_checking(test.operand):
                yield from _module_level_statements(node.body)
            else:
                yield from _module_level_statements(node.body)
                yield from _module_level_statements(node.orelse)
        elif isinstance(node, (ast.Try, ast.TryStar)):
            yield from _module_level_statements(node.body)
            for handler in node.handlers:
                yield from _module_level_statements(handler.body)
            yield from _module_level_statements(node.orelse)
            yield from _module_level_statements(node.finalbody)
        elif isinstance(node, (ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)):
            yield from _module_level_statements(node.body)
            yield from _module_level_statements(getattr(node, "orelse", []))
        elif isinstance(node, ast.Match):
            for case in node.cases:
                yield from _module_level_statements(case.body)
        elif isinstance(node, ast.ClassDef):
            yield from _module_level_statements(node.body)


def _known_prefix(name: str, known: Mapping[str, object] | frozenset[str] | set[str]) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def module_level_imports(
    source: str | bytes,
    module: str,
    *,
    is_package: bool = False,
    known: Iterable[str] = (),
    filename: str = "<unknown>",
) -> set[str]:
    """Modules among ``known`` that ``module`` imports at module level.

    ``from pkg import mod`` is an import of ``pkg.mod`` when that is a known
    module, else of ``pkg``; ``import a.b.c`` is an import of ``a.b.c`` (or of
    its longest known prefix). Relative imports are resolved against
    ``module`` (a package's ``__init__`` is its own base). Parent packages that
    an import executes on the way are not edges: counting them would make
    every package whose ``__init__`` imports its submodules a cycle. Dynamic
    imports (``importlib.import_module``) are not seen. Self-imports are dropped.
    """
    names = frozenset(known)
    tree = ast.parse(source, filename=filename)
    edges: set[str] = set()
    for node in _module_level_statements(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found = _known_prefix(alias.name, names)
                if found is not None:
                    edges.add(found)
            continue
        if node.level:
            base = module.split(".")
            if not is_package:
                base = base[:-1]
            if node.level - 1 > len(base) - 1 or not base:
                continue  # beyond the top-level package
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        for alias in node.names:
            submodule = f"{origin}.{alias.name}"
            if alias.name != "*" and submodule in names:
                edges.add(submodule)
                continue
            found = _known_prefix(origin, names)
            if found is not None:
                edges.add(found)
    edges.discard(module)
    return edges


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One representative cycle per strongly connected component.

    Tarjan's algorithm (iterative) finds the strongly connected components of
    ``graph`` (module -> modules it imports); for each component of two or
    more modules, the shortest cycle through its smallest module name is
    reported (breadth-first, neighbours in sorted order), starting at that name
    and closed: ``["a", "b", "a"]``. So each tangle is reported once and
    deterministically, in linear time; the number of elementary cycles can be
    exponential, and breaking the reported one reveals the next. Self-loops are
    not cycles. The result is sorted.
    """
    adjacency: dict[str, list[str]] = {}
    for node, targets in graph.items():
        adjacency.setdefault(node, [])
        for target in targets:
            adjacency.setdefault(target, [])
            if target != node:
                adjacency[node].append(target)
    for node in adjacency:
        adjacency[node] = sorted(set(adjacency[node]))

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(adjacency):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[str, Iterator[str]]] = [(root, iter(adjacency[root]))]
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(adjacency[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)

    cycles = [_shortest_cycle(adjacency, set(component)) for component in components]
    return sorted(cycles)


def _shortest_cycle(adjacency: Mapping[str, list[str]], component: set[str]) -> list[str]:
    start = min(component)
    previous: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for successor in adjacency[node]:
            if successor not in component:
                continue
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if successor not in seen:
                seen.add(successor)
                previous[successor] = node
                queue.append(successor)
    raise AssertionError(f"no cycle through {start!r} in its component")  # pragma: no cover


def _static_graph(target: _Target) -> dict[str, tuple[str, ...]]:
    known = frozenset(m.name for m in target.modules)
    graph: dict[str, tuple[str, ...]] = {}
    for module in target.modules:
        edges: set[str] = set()
        if module.source is not None:
            try:
                with open(module.source, "rb") as file:
                    source = file.read()
                edges = module_level_imports(
                    source, module.name, is_package=module.is_package, known=known, filename=module.source
                )
            except (OSError, SyntaxError, ValueError):
                pass  # the child reports an unreadable or invalid module as an import error
        graph[module.name] = tuple(sorted(edges))
    return graph


# --------------------------------------------------------------------------
# Children


@dataclass(slots=True)
class _Outcome:
    name: str
    seconds: float | None = None
    events: list[SideEffect] = field(default_factory=list)
    error: ImportFailure | None = None
    hung: HungModule | None = None


class _Runner:
    """Starts, watches and cleans up the child processes of one audit."""

    def __init__(self, target: _Target, search_path: list[str], timeout: float, workdir: str) -> None:
        import threading

        stdlib, site = _interpreter_dirs()
        self.timeout = timeout
        self.workdir = workdir
        self.config = {
            "sys_path": search_path,
            "roots": list(target.roots),
            "stdlib": stdlib,
            "site": site,
            "timeout": timeout,
        }
        self.classifier = FrameClassifier(target.roots, stdlib, site, machinery=[_CHILD_SCRIPT])
        self.lock = threading.Lock()
        self.live: set[subprocess.Popen[bytes]] = set()
        self.closed = False

    def run(self, module: str, number: int) -> _Outcome:
        out_path = os.path.join(self.workdir, f"{number}.out")
        err_path = os.path.join(self.workdir, f"{number}.err")
        config = dict(self.config, module=module, out=out_path)
        command = [sys.executable, "-P", _CHILD_SCRIPT, json.dumps(config)]
        posix = os.name == "posix"
        with self.lock:
            if self.closed:
                return _Outcome(module, error=ImportFailure(module, "Cancelled", "the audit was interrupted"))
            with open(err_path, "wb") as err:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=err,
                    stderr=err,
                    start_new_session=posix,
                )
            self.live.add(proc)
        deadline_hit = False
        try:
            if not _wait_exited(proc, self.timeout + _STARTUP_GRACE):
                deadline_hit = True
                _request_dump(proc)
                _wait_exited(proc, _DUMP_GRACE)
        finally:
            _kill_group(proc)
            proc.wait()
            with self.lock:
                self.live.discard(proc)
        return self._outcome(module, proc.returncode, out_path, err_path, deadline_hit)

    def kill_all(self) -> None:
        with self.lock:
            self.closed = True
            for proc in self.live:
                _kill_group(proc)

    def _outcome(self, module: str, returncode: int, out_path: str, err_path: str, deadline_hit: bool) -> _Outcome:
        outcome = _Outcome(module)
        try:
            with open(out_path, encoding="utf-8", errors="replace") as file:
                lines = file.read().splitlines()
        except OSError:
            lines = []
        main_thread: int | None = None
        done: dict[str, Any] | None = None
        internal: list[str] = []
        dump: list[str] = []
        for line in lines:
            record = _json_line(line)
            if record is None:
                dump.append(line)
                continue
            kind = record.get("k")
            if kind == "event":
                outcome.events.append(
                    SideEffect(str(record["event"]), _redact(str(record["detail"])), record.get("where"))
                )
            elif kind == "start":
                main_thread = record.get("tid")
            elif kind == "done":
                done = record
            elif kind == "internal":
                internal.append(str(record.get("message")))
        dump_text = "\n".join(dump)
        if done is not None:
            outcome.seconds = float(done["seconds"])
            error = done.get("error")
            if error:
                outcome.error = ImportFailure(
                    module, str(error["type"]), _redact(str(error["message"])), error.get("where")
                )
            elif internal:
                outcome.error = ImportFailure(module, "daybreak.AuditorError", _redact(internal[0]))
            return outcome
        stack, where = self._stuck_frame(dump_text, main_thread)
        if deadline_hit or "Timeout (" in dump_text:
            outcome.hung = HungModule(module, where, stack)
            return outcome
        fatal = re.search(r"^Fatal Python error: (.*)$", dump_text, re.MULTILINE)
        if fatal is not None:
            outcome.error = ImportFailure(module, "FatalError", _redact(fatal.group(1)), where)
        else:
            last = _last_line(err_path)
            message = f"the import ended the process (exit status {returncode})"
            if last:
                message += f"; last output: {last}"
            outcome.error = ImportFailure(module, "ProcessExited", _redact(message), where)
        return outcome

    def _stuck_frame(self, dump: str, main_thread: int | None) -> tuple[tuple[str, ...], str | None]:
        threads = parse_faulthandler_dump(dump)
        if not threads:
            return (), None
        frames = next((f for ident, f in reversed(threads) if ident == main_thread), threads[-1][1])
        stack = tuple(
            f"{file}:{line} in {function}" for file, line, function in frames if not self.classifier.is_machinery(file)
        )
        return stack, self.classifier.pick((file, line) for file, line, _ in frames)


def _json_line(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 4096))
            tail = file.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def _wait_exited(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Wait until ``proc`` exits, without reaping it (its process group stays ours)."""
    import time

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


# --------------------------------------------------------------------------
# The audit


def audit(
    target: str,
    *,
    allow: Sequence[str] = (),
    timeout: float = 10.0,
    jobs: int | None = None,
    path: Sequence[str] = (),
) -> ImportAudit:
    """Import every module of ``target`` in a fresh process and report what it does.

    Args:
        target: A package (all its modules are audited), a module (just that
            one), ``module:attribute`` (the attribute is ignored) or a path to
            a package directory or ``.py`` file.
        allow: ``EVENT`` or ``EVENT:detail-substring`` rules; matching side
            effects are not findings. ``EVENT`` may use ``fnmatch`` wildcards
            (``socket.*``).
        timeout: Seconds each module's import may take before it counts as hung.
        jobs: Child processes at a time (default ``os.cpu_count()``).
        path: Directories searched before ``sys.path``, here and in the children.

    Raises:
        TargetNotFoundError: ``target`` cannot be found; nothing was imported.
        ValueError: A bad option value.
    """
    import concurrent.futures
    import math
    import tempfile

    if isinstance(allow, str):
        allow = (allow,)
    rules = [_AllowRule.parse(spec) for spec in allow]
    if not (isinstance(timeout, (int, float)) and timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if jobs is None:
        jobs = os.cpu_count() or 1
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs!r}")
    if isinstance(path, str):
        path = (path,)
    if not sys.executable:
        raise RuntimeError("daybreak imports needs sys.executable to start child interpreters")

    name, extra = _name_and_path(target)
    search_path = _search_path([*path, *extra])
    found = _discover(name, search_path)

    with tempfile.TemporaryDirectory(prefix="daybreak-imports-") as workdir:
        runner = _Runner(found, search_path, float(timeout), workdir)
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=min(jobs, len(found.modules)), thread_name_prefix="daybreak-imports"
        ) as pool:
            futures = [pool.submit(runner.run, m.name, n) for n, m in enumerate(found.modules)]
            try:
                graph = _static_graph(found)
                outcomes = [future.result() for future in futures]
            except BaseException:
                runner.kill_all()
                for future in futures:
                    future.cancel()
                raise

    cycles = tuple(tuple(cycle) for cycle in find_cycles(graph))
    modules: list[ModuleReport] = []
    allowed: list[tuple[str, SideEffect]] = []
    for outcome in outcomes:
        kept: list[SideEffect] = []
        for effect in dict.fromkeys(outcome.events):  # duplicates from racing threads
            if any(rule.matches(effect) for rule in rules):
                allowed.append((outcome.name, effect))
            else:
                kept.append(effect)
        modules.append(ModuleReport(outcome.name, outcome.seconds, tuple(kept), graph.get(outcome.name, ())))
    return ImportAudit(
        target=found.name,
        modules=tuple(modules),
        cycles=cycles,
        hung=tuple(o.hung for o in outcomes if o.hung is not None),
        errors=tuple(o.error for o in outcomes if o.error is not None),
        allowed=tuple(allowed),
        timeout=float(timeout),
    )


# --------------------------------------------------------------------------
# Output


def _show_where(where: str | None) -> str:
    if where is None:
        return "?"
    file, sep, line = where.rpartition(":")
    if not sep:
        return where
    try:
        relative = os.path.relpath(file)
    except ValueError:
        return where
    if relative.startswith(os.pardir + os.sep):
        return where
    return f"{relative}:{line}"


def _format_text(result: ImportAudit, *, color: bool) -> str:
    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if color else text

    effects = result.side_effects
    verdict = paint(result.verdict, "32" if result.clean else "1;31")
    counts = [
        f"{len(result.modules)} module{'s' if len(result.modules) != 1 else ''}",
        f"{len(effects)} side effect{'s' if len(effects) != 1 else ''}",
        f"{len(result.cycles)} cycle{'s' if len(result.cycles) != 1 else ''}",
        f"{len(result.hung)} hung",
        f"{len(result.errors)} error{'s' if len(result.errors) != 1 else ''}",
    ]
    if result.allowed:
        counts.append(f"{len(result.allowed)} allowed")
    lines = [f"daybreak imports {result.target}: {verdict} ({', '.join(counts)})"]
    if effects:
        lines += ["", paint("Import-time side effects", "1")]
        for module in result.modules:
            if module.side_effects:
                lines.append(f"  {module.name}")
                for effect in module.side_effects:
                    detail = f" {effect.detail}" if effect.detail else ""
                    lines.append(f"    {paint(effect.event, '33')}{detail}  at {_show_where(effect.where)}")
    if result.cycles:
        lines += ["", paint("Import cycles", "1")]
        lines += [f"  {' -> '.join(cycle)}" for cycle in result.cycles]
    if result.hung:
        lines += ["", paint(f"Hung imports (not done after {result.timeout:g} s)", "1")]
        lines += [f"  {h.module}  stuck at {_show_where(h.where)}" for h in result.hung]
    if result.errors:
        lines += ["", paint("Import errors", "1")]
        for error in result.errors:
            at = f"  at {_show_where(error.where)}" if error.where else ""
            lines.append(f"  {error.module}  {error.type}: {error.message}{at}")
    timed = sorted((m for m in result.modules if m.seconds is not None), key=lambda m: -(m.seconds or 0.0))
    if timed:
        lines += ["", paint("Slowest imports (each in a fresh process)", "1")]
        lines += [f"  {m.seconds or 0.0:8.3f} s  {m.name}" for m in timed[:5]]
    return "\n".join(lines)


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str) -> str:
    return _XML_INVALID.sub("?", text)


def _format_junit(result: ImportAudit) -> str:
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name=f"daybreak imports {result.target}")
    failures = errors = 0
    classname = f"daybreak.imports.{result.target}"
    errors_by_module = {e.module: e for e in result.errors}
    for module in result.modules:
        case = ET.SubElement(
            suite, "testcase", classname=classname, name=module.name, time=f"{module.seconds or 0.0:.6f}"
        )
        effects = [f"{e.event} {e.detail} at {e.where or '?'}".replace("  ", " ") for e in module.side_effects]
        error = errors_by_module.get(module.name)
        if error is not None:
            errors += 1
            element = ET.SubElement(case, "error", type=_xml(error.type), message=_xml(error.message))
            element.text = _xml("\n".join([f"{error.type}: {error.message} at {error.where or '?'}", *effects]))
        elif effects:
            failures += 1
            count = len(effects)
            element = ET.SubElement(
                case,
                "failure",
                type="side-effect",
                message=f"{count} import-time side effect{'s' if count != 1 else ''}",
            )
            element.text = _xml("\n".join(effects))
    case = ET.SubElement(suite, "testcase", classname=classname, name="import cycles", time="0")
    if result.cycles:
        failures += 1
        count = len(result.cycles)
        element = ET.SubElement(
            case, "failure", type="import-cycle", message=f"{count} import cycle{'s' if count != 1 else ''}"
        )
        element.text = _xml("\n".join(" -> ".join(cycle) for cycle in result.cycles))
    for hung in result.hung:
        failures += 1
        case = ET.SubElement(
            suite, "testcase", classname=classname, name=f"hung: {hung.module}", time=f"{result.timeout:.6f}"
        )
        element = ET.SubElement(
            case,
            "failure",
            type="hung",
            message=_xml(f"import did not finish within {result.timeout:g} s; stuck at {hung.where or '?'}"),
        )
        element.text = _xml("\n".join(hung.stack))
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("time", f"{sum(m.seconds or 0.0 for m in result.modules):.6f}")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --------------------------------------------------------------------------
# Command line


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``daybreak imports`` to ``parser``."""
    parser.add_argument(
        "target",
        metavar="PACKAGE_OR_MODULE",
        help="package (every module is audited) or module to import; a path to a package or .py file works too",
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="EVENT[:detail]",
        help="do not report side effects of EVENT (fnmatch wildcards allowed) whose detail "
        "contains the given text; repeatable",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=10.0,
        metavar="S",
        help="seconds a module's import may take before it counts as hung (default: 10)",
    )
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="child processes at a time (default: the number of CPUs)",
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="directory to search before sys.path (here and in the children); repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON report, and nothing else, on stdout")
    parser.add_argument("--junit", metavar="FILE", default=None, help="also write a JUnit XML report to FILE")


def run(args: argparse.Namespace) -> int:
    """Run ``daybreak imports``: 0 clean, 1 dirty or hung, 2 target not found."""
    try:
        result = audit(
            args.target,
            allow=getattr(args, "allow", None) or (),
            timeout=getattr(args, "timeout", 10.0),
            jobs=getattr(args, "jobs", None),
            path=getattr(args, "path", None) or (),
        )
    except (TargetNotFoundError, ValueError) as exc:
        print(f"daybreak imports: error: {exc}", file=sys.stderr)
        return 2
    junit = getattr(args, "junit", None)
    if junit:
        try:
            with open(junit, "w", encoding="utf-8") as file:
                file.write(result.to_junit())
        except OSError as exc:
            print(f"daybreak imports: error: cannot write {junit}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    if getattr(args, "json", False):
        print(json.dumps(result.to_dict(), indent=2))
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        print(result.to_text(color=color))
    return 0 if result.clean else 1
