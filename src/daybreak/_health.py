"""What the web integrations share: the lifespan's background start and the health answers.

Framework-free: :mod:`daybreak.starlette` (and :mod:`daybreak.fastapi` on top of
it), :mod:`daybreak.litestar` and :mod:`daybreak.aiohttp` read their request,
ask here, and turn the answer (a status code and a JSON body) into their own
response. The system and the error of a failed background start live on an
object of the framework (Starlette's and Litestar's ``app.state``) as the
attributes ``daybreak`` and ``daybreak_error``.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import ipaddress
import json
import logging
import math
import os
import signal
import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Literal

from daybreak._drain import Drain, draining
from daybreak._redact import redact, redact_strings
from daybreak.diagnostics import task_stacks, thread_stacks
from daybreak.errors import StartupError

if TYPE_CHECKING:
    from daybreak.registry import Registry
    from daybreak.system import System

FailureHook = Callable[[BaseException], object]
Answer = tuple[int, dict[str, Any]]

STATE_ATTR: Final = "daybreak"
ERROR_ATTR: Final = "daybreak_error"

#: Seconds a readiness probe reuses the result of the last health-check run.
DEFAULT_CHECK_INTERVAL: Final = 2.0

#: The exit status of a process whose background start failed: uvicorn's
#: "startup failed" and gunicorn's "worker failed to boot" (which stops the
#: whole gunicorn, so that the orchestrator restarts the pod instead of
#: gunicorn booting workers in a loop).
FAILED_START_EXIT_STATUS: Final = 3

# Headers a proxy or CDN adds; uvicorn (--proxy-headers), hypercorn and
# client-address middlewares rewrite the ASGI "client" from them, so a request
# carrying one is not known to come from loopback.
_FORWARDING_HEADERS: Final = frozenset((
    "forwarded", "x-forwarded-for", "x-real-ip", "x-original-forwarded-for", "x-client-ip",
    "true-client-ip", "cf-connecting-ip", "fastly-client-ip", "x-cluster-client-ip"))


# -- lifespan ------------------------------------------------------------------


def request_shutdown(error: BaseException | None = None) -> None:
    """Ask the server to shut down gracefully: ``SIGTERM`` to this process.

    uvicorn, hypercorn, aiohttp's runner and gunicorn's workers treat it as a
    graceful shutdown (stop accepting connections, finish the requests in
    flight, run the lifespan shutdown). ASGI has no message for an
    application to stop its server, so a signal is the portable way. Under a
    server that installs no handler, the default action ends the process.
    ``error`` is ignored.
    """
    del error
    os.kill(os.getpid(), signal.SIGTERM)


def reaches_a_handler(log: logging.Logger, level: int) -> bool:
    """Whether a record of ``level`` on ``log`` would reach a handler that shows it."""
    if not log.isEnabledFor(level):  # also False for a logger that fileConfig() disabled
        return False
    current: logging.Logger | None = log
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) and level >= h.level for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def report_error(log: logging.Logger, message: str) -> None:
    """Log ``message`` at ERROR, or write it to stderr when no handler would show it.

    A failed start must leave a trace even in an app that never configured
    logging (daybreak's logger has only a ``NullHandler`` of its own).
    """
    # logging.config.fileConfig() (Alembic's env.py) disables the daybreak.* loggers it
    # does not name, as it does the `daybreak` logger (events.log_event); its level still rules.
    log.disabled = False
    if reaches_a_handler(log, logging.ERROR):
        log.error("%s", message)
    else:
        print(message, file=sys.stderr, flush=True)


def exit_now(status: int) -> None:
    """End the process with ``status`` from the lifespan itself (aiohttp lets SystemExit through)."""
    raise SystemExit(status)


def exit_from_loop(status: int) -> None:
    """End the process with ``status`` once the lifespan has returned (ASGI servers).

    An ASGI server runs the lifespan in a task and catches what it raises, so
    the exit comes from a loop callback: SystemExit there ends the server's
    ``asyncio.run()`` (uvloop's at the end of its current turn). uvicorn
    re-raises the SIGTERM that asked it to shut down once it has, under the
    default action, which would end the process as "terminated" first: the
    signal stays blocked from here on, pending, until the process exits.
    """
    if hasattr(signal, "pthread_sigmask"):  # not on Windows
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    asyncio.get_running_loop().call_soon(exit_now, status)


@asynccontextmanager
async def running(
    registry: Registry,
    state: object,
    *,
    background: bool,
    on_failure: FailureHook | None,
    log: logging.Logger,
    start_options: Mapping[str, Any],
    drain: float = 0.0,
    end_process: Callable[[int], None] = exit_from_loop,
) -> AsyncIterator[System]:
    """Start ``registry`` for a server's lifespan, put it on ``state``, stop it afterwards.

    With ``background=True`` the start runs in a task of its own. When it
    fails: ``state.daybreak_error`` gets the redacted message (the probes turn
    503), the failure is reported (:func:`report_error`), and ``on_failure``
    is called. The default (``on_failure=None``) asks the server to shut
    down (:func:`request_shutdown`) and, once the system has stopped, ends
    the process with :data:`FAILED_START_EXIT_STATUS` through ``end_process``.

    ``drain`` (seconds, resolved by :func:`daybreak._drain.drain_seconds`):
    on SIGTERM, readiness answers 503 for that long before the server gets
    the signal (:class:`daybreak._drain.Drain`).
    """
    system = registry.start(**start_options)
    setattr(state, STATE_ATTR, system)
    setattr(state, ERROR_ATTR, None)
    drainer = Drain(system, drain, log)
    drainer.install()
    try:
        async with _started(state, system, background=background, on_failure=on_failure, log=log,
                            end_process=end_process):
            yield system
    finally:
        drainer.uninstall()


@asynccontextmanager
async def _started(state: object, system: System, *, background: bool, on_failure: FailureHook | None,
                   log: logging.Logger, end_process: Callable[[int], None]) -> AsyncIterator[None]:
    if not background:
        await system.start()
        try:
            yield
        finally:
            await system.stop()
        return
    task = asyncio.get_running_loop().create_task(
        _start_in_background(state, system, on_failure, log), name=f"daybreak: start {system.name}")
    try:
        yield
    finally:
        if not task.done():
            task.cancel()
        await asyncio.wait({task})
        await system.stop()
        if on_failure is None and not task.cancelled() and task.result():
            log.debug("daybreak: exiting with status %d after the failed start of %r",
                      FAILED_START_EXIT_STATUS, system.name)
            end_process(FAILED_START_EXIT_STATUS)


async def _start_in_background(state: object, system: System, on_failure: FailureHook | None,
                               log: logging.Logger) -> bool:
    """Start ``system``; True when the start failed (and the failure was handled)."""
    try:
        await system.start()
    except StartupError as exc:
        failure: BaseException = exc
        message = str(exc)  # redacted by the engine
    except Exception as exc:
        failure = exc
        message = redact(f"{type(exc).__name__}: {exc}")
    else:
        return False
    setattr(state, ERROR_ATTR, message)
    then = ("shutting the server down (exit status "
            f"{FAILED_START_EXIT_STATUS})" if on_failure is None else "calling its on_failure hook")
    report_error(log, f"daybreak: {system.name!r} failed to start in the background; {then}\n{message}")
    try:
        result = (request_shutdown if on_failure is None else on_failure)(failure)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("daybreak: the on_failure hook of %r failed", system.name)
    return True


# -- health answers ------------------------------------------------------------

_Status = Literal["ready", "degraded", "unhealthy"]


def unavailable() -> Answer:
    """503 for a probe of an app whose lifespan has not put a system on it."""
    return 503, {"status": "unavailable", "error": "app.state.daybreak is not set"}


def live(system: System | None, error: str | None) -> Answer:
    if error is not None or (system is not None and system.state.status == "failed"):
        return 503, {"status": "failed", "error": error or _system_error(system)}
    return 200, {"status": "alive"}


class _Readiness:
    """Health-check results of one system, shared by every probe for ``interval`` s."""

    __slots__ = ("at", "interval", "lock", "results")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.lock = asyncio.Lock()
        self.at = -math.inf
        self.results: list[dict[str, Any]] = []

    def fresh(self) -> bool:
        return time.monotonic() - self.at < self.interval

    async def run(self, system: System) -> tuple[list[dict[str, Any]], float]:
        if not self.fresh():
            async with self.lock:  # one run at a time; the probes that waited reuse it
                if not self.fresh():
                    self.results = await system.check()
                    self.at = time.monotonic()
        return self.results, time.monotonic() - self.at


class Probes:
    """The health answers of one set of health routes (their check cache and settings)."""

    __slots__ = ("_readiness", "allow_loopback", "check_interval", "stacks", "token")

    def __init__(self, *, stacks: bool, token: str | None, allow_loopback: bool,
                 check_interval: float) -> None:
        if check_interval < 0:
            raise ValueError(f"daybreak: check_interval={check_interval!r}; expected seconds >= 0")
        if token is not None and not token:
            raise ValueError("daybreak: token='' would accept an empty bearer token; pass None or a secret")
        if stacks and token is None and not allow_loopback:
            raise ValueError("daybreak: stacks=True serves every thread's stack; pass token='<secret>' "
                             "(Authorization: Bearer), or allow_loopback=True to trust loopback peers")
        self.stacks = stacks
        self.token = token
        self.allow_loopback = allow_loopback
        self.check_interval = check_interval
        self._readiness: weakref.WeakKeyDictionary[System, _Readiness] = weakref.WeakKeyDictionary()

    async def ready(self, system: System | None, error: str | None) -> Answer:
        if system is None:
            return unavailable()
        status = system.state.status
        if status in ("ready", "degraded") and system in draining:  # SIGTERM came: out of rotation
            return 503, {"status": "draining", "phase": None, "failed": _failed_components(system)}
        if status not in ("ready", "degraded"):
            body: dict[str, Any] = {"status": status, "phase": system.state.phase,
                                    "failed": _failed_components(system)}
            error = error or _system_error(system)
            if error:
                body["error"] = error
            return 503, body
        cache = self._readiness.get(system)
        if cache is None:
            cache = self._readiness[system] = _Readiness(self.check_interval)
        results, age = await cache.run(system)
        status = system.state.status  # it may have changed while the checks ran
        if status not in ("ready", "degraded"):
            return 503, {"status": status, "phase": system.state.phase,
                         "failed": _failed_components(system)}
        failed = _failed_components(system)
        critical_failure = False
        for result in results:
            if result.get("status") != "failed":
                continue
            critical = _is_critical(system, result.get("component"))
            critical_failure = critical_failure or critical
            failed.append({"name": result["name"], "kind": "check",
                           "component": result.get("component"), "critical": critical,
                           "status": "failed", "error": _error_text(result.get("error"))})
        verdict: _Status = "unhealthy" if critical_failure else (
            "degraded" if status == "degraded" or failed else "ready")
        return (503 if critical_failure else 200), {
            "status": verdict, "phase": None, "failed": failed, "checks_age_s": round(age, 3)}

    def stacks_denied(self, *, authorization: str | None, query: Iterable[str],
                      peer: str | None, headers: Iterable[str]) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        """Why a request may not see the stacks (status, body, headers), or None when it may.

        ``authorization`` is the ``Authorization`` header, ``query`` the names
        in the query string, ``peer`` the client host the server reports and
        ``headers`` the (lower-case) header names of the request.
        """
        if any(name.lower() in ("token", "access_token") for name in query):
            return 400, {"error": "a token in the URL ends up in access logs; send "
                                  "'Authorization: Bearer <token>' instead"}, {}
        if self.token is not None and authorization:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                    credentials.strip().encode(), self.token.encode()):
                return None
        if self.allow_loopback and _is_loopback(peer) and not any(
                h.lower() in _FORWARDING_HEADERS for h in headers):
            return None
        if self.token is None:
            return 403, {"error": "stacks are served to loopback peers only (allow_loopback=True), "
                                  "not through a proxy"}, {}
        return 401, {"error": "a valid 'Authorization: Bearer <token>' is required"}, \
            {"WWW-Authenticate": "Bearer"}


def stacks() -> Answer:
    # Thread and task names, and the source lines of frames, may hold secrets.
    return 200, redact_strings({"threads": [t.to_dict() for t in thread_stacks()],
                                "tasks": [t.to_dict() for t in task_stacks()]})


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


# The rendered report of each system, once per settled state ("started":
# ready, degraded or failed, and while stopping; "stopped"): rendering a large
# plan takes seconds, and /health/startup is open to every prober. The render
# runs in the loop's default executor, so the loop serves other requests meanwhile,
# and the requests that come during it wait for that one render.
_rendered: weakref.WeakKeyDictionary[System, tuple[str, asyncio.Future[bytes]]] = weakref.WeakKeyDictionary()


def _render(system: System) -> bytes:
    return json.dumps(system.report().to_dict(), default=str).encode()


async def startup(system: System) -> tuple[int, bytes]:
    """The start-up report as JSON bytes: 200 once the start finished, 503 before and after a failure.

    While the system is pending or starting the body is a summary (``name``,
    ``status``, ``phase``); the full report is rendered once the start has
    finished and once more after the stop, off the event loop, then served
    from that cache.
    """
    status = system.state.status
    code = 503 if status in ("pending", "starting", "failed") else 200
    if status in ("pending", "starting"):
        return code, json.dumps({"name": system.name, "status": status,
                                 "phase": system.state.phase}).encode()
    settled = "stopped" if status == "stopped" else "started"
    loop = asyncio.get_running_loop()
    entry = _rendered.get(system)
    if entry is not None and entry[0] == settled and entry[1].done() and not entry[1].cancelled() \
            and entry[1].exception() is None:
        return code, entry[1].result()  # also when another loop rendered it
    if entry is None or entry[0] != settled or entry[1].done() or entry[1].get_loop() is not loop:
        entry = _rendered[system] = (settled, loop.run_in_executor(None, _render, system))
    try:
        return code, await asyncio.shield(entry[1])
    except Exception:
        if _rendered.get(system) is entry:  # the next request tries again
            del _rendered[system]
        raise


def memory(system: System) -> Answer:
    from daybreak.monitor import MemoryMonitor

    monitor = system.get(MemoryMonitor)
    if isinstance(monitor, MemoryMonitor):
        return 200, monitor.to_dict()
    step = next((s for s in system.plan.steps if s.provides is MemoryMonitor), None)
    if step is None:
        return 404, {
            "status": "absent",
            "error": f"no component of {system.name!r} provides daybreak.monitor.MemoryMonitor; add "
                     "registry.add(daybreak.monitor.memory_monitor(), optional=True) to monitor memory"}
    cs = system.state.components[step.name]
    detail = f"the memory monitor (component {step.name!r}) is {cs.status}"
    if cs.reason:
        detail += f": {cs.reason}"
    elif cs.error is not None:
        detail += f": {cs.error}"
    return (503 if cs.status in ("pending", "starting") else 404), {"status": cs.status, "error": detail}


def _system_error(system: System | None) -> str | None:
    if system is None or system.state.error is None:
        return None
    return str(system.state.error)


def _error_text(error: Any) -> str | None:
    if isinstance(error, dict):
        text = f"{error.get('type')}: {error.get('message')}"
        return f"{text} (at {error['where']})" if error.get("where") else text
    return None if error is None else str(error)


def _is_critical(system: System, name: str | None) -> bool:
    if name is None:
        return False
    try:
        return system.plan.step(name).component.critical
    except (KeyError, LookupError, ValueError):
        return False


def _failed_components(system: System) -> list[dict[str, Any]]:
    """Components that failed, and, when degraded, those skipped because of it.

    A component switched off by configuration (``disabled``) is not a failure,
    and neither is one skipped only because of that while the system is ready.
    """
    show_skipped = system.state.status == "degraded"
    out = []
    for step in system.plan.steps:
        cs = system.state.components[step.name]
        if cs.status == "failed" or (cs.status == "skipped" and show_skipped):
            out.append({"name": step.name, "kind": step.component.kind,
                        "critical": step.component.critical, "status": cs.status,
                        "error": str(cs.error) if cs.error else cs.reason})
    return out
