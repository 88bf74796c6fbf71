"""Connector drivers: one interface to call a connector in-process, as a command, or at a URL.

Like httpx's transports: ``base`` holds the interface (``ConnectorDriver``), what a call
returns (``Answer``) and the recording base; one module per driver (``inprocess``,
``command``, ``url``); ``bounds``: the limits they share; ``loading`` turns
``"module:attr"`` into an ASGI app.
"""

from __future__ import annotations

from harness.drivers.base import (
    Answer,
    ASGIApp,
    ConnectorDriver,
    ConnectorLoadError,
    ConnectorStartError,
    Message,
    PlatformEnv,
    Receive,
    Scope,
    Send,
)
from harness.drivers.bounds import DEFAULT_DEADLINE, Bounds, Stall, current_bounds, use_bounds
from harness.drivers.command import CommandDriver
from harness.drivers.inprocess import InProcessDriver
from harness.drivers.loading import load_connector
from harness.drivers.loopback import free_port
from harness.drivers.url import UrlDriver

__all__ = [
    "DEFAULT_DEADLINE",
    "ASGIApp",
    "Answer",
    "Bounds",
    "CommandDriver",
    "ConnectorDriver",
    "ConnectorLoadError",
    "ConnectorStartError",
    "InProcessDriver",
    "Message",
    "PlatformEnv",
    "Receive",
    "Scope",
    "Send",
    "Stall",
    "UrlDriver",
    "current_bounds",
    "free_port",
    "load_connector",
    "use_bounds",
]
