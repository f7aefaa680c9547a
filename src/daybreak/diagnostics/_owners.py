"""Which component a stack belongs to, from the code objects of its frames."""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Mapping

Codes = Mapping[types.CodeType, str]


class Owners:
    """Component names by code object and by source file.

    A frame belongs to a component when its code is one of the component's code
    objects or is nested in one (a closure or lambda defined in a factory runs
    on the component's behalf). Failing that, a frame whose file holds the code
    of exactly one component belongs to it: a thread target defined next to its
    factory is the factory's, though its code is neither the factory's nor
    nested in it.

    ``codes`` may be a callable that returns the map: the tables are built on
    the first question, so a clean stop or a loop that never blocks pays
    nothing for them.
    """

    __slots__ = ("_by_code", "_by_file", "_source")

    def __init__(self, codes: Codes | Callable[[], Codes] | None = None) -> None:
        self._source = codes
        self._by_code: dict[types.CodeType, str] | None = None
        self._by_file: dict[str, str] = {}

    def _tables(self) -> dict[types.CodeType, str]:
        if self._by_code is not None:
            return self._by_code
        source = self._source
        codes = (source() if callable(source) else source) or {}
        by_code: dict[types.CodeType, str] = dict(codes)
        files: dict[str, set[str]] = {}
        for code, name in codes.items():
            files.setdefault(code.co_filename, set()).add(name)
            for nested in _nested(code):
                by_code.setdefault(nested, name)
        self._by_file = {file: next(iter(names)) for file, names in files.items() if len(names) == 1}
        self._by_code = by_code
        return by_code

    def __bool__(self) -> bool:
        return bool(self._tables())

    def component_of(self, codes: Iterable[types.CodeType]) -> str | None:
        """The component of a stack given innermost first, or None."""
        by_code = self._tables()
        if not by_code:
            return None
        stack = list(codes)
        for code in stack:
            name = by_code.get(code)
            if name is not None:
                return name
        for code in stack:
            name = self._by_file.get(code.co_filename)
            if name is not None:
                return name
        return None


def _nested(code: types.CodeType) -> Iterable[types.CodeType]:
    pending = [code]
    while pending:
        for const in pending.pop().co_consts:
            if isinstance(const, types.CodeType):
                yield const
                pending.append(const)


def codes_of_frames(frame: types.FrameType | None) -> list[types.CodeType]:
    """The code objects of a thread's stack, innermost first."""
    codes = []
    while frame is not None:
        codes.append(frame.f_code)
        frame = frame.f_back
    return codes
