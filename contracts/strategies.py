"""Hypothesis strategies for every wire model, for property tests and the harness.

Each strategy yields valid instances, with optional fields sometimes absent and, where the
wire allows it, unknown extra fields (keys `x_...`). Every instance serializes with
`to_wire` and parses back equal. Not imported by `contracts/__init__`.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any, TypeVar, get_args

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from pydantic import BaseModel

from contracts import delivery as dl
from contracts import gateway as gw
from contracts import identifiers as ids
from contracts import plugin_api as api
from contracts.routes import Route

__all__ = [
    "MODEL_STRATEGIES",
    "batch_delivery_items",
    "batch_update_requests",
    "delivery_items",
    "extra_fields",
    "identifiers",
    "json_values",
    "literal_values",
    "plugin_properties",
    "request_for",
    "response_for",
    "strategy_for",
    "timestamps",
    "user_identifiers",
    "user_profiles",
]

M = TypeVar("M", bound=BaseModel)

# --------------------------------------------------------------------------- scalars

identifiers: SearchStrategy[str] = st.text(alphabet=string.digits, min_size=1, max_size=12)
"""Platform ids: short digit strings, as the platform sends them."""

_names: SearchStrategy[str] = st.text(
    alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=20
)
_texts: SearchStrategy[str] = st.text(max_size=30)

timestamps: SearchStrategy[int] = st.integers(min_value=0, max_value=4_102_444_800_000)
"""Epoch milliseconds up to 2100."""

_numbers: SearchStrategy[int | float] = st.integers(-(2**53), 2**53) | st.floats(
    allow_nan=False, allow_infinity=False
)

json_values: SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | _numbers | _texts,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
"""Any JSON value (no NaN, no infinities)."""

extra_fields: SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.from_regex(r"x_[a-z]{1,8}", fullmatch=True), json_values, max_size=2
)
"""Unknown fields a platform or a plugin may add; their keys never clash with a field."""


def literal_values(literal: Any) -> SearchStrategy[str]:
    """Any value of a `Literal[...]` status or enum type."""
    return st.sampled_from(get_args(literal))


def _model(
    cls: type[M],
    required: Mapping[str, SearchStrategy[Any]],
    optional: Mapping[str, SearchStrategy[Any]] | None = None,
    *,
    extras: bool = True,
) -> SearchStrategy[M]:
    """Instances of `cls` from wire-keyed field strategies; optional keys may be absent."""
    fields = st.fixed_dictionaries(
        dict(required),
        optional={k: st.none() | s for k, s in (optional or {}).items()},
    )
    more = extra_fields if extras else st.just({})
    return st.tuples(fields, more).map(lambda parts: cls.model_validate({**parts[1], **parts[0]}))


# --------------------------------------------------------------------------- identifiers

_technical_identifiers = _model(
    ids.TechnicalIdentifier,
    {
        "type": literal_values(ids.TechnicalIdentifierType),
        "user_agent_id": _names.map(lambda n: f"mob:ios:raw:{n}"),
        "registry_id": identifiers,
        "creation_ts": timestamps,
        "last_activity_ts": timestamps,
    },
    {"expiration_ts": timestamps},
)

_user_points = _model(
    ids.UserPointIdentifier,
    {"type": st.just("USER_POINT"), "user_point_id": st.uuids().map(str)},
    {"creation_ts": timestamps},
)
_user_accounts = _model(
    ids.UserAccountIdentifier,
    {"type": st.just("USER_ACCOUNT"), "user_account_id": _names, "creation_ts": timestamps},
    {"compartment_id": st.integers(1, 10**6) | identifiers},
)
_user_emails = _model(
    ids.UserEmailIdentifier,
    {
        "type": st.just("USER_EMAIL"),
        "hash": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        "creation_ts": timestamps,
        "last_activity_ts": timestamps,
        "providers": st.lists(json_values, max_size=2),
    },
    {"email": st.emails(), "operator": _names},
)
_user_agent_providers = _model(
    ids.UserAgentProvider,
    {"technical_name": _names},
    {"creation_ts": timestamps, "last_activity_ts": timestamps, "expiration_ts": timestamps},
)
_user_agent_mappings = _model(
    ids.UserAgentMapping,
    {"user_agent_id": _names, "realm_name": _names, "last_activity_ts": timestamps},
)
_user_agents = _model(
    ids.UserAgentIdentifier,
    {
        "type": st.just("USER_AGENT"),
        "vector_id": identifiers.map(lambda n: f"vec:{n}"),
        "creation_ts": timestamps,
        "last_activity_ts": timestamps,
        "providers": st.lists(_user_agent_providers, max_size=2),
        "mappings": st.lists(_user_agent_mappings, max_size=2),
    },
    {"device": json_values},
)
_user_device_points = _model(
    ids.UserDevicePointIdentifier,
    {
        "type": st.just("USER_DEVICE_POINT"),
        "creation_ts": timestamps,
        "last_activity_ts": timestamps,
        "technical_identifiers": st.lists(_technical_identifiers, max_size=3),
    },
    {"id": identifiers, "device": json_values},
)

user_identifiers: SearchStrategy[BaseModel] = st.one_of(
    _user_points, _user_accounts, _user_emails, _user_agents, _user_device_points
)
"""Any one of the five user identifier kinds."""

user_profiles: SearchStrategy[ids.UserProfile] = _model(
    ids.UserProfile,
    {
        "$compartment_id": st.integers(1, 10**6) | identifiers,
        "$creation_ts": timestamps,
        "$last_modified_ts": timestamps,
    },
    {"$user_account_id": _names, "$expiration_ts": timestamps},
)

# --------------------------------------------------------------------------- delivery


def batch_delivery_items(
    content: SearchStrategy[Any] = json_values,
) -> SearchStrategy[dl.BatchDeliveryItem[Any]]:
    """`BATCH_DELIVERY` items whose content comes from `content` (any JSON by default)."""
    return _model(
        dl.BatchDeliveryItem[Any],
        {"type": st.just("BATCH_DELIVERY"), "content": content, "grouping_key": _names},
    )


_file_delivery_items = _model(
    dl.FileDeliveryItem,
    {
        "type": st.just("FILE_DELIVERY"),
        "content": _texts,
        "grouping_key": _names,
        "destination_token": _names,
    },
)

delivery_items: SearchStrategy[BaseModel] = st.one_of(batch_delivery_items(), _file_delivery_items)
"""Either delivery kind."""

_stat_tags = _model(dl.StatTag, {"key": _names, "value": _texts})
_update_stats = _model(
    dl.UpdateStat,
    {"identifier": _names, "sync_result": literal_values(dl.SyncResult)},
    {"tags": st.lists(_stat_tags, max_size=2)},
)
_batch_contexts = _model(
    dl.BatchContext,
    {
        "endpoint": st.just("/v1/user_segment_update"),
        "feed_id": identifiers,
        "feed_session_id": identifiers,
        "segment_id": identifiers,
        "datamart_id": identifiers,
        "grouping_key": _names,
    },
    {"feed_destination_id": identifiers},
)

# --------------------------------------------------------------------------- gateway

_identifying_resources: SearchStrategy[BaseModel] = st.one_of(
    _model(
        gw.IdentifyingAccount,
        {"type": st.just("USER_ACCOUNT")},
        {"compartment_id": st.integers(1, 10**6) | identifiers},
    ),
    _model(gw.IdentifyingEmail, {"type": st.just("USER_EMAIL")}),
    _model(
        gw.IdentifyingDeviceTechnicalId,
        {
            "type": st.just("USER_DEVICE_TECHNICAL_ID"),
            "registry_type": literal_values(ids.TechnicalIdentifierType),
        },
        {"registry_id": identifiers},
    ),
    _model(
        gw.IdentifyingProfile,
        {"type": st.just("USER_PROFILE")},
        {"compartment_id": st.integers(1, 10**6) | identifiers},
    ),
    _model(
        gw.OtherIdentifyingResource,
        {"type": st.sampled_from(["USER_DEVICE_POINT", "USER_POINT", "USER_AGENT"])},
    ),
)

_VALUE_STRATEGIES: dict[str, SearchStrategy[BaseModel]] = {
    "ASSET": _model(
        gw.AssetFilePropertyValue,
        {},
        {
            "original_file_name": _texts,
            "original_name": _texts,
            "asset_id": identifiers,
            "file_path": _texts,
            "file": _texts,
        },
    ),
    "ASSET_FOLDER": _model(
        gw.AssetFolderPropertyValue,
        {},
        {"original_name": _texts, "asset_id": identifiers, "path": _texts},
    ),
    "DATA_FILE": _model(gw.DataFilePropertyValue, {}, {"uri": _texts, "last_modified": timestamps}),
    "URL": _model(gw.UrlPropertyValue, {}, {"url": _texts}),
    "STRING": _model(gw.StringPropertyValue, {}, {"value": _texts}),
    "AD_LAYOUT": _model(gw.AdLayoutPropertyValue, {}, {"id": identifiers, "version": identifiers}),
    "STYLE_SHEET": _model(
        gw.StyleSheetPropertyValue, {}, {"id": identifiers, "version": identifiers}
    ),
    "PIXEL_TAG": _model(gw.PixelTagPropertyValue, {}, {"value": _texts}),
    "DOUBLE": _model(
        gw.DoublePropertyValue, {}, {"value": st.floats(allow_nan=False, allow_infinity=False)}
    ),
    "BOOLEAN": _model(gw.BooleanPropertyValue, {}, {"value": st.booleans()}),
    "INT": _model(gw.IntPropertyValue, {}, {"value": st.integers(-(2**53), 2**53)}),
    "RECOMMENDER": _model(gw.RecommenderPropertyValue, {}, {"recommender_id": identifiers}),
    "NATIVE_DATA": _model(
        gw.NativeDataPropertyValue,
        {},
        {"required_display": st.booleans(), "type": st.integers(0, 20), "value": _texts},
    ),
    "NATIVE_TITLE": _model(
        gw.NativeTitlePropertyValue, {}, {"required_display": st.booleans(), "value": _texts}
    ),
    "NATIVE_IMAGE": _model(
        gw.NativeImagePropertyValue,
        {},
        {
            "required_display": st.booleans(),
            "width": st.integers(0, 4000),
            "height": st.integers(0, 4000),
            "type": st.integers(0, 20),
            "original_file_name": _texts,
            "asset_id": identifiers,
            "file_path": _texts,
        },
    ),
    "IDENTIFYING_RESOURCE_LIST": _model(
        gw.IdentifyingResourceListPropertyValue,
        {"identifying_resources": st.lists(_identifying_resources, max_size=3)},
    ),
}
_VALUE_STRATEGIES["ASSET_FILE"] = _VALUE_STRATEGIES["ASSET"]

_property_common: dict[str, SearchStrategy[Any]] = {
    "origin": literal_values(gw.PropertyOrigin),
    "writable": st.booleans(),
    "deletable": st.booleans(),
}


def _typed_property(kind: str) -> SearchStrategy[Any]:
    return _model(
        _PROPERTY_CLASSES[kind],
        {
            "technical_name": _names,
            "property_type": st.just(kind),
            "value": _VALUE_STRATEGIES[kind],
        },
        _property_common,
    )


_PROPERTY_CLASSES: dict[str, type[BaseModel]] = {
    "ASSET": gw.AssetFileProperty,
    "ASSET_FILE": gw.AssetFileProperty,
    "ASSET_FOLDER": gw.AssetFolderProperty,
    "DATA_FILE": gw.DataFileProperty,
    "URL": gw.UrlProperty,
    "STRING": gw.StringProperty,
    "AD_LAYOUT": gw.AdLayoutProperty,
    "STYLE_SHEET": gw.StyleSheetProperty,
    "PIXEL_TAG": gw.PixelTagProperty,
    "DOUBLE": gw.DoubleProperty,
    "BOOLEAN": gw.BooleanProperty,
    "INT": gw.IntProperty,
    "RECOMMENDER": gw.RecommenderProperty,
    "NATIVE_DATA": gw.NativeDataProperty,
    "NATIVE_TITLE": gw.NativeTitleProperty,
    "NATIVE_IMAGE": gw.NativeImageProperty,
    "IDENTIFYING_RESOURCE_LIST": gw.IdentifyingResourceListProperty,
}

_other_properties = _model(
    gw.OtherProperty,
    {
        "technical_name": _names,
        "property_type": st.sampled_from(["RECORD_ID", "DATAMART", "QUERY"]),
        "value": json_values,
    },
    _property_common,
)

plugin_properties: SearchStrategy[Any] = st.one_of(
    *(_typed_property(kind) for kind in gw.PROPERTY_TYPES), _other_properties
)
"""A property of any `property_type` the SDK knows, or of another one."""

_feeds = _model(
    gw.AudienceSegmentExternalFeed,
    {
        "id": identifiers,
        "plugin_id": identifiers,
        "organisation_id": identifiers,
        "group_id": _names,
        "artifact_id": _names,
        "version_id": identifiers,
    },
    {
        "selected_identifying_resources": st.lists(_identifying_resources, max_size=3),
        "created_by": identifiers,
    },
)
_segments = _model(
    gw.AudienceSegmentResource,
    {
        "id": identifiers,
        "organisation_id": identifiers,
        "name": _texts,
        "datamart_id": identifiers,
        "persisted": st.booleans(),
    },
    {
        "short_description": _texts,
        "technical_name": _names,
        "default_ttl": st.integers(0, 10**10),
        "provider_name": _names,
    },
)
_credentials = _model(
    gw.FeedDestinationCredentials,
    {
        "scheme": literal_values(gw.CredentialsScheme),
        "credentials": st.dictionaries(_names, json_values, max_size=3),
    },
)
_web_domains = _model(
    gw.WebDomain,
    {"id": identifiers, "organisation_id": identifiers, "name": _texts, "sld_name": _names},
    {"token": _names, "user_id_max_age": st.integers(0, 10**8), "cookie_matching": st.booleans()},
)
_realm_selections = _model(
    gw.UserAgentIdentifierRealmSelection,
    {"id": identifiers, "datamart_id": identifiers, "realm_type": literal_values(gw.RealmType)},
    {"matching": st.booleans(), "url": _texts, "web_domain": _web_domains},
)

# --------------------------------------------------------------------------- plugin API

_feed_request_fields: dict[str, SearchStrategy[Any]] = {
    "feed_id": identifiers,
    "datamart_id": identifiers,
    "segment_id": identifiers,
}
_opt_destination = {"feed_destination_id": identifiers}
_message = {"message": _texts}


_batch_lines: SearchStrategy[Any] = json_values | json_values.map(json.dumps)
"""What the SDK's own tests put in `batch_content`: objects and JSON strings."""


def batch_update_requests(
    content: SearchStrategy[Any] = _batch_lines,
) -> SearchStrategy[api.BatchUpdateRequest[Any]]:
    """`batch_update` bodies; items are JSON values or JSON text (or `content` of yours)."""
    return _model(
        api.BatchUpdateRequest[Any],
        {
            "batch_content": st.lists(content, max_size=5),
            "ts": timestamps,
            "context": _batch_contexts,
        },
    )


_enum_entries = _model(api.EnumEntry, {"label": _texts, "value": _names})
_dynamic_values = _model(
    api.DynamicPropertyValues,
    {"property_technical_name": _names, "enum": st.lists(_enum_entries, max_size=3)},
)
_auth_status_data = _model(api.AuthenticationStatusData, {}, {"login_url": _texts})

MODEL_STRATEGIES: Mapping[type[BaseModel], SearchStrategy[Any]] = {
    ids.UserPointIdentifier: _user_points,
    ids.UserAccountIdentifier: _user_accounts,
    ids.UserEmailIdentifier: _user_emails,
    ids.UserAgentIdentifier: _user_agents,
    ids.UserAgentMapping: _user_agent_mappings,
    ids.UserAgentProvider: _user_agent_providers,
    ids.UserDevicePointIdentifier: _user_device_points,
    ids.TechnicalIdentifier: _technical_identifiers,
    ids.UserProfile: user_profiles,
    dl.BatchDeliveryItem[Any]: batch_delivery_items(),
    dl.FileDeliveryItem: _file_delivery_items,
    dl.StatTag: _stat_tags,
    dl.UpdateStat: _update_stats,
    dl.BatchContext: _batch_contexts,
    gw.AudienceSegmentExternalFeed: _feeds,
    gw.AudienceSegmentResource: _segments,
    gw.FeedDestinationCredentials: _credentials,
    gw.WebDomain: _web_domains,
    gw.UserAgentIdentifierRealmSelection: _realm_selections,
    gw.OtherProperty: _other_properties,
    **{cls: _typed_property(kind) for kind, cls in _PROPERTY_CLASSES.items() if kind != "ASSET"},
    api.ExternalSegmentCreationRequest: _model(
        api.ExternalSegmentCreationRequest, _feed_request_fields, _opt_destination
    ),
    api.ExternalSegmentCreationResponse: _model(
        api.ExternalSegmentCreationResponse,
        {
            "status": literal_values(api.CreationStatus),
            "visibility": literal_values(api.Visibility),
        },
        _message,
    ),
    api.ExternalSegmentConnectionRequest: _model(
        api.ExternalSegmentConnectionRequest, _feed_request_fields, _opt_destination
    ),
    api.ExternalSegmentConnectionResponse: _model(
        api.ExternalSegmentConnectionResponse,
        {"status": literal_values(api.ConnectionStatus)},
        _message,
    ),
    api.UserSegmentUpdateRequest: _model(
        api.UserSegmentUpdateRequest,
        {
            **_feed_request_fields,
            "session_id": identifiers,
            "user_identifiers": st.lists(user_identifiers, max_size=5),
            "user_profiles": st.lists(user_profiles, max_size=2),
            "ts": timestamps,
            "operation": literal_values(api.UpdateOperation),
        },
        {**_opt_destination, "preset_id": identifiers},
    ),
    api.UserSegmentUpdateResponse: _model(
        api.UserSegmentUpdateResponse,
        {"status": literal_values(api.UpdateStatus)},
        {
            "data": st.lists(delivery_items, max_size=3),
            "stats": st.lists(_update_stats, max_size=3),
            **_message,
            "next_msg_delay_in_ms": st.integers(0, 10**7)
            | st.floats(0, 1e7, allow_nan=False, allow_infinity=False),
        },
    ),
    api.BatchUpdateRequest[Any]: batch_update_requests(),
    api.BatchUpdateResponse: _model(
        api.BatchUpdateResponse,
        {
            "status": literal_values(api.BatchStatus),
            "sent_items_in_success": st.integers(0, 10**5),
            "sent_items_in_error": st.integers(0, 10**5),
        },
        {**_message, "next_msg_delay_in_ms": st.integers(0, 10**7)},
    ),
    api.TroubleshootRequest: _model(
        api.TroubleshootRequest,
        {
            **_feed_request_fields,
            "action": st.just("FETCH_DESTINATION_AUDIENCE") | _names,
        },
        _opt_destination,
    ),
    api.TroubleshootResponse: _model(
        api.TroubleshootResponse,
        {"status": literal_values(api.TroubleshootStatus)},
        {**_message, "data": json_values},
    ),
    api.AuthenticationStatusQueryRequest: _model(
        api.AuthenticationStatusQueryRequest,
        {"datamart_id": identifiers, "plugin_version_id": identifiers, "user_id": identifiers},
        {"segment_id": identifiers, "properties": st.lists(plugin_properties, max_size=3)},
    ),
    api.AuthenticationStatusData: _auth_status_data,
    api.AuthenticationStatusQueryResponse: _model(
        api.AuthenticationStatusQueryResponse,
        {"status": literal_values(api.AuthenticationStatusQueryStatus)},
        {**_message, "data": _auth_status_data},
    ),
    api.AuthenticationRequest: _model(
        api.AuthenticationRequest,
        {"user_id": identifiers, "plugin_version_id": identifiers},
        {**_opt_destination, "params": st.dictionaries(_names, _texts, max_size=3)},
    ),
    api.AuthenticationResponse: _model(
        api.AuthenticationResponse,
        {"status": literal_values(api.AuthenticationResponseStatus)},
        _message,
    ),
    api.LogoutRequest: _model(
        api.LogoutRequest,
        {"user_id": identifiers, "plugin_version_id": identifiers, "datamart_id": identifiers},
    ),
    api.LogoutResponse: _model(
        api.LogoutResponse, {"status": literal_values(api.LogoutStatus)}, _message
    ),
    api.DynamicPropertyValuesQueryRequest: _model(
        api.DynamicPropertyValuesQueryRequest,
        {"datamart_id": identifiers, "user_id": identifiers},
        {
            "segment_id": identifiers,
            "properties": st.lists(plugin_properties, max_size=3),
            **_opt_destination,
        },
    ),
    api.EnumEntry: _enum_entries,
    api.DynamicPropertyValues: _dynamic_values,
    api.DynamicPropertyValuesQueryResponse: _model(
        api.DynamicPropertyValuesQueryResponse,
        {"status": literal_values(api.DynamicPropertyValuesStatus)},
        {**_message, "data": st.lists(_dynamic_values, max_size=2)},
    ),
    api.TestAuthenticationRequest: _model(
        api.TestAuthenticationRequest, {"feed_destination_id": identifiers}
    ),
    api.TestAuthenticationResponse: _model(
        api.TestAuthenticationResponse,
        {"status": literal_values(api.TestAuthenticationStatus)},
        _message,
    ),
    api.OAuthRedirectUrlRequest: _model(
        api.OAuthRedirectUrlRequest,
        {"feed_destination_id": identifiers, "plugin_version_id": identifiers},
    ),
    api.OAuthRedirectUrlResponse: _model(
        api.OAuthRedirectUrlResponse,
        {
            "login_url": identifiers.map(
                lambda d: f"https://partner.example/oauth/authorize?feed_destination_id={d}"
            )
        },
    ),
    api.LogLevel: _model(
        api.LogLevel, {"level": st.sampled_from(["ERROR", "WARN", "INFO", "DEBUG", "SILLY"])}
    ),
    api.PluginMetadata: _model(
        api.PluginMetadata,
        {},
        {
            "runtime": st.just("node"),
            "runtime_version": _names,
            "group_id": _names,
            "artifact_id": _names,
            "plugin_type": st.just("AUDIENCE_SEGMENT_EXTERNAL_FEED"),
            "plugin_version": _names,
            "plugin_build": _names,
            "dependencies": st.dictionaries(_names, _names, max_size=3),
        },
    ),
    api.SdkError: _model(api.SdkError, {"status": st.just("error"), "message": _texts}),
    api.MissingBodyError: _model(api.MissingBodyError, {"error": st.just("Missing request body")}),
    api.ThrottledResponse: _model(api.ThrottledResponse, {"status": st.just("RETRY")}, _message),
}
"""A strategy for each concrete wire model."""


def strategy_for(model: type[M]) -> SearchStrategy[M]:
    """The strategy of `model`; KeyError naming the model when it has none."""
    try:
        strategy: SearchStrategy[M] = MODEL_STRATEGIES[model]
    except KeyError:
        raise KeyError(f"no strategy for {model.__name__}; see MODEL_STRATEGIES") from None
    return strategy


def request_for(route: Route) -> SearchStrategy[BaseModel]:
    """Valid request bodies of `route`; ValueError for routes that take no body."""
    if route.request_model is None:
        raise ValueError(f"route {route.name!r} takes no request body")
    return strategy_for(route.request_model)


def response_for(route: Route) -> SearchStrategy[BaseModel]:
    """Valid answer bodies of `route`; ValueError for routes that answer no body."""
    if route.response_model is None:
        raise ValueError(f"route {route.name!r} answers no body")
    return strategy_for(route.response_model)
