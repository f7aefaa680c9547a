"""Line numbers by marker comment, so tests assert exact lines without hard-coding them."""

from __future__ import annotations

from pathlib import Path


def line_of(file: str, marker: str) -> int:
    tag = f"# marker: {marker}"
    lines = Path(file).read_text(encoding="utf-8").splitlines()
    hits = [number for number, text in enumerate(lines, 1) if text.rstrip().endswith(tag)]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times in {file}"
    return hits[0]


def where(file: str, marker: str) -> str:
    return f"{file}:{line_of(file, marker)}"
