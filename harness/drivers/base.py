"""The driver interface: what a call returns (``Answer``), what a connector is told
(``PlatformEnv``), the errors of starting and loading one, and the recording base.

A driver never raises for a bad answer and never hangs: timeouts, crashes, drops and
non-JSON answers come back as an ``Answer`` with ``failure`` set, recorded in the trace.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

from contracts.routes import DELAY_HEADER
from harness.sdk.settings import PluginSettings
from harness.trace import Exchange, FailureKind, Trace

__all__ = [
    "ASGIApp",
    "Answer",
    "ConnectorDriver",
    "ConnectorLoadError",
    "ConnectorStartError",
    "Message",
    "PlatformEnv",
    "Receive",
    "Scope",
    "Send",
]

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON_HEADERS: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
_START_POLL_SECONDS = 0.05


class ConnectorStartError(RuntimeError):
    """The connector could not be started or reached; carries its output tail."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(
            f"{message}\n--- connector output (tail) ---\n{output}" if output else message
        )
        self.output = output


class ConnectorLoadError(ValueError):
    """A ``module:attribute`` connector reference cannot be turned into an ASGI app."""


@dataclass(frozen=True, slots=True)
class PlatformEnv:
    """What a connector needs to know of the platform: where the gateway is, how to log in."""

    gateway_host: str
    gateway_port: int
    worker_id: str
    authentication_token: str = field(repr=False)

    def plugin_settings(self, port: int = 8080) -> PluginSettings:
        """The same facts as the SDK's settings object."""
        return PluginSettings(
            gateway_host=self.gateway_host,
            gateway_port=self.gateway_port,
            worker_id=self.worker_id,
            authentication_token=self.authentication_token,
            port=port,
        )

    def variables(self, port: int) -> dict[str, str]:
        """The process environment of a plugin (``plugin-contract.md``)."""
        return {
            "PLUGIN_PORT": str(port),
            "GATEWAY_HOST": self.gateway_host,
            "GATEWAY_PORT": str(self.gateway_port),
            "PLUGIN_WORKER_ID": self.worker_id,
            "PLUGIN_AUTHENTICATION_TOKEN": self.authentication_token,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back from one call: an HTTP answer, or a failure (never an exception)."""

    status: int | None
    headers: Mapping[str, str]
    body: bytes
    json: Any
    failure: FailureKind | None
    detail: str
    real_seconds: float
    exchange: Exchange | None = None

    @property
    def ok(self) -> bool:
        """An HTTP answer with a JSON body came back."""
        return self.failure is None

    @property
    def body_status(self) -> str | None:
        """The answer body's ``status`` field, when there is one."""
        if isinstance(self.json, dict):
            value = self.json.get("status")
            return value if isinstance(value, str) else None
        return None

    @property
    def message(self) -> str | None:
        """The answer body's ``message`` (or the failure detail)."""
        if isinstance(self.json, dict) and isinstance(self.json.get("message"), str):
            return cast(str, self.json["message"])
        return self.detail or None

    @property
    def delay_seconds(self) -> float | None:
        """``x-mics-next-msg-delay`` (milliseconds on the wire) in seconds, if valid."""
        raw = self.headers.get(DELAY_HEADER)
        if not raw:
            return None
        try:
            value = float(raw) / 1000.0
        except ValueError:
            return None
        return value if math.isfinite(value) and value >= 0 else None

    def describe(self) -> str:
        """A one-line account for messages: ``503 RETRY`` or ``timeout: ...``."""
        if self.failure is not None:
            prefix = f"{self.status} " if self.status is not None else ""
            return f"{prefix}{self.failure}: {self.detail}"
        return f"{self.status} {self.body_status or ''}".rstrip()


@runtime_checkable
class ConnectorDriver(Protocol):
    """How the simulator reaches a connector."""

    trace: Trace | None

    def start(self, env: PlatformEnv) -> None:
        """Make the connector reachable; raise ``ConnectorStartError`` if it cannot be."""

    def call(self, method: str, path: str, body: bytes | None, *, timeout: float) -> Answer:
        """One request; failures come back in the ``Answer``."""
        ...

    def stop(self) -> None:
        """Release the connector (idempotent)."""


def _answer(
    trace_exchange: Exchange | None,
    status: int | None,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    failure: FailureKind | None,
    detail: str,
    real_seconds: float,
) -> Answer:
    """Build the answer (parsing JSON once) and close the trace exchange."""
    parsed: Any = None
    if status is not None and failure is None:
        try:
            parsed = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if parsed is None:
            failure = "not-json"
            detail = f"answer {status} is not JSON: {body[:200]!r}"
    header_map: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        header_map[key] = f"{header_map[key]}, {value}" if key in header_map else value
    if trace_exchange is not None:
        if status is not None:
            trace_exchange.finish(status, headers, body)
        if failure is not None:
            trace_exchange.fail(failure, detail)
    return Answer(status, header_map, body, parsed, failure, detail, real_seconds, trace_exchange)


class _RecordingDriver:
    """Records the ``platform->connector`` leg around each call."""

    base_url = "http://connector"

    def __init__(self, trace: Trace | None = None) -> None:
        self.trace = trace

    def _begin(self, method: str, path: str, body: bytes) -> Exchange | None:
        if self.trace is None:
            return None
        headers = _JSON_HEADERS if body else ()
        return self.trace.begin("platform->connector", method, self.base_url + path, headers, body)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
