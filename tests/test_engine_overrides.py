"""An override that wraps the real component: ``overrides={T: daybreak.wrap(fn)}``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import daybreak
from daybreak import Registry, StartupError


class Settings: ...


class Pool:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


class RollbackPool:
    """What a test wants instead: the real pool, each test's work rolled back."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool


class Api:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool


def make_registry(log: list[str]) -> Registry:
    registry = Registry("wrapped")

    @registry.component
    def settings() -> Settings:
        return Settings()

    @registry.component(retries=1, backoff=0.001)
    async def pool(s: Settings) -> AsyncIterator[Pool]:
        log.append("pool started")
        yield Pool(s)
        log.append("pool stopped")

    @pool.check
    def ping(p: Pool) -> None:
        log.append(f"checked {type(p).__name__}")

    @registry.component
    async def api(p: Pool) -> Api:
        return Api(p)

    return registry


async def test_wrap_starts_the_real_component_and_provides_what_wraps_it() -> None:
    log: list[str] = []
    registry = make_registry(log)
    async with registry.start(overrides={Pool: daybreak.wrap(RollbackPool)}) as system:
        wrapped = system[Pool]
        assert isinstance(wrapped, RollbackPool)
        assert isinstance(wrapped.pool, Pool) and wrapped.pool.settings is system[Settings]
        assert system[Api].pool is wrapped  # dependents get the wrapper
        assert system.report().component("pool")["status"] == "started"
    assert log == ["pool started", "checked RollbackPool", "pool stopped"]  # the real stop still runs


async def test_wrap_takes_an_async_function_too() -> None:
    async def rollback(pool: Pool) -> RollbackPool:
        return RollbackPool(pool)

    log: list[str] = []
    async with make_registry(log).start(overrides={"pool": daybreak.wrap(rollback)}) as system:
        assert isinstance(system[Pool], RollbackPool)


async def test_a_wrapper_that_raises_fails_its_component_and_the_real_one_is_stopped() -> None:
    def broken(pool: Pool) -> RollbackPool:
        raise ValueError("no rollback today")

    log: list[str] = []
    with pytest.raises(StartupError) as caught:
        await make_registry(log).start(overrides={Pool: daybreak.wrap(broken)}).start()
    assert "its override's wrap() failed: no rollback today" in str(caught.value)
    assert log == ["pool started", "pool stopped"]


def test_wrap_needs_a_callable() -> None:
    with pytest.raises(TypeError, match=r"daybreak.wrap\(\) needs a callable"):
        daybreak.wrap(42)  # type: ignore[arg-type]
    assert repr(daybreak.wrap(RollbackPool)) == f"daybreak.wrap({RollbackPool!r})"
