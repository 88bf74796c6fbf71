"""The one route table of the plugin API: paths, models, status -> HTTP code, versions.

Every mapping is the SDK's (the table of `docs/writing-a-connector.md`); the rest of the
project reads routes from here rather than restating them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

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
    LogLevel,
    LogoutRequest,
    LogoutResponse,
    OAuthRedirectUrlRequest,
    OAuthRedirectUrlResponse,
    PluginMetadata,
    TestAuthenticationRequest,
    TestAuthenticationResponse,
    TroubleshootRequest,
    TroubleshootResponse,
    UserSegmentUpdateRequest,
    UserSegmentUpdateResponse,
)

__all__ = [
    "BASELINE_SDK_VERSION",
    "DELAY_HEADER",
    "MISSING_BODY_ANSWER",
    "MISSING_BODY_CODE",
    "MISSING_BODY_MESSAGE",
    "NON_BATCHED_BATCH_UPDATE_ANSWER",
    "NON_BATCHED_BATCH_UPDATE_CODE",
    "ROUTES",
    "SDK_ERROR_CODE",
    "THROTTLED_CODE",
    "THROTTLED_STATUS",
    "TROUBLESHOOT_ACTIONS",
    "Route",
    "route",
    "route_for_path",
]

DELAY_HEADER = "x-mics-next-msg-delay"
"""Header carrying a truthy `next_msg_delay_in_ms` (and the batch delay) in milliseconds."""

MISSING_BODY_CODE = 500
MISSING_BODY_MESSAGE = "Missing request body"
MISSING_BODY_ANSWER: Mapping[str, str] = MappingProxyType({"error": MISSING_BODY_MESSAGE})
"""Answer of every feed route (POST) to a missing or `{}` body, with `MISSING_BODY_CODE`."""

SDK_ERROR_CODE = 500
"""Code of the SDK's `{"status": "error", "message"}` answer when a handler throws."""

THROTTLED_CODE = 429
THROTTLED_STATUS = "RETRY"
"""A throttled plugin answers feed routes `THROTTLED_CODE` `{"status": "RETRY", ...}`."""

NON_BATCHED_BATCH_UPDATE_CODE = 500
NON_BATCHED_BATCH_UPDATE_ANSWER: Mapping[str, str] = MappingProxyType(
    {"status": "error", "message": "Plugin doesn't support batch update"}
)
"""What `/v1/batch_update` always answers on a non-batched plugin."""

TROUBLESHOOT_ACTIONS: tuple[str, ...] = ("FETCH_DESTINATION_AUDIENCE",)
"""Troubleshoot actions the SDK knows; any other gets 400 `not_implemented`."""

BASELINE_SDK_VERSION = "0.28.2"
"""The npm `latest` SDK: feed routes only."""


@dataclass(frozen=True)
class Route:
    """One inbound route: where it is, what goes in and out, and which code each status gets.

    `status_codes` maps a body `status` to its HTTP code; any other status, or none,
    gets `other_code` (the success code of routes whose answer carries no status).
    """

    name: str
    method: str
    path: str
    request_model: type[BaseModel] | None
    response_model: type[BaseModel] | None
    status_codes: Mapping[str, int] = field(hash=False)
    other_code: int
    optional: bool
    since: str
    summary: str = ""

    def code_for(self, status: str | None) -> int:
        """The HTTP code the SDK sends with a body whose `status` is `status`."""
        if status is None:
            return self.other_code
        return self.status_codes.get(status, self.other_code)

    def not_implemented_by(self, status: int | None, body: object) -> bool:
        """Whether an answer ``status`` / ``body`` says the connector lacks this route.

        The one rule every consumer applies: 404 on an optional route (SDK versions before
        the route existed); 400 ``{"status": "not_implemented"}`` where the route has that
        status or is optional (the SDK's default handler of an optional route); on
        ``batch_update``, the SDK's fixed answer of a non-batched plugin. A 404 on a
        mandatory route is a failure, never "not implemented".
        """
        if status == 404:
            return self.optional
        if status == 400 and (self.optional or "not_implemented" in self.status_codes):
            return isinstance(body, Mapping) and body.get("status") == "not_implemented"
        if self.name == "batch_update" and status == NON_BATCHED_BATCH_UPDATE_CODE:
            return isinstance(body, Mapping) and dict(body) == dict(NON_BATCHED_BATCH_UPDATE_ANSWER)
        return False

    @property
    def statuses(self) -> tuple[str, ...]:
        """The statuses with a code of their own, in table order."""
        return tuple(self.status_codes)


def _route(
    name: str,
    method: str,
    path: str,
    request_model: type[BaseModel] | None,
    response_model: type[BaseModel] | None,
    status_codes: Mapping[str, int],
    *,
    other_code: int = 500,
    optional: bool = False,
    since: str = BASELINE_SDK_VERSION,
    summary: str = "",
) -> Route:
    return Route(
        name=name,
        method=method,
        path=path,
        request_model=request_model,
        response_model=response_model,
        status_codes=MappingProxyType(dict(status_codes)),
        other_code=other_code,
        optional=optional,
        since=since,
        summary=summary,
    )


_BatchUpdateRequestAny: type[BaseModel] = BatchUpdateRequest[Any]

ROUTES: tuple[Route, ...] = (
    _route(
        "external_segment_creation",
        "POST",
        "/v1/external_segment_creation",
        ExternalSegmentCreationRequest,
        ExternalSegmentCreationResponse,
        {"ok": 200},
        summary="The feed was activated: create (or find) the partner segment.",
    ),
    _route(
        "external_segment_connection",
        "POST",
        "/v1/external_segment_connection",
        ExternalSegmentConnectionRequest,
        ExternalSegmentConnectionResponse,
        {"ok": 200, "external_segment_not_ready_yet": 502, "error": 500},
        summary="Is the partner segment ready? 502 means poll again.",
    ),
    _route(
        "user_segment_update",
        "POST",
        "/v1/user_segment_update",
        UserSegmentUpdateRequest,
        UserSegmentUpdateResponse,
        {"ok": 200, "error": 500, "retry": 429, "no_eligible_identifier": 400},
        summary="One user enters (UPSERT) or leaves (DELETE) the segment.",
    ),
    _route(
        "batch_update",
        "POST",
        "/v1/batch_update",
        _BatchUpdateRequestAny,
        BatchUpdateResponse,
        {"OK": 200, "ERROR": 400, "RETRY": 503},
        optional=True,
        summary="Batched plugins: send one grouping key's queued items to the partner.",
    ),
    _route(
        "troubleshoot",
        "POST",
        "/v1/troubleshoot",
        TroubleshootRequest,
        TroubleshootResponse,
        {"ok": 200, "error": 500, "not_implemented": 400},
        summary="Troubleshoot the feed, e.g. FETCH_DESTINATION_AUDIENCE.",
    ),
    _route(
        "authentication_status",
        "POST",
        "/v1/authentication_status_queries",
        AuthenticationStatusQueryRequest,
        AuthenticationStatusQueryResponse,
        {"authenticated": 200, "not_authenticated": 200, "error": 500, "not_implemented": 400},
        optional=True,
        since="0.30",
        summary="Is the user authenticated at the partner? If not, where to log in.",
    ),
    _route(
        "authentication",
        "POST",
        "/v1/authentication",
        AuthenticationRequest,
        AuthenticationResponse,
        {"ok": 200, "error": 500, "not_implemented": 400},
        optional=True,
        since="0.31",
        summary="The partner's OAuth redirect came back: exchange and store the grant.",
    ),
    _route(
        "logout",
        "POST",
        "/v1/logout",
        LogoutRequest,
        LogoutResponse,
        {"ok": 200, "error": 500, "not_implemented": 400},
        optional=True,
        since="0.31.2",
        summary="Forget a user's (or datamart's) partner credentials.",
    ),
    _route(
        "dynamic_property_values",
        "POST",
        "/v1/dynamic_property_values_queries",
        DynamicPropertyValuesQueryRequest,
        DynamicPropertyValuesQueryResponse,
        {"ok": 200, "empty": 200, "error": 500, "not_implemented": 400},
        optional=True,
        since="0.30",
        summary="Choices for the feed form's properties, from the partner.",
    ),
    _route(
        "test_authentication",
        "POST",
        "/v1/test_authentication",
        TestAuthenticationRequest,
        TestAuthenticationResponse,
        {"ok": 200, "invalid_credentials": 401, "error": 500, "not_implemented": 400},
        optional=True,
        since="0.40",
        summary="Check a feed destination's stored credentials against the partner.",
    ),
    _route(
        "oauth_redirect_url",
        "POST",
        "/v1/oauth_redirect_url",
        OAuthRedirectUrlRequest,
        OAuthRedirectUrlResponse,
        {"error": 500},
        other_code=200,
        optional=True,
        since="0.40",
        summary="The partner login URL for a feed destination (no status: 200).",
    ),
    _route(
        "init",
        "POST",
        "/v1/init",
        None,
        None,
        {},
        other_code=200,
        summary="Legacy init call: a no-op answering 200.",
    ),
    _route(
        "status",
        "GET",
        "/v1/status",
        None,
        None,
        {},
        other_code=200,
        summary="Health: 200 when worker id and token are set, else 503.",
    ),
    _route(
        "log_level_get",
        "GET",
        "/v1/log_level",
        None,
        LogLevel,
        {},
        other_code=200,
        summary="The current log level, upper case.",
    ),
    _route(
        "log_level_put",
        "PUT",
        "/v1/log_level",
        LogLevel,
        None,
        {},
        other_code=200,
        summary="Set the log level; 400 without `level`.",
    ),
    _route(
        "metadata",
        "GET",
        "/v1/metadata",
        None,
        PluginMetadata,
        {},
        other_code=200,
        optional=True,
        since="0.41",
        summary="Runtime and build of the plugin (version of introduction not documented).",
    ),
)

_BY_NAME: Mapping[str, Route] = MappingProxyType({r.name: r for r in ROUTES})
_BY_PATH: Mapping[tuple[str, str], Route] = MappingProxyType(
    {(r.method, r.path): r for r in ROUTES}
)


def route(name: str) -> Route:
    """The route named `name`; KeyError naming the known routes otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(_BY_NAME)
        raise KeyError(f"unknown route {name!r}; known routes: {known}") from None


def route_for_path(method: str, path: str) -> Route | None:
    """The route served at `method` `path` (query string and trailing slash ignored)."""
    bare = path.split("?", 1)[0].split("#", 1)[0]
    if len(bare) > 1:
        bare = bare.rstrip("/")
    return _BY_PATH.get((method.upper(), bare))
