"""Choosing the partner dialect: ``--partner`` on ``verify`` / ``serve`` / ``serve-partner``,
``--feed-partner`` in pytest, ``verify(partner=...)``, the scenario's ``partner`` key, and
the ``technical_config`` each dialect gives a connector (``docs/partner-dialects.md``)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_verify import install_stub_registry

from fake_partner import Partner, load_scenario
from harness.clauses.evidence import RunRecord
from harness.cli import EXIT_USAGE, main
from harness.dialects import core_segment_id, partner_identifying, resolve_dialect
from harness.errors import VerifyUsageError
from harness.platform import Platform, technical_config
from harness.targets import make_target
from harness.verify import reproduce_command, verify

PYTHON = sys.executable


# --------------------------------------------------------------------------- resolution


def test_the_option_wins_alone_the_scenario_key_counts_and_generic_is_the_default() -> None:
    meta = load_scenario({"partner": "meta"})
    assert resolve_dialect(None, None) == "generic"
    assert resolve_dialect(None, load_scenario({})) == "generic"
    assert resolve_dialect(None, meta) == "meta"
    assert resolve_dialect("linkedin", load_scenario({})) == "linkedin"
    assert resolve_dialect("meta", meta) == "meta"


def test_an_option_and_a_scenario_that_differ_is_a_usage_error() -> None:
    with pytest.raises(VerifyUsageError, match=r"--partner linkedin but the scenario says"):
        resolve_dialect("linkedin", load_scenario({"partner": "meta"}))
    with pytest.raises(VerifyUsageError, match=r"generic, linkedin, meta"):
        resolve_dialect("google", None)


def test_core_segment_ids_of_each_dialect() -> None:
    assert core_segment_id("generic", "seg-000007") == "seg-000007"
    assert core_segment_id("linkedin", "1000007") == "seg-000007"
    assert core_segment_id("meta", "23850000000000007") == "seg-000007"
    assert core_segment_id("linkedin", "seg-000003") == "seg-000003"


def test_the_model_counts_only_what_the_dialect_can_receive() -> None:
    kinds = ("USER_EMAIL", "USER_DEVICE_POINT", "USER_ACCOUNT")
    assert partner_identifying("generic", kinds) == kinds
    assert partner_identifying("meta", kinds) == kinds  # EXTERN_ID takes an account id
    assert partner_identifying("linkedin", kinds) == ("USER_EMAIL", "USER_DEVICE_POINT")
    with Platform(partner="linkedin") as platform:
        feed = platform.new_feed()
        assert feed.identifying == ("USER_EMAIL", "USER_DEVICE_POINT")
        selected = platform.gateway.feed(feed.feed_id).feed.selected_identifying_resources or []
        assert len(selected) == 3  # the gateway's feed still selects all three


# --------------------------------------------------------------------------- technical_config


def test_the_generic_technical_config_keeps_its_keys() -> None:
    partner = Partner()
    assert technical_config(partner, "https://partner.test") == {
        "partner_endpoint": "https://partner.test",
        "partner_api_version": "v1",
        "max_operations_per_request": 10_000,
        "max_body_bytes_per_request": 5 * 1024 * 1024,
    }


@pytest.mark.parametrize(
    ("dialect", "version", "base", "limit"),
    [("linkedin", "202601", "/rest", 5_000), ("meta", "v25.0", "/v25.0", 10_000)],
)
def test_a_dialect_technical_config_says_where_and_which_version(
    dialect: str, version: str, base: str, limit: int
) -> None:
    partner = Partner(dialect=dialect)
    config = technical_config(partner, "http://127.0.0.1:8080/")
    assert config == {
        "partner_endpoint": "http://127.0.0.1:8080",
        "partner_api_version": version,
        "partner_base_path": base,
        "dialect": dialect,
        "max_operations_per_request": limit,
        "max_body_bytes_per_request": partner.effective_scenario.limits.max_body_bytes,
    }
    assert config["partner_api_version"] == partner.dialect_info()["api_version"]


def test_the_platform_builds_its_partner_in_the_dialect_and_configures_the_gateway() -> None:
    with Platform(partner="linkedin") as platform:
        assert platform.partner.dialect == "linkedin"
        served = json.loads(platform.gateway.configuration_file("technical_config"))
        assert served["dialect"] == "linkedin"
        assert served["partner_base_path"] == "/rest"
    with Platform(scenario={"partner": "meta"}) as platform:
        assert platform.partner.dialect == "meta"
    with Platform() as platform:
        assert platform.partner.dialect == "generic"


def test_meta_credentials_carry_a_long_lived_access_token_and_it_is_a_secret() -> None:
    with Platform(partner="meta") as platform:
        served = json.loads(platform.gateway.configuration_file("credentials") or b"")
        token = served["access_token"]
        assert platform.redactor.text_masked(f"token {token}")[1]
    with Platform(partner="linkedin") as platform:
        served = json.loads(platform.gateway.configuration_file("credentials") or b"")
        assert set(served) == {"client_id", "client_secret", "refresh_token"}


# --------------------------------------------------------------------------- verify()


def _dialect_probe(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Stub runs that note each run's partner dialect and technical_config dialect."""
    install_stub_registry(monkeypatch)
    runs = importlib.import_module("harness.clauses.runs")
    seen: list[tuple[str, str]] = []

    def script(record: RunRecord, seed: int) -> None:
        config = json.loads(record.platform.gateway.configuration_file("technical_config"))
        seen.append((record.partner.dialect, config.get("dialect", "generic")))

    specs = {name: dataclasses.replace(spec, script=script) for name, spec in runs.RUNS.items()}
    monkeypatch.setattr(runs, "RUNS", specs)
    return seen


def test_verify_reaches_every_run_with_the_dialect_and_reports_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _dialect_probe(monkeypatch)
    report = verify(clauses=["T-FAIL"], partner="linkedin")
    assert seen
    assert set(seen) == {("linkedin", "linkedin")}
    assert report.partner == "linkedin"
    assert report.to_json()["partner"] == "linkedin"
    (result,) = report.results
    assert " --partner linkedin " in result.reproduce


def test_verify_takes_the_scenario_key_and_refuses_a_contradiction(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = _dialect_probe(monkeypatch)
    scenario = tmp_path / "meta.toml"
    scenario.write_text('partner = "meta"\n', encoding="utf-8")
    report = verify(clauses=["T-NO-RUN"], scenario=scenario)
    assert set(seen) == {("meta", "meta")}
    assert report.partner == "meta"
    with pytest.raises(VerifyUsageError, match="the scenario says partner = 'meta'"):
        verify(clauses=["T-NO-RUN"], scenario=scenario, partner="linkedin")


def test_verify_stays_generic_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _dialect_probe(monkeypatch)
    report = verify(clauses=["T-NO-RUN"])
    assert set(seen) == {("generic", "generic")}
    assert report.partner == "generic"
    assert "--partner" not in report.results[0].reproduce


def test_the_reproduce_command_carries_the_dialect_only_when_not_generic() -> None:
    target = make_target("harness.reference:LinkedInReferenceConnector")
    assert reproduce_command(target, "X", seed=1, partner="linkedin") == (
        "feed-harness verify --connector harness.reference:LinkedInReferenceConnector "
        "--partner linkedin --seed 1 --clauses X"
    )
    assert "--partner" not in reproduce_command(target, "X", seed=1)


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize("command", ["verify", "serve", "serve-partner"])
def test_an_unknown_partner_exits_2_naming_the_option_and_the_choices(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--partner", "google"])
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"usage: feed-harness {command}" in err
    assert "--partner" in err
    assert "'generic', 'linkedin', 'meta'" in err


@pytest.mark.parametrize("command", ["verify", "serve", "serve-partner"])
def test_a_partner_that_contradicts_the_scenario_exits_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "meta.toml"
    scenario.write_text('partner = "meta"\n', encoding="utf-8")
    code = main([command, "--partner", "linkedin", "--scenario", str(scenario)])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"feed-harness {command}: --partner linkedin but the scenario says" in err


def test_verify_json_and_table_name_the_dialect(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _dialect_probe(monkeypatch)
    path = tmp_path / "v.json"
    main(["verify", "--partner", "linkedin", "--clauses", "T-FAIL", "--json", str(path)])
    out = capsys.readouterr().out
    assert "partner linkedin)" in out
    assert "reproduce T-FAIL: feed-harness verify --partner linkedin --seed 0" in out
    assert json.loads(path.read_text(encoding="utf-8"))["partner"] == "linkedin"


def test_serve_partner_speaks_the_dialect_asked(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [PYTHON, "-m", "harness", "serve-partner", "--partner", "linkedin", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = _read_until(process.stdout, "# Ctrl-C")
        base_url = lines[0].removeprefix("base_url: ")
        assert any(line.startswith("dialect: linkedin") for line in lines)
        answer = httpx.get(f"{base_url}/rest/dmpSegments/1000001")
        assert answer.status_code == 400  # no LinkedIn-Version: LinkedIn's own refusal
        assert answer.json()["code"] == "VERSION_MISSING"
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(10)
    assert code == 0


def test_serve_configures_the_gateway_for_the_dialect() -> None:
    process = subprocess.Popen(
        [PYTHON, "-m", "harness", "serve", "--partner", "linkedin", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = _read_until(process.stdout, "# Ctrl-C")
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        gateway = f"http://127.0.0.1:{exports['GATEWAY_PORT']}"
        auth = (exports["PLUGIN_WORKER_ID"].strip("'"), exports["PLUGIN_AUTHENTICATION_TOKEN"])
        config = httpx.get(
            f"{gateway}/v1/configuration/technical_name=technical_config", auth=auth
        ).json()
        assert config["dialect"] == "linkedin"
        assert config["partner_api_version"] == "202601"
        assert any(" --partner linkedin" in line for line in lines)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(10)
    assert code == 0


def _read_until(stream: Any, prefix: str) -> list[str]:
    lines = []
    for line in stream:
        lines.append(line.rstrip("\n"))
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"no line starting {prefix!r} in {lines}")
