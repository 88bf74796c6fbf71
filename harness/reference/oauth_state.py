"""The OAuth ``state`` of the reference connector, encrypted and authenticated (Fernet): who
started the login and when; a forged, altered or stale state does not decode."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["DEFAULT_STATE_MAX_AGE", "InvalidState", "OAuthState", "StateCodec"]

DEFAULT_STATE_MAX_AGE = 3600
"""Seconds a state stays valid: a login is expected to finish within the hour."""


class InvalidState(ValueError):  # noqa: N818 - reads as the condition it reports
    """The ``state`` does not decode: forged, altered, issued with another key, or too old."""


@dataclass(frozen=True)
class OAuthState:
    """What a login started with; ``nonce`` makes every state unique."""

    plugin_version_id: str
    issued_at: int
    datamart_id: str | None = None
    user_id: str | None = None
    feed_destination_id: str | None = None
    nonce: str = ""


class StateCodec:
    """Encrypts and authenticates states with one Fernet key (``Fernet.generate_key()``)."""

    def __init__(
        self,
        key: bytes,
        *,
        max_age: int = DEFAULT_STATE_MAX_AGE,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._fernet = Fernet(key)
        self._max_age = max_age
        self._wall_clock = wall_clock

    @staticmethod
    def generate_key() -> bytes:
        """A new random key, as stored in the ``oauth_state_key`` configuration file."""
        return Fernet.generate_key()

    def issue(
        self,
        *,
        plugin_version_id: str,
        datamart_id: str | None = None,
        user_id: str | None = None,
        feed_destination_id: str | None = None,
    ) -> str:
        """A fresh state token (URL-safe text) for a login started now."""
        now = int(self._wall_clock())
        state = OAuthState(
            plugin_version_id=plugin_version_id,
            issued_at=now,
            datamart_id=datamart_id,
            user_id=user_id,
            feed_destination_id=feed_destination_id,
            nonce=secrets.token_urlsafe(8),
        )
        plain = json.dumps(asdict(state), separators=(",", ":")).encode()
        return self._fernet.encrypt_at_time(plain, now).decode("ascii")

    def decode(self, token: str) -> OAuthState:
        """The state a token carries; ``InvalidState`` when it is not one this codec issued."""
        try:
            plain = self._fernet.decrypt_at_time(
                token.encode("ascii"), self._max_age, int(self._wall_clock())
            )
        except (InvalidToken, UnicodeEncodeError, ValueError):
            raise InvalidState(
                "the OAuth state is invalid: forged, altered, issued with another key or older "
                f"than {self._max_age} s; start the login again"
            ) from None
        try:
            fields = json.loads(plain)
            return OAuthState(**fields)
        except (ValueError, TypeError):
            raise InvalidState("the OAuth state does not carry the expected fields") from None
