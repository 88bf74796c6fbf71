"""The Python connector base mirroring the Node SDK: ``AudienceFeedConnector`` and
``BatchedAudienceFeedConnector`` are ASGI apps serving ``contracts.routes``; ``GatewayClient``
makes the SDK's outbound gateway calls."""

from harness.sdk.base import AudienceFeedConnector, BatchedAudienceFeedConnector, PluginError
from harness.sdk.context import BaseInstanceContext, ContextCache, PropertiesWrapper
from harness.sdk.gateway_client import GatewayClient, GatewayError, GatewayNotFoundError
from harness.sdk.settings import PluginSettings, SettingsError

__all__ = [
    "AudienceFeedConnector",
    "BaseInstanceContext",
    "BatchedAudienceFeedConnector",
    "ContextCache",
    "GatewayClient",
    "GatewayError",
    "GatewayNotFoundError",
    "PluginError",
    "PluginSettings",
    "PropertiesWrapper",
    "SettingsError",
]
