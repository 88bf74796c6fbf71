"""The ledger keeps an upload's operations compactly and reads them back unchanged."""

from __future__ import annotations

import tracemalloc

from fake_partner.ledger import LedgerEntry, LedgerOperation, LedgerOperations


def _records() -> tuple[LedgerOperation, ...]:
    return (
        LedgerOperation(0, "ADD", (("EMAIL_SHA256", "a" * 64),), True, None),
        LedgerOperation(1, "UPSERT", (("EMAIL", "x@y"),), False, "UNSUPPORTED_ACTION"),
        LedgerOperation(2, "REMOVE", (("PARTNER_USER_ID", "u1"), ("MAID", "m-1")), True, None),
        LedgerOperation(3, "ADD", (), False, None),
    )


def _entry(operations: object) -> LedgerEntry:
    return LedgerEntry(
        sequence=1,
        request_id="req-000001",
        time=0.0,
        answered_at=0.0,
        method="POST",
        path="/v1/segments/s/members",
        route="POST /v1/segments/{segment_id}/members",
        token=None,
        client_id=None,
        account_id="acc-1",
        segment_id="s",
        status=200,
        error_code=None,
        operations=operations,  # type: ignore[arg-type]
        applied=True,
        faults=(),
    )


def test_operations_read_back_as_the_records_they_came_from() -> None:
    records = _records()
    entry = _entry(records)
    assert isinstance(entry.operations, LedgerOperations)
    assert list(entry.operations) == list(records)
    assert entry.operations == records
    assert entry.operations[1] == records[1]
    assert entry.operations[-1] == records[3]
    assert entry.operations[1:3] == records[1:3]
    assert len(entry.operations) == 4
    assert (entry.accepted, entry.rejected) == (2, 1)
    assert entry.compact.rejected_indices == {1: "UNSUPPORTED_ACTION"}
    assert entry.compact.identifiers() == tuple(m for r in records for m in r.identifiers)
    assert entry.to_json()["operations"] == [r.to_json() for r in records]
    assert (entry.to_json()["accepted"], entry.to_json()["received"]) == (2, 4)


def test_built_from_what_the_http_face_knows() -> None:
    pairs = [("ADD", (("EMAIL_SHA256", "b" * 64),)), ("REMOVE", (("MAID", "m"),))]
    none_judged = LedgerOperations(pairs)
    assert [(o.accepted, o.code) for o in none_judged] == [(False, None), (False, None)]
    judged = LedgerOperations(pairs, [True, False], [None, "PII_NOT_HASHED"])
    assert [(o.index, o.action, o.accepted, o.code) for o in judged] == [
        (0, "ADD", True, None),
        (1, "REMOVE", False, "PII_NOT_HASHED"),
    ]


def test_many_distinct_actions_are_kept_exactly() -> None:
    pairs = [(f"ACTION-{i}", (("MAID", f"m{i}"),)) for i in range(300)]
    operations = LedgerOperations(pairs)
    assert [o.action for o in operations] == [a for a, _ in pairs]


def test_compact_operations_take_a_fraction_of_the_records_memory() -> None:
    members = [(("PARTNER_USER_ID", f"user-{i}"),) for i in range(10_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        records = tuple(LedgerOperation(i, "ADD", m, True, None) for i, m in enumerate(members))
        as_records = tracemalloc.get_traced_memory()[0] - before
        before = tracemalloc.get_traced_memory()[0]
        compact = LedgerOperations.of(records)  # the records still alive: its own bytes only
        as_compact = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(compact) == 10_000
    assert compact == records
    assert as_compact < as_records / 4
