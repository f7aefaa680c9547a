"""The pytest plugin, run for real in a child pytest (pytester)."""

from __future__ import annotations

import ast
import subprocess
import sys

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


def test_plugin_import_is_light(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only daybreak's plugin, so that no other plugin imports asyncio first; the
    # hang timeout on: it costs nothing either until a test hangs.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_light='''
import sys

def test_nothing_heavy():
    assert "asyncio" not in sys.modules
    assert not [m for m in sys.modules if m.startswith(("daybreak.system", "daybreak.diagnostics", "fastapi"))]
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "daybreak.pytest_plugin",
                                           "--daybreak-hang-timeout=30")
    result.assert_outcomes(passed=1)
    assert "daybreak: hang timeout 30 s" in result.stdout.str()


def test_installed_plugin_costs_a_project_that_does_not_use_it_nothing(pytester: pytest.Pytester,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Loaded through its entry point, as in every project of the environment, no
    # daybreak option. pytest-asyncio's and anyio's plugins import asyncio themselves.
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("DAYBREAK_HANG_TIMEOUT", raising=False)
    pytester.makepyfile(test_unrelated='''
import sys

def test_no_asyncio(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("daybreak")
    assert "asyncio" not in sys.modules
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:anyio")
    result.assert_outcomes(passed=1)
    assert "daybreak: hang timeout" not in result.stdout.str()


def test_plugin_module_adds_only_itself_to_what_pytest_imported() -> None:
    # Whatever other plugins import, daybreak's own share at pytest start.
    code = ("import sys, pytest; before = set(sys.modules); import daybreak.pytest_plugin; "
            "print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert set(ast.literal_eval(out)) <= {"daybreak", "daybreak._version", "daybreak.pytest_plugin"}


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


SESSION_TESTS = '''
import asyncio
import pytest
from app import Db, events
from conftest import Loop

pytestmark = pytest.mark.asyncio(loop_scope="session")

async def test_one(system):
    assert isinstance(system[Db], Db)
    assert events == ["start"]
    assert system[Loop].loop is asyncio.get_running_loop()  # the system's tasks run here too

async def test_two(system):
    assert events == ["start"]
'''


def test_session_system_starts_once_in_the_session_loop(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(app=REGISTRY)
    pytester.makeconftest('''
import asyncio
import pytest
from daybreak.pytest_plugin import system_fixture
from app import registry, events

class Loop:
    def __init__(self):
        self.loop = asyncio.get_running_loop()

@registry.component
async def loop() -> Loop:
    return Loop()

system = system_fixture(registry)

def pytest_sessionfinish(session):
    print("events at the end:", events)
''')
    pytester.makepyfile(test_a=SESSION_TESTS, test_b=SESSION_TESTS.replace("test_one", "test_three"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=4)
    assert "events at the end: ['start', 'stop']" in result.stdout.str()


def test_module_system_under_anyio_and_a_sync_session_system(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(app=REGISTRY)
    pytester.makeconftest('''
import pytest
from daybreak.pytest_plugin import system_fixture
from app import registry, events

@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"

system = system_fixture(registry, scope="module")
sync_system = system_fixture(registry, scope="session", sync=True)
''')
    pytester.makepyfile(test_anyio='''
import pytest
from app import Db, events

@pytest.mark.anyio
async def test_one(system):
    assert isinstance(system[Db], Db)

@pytest.mark.anyio
async def test_two(system):
    assert events == ["start"]
''', test_sync='''
from app import Db, events

def test_sync_one(sync_system):
    assert sync_system.state.status == "ready"

def test_sync_two(sync_system):
    assert isinstance(sync_system[Db], Db)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=4)
