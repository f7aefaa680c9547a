"""Declarations: a :class:`Registry` of :class:`Component` s, nothing executed.

Declaring runs no factory and evaluates no annotation: both wait for
:meth:`Registry.plan`, so importing a module full of declarations is free of
side effects and of forward-reference trouble.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar, overload

if TYPE_CHECKING:
    from daybreak.plan import Plan
    from daybreak.system import System

__all__ = ["Check", "Component", "Registry"]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=Callable[..., Any])  # a check: its signature is its own, not the factory's
Kind = Literal["component", "validator"]


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Final = _Unset()

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_STOP_TIMEOUT: Final = 10.0
DEFAULT_CHECK_TIMEOUT: Final = 5.0
DEFAULT_BACKOFF: Final = 0.1

_OPTIONS: Final = frozenset(
    {"phase", "optional", "timeout", "stop_timeout", "retries", "backoff", "blocking",
     "name", "provides", "tags", "once"}
)


class Check:
    """A health check of one component: runs after it is up, and on demand."""

    __slots__ = ("component", "fn", "name", "timeout")

    def __init__(self, fn: Callable[..., Any], component: Component[Any], *,
                 name: str | None, timeout: float | None) -> None:
        self.fn = fn
        self.component = component
        self.name = name or getattr(fn, "__name__", "check")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<Check {self.name!r} of {self.component.name!r}>"


_NO_TAGS: frozenset[str] = frozenset()


class Component(Generic[F]):
    """One declared step: a factory, what it provides and how to run it.

    The decorated function stays callable through the component, so it can
    still be unit-tested by calling it directly.
    """

    __slots__ = (
        "__wrapped__", "backoff", "blocking", "checks", "factory", "index", "kind", "name",
        "once", "optional", "phase", "provides", "retries", "stop_timeout", "tags", "timeout",
        "value", "wrapper",
    )

    def __init__(
        self,
        factory: F,
        *,
        name: str | None = None,
        phase: str | None = None,
        optional: bool = False,
        timeout: float | _Unset | None = UNSET,
        stop_timeout: float | _Unset | None = UNSET,
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        blocking: bool = True,
        provides: Any = UNSET,
        tags: Iterable[str] = (),
        kind: Kind = "component",
        value: Any = UNSET,
        once: bool = False,
    ) -> None:
        if not callable(factory):
            raise TypeError(
                f"daybreak: a component needs a callable factory, got {factory!r}; "
                "use registry.value(obj, provides=T) to register a ready instance"
            )
        self.factory: F = factory
        self.__wrapped__ = factory
        self.name: str = name if name is not None else _callable_name(factory)
        self.phase: object = phase  # checked at plan time, like every option
        self.optional = optional
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        self.retries = retries
        self.backoff = backoff
        self.blocking = blocking
        # Work done once per process (migrations, seeding): the leak checker starts
        # it in its first cycle only and keeps it for the others.
        self.once = once
        self.provides = provides
        # A lone string is one tag, not a set of characters. Untagged components,
        # and those without checks, share one empty value: a registry of
        # thousands would otherwise hand the garbage collector two objects each.
        self.tags: frozenset[str] = (frozenset({tags}) if isinstance(tags, str)
                                     else frozenset(tags) if tags else _NO_TAGS)
        self.kind: Kind = kind
        self.value = value
        self.checks: tuple[Check, ...] = ()
        self.index = -1
        # What daybreak.wrap() gives the instance: set on an override, never declared.
        self.wrapper: Callable[[Any], Any] | None = None

    @property
    def critical(self) -> bool:
        return not self.optional

    @overload
    def check(self, fn: C, /, *, timeout: float | None = DEFAULT_CHECK_TIMEOUT,
              name: str | None = None) -> C: ...
    @overload
    def check(self, fn: None = None, /, *, timeout: float | None = DEFAULT_CHECK_TIMEOUT,
              name: str | None = None) -> Callable[[C], C]: ...
    def check(self, fn: Any = None, /, *, timeout: float | None = DEFAULT_CHECK_TIMEOUT,
              name: str | None = None) -> Any:
        """Declare a health check: ``@component.check`` or ``@component.check(timeout=2)``.

        Its parameters are resolved like a factory's, from the component itself
        and what the component depends on.
        """

        def register(f: C) -> C:
            self.checks = (*self.checks, Check(f, self, name=name, timeout=timeout))
            return f

        return register(fn) if fn is not None else register

    def problems(self, phases: Sequence[str]) -> list[str]:
        """What is wrong with the options; empty when nothing is."""
        if self._plainly_valid():
            return []
        out: list[str] = []
        who = f"{self.kind} {self.name!r}"

        def bad(option: str, value: object, expected: str) -> None:
            out.append(f"{who}: {option}={value!r} is not valid; expected {expected}")

        if not isinstance(self.name, str) or not self.name:
            bad("name", self.name, "a non-empty string")
        for option in ("timeout", "stop_timeout"):
            value = getattr(self, option)
            if value is UNSET or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                bad(option, value, "a number of seconds > 0, or None for no limit")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            bad("retries", self.retries, "an int >= 0 (extra attempts)")
        if (isinstance(self.backoff, bool) or not isinstance(self.backoff, int | float)
                or not self.backoff >= 0):
            bad("backoff", self.backoff, "a number of seconds >= 0")
        for option in ("optional", "blocking", "once"):
            if not isinstance(getattr(self, option), bool):
                bad(option, getattr(self, option), "True or False")
        if not all(isinstance(t, str) for t in self.tags):
            bad("tags", sorted(map(repr, self.tags)), "strings")
        if self.phase is not None and not isinstance(self.phase, str):
            bad("phase", self.phase, "the name of a phase")
        for check in self.checks:
            t = check.timeout
            if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or t <= 0):
                out.append(f"check {check.name!r} of {who}: timeout={t!r} is not valid; "
                           "expected a number of seconds > 0, or None")
        del phases
        return out

    def _plainly_valid(self) -> bool:
        # The common case, checked in one expression: plans of thousands of
        # components would otherwise spend more time here than starting them.
        return (type(self.name) is str and self.name != ""
                and (self.timeout is UNSET or self.timeout is None
                     or (type(self.timeout) in (int, float) and self.timeout > 0))  # type: ignore[operator]
                and (self.stop_timeout is UNSET or self.stop_timeout is None
                     or (type(self.stop_timeout) in (int, float) and self.stop_timeout > 0))  # type: ignore[operator]
                and type(self.retries) is int and self.retries >= 0
                and type(self.backoff) in (int, float) and self.backoff >= 0
                and type(self.optional) is bool and type(self.blocking) is bool
                and type(self.once) is bool
                and (self.phase is None or type(self.phase) is str)
                and not self.checks and all(type(t) is str for t in self.tags))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.factory(*args, **kwargs)

    def __repr__(self) -> str:
        extra = f", phase={self.phase!r}" if self.phase else ""
        extra += ", optional=True" if self.optional else ""
        extra += ", once=True" if self.once is True else ""
        return f"<{self.kind.capitalize()} {self.name!r}{extra}>"


def _callable_name(obj: Callable[..., Any]) -> str:
    name = getattr(obj, "__name__", None)
    if name is None:
        func = getattr(obj, "func", None)  # functools.partial
        name = getattr(func, "__name__", None) or type(obj).__name__
    return str(name)


class Registry:
    """A named set of component declarations, optionally split in phases.

    >>> registry = Registry("app", phases=("init", "services"))
    >>> @registry.component(phase="init")
    ... def greeting() -> str:
    ...     return "hello"
    >>> [c.name for c in registry.plan().order]
    ['greeting']
    """

    def __init__(
        self,
        name: str = "app",
        phases: Sequence[str] | None = None,
        *,
        default_timeout: float | None = DEFAULT_TIMEOUT,
        default_stop_timeout: float | None = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        if isinstance(phases, str):
            raise TypeError(f"daybreak: phases must be a sequence of names, not the string {phases!r}; "
                            f"write phases=({phases!r},)")
        self.name = name
        self.phases: tuple[str, ...] = _phase_names(phases or ())
        self.default_timeout = default_timeout
        self.default_stop_timeout = default_stop_timeout
        self._components: list[Component[Any]] = []

    @property
    def components(self) -> tuple[Component[Any], ...]:
        return tuple(self._components)

    def _register(self, component: Component[Any]) -> Component[Any]:
        component.index = len(self._components)
        self._components.append(component)
        return component

    @overload
    def component(self, factory: F, /, **options: Any) -> Component[F]: ...
    @overload
    def component(self, factory: None = None, /, **options: Any) -> Callable[[F], Component[F]]: ...
    def component(self, factory: Any = None, /, **options: Any) -> Any:
        """Declare a component: ``@registry.component`` or ``@registry.component(phase=...)``.

        Options: ``phase``, ``optional``, ``timeout``, ``stop_timeout``,
        ``retries``, ``backoff``, ``blocking``, ``name``, ``provides``, ``tags``,
        ``once`` (work done once per process, such as migrations: the leak
        checker starts it in its first cycle only and keeps it for the others).
        """
        _check_options(options)
        if factory is not None:
            return self.add(factory, **options)

        def decorate(f: F) -> Component[F]:
            return self.add(f, **options)

        return decorate

    def add(self, factory: F, /, **options: Any) -> Component[F]:
        """Declare ``factory`` as a component; the non-decorator form of :meth:`component`."""
        _check_options(options)
        if isinstance(factory, Component):
            raise TypeError(
                f"daybreak: {factory!r} is already declared; use registry.include(other_registry) "
                "to reuse another registry's components"
            )
        return self._register(Component(factory, **options))

    def value(self, obj: object, /, *, provides: Any = UNSET, name: str | None = None,
              phase: str | None = None, tags: Iterable[str] = ()) -> Component[Any]:
        """Register a ready instance; it provides ``provides`` (default: its type)."""
        typ = type(obj) if provides is UNSET else provides

        def value_factory() -> Any:
            return obj

        label = name or getattr(typ, "__name__", None) or type(obj).__name__
        return self._register(Component(value_factory, name=_snake(str(label)), phase=phase,
                                        provides=typ, tags=tags, blocking=False, value=obj))

    @overload
    def validator(self, fn: F, /, *, phase: str | None = None, optional: bool = False,
                  timeout: float | _Unset | None = UNSET, name: str | None = None,
                  tags: Iterable[str] = ()) -> Component[F]: ...
    @overload
    def validator(self, fn: None = None, /, *, phase: str | None = None, optional: bool = False,
                  timeout: float | _Unset | None = UNSET, name: str | None = None,
                  tags: Iterable[str] = ()) -> Callable[[F], Component[F]]: ...
    def validator(self, fn: Any = None, /, *, phase: str | None = None, optional: bool = False,
                  timeout: float | _Unset | None = UNSET, name: str | None = None,
                  tags: Iterable[str] = ()) -> Any:
        """Declare a validator: runs once, as soon as its dependencies are up.

        Critical unless ``optional=True``; a critical validator is part of its
        phase's barrier. It provides nothing.
        """

        def decorate(f: F) -> Component[F]:
            return self._register(Component(f, name=name, phase=phase, optional=optional,
                                            timeout=timeout, provides=None, tags=tags,
                                            kind="validator"))

        return decorate(fn) if fn is not None else decorate

    def include(self, other: Registry, /) -> None:
        """Add every declaration of ``other`` after this registry's own."""
        if other is self:
            raise ValueError("daybreak: a registry cannot include itself")
        for component in other._components:
            self._register(component)

    def plan(self, overrides: Mapping[Any, Any] | None = None,
             only: Iterable[Any] | None = None) -> Plan:
        """Build the deterministic plan; raises :class:`DeclarationError` on any problem."""
        from daybreak.plan import build_plan

        return build_plan(self, overrides=overrides, only=only)

    def start(
        self,
        overrides: Mapping[Any, Any] | None = None,
        *,
        only: Iterable[Any] | None = None,
        concurrency: int | None = None,
        sequential: bool = False,
        timeout: float | None = None,
        block_threshold: float | None = 0.1,
        listeners: Iterable[Callable[[Any], None]] = (),
    ) -> System:
        """Plan, then return a :class:`System` to start with ``async with``."""
        from daybreak.system import System

        return System(self.plan(overrides=overrides, only=only), concurrency=concurrency,
                      sequential=sequential, timeout=timeout, block_threshold=block_threshold,
                      listeners=listeners)

    def __repr__(self) -> str:
        return f"<Registry {self.name!r}: {len(self._components)} declarations>"


def _phase_names(phases: Sequence[str]) -> tuple[str, ...]:
    names = tuple(phases)
    if not all(isinstance(p, str) and p for p in names):
        raise TypeError(f"daybreak: phase names are non-empty strings, got phases={names!r}")
    seen: set[str] = set()
    for phase in names:
        if phase in seen:
            raise ValueError(f"daybreak: phase {phase!r} is named twice in phases={names!r}; "
                             "each phase needs a name of its own")
        seen.add(phase)
    return names


def _check_options(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise TypeError(
            f"daybreak: unknown component option(s) {', '.join(unknown)}; "
            f"known options are {', '.join(sorted(_OPTIONS))}"
        )


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)

