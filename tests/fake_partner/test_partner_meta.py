"""The Meta face: Custom Audiences as Meta's Marketing API (Graph) answers them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from dialect_support import MetaClient
from fp_support import sha

from fake_partner import Partner, Scenario, VirtualClock

BASE = "https://graph.facebook.test"
MAID = "38400000-8cf0-11bd-b23e-10b96e40000d"


@pytest.fixture
def partner() -> Partner:
    return Partner(Scenario(partner="meta"), clock=VirtualClock())


@pytest.fixture
def meta(partner: Partner) -> Iterator[MetaClient]:
    with partner.mock(BASE), httpx.Client(base_url=BASE) as http:
        yield MetaClient(http, partner)


def _error(answer: httpx.Response) -> dict[str, object]:
    body = answer.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict)
    assert error["type"] in ("OAuthException", "GraphMethodException")
    assert isinstance(error["fbtrace_id"], str)
    return error


def test_the_scenario_key_chooses_meta(partner: Partner) -> None:
    assert partner.dialect == "meta"
    assert partner.dialect_info()["base_path"] == "/v25.0"
    assert partner.effective_scenario.provisioning_delay == 0


def test_create_allows_duplicate_names_and_reads_fields(meta: MetaClient, partner: Partner) -> None:
    token = meta.login()
    first = meta.created_id(meta.create(token, "buyers"))
    second = meta.created_id(meta.create(token, "buyers"))
    assert first != second
    assert first.isdigit()
    assert len(first) == 17
    shown = meta.http.get(
        f"/v25.0/{first}",
        params={
            "access_token": token,
            "fields": "name,approximate_count_lower_bound,approximate_count_upper_bound,"
            "operation_status,delivery_status",
        },
    ).json()
    assert shown["id"] == first
    assert shown["name"] == "buyers"
    assert shown["approximate_count_lower_bound"] == -1
    assert set(shown["operation_status"]) == {"code", "description"}
    assert shown["delivery_status"]["code"] == 300
    only_id = meta.http.get(f"/v25.0/{first}", params={"access_token": token}).json()
    assert only_id == {"id": first}
    unknown = meta.http.get(f"/v25.0/{first}", params={"access_token": token, "fields": "x"})
    assert _error(unknown)["code"] == 100


def test_add_and_remove_answer_counts_only(meta: MetaClient, partner: Partner) -> None:
    token = meta.login()
    audience = meta.created_id(meta.create(token, "s"))
    payload = {
        "schema": ["EMAIL_SHA256", "MADID"],
        "data": [[sha("a"), MAID], ["raw@example.test", ""], [sha("b"), ""]],
    }
    session = {"session_id": 42, "batch_seq": 1, "last_batch_flag": True, "estimated_num_total": 3}
    added = meta.http.post(
        f"/v25.0/{audience}/users",
        data={"payload": json.dumps(payload), "session": json.dumps(session)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert added.status_code == 200
    body = added.json()
    assert body["audience_id"] == audience
    assert body["session_id"] == 42
    assert (body["num_received"], body["num_invalid_entries"]) == (3, 1)
    assert "raw@example.test" not in added.text
    entry = partner.ledger.entries[-1]
    assert entry.route == "POST /v1/segments/{segment_id}/members"
    assert entry.dialect_route == "POST /v{version}/{id}/users"
    assert [op.code for op in entry.operations] == [None, "PII_NOT_HASHED", None]
    assert entry.operations[0].identifiers == (("EMAIL_SHA256", sha("a")), ("MAID", MAID))
    assert ("EMAIL_SHA256", "raw@example.test") in partner.ledger.values_seen()
    assert entry.signal == "per_item"
    removed = meta.http.request(
        "DELETE",
        f"/v25.0/{audience}/users",
        params={
            "access_token": token,
            "payload": json.dumps({"schema": "EMAIL_SHA256", "data": [sha("b")]}),
        },
    )
    assert removed.json()["num_received"] == 1
    assert partner.members("seg-000001") == {("EMAIL_SHA256", sha("a")), ("MAID", MAID)}
    assert partner.ledger.entries[-1].operations[0].action == "REMOVE"
    as_json = meta.http.post(
        f"/v25.0/{audience}/users",
        json={"payload": {"schema": "EMAIL", "data": [[sha("c")]]}, "access_token": token},
    )
    assert as_json.json()["num_invalid_entries"] == 0
    assert token not in json.dumps(partner.ledger.to_json())


def test_more_than_10000_rows_is_code_100(meta: MetaClient, partner: Partner) -> None:
    token = meta.login()
    audience = meta.created_id(meta.create(token, "s"))
    assert meta.upload(token, audience, [sha(str(i)) for i in range(10_000)]).status_code == 200
    refused = meta.upload(token, audience, [sha(str(i)) for i in range(10_001)])
    assert refused.status_code == 400
    assert _error(refused)["code"] == 100
    assert partner.ledger.entries[-1].accepted == 0
    assert len(partner.members("seg-000001")) == 10_000


@pytest.mark.parametrize("version", ["v17.0", "v99.0"])
def test_an_unknown_version_is_2635(meta: MetaClient, version: str) -> None:
    token = meta.login()
    answer = meta.http.get(f"/{version}/act_acc-1/customaudiences", params={"access_token": token})
    assert answer.status_code == 400
    assert _error(answer)["code"] == 2635
    assert meta.partner.ledger.entries[-1].dialect_code == "2635"


def test_tokens_expire_and_revoke_for_good(meta: MetaClient, partner: Partner) -> None:
    token = meta.login()
    partner.clock.advance(60 * 86400)
    expired = meta.create(token, "s")
    assert (_error(expired)["code"], _error(expired)["error_subcode"]) == (190, 463)
    # no refresh grant: an expired token is dead for good, like a revoked one
    assert partner.ledger.entries[-1].signal == "revoked_token"
    missing = meta.http.get("/v25.0/act_acc-1/customaudiences")
    assert _error(missing)["code"] == 104
    unknown = meta.http.get("/v25.0/act_acc-1/customaudiences", params={"access_token": "nope"})
    assert (_error(unknown)["code"], _error(unknown)["error_subcode"]) == (190, 467)
    fresh = meta.login()
    partner.backend.access_tokens[fresh].revoked = True
    revoked = meta.create(fresh, "s")
    assert (_error(revoked)["code"], _error(revoked)["error_subcode"]) == (190, 460)
    assert partner.ledger.entries[-1].signal == "revoked_token"


def test_code_exchange_gives_a_long_lived_token_and_no_refresh_token(
    meta: MetaClient, partner: Partner
) -> None:
    client = partner.credentials
    consent = meta.http.get(
        "/v25.0/dialog/oauth",
        params={
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": "https://connector.test/cb",
            "state": "s1",
        },
    )
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    exchanged = meta.http.get(
        "/v25.0/oauth/access_token",
        params={
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "redirect_uri": "https://connector.test/cb",
            "code": code,
        },
    )
    body = exchanged.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["expires_in"] == 60 * 86400
    assert meta.created_id(meta.create(body["access_token"], "s"))
    reused = meta.http.get(
        "/v25.0/oauth/access_token",
        params={
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "redirect_uri": "https://connector.test/cb",
            "code": code,
        },
    )
    assert reused.status_code == 400
    assert _error(reused)["code"] == 100
    assert partner.ledger.entries[-1].signal == "invalid_grant"


def test_real_throttling_is_80003_with_minutes_to_wait(meta: MetaClient, partner: Partner) -> None:
    partner.set_scenario(Scenario(partner="meta", rate_limit_per_minute=1))
    token = meta.login()
    meta.created_id(meta.create(token, "s"))
    limited = meta.create(token, "t")
    assert limited.status_code == 400
    assert _error(limited)["code"] == 80003
    usage = json.loads(limited.headers["X-Business-Use-Case-Usage"])
    assert usage["acc-1"][0]["estimated_time_to_regain_access"] == 1
    assert partner.ledger.entries[-1].retry_after == 60


def test_another_accounts_audience_is_a_403_permission_error(
    meta: MetaClient, partner: Partner
) -> None:
    other = partner.create_segment("acc-2", "theirs", ready=True)
    token = meta.login()
    answer = meta.http.get(f"/v25.0/2385{int(other[4:]):013d}", params={"access_token": token})
    assert answer.status_code == 403
    assert _error(answer)["code"] == 200
    assert partner.ledger.forbidden()[-1].error_code == "ACCOUNT_FORBIDDEN"


def test_delete_audience(meta: MetaClient, partner: Partner) -> None:
    token = meta.login()
    audience = meta.created_id(meta.create(token, "s"))
    gone = meta.http.delete(f"/v25.0/{audience}", params={"access_token": token})
    assert gone.json() == {"success": True}
    again = meta.http.get(f"/v25.0/{audience}", params={"access_token": token})
    assert (_error(again)["code"], _error(again)["error_subcode"]) == (100, 33)


def test_counts_shown_are_what_a_read_shows(meta: MetaClient, partner: Partner) -> None:
    """``Partner.counts_shown`` (what TROUBLESHOOT-AUDIENCE compares a connector's answer
    with) names and values Meta's size bounds exactly as a read of the audience gives them,
    before processing (-1) and after; no match rate."""
    token = meta.login()
    audience = meta.created_id(meta.create(token, "s"))
    fields = "approximate_count_lower_bound,approximate_count_upper_bound"

    def read() -> dict[str, Any]:
        shown = meta.http.get(
            f"/v25.0/{audience}", params={"access_token": token, "fields": fields}
        )
        return {k: v for k, v in shown.json().items() if k != "id"}

    assert partner.counts_shown(partner.segment("seg-000001")) == read()
    assert read()["approximate_count_lower_bound"] == -1
    rows = [[sha(f"user-{i}@x.test")] for i in range(1_000)]
    meta.http.post(
        f"/v25.0/{audience}/users",
        json={"payload": {"schema": "EMAIL_SHA256", "data": rows}, "access_token": token},
    )
    partner.clock.advance(3_600)
    assert partner.counts_shown(partner.segment("seg-000001")) == read()
    assert read()["approximate_count_lower_bound"] > 0


def test_me_adaccounts_lists_the_accounts_the_token_reaches(
    meta: MetaClient, partner: Partner
) -> None:
    token = meta.login()
    shown = meta.http.get("/v25.0/me/adaccounts", params={"access_token": token})
    assert shown.status_code == 200
    data = shown.json()["data"]
    assert [a["account_id"] for a in data] == ["acc-1"]
    assert data[0]["id"] == "act_acc-1"
    entry = partner.ledger.entries[-1]
    assert (entry.route, entry.dialect_route) == (
        "GET /v1/accounts",
        "GET /v{version}/me/adaccounts",
    )
    refused = meta.http.get("/v25.0/me/adaccounts", params={"access_token": "not-a-token"})
    assert _error(refused)["code"] == 190
