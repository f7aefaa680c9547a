"""The self-contained HTML report: structure, escaping, optional sections, and a real browser."""

from __future__ import annotations

import asyncio
import html.parser
import itertools
import json
import os
import re
import shutil
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daybreak import Disabled, Registry
from daybreak.html import render, write_report

SCRIPT = "<script>alert(1)</script>"


# -- a realistic report ------------------------------------------------------------------------------


class Settings: ...
class Mailer: ...
class Database: ...
class Cache: ...
class Search: ...
class Analytics: ...
class Agent: ...
class Hub: ...


def build_registry() -> Registry:
    """Seven phases; a disabled, a failing optional, a hanging optional, a skipped, a slow one."""
    r = Registry("chat-backend", phases=("init", "dependencies", "database", "cache",
                                         "services", "websocket", "finalize"))

    @r.component(phase="init")
    def settings() -> Settings:
        return Settings()

    @r.component(phase="dependencies")
    async def mailer(s: Settings) -> Mailer:
        raise Disabled("MAIL_URL is not set")

    @r.component(phase="database", timeout=5)
    async def database(s: Settings) -> AsyncIterator[Database]:
        await asyncio.sleep(0.08)  # the slow one
        yield Database()

    @database.check
    async def database_ping(db: Database) -> None:
        await asyncio.sleep(0.005)

    @r.component(phase="cache", optional=True)
    async def cache(s: Settings) -> Cache:
        raise ConnectionRefusedError(f"redis at {SCRIPT} refused the connection")

    @r.component(phase="services", optional=True)
    async def search(c: Cache) -> Search:  # skipped: needs the failed cache
        return Search()

    @r.component(phase="services", optional=True, timeout=0.1)
    async def analytics(s: Settings) -> Analytics:
        await asyncio.Event().wait()  # hangs: the report shows this line
        return Analytics()

    @r.component(phase="services")
    async def agent(db: Database, c: Cache | None) -> Agent:
        time.sleep(0.12)  # noqa: ASYNC251 - blocks the loop on purpose: a loop block
        return Agent()

    @r.component(phase="websocket")
    async def hub(a: Agent) -> Hub:
        await asyncio.sleep(0.02)
        return Hub()

    @r.validator(phase="finalize")
    async def chat_round_trip(h: Hub, a: Agent) -> None:
        await asyncio.sleep(0.005)

    return r


FAKE_LEAKS: dict[str, Any] = {
    "verdict": "leak", "cycles": 6, "warmup": 2, "growth_bytes_per_cycle": 40960.0,
    "threshold_bytes": 4096,
    "sites": [{"where": "app/cache.py:41", "bytes_per_cycle": 40960, "count_per_cycle": 12}],
    "threads": [{"name": "pool-worker", "where": "app/db.py:90", "per_cycle": 1}],
    "tasks": [],
    "fds": [{"kind": "socket", "detail": "tcp 127.0.0.1:5432", "per_cycle": 1}],
    "objects": [{"type": "dict", "per_cycle": 40}],
    "samples": [{"cycle": i, "traced_bytes": 2_000_000 + 40_960 * i, "threads": 3 + i,
                 "tasks": 4, "fds": 10 + i} for i in range(8)],
}

FAKE_IMPORTS: dict[str, Any] = {
    "verdict": "dirty",
    "modules": [
        {"name": "app", "seconds": 0.01, "side_effects": []},
        {"name": "app.db", "seconds": 0.3, "side_effects": [
            {"event": "socket.connect", "detail": "('10.0.0.5', 5432)", "where": "app/db.py:12"}]},
        {"name": "app.models", "seconds": 0.12, "side_effects": []},
    ],
    "cycles": [["app.models", "app.routes"]],
    "hung": [{"module": "app.search", "where": "app/search.py:3"}],
    "errors": [],
}


@pytest.fixture(scope="module")
def real_doc() -> dict[str, Any]:
    registry = build_registry()

    async def main() -> dict[str, Any]:
        async with registry.start() as system:
            pass
        return system.report().to_dict()

    return {"start": asyncio.run(main()), "plan": registry.plan().to_dict(),
            "leaks": FAKE_LEAKS, "imports": FAKE_IMPORTS, "verdict": "fail",
            "failures": ["leaks: resources grow across start/stop cycles"],
            "target": "app.main:registry"}


# -- helpers ------------------------------------------------------------------------------------------


def parse(page: str) -> ET.Element:
    """The page as XML: it must be well-formed, not just HTML-parseable."""
    return ET.fromstring(page)


def drawn(start: dict[str, Any]) -> dict[str, str]:
    """What the timeline draws: every component, and every validator that ran."""
    rows = {c["name"]: c["status"] for c in start["components"]}
    rows.update({v["name"]: v["status"] for v in start["validation"]
                 if v["kind"] == "validator" and v.get("start_s") is not None})
    return rows


def by_id(root: ET.Element, ident: str) -> ET.Element | None:
    return next((e for e in root.iter() if e.get("id") == ident), None)


def with_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())


# -- structure ------------------------------------------------------------------------------------------


class TestStructure:
    def test_page_is_well_formed_and_self_contained(self, real_doc: dict[str, Any]) -> None:
        """No script, no external resource, one document."""
        page = render(real_doc)
        root = parse(page)
        assert root.tag == "html"
        assert not [e for e in root.iter() if e.tag == "script"]
        assert not [e for e in root.iter() if e.tag in ("link", "img", "iframe")]
        for attr in ("src", "href"):
            for e in root.iter():
                value = e.get(attr)
                assert value is None or value.startswith("#"), (e.tag, value)
        assert "http://" not in page and "https://" not in page

    def test_one_bar_per_component_with_its_status(self, real_doc: dict[str, Any]) -> None:
        root = parse(render(real_doc))
        timeline = by_id(root, "timeline")
        assert timeline is not None and timeline.tag == "svg"
        bars = {g.get("data-component"): g.get("data-status") for g in with_class(timeline, "bar")}
        expected = drawn(real_doc["start"])
        assert bars == expected
        assert bars["chat_round_trip"] == "passed"  # validators get a bar of their own
        assert bars["cache"] == "failed"
        assert bars["mailer"] == "disabled"
        assert bars["search"] == "skipped"
        assert bars["database"] == "stopped"
        for g in with_class(timeline, "bar"):
            assert g[0].tag == "title"  # a tooltip per bar
            assert g.get("data-component") in text_of(g[0])

    def test_bars_are_placed_by_start_and_duration(self, real_doc: dict[str, Any]) -> None:
        timeline = by_id(parse(render(real_doc)), "timeline")
        assert timeline is not None
        rects = {}
        for g in with_class(timeline, "bar"):
            solid = [r for r in g if r.tag == "rect" and "hit" not in r.get("class", "")]
            rects[g.get("data-component")] = solid[0]
        start = {c["name"]: c for c in real_doc["start"]["components"]}
        x = {name: float(r.get("x", "0")) for name, r in rects.items()}
        w = {name: float(r.get("width", "0")) for name, r in rects.items()}
        assert x["settings"] < x["database"] < x["agent"] < x["hub"]
        assert w["database"] > w["settings"]
        assert start["agent"]["start_s"] >= start["database"]["start_s"] + start["database"]["duration_s"]
        assert x["agent"] >= x["database"] + w["database"] - 1
        assert "optional" not in (rects["database"].get("class") or "")
        assert "opt" in (rects["cache"].get("class") or "").split()  # dashed outline
        assert "ghost" in (rects["search"].get("class") or "").split()  # never started

    def test_critical_path_is_marked_in_timeline_and_graph(self, real_doc: dict[str, Any]) -> None:
        root = parse(render(real_doc))
        path = real_doc["start"]["critical_path"]
        assert len(path) >= 3
        timeline, graph = by_id(root, "timeline"), by_id(root, "graph")
        assert timeline is not None and graph is not None
        components = set(drawn(real_doc["start"]))
        marked = {g.get("data-component") for g in with_class(timeline, "bar")
                  if g.get("data-critical-path") == "true"}
        assert marked == set(path) & components
        for g in with_class(timeline, "bar"):
            rect = next(r for r in g if r.tag == "rect" and "hit" not in r.get("class", ""))
            assert ("cp" in rect.get("class", "").split()) == (g.get("data-component") in marked)
        nodes = {g.get("data-component"): g for g in with_class(graph, "node")}
        assert {n for n, g in nodes.items() if g.get("data-critical-path") == "true"} == set(path)
        cp_edges = {(g.get("data-from"), g.get("data-to")) for g in with_class(graph, "edge")
                    if "cp" in g.get("class", "").split()}
        assert cp_edges == set(itertools.pairwise(path))

    def test_graph_has_a_node_per_component_and_validator_and_an_edge_per_dependency(
            self, real_doc: dict[str, Any]) -> None:
        graph = by_id(parse(render(real_doc)), "graph")
        assert graph is not None
        nodes = {g.get("data-component"): g for g in with_class(graph, "node")}
        assert set(nodes) == {c["name"] for c in real_doc["plan"]["components"]}
        assert nodes["chat_round_trip"].get("data-kind") == "validator"
        assert nodes["cache"].get("data-status") == "failed"
        levels = {name: i for i, level in enumerate(real_doc["plan"]["levels"]) for name in level}
        assert {n: int(g.get("data-level", "-1")) for n, g in nodes.items()} == levels
        edges = {(g.get("data-from"), g.get("data-to")) for g in with_class(graph, "edge")}
        for c in real_doc["plan"]["components"]:
            for dep in c["depends_on"]:
                assert (dep, c["name"]) in edges

    def test_levels_are_computed_from_depends_on_without_a_plan(self) -> None:
        start = {"name": "x", "status": "ready", "components": [
            {"name": "c", "status": "started", "depends_on": ["b"]},
            {"name": "a", "status": "started", "depends_on": []},
            {"name": "b", "status": "started", "depends_on": ["a"]},
            {"name": "d", "status": "started", "depends_on": ["a", "c"]},
            {"name": "loop1", "status": "started", "depends_on": ["loop2"]},
            {"name": "loop2", "status": "started", "depends_on": ["loop1"]},
        ]}
        graph = by_id(parse(render({"start": start})), "graph")
        assert graph is not None
        levels = {g.get("data-component"): g.get("data-level") for g in with_class(graph, "node")}
        assert levels["a"] == "0" and levels["b"] == "1" and levels["c"] == "2" and levels["d"] == "3"
        assert {levels["loop1"], levels["loop2"]} <= {"0", "1"}  # a cycle does not recurse forever

    def test_failures_show_where_and_the_hang_stack(self, real_doc: dict[str, Any]) -> None:
        root = parse(render(real_doc))
        failures = by_id(root, "failures")
        assert failures is not None and failures.tag == "section"
        cards = {a.get("data-component"): a for a in failures.iter("article")}
        assert {"cache", "analytics"} <= set(cards)
        analytics = next(c for c in real_doc["start"]["components"] if c["name"] == "analytics")
        where = analytics["hang"]["where"]
        assert where and "test_html.py" in where
        card = cards["analytics"]
        assert where in text_of(card)
        details = list(card.iter("details"))
        assert details, "the stuck task's frames are collapsible"
        hot = [li for li in card.iter("li") if li.get("class") == "hot"]
        assert hot and where in text_of(hot[0])
        thread_names = {t["name"] for t in analytics["hang"]["threads"]}
        assert any(name in text_of(card) for name in thread_names)
        cache = next(c for c in real_doc["start"]["components"] if c["name"] == "cache")
        assert cache["error"]["where"] in text_of(cards["cache"])

    def test_validation_loop_blocks_leaks_and_imports_sections(self, real_doc: dict[str, Any]) -> None:
        root = parse(render(real_doc))
        validation = by_id(root, "validation")
        assert validation is not None
        names = {tr.get("data-name"): tr.get("data-status") for tr in validation.iter("tr")
                 if tr.get("data-name")}
        assert names == {"database_ping": "passed", "chat_round_trip": "passed"}
        if real_doc["start"]["loop_blocks"]:
            blocks = by_id(root, "loop-blocks")
            assert blocks is not None and "agent" in text_of(blocks)
        leaks = by_id(root, "leaks")
        assert leaks is not None and "leak" in text_of(leaks) and "app/cache.py:41" in text_of(leaks)
        memory = by_id(leaks, "leak-memory")
        assert memory is not None
        line = next(e for e in memory.iter("polyline"))
        assert len(line.get("points", "").split()) == len(FAKE_LEAKS["samples"])
        counts = by_id(leaks, "leak-counts")
        assert counts is not None
        assert {g.get("data-series") for g in with_class(counts, "line")} == {"threads", "tasks", "fds"}
        imports = by_id(root, "imports")
        assert imports is not None
        text = text_of(imports)
        for needle in ("socket.connect", "app/db.py:12", "app.search", "app/search.py:3",
                       "app.models", "app.routes", "dirty"):
            assert needle in text
        summary = by_id(root, "summary")
        assert "leaks: resources grow" in text_of(summary if summary is not None else root)


class TestEscaping:
    def test_user_strings_never_become_markup(self, real_doc: dict[str, Any]) -> None:
        page = render(real_doc)
        assert SCRIPT not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        root = parse(page)
        assert not [e for e in root.iter() if e.tag == "script"]
        failures = by_id(root, "failures")
        assert failures is not None and SCRIPT in text_of(failures)  # shown, as text

    def test_names_with_quotes_and_angle_brackets_in_attributes(self) -> None:
        evil = 'x" onload="alert(1)<b>&amp;'
        start = {"name": evil, "status": "failed", "critical_path": [evil],
                 "components": [{"name": evil, "status": "failed", "start_s": 0.0,
                                 "duration_s": 0.1, "phase": evil, "depends_on": [],
                                 "error": {"type": "<T>", "message": SCRIPT, "where": "<w>:1"}}],
                 "phases": [{"name": evil, "status": "failed", "start_s": 0, "duration_s": 0.1}],
                 "error": {"type": "<T>", "message": SCRIPT, "where": None}}
        page = render({"start": start, "imports": {"verdict": SCRIPT, "modules": [
            {"name": SCRIPT, "seconds": 1, "side_effects": [{"event": SCRIPT, "detail": SCRIPT,
                                                            "where": SCRIPT}]}]}})
        assert SCRIPT not in page and "<b>" not in page and 'onload="' not in page
        root = parse(page)
        timeline = by_id(root, "timeline")
        assert timeline is not None
        assert [g.get("data-component") for g in with_class(timeline, "bar")] == [evil]
        assert not [e for e in root.iter() if e.get("onload") is not None]


class TestSections:
    def test_start_only_has_no_leaks_or_imports(self, real_doc: dict[str, Any]) -> None:
        root = parse(render({"start": real_doc["start"]}))
        ids = {e.get("id") for e in root.iter()}
        assert {"summary", "timeline", "graph", "failures", "validation", "components"} <= ids
        assert not ids & {"leaks", "imports"}

    def test_leaks_only(self) -> None:
        root = parse(render({"leaks": FAKE_LEAKS}))
        ids = {e.get("id") for e in root.iter()}
        assert "leaks" in ids
        assert not ids & {"timeline", "graph", "failures", "imports", "validation"}

    def test_clean_start_has_no_failures_section(self) -> None:
        r = Registry("tiny")

        @r.component
        def settings() -> Settings:
            return Settings()

        async def main() -> dict[str, Any]:
            async with r.start() as system:
                pass
            return system.report().to_dict()

        root = parse(render({"start": asyncio.run(main())}))
        ids = {e.get("id") for e in root.iter()}
        assert "timeline" in ids and "failures" not in ids and "leftovers" not in ids
        timeline = by_id(root, "timeline")
        assert timeline is not None
        assert [g.get("data-status") for g in with_class(timeline, "bar")] == ["stopped"]

    def test_a_bare_report_or_plan_is_accepted(self, real_doc: dict[str, Any]) -> None:
        ids = {e.get("id") for e in parse(render(real_doc["start"])).iter()}
        assert "timeline" in ids
        ids = {e.get("id") for e in parse(render(real_doc["plan"])).iter()}
        assert "graph" in ids and "timeline" not in ids

    def test_empty_document(self) -> None:
        root = parse(render({}))
        assert "Nothing to report" in text_of(root)

    def test_doctor_verdict_in_header(self) -> None:
        page = render({"verdict": "pass", "leaks": {"verdict": "clean"}})
        root = parse(page)
        badges = [text_of(b) for b in with_class(root, "badge")]
        assert "doctor: pass" in badges

    @pytest.mark.parametrize("doc", [
        {"start": {"components": [{"name": "x"}]}},
        {"start": {"components": "nope", "phases": None, "validation": [None, 3],
                   "leftovers": {"threads": [{}], "tasks": None, "fds": [{"fd": 3}]}}},
        {"start": {"components": [{"name": "a", "start_s": "soon", "duration_s": float("nan"),
                                   "depends_on": None, "hang": {"tasks": [{}], "threads": [{}]},
                                   "error": {}, "stop": {"status": "failed", "error": {"type": "E"}}}],
                   "critical_path": None, "loop_blocks": [{}]}},
        {"plan": {"levels": [["ghost"]], "components": [{"name": "a", "depends_on": ["missing"]}]}},
        {"leaks": {"samples": [{}, {"cycle": 1, "traced_bytes": 5}], "sites": [{}]}},
        {"leaks": {"samples": [{"cycle": 0, "traced_bytes": 7, "threads": 1}]}},
        {"imports": {"modules": [{"name": "m"}, {}], "cycles": [[], ["a"]], "hung": [{}],
                     "errors": [{}]}},
        {"verdict": None, "status": "weird"},
    ])
    def test_missing_and_odd_keys_do_not_break_the_page(self, doc: dict[str, Any]) -> None:
        parse(render(doc))

    def test_three_hundred_components_fit(self) -> None:
        comps = [{"name": f"component_{i:03d}_" + "x" * (i % 50), "phase": f"p{i // 60}",
                  "status": "started" if i % 7 else "failed", "critical": bool(i % 3),
                  "start_s": i * 0.01, "duration_s": 0.05,
                  "depends_on": [f"component_{i - 1:03d}_" + "x" * ((i - 1) % 50)] if i % 5 else []}
                 for i in range(300)]
        start = {"name": "big", "status": "degraded", "duration_s": 3.05, "components": comps,
                 "phases": [{"name": f"p{k}", "status": "done"} for k in range(5)],
                 "critical_path": [comps[0]["name"], comps[1]["name"]]}
        root = parse(render({"start": start}))
        timeline = by_id(root, "timeline")
        assert timeline is not None
        assert len(with_class(timeline, "bar")) == 300
        height = float(timeline.get("height", "0"))
        assert 2000 < height < 300 * 16  # rows shrink
        labels = [text_of(t) for g in with_class(timeline, "bar") for t in g.iter("text")
                  if "lbl" in (t.get("class") or "").split()]
        assert any(label.endswith("…") for label in labels)  # long names are cut
        assert max(len(label) for label in labels) < 60
        graph = by_id(root, "graph")
        assert graph is not None
        assert float(graph.get("width", "0")) <= 1100  # wraps instead of growing sideways
        assert len(with_class(graph, "node")) == 300


def test_write_report(tmp_path: Path, real_doc: dict[str, Any]) -> None:
    target = tmp_path / "report.html"
    write_report(target, real_doc)
    assert target.read_text(encoding="utf-8") == render(real_doc)
    write_report(str(target), {"leaks": FAKE_LEAKS})  # replaces it
    assert 'id="leaks"' in target.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


# -- a real browser -----------------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _decode_png(data: bytes, max_rows: int) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel, and the first `max_rows` rows (8-bit RGB/RGBA PNG)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
    raw = zlib.decompressobj().decompress(b"".join(idat), 0)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(min(height, max_rows)):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b, c = prev[i], prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def _run(rows: list[bytes], channels: int, red: tuple[int, int], green: tuple[int, int],
         blue: tuple[int, int], min_px: int) -> bool:
    """Whether some row has `min_px` pixels in a row within the given channel ranges."""
    pixel = b"".join(b"[\\x%02x-\\x%02x]" % bounds for bounds in (red, green, blue))
    pattern = re.compile(b"(?:" + pixel + (b"." if channels == 4 else b"") + b"){%d}" % min_px,
                         re.DOTALL)
    return any(pattern.search(row) for row in rows)


class _DomScan(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, list[dict[str, str | None]]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for cls in (a.get("class") or "").split():
            self.found.setdefault(cls, []).append(a)
        if a.get("id"):
            self.found.setdefault("#" + str(a["id"]), []).append(a)


def test_chromium_renders_the_report(tmp_path: Path, real_doc: dict[str, Any]) -> None:
    """Headless Chromium loads the page: the bars and nodes are in its DOM and it paints.

    Skipped without chromium unless CI=true. DAYBREAK_HTML_SCREENSHOT=FILE keeps the PNG.
    """
    browser = _chromium()
    if browser is None:
        if _ci():
            pytest.fail("CI=true but no chromium on PATH (apt-get install -y chromium)")
        pytest.skip("chromium is not installed")
    page = tmp_path / "report.html"
    write_report(page, real_doc)
    png = tmp_path / "report.png"
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000"]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=60, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    scan = _DomScan()
    scan.feed(dom.stdout)
    assert "#timeline" in scan.found and "#graph" in scan.found and "#failures" in scan.found
    bars = {a.get("data-component"): a.get("data-status") for a in scan.found.get("bar", [])}
    assert bars == drawn(real_doc["start"])
    nodes = {a.get("data-component") for a in scan.found.get("node", [])}
    assert nodes == {c["name"] for c in real_doc["plan"]["components"]}
    assert "script" not in set(scan.found)  # nothing became a tag

    shot = subprocess.run([*base, f"--screenshot={png}", page.as_uri()], capture_output=True,
                          text=True, timeout=60, check=False)
    assert shot.returncode == 0, shot.stderr[-2000:]
    if os.environ.get("DAYBREAK_HTML_SCREENSHOT"):
        shutil.copyfile(png, os.environ["DAYBREAK_HTML_SCREENSHOT"])
    data = png.read_bytes()
    assert len(data) > 30_000, "a near-empty screenshot"
    width, height, channels, rows = _decode_png(data, max_rows=1300)
    assert (width, height) == (1280, 2000)
    colours = set()
    for row in rows[::7]:
        for x in range(0, width * channels, channels * 5):
            colours.add(row[x:x + 3])
    assert len(colours) > 40, "the page is (nearly) a single colour"

    # Bars, not just the legend's 18 px swatches: a horizontal run of at least 40 px of a
    # status colour. Started bars are painted flat; optional (failed) ones are translucent.
    assert _run(rows, channels, (0x4A, 0x4A), (0xC2, 0xC2), (0x6B, 0x6B), 40), "no green bar"
    assert _run(rows, channels, (0xE8, 0xFF), (0x70, 0xB0), (0x60, 0xB0), 40), "no red bar"


# -- layout, measured by the browser ---------------------------------------------------------------

_MEASURE = """<script>
const out = {overflowing: [], broken: []};
for (const card of document.querySelectorAll("section, .card")) {
  const box = card.getBoundingClientRect();
  for (const table of card.querySelectorAll("table")) {
    const wrap = table.closest(".table-wrap");
    const seen = (wrap || table).getBoundingClientRect();
    if (seen.right > box.right + 0.5) out.overflowing.push(card.id || card.className);
  }
}
for (const code of document.querySelectorAll("td code.type")) {
  if (code.getClientRects().length > 1 || code.getBoundingClientRect().height > 24) out.broken.push(code.textContent);
}
document.body.setAttribute("data-layout", JSON.stringify(out));
</script>"""


def test_tables_stay_in_their_cards_and_type_names_stay_whole(tmp_path: Path,
                                                               real_doc: dict[str, Any]) -> None:
    """Measured in headless Chromium: a wide components table scrolls inside its card, and a
    long type name is never broken inside a word."""
    browser = _chromium()
    if browser is None:
        if _ci():
            pytest.fail("CI=true but no chromium on PATH (apt-get install -y chromium)")
        pytest.skip("chromium is not installed")
    start = json.loads(json.dumps(real_doc["start"]))
    long_type = "ConnectionPoolForTheOrdersDatabaseWithReadReplicasAndFailover"
    for c in start["components"]:
        c["provides"] = f"myservice.infrastructure.{long_type}"
        c["reason"] = "x" * 40 + " a long explanation of why it is switched off " * 4
    page = tmp_path / "report.html"
    page.write_text(render({"start": start, "plan": real_doc["plan"]}).replace("</body>", _MEASURE + "</body>"))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
                          "--window-size=1000,2000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=60, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'data-layout="([^"]*)"', dom.stdout)
    assert found, "the measuring script did not run"
    layout = json.loads(html.unescape(found.group(1)))
    assert layout == {"overflowing": [], "broken": []}


def test_a_barrier_on_the_critical_path_is_drawn_and_explained_as_one() -> None:
    registry = Registry("phased", phases=("data", "services"))
    registry.add(lambda: 1, name="database", provides=int, phase="data")
    registry.add(lambda: "x", name="search", provides=str, phase="services")  # no dependency: a barrier

    async def main() -> dict[str, Any]:
        async with registry.start() as system:
            pass
        return system.report().to_dict()

    root = parse(render({"start": asyncio.run(main()), "plan": registry.plan().to_dict()}))
    graph = by_id(root, "graph")
    assert graph is not None
    edges = [(e.get("data-from"), e.get("data-to"), e.get("class")) for e in with_class(graph, "edge")]
    assert edges == [("database", "search", "edge cp barrier")]
    section = by_id(root, "section-graph")
    assert section is not None and "a barrier, not a dependency" in text_of(section)


def test_the_stop_has_a_timeline_of_its_own(real_doc: dict[str, Any]) -> None:
    """Each component's stop as a bar: a dependency stops only after what needs it."""
    root = parse(render(real_doc))
    shutdown = by_id(root, "shutdown")
    assert shutdown is not None and shutdown.tag == "svg"
    bars = {g.get("data-component"): g.get("data-status") for g in with_class(shutdown, "bar")}
    stopped = {c["name"]: c["stop"]["status"] for c in real_doc["start"]["components"] if c["stop"]}
    assert bars == stopped and set(bars.values()) <= {"stopped", "failed"}
    for c in real_doc["start"]["components"]:
        for dependency in c["depends_on"]:
            mine, theirs = c["stop"], next(d["stop"] for d in real_doc["start"]["components"]
                                           if d["name"] == dependency)
            if mine and theirs:
                assert theirs["start_s"] >= mine["start_s"] + mine["duration_s"] - 1e-5
    section = by_id(root, "section-shutdown")
    assert section is not None and "Shutdown timeline" in text_of(section)
