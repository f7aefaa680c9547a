"""Terminal output: the live progress display and the text timeline."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import textwrap
import time
from collections.abc import Mapping
from typing import Any, TextIO

from daybreak.system import System

__all__ = ["Progress", "Style", "timeline"]

_MAX_LINES = 30


class Style:
    """ANSI colours, on only for a terminal and when NO_COLOR is not set."""

    def __init__(self, stream: TextIO) -> None:
        self.on = stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.on else text

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def status(self, status: str) -> str:
        if status in ("ready", "started", "passed", "clean", "stopped", "done"):
            return self.green(status)
        if status in ("failed", "leak", "dirty", "error"):
            return self.red(status)
        if status in ("degraded", "skipped", "disabled"):
            return self.yellow(status)
        return status


class Progress:
    """One line per component, redrawn in place while the system starts.

    waiting / starting with elapsed time / done with duration / failed with
    the reason. Long systems show the active and finished-with-trouble lines.
    """

    def __init__(self, system: System, stream: TextIO = sys.stderr) -> None:
        self.system = system
        self.stream = stream
        self.style = Style(stream)
        self._drawn = 0
        self._task: asyncio.Task[None] | None = None

    def _line(self, name: str, c: Any, now: float) -> str:
        s = self.style
        if c.status == "pending":
            return f"  {s.dim('·')} {name:<28} {s.dim('waiting')}"
        if c.status == "starting":
            elapsed = now - (c.start_s or 0.0)
            line = f"  {s.yellow('▸')} {name:<28} starting {elapsed:6.2f}s"
            if c.attempts > 1:  # the error is the last attempt's: why it retries
                line += f" (attempt {c.attempts}" + (f", retrying after {_what(c.error)})" if c.error else ")")
            return line
        if c.status == "started":
            return f"  {s.green('✓')} {name:<28} done     {c.duration_s or 0.0:6.3f}s"
        if c.status == "failed":
            tail = f" at {c.error.where}" if c.error and c.error.where else ""
            return self._fit(f"  {s.red('✗')} {name:<28} {s.red('failed')}   {_what(c.error)}", tail)
        return f"  {s.yellow('-')} {name:<28} {s.status(c.status)}  {c.reason or ''}"

    def _width(self) -> int:
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError):
            width = 0
        return width if width >= 40 else 120

    def _fit(self, line: str, tail: str = "") -> str:
        # Cut long lines (a failure's message) so that the redraw stays in
        # place; colour codes take no room, so cut the visible text only. The
        # tail (where it failed) is kept whole: the message gives way.
        width = self._width()
        visible = _ANSI.sub("", line)
        if len(visible) + len(tail) <= width:
            return line + tail
        room = max(width - len(tail), width // 2)
        return (visible[: room - 1] + "…" + tail)[:width]

    def draw(self) -> None:
        state = self.system.state
        now = time.perf_counter() - self.system._t0
        items = list(state.components.items())
        if len(items) > _MAX_LINES:
            counts: dict[str, int] = {}
            for _, c in items:
                counts[c.status] = counts.get(c.status, 0) + 1
            head = "  " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
            busy = [(n, c) for n, c in items if c.status in ("starting", "failed")][: _MAX_LINES - 1]
            lines = [head] + [self._line(n, c, now) for n, c in busy]
        else:
            lines = [self._line(n, c, now) for n, c in items]
        header = f"{self.style.bold(self.system.name)}: {state.status}" + (
            f" (phase {state.phase})" if state.phase else "")
        lines.insert(0, header)
        out = f"\033[{self._drawn}F" if self._drawn else ""
        out += "".join(f"\033[2K{self._fit(line)}\n" for line in lines)
        if self._drawn > len(lines):
            out += "\033[2K\n" * (self._drawn - len(lines))
        self.stream.write(out)
        self.stream.flush()
        self._drawn = max(self._drawn, len(lines))

    async def _run(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(0.1)

    def __enter__(self) -> Progress:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def clear(self) -> None:
        """Erase the live lines: the timeline printed next shows every component once."""
        if self._drawn:
            self.stream.write(f"\033[{self._drawn}F\033[J")
            self.stream.flush()
            self._drawn = 0

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.clear()


_ANSI = re.compile(r"\033\[[0-9;]*m")


def _what(error: Any) -> str:
    """``Type: message`` of an :class:`~daybreak.report.ErrorInfo`, without its location."""
    if error is None:
        return ""
    return f"{error.type}: {error.message}" if error.message else str(error.type)


def _wrap(text: str, indent: str, columns: int) -> list[str]:
    """``text`` in lines of at most ``columns``, broken between words, never inside one."""
    return textwrap.wrap(text, max(columns, 40), initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False) or [indent]


def timeline(report: Mapping[str, Any], style: Style, width: int = 40, columns: int | None = None) -> str:
    """The start as text: one bar per component, the critical path in bold.

    ``columns`` is the terminal's width (default: the current terminal's):
    a bar's error and where it happened go on lines of their own below it,
    broken between words.
    """
    columns = columns or shutil.get_terminal_size((100, 24)).columns
    phase_order = {p["name"]: i for i, p in enumerate(report["phases"])}
    # Validators are steps too: they take time on the timeline.
    validators = [dict(v, error=v.get("error"), reason=v.get("reason")) for v in report["validation"]
                  if v["kind"] == "validator" and v.get("start_s") is not None]
    rows = sorted([*report["components"], *validators],
                  key=lambda r: (phase_order.get(r.get("phase"), 0), r["start_s"] is None, r["start_s"] or 0.0))
    total = max([(r["start_s"] or 0) + (r["duration_s"] or 0) for r in rows] + [1e-9])
    on_path = set(report["critical_path"])
    outcome = report.get("start_status") or report["status"]
    now = f", now {style.status(report['status'])}" if report["status"] != outcome else ""
    lines = [f"{style.bold(report['name'])} {style.status(outcome)} in "
             f"{(report['duration_s'] or 0):.3f}s (critical path {report['critical_path_s']:.3f}s){now}",
             style.dim(f"    {'█ critical path ▒ other':<26} |{f'0 … {total:.3f}s':^{width}}| duration status")]
    phase = object()
    for r in rows:
        if r["phase"] != phase and r["phase"] is not None:
            lines.append(style.dim(f"  {r['phase']}"))
        phase = r["phase"]
        start = r["start_s"] or 0.0
        duration = r["duration_s"] or 0.0
        left = int(start / total * width)
        size = max(1, round(duration / total * width)) if r["start_s"] is not None else 0
        bar = " " * left + ("█" if r["name"] in on_path else "▒") * size
        label = f"{duration:7.3f}s" if r["start_s"] is not None else "        "
        status = style.status(r["status"])
        row = f"    {r['name']:<26} |{bar:<{width}}| {label} {status}"
        if r.get("attempts", 1) > 1:
            row += f" (attempt {r['attempts']})"
        if r["error"]:
            lines.append(row)
            error = r["error"]
            lines.extend(style.red(line) for line in _wrap(
                f"{error['type']}: {error['message']}" if error["message"] else error["type"], " " * 6, columns))
            if error["where"]:
                lines.extend(_wrap(f"at {error['where']}", " " * 6, columns))
        elif r["reason"] and len(f"{row}  {r['reason']}") - len(status) + len(r["status"]) <= columns:
            lines.append(f"{row}  {r['reason']}")
        elif r["reason"]:
            lines.append(row)
            lines.extend(_wrap(r["reason"], " " * 6, columns))
        else:
            lines.append(row)
    for v in report["validation"]:
        if v["kind"] == "validator" and v.get("start_s") is not None:
            continue  # drawn on the timeline
        mark = style.status(v["status"])
        owner = f" of {v['component']}" if v["component"] else ""
        lines.append(f"    {v['kind']} {v['name']}{owner}: {mark}")
        if v.get("error"):
            lines.extend(_wrap(v["error"]["message"], " " * 6, columns))
    for b in report["loop_blocks"]:
        lines.append(style.yellow(f"    event loop blocked {b['duration_s']:.3f}s at {b['where']}"
                                  + (f" ({b['component']})" if b["component"] else "")))
    left_over = report["leftovers"]
    for kind in ("threads", "tasks", "fds"):
        for item in left_over.get(kind, []):
            who = f" from {item['component']}" if item.get("component") else ""
            what = item.get("name") or item.get("detail") or item.get("coro")
            where = f" at {item['where']}" if item.get("where") else ""
            lines.append(style.red(f"    left behind: {kind[:-1]} {what}{who}{where}"))
    return "\n".join(lines)
