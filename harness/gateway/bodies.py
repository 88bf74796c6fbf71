"""Reading what a connector sends to the gateway; every refusal is a 4xx naming the fix."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from contracts.gateway import FeedDestinationCredentials, PluginProperty, PropertyModel
from fake_partner.inbound import UnreadableRequestError, check_request, json_value

__all__ = [
    "GatewayHttpError",
    "credentials_from_body",
    "error_answer",
    "json_answer",
    "property_from_body",
    "unreadable",
]

_PROPERTY: TypeAdapter[Any] = TypeAdapter(PluginProperty)
_PROPERTY_EXAMPLE = (
    '{"technical_name": "partner_segment_id", "value": {"value": "..."}, "property_type": "STRING"}'
)


class GatewayHttpError(Exception):
    """A request the gateway refuses: becomes ``{"status": "error", "message"}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def json_answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    """A JSON response as the gateway sends it."""
    return httpx.Response(status, json=payload, headers=headers)


def error_answer(error: GatewayHttpError) -> httpx.Response:
    """The gateway's JSON error envelope for a refused request."""
    return json_answer(
        error.status, {"status": "error", "message": error.message}, headers=error.headers
    )


def unreadable(request: httpx.Request) -> GatewayHttpError | None:
    """Why the request's method, target or headers cannot be read, or None: the gateway
    refuses those before authentication, routing or any state. (JSON bodies are read
    strictly by :func:`parse_json_object`, also before any state changes.)"""
    try:
        check_request(request.method, request.url.raw_path, request.headers.raw)
    except UnreadableRequestError as refusal:
        return GatewayHttpError(refusal.status, refusal.message)
    return None


def parse_json_object(body: bytes, what: str, example: str) -> dict[str, Any]:
    """The body as a JSON object, or a 400 saying what was expected."""
    if not body.strip():
        raise GatewayHttpError(400, f"{what}: the body is empty; send a JSON object like {example}")
    try:
        data = json_value(body)
    except UnreadableRequestError as refusal:
        raise GatewayHttpError(
            400, f"{what}: {refusal.message}; send a JSON object like {example}"
        ) from None
    if not isinstance(data, dict):
        raise GatewayHttpError(
            400,
            f"{what}: the body is a JSON {_json_kind(data)}, not an object; "
            f"send a JSON object like {example}",
        )
    return data


def property_from_body(
    body: bytes, what: str, *, path_name: str | None, existing: PropertyModel | None
) -> PropertyModel:
    """The property a POST/PUT body describes, completed from the existing one.

    Tolerated as the SDK and hand-written connectors send it: ``technical_name`` taken from the
    path, a bare scalar ``value`` wrapped as ``{"value": ...}``, type, origin and flags kept.
    """
    data = parse_json_object(body, what, _PROPERTY_EXAMPLE)
    name = data.get("technical_name")
    if path_name is not None:
        if name is None:
            data["technical_name"] = path_name
        elif name != path_name:
            raise GatewayHttpError(
                400,
                f"{what}: technical_name {name!r} in the body differs from {path_name!r} in the "
                "path; PUT .../properties/technical_name=NAME with the same NAME in the body",
            )
    elif not isinstance(name, str) or not name:
        raise GatewayHttpError(
            400,
            f"{what}: technical_name={name!r} is not a non-empty string; "
            f"send a property like {_PROPERTY_EXAMPLE}",
        )
    if "value" not in data:
        raise GatewayHttpError(
            400, f"{what}: the property has no 'value'; send a property like {_PROPERTY_EXAMPLE}"
        )
    if data["value"] is None or isinstance(data["value"], str | int | float | bool):
        data["value"] = {"value": data["value"]}
    if existing is not None:
        kind = data.setdefault("property_type", existing.property_type)
        if kind != existing.property_type:
            raise GatewayHttpError(
                400,
                f"{what}: property_type {kind!r} differs from the property's "
                f"{existing.property_type!r}; a write cannot change the type, send "
                f"property_type {existing.property_type!r}",
            )
        for key in ("origin", "writable", "deletable"):
            data.setdefault(key, getattr(existing, key))
    else:
        data.setdefault("property_type", "STRING")
        data.setdefault("origin", "INSTANCE")
        data.setdefault("writable", True)
        data.setdefault("deletable", False)
    try:
        prop: PropertyModel = _PROPERTY.validate_python(data)
    except ValidationError as exc:
        raise GatewayHttpError(
            400, f"{what}: not a valid property ({_summary(exc, with_input=True)})"
        ) from None
    return prop


def credentials_from_body(
    body: bytes, what: str, feed_destination_id: str
) -> FeedDestinationCredentials:
    """Credentials from ``{scheme, credentials}``, or that wrapped as the SDK's upsert request."""
    example = '{"scheme": "OAUTH2", "credentials": {"refresh_token": "..."}}'
    data = parse_json_object(body, what, example)
    inner = data.get("credentials")
    if "scheme" not in data and isinstance(inner, dict) and "scheme" in inner:
        given_id = data.get("feed_destination_id")
        if given_id is not None and str(given_id) != feed_destination_id:
            raise GatewayHttpError(
                400,
                f"{what}: feed_destination_id {given_id!r} in the body differs from "
                f"{feed_destination_id!r} in the path; send the same id",
            )
        data = inner
    data = {key: value for key, value in data.items() if key != "feed_destination_id"}
    try:
        return FeedDestinationCredentials.model_validate(data)
    except ValidationError as exc:
        # never echo the input: it holds secrets
        raise GatewayHttpError(
            400, f"{what}: not valid credentials ({_summary(exc)}); send {example}"
        ) from None


def _json_kind(data: Any) -> str:
    kinds = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if data is None else kinds.get(type(data), type(data).__name__)


def _summary(exc: ValidationError, *, with_input: bool = False) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        got = f" (got {err['input']!r:.80})" if with_input and "input" in err else ""
        parts.append(f"{where}: {err['msg']}{got}")
    return "; ".join(parts)
