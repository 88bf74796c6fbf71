"""The Python connector base (``harness.sdk``) answers like the Node SDK, route by route."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import respx
from pydantic import BaseModel

from contracts.gateway import FeedDestinationCredentials
from contracts.plugin_api import (
    AuthenticationRequest,
    AuthenticationResponse,
    AuthenticationStatusQueryRequest,
    AuthenticationStatusQueryResponse,
    BatchUpdateRequest,
    BatchUpdateResponse,
    DynamicPropertyValuesQueryRequest,
    DynamicPropertyValuesQueryResponse,
    ExternalSegmentConnectionRequest,
    ExternalSegmentConnectionResponse,
    ExternalSegmentCreationRequest,
    ExternalSegmentCreationResponse,
    LogoutRequest,
    LogoutResponse,
    OAuthRedirectUrlRequest,
    OAuthRedirectUrlResponse,
    TestAuthenticationRequest,
    TestAuthenticationResponse,
    TroubleshootRequest,
    TroubleshootResponse,
    UserSegmentUpdateRequest,
    UserSegmentUpdateResponse,
)
from contracts.routes import DELAY_HEADER, ROUTES, route
from harness.gateway import FeedSetup, Gateway
from harness.sdk import (
    AudienceFeedConnector,
    BaseInstanceContext,
    BatchedAudienceFeedConnector,
    GatewayClient,
    GatewayError,
    GatewayNotFoundError,
    PluginSettings,
    SettingsError,
)

FEED = "feed-1"


class Clock:
    """A settable clock for the context cache."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Tiny(AudienceFeedConnector[BaseInstanceContext]):
    """A connector whose answers a test sets: ``answers[route name]`` or an exception."""

    def __init__(self, settings: PluginSettings | None, clock: Clock) -> None:
        super().__init__(settings, clock=clock)
        self.answers: dict[str, Any] = {}
        self.builds = 0
        self.seen: list[tuple[str, Any]] = []

    def _answer(self, name: str, default: BaseModel | None) -> Any:
        answer = self.answers.get(name, default)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def instance_context_builder(self, feed_id: str) -> BaseInstanceContext:
        self.builds += 1
        return await self.base_instance_context(feed_id)

    async def on_external_segment_creation(
        self, request: ExternalSegmentCreationRequest, ctx: BaseInstanceContext
    ) -> ExternalSegmentCreationResponse:
        self.seen.append(("creation", ctx))
        ok = ExternalSegmentCreationResponse(status="ok")
        return self._answer("external_segment_creation", ok)  # type: ignore[no-any-return]

    async def on_external_segment_connection(
        self, request: ExternalSegmentConnectionRequest, ctx: BaseInstanceContext
    ) -> ExternalSegmentConnectionResponse:
        ok = ExternalSegmentConnectionResponse(status="ok")
        return self._answer("external_segment_connection", ok)  # type: ignore[no-any-return]

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: BaseInstanceContext
    ) -> UserSegmentUpdateResponse:
        self.seen.append(("update", ctx))
        ok = UserSegmentUpdateResponse(status="ok")
        return self._answer("user_segment_update", ok)  # type: ignore[no-any-return]


class TinyFull(Tiny):
    """Tiny with every optional method overridden by ``answers``."""

    async def on_troubleshoot(
        self, request: TroubleshootRequest, ctx: BaseInstanceContext
    ) -> TroubleshootResponse:
        return self._answer("troubleshoot", TroubleshootResponse(status="ok"))  # type: ignore[no-any-return]

    async def on_authentication_status_query(
        self, request: AuthenticationStatusQueryRequest
    ) -> AuthenticationStatusQueryResponse:
        default = AuthenticationStatusQueryResponse(status="authenticated")
        return self._answer("authentication_status", default)  # type: ignore[no-any-return]

    async def on_authentication(self, request: AuthenticationRequest) -> AuthenticationResponse:
        default = AuthenticationResponse(status="ok", refresh_token="rt-secret")
        return self._answer("authentication", default)  # type: ignore[no-any-return]

    async def on_logout(self, request: LogoutRequest) -> LogoutResponse:
        return self._answer("logout", LogoutResponse(status="ok"))  # type: ignore[no-any-return]

    async def on_dynamic_property_values_query(
        self, request: DynamicPropertyValuesQueryRequest
    ) -> DynamicPropertyValuesQueryResponse:
        default = DynamicPropertyValuesQueryResponse(status="ok", data=[])
        return self._answer("dynamic_property_values", default)  # type: ignore[no-any-return]

    async def on_test_authentication(
        self, request: TestAuthenticationRequest, credentials: FeedDestinationCredentials
    ) -> TestAuthenticationResponse:
        self.seen.append(("test_authentication", credentials))
        default = TestAuthenticationResponse(status="ok")
        return self._answer("test_authentication", default)  # type: ignore[no-any-return]

    async def on_oauth_redirect_url(
        self, request: OAuthRedirectUrlRequest
    ) -> OAuthRedirectUrlResponse:
        url = f"https://partner.test/oauth/authorize?feed_destination_id={request.feed_destination_id}"
        default = OAuthRedirectUrlResponse(login_url=url)
        return self._answer("oauth_redirect_url", default)  # type: ignore[no-any-return]


class TinyBatched(BatchedAudienceFeedConnector[BaseInstanceContext], Tiny):
    """A batched Tiny; ``on_batch_update`` answers ``answers['batch_update']``."""

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: BaseInstanceContext
    ) -> BatchUpdateResponse:
        n = len(request.batch_content)
        default = BatchUpdateResponse(status="OK", sent_items_in_success=n, sent_items_in_error=0)
        return self._answer("batch_update", default)  # type: ignore[no-any-return]


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Call = Callable[..., Awaitable[Answer]]


@contextmanager
def world(cls: type[Tiny] = Tiny, *, ready: bool = True) -> Iterator[tuple[Tiny, Gateway, Clock]]:
    """A gateway with one feed mounted on respx, and a connector of ``cls`` on it."""
    gateway = Gateway()
    gateway.add_feed(FeedSetup(FEED, properties={"partner_account_id": "acc-1"}))
    clock = Clock()
    settings = (
        PluginSettings(worker_id=gateway.worker_id, authentication_token=gateway.token)
        if ready
        else PluginSettings()
    )
    with gateway.mock():
        yield cls(settings, clock), gateway, clock


def run(connector: Tiny, script: Callable[[Call], Awaitable[None]]) -> None:
    """Run ``script(call)`` on one event loop; ``call(method, path, body)`` hits the app."""

    async def main() -> None:
        transport = httpx.ASGITransport(app=connector)
        async with httpx.AsyncClient(transport=transport, base_url="http://connector") as client:

            async def call(method: str, path: str, body: Any = None) -> Answer:
                content = body if isinstance(body, bytes) else None
                if body is not None and content is None:
                    content = json.dumps(body).encode()
                response = await client.request(method, path, content=content)
                return Answer(response.status_code, response.headers, response.content)

            await script(call)

    asyncio.run(main())


def request_body(name: str) -> dict[str, Any]:
    """A valid minimal request body for route ``name``."""
    ids = {"feed_id": FEED, "datamart_id": "1500", "segment_id": "s-1"}
    bodies: dict[str, dict[str, Any]] = {
        "external_segment_creation": ids,
        "external_segment_connection": ids,
        "user_segment_update": {
            **ids,
            "session_id": "sess-1",
            "user_identifiers": [],
            "user_profiles": [],
            "ts": 1,
            "operation": "UPSERT",
        },
        "batch_update": {
            "batch_content": ["a", {"b": 1}],
            "ts": 1,
            "context": {
                "endpoint": "/v1/user_segment_update",
                "feed_id": FEED,
                "feed_session_id": "sess-1",
                "segment_id": "s-1",
                "datamart_id": "1500",
                "grouping_key": "g",
            },
        },
        "troubleshoot": {**ids, "action": "FETCH_DESTINATION_AUDIENCE"},
        "authentication_status": {"datamart_id": "1500", "plugin_version_id": "7", "user_id": "u"},
        "authentication": {"user_id": "u", "plugin_version_id": "7", "params": {"code": "c"}},
        "logout": {"user_id": "u", "plugin_version_id": "7", "datamart_id": "1500"},
        "dynamic_property_values": {"datamart_id": "1500", "user_id": "u"},
        "test_authentication": {"feed_destination_id": "fd-1"},
        "oauth_redirect_url": {"feed_destination_id": "fd-1", "plugin_version_id": "7"},
    }
    return bodies[name]


FEED_ROUTES = [r for r in ROUTES if r.method == "POST" and r.request_model is not None]
STATUS_CASES = [
    (r.name, status, code)
    for r in FEED_ROUTES
    if r.name not in ("batch_update", "oauth_redirect_url")
    for status, code in r.status_codes.items()
]


@pytest.mark.parametrize(("name", "status", "code"), STATUS_CASES)
def test_every_status_gets_the_route_table_code(name: str, status: str, code: int) -> None:
    with world(TinyFull) as (connector, gateway, _clock):
        gateway.set_credentials("fd-1", "OAUTH2", {"refresh_token": "x"})
        model = route(name).response_model
        assert model is not None
        connector.answers[name] = model.model_construct(status=status)

        async def script(call: Call) -> None:
            answer = await call("POST", route(name).path, request_body(name))
            assert answer.status == code
            assert answer.json["status"] == status
            assert answer.headers["content-type"] == "application/json"

        run(connector, script)


@pytest.mark.parametrize(("status", "code"), [("OK", 200), ("ERROR", 400), ("RETRY", 503)])
def test_batch_statuses_and_only_the_four_keys(status: str, code: int) -> None:
    with world(TinyBatched) as (connector, _gateway, _clock):
        connector.answers["batch_update"] = BatchUpdateResponse(
            status=status,
            sent_items_in_success=1,
            sent_items_in_error=1,
            message="m",
            next_msg_delay_in_ms=2000,
            extra_field="dropped",
        )

        async def script(call: Call) -> None:
            answer = await call("POST", "/v1/batch_update", request_body("batch_update"))
            assert answer.status == code
            assert answer.json == {
                "status": status,
                "sent_items_in_success": 1,
                "sent_items_in_error": 1,
                "message": "m",
            }
            assert answer.headers[DELAY_HEADER] == "2000"

        run(connector, script)


def test_batch_update_on_a_non_batched_connector_is_refused() -> None:
    with world() as (connector, _gateway, _clock):

        async def script(call: Call) -> None:
            answer = await call("POST", "/v1/batch_update", request_body("batch_update"))
            assert answer.status == 500
            assert answer.json == {
                "status": "error",
                "message": "Plugin doesn't support batch update",
            }

        run(connector, script)


@pytest.mark.parametrize("body", [b"", b"{}", b"  ", b"[]"])
def test_empty_body_answers_missing_request_body_on_every_feed_route(body: bytes) -> None:
    with world(TinyBatched) as (connector, _gateway, _clock):

        async def script(call: Call) -> None:
            for r in FEED_ROUTES:
                answer = await call("POST", r.path, body)
                assert (r.path, answer.status) == (r.path, 500)
                assert answer.json == {"error": "Missing request body"}

        run(connector, script)
        assert connector.builds == 0


def test_invalid_body_is_a_400_in_the_sdk_error_shape_naming_the_field() -> None:
    with world() as (connector, _gateway, _clock):

        async def script(call: Call) -> None:
            body = request_body("user_segment_update")
            del body["feed_id"]
            answer = await call("POST", "/v1/user_segment_update", body)
            assert answer.status == 400
            assert answer.json["status"] == "error"
            assert "feed_id" in answer.json["message"]
            answer = await call("POST", "/v1/user_segment_update", b"{not json")
            assert answer.status == 400
            assert answer.json["status"] == "error"
            answer = await call("POST", "/v1/user_segment_update", b"[1]")
            assert answer.status == 400
            assert "must be a JSON object" in answer.json["message"]

        run(connector, script)


def test_a_handler_exception_is_a_500_sdk_error() -> None:
    with world() as (connector, _gateway, _clock):
        connector.answers["user_segment_update"] = RuntimeError("boom in update")
        connector.answers["external_segment_creation"] = RuntimeError("boom in creation")

        async def script(call: Call) -> None:
            answer = await call(
                "POST", "/v1/user_segment_update", request_body("user_segment_update")
            )
            assert (answer.status, answer.json) == (
                500,
                {"status": "error", "message": "boom in update"},
            )
            body = request_body("external_segment_creation")
            answer = await call("POST", "/v1/external_segment_creation", body)
            assert answer.status == 500
            assert answer.json == {
                "status": "error",
                "message": "boom in creation",
                "visibility": "PRIVATE",
            }

        run(connector, script)


def test_creation_answer_defaults_visibility_public_and_keeps_only_sdk_keys() -> None:
    with world() as (connector, _gateway, _clock):
        connector.answers["external_segment_creation"] = ExternalSegmentCreationResponse(
            status="ok", message="made", extra="not sent"
        )

        async def script(call: Call) -> None:
            body = request_body("external_segment_creation")
            answer = await call("POST", "/v1/external_segment_creation", body)
            assert answer.json == {"status": "ok", "visibility": "PUBLIC", "message": "made"}

        run(connector, script)


@pytest.mark.parametrize(("delay", "header"), [(1500, "1500"), (2500.0, "2500"), (0, None)])
def test_update_delay_header_follows_a_truthy_delay(delay: float, header: str | None) -> None:
    with world() as (connector, _gateway, _clock):
        connector.answers["user_segment_update"] = UserSegmentUpdateResponse(
            status="retry", next_msg_delay_in_ms=delay
        )

        async def script(call: Call) -> None:
            answer = await call(
                "POST", "/v1/user_segment_update", request_body("user_segment_update")
            )
            assert answer.status == 429
            assert answer.headers.get(DELAY_HEADER) == header

        run(connector, script)


def test_authentication_strips_refresh_token_and_posts_destination_credentials() -> None:
    with world(TinyFull) as (connector, gateway, _clock):

        async def script(call: Call) -> None:
            body = {**request_body("authentication"), "feed_destination_id": "fd-9"}
            answer = await call("POST", "/v1/authentication", body)
            assert answer.status == 200
            assert answer.json == {"status": "ok"}
            assert b"rt-secret" not in answer.body

        run(connector, script)
        stored = gateway.credentials("fd-9")
        assert stored is not None
        assert (stored.scheme, stored.credentials) == ("OAUTH2", {"refresh_token": "rt-secret"})


def test_authentication_without_destination_posts_nothing_and_still_strips() -> None:
    with world(TinyFull) as (connector, gateway, _clock):

        async def script(call: Call) -> None:
            answer = await call("POST", "/v1/authentication", request_body("authentication"))
            assert answer.json == {"status": "ok"}

        run(connector, script)
        assert not [c for c in gateway.calls if "feed_destinations" in c.path]


def test_authentication_ok_for_a_destination_without_refresh_token_is_500() -> None:
    with world(TinyFull) as (connector, gateway, _clock):
        connector.answers["authentication"] = AuthenticationResponse(status="ok")

        async def script(call: Call) -> None:
            body = {**request_body("authentication"), "feed_destination_id": "fd-9"}
            answer = await call("POST", "/v1/authentication", body)
            assert answer.status == 500
            assert "refresh_token" in answer.json["message"]

        run(connector, script)
        assert gateway.credentials("fd-9") is None


def test_context_is_cached_per_feed_rebuilt_on_creation_and_after_expiry() -> None:
    with world() as (connector, _gateway, clock):

        async def script(call: Call) -> None:
            body = request_body("user_segment_update")
            await call("POST", "/v1/user_segment_update", body)
            await call("POST", "/v1/user_segment_update", body)
            assert connector.builds == 1
            await call(
                "POST", "/v1/external_segment_creation", request_body("external_segment_creation")
            )
            assert connector.builds == 2
            await call("POST", "/v1/user_segment_update", body)
            assert connector.builds == 2
            clock.now += 599
            await call("POST", "/v1/user_segment_update", body)
            assert connector.builds == 2
            clock.now += 62  # past 10 min + the 10 % jitter
            await call("POST", "/v1/user_segment_update", body)
            assert connector.builds == 3

        run(connector, script)
        contexts = [ctx for kind, ctx in connector.seen if kind == "update"]
        assert contexts[0] is contexts[1]
        assert contexts[-1] is not contexts[0]


def test_a_failed_context_build_is_not_cached() -> None:
    with world() as (connector, gateway, _clock):

        async def script(call: Call) -> None:
            body = {**request_body("user_segment_update"), "feed_id": "feed-2"}
            answer = await call("POST", "/v1/user_segment_update", body)
            assert answer.status == 500
            assert "fetch_feed(feed-2)" in answer.json["message"]
            gateway.add_feed(FeedSetup("feed-2"))
            answer = await call("POST", "/v1/user_segment_update", body)
            assert answer.status == 200

        run(connector, script)
        assert connector.builds == 2


def test_concurrent_requests_share_one_context_build() -> None:
    with world() as (connector, _gateway, _clock):

        async def script(call: Call) -> None:
            body = request_body("user_segment_update")
            answers = await asyncio.gather(
                *(call("POST", "/v1/user_segment_update", body) for _ in range(5))
            )
            assert {a.status for a in answers} == {200}

        run(connector, script)
        assert connector.builds == 1


def test_optional_routes_default_to_not_implemented() -> None:
    with world() as (connector, gateway, _clock):

        async def script(call: Call) -> None:
            for name in (
                "troubleshoot",
                "authentication_status",
                "authentication",
                "logout",
                "dynamic_property_values",
                "test_authentication",
                "oauth_redirect_url",
            ):
                answer = await call("POST", route(name).path, request_body(name))
                assert (name, answer.status, answer.json["status"]) == (
                    name,
                    400,
                    "not_implemented",
                )

        run(connector, script)
        assert connector.builds == 0
        assert not [c for c in gateway.calls if "feed_destinations" in c.path]


def test_troubleshoot_unknown_action_is_not_implemented() -> None:
    with world(TinyFull) as (connector, _gateway, _clock):

        async def script(call: Call) -> None:
            body = {**request_body("troubleshoot"), "action": "FETCH_SOMETHING"}
            answer = await call("POST", "/v1/troubleshoot", body)
            assert answer.status == 400
            assert answer.json["status"] == "not_implemented"
            assert "FETCH_SOMETHING" in answer.json["message"]

        run(connector, script)


def test_test_authentication_fetches_destination_credentials_first() -> None:
    with world(TinyFull) as (connector, gateway, _clock):

        async def script(call: Call) -> None:
            answer = await call(
                "POST", "/v1/test_authentication", request_body("test_authentication")
            )
            assert answer.status == 500
            assert answer.json["message"] == "Could not fetch feed destination credentials"
            gateway.set_credentials("fd-1", "API_TOKEN", {"token": "t"})
            answer = await call(
                "POST", "/v1/test_authentication", request_body("test_authentication")
            )
            assert answer.status == 200

        run(connector, script)
        seen = [creds for kind, creds in connector.seen if kind == "test_authentication"]
        assert [c.scheme for c in seen] == ["API_TOKEN"]


def test_oauth_redirect_url_must_carry_the_feed_destination_id() -> None:
    with world(TinyFull) as (connector, _gateway, _clock):

        async def script(call: Call) -> None:
            answer = await call(
                "POST", "/v1/oauth_redirect_url", request_body("oauth_redirect_url")
            )
            assert answer.status == 200
            assert "feed_destination_id=fd-1" in answer.json["login_url"]
            connector.answers["oauth_redirect_url"] = OAuthRedirectUrlResponse(
                login_url="https://partner.test/oauth/authorize?feed_destination_id=other"
            )
            answer = await call(
                "POST", "/v1/oauth_redirect_url", request_body("oauth_redirect_url")
            )
            assert answer.status == 500
            assert "feed_destination_id" in answer.json["message"]

        run(connector, script)


def test_base_routes() -> None:
    with world() as (connector, _gateway, _clock):

        async def script(call: Call) -> None:
            assert (await call("POST", "/v1/init")).status == 200
            assert (await call("GET", "/v1/status")).status == 200
            assert (await call("GET", "/v1/log_level")).json == {"level": "INFO"}
            assert (await call("PUT", "/v1/log_level", {"level": "debug"})).status == 200
            assert (await call("GET", "/v1/log_level")).json == {"level": "DEBUG"}
            assert (await call("PUT", "/v1/log_level", {"nope": 1})).status == 400
            metadata = await call("GET", "/v1/metadata")
            assert metadata.status == 200
            assert metadata.json["runtime"] == "python"
            missing = await call("POST", "/v1/nowhere", {"a": 1})
            assert missing.status == 404
            assert missing.json["status"] == "error"

        run(connector, script)


def test_status_is_503_and_creation_refused_without_worker_credentials() -> None:
    with world(ready=False) as (connector, _gateway, _clock):

        async def script(call: Call) -> None:
            assert (await call("GET", "/v1/status")).status == 503
            body = request_body("external_segment_creation")
            answer = await call("POST", "/v1/external_segment_creation", body)
            assert answer.status == 500
            assert "not initialized" in answer.json["message"]

        run(connector, script)


def test_settings_from_env_defaults_and_refusals() -> None:
    settings = PluginSettings.from_env(
        {"PLUGIN_WORKER_ID": "w", "PLUGIN_AUTHENTICATION_TOKEN": "secret-token"}
    )
    assert settings.gateway_url == "http://plugin-gateway.platform:8080"
    assert settings.port == 8080
    assert "secret-token" not in repr(settings)
    with pytest.raises(SettingsError, match="PLUGIN_WORKER_ID"):
        PluginSettings.from_env({"PLUGIN_AUTHENTICATION_TOKEN": "t"})
    with pytest.raises(SettingsError, match="PLUGIN_AUTHENTICATION_TOKEN"):
        PluginSettings.from_env({"PLUGIN_WORKER_ID": "w"})
    with pytest.raises(SettingsError, match="GATEWAY_PORT"):
        PluginSettings.from_env(
            {"PLUGIN_WORKER_ID": "w", "PLUGIN_AUTHENTICATION_TOKEN": "t", "GATEWAY_PORT": "x"}
        )
    custom = PluginSettings.from_env(
        {
            "PLUGIN_WORKER_ID": "w",
            "PLUGIN_AUTHENTICATION_TOKEN": "t",
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": "9999",
            "PLUGIN_PORT": "8181",
        }
    )
    assert (custom.gateway_url, custom.port) == ("http://127.0.0.1:9999", 8181)


def test_connector_without_settings_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLUGIN_WORKER_ID", raising=False)
    monkeypatch.delenv("PLUGIN_AUTHENTICATION_TOKEN", raising=False)
    with pytest.raises(SettingsError, match="PLUGIN_WORKER_ID"):
        Tiny(None, Clock())


def test_gateway_client_typed_errors() -> None:
    gateway = Gateway()
    gateway.add_feed(FeedSetup(FEED))
    good = GatewayClient(
        PluginSettings(worker_id=gateway.worker_id, authentication_token=gateway.token)
    )
    bad = GatewayClient(PluginSettings(worker_id=gateway.worker_id, authentication_token="wrong"))

    async def main() -> None:
        feed = await good.fetch_feed(FEED)
        assert feed.id == FEED
        with pytest.raises(GatewayNotFoundError):
            await good.fetch_configuration_file("absent")
        assert await good.fetch_feed_destination_credentials("nobody") is None
        with pytest.raises(GatewayError) as refused:
            await bad.fetch_feed(FEED)
        assert refused.value.status == 401
        assert f"fetch_feed({FEED})" in str(refused.value)
        await good.put_configuration_file("f", b"\x00bytes")
        assert await good.fetch_configuration_file("f") == b"\x00bytes"
        await good.aclose()
        await bad.aclose()

    with gateway.mock():
        asyncio.run(main())


def test_gateway_client_reports_a_dropped_gateway() -> None:
    client = GatewayClient(PluginSettings(worker_id="w", authentication_token="t"))

    async def main() -> None:
        with pytest.raises(GatewayError) as failed:
            await client.fetch_feed(FEED)
        assert failed.value.status is None
        await client.aclose()

    with respx.mock() as router:
        router.route().mock(side_effect=httpx.ConnectError("refused"))
        asyncio.run(main())
