"""Creation and connection: one partner segment per feed, its id persisted, invalid
configurations refused, connection polled until the segment is ready.
"""

from __future__ import annotations

from harness.clauses.checks._shared import (
    _PLATFORM,
    _answer,
    _answered,
    _exchanges,
    _Findings,
    _is_probe,
    _judged,
    _Problems,
    _recovered,
    _request_feed_id,
    _route,
    _status,
    _transient,
)
from harness.clauses.evidence import Evidence, RunRecord
from harness.clauses.notes import InvalidConfigNotes, LifecycleNotes, missing, notes_of
from harness.clauses.registry import Verdict, clause
from harness.clauses.run_names import (
    CONNECTION_FAULTS,
    INVALID_CONFIG,
    LIFECYCLE,
    NOT_READY,
)
from harness.clauses.view import SEGMENT_CREATE_ROUTE, SEGMENT_READ_ROUTE, view_of, views
from harness.trace import Exchange

# --------------------------------------------------------------------------- creation


@clause(
    "CREATE-OK",
    "with valid properties and an account the token reaches, creation is `ok` and exactly "
    "one partner segment exists for the feed afterwards.",
    group="creation",
    routes=("external_segment_creation",),
    runs=(LIFECYCLE,),
)
def check_create_ok(evidence: Evidence) -> Verdict:
    """The main feed's creation answers 200 ``ok`` and the partner has one new segment; in
    every run, a creation call in which the partner created a segment answers ``ok`` (the
    account was reachable: anything else leaves an orphan segment), and no creation call
    creates more than one."""
    findings = _Findings()
    for run in views(evidence):
        for call in run.calls:
            if call.path != "/v1/external_segment_creation" or _is_probe(call):
                continue
            created = [e for e in run.nested(call) if run.route(e) == SEGMENT_CREATE_ROUTE and e.ok]
            status = call.answer_status if _answered(call) else None
            if len(created) > 1:
                findings.add(
                    run.name,
                    f"one creation call made the partner create {len(created)} segments: "
                    "expected exactly 1 for the feed",
                    [call.seq, *(e.seq for e in created)],
                )
            elif created and status != "ok":
                findings.add(
                    run.name,
                    f"the partner created a segment for the feed but creation answered "
                    f"{call.status or call.failure} {status!r}: expected ok (the segment is "
                    "left orphaned)",
                    [call.seq, created[0].seq],
                )
    if findings:
        return findings.verdict("")
    record, notes = notes_of(evidence, LIFECYCLE, LifecycleNotes)
    if record is None or isinstance(notes, str):
        return Verdict.failed(f"no creation was recorded: {notes}", run=LIFECYCLE)
    note = notes.creation
    if note is None:
        why = missing(record, "creation")
        return Verdict.failed(f"no creation was recorded: {why}", run=LIFECYCLE)
    new = note.new_segments
    seqs = note.step.seqs
    if not note.step.ok:
        return Verdict.failed(
            f"creation of a valid feed failed: {note.step.summary}: expected 200 ok",
            seqs=seqs,
            run=LIFECYCLE,
        )
    if len(new) != 1:
        return Verdict.failed(
            f"creation answered ok but the partner has {len(new)} new segments for the feed "
            f"({', '.join(new) or 'none'}): expected exactly 1",
            seqs=seqs,
            run=LIFECYCLE,
        )
    return Verdict.passed(f"creation ok; partner segment {new[0]} created", run=LIFECYCLE)


@clause(
    "CREATE-IDEMPOTENT",
    "creation repeated for the same feed (the platform retries) leaves exactly one partner "
    "segment (reuses `partner_segment_id` or the 409's existing id).",
    group="creation",
    routes=("external_segment_creation",),
    runs=(LIFECYCLE,),
)
def check_create_idempotent(evidence: Evidence) -> Verdict:
    """Creation again: ok, no new segment, same id; a feed whose segment name the partner
    already has: ok, no new segment, the property names the existing segment; in every
    run, the creation calls of one feed make at most one partner segment between them."""
    findings = _Findings()
    _repeated_creations(evidence, findings)
    record, notes = notes_of(evidence, LIFECYCLE, LifecycleNotes)
    if record is None or isinstance(notes, str):
        return Verdict.failed(f"evidence missing: {notes}", run=LIFECYCLE)
    first, again, conflict = notes.creation, notes.creation_retry, notes.conflict
    for name, note in (("creation", first), ("creation_retry", again), ("conflict", conflict)):
        if note is None:
            findings.add(LIFECYCLE, f"evidence missing: {missing(record, name)}")
    if again is not None and first is not None:
        new = again.new_segments
        seqs = again.step.seqs
        if not again.step.ok:
            findings.add(
                LIFECYCLE,
                f"creation repeated failed: {again.step.summary}: expected ok, reusing the segment",
                seqs,
            )
        if new:
            findings.add(
                LIFECYCLE,
                f"creation repeated created {len(new)} more partner segment(s) "
                f"({', '.join(new)}): expected 0",
                seqs,
            )
        if again.partner_segment_id != first.partner_segment_id:
            findings.add(
                LIFECYCLE,
                f"creation repeated changed partner_segment_id from "
                f"{first.partner_segment_id!r} to {again.partner_segment_id!r}",
                seqs,
            )
    if conflict is not None and conflict.creation is not None:
        existing = conflict.existing_segment_id
        made = conflict.creation
        new = made.new_segments
        seqs = made.step.seqs
        if not made.step.ok:
            findings.add(
                LIFECYCLE,
                f"creation of a feed whose segment name is taken (409, existing {existing}) "
                f"failed: {made.step.summary}: expected ok reusing {existing}",
                seqs,
            )
        if new:
            findings.add(
                LIFECYCLE,
                f"the name-conflict creation made {len(new)} new segment(s) ({', '.join(new)}): "
                f"expected 0, reusing {existing}",
                seqs,
            )
        if made.partner_segment_id != existing:
            findings.add(
                LIFECYCLE,
                f"after the 409, partner_segment_id is {made.partner_segment_id!r}: "
                f"expected the existing segment {existing!r}",
                seqs,
            )
    return findings.verdict("creation repeated and the 409 path reuse the one segment")


def _repeated_creations(evidence: Evidence, findings: _Findings) -> None:
    """Every run's feeds created more than once (the platform retried, a run re-created):
    the partner segments their creation calls made (2xx), at most one in all."""
    for run in views(evidence):
        calls: dict[str, list[Exchange]] = {}
        made: dict[str, list[tuple[Exchange, Exchange, str]]] = {}
        for call in run.calls:
            if call.path != "/v1/external_segment_creation" or _is_probe(call):
                continue
            feed_id = _request_feed_id(call)
            if feed_id is None:
                continue
            calls.setdefault(feed_id, []).append(call)
            for e in run.nested(call):
                if run.route(e) == SEGMENT_CREATE_ROUTE and e.ok:
                    entry = run.entry(e)
                    named = entry.segment_id if entry is not None else None
                    made.setdefault(feed_id, []).append((call, e, named or f"seq {e.seq}"))
        for feed_id, segments in made.items():
            repeated = calls[feed_id]
            if len({call.seq for call, _, _ in segments}) < 2:
                continue  # one call making two segments is CREATE-OK's
            findings.add(
                run.name,
                f"creation repeated for feed {feed_id} ({len(repeated)} calls) made "
                f"{len(segments)} partner segments ({', '.join(s for *_, s in segments)}): "
                "expected exactly one, reused",
                [seq for call, e, _ in segments for seq in (call.seq, e.seq)],
            )


@clause(
    "CREATE-PERSISTS-ID",
    "after creation, the feed property `partner_segment_id` names that partner segment.",
    group="creation",
    routes=("external_segment_creation",),
    runs=(LIFECYCLE,),
)
def check_create_persists_id(evidence: Evidence) -> Verdict:
    """Each feed's last creation answered ``ok``, in every run: its ``partner_segment_id``
    names the segment that call made (201), the existing one its 409 named, or the segment
    the property already named; and that segment exists at the partner."""
    findings = _Findings()
    checked = 0
    for record in evidence:
        view = view_of(record)
        segments = set(record.partner.segment_ids())
        last: dict[str, Exchange] = {}  # the property reflects a feed's last creation
        for exchange in _exchanges(record, _PLATFORM, "/v1/external_segment_creation"):
            if _is_probe(exchange) or (exchange.status, exchange.answer_status) != (200, "ok"):
                continue
            feed_id = _request_feed_id(exchange)
            if feed_id is not None:
                last[feed_id] = exchange
        for feed_id, exchange in last.items():
            checked += 1
            value = record.gateway.property_value(feed_id, "partner_segment_id")
            made = _segments_named_in(record, exchange)
            if not value:
                findings.add(
                    record.name,
                    f"feed {feed_id}: creation answered ok but the feed has no "
                    "partner_segment_id property: expected it written back through the gateway"
                    + (f" (segment {', '.join(made)})" if made else ""),
                    [exchange.seq],
                )
            elif made and view.core_segment(value) not in made:
                findings.add(
                    record.name,
                    f"feed {feed_id}: partner_segment_id is {value!r}: expected the segment "
                    f"creation made or reused ({', '.join(made)})",
                    [exchange.seq],
                )
            elif view.core_segment(value) not in segments:
                findings.add(
                    record.name,
                    f"feed {feed_id}: partner_segment_id is {value!r}, which the partner does "
                    "not have",
                    [exchange.seq],
                )
    if checked == 0:
        return Verdict.skipped("not exercised: no creation answered ok")
    return findings.verdict(f"{checked} created feeds name their partner segment")


def _segments_named_in(record: RunRecord, exchange: Exchange) -> list[str]:
    """The segments (core ids) a creation call made (the ledger's segment of a 2xx segment
    creation, in any dialect) or was told exist (a 409's details)."""
    named: list[str] = []
    view = view_of(record)
    for call in view.nested(exchange):
        if view.route(call) != SEGMENT_CREATE_ROUTE:
            continue
        entry = view.entry(call)
        if call.ok and entry is not None and entry.segment_id:
            named.append(entry.segment_id)
        elif call.status == 409 and call.answer is not None:
            error = call.answer.get("error")
            details = error.get("details") if isinstance(error, dict) else None
            for detail in details if isinstance(details, list) else ():
                if isinstance(detail, dict) and isinstance(detail.get("segment_id"), str):
                    named.append(view.core_segment(detail["segment_id"]) or "")
    return named


@clause(
    "CREATE-INVALID-CONFIG",
    "a missing `partner_account_id`, no selected identifying resource, or an unreadable "
    "configuration file -> status `error` with a message that names the problem; nothing "
    "is created at the partner.",
    group="creation",
    routes=("external_segment_creation",),
    runs=(INVALID_CONFIG,),
)
def check_create_invalid_config(evidence: Evidence) -> Verdict:
    """Each invalid case: status ``error``, message with one of the case's words, no new
    partner segment."""
    record, notes = notes_of(evidence, INVALID_CONFIG, InvalidConfigNotes)
    if record is None or isinstance(notes, str):
        return Verdict.failed(f"no invalid configuration was tried: {notes}", run=INVALID_CONFIG)
    cases = notes.cases
    findings = _Findings()
    if len(cases) < 3:
        findings.add(
            INVALID_CONFIG,
            f"only {len(cases)} of 3 cases ran ({record.aborted or 'run incomplete'})",
        )
    for case in cases:
        name, step = case.case, case.creation.step
        seqs = step.seqs
        message = step.message or ""
        if step.status != "error":
            findings.add(
                INVALID_CONFIG,
                f"{name}: creation answered {step.http_status} {step.status!r}: expected "
                "status 'error'",
                seqs,
            )
        elif not any(word.lower() in message.lower() for word in case.expect):
            findings.add(
                INVALID_CONFIG,
                f"{name}: the error message {message[:120]!r} does not name the problem "
                f"(expected one of {list(case.expect)})",
                seqs,
            )
        new = case.creation.new_segments
        if new:
            findings.add(
                INVALID_CONFIG,
                f"{name}: {len(new)} partner segment(s) created ({', '.join(new)}): expected 0",
                seqs,
            )
    return findings.verdict(f"{len(cases)} invalid configurations refused, nothing created")


# --------------------------------------------------------------------------- connection


def _last_segment_answer(record: RunRecord, exchange: Exchange) -> Exchange | None:
    """The connector's last answered read of its partner segment inside ``exchange``."""
    view = view_of(record)
    calls = [
        e
        for e in view.nested(exchange)
        if view.route(e) == SEGMENT_READ_ROUTE and e.status is not None
    ]
    return calls[-1] if calls else None


@clause(
    "CONNECT-NOT-READY",
    "while the partner says the segment is not ready (generic API: 404 `SEGMENT_NOT_READY`), "
    "connection answers "
    "`external_segment_not_ready_yet` (502), never `ok` and never `error`.",
    group="creation",
    routes=("external_segment_connection",),
    runs=(LIFECYCLE, NOT_READY),
)
def check_connect_not_ready(evidence: Evidence) -> Verdict:
    """The connection call made while the partner segment was PROVISIONING, and every
    connection whose last segment call got 404 SEGMENT_NOT_READY, answer 502 not ready."""
    findings = _Findings()
    checked = 0
    lifecycle, notes = notes_of(evidence, LIFECYCLE, LifecycleNotes)
    probe = notes.connection_probe if not isinstance(notes, str) else None
    if lifecycle is None or isinstance(notes, str):
        findings.add(LIFECYCLE, f"no connection was tried: {notes}")
    elif probe is None:
        findings.add(
            LIFECYCLE, f"no connection was tried: {missing(lifecycle, 'connection_probe')}"
        )
    elif probe.partner_status_before == probe.partner_status_after == "PROVISIONING" and (
        lifecycle.partner.dialect_info().get("read_shows_not_ready", True)
    ):  # the connector can tell (a LinkedIn read answers PROCESSING before and after)
        checked += 1
        answer = probe.answer
        if (answer.http_status, answer.status) != (502, "external_segment_not_ready_yet"):
            findings.add(
                LIFECYCLE,
                f"connection while partner segment {probe.partner_segment_id} was "
                f"PROVISIONING answered {answer.http_status} {answer.status!r}: expected "
                "502 external_segment_not_ready_yet",
                [answer.seq],
            )
    for record in evidence:
        for exchange in _exchanges(record, _PLATFORM, "/v1/external_segment_connection"):
            if _is_probe(exchange) or not _answered(exchange):
                continue
            last = _last_segment_answer(record, exchange)
            if last is None or view_of(record).signal(last) != "not_ready":
                continue
            checked += 1
            body = exchange.answer
            if (exchange.status, _status(body)) != (502, "external_segment_not_ready_yet"):
                findings.add(
                    record.name,
                    f"the partner answered 404 SEGMENT_NOT_READY but connection answered "
                    f"{exchange.status} {_status(body)!r}: expected 502 "
                    "external_segment_not_ready_yet",
                    [exchange.seq, last.seq],
                )
    if not findings and checked == 0:
        return Verdict.skipped(
            "no connection call met a provisioning partner segment (the scenario gives no "
            "provisioning delay, or the partner's segment read does not show one)"
        )
    return findings.verdict(f"{checked} not-ready connections answered 502")


@clause(
    "CONNECT-READY",
    "once the partner segment exists and is past provisioning, connection answers `ok`.",
    group="creation",
    routes=("external_segment_connection",),
    runs=(LIFECYCLE, NOT_READY),
)
def check_connect_ready(evidence: Evidence) -> Verdict:
    """The lifecycle's polled connection ends ``ok``; any connection whose last segment
    call got a 2xx answers 200 ``ok``."""
    findings = _Findings()
    lifecycle, notes = notes_of(evidence, LIFECYCLE, LifecycleNotes)
    note = notes.connection if not isinstance(notes, str) else None
    if lifecycle is None or isinstance(notes, str):
        findings.add(LIFECYCLE, f"no connection was polled: {notes}")
    elif note is None:
        findings.add(LIFECYCLE, f"no connection was polled: {missing(lifecycle, 'connection')}")
    elif not note.ok:
        findings.add(
            LIFECYCLE,
            f"connection never answered ok: {note.summary}: expected ok once the partner "
            "segment is past provisioning",
            note.seqs[-3:],
        )
    checked = 0
    for record in evidence:
        for exchange in _exchanges(record, _PLATFORM, "/v1/external_segment_connection"):
            if _is_probe(exchange) or not _answered(exchange):
                continue
            last = _last_segment_answer(record, exchange)
            if last is None or not 200 <= (last.status or 0) < 300:
                continue
            checked += 1
            body = exchange.answer
            if (exchange.status, _status(body)) != (200, "ok"):
                findings.add(
                    record.name,
                    f"the partner segment answered {last.status} (ready) but connection "
                    f"answered {exchange.status} {_status(body)!r}: expected 200 ok",
                    [exchange.seq, last.seq],
                )
    return findings.verdict(f"connection ok once ready ({checked} ready checks)")


_NOT_READY = "external_segment_not_ready_yet"


# ---------------------------------------------------------------------- CONNECT-TRANSIENT


@clause(
    "CONNECT-TRANSIENT",
    "while the partner fails transiently (5xx, 429, dropped connection), connection answers "
    "`external_segment_not_ready_yet` so the platform polls again.",
    group="creation",
    routes=("external_segment_connection",),
    runs=(CONNECTION_FAULTS,),
    severity="warning",
)
def connect_transient(evidence: Evidence) -> Verdict:
    """In every run: a connection call during which a partner request got a 429, a 5xx, a
    dropped connection or a timeout, not re-sent with a 2xx in the same call, answers
    external_segment_not_ready_yet."""
    problems = _Problems()
    checked = 0
    for run in list(views(evidence)):
        for call in run.calls:
            if _route(call) != "external_segment_connection":
                continue
            failures = [
                (e, what)
                for e in run.nested(call)
                if (what := _transient(run, e)) is not None and not _recovered(run, call, e)
            ]
            if not failures:
                continue
            checked += 1
            if call.answer_status != _NOT_READY:
                failed, what = failures[0]
                problems.add(
                    f"connection answered {_answer(call)} after the partner gave {what} to "
                    f"{failed.method} {failed.path} (seq {failed.seq}), expected "
                    f"{_NOT_READY} (502) so the platform polls again",
                    [call.seq, failed.seq],
                    run.name,
                )
    return _judged(
        evidence,
        problems,
        checked,
        runs=(CONNECTION_FAULTS,),
        passed=f"{checked} connection call(s) met a transient partner failure and answered "
        f"{_NOT_READY}",
        absent="no partner 429, 5xx, dropped connection or timeout reached a connection call "
        "in any run",
    )
