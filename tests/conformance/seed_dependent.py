"""A seed-dependent faulty connector: it misreports a batch's counts on some seeds only.

What a seed changes is the users (their identifiers, hence the operations and what each
batch holds), not the runs. The fault keys on that content: a final ``OK`` answer to a
batch of fewer than :data:`SMALL` items holding an identifier value that ends in
:data:`RARE` reports one error too many (BATCH-ACCOUNTING: the counts no longer add up to
the batch). Measured under ``--profile ci`` (the sweep's): seed 0's small batches hold no
such value (every clause passes), seeds 1, 2 and 3's do (BATCH-ACCOUNTING fails);
``tests/test_sweep.py`` sweeps seeds 0..1 and sees it flagged flaky. A change of the runs
(their users, their batches) can move this: measure again, pick another suffix.
"""

from __future__ import annotations

import json
from typing import Any

from contracts.plugin_api import BatchUpdateRequest, BatchUpdateResponse
from harness.reference import ReferenceConnector, ReferenceContext

SMALL = 100
RARE = "83"
LARGER_THAN = 5
"""The random feed lives flush batches of at most 5 items, from users hypothesis draws:
their content depends on the shrinking, not on the seed, so they are left alone."""
"""Batches this large or larger are left alone (the oversized run's and the initial
load's big batches hold such values on every seed)."""


def _values(item: Any) -> list[str]:
    operation = json.loads(item) if isinstance(item, str) else item
    if not isinstance(operation, dict) or not isinstance(operation.get("identifiers"), list):
        return []
    return [
        i["value"]
        for i in operation["identifiers"]
        if isinstance(i, dict) and isinstance(i.get("value"), str)
    ]


class MiscountsOnSomeSeeds(ReferenceConnector):
    """breaks: BATCH-ACCOUNTING on some seeds only (see the module docstring).

    also breaks: BATCH-HONEST on those seeds (the error is no item the partner refused).
    """

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        response = await super().on_batch_update(request, ctx)
        content = request.batch_content
        rare = LARGER_THAN < len(content) < SMALL and any(
            value.endswith(RARE) for item in content for value in _values(item)
        )
        if response.status != "OK" or not rare or response.sent_items_in_error:
            return response
        return response.model_copy(update={"sent_items_in_error": 1})
