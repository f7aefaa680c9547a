"""Redaction of long messages stays linear (issue 11.9: under 50 ms each).

Each body is redacted by the module function (the environment's secrets and
every shape) and by a system's Redactor that learned 100 secrets; the best of
``--runs`` is printed in milliseconds, with the ratio to one ``str.replace``
pass over the same text (the floor any redaction pays).

Run: python benchmarks/bench_redact.py [--runs 5]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import time
from collections.abc import Callable

from daybreak._redact import Redactor, redact

TARGET_MS = 50.0


def bodies() -> dict[str, str]:
    rng = random.Random(7)
    b64 = base64.b64encode(rng.randbytes(45_000)).decode()  # 60 KB
    return {
        "80 KB of letters": "a" * 80_000,
        "80 KB of digits": "7" * 80_000,
        "60 KB base64 body": b64,
        "80 KB 'a.a-a.a-'": "a.a-" * 20_000,
        "80 KB 'x://' runs": "x://" * 20_000,
        "84 KB 'a://b:' runs": "a://b:" * 14_000,
        "80 KB 'password=' runs": "password=" * 9_000,
        "80 KB of prose with a DSN": ("could not connect to postgresql://app:pw/x@db/app; " * 1_600),
    }


def best(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    learned = Redactor([f"learned-secret-{i:04d}" for i in range(100)])
    os.environ.setdefault("BENCH_API_TOKEN", "bench-token-value-123456")
    print(f"{'body':<28} {'redact()':>10} {'learned':>10} {'replace':>10}  verdict")
    worst = 0.0
    for name, body in bodies().items():
        module = best(lambda: redact(body), args.runs)  # noqa: B023 -- called at once
        system = best(lambda: learned(body), args.runs)  # noqa: B023
        floor = best(lambda: body.replace("learned-secret-0001", "***"), args.runs)  # noqa: B023
        worst = max(worst, module, system)
        verdict = "ok" if max(module, system) < TARGET_MS else f"over {TARGET_MS:.0f} ms"
        print(f"{name:<28} {module:>8.2f}ms {system:>8.2f}ms {floor:>8.3f}ms  {verdict}")
    print(f"worst: {worst:.2f} ms (target < {TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
