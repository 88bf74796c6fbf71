"""One view of a run for every check: the trace and the partner's ledger, joined.

A :class:`RunView` is what Schemathesis calls a check context: checks, the stateful
invariants and the report's excerpts read the same object. It holds the run's exchanges
from ``RunRecord.first_seq`` on (a stateful example sees its own), links every partner
exchange to its ledger entry and every exchange to the platform call open when it
started, with one rule for dropped connections: a request the partner recorded as
dropped (no answer) carries no ``X-Request-Id`` back, so the dropped entries of a method
and path pair, in order, with the exchanges of that pair that got no answer, in order.

A view is built once per record and rebuilt when the run grew since (the stateful
machine judges after every step).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fake_partner import LedgerEntry, PartnerError
from fake_partner.routes import PARTNER_ROUTES, resolve
from harness.trace import Exchange, Leg

if TYPE_CHECKING:
    from harness.clauses.evidence import Evidence, RunRecord

__all__ = [
    "CONNECTOR",
    "PARTNER",
    "PLATFORM",
    "SEGMENT_CREATE_ROUTE",
    "SEGMENT_READ_ROUTE",
    "TOKEN_ROUTE",
    "UPLOAD_ROUTE",
    "RunView",
    "is_api",
    "view_of",
    "views",
]

PLATFORM: Leg = "platform->connector"
CONNECTOR: Leg = "connector->gateway"
PARTNER: Leg = "connector->partner"
UPLOAD_ROUTE = "POST /v1/segments/{segment_id}/members"
SEGMENT_READ_ROUTE = "GET /v1/segments/{segment_id}"
SEGMENT_CREATE_ROUTE = "POST /v1/accounts/{account_id}/segments"
TOKEN_ROUTE = "POST /oauth/token"
"""The partner's core routes, as its ledger names them in every dialect (a LinkedIn
``POST /rest/dmpSegments/{id}/users`` is an upload): checks read these, never a dialect's
paths."""
_TRANSIENT_STATUSES = frozenset({408, 429})
_CACHE = "_run_view"
"""The attribute of a RunRecord caching its view, with the sizes it was built at."""


@dataclass
class RunView:
    """A run's exchanges (from its ``first_seq``) and ledger entries, linked."""

    record: RunRecord
    exchanges: list[Exchange] = field(init=False)
    """Every exchange of the run's window, all legs, in ``seq`` order."""
    calls: list[Exchange] = field(init=False)
    """The platform->connector exchanges."""
    partner: list[Exchange] = field(init=False)
    """The connector->partner exchanges the connector made (the harness's own aside)."""
    entries: tuple[LedgerEntry, ...] = field(init=False)
    """The partner's ledger entries of the window."""
    _by_seq: dict[int, Exchange] = field(init=False, repr=False)
    _by_request_id: dict[str, LedgerEntry] = field(init=False, repr=False)
    _entry_of_seq: dict[int, LedgerEntry] = field(init=False, repr=False)
    _exchange_of: dict[str, Exchange] = field(init=False, repr=False)
    _starts: list[int] = field(init=False, repr=False)
    _seqs: list[int] = field(init=False, repr=False)
    _partner_seqs: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        record = self.record
        trace = record.platform.trace
        self.exchanges = trace.since(record.first_seq) if record.first_seq else list(trace)
        self.calls = [e for e in self.exchanges if e.leg == PLATFORM]
        self.partner = [
            e
            for e in self.exchanges
            if e.leg == PARTNER and not str(e.tags.get("actor", "")).startswith("harness")
        ]
        entries = record.partner.ledger.entries
        self.entries = entries[record.first_ledger :] if record.first_ledger else entries
        self._by_seq = {e.seq: e for e in self.exchanges}
        self._by_request_id = {entry.request_id: entry for entry in self.entries}
        self._entry_of_seq = {}
        self._exchange_of = {}
        unanswered: dict[tuple[str, str], list[Exchange]] = defaultdict(list)
        for exchange in self.exchanges:
            if exchange.leg != PARTNER:
                continue
            request_id = exchange.response_header("x-request-id")
            entry = self._by_request_id.get(request_id) if request_id else None
            if entry is not None:
                self._entry_of_seq[exchange.seq] = entry
                self._exchange_of[entry.request_id] = exchange
            elif exchange.status is None and exchange.failure is not None:
                unanswered[(exchange.method, exchange.path)].append(exchange)
        dropped: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
        for entry in self.entries:
            if entry.dropped:
                dropped[(entry.method, entry.path)].append(entry)
        for key, lost in dropped.items():
            for exchange, entry in zip(unanswered.get(key, ()), lost, strict=False):
                self._entry_of_seq[exchange.seq] = entry
                self._exchange_of[entry.request_id] = exchange
        self._starts = [c.seq for c in self.calls]
        self._seqs = [e.seq for e in self.exchanges]
        self._partner_seqs = [e.seq for e in self.partner]

    # ------------------------------------------------------------------ identity

    @property
    def name(self) -> str:
        return self.record.name

    # ------------------------------------------------------------------ trace

    def exchange(self, seq: int | None) -> Exchange | None:
        """The exchange numbered ``seq`` in the window, if any."""
        return self._by_seq.get(seq) if seq is not None else None

    def of_leg(self, leg: Leg, path: str | None = None) -> list[Exchange]:
        """The window's exchanges of one leg, optionally of one exact path."""
        return [e for e in self.exchanges if e.leg == leg and (path is None or e.path == path)]

    def enclosing(self, seq: int) -> Exchange | None:
        """The platform call open when exchange ``seq`` started."""
        index = bisect.bisect_left(self._starts, seq) - 1
        if index < 0:
            return None
        call = self.calls[index]
        return call if call.end_seq is None or seq < call.end_seq else None

    def inside(self, exchange: Exchange) -> list[Exchange]:
        """Every exchange, of any leg, that started while ``exchange`` was open."""
        first = bisect.bisect_right(self._seqs, exchange.seq)
        if exchange.end_seq is None:
            return self.exchanges[first:]
        return self.exchanges[first : bisect.bisect_left(self._seqs, exchange.end_seq)]

    def nested(self, call: Exchange) -> list[Exchange]:
        """The connector's partner exchanges made while ``call`` was open."""
        end = call.end_seq if call.end_seq is not None else math.inf
        first = bisect.bisect_right(self._partner_seqs, call.seq)
        last = len(self.partner) if end == math.inf else bisect.bisect_left(self._partner_seqs, end)
        return self.partner[first:last]

    def uploads(self, within: Exchange | None = None) -> list[Exchange]:
        """Members uploads to the partner, optionally those nested in one platform call."""
        source = self.nested(within) if within is not None else self.partner
        return [e for e in source if self.route(e) == UPLOAD_ROUTE]

    # ------------------------------------------------------------------ partner calls, read

    def route(self, exchange: Exchange) -> str | None:
        """The partner's core route of a partner exchange, in any dialect: its ledger
        entry's; a request the partner refused unread has none, and is read as the
        generic API would route it."""
        entry = self.entry(exchange)
        if entry is not None and entry.route is not None:
            return entry.route
        try:
            route, _ = resolve(PARTNER_ROUTES, exchange.method, exchange.path)
        except PartnerError:
            return None
        return route.key

    def operations(self, exchange: Exchange) -> int | None:
        """How many operations a partner request carried (its ledger's count, in any
        dialect), else the generic body's ``operations`` list."""
        entry = self.entry(exchange)
        if entry is not None and (entry.operations or entry.route == UPLOAD_ROUTE):
            return len(entry.operations)
        body = exchange.request_json()
        operations = body.get("operations") if isinstance(body, dict) else None
        return len(operations) if isinstance(operations, list) else None

    def signal(self, exchange: Exchange) -> str | None:
        """What kind of answer the partner gave (the ledger's ``signal``: ``throttled``,
        ``transient``, ``expired_token``, ``not_ready``, ``per_item``...); without an
        entry, read from the HTTP answer as the generic face writes it."""
        entry = self.entry(exchange)
        if entry is not None:
            return entry.signal
        if exchange.status is None:
            return "transient" if exchange.failure in ("connection", "timeout") else None
        if exchange.status == 429:
            return "throttled"
        if exchange.status >= 500 or exchange.status in _TRANSIENT_STATUSES:
            return "transient"
        return "permanent" if exchange.status >= 400 else None

    def error_code(self, exchange: Exchange) -> str | None:
        """The partner's core error code of an exchange (``RATE_LIMITED``...), any dialect."""
        entry = self.entry(exchange)
        return entry.error_code if entry is not None else exchange.partner_code

    def core_segment(self, segment_id: str | None) -> str | None:
        """The core id of a segment id as the connector knows it (a LinkedIn ``1000007``
        is ``seg-000007``): what the ledger's ``segment_id`` holds."""
        return self.record.partner.core_segment_id(segment_id) if segment_id else None

    def call(self, seq: object) -> Exchange | None:
        """The platform call numbered ``seq`` (None for any other exchange or value)."""
        exchange = self._by_seq.get(seq) if isinstance(seq, int) else None
        return exchange if exchange is not None and exchange.leg == PLATFORM else None

    # ------------------------------------------------------------------ ledger

    def entry(self, exchange: Exchange) -> LedgerEntry | None:
        """The ledger entry of a partner exchange (dropped ones by the rule above)."""
        return self._entry_of_seq.get(exchange.seq)

    def exchange_of(self, entry: LedgerEntry) -> Exchange | None:
        """The partner exchange a ledger entry records (None: made outside the trace)."""
        return self._exchange_of.get(entry.request_id)

    def seq_of(self, entry: LedgerEntry) -> int | None:
        exchange = self._exchange_of.get(entry.request_id)
        return exchange.seq if exchange is not None else None

    def owner(self, entry: LedgerEntry) -> Exchange | None:
        """The platform call a ledger entry's request was made in."""
        exchange = self._exchange_of.get(entry.request_id)
        return self.enclosing(exchange.seq) if exchange is not None else None

    def v1(self) -> list[LedgerEntry]:
        """The entries of the partner's API proper (not OAuth, not admin), any dialect."""
        return [e for e in self.entries if is_api(e)]

    def nested_entries(self, call: Exchange) -> list[LedgerEntry]:
        return [entry for e in self.nested(call) if (entry := self.entry(e)) is not None]

    def accepted(self, uploads: list[Exchange]) -> tuple[int, int]:
        """Operations the partner accepted and rejected (per item) in these uploads; an
        upload missing from the ledger is read from the partner's answer."""
        accepted = rejected = 0
        for upload in uploads:
            entry = self.entry(upload)
            if entry is not None:
                accepted += entry.accepted
                rejected += entry.rejected
                continue
            body = upload.response_json()
            if upload.status == 200 and isinstance(body, dict):
                accepted += _count(body.get("accepted"))
                rejected += _count(body.get("rejected"))
        return accepted, rejected


def is_api(entry: LedgerEntry) -> bool:
    """Whether an entry is a call of the partner's API proper (its core route is under
    ``/v1/``, whatever path the dialect used)."""
    route = entry.route or f"{entry.method} {entry.path}"
    return route.partition(" ")[2].startswith("/v1/")


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def view_of(record: RunRecord) -> RunView:
    """The record's view, built once (again when its trace or ledger grew since)."""
    size = (len(record.platform.trace), len(record.partner.ledger))
    cached = getattr(record, _CACHE, None)
    if isinstance(cached, tuple) and cached[0] == size:
        view: RunView = cached[1]
        return view
    view = RunView(record)
    setattr(record, _CACHE, (size, view))
    return view


def views(evidence: Evidence) -> Iterator[RunView]:
    """The view of every run of the evidence."""
    for record in evidence:
        yield view_of(record)
