"""The pytest plugin: one item per clause with ``--feed-*``, nothing without, fixtures, marker.

The in-process pytester runs see the stub clauses of ``test_verify`` (same interpreter).
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from test_verify import install_stub_registry

import harness.verify

pytest_plugins = ["pytester"]

REFERENCE = "harness.reference:ReferenceConnector"


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return install_stub_registry(monkeypatch)


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every ``harness.verify.verify`` call's keyword arguments."""
    calls: list[dict[str, Any]] = []
    real = harness.verify.verify

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(harness.verify, "verify", counted)
    return calls


def test_without_options_nothing_is_collected(pytester: pytest.Pytester, stub: list[str]) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_mine.py::test_mine", "1 test collected*"])
    result.stdout.no_fnmatch_line("*conformance*")
    assert stub == []


def test_the_plugin_loads_nothing_heavy() -> None:
    code = (
        "import sys, harness.pytest_plugin\n"
        "heavy = ('fake_partner', 'harness.platform', 'harness.verify', 'uvicorn', 'httpx')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


def test_one_item_per_clause_verified_once(
    pytester: pytest.Pytester, stub: list[str], verify_calls: list[dict[str, Any]]
) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    pass\n")
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest(
        "--feed-connector",
        REFERENCE,
        "--feed-clauses",
        "T-PASS,T-FAIL,T-NO-RUN",
        "--feed-seed",
        "4",
        f"--junitxml={junit}",
        "-v",
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "feed-harness: verifying harness.reference:ReferenceConnector (seed 4, profile fast)",
            "*feed-harness-conformance::T-PASS PASSED*",
            "*feed-harness-conformance::T-FAIL FAILED*",
            "*made to fail (run life)",
            "reproduce: feed-harness verify --connector harness.reference:ReferenceConnector "
            "--seed 4 --clauses T-FAIL",
        ]
    )
    assert len(verify_calls) == 1
    assert verify_calls[0]["clauses"] == ["T-PASS", "T-FAIL", "T-NO-RUN"]
    assert stub == ["life"]
    cases = ET.parse(junit).getroot().iter("testcase")
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert names == {
        ("feed-harness-conformance", "T-PASS"),
        ("feed-harness-conformance", "T-FAIL"),
        ("feed-harness-conformance", "T-NO-RUN"),
        ("test_mine", "test_mine"),
    }


def test_k_selects_clauses_and_skips_show(
    pytester: pytest.Pytester, stub: list[str], verify_calls: list[dict[str, Any]]
) -> None:
    pytester.makepyfile(connectors="from test_verify import NotImplementedTroubleshoot\n")
    pytester.syspathinsert()
    result = pytester.runpytest(
        "--feed-connector",
        "connectors:NotImplementedTroubleshoot",
        "-k",
        "T-ROUTE or T-PASS",
        "-rs",
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "collected 7 items / 5 deselected / 2 selected",
            "*not implemented by the connector: troubleshoot*",
        ]
    )
    assert verify_calls[0]["clauses"] == ["T-PASS", "T-ROUTE"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--feed-clauses", "NOPE"], "*--feed-clauses: 'NOPE' matches no clause*"),
        (["--feed-scenario", "no-such"], "*--feed-scenario: scenario is invalid*"),
        (["--feed-cmd", "x", "--feed-gateway-port", "9"], "*--feed-gateway-port goes with*"),
    ],
)
def test_bad_options_are_usage_errors(
    pytester: pytest.Pytester, stub: list[str], args: list[str], expected: str
) -> None:
    options = args if "--feed-cmd" in args else ["--feed-connector", REFERENCE, *args]
    result = pytester.runpytest(*options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_a_connector_that_cannot_start_fails_every_item(
    pytester: pytest.Pytester, stub: list[str]
) -> None:
    result = pytester.runpytest("--feed-cmd", "false", "--feed-clauses", "T-PASS,T-FAIL")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*T-PASS: the connector could not be started or reached*"])


def test_fixtures_and_the_scenario_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fixtures="""
import pytest


@pytest.mark.feed_scenario("rate-limit-burst")
def test_marked_partner(feed_partner):
    assert feed_partner.scenario.presets == ("rate-limit-burst",)


def test_plain_partner_and_gateway(feed_partner, feed_gateway):
    assert feed_partner.scenario.presets == ()
    assert feed_gateway.worker_id


@pytest.mark.feed_scenario("small.toml")
def test_platform_with_a_scenario_file(feed_platform):
    assert feed_platform.partner.scenario.limits.max_operations == 500
    feed = feed_platform.new_feed()
    assert feed.create().ok
"""
    )
    (pytester.path / "small.toml").write_text("[limits]\nmax_operations = 500\n")
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=3)


def test_the_reference_connector_gets_one_passing_test_per_clause(
    pytester: pytest.Pytester,
) -> None:
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest(
        "--feed-connector",
        REFERENCE,
        "--feed-clauses",
        "CREATE-OK,CONNECT-*",
        f"--junitxml={junit}",
    )
    result.assert_outcomes(passed=3)
    names = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
    assert names == ["CREATE-OK", "CONNECT-NOT-READY", "CONNECT-READY"]
