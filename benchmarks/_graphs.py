"""Random DAGs shared by the benchmarks: the same graph feeds every peer.

Factories are real functions with named, annotated parameters (generated
source, compiled once per graph), as a service would declare them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any


def make_types(n: int) -> list[type]:
    return [type(f"T{i}", (), {}) for i in range(n)]


def random_dag(n: int, *, max_deps: int = 3, seed: int = 7) -> list[list[int]]:
    """deps[i] lists indices < i: a DAG by construction."""
    rng = random.Random(seed)
    deps: list[list[int]] = []
    for i in range(n):
        k = rng.randint(0, min(max_deps, i))
        deps.append(sorted(rng.sample(range(max(0, i - 50), i), k)) if i else [])
    return deps


def factories(types: list[type], deps: list[list[int]], *, sleeps: list[float] | None = None,
              kind: str = "async") -> list[Callable[..., Any]]:
    """One factory per node: ``async def cI(d0: Tj, ...) -> TI`` returning a TI instance."""
    namespace: dict[str, Any] = {"asyncio": __import__("asyncio")}
    lines = []
    for i, ds in enumerate(deps):
        namespace[f"T{i}"] = types[i]
        params = ", ".join(f"d{j}: T{d}" for j, d in enumerate(ds))
        body = f"    await asyncio.sleep({sleeps[i]!r})\n" if sleeps is not None else ""
        if kind == "async":
            lines.append(f"async def c{i}({params}) -> T{i}:\n{body}    return T{i}()\n")
        else:
            lines.append(f"def c{i}({params}) -> T{i}:\n    return T{i}()\n")
    exec(compile("\n".join(lines), "<bench-factories>", "exec"), namespace)
    return [namespace[f"c{i}"] for i in range(len(deps))]


def critical_path(deps: list[list[int]], durations: list[float]) -> float:
    finish: list[float] = []
    for i, ds in enumerate(deps):
        finish.append(max((finish[d] for d in ds), default=0.0) + durations[i])
    return max(finish, default=0.0)
