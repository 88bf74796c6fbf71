"""Member uploads through HTTP: per-item errors, partial_failure, limits, bad input, async."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fp_support import BASE_URL, adds, bearer, code_of, op, ready_segment, removes, sha, upload

from fake_partner import Partner

MAID = "123e4567-e89b-12d3-a456-426614174000"


@pytest.fixture
def segment(client: httpx.Client, partner: Partner, token: str) -> str:
    return ready_segment(client, partner, token)


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        (op("ADD", ("EMAIL_SHA256", "me@example.com")), "PII_NOT_HASHED"),
        (op("ADD", ("EMAIL_SHA256", sha("x").upper())), "INVALID_SHA256_FORMAT"),
        (op("ADD", ("PHONE_SHA256", "0612345678")), "INVALID_SHA256_FORMAT"),
        (op("ADD", ("MAID", "nope")), "INVALID_MAID"),
        (op("ADD", ("EMAIL", sha("x"))), "UNSUPPORTED_IDENTIFIER_TYPE"),
        (op("ADD", ("PARTNER_USER_ID", "")), "INVALID_PARTNER_USER_ID"),
        (op("ADD"), "INVALID_IDENTIFIER_COUNT"),
        (op("ADD", *[("PARTNER_USER_ID", f"u{i}") for i in range(11)]), "INVALID_IDENTIFIER_COUNT"),
        (op("UPSERT", ("PARTNER_USER_ID", "u")), "UNSUPPORTED_ACTION"),
        (op("ADD", ("MAID", MAID), ("EMAIL_SHA256", "raw@pii")), "PII_NOT_HASHED"),
    ],
)
def test_invalid_operation_is_rejected_whole_with_its_code(
    client: httpx.Client,
    partner: Partner,
    token: str,
    segment: str,
    operation: dict[str, Any],
    code: str,
) -> None:
    good = op("ADD", ("PARTNER_USER_ID", "good"))
    answer = upload(client, token, segment, [good, operation, good])
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"request_id", "received", "accepted", "rejected", "errors"}
    assert body["request_id"] == answer.headers["X-Request-Id"]
    assert (body["received"], body["accepted"], body["rejected"]) == (3, 2, 1)
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(1, code)]
    assert partner.members(segment) == {("PARTNER_USER_ID", "good")}


def test_ten_identifiers_per_operation_is_fine(
    client: httpx.Client, partner: Partner, token: str, segment: str
) -> None:
    ten = op("ADD", *[("PARTNER_USER_ID", f"u{i}") for i in range(10)])
    assert upload(client, token, segment, [ten]).json()["accepted"] == 1
    assert len(partner.members(segment)) == 10


def test_valid_operations_apply_in_order(
    client: httpx.Client, partner: Partner, token: str, segment: str
) -> None:
    a, b = ("EMAIL_SHA256", sha("a")), ("MAID", MAID)
    ops = [op("ADD", a, b), op("REMOVE", a), op("ADD", a), op("REMOVE", b)]
    assert upload(client, token, segment, ops).json()["accepted"] == 4
    assert partner.members(segment) == {a}


def test_add_and_remove_are_idempotent(
    client: httpx.Client, partner: Partner, token: str, segment: str
) -> None:
    values = [sha("a"), sha("b")]
    for _ in range(2):
        body = upload(client, token, segment, adds(values)).json()
        assert (body["accepted"], body["rejected"]) == (2, 0)
    assert partner.members(segment) == {("EMAIL_SHA256", v) for v in values}
    body = upload(client, token, segment, removes([sha("absent"), values[0]])).json()
    assert (body["accepted"], body["rejected"]) == (2, 0)
    assert partner.members(segment) == {("EMAIL_SHA256", values[1])}
    assert partner.segment(segment)["live_input_count"] == 1


def test_partial_failure_false_applies_nothing(
    client: httpx.Client, partner: Partner, token: str, segment: str
) -> None:
    ops = [*adds([sha("a")]), op("ADD", ("EMAIL_SHA256", "x@y.z")), *adds([sha("b")])]
    answer = upload(client, token, segment, ops, partial_failure=False)
    assert answer.status_code == 400
    assert code_of(answer) == "INVALID_OPERATIONS"
    details = answer.json()["error"]["details"]
    assert [(d["index"], d["code"]) for d in details] == [(1, "PII_NOT_HASHED")]
    assert partner.members(segment) == frozenset()
    assert partner.segment(segment)["status"] == "BUILDING"  # no upload happened
    entry = partner.ledger.entries[-1]
    assert entry.applied is False
    assert [o.accepted for o in entry.operations] == [False, False, False]
    assert [o.code for o in entry.operations] == [None, "PII_NOT_HASHED", None]


def test_partial_failure_false_with_all_valid_applies(
    client: httpx.Client, partner: Partner, token: str, segment: str
) -> None:
    answer = upload(client, token, segment, adds([sha("a")]), partial_failure=False)
    assert answer.json()["accepted"] == 1
    assert len(partner.members(segment)) == 1


def test_empty_batch(client: httpx.Client, token: str, segment: str) -> None:
    answer = upload(client, token, segment, [])
    assert answer.status_code == 400
    assert code_of(answer) == "EMPTY_BATCH"


def test_ten_thousand_operations_pass_and_one_more_does_not(
    client: httpx.Client, partner: Partner, token: str, segment: str
) -> None:
    ops = adds((f"u{i}" for i in range(10_000)), "PARTNER_USER_ID")
    assert upload(client, token, segment, ops).json()["accepted"] == 10_000
    too_many = upload(client, token, segment, [*ops, op("ADD", ("PARTNER_USER_ID", "extra"))])
    assert too_many.status_code == 400
    assert code_of(too_many) == "TOO_MANY_OPERATIONS"
    assert ("PARTNER_USER_ID", "extra") not in partner.members(segment)
    assert len(partner.members(segment)) == 10_000


def test_body_over_5_mib_is_413_and_changes_nothing(
    client: httpx.Client, partner: Partner, token: str, segment: str
) -> None:
    limit = 5 * 1024 * 1024
    body = {"operations": adds([sha("a")]), "pad": "x" * limit}
    answer = client.post(
        f"/v1/segments/{segment}/members",
        headers={**bearer(token), "Content-Type": "application/json"},
        content=json.dumps(body).encode(),
    )
    assert answer.status_code == 413
    assert code_of(answer) == "PAYLOAD_TOO_LARGE"
    assert partner.members(segment) == frozenset()
    at_limit = json.dumps({"operations": adds([sha("a")])}).encode()
    at_limit = at_limit[:-1] + b" " * (limit - len(at_limit)) + b"}"
    assert len(at_limit) == limit
    ok = client.post(f"/v1/segments/{segment}/members", headers=bearer(token), content=at_limit)
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"[1, 2]",
        b'{"operations": "all"}',
        b'{"operations": [{"action": "ADD", "identifiers": [{"type": "MAID", "value": 5}]}]}',
        b'{"operations": [{"action": "ADD", "identifiers": [{"type": "MAID", "value": "x", '
        b'"hash": 1}]}]}',
        b'{"operations": [{"action": "ADD", "identifiers": []}], "partial_failure": "yes"}',
        b'{"operations": [{"action": "ADD", "identifiers": []}], "dry_run": true}',
        b'{"operations": [{"action": "ADD"}]}',
        b"\xff\xfe",
    ],
)
def test_malformed_uploads_are_400_and_change_nothing(
    client: httpx.Client, partner: Partner, token: str, segment: str, body: bytes
) -> None:
    upload(client, token, segment, adds([sha("kept")]))
    before = partner.state(include_members=True)
    answer = client.post(
        f"/v1/segments/{segment}/members",
        headers={**bearer(token), "Content-Type": "application/json"},
        content=body,
    )
    assert answer.status_code == 400
    assert code_of(answer) == "INVALID_REQUEST"
    assert partner.state(include_members=True)["segments"] == before["segments"]


def test_malformed_upload_values_still_reach_the_ledger(
    client: httpx.Client, partner: Partner, token: str, segment: str
) -> None:
    body = (
        b'{"operations": [{"action": "ADD", "identifiers": '
        b'[{"type": "EMAIL", "value": "a@b.c", "x": 1}]}]}'
    )
    client.post(f"/v1/segments/{segment}/members", headers=bearer(token), content=body)
    assert ("EMAIL", "a@b.c") in partner.ledger.values_seen()


def test_members_listing_paginates(
    client: httpx.Client, partner: Partner, token: str, segment: str
) -> None:
    values = [f"u{i}" for i in range(7)]
    upload(client, token, segment, adds(values, "PARTNER_USER_ID"))
    seen = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/segments/{segment}/members", params=params, headers=bearer(token))
        assert page.status_code == 200
        seen += [(m["type"], m["value"]) for m in page.json()["members"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [("PARTNER_USER_ID", v) for v in values]


def test_every_answer_carries_a_request_id(client: httpx.Client, token: str, segment: str) -> None:
    answers = [
        client.get("/v1/accounts", headers=bearer(token)),
        client.get("/v1/accounts"),
        client.get("/nowhere"),
        client.delete("/v1/accounts"),
        client.post("/oauth/token", data={}),
        client.get(f"/v1/segments/{segment}/members", headers=bearer(token)),
        client.delete(f"/v1/segments/{segment}", headers=bearer(token)),
    ]
    ids = [a.headers["X-Request-Id"] for a in answers]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    assert answers[2].status_code == 404
    assert code_of(answers[2]) == "ROUTE_NOT_FOUND"
    assert answers[3].status_code == 405
    assert answers[3].headers["Allow"] == "GET"


def test_async_client_reaches_the_partner(partner: Partner) -> None:
    token = partner.seed_access_token(["acc-1"])

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=BASE_URL, headers=bearer(token)) as client:
            created = await client.post("/v1/accounts/acc-1/segments", json={"name": "async"})
            partner.clock.advance(60)
            segment_id = created.json()["id"]
            uploads = await asyncio.gather(
                *[
                    client.post(
                        f"/v1/segments/{segment_id}/members",
                        json={"operations": adds([sha(f"{i}")])},
                    )
                    for i in range(5)
                ]
            )
            return [created, *uploads]

    with partner.mock():
        answers = asyncio.run(scenario())
    assert answers[0].status_code == 201
    assert [a.json()["accepted"] for a in answers[1:]] == [1] * 5
    assert len(partner.members(answers[0].json()["id"])) == 5
