"""A connector that answers every request with a 50 MB JSON body (for ``python -m bench``).

``feed-harness verify --connector bench.big_connector:app`` must give its verdict (it
fails) while the trace keeps each answer's compact record and a 64 KiB prefix only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

SIZE = 50 * 1024 * 1024
_BODY = json.dumps({"status": "ok", "message": "x" * SIZE}).encode()

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the request, answer 200 with the 50 MB body."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body"))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BODY})
