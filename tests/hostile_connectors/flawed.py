"""The reference connector served like an SDK plugin, with one flaw: ``python flawed.py
FLAW`` on ``127.0.0.1:$PLUGIN_PORT``. Flaws:

* ``dies``: exits with code 7 at its first ``POST /v1/user_segment_update`` after its
  third connection call (the lifecycle run probes connection twice with an empty body,
  then once after creation): creation and connection work, then it is gone;
* ``hangs-on-empty-bodies``: never answers a request whose body is empty or ``{}`` (the
  lifecycle run's empty-body probes); everything else works.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import uvicorn

from harness.drivers import load_connector
from harness.sdk.settings import PluginSettings

FLAW = sys.argv[1] if len(sys.argv) > 1 else "dies"


def main() -> None:
    settings = PluginSettings.from_env()
    app = load_connector("harness.reference:ReferenceConnector", settings)
    connections: list[str] = []

    async def flawed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/v1/external_segment_connection":
            connections.append(path)
        if FLAW == "dies" and len(connections) >= 3 and path == "/v1/user_segment_update":
            print("dying at the first update", flush=True)
            os._exit(7)
        message = await receive()
        body = message.get("body", b"")
        if FLAW == "hangs-on-empty-bodies" and scope["method"] == "POST" and body in (b"", b"{}"):
            await asyncio.Event().wait()
        replayed = [message]

        async def again() -> Any:
            return replayed.pop() if replayed else await receive()

        await app(scope, again, send)

    uvicorn.run(flawed, host="127.0.0.1", port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
