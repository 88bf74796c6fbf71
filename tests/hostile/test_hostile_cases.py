"""Each hostile input of the issue, one by one: the answer, and what it leaves behind.

The fuzz and volume runs search widely; these pin the cases that answered 500, stored a
write they refused, or broke a later read, so a regression names the case.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from hostile_support import (
    DEEP_ARRAY,
    DEEP_OBJECT,
    DESTINATION,
    FEED,
    PARTNER_URL,
    RawRequest,
    Server,
    connector_server,
    gateway_server,
    partner_server,
)

from fake_partner import Partner, ScenarioError, load_scenario
from fake_partner.inbound import MAX_TARGET_BYTES
from harness.cli import main

SURROGATE_JSON = b'{"grant_type": "refresh_token", "refresh_token": "\\ud800"}'


def raw(
    method: bytes, target: bytes, body: bytes = b"", *headers: tuple[bytes, bytes]
) -> RawRequest:
    return RawRequest(method, target, tuple(headers), body)


def _good(server: Server, index: int = 0) -> tuple[bytes, bytes]:
    return server.shape.good_headers[index]


JSON = (b"content-type", b"application/json")


# --- the partner ----------------------------------------------------------------------------


@pytest.fixture
def partner() -> tuple[Server, Partner]:
    return partner_server()


def _segment(server: Server) -> bytes:
    return server.shape.ids[0]


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_partner_deep_json_on_members_and_token_is_a_400_unrecorded(
    partner: tuple[Server, Partner], body: bytes
) -> None:
    server, fake = partner
    members = b"/v1/segments/" + _segment(server) + b"/members"
    answer = server.attack(raw(b"POST", members, body, _good(server), JSON))
    assert answer.status == 400
    assert answer.json()["error"]["code"] == "INVALID_REQUEST"
    assert answer.json()["error"]["request_id"].startswith("rej-")
    token = server.attack(raw(b"POST", b"/oauth/token", body, JSON))
    assert token.status == 400
    assert token.json()["error"] == "invalid_request"  # OAuth's shape on the token route
    assert [e.path for e in fake.ledger][-1:] != ["/oauth/token"]


def test_partner_lone_surrogate_token_request_leaves_the_ledger_readable(
    partner: tuple[Server, Partner],
) -> None:
    server, fake = partner
    entries = len(fake.ledger)
    answer = server.attack(raw(b"POST", b"/oauth/token", SURROGATE_JSON, JSON))
    assert answer.status == 400
    assert "not strict JSON" in answer.json()["error_description"]
    assert len(fake.ledger) == entries
    ledger = server.attack(raw(b"GET", b"/_admin/ledger", b"", _good(server, 2)))
    assert ledger.status == 200
    assert len(ledger.json()["entries"]) == entries


def test_partner_lone_surrogate_segment_name_is_refused_and_not_created(
    partner: tuple[Server, Partner],
) -> None:
    server, fake = partner
    before = fake.segment_ids()
    body = b'{"name": "\\udc00 sports"}'
    answer = server.attack(raw(b"POST", b"/v1/accounts/acc-1/segments", body, _good(server), JSON))
    assert answer.status == 400
    assert fake.segment_ids() == before


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"*", 400),
        (b"http://evil.example/v1/accounts", 400),
        (b"/" + b"a" * 70_000, 414),
        (b"/v1/accounts/%ED%A0%80/segments", 400),
        (b"/v1/accounts?x=%00", 400),
    ],
    ids=["asterisk", "absolute-form", "64KiB-path", "bad-utf8-escape", "control-char"],
)
def test_partner_bad_targets_are_4xx(
    partner: tuple[Server, Partner], target: bytes, status: int
) -> None:
    server, _fake = partner
    answer = server.attack(raw(b"GET", target, b"", _good(server)))
    assert answer.status == status
    assert answer.json()["error"]["details"] == [{"field": "target"}] or status == 400


@pytest.mark.parametrize(
    "header",
    [(b"authorization", b"Basic \xe9"), (b"x-note", b"caf\xc3\xa9"), (b"x-bell", b"\x07")],
    ids=["basic-e9", "utf8-value", "control"],
)
def test_partner_non_ascii_headers_are_a_400_naming_the_header(
    partner: tuple[Server, Partner], header: tuple[bytes, bytes]
) -> None:
    server, _fake = partner
    answer = server.attack(raw(b"POST", b"/oauth/token", b"grant_type=x", header))
    assert answer.status == 400
    message = answer.json()["error"]["message"]
    assert header[0].decode() in message
    assert "\\xe9" not in message  # the value (maybe a secret) is never echoed


@pytest.mark.parametrize(
    "query",
    [b"limit=%C2%B2", b"cursor=o%C2%B2", b"limit=" + b"9" * 40, b"cursor=o" + b"9" * 40],
)
def test_partner_unicode_or_huge_digits_in_limit_and_cursor_are_400(
    partner: tuple[Server, Partner], query: bytes
) -> None:
    server, _fake = partner
    target = b"/v1/segments/" + _segment(server) + b"/members?" + query
    answer = server.attack(raw(b"GET", target, b"", _good(server)))
    assert answer.status == 400
    assert answer.json()["error"]["details"][0]["field"] in ("limit", "cursor")


def test_partner_since_with_unicode_digits_is_400(partner: tuple[Server, Partner]) -> None:
    server, _fake = partner
    answer = server.attack(raw(b"GET", b"/_admin/ledger?since=%C2%B2", b"", _good(server, 2)))
    assert answer.status == 400


@pytest.mark.parametrize("seconds", [b"1e300", b"3153600001", b"1e400", b"-1"])
def test_partner_clock_advance_out_of_bounds_is_400_and_the_clock_stays(
    partner: tuple[Server, Partner], seconds: bytes
) -> None:
    server, fake = partner
    now = fake.clock.now()
    body = b'{"seconds": ' + seconds + b"}"
    answer = server.attack(raw(b"POST", b"/_admin/clock/advance", body, _good(server, 2)))
    assert answer.status == 400
    assert fake.clock.now() == now
    for method, path in [(b"GET", b"/_admin/state"), (b"GET", b"/_admin/clock")]:
        assert server.send(raw(method, path, b"", _good(server, 2))).status == 200
    assert server.send(raw(b"POST", b"/_admin/reset", b"", _good(server, 2))).status == 200


def test_partner_clock_advance_within_a_century_still_works(
    partner: tuple[Server, Partner],
) -> None:
    server, fake = partner
    now = fake.clock.now()
    body = b'{"seconds": 86400}'
    assert server.send(raw(b"POST", b"/_admin/clock/advance", body, _good(server, 2))).status == 200
    assert fake.clock.now() == now + 86400


def test_partner_scenario_with_infinite_lifetime_is_refused_over_http(
    partner: tuple[Server, Partner],
) -> None:
    server, fake = partner
    before = fake.scenario
    for body in (b'{"access_token_lifetime": 1e400}', b'{"access_token_lifetime": 1e300}'):
        answer = server.attack(raw(b"PUT", b"/_admin/scenario", body, _good(server, 2), JSON))
        assert answer.status == 400
        assert fake.scenario == before
    toml = b"access_token_lifetime = inf\n"
    answer = server.attack(
        raw(b"PUT", b"/_admin/scenario", toml, _good(server, 2), (b"content-type", b"text/toml"))
    )
    assert answer.status == 400
    assert "access_token_lifetime" in answer.json()["error"]["message"]


def test_partner_token_answers_stay_json() -> None:
    fake = Partner({"access_token_lifetime": 10 * 365 * 86400})
    secrets = fake.credentials
    with httpx.Client(transport=fake.transport(), base_url=PARTNER_URL) as client:
        grant = client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": secrets.refresh_token,
                "client_id": secrets.client_id,
                "client_secret": secrets.client_secret,
            },
        )
    assert grant.status_code == 200
    assert json.loads(grant.content)["expires_in"] == 10 * 365 * 86400


def test_partner_authorize_with_a_non_ascii_redirect_is_an_ascii_location() -> None:
    fake = Partner()
    secrets = fake.credentials
    with httpx.Client(transport=fake.transport(), base_url=PARTNER_URL) as client:
        answer = client.get(
            "/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": secrets.client_id,
                "redirect_uri": "https://caf\u00e9.example/cb",
                "state": "\u00e9t\u00e9",
            },
        )
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.isascii()
    assert location.startswith("https://caf%C3%A9.example/cb?code=")
    assert location.endswith("state=%C3%A9t%C3%A9")


# --- scenarios ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("latin1.toml", "name = 'caf\u00e9'\n".encode("latin-1"), "not UTF-8"),
        ("deep.json", b'{"faults": ' + DEEP_ARRAY + b"}", "not valid JSON"),
        ("deep.toml", b"seed = " + b"[" * 10_000 + b"]" * 10_000 + b"\n", "TOML"),
        ("bad.toml", b"seed = = 3\n", "not valid TOML"),
        ("nan.json", b'{"seed": NaN}', "not valid JSON"),
        ("surrogate.json", b'{"accounts": [{"id": "\\ud800"}]}', "not valid JSON"),
        ("inf.toml", b"access_token_lifetime = inf\n", "access_token_lifetime"),
        ("string-int.json", b'{"rate_limit_per_minute": "3"}', "rate_limit_per_minute"),
        ("bool-int.json", b'{"privacy_floor": true}', "privacy_floor"),
        ("float-int.json", b'{"seed": 3.5}', "seed"),
        ("huge.json", b'{"provisioning_delay": 1e12}', "provisioning_delay"),
        ("bool-flag.json", b'{"send_rate_limit_headers": 1}', "send_rate_limit_headers"),
        ("fault.json", b'{"faults": [{"nth": "2", "effect": {"kind": "drop"}}]}', "nth"),
    ],
)
def test_unreadable_or_loose_scenarios_are_scenario_errors_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert reason in str(caught.value)
    assert main(["serve-partner", "--port", "0", "--scenario", str(path)]) == 2
    err = capsys.readouterr().err
    assert reason in err
    assert "Traceback" not in err


def test_strict_scenarios_still_take_ints_for_seconds() -> None:
    scenario = load_scenario({"access_token_lifetime": 60, "processing_delay": 0.5, "seed": -3})
    assert scenario.access_token_lifetime == 60.0
    assert scenario.seed == -3


# --- the gateway ----------------------------------------------------------------------------


def _basic(server: Server) -> tuple[bytes, bytes]:
    return server.shape.good_headers[0]


PROPERTY = b"/v1/audience_segment_external_feeds/" + FEED.encode() + b"/properties"
CREDENTIALS = b"/v1/feed_destinations/" + DESTINATION.encode() + b"/credentials"


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        (b"POST", PROPERTY, b'{"technical_name": "x", "value": {"value": "\\ud800"}}'),
        (b"PUT", PROPERTY + b"/technical_name=partner_account_id", b'{"value": "\\udfff"}'),
        (
            b"POST",
            CREDENTIALS,
            b'{"scheme": "OAUTH2", "credentials": {"refresh_token": "\\ud800"}}',
        ),
        (b"POST", PROPERTY, DEEP_ARRAY),
        (b"POST", CREDENTIALS, DEEP_OBJECT),
        (b"POST", PROPERTY, b'{"technical_name": "x", "value": {"value": 1e400}}'),
    ],
    ids=["property-post", "property-put", "credentials", "deep-array", "deep-object", "1e400"],
)
def test_gateway_refuses_hostile_writes_and_stores_nothing(
    method: bytes, target: bytes, body: bytes
) -> None:
    server, gateway = gateway_server()
    answer = server.attack(raw(method, target, body, _basic(server), JSON))
    assert answer.status == 400
    assert answer.json()["status"] == "error"
    assert b"rt-secret-value" not in answer.body
    read = server.send(raw(b"GET", CREDENTIALS, b"", _basic(server)))
    assert read.status == 200
    assert read.json()["data"]["credentials"] == {"refresh_token": "rt-secret-value"}
    assert server.send(raw(b"GET", PROPERTY, b"", _basic(server))).status == 200
    assert gateway.property_writes == ()


@pytest.mark.parametrize(
    "request_",
    [
        raw(b"GET", PROPERTY, b"", (b"authorization", b"Basic \xe9")),
        raw(b"GET", PROPERTY, b"", (b"x-note", b"\xff")),
        raw(b"GET", b"*"),
        raw(b"GET", b"http://evil.example" + PROPERTY),
        raw(b"GET", b"/" + b"a" * (MAX_TARGET_BYTES + 1)),
    ],
    ids=["basic-e9", "non-ascii", "asterisk", "absolute-form", "long-target"],
)
def test_gateway_refuses_unreadable_requests_before_authentication(request_: RawRequest) -> None:
    server, gateway = gateway_server()
    answer = server.attack(request_)
    assert answer.status in (400, 414)
    assert answer.json()["status"] == "error"
    assert gateway.calls == ()


def test_gateway_non_ascii_basic_over_httpx_is_a_401() -> None:
    gateway = gateway_server()[1]
    encoded = base64.b64encode("w\u00e9:t".encode("latin-1"))
    with httpx.Client(transport=httpx.MockTransport(gateway.handle), base_url="http://g") as c:
        answer = c.get(PROPERTY.decode(), headers={"authorization": b"Basic " + encoded})
    assert answer.status_code == 401


# --- the connector base ---------------------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT, b'{"level": "\\ud800"}', b"[1e400]"])
def test_connector_put_log_level_hostile_is_a_json_400(body: bytes) -> None:
    with connector_server() as (server, connector, _partner, _gateway):
        answer = server.attack(raw(b"PUT", b"/v1/log_level", body, JSON))
        assert answer.status == 400
        assert answer.json()["status"] == "error"
        assert connector.log_level == "INFO"


@pytest.mark.parametrize(
    "request_",
    [
        raw(b"POST", b"/v1/external_segment_creation", DEEP_ARRAY, JSON),
        raw(b"POST", b"/v1/user_segment_update", b'{"feed_id": "\\ud800"}', JSON),
        raw(b"POST", b"/v1/batch_update", b'{"ts": 1e400}', JSON),
        raw(b"POST", b"/v1/external_segment_creation", b"{}", (b"x-note", b"\xe9")),
        raw(b"GET", b"*"),
        raw(b"GET", b"http://evil.example/v1/status"),
    ],
    ids=["deep", "surrogate", "1e400", "non-ascii-header", "asterisk", "absolute-form"],
)
def test_connector_base_refuses_unreadable_requests_with_a_400(request_: RawRequest) -> None:
    with connector_server() as (server, _connector, partner, gateway):
        answer = server.attack(request_)
        assert answer.status == 400
        assert answer.json()["status"] == "error"
        assert len(partner.ledger) == 0
        assert gateway.calls == ()


# --- the partner's own OpenAPI --------------------------------------------------------------


def test_partner_serves_its_openapi_in_process_and_it_validates() -> None:
    from openapi_spec_validator import validate

    fake = Partner()
    with fake.mock(), httpx.Client(base_url=PARTNER_URL) as client:
        answer = client.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert "/v1/segments/{segment_id}/members" in document["paths"]
    assert len(fake.ledger) == 0  # reading the document is not a partner API call
