"""The core conformance runs: a feed's whole life, invalid configurations, an oversized batch.

Each script drives ``record.platform`` and writes what the checks need into
``record.notes`` (its own dataclass of :mod:`harness.clauses.notes`); ``record.feeds`` names
the feeds it drove. Nothing sleeps: waiting is the virtual clock.
"""

from __future__ import annotations

from fake_partner import Limits, PartnerError, PartnerUsageError, Scenario
from harness.clauses.evidence import RunRecord, RunSpec
from harness.clauses.notes import (
    Answered,
    ConflictNote,
    ConnectionProbe,
    Creation,
    EmptyBatch,
    EmptyBodyProbe,
    InvalidConfigCase,
    InvalidConfigNotes,
    LifecycleNotes,
    OversizedNotes,
    Step,
    TransientNotReady,
    TroubleshootNote,
)
from harness.clauses.run_names import INVALID_CONFIG, LIFECYCLE, OVERSIZED, OVERSIZED_BYTES
from harness.generators import make_users
from harness.simulator import Feed
from harness.users import SimUser

__all__ = [
    "BYTE_LIMIT",
    "EMPTY_BODY_ROUTES",
    "LIFECYCLE_USERS",
    "OVERSIZED_BATCH",
    "OVERSIZED_BYTES_USERS",
    "PARTNER_OPERATION_LIMIT",
    "PROBE_TAG",
    "RUN_SPECS",
    "UNKNOWN_ACTION",
]

EMPTY_BODY_ROUTES: tuple[str, ...] = (
    "external_segment_creation",
    "external_segment_connection",
    "user_segment_update",
    "batch_update",
    "troubleshoot",
)
"""The POST feed routes probed with an empty body (``b""`` and ``b"{}"``)."""
PROBE_TAG = "probe"
"""Exchange tag set on the empty-body probes (value ``"empty-body"``)."""
UNKNOWN_ACTION = "FEED_HARNESS_UNKNOWN_ACTION"
LIFECYCLE_USERS = 200
PARTNER_OPERATION_LIMIT = 10_000
OVERSIZED_BATCH = 10_200
"""Users (one eligible identifier each) flushed as one batch in the ``oversized`` run."""
BYTE_LIMIT = 1024 * 1024
"""The partner's body limit in the ``oversized-bytes`` run (its ``technical_config`` says so)."""
OVERSIZED_BYTES_USERS = 1_400
EMAILS_PER_USER = 10
"""Users of the ``oversized-bytes`` run and their emails: one operation of 10 identifiers
each, about 1.3 MB of upload in 1,400 operations (far under 10,000), over ``BYTE_LIMIT``."""
_ACCOUNT = "acc-1"
_PROCESSING_WAIT = 120.0
"""Virtual seconds waited before troubleshooting: past the partner's processing (30 s)."""


def _segment_ids(record: RunRecord) -> list[str]:
    ids: list[str] = record.partner.segment_ids()
    return ids


def _property(record: RunRecord, feed: Feed) -> str | None:
    value: str | None = record.gateway.property_value(feed.feed_id, "partner_segment_id")
    return value


def _partner_status(record: RunRecord, segment_id: str | None) -> str | None:
    """The core status of the segment a connector's id names (any dialect)."""
    if not segment_id:
        return None
    try:
        status = record.partner.segment(record.partner.core_segment_id(segment_id)).get("status")
    except PartnerUsageError:
        return None
    return status if isinstance(status, str) else None


def _create(record: RunRecord, feed: Feed) -> Creation:
    """Call creation once (with the run's retries) and note the partner's segments around it."""
    before = _segment_ids(record)
    step = Step.of(feed.create())
    return Creation(step, tuple(before), tuple(_segment_ids(record)), _property(record, feed))


def _probe_empty_bodies(feed: Feed) -> list[EmptyBodyProbe]:
    probes: list[EmptyBodyProbe] = []
    for name in EMPTY_BODY_ROUTES:
        for body in (b"", b"{}"):
            answer = feed.call(name, body)
            if answer.exchange is not None:
                answer.exchange.tags[PROBE_TAG] = "empty-body"
            probes.append(EmptyBodyProbe(name, body.decode(), Answered.of(answer)))
    return probes


def _pre_create_segment(record: RunRecord, name: str) -> str:
    """Create a partner segment named ``name`` through the partner's Python API, as a
    crashed earlier creation would have left it (not in the ledger nor the trace)."""
    return record.partner.create_segment(_ACCOUNT, name, description="left by an earlier attempt")


def _hold_provisioning(record: RunRecord, segment_id: str | None) -> bool:
    """Make the partner answer the segment's next call 404 ``SEGMENT_NOT_READY`` (a transient
    fault, as a partner re-provisioning would): the connector asks for a delay and a retry."""
    core = record.partner.core_segment_id(segment_id) if segment_id else None
    if not core or core not in record.partner.segment_ids():
        return False
    return record.partner.hold_provisioning(core)


def _troubleshoot(record: RunRecord, feed: Feed) -> TroubleshootNote:
    """``FETCH_DESTINATION_AUDIENCE`` (asked again, up to 3 times, when it fails: a flaky
    partner) and the partner's snapshot of the segment right after the answer."""
    attempts: list[Answered] = []
    snapshot: dict[str, object] | None = None
    for _ in range(3):
        answer = feed.troubleshoot("FETCH_DESTINATION_AUDIENCE")
        segment_id = _property(record, feed)
        try:
            core = record.partner.core_segment_id(segment_id) if segment_id else None
            snapshot = record.partner.segment(core) if core else None
        except PartnerUsageError:
            snapshot = None
        attempts.append(Answered.of(answer))
        if answer.status == 200 or answer.body_status == "not_implemented":
            break
    return TroubleshootNote(attempts[-1], tuple(attempts), snapshot)


def lifecycle(record: RunRecord, seed: int) -> None:
    """A feed's whole life under the user's scenario.

    Notes (:class:`~harness.clauses.notes.LifecycleNotes`): the empty-body probes (made
    before any creation), creation twice, a connection call right after creation with the
    partner segment's status around it, a feed whose segment name the partner already has
    (the 409 path), the polled connection, the update indices of the initial load, live
    UPSERT/DELETE and DELETE of users never added (with their flush's batches),
    troubleshoot and the partner's snapshot right after, an unknown troubleshoot action, 5
    users sent while the partner answers the segment's next call 404 SEGMENT_NOT_READY (a
    RETRY with a delay, then OK), an empty batch, the final ``partner_segment_id``.
    """
    notes = record.notes
    assert isinstance(notes, LifecycleNotes)
    platform = record.platform
    main = platform.new_feed(partner_account_id=_ACCOUNT)
    record.feeds["main"] = main
    notes.main_feed = main.feed_id
    notes.empty_body_probes = _probe_empty_bodies(main)

    notes.creation = _create(record, main)
    notes.creation_retry = _create(record, main)

    segment_id = _property(record, main)
    before = _partner_status(record, segment_id)
    probe = main.call("external_segment_connection")
    notes.connection_probe = ConnectionProbe(
        Answered.of(probe), segment_id, before, _partner_status(record, segment_id)
    )

    conflict_name = f"feed-harness conflict {seed}"
    try:
        existing = _pre_create_segment(record, conflict_name)
    except (PartnerUsageError, PartnerError) as err:  # a scenario without acc-1 or a client
        notes.conflict = ConflictNote(error=f"could not pre-create the partner segment: {err}")
    else:
        conflict = platform.new_feed(partner_account_id=_ACCOUNT, segment_name=conflict_name)
        record.feeds["conflict"] = conflict
        notes.conflict_feed = conflict.feed_id
        # as the connector's partner shows it (a LinkedIn id, not the core's)
        shown = record.partner.external_segment_id(existing)
        notes.conflict = ConflictNote(shown, _create(record, conflict))

    if not (notes.creation.step.ok or notes.creation_retry.step.ok):
        record.aborted = f"creation of feed {main.feed_id} failed: {main.failure}"
        return
    notes.connection = Step.of(main.connect())

    users = make_users(LIFECYCLE_USERS, seed=seed, shared_emails=0.05, devices_per_user=(0, 3))
    notes.initial_load = [u.index for u in main.upsert(users)]
    main.flush()
    newcomers = make_users(20, seed=seed + 10_000, devices_per_user=(0, 2))
    leaving = [u for u in users if u.eligible_partner_identifiers(main.identifying)][:20]
    notes.live_upserts = [u.index for u in main.upsert(newcomers)]
    notes.live_deletes = [u.index for u in main.delete(leaving)]
    main.flush()
    strangers = _never_added(seed)
    notes.absent_deletes = [u.index for u in main.delete(strangers)]
    notes.absent_delete_batches = [b.batch_id for b in main.flush()]

    platform.clock.advance(_PROCESSING_WAIT)
    notes.troubleshoot = _troubleshoot(record, main)
    notes.troubleshoot_unknown = Answered.of(main.troubleshoot(UNKNOWN_ACTION))
    notes.unknown_action = UNKNOWN_ACTION

    held = _hold_provisioning(record, _property(record, main))
    late = main.upsert(make_users(5, seed=seed + 30_000, eligible_ratio=1.0))
    notes.transient_not_ready = TransientNotReady(
        held, tuple(u.index for u in late), tuple(b.batch_id for b in main.flush())
    )
    empty = main.batch_update_raw([])
    notes.empty_batch = EmptyBatch(
        empty.batch_id,
        tuple(a.exchange_seq for a in empty.attempts if a.exchange_seq is not None),
    )
    notes.partner_segment_id = _property(record, main)


def _never_added(seed: int) -> list[SimUser]:
    """Users no feed ever saw, each with at least one eligible identifier."""
    return make_users(10, seed=seed + 20_000, eligible_ratio=1.0, devices_per_user=(1, 2))


def invalid_config(record: RunRecord, seed: int) -> None:
    """Creation of feeds that cannot work: no ``partner_account_id``, no identifying
    resource selected, then (after corrupting the ``technical_config`` file) a valid feed.

    Notes (:class:`~harness.clauses.notes.InvalidConfigNotes`): one case each, in that
    order (``missing-account``, ``no-identifying``, ``unreadable-config``), with the words one
    of which the message must contain, the creation and the partner's segments around it.
    """
    platform = record.platform
    notes = record.notes
    assert isinstance(notes, InvalidConfigNotes)

    def attempt(case: str, feed: Feed, expect: tuple[str, ...]) -> None:
        record.feeds[case] = feed
        notes.cases.append(InvalidConfigCase(case, feed.feed_id, expect, _create(record, feed)))

    attempt(
        "missing-account",
        platform.new_feed(partner_account_id=None),
        ("partner_account_id",),
    )
    attempt(
        "no-identifying",
        platform.new_feed(partner_account_id=_ACCOUNT, identifying=()),
        ("identifying", "identifier"),
    )
    record.gateway.set_configuration_file("technical_config", b'{"partner_endpoint": ')
    attempt(
        "unreadable-config",
        platform.new_feed(partner_account_id=_ACCOUNT),
        ("technical_config",),
    )


def oversized(record: RunRecord, seed: int) -> None:
    """One batch over the partner's 10,000-operation limit (``batch_flush_max_size`` is
    raised above it): ~10,200 users with one eligible email each, one flush.

    Notes (:class:`~harness.clauses.notes.OversizedNotes`): creation and connection, how
    many users were sent, every batch of the feed, those of the final flush, and the items
    in the biggest one.
    """
    notes = record.notes
    assert isinstance(notes, OversizedNotes)
    feed = record.platform.new_feed(partner_account_id=_ACCOUNT, identifying=("USER_EMAIL",))
    record.feeds["main"] = feed
    notes.creation = Step.of(feed.create())
    notes.connection = Step.of(feed.connect())
    users = [
        SimUser(
            user_point_id=f"up-{seed}-{i}",
            emails=(f"big.{seed}.{i}@example.com",),
        )
        for i in range(OVERSIZED_BATCH)
    ]
    notes.users = len(users)
    feed.upsert(users)
    batches = feed.flush()
    notes.batch_ids = [b.batch_id for b in feed.batches]
    notes.largest_batch = max((len(b.items) for b in feed.batches), default=0)
    notes.flushed = [b.batch_id for b in batches]


def oversized_bytes(record: RunRecord, seed: int) -> None:
    """One batch under the operation limit but over the partner's body limit (1 MiB, in
    ``technical_config``): 1,400 users with 10 emails each, one flush, ``batch_content``
    items as JSON objects. Notes as the ``oversized`` run's (``OversizedNotes``)."""
    notes = record.notes
    assert isinstance(notes, OversizedNotes)
    feed = record.platform.new_feed(partner_account_id=_ACCOUNT, identifying=("USER_EMAIL",))
    record.feeds["main"] = feed
    notes.creation = Step.of(feed.create())
    notes.connection = Step.of(feed.connect())
    users = [
        SimUser(
            user_point_id=f"ub-{seed}-{i}",
            emails=tuple(f"wide.{seed}.{i}.{n}@example.com" for n in range(EMAILS_PER_USER)),
        )
        for i in range(OVERSIZED_BYTES_USERS)
    ]
    notes.users = len(users)
    feed.upsert(users)
    batches = feed.flush()
    notes.batch_ids = [b.batch_id for b in feed.batches]
    notes.largest_batch = max((len(b.items) for b in feed.batches), default=0)
    notes.flushed = [b.batch_id for b in batches]


RUN_SPECS: tuple[RunSpec, ...] = (
    RunSpec(
        LIFECYCLE,
        lifecycle,
        description=(
            "empty-body probes, creation twice, a 409 name conflict, connection polls, "
            "initial load, live UPSERT/DELETE, absent DELETE, troubleshoot, a transient "
            "not-ready, empty batch"
        ),
        settings={"max_creation_attempts": 3},
        notes=LifecycleNotes,
    ),
    RunSpec(
        INVALID_CONFIG,
        invalid_config,
        description="creation without partner_account_id, identifiers, or a readable config",
        notes=InvalidConfigNotes,
    ),
    RunSpec(
        OVERSIZED,
        oversized,
        # the partner's own limits (10,000 operations, 5 MiB), whatever --scenario says
        scenario=Scenario(),
        description=(
            f"one batch of {OVERSIZED_BATCH} items (over the partner's 10,000 operations), "
            "batch_content items sent as JSON strings"
        ),
        settings={"batch_flush_max_size": 10_500, "batch_content_as_json": True},
        notes=OversizedNotes,
    ),
    RunSpec(
        OVERSIZED_BYTES,
        oversized_bytes,
        scenario=Scenario(limits=Limits(max_body_bytes=BYTE_LIMIT)),
        description=(
            f"one batch of {OVERSIZED_BYTES_USERS} users with {EMAILS_PER_USER} emails each: "
            "under 10,000 operations, over the partner's 1 MiB body limit"
        ),
        settings={"batch_flush_max_size": 2_000},
        notes=OversizedNotes,
    ),
)
"""The core runs, in the order ``runs.py`` lists them."""
