"""Defensive readers of report values, and their formatting for the page."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from typing import Any

_CHART_W = 1100  # the width of every chart, in the page's pixels


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


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


def _type_name(value: object) -> str:
    """A type's name: on one line, never broken inside a word (its table scrolls instead)."""
    return f'<code class="type">{_e(value)}</code>' if value not in (None, "") else _DASH


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
