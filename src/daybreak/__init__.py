"""daybreak: deterministic, fast, observable and testable start-up and shut-down.

Importing this package is cheap and has no side effects: the public names are
loaded on first use.
"""

from __future__ import annotations

from daybreak._version import __version__

# Not ``from typing import TYPE_CHECKING``: importing typing would triple the
# cost of ``import daybreak``; type checkers treat this name the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from daybreak._override import wrap
    from daybreak.errors import (
        CycleError,
        DaybreakError,
        DeclarationError,
        Disabled,
        DuplicateProviderError,
        MissingDependencyError,
        StartupError,
        UnknownPhaseError,
        UsageError,
    )
    from daybreak.events import Event
    from daybreak.plan import Plan
    from daybreak.registry import Check, Component, Registry
    from daybreak.report import ErrorInfo, StartupReport
    from daybreak.system import ComponentState, System, SystemState

__all__ = [
    "Check",
    "Component",
    "ComponentState",
    "CycleError",
    "DaybreakError",
    "DeclarationError",
    "Disabled",
    "DuplicateProviderError",
    "ErrorInfo",
    "Event",
    "MissingDependencyError",
    "Plan",
    "Registry",
    "StartupError",
    "StartupReport",
    "System",
    "SystemState",
    "UnknownPhaseError",
    "UsageError",
    "__version__",
    "wrap",
]

_WHERE = {
    "Check": "registry", "Component": "registry", "Registry": "registry",
    "ComponentState": "system", "System": "system", "SystemState": "system",
    "CycleError": "errors", "DaybreakError": "errors", "DeclarationError": "errors",
    "Disabled": "errors", "DuplicateProviderError": "errors", "MissingDependencyError": "errors",
    "StartupError": "errors", "UnknownPhaseError": "errors", "UsageError": "errors",
    "ErrorInfo": "report", "StartupReport": "report", "Event": "events", "Plan": "plan",
    "wrap": "_override",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'daybreak' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"daybreak.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
