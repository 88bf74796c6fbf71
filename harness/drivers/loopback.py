"""What the command and URL drivers share: one keep-alive HTTP client on loopback, the
readiness poll of ``GET /v1/status``, and free ports for processes that bind later."""

from __future__ import annotations

import collections
import random
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness import __version__
from harness.drivers.base import (
    _JSON_HEADERS,
    _START_POLL_SECONDS,
    NOT_HTTP,
    Answer,
    ConnectorStartError,
    _answer,
    _RecordingDriver,
)
from harness.drivers.bounds import Bounds
from harness.drivers.http1 import Http1Client, HttpFailureError
from harness.trace import Exchange, FailureKind, Trace

__all__ = ["ABANDONED", "free_port"]

ABANDONED = "the start was abandoned: the verification no longer needs this connector"

_USER_AGENT = f"feed-harness/{__version__}"
_HEADERS = list(_JSON_HEADERS)
_STATUS_BYTES = 64 * 1024
"""Of a readiness poll's answer, read (only its status matters)."""


class _HttpDriver(_RecordingDriver):
    """Calls a connector over loopback HTTP with one keep-alive connection
    (:class:`~harness.drivers.http1.Http1Client`).

    An answer is streamed: its first ``bounds.max_body_bytes`` are kept and the rest only
    counted (up to ``max_read_factor`` times that), and the whole answer, not each read,
    must come within the call's timeout.
    """

    def __init__(
        self, base_url: str, *, trace: Trace | None = None, bounds: Bounds | None = None
    ) -> None:
        super().__init__(trace, bounds)
        self.base_url = base_url.rstrip("/")
        self._client: Http1Client | None = None
        self._abandoned = threading.Event()

    def abandon(self) -> None:
        """From another thread: give up a start in progress (``start`` raises
        ``ConnectorStartError`` within a poll; the process is stopped as on any failed
        start)."""
        self._abandoned.set()
        client = self._client
        if client is not None:
            client.interrupt()

    def _http(self) -> Http1Client:
        if self._client is None:
            self._client = Http1Client(self.base_url, user_agent=_USER_AGENT)
        return self._client

    def _failure_kind(self, exc: HttpFailureError) -> tuple[FailureKind, str]:
        if exc.kind == "not-http":
            return (
                "connection",
                f"{NOT_HTTP}: the connector answered bytes that are not HTTP ({exc.detail})",
            )
        return exc.kind, exc.detail

    def _send(
        self, method: str, path: str, payload: bytes, exchange: Exchange | None, timeout: float
    ) -> Answer:
        started = time.perf_counter()
        keep = self.bounds.max_body_bytes
        try:
            reply = self._http().request(
                method,
                path,
                payload,
                _HEADERS if payload else None,
                timeout=timeout,
                keep=keep,
                most=keep * self.bounds.max_read_factor,
            )
        except HttpFailureError as exc:
            kind, detail = self._failure_kind(exc)
            return _answer(exchange, None, (), b"", kind, detail, time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        if reply.late:
            detail = (
                f"the answer {reply.status} was still coming after {timeout:g} s "
                f"({reply.total} bytes so far)"
            )
            return _answer(exchange, None, (), b"", "timeout", detail, elapsed)
        return _answer(
            exchange,
            reply.status,
            reply.headers,
            reply.body,
            None,
            "",
            elapsed,
            total=reply.total,
        )

    def _wait_ready(self, deadline: float, alive: Callable[[], str | None]) -> None:
        """Poll ``GET /v1/status`` until 200; ``alive`` returns why it cannot come, if so.

        Each poll may wait for the rest of the start time: a slow connector still starts
        (its calls are then judged against the call timeout)."""
        left = self.bounds.remaining()
        if left is not None:
            deadline = min(deadline, time.monotonic() + left)
        last = "no answer yet"
        while True:
            if self._abandoned.is_set():
                raise ConnectorStartError(ABANDONED)
            reason = alive()
            if reason is not None:
                raise ConnectorStartError(reason, self._tail())
            wait = max(deadline - time.monotonic(), _START_POLL_SECONDS)
            try:
                reply = self._http().request(
                    "GET", "/v1/status", timeout=wait, keep=_STATUS_BYTES, most=_STATUS_BYTES
                )
                if reply.status == 200:
                    return
                last = f"GET /v1/status answered {reply.status}"
            except HttpFailureError as exc:
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


_EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
_QUIET_PORTS = range(20_000, 32_768)
"""Below Linux's default ephemeral range (32768-60999): ports the kernel does not hand to
other processes' ``bind(0)`` and outgoing connections."""


_HANDED_OUT: collections.deque[int] = collections.deque(maxlen=64)
_HANDED_LOCK = threading.Lock()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a process that binds it later (a connector's
    PLUGIN_PORT, a gateway the connector must know in advance).

    The port is released before its user binds it, so it is drawn outside the kernel's
    ephemeral range, where another process's ``bind(0)`` cannot take it meanwhile; where
    that range is unknown or overlaps, any free port will do. The last ports handed out
    are not handed out again: platforms started side by side (``verify --cmd`` starts the
    next run's connector while a run plays) each get their own.
    """
    quiet = _QUIET_PORTS if _outside_ephemeral(_QUIET_PORTS) else range(0)
    with _HANDED_LOCK:
        port = _draw(quiet)
        _HANDED_OUT.append(port)
    return port


def _draw(quiet: range) -> int:
    for port in random.sample(quiet, min(len(quiet), 50)):
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            return port
    return port


def _outside_ephemeral(ports: range) -> bool:
    try:
        low, high = (int(n) for n in Path(_EPHEMERAL_RANGE_FILE).read_text().split())
    except (OSError, ValueError):
        return False
    return ports.stop <= low or ports.start > high
