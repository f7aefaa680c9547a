"""Whose code a source file is: the project's, daybreak's, the stdlib's or a library's."""

from __future__ import annotations

import enum
import functools
import os
import sysconfig

# The package directory, not the repository: daybreak's own tests and examples live
# outside it and are project code like any other.
_DAYBREAK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY_DIRS = frozenset({"site-packages", "dist-packages"})


class Place(enum.Enum):
    PROJECT = "project"
    DAYBREAK = "daybreak"
    STDLIB = "stdlib"
    LIBRARY = "library"
    PSEUDO = "pseudo"


@functools.cache
def _roots() -> tuple[tuple[str, ...], tuple[str, ...]]:
    # Computed on first use: sysconfig may import the platform's config module, and
    # importing daybreak must not touch the file system.
    paths = sysconfig.get_paths()
    stdlib = {paths["stdlib"], paths["platstdlib"]}
    return _prefixes({_DAYBREAK_DIR}), _prefixes(stdlib)


def _prefixes(dirs: set[str]) -> tuple[str, ...]:
    # Both spellings: a frame's file name keeps whatever symlinks its import path had.
    found = {os.path.normcase(p) for d in dirs for p in (os.path.abspath(d), os.path.realpath(d))}
    return tuple(p.rstrip(os.sep) + os.sep for p in sorted(found))


@functools.lru_cache(maxsize=4096)
def place_of(file: str) -> Place:
    if file.startswith("<frozen "):
        return Place.STDLIB
    if file.startswith("<") and file.endswith(">"):
        return Place.PSEUDO
    path = os.path.normcase(os.path.abspath(file))
    daybreak, stdlib = _roots()
    if path.startswith(daybreak):
        return Place.DAYBREAK
    if _LIBRARY_DIRS.intersection(path.split(os.sep)):
        return Place.LIBRARY
    if path.startswith(stdlib):
        return Place.STDLIB
    return Place.PROJECT
