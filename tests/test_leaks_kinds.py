"""The leak checker beyond memory and workers: native memory, hooks, growth in libraries (12.10, 12.11, 15.14)."""

from __future__ import annotations

import atexit
import json
import logging
import signal
import ssl
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from daybreak import Registry
from daybreak.cli import main
from daybreak.leaks import check

KIB = 1024


class Service: ...


# -- native memory ------------------------------------------------------------------------------
_contexts: list[ssl.SSLContext] = []


@pytest.fixture
def contexts() -> Iterator[list[ssl.SSLContext]]:
    yield _contexts
    _contexts.clear()


def tls_registry(keep: bool) -> Registry:
    registry = Registry("tls-kept" if keep else "tls-dropped")

    @registry.component
    async def tls() -> AsyncIterator[Service]:
        context = ssl.create_default_context()  # the system's CA bundle: ~0.9 MiB of OpenSSL's memory
        if keep:
            _contexts.append(context)
        yield Service()

    return registry


def test_an_ssl_context_kept_per_start_is_a_native_leak(contexts: list[ssl.SSLContext]) -> None:
    report = check(tls_registry(keep=True), cycles=6, warmup=2)
    if report.native_source == "none":
        pytest.skip("no allocator figure on this platform")
    assert report.leaks["native"], report.to_text()
    assert not report.leaks["memory"]  # tracemalloc sees a few hundred bytes of it
    assert report.native_growth_bytes_per_cycle > 256 * KIB
    assert "native   leak" in report.to_text()
    assert report.to_dict()["kinds"]["native"] == "leak"


def test_an_ssl_context_dropped_at_stop_is_clean(contexts: list[ssl.SSLContext]) -> None:
    for _ in range(3):
        report = check(tls_registry(keep=False), cycles=6, warmup=2)
        assert report.verdict == "clean", report.to_text()
        assert abs(report.native_growth_bytes_per_cycle) < 64 * KIB


def test_native_threshold_is_its_own(contexts: list[ssl.SSLContext]) -> None:
    report = check(tls_registry(keep=True), cycles=4, warmup=1, native_threshold=64 * 1024 * KIB)
    assert not report.leaks["native"]
    assert report.native_threshold_bytes == 64 * 1024 * KIB
    with pytest.raises(ValueError, match="native_threshold=-1"):
        check(tls_registry(keep=False), native_threshold=-1)


def test_cli_native_threshold(contexts: list[ssl.SSLContext], capsys: pytest.CaptureFixture[str],
                              tmp_path: Any) -> None:
    target = tmp_path / "tls_target.py"
    target.write_text(
        "import ssl\n"
        "from daybreak import Registry\n"
        "registry = Registry('tls')\n"
        "kept = []\n"
        "class Tls: ...\n"
        "@registry.component\n"
        "async def tls() -> Tls:\n"
        "    kept.append(ssl.create_default_context())\n"
        "    return Tls()\n", encoding="utf-8")
    code = main(["leaks", f"{target}:registry", "--json", "--cycles", "4", "--warmup", "1",
                 "--native-threshold", "64MiB"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    assert doc["native_threshold_bytes"] == 64 * 1024 * KIB
    assert doc["kinds"]["native"] == "clean"
    code = main(["leaks", f"{target}:registry", "--json", "--cycles", "4", "--warmup", "1"])
    doc = json.loads(capsys.readouterr().out)
    if doc["native_source"] != "none":
        assert code == 1 and doc["kinds"]["native"] == "leak"


# -- hooks --------------------------------------------------------------------------------------
@pytest.fixture
def restore_hooks() -> Iterator[None]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2)}
    hooks = sys.excepthook, threading.excepthook
    loggers = {name: list(logging.getLogger(name).handlers) for name in ("", "leaky.hooks")}
    callbacks: list[Any] = []
    yield
    for s, h in handlers.items():
        signal.signal(s, h)
    sys.excepthook, threading.excepthook = hooks
    for name, before in loggers.items():
        logging.getLogger(name).handlers[:] = before
    for cb in callbacks:
        atexit.unregister(cb)


_registered: list[Any] = []


def logging_line() -> int:
    with open(__file__, encoding="utf-8") as f:
        return next(n for n, line in enumerate(f, 1) if line.rstrip().endswith("# at: logging-handler"))


def hook_registry(kind: str) -> Registry:
    registry = Registry(f"hooks-{kind}")

    @registry.component
    async def hooked() -> AsyncIterator[Service]:
        def on_event(*args: Any) -> None:
            pass

        if kind == "atexit":
            atexit.register(on_event)
            _registered.append(on_event)
        elif kind == "logging":
            logging.getLogger("leaky.hooks").addHandler(logging.NullHandler())  # at: logging-handler
        elif kind == "signal":
            signal.signal(signal.SIGUSR1, on_event)
        elif kind == "excepthook":
            sys.excepthook = on_event
        elif kind == "restored":  # set at start, put back at stop: clean
            previous = signal.signal(signal.SIGUSR2, on_event)
            handler = logging.NullHandler()
            logging.getLogger().addHandler(handler)
            atexit.register(on_event)
            yield Service()
            signal.signal(signal.SIGUSR2, previous)
            logging.getLogger().removeHandler(handler)
            atexit.unregister(on_event)
            return
        yield Service()

    return registry


@pytest.mark.parametrize("kind", ["atexit", "logging", "signal", "excepthook"])
def test_a_hook_added_per_start_is_a_leak_whatever_its_size(kind: str, restore_hooks: None) -> None:
    try:
        report = check(hook_registry(kind), cycles=4, warmup=1)
    finally:
        for cb in _registered:
            atexit.unregister(cb)
        _registered.clear()
    assert report.leaks["hooks"], report.to_text()
    assert not report.leaks["memory"]  # a few hundred bytes: far below the threshold
    assert report.per_cycle["hooks"] == 1.0
    (hook,) = report.hooks
    assert hook.kind == kind and hook.per_cycle == 1.0
    assert "hooks    leak" in report.to_text()
    if kind == "logging":
        assert "NullHandler on logger 'leaky.hooks'" in hook.detail
        if sys.version_info >= (3, 12):  # 3.11's tracemalloc cannot trace objects with a managed __dict__
            assert hook.where == f"{__file__}:{logging_line()}"
    if kind in ("signal", "excepthook", "atexit"):
        assert "on_event" in hook.detail and hook.where is not None and hook.where.startswith(__file__)
    assert report.to_dict()["hooks"][0]["kind"] == kind


def test_hooks_put_back_at_stop_are_clean(restore_hooks: None) -> None:
    report = check(hook_registry("restored"), cycles=4, warmup=1)
    assert report.verdict == "clean", report.to_text()
    assert report.hooks == () and report.per_cycle["hooks"] == 0


def test_the_same_handler_set_again_at_every_start_is_clean(restore_hooks: None) -> None:
    registry = Registry("same-handler")

    def on_usr1(*args: Any) -> None:
        pass

    @registry.component
    async def hooked() -> Service:
        signal.signal(signal.SIGUSR1, on_usr1)
        return Service()

    assert check(registry, cycles=4, warmup=1).verdict == "clean"


# -- growth inside a library --------------------------------------------------------------------
LIBRARY = '''
import asyncio

_seen = []


def _remember():
    _seen.append(bytearray(4096))  # a callback of the loop: no frame of the project's below it


def on_start():
    asyncio.get_running_loop().call_soon(_remember)


def release():
    _seen.clear()
'''


@pytest.fixture
def leakylib(tmp_path: Any) -> Iterator[Any]:
    root = tmp_path / "site-packages"
    (root / "leakylib").mkdir(parents=True)
    (root / "leakylib" / "__init__.py").write_text(LIBRARY, encoding="utf-8")
    sys.path.insert(0, str(root))
    import leakylib  # type: ignore[import-not-found]

    yield leakylib
    leakylib.release()
    sys.path.remove(str(root))
    del sys.modules["leakylib"]


def test_growth_only_inside_a_library_names_the_library(leakylib: Any) -> None:
    registry = Registry("library-cache")

    @registry.component
    async def client() -> AsyncIterator[Service]:
        leakylib.on_start()
        yield Service()

    report = check(registry, cycles=4, warmup=1)
    assert report.leaks["memory"]
    assert report.sites and all("site-packages/leakylib/" in s.where for s in report.sites)
    assert report.library == "leakylib"
    text = report.to_text()
    assert "inside the library leakylib" in text
    assert "every growing site is inside the installed library 'leakylib'" in text
    assert report.to_dict()["library"] == "leakylib"


def test_library_of_needs_every_site_in_a_library() -> None:
    from daybreak.leaks import LeakSite
    from daybreak.leaks._sites import library_of

    pamqp = LeakSite("/venv/lib/python3.11/site-packages/pamqp/base.py:62", 1600.0, 26.8)
    aiormq = LeakSite("/venv/lib/python3.11/site-packages/aiormq/connection.py:10", 100.0, 1.0)
    user = LeakSite(f"{__file__}:10", 100.0, 1.0)
    assert library_of((pamqp,)) == "pamqp"
    assert library_of((pamqp, aiormq)) == "pamqp, aiormq"
    assert library_of((pamqp, user)) is None
    assert library_of(()) is None


# -- the HTML report ----------------------------------------------------------------------------
def test_html_leaks_section_shows_the_new_kinds(restore_hooks: None, contexts: list[ssl.SSLContext]) -> None:
    from daybreak.html import render

    registry = hook_registry("signal")

    @registry.component
    async def tls() -> AsyncIterator[ssl.SSLContext]:
        context = ssl.create_default_context()
        _contexts.append(context)
        yield context

    doc = check(registry, cycles=4, warmup=1).to_dict()
    doc["unclosed"] = [{"what": "aiohttp.client.ClientSession", "where": "app.py:7", "per_cycle": 1.0,
                        "component": "http", "message": "Unclosed client session", "source": "warning"}]
    page = render({"leaks": doc})
    assert "Hooks added every cycle" in page and "SIGUSR1" in page
    assert "Closed only by the garbage collector" in page and "aiohttp.client.ClientSession" in page
    assert "leaking: " in page and "hooks" in page
    if doc["native_source"] != "none":
        assert 'id="leak-native"' in page and "native +" in page
