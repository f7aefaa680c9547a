"""Steps declared ``once=True`` (migrations, seeding) in a leak check: started once, kept for every cycle.

What such a step keeps (Alembic's caches, a seeded table's rows in memory) is
kept once per process, not per start: counting it per cycle would call every
app with migrations leaky. So the checker starts the ``once`` steps, and what
they need, in a system of their own before the first cycle, gives each cycle
their instances as overrides, and stops them after the last cycle.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from daybreak.errors import StartupError
from daybreak.registry import Registry

__all__ = ["kept_once"]


@contextlib.asynccontextmanager
async def kept_once(registry: Registry, overrides: Mapping[Any, Any] | None, total: int,
                    start_options: Mapping[str, Any]) -> AsyncIterator[Mapping[Any, Any] | None]:
    """The overrides for every cycle: ``overrides`` plus the running ``once`` steps' instances."""
    plan = registry.plan(overrides=overrides, only=start_options.get("only"))
    once = [s for s in plan.steps if s.component.once and s.component.kind == "component"]
    if not once:
        yield overrides
        return
    options = {k: v for k, v in start_options.items() if k != "only"}
    try:
        keeper = registry.start(overrides, only=[s.component for s in once], **options)
        await keeper.start()
    except StartupError as exc:
        exc.add_note(f"daybreak.leaks: the start failed in cycle 1 of {total} (the once=True steps)")
        raise
    try:
        kept = dict(overrides or {})
        for s in once:
            if keeper.state.components[s.name].status == "started":
                kept[s.component] = _as_override(keeper.get(s.provides) if s.provides is not None else None)
        yield kept
    finally:
        await keeper.stop()


def _as_override(value: Any) -> Any:
    # An override that is a function or a class would be taken for a factory to call.
    if not callable(value):
        return value

    async def kept() -> Any:
        return value

    return kept
