"""The update clauses on hand-built runs: real feeds behind a scripted connector."""

from __future__ import annotations

from typing import Any

import pytest

from harness.clauses import Verdict, get_clause
from harness.clauses.run_names import LIFECYCLE
from harness.users import email_hash
from tests.clauses.builder import Reply, RunBuilder, delivered, evidence, user


def _check(clause_id: str, *runs: RunBuilder) -> Verdict:
    return get_clause(clause_id).check(evidence(*runs))


def _delivery(request: Any, identifiers: list[list[str]]) -> Reply:
    return 200, {
        "status": "ok",
        "data": [
            {
                "type": "BATCH_DELIVERY",
                "content": {"operation": request["operation"], "identifiers": identifiers},
                "grouping_key": "main",
            }
        ],
    }


def _without(kind: str) -> Any:
    """A responder delivering the user's identifiers but those of ``kind``."""
    return lambda request: _delivery(request, [i for i in delivered(request) if i[0] != kind])


# --------------------------------------------------------------------------- UPDATE-ELIGIBLE


def test_eligible_every_identifier_delivered_passes() -> None:
    run = RunBuilder(LIFECYCLE)
    feed = run.feed()
    feed.upsert([user(emails=2, maids=1, accounts=1), user()])
    feed.delete([user(maids=1)])
    feed.flush()
    verdict = _check("UPDATE-ELIGIBLE", run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "3 updates delivered their eligible identifiers",
    )


@pytest.mark.parametrize("operation", ["UPSERT", "DELETE"])
@pytest.mark.parametrize("name", [LIFECYCLE, "preset:mixed-invalid-items", "stateful"])
def test_eligible_one_identifier_lost_fails_in_any_run(name: str, operation: str) -> None:
    run = RunBuilder(name)
    feed = run.feed()
    feed.upsert([user()])
    run.reply(_without("MAID"))
    feed.send([user(emails=1, maids=1)], operation)  # type: ignore[arg-type]
    feed.flush()
    verdict = _check("UPDATE-ELIGIBLE", run)
    assert verdict.outcome == "failed"
    assert f"feed main update #1 ({operation}) answered 200 'ok'" in verdict.message
    assert "1 of 2 eligible identifiers (e.g. MAID 00000000-000…)" in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (feed.updates[1].exchanges[-1],))


def test_eligible_an_identifier_sent_to_the_partner_directly_reached_it() -> None:
    """ "reaches the delivery (data) or the partner": a connector that uploads during the
    update itself, with no data, delivers as well."""
    run = RunBuilder(LIFECYCLE)
    feed = run.feed()

    def direct(request: Any) -> Reply:
        content = {"operation": request["operation"], "identifiers": delivered(request)}
        run.upload_items([content])
        return 200, {"status": "ok"}

    run.reply(direct)
    feed.upsert([user(emails=1, maids=1)])
    assert _check("UPDATE-ELIGIBLE", run).outcome == "passed"


def test_eligible_an_error_answer_delivers_nothing_and_fails() -> None:
    run = RunBuilder(LIFECYCLE)
    feed = run.feed()
    run.reply((500, {"status": "error", "message": "partner down"}))
    feed.upsert([user()])
    verdict = _check("UPDATE-ELIGIBLE", run)
    assert verdict.outcome == "failed"
    assert "answered 500 'error': 1 of 1 eligible identifiers" in verdict.message


def test_eligible_only_the_feed_selected_identifying_resources_count() -> None:
    run = RunBuilder(LIFECYCLE)
    feed = run.feed(identifying=("USER_EMAIL",))
    run.reply(_without("MAID"), _without("EMAIL_SHA256"))
    feed.upsert([user(emails=1, maids=1)])
    assert _check("UPDATE-ELIGIBLE", run).outcome == "passed", "a MAID is not eligible here"
    feed.upsert([user(emails=1, maids=1)])
    verdict = _check("UPDATE-ELIGIBLE", run)
    assert verdict.outcome == "failed"
    assert "1 of 1 eligible identifiers (e.g. EMAIL_SHA256" in verdict.message


@pytest.mark.parametrize(
    "reply",
    [
        (400, {"status": "no_eligible_identifier", "message": "nothing to send"}),
        (200, {"status": "ok"}),
        (200, {"status": "ok", "data": []}),
    ],
)
def test_eligible_a_user_with_none_answers_no_eligible_identifier_or_ok_without_data(
    reply: Reply,
) -> None:
    run = RunBuilder(LIFECYCLE)
    feed = run.feed()
    run.reply(reply)
    feed.upsert([user(emails=0)])
    assert _check("UPDATE-ELIGIBLE", run).outcome == "passed"


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        ((500, {"status": "error", "message": "no identifier"}), "answered 500 'error'"),
        ((200, {"status": "no_eligible_identifier"}), "answered 200 'no_eligible_identifier'"),
        ((400, {"status": "error", "message": "x"}), "answered 400 'error'"),
        (
            (
                200,
                {
                    "status": "ok",
                    "data": [{"type": "BATCH_DELIVERY", "content": {}, "grouping_key": "g"}],
                },
            ),
            "answered 200 'ok' with 1 data item(s)",
        ),
    ],
)
def test_eligible_a_user_with_none_never_gets_error_nor_data(reply: Reply, shown: str) -> None:
    run = RunBuilder("preset:flaky-5xx")
    feed = run.feed()
    feed.upsert([user()])
    run.reply(reply)
    feed.delete([user(emails=0, maids=0)])
    verdict = _check("UPDATE-ELIGIBLE", run)
    assert verdict.outcome == "failed"
    assert f"update #1 (DELETE) of a user without eligible identifier {shown}" in verdict.message
    assert "expected 400 no_eligible_identifier or 200 ok without data" in verdict.message
    assert (verdict.run, verdict.seqs) == ("preset:flaky-5xx", (feed.updates[1].exchanges[-1],))


def test_eligible_every_update_is_judged_not_only_the_first_broken_one() -> None:
    run = RunBuilder(LIFECYCLE)
    feed = run.feed()
    run.reply(_without("MAID"), (200, {"status": "ok"}), _without("PARTNER_USER_ID"))
    feed.upsert([user(maids=1), user(), user(accounts=1)])
    verdict = _check("UPDATE-ELIGIBLE", run)
    assert verdict.message.startswith("3 violations")


# --------------------------------------------------------------------------- UPDATE-GROUPING


def _answered_data(name: str, *items: dict[str, Any]) -> tuple[RunBuilder, int]:
    run = RunBuilder(name)
    with run.call("user_segment_update", {"feed_id": "7001"}) as call:
        call.answer(200, {"status": "ok", "data": list(items)})
    return run, call.seq


BATCH_ITEM = {"type": "BATCH_DELIVERY", "content": {"a": 1}, "grouping_key": "g1"}
FILE_ITEM = {
    "type": "FILE_DELIVERY",
    "content": "line",
    "grouping_key": "g1",
    "destination_token": "s3://bucket/file",
}


def test_grouping_keyed_items_pass() -> None:
    run, _ = _answered_data(LIFECYCLE, BATCH_ITEM, FILE_ITEM)
    verdict = _check("UPDATE-GROUPING", run)
    assert (verdict.outcome, verdict.message) == ("passed", "2 delivery items carry their keys")


@pytest.mark.parametrize(
    ("item", "shown"),
    [
        ({**BATCH_ITEM, "grouping_key": ""}, "data[1] (BATCH_DELIVERY) has grouping_key=''"),
        ({**BATCH_ITEM, "grouping_key": "  "}, "data[1] (BATCH_DELIVERY) has grouping_key='  '"),
        (
            {k: v for k, v in BATCH_ITEM.items() if k != "grouping_key"},
            "data[1] (BATCH_DELIVERY) has grouping_key=None",
        ),
        ({**BATCH_ITEM, "grouping_key": 7}, "data[1] (BATCH_DELIVERY) has grouping_key=7"),
        ({**FILE_ITEM, "grouping_key": ""}, "data[1] (FILE_DELIVERY) has grouping_key=''"),
        (
            {k: v for k, v in FILE_ITEM.items() if k != "destination_token"},
            "data[1] (FILE_DELIVERY) has destination_token=None",
        ),
        ({**FILE_ITEM, "destination_token": ""}, "has destination_token=''"),
    ],
)
@pytest.mark.parametrize("name", [LIFECYCLE, "stateful"])
def test_grouping_an_item_without_its_keys_fails_in_any_run(
    name: str, item: dict[str, Any], shown: str
) -> None:
    run, seq = _answered_data(name, BATCH_ITEM, item)
    verdict = _check("UPDATE-GROUPING", run)
    assert verdict.outcome == "failed"
    assert shown in verdict.message
    assert "expected a non-empty string" in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (seq,))


def test_grouping_a_batch_item_needs_no_destination_token() -> None:
    run, _ = _answered_data(LIFECYCLE, {**BATCH_ITEM, "destination_token": None})
    assert _check("UPDATE-GROUPING", run).outcome == "passed"


def test_grouping_every_item_of_every_answer_is_judged() -> None:
    run, _ = _answered_data(LIFECYCLE, {**BATCH_ITEM, "grouping_key": ""})
    other, _ = _answered_data("preset:flaky-5xx", BATCH_ITEM, {**FILE_ITEM, "grouping_key": ""})
    verdict = _check("UPDATE-GROUPING", run, other)
    assert verdict.message.startswith("2 violations: [lifecycle]")
    assert "[preset:flaky-5xx] data[1] (FILE_DELIVERY)" in verdict.message


# --------------------------------------------------------------------------- UPDATE-STATS


def _stats(name: str, *identifiers: object) -> tuple[RunBuilder, int]:
    """An update of a user (an email and a MAID) answered with stats naming these."""
    someone = user(emails=1, maids=1)
    run = RunBuilder(name)
    request = {
        "feed_id": "7001",
        "operation": "UPSERT",
        "user_identifiers": someone.to_user_identifiers(),
    }
    with run.call("user_segment_update", request) as call:
        call.answer(
            200,
            {
                "status": "ok",
                "stats": [{"identifier": i, "sync_result": "SUCCESS"} for i in identifiers],
            },
        )
    return run, call.seq


def test_stats_of_the_request_user_pass() -> None:
    someone = user(emails=1, maids=1)
    email, maid = someone.emails[0], someone.maids[0]
    run = RunBuilder(LIFECYCLE)
    request = {"user_identifiers": someone.to_user_identifiers()}
    with run.call("user_segment_update", request) as call:
        stats = [email_hash(email), email, f"  {email.upper()} ", maid.value, maid.user_agent_id]
        call.answer(
            200,
            {"status": "ok", "stats": [{"identifier": i, "sync_result": "SUCCESS"} for i in stats]},
        )
    verdict = _check("UPDATE-STATS", run)
    assert (verdict.outcome, verdict.message) == ("passed", "5 stats name the request's user")


@pytest.mark.parametrize("name", [LIFECYCLE, "preset:rate-limit-burst", "stateful"])
def test_stats_of_someone_else_fail_in_any_run(name: str) -> None:
    run, seq = _stats(name, "someone-else")
    verdict = _check("UPDATE-STATS", run)
    assert verdict.outcome == "failed"
    assert "stats identifier someone-else is none of the request user's" in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (seq,))


def test_stats_every_stat_is_judged_not_only_the_first() -> None:
    someone = user(emails=1)
    run = RunBuilder(LIFECYCLE)
    with run.call("user_segment_update", {"user_identifiers": someone.to_user_identifiers()}) as c:
        stats = [someone.emails[0], "x@other.com", 12, None]
        c.answer(200, {"status": "ok", "stats": [{"identifier": i} for i in stats]})
    verdict = _check("UPDATE-STATS", run)
    assert verdict.message.startswith("3 violations")
    assert "<11-character value with '@'>" in verdict.message, "a raw email is never shown"
    assert "stats identifier 12 is" in verdict.message


def test_stats_a_hash_of_another_email_is_someone_else() -> None:
    run, _ = _stats(LIFECYCLE, email_hash("other@example.com"))
    assert _check("UPDATE-STATS", run).outcome == "failed"


@pytest.mark.parametrize(
    "foreign",
    ["USER_EMAIL", "USER_POINT", "MOBILE_ADVERTISING_ID", "USER_DEVICE_POINT", "1000"],
)
def test_stats_a_type_name_or_a_registry_is_not_an_identifier_of_the_user(foreign: str) -> None:
    """The request's identifiers carry their ``type`` and, for device points, the
    technical identifier's ``registry_id``: those strings name kinds and registries, not
    this user; a stat naming one does not belong to the request's user."""
    run, seq = _stats(LIFECYCLE, foreign)
    verdict = _check("UPDATE-STATS", run)
    assert verdict.outcome == "failed"
    shown = foreign if len(foreign) <= 16 else foreign[:12] + "…"
    assert f"stats identifier {shown} is none of the request user's" in verdict.message
    assert verdict.seqs == (seq,)


@pytest.mark.parametrize("name", [LIFECYCLE, "stateful"])
def test_eligible_a_delete_dropped_after_the_upsert_reached_the_partner_fails(name: str) -> None:
    """The identifiers of a DELETE must reach the delivery or the partner for that DELETE:
    that the partner received them with the user's earlier UPSERT delivers nothing."""
    run = RunBuilder(name)
    feed = run.feed()
    leaving = user(emails=1, maids=1)
    feed.upsert([leaving])
    feed.flush()
    run.reply((200, {"status": "ok"}))
    feed.delete([leaving])
    feed.flush()
    verdict = _check("UPDATE-ELIGIBLE", run)
    assert verdict.outcome == "failed"
    assert "feed main update #1 (DELETE) answered 200 'ok': 2 of 2 eligible identifiers" in (
        verdict.message
    )
    assert (verdict.run, verdict.seqs) == (name, (feed.updates[1].exchanges[-1],))


def test_eligible_a_delete_sent_to_the_partner_during_the_update_passes() -> None:
    run = RunBuilder("stateful")
    feed = run.feed()
    leaving = user(emails=1, maids=1)
    feed.upsert([leaving])
    feed.flush()

    def direct(request: Any) -> Reply:
        run.upload_items([{"operation": "DELETE", "identifiers": delivered(request)}])
        return 200, {"status": "ok"}

    run.reply(direct)
    feed.delete([leaving])
    assert _check("UPDATE-ELIGIBLE", run).outcome == "passed"


def test_eligible_not_judged_once_the_partner_refused_the_credentials_for_good() -> None:
    """The partner refused the refresh token (invalid_grant): nothing can reach it any more,
    and an error answer is TOKEN-INVALID-GRANT's to judge, not this clause's; updates
    before the refusal still are."""
    run = RunBuilder("preset:invalid-grant")
    feed = run.feed()

    def refused(request: Any) -> Reply:
        run.refresh(status=400, error="invalid_grant")
        return 500, {"status": "error", "message": "re-authentication is needed"}

    gone = (500, {"status": "error", "message": "re-authentication is needed"})
    run.reply(refused, gone)
    feed.upsert([user()])
    feed.upsert([user()])  # no partner call at all: it knows the refresh token is refused
    verdict = _check("UPDATE-ELIGIBLE", run)
    assert verdict.outcome == "passed", verdict.message
    assert verdict.message.startswith("0 updates"), "neither is judged"

    before = RunBuilder("preset:invalid-grant")
    early = before.feed()
    before.reply((500, {"status": "error", "message": "partner down"}), refused)
    early.upsert([user()])
    early.upsert([user()])
    assert _check("UPDATE-ELIGIBLE", before).outcome == "failed", "the first is still judged"
