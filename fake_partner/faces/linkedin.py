"""The LinkedIn face: Marketing API DMP segments (Matched Audiences), Rest.li 2.0.

``/rest/dmpSegments`` with ``LinkedIn-Version`` and ``X-Restli-Protocol-Version: 2.0.0``
on every call, OAuth 2.0 at ``/oauth/v2/...``, users in ``BATCH_CREATE`` batches of
elements answered element by element, errors as
``{"status", "serviceErrorCode", "code", "message"}``, 429 with no ``Retry-After``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fake_partner.errors import ErrorCode, OAuthError, PartnerError
from fake_partner.faces.base import (
    AUTHORIZE_ROUTE,
    CREATE_ROUTE,
    DELETE_ROUTE,
    GET_ROUTE,
    LIST_ROUTE,
    TOKEN_ROUTE,
    UPLOAD_ROUTE,
    Call,
    Context,
    Face,
    FaceError,
    FaceRoute,
    Handler,
    PartnerRequest,
    json_response,
)
from fake_partner.faces.generic import (
    authorize,
    check_form_utf8,
    invalid_body,
    oauth_error_response,
    token_form,
    token_grant,
    upload_operations,
)
from fake_partner.identifiers import EMAIL_SHA256, MAID
from fake_partner.inbound import UnreadableRequestError, decimal, json_value
from fake_partner.models import AccessToken, Member, OperationInput, Segment
from fake_partner.routes import Route, resolve

VERSIONS = ("202506", "202507", "202508", "202509", "202510", "202511", "202512", "202601")
"""``LinkedIn-Version`` values this face accepts (LinkedIn keeps about a year live)."""
DEFAULT_VERSION = "202601"
PROTOCOL_VERSION = "2.0.0"
ACCOUNT_URN = "urn:li:sponsoredAccount:"
ID_BASE = 1_000_000
"""A LinkedIn segment id is this plus the core segment's number (``seg-000007`` -> 1000007)."""
DEFAULT_PAGE_COUNT = 10
_CORE_ID = re.compile(r"seg-[0-9]{6,}")

ID_TYPES: Mapping[str, str] = {
    "SHA256_EMAIL": EMAIL_SHA256,
    "GOOGLE_AID": MAID,
    "APPLE_IDFA": MAID,
}
"""LinkedIn ``idType`` -> core identifier type; any other ``idType`` is refused per element
(``UNSUPPORTED_IDENTIFIER_TYPE``)."""

STATUSES: Mapping[str, str] = {
    "PROVISIONING": "PROCESSING",
    "BUILDING": "PROCESSING",
    "UPDATING": "READY",
    "READY": "READY",
    "FAILED": "FAILED",
}
"""Core segment status -> LinkedIn DMP segment status."""

_ERRORS: Mapping[str, tuple[str, int]] = {
    ErrorCode.INVALID_ACCESS_TOKEN: ("INVALID_ACCESS_TOKEN", 65600),
    ErrorCode.REVOKED_ACCESS_TOKEN: ("REVOKED_ACCESS_TOKEN", 65601),
    ErrorCode.EXPIRED_ACCESS_TOKEN: ("EXPIRED_ACCESS_TOKEN", 65602),
    ErrorCode.ACCOUNT_FORBIDDEN: ("ACCESS_DENIED", 100),
    ErrorCode.SEGMENT_NOT_FOUND: ("NOT_FOUND", 404),
    ErrorCode.SEGMENT_NOT_READY: ("NOT_FOUND", 404),
    ErrorCode.ROUTE_NOT_FOUND: ("NOT_FOUND", 404),
    ErrorCode.SEGMENT_NAME_TAKEN: ("DUPLICATE_SEGMENT_NAME", 409),
    ErrorCode.RATE_LIMITED: ("TOO_MANY_REQUESTS", 429),
    ErrorCode.QUOTA_EXHAUSTED: ("TOO_MANY_REQUESTS", 429),
}
"""Core error code -> LinkedIn ``code`` and ``serviceErrorCode`` (else by HTTP status)."""

_BY_STATUS: Mapping[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "ACCESS_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "REQUEST_ENTITY_TOO_LARGE",
    414: "URI_TOO_LONG",
    426: "NONEXISTENT_VERSION",
    429: "TOO_MANY_REQUESTS",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}

ROUTES = (
    Route("GET", "/oauth/v2/authorization", "authorize"),
    Route("POST", "/oauth/v2/accessToken", "token"),
    Route("POST", "/rest/dmpSegments", "create_segment"),
    Route("GET", "/rest/dmpSegments", "list_segments"),
    Route("GET", "/rest/dmpSegments/{id}", "get_segment"),
    Route("DELETE", "/rest/dmpSegments/{id}", "delete_segment"),
    Route("POST", "/rest/dmpSegments/{id}/users", "upload"),
)
_CORE = {
    "authorize": AUTHORIZE_ROUTE,
    "token": TOKEN_ROUTE,
    "create_segment": CREATE_ROUTE,
    "list_segments": LIST_ROUTE,
    "get_segment": GET_ROUTE,
    "delete_segment": DELETE_ROUTE,
    "upload": UPLOAD_ROUTE,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Destination(_Strict):
    destination: Literal["LINKEDIN"]


class CreateSegmentIn(_Strict):
    """``POST /rest/dmpSegments``."""

    name: str
    account: str = Field(pattern=r"^urn:li:sponsoredAccount:[^\s]+$")
    type: Literal["USER"]
    sourcePlatform: str = Field(min_length=1, max_length=100)  # noqa: N815 (LinkedIn's name)
    accessPolicy: Literal["PRIVATE", "PUBLIC"] | None = None  # noqa: N815
    destinations: list[_Destination] = Field(min_length=1)
    description: str | None = None


class _UserId(_Strict):
    idType: str  # noqa: N815
    idValue: str  # noqa: N815


class _Element(_Strict):
    action: str
    userIds: list[_UserId]  # noqa: N815


class UsersIn(_Strict):
    """``POST /rest/dmpSegments/{id}/users`` (``X-RestLi-Method: BATCH_CREATE``)."""

    elements: list[_Element]


def linkedin_id(core_id: str) -> str:
    """The LinkedIn id of a core segment (``seg-000007`` -> ``1000007``)."""
    number = decimal(core_id[4:]) if core_id.startswith("seg-") else None
    return str(ID_BASE + number) if number is not None else core_id


def core_id(linkedin: str) -> str:
    """The core id a LinkedIn id names; ``li:<id>`` (found nowhere) for any other text."""
    number = decimal(linkedin)
    if number is not None and number > ID_BASE:
        return f"seg-{number - ID_BASE:06d}"
    return f"li:{linkedin[:64]}"


def _account_of(urn: str) -> str | None:
    return (
        urn[len(ACCOUNT_URN) :]
        if urn.startswith(ACCOUNT_URN) and len(urn) > len(ACCOUNT_URN)
        else None
    )


def _bad(message: str, status: int = 400) -> PartnerError:
    return PartnerError(status, ErrorCode.INVALID_REQUEST, message)


def _millis(seconds: float) -> int:
    return round(seconds * 1000)


def _segment_json(ctx: Context, segment: Segment) -> dict[str, Any]:
    core = ctx.state.segment_json(segment)
    status = STATUSES.get(core["status"], "PROCESSING")
    data: dict[str, Any] = {
        "id": int(linkedin_id(segment.id)),
        "name": segment.name,
        "account": ACCOUNT_URN + segment.account_id,
        "type": "USER",
        "sourcePlatform": "STREAMING",
        "accessPolicy": "PRIVATE",
        "status": status,
        "destinations": [{"destination": "LINKEDIN", "status": status}],
        "created": _millis(segment.created_at),
        "lastModified": _millis(segment.updated_at),
    }
    if segment.description is not None:
        data["description"] = segment.description
    data.update(_counts(core))
    return data


def _counts(core: Mapping[str, Any]) -> dict[str, Any]:
    """``inputCount``, ``matchedCount`` (and ``audienceSize`` once large enough) after
    processing; none before. LinkedIn shows no match rate."""
    if core.get("input_count") is None:
        return {}
    counts = {"inputCount": core["input_count"], "matchedCount": core["matched_count"]}
    if core.get("audience_size") is not None:
        counts["audienceSize"] = core["audience_size"]
    return counts


def _admitted(ctx: Context) -> AccessToken:
    token = ctx.authenticate()
    ctx.state.admit(token)  # LinkedIn sends no rate-limit headers
    return token


# --- handlers -----------------------------------------------------------------------------------


def _token(ctx: Context) -> httpx.Response:
    presented = token_form(ctx.request).get("refresh_token")

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        shaped = {"access_token": body["access_token"], "expires_in": body["expires_in"]}
        if "refresh_token" in body:
            shaped["refresh_token"] = body["refresh_token"]
            shaped["refresh_token_expires_in"] = body["refresh_token_expires_in"]
        elif presented:  # LinkedIn's refresh answer repeats the refresh token and its rest
            record = ctx.state.refresh_tokens[presented]
            shaped["refresh_token"] = presented
            shaped["refresh_token_expires_in"] = max(
                0, int(record.expires_at - ctx.partner.clock.now())
            )
        shaped["scope"] = body["scope"]
        return shaped

    return token_grant(ctx, answer)


def _create_segment(ctx: Context) -> httpx.Response:
    token = _admitted(ctx)
    body: CreateSegmentIn | None = ctx.parsed
    if body is None:
        raise _create_problem(ctx.request.body)
    account = _account_of(body.account) or ""
    segment = ctx.state.create_segment(token, account, body.name, body.description)
    ctx.call.created = segment
    ctx.call.segment_id = segment.id
    ctx.call.applied = True
    identifier = linkedin_id(segment.id)
    return httpx.Response(
        201,
        headers={
            "X-Request-Id": ctx.call.request_id,
            "x-restli-id": identifier,
            "Location": f"/rest/dmpSegments/{identifier}",
            "X-RestLi-Protocol-Version": PROTOCOL_VERSION,
        },
    )


def _create_problem(body: bytes) -> PartnerError:
    if not body.strip():
        return _bad("request body is empty; send the DMP segment as a JSON object")
    try:
        CreateSegmentIn.model_validate_json(body)
    except ValidationError as error:
        return invalid_body(error, "request body")
    return _bad("request body is not a DMP segment")  # pragma: no cover (parsed before)


def _page(ctx: Context) -> tuple[int, int]:
    maximum = ctx.state.scenario.limits.max_page_size
    start, count = 0, min(DEFAULT_PAGE_COUNT, maximum)
    raw_start = ctx.request.query.get("start")
    if raw_start is not None:
        given = decimal(raw_start)
        if given is None:
            raise _bad(f"start={raw_start[:20]!r} must be a non-negative integer")
        start = given
    raw_count = ctx.request.query.get("count")
    if raw_count is not None:
        given = decimal(raw_count)
        if given is None or not 1 <= given <= maximum:
            raise _bad(f"count={raw_count[:20]!r} must be an integer from 1 to {maximum}")
        count = given
    return start, count


def _list_segments(ctx: Context) -> httpx.Response:
    token = _admitted(ctx)
    query = ctx.request.query
    if query.get("q") != "account":
        raise _bad("finder q=account is required: GET /rest/dmpSegments?q=account&account=<urn>")
    account = _account_of(query.get("account") or "")
    if account is None:
        raise _bad("account must be a sponsored account URN: urn:li:sponsoredAccount:<id>")
    start, count = _page(ctx)
    page, _ = ctx.state.list_segments(token, account, None, start, count)
    total = sum(1 for s in ctx.state.segments.values() if s.account_id == account)
    return json_response(
        200,
        {
            "elements": [_segment_json(ctx, segment) for segment in page],
            "paging": {"start": start, "count": count, "total": total, "links": []},
        },
        ctx.call.request_id,
        {"X-RestLi-Protocol-Version": PROTOCOL_VERSION},
    )


def _get_segment(ctx: Context) -> httpx.Response:
    token = _admitted(ctx)
    segment = ctx.state.find_segment(token, core_id(ctx.params["id"]), need_ready=False)
    return json_response(
        200,
        _segment_json(ctx, segment),
        ctx.call.request_id,
        {"X-RestLi-Protocol-Version": PROTOCOL_VERSION},
    )


def _delete_segment(ctx: Context) -> httpx.Response:
    token = _admitted(ctx)
    ctx.state.delete_segment(token, core_id(ctx.params["id"]))
    ctx.call.applied = True
    return httpx.Response(204, headers={"X-Request-Id": ctx.call.request_id})


def _upload(ctx: Context) -> httpx.Response:
    token = _admitted(ctx)
    state, call = ctx.state, ctx.call
    state.find_segment(token, core_id(ctx.params["id"]), need_ready=True)
    method = ctx.request.headers.get("x-restli-method", "")
    if method.upper() != "BATCH_CREATE":
        raise _bad("POST .../users takes a batch: send the header 'X-RestLi-Method: BATCH_CREATE'")
    if call.upload_problem is not None:
        raise call.upload_problem
    outcome = upload_operations(ctx, token, True)
    messages = {error["index"]: error["message"] for error in outcome.errors}
    elements = [
        {"status": 201} if code is None else {"status": 400, "message": messages[index]}
        for index, code in enumerate(outcome.codes)
    ]
    return json_response(
        200,
        {"elements": elements},
        call.request_id,
        {"X-RestLi-Protocol-Version": PROTOCOL_VERSION},
    )


def _operations(upload: UsersIn) -> list[OperationInput]:
    return [
        (
            element.action,
            tuple(
                (ID_TYPES.get(user.idType, user.idType), user.idValue) for user in element.userIds
            ),
        )
        for element in upload.elements
    ]


def _loose_operations(data: Any) -> list[OperationInput]:
    """Whatever identifiers a refused body carried, for the ledger (raw PII must show)."""
    elements = data.get("elements") if isinstance(data, dict) else None
    found: list[OperationInput] = []
    for element in elements if isinstance(elements, list) else []:
        if not isinstance(element, dict):
            continue
        action = element.get("action")
        members: list[Member] = []
        users = element.get("userIds")
        for user in users if isinstance(users, list) else []:
            if isinstance(user, dict):
                kind, value = user.get("idType"), user.get("idValue")
                if isinstance(kind, str) and isinstance(value, str):
                    members.append((ID_TYPES.get(kind, kind), value))
        found.append((action if isinstance(action, str) else "", tuple(members)))
    return found


class LinkedInFace(Face):
    """LinkedIn Marketing API: DMP segments and their users (``docs/partner-dialects.md``)."""

    lists_accounts = False
    read_shows_not_ready = False

    name = "linkedin"
    api_version = DEFAULT_VERSION
    base_path = "/rest"
    defaults: Mapping[str, Any] = {
        "access_token_lifetime": 60 * 86400,
        "refresh_token_lifetime": 365 * 86400,
        "provisioning_delay": 5,
        "limits": {"max_operations": 5_000},
    }
    handlers: Mapping[str, Handler] = {
        "authorize": authorize,
        "token": _token,
        "create_segment": _create_segment,
        "list_segments": _list_segments,
        "get_segment": _get_segment,
        "delete_segment": _delete_segment,
        "upload": _upload,
    }

    def match(self, request: PartnerRequest) -> FaceRoute:
        try:
            route, params = resolve(ROUTES, request.method, request.path)
        except PartnerError as error:
            raise PartnerError(
                error.status,
                error.code,
                f"no resource {request.method} {request.path[:200]}; DMP segments live "
                "under /rest/dmpSegments",
                headers=error.headers,
            ) from None
        return FaceRoute(route.key, route.handler, params, _CORE[route.handler])

    def readable(self, route: FaceRoute, request: PartnerRequest, max_body: int) -> Any:
        body = request.body
        if route.handler == "token":
            if "json" not in request.content_type:
                check_form_utf8(request)
            return None
        if route.core_method != "POST" or not body.strip() or len(body) > 4 * max_body:
            return None
        data = json_value(body)  # unreadable: refused unrecorded
        model = UsersIn if route.handler == "upload" else CreateSegmentIn
        try:
            return model.model_validate(data)
        except ValidationError:
            return None

    def identify(self, ctx: Context) -> None:
        call, route = ctx.call, ctx.route
        if "id" in route.params:
            call.segment_id = core_id(route.params["id"])
            segment = ctx.state.segments.get(call.segment_id)
            call.account_id = segment.account_id if segment is not None else None
        if route.handler == "create_segment" and isinstance(ctx.parsed, CreateSegmentIn):
            call.account_id = _account_of(ctx.parsed.account)
        if route.handler == "list_segments":
            call.account_id = _account_of(ctx.request.query.get("account") or "")
        if route.handler == "upload":
            self._read_users(ctx)

    def _read_users(self, ctx: Context) -> None:
        call, body = ctx.call, ctx.request.body
        if len(body) > 4 * ctx.state.scenario.limits.max_body_bytes:
            return
        call.partial_failure = True
        if isinstance(ctx.parsed, UsersIn):
            call.operations = _operations(ctx.parsed)
            return
        if not body.strip():
            call.upload_problem = _bad('request body is empty; send {"elements": [...]}')
            return
        try:
            UsersIn.model_validate_json(body)
        except ValidationError as error:
            call.upload_problem = invalid_body(error, "request body")
        call.operations = _loose_operations(json_value(body))

    def precheck(self, ctx: Context) -> None:
        if not ctx.request.path.startswith("/rest/"):
            return
        version = ctx.request.headers.get("linkedin-version")
        if version is None or not version.strip():
            raise FaceError(
                400,
                ErrorCode.INVALID_REQUEST,
                "A version must be present. Please specify a version by adding the "
                f"LinkedIn-Version header (YYYYMM, e.g. {DEFAULT_VERSION}).",
                "VERSION_MISSING",
            )
        if version.strip() not in VERSIONS:
            raise FaceError(
                426,
                ErrorCode.INVALID_REQUEST,
                f"Requested version {version.strip()[:20]} is not active; active versions: "
                f"{', '.join(VERSIONS)}",
                "NONEXISTENT_VERSION",
            )
        protocol = ctx.request.headers.get("x-restli-protocol-version")
        if protocol != PROTOCOL_VERSION:
            raise FaceError(
                400,
                ErrorCode.INVALID_REQUEST,
                "send 'X-Restli-Protocol-Version: 2.0.0' on every /rest call",
                "INVALID_PROTOCOL_VERSION",
            )

    def core_path(self, ctx: Context) -> str:
        core = ctx.route.core
        if core in (UPLOAD_ROUTE, GET_ROUTE, DELETE_ROUTE):
            suffix = "/members" if core == UPLOAD_ROUTE else ""
            return f"/v1/segments/{ctx.call.segment_id}{suffix}"
        if core in (CREATE_ROUTE, LIST_ROUTE):
            return f"/v1/accounts/{ctx.call.account_id or ''}/segments"
        return "/oauth/token" if core == TOKEN_ROUTE else "/oauth/authorize"

    def refresh_token_presented(self, request: PartnerRequest) -> str | None:
        return token_form(request).get("refresh_token")

    def render_error(
        self, error: PartnerError, call: Call, extra_headers: Mapping[str, str] | None
    ) -> httpx.Response:
        if isinstance(error, FaceError):
            code, service = error.dialect_code, error.status
        else:
            code, service = _ERRORS.get(
                error.code, (_BY_STATUS.get(error.status, "ERROR"), error.status)
            )
        call.dialect_code = code
        call.retry_after = None  # LinkedIn never says how long to wait
        body = {
            "status": error.status,
            "serviceErrorCode": service,
            "code": code,
            "message": _CORE_ID.sub(lambda m: linkedin_id(m.group(0)), error.message),
        }
        headers = {"X-RestLi-Protocol-Version": PROTOCOL_VERSION}
        if "Allow" in error.headers:
            headers["Allow"] = error.headers["Allow"]
        return json_response(error.status, body, call.request_id, headers)

    def render_oauth_error(
        self, error: OAuthError, call: Call, extra_headers: Mapping[str, str] | None
    ) -> httpx.Response:
        return oauth_error_response(error, call.request_id)

    def render_refusal(
        self, refusal: UnreadableRequestError, request_id: str, route: FaceRoute | None
    ) -> httpx.Response:
        if route is not None and route.core == TOKEN_ROUTE:
            return oauth_error_response(
                OAuthError(400, "invalid_request", refusal.message), request_id
            )
        body = {
            "status": refusal.status,
            "serviceErrorCode": refusal.status,
            "code": _BY_STATUS.get(refusal.status, "BAD_REQUEST"),
            "message": refusal.message,
        }
        return json_response(refusal.status, body, request_id)

    def counts_shown(self, segment: Mapping[str, Any]) -> dict[str, Any]:
        """InputCount, matchedCount, audienceSize, as a read shows them."""
        return _counts(segment)

    def external_segment_id(self, core: str) -> str:
        return linkedin_id(core)

    def core_segment_id(self, external: str) -> str:
        return core_id(external)

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "versions": list(VERSIONS),
            "headers": {
                "LinkedIn-Version": DEFAULT_VERSION,
                "X-Restli-Protocol-Version": PROTOCOL_VERSION,
            },
            "oauth_authorize_path": "/oauth/v2/authorization",
            "oauth_token_path": "/oauth/v2/accessToken",
            "refresh_grant": True,
        }
