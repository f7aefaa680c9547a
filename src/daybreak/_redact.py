"""Keep credentials out of every message, report, log line and endpoint.

Two layers. Secrets *learned* from the environment and from settings-like
component values are replaced wherever they appear, whole. Secrets of a known
*shape* are hidden even when nothing was learned: the password of a URL, the
value of a secret-looking ``key=value`` pair, ``Authorization`` headers and
cookies, secret query values, and well-known token formats.

Every pattern runs in linear time (anchored starts, bounded repetitions, plain
``str.find``): redaction runs on the event loop, and a quadratic pattern on an
80 KB message would stall it for minutes. Messages are also cut at
``MAX_MESSAGE`` characters.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

__all__ = ["MAX_MESSAGE", "REDACTED", "Redactor", "looks_secret", "redact", "redact_strings"]

REDACTED: Final = "***"
#: Longer messages are cut (after learned secrets are replaced) before matching.
MAX_MESSAGE: Final = 16 * 1024

# Names are matched by whole words, so that BYPASS_VALIDATION or COMPASS_MODE
# are not taken for passwords: words split at non-alphanumerics and at
# lower-to-upper case changes (dbPassword -> db, password).
_WORD = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_SECRET_WORDS: Final = frozenset({
    "password", "passwords", "passwd", "passphrase", "pass", "pwd", "secret", "secrets",
    "token", "tokens", "credential", "credentials", "dsn", "cookie", "cookies", "authorization",
    "apikey", "privatekey", "accesskey", "secretkey", "sessionid", "jwt",
})
# Two words that make a secret together (api key, client secret...).
_SECRET_PAIRS: Final = frozenset({
    ("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"), ("session", "key"),
    ("signing", "key"), ("encryption", "key"), ("master", "key"), ("client", "secret"),
    ("session", "id"),
})
# Every secret name holds one of these; a name without any needs no splitting.
_SECRET_PARTS: Final = ("pass", "pwd", "secret", "token", "key", "credential", "dsn", "cookie",
                        "authorization", "jwt", "session")
# Short names that are secret only as a query parameter (?sig=..., &auth=...).
_QUERY_KEYS: Final = frozenset({"key", "sig", "signature", "auth", "code", "token", "apikey",
                                "x-amz-signature", "x-amz-credential", "x-goog-signature"})
# Shell variables whose names only look secret: PWD is the working directory.
_NOT_SECRET_ENV: Final = frozenset({"PWD", "OLDPWD"})
# Values that are never learned: too short, booleans, numbers.
_MIN_SECRET_LEN: Final = 6
_NOT_SECRET_VALUES: Final = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null"})
_MAX_LEARNED: Final = 1024  # secrets one Redactor keeps; more is a settings object gone wrong
_MAX_FIELDS: Final = 256  # fields read from one learned object, nested ones included
_MAX_DEPTH: Final = 3

# key=value, key: value, "key": "value"; the key is checked in Python (words).
_PAIR = re.compile(r"(?<![\w.\-])(?P<key>[A-Za-z_][\w.\-]{0,63})(?P<sep>['\"]?[ \t]*[=:][ \t]*)(?P<quote>['\"]?)")
_AUTH_SCHEME = re.compile(r"(?:Bearer|Basic|Token|Digest|Negotiate|Bot|ApiKey|AWS4-HMAC-SHA256)[ \t]+",
                          re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,31}://")
_PORT = re.compile(r"[0-9]{1,5}[/?#]")
_URL_END = re.compile(r"[ \t\r\n'\"<>]")
_VALUE_END = frozenset(" \t\r\n'\",;&)}]>")
_MAX_VALUE = 1024
_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:"
    r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,256}"  # Stripe
    r"|gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255}"  # GitHub
    r"|glpat-[A-Za-z0-9_\-]{20,255}"  # GitLab
    r"|xox[abposr]-[A-Za-z0-9\-]{8,255}"  # Slack
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|AIza[0-9A-Za-z_\-]{35}"  # Google API keys
    r"|sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,255}"  # OpenAI, Anthropic
    r"|eyJ[A-Za-z0-9_\-]{4,4096}\.[A-Za-z0-9_\-]{4,4096}\.[A-Za-z0-9_\-]{0,4096}"  # JWT
    r")"
)
_BEARER = re.compile(r"(?<![A-Za-z0-9])(?P<scheme>Bearer|Basic)[ \t]+(?P<cred>[A-Za-z0-9._~+/\-]{8,4096}=*)")


def _words(name: str) -> list[str]:
    """``dbPassword`` -> ``["db", "password"]``; ``DB_PASSWORD`` too."""
    return [w.lower() for w in _WORD.findall(name)]


def looks_secret(name: str) -> bool:
    """Whether a setting called ``name`` probably holds a secret (by whole words)."""
    lowered = name.lower()
    if not any(part in lowered for part in _SECRET_PARTS):  # most names: one cheap test
        return False
    words = _words(name)
    if not words:
        return False
    if words[-1] == "key" and len(words) > 1:  # STRIPE_KEY, FERNET_KEY
        return True
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def _learnable(value: str) -> bool:
    if len(value) < _MIN_SECRET_LEN or value == REDACTED:
        return False
    if value.strip().lower() in _NOT_SECRET_VALUES:
        return False
    try:
        float(value)
    except ValueError:
        return True
    return False  # a number


def _url_passwords(text: str, whole: bool = False) -> Iterator[tuple[int, int]]:
    """The spans of the passwords in ``scheme://user:password@host`` URLs.

    The password may hold ``/``, ``;``, ``:`` or ``@``: the userinfo ends at
    the last ``@`` before the URL's first whitespace or quote, or, when the
    text is ``whole`` one setting's value, before its end (spaces too).
    """
    i = text.find("://")
    while i != -1:
        j = i
        while j > 0 and (text[j - 1].isalnum() or text[j - 1] in "+.-"):
            j -= 1
        start = i + 3
        limit = min(len(text), start + _MAX_VALUE)
        stop = None if whole else _URL_END.search(text, start, limit)
        end = stop.start() if stop else limit
        at = text.rfind("@", start, end)
        # With no "@" up to its end, no URL starting inside this one has a password either.
        nxt = end if at == -1 else start
        if j < i and text[j].isalpha() and at != -1:
            colon = text.find(":", start, at)
            if colon != -1 and "/" not in text[start:colon] and colon + 1 < at \
                    and (whole or not _PORT.match(text, colon + 1, at)):  # host:8080/p?e=a@b.c
                yield colon + 1, at
                nxt = at
        i = text.find("://", nxt)


def _value_end(text: str, pos: int, quote: str, to_line_end: bool) -> int:
    limit = min(len(text), pos + (4 * _MAX_VALUE if to_line_end else _MAX_VALUE))
    end = pos
    if quote:
        while end < limit and text[end] != quote and text[end] != "\n":
            end += 1
    elif to_line_end:
        while end < limit and text[end] not in "\r\n":
            end += 1
    else:
        while end < limit and text[end] not in _VALUE_END:
            end += 1
    return end


def _secret_pairs(text: str) -> Iterator[tuple[int, int]]:
    """The spans of the values of secret-looking ``key=value`` pairs and headers."""
    pos = 0
    for m in _PAIR.finditer(text):
        if m.start() < pos:
            continue
        key = m["key"]
        lowered = key.lower()
        in_query = m.start() > 0 and text[m.start() - 1] in "?&" and m["sep"] == "="
        if not (looks_secret(key) or (in_query and lowered in _QUERY_KEYS)):
            continue
        start = m.end()
        words = set(_words(key))
        if "authorization" in words or "auth" in words:
            scheme = _AUTH_SCHEME.match(text, start)
            if scheme:
                start = scheme.end()
        end = _value_end(text, start, m["quote"], to_line_end=not m["quote"] and bool(
            words & {"cookie", "cookies"}))
        if end > start:
            yield start, end
            pos = end


def _hide(text: str, spans: Iterable[tuple[int, int]]) -> str:
    parts: list[str] = []
    last = 0
    for start, end in spans:
        if start < last:
            continue
        parts.append(text[last:start])
        parts.append(REDACTED)
        last = end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def _cut(text: str) -> str:
    if len(text) <= MAX_MESSAGE:
        return text
    # Cut at a space, so that a URL or token is not split into a part no pattern knows.
    cut = text.rfind(" ", MAX_MESSAGE - 1024, MAX_MESSAGE)
    cut = cut if cut != -1 else MAX_MESSAGE
    return f"{text[:cut]} ... [{len(text) - cut} more characters not shown]"


def _redact_patterns(text: str) -> str:
    text = _hide(text, _url_passwords(text))
    text = _hide(text, _secret_pairs(text))
    text = _TOKEN.sub(REDACTED, text)
    return _BEARER.sub(lambda m: f"{m['scheme']} {REDACTED}", text)


class Redactor:
    """Redacts learned secret values, then secrets of known shapes.

    Values are learned from the environment and from settings-like objects,
    so that a password printed bare in an exception message is hidden too.
    """

    __slots__ = ("_ordered", "_pending", "_values")

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        # Longest first, so that a secret containing another is hidden whole.
        # Plain replacement, not a regular expression: ``re`` caches compiled
        # patterns process-wide, which would keep every secret alive.
        self._ordered: list[str] = []
        # Objects are read only when something is redacted (or the system
        # stops): most starts redact nothing.
        self._pending: list[object] = []
        self.add_values(values)

    def add_values(self, values: Iterable[str]) -> None:
        new = {v for v in values if _learnable(v)} - self._values
        if new and len(self._values) < _MAX_LEARNED:
            self._values |= set(sorted(new)[:_MAX_LEARNED - len(self._values)])
            self._ordered = sorted(self._values, key=len, reverse=True)

    def learn_environment(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.add_values(secrets_in_pairs((k, v) for k, v in env.items() if k not in _NOT_SECRET_ENV))

    def learn(self, obj: object) -> None:
        """Remember the secret-looking fields of a settings-like object (read later)."""
        self._pending.append(obj)

    def settle(self) -> None:
        """Read the objects given to :meth:`learn`, and let them go."""
        pending, self._pending = self._pending, []
        for obj in pending:
            self.add_values(secrets_in_pairs(_fields(obj)))

    def __call__(self, text: str) -> str:
        if self._pending:
            self.settle()
        for value in self._ordered:
            if value in text:
                text = text.replace(value, REDACTED)
        return _redact_patterns(_cut(text))


def secrets_in_pairs(pairs: Iterable[tuple[str, Any]]) -> list[str]:
    """The secrets among ``(name, value)`` pairs: values of secret names, URL passwords."""
    found: list[str] = []
    for name, value in pairs:
        value = _secret_value(value)
        if not isinstance(value, str):
            continue
        if looks_secret(name):
            found.append(value)
        # A setting that is one URL may have spaces in its password; any other text ends a URL at one.
        whole = _SCHEME.match(value) is not None
        found.extend(value[start:end] for start, end in _url_passwords(value, whole))
    return found


def _secret_value(value: object) -> object:
    # pydantic's SecretStr; looked up on the type, never on the instance (proxies).
    get = getattr(type(value), "get_secret_value", None)
    if callable(get):
        try:
            return get(value)
        except Exception:
            return None
    return value


def _own(obj: object, name: str) -> Any:
    """``obj.name`` without ``__getattr__``, properties or proxies: never runs the object's code."""
    try:
        return object.__getattribute__(obj, name)
    except Exception:
        return None


def _members(obj: object) -> list[tuple[str, Any]]:
    """The stored fields of one object: a dict's items, a dataclass's, ``__dict__``, ``__slots__``."""
    if type(obj) is dict:
        return [(str(k), v) for k, v in obj.items()]
    cls = type(obj)
    members: list[tuple[str, Any]] = []
    attrs = _own(obj, "__dict__")
    if type(attrs) is dict:  # pydantic models and dataclasses keep their fields here too
        members.extend((str(k), v) for k, v in attrs.items())
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if isinstance(slot, str) and slot not in ("__dict__", "__weakref__"):
                descriptor = klass.__dict__.get(slot)
                if descriptor is not None and hasattr(type(descriptor), "__get__"):
                    try:
                        members.append((slot, descriptor.__get__(obj, cls)))
                    except Exception:  # an unset slot
                        continue
    extra = _own(obj, "__pydantic_extra__")
    if type(extra) is dict:
        members.extend((str(k), v) for k, v in extra.items())
    return members


def _settings_like(value: object) -> bool:
    """Whether to look inside a field's value: a dict or a settings-like object, not any object."""
    cls = type(value)
    return (cls is dict or dataclasses.is_dataclass(cls) or hasattr(cls, "model_fields")
            or hasattr(cls, "__attrs_attrs__"))


def _fields(obj: object) -> list[tuple[str, Any]]:
    """``(name, value)`` of an object's fields, and of nested settings, bounded in depth and count.

    A field inside a secret-named one (``credentials.user``) is named as a secret.
    """
    out: list[tuple[str, Any]] = []
    stack: list[tuple[object, int, bool]] = [(obj, 0, False)]
    while stack and len(out) < _MAX_FIELDS:
        current, depth, secret_parent = stack.pop()
        for name, value in _members(current):
            if len(out) >= _MAX_FIELDS:
                break
            secret = secret_parent or looks_secret(name)
            if depth + 1 < _MAX_DEPTH and _settings_like(value):
                stack.append((value, depth + 1, secret))
            else:
                out.append(("secret" if secret else name, value))
    return out


_environment_seen: tuple[tuple[tuple[str, str], ...], Redactor] | None = None


def _environment() -> Redactor:
    """A redactor that knows the environment's secrets, rebuilt when the environment changes."""
    global _environment_seen
    items = tuple(os.environ.items())
    if _environment_seen is None or _environment_seen[0] != items:
        redactor = Redactor()
        redactor.learn_environment(dict(items))
        _environment_seen = (items, redactor)
    return _environment_seen[1]


def redact(text: str) -> str:
    """Redact the environment's secrets and secrets of known shapes in ``text``.

    For the paths that have no system (the command line's import errors, the
    import audit, the stacks endpoint); a system redacts with its own
    :class:`Redactor`, which also knows its settings.
    """
    return _environment()(text)


def redact_strings(value: Any, redactor: Callable[[str], str] = redact) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every string redacted."""
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, dict):
        return {k: redact_strings(v, redactor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_strings(v, redactor) for v in value]
    return value
