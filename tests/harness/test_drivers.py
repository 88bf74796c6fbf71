"""Connector drivers: answers, failures as values, bounded waits, process start and stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.drivers import (
    ASGIApp,
    Bounds,
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
from harness.drivers.base import NOT_HTTP, PROBE_TAG
from harness.drivers.command import _group_alive
from harness.generators import make_users
from harness.platform import Platform
from harness.sdk.settings import PluginSettings
from harness.trace import Trace
from tests.hostile_connectors import HOSTILE, running

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


async def stuck_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Blocks its loop for long (only an interrupt ends it early), hangs, or answers."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/v1/block":
        time.sleep(30)
    elif scope["path"] == "/v1/hang":
        await asyncio.Event().wait()
    elif scope["path"] == "/v1/slow":
        await asyncio.sleep(0.5)
    elif scope["path"] == "/v1/block-in-callback":
        asyncio.get_running_loop().call_soon(time.sleep, 30)  # not in the call's task
        await asyncio.sleep(0)
    await _reply(send, 200, b"{}", b"application/json")


class LifespanApp:
    """An app with lifespan state (like a Starlette app opening its clients at startup)."""

    def __init__(self, *, startups_allowed: int = 100) -> None:
        self.startups = 0
        self.startups_allowed = startups_allowed
        self.shutdown = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message: Message = await receive()
                if message["type"] == "lifespan.startup":
                    self.startups += 1
                    if self.startups > self.startups_allowed:
                        await send({"type": "lifespan.startup.failed", "message": "no licence"})
                        return
                    scope["state"]["client"] = f"opened-{self.startups}"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    self.shutdown = True
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = json.dumps({"client": scope["state"].get("client")}).encode()
        await _reply(send, 200, body, b"application/json")


MODES = ["same-thread", "thread"]


@pytest.fixture
def driver_for() -> Iterator[Any]:
    drivers: list[InProcessDriver] = []

    def make(app: ASGIApp, trace: Trace | None = None, mode: str = "auto") -> InProcessDriver:
        driver = InProcessDriver(app, trace=trace, mode=mode)  # type: ignore[arg-type]
        driver.start(ENV)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.stop()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def alarm() -> Iterator[list[int]]:
    """A user's own SIGALRM handler (recording), restored with no timer afterwards."""
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    yield fired
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_in_process_answer_is_parsed_whatever_the_content_type(driver_for: Any, mode: str) -> None:
    trace = Trace()
    driver = driver_for(echo_app, trace, mode)
    assert driver.mode == mode
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


def test_in_process_non_json_and_exception_are_failures_not_raises(
    driver_for: Any, mode: str
) -> None:
    answer = driver_for(html_app, mode=mode).call("POST", "/v1/x", b"{}", timeout=2)
    assert (answer.status, answer.failure) == (500, "not-json")
    assert answer.json is None
    crashed = driver_for(raising_app, mode=mode).call("POST", "/v1/x", b"{}", timeout=2)
    assert crashed.failure == "crash"
    assert crashed.status is None
    assert "connector bug" in crashed.detail


def test_in_process_hanging_coroutine_times_out_within_the_limit(
    driver_for: Any, mode: str
) -> None:
    trace = Trace()
    driver = driver_for(hanging_app, trace, mode)
    started = time.perf_counter()
    answer = driver.call("POST", "/v1/hang", b"{}", timeout=0.3)
    assert time.perf_counter() - started < 3  # bounded by the timeout, never a hang
    assert answer.failure == "timeout"
    assert "blocked" not in answer.detail
    assert not driver.dead
    assert driver.call("POST", "/v1/fast", b"{}", timeout=1).ok
    assert [e.failure for e in trace.exchanges(leg="platform->connector")] == ["timeout", None]


def test_in_process_blocked_loop_is_marked_dead_then_calls_fail_fast(driver_for: Any) -> None:
    driver = driver_for(blocking_app, mode="thread")
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


@pytest.mark.parametrize("path", ["/v1/block", "/v1/block-in-callback"])
def test_in_process_same_thread_blocked_loop_is_interrupted_not_waited_for(
    driver_for: Any, path: str
) -> None:
    trace = Trace()
    driver = driver_for(stuck_app, trace, "same-thread")
    loop = driver.loop
    started = time.perf_counter()
    answer = driver.call("POST", path, b"{}", timeout=0.2)
    assert time.perf_counter() - started < 10  # far from the handler's 30 s sleep
    assert answer.failure == "timeout"
    assert "blocked its event loop" in answer.detail
    assert not driver.dead
    assert driver.loop is loop  # interrupted inside a task or callback: the loop is intact
    assert driver.call("POST", "/v1/other", b"{}", timeout=1).ok
    failures = [e.failure for e in trace.exchanges(leg="platform->connector")]
    assert failures == ["timeout", None]


@pytest.mark.parametrize("restart_fails", [False, True])
def test_in_process_same_thread_loop_broken_by_a_block_is_replaced(
    driver_for: Any, monkeypatch: pytest.MonkeyPatch, restart_fails: bool
) -> None:
    app = LifespanApp(startups_allowed=1 if restart_fails else 100)
    driver = driver_for(app, mode="same-thread")
    loop = driver.loop
    real_time = loop.time
    armed = [True]

    def time_that_blocks() -> float:
        # The loop's own machinery blocks (not a task): the interrupt lands outside any task.
        if armed and loop.is_running():
            armed.clear()
            time.sleep(30)
        return real_time()

    monkeypatch.setattr(loop, "time", time_that_blocks)
    started = time.perf_counter()
    answer = driver.call("GET", "/v1/status", None, timeout=0.2)
    assert time.perf_counter() - started < 10
    assert answer.failure == "timeout"
    assert "blocked its event loop" in answer.detail
    assert "event loop was replaced" in answer.detail
    assert driver.loop is not loop
    assert app.startups == 2
    if restart_fails:
        assert driver.dead
        assert "no licence" in answer.detail
        dead = driver.call("GET", "/v1/status", None, timeout=5)
        assert dead.failure == "timeout"
        assert "dead" in dead.detail
    else:
        assert not driver.dead
        again = driver.call("GET", "/v1/status", None, timeout=1)
        assert again.json == {"client": "opened-2"}


def test_in_process_same_thread_restores_a_previous_alarm_handler_and_timer(
    driver_for: Any, alarm: list[int]
) -> None:
    handler = signal.getsignal(signal.SIGALRM)
    driver = driver_for(stuck_app, mode="same-thread")
    signal.setitimer(signal.ITIMER_REAL, 60.0)
    assert driver.call("POST", "/v1/fast", b"{}", timeout=1).ok
    assert driver.call("POST", "/v1/hang", b"{}", timeout=0.2).failure == "timeout"
    assert driver.call("POST", "/v1/block", b"{}", timeout=0.2).failure == "timeout"
    assert signal.getsignal(signal.SIGALRM) is handler
    left, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 30 < left < 60  # still armed, for what is left of it
    assert alarm == []


def test_in_process_same_thread_leaves_an_earlier_alarm_to_its_owner(
    driver_for: Any, alarm: list[int]
) -> None:
    driver = driver_for(stuck_app, mode="same-thread")
    signal.setitimer(signal.ITIMER_REAL, 0.1)  # due before the call's timeout
    answer = driver.call("POST", "/v1/slow", b"{}", timeout=5)
    assert answer.ok
    assert alarm == [signal.SIGALRM]  # the user's handler got its own alarm
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_in_process_auto_mode_is_same_thread_only_where_signals_work() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("needs the main thread")
    here = InProcessDriver(echo_app)
    here.start(ENV)
    assert here.mode == "same-thread"
    assert here.call("POST", "/v1/x", b"{}", timeout=1).ok
    here.stop()
    seen: dict[str, Any] = {}

    def elsewhere() -> None:
        driver = InProcessDriver(echo_app)
        driver.start(ENV)
        seen["worker thread"] = (driver.mode, driver.call("POST", "/v1/x", b"{}", timeout=1).ok)
        driver.stop()

    worker = threading.Thread(target=elsewhere)
    worker.start()
    worker.join(10)

    async def in_a_running_loop() -> None:
        driver = InProcessDriver(echo_app)
        driver.start(ENV)
        seen["running loop"] = (driver.mode, driver.call("POST", "/v1/x", b"{}", timeout=1).ok)
        driver.stop()

    asyncio.run(in_a_running_loop())
    assert seen == {"worker thread": ("thread", True), "running loop": ("thread", True)}


def test_in_process_same_thread_driver_called_from_elsewhere_still_answers(
    driver_for: Any,
) -> None:
    driver = driver_for(blocking_app, mode="same-thread")
    seen: dict[str, Any] = {}

    def from_a_thread() -> None:
        seen["thread"] = driver.call("POST", "/v1/x", b"{}", timeout=1).ok
        blocked = driver.call("POST", "/v1/block", b"{}", timeout=0.2)  # no backstop here
        seen["blocked"] = (blocked.failure, "blocked its event loop" in blocked.detail)

    worker = threading.Thread(target=from_a_thread)
    worker.start()
    worker.join(10)
    assert seen == {"thread": True, "blocked": ("timeout", True)}
    assert driver.dead  # the helper thread is still in the 1.5 s sleep
    started = time.perf_counter()
    fast = driver.call("POST", "/v1/x", b"{}", timeout=5)
    assert time.perf_counter() - started < 2.5
    assert (fast.failure, "dead" in fast.detail) == ("timeout", True)
    time.sleep(1.5)  # the sleep ends: the loop is free again
    assert not driver.dead

    async def in_a_running_loop() -> bool:
        return bool(driver.call("POST", "/v1/x", b"{}", timeout=1).ok)

    assert asyncio.run(in_a_running_loop())
    assert driver.call("POST", "/v1/x", b"{}", timeout=1).ok


def test_in_process_reference_connector_keeps_one_loop_through_a_feed_life() -> None:
    with Platform() as platform:
        driver = platform.driver
        assert isinstance(driver, InProcessDriver)
        on_main = threading.current_thread() is threading.main_thread()
        assert driver.mode == ("same-thread" if on_main else "thread")
        loop = driver.loop
        feed = platform.new_feed()
        assert feed.create().ok
        assert feed.connect().ok
        feed.upsert(make_users(40, seed=3))
        feed.flush()
        assert feed.partner_membership() == feed.expected_membership()
        assert driver.loop is loop
        assert not driver.dead


def test_in_process_mode_misuse_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="use 'auto'"):
        InProcessDriver(echo_app, mode="fast")  # type: ignore[arg-type]
    errors: list[BaseException] = []

    def start_elsewhere() -> None:
        try:
            InProcessDriver(echo_app, mode="same-thread").start(ENV)
        except RuntimeError as exc:
            errors.append(exc)

    worker = threading.Thread(target=start_elsewhere)
    worker.start()
    worker.join(10)
    assert len(errors) == 1
    assert "mode='thread'" in str(errors[0])


def test_in_process_runs_the_lifespan_and_shares_its_state(mode: str) -> None:
    app = LifespanApp()
    driver = InProcessDriver(app, mode=mode)  # type: ignore[arg-type]
    driver.start(ENV)
    assert driver.call("GET", "/v1/status", None, timeout=1).json == {"client": "opened-1"}
    driver.stop()
    assert app.shutdown
    assert driver.call("GET", "/v1/status", None, timeout=1).failure == "connection"


def test_in_process_lifespan_startup_failure_is_a_start_error(mode: str) -> None:
    driver = InProcessDriver(LifespanApp(startups_allowed=0), mode=mode)  # type: ignore[arg-type]
    with pytest.raises(ConnectorStartError, match="no licence"):
        driver.start(ENV)
    driver.stop()


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


def test_command_driver_masks_the_plugin_token_the_connector_prints(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "print('token is', os.environ['PLUGIN_AUTHENTICATION_TOKEN'], flush=True)\n"
        "sys.exit(3)\n"
    )
    driver = CommandDriver(_script(tmp_path, "leak.py", script), start_timeout=10)
    with pytest.raises(ConnectorStartError) as caught:
        driver.start(ENV)
    assert "token is ***" in caught.value.output
    assert ENV.authentication_token not in caught.value.output
    assert ENV.authentication_token not in str(caught.value)


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


def test_free_port_is_bindable_and_outside_the_kernels_ephemeral_range() -> None:
    from harness.drivers import free_port

    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(5):
        port = free_port()
        assert not low <= port <= high  # no other process's bind(0) can take it meanwhile
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


# --------------------------------------------------------------------------- bounds


async def status_then_hang_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers GET /v1/status at once (or after ``/slow`` 0.5 s), hangs on every call."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/v1/status":
        await _reply(send, 200, b'{"status":"ok"}', b"application/json")
        return
    await asyncio.Event().wait()


async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await asyncio.sleep(0.5)
    await _reply(send, 200, b'{"status":"ok"}', b"application/json")


async def huge_app(scope: Scope, receive: Receive, send: Send) -> None:
    await _reply(send, 200, b'{"data":"' + b"x" * (6 * 1024 * 1024) + b'"}', b"application/json")


@pytest.mark.parametrize(
    ("app", "kind", "fragment"),
    [
        (hanging_app, "lost", "GET /v1/status got none"),
        (status_then_hang_app, "hanging", "GET /v1/status still answers 200"),
        (slow_app, "slow", "GET /v1/status took 0."),
    ],
)
def test_a_driver_gives_up_after_calls_in_a_row_go_unanswered(
    app: ASGIApp, kind: str, fragment: str
) -> None:
    trace = Trace()
    driver = InProcessDriver(app, trace=trace, bounds=Bounds(max_silent_calls=3))
    driver.start(ENV)
    try:
        answers = [driver.call("POST", "/v1/hang", b"{}", timeout=0.2) for _ in range(3)]
        assert [a.failure for a in answers] == ["timeout"] * 3
        assert driver.stall is not None
        assert driver.stall.kind == kind
        assert fragment in driver.stall.reason
        started = time.perf_counter()
        skipped = driver.call("POST", "/v1/hang", b"{}", timeout=5)
        assert time.perf_counter() - started < 1  # not sent: nothing to wait for
        assert skipped.failure == ("connection" if kind == "lost" else "timeout")
        assert skipped.detail.startswith("not sent: ")
    finally:
        driver.stop()
    probes = [e for e in trace.exchanges(leg="platform->connector") if PROBE_TAG in e.tags]
    assert [(p.method, p.path) for p in probes] == [("GET", "/v1/status")]


def test_an_answer_resets_the_count_of_unanswered_calls() -> None:
    bounds = Bounds(max_silent_calls=2)
    driver = InProcessDriver(hanging_app, bounds=bounds)
    driver.start(ENV)
    try:
        for _ in range(3):
            assert driver.call("POST", "/v1/hang", b"{}", timeout=0.1).failure == "timeout"
            assert driver.call("POST", "/v1/fast", b"{}", timeout=1).ok
        assert driver.stall is None
        assert bounds.silent_calls == 0
    finally:
        driver.stop()


def test_the_bounds_call_timeout_and_deadline_override_the_callers() -> None:
    driver = InProcessDriver(hanging_app, bounds=Bounds(call_timeout=0.2))
    driver.start(ENV)
    started = time.perf_counter()
    assert driver.call("POST", "/v1/hang", b"{}", timeout=30).failure == "timeout"
    assert time.perf_counter() - started < 10  # the 0.2 s of the bounds, not the 30 s asked
    driver.stop()
    late = InProcessDriver(echo_app, bounds=Bounds(deadline=0.5))
    late.start(ENV)
    assert late.call("POST", "/v1/x", b"{}", timeout=5).ok
    time.sleep(0.6)
    answer = late.call("POST", "/v1/x", b"{}", timeout=5)
    late.stop()
    assert answer.failure == "timeout"
    assert answer.detail == "not sent: the --deadline of 0.5 s passed"
    assert late.stall is not None
    assert late.stall.kind == "deadline"


def test_a_too_large_in_process_answer_is_cut_and_named(driver_for: Any) -> None:
    answer = driver_for(huge_app).call("POST", "/v1/x", b"{}", timeout=5)
    assert (answer.status, answer.failure) == (200, "not-json")
    assert "is 6.0 MiB" in answer.detail
    assert "too large to judge" in answer.detail
    assert len(answer.body) <= 1024


@pytest.mark.parametrize(
    ("env", "size"),
    [
        ({"HOSTILE_MB": "50"}, "50.0 MiB"),
        ({"HOSTILE_MB": "20", "HOSTILE_CHUNKED": "1"}, "20.0 MiB"),
    ],
    ids=["content-length", "chunked"],
)
def test_a_huge_answer_over_http_is_not_held_in_memory(env: dict[str, str], size: str) -> None:
    import tracemalloc

    command = f"{sys.executable} {HOSTILE} huge"
    driver = CommandDriver(command, env, trace=Trace())
    driver.start(ENV)
    try:
        tracemalloc.start()
        answer = driver.call("POST", "/v1/external_segment_creation", b"{}", timeout=10)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        driver.stop()
    assert (answer.status, answer.failure) == (200, "not-json")
    assert f"is {size}" in answer.detail  # the size, counted when it is not announced
    assert len(answer.body) <= 1024
    assert peak < 16 * 1024 * 1024  # the answer was streamed, not loaded


def test_garbage_over_http_is_named_and_is_not_silence() -> None:
    bounds = Bounds(max_silent_calls=1)
    driver = CommandDriver(f"{sys.executable} {HOSTILE} garbage", bounds=bounds)
    driver.start(ENV)
    try:
        answers = [driver.call("POST", "/v1/x", b"{}", timeout=5) for _ in range(2)]
    finally:
        driver.stop()
    for answer in answers:
        assert answer.failure == "connection"
        assert answer.detail.startswith(f"{NOT_HTTP}: the connector answered bytes")
    assert driver.stall is None  # it answers, badly: the harness does not give up
    assert bounds.silent_calls == 0


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    env = {"HOSTILE_PIDFILE": str(pids), "HOSTILE_CHILD": "1"}
    driver = CommandDriver(f"{sys.executable} {HOSTILE} hang-after-status", env, stop_grace=2)
    driver.start(ENV)
    leader, child = (int(n) for n in pids.read_text().split())
    assert running(child)
    driver.stop()
    assert not running(leader)
    assert not running(child)


def test_stop_ends_the_group_even_when_its_leader_already_exited(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    sleeper = f"{sys.executable} -c 'import time; time.sleep(300)'"
    driver = CommandDriver(f"{sleeper} & echo $! > {pid_file}; exit 5", stop_grace=2)
    with pytest.raises(ConnectorStartError, match="exited with code 5"):
        driver.start(ENV)
    assert not running(int(pid_file.read_text()))  # the shell's background child too


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux's /proc")
def test_a_group_of_zombies_is_not_alive() -> None:
    """``stop`` waits while the group has a running process, not while it has a zombie
    that nobody reaped yet (a container's PID 1 reaps orphans late or never; waiting for
    them cost 1.4 to 1.8 s per connector stop)."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert _group_alive(process.pid)
        assert process.stdin is not None
        process.stdin.close()  # it exits; not reaped yet, so a zombie of group pid
        deadline = time.monotonic() + 30
        while _proc_state(process.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _proc_state(process.pid) == "Z"
        os.killpg(process.pid, 0)  # the kernel still counts it in the group...
        assert not _group_alive(process.pid)  # ...the driver does not
    finally:
        process.kill()
        process.wait()
    assert not _group_alive(process.pid)


def _proc_state(pid: int) -> str:
    line = Path(f"/proc/{pid}/stat").read_text()
    return line[line.rfind(")") + 2 :].split()[0]


def test_a_connector_printing_one_endless_line_keeps_a_bounded_tail() -> None:
    script = (
        "import sys, time; sys.stdout.write('x' * 5_000_000); sys.stdout.flush(); time.sleep(60)"
    )
    driver = CommandDriver([sys.executable, "-c", script], start_timeout=1.0, stop_grace=1)
    with pytest.raises(ConnectorStartError) as caught:
        driver.start(ENV)
    assert 0 < len(caught.value.output) <= 200 * 4096 + 200


# --------------------------------------------------------------------------- a series of calls


def test_in_process_series_still_interrupts_a_blocked_loop(driver_for: Any) -> None:
    """Inside ``series()`` the backstop is armed once for all the calls, and still breaks
    a connector that blocks its loop, on any call of the series, as often as it blocks."""
    trace = Trace()
    driver = driver_for(stuck_app, trace, "same-thread")
    loop = driver.loop
    with driver.series():
        assert driver.call("POST", "/v1/fast", b"{}", timeout=1).ok
        started = time.perf_counter()
        blocked = driver.call("POST", "/v1/block", b"{}", timeout=0.2)
        assert time.perf_counter() - started < 10  # far from the handler's 30 s sleep
        assert driver.call("POST", "/v1/other", b"{}", timeout=1).ok
        again = driver.call("POST", "/v1/block", b"{}", timeout=0.2)
        assert driver.call("POST", "/v1/other", b"{}", timeout=1).ok
        assert driver.call("POST", "/v1/hang", b"{}", timeout=0.2).failure == "timeout"
    for answer in (blocked, again):
        assert answer.failure == "timeout"
        assert "blocked its event loop" in answer.detail
    assert driver.loop is loop
    failures = [e.failure for e in trace.exchanges(leg="platform->connector")]
    assert failures == [None, "timeout", None, "timeout", None, "timeout"]


def test_in_process_series_sets_the_timer_once_not_per_call(
    driver_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.drivers import runners

    driver = driver_for(stuck_app, mode="same-thread")
    set_timer: list[float] = []
    real_setitimer = signal.setitimer

    def counting(which: int, seconds: float, interval: float = 0.0) -> tuple[float, float]:
        set_timer.append(seconds)
        return real_setitimer(which, seconds, interval)

    monkeypatch.setattr(runners.signal, "setitimer", counting)
    for _ in range(3):
        assert driver.call("POST", "/v1/fast", b"{}", timeout=5).ok
    alone = len(set_timer)
    assert alone >= 6  # alone, each call sets and clears the timer
    set_timer.clear()
    with driver.series():
        for _ in range(50):
            assert driver.call("POST", "/v1/fast", b"{}", timeout=5).ok
    assert len(set_timer) == 2  # once for the series' first call, cleared at its end
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_in_process_series_restores_the_handler_and_leaves_an_earlier_alarm_alone(
    driver_for: Any, alarm: list[int]
) -> None:
    handler = signal.getsignal(signal.SIGALRM)
    driver = driver_for(stuck_app, mode="same-thread")
    with driver.series():
        assert signal.getsignal(signal.SIGALRM) is not handler  # the series' own, once
        assert driver.call("POST", "/v1/fast", b"{}", timeout=1).ok
    assert signal.getsignal(signal.SIGALRM) is handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    signal.setitimer(signal.ITIMER_REAL, 60.0)  # someone's alarm: calls arm their own
    with driver.series():
        assert signal.getsignal(signal.SIGALRM) is handler
        assert driver.call("POST", "/v1/block", b"{}", timeout=0.2).failure == "timeout"
    left, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 30 < left < 60
    assert alarm == []
