"""The in-process driver: an ASGI app called straight on its event loop, no socket.

Where the loop runs and how a call on it is bounded is ``harness.drivers.runners``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Literal

from harness.drivers.base import (
    Answer,
    ASGIApp,
    ConnectorStartError,
    Message,
    PlatformEnv,
    Scope,
    _answer,
    _describe,
    _RecordingDriver,
)
from harness.drivers.bounds import Bounds
from harness.drivers.runners import (
    CallFailedError,
    Mode,
    Runner,
    SameThreadLoop,
    ThreadLoop,
    same_thread_available,
)
from harness.trace import Exchange, Trace

__all__ = ["InProcessDriver"]


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
    See ``harness.drivers.runners``.
    """

    base_url = "http://connector.in-process"

    def __init__(
        self,
        app: ASGIApp,
        *,
        trace: Trace | None = None,
        mode: Mode | Literal["auto"] = "auto",
        bounds: Bounds | None = None,
    ) -> None:
        super().__init__(trace, bounds)
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
        timeout = self.bounds.cap(timeout)
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

    def _send(
        self, method: str, path: str, payload: bytes, exchange: Exchange | None, timeout: float
    ) -> Answer:
        """Call the app; the answer or the failure comes back within about ``timeout``."""
        started = time.perf_counter()
        runner = self._runner
        if runner is None:
            return _answer(exchange, None, (), b"", "connection", "driver not started", 0.0)
        if self.dead:
            return _answer(exchange, None, (), b"", "timeout", self._dead_detail(), 0.0)
        limit = self.bounds.max_body_bytes
        request = _asgi_request(self.app, method, path, payload, self._state(), limit)
        try:
            status, headers, content, total, error = runner.run(
                request, timeout, f"{method} {path}"
            )
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
        return _answer(exchange, status, headers, content, None, "", elapsed, total=total)

    def series(self) -> contextlib.AbstractContextManager[None]:
        """Calls made inside share one hang backstop (same-thread mode: the ``SIGALRM``
        handler installed once, the timer set only when needed) instead of arming it per
        call; elsewhere, and before ``start()``, calls are bounded one by one as always."""
        runner = self._runner
        if isinstance(runner, SameThreadLoop):
            return runner.series()
        return contextlib.nullcontext()

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


_Result = tuple[int | None, list[tuple[str, str]], bytes, int, str | None]


async def _asgi_request(
    app: ASGIApp, method: str, path: str, body: bytes, state: dict[str, Any], limit: int
) -> _Result:
    """One HTTP request straight into an ASGI app: (status, headers, the body's first
    ``limit`` bytes, its total size, error)."""
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
    kept = total = 0

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, kept, total
        if message["type"] == "http.response.start":
            status = int(message["status"])
            out_headers.extend(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())
            )
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            total += len(chunk)
            if kept < limit:
                chunks.append(bytes(chunk[: limit - kept]))
                kept += len(chunks[-1])
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    except Exception as exc:
        return status, out_headers, b"".join(chunks), total, _describe(exc)
    if status is None:
        return None, [], b"", 0, "the app returned without sending an answer"
    return status, out_headers, b"".join(chunks), total, None
