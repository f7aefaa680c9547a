"""What the cycles left, grouped: gc-tracked objects by type, threads and tasks by name and place, fds by kind."""

from __future__ import annotations

import gc
import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from daybreak.diagnostics.leftovers import LeftFd, LeftTask, LeftThread
from daybreak.leaks._report import LeakedFd, LeakedObject, LeakedWorker

_MAX_OBJECTS = 10
_DEFAULT_TASK_NAME = re.compile(r"Task-\d+")


def object_counts() -> Counter[type]:
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


def object_growth(before: Counter[type], after: Counter[type], cycles: int) -> tuple[LeakedObject, ...]:
    grown = [(after[t] - before.get(t, 0), t) for t in after]
    grown = [(d, t) for d, t in grown if d >= cycles]
    grown.sort(key=lambda item: (-item[0], _type_name(item[1])))
    return tuple(LeakedObject(_type_name(t), d / cycles) for d, t in grown[:_MAX_OBJECTS])


def _normal_name(name: str) -> str:
    return re.sub(r"\d+", "N", name)


def group_workers(items: Iterable[LeftThread | LeftTask], cycles: int) -> tuple[LeakedWorker, ...]:
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


def group_fds(items: Iterable[LeftFd], cycles: int) -> tuple[LeakedFd, ...]:
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
