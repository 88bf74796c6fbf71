"""User identifiers and profiles as the platform sends them in `user_segment_update`.

Shapes follow the SDK's `UserIdentifierInterface.ts` and `UserProfileInfo.ts`: required
and optional fields as there; shapes the SDK leaves `unknown` (devices, email providers)
stay loose.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field

from contracts._wire import WireModel

__all__ = [
    "IDENTIFIER_TYPES",
    "TECHNICAL_IDENTIFIER_TYPES",
    "IdentifierType",
    "TechnicalIdentifier",
    "TechnicalIdentifierType",
    "UserAccountIdentifier",
    "UserAgentIdentifier",
    "UserAgentMapping",
    "UserAgentProvider",
    "UserDevicePointIdentifier",
    "UserEmailIdentifier",
    "UserIdentifier",
    "UserPointIdentifier",
    "UserProfile",
]

IdentifierType = Literal[
    "USER_POINT", "USER_ACCOUNT", "USER_EMAIL", "USER_AGENT", "USER_DEVICE_POINT"
]
"""The `type` tag of a user identifier."""

IDENTIFIER_TYPES: tuple[IdentifierType, ...] = get_args(IdentifierType)

TechnicalIdentifierType = Literal[
    "MUM_ID",
    "MOBILE_ADVERTISING_ID",
    "MOBILE_VENDOR_ID",
    "INSTALLATION_ID",
    "CUSTOM_DEVICE_ID",
    "NETWORK_DEVICE_ID",
    "TV_ADVERTISING_ID",
    "IP_V4_ADDRESS_ID",
    "IP_V6_ADDRESS_ID",
]
"""The SDK's `UserDeviceTechnicalIdentifierType`: kinds of a device point's technical ids."""

TECHNICAL_IDENTIFIER_TYPES: tuple[TechnicalIdentifierType, ...] = get_args(TechnicalIdentifierType)


class UserPointIdentifier(WireModel):
    """The user point itself (`USER_POINT`).

    `creation_ts` is required in the SDK's type, yet the SDK's own tests send a user point
    without it: accepted when absent.
    """

    type: Literal["USER_POINT"] = "USER_POINT"
    user_point_id: str
    creation_ts: int | None = None


class UserAccountIdentifier(WireModel):
    """A user account in a compartment (`USER_ACCOUNT`).

    `compartment_id` is a string in the SDK's types and a number in the platform's docs:
    both are accepted and kept as sent.
    """

    type: Literal["USER_ACCOUNT"] = "USER_ACCOUNT"
    user_account_id: str
    creation_ts: int
    compartment_id: int | str | None = None


class UserEmailIdentifier(WireModel):
    """A hashed email (`USER_EMAIL`); the clear `email` is optional and often absent."""

    type: Literal["USER_EMAIL"] = "USER_EMAIL"
    hash: str
    email: str | None = None
    operator: str | None = None
    creation_ts: int
    last_activity_ts: int
    providers: list[Any]


class UserAgentMapping(WireModel):
    """One user agent id a `USER_AGENT` vector maps to, in a realm."""

    user_agent_id: str
    realm_name: str
    last_activity_ts: int


class UserAgentProvider(WireModel):
    """A provider of a `USER_AGENT` identifier (SDK `UserAgentIdentifierProviderResource`)."""

    technical_name: str
    creation_ts: int | None = None
    last_activity_ts: int | None = None
    expiration_ts: int | None = None


class UserAgentIdentifier(WireModel):
    """A user agent vector (`USER_AGENT`) with its mappings; `device` is opaque."""

    type: Literal["USER_AGENT"] = "USER_AGENT"
    vector_id: str
    device: Any = None
    creation_ts: int
    last_activity_ts: int
    providers: list[UserAgentProvider]
    mappings: list[UserAgentMapping]


class TechnicalIdentifier(WireModel):
    """A technical id of a device point, e.g. a mobile advertising id `mob:ios:raw:<uuid>`."""

    type: TechnicalIdentifierType
    user_agent_id: str
    registry_id: str
    creation_ts: int
    last_activity_ts: int
    expiration_ts: int | None = None


class UserDevicePointIdentifier(WireModel):
    """A device point (`USER_DEVICE_POINT`) with its technical identifiers."""

    type: Literal["USER_DEVICE_POINT"] = "USER_DEVICE_POINT"
    id: str | None = None
    device: Any = None
    creation_ts: int
    last_activity_ts: int
    technical_identifiers: list[TechnicalIdentifier]


UserIdentifier = Annotated[
    UserPointIdentifier
    | UserAccountIdentifier
    | UserEmailIdentifier
    | UserAgentIdentifier
    | UserDevicePointIdentifier,
    Field(discriminator="type"),
]
"""One entry of `user_identifiers[]`, told apart by its `type`."""


class UserProfile(WireModel):
    """One entry of `user_profiles[]`: `$`-prefixed system keys plus any profile keys.

    Python attributes drop the `$`; the wire keys keep it (aliases, used on output).
    """

    compartment_id: int | str = Field(alias="$compartment_id")
    creation_ts: int = Field(alias="$creation_ts")
    last_modified_ts: int = Field(alias="$last_modified_ts")
    user_account_id: str | None = Field(default=None, alias="$user_account_id")
    expiration_ts: int | None = Field(default=None, alias="$expiration_ts")
