"""``[tool.daybreak]`` in the nearest ``pyproject.toml``: the one reader every command uses.

The nearest file is searched from the working directory up, as tools such as
ruff and pytest do; a project whose ``pyproject.toml`` has no
``[tool.daybreak]`` gets an empty table. A file that cannot be read, or a
value of the wrong shape, is a :class:`ConfigError` whose message names the
file and the key: the commands print it as one line and exit 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Config", "ConfigError", "configured_packages", "load"]


class ConfigError(ValueError):
    """``pyproject.toml`` cannot be read, or a ``[tool.daybreak]`` value is wrong."""


@dataclass(frozen=True)
class Config:
    """The ``[tool.daybreak]`` table of ``path`` (None: no ``pyproject.toml`` was found)."""

    path: str | None
    table: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        """``[tool.daybreak.<name>]``, empty when absent."""
        value = self.table.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.path}: [tool.daybreak] {name} must be a table ([tool.daybreak.{name}])")
        return value


def load(start: str | None = None) -> Config:
    """``[tool.daybreak]`` of the nearest ``pyproject.toml`` from ``start`` (the cwd) up."""
    import tomllib

    folder = os.path.abspath(start or os.getcwd())
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            try:
                with open(candidate, "rb") as file:
                    document = tomllib.load(file)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read {candidate}: {exc}") from None
            table = document.get("tool", {}).get("daybreak", {})
            if not isinstance(table, dict):
                raise ConfigError(f"{candidate}: tool.daybreak must be a table ([tool.daybreak])")
            return Config(candidate, table)
        parent = os.path.dirname(folder)
        if parent == folder:
            return Config(None)
        folder = parent


def configured_packages(start: str | None = None) -> list[str]:
    """``[tool.daybreak] packages`` of the nearest ``pyproject.toml`` from ``start`` (the cwd) up."""
    config = load(start)
    packages = config.table.get("packages", [])
    if not (isinstance(packages, list) and all(isinstance(p, str) for p in packages)):
        raise ConfigError(f"{config.path}: [tool.daybreak] packages must be a list of package names")
    return packages
