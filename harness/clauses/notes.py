"""What each conformance run notes for the checks, typed: one dataclass per run.

A run's script fills its own notes as it goes; a field still ``None`` is a step the run did
not reach (it stopped early: ``RunRecord.aborted`` says why), and a check that needs it
says so rather than pass. Exchanges are named by their trace ``seq``: the trace holds the
rest (bodies, headers, nested partner calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from harness.clauses.evidence import Evidence, RunRecord
    from harness.clauses.stateful import StatefulOutcome
    from harness.drivers import Answer
    from harness.simulator import Feed, StepOutcome

__all__ = [
    "Answered",
    "AuthNotes",
    "ConflictNote",
    "ConnectionFaultsNotes",
    "ConnectionProbe",
    "Consent",
    "Creation",
    "EmptyBatch",
    "EmptyBodyProbe",
    "FeedSummary",
    "InvalidConfigCase",
    "InvalidConfigNotes",
    "InvalidGrantNotes",
    "LifecycleNotes",
    "OversizedNotes",
    "PartnerSummary",
    "PresetNotes",
    "RunNotes",
    "StatefulNotes",
    "Step",
    "TamperedState",
    "TransientNotReady",
    "TroubleshootNote",
    "missing",
    "notes_of",
]

N = TypeVar("N", bound="RunNotes")


# ---------------------------------------------------------------------- pieces


@dataclass(frozen=True)
class Answered:
    """One connector answer: its trace seq, HTTP code, body ``status``, message, failure."""

    seq: int | None = None
    http_status: int | None = None
    status: str | None = None
    message: str | None = None
    failure: str | None = None

    @classmethod
    def of(cls, answer: Answer) -> Answered:
        return cls(
            seq=answer.exchange.seq if answer.exchange is not None else None,
            http_status=answer.status,
            status=answer.body_status,
            message=answer.message,
            failure=answer.failure,
        )


@dataclass(frozen=True)
class Step:
    """A creation or connection as the platform played it (with its retries or polls)."""

    ok: bool
    status: str | None = None
    http_status: int | None = None
    message: str | None = None
    attempts: int = 0
    seqs: tuple[int, ...] = ()
    summary: str = ""

    @classmethod
    def of(cls, outcome: StepOutcome) -> Step:
        return cls(
            ok=outcome.ok,
            status=outcome.status,
            http_status=outcome.http_status,
            message=outcome.message,
            attempts=outcome.attempts,
            seqs=tuple(a.exchange.seq for a in outcome.answers if a.exchange is not None),
            summary=outcome.summary,
        )


@dataclass(frozen=True)
class Creation:
    """A creation and the partner's segments around it."""

    step: Step
    segments_before: tuple[str, ...] = ()
    segments_after: tuple[str, ...] = ()
    partner_segment_id: str | None = None
    """The feed's ``partner_segment_id`` property right after."""

    @property
    def new_segments(self) -> list[str]:
        before = set(self.segments_before)
        return [s for s in self.segments_after if s not in before]


@dataclass(frozen=True)
class EmptyBodyProbe:
    """A POST feed route called with an empty body (``""`` or ``"{}"``)."""

    route: str
    body: str
    answer: Answered


@dataclass(frozen=True)
class ConnectionProbe:
    """One connection call right after creation, and the partner segment's status around it."""

    answer: Answered
    partner_segment_id: str | None
    partner_status_before: str | None
    partner_status_after: str | None


@dataclass(frozen=True)
class ConflictNote:
    """Creation of a feed whose segment name the partner already has (the 409 path), or
    why the run could not set it up."""

    existing_segment_id: str | None = None
    creation: Creation | None = None
    error: str | None = None


@dataclass(frozen=True)
class TroubleshootNote:
    """``FETCH_DESTINATION_AUDIENCE`` (asked up to 3 times) and the partner's snapshot of
    the segment right after the last answer (its JSON, as the partner shows it)."""

    answer: Answered
    attempts: tuple[Answered, ...]
    snapshot: dict[str, object] | None


@dataclass(frozen=True)
class TransientNotReady:
    """Users sent while the partner answered the segment's next call 404 (``held``)."""

    held: bool
    updates: tuple[int, ...]
    batch_ids: tuple[str, ...]


@dataclass(frozen=True)
class EmptyBatch:
    batch_id: str
    seqs: tuple[int, ...]


@dataclass(frozen=True)
class FeedSummary:
    updates: int
    batches: int
    batch_attempts: int
    batch_outcomes: tuple[str, ...]
    state: str

    @classmethod
    def of(cls, feed: Feed) -> FeedSummary:
        return cls(
            updates=len(feed.updates),
            batches=len(feed.batches),
            batch_attempts=sum(len(b.attempts) for b in feed.batches),
            batch_outcomes=tuple(str(b.outcome) for b in feed.batches),
            state=str(feed.state),
        )


@dataclass(frozen=True)
class PartnerSummary:
    """What the partner's ledger saw in the run, counted."""

    v1_requests: int = 0
    uploads: int = 0
    refresh_requests: int = 0
    refresh_grants: int = 0
    invalid_grant: int = 0
    answers_401: int = 0
    answers_429: int = 0
    answers_5xx: int = 0
    dropped: int = 0
    operations_rejected: int = 0
    virtual_seconds: float = 0.0


@dataclass(frozen=True)
class InvalidConfigCase:
    """One creation that cannot work, and the words one of which its message must hold."""

    case: str
    feed_id: str
    expect: tuple[str, ...]
    creation: Creation


@dataclass(frozen=True)
class Consent:
    """The user's consent at the partner's login URL, as the harness played it."""

    http_status: int | None = None
    code_received: bool = False
    state_unchanged: bool = False
    error: str | None = None


@dataclass(frozen=True)
class TamperedState:
    """``/v1/authentication`` with a valid code and a tampered ``state``."""

    answer: Answered | None = None
    code_used_before: bool | None = None
    code_used: bool | None = None
    status_after: Answered | None = None
    not_applicable: str | None = None
    """Why this tampering could not be made (the state's format has no such field)."""


# ---------------------------------------------------------------------- per run


@dataclass
class RunNotes:
    """The notes of a run with nothing of its own to note (and of hand-built records)."""


@dataclass
class LifecycleNotes(RunNotes):
    """``lifecycle``: a feed's whole life (see ``harness.clauses.runs.core.lifecycle``)."""

    main_feed: str | None = None
    empty_body_probes: list[EmptyBodyProbe] | None = None
    creation: Creation | None = None
    creation_retry: Creation | None = None
    connection_probe: ConnectionProbe | None = None
    conflict: ConflictNote | None = None
    conflict_feed: str | None = None
    connection: Step | None = None
    initial_load: list[int] | None = None
    live_upserts: list[int] | None = None
    live_deletes: list[int] | None = None
    absent_deletes: list[int] | None = None
    absent_delete_batches: list[str] | None = None
    troubleshoot: TroubleshootNote | None = None
    troubleshoot_unknown: Answered | None = None
    unknown_action: str | None = None
    transient_not_ready: TransientNotReady | None = None
    empty_batch: EmptyBatch | None = None
    partner_segment_id: str | None = None


@dataclass
class InvalidConfigNotes(RunNotes):
    cases: list[InvalidConfigCase] = field(default_factory=list)


@dataclass
class OversizedNotes(RunNotes):
    """``oversized`` and ``oversized-bytes``: one batch that needs splitting."""

    creation: Step | None = None
    connection: Step | None = None
    users: int = 0
    batch_ids: list[str] = field(default_factory=list)
    largest_batch: int = 0
    flushed: list[str] = field(default_factory=list)


@dataclass
class PresetNotes(RunNotes):
    """A ``preset:NAME`` run: a feed's life under the preset's faults."""

    preset: str = ""
    users: int = 0
    deletes: int = 0
    final_advance: float = 0.0
    creation: Step | None = None
    connection: Step | None = None
    feed: FeedSummary | None = None
    partner: PartnerSummary | None = None


@dataclass
class InvalidGrantNotes(RunNotes):
    """``preset:invalid-grant``: a new feed and one activated before the revocation."""

    creation_new: Step | None = None
    partner_segment_id: str | None = None
    creation_existing: Step | None = None
    connection: Step | None = None
    troubleshoot: Answered | None = None
    feed: FeedSummary | None = None
    partner: PartnerSummary | None = None


@dataclass
class ConnectionFaultsNotes(RunNotes):
    creation: Step | None = None
    connection: Step | None = None
    partner: PartnerSummary | None = None


@dataclass
class AuthNotes(RunNotes):
    """``auth``: status, consent, tampered states, round trip, dynamic properties,
    feed-destination OAuth, metadata (see ``harness.clauses.runs.faults``)."""

    partner_url: str | None = None
    creation: Step | None = None
    status_initial: Answered | None = None
    login_url: str | None = None
    consents: dict[str, Consent] = field(default_factory=dict)
    """By step: ``consent_1``, ``consent_2``, ``consent_destination``."""
    state_format: str | None = None
    tampered: dict[str, TamperedState] = field(default_factory=dict)
    """By ``TAMPERED_STATES`` key."""
    status_login: Answered | None = None
    login_url_2: str | None = None
    authentication: Answered | None = None
    status_authenticated: Answered | None = None
    dynamic_without_account: Answered | None = None
    dynamic_with_account: Answered | None = None
    logout: Answered | None = None
    status_after_logout: Answered | None = None
    oauth_redirect_url: Answered | None = None
    login_url_destination: str | None = None
    authentication_destination: Answered | None = None
    test_authentication_valid: Answered | None = None
    test_authentication_refused: Answered | None = None
    metadata: Answered | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    """Steps that could not be played, with why."""


@dataclass
class StatefulNotes(RunNotes):
    outcome: StatefulOutcome | None = None


# ---------------------------------------------------------------------- reading


def notes_of(evidence: Evidence, run: str, kind: type[N]) -> tuple[RunRecord, N] | tuple[None, str]:
    """``(record, notes)`` of a run, or ``(None, why they are missing)``."""
    record = evidence.get(run)
    if record is None:
        return None, f"run {run!r} was not executed: its evidence is missing"
    notes = record.notes
    if not isinstance(notes, kind):
        return None, f"run {run!r} noted {type(notes).__name__}, not {kind.__name__}"
    return record, notes


def missing(record: RunRecord, what: str) -> str:
    """Why a note ``what`` is missing: the run stopped before the step that records it."""
    why = f" ({record.aborted})" if record.aborted else ""
    return f"run {record.name!r} did not reach the step that records {what}{why}"
