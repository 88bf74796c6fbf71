"""Batches and accounting: batch answers add up, agree with what the partner accepted,
stay within its limits, converge, and never count an item twice.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from fake_partner import PartnerUsageError
from harness.accounting import BatchAttempt, BatchRecord, UpdateRecord
from harness.clauses.checks._shared import (
    _PLATFORM,
    _answered,
    _exchanges,
    _feeds,
    _final_exchange,
    _Findings,
    _is_probe,
    _short,
    _status,
)
from harness.clauses.evidence import Evidence, RunRecord, not_implemented
from harness.clauses.notes import LifecycleNotes, missing, notes_of
from harness.clauses.registry import Verdict, clause
from harness.clauses.run_names import LIFECYCLE, OVERSIZED, OVERSIZED_BYTES, SESSION
from harness.clauses.view import TOKEN_ROUTE, UPLOAD_ROUTE, RunView, view_of
from harness.simulator import Feed, FeedStateError
from harness.trace import Exchange
from harness.users import PartnerIdentifier


def _random_lives(evidence: Evidence, clause_id: str, findings: _Findings) -> None:
    """A random feed life (the stateful run) that broke this clause, as a finding."""
    from harness.clauses.stateful import broken_in_random_lives

    broken = broken_in_random_lives(evidence, clause_id)
    if broken is not None:
        run, message, seqs = broken
        findings.add(run, f"a random feed life broke it: {message}", seqs, pinned=True)


def _batch_answers(evidence: Evidence) -> list[tuple[RunRecord, Exchange]]:
    """The ``batch_update`` answers of every run (probes and not-implemented answers aside)."""
    return [
        (record, exchange)
        for record in evidence
        for exchange in _exchanges(record, _PLATFORM, "/v1/batch_update")
        if not _is_probe(exchange) and _answered(exchange) and not not_implemented(exchange)
    ]


def _final_attempt(batch: BatchRecord) -> BatchAttempt | None:
    attempt = batch.final_attempt
    if attempt is None or attempt.status not in ("OK", "ERROR"):
        return None
    return attempt


def _number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _verdict(
    evidence: Evidence, findings: _Findings, checked: int, passed: str, absent: str
) -> Verdict:
    """The findings' verdict; skipped when nothing was judged (a skip is never a pass),
    naming the runs that stopped early."""
    if findings or checked:
        return findings.verdict(passed)
    stopped = [f"run {r.name} stopped early ({r.aborted})" for r in evidence if r.aborted]
    return Verdict.skipped(
        f"not exercised: {absent}" + (f" ({'; '.join(stopped)})" if stopped else "")
    )


# --------------------------------------------------------------------------- batches


@clause(
    "BATCH-ACCOUNTING",
    "for every `batch_update` answer, `sent_items_in_success + sent_items_in_error == "
    "len(batch_content)`, both >= 0. Only `OK` and `ERROR` answers are final; a `RETRY` "
    "answer's counts are not counted.",
    group="batches",
    routes=("batch_update",),
    runs=SESSION,
)
def check_batch_accounting(evidence: Evidence) -> Verdict:
    """Every final (OK / ERROR) ``batch_update`` answer's counts add up to the batch size."""
    findings = _Findings()
    checked = 0
    for record, exchange in _batch_answers(evidence):
        body = exchange.answer
        if _status(body) not in ("OK", "ERROR") or body is None:
            continue
        request = exchange.request_json()
        content = request.get("batch_content") if isinstance(request, dict) else None
        if not isinstance(content, list):
            continue
        checked += 1
        success, error = body.get("sent_items_in_success"), body.get("sent_items_in_error")
        if (
            not isinstance(success, int)
            or not isinstance(error, int)
            or not (_number(success) and _number(error))
        ):
            findings.add(
                record.name,
                f"{_status(body)} answer without integer counts (success={success!r}, "
                f"error={error!r}) for {len(content)} items",
                [exchange.seq],
            )
        elif success < 0 or error < 0 or success + error != len(content):
            findings.add(
                record.name,
                f"{_status(body)} answer: {success} success + {error} error = "
                f"{success + error} for a batch of {len(content)}: expected the sum to be "
                f"{len(content)}, both >= 0",
                [exchange.seq],
            )
    _random_lives(evidence, "BATCH-ACCOUNTING", findings)  # after the fixed runs: they read first
    return _verdict(
        evidence,
        findings,
        checked,
        f"{checked} final batch answers add up",
        "no batch_update got a final (OK or ERROR) answer to a batch_content list",
    )


@clause(
    "BATCH-HONEST",
    "across a session, the items the connector reported as success equal the operations the "
    "partner accepted for them, and the ones reported as error were not accepted (no silent "
    "loss, no invented success).",
    group="batches",
    routes=("batch_update",),
    runs=SESSION,
)
def check_batch_honest(evidence: Evidence) -> Verdict:
    """Per final batch attempt: reported success == operations the partner accepted in the
    uploads nested in that call, and errors <= items the partner did not accept."""
    findings = _Findings()
    checked = 0
    for record in evidence:
        index = view_of(record)
        for name, feed in _feeds(record):
            for batch in feed.batches:
                attempt = _final_attempt(batch)
                exchange = index.exchange(attempt.exchange_seq) if attempt else None
                if attempt is None or exchange is None:
                    continue
                success, error = attempt.sent_items_in_success, attempt.sent_items_in_error
                if success is None or error is None:
                    continue
                checked += 1
                uploads = view_of(record).uploads(exchange)
                accepted, _ = index.accepted(uploads)
                size = len(batch.items)
                if success != accepted:
                    findings.add(
                        record.name,
                        f"feed {name} batch {batch.batch_id}: {attempt.status} reported {success} "
                        f"success but the partner accepted {accepted} operations in the "
                        f"{len(uploads)} upload(s) of that call: expected equal",
                        [exchange.seq, *(u.seq for u in uploads[:3])],
                    )
                elif error > size - accepted:
                    findings.add(
                        record.name,
                        f"feed {name} batch {batch.batch_id}: {error} reported as error but only "
                        f"{size - accepted} of {size} items were not accepted",
                        [exchange.seq],
                    )
    _random_lives(evidence, "BATCH-HONEST", findings)  # after the fixed runs: they read first
    return _verdict(
        evidence,
        findings,
        checked,
        f"{checked} final batch answers match the partner's ledger",
        "no batch of a feed got a final (OK or ERROR) answer with both counts",
    )


@clause(
    "BATCH-EMPTY",
    "an empty `batch_content` answers `OK` with 0 and 0.",
    group="batches",
    routes=("batch_update",),
    runs=(LIFECYCLE,),
)
def check_batch_empty(evidence: Evidence) -> Verdict:
    """Every ``batch_update`` with ``batch_content: []`` answers 200 OK 0/0."""
    findings = _Findings()
    checked = 0
    for record, exchange in _batch_answers(evidence):
        request = exchange.request_json()
        if not isinstance(request, dict) or request.get("batch_content") != []:
            continue
        checked += 1
        body = exchange.answer
        got = (
            exchange.status,
            _status(body),
            body.get("sent_items_in_success") if body else None,
            body.get("sent_items_in_error") if body else None,
        )
        if got != (200, "OK", 0, 0):
            findings.add(
                record.name,
                f"an empty batch answered {got[0]} {got[1]!r} success={got[2]!r} "
                f"error={got[3]!r}: expected 200 OK 0 0",
                [exchange.seq],
            )
    if checked == 0:
        lifecycle, notes = notes_of(evidence, LIFECYCLE, LifecycleNotes)
        if lifecycle is None or isinstance(notes, str):
            why = notes
        elif notes.empty_batch is None:
            why = missing(lifecycle, "empty_batch")
        else:
            why = "no answer"
        findings.add(LIFECYCLE, f"no empty batch was answered: {why}")
    return findings.verdict(f"{checked} empty batches answered OK 0 0")


@clause(
    "BATCH-LIMIT",
    "no request to the partner exceeds its limits (generic API: 10,000 operations, 5 MiB; "
    "`technical_config` names lower ones): a larger batch is split.",
    group="batches",
    runs=(OVERSIZED,),
)
def check_batch_limit(evidence: Evidence) -> Verdict:
    """No upload over 10,000 operations or 5 MiB, no 413; the oversized batch's final call
    uploaded at least one operation per item, in requests within the limits."""
    findings = _Findings()
    uploads_seen = 0
    for record in evidence:
        limits = record.partner.effective_scenario.limits
        max_operations, max_bytes = limits.max_operations, limits.max_body_bytes
        view = view_of(record)
        for upload in view.uploads():
            uploads_seen += 1
            count = view.operations(upload)
            size = upload.request_size
            code = view.error_code(upload)
            if (count or 0) > max_operations or size > max_bytes:
                findings.add(
                    record.name,
                    f"an upload carried {count} operations in {size} bytes: the partner takes "
                    f"at most {max_operations} operations and {max_bytes} bytes",
                    [upload.seq],
                )
            elif upload.status == 413 or code in ("TOO_MANY_OPERATIONS", "PAYLOAD_TOO_LARGE"):
                findings.add(
                    record.name,
                    f"the partner refused an upload: {upload.status} {code}",
                    [upload.seq],
                )
    for name in (OVERSIZED, OVERSIZED_BYTES):
        made = evidence.get(name)
        feed = made.feeds.get("main") if made is not None else None
        if made is not None and feed is not None and feed.batches:
            _check_split(made, feed, findings)
    if not findings and uploads_seen == 0:
        return Verdict.skipped("not exercised: no upload reached the partner")
    return findings.verdict(f"{uploads_seen} uploads within the partner's limits")


def _check_split(record: RunRecord, feed: Feed, findings: _Findings) -> None:
    """The run's biggest batch, when it needs splitting (over the partner's operation limit,
    or its body limit, as the connector's items came), reached the partner whole: at least
    one operation per item, in requests within the limits (those the loop above judges). A
    connector whose items for the run fit one request has nothing to split."""
    limits = record.partner.effective_scenario.limits
    batch = max(feed.batches, key=lambda b: len(b.items))
    size = len(batch.items)
    view = view_of(record)
    sent_bytes = max(
        (
            e.request_size
            for e in view.calls
            if e.path == "/v1/batch_update" and _batch_of(e) == batch.batch_id
        ),
        default=0,
    )
    if size <= limits.max_operations and sent_bytes <= limits.max_body_bytes:
        # the connector's own items for this run fit one request (Meta's rows are a hash
        # each): nothing to split, and every upload was judged against the limits above
        return
    attempt = _final_attempt(batch)
    seq = attempt.exchange_seq if attempt is not None else None
    exchange = view.exchange(seq) if seq is not None else None
    if attempt is None or exchange is None:
        last = batch.attempts[-1] if batch.attempts else None
        findings.add(
            record.name,
            f"the batch of {size} items got no final answer (outcome {batch.outcome}, last "
            f"{last.http_status if last else None} {last.status if last else None}): expected "
            "it split and sent",
            [last.exchange_seq if last else None],
        )
        return
    uploads = view.uploads(exchange)
    sent = sum(view.operations(u) or 0 for u in uploads)
    if sent < size:
        findings.add(
            record.name,
            f"the batch of {size} items was answered {attempt.status} after uploading {sent} "
            f"operations in {len(uploads)} request(s): expected every item split into "
            f"requests of at most {limits.max_operations} operations and "
            f"{limits.max_body_bytes} bytes",
            [exchange.seq],
        )


def _batch_of(exchange: Exchange) -> str | None:
    """The batch a ``batch_update`` call carried (the simulator tags it)."""
    value = exchange.tags.get("batch_id")
    return value if isinstance(value, str) else None


_PERMANENT = frozenset({"permanent", "revoked_token", "invalid_grant"})
"""Partner answers (the ledger's ``signal``, any dialect) that do not clear by themselves;
an expired token, a segment not ready, throttling and 5xx do."""


def _permanent_faults(record: RunRecord, feed: Feed) -> bool:
    """The partner refused something of this feed for good: a per-item rejection, an
    upload refused for good, or a refused refresh token."""
    view = view_of(record)
    try:
        segment = view.core_segment(record.platform.partner_segment_id(feed.feed_id))
    except (FeedStateError, LookupError, ValueError):
        segment = None
    for entry in view.entries:
        if entry.route == TOKEN_ROUTE and entry.status is not None and 400 <= entry.status < 500:
            return True
        if entry.route != UPLOAD_ROUTE:
            continue
        if segment is not None and entry.segment_id not in (segment, None):
            continue
        if entry.rejected > 0 or entry.signal in _PERMANENT:
            return True
    return False


def _flagged_updates(feed: Feed, *, transient_only: bool = False) -> tuple[set[int], int]:
    """Updates whose delivery failed visibly (error answer, batch ERROR / dead-lettered /
    with errors), and the number of items accounted as error or dead-lettered.

    ``transient_only``: the partner met the feed with transient faults alone, so every
    update is delivered with retries and only a dead-lettered batch (the platform gave up)
    explains a difference; an error the connector reported there explains nothing.
    """
    if transient_only:
        dead = [b for b in feed.batches if b.outcome == "DEAD_LETTER"]
        updates = {i.update.index for b in dead for i in b.items if i.update is not None}
        return updates, sum(len(b.items) for b in dead)
    flagged = {u.index for u in feed.updates if u.outcome not in ("ok", "no_eligible_identifier")}
    accounted = len(flagged)
    for batch in feed.batches:
        attempt = batch.final_attempt
        bad = batch.outcome in ("ERROR", "DEAD_LETTER") or (
            attempt is not None and (attempt.sent_items_in_error or 0) > 0
        )
        if batch.outcome == "DEAD_LETTER":
            accounted += len(batch.items)
        elif attempt is not None:
            accounted += max(attempt.sent_items_in_error or 0, 0)
        if bad:
            flagged.update(item.update.index for item in batch.items if item.update is not None)
    return flagged, accounted


@clause(
    "CONVERGENCE",
    "after the simulator delivers every update with retries and only transient faults, the "
    "partner segment's membership equals the model: the eligible identifiers of the users "
    "whose last operation was UPSERT. With permanent faults, every missing identifier is "
    "accounted as error or dead-lettered.",
    group="batches",
    runs=SESSION,
)
def check_convergence(evidence: Evidence) -> Verdict:
    """Per feed with updates: partner membership == model, or every difference traced to an
    update whose delivery was accounted as error / dead-lettered (and no more of them than
    the errors accounted)."""
    findings = _Findings()
    compared = files = 0
    for record in evidence:
        if record.aborted:
            continue
        for name, feed in _feeds(record):
            if not feed.updates:
                continue
            if feed.files and all(batch.raw for batch in feed.batches):
                files += 1  # delivered as files, which the harness does not upload
                continue
            try:
                actual = feed.partner_membership()
            except (FeedStateError, PartnerUsageError) as err:
                findings.add(record.name, f"feed {name}: no partner segment to compare ({err})")
                continue
            compared += 1
            # updates still queued (a stateful example mid-life, a flush that failed) are not
            # delivered yet: their identifiers may be on the partner in part
            unsettled = feed.unsettled_identifiers()
            expected = feed.settled_membership() - unsettled
            actual -= unsettled
            if actual == expected:
                continue
            _explain(record, name, feed, expected, actual, findings)
    _random_lives(evidence, "CONVERGENCE", findings)  # after the fixed runs: they read first
    if not findings and compared == 0 and files:
        return Verdict.skipped(
            f"{files} feed(s) delivered as FILE_DELIVERY files: the harness does not upload "
            "files to the partner, so there is no membership to compare"
        )
    return _verdict(
        evidence,
        findings,
        compared,
        f"{compared} feeds converged (or accounted every difference)",
        "no feed with updates to compare",
    )


def _explain(
    record: RunRecord,
    name: str,
    feed: Feed,
    expected: frozenset[PartnerIdentifier],
    actual: frozenset[PartnerIdentifier],
    findings: _Findings,
) -> None:
    missing, extra = expected - actual, actual - expected
    last: dict[PartnerIdentifier, UpdateRecord] = {}
    for update in feed.settled_updates():
        for identifier in update.user.eligible_partner_identifiers(feed.identifying):
            last[identifier] = update
    transient_only = not _permanent_faults(record, feed)
    flagged, accounted = _flagged_updates(feed, transient_only=transient_only)
    responsible = {last[i].index for i in missing | extra if i in last}
    unaccounted = sorted(
        (i for i in missing | extra if i not in last or last[i].index not in flagged),
        key=lambda i: (i not in missing, i),
    )
    head = (
        f"feed {name}: the partner segment has {len(actual)} members, the model {len(expected)}"
        f" ({len(missing)} missing, {len(extra)} unexpected)"
    )
    if unaccounted:
        kind, value = unaccounted[0]
        where = "missing" if unaccounted[0] in missing else "unexpected"
        culprit = last.get(unaccounted[0])
        how = (
            "the partner's faults were all transient, so only a dead-lettered batch excuses a "
            "difference, and"
            if transient_only
            else ""
        )
        findings.add(
            record.name,
            f"{head}; {how} {len(unaccounted)} of them not accounted as error or dead-lettered "
            f"(e.g. {where} {kind} {_short(value)}"
            + (f", last sent by update #{culprit.index} {culprit.operation}" if culprit else "")
            + ")",
            [culprit.exchanges[-1] if culprit and culprit.exchanges else None],
        )
    elif len(responsible) > accounted:
        findings.add(
            record.name,
            f"{head}; {len(responsible)} updates left differences but only {accounted} items "
            "were accounted as error or dead-lettered",
        )


@clause(
    "RETRY-NO-DUPLICATE-SUCCESS",
    "an item re-sent after RETRY or an ambiguous failure is counted as success at most once "
    "across the session.",
    group="batches",
    routes=("batch_update",),
    runs=SESSION,
)
def check_retry_no_duplicate_success(evidence: Evidence) -> Verdict:
    """Per feed session: the final answers' success total <= the distinct items sent (an
    item is its update and its content), and per batch <= its distinct items."""
    findings = _Findings()
    sessions = 0
    for record in evidence:
        for name, feed in _feeds(record):
            per_session: dict[str, list[BatchRecord]] = defaultdict(list)
            for batch in feed.batches:
                per_session[batch.session_id].append(batch)
            for session, batches in per_session.items():
                sessions += 1
                distinct: set[tuple[int | None, str]] = set()
                total = 0
                seqs: list[int | None] = []
                for batch in batches:
                    keys = {_item_key(item.update, item.content) for item in batch.items}
                    distinct |= keys
                    attempt = _final_attempt(batch)
                    success = attempt.sent_items_in_success if attempt is not None else None
                    if attempt is None or success is None:
                        continue
                    total += success
                    seqs.append(attempt.exchange_seq)
                    if success > len(keys):
                        findings.add(
                            record.name,
                            f"feed {name} batch {batch.batch_id}: {success} success for "
                            f"{len(keys)} distinct items",
                            [attempt.exchange_seq],
                        )
                if total > len(distinct):
                    findings.add(
                        record.name,
                        f"feed {name} session {session}: {total} items counted as success over "
                        f"{len(batches)} batches but only {len(distinct)} distinct items were "
                        "sent: an item counted twice",
                        seqs[-5:],
                    )
    _random_lives(evidence, "RETRY-NO-DUPLICATE-SUCCESS", findings)  # the fixed runs first
    return _verdict(
        evidence,
        findings,
        sessions,
        f"{sessions} sessions count each item as success at most once",
        "no feed session sent a batch",
    )


def _item_key(update: UpdateRecord | None, content: Any) -> tuple[int | None, str]:
    try:
        text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(content)
    return (update.index if update is not None else None, text)


@clause(
    "DELETE-ABSENT",
    "DELETE of a user never added is not an error.",
    group="batches",
    routes=("user_segment_update",),
    runs=(LIFECYCLE,),
)
def check_delete_absent(evidence: Evidence) -> Verdict:
    """In every run, every feed: a DELETE of a user the feed never sent as UPSERT before is
    not answered ``error``, and a batch made only of such DELETEs gets no final answer
    counting more errors than the partner rejected (a RETRY, a dead letter, is no error).
    A call the partner failed for a reason of its own (a 5xx, a 429, a refused token) is
    judged by the fault clauses, not here."""
    findings = _Findings()
    judged = 0
    for record in evidence:
        index = view_of(record)
        for name, feed in _feeds(record):
            absent = _absent_deletes(feed)
            judged += len(absent)
            for update in absent:
                exchange = _final_exchange(update, index)
                if update.outcome == "error" and not _partner_failed(index, exchange):
                    findings.add(
                        record.name,
                        f"feed {name}: DELETE of a user never added (update #{update.index}) "
                        f"answered {update.http_status} {update.outcome!r}: expected no error",
                        [exchange.seq if exchange else None],
                    )
            ids = {id(u) for u in absent}
            for batch in feed.batches:
                if not batch.items or not all(
                    item.update is not None and id(item.update) in ids for item in batch.items
                ):
                    continue
                attempt = _final_attempt(batch)
                if attempt is None:
                    continue  # not final: no error was answered
                exchange = index.exchange(attempt.exchange_seq) if attempt.exchange_seq else None
                _, rejected = index.accepted(index.uploads(exchange) if exchange else [])
                errors = attempt.sent_items_in_error or 0
                if errors > rejected and not _partner_failed(index, exchange):
                    findings.add(
                        record.name,
                        f"feed {name}: the batch of {len(batch.items)} absent DELETEs reported "
                        f"{errors} error{'s' if errors != 1 else ''} ({attempt.status}), the "
                        f"partner rejected {rejected}: removing an absent member is not an error",
                        [attempt.exchange_seq],
                    )
    if not findings and judged == 0:
        return Verdict.skipped("not exercised: no feed deleted a user it never added")
    return findings.verdict(f"{judged} DELETEs of absent users were not errors")


_NOT_ABOUT_THE_MEMBER = frozenset(
    {"throttled", "transient", "expired_token", "revoked_token", "invalid_grant", "not_ready"}
)
"""Partner failures that say nothing about the member: an error answered while one of them
met the call is not the absent DELETE's (RATE-LIMIT, TRANSIENT-5XX... judge it)."""


def _partner_failed(index: RunView, call: Exchange | None) -> bool:
    """The partner failed ``call`` for a reason of its own (throttling, a 5xx, a dropped
    connection, a refused token, a segment not ready) in one of its nested requests. A
    refusal about the member itself (a 404 for a lookup, any other 4xx) is no excuse."""
    if call is None:
        return False
    return any(index.signal(e) in _NOT_ABOUT_THE_MEMBER for e in index.nested(call))


def _absent_deletes(feed: Feed) -> list[UpdateRecord]:
    """The feed's DELETEs of users it had not sent as UPSERT before (in sending order)."""
    added: set[str] = set()
    absent: list[UpdateRecord] = []
    for update in sorted(feed.updates, key=lambda u: u.index):
        user = update.user.user_point_id
        if update.operation == "UPSERT":
            added.add(user)
        elif user not in added:
            absent.append(update)
    return absent
