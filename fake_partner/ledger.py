"""The ledger: every request the partner handled, in order, with who, what and the outcome.

Tokens appear only as fingerprints (``fp-`` + 12 hex of their SHA-256), never raw.
Operations are stored as small frozen records sharing the parsed strings, never copies
of the request body. The query methods answer the conformance clauses' questions.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fake_partner.clock import isoformat

Member = tuple[str, str]


@dataclass(frozen=True, slots=True)
class LedgerOperation:
    """One operation of an upload and what became of it.

    ``accepted`` is True when it was applied; ``code`` names the rejection, and is
    ``None`` both for accepted operations and for ones never judged (the whole request
    was refused: 401, 413, a fault, ``INVALID_OPERATIONS`` for its valid siblings).
    """

    index: int
    action: str
    identifiers: tuple[Member, ...]
    accepted: bool
    code: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "action": self.action,
            "identifiers": [{"type": t, "value": v} for t, v in self.identifiers],
            "accepted": self.accepted,
            "code": self.code,
        }


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One request: sequence, clock times, who, what, and the outcome.

    ``status`` is ``None`` when the connection was dropped without an answer;
    ``applied`` says whether the request changed state (even under a 5xx or a drop).
    """

    sequence: int
    request_id: str
    time: float
    answered_at: float
    method: str
    path: str
    route: str | None
    token: str | None
    client_id: str | None
    account_id: str | None
    segment_id: str | None
    status: int | None
    error_code: str | None
    operations: tuple[LedgerOperation, ...]
    applied: bool
    faults: tuple[str, ...]
    grant_type: str | None = None
    partial_failure: bool | None = None

    @property
    def dropped(self) -> bool:
        return self.status is None

    @property
    def accepted(self) -> int:
        return sum(1 for operation in self.operations if operation.accepted)

    @property
    def rejected(self) -> int:
        return sum(1 for operation in self.operations if operation.code is not None)

    def to_json(self, operations: bool = True) -> dict[str, Any]:
        """Plain data (for ``GET /_admin/ledger``); ``operations=False`` keeps only counts."""
        data: dict[str, Any] = {
            "sequence": self.sequence,
            "request_id": self.request_id,
            "time": isoformat(self.time),
            "epoch": self.time,
            "answered_at": isoformat(self.answered_at),
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "token": self.token,
            "client_id": self.client_id,
            "account_id": self.account_id,
            "segment_id": self.segment_id,
            "status": self.status,
            "dropped": self.dropped,
            "error_code": self.error_code,
            "applied": self.applied,
            "faults": list(self.faults),
            "grant_type": self.grant_type,
            "partial_failure": self.partial_failure,
            "received": len(self.operations),
            "accepted": self.accepted,
            "rejected": self.rejected,
        }
        if operations:
            data["operations"] = [operation.to_json() for operation in self.operations]
        return data


class Ledger:
    """The append-only record of requests, with the queries the clauses need."""

    def __init__(self) -> None:
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()

    def append(self, entry: LedgerEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def entries(self) -> tuple[LedgerEntry, ...]:
        """Every entry, in order (a cheap copy of the references)."""
        with self._lock:
            return tuple(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(self.entries)

    def where(self, predicate: Callable[[LedgerEntry], bool]) -> list[LedgerEntry]:
        return [entry for entry in self.entries if predicate(entry)]

    def since(self, sequence: int) -> list[LedgerEntry]:
        """Entries with a sequence number greater than ``sequence``."""
        return self.where(lambda entry: entry.sequence > sequence)

    def between(self, start: float, end: float) -> list[LedgerEntry]:
        """Requests received at clock time ``start <= time < end``."""
        return self.where(lambda entry: start <= entry.time < end)

    def before(self, time: float) -> list[LedgerEntry]:
        """Requests received strictly before clock time ``time``."""
        return self.where(lambda entry: entry.time < time)

    def for_token(self, token_fingerprint: str) -> list[LedgerEntry]:
        return self.where(lambda entry: entry.token == token_fingerprint)

    def for_segment(self, segment_id: str) -> list[LedgerEntry]:
        return self.where(lambda entry: entry.segment_id == segment_id)

    def for_account(self, account_id: str) -> list[LedgerEntry]:
        return self.where(lambda entry: entry.account_id == account_id)

    def uploads(self, segment_id: str | None = None) -> list[LedgerEntry]:
        """Member uploads (``POST /v1/segments/{id}/members``), optionally for one segment."""
        return self.where(
            lambda entry: (
                entry.route == "POST /v1/segments/{segment_id}/members"
                and (segment_id is None or entry.segment_id == segment_id)
            )
        )

    def accepted_operations(self, segment_id: str | None = None) -> list[LedgerOperation]:
        """Operations applied, in order (including under an apply-then-fail 5xx or a drop)."""
        return [
            operation
            for entry in self.uploads(segment_id)
            for operation in entry.operations
            if operation.accepted
        ]

    def accepted_per_segment(self) -> dict[str, int]:
        """Segment id -> number of operations applied to it."""
        counts: Counter[str] = Counter()
        for entry in self.uploads():
            if entry.segment_id is not None:
                counts[entry.segment_id] += entry.accepted
        return dict(counts)

    def identifiers_received(self) -> Iterator[Member]:
        """Every ``(type, value)`` received, accepted or not, repeats included, in order."""
        for entry in self.entries:
            for operation in entry.operations:
                yield from operation.identifiers

    def values_seen(self) -> set[Member]:
        """The distinct ``(type, value)`` pairs ever received (for "no raw PII received")."""
        return set(self.identifiers_received())

    def forbidden(self) -> list[LedgerEntry]:
        """Cross-account attempts: the requests answered 403."""
        return self.where(lambda entry: entry.status == 403)

    def token_grants(self, grant_type: str | None = None) -> list[LedgerEntry]:
        """Successful ``/oauth/token`` answers, optionally of one grant type."""
        return self.where(
            lambda entry: (
                entry.route == "POST /oauth/token"
                and entry.status == 200
                and (grant_type is None or entry.grant_type == grant_type)
            )
        )

    def refresh_count(self) -> int:
        """How many access tokens were obtained with a refresh token."""
        return len(self.token_grants("refresh_token"))

    def requests_per_token(self) -> dict[str, int]:
        """Token fingerprint -> number of requests that carried it."""
        counts: Counter[str] = Counter()
        for entry in self.entries:
            if entry.token is not None:
                counts[entry.token] += 1
        return dict(counts)

    def to_json(self, since: int = 0, operations: bool = True) -> list[dict[str, Any]]:
        return [entry.to_json(operations) for entry in self.since(since)]
