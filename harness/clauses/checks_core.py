"""The core clauses of ``clauses.md``: wire, creation and connection, updates, batches and
accounting, data protection, troubleshoot.

Checks read the records of the runs (``runs_core`` and, for the session clauses, every
run present in the evidence); they never drive the connector. A failure names the
numbers and what was expected, with the trace ``seqs`` that show it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from contracts.plugin_api import MissingBodyError, SdkError, ThrottledResponse
from contracts.routes import (
    DELAY_HEADER,
    MISSING_BODY_CODE,
    SDK_ERROR_CODE,
    THROTTLED_CODE,
    THROTTLED_STATUS,
    Route,
    route_for_path,
)
from fake_partner import PartnerUsageError
from harness.accounting import BatchAttempt, BatchRecord, UpdateRecord
from harness.clauses.evidence import Evidence, RunRecord, not_implemented
from harness.clauses.registry import Verdict, clause
from harness.clauses.runs_core import PARTNER_OPERATION_LIMIT, PROBE_TAG
from harness.clauses.runs_faults import preset_run
from harness.clauses.view import RunView, view_of
from harness.redaction import MASK
from harness.simulator import Feed, FeedStateError
from harness.trace import Exchange, Leg
from harness.users import PartnerIdentifier

__all__ = ["MAX_UPLOAD_BYTES"]

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
"""The partner's body limit for a members upload (5 MiB)."""

_PLATFORM: Leg = "platform->connector"
_PARTNER: Leg = "connector->partner"
_UPLOAD = re.compile(r"/v1/segments/([^/]+)/members/?\Z")
_SEGMENT_PATH = re.compile(r"/v1/segments/([^/]+)")
_ACCOUNT_SEGMENTS = re.compile(r"/v1/accounts/([^/]+)/segments/?\Z")
_ACCOUNT_PATH = re.compile(r"/v1/accounts/([^/]+)")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_SHA256_TYPES = frozenset({"EMAIL_SHA256", "PHONE_SHA256"})
_NO_ANSWER = frozenset({"timeout", "connection", "crash"})
_COUNT_KEYS = ("input_count", "matched_count", "match_rate", "audience_size")
_MAX_SHOWN = 5
_MAX_SEQS = 30
_CORE_RUNS = ("lifecycle", "invalid-config")
_AUTH_RUN = "auth"
_TOKEN_EXPIRY = preset_run("token-expiry-mid-upload")
_INVALID_GRANT = preset_run("invalid-grant")
_NOT_READY_RUN = preset_run("not-ready-for-3-polls")
_RATE_LIMITED = (preset_run("rate-limit-burst"), preset_run("rate-limit-no-retry-after"))
_TRANSIENT = tuple(
    preset_run(name)
    for name in ("flaky-5xx", "ambiguous-503", "dropped-connection", "ambiguous-drop")
)
_SESSION_RUNS = (
    "lifecycle",
    _TOKEN_EXPIRY,
    *_RATE_LIMITED,
    *_TRANSIENT,
    preset_run("mixed-invalid-items"),
)
"""The runs that exercise the session-wide clauses by design (the lifecycle and every
partner preset with transient faults); the checks judge every run's sessions."""


# --------------------------------------------------------------------------- findings


@dataclass
class _Finding:
    run: str
    message: str
    seqs: tuple[int, ...]


@dataclass
class _Findings:
    """The violations a check found, turned into one verdict."""

    items: list[_Finding] = field(default_factory=list)

    def add(self, run: str, message: str, seqs: Iterable[int | None] = ()) -> None:
        self.items.append(_Finding(run, message, tuple(s for s in seqs if s is not None)))

    def __bool__(self) -> bool:
        return bool(self.items)

    def verdict(self, passed: str, *, what: str = "violation") -> Verdict:
        if not self.items:
            return Verdict.passed(passed)
        shown = "; ".join(f"[{f.run}] {f.message}" for f in self.items[:_MAX_SHOWN])
        more = len(self.items) - _MAX_SHOWN
        tail = f"; and {more} more" if more > 0 else ""
        run = self.items[0].run
        seqs: list[int] = []  # of the first failing run: seqs number one run's trace
        for finding in (f for f in self.items if f.run == run):
            for seq in finding.seqs:
                if seq not in seqs and len(seqs) < _MAX_SEQS:
                    seqs.append(seq)
        count = len(self.items)
        return Verdict.failed(
            f"{count} {what}{'s' if count != 1 else ''}: {shown}{tail}",
            seqs=seqs,
            run=run,
        )


def _random_lives(evidence: Evidence, clause_id: str, findings: _Findings) -> None:
    """A random feed life (the stateful run) that broke this clause, as a finding."""
    from harness.clauses.stateful import broken_in_random_lives

    broken = broken_in_random_lives(evidence, clause_id)
    if broken is not None:
        run, message, seqs = broken
        findings.add(run, f"a random feed life broke it: {message}", seqs)


def _note(evidence: Evidence, run: str, key: str) -> tuple[RunRecord | None, Any, str | None]:
    """``(record, note)`` or a reason the note is missing (run absent, aborted, not reached)."""
    record = evidence.get(run)
    if record is None:
        return None, None, f"run {run!r} was not executed: its evidence is missing"
    if key not in record.notes:
        why = f" ({record.aborted})" if record.aborted else ""
        return record, None, f"run {run!r} did not reach the step that records {key!r}{why}"
    return record, record.notes[key], None


# --------------------------------------------------------------------------- trace helpers


def _exchanges(record: RunRecord, leg: Leg, path: str | None = None) -> list[Exchange]:
    return view_of(record).of_leg(leg, path)


def _connector_answers(evidence: Evidence) -> Iterator[tuple[RunRecord, Exchange, Route]]:
    """Every platform->connector exchange of a known route, in every run."""
    for record in evidence:
        for exchange in _exchanges(record, _PLATFORM):
            target = route_for_path(exchange.method, exchange.path)
            if target is not None:
                yield record, exchange, target


def _is_probe(exchange: Exchange) -> bool:
    return exchange.tags.get(PROBE_TAG) is not None


def _answered(exchange: Exchange) -> bool:
    """An HTTP answer came back (JSON or not) and the trace still holds it: an exchange
    whose bodies were evicted to keep the trace within its budget (far beyond what a
    verification records) cannot be judged on its body."""
    return (
        exchange.status is not None and exchange.failure not in _NO_ANSWER and not exchange.evicted
    )


def _body(exchange: Exchange) -> dict[str, Any] | None:
    value = exchange.response_json()
    return value if isinstance(value, dict) else None


def _status(body: dict[str, Any] | None) -> str | None:
    value = body.get("status") if body is not None else None
    return value if isinstance(value, str) else None


def _batch_answers(evidence: Evidence) -> list[tuple[RunRecord, Exchange]]:
    """The ``batch_update`` answers of every run (probes and not-implemented answers aside)."""
    return [
        (record, exchange)
        for record in evidence
        for exchange in _exchanges(record, _PLATFORM, "/v1/batch_update")
        if not _is_probe(exchange) and _answered(exchange) and not not_implemented(exchange)
    ]


def _request_feed_id(exchange: Exchange) -> str | None:
    body = exchange.request_json()
    if not isinstance(body, dict):
        return None
    feed_id = body.get("feed_id")
    context = body.get("context")
    if feed_id is None and isinstance(context, dict):
        feed_id = context.get("feed_id")
    return feed_id if isinstance(feed_id, str) else None


def _partner_code(exchange: Exchange) -> str | None:
    body = _body(exchange)
    error = body.get("error") if body is not None else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _operation_count(exchange: Exchange) -> int | None:
    body = exchange.request_json()
    operations = body.get("operations") if isinstance(body, dict) else None
    return len(operations) if isinstance(operations, list) else None


def _final_attempt(batch: BatchRecord) -> BatchAttempt | None:
    attempt = batch.final_attempt
    if attempt is None or attempt.status not in ("OK", "ERROR"):
        return None
    return attempt


def _feeds(record: RunRecord) -> list[tuple[str, Feed]]:
    """Every feed the run's platform built, named as the run named it (else by id)."""
    names = {id(feed): name for name, feed in record.feeds.items()}
    if record.own_feeds_only:
        return list(record.feeds.items())
    feeds: list[Feed] = list(record.platform.feeds) or list(record.feeds.values())
    return [(names.get(id(feed), feed.feed_id), feed) for feed in feeds]


def _short(value: str) -> str:
    """An identifier value as a message may show it (never a whole raw email)."""
    if "@" in value:
        return f"<{len(value)}-character value with '@'>"
    return value if len(value) <= 16 else value[:12] + "…"


def _number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------- wire


def _validates(model: type[BaseModel], raw: bytes) -> str | None:
    """None when ``raw`` validates against ``model`` (strict JSON), else the first error."""
    try:
        model.model_validate_json(raw, strict=True)
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(body)"
        return f"{where}: {first['msg']}"
    return None


def _sdk_shape(target: Route, body: dict[str, Any], raw: bytes) -> bool:
    """The SDK's own answers every route may give: missing body, handler error, throttled."""
    status = body.get("status")
    if status is None and "error" in body:
        return _validates(MissingBodyError, raw) is None
    if status == "error":
        return _validates(SdkError, raw) is None
    if status == THROTTLED_STATUS and target.method == "POST":
        return _validates(ThrottledResponse, raw) is None
    return target.optional and status == "not_implemented"


@clause(
    "WIRE-SCHEMA",
    "every answer parses as JSON (whatever its content type) and validates against the "
    "route's response model.",
    group="wire",
    runs=(*_CORE_RUNS, _AUTH_RUN),
)
def check_wire_schema(evidence: Evidence) -> Verdict:
    """Each answered platform->connector exchange (probes aside) of a route with a model."""
    findings = _Findings()
    checked = 0
    for record, exchange, target in _connector_answers(evidence):
        model = target.response_model
        if model is None or _is_probe(exchange) or not _answered(exchange):
            continue
        if not_implemented(exchange):
            continue
        checked += 1
        body = exchange.response_json()
        if exchange.failure == "not-json" or body is None:
            kind = exchange.response_header("content-type") or "no content-type"
            findings.add(
                record.name,
                f"not-json: {target.path} answered {exchange.status} ({kind}) with "
                f"{exchange.response_body[:80]!r}: expected a JSON {model.__name__}",
                [exchange.seq],
            )
            continue
        problem = _validates(model, exchange.response_body)
        if problem is None:
            continue
        if isinstance(body, dict) and _sdk_shape(target, body, exchange.response_body):
            continue
        findings.add(
            record.name,
            f"{target.path} answered {exchange.status} with a body that is not a "
            f"{model.__name__}: {problem}",
            [exchange.seq],
        )
    return findings.verdict(f"{checked} answers parse and validate", what="invalid answer")


@clause(
    "WIRE-STATUS",
    "the HTTP code matches the body's `status` per the SDK mapping (`plugin-contract.md`), "
    "e.g. connection `external_segment_not_ready_yet` is 502, batch `RETRY` is 503.",
    group="wire",
    runs=(*_CORE_RUNS, _AUTH_RUN),
)
def check_wire_status(evidence: Evidence) -> Verdict:
    """HTTP code == ``route.code_for(body status)``; SDK error shapes keep their own codes."""
    findings = _Findings()
    checked = 0
    for record, exchange, target in _connector_answers(evidence):
        if _is_probe(exchange) or not _answered(exchange) or target.response_model is None:
            continue
        body = _body(exchange)
        if body is None or not_implemented(exchange):
            continue
        checked += 1
        status = _status(body)
        code = exchange.status
        if status is None and "error" in body:
            expected = MISSING_BODY_CODE
        elif status == THROTTLED_STATUS and code == THROTTLED_CODE and target.method == "POST":
            continue
        elif status == "error" and code == SDK_ERROR_CODE:
            continue  # the SDK answers a handler's exception so on every route
        else:
            expected = target.code_for(status)
        if code != expected:
            findings.add(
                record.name,
                f"{target.path} answered HTTP {code} with status {status!r}: expected {expected}",
                [exchange.seq],
            )
    return findings.verdict(f"{checked} answers carry the code of their status", what="mismatch")


@clause(
    "WIRE-DELAY-HEADER",
    "a truthy `next_msg_delay_in_ms` comes with the same value in `x-mics-next-msg-delay`.",
    group="wire",
    runs=("lifecycle", *_RATE_LIMITED),
)
def check_wire_delay_header(evidence: Evidence) -> Verdict:
    """Every JSON answer with a truthy delay carries the header with the same number."""
    findings = _Findings()
    checked = 0
    for record, exchange, target in _connector_answers(evidence):
        body = _body(exchange) if _answered(exchange) else None
        delay = body.get("next_msg_delay_in_ms") if body is not None else None
        if not delay:
            continue
        checked += 1
        header = exchange.response_header(DELAY_HEADER)
        if header is None:
            findings.add(
                record.name,
                f"{target.path} answered next_msg_delay_in_ms={delay!r} without the "
                f"{DELAY_HEADER} header",
                [exchange.seq],
            )
            continue
        try:
            same = float(header) == float(delay)
        except (TypeError, ValueError):
            same = False
        if not same:
            findings.add(
                record.name,
                f"{target.path}: {DELAY_HEADER}: {header!r} but next_msg_delay_in_ms={delay!r}: "
                "expected the same value",
                [exchange.seq],
            )
    if not checked:
        return Verdict.skipped(
            "not exercised: no answer carried a truthy next_msg_delay_in_ms (a batched "
            "connector gives batch delays in the header alone; RATE-LIMIT judges those)"
        )
    return findings.verdict(f"{checked} delayed answers carry the header", what="mismatch")


@clause(
    "WIRE-EMPTY-BODY",
    "an empty body gets a JSON error answer, never a hang or a crash.",
    group="wire",
    runs=("lifecycle",),
)
def check_wire_empty_body(evidence: Evidence) -> Verdict:
    """Each empty-body probe (``b""`` and ``b"{}"`` on every POST feed route) answers a JSON
    error: 4xx/5xx and ``error`` or an error ``status``; an absent optional route is fine."""
    record, probes, missing = _note(evidence, "lifecycle", "empty_body_probes")
    if missing is not None or record is None:
        return Verdict.failed(f"no empty-body probe was made: {missing}", run="lifecycle")
    findings = _Findings()
    index = view_of(record)
    for probe in probes:
        exchange = index.exchange(probe["seq"]) if probe["seq"] is not None else None
        what = f"{probe['route']} with body {probe['body']!r}"
        if exchange is None:
            findings.add(record.name, f"{what}: no exchange recorded")
            continue
        target = route_for_path(exchange.method, exchange.path)
        if exchange.failure == "timeout":
            findings.add(record.name, f"{what}: hang (no answer in time)", [exchange.seq])
            continue
        if exchange.failure in ("crash", "connection") or exchange.status is None:
            findings.add(
                record.name,
                f"{what}: crash ({exchange.failure}: {exchange.detail})",
                [exchange.seq],
            )
            continue
        if target is not None and not_implemented(exchange):
            continue
        body = _body(exchange)
        if body is None:
            findings.add(
                record.name,
                f"{what}: answered {exchange.status} with {exchange.response_body[:60]!r}, "
                "not a JSON object",
                [exchange.seq],
            )
            continue
        is_error = isinstance(body.get("error"), str | dict) or _status(body) in (
            "error",
            "ERROR",
            "not_implemented",
        )
        if exchange.status < 400 or not is_error:
            findings.add(
                record.name,
                f"{what}: answered {exchange.status} {_status(body) or body!r}: expected a "
                f"JSON error (e.g. {MISSING_BODY_CODE} {{'error': 'Missing request body'}})",
                [exchange.seq],
            )
    return findings.verdict(f"{len(probes)} empty-body probes answered a JSON error")


@clause(
    "WIRE-LATENCY",
    "every answer comes within the per-call timeout (default 10 s).",
    group="wire",
    runs=(*_CORE_RUNS, _AUTH_RUN),
)
def check_wire_latency(evidence: Evidence) -> Verdict:
    """No platform->connector exchange (empty-body probes aside) timed out or took longer
    than the run's ``call_timeout``."""
    findings = _Findings()
    checked = 0
    for record in evidence:
        limit = record.platform.settings.call_timeout
        for exchange in _exchanges(record, _PLATFORM):
            if _is_probe(exchange):
                continue  # an empty-body probe that hangs is WIRE-EMPTY-BODY's
            checked += 1
            seconds = exchange.real_seconds or 0.0
            if exchange.failure == "timeout" or seconds > limit:
                findings.add(
                    record.name,
                    f"timeout: {exchange.method} {exchange.path} took {seconds:.2f} s real "
                    f"({exchange.failure or 'answered late'}): the limit is {limit:g} s",
                    [exchange.seq],
                )
    return findings.verdict(f"{checked} answers came within the timeout", what="slow answer")


# --------------------------------------------------------------------------- creation


def _new_segments(note: dict[str, Any]) -> list[str]:
    before = set(note.get("segments_before") or ())
    return [s for s in note.get("segments_after") or () if s not in before]


@clause(
    "CREATE-OK",
    "with valid properties and an account the token reaches, creation is `ok` and exactly "
    "one partner segment exists for the feed afterwards.",
    group="creation",
    routes=("external_segment_creation",),
    runs=("lifecycle",),
)
def check_create_ok(evidence: Evidence) -> Verdict:
    """The main feed's creation answers 200 ``ok`` and the partner has one new segment."""
    _, note, missing = _note(evidence, "lifecycle", "creation")
    if missing is not None:
        return Verdict.failed(f"no creation was recorded: {missing}", run="lifecycle")
    new = _new_segments(note)
    seqs = note["seqs"]
    if not note["ok"]:
        return Verdict.failed(
            f"creation of a valid feed failed: {note['summary']}: expected 200 ok",
            seqs=seqs,
            run="lifecycle",
        )
    if len(new) != 1:
        return Verdict.failed(
            f"creation answered ok but the partner has {len(new)} new segments for the feed "
            f"({', '.join(new) or 'none'}): expected exactly 1",
            seqs=seqs,
            run="lifecycle",
        )
    return Verdict.passed(f"creation ok; partner segment {new[0]} created", run="lifecycle")


@clause(
    "CREATE-IDEMPOTENT",
    "creation repeated for the same feed (the platform retries) leaves exactly one partner "
    "segment (reuses `partner_segment_id` or the 409's existing id).",
    group="creation",
    routes=("external_segment_creation",),
    runs=("lifecycle",),
)
def check_create_idempotent(evidence: Evidence) -> Verdict:
    """Creation again: ok, no new segment, same id; a feed whose segment name the partner
    already has: ok, no new segment, the property names the existing segment."""
    findings = _Findings()
    _, first, missing = _note(evidence, "lifecycle", "creation")
    _, again, missing_again = _note(evidence, "lifecycle", "creation_retry")
    _, conflict, missing_conflict = _note(evidence, "lifecycle", "conflict")
    for reason in (missing, missing_again, missing_conflict):
        if reason is not None:
            findings.add("lifecycle", f"evidence missing: {reason}")
    if again is not None and first is not None:
        new = _new_segments(again)
        if not again["ok"]:
            findings.add(
                "lifecycle",
                f"creation repeated failed: {again['summary']}: expected ok, reusing the segment",
                again["seqs"],
            )
        if new:
            findings.add(
                "lifecycle",
                f"creation repeated created {len(new)} more partner segment(s) "
                f"({', '.join(new)}): expected 0",
                again["seqs"],
            )
        if again["partner_segment_id"] != first["partner_segment_id"]:
            findings.add(
                "lifecycle",
                f"creation repeated changed partner_segment_id from "
                f"{first['partner_segment_id']!r} to {again['partner_segment_id']!r}",
                again["seqs"],
            )
    if conflict is not None and "error" not in conflict:
        existing = conflict["existing_segment_id"]
        new = _new_segments(conflict)
        if not conflict["ok"]:
            findings.add(
                "lifecycle",
                f"creation of a feed whose segment name is taken (409, existing {existing}) "
                f"failed: {conflict['summary']}: expected ok reusing {existing}",
                conflict["seqs"],
            )
        if new:
            findings.add(
                "lifecycle",
                f"the name-conflict creation made {len(new)} new segment(s) ({', '.join(new)}): "
                f"expected 0, reusing {existing}",
                conflict["seqs"],
            )
        if conflict["partner_segment_id"] != existing:
            findings.add(
                "lifecycle",
                f"after the 409, partner_segment_id is {conflict['partner_segment_id']!r}: "
                f"expected the existing segment {existing!r}",
                conflict["seqs"],
            )
    return findings.verdict("creation repeated and the 409 path reuse the one segment")


@clause(
    "CREATE-PERSISTS-ID",
    "after creation, the feed property `partner_segment_id` names that partner segment.",
    group="creation",
    routes=("external_segment_creation",),
    runs=("lifecycle",),
)
def check_create_persists_id(evidence: Evidence) -> Verdict:
    """Each feed's last creation answered ``ok``, in every run: its ``partner_segment_id``
    names the segment that call made (201), the existing one its 409 named, or the segment
    the property already named; and that segment exists at the partner."""
    findings = _Findings()
    checked = 0
    for record in evidence:
        segments = set(record.partner.segment_ids())
        last: dict[str, Exchange] = {}  # the property reflects a feed's last creation
        for exchange in _exchanges(record, _PLATFORM, "/v1/external_segment_creation"):
            if _is_probe(exchange) or (exchange.status, _status(_body(exchange))) != (200, "ok"):
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
            elif made and value not in made:
                findings.add(
                    record.name,
                    f"feed {feed_id}: partner_segment_id is {value!r}: expected the segment "
                    f"creation made or reused ({', '.join(made)})",
                    [exchange.seq],
                )
            elif value not in segments:
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
    """The segments a creation call made (201 ``id``) or was told exist (409 details)."""
    named: list[str] = []
    for call in view_of(record).nested(exchange):
        if call.method != "POST" or _ACCOUNT_SEGMENTS.match(call.path) is None:
            continue
        body = _body(call)
        if call.status == 201 and body is not None and isinstance(body.get("id"), str):
            named.append(body["id"])
        elif call.status == 409 and body is not None:
            error = body.get("error")
            details = error.get("details") if isinstance(error, dict) else None
            for detail in details if isinstance(details, list) else ():
                if isinstance(detail, dict) and isinstance(detail.get("segment_id"), str):
                    named.append(detail["segment_id"])
    return named


@clause(
    "CREATE-INVALID-CONFIG",
    "a missing `partner_account_id`, no selected identifying resource, or an unreadable "
    "configuration file -> status `error` with a message that names the problem; nothing "
    "is created at the partner.",
    group="creation",
    routes=("external_segment_creation",),
    runs=("invalid-config",),
)
def check_create_invalid_config(evidence: Evidence) -> Verdict:
    """Each invalid case: status ``error``, message with one of the case's words, no new
    partner segment."""
    record, cases, missing = _note(evidence, "invalid-config", "cases")
    if missing is not None:
        return Verdict.failed(
            f"no invalid configuration was tried: {missing}", run="invalid-config"
        )
    findings = _Findings()
    if len(cases) < 3 and record is not None:
        findings.add(
            "invalid-config",
            f"only {len(cases)} of 3 cases ran ({record.aborted or 'run incomplete'})",
        )
    for case in cases:
        name, seqs = case["case"], case["seqs"]
        message = case.get("message") or ""
        if case["status"] != "error":
            findings.add(
                "invalid-config",
                f"{name}: creation answered {case['http_status']} {case['status']!r}: expected "
                "status 'error'",
                seqs,
            )
        elif not any(word.lower() in message.lower() for word in case["expect"]):
            findings.add(
                "invalid-config",
                f"{name}: the error message {message[:120]!r} does not name the problem "
                f"(expected one of {case['expect']})",
                seqs,
            )
        new = _new_segments(case)
        if new:
            findings.add(
                "invalid-config",
                f"{name}: {len(new)} partner segment(s) created ({', '.join(new)}): expected 0",
                seqs,
            )
    return findings.verdict(f"{len(cases)} invalid configurations refused, nothing created")


# --------------------------------------------------------------------------- connection


def _last_segment_answer(record: RunRecord, exchange: Exchange) -> Exchange | None:
    """The connector's last partner call on ``/v1/segments/...`` inside ``exchange``."""
    calls = [
        e
        for e in view_of(record).nested(exchange)
        if e.leg == _PARTNER and _SEGMENT_PATH.match(e.path) and e.status is not None
    ]
    return calls[-1] if calls else None


@clause(
    "CONNECT-NOT-READY",
    "while the partner answers 404 `SEGMENT_NOT_READY`, connection answers "
    "`external_segment_not_ready_yet` (502), never `ok` and never `error`.",
    group="connection",
    routes=("external_segment_connection",),
    runs=("lifecycle", _NOT_READY_RUN),
)
def check_connect_not_ready(evidence: Evidence) -> Verdict:
    """The connection call made while the partner segment was PROVISIONING, and every
    connection whose last segment call got 404 SEGMENT_NOT_READY, answer 502 not ready."""
    findings = _Findings()
    checked = 0
    _, probe, missing = _note(evidence, "lifecycle", "connection_probe")
    if missing is not None:
        findings.add("lifecycle", f"no connection was tried: {missing}")
    elif probe["partner_status_before"] == probe["partner_status_after"] == "PROVISIONING":
        checked += 1
        if (probe["http_status"], probe["status"]) != (502, "external_segment_not_ready_yet"):
            findings.add(
                "lifecycle",
                f"connection while partner segment {probe['partner_segment_id']} was "
                f"PROVISIONING answered {probe['http_status']} {probe['status']!r}: expected "
                "502 external_segment_not_ready_yet",
                [probe["seq"]],
            )
    for record in evidence:
        for exchange in _exchanges(record, _PLATFORM, "/v1/external_segment_connection"):
            if _is_probe(exchange) or not _answered(exchange):
                continue
            last = _last_segment_answer(record, exchange)
            if last is None or last.status != 404 or _partner_code(last) != "SEGMENT_NOT_READY":
                continue
            checked += 1
            body = _body(exchange)
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
            "no connection call met a provisioning partner segment (scenario without delay)"
        )
    return findings.verdict(f"{checked} not-ready connections answered 502")


@clause(
    "CONNECT-READY",
    "once the partner segment exists and is past provisioning, connection answers `ok`.",
    group="connection",
    routes=("external_segment_connection",),
    runs=("lifecycle", _NOT_READY_RUN),
)
def check_connect_ready(evidence: Evidence) -> Verdict:
    """The lifecycle's polled connection ends ``ok``; any connection whose last segment
    call got a 2xx answers 200 ``ok``."""
    findings = _Findings()
    _, note, missing = _note(evidence, "lifecycle", "connection")
    if missing is not None:
        findings.add("lifecycle", f"no connection was polled: {missing}")
    elif not note["ok"]:
        findings.add(
            "lifecycle",
            f"connection never answered ok: {note['summary']}: expected ok once the partner "
            "segment is past provisioning",
            note["seqs"][-3:],
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
            body = _body(exchange)
            if (exchange.status, _status(body)) != (200, "ok"):
                findings.add(
                    record.name,
                    f"the partner segment answered {last.status} (ready) but connection "
                    f"answered {exchange.status} {_status(body)!r}: expected 200 ok",
                    [exchange.seq, last.seq],
                )
    return findings.verdict(f"connection ok once ready ({checked} ready checks)")


# --------------------------------------------------------------------------- updates


def _final_exchange(update: UpdateRecord, index: RunView) -> Exchange | None:
    return index.exchange(update.exchanges[-1]) if update.exchanges else None


def _data_text(exchange: Exchange | None) -> str:
    """The answer's ``data`` as JSON text (where delivered identifier values appear)."""
    body = _body(exchange) if exchange is not None else None
    data = body.get("data") if body is not None else None
    return json.dumps(data) if data else ""


def _values_seen(record: RunRecord) -> set[PartnerIdentifier]:
    return {member for entry in view_of(record).entries for member in entry.compact.identifiers()}


@clause(
    "UPDATE-ELIGIBLE",
    "every eligible identifier of an UPSERT/DELETE reaches the delivery (`data`) or the "
    "partner; a user with none answers `no_eligible_identifier` (400) or `ok` without data, "
    "never `error`.",
    group="updates",
    routes=("user_segment_update",),
    runs=("lifecycle",),
)
def check_update_eligible(evidence: Evidence) -> Verdict:
    """Each eligible ``(type, value)`` appears in the update's answer or in what the partner
    received; a user without one gets 400 no_eligible_identifier or 200 ok without data."""
    findings = _Findings()
    checked = 0
    for record in evidence:
        index = view_of(record)
        seen: set[PartnerIdentifier] | None = None
        for name, feed in _feeds(record):
            for update in feed.updates:
                checked += 1
                eligible = update.user.eligible_partner_identifiers(feed.identifying)
                exchange = _final_exchange(update, index)
                seq = exchange.seq if exchange is not None else None
                what = f"feed {name} update #{update.index} ({update.operation})"
                if not eligible:
                    body = _body(exchange) if exchange is not None else None
                    data = body.get("data") if body is not None else None
                    fine = (update.http_status, update.outcome) == (
                        400,
                        "no_eligible_identifier",
                    ) or ((update.http_status, update.outcome) == (200, "ok") and not data)
                    if not fine:
                        findings.add(
                            record.name,
                            f"{what} of a user without eligible identifier answered "
                            f"{update.http_status} {update.outcome!r}"
                            + (f" with {len(data)} data item(s)" if data else "")
                            + ": expected 400 no_eligible_identifier or 200 ok without data",
                            [seq],
                        )
                    continue
                text = _data_text(exchange)
                if seen is None:
                    seen = _values_seen(record)
                lost = [i for i in eligible if i[1] not in text and i not in seen]
                if lost:
                    kind, value = sorted(lost)[0]
                    findings.add(
                        record.name,
                        f"{what} answered {update.http_status} {update.outcome!r}: {len(lost)} of "
                        f"{len(eligible)} eligible identifiers (e.g. {kind} {_short(value)}) "
                        "reached neither the answer's data nor the partner",
                        [seq],
                    )
    return findings.verdict(f"{checked} updates delivered their eligible identifiers")


def _update_answers(evidence: Evidence) -> Iterator[tuple[RunRecord, Exchange, dict[str, Any]]]:
    for record in evidence:
        for exchange in _exchanges(record, _PLATFORM, "/v1/user_segment_update"):
            body = _body(exchange) if _answered(exchange) and not _is_probe(exchange) else None
            if body is not None:
                yield record, exchange, body


@clause(
    "UPDATE-GROUPING",
    "every `BATCH_DELIVERY`/`FILE_DELIVERY` item carries a non-empty `grouping_key`; "
    "`FILE_DELIVERY` carries `destination_token`.",
    group="updates",
    routes=("user_segment_update",),
    runs=("lifecycle",),
)
def check_update_grouping(evidence: Evidence) -> Verdict:
    """Every delivery item of every update answer has its keys, non-empty strings."""
    findings = _Findings()
    items = 0
    for record, exchange, body in _update_answers(evidence):
        data = body.get("data")
        if not isinstance(data, list):
            continue
        for position, item in enumerate(data):
            if not isinstance(item, dict) or item.get("type") not in (
                "BATCH_DELIVERY",
                "FILE_DELIVERY",
            ):
                continue
            items += 1
            needed = ["grouping_key"]
            if item["type"] == "FILE_DELIVERY":
                needed.append("destination_token")
            for key in needed:
                value = item.get(key)
                if not isinstance(value, str) or not value.strip():
                    findings.add(
                        record.name,
                        f"data[{position}] ({item['type']}) has {key}={value!r}: expected a "
                        "non-empty string",
                        [exchange.seq],
                    )
    return findings.verdict(f"{items} delivery items carry their keys")


def _user_values(request: Any) -> set[str]:
    """Every identifier value of the request's user (strings of each identifier and of its
    nested technical identifiers), as sent, trimmed and lower-cased, and after ``mob:``."""
    identifiers = request.get("user_identifiers") if isinstance(request, dict) else None
    values: set[str] = set()
    for identifier in identifiers if isinstance(identifiers, list) else ():
        if not isinstance(identifier, dict):
            continue
        for value in identifier.values():
            texts = [value] if isinstance(value, str) else []
            if isinstance(value, list):
                texts = [v for item in value if isinstance(item, dict) for v in item.values()]
            for text in texts:
                if isinstance(text, str):
                    values.add(text)
                    values.add(text.strip().lower())
                    if text.startswith("mob:"):
                        values.add(text.rsplit(":", 1)[-1])
    return values


@clause(
    "UPDATE-STATS",
    "every `stats[].identifier` belongs to the request's user.",
    group="updates",
    routes=("user_segment_update",),
    runs=("lifecycle",),
)
def check_update_stats(evidence: Evidence) -> Verdict:
    """Each stat's identifier is one of the request's identifier values (as sent, trimmed
    and lower-cased, or the id after a ``mob:...:`` prefix)."""
    findings = _Findings()
    stats_seen = 0
    for record, exchange, body in _update_answers(evidence):
        stats = body.get("stats")
        if not isinstance(stats, list) or not stats:
            continue
        values = _user_values(exchange.request_json())
        for stat in stats:
            identifier = stat.get("identifier") if isinstance(stat, dict) else None
            stats_seen += 1
            if not isinstance(identifier, str) or (
                identifier not in values and identifier.strip().lower() not in values
            ):
                shown = _short(identifier) if isinstance(identifier, str) else repr(identifier)
                findings.add(
                    record.name,
                    f"stats identifier {shown} is none of the request user's "
                    f"{len(values)} identifier values",
                    [exchange.seq],
                )
    return findings.verdict(f"{stats_seen} stats name the request's user")


# --------------------------------------------------------------------------- batches


@clause(
    "BATCH-ACCOUNTING",
    "for every `batch_update` answer, `sent_items_in_success + sent_items_in_error == "
    "len(batch_content)`, both >= 0. Only `OK` and `ERROR` answers are final; a `RETRY` "
    "answer's counts are not counted.",
    group="batches",
    routes=("batch_update",),
    runs=_SESSION_RUNS,
)
def check_batch_accounting(evidence: Evidence) -> Verdict:
    """Every final (OK / ERROR) ``batch_update`` answer's counts add up to the batch size."""
    findings = _Findings()
    _random_lives(evidence, "BATCH-ACCOUNTING", findings)
    checked = 0
    for record, exchange in _batch_answers(evidence):
        body = _body(exchange)
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
    return findings.verdict(f"{checked} final batch answers add up")


@clause(
    "BATCH-HONEST",
    "across a session, the items the connector reported as success equal the operations the "
    "partner accepted for them, and the ones reported as error were not accepted (no silent "
    "loss, no invented success).",
    group="batches",
    routes=("batch_update",),
    runs=_SESSION_RUNS,
)
def check_batch_honest(evidence: Evidence) -> Verdict:
    """Per final batch attempt: reported success == operations the partner accepted in the
    uploads nested in that call, and errors <= items the partner did not accept."""
    findings = _Findings()
    _random_lives(evidence, "BATCH-HONEST", findings)
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
    return findings.verdict(f"{checked} final batch answers match the partner's ledger")


@clause(
    "BATCH-EMPTY",
    "an empty `batch_content` answers `OK` with 0 and 0.",
    group="batches",
    routes=("batch_update",),
    runs=("lifecycle",),
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
        body = _body(exchange)
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
        _, _, missing = _note(evidence, "lifecycle", "empty_batch")
        findings.add("lifecycle", f"no empty batch was answered: {missing or 'no answer'}")
    return findings.verdict(f"{checked} empty batches answered OK 0 0")


@clause(
    "BATCH-LIMIT",
    "no request to the partner exceeds its limits (10,000 operations, 5 MiB): a larger "
    "batch is split.",
    group="batches",
    runs=("oversized",),
)
def check_batch_limit(evidence: Evidence) -> Verdict:
    """No upload over 10,000 operations or 5 MiB, no 413; the oversized batch's final call
    uploaded at least one operation per item, in requests within the limits."""
    findings = _Findings()
    uploads_seen = 0
    for record in evidence:
        limits = record.partner.effective_scenario.limits
        max_operations, max_bytes = limits.max_operations, limits.max_body_bytes
        for upload in view_of(record).uploads():
            uploads_seen += 1
            count = _operation_count(upload)
            size = len(upload.request_body)
            code = _partner_code(upload)
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
    oversized = evidence.get("oversized")
    feed = oversized.feeds.get("main") if oversized is not None else None
    if oversized is not None and feed is not None and feed.batches:
        _check_split(oversized, feed, findings)
    if not findings and uploads_seen == 0:
        return Verdict.skipped("not exercised: no upload reached the partner")
    return findings.verdict(f"{uploads_seen} uploads within the partner's limits")


def _check_split(record: RunRecord, feed: Feed, findings: _Findings) -> None:
    """The oversized run's biggest batch reached the partner, split."""
    batch = max(feed.batches, key=lambda b: len(b.items))
    size = len(batch.items)
    if size <= PARTNER_OPERATION_LIMIT:
        findings.add(
            record.name,
            f"the largest batch had {size} items: the run needs one over "
            f"{PARTNER_OPERATION_LIMIT} to verify splitting",
        )
        return
    attempt = _final_attempt(batch)
    seq = attempt.exchange_seq if attempt is not None else None
    exchange = view_of(record).exchange(seq) if seq is not None else None
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
    uploads = view_of(record).uploads(exchange)
    sent = sum(_operation_count(u) or 0 for u in uploads)
    if sent < size:
        findings.add(
            record.name,
            f"the batch of {size} items was answered {attempt.status} after uploading {sent} "
            f"operations in {len(uploads)} request(s): expected every item split into "
            f"requests of at most {PARTNER_OPERATION_LIMIT}",
            [exchange.seq],
        )


_TRANSIENT_STATUSES = frozenset({401, 404, 408, 429})
"""Partner refusals that clear by themselves (expired token, segment not ready, rate limit)."""


def _permanent_faults(record: RunRecord, feed: Feed) -> bool:
    """The partner refused something of this feed for good: a per-item rejection, a 4xx
    upload refusal other than the transient ones, or a refused refresh token."""
    try:
        segment: str | None = record.platform.partner_segment_id(feed.feed_id)
    except (FeedStateError, LookupError, ValueError):
        segment = None
    for entry in view_of(record).entries:
        if entry.path == "/oauth/token" and entry.status is not None and 400 <= entry.status < 500:
            return True
        upload = entry.method == "POST" and entry.path.endswith("/members")
        if not upload or (segment is not None and entry.segment_id not in (segment, None)):
            continue
        if entry.rejected > 0:
            return True
        status = entry.status
        if status is not None and 400 <= status < 500 and status not in _TRANSIENT_STATUSES:
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
    runs=_SESSION_RUNS,
)
def check_convergence(evidence: Evidence) -> Verdict:
    """Per feed with updates: partner membership == model, or every difference traced to an
    update whose delivery was accounted as error / dead-lettered (and no more of them than
    the errors accounted)."""
    findings = _Findings()
    _random_lives(evidence, "CONVERGENCE", findings)
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
            # updates still queued (a stateful example mid-life) are not delivered yet
            expected = feed.settled_membership()
            if actual == expected:
                continue
            _explain(record, name, feed, expected, actual, findings)
    if not findings and compared == 0 and files:
        return Verdict.skipped(
            f"{files} feed(s) delivered as FILE_DELIVERY files: the harness does not upload "
            "files to the partner, so there is no membership to compare"
        )
    return findings.verdict(f"{compared} feeds converged (or accounted every difference)")


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
    runs=_SESSION_RUNS,
)
def check_retry_no_duplicate_success(evidence: Evidence) -> Verdict:
    """Per feed session: the final answers' success total <= the distinct items sent (an
    item is its update and its content), and per batch <= its distinct items."""
    findings = _Findings()
    _random_lives(evidence, "RETRY-NO-DUPLICATE-SUCCESS", findings)
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
    return findings.verdict(f"{sessions} sessions count each item as success at most once")


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
    runs=("lifecycle",),
)
def check_delete_absent(evidence: Evidence) -> Verdict:
    """The DELETEs of users never added answer ok (or no_eligible_identifier), and their
    batch ends OK with no more errors than the partner rejected."""
    record, indices, missing = _note(evidence, "lifecycle", "absent_deletes")
    if missing is not None or record is None:
        return Verdict.failed(f"no DELETE of an absent user was sent: {missing}", run="lifecycle")
    feed = record.feeds["main"]
    findings = _Findings()
    index = view_of(record)
    for update in (feed.updates[i] for i in indices):
        if update.outcome not in ("ok", "no_eligible_identifier"):
            exchange = _final_exchange(update, index)
            findings.add(
                record.name,
                f"DELETE of a user never added (update #{update.index}) answered "
                f"{update.http_status} {update.outcome!r}: expected ok",
                [exchange.seq if exchange else None],
            )
    batch_ids = set(record.notes.get("absent_delete_batches") or ())
    for batch in (b for b in feed.batches if b.batch_id in batch_ids):
        attempt = _final_attempt(batch)
        if batch.outcome != "OK" or attempt is None:
            last = batch.attempts[-1] if batch.attempts else None
            findings.add(
                record.name,
                f"the batch of {len(batch.items)} absent DELETEs ended {batch.outcome} "
                f"({last.http_status if last else None} {last.status if last else None}): "
                "expected OK",
                [last.exchange_seq if last else None],
            )
            continue
        exchange = index.exchange(attempt.exchange_seq) if attempt.exchange_seq else None
        _, rejected = index.accepted(index.uploads(exchange) if exchange else [])
        if (attempt.sent_items_in_error or 0) > rejected:
            findings.add(
                record.name,
                f"the batch of {len(batch.items)} absent DELETEs reported "
                f"{attempt.sent_items_in_error} errors, the partner rejected {rejected}: "
                "removing an absent member is not an error",
                [attempt.exchange_seq],
            )
    return findings.verdict(f"{len(indices)} DELETEs of absent users were not errors")


# --------------------------------------------------------------------------- data protection


@clause(
    "PII-HASHED",
    "the partner never receives a raw email or phone number (no `@` in a value, SHA-256 "
    "types are 64 lowercase hex).",
    group="data protection",
    runs=("lifecycle",),
)
def check_pii_hashed(evidence: Evidence) -> Verdict:
    """Every identifier the partner received, in every run: in its ledger, in every request
    body the connector sent it (refused ones included), and in every delivered file line;
    no ``@`` in a value, SHA-256 types 64 lowercase hex."""
    findings = _Findings()
    values = 0
    for record in evidence:
        ledger = view_of(record)
        for entry in ledger.entries:
            bad: list[str] = []
            for operation in entry.operations:
                for kind, value in operation.identifiers:
                    values += 1
                    problem = _unhashed(kind, value)
                    if problem:
                        bad.append(problem)
            if bad:
                findings.add(
                    record.name,
                    f"partner request {entry.request_id} carried {len(bad)} unhashed "
                    f"identifier(s), e.g. {bad[0]}",
                    [ledger.seq_of(entry)],
                )
        for call in _exchanges(record, _PARTNER):
            if call.status is not None and 200 <= call.status < 300:
                continue  # accepted: the ledger above has what it carried
            bad = [
                p
                for kind, value in _identifiers_in(call.request_json())
                if (p := _unhashed(kind, value))
            ]
            if bad:
                findings.add(
                    record.name,
                    f"{call.method} {call.path} (answered {call.status or call.failure}) "
                    f"carried {len(bad)} unhashed identifier(s), e.g. {bad[0]}",
                    [call.seq],
                )
        for name, feed in _feeds(record):
            for delivery in feed.files.values():
                for number, line in enumerate(delivery.lines(), 1):
                    problem = _unhashed_line(line)
                    if problem:
                        findings.add(
                            record.name,
                            f"feed {name}: line {number} of the file for "
                            f"{delivery.destination_token}/{delivery.grouping_key} {problem}",
                        )
                        break
    return findings.verdict(f"{values} identifiers received, all hashed or non-PII")


_EMAIL = re.compile(r"[^@\s\"']+@[^@\s\"']+\.[A-Za-z]{2,}")


def _unhashed(kind: str, value: str) -> str | None:
    """Why ``(kind, value)`` is PII in the clear (None: it is not)."""
    if "@" in value:
        return f"{kind} {_short(value)} (raw: contains '@')"
    if kind in _SHA256_TYPES and not _SHA256.match(value):
        return f"{kind} {_short(value)} (not 64 lowercase hex)"
    return None


def _identifiers_in(body: Any) -> Iterator[tuple[str, str]]:
    """Every ``{"type": ..., "value": ...}`` pair in a JSON body, however deep."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            kind, value = item.get("type"), item.get("value")
            if isinstance(kind, str) and isinstance(value, str):
                yield kind, value
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _unhashed_line(line: str) -> str | None:
    """Why a delivered file line carries PII in the clear (None: it does not)."""
    try:
        parsed = json.loads(line)
    except ValueError:
        parsed = None
    for kind, value in _identifiers_in(parsed):
        problem = _unhashed(kind, value)
        if problem:
            return f"carries {problem}"
    found = _EMAIL.search(line)
    return f"carries a clear email address ({_short(found.group(0))})" if found else None


def _has_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(_has_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(_has_key(v, key) for v in value)
    return False


@clause(
    "SECRET-NO-LEAK",
    "no answer body, header or `message` of the connector contains a client secret, a "
    "refresh token or an access token; `/v1/authentication` answers never carry "
    "`refresh_token`.",
    group="data protection",
    runs=(*_CORE_RUNS, _AUTH_RUN, _TOKEN_EXPIRY, _INVALID_GRANT),
)
def check_secret_no_leak(evidence: Evidence) -> Verdict:
    """A connector answer leaked when the trace masked a secret in it as it was recorded
    (the part is in ``exchange.redacted`` and holds the mask) or the driver tagged it
    ``leaked``; no ``/v1/authentication`` answer has a ``refresh_token`` key."""
    findings = _Findings()
    checked = 0
    marker = MASK.encode()
    for record, exchange in evidence.all_connector_exchanges():
        checked += 1
        where: list[str] = []
        if "response_body" in exchange.redacted and marker in exchange.response_body:
            where.append("body")
        if "response_headers" in exchange.redacted and any(
            MASK in value for _, value in exchange.response_headers
        ):
            where.append("headers")
        if where:
            findings.add(
                record.name,
                f"{exchange.method} {exchange.path} answered a secret in the "
                f"{', '.join(where)} (masked in the trace as {MASK!r})",
                [exchange.seq],
            )
        if exchange.path == "/v1/authentication" and _has_key(
            exchange.response_json(), "refresh_token"
        ):
            findings.add(
                record.name,
                "/v1/authentication answered a refresh_token field: it must never go back",
                [exchange.seq],
            )
    return findings.verdict(f"{checked} connector answers carry no secret")


@clause(
    "ACCOUNT-ISOLATION",
    "the connector touches only its feed's account and segment (no 403 `ACCOUNT_FORBIDDEN`, "
    "no write to another segment).",
    group="data protection",
    runs=("lifecycle", _AUTH_RUN),
)
def check_account_isolation(evidence: Evidence) -> Verdict:
    """No partner 403 (but one a scenario's fault rule injected); every partner request
    made while serving a feed, read or write ("touches"), targets that feed's
    ``partner_segment_id`` or its ``partner_account_id``."""
    findings = _Findings()
    touched = 0
    for record in evidence:
        ledger = view_of(record)
        forbidden = [e for e in ledger.entries if e.status == 403 and not e.faults]
        if forbidden:
            entry = forbidden[0]
            findings.add(
                record.name,
                f"{len(forbidden)} partner request(s) answered 403 (e.g. {entry.method} "
                f"{entry.path} {entry.error_code}): the connector reached beyond its account",
                [ledger.seq_of(e) for e in forbidden[:5]],
            )
        gateway = record.gateway
        for exchange in _exchanges(record, _PLATFORM):
            feed_id = _request_feed_id(exchange)
            if feed_id is None:
                continue
            try:
                own_segment = gateway.property_value(feed_id, "partner_segment_id")
                own_account = gateway.property_value(feed_id, "partner_account_id")
            except (KeyError, LookupError, ValueError):
                own_segment = own_account = None
            for call in view_of(record).nested(exchange):
                if call.leg != _PARTNER:
                    continue
                segment = _SEGMENT_PATH.match(call.path)
                account = _ACCOUNT_PATH.match(call.path)
                touched += 1
                if segment is not None and segment.group(1) != own_segment:
                    findings.add(
                        record.name,
                        f"serving feed {feed_id}, the connector touched {call.method} "
                        f"{call.path}: its segment is {own_segment!r}",
                        [exchange.seq, call.seq],
                    )
                elif account is not None and account.group(1) != own_account:
                    findings.add(
                        record.name,
                        f"serving feed {feed_id}, the connector touched {call.method} "
                        f"{call.path}: its account is {own_account!r}",
                        [exchange.seq, call.seq],
                    )
    return findings.verdict(
        f"{touched} partner requests stayed in their feed's account and segment"
    )


# --------------------------------------------------------------------------- troubleshoot


@clause(
    "TROUBLESHOOT-AUDIENCE",
    "`FETCH_DESTINATION_AUDIENCE` answers `ok` with data whose counts and match rate equal "
    "the partner's current snapshot of that segment; an unknown action answers "
    "`not_implemented` (400).",
    group="troubleshoot",
    routes=("troubleshoot",),
    runs=("lifecycle",),
)
def check_troubleshoot_audience(evidence: Evidence) -> Verdict:
    """The last FETCH_DESTINATION_AUDIENCE answer: 200 ok, ``destination_audience`` counts
    and ``match_rate`` == the partner snapshot taken right after; unknown action: 400."""
    record, note, missing = _note(evidence, "lifecycle", "troubleshoot")
    if missing is not None or record is None:
        return Verdict.failed(f"troubleshoot was not called: {missing}", run="lifecycle")
    findings = _Findings()
    unknown = record.notes.get("troubleshoot_unknown")
    if unknown is not None and (unknown["http_status"], unknown["status"]) != (
        400,
        "not_implemented",
    ):
        findings.add(
            record.name,
            f"the unknown action {unknown['action']} answered {unknown['http_status']} "
            f"{unknown['status']!r}: expected 400 not_implemented",
            [unknown["seq"]],
        )
    if note["status"] == "not_implemented":
        if findings:
            return findings.verdict("")
        return Verdict.skipped(
            "FETCH_DESTINATION_AUDIENCE answers not_implemented: troubleshoot not implemented",
            run="lifecycle",
        )
    exchange = view_of(record).exchange(note["seq"]) if note["seq"] is not None else None
    body = _body(exchange) if exchange is not None else None
    snapshot = note["snapshot"]
    if (note["http_status"], note["status"]) != (200, "ok") or body is None:
        findings.add(
            record.name,
            f"FETCH_DESTINATION_AUDIENCE answered {note['http_status']} {note['status']!r} "
            f"after {len(note['attempts'])} attempt(s): expected 200 ok",
            [note["seq"]],
        )
    elif snapshot is None:
        findings.add(record.name, "the feed has no partner segment to compare with")
    else:
        _compare_audience(record, body, snapshot, note["seq"], findings)
    return findings.verdict("troubleshoot shows the partner's snapshot")


def _compare_audience(
    record: RunRecord,
    body: dict[str, Any],
    snapshot: dict[str, Any],
    seq: int,
    findings: _Findings,
) -> None:
    data = body.get("data")
    audience = data.get("destination_audience") if isinstance(data, dict) else None
    if not isinstance(audience, dict):
        findings.add(
            record.name,
            "FETCH_DESTINATION_AUDIENCE data has no destination_audience object",
            [seq],
        )
        return
    wrong = [
        f"{key}={audience.get(key)!r} (partner: {snapshot.get(key)!r})"
        for key in ("id", *_COUNT_KEYS)
        if audience.get(key) != snapshot.get(key)
    ]
    assert isinstance(data, dict)
    if data.get("match_rate") != snapshot.get("match_rate"):
        wrong.append(
            f"data.match_rate={data.get('match_rate')!r} (partner: {snapshot.get('match_rate')!r})"
        )
    if wrong:
        findings.add(
            record.name,
            f"troubleshoot differs from the partner's snapshot: {'; '.join(wrong)}",
            [seq],
        )
