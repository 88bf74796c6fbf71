"""CREATE-OK on hand-built runs: judged on every creation call of every run."""

from __future__ import annotations

from harness.clauses import get_clause
from harness.clauses.notes import Creation, LifecycleNotes, Step
from harness.clauses.run_names import LIFECYCLE
from tests.clauses.builder import RunBuilder, evidence

SEGMENTS = "/v1/accounts/acc-1/segments"


def _lifecycle_ok() -> RunBuilder:
    """A lifecycle run whose noted creation went well (one new segment)."""
    notes = LifecycleNotes()
    run = RunBuilder(LIFECYCLE, notes=notes)
    with run.call("external_segment_creation", {"feed_id": "f1"}) as call:
        run.partner("POST", SEGMENTS, status=201, body={"id": "seg-1"})
        call.answer(200, {"status": "ok", "data": {"partner_segment_id": "seg-1"}})
    step = Step(ok=True, seqs=(call.seq,), summary="200 ok")
    notes.creation = Creation(step, (), ("seg-1",), "seg-1")
    return run


def test_a_clean_creation_passes() -> None:
    assert get_clause("CREATE-OK").check(evidence(_lifecycle_ok())).outcome == "passed"


def test_a_creation_that_made_a_segment_then_answered_error_fails_in_any_run() -> None:
    preset = RunBuilder("preset:flaky-5xx")
    with preset.call("external_segment_creation", {"feed_id": "f2"}) as call:
        created = preset.partner("POST", SEGMENTS, status=201, body={"id": "seg-2"})
        call.answer(500, {"status": "error", "message": "oops"})
    verdict = get_clause("CREATE-OK").check(evidence(_lifecycle_ok(), preset))
    assert verdict.outcome == "failed"
    assert verdict.run == "preset:flaky-5xx"
    assert "left orphaned" in verdict.message
    assert call.seq in verdict.seqs
    assert created.request_id.startswith("req-")


def test_one_creation_call_that_makes_two_segments_fails() -> None:
    stateful = RunBuilder("stateful")
    with stateful.call("external_segment_creation", {"feed_id": "f3"}) as call:
        stateful.partner("POST", SEGMENTS, status=201, body={"id": "seg-3"})
        stateful.partner("POST", SEGMENTS, status=201, body={"id": "seg-4"})
        call.answer(200, {"status": "ok", "data": {"partner_segment_id": "seg-4"}})
    verdict = get_clause("CREATE-OK").check(evidence(_lifecycle_ok(), stateful))
    assert verdict.outcome == "failed"
    assert "create 2 segments" in verdict.message


def test_a_refused_segment_creation_then_an_error_is_not_an_orphan() -> None:
    """The partner refused the segment (403: the account is out of reach): the premise
    "an account the token reaches" does not hold, an error answer is right."""
    preset = RunBuilder("preset:other")
    with preset.call("external_segment_creation", {"feed_id": "f5"}) as call:
        preset.partner("POST", SEGMENTS, status=403, error_code="ACCOUNT_FORBIDDEN")
        call.answer(500, {"status": "error", "message": "forbidden"})
    assert get_clause("CREATE-OK").check(evidence(_lifecycle_ok(), preset)).outcome == "passed"
