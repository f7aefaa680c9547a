"""Prometheus metrics of a system (extra ``prometheus``).

A collector reads the system's report at scrape time, so the numbers are
always those of the report, never a second bookkeeping::

    from prometheus_client import REGISTRY
    from daybreak.prometheus import DaybreakCollector

    REGISTRY.register(DaybreakCollector(system))

``metrics_app(system=...)`` is an ASGI app serving them from a registry of
their own. On FastAPI, ``daybreak.fastapi.metrics_route(app)`` serves it at
``/metrics`` in one line; by hand::

    app.mount("/metrics", metrics_app(system=lambda: app.state.daybreak))

(a mount answers ``/metrics/``, and redirects ``/metrics`` there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from daybreak.system import System

__all__ = ["DaybreakCollector", "metrics_app"]

SYSTEM_STATUSES = ("pending", "starting", "ready", "degraded", "failed", "stopping", "stopped")
COMPONENT_STATUSES = ("pending", "starting", "started", "failed", "skipped", "disabled", "stopping",
                      "stopped")


class DaybreakCollector(Collector):
    """Start-up durations, statuses, retries, loop blocks and memory figures.

    ``system`` is a :class:`System` or a callable returning the current one
    (``lambda: app.state.daybreak``), or None while there is none.
    """

    def __init__(self, system: System | Callable[[], System | None]) -> None:
        self._system = system

    def _current(self) -> System | None:
        from daybreak.system import System

        return self._system if isinstance(self._system, System) else self._system()

    def collect(self) -> Iterator[Metric]:
        system = self._current()
        if system is None:
            return
        report = system.report().to_dict()
        name = report["name"]
        status = GaugeMetricFamily("daybreak_system_status", "1 for the system's current status",
                                   labels=["system", "status"])
        for s in SYSTEM_STATUSES:
            status.add_metric([name, s], 1.0 if report["status"] == s else 0.0)
        yield status
        duration = GaugeMetricFamily("daybreak_start_seconds", "Seconds the start took", labels=["system"])
        if report["duration_s"] is not None:
            duration.add_metric([name], report["duration_s"])
        yield duration
        yield _gauge("daybreak_critical_path_seconds", "Seconds on the critical path", name,
                     report["critical_path_s"])
        phase = GaugeMetricFamily("daybreak_phase_start_seconds", "Seconds each phase took",
                                  labels=["system", "phase"])
        for p in report["phases"]:
            if p["duration_s"] is not None:
                phase.add_metric([name, p["name"]], p["duration_s"])
        yield phase
        comp_seconds = GaugeMetricFamily("daybreak_component_start_seconds",
                                         "Seconds each component took to start",
                                         labels=["system", "component", "phase"])
        comp_status = GaugeMetricFamily("daybreak_component_status", "1 for each component's status",
                                        labels=["system", "component", "status"])
        retries = CounterMetricFamily("daybreak_component_retries", "Extra start attempts",
                                      labels=["system", "component"])
        for c in report["components"]:
            if c["duration_s"] is not None:
                comp_seconds.add_metric([name, c["name"], c["phase"] or ""], c["duration_s"])
            for s in COMPONENT_STATUSES:
                comp_status.add_metric([name, c["name"], s], 1.0 if c["status"] == s else 0.0)
            retries.add_metric([name, c["name"]], max(0, c["attempts"] - 1))
        yield comp_seconds
        yield comp_status
        yield retries
        blocks = report["loop_blocks"]
        yield _counter("daybreak_loop_blocks", "Event-loop blocks seen while starting and stopping",
                       name, len(blocks))
        yield _gauge("daybreak_loop_block_seconds_max", "The longest event-loop block", name,
                     max((b["duration_s"] for b in blocks), default=0.0))
        monitor = _monitor_of(system)
        if monitor is not None:
            data = monitor.to_dict()
            if data["rss_bytes"] is not None:
                yield _gauge("daybreak_memory_rss_bytes", "Resident set size", name, data["rss_bytes"])
            if data["growth_bytes_per_s"] is not None:
                yield _gauge("daybreak_memory_growth_bytes_per_second", "Robust RSS trend", name,
                             data["growth_bytes_per_s"])
            yield _counter("daybreak_memory_warnings", "Sustained-growth warnings", name, data["warnings"])


def _gauge(metric: str, doc: str, system: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(metric, doc, labels=["system"])
    family.add_metric([system], float(value))
    return family


def _counter(metric: str, doc: str, system: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(metric, doc, labels=["system"])
    family.add_metric([system], float(value))
    return family


def _monitor_of(system: System) -> Any:
    from daybreak.monitor import MemoryMonitor

    return system.get(MemoryMonitor)


def metrics_app(collector_registry: CollectorRegistry | None = None, *,
                system: System | Callable[[], System | None] | None = None) -> Any:
    """An ASGI app serving the metrics of ``collector_registry``.

    With ``system`` (a :class:`System`, or a callable returning the current
    one, such as ``lambda: app.state.daybreak``), a :class:`DaybreakCollector`
    of it is registered on ``collector_registry``, or on a new registry of its
    own when none is given. Without ``system``, the default is
    ``prometheus_client``'s global registry.
    """
    if system is not None:
        if collector_registry is None:
            collector_registry = CollectorRegistry()
        collector_registry.register(DaybreakCollector(system))
    if collector_registry is None:
        return make_asgi_app()
    return make_asgi_app(registry=collector_registry)
