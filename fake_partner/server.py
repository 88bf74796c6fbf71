"""The served partner: its ASGI app on loopback under uvicorn, in a background thread.

``serve(partner)`` starts and stops it from Python; ``serve_from_command_line`` is what
``feed-harness serve-partner`` runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from fake_partner.app import TRANSPORT_KEY
from fake_partner.errors import PartnerUsageError, ScenarioError
from fake_partner.inbound import UnreadableRequestError
from fake_partner.partner import Partner
from fake_partner.scenario import load_scenario

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
EXIT_OK = 0
EXIT_USAGE = 2


_UNPARSED_ID = "rej-unparsed"
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


class _DroppableH11Protocol(JsonErrorH11Protocol):
    """uvicorn's h11 protocol that lends the app its connection, so a fault can close it;
    unparsable requests get the partner's error body."""

    extra_headers = ((b"x-request-id", _UNPARSED_ID.encode()),)

    @staticmethod
    def error_body(message: str) -> dict[str, Any]:
        return {
            "error": {
                "status": 400,
                "code": "INVALID_REQUEST",
                "message": message,
                "request_id": _UNPARSED_ID,
                "details": [{"field": "request"}],
            }
        }

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app_state = {**self.app_state, TRANSPORT_KEY: transport}


def _protocol_for(partner: Partner) -> type[_DroppableH11Protocol]:
    """The h11 protocol whose answer to an unparsable request is in the partner's dialect
    (the one it speaks when served)."""
    if partner.face.name == "generic":
        return _DroppableH11Protocol
    refusal = UnreadableRequestError(400, "request", UNPARSED_MESSAGE)
    body = json.loads(partner.face.render_refusal(refusal, _UNPARSED_ID, None).content)

    class _FaceProtocol(_DroppableH11Protocol):
        @staticmethod
        def error_body(message: str) -> dict[str, Any]:
            return dict(body)

    return _FaceProtocol


class _Server(uvicorn.Server):
    """A uvicorn server that signals a threading event once it listens."""

    def __init__(self, config: uvicorn.Config, listening: threading.Event) -> None:
        super().__init__(config)
        self._listening = listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._listening.set()


def _no_op() -> None:
    """A ``stop_soon`` for what is not served (yet)."""


@dataclass(frozen=True)
class ServedPartner:
    """A partner listening on loopback: where to reach it and how to control it."""

    partner: Partner
    host: str
    port: int
    stop_soon: Callable[[], None] = field(default=_no_op, compare=False, repr=False, kw_only=True)
    """Begin the server's shutdown now (the ``serve`` block's end waits for it)."""

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def admin_token(self) -> str:
        return self.partner.admin_token

    def admin_headers(self) -> dict[str, str]:
        """Headers that open ``/_admin/...``."""
        return {"Authorization": f"Bearer {self.partner.admin_token}"}


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

CLOCK_NOTE = (
    "the partner's clock is virtual: nothing waits by itself, so a new segment stays "
    "SEGMENT_NOT_READY until POST /_admin/clock/advance (admin token) moves it, e.g.\n"
    "  curl -X POST -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
    "-d '{{\"seconds\": 60}}' {base_url}/_admin/clock/advance"
)
"""What the serve commands say about the clock (``format(token=..., base_url=...)``), as
comment lines by :func:`clock_note`."""


def clock_note(token: str, base_url: str) -> list[str]:
    """The clock note as ``# ...`` lines."""
    return ["# " + line for line in CLOCK_NOTE.format(token=token, base_url=base_url).splitlines()]


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


@contextmanager
def serve(
    partner: Partner, host: str = "127.0.0.1", port: int = 0, *, log: RequestLog | None = None
) -> Iterator[ServedPartner]:
    """Serve ``partner`` on ``host:port`` (0: a free port) for the duration of the block
    (each request logged to ``log`` when given)."""
    sock = listen(host, port)
    served = ServedPartner(partner, host, sock.getsockname()[1])
    app = partner.asgi_app(served.base_url)
    with serve_asgi(app, sock, http=_protocol_for(partner), log=log) as stop_soon:
        yield dataclasses.replace(served, stop_soon=stop_soon)


def serve_from_command_line(
    port: int,
    scenario: str | None,
    host: str = "127.0.0.1",
    *,
    log: RequestLog | None = None,
    dialect: str | None = None,
) -> int:
    """Serve until interrupted, printing base_url, client_id/secret, refresh and admin tokens.

    ``dialect`` (``generic``, ``linkedin``, ``meta``) overrides the scenario's ``partner``
    key; for Meta, which has no refresh grant, a long-lived access token is printed too.
    The secrets are printed on purpose: the user asked for them to point a connector by
    hand. Returns 0 after Ctrl-C or SIGTERM, 2 for a bad scenario or an unusable address.
    """
    try:
        partner = Partner(load_scenario(scenario), dialect=dialect)
    except (ScenarioError, PartnerUsageError) as error:
        print(f"feed-harness serve-partner: {error}", file=sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()
    previous = on_stop_signals(stop)
    try:
        with serve(partner, host, port, log=log) as served:
            lines = [f"base_url: {served.base_url}"]
            try:
                credentials = partner.credentials
                lines += [
                    f"client_id: {credentials.client_id}",
                    f"client_secret: {credentials.client_secret}",
                    f"refresh_token: {credentials.refresh_token}",
                ]
            except PartnerUsageError:
                lines += ["client_id: (none)", "client_secret: (none)", "refresh_token: (none)"]
            else:
                if not partner.face.info().get("refresh_grant", True):
                    token = partner.seed_access_token(credentials.account_ids)
                    lines.append(f"access_token: {token}")
            info = partner.dialect_info()
            if info["dialect"] != "generic":  # the generic output stays as it always was
                lines.append(
                    f"dialect: {info['dialect']} (api_version {info['api_version']}, "
                    f"base path {info['base_path']})"
                )
            lines.append(f"admin_token: {partner.admin_token}")
            lines.append(
                "# " + CLOCK_NOTE.format(token=partner.admin_token, base_url=served.base_url)
            )
            lines.append("# Ctrl-C to stop" + ("; one line per request follows" if log else ""))
            print("\n".join(lines), flush=True)
            stop.wait()
    except OSError as error:
        print(
            f"feed-harness serve-partner: cannot listen on {host}:{port}: {error.strerror}; "
            "choose another --port (0 picks a free one) or --host",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        pass
    finally:
        restore_signals(previous)
    return EXIT_OK


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
