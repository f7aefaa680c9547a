"""The dependency graph: levels left to right (or top to bottom), edges, the critical path."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from daybreak.html._values import _CHART_W, _clip, _dur, _e, _error_text, _f, _map, _maps, _num, _strs, _text, _tone


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
    barrier = ('<span><i class="sw line barrier"></i>waits for the phase before (a barrier, '
               'not a dependency)</span>' if 'class="edge cp barrier"' in svg else "")
    legend = (
        '<div class="legend"><span><i class="sw cp"></i>critical path</span>'
        '<span><i class="sw opt"></i>optional</span>'
        f'<span><i class="sw line"></i>depends on</span>{barrier}</div>'
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
