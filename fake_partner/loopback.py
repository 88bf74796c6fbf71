"""Any ASGI app on loopback: a listening socket with ``TCP_NODELAY``, uvicorn in a
background thread, a JSON 400 for a request uvicorn cannot parse, and the stop signals
of the serve commands.

It imports nothing of the partner: a connector served by ``feed-harness
serve-connector`` uses it without loading the fake partner (~0.15 s of every connector
start). ``fake_partner.server`` serves the partner with it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "START_TIMEOUT_SECONDS",
    "STOP_TIMEOUT_SECONDS",
    "UNPARSED_MESSAGE",
    "JsonErrorH11Protocol",
    "JsonErrorHttpToolsProtocol",
    "RequestLog",
    "ServeError",
    "listen",
    "logged",
    "no_op",
    "on_stop_signals",
    "restore_signals",
    "serve_asgi",
]

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
UNPARSED_MESSAGE = (
    "the request is not valid HTTP/1.1 (a non-ASCII or control byte in the request line "
    "or a header, or broken framing): send an ASCII request line and headers"
)


class JsonErrorH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, but a request h11 cannot parse (so no app sees it) is
    answered 400 with ``error_body(message)`` as JSON rather than plain text."""

    extra_headers: tuple[tuple[bytes, bytes], ...] = ()

    @staticmethod
    def error_body(message: str) -> dict[str, Any]:
        return {"status": "error", "message": message}

    def send_400_response(self, msg: str) -> None:
        body = json.dumps(self.error_body(UNPARSED_MESSAGE)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *self.extra_headers,
        ]
        start = h11.Response(status_code=400, headers=headers, reason=b"Bad Request")
        self.transport.write(self.conn.send(start))
        self.transport.write(self.conn.send(h11.Data(data=body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools (llhttp) protocol, a request it cannot parse answered 400 with
    the SDK's JSON error like :class:`JsonErrorH11Protocol`. It costs a served connector
    ~70 us less per request than h11 (what ``serve-connector`` serves with)."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps(JsonErrorH11Protocol.error_body(UNPARSED_MESSAGE)).encode()
        head = [
            b"HTTP/1.1 400 Bad Request\r\n",
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class _Server(uvicorn.Server):
    """A uvicorn server that signals a threading event once it listens."""

    def __init__(self, config: uvicorn.Config, listening: threading.Event) -> None:
        super().__init__(config)
        self._listening = listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._listening.set()


def no_op() -> None:
    """A ``stop_soon`` for what is not served (yet)."""


class ServeError(RuntimeError):
    """A server could not start on loopback; the message says where and why."""


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: a free port), so the port is known at once.

    Made with ``IPPROTO_TCP`` explicitly: asyncio sets ``TCP_NODELAY`` on an accepted
    connection only when its protocol says TCP, and accepted sockets inherit the listening
    socket's. With protocol 0, Nagle plus delayed ACK stalled every keep-alive request
    by about 40 ms.
    """
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


RequestLog = Callable[[str], None]
"""Receives one line per HTTP request: ``METHOD /path -> status (N ms)``."""


def logged(app: ASGIApp, log: RequestLog) -> ASGIApp:
    """``app`` with one :data:`RequestLog` line per HTTP request (path only: a query may
    carry a code or a token)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            took = (time.perf_counter() - started) * 1000
            answer = str(status[0]) if status else "no answer"
            log(f"{scope['method']} {scope['path']} -> {answer} ({took:.0f} ms)")

    return wrapped


@contextmanager
def serve_asgi(
    app: ASGIApp,
    sock: socket.socket,
    *,
    http: type[asyncio.Protocol] | str = "auto",
    log: RequestLog | None = None,
) -> Iterator[Callable[[], None]]:
    """Serve ``app`` with uvicorn on the bound ``sock`` in a background thread, until the
    block ends; returns once it listens (signalled, not polled). Closes ``sock`` after.
    With ``log``, each request is logged there.

    Yields ``stop_soon()``: it tells the server to begin its shutdown without waiting for
    it (the block's end still waits). uvicorn's shutdown takes 0.2-0.3 s of ticks and
    pauses, so whoever stops several servers starts them all first."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        logged(app, log) if log is not None else app,
        http=http,
        ws="none",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        server_header=False,
        date_header=False,
    )
    listening = threading.Event()
    server = _Server(config, listening)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # SystemExit from uvicorn included: reported below
            failure.append(error)
        finally:
            listening.set()

    thread = threading.Thread(target=run, name=f"uvicorn:{host}:{port}", daemon=True)
    thread.start()
    try:
        if not listening.wait(START_TIMEOUT_SECONDS) or not server.started:
            server.should_exit = True
            raise ServeError(
                f"uvicorn did not start on {host}:{port} within {START_TIMEOUT_SECONDS} s"
                + (f": {failure[0]!r}" if failure else "")
            )

        def stop_soon() -> None:
            server.should_exit = True

        yield stop_soon
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_SECONDS)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT_SECONDS)
        sock.close()


def on_stop_signals(stop: threading.Event) -> dict[int, Any]:
    """SIGINT and SIGTERM set ``stop`` (only possible from the main thread); returns the
    previous handlers for :func:`restore_signals`. Shared by every ``serve*`` command."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    return previous


def restore_signals(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
