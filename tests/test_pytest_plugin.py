"""The pytest plugin, run for real in a child pytest (pytester)."""

from __future__ import annotations

import pytest

REGISTRY = '''
from collections.abc import AsyncIterator
from daybreak import Registry

events = []
registry = Registry("t")

class Db:
    pass

class Fake(Db):
    pass

@registry.component
async def db() -> AsyncIterator[Db]:
    events.append("start")
    yield Db()
    events.append("stop")
'''


def test_async_fixture_starts_overrides_and_stops(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(app=REGISTRY)
    pytester.makepyfile(test_it='''
import pytest
from app import registry, events, Db, Fake

@pytest.mark.asyncio
async def test_real(daybreak_system):
    async with daybreak_system(registry) as system:
        assert type(system[Db]) is Db
        assert events == ["start"]
    assert events == ["start", "stop"]

@pytest.mark.asyncio
async def test_override(daybreak_system):
    async with daybreak_system(registry, overrides={Db: Fake()}) as system:
        assert type(system[Db]) is Fake
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_sync_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(app=REGISTRY)
    pytester.makepyfile(test_it='''
import asyncio
from app import registry, events, Db

def test_sync(daybreak_system):
    with daybreak_system.sync(registry) as system:
        assert isinstance(system[Db], Db)
        assert system.state.status == "ready"
        assert system.run(asyncio.sleep(0, result=7)) == 7
    assert events == ["start", "stop"]
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_hang_timeout_dumps_a_blocked_event_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hang='''
import asyncio, time
import pytest

@pytest.mark.asyncio
async def test_blocks():
    time.sleep(30)  # BLOCKING-LINE

@pytest.mark.asyncio
async def test_awaits_forever():
    await asyncio.Event().wait()  # AWAIT-LINE

def test_quick():
    pass
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--daybreak-hang-timeout=1")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert "test still running after 1 s (daybreak hang timeout)" in out
    assert "stuck at" in out and "test_hang.py:6" in out
    assert "test_hang.py:10" in out  # the await chain of the waiting task
    assert result.duration < 20


def test_marker_overrides_option_and_bad_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_m='''
import time, pytest

@pytest.mark.daybreak_hang_timeout(0.5)
def test_slow():
    time.sleep(5)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "after 0.5 s" in result.stdout.str()
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "daybreak_hang_timeout=soon")
    assert "invalid hang timeout 'soon'" in bad.stdout.str() + bad.stderr.str()


def test_plugin_import_is_light(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_light='''
import sys

def test_nothing_heavy():
    assert "daybreak.system" not in sys.modules
    assert "fastapi" not in sys.modules
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_works_with_anyio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(app=REGISTRY)
    pytester.makepyfile(test_it='''
import pytest
from app import registry, Db

@pytest.fixture
def anyio_backend():
    return "asyncio"

@pytest.mark.anyio
async def test_with_anyio(daybreak_system):
    async with daybreak_system(registry) as system:
        assert isinstance(system[Db], Db)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=1)


def test_hang_timeout_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hang='''
import time

def test_one():
    time.sleep(30)  # STUCK

def test_two():
    pass
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--daybreak-hang-timeout=1")
    result.assert_outcomes(passed=1, failed=1)
    assert "stuck at" in result.stdout.str() and "test_hang.py:4" in result.stdout.str()


def test_leak_marker_fails_a_test_whose_system_leaks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(leaky='''
from collections.abc import AsyncIterator
from daybreak import Registry

registry = Registry("leaky")
kept = []

class Thing: ...

@registry.component
async def thing() -> AsyncIterator[Thing]:
    kept.append(bytearray(64 * 1024))  # LEAK
    yield Thing()
''')
    pytester.makepyfile(test_it='''
import pytest
from leaky import registry

@pytest.mark.daybreak_leaks(cycles=4, warmup=1)
@pytest.mark.asyncio
async def test_uses_it(daybreak_system):
    async with daybreak_system(registry):
        pass
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    assert "leaky.py:11" in result.stdout.str()
