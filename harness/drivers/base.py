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
from harness.drivers.bounds import Bounds, Stall
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


PROBE_TAG = "liveness_probe"
"""The trace tag of the driver's own ``GET /v1/status`` after calls went unanswered."""
NOT_HTTP = "not HTTP"
"""How a failure's detail starts when the connector answered bytes that are not HTTP."""


def _answer(
    trace_exchange: Exchange | None,
    status: int | None,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    failure: FailureKind | None,
    detail: str,
    real_seconds: float,
    *,
    total: int | None = None,
) -> Answer:
    """Build the answer (parsing JSON once) and close the trace exchange; ``total``: the
    answer's full size when only its first ``body`` bytes were kept (too large to judge)."""
    parsed: Any = None
    if status is not None and failure is None:
        if total is not None and total > len(body):
            failure = "not-json"
            detail = (
                f"answer {status} is {_size(total)}, more than the {_size(len(body))} the "
                f"harness reads: too large to judge (it starts {body[:100]!r})"
            )
            body = body[:_OVERSIZE_KEPT]  # not judged: keep what shows it, not megabytes
        else:
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


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MiB ({count} bytes)"
    return f"{count} bytes"


_OVERSIZE_KEPT = 1024
"""Bytes of a too-large answer kept in the answer and the trace."""

_SILENT: frozenset[FailureKind | None] = frozenset({"timeout", "connection"})


class _RecordingDriver:
    """Records the ``platform->connector`` leg around each call and keeps the bounds.

    Subclasses implement ``_send``. Here: the deadline caps each call's timeout; after
    ``bounds.max_silent_calls`` calls in a row without an HTTP answer one patient
    ``GET /v1/status`` tells a slow connector from a lost one, and the driver gives up
    (``stall``): later calls fail at once, recorded as not sent (a driver serves one run).
    """

    base_url = "http://connector"

    def __init__(self, trace: Trace | None = None, bounds: Bounds | None = None) -> None:
        self.trace = trace
        self.bounds = bounds if bounds is not None else Bounds()
        self.stall: Stall | None = None

    def _begin(self, method: str, path: str, body: bytes) -> Exchange | None:
        if self.trace is None:
            return None
        headers = _JSON_HEADERS if body else ()
        return self.trace.begin("platform->connector", method, self.base_url + path, headers, body)

    def call(self, method: str, path: str, body: bytes | None, *, timeout: float) -> Answer:
        """One call within ``timeout`` (or the deadline); failures come back in the answer."""
        payload = body or b""
        exchange = self._begin(method, path, payload)
        if self.stall is None and self.bounds.expired():
            self.stall = Stall("deadline", f"{self.bounds.deadline_label()} passed")
        if self.stall is not None:
            kind: FailureKind = "connection" if self.stall.kind == "lost" else "timeout"
            return _answer(exchange, None, (), b"", kind, f"not sent: {self.stall.reason}", 0.0)
        limit = self.bounds.call_timeout if self.bounds.call_timeout is not None else timeout
        answer = self._send(method, path, payload, exchange, self.bounds.cap(limit))
        self._count(answer, limit)
        return answer

    def _send(
        self, method: str, path: str, payload: bytes, exchange: Exchange | None, timeout: float
    ) -> Answer:
        raise NotImplementedError

    def _lost(self, settle: float = 0.0) -> str | None:
        """Why the connector is gone for good, if the driver knows (its process exited);
        ``settle``: real seconds to let a process that is dying finish exiting."""
        return None

    def _count(self, answer: Answer, timeout: float) -> None:
        """Count the calls in a row without an HTTP answer (across the verification's runs:
        the counter is in the shared bounds); give up when there are too many."""
        if answer.status is not None or answer.failure not in _SILENT:
            self.bounds.silent_calls = 0
            gone = self._lost() if answer.failure == "crash" else None
            if gone is not None:
                self.stall = Stall("lost", gone)
            return
        if answer.detail.startswith(NOT_HTTP):
            return  # it answered, badly: not silence
        gone = self._lost()
        if gone is not None:
            self.stall = Stall("lost", gone)
            return
        self.bounds.silent_calls += 1
        if self.bounds.silent_calls >= self.bounds.max_silent_calls:
            self.stall = self._probe(answer, timeout)

    def _probe(self, last: Answer, timeout: float) -> Stall:
        """One ``GET /v1/status``, patient: does the connector still answer at all?"""
        count = self.bounds.silent_calls
        calls = f"{count} calls in a row got no answer within {timeout:g} s"
        shown = f"last: {last.describe()}"
        patience = self.bounds.cap(timeout * self.bounds.patience)
        if patience <= 0:
            return Stall("deadline", f"{self.bounds.deadline_label()} passed ({calls})")
        exchange = self._begin("GET", "/v1/status", b"")
        if exchange is not None:
            exchange.tags[PROBE_TAG] = "status after calls went unanswered"
        probe = self._send("GET", "/v1/status", b"", exchange, patience)
        if probe.status is None:
            gone = self._lost(settle=1.0)
            return Stall(
                "lost",
                gone
                or f"the connector stopped answering: {calls} ({shown}) and GET /v1/status got "
                f"none in {patience:g} s either ({probe.describe()})",
            )
        self.bounds.silent_calls = 0  # it answered: the next run counts afresh
        if probe.real_seconds > timeout:
            return Stall(
                "slow",
                f"the connector is too slow: {calls} ({shown}) and GET /v1/status took "
                f"{probe.real_seconds:.1f} s",
            )
        return Stall(
            "hanging",
            f"the connector hangs: {calls} ({shown}), though GET /v1/status still answers "
            f"{probe.status} in {probe.real_seconds:.1f} s",
        )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
