"""Connector drivers: one interface to call a connector in-process, as a command, or at a URL.

A driver never raises for a bad answer and never hangs: timeouts, crashes, drops and
non-JSON answers come back as an ``Answer`` with ``failure`` set, recorded in the trace.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib
import inspect
import json
import math
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, cast, runtime_checkable

import httpx

from contracts.routes import DELAY_HEADER
from harness.inprocess import (
    CallFailedError,
    Mode,
    Runner,
    SameThreadLoop,
    ThreadLoop,
    same_thread_available,
)
from harness.redaction import MASK
from harness.sdk.settings import PluginSettings
from harness.trace import Exchange, FailureKind, Trace

__all__ = [
    "ASGIApp",
    "Answer",
    "CommandDriver",
    "ConnectorDriver",
    "ConnectorLoadError",
    "ConnectorStartError",
    "InProcessDriver",
    "PlatformEnv",
    "UrlDriver",
    "free_port",
    "load_connector",
]

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON_HEADERS: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
_START_POLL_SECONDS = 0.05
_TAIL_LINES = 200


class ConnectorStartError(RuntimeError):
    """The connector could not be started or reached; carries its output tail."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(
            f"{message}\n--- connector output (tail) ---\n{output}" if output else message
        )
        self.output = output


class ConnectorLoadError(ValueError):
    """A ``module:attribute`` connector reference cannot be turned into an ASGI app."""


@dataclass(frozen=True, slots=True)
class PlatformEnv:
    """What a connector needs to know of the platform: where the gateway is, how to log in."""

    gateway_host: str
    gateway_port: int
    worker_id: str
    authentication_token: str = field(repr=False)

    def plugin_settings(self, port: int = 8080) -> PluginSettings:
        """The same facts as the SDK's settings object."""
        return PluginSettings(
            gateway_host=self.gateway_host,
            gateway_port=self.gateway_port,
            worker_id=self.worker_id,
            authentication_token=self.authentication_token,
            port=port,
        )

    def variables(self, port: int) -> dict[str, str]:
        """The process environment of a plugin (``plugin-contract.md``)."""
        return {
            "PLUGIN_PORT": str(port),
            "GATEWAY_HOST": self.gateway_host,
            "GATEWAY_PORT": str(self.gateway_port),
            "PLUGIN_WORKER_ID": self.worker_id,
            "PLUGIN_AUTHENTICATION_TOKEN": self.authentication_token,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back from one call: an HTTP answer, or a failure (never an exception)."""

    status: int | None
    headers: Mapping[str, str]
    body: bytes
    json: Any
    failure: FailureKind | None
    detail: str
    real_seconds: float
    exchange: Exchange | None = None

    @property
    def ok(self) -> bool:
        """An HTTP answer with a JSON body came back."""
        return self.failure is None

    @property
    def body_status(self) -> str | None:
        """The answer body's ``status`` field, when there is one."""
        if isinstance(self.json, dict):
            value = self.json.get("status")
            return value if isinstance(value, str) else None
        return None

    @property
    def message(self) -> str | None:
        """The answer body's ``message`` (or the failure detail)."""
        if isinstance(self.json, dict) and isinstance(self.json.get("message"), str):
            return cast(str, self.json["message"])
        return self.detail or None

    @property
    def delay_seconds(self) -> float | None:
        """``x-mics-next-msg-delay`` (milliseconds on the wire) in seconds, if valid."""
        raw = self.headers.get(DELAY_HEADER)
        if not raw:
            return None
        try:
            value = float(raw) / 1000.0
        except ValueError:
            return None
        return value if math.isfinite(value) and value >= 0 else None

    def describe(self) -> str:
        """A one-line account for messages: ``503 RETRY`` or ``timeout: ...``."""
        if self.failure is not None:
            prefix = f"{self.status} " if self.status is not None else ""
            return f"{prefix}{self.failure}: {self.detail}"
        return f"{self.status} {self.body_status or ''}".rstrip()


@runtime_checkable
class ConnectorDriver(Protocol):
    """How the simulator reaches a connector."""

    trace: Trace | None

    def start(self, env: PlatformEnv) -> None:
        """Make the connector reachable; raise ``ConnectorStartError`` if it cannot be."""

    def call(self, method: str, path: str, body: bytes | None, *, timeout: float) -> Answer:
        """One request; failures come back in the ``Answer``."""
        ...

    def stop(self) -> None:
        """Release the connector (idempotent)."""


def _answer(
    trace_exchange: Exchange | None,
    status: int | None,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    failure: FailureKind | None,
    detail: str,
    real_seconds: float,
) -> Answer:
    """Build the answer (parsing JSON once) and close the trace exchange."""
    parsed: Any = None
    if status is not None and failure is None:
        try:
            parsed = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if parsed is None:
            failure = "not-json"
            detail = f"answer {status} is not JSON: {body[:200]!r}"
    header_map: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        header_map[key] = f"{header_map[key]}, {value}" if key in header_map else value
    if trace_exchange is not None:
        if status is not None:
            trace_exchange.finish(status, headers, body)
        if failure is not None:
            trace_exchange.fail(failure, detail)
    return Answer(status, header_map, body, parsed, failure, detail, real_seconds, trace_exchange)


class _RecordingDriver:
    """Records the ``platform->connector`` leg around each call."""

    base_url = "http://connector"

    def __init__(self, trace: Trace | None = None) -> None:
        self.trace = trace

    def _begin(self, method: str, path: str, body: bytes) -> Exchange | None:
        if self.trace is None:
            return None
        headers = _JSON_HEADERS if body else ()
        return self.trace.begin("platform->connector", method, self.base_url + path, headers, body)


# --------------------------------------------------------------------------- in-process


class _Lifespan:
    """Runs an ASGI app's lifespan protocol on the driver's loop (if the app has one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._events: dict[str, asyncio.Future[Message]] = {}
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> Message:
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        kind = str(message.get("type", ""))
        phase = kind.removeprefix("lifespan.").split(".")[0]
        future = self._events.get(phase)
        if future is not None and not future.done():
            future.set_result(message)

    async def _run(self) -> None:
        scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        await self.app(scope, self._receive, self._send)

    async def _phase(self, phase: str) -> None:
        loop = asyncio.get_running_loop()
        self._events[phase] = future = loop.create_future()
        await self._inbox.put({"type": f"lifespan.{phase}"})
        assert self._task is not None
        done, _ = await asyncio.wait({future, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if future in done:
            message = future.result()
            if message["type"].endswith(".failed"):
                raise ConnectorStartError(
                    f"the connector's lifespan {phase} failed: {message.get('message', '')}"
                )
        elif not self._task.cancelled():
            self._task.exception()  # seen: an app that does not speak lifespan may raise
        # The task ended first: the app does not speak lifespan; that is allowed.

    async def startup(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._phase("startup")

    async def shutdown(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._phase("shutdown")


class InProcessDriver(_RecordingDriver):
    """Runs an ASGI app in this process, each call bounded by its timeout.

    ``mode="same-thread"`` drives the app's event loop in the calling thread (no thread
    hand-off per call); a connector that blocks its loop synchronously is interrupted by a
    ``SIGALRM`` backstop, so the driver must be started on the main thread (calls from
    elsewhere still work, through a helper thread). ``mode="thread"`` runs the loop on a
    background thread; a connector that blocks it is marked dead and later calls fail fast
    until the loop answers again. ``"auto"`` (the default) picks same-thread when it can:
    the main thread, outside a running event loop; ``mode`` tells which after ``start()``.
    See ``harness.inprocess``.
    """

    base_url = "http://connector.in-process"

    def __init__(
        self,
        app: ASGIApp,
        *,
        trace: Trace | None = None,
        mode: Mode | Literal["auto"] = "auto",
    ) -> None:
        super().__init__(trace)
        if mode not in ("auto", "same-thread", "thread"):
            raise ValueError(f"mode={mode!r}: use 'auto', 'same-thread' or 'thread'")
        self.app = app
        self.requested_mode = mode
        self.mode: Mode | None = None
        self._runner: Runner | None = None
        self._lifespan: _Lifespan | None = None
        self._start_timeout = 20.0
        self._dead_reason: str | None = None

    @property
    def dead(self) -> bool:
        """Whether calls fail fast: the loop is blocked (thread mode, until it answers
        again) or could not be restarted after it was (same-thread mode)."""
        if self._dead_reason is not None:
            return True
        return self._runner is not None and self._runner.blocked_since is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The connector's current event loop (``None`` before ``start()``)."""
        return self._runner.loop if self._runner is not None else None

    def start(self, env: PlatformEnv | None = None, *, timeout: float = 20.0) -> None:
        """Make the loop (choosing the mode) and run the app's lifespan startup (``env``
        is already in the app); ``ConnectorStartError`` if the startup fails or hangs."""
        if self._runner is not None:
            return
        mode = self.requested_mode
        if mode == "auto":
            mode = "same-thread" if same_thread_available() else "thread"
        runner: Runner = SameThreadLoop() if mode == "same-thread" else ThreadLoop()
        self._runner, self.mode, self._start_timeout = runner, runner.mode, timeout
        self._lifespan = self._startup(runner, timeout)

    def _startup(self, runner: Runner, timeout: float) -> _Lifespan:
        lifespan = _Lifespan(self.app)
        try:
            runner.run(lifespan.startup(), timeout, "the lifespan startup")
        except CallFailedError as failure:
            if isinstance(failure.error, ConnectorStartError):
                raise failure.error from None
            if failure.kind == "timeout":
                raise ConnectorStartError(
                    f"the connector's lifespan startup took over {timeout} s"
                ) from None
            raise ConnectorStartError(
                f"the connector's lifespan startup failed: {failure.detail}"
            ) from None
        return lifespan

    def call(self, method: str, path: str, body: bytes | None, *, timeout: float) -> Answer:
        """Call the app; the answer or the failure comes back within about ``timeout``."""
        payload = body or b""
        exchange = self._begin(method, path, payload)
        started = time.perf_counter()
        runner = self._runner
        if runner is None:
            return _answer(exchange, None, (), b"", "connection", "driver not started", 0.0)
        if self.dead:
            return _answer(exchange, None, (), b"", "timeout", self._dead_detail(), 0.0)
        request = _asgi_request(self.app, method, path, payload, self._state())
        try:
            status, headers, content, error = runner.run(request, timeout, f"{method} {path}")
        except CallFailedError as failure:
            detail = failure.detail
            if failure.renew:
                detail += self._restart(runner)
            elapsed = time.perf_counter() - started
            return _answer(exchange, None, (), b"", failure.kind, detail, elapsed)
        elapsed = time.perf_counter() - started
        if error is not None:
            if status is None:
                return _answer(exchange, None, (), b"", "crash", error, elapsed)
            return _answer(exchange, status, headers, content, "crash", error, elapsed)
        return _answer(exchange, status, headers, content, None, "", elapsed)

    def _restart(self, runner: Runner) -> str:
        """After the loop was replaced: the lifespan again on the new one, or dead."""
        if self._lifespan is None:
            return "; its event loop was replaced"
        self._lifespan = None
        try:
            self._lifespan = self._startup(runner, self._start_timeout)
        except ConnectorStartError as exc:
            self._dead_reason = f"its event loop was replaced and {exc}"
            return f"; {self._dead_reason}; it is marked dead"
        return "; its event loop was replaced and its lifespan started again"

    def _dead_detail(self) -> str:
        if self._dead_reason is not None:
            return f"connector is dead: {self._dead_reason}"
        since = self._runner.blocked_since if self._runner is not None else None
        return f"connector is dead: its event loop has been blocked since {since}"

    def _state(self) -> dict[str, Any]:
        return dict(self._lifespan.state) if self._lifespan is not None else {}

    def stop(self, *, timeout: float = 5.0) -> None:
        """Run the lifespan shutdown (bounded), then release the loop (idempotent)."""
        runner, lifespan = self._runner, self._lifespan
        if runner is None:
            return
        self._runner = self._lifespan = None
        shutdown = lifespan.shutdown if lifespan is not None and not self.dead else None
        self._dead_reason = None
        runner.close(shutdown, timeout)


_Result = tuple[int | None, list[tuple[str, str]], bytes, str | None]


async def _asgi_request(
    app: ASGIApp, method: str, path: str, body: bytes, state: dict[str, Any]
) -> _Result:
    """One HTTP request straight into an ASGI app: (status, headers, body, error)."""
    raw_path, _, query = path.partition("?")
    headers = [(b"host", b"connector"), (b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method.upper(),
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 0),
        "server": ("connector", 80),
        "state": state,
    }
    done = asyncio.Event()
    sent_body = False
    status: int | None = None
    out_headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            out_headers.extend(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())
            )
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    except Exception as exc:
        return status, out_headers, b"".join(chunks), _describe(exc)
    if status is None:
        return None, [], b"", "the app returned without sending an answer"
    return status, out_headers, b"".join(chunks), None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- over HTTP


class _HttpDriver(_RecordingDriver):
    """Calls a connector over loopback HTTP with one keep-alive client."""

    def __init__(self, base_url: str, *, trace: Trace | None = None) -> None:
        super().__init__(trace)
        self.base_url = base_url.rstrip("/")
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, trust_env=False)
        return self._client

    def _failure_kind(self, exc: httpx.TransportError) -> tuple[FailureKind, str]:
        if isinstance(exc, httpx.TimeoutException):
            return "timeout", _describe(exc)
        return "connection", _describe(exc)

    def call(self, method: str, path: str, body: bytes | None, *, timeout: float) -> Answer:
        """One HTTP request; transport errors and timeouts come back as failures."""
        payload = body or b""
        exchange = self._begin(method, path, payload)
        started = time.perf_counter()
        headers = dict(_JSON_HEADERS) if payload else {}
        try:
            response = self._http().request(
                method, path, content=payload or None, headers=headers, timeout=timeout
            )
        except httpx.TransportError as exc:
            kind, detail = self._failure_kind(exc)
            return _answer(exchange, None, (), b"", kind, detail, time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        return _answer(
            exchange,
            response.status_code,
            response.headers.multi_items(),
            response.content,
            None,
            "",
            elapsed,
        )

    def _wait_ready(self, deadline: float, alive: Callable[[], str | None]) -> None:
        """Poll ``GET /v1/status`` until 200; ``alive`` returns why it cannot come, if so."""
        last = "no answer yet"
        while True:
            reason = alive()
            if reason is not None:
                raise ConnectorStartError(reason, self._tail())
            try:
                response = self._http().get("/v1/status", timeout=1.0)
                if response.status_code == 200:
                    return
                last = f"GET /v1/status answered {response.status_code}"
            except httpx.TransportError as exc:
                last = _describe(exc)
            if time.monotonic() >= deadline:
                raise ConnectorStartError(
                    f"the connector at {self.base_url} did not answer GET /v1/status with 200 "
                    f"in time (last: {last}); check that it starts, listens on PLUGIN_PORT and "
                    "has PLUGIN_WORKER_ID / PLUGIN_AUTHENTICATION_TOKEN",
                    self._tail(),
                )
            time.sleep(_START_POLL_SECONDS)

    def _tail(self) -> str:
        return ""

    def stop(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None


class UrlDriver(_HttpDriver):
    """A connector someone else started, at ``base_url`` (pointed at the served gateway)."""

    def __init__(
        self, base_url: str, *, start_timeout: float = 20.0, trace: Trace | None = None
    ) -> None:
        super().__init__(base_url, trace=trace)
        self.start_timeout = start_timeout

    def start(self, env: PlatformEnv | None = None) -> None:
        """Wait until the connector answers ``GET /v1/status`` with 200."""
        self._wait_ready(time.monotonic() + self.start_timeout, lambda: None)


class CommandDriver(_HttpDriver):
    """Launches a connector command in its own process group on a free loopback port, with
    ``PLUGIN_PORT``, ``GATEWAY_HOST``/``GATEWAY_PORT``, ``PLUGIN_WORKER_ID`` and
    ``PLUGIN_AUTHENTICATION_TOKEN`` (plus ``env``) in its environment."""

    def __init__(
        self,
        command: str | Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        start_timeout: float = 20.0,
        stop_grace: float = 5.0,
        cwd: str | None = None,
        trace: Trace | None = None,
    ) -> None:
        super().__init__("http://127.0.0.1:0", trace=trace)
        self.command = command
        self.extra_env = dict(env or {})
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.cwd = cwd
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._reader: threading.Thread | None = None
        self._token: str | None = None

    def start(self, env: PlatformEnv) -> None:
        """Launch and wait for ``GET /v1/status`` 200; ``ConnectorStartError`` otherwise."""
        if self.process is not None:
            return
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        variables = {**os.environ, **self.extra_env, **env.variables(self.port)}
        self._token = env.authentication_token
        try:
            self.process = subprocess.Popen(
                self.command,
                shell=isinstance(self.command, str),
                env=variables,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise ConnectorStartError(
                f"cannot launch the connector command {self.command!r}: {exc}; check the command"
            ) from exc
        self._reader = threading.Thread(target=self._read, name="connector-output", daemon=True)
        self._reader.start()
        try:
            self._wait_ready(time.monotonic() + self.start_timeout, self._exited)
        except ConnectorStartError:
            self.stop()
            raise

    def _exited(self) -> str | None:
        process = self.process
        if process is None or process.poll() is None:
            return None
        time.sleep(_START_POLL_SECONDS)  # let the reader drain the last lines
        return (
            f"the connector command {self.command!r} exited with code {process.returncode} "
            "before answering GET /v1/status"
        )

    def _read(self) -> None:
        process = self.process
        if process is None or process.stdout is None:
            return
        for raw in process.stdout:
            self._output.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def output_tail(self) -> str:
        """The last lines the connector printed, with the secrets the driver knows masked."""
        return self._mask("\n".join(self._output))

    def _mask(self, text: str) -> str:
        """Mask the plugin token this driver handed out, and every secret of the trace."""
        if self._token:
            text = text.replace(self._token, MASK)
        return self.trace.redactor.text(text) if self.trace is not None else text

    def _tail(self) -> str:
        return self.output_tail()

    def _failure_kind(self, exc: httpx.TransportError) -> tuple[FailureKind, str]:
        kind, detail = super()._failure_kind(exc)
        process = self.process
        if kind == "connection" and process is not None and process.poll() is not None:
            tail = self._mask("\n".join(list(self._output)[-5:]))
            return "crash", f"the connector exited with code {process.returncode}: {tail}"
        return kind, detail

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after the grace period."""
        super().stop()
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(self.stop_grace)
        if self._reader is not None:
            self._reader.join(1.0)
        if process.stdout is not None:
            process.stdout.close()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


_EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
_QUIET_PORTS = range(20_000, 32_768)
"""Below Linux's default ephemeral range (32768-60999): ports the kernel does not hand to
other processes' ``bind(0)`` and outgoing connections."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a process that binds it later (a connector's
    PLUGIN_PORT, a gateway the connector must know in advance).

    The port is released before its user binds it, so it is drawn outside the kernel's
    ephemeral range, where another process's ``bind(0)`` cannot take it meanwhile; where
    that range is unknown or overlaps, any free port will do.
    """
    quiet = _QUIET_PORTS if _outside_ephemeral(_QUIET_PORTS) else range(0)
    for port in random.sample(quiet, min(len(quiet), 50)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _outside_ephemeral(ports: range) -> bool:
    try:
        low, high = (int(n) for n in Path(_EPHEMERAL_RANGE_FILE).read_text().split())
    except (OSError, ValueError):
        return False
    return ports.stop <= low or ports.start > high


# --------------------------------------------------------------------------- loading


def load_connector(target: object, settings: PluginSettings) -> ASGIApp:
    """An ASGI app from ``"module:attr"`` or an object: a connector class, a factory
    taking ``PluginSettings``, or a ready ASGI app."""
    spec = target if isinstance(target, str) else None
    obj = _import(target) if isinstance(target, str) else target
    name = spec or repr(obj)
    if isinstance(obj, type):
        try:
            app = obj(settings)
        except Exception as exc:
            raise ConnectorLoadError(
                f"connector {name}: constructing {obj.__name__}(settings) failed with "
                f"{_describe(exc)}; a connector class must accept a PluginSettings"
            ) from exc
        if not _is_asgi(app):
            raise ConnectorLoadError(
                f"connector {name}: an instance of {obj.__name__} is not an ASGI app "
                "(async __call__(scope, receive, send)); subclass the harness SDK connector"
            )
        return cast(ASGIApp, app)
    if _is_asgi(obj):
        return cast(ASGIApp, obj)
    if callable(obj) and _positional_arity(obj) == 1:
        try:
            app = obj(settings)
        except Exception as exc:
            raise ConnectorLoadError(
                f"connector {name}: the factory failed with {_describe(exc)}"
            ) from exc
        if not _is_asgi(app):
            raise ConnectorLoadError(
                f"connector {name}: the factory returned {type(app).__name__}, not an ASGI app; "
                "return the connector instance"
            )
        return cast(ASGIApp, app)
    raise ConnectorLoadError(
        f"connector {name}: {type(obj).__name__} is not a connector; give a connector class, "
        "a factory taking PluginSettings, or an ASGI app (async callable(scope, receive, send))"
    )


def _import(spec: str) -> object:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConnectorLoadError(
            f"connector {spec!r} is not 'module:attribute'; write it like "
            "'harness.reference:ReferenceConnector'"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ConnectorLoadError(
                f"connector {spec!r}: no module named {module_name!r}; check the spelling and "
                "that its directory is on PYTHONPATH (run from the project root)"
            ) from exc
        raise ConnectorLoadError(
            f"connector {spec!r}: importing {module_name!r} failed: {exc}; install what it needs"
        ) from exc
    except Exception as exc:
        raise ConnectorLoadError(
            f"connector {spec!r}: importing {module_name!r} raised {_describe(exc)}"
        ) from exc
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            known = sorted(n for n in dir(module) if not n.startswith("_"))
            raise ConnectorLoadError(
                f"connector {spec!r}: module {module_name!r} has no attribute {attr!r}; "
                f"it has: {', '.join(known[:20])}"
            )
        obj = getattr(obj, part)
    return obj


def _positional_arity(obj: object) -> int | None:
    try:
        signature = inspect.signature(cast(Callable[..., Any], obj))
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            count += 1
    return count


def _is_asgi(obj: object) -> bool:
    """An async callable taking exactly (scope, receive, send)."""
    if isinstance(obj, type) or not callable(obj):
        return False
    arity = _positional_arity(obj)
    if arity is None:  # *args or no signature: trust it only if it is a coroutine function
        return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(type(obj).__call__)
    return arity == 3
