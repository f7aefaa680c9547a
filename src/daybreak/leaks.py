"""The leak checker: start and stop a registry many times in one process, find what grows.

``check(registry)`` (or ``await acheck(registry)`` inside a running event loop)
runs ``warmup + cycles`` start/stop cycles, each ``async with
registry.start(...)``. After every cycle, once ``gc.collect()`` has run, it
measures the memory traced by :mod:`tracemalloc`, the live threads, the pending
asyncio tasks and the open file descriptors (``/proc/self/fd``, sockets
included).

How the verdict avoids false alarms:

- **One event loop for all cycles.** ``check`` runs one ``asyncio.run`` per
  check, not per cycle. A fresh loop per cycle costs asyncio itself about
  100-150 B of traced memory per cycle (measured on 3.11-3.13; one loop: 0 B),
  adds a selector and a self-pipe to every cycle, and, worse, cancels every
  task still pending when it closes: the task a stop forgot would be swept
  away before it could be counted. One loop is also what ``acheck`` gets
  inside a test's loop, so both measure the same thing.
- **Warm-up.** The first ``warmup`` cycles are not measured: lazy imports,
  caches, free lists and thread pools fill there. ``cycles`` is the number of
  measured cycles after them.
- **Memory.** Growth per cycle is the Theil-Sen slope (median of pairwise
  slopes) of traced memory over the measured cycles, so one odd cycle can
  neither fake nor hide a trend. It is a leak only when the slope is above
  ``threshold`` *and* the growth is persistent: at least 75% of the
  cycle-to-cycle differences grow, and the median difference is at least half
  the threshold (one step, such as a lazy import in cycle 5 on top of a steady
  drift of a few bytes, is not a leak).
- **Counted resources** (threads, tasks, fds) leak when every measured cycle
  adds at least one: CPython's rule for hunting reference leaks.
- **At least three measured cycles** (``MIN_CYCLES``): one or two differences
  cannot tell a trend from a one-time step.
- **Measuring changes nothing it measures.** Per-cycle numbers go to
  preallocated arrays; what the checker keeps (the baseline's snapshot and
  counters) is measured between two ``gc.collect()`` calls and subtracted.

Attribution: the cycles run with one frame per traced allocation (enough for
the totals; 25 frames make every allocation several times dearer). When memory
leaks, a few more cycles (``_ATTRIBUTION_CYCLES``) run with ``traceback_limit``
frames, and a snapshot taken before them is compared with one taken after,
grouped by traceback. (If tracemalloc was already running, it is left as it is
and the snapshot taken after the warm-up is compared with one after the last
cycle.) Each traceback is cut where the project's code was called from:
daybreak's own frames, or the event loop dispatching a callback. The site is
the innermost frame of the project's code in what is left (see
:func:`daybreak.diagnostics.innermost_project_frame`); failing that, of a
library; failing that, the allocation itself, marked ``internal``. Threads and
tasks that appeared after the warm-up are named by where they are stuck, and by
their component when it can be told.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import functools
import gc
import itertools
import json
import math
import re
import statistics
import sys
import threading
import time
import tracemalloc
import types
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from daybreak._stats import growing_share, theil_sen
from daybreak.diagnostics._fds import open_fds
from daybreak.diagnostics._places import Place, place_of
from daybreak.diagnostics.frames import Frame, innermost_project_frame
from daybreak.diagnostics.leftovers import LeftFd, LeftTask, LeftThread, Snapshot, leftovers_since
from daybreak.errors import UsageError
from daybreak.registry import Registry
from daybreak.system import component_codes, component_of_task

if TYPE_CHECKING:
    from daybreak.system import System

__all__ = [
    "KINDS",
    "MIN_CYCLES",
    "Kind",
    "LeakReport",
    "LeakSite",
    "LeakedFd",
    "LeakedObject",
    "LeakedWorker",
    "Sample",
    "acheck",
    "add_arguments",
    "check",
    "counted_leaks",
    "growth_sites",
    "memory_leaks",
    "memory_trend",
    "parse_size",
    "run",
]

Kind = Literal["memory", "threads", "tasks", "fds"]
KINDS: tuple[Kind, ...] = ("memory", "threads", "tasks", "fds")

DEFAULT_CYCLES = 20
# One or two differences cannot tell a trend from a one-time step (a thread pool
# adding a worker, a cache filling late): with fewer than three measured cycles a
# clean service is called leaky a few times in a hundred; with three, never in our runs.
MIN_CYCLES = 3
DEFAULT_WARMUP = 3
DEFAULT_THRESHOLD = 1024
DEFAULT_TRACEBACK_LIMIT = 25

_PERSISTENT_SHARE = 0.75  # of the cycle-to-cycle differences that must grow
_MAX_SITES = 10
_ATTRIBUTION_CYCLES = 4  # extra cycles with deep tracebacks that find the sites of a memory leak
_MAX_OBJECTS = 10
_SETTLE_POLLS = 50  # ms to wait, at most, for daybreak's worker threads to end after a stop
_WORKER_PREFIX = "daybreak:"
_DEFAULT_TASK_NAME = re.compile(r"Task-\d+")


# -- the report ---------------------------------------------------------------------------------
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
class Sample:
    """What was alive after one cycle (cycle 0: before the first start)."""

    cycle: int
    traced_bytes: int
    threads: int
    tasks: int
    fds: int
    warmup: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"cycle": self.cycle, "traced_bytes": self.traced_bytes, "threads": self.threads,
                "tasks": self.tasks, "fds": self.fds, "warmup": self.warmup}


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
            "samples": [s.to_dict() for s in self.samples],
            "seconds_per_cycle": round(self.seconds_per_cycle, 6),
            "traceback_limit": self.traceback_limit,
            "attribution_cycles": self.attribution_cycles,
            "fds_measured": self.fds_measured,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    # -- readable forms -----------------------------------------------------------------------
    def growth(self, kind: Kind) -> str:
        """How much ``kind`` grew per cycle, and by which rule it is (or is not) a leak."""
        if kind == "memory":
            grew = round(self.growing_share * self.cycles)
            return (f"{_bytes(self.growth_bytes_per_cycle, signed=True)} per cycle "
                    f"(threshold {_bytes(self.threshold_bytes)}; grew in {grew} of "
                    f"{self.cycles} cycles)")
        if kind == "fds" and not self.fds_measured:
            return "not measured (no /proc/self/fd on this platform)"
        text = f"{self.per_cycle.get(kind, 0.0):+.2f} per cycle"
        return text + (" (every measured cycle added at least one)" if self.leaks.get(kind) else "")

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
            return out
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
            if kind == "fds" and not self.fds_measured:
                verdict = "n/a"
            lines.append(f"  {kind:<8} {status(verdict)}{' ' * (6 - len(verdict))} {self.growth(kind)}")
            lines.extend(f"             {line}" for line in self.details(kind))
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
                           skipped="0" if self.fds_measured else "1", time=f"{total_s:.3f}")
        for kind in KINDS:
            case = ET.SubElement(suite, "testcase", classname=f"daybreak.leaks.{self.name}",
                                 name=kind, time=f"{total_s / len(KINDS):.3f}")
            if kind == "fds" and not self.fds_measured:
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


# -- the checker --------------------------------------------------------------------------------
def check(
    registry: Registry,
    cycles: int = DEFAULT_CYCLES,
    warmup: int = DEFAULT_WARMUP,
    overrides: Mapping[Any, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    traceback_limit: int = DEFAULT_TRACEBACK_LIMIT,
    block_threshold: float | None = None,
    hold: float = 0.0,
    exercise: Callable[[System], Awaitable[object]] | None = None,
    on_cycle: Callable[[int, int], None] | None = None,
    **start_options: Any,
) -> LeakReport:
    """Start and stop ``registry`` ``warmup + cycles`` times in one new event loop; what grows.

    Args:
        registry: the registry to check.
        cycles: measured cycles, after the warm-up; at least ``MIN_CYCLES`` (3).
        warmup: cycles run first and not measured (caches, lazy imports, pools fill).
        overrides: passed to every ``registry.start()``.
        threshold: memory growth per cycle, in bytes, above which growth may be a leak.
        traceback_limit: frames kept per allocation by tracemalloc when the check starts
            it (an already running tracemalloc is left as it is).
        block_threshold: the loop watchdog's threshold for each start (default: off;
            it finds blocking calls, not leaks).
        hold: seconds to keep the system running in each cycle.
        exercise: ``async def exercise(system)``, run in each cycle while the system is up.
        on_cycle: called as ``on_cycle(done, total)`` after every cycle (progress).
        start_options: more keyword arguments for ``registry.start()`` (``only=`` ...).

    Raises:
        UsageError: called while an event loop is running; use ``await acheck(...)``.
        StartupError: a start failed; a note says in which cycle.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise UsageError("daybreak.leaks.check() runs its own event loop and cannot be called "
                         "from async code; write 'report = await daybreak.leaks.acheck(registry)'")
    return asyncio.run(acheck(registry, cycles, warmup, overrides, threshold,
                              traceback_limit=traceback_limit, block_threshold=block_threshold,
                              hold=hold, exercise=exercise, on_cycle=on_cycle, **start_options))


async def acheck(
    registry: Registry,
    cycles: int = DEFAULT_CYCLES,
    warmup: int = DEFAULT_WARMUP,
    overrides: Mapping[Any, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    traceback_limit: int = DEFAULT_TRACEBACK_LIMIT,
    block_threshold: float | None = None,
    hold: float = 0.0,
    exercise: Callable[[System], Awaitable[object]] | None = None,
    on_cycle: Callable[[int, int], None] | None = None,
    **start_options: Any,
) -> LeakReport:
    """:func:`check` in the running event loop, for code that is already async."""
    if not isinstance(registry, Registry):
        raise TypeError(f"daybreak.leaks: expected a daybreak.Registry, got {type(registry).__name__}; "
                        "pass the registry, not a started system")
    _need_int("cycles", cycles, MIN_CYCLES)
    _need_int("warmup", warmup, 0)
    _need_int("traceback_limit", traceback_limit, 1)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not threshold >= 0:
        raise ValueError(f"daybreak.leaks: threshold={threshold!r}; expected bytes per cycle >= 0")
    registry.plan(overrides=overrides, only=start_options.get("only"))  # declaration errors first
    run = _Run(registry, cycles, warmup, overrides, float(threshold), traceback_limit,
               block_threshold, hold, exercise, on_cycle, start_options)
    return await run.run()


def _need_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"daybreak.leaks: {name}={value!r}; expected an int >= {minimum}")


class _Run:
    """One leak check. Per-cycle numbers go to preallocated arrays: storing them allocates nothing."""

    def __init__(self, registry: Registry, cycles: int, warmup: int,
                 overrides: Mapping[Any, Any] | None, threshold: float, traceback_limit: int,
                 block_threshold: float | None, hold: float,
                 exercise: Callable[[System], Awaitable[object]] | None,
                 on_cycle: Callable[[int, int], None] | None, start_options: dict[str, Any]) -> None:
        self.registry = registry
        self.cycles = cycles
        self.warmup = warmup
        self.total = warmup + cycles
        self.overrides = overrides
        self.threshold = threshold
        self.traceback_limit = traceback_limit
        self.block_threshold = block_threshold
        self.hold = hold
        self.exercise = exercise
        self.on_cycle = on_cycle
        self.start_options = start_options
        n = self.total + 1
        self.traced = array.array("q", bytes(8 * n))
        self.threads = array.array("q", bytes(8 * n))
        self.tasks = array.array("q", bytes(8 * n))
        self.fds = array.array("q", bytes(8 * n))
        self.seconds = array.array("d", bytes(8 * n))
        # Bytes the checker itself keeps (snapshots, counters), subtracted from traced memory.
        self.own = 0
        self.ours = False  # whether the check started tracemalloc

    async def run(self) -> LeakReport:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        # Totals need one frame per allocation; 25 frames make every allocation several
        # times dearer. So the cycles run with one frame, and only when memory leaks do a
        # few more cycles run with deep tracebacks, to find the sites (_attribute).
        self.ours = not tracemalloc.is_tracing()
        if self.ours:
            tracemalloc.start(1)
        try:
            self._measure(0, loop, me)
            base = self._baseline(loop) if self.warmup == 0 else None
            for k in range(1, self.total + 1):
                t0 = time.perf_counter()
                await self._cycle(k)
                await self._settle()
                self._measure(k, loop, me)
                self.seconds[k] = time.perf_counter() - t0
                if k == self.warmup:
                    base = self._baseline(loop)
                if self.on_cycle is not None:
                    self.on_cycle(k, self.total)
            assert base is not None
            # Counted here, in a frame that existed at the baseline: the report's own
            # frames and closures must not look like objects the cycles left.
            end = _object_counts()
            return await self._report(base, end, loop, me)
        finally:
            if self.ours:
                tracemalloc.stop()

    async def _cycle(self, k: int, extra: int = 0) -> None:
        from daybreak.errors import StartupError

        try:
            async with self.registry.start(self.overrides, block_threshold=self.block_threshold,
                                           **self.start_options) as system:
                if self.exercise is not None:
                    await self.exercise(system)
                await asyncio.sleep(self.hold)
        except StartupError as exc:
            total = f"{self.total} + {extra} to find allocation sites" if extra else self.total
            exc.add_note(f"daybreak.leaks: the start failed in cycle {k} of {total}")
            raise

    async def _settle(self) -> None:
        """Let the stop's last callbacks run and daybreak's worker threads end."""
        for _ in range(3):
            await asyncio.sleep(0)
        for _ in range(_SETTLE_POLLS):
            if not any(t.name.startswith(_WORKER_PREFIX) for t in threading.enumerate()):
                break
            await asyncio.sleep(0.001)

    def _measure(self, k: int, loop: asyncio.AbstractEventLoop, me: asyncio.Task[Any] | None) -> None:
        gc.collect()
        self.traced[k] = tracemalloc.get_traced_memory()[0] - self.own
        self.threads[k] = len(sys._current_frames())
        self.tasks[k] = sum(1 for t in asyncio.all_tasks(loop) if t is not me and not t.done())
        self.fds[k] = len(open_fds())

    def _baseline(self, loop: asyncio.AbstractEventLoop) -> _Baseline:
        # What it keeps is measured between two collections, so garbage made before
        # (by _measure) or during (by what follows) is not taken for what it keeps.
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        # With a tracemalloc of its own the checker finds sites in extra cycles; with one
        # it found running, it compares a snapshot taken now with one after the last cycle.
        memory = None if self.ours else _snapshot()
        base = _Baseline(memory, Snapshot.take(loop), _object_counts())
        gc.collect()
        self.own += tracemalloc.get_traced_memory()[0] - before
        return base

    async def _attribute(self, base: _Baseline) -> tuple[tuple[LeakSite, ...], int, int]:
        """(sites, cycles run for them, traceback limit) of the memory that grew."""
        if base.memory is not None:
            return (growth_sites(base.memory, _snapshot(), self.cycles, self.threshold), 0,
                    tracemalloc.get_traceback_limit())
        tracemalloc.stop()
        tracemalloc.start(self.traceback_limit)
        extra = min(self.cycles, _ATTRIBUTION_CYCLES)
        gc.collect()
        before = _snapshot()
        for k in range(1, extra + 1):
            await self._cycle(self.total + k, extra)
            await self._settle()
        gc.collect()
        return growth_sites(before, _snapshot(), extra, self.threshold), extra, self.traceback_limit

    # -- the verdict ------------------------------------------------------------------------------
    async def _report(self, base: _Baseline, end: Counter[type], loop: asyncio.AbstractEventLoop,
                      me: asyncio.Task[Any] | None) -> LeakReport:
        w, n = self.warmup, self.cycles
        traced = [float(v) for v in self.traced[w:]]
        slope, share, median_diff = memory_trend(traced)
        leaks: dict[Kind, bool] = {
            "memory": memory_leaks(traced, self.threshold),
            "threads": counted_leaks(self.threads[w:]),
            "tasks": counted_leaks(self.tasks[w:]),
            "fds": counted_leaks(self.fds[w:]),
        }
        per_cycle = {kind: (counts[-1] - counts[w]) / n
                     for kind, counts in (("threads", self.threads), ("tasks", self.tasks),
                                          ("fds", self.fds))}
        objects: tuple[LeakedObject, ...] = ()
        if any(leaks.values()):
            objects = _object_growth(base.objects, end, n)
        threads: tuple[LeakedWorker, ...] = ()
        tasks: tuple[LeakedWorker, ...] = ()
        fds: tuple[LeakedFd, ...] = ()
        if leaks["threads"] or leaks["tasks"] or leaks["fds"]:
            found = leftovers_since(base.resources, loop=loop,
                                    exclude_tasks=[me] if me is not None else [],
                                    codes=component_codes(self.registry.components),
                                    task_component=component_of_task)
            if leaks["threads"]:
                threads = _group_workers(found.threads, n)
            if leaks["tasks"]:
                tasks = _group_workers(found.tasks, n)
            if leaks["fds"]:
                fds = _group_fds(found.fds, n)
        # Last: finding the sites may run more cycles, which add to the leaks counted above.
        sites: tuple[LeakSite, ...] = ()
        extra, limit = 0, tracemalloc.get_traceback_limit()
        if leaks["memory"]:
            sites, extra, limit = await self._attribute(base)
        samples = tuple(Sample(k, self.traced[k], self.threads[k], self.tasks[k], self.fds[k],
                               warmup=k < w)
                        for k in range(self.total + 1))
        spent = list(self.seconds[1:])
        return LeakReport(
            name=self.registry.name, cycles=n, warmup=w, threshold_bytes=self.threshold,
            growth_bytes_per_cycle=slope, growing_share=share, median_growth_bytes=median_diff,
            leaks=leaks, per_cycle=per_cycle, sites=sites, threads=threads, tasks=tasks, fds=fds,
            objects=objects, samples=samples,
            seconds_per_cycle=sum(spent) / len(spent) if spent else 0.0,
            traceback_limit=limit, fds_measured=self.fds[0] > 0, attribution_cycles=extra,
        )


@dataclass(frozen=True)
class _Baseline:
    memory: tracemalloc.Snapshot | None
    resources: Snapshot
    objects: Counter[type] = field(repr=False)


def memory_trend(traced: Sequence[float]) -> tuple[float, float, float]:
    """(Theil-Sen growth per cycle, share of cycles that grew, median growth of a cycle)."""
    if len(traced) < 2:
        return 0.0, 0.0, 0.0
    diffs = [b - a for a, b in itertools.pairwise(traced)]
    slope = theil_sen([float(i) for i in range(len(traced))], list(traced))
    return slope, growing_share(traced), statistics.median(diffs)


def memory_leaks(traced: Sequence[float], threshold: float) -> bool:
    """The memory rule: Theil-Sen growth above ``threshold``, and persistent.

    Persistent means at least 75% of the cycle-to-cycle differences grow and the
    median difference is at least half the threshold: a steady drift of a few
    bytes plus one step (a lazy import, a cache filling late) is not a leak.
    """
    slope, share, median = memory_trend(traced)
    return slope > threshold and share >= _PERSISTENT_SHARE and median >= threshold / 2


def counted_leaks(counts: Sequence[int]) -> bool:
    """The counted rule (CPython's refleak hunting): every measured cycle adds at least one."""
    return len(counts) >= 2 and all(b - a >= 1 for a, b in itertools.pairwise(counts))


# -- measuring ----------------------------------------------------------------------------------
def _snapshot() -> tracemalloc.Snapshot:
    # Not filtered: filter_traces costs a Python call per trace, and the cut of each
    # traceback (see _cut) already sets tracemalloc's and daybreak's own blocks apart.
    return tracemalloc.take_snapshot()


def _object_counts() -> Counter[type]:
    # Not Counter(map(type, ...)): every increment past 256 allocates an int, and each
    # allocation costs tracemalloc a 25-frame traceback (0.3 s for a pytest process).
    # Appending to a list per type allocates only when a list grows.
    members: dict[type, list[None]] = {}
    for obj in gc.get_objects():
        t = type(obj)
        found = members.get(t)
        if found is None:
            members[t] = found = []
        found.append(None)
    return Counter({t: len(found) for t, found in members.items()})


def _type_name(t: type) -> str:
    module = getattr(t, "__module__", None)
    return t.__qualname__ if module in (None, "builtins") else f"{module}.{t.__qualname__}"


def _object_growth(before: Counter[type], after: Counter[type], cycles: int) -> tuple[LeakedObject, ...]:
    grown = [(after[t] - before.get(t, 0), t) for t in after]
    grown = [(d, t) for d, t in grown if d >= cycles]
    grown.sort(key=lambda item: (-item[0], _type_name(item[1])))
    return tuple(LeakedObject(_type_name(t), d / cycles) for d, t in grown[:_MAX_OBJECTS])


@functools.cache
def _dispatch_lines() -> frozenset[tuple[str, int]]:
    """The lines where the event loop calls into a task or callback: the project's code starts there."""
    import asyncio.base_events
    import asyncio.events
    import asyncio.runners

    loop = asyncio.base_events.BaseEventLoop
    functions: list[Any] = [asyncio.events.Handle._run, getattr(loop, "_run_once", None),
                            loop.run_forever,
                            loop.run_until_complete, asyncio.runners.Runner.run, asyncio.runners.run]
    lines: set[tuple[str, int]] = set()
    for fn in functions:
        code = getattr(fn, "__code__", None)
        if isinstance(code, types.CodeType):
            lines.update((code.co_filename, line) for _, _, line in code.co_lines() if line is not None)
    return frozenset(lines)


def _cut(traceback: tracemalloc.Traceback) -> list[Frame]:
    """The frames of an allocation below the harness, outermost first.

    ``tracemalloc.Traceback`` iterates from the oldest frame to the most recent
    (its raw frames are most recent first), and a truncated one keeps the most
    recent frames. The cut walks from the allocation outwards and stops at the
    first frame of daybreak (the engine that called a factory, or this checker)
    or of the event loop dispatching a callback.
    """
    dispatch = _dispatch_lines()
    frames = []
    for f in reversed(traceback):
        if place_of(f.filename) is Place.DAYBREAK or (f.filename, f.lineno) in dispatch:
            break
        frames.append(Frame(f.filename, f.lineno, ""))
    frames.reverse()
    return frames


def growth_sites(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, cycles: int,
                 threshold: float) -> tuple[LeakSite, ...]:
    """What grew from ``before`` to ``after``, by allocation site in the project's code.

    Each site is the innermost project frame of the allocation, cut where
    daybreak or the event loop called in; growth seen only inside the
    standard library or daybreak is returned, marked internal, when nothing
    else grew. Per cycle, over ``cycles``; sites under ``threshold / 16`` drop.
    """
    project: dict[str, list[Any]] = {}
    internal: dict[str, list[Any]] = {}
    for stat in after.compare_to(before, "traceback"):
        if not stat.size_diff and not stat.count_diff:
            continue
        frames = _cut(stat.traceback)
        site = innermost_project_frame(frames)
        table = project
        if site is None or place_of(site.file) in (Place.STDLIB, Place.DAYBREAK):
            last = stat.traceback[-1]
            site, table = Frame(last.filename, last.lineno, ""), internal
        row = table.setdefault(site.where, [0, 0, frames])
        row[0] += stat.size_diff
        row[1] += stat.count_diff
    minimum = max(16.0, threshold / 16)

    def rank(table: dict[str, list[Any]], is_internal: bool) -> list[LeakSite]:
        found = [LeakSite(where, size / cycles, count / cycles,
                          tuple(f.where for f in frames), is_internal)
                 for where, (size, count, frames) in table.items() if size / cycles >= minimum]
        found.sort(key=lambda s: (-s.bytes_per_cycle, s.where))
        return found[:_MAX_SITES]

    return tuple(rank(project, False) or rank(internal, True))


def _normal_name(name: str) -> str:
    return re.sub(r"\d+", "N", name)


def _group_workers(items: Iterable[LeftThread | LeftTask], cycles: int) -> tuple[LeakedWorker, ...]:
    groups: dict[tuple[str, str | None], list[LeftThread | LeftTask]] = {}
    for item in items:
        name = item.name
        if isinstance(item, LeftTask) and _DEFAULT_TASK_NAME.fullmatch(name):
            name = item.coro
        groups.setdefault((_normal_name(name), item.where), []).append(item)
    out = []
    for (normal, where), members in groups.items():
        names = {m.coro if isinstance(m, LeftTask) and _DEFAULT_TASK_NAME.fullmatch(m.name) else m.name
                 for m in members}
        components = {m.component for m in members}
        out.append(LeakedWorker(names.pop() if len(names) == 1 else normal, where,
                                len(members) / cycles,
                                components.pop() if len(components) == 1 else None))
    return _steady(out, cycles)


def _fd_key(fd: LeftFd) -> str:
    if fd.kind == "file":
        return fd.detail
    detail = re.sub(r"\[\d+\]", "[*]", fd.detail)  # socket:[inode], pipe:[inode]
    return re.sub(r"^(\w+ \S+):\d+", r"\1:*", detail)  # the local port of an inet socket


def _group_fds(items: Iterable[LeftFd], cycles: int) -> tuple[LeakedFd, ...]:
    groups: dict[tuple[str, str], int] = {}
    for fd in items:
        key = (fd.kind, _fd_key(fd))
        groups[key] = groups.get(key, 0) + 1
    out = [LeakedFd(kind, detail, count / cycles) for (kind, detail), count in groups.items()]
    return _steady(out, cycles)


def _steady(items: list[Any], cycles: int) -> tuple[Any, ...]:
    """The groups that grew in at least half the cycles; all of them if none did."""
    items.sort(key=lambda i: (-i.per_cycle, str(getattr(i, "name", getattr(i, "detail", "")))))
    steady = [i for i in items if i.per_cycle * cycles >= max(1, math.ceil(cycles / 2))]
    return tuple(steady or items)


def _bytes(n: float, signed: bool = False) -> str:
    sign = "+" if signed and n > 0 else ""
    for unit, size in (("MiB", 1024.0 ** 2), ("KiB", 1024.0)):
        if abs(n) >= size:
            return f"{sign}{n / size:.1f} {unit}"
    return f"{sign}{n:.0f} B"


# -- command line -------------------------------------------------------------------------------
def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*(b|k|kb|kib|m|mb|mib)?\s*", re.IGNORECASE)


def parse_size(text: str) -> float:
    """Bytes from ``"1024"``, ``"64KiB"``, ``"1k"``, ``"2MiB"`` (k and M are binary: 1024)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size in bytes such as 1024 or 64KiB, got {text!r}")
    unit = (match[2] or "b").lower()
    return float(match[1]) * (1024.0 ** 2 if unit.startswith("m") else 1024.0 if unit.startswith("k")
                              else 1.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from daybreak._target import TARGET_HELP

    parser.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    parser.add_argument("--cycles", type=_count(MIN_CYCLES), default=DEFAULT_CYCLES, metavar="N",
                        help=f"measured start/stop cycles after the warm-up (default {DEFAULT_CYCLES})")
    parser.add_argument("--warmup", type=_count(0), default=DEFAULT_WARMUP, metavar="N",
                        help=f"cycles run first and not measured (default {DEFAULT_WARMUP})")
    parser.add_argument("--threshold", type=parse_size, default=float(DEFAULT_THRESHOLD),
                        metavar="BYTES",
                        help="memory growth per cycle above which it may be a leak (default 1KiB)")
    parser.add_argument("--traceback-limit", type=_count(1), default=DEFAULT_TRACEBACK_LIMIT,
                        metavar="N", help="frames kept per allocation (default 25)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON, nothing else")
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML for CI systems")


def run(args: argparse.Namespace) -> int:
    """``daybreak leaks``: 0 clean, 1 leak (or a failed start), 2 target error."""
    from daybreak._console import Style
    from daybreak._run import run_cancellable
    from daybreak._target import load_target
    from daybreak.errors import StartupError

    registry = load_target(args.target)
    registry.plan()
    live = sys.stderr.isatty() and not args.json

    def progress(done: int, total: int) -> None:
        sys.stderr.write(f"\r\033[Kdaybreak leaks: cycle {done}/{total}")
        if done == total:
            sys.stderr.write("\r\033[K")
        sys.stderr.flush()

    try:
        report = run_cancellable(acheck(registry, args.cycles, args.warmup,
                                        threshold=args.threshold,
                                        traceback_limit=args.traceback_limit,
                                        on_cycle=progress if live else None))
    except StartupError as exc:
        notes = "; ".join(getattr(exc, "__notes__", ()))
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"daybreak leaks: {first}" + (f" ({notes})" if notes else ""), file=sys.stderr)
        return 1
    if args.junit:
        report.write_junit(args.junit)
    if args.json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        print(report.to_text(Style(sys.stdout)))
    return 1 if report.leaked else 0
