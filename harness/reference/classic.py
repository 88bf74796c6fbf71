"""The non-batched reference connector: each update goes straight to the partner."""

from __future__ import annotations

from contracts.plugin_api import UserSegmentUpdateRequest, UserSegmentUpdateResponse
from harness.reference.config import PARTNER_SEGMENT_ID
from harness.reference.core import (
    NOT_READY_DELAY_MS,
    ReferenceContext,
    ReferenceCore,
    operations_for,
    retry_delay_ms,
    stats_for,
)
from harness.reference.partner_client import PartnerUnavailable, ReauthenticationNeeded

__all__ = ["ClassicReferenceConnector"]


class ClassicReferenceConnector(ReferenceCore):
    """Sends each user's operation to the partner; ``retry`` with a delay on 429 / 5xx."""

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> UserSegmentUpdateResponse:
        """Upload the user's identifiers; the answer says what the partner did with them."""
        mapped = self.eligible_identifiers(request, ctx)
        if not mapped:
            return UserSegmentUpdateResponse(
                status="no_eligible_identifier",
                message="the user has no identifier the feed selects and the partner takes",
            )
        segment_id = ctx.partner_segment_id
        if not segment_id:
            return UserSegmentUpdateResponse(
                status="error",
                message=f"feed {ctx.feed.id} has no {PARTNER_SEGMENT_ID}: run creation first",
            )
        result = await ctx.partner.upload_members(segment_id, operations_for(request, mapped))
        failure = result.failure
        if failure is not None:
            if failure.status == 429:
                return UserSegmentUpdateResponse(
                    status="retry",
                    message=f"the partner is rate limiting ({failure.code}): retry later",
                    next_msg_delay_in_ms=retry_delay_ms(failure),
                )
            if failure.code == "SEGMENT_NOT_READY":
                return UserSegmentUpdateResponse(
                    status="retry",
                    message=f"partner segment {segment_id} is not ready yet: retry later",
                    next_msg_delay_in_ms=NOT_READY_DELAY_MS,
                )
            if isinstance(failure, PartnerUnavailable):
                return UserSegmentUpdateResponse(
                    status="retry",
                    message=f"the partner is unavailable ({failure.code}): retry",
                )
            if isinstance(failure, ReauthenticationNeeded):
                return UserSegmentUpdateResponse(
                    status="error",
                    message="re-authentication is needed: the partner refused the refresh token",
                )
            return UserSegmentUpdateResponse(
                status="error", message=f"the partner refused the update: {failure}"
            )
        if result.rejected:
            codes = ", ".join(sorted(set(result.rejected.values())))
            return UserSegmentUpdateResponse(
                status="error",
                message=f"the partner rejected the user's identifiers ({codes})",
                stats=stats_for(mapped, "REJECTED"),
            )
        return UserSegmentUpdateResponse(status="ok", stats=stats_for(mapped, "SUCCESS"))
