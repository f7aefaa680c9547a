"""A timeout whose error names what did not answer and the setting that bounds it.

Component timeouts declared with ``@registry.component(timeout=...)`` are
fixed at import; a timeout that comes from the settings (``CACHE_TIMEOUT``)
is applied inside the factory with :func:`deadline`. Whichever timeout
cancels a factory, daybreak keeps where it was stuck (the report's ``hang``
and ``error.where`` name the awaited line): this helper only words the error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["deadline"]


@contextlib.asynccontextmanager
async def deadline(seconds: float, what: str, setting: str | None = None) -> AsyncIterator[None]:
    """``async with deadline(2.0, "Redis at redis://..."):`` around one awaited call."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        bound = f" ({setting}={seconds:g})" if setting else ""
        raise TimeoutError(f"{what} did not answer within {seconds:g} s{bound}") from None
