"""The header: the verdict, the tiles and the navigation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daybreak.html._values import _badge, _bytes, _dur, _e, _error_html, _map, _maps, _num, _plural, _strs, _text, _tone


def _tile(key: str, value: str, detail: str = "", tone: str = "") -> str:
    cls = f"tile {tone}" if tone in ("bad", "warn") else "tile"
    extra = f'<div class="d">{detail}</div>' if detail else ""
    return f'<div class="{cls}"><div class="k">{_e(key)}</div><div class="v">{value}</div>{extra}</div>'


def _big_badge(status: object, label: str | None = None) -> str:
    return _badge(status, label).replace('class="badge ', 'class="badge big ', 1)


def _outcome(start: Mapping[str, Any]) -> str:
    """How the start ended, for a report taken after stop (status ``stopped``)."""
    if start.get("start_status"):
        return _text(start.get("start_status"))
    status = _text(start.get("status"))
    if status not in ("stopped", "stopping") or start.get("error"):
        return status
    phases = [_text(p.get("status")) for p in _maps(start.get("phases"))]
    if "failed" in phases:
        return "failed"
    if "degraded" in phases:
        return "degraded"
    if not phases and any(_text(c.get("status")) in ("failed", "skipped")
                          for c in _maps(start.get("components"))):
        return "degraded"
    return "ready"


def _header(name: str, doc: Mapping[str, Any], start: Mapping[str, Any], plan: Mapping[str, Any],
            leaks: Mapping[str, Any], imports: Mapping[str, Any], nav: str) -> str:
    badges = []
    verdict = doc.get("verdict")
    overall = doc.get("status")
    status = start.get("status")
    if verdict is not None:
        badges.append(_big_badge(verdict, f"doctor: {_text(verdict)}"))
    if status is not None:
        outcome = _outcome(start)
        if outcome != _text(status):
            badges.append(_big_badge(outcome, f"started {outcome}"))
            badges.append(_badge(status, f"now {_text(status)}"))
        else:
            badges.append(_big_badge(status))
    elif overall is not None and verdict is None:
        badges.append(_big_badge(overall))
    if overall is not None and (status is not None or verdict is not None) and overall not in (
            status, verdict):
        badges.append(_badge(overall, f"overall: {_text(overall)}"))
    kicker = ("daybreak doctor report" if verdict is not None else "daybreak start-up report"
              if start else "daybreak start-up plan" if plan else "daybreak report")
    target = _text(doc.get("target"))
    sub = f'<div class="sub mono">{_e(target)}</div>' if target and target != name else ""
    head = (f'<header class="page"><div><div class="kicker">{_e(kicker)}</div>'
            f'<div class="title"><h1>{_e(name)}</h1>{"".join(badges)}</div>{sub}</div>'
            f'<nav class="toc">{nav}</nav></header>')

    tiles = []
    if start:
        comps = _maps(start.get("components"))
        tiles.append(_tile("Start-up", _e(_dur(_num(start.get("duration_s")))),
                           _e(_plural(len(_maps(start.get('phases'))), 'phase')) if start.get("phases") else ""))
        path = _strs(start.get("critical_path"))
        tiles.append(_tile("Critical path", _e(_dur(_num(start.get("critical_path_s")))),
                           _e(_plural(len(path), 'step')) if path else ""))
        counts: dict[str, int] = {}
        for c in comps:
            counts[_text(c.get("status")) or "unknown"] = counts.get(_text(c.get("status")) or "unknown", 0) + 1
        up = sum(counts.get(s, 0) for s in ("started", "stopped", "stopping", "ready"))
        detail = " · ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1])
                            if s not in ("started", "stopped"))
        failed = counts.get("failed", 0)
        tiles.append(_tile("Components", f"{up}<span class='faint'>/{len(comps)}</span>",
                           _e("up" + (f" · {detail}" if detail else "")), "bad" if failed else ""))
        checks = _maps(start.get("validation"))
        if checks:
            passed = sum(1 for v in checks if _tone(v.get("status")) == "ok")
            bad = sum(1 for v in checks if _tone(v.get("status")) == "bad")
            tiles.append(_tile("Checks", f"{passed}<span class='faint'>/{len(checks)}</span>",
                               _e("passed" + (f" · {bad} failed" if bad else "")), "bad" if bad else ""))
        blocks = _maps(start.get("loop_blocks"))
        longest = max((_num(b.get("duration_s")) or 0.0 for b in blocks), default=0.0)
        tiles.append(_tile("Loop blocks", str(len(blocks)),
                           _e(f"longest {_dur(longest)}") if blocks else "event loop stayed responsive",
                           "warn" if blocks else ""))
        left = _map(start.get("leftovers"))
        n_left = sum(len(_maps(left.get(k))) for k in ("threads", "tasks", "fds"))
        tiles.append(_tile("Leftovers", str(n_left),
                           "after stop" if n_left else "nothing left behind", "bad" if n_left else ""))
    elif plan:
        comps = _maps(plan.get("components"))
        validators = sum(1 for c in comps if c.get("kind") == "validator")
        optional = sum(1 for c in comps if c.get("critical") is False)
        tiles.append(_tile("Components", str(len(comps) - validators),
                           _e(f"{optional} optional") if optional else "all critical"))
        if validators:
            tiles.append(_tile("Validators", str(validators)))
        tiles.append(_tile("Levels", str(len(plan.get("levels") or [])), "can start together"))
        if plan.get("phases"):
            tiles.append(_tile("Phases", str(len(_strs(plan.get("phases"))))))
    if leaks:
        v = leaks.get("verdict")
        tiles.append(_tile("Leaks", f'<span class="verdict {_tone(v)}">{_e(v or "unknown")}</span>',
                           _e(f"{_bytes(_num(leaks.get('growth_bytes_per_cycle')), signed=True)}/cycle"),
                           _tone(v)))
    if imports:
        v = imports.get("verdict")
        n_effects = sum(len(_maps(m.get("side_effects"))) for m in _maps(imports.get("modules")))
        n_modules = len(_maps(imports.get("modules")))
        tiles.append(_tile("Imports", f'<span class="verdict {_tone(v)}">{_e(v or "unknown")}</span>',
                           _e(f"{_plural(n_modules, 'module')} · {_plural(n_effects, 'side effect')}"),
                           _tone(v)))

    body = [head, '<section id="summary">']
    error = _map(start.get("error"))
    if error:
        body.append(f'<div class="alert"><strong>Start-up failed.</strong> {_error_html(error)}</div>')
    problems = _strs(doc.get("failures"))
    if problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in problems)
        body.append(f'<div class="alert"><strong>Doctor found {len(problems)} '
                    f'problem{"s" if len(problems) != 1 else ""}:</strong><ul>{items}</ul></div>')
    notes = _strs(doc.get("notes"))
    if notes:
        items = "".join(f"<li>{_e(n)}</li>" for n in notes)
        body.append(f'<div class="alert note"><ul>{items}</ul></div>')
    if tiles:
        body.append(f'<div class="tiles">{"".join(tiles)}</div>')
    path = _strs(start.get("critical_path")) or _strs(plan.get("critical_path"))
    if path:
        steps = '<span class="arrow">→</span>'.join(f'<span class="step">{_e(p)}</span>' for p in path)
        body.append(f'<div class="path">Critical path: {steps}</div>')
    if not tiles and not path and not error and not problems:
        body.append('<p class="empty">Nothing to report.</p>')
    body.append("</section>")
    return "\n".join(body)
