"""Secrets never appear: not in the report, not in StartupError, not in events."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator

import pytest

import daybreak
from daybreak import Disabled, Registry, StartupError
from daybreak._redact import REDACTED, Redactor, looks_secret, redact

PASSWORD = "s3cr3t-Pa55"
API_KEY = "sk-live-4f9a8b7c6d5e"
TOKEN = "tok-0123456789abcdef"


@dataclasses.dataclass
class Settings:
    database_url: str = f"postgresql://app:{PASSWORD}@db.internal:5432/app"
    openai_api_key: str = API_KEY
    region: str = "eu-west-1"


class Database: ...
class Llm: ...
class Cache: ...


class TestPatterns:
    @pytest.mark.parametrize(("text", "kept"), [
        (f"could not connect to postgresql://app:{PASSWORD}@db:5432/app",
         "postgresql://app:***@db:5432/app"),
        (f"redis://:{PASSWORD}@cache:6379/0 refused", "redis://:***@cache:6379/0"),
        (f"host=db port=5432 user=app password={PASSWORD} dbname=app",
         "host=db port=5432 user=app password=*** dbname=app"),
        (f"PASSWORD={PASSWORD}", "PASSWORD=***"),
        (f"api_key: {API_KEY}", "api_key: ***"),
        (f"{{'api_key': '{API_KEY}', 'region': 'eu'}}", "{'api_key': '***', 'region': 'eu'}"),
        (f'{{"client_secret": "{PASSWORD}"}}', '{"client_secret": "***"}'),
        (f"Authorization failed; access_token={TOKEN}&x=1", "access_token=***&x=1"),
    ])
    def test_credentials_in_text_are_hidden(self, text: str, kept: str) -> None:
        out = redact(text)
        assert PASSWORD not in out and API_KEY not in out and TOKEN not in out
        assert kept in out

    def test_ordinary_text_is_left_alone(self) -> None:
        text = "connection to db.internal:5432 refused (user=app, timeout=3)"
        assert redact(text) == text

    def test_names_that_look_secret(self) -> None:
        for name in ("password", "DB_PASSWORD", "openai_api_key", "SOME_TOKEN", "client_secret",
                     "sentry_dsn", "aws_access_key_id", "private_key"):
            assert looks_secret(name), name
        for name in ("region", "database_host", "port", "timeout"):
            assert not looks_secret(name), name

    def test_learned_values_are_hidden_when_they_appear_bare(self) -> None:
        r = Redactor()
        r.learn(Settings())
        out = r(f"the key {API_KEY} was rejected; password {PASSWORD} is wrong")
        assert API_KEY not in out and PASSWORD not in out
        assert out.count(REDACTED) == 2
        assert "eu-west-1" in r("region eu-west-1")  # a setting that is no secret stays

    def test_environment_values_are_learned(self) -> None:
        r = Redactor()
        r.learn_environment({"SOME_TOKEN": TOKEN, "HOME": "/home/app"})
        assert r(f"bad token {TOKEN} for /home/app") == f"bad token {REDACTED} for /home/app"


def registry_with_settings(settings_value: Settings | None = None) -> Registry:
    registry = Registry("app")

    if settings_value is None:
        @registry.component
        def settings() -> Settings:
            return Settings()
    else:
        registry.value(settings_value)

    @registry.component
    async def llm(s: Settings) -> Llm:
        raise ValueError(f"OpenAI rejected key {s.openai_api_key} (region {s.region})")

    return registry


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in (PASSWORD, API_KEY, TOKEN):
            assert secret not in text, f"{secret!r} leaked in: {text}"


class TestEngine:
    async def test_a_settings_secret_in_an_exception_is_redacted(self) -> None:
        events: list[daybreak.Event] = []
        with pytest.raises(StartupError) as caught:
            await registry_with_settings().start(listeners=[events.append]).start()
        report_json = caught.value.report.to_json()
        assert_clean(str(caught.value), report_json, *(str(e) for e in events))
        assert "OpenAI rejected key ***" in str(caught.value)
        assert "region eu-west-1" in str(caught.value)
        assert json.loads(report_json)["error"]["message"] == (
            "OpenAI rejected key *** (region eu-west-1)")

    async def test_a_secret_of_a_registered_value_is_redacted(self) -> None:
        with pytest.raises(StartupError) as caught:
            await registry_with_settings(Settings()).start().start()
        assert_clean(str(caught.value), caught.value.report.to_json())

    async def test_a_secret_of_an_overriding_instance_is_redacted(self) -> None:
        with pytest.raises(StartupError) as caught:
            await registry_with_settings().start(overrides={Settings: Settings()}).start()
        assert_clean(str(caught.value), caught.value.report.to_json())

    async def test_an_environment_secret_is_redacted(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOME_TOKEN", TOKEN)
        registry = Registry("app")

        @registry.component
        async def cache() -> Cache:
            raise PermissionError(f"token {TOKEN} expired")

        with pytest.raises(StartupError) as caught:
            await registry.start().start()
        assert_clean(str(caught.value), caught.value.report.to_json())
        assert "token *** expired" in str(caught.value)

    async def test_urls_and_dsns_in_every_message_are_redacted(self) -> None:
        registry = Registry("app")
        events: list[daybreak.Event] = []

        @registry.component(optional=True)
        async def database() -> Database:
            raise ConnectionRefusedError(
                f"connect to postgresql://app:{PASSWORD}@db:5432/app failed")

        @registry.component(optional=True)
        async def warehouse(d: Database) -> Llm:  # skipped: its reason quotes the error
            return Llm()

        @registry.component(optional=True)
        async def cache() -> AsyncIterator[Cache]:
            yield Cache()
            raise OSError(f"close failed: host=cache password={PASSWORD}")

        @cache.check
        def cache_ping(c: Cache) -> None:
            pass

        @registry.component(optional=True)
        async def search() -> AsyncIterator[Llm | None]:
            raise Disabled(f"SEARCH_URL=https://u:{PASSWORD}@search is unset in this env")
            yield None

        async with registry.start(listeners=[events.append]) as system:
            assert system.status == "degraded"
        report = system.report()
        text = report.to_json()
        assert_clean(text, *(str(e) for e in events))
        assert "postgresql://app:***@db:5432/app" in text
        assert "password=***" in text
        assert "https://u:***@search" in report.component("search")["reason"]
        assert "postgresql://app:***@db" in report.component("warehouse")["reason"]

    async def test_a_failing_check_message_is_redacted(self) -> None:
        registry = Registry("app")

        @registry.component
        def settings() -> Settings:
            return Settings()

        @registry.component
        async def llm(s: Settings) -> Llm:
            return Llm()

        @llm.check
        async def llm_ping(client: Llm, s: Settings) -> None:
            raise RuntimeError(f"401 for key {s.openai_api_key}")

        with pytest.raises(StartupError) as caught:
            await registry.start().start()
        assert_clean(str(caught.value), caught.value.report.to_json())
        assert "401 for key ***" in str(caught.value)
