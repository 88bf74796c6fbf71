"""One ordered, redacted record of every exchange of a run, on all three legs.

Sequence numbers are taken at start and at end, so a connector's outbound calls nest
inside the platform call that caused them; bodies stay bytes until parsed on demand.

Evidence has a bounded memory. Every exchange keeps a compact record for good (sequence,
route, status, headers, timings, tags, and per body its size, SHA-256 digest, whether it
was truncated, whether it parsed as JSON, and which secret kinds were masked in it). Bodies
are kept whole up to ``body_cap`` bytes each (8 MiB: every body of a conformance run, the
largest partner uploads included); a larger body keeps its first 64 KiB and a trailer
naming its size and digest, so it is judged but never held whole. Retained bodies share a
budget per trace (``body_budget``, 512 MiB: a default ``verify`` holds at most ~80 MiB in one
run); beyond it the oldest 2xx exchanges lose their bodies first (``evicted``), then the
oldest others; the ``keep_recent`` most recent of each stay, so errors and what surrounds
a failure stay readable the longest.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from contracts.routes import DELAY_HEADER
from harness.redaction import MASK, SECRET_HEADERS, Redactor

__all__ = [
    "BODY_BUDGET",
    "BODY_CAP",
    "KEEP_RECENT",
    "LEGS",
    "TRUNCATED_PREFIX",
    "Exchange",
    "FailureKind",
    "Leg",
    "Trace",
]

BODY_CAP = 8 * 1024 * 1024
"""A body up to this many bytes is kept whole (until evicted); a larger one is truncated."""
TRUNCATED_PREFIX = 64 * 1024
"""How much of a truncated body is kept (then a trailer with its size and digest)."""
BODY_BUDGET = 512 * 1024 * 1024
"""Bytes of bodies one trace retains before it evicts the oldest (2xx first)."""
KEEP_RECENT = 256
"""The most recent 2xx exchanges, and the most recent others, whose bodies are never
evicted (a window: what a failure's report shows around it)."""
JSON_JUDGE_LIMIT = 256 * 1024 * 1024
"""Truncated bodies up to this size are still judged JSON or not (without keeping them)."""

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
    request_size: int = 0
    """Bytes of the request body as sent (before redaction, before any truncation)."""
    response_size: int = 0
    """Bytes of the answer body as received (before redaction, before any truncation)."""
    request_truncated: bool = False
    """Whether ``request_body`` keeps only the first 64 KiB (over ``body_cap``) and a
    trailer ``[feed-harness truncated: N bytes, sha256 D]`` (with ``, masked ***: kinds``
    when a secret was masked anywhere in it, so a search for the mask still finds it)."""
    response_truncated: bool = False
    """As ``request_truncated``, for ``response_body``."""
    request_masked: tuple[str, ...] = ()
    """Kinds of secret masked in the request body (``client_secret``, ``access_token``,
    ``secret``...), found on the whole body when recorded: exact even once truncated."""
    response_masked: tuple[str, ...] = ()
    """As ``request_masked``, for the answer body."""
    evicted: bool = False
    """Whether both bodies were dropped to keep the trace within its budget; the compact
    record (sizes, digests, JSON or not, masked kinds) stays."""
    _request_json: Any = field(default=_UNPARSED, repr=False)
    _response_json: Any = field(default=_UNPARSED, repr=False)
    _request_digest: str | None = field(default=None, repr=False)
    _response_digest: str | None = field(default=None, repr=False)
    _request_is_json: bool | None = field(default=None, repr=False)
    _response_is_json: bool | None = field(default=None, repr=False)
    _held: int = field(default=0, repr=False)

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
        """The request body parsed as JSON, or None when it is not JSON (or no longer
        held whole: truncated or evicted; ``request_is_json`` still says)."""
        if self._request_json is _UNPARSED:
            whole = not (self.request_truncated or self.evicted)
            ok, self._request_json = _parse_body(self.request_body) if whole else (False, None)
            if whole:
                self._request_is_json = ok
        return self._request_json

    def response_json(self) -> Any:
        """The answer body parsed as JSON, or None when it is not JSON (or no longer held
        whole: truncated or evicted; ``response_is_json`` still says)."""
        if self._response_json is _UNPARSED:
            whole = not (self.response_truncated or self.evicted)
            ok, self._response_json = _parse_body(self.response_body) if whole else (False, None)
            if whole:
                self._response_is_json = ok
        return self._response_json

    @property
    def request_is_json(self) -> bool | None:
        """Whether the whole request body (as recorded, redacted) parsed as JSON; kept
        through truncation and eviction. None: too large to judge (over 256 MiB)."""
        if self._request_is_json is None and not (self.request_truncated or self.evicted):
            self.request_json()
        return self._request_is_json

    @property
    def response_is_json(self) -> bool | None:
        """As ``request_is_json``, for the answer body."""
        if self._response_is_json is None and not (self.response_truncated or self.evicted):
            self.response_json()
        return self._response_is_json

    @property
    def request_digest(self) -> str:
        """SHA-256 (hex) of the whole request body as recorded (redacted, untruncated)."""
        if self._request_digest is None:
            self._request_digest = hashlib.sha256(self.request_body).hexdigest()
        return self._request_digest

    @property
    def response_digest(self) -> str:
        """SHA-256 (hex) of the whole answer body as recorded (redacted, untruncated)."""
        if self._response_digest is None:
            self._response_digest = hashlib.sha256(self.response_body).hexdigest()
        return self._response_digest

    @property
    def truncated(self) -> bool:
        """Whether either body was truncated when recorded."""
        return self.request_truncated or self.response_truncated

    @property
    def ok(self) -> bool:
        """Answered 2xx with no failure (the bodies evicted first)."""
        return self.failure is None and self.status is not None and 200 <= self.status < 300

    # ------------------------------------------------------------------ the answer, read

    @property
    def answer(self) -> dict[str, Any] | None:
        """The answer body when it is a JSON object (None otherwise, or no longer held)."""
        value = self.response_json()
        return value if isinstance(value, dict) else None

    @property
    def answer_status(self) -> str | None:
        """The answer body's ``status`` (``ok``, ``RETRY``...), if a string."""
        value = self.answer.get("status") if self.answer is not None else None
        return value if isinstance(value, str) else None

    @property
    def message(self) -> str:
        """The answer body's ``message`` ("" when there is none)."""
        value = self.answer.get("message") if self.answer is not None else None
        return value if isinstance(value, str) else ""

    @property
    def delay_ms(self) -> float | None:
        """The delay a connector answer asks for: ``x-mics-next-msg-delay``, else the body's
        ``next_msg_delay_in_ms``."""
        raw = self.response_header(DELAY_HEADER)
        if raw:
            try:
                return float(raw)
            except ValueError:
                pass
        value = self.answer.get("next_msg_delay_in_ms") if self.answer is not None else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return None

    @property
    def partner_code(self) -> str | None:
        """The ``error.code`` of a partner's error answer (``RATE_LIMITED``...)."""
        error = self.answer.get("error") if self.answer is not None else None
        code = error.get("code") if isinstance(error, dict) else None
        return code if isinstance(code, str) else None

    @property
    def retry_after(self) -> float | None:
        """The ``Retry-After`` seconds of the answer, if it has a number there."""
        raw = self.response_header("retry-after")
        try:
            return float(raw) if raw else None
        except ValueError:
            return None

    def finish(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> Exchange:
        """Record the answer (redacted; truncated over the trace's ``body_cap``)."""
        trace = self.trace
        redactor = trace.redactor
        self.status = status
        self.response_headers, leaked = _redact_headers(redactor, headers)
        redacted, self.response_masked = redactor.body_masked(body)
        self.response_size = len(body)
        if leaked:
            self.redacted += ("response_headers",)
        if redacted is not body and redacted != body:
            self.redacted += ("response_body",)
        self.response_body, self.response_truncated = trace._capped(
            self, redacted, self.response_masked, response=True
        )
        self._end()
        trace._held_by(self, len(self.response_body))
        return self

    def fail(self, kind: FailureKind, detail: str = "") -> Exchange:
        """Record that no usable answer came; an answer already recorded is kept."""
        self.failure = kind
        self.detail = self.trace.redactor.text(detail)
        if self.end_seq is None:
            self._end()
            self.trace._held_by(self, 0)
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
            "evidence": self.evidence(),
        }

    def evidence(self) -> dict[str, Any]:
        """The compact record of both bodies: what survives truncation and eviction."""
        return {
            "request": {
                "size": self.request_size,
                "sha256": self.request_digest,
                "truncated": self.request_truncated,
                "json": self.request_is_json,
                "masked": list(self.request_masked),
            },
            "response": {
                "size": self.response_size,
                "sha256": self.response_digest,
                "truncated": self.response_truncated,
                "json": self.response_is_json,
                "masked": list(self.response_masked),
            },
            "evicted": self.evicted,
        }

    def _drop_bodies(self) -> None:
        """Evict: settle the compact record from the bodies, then let the bodies go."""
        _ = self.request_digest, self.response_digest, self.request_is_json
        _ = self.response_is_json
        self.request_body = b""
        self.response_body = b""
        self._request_json = self._response_json = None
        self.evicted = True


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


def _parse_body(body: bytes) -> tuple[bool, Any]:
    """Whether ``body`` is JSON, and its value (None when it is not)."""
    if not body:
        return False, None
    try:
        return True, json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False, None


def _seq_of(exchange: Exchange) -> int:
    return exchange.seq


def _none(*_: Any) -> None:
    return None


def _is_json_lean(body: bytes) -> bool | None:
    """Whether a (large) body is JSON, building no more than one level of it at a time."""
    if len(body) > JSON_JUDGE_LIMIT:
        return None
    try:
        json.loads(body, object_pairs_hook=_none, parse_float=_none, parse_int=_none)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return True


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
        *,
        body_cap: int = BODY_CAP,
        body_budget: int = BODY_BUDGET,
        keep_recent: int = KEEP_RECENT,
    ) -> None:
        """``body_cap``: a larger body is truncated when recorded; ``body_budget``: bytes
        of bodies retained before eviction; ``keep_recent``: exchanges never evicted once
        only non-2xx ones are left (see the module docstring)."""
        self._clock = clock
        self.redactor = redactor if redactor is not None else Redactor()
        self.body_cap = body_cap
        self.body_budget = body_budget
        self.keep_recent = keep_recent
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._held_bytes = 0
        self._ok: deque[Exchange] = deque()  # finished 2xx, holding bodies: evicted first
        self._kept: deque[Exchange] = deque()  # finished otherwise, holding bodies

    @property
    def held_bytes(self) -> int:
        """Bytes of bodies this trace holds now (at most ``body_budget`` once recorded)."""
        return self._held_bytes

    def _capped(
        self, exchange: Exchange, body: bytes, masked: tuple[str, ...], *, response: bool
    ) -> tuple[bytes, bool]:
        """``body`` as it will be kept, and whether it was truncated (facts settled first)."""
        if len(body) <= self.body_cap:
            return body, False
        digest = hashlib.sha256(body).hexdigest()
        is_json = _is_json_lean(body)
        if response:
            exchange._response_digest, exchange._response_is_json = digest, is_json
        else:
            exchange._request_digest, exchange._request_is_json = digest, is_json
        note = f"[feed-harness truncated: {len(body)} bytes, sha256 {digest}"
        if masked:
            note += f", masked {MASK}: {', '.join(masked)}"
        return body[:TRUNCATED_PREFIX] + f"\n{note}]".encode(), True

    def _held_by(self, exchange: Exchange, added: int) -> None:
        """Count ``added`` bytes held by ``exchange``; once it is done, make it evictable,
        then evict until within the budget."""
        with self._lock:
            exchange._held += added
            self._held_bytes += added
            if exchange.done and exchange._held and not exchange.evicted:
                (self._ok if exchange.ok else self._kept).append(exchange)
            if self._held_bytes > self.body_budget:
                self._evict()

    def _evict(self) -> None:
        """Drop bodies until within the budget: oldest 2xx first, then oldest others; the
        ``keep_recent`` last of each kind stay (called with the lock held)."""
        while self._held_bytes > self.body_budget and len(self._ok) > self.keep_recent:
            exchange = self._ok.popleft()
            if exchange.evicted:
                continue
            if not exchange.ok:  # failed after its 2xx (not-json): keep it longer
                self._kept.append(exchange)
                continue
            self._release(exchange)
        while self._held_bytes > self.body_budget and len(self._kept) > self.keep_recent:
            exchange = self._kept.popleft()
            if not exchange.evicted:
                self._release(exchange)

    def _release(self, exchange: Exchange) -> None:
        self._held_bytes -= exchange._held
        exchange._held = 0
        exchange._drop_bodies()

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
        redacted, masked = redactor.body_masked(body)
        exchange = Exchange(
            seq=0,
            leg=leg,
            method=method.upper(),
            url=redactor.url(url),
            request_headers=request_headers,
            request_body=redacted,
            virtual_start=self.now(),
            real_start=time.perf_counter(),
            trace=self,
            tags=tags,
            request_size=len(body),
            request_masked=masked,
        )
        if exchange.url != url:
            exchange.redacted += ("url",)
        if leaked:
            exchange.redacted += ("request_headers",)
        if redacted is not body and redacted != body:
            exchange.redacted += ("request_body",)
        exchange.request_body, exchange.request_truncated = self._capped(
            exchange, redacted, masked, response=False
        )
        held = len(exchange.request_body)
        with self._lock:
            exchange.seq = next(self._counter)
            self._exchanges.append(exchange)
            exchange._held = held
            self._held_bytes += held
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

    def since(self, seq: int) -> list[Exchange]:
        """The exchanges numbered ``seq`` or more, in order (a bisection: sequence numbers
        grow in recording order)."""
        with self._lock:
            start = bisect.bisect_left(self._exchanges, seq, key=_seq_of)
            return self._exchanges[start:]

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
