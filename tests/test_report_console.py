"""The terminal: the live lines while a system starts, then the timeline, each component once."""

from __future__ import annotations

import asyncio
import io
import re

from daybreak import Registry
from daybreak._console import Progress, Style, timeline


class Screen:
    """Just enough of a terminal: lines, a cursor, and the escapes Progress writes."""

    def __init__(self) -> None:
        self.lines: list[str] = [""]
        self.row = 0

    def feed(self, text: str) -> None:
        for token in re.split(r"(\x1b\[\d*[A-Za-z]|\n)", text):
            if token == "\n":
                self.row += 1
                if self.row == len(self.lines):
                    self.lines.append("")
            elif m := re.fullmatch(r"\x1b\[(\d*)([A-Za-z])", token):
                n, op = int(m.group(1) or 1), m.group(2)
                if op == "F":  # to the start of the line n lines up
                    self.row = max(0, self.row - n)
                elif op == "K":
                    self.lines[self.row] = ""
                elif op == "J":  # erase from here to the end of the screen
                    del self.lines[self.row + 1:]
                    self.lines[self.row] = ""
                # colours (m) take no room
            else:
                self.lines[self.row] += token

    @property
    def text(self) -> str:
        return "\n".join(line for line in self.lines if line)


def three_components() -> Registry:
    registry = Registry("shop")
    for name in ("settings", "database", "cache"):
        registry.add(lambda: 1, name=name, provides=name)
    return registry


def test_the_live_lines_are_erased_when_the_start_ends() -> None:
    """Otherwise every component shows twice: in the last live frame, then in the timeline."""
    stream = io.StringIO()
    system = three_components().start()

    async def run() -> None:
        with Progress(system, stream=stream) as progress:
            progress.draw()
            await system.start()
            progress.draw()
        await system.stop()

    asyncio.run(run())
    assert "database" in stream.getvalue()  # it was drawn...
    screen = Screen()
    screen.feed(stream.getvalue())
    assert screen.text == ""  # ...and nothing of it is left


def report_with(**entry: object) -> dict[str, object]:
    component = {"name": "search", "phase": None, "status": "failed", "start_s": 0.0, "duration_s": 0.5,
                 "attempts": 1, "error": None, "reason": None, **entry}
    return {"name": "shop", "status": "degraded", "start_status": "degraded", "duration_s": 0.5,
            "critical_path_s": 0.5, "critical_path": ["search"], "phases": [], "components": [component],
            "validation": [], "loop_blocks": [], "leftovers": {"threads": [], "tasks": [], "fds": []}}


MESSAGE = ("could not reach the search cluster at search.internal:9200 after three connection "
           "attempts; check that the service is running and that SEARCH_URL names it")


def test_the_timeline_has_a_legend_for_its_bars() -> None:
    text = timeline(report_with(), Style(io.StringIO()), columns=100)
    legend = text.splitlines()[1]
    assert "█ critical path" in legend and "▒ other" in legend and "0.500s" in legend


def test_an_error_wraps_between_words_and_keeps_where_on_its_own_line() -> None:
    error = {"type": "ConnectionError", "message": MESSAGE, "where": "/srv/app/search.py:42"}
    lines = timeline(report_with(error=error), Style(io.StringIO()), columns=60).splitlines()
    row = next(i for i, line in enumerate(lines) if line.lstrip().startswith("search "))
    below = lines[row + 1:]
    assert lines[row].rstrip().endswith("failed")  # the bar's line holds no message to wrap
    assert below[-1].strip() == "at /srv/app/search.py:42"
    message_lines = below[:-1]
    assert all(len(line) <= 60 for line in message_lines)
    words = " ".join(line.strip() for line in message_lines).split()
    assert words == f"ConnectionError: {MESSAGE}".split()  # no word was cut in two


def test_the_live_line_of_a_failure_keeps_where_it_failed() -> None:
    from daybreak.report import ErrorInfo
    from daybreak.system import ComponentState

    progress = Progress.__new__(Progress)
    progress.stream = io.StringIO()  # not a terminal: 120 columns
    progress.style = Style(progress.stream)
    state = ComponentState("search")
    state.status = "failed"
    state.error = ErrorInfo("ConnectionError", MESSAGE, "/srv/app/search.py:42")
    line = progress._line("search", state, 1.0)
    assert len(line) <= 120
    assert line.endswith(" at /srv/app/search.py:42") and "ConnectionError: could not reach" in line


def test_the_live_line_says_why_a_component_retries() -> None:
    registry = Registry("shop")
    attempts: list[int] = []
    gate: dict[str, asyncio.Event] = {}

    @registry.component(retries=2, backoff=0)
    async def database() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("connection refused by 127.0.0.1:5432")
        gate["waiting"].set()
        await gate["go"].wait()
        return 1

    async def run() -> str:
        gate["waiting"], gate["go"] = asyncio.Event(), asyncio.Event()
        system = registry.start()
        progress = Progress(system, stream=io.StringIO())
        starting = asyncio.ensure_future(system.start())
        await gate["waiting"].wait()  # the second attempt is running
        line = progress._line("database", system.state.components["database"], 0.0)
        gate["go"].set()
        await starting
        assert system.state.components["database"].error is None  # started: the retry's error is gone
        await system.stop()
        return line

    line = asyncio.run(run())
    assert "attempt 2" in line and "retrying after ConnectionError: connection refused by 127.0.0.1:5432" in line
