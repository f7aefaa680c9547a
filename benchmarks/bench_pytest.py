"""What the pytest plugin's hang timeout costs per test: 2,000 trivial tests.

Each configuration runs in a fresh ``pytest`` with only the plugins it names
(PYTEST_DISABLE_PLUGIN_AUTOLOAD), so other plugins installed here add nothing.
The cost per test is the fastest run minus collecting the same tests
(``--collect-only``), over the number of tests: interpreter start-up and
collection cancel out. Measured twice: wall time, and the CPU time of the
child pytest (user + system, its timer thread included), which other load on
the machine disturbs far less. Printed as ratios against daybreak's plugin with the
timeout off (target: on <= 1.2x off); pytest-timeout's signal and thread
methods are measured beside it when installed.

Run: python benchmarks/bench_pytest.py [--tests 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(directory: Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child pytest."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    t0 = time.perf_counter()
    child = subprocess.Popen(command, cwd=directory, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command)
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (directory / "test_trivial.py").write_text(
            "".join(f"def test_{i}():\n    pass\n\n" for i in range(args.tests)), encoding="utf-8")
        daybreak = ["-p", "daybreak.pytest_plugin"]
        configurations = {"daybreak, timeout off": daybreak,
                          "daybreak --daybreak-hang-timeout=60": [*daybreak, "--daybreak-hang-timeout=60"]}
        if importlib.util.find_spec("pytest_timeout") is not None:
            for method in ("signal", "thread"):
                configurations[f"pytest-timeout --timeout=60 ({method})"] = [
                    "-p", "pytest_timeout", "--timeout=60", f"--timeout-method={method}"]
        configurations["collection only"] = [*daybreak, "--collect-only"]
        # Interleaved, and the fastest run of each: other load on the machine only adds.
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in configurations}
        for _ in range(args.runs):
            for name, options in configurations.items():
                samples[name].append(measure(directory, options))
    collect = samples.pop("collection only")
    print(f"{args.tests} trivial tests, fastest of {args.runs} interleaved runs, collection subtracted")
    for kind, index in (("wall", 0), ("cpu", 1)):
        floor = min(run[index] for run in collect)
        per_test = {name: (min(run[index] for run in runs) - floor) / args.tests for name, runs in samples.items()}
        base = per_test["daybreak, timeout off"]
        for name, seconds in per_test.items():
            print(f"  {kind:4} {name:40} {seconds * 1e6:7.1f} us/test  {seconds / base:5.2f}x")
        ratio = per_test["daybreak --daybreak-hang-timeout=60"] / base
        print(f"  {kind:4} hang timeout on / off = {ratio:.2f}  (target <= 1.2)")


if __name__ == "__main__":
    main()
