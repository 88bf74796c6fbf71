"""The ledger: every request the partner handled, in order, with who, what and the outcome.

Tokens appear only as fingerprints (``fp-`` + 12 hex of their SHA-256), never raw.
An entry's operations are stored compactly (:class:`LedgerOperations`: one flat tuple of
the identifiers it received, sharing the parsed strings with the membership, an offset,
an action code and an outcome byte per operation, the rejection codes by index), and
read back as :class:`LedgerOperation` records on demand. The query methods answer the
conformance clauses' questions.
"""

from __future__ import annotations

import threading
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from fake_partner.clock import isoformat

Member = tuple[str, str]

SIGNALS = (
    "throttled",
    "transient",
    "expired_token",
    "invalid_grant",
    "revoked_token",
    "not_ready",
    "per_item",
    "permanent",
)
"""The values of :attr:`LedgerEntry.signal` besides ``None`` (a plain success): the face
tells the core which answers are throttling, transient, per-item or permanent."""


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


_ACCEPTED = 1
_REJECTED = 2


class LedgerOperations(Sequence[LedgerOperation]):
    """An upload's operations, compact: what a tuple of :class:`LedgerOperation` says,
    in about 6 bytes per operation plus 8 per identifier, instead of two objects each.

    Per-request counts (``accepted``, ``rejected``) and the rejected indices are kept
    as such; items are rebuilt on access (equal to the records they came from).
    """

    __slots__ = ("_accepted", "_actions", "_codes", "_identifiers", "_names", "_offsets", "_state")

    def __init__(
        self,
        operations: Iterable[tuple[str, tuple[Member, ...]]],
        accepted: Sequence[bool] | None = None,
        codes: Sequence[str | None] | None = None,
    ) -> None:
        """From ``(action, identifiers)`` pairs and per-operation outcomes (``None``:
        none accepted / none judged), as the HTTP face knows them."""
        names: dict[str, int] = {}
        codes_of_actions: list[int] = []
        every_action: list[str] = []
        offsets = array("I", [0])
        identifiers: list[Member] = []
        for action, members in operations:
            code = names.get(action)
            if code is None:
                code = names[action] = len(names)
            codes_of_actions.append(code)
            every_action.append(action)
            identifiers.extend(members)
            offsets.append(len(identifiers))
        count = len(codes_of_actions)
        # One byte per action (ADD, REMOVE, the odd invalid one); more distinct: kept whole.
        self._actions: bytes | None = bytes(codes_of_actions) if len(names) <= 256 else None
        self._names: tuple[str, ...] = (
            tuple(names) if self._actions is not None else tuple(every_action)
        )
        self._offsets = offsets
        self._identifiers = tuple(identifiers)
        state = bytearray(count)
        rejected: dict[int, str] = {}
        accepted_count = 0
        for index in range(count):
            if accepted is not None and accepted[index]:
                state[index] = _ACCEPTED
                accepted_count += 1
            code_of = codes[index] if codes is not None else None
            if code_of is not None:
                state[index] |= _REJECTED
                rejected[index] = code_of
        self._state = bytes(state)
        self._codes = rejected
        self._accepted = accepted_count

    @classmethod
    def of(cls, records: Iterable[LedgerOperation]) -> LedgerOperations:
        """From records (indices are positions)."""
        given = list(records)
        return cls(
            ((r.action, r.identifiers) for r in given),
            [r.accepted for r in given],
            [r.code for r in given],
        )

    @property
    def accepted(self) -> int:
        """How many operations were applied."""
        return self._accepted

    @property
    def rejected(self) -> int:
        """How many operations were rejected with a code."""
        return len(self._codes)

    @property
    def rejected_indices(self) -> dict[int, str]:
        """Index -> rejection code, for the operations rejected."""
        return dict(self._codes)

    def identifiers(self) -> tuple[Member, ...]:
        """Every identifier received, in order (repeats included)."""
        return self._identifiers

    def __len__(self) -> int:
        return len(self._state)

    @overload
    def __getitem__(self, index: int) -> LedgerOperation: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[LedgerOperation, ...]: ...

    def __getitem__(self, index: int | slice) -> LedgerOperation | tuple[LedgerOperation, ...]:
        if isinstance(index, slice):
            return tuple(self._item(i) for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("operation index out of range")
        return self._item(index)

    def _item(self, index: int) -> LedgerOperation:
        offsets = self._offsets
        return LedgerOperation(
            index,
            self._names[index if self._actions is None else self._actions[index]],
            self._identifiers[offsets[index] : offsets[index + 1]],
            bool(self._state[index] & _ACCEPTED),
            self._codes.get(index),
        )

    def __iter__(self) -> Iterator[LedgerOperation]:
        return (self._item(index) for index in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LedgerOperations | tuple | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LedgerOperations({len(self)} operations, {self._accepted} accepted)"


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
    operations: Sequence[LedgerOperation]
    """Given as a tuple of records (or :class:`LedgerOperations`); kept compact."""
    applied: bool
    faults: tuple[str, ...]
    grant_type: str | None = None
    partial_failure: bool | None = None
    dialect: str = "generic"
    """The face that answered: ``generic``, ``linkedin`` or ``meta``."""
    dialect_code: str | None = None
    """The error code as the dialect wrote it (``"RATE_LIMITED"``, ``"TOO_MANY_REQUESTS"``,
    ``"80003"``...), or ``None`` for a success or a dropped connection."""
    signal: str | None = None
    """What kind of answer this was, whatever the dialect (see :data:`SIGNALS`)."""
    retry_after: float | None = None
    """Seconds the partner asked the client to wait (``None``: it said nothing)."""
    dialect_route: str | None = None
    """The face's own route (``"POST /rest/dmpSegments/{id}/users"``); ``route`` is the core's."""

    def __post_init__(self) -> None:
        if not isinstance(self.operations, LedgerOperations):
            object.__setattr__(self, "operations", LedgerOperations.of(self.operations))

    @property
    def compact(self) -> LedgerOperations:
        """The operations in their compact form (counts, rejected indices, identifiers)."""
        assert isinstance(self.operations, LedgerOperations)
        return self.operations

    @property
    def dropped(self) -> bool:
        return self.status is None

    @property
    def accepted(self) -> int:
        return self.compact.accepted

    @property
    def rejected(self) -> int:
        return self.compact.rejected

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
            "dialect": self.dialect,
            "dialect_route": self.dialect_route,
            "dialect_code": self.dialect_code,
            "signal": self.signal,
            "retry_after": self.retry_after,
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
            yield from entry.compact.identifiers()

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
