"""The file-delivery reference connector: updates become CSV lines the platform files."""

from __future__ import annotations

from typing import Any

from contracts.delivery import FileDeliveryItem
from contracts.plugin_api import UserSegmentUpdateRequest, UserSegmentUpdateResponse
from harness.reference.config import PARTNER_SEGMENT_ID
from harness.reference.core import ReferenceContext, ReferenceCore, stats_for

__all__ = ["CSV_HEADER", "FileDeliveryReferenceConnector"]

CSV_HEADER = "action,type,value"
"""Columns of every line (the platform appends lines; no header line is sent)."""


class FileDeliveryReferenceConnector(ReferenceCore):
    """Answers one ``FILE_DELIVERY`` line ``ACTION,TYPE,VALUE`` per identifier."""

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> UserSegmentUpdateResponse:
        """CSV lines for the partner segment's file (``destination_token``)."""
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
        action = "ADD" if request.operation == "UPSERT" else "REMOVE"
        token = f"partner-segment-{segment_id}"
        data: list[Any] = [
            FileDeliveryItem(
                content=f"{action},{m.type},{m.value}\n",
                grouping_key=ctx.grouping_key,
                destination_token=token,
            )
            for m in mapped
        ]
        return UserSegmentUpdateResponse(
            status="ok", data=data, stats=stats_for(mapped, "PROCESSED")
        )
