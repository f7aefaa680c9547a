"""``daybreak doctor``: one CI command for imports, start, validation, stop and leaks.

The four checks run in that order, each on its own terms:

1. the import audit of the target's top-level package (fresh child processes),
2. one start with every check and validator, then a stop with its leftovers,
3. the leak checker over several start/stop cycles.

One combined JSON document, one exit status: 0 when every check passes.
Progress goes to stderr. SIGINT or SIGTERM during the import audit ends it
as ``daybreak imports`` ends (children killed, temporary folder removed): the
partial report is printed and the exit status is 130 or 143.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from daybreak._console import Style, timeline
from daybreak._imports_progress import Printer, stop_on_signals
from daybreak._run import app_output_to_stderr, run_cancellable, start_once
from daybreak._target import TARGET_HELP, TargetError, load_target, module_of_target
from daybreak.system import failed_stops

if TYPE_CHECKING:
    from daybreak.imports import AuditProgress

__all__ = ["DEFAULT_EXCLUDE", "add_arguments", "diagnose", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    parser.add_argument("--json", action="store_true", help="print the combined report as JSON only")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML for CI systems")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="S",
                        help="fail the start after S seconds (default 120)")
    parser.add_argument("--import-timeout", type=float, default=10.0, metavar="S",
                        help="a module whose import takes longer is reported as hung (default 10)")
    parser.add_argument("--cycles", type=int, default=8, metavar="N",
                        help="measured start/stop cycles of the leak check (default 8)")
    parser.add_argument("--warmup", type=int, default=2, metavar="N",
                        help="cycles before measuring (default 2)")
    parser.add_argument("--threshold", type=_size, default=None, metavar="BYTES",
                        help="memory growth per cycle above which the leak check may call it a leak "
                        "(default: [tool.daybreak.leaks] threshold, else 1KiB)")
    parser.add_argument("--allow", action="append", default=[], metavar="EVENT[:detail]",
                        help="an import side effect that is expected (repeatable)")
    parser.add_argument("--imports-package", metavar="PKG", default=None,
                        help="the package the import audit imports (default: the target's top-level package)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="modules the import audit leaves out, besides tests, test_* and conftest (repeatable)")
    parser.add_argument("--package", action="append", default=[], metavar="NAME",
                        help="another first-party package, for 'where' (repeatable; also [tool.daybreak] packages)")
    parser.add_argument("--skip", action="append", default=[], choices=("imports", "leaks"),
                        help="leave out a check (repeatable)")
    parser.add_argument("--strict", action="store_true", help="a degraded start is a failure")


def _size(text: str) -> float:
    from daybreak.leaks import parse_size

    return parse_size(text)


def _package_of(spec: str) -> tuple[str, list[str]]:
    # The module form is found from the working directory, as load_target finds it.
    module, root = module_of_target(spec)
    return module.split(".")[0], [root or os.getcwd()]


# Modules the import audit leaves out unless told otherwise: importing tests runs them.
DEFAULT_EXCLUDE = ("tests", "test_*", "conftest")


def diagnose(spec: str, *, timeout: float = 120.0, import_timeout: float = 10.0, cycles: int = 8,
             warmup: int = 2, allow: list[str] | None = None, skip: tuple[str, ...] = (),
             strict: bool = False, imports_package: str | None = None, exclude: tuple[str, ...] = (),
             packages: tuple[str, ...] = (), progress: Callable[[str], None] | None = None,
             import_progress: Callable[[AuditProgress], None] | None = None,
             interruptible: bool = False, threshold: float | None = None) -> dict[str, Any]:
    """Run every check on the registry named by ``spec``; the combined report.

    The import audit covers ``imports_package`` (default: the target's
    top-level package) less ``DEFAULT_EXCLUDE`` and ``exclude``. ``progress``
    is called with a line as each check begins and ends: the checks take
    seconds each, and a silent command looks hung. ``import_progress`` is
    :func:`daybreak.imports.audit`'s ``progress``. With ``interruptible``
    (the command; main thread only), SIGINT and SIGTERM during the import
    audit end it early, as in ``daybreak imports``: the report stops there,
    ``interrupted`` naming the signal, with the partial audit and neither the
    start nor the leak check (the start rolls back on a signal by itself).
    The leak check follows ``[tool.daybreak.leaks]`` of ``pyproject.toml``
    (its allow-list, and its threshold unless ``threshold`` is given).
    """
    say = progress or (lambda line: None)
    policy = None
    if "leaks" not in skip:  # a bad pyproject.toml is an error before minutes of checks
        from daybreak.leaks import load_policy

        policy = load_policy()
    doc: dict[str, Any] = {"target": spec}
    failures: list[str] = []
    started = time.perf_counter()
    if "imports" not in skip:
        from daybreak.imports import TargetNotFoundError, audit, configured_packages

        package, path = _package_of(spec)
        say(f"imports  auditing {package!r}, each module in a fresh process ...")
        # Only around the audit: elsewhere (the target's import) a signal must still end the command.
        with stop_on_signals() if interruptible else contextlib.nullcontext(None) as signalled:
            try:
                imports = audit(imports_package or package, allow=allow or (), timeout=import_timeout,
                                path=path, exclude=(*DEFAULT_EXCLUDE, *exclude),
                                packages=(*packages, *configured_packages()), progress=import_progress,
                                stop=signalled.event if signalled is not None else None).to_dict()
            except (TargetNotFoundError, ValueError) as exc:  # no such package, a bad pyproject.toml
                raise TargetError(str(exc)) from None
        doc["imports"] = imports
        say(f"imports  {imports['verdict']}: {len(imports['modules'])} modules")
        if imports["verdict"] == "dirty":
            failures.append("imports: side effects, cycles, errors or hangs at import")
        if signalled is not None and signalled.signum is not None:
            failures.append(f"interrupted by {signalled.name} during the import audit "
                            f"({_not_reached(imports)})")
            return _finish(doc, failures, started, interrupted=signalled.name)

    registry = load_target(spec, timeout=timeout)
    doc["plan"] = registry.plan().to_dict()
    say(f"start    starting {len(doc['plan']['order'])} steps with every check, then stopping ...")
    start = run_cancellable(start_once(registry, timeout))
    doc["start"] = start
    say(f"start    {start['start_status'] or start['status']} in {start['duration_s'] or 0:.3f}s, "
        f"now {start['status']}")
    if start["status"] == "failed" or start.get("error"):
        failures.append("start: " + (start["error"]["message"].splitlines()[0] if start.get("error")
                                     else "failed"))
    elif start["start_status"] == "degraded" and strict:
        failures.append("start: degraded (--strict)")
    if any(start["leftovers"].values()):
        failures.append("stop: left threads, tasks or file descriptors behind")
    failures.extend(f"stop: {line}" for line in failed_stops(start))
    failed_checks = [v["name"] for v in start["validation"] if v["status"] == "failed"]
    if failed_checks and start["status"] != "failed":
        doc.setdefault("notes", []).append("failed optional checks: " + ", ".join(failed_checks))

    if policy is not None and start["status"] != "failed":
        from daybreak.errors import StartupError
        from daybreak.leaks import check, failed_start

        say(f"leaks    {warmup} warm-up and {cycles} measured start/stop cycles ...")
        limit = policy.threshold_or(threshold)
        try:
            leaks = check(registry, cycles=cycles, warmup=warmup, threshold=limit, allow=policy.allow).to_dict()
        except StartupError as exc:
            leaks = failed_start(registry.name, exc, cycles=cycles, warmup=warmup, threshold=limit)
        doc["leaks"] = leaks
        say(f"leaks    {leaks['verdict']}")
        if leaks["verdict"] == "error":
            failures.append(f"leaks: {leaks['error']['summary']}")
        elif leaks["verdict"] != "clean":
            failures.append("leaks: resources grow across start/stop cycles")
    return _finish(doc, failures, started)


def _finish(doc: dict[str, Any], failures: list[str], started: float, *,
            interrupted: str | None = None) -> dict[str, Any]:
    doc["failures"] = failures
    doc["verdict"] = "fail" if failures else "pass"
    doc["seconds"] = round(time.perf_counter() - started, 3)
    doc["interrupted"] = interrupted
    return doc


def _not_reached(imports: dict[str, Any]) -> str:
    pending = len(imports["pending"])
    return f"{pending} of {pending + len(imports['modules'])} modules not reached"


def _summary(doc: dict[str, Any]) -> str:
    style = Style(sys.stdout)
    lines: list[str] = []
    imports = doc.get("imports")
    if imports is not None:
        effects = sum(len(m["side_effects"]) for m in imports["modules"])
        lines.append(f"imports  {style.status(imports['verdict'])}: {len(imports['modules'])} modules, "
                     f"{effects} side effects, {len(imports['cycles'])} cycles, {len(imports['hung'])} hung")
        for m in imports["modules"]:
            for e in m["side_effects"]:
                lines.append(f"    {m['name']}: {e['event']} {e['detail']} at {e['where']}")
        for cycle in imports["cycles"]:
            lines.append("    cycle: " + " -> ".join(cycle))
        for h in imports["hung"]:
            lines.append(f"    hung: {h['module']} at {h['where']}")
        for err in imports.get("errors", []):
            lines.append(f"    error: {err['module']}: {err['type']}: {err['message']}")
        if imports.get("partial"):
            lines.append(f"    interrupted: {_not_reached(imports)}")
    if "start" in doc:
        lines.append("start    " + timeline(doc["start"], style).replace("\n", "\n         "))
    leaks = doc.get("leaks")
    if leaks is not None and leaks["verdict"] == "error":
        lines.append(f"leaks    {style.status('error')}: {leaks['error']['summary']}")
    elif leaks is not None:
        lines.append(f"leaks    {style.status(leaks['verdict'])}: {leaks['growth_bytes_per_cycle']:+.0f} B/cycle "
                     f"over {leaks['cycles']} cycles")
        for site in leaks["sites"][:5]:
            lines.append(f"    {site['bytes_per_cycle']:+.0f} B/cycle at {site['where']}")
        for allowed in leaks.get("allowed", []):
            lines.append(f"    allowed: {allowed['kind']} {allowed['per_cycle']:+g}/cycle at {allowed['where']} "
                         f"({allowed['reason']})")
        lines.extend(f"    hint: {hint}" for hint in leaks.get("hints", []))
        for kind in ("threads", "tasks", "fds"):
            for item in leaks.get(kind, []):
                what = item.get("name") or item.get("detail")
                lines.append(f"    {kind}: {what} +{item['per_cycle']}/cycle")
    verdict = style.green("pass") if doc["verdict"] == "pass" else style.red("fail")
    lines.append(f"doctor   {verdict} in {doc['seconds']:.1f}s")
    lines.extend(f"    {style.red(f)}" for f in doc["failures"])
    return "\n".join(lines)


def write_junit(path: str, doc: dict[str, Any]) -> None:
    suite = ET.Element("testsuite", name="daybreak.doctor")
    cases = 0
    failures = 0

    def case(name: str, failure: str | None) -> None:
        nonlocal cases, failures
        cases += 1
        element = ET.SubElement(suite, "testcase", classname="daybreak.doctor", name=name)
        if failure:
            failures += 1
            ET.SubElement(element, "failure", message=failure.splitlines()[0]).text = failure

    if "imports" in doc:
        imp = doc["imports"]
        for m in imp["modules"]:
            text = "\n".join(f"{e['event']} {e['detail']} at {e['where']}" for e in m["side_effects"])
            case(f"imports.{m['name']}", text or None)
        case("imports.cycles", "\n".join(" -> ".join(c) for c in imp["cycles"]) or None)
        for h in imp["hung"]:
            case(f"imports.hung.{h['module']}", f"import hung at {h['where']}")
    if doc.get("interrupted"):
        case("interrupted", doc["failures"][-1])
    if "start" in doc:
        start = doc["start"]
        error = start.get("error")
        case("start", f"{error['type']}: {error['message']}" if error else None)
        for v in start["validation"]:
            err = v.get("error")
            failed = err is not None and v["status"] == "failed"
            case(f"{v['kind']}.{v['name']}", f"{err['type']}: {err['message']}" if failed else None)
        left = [f"{k}: {item}" for k, items in start["leftovers"].items() for item in items]
        case("stop.leftovers", "\n".join(left) or None)
    if "leaks" in doc:
        leaks = doc["leaks"]
        case("leaks", json.dumps(leaks, indent=1) if leaks["verdict"] != "clean" else None)
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def run(args: argparse.Namespace) -> int:
    from daybreak.leaks import MIN_CYCLES

    if args.cycles < MIN_CYCLES or args.warmup < 0:
        print(f"daybreak doctor: --cycles must be >= {MIN_CYCLES} and --warmup >= 0", file=sys.stderr)
        return 2
    # On a terminal one live line, erased before the summary; in a log (or
    # with --json) the import audit's progress alone, a line every few seconds.
    printer = Printer(sys.stderr, prefix="doctor: ", label="imports  ", tty=sys.stderr.isatty() and not args.json)
    try:
        with app_output_to_stderr(args.json):  # stdout holds the JSON alone
            doc = diagnose(args.target, timeout=args.timeout, import_timeout=args.import_timeout,
                           cycles=args.cycles, warmup=args.warmup, allow=args.allow,
                           skip=tuple(args.skip), strict=args.strict, imports_package=args.imports_package,
                           exclude=tuple(args.exclude), packages=tuple(args.package), progress=printer.line,
                           import_progress=printer, interruptible=True, threshold=args.threshold)
    finally:
        printer.clear()
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        print(_summary(doc))
    if args.html:
        from daybreak.html import write_report

        write_report(args.html, doc)
    if args.junit:
        write_junit(args.junit, doc)
    if doc["interrupted"]:
        print(f"daybreak doctor: interrupted by {doc['interrupted']} during the import audit", file=sys.stderr)
        return 128 + signal.Signals[doc["interrupted"]].value
    return 0 if doc["verdict"] == "pass" else 1
