"""The LinkedIn face: DMP segments as LinkedIn's Marketing API answers them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from dialect_support import LINKEDIN_HEADERS, LinkedInClient
from fp_support import sha

from fake_partner import Partner, Scenario, VirtualClock

BASE = "https://api.linkedin.test"


@pytest.fixture
def partner() -> Partner:
    return Partner(clock=VirtualClock(), dialect="linkedin")


@pytest.fixture
def li(partner: Partner) -> Iterator[LinkedInClient]:
    with partner.mock(BASE), httpx.Client(base_url=BASE) as http:
        yield LinkedInClient(http, partner)


def _error_keys(answer: httpx.Response) -> set[str]:
    return set(answer.json())


def test_dialect_info_and_defaults(partner: Partner) -> None:
    info = partner.dialect_info()
    assert (info["dialect"], info["api_version"], info["base_path"]) == (
        "linkedin",
        "202601",
        "/rest",
    )
    scenario = partner.effective_scenario
    assert scenario.access_token_lifetime == 60 * 86400
    assert scenario.provisioning_delay == 5
    assert scenario.limits.max_operations == 5_000


def test_a_scenario_value_wins_over_the_dialect_default() -> None:
    partner = Partner(
        Scenario(provisioning_delay=0, limits={"max_operations": 10}), dialect="linkedin"
    )
    assert partner.effective_scenario.provisioning_delay == 0
    assert partner.effective_scenario.limits.max_operations == 10
    assert partner.effective_scenario.access_token_lifetime == 60 * 86400


def test_three_legged_oauth_then_refresh(li: LinkedInClient, partner: Partner) -> None:
    client = partner.credentials
    consent = li.http.get(
        "/oauth/v2/authorization",
        params={
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": "https://connector.test/cb",
            "state": "xyz",
            "scope": "rw_dmp_segments",
        },
    )
    assert consent.status_code == 302
    query = parse_qs(urlsplit(consent.headers["Location"]).query)
    assert query["state"] == ["xyz"]
    exchanged = li.http.post(
        "/oauth/v2/accessToken",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": "https://connector.test/cb",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        },
    )
    body = exchanged.json()
    assert exchanged.status_code == 200
    assert body["expires_in"] == 60 * 86400
    assert body["refresh_token_expires_in"] == 365 * 86400
    partner.clock.advance(86400)
    refreshed = li.http.post(
        "/oauth/v2/accessToken",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        },
    )
    again = refreshed.json()
    assert refreshed.status_code == 200
    assert again["refresh_token"] == body["refresh_token"]
    assert again["refresh_token_expires_in"] == 364 * 86400
    assert again["access_token"] != body["access_token"]
    refused = li.http.post(
        "/oauth/v2/accessToken",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "rt-unknown-token",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        },
    )
    assert refused.status_code == 400
    assert set(refused.json()) == {"error", "error_description"}
    assert refused.json()["error"] == "invalid_grant"
    entries = partner.ledger.entries
    assert [e.route for e in entries] == [
        "GET /oauth/authorize",
        "POST /oauth/token",
        "POST /oauth/token",
        "POST /oauth/token",
    ]
    assert entries[-1].signal == "invalid_grant"
    assert all(body["refresh_token"] not in json.dumps(e.to_json()) for e in entries)


def test_create_answers_201_with_the_id_in_headers(li: LinkedInClient, partner: Partner) -> None:
    token = li.login()
    created = li.create(token, "buyers")
    assert created.status_code == 201
    assert created.content == b""
    identifier = created.headers["x-restli-id"]
    assert created.headers["Location"] == f"/rest/dmpSegments/{identifier}"
    shown = li.get(token, identifier).json()
    assert shown["id"] == int(identifier)
    assert shown["account"] == "urn:li:sponsoredAccount:acc-1"
    assert shown["status"] == "PROCESSING"
    assert shown["destinations"] == [{"destination": "LINKEDIN", "status": "PROCESSING"}]
    entry = partner.ledger.entries[-2]
    assert (entry.route, entry.dialect_route, entry.account_id, entry.segment_id) == (
        "POST /v1/accounts/{account_id}/segments",
        "POST /rest/dmpSegments",
        "acc-1",
        "seg-000001",
    )


def test_users_answer_404_until_ready_then_element_by_element(
    li: LinkedInClient, partner: Partner
) -> None:
    token = li.login()
    segment = li.created_id(li.create(token, "s"))
    good, raw = sha("a@x.test"), "a@x.test"
    early = li.upload(token, segment, [good])
    assert early.status_code == 404
    assert set(early.json()) == {"status", "serviceErrorCode", "code", "message"}
    assert "seg-" not in early.json()["message"]
    partner.clock.advance(5)
    answer = li.http.post(
        f"/rest/dmpSegments/{segment}/users",
        headers={**li.headers(token), "X-RestLi-Method": "BATCH_CREATE"},
        json={
            "elements": [
                {"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", "idValue": good}]},
                {"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", "idValue": raw}]},
                {
                    "action": "ADD",
                    "userIds": [
                        {"idType": "GOOGLE_AID", "idValue": "38400000-8cf0-11bd-b23e-10b96e40000d"}
                    ],
                },
                {"action": "ADD", "userIds": [{"idType": "ACXIOM_ID", "idValue": "123"}]},
                {"action": "REMOVE", "userIds": [{"idType": "SHA256_EMAIL", "idValue": good}]},
            ]
        },
    )
    assert answer.status_code == 200
    elements = answer.json()["elements"]
    assert [e["status"] for e in elements] == [201, 400, 201, 400, 201]
    assert raw not in answer.text
    entry = partner.ledger.entries[-1]
    assert [op.code for op in entry.operations] == [
        None,
        "PII_NOT_HASHED",
        None,
        "UNSUPPORTED_IDENTIFIER_TYPE",
        None,
    ]
    assert entry.operations[2].identifiers == (("MAID", "38400000-8cf0-11bd-b23e-10b96e40000d"),)
    assert entry.signal == "per_item"
    assert partner.members("seg-000001") == {("MAID", "38400000-8cf0-11bd-b23e-10b96e40000d")}


def test_users_need_batch_create(li: LinkedInClient, partner: Partner) -> None:
    token = li.login()
    segment = li.created_id(li.create(token, "s"))
    partner.clock.advance(5)
    answer = li.http.post(
        f"/rest/dmpSegments/{segment}/users",
        headers=li.headers(token),
        json={"elements": [{"action": "ADD", "userIds": []}]},
    )
    assert answer.status_code == 400
    assert "BATCH_CREATE" in answer.json()["message"]


def test_more_elements_than_the_limit_refuse_the_whole_request(
    li: LinkedInClient, partner: Partner
) -> None:
    partner.set_scenario(Scenario(limits={"max_operations": 3}))
    token = li.login()
    segment = li.created_id(li.create(token, "s"))
    partner.clock.advance(5)
    answer = li.upload(token, segment, [sha(str(i)) for i in range(4)])
    assert answer.status_code == 400
    assert answer.json()["code"] == "BAD_REQUEST"
    assert partner.ledger.entries[-1].error_code == "TOO_MANY_OPERATIONS"
    assert partner.members("seg-000001") == frozenset()


def test_default_limit_is_5000_elements(li: LinkedInClient, partner: Partner) -> None:
    token = li.login()
    segment = li.created_id(li.create(token, "s"))
    partner.clock.advance(5)
    assert li.upload(token, segment, [sha(str(i)) for i in range(5_000)]).status_code == 200
    refused = li.upload(token, segment, [sha(str(i)) for i in range(5_001)])
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"X-Restli-Protocol-Version": "2.0.0"}, 400, "VERSION_MISSING"),
        ({"LinkedIn-Version": "202001", "X-Restli-Protocol-Version": "2.0.0"}, 426, None),
        ({"LinkedIn-Version": "202601"}, 400, "INVALID_PROTOCOL_VERSION"),
    ],
)
def test_version_headers_are_required(
    li: LinkedInClient, partner: Partner, headers: dict[str, str], status: int, code: str | None
) -> None:
    token = li.login()
    answer = li.http.get(
        "/rest/dmpSegments",
        params={"q": "account", "account": "urn:li:sponsoredAccount:acc-1"},
        headers={"Authorization": f"Bearer {token}", **headers},
    )
    assert answer.status_code == status
    body = answer.json()
    assert body["status"] == status
    assert body["code"] == (code or "NONEXISTENT_VERSION")
    assert partner.ledger.entries[-1].signal == "permanent"


def test_listing_pages_with_start_and_count(li: LinkedInClient, partner: Partner) -> None:
    token = li.login()
    for name in ("a", "b", "c"):
        li.create(token, name)
    page = li.http.get(
        "/rest/dmpSegments",
        params={
            "q": "account",
            "account": "urn:li:sponsoredAccount:acc-1",
            "start": "1",
            "count": "1",
        },
        headers=li.headers(token),
    ).json()
    assert [e["name"] for e in page["elements"]] == ["b"]
    assert page["paging"] == {"start": 1, "count": 1, "total": 3, "links": []}
    forbidden = li.http.get(
        "/rest/dmpSegments",
        params={"q": "account", "account": "urn:li:sponsoredAccount:acc-2"},
        headers=li.headers(token),
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "ACCESS_DENIED"
    assert partner.ledger.entries[-1].error_code == "ACCOUNT_FORBIDDEN"


def test_expired_and_missing_tokens_render_linkedin_401s(
    li: LinkedInClient, partner: Partner
) -> None:
    token = li.login()
    partner.clock.advance(60 * 86400)
    expired = li.get(token, "1000001")
    assert expired.status_code == 401
    assert (expired.json()["code"], expired.json()["serviceErrorCode"]) == (
        "EXPIRED_ACCESS_TOKEN",
        65602,
    )
    missing = li.http.get("/rest/dmpSegments/1000001", headers=LINKEDIN_HEADERS)
    assert missing.json()["code"] == "INVALID_ACCESS_TOKEN"


def test_real_throttling_is_a_429_without_retry_after(li: LinkedInClient, partner: Partner) -> None:
    partner.set_scenario(Scenario(rate_limit_per_minute=2))
    token = li.login()
    for _ in range(2):
        li.get(token, "1000001")
    limited = li.get(token, "1000001")
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    entry = partner.ledger.entries[-1]
    assert (entry.signal, entry.retry_after, entry.dialect_code) == (
        "throttled",
        None,
        "TOO_MANY_REQUESTS",
    )


def test_counts_shown_are_what_a_read_shows(li: LinkedInClient, partner: Partner) -> None:
    """``Partner.counts_shown`` (what TROUBLESHOOT-AUDIENCE compares a connector's answer
    with) gives LinkedIn's own count fields, exactly as a read of the segment shows them:
    none before processing, inputCount / matchedCount / audienceSize after; no match rate."""
    token = li.login()
    segment = li.created_id(li.create(token, "s"))
    count_keys = {"inputCount", "matchedCount", "audienceSize"}

    def read() -> dict[str, Any]:
        shown = li.http.get(f"/rest/dmpSegments/{segment}", headers=li.headers(token)).json()
        return {k: v for k, v in shown.items() if k in count_keys}

    assert partner.counts_shown(partner.segment("seg-000001")) == read() == {}
    partner.clock.advance(5)
    elements = [
        {"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", "idValue": sha(f"u{i}@x.test")}]}
        for i in range(1_000)
    ]
    li.http.post(
        f"/rest/dmpSegments/{segment}/users",
        headers={**li.headers(token), "X-RestLi-Method": "BATCH_CREATE"},
        json={"elements": elements},
    )
    partner.clock.advance(3_600)
    assert partner.counts_shown(partner.segment("seg-000001")) == read()
    assert set(read()) >= {"inputCount", "matchedCount"}
