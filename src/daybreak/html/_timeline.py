"""The timeline: one bar per component and validator (a Gantt chart)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from daybreak.html._header import _outcome
from daybreak.html._values import (
    _CHART_W,
    _clip,
    _dur,
    _e,
    _error_text,
    _f,
    _int,
    _map,
    _maps,
    _num,
    _strs,
    _text,
    _tick_label,
    _time_ticks,
    _tone,
    _width,
)


def _timeline_section(start: Mapping[str, Any]) -> str:
    svg = _timeline_svg(start)
    if not svg:
        return ""
    total = _num(start.get("duration_s"))
    note = f"start-up took {_dur(total)}" if total is not None else ""
    cp = _num(start.get("critical_path_s"))
    if cp is not None:
        note += f"{' · ' if note else ''}critical path {_dur(cp)}"
    legend = (
        '<div class="legend">'
        '<span><i class="sw ok"></i>started</span><span><i class="sw bad"></i>failed</span>'
        '<span><i class="sw warn"></i>disabled</span><span><i class="sw muted"></i>skipped / not run</span>'
        '<span><i class="sw opt"></i>optional</span><span><i class="sw cp"></i>critical path</span>'
        '<span><i class="sw line"></i>end of start-up</span></div>'
    )
    return (f'<section id="section-timeline"><div class="section-head"><h2>Start-up timeline</h2>'
            f'<span class="note">{_e(note)}</span></div>{legend}'
            f'<div class="chart-wrap">{svg}</div></section>')


def _shutdown_section(start: Mapping[str, Any]) -> str:
    """The stop drawn like the start: a bar per component from its stop's start to its end."""
    stops = [(c, _map(c.get("stop"))) for c in _maps(start.get("components"))]
    stops = [(c, stop) for c, stop in stops if _num(stop.get("start_s")) is not None]
    if not stops:
        return ""
    first = min(_num(stop.get("start_s")) or 0.0 for _, stop in stops)
    last = max((_num(stop.get("start_s")) or 0.0) + (_num(stop.get("duration_s")) or 0.0) for _, stop in stops)
    entries = [{"name": c.get("name"), "phase": c.get("phase"), "critical": c.get("critical"),
                "provides": c.get("provides"), "depends_on": c.get("depends_on"),
                "status": stop.get("status"), "error": stop.get("error"),
                "start_s": (_num(stop.get("start_s")) or 0.0) - first, "duration_s": stop.get("duration_s")}
               for c, stop in stops]
    svg = _timeline_svg({"components": entries, "phases": [
        {"name": p.get("name")} for p in _maps(start.get("phases"))]},
        svg_id="shutdown", what="shutdown", axis="time since the stop began")
    note = (f"stopping took {_dur(last - first)}: in reverse dependency order, each after what "
            "depends on it, concurrent where independent")
    legend = ('<div class="legend"><span><i class="sw ok"></i>stopped</span>'
              '<span><i class="sw bad"></i>failed (raised, timed out or cut short)</span></div>')
    return (f'<section id="section-shutdown"><div class="section-head"><h2>Shutdown timeline</h2>'
            f'<span class="note">{_e(note)}</span></div>{legend}'
            f'<div class="chart-wrap">{svg}</div></section>')


def _timeline_svg(start: Mapping[str, Any], *, svg_id: str = "timeline", what: str = "start-up",
                  axis: str = "time since start") -> str:
    entries: list[dict[str, Any]] = [dict(c) for c in _maps(start.get("components"))]
    for v in _maps(start.get("validation")):
        if _num(v.get("start_s")) is not None and v.get("kind", "validator") == "validator":
            entries.append({**v, "kind": "validator", "phase": v.get("phase")})
    if not entries:
        return ""
    on_path = set(_strs(start.get("critical_path")))
    phase_rows = {_text(p.get("name")): p for p in _maps(start.get("phases"))}
    order: list[str | None] = list(phase_rows)
    for e in entries:
        ph = e.get("phase")
        key = None if ph is None else _text(ph)
        if key not in order:
            order.append(key)
    groups: dict[str | None, list[tuple[int, dict[str, Any]]]] = {k: [] for k in order}
    for i, e in enumerate(entries):
        ph = e.get("phase")
        groups[None if ph is None else _text(ph)].append((i, e))
    for members in groups.values():
        members.sort(key=lambda ie: (_num(ie[1].get("start_s")) is None,
                                     _num(ie[1].get("start_s")) or 0.0, ie[0]))
    shown = [k for k in order if groups[k] or k in phase_rows]
    headers = not (len(shown) == 1 and shown[0] is None)

    n = len(entries)
    row_h = 26 if n <= 25 else 21 if n <= 60 else 16 if n <= 140 else 12
    font = 12.5 if row_h >= 21 else 11 if row_h >= 16 else 9
    bar_h = max(6, round(row_h * 0.6))
    head_h = (row_h + 6) if headers else 0
    axis_h = 28
    foot_h = 26
    w = _CHART_W
    label_w = 230
    x0 = label_w + 14
    right = 150  # room for the text after the bars that end last
    plot_w = w - x0 - right

    ends = [0.0]
    for e in entries:
        s, d = _num(e.get("start_s")), _num(e.get("duration_s"))
        if s is not None:
            ends.append(s + (d or 0.0))
    for p in phase_rows.values():
        s, d = _num(p.get("start_s")), _num(p.get("duration_s"))
        if s is not None:
            ends.append(s + (d or 0.0))
    ready = _num(start.get("duration_s"))
    if ready is not None:
        ends.append(ready)
    total = max(ends) or 1e-3
    scale = plot_w / total

    def x_of(t: float) -> float:
        return x0 + max(0.0, t) * scale

    bands: list[str] = []
    rows: list[str] = []
    centres: dict[str, tuple[float, float, float]] = {}  # name -> (x start, x end, y middle)
    y = float(axis_h + 4)
    for gi, key in enumerate(shown):
        members = groups[key]
        group_h = head_h + len(members) * row_h
        bands.append(f'<rect class="band{" alt" if gi % 2 else ""}" x="0" y="{_f(y)}" '
                     f'width="{w}" height="{_f(group_h)}"/>')
        if headers:
            p = phase_rows.get(key or "", {})
            ps, pd = _num(p.get("start_s")), _num(p.get("duration_s"))
            meta = " · ".join(x for x in (_text(p.get("status")), _dur(pd) if pd is not None else "") if x)
            title = _text(key) if key is not None else "(no phase)"
            label = _clip(title.upper(), label_w - 16, font)
            ty = y + head_h / 2 + font * 0.36
            rows.append(
                f'<g class="phase" data-phase="{_e(title)}" data-status="{_e(p.get("status"))}">'
                f"<title>{_e(title)}{_e(' — ' + meta) if meta else ''}</title>"
                f'<text class="phase-name" x="8" y="{_f(ty)}" font-size="{font - 1.5}">{_e(label)}</text>')
            if ps is not None:
                px1, px2 = x_of(ps), x_of(ps + (pd or 0.0))
                rows.append(
                    f'<rect class="phase-span {_tone(p.get("status"))}" x="{_f(px1)}" '
                    f'y="{_f(y + head_h / 2 - 2.5)}" width="{_f(max(2.0, px2 - px1))}" height="5" rx="2.5"/>')
                if meta:
                    tw = _width(meta, font - 1)
                    tx = px2 + 6 if px2 + 6 + tw < w - 4 else max(x0, px1 - 6 - tw)
                    rows.append(f'<text class="phase-meta" x="{_f(tx)}" y="{_f(ty)}" '
                                f'font-size="{font - 1}">{_e(meta)}</text>')
            elif meta:
                rows.append(f'<text class="phase-meta" x="{x0}" y="{_f(ty)}" font-size="{font - 1}">'
                            f"{_e(meta)}</text>")
            rows.append("</g>")
            y += head_h
        phase_start = _num(phase_rows.get(key or "", {}).get("start_s"))
        for _, e in members:
            rows.append(_timeline_row(e, y, row_h, bar_h, font, w, x0, label_w, headers,
                                      on_path, x_of, phase_start, centres))
            y += row_h
    height = y + foot_h

    grid: list[str] = []
    ticks, unit, size = _time_ticks(total * 0.999, 10)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else total
    for t in ticks:
        gx = x_of(t)
        grid.append(f'<line class="grid{" major" if t == 0 else ""}" x1="{_f(gx)}" y1="{axis_h - 4}" '
                    f'x2="{_f(gx)}" y2="{_f(y)}"/>')
        lbl = _tick_label(t, step, unit, size)
        grid.append(f'<text class="axis" x="{_f(gx)}" y="{axis_h - 10}" text-anchor="middle">'
                    f"{_e(lbl)}</text>")
        if n > 30:
            grid.append(f'<text class="axis" x="{_f(gx)}" y="{_f(y + 14)}" text-anchor="middle">'
                        f"{_e(lbl)}</text>")
    grid.append(f'<text class="axis" x="8" y="{axis_h - 10}">{_e(axis)}</text>')

    overlay: list[str] = []
    path = [p for p in _strs(start.get("critical_path")) if p in centres]
    for a, b in itertools.pairwise(path):
        (_, ax2, ay), (bx1, _, by) = centres[a], centres[b]
        overlay.append(f'<path class="cp-link" d="M{_f(ax2)},{_f(ay)} L{_f(max(ax2, bx1))},{_f(by)}"/>')
    if ready is not None:
        rx = x_of(ready)
        failed = _outcome(start) == "failed"
        label = f"{'start-up failed' if failed else 'start-up complete'} · {_dur(ready)}"
        tw = _width(label, 11)
        anchor, tx = ("end", rx - 4) if rx + tw + 8 > w else ("start", rx + 4)
        mark = " failed" if failed else ""
        overlay.append(f'<line class="ready{mark}" x1="{_f(rx)}" y1="{axis_h - 4}" x2="{_f(rx)}" '
                       f'y2="{_f(y + (4 if n <= 30 else 18))}"><title>{_e(label)}</title></line>')
        overlay.append(f'<text class="ready-lbl{mark}" x="{_f(tx)}" y="{_f(height - 6)}" '
                       f'text-anchor="{anchor}">{_e(label)}</text>')
    if n > 30:
        height += 14

    return (f'<svg id="{svg_id}" class="chart" viewBox="0 0 {w} {_f(height)}" width="{w}" '
            f'height="{_f(height)}" role="img" aria-label="{_e(what)} timeline, one bar per component">'
            + "".join(bands) + "".join(grid) + "".join(rows) + "".join(overlay) + "</svg>")


def _timeline_row(e: Mapping[str, Any], y: float, row_h: int, bar_h: int, font: float, w: int,
                  x0: float, label_w: int, indented: bool, on_path: set[str], x_of: Any,
                  phase_start: float | None,
                  centres: dict[str, tuple[float, float, float]]) -> str:
    name = _text(e.get("name")) or "?"
    status = _text(e.get("status")) or "unknown"
    tone = _tone(status)
    optional = e.get("critical") is False or e.get("optional") is True
    cp = name in on_path
    start_s, dur = _num(e.get("start_s")), _num(e.get("duration_s"))
    error = _map(e.get("error"))
    attempts = _int(e.get("attempts"))
    reason = _text(e.get("reason"))
    kind = _text(e.get("kind")) or "component"
    mid = y + row_h / 2

    tip = [f"{name} — {status}"]
    facts = [f"phase {e.get('phase')}" if e.get("phase") is not None else "",
             "optional" if optional else "critical", kind if kind != "component" else "",
             f"provides {e.get('provides')}" if e.get("provides") else ""]
    tip.append(" · ".join(f for f in facts if f))
    if start_s is not None:
        tip.append(f"start +{_dur(start_s)} · took {_dur(dur)}")
    if attempts and attempts > 1:
        tip.append(f"{attempts} attempts")
    if cp:
        tip.append("on the critical path")
    if error:
        tip.append(_error_text(error) + (f" (at {error.get('where')})" if error.get("where") else ""))
    if reason:
        tip.append(reason)
    deps = _strs(e.get("depends_on"))
    if deps:
        tip.append("depends on " + ", ".join(deps))

    lx = 22 if indented else 8
    lbl_cls = "lbl cp" if cp else "lbl bad" if tone == "bad" else "lbl muted" if tone == "muted" else "lbl"
    marker = ""
    if cp:
        cx, s = (lx - 9, 3.5)
        marker = (f'<path d="M{_f(cx)},{_f(mid - s)} L{_f(cx + s)},{_f(mid)} L{_f(cx)},{_f(mid + s)} '
                  f'L{_f(cx - s)},{_f(mid)} z" fill="#1f2328"/>')
    label = _clip(name, label_w - lx - 4, font)
    out = [
        f'<g class="bar" data-component="{_e(name)}" data-status="{_e(status)}" '
        f'data-phase="{_e(e.get("phase"))}" data-kind="{_e(kind)}" '
        f'data-optional="{"true" if optional else "false"}" '
        f'data-critical-path="{"true" if cp else "false"}">',
        f"<title>{_e(chr(10).join(tip))}</title>",
        f'<rect class="hit" x="0" y="{_f(y)}" width="{w}" height="{row_h}"/>',
        marker,
        f'<text class="{lbl_cls}" x="{lx}" y="{_f(mid + font * 0.36)}" font-size="{font}">{_e(label)}</text>',
    ]
    by = mid - bar_h / 2
    val_font = max(8.5, font - 1.5)
    if start_s is not None:
        bx = x_of(start_s)
        bw = max(3.0, x_of(start_s + (dur or 0.0)) - bx)
        classes = " ".join(c for c in (tone, "opt" if optional else "", "cp" if cp else "") if c)
        out.append(f'<rect class="{classes}" x="{_f(bx)}" y="{_f(by)}" width="{_f(bw)}" '
                   f'height="{bar_h}" rx="3"/>')
        centres[name] = (bx, bx + bw, mid)
        text_parts = [_dur(dur)]
        if error.get("type"):
            text_parts.append(_text(error.get("type")))
        elif status not in ("started", "stopped", "ready", "passed"):
            text_parts.append(status)
        if attempts and attempts > 1:
            text_parts.append(f"{attempts} attempts")
        if reason and tone != "bad":
            text_parts.append(reason)
        x_text, x_left = bx + bw + 6, bx - 6
    else:
        bx = x_of(phase_start or 0.0)
        out.append(f'<rect class="{tone} ghost" x="{_f(bx)}" y="{_f(by)}" width="10" '
                   f'height="{bar_h}" rx="3"/>')
        text_parts = [status + (f": {reason}" if reason else "")]
        x_text, x_left = bx + 16, bx - 6
    val = " · ".join(text_parts)
    room_right = w - 6 - x_text
    room_left = x_left - x0
    if _width(val, val_font) <= room_right or room_right >= room_left:
        val = _clip(val, room_right, val_font)
        out.append(f'<text class="val{" bad" if tone == "bad" else ""}" x="{_f(x_text)}" '
                   f'y="{_f(mid + val_font * 0.36)}" font-size="{val_font}">{_e(val)}</text>')
    else:
        val = _clip(val, room_left, val_font)
        out.append(f'<text class="val{" bad" if tone == "bad" else ""}" x="{_f(x_left)}" '
                   f'y="{_f(mid + val_font * 0.36)}" font-size="{val_font}" text-anchor="end">'
                   f"{_e(val)}</text>")
    out.append("</g>")
    return "".join(out)
