"""Wire: every answer of every route, in every run, parses, validates, maps its status to the
right HTTP code, carries its delay header, survives an empty body and comes in time.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from harness.clauses.checks._shared import (
    _PLATFORM,
    _answered,
    _exchanges,
    _Findings,
    _is_probe,
    _status,
)
from harness.clauses.evidence import Evidence, RunRecord, not_implemented
from harness.clauses.notes import LifecycleNotes, missing, notes_of
from harness.clauses.registry import Verdict, clause
from harness.clauses.run_names import AUTH, CORE, LIFECYCLE, RATE_LIMITED
from harness.clauses.view import view_of
from harness.trace import Exchange


def _connector_answers(evidence: Evidence) -> Iterator[tuple[RunRecord, Exchange, Route]]:
    """Every platform->connector exchange of a known route, in every run."""
    for record in evidence:
        for exchange in _exchanges(record, _PLATFORM):
            target = route_for_path(exchange.method, exchange.path)
            if target is not None:
                yield record, exchange, target


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
    runs=(*CORE, AUTH),
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
    runs=(*CORE, AUTH),
)
def check_wire_status(evidence: Evidence) -> Verdict:
    """HTTP code == ``route.code_for(body status)``; SDK error shapes keep their own codes."""
    findings = _Findings()
    checked = 0
    for record, exchange, target in _connector_answers(evidence):
        if _is_probe(exchange) or not _answered(exchange) or target.response_model is None:
            continue
        body = exchange.answer
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
    runs=(LIFECYCLE, *RATE_LIMITED),
)
def check_wire_delay_header(evidence: Evidence) -> Verdict:
    """Every JSON answer with a truthy delay carries the header with the same number."""
    findings = _Findings()
    checked = 0
    for record, exchange, target in _connector_answers(evidence):
        body = exchange.answer if _answered(exchange) else None
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
    runs=(LIFECYCLE,),
)
def check_wire_empty_body(evidence: Evidence) -> Verdict:
    """Each empty-body probe (``b""`` and ``b"{}"`` on every POST feed route) answers a JSON
    error: 4xx/5xx and ``error`` or an error ``status``; an absent optional route is fine."""
    record, notes = notes_of(evidence, LIFECYCLE, LifecycleNotes)
    if record is None or isinstance(notes, str):
        return Verdict.failed(f"no empty-body probe was made: {notes}", run=LIFECYCLE)
    probes = notes.empty_body_probes
    if probes is None:
        why = missing(record, "empty_body_probes")
        return Verdict.failed(f"no empty-body probe was made: {why}", run=LIFECYCLE)
    findings = _Findings()
    index = view_of(record)
    for probe in probes:
        exchange = index.exchange(probe.answer.seq)
        what = f"{probe.route} with body {probe.body!r}"
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
        body = exchange.answer
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
    runs=(*CORE, AUTH),
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
