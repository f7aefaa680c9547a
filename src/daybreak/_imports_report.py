"""What ``daybreak imports`` found, and its three forms: JSON, text and JUnit."""

from __future__ import annotations

import linecache
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = (
    "Cause",
    "HungModule",
    "ImportAudit",
    "ImportFailure",
    "ModuleReport",
    "SideEffect",
    "ThreadStack",
)

# How many of the slowest modules the text shows.
_SLOWEST = 10


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


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
    """The import of one module.

    Attributes:
        name: Fully dotted module name.
        seconds: Time of the module's own body, the imports it runs excluded
            (``python -X importtime``'s *self*); None when it did not finish.
        side_effects: Findings that no ``allow`` rule suppressed.
        imports: Modules of the audited package this module imports at module
            level (the static graph the cycles come from).
        cumulative_s: Its import with everything it imported first
            (``-X importtime``'s *cumulative*: in one pass, what was already
            imported costs nothing; with ``isolate``, everything it needs).
        blocked_by: The hung or failing module its import needs, when it was
            not imported because of that module.
    """

    name: str
    seconds: float | None
    side_effects: tuple[SideEffect, ...] = ()
    imports: tuple[str, ...] = ()
    cumulative_s: float | None = None
    blocked_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": _seconds(self.seconds),
            "cumulative_s": _seconds(self.cumulative_s),
            "blocked_by": self.blocked_by,
            "side_effects": [effect.to_dict() for effect in self.side_effects],
        }


@dataclass(frozen=True, slots=True)
class ThreadStack:
    """Another thread of the child when a module hung: its name and stack (innermost first)."""

    name: str
    stack: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "stack": list(self.stack)}


@dataclass(frozen=True, slots=True)
class HungModule:
    """A stuck frame: modules whose import made no progress within the timeout.

    Attributes:
        module: The first module found stuck there (fully dotted name).
        where: ``file:line`` the import was stuck on: the innermost frame of
            the project's code in the importing thread, or None when no stack
            could be taken.
        stack: That thread's stack, innermost first, as ``file:line in function``.
        modules: Every module stuck at ``where`` (``module`` first): one cause,
            one finding.
        threads: The child's other threads at that moment.
        blocked: Modules not imported because their import needs one of ``modules``.
    """

    module: str
    where: str | None
    stack: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    threads: tuple[ThreadStack, ...] = ()
    blocked: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "where": self.where,
            "stack": list(self.stack),
            "modules": list(self.modules or (self.module,)),
            "blocked": list(self.blocked),
            "threads": [thread.to_dict() for thread in self.threads],
        }


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
class Cause:
    """One cause and every module it touches (the findings grouped by ``where``).

    Attributes:
        kind: ``side_effect``, ``hung`` or ``error``.
        where: ``file:line`` of the cause (None when it is not known).
        detail: The event and what it touched, the stuck line, or the exception.
        modules: Modules with this finding, then those blocked by it.
    """

    kind: Literal["side_effect", "hung", "error"]
    where: str | None
    detail: str
    modules: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "detail": self.detail, "modules": list(self.modules)}


@dataclass(frozen=True, slots=True)
class ImportAudit:
    """What importing a package does; ``to_dict()`` is the ``--json`` output.

    The verdict is ``dirty`` when any side effect (not allowed), import cycle,
    hung module or import error exists. A slow module (its import took longer
    than ``timeout`` but kept making progress) is reported, not a failure.
    An audit cut short (a signal) is ``partial``: ``modules`` holds those a
    child reached, ``pending`` the others, and its verdict is ``dirty`` when
    it found anything, else ``partial`` (never ``clean``: it did not look everywhere).
    """

    target: str
    modules: tuple[ModuleReport, ...]
    cycles: tuple[tuple[str, ...], ...] = ()
    hung: tuple[HungModule, ...] = ()
    errors: tuple[ImportFailure, ...] = ()
    allowed: tuple[tuple[str, SideEffect], ...] = field(default=(), compare=False)
    timeout: float = field(default=10.0, compare=False)
    mode: Literal["one-pass", "isolate"] = field(default="one-pass", compare=False)
    skipped: tuple[tuple[str, str], ...] = ()
    partial: bool = False
    pending: tuple[str, ...] = ()

    @property
    def verdict(self) -> Literal["clean", "dirty", "partial"]:
        if self.found_anything:
            return "dirty"
        return "partial" if self.partial else "clean"

    @property
    def clean(self) -> bool:
        return not (self.found_anything or self.partial)

    @property
    def found_anything(self) -> bool:
        return bool(self.side_effects or self.cycles or self.hung or self.errors)

    @property
    def side_effects(self) -> tuple[tuple[str, SideEffect], ...]:
        """All findings as ``(module, side_effect)`` pairs."""
        return tuple((m.name, e) for m in self.modules for e in m.side_effects)

    @property
    def slow(self) -> tuple[ModuleReport, ...]:
        """Modules whose import took longer than the timeout without hanging, slowest first."""
        slow = (m for m in self.modules if m.cumulative_s is not None and m.cumulative_s > self.timeout)
        return tuple(sorted(slow, key=lambda m: -(m.cumulative_s or 0.0)))

    @property
    def causes(self) -> tuple[Cause, ...]:
        """Every finding grouped by its cause, the cause touching the most modules first."""
        effects: dict[tuple[str, str | None], tuple[list[str], list[str]]] = {}
        for name, effect in self.side_effects:
            # Without a line, only the same detail is the same cause.
            key = (effect.event if effect.where else f"{effect.event} {effect.detail}", effect.where)
            modules, details = effects.setdefault(key, ([], []))
            modules.append(name)
            details.append(f"{effect.event} {effect.detail}".strip())
        causes = [
            Cause("side_effect", where, _details(details), tuple(dict.fromkeys(modules)))
            for (_, where), (modules, details) in effects.items()
        ]
        for hung in self.hung:
            stuck = (*(hung.modules or (hung.module,)), *hung.blocked)
            causes.append(Cause("hung", hung.where, _source_line(hung.where) or "no progress", stuck))
        errors: dict[tuple[str, str], tuple[str | None, list[str], list[str]]] = {}
        for error in self.errors:
            # Without a line, each module's error is its own cause.
            key = (error.type, error.where or f"module {error.module}")
            _, modules, details = errors.setdefault(key, (error.where, [], []))
            modules += [error.module, *(m.name for m in self.modules if m.blocked_by == error.module)]
            details.append(f"{error.type}: {error.message}")
        causes += [
            Cause("error", where, _details(details), tuple(modules)) for where, modules, details in errors.values()
        ]
        return tuple(sorted(causes, key=lambda c: (-len(c.modules), c.where or "", c.detail)))

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
            "mode": self.mode,
            "modules": [m.to_dict() for m in self.modules],
            "cycles": [list(cycle) for cycle in self.cycles],
            "hung": [h.to_dict() for h in self.hung],
            "errors": [e.to_dict() for e in self.errors],
            "slow": [{"module": m.name, "cumulative_s": _seconds(m.cumulative_s)} for m in self.slow],
            "causes": [cause.to_dict() for cause in self.causes],
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "partial": self.partial,
            "pending": list(self.pending),
        }

    def to_text(self, *, color: bool = False) -> str:
        """A readable summary (the default output of ``daybreak imports``)."""
        return _format_text(self, color=color)

    def to_junit(self) -> str:
        """JUnit XML: a testcase per module, one for cycles, one per hung module."""
        return _format_junit(self)


# --------------------------------------------------------------------------
# Text


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


def _source_line(where: str | None) -> str:
    """The text of the line at ``where`` (empty when it cannot be read)."""
    if where is None:
        return ""
    file, _, line = where.rpartition(":")
    if not line.isdigit():
        return ""
    return linecache.getline(file, int(line)).strip()


def _details(details: list[str]) -> str:
    distinct = list(dict.fromkeys(details))
    return distinct[0] + (f" (and {len(distinct) - 1} other)" if len(distinct) > 1 else "")


def _names(modules: Iterable[str], limit: int = 8) -> str:
    names = list(modules)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _count_names(modules: tuple[str, ...]) -> str:
    return f"{_plural(len(modules), 'module')}: {_names(modules)}" if len(modules) > 1 else modules[0]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _format_text(result: ImportAudit, *, color: bool) -> str:
    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if color else text

    effects = result.side_effects
    verdict = paint(result.verdict, "32" if result.clean else "1;33" if not result.found_anything else "1;31")
    counts = [
        _plural(len(result.modules), "module"),
        _plural(len(effects), "side effect"),
        _plural(len(result.cycles), "cycle"),
        f"{sum(len(h.modules or (h.module,)) for h in result.hung)} hung",
        _plural(len(result.errors), "error"),
    ]
    blocked = [m for m in result.modules if m.blocked_by is not None]
    if blocked:
        counts.append(f"{len(blocked)} blocked")
    if result.allowed:
        counts.append(f"{len(result.allowed)} allowed")
    if result.partial:
        counts.append(f"{len(result.pending)} not reached")
    lines = [f"daybreak imports {result.target}: {verdict} ({', '.join(counts)})"]
    if result.partial:
        lines += [
            "",
            paint("Interrupted: what was found until then", "1"),
            f"  not reached ({len(result.pending)}): {_names(result.pending) or '-'}",
        ]
    causes = result.causes
    if effects:
        lines += ["", paint("Import-time side effects (by cause, the most modules first)", "1")]
        for cause in causes:
            if cause.kind == "side_effect":
                event, _, detail = cause.detail.partition(" ")
                lines.append(f"  {paint(event, '33')} {detail}".rstrip() + f"  at {_show_where(cause.where)}")
                lines.append(f"      {_count_names(cause.modules)}")
    if result.cycles:
        lines += ["", paint("Import cycles", "1")]
        lines += [f"  {' -> '.join(cycle)}" for cycle in result.cycles]
    if result.hung:
        lines += ["", paint(f"Hung imports (no progress for {result.timeout:g} s)", "1")]
        for hung in sorted(result.hung, key=lambda h: -len(h.modules) - len(h.blocked)):
            source = _source_line(hung.where)
            lines.append(f"  {_names(hung.modules or (hung.module,))}  stuck at {_show_where(hung.where)}")
            if source:
                lines.append(f"      {source}")
            if hung.blocked:
                lines.append(f"      blocked (they need it): {_names(hung.blocked)}")
    if result.errors:
        lines += ["", paint("Import errors", "1")]
        for error in result.errors:
            at = f"  at {_show_where(error.where)}" if error.where else ""
            lines.append(f"  {error.module}  {error.type}: {error.message}{at}")
            failed_with = [m.name for m in blocked if m.blocked_by == error.module]
            if failed_with:
                lines.append(f"      also fails (needs it): {_names(failed_with)}")
    if result.skipped:
        lines += ["", paint(f"Not audited ({len(result.skipped)})", "1")]
        lines += [f"  {_show_where(path)}  {reason}" for path, reason in result.skipped[:_SLOWEST]]
        if len(result.skipped) > _SLOWEST:
            lines.append(f"  ... ({len(result.skipped) - _SLOWEST} more in --json)")
    if result.slow:
        lines += ["", paint(f"Slow imports (over {result.timeout:g} s, still making progress: not hung)", "1")]
        lines += [f"  {(m.cumulative_s or 0.0) * 1e3:9.1f} ms  {m.name}" for m in result.slow]
    timed = sorted((m for m in result.modules if m.seconds is not None), key=lambda m: -(m.seconds or 0.0))
    if timed:
        lines += ["", paint("Slowest imports (self / cumulative ms, as python -X importtime)", "1")]
        lines += [
            f"  {(m.seconds or 0.0) * 1e3:9.1f} / {(m.cumulative_s or 0.0) * 1e3:9.1f}  {m.name}"
            for m in timed[:_SLOWEST]
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# JUnit


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
    if result.partial:
        case = ET.SubElement(suite, "testcase", classname=classname, name="interrupted", time="0")
        message = f"interrupted: {_plural(len(result.pending), 'module')} not reached"
        ET.SubElement(case, "skipped", message=message).text = _xml("\n".join(result.pending))
    suite.set("tests", str(len(suite)))
    if result.partial:
        suite.set("skipped", "1")
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("time", f"{sum(m.seconds or 0.0 for m in result.modules):.6f}")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
