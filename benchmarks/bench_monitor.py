"""The memory monitor's CPU cost: microseconds of CPU per sample, and % of one core at 1 s.

Method. An event loop that has nothing else to do runs for ``--seconds`` in
each set-up below, the set-ups alternated ``--repeat`` times after one
warm-up round (the median is kept):

- ``idle``: the bare loop (it sleeps in epoll: next to no CPU);
- ``ticker``: a task that wakes up every ``--interval`` and does nothing, so
  that the loop's own wake-ups are counted apart;
- ``monitor``: :class:`daybreak.monitor.MemoryMonitor` at ``--interval``.

The interval is 0.01 s by default, 100 times the default rate, to amplify the
cost above the noise; the window (300 samples) is full before measuring, as in
a service that has run for a while. CPU is ``time.process_time()`` (user +
system time of the process). One sample costs ``(monitor - idle) / samples``
(its loop wake-up included), and at the default 1 s interval the monitor
takes that many microseconds per second: ``us / 1e6 * 100`` % of one core.
The target is < 1%.

Two RSS series: the process's real RSS (steady: the trend is skipped, the
common case), and a series rising just below the threshold (the Theil–Sen
trend is computed at every check of the window, every 10 samples: the
dearest case that does not warn).

Then ``top_sites=5``, the same with tracemalloc on (and a ticker with
tracemalloc on to compare with). The monitor's own cost stays small, but
tracemalloc (25 frames per allocation) slows *every* allocation of the
process: an allocation-heavy workload (JSON round trips of small dicts) is
timed with and without it. Last, one warning over a heap of some 200,000
live blocks: how long its sites take, how late the loop answered meanwhile,
and what the same grouping costs when traced on the loop (``growing_sites()``).

Run: python benchmarks/bench_monitor.py [--seconds 1.5] [--repeat 3] [--interval 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import logging
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daybreak.monitor import MemoryMonitor, rss_bytes

WINDOW = 300
THRESHOLD = 1024 * 1024  # bytes per minute, the default


@dataclass
class Run:
    cpu_s: float
    wall_s: float
    samples: int


def _prefill(monitor: MemoryMonitor, reader: Callable[[float], int]) -> None:
    """A full window, as after ``WINDOW`` samples at the monitor's interval."""
    now = time.monotonic()
    for i in range(WINDOW, 0, -1):
        t = now - i * monitor.interval
        monitor.samples.append((t, reader(t)))


async def _measure(kind: str, seconds: float, interval: float, series: str, top_sites: int) -> Run:
    monitor: MemoryMonitor | None = None
    ticker: asyncio.Task[None] | None = None
    traced = top_sites > 0
    if traced and kind == "ticker":
        tracemalloc.start(25)  # what top_sites does to the rest of the process
    if kind == "ticker":
        wakeups = 0

        async def tick() -> None:
            nonlocal wakeups
            while True:
                await asyncio.sleep(interval)
                wakeups += 1

        ticker = asyncio.get_running_loop().create_task(tick())
    elif kind == "monitor":
        base = rss_bytes()
        reader: Callable[[float], int]
        if series == "rising":
            rate = THRESHOLD / 60 / 1.5  # bytes/s: 2/3 of the threshold, above its 1/2
            t0 = time.monotonic()

            def reader(t: float) -> int:
                return base + int((t - t0) * rate)
        else:
            def reader(t: float) -> int:
                return rss_bytes()
        monitor = MemoryMonitor(interval=interval, window=WINDOW, threshold=THRESHOLD, top_sites=top_sites,
                                read_rss=lambda: reader(time.monotonic()))
        _prefill(monitor, reader)
        monitor.start()
    await asyncio.sleep(interval * 5)  # settle
    ticks = monitor._ticks if monitor else 0
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    samples = (monitor._ticks - ticks) if monitor else 0
    if monitor is not None:
        assert monitor.warnings == 0, monitor.last_warning
        await monitor.stop()
    if ticker is not None:
        ticker.cancel()
        await asyncio.wait([ticker])
    if traced and kind == "ticker":
        tracemalloc.stop()
    return Run(cpu, wall, samples)


def _median_runs(runs: list[Run]) -> Run:
    return Run(statistics.median(r.cpu_s for r in runs), statistics.median(r.wall_s for r in runs),
               int(statistics.median(r.samples for r in runs)))


def measure(args: argparse.Namespace) -> dict[str, Run]:
    setups: dict[str, tuple[str, str, int]] = {
        "idle": ("idle", "real", 0),
        "ticker": ("ticker", "real", 0),
        "steady": ("monitor", "real", 0),
        "rising": ("monitor", "rising", 0),
        "ticker_traced": ("ticker", "real", 5),
        "sites": ("monitor", "real", 5),
        "sites_rising": ("monitor", "rising", 5),
    }
    runs: dict[str, list[Run]] = {name: [] for name in setups}
    for kind, series, top_sites in setups.values():  # warm-up: imports, tracemalloc's tables
        asyncio.run(_measure(kind, 0.2, args.interval, series, top_sites))
    for _ in range(args.repeat):
        for name, (kind, series, top_sites) in setups.items():
            runs[name].append(asyncio.run(_measure(kind, args.seconds, args.interval, series, top_sites)))
    return {name: _median_runs(r) for name, r in runs.items()}


# -- tracemalloc's cost on the rest of the process -------------------------------------------------
def _workload(rounds: int) -> list[Any]:
    kept = []
    for i in range(rounds):
        payload = {"id": i, "room": f"room-{i % 17}", "tags": [str(j) for j in range(8)],
                   "user": {"name": "ada", "roles": ["a", "b"]}, "text": "x" * 64}
        kept.append(json.loads(json.dumps(payload)))
        if len(kept) > 2000:
            kept.clear()
    return kept


def _time_workload(rounds: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        _workload(rounds)
        best = min(best, time.process_time() - t0)
    return best


def tracemalloc_cost(rounds: int, repeat: int) -> dict[str, float]:
    """The workload with and without tracemalloc (25 frames), and tracemalloc's own memory."""
    was_tracing = tracemalloc.is_tracing()
    if was_tracing:
        tracemalloc.stop()
    try:
        plain = _time_workload(rounds, repeat)
        tracemalloc.start(5)  # MemoryMonitor(top_sites=5, trace_frames=5)
        shallow = _time_workload(rounds, min(repeat, 2))
        tracemalloc.stop()
        tracemalloc.start(25)  # as MemoryMonitor(top_sites=5) starts it
        traced = _time_workload(rounds, min(repeat, 2))
        kept = _workload(2000)
        blocks = len(tracemalloc.take_snapshot().traces)
        overhead = tracemalloc.get_tracemalloc_memory()
        del kept
    finally:
        tracemalloc.stop()
        if was_tracing:
            tracemalloc.start()
    return {"plain": plain, "shallow": shallow, "traced": traced, "blocks": blocks, "overhead": overhead}


async def _attribution(heap_rounds: int) -> dict[str, Any]:
    """One warning with top_sites=5 over a heap of the workload's objects.

    The monitor compares the snapshots in its thread; a ticker every 2 ms
    measures how late the loop answers meanwhile. The same comparison is then
    timed on the loop, the stall it would cause there.
    """
    tracing_before = tracemalloc.is_tracing()
    rising = itertools.count(0, 10_000_000)  # triggers the warning; the sites are real
    monitor = MemoryMonitor(interval=0.005, window=10, min_samples=5, threshold=1024, top_sites=5,
                            read_rss=lambda: next(rising))
    monitor.start()
    kept = [_workload(2000) for _ in range(heap_rounds // 2000)]  # growth the warning must name
    worst = 0.0
    t0 = time.perf_counter()
    while not monitor.sites:
        before = time.perf_counter()
        await asyncio.sleep(0.002)
        worst = max(worst, time.perf_counter() - before - 0.002)
    threaded = time.perf_counter() - t0
    more = [_workload(2000) for _ in range(heap_rounds // 2000)]
    t0 = time.perf_counter()
    monitor.growing_sites()  # the same comparison, on the loop
    on_loop = time.perf_counter() - t0
    blocks = len(tracemalloc.take_snapshot().traces)
    sites = monitor.sites
    await monitor.stop()
    assert tracemalloc.is_tracing() == tracing_before
    del kept, more
    return {"stall": worst, "threaded": threaded, "on_loop": on_loop, "blocks": blocks, "sites": sites}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.5, help="seconds per run (default 1.5)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per set-up; the median is kept")
    parser.add_argument("--interval", type=float, default=0.01,
                        help="sampling interval while measuring (default 0.01 s: 100x the default rate)")
    parser.add_argument("--rounds", type=int, default=5_000, help="JSON round trips of the workload")
    parser.add_argument("--heap", type=int, default=10_000,
                        help="dicts the warning's heap grows by (default 10,000: about 200,000 blocks)")
    args = parser.parse_args(argv)
    quiet = logging.getLogger("daybreak.monitor")  # the synthetic leaks warn, by design
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False

    print(f"daybreak memory monitor, Python {sys.version.split()[0]}, {sys.platform}; window {WINDOW} "
          f"samples, {args.seconds:g} s x {args.repeat} runs per set-up at a {args.interval:g} s interval")
    m = measure(args)
    idle, ticker = m["idle"], m["ticker"]
    print(f"\n{'set-up':<46}{'CPU ms/s':>10}{'samples':>9}{'us/sample':>11}{'% core @1s':>12}{'vs ticker':>11}")
    print(f"{'idle loop (no monitor)':<46}{idle.cpu_s / idle.wall_s * 1e3:>10.2f}")

    def row(label: str, r: Run, base: Run, per_tick: float | None = None) -> float:
        per_sample = per_tick if per_tick is not None else (r.cpu_s - idle.cpu_s) / max(r.samples, 1) * 1e6
        print(f"{label:<46}{r.cpu_s / r.wall_s * 1e3:>10.2f}{r.samples or '-':>9}{per_sample:>11.1f}"
              f"{per_sample / 1e4:>11.4f}%{r.cpu_s / base.cpu_s:>10.2f}x")
        return per_sample

    wakeups = args.seconds / args.interval
    row("loop + ticker (a wake-up, no monitor)", ticker, ticker, (ticker.cpu_s - idle.cpu_s) / wakeups * 1e6)
    steady = row("monitor, steady RSS (trend skipped)", m["steady"], ticker)
    rising = row("monitor, RSS rising (trend at every check)", m["rising"], ticker)
    traced_tick = m["ticker_traced"]
    row("loop + ticker, tracemalloc on", traced_tick, traced_tick, (traced_tick.cpu_s - idle.cpu_s) / wakeups * 1e6)
    sites = row("monitor, top_sites=5, steady RSS", m["sites"], traced_tick)
    sites_rising = row("monitor, top_sites=5, RSS rising", m["sites_rising"], traced_tick)
    worst = max(steady, rising)
    print(f"\nat the default 1 s interval, top_sites=0: {steady:.0f} us (steady) to {rising:.0f} us (rising) of "
          f"CPU per second = {worst / 1e4:.3f}% of one core at most (target < 1%: {1e4 / worst:,.0f}x below)")
    print(f"with top_sites=5: {sites:.0f} to {sites_rising:.0f} us per sample = "
          f"{max(sites, sites_rising) / 1e4:.3f}% of one core at most for the monitor itself; "
          "tracemalloc's cost is elsewhere: it slows the whole process (below)")
    print("(us/sample counts the loop's wake-up for the sample, CPU over the idle loop; 'vs ticker' is CPU at "
          f"{args.interval:g} s over a loop that only wakes up as often, tracing alike)")

    t = tracemalloc_cost(args.rounds, args.repeat)
    print(f"\ntop_sites=5 turns tracemalloc on (25 frames) for the whole process; "
          f"{args.rounds:,} JSON round trips of small dicts:")
    print(f"  without tracemalloc              {t['plain'] * 1e3:8.1f} ms CPU")
    print(f"  with tracemalloc                 {t['traced'] * 1e3:8.1f} ms CPU   "
          f"({t['traced'] / t['plain']:.1f}x: every allocation pays, not just the monitor)")
    print(f"  with trace_frames=5              {t['shallow'] * 1e3:8.1f} ms CPU   "
          f"({t['shallow'] / t['plain']:.1f}x)")
    print(f"  tracemalloc's own memory         {t['overhead'] / 2**20:8.1f} MiB for {int(t['blocks']):,} "
          "live blocks")
    a = asyncio.run(_attribution(args.heap))
    print(f"  the sites of one warning over {int(a['blocks']):,} live blocks (at most once per window):")
    print(f"    snapshot, then grouped untraced in the monitor's thread: logged {a['threaded'] * 1e3:.0f} ms "
          f"after the sample; the loop answered within {a['stall'] * 1e3:.0f} ms meanwhile")
    print(f"    the same grouping traced, on the loop (as growing_sites() does): {a['on_loop'] * 1e3:.0f} ms "
          "of stall")
    top = a["sites"][0] if a["sites"] else None
    if top:
        print(f"    top site: {top['where']} +{top['bytes'] / 2**20:.1f} MiB in {top['count']:,} blocks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
