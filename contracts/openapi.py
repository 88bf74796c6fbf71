"""An OpenAPI 3.1 document of the plugin API, built from `ROUTES` and the models.

For connector authors in other languages: `python -m contracts.openapi [--output FILE]`
prints it as JSON. Not imported by `contracts/__init__` so that `-m` runs it cleanly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from contracts.plugin_api import MissingBodyError, SdkError, ThrottledResponse
from contracts.routes import (
    DELAY_HEADER,
    MISSING_BODY_CODE,
    ROUTES,
    SDK_ERROR_CODE,
    THROTTLED_CODE,
    Route,
)

__all__ = ["OPENAPI_VERSION", "main", "openapi_document"]

OPENAPI_VERSION = "3.1.0"
_REF_TEMPLATE = "#/components/schemas/{model}"

_EXTRA_CODES: dict[str, dict[int, str]] = {
    "status": {503: "The plugin has no worker id or authentication token yet."},
    "log_level_put": {400: "The body has no `level`."},
}


def _models() -> list[type[BaseModel]]:
    """Every model the document refers to, once each, in route order."""
    seen: dict[type[BaseModel], None] = {}
    for r in ROUTES:
        for model in (r.request_model, r.response_model):
            if model is not None:
                seen.setdefault(model, None)
    for model in (SdkError, MissingBodyError, ThrottledResponse):
        seen.setdefault(model, None)
    return list(seen)


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _responses(r: Route, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    """The `responses` of one operation: one entry per HTTP code the route can answer."""
    by_code: dict[int, list[str]] = {}
    for status, code in r.status_codes.items():
        by_code.setdefault(code, []).append(status)
    by_code.setdefault(r.other_code, [])
    is_feed_route = r.method == "POST" and r.request_model is not None

    responses: dict[str, Any] = {}
    for code in sorted(by_code):
        statuses = by_code[code]
        if statuses:
            described = ", ".join(f"`{s}`" for s in statuses)
            description = f"status {described}"
            if code == r.other_code and r.status_codes:
                description += " or any other status"
        elif r.status_codes:
            description = "any other status"
        else:
            description = "success"
        answer: dict[str, Any] = {"description": description}
        alternatives: list[dict[str, Any]] = []
        if r.response_model is not None:
            alternatives.append(refs[r.response_model])
        if is_feed_route and code == SDK_ERROR_CODE:
            alternatives.append(refs[SdkError])
            answer["description"] += "; a handler exception (SdkError)"
        if is_feed_route and code == MISSING_BODY_CODE:
            alternatives.append(refs[MissingBodyError])
            answer["description"] += "; a missing or empty body (MissingBodyError)"
        if is_feed_route and code == THROTTLED_CODE:
            alternatives.append(refs[ThrottledResponse])
            answer["description"] += "; a throttled plugin (ThrottledResponse)"
        if alternatives:
            schema = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
            answer["content"] = _json_content(schema)
        if r.name in ("user_segment_update", "batch_update"):
            answer["headers"] = {
                DELAY_HEADER: {
                    "description": "Delay in ms before the next message, when the plugin asks.",
                    "schema": {"type": "string"},
                }
            }
        responses[str(code)] = answer
    if is_feed_route and str(THROTTLED_CODE) not in responses:
        responses[str(THROTTLED_CODE)] = {
            "description": "a throttled plugin",
            "content": _json_content(refs[ThrottledResponse]),
        }
    for code, description in _EXTRA_CODES.get(r.name, {}).items():
        responses[str(code)] = {"description": description}
    return dict(sorted(responses.items()))


def _operation(r: Route, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": r.name,
        "summary": r.summary or r.name,
        "description": (
            f"Since SDK {r.since}. {'Optional' if r.optional else 'Mandatory'} route. "
            "The SDK sends JSON answers with `Content-Type: text/html`."
        ),
        "responses": _responses(r, refs),
    }
    if r.request_model is not None:
        operation["requestBody"] = {
            "required": True,
            "content": _json_content(refs[r.request_model]),
        }
    return operation


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in `ROUTES`, components from the models."""
    models = _models()
    mode: JsonSchemaMode = "validation"
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, mode) for m in models]
    ref_map, defs = models_json_schema(pairs, ref_template=_REF_TEMPLATE)
    refs = {m: ref_map[(m, mode)] for m in models}

    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        paths.setdefault(r.path, {})[r.method.lower()] = _operation(r, refs)

    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "mediarithmics audience-feed plugin API",
            "version": "0.41.0",
            "description": (
                "Inbound routes of an audience-feed connector (platform -> plugin), as the "
                "public Node SDK @mediarithmics/plugins-nodejs-sdk implements them."
            ),
        },
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {})},
    }


def main(argv: Sequence[str] | None = None) -> Literal[0]:
    """Print the document as JSON, or write it to `--output`."""
    parser = argparse.ArgumentParser(prog="python -m contracts.openapi", description=__doc__)
    parser.add_argument("--output", "-o", help="write the document to this file instead")
    args = parser.parse_args(argv)
    text = json.dumps(openapi_document(), indent=2, sort_keys=False) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
