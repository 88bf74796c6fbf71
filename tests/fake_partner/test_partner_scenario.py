"""Scenarios: loading TOML and JSON, errors that name the key, presets, replacing live."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fp_support import BASE_URL, bearer

from fake_partner import PRESETS, Partner, Scenario, ScenarioError, load_scenario, parse_scenario

GOOD_TOML = """
seed = 7
match_probability = 0.25
rate_limit_per_minute = 10
send_rate_limit_headers = false
provisioning_delay = 5
presets = ["ambiguous-503"]

[limits]
max_operations = 50

[[accounts]]
id = "adv-1"
name = "Advertiser"
currency = "GBP"

[[clients]]
client_id = "my-app"
client_secret = "s3cret-value"
redirect_uris = ["https://app.example/cb"]

[[refresh_tokens]]
token = "rt-fixed-token-1"
accounts = ["adv-1"]

[[faults]]
method = "GET"
path = "/v1/accounts"
nth = 2
effect = { kind = "error", status = 500, code = "BOOM" }
"""


def test_toml_file_loads_every_knob(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(GOOD_TOML)
    scenario = load_scenario(path)
    assert scenario.seed == 7
    assert scenario.limits.max_operations == 50
    assert scenario.limits.max_body_bytes == 5 * 1024 * 1024
    assert [a.id for a in scenario.accounts] == ["adv-1"]
    assert scenario.faults[0].effect.kind == "error"
    effective = scenario.effective()
    assert [rule.name for rule in effective.faults] == [None, "ambiguous-503"]
    partner = Partner(scenario)
    credentials = partner.credentials
    assert (credentials.client_id, credentials.client_secret) == ("my-app", "s3cret-value")
    assert credentials.refresh_token == "rt-fixed-token-1"
    assert credentials.account_ids == ("adv-1",)


def test_json_round_trip(tmp_path: Path) -> None:
    scenario = parse_scenario(GOOD_TOML, "toml")
    path = tmp_path / "scenario.json"
    path.write_text(scenario.to_json())
    assert load_scenario(path) == scenario


def _lines(text: str, kind: str = "toml") -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "toml" if kind == "toml" else "json")
    return caught.value.lines


def test_unknown_effect_kind_names_the_key_and_the_choices() -> None:
    lines = _lines('[[faults]]\neffect = { kind = "explode" }\n')
    assert lines == [
        "faults[0].effect.kind: 'explode' is not one of: error, latency, drop, apply_then_fail, "
        "expire_token, revoke_token, revoke_refresh_token, hold_provisioning, force_status, "
        "reject_items"
    ]


def test_unknown_keys_list_the_allowed_ones() -> None:
    lines = _lines(
        'colour = "red"\n[[faults]]\nsize = 1\neffect = { kind = "drop", later = true }\n'
    )
    assert len(lines) == 3
    assert any(
        line.startswith("colour: unknown key; allowed keys: presets, seed, ") for line in lines
    )
    assert any(
        line.startswith("faults[0].size: unknown key; allowed keys: name, method, path")
        for line in lines
    )
    assert "faults[0].effect.later: unknown key; allowed keys: kind, after_apply" in lines


def test_bad_values_name_key_value_and_choices() -> None:
    lines = _lines(
        'match_probability = 2\nseed = "x"\n[[faults]]\nmethod = "FETCH"\n'
        'effect = { kind = "error" }\n'
    )
    assert any(line.startswith("match_probability: ") and "(got 2)" in line for line in lines)
    assert any(line.startswith("seed: ") and "'x'" in line for line in lines)
    assert "faults[0].method: 'FETCH' is not one of: GET, POST, PUT, PATCH, DELETE" in lines
    assert "faults[0].effect.status: required key missing" in lines


def test_unknown_preset_and_cross_references() -> None:
    lines = _lines(
        'presets = ["nope"]\n[[accounts]]\nid = "a"\n[[refresh_tokens]]\naccounts = ["b"]\n'
    )
    assert any(
        line.startswith("presets[0]: 'nope' is not one of: token-expiry-mid-upload")
        for line in lines
    )
    lines = _lines('[[accounts]]\nid = "a"\n[[refresh_tokens]]\naccounts = ["b"]\n')
    assert lines == ["refresh_tokens[0].accounts[0]: 'b' is not one of the scenario's accounts: a"]


def test_secrets_are_not_echoed_in_errors() -> None:
    lines = _lines('[[clients]]\nclient_id = "c"\nclient_secret = "short"\n')
    assert any(line.startswith("clients[0].client_secret:") for line in lines)
    assert not any("short" in line for line in lines)


def test_syntax_errors_and_files(tmp_path: Path) -> None:
    assert _lines("seed = = 3")[0].startswith("not valid TOML")
    assert _lines("{", "json")[0].startswith("not valid JSON")
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario(tmp_path / "missing.toml")
    other = tmp_path / "scenario.yaml"
    other.write_text("seed: 1")
    with pytest.raises(ScenarioError, match=r"is not one of: \.toml, \.json"):
        load_scenario(other)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"faults": [{"effect": {"kind": "latency", "seconds": -1}}]}))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(bad)
    assert str(bad) in str(caught.value)
    assert caught.value.lines[0].startswith("faults[0].effect.seconds: ")


def test_preset_name_and_alias() -> None:
    assert load_scenario("flaky-5xx").presets == ("flaky-5xx",)
    assert Scenario.model_validate({"preset": "invalid-grant"}).presets == ("invalid-grant",)
    assert set(PRESETS) >= {"invalid-grant", "flaky-5xx"}


def test_default_scenario_matches_the_spec() -> None:
    partner = Partner()
    scenario = partner.scenario
    assert [a.id for a in scenario.accounts] == ["acc-1", "acc-2"]
    assert len(scenario.clients) == 1
    assert partner.credentials.account_ids == ("acc-1",)
    assert (scenario.access_token_lifetime, scenario.refresh_token_lifetime) == (3600, 365 * 86400)
    assert (scenario.provisioning_delay, scenario.processing_delay) == (60, 30)
    assert (scenario.match_probability, scenario.privacy_floor) == (0.6, 100)
    assert scenario.rate_limit_per_minute == 600
    assert Partner().credentials == partner.credentials  # same seed, same credentials
    assert Partner(Scenario(seed=1)).credentials != partner.credentials
    assert partner.credentials.client_secret not in repr(partner.credentials)
    assert partner.credentials.refresh_token not in repr(partner.credentials)


def test_set_scenario_changes_knobs_live_and_keeps_state() -> None:
    partner = Partner()
    token = partner.seed_access_token(["acc-1"])
    with httpx.Client(
        base_url=BASE_URL, transport=partner.transport(), headers=bearer(token)
    ) as client:
        created = client.post("/v1/accounts/acc-1/segments", json={"name": "kept"})
        assert created.status_code == 201
        partner.set_scenario(Scenario(rate_limit_per_minute=1))
        assert client.get("/v1/accounts").status_code == 429  # the window counts the POST
        partner.clock.advance(60)
        assert client.get("/v1/accounts").status_code == 200
        assert client.get("/v1/accounts").status_code == 429
        assert partner.segment_ids() == [created.json()["id"]]
        partner.set_scenario(Scenario(), reset=True)
        assert partner.segment_ids() == []
        assert len(partner.ledger) == 0
        assert client.get("/v1/accounts").status_code == 401  # tokens are gone too
