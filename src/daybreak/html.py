"""Self-contained HTML report: one file, inline CSS and SVG, no script, no network.

:func:`render` turns a report document into a page; :func:`write_report`
writes it. The document is a mapping whose keys are all optional, and a
section appears only when its key is there:

- ``"start"``: :meth:`daybreak.StartupReport.to_dict` (header, timeline,
  failures with hang stacks, validation, loop blocks, leftovers, components);
- ``"plan"``: :meth:`daybreak.Plan.to_dict` (the dependency graph's levels;
  without it the levels are computed from the components' ``depends_on``);
- ``"leaks"``: the leak checker's report (verdict, growth chart, sites);
- ``"imports"``: the import audit (side effects, cycles, hung, slowest);
- ``"verdict"`` / ``"status"``: the overall verdict of ``daybreak doctor``.

A bare start report or plan dict is accepted as the document too. Every
value came from user code, so every string is escaped, and the page stays
well-formed XML (tests parse it with :mod:`xml.etree.ElementTree`). Things a
test can query: ``<svg id="timeline">`` holding ``<g class="bar"
data-component=... data-status=... data-critical-path=...>``, ``<svg
id="graph">`` holding ``<g class="node" ...>`` and ``<g class="edge"
data-from=... data-to=...>``, and ``<section>`` ids ``summary``,
``section-timeline``, ``section-graph``, ``failures``, ``validation``,
``loop-blocks``, ``leftovers``, ``leaks``, ``imports``, ``components``.
"""

from __future__ import annotations

import functools
import html
import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from daybreak._version import __version__

__all__ = ["render", "write_report"]


# -- values: defensive readers and formatting ---------------------------------------------------


def _e(value: object) -> str:
    """Escaped text for an element body or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _maps(value: object) -> list[Mapping[str, Any]]:
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
        return [item for item in value if isinstance(item, Mapping)]
    return []


def _strs(value: object) -> list[str]:
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
        return [str(item) for item in value if item is not None]
    return []


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: object) -> int | None:
    number = _num(value)
    return None if number is None else int(number)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _dur(seconds: float | None) -> str:
    """A duration for people: ``850 µs``, ``12.3 ms``, ``1.25 s``, ``2 min 5.0 s``."""
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    if s == 0:
        return "0 ms"
    if s < 1e-3:
        return f"{sign}{s * 1e6:.0f} µs"
    if s < 0.1:
        return f"{sign}{s * 1e3:.1f} ms"
    if s < 1:
        return f"{sign}{s * 1e3:.0f} ms"
    if s < 60:
        return f"{sign}{s:.2f} s"
    minutes, rest = divmod(s, 60)
    return f"{sign}{minutes:.0f} min {rest:.1f} s"


def _bytes(count: float | None, *, signed: bool = False) -> str:
    if count is None:
        return "—"
    sign = ("+" if count > 0 else "-" if count < 0 else "") if signed else ("-" if count < 0 else "")
    n = abs(count)
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{sign}{n / size:.1f} {unit}"
    return f"{sign}{n:.0f} B"


def _clip(text: str, width_px: float, font_px: float) -> str:
    """`text` cut with an ellipsis to fit about `width_px` (SVG text cannot ellipsize)."""
    fits = max(1, int(width_px / (font_px * 0.57)))
    return text if len(text) <= fits else text[: max(1, fits - 1)] + "…"


def _width(text: str, font_px: float) -> float:
    return len(text) * font_px * 0.6


def _f(x: float) -> str:
    """A coordinate, short."""
    return f"{x:.1f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


_TONE_WORDS = {
    "ok": ("ready", "started", "stopped", "done", "passed", "pass", "ok", "clean", "success",
           "succeeded", "running", "up", "healthy"),
    "bad": ("failed", "fail", "error", "errored", "leak", "leaks", "leaking", "dirty", "hung",
            "timeout", "crashed", "unhealthy"),
    "warn": ("degraded", "disabled", "warning", "warn", "slow"),
    "info": ("starting", "stopping"),
}
_TONE = {word: tone for tone, words in _TONE_WORDS.items() for word in words}


def _tone(status: object) -> str:
    """``ok``, ``bad``, ``warn``, ``info`` or ``muted`` (skipped, pending, unknown)."""
    return _TONE.get(_text(status).strip().lower(), "muted")


def _badge(status: object, label: str | None = None) -> str:
    text = label if label is not None else (_text(status) or "unknown")
    return f'<span class="badge {_tone(status)}">{_e(text)}</span>'


_DASH = '<span class="muted">—</span>'


def _attr(name: str, value: object, when: bool = True) -> str:
    """` name="value"` (escaped), or nothing when `when` is false."""
    return f' {name}="{_e(value)}"' if when else ""


def _code(value: object) -> str:
    return f"<code>{_e(value)}</code>" if value not in (None, "") else _DASH


def _error_text(error: Mapping[str, Any]) -> str:
    kind, message = _text(error.get("type")), _text(error.get("message"))
    return f"{kind}: {message}" if kind and message else kind or message


def _error_html(error: Mapping[str, Any]) -> str:
    kind, message = _text(error.get("type")), _text(error.get("message"))
    parts = []
    if kind:
        parts.append(f'<code class="etype">{_e(kind)}</code>')
    if message:
        parts.append(f'<span class="emsg">{_e(message)}</span>')
    where = _text(error.get("where"))
    out = ": ".join(parts)
    if where:
        out += f' <span class="at">at <code>{_e(where)}</code></span>'
    return out


def _nice_step(span: float, target: int) -> float:
    raw = span / max(1, target)
    if raw <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def _time_ticks(total: float, target: int = 10) -> tuple[list[float], str, float]:
    """Tick positions, the unit name and the unit's size, for an axis from 0 to `total` s."""
    step = _nice_step(total, target)
    unit, size = ("µs", 1e-6) if total < 2e-3 else ("ms", 1e-3) if total < 2 else ("s", 1.0)
    ticks = [i * step for i in range(int(total / step + 1e-9) + 1)]
    return ticks, unit, size


def _tick_label(value: float, step: float, unit: str, size: float) -> str:
    decimals = max(0, min(3, -math.floor(math.log10(step / size) + 1e-9))) if step > 0 else 0
    return f"{value / size:.{decimals}f} {unit}" if value else "0"


# -- the page ----------------------------------------------------------------------------------

_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--faint:#818b98;--line:#d1d9e0;--soft:#eef1f4;
--bg:#f6f8fa;--card:#fff;--accent:#0969da;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;
--mono:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"DejaVu Sans Mono","Liberation Mono",monospace}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue","Noto Sans","Liberation Sans",Arial,sans-serif;-webkit-font-smoothing:antialiased}
main{max-width:1200px;margin:0 auto;padding:28px 24px 40px}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
h1{font-size:26px;line-height:1.2;margin:0;font-weight:650;letter-spacing:-.01em;word-break:break-word}
h2{font-size:17px;margin:0;font-weight:620}
h3{font-size:14px;margin:18px 0 8px;font-weight:620}
code,.mono{font-family:var(--mono);font-size:12.5px}
.muted{color:var(--muted)}
.faint{color:var(--faint)}
header.page{display:flex;flex-wrap:wrap;align-items:flex-end;justify-content:space-between;gap:12px;
margin-bottom:18px}
header.page .kicker{font-size:12px;text-transform:uppercase;letter-spacing:.08em;color:var(--muted);
font-weight:600;margin-bottom:4px}
header.page .title{display:flex;align-items:center;gap:12px;flex-wrap:wrap}
nav.toc{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:13px}
section,.card{background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:18px 22px 20px;margin:0 0 18px}
.section-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 14px;margin-bottom:12px}
.section-head .note{font-size:13px;color:var(--muted)}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;
line-height:18px;border:1px solid transparent;white-space:nowrap;vertical-align:middle}
.badge.big{font-size:14px;padding:3px 14px;line-height:20px}
.badge.ok{background:#dafbe1;color:#116329;border-color:#aceebb}
.badge.bad{background:#ffebe9;color:#a40e26;border-color:#ffcecb}
.badge.warn{background:#fff8c5;color:#7d4e00;border-color:#f5e0a0}
.badge.info{background:#ddf4ff;color:#0550ae;border-color:#b6e3ff}
.badge.muted{background:#eef1f4;color:#59636e;border-color:#d1d9e0}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(124px,1fr));gap:10px;margin:0}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fbfcfd;min-width:0}
.tile .k{font-size:11px;white-space:nowrap;color:var(--muted);font-weight:600;
text-transform:uppercase;letter-spacing:.04em}
.tile .v{font-size:22px;font-weight:650;line-height:1.3;font-variant-numeric:tabular-nums}
.tile .d{font-size:12px;color:var(--muted);line-height:1.4}
.verdict.ok{color:#1a7f37}.verdict.bad{color:#cf222e}
.verdict.warn{color:#9a6700}.verdict.muted{color:#59636e}
.tile.bad{border-color:#ffcecb;background:#fff8f7}
.tile.warn{border-color:#f5e0a0;background:#fffdf0}
.path{margin:14px 0 0;font-size:13px;color:var(--muted);line-height:1.9}
.path .step{display:inline-block;font-family:var(--mono);font-size:12px;color:var(--fg);
background:var(--soft);border-radius:4px;padding:0 6px}
.path .arrow{color:var(--faint);margin:0 3px}
.alert{border-radius:8px;padding:10px 14px;margin:0 0 14px;border:1px solid #ffcecb;background:#fff8f7}
.alert ul{margin:4px 0 0;padding-left:20px}
.alert.note{border-color:#b6e3ff;background:#f3f9ff}
header.page .sub{color:var(--muted);margin-top:4px}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;font-size:12.5px;color:var(--muted);margin:0 0 10px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.sw{display:inline-block;width:18px;height:10px;border-radius:3px;border:1.5px solid transparent}
.sw.ok{background:#4ac26b;border-color:#2da44e}
.sw.bad{background:#ff7b72;border-color:#cf222e}
.sw.warn{background:#eac54f;border-color:#bf8700}
.sw.muted{background:#d1d9e0;border-color:#8c959f}
.sw.info{background:#80ccff;border-color:#218bff}
.sw.opt{background:#fff;border:1.5px dashed #57606a}
.sw.cp{background:#fff;border:2.5px solid #1f2328}
.sw.line{height:0;border:0;border-top:2px solid #0969da;border-radius:0}
.sw.line.l2{border-top-color:#bf3989}.sw.line.l3{border-top-color:#1a7f37}.sw.line.l4{border-top-color:#bc4c00}
.chart-wrap{overflow-x:auto}
svg.chart{display:block;max-width:100%;height:auto}
svg text{font-family:inherit;fill:var(--fg)}
svg .axis text,svg text.axis{fill:#59636e;font-size:11px;font-variant-numeric:tabular-nums}
svg .grid{stroke:#eaeef2;stroke-width:1}
svg .grid.major{stroke:#d8dee4}
svg .band{fill:#f6f8fa}
svg .band.alt{fill:#fff}
svg .phase-name{font-weight:700;fill:#59636e;letter-spacing:.06em}
svg .phase-meta{fill:#59636e}
svg .phase-span{opacity:.55}
svg .lbl{fill:#1f2328}
svg .lbl.cp{font-weight:700}
svg .lbl.bad{fill:#a40e26}
svg .lbl.muted{fill:#6e7781}
svg .val{fill:#59636e;font-variant-numeric:tabular-nums}
svg .val.bad{fill:#a40e26}
svg .hit{fill:transparent}
svg .bar:hover .hit,svg .node:hover .box{fill:#ddf4ff}
svg rect.ok{fill:#4ac26b;stroke:#2da44e}
svg rect.bad{fill:#ff7b72;stroke:#cf222e}
svg rect.warn{fill:#eac54f;stroke:#bf8700}
svg rect.muted{fill:#d1d9e0;stroke:#8c959f}
svg rect.info{fill:#80ccff;stroke:#218bff}
svg rect.ghost{fill:#fff;stroke-dasharray:3 2}
svg rect.opt{stroke-dasharray:4 2.5;fill-opacity:.72}
svg rect.cp{stroke:#1f2328;stroke-width:2.5}
svg .cp-link{fill:none;stroke:#1f2328;stroke-width:1.2;stroke-dasharray:2 3;opacity:.7}
svg .ready{stroke:#0969da;stroke-width:1.5;stroke-dasharray:5 4}
svg text.ready-lbl{fill:#0969da;font-size:11px;font-weight:600}
svg .ready.failed{stroke:#cf222e}svg text.ready-lbl.failed{fill:#cf222e}
svg .node .box{fill:#fff;stroke:#afb8c1;stroke-width:1.2}
svg .node.ok .box{fill:#f3fcf5;stroke:#8fd5a2}
svg .node.bad .box{fill:#fff5f4;stroke:#ff9f97}
svg .node.warn .box{fill:#fffbe6;stroke:#e6c65c}
svg .node.muted .box{fill:#f6f8fa;stroke:#afb8c1}
svg .node.info .box{fill:#f0f8ff;stroke:#80ccff}
svg .node.opt .box{stroke-dasharray:4 3}
svg .node.cp .box{stroke:#1f2328;stroke-width:2.2}
svg .node .name{font-weight:600}
svg .node .sub{fill:#59636e}
svg .edge path{fill:none;stroke:#afb8c1;stroke-width:1.2}
svg .edge.cp path{stroke:#1f2328;stroke-width:2.4}
svg .edge.barrier path{stroke-dasharray:5 4}
svg .edge:hover path{stroke:#0969da}
svg .arrowhead{fill:#afb8c1}
svg .arrowhead.cp{fill:#1f2328}
svg .col-head{fill:#818b98;font-size:11px;font-weight:600;letter-spacing:.05em}
svg .series{fill:none;stroke-width:2}
svg .series.s1{stroke:#0969da}svg .dot.s1{fill:#0969da}
svg .series.s2{stroke:#bf3989}svg .dot.s2{fill:#bf3989}
svg .series.s3{stroke:#1a7f37}svg .dot.s3{fill:#1a7f37}
svg .series.s4{stroke:#bc4c00}svg .dot.s4{fill:#bc4c00}
svg .warmup{fill:#f6f8fa}
svg text.chart-title{font-size:12px;font-weight:600;fill:#59636e}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;font-weight:600;color:var(--muted);font-size:12px;border-bottom:1px solid var(--line);
padding:6px 10px;white-space:nowrap}
td{border-bottom:1px solid #eaeef2;padding:6px 10px;vertical-align:top;overflow-wrap:break-word}
td code,td .emsg{overflow-wrap:anywhere}
td.nowrap{white-space:nowrap}
tr:last-child td{border-bottom:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;width:1%}
td.name{font-weight:600;white-space:nowrap}
.hbar{height:8px;border-radius:4px;background:#54aeff;min-width:2px}
.hbar-cell{width:38%}
.failure{border:1px solid #ffcecb;border-left:4px solid #cf222e;border-radius:8px;padding:12px 16px;
margin:0 0 12px;background:#fffbfa}
.failure.warn{border-color:#f5e0a0;border-left-color:#bf8700;background:#fffdf3}
.failure .head{display:flex;flex-wrap:wrap;align-items:center;gap:6px 10px}
.failure .head strong{font-size:15px}
.failure .meta{font-size:12.5px;color:var(--muted)}
.failure p{margin:6px 0 0}
.etype{color:#a40e26;font-weight:600}
.emsg{overflow-wrap:anywhere}
.at{color:var(--muted);font-size:12.5px;white-space:nowrap}
details{margin:8px 0 0}
details details{margin:4px 0 0 14px}
summary{cursor:pointer;font-size:13px;color:#3d444d;font-weight:600}
summary .muted{font-weight:400}
ol.frames{margin:6px 0 0;padding:6px 0 6px 34px;background:#f6f8fa;border-radius:6px;font-size:12px}
ol.frames li{padding:1px 8px 1px 0;font-family:var(--mono);font-size:12px;overflow-wrap:anywhere}
ol.frames li.lib{color:#818b98}
ol.frames li.hot{background:#fff1b8;color:#1f2328;font-weight:700;border-radius:3px}
ol.frames .fn{color:#8250df}
ol.frames li.lib .fn{color:#a08ad8}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:16px}
.empty{color:var(--muted);font-size:13px;margin:0}
ul.cycles{margin:0;padding-left:20px;font-size:13px}
footer{color:var(--faint);font-size:12px;text-align:center;margin-top:8px}
@media print{html{background:#fff}section,.card{break-inside:avoid;border-color:#ccc}}
"""


def render(doc: Mapping[str, Any]) -> str:
    """The report page for `doc` (see the module docstring), as one HTML string."""
    doc = _normalize(doc)
    start = _map(doc.get("start"))
    plan = _map(doc.get("plan"))
    leaks = _map(doc.get("leaks"))
    imports = _map(doc.get("imports"))
    name = _text(start.get("name") or plan.get("name") or doc.get("name")) or "daybreak report"

    sections: list[tuple[str, str, str]] = []  # (anchor, nav label, html)

    def add(anchor: str, label: str, body: str) -> None:
        if body:
            sections.append((anchor, label, body))

    if start:
        add("section-timeline", "Timeline", _timeline_section(start))
    if start or plan:
        add("section-graph", "Dependencies", _graph_section(plan, start))
    if start:
        add("failures", "Failures", _failures_section(start))
        add("validation", "Validation", _validation_section(start))
        add("loop-blocks", "Loop blocks", _loop_blocks_section(start))
        add("leftovers", "Leftovers", _leftovers_section(start))
    if leaks:
        add("leaks", "Leaks", _leaks_section(leaks))
    if imports:
        add("imports", "Imports", _imports_section(imports))
    if start:
        add("components", "Components", _components_section(start))

    nav = "".join(f'<a href="#{anchor}">{_e(label)}</a>' for anchor, label, _ in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8"/>',
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
        f"<title>{_e(name)} · daybreak report</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        _header(name, doc, start, plan, leaks, imports, nav),
        *(body for _, _, body in sections),
        f"<footer>Generated by daybreak {_e(__version__)} · a self-contained page: "
        "no scripts, no network.</footer>",
        "</main>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def write_report(path: str | os.PathLike[str], doc: Mapping[str, Any]) -> None:
    """Write :func:`render` of `doc` to `path` (UTF-8), replacing the file whole."""
    text = render(doc)
    target = os.fspath(path)
    temporary = f"{target}.tmp{os.getpid()}"
    with open(temporary, "w", encoding="utf-8", newline="\n") as stream:
        stream.write(text)
    os.replace(temporary, target)


def _normalize(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept a bare start report or plan dict as the whole document."""
    known = ("start", "plan", "leaks", "imports")
    if any(key in doc for key in known):
        return doc
    if "levels" in doc and "order" in doc:
        return {"plan": doc}
    if "components" in doc:
        return {"start": doc}
    return doc


# -- header --------------------------------------------------------------------------------------


def _tile(key: str, value: str, detail: str = "", tone: str = "") -> str:
    cls = f"tile {tone}" if tone in ("bad", "warn") else "tile"
    extra = f'<div class="d">{detail}</div>' if detail else ""
    return f'<div class="{cls}"><div class="k">{_e(key)}</div><div class="v">{value}</div>{extra}</div>'


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


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


# -- timeline (Gantt) ------------------------------------------------------------------------------

_CHART_W = 1100


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


def _timeline_svg(start: Mapping[str, Any]) -> str:
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
    grid.append(f'<text class="axis" x="8" y="{axis_h - 10}">time since start</text>')

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

    return (f'<svg id="timeline" class="chart" viewBox="0 0 {w} {_f(height)}" width="{w}" '
            f'height="{_f(height)}" role="img" aria-label="start-up timeline, one bar per component">'
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


# -- dependency graph ------------------------------------------------------------------------------


def _graph_nodes(plan: Mapping[str, Any],
                 start: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """The nodes (name, kind, phase, critical, depends_on, status...) and levels."""
    by_name: dict[str, dict[str, Any]] = {}
    for c in _maps(plan.get("components")):
        name = _text(c.get("name"))
        if name and name not in by_name:
            by_name[name] = {"name": name, "kind": _text(c.get("kind")) or "component",
                             "phase": c.get("phase"), "critical": c.get("critical") is not False,
                             "depends_on": _strs(c.get("depends_on")),
                             "provides": c.get("provides"), "status": None, "duration_s": None}
    for c in _maps(start.get("components")):
        name = _text(c.get("name"))
        if not name:
            continue
        node = by_name.setdefault(name, {
            "name": name, "kind": "component", "phase": c.get("phase"),
            "critical": c.get("critical") is not False, "depends_on": _strs(c.get("depends_on")),
            "provides": c.get("provides")})
        node["status"] = c.get("status")
        node["duration_s"] = _num(c.get("duration_s"))
        node["error"] = _map(c.get("error"))
        node["reason"] = c.get("reason")
    for v in _maps(start.get("validation")):
        name = _text(v.get("name"))
        if name in by_name and by_name[name]["kind"] == "validator":
            by_name[name]["status"] = v.get("status")
            by_name[name]["duration_s"] = _num(v.get("duration_s"))
            by_name[name]["error"] = _map(v.get("error"))
    nodes = list(by_name.values())

    levels: list[list[str]] = []
    placed: set[str] = set()
    for level in plan.get("levels") or []:
        names = [n for n in _strs(level) if n in by_name and n not in placed]
        placed.update(names)
        levels.append(names)
    rest = [n for n in nodes if n["name"] not in placed]
    if rest:
        depth: dict[str, int] = {name: i for i, level in enumerate(levels) for name in level}

        def level_of(root: str) -> int:
            # Depth first without recursion (a chain of thousands would overflow
            # the stack); an edge back into the current path (a cycle) is ignored.
            if root in depth:
                return depth[root]
            stack = [(root, iter(by_name[root]["depends_on"]))]
            on_path = {root}
            while stack:
                name, deps = stack[-1]
                for d in deps:
                    if d in by_name and d not in depth and d not in on_path:
                        stack.append((d, iter(by_name[d]["depends_on"])))
                        on_path.add(d)
                        break
                else:
                    stack.pop()
                    on_path.discard(name)
                    depth[name] = 1 + max((depth[d] for d in by_name[name]["depends_on"] if d in depth),
                                          default=-1)
            return depth[root]

        for node in rest:
            d = level_of(node["name"])
            while len(levels) <= d:
                levels.append([])
            levels[d].append(node["name"])
    return nodes, [level for level in levels if level]


def _order_levels(levels: list[list[str]], nodes: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Reduce edge crossings with a few barycentre sweeps (declaration order breaks ties)."""
    declared = {name: i for i, name in enumerate(nodes)}
    ordered = [sorted(level, key=lambda n: declared.get(n, 0)) for level in levels]
    dependents: dict[str, list[str]] = {name: [] for name in nodes}
    for name, node in nodes.items():
        for d in node["depends_on"]:
            if d in dependents:
                dependents[d].append(name)

    # Where each node sits in its level, kept up to date level by level: a
    # sweep costs O(nodes + edges), not a pass over every level per level.
    pos = {name: (i + 0.5) / max(1, len(level)) for level in ordered for i, name in enumerate(level)}

    def sweep(indices: Iterable[int], neighbours: Mapping[str, Sequence[str]]) -> None:
        for li in indices:
            level = ordered[li]
            current = {name: i for i, name in enumerate(level)}
            level.sort(key=functools.partial(_barycentre, neighbours=neighbours, pos=pos,
                                             current=current, declared=declared))
            for i, name in enumerate(level):
                pos[name] = (i + 0.5) / len(level)

    deps_of = {name: node["depends_on"] for name, node in nodes.items()}
    if len(ordered) > 1 and sum(len(level) for level in ordered) <= 2000:
        for _ in range(3):
            sweep(range(1, len(ordered)), deps_of)
            sweep(range(len(ordered) - 2, -1, -1), dependents)
        sweep(range(1, len(ordered)), deps_of)
    return ordered


def _barycentre(name: str, neighbours: Mapping[str, Sequence[str]], pos: Mapping[str, float],
                current: Mapping[str, int], declared: Mapping[str, int]) -> tuple[float, int]:
    ns = [pos[x] for x in neighbours.get(name, ()) if x in pos]
    return (sum(ns) / len(ns) if ns else (current[name] + 0.5) / len(current),
            declared.get(name, 0))


def _graph_section(plan: Mapping[str, Any], start: Mapping[str, Any]) -> str:
    svg = _graph_svg(plan, start)
    if not svg:
        return ""
    note = ("an arrow goes from a dependency to what needs it; the components of one level "
            "can start together")
    legend = (
        '<div class="legend"><span><i class="sw cp"></i>critical path</span>'
        '<span><i class="sw opt"></i>optional</span>'
        '<span><i class="sw line"></i>depends on</span></div>'
    )
    return (f'<section id="section-graph"><div class="section-head"><h2>Dependency graph</h2>'
            f'<span class="note">{_e(note)}</span></div>{legend}'
            f'<div class="chart-wrap">{svg}</div></section>')


def _graph_svg(plan: Mapping[str, Any], start: Mapping[str, Any]) -> str:
    node_list, levels = _graph_nodes(plan, start)
    if not node_list:
        return ""
    nodes = {n["name"]: n for n in node_list}
    levels = _order_levels(levels, nodes)
    path = _strs(start.get("critical_path")) or _strs(plan.get("critical_path"))
    on_path = set(path)

    count = len(node_list)
    compact = count > 60
    node_h = 24 if compact else 40
    font = 11 if compact else 12.5
    cols = len(levels)
    pad_x, top = 12, 26
    avail = _CHART_W - 2 * pad_x
    gap_min = 26
    # Left to right while the levels fit across the page; else top to bottom, wrapping wide levels.
    vertical = cols * (110 + gap_min) - gap_min > avail
    boxes: dict[str, tuple[float, float]] = {}
    heads: list[str] = []
    height: float
    level_of = {name: li for li, level in enumerate(levels) for name in level}
    if not vertical:
        vgap = 8 if compact else 14
        node_w = max(110.0, min(190.0, (avail - (cols - 1) * gap_min) / max(1, cols)))
        if cols == 1:
            node_w = min(node_w, 260.0)
        gap = (avail - cols * node_w) / (cols - 1) if cols > 1 else 0.0
        gap = max(gap_min, min(gap, 140.0))
        width = float(_CHART_W)
        left = (width - (cols * node_w + (cols - 1) * gap)) / 2
        tallest = max(len(level) for level in levels)
        height = top + tallest * (node_h + vgap) - vgap + 16
        for li, level in enumerate(levels):
            x = left + li * (node_w + gap)
            col_h = len(level) * (node_h + vgap) - vgap
            y0 = top + (height - top - 16 - col_h) / 2
            for i, name in enumerate(level):
                boxes[name] = (x, y0 + i * (node_h + vgap))
            heads.append(f'<text class="col-head" x="{_f(x + node_w / 2)}" y="14" '
                         f'text-anchor="middle">LEVEL {li}</text>')
    else:
        hgap, line_gap, level_gap = 12, 8, 30 if compact else 40
        gutter = 64
        node_w = 140.0 if compact else 160.0
        per_line = max(1, int((avail - gutter + hgap) // (node_w + hgap)))
        width = float(_CHART_W)
        y = 10.0
        for li, level in enumerate(levels):
            heads.append(f'<text class="col-head" x="{pad_x}" y="{_f(y + node_h / 2 + 4)}">'
                         f"LEVEL {li}</text>")
            for start_i in range(0, len(level), per_line):
                line = level[start_i:start_i + per_line]
                used = len(line) * node_w + (len(line) - 1) * hgap
                x0 = pad_x + gutter + (avail - gutter - used) / 2
                for i, name in enumerate(line):
                    boxes[name] = (x0 + i * (node_w + hgap), y)
                y += node_h + line_gap
            y += level_gap - line_gap
        height = y - level_gap + 16

    cp_pairs = set(itertools.pairwise(path))
    edges: list[str] = []
    cp_edges: list[str] = []

    def edge(a: str, b: str, cls: str) -> str:
        ax, ay = boxes[a]
        bx, by = boxes[b]
        if vertical:
            x1, y1 = ax + node_w / 2, ay + node_h
            x2, y2 = bx + node_w / 2, by - 2
            dy = max(18.0, abs(y2 - y1) * 0.4)
            if level_of.get(b, 0) <= level_of.get(a, 0):
                dy = 40.0
            d = f"M{_f(x1)},{_f(y1)} C{_f(x1)},{_f(y1 + dy)} {_f(x2)},{_f(y2 - dy)} {_f(x2)},{_f(y2)}"
        else:
            x1, y1 = ax + node_w, ay + node_h / 2
            x2, y2 = bx - 2, by + node_h / 2
            if x2 > x1:
                dx = max(20.0, (x2 - x1) * 0.5)
                d = (f"M{_f(x1)},{_f(y1)} C{_f(x1 + dx)},{_f(y1)} {_f(x2 - dx)},{_f(y2)} "
                     f"{_f(x2)},{_f(y2)}")
            else:  # same or earlier column: loop around above
                d = (f"M{_f(ax + node_w / 2)},{_f(ay)} C{_f(ax + node_w / 2)},{_f(ay - 30)} "
                     f"{_f(bx + node_w / 2)},{_f(by - 30)} {_f(bx + node_w / 2)},{_f(by - 2)}")
        marker = "arrow-cp" if "cp" in cls.split() else "arrow"
        return (f'<g class="{cls}" data-from="{_e(a)}" data-to="{_e(b)}"><title>{_e(b)} '
                f'{"waits for" if "barrier" in cls.split() else "depends on"} {_e(a)}</title>'
                f'<path d="{d}" marker-end="url(#{marker})"/></g>')

    for name in nodes:
        for dep in nodes[name]["depends_on"]:
            if dep in boxes and name in boxes:
                is_cp = (dep, name) in cp_pairs
                (cp_edges if is_cp else edges).append(edge(dep, name, "edge cp" if is_cp else "edge"))
    for a, b in cp_pairs:
        if a in boxes and b in boxes and a not in nodes[b]["depends_on"]:
            cp_edges.append(edge(a, b, "edge cp barrier"))

    boxes_svg: list[str] = []
    for name, (x, y) in boxes.items():
        node = nodes[name]
        status = node.get("status")
        tone = _tone(status) if status is not None else "none"
        optional = not node["critical"]
        cp = name in on_path
        validator = node["kind"] == "validator"
        cls = " ".join(c for c in ("node", tone, "opt" if optional else "", "cp" if cp else "") if c)
        sub_parts = [
            "validator" if validator else "",
            _text(status) if status is not None and tone != "ok" else "",
            _dur(node["duration_s"]) if node.get("duration_s") is not None else "",
            _text(node.get("phase")) if node.get("phase") is not None else "",
        ]
        sub = " · ".join(p for p in sub_parts if p)
        tip = [f"{name}" + (f" — {status}" if status is not None else ""),
               " · ".join(p for p in (f"phase {node['phase']}" if node.get("phase") is not None else "",
                                      "optional" if optional else "critical",
                                      f"provides {node['provides']}" if node.get("provides") else "",
                                      "validator" if validator else "") if p)]
        if node["depends_on"]:
            tip.append("depends on " + ", ".join(node["depends_on"]))
        error = _map(node.get("error"))
        if error:
            tip.append(_error_text(error))
        if node.get("reason"):
            tip.append(_text(node.get("reason")))
        rx = node_h / 2 if validator else 6
        stripe = {"ok": "#2da44e", "bad": "#cf222e", "warn": "#bf8700", "info": "#218bff",
                  "muted": "#8c959f"}.get(tone, "#8c959f")
        inner = node_w - 18
        if compact:
            label = _clip(name, inner, font)
            texts = (f'<text class="name" x="{_f(x + 12)}" y="{_f(y + node_h / 2 + font * 0.36)}" '
                     f'font-size="{font}">{_e(label)}</text>')
        else:
            label = _clip(name, inner, font)
            texts = (f'<text class="name" x="{_f(x + 12)}" y="{_f(y + 17)}" font-size="{font}">'
                     f'{_e(label)}</text><text class="sub" x="{_f(x + 12)}" y="{_f(y + 32)}" '
                     f'font-size="{font - 2}">{_e(_clip(sub, inner, font - 2))}</text>')
        boxes_svg.append(
            f'<g class="{cls}" data-component="{_e(name)}" data-status="{_e(status)}" '
            f'data-kind="{_e(node["kind"])}" data-level="{level_of.get(name, -1)}" '
            f'data-critical-path="{"true" if cp else "false"}"><title>{_e(chr(10).join(tip))}</title>'
            f'<rect class="box" x="{_f(x)}" y="{_f(y)}" width="{_f(node_w)}" height="{node_h}" '
            f'rx="{_f(rx)}"/>'
            f'<rect x="{_f(x + 3)}" y="{_f(y + 5)}" width="3" height="{node_h - 10}" rx="1.5" '
            f'fill="{stripe}"/>{texts}</g>')

    defs = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
            'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto">'
            '<path class="arrowhead" d="M0,1 L10,5 L0,9 z"/></marker>'
            '<marker id="arrow-cp" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="10" '
            'markerHeight="10" markerUnits="userSpaceOnUse" orient="auto">'
            '<path class="arrowhead cp" d="M0,1 L10,5 L0,9 z"/></marker></defs>')
    return (f'<svg id="graph" class="chart" viewBox="0 0 {_f(width)} {_f(height)}" '
            f'width="{_f(width)}" height="{_f(height)}" role="img" aria-label="dependency graph">'
            + defs + "".join(heads) + "".join(edges) + "".join(cp_edges) + "".join(boxes_svg)
            + "</svg>")


# -- failures and hang stacks ------------------------------------------------------------------------


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


# -- tables ---------------------------------------------------------------------------------------------


def _table(head: Sequence[str], rows: Sequence[str], num: Sequence[int] = ()) -> str:
    ths = "".join(f"<th{_attr('class', 'num', i in num)}>{_e(h)}</th>"
                  for i, h in enumerate(head))
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


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
            f"<td>{_e(c.get('phase'))}</td><td>{_code(c.get('provides'))}</td>"
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


# -- leaks ------------------------------------------------------------------------------------------------


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
    objects = _maps(leaks.get("objects"))
    if objects:
        rows = [f'<tr><td>{_code(o.get("type"))}</td><td class="num">{_e(o.get("per_cycle"))}</td></tr>'
                for o in objects]
        parts.append("<h3>Objects growing every cycle</h3>" + _table(("Type", "Per cycle"), rows, (1,)))
    if not (charts or sites or objects or fds or _maps(leaks.get("threads")) or _maps(leaks.get("tasks"))):
        parts.append('<p class="empty">No samples or growing resources recorded.</p>')
    parts.append("</section>")
    return "".join(parts)


# -- imports ----------------------------------------------------------------------------------------------


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
