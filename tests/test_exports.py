"""Public names: sorted ``__all__`` everywhere, and every name in it importable."""

from __future__ import annotations

import importlib

import pytest

import daybreak

MODULES = ["daybreak", "daybreak.errors", "daybreak.registry", "daybreak.plan", "daybreak.system",
           "daybreak.report", "daybreak.events", "daybreak.diagnostics", "daybreak.leaks",
           "daybreak.imports", "daybreak.doctor", "daybreak.monitor", "daybreak.testing",
           "daybreak.pytest_plugin", "daybreak.cli", "daybreak.html", "daybreak._override"]


def isort_style(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=isort_style), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported)
    for attribute in exported:
        assert getattr(module, attribute) is not None


def test_package_exports_every_public_class_of_the_core() -> None:
    for module_name in ("daybreak.errors", "daybreak.registry", "daybreak.report"):
        module = importlib.import_module(module_name)
        for attribute in module.__all__:
            assert attribute in daybreak.__all__, f"{module_name}.{attribute} is missing from daybreak"
    assert sorted(dir(daybreak)) == sorted(daybreak.__all__)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Regsitry'"):
        daybreak.Regsitry  # noqa: B018


def test_wrap_is_exported_from_the_package() -> None:
    from daybreak._override import wrap

    assert "wrap" in daybreak.__all__
    assert daybreak.wrap is wrap
