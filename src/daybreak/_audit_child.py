"""The half of ``daybreak imports`` that runs inside the child process.

The parent (:mod:`daybreak.imports`) starts one fresh interpreter per audited
module::

    <sys.executable> -P .../daybreak/_audit_child.py '<json config>'

This file is executed *as a script*, not imported as ``daybreak._audit_child``,
so that nothing of daybreak is imported in the child before the audited import
(auditing ``daybreak`` itself would otherwise measure a warm package). Before
the import it:

1. installs a PEP 578 audit hook and wraps the few side effects that raise no
   audit event (``threading.Thread.start``, ``_thread.start_new_thread`` on
   3.11, ``signal.signal``, ``threading.settrace``/``setprofile``);
2. arms ``faulthandler.dump_traceback_later(timeout, exit=True)``: its watchdog
   is a C thread that needs no GIL, so the stacks are dumped even when the main
   thread is stuck in a C call (``time.sleep``, a blocked ``connect``), and
   registers ``SIGUSR1`` as a second chance the parent can pull;
3. imports the module, recording only while the import runs.

Results go, one JSON object per line, to a file the parent named; the
faulthandler dump goes to the same file as plain text. The audited module's
own output goes to the child's stdout/stderr, which the parent keeps apart.

The parent imports this module only for :class:`FrameClassifier` and
:func:`parse_faulthandler_dump`; importing it starts nothing and opens nothing.
Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FrameType
from typing import Any, NoReturn

__all__ = ("FrameClassifier", "main", "parse_faulthandler_dump")

# What a frame's file is, from the auditor's point of view.
PACKAGE = 3  # inside the audited package (or the audited module's file)
USER = 2  # any other real file that is not the standard library
STDLIB = 1  # the standard library (site-packages excluded)
OTHER = 0  # frozen modules, <string>, and the auditor's own machinery

_BOOTSTRAP_EXTERNAL = "<frozen importlib._bootstrap_external>"
_PYC_WRITERS = frozenset({"set_data", "_write_atomic"})


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
    """

    def __init__(
        self,
        roots: Sequence[str],
        stdlib: Sequence[str],
        site: Sequence[str],
        machinery: Sequence[str] = (),
    ) -> None:
        self._roots = tuple(_normalise(p) for p in roots)
        self._stdlib = tuple(_normalise(p) for p in stdlib)
        self._site = tuple(_normalise(p) for p in site)
        self._machinery = frozenset(_normalise(p) for p in machinery)
        self._cache: dict[str, int] = {}

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

    def pick(self, frames: Iterable[tuple[str, int]]) -> str | None:
        """Return ``file:line`` of the innermost package frame.

        ``frames`` goes from the innermost frame outwards. Without a package
        frame, the innermost non-stdlib frame is used; without one either, None.
        """
        fallback: str | None = None
        for filename, lineno in frames:
            kind = self.kind(filename)
            if kind == PACKAGE:
                return f"{filename}:{lineno}"
            if kind == USER and fallback is None:
                fallback = f"{filename}:{lineno}"
        return fallback


_THREAD_HEADER = re.compile(r"^(?:Current thread|Thread) (0x[0-9a-fA-F]+)(?: \[[^\]]*\])? \(most recent call first\):")
_STACK_HEADER = re.compile(r"^Stack \(most recent call first\):")
_FRAME_LINE = re.compile(r'^  File "(.*)", line (\d+) in (.*)$')


def parse_faulthandler_dump(text: str) -> list[tuple[int | None, list[tuple[str, int, str]]]]:
    """Parse faulthandler output into ``[(thread_ident, [(file, line, function)])]``.

    Frames are innermost first, as faulthandler prints them. A dump of the
    current thread only (``Stack (most recent call first):``) has ident None.
    """
    threads: list[tuple[int | None, list[tuple[str, int, str]]]] = []
    current: list[tuple[str, int, str]] | None = None
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
    # native code
    "ctypes.dlopen": lambda a: None if a[0] is None else _text(a[0]),
}

_FILE_EVENTS = frozenset({"open", "os.mkdir", "os.remove", "os.rmdir", "os.rename", "os.symlink", "os.link"})
# Low-level process events that subprocess.Popen raises after its own event.
_PROCESS_DETAILS = frozenset({"os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn"})
_THREAD_EVENTS = frozenset({"_thread.start_new_thread", "_thread.start_joinable_thread"})
_MAX_FINDINGS = 1000


def _walk(frame: FrameType | None) -> Iterator[tuple[str, int]]:
    while frame is not None:
        yield frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back


def _is_pyc_write(frame: FrameType) -> bool:
    """True when ``frame`` is importlib writing a ``.pyc`` (or its directory)."""
    code = frame.f_code
    if code.co_name not in _PYC_WRITERS:
        return False
    filename = code.co_filename
    return filename == _BOOTSTRAP_EXTERNAL or filename.endswith(os.path.join("importlib", "_bootstrap_external.py"))


class _Recorder:
    """Writes findings to the result file while the audited import runs."""

    def __init__(self, fd: int, classifier: FrameClassifier) -> None:
        import threading

        self.fd = fd
        self.pid = os.getpid()
        self.classifier = classifier
        self.active = False
        self.local = threading.local()  # .starting: inside a wrapped thread start
        self.seen: set[tuple[str, str, str | None]] = set()

    def emit(self, record: dict[str, Any]) -> None:
        import json

        data = (json.dumps(record) + "\n").encode("utf-8", "backslashreplace")
        # If the module closed our descriptor, the parent sees no result.
        with contextlib.suppress(OSError):
            os.write(self.fd, data)

    def record(self, event: str, detail: str, frame: FrameType | None) -> None:
        if not self.active or os.getpid() != self.pid:
            return  # outside the import, or in a process forked by it
        where = self.classifier.pick(_walk(frame))
        key = (event, detail, where)
        if key in self.seen or len(self.seen) >= _MAX_FINDINGS:
            return
        self.seen.add(key)
        self.emit({"k": "event", "event": event, "detail": detail, "where": where})

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
        recorder.record("threading.Thread.start", f"{what} (thread {self.name!r})", sys._getframe())
        recorder.local.starting = getattr(recorder.local, "starting", 0) + 1
        try:
            original_start(self)
        finally:
            recorder.local.starting -= 1

    start.__wrapped__ = original_start  # type: ignore[attr-defined]
    threading.Thread.start = start  # type: ignore[method-assign]

    if sys.version_info < (3, 12):  # no _thread.start_new_thread audit event yet
        original_new = _thread.start_new_thread

        def start_new_thread(function: Callable[..., object], *args: Any) -> int:
            if not recorder.starting_thread():
                recorder.record("_thread.start_new_thread", _callable_name(function), sys._getframe())
            return original_new(function, *args)

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


def _error_record(exc: BaseException, classifier: FrameClassifier) -> dict[str, Any]:
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {name}>"
    frames: list[tuple[str, int]] = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        frames.append((exc.filename, exc.lineno))
    frames.reverse()
    return {"type": name, "message": message[:4000], "where": classifier.pick(frames)}


def main(argv: Sequence[str]) -> NoReturn:
    """Audit the import of one module, as configured by the parent in ``argv[1]``."""
    import faulthandler
    import importlib
    import json
    import signal
    import threading
    import time

    config = json.loads(argv[1])
    module: str = config["module"]
    sys.path[:] = config["sys_path"]
    sys.argv[:] = [module]
    fd = os.open(config["out"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    classifier = FrameClassifier(config["roots"], config["stdlib"], config["site"], machinery=[__file__])
    recorder = _Recorder(fd, classifier)
    _install_wrappers(recorder)
    sys.addaudithook(recorder.hook)

    faulthandler.enable(file=fd, all_threads=True)
    if hasattr(faulthandler, "register") and hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=fd, all_threads=True)
    recorder.emit({"k": "start", "tid": threading.get_ident(), "pid": recorder.pid})

    error: dict[str, Any] | None = None
    faulthandler.dump_traceback_later(float(config["timeout"]), exit=True, file=fd)
    recorder.active = True
    started = time.perf_counter()
    try:
        importlib.import_module(module)
    except BaseException as exc:
        seconds = time.perf_counter() - started
        recorder.active = False
        error = _error_record(exc, classifier)
    else:
        seconds = time.perf_counter() - started
        recorder.active = False
    faulthandler.cancel_dump_traceback_later()
    if os.getpid() == recorder.pid:  # a fork made by the module stays silent
        recorder.emit({"k": "done", "seconds": seconds, "error": error})
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    # Threads the module started (even non-daemon ones) must not keep us alive.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
