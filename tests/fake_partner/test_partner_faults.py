"""Fault rules and the named presets: each does what its one line says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fp_support import (
    BASE_URL,
    adds,
    bearer,
    code_of,
    create_segment,
    ready_segment,
    refresh,
    sha,
    upload,
)

from fake_partner import Partner, Scenario, item_rejected, list_presets
from fake_partner.faults import (
    ApplyThenFailEffect,
    ErrorEffect,
    FaultRule,
    ForceStatusEffect,
    HoldProvisioningEffect,
    LatencyEffect,
    Window,
)

Make = Callable[[Scenario], tuple[Partner, httpx.Client]]


@pytest.fixture
def make() -> Iterator[Make]:
    """``make(scenario)`` -> (partner, client); several partners may coexist in one test."""
    clients: list[httpx.Client] = []

    def build(scenario: Scenario) -> tuple[Partner, httpx.Client]:
        partner = Partner(scenario)
        client = httpx.Client(base_url=BASE_URL, transport=partner.transport())
        clients.append(client)
        return partner, client

    yield build
    for client in clients:
        client.close()


def _build(make: Make, scenario: Scenario) -> tuple[Partner, httpx.Client]:
    return make(scenario)


def test_presets_are_listed_with_one_line_each() -> None:
    presets = list_presets()
    for name in (
        "token-expiry-mid-upload",
        "rate-limit-burst",
        "rate-limit-no-retry-after",
        "not-ready-for-3-polls",
        "flaky-5xx",
        "ambiguous-503",
        "mixed-invalid-items",
        "invalid-grant",
    ):
        assert name in presets
    for description in presets.values():
        assert description
        assert "\n" not in description
    readme = (Path(__file__).resolve().parents[2] / "fake_partner" / "README.md").read_text()
    for name in presets:
        assert f"- `{name}`: " in readme


def test_token_expiry_mid_upload(make: Make) -> None:
    partner, client = _build(make, Scenario(presets=("token-expiry-mid-upload",)))
    token = refresh(client, partner)
    segment = ready_segment(client, partner, token)
    assert upload(client, token, segment, adds([sha("1")])).status_code == 200
    second = upload(client, token, segment, adds([sha("2")]))
    assert second.status_code == 401
    assert code_of(second) == "EXPIRED_ACCESS_TOKEN"
    assert ("EMAIL_SHA256", sha("2")) not in partner.members(segment)
    token = refresh(client, partner)
    assert upload(client, token, segment, adds([sha("2")])).status_code == 200
    assert len(partner.members(segment)) == 2
    assert partner.ledger.refresh_count() == 2


@pytest.mark.parametrize("preset", ["rate-limit-burst", "rate-limit-no-retry-after"])
def test_rate_limit_bursts(make: Make, preset: str) -> None:
    partner, client = _build(make, Scenario(presets=(preset,)))
    token = partner.seed_access_token(["acc-1"])
    statuses = []
    answers = []
    for _ in range(7):
        answer = client.get("/v1/accounts", headers=bearer(token))
        statuses.append(answer.status_code)
        answers.append(answer)
    assert statuses == [200, 200, 429, 429, 429, 200, 200]
    limited = answers[2]
    assert code_of(limited) == "RATE_LIMITED"
    if preset == "rate-limit-burst":
        assert limited.headers["Retry-After"] == "30"
        assert limited.headers["X-RateLimit-Remaining"] == "0"
    else:
        assert "Retry-After" not in limited.headers
        assert "X-RateLimit-Limit" not in limited.headers
        assert "X-RateLimit-Limit" not in answers[0].headers


def test_not_ready_for_3_polls(make: Make) -> None:
    partner, client = _build(make, Scenario(presets=("not-ready-for-3-polls",)))
    token = partner.seed_access_token(["acc-1"])
    segment = create_segment(client, token)
    polls = [client.get(f"/v1/segments/{segment}", headers=bearer(token)) for _ in range(4)]
    assert [p.status_code for p in polls] == [404, 404, 404, 200]
    assert {code_of(p) for p in polls[:3]} == {"SEGMENT_NOT_READY"}
    assert polls[3].json()["status"] == "BUILDING"  # ready although the clock never moved


def test_flaky_5xx_is_seeded(make: Make) -> None:
    def pattern(seed: int) -> list[int]:
        partner, client = _build(make, Scenario(presets=("flaky-5xx",), seed=seed))
        token = partner.seed_access_token(["acc-1"])
        return [client.get("/v1/accounts", headers=bearer(token)).status_code for _ in range(200)]

    first = pattern(1)
    assert set(first) == {200, 503}
    assert 20 <= first.count(503) <= 60
    assert pattern(1) == first
    assert pattern(2) != first


def test_ambiguous_503_applies_then_fails(make: Make) -> None:
    partner, client = _build(make, Scenario(presets=("ambiguous-503",)))
    token = partner.seed_access_token(["acc-1"])
    segment = ready_segment(client, partner, token)
    answer = upload(client, token, segment, adds([sha("a")]))
    assert answer.status_code == 503
    assert code_of(answer) == "SERVICE_UNAVAILABLE"
    assert partner.members(segment) == {("EMAIL_SHA256", sha("a"))}
    entry = partner.ledger.uploads(segment)[0]
    assert entry.applied
    assert entry.status == 503
    assert entry.faults == ("apply_then_fail",)
    assert [o.accepted for o in entry.operations] == [True]
    assert upload(client, token, segment, adds([sha("b")])).status_code == 200


def test_mixed_invalid_items_rejects_a_stable_seeded_fraction(make: Make) -> None:
    partner, client = _build(make, Scenario(presets=("mixed-invalid-items",), seed=5))
    token = partner.seed_access_token(["acc-1"])
    segment = ready_segment(client, partner, token)
    values = [sha(f"user-{i}") for i in range(1000)]
    expected = [i for i, v in enumerate(values) if item_rejected(v, 0.1, 5)]
    assert 60 < len(expected) < 140
    for _ in range(2):  # a retry meets the same rejections
        body = upload(client, token, segment, adds(values)).json()
        assert [e["index"] for e in body["errors"]] == expected
        assert {e["code"] for e in body["errors"]} == {"IDENTIFIER_REJECTED"}
        assert body["accepted"] == 1000 - len(expected)
    assert len(partner.members(segment)) == 1000 - len(expected)


def test_invalid_grant_refuses_the_refresh_token(make: Make) -> None:
    partner, client = _build(make, Scenario(presets=("invalid-grant",)))
    credentials = partner.credentials
    for _ in range(2):
        answer = client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": credentials.refresh_token,
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
            },
        )
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_grant"


def test_dropped_connection_applies_nothing(make: Make) -> None:
    partner, client = _build(make, Scenario(presets=("dropped-connection",)))
    seen: list[object] = []
    partner.add_observer(lambda request, outcome: seen.append(outcome))
    token = partner.seed_access_token(["acc-1"])
    segment = ready_segment(client, partner, token)
    with pytest.raises(httpx.RemoteProtocolError):
        upload(client, token, segment, adds([sha("a")]))
    assert partner.members(segment) == frozenset()
    entry = partner.ledger.entries[-1]
    assert entry.dropped
    assert entry.status is None
    assert not entry.applied
    assert isinstance(seen[-1], httpx.RemoteProtocolError)
    assert upload(client, token, segment, adds([sha("a")])).status_code == 200


def test_ambiguous_drop_applies_then_drops(make: Make) -> None:
    partner, client = _build(make, Scenario(presets=("ambiguous-drop",)))
    token = partner.seed_access_token(["acc-1"])
    segment = ready_segment(client, partner, token)
    with pytest.raises(httpx.RemoteProtocolError):
        upload(client, token, segment, adds([sha("a")]))
    assert partner.members(segment) == {("EMAIL_SHA256", sha("a"))}
    assert partner.ledger.entries[-1].applied


def test_failed_segment_preset(make: Make) -> None:
    partner, client = _build(make, Scenario(presets=("failed-segment",), provisioning_delay=0))
    token = partner.seed_access_token(["acc-1"])
    segment = create_segment(client, token)
    values = [sha(f"v{i}") for i in range(500)]
    assert upload(client, token, segment, adds(values)).json()["accepted"] == 500
    partner.clock.advance(30)
    body = client.get(f"/v1/segments/{segment}", headers=bearer(token)).json()
    assert body["status"] == "FAILED"
    assert body["input_count"] == 500
    assert body["targetable"] is False


def test_slow_partner_advances_the_clock(make: Make) -> None:
    partner, client = _build(make, Scenario(presets=("slow-partner",)))
    token = partner.seed_access_token(["acc-1"])
    start = partner.clock.now()
    client.get("/v1/accounts", headers=bearer(token))
    client.get("/v1/accounts", headers=bearer(token))
    assert partner.clock.now() == start + 4
    entry = partner.ledger.entries[-1]
    assert entry.answered_at - entry.time == 2


def test_rules_count_nth_every_after_and_times(make: Make) -> None:
    def statuses(rule: FaultRule, calls: int = 8) -> list[int]:
        partner, client = _build(make, Scenario(faults=(rule,)))
        token = partner.seed_access_token(["acc-1"])
        return [client.get("/v1/accounts", headers=bearer(token)).status_code for _ in range(calls)]

    error = ErrorEffect(status=500)
    assert statuses(FaultRule(nth=3, effect=error)) == [200, 200, 500, 200, 200, 200, 200, 200]
    assert statuses(FaultRule(every=3, effect=error)) == [200, 200, 500, 200, 200, 500, 200, 200]
    assert statuses(FaultRule(after=5, effect=error)) == [200] * 5 + [500] * 3
    assert statuses(FaultRule(after=1, times=2, effect=error)) == [200, 500, 500] + [200] * 5
    assert statuses(FaultRule(method="POST", effect=error)) == [200] * 8
    assert statuses(FaultRule(path="/v1/segments/*", effect=error)) == [200] * 8
    assert statuses(FaultRule(path_regex=r"^/v1/acc", nth=1, effect=error)) == [500] + [200] * 7
    assert statuses(FaultRule(probability=0.0, effect=error)) == [200] * 8
    assert statuses(FaultRule(probability=1.0, effect=error)) == [500] * 8


def test_rules_match_account_segment_and_window(make: Make) -> None:
    partner, client = _build(
        make,
        Scenario(
            faults=(
                FaultRule(account="acc-2", effect=ErrorEffect(status=502)),
                FaultRule(
                    segment="seg-000001",
                    method="POST",
                    window=Window(start=100, end=200),
                    effect=ErrorEffect(status=504, code="SLOW_DOWN", retry_after=7),
                ),
            )
        ),
    )
    token = partner.seed_access_token(["acc-1", "acc-2"])
    segment = create_segment(client, token, "one")
    assert segment == "seg-000001"
    assert (
        client.post(
            "/v1/accounts/acc-2/segments", headers=bearer(token), json={"name": "x"}
        ).status_code
        == 502
    )
    partner.clock.advance(60)
    assert upload(client, token, segment, adds([sha("a")])).status_code == 200
    partner.clock.advance(40)
    inside = upload(client, token, segment, adds([sha("b")]))
    assert inside.status_code == 504
    assert code_of(inside) == "SLOW_DOWN"
    assert inside.headers["Retry-After"] == "7"
    assert client.get(f"/v1/segments/{segment}", headers=bearer(token)).status_code == 200
    partner.clock.advance(100)
    assert upload(client, token, segment, adds([sha("b")])).status_code == 200
    assert partner.members(segment) == {("EMAIL_SHA256", sha("a")), ("EMAIL_SHA256", sha("b"))}


def test_hold_force_and_latency_effects(make: Make) -> None:
    partner, client = _build(
        make,
        Scenario(
            provisioning_delay=0,
            faults=(
                FaultRule(
                    method="GET",
                    path="/v1/segments/*",
                    nth=2,
                    effect=HoldProvisioningEffect(calls=2),
                ),
                FaultRule(
                    method="POST",
                    path="/v1/accounts/*/segments",
                    nth=2,
                    effect=ForceStatusEffect(status="FAILED"),
                ),
                FaultRule(method="DELETE", effect=LatencyEffect(seconds=90)),
            ),
        ),
    )
    token = partner.seed_access_token(["acc-1"])
    first = create_segment(client, token, "a")
    gets = [
        client.get(f"/v1/segments/{first}", headers=bearer(token)).status_code for _ in range(4)
    ]
    assert gets == [200, 404, 404, 200]
    second = create_segment(client, token, "b")
    assert partner.segment(second)["status"] == "FAILED"
    before = partner.clock.now()
    assert client.delete(f"/v1/segments/{second}", headers=bearer(token)).status_code == 204
    assert partner.clock.now() == before + 90


def test_error_fault_on_oauth_uses_oauth_shape(make: Make) -> None:
    partner, client = _build(
        make,
        Scenario(faults=(FaultRule(path="/oauth/token", nth=1, effect=ErrorEffect(status=503)),)),
    )
    credentials = partner.credentials
    data = {
        "grant_type": "refresh_token",
        "refresh_token": credentials.refresh_token,
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
    }
    failed = client.post("/oauth/token", data=data)
    assert failed.status_code == 503
    assert failed.json()["error"] == "server_error"
    assert client.post("/oauth/token", data=data).status_code == 200


def test_apply_then_fail_on_creation_creates(make: Make) -> None:
    partner, client = _build(
        make,
        Scenario(faults=(FaultRule(method="POST", nth=1, effect=ApplyThenFailEffect(status=500)),)),
    )
    token = partner.seed_access_token(["acc-1"])
    answer = client.post("/v1/accounts/acc-1/segments", headers=bearer(token), json={"name": "x"})
    assert answer.status_code == 500
    [segment] = partner.segment_ids()
    retry = client.post("/v1/accounts/acc-1/segments", headers=bearer(token), json={"name": "x"})
    assert retry.status_code == 409
    assert retry.json()["error"]["details"] == [{"segment_id": segment}]
