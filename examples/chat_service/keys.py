"""Key manager: derives purpose-specific keys from ``SECRET_KEY`` and signs tokens.

Session tokens are ``<payload>.<signature>``, the signature an HMAC-SHA256 of
the payload with a key derived for the purpose, so a token signed for one
purpose is not valid for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

__all__ = ["KeyManager"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class KeyManager:
    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("SECRET_KEY is empty")
        self._root = hashlib.sha256(secret_key.encode()).digest()
        self._derived: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"<KeyManager purposes={sorted(self._derived)}>"

    def key(self, purpose: str) -> bytes:
        found = self._derived.get(purpose)
        if found is None:
            found = self._derived[purpose] = hmac.new(self._root, purpose.encode(), hashlib.sha256).digest()
        return found

    def sign(self, value: str, *, purpose: str = "session") -> str:
        payload = _b64(f"{value}|{int(time.time())}".encode())
        signature = _b64(hmac.new(self.key(purpose), payload.encode(), hashlib.sha256).digest())
        return f"{payload}.{signature}"

    def verify(self, token: str, *, purpose: str = "session", max_age: float | None = None) -> str | None:
        """The signed value, or ``None`` when the token is forged, for another purpose, or too old."""
        payload, _, signature = token.partition(".")
        expected = _b64(hmac.new(self.key(purpose), payload.encode(), hashlib.sha256).digest())
        if not signature or not hmac.compare_digest(signature, expected):
            return None
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
            value, _, issued = raw.rpartition("|")
            issued_at = int(issued)
        except ValueError:
            return None
        if max_age is not None and time.time() - issued_at > max_age:
            return None
        return value
