"""Reports and plans of large systems: every rendering should cost the same per component.

Shapes of 10,000 components (flat: no edges; chain; fan-in: one component
needs all the others; two phases of 5,000, whose barrier is 5,000 x 5,000
implicit edges) and 2,000 phases of one component. Each runs in a process of
its own, so that its peak RSS is its own: plan, start, report(), the report's
JSON, the terminal timeline, the plan's JSON, text, dot and mermaid, and the
HTML page. Times are per component (microseconds); a quadratic rendering
shows as a cost that grows with the shape's size instead of staying flat.

Run: python benchmarks/bench_report.py [--n 10000] [--phases 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _graphs import factories, make_types

from daybreak import Registry
from daybreak._console import Style, timeline
from daybreak.html import render
from daybreak.system import System

SHAPES = ("flat", "chain", "fan-in", "two-phases", "phases")


def build(shape: str, n: int) -> Registry:
    deps: list[list[int]] = [[] for _ in range(n)]
    if shape == "chain":
        deps = [[i - 1] if i else [] for i in range(n)]
    elif shape == "fan-in":
        deps[-1] = list(range(n - 1))
    phases: tuple[str, ...] = ()
    if shape == "two-phases":
        phases = ("first", "second")
    elif shape == "phases":
        phases = tuple(f"p{i}" for i in range(n))
    registry = Registry(shape, phases=phases, default_timeout=None)
    for i, factory in enumerate(factories(make_types(n), deps)):
        phase = None
        if shape == "two-phases":
            phase = phases[0] if i < n // 2 else phases[1]
        elif phases:
            phase = phases[i]
        registry.add(factory, phase=phase)
    return registry


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(shape: str, n: int) -> dict[str, Any]:
    registry = build(shape, n)
    base = rss_mib()
    times: dict[str, float] = {}

    def timed(label: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        times[label] = time.perf_counter() - t0
        return out

    plan = timed("plan", registry.plan)

    async def run() -> None:
        system = System(plan, block_threshold=None)
        t0 = time.perf_counter()
        await system.start()
        times["start"] = time.perf_counter() - t0
        report = timed("report", system.report)
        doc = report.to_dict()
        timed("report json", report.to_json)
        timed("timeline", lambda: timeline(doc, Style(io.StringIO())))
        plan_doc = timed("plan json", plan.to_dict)
        json.dumps(plan_doc)
        timed("plan text", plan.to_text)
        timed("dot", plan.to_dot)
        timed("mermaid", plan.to_mermaid)
        timed("html", lambda: render({"start": doc, "plan": plan_doc}))
        await system.stop()

    asyncio.run(run())
    return {"shape": shape, "n": n, "times": times, "rss_mib": rss_mib() - base}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000, help="components of flat, chain, fan-in, two-phases")
    parser.add_argument("--phases", type=int, default=2_000, help="phases of one component each")
    parser.add_argument("--child", nargs=2, metavar=("SHAPE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return
    rows = []
    for shape in SHAPES:
        n = args.phases if shape == "phases" else args.n
        out = subprocess.run([sys.executable, __file__, "--child", shape, str(n)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout))
    labels = list(rows[0]["times"])
    print("microseconds per component; peak RSS above the declarations, KiB per component")
    print(f"{'shape':<18}" + "".join(f"{label:>12}" for label in labels) + f"{'RSS':>8}")
    for row in rows:
        n = row["n"]
        cells = "".join(f"{row['times'][label] / n * 1e6:12.1f}" for label in labels)
        print(f"{row['shape'] + f' {n}':<18}{cells}{row['rss_mib'] * 1024 / n:8.2f}")


if __name__ == "__main__":
    main()
