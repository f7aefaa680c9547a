"""Allocation sites: tracemalloc snapshots compared by traceback, cut where the project's code was called."""

from __future__ import annotations

import functools
import os
import tracemalloc
import types
from typing import Any

from daybreak.diagnostics._places import Place, place_of
from daybreak.diagnostics.frames import Frame, innermost_project_frame
from daybreak.leaks._report import LeakSite

_MAX_SITES = 10


def take_snapshot() -> tracemalloc.Snapshot:
    # Not filtered: filter_traces costs a Python call per trace, and the cut of each
    # traceback (see cut) already sets tracemalloc's and daybreak's own blocks apart.
    return tracemalloc.take_snapshot()


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


def cut(traceback: tracemalloc.Traceback) -> list[Frame]:
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
        frames = cut(stat.traceback)
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


def library_of(sites: tuple[LeakSite, ...]) -> str | None:
    """The installed libraries (distribution names) that every growing site is in; None if any is not.

    A leak there is the library's (its cache, or its own leak), not a line of the
    project's: the report names the library rather than presenting its line as the user's.
    """
    names: list[str] = []
    for site in sites:
        file = site.where.rpartition(":")[0]
        if site.internal or place_of(file) is not Place.LIBRARY:
            return None
        parts = os.path.normpath(file).split(os.sep)
        below = [i for i, part in enumerate(parts) if part in ("site-packages", "dist-packages")]
        if not below or below[-1] + 1 >= len(parts):
            return None
        top = parts[below[-1] + 1].removesuffix(".py")
        name = _distributions().get(top, [top])[0]
        if name not in names:
            names.append(name)
    return ", ".join(names) if names else None


@functools.cache
def _distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return dict(packages_distributions())
