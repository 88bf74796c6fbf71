"""RunView, the one join of trace and ledger every check reads, on hand-built runs."""

from __future__ import annotations

from harness.clauses.view import RunView, view_of
from tests.clauses.builder import RunBuilder


def test_a_partner_exchange_is_linked_to_its_entry_and_to_the_call_it_was_made_in() -> None:
    run = RunBuilder()
    with run.call("batch_update", {"batch_content": ["a"]}) as call:
        entry = run.upload(accepted=1)
        call.answer(200, {"status": "OK", "sent_items_in_success": 1, "sent_items_in_error": 0})
    view = view_of(run.record)
    (upload,) = view.uploads(call.exchange)
    assert view.entry(upload) is entry
    assert view.exchange_of(entry) is upload
    assert view.owner(entry) is call.exchange
    assert view.nested_entries(call.exchange) == [entry]
    assert view.accepted([upload]) == (1, 0)


def test_dropped_connections_are_paired_in_order_per_method_and_path() -> None:
    """A dropped request carries no X-Request-Id back: the n-th dropped upload of the trace
    is the n-th dropped upload entry of the ledger, whatever other route dropped between."""
    run = RunBuilder()
    with run.call("batch_update", {"batch_content": ["a"]}) as call:
        first = run.upload(accepted=1, status=None)
        read = run.segment_read(status=None)
        second = run.upload(accepted=1, status=None)
        kept = run.upload(accepted=1)
        call.answer(503, {"status": "RETRY"})
    view = view_of(run.record)
    uploads = view.uploads(call.exchange)
    assert [view.entry(u) for u in uploads] == [first, second, kept]
    (segment_read,) = [e for e in view.nested(call.exchange) if e.method == "GET"]
    assert view.entry(segment_read) is read
    assert view.seq_of(second) == uploads[1].seq


def test_a_window_sees_only_its_own_exchanges_and_entries() -> None:
    """A stateful example (``first_seq``/``first_ledger``) never judges what an earlier
    example on the same platform did."""
    run = RunBuilder()
    with run.call("batch_update", {"batch_content": ["a"]}) as old:
        run.upload(accepted=1)
        old.answer(200, {"status": "OK", "sent_items_in_success": 1, "sent_items_in_error": 0})
    run.record.first_seq = run.platform.trace.next_seq()
    run.record.first_ledger = len(run.platform.partner.ledger)
    with run.call("batch_update", {"batch_content": ["b"]}) as new:
        entry = run.upload(rejected=1)
        new.answer(200, {"status": "OK", "sent_items_in_success": 0, "sent_items_in_error": 1})
    view = RunView(run.record)
    assert [c.seq for c in view.calls] == [new.seq]
    assert view.entries == (entry,)
    assert view.exchange(old.seq) is None
    assert view.call(new.seq) is new.exchange


def test_the_view_is_rebuilt_when_the_run_grew() -> None:
    run = RunBuilder()
    with run.call("batch_update", {"batch_content": []}) as call:
        call.answer(200, {"status": "OK", "sent_items_in_success": 0, "sent_items_in_error": 0})
    before = view_of(run.record)
    assert view_of(run.record) is before
    with run.call("batch_update", {"batch_content": ["a"]}) as later:
        run.upload(accepted=1)
        later.answer(200, {"status": "OK", "sent_items_in_success": 1, "sent_items_in_error": 0})
    after = view_of(run.record)
    assert after is not before
    assert len(after.uploads()) == 1


def test_the_harness_own_partner_requests_are_not_the_connectors() -> None:
    run = RunBuilder()
    with run.call("batch_update", {"batch_content": []}) as call:
        run.segment_read()
        call.answer(200, {"status": "OK", "sent_items_in_success": 0, "sent_items_in_error": 0})
    exchange = run.platform.trace.exchanges("connector->partner")[0]
    exchange.tags["actor"] = "harness: user consent"
    assert view_of(run.record).nested(call.exchange) == []


def test_an_exchange_reads_its_answer() -> None:
    """The answer's body, status, message, delay, partner code and Retry-After, as
    properties: every check reads them there."""
    run = RunBuilder()
    with run.call("batch_update", {"batch_content": ["a"]}) as call:
        limited = run.upload(status=429, error_code="RATE_LIMITED", headers={"Retry-After": "30"})
        call.answer(
            503,
            {"status": "RETRY", "message": "later", "next_msg_delay_in_ms": 30_000},
            {"x-mics-next-msg-delay": "31000"},
        )
    exchange = call.exchange
    assert exchange.answer is not None
    assert (exchange.answer_status, exchange.message) == ("RETRY", "later")
    assert exchange.delay_ms == 31_000.0, "the header first"
    upload = view_of(run.record).exchange_of(limited)
    assert upload is not None
    assert (upload.partner_code, upload.retry_after) == ("RATE_LIMITED", 30.0)
    assert upload.answer_status is None
    assert upload.message == ""
