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
- **Native memory** is the C allocator's figure (glibc ``mallinfo2``, else the
  RSS) minus traced memory, with the memory rule and its own threshold
  (``native_threshold``, 256 KiB): an ``ssl.SSLContext`` kept per start.
- **Hooks** (atexit callbacks, logging handlers, signal handlers and
  ``sys``/``threading`` exception hooks replaced) follow the counted rule: one
  per cycle is a leak whatever its size.
- **CPython's type attribute cache** is emptied before each measure: it keeps
  names it has looked up, a bounded drift that looked like a leak (aio-pika).
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

from daybreak.leaks._cli import add_arguments, parse_size, run
from daybreak.leaks._cycles import acheck, check
from daybreak.leaks._policy import Allow, Allowed, Policy, failed_start, load_policy
from daybreak.leaks._report import (
    HOOK_KINDS,
    KINDS,
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
from daybreak.leaks._rules import DEFAULT_CYCLES as DEFAULT_CYCLES  # module attributes, not in __all__
from daybreak.leaks._rules import DEFAULT_THRESHOLD as DEFAULT_THRESHOLD
from daybreak.leaks._rules import DEFAULT_TRACEBACK_LIMIT as DEFAULT_TRACEBACK_LIMIT
from daybreak.leaks._rules import DEFAULT_WARMUP as DEFAULT_WARMUP
from daybreak.leaks._rules import MIN_CYCLES, counted_leaks, memory_leaks, memory_trend
from daybreak.leaks._sites import growth_sites

__all__ = [
    "HOOK_KINDS",
    "KINDS",
    "MIN_CYCLES",
    "Allow",
    "Allowed",
    "HookKind",
    "Kind",
    "LeakReport",
    "LeakSite",
    "LeakedFd",
    "LeakedHook",
    "LeakedObject",
    "LeakedUnclosed",
    "LeakedWorker",
    "Policy",
    "Sample",
    "acheck",
    "add_arguments",
    "check",
    "counted_leaks",
    "failed_start",
    "growth_sites",
    "load_policy",
    "memory_leaks",
    "memory_trend",
    "parse_size",
    "run",
]
