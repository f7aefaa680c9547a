"""Every form a factory takes: bound methods, classmethods, staticmethods,
partials, callable objects and decorated coroutines, started for real.

Each form must plan and start as the plain function it stands for would,
except that what a partial binds is its own: only unbound parameters are
dependencies.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daybreak import Registry
from daybreak.system import component_codes


class Config:
    def __init__(self, label: str = "registry") -> None:
        self.label = label


class Pool:
    def __init__(self, config: Config, size: int) -> None:
        self.config = config
        self.size = size


class Clock:
    pass


def start(registry: Registry) -> dict[type, Any]:
    """Start and stop ``registry``; what it provided while it was up, by type."""

    async def run() -> dict[type, Any]:
        async with registry.start() as system:
            assert system.report().status == "ready", system.report().to_text()
            return {t: system[t] for t in (Config, Pool, Clock) if t in system}

    return asyncio.run(run())


def registry_with(factory: Callable[..., Any], **options: Any) -> Registry:
    registry = Registry("forms")
    registry.add(Config)
    registry.add(factory, name="pool", **options)
    return registry


class Maker:
    def __init__(self, size: int) -> None:
        self.size = size

    def pool(self, config: Config) -> Pool:
        return Pool(config, self.size)

    @classmethod
    def default_pool(cls, config: Config) -> Pool:
        return Pool(config, 2)

    @staticmethod
    def static_pool(config: Config) -> Pool:
        return Pool(config, 3)

    async def async_pool(self, config: Config) -> Pool:
        await asyncio.sleep(0)
        return Pool(config, self.size)


class PoolFactory:
    """A configured factory object: its ``__call__`` is the factory."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, config: Config) -> Pool:
        return Pool(config, self.size)


class AsyncPoolFactory:
    async def __call__(self, config: Config) -> Pool:
        await asyncio.sleep(0)
        return Pool(config, 5)


@pytest.mark.parametrize(("factory", "size"), [
    (Maker(7).pool, 7), (Maker.default_pool, 2), (Maker.static_pool, 3), (Maker(8).async_pool, 8),
    (PoolFactory(4), 4), (AsyncPoolFactory(), 5),
], ids=["bound", "classmethod", "staticmethod", "bound-async", "callable", "callable-async"])
def test_methods_and_callable_objects_are_factories(factory: Callable[..., Pool], size: int) -> None:
    registry = registry_with(factory)
    plan = registry.plan()
    assert [p.name for p in plan.dependencies_of("pool")] == ["Config"]
    system = start(registry)
    assert isinstance(system[Pool], Pool)
    assert (system[Pool].size, system[Pool].config) == (size, system[Config])


def test_a_method_without_annotations_is_told_about_its_own_parameter_not_self() -> None:
    class Unannotated:
        def pool(self, config):  # type: ignore[no-untyped-def]
            return Pool(config, 1)

    with pytest.raises(ValueError, match="parameter 'config' has no annotation") as info:
        registry_with(Unannotated().pool, provides=Pool).plan()
    assert "self" not in str(info.value)


def test_a_bound_method_is_located_by_its_code() -> None:
    registry = Registry("forms")
    registry.add(Maker(1).pool)  # Config is missing
    with pytest.raises(ValueError, match=r"test_factories\.py:\d+\) needs Config"):
        registry.plan()


def make_pool(config: Config, size: int, clock: Clock | None = None) -> Pool:
    pool = Pool(config, size)
    pool.clock = clock  # type: ignore[attr-defined]
    return pool


def test_a_keyword_bound_in_a_partial_wins_over_the_component_of_its_type() -> None:
    own = Config("bound")
    registry = registry_with(functools.partial(make_pool, config=own, size=9))
    registry.add(Clock)
    assert [p.name for p in registry.plan().dependencies_of("pool")] == ["Clock"]
    system = start(registry)
    assert system[Pool].config is own
    assert system[Pool].size == 9
    assert system[Pool].clock is system[Clock]  # type: ignore[attr-defined]


def test_a_positional_bound_in_a_partial_is_no_dependency() -> None:
    own = Config("bound")
    registry = registry_with(functools.partial(functools.partial(make_pool, own), size=1))
    assert registry.plan().dependencies_of("pool") == ()
    system = start(registry)
    assert system[Pool].config is own


def test_a_partial_of_a_bound_method_and_of_an_async_function() -> None:
    async def make(config: Config, size: int) -> Pool:
        await asyncio.sleep(0)
        return Pool(config, size)

    for factory in (functools.partial(make, size=3), functools.partial(Maker(3).pool)):
        system = start(registry_with(factory))
        assert (system[Pool].size, system[Pool].config) == (3, system[Config])


def logged(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain synchronous decorator: it returns what the function returns."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def logged_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    return wrapper


STOPPED: list[str] = []


@logged
async def wrapped_coroutine(config: Config) -> Pool:
    await asyncio.sleep(0)
    return Pool(config, 1)


@logged_async
async def wrapped_async(config: Config) -> Pool:
    await asyncio.sleep(0)
    return Pool(config, 1)


@logged
async def wrapped_async_generator(config: Config) -> AsyncIterator[Pool]:
    yield Pool(config, 1)
    STOPPED.append("async generator")


@logged
def wrapped_generator(config: Config) -> Iterator[Pool]:
    yield Pool(config, 1)
    STOPPED.append("generator")


@logged
@asynccontextmanager
async def wrapped_manager(config: Config) -> AsyncIterator[Pool]:
    yield Pool(config, 1)
    STOPPED.append("context manager")


@pytest.mark.filterwarnings("error::RuntimeWarning")  # "coroutine ... was never awaited"
@pytest.mark.parametrize(("factory", "stop"), [
    (wrapped_coroutine, None), (wrapped_async, None), (wrapped_async_generator, "async generator"),
    (wrapped_generator, "generator"), (wrapped_manager, "context manager"),
], ids=["sync-wrapper-of-coroutine", "async-wrapper", "async-generator", "generator", "context-manager"])
def test_decorated_factories_start_and_stop_as_what_they_wrap(factory: Callable[..., Any],
                                                              stop: str | None) -> None:
    STOPPED.clear()
    system = start(registry_with(factory))
    assert type(system[Pool]) is Pool
    assert ([stop] if stop else []) == STOPPED


def test_the_code_of_every_form_belongs_to_its_component() -> None:
    """A blocked loop or a leftover thread is blamed on the component whose code it runs."""
    forms = {"bound": Maker(1).pool, "callable": PoolFactory(1), "partial": functools.partial(make_pool, size=1),
             "wrapped": wrapped_coroutine}
    registry = Registry("forms")
    for name, factory in forms.items():
        registry.add(factory, name=name, provides=name)
    codes = {name: code.co_name for code, name in component_codes(registry.components).items()}
    assert codes == {"bound": "pool", "callable": "__call__", "partial": "make_pool",
                     "wrapped": "wrapped_coroutine"}


def test_duplicate_phase_names_are_an_error_at_construction() -> None:
    with pytest.raises(ValueError, match="phase 'init' is named twice"):
        Registry("app", phases=("init", "services", "init"))
    with pytest.raises(TypeError, match="phase names are non-empty strings"):
        Registry("app", phases=("init", ""))


# -- property: every form plans as the plain function, minus what it binds ----------------------

def three(config: Config, size: int, clock: Clock) -> Pool:
    pool = Pool(config, size)
    pool.clock = clock  # type: ignore[attr-defined]
    return pool


class Three:
    def method(self, config: Config, size: int, clock: Clock) -> Pool:
        return three(config, size, clock)

    def __call__(self, config: Config, size: int, clock: Clock) -> Pool:
        return three(config, size, clock)


FORMS: dict[str, Callable[..., Any]] = {
    "function": three, "bound": Three().method, "callable": Three(), "wrapped": logged(three),
}
PARAMETERS = ("config", "size", "clock")


@settings(max_examples=40, deadline=None)
@given(form=st.sampled_from(sorted(FORMS)), bound=st.sets(st.sampled_from(PARAMETERS)),
       nested=st.booleans())
def test_a_partial_of_any_form_depends_on_exactly_its_unbound_parameters(form: str, bound: set[str],
                                                                         nested: bool) -> None:
    own: dict[str, Any] = {"config": Config("bound"), "size": 11, "clock": Clock()}
    keywords = {name: own[name] for name in bound}
    factory = FORMS[form]
    if nested:  # a partial of a partial binds the keywords of both
        factory = functools.partial(factory)
    factory = functools.partial(factory, **keywords) if keywords or nested else factory
    registry = Registry("forms")
    registry.add(Config)
    registry.add(Clock)
    registry.value(5, provides=int)
    registry.add(factory, name="pool")
    step = registry.plan().step("pool")
    assert [d.parameter for d in step.dependencies] == [p for p in PARAMETERS if p not in bound]
    system = start(registry)
    pool = system[Pool]
    expected = {"config": system[Config], "size": 5, "clock": system[Clock], **keywords}
    assert (pool.config, pool.size, pool.clock) == (expected["config"], expected["size"],  # type: ignore[attr-defined]
                                                    expected["clock"])
