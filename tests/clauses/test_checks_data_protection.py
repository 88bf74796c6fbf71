"""The data-protection clauses on hand-built runs: every partner request, every delivered
file line, every connector answer and log line, in every run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.clauses import Verdict, get_clause
from harness.clauses.run_names import AUTH, LIFECYCLE
from harness.users import email_hash
from tests.clauses.builder import HONEST, SEGMENT, RunBuilder, evidence, user


def _check(clause_id: str, *runs: RunBuilder) -> Verdict:
    return get_clause(clause_id).check(evidence(*runs))


def _sending(name: str, kind: str, value: str, *, status: int = 200) -> tuple[RunBuilder, int]:
    """A batch call during which the connector sent the partner one ``(kind, value)``."""
    run = RunBuilder(name)
    with run.call("batch_update", {"batch_content": ["a"]}) as call:
        item = {"operation": "UPSERT", "identifiers": [[kind, value]]}
        run.upload_items([item], status=status)
        call.answer(200, {"status": "OK", "sent_items_in_success": 1, "sent_items_in_error": 0})
    (upload,) = run.platform.trace.exchanges("connector->partner")
    return run, upload.seq


# --------------------------------------------------------------------------- PII-HASHED


def test_pii_hashed_identifiers_pass() -> None:
    run, _ = _sending(LIFECYCLE, "EMAIL_SHA256", email_hash("a@example.com"))
    more, _ = _sending("preset:flaky-5xx", "MAID", "6d92078a-8246-4ba4-ae5b-76104861e7dc")
    verdict = _check("PII-HASHED", run, more)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "2 identifiers received, all hashed or non-PII",
    )


@pytest.mark.parametrize(
    ("kind", "value", "why"),
    [
        ("EMAIL_SHA256", "someone@example.com", "(raw: contains '@')"),
        ("PARTNER_USER_ID", "someone@example.com", "(raw: contains '@')"),
        ("MAID", "x@y", "(raw: contains '@')"),
        ("EMAIL_SHA256", email_hash("a@example.com").upper(), "(not 64 lowercase hex)"),
        ("EMAIL_SHA256", email_hash("a@example.com")[:63], "(not 64 lowercase hex)"),
        ("PHONE_SHA256", "+33612345678", "(not 64 lowercase hex)"),
        ("PHONE_SHA256", email_hash("a@example.com") + "0", "(not 64 lowercase hex)"),
    ],
)
@pytest.mark.parametrize("name", [LIFECYCLE, "preset:mixed-invalid-items", "stateful"])
def test_pii_a_clear_value_received_fails_in_any_run(
    name: str, kind: str, value: str, why: str
) -> None:
    run, seq = _sending(name, kind, value)
    verdict = _check("PII-HASHED", run)
    assert verdict.outcome == "failed"
    assert f"partner request req-1 carried 1 unhashed identifier(s), e.g. {kind}" in (
        verdict.message
    )
    assert why in verdict.message
    assert "someone@example.com" not in verdict.message, "a message never shows a raw email"
    assert (verdict.run, verdict.seqs) == (name, (seq,))


@pytest.mark.parametrize("status", [401, 413, None])
def test_pii_a_refused_or_dropped_request_carrying_a_clear_email_fails(
    status: int | None,
) -> None:
    """ "never receives": a request the partner refused (or whose connection dropped)
    reached it all the same."""
    run = RunBuilder("preset:dropped-connection")
    body = {
        "operations": [{"action": "ADD", "identifiers": [{"type": "EMAIL", "value": "a@b.io"}]}]
    }
    with run.call("batch_update", {"batch_content": ["a"]}) as call:
        run.partner(
            "POST",
            f"/v1/segments/{SEGMENT}/members",
            status=status,
            request_body=json.dumps(body).encode(),
        )
        call.answer(503, {"status": "RETRY", "sent_items_in_success": 0, "sent_items_in_error": 0})
    (upload,) = run.platform.trace.exchanges("connector->partner")
    verdict = _check("PII-HASHED", run)
    assert verdict.outcome == "failed"
    assert f"POST /v1/segments/{SEGMENT}/members (answered {status or 'connection'})" in (
        verdict.message
    )
    assert "carried 1 unhashed identifier(s), e.g. EMAIL <6-character value with '@'>" in (
        verdict.message
    )
    assert verdict.seqs == (upload.seq,)


def _filing(line: str) -> Any:
    return lambda request: (
        200,
        {
            "status": "ok",
            "data": [
                {
                    "type": "FILE_DELIVERY",
                    "content": line,
                    "grouping_key": "g",
                    "destination_token": "s3://bucket/out",
                }
            ],
        },
    )


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ('{"type": "EMAIL_SHA256", "value": "a@b.io"}', "carries EMAIL_SHA256 <6-character"),
        ("up-1 someone@example.com UPSERT", "carries a clear email address (<19-character"),
    ],
)
def test_pii_a_clear_email_in_a_delivered_file_line_fails(line: str, shown: str) -> None:
    run = RunBuilder("stateful")
    feed = run.feed()
    run.reply(_filing(f'{{"type": "MAID", "value": "m1"}}\n{line}\n'))
    feed.upsert([user()])
    verdict = _check("PII-HASHED", run)
    assert verdict.outcome == "failed"
    assert f"[stateful] feed main: line 2 of the file for s3://bucket/out/g {shown}" in (
        verdict.message
    )
    assert "someone@example.com" not in verdict.message


def test_pii_hashed_file_lines_pass() -> None:
    run = RunBuilder(LIFECYCLE)
    feed = run.feed()
    hashed = email_hash("a@example.com")
    run.reply(_filing(f'{{"type": "EMAIL_SHA256", "value": "{hashed}"}}\n'), HONEST)
    feed.upsert([user(), user()])
    feed.flush()
    assert _check("PII-HASHED", run).outcome == "passed"


# --------------------------------------------------------------------------- SECRET-NO-LEAK


def _answering(name: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    run = RunBuilder(name)
    with run.call("external_segment_connection", {"feed_id": "7001"}) as call:
        call.answer(200, {"status": "ok"})
    with run.call("batch_update", {"batch_content": ["a"]}) as leaky:
        leaky.answer(503, body, headers)
    return run, leaky.seq


def _secrets(run: RunBuilder) -> dict[str, str]:
    credentials = run.platform.partner.credentials
    run.platform.redactor.add_secret("fp-access-token-42", "access_token")
    return {
        "client_secret": credentials.client_secret,
        "refresh_token": credentials.refresh_token,
        "access_token": "fp-access-token-42",
    }


def test_secret_clean_answers_and_logs_pass() -> None:
    run, _ = _answering(LIFECYCLE, {"status": "RETRY", "message": "partner said 503"})
    run.platform.log.feed("INFO batch 1 re-sent")
    verdict = _check("SECRET-NO-LEAK", run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "2 connector answers and 1 log lines carry no secret",
    )


@pytest.mark.parametrize("kind", ["client_secret", "refresh_token", "access_token"])
@pytest.mark.parametrize("name", [LIFECYCLE, "preset:flaky-5xx", "stateful"])
def test_secret_in_an_answer_message_fails_in_any_run(name: str, kind: str) -> None:
    run = RunBuilder(name)
    secret = _secrets(run)[kind]
    with run.call("batch_update", {"batch_content": ["a"]}) as call:
        call.answer(503, {"status": "RETRY", "message": f"partner refused {secret}"})
    verdict = _check("SECRET-NO-LEAK", run)
    assert verdict.outcome == "failed"
    assert "POST /v1/batch_update answered a secret in the body (masked in the trace as" in (
        verdict.message
    )
    assert secret not in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (call.seq,))


def test_secret_in_an_answer_header_fails() -> None:
    run = RunBuilder("preset:token-expiry-mid-upload")
    secret = _secrets(run)["access_token"]
    with run.call("batch_update", {"batch_content": ["a"]}) as call:
        call.answer(
            200,
            {"status": "OK", "sent_items_in_success": 1, "sent_items_in_error": 0},
            {"x-debug-token": f"Bearer {secret}"},
        )
    verdict = _check("SECRET-NO-LEAK", run)
    assert verdict.outcome == "failed"
    assert "answered a secret in the headers" in verdict.message
    assert verdict.seqs == (call.seq,)


def test_secret_a_refresh_token_field_in_an_authentication_answer_fails() -> None:
    """ "/v1/authentication answers never carry refresh_token": the key, whatever value."""
    run = RunBuilder(AUTH)
    with run.call("authentication", {"user_id": "u"}) as call:
        call.answer(200, {"status": "ok", "data": {"refresh_token": "not-a-known-one"}})
    verdict = _check("SECRET-NO-LEAK", run)
    assert verdict.outcome == "failed"
    assert "/v1/authentication answered a refresh_token field" in verdict.message
    assert (verdict.run, verdict.seqs) == (AUTH, (call.seq,))


@pytest.mark.parametrize(
    ("kind", "named"),
    [
        ("client_secret", "the client secret"),
        ("refresh_token", "a refresh token"),
        ("access_token", "an access token"),
    ],
)
def test_secret_in_a_log_line_fails(kind: str, named: str) -> None:
    run, _ = _answering("preset:invalid-grant", {"status": "RETRY", "message": "later"})
    secret = _secrets(run)[kind]
    run.platform.log.feed("INFO all good")
    run.platform.log.feed(f"DEBUG token={secret}")
    verdict = _check("SECRET-NO-LEAK", run)
    assert verdict.outcome == "failed"
    assert f"[preset:invalid-grant] the connector logged {named} (log line 2" in verdict.message
    assert secret not in verdict.message
    assert verdict.run == "preset:invalid-grant"


def test_secret_the_plugin_token_in_a_log_line_is_not_a_partner_secret() -> None:
    run, _ = _answering(LIFECYCLE, {"status": "RETRY", "message": "later"})
    run.platform.log.feed(f"DEBUG gateway token {run.platform.gateway.token}")
    assert _check("SECRET-NO-LEAK", run).outcome == "passed"


# --------------------------------------------------------------------------- ACCOUNT-ISOLATION


def _serving(name: str, *requests: tuple[str, str, int]) -> tuple[RunBuilder, int, list[int]]:
    """A feed (account acc-1, segment seg-000001) served one call, inside which the
    connector made these partner requests."""
    run = RunBuilder(name)
    run.gateway_feed("7001", partner_segment_id=SEGMENT, partner_account_id="acc-1")
    with run.call("external_segment_connection", {"feed_id": "7001"}) as call:
        for method, path, status in requests:
            run.partner(
                method,
                path,
                status=status,
                error_code="ACCOUNT_FORBIDDEN" if status == 403 else None,
            )
        call.answer(200, {"status": "ok"})
    seqs = [e.seq for e in run.platform.trace.exchanges("connector->partner")]
    return run, call.seq, seqs


def test_isolation_requests_to_the_feed_own_account_and_segment_pass() -> None:
    run, _, _ = _serving(
        LIFECYCLE,
        ("GET", f"/v1/segments/{SEGMENT}", 200),
        ("POST", f"/v1/segments/{SEGMENT}/members", 200),
        ("GET", "/v1/accounts/acc-1/segments", 200),
        ("POST", "/oauth/token", 200),
    )
    verdict = _check("ACCOUNT-ISOLATION", run)
    assert (verdict.outcome, verdict.message) == (
        "passed",
        "4 partner requests stayed in their feed's account and segment",
    )


@pytest.mark.parametrize(
    ("method", "path", "what"),
    [
        ("GET", "/v1/segments/seg-000999", "its segment is 'seg-000001'"),
        ("POST", "/v1/segments/seg-000999/members", "its segment is 'seg-000001'"),
        ("GET", "/v1/accounts/acc-2/segments", "its account is 'acc-1'"),
        ("POST", "/v1/accounts/acc-2/segments", "its account is 'acc-1'"),
    ],
)
@pytest.mark.parametrize("name", [LIFECYCLE, AUTH, "preset:flaky-5xx", "stateful"])
def test_isolation_touching_another_segment_or_account_fails_in_any_run(
    name: str, method: str, path: str, what: str
) -> None:
    """ "touches": a read counts as much as a write."""
    run, call_seq, seqs = _serving(
        name, ("GET", f"/v1/segments/{SEGMENT}", 200), (method, path, 200)
    )
    verdict = _check("ACCOUNT-ISOLATION", run)
    assert verdict.outcome == "failed"
    assert f"serving feed 7001, the connector touched {method} {path}: {what}" in verdict.message
    assert (verdict.run, verdict.seqs) == (name, (call_seq, seqs[1]))


def test_isolation_a_partner_403_fails() -> None:
    run, _, seqs = _serving("preset:rate-limit-burst", ("POST", "/v1/accounts/acc-1/segments", 403))
    verdict = _check("ACCOUNT-ISOLATION", run)
    assert verdict.outcome == "failed"
    assert (
        "1 partner request(s) answered 403 (e.g. POST /v1/accounts/acc-1/segments "
        "ACCOUNT_FORBIDDEN): the connector reached beyond its account"
    ) in verdict.message
    assert verdict.seqs == (seqs[0],)


def test_isolation_a_403_the_scenario_injected_is_not_the_connectors() -> None:
    run = RunBuilder("preset:other")
    run.gateway_feed("7001", partner_segment_id=SEGMENT, partner_account_id="acc-1")
    with run.call("external_segment_connection", {"feed_id": "7001"}) as call:
        run.partner("GET", f"/v1/segments/{SEGMENT}", status=403, faults=("forbid-once",))
        call.answer(500, {"status": "error", "message": "forbidden"})
    assert _check("ACCOUNT-ISOLATION", run).outcome == "passed"


def test_isolation_a_call_without_a_feed_is_not_judged_by_feed() -> None:
    run = RunBuilder(AUTH)
    with run.call("authentication_status", {"user_id": "u"}) as call:
        run.partner("GET", "/v1/accounts/acc-2/segments")
        call.answer(200, {"status": "not_authenticated"})
    assert _check("ACCOUNT-ISOLATION", run).outcome == "passed"


def test_isolation_every_run_is_judged() -> None:
    clean, _, _ = _serving(LIFECYCLE, ("GET", f"/v1/segments/{SEGMENT}", 200))
    broken, call_seq, seqs = _serving("stateful", ("GET", "/v1/segments/seg-000002", 200))
    verdict = _check("ACCOUNT-ISOLATION", clean, broken)
    assert (verdict.run, verdict.seqs) == ("stateful", (call_seq, seqs[0]))
