"""The checker: ``check``/``acheck`` and the loop of start/stop cycles that measures after each."""

from __future__ import annotations

import array
import asyncio
import contextlib
import gc
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daybreak.diagnostics._fds import open_fds
from daybreak.diagnostics.leftovers import Snapshot, leftovers_since
from daybreak.errors import UsageError
from daybreak.leaks._groups import group_fds, group_workers, object_counts, object_growth
from daybreak.leaks._hooks import Hooks
from daybreak.leaks._native import DEFAULT_NATIVE_THRESHOLD, native_bytes, native_source
from daybreak.leaks._once import kept_once
from daybreak.leaks._policy import Allow, apply, wants_sites
from daybreak.leaks._report import (
    HOOK_KINDS,
    HookKind,
    Kind,
    LeakedFd,
    LeakedHook,
    LeakedObject,
    LeakedUnclosed,
    LeakedWorker,
    LeakReport,
    LeakSite,
    Sample,
)
from daybreak.leaks._rules import (
    DEFAULT_CYCLES,
    DEFAULT_THRESHOLD,
    DEFAULT_TRACEBACK_LIMIT,
    DEFAULT_WARMUP,
    MIN_CYCLES,
    counted_leaks,
    memory_leaks,
    memory_trend,
)
from daybreak.leaks._sites import growth_sites, library_of, take_snapshot
from daybreak.leaks._unclosed import Unclosed
from daybreak.registry import Registry
from daybreak.system import component_codes, component_of_task

if TYPE_CHECKING:
    from daybreak.system import System

_ATTRIBUTION_CYCLES = 4  # extra cycles with deep tracebacks that find the sites of a memory leak
_SETTLE_POLLS = 50  # ms to wait, at most, for daybreak's worker threads to end after a stop
_WORKER_PREFIX = "daybreak:"
# CPython's type attribute cache (4096 entries) keeps a reference to the name of each
# entry. A class whose version tag changes gets new entries while the stale ones keep
# their names, so a library that builds names per lookup (pamqp under aio-pika:
# getattr(cls, "_" + attr)) leaves a few more strings alive after every cycle until the
# cache is full: a bounded drift that looked like a leak in every run. Emptied before
# each measure, the cache weighs the same every time.
_clear_type_cache: Callable[[], None] = getattr(sys, "_clear_internal_caches", None) or sys._clear_type_cache


def _collect() -> None:
    gc.collect()
    _clear_type_cache()


def check(
    registry: Registry,
    cycles: int = DEFAULT_CYCLES,
    warmup: int = DEFAULT_WARMUP,
    overrides: Mapping[Any, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    native_threshold: float = DEFAULT_NATIVE_THRESHOLD,
    traceback_limit: int = DEFAULT_TRACEBACK_LIMIT,
    block_threshold: float | None = None,
    hold: float = 0.0,
    exercise: Callable[[System], Awaitable[object]] | None = None,
    on_cycle: Callable[[int, int], None] | None = None,
    allow: Iterable[Allow] = (),
    **start_options: Any,
) -> LeakReport:
    """Start and stop ``registry`` ``warmup + cycles`` times in one new event loop; what grows.

    Args:
        registry: the registry to check.
        cycles: measured cycles, after the warm-up; at least ``MIN_CYCLES`` (3).
        warmup: cycles run first and not measured (caches, lazy imports, pools fill).
        overrides: passed to every ``registry.start()``.
        threshold: memory growth per cycle, in bytes, above which growth may be a leak.
        native_threshold: the same for native memory (the allocator's figure beside
            tracemalloc's), default 256 KiB.
        traceback_limit: frames kept per allocation by tracemalloc when the check starts
            it (an already running tracemalloc is left as it is).
        block_threshold: the loop watchdog's threshold for each start (default: off;
            it finds blocking calls, not leaks).
        hold: seconds to keep the system running in each cycle.
        exercise: ``async def exercise(system)``, run in each cycle while the system is up.
        on_cycle: called as ``on_cycle(done, total)`` after every cycle (progress).
        allow: growth that is known and accepted (:class:`Allow` ``(site, reason)``): listed
            under ``allowed`` with its reason, left out of the verdict.
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
                              native_threshold=native_threshold, traceback_limit=traceback_limit,
                              block_threshold=block_threshold, hold=hold, exercise=exercise,
                              on_cycle=on_cycle, allow=allow, **start_options))


async def acheck(
    registry: Registry,
    cycles: int = DEFAULT_CYCLES,
    warmup: int = DEFAULT_WARMUP,
    overrides: Mapping[Any, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    native_threshold: float = DEFAULT_NATIVE_THRESHOLD,
    traceback_limit: int = DEFAULT_TRACEBACK_LIMIT,
    block_threshold: float | None = None,
    hold: float = 0.0,
    exercise: Callable[[System], Awaitable[object]] | None = None,
    on_cycle: Callable[[int, int], None] | None = None,
    allow: Iterable[Allow] = (),
    **start_options: Any,
) -> LeakReport:
    """:func:`check` in the running event loop, for code that is already async."""
    if not isinstance(registry, Registry):
        raise TypeError(f"daybreak.leaks: expected a daybreak.Registry, got {type(registry).__name__}; "
                        "pass the registry, not a started system")
    _need_int("cycles", cycles, MIN_CYCLES)
    _need_int("warmup", warmup, 0)
    _need_int("traceback_limit", traceback_limit, 1)
    for name, value in (("threshold", threshold), ("native_threshold", native_threshold)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"daybreak.leaks: {name}={value!r}; expected bytes per cycle >= 0")
    registry.plan(overrides=overrides, only=start_options.get("only"))  # declaration errors first
    run = _Run(registry, cycles, warmup, overrides, float(threshold), traceback_limit,
               block_threshold, hold, exercise, on_cycle, start_options)
    run.native_threshold = float(native_threshold)
    return apply(await run.run(), allow)


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
        self.native = array.array("q", bytes(8 * n))
        self.hooks = {kind: array.array("q", bytes(8 * n)) for kind in HOOK_KINDS}
        self.native_threshold = float(DEFAULT_NATIVE_THRESHOLD)
        self.hook_counter: Hooks | None = None
        self.unclosed: Unclosed | None = None
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
        keeper = contextlib.AsyncExitStack()
        try:
            self.overrides = await keeper.enter_async_context(
                kept_once(self.registry, self.overrides, self.total, self.start_options))
            with Unclosed(component_codes(self.registry.components)) as self.unclosed, \
                    Hooks(ignore=self.unclosed.handlers) as self.hook_counter:
                return await self._cycles(loop, me)
        finally:
            await keeper.aclose()  # the once=True steps, kept for every cycle
            if self.ours:
                tracemalloc.stop()

    async def _cycles(self, loop: asyncio.AbstractEventLoop, me: asyncio.Task[Any] | None) -> LeakReport:
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
        end = object_counts()
        return await self._report(base, end, loop, me)

    async def _cycle(self, k: int, extra: int = 0) -> None:
        from daybreak.errors import StartupError

        if self.unclosed is not None:
            self.unclosed.next_cycle(k)
        try:
            async with self.registry.start(self.overrides, block_threshold=self.block_threshold,
                                           **self.start_options) as system:
                if self.exercise is not None:
                    await self.exercise(system)
                await asyncio.sleep(self.hold)
                if self.unclosed is not None:
                    self.unclosed.watch_executors()
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
        _collect()
        self.traced[k] = tracemalloc.get_traced_memory()[0] - self.own
        self.threads[k] = len(sys._current_frames())
        self.tasks[k] = sum(1 for t in asyncio.all_tasks(loop) if t is not me and not t.done())
        self.fds[k] = len(open_fds())
        self.native[k] = native_bytes()
        assert self.hook_counter is not None
        for kind, count in zip(HOOK_KINDS, self.hook_counter.counts(), strict=True):
            self.hooks[kind][k] = count

    def _baseline(self, loop: asyncio.AbstractEventLoop) -> _Baseline:
        # What it keeps is measured between two collections, so garbage made before
        # (by _measure) or during (by what follows) is not taken for what it keeps.
        _collect()
        before = tracemalloc.get_traced_memory()[0]
        # With a tracemalloc of its own the checker finds sites in extra cycles; with one
        # it found running, it compares a snapshot taken now with one after the last cycle.
        memory = None if self.ours else take_snapshot()
        base = _Baseline(memory, Snapshot.take(loop), object_counts())
        _collect()
        self.own += tracemalloc.get_traced_memory()[0] - before
        return base

    async def _attribute(self, base: _Baseline) -> tuple[tuple[LeakSite, ...], int, int]:
        """(sites, cycles run for them, traceback limit) of the memory that grew."""
        if base.memory is not None:
            return (growth_sites(base.memory, take_snapshot(), self.cycles, self.threshold), 0,
                    tracemalloc.get_traceback_limit())
        tracemalloc.stop()
        tracemalloc.start(self.traceback_limit)
        extra = min(self.cycles, _ATTRIBUTION_CYCLES)
        _collect()
        before = take_snapshot()
        for k in range(1, extra + 1):
            await self._cycle(self.total + k, extra)
            await self._settle()
        _collect()
        return growth_sites(before, take_snapshot(), extra, self.threshold), extra, self.traceback_limit

    # -- the verdict ------------------------------------------------------------------------------
    async def _report(self, base: _Baseline, end: Counter[type], loop: asyncio.AbstractEventLoop,
                      me: asyncio.Task[Any] | None) -> LeakReport:
        w, n = self.warmup, self.cycles
        traced = [float(v) for v in self.traced[w:]]
        slope, share, median_diff = memory_trend(traced)
        source = native_source()
        # What the allocator holds beyond what tracemalloc traces (large Python objects are in both).
        native = [float(self.native[k] - self.traced[k]) for k in range(w, self.total + 1)]
        native_slope = memory_trend(native)[0] if source != "none" else 0.0
        hook_leaks: tuple[HookKind, ...] = tuple(k for k in HOOK_KINDS if counted_leaks(self.hooks[k][w:]))
        leaks: dict[Kind, bool] = {
            "memory": memory_leaks(traced, self.threshold),
            "native": source != "none" and memory_leaks(native, self.native_threshold),
            "threads": counted_leaks(self.threads[w:]),
            "tasks": counted_leaks(self.tasks[w:]),
            "fds": counted_leaks(self.fds[w:]),
            "hooks": bool(hook_leaks),
        }
        assert self.unclosed is not None
        unclosed_counts = self.unclosed.counts(range(self.total + 1))
        # "Most cycles": the collector's timing moves a few of them to the next cycle.
        leaks["unclosed"] = 2 * sum(1 for c in unclosed_counts[w + 1:] if c) > n
        per_cycle = {kind: (counts[-1] - counts[w]) / n
                     for kind, counts in (("threads", self.threads), ("tasks", self.tasks),
                                          ("fds", self.fds))}
        hook_rates = {k: (self.hooks[k][-1] - self.hooks[k][w]) / n for k in HOOK_KINDS}
        per_cycle["hooks"] = sum(hook_rates.values())
        per_cycle["unclosed"] = sum(unclosed_counts[w + 1:]) / n
        hooks: tuple[LeakedHook, ...] = ()
        if hook_leaks and self.hook_counter is not None:
            hooks = self.hook_counter.found(hook_leaks, hook_rates)
        objects: tuple[LeakedObject, ...] = ()
        if any(leaks.values()):
            objects = object_growth(base.objects, end, n)
        threads: tuple[LeakedWorker, ...] = ()
        tasks: tuple[LeakedWorker, ...] = ()
        fds: tuple[LeakedFd, ...] = ()
        if leaks["threads"] or leaks["tasks"] or leaks["fds"]:
            found = leftovers_since(base.resources, loop=loop,
                                    exclude_tasks=[me] if me is not None else [],
                                    codes=component_codes(self.registry.components),
                                    task_component=component_of_task)
            if leaks["threads"]:
                threads = group_workers(found.threads, n)
            if leaks["tasks"]:
                tasks = group_workers(found.tasks, n)
            if leaks["fds"]:
                fds = group_fds(found.fds, n)
        # Last: finding the sites may run more cycles, which add to the leaks counted above.
        sites: tuple[LeakSite, ...] = ()
        unclosed: tuple[LeakedUnclosed, ...] = ()
        extra, limit = 0, tracemalloc.get_traceback_limit()
        wants = wants_sites(slope, share, median_diff, self.threshold)  # the hint names it
        if leaks["memory"] or wants or leaks["unclosed"]:
            found_sites, extra, limit = await self._attribute(base)
            if leaks["memory"]:
                sites = found_sites
            elif wants:  # asyncio's own drift below the threshold is nobody's to fix
                sites = tuple(s for s in found_sites if not s.internal)
        if leaks["unclosed"]:
            # The extra cycles traced deep enough to name the project's line; else the measured ones.
            unclosed = self.unclosed.groups(self.total + 1, self.total + extra, extra) if extra else ()
            unclosed = unclosed or self.unclosed.groups(w + 1, self.total, n)
        samples = tuple(Sample(k, self.traced[k], self.threads[k], self.tasks[k], self.fds[k],
                               warmup=k < w, native_bytes=self.native[k],
                               hooks=sum(self.hooks[h][k] for h in HOOK_KINDS),
                               unclosed=unclosed_counts[k])
                        for k in range(self.total + 1))
        spent = list(self.seconds[1:])
        return LeakReport(
            name=self.registry.name, cycles=n, warmup=w, threshold_bytes=self.threshold,
            growth_bytes_per_cycle=slope, growing_share=share, median_growth_bytes=median_diff,
            leaks=leaks, per_cycle=per_cycle, sites=sites, threads=threads, tasks=tasks, fds=fds,
            objects=objects, samples=samples,
            seconds_per_cycle=sum(spent) / len(spent) if spent else 0.0,
            traceback_limit=limit, fds_measured=self.fds[0] > 0, attribution_cycles=extra,
            native_growth_bytes_per_cycle=native_slope, native_threshold_bytes=self.native_threshold,
            native_source=source, hooks=hooks, unclosed=unclosed, library=library_of(sites),
        )


@dataclass(frozen=True)
class _Baseline:
    memory: tracemalloc.Snapshot | None
    resources: Snapshot
    objects: Counter[type] = field(repr=False)
