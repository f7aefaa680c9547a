"""Overrides that keep the real component: :func:`wrap`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Wrap", "wrap"]


class Wrap:
    """An override that starts the real component and provides ``fn(instance)`` instead.

    Made by :func:`wrap`; the plan recognises it among the values of ``overrides=``.
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        if not callable(fn):
            raise TypeError(f"daybreak.wrap() needs a callable that takes the instance, got {fn!r}")
        self.fn = fn

    def __repr__(self) -> str:
        return f"daybreak.wrap({self.fn!r})"


def wrap(fn: Callable[[Any], Any]) -> Wrap:
    """An override that wraps the real component instead of replacing it.

    ``overrides={Pool: daybreak.wrap(lambda pool: RollbackPool(pool))}``: the
    real ``Pool`` starts as declared (its dependencies, timeout, retries and
    checks), then ``fn`` gets the instance and what it returns (awaited when
    awaitable) is what the system provides; the real component's stop code
    still runs at stop. The wrapper itself is neither entered nor stopped.
    """
    return Wrap(fn)
