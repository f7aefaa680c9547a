"""Import auditor: what merely importing a package does.

``audit("mypkg")`` imports every module of ``mypkg`` in a fresh child
interpreter, each module's body once, in dependency order, with PEP 578 audit
hooks and thread tracking installed before the first import, and reports:

* **side effects** of the imports: network (``socket.connect``, ``socket.bind``,
  ``socket.getaddrinfo``, ``socket.gethostbyname``, ...), processes
  (``subprocess.Popen``, ``os.system``, ``os.fork``, ``os.exec``,
  ``os.posix_spawn``, ...), files opened for writing (``open``) and other file
  system changes (``os.mkdir``, ``os.remove``, ``os.rename``, ...), threads
  (``threading.Thread.start``, ``_thread.start_new_thread``), signal handlers
  (``signal.signal``), global hooks (``sys.settrace``, ``sys.setprofile``,
  ``sys.addaudithook``, ``threading.settrace``, ``threading.setprofile``,
  ``sys.monitoring.register_callback``), ``ctypes.dlopen``,
  ``webbrowser.open``, and changes to process-wide state that outlast the
  import: ``atexit.register`` (not the standard library's own),
  ``os.putenv``/``os.unsetenv`` (``os.environ``; the name only), ``sys.path``
  entries added or removed, objects put into or taken out of ``sys.modules``
  (no line: nothing tells who), ``sys.excepthook``/``sys.unraisablehook``/
  ``threading.excepthook`` replaced (at the new hook's line), logging handlers
  added (``logging.addHandler``, which ``basicConfig`` and ``dictConfig`` call;
  a ``NullHandler`` is no output) and ``warnings`` filters still in force when
  the import ends. Each belongs to the module whose top-level code runs
  (the innermost module frame of the audited package: an effect inside a
  library called from ``X``'s body belongs to ``X``) and has ``where``:
  ``file:line`` of the innermost frame of the first-party packages (fallback:
  the innermost frame outside the standard library). The ``.pyc`` writes of an
  ordinary import, reads, and the auditor's own work are not findings;
* **import cycles**, from a static graph (see :func:`find_cycles`);
* **import cost** per module, as ``python -X importtime`` measures it:
  ``seconds`` (the module's own body) and ``cumulative_s`` (with what it
  imported first), the slowest ten in the text;
* **hung** imports: no module finished within ``timeout`` seconds and the
  main thread's stack stayed the same (a slow import, whose stack changes, is
  reported as slow, not hung). The stuck frame and every thread's stack are
  reported, the child is replaced by a fresh one that imports the remaining
  modules, and the modules that need the hung one are ``blocked_by`` it. One
  stuck frame is one finding, whatever the number of modules stuck there;
* **errors**: modules whose import raised (the audit goes on).

``isolate=True`` (``--isolate``) imports each module in its own fresh child
instead (``jobs`` at a time), for effects that depend on the order of imports;
a module's numbers then include everything it imports.

``progress`` is told how far the audit has got (``daybreak imports`` shows it
on stderr); once ``stop`` is set (the command sets it on SIGINT or SIGTERM)
the children are killed, the temporary folder is removed, and the result is
``partial``: what was found until then, and the modules never reached as
``pending``.

Thread starts: 3.11 raises no audit event for them, 3.12 raises
``_thread.start_new_thread`` and 3.13 ``_thread.start_joinable_thread``. The
child wraps ``threading.Thread.start`` (reported as ``threading.Thread.start``,
on every version) and, on 3.11, ``_thread.start_new_thread``; the low-level
events raised inside a wrapped start are ignored, so each start counts once.
Likewise the ``os.posix_spawn``/``os.fork`` raised inside ``subprocess.Popen``
count as that one ``subprocess.Popen``.

Discovery never imports the target in the calling process (see
:mod:`daybreak._imports_graph`). Importing this module starts nothing and
opens nothing.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from daybreak._config import configured_packages
from daybreak._imports_graph import (
    Target,
    TargetNotFoundError,
    dependency_order,
    discover,
    find_cycles,
    module_level_imports,
    name_and_path,
    roots_of,
    search_path,
    static_graph,
)
from daybreak._imports_progress import AuditProgress, Printer, Tracker, stop_on_signals
from daybreak._imports_report import (
    Cause,
    HungModule,
    ImportAudit,
    ImportFailure,
    ModuleReport,
    SideEffect,
    ThreadStack,
)
from daybreak._imports_run import Hang, Outcome, Runner

__all__ = (
    "AuditProgress",
    "Cause",
    "HungModule",
    "ImportAudit",
    "ImportFailure",
    "ModuleReport",
    "SideEffect",
    "TargetNotFoundError",
    "ThreadStack",
    "add_arguments",
    "audit",
    "configured_packages",
    "find_cycles",
    "module_level_imports",
    "run",
)


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
# The audit


def audit(
    target: str,
    *,
    allow: Sequence[str] = (),
    timeout: float = 10.0,
    isolate: bool = False,
    jobs: int | None = None,
    path: Sequence[str] = (),
    packages: Sequence[str] = (),
    exclude: Sequence[str] = (),
    progress: Callable[[AuditProgress], None] | None = None,
    stop: threading.Event | None = None,
) -> ImportAudit:
    """Import every module of ``target`` in a fresh child process and report what it does.

    Args:
        target: A package (all its modules are audited), a module (just that
            one), ``module:attribute`` (the attribute is ignored) or a path to
            a package directory or ``.py`` file.
        allow: ``EVENT`` or ``EVENT:detail-substring`` rules; matching side
            effects are not findings. ``EVENT`` may use ``fnmatch`` wildcards
            (``socket.*``).
        timeout: Seconds without a finished module (and with the same stack)
            before the import in progress counts as hung.
        isolate: One fresh child per module instead of one pass.
        jobs: With ``isolate``, child processes at a time (default ``os.cpu_count()``).
        path: Directories searched before ``sys.path``, here and in the children.
        packages: Other first-party packages (a ``shared`` library, a test
            framework): not audited, but their frames count as the project's
            for ``where`` and "stuck at".
        exclude: ``fnmatch`` globs of modules not to audit, matched against the
            dotted name and each of its parts (``tests``, ``test_*``, ``conftest``);
            they and the folders that cannot be imported are listed in ``skipped``.
        progress: Called, from the threads that watch the children, with an
            :class:`AuditProgress` whenever a child writes a record and at
            every poll (about five times a second); it should be quick.
        stop: Once set (from a signal handler or another thread), the audit
            ends within a poll: the children are killed and the result is
            ``partial``, with what was found so far.

    Raises:
        TargetNotFoundError: ``target`` cannot be found; nothing was imported.
        ValueError: A bad option value.
    """
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
    if isinstance(packages, str):
        packages = (packages,)
    if isinstance(exclude, str):
        exclude = (exclude,)
    if not sys.executable:
        raise RuntimeError("daybreak imports needs sys.executable to start child interpreters")

    name, extra = name_and_path(target)
    children_path = search_path([*path, *extra])
    found = discover(name, children_path, exclude)
    roots = (*found.roots, *roots_of(packages, children_path))
    graph = static_graph(found)

    tracker = Tracker(len(found.modules), progress) if progress is not None else None
    with tempfile.TemporaryDirectory(prefix="daybreak-imports-") as workdir:
        runner = Runner(found, roots, children_path, float(timeout), workdir, on_record=tracker, stop=stop)
        if isolate:
            outcomes, hangs = _isolated(runner, found, jobs)
        else:
            outcomes, hangs = runner.one_pass(dependency_order(graph), graph)
    return _result(found, graph, outcomes, hangs, rules, float(timeout), isolate, partial=runner.interrupted)


def _isolated(runner: Runner, found: Target, jobs: int) -> tuple[dict[str, Outcome], list[Hang]]:
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(
        max_workers=min(jobs, len(found.modules)), thread_name_prefix="daybreak-imports"
    ) as pool:
        futures = [pool.submit(runner.isolated, m.name) for m in found.modules]
        try:
            results = [future.result() for future in futures]
        except BaseException:
            runner.kill_all()
            for future in futures:
                future.cancel()
            raise
    return {outcome.name: outcome for outcome, _ in results}, [hang for _, hang in results if hang is not None]


def _result(
    found: Target,
    graph: dict[str, tuple[str, ...]],
    outcomes: dict[str, Outcome],
    hangs: list[Hang],
    rules: list[_AllowRule],
    timeout: float,
    isolate: bool,
    *,
    partial: bool = False,
) -> ImportAudit:
    modules: list[ModuleReport] = []
    allowed: list[tuple[str, SideEffect]] = []
    # Cut short, the modules no child reached are pending, not clean.
    pending = tuple(m.name for m in found.modules if partial and not outcomes[m.name].reached)
    left_out = set(pending)
    for module in found.modules:
        outcome = outcomes[module.name]
        if outcome.name in left_out:
            continue
        kept: list[SideEffect] = []
        for effect in dict.fromkeys(outcome.events):  # duplicates from racing threads
            if any(rule.matches(effect) for rule in rules):
                allowed.append((outcome.name, effect))
            else:
                kept.append(effect)
        modules.append(
            ModuleReport(
                outcome.name,
                outcome.seconds,
                tuple(kept),
                graph.get(outcome.name, ()),
                outcome.cumulative_s,
                outcome.blocked_by,
            )
        )
    return ImportAudit(
        target=found.name,
        modules=tuple(modules),
        cycles=tuple(tuple(cycle) for cycle in find_cycles(graph)),
        hung=_group_hangs(hangs, outcomes),
        errors=tuple(o.error for m in found.modules if (o := outcomes[m.name]).error is not None),
        partial=partial,
        pending=pending,
        allowed=tuple(allowed),
        timeout=timeout,
        mode="isolate" if isolate else "one-pass",
        skipped=found.skipped,
    )


def _group_hangs(hangs: list[Hang], outcomes: dict[str, Outcome]) -> tuple[HungModule, ...]:
    """One finding per stuck frame, with every module stuck there and those they block."""
    groups: dict[str, list[Hang]] = {}
    for hang in hangs:
        groups.setdefault(hang.where or f"module {hang.module}", []).append(hang)
    found: list[HungModule] = []
    for group in groups.values():
        first = group[0]
        names = tuple(dict.fromkeys(hang.module for hang in group))
        blocked = tuple(sorted(o.name for o in outcomes.values() if o.blocked_by in names))
        found.append(HungModule(first.module, first.where, first.stack, names, first.threads, blocked))
    return tuple(found)


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


def add_scope_arguments(parser: argparse.ArgumentParser, package: str, exclude: str) -> None:
    """The options that say what is first-party and what is left out (``imports`` and ``doctor``)."""
    parser.add_argument(
        package,
        action="append",
        default=[],
        dest="package",
        metavar="NAME",
        help="another first-party package (its lines count as the project's for 'where' and 'stuck at'); "
        "repeatable, added to [tool.daybreak] packages in pyproject.toml",
    )
    parser.add_argument(
        exclude,
        action="append",
        default=[],
        dest="exclude",
        metavar="GLOB",
        help="do not audit modules whose dotted name, or one of its parts, matches GLOB; repeatable",
    )


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
        help="seconds without progress (no module finished, the same stack) before an import "
        "counts as hung (default: 10)",
    )
    parser.add_argument(
        "--isolate",
        action="store_true",
        help="import each module in its own fresh process (slower; for effects that depend on import order)",
    )
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="with --isolate, child processes at a time (default: the number of CPUs)",
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="directory to search before sys.path (here and in the children); repeatable",
    )
    add_scope_arguments(parser, "--package", "--exclude")
    parser.add_argument("--json", action="store_true", help="print the JSON report, and nothing else, on stdout")
    parser.add_argument("--junit", metavar="FILE", default=None, help="also write a JUnit XML report to FILE")


def run(args: argparse.Namespace) -> int:
    """Run ``daybreak imports``: 0 clean, 1 dirty or hung, 2 target not found, 130/143 interrupted.

    Progress goes to stderr. SIGINT or SIGTERM ends the audit early: its
    children are killed, its temporary folder removed, and the partial report
    printed before the exit status says which signal it was.
    """
    with stop_on_signals() as signalled:
        code = _run_audit(args, signalled.event)
    if signalled.signum is not None:
        print(
            f"daybreak imports: interrupted by {signalled.name}; the report holds what was found until then",
            file=sys.stderr,
        )
        return 128 + signalled.signum
    return code


def _run_audit(args: argparse.Namespace, stop: threading.Event) -> int:
    printer = Printer(sys.stderr)
    try:
        result = audit(
            args.target,
            allow=getattr(args, "allow", None) or (),
            timeout=getattr(args, "timeout", 10.0),
            isolate=getattr(args, "isolate", False),
            jobs=getattr(args, "jobs", None),
            path=getattr(args, "path", None) or (),
            packages=[*(getattr(args, "package", None) or ()), *configured_packages()],
            exclude=getattr(args, "exclude", None) or (),
            progress=printer,
            stop=stop,
        )
    except (TargetNotFoundError, ValueError) as exc:
        print(f"daybreak imports: error: {exc}", file=sys.stderr)
        return 2
    finally:
        printer.clear()
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
