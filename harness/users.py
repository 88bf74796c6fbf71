"""Simulated users: their identifiers as the platform sends them, what the partner may
receive of them, and the membership the partner should end up with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

__all__ = [
    "DEFAULT_IDENTIFYING",
    "ELIGIBLE_RESOURCES",
    "Maid",
    "MembershipModel",
    "Operation",
    "PartnerIdentifier",
    "SimUser",
    "email_hash",
]

Operation = Literal["UPSERT", "DELETE"]
PartnerIdentifier = tuple[str, str]
"""``(type, value)`` as the partner stores a member, e.g. ``("MAID", "<uuid>")``."""

ELIGIBLE_RESOURCES: frozenset[str] = frozenset({"USER_EMAIL", "USER_DEVICE_POINT", "USER_ACCOUNT"})
"""Identifying resources that map to a partner identifier (``docs/writing-a-connector.md``)."""
DEFAULT_IDENTIFYING: tuple[str, ...] = ("USER_EMAIL", "USER_DEVICE_POINT", "USER_ACCOUNT")
DEFAULT_TS = 1_767_225_600_000
"""2026-01-01T00:00:00Z in milliseconds: default creation time of generated identifiers."""


def email_hash(address: str) -> str:
    """The platform's email hash: SHA-256 of the trimmed, lower-cased address, hex."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


class Maid(NamedTuple):
    """A mobile advertising id on a device platform (``ios`` or ``android``)."""

    platform: str
    value: str

    @property
    def user_agent_id(self) -> str:
        """The technical identifier's id, ``mob:<platform>:raw:<uuid>``."""
        return f"mob:{self.platform}:raw:{self.value}"


@dataclass(slots=True, eq=False)
class SimUser:
    """One user point and its identifiers; emails are raw addresses as typed. ``vectors``
    (USER_AGENT cookies) and ``installation_ids`` (device points without a MAID) are sent
    too but never eligible at the partner."""

    user_point_id: str
    emails: tuple[str, ...] = ()
    maids: tuple[Maid, ...] = ()
    account_ids: tuple[str, ...] = ()
    vectors: tuple[str, ...] = ()
    installation_ids: tuple[str, ...] = ()
    compartment_id: int = 1
    creation_ts: int = DEFAULT_TS
    profile: dict[str, Any] = field(default_factory=dict)

    def to_user_identifiers(self, *, include_raw_email: bool = True) -> list[dict[str, Any]]:
        """``user_identifiers[]`` as the platform sends them (``contracts.identifiers``)."""
        ts = self.creation_ts
        identifiers: list[dict[str, Any]] = [
            {"type": "USER_POINT", "user_point_id": self.user_point_id, "creation_ts": ts}
        ]
        for address in self.emails:
            email: dict[str, Any] = {
                "type": "USER_EMAIL",
                "hash": email_hash(address),
                "creation_ts": ts,
                "last_activity_ts": ts,
                "providers": [],
            }
            if include_raw_email:
                email["email"] = address
            identifiers.append(email)
        for index, maid in enumerate(self.maids):
            identifiers.append(
                _device_point(
                    f"{self.user_point_id}:dev:{index}",
                    "MOBILE_ADVERTISING_ID",
                    maid.user_agent_id,
                    ts,
                    {"os_family": maid.platform.upper(), "form_factor": "SMARTPHONE"},
                )
            )
        for index, installation in enumerate(self.installation_ids):
            identifiers.append(
                _device_point(
                    f"{self.user_point_id}:inst:{index}", "INSTALLATION_ID", installation, ts, None
                )
            )
        for account in self.account_ids:
            identifiers.append(
                {
                    "type": "USER_ACCOUNT",
                    "user_account_id": account,
                    "creation_ts": ts,
                    "compartment_id": self.compartment_id,
                }
            )
        for vector in self.vectors:
            identifiers.append(
                {
                    "type": "USER_AGENT",
                    "vector_id": vector,
                    "creation_ts": ts,
                    "last_activity_ts": ts,
                    "providers": [],
                    "mappings": [],
                }
            )
        return identifiers

    def to_user_profiles(self) -> list[dict[str, Any]]:
        """``user_profiles[]``: one profile in the user's compartment (empty when no account)."""
        if not self.account_ids and not self.profile:
            return []
        profile: dict[str, Any] = {
            "$compartment_id": self.compartment_id,
            "$creation_ts": self.creation_ts,
            "$last_modified_ts": self.creation_ts,
        }
        if self.account_ids:
            profile["$user_account_id"] = self.account_ids[0]
        profile.update(self.profile)
        return [profile]

    def eligible_partner_identifiers(
        self, identifying: Iterable[str] = DEFAULT_IDENTIFYING
    ) -> frozenset[PartnerIdentifier]:
        """The ``(type, value)`` pairs a connector may send to the partner for this user,
        restricted to the feed's selected identifying resources."""
        selected = identifying if isinstance(identifying, frozenset) else frozenset(identifying)
        found: set[PartnerIdentifier] = set()
        if "USER_EMAIL" in selected:
            found.update(("EMAIL_SHA256", email_hash(address)) for address in self.emails)
        if "USER_DEVICE_POINT" in selected:
            found.update(("MAID", maid.value) for maid in self.maids)
        if "USER_ACCOUNT" in selected:
            found.update(("PARTNER_USER_ID", account) for account in self.account_ids)
        return frozenset(found)


def _device_point(
    point_id: str, kind: str, user_agent_id: str, ts: int, device: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "type": "USER_DEVICE_POINT",
        "id": point_id,
        "device": device,
        "creation_ts": ts,
        "last_activity_ts": ts,
        "technical_identifiers": [
            {
                "type": kind,
                "user_agent_id": user_agent_id,
                "registry_id": "1000",
                "creation_ts": ts,
                "last_activity_ts": ts,
            }
        ],
    }


class MembershipModel:
    """The expected partner membership: UPSERT adds, DELETE removes, replayed in order,
    as a set of ``(type, value)`` (the partner's own semantics)."""

    def __init__(self, identifying: Iterable[str] = DEFAULT_IDENTIFYING) -> None:
        self.identifying = frozenset(identifying)
        self._members: set[PartnerIdentifier] = set()
        self.operations = 0

    def apply(self, operation: Operation, user: SimUser) -> None:
        """Replay one operation of one user."""
        identifiers = user.eligible_partner_identifiers(self.identifying)
        if operation == "UPSERT":
            self._members |= identifiers
        elif operation == "DELETE":
            self._members -= identifiers
        else:
            raise ValueError(f"operation={operation!r} is not UPSERT or DELETE")
        self.operations += 1

    def upsert(self, users: Iterable[SimUser]) -> None:
        """Replay UPSERT for each user."""
        for user in users:
            self.apply("UPSERT", user)

    def delete(self, users: Iterable[SimUser]) -> None:
        """Replay DELETE for each user."""
        for user in users:
            self.apply("DELETE", user)

    @property
    def members(self) -> frozenset[PartnerIdentifier]:
        """The expected membership now."""
        return frozenset(self._members)

    def __contains__(self, identifier: object) -> bool:
        return identifier in self._members

    def __len__(self) -> int:
        return len(self._members)
