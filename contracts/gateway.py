"""The plugin gateway's resources and JSON envelopes (what a plugin reads from the platform).

Shapes follow the SDK's `AudienceSegmentInterface.ts`, `PluginPropertyInterface.ts`,
`ValueInterface.ts`, `FeedDestinationInterface.ts` and the realm selection interface.
Property values and identifying resources of a kind the SDK does not know are kept, loosely.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args

from pydantic import Discriminator, Tag

from contracts._wire import WireModel
from contracts.identifiers import TechnicalIdentifierType

__all__ = [
    "PROPERTY_TYPES",
    "AdLayoutProperty",
    "AdLayoutPropertyValue",
    "AssetFileProperty",
    "AssetFilePropertyValue",
    "AssetFolderProperty",
    "AssetFolderPropertyValue",
    "AudienceSegmentExternalFeed",
    "AudienceSegmentResource",
    "BooleanProperty",
    "BooleanPropertyValue",
    "CredentialsScheme",
    "DataFileProperty",
    "DataFilePropertyValue",
    "DataListResponse",
    "DataResponse",
    "DoubleProperty",
    "DoublePropertyValue",
    "FeedDestinationCredentials",
    "GatewayStatus",
    "IdentifyingAccount",
    "IdentifyingDeviceTechnicalId",
    "IdentifyingEmail",
    "IdentifyingProfile",
    "IdentifyingResource",
    "IdentifyingResourceListProperty",
    "IdentifyingResourceListPropertyValue",
    "IdentifyingResourceType",
    "IntProperty",
    "IntPropertyValue",
    "NativeDataProperty",
    "NativeDataPropertyValue",
    "NativeImageProperty",
    "NativeImagePropertyValue",
    "NativeTitleProperty",
    "NativeTitlePropertyValue",
    "OtherIdentifyingResource",
    "OtherProperty",
    "PixelTagProperty",
    "PixelTagPropertyValue",
    "PluginProperty",
    "PropertyModel",
    "PropertyOrigin",
    "PropertyType",
    "RealmType",
    "RecommenderProperty",
    "RecommenderPropertyValue",
    "StringProperty",
    "StringPropertyValue",
    "StyleSheetProperty",
    "StyleSheetPropertyValue",
    "UrlProperty",
    "UrlPropertyValue",
    "UserAgentIdentifierRealmSelection",
    "WebDomain",
    "find_property",
    "find_string_property",
    "string_property",
]

T = TypeVar("T")

# --------------------------------------------------------------------------- envelopes

GatewayStatus = Literal["ok", "error"]
"""`status` of a gateway envelope (SDK `StatusCode`)."""


class DataResponse(WireModel, Generic[T]):
    """The gateway's single-resource envelope `{status, data}`."""

    status: GatewayStatus = "ok"
    data: T


class DataListResponse(WireModel, Generic[T]):
    """The gateway's list envelope `{status, data, count}` with optional paging fields."""

    status: GatewayStatus = "ok"
    data: list[T]
    count: int
    first_result: int | None = None
    max_results: int | None = None
    total: int | None = None


# --------------------------------------------------------------------------- identifying resources

IdentifyingResourceType = Literal[
    "USER_ACCOUNT", "USER_EMAIL", "USER_DEVICE_TECHNICAL_ID", "USER_PROFILE"
]
"""Kinds of identifying resource a feed can select (SDK `IdentifyingResourceType`)."""


class IdentifyingAccount(WireModel):
    """Select user accounts, optionally of one compartment."""

    type: Literal["USER_ACCOUNT"] = "USER_ACCOUNT"
    compartment_id: int | str | None = None


class IdentifyingEmail(WireModel):
    """Select (hashed) emails."""

    type: Literal["USER_EMAIL"] = "USER_EMAIL"


class IdentifyingDeviceTechnicalId(WireModel):
    """Select device technical ids of one kind, optionally of one registry."""

    type: Literal["USER_DEVICE_TECHNICAL_ID"] = "USER_DEVICE_TECHNICAL_ID"
    registry_type: TechnicalIdentifierType
    registry_id: str | None = None


class IdentifyingProfile(WireModel):
    """Select user profiles, optionally of one compartment."""

    type: Literal["USER_PROFILE"] = "USER_PROFILE"
    compartment_id: int | str | None = None


class OtherIdentifyingResource(WireModel):
    """An identifying resource of a `type` the SDK does not name (e.g. `USER_DEVICE_POINT`)."""

    type: str


_IDENTIFYING_TYPES = frozenset(get_args(IdentifyingResourceType))


def _identifying_tag(value: Any) -> str:
    if isinstance(value, OtherIdentifyingResource):
        return "OTHER"
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) and kind in _IDENTIFYING_TYPES else "OTHER"


IdentifyingResource = Annotated[
    Annotated[IdentifyingAccount, Tag("USER_ACCOUNT")]
    | Annotated[IdentifyingEmail, Tag("USER_EMAIL")]
    | Annotated[IdentifyingDeviceTechnicalId, Tag("USER_DEVICE_TECHNICAL_ID")]
    | Annotated[IdentifyingProfile, Tag("USER_PROFILE")]
    | Annotated[OtherIdentifyingResource, Tag("OTHER")],
    Discriminator(_identifying_tag),
]
"""One of a feed's `selected_identifying_resources` (SDK `IdentifyingResourceShape`)."""


# --------------------------------------------------------------------------- properties

PropertyType = Literal[
    "ASSET",
    "ASSET_FILE",
    "ASSET_FOLDER",
    "DATA_FILE",
    "URL",
    "STRING",
    "AD_LAYOUT",
    "STYLE_SHEET",
    "PIXEL_TAG",
    "DOUBLE",
    "BOOLEAN",
    "INT",
    "RECOMMENDER",
    "NATIVE_DATA",
    "NATIVE_TITLE",
    "NATIVE_IMAGE",
    "IDENTIFYING_RESOURCE_LIST",
]
"""Every `property_type` the SDK types; any other one parses as `OtherProperty`."""

PROPERTY_TYPES: tuple[PropertyType, ...] = get_args(PropertyType)

PropertyOrigin = Literal["PLUGIN_STATIC", "PLUGIN", "INSTANCE"]
"""Where a property's value was set: the plugin's static layout, the plugin, the instance."""


class AssetFilePropertyValue(WireModel):
    """Value of an `ASSET` / `ASSET_FILE` property."""

    original_file_name: str | None = None
    original_name: str | None = None
    asset_id: str | None = None
    file_path: str | None = None
    file: str | None = None


class AssetFolderPropertyValue(WireModel):
    """Value of an `ASSET_FOLDER` property."""

    original_name: str | None = None
    asset_id: str | None = None
    path: str | None = None


class DataFilePropertyValue(WireModel):
    """Value of a `DATA_FILE` property: a URI read through `/v1/data_file/data`."""

    uri: str | None = None
    last_modified: int | None = None


class UrlPropertyValue(WireModel):
    """Value of a `URL` property."""

    url: str | None = None


class StringPropertyValue(WireModel):
    """Value of a `STRING` property: `{"value": "..."}`."""

    value: str | None = None


class AdLayoutPropertyValue(WireModel):
    """Value of an `AD_LAYOUT` property."""

    id: str | None = None
    version: str | None = None


class StyleSheetPropertyValue(WireModel):
    """Value of a `STYLE_SHEET` property."""

    id: str | None = None
    version: str | None = None


class PixelTagPropertyValue(WireModel):
    """Value of a `PIXEL_TAG` property."""

    value: str | None = None


class DoublePropertyValue(WireModel):
    """Value of a `DOUBLE` property."""

    value: float | None = None


class BooleanPropertyValue(WireModel):
    """Value of a `BOOLEAN` property."""

    value: bool | None = None


class IntPropertyValue(WireModel):
    """Value of an `INT` property."""

    value: int | None = None


class RecommenderPropertyValue(WireModel):
    """Value of a `RECOMMENDER` property."""

    recommender_id: str | None = None


class NativeDataPropertyValue(WireModel):
    """Value of a `NATIVE_DATA` property."""

    required_display: bool | None = None
    type: int | None = None
    value: str | None = None


class NativeTitlePropertyValue(WireModel):
    """Value of a `NATIVE_TITLE` property."""

    required_display: bool | None = None
    value: str | None = None


class NativeImagePropertyValue(WireModel):
    """Value of a `NATIVE_IMAGE` property."""

    required_display: bool | None = None
    width: int | None = None
    height: int | None = None
    type: int | None = None
    original_file_name: str | None = None
    asset_id: str | None = None
    file_path: str | None = None


class IdentifyingResourceListPropertyValue(WireModel):
    """Value of an `IDENTIFYING_RESOURCE_LIST` property."""

    identifying_resources: list[IdentifyingResource] = []


class _Property(WireModel):
    """Fields common to every property; origin and flags are optional on input.

    The SDK types them as required, but the platform's form sends properties without
    them in dynamic-property and authentication-status queries.
    """

    technical_name: str
    origin: PropertyOrigin | None = None
    writable: bool | None = None
    deletable: bool | None = None


class AssetFileProperty(_Property):
    """An `ASSET` or `ASSET_FILE` property (the SDK treats both the same)."""

    property_type: Literal["ASSET_FILE", "ASSET"] = "ASSET_FILE"
    value: AssetFilePropertyValue


class AssetFolderProperty(_Property):
    """An `ASSET_FOLDER` property."""

    property_type: Literal["ASSET_FOLDER"] = "ASSET_FOLDER"
    value: AssetFolderPropertyValue


class DataFileProperty(_Property):
    """A `DATA_FILE` property."""

    property_type: Literal["DATA_FILE"] = "DATA_FILE"
    value: DataFilePropertyValue


class UrlProperty(_Property):
    """A `URL` property."""

    property_type: Literal["URL"] = "URL"
    value: UrlPropertyValue


class StringProperty(_Property):
    """A `STRING` property, the kind every feed convention of this project uses."""

    property_type: Literal["STRING"] = "STRING"
    value: StringPropertyValue


class AdLayoutProperty(_Property):
    """An `AD_LAYOUT` property."""

    property_type: Literal["AD_LAYOUT"] = "AD_LAYOUT"
    value: AdLayoutPropertyValue


class StyleSheetProperty(_Property):
    """A `STYLE_SHEET` property."""

    property_type: Literal["STYLE_SHEET"] = "STYLE_SHEET"
    value: StyleSheetPropertyValue


class PixelTagProperty(_Property):
    """A `PIXEL_TAG` property."""

    property_type: Literal["PIXEL_TAG"] = "PIXEL_TAG"
    value: PixelTagPropertyValue


class DoubleProperty(_Property):
    """A `DOUBLE` property."""

    property_type: Literal["DOUBLE"] = "DOUBLE"
    value: DoublePropertyValue


class BooleanProperty(_Property):
    """A `BOOLEAN` property."""

    property_type: Literal["BOOLEAN"] = "BOOLEAN"
    value: BooleanPropertyValue


class IntProperty(_Property):
    """An `INT` property."""

    property_type: Literal["INT"] = "INT"
    value: IntPropertyValue


class RecommenderProperty(_Property):
    """A `RECOMMENDER` property."""

    property_type: Literal["RECOMMENDER"] = "RECOMMENDER"
    value: RecommenderPropertyValue


class NativeDataProperty(_Property):
    """A `NATIVE_DATA` property."""

    property_type: Literal["NATIVE_DATA"] = "NATIVE_DATA"
    value: NativeDataPropertyValue


class NativeTitleProperty(_Property):
    """A `NATIVE_TITLE` property."""

    property_type: Literal["NATIVE_TITLE"] = "NATIVE_TITLE"
    value: NativeTitlePropertyValue


class NativeImageProperty(_Property):
    """A `NATIVE_IMAGE` property."""

    property_type: Literal["NATIVE_IMAGE"] = "NATIVE_IMAGE"
    value: NativeImagePropertyValue


class IdentifyingResourceListProperty(_Property):
    """An `IDENTIFYING_RESOURCE_LIST` property (older SDKs read selected resources here)."""

    property_type: Literal["IDENTIFYING_RESOURCE_LIST"] = "IDENTIFYING_RESOURCE_LIST"
    value: IdentifyingResourceListPropertyValue


class OtherProperty(_Property):
    """A property of a type the SDK does not type (e.g. `RECORD_ID`), value kept as sent."""

    property_type: str
    value: Any = None


_KNOWN_PROPERTY_TYPES = frozenset(PROPERTY_TYPES)


def _property_tag(value: Any) -> str:
    if isinstance(value, OtherProperty):
        return "OTHER"
    if isinstance(value, dict):
        kind = value.get("property_type")
    else:
        kind = getattr(value, "property_type", None)
    if kind == "ASSET":
        return "ASSET_FILE"
    return kind if isinstance(kind, str) and kind in _KNOWN_PROPERTY_TYPES else "OTHER"


PluginProperty = Annotated[
    Annotated[AssetFileProperty, Tag("ASSET_FILE")]
    | Annotated[AssetFolderProperty, Tag("ASSET_FOLDER")]
    | Annotated[DataFileProperty, Tag("DATA_FILE")]
    | Annotated[UrlProperty, Tag("URL")]
    | Annotated[StringProperty, Tag("STRING")]
    | Annotated[AdLayoutProperty, Tag("AD_LAYOUT")]
    | Annotated[StyleSheetProperty, Tag("STYLE_SHEET")]
    | Annotated[PixelTagProperty, Tag("PIXEL_TAG")]
    | Annotated[DoubleProperty, Tag("DOUBLE")]
    | Annotated[BooleanProperty, Tag("BOOLEAN")]
    | Annotated[IntProperty, Tag("INT")]
    | Annotated[RecommenderProperty, Tag("RECOMMENDER")]
    | Annotated[NativeDataProperty, Tag("NATIVE_DATA")]
    | Annotated[NativeTitleProperty, Tag("NATIVE_TITLE")]
    | Annotated[NativeImageProperty, Tag("NATIVE_IMAGE")]
    | Annotated[IdentifyingResourceListProperty, Tag("IDENTIFYING_RESOURCE_LIST")]
    | Annotated[OtherProperty, Tag("OTHER")],
    Discriminator(_property_tag),
]
"""A feed or plugin property, told apart by `property_type`."""

PropertyModel = (
    AssetFileProperty
    | AssetFolderProperty
    | DataFileProperty
    | UrlProperty
    | StringProperty
    | AdLayoutProperty
    | StyleSheetProperty
    | PixelTagProperty
    | DoubleProperty
    | BooleanProperty
    | IntProperty
    | RecommenderProperty
    | NativeDataProperty
    | NativeTitleProperty
    | NativeImageProperty
    | IdentifyingResourceListProperty
    | OtherProperty
)
"""The same union without its discriminator, for annotations (`PluginProperty` parses)."""


def find_property(properties: Iterable[PropertyModel], technical_name: str) -> PropertyModel | None:
    """The property named `technical_name`, or None (the SDK's `PropertiesWrapper.get`)."""
    for prop in properties:
        if prop.technical_name == technical_name:
            return prop
    return None


def find_string_property(properties: Iterable[PropertyModel], technical_name: str) -> str | None:
    """The string value of the `STRING` property named `technical_name`, or None.

    None also when the property exists with another type, as the SDK's
    `findStringProperty(name)?.value.value` gives `undefined` then.
    """
    prop = find_property(properties, technical_name)
    if isinstance(prop, StringProperty):
        return prop.value.value
    return None


def string_property(
    technical_name: str,
    value: str | None,
    *,
    origin: PropertyOrigin = "INSTANCE",
    writable: bool = True,
    deletable: bool = False,
) -> StringProperty:
    """Build a `STRING` property as the gateway serves it."""
    return StringProperty(
        technical_name=technical_name,
        value=StringPropertyValue(value=value),
        origin=origin,
        writable=writable,
        deletable=deletable,
    )


# --------------------------------------------------------------------------- feed and segment


class AudienceSegmentExternalFeed(WireModel):
    """`GET /v1/audience_segment_external_feeds/{feed_id}` -> `data`."""

    id: str
    plugin_id: str
    organisation_id: str
    group_id: str
    artifact_id: str
    version_id: str
    selected_identifying_resources: list[IdentifyingResource] | None = None
    created_by: str | None = None


class AudienceSegmentResource(WireModel):
    """`GET .../audience_segment_external_feeds/{feed_id}/audience_segment` -> `data`."""

    id: str
    organisation_id: str
    name: str
    short_description: str | None = None
    technical_name: str | None = None
    default_ttl: int | None = None
    datamart_id: str
    provider_name: str | None = None
    persisted: bool


CredentialsScheme = Literal["OAUTH2", "API_TOKEN", "LOGIN_PASSWORD"]
"""How a feed destination's credentials are kept (SDK `TenantCredentialsScheme`)."""


class FeedDestinationCredentials(WireModel):
    """`GET`/`POST /v1/feed_destinations/{id}/credentials` body (`data` on GET)."""

    scheme: CredentialsScheme
    credentials: dict[str, Any]


# --------------------------------------------------------------------------- realms

RealmType = Literal[
    "MEDIARITHMICS", "MOBILE", "WEB_DOMAIN", "GOOGLE_OPERATOR", "APP_NEXUS_OPERATOR", "ETAG"
]
"""Kinds of user agent identifier realm."""


class WebDomain(WireModel):
    """The web domain of a realm selection (SDK `WebDomainResource`)."""

    id: str
    organisation_id: str
    name: str
    sld_name: str
    token: str | None = None
    user_id_key: str | None = None
    user_id_max_age: int | None = None
    auto_create_cookie: bool | None = None
    cookie_matching: bool | None = None
    cookie_matching_out: str | None = None
    private_key: str | None = None
    tcf_vendor_id: int | None = None
    enable_tcf_on_get_user_agent_id: bool | None = None
    enable_tcf_on_set_user_agent_id: bool | None = None


class UserAgentIdentifierRealmSelection(WireModel):
    """One entry of `GET /v1/datamarts/{id}/user_agent_identifier_realm_selections`.

    `web_domain` is required in the SDK's type; it is optional here since only
    `WEB_DOMAIN` realms carry one.
    """

    id: str
    datamart_id: str
    realm_type: RealmType
    matching: bool | None = None
    url: str | None = None
    web_domain: WebDomain | None = None
