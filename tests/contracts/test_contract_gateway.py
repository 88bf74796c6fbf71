"""Plugin gateway resources: feeds, properties, segments, credentials, realms, envelopes."""

from __future__ import annotations

from typing import Any

import pytest
from contract_payloads import STRING_PROPERTY
from pydantic import TypeAdapter, ValidationError

from contracts import (
    PROPERTY_TYPES,
    AdLayoutProperty,
    AssetFileProperty,
    AssetFolderProperty,
    AudienceSegmentExternalFeed,
    AudienceSegmentResource,
    BooleanProperty,
    DataFileProperty,
    DataListResponse,
    DataResponse,
    DoubleProperty,
    FeedDestinationCredentials,
    IdentifyingAccount,
    IdentifyingDeviceTechnicalId,
    IdentifyingEmail,
    IdentifyingProfile,
    IdentifyingResourceListProperty,
    IntProperty,
    NativeDataProperty,
    NativeImageProperty,
    NativeTitleProperty,
    OtherIdentifyingResource,
    OtherProperty,
    PixelTagProperty,
    PluginProperty,
    RecommenderProperty,
    StringProperty,
    StyleSheetProperty,
    UrlProperty,
    UserAgentIdentifierRealmSelection,
    find_property,
    find_string_property,
    string_property,
    to_wire,
)

PROPERTIES = TypeAdapter(list[PluginProperty])

# The SDK's test fixture for GET .../properties.
SDK_PROPERTIES_RESPONSE: dict[str, Any] = {
    "status": "ok",
    "count": 1,
    "data": [
        {
            "technical_name": "hello_world",
            "value": {"value": "Yay"},
            "property_type": "STRING",
            "origin": "PLUGIN",
            "writable": True,
            "deletable": False,
        }
    ],
}

EXPECTED_CLASS = {
    "ASSET": (AssetFileProperty, {"asset_id": "1", "file_path": "/a.png"}),
    "ASSET_FILE": (AssetFileProperty, {"original_file_name": "a.png"}),
    "ASSET_FOLDER": (AssetFolderProperty, {"path": "/assets"}),
    "DATA_FILE": (DataFileProperty, {"uri": "mics://data_file/x", "last_modified": 1}),
    "URL": (UrlProperty, {"url": "https://partner.example"}),
    "STRING": (StringProperty, {"value": "abc"}),
    "AD_LAYOUT": (AdLayoutProperty, {"id": "1", "version": "2"}),
    "STYLE_SHEET": (StyleSheetProperty, {"id": "1", "version": "2"}),
    "PIXEL_TAG": (PixelTagProperty, {"value": "<img>"}),
    "DOUBLE": (DoubleProperty, {"value": 1.5}),
    "BOOLEAN": (BooleanProperty, {"value": True}),
    "INT": (IntProperty, {"value": 3}),
    "RECOMMENDER": (RecommenderProperty, {"recommender_id": "9"}),
    "NATIVE_DATA": (NativeDataProperty, {"required_display": True, "type": 2, "value": "x"}),
    "NATIVE_TITLE": (NativeTitleProperty, {"value": "t"}),
    "NATIVE_IMAGE": (NativeImageProperty, {"width": 10, "height": 20, "asset_id": "3"}),
    "IDENTIFYING_RESOURCE_LIST": (
        IdentifyingResourceListProperty,
        {"identifying_resources": [{"type": "USER_EMAIL"}]},
    ),
}


def _prop(kind: str, value: Any, name: str = "p") -> dict[str, Any]:
    return {
        "technical_name": name,
        "value": value,
        "property_type": kind,
        "origin": "PLUGIN_STATIC",
        "writable": False,
        "deletable": False,
    }


def test_every_sdk_property_type_is_covered() -> None:
    assert set(PROPERTY_TYPES) == set(EXPECTED_CLASS)


@pytest.mark.parametrize("kind", list(EXPECTED_CLASS))
def test_each_property_type_parses_to_its_class_and_back(kind: str) -> None:
    cls, value = EXPECTED_CLASS[kind]
    payload = _prop(kind, value)
    (parsed,) = PROPERTIES.validate_python([payload])
    assert type(parsed) is cls
    assert to_wire(parsed) == payload


def test_property_values_are_typed_per_kind() -> None:
    with pytest.raises(ValidationError) as caught:
        PROPERTIES.validate_python([_prop("INT", {"value": "three"})])
    assert "value" in str(caught.value)
    with pytest.raises(ValidationError):
        PROPERTIES.validate_python([_prop("BOOLEAN", {"value": "maybe"})])


def test_unknown_property_type_is_kept_as_other_property() -> None:
    payload = _prop("RECORD_ID", {"id": "42", "type": "segment"})
    (parsed,) = PROPERTIES.validate_python([payload])
    assert isinstance(parsed, OtherProperty)
    assert parsed.value == {"id": "42", "type": "segment"}
    assert to_wire(parsed) == payload


def test_property_origin_is_checked() -> None:
    with pytest.raises(ValidationError) as caught:
        PROPERTIES.validate_python([{**STRING_PROPERTY, "origin": "USER"}])
    assert "origin" in str(caught.value)


def test_sdk_properties_envelope_and_find_string_property() -> None:
    envelope = DataListResponse[PluginProperty].model_validate(SDK_PROPERTIES_RESPONSE)
    assert envelope.count == 1
    assert find_string_property(envelope.data, "hello_world") == "Yay"
    assert find_string_property(envelope.data, "missing") is None
    assert to_wire(envelope) == SDK_PROPERTIES_RESPONSE


def test_find_string_property_ignores_other_types_and_empty_values() -> None:
    props = PROPERTIES.validate_python(
        [
            _prop("URL", {"url": "https://x"}, name="endpoint"),
            _prop("STRING", {}, name="segment_name"),
            STRING_PROPERTY,
        ]
    )
    assert find_string_property(props, "endpoint") is None
    assert find_string_property(props, "segment_name") is None
    assert find_string_property(props, "partner_account_id") == "acc-1"
    found = find_property(props, "endpoint")
    assert isinstance(found, UrlProperty)


def test_string_property_builds_what_the_gateway_serves() -> None:
    built = string_property("partner_account_id", "acc-1")
    assert to_wire(built) == STRING_PROPERTY


def test_feed_with_selected_identifying_resources() -> None:
    payload = {
        "id": "74",
        "plugin_id": "984",
        "organisation_id": "95",
        "group_id": "com.mediarithmics.audience-feed",
        "artifact_id": "awesome-audience-feed",
        "version_id": "1254",
        "selected_identifying_resources": [
            {"type": "USER_EMAIL"},
            {"type": "USER_ACCOUNT", "compartment_id": "1623"},
            {"type": "USER_DEVICE_TECHNICAL_ID", "registry_type": "MOBILE_ADVERTISING_ID"},
            {"type": "USER_PROFILE"},
            {"type": "USER_DEVICE_POINT"},
        ],
        "created_by": "1001",
    }
    feed = DataResponse[AudienceSegmentExternalFeed].model_validate(
        {"status": "ok", "data": payload}
    )
    resources = feed.data.selected_identifying_resources
    assert resources is not None
    assert [type(r) for r in resources] == [
        IdentifyingEmail,
        IdentifyingAccount,
        IdentifyingDeviceTechnicalId,
        IdentifyingProfile,
        OtherIdentifyingResource,
    ]
    assert to_wire(feed.data) == payload


def test_sdk_test_feed_without_resources_and_bad_registry_type() -> None:
    feed = AudienceSegmentExternalFeed.model_validate(
        {
            "id": "74",
            "plugin_id": "984",
            "organisation_id": "95",
            "group_id": "g",
            "artifact_id": "a",
            "version_id": "1254",
        }
    )
    assert feed.selected_identifying_resources is None
    with pytest.raises(ValidationError) as caught:
        AudienceSegmentExternalFeed.model_validate(
            {
                **to_wire(feed),
                "selected_identifying_resources": [
                    {"type": "USER_DEVICE_TECHNICAL_ID", "registry_type": "IMEI"}
                ],
            }
        )
    assert "registry_type" in str(caught.value)


def test_segment_resource_and_missing_persisted() -> None:
    payload = {
        "id": "451256",
        "organisation_id": "95",
        "name": "Buyers",
        "short_description": "people who bought",
        "technical_name": "buyers",
        "default_ttl": 2592000000,
        "datamart_id": "1023",
        "provider_name": "mediarithmics",
        "persisted": True,
    }
    assert to_wire(AudienceSegmentResource.model_validate(payload)) == payload
    minimal = {"id": "1", "organisation_id": "2", "name": "n", "datamart_id": "3"}
    with pytest.raises(ValidationError) as caught:
        AudienceSegmentResource.model_validate(minimal)
    assert [e["loc"] for e in caught.value.errors()] == [("persisted",)]


def test_feed_destination_credentials() -> None:
    payload = {"scheme": "OAUTH2", "credentials": {"refresh_token": "r-1"}}
    parsed = DataResponse[FeedDestinationCredentials].model_validate(
        {"status": "ok", "data": payload}
    )
    assert parsed.data.credentials["refresh_token"] == "r-1"
    assert to_wire(parsed.data) == payload


def test_realm_selections_list() -> None:
    payload = {
        "status": "ok",
        "count": 2,
        "data": [
            {
                "id": "1",
                "datamart_id": "1023",
                "realm_type": "WEB_DOMAIN",
                "web_domain": {
                    "id": "5",
                    "organisation_id": "95",
                    "name": "Shop",
                    "sld_name": "shop.example",
                },
            },
            {"id": "2", "datamart_id": "1023", "realm_type": "MOBILE"},
        ],
    }
    parsed = DataListResponse[UserAgentIdentifierRealmSelection].model_validate(payload)
    assert parsed.data[0].web_domain is not None
    assert parsed.data[0].web_domain.sld_name == "shop.example"
    assert to_wire(parsed) == payload
    with pytest.raises(ValidationError):
        UserAgentIdentifierRealmSelection.model_validate(
            {"id": "3", "datamart_id": "1", "realm_type": "COOKIE"}
        )


def test_envelope_status_is_ok_or_error() -> None:
    with pytest.raises(ValidationError) as caught:
        DataResponse[FeedDestinationCredentials].model_validate(
            {"status": "fine", "data": {"scheme": "API_TOKEN", "credentials": {}}}
        )
    assert [e["loc"] for e in caught.value.errors()] == [("status",)]
