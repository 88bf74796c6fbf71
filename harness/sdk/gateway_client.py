"""The connector's client of the plugin gateway: the SDK's outbound calls, with typed errors."""

from __future__ import annotations

import base64
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from contracts.gateway import (
    AudienceSegmentExternalFeed,
    AudienceSegmentResource,
    DataListResponse,
    DataResponse,
    FeedDestinationCredentials,
    PluginProperty,
    PropertyModel,
    UserAgentIdentifierRealmSelection,
)
from harness.sdk.settings import PluginSettings

__all__ = ["GatewayClient", "GatewayError", "GatewayNotFoundError"]

M = TypeVar("M", bound=BaseModel)

_FeedEnvelope = DataResponse[AudienceSegmentExternalFeed]
_SegmentEnvelope = DataResponse[AudienceSegmentResource]
_CredentialsEnvelope = DataResponse[FeedDestinationCredentials]
_RealmsEnvelope = DataListResponse[UserAgentIdentifierRealmSelection]
_PropertiesEnvelope: TypeAdapter[list[PropertyModel]] = TypeAdapter(list[PluginProperty])

_DETAIL_LIMIT = 200


class GatewayError(RuntimeError):
    """A gateway call failed: names the call, the HTTP status (None: no answer) and a detail."""

    def __init__(self, call: str, status: int | None, detail: str) -> None:
        self.call = call
        self.status = status
        self.detail = detail
        got = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"gateway call {call} failed: {got}: {detail}")


class GatewayNotFoundError(GatewayError):
    """The gateway answered 404: the resource (feed, file, credentials...) does not exist."""


class GatewayClient:
    """Async client of the plugin gateway (basic auth ``worker_id:authentication_token``).

    ``http`` may be shared; the client closes only an ``httpx.AsyncClient`` it created.
    """

    def __init__(
        self,
        settings: PluginSettings,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = settings.gateway_url
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        secret = f"{settings.worker_id}:{settings.authentication_token}".encode()
        self._headers = {"Authorization": "Basic " + base64.b64encode(secret).decode("ascii")}

    async def aclose(self) -> None:
        """Close the HTTP client if this gateway client created it."""
        if self._owns_http:
            await self._http.aclose()

    # ------------------------------------------------------------------ feed resources

    async def fetch_feed(self, feed_id: str) -> AudienceSegmentExternalFeed:
        """``GET /v1/audience_segment_external_feeds/{feed_id}``."""
        call = f"fetch_feed({feed_id})"
        response = await self._send(call, "GET", f"/v1/audience_segment_external_feeds/{feed_id}")
        return _parse(call, _FeedEnvelope, response).data

    async def fetch_feed_properties(self, feed_id: str) -> list[PropertyModel]:
        """``GET /v1/audience_segment_external_feeds/{feed_id}/properties``."""
        call = f"fetch_feed_properties({feed_id})"
        path = f"/v1/audience_segment_external_feeds/{feed_id}/properties"
        response = await self._send(call, "GET", path)
        payload = _json(call, response)
        data = payload.get("data") if isinstance(payload, dict) else None
        try:
            return _PropertiesEnvelope.validate_python(data)
        except ValidationError as err:
            raise GatewayError(call, response.status_code, _validation_detail(err)) from None

    async def create_feed_property(self, feed_id: str, prop: PropertyModel) -> None:
        """``POST .../properties``: add a property to the feed (e.g. ``partner_segment_id``)."""
        call = f"create_feed_property({feed_id}, {prop.technical_name})"
        path = f"/v1/audience_segment_external_feeds/{feed_id}/properties"
        await self._send(call, "POST", path, json=prop.model_dump(mode="json", by_alias=True))

    async def update_feed_property(self, feed_id: str, prop: PropertyModel) -> None:
        """``PUT .../properties/technical_name={name}``: change a property's value."""
        call = f"update_feed_property({feed_id}, {prop.technical_name})"
        path = (
            f"/v1/audience_segment_external_feeds/{feed_id}/properties/"
            f"technical_name={prop.technical_name}"
        )
        await self._send(call, "PUT", path, json=prop.model_dump(mode="json", by_alias=True))

    async def fetch_audience_segment(self, feed_id: str) -> AudienceSegmentResource:
        """``GET /v1/audience_segment_external_feeds/{feed_id}/audience_segment``."""
        call = f"fetch_audience_segment({feed_id})"
        path = f"/v1/audience_segment_external_feeds/{feed_id}/audience_segment"
        response = await self._send(call, "GET", path)
        return _parse(call, _SegmentEnvelope, response).data

    # ------------------------------------------------------------------ files

    async def fetch_configuration_file(self, name: str) -> bytes:
        """``GET /v1/configuration/technical_name={name}``; 404: GatewayNotFoundError."""
        call = f"fetch_configuration_file({name})"
        response = await self._send(call, "GET", f"/v1/configuration/technical_name={name}")
        return response.content

    async def put_configuration_file(self, name: str, content: bytes) -> None:
        """``PUT /v1/configuration/technical_name={name}`` with a binary body."""
        call = f"put_configuration_file({name})"
        headers = {"Content-Type": "application/octet-stream"}
        path = f"/v1/configuration/technical_name={name}"
        await self._send(call, "PUT", path, content=content, headers=headers, secret=True)

    async def fetch_data_file(self, uri: str) -> bytes:
        """``GET /v1/data_file/data?uri=...``: the raw bytes."""
        call = f"fetch_data_file({uri})"
        response = await self._send(call, "GET", "/v1/data_file/data", params={"uri": uri})
        return response.content

    # ------------------------------------------------------------------ destinations, realms

    async def fetch_feed_destination_credentials(
        self, feed_destination_id: str
    ) -> FeedDestinationCredentials | None:
        """``GET /v1/feed_destinations/{id}/credentials``; None when the gateway has none (404)."""
        call = f"fetch_feed_destination_credentials({feed_destination_id})"
        path = f"/v1/feed_destinations/{feed_destination_id}/credentials"
        try:
            response = await self._send(call, "GET", path, secret=True)
        except GatewayNotFoundError:
            return None
        return _parse(call, _CredentialsEnvelope, response, secret=True).data

    async def upsert_feed_destination_credentials(
        self, feed_destination_id: str, credentials: FeedDestinationCredentials
    ) -> None:
        """``POST /v1/feed_destinations/{id}/credentials`` ``{scheme, credentials}``."""
        call = f"upsert_feed_destination_credentials({feed_destination_id})"
        path = f"/v1/feed_destinations/{feed_destination_id}/credentials"
        body = credentials.model_dump(mode="json", by_alias=True)
        await self._send(call, "POST", path, json=body, secret=True)

    async def fetch_realms(self, datamart_id: str) -> list[UserAgentIdentifierRealmSelection]:
        """``GET /v1/datamarts/{id}/user_agent_identifier_realm_selections``."""
        call = f"fetch_realms({datamart_id})"
        path = f"/v1/datamarts/{datamart_id}/user_agent_identifier_realm_selections"
        response = await self._send(call, "GET", path)
        return _parse(call, _RealmsEnvelope, response).data

    # ------------------------------------------------------------------ transport

    async def _send(
        self,
        call: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        secret: bool = False,
    ) -> httpx.Response:
        all_headers = self._headers if headers is None else {**self._headers, **headers}
        try:
            response = await self._http.request(
                method,
                self.base_url + path,
                json=json,
                content=content,
                params=params,
                headers=all_headers,
            )
        except httpx.TransportError as err:
            raise GatewayError(call, None, f"{type(err).__name__}: {err}") from None
        if response.status_code == 404:
            raise GatewayNotFoundError(call, 404, "not found")
        if not 200 <= response.status_code < 300:
            detail = "(body withheld)" if secret else _short(response.text)
            raise GatewayError(call, response.status_code, detail)
        return response


def _json(call: str, response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GatewayError(call, response.status_code, "answer is not JSON") from None


def _parse(call: str, model: type[M], response: httpx.Response, *, secret: bool = False) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as err:
        detail = "answer does not match the envelope" if secret else _validation_detail(err)
        raise GatewayError(call, response.status_code, detail) from None


def _validation_detail(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(body)"
    return f"unexpected answer: {where}: {first['msg']}"


def _short(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _DETAIL_LIMIT else text[:_DETAIL_LIMIT] + "..."
