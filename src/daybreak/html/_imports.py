"""The import audit's section: side effects, cycles, hung and slow imports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daybreak.html._tables import _table
from daybreak.html._values import _badge, _code, _dur, _e, _error_html, _maps, _num, _strs, _text


def _imports_section(imports: Mapping[str, Any]) -> str:
    verdict = imports.get("verdict")
    modules = _maps(imports.get("modules"))
    cycles = [_strs(c) for c in (imports.get("cycles") or []) if _strs(c)]
    hung = _maps(imports.get("hung"))
    errors = _maps(imports.get("errors"))
    effects = [(m, fx) for m in modules for fx in _maps(m.get("side_effects"))]
    total = sum(_num(m.get("seconds")) or 0.0 for m in modules)
    facts = [f"{len(modules)} modules", f"{_dur(total)} total", f"{len(effects)} side effects"]
    if cycles:
        facts.append(f"{len(cycles)} cycle{'s' if len(cycles) != 1 else ''}")
    if hung:
        facts.append(f"{len(hung)} hung")
    parts = [f'<section id="imports"><div class="section-head"><h2>Import audit</h2>'
             f'{_badge(verdict, _text(verdict) or "unknown")}'
             f'<span class="note">{_e(" · ".join(facts))}</span></div>']
    if hung:
        rows = [f'<tr><td class="name">{_e(h.get("module"))}</td><td>{_code(h.get("where"))}</td></tr>'
                for h in hung]
        parts.append('<h3>Hung imports</h3>' + _table(("Module", "Stuck at"), rows))
    if errors:
        rows = [f'<tr><td class="name">{_e(x.get("module"))}</td>'
                f'<td>{_error_html(x)}</td></tr>' for x in errors]
        parts.append('<h3>Import errors</h3>' + _table(("Module", "Error"), rows))
    if effects:
        rows = [f'<tr data-module="{_e(m.get("name"))}"><td class="name">{_e(m.get("name"))}</td>'
                f'<td>{_badge("warn", _text(fx.get("event")) or "?")}</td>'
                f'<td>{_code(fx.get("detail"))}</td><td>{_code(fx.get("where"))}</td></tr>'
                for m, fx in effects]
        parts.append('<h3>Side effects at import time</h3>'
                     + _table(("Module", "Event", "Detail", "Where"), rows))
    if cycles:
        items = "".join(
            "<li>" + ' <span class="faint">→</span> '.join(f"<code>{_e(n)}</code>" for n in c)
            + (f' <span class="faint">→</span> <code>{_e(c[0])}</code>' if c[0] != c[-1] else "")
            + "</li>" for c in cycles)
        parts.append(f'<h3>Import cycles</h3><ul class="cycles">{items}</ul>')
    timed = sorted((m for m in modules if _num(m.get("seconds")) is not None),
                   key=lambda m: -(_num(m.get("seconds")) or 0.0))[:15]
    if timed:
        top = _num(timed[0].get("seconds")) or 0.0
        rows = []
        for m in timed:
            sec = _num(m.get("seconds")) or 0.0
            pct = 100.0 * sec / top if top > 0 else 0.0
            rows.append(f'<tr><td class="name">{_e(m.get("name"))}</td>'
                        f'<td class="num">{_e(_dur(sec))}</td><td class="hbar-cell">'
                        f'<div class="hbar" style="width:{pct:.1f}%"></div></td></tr>')
        parts.append("<h3>Slowest modules</h3>"
                     + _table(("Module", "Import time", ""), rows, (1,)))
    if not (hung or errors or effects or cycles or timed):
        parts.append('<p class="empty">No modules recorded.</p>')
    parts.append("</section>")
    return "".join(parts)
