"""The simulator's policy (``platform-simulator.md``) against small scripted connectors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fake_partner.clock import VirtualClock
from harness.drivers import InProcessDriver, PlatformEnv, Receive, Scope, Send
from harness.simulator import (
    ConnectorUnavailableError,
    Feed,
    FeedStateError,
    SimulatorSettings,
)
from harness.trace import Trace
from harness.users import SimUser

Reply = tuple[int, dict[str, Any], dict[str, str]]
Behaviour = Callable[[dict[str, Any]], Reply]
HANG: Reply = (0, {}, {})


def _update_ok(body: dict[str, Any]) -> Reply:
    point = body["user_identifiers"][0]["user_point_id"]
    item = {"type": "BATCH_DELIVERY", "content": {"id": point}, "grouping_key": point[-1]}
    return 200, {"status": "ok", "data": [item]}, {}


def _batch_ok(body: dict[str, Any]) -> Reply:
    size = len(body["batch_content"])
    return 200, {"status": "OK", "sent_items_in_success": size, "sent_items_in_error": 0}, {}


class Scripted:
    """A stand-in connector: default answers per path, overridden by queued replies."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any] | None]] = []
        self.queued: dict[str, list[Reply]] = {}
        self.default: dict[str, Behaviour] = {
            "/v1/external_segment_creation": lambda _: (200, {"status": "ok"}, {}),
            "/v1/external_segment_connection": lambda _: (200, {"status": "ok"}, {}),
            "/v1/user_segment_update": _update_ok,
            "/v1/batch_update": _batch_ok,
            "/v1/troubleshoot": lambda b: (200, {"status": "ok", "data": b}, {}),
        }

    def script(self, path: str, *replies: Reply) -> None:
        self.queued.setdefault(path, []).extend(replies)

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = (await receive()).get("body", b"")
        body = json.loads(raw) if raw else None
        path = scope["path"]
        self.calls.append((path, body))
        queue = self.queued.get(path)
        status, payload, headers = queue.pop(0) if queue else self.default[path](body or {})
        if status == 0:
            await asyncio.Event().wait()
        wire = [(b"content-type", b"text/html")]
        wire += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": wire})
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


class Rig:
    """A feed driven against a scripted connector on a virtual clock."""

    def __init__(self, **settings: Any) -> None:
        self.connector = Scripted()
        self.clock = VirtualClock()
        self.trace = Trace(self.clock.now)
        self.driver = InProcessDriver(self.connector, trace=self.trace)
        self.driver.start(PlatformEnv("127.0.0.1", 1, "w", "t"))
        self.settings = SimulatorSettings(**settings)
        self.feed = Feed(
            driver=self.driver,
            clock=self.clock,
            settings=self.settings,
            feed_id="feed-1",
            segment_id="seg-1",
            datamart_id="dm-1",
            identifying=("USER_EMAIL",),
        )
        self.t0 = self.clock.now()

    def elapsed(self) -> float:
        return self.clock.now() - self.t0

    def active(self) -> Feed:
        assert self.feed.create().ok
        assert self.feed.connect().ok
        return self.feed


@pytest.fixture
def rig() -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(**settings: Any) -> Rig:
        made = Rig(**settings)
        rigs.append(made)
        return made

    yield make
    for made in rigs:
        made.driver.stop()


def users(n: int) -> list[SimUser]:
    return [SimUser(f"up-{i}", emails=(f"u{i}@x.io",)) for i in range(n)]


def not_ready() -> Reply:
    return 502, {"status": "external_segment_not_ready_yet"}, {}


# --------------------------------------------------------------------------- lifecycle


def test_connection_polls_on_502_on_the_virtual_clock_then_activates(rig: Any) -> None:
    r = rig()
    r.connector.script("/v1/external_segment_connection", not_ready(), not_ready(), not_ready())
    created = r.feed.create()
    assert created.ok
    assert r.feed.state == "PUBLISHED"
    outcome = r.feed.connect()
    assert outcome.ok
    assert outcome.attempts == 4
    assert r.elapsed() == 90.0
    assert r.feed.state == "ACTIVE"
    assert r.connector.calls[0] == (
        "/v1/external_segment_creation",
        {"feed_id": "feed-1", "datamart_id": "dm-1", "segment_id": "seg-1"},
    )


def test_connection_gives_up_after_the_connection_timeout(rig: Any) -> None:
    r = rig(connection_timeout=300)
    r.connector.default["/v1/external_segment_connection"] = lambda _: not_ready()
    r.feed.create()
    outcome = r.feed.connect()
    assert not outcome.ok
    assert outcome.attempts == 11  # t = 0, 30, ..., 300
    assert r.elapsed() == 300.0
    assert outcome.status == "external_segment_not_ready_yet"
    assert r.feed.state == "FAILED"
    with pytest.raises(FeedStateError, match="not ACTIVE"):
        r.feed.upsert(users(1))


def test_creation_error_fails_the_feed_with_the_connector_message(rig: Any) -> None:
    r = rig()
    r.connector.script(
        "/v1/external_segment_creation",
        (500, {"status": "error", "message": "partner_account_id is missing"}, {}),
    )
    outcome = r.feed.create()
    assert not outcome.ok
    assert outcome.message == "partner_account_id is missing"
    assert r.feed.state == "FAILED"
    assert "partner_account_id is missing" in (r.feed.failure or "")


def test_connect_before_create_is_refused(rig: Any) -> None:
    with pytest.raises(FeedStateError, match="create"):
        rig().feed.connect()


# --------------------------------------------------------------------------- updates


def test_update_429_is_resent_after_the_delay_header_on_the_virtual_clock(rig: Any) -> None:
    r = rig()
    feed = r.active()
    r.connector.script(
        "/v1/user_segment_update",
        (
            429,
            {"status": "retry", "next_msg_delay_in_ms": 45000},
            {"x-mics-next-msg-delay": "45000"},
        ),
        (429, {"status": "retry"}, {}),
    )
    start = r.clock.now()
    (record,) = feed.upsert(users(1))
    assert record.attempts == 3
    assert record.outcome == "ok"
    assert r.clock.now() - start == 45 + 2  # max(45 s, backoff 1 s), then backoff 2 s
    bodies = [b for p, b in r.connector.calls if p == "/v1/user_segment_update"]
    assert bodies[0] == bodies[1] == bodies[2]  # the same request re-sent
    accounting = feed.accounting
    assert accounting.users_sent == 1
    assert accounting.update_attempts == 3
    assert accounting.update_retries == 2
    assert accounting.updates_answered == {"ok": 1}
    assert accounting.virtual_seconds_waited == 47


def test_update_429_forever_gives_up_after_max_update_attempts(rig: Any) -> None:
    r = rig(max_update_attempts=3)
    feed = r.active()
    r.connector.default["/v1/user_segment_update"] = lambda _: (429, {"status": "retry"}, {})
    (record,) = feed.upsert(users(1))
    assert (record.attempts, record.outcome) == (3, "retry")
    assert feed.accounting.updates_answered == {"retry": 1}
    assert feed.pending == 0


def test_update_answers_are_counted_per_status(rig: Any) -> None:
    r = rig()
    feed = r.active()
    r.connector.script(
        "/v1/user_segment_update",
        (400, {"status": "no_eligible_identifier"}, {}),
        (500, {"status": "error", "message": "boom"}, {}),
        (200, {"status": "ok"}, {}),
    )
    feed.upsert(users(4))
    feed.delete(users(1))
    accounting = feed.accounting
    assert accounting.updates_answered == {"no_eligible_identifier": 1, "error": 1, "ok": 3}
    assert accounting.operations == {"UPSERT": 4, "DELETE": 1}
    assert accounting.delivery_items == {"BATCH_DELIVERY": 2}
    assert feed.pending == 2
    body = r.connector.calls[-1][1]
    assert body is not None
    assert body["operation"] == "DELETE"
    assert body["session_id"] == feed.session_id
    assert body["ts"] == int(r.clock.now() * 1000)


# --------------------------------------------------------------------------- batching


def test_items_are_batched_per_grouping_key_and_flushed_at_the_max_size(rig: Any) -> None:
    r = rig(batch_flush_max_size=3)
    feed = r.active()
    feed.upsert(users(8))  # grouping keys: last char of up-0 .. up-7
    r.connector.default["/v1/user_segment_update"] = lambda b: (
        200,
        {
            "status": "ok",
            "data": [
                {"type": "BATCH_DELIVERY", "content": f"line-{i}", "grouping_key": "all"}
                for i in range(2)
            ],
        },
        {},
    )
    feed.upsert(users(4))  # 8 items in key "all": 3 + 3 flushed on the way, 2 pending
    assert [len(b.items) for b in feed.batches] == [3, 3]
    assert feed.pending == 8 + 2
    batches = feed.flush()
    assert sorted(len(b.items) for b in batches) == [1] * 8 + [2]
    assert feed.pending == 0
    batch_bodies = [b for p, b in r.connector.calls if p == "/v1/batch_update"]
    first = batch_bodies[0]
    assert first is not None
    assert first["batch_content"] == ["line-0", "line-1", "line-0"]
    assert first["context"] == {
        "endpoint": "/v1/user_segment_update",
        "feed_id": "feed-1",
        "feed_session_id": feed.session_id,
        "segment_id": "seg-1",
        "datamart_id": "dm-1",
        "grouping_key": "all",
    }
    assert feed.batches[2].items[0].update is feed.updates[0]
    assert feed.accounting.items_delivered == {"OK": 16}
    assert feed.accounting.items_reported_success == 16


def test_batch_retry_is_resent_after_the_delay_and_only_the_final_counts_count(rig: Any) -> None:
    r = rig()
    feed = r.active()
    feed.upsert(users(3))
    r.connector.default["/v1/user_segment_update"] = _update_ok
    r.connector.script(
        "/v1/batch_update",
        (
            503,
            {"status": "RETRY", "sent_items_in_success": 0, "sent_items_in_error": 1},
            {"x-mics-next-msg-delay": "20000"},
        ),
        (200, {"status": "OK", "sent_items_in_success": 1, "sent_items_in_error": 0}, {}),
    )
    start = r.clock.now()
    first, *_ = feed.flush()
    assert first.outcome == "OK"
    assert [a.final for a in first.attempts] == [False, True]
    assert [a.status for a in first.attempts] == ["RETRY", "OK"]
    assert first.attempts[0].waited_seconds == 20.0
    assert r.clock.now() - start == 20.0
    accounting = feed.accounting
    assert accounting.batch_retries == 1
    assert accounting.items_delivered == {"OK": 3}
    assert (accounting.items_reported_success, accounting.items_reported_error) == (3, 0)
    assert [e.tags["attempt"] for e in r.trace.exchanges(path="/v1/batch_update")] == [1, 2, 1, 1]


def test_batch_error_is_dead_and_never_resent(rig: Any) -> None:
    r = rig()
    feed = r.active()
    feed.upsert(users(1))
    r.connector.script(
        "/v1/batch_update",
        (400, {"status": "ERROR", "sent_items_in_success": 0, "sent_items_in_error": 1}, {}),
    )
    (batch,) = feed.flush()
    assert batch.outcome == "ERROR"
    assert len(batch.attempts) == 1
    assert r.connector.paths().count("/v1/batch_update") == 1
    assert feed.accounting.items_delivered == {"ERROR": 1}
    assert feed.accounting.items_reported_error == 1
    assert feed.accounting.items_dead_lettered == 0


def test_batch_is_dead_lettered_after_max_attempts_with_exponential_backoff(rig: Any) -> None:
    r = rig(max_batch_attempts=5)
    feed = r.active()
    feed.upsert(users(1))
    r.connector.default["/v1/batch_update"] = lambda _: (502, {"status": "error"}, {})
    start = r.clock.now()
    (batch,) = feed.flush()
    assert batch.outcome == "DEAD_LETTER"
    assert len(batch.attempts) == 5
    assert [a.waited_seconds for a in batch.attempts] == [1, 2, 4, 8, 0]
    assert r.clock.now() - start == 15
    assert feed.accounting.items_dead_lettered == 1
    assert feed.accounting.batches_dead_lettered == 1
    assert feed.accounting.items_delivered == {}


def test_backoff_is_capped_at_backoff_max() -> None:
    settings = SimulatorSettings()
    assert [settings.backoff(n) for n in (1, 2, 9, 10, 30)] == [1, 2, 256, 300, 300]


def test_batch_timeout_is_retried_and_a_dead_connector_stops_the_run(rig: Any) -> None:
    r = rig(call_timeout=0.2, max_consecutive_failures=3)
    feed = r.active()
    feed.upsert(users(1))
    r.connector.script("/v1/batch_update", HANG)
    (batch,) = feed.flush()
    assert [a.failure for a in batch.attempts] == ["timeout", None]
    assert batch.outcome == "OK"
    r.connector.default["/v1/user_segment_update"] = lambda _: HANG
    with pytest.raises(ConnectorUnavailableError, match="3 calls in a row"):
        feed.upsert(users(10))
    assert feed.accounting.updates_answered["timeout"] == 3
    assert feed.state == "FAILED"


def test_raw_batches_go_through_the_same_policy(rig: Any) -> None:
    r = rig()
    feed = r.active()
    empty = feed.batch_update_raw([])
    assert empty.raw
    assert empty.outcome == "OK"
    assert empty.attempts[0].sent_items_in_success == 0
    sent = r.connector.calls[-1][1]
    assert sent is not None
    assert sent["batch_content"] == []


# --------------------------------------------------------------------------- files, sessions


def test_file_delivery_appends_per_destination_token_and_grouping_key(rig: Any) -> None:
    r = rig()
    feed = r.active()
    r.connector.default["/v1/user_segment_update"] = lambda b: (
        200,
        {
            "status": "ok",
            "data": [
                {
                    "type": "FILE_DELIVERY",
                    "content": f"{b['operation']},{b['user_identifiers'][0]['user_point_id']}\n",
                    "grouping_key": "g1",
                    "destination_token": "dest-1",
                }
            ],
        },
        {},
    )
    feed.upsert(users(2))
    feed.delete(users(1))
    assert list(feed.files) == [("dest-1", "g1")]
    assert feed.files["dest-1", "g1"].text == "UPSERT,up-0\nUPSERT,up-1\nDELETE,up-0\n"
    assert feed.accounting.files == 1
    assert feed.accounting.delivery_items == {"FILE_DELIVERY": 3}
    assert feed.flush() == []


def test_new_session_flushes_the_old_one_and_counts_apart(rig: Any) -> None:
    r = rig()
    feed = r.active()
    first = feed.session_id
    feed.upsert(users(2))
    second = feed.new_session()
    assert second != first
    assert feed.sessions[first].items_delivered == {"OK": 2}
    assert feed.accounting.session_id == second
    assert feed.accounting.users_sent == 0
    batch_body = next(b for p, b in r.connector.calls if p == "/v1/batch_update")
    assert batch_body is not None
    assert batch_body["context"]["feed_session_id"] == first


def test_call_any_route_with_the_feed_identity_or_no_body(rig: Any) -> None:
    r = rig()
    answer = r.feed.troubleshoot("UNKNOWN_ACTION")
    assert answer.json["data"]["action"] == "UNKNOWN_ACTION"
    r.connector.default["/v1/troubleshoot"] = lambda b: (500, {"error": "Missing request body"}, {})
    empty = r.feed.call("troubleshoot", b"")
    assert empty.status == 500
    assert r.connector.calls[-1] == ("/v1/troubleshoot", None)


def test_expected_membership_replays_what_was_sent(rig: Any) -> None:
    r = rig()
    feed = r.active()
    people = users(3)
    feed.upsert(people)
    feed.delete(people[:1])
    assert {v for _, v in feed.expected_membership()} == {
        e for u in people[1:] for _, e in u.eligible_partner_identifiers(["USER_EMAIL"])
    }
    with pytest.raises(FeedStateError, match=r"Platform\.new_feed"):
        feed.partner_membership()
