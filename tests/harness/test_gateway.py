"""The fake plugin gateway answers the outbound API of plugin-contract.md, and only with auth."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from contracts.gateway import (
    AudienceSegmentExternalFeed,
    AudienceSegmentResource,
    DataListResponse,
    DataResponse,
    FeedDestinationCredentials,
    IntProperty,
    IntPropertyValue,
    PluginProperty,
    StringProperty,
    UserAgentIdentifierRealmSelection,
    string_property,
)
from harness.gateway import (
    DEFAULT_GATEWAY_URL,
    FeedSetup,
    Gateway,
    GatewaySetupError,
    UnknownFeedError,
    serve_gateway,
)

FEEDS = "/v1/audience_segment_external_feeds"
TOKEN = "s3cret-token"


@pytest.fixture
def gateway() -> Gateway:
    gw = Gateway(worker_id="worker-7", token=TOKEN)
    gw.add_feed(
        FeedSetup(
            "42",
            segment={"id": "451256", "name": "Buyers", "datamart_id": "1023"},
            properties={"partner_account_id": "acc-1"},
            selected_identifying_resources=["USER_EMAIL", "USER_DEVICE_POINT"],
            organisation_id="95",
            created_by="user-3",
        )
    )
    return gw


@pytest.fixture
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with (
        gateway.mock(),
        httpx.Client(base_url=DEFAULT_GATEWAY_URL, auth=("worker-7", TOKEN)) as http,
    ):
        yield http


def _error(response: httpx.Response) -> str:
    body = response.json()
    assert body["status"] == "error"
    message = body["message"]
    assert isinstance(message, str)
    return message


# --------------------------------------------------------------------------- feed and segment


def test_feed_is_served_in_the_data_envelope(client: httpx.Client) -> None:
    response = client.get(f"{FEEDS}/42")
    assert response.status_code == 200
    envelope = DataResponse[AudienceSegmentExternalFeed].model_validate(response.json())
    assert envelope.status == "ok"
    feed = envelope.data
    assert (feed.id, feed.organisation_id, feed.created_by) == ("42", "95", "user-3")
    assert response.json()["data"]["selected_identifying_resources"] == [
        {"type": "USER_EMAIL"},
        {"type": "USER_DEVICE_POINT"},
    ]


def test_segment_is_served_with_setup_and_defaults(client: httpx.Client) -> None:
    response = client.get(f"{FEEDS}/42/audience_segment")
    assert response.status_code == 200
    segment = DataResponse[AudienceSegmentResource].model_validate(response.json()).data
    assert (segment.id, segment.name, segment.datamart_id) == ("451256", "Buyers", "1023")
    assert segment.organisation_id == "95"
    assert segment.persisted is True


def test_properties_are_a_counted_list_of_instance_string_properties(
    client: httpx.Client,
) -> None:
    response = client.get(f"{FEEDS}/42/properties")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "count": 1,
        "data": [
            {
                "technical_name": "partner_account_id",
                "value": {"value": "acc-1"},
                "property_type": "STRING",
                "origin": "INSTANCE",
                "writable": True,
                "deletable": False,
            }
        ],
    }
    DataListResponse[PluginProperty].model_validate(response.json())


def test_unknown_feed_is_404_on_every_feed_route(client: httpx.Client) -> None:
    body = {"technical_name": "x", "value": {"value": "y"}}
    answers = [
        client.get(f"{FEEDS}/7"),
        client.get(f"{FEEDS}/7/properties"),
        client.get(f"{FEEDS}/7/audience_segment"),
        client.post(f"{FEEDS}/7/properties", json=body),
        client.put(f"{FEEDS}/7/properties/technical_name=x", json=body),
    ]
    for response in answers:
        assert response.status_code == 404
        assert "'7'" in _error(response)


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "auth",
    [None, ("worker-7", "wrong"), ("worker-1", TOKEN), ("worker-7", "")],
    ids=["none", "wrong-token", "wrong-worker", "empty-token"],
)
def test_calls_without_the_right_basic_auth_are_401(
    gateway: Gateway, auth: tuple[str, str] | None
) -> None:
    with gateway.mock(), httpx.Client(base_url=DEFAULT_GATEWAY_URL, auth=auth) as http:
        response = http.get(f"{FEEDS}/42")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    message = _error(response)
    assert TOKEN not in message
    assert gateway.calls[-1].status == 401


@pytest.mark.parametrize("header", ["Basic !!!notbase64", "Bearer abc", "Basic"])
def test_malformed_authorization_headers_are_401(gateway: Gateway, header: str) -> None:
    with gateway.mock():
        response = httpx.get(f"{DEFAULT_GATEWAY_URL}{FEEDS}/42", headers={"authorization": header})
    assert response.status_code == 401


def test_auth_is_checked_before_routing(gateway: Gateway) -> None:
    with gateway.mock():
        response = httpx.get(f"{DEFAULT_GATEWAY_URL}/v1/no/such/route")
    assert response.status_code == 401


def test_token_defaults_to_a_fresh_random_secret() -> None:
    first, second = Gateway(), Gateway()
    assert first.worker_id == "worker-1"
    assert len(first.token) >= 24
    assert first.token != second.token
    assert first.env == {"PLUGIN_WORKER_ID": "worker-1", "PLUGIN_AUTHENTICATION_TOKEN": first.token}
    assert first.token not in repr(first)


# --------------------------------------------------------------------------- property writes


def test_created_property_is_recorded_and_served(gateway: Gateway, client: httpx.Client) -> None:
    prop = string_property("partner_segment_id", "seg-9")
    response = client.post(f"{FEEDS}/42/properties", json=prop.model_dump(mode="json"))
    assert response.status_code == 200
    listed = DataListResponse[PluginProperty].model_validate(response.json())
    assert [p.technical_name for p in listed.data] == ["partner_account_id", "partner_segment_id"]

    served = client.get(f"{FEEDS}/42/properties").json()
    assert served["count"] == 2
    assert served["data"][1]["value"] == {"value": "seg-9"}
    assert gateway.property_value("42", "partner_segment_id") == "seg-9"
    (write,) = gateway.property_writes
    assert (write.feed_id, write.technical_name) == ("42", "partner_segment_id")
    assert write.method == "POST"
    assert (write.old_value, write.new_value) == (None, {"value": "seg-9"})


def test_updated_property_is_recorded_with_old_and_new_value(
    gateway: Gateway, client: httpx.Client
) -> None:
    sdk_body = {
        "technical_name": "partner_account_id",
        "value": {"value": "acc-2"},
        "property_type": "STRING",
        "origin": "INSTANCE",
        "writable": True,
        "deletable": False,
    }
    response = client.put(f"{FEEDS}/42/properties/technical_name=partner_account_id", json=sdk_body)
    assert response.status_code == 200
    assert client.get(f"{FEEDS}/42/properties").json()["data"] == [sdk_body]
    (write,) = gateway.property_writes
    assert write.method == "PUT"
    assert (write.old_value, write.new_value) == ({"value": "acc-1"}, {"value": "acc-2"})
    assert gateway.feed("42").string_value("partner_account_id") == "acc-2"


@pytest.mark.parametrize(
    "body",
    [{"value": {"value": "acc-3"}}, {"technical_name": "partner_account_id", "value": "acc-3"}],
    ids=["name-from-path", "bare-value"],
)
def test_update_tolerates_the_shapes_connectors_send(
    gateway: Gateway, client: httpx.Client, body: dict[str, Any]
) -> None:
    response = client.put(f"{FEEDS}/42/properties/technical_name=partner_account_id", json=body)
    assert response.status_code == 200
    prop = gateway.feed("42").property("partner_account_id")
    assert isinstance(prop, StringProperty)
    assert (prop.value.value, prop.origin, prop.writable) == ("acc-3", "INSTANCE", True)


def test_creating_an_existing_property_is_409_and_changes_nothing(
    gateway: Gateway, client: httpx.Client
) -> None:
    body = {"technical_name": "partner_account_id", "value": {"value": "other"}}
    response = client.post(f"{FEEDS}/42/properties", json=body)
    assert response.status_code == 409
    assert "PUT" in _error(response)
    assert gateway.property_value("42", "partner_account_id") == "acc-1"
    assert gateway.property_writes == ()


def test_updating_a_missing_property_is_404(gateway: Gateway, client: httpx.Client) -> None:
    response = client.put(
        f"{FEEDS}/42/properties/technical_name=nope", json={"value": {"value": "x"}}
    )
    assert response.status_code == 404
    assert "POST" in _error(response)
    assert gateway.feed("42").property("nope") is None


def test_a_non_writable_property_refuses_updates() -> None:
    gateway = Gateway(token=TOKEN)
    locked = string_property("mode", "fixed", origin="PLUGIN_STATIC", writable=False)
    gateway.add_feed(FeedSetup("1", properties={"mode": locked}))
    with gateway.mock():
        response = httpx.put(
            f"{DEFAULT_GATEWAY_URL}{FEEDS}/1/properties/technical_name=mode",
            json={"value": {"value": "changed"}},
            auth=(gateway.worker_id, TOKEN),
        )
    assert response.status_code == 403
    assert gateway.property_value("1", "mode") == "fixed"


_BAD_PROPERTY_BODIES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not-json", b"{nope"),
    ("json-array", b'[{"technical_name": "partner_account_id"}]'),
    ("no-value", b'{"technical_name": "partner_account_id"}'),
    ("value-not-string", b'{"value": {"value": 12}}'),
    ("name-mismatch", b'{"technical_name": "other", "value": {"value": "x"}}'),
    ("type-change", b'{"property_type": "INT", "value": {"value": 3}}'),
    ("bad-origin", b'{"value": {"value": "x"}, "origin": "SOMEWHERE"}'),
]


@pytest.mark.parametrize(
    "body", [b for _, b in _BAD_PROPERTY_BODIES], ids=[n for n, _ in _BAD_PROPERTY_BODIES]
)
def test_bad_property_updates_are_400_and_change_nothing(
    gateway: Gateway, client: httpx.Client, body: bytes
) -> None:
    before = client.get(f"{FEEDS}/42/properties").json()
    response = client.put(
        f"{FEEDS}/42/properties/technical_name=partner_account_id",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert _error(response).startswith("PUT property 'partner_account_id' of feed 42")
    assert client.get(f"{FEEDS}/42/properties").json() == before
    assert gateway.property_writes == ()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"value": {"value": "x"}}', "technical_name"),
        (b'{"technical_name": "", "value": {"value": "x"}}', "technical_name"),
        (b'{"technical_name": "n"}', "value"),
        (b"null", "JSON null, not an object"),
        (b'"text"', "JSON string, not an object"),
    ],
)
def test_bad_property_creations_are_400_naming_the_problem(
    gateway: Gateway, client: httpx.Client, body: bytes, named: str
) -> None:
    response = client.post(f"{FEEDS}/42/properties", content=body)
    assert response.status_code == 400
    assert named in _error(response)
    assert len(gateway.feed("42").properties) == 1


def test_a_created_property_of_another_type_keeps_its_type(
    gateway: Gateway, client: httpx.Client
) -> None:
    body = {"technical_name": "max", "property_type": "INT", "value": {"value": 5}}
    assert client.post(f"{FEEDS}/42/properties", json=body).status_code == 200
    prop = gateway.feed("42").property("max")
    assert isinstance(prop, IntProperty)
    assert prop.value.value == 5
    assert gateway.property_value("42", "max") is None  # not a STRING property


# --------------------------------------------------------------------------- files


def test_configuration_files_round_trip_binary(gateway: Gateway, client: httpx.Client) -> None:
    gateway.set_configuration_file("technical_config", {"partner_api_version": "v1"})
    response = client.get("/v1/configuration/technical_name=technical_config")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert json.loads(response.content) == {"partner_api_version": "v1"}

    blob = bytes(range(256))
    put = client.put("/v1/configuration/technical_name=blob", content=blob)
    assert put.status_code == 200
    assert put.json() == {"status": "ok", "data": {"technical_name": "blob", "size": 256}}
    assert client.get("/v1/configuration/technical_name=blob").content == blob
    assert gateway.configuration_file("blob") == blob


def test_unknown_configuration_file_is_404(client: httpx.Client) -> None:
    response = client.get("/v1/configuration/technical_name=credentials")
    assert response.status_code == 404
    assert "credentials" in _error(response)


def test_data_files_are_served_by_uri(gateway: Gateway, client: httpx.Client) -> None:
    gateway.set_data_file("mics://data_file/tenants/1/x.csv", b"a,b\n1,2\n")
    response = client.get("/v1/data_file/data", params={"uri": "mics://data_file/tenants/1/x.csv"})
    assert response.status_code == 200
    assert response.content == b"a,b\n1,2\n"
    assert client.get("/v1/data_file/data", params={"uri": "mics://other"}).status_code == 404
    missing = client.get("/v1/data_file/data")
    assert missing.status_code == 400
    assert "uri" in _error(missing)


# --------------------------------------------------------------------------- credentials


def test_credentials_are_read_and_upserted(gateway: Gateway, client: httpx.Client) -> None:
    gateway.set_credentials("77", "API_TOKEN", {"token": "t-1"})
    got = client.get("/v1/feed_destinations/77/credentials")
    assert got.status_code == 200
    data = DataResponse[FeedDestinationCredentials].model_validate(got.json()).data
    assert (data.scheme, data.credentials) == ("API_TOKEN", {"token": "t-1"})

    posted = client.post(
        "/v1/feed_destinations/77/credentials",
        json={"scheme": "OAUTH2", "credentials": {"refresh_token": "r-2"}},
    )
    assert posted.status_code == 200
    assert client.get("/v1/feed_destinations/77/credentials").json()["data"] == {
        "scheme": "OAUTH2",
        "credentials": {"refresh_token": "r-2"},
    }
    stored = gateway.credentials("77")
    assert stored is not None
    assert stored.credentials == {"refresh_token": "r-2"}


def test_credentials_post_creates_and_accepts_the_wrapped_request(
    gateway: Gateway, client: httpx.Client
) -> None:
    assert client.get("/v1/feed_destinations/5/credentials").status_code == 404
    wrapped = {
        "feed_destination_id": "5",
        "credentials": {"scheme": "LOGIN_PASSWORD", "credentials": {"login": "a", "password": "b"}},
    }
    assert client.post("/v1/feed_destinations/5/credentials", json=wrapped).status_code == 200
    stored = gateway.credentials("5")
    assert stored is not None
    assert stored.scheme == "LOGIN_PASSWORD"


@pytest.mark.parametrize(
    "body",
    [
        {"scheme": "MAGIC", "credentials": {"password": "hunter2"}},
        {"scheme": "OAUTH2"},
        {"scheme": "OAUTH2", "credentials": "hunter2"},
        {"feed_destination_id": "6", "credentials": {"scheme": "OAUTH2", "credentials": {}}},
    ],
    ids=["bad-scheme", "no-credentials", "credentials-not-object", "other-destination"],
)
def test_bad_credentials_are_400_without_echoing_secrets(
    gateway: Gateway, client: httpx.Client, body: dict[str, Any]
) -> None:
    gateway.set_credentials("5", "OAUTH2", {"refresh_token": "keep"})
    response = client.post("/v1/feed_destinations/5/credentials", json=body)
    assert response.status_code == 400
    assert "hunter2" not in _error(response)
    stored = gateway.credentials("5")
    assert stored is not None
    assert stored.credentials == {"refresh_token": "keep"}


# --------------------------------------------------------------------------- realms


def test_realms_are_served_for_known_datamarts(gateway: Gateway, client: httpx.Client) -> None:
    path = "/v1/datamarts/{}/user_agent_identifier_realm_selections"
    empty = client.get(path.format("1023"))  # the feed's datamart, no realms set
    assert empty.json() == {"status": "ok", "data": [], "count": 0}

    gateway.set_realms(
        "1023",
        [
            "MOBILE",
            {
                "realm_type": "WEB_DOMAIN",
                "web_domain": {"id": "9", "organisation_id": "95", "name": "s", "sld_name": "s.io"},
            },
        ],
    )
    response = client.get(path.format("1023"))
    listed = DataListResponse[UserAgentIdentifierRealmSelection].model_validate(response.json())
    assert listed.count == 2
    assert [r.realm_type for r in listed.data] == ["MOBILE", "WEB_DOMAIN"]
    assert {r.datamart_id for r in listed.data} == {"1023"}
    assert client.get(path.format("999")).status_code == 404


# --------------------------------------------------------------------------- routing and records


def test_unknown_route_is_404_and_wrong_method_is_405(client: httpx.Client) -> None:
    unknown = client.get("/v1/plugins/1")
    assert unknown.status_code == 404
    assert "/v1/plugins/1" in _error(unknown)
    wrong = client.delete(f"{FEEDS}/42/properties")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, POST"


def test_calls_are_recorded_without_secrets(gateway: Gateway, client: httpx.Client) -> None:
    client.get(f"{FEEDS}/42")
    client.get("/v1/data_file/data", params={"uri": "mics://x"})
    assert [(c.method, c.path, c.status) for c in gateway.calls] == [
        ("GET", f"{FEEDS}/42", 200),
        ("GET", "/v1/data_file/data", 404),
    ]
    assert gateway.calls[1].query == "uri=mics%3A%2F%2Fx"
    assert TOKEN not in repr(gateway.calls)


def test_observers_see_every_request_and_response(gateway: Gateway, client: httpx.Client) -> None:
    seen: list[tuple[str, int | None, BaseException | None]] = []

    def observe(
        request: httpx.Request, response: httpx.Response | None, error: BaseException | None
    ) -> None:
        seen.append((request.url.path, None if response is None else response.status_code, error))

    gateway.add_observer(observe)
    client.get(f"{FEEDS}/42")
    httpx.get(f"{DEFAULT_GATEWAY_URL}{FEEDS}/42")  # no auth: observed too
    gateway.remove_observer(observe)
    client.get(f"{FEEDS}/42")
    assert seen == [(f"{FEEDS}/42", 200, None), (f"{FEEDS}/42", 401, None)]


def test_concurrent_writes_are_all_recorded(gateway: Gateway, client: httpx.Client) -> None:
    def write(worker: int) -> None:
        for i in range(20):
            client.put(
                f"{FEEDS}/42/properties/technical_name=partner_account_id",
                json={"value": {"value": f"{worker}-{i}"}},
            )

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writes = gateway.property_writes
    assert len(writes) == 120
    assert len(gateway.calls) == 120
    # each write saw the value the previous one left: one total order
    assert all(a.new_value == b.old_value for a, b in itertools.pairwise(writes))
    assert gateway.property_value("42", "partner_account_id") == writes[-1].new_value["value"]


def test_async_clients_are_answered_in_process(gateway: Gateway) -> None:
    async def run() -> httpx.Response:
        async with httpx.AsyncClient(auth=("worker-7", TOKEN)) as http:
            return await http.post(
                f"{DEFAULT_GATEWAY_URL}{FEEDS}/42/properties",
                json={"technical_name": "segment_name", "value": {"value": "Buyers"}},
            )

    with gateway.mock():
        response = asyncio.run(run())
    assert response.status_code == 200
    assert gateway.property_value("42", "segment_name") == "Buyers"


def test_mount_on_a_shared_router_and_custom_base_url(gateway: Gateway) -> None:
    with respx.mock(assert_all_called=False) as router:
        gateway.mount(router, "http://127.0.0.1:9999")
        router.get("https://partner.test/ping").respond(204)
        assert httpx.get("https://partner.test/ping").status_code == 204
        response = httpx.get(f"http://127.0.0.1:9999{FEEDS}/42", auth=("worker-7", TOKEN))
    assert response.status_code == 200
    with pytest.raises(GatewaySetupError, match="without a path"):
        gateway.mount(respx.Router(), "http://gw.test/prefix")


def test_asgi_app_answers_like_handle(gateway: Gateway) -> None:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=gateway.asgi_app())
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gw", auth=("worker-7", TOKEN)
        ) as http:
            return await http.get(f"{FEEDS}/42/audience_segment")

    response = asyncio.run(run())
    assert response.status_code == 200
    assert response.json()["data"]["id"] == "451256"


# --------------------------------------------------------------------------- served


def test_served_gateway_answers_a_plain_client_over_loopback(gateway: Gateway) -> None:
    with serve_gateway(gateway, port=0) as served:
        assert served.host == "127.0.0.1"
        assert served.port > 0
        assert served.base_url == f"http://127.0.0.1:{served.port}"
        assert served.env["GATEWAY_PORT"] == str(served.port)
        with httpx.Client(base_url=served.base_url, auth=("worker-7", TOKEN)) as http:
            assert http.get(f"{FEEDS}/42").json()["data"]["id"] == "42"
            blob = b"\x00binary\xff"
            assert http.put("/v1/configuration/technical_name=b", content=blob).status_code == 200
            assert http.get("/v1/configuration/technical_name=b").content == blob
            put = http.put(
                f"{FEEDS}/42/properties/technical_name=partner_account_id",
                json={"value": {"value": "served"}},
            )
            assert put.status_code == 200
        assert httpx.get(f"{served.base_url}{FEEDS}/42").status_code == 401
    assert gateway.property_value("42", "partner_account_id") == "served"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{served.base_url}{FEEDS}/42")


# --------------------------------------------------------------------------- setup from Python


def test_feed_setup_accepts_full_property_models_and_defaults() -> None:
    gateway = Gateway()
    limit = IntProperty(technical_name="limit", value=IntPropertyValue(value=3), origin="PLUGIN")
    state = gateway.add_feed(FeedSetup("9", properties={"limit": limit, "empty": None}))
    assert state.feed.selected_identifying_resources is not None
    assert [r.type for r in state.feed.selected_identifying_resources] == ["USER_EMAIL"]
    assert state.segment.datamart_id == "1500"
    assert state.property("limit") == limit
    assert state.string_value("empty") is None
    state.properties[0].technical_name = "mutated"  # a copy: the gateway is unchanged
    assert gateway.feed("9").properties[0].technical_name == "limit"


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (FeedSetup("a/b"), "feed_id"),
        (FeedSetup("1", segment={"datamart_id": "2"}, datamart_id="3"), "datamart_id"),
        (FeedSetup("1", properties={"x": string_property("y", "v")}), "technical_name"),
        (FeedSetup("1", selected_identifying_resources=[{"no": "type"}]), "identifying"),
        (FeedSetup("1", segment={"persisted": "maybe"}), "persisted"),
    ],
    ids=["slash-in-id", "datamart-twice", "key-mismatch", "no-type", "bad-segment"],
)
def test_bad_feed_setups_are_refused_with_the_fix(setup: FeedSetup, match: str) -> None:
    with pytest.raises(GatewaySetupError, match=match):
        Gateway().add_feed(setup)


def test_setup_errors_for_duplicates_unknown_feeds_and_bad_values(gateway: Gateway) -> None:
    with pytest.raises(GatewaySetupError, match="already served"):
        gateway.add_feed(FeedSetup("42"))
    with pytest.raises(UnknownFeedError, match="add_feed"):
        gateway.feed("404")
    with pytest.raises(GatewaySetupError, match="OAUTH2"):
        gateway.set_credentials("1", "BASIC", {})  # type: ignore[arg-type]
    with pytest.raises(GatewaySetupError, match="realm"):
        gateway.set_realms("1023", [42])
    with pytest.raises(GatewaySetupError, match="worker_id"):
        Gateway(worker_id="a:b")


def test_gateway_requests_do_not_recompute_the_side_effect_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """respx reads the side effect's signature per request: it is stored, not recomputed."""
    import inspect

    signature_computations: list[object] = []
    original = inspect._signature_from_function  # type: ignore[attr-defined]

    def counting(*args: Any, **kwargs: Any) -> Any:
        signature_computations.append(args[1])
        return original(*args, **kwargs)

    gateway = Gateway()
    with gateway.mock() as router, httpx.Client() as client:
        monkeypatch.setattr(inspect, "_signature_from_function", counting)
        client.get(f"{DEFAULT_GATEWAY_URL}/v1/nothing-here")
        client.get(f"{DEFAULT_GATEWAY_URL}/v1/nothing-here")
        assert router.calls.call_count == 2  # the router forgets its calls when it stops
    assert signature_computations == []
