"""Which identifiers the partner may receive (``docs/writing-a-connector.md``): email hash ->
``EMAIL_SHA256``, device ``MOBILE_ADVERTISING_ID`` -> ``MAID``, user account ->
``PARTNER_USER_ID``; nothing with ``@`` and no malformed SHA-256 is ever sent."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.gateway import (
    IdentifyingAccount,
    IdentifyingDeviceTechnicalId,
    IdentifyingEmail,
    IdentifyingResource,
    OtherIdentifyingResource,
)
from contracts.identifiers import (
    UserAccountIdentifier,
    UserDevicePointIdentifier,
    UserEmailIdentifier,
    UserIdentifier,
)
from harness.reference.partner_client import MAX_IDENTIFIERS_PER_OPERATION

__all__ = [
    "PARTNER_TYPES",
    "MappedIdentifier",
    "Selection",
    "invalid_operation_reason",
    "maid_value",
    "map_identifiers",
]

PARTNER_TYPES = frozenset({"EMAIL_SHA256", "PHONE_SHA256", "MAID", "PARTNER_USER_ID"})
_SHA256_TYPES = frozenset({"EMAIL_SHA256", "PHONE_SHA256"})
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class MappedIdentifier:
    """A partner identifier and the platform value it came from (for ``stats``)."""

    type: str
    value: str
    source: str

    def wire(self) -> dict[str, str]:
        """``{"type", "value"}`` as the partner takes it."""
        return {"type": self.type, "value": self.value}


@dataclass(frozen=True)
class Selection:
    """The identifier kinds a feed's ``selected_identifying_resources`` allow.

    ``None`` in a filter set means any registry / compartment.
    """

    email: bool = False
    maid: bool = False
    maid_registries: frozenset[str] | None = None
    account: bool = False
    account_compartments: frozenset[str] | None = None

    @property
    def empty(self) -> bool:
        """True when nothing the partner takes is selected."""
        return not (self.email or self.maid or self.account)

    @classmethod
    def from_resources(cls, resources: Sequence[IdentifyingResource] | None) -> Selection:
        """The selection of a feed resource's ``selected_identifying_resources``."""
        email = maid = account = False
        registries: set[str] | None = set()
        compartments: set[str] | None = set()
        for resource in resources or ():
            if isinstance(resource, IdentifyingEmail):
                email = True
            elif isinstance(resource, IdentifyingAccount):
                account = True
                if resource.compartment_id is None:
                    compartments = None
                elif compartments is not None:
                    compartments.add(str(resource.compartment_id))
            elif isinstance(resource, IdentifyingDeviceTechnicalId):
                if resource.registry_type == "MOBILE_ADVERTISING_ID":
                    maid = True
                    if resource.registry_id is None:
                        registries = None
                    elif registries is not None:
                        registries.add(resource.registry_id)
            elif (
                isinstance(resource, OtherIdentifyingResource)
                and resource.type == "USER_DEVICE_POINT"
            ):
                maid = True
                registries = None
        return cls(
            email=email,
            maid=maid,
            maid_registries=None if registries is None else frozenset(registries),
            account=account,
            account_compartments=None if compartments is None else frozenset(compartments),
        )


def maid_value(user_agent_id: str) -> str | None:
    """The advertising id in ``mob:<platform>:<kind>:<id>``; a bare id is kept as it is."""
    if not user_agent_id.startswith("mob:"):
        return user_agent_id or None
    parts = user_agent_id.split(":", 3)
    if len(parts) != 4 or not parts[3]:
        return None
    return parts[3]


def map_identifiers(
    identifiers: Iterable[UserIdentifier], selection: Selection
) -> list[MappedIdentifier]:
    """The partner identifiers of one user, deduplicated, in the request's order."""
    found: dict[tuple[str, str], MappedIdentifier] = {}

    def add(kind: str, value: str, source: str) -> None:
        if value and "@" not in value and (kind, value) not in found:
            found[(kind, value)] = MappedIdentifier(kind, value, source)

    for identifier in identifiers:
        if isinstance(identifier, UserEmailIdentifier):
            if selection.email:
                value = identifier.hash.strip().lower()
                if _SHA256.fullmatch(value):
                    add("EMAIL_SHA256", value, identifier.hash)
        elif isinstance(identifier, UserDevicePointIdentifier):
            if selection.maid:
                for technical in identifier.technical_identifiers:
                    if technical.type != "MOBILE_ADVERTISING_ID":
                        continue
                    registries = selection.maid_registries
                    if registries is not None and technical.registry_id not in registries:
                        continue
                    maid = maid_value(technical.user_agent_id)
                    if maid is not None:
                        add("MAID", maid, technical.user_agent_id)
        elif isinstance(identifier, UserAccountIdentifier) and selection.account:
            compartments = selection.account_compartments
            if compartments is None or str(identifier.compartment_id) in compartments:
                add("PARTNER_USER_ID", identifier.user_account_id, identifier.user_account_id)
    return list(found.values())


def invalid_operation_reason(operation: Any) -> str | None:
    """Why an operation must not be sent (bad shape, raw PII, non-hex hash), or None."""
    if not isinstance(operation, dict):
        return "NOT_AN_OBJECT"
    if operation.get("action") not in ("ADD", "REMOVE"):
        return "UNSUPPORTED_ACTION"
    identifiers = operation.get("identifiers")
    if not isinstance(identifiers, list) or not (
        1 <= len(identifiers) <= MAX_IDENTIFIERS_PER_OPERATION
    ):
        return "INVALID_IDENTIFIER_COUNT"
    for item in identifiers:
        if not isinstance(item, dict):
            return "NOT_AN_OBJECT"
        kind, value = item.get("type"), item.get("value")
        if not isinstance(kind, str) or not isinstance(value, str) or not value:
            return "INVALID_IDENTIFIER"
        if "@" in value:
            return "PII_NOT_HASHED"
        if kind in _SHA256_TYPES and not _SHA256.fullmatch(value):
            return "INVALID_SHA256_FORMAT"
    return None
