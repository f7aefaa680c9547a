"""Declarations and plans: order, levels, barriers, critical path and every declaration error."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from typing import AsyncContextManager, ContextManager

import pytest

from daybreak import (
    CycleError,
    DeclarationError,
    DuplicateProviderError,
    MissingDependencyError,
    Registry,
    UnknownPhaseError,
)


class Settings: ...
class Database: ...
class Cache: ...
class Analytics: ...
class Api: ...
class DatabaseSettings: ...


def names(components) -> list[str]:
    return [c.name for c in components]


class TestDeclarations:
    def test_decorating_runs_nothing_and_evaluates_no_annotation(self) -> None:
        registry = Registry("app")
        calls = []

        @registry.component
        def broken(x: NotDefinedAnywhere) -> AlsoMissing:  # noqa: F821
            calls.append(1)

        assert calls == []
        with pytest.raises(DeclarationError, match="NotDefinedAnywhere|AlsoMissing"):
            registry.plan()

    def test_decorated_function_is_still_callable(self) -> None:
        registry = Registry()

        @registry.component(name="answer")
        def answer_factory() -> int:
            return 42

        assert answer_factory() == 42
        assert answer_factory.name == "answer"

    def test_provides_is_unwrapped_from_every_factory_form(self) -> None:
        registry = Registry()

        @registry.component
        def a() -> Settings: ...
        @registry.component
        async def b() -> Database: ...
        @registry.component
        def c() -> Iterator[Cache]: yield Cache()
        @registry.component
        async def d() -> AsyncIterator[Analytics]: yield Analytics()
        @registry.component
        def e() -> ContextManager[Api]: ...
        @registry.component
        async def f() -> AsyncContextManager[int]: ...
        @registry.component
        @contextlib.asynccontextmanager
        async def g() -> AsyncIterator[str]: yield ""
        @registry.component(provides=float)
        def h() -> object: ...

        plan = registry.plan()
        provided = {s.name: s.analysis.provides for s in plan.steps}
        assert provided == {"a": Settings, "b": Database, "c": Cache, "d": Analytics, "e": Api,
                            "f": int, "g": str, "h": float}
        enter = {s.name: s.analysis.enter for s in plan.steps}
        assert enter["e"] == "sync" and enter["f"] == "async" and enter["g"] == "async"
        assert enter["a"] == enter["c"] == enter["d"] == "none"

    def test_unknown_option_is_a_type_error_at_declaration(self) -> None:
        registry = Registry()
        with pytest.raises(TypeError, match="unknown component option.*timout"):
            registry.component(timout=3)

    @pytest.mark.parametrize(("option", "value"), [
        ("timeout", -1), ("timeout", 0), ("stop_timeout", "soon"), ("retries", -1),
        ("retries", 1.5), ("backoff", -0.1), ("optional", "yes"), ("blocking", None),
        ("once", 1),
    ])
    def test_bad_option_values_are_declaration_errors_at_plan(self, option: str, value: object) -> None:
        registry = Registry()
        registry.add(lambda: None, name="step", **{option: value})
        with pytest.raises(DeclarationError, match=f"'step'.*{option}="):
            registry.plan()

    def test_once_is_an_option_in_both_forms_and_in_the_plan(self) -> None:
        registry = Registry()

        @registry.component(once=True)
        def migrations() -> Settings: ...

        def db() -> Database: ...

        registry.add(db, once=False)
        plan = registry.plan()
        assert [c["once"] for c in plan.to_dict()["components"]] == [True, False]
        assert "migrations [once]" in plan.to_text()
        assert migrations.once is True and "once=True" in repr(migrations)

    def test_value_and_include(self) -> None:
        base = Registry("base")
        base.value(Settings(), provides=Settings)
        app = Registry("app")

        @app.component
        def db(s: Settings) -> Database: ...

        app.include(base)
        plan = app.plan()
        assert names(plan.order) == ["settings", "db"]

    def test_partial_factory(self) -> None:
        registry = Registry()

        def make(settings: Settings, size: int) -> Database: ...

        registry.add(Settings)
        registry.add(functools.partial(make, size=3), name="db")
        plan = registry.plan()
        assert names(plan.dependencies_of("db")) == ["Settings"]


class TestOrder:
    def test_ties_break_by_phase_then_declaration(self) -> None:
        registry = Registry("app", phases=("init", "services"))
        for name in ("z", "y", "x"):
            registry.add(lambda: None, name=name, phase="services")
        registry.add(lambda: None, name="late_init", phase="init")
        plan = registry.plan()
        assert names(plan.order) == ["late_init", "z", "y", "x"]

    def test_phase_barrier_waits_for_critical_components_only(self) -> None:
        registry = Registry("app", phases=("a", "b", "c"))
        registry.add(lambda: None, name="crit_a", phase="a")
        registry.add(lambda: None, name="opt_a", phase="a", optional=True)
        registry.add(lambda: None, name="in_c", phase="c")
        plan = registry.plan()
        # phase b has nothing: c waits for the nearest earlier phase that has critical steps
        assert names(plan.dependencies_of("in_c")) == ["crit_a"]
        assert names(plan.levels[0]) == ["crit_a", "opt_a"]
        assert names(plan.levels[1]) == ["in_c"]

    def test_critical_path_and_levels(self) -> None:
        registry = Registry()

        @registry.component
        def settings() -> Settings: ...
        @registry.component
        def db(s: Settings) -> Database: ...
        @registry.component
        def cache(s: Settings) -> Cache: ...
        @registry.component
        def api(d: Database, c: Cache) -> Api: ...

        plan = registry.plan()
        assert [names(level) for level in plan.levels] == [["settings"], ["db", "cache"], ["api"]]
        assert names(plan.critical_path) == ["settings", "db", "api"]
        path, total = plan.critical_path_for({"settings": 1, "db": 1, "cache": 5, "api": 1})
        assert path == ["settings", "cache", "api"] and total == 7

    def test_renderings(self) -> None:
        registry = Registry("app", phases=("init", "db"))

        @registry.component(phase="init")
        def settings() -> Settings: ...
        @registry.component(phase="db", optional=True)
        def db(s: Settings) -> Database: ...

        plan = registry.plan()
        dot = plan.to_dot()
        assert '"settings" -> "db";' in dot and "style=dashed" in dot and "cluster_init" in dot
        mermaid = plan.to_mermaid()
        assert mermaid.startswith("flowchart LR") and "c0 --> c1" in mermaid
        data = plan.to_dict()
        assert data["order"] == ["settings", "db"]
        assert data["components"][1]["depends_on"] == ["settings"]
        assert data["components"][1]["critical"] is False
        assert "critical path: settings -> db" in plan.to_text()


class TestErrors:
    def test_cycle_prints_whole_cycle(self) -> None:
        registry = Registry()

        @registry.component
        def a(c: Cache) -> Settings: ...
        @registry.component
        def b(s: Settings) -> Database: ...
        @registry.component
        def c(d: Database) -> Cache: ...

        with pytest.raises(CycleError) as info:
            registry.plan()
        assert sorted(info.value.cycle[:-1]) == ["a", "b", "c"]
        assert info.value.cycle[0] == info.value.cycle[-1]
        assert " -> ".join(info.value.cycle) in str(info.value)

    def test_dependency_on_later_phase_is_a_cycle_through_the_barrier(self) -> None:
        registry = Registry("app", phases=("init", "db"))

        @registry.component(phase="init")
        def settings(d: Database) -> Settings: ...
        @registry.component(phase="db")
        def db() -> Database: ...

        with pytest.raises(CycleError, match="barrier after phase 'init'.*later phase"):
            registry.plan()

    def test_missing_provider_names_who_needs_it_and_closest(self) -> None:
        registry = Registry()

        @registry.component
        def settings() -> DatabaseSettings: ...
        @registry.component
        def db(s: Settings) -> Database: ...

        with pytest.raises(MissingDependencyError) as info:
            registry.plan()
        message = str(info.value)
        assert "'db'" in message and "Settings" in message and "parameter 's'" in message
        assert "DatabaseSettings" in message and "from 'settings'" in message

    def test_two_providers(self) -> None:
        registry = Registry()
        registry.add(Settings, name="one")
        registry.add(Settings, name="two")
        with pytest.raises(DuplicateProviderError, match="'one'.*'two'"):
            registry.plan()

    def test_critical_needs_optional_without_none(self) -> None:
        registry = Registry()

        @registry.component(optional=True)
        def analytics() -> Analytics: ...
        @registry.component
        def api(a: Analytics) -> Api: ...

        with pytest.raises(DeclarationError, match=r"'api'.*optional component 'analytics'.*\| None"):
            registry.plan()

    def test_optional_dependency_with_none_is_fine(self) -> None:
        registry = Registry()

        @registry.component(optional=True)
        def analytics() -> Analytics: ...
        @registry.component
        def api(a: Analytics | None) -> Api: ...

        assert names(registry.plan().order) == ["analytics", "api"]

    def test_unknown_phase_suggests(self) -> None:
        registry = Registry("app", phases=("database", "cache"))
        registry.add(lambda: None, name="x", phase="databse")
        with pytest.raises(UnknownPhaseError, match="did you mean database"):
            registry.plan()

    def test_unannotated_parameter(self) -> None:
        registry = Registry()
        registry.add(lambda settings: None, name="x")
        with pytest.raises(DeclarationError, match="parameter 'settings' has no annotation"):
            registry.plan()

    def test_duplicate_names(self) -> None:
        registry = Registry()
        registry.add(lambda: None, name="x")
        registry.add(lambda: None, name="x")
        with pytest.raises(DeclarationError, match="two declarations are named 'x'"):
            registry.plan()


class TestPruning:
    def _registry(self) -> Registry:
        registry = Registry()

        @registry.component
        def settings() -> Settings: ...
        @registry.component
        def pool(s: Settings) -> Database: ...
        @registry.component
        def cache(s: Settings) -> Cache: ...
        @registry.component
        def api(d: Database) -> Api: ...

        return registry

    def test_override_drops_what_only_the_replaced_component_needed(self) -> None:
        registry = Registry()

        @registry.component
        def settings() -> Settings: ...
        @registry.component
        def db(s: Settings) -> Database: ...

        plan = registry.plan(overrides={Database: Database()})
        assert names(plan.order) == ["db"]

    def test_override_keeps_dependencies_others_need(self) -> None:
        plan = self._registry().plan(overrides={Database: Database()})
        assert names(plan.order) == ["settings", "pool", "cache", "api"]
        assert plan.dependencies_of("pool") == ()

    def test_override_by_factory_resolves_its_own_dependencies(self) -> None:
        def fake_pool(c: Cache) -> Database: ...
        plan = self._registry().plan(overrides={Database: fake_pool})
        assert names(plan.dependencies_of("pool")) == ["cache"]

    def test_only(self) -> None:
        plan = self._registry().plan(only=[Cache])
        assert names(plan.order) == ["settings", "cache"]

    def test_unknown_override_and_only(self) -> None:
        with pytest.raises(MissingDependencyError, match="override for Analytics"):
            self._registry().plan(overrides={Analytics: Analytics()})
        with pytest.raises(MissingDependencyError, match="only= asks for Analytics"):
            self._registry().plan(only=[Analytics])


# -- the one-pass reading of plain functions ----------------------------------------------------
# analyse() reads a plain function with bare-name annotations in one pass; every
# such function must read exactly as the general path reads it.


async def _one(s: Settings) -> Database: ...
def _sync(s: Settings, c: Cache | None = None, *, k: Api) -> Database: ...
async def _agen(s: Settings) -> AsyncIterator[Cache]:
    yield Cache()
def _gen() -> Iterator[Cache]:
    yield Cache()
def _cm(d: Database) -> ContextManager[Cache]: ...
async def _acm(d: Database, s: Settings | None) -> AsyncContextManager[Api]: ...
def _none(d: Database, s: Settings = Settings()) -> None: ...  # noqa: B008
def _unannotated_return(d: Database): ...  # type: ignore[no-untyped-def]
async def _defaults(a: Settings, b: Cache = Cache(), *, c: Api, d: Database = Database()) -> Api: ...  # noqa: B008
def _keyword_only(*, a: Settings, b: Cache = Cache()) -> Analytics: ...  # noqa: B008

def _evaluated(c: Cache, s: Settings, d: Database = Database()) -> Api: ...  # noqa: B008


# Annotations as a module without `from __future__ import annotations` has them:
# objects, a `T | None` among them, which the one pass reads too.
_evaluated.__annotations__ = {"c": Cache, "s": Settings | None, "d": Database, "return": Api}

ONE_PASS = {_one, _unannotated_return, _defaults, _keyword_only, _evaluated}


@pytest.mark.parametrize("factory", [_one, _sync, _agen, _gen, _cm, _acm, _none, _unannotated_return,
                                     _defaults, _keyword_only, _evaluated])
@pytest.mark.parametrize("provides", [None, Analytics])
def test_plain_functions_read_as_the_general_path_reads_them(factory, provides,  # type: ignore[no-untyped-def]
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from daybreak import _introspect
    from daybreak.registry import UNSET

    wanted = UNSET if provides is None else provides
    fast = _introspect._analyse_function(factory, wanted, UNSET)
    assert (fast is not None) == (factory in ONE_PASS)
    read = _introspect.analyse(factory, wanted, UNSET)
    monkeypatch.setattr(_introspect, "_analyse_function", lambda *args: None)
    assert read == _introspect.analyse(factory, wanted, UNSET)
    assert fast is None or fast == read
    if factory is _evaluated:
        assert [tuple(p) for p in read.params] == [("c", Cache, False, False), ("s", Settings, True, False),
                                                   ("d", Database, False, True)]


def _starred(*args: Settings) -> Database: ...
def _string_union(s: "Settings | None") -> Database: ...  # noqa: UP037 - a string to evaluate
def _no_annotation(s) -> Database: ...  # type: ignore[no-untyped-def]


@pytest.mark.parametrize("factory", [_starred, _string_union, _no_annotation])
def test_what_the_one_pass_cannot_read_goes_to_the_general_path(factory) -> None:  # type: ignore[no-untyped-def]
    from daybreak import _introspect
    from daybreak.registry import UNSET

    assert _introspect._analyse_function(factory, UNSET, UNSET) is None


CacheManager = ContextManager[Cache]


def _aliased_manager() -> CacheManager: ...


def test_provides_keeps_the_context_manager_its_return_annotation_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from daybreak import _introspect
    from daybreak.registry import UNSET

    read = _introspect.analyse(_aliased_manager, Analytics, UNSET)
    assert (read.provides, read.enter) == (Analytics, "sync")
    monkeypatch.setattr(_introspect, "_analyse_function", lambda *args: None)
    assert _introspect.analyse(_aliased_manager, Analytics, UNSET) == read
