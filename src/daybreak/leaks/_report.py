"""What a leak check found: the result dataclasses and their text, JSON and JUnit forms."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from daybreak.leaks._native import DEFAULT_NATIVE_THRESHOLD
from daybreak.leaks._policy import Allowed, hints, policy_lines
from daybreak.leaks._rules import DEFAULT_TRACEBACK_LIMIT

Kind = Literal["memory", "native", "threads", "tasks", "fds", "unclosed", "hooks"]
KINDS: tuple[Kind, ...] = ("memory", "native", "threads", "tasks", "fds", "unclosed", "hooks")
HookKind = Literal["atexit", "logging", "signal", "excepthook"]
HOOK_KINDS: tuple[HookKind, ...] = ("atexit", "logging", "signal", "excepthook")


@dataclass(frozen=True)
class LeakSite:
    """An allocation site whose memory grew: ``where`` is ``file:line``."""

    where: str
    bytes_per_cycle: float
    count_per_cycle: float
    stack: tuple[str, ...] = ()
    internal: bool = False  # no project or library frame: asyncio, daybreak or the stdlib

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "bytes_per_cycle": round(self.bytes_per_cycle, 1),
                "count_per_cycle": round(self.count_per_cycle, 2), "stack": list(self.stack),
                "internal": self.internal}


@dataclass(frozen=True)
class LeakedWorker:
    """Threads or tasks of one kind (name and place) that appeared after the warm-up."""

    name: str
    where: str | None
    per_cycle: float
    component: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "where": self.where, "per_cycle": round(self.per_cycle, 2),
                "component": self.component}


@dataclass(frozen=True)
class LeakedFd:
    """File descriptors of one kind (``file``, ``socket``, ``pipe``) that appeared after the warm-up."""

    kind: str
    detail: str
    per_cycle: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "per_cycle": round(self.per_cycle, 2)}


@dataclass(frozen=True)
class LeakedObject:
    """A type whose gc-tracked instances grew between the warm-up and the last cycle."""

    type: str
    per_cycle: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "per_cycle": round(self.per_cycle, 2)}


@dataclass(frozen=True)
class LeakedHook:
    """Process-wide hooks of one kind added (or replaced) in every cycle: atexit, logging, signal, excepthook."""

    kind: HookKind
    detail: str
    per_cycle: float
    where: str | None = None  # where the handler was created, or the hook function defined

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "per_cycle": round(self.per_cycle, 2),
                "where": self.where}


@dataclass(frozen=True)
class LeakedUnclosed:
    """Resources of one kind that only the garbage collector closed, by the line that created them."""

    what: str  # "socket", "transport", "aiohttp.ClientSession", "ThreadPoolExecutor" ...
    where: str | None
    per_cycle: float
    component: str | None = None
    message: str = ""  # the first warning or log record, as the collector reported it
    source: str = "warning"  # "warning" (ResourceWarning), "log" (a library's record), "executor"

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "where": self.where, "per_cycle": round(self.per_cycle, 2),
                "component": self.component, "message": self.message, "source": self.source}


@dataclass(frozen=True)
class Sample:
    """What was alive after one cycle (cycle 0: before the first start)."""

    cycle: int
    traced_bytes: int
    threads: int
    tasks: int
    fds: int
    warmup: bool = False
    native_bytes: int = 0
    hooks: int = 0
    unclosed: int = 0  # closed by the collector during this cycle

    def to_dict(self) -> dict[str, Any]:
        return {"cycle": self.cycle, "traced_bytes": self.traced_bytes, "threads": self.threads,
                "tasks": self.tasks, "fds": self.fds, "warmup": self.warmup,
                "native_bytes": self.native_bytes, "hooks": self.hooks, "unclosed": self.unclosed}


@dataclass(frozen=True)
class LeakReport:
    """The result of a leak check; ``to_dict()`` is the JSON of ``daybreak leaks --json``."""

    name: str
    cycles: int
    warmup: int
    threshold_bytes: float
    growth_bytes_per_cycle: float
    growing_share: float
    median_growth_bytes: float
    leaks: Mapping[Kind, bool]
    per_cycle: Mapping[str, float]
    sites: tuple[LeakSite, ...] = ()
    threads: tuple[LeakedWorker, ...] = ()
    tasks: tuple[LeakedWorker, ...] = ()
    fds: tuple[LeakedFd, ...] = ()
    objects: tuple[LeakedObject, ...] = ()
    samples: tuple[Sample, ...] = ()
    seconds_per_cycle: float = 0.0
    traceback_limit: int = DEFAULT_TRACEBACK_LIMIT
    fds_measured: bool = True
    attribution_cycles: int = 0
    native_growth_bytes_per_cycle: float = 0.0
    native_threshold_bytes: float = DEFAULT_NATIVE_THRESHOLD
    native_source: str = "none"  # "mallinfo2", "rss" or "none" (not measured)
    hooks: tuple[LeakedHook, ...] = ()
    unclosed: tuple[LeakedUnclosed, ...] = ()
    library: str | None = None  # every growing site is inside this installed library
    allowed: tuple[Allowed, ...] = ()  # what the policy's allow-list took out of the verdict

    @property
    def hints(self) -> tuple[str, ...]:
        """Steady growth below the threshold, by site: it passes, but it is said."""
        return hints(self)

    @property
    def verdict(self) -> Literal["clean", "leak"]:
        return "leak" if any(self.leaks.values()) else "clean"

    @property
    def leaked(self) -> bool:
        return self.verdict == "leak"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "name": self.name,
            "cycles": self.cycles,
            "warmup": self.warmup,
            "growth_bytes_per_cycle": round(self.growth_bytes_per_cycle, 1),
            "threshold_bytes": self.threshold_bytes,
            "growing_share": round(self.growing_share, 3),
            "median_growth_bytes": round(self.median_growth_bytes, 1),
            "kinds": {kind: "leak" if self.leaks.get(kind) else "clean" for kind in KINDS},
            "per_cycle": {k: round(v, 2) for k, v in self.per_cycle.items()},
            "sites": [s.to_dict() for s in self.sites],
            "threads": [t.to_dict() for t in self.threads],
            "tasks": [t.to_dict() for t in self.tasks],
            "fds": [f.to_dict() for f in self.fds],
            "objects": [o.to_dict() for o in self.objects],
            "native_growth_bytes_per_cycle": round(self.native_growth_bytes_per_cycle, 1),
            "native_threshold_bytes": self.native_threshold_bytes,
            "native_source": self.native_source,
            "unclosed": [u.to_dict() for u in self.unclosed],
            "hooks": [h.to_dict() for h in self.hooks],
            "library": self.library,
            "samples": [s.to_dict() for s in self.samples],
            "seconds_per_cycle": round(self.seconds_per_cycle, 6),
            "traceback_limit": self.traceback_limit,
            "attribution_cycles": self.attribution_cycles,
            "fds_measured": self.fds_measured,
            "allowed": [a.to_dict() for a in self.allowed],
            "hints": list(self.hints),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    # -- readable forms -----------------------------------------------------------------------
    def growth(self, kind: Kind) -> str:
        """How much ``kind`` grew per cycle, and by which rule it is (or is not) a leak."""
        if kind == "memory":
            grew = round(self.growing_share * self.cycles)
            inside = f", inside the library {self.library}" if self.leaks.get("memory") and self.library else ""
            return (f"{_bytes(self.growth_bytes_per_cycle, signed=True)} per cycle "
                    f"(threshold {_bytes(self.threshold_bytes)}; grew in {grew} of "
                    f"{self.cycles} cycles{inside})")
        if kind == "native":
            if not self.measured(kind):
                return "not measured (no mallinfo2 or /proc/self/statm on this platform)"
            return (f"{_bytes(self.native_growth_bytes_per_cycle, signed=True)} per cycle beside "
                    f"tracemalloc (threshold {_bytes(self.native_threshold_bytes)}; {self.native_source})")
        if not self.measured(kind):
            return "not measured (no /proc/self/fd on this platform)"
        text = f"{self.per_cycle.get(kind, 0.0):+.2f} per cycle"
        if kind == "unclosed":
            return text + (" closed by the garbage collector, in most cycles" if self.leaks.get(kind) else "")
        return text + (" (every measured cycle added at least one)" if self.leaks.get(kind) else "")

    def measured(self, kind: Kind) -> bool:
        """Whether this platform could measure ``kind``."""
        if kind == "fds":
            return self.fds_measured
        return kind != "native" or self.native_source != "none"

    def headline(self, kind: Kind) -> str:
        """One line on ``kind``, e.g. ``threads: +1.00 per cycle (...)``."""
        return f"{kind}: {self.growth(kind)}"

    def details(self, kind: Kind) -> list[str]:
        """The lines that explain ``kind``: sites, threads, tasks or descriptors."""
        if kind == "memory":
            out = []
            for s in self.sites:
                note = " (inside asyncio/daybreak/stdlib)" if s.internal else ""
                out.append(f"{_bytes(s.bytes_per_cycle, signed=True)}/cycle  "
                           f"{s.count_per_cycle:.1f} blocks/cycle  {s.where}{note}")
            if self.leaks.get("memory") and not self.sites:
                out.append("no allocation site kept growing between the warm-up and the last "
                           "cycle (try a higher --traceback-limit)")
            if self.leaks.get("memory") and self.library:
                out.append(f"every growing site is inside the installed library {self.library!r}, "
                           "not in the project's code: its own cache or leak")
            return out
        if kind == "native":
            return []
        if kind == "unclosed":
            return [f"{u.per_cycle:+.2f}/cycle  {u.what}"
                    + (f" (component {u.component})" if u.component else "")
                    + f"  created at {u.where or '?'}" for u in self.unclosed]
        if kind == "hooks":
            return [f"{h.per_cycle:+.2f}/cycle  {h.kind}  {h.detail}"
                    + (f"  at {h.where}" if h.where else "") for h in self.hooks]
        if kind in ("threads", "tasks"):
            items = self.threads if kind == "threads" else self.tasks
            return [f"{w.per_cycle:+.2f}/cycle  {w.name}"
                    + (f" (component {w.component})" if w.component else "")
                    + f"  at {w.where or '?'}" for w in items]
        return [f"{f.per_cycle:+.2f}/cycle  {f.kind}  {f.detail}" for f in self.fds]

    def to_text(self, style: Any = None) -> str:
        """The readable summary: the verdict, growth per cycle, sites and counted leaks.

        ``style`` is a :class:`daybreak._console.Style` for colours, or None.
        """

        def status(text: str) -> str:
            return str(style.status(text)) if style is not None else text

        head = (f"daybreak leaks {self.name}: {status(self.verdict)}: {self.cycles} cycles after "
                f"{self.warmup} warm-up, {self.seconds_per_cycle:.3f} s/cycle")
        lines = [head]
        for kind in KINDS:
            verdict = "leak" if self.leaks.get(kind) else "clean"
            if verdict == "clean" and any(a.kind == kind for a in self.allowed):
                verdict = "allowed"
            if not self.measured(kind):
                verdict = "n/a"
            lines.append(f"  {kind:<8} {status(verdict)}{' ' * (6 - len(verdict))} {self.growth(kind)}")
            lines.extend(f"             {line}" for line in [*self.details(kind), *policy_lines(self, kind)])
        if self.objects:
            growers = ", ".join(f"{o.type} {o.per_cycle:+.1f}" for o in self.objects[:6])
            lines.append(f"  objects per cycle: {growers}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def to_junit(self) -> str:
        """JUnit XML: one testsuite ``daybreak.leaks``, a testcase per resource kind."""
        from xml.etree import ElementTree as ET

        total_s = self.seconds_per_cycle * (self.cycles + self.warmup)
        suite = ET.Element("testsuite", name="daybreak.leaks", tests=str(len(KINDS)),
                           failures=str(sum(1 for k in KINDS if self.leaks.get(k))), errors="0",
                           skipped=str(sum(1 for k in KINDS if not self.measured(k))), time=f"{total_s:.3f}")
        for kind in KINDS:
            case = ET.SubElement(suite, "testcase", classname=f"daybreak.leaks.{self.name}",
                                 name=kind, time=f"{total_s / len(KINDS):.3f}")
            if not self.measured(kind):
                ET.SubElement(case, "skipped", message=self.headline(kind))
            elif self.leaks.get(kind):
                failure = ET.SubElement(case, "failure", type="leak", message=self.headline(kind))
                failure.text = "\n".join([self.headline(kind), *self.details(kind)])
        ET.SubElement(suite, "system-out").text = self.to_text()
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

    def write_junit(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as out:
            out.write(self.to_junit())


def _bytes(n: float, signed: bool = False) -> str:
    sign = "+" if signed and n > 0 else ""
    for unit, size in (("MiB", 1024.0 ** 2), ("KiB", 1024.0)):
        if abs(n) >= size:
            return f"{sign}{n / size:.1f} {unit}"
    return f"{sign}{n:.0f} B"
