"""Start-up speed of daybreak against peers on the same graphs, in one process.

1. plan + start + stop of 10,000 no-op async components (a random DAG):
   daybreak vs dishka (make_async_container, get every type, close) vs a
   sequential AsyncExitStack; cost per component and ratios.
2. A 300-component random DAG of sleeping components (1-20 ms each):
   daybreak's start time against the critical path (the floor for any
   scheduler) and the speed-up over a sequential AsyncExitStack start.

Run: python benchmarks/bench_start.py [--n 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _graphs import critical_path, factories, make_types, random_dag

from daybreak import Registry
from daybreak.system import System


def build_daybreak(types: list[type], deps: list[list[int]], sleeps: list[float] | None = None) -> Registry:
    registry = Registry("bench", default_timeout=60.0)
    for factory in factories(types, deps, sleeps=sleeps):
        registry.add(factory)
    return registry


async def run_daybreak(registry: Registry) -> tuple[float, float]:
    """(seconds to plan and start, seconds to plan, start and stop)."""
    t0 = time.perf_counter()
    system = registry.start(block_threshold=None)
    await system.start()
    t1 = time.perf_counter()
    await system.stop()
    return t1 - t0, time.perf_counter() - t0


async def phases_of_daybreak(registry: Registry) -> tuple[float, float, float]:
    """Seconds to plan, to start and to stop, separately."""
    t0 = time.perf_counter()
    plan = registry.plan()
    t1 = time.perf_counter()
    system = System(plan, block_threshold=None)
    await system.start()
    t2 = time.perf_counter()
    await system.stop()
    return t1 - t0, t2 - t1, time.perf_counter() - t2


async def run_exit_stack(types: list[type], deps: list[list[int]], sleeps: list[float] | None) -> tuple[float, float]:
    """The hand-written orchestrator: enter each step in order, one at a time."""
    fns = factories(types, deps, sleeps=sleeps)
    t0 = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        values: list[Any] = []
        for i, ds in enumerate(deps):
            kwargs = {f"d{j}": values[d] for j, d in enumerate(ds)}

            @contextlib.asynccontextmanager
            async def step(fn: Any = fns[i], kw: dict[str, Any] = kwargs) -> Any:
                yield await fn(**kw)

            values.append(await stack.enter_async_context(step()))
        t1 = time.perf_counter()
    return t1 - t0, time.perf_counter() - t0


async def run_bare_tasks(types: list[type], deps: list[list[int]], sleeps: list[float]) -> float:
    """The least any asyncio scheduler can do: a task per node, awaiting its inputs' tasks.

    No plan, no timeouts, no report: what is left over the critical path is
    the event loop's own latency (each sleep ends late by a loop turn).
    """
    fns = factories(types, deps, sleeps=sleeps)
    t0 = time.perf_counter()
    tasks: list[asyncio.Task[Any]] = []
    for i, ds in enumerate(deps):
        async def node(fn: Any = fns[i], inputs: tuple[asyncio.Task[Any], ...] = tuple(tasks[d] for d in ds)) -> Any:
            values = [await t for t in inputs]
            return await fn(*values)

        tasks.append(asyncio.ensure_future(node()))
    await asyncio.gather(*tasks)
    return time.perf_counter() - t0


async def run_dishka(types: list[type], deps: list[list[int]]) -> float:
    from dishka import Provider, Scope, make_async_container

    t0 = time.perf_counter()
    provider = Provider(scope=Scope.APP)
    for i, factory in enumerate(factories(types, deps)):
        provider.provide(factory, provides=types[i])
    container = make_async_container(provider)
    for t in types:
        await container.get(t)
    await container.close()
    return time.perf_counter() - t0


def best(samples: list[float]) -> float:
    return min(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dag", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    n = args.n
    types = make_types(n)
    deps = random_dag(n)
    print(f"1. plan + start + stop of {n:,} no-op async components (random DAG, {sum(map(len, deps)):,} edges)")
    daybreak_s, stack_s, dishka_s = [], [], []
    split: list[tuple[float, float, float]] = []
    for _ in range(args.repeat):
        gc.collect()
        registry = build_daybreak(types, deps)
        _, total = asyncio.run(run_daybreak(registry))
        daybreak_s.append(total)
        gc.collect()
        split.append(asyncio.run(phases_of_daybreak(build_daybreak(types, deps))))
        gc.collect()
        stack_s.append(asyncio.run(run_exit_stack(types, deps, None))[1])
        gc.collect()
        with contextlib.suppress(ImportError):  # dishka is a dev extra
            dishka_s.append(asyncio.run(run_dishka(types, deps)))
    per = best(daybreak_s) / n * 1e6
    print(f"   daybreak        {per:8.1f} µs/component  (best of {args.repeat}; "
          f"median {statistics.median(daybreak_s) / n * 1e6:.1f})")
    plan_s, start_s, stop_s = (min(x[k] for x in split) / n * 1e6 for k in range(3))
    print(f"                   = plan {plan_s:.1f} + start {start_s:.1f} + stop {stop_s:.1f} µs "
          "(each the best of its runs)")
    gc.collect()
    gc.disable()  # how much of it is the cyclic garbage collector walking the heap
    try:
        quiet = asyncio.run(run_daybreak(build_daybreak(types, deps)))[1]
    finally:
        gc.enable()
    print(f"                   {quiet / n * 1e6:.1f} µs/component with the garbage collector off "
          "(for reference only)")
    print(f"   AsyncExitStack  {best(stack_s) / n * 1e6:8.1f} µs/component  (sequential, no graph, no timeouts)")
    if dishka_s:
        # Each repeat runs both, one after the other: the ratio of a pair cancels
        # most of what a shared machine adds to both. Best pair and median pair.
        ratios = sorted(d / k for d, k in zip(daybreak_s, dishka_s, strict=True))
        print(f"   dishka          {best(dishka_s) / n * 1e6:8.1f} µs/component")
        print(f"   daybreak / dishka = {ratios[0]:.3f} best pair, {statistics.median(ratios):.3f} median "
              "(target <= 0.10)")
        # The reference: dishka at 160 µs/component on its machine.
        print(f"   on a machine where dishka takes 160 µs/component: {statistics.median(ratios) * 160:.1f} "
              "µs/component (median pair; target <= 15)")
    # The 15 µs target was set on the machine; on a slower one the
    # scaled figure above is the one that carries, and the exit stack shows the scale.
    print(f"   target <= 15 µs/component on this very machine: {'met' if per <= 15 else 'not met'} "
          f"(the sequential AsyncExitStack alone takes {best(stack_s) / n * 1e6:.1f} µs here)")

    m = args.dag
    types = make_types(m)
    deps = random_dag(m, max_deps=3, seed=11)
    rng = random.Random(3)
    sleeps = [rng.uniform(0.001, 0.020) for _ in range(m)]
    floor = critical_path(deps, sleeps)
    print(f"\n2. {m}-component random DAG of sleeping components (1-20 ms each)")
    starts, seq, bare = [], [], []
    for _ in range(args.repeat):
        registry = build_daybreak(types, deps, sleeps)
        starts.append(asyncio.run(run_daybreak(registry))[0])
        seq.append(asyncio.run(run_exit_stack(types, deps, sleeps))[0])
        bare.append(asyncio.run(run_bare_tasks(types, deps, sleeps)))
    start = statistics.median(starts)
    sequential = statistics.median(seq)
    floor_here = statistics.median(bare)
    print(f"   critical path   {floor * 1e3:8.1f} ms")
    print(f"   daybreak start  {start * 1e3:8.1f} ms = {start / floor:.3f} x critical path  (target <= 1.10)")
    print(f"   bare tasks      {floor_here * 1e3:8.1f} ms = {floor_here / floor:.3f} x critical path "
          f"(a task per node, nothing else: this loop's own latency); daybreak / bare = "
          f"{start / floor_here:.3f}")
    print(f"   sequential      {sequential * 1e3:8.1f} ms (AsyncExitStack) -> "
          f"daybreak is {sequential / start:.1f}x faster")


if __name__ == "__main__":
    main()
