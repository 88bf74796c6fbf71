"""The LinkedIn reference connector against the fake partner's LinkedIn face, through the
simulator (``Platform(partner="linkedin")``), not through the clauses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from fake_partner import LedgerEntry, Partner
from harness.accounting import BatchRecord
from harness.gateway import Gateway
from harness.generators import make_users
from harness.platform import Platform, technical_config
from harness.reference import LinkedInReferenceConnector
from harness.reference.linkedin import invalid_element_reason, maid_type
from harness.sdk import PluginSettings
from harness.simulator import Feed, SimulatorSettings
from harness.strategies import maid
from harness.users import SimUser, email_hash

LINKEDIN_KINDS = ("USER_EMAIL", "USER_DEVICE_POINT")
"""What LinkedIn takes: it has no type for user account ids."""


def _platform(scenario: Any = None, **settings: Any) -> Platform:
    return Platform(
        connector=LinkedInReferenceConnector,
        partner="linkedin",
        scenario=scenario,
        settings=SimulatorSettings(**settings),
    )


def _uploads(platform: Platform, since: int = 0) -> list[LedgerEntry]:
    return [
        e
        for e in platform.partner.ledger.entries[since:]
        if e.route == "POST /v1/segments/{segment_id}/members"
    ]


def _ready_feed(platform: Platform, *, advance: bool = True) -> Feed:
    feed = platform.new_feed(identifying=LINKEDIN_KINDS)
    assert feed.create().ok
    if advance:
        platform.clock.advance(5)  # LinkedIn takes users 5 s after creation
    assert feed.connect().ok
    return feed


def _attempts(batches: Sequence[BatchRecord]) -> list[tuple[str | None, int | None, int | None]]:
    return [
        (a.status, a.sent_items_in_success, a.sent_items_in_error)
        for b in batches
        for a in b.attempts
    ]


def _partner_calls(platform: Platform) -> list[Any]:
    return [ex for ex in platform.trace.exchanges() if ex.leg == "connector->partner"]


# --------------------------------------------------------------------------- a feed's life


def test_a_feed_life_converges_on_the_linkedin_face() -> None:
    with _platform() as platform:
        feed = _ready_feed(platform)
        users = make_users(60, seed=3, account_ratio=0.0)
        feed.upsert(users)
        before = len(platform.partner.ledger.entries)
        upserted = feed.flush()
        assert feed.partner_membership() == feed.expected_membership()
        assert feed.expected_membership() == feed.settled_membership()
        assert len(feed.expected_membership()) > 40
        feed.delete(users[:20])
        middle = len(platform.partner.ledger.entries)
        deleted = feed.flush()
        assert feed.partner_membership() == feed.expected_membership()
        for batches, start, stop in ((upserted, before, middle), (deleted, middle, None)):
            uploads = _uploads(platform, start)[: None if stop is None else stop - start]
            ((status, success, error),) = _attempts(batches)
            assert status == "OK"
            assert success == sum(e.accepted for e in uploads) > 0
            assert error == sum(e.rejected for e in uploads) == 0
        segment = platform.gateway.property_value(feed.feed_id, "partner_segment_id")
        assert segment == "1000001"  # LinkedIn's id, from x-restli-id
        for entry in _uploads(platform):
            assert entry.dialect == "linkedin"
            assert entry.dialect_route == "POST /rest/dmpSegments/{id}/users"
            assert entry.segment_id == "seg-000001"
        calls = _partner_calls(platform)
        uploads = [ex for ex in calls if ex.path.endswith("/users")]
        assert uploads
        assert all(ex.request_header("x-restli-method") == "BATCH_CREATE" for ex in uploads)
        rest = [ex for ex in calls if ex.path.startswith("/rest/")]
        assert all(ex.request_header("linkedin-version") == "202601" for ex in rest)
        assert all(ex.request_header("x-restli-protocol-version") == "2.0.0" for ex in rest)
        assert {ex.path for ex in calls if not ex.path.startswith("/rest/")} == {
            "/oauth/v2/accessToken"
        }


def test_identifiers_map_to_linkedin_types_by_the_device_os() -> None:
    address = "jane@example.com"
    user = SimUser(
        "up-1",
        emails=(address,),
        maids=(maid(1, "ios"), maid(2, "android")),
        account_ids=("crm-1",),
    )
    with _platform() as platform:
        feed = platform.new_feed()  # every kind selected: the account id is never sent
        assert feed.create().ok
        platform.clock.advance(5)
        assert feed.connect().ok
        feed.upsert([user])
        feed.flush()
        (upload,) = [ex for ex in _partner_calls(platform) if ex.path.endswith("/users")]
        body = json.loads(upload.request_body)
        ids = {(u["idType"], u["idValue"]) for e in body["elements"] for u in e["userIds"]}
        assert ids == {
            ("SHA256_EMAIL", email_hash(address)),
            ("APPLE_IDFA", user.maids[0].value),
            ("GOOGLE_AID", user.maids[1].value),
        }
        assert feed.partner_membership() == {
            ("EMAIL_SHA256", email_hash(address)),
            ("MAID", user.maids[0].value),
            ("MAID", user.maids[1].value),
        }
        assert address not in upload.request_body.decode()
        assert feed.identifying == LINKEDIN_KINDS  # the model: what LinkedIn can receive
        assert feed.partner_membership() == feed.expected_membership()


def test_a_maid_of_no_known_os_is_not_sent() -> None:
    assert maid_type("mob:ios:raw:abc") == ("APPLE_IDFA", "abc")
    assert maid_type("mob:android:raw:abc") == ("GOOGLE_AID", "abc")
    assert maid_type("mob:tizen:raw:abc") is None
    assert maid_type("abc") is None


def test_elements_that_must_not_be_sent_are_refused_locally() -> None:
    good = {"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", "idValue": "a" * 64}]}
    assert invalid_element_reason(good) is None
    bad_email = {"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", "idValue": "j@x.org"}]}
    assert invalid_element_reason(bad_email) == "PII_NOT_HASHED"
    short = {"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", "idValue": "abc"}]}
    assert invalid_element_reason(short) == "INVALID_SHA256_FORMAT"
    other = {"action": "ADD", "userIds": [{"idType": "ACXIOM_ID", "idValue": "x"}]}
    assert invalid_element_reason(other) == "UNSUPPORTED_IDENTIFIER_TYPE"
    assert invalid_element_reason({"action": "DROP", "userIds": []}) == "UNSUPPORTED_ACTION"
    assert invalid_element_reason("{") == "NOT_AN_OBJECT"


def test_a_feed_selecting_only_user_accounts_is_refused_at_creation() -> None:
    with _platform() as platform:
        feed = platform.new_feed(identifying=("USER_ACCOUNT",))
        created = feed.create()
        assert not created.ok
        assert "LinkedIn has no type for user account ids" in str(created)
        assert platform.partner.segment_ids() == []


# --------------------------------------------------------------------------- creation


def test_creation_reuses_a_segment_of_the_same_name_and_is_idempotent() -> None:
    with _platform() as platform:
        existing = platform.partner.create_segment("acc-1", "Simulated segment 5001")
        feed = platform.new_feed(identifying=LINKEDIN_KINDS)
        created = feed.create()
        assert created.ok
        assert "reused existing partner segment 1000001" in str(created)
        assert existing == "seg-000001"
        assert platform.gateway.property_value(feed.feed_id, "partner_segment_id") == "1000001"
        again = feed.create()  # asked again: the written-back segment is verified, not re-made
        assert again.ok
        assert platform.partner.segment_ids() == ["seg-000001"]
        conflicts = [e for e in platform.partner.ledger.entries if e.status == 409]
        assert len(conflicts) == 1


def test_a_configured_segment_of_another_account_is_refused() -> None:
    with _platform({"accounts": [{"id": "acc-1"}, {"id": "acc-2"}]}) as platform:
        other = platform.partner.create_segment("acc-2", "theirs")
        assert other == "seg-000001"
        feed = platform.new_feed(identifying=LINKEDIN_KINDS, partner_segment_id="1000001")
        created = feed.create()
        assert not created.ok


# --------------------------------------------------------------------------- not ready


def test_uploads_before_the_segment_takes_users_retry_then_land() -> None:
    with _platform() as platform:
        feed = _ready_feed(platform, advance=False)  # connected at once: LinkedIn shows
        users = make_users(10, seed=5, account_ratio=0.0)  # PROCESSING, /users answers 404
        feed.upsert(users)
        batches = feed.flush()
        attempts = [a for b in batches for a in b.attempts]
        assert attempts[0].status == "RETRY"
        assert attempts[0].delay_header_seconds == 30
        assert attempts[-1].status == "OK"
        first = _uploads(platform)[0]
        assert (first.status, first.signal, first.dialect_code) == (404, "not_ready", "NOT_FOUND")
        assert feed.partner_membership() == feed.expected_membership()


# --------------------------------------------------------------------------- limits


def test_uploads_are_split_at_the_element_limit() -> None:
    with _platform({"limits": {"max_operations": 3}}) as platform:
        config = json.loads(platform.gateway.configuration_file("technical_config") or b"")
        assert config["max_operations_per_request"] == 3
        feed = _ready_feed(platform)
        users = [SimUser(f"up-{i}", emails=(f"u{i}@x.org",)) for i in range(7)]
        feed.upsert(users)
        ((status, success, error),) = _attempts(feed.flush())
        assert (status, success, error) == ("OK", 7, 0)
        assert [len(e.operations) for e in _uploads(platform)] == [3, 3, 1]


def test_uploads_are_split_at_the_byte_limit() -> None:
    with _platform({"limits": {"max_body_bytes": 4096}}) as platform:
        feed = _ready_feed(platform)
        users = [SimUser(f"up-{i}", emails=(f"u{i}@x.org",)) for i in range(100)]
        feed.upsert(users)
        ((status, success, _),) = _attempts(feed.flush())
        assert (status, success) == ("OK", 100)
        bodies = [ex.request_body for ex in _partner_calls(platform) if ex.path.endswith("/users")]
        assert len(bodies) > 2
        assert all(len(body) <= 4096 for body in bodies)
        assert feed.partner_membership() == feed.expected_membership()


# --------------------------------------------------------------------------- presets


def test_token_expiry_mid_upload_is_refreshed_once_and_re_sent() -> None:
    with _platform("token-expiry-mid-upload") as platform:
        feed = _ready_feed(platform)
        for seed in range(3):
            feed.upsert(make_users(5, seed=seed, account_ratio=0.0))
            feed.flush()
        tokens = [e for e in platform.partner.ledger.entries if e.route == "POST /oauth/token"]
        assert [e.grant_type for e in tokens] == ["refresh_token", "refresh_token"]
        expired = [e for e in _uploads(platform) if e.signal == "expired_token"]
        assert len(expired) == 1
        assert (expired[0].status, expired[0].dialect_code) == (401, "EXPIRED_ACCESS_TOKEN")
        following = _uploads(platform)[_uploads(platform).index(expired[0]) + 1]
        assert following.status == 200
        assert following.token != expired[0].token
        assert all(b.outcome == "OK" for b in feed.batches)
        assert feed.partner_membership() == feed.expected_membership()


def test_a_429_without_retry_after_answers_retry_with_a_60_s_delay() -> None:
    with _platform("rate-limit-burst") as platform:
        feed = _ready_feed(platform)  # calls 1 (create) and 2 (connection's read)
        feed.upsert(make_users(8, seed=2, account_ratio=0.0))
        batches = feed.flush()
        attempts = [a for b in batches for a in b.attempts]
        assert [a.status for a in attempts] == ["RETRY", "RETRY", "RETRY", "OK"]
        assert all(a.delay_header_seconds == 60 for a in attempts[:3])
        throttled = [e for e in _uploads(platform) if e.signal == "throttled"]
        assert len(throttled) == 3
        assert all(e.retry_after is None and e.status == 429 for e in throttled)
        answered = [ex for ex in _partner_calls(platform) if ex.status == 429]
        assert answered
        assert all(ex.response_header("retry-after") is None for ex in answered)
        assert feed.partner_membership() == feed.expected_membership()


def test_flaky_5xx_batches_retry_and_converge() -> None:
    with _platform("flaky-5xx", max_creation_attempts=5) as platform:
        feed = _ready_feed(platform)
        users = make_users(40, seed=7, account_ratio=0.0)
        for start in range(0, 40, 4):
            feed.upsert(users[start : start + 4])
            feed.flush()
        transient = [e for e in _uploads(platform) if e.signal == "transient"]
        assert transient, "the preset never struck: choose another seed"
        assert all(b.outcome == "OK" for b in feed.batches)
        retried = [a for b in feed.batches for a in b.attempts if a.status == "RETRY"]
        assert retried
        assert feed.partner_membership() == feed.expected_membership()


def test_per_element_rejections_are_counted_as_errors() -> None:
    with _platform("mixed-invalid-items") as platform:
        feed = _ready_feed(platform)
        users = [SimUser(f"up-{i}", emails=(f"u{i}@x.org",)) for i in range(200)]
        feed.upsert(users)
        before = len(platform.partner.ledger.entries)
        ((status, success, error),) = _attempts(feed.flush())
        uploads = _uploads(platform, before)
        assert status == "OK"
        assert success == sum(e.accepted for e in uploads) < 200
        assert error == sum(e.rejected for e in uploads) > 0
        assert all(e.signal == "per_item" for e in uploads)
        rejected = {
            member
            for e in uploads
            for op in e.operations
            if not op.accepted
            for member in op.identifiers
        }
        assert feed.partner_membership() == feed.expected_membership() - rejected


def test_a_refused_refresh_token_is_an_error_saying_reauthenticate() -> None:
    with _platform() as platform:
        feed = _ready_feed(platform)
        platform.partner.set_scenario({"partner": "linkedin", "presets": ["invalid-grant"]})
        platform.clock.advance(61 * 86400)  # LinkedIn's 60-day access token expired
        feed.upsert(make_users(3, seed=1, account_ratio=0.0))
        batches = feed.flush()
        attempt = batches[0].attempts[0]
        assert attempt.status == "ERROR"
        assert batches[0].outcome == "ERROR"
        tokens = [e for e in platform.partner.ledger.entries if e.route == "POST /oauth/token"]
        assert [e.error_code for e in tokens] == [None, "invalid_grant"]
        assert tokens[-1].signal == "invalid_grant"
        answer = [ex for ex in platform.trace.exchanges() if ex.path == "/v1/batch_update"][-1]
        assert b"re-authentication is needed" in answer.response_body


# --------------------------------------------------------------------------- troubleshoot


def test_troubleshoot_shows_the_dmp_segment_and_its_counts() -> None:
    with _platform() as platform:
        feed = _ready_feed(platform)
        feed.upsert([SimUser(f"up-{i}", emails=(f"u{i}@x.org",)) for i in range(300)])
        feed.flush()
        platform.clock.advance(86400)  # processed
        answer = feed.troubleshoot()
        assert answer.status == 200
        data = json.loads(answer.body)["data"]
        audience = data["destination_audience"]
        assert audience["id"] == 1000001
        assert audience["inputCount"] == 300
        assert data["match_rate"] == round(audience["matchedCount"] / 300, 4)


# --------------------------------------------------------------------------- OAuth, properties

PARTNER = "https://api.linkedin.test"
Call = Callable[[str, Any], Awaitable[httpx.Response]]


class World:
    """The LinkedIn face and a gateway on one respx router, the connector called directly
    (the OAuth and dynamic-property routes have no feed)."""

    def __init__(self) -> None:
        self.partner = Partner(dialect="linkedin")
        self.gateway = Gateway()
        secrets = self.partner.credentials
        self.gateway.set_configuration_file(
            "technical_config", technical_config(self.partner, PARTNER)
        )
        self.gateway.set_configuration_file(
            "credentials",
            {
                "client_id": secrets.client_id,
                "client_secret": secrets.client_secret,
                "refresh_token": secrets.refresh_token,
            },
        )
        self.router = respx.MockRouter(assert_all_called=False)
        self.partner.mount(self.router, PARTNER)
        self.gateway.mount(self.router)
        settings = PluginSettings(
            worker_id=self.gateway.worker_id, authentication_token=self.gateway.token
        )
        self.connector = LinkedInReferenceConnector(settings, clock=self.partner.clock.now)

    def run(self, script: Callable[[Call], Awaitable[None]]) -> None:
        async def main() -> None:
            transport = httpx.ASGITransport(app=self.connector)
            async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:

                async def call(path: str, body: Any) -> httpx.Response:
                    return await client.post(path, content=json.dumps(body).encode())

                await script(call)
            await self.connector.aclose()

        with self.router:
            asyncio.run(main())


def _consent(login_url: str) -> dict[str, str]:
    with httpx.Client() as client:
        response = client.get(login_url)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {key: values[0] for key, values in query.items()}


def test_authentication_goes_through_linkedin_oauth() -> None:
    world = World()
    query = {"datamart_id": "1500", "plugin_version_id": "77", "user_id": "user-1"}

    async def script(call: Call) -> None:
        first = (await call("/v1/authentication_status_queries", query)).json()
        assert first["status"] == "not_authenticated"
        login_url = first["data"]["login_url"]
        assert login_url.startswith(f"{PARTNER}/oauth/v2/authorization?response_type=code&")
        params = await asyncio.to_thread(_consent, login_url)
        auth = {"user_id": "user-1", "plugin_version_id": "77", "params": params}
        answer = await call("/v1/authentication", auth)
        assert answer.json()["status"] == "ok"
        now = (await call("/v1/authentication_status_queries", query)).json()
        assert now["status"] == "authenticated"

    world.run(script)
    grants = [e.grant_type for e in world.partner.ledger.entries if e.grant_type]
    assert grants == ["authorization_code", "refresh_token"]
    assert all(
        e.dialect_route == "POST /oauth/v2/accessToken"
        for e in world.partner.ledger.entries
        if e.grant_type
    )


def test_dynamic_properties_list_the_accounts_segments() -> None:
    world = World()
    world.partner.create_segment("acc-1", "first")
    world.partner.create_segment("acc-1", "second")
    body = {
        "datamart_id": "1500",
        "user_id": "user-1",
        "properties": [
            {
                "technical_name": "partner_account_id",
                "property_type": "STRING",
                "value": {"value": "acc-1"},
            }
        ],
    }

    async def script(call: Call) -> None:
        answer = (await call("/v1/dynamic_property_values_queries", body)).json()
        assert answer["status"] == "ok"
        by_name = {d["property_technical_name"]: d["enum"] for d in answer["data"]}
        assert by_name["partner_segment_id"] == [
            {"label": "first", "value": "1000001"},
            {"label": "second", "value": "1000002"},
        ]

    world.run(script)


@pytest.mark.parametrize("dialect", ["generic", "meta"])
def test_a_technical_config_of_another_dialect_is_refused(dialect: str) -> None:
    with Platform(connector=LinkedInReferenceConnector, partner=dialect) as platform:
        feed = platform.new_feed(identifying=LINKEDIN_KINDS)
        created = feed.create()
        assert not created.ok
        if dialect == "meta":
            assert "speaks LinkedIn" in str(created)


def test_no_secret_reaches_an_answer_or_a_log() -> None:
    with _platform("token-expiry-mid-upload") as platform:
        feed = _ready_feed(platform)
        for seed in range(3):
            feed.upsert(make_users(4, seed=seed, account_ratio=0.0))
            feed.flush()
        secrets = [
            platform.partner.credentials.client_secret,
            platform.partner.credentials.refresh_token,
        ]
        tokens = {e.token for e in platform.partner.ledger.entries if e.token}
        assert tokens  # fingerprints only
        for ex in platform.trace.exchanges():
            if ex.leg == "connector->partner":
                continue
            for secret in secrets:
                assert secret.encode() not in ex.response_body
        assert platform.log.leaks == []
