"""The reference connector's configuration files and feed properties (the feed conventions of
``docs/writing-a-connector.md``)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.reference.partner_client import (
    MAX_BODY_BYTES,
    MAX_OPERATIONS_PER_REQUEST,
)
from harness.sdk import GatewayClient, GatewayError, GatewayNotFoundError

__all__ = [
    "CREDENTIALS_FILE",
    "OAUTH_STATE_KEY_FILE",
    "OAUTH_USER_CREDENTIALS_FILE",
    "PARTNER_ACCOUNT_ID",
    "PARTNER_SEGMENT_ID",
    "SEGMENT_NAME",
    "TECHNICAL_CONFIG_FILE",
    "ConfigError",
    "PartnerCredentials",
    "TechnicalConfig",
    "load_json_file",
]

PARTNER_ACCOUNT_ID = "partner_account_id"
SEGMENT_NAME = "segment_name"
PARTNER_SEGMENT_ID = "partner_segment_id"

TECHNICAL_CONFIG_FILE = "technical_config"
CREDENTIALS_FILE = "credentials"
OAUTH_STATE_KEY_FILE = "oauth_state_key"
OAUTH_USER_CREDENTIALS_FILE = "oauth_user_credentials"

M = TypeVar("M", bound=BaseModel)

_HINTS = {
    TECHNICAL_CONFIG_FILE: '{"partner_endpoint": "https://partner.test", '
    '"partner_api_version": "v1", "max_operations_per_request": 10000, '
    '"max_body_bytes_per_request": 5242880}',
    CREDENTIALS_FILE: '{"client_id": "...", "client_secret": "...", "refresh_token": "..."}',
}


class ConfigError(ValueError):
    """The feed or a configuration file is unusable; the message names it and the fix.

    ``visibility`` PUBLIC: a creation answer may show the message to the platform's user.
    """

    visibility = "PUBLIC"


class TechnicalConfig(BaseModel):
    """``technical_config``: where the partner is and its per-request limits (operations,
    body bytes)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    partner_endpoint: str
    partner_api_version: str = "v1"
    max_operations_per_request: int = Field(
        default=MAX_OPERATIONS_PER_REQUEST, ge=1, le=MAX_OPERATIONS_PER_REQUEST
    )
    max_body_bytes_per_request: int = Field(default=MAX_BODY_BYTES, ge=1)
    """The partner's body limit; the client keeps its uploads within it, and within 5 MiB."""

    @field_validator("partner_endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) base URL such as https://partner.test")
        return value.rstrip("/")


class PartnerCredentials(BaseModel):
    """``credentials``: the partner OAuth client and the feed's refresh token (never shown)."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)


async def load_json_file(gateway: GatewayClient, name: str, model: type[M]) -> M:
    """Read configuration file ``name`` as JSON into ``model``; ConfigError naming the file."""
    hint = _HINTS.get(name, "a JSON object")
    try:
        raw = await gateway.fetch_configuration_file(name)
    except GatewayNotFoundError:
        raise ConfigError(
            f"configuration file {name!r} is missing on the gateway (404): upload it as {hint}"
        ) from None
    except GatewayError as err:
        raise ConfigError(f"configuration file {name!r} is unreadable: {err}") from None
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        raise ConfigError(
            f"configuration file {name!r} is not valid JSON: upload it as {hint}"
        ) from None
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(file)"
        raise ConfigError(
            f"configuration file {name!r} is invalid: field {where!r}: {first['msg']}; "
            f"expected {hint}"
        ) from None
