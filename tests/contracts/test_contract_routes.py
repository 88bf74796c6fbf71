"""The route table, checked row by row against plugin-contract.md (transcribed here)."""

from __future__ import annotations

import dataclasses

import pytest

from contracts import (
    DELAY_HEADER,
    MISSING_BODY_ANSWER,
    MISSING_BODY_CODE,
    NON_BATCHED_BATCH_UPDATE_ANSWER,
    NON_BATCHED_BATCH_UPDATE_CODE,
    ROUTES,
    THROTTLED_CODE,
    THROTTLED_STATUS,
    Route,
    route,
    route_for_path,
)

# plugin-contract.md, "Inbound routes": name -> (method, path, {status: code}, other statuses)
SPEC: dict[str, tuple[str, str, dict[str, int], int]] = {
    "external_segment_creation": ("POST", "/v1/external_segment_creation", {"ok": 200}, 500),
    "external_segment_connection": (
        "POST",
        "/v1/external_segment_connection",
        {"ok": 200, "external_segment_not_ready_yet": 502, "error": 500},
        500,
    ),
    "user_segment_update": (
        "POST",
        "/v1/user_segment_update",
        {"ok": 200, "error": 500, "retry": 429, "no_eligible_identifier": 400},
        500,
    ),
    "batch_update": (
        "POST",
        "/v1/batch_update",
        {"OK": 200, "ERROR": 400, "RETRY": 503},
        500,
    ),
    "troubleshoot": (
        "POST",
        "/v1/troubleshoot",
        {"ok": 200, "error": 500, "not_implemented": 400},
        500,
    ),
    "authentication_status": (
        "POST",
        "/v1/authentication_status_queries",
        {"authenticated": 200, "not_authenticated": 200, "error": 500, "not_implemented": 400},
        500,
    ),
    "authentication": (
        "POST",
        "/v1/authentication",
        {"ok": 200, "error": 500, "not_implemented": 400},
        500,
    ),
    "logout": ("POST", "/v1/logout", {"ok": 200, "error": 500, "not_implemented": 400}, 500),
    "dynamic_property_values": (
        "POST",
        "/v1/dynamic_property_values_queries",
        {"ok": 200, "empty": 200, "error": 500, "not_implemented": 400},
        500,
    ),
    "test_authentication": (
        "POST",
        "/v1/test_authentication",
        {"ok": 200, "invalid_credentials": 401, "error": 500, "not_implemented": 400},
        500,
    ),
    # No status in the answer: 200, or 500 (SDK error body) on a bad login_url.
    "oauth_redirect_url": ("POST", "/v1/oauth_redirect_url", {"error": 500}, 200),
    "init": ("POST", "/v1/init", {}, 200),
    "status": ("GET", "/v1/status", {}, 200),
    "log_level_get": ("GET", "/v1/log_level", {}, 200),
    "log_level_put": ("PUT", "/v1/log_level", {}, 200),
    "metadata": ("GET", "/v1/metadata", {}, 200),
}

# plugin-contract.md, "Version notes".
SINCE = {
    "external_segment_creation": "0.28.2",
    "external_segment_connection": "0.28.2",
    "user_segment_update": "0.28.2",
    "batch_update": "0.28.2",
    "troubleshoot": "0.28.2",
    "authentication_status": "0.30",
    "dynamic_property_values": "0.30",
    "authentication": "0.31",
    "logout": "0.31.2",
    "test_authentication": "0.40",
    "oauth_redirect_url": "0.40",
}

MANDATORY_FEED_ROUTES = {
    "external_segment_creation",
    "external_segment_connection",
    "user_segment_update",
    "troubleshoot",
}
OPTIONAL_ROUTES = {
    "batch_update",
    "authentication_status",
    "authentication",
    "logout",
    "dynamic_property_values",
    "test_authentication",
    "oauth_redirect_url",
}


def test_the_table_has_exactly_the_fixed_route_names_once_each() -> None:
    names = [r.name for r in ROUTES]
    assert sorted(names) == sorted(SPEC)
    assert len({(r.method, r.path) for r in ROUTES}) == len(ROUTES)


@pytest.mark.parametrize("name", list(SPEC))
def test_route_matches_the_spec_row(name: str) -> None:
    method, path, codes, other = SPEC[name]
    r = route(name)
    assert (r.method, r.path) == (method, path)
    assert dict(r.status_codes) == codes
    assert r.other_code == other
    for status, code in codes.items():
        assert r.code_for(status) == code, status
    assert r.code_for("some_status_nobody_sends") == other
    assert r.code_for(None) == other


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("external_segment_creation", "error", 500),
        ("external_segment_creation", "retry", 500),
        ("external_segment_connection", "external_segment_not_ready_yet", 502),
        ("user_segment_update", "retry", 429),
        ("user_segment_update", "no_eligible_identifier", 400),
        ("batch_update", "ERROR", 400),
        ("batch_update", "RETRY", 503),
        ("batch_update", "error", 500),
        ("troubleshoot", "not_implemented", 400),
        ("authentication_status", "not_authenticated", 200),
        ("dynamic_property_values", "empty", 200),
        ("test_authentication", "invalid_credentials", 401),
    ],
)
def test_the_notable_codes(name: str, status: str, code: int) -> None:
    assert route(name).code_for(status) == code


def test_mandatory_and_optional_routes() -> None:
    optional = {r.name for r in ROUTES if r.optional}
    # /v1/metadata: its SDK version is not documented, so a plugin may lack it.
    assert optional == OPTIONAL_ROUTES | {"metadata"}
    assert not (MANDATORY_FEED_ROUTES & optional)


@pytest.mark.parametrize(("name", "version"), list(SINCE.items()))
def test_route_versions(name: str, version: str) -> None:
    assert route(name).since == version


def test_feed_routes_have_request_and_response_models() -> None:
    for name in MANDATORY_FEED_ROUTES | OPTIONAL_ROUTES:
        r = route(name)
        assert r.request_model is not None, name
        assert r.response_model is not None, name


def test_unknown_route_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="user_segment_update") as caught:
        route("user_segment_updates")
    assert "user_segment_updates" in str(caught.value)


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("POST", "/v1/batch_update", "batch_update"),
        ("post", "/v1/user_segment_update?debug=1", "user_segment_update"),
        ("POST", "/v1/troubleshoot/", "troubleshoot"),
        ("GET", "/v1/log_level", "log_level_get"),
        ("PUT", "/v1/log_level", "log_level_put"),
        ("POST", "/v1/authentication_status_queries", "authentication_status"),
    ],
)
def test_route_for_path_finds_the_route(method: str, path: str, name: str) -> None:
    found = route_for_path(method, path)
    assert found is not None
    assert found.name == name


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/batch_update"), ("POST", "/v1/unknown"), ("DELETE", "/v1/log_level")],
)
def test_route_for_path_answers_none_elsewhere(method: str, path: str) -> None:
    assert route_for_path(method, path) is None


def test_routes_are_frozen_and_hashable() -> None:
    r = route("batch_update")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.other_code = 200  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.status_codes["OK"] = 201  # type: ignore[index]
    assert {r: 1}[r] == 1
    assert isinstance(r, Route)


def test_wire_constants() -> None:
    assert DELAY_HEADER == "x-mics-next-msg-delay"
    assert MISSING_BODY_CODE == 500
    assert dict(MISSING_BODY_ANSWER) == {"error": "Missing request body"}
    assert NON_BATCHED_BATCH_UPDATE_CODE == 500
    assert dict(NON_BATCHED_BATCH_UPDATE_ANSWER) == {
        "status": "error",
        "message": "Plugin doesn't support batch update",
    }
    assert (THROTTLED_CODE, THROTTLED_STATUS) == (429, "RETRY")
