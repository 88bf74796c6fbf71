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
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import httpx

from fake_partner.inbound import UnreadableRequestError, check_request
from fake_partner.pipeline import Dropped, refused

if TYPE_CHECKING:
    from fake_partner.partner import Partner

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TRANSPORT_KEY = "fake_partner.transport"
"""Key of the connection's transport in ``scope["state"]`` (set by ``fake_partner.server``)."""

DISCONNECT_WAIT_SECONDS = 5.0
BODY_READ_FACTOR = 4
"""A body is read up to this many times the scenario's ``max_body_bytes``, then refused 413."""
_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


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
        limit = BODY_READ_FACTOR * self.partner.effective_scenario.limits.max_body_bytes
        answer: httpx.Response | Dropped
        try:
            request = await self._request(scope, receive, limit)
        except UnreadableRequestError as refusal:
            answer = refused(self.partner, refusal)
        else:
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

    async def _request(self, scope: Scope, receive: Receive, limit: int) -> httpx.Request:
        """The request as httpx sees it, once its method, target and headers are readable."""
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
        query: bytes = scope.get("query_string", b"")
        target = raw_path + (b"?" + query if query else b"")
        headers = [(bytes(k), bytes(v)) for k, v in scope["headers"]]
        method = check_request(scope["method"], target, headers)
        body = await _read_body(receive, limit)
        try:
            return httpx.Request(method, self._url(scope, target), headers=headers, content=body)
        except (httpx.InvalidURL, ValueError) as error:
            raise UnreadableRequestError(
                400, "target", f"the request target is not a valid URL: {error}"
            ) from None

    def _url(self, scope: Scope, target: bytes) -> str:
        text = target.decode("ascii")
        if self.base_url is not None:
            return self.base_url.rstrip("/") + text
        host: str | None = next(
            (bytes(v).decode("ascii") for k, v in scope["headers"] if k == b"host"), None
        )
        if host is None or not _HOST.fullmatch(host):
            server = scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{scope.get('scheme', 'http')}://{host}{text}"


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The body, or a 413 :class:`UnreadableRequestError` as soon as it passes ``limit`` bytes."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise UnreadableRequestError(
                413,
                "request body",
                f"request body is over {limit} bytes; the partner stopped reading: split the batch",
            )
        chunks.append(chunk)
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
