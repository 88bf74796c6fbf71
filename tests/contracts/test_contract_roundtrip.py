"""Realistic payloads of every route parse and serialize back unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest
from contract_payloads import FIVE_IDENTIFIERS, REQUESTS, RESPONSES, USER_PROFILE

from contracts import (
    BatchDeliveryItem,
    BatchUpdateRequest,
    ExternalSegmentCreationResponse,
    FileDeliveryItem,
    TroubleshootResponse,
    UserAccountIdentifier,
    UserAgentIdentifier,
    UserDevicePointIdentifier,
    UserEmailIdentifier,
    UserPointIdentifier,
    UserProfile,
    UserSegmentUpdateRequest,
    UserSegmentUpdateResponse,
    route,
    to_wire,
)


def _cases(table: dict[str, list[dict[str, Any]]]) -> list[Any]:
    return [
        pytest.param(name, payload, id=f"{name}-{i}")
        for name, payloads in table.items()
        for i, payload in enumerate(payloads)
    ]


@pytest.mark.parametrize(("name", "payload"), _cases(REQUESTS))
def test_request_payload_round_trips(name: str, payload: dict[str, Any]) -> None:
    model = route(name).request_model
    assert model is not None
    parsed = model.model_validate(json.loads(json.dumps(payload)))
    assert to_wire(parsed) == payload


@pytest.mark.parametrize(("name", "payload"), _cases(RESPONSES))
def test_response_payload_round_trips(name: str, payload: dict[str, Any]) -> None:
    model = route(name).response_model
    assert model is not None
    parsed = model.model_validate(json.loads(json.dumps(payload)))
    assert to_wire(parsed) == payload
    assert json.loads(parsed.model_dump_json()) == payload


def test_every_route_with_a_body_has_a_realistic_payload() -> None:
    from contracts import ROUTES

    with_request = {r.name for r in ROUTES if r.request_model is not None}
    with_response = {r.name for r in ROUTES if r.response_model is not None}
    assert with_request == set(REQUESTS)
    assert with_response == set(RESPONSES)


def test_update_with_one_identifier_of_each_kind_parses_to_each_class() -> None:
    request = UserSegmentUpdateRequest.model_validate(REQUESTS["user_segment_update"][0])
    kinds = [type(identifier) for identifier in request.user_identifiers]
    assert kinds == [
        UserPointIdentifier,
        UserAccountIdentifier,
        UserEmailIdentifier,
        UserAgentIdentifier,
        UserDevicePointIdentifier,
    ]
    device = request.user_identifiers[4]
    assert isinstance(device, UserDevicePointIdentifier)
    assert device.technical_identifiers[0].type == "MOBILE_ADVERTISING_ID"
    assert device.technical_identifiers[1].expiration_ts == 1593118667529
    assert request.user_profiles[0].compartment_id == "1623"
    assert request.user_profiles[0].model_extra == {
        "first_name": "Ada",
        "loyalty": {"tier": "gold"},
    }


def test_sdk_test_request_without_profiles_nor_user_point_creation_ts_is_accepted() -> None:
    # The SDK's BatchedAudienceFeedConnector test sends exactly this shape.
    user_point = {k: v for k, v in FIVE_IDENTIFIERS[0].items() if k != "creation_ts"}
    request = UserSegmentUpdateRequest.model_validate(
        {
            "feed_id": "42",
            "session_id": "43",
            "datamart_id": "1023",
            "segment_id": "451256",
            "ts": 1254412,
            "operation": "UPSERT",
            "user_identifiers": [user_point, *FIVE_IDENTIFIERS[1:4]],
        }
    )
    assert request.user_profiles == []
    first = request.user_identifiers[0]
    assert isinstance(first, UserPointIdentifier)
    assert first.creation_ts is None


@pytest.mark.parametrize("payload", REQUESTS["batch_update"][:2], ids=["strings", "objects"])
def test_batch_content_goes_through_as_is(payload: dict[str, Any]) -> None:
    request = BatchUpdateRequest[Any].model_validate(payload)
    assert request.batch_content == payload["batch_content"]
    assert [type(item) for item in request.batch_content] == [
        type(item) for item in payload["batch_content"]
    ]
    assert request.context.grouping_key == "451256_42"


def test_typed_batch_content_is_validated() -> None:
    request = BatchUpdateRequest[str].model_validate(REQUESTS["batch_update"][0])
    assert request.batch_content[0] == '{"uuid":"1234","user_list":123}'
    with pytest.raises(ValueError, match="batch_content"):
        BatchUpdateRequest[str].model_validate(REQUESTS["batch_update"][1])


def test_delivery_items_are_told_apart_by_type() -> None:
    batched = UserSegmentUpdateResponse.model_validate(RESPONSES["user_segment_update"][0])
    filed = UserSegmentUpdateResponse.model_validate(RESPONSES["user_segment_update"][1])
    assert batched.data is not None
    assert filed.data is not None
    assert all(isinstance(item, BatchDeliveryItem) for item in batched.data)
    assert batched.data[1].content == "my_string"
    (item,) = filed.data
    assert isinstance(item, FileDeliveryItem)
    assert item.destination_token == "sftp://partner/inbox"


def test_creation_visibility_defaults_to_public_and_is_sent() -> None:
    answer = ExternalSegmentCreationResponse.model_validate({"status": "ok"})
    assert answer.visibility == "PUBLIC"
    assert to_wire(answer) == {"status": "ok", "visibility": "PUBLIC"}


def test_unset_optional_fields_are_left_out_but_nulls_inside_data_are_kept() -> None:
    answer = TroubleshootResponse(status="ok", data={"match_rate": None})
    assert to_wire(answer) == {"status": "ok", "data": {"match_rate": None}}
    assert "message" not in answer.model_dump()


def test_user_profile_uses_dollar_keys_on_the_wire_and_plain_names_in_python() -> None:
    profile = UserProfile(compartment_id=3, creation_ts=1, last_modified_ts=2)
    assert to_wire(profile) == {"$compartment_id": 3, "$creation_ts": 1, "$last_modified_ts": 2}
    assert profile.model_dump() == to_wire(profile)
    parsed = UserProfile.model_validate(USER_PROFILE)
    assert parsed.user_account_id == "914eb2aa50cef7f3a8705b6bb54e50bb"
    assert parsed.expiration_ts is None
    assert to_wire(parsed) == USER_PROFILE


def test_compartment_id_keeps_its_wire_type() -> None:
    as_number = UserAccountIdentifier.model_validate(FIVE_IDENTIFIERS[1])
    as_text = UserAccountIdentifier.model_validate({**FIVE_IDENTIFIERS[1], "compartment_id": "12"})
    assert as_number.compartment_id == 1623
    assert as_text.compartment_id == "12"
