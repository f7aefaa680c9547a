"""Find lines of a test file by the marker comment that ends them."""

from __future__ import annotations

from pathlib import Path


def marker_line(path: str, marker: str) -> str:
    """``path:line`` of the one line of ``path`` that ends with ``# at: <marker>``."""
    tag = f"# at: {marker}"
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    hits = [n for n, text in enumerate(lines, 1) if text.rstrip().endswith(tag)]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times"
    return f"{path}:{hits[0]}"
