"""The OpenAPI 3.1 export: valid, complete, and runnable as `python -m contracts.openapi`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from contracts import ROUTES, route
from contracts.openapi import openapi_document

# Every route path of plugin-contract.md, with its method.
SPEC_PATHS = {
    ("post", "/v1/external_segment_creation"),
    ("post", "/v1/external_segment_connection"),
    ("post", "/v1/user_segment_update"),
    ("post", "/v1/batch_update"),
    ("post", "/v1/troubleshoot"),
    ("post", "/v1/authentication_status_queries"),
    ("post", "/v1/authentication"),
    ("post", "/v1/logout"),
    ("post", "/v1/dynamic_property_values_queries"),
    ("post", "/v1/test_authentication"),
    ("post", "/v1/oauth_redirect_url"),
    ("post", "/v1/init"),
    ("get", "/v1/status"),
    ("get", "/v1/log_level"),
    ("put", "/v1/log_level"),
    ("get", "/v1/metadata"),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def _resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    prefix = "#/components/schemas/"
    assert ref.startswith(prefix), ref
    schema: dict[str, Any] = document["components"]["schemas"][ref[len(prefix) :]]
    return schema


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_document_lists_every_route_of_the_contract(document: dict[str, Any]) -> None:
    listed = {(method, path) for path, item in document["paths"].items() for method in item}
    assert listed == SPEC_PATHS


@pytest.mark.parametrize("name", [r.name for r in ROUTES])
def test_each_operation_answers_every_code_of_its_route(
    document: dict[str, Any], name: str
) -> None:
    r = route(name)
    operation = document["paths"][r.path][r.method.lower()]
    assert operation["operationId"] == name
    codes = {int(c) for c in operation["responses"]}
    assert set(r.status_codes.values()) | {r.other_code} <= codes
    if r.request_model is not None:
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = _resolve(document, ref)
        assert schema["title"].startswith(r.request_model.__name__.split("[")[0])


def test_update_answers_carry_the_delay_header_and_the_schema(document: dict[str, Any]) -> None:
    responses = document["paths"]["/v1/user_segment_update"]["post"]["responses"]
    assert set(responses) == {"200", "400", "429", "500"}
    assert "x-mics-next-msg-delay" in responses["429"]["headers"]
    ok = responses["200"]["content"]["application/json"]["schema"]
    schema = _resolve(document, ok["$ref"])
    assert set(schema["properties"]["status"]["enum"]) == {
        "ok",
        "error",
        "retry",
        "no_eligible_identifier",
    }


def test_batch_update_codes(document: dict[str, Any]) -> None:
    responses = document["paths"]["/v1/batch_update"]["post"]["responses"]
    assert {"200", "400", "503", "500"} <= set(responses)
    assert "OK" in responses["200"]["description"]
    assert "RETRY" in responses["503"]["description"]


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    schemas = document["components"]["schemas"]
    for chunk in text.split('"$ref": "')[1:]:
        ref = chunk.split('"', 1)[0]
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_module_prints_the_document_as_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "contracts.openapi"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["openapi"] == "3.1.0"
    assert "/v1/user_segment_update" in printed["paths"]


def test_module_writes_the_document_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "plugin-api.json"
    done = subprocess.run(
        [sys.executable, "-m", "contracts.openapi", "--output", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert json.loads(out.read_text()) == openapi_document()
