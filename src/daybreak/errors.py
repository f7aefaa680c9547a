"""Every exception daybreak raises.

::

    Exception
    ├── Disabled                 raised by a factory: "switched off by configuration"
    └── DaybreakError
        ├── DeclarationError     (also a ValueError) raised by ``Registry.plan()``
        │   ├── CycleError
        │   ├── MissingDependencyError
        │   ├── DuplicateProviderError
        │   └── UnknownPhaseError
        ├── StartupError         ``start()`` failed; ``.report`` holds the details
        └── UsageError           (also a RuntimeError) the API was used in a wrong order
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daybreak.report import StartupReport

__all__ = [
    "CycleError",
    "DaybreakError",
    "DeclarationError",
    "Disabled",
    "DuplicateProviderError",
    "MissingDependencyError",
    "StartupError",
    "UnknownPhaseError",
    "UsageError",
]


class Disabled(Exception):
    """Raise from a factory to switch the component off by configuration.

    The component is reported ``disabled`` with ``reason``; what needs it is
    treated as for a failed optional component, but the system stays ``ready``.
    ``reason`` may be any object, typically the exception that says why
    (``except ImportError as exc: raise Disabled(exc)``): the reason is its text.
    """

    def __init__(self, reason: object = "disabled by configuration") -> None:
        text = "disabled by configuration" if reason is None else text_of(reason)
        super().__init__(text)
        self.reason = text


def text_of(obj: object) -> str:
    """``str(obj)``, or a line that says why it could not be read: never raises.

    An exception whose ``__str__`` raises must still be reported as a failure;
    a failure that cannot be recorded would read as a success.
    """
    try:
        text = str(obj)
        if type(text) is not str:  # a str subclass can override anything
            text = str.__str__(text)
    except Exception as exc:
        try:
            why = f"{type(exc).__name__}: {exc}"
        except Exception:
            why = type(exc).__name__
        return f"{type(obj).__name__} (its message could not be read: {why})"
    return text


class DaybreakError(Exception):
    """Base class of daybreak's own errors."""


class DeclarationError(DaybreakError, ValueError):
    """The declarations cannot make a plan; the message names the components."""


class CycleError(DeclarationError):
    """The dependency graph has a cycle; ``.cycle`` lists its names, closed."""

    def __init__(self, message: str, cycle: list[str]) -> None:
        super().__init__(message)
        self.cycle = cycle


class MissingDependencyError(DeclarationError):
    """A parameter asks for a type that nothing provides."""


class DuplicateProviderError(DeclarationError):
    """Two components provide the same type."""


class UnknownPhaseError(DeclarationError):
    """A component names a phase that the registry does not declare."""


class StartupError(DaybreakError):
    """The start failed: a critical component failed, timed out or was cancelled.

    ``component`` names it (``None`` when the whole start timed out or was
    cancelled), ``where`` is ``file:line`` of the innermost frame of the
    project's code, and ``report`` is the full :class:`StartupReport`.
    """

    def __init__(
        self,
        message: str,
        *,
        report: StartupReport,
        component: str | None = None,
        where: str | None = None,
    ) -> None:
        super().__init__(message)
        self.report = report
        self.component = component
        self.where = where


class UsageError(DaybreakError, RuntimeError):
    """The API was used in a way that cannot work; the message shows the fix."""
