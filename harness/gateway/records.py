"""What the fake gateway remembers of its traffic: calls and property writes, no secrets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

__all__ = ["GatewayCall", "Observer", "PropertyWrite"]

Observer = Callable[[httpx.Request, httpx.Response | None, BaseException | None], None]
"""Called once per request after it is answered: ``fn(request, response, error)``."""


@dataclass(frozen=True, slots=True)
class GatewayCall:
    """One call the gateway answered: no headers and no bodies, so nothing secret."""

    method: str
    path: str
    query: str
    status: int
    at: float
    """Wall-clock time (``time.time()``) when the call arrived."""


@dataclass(frozen=True, slots=True)
class PropertyWrite:
    """One accepted property write; values are the wire ``value`` objects (``{"value": ...}``)."""

    feed_id: str
    technical_name: str
    method: Literal["POST", "PUT"]
    property_type: str
    old_value: Any
    """The property's ``value`` object before the write; None when the write created it."""
    new_value: Any
    at: float
