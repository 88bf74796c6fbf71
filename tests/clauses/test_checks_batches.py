"""The batch and accounting clauses on hand-built runs: real feeds behind a scripted
connector, their batches, attempts and uploads joined as a run joins them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fake_partner import Scenario
from fake_partner.scenario import Limits
from harness.clauses import Verdict, get_clause
from harness.clauses.notes import EmptyBatch, LifecycleNotes
from harness.clauses.run_names import LIFECYCLE, OVERSIZED
from tests.clauses.builder import HONEST, Reply, RunBuilder, delivered, evidence, user


def _check(clause_id: str, *runs: RunBuilder) -> Verdict:
    return get_clause(clause_id).check(evidence(*runs))


def _counts(status: str, success: object, error: object) -> dict[str, Any]:
    return {"status": status, "sent_items_in_success": success, "sent_items_in_error": error}


def _batch(name: str, size: int, code: int, body: dict[str, Any]) -> tuple[RunBuilder, int]:
    """One ``batch_update`` of ``size`` items answered so (nothing uploaded)."""
    run = RunBuilder(name)
    with run.call("batch_update", {"batch_content": [f"item-{i}" for i in range(size)]}) as call:
        call.answer(code, body)
    return run, call.seq


def _honest_feed(name: str = LIFECYCLE, users: int = 3, **settings: Any) -> RunBuilder:
    run = RunBuilder(name)
    feed = run.feed(**settings)
    feed.upsert([user() for _ in range(users)])
    feed.flush()
    return run


# --------------------------------------------------------------------------- BATCH-ACCOUNTING


def test_accounting_counts_that_add_up_pass() -> None:
    run, _ = _batch(LIFECYCLE, 3, 200, _counts("OK", 2, 1))
    more, _ = _batch("preset:mixed-invalid-items", 2, 400, _counts("ERROR", 0, 2))
    verdict = _check("BATCH-ACCOUNTING", run, more)
    assert (verdict.outcome, verdict.message) == ("passed", "2 final batch answers add up")


@pytest.mark.parametrize(
    ("code", "body", "shown"),
    [
        (200, _counts("OK", 3, 1), "OK answer: 3 success + 1 error = 4 for a batch of 3"),
        (200, _counts("OK", 1, 1), "OK answer: 1 success + 1 error = 2 for a batch of 3"),
        (400, _counts("ERROR", 0, 0), "ERROR answer: 0 success + 0 error = 0 for a batch of 3"),
        (200, _counts("OK", 4, -1), "OK answer: 4 success + -1 error = 3 for a batch of 3"),
        (400, _counts("ERROR", -1, 4), "ERROR answer: -1 success + 4 error = 3"),
    ],
)
@pytest.mark.parametrize("name", [LIFECYCLE, "preset:flaky-5xx", "stateful"])
def test_accounting_counts_off_the_batch_size_or_negative_fail_in_any_run(
    name: str, code: int, body: dict[str, Any], shown: str
) -> None:
    run, seq = _batch(name, 3, code, body)
    verdict = _check("BATCH-ACCOUNTING", RunBuilder(LIFECYCLE), run)
    assert verdict.outcome == "failed"
    assert shown in verdict.message
    assert "both >= 0" in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (seq,))


@pytest.mark.parametrize(
    ("success", "error"), [(None, 3), ("3", 0), (3.0, 0), (True, False), (2, None)]
)
def test_accounting_a_final_answer_without_integer_counts_fails(
    success: object, error: object
) -> None:
    run, seq = _batch("preset:ambiguous-drop", 1, 200, _counts("OK", success, error))
    verdict = _check("BATCH-ACCOUNTING", run)
    assert verdict.outcome == "failed"
    assert "OK answer without integer counts" in verdict.message
    assert verdict.seqs == (seq,)


@pytest.mark.parametrize("status", ["RETRY", "error"])
def test_accounting_a_retry_answer_counts_are_not_counted(status: str) -> None:
    """Only OK and ERROR are final: a RETRY's (or the SDK's error's) counts are not judged."""
    run, _ = _batch(LIFECYCLE, 3, 503, _counts(status, 7, 7))
    verdict = _check("BATCH-ACCOUNTING", run)
    assert (verdict.outcome, verdict.message) == (
        "skipped",
        "not exercised: no batch_update got a final (OK or ERROR) answer to a batch_content list",
    ), "nothing final to judge: a skip, never a pass"
    run.record.aborted = "the connector stopped answering"
    assert "(run lifecycle stopped early (the connector stopped answering))" in (
        _check("BATCH-ACCOUNTING", run).message
    )


def test_accounting_every_final_answer_of_a_feed_is_judged() -> None:
    run = RunBuilder("preset:rate-limit-burst")
    feed = run.feed()
    feed.upsert([user(), user()])
    run.reply((503, _counts("RETRY", 9, 9)), (200, _counts("OK", 2, 1)))
    (batch,) = feed.flush()
    verdict = _check("BATCH-ACCOUNTING", run)
    assert verdict.outcome == "failed"
    assert verdict.message.startswith("1 violation: [preset:rate-limit-burst] OK answer: 2")
    assert verdict.seqs == (batch.attempts[-1].exchange_seq,)


# --------------------------------------------------------------------------- BATCH-HONEST


def _uploading(accepted: int, rejected: int, answer: dict[str, Any], code: int = 200) -> Any:
    """A batch responder: one upload (``accepted``/``rejected`` by the partner), then
    ``answer`` with HTTP ``code``."""

    def respond(request: Any) -> Reply:
        run = respond.run  # type: ignore[attr-defined]
        run.upload(accepted=accepted, rejected=rejected)
        return code, answer

    return respond


def _feed_replying(name: str, users: int, *replies: Any) -> tuple[RunBuilder, Any]:
    run = RunBuilder(name)
    feed = run.feed()
    feed.upsert([user() for _ in range(users)])
    for reply in replies:
        if callable(reply):
            reply.run = run
    run.reply(*replies)
    feed.flush()
    return run, feed


def test_honest_success_equal_to_what_the_partner_accepted_passes() -> None:
    run, _ = _feed_replying("preset:mixed-invalid-items", 3, _uploading(2, 1, _counts("OK", 2, 1)))
    assert _check("BATCH-HONEST", run).outcome == "passed"
    verdict = _check("BATCH-HONEST", _honest_feed())
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "1 final batch answers match the partner's ledger",
    )


@pytest.mark.parametrize(
    ("accepted", "rejected", "answer", "shown"),
    [
        (1, 2, _counts("OK", 3, 0), "OK reported 3 success but the partner accepted 1"),
        (3, 0, _counts("OK", 2, 1), "OK reported 2 success but the partner accepted 3"),
        (0, 0, _counts("OK", 3, 0), "OK reported 3 success but the partner accepted 0"),
    ],
)
@pytest.mark.parametrize("name", [LIFECYCLE, "preset:ambiguous-503", "stateful"])
def test_honest_invented_success_or_silent_loss_fails_in_any_run(
    name: str, accepted: int, rejected: int, answer: dict[str, Any], shown: str
) -> None:
    run, feed = _feed_replying(name, 3, _uploading(accepted, rejected, answer))
    verdict = _check("BATCH-HONEST", run)
    assert verdict.outcome == "failed"
    assert f"feed main batch {feed.batches[0].batch_id}: {shown}" in verdict.message
    assert verdict.run == name
    assert verdict.seqs[0] == feed.batches[0].attempts[-1].exchange_seq


def test_honest_more_errors_than_items_not_accepted_fails() -> None:
    run, feed = _feed_replying(LIFECYCLE, 3, _uploading(2, 1, _counts("OK", 2, 2)))
    verdict = _check("BATCH-HONEST", run)
    assert verdict.outcome == "failed"
    assert "2 reported as error but only 1 of 3 items were not accepted" in verdict.message
    assert verdict.seqs == (feed.batches[0].attempts[-1].exchange_seq,)


def test_honest_only_the_final_attempt_is_judged() -> None:
    """A RETRY's counts say nothing; the final OK's are compared with the uploads nested
    in its own call."""
    retry = (503, _counts("RETRY", 3, 0))
    run, _ = _feed_replying(LIFECYCLE, 3, retry, _uploading(3, 0, _counts("OK", 3, 0)))
    assert _check("BATCH-HONEST", run).outcome == "passed"


# --------------------------------------------------------------------------- BATCH-EMPTY


def _lifecycle_with_empty(code: int, body: dict[str, Any]) -> tuple[RunBuilder, int]:
    notes = LifecycleNotes()
    run = RunBuilder(LIFECYCLE, notes=notes)
    with run.call("batch_update", {"batch_content": []}) as call:
        call.answer(code, body)
    notes.empty_batch = EmptyBatch("7001-batch-9", (call.seq,))
    return run, call.seq


def test_empty_batch_ok_0_0_passes() -> None:
    run, _ = _lifecycle_with_empty(200, _counts("OK", 0, 0))
    verdict = _check("BATCH-EMPTY", run)
    assert (verdict.outcome, verdict.message) == ("passed", "1 empty batches answered OK 0 0")


@pytest.mark.parametrize(
    ("code", "body", "shown"),
    [
        (400, _counts("ERROR", 0, 0), "answered 400 'ERROR' success=0 error=0"),
        (200, _counts("OK", 0, 1), "answered 200 'OK' success=0 error=1"),
        (200, {"status": "OK"}, "answered 200 'OK' success=None error=None"),
        (503, _counts("RETRY", 0, 0), "answered 503 'RETRY'"),
        (
            500,
            {"status": "OK", "sent_items_in_success": 0, "sent_items_in_error": 0},
            "answered 500 'OK'",
        ),
    ],
)
def test_empty_batch_anything_but_200_ok_0_0_fails(
    code: int, body: dict[str, Any], shown: str
) -> None:
    run, seq = _lifecycle_with_empty(code, body)
    verdict = _check("BATCH-EMPTY", run)
    assert verdict.outcome == "failed"
    assert f"an empty batch {shown}" in verdict.message
    assert "expected 200 OK 0 0" in verdict.message
    assert (verdict.run, verdict.seqs) == (LIFECYCLE, (seq,))


def test_empty_batch_judged_in_any_run() -> None:
    lifecycle, _ = _lifecycle_with_empty(200, _counts("OK", 0, 0))
    stateful = RunBuilder("stateful")
    with stateful.call("batch_update", {"batch_content": []}) as call:
        call.answer(400, _counts("ERROR", 0, 0))
    verdict = _check("BATCH-EMPTY", lifecycle, stateful)
    assert verdict.outcome == "failed"
    assert (verdict.run, verdict.seqs) == ("stateful", (call.seq,))


def test_empty_batch_never_sent_fails_saying_why() -> None:
    run = RunBuilder(LIFECYCLE, notes=LifecycleNotes())
    run.record.aborted = "connection never answered ok"
    verdict = _check("BATCH-EMPTY", run)
    assert verdict.outcome == "failed"
    assert "no empty batch was answered" in verdict.message
    assert "connection never answered ok" in verdict.message
    assert "was not executed" in _check("BATCH-EMPTY", RunBuilder("auth")).message


# --------------------------------------------------------------------------- BATCH-LIMIT

SMALL = Scenario(limits=Limits(max_operations=5, max_body_bytes=4000))


def _splitting(chunk: int, *, keep: int | None = None) -> Any:
    """A batch responder uploading the items in chunks of ``chunk`` (the first ``keep``
    items only, when given) and counting every item as success."""

    def respond(request: Any) -> Reply:
        run = respond.run  # type: ignore[attr-defined]
        content = request["batch_content"]
        sent = content[:keep] if keep is not None else content
        for start in range(0, len(sent), chunk):
            run.upload_items(sent[start : start + chunk])
        return 200, _counts("OK", len(content), 0)

    return respond


def _oversized(reply: Any, users: int = 7, name: str = OVERSIZED) -> tuple[RunBuilder, Any]:
    run = RunBuilder(name, scenario=SMALL)
    feed = run.feed()
    feed.upsert([user() for _ in range(users)])
    if callable(reply):
        reply.run = run
    run.reply(reply)
    feed.flush()
    return run, feed


def test_limit_a_batch_split_within_the_limits_passes() -> None:
    run, _ = _oversized(_splitting(5))
    verdict = _check("BATCH-LIMIT", run)
    assert (verdict.outcome, verdict.message) == ("passed", "2 uploads within the partner's limits")


@pytest.mark.parametrize("name", [OVERSIZED, "preset:flaky-5xx", "stateful"])
def test_limit_an_upload_over_the_operation_limit_fails_in_any_run(name: str) -> None:
    run, _ = _oversized(_splitting(7), name=name)
    verdict = _check("BATCH-LIMIT", run)
    assert verdict.outcome == "failed"
    assert "an upload carried 7 operations in" in verdict.message
    assert "the partner takes at most 5 operations and 4000 bytes" in verdict.message
    (upload,) = run.record.trace.exchanges("connector->partner")
    assert (verdict.run, verdict.seqs) == (name, (upload.seq,))


def test_limit_an_upload_over_the_byte_limit_fails() -> None:
    run = RunBuilder("preset:dropped-connection", scenario=SMALL)
    with run.call("batch_update", {"batch_content": ["a"]}) as call:
        entry = run.upload_items([{"operation": "UPSERT", "identifiers": [["MAID", "x" * 5000]]}])
        call.answer(200, _counts("OK", 1, 0))
    verdict = _check("BATCH-LIMIT", run)
    assert verdict.outcome == "failed"
    assert "an upload carried 1 operations in 5" in verdict.message
    assert verdict.seqs == (run.platform.trace.exchanges("connector->partner")[0].seq,)
    assert entry.request_id


@pytest.mark.parametrize("code", ["TOO_MANY_OPERATIONS", "PAYLOAD_TOO_LARGE"])
def test_limit_a_refused_upload_fails(code: str) -> None:
    run = RunBuilder(LIFECYCLE)
    with run.call("batch_update", {"batch_content": ["a"]}) as call:
        run.upload(accepted=1, status=413 if code == "PAYLOAD_TOO_LARGE" else 400, error_code=code)
        call.answer(400, _counts("ERROR", 0, 1))
    verdict = _check("BATCH-LIMIT", run)
    assert verdict.outcome == "failed"
    assert (
        f"the partner refused an upload: {413 if code == 'PAYLOAD_TOO_LARGE' else 400} {code}"
        in (verdict.message)
    )


def test_limit_an_oversized_batch_cut_short_fails() -> None:
    """ "a larger batch is split": every item must reach the partner, not the first chunk."""
    run, feed = _oversized(_splitting(5, keep=5))
    verdict = _check("BATCH-LIMIT", run)
    assert verdict.outcome == "failed"
    assert "the batch of 7 items was answered OK after uploading 5 operations in 1 request(s)" in (
        verdict.message
    )
    assert verdict.seqs == (feed.batches[0].attempts[-1].exchange_seq,)


def test_limit_an_oversized_batch_without_a_final_answer_fails() -> None:
    run = RunBuilder(OVERSIZED, scenario=SMALL)
    feed = run.feed(max_batch_attempts=2)
    feed.upsert([user() for _ in range(7)])
    run.reply((503, _counts("RETRY", 0, 0)), (503, _counts("RETRY", 0, 0)))
    feed.flush()
    verdict = _check("BATCH-LIMIT", run)
    assert verdict.outcome == "failed"
    assert "the batch of 7 items got no final answer (outcome DEAD_LETTER, last 503 RETRY)" in (
        verdict.message
    )


def test_limit_an_oversized_run_whose_batch_needs_no_split_is_no_fault() -> None:
    """The connector's items for the run fit one request (Meta's rows are one hash each):
    nothing to split, so nothing to fail; its uploads are still judged against the limits.
    (That the default runs do reach both edges for the generic reference is what the
    IgnoresByteLimit and NoSplitting proofs show.)"""
    run, _ = _oversized(_splitting(5), users=3)
    verdict = _check("BATCH-LIMIT", run)
    assert verdict.outcome == "passed", verdict.message
    assert "uploads within the partner's limits" in verdict.message


def test_limit_without_any_upload_is_not_exercised() -> None:
    run, _ = _batch(LIFECYCLE, 2, 200, _counts("OK", 2, 0))
    verdict = _check("BATCH-LIMIT", run)
    assert verdict.outcome == "skipped"
    assert verdict.message.startswith("not exercised")


# --------------------------------------------------------------------------- CONVERGENCE


def test_convergence_membership_equal_to_the_model_passes() -> None:
    run = RunBuilder(LIFECYCLE)
    feed = run.feed()
    first, second = user(maids=1), user()
    feed.upsert([first, second])
    feed.flush()
    feed.delete([first])
    feed.flush()
    assert feed.partner_membership() == feed.settled_membership()
    verdict = _check("CONVERGENCE", run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "1 feeds converged (or accounted every difference)",
    )


def _item_per_identifier(request: Any) -> Reply:
    """An update answer delivering each identifier as its own batch item."""
    items = [
        {
            "type": "BATCH_DELIVERY",
            "content": {"operation": request["operation"], "identifiers": [found]},
            "grouping_key": "main",
        }
        for found in delivered(request)
    ]
    return 200, {"status": "ok", "data": items, "stats": []}


def test_convergence_leaves_an_update_still_partly_queued_alone() -> None:
    """An update whose items were sent in part (a full batch went, the rest is queued: a
    stateful example mid-life, a teardown flush that failed) is not delivered yet: its
    identifiers on the partner are neither unexpected nor missing; the others still are."""
    run = RunBuilder("stateful")
    feed = run.feed(batch_flush_max_size=2)
    settled = user()
    feed.upsert([settled])
    feed.flush()
    run.reply(_item_per_identifier)
    feed.upsert([user(maids=2)])  # 3 items: a full batch of 2 goes, 1 stays queued
    assert (feed.pending, len(feed.batches)) == (1, 2)
    assert feed.partner_membership() != feed.settled_membership()
    verdict = _check("CONVERGENCE", run)
    assert verdict.outcome == "passed", verdict.message
    kind, value = next(iter(settled.eligible_partner_identifiers()))
    run.upload_items([{"operation": "DELETE", "identifiers": [[kind, value]]}])  # lost
    verdict = _check("CONVERGENCE", run)
    assert verdict.outcome == "failed"
    assert "(1 missing, 0 unexpected)" in verdict.message


def _removes_as_adds(request: Any) -> Reply:
    run = _removes_as_adds.run  # type: ignore[attr-defined]
    items = [json.loads(c) if isinstance(c, str) else c for c in request["batch_content"]]
    run.upload_items([{**item, "operation": "UPSERT"} for item in items])
    return 200, _counts("OK", len(items), 0)


@pytest.mark.parametrize("name", [LIFECYCLE, "preset:flaky-5xx", "stateful"])
def test_convergence_an_unexpected_member_fails_in_any_run(name: str) -> None:
    run = RunBuilder(name)
    feed = run.feed()
    leaving = user()
    feed.upsert([leaving])
    feed.flush()
    _removes_as_adds.run = run  # type: ignore[attr-defined]
    run.reply(HONEST, _removes_as_adds)
    feed.delete([leaving])
    feed.flush()
    verdict = _check("CONVERGENCE", run)
    assert verdict.outcome == "failed"
    assert "the partner segment has 1 members, the model 0 (0 missing, 1 unexpected)" in (
        verdict.message
    )
    assert "last sent by update #1 DELETE" in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (feed.updates[1].exchanges[-1],))


def test_convergence_a_missing_member_that_nothing_accounts_fails() -> None:
    run, _ = _feed_replying(LIFECYCLE, 2, (200, _counts("OK", 2, 0)))
    verdict = _check("CONVERGENCE", run)
    assert verdict.outcome == "failed"
    assert "(2 missing, 0 unexpected)" in verdict.message
    assert "2 of them not accounted as error or dead-lettered" in verdict.message


def test_convergence_with_only_transient_faults_an_error_count_excuses_nothing() -> None:
    """ "with retries and only transient faults": the partner refused nothing for good, so
    a connector counting an item as error instead of delivering it broke membership."""
    run, _ = _feed_replying("preset:flaky-5xx", 2, _uploading(0, 0, _counts("OK", 0, 2)))
    verdict = _check("CONVERGENCE", run)
    assert verdict.outcome == "failed"
    assert "the partner's faults were all transient" in verdict.message


def test_convergence_a_dead_lettered_batch_accounts_its_members() -> None:
    run = RunBuilder("preset:flaky-5xx")
    feed = run.feed(max_batch_attempts=2)
    feed.upsert([user(), user()])
    run.reply((503, _counts("RETRY", 0, 0)), (503, _counts("RETRY", 0, 0)))
    (batch,) = feed.flush()
    assert batch.outcome == "DEAD_LETTER"
    assert _check("CONVERGENCE", run).outcome == "passed"


def test_convergence_with_permanent_faults_the_rejected_items_counted_as_error_pass() -> None:
    def reject_first(request: Any) -> Reply:
        run.upload_items(request["batch_content"], reject=[0])
        return 200, _counts("OK", 1, 1)

    run = RunBuilder("preset:mixed-invalid-items")
    feed = run.feed()
    feed.upsert([user(), user()])
    run.reply(reject_first)
    feed.flush()
    assert feed.partner_membership() != feed.settled_membership()
    assert _check("CONVERGENCE", run).outcome == "passed"


def test_convergence_with_permanent_faults_a_missing_member_counted_as_success_fails() -> None:
    def reject_first_count_all(request: Any) -> Reply:
        run.upload_items(request["batch_content"], reject=[0])
        return 200, _counts("OK", 2, 0)

    run = RunBuilder("preset:mixed-invalid-items")
    feed = run.feed()
    feed.upsert([user(), user()])
    run.reply(reject_first_count_all)
    feed.flush()
    verdict = _check("CONVERGENCE", run)
    assert verdict.outcome == "failed"
    assert "(1 missing, 0 unexpected)" in verdict.message
    assert "1 of them not accounted as error or dead-lettered" in verdict.message
    assert "transient" not in verdict.message


def test_convergence_judges_only_settled_updates() -> None:
    """Updates still queued (a stateful example mid-life) are not delivered yet."""
    run = RunBuilder("stateful")
    feed = run.feed()
    feed.upsert([user()])
    feed.flush()
    feed.upsert([user()])
    assert feed.pending == 1
    assert _check("CONVERGENCE", run).outcome == "passed"


def test_convergence_a_feed_without_a_partner_segment_fails() -> None:
    run = RunBuilder(LIFECYCLE)
    feed = run.feed()
    feed.upsert([user()])
    feed.flush()
    feed._partner_membership = None
    verdict = _check("CONVERGENCE", run)
    assert verdict.outcome == "failed"
    assert "feed main: no partner segment to compare" in verdict.message


# --------------------------------------------------------------------------- RETRY-NO-DUPLICATE


def test_no_duplicate_success_once_per_item_passes() -> None:
    retry = (503, _counts("RETRY", 3, 0))
    run, _ = _feed_replying(LIFECYCLE, 3, retry, _uploading(3, 0, _counts("OK", 3, 0)))
    verdict = _check("RETRY-NO-DUPLICATE-SUCCESS", run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "1 sessions count each item as success at most once",
    )


@pytest.mark.parametrize("name", [LIFECYCLE, "preset:ambiguous-drop", "stateful"])
def test_no_duplicate_more_success_than_items_in_a_batch_fails_in_any_run(name: str) -> None:
    run, feed = _feed_replying(name, 2, _uploading(2, 0, _counts("OK", 4, 0)))
    verdict = _check("RETRY-NO-DUPLICATE-SUCCESS", run)
    assert verdict.outcome == "failed"
    batch = feed.batches[0]
    assert f"feed main batch {batch.batch_id}: 4 success for 2 distinct items" in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (batch.attempts[-1].exchange_seq,))


def test_no_duplicate_an_item_resent_in_another_batch_counted_twice_fails() -> None:
    """ "at most once across the session": the same item re-sent in a second batch of the
    session, counted as success both times."""
    run = RunBuilder("preset:ambiguous-503")
    feed = run.feed()
    feed.batch_update_raw([{"operation": "UPSERT", "identifiers": [["MAID", "m1"]]}])
    feed.batch_update_raw([{"operation": "UPSERT", "identifiers": [["MAID", "m1"]]}])
    verdict = _check("RETRY-NO-DUPLICATE-SUCCESS", run)
    assert verdict.outcome == "failed"
    assert "2 items counted as success over 2 batches but only 1 distinct items" in (
        verdict.message
    )
    assert verdict.seqs == tuple(b.attempts[-1].exchange_seq for b in feed.batches)


def test_no_duplicate_each_session_counts_apart() -> None:
    run = RunBuilder(LIFECYCLE)
    feed = run.feed()
    feed.batch_update_raw([{"operation": "UPSERT", "identifiers": [["MAID", "m1"]]}])
    feed.new_session()
    feed.batch_update_raw([{"operation": "UPSERT", "identifiers": [["MAID", "m1"]]}])
    verdict = _check("RETRY-NO-DUPLICATE-SUCCESS", run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "2 sessions count each item as success at most once",
    )


# --------------------------------------------------------------------------- DELETE-ABSENT


def _absent_deletes(*replies: Any) -> tuple[RunBuilder, Any]:
    """A lifecycle run whose main feed sent DELETEs of two users never added."""
    notes = LifecycleNotes()
    run = RunBuilder(LIFECYCLE, notes=notes)
    feed = run.feed()
    feed.upsert([user()])
    feed.flush()
    for reply in replies:
        if callable(reply):
            reply.run = run
    run.reply(*replies)
    updates = feed.delete([user(), user()])
    batches = feed.flush()
    notes.absent_deletes = [u.index for u in updates]
    notes.absent_delete_batches = [b.batch_id for b in batches]
    return run, feed


def test_delete_absent_ok_and_a_clean_batch_pass() -> None:
    run, _ = _absent_deletes()
    verdict = _check("DELETE-ABSENT", run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "2 DELETEs of absent users were not errors",
    )


def test_delete_absent_an_error_answer_fails() -> None:
    run, feed = _absent_deletes((500, {"status": "error", "message": "not a member"}))
    verdict = _check("DELETE-ABSENT", run)
    assert verdict.outcome == "failed"
    assert "feed main: DELETE of a user never added (update #1) answered 500 'error': " in (
        verdict.message
    )
    assert (verdict.run, verdict.seqs) == (LIFECYCLE, (feed.updates[1].exchanges[-1],))


def test_delete_absent_errors_the_partner_did_not_give_fail() -> None:
    run, feed = _absent_deletes(HONEST, HONEST, _uploading(2, 0, _counts("OK", 0, 2)))
    verdict = _check("DELETE-ABSENT", run)
    assert verdict.outcome == "failed"
    assert "the batch of 2 absent DELETEs reported 2 errors (OK), the partner rejected 0" in (
        verdict.message
    )
    assert verdict.seqs == (feed.batches[-1].attempts[-1].exchange_seq,)


def test_delete_absent_a_batch_ending_error_fails() -> None:
    run, _ = _absent_deletes(HONEST, HONEST, (400, _counts("ERROR", 0, 2)))
    verdict = _check("DELETE-ABSENT", run)
    assert verdict.outcome == "failed"
    assert "the batch of 2 absent DELETEs reported 2 errors (ERROR), the partner rejected 0" in (
        verdict.message
    )


def test_delete_absent_errors_the_partner_gave_are_not_the_connectors() -> None:
    run, _ = _absent_deletes(HONEST, HONEST, _uploading(1, 1, _counts("OK", 1, 1)))
    assert _check("DELETE-ABSENT", run).outcome == "passed"


def _failing_upload(status: int, error_code: str | None, answer: Reply) -> Any:
    """A batch responder: one upload the partner answers ``status``, then ``answer``."""

    def respond(request: Any) -> Reply:
        respond.run.upload(2, status=status, error_code=error_code)  # type: ignore[attr-defined]
        return answer

    return respond


@pytest.mark.parametrize(
    ("status", "code"), [(503, None), (429, "RATE_LIMITED"), (401, "REVOKED_ACCESS_TOKEN")]
)
def test_delete_absent_an_error_while_the_partner_failed_is_not_the_absence_s(
    status: int, code: str | None
) -> None:
    """The error answers a partner failure (judged by TRANSIENT-5XX, RATE-LIMIT...), not the
    DELETE of an absent member."""
    reply = _failing_upload(status, code, (400, _counts("ERROR", 0, 2)))
    run, _ = _absent_deletes(HONEST, HONEST, reply)
    verdict = _check("DELETE-ABSENT", run)
    assert verdict.outcome == "passed", verdict.message


def test_delete_absent_a_partner_refusal_about_the_member_is_no_excuse() -> None:
    """A 404 (the member is not there) is the absence itself: answering error fails."""
    reply = _failing_upload(404, "NOT_FOUND", (400, _counts("ERROR", 0, 2)))
    run, _ = _absent_deletes(HONEST, HONEST, reply)
    verdict = _check("DELETE-ABSENT", run)
    assert verdict.outcome == "failed"
    assert "the batch of 2 absent DELETEs reported 2 errors (ERROR)" in verdict.message


def test_delete_absent_not_exercised_is_skipped() -> None:
    run = RunBuilder(LIFECYCLE, notes=LifecycleNotes())
    feed = run.feed()
    added = user()
    feed.upsert([added])
    feed.delete([added])  # added before: not absent
    feed.flush()
    verdict = _check("DELETE-ABSENT", run)
    assert verdict.outcome == "skipped"
    assert "no feed deleted a user it never added" in verdict.message


@pytest.mark.parametrize("name", ["stateful", "preset:flaky-5xx"])
def test_delete_absent_is_judged_in_any_run(name: str) -> None:
    run = RunBuilder(name)
    feed = run.feed()
    run.reply((500, {"status": "error", "message": "not a member"}))
    feed.delete([user()])
    verdict = _check("DELETE-ABSENT", run)
    assert verdict.outcome == "failed"
    assert verdict.run == name


def test_delete_absent_a_retry_is_no_error() -> None:
    """ "is not an error": a RETRY while the partner fails transiently is not one."""
    run = RunBuilder("preset:flaky-5xx")
    feed = run.feed()
    run.reply((503, {"status": "retry", "message": "partner down"}))
    feed.delete([user()])
    assert _check("DELETE-ABSENT", run).outcome == "passed"


def test_limit_an_upload_too_large_for_the_trace_to_keep_whole_still_fails() -> None:
    """The trace keeps a body over 8 MiB as its first 64 KiB (and evicts bodies beyond its
    budget): the size judged is the size sent, not what the trace still holds."""
    run = RunBuilder("preset:dropped-connection")
    operation = {"action": "ADD", "identifiers": [{"type": "MAID", "value": "v" * 1000}]}
    body = json.dumps({"operations": [operation] * 9000}).encode()
    assert len(body) > 8 * 1024 * 1024
    with run.call("batch_update", {"batch_content": ["a"]}) as call:
        run.partner(
            "POST",
            "/v1/segments/seg-000001/members",
            status=None,
            request_body=body,
            route_key="POST /v1/segments/{segment_id}/members",
            segment_id="seg-000001",
        )
        call.answer(503, _counts("RETRY", 0, 0))
    (upload,) = run.platform.trace.exchanges("connector->partner")
    assert upload.request_truncated
    verdict = _check("BATCH-LIMIT", run)
    assert verdict.outcome == "failed"
    assert f"in {len(body)} bytes: the partner takes at most" in verdict.message
    assert (verdict.run, verdict.seqs) == ("preset:dropped-connection", (upload.seq,))


def test_no_duplicate_an_update_delivering_its_item_twice_counted_twice_fails() -> None:
    """An item is its update and its content: the same item delivered twice by one update
    and counted twice (DuplicatesItems) is counted as success more than once."""
    run = RunBuilder("stateful")
    feed = run.feed()

    def twice(request: Any) -> Reply:
        item = {
            "type": "BATCH_DELIVERY",
            "content": {"operation": "UPSERT", "identifiers": [["MAID", "m1"]]},
            "grouping_key": "main",
        }
        return 200, {"status": "ok", "data": [item, item]}

    run.reply(twice)
    feed.upsert([user(emails=0, maids=1)])
    (batch,) = feed.flush()
    assert len(batch.items) == 2
    verdict = _check("RETRY-NO-DUPLICATE-SUCCESS", run)
    assert verdict.outcome == "failed"
    assert "2 success for 1 distinct items" in verdict.message


def test_convergence_files_alone_are_not_compared() -> None:
    run = RunBuilder(LIFECYCLE)
    feed = run.feed()
    line = {"type": "FILE_DELIVERY", "content": "x", "grouping_key": "g", "destination_token": "t"}
    run.reply((200, {"status": "ok", "data": [line]}))
    feed.upsert([user()])
    verdict = _check("CONVERGENCE", run)
    assert verdict.outcome == "skipped"
    assert "1 feed(s) delivered as FILE_DELIVERY files" in verdict.message


def test_convergence_a_run_that_stopped_early_is_not_compared() -> None:
    run, _ = _feed_replying(LIFECYCLE, 2, (200, _counts("OK", 2, 0)))
    assert _check("CONVERGENCE", run).outcome == "failed"
    run.record.aborted = "the connector stopped answering"
    verdict = _check("CONVERGENCE", run)
    assert (verdict.outcome, verdict.message) == (
        "skipped",
        "not exercised: no feed with updates to compare (run lifecycle stopped early (the "
        "connector stopped answering))",
    )


def test_convergence_with_nothing_to_compare_is_skipped_not_passed() -> None:
    """ "passed: the runs gave the check something to look at": no feed sent an update."""
    run = RunBuilder(LIFECYCLE)
    run.feed()
    verdict = _check("CONVERGENCE", run)
    assert (verdict.outcome, verdict.message) == (
        "skipped",
        "not exercised: no feed with updates to compare",
    )


def test_honest_and_no_duplicate_with_no_batch_are_skipped_not_passed() -> None:
    run = RunBuilder(LIFECYCLE)
    feed = run.feed(max_batch_attempts=1)
    honest = _check("BATCH-HONEST", run)
    no_duplicate = _check("RETRY-NO-DUPLICATE-SUCCESS", run)
    assert (honest.outcome, no_duplicate.outcome) == ("skipped", "skipped")
    assert no_duplicate.message == "not exercised: no feed session sent a batch"
    feed.upsert([user()])
    run.reply((503, _counts("RETRY", 1, 0)))
    feed.flush()
    verdict = _check("BATCH-HONEST", run)
    assert verdict.message == (
        "not exercised: no batch of a feed got a final (OK or ERROR) answer with both counts"
    )
    assert _check("RETRY-NO-DUPLICATE-SUCCESS", run).outcome == "passed", "a dead letter"
