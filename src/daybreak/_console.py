"""Terminal output: the live progress display and the text timeline."""

from __future__ import annotations

import asyncio
import os
import re
import sys
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
        if status in ("failed", "leak", "dirty"):
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
            attempt = f" (attempt {c.attempts})" if c.attempts > 1 else ""
            return f"  {s.yellow('▸')} {name:<28} starting {elapsed:6.2f}s{attempt}"
        if c.status == "started":
            return f"  {s.green('✓')} {name:<28} done     {c.duration_s or 0.0:6.3f}s"
        if c.status == "failed":
            return f"  {s.red('✗')} {name:<28} {s.red('failed')}   {c.error}"
        return f"  {s.yellow('-')} {name:<28} {s.status(c.status)}  {c.reason or ''}"

    def _fit(self, line: str) -> str:
        # Cut long lines (a failure's message) so that the redraw stays in
        # place; colour codes take no room, so cut the visible text only.
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns
        except OSError:
            width = 0
        width = width if width >= 40 else 120
        visible = re.sub(r"\033\[[0-9;]*m", "", line)
        if len(visible) <= width:
            return line
        return visible[: width - 1] + "…"

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

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.draw()


def timeline(report: Mapping[str, Any], style: Style, width: int = 40) -> str:
    """The start as text: one bar per component, the critical path in bold."""
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
             f"{(report['duration_s'] or 0):.3f}s (critical path {report['critical_path_s']:.3f}s){now}"]
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
        note = ""
        if r["error"]:
            note = f"  {r['error']['type']}: {r['error']['message']}"
            if r["error"]["where"]:
                note += f" at {r['error']['where']}"
        elif r["reason"]:
            note = f"  {r['reason']}"
        lines.append(f"    {r['name']:<26} |{bar:<{width}}| {label} {status}{note}")
    for v in report["validation"]:
        if v["kind"] == "validator" and v.get("start_s") is not None:
            continue  # drawn on the timeline
        mark = style.status(v["status"])
        owner = f" of {v['component']}" if v["component"] else ""
        err = f"  {v['error']['message']}" if v.get("error") else ""
        lines.append(f"    {v['kind']} {v['name']}{owner}: {mark}{err}")
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
