"""Keep credentials out of every message, report, log line and endpoint."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REDACTED", "Redactor", "looks_secret", "redact"]

REDACTED = "***"

_SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|credential|auth|session[_-]?key|signing[_-]?key|dsn|cookie)",
    re.IGNORECASE,
)
# scheme://user:password@host  -> keeps the user, hides the password.
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^/\s]+)@")
# key=value / key: value pairs whose key looks secret (libpq DSNs, repr of settings, logs).
_SECRET_PAIR = re.compile(
    r"(?P<key>\b[\w.\-]*(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|credential|session[_-]?key|signing[_-]?key)[\w.\-]*)"
    r"(?P<sep>['\"]?\s*[=:]\s*)(?P<quote>['\"]?)(?P<value>[^\s'\",;&)}]+)",
    re.IGNORECASE,
)
_MIN_SECRET_LEN = 4
# Shell variables whose names only look secret: PWD is the working directory.
_NOT_SECRET_ENV = frozenset({"PWD", "OLDPWD"})


def looks_secret(name: str) -> bool:
    """Whether a setting called ``name`` probably holds a secret."""
    return _SECRET_NAME.search(name) is not None


def _redact_patterns(text: str) -> str:
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    return _SECRET_PAIR.sub(lambda m: f"{m['key']}{m['sep']}{m['quote']}{REDACTED}", text)


class Redactor:
    """Redacts URL credentials, secret-looking pairs and known secret values.

    Known values are learned from objects (settings instances) and from the
    environment, so that a password printed bare in an exception message is
    hidden too.
    """

    __slots__ = ("_ordered", "_pending", "_values")

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        # Longest first, so that a secret containing another is hidden whole.
        # Plain replacement, not a regular expression: ``re`` caches compiled
        # patterns process-wide, which would keep every secret alive.
        self._ordered: list[str] = []
        # Objects are read only when something is redacted: most starts redact
        # nothing, and reading every instance would slow every start.
        self._pending: list[object] = []
        self.add_values(values)

    def add_values(self, values: Iterable[str]) -> None:
        new = {v for v in values if len(v) >= _MIN_SECRET_LEN and v != REDACTED} - self._values
        if new:
            self._values |= new
            self._ordered = sorted(self._values, key=len, reverse=True)

    def learn_environment(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.add_values(secrets_in_pairs((k, v) for k, v in env.items() if k not in _NOT_SECRET_ENV))

    def learn(self, obj: object) -> None:
        """Remember the secret-looking fields of a settings-like object."""
        self._pending.append(obj)

    def __call__(self, text: str) -> str:
        if self._pending:
            pending, self._pending = self._pending, []
            for obj in pending:
                self.add_values(secrets_in_pairs(_fields(obj)))
        for value in self._ordered:
            if value in text:
                text = text.replace(value, REDACTED)
        return _redact_patterns(text)


def secrets_in_pairs(pairs: Iterable[tuple[str, Any]]) -> list[str]:
    found: list[str] = []
    for name, value in pairs:
        if hasattr(value, "get_secret_value"):  # pydantic SecretStr
            value = value.get_secret_value()
        if not isinstance(value, str):
            continue
        if looks_secret(name):
            found.append(value)
        match = _URL_USERINFO.search(value)
        if match:
            found.append(match["pw"])
    return found


def _fields(obj: object) -> list[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        return [(str(k), v) for k, v in obj.items()]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [(f.name, getattr(obj, f.name, None)) for f in dataclasses.fields(obj)]
    model_dump = getattr(obj, "model_dump", None)  # pydantic v2 settings
    if callable(model_dump):
        try:
            dumped = model_dump()
        except Exception:  # a settings object that cannot dump is simply not learned
            return []
        return list(dumped.items()) if isinstance(dumped, dict) else []
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        return [(str(k), v) for k, v in attrs.items()]
    return []


def redact(text: str) -> str:
    """Redact URL credentials and secret-looking ``key=value`` pairs in ``text``."""
    return _redact_patterns(text)
