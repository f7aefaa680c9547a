"""daybreak.once: a step that runs once per deployment, on the real PostgreSQL and Redis (issue 13, item 4).

Skipped when the services are unreachable, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daybreak.once import TABLE, postgres_lock, redis_lock

PG_URL = os.environ.get("DAYBREAK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DAYBREAK_TEST_REDIS", "redis://127.0.0.1:6379/0")
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
WORKER = Path(__file__).parent / "fixtures" / "once" / "worker.py"
WORKERS = 4

pytestmark = pytest.mark.services


async def _reachable(service: str) -> None:
    try:
        if service == "postgres":
            import asyncpg

            conn = await asyncpg.connect(PG_URL, timeout=2)
            await conn.close()
        else:
            import redis.asyncio as redis

            client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
            try:
                await client.ping()
            finally:
                await client.aclose()
    except Exception as exc:
        message = f"{service} unreachable: {type(exc).__name__}: {exc}"
        if CI:
            pytest.fail(message + " (CI=true: these tests must run)")
        pytest.skip(message)


@pytest.fixture(params=["postgres", "redis"])
async def service(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str]]:
    """(service, a fresh key); the key's done record is removed afterwards."""
    await _reachable(request.param)
    key = f"test-{uuid.uuid4().hex}"
    yield request.param, key
    if request.param == "postgres":
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f"DELETE FROM {TABLE} WHERE key = $1", key)
        finally:
            await conn.close()
    else:
        import redis.asyncio as redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            await client.delete(f"daybreak:once:{key}:done", f"daybreak:once:{key}:lock")
        finally:
            await client.aclose()


def guard(service: str, key: str):  # type: ignore[no-untyped-def]
    return postgres_lock(PG_URL, key) if service == "postgres" else redis_lock(REDIS_URL, key)


@pytest.mark.slow  # four fresh interpreters; essential: it is the race itself
def test_four_processes_race_one_runs_the_step_all_end_ready(service: tuple[str, str], tmp_path: Path) -> None:
    name, key = service
    env = {**os.environ, "ONCE_SERVICE": name, "ONCE_KEY": key, "ONCE_DIR": str(tmp_path),
           "ONCE_WORKERS": str(WORKERS), "ONCE_POSTGRES": PG_URL, "ONCE_REDIS": REDIS_URL}
    workers = [subprocess.Popen([sys.executable, "-m", "daybreak.cli", "start", f"{WORKER}:registry", "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for _ in range(WORKERS)]
    results = [(w.communicate(timeout=120), w.returncode) for w in workers]
    for (out, err), code in results:
        assert code == 0, out + err
        report = json.loads(out)
        assert report["start_status"] == "ready"
        assert [c["status"] for c in report["components"]] == ["stopped", "stopped"]
    assert len(list(tmp_path.glob("arrived-*"))) == WORKERS
    assert len(list(tmp_path.glob("ran-*"))) == 1


async def test_a_key_that_is_done_is_not_run_again(service: tuple[str, str]) -> None:
    async with guard(*service) as first:
        assert first
    async with guard(*service) as again:
        assert not again


async def test_a_failed_step_is_not_done_the_next_process_runs_it(service: tuple[str, str]) -> None:
    async def fail() -> None:
        async with guard(*service) as leader:
            assert leader
            raise RuntimeError("migration failed")

    with pytest.raises(RuntimeError, match="migration failed"):
        await fail()
    async with guard(*service) as retried:
        assert retried


async def test_the_redis_lock_is_renewed_while_the_step_runs() -> None:
    await _reachable("redis")
    import asyncio

    import redis.asyncio as redis

    key = f"test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        async with redis_lock(REDIS_URL, key, ttl=3) as leader:
            assert leader
            last = await client.pttl(f"daybreak:once:{key}:lock")
            async with asyncio.timeout(30):
                while True:  # what changes is in Redis: poll it
                    await asyncio.sleep(0.05)
                    now = await client.pttl(f"daybreak:once:{key}:lock")
                    if now > last:  # the time to live went up: renewed
                        break
                    last = now
        assert not await client.exists(f"daybreak:once:{key}:lock")  # released at the end
    finally:
        await client.delete(f"daybreak:once:{key}:done")
        await client.aclose()
