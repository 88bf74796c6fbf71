"""The command driver: a connector process launched on a free loopback port."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence

from harness.connector_log import ConnectorLog
from harness.drivers.base import (
    _START_POLL_SECONDS,
    ConnectorStartError,
    PlatformEnv,
)
from harness.drivers.bounds import Bounds
from harness.drivers.http1 import HttpFailureError
from harness.drivers.loopback import _HttpDriver, free_port
from harness.redaction import MASK
from harness.trace import FailureKind, Trace

__all__ = ["CommandDriver"]

_TAIL_LINES = 200
_PORT_ATTEMPTS = 3
_LINE_BYTES = 4096


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
        bounds: Bounds | None = None,
    ) -> None:
        super().__init__("http://127.0.0.1:0", trace=trace, bounds=bounds)
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
        self.log: ConnectorLog | None = None
        """Where every line of output goes too (set by the platform): checked for secrets."""

    def start(self, env: PlatformEnv) -> None:
        """Launch and wait for ``GET /v1/status`` 200; ``ConnectorStartError`` otherwise.

        A connector that exits because its port was taken meanwhile (another process bound
        the free port first: its output says "address already in use") is launched again
        on another port, up to ``_PORT_ATTEMPTS`` times."""
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                self._start_once(env)
                return
            except ConnectorStartError as exc:
                if attempt == _PORT_ATTEMPTS or not _port_taken(exc.output or str(exc)):
                    raise
                self._output.clear()

    def _start_once(self, env: PlatformEnv) -> None:
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
        """Keep the last lines of output; a line is cut in pieces of ``_LINE_BYTES``."""
        process = self.process
        if process is None or process.stdout is None:
            return
        stdout = process.stdout
        for raw in iter(lambda: stdout.readline(_LINE_BYTES), b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._output.append(line)
            if self.log is not None:
                self.log.feed(line)

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

    def _failure_kind(self, exc: HttpFailureError) -> tuple[FailureKind, str]:
        kind, detail = super()._failure_kind(exc)
        gone = self._lost() if kind == "connection" else None
        return ("crash", gone) if gone is not None else (kind, detail)

    def _lost(self, settle: float = 0.0) -> str | None:
        process = self.process
        if process is None:
            return None
        if settle and process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(settle)
        if process.poll() is None:
            return None
        if self._reader is not None:
            self._reader.join(0.2)  # its last lines, unless a child still holds the pipe
        tail = self._mask("\n".join(list(self._output)[-5:]))
        return f"the connector exited with code {process.returncode}: {tail}"

    def stop(self) -> None:
        """SIGTERM the whole process group (even if its leader is gone), SIGKILL what is
        left after the grace period."""
        super().stop()
        process, self.process = self.process, None
        if process is None:
            return
        try:
            _stop_group(process, self.stop_grace)
        except BaseException:  # a stop signal while we waited: no grace left
            _signal_group(process, signal.SIGKILL)
            raise
        if self._reader is not None:
            self._reader.join(1.0)
        if process.stdout is not None:
            process.stdout.close()


def _stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """End the process and every process of its group (its session: ``start_new_session``)."""
    ends = time.monotonic() + grace
    _signal_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    while _group_alive(process.pid) and time.monotonic() < ends:
        time.sleep(_START_POLL_SECONDS)
    if process.poll() is None or _group_alive(process.pid):
        _signal_group(process, signal.SIGKILL)
        process.wait(grace)
        ends = time.monotonic() + 1.0
        while _group_alive(process.pid) and time.monotonic() < ends:
            time.sleep(_START_POLL_SECONDS)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs. A zombie does not count: once the
    group's leader (often ``/bin/sh -c``) is reaped, its children's parent is PID 1, and a
    container's PID 1 reaps late or never, so ``killpg(pgid, 0)`` would keep answering for
    a process that has ended (that wait was 1.4 to 1.8 s per connector stop here)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    running = _running_in_group(pgid)
    return True if running is None else running


def _running_in_group(pgid: int) -> bool | None:
    """Whether ``/proc`` shows a process of group ``pgid`` that is not a zombie; None
    where ``/proc`` cannot tell (not Linux)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    seen = False
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                line = stat.read()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        seen = True
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
        fields = line[line.rfind(b")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False if seen else None


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _port_taken(output: str) -> bool:
    """Whether a connector's output says it could not bind its port."""
    lowered = output.lower()
    return "address already in use" in lowered or "eaddrinuse" in lowered
