"""The wire clauses on hand-built runs: every answer of every route, in every run."""

from __future__ import annotations

from typing import Any

import pytest

from harness.clauses import Verdict, get_clause
from harness.clauses.notes import Answered, EmptyBodyProbe, LifecycleNotes
from harness.clauses.run_names import LIFECYCLE
from harness.clauses.runs.core import PROBE_TAG
from tests.clauses.builder import RunBuilder, evidence

OK_BATCH = {"status": "OK", "sent_items_in_success": 1, "sent_items_in_error": 0}


def _check(clause_id: str, *runs: RunBuilder) -> Verdict:
    return get_clause(clause_id).check(evidence(*runs))


def _answering(
    name: str,
    route_name: str,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> tuple[RunBuilder, int]:
    """A run with one clean batch call, then one call to ``route_name`` answering so."""
    run = RunBuilder(name)
    with run.call("batch_update", {"batch_content": ["a"]}) as clean:
        run.upload(accepted=1)
        clean.answer(200, OK_BATCH)
    with run.call(route_name, {"feed_id": "7001"}) as call:
        call.answer(status, body, headers)
    return run, call.seq


# --------------------------------------------------------------------------- WIRE-SCHEMA


def test_schema_valid_answers_pass() -> None:
    run, _ = _answering(LIFECYCLE, "external_segment_connection", 200, {"status": "ok"})
    verdict = _check("WIRE-SCHEMA", run)
    assert verdict.outcome == "passed"
    assert verdict.message.startswith("2 answers")


@pytest.mark.parametrize("name", ["preset:flaky-5xx", "stateful"])
def test_schema_an_answer_off_its_model_fails_in_any_run(name: str) -> None:
    run, seq = _answering(name, "external_segment_connection", 200, {"status": "ok", "message": 42})
    verdict = _check("WIRE-SCHEMA", RunBuilder(LIFECYCLE), run)
    assert verdict.outcome == "failed"
    assert "not a ExternalSegmentConnectionResponse" in verdict.message
    assert "message" in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (seq,))


def test_schema_a_batch_answer_without_its_counts_fails() -> None:
    run, seq = _answering("preset:ambiguous-503", "batch_update", 200, {"status": "OK"})
    verdict = _check("WIRE-SCHEMA", run)
    assert verdict.outcome == "failed"
    assert "BatchUpdateResponse" in verdict.message
    assert "sent_items_in_success" in verdict.message
    assert verdict.seqs == (seq,)


def test_schema_an_answer_that_is_not_json_fails_whatever_its_content_type() -> None:
    run = RunBuilder("auth")
    with run.call("external_segment_connection", {"feed_id": "7001"}) as call:
        call.answer_bytes(200, b"<html>ok</html>", {"content-type": "application/json"})
    verdict = _check("WIRE-SCHEMA", run)
    assert verdict.outcome == "failed"
    assert verdict.message.startswith("1 invalid answer: [auth] not-json")
    assert "application/json" in verdict.message
    assert (verdict.run, verdict.seqs) == ("auth", (call.seq,))


def test_schema_the_sdk_own_answers_are_valid_on_every_route() -> None:
    """A handler's exception (500 error + message), a missing body (500 error) and a
    throttled POST (429 RETRY) are the SDK's shapes, not the route's model."""
    run, _ = _answering(LIFECYCLE, "batch_update", 500, {"status": "error", "message": "boom"})
    with run.call("user_segment_update", {"feed_id": "7001"}) as missing_body:
        missing_body.answer(500, {"error": "Missing request body"})
    with run.call("user_segment_update", {"feed_id": "7001"}) as throttled:
        throttled.answer(429, {"status": "RETRY", "message": "slow down"})
    assert _check("WIRE-SCHEMA", run).outcome == "passed"


def test_schema_an_sdk_error_without_its_message_fails() -> None:
    run, seq = _answering(LIFECYCLE, "batch_update", 500, {"status": "error"})
    verdict = _check("WIRE-SCHEMA", run)
    assert verdict.outcome == "failed"
    assert verdict.seqs == (seq,)


def test_schema_ignores_empty_body_probes_and_not_implemented_answers() -> None:
    run = RunBuilder(LIFECYCLE)
    with run.call("batch_update", raw=b"", **{PROBE_TAG: "empty-body"}) as probe:
        probe.answer(500, {"nonsense": True})
    with run.call("troubleshoot", {"feed_id": "7001"}) as absent:
        absent.answer(400, {"status": "not_implemented"})
    verdict = _check("WIRE-SCHEMA", run)
    assert verdict.outcome == "passed"
    assert verdict.message.startswith("0 answers")


# --------------------------------------------------------------------------- WIRE-STATUS


@pytest.mark.parametrize(
    ("route_name", "code", "body"),
    [
        ("external_segment_connection", 502, {"status": "external_segment_not_ready_yet"}),
        ("external_segment_connection", 500, {"status": "error", "message": "no"}),
        (
            "batch_update",
            503,
            {"status": "RETRY", "sent_items_in_success": 0, "sent_items_in_error": 0},
        ),
        (
            "batch_update",
            400,
            {"status": "ERROR", "sent_items_in_success": 0, "sent_items_in_error": 1},
        ),
        ("user_segment_update", 400, {"status": "no_eligible_identifier"}),
        ("user_segment_update", 429, {"status": "retry"}),
        ("user_segment_update", 429, {"status": "RETRY"}),
        ("user_segment_update", 500, {"error": "Missing request body"}),
    ],
)
def test_status_codes_of_the_sdk_mapping_pass(
    route_name: str, code: int, body: dict[str, Any]
) -> None:
    run, _ = _answering(LIFECYCLE, route_name, code, body)
    assert _check("WIRE-STATUS", run).outcome == "passed"


@pytest.mark.parametrize(
    ("name", "route_name", "code", "body", "expected"),
    [
        ("lifecycle", "batch_update", 500, {"status": "RETRY"}, 503),
        (
            "preset:flaky-5xx",
            "external_segment_connection",
            500,
            {"status": "external_segment_not_ready_yet"},
            502,
        ),
        (
            "stateful",
            "external_segment_connection",
            200,
            {"status": "external_segment_not_ready_yet"},
            502,
        ),
        ("stateful", "batch_update", 200, {"status": "ERROR"}, 400),
        ("preset:rate-limit-burst", "user_segment_update", 200, {"status": "retry"}, 429),
        ("auth", "user_segment_update", 400, {"error": "Missing request body"}, 500),
    ],
)
def test_status_a_code_off_the_mapping_fails_in_any_run(
    name: str, route_name: str, code: int, body: dict[str, Any], expected: int
) -> None:
    run, seq = _answering(name, route_name, code, body)
    verdict = _check("WIRE-STATUS", RunBuilder(LIFECYCLE), run)
    assert verdict.outcome == "failed"
    assert f"answered HTTP {code} with status {body.get('status')!r}" in verdict.message
    assert f"expected {expected}" in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (seq,))


def test_status_a_throttled_answer_is_the_sdk_only_on_a_post_with_429() -> None:
    run, seq = _answering(LIFECYCLE, "batch_update", 503, {"status": "error", "message": "x"})
    verdict = _check("WIRE-STATUS", run)
    assert verdict.outcome == "failed", "an SDK error is 500, nothing else"
    assert "expected 500" in verdict.message
    assert verdict.seqs == (seq,)


def test_status_every_mismatch_is_counted_and_the_first_run_named() -> None:
    first, seq = _answering("preset:flaky-5xx", "batch_update", 500, {"status": "RETRY"})
    second, _ = _answering("stateful", "batch_update", 500, {"status": "OK"})
    verdict = _check("WIRE-STATUS", first, second)
    assert verdict.message.startswith("2 mismatches: [preset:flaky-5xx]")
    assert "[stateful]" in verdict.message
    assert (verdict.run, verdict.seqs) == ("preset:flaky-5xx", (seq,))


# --------------------------------------------------------------------------- WIRE-DELAY-HEADER


def _delayed(name: str, delay: object, headers: dict[str, str] | None) -> tuple[RunBuilder, int]:
    return _answering(
        name,
        "user_segment_update",
        200,
        {"status": "ok", "next_msg_delay_in_ms": delay},
        headers,
    )


def test_delay_header_with_the_same_value_passes() -> None:
    run, _ = _delayed(LIFECYCLE, 50, {"x-mics-next-msg-delay": "50"})
    verdict = _check("WIRE-DELAY-HEADER", run)
    assert (verdict.outcome, verdict.message) == ("passed", "1 delayed answers carry the header")


@pytest.mark.parametrize("name", ["preset:rate-limit-burst", "stateful"])
def test_delay_without_its_header_fails_in_any_run(name: str) -> None:
    run, seq = _delayed(name, 50, None)
    verdict = _check("WIRE-DELAY-HEADER", run)
    assert verdict.outcome == "failed"
    assert "next_msg_delay_in_ms=50 without the x-mics-next-msg-delay header" in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (seq,))


@pytest.mark.parametrize("header", ["500", "soon"])
def test_delay_with_another_value_in_the_header_fails(header: str) -> None:
    run, seq = _delayed(LIFECYCLE, 50, {"x-mics-next-msg-delay": header})
    verdict = _check("WIRE-DELAY-HEADER", run)
    assert verdict.outcome == "failed"
    assert f"{header!r} but next_msg_delay_in_ms=50: expected the same value" in verdict.message
    assert verdict.seqs == (seq,)


def test_delay_a_falsy_delay_needs_no_header_and_nothing_else_is_exercised() -> None:
    run, _ = _delayed(LIFECYCLE, 0, None)
    verdict = _check("WIRE-DELAY-HEADER", run)
    assert verdict.outcome == "skipped"
    assert verdict.message.startswith("not exercised")


# --------------------------------------------------------------------------- WIRE-EMPTY-BODY


def _probed(*answers: tuple[int, dict[str, Any] | bytes] | None) -> tuple[RunBuilder, list[int]]:
    """A lifecycle run whose empty-body probes answered so (None: no answer)."""
    notes = LifecycleNotes(empty_body_probes=[])
    run = RunBuilder(LIFECYCLE, notes=notes)
    seqs = []
    for answer in answers:
        with run.call("user_segment_update", raw=b"", **{PROBE_TAG: "empty-body"}) as call:
            if answer is None:
                call.no_answer()
            elif isinstance(answer[1], bytes):
                call.answer_bytes(answer[0], answer[1])
            else:
                call.answer(answer[0], answer[1])
        assert notes.empty_body_probes is not None
        notes.empty_body_probes.append(
            EmptyBodyProbe("user_segment_update", "", Answered(seq=call.seq))
        )
        seqs.append(call.seq)
    return run, seqs


def test_empty_body_json_errors_pass() -> None:
    run, _ = _probed(
        (500, {"error": "Missing request body"}),
        (400, {"status": "error", "message": "no body"}),
        (400, {"status": "ERROR", "sent_items_in_success": 0, "sent_items_in_error": 0}),
    )
    verdict = _check("WIRE-EMPTY-BODY", run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "3 empty-body probes answered a JSON error",
    )


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (None, "hang (no answer in time)"),
        ((200, {"status": "ok"}), "answered 200 'ok': expected a JSON error"),
        ((500, {"status": "ok"}), "answered 500 'ok': expected a JSON error"),
        ((500, b"Internal Server Error"), "not a JSON object"),
    ],
)
def test_empty_body_a_hang_a_success_or_a_non_json_answer_fails(
    answer: tuple[int, dict[str, Any] | bytes] | None, words: str
) -> None:
    run, seqs = _probed((500, {"error": "Missing request body"}), answer)
    verdict = _check("WIRE-EMPTY-BODY", run)
    assert verdict.outcome == "failed"
    assert verdict.message.startswith("1 violation: [lifecycle] user_segment_update with body ''")
    assert words in verdict.message
    assert (verdict.run, verdict.seqs) == (LIFECYCLE, (seqs[1],))


def test_empty_body_a_crash_fails() -> None:
    run, seqs = _probed((500, {"error": "Missing request body"}))
    run.record.trace.exchanges()[0].failure = "crash"
    run.record.trace.exchanges()[0].status = None
    verdict = _check("WIRE-EMPTY-BODY", run)
    assert verdict.outcome == "failed"
    assert "crash" in verdict.message
    assert verdict.seqs == (seqs[0],)


def test_empty_body_an_absent_optional_route_is_fine() -> None:
    notes = LifecycleNotes(empty_body_probes=[])
    run = RunBuilder(LIFECYCLE, notes=notes)
    with run.call("batch_update", raw=b"", **{PROBE_TAG: "empty-body"}) as call:
        call.answer(404, {"status": "not found"})
    assert notes.empty_body_probes is not None
    notes.empty_body_probes.append(EmptyBodyProbe("batch_update", "", Answered(seq=call.seq)))
    assert _check("WIRE-EMPTY-BODY", run).outcome == "passed"


def test_empty_body_without_probes_fails_saying_why() -> None:
    run = RunBuilder(LIFECYCLE, notes=LifecycleNotes())
    run.record.aborted = "the connector stopped answering"
    verdict = _check("WIRE-EMPTY-BODY", run)
    assert verdict.outcome == "failed"
    assert "no empty-body probe was made" in verdict.message
    assert "the connector stopped answering" in verdict.message
    assert _check("WIRE-EMPTY-BODY", RunBuilder("auth")).outcome == "failed"


# --------------------------------------------------------------------------- WIRE-LATENCY


def test_latency_answers_in_time_pass() -> None:
    run, _ = _answering(LIFECYCLE, "external_segment_connection", 200, {"status": "ok"})
    verdict = _check("WIRE-LATENCY", run)
    assert (verdict.outcome, verdict.message) == ("passed", "2 answers came within the timeout")


@pytest.mark.parametrize("name", ["preset:token-expiry-mid-upload", "stateful"])
def test_latency_an_answer_over_the_timeout_fails_in_any_run(name: str) -> None:
    run, seq = _answering(name, "external_segment_connection", 200, {"status": "ok"})
    slow = run.record.trace.exchanges()[-1]
    slow.real_seconds = 10.5
    verdict = _check("WIRE-LATENCY", run)
    assert verdict.outcome == "failed"
    assert "took 10.50 s real (answered late): the limit is 10 s" in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (seq,))


def test_latency_a_timeout_fails_whatever_the_time_measured() -> None:
    run = RunBuilder("auth")
    with run.call("batch_update", {"batch_content": []}) as call:
        call.no_answer()
    verdict = _check("WIRE-LATENCY", run)
    assert verdict.outcome == "failed"
    assert "(timeout)" in verdict.message
    assert verdict.seqs == (call.seq,)


def test_latency_a_hanging_empty_body_probe_is_not_its_business() -> None:
    run, _ = _probed(None)
    assert _check("WIRE-LATENCY", run).outcome == "passed"
    assert _check("WIRE-EMPTY-BODY", run).outcome == "failed"
