"""The half of ``daybreak imports`` that runs inside the child process.

The parent (:mod:`daybreak.imports`) starts a fresh interpreter::

    <sys.executable> -P -X importtime .../daybreak/_audit_child.py CONFIG.json

This file is executed *as a script*, not imported as ``daybreak._audit_child``,
so that nothing of daybreak is imported in the child before the audited imports
(auditing ``daybreak`` itself would otherwise measure a warm package). The
configuration names the modules to import, in dependency order. Before the
first import the child:

1. installs a PEP 578 audit hook and wraps the few side effects that raise no
   audit event (``threading.Thread.start``, ``_thread.start_new_thread`` on
   3.11, ``signal.signal``, ``threading.settrace``/``setprofile``);
2. starts a watchdog thread. When no module has finished for ``timeout / 2``
   seconds it samples the main thread's stack (``sys._current_frames()``, every
   frame, however deep); the same stack in two successive samples is a hang:
   it writes that stack and every thread's, and ends the child, which the
   parent replaces by a fresh one for the modules still to import. A stack
   that changes is a slow import, not a hung one;
3. arms ``faulthandler.dump_traceback_later`` as the last resort for a main
   thread that never lets the watchdog run (a C call holding the GIL): its
   watchdog is a C thread that needs no GIL. The watchdog re-arms it each time
   it runs. ``SIGUSR1`` dumps the stacks too, for the parent to pull.

Then it imports each module in turn (a body already executed as another's
dependency is not executed again) and attributes every side effect to the
module whose top-level code runs: the innermost ``<module>`` frame of an
audited module on the stack (else the module that started the thread it
happens in, else the module being imported). In isolation mode (one module
per child) everything belongs to that one module. ``-X importtime`` on the
child's stderr gives each module's own and cumulative import time.

Results go, one JSON object per line, to a file the parent named; faulthandler
dumps go to a second file. The audited modules' own output goes to the child's
stdout/stderr, which the parent keeps apart.

The parent imports this module only for :class:`FrameClassifier` and
:func:`parse_faulthandler_dump`; importing it starts nothing and opens nothing.
Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import FrameType, ModuleType
from typing import Any, NoReturn

__all__ = ("FrameClassifier", "main", "parse_faulthandler_dump")

# What a frame's file is, from the auditor's point of view.
PACKAGE = 3  # inside the audited package (or the audited module's file)
USER = 2  # any other real file that is not the standard library
STDLIB = 1  # the standard library (site-packages excluded)
OTHER = 0  # frozen modules, <string>, and the auditor's own machinery

_BOOTSTRAP_EXTERNAL = "<frozen importlib._bootstrap_external>"
_PYC_WRITERS = frozenset({"set_data", "_write_atomic"})


# (file, line, function) of one frame.
Frame = tuple[str, int, str]


def _normalise(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _under(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip(os.sep) + os.sep) for p in prefixes)


class FrameClassifier:
    """Tells package frames from other frames, and picks a ``file:line``.

    Args:
        roots: Directories of the audited package (or the file of the audited
            module). A frame whose file is under one of them is a package frame.
        stdlib: Directories of the standard library.
        site: Site-packages directories (under ``stdlib`` on some layouts; they
            are not the standard library).
        machinery: Files of the auditor itself; their frames are never picked.
        files: Source file -> name of each audited module, so that a
            ``<module>`` frame tells which module's top-level code runs.
    """

    def __init__(
        self,
        roots: Sequence[str],
        stdlib: Sequence[str],
        site: Sequence[str],
        machinery: Sequence[str] = (),
        files: Mapping[str, str] | None = None,
    ) -> None:
        self._roots = tuple(_normalise(p) for p in roots)
        self._stdlib = tuple(_normalise(p) for p in stdlib)
        self._site = tuple(_normalise(p) for p in site)
        self._machinery = frozenset(_normalise(p) for p in machinery)
        self._files = {_normalise(path): name for path, name in (files or {}).items()}
        self._cache: dict[str, int] = {}
        self._modules: dict[str, str | None] = {}

    def kind(self, filename: str) -> int:
        """Return PACKAGE, USER, STDLIB or OTHER for a frame's ``co_filename``."""
        kind = self._cache.get(filename)
        if kind is None:
            kind = self._classify(filename)
            self._cache[filename] = kind
        return kind

    def is_machinery(self, filename: str) -> bool:
        """True for the auditor's own files."""
        return not filename.startswith("<") and _normalise(filename) in self._machinery

    def _classify(self, filename: str) -> int:
        if not filename or filename.startswith("<"):
            return OTHER
        path = _normalise(filename)
        if path in self._machinery:
            return OTHER
        if _under(path, self._roots):
            return PACKAGE
        if _under(path, self._stdlib) and not _under(path, self._site):
            return STDLIB
        return USER

    def module_of(self, filename: str) -> str | None:
        """The audited module whose source is ``filename``, or None."""
        try:
            return self._modules[filename]
        except KeyError:
            name = None if filename.startswith("<") else self._files.get(_normalise(filename))
            self._modules[filename] = name
            return name

    def module_frame(self, frames: Iterable[Frame]) -> str | None:
        """The audited module whose top-level code is the innermost on ``frames``."""
        for filename, _, function in frames:
            if function == "<module>":
                name = self.module_of(filename)
                if name is not None:
                    return name
        return None

    def pick(self, frames: Iterable[Frame]) -> str | None:
        """Return ``file:line`` of the innermost package frame.

        ``frames`` goes from the innermost frame outwards. Without a package
        frame, the innermost non-stdlib frame is used; without one either, None.
        """
        fallback: str | None = None
        for filename, lineno, _ in frames:
            kind = self.kind(filename)
            if kind == PACKAGE:
                return f"{filename}:{lineno}"
            if kind == USER and fallback is None:
                fallback = f"{filename}:{lineno}"
        return fallback


_THREAD_HEADER = re.compile(r"^(?:Current thread|Thread) (0x[0-9a-fA-F]+)(?: \[[^\]]*\])? \(most recent call first\):")
_STACK_HEADER = re.compile(r"^Stack \(most recent call first\):")
_FRAME_LINE = re.compile(r'^  File "(.*)", line (\d+) in (.*)$')


def parse_faulthandler_dump(text: str) -> list[tuple[int | None, list[Frame]]]:
    """Parse faulthandler output into ``[(thread_ident, [(file, line, function)])]``.

    Frames are innermost first, as faulthandler prints them. A dump of the
    current thread only (``Stack (most recent call first):``) has ident None.
    """
    threads: list[tuple[int | None, list[Frame]]] = []
    current: list[Frame] | None = None
    for line in text.splitlines():
        header = _THREAD_HEADER.match(line)
        if header is not None:
            current = []
            threads.append((int(header.group(1), 16), current))
            continue
        if _STACK_HEADER.match(line):
            current = []
            threads.append((None, current))
            continue
        frame = _FRAME_LINE.match(line)
        if frame is not None and current is not None:
            current.append((frame.group(1), int(frame.group(2)), frame.group(3)))
        elif not line.startswith("  "):
            current = None
    return threads


# --------------------------------------------------------------------------
# Everything below runs only in the child.


def _text(value: object) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    return str(value).replace("\x00", "@")


def _argv(value: object) -> str:
    if isinstance(value, (str, bytes, os.PathLike)):
        return _text(value)
    if isinstance(value, Iterable):
        return " ".join(_text(part) for part in value)
    return _text(value)


def _address(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = _text(address[0])
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{address[1]}"
    return _text(address)


def _callable_name(obj: object) -> str:
    func = getattr(obj, "__func__", obj)
    qualname = getattr(func, "__qualname__", None)
    if not isinstance(qualname, str):
        return repr(obj)
    module = getattr(func, "__module__", None)
    return f"{module}.{qualname}" if isinstance(module, str) else qualname


def _signal_name(signum: object) -> str:
    import signal

    try:
        return signal.Signals(signum).name  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return _text(signum)


def _handler_name(handler: object) -> str:
    if handler == 0:
        return "SIG_DFL"
    if handler == 1:
        return "SIG_IGN"
    if handler is None:
        return "None"
    return _callable_name(handler)


_FLAG_NAMES = ("O_WRONLY", "O_RDWR", "O_APPEND", "O_CREAT", "O_EXCL", "O_TRUNC")
_WRITE_FLAGS = 0
for _flag in ("O_WRONLY", "O_RDWR", "O_APPEND", "O_CREAT", "O_TRUNC"):
    _WRITE_FLAGS |= getattr(os, _flag, 0)


def _open_detail(args: tuple[Any, ...]) -> str | None:
    path, mode, flags = (*args, None, None, None)[:3]
    if isinstance(path, int):
        # Wrapping a descriptor (os.fdopen, FileIO(fd)): the open that made it
        # was reported (or it is inherited, like stdout).
        return None
    if _text(path) == os.devnull:
        return None  # subprocess.DEVNULL and friends write nowhere
    if isinstance(mode, str):
        if not any(ch in mode for ch in "wax+"):
            return None
        return f"{_text(path)} (mode {mode})"
    if not isinstance(flags, int) or not flags & _WRITE_FLAGS:
        return None
    names = "|".join(n for n in _FLAG_NAMES if flags & getattr(os, n, 0))
    return f"{_text(path)} (flags {names})"


def _first(args: tuple[Any, ...]) -> str:
    return _text(args[0]) if args else ""


def _second_to_first(args: tuple[Any, ...]) -> str:
    return f"{_text(args[1])} -> {_text(args[0])}"


# Audit events recorded, each with the function that turns its arguments into
# the finding's detail (None: not a side effect after all).
_FORMATTERS: dict[str, Callable[[tuple[Any, ...]], str | None]] = {
    # network
    "socket.connect": lambda a: _address(a[1]),
    "socket.bind": lambda a: _address(a[1]),
    "socket.sendto": lambda a: _address(a[1]),
    "socket.sendmsg": lambda a: "" if a[1] is None else _address(a[1]),
    "socket.getaddrinfo": lambda a: f"{_text(a[0])}:{_text(a[1])}",
    "socket.gethostbyname": _first,
    "socket.gethostbyaddr": _first,
    "socket.getnameinfo": lambda a: _address(a[0]),
    "socket.sethostname": _first,
    "webbrowser.open": _first,
    # processes
    "subprocess.Popen": lambda a: _argv(a[1]) if a[1] else _text(a[0]),
    "os.system": _first,
    "os.exec": lambda a: _argv(a[1]) if a[1] else _text(a[0]),
    "os.posix_spawn": lambda a: _argv(a[1]) if a[1] else _text(a[0]),
    "os.spawn": lambda a: _argv(a[2]) if a[2] else _text(a[1]),
    "os.fork": lambda a: "",
    "os.forkpty": lambda a: "",
    "os.startfile": _first,
    "os.kill": lambda a: f"pid {a[0]} {_signal_name(a[1])}",
    "os.killpg": lambda a: f"pgid {a[0]} {_signal_name(a[1])}",
    # files
    "open": _open_detail,
    "os.mkdir": _first,
    "os.remove": _first,
    "os.rmdir": _first,
    "os.rename": lambda a: f"{_text(a[0])} -> {_text(a[1])}",
    "os.symlink": _second_to_first,
    "os.link": _second_to_first,
    "os.truncate": lambda a: f"{_text(a[0])} (length {a[1]})",
    "os.chmod": lambda a: f"{_text(a[0])} (mode {a[1]:o})",
    "os.chown": lambda a: f"{_text(a[0])} (uid {a[1]}, gid {a[2]})",
    # hooks
    "sys.settrace": lambda a: "",
    "sys.setprofile": lambda a: "",
    "sys.addaudithook": lambda a: "",
    "sys.monitoring.register_callback": lambda a: _callable_name(a[0]) if a else "",
    # threads started without threading.Thread (Thread.start is wrapped)
    "_thread.start_new_thread": lambda a: _callable_name(a[0]),
    "_thread.start_joinable_thread": lambda a: _callable_name(a[0]),
    # the environment (the name only: values may be secrets)
    "os.putenv": _first,
    "os.unsetenv": _first,
    # native code
    "ctypes.dlopen": lambda a: None if a[0] is None else _text(a[0]),
}

_FILE_EVENTS = frozenset({"open", "os.mkdir", "os.remove", "os.rmdir", "os.rename", "os.symlink", "os.link"})
# Low-level process events that subprocess.Popen raises after its own event.
_PROCESS_DETAILS = frozenset({"os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn"})
_THREAD_EVENTS = frozenset({"_thread.start_new_thread", "_thread.start_joinable_thread"})
_HOOK_EVENTS = frozenset({"sys.settrace", "sys.setprofile"})
_MAX_FINDINGS = 10000
# Frames kept of a stack that is not the project's (the project's are all kept).
_MAX_OTHER_FRAMES = 40


def _walk(frame: FrameType | None) -> Iterator[Frame]:
    while frame is not None:
        code = frame.f_code
        yield code.co_filename, frame.f_lineno, code.co_name
        frame = frame.f_back


def _is_pyc_write(frame: FrameType) -> bool:
    """True when ``frame`` is importlib writing a ``.pyc`` (or its directory)."""
    code = frame.f_code
    if code.co_name not in _PYC_WRITERS:
        return False
    filename = code.co_filename
    return filename == _BOOTSTRAP_EXTERNAL or filename.endswith(os.path.join("importlib", "_bootstrap_external.py"))


class _Recorder:
    """Writes findings and progress to the result file while the audited imports run.

    Args:
        fd: The result file.
        classifier: Tells package frames and audited modules.
        only: In isolation mode, the one module every finding belongs to.
    """

    def __init__(self, fd: int, classifier: FrameClassifier, only: str | None) -> None:
        import threading
        import time

        self.fd = fd
        self.pid = os.getpid()
        self.classifier = classifier
        self.only = only
        self.active = False
        self.local = threading.local()  # .starting: inside a wrapped thread start
        self.seen: set[tuple[str | None, str, str, str | None]] = set()
        self.current: str | None = None  # the module the main loop imports
        self.thread_modules: dict[int, str | None] = {}  # thread ident -> module that started it
        self.finished = 0  # modules done; the watchdog's measure of progress
        self.finished_at = time.monotonic()

    def emit(self, record: dict[str, Any]) -> None:
        import json

        data = (json.dumps(record) + "\n").encode("utf-8", "backslashreplace")
        # If the module closed our descriptor, the parent sees no result.
        with contextlib.suppress(OSError):
            os.write(self.fd, data)

    def owner(self, frames: Sequence[Frame]) -> str | None:
        """The module a side effect with these frames belongs to."""
        if self.only is not None:
            return self.only
        import threading

        module = self.classifier.module_frame(frames)
        if module is None:
            module = self.thread_modules.get(threading.get_ident()) or self.current
        return module

    def record(self, event: str, detail: str, frame: FrameType | None) -> str | None:
        """Record one side effect; return the module it belongs to."""
        if not self.active or os.getpid() != self.pid:
            return None  # outside the audit, or in a process forked by it
        return self.record_frames(event, detail, list(_walk(frame)))

    def record_frames(self, event: str, detail: str, frames: Sequence[Frame]) -> str | None:
        where = self.classifier.pick(frames)
        module = self.owner(frames)
        key = (module, event, detail, where)
        if key not in self.seen and len(self.seen) < _MAX_FINDINGS:
            self.seen.add(key)
            self.emit({"k": "event", "module": module, "event": event, "detail": detail, "where": where})
        return module

    def starting_thread(self) -> bool:
        return bool(getattr(self.local, "starting", 0))

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        formatter = _FORMATTERS.get(event)
        if formatter is None or not self.active:
            return  # the common case: as cheap as it gets
        try:
            caller = sys._getframe(1)
            if event in _FILE_EVENTS and _is_pyc_write(caller):
                return
            if event in _THREAD_EVENTS and self.starting_thread():
                return  # counted once, by the Thread.start wrapper
            if event in _HOOK_EVENTS and os.path.basename(caller.f_code.co_filename) == "threading.py":
                return  # a new thread taking the hook threading.settrace/setprofile installed (reported)
            if (
                event in _PROCESS_DETAILS
                and os.path.basename(caller.f_code.co_filename) == "subprocess.py"
                and self.classifier.kind(caller.f_code.co_filename) == STDLIB
            ):
                return  # counted once, as subprocess.Popen
            detail = formatter(args)
            if detail is not None:
                self.record(event, detail, caller)
        except Exception as exc:  # an audit hook must never break the audited code
            self.emit({"k": "internal", "message": f"{event}: {type(exc).__name__}: {exc}"})


def _install_wrappers(recorder: _Recorder) -> None:
    """Wrap the side effects that raise no audit event (or not on every version)."""
    import _thread
    import signal  # noqa: F401  (imports _signal, which is patched below)
    import threading

    original_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        target = getattr(self, "_target", None)
        if target is not None:
            what = _callable_name(target)
        else:
            what = f"{type(self).__module__}.{type(self).__qualname__}.run"
        module = recorder.record("threading.Thread.start", f"{what} (thread {self.name!r})", sys._getframe())
        recorder.local.starting = getattr(recorder.local, "starting", 0) + 1
        try:
            original_start(self)
        finally:
            recorder.local.starting -= 1
        if module is not None and self.ident is not None:
            recorder.thread_modules[self.ident] = module

    start.__wrapped__ = original_start  # type: ignore[attr-defined]
    threading.Thread.start = start  # type: ignore[method-assign]

    if sys.version_info < (3, 12):  # no _thread.start_new_thread audit event yet
        original_new = _thread.start_new_thread

        def start_new_thread(function: Callable[..., object], *args: Any) -> int:
            module = None
            if not recorder.starting_thread():
                module = recorder.record("_thread.start_new_thread", _callable_name(function), sys._getframe())
            ident = original_new(function, *args)
            if module is not None:
                recorder.thread_modules[ident] = module
            return ident

        vars(_thread)["start_new_thread"] = start_new_thread
        if hasattr(_thread, "start_new"):
            vars(_thread)["start_new"] = start_new_thread

    signal_module = sys.modules["_signal"]  # signal.signal calls _signal.signal
    original_signal = signal_module.signal

    def signal_(signalnum: int, handler: Any) -> Any:
        recorder.record(
            "signal.signal",
            f"{_signal_name(signalnum)} -> {_handler_name(handler)}",
            sys._getframe(),
        )
        return original_signal(signalnum, handler)

    vars(signal_module)["signal"] = signal_

    for name in ("settrace", "setprofile"):
        original = getattr(threading, name)

        def wrapper(func: Any, _name: str = name, _original: Any = original) -> Any:
            recorder.record(f"threading.{_name}", _callable_name(func), sys._getframe())
            return _original(func)

        vars(threading)[name] = wrapper

    _install_global_wrappers(recorder)


def _install_global_wrappers(recorder: _Recorder) -> None:
    """Wrap atexit.register and logging's addHandler (they raise no audit event)."""
    import atexit
    import logging  # imported before the audit: its own atexit hook is not a finding

    original_register = atexit.register

    def register(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        caller = sys._getframe(1)
        if recorder.classifier.kind(caller.f_code.co_filename) != STDLIB:  # the stdlib's own bookkeeping
            recorder.record("atexit.register", _callable_name(func), caller)
        return original_register(func, *args, **kwargs)

    vars(atexit)["register"] = register

    original_add = logging.Logger.addHandler

    def add_handler(self: logging.Logger, handler: logging.Handler) -> None:
        # A NullHandler is what a library is told to add to its own logger: no output.
        if handler not in self.handlers and not isinstance(handler, logging.NullHandler):
            what = "root" if self is logging.root else repr(self.name)
            recorder.record("logging.addHandler", f"{what} <- {type(handler).__name__}", sys._getframe(1))
        original_add(self, handler)

    logging.Logger.addHandler = add_handler  # type: ignore[method-assign, assignment]


class _Globals:
    """Process-wide state that an import may change for good: checked around each import.

    ``sys.path``, ``sys.modules``, ``warnings`` filters and the exception hooks
    raise no audit event. ``sys.path`` becomes a list that remembers which
    frame added or removed each entry, and the warnings functions remember the
    frame of each filter they add; an entry or filter that is gone again when
    the import ends (``catch_warnings``, a path pushed and popped) is no finding.
    """

    _HOOKS = (("sys", "excepthook"), ("sys", "unraisablehook"), ("threading", "excepthook"))

    def __init__(self, recorder: _Recorder) -> None:
        import warnings

        self.recorder = recorder
        self.path_changes: list[tuple[str, str, list[Frame]]] = []  # (+ or -, entry, frames)
        self.filters: list[tuple[object, str, str, list[Frame]]] = []  # (filter, event, detail, frames)
        self.hooks = {name: self._hook(name) for name in self._HOOKS}
        sys.path = _TrackedPath(sys.path, self)
        self.path: list[str] = list(sys.path)
        self.modules: dict[str, object] = {}
        for name in ("filterwarnings", "simplefilter"):
            original = getattr(warnings, name)

            def wrapper(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
                before = {id(item) for item in warnings.filters}
                result = _original(*args, **kwargs)
                if self.recorder.active:
                    frames = list(_walk(sys._getframe(1)))
                    for item in warnings.filters:
                        if id(item) not in before:
                            self.filters.append((item, f"warnings.{_name}", _filter_detail(item), frames))
                return result

            vars(warnings)[name] = wrapper

    @staticmethod
    def _hook(name: tuple[str, str]) -> object:
        module = sys.modules.get(name[0])
        return getattr(module, name[1], None)

    def track_path_change(self, sign: str, entries: Iterable[object], frame: FrameType | None) -> None:
        if self.recorder.active:
            frames = list(_walk(frame))
            self.path_changes.extend((sign, _text(entry), frames) for entry in entries)

    def before(self) -> None:
        """Take the state an import starts from."""
        self.path = list(sys.path)
        self.modules = dict(sys.modules)
        self.path_changes.clear()
        self.filters.clear()

    def after(self) -> None:
        """Report what the import changed for good."""
        import warnings

        record = self.recorder.record_frames
        if not isinstance(sys.path, _TrackedPath):
            record("sys.path", "replaced", [])
            sys.path = _TrackedPath(sys.path, self)
        added = [entry for entry in sys.path if entry not in self.path]
        removed = [entry for entry in self.path if entry not in sys.path]
        for sign, entries in (("+", added), ("-", removed)):
            for entry in dict.fromkeys(entries):
                frames = next((f for s, e, f in self.path_changes if s == sign and e == entry), [])
                record("sys.path", f"{sign} {entry}", frames)
        for item, event, detail, frames in self.filters:
            if any(item is kept for kept in warnings.filters):
                record(event, detail, frames)
        modules = sys.modules
        for name in modules.keys() - self.modules.keys():
            # A module under another name (importlib._bootstrap, __mp_main__) is
            # an alias, a module without a spec under its own name an extension's
            # submodule (pyexpat.errors); anything else was put there.
            new: object = modules.get(name)
            if isinstance(new, ModuleType) and (
                new.__spec__ is not None
                or new.__name__ == name
                or any(module is new for key, module in modules.items() if key != name)
            ):
                continue
            record("sys.modules", f"+ {name}", [])
        for name, old in self.modules.items():
            if name not in modules:
                record("sys.modules", f"- {name}", [])
            elif modules[name] is not old:
                record("sys.modules", f"{name} replaced", [])
        for where, original in self.hooks.items():
            hook = self._hook(where)
            if hook is not original:
                code = getattr(getattr(hook, "__func__", hook), "__code__", None)
                frames = [] if code is None else [(code.co_filename, code.co_firstlineno, "<def>")]
                record(".".join(where), _callable_name(hook), frames)
                self.hooks[where] = hook


class _TrackedPath(list):  # type: ignore[type-arg]
    """``sys.path`` that remembers the frame of each change (importlib reads it as a list)."""

    def __init__(self, entries: Iterable[object], owner: _Globals) -> None:
        super().__init__(entries)
        self.owner = owner

    def append(self, entry: object) -> None:
        self.owner.track_path_change("+", [entry], sys._getframe(1))
        super().append(entry)

    def insert(self, index: Any, entry: object) -> None:
        self.owner.track_path_change("+", [entry], sys._getframe(1))
        super().insert(index, entry)

    def extend(self, entries: Iterable[object]) -> None:
        entries = list(entries)
        self.owner.track_path_change("+", entries, sys._getframe(1))
        super().extend(entries)

    def __iadd__(self, entries: Iterable[object]) -> _TrackedPath:  # type: ignore[misc]
        self.extend(entries)
        return self

    def remove(self, entry: object) -> None:
        self.owner.track_path_change("-", [entry], sys._getframe(1))
        super().remove(entry)

    def pop(self, index: Any = -1) -> Any:
        entry = super().pop(index)
        self.owner.track_path_change("-", [entry], sys._getframe(1))
        return entry

    def __setitem__(self, index: Any, value: Any) -> None:
        self.owner.track_path_change("+", value if isinstance(index, slice) else [value], sys._getframe(1))
        super().__setitem__(index, value)


def _filter_detail(item: object) -> str:
    if not isinstance(item, tuple) or len(item) != 5:
        return _text(item)
    action, message, category, module, _ = item
    detail = f"{action} {getattr(category, '__name__', category)}"
    pattern = getattr(message, "pattern", message)
    if pattern:
        detail += f" {pattern!r}"
    pattern = getattr(module, "pattern", module)
    if pattern:
        detail += f" in {pattern!r}"
    return detail


def _error_record(exc: BaseException, classifier: FrameClassifier) -> dict[str, Any]:
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {name}>"
    frames: list[Frame] = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno, tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        frames.append((exc.filename, exc.lineno, "<module>"))
    frames.reverse()
    return {
        "type": name,
        "message": message[:4000],
        "where": classifier.pick(frames),
        # The module whose body raised (an import of a module that fails fails too).
        "module": classifier.module_frame(frames),
    }


def _stack(frames: Iterable[Frame], classifier: FrameClassifier) -> list[Frame]:
    """A thread's frames, innermost first: every project frame, however deep,
    and the innermost others (a deep library chain is cut, the project's line kept)."""
    kept: list[Frame] = []
    others = 0
    for frame in frames:
        kind = classifier.kind(frame[0])
        if kind == OTHER and classifier.is_machinery(frame[0]):
            continue
        if kind == PACKAGE or others < _MAX_OTHER_FRAMES:
            kept.append(frame)
        if kind != PACKAGE:
            others += 1
    return kept


def _watch(recorder: _Recorder, main_thread: int, timeout: float, fallback: float, dump_fd: int) -> None:
    """The watchdog thread: a hang is a main thread whose stack stays the same.

    Samples start ``timeout / 2`` after the last finished module; the same stack
    twice in a row (``timeout`` without a finished module) is a hang. A module
    whose stack keeps changing is slow; after ``_SLOW_LIMIT`` timeouts without a
    finished module it counts as hung all the same, so that no audit runs for ever.
    """
    import faulthandler
    import threading
    import time

    interval = timeout / 2
    previous: list[Frame] | None = None
    seen = -1
    while True:
        if recorder.finished != seen:
            seen, previous = recorder.finished, None
            time.sleep(max(0.0, recorder.finished_at + interval - time.monotonic()))
        else:
            time.sleep(interval)
        # Running at all proves the main thread lets go of the GIL: push back
        # the C watchdog that catches the case where it never does.
        faulthandler.dump_traceback_later(fallback, exit=True, file=dump_fd)
        if recorder.finished != seen:
            continue
        frame = sys._current_frames().get(main_thread)
        stack = list(_walk(frame))
        stalled = time.monotonic() - recorder.finished_at
        if stack != previous and stalled < _SLOW_LIMIT * timeout:
            previous = stack
            recorder.emit({"k": "tick", "module": recorder.current, "stalled": stalled})
            continue
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        me = threading.get_ident()
        threads = [
            {"name": names.get(ident, f"thread {ident:#x}"), "stack": _stack(_walk(top), recorder.classifier)}
            for ident, top in sys._current_frames().items()
            if ident not in (me, main_thread)
        ]
        recorder.emit(
            {
                "k": "hung",
                "module": recorder.current,
                "stack": _stack(stack, recorder.classifier),
                "owner": recorder.classifier.module_frame(stack),
                "threads": threads,
                "stalled": stalled,
            }
        )
        os._exit(0)


# A module whose stack keeps changing counts as hung after this many timeouts.
_SLOW_LIMIT = 6


def main(argv: Sequence[str]) -> NoReturn:
    """Audit the imports configured by the parent in the JSON file ``argv[1]``."""
    import faulthandler
    import json
    import signal
    import threading
    import time

    with open(argv[1], encoding="utf-8") as file:
        config = json.load(file)
    modules: list[str] = config["modules"]
    sys.path[:] = config["sys_path"]
    sys.argv[:] = modules[:1]
    fd = os.open(config["out"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    dump_fd = os.open(config["dump"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    classifier = FrameClassifier(
        config["roots"], config["stdlib"], config["site"], machinery=[__file__], files=config["files"]
    )
    recorder = _Recorder(fd, classifier, modules[0] if config["isolate"] else None)
    _install_wrappers(recorder)
    state = _Globals(recorder)
    sys.addaudithook(recorder.hook)

    faulthandler.enable(file=dump_fd, all_threads=True)
    if hasattr(faulthandler, "register") and hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=dump_fd, all_threads=True)
    main_thread = threading.get_ident()
    recorder.emit({"k": "start", "tid": main_thread, "pid": recorder.pid})

    timeout = float(config["timeout"])
    fallback = timeout + float(config["fallback_grace"])
    faulthandler.dump_traceback_later(fallback, exit=True, file=dump_fd)
    # Started before recording: the auditor's own thread is not a finding.
    threading.Thread(
        target=_watch, args=(recorder, main_thread, timeout, fallback, dump_fd), name="daybreak-watchdog", daemon=True
    ).start()
    recorder.finished_at = time.monotonic()
    recorder.active = True
    for module in modules:
        recorder.current = module
        recorder.emit({"k": "begin", "module": module})
        began = time.perf_counter()
        error: dict[str, Any] | None = None
        state.before()
        try:
            # __import__, not importlib.import_module: only the C import path
            # reports the module's time to -X importtime.
            __import__(module)
        except BaseException as exc:
            error = _error_record(exc, classifier)
        try:
            state.after()
        except Exception as exc:  # a module may leave sys.path or the hooks in any shape
            recorder.emit({"k": "internal", "message": f"after {module}: {type(exc).__name__}: {exc}"})
        recorder.finished_at = time.monotonic()
        recorder.finished += 1
        # Wall time, for the parent's progress display ("the slowest so far").
        seconds = time.perf_counter() - began
        recorder.emit({"k": "done", "module": module, "error": error, "seconds": seconds})
    recorder.active = False
    faulthandler.cancel_dump_traceback_later()
    if os.getpid() == recorder.pid:  # a fork made by a module stays silent
        recorder.emit({"k": "end"})
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    # Threads the modules started (even non-daemon ones) must not keep us alive.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
