"""The partner's own OpenAPI 3.1 document (``partner-api.md``), served at ``GET /openapi.json``.

Written here from the partner's routes and limits, so a connector author in any language
(or Schemathesis) can read what the partner accepts: a request valid under this document
is never refused with a 400; every answer matches the schema of its status.
"""

from __future__ import annotations

from typing import Any

from fake_partner.identifiers import PARTNER_USER_ID_MAX_LENGTH
from fake_partner.models import MAX_DESCRIPTION_LENGTH

__all__ = ["OPENAPI_VERSION", "openapi_document"]

OPENAPI_VERSION = "3.1.0"

_REF = "#/components/schemas/"
_NULLABLE_INT = {"type": ["integer", "null"]}
_SHA256 = "^[0-9a-f]{64}$"
_UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_REQUEST_ID = {
    "X-Request-Id": {
        "description": "The partner's id of this request (in the ledger).",
        "required": True,
        "schema": {"type": "string"},
    }
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "headers": _REQUEST_ID}
    if schema is not None:
        answer["content"] = _json(schema)
    return answer


def _errors(*, oauth: bool = False) -> dict[str, Any]:
    schema = {"anyOf": [_ref("Error"), _ref("OAuthError")]} if oauth else _ref("Error")
    return {"default": _answer("an error (every 4xx and 5xx)", schema)}


_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 200},
}
_CURSOR = {
    "name": "cursor",
    "in": "query",
    "required": False,
    "description": "`next_cursor` of the previous page, unchanged.",
    "schema": {"type": "string", "pattern": "^o[0-9]{1,18}$"},
}


_TEXT = "^[^\\x00-\\x1f\\x7f]*$"
"""Query and path text: anything but control characters (refused in any request target)."""


def _path_id(name: str) -> dict[str, Any]:
    schema = {"type": "string", "minLength": 1, "pattern": _TEXT}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _schemas() -> dict[str, Any]:
    printable = f"^[\\x20-\\x3f\\x41-\\x7e]{{1,{PARTNER_USER_ID_MAX_LENGTH}}}$"  # ASCII, no @
    identifier = {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "type": {"enum": ["EMAIL_SHA256", "PHONE_SHA256"]},
                    "value": {"type": "string", "pattern": _SHA256},
                },
                "required": ["type", "value"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {
                    "type": {"const": "MAID"},
                    "value": {"type": "string", "pattern": _UUID},
                },
                "required": ["type", "value"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {
                    "type": {"const": "PARTNER_USER_ID"},
                    "value": {"type": "string", "pattern": printable},
                },
                "required": ["type", "value"],
                "additionalProperties": False,
            },
        ]
    }
    return {
        "Error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "integer", "minimum": 400, "maximum": 599},
                        "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
                        "message": {"type": "string"},
                        "request_id": {"type": "string"},
                        "details": {"type": "array", "items": {"type": "object"}},
                    },
                    "required": ["status", "code", "message", "request_id", "details"],
                }
            },
            "required": ["error"],
        },
        "OAuthError": {
            "type": "object",
            "properties": {
                "error": {"type": "string"},
                "error_description": {"type": "string"},
            },
            "required": ["error"],
        },
        "TokenRequest": {
            "type": "object",
            "properties": {
                "grant_type": {"enum": ["refresh_token", "authorization_code"]},
                "refresh_token": {"type": "string"},
                "code": {"type": "string"},
                "redirect_uri": {"type": "string"},
                "client_id": {"type": "string"},
                "client_secret": {"type": "string"},
            },
            "required": ["grant_type"],
            "additionalProperties": {"type": "string"},
        },
        "Token": {
            "type": "object",
            "properties": {
                "access_token": {"type": "string"},
                "token_type": {"const": "bearer"},
                "expires_in": {"type": "number", "minimum": 0},
                "scope": {"type": "string"},
                "refresh_token": {"type": "string"},
                "refresh_token_expires_in": {"type": "number", "minimum": 0},
            },
            "required": ["access_token", "token_type", "expires_in"],
        },
        "Account": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "name": {"type": ["string", "null"]},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
            "required": ["id", "name", "currency"],
        },
        "Segment": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "account_id": {"type": "string"},
                "name": {"type": "string"},
                "description": {"type": ["string", "null"]},
                "status": {"enum": ["PROVISIONING", "BUILDING", "READY", "UPDATING", "FAILED"]},
                "created_at": {"type": "string"},
                "updated_at": {"type": "string"},
                "input_count": _NULLABLE_INT,
                "matched_count": _NULLABLE_INT,
                "match_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "audience_size": _NULLABLE_INT,
                "targetable": {"type": "boolean"},
            },
            "required": [
                "id",
                "account_id",
                "name",
                "description",
                "status",
                "created_at",
                "updated_at",
                "input_count",
                "matched_count",
                "match_rate",
                "audience_size",
                "targetable",
            ],
        },
        "NewSegment": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "pattern": "^[ -~]*[!-~][ -~]*$", "maxLength": 100},
                "description": {"type": ["string", "null"], "maxLength": MAX_DESCRIPTION_LENGTH},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        "Identifier": identifier,
        "Upload": {
            "type": "object",
            "properties": {
                "operations": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 10_000,
                    "items": {
                        "type": "object",
                        "properties": {
                            "action": {"enum": ["ADD", "REMOVE"]},
                            "identifiers": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 10,
                                "items": _ref("Identifier"),
                            },
                        },
                        "required": ["action", "identifiers"],
                        "additionalProperties": False,
                    },
                },
                "partial_failure": {"type": "boolean"},
            },
            "required": ["operations"],
            "additionalProperties": False,
        },
        "UploadResult": {
            "type": "object",
            "properties": {
                "request_id": {"type": "string"},
                "received": {"type": "integer", "minimum": 0},
                "accepted": {"type": "integer", "minimum": 0},
                "rejected": {"type": "integer", "minimum": 0},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer", "minimum": 0},
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                        },
                        "required": ["index", "code", "message"],
                    },
                },
            },
            "required": ["request_id", "received", "accepted", "rejected", "errors"],
        },
        "Member": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "value": {"type": "string"}},
            "required": ["type", "value"],
        },
    }


def _paths() -> dict[str, Any]:
    token_body = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": _ref("TokenRequest")},
            "application/json": {"schema": _ref("TokenRequest")},
        },
    }
    segments_page = {
        "type": "object",
        "properties": {
            "segments": {"type": "array", "items": _ref("Segment")},
            "next_cursor": {"type": ["string", "null"]},
        },
        "required": ["segments", "next_cursor"],
    }
    members_page = {
        "type": "object",
        "properties": {
            "members": {"type": "array", "items": _ref("Member")},
            "next_cursor": {"type": ["string", "null"]},
        },
        "required": ["members", "next_cursor"],
    }
    accounts = {
        "type": "object",
        "properties": {"accounts": {"type": "array", "items": _ref("Account")}},
        "required": ["accounts"],
    }
    account_id = _path_id("account_id")
    segment_id = _path_id("segment_id")
    return {
        "/oauth/token": {
            "post": {
                "operationId": "token",
                "summary": "Exchange a refresh token or an authorization code for an access token",
                "requestBody": token_body,
                "responses": {"200": _answer("a token", _ref("Token")), **_errors(oauth=True)},
            }
        },
        "/oauth/authorize": {
            "get": {
                "operationId": "authorize",
                "summary": "The user's consent: redirects with a code and the state",
                "parameters": [
                    {"name": name, "in": "query", "required": name != "state", "schema": schema}
                    for name, schema in (
                        ("response_type", {"const": "code"}),
                        ("client_id", {"type": "string", "pattern": _TEXT}),
                        ("redirect_uri", {"type": "string", "pattern": _TEXT}),
                        ("state", {"type": "string", "pattern": _TEXT}),
                    )
                ],
                "responses": {"302": _answer("redirect to redirect_uri"), **_errors()},
            }
        },
        "/v1/accounts": {
            "get": {
                "operationId": "list_accounts",
                "security": _BEARER,
                "responses": {"200": _answer("the token's accounts", accounts), **_errors()},
            }
        },
        "/v1/accounts/{account_id}/segments": {
            "post": {
                "operationId": "create_segment",
                "security": _BEARER,
                "parameters": [account_id],
                "requestBody": {"required": True, "content": _json(_ref("NewSegment"))},
                "responses": {"201": _answer("the new segment", _ref("Segment")), **_errors()},
            },
            "get": {
                "operationId": "list_segments",
                "security": _BEARER,
                "parameters": [
                    account_id,
                    {
                        "name": "name",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": _TEXT},
                    },
                    _CURSOR,
                    _LIMIT,
                ],
                "responses": {"200": _answer("a page of segments", segments_page), **_errors()},
            },
        },
        "/v1/segments/{segment_id}": {
            "get": {
                "operationId": "get_segment",
                "security": _BEARER,
                "parameters": [segment_id],
                "responses": {"200": _answer("the segment", _ref("Segment")), **_errors()},
            },
            "delete": {
                "operationId": "delete_segment",
                "security": _BEARER,
                "parameters": [segment_id],
                "responses": {"204": _answer("deleted"), **_errors()},
            },
        },
        "/v1/segments/{segment_id}/members": {
            "post": {
                "operationId": "upload",
                "security": _BEARER,
                "parameters": [segment_id],
                "requestBody": {"required": True, "content": _json(_ref("Upload"))},
                "responses": {
                    "200": _answer("what was accepted", _ref("UploadResult")),
                    **_errors(),
                },
            },
            "get": {
                "operationId": "list_members",
                "security": _BEARER,
                "parameters": [segment_id, _CURSOR, _LIMIT],
                "responses": {"200": _answer("a page of members", members_page), **_errors()},
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the partner API (``/_admin`` is not part of it)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "feed-harness fake partner: Partner Audience API",
            "version": "1",
            "description": (
                "The audience API of the fake ad partner (partner-api.md). Errors are "
                '{"error": {status, code, message, request_id, details}}; /oauth/token '
                'answers OAuth\'s {"error", "error_description"}.'
            ),
        },
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
