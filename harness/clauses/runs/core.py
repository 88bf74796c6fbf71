"""The core conformance runs: a feed's whole life, invalid configurations, an oversized batch.

Each script drives ``record.platform`` and writes what the checks need into
``record.notes`` (the keys are listed in each script's docstring); ``record.feeds`` names
the feeds it drove. Nothing sleeps: waiting is the virtual clock.
"""

from __future__ import annotations

from typing import Any

from fake_partner import Limits, PartnerError, PartnerUsageError, Scenario
from harness.clauses.evidence import RunRecord, RunSpec
from harness.clauses.run_names import INVALID_CONFIG, LIFECYCLE, OVERSIZED, OVERSIZED_BYTES
from harness.drivers import Answer
from harness.generators import make_users
from harness.simulator import Feed, StepOutcome
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


def _seqs(answers: tuple[Answer, ...] | list[Answer]) -> list[int]:
    return [a.exchange.seq for a in answers if a.exchange is not None]


def _step(outcome: StepOutcome) -> dict[str, Any]:
    """A creation / connection outcome as plain data."""
    return {
        "ok": outcome.ok,
        "status": outcome.status,
        "http_status": outcome.http_status,
        "message": outcome.message,
        "attempts": outcome.attempts,
        "seqs": _seqs(outcome.answers),
        "summary": outcome.summary,
    }


def _answer(answer: Answer) -> dict[str, Any]:
    """One answer as plain data (its trace seq, code, body status, message)."""
    return {
        "seq": answer.exchange.seq if answer.exchange is not None else None,
        "http_status": answer.status,
        "status": answer.body_status,
        "failure": answer.failure,
        "message": answer.message,
    }


def _segment_ids(record: RunRecord) -> list[str]:
    ids: list[str] = record.partner.segment_ids()
    return ids


def _property(record: RunRecord, feed: Feed) -> str | None:
    value: str | None = record.gateway.property_value(feed.feed_id, "partner_segment_id")
    return value


def _partner_status(record: RunRecord, segment_id: str | None) -> str | None:
    if not segment_id:
        return None
    try:
        status = record.partner.segment(segment_id).get("status")
    except PartnerUsageError:
        return None
    return status if isinstance(status, str) else None


def _create(record: RunRecord, feed: Feed) -> dict[str, Any]:
    """Call creation once (with the run's retries) and note the partner's segments after."""
    before = _segment_ids(record)
    note = _step(feed.create())
    after = _segment_ids(record)
    note["segments_before"] = before
    note["segments_after"] = after
    note["partner_segment_id"] = _property(record, feed)
    return note


def _probe_empty_bodies(record: RunRecord, feed: Feed) -> list[dict[str, Any]]:
    probes: list[dict[str, Any]] = []
    for name in EMPTY_BODY_ROUTES:
        for body in (b"", b"{}"):
            answer = feed.call(name, body)
            if answer.exchange is not None:
                answer.exchange.tags[PROBE_TAG] = "empty-body"
            probes.append({"route": name, "body": body.decode(), **_answer(answer)})
    return probes


def _pre_create_segment(record: RunRecord, name: str) -> str:
    """Create a partner segment named ``name`` through the partner's Python API, as a
    crashed earlier creation would have left it (not in the ledger nor the trace)."""
    return record.partner.create_segment(_ACCOUNT, name, description="left by an earlier attempt")


def _hold_provisioning(record: RunRecord, segment_id: str | None) -> bool:
    """Make the partner answer the segment's next call 404 ``SEGMENT_NOT_READY`` (a transient
    fault, as a partner re-provisioning would): the connector asks for a delay and a retry."""
    if not segment_id or segment_id not in record.partner.segment_ids():
        return False
    return record.partner.hold_provisioning(segment_id)


def _troubleshoot(record: RunRecord, feed: Feed) -> dict[str, Any]:
    """``FETCH_DESTINATION_AUDIENCE`` (asked again, up to 3 times, when it fails: a flaky
    partner) and the partner's snapshot of the segment right after the answer."""
    attempts: list[dict[str, Any]] = []
    snapshot: dict[str, Any] | None = None
    for _ in range(3):
        answer = feed.troubleshoot("FETCH_DESTINATION_AUDIENCE")
        segment_id = _property(record, feed)
        try:
            snapshot = record.partner.segment(segment_id) if segment_id else None
        except PartnerUsageError:
            snapshot = None
        attempts.append(_answer(answer))
        if answer.status == 200 or answer.body_status == "not_implemented":
            break
    return {**attempts[-1], "attempts": attempts, "snapshot": snapshot}


def lifecycle(record: RunRecord, seed: int) -> None:
    """A feed's whole life under the user's scenario.

    Notes: ``empty_body_probes`` (route, body, seq, http_status, status per probe, made
    before any creation); ``main_feed`` / ``conflict_feed`` (feed ids); ``creation`` and
    ``creation_retry`` (ok, status, seqs, segments_before/after, partner_segment_id);
    ``connection_probe`` (seq, answer, partner_status_before/after: one connection call
    right after creation); ``conflict`` (existing_segment_id and the same creation fields,
    for a feed whose segment name the partner already has: the 409 path; or ``error`` when
    the scenario let the run not pre-create that segment);
    ``connection`` (the polled connection outcome); ``initial_load``, ``live_upserts``,
    ``live_deletes``, ``absent_deletes`` (update indices of the main feed);
    ``absent_delete_batches`` (batch ids of the flush that held only absent deletes);
    ``troubleshoot`` (seq, status, attempts, ``snapshot``: the partner segment right after
    the answer); ``troubleshoot_unknown`` (seq, status, action); ``transient_not_ready``
    (``held``: whether the partner was made to answer the next segment call 404
    SEGMENT_NOT_READY, then the ``updates`` and ``batch_ids`` of the 5 users sent into it:
    a RETRY with a delay, then OK); ``empty_batch`` (batch_id, seqs); ``partner_segment_id``
    (the main feed's, at the end).
    """
    notes = record.notes
    platform = record.platform
    main = platform.new_feed(partner_account_id=_ACCOUNT)
    record.feeds["main"] = main
    notes["main_feed"] = main.feed_id
    notes["empty_body_probes"] = _probe_empty_bodies(record, main)

    notes["creation"] = _create(record, main)
    notes["creation_retry"] = _create(record, main)

    segment_id = _property(record, main)
    before = _partner_status(record, segment_id)
    probe = main.call("external_segment_connection")
    notes["connection_probe"] = {
        **_answer(probe),
        "partner_segment_id": segment_id,
        "partner_status_before": before,
        "partner_status_after": _partner_status(record, segment_id),
    }

    conflict_name = f"feed-harness conflict {seed}"
    try:
        existing = _pre_create_segment(record, conflict_name)
    except (PartnerUsageError, PartnerError) as err:  # a scenario without acc-1 or a client
        notes["conflict"] = {"error": f"could not pre-create the partner segment: {err}"}
    else:
        conflict = platform.new_feed(partner_account_id=_ACCOUNT, segment_name=conflict_name)
        record.feeds["conflict"] = conflict
        notes["conflict_feed"] = conflict.feed_id
        notes["conflict"] = {"existing_segment_id": existing, **_create(record, conflict)}

    if not (notes["creation"]["ok"] or notes["creation_retry"]["ok"]):
        record.aborted = f"creation of feed {main.feed_id} failed: {main.failure}"
        return
    notes["connection"] = _step(main.connect())

    users = make_users(LIFECYCLE_USERS, seed=seed, shared_emails=0.05, devices_per_user=(0, 3))
    notes["initial_load"] = [u.index for u in main.upsert(users)]
    main.flush()
    newcomers = make_users(20, seed=seed + 10_000, devices_per_user=(0, 2))
    leaving = [u for u in users if u.eligible_partner_identifiers(main.identifying)][:20]
    notes["live_upserts"] = [u.index for u in main.upsert(newcomers)]
    notes["live_deletes"] = [u.index for u in main.delete(leaving)]
    main.flush()
    strangers = _never_added(seed)
    notes["absent_deletes"] = [u.index for u in main.delete(strangers)]
    notes["absent_delete_batches"] = [b.batch_id for b in main.flush()]

    platform.clock.advance(_PROCESSING_WAIT)
    notes["troubleshoot"] = _troubleshoot(record, main)
    unknown = main.troubleshoot(UNKNOWN_ACTION)
    notes["troubleshoot_unknown"] = {**_answer(unknown), "action": UNKNOWN_ACTION}

    held = _hold_provisioning(record, _property(record, main))
    late = main.upsert(make_users(5, seed=seed + 30_000, eligible_ratio=1.0))
    notes["transient_not_ready"] = {
        "held": held,
        "updates": [u.index for u in late],
        "batch_ids": [b.batch_id for b in main.flush()],
    }
    empty = main.batch_update_raw([])
    notes["empty_batch"] = {
        "batch_id": empty.batch_id,
        "seqs": [a.exchange_seq for a in empty.attempts if a.exchange_seq is not None],
    }
    notes["partner_segment_id"] = _property(record, main)


def _never_added(seed: int) -> list[SimUser]:
    """Users no feed ever saw, each with at least one eligible identifier."""
    return make_users(10, seed=seed + 20_000, eligible_ratio=1.0, devices_per_user=(1, 2))


def invalid_config(record: RunRecord, seed: int) -> None:
    """Creation of feeds that cannot work: no ``partner_account_id``, no identifying
    resource selected, then (after corrupting the ``technical_config`` file) a valid feed.

    Notes: ``cases``: one per case, in that order, with ``case`` (``missing-account``,
    ``no-identifying``, ``unreadable-config``), ``feed_id``, ``expect`` (words one of
    which the message must contain), the creation fields (ok, status, http_status,
    message, seqs) and the partner's ``segments_before`` / ``segments_after``.
    """
    platform = record.platform
    cases: list[dict[str, Any]] = []
    record.notes["cases"] = cases

    def attempt(case: str, feed: Feed, expect: tuple[str, ...]) -> None:
        record.feeds[case] = feed
        cases.append({"case": case, "feed_id": feed.feed_id, "expect": list(expect)})
        cases[-1].update(_create(record, feed))

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

    Notes: ``creation`` and ``connection`` outcomes, ``users`` (how many were sent),
    ``batch_ids`` (every batch of the feed), ``flushed`` (those of the final flush) and
    ``largest_batch`` (items in the biggest one).
    """
    notes = record.notes
    feed = record.platform.new_feed(partner_account_id=_ACCOUNT, identifying=("USER_EMAIL",))
    record.feeds["main"] = feed
    notes["creation"] = _step(feed.create())
    notes["connection"] = _step(feed.connect())
    users = [
        SimUser(
            user_point_id=f"up-{seed}-{i}",
            emails=(f"big.{seed}.{i}@example.com",),
        )
        for i in range(OVERSIZED_BATCH)
    ]
    notes["users"] = len(users)
    feed.upsert(users)
    batches = feed.flush()
    notes["batch_ids"] = [b.batch_id for b in feed.batches]
    notes["largest_batch"] = max((len(b.items) for b in feed.batches), default=0)
    notes["flushed"] = [b.batch_id for b in batches]


def oversized_bytes(record: RunRecord, seed: int) -> None:
    """One batch under the operation limit but over the partner's body limit (1 MiB, in
    ``technical_config``): 1,400 users with 10 emails each, one flush, ``batch_content``
    items as JSON objects. Notes as the ``oversized`` run's."""
    notes = record.notes
    feed = record.platform.new_feed(partner_account_id=_ACCOUNT, identifying=("USER_EMAIL",))
    record.feeds["main"] = feed
    notes["creation"] = _step(feed.create())
    notes["connection"] = _step(feed.connect())
    users = [
        SimUser(
            user_point_id=f"ub-{seed}-{i}",
            emails=tuple(f"wide.{seed}.{i}.{n}@example.com" for n in range(EMAILS_PER_USER)),
        )
        for i in range(OVERSIZED_BYTES_USERS)
    ]
    notes["users"] = len(users)
    feed.upsert(users)
    batches = feed.flush()
    notes["batch_ids"] = [b.batch_id for b in feed.batches]
    notes["largest_batch"] = max((len(b.items) for b in feed.batches), default=0)
    notes["flushed"] = [b.batch_id for b in batches]


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
    ),
    RunSpec(
        INVALID_CONFIG,
        invalid_config,
        description="creation without partner_account_id, identifiers, or a readable config",
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
    ),
)
"""The core runs, in the order ``runs.py`` lists them."""
