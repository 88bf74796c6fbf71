"""Choosing a dialect, and the facts every face records: signals, served answers, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from dialect_support import BASE_URLS, CLIENTS, LINKEDIN_HEADERS
from fp_support import adds, bearer, refresh, sha

from fake_partner import (
    Partner,
    PartnerUsageError,
    Scenario,
    ScenarioError,
    VirtualClock,
    parse_scenario,
    serve,
)
from fake_partner.faces import DIALECTS
from fake_partner.ledger import SIGNALS


def test_generic_is_the_default_and_reports_itself() -> None:
    partner = Partner()
    assert partner.dialect == "generic"
    assert partner.dialect_info() == {
        "dialect": "generic",
        "api_version": "v1",
        "base_path": "/v1",
        "lists_accounts": True,
        "read_shows_not_ready": True,
    }


def test_each_face_says_what_a_connector_can_observe() -> None:
    """What the checks read to judge a dialect fairly: whether a token can list its
    accounts (Meta's ``/me/adaccounts``; LinkedIn's face has no such call), whether a
    segment read says it is still provisioning."""
    linkedin, meta = Partner(dialect="linkedin"), Partner(dialect="meta")
    assert (linkedin.dialect_info()["lists_accounts"], meta.dialect_info()["lists_accounts"]) == (
        False,
        True,
    )
    assert linkedin.dialect_info()["read_shows_not_ready"] is False
    assert linkedin.core_segment_id(linkedin.external_segment_id("seg-000042")) == "seg-000042"
    assert meta.external_segment_id("seg-000042") == "23850000000000042"


def test_the_argument_overrides_the_scenario_key() -> None:
    assert Partner(Scenario(partner="meta"), dialect="linkedin").dialect == "linkedin"
    assert Partner({"partner": "linkedin"}).dialect == "linkedin"


def test_an_unknown_dialect_is_refused_with_the_choices() -> None:
    with pytest.raises(PartnerUsageError, match="generic, linkedin, meta"):
        Partner(dialect="google")
    with pytest.raises(ScenarioError) as raised:
        parse_scenario('partner = "google"', "toml")
    assert raised.value.lines == ["partner: 'google' is not one of: generic, linkedin, meta"]


def test_set_scenario_follows_the_scenario_key_unless_the_dialect_was_given() -> None:
    partner = Partner()
    partner.set_scenario(Scenario(partner="meta"))
    assert partner.dialect == "meta"
    pinned = Partner(dialect="linkedin")
    pinned.set_scenario(Scenario(partner="meta"))
    assert pinned.dialect == "linkedin"


# --- the generic face fills the normalised facts too ------------------------------------------


@pytest.fixture
def generic() -> Iterator[tuple[httpx.Client, Partner]]:
    partner = Partner(Scenario(provisioning_delay=0), clock=VirtualClock())
    with partner.mock(), httpx.Client(base_url="https://partner.test") as http:
        yield http, partner


def test_generic_signals(generic: tuple[httpx.Client, Partner]) -> None:
    http, partner = generic
    token = refresh(http, partner)
    segment = http.post(
        "/v1/accounts/acc-1/segments", headers=bearer(token), json={"name": "s"}
    ).json()["id"]
    http.post(
        f"/v1/segments/{segment}/members",
        headers=bearer(token),
        json={"operations": [*adds([sha("a")]), *adds(["a@b.test"])]},
    )
    http.get("/v1/segments/nope", headers=bearer(token))
    http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "x" * 10})
    entries = partner.ledger.entries
    assert [(e.signal, e.dialect_code) for e in entries] == [
        (None, None),
        (None, None),
        ("per_item", None),
        ("permanent", "SEGMENT_NOT_FOUND"),
        ("permanent", "invalid_client"),
    ]
    assert {e.dialect for e in entries} == {"generic"}
    assert all(e.dialect_route is None for e in entries)
    data = entries[2].to_json()
    for key in ("dialect", "dialect_route", "dialect_code", "signal", "retry_after"):
        assert key in data
    assert data["route"] == "POST /v1/segments/{segment_id}/members"


def test_generic_real_limiter_sets_retry_after() -> None:
    partner = Partner(Scenario(rate_limit_per_minute=1), clock=VirtualClock())
    with partner.mock(), httpx.Client(base_url="https://partner.test") as http:
        token = refresh(http, partner)
        http.get("/v1/accounts", headers=bearer(token))
        limited = http.get("/v1/accounts", headers=bearer(token))
    entry = partner.ledger.entries[-1]
    assert (entry.signal, entry.retry_after) == ("throttled", float(limited.headers["Retry-After"]))
    assert entry.dialect_code == "RATE_LIMITED"


def test_signals_are_the_documented_ones() -> None:
    assert set(SIGNALS) == {
        "throttled",
        "transient",
        "expired_token",
        "invalid_grant",
        "revoked_token",
        "not_ready",
        "per_item",
        "permanent",
    }


# --- served on loopback: a hand-written upload per dialect -------------------------------------


def test_linkedin_served_on_loopback() -> None:
    partner = Partner(Scenario(provisioning_delay=0), dialect="linkedin")
    with serve(partner) as served, httpx.Client(base_url=served.base_url) as http:
        credentials = partner.credentials
        token = http.post(
            "/oauth/v2/accessToken",
            content=(
                f"grant_type=refresh_token&refresh_token={credentials.refresh_token}"
                f"&client_id={credentials.client_id}&client_secret={credentials.client_secret}"
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", **LINKEDIN_HEADERS}
        created = http.post(
            "/rest/dmpSegments",
            headers=headers,
            content=json.dumps(
                {
                    "name": "served",
                    "account": "urn:li:sponsoredAccount:acc-1",
                    "type": "USER",
                    "sourcePlatform": "STREAMING",
                    "destinations": [{"destination": "LINKEDIN"}],
                }
            ),
        )
        assert created.status_code == 201
        segment = created.headers["x-restli-id"]
        users = http.post(
            f"/rest/dmpSegments/{segment}/users",
            headers={**headers, "X-RestLi-Method": "BATCH_CREATE"},
            content=(
                '{"elements": [{"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", '
                f'"idValue": "{sha("x")}"}}]}}, {{"action": "ADD", "userIds": '
                '[{"idType": "SHA256_EMAIL", "idValue": "X@Y.Z"}]}]}'
            ),
        )
        assert users.status_code == 200
        assert [e["status"] for e in users.json()["elements"]] == [201, 400]
        bad = http.post(
            f"/rest/dmpSegments/{segment}/users",
            headers={**headers, "X-RestLi-Method": "BATCH_CREATE"},
            content=b'{"elements": [',
        )
        assert bad.status_code == 400
        assert set(bad.json()) == {"status", "serviceErrorCode", "code", "message"}
    assert len(partner.ledger) == 3  # the unreadable body is refused unrecorded


def test_meta_served_on_loopback() -> None:
    partner = Partner(dialect="meta")
    token = partner.seed_access_token(["acc-1"])
    with serve(partner) as served, httpx.Client(base_url=served.base_url) as http:
        created = http.post(
            "/v25.0/act_acc-1/customaudiences",
            content=(
                f"name=served&subtype=CUSTOM&customer_file_source=USER_PROVIDED_ONLY"
                f"&access_token={token}"
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        audience = created.json()["id"]
        payload = json.dumps({"schema": ["EMAIL_SHA256"], "data": [[sha("x")], ["x@y.z"]]})
        users = http.post(
            f"/v25.0/{audience}/users",
            data={"payload": payload, "access_token": token},
        )
        assert users.json()["num_received"] == 2
        assert users.json()["num_invalid_entries"] == 1
        bad = http.post(
            f"/v25.0/{audience}/users",
            data={"payload": "{not json", "access_token": token},
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == 100
    assert len(partner.ledger) == 2


@pytest.mark.parametrize("dialect", DIALECTS)
def test_python_m_fake_partner_serves_the_chosen_dialect(dialect: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "fake_partner", "--partner", dialect, "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(7)]
        printed = "".join(lines)
        assert (f"dialect: {dialect}" in printed) == (dialect != "generic")
        assert ("access_token: " in printed) == (dialect == "meta")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_python_m_fake_partner_refuses_an_unknown_dialect() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fake_partner", "--partner", "google"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "generic" in done.stderr


# --- refused requests change nothing, in each face's own error shape ---------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "body",
    [b"{", b'{"a": NaN}', b"\xff\xfe", b"[" * 100 + b"]" * 100, b'{"x": "\\ud800"}'],
    ids=["truncated", "nan", "not-utf8", "deep", "surrogate"],
)
def test_unreadable_bodies_are_refused_unrecorded(dialect: str, body: bytes) -> None:
    partner = Partner(Scenario(provisioning_delay=0), dialect=dialect)
    with httpx.Client(transport=partner.transport(), base_url=BASE_URLS[dialect]) as http:
        client = CLIENTS[dialect](http, partner)
        token = client.login()
        segment = client.created_id(client.create(token, "s"))
        before = len(partner.ledger)
        path = {
            "generic": f"/v1/segments/{segment}/members",
            "linkedin": f"/rest/dmpSegments/{segment}/users",
            "meta": f"/v25.0/{segment}/users",
        }[dialect]
        answer = http.post(
            path,
            headers={
                **client.headers(token),
                "X-RestLi-Method": "BATCH_CREATE",
                "Content-Type": "application/json",
            },
            content=body,
        )
    assert answer.status_code == 400
    _assert_shape(dialect, answer)
    assert len(partner.ledger) == before
    assert partner.members(partner.segment_ids()[0]) == frozenset()


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "payload",
    [
        {"elements": "x", "operations": "x", "payload": "x"},
        {"elements": [{"action": 1}], "operations": [{"action": 1}], "payload": {"schema": 1}},
        {"elements": [], "operations": [], "payload": {"schema": ["EMAIL_SHA256"], "data": []}},
    ],
    ids=["wrong-type", "wrong-item", "empty"],
)
def test_invalid_uploads_are_4xx_in_the_face_shape_and_apply_nothing(
    dialect: str, payload: dict[str, object]
) -> None:
    partner = Partner(Scenario(provisioning_delay=0), dialect=dialect)
    with httpx.Client(transport=partner.transport(), base_url=BASE_URLS[dialect]) as http:
        client = CLIENTS[dialect](http, partner)
        token = client.login()
        segment = client.created_id(client.create(token, "s"))
        key = {"generic": "operations", "linkedin": "elements", "meta": "payload"}[dialect]
        path = {
            "generic": f"/v1/segments/{segment}/members",
            "linkedin": f"/rest/dmpSegments/{segment}/users",
            "meta": f"/v25.0/{segment}/users",
        }[dialect]
        answer = http.post(
            path,
            headers={**client.headers(token), "X-RestLi-Method": "BATCH_CREATE"},
            json={key: payload[key]},
        )
    assert 400 <= answer.status_code < 500
    _assert_shape(dialect, answer)
    uploads = partner.ledger.uploads()
    assert len(uploads) <= 1  # Meta refuses a payload that is not JSON unrecorded
    for entry in uploads:
        assert (entry.applied, entry.accepted, entry.signal) == (False, 0, "permanent")
    assert partner.members(partner.segment_ids()[0]) == frozenset()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_oversized_bodies_are_413_in_the_face_shape(dialect: str) -> None:
    partner = Partner(
        Scenario(provisioning_delay=0, limits={"max_body_bytes": 1000}), dialect=dialect
    )
    with httpx.Client(transport=partner.transport(), base_url=BASE_URLS[dialect]) as http:
        client = CLIENTS[dialect](http, partner)
        token = client.login()
        segment = client.created_id(client.create(token, "s"))
        answer = client.upload(token, segment, [sha(str(i)) for i in range(40)])
    assert answer.status_code == 413
    _assert_shape(dialect, answer)
    assert partner.members(partner.segment_ids()[0]) == frozenset()


def _assert_shape(dialect: str, answer: httpx.Response) -> None:
    body = answer.json()
    if dialect == "generic":
        assert set(body) == {"error"}
        assert {"status", "code", "message", "request_id"} <= set(body["error"])
    elif dialect == "linkedin":
        assert set(body) == {"status", "serviceErrorCode", "code", "message"}
        assert body["status"] == answer.status_code
    else:
        assert set(body) == {"error"}
        assert {"message", "type", "code", "fbtrace_id"} <= set(body["error"])


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_fault_rule_written_against_the_core_fires_in_every_dialect(dialect: str) -> None:
    rule = {
        "method": "POST",
        "path": "/v1/segments/*/members",
        "segment": "seg-000001",
        "nth": 1,
        "effect": {"kind": "error", "status": 500},
    }
    partner = Partner({"provisioning_delay": 0, "faults": [rule]}, dialect=dialect)
    with httpx.Client(transport=partner.transport(), base_url=BASE_URLS[dialect]) as http:
        client = CLIENTS[dialect](http, partner)
        token = client.login()
        segment = client.created_id(client.create(token, "s"))
        failed = client.upload(token, segment, [sha("a")], action="REMOVE")
        assert failed.status_code == 500
        assert client.upload(token, segment, [sha("a")]).status_code == 200
    entry = partner.ledger.uploads()[0]
    assert (entry.segment_id, entry.faults, entry.signal) == ("seg-000001", ("error",), "transient")
    assert entry.error_code == "INTERNAL_ERROR"


def test_the_old_responses_module_still_exports_its_names() -> None:
    from fake_partner import responses

    for name in ("respond", "refused", "Dropped", "DROP_MESSAGE", "json_response"):
        assert hasattr(responses, name)
