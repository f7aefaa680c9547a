"""The tables: validation, loop blocks, leftovers, components."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daybreak.html._failures import _frames_html
from daybreak.html._values import (
    _DASH,
    _attr,
    _badge,
    _code,
    _dur,
    _e,
    _error_html,
    _map,
    _maps,
    _num,
    _text,
    _tone,
    _type_name,
)


def _table(head: Sequence[str], rows: Sequence[str], num: Sequence[int] = ()) -> str:
    ths = "".join(f"<th{_attr('class', 'num', i in num)}>{_e(h)}</th>"
                  for i, h in enumerate(head))
    # In a box of its own that scrolls sideways: a wide table never spills out of its card.
    return (f'<div class="table-wrap"><table><thead><tr>{ths}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _validation_section(start: Mapping[str, Any]) -> str:
    items = _maps(start.get("validation"))
    if not items:
        return ""
    rows = []
    for v in items:
        error = _map(v.get("error"))
        detail = _error_html(error) if error else _e(v.get("reason"))
        rows.append(f'<tr data-name="{_e(v.get("name"))}" data-status="{_e(v.get("status"))}">'
                    f'<td class="name">{_e(v.get("name"))}</td><td>{_e(v.get("kind"))}</td>'
                    f"<td>{_e(v.get('component')) or _DASH}</td>"
                    f"<td>{_badge(v.get('status'))}</td>"
                    f'<td class="num">{_e(_dur(_num(v.get("duration_s"))))}</td><td>{detail}</td></tr>')
    passed = sum(1 for v in items if _tone(v.get("status")) == "ok")
    return (f'<section id="validation"><div class="section-head"><h2>Checks and validators</h2>'
            f'<span class="note">{passed} of {len(items)} passed</span></div>'
            + _table(("Name", "Kind", "Component", "Status", "Duration", "Detail"), rows, (4,))
            + "</section>")


def _loop_blocks_section(start: Mapping[str, Any]) -> str:
    blocks = sorted(_maps(start.get("loop_blocks")),
                    key=lambda b: -(_num(b.get("duration_s")) or 0.0))
    if not blocks:
        return ""
    rows = []
    for b in blocks:
        frames = _maps(b.get("frames"))
        extra = (f'<details><summary>stack <span class="muted">({len(frames)} frames)</span></summary>'
                 f'{_frames_html(frames, _text(b.get("where")))}</details>' if frames else "")
        rows.append(f'<tr><td class="num">{_e(_dur(_num(b.get("duration_s"))))}</td>'
                    f"<td>{_e(b.get('component')) or _DASH}</td>"
                    f"<td>{_code(b.get('where'))}{extra}</td></tr>")
    return ('<section id="loop-blocks"><div class="section-head"><h2>Event-loop blocks</h2>'
            '<span class="note">a synchronous call held the loop; nothing else could run</span></div>'
            + _table(("Blocked for", "Component", "Where"), rows, (0,)) + "</section>")


def _stack_details(item: Mapping[str, Any]) -> str:
    frames = _maps(item.get("stack")) or _maps(item.get("frames"))
    if not frames:
        return ""
    return (f'<details><summary>stack <span class="muted">({len(frames)} frames)</span></summary>'
            f'{_frames_html(frames, _text(item.get("where")))}</details>')


def _leftovers_section(start: Mapping[str, Any]) -> str:
    left = _map(start.get("leftovers"))
    threads, tasks, fds = (_maps(left.get(k)) for k in ("threads", "tasks", "fds"))
    if not (threads or tasks or fds):
        return ""
    dash = _DASH
    parts = []
    if threads:
        rows = [f'<tr><td class="name">{_e(t.get("name"))}</td><td>{_e(t.get("component")) or dash}</td>'
                f"<td>{_code(t.get('where'))}{_stack_details(t)}</td></tr>" for t in threads]
        parts.append(f"<h3>Threads ({len(threads)})</h3>"
                     + _table(("Thread", "Component", "Where"), rows))
    if tasks:
        rows = [f'<tr><td class="name">{_e(t.get("name"))}</td><td>{_code(t.get("coro"))}</td>'
                f'<td>{_e(t.get("component")) or dash}</td>'
                f"<td>{_code(t.get('where'))}{_stack_details(t)}</td></tr>" for t in tasks]
        parts.append(f"<h3>Tasks ({len(tasks)})</h3>"
                     + _table(("Task", "Coroutine", "Component", "Where"), rows))
    if fds:
        rows = [f'<tr><td class="num">{_e(f.get("fd"))}</td><td>{_e(f.get("kind"))}</td>'
                f"<td>{_code(f.get('detail'))}</td><td>{_e(f.get('component')) or dash}</td></tr>"
                for f in fds]
        parts.append(f"<h3>File descriptors ({len(fds)})</h3>"
                     + _table(("fd", "Kind", "Detail", "Component"), rows, (0,)))
    total = len(threads) + len(tasks) + len(fds)
    return (f'<section id="leftovers"><div class="section-head"><h2>Left behind after stop</h2>'
            f'<span class="note">{total} resource{"s" if total != 1 else ""} still alive</span></div>'
            + "".join(parts) + "</section>")


def _components_section(start: Mapping[str, Any]) -> str:
    comps = _maps(start.get("components"))
    if not comps:
        return ""
    rows = []
    for c in comps:
        error = _map(c.get("error"))
        stop = _map(c.get("stop"))
        detail = _error_html(error) if error else _e(c.get("reason"))
        stop_txt = ""
        if stop:
            stop_txt = f"{_badge(stop.get('status'))} {_e(_dur(_num(stop.get('duration_s'))))}"
        rows.append(
            f'<tr data-component="{_e(c.get("name"))}"><td class="name">{_e(c.get("name"))}</td>'
            f"<td>{_e(c.get('phase'))}</td><td>{_type_name(c.get('provides'))}</td>"
            f"<td>{'optional' if c.get('critical') is False else 'critical'}</td>"
            f"<td>{_badge(c.get('status'))}</td>"
            f'<td class="num">{_e(_dur(_num(c.get("start_s"))))}</td>'
            f'<td class="num">{_e(_dur(_num(c.get("duration_s"))))}</td>'
            f'<td class="num">{_e(c.get("attempts"))}</td><td class="nowrap">{stop_txt}</td>'
            f"<td>{detail}</td></tr>")
    table = _table(("Component", "Phase", "Provides", "Kind", "Status", "Start", "Took", "Tries",
                    "Stop", "Detail"), rows, (5, 6, 7))
    open_attr = ' open="open"' if len(comps) <= 40 else ""
    return (f'<section id="components"><details{open_attr}><summary style="font-size:17px;'
            f'color:var(--fg)">All components <span class="muted">({len(comps)})</span></summary>'
            f'<div style="margin-top:10px">{table}</div></details></section>')
