"""A user's ``--scenario`` is judged: every run without a preset of its own plays it, and
the clauses judge those runs like any other."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.targets import Target
from harness.verify import verify
from tests.conformance import faulty

SMALL_LIMIT = """\
# a partner that takes 50 operations per request
[limits]
max_operations = 50
"""


@pytest.fixture
def small_limit(tmp_path: Path) -> Path:
    path = tmp_path / "small-limit.toml"
    path.write_text(SMALL_LIMIT)
    return path


def test_the_scenario_exposes_a_fault_the_default_partner_hides(small_limit: Path) -> None:
    spec = f"{faulty.__name__}:{faulty.IgnoresConfiguredLimit.__name__}"
    target = Target(connector=faulty.IgnoresConfiguredLimit, label=spec)
    report = verify(target, scenario=small_limit)
    failed = {r.id: r for r in report.results if r.outcome == "failed"}
    assert set(failed) == {"BATCH-LIMIT"}, {k: v.message for k, v in failed.items()}
    assert "at most 50 operations" in failed["BATCH-LIMIT"].message
    assert failed["BATCH-LIMIT"].run == "lifecycle", "found in a run that played the scenario"
    played = {run.name: run.scenario for run in report.runs}
    assert played["lifecycle"] == played["stateful"] == str(small_limit)
    assert played["preset:flaky-5xx"] == "flaky-5xx"
    assert played["oversized"] is None, "the default partner, whatever --scenario says"


def test_the_reference_passes_under_the_same_scenario(
    small_limit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["verify", "--scenario", str(small_limit)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"scenario {small_limit}: played by lifecycle, invalid-config, auth, stateful" in out
    assert "warning:" not in out, "a limits-only scenario has no fault rule to warn about"


def test_a_fault_rule_no_run_meets_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(
        '[[faults]]\nname = "typo"\npath = "/v1/segmnts/*"\n'
        '[faults.effect]\nkind = "error"\nstatus = 503\n'
    )
    report = verify(scenario=path, clauses=["WIRE-SCHEMA"])
    assert len(report.warnings) == 1
    assert "typo never fired" in report.warnings[0]
    assert report.to_json()["warnings"] == report.warnings
