"""The control API under ``/_admin/...``: shared by every face, in the generic error shape.

Refused with 401 unless the request carries the admin token; never faulted, not in the
ledger; its request ids are ``admin-000001``...
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Literal

import httpx

from fake_partner.errors import ClockError, ErrorCode, PartnerError, ScenarioError
from fake_partner.faces.base import json_response, too_large
from fake_partner.faces.generic import error_response, parse_body
from fake_partner.inbound import decimal
from fake_partner.presets import list_presets
from fake_partner.routes import ADMIN_ROUTES, Route, resolve
from fake_partner.scenario import parse_scenario
from fake_partner.wire import ClockAdvanceIn

if TYPE_CHECKING:
    from fake_partner.partner import Partner


def admin(partner: Partner, request: httpx.Request, method: str, path: str) -> httpx.Response:
    """The control API: refused 401 without the admin token; not in the ledger, no faults."""
    request_id = f"admin-{partner.next_admin_sequence():06d}"
    try:
        _check_admin(partner, request)
        route, _ = resolve(ADMIN_ROUTES, method, path)
        body = request.content
        if len(body) > partner.effective_scenario.limits.max_body_bytes:
            raise too_large(len(body), partner.effective_scenario.limits.max_body_bytes)
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
        advance: ClockAdvanceIn = parse_body(ClockAdvanceIn, request.content, "request body")
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
