"""Process-wide hooks counted per cycle: atexit callbacks, logging handlers, signal handlers, sys/threading hooks.

A hook added per start costs a few hundred bytes, below any memory threshold, yet
every one is kept for the life of the process. So they are counted like threads:
one more in every measured cycle is a leak whatever its size. atexit callbacks and
logging handlers are counted as they are; a signal handler or an exception hook
replaced is counted as a change (cumulative), so a stop that restores what it
replaced, or a start that sets the same function again, adds nothing.

``atexit._ncallbacks()`` only ever grows (``atexit.unregister`` empties a slot and
keeps it), so while the check runs ``atexit.register`` and ``atexit.unregister``
are wrapped: the callbacks they remove are taken off the count, and the ones they
add are named with the line that registered them. Both are put back afterwards.
"""

from __future__ import annotations

import atexit
import logging
import signal
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

from daybreak.diagnostics.frames import Frame, innermost_project_frame
from daybreak.leaks._report import HookKind, LeakedHook

_HOOK_NAMES = ("excepthook", "unraisablehook")


def _signals() -> dict[int, object]:
    handlers: dict[int, object] = {}
    for signum in signal.valid_signals():
        try:
            handlers[int(signum)] = signal.getsignal(signum)
        except (OSError, ValueError):  # SIGKILL and SIGSTOP on some platforms
            continue
    return handlers


def _excepthooks() -> dict[str, object]:
    hooks: dict[str, object] = {f"sys.{name}": getattr(sys, name, None) for name in _HOOK_NAMES}
    hooks["threading.excepthook"] = threading.excepthook
    return hooks


def _loggers() -> Iterator[logging.Logger]:
    yield logging.getLogger()
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            yield logger


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:  # a real-time signal
        return f"signal {signum}"


def _name(obj: object) -> str:
    if obj in (signal.SIG_DFL, signal.SIG_IGN, None):
        return str(obj)
    qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None)
    return f"{module}.{qualname}" if module else str(qualname)


def _defined_at(obj: object) -> str | None:
    code = getattr(getattr(obj, "__func__", obj), "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else None


def _created_at(obj: object) -> str | None:
    traceback = tracemalloc.get_object_traceback(obj)
    if traceback is None:
        return None
    site = innermost_project_frame([Frame(f.filename, f.lineno, "") for f in traceback])
    return site.where if site is not None else None


class Hooks:
    """The hooks of the process at one measure, and the changes since the previous one."""

    def __init__(self, ignore: tuple[logging.Handler, ...] = ()) -> None:
        self.ignore = ignore  # the checker's own handlers
        self.registered: list[tuple[Callable[..., Any], str | None]] = []  # through the wrapper
        self.removed = 0
        self.register, self.unregister = atexit.register, atexit.unregister
        self.signals = _signals()
        self.hooks = _excepthooks()
        self.changes = {"signal": 0, "excepthook": 0}
        self.base_signals = dict(self.signals)
        self.base_hooks = dict(self.hooks)
        self.base_handlers = {id(h) for h in self._handlers()}

    def __enter__(self) -> Hooks:
        register, unregister = self.register, self.unregister

        def wrapped_register(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Callable[..., Any]:
            caller = sys._getframe(1)
            self.registered.append((func, f"{caller.f_code.co_filename}:{caller.f_lineno}"))
            return register(func, *args, **kwargs)

        def wrapped_unregister(func: Callable[..., Any], /) -> None:
            kept = [entry for entry in self.registered if entry[0] != func]
            self.removed += len(self.registered) - len(kept)
            self.registered = kept
            unregister(func)

        atexit.register, atexit.unregister = wrapped_register, wrapped_unregister
        return self

    def __exit__(self, *exc_info: object) -> None:
        atexit.register, atexit.unregister = self.register, self.unregister
        self.registered.clear()

    def _handlers(self) -> Iterator[logging.Handler]:
        for logger in _loggers():
            for handler in logger.handlers:
                if handler not in self.ignore:
                    yield handler

    def counts(self) -> tuple[int, int, int, int]:
        """(atexit callbacks, logging handlers, signal changes, hook changes) so far, in HOOK_KINDS order."""
        now = _signals()
        self.changes["signal"] += sum(1 for s, h in now.items() if self.signals.get(s) is not h)
        self.signals = now
        hooks = _excepthooks()
        self.changes["excepthook"] += sum(1 for k, h in hooks.items() if self.hooks.get(k) is not h)
        self.hooks = hooks
        handlers = sum(1 for _ in self._handlers())
        return atexit._ncallbacks() - self.removed, handlers, self.changes["signal"], self.changes["excepthook"]

    def found(self, kinds: tuple[HookKind, ...], per_cycle: dict[HookKind, float]) -> tuple[LeakedHook, ...]:
        """What each leaking kind of hook is, compared with the baseline."""
        out: list[LeakedHook] = []
        for kind in kinds:
            rate = per_cycle[kind]
            if kind == "atexit":
                named: dict[tuple[str, str | None], int] = {}
                for func, where in self.registered:
                    named[(_name(func), where)] = named.get((_name(func), where), 0) + 1
                for (name, where), _count in sorted(named.items(), key=lambda item: -item[1]):
                    out.append(LeakedHook("atexit", f"atexit.register({name})", rate, where))
                if not named:
                    out.append(LeakedHook("atexit", f"{atexit._ncallbacks() - self.removed} callbacks", rate, None))
            elif kind == "logging":
                groups: dict[tuple[str, str, str | None], int] = {}
                for logger in _loggers():
                    for h in logger.handlers:
                        if h not in self.ignore and id(h) not in self.base_handlers:
                            key = (logger.name, type(h).__qualname__, _created_at(h))
                            groups[key] = groups.get(key, 0) + 1
                for (logger_name, handler_type, where), _count in sorted(groups.items(), key=_by_count):
                    out.append(LeakedHook("logging", f"{handler_type} on logger {logger_name!r}", rate, where))
            elif kind == "signal":
                for signum, current in sorted(_signals().items()):
                    if self.base_signals.get(signum) is not current:
                        out.append(LeakedHook("signal", f"{_signal_name(signum)}: {_name(current)}",
                                              rate, _defined_at(current)))
            else:
                for name, hook in _excepthooks().items():
                    if self.base_hooks.get(name) is not hook:
                        out.append(LeakedHook("excepthook", f"{name}: {_name(hook)}", rate, _defined_at(hook)))
        return tuple(out)


def _by_count(item: tuple[tuple[str, str, str | None], int]) -> tuple[int, str]:
    return -item[1], item[0][0]
