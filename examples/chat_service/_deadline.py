"""A timeout that says where the awaited call was stuck.

Component timeouts declared with ``@registry.component(timeout=...)`` are
fixed at import; a timeout that comes from the settings (``CACHE_TIMEOUT``)
is applied inside the factory with :class:`deadline`. Like daybreak's own
timeouts, it records the await chain of the stuck task before cancelling
it, and the :class:`TimeoutError` it raises carries the stuck frames in its
traceback, so daybreak's report names the awaited line (``error.where``).
The hang itself (``where``, ``tasks``, ``threads``, daybreak's schema) is on
the exception as ``.hang``.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from daybreak.diagnostics import await_chain, innermost_project_frame, thread_stacks

__all__ = ["deadline"]


class deadline:
    """``async with deadline(2.0, "Redis at redis://..."):`` around one awaited call."""

    def __init__(self, seconds: float, what: str, setting: str | None = None) -> None:
        self.seconds = seconds
        self.what = what
        self.setting = setting
        self.hang: dict[str, Any] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> deadline:
        self._task = asyncio.current_task()
        if self._task is None:
            raise RuntimeError("deadline() must be used inside an asyncio task")
        self._handle = asyncio.get_running_loop().call_later(self.seconds, self._expire)
        return self

    def _expire(self) -> None:
        assert self._task is not None
        chain = await_chain(self._task)
        frame = innermost_project_frame(chain)
        self.hang = {
            "where": frame.where if frame else None,
            "tasks": [{"name": self._task.get_name(), "frames": [f.to_dict() for f in chain]}],
            "threads": [t.to_dict() for t in thread_stacks()],
        }
        self._task.cancel()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if (self.hang is None or exc_type is not asyncio.CancelledError or self._task is None
                or self._task.uncancel() != 0):
            return
        setting = f" ({self.setting}={self.seconds:g})" if self.setting else ""
        where = f"; stuck at {self.hang['where']}" if self.hang.get("where") else ""
        error = TimeoutError(f"{self.what} did not answer within {self.seconds:g} s{setting}{where}")
        error.hang = self.hang  # type: ignore[attr-defined]
        # The cancelled call's frames stay in the traceback: the awaited line is its innermost.
        raise error.with_traceback(tb) from None
