"""Faulty connectors for the LinkedIn and Meta faces: each is a dialect reference with one
fault of the kind a connector written against that partner's docs makes.

Docstrings follow ``faulty.py``: ``breaks: ID`` and, where the fault cannot help it,
``also breaks: ...``. Each is verified against its own dialect (:data:`DIALECT_OF`), as
``feed-harness verify --partner linkedin --connector
tests.conformance.faulty_dialects:Name`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from contracts.identifiers import UserEmailIdentifier
from contracts.plugin_api import UserSegmentUpdateRequest
from harness.reference import LinkedInReferenceConnector, MetaReferenceConnector
from harness.reference.identifiers import MappedIdentifier
from harness.reference.linkedin import LinkedInClient
from harness.reference.meta import SCHEMA, MetaClient
from harness.reference.partner_client import (
    PartnerError,
    PartnerUnavailable,
    UploadResult,
)
from tests.conformance.faulty import ClientSwap

__all__ = [
    "ALL_DIALECT_FAULTS",
    "DIALECT_OF",
    "LinkedInWaitsForRetryAfter",
    "MetaCountsReceivedAsSuccess",
    "MetaRetriesDeadToken",
    "MetaSendsClearEmail",
]


# --------------------------------------------------------------------------- LinkedIn


class _FatalWithoutRetryAfterError(PartnerError):
    """A 429 read as a refusal: ``throttled`` only when the partner said how long to wait."""

    @property
    def throttled(self) -> bool:
        return self.retry_after is not None


class _RetryAfterLinkedInClient(LinkedInClient):
    def _api_error(self, response: httpx.Response) -> PartnerError:
        error = super()._api_error(response)
        if response.status_code == 429:
            return _FatalWithoutRetryAfterError(error.status, error.code, error.message)
        return error


class LinkedInWaitsForRetryAfter(ClientSwap, LinkedInReferenceConnector):
    """breaks: RATE-LIMIT — retries a 429 only after the ``Retry-After`` it names, as for most
    APIs; LinkedIn's 429 names none, so the connector takes it for a refusal and answers
    ``error`` instead of ``retry`` with a default delay.

    also breaks: CONVERGENCE, STATEFUL-LIFECYCLE (the throttled items end as errors the
    partner did not give, and the random lives see it too), CONNECT-TRANSIENT (a throttled
    connection answers error)."""

    client_class = _RetryAfterLinkedInClient


# --------------------------------------------------------------------------- Meta


class _RetryingMetaClient(MetaClient):
    def _api_error(self, response: httpx.Response) -> PartnerError:
        error = super()._api_error(response)
        if error.code.startswith("190"):
            # "an OAuthException may be transient": it is not, for a 190
            return PartnerUnavailable(error.status, error.code, error.message)
        return error


class MetaRetriesDeadToken(ClientSwap, MetaReferenceConnector):
    """breaks: TOKEN-INVALID-GRANT — reads Meta's code 190 (the token expired or was
    revoked: Meta has no refresh grant, only a new login helps) as a transient failure and
    answers ``RETRY``, so the platform retries an upload that can never succeed.

    also breaks: AUTH-STATUS (``test_authentication`` of a dead token answers error, not
    ``invalid_credentials``)."""

    client_class = _RetryingMetaClient


class _ReceivedMetaClient(MetaClient):
    async def upload_members(
        self, segment_id: str, operations: Sequence[Mapping[str, Any]]
    ) -> UploadResult:
        result = await super().upload_members(segment_id, operations)
        result.uncounted_rejections = 0  # num_received taken for "all applied"
        return result


class MetaCountsReceivedAsSuccess(ClientSwap, MetaReferenceConnector):
    """breaks: PARTIAL-FAILURE — counts Meta's ``num_received`` as the rows that succeeded,
    ignoring ``num_invalid_entries``: rows Meta refused are reported as success.

    also breaks: BATCH-HONEST (the success counted is more than the partner accepted),
    CONVERGENCE (the refused rows are accounted as neither error nor dead-lettered)."""

    client_class = _ReceivedMetaClient


class MetaSendsClearEmail(MetaReferenceConnector):
    """breaks: PII-HASHED — puts the user's clear email address, when the platform sent
    one, in the ``EMAIL_SHA256`` column instead of its hash (Meta then counts the row as
    an invalid entry).

    also breaks: UPDATE-ELIGIBLE (the hashed email, eligible, never reaches the partner)."""

    def operations_for(
        self, request: UserSegmentUpdateRequest, mapped: list[MappedIdentifier]
    ) -> list[dict[str, Any]]:
        rows = super().operations_for(request, mapped)
        clear = {
            identifier.hash: identifier.email
            for identifier in request.user_identifiers
            if isinstance(identifier, UserEmailIdentifier) and identifier.email
        }
        email_column = SCHEMA.index("EMAIL_SHA256")
        for row in rows:
            cells = row["row"]
            cells[email_column] = clear.get(cells[email_column], cells[email_column])
        return rows

    def invalid_operation_reason(self, operation: Any) -> str | None:
        return None


DIALECT_OF: dict[type[object], str] = {
    LinkedInWaitsForRetryAfter: "linkedin",
    MetaRetriesDeadToken: "meta",
    MetaCountsReceivedAsSuccess: "meta",
    MetaSendsClearEmail: "meta",
}
"""The face each faulty connector is verified against."""

ALL_DIALECT_FAULTS = tuple(DIALECT_OF)
