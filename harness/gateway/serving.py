"""Serving a sync ``handle(httpx.Request) -> httpx.Response`` over loopback with uvicorn.

``asgi_app`` adapts the handler to ASGI; ``serve_asgi`` runs any ASGI app in a background
thread on a socket bound before the thread starts, so the port is known and nothing polls.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from harness.gateway.core import Gateway

__all__ = ["ServeError", "ServedApp", "ServedGateway", "asgi_app", "serve_asgi", "serve_gateway"]

Handler = Callable[[httpx.Request], httpx.Response]

_STARTUP_TIMEOUT = 10.0
_SHUTDOWN_TIMEOUT = 10.0


class ServeError(RuntimeError):
    """The server could not start or stop; the message says where and what to check."""


@dataclass(frozen=True, slots=True)
class ServedApp:
    """Where a served app listens."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        """``http://host:port``, ready for a client or ``GATEWAY_HOST``/``GATEWAY_PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServedGateway(ServedApp):
    """A gateway served over loopback; ``env`` is what a connector process needs."""

    gateway: Gateway

    @property
    def env(self) -> dict[str, str]:
        """The connector environment: gateway host and port, worker id and token."""
        return {"GATEWAY_HOST": self.host, "GATEWAY_PORT": str(self.port), **self.gateway.env}


def asgi_app(handle: Handler) -> ASGIApp:
    """An ASGI app that turns each HTTP request into an ``httpx.Request`` for ``handle``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        request = httpx.Request(
            scope["method"],
            _url(scope),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            content=b"".join(chunks),
        )
        response = handle(request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (k, v)
                    for k, v in response.headers.raw
                    if k.lower() not in (b"content-length", b"transfer-encoding")
                ]
                + [(b"content-length", str(len(response.content)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": response.content})

    return app


@contextmanager
def serve_asgi(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[ServedApp]:
    """Serve ``app`` with uvicorn in a background thread until the block ends."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port} ({exc}): pick a free port or 0") from None
    bound_port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, log_level="warning", access_log=False
    )
    started = threading.Event()
    server = _Server(config, started)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit from uvicorn included: report, not crash
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=run, name=f"uvicorn-{host}:{bound_port}", daemon=True)
    thread.start()
    try:
        if not started.wait(_STARTUP_TIMEOUT) or not server.started:
            server.should_exit = True
            why = f" ({failure[0]!r})" if failure else ""
            raise ServeError(f"uvicorn did not start on {host}:{bound_port}{why}")
        yield ServedApp(host, bound_port)
    finally:
        server.should_exit = True
        thread.join(_SHUTDOWN_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(_SHUTDOWN_TIMEOUT)
        sock.close()


@contextmanager
def serve_gateway(
    gateway: Gateway, host: str = "127.0.0.1", port: int = 0
) -> Iterator[ServedGateway]:
    """Serve ``gateway`` on ``host:port`` (0: a free port) until the block ends."""
    with serve_asgi(asgi_app(gateway.handle), host, port) as served:
        yield ServedGateway(served.host, served.port, gateway)


class _Server(uvicorn.Server):
    """A uvicorn server that says when it has started, instead of being polled."""

    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._started_event.set()


def _url(scope: Scope) -> str:
    scheme = scope.get("scheme", "http")
    server = scope.get("server") or ("127.0.0.1", 80)
    host = f"[{server[0]}]" if ":" in str(server[0]) else str(server[0])
    if server[1] is not None:
        host = f"{host}:{server[1]}"
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    target = path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    return f"{scheme}://{host}{target}"
