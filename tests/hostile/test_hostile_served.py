"""The same hostile requests over a real socket to each served app (uvicorn on loopback):
even what h11 or llhttp cannot parse (a raw non-ASCII byte in the target) gets a JSON 4xx
in the server's own format, not uvicorn's plain text. ``serve-connector`` is the real
command in a subprocess (it serves with uvicorn's httptools protocol)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from fake_partner import Partner, serve
from harness.gateway import Gateway, serve_asgi, serve_gateway
from harness.reference import ReferenceConnector
from harness.sdk import PluginSettings

CASES = {
    "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute-form": b"GET http://evil.example/v1/accounts HTTP/1.1\r\nHost: x\r\n\r\n",
    "basic-e9": b"GET /v1/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xe9\r\n\r\n",
    "utf8-header": b"GET /v1/accounts HTTP/1.1\r\nHost: x\r\nX-Note: caf\xc3\xa9\r\n\r\n",
    "64KiB-path": b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "raw-e9-target": b"GET /v1/\xe9 HTTP/1.1\r\nHost: x\r\n\r\n",
    "deep-json": b"POST /v1/log_level HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 20000\r\n\r\n" + b"[" * 10_000 + b"]" * 10_000,
}


def _exchange(port: int, raw: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(head.split(b" ")[1]), body


def _partner_format(body: Any) -> bool:
    error = body.get("error")
    return isinstance(error, dict) and {"status", "code", "message", "request_id"} <= set(error)


def _linkedin_format(body: Any) -> bool:
    return set(body) == {"status", "serviceErrorCode", "code", "message"}


def _meta_format(body: Any) -> bool:
    error = body.get("error")
    return isinstance(error, dict) and {"message", "type", "code", "fbtrace_id"} <= set(error)


def _sdk_format(body: Any) -> bool:
    return body.get("status") == "error" and isinstance(body.get("message"), str)


@contextmanager
def _served(name: str) -> Iterator[tuple[int, Callable[[Any], bool]]]:
    if name == "partner":
        with serve(Partner()) as partner:
            yield partner.port, _partner_format
    elif name == "partner-linkedin":
        with serve(Partner(dialect="linkedin")) as partner:
            yield partner.port, _linkedin_format
    elif name == "partner-meta":
        with serve(Partner(dialect="meta")) as partner:
            yield partner.port, _meta_format
    elif name == "gateway":
        with serve_gateway(Gateway()) as gateway:
            yield gateway.port, _sdk_format
    elif name == "connector":
        connector = ReferenceConnector(PluginSettings(worker_id="w", authentication_token="t"))
        with serve_asgi(connector) as served:
            yield served.port, _sdk_format
    else:
        with _serve_connector_command() as port:
            yield port, _sdk_format


@contextmanager
def _serve_connector_command() -> Iterator[int]:
    """``feed-harness serve-connector`` in a subprocess, until it says it serves."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {
        **os.environ,
        "PLUGIN_PORT": str(port),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": "9",
        "PLUGIN_WORKER_ID": "w",
        "PLUGIN_AUTHENTICATION_TOKEN": "t",
    }
    command = [sys.executable, "-m", "harness", "serve-connector", "-q"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("serving "), "serve-connector did not start"
        yield port
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)


@pytest.mark.parametrize(
    "name",
    ["partner", "partner-linkedin", "partner-meta", "gateway", "connector", "serve-connector"],
)
def test_served_apps_answer_hostile_bytes_with_their_json_4xx(name: str) -> None:
    with _served(name) as (port, in_format):
        for case, raw in CASES.items():
            status, body = _exchange(port, raw)
            assert 400 <= status < 500, (name, case, status, body[:200])
            assert in_format(json.loads(body)), (name, case, body[:200])
