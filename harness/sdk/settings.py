"""The process settings of a connector, read from the environment as the Node SDK does."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_GATEWAY_HOST",
    "DEFAULT_GATEWAY_PORT",
    "DEFAULT_PLUGIN_PORT",
    "PluginSettings",
    "SettingsError",
]

DEFAULT_GATEWAY_HOST = "plugin-gateway.platform"
DEFAULT_GATEWAY_PORT = 8080
DEFAULT_PLUGIN_PORT = 8080


class SettingsError(ValueError):
    """A connector setting is missing or malformed; the message names the variable and the fix."""


class PluginSettings(BaseModel):
    """Where the plugin gateway is and how to authenticate to it (basic auth)."""

    model_config = ConfigDict(frozen=True)

    gateway_host: str = DEFAULT_GATEWAY_HOST
    gateway_port: int = DEFAULT_GATEWAY_PORT
    worker_id: str = ""
    authentication_token: str = Field(default="", repr=False)
    port: int = DEFAULT_PLUGIN_PORT

    @property
    def gateway_url(self) -> str:
        """The gateway base URL, ``http://HOST:PORT`` (the SDK's ``outboundPlatformUrl``)."""
        return f"http://{self.gateway_host}:{self.gateway_port}"

    @property
    def is_ready(self) -> bool:
        """True when both gateway credentials are set (what ``GET /v1/status`` reports)."""
        return bool(self.worker_id and self.authentication_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PluginSettings:
        """Read ``GATEWAY_HOST``, ``GATEWAY_PORT``, ``PLUGIN_WORKER_ID``,
        ``PLUGIN_AUTHENTICATION_TOKEN``, ``PLUGIN_PORT``; refuse without the worker id or token.
        """
        source = os.environ if env is None else env
        worker_id = source.get("PLUGIN_WORKER_ID", "")
        token = source.get("PLUGIN_AUTHENTICATION_TOKEN", "")
        if not worker_id:
            raise SettingsError(
                "PLUGIN_WORKER_ID is missing or empty in the environment: set it to the "
                "gateway worker id (the basic-auth user of every gateway call)"
            )
        if not token:
            raise SettingsError(
                "PLUGIN_AUTHENTICATION_TOKEN is missing or empty in the environment: set it to "
                "the gateway token (the basic-auth password of every gateway call)"
            )
        return cls(
            gateway_host=source.get("GATEWAY_HOST") or DEFAULT_GATEWAY_HOST,
            gateway_port=_port(source, "GATEWAY_PORT", DEFAULT_GATEWAY_PORT),
            worker_id=worker_id,
            authentication_token=token,
            port=_port(source, "PLUGIN_PORT", DEFAULT_PLUGIN_PORT),
        )


def _port(source: Mapping[str, str], name: str, default: int) -> int:
    raw = source.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a port number: set it to an integer in 1..65535 or unset it "
            f"for the default {default}"
        ) from None
    if not 0 < value < 65536:
        raise SettingsError(f"{name}={value} is out of range: use 1..65535 (default {default})")
    return value
