"""The creation and connection clauses on hand-built runs: CREATE-OK judged on every
creation call of every run, the others on their notes and on every run's calls."""

from __future__ import annotations

import pytest

from harness.clauses import Verdict, get_clause
from harness.clauses.notes import (
    Answered,
    ConflictNote,
    ConnectionProbe,
    Creation,
    InvalidConfigCase,
    InvalidConfigNotes,
    LifecycleNotes,
    Step,
)
from harness.clauses.run_names import INVALID_CONFIG, LIFECYCLE, NOT_READY
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


# --------------------------------------------------------------------------- CREATE-IDEMPOTENT


def _creation(seq: int, segment_id: str | None, *new: str, ok: bool = True) -> Creation:
    step = Step(ok=ok, status="ok" if ok else "error", seqs=(seq,), summary="200 ok")
    return Creation(step, ("seg-0",), ("seg-0", *new), segment_id)


def _idempotent_notes(
    retry: Creation | None = None, conflict: Creation | None = None
) -> LifecycleNotes:
    """The lifecycle's creation (seg-1), its repetition and the 409 path (existing seg-9)."""
    return LifecycleNotes(
        creation=_creation(1, "seg-1", "seg-1"),
        creation_retry=retry if retry is not None else _creation(2, "seg-1"),
        conflict=ConflictNote("seg-9", conflict if conflict is not None else _creation(3, "seg-9")),
    )


def _idempotent(notes: LifecycleNotes, *runs: RunBuilder) -> Verdict:
    run = RunBuilder(LIFECYCLE, notes=notes)
    return get_clause("CREATE-IDEMPOTENT").check(evidence(run, *runs))


def test_idempotent_reuse_of_the_segment_and_of_the_409_existing_id_passes() -> None:
    verdict = _idempotent(_idempotent_notes())
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "creation repeated and the 409 path reuse the one segment",
    )


@pytest.mark.parametrize(
    ("retry", "shown"),
    [
        (
            _creation(2, "seg-2", "seg-2"),
            "creation repeated created 1 more partner segment(s) (seg-2): expected 0",
        ),
        (_creation(2, "seg-2"), "creation repeated changed partner_segment_id from 'seg-1' to"),
        (_creation(2, "seg-1", ok=False), "creation repeated failed: 200 ok: expected ok"),
    ],
)
def test_idempotent_a_repetition_that_does_not_reuse_fails(retry: Creation, shown: str) -> None:
    verdict = _idempotent(_idempotent_notes(retry=retry))
    assert verdict.outcome == "failed"
    assert shown in verdict.message
    assert (verdict.run, verdict.seqs) == (LIFECYCLE, (2,))


@pytest.mark.parametrize(
    ("conflict", "shown"),
    [
        (
            _creation(3, "seg-9", "seg-3"),
            "the name-conflict creation made 1 new segment(s) (seg-3): expected 0, reusing seg-9",
        ),
        (_creation(3, "seg-3"), "after the 409, partner_segment_id is 'seg-3': expected the"),
        (_creation(3, "seg-9", ok=False), "whose segment name is taken (409, existing seg-9)"),
    ],
)
def test_idempotent_a_409_that_does_not_reuse_the_existing_segment_fails(
    conflict: Creation, shown: str
) -> None:
    verdict = _idempotent(_idempotent_notes(conflict=conflict))
    assert verdict.outcome == "failed"
    assert shown in verdict.message
    assert verdict.seqs == (3,)


def test_idempotent_without_its_steps_fails_saying_why() -> None:
    verdict = _idempotent(LifecycleNotes())
    assert verdict.outcome == "failed"
    assert verdict.message.startswith("3 violations")
    assert "did not reach the step that records creation_retry" in verdict.message
    missing_run = get_clause("CREATE-IDEMPOTENT").check(evidence(RunBuilder("auth")))
    assert "was not executed" in missing_run.message


# --------------------------------------------------------------------------- CREATE-PERSISTS-ID


def _created(
    name: str,
    *,
    property_value: str | None,
    answer: tuple[int, str] = (201, "new"),
    feed_id: str = "7001",
    run: RunBuilder | None = None,
) -> tuple[RunBuilder, int, str]:
    """A creation call answered ok in which the partner created (201) or named (409) a
    segment that exists; the feed's property is ``property_value`` (``"made"``: that
    segment)."""
    run = run if run is not None else RunBuilder(name)
    named = f"segment {len(run.platform.partner.segment_ids())} of {feed_id}"
    segment = run.platform.partner.create_segment("acc-1", named, ready=True)
    value = segment if property_value == "made" else property_value
    run.gateway_feed(feed_id, partner_segment_id=value, partner_account_id="acc-1")
    with run.call("external_segment_creation", {"feed_id": feed_id}) as call:
        if answer[0] == 201:
            run.partner("POST", SEGMENTS, status=201, body={"id": segment})
        else:
            details = [{"segment_id": segment}]
            run.partner(
                "POST",
                SEGMENTS,
                status=409,
                body={"error": {"status": 409, "code": "NAME_TAKEN", "details": details}},
            )
        call.answer(200, {"status": "ok"})
    return run, call.seq, segment


def _persists(*runs: RunBuilder) -> Verdict:
    return get_clause("CREATE-PERSISTS-ID").check(evidence(*runs))


@pytest.mark.parametrize("answer", [(201, "new"), (409, "existing")])
def test_persists_the_segment_made_or_reused_passes(answer: tuple[int, str]) -> None:
    run, _, _ = _created(LIFECYCLE, property_value="made", answer=answer)
    verdict = _persists(run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "1 created feeds name their partner segment",
    )


@pytest.mark.parametrize("name", [LIFECYCLE, "preset:flaky-5xx", "stateful"])
def test_persists_no_property_after_an_ok_creation_fails_in_any_run(name: str) -> None:
    run, seq, segment = _created(name, property_value=None)
    verdict = _persists(run)
    assert verdict.outcome == "failed"
    assert (
        f"feed 7001: creation answered ok but the feed has no partner_segment_id property: "
        f"expected it written back through the gateway (segment {segment})"
    ) in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (seq,))


@pytest.mark.parametrize("answer", [(201, "new"), (409, "existing")])
def test_persists_a_property_naming_another_segment_fails(answer: tuple[int, str]) -> None:
    run = RunBuilder(LIFECYCLE)
    other = run.platform.partner.create_segment("acc-1", "another", ready=True)
    run, seq, segment = _created(LIFECYCLE, property_value=other, answer=answer, run=run)
    verdict = _persists(run)
    assert verdict.outcome == "failed"
    assert (
        f"partner_segment_id is {other!r}: expected the segment creation made or reused ({segment})"
    ) in verdict.message
    assert verdict.seqs == (seq,)


def test_persists_a_property_naming_a_segment_the_partner_lacks_fails() -> None:
    run = RunBuilder("preset:not-ready-for-3-polls")
    run.gateway_feed("7001", partner_segment_id="seg-777", partner_account_id="acc-1")
    with run.call("external_segment_creation", {"feed_id": "7001"}) as call:
        call.answer(200, {"status": "ok"})
    verdict = _persists(run)
    assert verdict.outcome == "failed"
    assert "partner_segment_id is 'seg-777', which the partner does not have" in verdict.message
    assert verdict.seqs == (call.seq,)


def test_persists_judges_each_feed_last_creation() -> None:
    """The property reflects a feed's last creation: a repeated one that made another
    segment must leave the property naming that one."""
    run, _, first = _created(LIFECYCLE, property_value="made")
    run, seq, second = _created(LIFECYCLE, property_value=None, run=run)
    run.gateway_feed("7001", partner_segment_id=first, partner_account_id="acc-1")
    verdict = _persists(run)
    assert verdict.outcome == "failed"
    assert f"expected the segment creation made or reused ({second})" in verdict.message
    assert verdict.seqs == (seq,)


def test_persists_a_creation_not_ok_is_not_judged_and_none_is_skipped() -> None:
    run = RunBuilder(LIFECYCLE)
    run.gateway_feed("7001")
    with run.call("external_segment_creation", {"feed_id": "7001"}) as call:
        call.answer(500, {"status": "error", "message": "no account"})
    verdict = _persists(run)
    assert verdict.outcome == "skipped"
    assert verdict.message == "not exercised: no creation answered ok"


# --------------------------------------------------------------------------- CREATE-INVALID-CONFIG

CASES = (
    ("missing-account", ("partner_account_id", "account")),
    ("no-identifiers", ("identif",)),
    ("unreadable-config", ("configuration", "config")),
)


def _invalid(
    *answers: tuple[str, str, tuple[str, ...]], name: str = INVALID_CONFIG
) -> tuple[RunBuilder, list[int]]:
    """The invalid-config run: each case's creation answered (status, message), with the
    new segments it left."""
    notes = InvalidConfigNotes()
    run = RunBuilder(name, notes=notes)
    seqs = []
    for (case, expect), (status, message, new) in zip(CASES, answers, strict=False):
        with run.call("external_segment_creation", {"feed_id": case}) as call:
            code = 500 if status == "error" else 200
            call.answer(code, {"status": status, "message": message})
        step = Step(
            ok=status == "ok", status=status, http_status=code, message=message, seqs=(call.seq,)
        )
        creation = Creation(step, ("seg-0",), ("seg-0", *new))
        notes.cases.append(InvalidConfigCase(case, case, expect, creation))
        seqs.append(call.seq)
    return run, seqs


REFUSED = (
    ("error", "partner_account_id is missing", ()),
    ("error", "no identifying resource selected", ()),
    ("error", "the configuration file cannot be read", ()),
)


def _invalid_config(run: RunBuilder) -> Verdict:
    return get_clause("CREATE-INVALID-CONFIG").check(evidence(run))


def test_invalid_config_refused_with_a_message_naming_the_problem_passes() -> None:
    run, _ = _invalid(*REFUSED)
    verdict = _invalid_config(run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "3 invalid configurations refused, nothing created",
    )


@pytest.mark.parametrize("case", [0, 1, 2])
def test_invalid_config_any_case_answered_ok_fails(case: int) -> None:
    answers = list(REFUSED)
    answers[case] = ("ok", "", ())
    run, seqs = _invalid(*answers)
    verdict = _invalid_config(run)
    assert verdict.outcome == "failed"
    assert f"{CASES[case][0]}: creation answered 200 'ok': expected status 'error'" in (
        verdict.message
    )
    assert (verdict.run, verdict.seqs) == (INVALID_CONFIG, (seqs[case],))


def test_invalid_config_a_message_that_does_not_name_the_problem_fails() -> None:
    run, seqs = _invalid(REFUSED[0], ("error", "something went wrong", ()), REFUSED[2])
    verdict = _invalid_config(run)
    assert verdict.outcome == "failed"
    assert "no-identifiers: the error message 'something went wrong' does not name the problem" in (
        verdict.message
    )
    assert verdict.seqs == (seqs[1],)


def test_invalid_config_a_segment_created_fails_even_with_an_error() -> None:
    run, seqs = _invalid(REFUSED[0], REFUSED[1], ("error", "configuration unreadable", ("seg-5",)))
    verdict = _invalid_config(run)
    assert verdict.outcome == "failed"
    assert "unreadable-config: 1 partner segment(s) created (seg-5): expected 0" in (
        verdict.message
    )
    assert verdict.seqs == (seqs[2],)


def test_invalid_config_every_case_must_run() -> None:
    run, _ = _invalid(*REFUSED[:2])
    run.record.aborted = "the connector stopped answering"
    verdict = _invalid_config(run)
    assert verdict.outcome == "failed"
    assert "only 2 of 3 cases ran (the connector stopped answering)" in verdict.message
    assert "was not executed" in _invalid_config(RunBuilder(LIFECYCLE)).message


# --------------------------------------------------------------------------- CONNECT-NOT-READY

SEGMENT_PATH = "/v1/segments/seg-000001"


def _probe_notes(
    answer: Answered, before: str = "PROVISIONING", after: str = "PROVISIONING"
) -> LifecycleNotes:
    return LifecycleNotes(
        connection_probe=ConnectionProbe(answer, "seg-000001", before, after),
        connection=Step(ok=True, seqs=(answer.seq or 0,)),
    )


def _probed(code: int, status: str, **statuses: str) -> tuple[RunBuilder, int]:
    """A lifecycle run whose connection probe (the segment provisioning) answered so."""
    run = RunBuilder(LIFECYCLE)
    with run.call("external_segment_connection", {"feed_id": "7001"}) as call:
        call.answer(code, {"status": status})
    run.record.notes = _probe_notes(Answered(call.seq, code, status), **statuses)
    return run, call.seq


def _polled(name: str, partner: int, code: int, status: str) -> tuple[RunBuilder, int, int]:
    """A connection call whose segment read got ``partner`` (404: SEGMENT_NOT_READY)."""
    run = RunBuilder(name)
    with run.call("external_segment_connection", {"feed_id": "7001"}) as call:
        run.segment_read(status=partner, error_code="SEGMENT_NOT_READY" if partner == 404 else None)
        call.answer(code, {"status": status})
    (read,) = run.platform.trace.exchanges("connector->partner")
    return run, call.seq, read.seq


def _connect(clause_id: str, *runs: RunBuilder) -> Verdict:
    return get_clause(clause_id).check(evidence(*runs))


def test_not_ready_answered_502_while_provisioning_passes() -> None:
    lifecycle, _ = _probed(502, "external_segment_not_ready_yet")
    preset, _, _ = _polled(NOT_READY, 404, 502, "external_segment_not_ready_yet")
    verdict = _connect("CONNECT-NOT-READY", lifecycle, preset)
    assert (verdict.outcome, verdict.message) == ("passed", "2 not-ready connections answered 502")


@pytest.mark.parametrize(
    ("code", "status"),
    [(200, "ok"), (500, "error"), (200, "external_segment_not_ready_yet"), (502, "error")],
)
def test_not_ready_the_provisioning_probe_never_ok_never_error(code: int, status: str) -> None:
    run, seq = _probed(code, status)
    verdict = _connect("CONNECT-NOT-READY", run)
    assert verdict.outcome == "failed"
    assert (
        f"connection while partner segment seg-000001 was PROVISIONING answered {code} "
        f"{status!r}: expected 502 external_segment_not_ready_yet"
    ) in verdict.message
    assert (verdict.run, verdict.seqs) == (LIFECYCLE, (seq,))


@pytest.mark.parametrize(("code", "status"), [(200, "ok"), (500, "error")])
@pytest.mark.parametrize("name", [NOT_READY, "preset:flaky-5xx", "stateful"])
def test_not_ready_a_404_segment_not_ready_answered_otherwise_fails_in_any_run(
    name: str, code: int, status: str
) -> None:
    lifecycle, _ = _probed(502, "external_segment_not_ready_yet")
    run, seq, read = _polled(name, 404, code, status)
    verdict = _connect("CONNECT-NOT-READY", lifecycle, run)
    assert verdict.outcome == "failed"
    assert (
        f"the partner answered 404 SEGMENT_NOT_READY but connection answered {code} "
        f"{status!r}: expected 502 external_segment_not_ready_yet"
    ) in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (seq, read))


def test_not_ready_a_segment_ready_at_the_probe_is_not_the_premise() -> None:
    run, _ = _probed(200, "ok", before="READY", after="READY")
    verdict = _connect("CONNECT-NOT-READY", run)
    assert verdict.outcome == "skipped"
    assert "no connection call met a provisioning partner segment" in verdict.message


def test_not_ready_without_a_probe_fails_saying_why() -> None:
    verdict = _connect("CONNECT-NOT-READY", RunBuilder(LIFECYCLE, notes=LifecycleNotes()))
    assert verdict.outcome == "failed"
    assert "no connection was tried" in verdict.message
    assert "connection_probe" in verdict.message


# --------------------------------------------------------------------------- CONNECT-READY


def test_ready_ok_once_the_segment_answers_passes() -> None:
    lifecycle, _ = _probed(502, "external_segment_not_ready_yet")
    preset, _, _ = _polled(NOT_READY, 200, 200, "ok")
    verdict = _connect("CONNECT-READY", lifecycle, preset)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "connection ok once ready (1 ready checks)",
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [(502, "external_segment_not_ready_yet"), (500, "error"), (200, "error")],
)
@pytest.mark.parametrize("name", [LIFECYCLE, NOT_READY, "stateful"])
def test_ready_a_ready_segment_answered_other_than_ok_fails_in_any_run(
    name: str, code: int, status: str
) -> None:
    lifecycle, _ = _probed(502, "external_segment_not_ready_yet")
    run = lifecycle if name == LIFECYCLE else RunBuilder(name)
    with run.call("external_segment_connection", {"feed_id": "7001"}) as call:
        read = run.segment_read()
        call.answer(code, {"status": status})
    verdict = _connect("CONNECT-READY", *((lifecycle,) if run is lifecycle else (lifecycle, run)))
    assert verdict.outcome == "failed"
    assert (
        f"the partner segment answered 200 (ready) but connection answered {code} {status!r}: "
        "expected 200 ok"
    ) in verdict.message
    segment_read = run.record.trace.exchanges("connector->partner")[-1]
    assert (verdict.run, verdict.seqs) == (name, (call.seq, segment_read.seq))
    assert read.status == 200


def test_ready_a_lifecycle_connection_never_ok_fails() -> None:
    run, seq = _probed(502, "external_segment_not_ready_yet")
    assert isinstance(run.record.notes, LifecycleNotes)
    run.record.notes.connection = Step(
        ok=False, seqs=(seq, seq + 1, seq + 2, seq + 3), summary="timed out after 30 polls"
    )
    verdict = _connect("CONNECT-READY", run)
    assert verdict.outcome == "failed"
    assert "connection never answered ok: timed out after 30 polls" in verdict.message
    assert verdict.seqs == (seq + 1, seq + 2, seq + 3), "the last three polls"


def test_ready_without_a_polled_connection_fails_saying_why() -> None:
    verdict = _connect("CONNECT-READY", RunBuilder(LIFECYCLE, notes=LifecycleNotes()))
    assert verdict.outcome == "failed"
    assert "no connection was polled" in verdict.message


@pytest.mark.parametrize("name", ["preset:flaky-5xx", "stateful"])
def test_idempotent_a_repeated_creation_in_any_run_that_makes_a_second_segment_fails(
    name: str,
) -> None:
    """ "Creation repeated for the same feed (the platform retries) leaves exactly one
    partner segment": a run that retried creation (flaky-5xx retries it up to 3 times, the
    stateful run re-creates), each call making a segment of its own, broke it, though
    each call alone made one segment and answered ok."""
    run = RunBuilder(name)
    made = []
    for segment in ("seg-1", "seg-2"):
        with run.call("external_segment_creation", {"feed_id": "7001"}) as call:
            run.partner("POST", SEGMENTS, status=201, body={"id": segment})
            call.answer(200, {"status": "ok", "data": {"partner_segment_id": segment}})
        made.append(call.seq)
    verdict = _idempotent(_idempotent_notes(), run)
    assert verdict.outcome == "failed"
    assert (
        f"[{name}] creation repeated for feed 7001 (2 calls) made 2 partner segments "
        "(seg-1, seg-2): expected exactly one, reused"
    ) in verdict.message
    assert verdict.run == name
    assert made[1] in verdict.seqs


def test_idempotent_a_repeated_creation_that_reuses_passes_in_any_run() -> None:
    run = RunBuilder("preset:flaky-5xx")
    with run.call("external_segment_creation", {"feed_id": "7001"}) as first:
        run.partner("POST", SEGMENTS, status=503)
        first.answer(500, {"status": "error", "message": "partner 503"})
    with run.call("external_segment_creation", {"feed_id": "7001"}) as second:
        run.partner("POST", SEGMENTS, status=201, body={"id": "seg-1"})
        second.answer(200, {"status": "ok"})
    with run.call("external_segment_creation", {"feed_id": "7001"}) as third:
        details = [{"segment_id": "seg-1"}]
        run.partner("POST", SEGMENTS, status=409, body={"error": {"details": details}})
        third.answer(200, {"status": "ok"})
    with run.call("external_segment_creation", {"feed_id": "7002"}) as other:
        run.partner("POST", SEGMENTS, status=201, body={"id": "seg-2"})
        other.answer(200, {"status": "ok"})
    assert _idempotent(_idempotent_notes(), run).outcome == "passed"


def test_idempotent_one_call_making_two_segments_is_create_ok_business() -> None:
    run = RunBuilder("stateful")
    with run.call("external_segment_creation", {"feed_id": "7001"}) as call:
        run.partner("POST", SEGMENTS, status=201, body={"id": "seg-1"})
        run.partner("POST", SEGMENTS, status=201, body={"id": "seg-2"})
        call.answer(200, {"status": "ok"})
    with run.call("external_segment_creation", {"feed_id": "7001"}) as again:
        again.answer(200, {"status": "ok"})
    assert _idempotent(_idempotent_notes(), run).outcome == "passed"
    assert get_clause("CREATE-OK").check(evidence(run)).outcome == "failed"
