"""The control API, in-process: /_admin routes and their Python twins."""

from __future__ import annotations

import httpx
import pytest
from fp_support import adds, bearer, code_of, ready_segment, sha, upload

from fake_partner import Partner, PartnerUsageError


def _admin(partner: Partner) -> dict[str, str]:
    return {"Authorization": f"Bearer {partner.admin_token}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/_admin/reset"),
        ("GET", "/_admin/state"),
        ("GET", "/_admin/ledger"),
        ("GET", "/_admin/scenario"),
        ("PUT", "/_admin/scenario"),
        ("POST", "/_admin/clock/advance"),
        ("GET", "/_admin/nothing"),
    ],
)
def test_admin_refuses_without_the_token(
    client: httpx.Client, partner: Partner, method: str, path: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Admin-Token": "wrong"}):
        answer = client.request(method, path, headers=headers)
        assert answer.status_code == 401
        assert code_of(answer) == "ADMIN_TOKEN_REQUIRED"


def test_clock_advance(client: httpx.Client, partner: Partner) -> None:
    answer = client.post("/_admin/clock/advance", json={"seconds": 90}, headers=_admin(partner))
    assert answer.status_code == 200
    assert answer.json()["now"] == "2026-01-01T00:01:30.000Z"
    for bad in ({"seconds": -1}, {"seconds": "10"}, {}, {"seconds": 1, "x": 2}):
        refused = client.post("/_admin/clock/advance", json=bad, headers=_admin(partner))
        assert refused.status_code == 400
        assert code_of(refused) == "INVALID_REQUEST"
    assert partner.clock.isoformat() == "2026-01-01T00:01:30.000Z"
    via_header = client.get("/_admin/clock", headers={"X-Admin-Token": partner.admin_token})
    assert via_header.json()["epoch"] == partner.clock.now()


def test_state_ledger_and_reset(client: httpx.Client, partner: Partner, token: str) -> None:
    segment = ready_segment(client, partner, token)
    upload(client, token, segment, adds([sha("a")]))
    state = client.get("/_admin/state", params={"members": "true"}, headers=_admin(partner)).json()
    [item] = state["segments"]
    assert item["id"] == segment
    assert item["members"] == [{"type": "EMAIL_SHA256", "value": sha("a")}]
    assert item["live_input_count"] == 1
    ledger = client.get("/_admin/ledger", params={"since": "1"}, headers=_admin(partner)).json()
    assert [e["sequence"] for e in ledger["entries"]] == [2, 3]
    assert ledger["entries"][1]["operations"][0]["accepted"] is True
    assert client.post("/_admin/reset", headers=_admin(partner)).status_code == 200
    assert partner.segment_ids() == []
    assert len(partner.ledger) == 0
    assert client.get("/v1/accounts", headers=bearer(token)).status_code == 401
    assert (
        client.get("/_admin/ledger", params={"since": "x"}, headers=_admin(partner)).status_code
        == 400
    )


def test_scenario_get_and_put(client: httpx.Client, partner: Partner) -> None:
    got = client.get("/_admin/scenario", headers=_admin(partner)).json()
    assert got["rate_limit_per_minute"] == 600
    put = client.put(
        "/_admin/scenario",
        json={"rate_limit_per_minute": 5, "presets": ["flaky-5xx"]},
        headers=_admin(partner),
    )
    assert put.status_code == 200
    assert partner.effective_scenario.rate_limit_per_minute == 5
    assert [r.name for r in partner.effective_scenario.faults] == ["flaky-5xx"]
    bad = client.put(
        "/_admin/scenario",
        json={"faults": [{"effect": {"kind": "explode"}}]},
        headers=_admin(partner),
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["details"] == [
        {
            "problem": "faults[0].effect.kind: 'explode' is not one of: error, latency, drop, "
            "apply_then_fail, expire_token, revoke_token, revoke_refresh_token, hold_provisioning, "
            "force_status, reject_items"
        }
    ]
    assert partner.effective_scenario.rate_limit_per_minute == 5
    toml = client.put(
        "/_admin/scenario",
        content=b"rate_limit_per_minute = 7\n",
        headers={**_admin(partner), "Content-Type": "application/toml"},
        params={"reset": "true"},
    )
    assert toml.status_code == 200
    assert partner.effective_scenario.rate_limit_per_minute == 7


def test_python_control_api(partner: Partner) -> None:
    account = partner.seed_account(name="Third")
    assert account == "acc-3"
    client_credentials = partner.seed_client(consent_accounts=[account])
    assert client_credentials.client_id == "client-2"
    assert client_credentials.client_secret not in repr(client_credentials)
    refresh_token = partner.seed_refresh_token([account], client_id=client_credentials.client_id)
    assert refresh_token.startswith("rt-")
    with pytest.raises(PartnerUsageError, match="acc-9"):
        partner.seed_refresh_token(["acc-9"])
    with pytest.raises(PartnerUsageError, match="already exists"):
        partner.seed_account("acc-1")
    with pytest.raises(PartnerUsageError, match="seg-x"):
        partner.members("seg-x")
    with pytest.raises(PartnerUsageError, match="is not one of"):
        partner.force_status("seg-x", "DONE")
    state = partner.state()
    assert [a["id"] for a in state["accounts"]] == ["acc-1", "acc-2", "acc-3"]
    assert len(state["refresh_tokens"]) == 2
