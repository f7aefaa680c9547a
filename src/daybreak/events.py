"""Lifecycle events, like uber-go/fx's event logger: subscribe a callable.

``registry.start(listeners=[print])`` calls each listener with every
:class:`Event` on the event loop's thread. A listener that raises is logged
and otherwise ignored: observing must never break a start. Without
listeners, events go to the ``daybreak`` logger, one line each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "Listener", "level_of", "log_event"]

logger = logging.getLogger("daybreak")
# A library logs only where the application configured logging (the
# standard advice): without this, Python's last-resort handler would print
# every warning to stderr.
logger.addHandler(logging.NullHandler())


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened: ``kind`` is ``"<subject>.<what>"``.

    Kinds: ``system.starting``, ``system.ready``, ``system.degraded``,
    ``system.failed``, ``system.stopping``, ``system.stopped``,
    ``phase.started``, ``phase.finished``, ``component.starting``,
    ``component.started``, ``component.retrying``, ``component.failed``,
    ``component.disabled``, ``component.skipped``, ``component.stopping``,
    ``component.stopped``, ``check.passed``, ``check.failed``,
    ``validator.passed``, ``validator.failed``, ``loop.blocked``.
    """

    kind: str
    system: str
    component: str | None = None
    phase: str | None = None
    duration_s: float | None = None
    attempt: int | None = None
    error: str | None = None
    where: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}

    def __str__(self) -> str:
        parts = [self.kind, self.system]
        if self.component:
            parts.append(f"component={self.component}")
        if self.phase:
            parts.append(f"phase={self.phase}")
        if self.attempt:
            parts.append(f"attempt={self.attempt}")
        if self.duration_s is not None:
            parts.append(f"duration_s={self.duration_s:.4f}")
        if self.where:
            parts.append(f"where={self.where}")
        if self.error:
            parts.append(f"error={self.error!r}")
        return " ".join(parts)


Listener = Callable[[Event], None]

_LEVELS = {"failed": logging.ERROR, "retrying": logging.WARNING, "degraded": logging.WARNING,
           "blocked": logging.WARNING, "skipped": logging.WARNING}


def level_of(kind: str) -> int:
    """The logging level the default listener uses for events of ``kind``."""
    # check.passed: every readiness probe re-runs the checks; routine, not news.
    if kind in ("component.starting", "component.stopping", "check.passed"):
        return logging.DEBUG
    return _LEVELS.get(kind.rpartition(".")[2], logging.INFO)


def log_event(event: Event) -> None:
    """The default listener: one greppable line on the ``daybreak`` logger."""
    # logging.config.fileConfig() disables every logger it does not name (Alembic's
    # env.py calls it, often in the middle of a start): keep daybreak's events on.
    # To silence them, set the logger's level instead.
    logger.disabled = False
    logger.log(level_of(event.kind), "%s", event)
