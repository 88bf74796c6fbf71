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
    Answer,
    ConnectorStartError,
    _answer,
    _describe,
    _RecordingDriver,
)
from harness.trace import FailureKind, Trace

__all__ = ["free_port"]


class _HttpDriver(_RecordingDriver):
    """Calls a connector over loopback HTTP with one keep-alive client."""

    def __init__(self, base_url: str, *, trace: Trace | None = None) -> None:
        super().__init__(trace)
        self.base_url = base_url.rstrip("/")
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, trust_env=False)
        return self._client

    def _failure_kind(self, exc: httpx.TransportError) -> tuple[FailureKind, str]:
        if isinstance(exc, httpx.TimeoutException):
            return "timeout", _describe(exc)
        return "connection", _describe(exc)

    def call(self, method: str, path: str, body: bytes | None, *, timeout: float) -> Answer:
        """One HTTP request; transport errors and timeouts come back as failures."""
        payload = body or b""
        exchange = self._begin(method, path, payload)
        started = time.perf_counter()
        headers = dict(_JSON_HEADERS) if payload else {}
        try:
            response = self._http().request(
                method, path, content=payload or None, headers=headers, timeout=timeout
            )
        except httpx.TransportError as exc:
            kind, detail = self._failure_kind(exc)
            return _answer(exchange, None, (), b"", kind, detail, time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        return _answer(
            exchange,
            response.status_code,
            response.headers.multi_items(),
            response.content,
            None,
            "",
            elapsed,
        )

    def _wait_ready(self, deadline: float, alive: Callable[[], str | None]) -> None:
        """Poll ``GET /v1/status`` until 200; ``alive`` returns why it cannot come, if so."""
        last = "no answer yet"
        while True:
            reason = alive()
            if reason is not None:
                raise ConnectorStartError(reason, self._tail())
            try:
                response = self._http().get("/v1/status", timeout=1.0)
                if response.status_code == 200:
                    return
                last = f"GET /v1/status answered {response.status_code}"
            except httpx.TransportError as exc:
                last = _describe(exc)
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
