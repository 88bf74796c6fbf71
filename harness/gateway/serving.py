"""Serving a sync ``handle(httpx.Request) -> httpx.Response`` over loopback with uvicorn.

``asgi_app`` adapts the handler to ASGI; ``serve_asgi`` runs any ASGI app in a background
thread on a socket bound before the thread starts, so the port is known and nothing polls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from fake_partner.server import RequestLog, ServeError, listen
from fake_partner.server import serve_asgi as uvicorn_thread
from harness.gateway.core import Gateway

__all__ = ["ServeError", "ServedApp", "ServedGateway", "asgi_app", "serve_asgi", "serve_gateway"]

Handler = Callable[[httpx.Request], httpx.Response]


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
def serve_asgi(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, log: RequestLog | None = None
) -> Iterator[ServedApp]:
    """Serve ``app`` with uvicorn in a background thread until the block ends (each
    request logged to ``log`` when given)."""
    try:
        sock = listen(host, port)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port} ({exc}): pick a free port or 0") from None
    served = ServedApp(host, sock.getsockname()[1])
    with uvicorn_thread(app, sock, log=log):
        yield served


@contextmanager
def serve_gateway(
    gateway: Gateway, host: str = "127.0.0.1", port: int = 0, *, log: RequestLog | None = None
) -> Iterator[ServedGateway]:
    """Serve ``gateway`` on ``host:port`` (0: a free port) until the block ends (each
    request logged to ``log`` when given)."""
    with serve_asgi(asgi_app(gateway.handle), host, port, log=log) as served:
        yield ServedGateway(served.host, served.port, gateway)


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
