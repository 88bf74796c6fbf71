"""The platform's side of a feed's life: creation, connection, updates, batching, retries.

The platform's policy and numbers (``SimulatorSettings``); all waiting is
``clock.advance``; records per update, per batch attempt and per session feed the clauses.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from contracts.routes import route
from fake_partner.collector import load_gc
from harness.accounting import (
    BatchAttempt,
    BatchRecord,
    FileDelivery,
    QueuedItem,
    SessionAccounting,
    UpdateRecord,
)
from harness.drivers import Answer, ConnectorDriver
from harness.redaction import Redactor
from harness.users import (
    DEFAULT_IDENTIFYING,
    MembershipModel,
    Operation,
    PartnerIdentifier,
    SimUser,
)

__all__ = [
    "Clock",
    "ConnectorUnavailableError",
    "Feed",
    "FeedState",
    "FeedStateError",
    "SimulatorSettings",
    "StepOutcome",
]

FeedState = Literal["NEW", "PUBLISHED", "ACTIVE", "FAILED"]
BATCH_ENDPOINT = "/v1/user_segment_update"
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
"""Compact JSON, one encoder made once (``json.dumps`` with ``separators`` makes one per call)."""
_CONNECTION_FAILURES = frozenset({"timeout", "connection", "crash"})


def _series(driver: ConnectorDriver) -> AbstractContextManager[None]:
    """The driver's ``series()`` when it has one (in-process: one hang backstop for the
    calls of a load instead of one per call), else nothing."""
    series = getattr(driver, "series", None)
    return series() if callable(series) else nullcontext()


class SimulatorSettings(BaseModel):
    """The platform's numbers (a real platform's defaults); seconds are virtual unless said."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_creation_attempts: int = Field(
        1, ge=1, description="creation calls before the run ends (the spec: no retry)"
    )
    creation_retry_interval: float = Field(60.0, ge=0)
    connection_poll_interval: float = Field(30.0, gt=0)
    connection_timeout: float = Field(900.0, ge=0)
    batch_flush_max_size: int = Field(1000, ge=1)
    max_batch_attempts: int = Field(8, ge=1)
    max_update_attempts: int = Field(8, ge=1)
    backoff_initial: float = Field(1.0, ge=0)
    backoff_max: float = Field(300.0, ge=0)
    call_timeout: float = Field(10.0, gt=0, description="real seconds per connector call")
    start_timeout: float = Field(20.0, gt=0, description="real seconds for a process to start")
    stop_grace: float = Field(5.0, ge=0, description="real seconds between SIGTERM and SIGKILL")
    slow_call_seconds: float = Field(
        2.0, gt=0, description="real seconds above which a call counts as slow (it waited)"
    )
    max_consecutive_failures: int = Field(
        5, ge=1, description="timeouts / crashes in a row after which the run stops"
    )
    include_raw_email: bool = Field(True, description="send USER_EMAIL.email beside the hash")
    batch_content_as_json: bool = Field(
        False,
        description="send each batch_content item as a JSON string (the SDK passes items as "
        "the platform queued them: strings or objects)",
    )

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based): exponential, capped."""
        return float(min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1)))


class Clock(Protocol):
    """The shared virtual clock (``fake_partner.VirtualClock``)."""

    def now(self) -> float:
        """Virtual epoch seconds."""
        ...

    def advance(self, seconds: float) -> float:
        """Move forward; return the new time."""
        ...


class FeedStateError(RuntimeError):
    """A feed step was asked in a state that does not allow it; the message says which."""


class ConnectorUnavailableError(RuntimeError):
    """The connector stopped answering (timeouts / crashes in a row); the run stops."""

    def __init__(self, message: str, answer: Answer) -> None:
        super().__init__(message)
        self.answer = answer


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """How creation or connection went: ``ok`` and the last answer's status or failure."""

    step: str
    ok: bool
    status: str | None
    http_status: int | None
    message: str | None
    """The last answer's ``message`` (or failure detail), secrets masked."""
    attempts: int
    virtual_seconds: float
    answers: tuple[Answer, ...]
    summary: str
    """One line for reports, secrets masked."""

    def __str__(self) -> str:
        return self.summary


class Feed:
    """One feed as the platform drives it; built by ``Platform.new_feed``."""

    def __init__(
        self,
        *,
        driver: ConnectorDriver,
        clock: Clock,
        settings: SimulatorSettings,
        feed_id: str,
        segment_id: str,
        datamart_id: str,
        identifying: Iterable[str] = DEFAULT_IDENTIFYING,
        partner_account_id: str | None = None,
        partner_membership: Callable[[], frozenset[PartnerIdentifier]] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.driver = driver
        self.clock = clock
        self.settings = settings
        self.feed_id = feed_id
        self.segment_id = segment_id
        self.datamart_id = datamart_id
        self.partner_account_id = partner_account_id
        self.identifying = tuple(identifying)
        self.state: FeedState = "NEW"
        self.failure: str | None = None
        self.model = MembershipModel(self.identifying)
        self.updates: list[UpdateRecord] = []
        self.batches: list[BatchRecord] = []
        self.files: dict[tuple[str, str], FileDelivery] = {}
        self.sessions: dict[str, SessionAccounting] = {}
        self._queues: dict[str, list[QueuedItem]] = {}
        self._session_count = 0
        self._consecutive_failures = 0
        self._partner_membership = partner_membership
        self.redactor = redactor
        self.session_id = self.new_session()

    def __repr__(self) -> str:
        return f"Feed({self.feed_id!r}, state={self.state}, session={self.session_id!r})"

    # ------------------------------------------------------------------ identity

    @property
    def identity(self) -> dict[str, str]:
        """``feed_id``, ``datamart_id``, ``segment_id``: the body of feed-level routes."""
        return {
            "feed_id": self.feed_id,
            "datamart_id": self.datamart_id,
            "segment_id": self.segment_id,
        }

    @property
    def accounting(self) -> SessionAccounting:
        """The current session's accounting."""
        return self.sessions[self.session_id]

    def new_session(self) -> str:
        """Open a new feed session (a re-activation); pending batches of the old one flush."""
        if self._session_count:
            self.flush()
        self._session_count += 1
        self.session_id = f"{self.feed_id}-session-{self._session_count}"
        self.sessions[self.session_id] = SessionAccounting(self.session_id)
        return self.session_id

    # ------------------------------------------------------------------ calls

    def call(self, route_name: str, body: Mapping[str, Any] | bytes | None = None) -> Answer:
        """Call any route once (no retry); ``body=None`` sends the feed's identity (nothing
        on a GET), ``b""`` sends no body."""
        target = route(route_name)
        if isinstance(body, bytes):
            payload = body
        elif body is not None:
            payload = json.dumps(body).encode()
        else:
            payload = b"" if target.method == "GET" else json.dumps(self.identity).encode()
        return self._call(target.method, target.path, payload)

    def _call(self, method: str, path: str, payload: bytes) -> Answer:
        answer = self.driver.call(method, path, payload, timeout=self.settings.call_timeout)
        if answer.real_seconds > self.settings.slow_call_seconds:
            self.accounting.slow_calls += 1
        if answer.failure in _CONNECTION_FAILURES:
            self._consecutive_failures += 1
        else:
            self._consecutive_failures = 0
        return answer

    def _guard(self, answer: Answer, what: str) -> None:
        """Stop the run once the connector failed too many calls in a row."""
        count = self._consecutive_failures
        if count < self.settings.max_consecutive_failures:
            return
        self.state = "FAILED"
        self.failure = f"the connector failed {count} calls in a row"
        raise ConnectorUnavailableError(
            f"feed {self.feed_id}: the connector failed {count} calls in a row, the last "
            f"{what}: {self._mask(answer.describe())}; the run stops here (see the trace)",
            answer,
        )

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.clock.advance(seconds)
            self.accounting.virtual_seconds_waited += seconds

    # ------------------------------------------------------------------ lifecycle

    def create(self) -> StepOutcome:
        """``external_segment_creation``: 200 ``ok`` publishes the feed, anything else fails
        it (after ``max_creation_attempts`` calls, ``creation_retry_interval`` apart)."""
        started = self.clock.now()
        answers: list[Answer] = []
        while True:
            answer = self.call("external_segment_creation")
            answers.append(answer)
            ok = _is_ok(answer)
            if ok or len(answers) >= self.settings.max_creation_attempts:
                break
            self._wait(self.settings.creation_retry_interval)
        outcome = self._outcome("creation", ok, answers, started)
        if ok:
            if self.state in ("NEW", "FAILED"):
                self.state = "PUBLISHED"
                self.failure = None
        else:
            self.state = "FAILED"
            self.failure = str(outcome)
        return outcome

    def connect(self) -> StepOutcome:
        """``external_segment_connection``, polled while it answers 502 (not ready yet)
        every ``connection_poll_interval`` up to ``connection_timeout``."""
        if self.state == "NEW":
            raise FeedStateError(
                f"feed {self.feed_id}: connect() before create(); call feed.create() first"
            )
        started = self.clock.now()
        answers: list[Answer] = []
        interval = self.settings.connection_poll_interval
        while True:
            answer = self.call("external_segment_connection")
            answers.append(answer)
            if answer.status != 502:
                break
            if self.clock.now() - started + interval > self.settings.connection_timeout:
                outcome = self._outcome("connection", False, answers, started)
                self.state = "FAILED"
                self.failure = f"not ready after {self.settings.connection_timeout:g} s: {outcome}"
                return outcome
            self._wait(interval)
        ok = _is_ok(answer)
        outcome = self._outcome("connection", ok, answers, started)
        if ok:
            self.state = "ACTIVE"
            self.failure = None
        else:
            self.state = "FAILED"
            self.failure = str(outcome)
        return outcome

    def _outcome(self, step: str, ok: bool, answers: list[Answer], started: float) -> StepOutcome:
        last = answers[-1]
        message = self._mask(last.message) if last.message is not None else None
        elapsed = self.clock.now() - started
        summary = (
            f"{step} {'ok' if ok else 'failed'} after {len(answers)} call(s), {elapsed:g} s "
            f"virtual: {self._mask(last.describe())}" + (f" ({message})" if message else "")
        )
        return StepOutcome(
            step=step,
            ok=ok,
            status=last.failure or last.body_status,
            http_status=last.status,
            message=message,
            attempts=len(answers),
            virtual_seconds=elapsed,
            answers=tuple(answers),
            summary=summary,
        )

    def _mask(self, text: str) -> str:
        return self.redactor.text(text) if self.redactor is not None else text

    def troubleshoot(self, action: str = "FETCH_DESTINATION_AUDIENCE") -> Answer:
        """``/v1/troubleshoot`` with ``action``."""
        return self.call("troubleshoot", {**self.identity, "action": action})

    # ------------------------------------------------------------------ updates

    def upsert(self, users: Iterable[SimUser]) -> list[UpdateRecord]:
        """Send UPSERT for each user (they enter the segment or gain identifiers)."""
        return self.send(users, "UPSERT")

    def delete(self, users: Iterable[SimUser]) -> list[UpdateRecord]:
        """Send DELETE for each user (they leave the segment)."""
        return self.send(users, "DELETE")

    def send(self, users: Iterable[SimUser], operation: Operation) -> list[UpdateRecord]:
        """One ``user_segment_update`` per user; batches flush as queues fill."""
        if self.state != "ACTIVE":
            raise FeedStateError(
                f"feed {self.feed_id} is {self.state}, not ACTIVE: updates go to an ACTIVE feed; "
                "call create() and connect() and check their outcomes"
                + (f" (last failure: {self.failure})" if self.failure else "")
            )
        if operation not in ("UPSERT", "DELETE"):
            raise ValueError(f"operation={operation!r}: use 'UPSERT' or 'DELETE'")
        with load_gc(), _series(self.driver):
            return [self._send_one(user, operation) for user in users]

    def _send_one(self, user: SimUser, operation: Operation) -> UpdateRecord:
        settings = self.settings
        record = UpdateRecord(len(self.updates), self.session_id, operation, user)
        self.updates.append(record)
        self.model.apply(operation, user)
        body = {
            "feed_id": self.feed_id,
            "session_id": self.session_id,
            "datamart_id": self.datamart_id,
            "segment_id": self.segment_id,
            "user_identifiers": user.to_user_identifiers(
                include_raw_email=settings.include_raw_email
            ),
            "user_profiles": user.to_user_profiles(),
            "ts": int(self.clock.now() * 1000),
            "operation": operation,
        }
        payload = _ENCODE(body).encode()
        while True:
            record.attempts += 1
            answer = self._call("POST", "/v1/user_segment_update", payload)
            if answer.exchange is not None:
                record.exchanges.append(answer.exchange.seq)
                answer.exchange.tags.update(update=record.index, attempt=record.attempts)
            record.http_status = answer.status
            record.outcome = _update_outcome(answer)
            if answer.status != 429 or record.attempts >= settings.max_update_attempts:
                break
            self._wait(max(answer.delay_seconds or 0.0, settings.backoff(record.attempts)))
        self.accounting.record_update(record)
        self._guard(answer, f"update #{record.index}")
        if answer.status == 200 and answer.failure is None and isinstance(answer.json, dict):
            self._collect(record, answer.json.get("data"))
        return record

    def _collect(self, record: UpdateRecord, data: object) -> None:
        if not isinstance(data, list):
            return
        accounting = self.accounting
        for item in data:
            if not isinstance(item, dict):
                accounting.delivery_items["invalid"] += 1
                continue
            kind = str(item.get("type"))
            accounting.delivery_items[kind] += 1
            record.items += 1
            grouping_key = str(item.get("grouping_key") or "")
            if kind == "BATCH_DELIVERY":
                queue = self._queues.setdefault(grouping_key, [])
                queue.append(QueuedItem(item.get("content"), grouping_key, record))
                if len(queue) >= self.settings.batch_flush_max_size:
                    self._flush_queue(grouping_key)
            elif kind == "FILE_DELIVERY":
                token = str(item.get("destination_token") or "")
                key = (token, grouping_key)
                file = self.files.get(key)
                if file is None:
                    file = self.files[key] = FileDelivery(token, grouping_key)
                    accounting.files += 1
                content = item.get("content")
                file.chunks.append(content if isinstance(content, str) else json.dumps(content))

    # ------------------------------------------------------------------ batches

    @property
    def pending(self) -> int:
        """Items queued and not yet sent in a batch."""
        return sum(len(queue) for queue in self._queues.values())

    def flush(self) -> list[BatchRecord]:
        """Send every queued item (end of a step), one batch per grouping key and size."""
        sent: list[BatchRecord] = []
        with load_gc(), _series(self.driver):
            for grouping_key in list(self._queues):
                while self._queues.get(grouping_key):
                    sent.append(self._flush_queue(grouping_key))
        return sent

    def _flush_queue(self, grouping_key: str) -> BatchRecord:
        queue = self._queues[grouping_key]
        size = self.settings.batch_flush_max_size
        items, rest = queue[:size], queue[size:]
        if rest:
            self._queues[grouping_key] = rest
        else:
            del self._queues[grouping_key]
        return self._deliver(items, grouping_key, raw=False, retry=True)

    def batch_update_raw(
        self, content: list[Any], *, grouping_key: str = "raw", retry: bool = True
    ) -> BatchRecord:
        """Send an arbitrary ``batch_content`` (empty, oversized, malformed items) through
        the batch policy; recorded and accounted like any batch (``raw=True``)."""
        items = [QueuedItem(entry, grouping_key, None) for entry in content]
        return self._deliver(items, grouping_key, raw=True, retry=retry)

    def _deliver(
        self, items: list[QueuedItem], grouping_key: str, *, raw: bool, retry: bool
    ) -> BatchRecord:
        settings = self.settings
        batch = BatchRecord(
            f"{self.feed_id}-batch-{len(self.batches) + 1}",
            self.session_id,
            grouping_key,
            items,
            raw=raw,
        )
        self.batches.append(batch)
        as_json = settings.batch_content_as_json and not raw
        body = {
            "batch_content": [
                _ENCODE(item.content)
                if as_json and not isinstance(item.content, str)
                else item.content
                for item in items
            ],
            "ts": int(self.clock.now() * 1000),
            "context": {
                "endpoint": BATCH_ENDPOINT,
                "feed_id": self.feed_id,
                "feed_session_id": self.session_id,
                "segment_id": self.segment_id,
                "datamart_id": self.datamart_id,
                "grouping_key": grouping_key,
            },
        }
        payload = _ENCODE(body).encode()
        max_attempts = settings.max_batch_attempts if retry else 1
        for attempt in range(1, max_attempts + 1):
            at = self.clock.now()
            answer = self._call("POST", "/v1/batch_update", payload)
            verdict = _batch_verdict(answer)
            last = verdict != "retry" or attempt == max_attempts
            wait = 0.0 if last else max(answer.delay_seconds or 0.0, settings.backoff(attempt))
            batch.attempts.append(_attempt(batch, attempt, len(items), at, answer, verdict, wait))
            if answer.exchange is not None:
                answer.exchange.tags.update(batch_id=batch.batch_id, attempt=attempt)
            batch.outcome = "DEAD_LETTER" if verdict == "retry" else verdict
            if last or self._consecutive_failures >= settings.max_consecutive_failures:
                break
            self._wait(wait)
        self.accounting.record_batch(batch)
        self._guard(answer, f"batch {batch.batch_id}")
        return batch

    # ------------------------------------------------------------------ membership

    def expected_membership(self) -> frozenset[PartnerIdentifier]:
        """The model: every operation sent, replayed in order as a set of (type, value)."""
        return self.model.members

    def settled_updates(self) -> list[UpdateRecord]:
        """The updates none of whose delivery items is still queued (all sent in a batch, or
        delivered by the update answer itself), in order."""
        sent: Counter[int] = Counter(
            item.update.index for b in self.batches for item in b.items if item.update is not None
        )
        return [u for u in self.updates if sent[u.index] >= u.items]

    def settled_membership(self) -> frozenset[PartnerIdentifier]:
        """The model of the settled updates alone (every update once nothing is queued)."""
        model = MembershipModel(self.identifying)
        for update in self.settled_updates():
            model.apply(update.operation, update.user)
        return model.members

    def unsettled_identifiers(self) -> frozenset[PartnerIdentifier]:
        """The eligible identifiers of the updates still (partly) queued: their items sent so
        far may already be on the partner, the rest not yet, so neither side says anything
        about them until the queue is flushed."""
        settled = {u.index for u in self.settled_updates()}
        found: set[PartnerIdentifier] = set()
        for update in self.updates:
            if update.index not in settled:
                found |= update.user.eligible_partner_identifiers(self.identifying)
        return frozenset(found)

    def partner_membership(self) -> frozenset[PartnerIdentifier]:
        """The partner segment's members now (segment id read from the gateway property)."""
        if self._partner_membership is None:
            raise FeedStateError(
                f"feed {self.feed_id} has no partner to read: build it with Platform.new_feed"
            )
        return self._partner_membership()


def _is_ok(answer: Answer) -> bool:
    return answer.status == 200 and answer.failure is None and answer.body_status == "ok"


def _update_outcome(answer: Answer) -> str:
    if answer.failure is not None:
        return answer.failure
    return answer.body_status or f"http-{answer.status}"


def _batch_verdict(answer: Answer) -> Literal["OK", "ERROR", "retry"]:
    """200 OK is done, 400 ERROR is dead; 429, 5xx, timeouts and drops are re-sent."""
    status = answer.status
    if status is None:
        return "retry"
    if status == 429 or status >= 500:
        return "retry"
    if 200 <= status < 300:
        return "OK"
    return "ERROR"


def _attempt(
    batch: BatchRecord,
    attempt: int,
    size: int,
    at: float,
    answer: Answer,
    verdict: str,
    wait: float,
) -> BatchAttempt:
    success = error = None
    if isinstance(answer.json, dict):
        raw_success, raw_error = (
            answer.json.get("sent_items_in_success"),
            answer.json.get("sent_items_in_error"),
        )
        success = raw_success if isinstance(raw_success, int) else None
        error = raw_error if isinstance(raw_error, int) else None
    return BatchAttempt(
        batch_id=batch.batch_id,
        attempt=attempt,
        size=size,
        virtual_time=at,
        http_status=answer.status,
        status=answer.body_status,
        sent_items_in_success=success,
        sent_items_in_error=error,
        failure=answer.failure,
        final=verdict != "retry",
        delay_header_seconds=answer.delay_seconds,
        waited_seconds=wait,
        exchange_seq=answer.exchange.seq if answer.exchange is not None else None,
    )
