"""The start-up report and its JSON form, the schema used everywhere.

CLI ``--json``, the health endpoints and the HTML report all show
:meth:`StartupReport.to_dict`. Every message in it was redacted when it was
recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ErrorInfo", "StartupReport"]


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What went wrong: exception type, redacted message, ``file:line``."""

    type: str
    message: str
    where: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "where": self.where}

    def __str__(self) -> str:
        text = f"{self.type}: {self.message}" if self.message else self.type
        return f"{text} (at {self.where})" if self.where else text


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


@dataclass(slots=True)
class StartupReport:
    """A snapshot of a system's start (and stop): see DESIGN.md for the schema."""

    name: str
    status: str
    duration_s: float | None
    critical_path_s: float
    critical_path: list[str]
    phases: list[dict[str, Any]]
    components: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    loop_blocks: list[dict[str, Any]]
    leftovers: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"threads": [], "tasks": [], "fds": []})
    error: ErrorInfo | None = None
    start_status: str | None = None  # ready, degraded or failed once the start finished


    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "start_status": self.start_status,
            "duration_s": _round(self.duration_s),
            "critical_path_s": _round(self.critical_path_s),
            "critical_path": list(self.critical_path),
            "phases": self.phases,
            "components": self.components,
            "validation": self.validation,
            "loop_blocks": self.loop_blocks,
            "leftovers": self.leftovers,
            "error": self.error.to_dict() if self.error else None,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def component(self, name: str) -> dict[str, Any]:
        """The entry of one component (or validator) by name."""
        for entry in self.components:
            if entry["name"] == name:
                return entry
        for entry in self.validation:
            if entry["name"] == name:
                return entry
        raise KeyError(f"no component or validator named {name!r} in the report of {self.name!r}")

    @property
    def ok(self) -> bool:
        """The start succeeded (ready or degraded), whatever happened since."""
        return self.start_status in ("ready", "degraded")
