"""Request bodies the partner accepts, as strict pydantic models (internal to the partner).

Types are strict (no "1" for 1) and unknown keys are refused: a connector's typo is a
400 here rather than a silent no-op at a real partner.
"""

from __future__ import annotations

from typing import Any, NotRequired

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
)
from typing_extensions import TypedDict


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentifierIn(TypedDict):
    """``{"type", "value"}``; the type is checked per operation, not here."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    type: StrictStr
    value: StrictStr


class OperationIn(TypedDict):
    """``{"action", "identifiers"}``; action and count are checked per operation."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    action: StrictStr
    identifiers: list[IdentifierIn]


class UploadIn(TypedDict):
    """The body of ``POST /v1/segments/{id}/members`` (TypedDicts: 10,000 operations parse fast)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    operations: list[OperationIn]
    partial_failure: NotRequired[StrictBool]


UPLOAD = TypeAdapter(UploadIn)
"""Validates an upload body straight from JSON bytes."""


class CreateSegmentIn(_Body):
    """The body of ``POST /v1/accounts/{account_id}/segments``."""

    name: StrictStr
    description: StrictStr | None = None


MAX_ADVANCE_SECONDS = 100 * 365 * 86400
"""The most one ``clock/advance`` moves the clock: a century."""


class ClockAdvanceIn(_Body):
    """The body of ``POST /_admin/clock/advance``."""

    seconds: StrictInt | StrictFloat = Field(ge=0, le=MAX_ADVANCE_SECONDS, allow_inf_nan=False)


def loose_identifiers(data: Any) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """Best-effort ``(action, identifiers)`` from a body that failed validation.

    The ledger records every identifier value received, even in a malformed request,
    so "no raw PII ever received" sees them too. Non-string values are stringified.
    """
    if not isinstance(data, dict):
        return []
    operations = data.get("operations")
    if not isinstance(operations, list):
        return []
    found: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for operation in operations:
        if not isinstance(operation, dict):
            found.append(("", ()))
            continue
        identifiers = operation.get("identifiers")
        pairs: list[tuple[str, str]] = []
        if isinstance(identifiers, list):
            for identifier in identifiers:
                if isinstance(identifier, dict) and "value" in identifier:
                    pairs.append((str(identifier.get("type")), _text(identifier["value"])))
        found.append((_text(operation.get("action", "")), tuple(pairs)))
    return found


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
