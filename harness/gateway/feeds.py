"""How a test describes a feed to the fake gateway, and the feed state it reads back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from contracts.gateway import (
    AudienceSegmentExternalFeed,
    AudienceSegmentResource,
    IdentifyingResource,
    PropertyModel,
    UserAgentIdentifierRealmSelection,
    find_property,
    find_string_property,
    string_property,
)

__all__ = [
    "DEFAULT_ARTIFACT_ID",
    "DEFAULT_DATAMART_ID",
    "DEFAULT_GROUP_ID",
    "DEFAULT_ORGANISATION_ID",
    "FeedSetup",
    "FeedState",
    "GatewaySetupError",
    "UnknownFeedError",
]

DEFAULT_ORGANISATION_ID = "1000"
DEFAULT_DATAMART_ID = "1500"
DEFAULT_PLUGIN_ID = "2000"
DEFAULT_VERSION_ID = "2001"
DEFAULT_GROUP_ID = "com.mediarithmics.audience-feed"
DEFAULT_ARTIFACT_ID = "feed-harness-connector"

IdentifyingInput = str | BaseModel | Mapping[str, Any]
"""A selected identifying resource: a kind (``"USER_EMAIL"``), a model or its wire dict."""

_IDENTIFYING: TypeAdapter[Any] = TypeAdapter(IdentifyingResource)
_M = TypeVar("_M", bound=BaseModel)


class GatewaySetupError(ValueError):
    """The gateway was set up from Python with a value it cannot serve; the message says the fix."""


class UnknownFeedError(KeyError):
    """A feed id the gateway was never given with ``Gateway.add_feed``."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown feed"


@dataclass(frozen=True, slots=True)
class FeedSetup:
    """One feed as the platform knows it: the feed resource, its segment and its properties.

    ``properties`` maps names to string values (served as ``STRING``, origin ``INSTANCE``,
    writable, not deletable) or to full property models.
    """

    feed_id: str
    segment: AudienceSegmentResource | Mapping[str, Any] | None = None
    properties: Mapping[str, str | PropertyModel | None] = field(default_factory=dict)
    selected_identifying_resources: Sequence[IdentifyingInput] = ("USER_EMAIL",)
    organisation_id: str | None = None
    datamart_id: str | None = None
    plugin_id: str = DEFAULT_PLUGIN_ID
    version_id: str = DEFAULT_VERSION_ID
    group_id: str = DEFAULT_GROUP_ID
    artifact_id: str = DEFAULT_ARTIFACT_ID
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class FeedState:
    """A copy of one feed's current state in the gateway (properties after the writes)."""

    feed: AudienceSegmentExternalFeed
    segment: AudienceSegmentResource
    properties: tuple[PropertyModel, ...]

    def property(self, technical_name: str) -> PropertyModel | None:
        """The property named ``technical_name``, or None."""
        return find_property(self.properties, technical_name)

    def string_value(self, technical_name: str) -> str | None:
        """The value of the ``STRING`` property ``technical_name``; None if absent or not STRING."""
        return find_string_property(self.properties, technical_name)


def check_id(what: str, value: object) -> str:
    """A usable path id: a non-empty string without ``/``, ``?`` or ``#``."""
    if not isinstance(value, str) or not value or any(c in value for c in "/?#"):
        raise GatewaySetupError(
            f"{what}={value!r} cannot be served in a URL path: use a non-empty string "
            "without '/', '?' or '#' (mediarithmics ids are digit strings like '1234')"
        )
    return value


def build_feed(
    setup: FeedSetup,
) -> tuple[AudienceSegmentExternalFeed, AudienceSegmentResource, dict[str, PropertyModel]]:
    """Validate a ``FeedSetup`` into the three resources the gateway serves for it."""
    feed_id = check_id("FeedSetup.feed_id", setup.feed_id)
    segment = _build_segment(setup)
    feed = _validated(
        AudienceSegmentExternalFeed,
        {
            "id": feed_id,
            "plugin_id": setup.plugin_id,
            "organisation_id": segment.organisation_id,
            "group_id": setup.group_id,
            "artifact_id": setup.artifact_id,
            "version_id": setup.version_id,
            "selected_identifying_resources": [
                _identifying(item) for item in setup.selected_identifying_resources
            ],
            "created_by": setup.created_by,
        },
        f"FeedSetup(feed_id={feed_id!r})",
    )
    properties: dict[str, PropertyModel] = {}
    for name, value in setup.properties.items():
        if isinstance(value, BaseModel):
            if value.technical_name != name:
                raise GatewaySetupError(
                    f"FeedSetup.properties[{name!r}] is a property named "
                    f"{value.technical_name!r}: use the property's technical_name as the key"
                )
            properties[name] = value.model_copy(deep=True)
        elif value is None or isinstance(value, str):
            properties[name] = string_property(name, value)
        else:
            raise GatewaySetupError(
                f"FeedSetup.properties[{name!r}]={value!r} is neither a string nor a property "
                "model: pass the string value or e.g. contracts.gateway.string_property(...)"
            )
    return feed, segment, properties


def build_realm(datamart_id: str, index: int, realm: object) -> UserAgentIdentifierRealmSelection:
    """A realm selection from a realm type (``"MOBILE"``), a model or its wire dict."""
    if isinstance(realm, UserAgentIdentifierRealmSelection):
        data: dict[str, Any] = realm.model_dump(by_alias=True)
    elif isinstance(realm, str):
        data = {"realm_type": realm}
    elif isinstance(realm, Mapping):
        data = dict(realm)
    else:
        raise GatewaySetupError(
            f"realm #{index} of datamart {datamart_id!r} is {realm!r}: pass a realm type such "
            "as 'MOBILE', a UserAgentIdentifierRealmSelection or its wire dict"
        )
    data.setdefault("id", f"{datamart_id}-realm-{index + 1}")
    data.setdefault("datamart_id", datamart_id)
    return _validated(
        UserAgentIdentifierRealmSelection, data, f"realm #{index} of datamart {datamart_id!r}"
    )


def _build_segment(setup: FeedSetup) -> AudienceSegmentResource:
    given = setup.segment
    if isinstance(given, AudienceSegmentResource):
        data: dict[str, Any] = given.model_dump(by_alias=True)
    elif given is None:
        data = {}
    elif isinstance(given, Mapping):
        data = dict(given)
    else:
        raise GatewaySetupError(
            f"FeedSetup.segment={given!r} is not a segment: pass an AudienceSegmentResource, "
            "a dict of its fields (id, name, ...) or None for a default segment"
        )
    for key in ("organisation_id", "datamart_id"):
        chosen = getattr(setup, key)
        if chosen is not None and data.get(key) not in (None, chosen):
            raise GatewaySetupError(
                f"FeedSetup.{key}={chosen!r} differs from the segment's {key}="
                f"{data[key]!r}: give it once, on the FeedSetup or on the segment"
            )
    data.setdefault("id", f"{setup.feed_id}-segment")
    data.setdefault("name", f"Segment of feed {setup.feed_id}")
    data.setdefault("organisation_id", setup.organisation_id or DEFAULT_ORGANISATION_ID)
    data.setdefault("datamart_id", setup.datamart_id or DEFAULT_DATAMART_ID)
    data.setdefault("short_description", "")
    data.setdefault("technical_name", f"segment_{setup.feed_id}")
    data.setdefault("provider_name", "mediarithmics")
    data.setdefault("persisted", True)
    segment = _validated(AudienceSegmentResource, data, f"FeedSetup(feed_id={setup.feed_id!r})")
    check_id("segment.datamart_id", segment.datamart_id)
    return segment


def _identifying(item: IdentifyingInput) -> Any:
    if isinstance(item, str):
        raw: Any = {"type": item}
    elif isinstance(item, BaseModel):
        raw = item.model_dump(by_alias=True)
    else:
        raw = dict(item)
    try:
        return _IDENTIFYING.validate_python(raw)
    except ValidationError as exc:
        raise GatewaySetupError(
            f"selected identifying resource {item!r} is not valid ({_summary(exc)}): pass a "
            "kind like 'USER_EMAIL' or a dict with 'type'"
        ) from None


def _validated(model: type[_M], data: dict[str, Any], where: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise GatewaySetupError(
            f"{where}: not a valid {model.__name__} ({_summary(exc)}): fix those fields"
        ) from None


def _summary(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors(include_url=False)[:3]
    ]
    return "; ".join(parts)
