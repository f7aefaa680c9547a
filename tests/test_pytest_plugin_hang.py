"""The plugin's hang timeout, run for real in child pytests (pytester).

Every hang here is infinite (an event never set, a sleep far past the
timeout), so the short timeouts cannot race the tests' own work.
"""

from __future__ import annotations

import re
import signal
import threading
import types

import pytest

from daybreak.pytest_plugin import HangTimeout

# Faker's plugin (Faker comes with polyfactory) builds its autouse session fixture in
# the first test's setup: on a loaded machine that alone outlasted the short timeouts
# below, and the hang was reported in Faker's code instead of the test's.
NO_FAKER = ("-p", "no:faker")
RUN = ("-p", "no:cacheprovider", "-p", "no:timeout", *NO_FAKER)
# Every child pytest must end by itself well within this (pytester fails the test past it).
BOUND = 600


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # The short summary is cut to the terminal's width outside CI.
    monkeypatch.setenv("COLUMNS", "300")


HANGS = '''
import asyncio, threading, time
import pytest

threads = set()

@pytest.fixture
def setup_hangs():
    time.sleep(60)  # SYNC-SETUP
    yield

@pytest.fixture
async def teardown_hangs():
    yield
    await asyncio.Event().wait()  # ASYNC-TEARDOWN

@pytest.fixture
async def async_setup_hangs():
    await asyncio.Event().wait()  # ASYNC-SETUP
    yield

@pytest.fixture
def sync_teardown_hangs():
    yield
    time.sleep(60)  # SYNC-TEARDOWN

def test_sync_setup(setup_hangs):
    pass

async def test_async_teardown(teardown_hangs):
    pass

async def test_async_setup(async_setup_hangs):
    pass

def test_sync_teardown(sync_teardown_hangs):
    pass

async def child():
    await asyncio.Event().wait()  # GATHERED

async def test_idle_in_gather():
    await asyncio.gather(child(), asyncio.sleep(60))

async def test_blocks_the_loop():
    time.sleep(60)  # BLOCKS

def test_retries_on_exception():
    while True:
        try:
            time.sleep(60)  # RETRY
        except Exception:
            pass

async def test_hangs_then_its_fixture_too(teardown_hangs):
    await asyncio.Event().wait()  # BOTH

@pytest.mark.daybreak_hang_timeout(120)
@pytest.mark.parametrize("n", range(3))
def test_after(n):
    # One timer thread for the whole session, however many tests and hangs, and no other.
    threads.update(t for t in threading.enumerate() if t is not threading.main_thread())
    assert [t.name for t in threads] == ["daybreak-hang-timer"]
'''


def at(marker: str) -> str:
    """``test_hang.py:N``, the line of HANGS ending with ``# marker`` (pytester drops the first newline)."""
    lines = HANGS.strip().splitlines()
    return f"test_hang.py:{next(n for n, text in enumerate(lines, 1) if text.endswith(f'# {marker}'))}"


def test_setup_call_and_teardown_are_timed_by_one_thread_and_the_run_goes_on(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_hang=HANGS)
    result = pytester.runpytest_subprocess(*RUN, "--daybreak-hang-timeout=0.5", timeout=BOUND)
    # The calls of test_async_teardown and test_sync_teardown passed.
    result.assert_outcomes(passed=5, failed=4, errors=5)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_sync_setup*",
        f"setup stuck at {at('SYNC-SETUP')} in setup_hangs after 0.5 s (daybreak hang timeout)",
    ])
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_async_teardown*",
        f"teardown stuck at {at('ASYNC-TEARDOWN')} in teardown_hangs after 0.5 s (daybreak hang timeout)",
    ])
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_async_setup*",
        f"setup stuck at {at('ASYNC-SETUP')} in async_setup_hangs after 0.5 s (daybreak hang timeout)",
    ])
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_sync_teardown*",
        f"teardown stuck at {at('SYNC-TEARDOWN')} in sync_teardown_hangs after 0.5 s (daybreak hang timeout)",
    ])
    # An idle loop: the first line names the await chain's innermost user frame.
    assert f"test stuck at {at('GATHERED')} in child after 0.5 s" in out
    assert f"test stuck at {at('BLOCKS')} in test_blocks_the_loop after 0.5 s" in out
    assert f"test stuck at {at('RETRY')} in test_retries_on_exception after 0.5 s" in out
    assert f"test stuck at {at('BOTH')} in test_hangs_then_its_fixture_too after 0.5 s" in out
    # The teardown after a hung test names the fixture, not the task the test left pending.
    assert len(re.findall(rf"^teardown stuck at {at('ASYNC-TEARDOWN')} ", out, re.MULTILINE)) == 2
    # Once each, without the test runner's frames; the short summary says file:line.
    for marker in ("SYNC-SETUP", "ASYNC-SETUP", "SYNC-TEARDOWN", "GATHERED", "BLOCKS", "RETRY", "BOTH"):
        assert len(re.findall(rf"^\w+ stuck at {at(marker)} ", out, re.MULTILINE)) == 1
    assert "/_pytest/" not in out and "/pluggy/" not in out and "/pytest_asyncio/" not in out
    assert "frames of the test runner" in out
    assert "During handling" not in out
    result.stdout.fnmatch_lines([
        f"FAILED test_hang.py::test_idle_in_gather - HangTimeout: {at('GATHERED')} in child (test, 0.5 s)",
        f"ERROR test_hang.py::test_sync_setup - HangTimeout: {at('SYNC-SETUP')} in setup_hangs (setup, 0.5 s)",
    ], consecutive=False)


def test_a_test_that_swallows_the_timeout_ends_the_process_with_a_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_swallow='''
import time

def test_swallows():
    while True:
        try:
            time.sleep(60)  # SWALLOW
        except BaseException:
            pass
''')
    result = pytester.runpytest_subprocess(*RUN, "--daybreak-hang-timeout=0.3", timeout=BOUND)
    assert result.ret == 1
    err = result.stderr.str()
    assert "test stuck at test_swallow.py:6 in test_swallows" in err
    assert ("daybreak: test_swallow.py::test_swallows: test still running 0.3 s after its hang timeout "
            "interrupted it (does it catch BaseException, or wait in C code?); ending the test process") in err


def test_hang_timeout_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hang='''
import time

def test_stuck():
    time.sleep(60)  # STUCK

def test_two():
    pass
''')
    result = pytester.runpytest_subprocess(*RUN, "-n", "2", "--daybreak-hang-timeout=0.5", timeout=BOUND)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_hang.py::test_stuck - HangTimeout: test_hang.py:4 in test_stuck *"])
    # execnet starts the worker with `python -c`: those frames drive the test too.
    assert "<string>" not in result.stdout.str()


def test_beside_pytest_timeout_and_code_that_uses_sigalrm(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_both='''
import signal, threading, time
import pytest

@pytest.mark.timeout(0.3, func_only=True)  # not over the setup: daybreak's first one imports its timer
def test_pytest_timeout_fires_first():
    time.sleep(60)

@pytest.mark.timeout(60)
@pytest.mark.daybreak_hang_timeout(0.3)
def test_daybreak_fires_first():
    time.sleep(60)  # DAYBREAK

def test_own_alarm_reaches_its_handler():
    got = threading.Event()
    previous = signal.signal(signal.SIGALRM, lambda *_: got.set())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        assert got.wait(30)
    finally:
        signal.signal(signal.SIGALRM, previous)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *NO_FAKER, "--timeout-method=signal",
                                           "--daybreak-hang-timeout=30", timeout=BOUND)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "FAILED test_both.py::test_pytest_timeout_fires_first - Failed: Timeout*pytest-timeout*",
        "FAILED test_both.py::test_daybreak_fires_first - HangTimeout: test_both.py:11 *",
    ])


def test_beside_pytest_timeouts_thread_method(pytester: pytest.Pytester) -> None:
    # The first to expire acts: daybreak fails the test and the run goes on;
    # pytest-timeout's thread method dumps the stacks and ends the process, as it always does.
    pytester.makepyfile(test_thread='''
import time
import pytest

@pytest.mark.timeout(60)
@pytest.mark.daybreak_hang_timeout(0.3)
def test_daybreak_fires_first():
    time.sleep(60)

def test_goes_on():
    pass

@pytest.mark.timeout(0.3, func_only=True)
def test_pytest_timeout_fires_first():
    time.sleep(60)

def test_never_runs():
    pass
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *NO_FAKER, "--timeout-method=thread",
                                           "--daybreak-hang-timeout=30", timeout=BOUND)
    assert result.ret == 1
    out = result.stdout.str() + result.stderr.str()
    assert "test_thread.py F." in out
    assert "+ Timeout +" in out
    assert "(daybreak hang timeout)" not in out.partition("+ Timeout +")[2]  # pytest-timeout's dump only


def test_hang_timeout_under_anyio_names_the_task_group_child(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_anyio='''
import anyio
import pytest

@pytest.fixture
def anyio_backend():
    return "asyncio"

async def child():
    await anyio.sleep_forever()  # CHILD

@pytest.mark.anyio
async def test_idle():
    async with anyio.create_task_group() as tg:
        tg.start_soon(child)

def test_after():
    pass
''')
    result = pytester.runpytest_subprocess(*RUN, "-p", "no:asyncio", "--daybreak-hang-timeout=0.5", timeout=BOUND)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        ["FAILED test_anyio.py::test_idle - HangTimeout: test_anyio.py:9 in child (test, 0.5 s)"])


def test_hang_timeout_on_trio_dumps_its_tasks_says_what_it_cannot_do_and_ends(pytester: pytest.Pytester) -> None:
    pytest.importorskip("trio")
    pytester.makepyfile(test_trio='''
import pytest
import trio

@pytest.fixture
def anyio_backend():
    return "trio"

async def child():
    await trio.sleep_forever()

@pytest.mark.anyio
async def test_idle():
    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)
''')
    result = pytester.runpytest_subprocess(*RUN, "-p", "no:asyncio", "--daybreak-hang-timeout=0.3", timeout=BOUND)
    assert result.ret == 1
    err = result.stderr.str()
    assert "test stuck at test_trio.py:13 in test_idle after 0.3 s" in err
    assert "--- trio task test_trio.child (child), waiting at test_trio.py:9" in err
    assert "(the test runs on trio: daybreak cannot interrupt it, so the process ends" in err
    assert ("daybreak: test_trio.py::test_idle: test still running past its hang timeout on trio, which "
            "daybreak cannot interrupt; ending the test process") in err


def test_marker_overrides_option_and_bad_values_are_usage_errors(pytester: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_m='''
import time, pytest

@pytest.mark.daybreak_hang_timeout(0.3)
def test_slow():
    time.sleep(60)
''')
    result = pytester.runpytest_subprocess(*RUN, "--daybreak-hang-timeout=100", timeout=BOUND)
    result.assert_outcomes(failed=1)
    assert "after 0.3 s" in result.stdout.str()
    # The session's timeout: the option, then the environment, then the ini.
    monkeypatch.setenv("DAYBREAK_HANG_TIMEOUT", "40")
    ini = ("-o", "daybreak_hang_timeout=50", "--collect-only")
    assert "daybreak: hang timeout 30 s" in pytester.runpytest_subprocess(
        *RUN, *ini, "--daybreak-hang-timeout=30", timeout=BOUND).stdout.str()
    assert "daybreak: hang timeout 40 s" in pytester.runpytest_subprocess(*RUN, *ini, timeout=BOUND).stdout.str()
    monkeypatch.delenv("DAYBREAK_HANG_TIMEOUT")
    assert "daybreak: hang timeout 50 s" in pytester.runpytest_subprocess(*RUN, *ini, timeout=BOUND).stdout.str()
    bad = pytester.runpytest_subprocess(*RUN, "-o", "daybreak_hang_timeout=soon", timeout=BOUND)
    assert "invalid hang timeout 'soon'" in bad.stdout.str() + bad.stderr.str()


def test_hang_timeout_is_not_an_exception() -> None:
    assert not issubclass(HangTimeout, Exception)
    assert issubclass(HangTimeout, pytest.fail.Exception)  # pytest's teardown goes on after it


def test_hook_wrappers_are_old_style() -> None:
    # New-style wrappers (wrapper=True) crash every pytest run with pluggy < 1.2.
    import daybreak.pytest_plugin as plugin

    impls = [getattr(fn, "pytest_impl", None) for fn in vars(plugin).values() if isinstance(fn, types.FunctionType)]
    opts = [o for o in impls if o]
    assert opts and not any(o.get("wrapper") for o in opts)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX only")
def test_the_signal_is_not_sigalrm_and_chains_to_a_previous_handler(monkeypatch: pytest.MonkeyPatch,
                                                                    pytester: pytest.Pytester) -> None:
    from daybreak.pytest_plugin._hang import HangWatch

    got = threading.Event()

    def theirs(signum: int, frame: object) -> None:
        got.set()

    # Every candidate signal taken: daybreak takes one anyway and passes it on.
    monkeypatch.setattr(signal, "getsignal", lambda n: theirs)
    signum = getattr(signal, "SIGRTMAX", signal.SIGUSR2)
    previous = signal.signal(signum, theirs)
    try:
        watch = HangWatch(pytester.parseconfig())
        try:
            assert watch._signum == signum and watch._signum != signal.SIGALRM
            signal.raise_signal(signum)
            assert got.is_set()
        finally:
            watch.close()
        assert signal.signal(signum, previous) is theirs
    finally:
        signal.signal(signum, previous)
