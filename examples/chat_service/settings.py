"""Settings: one frozen dataclass, read from the environment when the service starts.

=========================  ================================  ===========================
variable                   default                           meaning
=========================  ================================  ===========================
``ENVIRONMENT``            ``development``                   ``development``, ``test``
                                                             or ``production``
``DATA_DIR``               a temporary directory             where the SQLite file lives
``DATABASE_URL``           unset: SQLite                     ``postgresql://...``
``REDIS_URL``              unset: in-process cache           ``redis://...``
``CLICKHOUSE_URL``         unset: analytics disabled         ``http://host:8123``
``LLM_PROVIDER``           ``echo``                          a registered provider name
``SECRET_KEY``             random per process (not in        signs session tokens
                           production: required there)
``MEMORY_MONITOR``         ``0``                             ``1`` enables the memory
                                                             monitor (``/health/memory``)
``MEMORY_INTERVAL``        ``1``                             seconds between RSS samples
``MEMORY_TOP_SITES``       ``0``                             allocation sites a growth
                                                             warning names (tracemalloc)
``DATABASE_TIMEOUT``       ``5``                             seconds per connection try
``CACHE_TIMEOUT``          ``2``                             seconds for the cache to answer
``ANALYTICS_TIMEOUT``      ``2``                             seconds for ClickHouse
``LLM_TIMEOUT``            ``30``                            seconds per completion
``MONITOR_INTERVAL``       ``15``                            seconds between connection sweeps
``HISTORY_LIMIT``          ``20``                            messages an agent sees
``RATE_LIMIT``             ``60``                            messages per minute per room
=========================  ================================  ===========================

Nothing here runs at import: :meth:`Settings.from_env` is called by the
``settings`` component.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

__all__ = ["ENVIRONMENTS", "Settings", "SettingsError", "display_url"]

ENVIRONMENTS = ("development", "test", "production")
_MIN_SECRET_LEN = 32
V = TypeVar("V")


class SettingsError(ValueError):
    """The environment does not describe a valid configuration; lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} invalid setting(s):\n{lines}")


def display_url(url: str | None) -> str | None:
    """``url`` without its password, for messages and logs."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True, slots=True)
class Settings:
    environment: str = "development"
    data_dir: Path | None = None
    database_url: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    clickhouse_url: str | None = field(default=None, repr=False)
    llm_provider: str = "echo"
    secret_key: str = field(default="", repr=False)
    memory_monitor: bool = False
    memory_interval: float = 1.0
    memory_top_sites: int = 0
    database_timeout: float = 5.0
    cache_timeout: float = 2.0
    analytics_timeout: float = 2.0
    llm_timeout: float = 30.0
    monitor_interval: float = 15.0
    history_limit: int = 20
    rate_limit: int = 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate every setting; raise :class:`SettingsError` listing all problems."""
        problems: list[str] = []

        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        def number(name: str, default: V, parse: Callable[[str], V], minimum: float) -> V:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = parse(raw)
            except ValueError:
                problems.append(f"{name}={raw!r} is not a number")
                return default
            if value < minimum:  # type: ignore[operator]
                problems.append(f"{name}={raw!r} must be >= {minimum:g}")
                return default
            return value

        def url(name: str, schemes: tuple[str, ...]) -> str | None:
            raw = get(name)
            if raw is None:
                return None
            scheme = urlsplit(raw).scheme
            if scheme not in schemes or (not urlsplit(raw).netloc and scheme != "unix"):
                problems.append(f"{name}={display_url(raw)!r} must be a URL with scheme "
                                f"{' or '.join(s + '://' for s in schemes)}")
                return None
            return raw

        environment = get("ENVIRONMENT") or "development"
        if environment not in ENVIRONMENTS:
            problems.append(f"ENVIRONMENT={environment!r} must be one of {', '.join(ENVIRONMENTS)}")
        secret_key = get("SECRET_KEY")
        if secret_key is None:
            if environment == "production":
                problems.append("SECRET_KEY is required in production")
            secret_key = secrets.token_urlsafe(32)  # per process: sessions do not survive restarts
        elif environment == "production" and len(secret_key) < _MIN_SECRET_LEN:
            problems.append(f"SECRET_KEY must have at least {_MIN_SECRET_LEN} characters in production")
        flag = (get("MEMORY_MONITOR") or "0").lower()
        if flag not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
            problems.append(f"MEMORY_MONITOR={flag!r} must be 0 or 1")
        data_dir = get("DATA_DIR")
        settings: dict[str, Any] = {
            "environment": environment,
            "data_dir": Path(data_dir).expanduser() if data_dir else None,
            "database_url": url("DATABASE_URL", ("postgresql", "postgres")),
            "redis_url": url("REDIS_URL", ("redis", "rediss", "unix")),
            "clickhouse_url": url("CLICKHOUSE_URL", ("http", "https")),
            "llm_provider": (get("LLM_PROVIDER") or "echo").lower(),
            "secret_key": secret_key,
            "memory_monitor": flag in ("1", "true", "yes", "on"),
            "database_timeout": number("DATABASE_TIMEOUT", 5.0, float, 0.01),
            "cache_timeout": number("CACHE_TIMEOUT", 2.0, float, 0.01),
            "analytics_timeout": number("ANALYTICS_TIMEOUT", 2.0, float, 0.01),
            "llm_timeout": number("LLM_TIMEOUT", 30.0, float, 0.01),
            "monitor_interval": number("MONITOR_INTERVAL", 15.0, float, 0.01),
            "memory_interval": number("MEMORY_INTERVAL", 1.0, float, 0.01),
            "memory_top_sites": number("MEMORY_TOP_SITES", 0, int, 0),
            "history_limit": number("HISTORY_LIMIT", 20, int, 1),
            "rate_limit": number("RATE_LIMIT", 60, int, 1),
        }
        if problems:
            raise SettingsError(problems)
        return cls(**settings)

    def describe(self) -> dict[str, Any]:
        """The settings as shown to people: URLs without passwords, no secret key."""
        return {
            "environment": self.environment,
            "data_dir": str(self.data_dir) if self.data_dir else None,
            "database": display_url(self.database_url) or "sqlite",
            "cache": display_url(self.redis_url) or "memory",
            "analytics": display_url(self.clickhouse_url),
            "llm_provider": self.llm_provider,
            "memory_monitor": self.memory_monitor,
        }
