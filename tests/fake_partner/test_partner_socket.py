"""Served sockets answer keep-alive requests without a Nagle stall: TCP_NODELAY is set.

Behaviour, not timing (the bench times it): every connection accepted on a socket made by
``fake_partner.server.listen`` (the served partner and the served gateway) has
``TCP_NODELAY`` on, as asyncio sets it only for sockets whose protocol is TCP.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import pytest

from fake_partner.app import TRANSPORT_KEY
from fake_partner.loopback import listen, serve_asgi
from fake_partner.server import _DroppableH11Protocol

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _nodelay_of_accepted(host: str) -> int:
    """Accept one connection on ``listen(host, 0)`` through asyncio; its TCP_NODELAY."""

    async def main() -> int:
        sock = listen(host, 0)
        accepted: asyncio.Future[asyncio.BaseTransport] = asyncio.get_running_loop().create_future()

        class Capture(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted.set_result(transport)

        server = await asyncio.get_running_loop().create_server(Capture, sock=sock)
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection(host, port)
        transport = await asyncio.wait_for(accepted, 5)
        value = int(
            transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        )
        writer.close()
        transport.close()
        server.close()
        await server.wait_closed()
        return value

    return asyncio.run(main())


def test_listen_makes_a_tcp_socket() -> None:
    sock = listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.type == socket.SOCK_STREAM
    finally:
        sock.close()


def test_connections_accepted_on_a_listen_socket_have_tcp_nodelay() -> None:
    assert _nodelay_of_accepted("127.0.0.1") != 0


def test_ipv6_connections_have_tcp_nodelay_too() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        probe = listen("::1", 0)
    except OSError:
        pytest.skip("::1 is not configured here")
    probe.close()
    assert _nodelay_of_accepted("::1") != 0


async def _report_nodelay(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app answering the served connection's TCP_NODELAY, as seen by the server."""
    transport = scope["state"][TRANSPORT_KEY]
    value = transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(int(value)).encode()})


def test_uvicorn_serves_keep_alive_requests_on_a_nodelay_socket() -> None:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    with (
        serve_asgi(_report_nodelay, sock, http=_DroppableH11Protocol),
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        first = client.get("/")
        second = client.get("/")  # the same keep-alive connection
    assert first.text != "0"
    assert second.text != "0"
