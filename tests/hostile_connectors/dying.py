"""The reference connector, served like an SDK plugin, that dies (exit code 7) at its
first ``POST /v1/user_segment_update`` after its third connection call (the lifecycle run
probes connection twice with an empty body, then once after creation): creation and
connection work, then it is gone."""

from __future__ import annotations

import os
from typing import Any

import uvicorn

from harness.drivers import load_connector
from harness.sdk.settings import PluginSettings


def main() -> None:
    settings = PluginSettings.from_env()
    app = load_connector("harness.reference:ReferenceConnector", settings)

    connected: list[bool] = []

    async def dying(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path")
        if path == "/v1/external_segment_connection":
            connected.append(True)
        if len(connected) >= 3 and path == "/v1/user_segment_update":
            print("dying at the first update", flush=True)
            os._exit(7)
        await app(scope, receive, send)

    uvicorn.run(dying, host="127.0.0.1", port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
