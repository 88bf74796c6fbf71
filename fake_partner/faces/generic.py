"""The generic face: ``partner-api.md`` (Partner Audience API v1), the default dialect.

Parses a request, calls one core method, renders the spec's shapes:
``{"error": {status, code, message, request_id, details}}`` for errors, OAuth's own
``{"error", "error_description"}`` on ``/oauth/token``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
from pydantic import BaseModel, ValidationError

from fake_partner.errors import ErrorCode, OAuthError, PartnerError
from fake_partner.faces.base import (
    TOKEN_ROUTE,
    UPLOAD_ROUTE,
    Call,
    Context,
    Face,
    FaceRoute,
    Handler,
    PartnerRequest,
    json_response,
    too_large,
)
from fake_partner.inbound import UnreadableRequestError, decimal, json_value
from fake_partner.models import AccessToken, PartnerState, fingerprint
from fake_partner.openapi import openapi_document
from fake_partner.routes import PARTNER_ROUTES, resolve
from fake_partner.wire import UPLOAD, CreateSegmentIn, UploadIn, loose_identifiers

DEFAULT_PAGE_SIZE = 100


# --- answers ------------------------------------------------------------------------------------


def error_response(
    error: PartnerError, request_id: str, extra_headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """``{"error": {status, code, message, request_id, details}}``."""
    body = {
        "error": {
            "status": error.status,
            "code": error.code,
            "message": error.message,
            "request_id": request_id,
            "details": error.details,
        }
    }
    return json_response(error.status, body, request_id, {**(extra_headers or {}), **error.headers})


def oauth_error_response(error: OAuthError, request_id: str) -> httpx.Response:
    """OAuth's own error shape: ``{"error", "error_description"}``."""
    body = {"error": error.error, "error_description": error.description}
    headers = {"Cache-Control": "no-store"}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="oauth"'
    return json_response(error.status, body, request_id, headers)


def invalid_body(error: ValidationError, what: str) -> PartnerError:
    """400 ``INVALID_REQUEST`` naming each field pydantic refused (never its value)."""
    details = [
        {
            "field": _loc(detail["loc"]),
            "problem": detail["msg"],
        }
        for detail in error.errors(include_url=False, include_input=False)[:50]
    ]
    first = details[0] if details else {"field": "", "problem": "invalid"}
    where = f"{first['field']}: " if first["field"] else ""
    return PartnerError(
        400,
        ErrorCode.INVALID_REQUEST,
        f"{what} is not valid: {where}{first['problem']}",
        details,
    )


def _loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for element in loc:
        if isinstance(element, int):
            text += f"[{element}]"
        else:
            text += f".{element}" if text else str(element)
    return text


def parse_body(model: type[BaseModel], body: bytes, what: str) -> Any:
    """``model`` from a strict JSON body, or 400 ``INVALID_REQUEST``."""
    if not body.strip():
        raise PartnerError(400, ErrorCode.INVALID_REQUEST, f"{what} is empty; send a JSON object")
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise invalid_body(error, what) from None


_REFUSAL_CODES = {
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    414: ErrorCode.TARGET_TOO_LONG,
    431: ErrorCode.HEADERS_TOO_LARGE,
}


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None


# --- OAuth --------------------------------------------------------------------------------------


def token_form(request: PartnerRequest) -> dict[str, str]:
    """``/oauth/token`` parameters, form-encoded or JSON (by Content-Type)."""
    body = request.body
    if "json" in request.content_type:
        try:
            data = json_value(body or b"{}")
        except UnreadableRequestError as refusal:
            raise OAuthError(400, "invalid_request", refusal.message) from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise OAuthError(400, "invalid_request", "JSON body must be an object of string values")
        return data
    try:
        text = body.decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise OAuthError(400, "invalid_request", "body is not UTF-8") from None


def basic_credentials(request: PartnerRequest) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, ValueError):  # ValueError: not base64's ASCII, or not UTF-8
        raise OAuthError(401, "invalid_client", "malformed Basic authorization header") from None
    return client_id, secret


def check_form_utf8(request: PartnerRequest) -> None:
    """Refuse a form body (or its %-escapes) that is not UTF-8, unread."""
    try:
        parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise UnreadableRequestError(
            400,
            "request body",
            "the form body or its %-escapes are not UTF-8: encode values as UTF-8",
        ) from None


def token_grant(ctx: Context, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> httpx.Response:
    """The core's token grant, recorded; ``answer`` reshapes the core's body for the face."""
    call = ctx.call
    form = token_form(ctx.request)
    call.grant_type = form.get("grant_type") or None
    basic = basic_credentials(ctx.request)
    call.client_id = basic[0] if basic else form.get("client_id")
    if form.get("refresh_token"):
        call.token = fingerprint(form["refresh_token"])
    body, _ = ctx.state.token_grant(form, basic)
    call.applied = True
    return json_response(
        200, answer(body), call.request_id, {"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


def authorize(ctx: Context) -> httpx.Response:
    """The user's consent: 302 to the redirect URI with a code and the state."""
    query = {key: value for key, value in ctx.request.query.multi_items()}
    ctx.call.client_id = query.get("client_id")
    location = quote(ctx.state.authorize(query), safe=URL_SAFE)  # a header is ASCII
    ctx.call.applied = "code=" in location
    return httpx.Response(302, headers={"Location": location, "X-Request-Id": ctx.call.request_id})


URL_SAFE = "!#$%&'()*+,-./:;=?@[]_~"
"""What stays as is when a redirect URL is made ASCII (non-ASCII is %-encoded as UTF-8)."""


# --- /v1 ----------------------------------------------------------------------------------------


def _token(ctx: Context) -> httpx.Response:
    return token_grant(ctx, lambda body: body)


def _admitted(ctx: Context) -> tuple[AccessToken, dict[str, str]]:
    token = ctx.state.authenticate(ctx.request.headers.get("authorization"))
    ctx.call.client_id = token.client_id
    return token, ctx.state.admit(token)


def _page_params(state: PartnerState, request: PartnerRequest) -> tuple[int, int]:
    """``cursor`` (opaque, from a previous page) and ``limit`` (1..max_page_size)."""
    maximum = state.scenario.limits.max_page_size
    raw_limit = request.query.get("limit")
    limit = min(DEFAULT_PAGE_SIZE, maximum)
    if raw_limit is not None:
        given = decimal(raw_limit)
        if given is None or not 1 <= given <= maximum:
            raise PartnerError(
                400,
                ErrorCode.INVALID_REQUEST,
                f"limit={raw_limit[:20]!r} must be an integer from 1 to {maximum}",
                [{"field": "limit"}],
            )
        limit = given
    cursor = request.query.get("cursor") or ""
    offset = 0
    if cursor:
        position = decimal(cursor[1:]) if cursor.startswith("o") else None
        if position is None:
            raise PartnerError(
                400,
                ErrorCode.INVALID_REQUEST,
                f"cursor={cursor[:40]!r} is not a cursor this partner gave; pass next_cursor "
                "from the previous page unchanged",
                [{"field": "cursor"}],
            )
        offset = position
    return offset, limit


def _cursor(offset: int | None) -> str | None:
    return None if offset is None else f"o{offset}"


def _v1(action: Callable[[AccessToken], httpx.Response], ctx: Context) -> httpx.Response:
    """Authenticate and admit a ``/v1`` request, run ``action``, add the rate headers."""
    token, headers = _admitted(ctx)
    try:
        response = action(token)
    except PartnerError as error:
        return ctx.error(error, headers)
    response.headers.update(headers)
    return response


def _list_accounts(ctx: Context) -> httpx.Response:
    def action(token: AccessToken) -> httpx.Response:
        accounts = ctx.state.visible_accounts(token)
        return json_response(200, {"accounts": accounts}, ctx.call.request_id)

    return _v1(action, ctx)


def _create_segment(ctx: Context) -> httpx.Response:
    state, call, params = ctx.state, ctx.call, ctx.params

    def action(token: AccessToken) -> httpx.Response:
        state.require_account(token, params["account_id"])
        body: CreateSegmentIn = parse_body(CreateSegmentIn, ctx.request.body, "request body")
        segment = state.create_segment(token, params["account_id"], body.name, body.description)
        call.created = segment
        call.segment_id = segment.id
        call.applied = True
        return json_response(
            201,
            state.segment_json(segment),
            call.request_id,
            {"Location": f"/v1/segments/{segment.id}"},
        )

    return _v1(action, ctx)


def _list_segments(ctx: Context) -> httpx.Response:
    state, params = ctx.state, ctx.params

    def action(token: AccessToken) -> httpx.Response:
        state.require_account(token, params["account_id"])
        offset, limit = _page_params(state, ctx.request)
        name = ctx.request.query.get("name")
        page, following = state.list_segments(token, params["account_id"], name, offset, limit)
        return json_response(
            200,
            {
                "segments": [state.segment_json(segment) for segment in page],
                "next_cursor": _cursor(following),
            },
            ctx.call.request_id,
        )

    return _v1(action, ctx)


def _get_segment(ctx: Context) -> httpx.Response:
    def action(token: AccessToken) -> httpx.Response:
        segment = ctx.state.find_segment(token, ctx.params["segment_id"], need_ready=True)
        return json_response(200, ctx.state.segment_json(segment), ctx.call.request_id)

    return _v1(action, ctx)


def _delete_segment(ctx: Context) -> httpx.Response:
    def action(token: AccessToken) -> httpx.Response:
        ctx.state.delete_segment(token, ctx.params["segment_id"])
        ctx.call.applied = True
        return httpx.Response(204, headers={"X-Request-Id": ctx.call.request_id})

    return _v1(action, ctx)


def _upload(ctx: Context) -> httpx.Response:
    state, call = ctx.state, ctx.call

    def action(token: AccessToken) -> httpx.Response:
        state.find_segment(token, ctx.params["segment_id"], need_ready=True)
        if call.upload_problem is not None:
            raise call.upload_problem
        upload: UploadIn | None = call.upload
        if upload is None:  # too large to parse; the size check answers 413 before this
            raise too_large(len(ctx.request.body), state.scenario.limits.max_body_bytes)
        outcome = upload_operations(ctx, token, upload.get("partial_failure", True))
        return json_response(
            200,
            {
                "request_id": call.request_id,
                "received": outcome.received,
                "accepted": outcome.accepted,
                "rejected": outcome.rejected,
                "errors": outcome.errors,
            },
            call.request_id,
        )

    return _v1(action, ctx)


def upload_operations(ctx: Context, token: AccessToken, partial_failure: bool) -> Any:
    """The core's upload of ``call.operations``, with each operation's outcome recorded."""
    call = ctx.call
    try:
        outcome = ctx.state.upload(
            token, call.segment_id or "", call.operations, partial_failure, ctx.reject
        )
    except PartnerError as error:
        if error.code == ErrorCode.INVALID_OPERATIONS:
            codes: list[str | None] = [None] * len(call.operations)
            for item in error.details:
                codes[item["index"]] = item["code"]
            call.codes = codes
            call.accepted = [False] * len(codes)
        raise
    call.codes = outcome.codes
    call.accepted = [code is None for code in outcome.codes]
    call.applied = outcome.applied
    return outcome


def _list_members(ctx: Context) -> httpx.Response:
    def action(token: AccessToken) -> httpx.Response:
        offset, limit = _page_params(ctx.state, ctx.request)
        page, following = ctx.state.members_page(token, ctx.params["segment_id"], offset, limit)
        return json_response(
            200,
            {
                "members": [{"type": type_, "value": value} for type_, value in page],
                "next_cursor": _cursor(following),
            },
            ctx.call.request_id,
        )

    return _v1(action, ctx)


class GenericFace(Face):
    """``partner-api.md``: ``/v1`` routes, OAuth at ``/oauth/token``."""

    name = "generic"
    api_version = "v1"
    base_path = "/v1"
    handlers: Mapping[str, Handler] = {
        "token": _token,
        "authorize": authorize,
        "list_accounts": _list_accounts,
        "create_segment": _create_segment,
        "list_segments": _list_segments,
        "get_segment": _get_segment,
        "delete_segment": _delete_segment,
        "upload": _upload,
        "list_members": _list_members,
    }

    def match(self, request: PartnerRequest) -> FaceRoute:
        route, params = resolve(PARTNER_ROUTES, request.method, request.path)
        return FaceRoute(route.key, route.handler, params, route.key)

    def readable(self, route: FaceRoute, request: PartnerRequest, max_body: int) -> Any:
        """Refuse a body the route would read that is not strict JSON (or, for the token
        route, not a UTF-8 form); an upload body is parsed once, here, when valid."""
        body = request.body
        if route.key == UPLOAD_ROUTE:
            if len(body) > 4 * max_body or not body.strip():
                return None
            try:
                return UPLOAD.validate_json(body)
            except ValidationError:
                json_value(body)  # unreadable: refused; readable but invalid: answered later
                return None
        if route.key == TOKEN_ROUTE and "json" not in request.content_type:
            check_form_utf8(request)
            return None
        if route.core_method in ("POST", "PUT") and body.strip():
            json_value(body)
        return None

    def identify(self, ctx: Context) -> None:
        call, params = ctx.call, ctx.params
        call.account_id = params.get("account_id")
        call.segment_id = params.get("segment_id")
        if call.segment_id is not None:
            segment = ctx.state.segments.get(call.segment_id)
            call.account_id = segment.account_id if segment is not None else None
        if ctx.route.key == UPLOAD_ROUTE:
            _read_upload(ctx)

    def refresh_token_presented(self, request: PartnerRequest) -> str | None:
        return token_form(request).get("refresh_token")

    def render_error(
        self, error: PartnerError, call: Call, extra_headers: Mapping[str, str] | None
    ) -> httpx.Response:
        call.dialect_code = error.code
        response = error_response(error, call.request_id, extra_headers)
        call.retry_after = retry_after_header(response.headers)
        return response

    def render_oauth_error(
        self, error: OAuthError, call: Call, extra_headers: Mapping[str, str] | None
    ) -> httpx.Response:
        response = oauth_error_response(error, call.request_id)
        response.headers.update(extra_headers or {})
        call.retry_after = retry_after_header(response.headers)
        return response

    def render_refusal(
        self, refusal: UnreadableRequestError, request_id: str, route: FaceRoute | None
    ) -> httpx.Response:
        if route is not None and route.core == TOKEN_ROUTE:
            error = OAuthError(400, "invalid_request", refusal.message)
            return oauth_error_response(error, request_id)
        code = _REFUSAL_CODES.get(refusal.status, ErrorCode.INVALID_REQUEST)
        error2 = PartnerError(refusal.status, code, refusal.message, [{"field": refusal.part}])
        return error_response(error2, request_id)

    def openapi(self) -> dict[str, Any] | None:
        return openapi_document()


def _read_upload(ctx: Context) -> None:
    """The upload parsed once: the model for the handler, the identifiers for the ledger.

    ``ctx.parsed`` is the body already validated by :meth:`GenericFace.readable`, or None
    when it is empty, too large, or strict JSON that does not validate (re-read here for
    its errors).
    """
    call, body = ctx.call, ctx.request.body
    upload: UploadIn | None = ctx.parsed
    limit = ctx.state.scenario.limits.max_body_bytes
    if len(body) > 4 * limit:
        return
    if upload is None:
        if not body.strip():
            call.upload_problem = PartnerError(
                400, ErrorCode.INVALID_REQUEST, "request body is empty; send a JSON object"
            )
            return
        try:
            UPLOAD.validate_json(body)
        except ValidationError as error:
            call.upload_problem = invalid_body(error, "request body")
        call.operations = loose_identifiers(json_value(body))
        return
    call.upload = upload
    call.partial_failure = upload.get("partial_failure", True)
    call.operations = [
        (
            operation["action"],
            tuple(
                (identifier["type"], identifier["value"]) for identifier in operation["identifiers"]
            ),
        )
        for operation in upload["operations"]
    ]
