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
            "feed-harness: verifying harness.reference:ReferenceConnector (seed 4, profile fast); "
            "the fixtures drive it too",
            "*feed-harness-conformance::T-PASS PASSED*",
            "*feed-harness-conformance::T-FAIL FAILED*",
            "*made to fail (run life)",
            "reproduce: feed-harness verify --connector harness.reference:ReferenceConnector "
            "--seed 4 --clauses T-FAIL",
        ]
    )
    assert len(verify_calls) == 1
    assert verify_calls[0]["clauses"] == ["T-PASS", "T-FAIL", "T-NO-RUN"]
    assert stub == ["life", "probe", "broken"], "every run, whatever the clauses selected"
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


MYCONN = """
from harness.reference import ReferenceConnector

BUILT = []


class Mine(ReferenceConnector):
    def __init__(self, settings):
        BUILT.append(self)
        super().__init__(settings)
"""

USES_MINE = """
import myconn


def test_the_fixture_drives_mine(feed_platform, request):
    feed = feed_platform.new_feed()
    assert feed.create().ok
    assert myconn.BUILT, "the configured connector was never built"
    assert ("feed_connector", "myconn:Mine") in request.node.user_properties
"""


def test_the_connector_can_be_set_in_the_ini_file(
    pytester: pytest.Pytester, stub: list[str], verify_calls: list[dict[str, Any]]
) -> None:
    pytester.makeini(
        f"[pytest]\nfeed_connector = {REFERENCE}\nfeed_clauses = T-PASS\nfeed_seed = 5\n"
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["feed-harness: verifying * (seed 5, profile fast)*"])
    assert verify_calls[0]["clauses"] == ["T-PASS"]
    assert verify_calls[0]["seed"] == 5
    # the command line wins over the ini file
    again = pytester.runpytest("--feed-seed", "6", "--feed-clauses", "T-PASS,T-NO-RUN")
    again.assert_outcomes(passed=2)
    assert verify_calls[1]["seed"] == 6


IGNORE_EDITABLE_REWRITE = "ignore::pytest.PytestAssertRewriteWarning"
"""The editable install's import hook makes pytest warn that this package was imported
before it could rewrite it (a pytester run does not read this project's filterwarnings)."""


def test_no_clause_items_and_the_fixtures_drive_the_configured_connector(
    pytester: pytest.Pytester, stub: list[str], verify_calls: list[dict[str, Any]]
) -> None:
    pytester.makepyfile(myconn=MYCONN, test_uses=USES_MINE)
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\nfeed_connector = "myconn:Mine"\nfeed_clauses = "none"\n'
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-W", "error::UserWarning", "-W", IGNORE_EDITABLE_REWRITE
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["feed-harness: the fixtures drive myconn:Mine (no clause item)"])
    assert verify_calls == []


def test_an_unimportable_connector_is_one_usage_error(
    pytester: pytest.Pytester, stub: list[str]
) -> None:
    result = pytester.runpytest("--feed-connector", "no_such_module:Thing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--feed-connector*no module named 'no_such_module'*"])
    assert "FAILED" not in result.stdout.str()
    assert "T-PASS" not in result.stdout.str()


def test_without_a_connector_the_platform_fixture_says_it_drives_the_reference_one(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_ref="def test_ref(feed_platform):\n    assert feed_platform.new_feed().create().ok\n"
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*FeedHarnessWarning: feed_platform drives the built-in reference connector*"]
    )


def test_a_warned_clause_passes_with_a_warning(
    pytester: pytest.Pytester, stub: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.report import ClauseResult, Report

    def warned(*args: Any, **kwargs: Any) -> Report:
        result = ClauseResult("T-PASS", "s", "warned", message="the retry came late")
        return Report("c", 0, results=[result])

    monkeypatch.setattr(harness.verify, "verify", warned)
    result = pytester.runpytest(
        "--feed-connector", REFERENCE, "--feed-clauses", "T-PASS", "-W", IGNORE_EDITABLE_REWRITE
    )
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*FeedHarnessWarning: T-PASS warned: the retry came late*"])


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
    result.assert_outcomes(passed=4)
    names = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
    assert names == ["CREATE-OK", "CONNECT-NOT-READY", "CONNECT-READY", "CONNECT-TRANSIENT"]
