"""What `user_segment_update` hands back for delivery, and the batch context.

Batched plugins return `BATCH_DELIVERY` items that the platform later sends back in
`batch_update`; non-batched ones return `FILE_DELIVERY` lines. Content goes through as-is.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import Field

from contracts._wire import WireModel

__all__ = [
    "BatchContext",
    "BatchDeliveryItem",
    "DeliveryItem",
    "FileDeliveryItem",
    "StatTag",
    "SyncResult",
    "UpdateStat",
]

T = TypeVar("T")


class BatchDeliveryItem(WireModel, Generic[T]):
    """A line for a later `batch_update`, queued by the platform per `grouping_key`."""

    type: Literal["BATCH_DELIVERY"] = "BATCH_DELIVERY"
    content: T
    grouping_key: str


class FileDeliveryItem(WireModel):
    """A text line appended by the platform to the file named by `destination_token`."""

    type: Literal["FILE_DELIVERY"] = "FILE_DELIVERY"
    content: str
    grouping_key: str
    destination_token: str


DeliveryItem = Annotated[
    BatchDeliveryItem[Any] | FileDeliveryItem,
    Field(discriminator="type"),
]
"""One entry of a `user_segment_update` answer's `data[]`, told apart by its `type`."""

SyncResult = Literal["PROCESSED", "SUCCESS", "REJECTED"]
"""Outcome of one identifier in `stats[]`."""


class StatTag(WireModel):
    """A free key/value tag on a stat."""

    key: str
    value: str


class UpdateStat(WireModel):
    """Per-identifier outcome reported in a `user_segment_update` answer's `stats[]`."""

    identifier: str
    sync_result: SyncResult
    tags: list[StatTag] | None = None


class BatchContext(WireModel):
    """The `context` of a `batch_update` (SDK `AudienceFeedBatchContext`)."""

    endpoint: str
    feed_id: str
    feed_session_id: str
    segment_id: str
    datamart_id: str
    grouping_key: str
    feed_destination_id: str | None = None
