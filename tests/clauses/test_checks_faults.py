"""The partner-fault and authentication clauses: the reference connector passes them on
three seeds; connectors that break the trickiest ones fail them."""

from __future__ import annotations

import base64
import dataclasses
import json
import random
from typing import Any

import pytest

from contracts.plugin_api import (
    BatchUpdateRequest,
    BatchUpdateResponse,
    ExternalSegmentConnectionRequest,
    ExternalSegmentConnectionResponse,
    LogoutRequest,
    LogoutResponse,
)
from harness.clauses import Verdict, get_clause
from harness.clauses.evidence import Evidence
from harness.clauses.notes import (
    Answered,
    AuthNotes,
    ConnectionFaultsNotes,
    InvalidGrantNotes,
    PartnerSummary,
    PresetNotes,
    TamperedState,
)
from harness.clauses.run_names import (
    AUTH,
    CONNECTION_FAULTS,
    INVALID_GRANT,
    PARTIAL,
    RATE_LIMITED,
    TOKEN_EXPIRY,
    TRANSIENT,
)
from harness.clauses.runs import RUNS, execute_run
from harness.clauses.runs.faults import (
    PLUGIN_VERSION_ID,
    RUN_SPECS,
    SPLIT_OPERATIONS,
    TAMPERED_STATES,
    USER_ID,
    tampered_states,
)
from harness.engine import _verdict as engine_verdict
from harness.reference import InvalidState, OAuthState, ReferenceConnector, StateCodec
from harness.reference.config import PartnerCredentials, TechnicalConfig
from harness.reference.core import ReferenceContext
from harness.reference.partner_client import PartnerClient
from harness.targets import Target
from tests.clauses.builder import RunBuilder, evidence

FAULT_CLAUSES = (
    "TOKEN-REFRESH",
    "TOKEN-INVALID-GRANT",
    "RATE-LIMIT",
    "TRANSIENT-5XX",
    "PARTIAL-FAILURE",
    "CONNECT-TRANSIENT",
    "AUTH-STATUS",
    "AUTH-STATE-TAMPER",
    "AUTH-ROUNDTRIP",
    "DYNAMIC-PROPERTIES",
    "NOT-IMPLEMENTED-OK",
)


def _evidence(target: Target, seed: int, names: tuple[str, ...] | None = None) -> Evidence:
    evidence = Evidence(seed=seed)
    for spec in RUN_SPECS:
        if names is None or spec.name in names:
            evidence.runs[spec.name] = execute_run(spec, target, seed=seed)
    return evidence


def _verdict(clause_id: str, evidence: Evidence) -> Verdict:
    verdict: Verdict = get_clause(clause_id).check(evidence)
    return verdict


@pytest.fixture(scope="module", params=[0, 1, 2], ids=lambda seed: f"seed{seed}")
def reference_evidence(request: pytest.FixtureRequest) -> Evidence:
    return _evidence(Target(), request.param)


@pytest.mark.parametrize("clause_id", FAULT_CLAUSES)
def test_reference_connector_passes(reference_evidence: Evidence, clause_id: str) -> None:
    verdict = _verdict(clause_id, reference_evidence)
    assert verdict.outcome == "passed", verdict.message


def test_the_runs_are_registered_and_make_their_faults_fire(
    reference_evidence: Evidence,
) -> None:
    for spec in RUN_SPECS:
        assert RUNS[spec.name] is spec
        record = reference_evidence[spec.name]
        assert record.aborted is None, (spec.name, record.aborted)
    partner: dict[str, PartnerSummary] = {}
    for name, record in reference_evidence.runs.items():
        notes = record.notes
        if name.startswith("preset:"):
            assert isinstance(notes, PresetNotes | InvalidGrantNotes), name
            assert notes.partner is not None, name
            partner[name] = notes.partner
    assert partner[TOKEN_EXPIRY].answers_401 >= 1
    assert all(partner[name].answers_429 == 3 for name in RATE_LIMITED)
    assert all(partner[name].answers_5xx + partner[name].dropped for name in TRANSIENT)
    assert partner["preset:mixed-invalid-items"].operations_rejected > 0
    assert partner[INVALID_GRANT].invalid_grant >= 1
    not_ready = reference_evidence["preset:not-ready-for-3-polls"].notes
    assert isinstance(not_ready, PresetNotes)
    assert not_ready.connection is not None
    assert not_ready.connection.attempts == 4
    auth = reference_evidence[AUTH].notes
    assert isinstance(auth, AuthNotes)
    assert auth.skipped == {}
    assert auth.state_format == "fernet"
    # connection meets a 429 with and without Retry-After, a 503 and a drop, then is ready
    faults = reference_evidence[CONNECTION_FAULTS].notes
    assert isinstance(faults, ConnectionFaultsNotes)
    assert faults.connection is not None
    assert faults.partner is not None
    assert faults.connection.attempts == 5
    assert (faults.partner.answers_429, faults.partner.answers_5xx) == (2, 1)
    assert faults.partner.dropped == 1
    # the mixed-invalid-items batches of 20 go out in two uploads each
    split = reference_evidence[PARTIAL]
    sizes = [len(e.operations) for e in split.partner.ledger.uploads()]
    assert max(sizes) == SPLIT_OPERATIONS
    assert isinstance(split.notes, PresetNotes)
    assert split.notes.partner is not None
    assert split.notes.feed is not None
    assert split.notes.partner.uploads > split.notes.feed.batches


def test_every_clause_declares_its_runs() -> None:
    for clause_id in FAULT_CLAUSES:
        clause = get_clause(clause_id)
        assert clause.runs, clause_id
        assert set(clause.runs) <= RUNS.keys(), clause_id


# ---------------------------------------------------------------------- connectors that break them


class _EagerClient(PartnerClient):
    """Refreshes the access token before every call, valid or not."""

    async def _access_token(self) -> str:
        return await self.refresh()


class EagerRefreshConnector(ReferenceConnector):
    """Breaks TOKEN-REFRESH: a refresh grant per partner call."""

    def partner_client(
        self, config: TechnicalConfig, credentials: PartnerCredentials, refresh_token: str | None
    ) -> PartnerClient:
        client = super().partner_client(config, credentials, refresh_token)
        return _EagerClient(
            endpoint=client.endpoint,
            oauth=client.oauth,
            http=self.partner_http,
            clock=self.clock,
            session=client.session,
            api_version=client.api_version,
            max_operations=client.max_operations,
        )


class _RemapsRetry(ReferenceConnector):
    """Answers ERROR where the reference answers RETRY for the codes in ``codes``."""

    codes: tuple[str, ...] = ()

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        response = await super().on_batch_update(request, ctx)
        if response.status == "RETRY" and any(c in (response.message or "") for c in self.codes):
            return BatchUpdateResponse(
                status="ERROR",
                sent_items_in_success=0,
                sent_items_in_error=len(request.batch_content),
                message=response.message,
            )
        return response


class RateLimitAsError(_RemapsRetry):
    """Breaks RATE-LIMIT: a 429 becomes a final ERROR, and the next batch follows at once."""

    codes = ("RATE_LIMITED",)


class TransientAsError(_RemapsRetry):
    """Breaks TRANSIENT-5XX: a 5xx or a dropped connection becomes a final ERROR."""

    codes = ("SERVICE_UNAVAILABLE", "CONNECTION_FAILED")


def test_refreshing_before_every_call_fails_token_refresh() -> None:
    evidence = _evidence(Target(connector=EagerRefreshConnector), 0, (TOKEN_EXPIRY,))
    verdict = _verdict("TOKEN-REFRESH", evidence)
    assert verdict.outcome == "failed"
    assert "refresh grants" in verdict.message
    assert verdict.seqs
    assert verdict.run == TOKEN_EXPIRY


def test_answering_error_to_429_fails_rate_limit() -> None:
    evidence = _evidence(Target(connector=RateLimitAsError), 0, RATE_LIMITED)
    verdict = _verdict("RATE-LIMIT", evidence)
    assert verdict.outcome == "failed"
    assert "expected RETRY" in verdict.message
    assert verdict.seqs


def test_answering_error_to_5xx_fails_transient() -> None:
    evidence = _evidence(Target(connector=TransientAsError), 0, TRANSIENT)
    verdict = _verdict("TRANSIENT-5XX", evidence)
    assert verdict.outcome == "failed"
    assert "expected RETRY" in verdict.message
    assert verdict.seqs


def test_ignoring_the_state_fails_state_tamper(monkeypatch: pytest.MonkeyPatch) -> None:
    decode = StateCodec.decode

    def lax(self: StateCodec, token: str) -> OAuthState:
        try:
            return decode(self, token)
        except ValueError:
            return OAuthState(plugin_version_id=PLUGIN_VERSION_ID, issued_at=0, user_id=USER_ID)

    monkeypatch.setattr(StateCodec, "decode", lax)
    evidence = _evidence(Target(), 0, (AUTH,))
    verdict = _verdict("AUTH-STATE-TAMPER", evidence)
    assert verdict.outcome == "failed"
    assert "expected error" in verdict.message
    assert "exchanged the code" in verdict.message


@pytest.mark.parametrize("clause_id", FAULT_CLAUSES)
def test_no_evidence_is_not_exercised_never_passed(clause_id: str) -> None:
    verdict = _verdict(clause_id, Evidence())
    assert verdict.outcome == "skipped", verdict.message
    assert verdict.message.startswith("not exercised")


class NoLogout(ReferenceConnector):
    """Does not implement logout (the SDK answers 400 not_implemented)."""

    async def on_logout(self, request: LogoutRequest) -> LogoutResponse:
        return LogoutResponse(status="not_implemented")


class LogoutAsServerError(ReferenceConnector):
    """Breaks NOT-IMPLEMENTED-OK: an unimplemented logout answers 500 error."""

    async def on_logout(self, request: LogoutRequest) -> LogoutResponse:
        return LogoutResponse(status="error", message="logout is not implemented")


def test_an_unimplemented_route_skips_its_clauses() -> None:
    """The engine, not the check, decides "not implemented" (``Route.not_implemented_by``)."""
    evidence = _evidence(Target(connector=NoLogout), 0, (AUTH,))
    skipped = engine_verdict(get_clause("AUTH-ROUNDTRIP"), evidence, {})
    assert skipped.outcome == "skipped"
    assert "logout" in skipped.message
    assert _verdict("NOT-IMPLEMENTED-OK", evidence).outcome == "passed"
    assert _verdict("AUTH-STATE-TAMPER", evidence).outcome == "passed"


def test_not_implemented_as_a_server_error_fails() -> None:
    evidence = _evidence(Target(connector=LogoutAsServerError), 0, (AUTH,))
    verdict = _verdict("NOT-IMPLEMENTED-OK", evidence)
    assert verdict.outcome == "failed"
    assert "logout" in verdict.message


# ---------------------------------------------------------------------- hand-built evidence
# Each check on a few exchanges (tests/clauses/builder.py): its premise, and its failure.

OK_BATCH = {"status": "OK", "sent_items_in_success": 0, "sent_items_in_error": 0}


FEED_ID = "7001"


def _batch(size: int) -> dict[str, Any]:
    content = [f"item-{i}" for i in range(size)]
    return {"batch_content": content, "ts": 0, "context": {"feed_id": FEED_ID}}


def _batch_answer(status: str, success: int, error: int) -> dict[str, Any]:
    return {"status": status, "sent_items_in_success": success, "sent_items_in_error": error}


def _check(clause_id: str, *runs: RunBuilder) -> Verdict:
    return _verdict(clause_id, evidence(*runs))


# TOKEN-REFRESH


def _expired_upload(run: RunBuilder, *, resend: bool = True, refreshes: int = 1) -> None:
    with run.call("batch_update", _batch(2)) as call:
        ops = run.operations(refused=2)
        run.upload(status=401, error_code="EXPIRED_ACCESS_TOKEN", operations=ops)
        for _ in range(refreshes):
            run.refresh()
        again = ops if resend else run.operations(refused=2)
        accepted = [dataclasses.replace(op, accepted=True) for op in again]
        run.upload(operations=accepted, token="fp-access-2")
        call.answer(200, _batch_answer("OK", 2, 0))


def test_token_refresh_not_exercised_without_a_401() -> None:
    run = RunBuilder()
    with run.call("batch_update", _batch(1)) as call:
        run.refresh()
        run.upload(accepted=1)
        call.answer(200, _batch_answer("OK", 1, 0))
    verdict = _check("TOKEN-REFRESH", run)
    assert verdict.outcome == "skipped"
    assert verdict.message.startswith("not exercised")


def test_token_refresh_passes_one_refresh_and_the_upload_resent() -> None:
    run = RunBuilder()
    _expired_upload(run)
    assert _check("TOKEN-REFRESH", run).outcome == "passed"


def test_token_refresh_in_any_run_fails_without_a_refresh() -> None:
    quiet, run = RunBuilder("quiet"), RunBuilder("user-scenario")
    _expired_upload(run, refreshes=0)
    verdict = _check("TOKEN-REFRESH", quiet, run)
    assert verdict.outcome == "failed"
    assert "0 refresh request(s)" in verdict.message
    assert verdict.run == "user-scenario"


def test_token_refresh_fails_two_refreshes() -> None:
    run = RunBuilder()
    _expired_upload(run, refreshes=2)
    assert "2 refresh request(s)" in _check("TOKEN-REFRESH", run).message


def test_token_refresh_fails_an_operation_never_resent() -> None:
    run = RunBuilder()
    _expired_upload(run, resend=False)
    verdict = _check("TOKEN-REFRESH", run)
    assert verdict.outcome == "failed"
    assert "never re-sent" in verdict.message


def _calls_with_refreshes(run: RunBuilder, calls: int, *, every: int) -> None:
    for index in range(calls):
        with run.call("batch_update", _batch(1)) as call:
            if index % every == 0:
                run.refresh()
            run.upload(accepted=1, token=f"fp-access-{index // every}")
            call.answer(200, _batch_answer("OK", 1, 0))
        run.advance(10)


def test_refreshing_before_each_call_fails_on_every_run_even_without_a_401() -> None:
    run = RunBuilder()
    _calls_with_refreshes(run, 6, every=1)
    verdict = _check("TOKEN-REFRESH", run)
    assert verdict.outcome == "failed"
    assert "refreshes before each call" in verdict.message


def test_an_occasional_early_refresh_is_not_refreshing_before_each_call() -> None:
    run = RunBuilder()
    _calls_with_refreshes(run, 8, every=4)
    assert _check("TOKEN-REFRESH", run).outcome == "skipped"


def test_refreshing_once_the_token_is_half_way_through_its_life_is_proactive() -> None:
    run = RunBuilder()
    for index in range(4):
        with run.call("batch_update", _batch(1)) as call:
            run.refresh()
            run.upload(accepted=1, token=f"fp-access-{index}")
            call.answer(200, _batch_answer("OK", 1, 0))
        run.advance(1800)
    assert _check("TOKEN-REFRESH", run).outcome == "skipped"


def test_a_run_that_grew_is_read_again() -> None:
    run = RunBuilder()
    _expired_upload(run)
    assert _check("TOKEN-REFRESH", run).outcome == "passed"
    _expired_upload(run, refreshes=0)
    assert _check("TOKEN-REFRESH", run).outcome == "failed"


# TOKEN-INVALID-GRANT


def _refused_refresh(run: RunBuilder, answer: dict[str, Any], attempts: int = 1) -> None:
    with run.call("batch_update", _batch(2)) as call:
        for _ in range(attempts):
            run.refresh(status=400, error="invalid_grant")
        call.answer(400 if answer["status"] == "ERROR" else 503, answer)


REAUTH = "re-authentication is needed: the partner refused the refresh token"


def test_invalid_grant_answered_error_naming_reauthentication_passes() -> None:
    run = RunBuilder()
    _refused_refresh(run, {**_batch_answer("ERROR", 0, 2), "message": REAUTH})
    assert _check("TOKEN-INVALID-GRANT", run).outcome == "passed"


def test_invalid_grant_answered_retry_fails() -> None:
    run = RunBuilder()
    _refused_refresh(run, {**_batch_answer("RETRY", 0, 2), "message": REAUTH})
    verdict = _check("TOKEN-INVALID-GRANT", run)
    assert verdict.outcome == "failed"
    assert "expected error" in verdict.message


def test_invalid_grant_with_a_message_that_says_nothing_fails() -> None:
    run = RunBuilder()
    _refused_refresh(run, {**_batch_answer("ERROR", 0, 2), "message": "upload failed"})
    assert "does not say re-authentication" in _check("TOKEN-INVALID-GRANT", run).message


def test_invalid_grant_retried_in_the_same_call_is_a_storm() -> None:
    run = RunBuilder()
    _refused_refresh(run, {**_batch_answer("ERROR", 0, 2), "message": REAUTH}, attempts=3)
    assert "retry storm" in _check("TOKEN-INVALID-GRANT", run).message


def test_a_later_call_that_gets_nothing_from_the_partner_must_say_it_too() -> None:
    run = RunBuilder()
    _refused_refresh(run, {**_batch_answer("ERROR", 0, 2), "message": REAUTH})
    for feed_id in ("7002", FEED_ID):  # another feed's call is not judged, this feed's is
        body = {"feed_id": feed_id, "action": "FETCH_DESTINATION_AUDIENCE"}
        with run.call("troubleshoot", body) as call:
            call.answer(200, {"status": "ok", "data": {}})
        verdict = _check("TOKEN-INVALID-GRANT", run)
        assert verdict.outcome == ("failed" if feed_id == FEED_ID else "passed")
    assert "troubleshoot answered" in verdict.message
    assert verdict.seqs == (call.seq,)


def test_a_status_query_answers_not_authenticated_to_a_refused_token() -> None:
    run = RunBuilder()
    with run.call("authentication_status", {"user_id": "1"}) as call:
        run.refresh(status=400, error="invalid_grant")
        call.answer(200, {"status": "not_authenticated", "data": {"login_url": "x"}})
    assert _check("TOKEN-INVALID-GRANT", run).outcome == "passed"


def test_invalid_grant_not_exercised() -> None:
    assert _check("TOKEN-INVALID-GRANT", RunBuilder()).outcome == "skipped"


# RATE-LIMIT


def _limited_batch(run: RunBuilder, answer: dict[str, Any], delay_ms: str | None) -> None:
    with run.call("batch_update", _batch(2)) as call:
        run.upload(
            status=429,
            error_code="RATE_LIMITED",
            headers={"retry-after": "30"},
            rejected=0,
            accepted=2,
        )
        call.answer(503, answer, {"x-mics-next-msg-delay": delay_ms} if delay_ms else None)


@pytest.mark.parametrize(
    ("wait", "outcome"), [(30, "passed"), (10, "failed")], ids=["after-the-delay", "before"]
)
def test_rate_limit_no_request_before_the_delay_passed(wait: float, outcome: str) -> None:
    run = RunBuilder()
    _limited_batch(run, _batch_answer("RETRY", 0, 2), "30000")
    run.advance(wait)
    with run.call("batch_update", _batch(2)) as call:
        run.upload(accepted=2)
        call.answer(200, _batch_answer("OK", 2, 0))
    verdict = _check("RATE-LIMIT", run)
    assert verdict.outcome == outcome, verdict.message
    assert ("before the delay (30 s) passed" in verdict.message) == (outcome == "failed")


def test_rate_limit_delay_shorter_than_retry_after_fails() -> None:
    run = RunBuilder()
    _limited_batch(run, _batch_answer("RETRY", 0, 2), "1000")
    assert "less than Retry-After" in _check("RATE-LIMIT", run).message


def test_rate_limit_answered_error_fails() -> None:
    run = RunBuilder()
    _limited_batch(run, _batch_answer("ERROR", 0, 2), None)
    assert "expected RETRY" in _check("RATE-LIMIT", run).message


def _limited_connection(run: RunBuilder, *, reread: bool, answer: str) -> None:
    with run.call("external_segment_connection", {"feed_id": "1"}) as call:
        run.segment_read(status=429, error_code="RATE_LIMITED", headers={"retry-after": "30"})
        if reread:
            run.segment_read()
        call.answer(502 if answer == NOT_READY else 500, {"status": answer})


NOT_READY = "external_segment_not_ready_yet"


def test_a_connection_re_reading_the_partner_within_the_call_fails_rate_limit() -> None:
    run = RunBuilder()
    _limited_connection(run, reread=True, answer="ok")
    verdict = _check("RATE-LIMIT", run)
    assert verdict.outcome == "failed"
    assert "within the same external_segment_connection call" in verdict.message


def test_a_connection_answer_is_not_judged_by_rate_limit() -> None:
    run = RunBuilder()
    _limited_connection(run, reread=False, answer="error")
    assert _check("RATE-LIMIT", run).outcome == "passed"


def test_rate_limit_not_exercised() -> None:
    assert _check("RATE-LIMIT", RunBuilder()).outcome == "skipped"


# TRANSIENT-5XX and CONNECT-TRANSIENT


def _failing_batch(run: RunBuilder, status: int | None, answer: str) -> None:
    with run.call("batch_update", _batch(2)) as call:
        run.upload(status=status, error_code="SERVICE_UNAVAILABLE" if status else None, accepted=2)
        call.answer(503 if answer == "RETRY" else 200, _batch_answer(answer, 0, 2))


@pytest.mark.parametrize(("status", "answer"), [(503, "ERROR"), (None, "OK"), (500, "OK")])
def test_transient_failure_of_a_batch_not_answered_retry_fails(
    status: int | None, answer: str
) -> None:
    run = RunBuilder()
    _failing_batch(run, status, answer)
    verdict = _check("TRANSIENT-5XX", run)
    assert verdict.outcome == "failed"
    assert "expected RETRY" in verdict.message


def test_transient_failure_answered_retry_passes() -> None:
    run = RunBuilder()
    _failing_batch(run, None, "RETRY")
    assert _check("TRANSIENT-5XX", run).outcome == "passed"


def test_a_5xx_recovered_within_the_call_is_not_judged() -> None:
    run = RunBuilder()
    with run.call("batch_update", _batch(2)) as call:
        ops = run.operations(refused=2)
        run.upload(status=503, error_code="SERVICE_UNAVAILABLE", operations=ops)
        run.upload(operations=ops)
        call.answer(200, _batch_answer("OK", 2, 0))
    assert _check("TRANSIENT-5XX", run).outcome == "skipped"


def _failing_connection(run: RunBuilder, status: int | None, answer: str) -> None:
    with run.call("external_segment_connection", {"feed_id": "1"}) as call:
        run.segment_read(status=status, error_code="SERVICE_UNAVAILABLE" if status else None)
        call.answer(502 if answer == NOT_READY else 500, {"status": answer})


@pytest.mark.parametrize("status", [503, 429, None])
def test_connect_transient_fails_a_connection_error_on_a_transient_failure(
    status: int | None,
) -> None:
    run = RunBuilder()
    _failing_connection(run, status, "error")
    verdict = _check("CONNECT-TRANSIENT", run)
    assert verdict.outcome == "failed"
    assert NOT_READY in verdict.message
    assert get_clause("CONNECT-TRANSIENT").severity == "warning"
    # the connection's answer is CONNECT-TRANSIENT's alone
    assert _check("TRANSIENT-5XX", run).outcome == "skipped"


def test_connect_transient_passes_not_ready() -> None:
    run = RunBuilder()
    _failing_connection(run, 503, NOT_READY)
    assert _check("CONNECT-TRANSIENT", run).outcome == "passed"


def test_connect_transient_not_exercised_by_a_ready_segment() -> None:
    run = RunBuilder()
    _failing_connection(run, 200, "ok")
    assert _check("CONNECT-TRANSIENT", run).outcome == "skipped"


# PARTIAL-FAILURE


def _split_batch(run: RunBuilder, answer: dict[str, Any]) -> None:
    with run.call("batch_update", _batch(4)) as call:
        run.upload(accepted=1, rejected=1)
        run.upload(accepted=1, rejected=1)
        call.answer(200, answer)


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [(_batch_answer("OK", 2, 2), "passed"), (_batch_answer("RETRY", 0, 4), "skipped")],
    ids=["counts-all-uploads", "retry-not-counted"],
)
def test_a_split_batch_sums_its_uploads(answer: dict[str, Any], outcome: str) -> None:
    run = RunBuilder()
    _split_batch(run, answer)
    assert _check("PARTIAL-FAILURE", run).outcome == outcome


def test_a_split_batch_that_forgets_one_upload_fails() -> None:
    run = RunBuilder()
    _split_batch(run, _batch_answer("OK", 3, 1))
    verdict = _check("PARTIAL-FAILURE", run)
    assert verdict.outcome == "failed"
    assert "in 2 uploads" in verdict.message
    assert "expected 2 / 2" in verdict.message


def test_partial_failure_not_exercised_without_rejections() -> None:
    run = RunBuilder()
    with run.call("batch_update", _batch(2)) as call:
        run.upload(accepted=2)
        call.answer(200, _batch_answer("OK", 2, 0))
    assert _check("PARTIAL-FAILURE", run).outcome == "skipped"


# AUTH-STATE-TAMPER


def _tamper_note(run: RunBuilder, answer: str, *, code_used: bool = False) -> TamperedState:
    with run.call("authentication", {"user_id": USER_ID}) as call:
        call.answer(200 if answer == "ok" else 500, {"status": answer})
    with run.call("authentication_status", {"user_id": USER_ID}) as status:
        status.answer(200, {"status": "authenticated" if code_used else "not_authenticated"})
    return TamperedState(
        answer=Answered(seq=call.seq),
        code_used_before=False,
        code_used=code_used,
        status_after=Answered(seq=status.seq),
    )


def _auth_builder() -> tuple[RunBuilder, AuthNotes]:
    notes = AuthNotes()
    return RunBuilder(AUTH, notes=notes), notes


@pytest.mark.parametrize("accepted", [key for key, _, _ in TAMPERED_STATES])
def test_each_tampered_state_must_be_refused(accepted: str) -> None:
    run, notes = _auth_builder()
    for key, _, _ in TAMPERED_STATES:
        ok = key == accepted
        notes.tampered[key] = _tamper_note(run, "ok" if ok else "error", code_used=ok)
    verdict = _check("AUTH-STATE-TAMPER", run)
    assert verdict.outcome == "failed"
    [what] = [what for key, what, _ in TAMPERED_STATES if key == accepted]
    assert f"with {what}" in verdict.message
    assert "exchanged the code" in verdict.message


def test_an_opaque_state_skips_the_format_aware_tampering_only() -> None:
    run, notes = _auth_builder()
    for key, _, needs_format in TAMPERED_STATES:
        notes.tampered[key] = (
            TamperedState(not_applicable="opaque") if needs_format else _tamper_note(run, "error")
        )
    assert _check("AUTH-STATE-TAMPER", run).outcome == "passed"
    del notes.tampered["tamper_forged"]
    assert "a forged state: not played" in _check("AUTH-STATE-TAMPER", run).message


def test_the_reference_state_is_recognised_and_its_tamperings_refused() -> None:
    codec = StateCodec(StateCodec.generate_key())
    state = codec.issue(plugin_version_id=PLUGIN_VERSION_ID, user_id=USER_ID)
    state_format, tampered = tampered_states(state, random.Random(0))
    assert state_format == "fernet"
    assert set(tampered) == {key for key, _, _ in TAMPERED_STATES}
    for key, value in tampered.items():
        assert value != state, key
        with pytest.raises(InvalidState):
            codec.decode(value)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSIsIm5vbmNlIjoiYWJjZCJ9.c2ln", "jwt"),
        ("eyJ1c2VyX2lkIjoiMSIsImlhdCI6MTAwfQ.deadbeef", "signed-json"),
        ("eyJ1c2VyX2lkIjoiMSIsImlhdCI6MTAwfQ", "json"),
        ("r4nd0m-0paque-t0ken", "opaque"),
    ],
)
def test_state_formats_and_one_field_changed(state: str, expected: str) -> None:
    state_format, tampered = tampered_states(state, random.Random(0))
    assert state_format == expected
    if expected == "opaque":
        assert set(tampered) == {"tamper_altered", "tamper_forged"}
        return
    field, attacker = tampered["tamper_field"], tampered["tamper_attacker"]
    assert len({state, field, attacker}) == 3
    if expected in ("jwt", "signed-json"):
        assert field.rsplit(".", 1)[1] == state.rsplit(".", 1)[1]  # the signature kept
    payload = field.split(".")[1] if expected == "jwt" else field.split(".")[0]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert decoded["user_id"] == "1"  # whom it is for is never the field changed


# NOT-IMPLEMENTED-OK and the auth run


def test_not_implemented_ok_reads_every_run() -> None:
    run = RunBuilder("lifecycle")
    with run.call("logout", {"user_id": USER_ID}) as call:
        call.answer(501, {"status": "error", "message": "not implemented"})
    verdict = _check("NOT-IMPLEMENTED-OK", run)
    assert verdict.outcome == "failed"
    assert verdict.run == "lifecycle"
    assert _check("NOT-IMPLEMENTED-OK", RunBuilder("lifecycle")).outcome == "skipped"


@pytest.mark.parametrize("clause_id", ["AUTH-STATUS", "AUTH-ROUNDTRIP", "DYNAMIC-PROPERTIES"])
def test_the_auth_clauses_are_not_exercised_without_the_auth_run(clause_id: str) -> None:
    assert _check(clause_id, RunBuilder("lifecycle")).outcome == "skipped"


# ---------------------------------------------------------------------- connection under faults


class ConnectionErrorOn5xx(ReferenceConnector):
    """The reference connector, but connection answers error where the partner failed
    transiently (a 5xx, a 429, a drop: what the reference answers not-ready to, except the
    segment provisioning)."""

    async def on_external_segment_connection(
        self, request: ExternalSegmentConnectionRequest, ctx: ReferenceContext
    ) -> ExternalSegmentConnectionResponse:
        response = await super().on_external_segment_connection(request, ctx)
        if response.status == "external_segment_not_ready_yet" and "SEGMENT_NOT_READY" not in (
            response.message or ""
        ):
            return ExternalSegmentConnectionResponse(status="error", message=response.message)
        return response


def test_connection_error_on_a_partner_5xx_fails_connect_transient_alone() -> None:
    evidence = _evidence(Target(connector=ConnectionErrorOn5xx), 0)
    assert evidence[CONNECTION_FAULTS].aborted  # the platform stopped polling
    outcomes = {clause_id: _verdict(clause_id, evidence).outcome for clause_id in FAULT_CLAUSES}
    failed = {clause_id for clause_id, outcome in outcomes.items() if outcome == "failed"}
    assert failed == {"CONNECT-TRANSIENT"}, outcomes
    verdict = _verdict("CONNECT-TRANSIENT", evidence)
    assert verdict.run == CONNECTION_FAULTS
    assert "connection answered HTTP 500 error" in verdict.message
    assert verdict.seqs
