"""The partner-fault and authentication clauses: the reference connector passes them on
three seeds; connectors that break the trickiest ones fail them."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.plugin_api import (
    BatchUpdateRequest,
    BatchUpdateResponse,
    LogoutRequest,
    LogoutResponse,
)
from harness.clauses import Verdict, get_clause
from harness.clauses.checks_faults import (
    INVALID_GRANT,
    RATE_LIMIT_RUNS,
    TOKEN_EXPIRY,
    TRANSIENT_RUNS,
)
from harness.clauses.evidence import Evidence
from harness.clauses.runs import RUNS, execute_run
from harness.clauses.runs_faults import (
    AUTH_RUN,
    PLUGIN_VERSION_ID,
    RUN_SPECS,
    USER_ID,
)
from harness.engine import _verdict as engine_verdict
from harness.reference import OAuthState, ReferenceConnector, StateCodec
from harness.reference.config import PartnerCredentials, TechnicalConfig
from harness.reference.core import ReferenceContext
from harness.reference.partner_client import PartnerClient
from harness.targets import Target

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
    partner = {
        name: reference_evidence[name].notes["partner"]
        for name in reference_evidence.runs
        if name.startswith("preset:")
    }
    assert partner[TOKEN_EXPIRY]["answers_401"] >= 1
    assert all(partner[name]["answers_429"] == 3 for name in RATE_LIMIT_RUNS)
    assert all(partner[name]["answers_5xx"] + partner[name]["dropped"] for name in TRANSIENT_RUNS)
    assert partner["preset:mixed-invalid-items"]["operations_rejected"] > 0
    assert partner[INVALID_GRANT]["invalid_grant"] >= 1
    assert reference_evidence["preset:not-ready-for-3-polls"].notes["connection"]["attempts"] == 4
    assert reference_evidence[AUTH_RUN].notes["skipped"] == {}


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
    evidence = _evidence(Target(connector=RateLimitAsError), 0, RATE_LIMIT_RUNS)
    verdict = _verdict("RATE-LIMIT", evidence)
    assert verdict.outcome == "failed"
    assert "expected RETRY" in verdict.message
    assert verdict.seqs


def test_answering_error_to_5xx_fails_transient() -> None:
    evidence = _evidence(Target(connector=TransientAsError), 0, TRANSIENT_RUNS)
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
    evidence = _evidence(Target(), 0, (AUTH_RUN,))
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
    evidence = _evidence(Target(connector=NoLogout), 0, (AUTH_RUN,))
    skipped = engine_verdict(get_clause("AUTH-ROUNDTRIP"), evidence, {})
    assert skipped.outcome == "skipped"
    assert "logout" in skipped.message
    assert _verdict("NOT-IMPLEMENTED-OK", evidence).outcome == "passed"
    assert _verdict("AUTH-STATE-TAMPER", evidence).outcome == "passed"


def test_not_implemented_as_a_server_error_fails() -> None:
    evidence = _evidence(Target(connector=LogoutAsServerError), 0, (AUTH_RUN,))
    verdict = _verdict("NOT-IMPLEMENTED-OK", evidence)
    assert verdict.outcome == "failed"
    assert "logout" in verdict.message
