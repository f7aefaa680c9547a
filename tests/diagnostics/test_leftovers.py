from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from daybreak.diagnostics import (
    LeftFd,
    Leftovers,
    LeftTask,
    LeftThread,
    LoopWatchdog,
    Snapshot,
    leftovers_since,
)
from daybreak.diagnostics._fds import open_fds

from ._markers import where

HAS_PROC = os.path.isdir("/proc/self/fd")
linux_only = pytest.mark.skipif(not HAS_PROC, reason="file descriptors are listed from /proc")


@contextlib.contextmanager
def running_thread(target: Callable[[threading.Event], None], name: str) -> Iterator[None]:
    """A thread parked in `target` until the block ends."""
    release = threading.Event()
    thread = threading.Thread(target=target, args=(release,), name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        release.set()
        thread.join()


def pump(release: threading.Event) -> None:
    release.wait(5)  # marker: pump


def idle(release: threading.Event) -> None:
    release.wait(5)


async def listen(forever: asyncio.Event) -> None:
    await forever.wait()  # marker: listen


async def cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


async def test_finds_the_threads_task_and_socket_a_run_left_behind(
    listener: socket.socket,
) -> None:
    codes = {pump.__code__: "queue", listen.__code__: "websocket"}
    forever = asyncio.Event()
    before = Snapshot.take()
    client = socket.create_connection(listener.getsockname())
    client_fd, here, there = client.fileno(), client.getsockname(), listener.getsockname()
    task = asyncio.create_task(listen(forever), name="ws-listener")
    try:
        with (
            running_thread(pump, "pump-thread"),
            running_thread(idle, "daybreak:database"),
        ):
            await asyncio.sleep(0.01)
            found = leftovers_since(before, codes=codes)
    finally:
        await cancel(task)
        client.close()

    assert found
    threads = {thread.name: thread for thread in found.threads}
    assert set(threads) == {"pump-thread", "daybreak:database"}
    assert threads["daybreak:database"].component == "database"  # by name
    assert threads["pump-thread"].component == "queue"  # by code
    assert threads["pump-thread"].where == where(__file__, "pump")
    assert threads["pump-thread"].daemon is True

    (left_task,) = found.tasks
    assert left_task.name == "ws-listener"
    assert left_task.coro.endswith("listen")
    assert left_task.component == "websocket"
    assert left_task.where == where(__file__, "listen")

    if HAS_PROC:
        detail = f"tcp {here[0]}:{here[1]} -> {there[0]}:{there[1]}"
        assert found.fds == (LeftFd(client_fd, "socket", detail),)


async def test_finds_nothing_when_everything_was_cleaned_up(listener: socket.socket) -> None:
    before = Snapshot.take()
    with running_thread(idle, "daybreak:database"):
        pass
    await cancel(asyncio.create_task(asyncio.sleep(10)))
    socket.create_connection(listener.getsockname()).close()
    read, write = os.pipe()
    os.close(read)
    os.close(write)

    found = leftovers_since(before)
    assert not found
    assert found == Leftovers()
    assert found.to_dict() == {"threads": [], "tasks": [], "fds": []}


async def test_the_current_task_excluded_tasks_and_the_watchdog_are_not_leftovers() -> None:
    loop = asyncio.get_running_loop()
    forever = asyncio.Event()
    before = Snapshot.take(loop)
    mine = asyncio.create_task(listen(forever))
    dog = LoopWatchdog(loop)
    dog.start()
    try:
        found = leftovers_since(before, loop=loop, exclude_tasks=[mine])
    finally:
        dog.stop()
        await cancel(mine)
    assert not found.threads
    assert not found.tasks


async def test_tasks_are_attributed_by_task_component_first() -> None:
    forever = asyncio.Event()
    before = Snapshot.take()
    task = asyncio.create_task(listen(forever), name="tagged")
    await asyncio.sleep(0)
    try:
        found = leftovers_since(
            before,
            codes={listen.__code__: "websocket"},
            task_component=lambda t: "cache" if t.get_name() == "tagged" else None,
        )
    finally:
        await cancel(task)
    assert [t.component for t in found.tasks] == ["cache"]


def factory_with_a_worker(release: threading.Event) -> threading.Thread:
    def worker() -> None:
        release.wait(5)  # marker: nested-worker

    thread = threading.Thread(target=worker, name="nested", daemon=True)
    thread.start()
    return thread


def test_a_thread_running_code_nested_in_a_component_is_the_components() -> None:
    release = threading.Event()
    before = Snapshot.take()
    thread = factory_with_a_worker(release)
    try:
        found = leftovers_since(before, codes={factory_with_a_worker.__code__: "mail"})
    finally:
        release.set()
        thread.join()
    (left,) = found.threads
    assert left.component == "mail"
    assert left.where == where(__file__, "nested-worker")


def test_a_thread_running_code_from_a_components_file_is_the_components() -> None:
    def unrelated() -> None:
        pass

    before = Snapshot.take()
    with running_thread(pump, "helper"):
        # Only this file's code is mapped, and only to one component.
        by_file = leftovers_since(before, codes={unrelated.__code__: "metrics"})
        # Two components in one file: the file tells nothing.
        ambiguous = leftovers_since(before, codes={unrelated.__code__: "metrics", idle.__code__: "other"})
    assert [t.component for t in by_file.threads] == ["metrics"]
    assert [t.component for t in ambiguous.threads] == [None]


def test_an_unattributable_thread_has_no_component() -> None:
    before = Snapshot.take()
    with running_thread(idle, "anonymous"):
        found = leftovers_since(before)
    (left,) = found.threads
    assert left.component is None
    assert left.stack  # its stack is reported all the same


def test_without_a_loop_tasks_are_not_looked_for() -> None:
    before = Snapshot.take()
    assert before.tasks == frozenset()
    assert not leftovers_since(before).tasks


@linux_only
def test_fd_listing_leaves_out_its_own_directory_descriptor() -> None:
    for fd, target in open_fds():
        os.fstat(fd)  # raises EBADF for the closed directory descriptor
        assert not target.endswith("/fd")


@linux_only
def test_describes_pipes_listening_sockets_and_unix_sockets() -> None:
    before = Snapshot.take()
    read, write = os.pipe()
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    left, right = socket.socketpair()
    try:
        found = leftovers_since(before)
    finally:
        for fd in (read, write):
            os.close(fd)
        for sock in (server, left, right):
            sock.close()
    by_fd = {fd.fd: fd for fd in found.fds}
    assert len(by_fd) == 5
    assert by_fd[read].kind == by_fd[write].kind == "pipe"
    assert by_fd[read].detail.startswith("pipe:[")
    sockets = sorted(fd.detail for fd in found.fds if fd.kind == "socket")
    assert sockets == [f"tcp 127.0.0.1:{port} (listening)", "unix", "unix"]


@linux_only
def test_describes_a_file() -> None:
    before = Snapshot.take()
    with open(__file__, "rb") as handle:
        (fd,) = leftovers_since(before).fds
        assert fd == LeftFd(handle.fileno(), "file", __file__)


def test_to_dict_has_the_report_shape() -> None:
    leftovers = Leftovers(
        threads=(LeftThread("t", 7, True, "db", "/a.py:1", ()),),
        tasks=(LeftTask("Task-1", "listen", None, None, ()),),
        fds=(LeftFd(9, "socket", "tcp 127.0.0.1:1 -> 127.0.0.1:2", None),),
    )
    assert leftovers
    assert leftovers.to_dict() == {
        "threads": [
            {"name": "t", "ident": 7, "daemon": True, "component": "db", "where": "/a.py:1", "stack": []},
        ],
        "tasks": [{"name": "Task-1", "coro": "listen", "component": None, "where": None, "stack": []}],
        "fds": [{"fd": 9, "kind": "socket", "detail": "tcp 127.0.0.1:1 -> 127.0.0.1:2", "component": None}],
    }


def test_a_reused_thread_id_and_ident_do_not_hide_a_new_thread() -> None:
    # The snapshot saw a thread whose Thread object has since been freed. A new
    # thread may get both its ident (pthread stacks are reused) and its id (so
    # is memory): the pair alone would pass it for the old one.
    ghost = threading.Thread(target=idle)
    ref = weakref.ref(ghost)
    del ghost
    assert ref() is None
    before = Snapshot.take()
    with running_thread(idle, "successor"):
        (successor,) = [t for t in threading.enumerate() if t.name == "successor"]
        forged = dataclasses.replace(
            before,
            threads=before.threads | {(id(successor), successor.ident or 0)},
            _alive=(*before._alive, ref),
        )
        assert [t.name for t in leftovers_since(forged).threads] == ["successor"]
        # A snapshot that really saw it does hide it.
        assert not leftovers_since(Snapshot.take()).threads


def test_current_thread_is_never_a_leftover() -> None:
    before = Snapshot(threads=frozenset(), tasks=frozenset(), fds=frozenset())
    names = {t.name for t in leftovers_since(before).threads}
    assert threading.current_thread().name not in names
