"""The HTML report in a real headless Chromium: it renders, the sequence diagram's arrows
are laid out in causal order, and nothing overflows a 1280 px wide window.

Skipped when ``chromium`` is not installed (``apt-get install -y chromium``); CI's
``.ci/run`` installs it in its own step and sets ``FEED_HARNESS_REQUIRE_CHROMIUM=1``, so
there a missing browser fails the test instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness.clauses.evidence import RunRecord
from harness.excerpts import trace_excerpt
from harness.platform import Platform
from harness.report import ClauseResult, Report, render_html, sequence_events

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("FEED_HARNESS_REQUIRE_CHROMIUM") == "1"
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not REQUIRED,
    reason="chromium is not installed (apt-get install -y chromium; CI's .ci/run installs it)",
)
WIDTH = 1280

# Runs in the page once it is laid out; writes what it measured into <pre id="probe">.
PROBE = """
<script>
(function () {
  const arrows = Array.from(document.querySelectorAll("svg.seq g.arrow")).map((g) => ({
    kind: g.dataset.kind,
    seq: g.dataset.seq,
    top: g.querySelector("line").getBoundingClientRect().top,
  }));
  const wide = Array.from(document.body.querySelectorAll("*"))
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .map((e) => e.tagName + "." + (e.className.baseVal ?? e.className));
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    arrows: arrows,
    wide: wide.slice(0, 10),
    svgWidth: document.querySelector("svg.seq").getBoundingClientRect().width,
  });
  document.body.appendChild(probe);
})();
</script>
"""


def _trace() -> RunRecord:
    """A batch call that made a gateway and two partner calls, between two status calls."""
    record = RunRecord("lifecycle", Platform())
    trace = record.trace
    trace.begin("platform->connector", "GET", "http://c/v1/status").finish(200, [], b"{}")
    batch = trace.begin(
        "platform->connector",
        "POST",
        "http://c/v1/batch_update",
        body=json.dumps({"batch_content": [{"action": "ADD", "id": "x" * 3000}]}).encode(),
    )
    trace.begin("connector->gateway", "GET", "http://g/v1/configuration/technical_name=x").finish(
        200, [], b'{"max_operations_per_request": 10000}'
    )
    first = trace.begin("connector->partner", "POST", "http://p/v1/segments/seg-000001/members")
    first.finish(429, [("retry-after", "30")], b'{"error": {"code": "RATE_LIMITED"}}')
    second = trace.begin("connector->partner", "POST", "http://p/v1/segments/seg-000001/members")
    second.fail("timeout", "no answer within 5.0 s")
    batch.finish(200, [], b'{"status": "OK", "sent_items_in_success": 3}')
    trace.begin("platform->connector", "GET", "http://c/v1/status").finish(200, [], b"{}")
    return record


def _report() -> Report:
    record = _trace()
    named = [ex.seq for ex in record.trace.exchanges("connector->partner")]
    excerpt = [entry for entry, _ in trace_excerpt(record, named)]
    ledger_entry: dict[str, Any] = {
        "sequence": 6,
        "request_id": "req-" + "0" * 40,
        "time": "2026-01-01T00:01:00.000Z",
        "method": "POST",
        "path": "/v1/segments/seg-000001/members/" + "very-long-path-segment" * 8,
        "account_id": "acc-1",
        "segment_id": "seg-000001",
        "status": 429,
        "error_code": "RATE_LIMITED_BECAUSE_OF_A_VERY_LONG_ERROR_CODE_NAME",
        "received": 10200,
        "accepted": 0,
        "rejected": 0,
        "applied": False,
        "dropped": False,
        "faults": ["rate-limit-burst", "latency"],
    }
    accounting = {f"counter_number_{i}_with_a_long_name": i * 1000 for i in range(25)}
    program = "INVARIANT broke under --seed 0:\n  minimal failing program (1 step(s)):\n" + (
        "    state = FeedLifecycle()\n    state.upsert_new(new=[sim_user(seed=0)])\n"
    )
    return Report(
        connector="tests.conformance.faulty:NoSplitting",
        seed=0,
        results=[
            ClauseResult("WIRE-SCHEMA", "answers validate", "passed", message="291 answers"),
            ClauseResult(
                "RATE-LIMIT",
                "a 429 is retried after its delay",
                "failed",
                message="retried too early: " + "https://partner.test/" + "a" * 400,
                reproduce="feed-harness verify --connector tests.conformance.faulty:X "
                "--seed 0 --clauses RATE-LIMIT",
                group="Partner faults",
                run="faults",
                trace=excerpt,
                accounting=accounting,
                ledger=[ledger_entry] * 3,
            ),
            ClauseResult("STATEFUL-LIFECYCLE", "lives", "failed", message=program, run="s"),
            ClauseResult("CONNECT-TRANSIENT", "retries", "warned", message="no retry"),
        ],
    )


def _render_in_chromium(page: str, tmp_path: Path) -> dict[str, Any]:
    assert CHROMIUM is not None, "FEED_HARNESS_REQUIRE_CHROMIUM=1 but no chromium on PATH"
    path = tmp_path / "report.html"
    path.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={WIDTH},900",
                "--dump-dom",
                path.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HOME": profile},
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found is not None, f"the probe did not run: {done.stdout[-2000:]}"
    text = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    result: dict[str, Any] = json.loads(text.replace("&amp;", "&"))
    return result


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, dict[str, Any]]:
    report = _report()
    return report, _render_in_chromium(render_html(report), tmp_path_factory.mktemp("browser"))


def test_the_report_renders_and_nothing_overflows_1280_px(
    measured: tuple[Report, dict[str, Any]],
) -> None:
    _, probe = measured
    assert probe["innerWidth"] == WIDTH
    assert probe["scrollWidth"] <= WIDTH, probe["wide"]
    assert probe["wide"] == []
    assert 600 <= probe["svgWidth"] <= WIDTH


def test_the_arrows_are_drawn_top_down_in_causal_order(
    measured: tuple[Report, dict[str, Any]],
) -> None:
    report, probe = measured
    trace = report.results[1].trace
    expected = [(kind, str(trace[i]["seq"])) for kind, i in sequence_events(trace)]
    arrows = probe["arrows"]
    by_height = sorted(arrows, key=lambda a: a["top"])
    assert [(a["kind"], a["seq"]) for a in by_height] == expected
    assert len({a["top"] for a in arrows}) == len(arrows)  # one row per arrow
    # the batch call's answer below every call it caused, each answer below its call
    rows = {(a["kind"], a["seq"]): a["top"] for a in arrows}
    batch = str(next(ex["seq"] for ex in trace if ex["path"] == "/v1/batch_update"))
    nested = [str(ex["seq"]) for ex in trace if ex["leg"] != "platform->connector"]
    assert len(nested) == 3
    for seq in nested:
        assert rows[("call", batch)] < rows[("call", seq)] < rows[("answer", seq)]
        assert rows[("answer", seq)] < rows[("answer", batch)]
