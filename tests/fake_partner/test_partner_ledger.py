"""The ledger answers the clauses' questions; observers see every partner request."""

from __future__ import annotations

import json

import httpx
from fp_support import adds, bearer, op, ready_segment, refresh, sha, upload

from fake_partner import Partner, fingerprint


def test_ledger_records_who_what_and_outcome(
    client: httpx.Client, partner: Partner, token: str
) -> None:
    segment = ready_segment(client, partner, token)
    answer = upload(client, token, segment, [*adds([sha("a")]), op("ADD", ("EMAIL_SHA256", "x@y"))])
    entries = partner.ledger.entries
    assert [e.sequence for e in entries] == [1, 2, 3]
    assert [e.route for e in entries] == [
        "POST /oauth/token",
        "POST /v1/accounts/{account_id}/segments",
        "POST /v1/segments/{segment_id}/members",
    ]
    grant, create, send = entries
    assert grant.grant_type == "refresh_token"
    assert grant.token == fingerprint(partner.credentials.refresh_token)
    assert create.token == send.token == fingerprint(token)
    assert (create.account_id, create.segment_id, create.status, create.applied) == (
        "acc-1",
        segment,
        201,
        True,
    )
    assert send.request_id == answer.headers["X-Request-Id"]
    assert send.time == partner.clock.now()
    assert send.client_id == "feed-harness-client"
    assert (send.status, send.error_code, send.partial_failure) == (200, None, True)
    assert [(o.index, o.action, o.accepted, o.code) for o in send.operations] == [
        (0, "ADD", True, None),
        (1, "ADD", False, "PII_NOT_HASHED"),
    ]
    assert send.operations[1].identifiers == (("EMAIL_SHA256", "x@y"),)


def test_raw_tokens_never_reach_the_ledger(
    client: httpx.Client, partner: Partner, token: str
) -> None:
    ready_segment(client, partner, token)
    client.get("/v1/accounts", headers=bearer("at-wrong-token"))
    dumped = json.dumps(partner.ledger.to_json()) + repr(partner.ledger.entries)
    dumped += json.dumps(partner.state())
    for secret in (
        token,
        "at-wrong-token",
        partner.credentials.refresh_token,
        partner.credentials.client_secret,
    ):
        assert secret not in dumped
    assert fingerprint("at-wrong-token") in dumped


def test_queries(client: httpx.Client, partner: Partner, token: str) -> None:
    one = ready_segment(client, partner, token, "one")
    two = ready_segment(client, partner, token, "two")
    t0 = partner.clock.now()
    upload(client, token, one, adds([sha("a"), sha("b")]))
    partner.clock.advance(10)
    upload(client, token, two, [*adds([sha("c")]), op("ADD", ("MAID", "bad"))])
    upload(client, token, one, adds([sha("a")]))  # idempotent, still an accepted operation
    client.get("/v1/accounts/acc-2/segments", headers=bearer(token))
    second = refresh(client, partner)
    client.get("/v1/accounts", headers=bearer(second))
    ledger = partner.ledger
    assert ledger.accepted_per_segment() == {one: 3, two: 1}
    assert [o.identifiers[0][1] for o in ledger.accepted_operations(one)] == [
        sha("a"),
        sha("b"),
        sha("a"),
    ]
    assert ledger.values_seen() == {
        ("EMAIL_SHA256", sha("a")),
        ("EMAIL_SHA256", sha("b")),
        ("EMAIL_SHA256", sha("c")),
        ("MAID", "bad"),
    }
    assert len(list(ledger.identifiers_received())) == 5
    assert [e.status for e in ledger.forbidden()] == [403]
    assert ledger.refresh_count() == 2
    assert ledger.requests_per_token()[fingerprint(token)] == 6
    assert ledger.requests_per_token()[fingerprint(second)] == 1
    assert len(ledger.between(t0, t0 + 10)) == 1
    assert len(ledger.before(t0)) == 3
    assert [e.sequence for e in ledger.since(7)] == [8, 9]
    assert len(ledger.for_segment(one)) == 3
    assert len(ledger.uploads()) == 3
    assert ledger.to_json(since=8, operations=False)[0]["route"] == "GET /v1/accounts"


def test_observers_see_every_partner_request(client: httpx.Client, partner: Partner) -> None:
    seen: list[tuple[str, int]] = []

    def observe(request: httpx.Request, outcome: httpx.Response | Exception) -> None:
        assert isinstance(outcome, httpx.Response)
        seen.append((request.url.path, outcome.status_code))

    partner.add_observer(observe)
    client.get("/v1/accounts")
    client.get("/nowhere")
    client.get("/_admin/state", headers={"X-Admin-Token": partner.admin_token})
    partner.remove_observer(observe)
    client.get("/v1/accounts")
    assert seen == [("/v1/accounts", 401), ("/nowhere", 404)]
    assert len(partner.ledger) == 3  # admin calls are not partner traffic


def test_failing_observer_does_not_break_the_partner(
    client: httpx.Client, partner: Partner
) -> None:
    def broken(request: httpx.Request, outcome: httpx.Response | Exception) -> None:
        raise RuntimeError("observer bug")

    partner.add_observer(broken)
    assert client.get("/v1/accounts").status_code == 401
