"""The leak checker: how few cycles find each kind of leak, and what a cycle costs.

1. Detection: each leak (64 KiB, 4 KiB and 1.5 KiB of memory per cycle, a
   thread, a pending task, an open file, a listening socket) is added to a busy
   service that cleans up after itself (threads joined through the loop's
   executor, a task cancelled, a file and a socket pair closed, a 64 KiB cache
   dropped); the table shows the fewest measured cycles (after the warm-up; 3 is
   the floor, ``MIN_CYCLES``) at which ``daybreak.leaks.check`` calls it a leak in
   every one of ``--repeat`` runs.
2. False positives: ``--repeat`` default checks (20 cycles after 3 warm-up) of the
   busy service alone and of a 20-component registry; every one must be clean.
3. The kinds of issues 12 and 15 (``--repeat`` checks of ``--kind-cycles`` measured
   cycles each, a table of how many found it): an executor never shut down and an
   aiohttp session never closed (``unclosed``), an ``ssl.SSLContext`` kept per start
   (``native``), an atexit hook and a logging handler per start (``hooks``), and an
   aio-pika connection closed at stop on the real RabbitMQ (must be found 0 times).
4. Cost: seconds per cycle of the check of the 20-component registry (half async,
   half sync no-op factories on a random DAG) against a bare start/stop cycle, and
   the time of a whole default check.

Run: python benchmarks/bench_leaks.py [--repeat 5] [--max-cycles 12] [--warmup 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _graphs import factories, make_types, random_dag

from daybreak import Registry
from daybreak.leaks import MIN_CYCLES, Kind, check

ROOT = Path(__file__).resolve().parent.parent

# -- a busy service that cleans up, and the leaks added to it -----------------------------------
_kept: list[bytearray] = []
_release = threading.Event()
_threads: list[threading.Thread] = []
_files: list[BinaryIO] = []
_sockets: list[socket.socket] = []


class Cache: ...


class Workers: ...


class Ticker: ...


class Journal: ...


class Wire: ...


class Leak: ...


def busy(name: str = "busy") -> Registry:
    registry = Registry(name)

    @registry.component
    async def cache() -> AsyncIterator[Cache]:
        data = {i: bytearray(1024) for i in range(64)}
        yield Cache()
        data.clear()

    @registry.component
    async def workers() -> AsyncIterator[Workers]:
        stop = threading.Event()
        threads = [threading.Thread(target=stop.wait) for _ in range(2)]
        for t in threads:
            t.start()
        yield Workers()
        stop.set()
        for t in threads:
            await asyncio.to_thread(t.join)

    @registry.component
    async def ticker() -> AsyncIterator[Ticker]:
        task = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
        yield Ticker()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    @registry.component
    def journal() -> Iterator[Journal]:
        f = open(os.devnull, "wb")  # noqa: SIM115
        yield Journal()
        f.close()

    @registry.component
    async def wire() -> AsyncIterator[Wire]:
        a, b = socket.socketpair()
        yield Wire()
        a.close()
        b.close()

    return registry


def memory_leak(size: int) -> Registry:
    registry = busy(f"memory-{size}")

    @registry.component
    async def hoard() -> AsyncIterator[Leak]:
        _kept.append(bytearray(size))
        yield Leak()

    return registry


def thread_leak() -> Registry:
    registry = busy("threads")

    @registry.component
    async def poller() -> AsyncIterator[Leak]:
        thread = threading.Thread(target=_release.wait, daemon=True)
        thread.start()
        _threads.append(thread)
        yield Leak()

    return registry


def task_leak() -> Registry:
    registry = busy("tasks")

    @registry.component
    async def beat() -> AsyncIterator[Leak]:
        asyncio.get_running_loop().create_task(asyncio.sleep(3600))
        yield Leak()

    return registry


def file_leak() -> Registry:
    registry = busy("files")

    @registry.component
    def journal_copy() -> Iterator[Leak]:
        _files.append(open(__file__, "rb"))  # noqa: SIM115
        yield Leak()

    return registry


def socket_leak() -> Registry:
    registry = busy("sockets")

    @registry.component
    def listener() -> Iterator[Leak]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        _sockets.append(sock)
        yield Leak()

    return registry


_contexts: list[Any] = []
_hooks: list[Callable[[], None]] = []


def executor_leak() -> Registry:
    from concurrent.futures import ThreadPoolExecutor

    registry = busy("executor")

    @registry.component
    async def pool() -> AsyncIterator[Leak]:
        executor = ThreadPoolExecutor(max_workers=1)
        await asyncio.get_running_loop().run_in_executor(executor, sum, [1, 2])
        yield Leak()

    return registry


def session_leak() -> Registry:
    registry = busy("aiohttp-session")

    @registry.component
    async def http() -> AsyncIterator[Leak]:
        import aiohttp

        session = aiohttp.ClientSession()
        yield Leak()
        del session

    return registry


def ssl_leak() -> Registry:
    import ssl

    registry = busy("ssl-context")

    @registry.component
    async def tls() -> AsyncIterator[Leak]:
        _contexts.append(ssl.create_default_context())
        yield Leak()

    return registry


def atexit_leak() -> Registry:
    import atexit

    registry = busy("atexit")

    @registry.component
    async def hooked() -> AsyncIterator[Leak]:
        def on_exit() -> None:
            pass

        atexit.register(on_exit)
        _hooks.append(lambda: atexit.unregister(on_exit))
        yield Leak()

    return registry


def logging_leak() -> Registry:
    import logging

    registry = busy("logging")

    @registry.component
    async def logged() -> AsyncIterator[Leak]:
        handler = logging.NullHandler()
        logging.getLogger("bench.leaks").addHandler(handler)
        _hooks.append(lambda: logging.getLogger("bench.leaks").removeHandler(handler))
        yield Leak()

    return registry


def rabbit_closed() -> Registry:
    from daybreak._target import load_target

    return load_target(f"{ROOT / 'tests' / 'fixtures' / 'leaky_clients' / 'rabbit.py'}:registry")


def release() -> None:
    _contexts.clear()
    for undo in _hooks:
        undo()
    _hooks.clear()
    _kept.clear()
    _release.set()
    for thread in _threads:
        thread.join()
    _threads.clear()
    _release.clear()
    for f in _files:
        f.close()
    _files.clear()
    for sock in _sockets:
        sock.close()
    _sockets.clear()


def twenty() -> Registry:
    """A 20-component registry of no-op factories on a random DAG, half sync, half async."""
    types = make_types(20)
    deps = random_dag(20, seed=11)
    sync, async_ = factories(types, deps, kind="sync"), factories(types, deps, kind="async")
    registry = Registry("twenty")
    for i in range(20):
        registry.add(async_[i] if i % 2 else sync[i])
    return registry


# -- measurements -------------------------------------------------------------------------------
def fewest_cycles(make: Callable[[], Registry], kind: Kind, repeat: int, warmup: int,
                  max_cycles: int) -> int | None:
    """The fewest measured cycles that flag ``kind`` in every one of ``repeat`` checks."""
    for cycles in range(MIN_CYCLES, max_cycles + 1):
        found = 0
        for _ in range(repeat):
            report = check(make(), cycles=cycles, warmup=warmup)
            release()
            found += bool(report.leaks[kind])
        if found == repeat:
            return cycles
    return None


async def bare_cycles(registry: Registry, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        async with registry.start(block_threshold=None):
            pass
    return (time.perf_counter() - t0) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--max-cycles", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3, help="warm-up cycles (default 3, as check())")
    parser.add_argument("--kind-cycles", type=int, default=6, help="measured cycles per check of a kind")
    args = parser.parse_args(argv)
    print(f"daybreak leak checker, Python {sys.version.split()[0]}, "
          f"detection: all of {args.repeat} checks, warm-up {args.warmup}")

    cases: list[tuple[str, Callable[[], Registry], Kind]] = [
        ("memory 64 KiB/cycle", lambda: memory_leak(64 * 1024), "memory"),
        ("memory 4 KiB/cycle", lambda: memory_leak(4 * 1024), "memory"),
        ("memory 1.5 KiB/cycle", lambda: memory_leak(1536), "memory"),
        ("thread/cycle", thread_leak, "threads"),
        ("task/cycle", task_leak, "tasks"),
        ("file/cycle", file_leak, "fds"),
        ("socket/cycle", socket_leak, "fds"),
    ]
    print(f"\n{'leak (on a busy service)':<26}{'fewest measured cycles':>24}{'with warm-up':>14}")
    for label, make, kind in cases:
        n = fewest_cycles(make, kind, args.repeat, args.warmup, args.max_cycles)
        shown = str(n) if n is not None else f"> {args.max_cycles}"
        total = str(n + args.warmup) if n is not None else "-"
        print(f"{label:<26}{shown:>24}{total:>14}")

    kinds: list[tuple[str, Callable[[], Registry], Kind, bool]] = [
        ("executor never shut down", executor_leak, "unclosed", True),
        ("aiohttp session never closed", session_leak, "unclosed", True),
        ("ssl.SSLContext kept", ssl_leak, "native", True),
        ("atexit hook per start", atexit_leak, "hooks", True),
        ("logging handler per start", logging_leak, "hooks", True),
        ("aio-pika closed (RabbitMQ)", rabbit_closed, "memory", False),
    ]
    status = 0
    print(f"\n{'case (on a busy service)':<32}{'kind':<10}{'found':>8}{'expected':>10}{'s/check':>9}")
    for label, make, kind, expected in kinds:
        found, spent = 0, 0.0
        try:
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                report = check(make(), cycles=args.kind_cycles, warmup=args.warmup)
                spent += time.perf_counter() - t0
                release()
                found += bool(report.leaks[kind] if expected else report.leaked)
        except Exception as exc:  # a service that is not there: say so, go on
            print(f"{label:<32}{kind:<10}  not run: {type(exc).__name__}: {str(exc).splitlines()[0][:60]}")
            status = 1
            continue
        want = f"{args.repeat}/{args.repeat}" if expected else f"0/{args.repeat}"
        status |= found != (args.repeat if expected else 0)
        print(f"{label:<32}{kind:<10}{f'{found}/{args.repeat}':>8}{want:>10}{spent / args.repeat:>9.2f}")

    for registry in (busy(), twenty()):
        reports: list[Any] = []
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            reports.append(check(registry))
        whole = (time.perf_counter() - t0) / args.repeat
        false = sum(1 for r in reports if r.leaked)
        status |= bool(false)
        growth = max(abs(r.growth_bytes_per_cycle) for r in reports)
        per_cycle = statistics.median(r.seconds_per_cycle for r in reports)
        print(f"\nclean {registry.name!r} registry, {args.repeat} default checks "
              f"(20 cycles after 3 warm-up):")
        print(f"  false positives          {false} of {args.repeat}")
        print(f"  largest |growth|         {growth:.0f} B/cycle (threshold 1024)")
        bare = asyncio.run(bare_cycles(registry, 50))
        print(f"  seconds per cycle        {per_cycle * 1e3:.1f} ms checked, {bare * 1e3:.1f} ms bare "
              f"start/stop ({per_cycle / bare:.1f}x: tracemalloc, gc.collect, counting)")
        print(f"  a whole default check    {whole:.2f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
