"""Rate limits per access token and the daily quota per client."""

from __future__ import annotations

import httpx
from fp_support import BASE_URL, bearer, code_of

from fake_partner import Partner, Scenario


def _partner(**knobs: object) -> Partner:
    return Partner(Scenario.model_validate(knobs))


def test_rate_limit_answers_429_with_headers_then_recovers() -> None:
    partner = _partner(rate_limit_per_minute=3)
    token = partner.seed_access_token(["acc-1"])
    with partner.mock(), httpx.Client(base_url=BASE_URL, headers=bearer(token)) as client:
        first = client.get("/v1/accounts")
        assert first.headers["X-RateLimit-Limit"] == "3"
        assert first.headers["X-RateLimit-Remaining"] == "2"
        partner.clock.advance(20)
        assert client.get("/v1/accounts").headers["X-RateLimit-Remaining"] == "1"
        assert client.get("/v1/accounts").headers["X-RateLimit-Remaining"] == "0"
        partner.clock.advance(10)
        limited = client.get("/v1/accounts")
        assert limited.status_code == 429
        assert code_of(limited) == "RATE_LIMITED"
        assert limited.headers["Retry-After"] == "30"
        assert limited.headers["X-RateLimit-Limit"] == "3"
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        assert limited.headers["X-RateLimit-Reset"] == "30"
        partner.clock.advance(29)
        assert client.get("/v1/accounts").status_code == 429
        partner.clock.advance(1)
        assert client.get("/v1/accounts").status_code == 200


def test_rate_limit_is_per_access_token() -> None:
    partner = _partner(rate_limit_per_minute=1)
    one, two = (partner.seed_access_token(["acc-1"]) for _ in range(2))
    with partner.mock(), httpx.Client(base_url=BASE_URL) as client:
        assert client.get("/v1/accounts", headers=bearer(one)).status_code == 200
        assert client.get("/v1/accounts", headers=bearer(one)).status_code == 429
        assert client.get("/v1/accounts", headers=bearer(two)).status_code == 200


def test_rate_limit_without_headers() -> None:
    partner = _partner(rate_limit_per_minute=1, send_rate_limit_headers=False)
    token = partner.seed_access_token(["acc-1"])
    with partner.mock(), httpx.Client(base_url=BASE_URL, headers=bearer(token)) as client:
        ok = client.get("/v1/accounts")
        assert "X-RateLimit-Limit" not in ok.headers
        limited = client.get("/v1/accounts")
        assert limited.status_code == 429
        assert code_of(limited) == "RATE_LIMITED"
        for header in (
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ):
            assert header not in limited.headers


def test_oauth_is_not_rate_limited() -> None:
    partner = _partner(rate_limit_per_minute=1)
    credentials = partner.credentials
    with partner.mock(), httpx.Client(base_url=BASE_URL) as client:
        for _ in range(3):
            answer = client.post(
                "/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": credentials.refresh_token,
                    "client_id": credentials.client_id,
                    "client_secret": credentials.client_secret,
                },
            )
            assert answer.status_code == 200


def test_daily_quota_is_per_client_and_resets_at_midnight() -> None:
    partner = _partner(daily_quota=2)
    tokens = [partner.seed_access_token(["acc-1"]) for _ in range(2)]
    with partner.mock(), httpx.Client(base_url=BASE_URL) as client:
        assert client.get("/v1/accounts", headers=bearer(tokens[0])).status_code == 200
        assert client.get("/v1/accounts", headers=bearer(tokens[1])).status_code == 200
        partner.clock.advance(1800)
        exhausted = client.get("/v1/accounts", headers=bearer(tokens[0]))
        assert exhausted.status_code == 429
        assert code_of(exhausted) == "QUOTA_EXHAUSTED"
        assert exhausted.headers["Retry-After"] == str(86400 - 1800)
        other_client = partner.seed_client()
        other = partner.seed_access_token(["acc-1"], client_id=other_client.client_id)
        assert client.get("/v1/accounts", headers=bearer(other)).status_code == 200
        partner.clock.advance(86400 - 1800 - 1)
        late = partner.seed_access_token(["acc-1"])
        assert client.get("/v1/accounts", headers=bearer(late)).status_code == 429
        partner.clock.advance(1)
        assert client.get("/v1/accounts", headers=bearer(late)).status_code == 200
