"""A lean HTTP/1.1 client for the platform->connector leg: one keep-alive connection,
``httptools`` (llhttp, in C) to read answers, one deadline for the whole answer.

httpx spent ~340 µs of CPU per call here, h11 over one socket ~200 µs (the
connector's own handling of an update was ~230 µs): over a verification's ~13,700 calls
to a connector process the client was most of the harness's own time. A request is
written as bytes here (the harness makes every method, target and header it sends); an
answer is parsed by llhttp, the parser of Node.js and of uvicorn's ``httptools``
protocol, in its strict mode.

Unlike a per-read socket timeout, the deadline bounds the whole answer: a connector that
trickles its headers or its body a byte at a time is cut off when the call's time is up.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httptools

__all__ = ["Http1Client", "HttpFailureError", "Reply"]

Failure = Literal["timeout", "connection", "not-http"]

_READ_BYTES = 64 * 1024
_MAX_HEAD_BYTES = 100 * 1024
"""The largest status line and header block read (httpcore's limit for h11)."""
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(r"[\x21-\x7e]+")
_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")
"""What a request's method and header names, target, and header values may hold."""


class HttpFailureError(Exception):
    """No HTTP answer: ``kind`` says why (``timeout``, ``connection``, ``not-http``)."""

    def __init__(self, kind: Failure, detail: str) -> None:
        super().__init__(detail)
        self.kind: Failure = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer, read up to the caller's limits."""

    status: int
    headers: list[tuple[str, str]]
    """Lower-case names, as sent (repeated names kept)."""
    body: bytes
    """Its first ``keep`` bytes."""
    total: int
    """Bytes of body received, or announced by ``content-length`` when reading stopped
    once ``keep`` bytes were kept."""
    late: bool
    """The deadline passed while the body was still coming."""


class _Answer:
    """llhttp's callbacks for one answer: the status, the headers, the body kept."""

    __slots__ = (
        "complete",
        "extra",
        "head",
        "headers",
        "keep",
        "kept",
        "parser",
        "reusable",
        "size",
        "status",
        "total",
    )

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.status: int | None = None
        """Set once the head is complete (a 1xx head is read past)."""
        self.headers: list[tuple[str, str]] = []
        self.size: int | None = None
        self.kept = bytearray()
        self.total = 0
        self.head = 0
        """Bytes fed before the head was complete."""
        self.complete = False
        self.extra = False
        """Bytes came after the answer (the connection cannot be reused)."""
        self.reusable = False
        """The answer let the connection carry the next request (read as it completes)."""
        self.parser = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.complete:
            self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1").strip()))

    def on_headers_complete(self) -> None:
        code = self.parser.get_status_code()
        if code < 200 or self.complete:
            return  # 1xx: its headers are dropped when it completes
        self.status = code
        declared = dict(self.headers).get("content-length", "")
        self.size = int(declared) if declared.isdigit() else None

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.total += len(body)
        if len(self.kept) < self.keep:
            self.kept += body[: self.keep - len(self.kept)]

    def on_message_complete(self) -> None:
        if self.status is None:  # a 1xx answer: the real one follows
            self.headers = []
        else:
            self.complete = True
            self.reusable = self.parser.should_keep_alive()


class Http1Client:
    """Calls ``base_url`` (``http://`` or ``https://``, with an optional path prefix) over
    one keep-alive connection, opened on first use and again after the server closes it."""

    def __init__(self, base_url: str, *, user_agent: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http(s) URL with a host")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        authority = parts.netloc.rpartition("@")[2]
        self._head = _header_lines(
            [
                ("host", authority),
                ("user-agent", user_agent),
                ("accept", "*/*"),
                ("accept-encoding", "identity"),
            ]
        )
        self._sock: socket.socket | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        *,
        timeout: float,
        keep: int,
        most: int,
    ) -> Reply:
        """One call, answered within ``timeout`` seconds or :class:`HttpFailureError`.

        ``keep`` bytes of the body are kept; past ``keep`` with a known size, or past
        ``most`` bytes in all, reading stops and the connection is dropped. A method,
        target or header that HTTP/1.1 cannot carry is a ``ValueError`` (nothing sent)."""
        target = self.prefix + path
        if not _TOKEN.fullmatch(method) or method == "HEAD" or not _TARGET.fullmatch(target):
            raise ValueError(f"cannot send {method} {target!r}: not an HTTP/1.1 request line")
        framing = [("content-length", str(len(body)))] if body or method in _BODY_METHODS else []
        extra = _header_lines([*(headers or ()), *framing])
        data = f"{method} {target} HTTP/1.1\r\n{self._head}{extra}\r\n".encode("latin-1") + body
        ends = time.monotonic() + timeout
        sock = self._connection(ends, timeout)
        try:
            _send(sock, data, ends, timeout)
            reply, reusable = _read(sock, ends, timeout, keep, most)
        except BaseException:
            self.close()
            raise
        if not reusable:
            self.close()
        return reply

    def _connection(self, ends: float, timeout: float) -> socket.socket:
        if self._sock is not None:
            # readable while idle: the server closed it (or sent bytes nobody asked for)
            readable, _, _ = select.select([self._sock], [], [], 0)
            if not readable:
                return self._sock
            self.close()
        left = ends - time.monotonic()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=max(left, 0.001))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except TimeoutError:
            raise HttpFailureError(
                "timeout", f"timed out: could not connect within {timeout:g} s"
            ) from None
        except OSError as exc:
            raise HttpFailureError("connection", f"{type(exc).__name__}: {exc}") from None
        self._sock = sock
        return sock

    def interrupt(self) -> None:
        """From another thread: end the call under way (it fails as a closed connection)."""
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Drop the connection (the next call opens another)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _header_lines(headers: list[tuple[str, str]]) -> str:
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or not _VALUE.fullmatch(value):
            raise ValueError(f"cannot send the header {name!r}: {value!r} in HTTP/1.1")
    return "".join(f"{name}: {value}\r\n" for name, value in headers)


def _read(
    sock: socket.socket, ends: float, timeout: float, keep: int, most: int
) -> tuple[Reply, bool]:
    """The answer, and whether the connection can carry the next request."""
    answer = _Answer(keep)
    parser = answer.parser
    while True:
        status = answer.status
        if status is not None and time.monotonic() >= ends:
            return _reply(answer, late=True), False
        data = _receive(sock, ends, timeout, status is not None)
        if data is None:  # the deadline passed with the answer under way
            return _reply(answer, late=True), False
        if not data:
            if status is None:
                raise HttpFailureError(
                    "connection", "the connector closed the connection without an answer"
                )
            if answer.size is None and not _chunked(answer):
                return _reply(answer), False  # an answer that ends with its connection
            raise HttpFailureError(
                "connection",
                f"the connection closed during the answer {status}: {answer.total} bytes of "
                f"its body came, {_announced(answer)}",
            )
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise HttpFailureError(
                "not-http", "the connector switched protocols (101) instead of answering"
            ) from None
        except httptools.HttpParserError as exc:
            if not answer.complete:
                raise HttpFailureError("not-http", _parser_error(exc, answer, data)) from None
            answer.extra = True  # bytes after the answer that are not HTTP either
        if answer.status is None:
            answer.head += len(data)
            if answer.head > _MAX_HEAD_BYTES:
                raise HttpFailureError(
                    "not-http", f"no end of the answer's head in its first {_MAX_HEAD_BYTES} bytes"
                )
            continue
        if answer.complete:
            return _reply(answer), answer.reusable and not answer.extra
        if answer.size is not None and answer.size > keep and len(answer.kept) >= keep:
            return _reply(answer, total=max(answer.size, answer.total)), False
        if answer.total > most:
            return _reply(answer), False


def _reply(answer: _Answer, *, late: bool = False, total: int | None = None) -> Reply:
    assert answer.status is not None
    size = answer.total if total is None else total
    return Reply(answer.status, answer.headers, bytes(answer.kept), size, late=late)


def _chunked(answer: _Answer) -> bool:
    return any(n == "transfer-encoding" and "chunked" in v.lower() for n, v in answer.headers)


def _announced(answer: _Answer) -> str:
    if answer.size is not None:
        return f"{answer.size} announced"
    return "its last chunk did not"


_SHOWN_BYTES = 60
"""Of an answer that is not HTTP, the first bytes shown."""


def _parser_error(exc: httptools.HttpParserError, answer: _Answer, data: bytes) -> str:
    """llhttp's reason (``Invalid ...``, without the C error name it starts with), and the
    bytes it was reading when the answer's head had not come yet."""
    text = str(exc.args[0] if exc.args else exc)
    reason = text.partition(": ")[2] or text or type(exc).__name__
    if answer.head == 0 and answer.status is None:
        return f"{reason}; the answer began {data[:_SHOWN_BYTES]!r}"
    return reason


def _wait(sock: socket.socket, ends: float, timeout: float, doing: str) -> None:
    left = ends - time.monotonic()
    if left <= 0:
        raise HttpFailureError("timeout", f"timed out {doing}: no answer within {timeout:g} s")
    sock.settimeout(left)


def _send(sock: socket.socket, data: bytes, ends: float, timeout: float) -> None:
    try:
        _wait(sock, ends, timeout, "sending the request")
        sock.sendall(data)
    except TimeoutError:
        raise HttpFailureError(
            "timeout", f"timed out sending the request: not taken within {timeout:g} s"
        ) from None
    except OSError as exc:
        raise HttpFailureError("connection", f"{type(exc).__name__}: {exc}") from None


def _receive(sock: socket.socket, ends: float, timeout: float, started: bool) -> bytes | None:
    """The next bytes (``b""`` at the end of the stream); None when the deadline passes
    after the answer started, :class:`HttpFailureError` when it passes before."""
    try:
        _wait(sock, ends, timeout, "waiting for the answer")
        return sock.recv(_READ_BYTES)
    except (TimeoutError, HttpFailureError):
        if started:
            return None
        raise HttpFailureError("timeout", f"timed out: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise HttpFailureError("connection", f"{type(exc).__name__}: {exc}") from None
