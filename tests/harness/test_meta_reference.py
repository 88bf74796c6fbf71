"""The Meta reference connector against the fake partner's Meta face, through the
simulator (``Platform(partner="meta")``), not through the clauses."""

from __future__ import annotations

import json
from typing import Any

from fake_partner import LedgerEntry
from harness.generators import make_users
from harness.platform import Platform
from harness.reference import MetaReferenceConnector
from harness.reference.meta import SCHEMA, invalid_row_reason
from harness.simulator import BatchRecord, Feed
from harness.strategies import maid
from harness.users import SimUser, email_hash

UPLOAD = "POST /v1/segments/{segment_id}/members"


def _platform(scenario: Any = None) -> Platform:
    return Platform(connector=MetaReferenceConnector, partner="meta", scenario=scenario)


def _ready_feed(platform: Platform) -> Feed:
    feed = platform.new_feed()
    assert feed.create().ok
    assert feed.connect().ok
    return feed


def _uploads(platform: Platform, since: int = 0) -> list[LedgerEntry]:
    return [e for e in platform.partner.ledger.entries[since:] if e.route == UPLOAD]


def _batch_bodies(platform: Platform) -> list[dict[str, Any]]:
    return [
        json.loads(ex.response_body)
        for ex in platform.trace.exchanges()
        if ex.path == "/v1/batch_update"
    ]


def test_a_feed_life_converges_on_the_meta_face() -> None:
    with _platform() as platform:
        feed = _ready_feed(platform)
        users = make_users(60, seed=4)
        feed.upsert(users)
        feed.flush()
        assert feed.partner_membership() == feed.expected_membership()
        feed.delete(users[:20])
        feed.flush()
        assert feed.partner_membership() == feed.expected_membership()
        assert len(feed.expected_membership()) > 30
        methods = [ex.method for ex in platform.trace.exchanges() if ex.path.endswith("/users")]
        assert methods == ["POST", "DELETE"]  # Meta removes with DELETE .../users
        for body in _batch_bodies(platform):
            assert body["status"] == "OK"
        accepted = sum(e.accepted for e in _uploads(platform))
        reported = sum(b["sent_items_in_success"] for b in _batch_bodies(platform))
        assert reported == accepted
        segment = platform.gateway.property_value(feed.feed_id, "partner_segment_id")
        assert segment == "23850000000000001"


def test_rows_carry_each_identifier_once_under_one_schema() -> None:
    user = SimUser(
        "up-1",
        emails=("jane@example.com",),
        maids=(maid(1, "ios"), maid(2, "android")),
        account_ids=("crm-1",),
    )
    with _platform() as platform:
        feed = _ready_feed(platform)
        feed.upsert([user])
        feed.flush()
        (upload,) = [ex for ex in platform.trace.exchanges() if ex.path.endswith("/users")]
        payload = json.loads(upload.request_body)["payload"]
        assert payload["schema"] == list(SCHEMA)
        assert payload["data"] == [
            [email_hash("jane@example.com"), user.maids[0].value.lower(), "crm-1"],
            ["", user.maids[1].value.lower(), ""],
        ]
        assert feed.partner_membership() == feed.expected_membership()
    assert invalid_row_reason({"action": "ADD", "row": ["jane@example.com", "", ""]}) == (
        "PII_NOT_HASHED"
    )
    assert invalid_row_reason({"action": "ADD", "row": ["", "", ""]}) == "INVALID_ROW"
    assert invalid_row_reason({"action": "ADD", "row": ["abc", "", ""]}) == (
        "INVALID_SHA256_FORMAT"
    )


def test_creation_reuses_the_audience_of_that_name() -> None:
    with _platform() as platform:
        platform.partner.create_segment("acc-1", "Simulated segment 5001")
        feed = platform.new_feed()
        created = feed.create()
        assert created.ok
        assert "reused existing partner segment 23850000000000001" in str(created)
        assert platform.partner.segment_ids() == ["seg-000001"]  # no duplicate made


def test_throttling_answers_retry_with_at_least_the_minutes_meta_asks() -> None:
    rule = {
        "method": "POST",
        "path": "/v1/segments/*/members",
        "times": 1,
        "effect": {"kind": "error", "status": 429, "retry_after": 150},
    }
    with _platform({"faults": [rule]}) as platform:
        feed = _ready_feed(platform)
        feed.upsert(make_users(5, seed=1))
        (batch,) = feed.flush()
        first, second = batch.attempts
        assert (first.status, second.status) == ("RETRY", "OK")
        assert first.delay_header_seconds is not None
        assert first.delay_header_seconds >= 180  # 150 s rounded up to 3 minutes
        throttled = _uploads(platform)[0]
        assert (throttled.status, throttled.dialect_code, throttled.signal) == (
            400,
            "80003",
            "throttled",
        )
        assert throttled.retry_after == 180
        assert feed.partner_membership() == feed.expected_membership()


def _batch_refused_on_expiry(platform: Platform) -> BatchRecord:
    """On a ``token-expiry-mid-upload`` platform: a ready feed, one batch delivered, then the
    batch the expired token refuses (an ``ERROR``), returned."""
    feed = _ready_feed(platform)
    feed.upsert(make_users(5, seed=1))
    feed.flush()
    feed.upsert(make_users(5, seed=2))
    (batch,) = feed.flush()
    assert batch.outcome == "ERROR"
    return batch


def test_an_expired_token_is_an_error_saying_reauthenticate_and_is_not_retried() -> None:
    with _platform("token-expiry-mid-upload") as platform:
        batch = _batch_refused_on_expiry(platform)
        assert len(batch.attempts) == 1
        body = _batch_bodies(platform)[-1]
        assert "re-authentication is needed" in body["message"]
        assert "190/463" in body["message"]
        assert body["sent_items_in_success"] == 0
        expired = [e for e in _uploads(platform) if e.error_code == "EXPIRED_ACCESS_TOKEN"]
        assert len(expired) == 1
        tokens = [e for e in platform.partner.ledger.entries if e.route == "POST /oauth/token"]
        assert tokens == []  # Meta has no refresh grant: nothing to try
        token = json.loads(platform.gateway.configuration_file("credentials") or b"")
        assert token["access_token"].encode() not in json.dumps(body).encode()


def test_invalid_entries_are_counted_as_exactly_the_errors_meta_reports() -> None:
    with _platform("mixed-invalid-items") as platform:
        feed = _ready_feed(platform)
        feed.upsert([SimUser(f"up-{i}", emails=(f"u{i}@x.org",)) for i in range(200)])
        before = len(platform.partner.ledger.entries)
        feed.flush()
        uploads = _uploads(platform, before)
        answers = [
            json.loads(ex.response_body)
            for ex in platform.trace.exchanges()
            if ex.path.endswith("/users")
        ]
        invalid = sum(a["num_invalid_entries"] for a in answers)
        assert invalid == sum(e.rejected for e in uploads) > 0
        body = _batch_bodies(platform)[-1]
        assert body["status"] == "OK"
        assert body["sent_items_in_error"] == invalid
        assert body["sent_items_in_success"] == 200 - invalid
        assert "INVALID_ENTRIES" in body["message"]


def test_a_linkedin_technical_config_is_refused() -> None:
    with Platform(connector=MetaReferenceConnector, partner="linkedin") as platform:
        created = platform.new_feed().create()
        assert not created.ok
        assert "speaks Meta" in str(created)


def test_reauthenticate_gives_the_connector_a_working_token_again() -> None:
    """After an expiry (dead for good on Meta), ``Platform.reauthenticate`` is the operator's
    new login: a fresh access token in the gateway's credentials, and a new feed works."""
    with _platform("token-expiry-mid-upload") as platform:
        _batch_refused_on_expiry(platform)
        before = json.loads(platform.gateway.configuration_file("credentials") or b"")
        platform.reauthenticate()
        after = json.loads(platform.gateway.configuration_file("credentials") or b"")
        assert after["access_token"] != before["access_token"]
        again = _ready_feed(platform)
        again.upsert(make_users(5, seed=3))
        (batch,) = again.flush()
        assert batch.outcome == "OK", batch
