"""The reference connectors against the in-process fake partner and fake gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from contracts.routes import DELAY_HEADER
from fake_partner import Partner
from harness.gateway import FeedSetup, Gateway
from harness.reference import (
    ClassicReferenceConnector,
    FileDeliveryReferenceConnector,
    ReferenceConnector,
)
from harness.reference.core import ReferenceCore
from harness.sdk import PluginSettings
from harness.users import email_hash

PARTNER = "https://partner.test"
FEED = "feed-1"
SEGMENT = "seg-1"
UUID_A = "6f1c2b9e-3d4a-4b8e-9f10-1234567890ab"
UUID_B = "0a1b2c3d-4e5f-4a6b-8c7d-0123456789ef"
ALL_KINDS = ("USER_EMAIL", "USER_DEVICE_POINT", "USER_ACCOUNT")


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Call = Callable[[str, Any], Awaitable[Answer]]


class World:
    """A fake partner and gateway on one respx router, and a reference connector on them."""

    def __init__(
        self,
        scenario: Any = None,
        *,
        connector: type[ReferenceCore] = ReferenceConnector,
        max_operations: int = 10_000,
        skip_files: Sequence[str] = (),
    ) -> None:
        self.partner = Partner(scenario)
        self.gateway = Gateway()
        self.secrets = self.partner.credentials
        files: dict[str, dict[str, Any]] = {
            "technical_config": {
                "partner_endpoint": PARTNER,
                "partner_api_version": "v1",
                "max_operations_per_request": max_operations,
            },
            "credentials": {
                "client_id": self.secrets.client_id,
                "client_secret": self.secrets.client_secret,
                "refresh_token": self.secrets.refresh_token,
            },
        }
        for name, content in files.items():
            if name not in skip_files:
                self.gateway.set_configuration_file(name, content)
        self.router = respx.MockRouter(assert_all_called=False)
        self.partner.mount(self.router, PARTNER)
        self.gateway.mount(self.router)
        settings = PluginSettings(
            worker_id=self.gateway.worker_id, authentication_token=self.gateway.token
        )
        self.connector = connector(settings, clock=self.partner.clock.now)

    def add_feed(
        self,
        feed_id: str = FEED,
        *,
        properties: Mapping[str, str | None] | None = None,
        identifying: Sequence[str] = ALL_KINDS,
        segment_name: str = "Sports fans",
    ) -> None:
        props: dict[str, str | None] = {"partner_account_id": "acc-1"}
        props.update(properties or {})
        self.gateway.add_feed(
            FeedSetup(
                feed_id,
                segment={"id": f"{SEGMENT}-{feed_id}", "name": segment_name},
                properties={k: v for k, v in props.items()},
                selected_identifying_resources=identifying,
            )
        )

    def run(self, script: Callable[[Call], Awaitable[None]]) -> None:
        """Run ``script(call)`` on one event loop with the partner and gateway mocked."""

        async def main() -> None:
            transport = httpx.ASGITransport(app=self.connector)
            async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:

                async def call(path: str, body: Any) -> Answer:
                    response = await client.post(path, content=json.dumps(body).encode())
                    return Answer(response.status_code, response.headers, response.content)

                await script(call)
            await self.connector.aclose()

        with self.router:
            asyncio.run(main())

    def segment_id(self, feed_id: str = FEED) -> str:
        value = self.gateway.property_value(feed_id, "partner_segment_id")
        assert value
        return value

    def token_requests(self) -> int:
        return len([e for e in self.partner.ledger if e.path == "/oauth/token"])


def ids(feed_id: str = FEED) -> dict[str, str]:
    return {"feed_id": feed_id, "datamart_id": "1500", "segment_id": f"{SEGMENT}-{feed_id}"}


def email(hash_value: str) -> dict[str, Any]:
    return {
        "type": "USER_EMAIL",
        "hash": hash_value,
        "creation_ts": 1,
        "last_activity_ts": 1,
        "providers": [],
    }


def device(user_agent_id: str, kind: str = "MOBILE_ADVERTISING_ID") -> dict[str, Any]:
    return {
        "type": "USER_DEVICE_POINT",
        "id": "dev-1",
        "creation_ts": 1,
        "last_activity_ts": 1,
        "technical_identifiers": [
            {
                "type": kind,
                "user_agent_id": user_agent_id,
                "registry_id": "1000",
                "creation_ts": 1,
                "last_activity_ts": 1,
            }
        ],
    }


def account(user_account_id: str) -> dict[str, Any]:
    return {
        "type": "USER_ACCOUNT",
        "user_account_id": user_account_id,
        "creation_ts": 1,
        "compartment_id": 1,
    }


def update(identifiers: list[dict[str, Any]], operation: str = "UPSERT") -> dict[str, Any]:
    return {
        **ids(),
        "session_id": "sess-1",
        "user_identifiers": identifiers,
        "user_profiles": [],
        "ts": 1,
        "operation": operation,
    }


def batch(contents: list[Any], feed_id: str = FEED) -> dict[str, Any]:
    return {
        "batch_content": contents,
        "ts": 1,
        "context": {
            "endpoint": "/v1/user_segment_update",
            "feed_id": feed_id,
            "feed_session_id": "sess-1",
            "segment_id": f"{SEGMENT}-{feed_id}",
            "datamart_id": "1500",
            "grouping_key": f"{SEGMENT}-{feed_id}_{feed_id}",
        },
    }


def op(action: str, *pairs: tuple[str, str]) -> dict[str, Any]:
    return {"action": action, "identifiers": [{"type": t, "value": v} for t, v in pairs]}


async def create_and_connect(world: World, call: Call, feed_id: str = FEED) -> None:
    assert (await call("/v1/external_segment_creation", ids(feed_id))).status == 200
    world.partner.clock.advance(61)  # past the default 60 s of provisioning
    assert (await call("/v1/external_segment_connection", ids(feed_id))).status == 200


def assert_no_secret(world: World, answer: Answer) -> None:
    text = answer.body.decode() + json.dumps(dict(answer.headers))
    for secret in (world.secrets.client_secret, world.secrets.refresh_token):
        assert secret not in text


# --------------------------------------------------------------------------- creation, connection


def test_creation_creates_one_segment_and_writes_its_id_back() -> None:
    world = World()
    world.add_feed()

    async def script(call: Call) -> None:
        answer = await call("/v1/external_segment_creation", ids())
        assert (answer.status, answer.json["status"]) == (200, "ok")
        again = await call("/v1/external_segment_creation", ids())
        assert (again.status, again.json["status"]) == (200, "ok")

    world.run(script)
    segments = world.partner.segment_ids("acc-1")
    assert len(segments) == 1
    assert world.segment_id() == segments[0]
    assert world.partner.segment(segments[0])["name"] == "Sports fans"
    writes = world.gateway.property_writes
    assert [(w.method, w.technical_name) for w in writes] == [("POST", "partner_segment_id")]


def test_creation_reuses_the_409_segment_and_puts_the_existing_property() -> None:
    world = World()
    world.add_feed("feed-1", segment_name="Shared")
    world.add_feed("feed-2", segment_name="Shared", properties={"partner_segment_id": ""})

    async def script(call: Call) -> None:
        assert (await call("/v1/external_segment_creation", ids("feed-1"))).status == 200
        answer = await call("/v1/external_segment_creation", ids("feed-2"))
        assert answer.status == 200
        assert "reused" in answer.json["message"]

    world.run(script)
    assert len(world.partner.segment_ids("acc-1")) == 1
    assert world.segment_id("feed-2") == world.segment_id("feed-1")
    methods = [(w.feed_id, w.method) for w in world.gateway.property_writes]
    assert methods == [("feed-1", "POST"), ("feed-2", "PUT")]


def test_segment_name_property_overrides_the_mediarithmics_name() -> None:
    world = World()
    world.add_feed(properties={"segment_name": "Custom name"})
    world.run(lambda call: _ok(call("/v1/external_segment_creation", ids())))
    assert world.partner.segment(world.segment_id())["name"] == "Custom name"


async def _ok(pending: Awaitable[Answer]) -> None:
    assert (await pending).status == 200


@pytest.mark.parametrize(
    ("setup", "named"),
    [
        ({"properties": {"partner_account_id": ""}}, "partner_account_id"),
        ({"identifying": ()}, "identifying resource"),
        ({"identifying": ("USER_PROFILE",)}, "identifying resource"),
        ({"file": "technical_config"}, "technical_config"),
        ({"file": "credentials"}, "credentials"),
        ({"missing": "technical_config"}, "technical_config"),
        ({"missing": "credentials"}, "credentials"),
        ({"bad_json": "technical_config"}, "technical_config"),
    ],
)
def test_invalid_config_is_an_error_naming_it_and_creates_nothing(
    setup: dict[str, Any], named: str
) -> None:
    world = World(skip_files=[setup["missing"]] if "missing" in setup else [])
    world.add_feed(
        properties=setup.get("properties"), identifying=setup.get("identifying", ALL_KINDS)
    )
    if "file" in setup:
        world.gateway.set_configuration_file(setup["file"], {"unrelated": 1})
    if "bad_json" in setup:
        world.gateway.set_configuration_file(setup["bad_json"], b"{not json")

    async def script(call: Call) -> None:
        answer = await call("/v1/external_segment_creation", ids())
        assert answer.status == 500
        assert answer.json["status"] == "error"
        assert named in answer.json["message"]
        assert_no_secret(world, answer)

    world.run(script)
    assert world.partner.segment_ids() == []
    assert not [e for e in world.partner.ledger if e.path.startswith("/v1/")]


def test_connection_is_not_ready_while_provisioning_then_ok() -> None:
    world = World()
    world.add_feed()

    async def script(call: Call) -> None:
        assert (await call("/v1/external_segment_creation", ids())).status == 200
        answer = await call("/v1/external_segment_connection", ids())
        assert (answer.status, answer.json["status"]) == (502, "external_segment_not_ready_yet")
        world.partner.clock.advance(30)
        answer = await call("/v1/external_segment_connection", ids())
        assert answer.status == 502
        world.partner.clock.advance(31)
        answer = await call("/v1/external_segment_connection", ids())
        assert (answer.status, answer.json["status"]) == (200, "ok")

    world.run(script)


# --------------------------------------------------------------------------- updates


def test_update_maps_each_identifier_kind() -> None:
    world = World()
    world.add_feed()
    address_hash = email_hash("Jane@Example.com")
    request = update(
        [
            {"type": "USER_POINT", "user_point_id": "up-1", "creation_ts": 1},
            email(address_hash.upper()),
            device(f"mob:ios:raw:{UUID_A}"),
            device("inst-9", kind="INSTALLATION_ID"),
            account("crm-42"),
        ]
    )

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        answer = await call("/v1/user_segment_update", request)
        assert answer.status == 200
        body = answer.json
        assert body["status"] == "ok"
        [item] = body["data"]
        assert item["type"] == "BATCH_DELIVERY"
        assert item["grouping_key"] == f"{SEGMENT}-{FEED}_{FEED}"
        assert item["content"] == op(
            "ADD",
            ("EMAIL_SHA256", address_hash),
            ("MAID", UUID_A),
            ("PARTNER_USER_ID", "crm-42"),
        )
        assert [s["identifier"] for s in body["stats"]] == [
            address_hash.upper(),
            f"mob:ios:raw:{UUID_A}",
            "crm-42",
        ]
        deleted = await call("/v1/user_segment_update", update([account("crm-42")], "DELETE"))
        assert deleted.json["data"][0]["content"] == op("REMOVE", ("PARTNER_USER_ID", "crm-42"))

    world.run(script)


def test_update_follows_the_feed_selection_and_reports_no_eligible_identifier() -> None:
    world = World()
    world.add_feed(identifying=("USER_EMAIL",))

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        answer = await call(
            "/v1/user_segment_update", update([device(f"mob:android:raw:{UUID_B}"), account("a")])
        )
        assert (answer.status, answer.json["status"]) == (400, "no_eligible_identifier")
        raw = email("jane@example.com")  # a raw address where the hash should be: never sent
        answer = await call("/v1/user_segment_update", update([raw]))
        assert answer.status == 400

    world.run(script)


# --------------------------------------------------------------------------- batches


def test_batch_sends_and_counts_per_item_results_honestly() -> None:
    world = World()
    world.add_feed()
    good = [op("ADD", ("EMAIL_SHA256", email_hash(f"u{i}@x.org"))) for i in range(4)]
    contents: list[Any] = [
        good[0],
        json.dumps(good[1]),  # the SDK passes JSON strings through as well
        good[2],
        op("ADD", ("EMAIL_SHA256", "jane@example.com")),  # raw PII: refused locally
        op("ADD", ("EMAIL_SHA256", "abc123")),  # not a SHA-256: refused locally
        op("ADD", ("MAID", "not-a-uuid")),  # the partner rejects it
        "{not json",
        op("DROP", ("MAID", UUID_A)),
        good[3],
    ]

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        answer = await call("/v1/batch_update", batch(contents))
        assert answer.status == 200
        assert answer.json["status"] == "OK"
        assert answer.json["sent_items_in_success"] == 4
        assert answer.json["sent_items_in_error"] == 5
        assert set(answer.json) <= {
            "status",
            "sent_items_in_success",
            "sent_items_in_error",
            "message",
        }

    world.run(script)
    segment_id = world.segment_id()
    assert world.partner.members(segment_id) == {
        ("EMAIL_SHA256", email_hash(f"u{i}@x.org")) for i in range(4)
    }
    accepted = world.partner.ledger.accepted_operations(segment_id)
    assert len(accepted) == 4
    assert not any("@" in value for _, value in world.partner.ledger.values_seen())


def test_partner_side_item_rejections_are_counted_as_errors() -> None:
    world = World("mixed-invalid-items")
    world.add_feed()
    contents = [op("ADD", ("PARTNER_USER_ID", f"user-{i}")) for i in range(200)]

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        answer = await call("/v1/batch_update", batch(contents))
        assert answer.status == 200
        success = answer.json["sent_items_in_success"]
        accepted = world.partner.ledger.accepted_operations(world.segment_id())
        assert success == len(accepted) < 200
        assert answer.json["sent_items_in_error"] == 200 - success
        assert "IDENTIFIER_REJECTED" in answer.json["message"]

    world.run(script)


def test_empty_batch_is_ok_zero_zero() -> None:
    world = World()
    world.add_feed()

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        answer = await call("/v1/batch_update", batch([]))
        assert (answer.status, answer.json) == (
            200,
            {"status": "OK", "sent_items_in_success": 0, "sent_items_in_error": 0},
        )

    world.run(script)
    assert world.partner.ledger.uploads() == []


def test_large_batches_are_split_at_the_operation_limit() -> None:
    world = World(max_operations=3)
    world.add_feed()
    contents = [op("ADD", ("PARTNER_USER_ID", f"user-{i}")) for i in range(7)]

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        answer = await call("/v1/batch_update", batch(contents))
        assert answer.json["sent_items_in_success"] == 7

    world.run(script)
    assert [len(e.operations) for e in world.partner.ledger.uploads()] == [3, 3, 1]


@pytest.mark.parametrize(
    ("scenario", "delay"),
    [("rate-limit-burst", "30000"), ("rate-limit-no-retry-after", "60000")],
)
def test_rate_limit_answers_retry_with_the_delay(scenario: str, delay: str) -> None:
    world = World(scenario)
    world.add_feed()
    contents = [op("ADD", ("PARTNER_USER_ID", "user-1"))]

    async def script(call: Call) -> None:
        await create_and_connect(world, call)  # partner /v1 calls 1 and 2
        answer = await call("/v1/batch_update", batch(contents))  # call 3: 429
        assert answer.status == 503
        assert answer.json["status"] == "RETRY"
        assert answer.headers[DELAY_HEADER] == delay
        assert answer.json["sent_items_in_success"] + answer.json["sent_items_in_error"] == 1
        assert "next_msg_delay_in_ms" not in answer.json

    world.run(script)


@pytest.mark.parametrize("scenario", ["ambiguous-503", "dropped-connection", "ambiguous-drop"])
def test_transient_failures_answer_retry_and_the_resend_converges(scenario: str) -> None:
    world = World(scenario)
    world.add_feed()
    contents = [op("ADD", ("PARTNER_USER_ID", f"user-{i}")) for i in range(3)]

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        first = await call("/v1/batch_update", batch(contents))
        assert (first.status, first.json["status"]) == (503, "RETRY")
        assert (first.json["sent_items_in_success"], first.json["sent_items_in_error"]) == (0, 3)
        second = await call("/v1/batch_update", batch(contents))
        assert (second.status, second.json["sent_items_in_success"]) == (200, 3)

    world.run(script)
    assert world.partner.members(world.segment_id()) == {
        ("PARTNER_USER_ID", f"user-{i}") for i in range(3)
    }


def test_token_expiry_mid_upload_is_refreshed_once_and_nothing_is_lost() -> None:
    world = World("token-expiry-mid-upload")
    world.add_feed()

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        assert world.token_requests() == 1  # one token for creation and connection
        for i in range(3):
            contents = [op("ADD", ("PARTNER_USER_ID", f"user-{i}"))]
            answer = await call("/v1/batch_update", batch(contents))
            assert (answer.status, answer.json["sent_items_in_success"]) == (200, 1)

    world.run(script)
    assert world.token_requests() == 2  # the expired token was refreshed once, only once
    assert len(world.partner.members(world.segment_id())) == 3


def test_refused_refresh_token_is_an_error_saying_reauthenticate() -> None:
    world = World()
    world.add_feed()

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        world.partner.set_scenario("invalid-grant")
        world.partner.clock.advance(7200)  # the access token expired: a refresh is due
        answer = await call("/v1/batch_update", batch([op("ADD", ("PARTNER_USER_ID", "u"))]))
        assert (answer.status, answer.json["status"]) == (400, "ERROR")
        assert "re-authentication is needed" in answer.json["message"]
        assert (answer.json["sent_items_in_success"], answer.json["sent_items_in_error"]) == (0, 1)
        assert_no_secret(world, answer)

    world.run(script)
    assert world.token_requests() == 2  # no retry storm


# --------------------------------------------------------------------------- troubleshoot


def test_troubleshoot_shows_the_partner_snapshot() -> None:
    world = World()
    world.add_feed()
    contents = [op("ADD", ("PARTNER_USER_ID", f"user-{i}")) for i in range(20)]

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        before = await call("/v1/troubleshoot", {**ids(), "action": "FETCH_DESTINATION_AUDIENCE"})
        assert before.status == 200
        assert before.json["data"]["match_rate"] is None
        await call("/v1/batch_update", batch(contents))
        world.partner.clock.advance(31)  # processing done
        answer = await call("/v1/troubleshoot", {**ids(), "action": "FETCH_DESTINATION_AUDIENCE"})
        assert answer.status == 200
        data = answer.json["data"]
        snapshot = world.partner.segment(world.segment_id())
        for key in ("id", "input_count", "matched_count", "match_rate", "audience_size"):
            assert data["destination_audience"][key] == snapshot[key]
        assert data["destination_audience"]["input_count"] == 20
        assert data["match_rate"] == snapshot["match_rate"]
        other = await call("/v1/troubleshoot", {**ids(), "action": "SOMETHING_ELSE"})
        assert (other.status, other.json["status"]) == (400, "not_implemented")

    world.run(script)


# --------------------------------------------------------------------------- classic, file delivery


def test_classic_connector_sends_each_update_and_retries_on_429() -> None:
    world = World("rate-limit-burst", connector=ClassicReferenceConnector)
    world.add_feed()

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        limited = await call("/v1/user_segment_update", update([account("crm-1")]))
        assert (limited.status, limited.json["status"]) == (429, "retry")
        assert limited.headers[DELAY_HEADER] == "30000"
        assert limited.json["next_msg_delay_in_ms"] == 30000
        world.partner.clock.advance(30)
        for _ in range(2):  # the burst's 4th and 5th calls
            await call("/v1/user_segment_update", update([account("crm-1")]))
        answer = await call("/v1/user_segment_update", update([account("crm-1")]))
        assert (answer.status, answer.json["status"]) == (200, "ok")
        assert [s["sync_result"] for s in answer.json["stats"]] == ["SUCCESS"]
        gone = await call("/v1/user_segment_update", update([account("crm-1")], "DELETE"))
        assert gone.status == 200

    world.run(script)
    assert world.partner.members(world.segment_id()) == frozenset()


def test_file_delivery_connector_answers_csv_lines() -> None:
    world = World(connector=FileDeliveryReferenceConnector)
    world.add_feed()

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        answer = await call("/v1/user_segment_update", update([account("crm-1"), email("A" * 64)]))
        assert answer.status == 200
        items = answer.json["data"]
        assert [i["content"] for i in items] == [
            "ADD,PARTNER_USER_ID,crm-1\n",
            "ADD,EMAIL_SHA256," + "a" * 64 + "\n",
        ]
        assert {i["type"] for i in items} == {"FILE_DELIVERY"}
        assert {i["destination_token"] for i in items} == {f"partner-segment-{world.segment_id()}"}
        assert {i["grouping_key"] for i in items} == {f"{SEGMENT}-{FEED}_{FEED}"}
        refused = await call("/v1/batch_update", batch([]))
        assert refused.status == 500

    world.run(script)
    assert world.partner.ledger.uploads() == []


# --------------------------------------------------------------------------- OAuth


def status_query(user: str = "user-1") -> dict[str, Any]:
    return {"datamart_id": "1500", "plugin_version_id": "77", "user_id": user}


def consent(world: World, login_url: str) -> dict[str, str]:
    """Follow the login URL at the partner: the redirect's query (code and state)."""
    with httpx.Client() as client:
        response = client.get(login_url)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {key: values[0] for key, values in query.items()}


def test_authentication_round_trip_and_logout() -> None:
    world = World()

    async def script(call: Call) -> None:
        first = await call("/v1/authentication_status_queries", status_query())
        assert (first.status, first.json["status"]) == (200, "not_authenticated")
        login_url = first.json["data"]["login_url"]
        assert login_url.startswith(f"{PARTNER}/oauth/authorize?response_type=code&")
        query = parse_qs(urlsplit(login_url).query)
        assert query["redirect_uri"] == [
            "https://navigator.mediarithmics.com/v2/plugin_versions/77/auth_callback"
        ]
        params = await asyncio.to_thread(consent, world, login_url)
        assert params["state"] == query["state"][0]
        auth = {"user_id": "user-1", "plugin_version_id": "77", "params": params}
        answer = await call("/v1/authentication", auth)
        assert (answer.status, answer.json["status"]) == (200, "ok")
        assert "refresh_token" not in answer.json
        assert_no_secret(world, answer)
        now = await call("/v1/authentication_status_queries", status_query())
        assert now.json["status"] == "authenticated"
        out = await call("/v1/logout", {**status_query(), "datamart_id": "1500"})
        assert (out.status, out.json["status"]) == (200, "ok")
        after = await call("/v1/authentication_status_queries", status_query())
        assert after.json["status"] == "not_authenticated"

    world.run(script)
    assert world.gateway.configuration_file("oauth_state_key")  # generated and stored once
    stored = json.loads(world.gateway.configuration_file("oauth_user_credentials") or b"{}")
    assert stored == {}


def test_a_tampered_or_forged_state_is_refused_and_stores_nothing() -> None:
    world = World()

    async def script(call: Call) -> None:
        first = await call("/v1/authentication_status_queries", status_query())
        params = await asyncio.to_thread(consent, world, first.json["data"]["login_url"])
        state = params["state"]
        flipped = state[:20] + ("A" if state[20] != "A" else "B") + state[21:]
        forged = "gAAAAAB" + state[7:][::-1]
        for bad in (flipped, forged, "not-a-state"):
            auth = {
                "user_id": "user-1",
                "plugin_version_id": "77",
                "params": {"code": params["code"], "state": bad},
            }
            answer = await call("/v1/authentication", auth)
            assert (answer.status, answer.json["status"]) == (500, "error")
            assert "state" in answer.json["message"]
        other_user = {"user_id": "user-2", "plugin_version_id": "77", "params": params}
        answer = await call("/v1/authentication", other_user)
        assert answer.status == 500

    world.run(script)
    assert world.gateway.configuration_file("oauth_user_credentials") is None
    assert not [e for e in world.partner.ledger if e.grant_type == "authorization_code"]


def test_feed_destination_oauth_stores_the_destination_credentials() -> None:
    world = World()

    async def script(call: Call) -> None:
        body = {"feed_destination_id": "fd-1", "plugin_version_id": "77"}
        redirect = await call("/v1/oauth_redirect_url", body)
        assert redirect.status == 200
        login_url = redirect.json["login_url"]
        assert parse_qs(urlsplit(login_url).query)["feed_destination_id"] == ["fd-1"]
        params = await asyncio.to_thread(consent, world, login_url)
        auth = {
            "user_id": "user-1",
            "plugin_version_id": "77",
            "feed_destination_id": "fd-1",
            "params": {"code": params["code"], "state": params["state"]},
        }
        answer = await call("/v1/authentication", auth)
        assert (answer.status, answer.json) == (
            200,
            {"status": "ok", "message": answer.json["message"]},
        )
        checked = await call("/v1/test_authentication", {"feed_destination_id": "fd-1"})
        assert (checked.status, checked.json["status"]) == (200, "ok")

    world.run(script)
    stored = world.gateway.credentials("fd-1")
    assert stored is not None
    assert stored.scheme == "OAUTH2"
    assert stored.credentials["refresh_token"]


def test_test_authentication_flags_a_refused_refresh_token() -> None:
    world = World()
    world.gateway.set_credentials("fd-2", "OAUTH2", {"refresh_token": "rt-unknown"})

    async def script(call: Call) -> None:
        answer = await call("/v1/test_authentication", {"feed_destination_id": "fd-2"})
        assert (answer.status, answer.json["status"]) == (401, "invalid_credentials")
        assert "rt-unknown" not in answer.body.decode()

    world.run(script)


def test_dynamic_properties_list_accounts_then_segments() -> None:
    world = World()
    world.add_feed()

    async def script(call: Call) -> None:
        await create_and_connect(world, call)
        query = {"datamart_id": "1500", "user_id": "user-1"}
        accounts = await call("/v1/dynamic_property_values_queries", query)
        assert accounts.status == 200
        [choice] = accounts.json["data"]
        assert choice["property_technical_name"] == "partner_account_id"
        assert [e["value"] for e in choice["enum"]] == ["acc-1"]
        assert all(e["label"] for e in choice["enum"])
        chosen = {
            **query,
            "properties": [
                {
                    "technical_name": "partner_account_id",
                    "property_type": "STRING",
                    "value": {"value": "acc-1"},
                }
            ],
        }
        both = await call("/v1/dynamic_property_values_queries", chosen)
        names = [d["property_technical_name"] for d in both.json["data"]]
        assert names == ["partner_account_id", "partner_segment_id"]
        segments = both.json["data"][1]["enum"]
        assert segments == [{"label": "Sports fans", "value": world.segment_id()}]

    world.run(script)
