"""The state and rules driven directly, without HTTP (moto's models.py split)."""

from __future__ import annotations

import pytest
from fp_support import sha

from fake_partner import OAuthError, PartnerError, PartnerState, Scenario, VirtualClock


@pytest.fixture
def state() -> PartnerState:
    return PartnerState(Scenario(), VirtualClock())


def test_segment_life_cycle(state: PartnerState) -> None:
    token = state.issue_access_token("feed-harness-client", ["acc-1"])
    segment = state.create_segment(token, "acc-1", "s", None)
    now = state.clock.now
    assert segment.status(now()) == "PROVISIONING"
    with pytest.raises(PartnerError) as caught:
        state.upload(token, segment.id, [("ADD", (("EMAIL_SHA256", sha("a")),))], True)
    assert caught.value.code == "SEGMENT_NOT_READY"
    state.clock.advance(60)
    assert segment.status(now()) == "BUILDING"
    outcome = state.upload(
        token,
        segment.id,
        [("ADD", (("EMAIL_SHA256", sha("a")),)), ("ADD", (("EMAIL_SHA256", "a@b"),))],
        True,
    )
    assert (outcome.received, outcome.accepted, outcome.rejected) == (2, 1, 1)
    assert outcome.codes == [None, "PII_NOT_HASHED"]
    assert segment.status(now()) == "BUILDING"
    state.clock.advance(30)
    segment.settle(now())
    assert segment.status(now()) == "READY"
    assert segment.snapshot is not None
    assert segment.snapshot.input_count == 1
    state.upload(token, segment.id, [("REMOVE", (("EMAIL_SHA256", sha("a")),))], True)
    assert segment.status(now()) == "UPDATING"
    assert segment.members == {}
    assert segment.live_matched == 0


def test_hold_provisioning_counts_calls(state: PartnerState) -> None:
    token = state.issue_access_token("feed-harness-client", ["acc-1"])
    segment = state.create_segment(token, "acc-1", "s", None)
    segment.hold_calls = 2
    state.clock.advance(3600)
    for _ in range(2):
        with pytest.raises(PartnerError, match="provisioning"):
            state.find_segment(token, segment.id, need_ready=True)
    assert state.find_segment(token, segment.id, need_ready=True) is segment


def test_oauth_rules(state: PartnerState) -> None:
    [refresh] = state.refresh_tokens.values()
    client = state.clients[refresh.client_id]
    params = {
        "grant_type": "refresh_token",
        "refresh_token": refresh.token,
        "client_id": client.client_id,
        "client_secret": client.client_secret,
    }
    body, fingerprint = state.token_grant(params)
    assert body["expires_in"] == 3600
    assert fingerprint is not None
    assert fingerprint.startswith("fp-")
    assert state.refresh_count == 1
    refresh.revoked = True
    with pytest.raises(OAuthError) as caught:
        state.token_grant(params)
    assert (caught.value.status, caught.value.error) == (400, "invalid_grant")
    with pytest.raises(OAuthError) as caught:
        state.token_grant({**params, "client_secret": "nope-nope"})
    assert (caught.value.status, caught.value.error) == (401, "invalid_client")


def test_authenticate_and_admit(state: PartnerState) -> None:
    token = state.issue_access_token("feed-harness-client", ["acc-1"])
    assert state.authenticate(f"Bearer {token.token}") is token
    assert state.admit(token)["X-RateLimit-Remaining"] == "599"
    state.clock.advance(3600)
    with pytest.raises(PartnerError) as caught:
        state.authenticate(f"bearer {token.token}")
    assert caught.value.code == "EXPIRED_ACCESS_TOKEN"
    with pytest.raises(PartnerError) as caught:
        state.require_account(token, "acc-2")
    assert (caught.value.status, caught.value.code) == (403, "ACCOUNT_FORBIDDEN")
