"""What the models accept and refuse: extra fields kept, bad enums and missing fields named."""

from __future__ import annotations

import copy
import json
from typing import Any, get_args

import pytest
from contract_payloads import REQUESTS, RESPONSES
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from contracts import (
    BatchUpdateResponse,
    ExternalSegmentCreationResponse,
    FeedDestinationCredentials,
    UserSegmentUpdateRequest,
    UserSegmentUpdateResponse,
    route,
    to_wire,
)
from contracts.strategies import MODEL_STRATEGIES

# Required top-level fields per route, from plugin-contract.md and the SDK's interfaces.
REQUIRED_IN_REQUEST: dict[str, set[str]] = {
    "external_segment_creation": {"feed_id", "datamart_id", "segment_id"},
    "external_segment_connection": {"feed_id", "datamart_id", "segment_id"},
    "user_segment_update": {
        "feed_id",
        "session_id",
        "datamart_id",
        "segment_id",
        "user_identifiers",
        "ts",
        "operation",
    },
    "batch_update": {"batch_content", "ts", "context"},
    "troubleshoot": {"feed_id", "datamart_id", "segment_id", "action"},
    "authentication_status": {"datamart_id", "plugin_version_id", "user_id"},
    "authentication": {"user_id", "plugin_version_id"},
    "logout": {"user_id", "plugin_version_id", "datamart_id"},
    "dynamic_property_values": {"datamart_id", "user_id"},
    "test_authentication": {"feed_destination_id"},
    "oauth_redirect_url": {"feed_destination_id", "plugin_version_id"},
    "log_level_put": {"level"},
}
REQUIRED_IN_RESPONSE: dict[str, set[str]] = {
    **{name: {"status"} for name in REQUIRED_IN_REQUEST if name != "log_level_put"},
    "batch_update": {"status", "sent_items_in_success", "sent_items_in_error"},
    "oauth_redirect_url": {"login_url"},
    "log_level_get": {"level"},
    "metadata": set(),
}


def _locs(error: ValidationError) -> list[tuple[str | int, ...]]:
    return [tuple(e["loc"]) for e in error.errors()]


def _drop_cases(
    payloads: dict[str, list[dict[str, Any]]], required: dict[str, set[str]]
) -> list[Any]:
    cases = []
    for name, items in payloads.items():
        for payload in items:
            for key in payload:
                cases.append(
                    pytest.param(name, payload, key, key in required[name], id=f"{name}-{key}")
                )
    return cases


@pytest.mark.parametrize(
    ("name", "payload", "key", "required"), _drop_cases(REQUESTS, REQUIRED_IN_REQUEST)
)
def test_request_without_a_field(
    name: str, payload: dict[str, Any], key: str, required: bool
) -> None:
    model = route(name).request_model
    assert model is not None
    partial = {k: v for k, v in payload.items() if k != key}
    if required:
        with pytest.raises(ValidationError) as caught:
            model.model_validate(partial)
        assert (key,) in _locs(caught.value)
        assert key in str(caught.value)
    else:
        model.model_validate(partial)


@pytest.mark.parametrize(
    ("name", "payload", "key", "required"), _drop_cases(RESPONSES, REQUIRED_IN_RESPONSE)
)
def test_response_without_a_field(
    name: str, payload: dict[str, Any], key: str, required: bool
) -> None:
    model = route(name).response_model
    assert model is not None
    partial = {k: v for k, v in payload.items() if k != key}
    if required:
        with pytest.raises(ValidationError) as caught:
            model.model_validate(partial)
        assert (key,) in _locs(caught.value)
    else:
        model.model_validate(partial)


@pytest.mark.parametrize(
    "name", [n for n, items in RESPONSES.items() if "status" in items[0]], ids=str
)
def test_response_with_an_unknown_status_is_refused_naming_status(name: str) -> None:
    model = route(name).response_model
    assert model is not None
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**RESPONSES[name][0], "status": "definitely_not_a_status"})
    assert _locs(caught.value) == [("status",)]
    assert "definitely_not_a_status" in str(caught.value)


@pytest.mark.parametrize("name", list(RESPONSES))
def test_responses_keep_unknown_fields(name: str) -> None:
    model = route(name).response_model
    assert model is not None
    extra = {"x_partner_trace": {"id": "t-1", "hops": [1, None]}, "x_flag": None}
    parsed = model.model_validate({**RESPONSES[name][0], **extra})
    wire = to_wire(parsed)
    assert wire["x_partner_trace"] == extra["x_partner_trace"]
    assert "x_flag" in wire
    assert wire["x_flag"] is None


@pytest.mark.parametrize("name", list(REQUESTS))
def test_requests_accept_and_keep_platform_additions(name: str) -> None:
    model = route(name).request_model
    assert model is not None
    parsed = model.model_validate({**REQUESTS[name][0], "x_new_platform_field": 7})
    assert to_wire(parsed)["x_new_platform_field"] == 7


def test_nested_extra_fields_survive_in_delivery_items_and_stats() -> None:
    payload = copy.deepcopy(RESPONSES["user_segment_update"][0])
    payload["data"][0]["x_priority"] = "high"
    payload["stats"][0]["x_reason"] = "ok"
    assert to_wire(UserSegmentUpdateResponse.model_validate(payload)) == payload


@pytest.mark.parametrize(
    ("mutate", "expected_loc"),
    [
        (lambda p: p.update(operation="UPSERTED"), ("operation",)),
        (lambda p: p["user_identifiers"][0].update(type="USER_PHONE"), ("user_identifiers", 0)),
        (
            lambda p: p["user_identifiers"][4]["technical_identifiers"][0].update(type="IMEI"),
            ("user_identifiers", 4, "USER_DEVICE_POINT", "technical_identifiers", 0, "type"),
        ),
        (
            lambda p: p["user_identifiers"][2].pop("hash"),
            ("user_identifiers", 2, "USER_EMAIL", "hash"),
        ),
        (
            lambda p: p["user_profiles"][0].pop("$creation_ts"),
            ("user_profiles", 0, "$creation_ts"),
        ),
    ],
    ids=["operation", "identifier-type", "technical-type", "email-hash", "profile-creation-ts"],
)
def test_nested_errors_name_their_path(mutate: Any, expected_loc: tuple[Any, ...]) -> None:
    payload = copy.deepcopy(REQUESTS["user_segment_update"][0])
    mutate(payload)
    with pytest.raises(ValidationError) as caught:
        UserSegmentUpdateRequest.model_validate(payload)
    assert expected_loc in _locs(caught.value)


@pytest.mark.parametrize(
    ("model", "payload", "loc"),
    [
        (ExternalSegmentCreationResponse, {"status": "ok", "visibility": "SECRET"}, "visibility"),
        (
            UserSegmentUpdateResponse,
            {"status": "ok", "stats": [{"identifier": "a", "sync_result": "DONE"}]},
            "sync_result",
        ),
        (
            UserSegmentUpdateResponse,
            {"status": "ok", "data": [{"type": "FILE_DELIVERY", "content": "x"}]},
            "grouping_key",
        ),
        (FeedDestinationCredentials, {"scheme": "BASIC", "credentials": {}}, "scheme"),
    ],
)
def test_other_enums_and_fields_are_named(
    model: type[BaseModel], payload: dict[str, Any], loc: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(payload)
    assert any(loc in e["loc"] for e in caught.value.errors())


_STATUS_MODELS = [
    m
    for m in MODEL_STRATEGIES
    if "status" in m.model_fields and get_args(m.model_fields["status"].annotation)
]


@pytest.mark.parametrize("model", _STATUS_MODELS, ids=lambda m: m.__name__)
@given(data=st.data())
def test_any_status_outside_the_literal_is_refused(model: type[BaseModel], data: Any) -> None:
    allowed = set(get_args(model.model_fields["status"].annotation))
    valid = data.draw(MODEL_STRATEGIES[model])
    bad = data.draw(st.text(max_size=12).filter(lambda s: s not in allowed))
    wire = to_wire(valid)
    wire["status"] = bad
    with pytest.raises(ValidationError) as caught:
        model.model_validate(wire)
    assert ("status",) in _locs(caught.value)


def test_batch_counts_are_numbers() -> None:
    with pytest.raises(ValidationError) as caught:
        BatchUpdateResponse.model_validate(
            {"status": "OK", "sent_items_in_success": "three", "sent_items_in_error": 0}
        )
    assert _locs(caught.value) == [("sent_items_in_success",)]


@pytest.mark.parametrize("model", list(MODEL_STRATEGIES), ids=lambda m: m.__name__)
@given(data=st.data())
def test_every_generated_instance_round_trips_through_json(
    model: type[BaseModel], data: Any
) -> None:
    instance = data.draw(MODEL_STRATEGIES[model])
    assert type(instance) is model
    wire = json.loads(json.dumps(to_wire(instance)))
    back = model.model_validate(wire)
    assert back == instance
    assert to_wire(back) == wire
