from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import pytest

from daybreak.diagnostics import await_chain, innermost_project_frame
from daybreak.diagnostics._chain import MAX_DEPTH

from ._markers import where


async def settle() -> None:
    # Enough loop turns for every task of a test to reach its innermost await.
    for _ in range(5):
        await asyncio.sleep(0)


async def finish(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks, return_exceptions=True)


async def stuck() -> None:
    await asyncio.sleep(10)  # marker: stuck


async def middle() -> None:
    await stuck()


async def outer() -> None:
    await middle()


async def test_reaches_the_innermost_await_through_nested_coroutines() -> None:
    task = asyncio.create_task(outer())
    await settle()
    try:
        chain = await_chain(task)
        functions = [frame.function for frame in chain]
        # get_stack() stops at the outermost frame; the chain must not.
        assert len(task.get_stack()) == 1
        assert functions[:3] == ["outer", "middle", "stuck"]
        assert functions[-1] == "sleep"  # asyncio's own frame, innermost
        project = innermost_project_frame(chain)
        assert project is not None
        assert project.where == where(__file__, "stuck")
    finally:
        await finish(task)


async def test_accepts_a_bare_coroutine() -> None:
    task = asyncio.create_task(outer())
    await settle()
    try:
        coro = task.get_coro()
        assert coro is not None
        chain = await_chain(coro)
        assert [frame.function for frame in chain][:3] == ["outer", "middle", "stuck"]
    finally:
        await finish(task)


async def awaits_a_task() -> None:
    await asyncio.create_task(middle())


async def test_follows_an_awaited_task() -> None:
    task = asyncio.create_task(awaits_a_task())
    await settle()
    try:
        chain = await_chain(task)
        assert [frame.function for frame in chain][:3] == ["awaits_a_task", "middle", "stuck"]
        assert innermost_project_frame(chain) == chain[2]
    finally:
        await finish(task, *asyncio.all_tasks() - {asyncio.current_task()})


async def gathers() -> None:
    await asyncio.gather(asyncio.sleep(0), stuck())


async def test_follows_the_first_pending_child_of_gather() -> None:
    task = asyncio.create_task(gathers())
    await settle()
    try:
        chain = await_chain(task)
        # The first child (sleep(0)) is done: the chain goes into the second.
        assert [frame.function for frame in chain][:2] == ["gathers", "stuck"]
        project = innermost_project_frame(chain)
        assert project is not None
        assert project.where == where(__file__, "stuck")
    finally:
        await finish(task)


async def numbers() -> AsyncGenerator[int, None]:
    while True:
        await asyncio.sleep(10)  # marker: agen
        yield 1


async def iterates() -> None:
    async for _ in numbers():
        pass


async def anext_with_default() -> None:
    await anext(numbers(), None)


async def explicit_asend() -> None:
    await numbers().asend(None)


@pytest.mark.parametrize("consumer", [iterates, anext_with_default, explicit_asend])
async def test_follows_into_an_async_generator(consumer: Callable[[], Awaitable[None]]) -> None:
    task = asyncio.ensure_future(consumer())
    await settle()
    try:
        chain = await_chain(task)
        assert [frame.function for frame in chain][:2] == [consumer.__name__, "numbers"]
        project = innermost_project_frame(chain)
        assert project is not None
        assert project.where == where(__file__, "agen")
    finally:
        await finish(task)


async def under_wait_for() -> None:
    await asyncio.wait_for(stuck(), 10)


async def in_task_group() -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(stuck())


async def under_wait() -> None:
    await asyncio.wait([asyncio.ensure_future(stuck())])


@pytest.mark.parametrize("helper", [under_wait_for, in_task_group, under_wait])
async def test_follows_asyncio_helpers_that_wait_on_private_futures(
    helper: Callable[[], Awaitable[None]],
) -> None:
    task = asyncio.ensure_future(helper())
    await settle()
    try:
        chain = await_chain(task)
        assert chain[0].function == helper.__name__
        project = innermost_project_frame(chain)
        assert project is not None
        assert project.where == where(__file__, "stuck")
    finally:
        await finish(task, *asyncio.all_tasks() - {asyncio.current_task()})


class Gathering(asyncio.Future[None]):
    """A future that, like asyncio.gather's, names the tasks it waits for."""

    _children: list[asyncio.Future[Any]]


async def test_stops_on_a_cycle() -> None:
    gathering = Gathering()

    async def waits() -> None:
        await gathering

    task = asyncio.create_task(waits())
    gathering._children = [task]  # the task waits for a future that waits for the task
    await settle()
    try:
        assert [frame.function for frame in await_chain(task)] == ["waits"]
    finally:
        await finish(task)


async def test_stops_at_the_depth_limit() -> None:
    async def nest(depth: int) -> None:
        if depth:
            await nest(depth - 1)
        else:
            await asyncio.sleep(10)

    task = asyncio.create_task(nest(MAX_DEPTH + 50))
    await settle()
    try:
        chain = await_chain(task)
        assert len(chain) == MAX_DEPTH
        assert {frame.function for frame in chain} == {"nest"}
    finally:
        await finish(task)


async def test_a_finished_task_has_no_chain() -> None:
    task = asyncio.create_task(asyncio.sleep(0))
    await task
    assert await_chain(task) == []
