"""docs/api.md: every Python example runs, in a fresh interpreter, and prints what the page says it prints.

The ``daybreak.once`` examples use the real PostgreSQL and Redis (skipped
when they are unreachable, except under CI=true, where they fail); each run
gets a release of its own, whose done keys are removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "api.md"
PG_URL = os.environ.get("DAYBREAK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DAYBREAK_TEST_REDIS", "redis://127.0.0.1:6379/0")
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)


def examples() -> list[Any]:
    """Each ``python`` block, with the ``output`` block right after it (None when there is none)."""
    text = PAGE.read_text(encoding="utf-8")
    blocks = [(m.start(), m.group(1), m.group(2)) for m in _FENCE.finditer(text)]
    found: list[Any] = []
    for i, (at, language, code) in enumerate(blocks):
        if language != "python":
            continue
        expected = blocks[i + 1][2] if i + 1 < len(blocks) and blocks[i + 1][1] == "output" else None
        section = [h.group(1) for h in _HEADING.finditer(text, 0, at)][-1:] or ["top"]
        slug = re.sub(r"[^a-z]+", "-", section[0].lower()).strip("-")
        found.append(pytest.param(code, expected, id=f"{slug}-{len(found) + 1}"))
    return found


def test_the_page_has_examples_with_their_output() -> None:
    """A broken fence must not leave the page untested."""
    found = examples()
    assert len(found) >= 9
    assert all(param.values[1] is not None for param in found)


def _reachable(url: str) -> str | None:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2).close()
    except OSError as exc:
        return f"{parts.scheme} at {parts.hostname}:{parts.port} unreachable: {exc}"
    return None


async def _forget(release: str) -> None:
    """Remove the done keys the examples recorded for ``release``."""
    import asyncpg
    import redis.asyncio as redis

    from daybreak.once import TABLE

    conn = await asyncpg.connect(PG_URL)
    try:
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE):
            await conn.execute(f"DELETE FROM {TABLE} WHERE key LIKE $1", f"%{release}")
    finally:
        await conn.close()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"daybreak:once:*{release}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.mark.parametrize(("code", "expected"), examples())
def test_example(code: str, expected: str | None, tmp_path: Path) -> None:
    """The example exits 0 and prints exactly its output block."""
    release = f"docs-{uuid.uuid4().hex}"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), DATABASE_URL=PG_URL, REDIS_URL=REDIS_URL,
               RELEASE=release, NO_COLOR="1")
    uses_services = "daybreak.once" in code
    if uses_services:
        problem = _reachable(PG_URL) or _reachable(REDIS_URL)
        if problem is not None:
            if CI:
                pytest.fail(problem + " (CI=true: these tests must run)")
            pytest.skip(problem)
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    try:
        done = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True,
                              timeout=120, env=env, cwd=tmp_path)
    finally:
        if uses_services:
            asyncio.run(_forget(release))
    assert done.returncode == 0, done.stderr
    if expected is not None:
        assert done.stdout == expected, done.stderr
