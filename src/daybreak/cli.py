"""The ``daybreak`` command: plan, start, leaks, imports, doctor.

Exit status: 0 success, 1 the check failed (also: a stop raised, timed out or
was cut short, whether or not a signal came), 2 usage or target error,
130 interrupted by SIGINT (143 by SIGTERM) after rolling back, or the code a
factory gave ``sys.exit()``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from daybreak._config import ConfigError
from daybreak._run import Interrupted, app_output_to_stderr, run_cancellable
from daybreak._target import TARGET_HELP, TargetError, load_target
from daybreak.errors import DeclarationError
from daybreak.registry import Registry
from daybreak.system import System, failed_stops

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET", help=TARGET_HELP)


def _plan(args: argparse.Namespace) -> int:
    # Only the readable form may share stdout with what the app prints at import.
    with app_output_to_stderr(args.format != "text"):
        plan = load_target(args.target).plan()
    out = {"text": plan.to_text, "json": plan.to_json, "dot": plan.to_dot,
           "mermaid": plan.to_mermaid}[args.format]()
    sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return EXIT_OK


async def _start_and_stop(args: argparse.Namespace, registry: Registry,
                          started: list[System]) -> tuple[dict[str, Any], int, str | None]:
    from daybreak._console import Progress
    from daybreak.errors import StartupError

    system = registry.start(timeout=args.timeout)
    started.append(system)  # for the report when a signal or sys.exit() ends this early
    live = sys.stderr.isatty() and not args.json
    progress = Progress(system) if live else contextlib.nullcontext()
    code = EXIT_OK
    failure = None
    try:
        with progress:
            await system.start()
    except StartupError as exc:
        code = EXIT_FAILED
        failure = str(exc)  # what failed, where, and what to do
    else:
        await _stop(system)
    report = system.report().to_dict()
    if report["start_status"] == "degraded" and args.strict:
        code = EXIT_FAILED
    if any(report["leftovers"].values()):
        code = EXIT_FAILED
    not_stopped = failed_stops(report)
    if not_stopped:
        code = EXIT_FAILED
        failure = "\n".join([*([failure] if failure else []), *not_stopped])
    return report, code, failure


async def _stop(system: System) -> None:
    """Stop every component, whatever signals come while it stops.

    A signal lets every stop run, each within its ``stop_timeout``; one more
    cuts short the stops in progress (:meth:`System.hurry`). The cancellation
    is raised once everything has stopped or been cut short.
    """
    interrupted: asyncio.CancelledError | None = None
    while True:
        try:
            await system.stop()
            break
        except asyncio.CancelledError as exc:
            if interrupted is None:
                print("daybreak start: interrupted while stopping; every stop still runs, each "
                      "within its stop_timeout (interrupt again to cut them short)",
                      file=sys.stderr, flush=True)
            else:
                system.hurry()
            interrupted = exc
    if interrupted is not None:
        raise interrupted


def _print_result(args: argparse.Namespace, report: dict[str, Any], failure: str | None) -> None:
    from daybreak._console import Style, timeline

    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        print(timeline(report, Style(sys.stdout)))
        if failure is not None:
            print(Style(sys.stdout).red(f"error: {failure}"))
        elif report.get("error"):
            print(Style(sys.stdout).red(f"error: {report['error']['type']}: {report['error']['message']}"))
    if getattr(args, "html", None):
        from daybreak.html import write_report

        write_report(args.html, {"start": report})


def _start(args: argparse.Namespace) -> int:
    started: list[System] = []
    ending: str | None = None
    # With --json, stdout holds the JSON alone: what the app prints goes to stderr.
    with app_output_to_stderr(args.json):
        # Import and plan outside the event loop: a target's import must not run inside it.
        registry = load_target(args.target, timeout=args.timeout)
        registry.plan()
        try:
            report, code, failure = run_cancellable(_start_and_stop(args, registry, started))
        except Interrupted as exc:
            if not started:
                raise
            report, code, failure = started[0].report().to_dict(), 128 + exc.signum, None
            ending = f"interrupted by {exc}; " + ("stopped" if report["start_status"] in ("ready", "degraded")
                                                   else "rolled back")
        except SystemExit as exc:  # sys.exit(code) in a factory, re-raised once rolled back
            if not started:
                raise
            report, failure = started[0].report().to_dict(), None
            code = exc.code if isinstance(exc.code, int) else EXIT_FAILED
            ending = f"{_exit_of(report)}; rolled back, exit status {code}"
    not_stopped = failed_stops(report)
    if ending is not None and not_stopped:
        code = EXIT_FAILED
        ending = ending.partition(";")[0] + "; did not stop cleanly:\n  " + "\n  ".join(not_stopped)
    _print_result(args, report, failure)
    if ending is not None:
        print(f"daybreak start: {ending}", file=sys.stderr)
    return code


def _exit_of(report: dict[str, Any]) -> str:
    for c in report["components"]:
        if c["error"] and c["error"]["type"] == "SystemExit":
            return f"component {c['name']!r} {c['error']['message'].removeprefix('it ').partition(':')[0]}"
    return "sys.exit() was called"


def _delegate(module: str) -> tuple[Any, Any]:
    mod = importlib.import_module(f"daybreak.{module}")
    return mod.add_arguments, mod.run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="daybreak",
        description="Deterministic, observable start-up and shut-down for async services.")
    from daybreak._version import __version__

    parser.add_argument("--version", action="version", version=f"daybreak {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("plan", help="print the start plan without running anything")
    _add_target(p)
    p.add_argument("--format", choices=("text", "json", "dot", "mermaid"), default="text")
    p.add_argument("--json", action="store_const", const="json", dest="format",
                   help="same as --format json")
    p.set_defaults(func=_plan)

    p = sub.add_parser("start", help="start, print the timeline, stop, report leftovers")
    _add_target(p)
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="fail the start after S seconds")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    p.add_argument("--json", action="store_true", help="print the report as JSON, nothing else")
    p.add_argument("--strict", action="store_true", help="a degraded start is a failure")
    p.set_defaults(func=_start)

    for name, module, text in (("leaks", "leaks", "start and stop many times; find what grows"),
                               ("imports", "imports", "find import-time side effects and cycles"),
                               ("doctor", "doctor", "imports, start, validation and leaks: one report")):
        try:
            add_arguments, run = _delegate(module)
        except ImportError:
            continue
        p = sub.add_parser(name, help=text)
        add_arguments(p)
        p.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (TargetError, DeclarationError, ConfigError) as exc:
        print(f"daybreak {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Interrupted as exc:
        print(f"daybreak {args.command}: interrupted by {exc}; rolled back", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(f"daybreak {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
