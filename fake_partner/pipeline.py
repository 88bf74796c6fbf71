"""The way through for every face: refuse the unreadable, route, fire fault rules, call the
face's handler, record the ledger entry. Fault effects and the ledger live here, once.

One synchronous function, :func:`respond`, serves both the in-process (respx) and the
served (ASGI) modes; the caller holds the partner's lock. It never raises for bad
input: every problem becomes an error answer in the face's own shape.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from fake_partner.admin import admin
from fake_partner.errors import ErrorCode, OAuthError, PartnerError
from fake_partner.faces.base import (
    CREATE_ROUTE,
    TOKEN_ROUTE,
    Call,
    Context,
    Face,
    FaceRoute,
    PartnerRequest,
    fault_error,
    json_response,
    render_error,
    render_oauth_error,
    too_large,
)
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
)
from fake_partner.identifiers import item_rejected
from fake_partner.inbound import UnreadableRequestError, check_request, renderable
from fake_partner.ledger import LedgerEntry, LedgerOperation
from fake_partner.models import (
    AccessToken,
    OperationInput,
    PartnerState,
    RejectRule,
    Segment,
    fingerprint,
)

if TYPE_CHECKING:
    from fake_partner.partner import Partner

logger = logging.getLogger("fake_partner")

OPENAPI_PATH = "/openapi.json"
DROP_MESSAGE = "Server disconnected without sending a response."


@dataclass(frozen=True, slots=True)
class Dropped:
    """The partner closes the connection without an answer (``applied``: state changed first)."""

    request_id: str
    applied: bool


Answer = httpx.Response | Dropped


def respond(partner: Partner, request: httpx.Request) -> Answer:
    """Handle one request against the partner; the caller holds ``partner``'s lock.

    A request whose method, target, headers or body cannot be read is refused first
    (:func:`refused`): it reaches no state, no fault rule and no ledger entry.
    """
    face = partner.face
    try:
        method = check_request(request.method, request.url.raw_path, request.headers.raw)
    except UnreadableRequestError as refusal:
        return refused(partner, refusal)
    path = request.url.path
    if path == "/_admin" or path.startswith("/_admin/"):
        return admin(partner, request, method, path)
    if method == "GET" and path == OPENAPI_PATH:
        document = face.openapi()
        if document is not None:
            return json_response(200, document, "req-openapi")
    state = partner.backend
    incoming = PartnerRequest.of(request, method)
    route: FaceRoute | PartnerError
    parsed: object = None
    try:
        route = face.match(incoming)
    except PartnerError as error:
        route = error  # answered, and recorded, as the face's 404 or 405 below
    else:
        try:
            parsed = face.readable(route, incoming, state.scenario.limits.max_body_bytes)
        except UnreadableRequestError as refusal:
            return refused(partner, refusal, route=route)
    call = Call(
        sequence=partner.next_sequence(),
        request_id="",
        time=partner.clock.now(),
        method=method,
        path=path,
    )
    call.request_id = f"req-{call.sequence:06d}"
    answer: Answer
    try:
        answer = _partner_call(partner, face, state, incoming, route, call, parsed)
    except Exception:  # a bug in the partner: answer 500 rather than hang the client
        logger.exception("fake_partner: unexpected error handling %s %s", method, path)
        answer = render_error(
            face,
            PartnerError(500, ErrorCode.INTERNAL_ERROR, "unexpected partner error (a bug)"),
            call,
        )
    partner.ledger.append(_entry(partner, face, call, answer))
    return answer


def refused(
    partner: Partner,
    refusal: UnreadableRequestError,
    *,
    oauth: bool = False,
    route: FaceRoute | None = None,
) -> httpx.Response:
    """The answer to a request that cannot be read: nothing recorded, nothing changed.

    Its request id (``rej-NNNNNN``) counts refusals apart from the ledger's sequence.
    """
    request_id = f"rej-{partner.next_refused_sequence():06d}"
    if oauth and route is None:
        route = FaceRoute(TOKEN_ROUTE, "token", {}, TOKEN_ROUTE)
    return partner.face.render_refusal(refusal, request_id, route)


def _entry(partner: Partner, face: Face, call: Call, answer: Answer) -> LedgerEntry:
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
    signal = call.signal
    dialect_code = call.dialect_code
    retry_after = call.retry_after
    if isinstance(answer, httpx.Response):
        status = answer.status_code
        if status >= 400:
            error_code = call.error_code
        else:
            signal, dialect_code, retry_after = None, None, None
            if any(code is not None for code in codes or ()):
                signal = "per_item"
    else:
        signal, dialect_code, retry_after = "transient", None, None
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
        dialect=face.name,
        dialect_code=_renderable(dialect_code),
        signal=signal,
        retry_after=retry_after,
        dialect_route=call.dialect_route,
    )


def _renderable(text: str | None) -> str | None:
    """What the ledger stores of a request's strings: always encodable as UTF-8."""
    return None if text is None else renderable(text)


def _partner_call(
    partner: Partner,
    face: Face,
    state: PartnerState,
    request: PartnerRequest,
    route: FaceRoute | PartnerError,
    call: Call,
    parsed: object,
) -> Answer:
    raw = face.presented_token(request)
    access: AccessToken | None = None
    if raw:
        call.token = fingerprint(raw)
        access = state.access_tokens.get(raw)
        call.client_id = access.client_id if access is not None else None
    if isinstance(route, PartnerError):
        return render_error(face, route, call)
    call.route = route.core
    call.dialect_route = route.key if face.name != "generic" else None
    ctx = Context(partner, face, state, request, route, call, None, parsed)
    face.identify(ctx)
    try:
        face.precheck(ctx)
    except PartnerError as error:
        return render_error(face, error, call)
    except OAuthError as error:
        return render_oauth_error(face, error, call)
    call.core_path = face.core_path(ctx)

    # Faults: decided on what the request says, before the partner looks at it.
    firings = partner.faults.fire(
        route.core_method, call.core_path, call.account_id, call.segment_id, partner.clock.now()
    )
    terminal: Answer | None = None
    fail_after: ApplyThenFailEffect | ErrorEffect | None = None
    drop_after = False
    reject_rules: list[RejectItemsEffect] = []
    created_effects: list[HoldProvisioningEffect | ForceStatusEffect] = []
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
            _revoke_refresh(state, face, request, route, access)
        elif isinstance(effect, HoldProvisioningEffect | ForceStatusEffect):
            segment = state.segments.get(call.segment_id or "")
            if segment is not None:
                _apply_segment_effect(segment, effect)
            elif route.core == CREATE_ROUTE:
                created_effects.append(effect)
        elif isinstance(effect, RejectItemsEffect):
            reject_rules.append(effect)
        elif isinstance(effect, ErrorEffect):
            if terminal is None:
                terminal = fault_error(partner, face, effect, call)
        elif isinstance(effect, DropEffect):
            if effect.after_apply:
                drop_after = True
            elif terminal is None:
                terminal = Dropped(call.request_id, applied=False)
        elif fail_after is None:
            fail_after = effect
    if terminal is not None:
        return terminal

    handler = face.handlers[route.handler]
    ctx.reject = _reject_rule(reject_rules, partner.effective_scenario.seed)
    limit = partner.effective_scenario.limits.max_body_bytes
    try:
        if len(request.body) > limit:
            raise too_large(len(request.body), limit)
        response = handler(ctx)
    except PartnerError as error:
        response = render_error(face, error, call)
    except OAuthError as error:
        response = render_oauth_error(face, error, call)
    if call.created is not None:
        for created_effect in created_effects:
            _apply_segment_effect(call.created, created_effect)
    if drop_after:
        return Dropped(call.request_id, applied=call.applied)
    if fail_after is not None:
        return fault_error(partner, face, fail_after, call)
    return response


def _apply_segment_effect(
    segment: Segment, effect: HoldProvisioningEffect | ForceStatusEffect
) -> None:
    if isinstance(effect, HoldProvisioningEffect):
        segment.hold_calls = effect.calls
    else:
        segment.forced_status = effect.status


def _revoke_refresh(
    state: PartnerState,
    face: Face,
    request: PartnerRequest,
    route: FaceRoute,
    access: AccessToken | None,
) -> None:
    if route.core == TOKEN_ROUTE:
        try:
            presented = face.refresh_token_presented(request) or ""
        except OAuthError:
            presented = ""
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
