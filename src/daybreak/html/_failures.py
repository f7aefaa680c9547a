"""Failures, with where they happened and the stacks of hangs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daybreak.html._values import _attr, _badge, _dur, _e, _error_html, _int, _map, _maps, _num, _plural, _text, _tone


def _is_library(file: str) -> bool:
    f = file.replace("\\", "/")
    return ("/site-packages/" in f or "/lib/python" in f or "/daybreak/" in f
            or f.startswith("<frozen"))


def _frames_html(frames: Sequence[Mapping[str, Any]], hot: str | None) -> str:
    items = []
    for fr in frames:
        where = _text(fr.get("where")) or f"{_text(fr.get('file'))}:{_text(fr.get('line'))}"
        cls = "hot" if hot and where == hot else "lib" if _is_library(_text(fr.get("file"))) else ""
        fn = _text(fr.get("function"))
        call = f' in <span class="fn">{_e(fn)}</span>' if fn else ""
        items.append(f"<li{_attr('class', cls, bool(cls))}>{_e(where)}{call}</li>")
    if not items:
        return '<p class="empty">no frames recorded</p>'
    return f'<ol class="frames">{"".join(items)}</ol>'


def _hang_html(hang: Mapping[str, Any], label: str) -> str:
    where = _text(hang.get("where"))
    out = []
    if where:
        out.append(f'<p>{_e(label)} stuck at <code>{_e(where)}</code></p>')
    for t in _maps(hang.get("tasks")):
        frames = _maps(t.get("frames"))
        out.append(f'<details open="open"><summary>Stuck task <code>{_e(t.get("name"))}</code> '
                   f'<span class="muted">— await chain, {len(frames)} frames, innermost last</span>'
                   f"</summary>{_frames_html(frames, where)}</details>")
    threads = _maps(hang.get("threads"))
    if threads:
        inner = []
        for th in threads:
            frames = _maps(th.get("frames"))
            hot = any(_text(f.get("where")) == where for f in frames) if where else False
            flags = " · daemon" if th.get("daemon") else ""
            inner.append(f"<details{_attr('open', 'open', hot)}><summary>"
                         f'<code>{_e(th.get("name"))}</code> <span class="muted">ident '
                         f'{_e(th.get("ident"))}{_e(flags)} · {len(frames)} frames</span></summary>'
                         f"{_frames_html(frames, where)}</details>")
        out.append(f'<details><summary>All threads <span class="muted">({len(threads)})</span>'
                   f'</summary>{"".join(inner)}</details>')
    return "".join(out)


def _failures_section(start: Mapping[str, Any]) -> str:
    cards: list[tuple[int, int, str]] = []  # (rank, order, html): critical failures first
    for c in _maps(start.get("components")):
        error, hang = _map(c.get("error")), _map(c.get("hang"))
        stop = _map(c.get("stop"))
        name = _text(c.get("name"))
        optional = c.get("critical") is False
        meta = [f"phase {c.get('phase')}" if c.get("phase") is not None else "",
                "optional" if optional else "critical"]
        attempts = _int(c.get("attempts"))
        if attempts:
            meta.append(f"{attempts} attempt{'s' if attempts != 1 else ''}")
        if _num(c.get("duration_s")) is not None:
            meta.append(f"after {_dur(_num(c.get('duration_s')))}")
        if error or hang or _tone(c.get("status")) == "bad":
            tone = "warn" if optional else ""
            body = []
            if error:
                body.append(f"<p>{_error_html(error)}</p>")
            if hang:
                body.append(_hang_html(hang, "start"))
            cards.append((2 if optional else 0, len(cards),
                f'<article class="failure {tone}" data-component="{_e(name)}" data-phase="start">'
                f'<div class="head">{_badge(c.get("status"))}<strong>{_e(name)}</strong>'
                f'<span class="meta">{_e(" · ".join(m for m in meta if m))}</span></div>'
                f'{"".join(body)}</article>'))
        stop_error, stop_hang = _map(stop.get("error")), _map(stop.get("hang"))
        if stop_error or stop_hang or _tone(stop.get("status")) == "bad":
            body = []
            if stop_error:
                body.append(f"<p>{_error_html(stop_error)}</p>")
            if stop_hang:
                body.append(_hang_html(stop_hang, "stop"))
            sd = _num(stop.get("duration_s"))
            stop_status = _text(stop.get("status")) or "failed"
            cards.append((3, len(cards),
                f'<article class="failure" data-component="{_e(name)}" data-phase="stop">'
                f'<div class="head">{_badge(stop_status, "stop " + stop_status)}'
                f'<strong>{_e(name)}</strong><span class="meta">while stopping'
                f'{_e(f" · after {_dur(sd)}") if sd is not None else ""}</span></div>'
                f'{"".join(body)}</article>'))
    for v in _maps(start.get("validation")):
        error = _map(v.get("error"))
        if error or _tone(v.get("status")) == "bad":
            what = _text(v.get("kind")) or "check"
            of = f" of {_text(v.get('component'))}" if v.get("component") else ""
            cards.append((1, len(cards),
                f'<article class="failure" data-component="{_e(v.get("name"))}" data-phase="{_e(what)}">'
                f'<div class="head">{_badge(v.get("status"))}<strong>{_e(v.get("name"))}</strong>'
                f'<span class="meta">{_e(what + of)}</span></div>'
                f'{f"<p>{_error_html(error)}</p>" if error else ""}</article>'))
    if not cards:
        return ""
    hung = any(_map(c.get("hang")) or _map(_map(c.get("stop")).get("hang"))
               for c in _maps(start.get("components")))
    note = _plural(len(cards), "problem") + ("; the highlighted frame is where it hung" if hung else "")
    return (f'<section id="failures"><div class="section-head"><h2>Failures</h2>'
            f'<span class="note">{_e(note)}</span></div>'
            f"{''.join(card for _, _, card in sorted(cards))}</section>")
