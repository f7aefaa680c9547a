"""Run a coroutine so that SIGINT and SIGTERM roll it back instead of killing it.

Also: keep stdout for a command's JSON alone while the app runs, and start a
registry once for its report (``doctor``; the tests of targets).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from daybreak.registry import Registry

__all__ = ["Interrupted", "app_output_to_stderr", "run_cancellable", "start_once"]

T = TypeVar("T")


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def run_cancellable(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` (a coroutine); SIGINT/SIGTERM cancel it, so it can roll back.

    Raises :class:`Interrupted` once the coroutine has unwound.
    """
    received: list[int] = []

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(signum: int) -> None:
            received.append(signum)
            task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, on_signal, signum)
        try:
            return await main
        except asyncio.CancelledError:
            if received:
                raise Interrupted(received[0]) from None
            raise
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signum)

    return asyncio.run(guarded())


async def start_once(registry: Registry, timeout: float | None = None) -> dict[str, Any]:
    """Start ``registry`` (every check and validator), stop it; the report as a dict.

    A failed start is rolled back by the engine and reported the same way
    (its ``error``), not raised: the report is what the caller wants.
    """
    from daybreak.errors import StartupError

    system = registry.start(timeout=timeout)
    try:
        await system.start()
    except StartupError:
        return system.report().to_dict()
    await system.stop()
    return system.report().to_dict()


@contextlib.contextmanager
def app_output_to_stderr(enabled: bool = True) -> Iterator[None]:
    """While the body runs, what goes to stdout goes to stderr instead.

    For ``--json``: stdout then holds the JSON alone, whatever the app prints
    or logs. Both ``sys.stdout`` and descriptor 1 are redirected, so that a
    logging handler holding the old ``sys.stdout``, and a child process, follow.
    """
    if not enabled:
        yield
        return
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        try:
            saved = os.dup(1)
        except OSError:  # no descriptor 1: sys.stdout alone
            pass
        else:
            stack.callback(_restore_stdout, saved)
            os.dup2(2, 1)
        stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        yield


def _restore_stdout(saved: int) -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os.dup2(saved, 1)
    os.close(saved)
