"""What redaction hides and what it leaves alone, vector by vector, and a property over all of them."""

from __future__ import annotations

import dataclasses
import time

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daybreak._redact import MAX_MESSAGE, REDACTED, Redactor, looks_secret, redact

SECRET = "Zq8-w!rT4u"


class TestNames:
    @pytest.mark.parametrize("name", [
        "password", "DB_PASSWORD", "dbPassword", "PASSWD", "DB_PASS", "PASS", "openai_api_key", "OPENAI_API_KEY",
        "STRIPE_KEY", "FERNET_KEY", "SECRET_KEY", "apiKey", "APIKey", "client_secret", "GITHUB_TOKEN",
        "sentry_dsn", "SENTRY_DSN", "aws_access_key_id", "private_key", "GOOGLE_CREDENTIALS", "session_cookie",
    ])
    def test_secret_names(self, name: str) -> None:
        assert looks_secret(name)

    @pytest.mark.parametrize("name", [
        "BYPASS_STARTUP_VALIDATION", "PASSTHROUGH", "COMPASS_MODE", "DEBUG", "region", "database_host", "port",
        "timeout", "KEY", "keyboard_layout", "passenger_count", "AUTHOR", "TOKENIZER_PARALLELISM",
    ])
    def test_names_that_only_contain_a_secret_word(self, name: str) -> None:
        assert not looks_secret(name)

    @pytest.mark.parametrize(("name", "value"), [
        ("BYPASS_STARTUP_VALIDATION", "true"), ("DEBUG", "true"), ("PASSTHROUGH", "enabled"),
        ("COMPASS_MODE", "north"), ("DB_PASSWORD", "true"), ("API_TOKEN", "12345678"), ("SECRET_KEY", "abc"),
        ("DB_PASSWORD", "off"),
    ])
    def test_booleans_numbers_short_values_and_non_secrets_are_never_learned(self, name: str, value: str) -> None:
        r = Redactor()
        r.learn_environment({name: value})
        text = f"validation is {value}: true, 12345678, abc, off, enabled, north"
        assert r(text) == text


class TestShapes:
    @pytest.mark.parametrize(("text", "secret", "kept"), [
        ("postgresql://app:ab/cd@db/app refused", "ab/cd", "postgresql://app:***@db/app refused"),
        ("mysql://root:p;a@ss:w@db:3306/x", "p;a@ss:w", "mysql://root:***@db:3306/x"),
        ("redis://:hunter2hunter@cache:6379/0", "hunter2hunter", "redis://:***@cache:6379/0"),
        ("amqp://guest:gu%2Fest@rabbit//", "gu%2Fest", "amqp://guest:***@rabbit//"),
        ("password='pa ss;wd' host=db", "pa ss;wd", "password='***' host=db"),
        ('{"password": "pa ss;wd", "host": "db"}', "pa ss;wd", '{"password": "***", "host": "db"}'),
        ("Pwd=s3cr3tvalue;Server=db", "s3cr3tvalue", "Pwd=***;Server=db"),
        ("Authorization: Bearer abc.DEF-123_xyz", "abc.DEF-123_xyz", "Authorization: Bearer ***"),
        ("authorization=Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA", "authorization=Basic ***"),
        ("sent Bearer abcdefghijkl0123 to the API", "abcdefghijkl0123", "sent Bearer *** to the API"),
        ("Cookie: session=abc123def; theme=dark", "abc123def", "Cookie: ***"),
        ("Set-Cookie: sid=zz9plural; Path=/; HttpOnly", "zz9plural", "Set-Cookie: ***"),
        ("GET /files?key=AbCdEf123456&x=1", "AbCdEf123456", "/files?key=***&x=1"),
        ("https://s3/obj?X-Amz-Signature=deadbeef1234&v=2", "deadbeef1234", "X-Amz-Signature=***&v=2"),
        ("GET /a?sig=Zm9vYmFy42&auth=QWxhZGRpbg42", "Zm9vYmFy42", "/a?sig=***&auth=***"),
        ("GET /a?token=tok123456&access_token=acc123456", "tok123456", "?token=***&access_token=***"),
        ("STRIPE_KEY=sk_live_51HxYzAbCdEf", "sk_live_51HxYzAbCdEf", "STRIPE_KEY=***"),
        ("stripe rejected sk_live_51HxYzAbCdEfGh", "sk_live_51HxYzAbCdEfGh", "stripe rejected ***"),
        ("clone with ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz", "clone with ***"),
        ("slack xoxb-123456789012-abcdefABCDEF", "xoxb-123456789012", "slack ***"),
        ("aws key AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7EXAMPLE", "aws key *** denied"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok",
         "eyJzdWIiOiIxMjM0In0", "jwt *** ok"),
        ("openai said sk-proj-abcdefghijklmnopqrstuvwx", "sk-proj-abcdefghijklmnop", "openai said ***"),
    ])
    def test_hidden(self, text: str, secret: str, kept: str) -> None:
        out = redact(text)
        assert secret not in out
        assert kept in out

    @pytest.mark.parametrize("text", [
        "connection to db.internal:5432 refused (user=app, timeout=3)",
        "GET https://example.com/users/a@b.com returned 404",
        "GET http://example.com:8080/p?e=a@b.c returned 404",
        "key error: 'user_id' at app/models.py:12",
        "skipped 3 tasks; passing=true; bypass=true",
        "the primary key is (id); sort_order=name",
        "https://pypi.org/simple/ took 1.2s",
    ])
    def test_left_alone(self, text: str) -> None:
        assert redact(text) == text

    def test_an_environment_secret_is_hidden_by_the_module_function(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000")
        assert "sk-test-not-a-real-key-0000" not in redact("ImportError: bad key sk-test-not-a-real-key-0000")
        monkeypatch.setenv("OPENAI_API_KEY", "another-value-1111")
        assert redact("key another-value-1111") == f"key {REDACTED}"  # the environment is read again

    def test_long_messages_are_cut(self) -> None:
        out = redact("word " * 10_000)
        assert len(out) < MAX_MESSAGE + 100
        assert out.endswith("more characters not shown]")

    def test_a_learned_secret_is_hidden_even_past_the_cut(self) -> None:
        r = Redactor(["a-learned-secret-value"])
        out = r("x" * (2 * MAX_MESSAGE) + " a-learned-secret-value")
        assert "a-learned-secret-value" not in out

    @pytest.mark.parametrize("body", [
        "a" * 80_000, "1" * 80_000, "a.a-" * 20_000, "a:" * 40_000, "x://" * 20_000, "a://b:" * 14_000, "eyJ" * 27_000,
        ("QUJD" * 15_000), "password=" * 9_000, "@:" * 40_000,
    ])
    def test_redaction_takes_linear_time(self, body: str) -> None:
        # A bound of seconds, not a benchmark: the quadratic patterns took minutes on these.
        started = time.perf_counter()
        redact(body)
        Redactor(["not-in-there"])(body)
        assert time.perf_counter() - started < 5


@dataclasses.dataclass
class Database:
    host: str = "db"
    password: str = "dbpass-777777"


@dataclasses.dataclass
class Credentials:
    user: str = "svc-user-name"
    api_key: str = "plainkey-888888"


class Slotted:
    __slots__ = ("api_token", "region")

    def __init__(self) -> None:
        self.api_token = "slot-token-999999"
        self.region = "eu-west-1"


class Nested(pydantic.BaseModel):
    password: pydantic.SecretStr = pydantic.SecretStr("nested-pydantic-pw")
    dsn: str = "postgresql://u:nested-dsn-pw@db/x"


class Outer(pydantic.BaseModel):
    name: str = "app"
    database: Nested = Nested()


class Settings(pydantic.BaseModel):
    outer: Outer = Outer()
    token: pydantic.SecretStr = pydantic.SecretStr("top-level-secret-str")


class Proxy:
    """Like werkzeug's LocalProxy: every attribute lookup raises."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError("working outside of application context")

    @property
    def password(self) -> str:
        raise RuntimeError("a property that must not run")


class TestLearning:
    @pytest.mark.parametrize(("value", "secrets", "kept"), [
        (Database(), ["dbpass-777777"], ["db"]),
        ({"credentials": Credentials()}, ["svc-user-name", "plainkey-888888"], []),
        (Slotted(), ["slot-token-999999"], ["eu-west-1"]),
        (Settings(), ["nested-pydantic-pw", "nested-dsn-pw", "top-level-secret-str"], ["app"]),
    ])
    def test_settings_are_learned(self, value: object, secrets: list[str], kept: list[str]) -> None:
        r = Redactor()
        r.learn(value)
        out = r(" ".join(secrets + kept))
        for secret in secrets:
            assert secret not in out
        for word in kept:
            assert word in out

    def test_a_proxy_is_read_without_running_its_code(self) -> None:
        r = Redactor()
        r.learn(Proxy())
        assert r("all is well") == "all is well"

    def test_learning_is_bounded(self) -> None:
        r = Redactor()
        r.learn({f"token_{i}": f"value-number-{i:06d}" for i in range(10_000)})
        r("x")
        assert len(r._values) <= 1024

    def test_learned_objects_are_let_go_once_settled(self) -> None:
        r = Redactor()
        r.learn(Database())
        r.settle()
        assert r._pending == []
        assert REDACTED in r("dbpass-777777")


_secret_text = st.text(alphabet="abcdefXYZ0123456789/;@: -_.!%", min_size=8, max_size=24).filter(
    lambda s: s.strip() == s and len(set(s)) > 4 and not s.replace(".", "").isdigit())
_noise = st.text(alphabet="abc xyz,.:=()[]{}'\"\n", max_size=40)


@settings(max_examples=200, deadline=None)
@given(secret=_secret_text, before=_noise, after=_noise,
       where=st.sampled_from(["env", "settings", "pydantic", "dsn", "dsn_settings"]))
def test_a_learned_secret_never_survives_redaction(secret: str, before: str, after: str, where: str) -> None:
    r = Redactor()
    if where == "env":
        r.learn_environment({"SERVICE_PASSWORD": secret})
    elif where == "settings":
        r.learn(Credentials(api_key=secret))
    elif where == "pydantic":
        r.learn(Nested(password=pydantic.SecretStr(secret)))
    elif where == "dsn":
        r.learn_environment({"DATABASE_URL": f"postgresql://app:{secret}@db:5432/app"})
    else:
        r.learn(Database(password=secret))
    for text in (f"{before}{secret}{after}", f"{before}{secret}{secret}{after}", f"{secret}{after}",
                 f"{before}postgresql://app:{secret}@db/app{after}", f"{before}password={secret!r}"):
        assert secret not in r(text)
