"""The partner as an ASGI application: the same synchronous core behind an async face.

A dropped connection (fault ``drop``) closes the socket without an answer when served by
``fake_partner.server`` (its uvicorn protocol puts the connection's transport in the
scope's ``state``). Under any other server the app starts a 503 answer and raises
:class:`ConnectionDroppedError`, so the server breaks the connection mid-answer: the client
fails loudly (incomplete answer) rather than reading a normal error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import httpx

from fake_partner.responses import Dropped

if TYPE_CHECKING:
    from fake_partner.partner import Partner

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TRANSPORT_KEY = "fake_partner.transport"
"""Key of the connection's transport in ``scope["state"]`` (set by ``fake_partner.server``)."""

DISCONNECT_WAIT_SECONDS = 5.0


class ConnectionDroppedError(Exception):
    """Raised by the app to make a foreign ASGI server break the connection."""


class ASGIApp:
    """ASGI 3 application wrapping :meth:`Partner.respond`."""

    def __init__(self, partner: Partner, base_url: str | None = None) -> None:
        self.partner = partner
        self.base_url = base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        request = httpx.Request(
            scope["method"],
            self._url(scope),
            headers=[(bytes(k), bytes(v)) for k, v in scope["headers"]],
            content=body,
        )
        answer = self.partner.respond(request)
        if isinstance(answer, Dropped):
            await _drop(scope, receive, send)
            return
        headers = [(k.lower(), v) for k, v in answer.headers.raw if k.lower() != b"content-length"]
        if answer.status_code not in (204, 304):
            headers.append((b"content-length", str(len(answer.content)).encode()))
        await send(
            {"type": "http.response.start", "status": answer.status_code, "headers": headers}
        )
        await send({"type": "http.response.body", "body": answer.content, "more_body": False})

    def _url(self, scope: Scope) -> str:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        target = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        if self.base_url is not None:
            return self.base_url.rstrip("/") + target
        host: str | None = next(
            (bytes(v).decode("latin-1") for k, v in scope["headers"] if k == b"host"), None
        )
        if host is None:
            server = scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{scope.get('scheme', 'http')}://{host}{target}"


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _drop(scope: Scope, receive: Receive, send: Send) -> None:
    transport = (scope.get("state") or {}).get(TRANSPORT_KEY)
    if transport is not None:
        transport.close()
        # Let the server notice the closed connection so it does not answer on it.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(_until_disconnect(receive), DISCONNECT_WAIT_SECONDS)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-length", b"1000"), (b"connection", b"close")],
        }
    )
    raise ConnectionDroppedError("fault 'drop': the partner breaks this connection")


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
