from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from daybreak.diagnostics import Frame, LoopBlock, LoopWatchdog

from ._markers import where

THRESHOLD = 0.1


def watchdog_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "daybreak-watchdog"]


async def load_settings() -> None:
    # Blocking the loop from async code is exactly what the watchdog must catch.
    time.sleep(0.3)  # noqa: ASYNC251  # marker: blocking-sleep


def step() -> int:
    total = 0
    for n in range(50):
        total += n
    return total


def crunch(seconds: float) -> int:
    # Many short calls: the innermost frame is a new one at every sample, and only
    # the frame the loop dispatched (the task's coroutine) stays the same.
    until = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < until:
        count += step()
    return count


async def build_index() -> None:
    crunch(0.3)


async def test_records_a_sync_call_inside_async_def_with_its_line_and_component() -> None:
    loop = asyncio.get_running_loop()
    with LoopWatchdog(loop, threshold=THRESHOLD, codes={load_settings.__code__: "settings"}) as dog:
        await asyncio.sleep(0.06)
        await asyncio.create_task(load_settings())
        await asyncio.sleep(0.06)
    assert len(dog.blocks) == 1
    block = dog.blocks[0]
    assert block.where == where(__file__, "blocking-sleep")
    assert block.component == "settings"
    assert 0.2 <= block.duration_s <= 0.45
    # Sampled while blocked: the stack ends in the blocking line, not in the loop.
    assert block.frames[-1].where == block.where
    assert block.frames[0].function == "load_settings"


async def test_records_a_busy_python_loop_whose_line_keeps_changing() -> None:
    loop = asyncio.get_running_loop()
    with LoopWatchdog(loop, threshold=THRESHOLD, codes={build_index.__code__: "search"}) as dog:
        await asyncio.sleep(0.06)
        await asyncio.create_task(build_index())
        await asyncio.sleep(0.06)
    assert len(dog.blocks) == 1
    block = dog.blocks[0]
    assert block.component == "search"
    # Wherever the sample caught it, as long as it is inside the busy code.
    assert block.frames[-1].function in {"crunch", "step"}
    assert block.where == block.frames[-1].where
    assert block.frames[-1].file == __file__


async def test_an_idle_loop_is_not_blocked() -> None:
    loop = asyncio.get_running_loop()
    with LoopWatchdog(loop, threshold=THRESHOLD) as dog:
        await asyncio.sleep(0.35)
    assert dog.blocks == []
    assert dog.late_answers == 0


def short_python_callback() -> None:
    time.sleep(0.002)


@pytest.mark.parametrize(
    "schedule",
    [
        lambda loop: loop.call_soon(short_python_callback),
        lambda loop: loop.call_soon(time.sleep, 0.002),  # a callback with no Python frame
    ],
    ids=["python-callbacks", "c-callbacks"],
)
async def test_a_queue_of_short_callbacks_is_not_a_block(
    schedule: Callable[[asyncio.AbstractEventLoop], object],
) -> None:
    loop = asyncio.get_running_loop()
    with LoopWatchdog(loop, threshold=THRESHOLD) as dog:
        await asyncio.sleep(0.06)
        for _ in range(200):
            schedule(loop)
        await asyncio.sleep(0)  # runs after all 200 of them
        await asyncio.sleep(0.06)
    # The loop did stop answering for longer than the threshold...
    assert dog.late_answers >= 1
    # ...but no single frame held it.
    assert dog.blocks == []


async def test_starts_a_thread_only_in_start_and_leaves_none_after_stop() -> None:
    before = set(threading.enumerate())
    dog = LoopWatchdog(asyncio.get_running_loop(), threshold=THRESHOLD)
    assert set(threading.enumerate()) == before
    dog.start()
    try:
        (thread,) = watchdog_threads()
        assert thread.daemon
        assert set(threading.enumerate()) == before | {thread}
    finally:
        dog.stop()
    assert not thread.is_alive()
    assert set(threading.enumerate()) == before
    dog.stop()  # a second stop is a no-op


async def test_can_be_restarted_and_keeps_its_blocks() -> None:
    loop = asyncio.get_running_loop()
    dog = LoopWatchdog(loop, threshold=THRESHOLD, codes={load_settings.__code__: "settings"})
    dog.start()
    with pytest.raises(RuntimeError, match="already started"):
        dog.start()
    await asyncio.create_task(load_settings())
    dog.stop()
    dog.start()
    await asyncio.sleep(0.06)
    dog.stop()
    assert [block.component for block in dog.blocks] == ["settings"]
    assert watchdog_threads() == []


def test_stop_without_start_is_harmless() -> None:
    loop = asyncio.new_event_loop()
    try:
        LoopWatchdog(loop).stop()
    finally:
        loop.close()


def test_a_stopped_loop_is_not_a_blocked_one() -> None:
    loop = asyncio.new_event_loop()
    try:
        dog = LoopWatchdog(loop, threshold=0.05)
        dog.start()
        try:
            loop.run_until_complete(asyncio.sleep(0.03))
            time.sleep(0.25)  # the loop does not run: its probe waits, nobody holds it
            loop.run_until_complete(asyncio.sleep(0.05))
        finally:
            dog.stop()
    finally:
        loop.close()
    assert dog.blocks == []
    assert dog.late_answers == 0


def test_the_thread_ends_by_itself_when_the_loop_is_closed() -> None:
    loop = asyncio.new_event_loop()
    dog = LoopWatchdog(loop, threshold=0.02)
    dog.start()
    (thread,) = watchdog_threads()
    loop.close()
    thread.join(2)
    assert not thread.is_alive()
    dog.stop()
    assert dog.blocks == []


async def test_start_from_another_loops_thread_is_refused() -> None:
    other = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="thread that runs its loop"):
            LoopWatchdog(other).start()
    finally:
        other.close()
    assert watchdog_threads() == []


@pytest.mark.parametrize("threshold", [0, -1.0])
def test_threshold_must_be_positive(threshold: float) -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match="threshold"):
            LoopWatchdog(loop, threshold=threshold)
    finally:
        loop.close()


async def test_set_codes_changes_the_blamed_component() -> None:
    loop = asyncio.get_running_loop()
    dog = LoopWatchdog(loop, threshold=THRESHOLD, codes={load_settings.__code__: "settings"})
    dog.set_codes({load_settings.__code__: "config"})
    assert dict(dog.codes) == {load_settings.__code__: "config"}
    with dog:
        await asyncio.create_task(load_settings())
    assert [block.component for block in dog.blocks] == ["config"]


def test_loop_block_to_dict_rounds_the_duration() -> None:
    block = LoopBlock("/app/a.py:3", 0.123456789, "db", (Frame("/app/a.py", 3, "start"),))
    assert block.to_dict() == {
        "where": "/app/a.py:3",
        "duration_s": 0.123457,
        "component": "db",
        "frames": [{"file": "/app/a.py", "line": 3, "function": "start", "where": "/app/a.py:3"}],
    }
