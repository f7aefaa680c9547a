"""The memory monitor's CPU cost: microseconds of CPU per sample, and % of one core at 1 s.

Method. An event loop that has nothing else to do runs for ``--seconds``, in
three set-ups, alternated ``--repeat`` times (the median is kept):

- ``idle``: the bare loop (it sleeps in epoll: next to no CPU);
- ``ticker``: a task that wakes up every ``--interval`` and does nothing, so
  that the loop's own wake-ups are counted apart;
- ``monitor``: :class:`daybreak.monitor.MemoryMonitor` at ``--interval``.

The interval is 0.01 s by default, 100 times the default rate, to amplify the
cost above the noise; the window (300 samples) is full before measuring, as in
a service that has run for a while. CPU is ``time.process_time()`` (user +
system time of the process). One sample costs ``(monitor - idle) / samples``
(its wake-up included), and at the default 1 s interval the monitor takes that
many microseconds per second: ``us / 1e6 * 100`` % of one core. The target is
< 1%.

Two RSS series: the process's real RSS (steady: the trend check is skipped,
the common case), and a series rising just below the threshold (the
Theil–Sen trend is computed at every sample: the dearest case that does not
warn). Then ``top_sites=5``: sampling costs about the same, but tracemalloc
(25 frames per allocation) slows *every* allocation of the process: an
allocation-heavy workload (JSON round trips of small dicts) is timed with and
without it; a warning also takes a snapshot and compares it with the last
one, which holds the loop for the time shown.

Run: python benchmarks/bench_monitor.py [--seconds 2] [--repeat 3] [--interval 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
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
    if kind == "ticker":
        async def tick() -> None:
            while True:
                await asyncio.sleep(interval)

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
        "sites": ("monitor", "real", 5),
    }
    runs: dict[str, list[Run]] = {name: [] for name in setups}
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
    was_tracing = tracemalloc.is_tracing()
    if was_tracing:
        tracemalloc.stop()
    plain = _time_workload(rounds, repeat)
    tracemalloc.start(25)  # as MemoryMonitor(top_sites=...) starts it
    try:
        traced = _time_workload(rounds, repeat)
        kept = _workload(2000)  # a heap to snapshot: the workload's live objects
        monitor = MemoryMonitor(top_sites=5)
        from daybreak.monitor import _snapshot

        monitor._baseline = _snapshot()
        more = _workload(2000)
        t0 = time.perf_counter()
        monitor._sites_since_baseline(advance=True)
        attribution = time.perf_counter() - t0
        blocks = len(monitor._baseline.traces)
        overhead = tracemalloc.get_tracemalloc_memory()
        del kept, more
        monitor._baseline = None
    finally:
        tracemalloc.stop()
        if was_tracing:
            tracemalloc.start()
    return {"plain": plain, "traced": traced, "attribution": attribution, "blocks": blocks,
            "overhead": overhead}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per run (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per set-up; the median is kept")
    parser.add_argument("--interval", type=float, default=0.01,
                        help="sampling interval while measuring (default 0.01 s: 100x the default rate)")
    parser.add_argument("--rounds", type=int, default=50_000, help="JSON round trips of the workload")
    args = parser.parse_args(argv)

    print(f"daybreak memory monitor, Python {sys.version.split()[0]}, {sys.platform}; window {WINDOW} "
          f"samples, {args.seconds:g} s x {args.repeat} runs per set-up at a {args.interval:g} s interval")
    m = measure(args)
    idle, ticker = m["idle"], m["ticker"]
    wakeup_us = (ticker.cpu_s - idle.cpu_s) / (args.seconds / args.interval) * 1e6
    print(f"\n{'set-up':<44}{'CPU ms/s':>10}{'samples':>9}{'us/sample':>11}{'% core @1s':>12}{'vs ticker':>11}")
    print(f"{'idle loop (no monitor)':<44}{idle.cpu_s / idle.wall_s * 1e3:>10.2f}{'-':>9}{'-':>11}{'-':>12}{'-':>11}")
    print(f"{'loop + ticker, no monitor':<44}{ticker.cpu_s / ticker.wall_s * 1e3:>10.2f}{'-':>9}"
          f"{wakeup_us:>11.1f}{wakeup_us / 1e4:>11.4f}%{'1.00x':>11}")
    worst = 0.0
    for name, label in (("steady", "monitor, steady RSS (trend skipped)"),
                        ("rising", "monitor, RSS rising (trend every sample)"),
                        ("sites", "monitor, top_sites=5 (tracemalloc on)")):
        r = m[name]
        per_sample = (r.cpu_s - idle.cpu_s) / max(r.samples, 1) * 1e6
        worst = max(worst, per_sample)
        print(f"{label:<44}{r.cpu_s / r.wall_s * 1e3:>10.2f}{r.samples:>9}{per_sample:>11.1f}"
              f"{per_sample / 1e4:>11.4f}%{r.cpu_s / ticker.cpu_s:>10.2f}x")
    print(f"\nat the default 1 s interval: at most {worst:.0f} us of CPU per second = {worst / 1e4:.4f}% of "
          f"one core (target < 1%: {1e4 / worst:,.0f}x below)")
    print("(us/sample includes the loop wake-up, "
          f"{wakeup_us:.0f} us of it; 'vs ticker' is CPU at {args.interval:g} s over a loop that only wakes up)")

    t = tracemalloc_cost(args.rounds, args.repeat)
    print(f"\ntop_sites=5 turns tracemalloc on (25 frames), for the whole process: "
          f"{args.rounds:,} JSON round trips")
    print(f"  without tracemalloc            {t['plain'] * 1e3:8.1f} ms CPU")
    print(f"  with tracemalloc               {t['traced'] * 1e3:8.1f} ms CPU   "
          f"({t['traced'] / t['plain']:.2f}x: every allocation pays)")
    print(f"  tracemalloc's own memory       {t['overhead'] / 2**20:8.1f} MiB for {int(t['blocks']):,} "
          "traced blocks (plus the baseline snapshot)")
    print(f"  one warning's attribution      {t['attribution'] * 1e3:8.1f} ms on the loop "
          "(snapshot + compare, once per window at most)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
