"""One ordered, redacted record of every exchange of a run, on all three legs.

Sequence numbers are taken at start and at end, so a connector's outbound calls nest
inside the platform call that caused them; bodies stay bytes until parsed on demand.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from harness.redaction import SECRET_HEADERS, Redactor

__all__ = ["LEGS", "Exchange", "FailureKind", "Leg", "Trace"]

Leg = Literal["platform->connector", "connector->gateway", "connector->partner"]
LEGS: tuple[Leg, ...] = get_args(Leg)
FailureKind = Literal["timeout", "connection", "crash", "not-json"]
"""Why an exchange got no usable answer: no answer in time, no connection, the connector
raised or died, or an answer that is not JSON."""

_UNPARSED: Any = object()


@dataclass(slots=True, eq=False)
class Exchange:
    """One request and its answer (or failure); headers and bodies already redacted."""

    seq: int
    leg: Leg
    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes
    virtual_start: float
    real_start: float
    trace: Trace = field(repr=False)
    status: int | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: bytes = b""
    failure: FailureKind | None = None
    detail: str = ""
    end_seq: int | None = None
    virtual_end: float | None = None
    real_seconds: float | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    redacted: tuple[str, ...] = ()
    """Where masking changed something (a known secret value or a secret JSON/form key):
    ``url``, ``request_headers``, ``request_body``, ``response_headers``, ``response_body``.
    In what the connector sent, that is a leak; ``Authorization`` is not counted."""
    _request_json: Any = field(default=_UNPARSED, repr=False)
    _response_json: Any = field(default=_UNPARSED, repr=False)

    @property
    def path(self) -> str:
        """The URL's path, without query."""
        return urlsplit(self.url).path

    @property
    def done(self) -> bool:
        """Whether the exchange has finished or failed."""
        return self.end_seq is not None

    def request_header(self, name: str) -> str | None:
        """A request header (case-insensitive), redacted."""
        return _header(self.request_headers, name)

    def response_header(self, name: str) -> str | None:
        """A response header (case-insensitive), redacted."""
        return _header(self.response_headers, name)

    def request_json(self) -> Any:
        """The request body parsed as JSON, or None when it is not JSON."""
        if self._request_json is _UNPARSED:
            self._request_json = _parse(self.request_body)
        return self._request_json

    def response_json(self) -> Any:
        """The answer body parsed as JSON, or None when it is not JSON."""
        if self._response_json is _UNPARSED:
            self._response_json = _parse(self.response_body)
        return self._response_json

    def finish(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> Exchange:
        """Record the answer (redacted)."""
        redactor = self.trace.redactor
        self.status = status
        self.response_headers, leaked = _redact_headers(redactor, headers)
        self.response_body = redactor.body(body)
        if leaked:
            self.redacted += ("response_headers",)
        if self.response_body != body:
            self.redacted += ("response_body",)
        self._end()
        return self

    def fail(self, kind: FailureKind, detail: str = "") -> Exchange:
        """Record that no usable answer came; an answer already recorded is kept."""
        self.failure = kind
        self.detail = self.trace.redactor.text(detail)
        if self.end_seq is None:
            self._end()
        return self

    def _end(self) -> None:
        self.real_seconds = time.perf_counter() - self.real_start
        self.end_seq = self.trace.next_seq()
        self.virtual_end = self.trace.now()

    def to_jsonable(self, *, max_body: int | None = None) -> dict[str, Any]:
        """A JSON-ready dict for reports (everything in it is already redacted)."""
        return {
            "seq": self.seq,
            "end_seq": self.end_seq,
            "leg": self.leg,
            "method": self.method,
            "url": self.url,
            "virtual_start": self.virtual_start,
            "virtual_end": self.virtual_end,
            "real_seconds": self.real_seconds,
            "request": {
                "headers": dict(self.request_headers),
                "body": _jsonable_body(self.request_body, self.request_json(), max_body),
            },
            "response": None
            if self.status is None
            else {
                "status": self.status,
                "headers": dict(self.response_headers),
                "body": _jsonable_body(self.response_body, self.response_json(), max_body),
            },
            "failure": self.failure,
            "detail": self.detail,
            "tags": _jsonable_tags(self.tags),
            "redacted": list(self.redacted),
        }


def _redact_headers(
    redactor: Redactor, headers: Iterable[tuple[str, str]]
) -> tuple[tuple[tuple[str, str], ...], bool]:
    """Headers redacted, and whether a secret value was found outside the auth headers."""
    given = tuple(headers)
    redacted = redactor.headers(given)
    leaked = any(
        new != old
        for (name, new), (_, old) in zip(redacted, given, strict=True)
        if name not in SECRET_HEADERS
    )
    return redacted, leaked


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers:
        if key == wanted:
            return value
    return None


def _parse(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _jsonable_body(body: bytes, parsed: Any, max_body: int | None) -> Any:
    if parsed is not None and (max_body is None or len(body) <= max_body):
        return parsed
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(body[:max_body]).decode(), "length": len(body)}
    if max_body is not None and len(text) > max_body:
        return text[:max_body] + f"... ({len(body)} bytes)"
    return text


def _jsonable_tags(tags: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | float | bool | None) else str(v) for k, v in tags.items()
    }


class Trace:
    """The thread-safe ordered record of a run; every exchange redacted when recorded."""

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self._clock = clock
        self.redactor = redactor if redactor is not None else Redactor()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []

    def now(self) -> float:
        """Virtual time (0.0 without a clock)."""
        return self._clock() if self._clock is not None else 0.0

    def next_seq(self) -> int:
        """Take the next sequence number (thread-safe)."""
        with self._lock:
            return next(self._counter)

    def begin(
        self,
        leg: Leg,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        **tags: Any,
    ) -> Exchange:
        """Start recording an exchange; finish it with ``finish`` or ``fail``."""
        redactor = self.redactor
        request_headers, leaked = _redact_headers(redactor, headers)
        exchange = Exchange(
            seq=0,
            leg=leg,
            method=method.upper(),
            url=redactor.url(url),
            request_headers=request_headers,
            request_body=redactor.body(body),
            virtual_start=self.now(),
            real_start=time.perf_counter(),
            trace=self,
            tags=tags,
        )
        if exchange.url != url:
            exchange.redacted += ("url",)
        if leaked:
            exchange.redacted += ("request_headers",)
        if exchange.request_body != body:
            exchange.redacted += ("request_body",)
        with self._lock:
            exchange.seq = next(self._counter)
            self._exchanges.append(exchange)
        return exchange

    def record(
        self,
        leg: Leg,
        method: str,
        url: str,
        request_headers: Iterable[tuple[str, str]],
        request_body: bytes,
        *,
        status: int | None,
        response_headers: Iterable[tuple[str, str]] = (),
        response_body: bytes = b"",
        failure: FailureKind | None = None,
        detail: str = "",
        **tags: Any,
    ) -> Exchange:
        """Record a whole exchange at once (an observer that sees it after the fact)."""
        exchange = self.begin(leg, method, url, request_headers, request_body, **tags)
        if status is not None:
            exchange.finish(status, response_headers, response_body)
        if failure is not None:
            exchange.fail(failure, detail)
        return exchange

    def exchanges(
        self,
        leg: Leg | None = None,
        path: str | None = None,
        *,
        method: str | None = None,
        path_prefix: str | None = None,
        within: Exchange | None = None,
    ) -> list[Exchange]:
        """Exchanges in ``seq`` order, filtered by leg, exact path, method, path prefix,
        or nesting inside another exchange."""
        with self._lock:
            selected: Iterator[Exchange] = iter(list(self._exchanges))
        if leg is not None:
            selected = (e for e in selected if e.leg == leg)
        if method is not None:
            wanted = method.upper()
            selected = (e for e in selected if e.method == wanted)
        if path is not None:
            selected = (e for e in selected if e.path == path)
        if path_prefix is not None:
            selected = (e for e in selected if e.path.startswith(path_prefix))
        if within is not None:
            end = within.end_seq if within.end_seq is not None else float("inf")
            selected = (e for e in selected if within.seq < e.seq < end)
        return list(selected)

    def children(self, exchange: Exchange) -> list[Exchange]:
        """The exchanges that started while ``exchange`` was open (its outbound calls)."""
        return self.exchanges(within=exchange)

    def __len__(self) -> int:
        return len(self._exchanges)

    def __iter__(self) -> Iterator[Exchange]:
        with self._lock:
            return iter(list(self._exchanges))

    def to_jsonable(self, *, max_body: int | None = None) -> list[dict[str, Any]]:
        """Every exchange as a JSON-ready dict, in order (redacted)."""
        # A second pass catches secrets learned after an exchange was recorded.
        return [self.redactor.value(e.to_jsonable(max_body=max_body)) for e in self]

    def __repr__(self) -> str:
        return f"Trace({len(self)} exchanges)"
