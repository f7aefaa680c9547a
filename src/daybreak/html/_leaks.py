"""The leak checker's section: verdict, growth charts, growing sites, and every kind's findings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from daybreak.html._tables import _table
from daybreak.html._values import _badge, _bytes, _code, _e, _f, _int, _map, _maps, _nice_step, _num, _text

_Series = tuple[str, int, Sequence[tuple[float, float]]]  # name, colour 1-4, (x, y) points


def _line_chart(chart_id: str, title: str, series: Sequence[_Series], fmt: Any, warmup: int,
                width: int = 520, height: int = 210) -> str:
    points = [p for _, _, pts in series for p in pts]
    if not points:
        return ""
    left, right, top, bottom = 64, 14, 26, 30
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_min, x_max = min(xs), max(xs)
    if x_max == x_min:
        x_max = x_min + 1
    y_min, y_max = min(ys), max(ys)
    if y_max == y_min:
        y_min, y_max = (y_min - 1, y_max + 1) if y_min else (0.0, 1.0)
    span = y_max - y_min
    step = _nice_step(span, 4)
    y_lo = math.floor((y_min - span * 0.05) / step) * step
    y_hi = math.ceil((y_max + span * 0.05) / step) * step
    if y_min >= 0 > y_lo:
        y_lo = 0.0
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x_min) / (x_max - x_min) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y_lo) / (y_hi - y_lo) * ph

    out = [f'<svg id="{_e(chart_id)}" class="chart" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="{_e(title)}">',
           f'<text class="chart-title" x="{left}" y="15">{_e(title)}</text>']
    if warmup > 0:
        wx = sx(min(x_max, x_min + warmup - 0.5)) if warmup < len(set(xs)) else sx(x_max)
        out.append(f'<rect class="warmup" x="{left}" y="{top}" width="{_f(max(0.0, wx - left))}" '
                   f'height="{ph}"><title>warm-up cycles, not counted</title></rect>')
        out.append(f'<text class="axis" x="{left + 4}" y="{top + 12}">warm-up</text>')
    tick = y_lo
    guard = 0
    while tick <= y_hi + step * 1e-6 and guard < 20:
        out.append(f'<line class="grid" x1="{left}" y1="{_f(sy(tick))}" x2="{width - right}" '
                   f'y2="{_f(sy(tick))}"/>')
        out.append(f'<text class="axis" x="{left - 6}" y="{_f(sy(tick) + 4)}" text-anchor="end">'
                   f"{_e(fmt(tick))}</text>")
        tick += step
        guard += 1
    cycles = sorted(set(xs))
    stride = max(1, math.ceil(len(cycles) / 10))
    for i, c in enumerate(cycles):
        if i % stride == 0 or i == len(cycles) - 1:
            out.append(f'<text class="axis" x="{_f(sx(c))}" y="{height - bottom + 16}" '
                       f'text-anchor="middle">{_e(_f(c))}</text>')
    out.append(f'<text class="axis" x="{width - right}" y="{height - 4}" text-anchor="end">cycle</text>')
    out.append(f'<line class="grid major" x1="{left}" y1="{top + ph}" x2="{width - right}" '
               f'y2="{top + ph}"/>')
    for name, si, pts in series:
        if not pts:
            continue
        coords = " ".join(f"{_f(sx(x))},{_f(sy(y))}" for x, y in pts)
        out.append(f'<g class="line" data-series="{_e(name)}"><polyline class="series s{si}" '
                   f'points="{coords}"/>')
        for x, y in pts:
            out.append(f'<circle class="dot s{si}" cx="{_f(sx(x))}" cy="{_f(sy(y))}" r="3">'
                       f"<title>{_e(name)} · cycle {_e(_f(x))}: {_e(fmt(y))}</title></circle>")
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _leaks_section(leaks: Mapping[str, Any]) -> str:
    verdict = leaks.get("verdict")
    growth = _num(leaks.get("growth_bytes_per_cycle"))
    threshold = _num(leaks.get("threshold_bytes"))
    cycles, warmup = _int(leaks.get("cycles")), _int(leaks.get("warmup")) or 0
    facts = []
    if cycles is not None:
        facts.append(f"{cycles} cycles" + (f" after {warmup} warm-up" if warmup else ""))
    if growth is not None:
        facts.append(f"memory {_bytes(growth, signed=True)} per cycle"
                     + (f" (threshold {_bytes(threshold)})" if threshold is not None else ""))
    native = _num(leaks.get("native_growth_bytes_per_cycle"))
    if native is not None and leaks.get("native_source") not in (None, "none"):
        native_threshold = _num(leaks.get("native_threshold_bytes"))
        facts.append(f"native {_bytes(native, signed=True)} per cycle"
                     + (f" (threshold {_bytes(native_threshold)})" if native_threshold is not None else ""))
    kinds = leaks.get("kinds")
    if isinstance(kinds, Mapping):
        leaking = [str(k) for k, v in kinds.items() if v == "leak"]
        if leaking:
            facts.append("leaking: " + ", ".join(leaking))
    samples = sorted(_maps(leaks.get("samples")), key=lambda s: _num(s.get("cycle")) or 0.0)

    def series(key: str) -> list[tuple[float, float]]:
        out = []
        for i, s in enumerate(samples):
            value = _num(s.get(key))
            if value is not None:
                cycle = _num(s.get("cycle"))
                out.append((cycle if cycle is not None else float(i), value))
        return out

    charts = []
    mem = _line_chart("leak-memory", "Traced memory after each cycle",
                      [("traced bytes", 1, series("traced_bytes"))], _bytes, warmup)
    if mem:
        charts.append(f"<div>{mem}</div>")
    if leaks.get("native_source") not in (None, "none"):
        nat = _line_chart("leak-native", f"Allocator's bytes in use after each cycle ({leaks.get('native_source')})",
                          [("native bytes", 1, series("native_bytes"))], _bytes, warmup)
        if nat:
            charts.append(f"<div>{nat}</div>")
    counted: list[_Series] = [(k, i, series(k)) for i, k in enumerate(("threads", "tasks", "fds"), 2)]
    counted = [c for c in counted if c[2]]
    if counted:
        legend = "".join(f'<span><i class="sw line l{i}"></i>{_e(k)}</span>' for k, i, _ in counted)
        chart = _line_chart("leak-counts", "Threads, tasks and fds alive after each cycle",
                            counted, lambda v: f"{v:.0f}", warmup)
        charts.append(f'<div>{chart}<div class="legend" style="margin:4px 0 0 64px">{legend}</div></div>')
    parts = [f'<section id="leaks"><div class="section-head"><h2>Leaks across start/stop cycles</h2>'
             f'{_badge(verdict, _text(verdict) or "unknown")}'
             f'<span class="note">{_e(" · ".join(facts))}</span></div>']
    if charts:
        parts.append(f'<div class="cols">{"".join(charts)}</div>')
    sites = _maps(leaks.get("sites"))
    if sites:
        rows = [f'<tr><td>{_code(s.get("where"))}</td>'
                f'<td class="num">{_e(_bytes(_num(s.get("bytes_per_cycle")), signed=True))}</td>'
                f'<td class="num">{_e(s.get("count_per_cycle"))}</td></tr>' for s in sites]
        parts.append("<h3>Growing allocation sites</h3>"
                     + _table(("Where", "Bytes / cycle", "Objects / cycle"), rows, (1, 2)))
    library = leaks.get("library")
    if library and kinds_leak(leaks, "memory"):
        parts.append(f'<p class="note">Every growing site is inside the installed library '
                     f"{_code(library)}, not in the project's code.</p>")
    unclosed = _maps(leaks.get("unclosed"))
    if unclosed:
        rows = [f'<tr><td>{_code(u.get("what"))}</td><td>{_code(u.get("where"))}</td>'
                f'<td class="name">{_e(u.get("component") or "")}</td>'
                f'<td>{_e(u.get("message"))}</td><td class="num">{_e(u.get("per_cycle"))}</td></tr>'
                for u in unclosed]
        parts.append("<h3>Closed only by the garbage collector</h3>"
                     + _table(("What", "Created at", "Component", "As reported", "Per cycle"), rows, (4,)))
    hooks = _maps(leaks.get("hooks"))
    if hooks:
        rows = [f'<tr><td>{_e(h.get("kind"))}</td><td>{_code(h.get("detail"))}</td>'
                f'<td>{_code(h.get("where"))}</td><td class="num">{_e(h.get("per_cycle"))}</td></tr>'
                for h in hooks]
        parts.append("<h3>Hooks added every cycle</h3>"
                     + _table(("Kind", "Detail", "Where", "Per cycle"), rows, (3,)))
    for key, title in (("threads", "Threads"), ("tasks", "Tasks")):
        items = _maps(leaks.get(key))
        if items:
            rows = [f'<tr><td class="name">{_e(t.get("name"))}</td><td>{_code(t.get("where"))}</td>'
                    f'<td class="num">{_e(t.get("per_cycle"))}</td></tr>' for t in items]
            parts.append(f"<h3>{title} added every cycle</h3>"
                         + _table(("Name", "Where", "Per cycle"), rows, (2,)))
    fds = _maps(leaks.get("fds"))
    if fds:
        rows = [f'<tr><td>{_e(f.get("kind"))}</td><td>{_code(f.get("detail"))}</td>'
                f'<td class="num">{_e(f.get("per_cycle"))}</td></tr>' for f in fds]
        parts.append("<h3>File descriptors added every cycle</h3>"
                     + _table(("Kind", "Detail", "Per cycle"), rows, (2,)))
    allowed = _maps(leaks.get("allowed"))
    if allowed:  # the policy's allow-list: not part of the verdict, but in sight
        rows = [f'<tr><td>{_e(a.get("kind"))}</td><td>{_code(a.get("where"))}</td>'
                f'<td class="num">{_e(a.get("per_cycle"))}</td><td>{_e(a.get("reason"))}</td></tr>' for a in allowed]
        parts.append("<h3>Allowed (pyproject.toml)</h3>" + _table(("Kind", "Where", "Per cycle", "Reason"), rows, (2,)))
    for text in (*(_text(h) for h in leaks.get("hints") or ()),
                 _text(_map(leaks.get("error")).get("summary"))):
        if text:
            parts.append(f'<p class="note">{_e(text)}</p>')
    objects = _maps(leaks.get("objects"))
    if objects:
        rows = [f'<tr><td>{_code(o.get("type"))}</td><td class="num">{_e(o.get("per_cycle"))}</td></tr>'
                for o in objects]
        parts.append("<h3>Objects growing every cycle</h3>" + _table(("Type", "Per cycle"), rows, (1,)))
    if not (charts or sites or objects or fds or allowed or unclosed or hooks or leaks.get("error")
            or _maps(leaks.get("threads")) or _maps(leaks.get("tasks"))):
        parts.append('<p class="empty">No samples or growing resources recorded.</p>')
    parts.append("</section>")
    return "".join(parts)


def kinds_leak(leaks: Mapping[str, Any], kind: str) -> bool:
    kinds = leaks.get("kinds")
    return isinstance(kinds, Mapping) and kinds.get(kind) == "leak"
