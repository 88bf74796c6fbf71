"""TROUBLESHOOT-AUDIENCE on hand-built lifecycle runs: the answer against the partner's
snapshot taken right after it."""

from __future__ import annotations

from typing import Any

import pytest

from harness.clauses import Verdict, get_clause
from harness.clauses.notes import Answered, LifecycleNotes, TroubleshootNote
from harness.clauses.run_names import LIFECYCLE
from tests.clauses.builder import SEGMENT, RunBuilder, evidence

SNAPSHOT: dict[str, object] = {
    "id": SEGMENT,
    "input_count": 475,
    "matched_count": 289,
    "match_rate": 0.6084,
    "audience_size": 289,
}
UNKNOWN = "FETCH_SOMETHING_ELSE"


def _audience(**changes: object) -> dict[str, Any]:
    audience = {**SNAPSHOT, **changes}
    return {
        "status": "ok",
        "data": {"destination_audience": audience, "match_rate": audience["match_rate"]},
    }


def _troubleshot(
    code: int = 200,
    body: dict[str, Any] | None = None,
    *,
    unknown: tuple[int, dict[str, Any]] | None = (400, {"status": "not_implemented"}),
    snapshot: dict[str, object] | None = SNAPSHOT,
) -> tuple[RunBuilder, int, int | None]:
    """A lifecycle run whose troubleshoot answered so, the unknown action so."""
    notes = LifecycleNotes()
    run = RunBuilder(LIFECYCLE, notes=notes)
    body = body if body is not None else _audience()
    request = {"feed_id": "7001", "action": "FETCH_DESTINATION_AUDIENCE"}
    with run.call("troubleshoot", request) as call:
        run.segment_read()
        call.answer(code, body)
    answer = Answered(call.seq, code, body.get("status"))
    notes.troubleshoot = TroubleshootNote(answer, (answer,), snapshot)
    unknown_seq = None
    if unknown is not None:
        with run.call("troubleshoot", {"feed_id": "7001", "action": UNKNOWN}) as other:
            other.answer(*unknown)
        unknown_seq = other.seq
        notes.troubleshoot_unknown = Answered(other.seq, unknown[0], unknown[1].get("status"))
        notes.unknown_action = UNKNOWN
    return run, call.seq, unknown_seq


def _check(run: RunBuilder) -> Verdict:
    return get_clause("TROUBLESHOOT-AUDIENCE").check(evidence(run))


def test_troubleshoot_showing_the_partner_snapshot_passes() -> None:
    run, _, _ = _troubleshot()
    verdict = _check(run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "troubleshoot shows the partner's snapshot",
    )


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"input_count": 1475}, "input_count=1475 (partner: 475)"),
        ({"matched_count": 290}, "matched_count=290 (partner: 289)"),
        ({"audience_size": 0}, "audience_size=0 (partner: 289)"),
        ({"match_rate": 0.61}, "match_rate=0.61 (partner: 0.6084)"),
        ({"id": "seg-000002"}, "id='seg-000002' (partner: 'seg-000001')"),
        ({"input_count": "475"}, "input_count='475' (partner: 475)"),
    ],
)
def test_troubleshoot_a_count_off_the_snapshot_fails(
    changes: dict[str, object], shown: str
) -> None:
    run, seq, _ = _troubleshot(body=_audience(**changes))
    verdict = _check(run)
    assert verdict.outcome == "failed"
    assert f"troubleshoot differs from the partner's snapshot: {shown}" in verdict.message
    assert (verdict.run, verdict.seqs) == (LIFECYCLE, (seq,))


def test_troubleshoot_the_data_match_rate_is_compared_too() -> None:
    body = _audience()
    body["data"]["match_rate"] = 1.0
    run, seq, _ = _troubleshot(body=body)
    verdict = _check(run)
    assert verdict.outcome == "failed"
    assert "data.match_rate=1.0 (partner: 0.6084)" in verdict.message
    assert verdict.seqs == (seq,)


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (500, {"status": "error", "message": "partner down"}),
        (200, {"status": "error", "message": "x"}),
        (400, _audience()),
    ],
)
def test_troubleshoot_anything_but_200_ok_fails(code: int, body: dict[str, Any]) -> None:
    run, seq, _ = _troubleshot(code, body)
    verdict = _check(run)
    assert verdict.outcome == "failed"
    assert f"FETCH_DESTINATION_AUDIENCE answered {code} {body['status']!r}" in verdict.message
    assert "expected 200 ok" in verdict.message
    assert verdict.seqs == (seq,)


def test_troubleshoot_without_a_destination_audience_fails() -> None:
    run, seq, _ = _troubleshot(body={"status": "ok", "data": {"match_rate": 0.6084}})
    verdict = _check(run)
    assert verdict.outcome == "failed"
    assert "data has no destination_audience object" in verdict.message
    assert verdict.seqs == (seq,)


@pytest.mark.parametrize(
    "unknown",
    [
        (200, {"status": "ok"}),
        (500, {"status": "error", "message": "?"}),
        (404, {"status": "not_implemented"}),
    ],
)
def test_troubleshoot_an_unknown_action_not_answered_400_not_implemented_fails(
    unknown: tuple[int, dict[str, Any]],
) -> None:
    run, _, unknown_seq = _troubleshot(unknown=unknown)
    verdict = _check(run)
    assert verdict.outcome == "failed"
    assert (
        f"the unknown action {UNKNOWN} answered {unknown[0]} {unknown[1]['status']!r}: "
        "expected 400 not_implemented"
    ) in verdict.message
    assert verdict.seqs == (unknown_seq,)


def test_troubleshoot_not_implemented_is_skipped_unless_the_unknown_action_broke() -> None:
    run, _, _ = _troubleshot(400, {"status": "not_implemented"})
    verdict = _check(run)
    assert verdict.outcome == "skipped"
    assert "troubleshoot not implemented" in verdict.message
    broken, _, seq = _troubleshot(
        400, {"status": "not_implemented"}, unknown=(200, {"status": "ok"})
    )
    verdict = _check(broken)
    assert verdict.outcome == "failed"
    assert verdict.seqs == (seq,)


def test_troubleshoot_without_a_snapshot_fails() -> None:
    run, _, _ = _troubleshot(snapshot=None)
    verdict = _check(run)
    assert verdict.outcome == "failed"
    assert "the feed has no partner segment to compare with" in verdict.message


def test_troubleshoot_never_called_fails_saying_why() -> None:
    run = RunBuilder(LIFECYCLE, notes=LifecycleNotes())
    run.record.aborted = "creation failed"
    verdict = _check(run)
    assert verdict.outcome == "failed"
    assert "troubleshoot was not called" in verdict.message
    assert "creation failed" in verdict.message
    assert "was not executed" in _check(RunBuilder("auth")).message


# ------------------------------------------------------------- the counts in the face's names


def _linkedin_troubleshot(audience: dict[str, Any], match_rate: object) -> tuple[RunBuilder, int]:
    """A lifecycle run on the LinkedIn face whose troubleshoot shows ``audience``."""
    notes = LifecycleNotes()
    run = RunBuilder(LIFECYCLE, scenario={"partner": "linkedin"}, notes=notes)
    body = {"status": "ok", "data": {"destination_audience": audience, "match_rate": match_rate}}
    with run.call("troubleshoot", {"feed_id": "7001", "action": "FETCH_DESTINATION_AUDIENCE"}) as c:
        c.answer(200, body)
    answer = Answered(c.seq, 200, "ok")
    notes.troubleshoot = TroubleshootNote(answer, (answer,), SNAPSHOT)
    return run, c.seq


LINKEDIN_AUDIENCE = {"id": 1000001, "inputCount": 475, "matchedCount": 289, "audienceSize": 289}


@pytest.mark.parametrize("match_rate", [None, 0.6084])
def test_troubleshoot_on_linkedin_compares_linkedin_s_counts(match_rate: object) -> None:
    """LinkedIn shows inputCount, matchedCount, audienceSize and no match rate: those counts
    pass, and the rate is either null or the partner's own."""
    run, _ = _linkedin_troubleshot(dict(LINKEDIN_AUDIENCE), match_rate)
    verdict = _check(run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "troubleshoot shows the partner's snapshot",
    )


@pytest.mark.parametrize(
    ("audience", "match_rate", "shown"),
    [
        ({**LINKEDIN_AUDIENCE, "matchedCount": 288}, None, "matchedCount=288 (partner: 289)"),
        (
            {k: v for k, v in SNAPSHOT.items() if k != "id"} | {"id": 1000001},
            None,
            "inputCount=None (partner: 475)",
        ),
        (dict(LINKEDIN_AUDIENCE), 0.6, "data.match_rate=0.6 (partner: 0.6084)"),
        ({**LINKEDIN_AUDIENCE, "id": 1000002}, None, "id=1000002 (partner: 'seg-000001')"),
    ],
)
def test_troubleshoot_on_linkedin_fails_counts_it_does_not_show(
    audience: dict[str, Any], match_rate: object, shown: str
) -> None:
    run, seq = _linkedin_troubleshot(audience, match_rate)
    verdict = _check(run)
    assert verdict.outcome == "failed"
    assert f"troubleshoot differs from the partner's snapshot: {shown}" in verdict.message
    assert verdict.seqs == (seq,)


def test_on_the_generic_face_a_null_match_rate_is_not_the_partner_s() -> None:
    """The generic partner shows a match rate: the answer must carry it."""
    body = _audience()
    body["data"]["match_rate"] = None
    run, _, _ = _troubleshot(body=body)
    verdict = _check(run)
    assert verdict.outcome == "failed"
    assert "data.match_rate=None (partner: 0.6084)" in verdict.message
