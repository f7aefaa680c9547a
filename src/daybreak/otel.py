"""OpenTelemetry traces of start and stop (extra ``otel``).

One span for the start, one per phase, one per component start, check and
stop, with status and error, so start-up shows in the tracing backend::

    from daybreak.otel import TracingListener

    registry.start(listeners=[TracingListener()])
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from daybreak.events import Event, log_event

__all__ = ["TracingListener"]

_ENDS_OK = {"component.started", "component.stopped", "component.disabled", "check.passed"}
_ENDS_ERROR = {"component.failed", "check.failed"}


class TracingListener:
    """An event listener that turns lifecycle events into spans.

    ``also`` is called with every event too (default: the logging listener),
    since passing listeners replaces the default one.
    """

    def __init__(self, tracer: trace.Tracer | None = None, *, also: Any = log_event) -> None:
        self.tracer = tracer or trace.get_tracer("daybreak")
        self.also = also
        self._root: Span | None = None
        self._phase: Span | None = None
        self._spans: dict[tuple[str, str], Span] = {}

    def _start(self, name: str, parent: Span | None, **attributes: Any) -> Span:
        context = trace.set_span_in_context(parent) if parent is not None else None
        attrs = {k: v for k, v in attributes.items() if v is not None}
        return self.tracer.start_span(name, context=context, attributes=attrs, start_time=time.time_ns())

    def _end_phase(self) -> None:
        if self._phase is not None:
            self._phase.end()
            self._phase = None

    def __call__(self, event: Event) -> None:
        if self.also is not None:
            self.also(event)
        kind = event.kind
        attrs = {"daybreak.system": event.system, "daybreak.component": event.component,
                 "daybreak.phase": event.phase}
        if kind in ("system.starting", "system.stopping"):
            self._end_phase()
            verb = "start" if kind == "system.starting" else "stop"
            self._root = self._start(f"daybreak.{verb} {event.system}", None, **attrs)
        elif kind in ("system.ready", "system.degraded", "system.failed", "system.stopped"):
            self._end_phase()
            for unfinished in self._spans.values():
                unfinished.set_status(Status(StatusCode.ERROR, "unfinished"))
                unfinished.end()
            self._spans.clear()
            if self._root is not None:
                self._root.set_attribute("daybreak.status", kind.split(".")[1])
                if kind == "system.failed":
                    self._root.set_status(Status(StatusCode.ERROR, event.error or "failed"))
                self._root.end()
                self._root = None
        elif kind == "phase.started":
            self._end_phase()
            self._phase = self._start(f"phase {event.phase}", self._root, **attrs)
        elif kind in ("component.starting", "component.stopping"):
            verb = "start" if kind == "component.starting" else "stop"
            parent = self._phase if verb == "start" and self._phase is not None else self._root
            self._spans[(verb, event.component or "")] = self._start(f"{verb} {event.component}", parent,
                                                                     **attrs)
        elif kind in _ENDS_OK or kind in _ENDS_ERROR:
            verb = "stop" if kind == "component.stopped" else "start"
            key = (verb, event.component or "")
            if kind.startswith("check."):
                span = self._start(f"check of {event.component}", self._spans.get(key), **attrs)
            elif key in self._spans:
                span = self._spans.pop(key)
            else:
                return
            if event.attempt:
                span.set_attribute("daybreak.attempts", event.attempt)
            if kind in _ENDS_ERROR or event.error:
                span.set_status(Status(StatusCode.ERROR, event.error or "failed"))
                if event.where:
                    span.set_attribute("code.location", event.where)
            span.set_attribute("daybreak.outcome", kind.split(".")[1])
            span.end()
        elif kind == "component.retrying":
            retried = self._spans.get(("start", event.component or ""))
            if retried is not None:
                retried.add_event("retry", {"daybreak.attempt": event.attempt or 0, "error": event.error or ""})
