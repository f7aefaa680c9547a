"""Secrets put into a real system never reach any surface daybreak shows.

The app below holds secrets in its settings (a DSN password, a token shape, a
nested password), in the environment, in a failure message, in a thread's
name and in a task's name. Every surface is read: the report's JSON, the
console text, the HTML, the ``daybreak`` logger, ``/health/startup``,
``/health/ready``, ``/health/stacks``, and the command line's text and
``--json`` output, its import-error path and ``daybreak imports``.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from _servers import child_env, serve
from daybreak import Registry
from daybreak._console import Style, timeline
from daybreak.html import render

DSN_PASSWORD = "dsn-pw/with;odd@chars"
STRIPE = "sk_live_51SurfaceSecretAbc"
NESTED = "nested-settings-pw-7a6b"
ENV_KEY = "sk-env-openai-key-2c3d4e5f6a7b"
SECRETS = (DSN_PASSWORD, STRIPE, NESTED, ENV_KEY)

APP = textwrap.dedent(f'''
    import asyncio, dataclasses, os, threading
    from daybreak import Registry

    registry = Registry("leaky")
    release = threading.Event()

    @dataclasses.dataclass
    class Settings:
        database_url: str = "postgresql://app:{DSN_PASSWORD}@db:5432/app"
        stripe_key: str = "{STRIPE}"
        nested: dict = dataclasses.field(default_factory=lambda: {{"database": {{"password": "{NESTED}"}}}})

    class Poller: ...
    class Mailer: ...

    @registry.component
    def settings() -> Settings:
        return Settings()

    @registry.component
    async def poller(s: Settings) -> Poller:
        # Left behind on purpose: a thread and a task whose names hold secrets.
        threading.Thread(target=release.wait, name=f"poller token={{s.stripe_key}}", daemon=True).start()
        asyncio.get_running_loop().create_task(asyncio.Event().wait(), name=f"refresh {{s.database_url}}")
        return Poller()

    @registry.component(optional=True)
    async def mailer(s: Settings) -> Mailer:
        raise ConnectionError(
            f"cannot reach {{s.database_url}} with {{s.stripe_key}}; nested "
            f"{{s.nested['database']['password']}}; env {{os.environ['OPENAI_API_KEY']}}")
''')


def assert_clean(surface: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} reached {surface}:\n{text[:4000]}"
    # The pieces of the DSN password a partial match would leave.
    assert "odd@chars" not in text, f"part of the DSN password reached {surface}"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "leaky_app.py"
    path.write_text(APP)
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    return path


_names = itertools.count()


@pytest.fixture
def leaky(app: Path) -> Iterator[types.ModuleType]:
    """The app as a module of this process (a new one per test), its left-behind thread released after."""
    module = types.ModuleType(f"leaky_app_{next(_names)}")
    module.__file__ = str(app)
    sys.modules[module.__name__] = module
    exec(compile(APP, str(app), "exec"), module.__dict__)
    try:
        yield module
    finally:
        module.release.set()
        del sys.modules[module.__name__]


async def test_no_secret_in_the_report_console_html_or_logs(leaky: types.ModuleType,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    registry: Registry = leaky.registry
    caplog.set_level(logging.DEBUG, logger="daybreak")
    system = registry.start()
    try:
        await system.start()
        started = system.report().to_dict()
        assert started["start_status"] == "degraded"
        assert system.report().component("mailer")["error"]["type"] == "ConnectionError"
    finally:
        await system.stop()
    stopped = system.report().to_dict()
    assert stopped["leftovers"]["threads"] or stopped["leftovers"]["tasks"]
    assert_clean("the report's JSON", json.dumps([started, stopped]))
    assert_clean("the console", timeline(stopped, Style(io.StringIO()), columns=200))
    assert_clean("the HTML", render({"start": stopped}))
    assert_clean("the daybreak logger", "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("daybreak")))


async def test_no_secret_in_the_health_endpoints(leaky: types.ModuleType) -> None:
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from starlette.applications import Starlette

    from daybreak.starlette import health_routes, lifespan

    web = Starlette(lifespan=lifespan(leaky.registry), routes=health_routes(stacks=True, token="probe-token-1"))
    async with serve(web) as srv:
        auth = {"Authorization": "Bearer probe-token-1"}
        for path, headers in (("/health/startup", {}), ("/health/ready", {}), ("/health/stacks", auth)):
            answer = await srv.client.get(path, headers=headers)
            assert answer.status_code == 200, (path, answer.text)
            assert_clean(path, answer.text)
        stacks = (await srv.client.get("/health/stacks", headers=auth)).json()
        assert any("poller token=" in t["name"] for t in stacks["threads"])  # the thread is there, redacted


def daybreak(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "daybreak"), *args], cwd=cwd, env=child_env(),
                          capture_output=True, text=True, timeout=120, check=False)


def test_no_secret_in_the_command_line(app: Path) -> None:
    for args in (("start", f"{app}:registry"), ("start", f"{app}:registry", "--json")):
        done = daybreak(*args, cwd=app.parent)
        assert "mailer" in done.stdout + done.stderr, done
        assert_clean(f"daybreak {' '.join(args[:1] + args[2:])}", done.stdout + done.stderr)


def test_no_secret_on_the_import_error_path_or_in_the_import_audit(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    broken = tmp_path / "broken_app.py"
    broken.write_text("import os\nraise ImportError(f\"no client for key {os.environ['OPENAI_API_KEY']}\")\n")
    done = daybreak("start", f"{broken}:registry", cwd=tmp_path)
    assert done.returncode == 2 and "ImportError" in done.stderr, done
    assert_clean("the import-error path", done.stdout + done.stderr)

    package = tmp_path / "envpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "client.py").write_text(
        "import os, socket\n"
        "KEY = os.environ['OPENAI_API_KEY']\n"
        "raise RuntimeError(f'refused key {KEY}')\n")
    for args in (("imports", "envpkg", "--path", "."), ("imports", "envpkg", "--path", ".", "--json")):
        done = daybreak(*args, cwd=tmp_path)
        assert "envpkg.client" in done.stdout, done
        assert_clean(" ".join(args), done.stdout + done.stderr)
