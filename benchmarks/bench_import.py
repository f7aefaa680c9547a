"""Import time of ``import daybreak`` against that_depends, each in fresh interpreters.

Run: python benchmarks/bench_import.py [--runs 15]
The time is the median wall time of ``python -c "import X"`` minus that of
``python -c "pass"``, so interpreter start-up cancels out.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time


def run(code: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    base = run("pass", args.runs)
    ours = run("import daybreak", args.runs) - base
    print(f"import daybreak        {ours * 1e3:6.1f} ms  (target < 10 ms)")
    ours_used = run("import daybreak; daybreak.Registry", args.runs) - base
    print(f"  ... and use Registry {ours_used * 1e3:6.1f} ms")
    if importlib.util.find_spec("that_depends") is not None:
        peer = run("import that_depends", args.runs) - base
        print(f"import that_depends    {peer * 1e3:6.1f} ms")
        print(f"daybreak / that_depends = {ours / peer:.2f}  (target <= 0.25)")


if __name__ == "__main__":
    main()
