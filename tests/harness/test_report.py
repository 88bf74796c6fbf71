"""The report's faces: terminal table, JSON document, JUnit XML, HTML page."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report import (
    ClauseResult,
    Report,
    format_table,
    render_html,
    write_html,
    write_json,
    write_junit_xml,
)

TRACE = [
    {"seq": 1, "leg": "platform->connector", "method": "POST", "path": "/v1/batch_update",
     "status": 200, "summary": "OK 3/0"},
    {"seq": 2, "leg": "connector->partner", "method": "POST",
     "path": "/v1/segments/seg-1/members", "status": 200, "summary": "accepted 1"},
    {"seq": 3, "leg": "connector->gateway", "method": "GET", "path": "/v1/configuration/x",
     "status": None, "failure": "timeout"},
]  # fmt: skip


def _report() -> Report:
    return Report(
        connector="tests.faulty:Inflating",
        seed=7,
        results=[
            ClauseResult("WIRE-SCHEMA", "answers validate", "passed"),
            ClauseResult(
                "BATCH-HONEST",
                "reported success equals accepted",
                "failed",
                message="reported 3 successes, partner accepted 1 <script>",
                reproduce="feed-harness verify --connector tests.faulty:Inflating --seed 7",
                group="batch",
                run="happy",
                trace=TRACE,
                accounting={"sent_items_in_success": 3},
                ledger=[{"seq": 2, "accepted": 1, "rejected": 2}],
            ),
            ClauseResult("AUTH-STATUS", "auth status", "skipped", message="route absent"),
        ],
    )


def test_summary_counts_each_outcome() -> None:
    report = _report()
    assert report.summary == {"passed": 1, "failed": 1, "skipped": 1}
    assert report.failed


def test_table_lists_every_clause_and_the_reproduce_command() -> None:
    text = format_table(_report())
    for clause_id in ("WIRE-SCHEMA", "BATCH-HONEST", "AUTH-STATUS"):
        assert clause_id in text
    assert "1 passed, 1 failed, 1 skipped" in text
    assert "reproduce BATCH-HONEST: feed-harness verify --connector" in text


def test_json_document_has_the_documented_shape(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_json(_report(), path)
    doc = json.loads(path.read_text())
    assert doc["connector"] == "tests.faulty:Inflating"
    assert doc["seed"] == 7
    assert doc["summary"] == {"passed": 1, "failed": 1, "skipped": 1, "warned": 0}
    assert [c["id"] for c in doc["clauses"]] == ["WIRE-SCHEMA", "BATCH-HONEST", "AUTH-STATUS"]
    assert [c["outcome"] for c in doc["clauses"]] == ["passed", "failed", "skipped"]
    for entry in doc["clauses"]:
        assert {"id", "outcome", "message", "reproduce"} <= entry.keys()
    assert doc["clauses"][1]["reproduce"].startswith("feed-harness verify --connector")


def test_junit_has_one_case_per_clause(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit_xml(_report(), path)
    suite = ET.parse(path).getroot()
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["WIRE-SCHEMA", "BATCH-HONEST", "AUTH-STATUS"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert "partner accepted 1" in (failure.get("message") or "")
    assert cases[2].find("skipped") is not None
    assert suite.get("failures") == "1"
    assert suite.get("skipped") == "1"


def test_html_is_self_contained_escaped_and_draws_the_failure(tmp_path: Path) -> None:
    page = render_html(_report())
    assert "<script>" not in page  # the connector's message is escaped
    assert "&lt;script&gt;" in page
    assert "<svg" in page
    for lifeline in ("platform", "connector", "gateway", "partner"):
        assert lifeline in page
    assert "/v1/segments/seg-1/members" in page
    assert "✗ timeout" in page
    assert "feed-harness verify --connector tests.faulty:Inflating --seed 7" in page
    assert "<link" not in page
    assert "src=" not in page
    path = tmp_path / "r.html"
    write_html(_report(), path)
    assert path.read_text() == page


@pytest.mark.parametrize("message", ["", "x" * 500])
def test_table_keeps_long_messages_on_one_line(message: str) -> None:
    report = Report("c", 1, results=[ClauseResult("A", "s", "failed", message=message)])
    line = next(line for line in format_table(report).splitlines() if line.startswith("A "))
    assert len(line) <= 120
