"""Find the registry a command line names: ``module:attr`` or ``path/file.py:attr``.

The attribute is a :class:`~daybreak.Registry`, an ASGI application (checked
through :mod:`daybreak.asgi`), or a callable returning either. Every way of
failing is a :class:`TargetError`: one line, no traceback.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from daybreak._redact import redact
from daybreak.registry import Registry

__all__ = ["TARGET_HELP", "TargetError", "load_target", "module_of_target"]

TARGET_HELP = ("module:attribute or path/to/file.py:attribute naming a Registry or an ASGI app "
               "(or a callable returning one)")


class TargetError(Exception):
    """The target cannot be loaded; the message is one line that says why."""


def _split(spec: str) -> tuple[str, str]:
    module, sep, attr = spec.rpartition(":")
    if not sep or not module or not attr:
        raise TargetError(f"TARGET must be module:attribute or path/to/file.py:attribute, got {spec!r}")
    return module, attr


def module_of_target(spec: str) -> tuple[str, str | None]:
    """(dotted module name, directory to put on sys.path or None) for ``spec``."""
    module, _ = _split(spec)
    if module.endswith(".py") or os.sep in module or "/" in module:
        path = Path(module).resolve()
        if not path.is_file():
            raise TargetError(f"no such file: {module}")
        parts = [path.stem] if path.stem != "__init__" else []
        folder = path.parent
        while (folder / "__init__.py").is_file():
            parts.insert(0, folder.name)
            folder = folder.parent
        return ".".join(parts), str(folder)
    return module, None


def load_target(spec: str, *, timeout: float | None = None) -> Registry:
    """The registry ``spec`` names; an ASGI app's lifespan step gets ``timeout`` as its start timeout."""
    module_name, root = module_of_target(spec)
    _, attr = _split(spec)
    if root is not None and root not in sys.path:
        sys.path.insert(0, root)
    elif root is None and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise TargetError(f"cannot import {module_name!r}: no module named {exc.name!r} "
                              "(is its folder on PYTHONPATH?)") from None
        raise TargetError(_import_failure(module_name, exc)) from None
    except Exception as exc:
        raise TargetError(_import_failure(module_name, exc)) from None
    except SystemExit as exc:
        raise TargetError(f"importing {module_name!r} called sys.exit({exc.code!r})") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"module {module_name!r} has no attribute {attr!r}") from None
    from daybreak import asgi

    if not isinstance(obj, Registry) and not asgi.is_asgi_app(obj) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise TargetError(f"{spec} raised {type(exc).__name__}: {redact(str(exc))}") from None
    if isinstance(obj, Registry):
        return obj
    if not asgi.is_asgi_app(obj):
        raise TargetError(f"{spec} is a {type(obj).__name__}, not a daybreak.Registry or an ASGI app "
                          "(or a callable returning one)")
    own = asgi.registry_in(obj)
    if own is not None:
        return own
    try:  # the whole lifespan becomes one step: does the app speak the protocol at all?
        asyncio.run(asgi.check_lifespan(obj))
    except asgi.LifespanUnsupported as exc:
        raise TargetError(f"{spec}: {exc}") from None
    return asgi.registry_of(obj, name=attr.rpartition(".")[2], timeout=timeout)


def _import_failure(module_name: str, exc: BaseException) -> str:
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        where = f" at {frames[-1].filename}:{frames[-1].lineno}"
    return f"importing {module_name!r} raised {type(exc).__name__}: {redact(str(exc))}{where}"
