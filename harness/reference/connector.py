"""The batched reference connector: updates become ``BATCH_DELIVERY`` items, batches go to the
partner's members upload with per-item results counted honestly."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from contracts.delivery import BatchDeliveryItem
from contracts.plugin_api import (
    BatchUpdateRequest,
    BatchUpdateResponse,
    UserSegmentUpdateRequest,
    UserSegmentUpdateResponse,
)
from harness.reference.config import PARTNER_SEGMENT_ID
from harness.reference.core import (
    NOT_READY_DELAY_MS,
    ReferenceContext,
    ReferenceCore,
    operations_for,
    retry_delay_ms,
    stats_for,
)
from harness.reference.identifiers import MappedIdentifier, invalid_operation_reason
from harness.reference.partner_client import PartnerUnavailable, ReauthenticationNeeded
from harness.sdk import BatchedAudienceFeedConnector

__all__ = ["ReferenceConnector", "decode_content"]


def decode_content(item: Any) -> Any:
    """A batch item as the operation it carries: objects as they are, JSON strings parsed."""
    if isinstance(item, str | bytes):
        try:
            return json.loads(item)
        except ValueError:
            return None
    return item


class ReferenceConnector(ReferenceCore, BatchedAudienceFeedConnector[ReferenceContext]):
    """A model of a correct batched connector (``clauses.md``)."""

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> UserSegmentUpdateResponse:
        """One ``BATCH_DELIVERY`` item per user (per 10 identifiers), one stat per identifier."""
        mapped = self.eligible_identifiers(request, ctx)
        if not mapped:
            return UserSegmentUpdateResponse(
                status="no_eligible_identifier",
                message="the user has no identifier the feed selects and the partner takes",
            )
        data: list[Any] = [
            BatchDeliveryItem[Any](content=operation, grouping_key=ctx.grouping_key)
            for operation in self.operations_for(request, mapped)
        ]
        return UserSegmentUpdateResponse(
            status="ok", data=data, stats=stats_for(mapped, "PROCESSED")
        )

    def operations_for(
        self, request: UserSegmentUpdateRequest, mapped: list[MappedIdentifier]
    ) -> list[dict[str, Any]]:
        """The partner operations of one user's update (the batch items' content)."""
        return operations_for(request, mapped)

    def invalid_operation_reason(self, operation: Any) -> str | None:
        """Why a batch item must not be sent to the partner, or None."""
        return invalid_operation_reason(operation)

    def reauthentication_message(self, failure: ReauthenticationNeeded) -> str:
        """What a batch answers when the partner refused the grant for good."""
        return "re-authentication is needed: the partner refused the refresh token"

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        """Upload the batch; ``RETRY`` on 429 / 5xx / not ready, ``ERROR`` when it cannot work."""
        total = len(request.batch_content)
        if total == 0:
            return BatchUpdateResponse(status="OK", sent_items_in_success=0, sent_items_in_error=0)
        segment_id = ctx.partner_segment_id
        if not segment_id:
            return BatchUpdateResponse(
                status="ERROR",
                sent_items_in_success=0,
                sent_items_in_error=total,
                message=f"feed {ctx.feed.id} has no {PARTNER_SEGMENT_ID}: run creation first",
            )
        operations: list[dict[str, Any]] = []
        refused: Counter[str] = Counter()
        for item in request.batch_content:
            operation = decode_content(item)
            reason = self.invalid_operation_reason(operation)
            if reason is None:
                operations.append(operation)
            else:
                refused[reason] += 1
        result = await ctx.partner.upload_members(segment_id, operations)
        failure = result.failure
        if failure is not None and (
            failure.throttled
            or isinstance(failure, PartnerUnavailable)
            or failure.code == "SEGMENT_NOT_READY"
        ):  # (a partner client reports its not-ready answer as SEGMENT_NOT_READY)
            delay = NOT_READY_DELAY_MS if failure.code == "SEGMENT_NOT_READY" else None
            if failure.throttled:
                delay = retry_delay_ms(failure)
            return BatchUpdateResponse(
                status="RETRY",
                sent_items_in_success=0,
                sent_items_in_error=total,
                message=f"the partner could not take the batch now ({failure.code}): retry",
                next_msg_delay_in_ms=delay,
            )
        success = result.accepted
        refused.update(result.rejected.values())
        if result.uncounted_rejections:
            refused["INVALID_ENTRIES"] += result.uncounted_rejections
        if failure is not None:
            lead = (
                self.reauthentication_message(failure)
                if isinstance(failure, ReauthenticationNeeded)
                else f"the partner refused the upload: {failure}"
            )
            return BatchUpdateResponse(
                status="ERROR",
                sent_items_in_success=success,
                sent_items_in_error=total - success,
                message=_with_refusals(lead, refused),
            )
        return BatchUpdateResponse(
            status="OK",
            sent_items_in_success=success,
            sent_items_in_error=total - success,
            message=_with_refusals("", refused) or None,
        )


def _with_refusals(lead: str, refused: Counter[str]) -> str:
    if not refused:
        return lead
    counts = ", ".join(f"{code} x{count}" for code, count in sorted(refused.items()))
    tail = f"{sum(refused.values())} items refused ({counts})"
    return f"{lead}; {tail}" if lead else tail
