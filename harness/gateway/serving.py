"""Serving a sync ``handle(httpx.Request) -> httpx.Response`` over loopback with uvicorn.

``asgi_app`` adapts the handler to ASGI; ``serve_asgi`` runs any ASGI app in a background
thread on a socket bound before the thread starts, so the port is known and nothing polls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from fake_partner.inbound import UnreadableRequestError, check_request
from fake_partner.loopback import JsonErrorH11Protocol, RequestLog, ServeError, listen, no_op
from fake_partner.loopback import serve_asgi as uvicorn_thread
from harness.gateway.bodies import GatewayHttpError, error_answer
from harness.gateway.core import Gateway

__all__ = ["ServeError", "ServedApp", "ServedGateway", "asgi_app", "serve_asgi", "serve_gateway"]

Handler = Callable[[httpx.Request], httpx.Response]
MAX_BODY_BYTES = 64 * 1024 * 1024
"""The most the served gateway reads of one body (configuration files are the big ones)."""


@dataclass(frozen=True, slots=True)
class ServedApp:
    """Where a served app listens."""

    host: str
    port: int
    stop_soon: Callable[[], None] = field(default=no_op, compare=False, repr=False, kw_only=True)
    """Begin the server's shutdown now (the serving block's end waits for it)."""

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
        try:
            request = await _request(scope, receive)
        except UnreadableRequestError as refusal:
            response = error_answer(GatewayHttpError(refusal.status, refusal.message))
        except _DisconnectedError:
            return
        else:
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
    with uvicorn_thread(app, sock, http=JsonErrorH11Protocol, log=log) as stop_soon:  # SDK 400s
        yield dataclasses.replace(served, stop_soon=stop_soon)


@contextmanager
def serve_gateway(
    gateway: Gateway, host: str = "127.0.0.1", port: int = 0, *, log: RequestLog | None = None
) -> Iterator[ServedGateway]:
    """Serve ``gateway`` on ``host:port`` (0: a free port) until the block ends (each
    request logged to ``log`` when given)."""
    with serve_asgi(asgi_app(gateway.handle), host, port, log=log) as served:
        yield ServedGateway(served.host, served.port, gateway, stop_soon=served.stop_soon)


class _DisconnectedError(Exception):
    """The client went away before its body arrived."""


async def _request(scope: Scope, receive: Receive) -> httpx.Request:
    """The request as httpx sees it, once method, target, headers and size are readable."""
    path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
    query: bytes = scope.get("query_string", b"")
    target = path + (b"?" + query if query else b"")
    headers = [(bytes(k), bytes(v)) for k, v in scope["headers"]]
    method = check_request(scope["method"], target, headers)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _DisconnectedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise UnreadableRequestError(
                413,
                "request body",
                f"the body is over {MAX_BODY_BYTES} bytes, more than any gateway call needs: "
                "send a smaller file",
            )
        chunks.append(chunk)
        more = message.get("more_body", False)
    try:
        return httpx.Request(method, _url(scope, target), headers=headers, content=b"".join(chunks))
    except (httpx.InvalidURL, ValueError) as exc:
        raise UnreadableRequestError(400, "target", f"not a valid URL target: {exc}") from None


def _url(scope: Scope, target: bytes) -> str:
    scheme = scope.get("scheme", "http")
    server = scope.get("server") or ("127.0.0.1", 80)
    host = f"[{server[0]}]" if ":" in str(server[0]) else str(server[0])
    if server[1] is not None:
        host = f"{host}:{server[1]}"
    return f"{scheme}://{host}{target.decode('ascii')}"
