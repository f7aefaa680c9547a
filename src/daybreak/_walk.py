"""The graph walk that starts and stops a plan: each node once its predecessors are done.

Every task it creates has an owner that waits for it (Trio's rule): a step's
task belongs to the walk, and the walk returns only when all of them have
finished.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

from daybreak._resume import resume
from daybreak._timeouts import StepTask, cancel_quietly
from daybreak.plan import Step

__all__ = ["ROLLBACK_GRACE", "walk"]

# How long a cancelled walk waits for its workers to unwind.
ROLLBACK_GRACE = 5.0


async def walk(preds: list[int], targets: list[int], start: list[int],
               run: Callable[[int], Coroutine[Any, Any, None] | None], priority: Sequence[int],
               abort: Callable[[], bool], *, limit: int | None, steps: Sequence[Step],
               capture: Callable[[int, asyncio.Task[Any]], dict[str, Any]],
               running: dict[asyncio.Task[Any], int]) -> None:
    """Run ``run(i)`` for every node once all of its predecessors finished.

    Nodes are steps (0..n-1) and phase gates (n..); ``preds[i]`` counts what
    node ``i`` waits for, ``targets[start[i]:start[i + 1]]`` is what waits
    for it (rows, as :data:`daybreak.plan.Edges`). ``run`` returns the
    coroutine of a step, or None when the node finished at once. Ready
    nodes start in ``priority`` order (distinct ints).

    Steps run in worker tasks, not a task each: most steps of a large plan
    never wait, and a worker runs them one after the other in a single turn
    of the loop. A step that waits keeps its worker to itself (whatever its
    code learnt from ``asyncio.current_task()``, ``asyncio.timeout`` for
    one, stays true) and a fresh worker takes over the queue. Each step
    runs in a copy of the context, as it would in a task of its own.

    At most ``limit`` steps run at once; ``running`` holds each worker that
    waits with a step (worker -> step), ``capture`` records where a worker's
    step is stuck when it is cancelled, and a waiting worker takes the name
    ``daybreak:<step>`` from ``steps``.
    """
    loop = asyncio.get_running_loop()
    remaining = list(preds)
    low = min(priority, default=0)
    node_at = [0] * (max(priority, default=0) - low + 1)
    for i, p in enumerate(priority):
        node_at[p - low] = i
    ready = [priority[i] for i, r in enumerate(remaining) if r == 0]
    heapq.heapify(ready)
    left = len(remaining)
    workers: set[StepTask] = set()  # every worker not finished
    free = 0  # workers that take from the queue (not waiting with a step)
    # Steps that finished as they started: what waits for them is released
    # once the ready batch has been taken, so that what was ready together
    # starts together, as with a task per step.
    early: list[int] = []
    wake: asyncio.Future[None] = loop.create_future()

    def finished(i: int) -> None:
        nonlocal left
        left -= 1
        for j in targets[start[i]:start[i + 1]]:
            r = remaining[j] - 1
            remaining[j] = r
            if r == 0:
                heapq.heappush(ready, priority[j])

    def take() -> int | None:
        while True:
            if ready and (limit is None or len(running) + len(early) < limit) and not abort():
                return node_at[heapq.heappop(ready) - low]
            if not early:
                return None
            for i in early:
                finished(i)
            early.clear()

    def spawn_if_needed() -> None:
        # Work waits, there is room for it, and no worker takes it.
        nonlocal free
        if (ready or early) and not free and not abort() and (limit is None or len(running) < limit):
            task = StepTask(worker(), loop=loop)
            task.capture = capture
            workers.add(task)
            free += 1

    async def worker() -> None:
        nonlocal free
        task = cast("StepTask", asyncio.current_task())
        try:
            while (i := take()) is not None:
                work = run(i)
                if work is None:
                    finished(i)
                    continue
                task.step, task.hang = i, None
                context = contextvars.copy_context()
                try:
                    pending = context.run(work.send, None)
                except StopIteration:
                    early.append(i)
                    continue
                except BaseException:  # what the step lets through (a cancellation): done all the same
                    finished(i)
                    raise
                running[task] = i
                free -= 1
                # Named for the step it now waits with: that is what a hang report shows.
                task.set_name(f"daybreak:{steps[i].name}")
                spawn_if_needed()
                try:
                    await resume(work, pending, context)
                finally:
                    del running[task]
                    free += 1
                    finished(i)
                if task.cancelling():  # a cancellation its step swallowed: retire with it
                    break
        finally:
            free -= 1
            workers.discard(task)
            spawn_if_needed()
            if (left == 0 or abort() or not (running or free)) and not wake.done():
                wake.set_result(None)

    spawn_if_needed()
    if not free:  # nothing to start at all
        wake.set_result(None)
    try:
        await wake
    finally:
        if workers:
            for task in workers:
                cancel_quietly(task)
            await asyncio.wait(workers, timeout=ROLLBACK_GRACE)
