"""Which component a stack belongs to, from the code objects of its frames."""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping


class Owners:
    """Component names by code object and by source file.

    A frame belongs to a component when its code is one of the component's code
    objects or is nested in one (a closure or lambda defined in a factory runs
    on the component's behalf). Failing that, a frame whose file holds the code
    of exactly one component belongs to it: a thread target defined next to its
    factory is the factory's, though its code is neither the factory's nor
    nested in it.
    """

    __slots__ = ("_by_code", "_by_file")

    def __init__(self, codes: Mapping[types.CodeType, str] | None = None) -> None:
        by_code: dict[types.CodeType, str] = dict(codes or {})
        files: dict[str, set[str]] = {}
        for code, name in (codes or {}).items():
            files.setdefault(code.co_filename, set()).add(name)
            for nested in _nested(code):
                by_code.setdefault(nested, name)
        self._by_code = by_code
        self._by_file = {file: next(iter(names)) for file, names in files.items() if len(names) == 1}

    def __bool__(self) -> bool:
        return bool(self._by_code)

    def component_of(self, codes: Iterable[types.CodeType]) -> str | None:
        """The component of a stack given innermost first, or None."""
        if not self._by_code:
            return None
        stack = list(codes)
        for code in stack:
            name = self._by_code.get(code)
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
