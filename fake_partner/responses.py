"""The HTTP face (moto's ``responses.py``): parse a request, apply faults, call the state, answer.

One synchronous function, :func:`respond`, serves both the in-process (respx) and the
served (ASGI) modes; the caller holds the partner's lock. It never raises for bad
input: every problem becomes an error answer with the spec's body and an X-Request-Id.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, quote

import httpx
from pydantic import BaseModel, ValidationError

from fake_partner.errors import ClockError, ErrorCode, OAuthError, PartnerError, ScenarioError
from fake_partner.faults import (
    ApplyThenFailEffect,
    DropEffect,
    ErrorEffect,
    ExpireTokenEffect,
    ForceStatusEffect,
    HoldProvisioningEffect,
    LatencyEffect,
    RejectItemsEffect,
    RevokeRefreshTokenEffect,
    RevokeTokenEffect,
    default_code,
)
from fake_partner.identifiers import item_rejected
from fake_partner.inbound import (
    UnreadableRequestError,
    check_request,
    decimal,
    json_value,
    renderable,
)
from fake_partner.ledger import LedgerEntry, LedgerOperation
from fake_partner.models import (
    AccessToken,
    OperationInput,
    PartnerState,
    RejectRule,
    Segment,
    fingerprint,
)
from fake_partner.openapi import openapi_document
from fake_partner.presets import list_presets
from fake_partner.routes import ADMIN_ROUTES, PARTNER_ROUTES, Route, resolve
from fake_partner.scenario import parse_scenario
from fake_partner.wire import UPLOAD, ClockAdvanceIn, CreateSegmentIn, UploadIn, loose_identifiers

if TYPE_CHECKING:
    from fake_partner.partner import Partner

logger = logging.getLogger("fake_partner")

OPENAPI_PATH = "/openapi.json"
UPLOAD_ROUTE = "POST /v1/segments/{segment_id}/members"
CREATE_ROUTE = "POST /v1/accounts/{account_id}/segments"
TOKEN_ROUTE = "POST /oauth/token"
DEFAULT_PAGE_SIZE = 100
DROP_MESSAGE = "Server disconnected without sending a response."


@dataclass(frozen=True, slots=True)
class Dropped:
    """The partner closes the connection without an answer (``applied``: state changed first)."""

    request_id: str
    applied: bool


Answer = httpx.Response | Dropped


@dataclass
class _Call:
    """What the ledger will say about the request being handled."""

    sequence: int
    request_id: str
    time: float
    method: str
    path: str
    route: str | None = None
    token: str | None = None
    client_id: str | None = None
    account_id: str | None = None
    segment_id: str | None = None
    operations: list[OperationInput] = field(default_factory=list)
    codes: list[str | None] | None = None
    accepted: list[bool] | None = None
    applied: bool = False
    faults: list[str] = field(default_factory=list)
    grant_type: str | None = None
    partial_failure: bool | None = None
    upload: UploadIn | None = None
    upload_problem: PartnerError | None = None
    created: Segment | None = None


# --- answers ------------------------------------------------------------------------------------


def json_response(
    status: int, data: Any, request_id: str, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """A JSON answer carrying X-Request-Id."""
    all_headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
    all_headers.update(headers or {})
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return httpx.Response(status, content=body, headers=all_headers)


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


def _invalid_body(error: ValidationError, what: str) -> PartnerError:
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


def _parse(model: type[BaseModel], body: bytes, what: str) -> Any:
    if not body.strip():
        raise PartnerError(400, ErrorCode.INVALID_REQUEST, f"{what} is empty; send a JSON object")
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise _invalid_body(error, what) from None


def _too_large(size: int, limit: int) -> PartnerError:
    return PartnerError(
        413,
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"request body is {size} bytes; the limit is {limit} bytes: split the batch",
        [{"size": size, "limit": limit}],
    )


# --- the entry point ----------------------------------------------------------------------------


def respond(partner: Partner, request: httpx.Request) -> Answer:
    """Handle one request against the partner; the caller holds ``partner``'s lock.

    A request whose method, target, headers or JSON body cannot be read is refused first
    (:func:`refused`): it reaches no state, no fault rule and no ledger entry.
    """
    try:
        method = check_request(request.method, request.url.raw_path, request.headers.raw)
    except UnreadableRequestError as refusal:
        return refused(partner, refusal)
    path = request.url.path
    if path == "/_admin" or path.startswith("/_admin/"):
        return _admin(partner, request, method, path)
    if method == "GET" and path == OPENAPI_PATH:
        return json_response(200, openapi_document(), "req-openapi")
    state = partner.backend
    upload: UploadIn | None = None
    try:
        route, _ = resolve(PARTNER_ROUTES, method, path)
    except PartnerError:
        pass  # answered, and recorded, as the partner's 404 or 405 below
    else:
        try:
            upload = _readable_body(route, request, state.scenario.limits.max_body_bytes)
        except UnreadableRequestError as refusal:
            return refused(partner, refusal, oauth=route.key == TOKEN_ROUTE)
    call = _Call(
        sequence=partner.next_sequence(),
        request_id="",
        time=partner.clock.now(),
        method=method,
        path=path,
    )
    call.request_id = f"req-{call.sequence:06d}"
    answer: Answer
    try:
        answer = _partner_call(partner, state, request, call, upload)
    except Exception:  # a bug in the partner: answer 500 rather than hang the client
        logger.exception("fake_partner: unexpected error handling %s %s", method, path)
        answer = error_response(
            PartnerError(500, ErrorCode.INTERNAL_ERROR, "unexpected partner error (a bug)"),
            call.request_id,
        )
    partner.ledger.append(_entry(partner, call, answer))
    return answer


def refused(
    partner: Partner, refusal: UnreadableRequestError, *, oauth: bool = False
) -> httpx.Response:
    """The answer to a request that cannot be read: nothing recorded, nothing changed.

    Its request id (``rej-NNNNNN``) counts refusals apart from the ledger's sequence.
    """
    request_id = f"rej-{partner.next_refused_sequence():06d}"
    if oauth:
        return oauth_error_response(OAuthError(400, "invalid_request", refusal.message), request_id)
    code = _REFUSAL_CODES.get(refusal.status, ErrorCode.INVALID_REQUEST)
    error = PartnerError(refusal.status, code, refusal.message, [{"field": refusal.part}])
    return error_response(error, request_id)


_REFUSAL_CODES = {
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    414: ErrorCode.TARGET_TOO_LONG,
    431: ErrorCode.HEADERS_TOO_LARGE,
}


def _readable_body(route: Route, request: httpx.Request, max_body: int) -> UploadIn | None:
    """Refuse a body the route would read that is not strict JSON (or, for the token
    route, not a UTF-8 form); an upload body is parsed once, here, when valid."""
    body = request.content
    if route.key == UPLOAD_ROUTE:
        if len(body) > 4 * max_body or not body.strip():
            return None
        try:
            return UPLOAD.validate_json(body)
        except ValidationError:
            json_value(body)  # unreadable: refused; readable but invalid: answered later
            return None
    if route.key == TOKEN_ROUTE and "json" not in request.headers.get("content-type", "").lower():
        try:
            parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise UnreadableRequestError(
                400,
                "request body",
                "the form body or its %-escapes are not UTF-8: encode values as UTF-8",
            ) from None
        return None
    if route.method in ("POST", "PUT") and body.strip():
        json_value(body)
    return None


def _entry(partner: Partner, call: _Call, answer: Answer) -> LedgerEntry:
    codes = call.codes
    accepted = call.accepted
    operations = tuple(
        LedgerOperation(
            index,
            action,
            identifiers,
            accepted is not None and accepted[index],
            codes[index] if codes is not None else None,
        )
        for index, (action, identifiers) in enumerate(call.operations)
    )
    status: int | None = None
    error_code: str | None = None
    if isinstance(answer, httpx.Response):
        status = answer.status_code
        if status >= 400:
            error_code = _error_code(answer)
    return LedgerEntry(
        sequence=call.sequence,
        request_id=call.request_id,
        time=call.time,
        answered_at=partner.clock.now(),
        method=call.method,
        path=renderable(call.path),
        route=call.route,
        token=call.token,
        client_id=_renderable(call.client_id),
        account_id=_renderable(call.account_id),
        segment_id=_renderable(call.segment_id),
        status=status,
        error_code=_renderable(error_code),
        operations=operations,
        applied=call.applied,
        faults=tuple(call.faults),
        grant_type=_renderable(call.grant_type),
        partial_failure=call.partial_failure,
    )


def _renderable(text: str | None) -> str | None:
    """What the ledger stores of a request's strings: always encodable as UTF-8."""
    return None if text is None else renderable(text)


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        return code if isinstance(code, str) else None
    return error if isinstance(error, str) else None


def _partner_call(
    partner: Partner,
    state: PartnerState,
    request: httpx.Request,
    call: _Call,
    upload: UploadIn | None,
) -> Answer:
    raw = _bearer(request)
    if raw:
        call.token = fingerprint(raw)
        known = state.access_tokens.get(raw)
        call.client_id = known.client_id if known is not None else None
    try:
        route, params = resolve(PARTNER_ROUTES, call.method, call.path)
    except PartnerError as error:
        return error_response(error, call.request_id)
    call.route = route.key
    body = request.content
    _identify(state, route, params, call, body, upload)

    # Faults: decided on what the request says, before the partner looks at it.
    firings = partner.faults.fire(
        call.method, call.path, call.account_id, call.segment_id, partner.clock.now()
    )
    terminal: Answer | None = None
    fail_after: ApplyThenFailEffect | ErrorEffect | None = None
    drop_after = False
    reject_rules: list[RejectItemsEffect] = []
    created_effects: list[HoldProvisioningEffect | ForceStatusEffect] = []
    access = state.access_tokens.get(_bearer(request) or "")
    for firing in firings:
        effect = firing.rule.effect
        call.faults.append(effect.kind)
        if isinstance(effect, LatencyEffect):
            partner.clock.advance(effect.seconds)
        elif isinstance(effect, ExpireTokenEffect):
            if access is not None:
                access.expires_at = min(access.expires_at, partner.clock.now())
        elif isinstance(effect, RevokeTokenEffect):
            if access is not None:
                access.revoked = True
        elif isinstance(effect, RevokeRefreshTokenEffect):
            _revoke_refresh(state, request, body, access)
        elif isinstance(effect, HoldProvisioningEffect | ForceStatusEffect):
            segment = state.segments.get(call.segment_id or "")
            if segment is not None:
                _apply_segment_effect(segment, effect)
            elif route.key == CREATE_ROUTE:
                created_effects.append(effect)
        elif isinstance(effect, RejectItemsEffect):
            reject_rules.append(effect)
        elif isinstance(effect, ErrorEffect):
            if terminal is None:
                terminal = _fault_error(partner, effect, call, route)
        elif isinstance(effect, DropEffect):
            if effect.after_apply:
                drop_after = True
            elif terminal is None:
                terminal = Dropped(call.request_id, applied=False)
        elif fail_after is None:
            fail_after = effect
    if terminal is not None:
        return terminal

    handler = _HANDLERS[route.handler]
    reject = _reject_rule(reject_rules, partner.effective_scenario.seed)
    try:
        if len(body) > partner.effective_scenario.limits.max_body_bytes:
            raise _too_large(len(body), partner.effective_scenario.limits.max_body_bytes)
        response = handler(partner, state, request, params, call, reject)
    except PartnerError as error:
        response = error_response(error, call.request_id)
    except OAuthError as error:
        response = oauth_error_response(error, call.request_id)
    if call.created is not None:
        for created_effect in created_effects:
            _apply_segment_effect(call.created, created_effect)
    if drop_after:
        return Dropped(call.request_id, applied=call.applied)
    if fail_after is not None:
        return _fault_error(partner, fail_after, call, route)
    return response


def _identify(
    state: PartnerState,
    route: Route,
    params: Mapping[str, str],
    call: _Call,
    body: bytes,
    upload: UploadIn | None,
) -> None:
    """Fill the ledger's who and what before anything can fail."""
    call.account_id = params.get("account_id")
    call.segment_id = params.get("segment_id")
    if call.segment_id is not None:
        segment = state.segments.get(call.segment_id)
        call.account_id = segment.account_id if segment is not None else None
    if route.key == UPLOAD_ROUTE:
        _read_upload(state, body, call, upload)


def _read_upload(state: PartnerState, body: bytes, call: _Call, upload: UploadIn | None) -> None:
    """The upload parsed once: the model for the handler, the identifiers for the ledger.

    ``upload`` is the body already validated by :func:`_readable_body`, or None when it is
    empty, too large, or strict JSON that does not validate (re-read here for its errors).
    """
    limit = state.scenario.limits.max_body_bytes
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
            call.upload_problem = _invalid_body(error, "request body")
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


def _bearer(request: httpx.Request) -> str | None:
    scheme, _, raw = request.headers.get("authorization", "").partition(" ")
    return raw.strip() or None if scheme.lower() == "bearer" else None


def _apply_segment_effect(
    segment: Segment, effect: HoldProvisioningEffect | ForceStatusEffect
) -> None:
    if isinstance(effect, HoldProvisioningEffect):
        segment.hold_calls = effect.calls
    else:
        segment.forced_status = effect.status


def _revoke_refresh(
    state: PartnerState, request: httpx.Request, body: bytes, access: AccessToken | None
) -> None:
    if request.url.path == "/oauth/token":
        presented = _form(request, body).get("refresh_token", "")
        record = state.refresh_tokens.get(presented)
        if record is not None:
            record.revoked = True
    elif access is not None and access.refresh is not None:
        access.refresh.revoked = True


def _reject_rule(rules: list[RejectItemsEffect], seed: int) -> RejectRule | None:
    if not rules:
        return None

    def reject(operation: OperationInput) -> str | None:
        identifiers = operation[1]
        value = identifiers[0][1] if identifiers else ""
        for rule in rules:
            if item_rejected(value, rule.fraction, seed):
                return rule.code
        return None

    return reject


def _fault_error(
    partner: Partner, effect: ErrorEffect | ApplyThenFailEffect, call: _Call, route: Route
) -> httpx.Response:
    code = effect.code or default_code(effect.status)
    headers: dict[str, str] = {}
    if effect.retry_after is not None:
        headers["Retry-After"] = _number(effect.retry_after)
    if isinstance(effect, ErrorEffect) and effect.rate_limit_headers:
        limit = partner.effective_scenario.rate_limit_per_minute
        reset = int(effect.retry_after) if effect.retry_after is not None else 60
        headers.update(PartnerState.rate_headers(limit, 0, max(1, reset)))
    if route.key == TOKEN_ROUTE:
        oauth = effect.oauth_error if isinstance(effect, ErrorEffect) else None
        error = OAuthError(
            effect.status,
            oauth or ("server_error" if effect.status >= 500 else "invalid_request"),
            "the partner failed this request (scenario fault)",
        )
        response = oauth_error_response(error, call.request_id)
        response.headers.update(headers)
        return response
    message = (
        effect.message
        if isinstance(effect, ErrorEffect) and effect.message
        else f"the partner answered {effect.status} {code} (scenario fault)"
    )
    return error_response(PartnerError(effect.status, code, message), call.request_id, headers)


def _number(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


# --- OAuth --------------------------------------------------------------------------------------


def _form(request: httpx.Request, body: bytes) -> dict[str, str]:
    """``/oauth/token`` parameters, form-encoded or JSON (by Content-Type)."""
    if "json" in request.headers.get("content-type", "").lower():
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


def _basic(request: httpx.Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, ValueError):  # ValueError: not base64's ASCII, or not UTF-8
        raise OAuthError(401, "invalid_client", "malformed Basic authorization header") from None
    return client_id, secret


Handler = Callable[
    ["Partner", PartnerState, httpx.Request, Mapping[str, str], _Call, "RejectRule | None"],
    httpx.Response,
]


def _token(
    partner: Partner,
    state: PartnerState,
    request: httpx.Request,
    params: Mapping[str, str],
    call: _Call,
    reject: RejectRule | None,
) -> httpx.Response:
    form = _form(request, request.content)
    call.grant_type = form.get("grant_type") or None
    basic = _basic(request)
    call.client_id = basic[0] if basic else form.get("client_id")
    if form.get("refresh_token"):
        call.token = fingerprint(form["refresh_token"])
    body, _ = state.token_grant(form, basic)
    call.applied = True
    return json_response(
        200, body, call.request_id, {"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


def _authorize(
    partner: Partner,
    state: PartnerState,
    request: httpx.Request,
    params: Mapping[str, str],
    call: _Call,
    reject: RejectRule | None,
) -> httpx.Response:
    query = {key: value for key, value in request.url.params.multi_items()}
    call.client_id = query.get("client_id")
    location = quote(state.authorize(query), safe=_URL_SAFE)  # a header is ASCII
    call.applied = "code=" in location
    return httpx.Response(302, headers={"Location": location, "X-Request-Id": call.request_id})


_URL_SAFE = "!#$%&'()*+,-./:;=?@[]_~"
"""What stays as is when a redirect URL is made ASCII (non-ASCII is %-encoded as UTF-8)."""


# --- /v1 ----------------------------------------------------------------------------------------


def _admitted(
    state: PartnerState, request: httpx.Request, call: _Call
) -> tuple[AccessToken, dict[str, str]]:
    token = state.authenticate(request.headers.get("authorization"))
    call.client_id = token.client_id
    return token, state.admit(token)


def _page_params(state: PartnerState, request: httpx.Request) -> tuple[int, int]:
    """``cursor`` (opaque, from a previous page) and ``limit`` (1..max_page_size)."""
    maximum = state.scenario.limits.max_page_size
    raw_limit = request.url.params.get("limit")
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
    cursor = request.url.params.get("cursor") or ""
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


def _v1(
    action: Callable[[AccessToken], httpx.Response],
    state: PartnerState,
    request: httpx.Request,
    call: _Call,
) -> httpx.Response:
    """Authenticate and admit a ``/v1`` request, run ``action``, add the rate headers."""
    token, headers = _admitted(state, request, call)
    try:
        response = action(token)
    except PartnerError as error:
        return error_response(error, call.request_id, headers)
    response.headers.update(headers)
    return response


def _list_accounts(
    partner: Partner,
    state: PartnerState,
    request: httpx.Request,
    params: Mapping[str, str],
    call: _Call,
    reject: RejectRule | None,
) -> httpx.Response:
    def action(token: AccessToken) -> httpx.Response:
        return json_response(200, {"accounts": state.visible_accounts(token)}, call.request_id)

    return _v1(action, state, request, call)


def _create_segment(
    partner: Partner,
    state: PartnerState,
    request: httpx.Request,
    params: Mapping[str, str],
    call: _Call,
    reject: RejectRule | None,
) -> httpx.Response:
    def action(token: AccessToken) -> httpx.Response:
        state.require_account(token, params["account_id"])
        body: CreateSegmentIn = _parse(CreateSegmentIn, request.content, "request body")
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

    return _v1(action, state, request, call)


def _list_segments(
    partner: Partner,
    state: PartnerState,
    request: httpx.Request,
    params: Mapping[str, str],
    call: _Call,
    reject: RejectRule | None,
) -> httpx.Response:
    def action(token: AccessToken) -> httpx.Response:
        state.require_account(token, params["account_id"])
        offset, limit = _page_params(state, request)
        name = request.url.params.get("name")
        page, following = state.list_segments(token, params["account_id"], name, offset, limit)
        return json_response(
            200,
            {
                "segments": [state.segment_json(segment) for segment in page],
                "next_cursor": _cursor(following),
            },
            call.request_id,
        )

    return _v1(action, state, request, call)


def _get_segment(
    partner: Partner,
    state: PartnerState,
    request: httpx.Request,
    params: Mapping[str, str],
    call: _Call,
    reject: RejectRule | None,
) -> httpx.Response:
    def action(token: AccessToken) -> httpx.Response:
        segment = state.find_segment(token, params["segment_id"], need_ready=True)
        return json_response(200, state.segment_json(segment), call.request_id)

    return _v1(action, state, request, call)


def _delete_segment(
    partner: Partner,
    state: PartnerState,
    request: httpx.Request,
    params: Mapping[str, str],
    call: _Call,
    reject: RejectRule | None,
) -> httpx.Response:
    def action(token: AccessToken) -> httpx.Response:
        state.delete_segment(token, params["segment_id"])
        call.applied = True
        return httpx.Response(204, headers={"X-Request-Id": call.request_id})

    return _v1(action, state, request, call)


def _upload(
    partner: Partner,
    state: PartnerState,
    request: httpx.Request,
    params: Mapping[str, str],
    call: _Call,
    reject: RejectRule | None,
) -> httpx.Response:
    def action(token: AccessToken) -> httpx.Response:
        state.find_segment(token, params["segment_id"], need_ready=True)
        if call.upload_problem is not None:
            raise call.upload_problem
        upload = call.upload
        if upload is None:  # too large to parse; the size check answers 413 before this
            raise _too_large(len(request.content), state.scenario.limits.max_body_bytes)
        try:
            outcome = state.upload(
                token,
                params["segment_id"],
                call.operations,
                upload.get("partial_failure", True),
                reject,
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

    return _v1(action, state, request, call)


def _list_members(
    partner: Partner,
    state: PartnerState,
    request: httpx.Request,
    params: Mapping[str, str],
    call: _Call,
    reject: RejectRule | None,
) -> httpx.Response:
    def action(token: AccessToken) -> httpx.Response:
        offset, limit = _page_params(state, request)
        page, following = state.members_page(token, params["segment_id"], offset, limit)
        return json_response(
            200,
            {
                "members": [{"type": type_, "value": value} for type_, value in page],
                "next_cursor": _cursor(following),
            },
            call.request_id,
        )

    return _v1(action, state, request, call)


_HANDLERS: dict[str, Handler] = {
    "token": _token,
    "authorize": _authorize,
    "list_accounts": _list_accounts,
    "create_segment": _create_segment,
    "list_segments": _list_segments,
    "get_segment": _get_segment,
    "delete_segment": _delete_segment,
    "upload": _upload,
    "list_members": _list_members,
}


# --- /_admin ------------------------------------------------------------------------------------


def _admin(partner: Partner, request: httpx.Request, method: str, path: str) -> httpx.Response:
    """The control API: refused 401 without the admin token; not in the ledger, no faults."""
    request_id = f"admin-{partner.next_admin_sequence():06d}"
    try:
        _check_admin(partner, request)
        route, _ = resolve(ADMIN_ROUTES, method, path)
        body = request.content
        if len(body) > partner.effective_scenario.limits.max_body_bytes:
            raise _too_large(len(body), partner.effective_scenario.limits.max_body_bytes)
        return _admin_action(partner, request, route, request_id)
    except PartnerError as error:
        return error_response(error, request_id)


def _check_admin(partner: Partner, request: httpx.Request) -> None:
    presented = request.headers.get("x-admin-token")
    if presented is None:
        scheme, _, raw = request.headers.get("authorization", "").partition(" ")
        presented = raw.strip() if scheme.lower() == "bearer" else ""
    if not hmac.compare_digest(presented.encode(), partner.admin_token.encode()):
        raise PartnerError(
            401,
            ErrorCode.ADMIN_TOKEN_REQUIRED,
            "the admin API needs 'Authorization: Bearer <admin token>' or 'X-Admin-Token' "
            "with the token the partner was started with",
        )


def _flag(request: httpx.Request, name: str, default: bool) -> bool:
    raw = request.url.params.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise PartnerError(400, ErrorCode.INVALID_REQUEST, f"{name}={raw[:20]!r} must be true or false")


def _admin_action(
    partner: Partner, request: httpx.Request, route: Route, request_id: str
) -> httpx.Response:
    clock = partner.clock
    if route.handler == "reset":
        partner.reset()
        return json_response(200, {"reset": True, "now": clock.isoformat()}, request_id)
    if route.handler == "clock":
        return json_response(200, {"now": clock.isoformat(), "epoch": clock.now()}, request_id)
    if route.handler == "advance":
        advance: ClockAdvanceIn = _parse(ClockAdvanceIn, request.content, "request body")
        try:
            clock.advance(float(advance.seconds))
        except ClockError as error:
            raise PartnerError(
                400, ErrorCode.INVALID_REQUEST, str(error), [{"field": "seconds"}]
            ) from None
        return json_response(200, {"now": clock.isoformat(), "epoch": clock.now()}, request_id)
    if route.handler == "state":
        members = _flag(request, "members", False)
        return json_response(200, partner.state(include_members=members), request_id)
    if route.handler == "ledger":
        raw_since = request.url.params.get("since", "0")
        since = decimal(raw_since)
        if since is None:
            raise PartnerError(
                400,
                ErrorCode.INVALID_REQUEST,
                f"since={raw_since[:20]!r} must be a non-negative integer (a ledger sequence)",
            )
        operations = _flag(request, "operations", True)
        entries = partner.ledger.to_json(since, operations)
        return json_response(200, {"entries": entries}, request_id)
    if route.handler == "get_scenario":
        return json_response(200, partner.scenario.model_dump(mode="json"), request_id)
    if route.handler == "put_scenario":
        reset = _flag(request, "reset", False)
        kind: Literal["toml", "json"] = (
            "toml" if "toml" in request.headers.get("content-type", "") else "json"
        )
        try:
            scenario = parse_scenario(request.content, kind)
        except ScenarioError as error:
            raise PartnerError(
                400,
                ErrorCode.INVALID_REQUEST,
                "scenario is invalid: " + "; ".join(error.lines),
                [{"problem": line} for line in error.lines],
            ) from None
        partner.set_scenario(scenario, reset=reset)
        return json_response(200, partner.scenario.model_dump(mode="json"), request_id)
    return json_response(200, {"presets": list_presets()}, request_id)
