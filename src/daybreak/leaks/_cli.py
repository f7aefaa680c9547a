"""``daybreak leaks``: its arguments and what it prints."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from typing import Any

from daybreak.leaks._cycles import acheck
from daybreak.leaks._native import DEFAULT_NATIVE_THRESHOLD
from daybreak.leaks._rules import DEFAULT_CYCLES, DEFAULT_THRESHOLD, DEFAULT_TRACEBACK_LIMIT, DEFAULT_WARMUP, MIN_CYCLES


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*(b|k|kb|kib|m|mb|mib)?\s*", re.IGNORECASE)


def parse_size(text: str) -> float:
    """Bytes from ``"1024"``, ``"64KiB"``, ``"1k"``, ``"2MiB"`` (k and M are binary: 1024)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size in bytes such as 1024 or 64KiB, got {text!r}")
    unit = (match[2] or "b").lower()
    return float(match[1]) * (1024.0 ** 2 if unit.startswith("m") else 1024.0 if unit.startswith("k")
                              else 1.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from daybreak._target import TARGET_HELP

    parser.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    parser.add_argument("--cycles", type=_count(MIN_CYCLES), default=DEFAULT_CYCLES, metavar="N",
                        help=f"measured start/stop cycles after the warm-up (default {DEFAULT_CYCLES})")
    parser.add_argument("--warmup", type=_count(0), default=DEFAULT_WARMUP, metavar="N",
                        help=f"cycles run first and not measured (default {DEFAULT_WARMUP})")
    parser.add_argument("--threshold", type=parse_size, default=None, metavar="BYTES",
                        help="memory growth per cycle above which it may be a leak "
                        f"(default: [tool.daybreak.leaks] threshold, else {DEFAULT_THRESHOLD // 1024}KiB)")
    parser.add_argument("--native-threshold", type=parse_size, default=float(DEFAULT_NATIVE_THRESHOLD),
                        metavar="BYTES",
                        help="native memory growth per cycle (the C allocator's, beside tracemalloc's) "
                             "above which it may be a leak (default 256KiB)")
    parser.add_argument("--traceback-limit", type=_count(1), default=DEFAULT_TRACEBACK_LIMIT,
                        metavar="N", help="frames kept per allocation (default 25)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON, nothing else")
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML for CI systems")


def run(args: argparse.Namespace) -> int:
    """``daybreak leaks``: 0 clean, 1 leak (or a failed start), 2 target or configuration error."""
    from daybreak._console import Style
    from daybreak._run import app_output_to_stderr, run_cancellable
    from daybreak._target import load_target
    from daybreak.errors import StartupError
    from daybreak.leaks._policy import failed_start, load_policy

    policy = load_policy()
    threshold = policy.threshold_or(args.threshold)
    live = sys.stderr.isatty() and not args.json

    def progress(done: int, total: int) -> None:
        sys.stderr.write(f"\r\033[Kdaybreak leaks: cycle {done}/{total}")
        if done == total:
            sys.stderr.write("\r\033[K")
        sys.stderr.flush()

    with app_output_to_stderr(args.json):  # stdout holds the JSON alone
        registry = load_target(args.target)
        registry.plan()
        try:
            report = run_cancellable(acheck(registry, args.cycles, args.warmup, threshold=threshold,
                                            native_threshold=args.native_threshold,
                                            traceback_limit=args.traceback_limit,
                                            on_cycle=progress if live else None, allow=policy.allow))
        except StartupError as exc:
            failed: dict[str, Any] | None = failed_start(registry.name, exc, cycles=args.cycles, warmup=args.warmup,
                                  threshold=threshold)
        else:
            failed = None
    if failed is not None:
        if args.json:
            sys.stdout.write(json.dumps(failed, indent=2) + "\n")
        else:
            style = Style(sys.stdout)
            print(f"daybreak leaks {failed['name']}: {style.status('error')}: {failed['error']['summary']}")
            print("\n".join(failed["error"]["message"].splitlines()[1:]))
        return 1
    if args.junit:
        report.write_junit(args.junit)
    if args.json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        print(report.to_text(Style(sys.stdout)))
    return 1 if report.leaked else 0
