"""The fake mediarithmics plugin gateway (``plugin-contract.md``, outbound calls).

``Gateway`` holds the feeds, files, credentials and realms a connector reads, set from
Python; ``Gateway.handle`` answers HTTP, in-process through respx or served by uvicorn.
"""

from harness.gateway.bodies import GatewayHttpError
from harness.gateway.core import DEFAULT_GATEWAY_URL, DEFAULT_WORKER_ID, Gateway
from harness.gateway.feeds import FeedSetup, FeedState, GatewaySetupError, UnknownFeedError
from harness.gateway.records import GatewayCall, Observer, PropertyWrite
from harness.gateway.serving import (
    ServedApp,
    ServedGateway,
    ServeError,
    asgi_app,
    serve_asgi,
    serve_gateway,
)

__all__ = [
    "DEFAULT_GATEWAY_URL",
    "DEFAULT_WORKER_ID",
    "FeedSetup",
    "FeedState",
    "Gateway",
    "GatewayCall",
    "GatewayHttpError",
    "GatewaySetupError",
    "Observer",
    "PropertyWrite",
    "ServeError",
    "ServedApp",
    "ServedGateway",
    "UnknownFeedError",
    "asgi_app",
    "serve_asgi",
    "serve_gateway",
]
