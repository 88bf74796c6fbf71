"""Connector drivers: answers, failures as values, bounded waits, process start and stop."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.drivers import (
    ASGIApp,
    CommandDriver,
    ConnectorLoadError,
    ConnectorStartError,
    InProcessDriver,
    Message,
    PlatformEnv,
    Receive,
    Scope,
    Send,
    UrlDriver,
    load_connector,
)
from harness.sdk.settings import PluginSettings
from harness.trace import Trace

ENV = PlatformEnv("127.0.0.1", 9, "worker-1", "tok-secret-123")


async def _reply(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"x-mics-next-msg-delay", b"1500")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers JSON (as the SDK does, with text/html) echoing path and body."""
    if scope["type"] != "http":
        return
    message = await receive()
    payload = {"status": "ok", "path": scope["path"], "got": message.get("body", b"").decode()}
    await _reply(send, 200, json.dumps(payload).encode(), b"text/html")


async def html_app(scope: Scope, receive: Receive, send: Send) -> None:
    await _reply(send, 500, b"<html>Internal Server Error</html>", b"text/html")


async def raising_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("connector bug")


async def hanging_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/v1/fast":
        await _reply(send, 200, b"{}", b"application/json")
        return
    await asyncio.Event().wait()


async def blocking_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/v1/block":
        time.sleep(1.5)  # blocks the loop thread: what a sync client in a handler does
    await _reply(send, 200, b"{}", b"application/json")


class LifespanApp:
    """An app with lifespan state (like a Starlette app opening its clients at startup)."""

    def __init__(self) -> None:
        self.shutdown = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message: Message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["client"] = "opened"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    self.shutdown = True
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = json.dumps({"client": scope["state"].get("client")}).encode()
        await _reply(send, 200, body, b"application/json")


@pytest.fixture
def driver_for() -> Iterator[Any]:
    drivers: list[InProcessDriver] = []

    def make(app: ASGIApp, trace: Trace | None = None) -> InProcessDriver:
        driver = InProcessDriver(app, trace=trace)
        driver.start(ENV)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.stop()


def test_in_process_answer_is_parsed_whatever_the_content_type(driver_for: Any) -> None:
    trace = Trace()
    driver = driver_for(echo_app, trace)
    answer = driver.call("POST", "/v1/troubleshoot", b'{"a":1}', timeout=2)
    assert answer.ok
    assert answer.status == 200
    assert answer.json == {"status": "ok", "path": "/v1/troubleshoot", "got": '{"a":1}'}
    assert answer.body_status == "ok"
    assert answer.delay_seconds == 1.5
    (exchange,) = trace.exchanges(leg="platform->connector")
    assert exchange is answer.exchange
    assert exchange.path == "/v1/troubleshoot"
    assert exchange.status == 200


def test_in_process_non_json_and_exception_are_failures_not_raises(driver_for: Any) -> None:
    answer = driver_for(html_app).call("POST", "/v1/x", b"{}", timeout=2)
    assert (answer.status, answer.failure) == (500, "not-json")
    assert answer.json is None
    crashed = driver_for(raising_app).call("POST", "/v1/x", b"{}", timeout=2)
    assert crashed.failure == "crash"
    assert crashed.status is None
    assert "connector bug" in crashed.detail


def test_in_process_hanging_coroutine_times_out_within_the_limit(driver_for: Any) -> None:
    driver = driver_for(hanging_app)
    started = time.perf_counter()
    answer = driver.call("POST", "/v1/hang", b"{}", timeout=0.3)
    assert time.perf_counter() - started < 1.5
    assert answer.failure == "timeout"
    assert not driver.dead
    assert driver.call("POST", "/v1/fast", b"{}", timeout=1).ok


def test_in_process_blocked_loop_is_marked_dead_then_calls_fail_fast(driver_for: Any) -> None:
    driver = driver_for(blocking_app)
    answer = driver.call("POST", "/v1/block", b"{}", timeout=0.2)
    assert answer.failure == "timeout"
    assert "blocked its event loop" in answer.detail
    assert driver.dead
    started = time.perf_counter()
    fast = driver.call("POST", "/v1/other", b"{}", timeout=5)
    assert fast.failure == "timeout"
    assert "dead" in fast.detail
    assert time.perf_counter() - started < 2.5  # it does not wait out the 5 s timeout
    time.sleep(1.5)  # the handler's own sleep ends: the loop answers again
    assert driver.call("POST", "/v1/other", b"{}", timeout=1).ok


def test_in_process_runs_the_lifespan_and_shares_its_state() -> None:
    app = LifespanApp()
    driver = InProcessDriver(app)
    driver.start(ENV)
    assert driver.call("GET", "/v1/status", None, timeout=1).json == {"client": "opened"}
    driver.stop()
    assert app.shutdown
    assert driver.call("GET", "/v1/status", None, timeout=1).failure == "connection"


SERVER = textwrap.dedent(
    """
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code, payload):
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._answer(200, {"status": "ok"})

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            got = self.rfile.read(length).decode()
            if self.path == "/v1/exit":
                os._exit(3)
            keys = ["GATEWAY_HOST", "GATEWAY_PORT", "PLUGIN_WORKER_ID", "EXTRA"]
            self._answer(200, {"env": {k: os.environ.get(k) for k in keys}, "got": got})

        def log_message(self, *args):
            pass

    print("listening", flush=True)
    HTTPServer(("127.0.0.1", int(os.environ["PLUGIN_PORT"])), Handler).serve_forever()
    """
)


def _script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return f"{sys.executable} {path}"


def test_command_driver_starts_calls_and_stops_a_process(tmp_path: Path) -> None:
    driver = CommandDriver(_script(tmp_path, "server.py", SERVER), {"EXTRA": "x"})
    driver.start(ENV)
    try:
        answer = driver.call("POST", "/v1/troubleshoot", b'{"q":1}', timeout=5)
        assert answer.ok
        assert answer.json["env"] == {
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": "9",
            "PLUGIN_WORKER_ID": "worker-1",
            "EXTRA": "x",
        }
        assert answer.json["got"] == '{"q":1}'
        assert "listening" in driver.output_tail()
        process = driver.process
        assert process is not None
        crashed = driver.call("POST", "/v1/exit", b"{}", timeout=5)
        assert crashed.failure in ("crash", "connection")
    finally:
        driver.stop()
    assert process.poll() is not None
    assert driver.call("GET", "/v1/status", None, timeout=1).failure == "connection"


def test_command_driver_that_never_listens_raises_with_its_output(tmp_path: Path) -> None:
    script = 'import time\nprint("loading config...", flush=True)\ntime.sleep(60)\n'
    driver = CommandDriver(_script(tmp_path, "slow.py", script), start_timeout=1.0, stop_grace=1)
    started = time.perf_counter()
    with pytest.raises(ConnectorStartError) as caught:
        driver.start(ENV)
    assert time.perf_counter() - started < 4
    assert "loading config..." in str(caught.value)
    assert "GET /v1/status" in str(caught.value)
    assert driver.process is None


def test_command_driver_that_exits_raises_at_once_with_its_output(tmp_path: Path) -> None:
    script = 'import sys\nprint("missing PARTNER_KEY", flush=True)\nsys.exit(2)\n'
    driver = CommandDriver(_script(tmp_path, "exit.py", script), start_timeout=10)
    started = time.perf_counter()
    with pytest.raises(ConnectorStartError) as caught:
        driver.start(ENV)
    assert time.perf_counter() - started < 5
    assert "exited with code 2" in str(caught.value)
    assert "missing PARTNER_KEY" in caught.value.output


def test_url_driver_reports_an_unreachable_connector() -> None:
    from harness.drivers import free_port

    driver = UrlDriver(f"http://127.0.0.1:{free_port()}", start_timeout=0.3)
    with pytest.raises(ConnectorStartError, match="did not answer GET /v1/status"):
        driver.start(ENV)
    answer = driver.call("POST", "/v1/x", b"{}", timeout=0.5)
    assert answer.failure == "connection"
    driver.stop()


# --------------------------------------------------------------------------- load_connector


class ConnectorClass:
    def __init__(self, settings: PluginSettings) -> None:
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await echo_app(scope, receive, send)


def connector_factory(settings: PluginSettings) -> ASGIApp:
    return ConnectorClass(settings)


NOT_A_CONNECTOR = 42
SETTINGS = PluginSettings(worker_id="w", authentication_token="t")


def test_load_connector_accepts_a_class_a_factory_and_an_app() -> None:
    by_class = load_connector(f"{__name__}:ConnectorClass", SETTINGS)
    assert isinstance(by_class, ConnectorClass)
    assert by_class.settings is SETTINGS
    assert isinstance(load_connector(connector_factory, SETTINGS), ConnectorClass)
    assert load_connector(echo_app, SETTINGS) is echo_app
    assert load_connector(f"{__name__}:echo_app", SETTINGS) is echo_app


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("no_colon_here", "is not 'module:attribute'"),
        ("no_such_module_xyz:App", "no module named 'no_such_module_xyz'"),
        (f"{__name__}:Missing", "has no attribute 'Missing'"),
        (f"{__name__}:NOT_A_CONNECTOR", "is not a connector"),
    ],
)
def test_load_connector_errors_name_the_fix(spec: str, fragment: str) -> None:
    with pytest.raises(ConnectorLoadError, match=fragment.replace("(", r"\(")):
        load_connector(spec, SETTINGS)
