"""The report's faces: terminal table, JSON document, JUnit XML, HTML page; and what a
failure shows of its run (the trace excerpt)."""

from __future__ import annotations

import json
import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from harness.clauses.evidence import RunRecord
from harness.excerpts import trace_excerpt
from harness.platform import Platform
from harness.report import (
    ClauseResult,
    Report,
    format_exchanges,
    format_table,
    junit_classname,
    render_html,
    sequence_events,
    write_html,
    write_json,
    write_junit_xml,
)

# One platform call (#1, answered at #6) that caused a partner call (#2..#3) and a gateway
# call (#4, which never answered: it failed at #5).
TRACE = [
    {"seq": 1, "end_seq": 6, "leg": "platform->connector", "method": "POST",
     "path": "/v1/batch_update", "status": 200, "summary": "OK 3/0",
     "request": {"headers": {}, "body": {"batch_content": [{"action": "ADD"}]}},
     "response": {"status": 200, "headers": {}, "body": {"status": "OK"}}},
    {"seq": 2, "end_seq": 3, "leg": "connector->partner", "method": "POST",
     "path": "/v1/segments/seg-1/members", "status": 429, "summary": "accepted 1",
     "named": True,
     "request": {"headers": {"authorization": "Bearer ***"}, "body": {"operations": ["x" * 900]}},
     "response": {"status": 429, "headers": {},
                  "body": {"error": {"code": "RATE_LIMITED", "message": "slow down"}}}},
    {"seq": 4, "end_seq": 5, "leg": "connector->gateway", "method": "GET",
     "path": "/v1/configuration/x", "status": None, "failure": "timeout",
     "detail": "no answer in 5 s"},
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
    assert report.summary == {"passed": 1, "failed": 1, "skipped": 1, "warned": 0}
    assert report.failed
    warned = Report("c", 1, results=[ClauseResult("W", "s", "warned", message="flaky")])
    assert warned.summary == {"passed": 0, "failed": 0, "skipped": 0, "warned": 1}
    assert not warned.failed


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


# --------------------------------------------------------------------------- terminal table

LONG = "reported 3 successes but " + " ".join(f"word{i}" for i in range(80)) + " END"
PROGRAM = (
    "success-honesty broke under --seed 3: 2 successes, 1 accepted\n"
    "  minimal failing program (2 step(s)):\n"
    "    state = FeedLife()\n"
    "    state.upload(users=2)\n"
    "    state.teardown()"
)


def _lines_of(text: str, clause_id: str) -> list[str]:
    """The table lines of one clause: its own line and the continuation lines under it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(clause_id + " "))
    out = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith(" ") or not line.strip():
            break
        out.append(line)
    return out


@pytest.mark.parametrize("outcome", ["passed", "failed"])
def test_a_pipe_gets_every_message_whole_wrapped_at_the_width(outcome: str) -> None:
    report = Report("c", 1, results=[ClauseResult("A", "s", outcome, message=LONG)])  # type: ignore[arg-type]
    text = format_table(report, width=80)
    lines = _lines_of(text, "A")
    assert len(lines) > 3
    assert all(len(line) <= 80 for line in lines)
    assert " ".join(" ".join(line.split()[2:] if i == 0 else line.split()) for i, line in
                    enumerate(lines)) == LONG  # fmt: skip
    assert "…" not in text


def test_a_terminal_cuts_passed_messages_but_not_failed_ones() -> None:
    report = Report(
        "c",
        1,
        results=[
            ClauseResult("P", "s", "passed", message=LONG),
            ClauseResult("F", "s", "failed", message=LONG),
            ClauseResult("W", "s", "warned", message=LONG),
        ],
    )
    text = format_table(report, width=80, full=False)
    (passed,) = _lines_of(text, "P")
    assert passed.endswith("…")
    assert len(passed) <= 80
    for clause_id in ("F", "W"):
        assert "END" in "\n".join(_lines_of(text, clause_id))


def test_a_single_clause_replay_shows_its_message_whole_even_on_a_terminal() -> None:
    report = Report("c", 1, results=[ClauseResult("P", "s", "passed", message=LONG)])
    assert "END" in format_table(report, width=80, full=False)


def test_the_minimal_program_keeps_its_lines_and_indents() -> None:
    report = Report("c", 1, results=[ClauseResult("STATEFUL", "s", "failed", message=PROGRAM)])
    lines = _lines_of(format_table(report, width=100), "STATEFUL")
    body = [line[len("STATEFUL  failed   ") :] for line in lines]
    assert body == PROGRAM.splitlines()


def test_colour_only_when_asked() -> None:
    assert "\x1b[" not in format_table(_report())
    coloured = format_table(_report(), color=True)
    assert "\x1b[1;31mfailed " in coloured
    assert "\x1b[32mpassed " in coloured


def test_a_warned_clause_is_counted_and_replayable_in_the_table() -> None:
    report = Report(
        "c",
        1,
        results=[
            ClauseResult("A", "s", "passed"),
            ClauseResult("CONNECT-TRANSIENT", "s", "warned", message="no retry", reproduce="X"),
        ],
    )
    text = format_table(report)
    assert "CONNECT-TRANSIENT  warned" in text
    assert "1 passed, 0 failed, 1 warned, 0 skipped" in text
    assert "reproduce CONNECT-TRANSIENT: X" in text
    assert "warned" not in format_table(_report())  # named only when a clause warned


def test_verbose_exchanges_are_nested_by_cause_with_bodies_cut() -> None:
    text = format_exchanges(_report(), body_limit=200)
    lines = text.splitlines()
    assert lines[0] == "BATCH-HONEST (run happy): 3 exchange(s)"
    platform = next(line for line in lines if "#1 POST /v1/batch_update" in line)
    partner = next(line for line in lines if "#2 POST /v1/segments/seg-1/members" in line)
    gateway = next(line for line in lines if "#4 GET /v1/configuration/x" in line)
    indent = len(platform) - len(platform.lstrip())
    assert len(partner) - len(partner.lstrip()) > indent
    assert len(gateway) - len(gateway.lstrip()) > indent
    assert "▶" in partner
    assert "▶" not in platform
    assert "429 RATE_LIMITED" in partner
    assert "✗ timeout (no answer in 5 s)" in gateway
    assert "x" * 300 not in text
    assert "chars)" in text
    assert "WIRE-SCHEMA" not in text  # passed clauses show nothing


# --------------------------------------------------------------------------- JUnit


def test_junit_classnames_are_stable_identifiers() -> None:
    assert junit_classname("wire") == "feed_harness.wire"
    assert junit_classname("Partner faults") == "feed_harness.partner_faults"
    assert junit_classname("") == "feed_harness.clauses"


def test_junit_has_timestamp_hostname_failure_type_and_case_times(tmp_path: Path) -> None:
    report = _report()
    report.seconds = 12.5
    report.results[1].seconds = 3.25
    report.results.append(
        ClauseResult("CONNECT-TRANSIENT", "retries", "warned", message="no retry", group="x y")
    )
    path = tmp_path / "junit.xml"
    write_junit_xml(report, path)
    suite = ET.parse(path).getroot()
    assert suite.get("hostname") == (socket.gethostname() or "localhost")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["BATCH-HONEST"].get("classname") == "feed_harness.batch"
    assert cases["WIRE-SCHEMA"].get("classname") == "feed_harness.clauses"
    assert cases["BATCH-HONEST"].get("time") == "3.250"
    failure = cases["BATCH-HONEST"].find("failure")
    assert failure is not None
    assert failure.get("type") == "feed_harness.ClauseFailed"
    warned = cases["CONNECT-TRANSIENT"]
    assert warned.find("failure") is None
    assert warned.find("skipped") is None
    out = warned.find("system-out")
    assert out is not None
    assert "no retry" in (out.text or "")
    props = {p.get("name"): p.get("value") for p in warned.iter("property")}
    assert props["outcome"] == "warned"
    assert suite.get("failures") == "1"


def test_junit_timestamp_is_when_the_run_started(tmp_path: Path) -> None:
    report = Report("c", 1, seconds=3600.0, finished_at=datetime(2026, 1, 2, 3, 4, 5).timestamp())
    path = tmp_path / "junit.xml"
    write_junit_xml(report, path)
    stamp = ET.parse(path).getroot().get("timestamp") or ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", stamp)
    expected = datetime.fromtimestamp(report.finished_at - 3600.0).astimezone()
    assert datetime.fromisoformat(stamp + "+00:00") == expected


# --------------------------------------------------------------------------- HTML


def test_the_diagram_draws_answers_after_the_calls_they_caused() -> None:
    assert sequence_events(TRACE) == [
        ("call", 0),
        ("call", 1),
        ("answer", 1),
        ("call", 2),
        ("answer", 2),
        ("answer", 0),
    ]
    page = render_html(_report())
    drawn = re.findall(r'data-kind="(call|answer)" data-seq="(\d+)"', page)
    assert drawn == [
        ("call", "1"),
        ("call", "2"),
        ("answer", "2"),
        ("call", "4"),
        ("answer", "4"),
        ("answer", "1"),
    ]


def test_an_unanswered_call_is_drawn_last() -> None:
    trace = [dict(TRACE[0], end_seq=None, status=None), TRACE[1]]
    assert sequence_events(trace)[-1] == ("answer", 0)


def test_the_html_shows_each_exchange_with_bodies_and_error_code() -> None:
    page = render_html(_report())
    assert "RATE_LIMITED" in page
    assert "batch_content" in page  # the platform call around the named partner call
    assert "Bearer ***" in page  # headers as recorded (redacted upstream)
    assert page.count("<details class='ex") == 3
    assert "margin-left:1.5em" in page  # the nested calls are indented under their cause
    assert "no answer in 5 s" in page


def test_the_html_shows_the_minimal_program_as_code_and_a_warned_clause() -> None:
    report = Report(
        "c",
        1,
        results=[
            ClauseResult("STATEFUL", "lives keep invariants", "failed", message=PROGRAM),
            ClauseResult("CONNECT-TRANSIENT", "retries", "warned", message="no retry"),
        ],
    )
    page = render_html(report)
    assert "<pre class='msg'>" + PROGRAM.replace("'", "&#x27;") + "</pre>" in page
    assert "<h2 class='warned'>CONNECT-TRANSIENT (warned)</h2>" in page
    assert "1 warned" in page


# --------------------------------------------------------------------------- excerpts


def _nested_run() -> RunRecord:
    record = RunRecord("hand-built", Platform())
    trace = record.trace
    before = trace.begin("platform->connector", "GET", "http://c/v1/status")
    before.finish(200, [], b"{}")
    outer = trace.begin("platform->connector", "POST", "http://c/v1/batch_update", body=b"{}")
    config = trace.begin("connector->gateway", "GET", "http://g/v1/configuration/x")
    config.finish(200, [], b"{}")
    upload = trace.begin("connector->partner", "POST", "http://p/v1/segments/s/members")
    upload.finish(429, [], b'{"error": {"code": "RATE_LIMITED"}}')
    outer.finish(200, [], b'{"status": "OK"}')
    after = trace.begin("platform->connector", "GET", "http://c/v1/status")
    after.finish(200, [], b"{}")
    return record


def test_a_failing_partner_call_is_shown_in_its_whole_platform_call() -> None:
    record = _nested_run()
    upload = record.trace.exchanges("connector->partner")[0]
    excerpt = trace_excerpt(record, [upload.seq])
    entries: list[dict[str, Any]] = [entry for entry, _ in excerpt]
    assert [(e["method"], e["path"]) for e in entries] == [
        ("POST", "/v1/batch_update"),
        ("GET", "/v1/configuration/x"),
        ("POST", "/v1/segments/s/members"),
    ]
    assert [e["named"] for e in entries] == [False, False, True]
    assert entries[0]["end_seq"] > entries[2]["end_seq"]
    assert entries[2]["response"]["body"] == {"error": {"code": "RATE_LIMITED"}}


def test_the_excerpt_limit_keeps_the_named_exchange_and_its_platform_call() -> None:
    record = _nested_run()
    upload = record.trace.exchanges("connector->partner")[0]
    excerpt = trace_excerpt(record, [upload.seq], limit=2)
    assert [entry["path"] for entry, _ in excerpt] == ["/v1/batch_update", "/v1/segments/s/members"]
