"""Every preset, written once against the core, rendered by each face in its own language.

The same story (log in, create, upload, read) is played against each dialect through
its own hand-written client; the answers are checked in that dialect's shapes and the
ledger's normalised facts (route, core error code, signal, retry_after) are the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from dialect_support import BASE_URLS, CLIENTS, DialectClient
from fp_support import sha

from fake_partner import Partner, Scenario, VirtualClock, item_rejected
from fake_partner.faces import DIALECTS
from fake_partner.presets import PRESETS

UPLOAD = "POST /v1/segments/{segment_id}/members"


def _client(dialect: str, *presets: str, **knobs: object) -> Iterator[DialectClient]:
    partner = Partner(Scenario(presets=presets, **knobs), clock=VirtualClock(), dialect=dialect)
    with httpx.Client(transport=partner.transport(), base_url=BASE_URLS[dialect]) as http:
        yield CLIENTS[dialect](http, partner)


def _ready_segment(client: DialectClient, token: str, name: str = "s") -> str:
    segment = client.created_id(client.create(token, name))
    client.partner.clock.advance(60)
    return segment


def _values(count: int, prefix: str = "u") -> list[str]:
    return [sha(f"{prefix}{i}") for i in range(count)]


def test_every_preset_is_covered_here() -> None:
    covered = {
        name.removeprefix("test_").replace("_", "-")
        for name in globals()
        if name.startswith("test_") and name != "test_every_preset_is_covered_here"
    }
    assert set(PRESETS) <= covered


@pytest.mark.parametrize("dialect", DIALECTS)
def test_token_expiry_mid_upload(dialect: str) -> None:
    for client in _client(dialect, "token-expiry-mid-upload"):
        token = client.login()
        segment = _ready_segment(client, token)
        assert client.upload(token, segment, _values(3)).status_code == 200
        expired = client.upload(token, segment, _values(3, "v"))
        body = expired.json()
        if dialect == "generic":
            assert expired.status_code == 401
            assert body["error"]["code"] == "EXPIRED_ACCESS_TOKEN"
        elif dialect == "linkedin":
            assert expired.status_code == 401
            assert body == {
                "status": 401,
                "serviceErrorCode": 65602,
                "code": "EXPIRED_ACCESS_TOKEN",
                "message": body["message"],
            }
        else:
            assert expired.status_code == 400
            error = body["error"]
            assert (error["type"], error["code"], error["error_subcode"]) == (
                "OAuthException",
                190,
                463,
            )
            assert error["fbtrace_id"]
        entry = client.partner.ledger.entries[-1]
        assert (entry.route, entry.error_code, entry.signal) == (
            UPLOAD,
            "EXPIRED_ACCESS_TOKEN",
            # Meta has no refresh grant: an expired token is dead for good there
            "revoked_token" if dialect == "meta" else "expired_token",
        )
        assert entry.dialect == dialect
        assert entry.accepted == 0
        assert len(client.partner.members(client.partner.segment_ids()[0])) == 3
        # a new token (refresh for generic and LinkedIn, re-authentication for Meta) works
        again = client.upload(client.login(), segment, _values(3, "v"))
        assert again.status_code == 200, again.text
        assert len(client.partner.members(client.partner.segment_ids()[0])) == 6


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rate_limit_burst(dialect: str) -> None:
    for client in _client(dialect, "rate-limit-burst"):
        token = client.login()
        segment = client.created_id(client.create(token, "s"))  # call 1 (the login is not /v1)
        client.partner.clock.advance(60)
        client.get(token, segment)  # call 2
        limited = client.get(token, segment)  # call 3: throttled
        entry = client.partner.ledger.entries[-1]
        assert entry.signal == "throttled"
        assert entry.error_code == "RATE_LIMITED"
        if dialect == "generic":
            assert limited.status_code == 429
            assert limited.headers["Retry-After"] == "30"
            assert entry.retry_after == 30
            assert entry.dialect_code == "RATE_LIMITED"
        elif dialect == "linkedin":
            assert limited.status_code == 429
            assert "retry-after" not in limited.headers
            assert not any(name.lower().startswith("x-ratelimit") for name in limited.headers)
            assert limited.json()["code"] == "TOO_MANY_REQUESTS"
            assert entry.retry_after is None
            assert entry.dialect_code == "TOO_MANY_REQUESTS"
        else:
            assert limited.status_code == 400
            error = limited.json()["error"]
            assert error["code"] == 80003
            assert error["is_transient"] is True
            usage = json.loads(limited.headers["X-Business-Use-Case-Usage"])
            assert usage["acc-1"][0]["estimated_time_to_regain_access"] == 1
            assert entry.retry_after == 60
            assert entry.dialect_code == "80003"
        for _ in range(2):
            client.get(token, segment)
        assert client.get(token, segment).status_code == 200


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rate_limit_no_retry_after(dialect: str) -> None:
    for client in _client(dialect, "rate-limit-no-retry-after"):
        token = client.login()
        segment = client.created_id(client.create(token, "s"))
        client.partner.clock.advance(60)
        client.get(token, segment)
        limited = client.get(token, segment)
        assert "retry-after" not in limited.headers
        entry = client.partner.ledger.entries[-1]
        assert entry.signal == "throttled"
        if dialect == "meta":  # Meta always says when access comes back
            assert limited.json()["error"]["code"] == 80003
            assert entry.retry_after == 60
        else:
            assert limited.status_code == 429
            assert entry.retry_after is None


@pytest.mark.parametrize("dialect", DIALECTS)
def test_not_ready_for_3_polls(dialect: str) -> None:
    for client in _client(dialect, "not-ready-for-3-polls"):
        token = client.login()
        segment = client.created_id(client.create(token, "s"))
        answers = [client.upload(token, segment, _values(2)) for _ in range(4)]
        for answer in answers[:3]:
            if dialect == "generic":
                assert answer.status_code == 404
                assert answer.json()["error"]["code"] == "SEGMENT_NOT_READY"
            elif dialect == "linkedin":
                assert answer.status_code == 404
                assert answer.json()["code"] == "NOT_FOUND"
            else:
                assert answer.status_code == 400
                assert answer.json()["error"]["code"] == 2650
        assert answers[3].status_code == 200, answers[3].text
        signals = [entry.signal for entry in client.partner.ledger.entries[-4:]]
        assert signals == ["not_ready"] * 3 + [None]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_flaky_5xx(dialect: str) -> None:
    for client in _client(dialect, "flaky-5xx"):
        token = client.login()
        created = client.create(token, "s")
        while created.status_code == 503:  # the creation itself may draw a failure
            created = client.create(token, "s")
        segment = client.created_id(created)
        client.partner.clock.advance(60)
        failed = [
            a for a in (client.get(token, segment) for _ in range(40)) if a.status_code >= 500
        ]
        assert failed, "about 1 in 5 calls fails"
        for answer in failed:
            assert answer.status_code == 503
            if dialect == "generic":
                assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
            elif dialect == "linkedin":
                assert answer.json()["code"] == "SERVICE_UNAVAILABLE"
                assert answer.json()["status"] == 503
            else:
                error = answer.json()["error"]
                assert (error["code"], error["is_transient"]) == (2, True)
        transient = [e for e in client.partner.ledger if e.status == 503]
        assert len(transient) >= len(failed)  # and the creations that drew a failure
        assert {e.signal for e in transient} == {"transient"}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ambiguous_503(dialect: str) -> None:
    for client in _client(dialect, "ambiguous-503"):
        token = client.login()
        segment = _ready_segment(client, token)
        answer = client.upload(token, segment, _values(5))
        assert answer.status_code == 503
        entry = client.partner.ledger.entries[-1]
        assert (entry.applied, entry.accepted, entry.signal) == (True, 5, "transient")
        assert len(client.partner.members(client.partner.segment_ids()[0])) == 5


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mixed_invalid_items(dialect: str) -> None:
    for client in _client(dialect, "mixed-invalid-items"):
        token = client.login()
        segment = _ready_segment(client, token)
        values = _values(200)
        expected = sum(item_rejected(value, 0.1, 0) for value in values)
        answer = client.upload(token, segment, values)
        assert answer.status_code == 200
        assert client.rejected(answer) == expected > 0
        entry = client.partner.ledger.entries[-1]
        assert (entry.accepted, entry.rejected, entry.signal) == (
            200 - expected,
            expected,
            "per_item",
        )
        assert set(entry.compact.rejected_indices.values()) == {"IDENTIFIER_REJECTED"}
        if dialect == "linkedin":
            elements = answer.json()["elements"]
            assert len(elements) == 200
            rejected = [i for i, element in enumerate(elements) if element["status"] == 400]
            assert rejected == sorted(entry.compact.rejected_indices)
        if dialect == "meta":
            body = answer.json()
            assert body["num_received"] == 200
            assert set(body) == {
                "audience_id",
                "session_id",
                "num_received",
                "num_invalid_entries",
                "invalid_entry_samples",
            }


@pytest.mark.parametrize("dialect", ["generic", "linkedin"])
def test_invalid_grant(dialect: str) -> None:
    for client in _client(dialect, "invalid-grant"):
        credentials = client.partner.credentials
        path = "/oauth/token" if dialect == "generic" else "/oauth/v2/accessToken"
        answer = client.http.post(
            path,
            data={
                "grant_type": "refresh_token",
                "refresh_token": credentials.refresh_token,
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
            },
        )
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_grant"
        entry = client.partner.ledger.entries[-1]
        assert (entry.route, entry.error_code, entry.signal) == (
            "POST /oauth/token",
            "invalid_grant",
            "invalid_grant",
        )


def test_invalid_grant_changes_nothing_for_meta_which_has_no_refresh_grant() -> None:
    for client in _client("meta", "invalid-grant"):
        token = client.login()
        segment = _ready_segment(client, token)
        assert client.upload(token, segment, _values(2)).status_code == 200
        refused = client.http.get(
            "/v25.0/oauth/access_token",
            params={"grant_type": "refresh_token", "refresh_token": "x" * 10},
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["type"] == "OAuthException"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dropped_connection(dialect: str) -> None:
    for client in _client(dialect, "dropped-connection"):
        token = client.login()
        segment = _ready_segment(client, token)
        with pytest.raises(httpx.RemoteProtocolError):
            client.upload(token, segment, _values(3))
        entry = client.partner.ledger.entries[-1]
        assert (entry.status, entry.applied, entry.signal) == (None, False, "transient")
        assert client.partner.members(client.partner.segment_ids()[0]) == frozenset()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ambiguous_drop(dialect: str) -> None:
    for client in _client(dialect, "ambiguous-drop"):
        token = client.login()
        segment = _ready_segment(client, token)
        with pytest.raises(httpx.RemoteProtocolError):
            client.upload(token, segment, _values(3))
        entry = client.partner.ledger.entries[-1]
        assert (entry.status, entry.applied, entry.signal) == (None, True, "transient")
        assert len(client.partner.members(client.partner.segment_ids()[0])) == 3


@pytest.mark.parametrize("dialect", DIALECTS)
def test_failed_segment(dialect: str) -> None:
    for client in _client(dialect, "failed-segment"):
        token = client.login()
        segment = _ready_segment(client, token)
        assert client.upload(token, segment, _values(3)).status_code == 200
        assert client.status(token, segment) == "FAILED"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_slow_partner(dialect: str) -> None:
    for client in _client(dialect, "slow-partner"):
        token = client.login()
        before = client.partner.clock.now()
        client.created_id(client.create(token, "s"))
        assert client.partner.clock.now() == before + 2
        entry = client.partner.ledger.entries[-1]
        assert entry.faults == ("latency",)
