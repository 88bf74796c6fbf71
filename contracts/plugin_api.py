"""Requests and answers of the plugin's inbound routes (platform -> plugin).

Every model keeps unknown fields: the platform may add request fields and the SDK passes a
handler's extra answer fields through. Statuses are closed Literals, so a wrong one is
refused with the field named; which HTTP code goes with which status is in `routes`.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from contracts._wire import WireModel
from contracts.delivery import BatchContext, DeliveryItem, UpdateStat
from contracts.gateway import PluginProperty
from contracts.identifiers import UserIdentifier, UserProfile

__all__ = [
    "AuthenticationRequest",
    "AuthenticationResponse",
    "AuthenticationResponseStatus",
    "AuthenticationStatusData",
    "AuthenticationStatusQueryRequest",
    "AuthenticationStatusQueryResponse",
    "AuthenticationStatusQueryStatus",
    "BatchStatus",
    "BatchUpdateRequest",
    "BatchUpdateResponse",
    "ConnectionStatus",
    "CreationStatus",
    "DynamicPropertyValues",
    "DynamicPropertyValuesQueryRequest",
    "DynamicPropertyValuesQueryResponse",
    "DynamicPropertyValuesStatus",
    "EnumEntry",
    "ExternalSegmentConnectionRequest",
    "ExternalSegmentConnectionResponse",
    "ExternalSegmentCreationRequest",
    "ExternalSegmentCreationResponse",
    "LogLevel",
    "LogoutRequest",
    "LogoutResponse",
    "LogoutStatus",
    "MissingBodyError",
    "OAuthRedirectUrlRequest",
    "OAuthRedirectUrlResponse",
    "PluginMetadata",
    "SdkError",
    "TestAuthenticationRequest",
    "TestAuthenticationResponse",
    "TestAuthenticationStatus",
    "ThrottledResponse",
    "TroubleshootAction",
    "TroubleshootRequest",
    "TroubleshootResponse",
    "TroubleshootStatus",
    "UpdateOperation",
    "UpdateStatus",
    "UserSegmentUpdateRequest",
    "UserSegmentUpdateResponse",
    "Visibility",
]

T = TypeVar("T")

CreationStatus = Literal["ok", "error", "retry", "no_eligible_identifier"]
"""Creation answer status: the SDK's `AudienceFeedConnectorStatus` (only `ok` is 200)."""

ConnectionStatus = Literal["ok", "error", "external_segment_not_ready_yet"]
"""Connection answer status; `external_segment_not_ready_yet` is 502 and means poll again."""

UpdateStatus = Literal["ok", "error", "retry", "no_eligible_identifier"]
"""`user_segment_update` answer status: 200, 500, 429, 400."""

UpdateOperation = Literal["UPSERT", "DELETE"]
"""What happens to the user in the segment: enters (or gains identifiers) / leaves."""

BatchStatus = Literal["OK", "ERROR", "RETRY"]
"""`batch_update` answer status (upper case, unlike the others): 200, 400, 503."""

TroubleshootStatus = Literal["ok", "error", "not_implemented"]
"""Troubleshoot answer status; `not_implemented` (400) is also the unknown-action answer."""

TroubleshootAction = Literal["FETCH_DESTINATION_AUDIENCE"]
"""The troubleshoot actions the SDK knows; a request may carry any other string."""

AuthenticationStatusQueryStatus = Literal[
    "authenticated", "not_authenticated", "error", "not_implemented"
]
"""Authentication status answer status; both (not_)authenticated are 200."""

AuthenticationResponseStatus = Literal["ok", "error", "not_implemented"]
"""`/v1/authentication` answer status."""

LogoutStatus = Literal["ok", "error", "not_implemented"]
"""`/v1/logout` answer status."""

DynamicPropertyValuesStatus = Literal["ok", "empty", "error", "not_implemented"]
"""Dynamic property values answer status (`empty` since SDK 0.39)."""

TestAuthenticationStatus = Literal["ok", "invalid_credentials", "error", "not_implemented"]
"""`/v1/test_authentication` answer status (`invalid_credentials` is 401, since 0.40.2)."""

Visibility = Literal["PRIVATE", "PUBLIC"]
"""Whether a creation error message may be shown to the platform's user."""


# --------------------------------------------------------------------------- feed routes


class ExternalSegmentCreationRequest(WireModel):
    """`POST /v1/external_segment_creation` body: the feed was activated."""

    feed_id: str
    datamart_id: str
    segment_id: str
    feed_destination_id: str | None = None


class ExternalSegmentCreationResponse(WireModel):
    """Creation answer; the SDK fills `visibility` with `PUBLIC` when the handler omits it."""

    status: CreationStatus
    message: str | None = None
    visibility: Visibility = "PUBLIC"


class ExternalSegmentConnectionRequest(WireModel):
    """`POST /v1/external_segment_connection` body: is the partner segment usable yet?"""

    feed_id: str
    datamart_id: str
    segment_id: str
    feed_destination_id: str | None = None


class ExternalSegmentConnectionResponse(WireModel):
    """Connection answer."""

    status: ConnectionStatus
    message: str | None = None


class UserSegmentUpdateRequest(WireModel):
    """`POST /v1/user_segment_update` body: one user entering or leaving the segment.

    `user_profiles` defaults to empty: the SDK's own tests send requests without it.
    """

    feed_id: str
    session_id: str
    datamart_id: str
    segment_id: str
    feed_destination_id: str | None = None
    preset_id: str | None = None
    user_identifiers: list[UserIdentifier]
    user_profiles: list[UserProfile] = []
    ts: int
    operation: UpdateOperation


class UserSegmentUpdateResponse(WireModel):
    """`user_segment_update` answer; a truthy delay is also sent as `x-mics-next-msg-delay`."""

    status: UpdateStatus
    data: list[DeliveryItem] | None = None
    stats: list[UpdateStat] | None = None
    message: str | None = None
    next_msg_delay_in_ms: int | float | None = None


class BatchUpdateRequest(WireModel, Generic[T]):
    """`POST /v1/batch_update` body: `BATCH_DELIVERY` contents of one `grouping_key`.

    Items come as the plugin returned them (JSON strings or objects): `T` defaults to Any.
    """

    batch_content: list[T]
    ts: int
    context: BatchContext


class BatchUpdateResponse(WireModel):
    """`batch_update` answer; only `OK` and `ERROR` are final, `RETRY` re-sends the batch."""

    status: BatchStatus
    sent_items_in_success: int
    sent_items_in_error: int
    message: str | None = None
    next_msg_delay_in_ms: int | float | None = None


class TroubleshootRequest(WireModel):
    """`POST /v1/troubleshoot` body; `action` is free text (unknown ones get 400)."""

    feed_id: str
    datamart_id: str
    segment_id: str
    action: str
    feed_destination_id: str | None = None


class TroubleshootResponse(WireModel):
    """Troubleshoot answer; `data` is whatever the plugin shows on the feed card."""

    status: TroubleshootStatus
    message: str | None = None
    data: Any = None


# --------------------------------------------------------------------------- authentication


class AuthenticationStatusQueryRequest(WireModel):
    """`POST /v1/authentication_status_queries` body."""

    segment_id: str | None = None
    datamart_id: str
    plugin_version_id: str
    user_id: str
    properties: list[PluginProperty] | None = None


class AuthenticationStatusData(WireModel):
    """`data` of an authentication status answer: a `login_url` and any other keys."""

    login_url: str | None = None


class AuthenticationStatusQueryResponse(WireModel):
    """Authentication status answer."""

    status: AuthenticationStatusQueryStatus
    message: str | None = None
    data: AuthenticationStatusData | None = None


class AuthenticationRequest(WireModel):
    """`POST /v1/authentication` body: the partner's redirect params (e.g. code, state)."""

    user_id: str
    plugin_version_id: str
    params: dict[str, str] | None = None
    feed_destination_id: str | None = None


class AuthenticationResponse(WireModel):
    """`/v1/authentication` answer; the SDK strips `refresh_token` before sending it."""

    status: AuthenticationResponseStatus
    message: str | None = None


class LogoutRequest(WireModel):
    """`POST /v1/logout` body."""

    user_id: str
    plugin_version_id: str
    datamart_id: str


class LogoutResponse(WireModel):
    """`/v1/logout` answer."""

    status: LogoutStatus
    message: str | None = None


class DynamicPropertyValuesQueryRequest(WireModel):
    """`POST /v1/dynamic_property_values_queries` body: the feed form's current values."""

    segment_id: str | None = None
    datamart_id: str
    user_id: str
    properties: list[PluginProperty] | None = None
    feed_destination_id: str | None = None


class EnumEntry(WireModel):
    """One choice offered for a dynamic property."""

    label: str
    value: str


class DynamicPropertyValues(WireModel):
    """The choices for one property of the feed form."""

    property_technical_name: str
    enum: list[EnumEntry]


class DynamicPropertyValuesQueryResponse(WireModel):
    """Dynamic property values answer."""

    status: DynamicPropertyValuesStatus
    message: str | None = None
    data: list[DynamicPropertyValues] | None = None


class TestAuthenticationRequest(WireModel):
    """`POST /v1/test_authentication` body: check a feed destination's stored credentials."""

    __test__ = False  # not a pytest test class despite its name

    feed_destination_id: str


class TestAuthenticationResponse(WireModel):
    """`/v1/test_authentication` answer."""

    __test__ = False

    status: TestAuthenticationStatus
    message: str | None = None


class OAuthRedirectUrlRequest(WireModel):
    """`POST /v1/oauth_redirect_url` body."""

    feed_destination_id: str
    plugin_version_id: str


class OAuthRedirectUrlResponse(WireModel):
    """OAuth redirect answer; `login_url` must carry `feed_destination_id` as a query param."""

    login_url: str


# --------------------------------------------------------------------------- base routes and errors


class LogLevel(WireModel):
    """`GET`/`PUT /v1/log_level` body, e.g. `{"level": "INFO"}`."""

    level: str


class PluginMetadata(WireModel):
    """`GET /v1/metadata` answer; every field optional as the SDK fills them from its build."""

    runtime: str | None = None
    runtime_version: str | None = None
    group_id: str | None = None
    artifact_id: str | None = None
    plugin_type: str | None = None
    plugin_version: str | None = None
    plugin_build: str | None = None
    dependencies: Any = None


class SdkError(WireModel):
    """The SDK's answer when a handler throws: 500 `{"status": "error", "message": ...}`."""

    status: Literal["error"] = "error"
    message: str


class MissingBodyError(WireModel):
    """The SDK's answer to a missing or `{}` body: 500 `{"error": "Missing request body"}`."""

    error: str


class ThrottledResponse(WireModel):
    """A throttled plugin's answer on feed routes: 429 `{"status": "RETRY", "message": ...}`."""

    status: Literal["RETRY"] = "RETRY"
    message: str | None = None
