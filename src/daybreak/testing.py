"""Test helpers: assert that starting and stopping a registry leaks nothing.

    from daybreak.testing import assert_no_leaks, assert_no_leaks_async

    def test_no_leaks():
        assert_no_leaks(registry, overrides={Database: FakeDatabase()})

    async def test_no_leaks_in_a_loop():
        await assert_no_leaks_async(registry)

Both return the :class:`daybreak.leaks.LeakReport` when it is clean and raise
``AssertionError`` with its readable summary (verdict, growth per cycle, the
allocation sites, the threads, tasks and descriptors added every cycle) when
it is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daybreak.leaks import LeakReport, acheck, check
from daybreak.registry import Registry

__all__ = ["assert_no_leaks", "assert_no_leaks_async"]


def assert_no_leaks(registry: Registry, cycles: int = 10, warmup: int = 2,
                    max_growth: float = 1024, overrides: Mapping[Any, Any] | None = None,
                    **options: Any) -> LeakReport:
    """Start and stop ``registry`` ``warmup + cycles`` times; fail if anything grows.

    ``max_growth`` is the memory growth per cycle, in bytes, that is tolerated;
    threads, tasks and file descriptors must not grow every cycle. ``options``
    go to :func:`daybreak.leaks.check` (``traceback_limit=``, ``hold=``,
    ``exercise=``, ``only=`` ...). Runs its own event loop: inside async code use
    :func:`assert_no_leaks_async`.
    """
    __tracebackhide__ = True
    report = check(registry, cycles=cycles, warmup=warmup, overrides=overrides,
                   threshold=max_growth, **options)
    if report.leaked:
        raise AssertionError(report.to_text())
    return report


async def assert_no_leaks_async(registry: Registry, cycles: int = 10, warmup: int = 2,
                                max_growth: float = 1024,
                                overrides: Mapping[Any, Any] | None = None,
                                **options: Any) -> LeakReport:
    """:func:`assert_no_leaks` in the running event loop."""
    __tracebackhide__ = True
    report = await acheck(registry, cycles=cycles, warmup=warmup, overrides=overrides,
                          threshold=max_growth, **options)
    if report.leaked:
        raise AssertionError(report.to_text())
    return report
