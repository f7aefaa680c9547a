"""The leak checker on real clients of the machine's PostgreSQL, Redis, MariaDB, RabbitMQ and NATS (issue 12).

Skipped when a service is unreachable, except under CI=true, where the test fails.
"""

from __future__ import annotations

import socket

import pytest

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
