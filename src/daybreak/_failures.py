"""What a step's failure says when it is not a plain exception: the text and where."""

from __future__ import annotations

import inspect
import re
import sys
import threading
import time
import typing
from types import CodeType
from typing import Any

from daybreak._introspect import type_name
from daybreak.diagnostics import innermost_project_frame
from daybreak.diagnostics.frames import frames_of
from daybreak.errors import text_of
from daybreak.plan import Step
from daybreak.report import ErrorInfo

__all__ = ["CANCELLED_ITSELF", "admits_none", "exit_message", "returned_none", "still_running"]

CANCELLED_ITSELF = ("it raised CancelledError while nothing was cancelling it; raise an exception "
                     "that says what failed (or daybreak.Disabled to switch it off)")


def still_running(thread: threading.Thread, since: float) -> ErrorInfo:
    """The answer for a sync check whose previous run (in ``thread``) has not returned."""
    where = None
    frame = sys._current_frames().get(thread.ident or 0)
    if frame is not None:
        inner = innermost_project_frame(frames_of(frame))
        where = inner.where if inner is not None else None
    return ErrorInfo("TimeoutError", f"hung: its run of {time.perf_counter() - since:.1f} s ago has not "
                     "returned (a thread cannot be cancelled); it is not run again until it does",
                     where)


def exit_message(exc: SystemExit) -> str:
    if exc.code is None:
        return ("it called sys.exit() without an exit code; raise an exception that says what "
                "failed (or daybreak.Disabled to switch it off)")
    return f"it called sys.exit({text_of(exc.code)}): rolled back, the process exits with that code"


def returned_none(step: Step) -> ErrorInfo | None:
    """The error of a factory that gave None for a type that does not admit it."""
    factory = inspect.unwrap(step.component.factory)
    if admits_none(step.provides) or admits_none(getattr(factory, "__annotations__", {}).get("return")):
        return None
    code = getattr(factory, "__code__", None)
    what = type_name(step.provides)
    return ErrorInfo(
        "TypeError",
        f"its factory returned None, but it provides {what}: return the instance, annotate the "
        f"return `-> {what} | None` if None is a valid value, or raise daybreak.Disabled(reason) "
        "to switch it off",
        f"{code.co_filename}:{code.co_firstlineno}" if isinstance(code, CodeType) else None)


def admits_none(annotation: Any) -> bool:
    """Whether a return annotation is ``T | None`` (or ``Optional[T]``), evaluated or not."""
    if isinstance(annotation, str):
        return re.search(r"\|\s*None\b|\bNone\s*\||\bOptional\[", annotation) is not None
    return type(None) in typing.get_args(annotation)
