"""Secrets out of everything the harness records: headers, bodies and free text.

Redaction happens when an exchange is recorded, so nothing downstream can leak it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["MASK", "SECRET_HEADERS", "SECRET_KEYS", "Redactor"]

MASK = "***"
SECRET_KEYS: frozenset[str] = frozenset(
    {"access_token", "refresh_token", "client_secret", "password", "code"}
)
"""JSON / form keys whose values are always masked."""
SECRET_HEADERS: frozenset[str] = frozenset({"authorization", "proxy-authorization", "cookie"})

_MIN_SECRET_LENGTH = 4
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_KEY_MARKERS: tuple[bytes, ...] = tuple(f'"{key}"'.encode() for key in SECRET_KEYS)
_FORM_MARKERS: tuple[bytes, ...] = tuple(f"{key}=".encode() for key in SECRET_KEYS)


_OAUTH_SIBLINGS = frozenset({"state", "redirect_uri", "grant_type"})


def _masks_key(key: str, value: object, *, oauth: bool = True) -> bool:
    """Whether a secret key's value is masked.

    ``code`` is an authorization code only in an OAuth context (a URL or form, or a JSON
    object that also has ``state``, ``redirect_uri`` or ``grant_type``); elsewhere it is
    an error code (``"code": "invalid_grant"``) and is kept, as are UPPER_SNAKE codes.
    """
    if key not in SECRET_KEYS:
        return False
    if key == "code":
        return oauth and not (isinstance(value, str) and _ERROR_CODE.match(value))
    return True


class Redactor:
    """Replaces known secret values and secret-bearing fields by ``"***"``; thread-safe."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self._secret_bytes: tuple[bytes, ...] = ()
        for secret in secrets:
            self.add_secret(secret)

    @property
    def secrets(self) -> frozenset[str]:
        """Every secret value learned so far."""
        return frozenset(self._secrets)

    def add_secret(self, value: str | None) -> None:
        """Learn a secret value; values shorter than 4 characters are ignored (too common)."""
        if not value or len(value) < _MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value in self._secrets:
                return
            # Longest first so a secret containing another is masked whole.
            ordered = sorted((*self._secrets, value), key=len, reverse=True)
            self._secrets = tuple(ordered)
            self._secret_bytes = tuple(s.encode() for s in ordered)

    def learn_from_token_answer(self, body: bytes) -> None:
        """Learn the tokens of an OAuth ``/oauth/token`` answer as it passes."""
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return
        if isinstance(payload, dict):
            for key in ("access_token", "refresh_token"):
                value = payload.get(key)
                if isinstance(value, str):
                    self.add_secret(value)

    def learn_from_form(self, body: bytes) -> None:
        """Learn the secret fields of a form-encoded or JSON request (``/oauth/token``)."""
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return
        pairs: Iterable[tuple[str, object]]
        try:
            payload = json.loads(text)
            pairs = payload.items() if isinstance(payload, dict) else ()
        except ValueError:
            pairs = parse_qsl(text)
        for key, value in pairs:
            if key in SECRET_KEYS and isinstance(value, str):
                self.add_secret(value)

    def text(self, value: str) -> str:
        """Mask every known secret inside ``value``."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def url(self, url: str) -> str:
        """A URL, redacted: secret query parameters masked, then known secret values."""
        head, sep, query = url.partition("?")
        if sep and any(f"{key}=" in query for key in SECRET_KEYS):
            pairs = parse_qsl(query, keep_blank_values=True)
            masked = [(k, MASK if _masks_key(k, v) else v) for k, v in pairs]
            url = f"{head}?{urlencode(masked, safe='*')}"
        return self.text(url)

    def header(self, name: str, value: str) -> str:
        """One header value, redacted; ``Authorization`` keeps only its scheme."""
        if name.lower() in SECRET_HEADERS:
            scheme, _, rest = value.partition(" ")
            return f"{scheme} {MASK}" if rest else MASK
        return self.text(value)

    def headers(self, headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """Headers as lower-cased ``(name, value)`` pairs, redacted."""
        return tuple((name.lower(), self.header(name, value)) for name, value in headers)

    def body(self, body: bytes) -> bytes:
        """A body, redacted: secret JSON / form keys masked, then known secret values."""
        if not body:
            return body
        if any(marker in body for marker in _KEY_MARKERS):
            body = self._redact_json(body)
        elif any(marker in body for marker in _FORM_MARKERS):
            body = self._redact_form(body)
        for secret in self._secret_bytes:
            if secret in body:
                body = body.replace(secret, MASK.encode())
        return body

    def value(self, value: Any) -> Any:
        """A parsed JSON value, redacted (secret keys masked, secret substrings masked)."""
        if isinstance(value, dict):
            oauth = not _OAUTH_SIBLINGS.isdisjoint(value)
            return {
                k: MASK if _masks_key(k, v, oauth=oauth) else self.value(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def _redact_json(self, body: bytes) -> bytes:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self._redact_form(body)
        redacted = self.value(payload)
        if redacted == payload:  # only error codes or the like: keep the bytes as sent
            return body
        return json.dumps(redacted, separators=(",", ":")).encode()

    def _redact_form(self, body: bytes) -> bytes:
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return body
        pairs = parse_qsl(text, keep_blank_values=True)
        if not pairs or not any(key in SECRET_KEYS for key, _ in pairs):
            return body
        masked = [(k, MASK if _masks_key(k, v) else v) for k, v in pairs]
        return urlencode(masked, safe="*").encode()
