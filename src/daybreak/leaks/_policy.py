"""The leak checker's policy: known growth a team cannot fix, and its threshold.

``[tool.daybreak.leaks]`` in ``pyproject.toml``::

    [tool.daybreak.leaks]
    threshold = "2KiB"        # bytes per cycle; --threshold wins over it
    allow = [
      {site = "asyncpg/*", reason = "asyncpg keeps ~97 KB per pool created (MagicStack/asyncpg#1123)"},
    ]

Each ``allow`` entry is a glob (``fnmatch``: ``*`` also crosses ``/``) for a
finding's site, ``file:line``, and a reason, required: an allowance nobody can
explain is a leak nobody looks at again. A pattern matches the site's
``file:line``, its file alone, or any path ending in it (``alembic/*`` matches
``.../site-packages/alembic/script/base.py:12``), in the site itself or in any
frame of its stack: the growth of a library called from the project's line is
allowed by naming the library.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daybreak._config import Config, ConfigError
from daybreak.leaks._rules import DEFAULT_THRESHOLD, steady_growth

if TYPE_CHECKING:
    from daybreak.errors import StartupError
    from daybreak.leaks._report import LeakReport

__all__ = ["Allow", "Allowed", "Policy", "apply", "failed_start", "hints", "load_policy", "policy_lines",
           "policy_of", "wants_sites"]

_KEYS = ("allow", "threshold")
_EXAMPLE = '{site = "alembic/*", reason = "..."}'


@dataclass(frozen=True)
class Allow:
    """Growth at ``site`` (a glob) is expected, for ``reason``."""

    site: str
    reason: str

    def matches(self, where: str | None, stack: Iterable[str] = ()) -> bool:
        """Whether ``where`` (``file:line``), or a frame of ``stack``, is this site."""
        return any(self._matches_one(w) for w in (where, *stack) if w)

    def _matches_one(self, where: str) -> bool:
        where = where.replace("\\", "/")
        file, sep, line = where.rpartition(":")
        candidates = (where, file) if sep and line.isdigit() else (where,)
        return any(fnmatch.fnmatchcase(c, self.site) or fnmatch.fnmatchcase(c, "*/" + self.site)
                   for c in candidates)


@dataclass(frozen=True)
class Policy:
    """What the leak checker forgives: ``allow`` entries, and a threshold (None: the default)."""

    allow: tuple[Allow, ...] = ()
    threshold: float | None = None
    source: str | None = None  # the pyproject.toml it came from

    def threshold_or(self, given: float | None) -> float:
        """``given`` (the command line's), else this policy's, else the default threshold."""
        return given if given is not None else self.threshold if self.threshold is not None \
            else float(DEFAULT_THRESHOLD)


def load_policy(start: str | None = None) -> Policy:
    """The policy of the nearest ``pyproject.toml``; raises :class:`ConfigError` when it is wrong."""
    from daybreak._config import load

    return policy_of(load(start))


def policy_of(config: Config) -> Policy:
    section = config.section("leaks")
    where = f"{config.path}: [tool.daybreak.leaks]"
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys are {', '.join(_KEYS)}")
    threshold = _threshold(section.get("threshold"), where)
    entries = section.get("allow", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{where} allow must be a list of tables such as {_EXAMPLE}")
    return Policy(tuple(_allow(entry, f"{where} allow[{i}]") for i, entry in enumerate(entries)),
                  threshold, config.path)


def _allow(entry: Any, where: str) -> Allow:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table such as {_EXAMPLE}, got {entry!r}")
    unknown = sorted(set(entry) - {"site", "reason"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; an entry has site and reason")
    site, reason = entry.get("site"), entry.get("reason")
    if not isinstance(site, str) or not site.strip():
        raise ConfigError(f"{where}: needs a site, a glob such as \"alembic/*\" or \"app/cache.py:12\"")
    if not isinstance(reason, str) or not reason.strip():
        raise ConfigError(f"{where} (site {site!r}): needs a reason, a sentence saying why this growth "
                          "is expected")
    return Allow(site.strip(), reason.strip())


def _threshold(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        import argparse

        from daybreak.leaks._cli import parse_size

        try:
            return parse_size(value)
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"{where} threshold: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where} threshold: expected bytes per cycle >= 0 or a size such as \"2KiB\", "
                          f"got {value!r}")
    return float(value)


# -- applying it to a report ----------------------------------------------------------------------
@dataclass(frozen=True)
class Allowed:
    """A finding the policy allows: not part of the verdict, shown with its reason."""

    kind: str
    where: str
    per_cycle: float  # bytes for memory, a count for the others
    site: str  # the pattern that allowed it
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "per_cycle": round(self.per_cycle, 2),
                "site": self.site, "reason": self.reason}


def _allowing(allow: Iterable[Allow], where: str | None, stack: Iterable[str] = ()) -> Allow | None:
    frames = tuple(stack)
    return next((a for a in allow if a.matches(where, frames)), None)


def apply(report: LeakReport, allow: Iterable[Allow]) -> LeakReport:
    """``report`` with what ``allow`` allows taken out of its findings and its verdict.

    Memory stays a leak when some growing site is not allowed and the growth
    less the allowed sites' is still above the threshold. Threads and tasks stay
    a leak when some group of them is not allowed.
    """
    entries = tuple(allow)
    if not entries:
        return report
    found: list[Allowed] = []
    leaks = dict(report.leaks)
    sites = []
    for s in report.sites:
        entry = _allowing(entries, s.where, s.stack)
        if entry is None:
            sites.append(s)
        else:
            found.append(Allowed("memory", s.where, s.bytes_per_cycle, entry.site, entry.reason))
    allowed_bytes = sum(a.per_cycle for a in found)
    if leaks.get("memory") and found:
        leaks["memory"] = bool(sites) and report.growth_bytes_per_cycle - allowed_bytes > report.threshold_bytes
    workers: dict[str, Any] = {}
    for kind in ("threads", "tasks"):
        kept = []
        for w in getattr(report, kind):
            entry = _allowing(entries, w.where)
            if entry is None:
                kept.append(w)
            else:
                found.append(Allowed(kind, w.where or "?", w.per_cycle, entry.site, entry.reason))
        if leaks.get(kind) and not kept and getattr(report, kind):
            leaks[kind] = False
        workers[kind] = tuple(kept)
    if not found:
        return report
    return dataclasses.replace(report, leaks=leaks, sites=tuple(sites), allowed=tuple(found), **workers)


def wants_sites(slope: float, share: float, median: float, threshold: float) -> bool:
    """Steady growth under the threshold, worth a hint: the memory rule at an eighth of it."""
    return slope <= threshold and steady_growth(slope, share, median, max(threshold / 8, 16.0))


def hints(report: LeakReport) -> tuple[str, ...]:
    """"+0.2 KiB/cycle below threshold (1 KiB) at X; --threshold to tighten", when it applies."""
    if report.leaks.get("memory") or not wants_sites(report.growth_bytes_per_cycle, report.growing_share,
                                                     report.median_growth_bytes, report.threshold_bytes):
        return ()
    top = next((s for s in report.sites if not s.internal), None)
    if top is None:  # allowed, or only asyncio's and the standard library's own drift
        return ()
    return (f"{top.bytes_per_cycle / 1024:+.1f} KiB/cycle below threshold ({_size(report.threshold_bytes)}) "
            f"at {top.where}; --threshold to tighten",)


def policy_lines(report: LeakReport, kind: str) -> list[str]:
    """The text under ``kind``: what the allow-list allowed, with its reason, and the hints."""
    from daybreak.leaks._report import _bytes

    out = []
    for a in report.allowed:
        if a.kind == kind:
            amount = _bytes(a.per_cycle, signed=True) if kind == "memory" else f"{a.per_cycle:+.2f}"
            out.append(f"allowed  {amount}/cycle  {a.where}: {a.reason}")
    if kind == "memory":
        out.extend(f"hint: {hint}" for hint in report.hints)
    return out


def _size(n: float) -> str:
    return f"{n / 1024:g} KiB" if n >= 1024 else f"{n:g} B"


# -- a start that failed in a cycle --------------------------------------------------------------
_CYCLE_NOTE = re.compile(r"the start failed in cycle (\d+) of ([^;]+)")


def failed_start(name: str, exc: StartupError, *, cycles: int, warmup: int,
                 threshold: float) -> dict[str, Any]:
    """The JSON of a leak check whose start failed: verdict ``error``, the (redacted) error, no findings."""
    note = next((m for n in getattr(exc, "__notes__", ()) if (m := _CYCLE_NOTE.search(n))), None)
    message = str(exc)
    first = message.splitlines()[0] if message else type(exc).__name__
    summary = f"the start failed in cycle {note[1]} of {note[2]}: {first}" if note else first
    return {
        "verdict": "error",
        "name": name,
        "cycles": cycles,
        "warmup": warmup,
        "threshold_bytes": threshold,
        "error": {"type": type(exc).__name__, "message": message, "summary": summary,
                  "component": exc.component, "where": exc.where,
                  "cycle": int(note[1]) if note else None,
                  "cause": exc.report.to_dict().get("error")},
        "growth_bytes_per_cycle": None, "kinds": {}, "per_cycle": {}, "sites": [], "threads": [],
        "tasks": [], "fds": [], "objects": [], "samples": [], "allowed": [], "hints": [],
    }
