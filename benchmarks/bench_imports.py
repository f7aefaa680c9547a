"""Speed of ``daybreak imports`` against importing every module once, same run.

Generates packages of 100, 400 and 1,600 modules whose modules import heavy
libraries (fastapi, pydantic, asyncio, email, sqlite3, http.client, decimal,
logging, ...) and 1-3 earlier modules of the package each, with two planted
side effects: a thread started in one module and a socket bound in another.
For each size it prints the median wall time of

* ``python -m daybreak.cli imports PKG --json`` (the whole command: CLI start,
  discovery, static graph, the audit child), and
* ``python -c 'import every module'`` in one fresh interpreter (the floor),

and their ratio (target: at most 3 at 400 modules), then checks that the
report has exactly the planted side effects, at their lines, and nothing else
(no other side effect, no cycle, no hang, no error).

Run: python benchmarks/bench_imports.py [--sizes 100 400 1600] [--runs 3] [--isolate]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEAVY = (
    "fastapi",
    "pydantic",
    "asyncio",
    "email.mime.text",
    "sqlite3",
    "http.client",
    "decimal",
    "logging.handlers",
    "json",
    "dataclasses",
    "urllib.request",
    "xml.etree.ElementTree",
)
PER_SUBPACKAGE = 40


def generate(root: Path, name: str, size: int) -> tuple[list[str], dict[str, str]]:
    """Write package ``name`` of ``size`` modules under ``root``; (module names, planted event -> where)."""
    rng = random.Random(size)
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text('"""Generated for bench_imports."""\n', encoding="utf-8")
    modules = [name]
    for number in range(size - 1):
        sub = f"s{number // PER_SUBPACKAGE:03d}"
        if not (package / sub).exists():
            (package / sub).mkdir()
            (package / sub / "__init__.py").write_text("", encoding="utf-8")
            modules.append(f"{name}.{sub}")
        modules.append(f"{name}.{sub}.m{number:04d}")
    leaves = [m for m in modules if m.count(".") == 2]
    planted: dict[str, str] = {}
    thread_module, socket_module = leaves[len(leaves) // 3], leaves[2 * len(leaves) // 3]
    for index, module in enumerate(leaves):
        lines = [f'"""Module {index}."""', "", f"import {HEAVY[index % len(HEAVY)]}"]
        earlier = rng.sample(leaves[:index], k=min(index, rng.randint(1, 3)))
        lines += [f"import {dep}" for dep in earlier]
        lines += [
            "",
            "from pydantic import BaseModel",
            "",
            "",
            f"class Model{index}(BaseModel):",
            "    name: str = 'x'",
            "    size: int = 0",
            "",
            "",
            f"def handler_{index}(value: int) -> int:",
            "    return value + 1",
            "",
            f"TABLE = {{n: n * n for n in range({index % 50})}}",
        ]
        if module == thread_module:
            lines += ["", "import threading", ""]
            lines.append(f"threading.Thread(target=handler_{index}, args=(1,), daemon=True).start()")
            planted["threading.Thread.start"] = f"{len(lines)}"
        if module == socket_module:
            lines += ["", "import socket", "", "with socket.socket() as _sock:"]
            lines.append("    _sock.bind(('127.0.0.1', 0))")
            planted["socket.bind"] = f"{len(lines)}"
        path = package.joinpath(*module.split(".")[1:]).with_suffix(".py")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for event, line in list(planted.items()):
            if line.isdigit():
                planted[event] = f"{path}:{line}"
    return modules, planted


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command[:4])} ... failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def check(doc: dict[str, Any], planted: dict[str, str]) -> list[str]:
    """What the report got wrong: planted effects missing, anything else reported."""
    problems: list[str] = []
    found = {(e["event"], e["where"]) for m in doc["modules"] for e in m["side_effects"]}
    expected = set(planted.items())
    problems += [f"missing {event} at {where}" for event, where in sorted(expected - found)]
    problems += [f"unexpected {event} at {where}" for event, where in sorted(found - expected)]
    for key in ("cycles", "hung", "errors"):
        if doc[key]:
            problems.append(f"{key}: {json.dumps(doc[key])[:300]}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 400, 1600])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--isolate", action="store_true", help="time --isolate too (slow)")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, median of {args.runs} runs")
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-imports-") as folder:
        root = Path(folder)
        for size in args.sizes:
            name = f"benchpkg{size}"
            modules, planted = generate(root, name, size)
            script = f"import sys; sys.path.insert(0, {str(root)!r})\n" + "".join(
                f"import {module}\n" for module in modules
            )
            floor_command = [sys.executable, "-c", script]
            ours_command = [sys.executable, "-m", "daybreak.cli", "imports", name, "--path", str(root), "--json"]
            timed(floor_command)  # compile the .pyc files once, for both
            floors, ours = [], []
            doc: dict[str, Any] = {}
            for _ in range(args.runs):
                floors.append(timed(floor_command)[0])
                elapsed, out = timed(ours_command)
                ours.append(elapsed)
                doc = json.loads(out)
            floor, mine = statistics.median(floors), statistics.median(ours)
            line = f"{size:5d} modules: daybreak imports {mine:6.2f} s / import once {floor:5.2f} s"
            line += f" = {mine / floor:5.2f}"
            if args.isolate:
                isolate = statistics.median(timed([*ours_command, "--isolate"])[0] for _ in range(args.runs))
                line += f"   (--isolate {isolate:6.1f} s = {isolate / floor:5.1f})"
            print(line + ("  (target <= 3)" if size == 400 else ""))
            problems = check(doc, planted)
            if len(doc["modules"]) != len(modules):
                problems.append(f"{len(doc['modules'])} modules audited, not {len(modules)}")
            for problem in problems:
                print(f"    WRONG: {problem}")
            failed = failed or bool(problems)
            if not problems:
                print(f"    found exactly the planted {', '.join(sorted(planted))}; nothing else")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
