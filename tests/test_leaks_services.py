"""The leak checker on real clients of the machine's PostgreSQL, Redis, MariaDB, RabbitMQ and NATS (issue 12).

Skipped when a service is unreachable, except under CI=true, where the test fails.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from _markers import marker_line
from conftest import CI, ROOT
from daybreak._target import load_target
from daybreak.leaks import check

CLIENTS = ROOT / "tests" / "fixtures" / "leaky_clients"
PORTS = {"postgres": 5432, "redis": 6379, "mariadb": 3306, "rabbitmq": 5672, "nats": 4222}

pytestmark = [pytest.mark.services, pytest.mark.slow]


def need(service: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", PORTS[service]), timeout=2).close()
    except OSError as exc:
        message = f"{service} unreachable on 127.0.0.1:{PORTS[service]}: {exc}"
        if CI:
            pytest.fail(message + " (CI=true: these tests must run)")
        pytest.skip(message)


def test_an_aio_pika_connection_closed_at_stop_is_clean() -> None:
    # Issue 12.9: every run called it a leak (+1.8 KiB/cycle at pamqp/base.py:62, the
    # type attribute cache filling with names pamqp builds per lookup).
    need("rabbitmq")
    registry = load_target(f"{CLIENTS / 'rabbit.py'}:registry")
    report = check(registry, cycles=10, warmup=3)
    assert report.verdict == "clean", report.to_text()
    assert abs(report.growth_bytes_per_cycle) < 512


# -- issue 12.8: what only the garbage collector closes ------------------------------------------
class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client keeps its connection until closed

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, name="test-http-server", daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


SERVICE_OF = {"sqlalchemy": "postgres", "redis": "redis", "aiomysql": "mariadb"}
UNCLOSED = CLIENTS / "unclosed.py"


def unclosed_registry(name: str, close: bool, port: int) -> object:
    if name in SERVICE_OF:
        need(SERVICE_OF[name])
    sys.path.insert(0, str(CLIENTS))
    try:
        import unclosed
    finally:
        sys.path.remove(str(CLIENTS))
    return unclosed.registry(name, close, port)


@pytest.mark.parametrize("name", ["sqlalchemy", "redis", "aiohttp", "httpx", "executor", "aiomysql"])
def test_a_client_never_closed_is_found_as_unclosed(name: str, http_port: int) -> None:
    report = check(unclosed_registry(name, False, http_port), cycles=4, warmup=2)  # type: ignore[arg-type]
    assert report.leaks["unclosed"], report.to_text()
    # "In most cycles" is the rule: the collector may close one cycle's object in the next
    # one's measure, or after the last (seen with aiohttp on a loaded machine: 3 of 4).
    assert report.per_cycle["unclosed"] > 0.5
    first = report.unclosed[0]
    assert first.per_cycle > 0.5
    text = report.to_text()
    assert "unclosed leak" in text
    if name != "httpx":  # httpx's connection is made 25+ frames below the project's line
        assert first.component == name, report.to_text()
        assert first.where is not None and first.where.startswith(str(UNCLOSED) + ":")
    if name in ("aiohttp", "executor"):  # the object is made on the marked line itself
        assert first.where == marker_line(str(UNCLOSED), name)
    assert report.to_dict()["kinds"]["unclosed"] == "leak"


@pytest.mark.parametrize("name", ["sqlalchemy", "redis", "aiohttp", "httpx", "executor", "aiomysql"])
def test_the_same_client_closed_at_stop_is_clean(name: str, http_port: int) -> None:
    report = check(unclosed_registry(name, True, http_port), cycles=4, warmup=2)  # type: ignore[arg-type]
    assert report.verdict == "clean", report.to_text()
    assert report.unclosed == ()


def test_warnings_filters_and_the_asyncio_logger_are_put_back(http_port: int) -> None:
    import logging
    import warnings

    filters = list(warnings.filters)
    show = warnings.showwarning
    handlers = list(logging.getLogger("asyncio").handlers)
    check(unclosed_registry("executor", False, http_port), cycles=3, warmup=1)  # type: ignore[arg-type]
    assert warnings.filters == filters
    assert warnings.showwarning is show
    assert logging.getLogger("asyncio").handlers == handlers
