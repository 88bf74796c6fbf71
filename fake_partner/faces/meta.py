"""The Meta face: Marketing API Custom Audiences on versioned Graph paths.

``/v<NN>.0/act_<id>/customaudiences``, ``/v<NN>.0/<audience id>`` and its ``/users``
(POST adds, DELETE removes) with ``payload={"schema", "data"}``; the token as
``access_token`` or ``Authorization: Bearer``, long-lived, with no refresh grant; answers
count rows, never judge them one by one; errors as ``{"error": {"message", "type",
"code", "error_subcode", "fbtrace_id"}}``; throttling is HTTP 400 code 80003 with
``X-Business-Use-Case-Usage``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx

from fake_partner.errors import ErrorCode, OAuthError, PartnerError
from fake_partner.faces.base import (
    ACCOUNTS_ROUTE,
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
from fake_partner.faces.generic import authorize, check_form_utf8, upload_operations
from fake_partner.identifiers import EMAIL_SHA256, MAID, PARTNER_USER_ID, PHONE_SHA256
from fake_partner.inbound import UnreadableRequestError, decimal, json_value
from fake_partner.models import AccessToken, Member, OperationInput, Segment

VERSIONS = ("v22.0", "v23.0", "v24.0", "v25.0")
"""Graph API versions this face accepts; any other ``v<N>.<M>`` answers code 2635."""
DEFAULT_VERSION = "v25.0"
ID_PREFIX = "2385"
"""A Meta audience id is ``2385`` and the core segment's number on 13 digits."""
DEFAULT_PAGE_LIMIT = 25
MAX_SAMPLES = 10

SCHEMA_TYPES: Mapping[str, str] = {
    "EMAIL": EMAIL_SHA256,
    "EMAIL_SHA256": EMAIL_SHA256,
    "PHONE": PHONE_SHA256,
    "PHONE_SHA256": PHONE_SHA256,
    "MADID": MAID,
    "EXTERN_ID": PARTNER_USER_ID,
}
"""Meta ``schema`` key -> core identifier type (``EMAIL`` and ``PHONE`` take the SHA-256
of the normalised value, as Meta asks); other keys make their rows invalid entries."""

FIELDS = (
    "id",
    "account_id",
    "name",
    "description",
    "subtype",
    "approximate_count_lower_bound",
    "approximate_count_upper_bound",
    "operation_status",
    "delivery_status",
    "time_created",
    "time_updated",
)
CUSTOMER_FILE_SOURCES = (
    "USER_PROVIDED_ONLY",
    "PARTNER_PROVIDED_ONLY",
    "BOTH_USER_AND_PARTNER_PROVIDED",
)
_CORE_ID = re.compile(r"seg-[0-9]{6,}")
_VERSION = re.compile(r"v[0-9]{1,3}\.[0-9]{1,3}")

THROTTLE_CODE = 80003
"""Custom audience calls over the limit (Meta also uses 17 and 613 elsewhere)."""


def meta_id(core_id: str) -> str:
    """The Meta id of a core segment (``seg-000007`` -> ``23850000000000007``)."""
    number = decimal(core_id[4:]) if core_id.startswith("seg-") else None
    return f"{ID_PREFIX}{number:013d}" if number is not None else core_id


def core_id(meta: str) -> str:
    """The core id a Meta id names; ``meta:<id>`` (found nowhere) for any other text."""
    if len(meta) == len(ID_PREFIX) + 13 and meta.startswith(ID_PREFIX):
        number = decimal(meta[len(ID_PREFIX) :])
        if number is not None and number > 0:
            return f"seg-{number:06d}"
    return f"meta:{meta[:64]}"


def fbtrace_id(request_id: str) -> str:
    return "A" + hashlib.sha256(f"fbtrace:{request_id}".encode()).hexdigest()[:22]


class _Params(dict[str, Any]):
    """The request's parameters: query, then the form or JSON body over it."""


def _params(request: PartnerRequest) -> _Params:
    params = _Params(request.query.multi_items())
    body = request.body
    if body.strip() and "json" in request.content_type:
        data = json_value(body)
        if not isinstance(data, dict):
            raise UnreadableRequestError(400, "request body", "a JSON body must be an object")
        params.update(data)
    elif body.strip():
        check_form_utf8(request)
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for key in ("payload", "session"):
        if isinstance(params.get(key), str) and params[key].strip():
            params[key] = json_value(params[key].encode("utf-8"))
    return params


def _bad(message: str) -> FaceError:
    """Meta's code 100 (invalid parameter); the core's ``INVALID_REQUEST``."""
    return FaceError(400, ErrorCode.INVALID_REQUEST, f"(#100) {message}", "100")


def _string(params: Mapping[str, Any], key: str, required: bool = False) -> str | None:
    value = params.get(key)
    if value is None:
        if required:
            raise _bad(f"The parameter {key} is required")
        return None
    if not isinstance(value, str):
        raise _bad(f"Param {key} must be a string")
    return value


def _operation_status(status: str, segment: Segment) -> dict[str, Any]:
    if status == "PROVISIONING":
        return {"code": 0, "description": "Status not available."}
    if status == "FAILED":
        return {"code": 400, "description": "Error: this audience could not be updated."}
    if status == "BUILDING" and not segment.members and segment.processing_due is None:
        return {"code": 410, "description": "No upload: no file has been uploaded."}
    if status in ("BUILDING", "UPDATING"):
        return {"code": 200, "description": "Normal: the audience is being updated."}
    return {"code": 200, "description": "Normal: there is no updating or issues found."}


def _counts(core: Mapping[str, Any]) -> dict[str, Any]:
    """Meta's approximate size bounds (-1 until there is one to show); no match rate."""
    size = core.get("audience_size")
    shown = size if size is not None else -1
    return {"approximate_count_lower_bound": shown, "approximate_count_upper_bound": shown}


def _audience_json(ctx: Context, segment: Segment, fields: list[str]) -> dict[str, Any]:
    core = ctx.state.segment_json(segment)
    every: dict[str, Any] = {
        "id": meta_id(segment.id),
        "account_id": segment.account_id,
        "name": segment.name,
        "description": segment.description or "",
        "subtype": "CUSTOM",
        **_counts(core),
        "operation_status": _operation_status(core["status"], segment),
        "delivery_status": (
            {"code": 200, "description": "This audience is ready for use."}
            if core["targetable"]
            else {"code": 400, "description": "This audience is unavailable."}
            if core["status"] == "FAILED"
            else {"code": 300, "description": "This audience is too small to use."}
        ),
        "time_created": int(segment.created_at),
        "time_updated": int(segment.updated_at),
    }
    return {field: every[field] for field in ["id", *fields] if field in every}


def _fields(params: Mapping[str, Any]) -> list[str]:
    raw = _string(params, "fields") or ""
    fields = [field.strip() for field in raw.split(",") if field.strip()]
    for field in fields:
        if field not in FIELDS:
            raise _bad(
                f"Tried accessing nonexisting field ({field[:40]}) on node type (CustomAudience)"
            )
    return [field for field in fields if field != "id"]


def _admitted(ctx: Context) -> AccessToken:
    token = ctx.authenticate()
    ctx.state.admit(token)
    return token


# --- handlers -----------------------------------------------------------------------------------


def _token(ctx: Context) -> httpx.Response:
    """``/oauth/access_token``: a consent's code for a long-lived token, no refresh token."""
    params: _Params = ctx.parsed
    form = {k: v for k, v in params.items() if isinstance(v, str)}
    if "grant_type" not in form and "code" in form:
        form["grant_type"] = "authorization_code"
    call = ctx.call
    call.grant_type = form.get("grant_type") or None
    call.client_id = form.get("client_id")
    if form.get("grant_type") != "authorization_code":
        raise OAuthError(
            400,
            "unsupported_grant_type",
            "Meta tokens are long-lived and have no refresh grant: exchange a consent's code "
            "(code, client_id, client_secret, redirect_uri)",
        )
    body, _ = ctx.state.token_grant(form)
    call.applied = True
    return json_response(
        200,
        {
            "access_token": body["access_token"],
            "token_type": "bearer",
            "expires_in": body["expires_in"],
        },
        call.request_id,
    )


def _create(ctx: Context) -> httpx.Response:
    token = _admitted(ctx)
    params: _Params = ctx.parsed
    name = _string(params, "name", required=True) or ""
    subtype = _string(params, "subtype") or "CUSTOM"
    if subtype != "CUSTOM":
        raise _bad(f"subtype {subtype[:40]!r} is not supported here; use CUSTOM")
    source = _string(params, "customer_file_source", required=True)
    if source not in CUSTOMER_FILE_SOURCES:
        raise _bad(f"customer_file_source must be one of: {', '.join(CUSTOMER_FILE_SOURCES)}")
    description = _string(params, "description")
    segment = ctx.state.create_segment(
        token, ctx.call.account_id or "", name, description, unique_name=False
    )
    ctx.call.created = segment
    ctx.call.segment_id = segment.id
    ctx.call.applied = True
    return json_response(200, {"id": meta_id(segment.id)}, ctx.call.request_id)


def _list(ctx: Context) -> httpx.Response:
    token = _admitted(ctx)
    params: _Params = ctx.parsed
    fields = _fields(params)
    maximum = ctx.state.scenario.limits.max_page_size
    limit = min(DEFAULT_PAGE_LIMIT, maximum)
    raw_limit = _string(params, "limit")
    if raw_limit is not None:
        given = decimal(raw_limit)
        if given is None or not 1 <= given <= maximum:
            raise _bad(f"limit must be an integer from 1 to {maximum}")
        limit = given
    after = _string(params, "after") or ""
    offset = decimal(after[1:]) if after.startswith("o") else 0 if not after else None
    if offset is None:
        raise _bad("after is not a cursor this API gave; pass paging.cursors.after unchanged")
    page, following = ctx.state.list_segments(token, ctx.call.account_id or "", None, offset, limit)
    paging: dict[str, Any] = {
        "cursors": {"before": f"o{offset}", "after": f"o{offset + len(page)}"}
    }
    if following is not None:
        paging["next"] = f"{ctx.request.path}?limit={limit}&after=o{following}"
    return json_response(
        200,
        {"data": [_audience_json(ctx, segment, fields) for segment in page], "paging": paging},
        ctx.call.request_id,
    )


def _get(ctx: Context) -> httpx.Response:
    token = _admitted(ctx)
    fields = _fields(ctx.parsed)
    segment = ctx.state.find_segment(token, ctx.call.segment_id or "", need_ready=False)
    return json_response(200, _audience_json(ctx, segment, fields), ctx.call.request_id)


def _adaccounts(ctx: Context) -> httpx.Response:
    """``GET /me/adaccounts``: the ad accounts the token reaches (``act_<id>``, its bare
    ``account_id`` and name), in one page."""
    token = _admitted(ctx)
    accounts = [
        {"id": f"act_{a['id']}", "account_id": a["id"], "name": a.get("name") or a["id"]}
        for a in ctx.state.visible_accounts(token)
    ]
    cursors = {"before": "o0", "after": f"o{len(accounts)}"}
    body = {"data": accounts, "paging": {"cursors": cursors}}
    return json_response(200, body, ctx.call.request_id)


def _delete(ctx: Context) -> httpx.Response:
    token = _admitted(ctx)
    ctx.state.delete_segment(token, ctx.call.segment_id or "")
    ctx.call.applied = True
    return json_response(200, {"success": True}, ctx.call.request_id)


def _users(ctx: Context) -> httpx.Response:
    token = _admitted(ctx)
    call = ctx.call
    ctx.state.find_segment(token, call.segment_id or "", need_ready=True)
    if call.upload_problem is not None:
        raise call.upload_problem
    session = _session(ctx.parsed.get("session"), call.sequence)
    outcome = upload_operations(ctx, token, True)
    samples = {
        str(error["index"]): f"{error['code']}: {error['message']}"
        for error in outcome.errors[:MAX_SAMPLES]
    }
    return json_response(
        200,
        {
            "audience_id": meta_id(call.segment_id or ""),
            "session_id": session,
            "num_received": outcome.received,
            "num_invalid_entries": outcome.rejected,
            "invalid_entry_samples": samples,
        },
        call.request_id,
    )


def _session(value: Any, sequence: int) -> int:
    if value is None or value == "":
        return sequence
    if not isinstance(value, dict):
        raise _bad("session must be a JSON object: {session_id, batch_seq, last_batch_flag}")
    session_id = value.get("session_id")
    if not isinstance(session_id, int) or isinstance(session_id, bool) or session_id < 0:
        raise _bad("session.session_id must be a non-negative integer")
    for key, kind in (("batch_seq", int), ("estimated_num_total", int), ("last_batch_flag", bool)):
        if key in value and (
            not isinstance(value[key], kind) or (kind is int and isinstance(value[key], bool))
        ):
            raise _bad(f"session.{key} must be {'a boolean' if kind is bool else 'an integer'}")
    unknown = set(value) - {"session_id", "batch_seq", "last_batch_flag", "estimated_num_total"}
    if unknown:
        raise _bad(f"session has unknown keys: {', '.join(sorted(unknown))[:100]}")
    return session_id


def _rows(payload: Any, action: str) -> tuple[list[OperationInput], PartnerError | None]:
    """The payload's rows as core operations, and the problem that refuses it whole."""
    if not isinstance(payload, dict):
        return [], _bad('The parameter payload is required: {"schema": [...], "data": [[...]]}')
    schema = payload.get("schema")
    data = payload.get("data")
    keys = [schema] if isinstance(schema, str) else schema
    problem: PartnerError | None = None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        problem = _bad("payload.schema must be a key or a non-empty list of keys (EMAIL_SHA256...)")
        keys = []
    unknown = set(payload) - {"schema", "data", "is_raw", "app_ids", "page_ids"}
    if unknown:
        problem = problem or _bad(f"payload has unknown keys: {', '.join(sorted(unknown))[:100]}")
    if not isinstance(data, list):
        return [], problem or _bad("payload.data must be a list of rows")
    types = [SCHEMA_TYPES.get(key, key) for key in keys]
    operations: list[OperationInput] = []
    for index, row in enumerate(data):
        cells = [row] if isinstance(row, str) and len(types) == 1 else row
        if not isinstance(cells, list) or not all(isinstance(cell, str) for cell in cells):
            problem = problem or _bad(f"payload.data[{index}] must be a list of strings")
            continue
        if types and len(cells) != len(types):
            problem = problem or _bad(
                f"payload.data[{index}] has {len(cells)} values; the schema has {len(types)}"
            )
        members: tuple[Member, ...] = tuple(
            (kind, cell) for kind, cell in zip(types, cells, strict=False) if cell != ""
        )
        operations.append((action, members))
    return operations, problem


_ROUTES: Mapping[tuple[str, str], tuple[str, str | None]] = {
    ("GET", "oauth/access_token"): ("token", TOKEN_ROUTE),
    ("POST", "oauth/access_token"): ("token", TOKEN_ROUTE),
    ("GET", "dialog/oauth"): ("authorize", AUTHORIZE_ROUTE),
    ("GET", "me/adaccounts"): ("adaccounts", ACCOUNTS_ROUTE),
    ("POST", "act/customaudiences"): ("create", CREATE_ROUTE),
    ("GET", "act/customaudiences"): ("list", LIST_ROUTE),
    ("GET", "node"): ("get", GET_ROUTE),
    ("DELETE", "node"): ("delete", DELETE_ROUTE),
    ("POST", "node/users"): ("add_users", UPLOAD_ROUTE),
    ("DELETE", "node/users"): ("remove_users", UPLOAD_ROUTE),
}
_TEMPLATES = {
    "oauth/access_token": "/oauth/access_token",
    "dialog/oauth": "/dialog/oauth",
    "me/adaccounts": "/me/adaccounts",
    "act/customaudiences": "/act_{ad_account_id}/customaudiences",
    "node": "/{id}",
    "node/users": "/{id}/users",
}


def _shape(parts: list[str]) -> tuple[str, dict[str, str]] | None:
    if parts in (["oauth", "access_token"], ["dialog", "oauth"], ["me", "adaccounts"]):
        return "/".join(parts), {}
    if len(parts) == 2 and parts[0].startswith("act_") and parts[1] == "customaudiences":
        return "act/customaudiences", {"account_id": parts[0][4:]}
    if len(parts) == 1 and parts[0] and not parts[0].startswith("act_"):
        return "node", {"id": parts[0]}
    if len(parts) == 2 and parts[0] and parts[1] == "users":
        return "node/users", {"id": parts[0]}
    return None


class MetaFace(Face):
    """Meta Marketing API: Custom Audiences and their users (``docs/partner-dialects.md``)."""

    name = "meta"
    api_version = DEFAULT_VERSION
    base_path = f"/{DEFAULT_VERSION}"
    defaults: Mapping[str, Any] = {
        "access_token_lifetime": 60 * 86400,
        "provisioning_delay": 0,
        "limits": {"max_operations": 10_000},
    }
    handlers: Mapping[str, Handler] = {
        "authorize": authorize,
        "token": _token,
        "create": _create,
        "list": _list,
        "get": _get,
        "adaccounts": _adaccounts,
        "delete": _delete,
        "add_users": _users,
        "remove_users": _users,
    }

    def match(self, request: PartnerRequest) -> FaceRoute:
        parts = request.path.strip("/").split("/")
        version = parts[0]
        if not _VERSION.fullmatch(version):
            raise FaceError(
                400,
                ErrorCode.ROUTE_NOT_FOUND,
                f"Unknown path components: {request.path[:200]}; Graph paths start with a "
                f"version, e.g. /{DEFAULT_VERSION}/",
                "2500",
            )
        if version not in VERSIONS:
            raise FaceError(
                400,
                ErrorCode.INVALID_REQUEST,
                f"(#2635) You are calling a deprecated version of the Ads API. Please update "
                f"to the latest version: {DEFAULT_VERSION}.",
                "2635",
            )
        shape = _shape(parts[1:])
        if shape is None:
            raise FaceError(
                400,
                ErrorCode.ROUTE_NOT_FOUND,
                f"Unknown path components: /{'/'.join(parts[1:])[:200]}",
                "2500",
            )
        kind, params = shape
        found = _ROUTES.get((request.method, kind))
        if found is None:
            raise FaceError(
                400,
                ErrorCode.METHOD_NOT_ALLOWED,
                f"(#100) Unsupported {request.method.lower()} request on this node",
                "100",
            )
        handler, core = found
        key = f"{request.method} /v{{version}}{_TEMPLATES[kind]}"
        return FaceRoute(key, handler, {"version": version, **params}, core)

    def readable(self, route: FaceRoute, request: PartnerRequest, max_body: int) -> Any:
        if len(request.body) > 4 * max_body:
            return _Params()
        return _params(request)

    def presented_token(self, request: PartnerRequest) -> str | None:
        if request.bearer:
            return request.bearer
        token = request.query.get("access_token")
        if token:
            return str(token)
        if request.body.strip() and "json" not in request.content_type:
            try:
                form = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                return None
            return form.get("access_token") or None
        if request.body.strip() and "json" in request.content_type:
            try:
                data = json_value(request.body)
            except UnreadableRequestError:
                return None
            value = data.get("access_token") if isinstance(data, dict) else None
            return value if isinstance(value, str) and value else None
        return None

    def identify(self, ctx: Context) -> None:
        call, params = ctx.call, ctx.route.params
        if "account_id" in params:
            call.account_id = params["account_id"]
        if "id" in params:
            call.segment_id = core_id(params["id"])
            segment = ctx.state.segments.get(call.segment_id)
            call.account_id = segment.account_id if segment is not None else None
        if ctx.route.core == UPLOAD_ROUTE:
            call.partial_failure = True
            parsed = ctx.parsed if isinstance(ctx.parsed, dict) else {}
            action = "ADD" if ctx.route.handler == "add_users" else "REMOVE"
            call.operations, call.upload_problem = _rows(parsed.get("payload"), action)
            limit = ctx.state.scenario.limits.max_operations
            if call.upload_problem is None and len(call.operations) > limit:
                call.upload_problem = _bad(
                    f"payload.data has {len(call.operations)} rows; at most {limit} a request"
                )

    def core_path(self, ctx: Context) -> str:
        core, call = ctx.route.core, ctx.call
        if core in (UPLOAD_ROUTE, GET_ROUTE, DELETE_ROUTE):
            suffix = "/members" if core == UPLOAD_ROUTE else ""
            return f"/v1/segments/{call.segment_id}{suffix}"
        if core in (CREATE_ROUTE, LIST_ROUTE):
            return f"/v1/accounts/{call.account_id or ''}/segments"
        if core == ACCOUNTS_ROUTE:
            return "/v1/accounts"
        return "/oauth/token" if core == TOKEN_ROUTE else "/oauth/authorize"

    def render_error(
        self, error: PartnerError, call: Call, extra_headers: Mapping[str, str] | None
    ) -> httpx.Response:
        status, body, headers = self._error(error, call)
        body["message"] = _CORE_ID.sub(lambda m: meta_id(m.group(0)), body["message"])
        call.dialect_code = str(body["code"])
        return json_response(status, {"error": body}, call.request_id, headers)

    def _error(self, error: PartnerError, call: Call) -> tuple[int, dict[str, Any], dict[str, str]]:
        trace = fbtrace_id(call.request_id)
        headers: dict[str, str] = {"x-fb-trace-id": trace}
        body: dict[str, Any] = {"message": error.message, "type": "OAuthException"}
        status = 400
        code = error.code
        if isinstance(error, FaceError):
            body["code"] = int(error.dialect_code)
            body.update(error.extra)
        elif code == ErrorCode.INVALID_ACCESS_TOKEN:
            if call.token is None:
                body.update(
                    code=104, message="An access token is required to request this resource."
                )
            else:
                body.update(
                    code=190,
                    error_subcode=467,
                    message="Error validating access token: the token is invalid.",
                )
        elif code == ErrorCode.EXPIRED_ACCESS_TOKEN:
            body.update(
                code=190,
                error_subcode=463,
                message="Error validating access token: Session has expired. Re-authenticate "
                "to get a new long-lived token.",
            )
        elif code == ErrorCode.REVOKED_ACCESS_TOKEN:
            body.update(
                code=190,
                error_subcode=460,
                message="Error validating access token: the session has been invalidated. "
                "Re-authenticate to get a new token.",
            )
        elif code == ErrorCode.ACCOUNT_FORBIDDEN:
            status = 403
            body.update(code=200, message=f"(#200) Permissions error: {error.message}")
        elif code in (ErrorCode.RATE_LIMITED, ErrorCode.QUOTA_EXHAUSTED) or error.status == 429:
            wait = error.retry_after if error.retry_after is not None else 60.0
            minutes = max(1, math.ceil(wait / 60))
            call.retry_after = float(minutes * 60)
            body.update(
                code=THROTTLE_CODE,
                error_subcode=2446079,
                is_transient=True,
                message="(#80003) There have been too many calls to this ad-account. Wait a "
                "bit and try again.",
            )
            usage = {
                "type": "custom_audience",
                "call_count": 100,
                "total_cputime": 100,
                "total_time": 100,
                "estimated_time_to_regain_access": minutes,
            }
            headers["X-Business-Use-Case-Usage"] = json.dumps(
                {call.account_id or "0": [usage]}, separators=(",", ":")
            )
        elif error.status >= 500:
            status = error.status
            transient = 1 if error.status == 500 else 2
            body.update(
                code=transient,
                is_transient=True,
                message="An unknown error occurred"
                if transient == 1
                else "Service temporarily unavailable",
            )
        elif code == ErrorCode.SEGMENT_NOT_READY:
            body.update(
                code=2650,
                is_transient=True,
                message="(#2650) The custom audience is still being created; retry later.",
            )
        elif code == ErrorCode.SEGMENT_NOT_FOUND:
            body.update(
                code=100,
                error_subcode=33,
                type="GraphMethodException",
                message="Unsupported request: the object does not exist, cannot be loaded due "
                "to missing permissions, or does not support this operation.",
            )
        elif error.status == 413:
            status = 413
            body.update(code=100, message=f"(#100) {error.message}")
        else:
            body.update(
                code=100,
                message=error.message
                if error.message.startswith("(#")
                else f"(#100) {error.message}",
            )
        body["fbtrace_id"] = trace
        return status, body, headers

    def render_oauth_error(
        self, error: OAuthError, call: Call, extra_headers: Mapping[str, str] | None
    ) -> httpx.Response:
        trace = fbtrace_id(call.request_id)
        body: dict[str, Any] = {"message": error.description, "type": "OAuthException"}
        if error.error == "invalid_client":
            body["code"] = 101
            body["message"] = "Error validating application: " + error.description
        elif error.error == "invalid_grant":
            body.update(code=100, error_subcode=36007)
        elif error.status >= 500:
            body.update(code=2 if error.status == 503 else 1, is_transient=True)
        else:
            body["code"] = 100
        body["fbtrace_id"] = trace
        call.dialect_code = str(body["code"])
        status = error.status if error.status >= 500 else 400
        return json_response(status, {"error": body}, call.request_id, {"x-fb-trace-id": trace})

    def render_refusal(
        self, refusal: UnreadableRequestError, request_id: str, route: FaceRoute | None
    ) -> httpx.Response:
        trace = fbtrace_id(request_id)
        body = {
            "message": f"(#100) {refusal.message}",
            "type": "OAuthException",
            "code": 100,
            "fbtrace_id": trace,
        }
        status = refusal.status if refusal.status in (413, 414, 431) else 400
        return json_response(status, {"error": body}, request_id, {"x-fb-trace-id": trace})

    def signal_of(self, error: PartnerError | OAuthError) -> str:
        """An expired token is as dead as a revoked one here: Meta has no refresh grant,
        only a new login clears it (code 190 either way)."""
        signal = super().signal_of(error)
        return "revoked_token" if signal == "expired_token" else signal

    def counts_shown(self, segment: Mapping[str, Any]) -> dict[str, Any]:
        """The approximate size bounds, as a read shows them."""
        return _counts(segment)

    def external_segment_id(self, core: str) -> str:
        return meta_id(core)

    def core_segment_id(self, external: str) -> str:
        return core_id(external)

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "versions": list(VERSIONS),
            "oauth_authorize_path": f"/{DEFAULT_VERSION}/dialog/oauth",
            "oauth_token_path": f"/{DEFAULT_VERSION}/oauth/access_token",
            "refresh_grant": False,
        }
