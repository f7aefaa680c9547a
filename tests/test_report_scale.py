"""Every report and plan rendering is linear in components + edges.

Counted, never timed: the lines of daybreak's own code that a rendering runs
on a plan of n steps and on one of 2n. Linear work doubles; quadratic work
(a phase barrier expanded into an edge per member and dependent, a scan of
every step per phase) quadruples.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import daybreak
from daybreak import Registry
from daybreak._console import Style, timeline
from daybreak.html import render
from daybreak.plan import Plan
from daybreak.report import StartupReport
from daybreak.system import System

SOURCE = str(Path(daybreak.__file__).parent)


def make_registry(shape: str, n: int) -> Registry:
    """n components: no edges, one chain, all into one, two phases of n/2, or n phases of one."""
    phases: tuple[str, ...] = ()
    if shape == "two-phases":
        phases = ("first", "second")
    elif shape == "phases":
        phases = tuple(f"p{i}" for i in range(n))
    registry = Registry(shape, phases=phases)
    types = [type(f"T{i}", (), {}) for i in range(n)]
    for i, provided in enumerate(types):
        needs = {"chain": types[i - 1:i], "fan-in": types[:-1] if i == n - 1 else []}.get(shape, [])

        factory = _factory(provided, needs)
        phase = phases[0 if i < n // 2 else 1] if shape == "two-phases" else (phases[i] if phases else None)
        registry.add(factory, name=f"c{i}", provides=provided, phase=phase, blocking=False)
    return registry


def _factory(provided: type, needs: list[type]) -> Callable[..., Any]:
    def factory(**_: Any) -> Any:
        return provided()

    # A signature by hand: as many annotated parameters as the shape asks for.
    factory.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(f"d{k}", inspect.Parameter.KEYWORD_ONLY, annotation=t) for k, t in enumerate(needs)])
    factory.__annotations__ = {f"d{k}": t for k, t in enumerate(needs)}
    return factory


def lines_run(fn: Callable[[], Any]) -> int:
    """How many lines of daybreak's code ``fn()`` runs."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(SOURCE) else None

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def renderings(plan: Plan, report: StartupReport) -> dict[str, Callable[[], Any]]:
    doc = report.to_dict()
    return {
        "report.to_json": report.to_json,
        "timeline": lambda: timeline(doc, Style(sys.stderr)),
        "plan.to_json": plan.to_json,
        "plan.to_text": plan.to_text,
        "plan.to_dot": plan.to_dot,
        "plan.to_mermaid": plan.to_mermaid,
        "html": lambda: render({"start": doc, "plan": plan.to_dict()}),
        "html without a plan": lambda: render({"start": doc}),  # levels from depends_on
    }


def costs(shape: str, n: int) -> dict[str, int]:
    plan = make_registry(shape, n).plan()

    async def run() -> dict[str, int]:
        system = System(plan, block_threshold=None)
        await system.start()
        try:
            out = {"report": lines_run(system.report)}
            out.update({name: lines_run(render) for name, render in renderings(plan, system.report()).items()})
            return out
        finally:
            await system.stop()

    return asyncio.run(run())


@pytest.mark.parametrize("shape", ["flat", "chain", "fan-in", "two-phases", "phases"])
def test_reports_and_plans_render_in_linear_work(shape: str) -> None:
    small, large = costs(shape, 100), costs(shape, 200)
    ratios = {name: large[name] / max(small[name], 1) for name in small}
    assert all(ratio < 2.5 for ratio in ratios.values()), ratios
