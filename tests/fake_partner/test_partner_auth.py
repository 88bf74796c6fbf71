"""OAuth and access control through HTTP: tokens, lifetimes, codes, accounts."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fp_support import bearer, code_of, create_segment, refresh

from fake_partner import Partner, Scenario
from fake_partner.faults import FaultRule, RevokeTokenEffect

REDIRECT = "https://connector.example/callback"


def _grant(client: httpx.Client, partner: Partner, **fields: str) -> httpx.Response:
    credentials = partner.credentials
    data = {
        "grant_type": "refresh_token",
        "refresh_token": credentials.refresh_token,
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
    }
    data.update(fields)
    return client.post("/oauth/token", data=data)


def test_refresh_grant_answers_a_bearer_token(client: httpx.Client, partner: Partner) -> None:
    answer = _grant(client, partner)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert answer.headers["Cache-Control"] == "no-store"
    assert client.get("/v1/accounts", headers=bearer(body["access_token"])).status_code == 200


def test_refresh_grant_accepts_json_and_basic_auth(client: httpx.Client, partner: Partner) -> None:
    credentials = partner.credentials
    as_json = client.post(
        "/oauth/token",
        json={
            "grant_type": "refresh_token",
            "refresh_token": credentials.refresh_token,
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        },
    )
    assert as_json.status_code == 200
    basic = base64.b64encode(f"{credentials.client_id}:{credentials.client_secret}".encode())
    as_basic = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": credentials.refresh_token},
        headers={"Authorization": f"Basic {basic.decode()}"},
    )
    assert as_basic.status_code == 200


@pytest.mark.parametrize(
    "fields", [{"client_id": "nobody"}, {"client_secret": "wrong-secret"}, {"client_secret": ""}]
)
def test_invalid_client_is_401_in_oauth_shape(
    client: httpx.Client, partner: Partner, fields: dict[str, str]
) -> None:
    answer = _grant(client, partner, **fields)
    assert answer.status_code == 401
    body = answer.json()
    assert body["error"] == "invalid_client"
    assert set(body) == {"error", "error_description"}


def test_invalid_grant_is_400_in_oauth_shape(client: httpx.Client, partner: Partner) -> None:
    answer = _grant(client, partner, refresh_token="rt-not-a-real-one")
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_grant"
    assert isinstance(body["error_description"], str)
    assert set(body) == {"error", "error_description"}


def test_unknown_grant_type(client: httpx.Client, partner: Partner) -> None:
    answer = _grant(client, partner, grant_type="password")
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


def test_access_token_expires_after_its_lifetime(client: httpx.Client, partner: Partner) -> None:
    token = refresh(client, partner)
    partner.clock.advance(3599)
    assert client.get("/v1/accounts", headers=bearer(token)).status_code == 200
    partner.clock.advance(1)
    expired = client.get("/v1/accounts", headers=bearer(token))
    assert expired.status_code == 401
    assert code_of(expired) == "EXPIRED_ACCESS_TOKEN"
    fresh = refresh(client, partner)
    assert client.get("/v1/accounts", headers=bearer(fresh)).status_code == 200


def test_missing_or_unknown_token_is_invalid(client: httpx.Client) -> None:
    missing = client.get("/v1/accounts")
    assert missing.status_code == 401
    assert code_of(missing) == "INVALID_ACCESS_TOKEN"
    unknown = client.get("/v1/accounts", headers=bearer("at-forged"))
    assert code_of(unknown) == "INVALID_ACCESS_TOKEN"
    basic = client.get("/v1/accounts", headers={"Authorization": "Basic eDp5"})
    assert code_of(basic) == "INVALID_ACCESS_TOKEN"


def test_revoked_token(clock: object) -> None:
    partner = Partner(
        Scenario(faults=(FaultRule(path="/v1/accounts", nth=2, effect=RevokeTokenEffect()),))
    )
    with partner.mock(), httpx.Client(base_url="https://partner.test") as client:
        token = refresh(client, partner)
        assert client.get("/v1/accounts", headers=bearer(token)).status_code == 200
        revoked = client.get("/v1/accounts", headers=bearer(token))
        assert revoked.status_code == 401
        assert code_of(revoked) == "REVOKED_ACCESS_TOKEN"
        assert code_of(client.get("/v1/accounts", headers=bearer(token))) == "REVOKED_ACCESS_TOKEN"


def test_refreshing_does_not_extend_the_refresh_token(
    client: httpx.Client, partner: Partner
) -> None:
    refresh_token = partner.seed_refresh_token(["acc-1"], expires_in=1000)
    partner.clock.advance(999)
    token = refresh(client, partner, refresh_token)
    assert client.get("/v1/accounts", headers=bearer(token)).status_code == 200
    partner.clock.advance(1)
    answer = _grant(client, partner, refresh_token=refresh_token)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert "expired" in answer.json()["error_description"]


def test_default_refresh_token_lives_365_days(client: httpx.Client, partner: Partner) -> None:
    partner.clock.advance(365 * 86400 - 1)
    assert _grant(client, partner).status_code == 200
    partner.clock.advance(1)
    assert _grant(client, partner).json()["error"] == "invalid_grant"


def _consent(client: httpx.Client, partner: Partner, state: str = "s t&=ä") -> dict[str, str]:
    answer = client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": partner.credentials.client_id,
            "redirect_uri": REDIRECT,
            "state": state,
        },
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return query


def _exchange(
    client: httpx.Client, partner: Partner, code: str, redirect: str = REDIRECT
) -> httpx.Response:
    credentials = partner.credentials
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        },
    )


def test_consent_redirects_with_code_and_state_unchanged(
    client: httpx.Client, partner: Partner
) -> None:
    query = _consent(client, partner)
    assert query["state"] == "s t&=ä"
    answer = _exchange(client, partner, query["code"])
    assert answer.status_code == 200
    body = answer.json()
    assert {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_token_expires_in",
    } <= set(body)
    assert body["refresh_token_expires_in"] == 365 * 86400
    assert client.get("/v1/accounts", headers=bearer(body["access_token"])).status_code == 200
    again = refresh(client, partner, body["refresh_token"])
    assert client.get("/v1/accounts", headers=bearer(again)).status_code == 200


def test_authorization_code_is_single_use(client: httpx.Client, partner: Partner) -> None:
    code = _consent(client, partner)["code"]
    assert _exchange(client, partner, code).status_code == 200
    reused = _exchange(client, partner, code)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


def test_authorization_code_lives_10_minutes(client: httpx.Client, partner: Partner) -> None:
    code = _consent(client, partner)["code"]
    partner.clock.advance(600)
    late = _exchange(client, partner, code)
    assert late.json()["error"] == "invalid_grant"
    code = _consent(client, partner)["code"]
    partner.clock.advance(599)
    assert _exchange(client, partner, code).status_code == 200


def test_authorization_code_needs_the_same_redirect_uri(
    client: httpx.Client, partner: Partner
) -> None:
    code = _consent(client, partner)["code"]
    assert (
        _exchange(client, partner, code, "https://other.example/cb").json()["error"]
        == "invalid_grant"
    )
    assert _exchange(client, partner, code).status_code == 200


def test_authorize_refuses_unknown_client_and_bad_redirect(client: httpx.Client) -> None:
    unknown = client.get(
        "/oauth/authorize",
        params={"response_type": "code", "client_id": "nobody", "redirect_uri": REDIRECT},
    )
    assert unknown.status_code == 400
    assert code_of(unknown) == "INVALID_CLIENT"
    bad = client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": "feed-harness-client",
            "redirect_uri": "ftp://evil.example/",
        },
    )
    assert code_of(bad) == "INVALID_REDIRECT_URI"


def test_authorize_with_wrong_response_type_redirects_an_error(client: httpx.Client) -> None:
    answer = client.get(
        "/oauth/authorize",
        params={
            "response_type": "token",
            "client_id": "feed-harness-client",
            "redirect_uri": REDIRECT,
            "state": "abc",
        },
    )
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query == {"error": ["unsupported_response_type"], "state": ["abc"]}


def test_token_reaches_only_its_accounts(client: httpx.Client, partner: Partner) -> None:
    token = refresh(client, partner)
    accounts = client.get("/v1/accounts", headers=bearer(token)).json()["accounts"]
    assert accounts == [{"id": "acc-1", "name": "Account One", "currency": "EUR"}]
    other = client.post("/v1/accounts/acc-2/segments", headers=bearer(token), json={"name": "x"})
    assert other.status_code == 403
    assert code_of(other) == "ACCOUNT_FORBIDDEN"
    missing = client.get("/v1/accounts/acc-404/segments", headers=bearer(token))
    assert code_of(missing) == "ACCOUNT_FORBIDDEN"
    both = partner.seed_access_token(["acc-1", "acc-2"])
    foreign = create_segment(client, both, "theirs", account="acc-2")
    partner.clock.advance(60)
    for answer in (
        client.get(f"/v1/segments/{foreign}", headers=bearer(token)),
        client.post(
            f"/v1/segments/{foreign}/members",
            headers=bearer(token),
            json={
                "operations": [{"action": "ADD", "identifiers": [{"type": "MAID", "value": "x"}]}]
            },
        ),
        client.delete(f"/v1/segments/{foreign}", headers=bearer(token)),
    ):
        assert answer.status_code == 403
        assert code_of(answer) == "ACCOUNT_FORBIDDEN"
    assert partner.segment_ids() == [foreign]
    assert len(partner.ledger.forbidden()) == 5
