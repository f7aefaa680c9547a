"""What is audited and what is first-party: --package, pyproject packages, --exclude, namespace folders, doctor."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daybreak.imports import add_arguments, audit, configured_packages, run

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "imports_scope"
APP = FIXTURES / "app_pkg"


def where(path: Path, marker: str) -> str:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.rstrip().endswith(f"# <- {marker}"):
            return f"{path}:{number}"
    raise AssertionError(f"no '# <- {marker}' in {path}")


def thread_where(doc: dict[str, object]) -> list[str]:
    modules = doc["modules"]
    assert isinstance(modules, list)
    return [e["where"] for m in modules for e in m["side_effects"] if e["event"] == "threading.Thread.start"]


class TestFirstParty:
    """A shared library named first-party: 'where' points into it."""

    def test_without_it_where_is_the_apps_import_line(self) -> None:
        result = audit("app_pkg.main", path=[str(FIXTURES)], timeout=5)
        (effect,) = result.module("app_pkg.main").side_effects
        assert (effect.event, effect.where) == ("threading.Thread.start", where(APP / "main.py", "uses"))

    def test_with_it_where_is_the_librarys_line(self) -> None:
        """The effect still belongs to the audited module whose body ran."""
        result = audit("app_pkg.main", path=[str(FIXTURES)], timeout=5, packages=["shared_lib"])
        (effect,) = result.module("app_pkg.main").side_effects
        assert effect.where == where(FIXTURES / "shared_lib" / "log.py", "thread")

    def test_pyproject_names_them_for_the_command(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """[tool.daybreak] packages in the nearest pyproject.toml, from a sub-folder too."""
        (tmp_path / "pyproject.toml").write_text('[tool.daybreak]\npackages = ["shared_lib"]\n', encoding="utf-8")
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
        assert configured_packages() == ["shared_lib"]
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        assert run(parser.parse_args(["app_pkg.main", "--path", str(FIXTURES), "--json"])) == 1
        expected = [where(FIXTURES / "shared_lib" / "log.py", "thread")]
        assert thread_where(json.loads(capsys.readouterr().out)) == expected

    def test_the_option_names_them_for_the_command(self, capsys: pytest.CaptureFixture[str]) -> None:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        args = parser.parse_args(["app_pkg.main", "--path", str(FIXTURES), "--json", "--package", "shared_lib"])
        assert run(args) == 1
        expected = [where(FIXTURES / "shared_lib" / "log.py", "thread")]
        assert thread_where(json.loads(capsys.readouterr().out)) == expected

    def test_a_bad_pyproject_is_an_error(self, tmp_path: Path) -> None:
        (tmp_path / "pyproject.toml").write_text('[tool.daybreak]\npackages = "shared_lib"\n', encoding="utf-8")
        with pytest.raises(ValueError, match="list of package names"):
            configured_packages(str(tmp_path))


class TestWhatIsAudited:
    """Namespace folders are audited, what cannot be imported or is excluded is listed."""

    def test_namespace_folders_are_audited_and_unimportable_ones_listed(self) -> None:
        result = audit("app_pkg", path=[str(FIXTURES)], timeout=5)
        names = {m.name for m in result.modules}
        assert {"app_pkg.plugins", "app_pkg.plugins.extra", "app_pkg.plugins.more.deeper"} <= names
        (effect,) = result.module("app_pkg.plugins.extra").side_effects
        assert (effect.event, effect.where) == ("os.putenv", where(APP / "plugins" / "extra.py", "plugin"))
        reason = "no __init__.py and not a module name: cannot be imported"
        assert result.skipped == ((str(APP / "my-scripts"), reason),)
        assert result.to_dict()["skipped"][0]["path"] == str(APP / "my-scripts")
        assert "Not audited (1)" in result.to_text()

    def test_exclude_leaves_modules_out_and_lists_them(self) -> None:
        result = audit("app_pkg", path=[str(FIXTURES)], timeout=5, exclude=["tests", "test_*", "conftest"])
        names = {m.name for m in result.modules}
        assert not {n for n in names if ".tests" in n or n.endswith("conftest")}
        assert ("app_pkg.conftest", "excluded (conftest)") in result.skipped
        assert ("app_pkg.tests", "excluded (tests)") in result.skipped
        assert "APP_PKG_TESTS" not in {e.detail for _, e in result.side_effects}


def doctor(*args: str) -> dict[str, object]:
    command = [sys.executable, "-m", "daybreak.cli", "doctor", "app_pkg/service.py:registry", "--json"]
    done = subprocess.run(
        [*command, "--skip", "leaks", *args],
        cwd=FIXTURES,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    doc = json.loads(done.stdout)
    assert isinstance(doc, dict)
    return doc


class TestDoctor:
    """doctor leaves tests out by default; --exclude and --imports-package choose what is audited."""

    def test_tests_and_conftest_are_left_out_by_default(self) -> None:
        imports = doctor()["imports"]
        assert isinstance(imports, dict)
        names = {m["name"] for m in imports["modules"]}
        assert "app_pkg.main" in names and "app_pkg.plugins.extra" in names
        assert not {n for n in names if "tests" in n or "conftest" in n}

    def test_exclude_and_imports_package(self) -> None:
        imports = doctor("--exclude", "plugins", "--imports-package", "app_pkg")["imports"]
        assert isinstance(imports, dict)
        assert not {m["name"] for m in imports["modules"] if "plugins" in m["name"]}
        shared = doctor("--imports-package", "shared_lib")["imports"]
        assert isinstance(shared, dict)
        assert [m["name"] for m in shared["modules"]] == ["shared_lib", "shared_lib.log"]
