"""The partner's own errors: the API's error answers and the control-side mistakes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ErrorCode:
    """Every ``error.code`` the partner answers with (``partner-api.md`` plus extensions)."""

    # partner-api.md
    INVALID_ACCESS_TOKEN = "INVALID_ACCESS_TOKEN"
    EXPIRED_ACCESS_TOKEN = "EXPIRED_ACCESS_TOKEN"
    REVOKED_ACCESS_TOKEN = "REVOKED_ACCESS_TOKEN"
    ACCOUNT_FORBIDDEN = "ACCOUNT_FORBIDDEN"
    SEGMENT_NAME_TAKEN = "SEGMENT_NAME_TAKEN"
    SEGMENT_NOT_READY = "SEGMENT_NOT_READY"
    SEGMENT_NOT_FOUND = "SEGMENT_NOT_FOUND"
    TOO_MANY_OPERATIONS = "TOO_MANY_OPERATIONS"
    EMPTY_BATCH = "EMPTY_BATCH"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    PII_NOT_HASHED = "PII_NOT_HASHED"
    INVALID_SHA256_FORMAT = "INVALID_SHA256_FORMAT"
    INVALID_MAID = "INVALID_MAID"
    UNSUPPORTED_IDENTIFIER_TYPE = "UNSUPPORTED_IDENTIFIER_TYPE"
    INVALID_OPERATIONS = "INVALID_OPERATIONS"
    RATE_LIMITED = "RATE_LIMITED"
    QUOTA_EXHAUSTED = "QUOTA_EXHAUSTED"
    # extensions (documented in fake_partner/README.md)
    INVALID_REQUEST = "INVALID_REQUEST"
    INVALID_PARTNER_USER_ID = "INVALID_PARTNER_USER_ID"
    INVALID_IDENTIFIER_COUNT = "INVALID_IDENTIFIER_COUNT"
    UNSUPPORTED_ACTION = "UNSUPPORTED_ACTION"
    IDENTIFIER_REJECTED = "IDENTIFIER_REJECTED"
    INVALID_CLIENT = "INVALID_CLIENT"
    INVALID_REDIRECT_URI = "INVALID_REDIRECT_URI"
    TARGET_TOO_LONG = "TARGET_TOO_LONG"
    HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"
    ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    ADMIN_TOKEN_REQUIRED = "ADMIN_TOKEN_REQUIRED"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class PartnerError(Exception):
    """An error answer of the partner API: ``{"error": {status, code, message, details}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: list[dict[str, Any]] = [dict(item) for item in details]
        self.headers: dict[str, str] = dict(headers or {})
        self.retry_after = retry_after
        """The wait the core decided (seconds), whether or not the generic headers say it."""


class OAuthError(Exception):
    """An error of ``/oauth/token`` in OAuth's own shape: ``{"error", "error_description"}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


class ClockError(ValueError):
    """A virtual clock asked to do something it cannot (go back, become infinite)."""


class ScenarioError(ValueError):
    """A scenario that does not validate; ``lines`` name each bad key, its value and the fix."""

    def __init__(self, lines: Sequence[str], source: str | None = None) -> None:
        self.lines = list(lines)
        self.source = source
        where = f"scenario {source}" if source else "scenario"
        body = "\n".join(f"  {line}" for line in self.lines)
        super().__init__(f"{where} is invalid:\n{body}")


class PartnerUsageError(ValueError):
    """The Python control API called with something that does not exist or fit."""
