"""What the simulator sent and what came back: per update, per batch attempt, per session.

Clauses read these beside the trace: each item's origin, every batch attempt, the totals.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.users import Operation, SimUser

__all__ = [
    "BatchAttempt",
    "BatchOutcome",
    "BatchRecord",
    "FileDelivery",
    "QueuedItem",
    "SessionAccounting",
    "UpdateRecord",
]

BatchOutcome = Literal["OK", "ERROR", "DEAD_LETTER"]
"""How a batch ended: a final ``OK`` / ``ERROR`` answer, or given up after retries."""


@dataclass(slots=True, eq=False)
class UpdateRecord:
    """One ``user_segment_update`` sent (all attempts). ``outcome``: the final body status
    (``ok``, ``no_eligible_identifier``, ``error``, ``retry`` when 429 never stopped),
    ``http-<code>`` without one, or the failure kind (``timeout``, ``crash``, ...)."""

    index: int
    session_id: str
    operation: Operation
    user: SimUser = field(repr=False)
    attempts: int = 0
    http_status: int | None = None
    outcome: str = "pending"
    items: int = 0
    exchanges: list[int] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class QueuedItem:
    """One ``BATCH_DELIVERY`` item waiting for (or sent in) a batch, with its origin
    (None for a raw batch sent by ``Feed.batch_update_raw``)."""

    content: Any
    grouping_key: str
    update: UpdateRecord | None = field(repr=False)


@dataclass(slots=True)
class BatchAttempt:
    """One ``batch_update`` call of a batch and its answer."""

    batch_id: str
    attempt: int
    size: int
    virtual_time: float
    http_status: int | None
    status: str | None
    sent_items_in_success: int | None
    sent_items_in_error: int | None
    failure: str | None
    final: bool
    delay_header_seconds: float | None
    waited_seconds: float
    exchange_seq: int | None


@dataclass(slots=True, eq=False)
class BatchRecord:
    """One batch (one flush of one grouping key), every attempt, and how it ended."""

    batch_id: str
    session_id: str
    grouping_key: str
    items: list[QueuedItem] = field(repr=False)
    raw: bool = False
    attempts: list[BatchAttempt] = field(default_factory=list)
    outcome: BatchOutcome | None = None

    @property
    def final_attempt(self) -> BatchAttempt | None:
        """The attempt whose answer was final (``OK``/``ERROR``), if any."""
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and last.final else None

    @property
    def contents(self) -> list[Any]:
        """The ``batch_content`` sent."""
        return [item.content for item in self.items]


@dataclass(slots=True)
class FileDelivery:
    """One file of ``FILE_DELIVERY`` content, per ``(destination_token, grouping_key)``."""

    destination_token: str
    grouping_key: str
    chunks: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The file's content: the chunks appended in order."""
        return "".join(self.chunks)

    def lines(self) -> list[str]:
        """The file's non-empty lines."""
        return [line for line in self.text.splitlines() if line.strip()]


@dataclass(slots=True)
class SessionAccounting:
    """Totals of one feed session (what the platform records)."""

    session_id: str
    users_sent: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    update_attempts: int = 0
    update_retries: int = 0
    updates_answered: Counter[str] = field(default_factory=Counter)
    delivery_items: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    batch_attempts: int = 0
    batch_retries: int = 0
    items_delivered: Counter[str] = field(default_factory=Counter)
    items_reported_success: int = 0
    items_reported_error: int = 0
    items_dead_lettered: int = 0
    batches_dead_lettered: int = 0
    files: int = 0
    virtual_seconds_waited: float = 0.0
    slow_calls: int = 0

    @property
    def retries(self) -> int:
        """Every re-send: updates after 429 plus batches after RETRY / failures."""
        return self.update_retries + self.batch_retries

    def record_update(self, update: UpdateRecord) -> None:
        """Count one finished update."""
        self.users_sent += 1
        self.operations[update.operation] += 1
        self.update_attempts += update.attempts
        self.update_retries += update.attempts - 1
        self.updates_answered[update.outcome] += 1

    def record_batch(self, batch: BatchRecord) -> None:
        """Count one finished batch."""
        self.batches += 1
        self.batch_attempts += len(batch.attempts)
        self.batch_retries += max(0, len(batch.attempts) - 1)
        size = len(batch.items)
        if batch.outcome == "DEAD_LETTER":
            self.items_dead_lettered += size
            self.batches_dead_lettered += 1
            return
        if batch.outcome is not None:
            self.items_delivered[batch.outcome] += size
        final = batch.final_attempt
        if final is not None:
            self.items_reported_success += final.sent_items_in_success or 0
            self.items_reported_error += final.sent_items_in_error or 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for reports."""
        return {
            "session_id": self.session_id,
            "users_sent": self.users_sent,
            "operations": dict(self.operations),
            "update_attempts": self.update_attempts,
            "update_retries": self.update_retries,
            "updates_answered": dict(self.updates_answered),
            "delivery_items": dict(self.delivery_items),
            "batches": self.batches,
            "batch_attempts": self.batch_attempts,
            "batch_retries": self.batch_retries,
            "items_delivered": dict(self.items_delivered),
            "items_reported_success": self.items_reported_success,
            "items_reported_error": self.items_reported_error,
            "items_dead_lettered": self.items_dead_lettered,
            "batches_dead_lettered": self.batches_dead_lettered,
            "files": self.files,
            "retries": self.retries,
            "virtual_seconds_waited": self.virtual_seconds_waited,
            "slow_calls": self.slow_calls,
        }
