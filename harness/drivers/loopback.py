"""What the command and URL drivers share: one keep-alive HTTP client on loopback, the
readiness poll of ``GET /v1/status``, and free ports for processes that bind later."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from harness.drivers.base import (
    _JSON_HEADERS,
    _START_POLL_SECONDS,
    NOT_HTTP,
    Answer,
    ConnectorStartError,
    _answer,
    _describe,
    _RecordingDriver,
)
from harness.drivers.bounds import Bounds
from harness.trace import Exchange, FailureKind, Trace

__all__ = ["free_port"]


class _HttpDriver(_RecordingDriver):
    """Calls a connector over loopback HTTP with one keep-alive client.

    An answer is streamed: its first ``bounds.max_body_bytes`` are kept and the rest only
    counted (up to ``max_read_factor`` times that), and the whole answer, not each read,
    must come within about the call's timeout.
    """

    def __init__(
        self, base_url: str, *, trace: Trace | None = None, bounds: Bounds | None = None
    ) -> None:
        super().__init__(trace, bounds)
        self.base_url = base_url.rstrip("/")
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, trust_env=False)
        return self._client

    def _failure_kind(self, exc: httpx.TransportError) -> tuple[FailureKind, str]:
        if isinstance(exc, httpx.TimeoutException):
            return "timeout", _describe(exc)
        if isinstance(exc, httpx.RemoteProtocolError) and "without sending" not in str(exc):
            return (
                "connection",
                f"{NOT_HTTP}: the connector answered bytes that are not HTTP ({exc})",
            )
        return "connection", _describe(exc)

    def _send(
        self, method: str, path: str, payload: bytes, exchange: Exchange | None, timeout: float
    ) -> Answer:
        started = time.perf_counter()
        headers = dict(_JSON_HEADERS) if payload else {}
        try:
            with self._http().stream(
                method, path, content=payload or None, headers=headers, timeout=timeout
            ) as response:
                body, total, late = self._read_body(response, started + timeout)
        except httpx.TransportError as exc:
            kind, detail = self._failure_kind(exc)
            return _answer(exchange, None, (), b"", kind, detail, time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        if late:
            detail = (
                f"the answer {response.status_code} was still coming after {timeout:g} s "
                f"({total} bytes so far)"
            )
            return _answer(exchange, None, (), b"", "timeout", detail, elapsed)
        return _answer(
            exchange,
            response.status_code,
            response.headers.multi_items(),
            body,
            None,
            "",
            elapsed,
            total=total,
        )

    def _read_body(self, response: httpx.Response, ends: float) -> tuple[bytes, int, bool]:
        """The body's first bytes, its size, and whether it was still coming at ``ends``."""
        keep = self.bounds.max_body_bytes
        most = keep * self.bounds.max_read_factor
        declared = response.headers.get("content-length", "")
        size = int(declared) if declared.isdigit() else None
        kept = bytearray()
        total = 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if len(kept) < keep:
                kept += chunk[: keep - len(kept)]
            if size is not None and size > keep and len(kept) >= keep:
                return bytes(kept), max(size, total), False  # its size is known: stop here
            if total > most:
                break  # enough to say it is too large; the connection is dropped
            if time.perf_counter() > ends:
                return bytes(kept), total, True
        return bytes(kept), total, False

    def _wait_ready(self, deadline: float, alive: Callable[[], str | None]) -> None:
        """Poll ``GET /v1/status`` until 200; ``alive`` returns why it cannot come, if so.

        Each poll may wait for the rest of the start time: a slow connector still starts
        (its calls are then judged against the call timeout)."""
        left = self.bounds.remaining()
        if left is not None:
            deadline = min(deadline, time.monotonic() + left)
        last = "no answer yet"
        while True:
            reason = alive()
            if reason is not None:
                raise ConnectorStartError(reason, self._tail())
            wait = max(deadline - time.monotonic(), _START_POLL_SECONDS)
            try:
                response = self._http().get("/v1/status", timeout=wait)
                if response.status_code == 200:
                    return
                last = f"GET /v1/status answered {response.status_code}"
            except httpx.TransportError as exc:
                last = self._failure_kind(exc)[1]
            if time.monotonic() >= deadline:
                raise ConnectorStartError(
                    f"the connector at {self.base_url} did not answer GET /v1/status with 200 "
                    f"in time (last: {last}); check that it starts, listens on PLUGIN_PORT and "
                    "has PLUGIN_WORKER_ID / PLUGIN_AUTHENTICATION_TOKEN",
                    self._tail(),
                )
            time.sleep(_START_POLL_SECONDS)

    def _tail(self) -> str:
        return ""

    def stop(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None


def _garbage(exc: httpx.TransportError) -> bool:
    """A protocol error on bytes the connector sent (not a connection dropped early)."""
    text = str(exc)
    return isinstance(exc, httpx.RemoteProtocolError) and not (
        "without sending" in text or text.startswith("peer closed")
    )


_EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
_QUIET_PORTS = range(20_000, 32_768)
"""Below Linux's default ephemeral range (32768-60999): ports the kernel does not hand to
other processes' ``bind(0)`` and outgoing connections."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a process that binds it later (a connector's
    PLUGIN_PORT, a gateway the connector must know in advance).

    The port is released before its user binds it, so it is drawn outside the kernel's
    ephemeral range, where another process's ``bind(0)`` cannot take it meanwhile; where
    that range is unknown or overlaps, any free port will do.
    """
    quiet = _QUIET_PORTS if _outside_ephemeral(_QUIET_PORTS) else range(0)
    for port in random.sample(quiet, min(len(quiet), 50)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _outside_ephemeral(ports: range) -> bool:
    try:
        low, high = (int(n) for n in Path(_EPHEMERAL_RANGE_FILE).read_text().split())
    except (OSError, ValueError):
        return False
    return ports.stop <= low or ports.start > high
