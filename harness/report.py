"""The verdict of a verification and its four faces: terminal table, JSON, JUnit XML, HTML.

Everything here reads an already-redacted :class:`Report`; nothing here sees a secret.
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.clauses.registry import Outcome

LEGS = ("platform", "connector", "gateway", "partner")
_LEG_ENDS = {
    "platform->connector": ("platform", "connector"),
    "connector->gateway": ("connector", "gateway"),
    "connector->partner": ("connector", "partner"),
}


@dataclass
class ClauseResult:
    """One clause's outcome, with what a person needs to see and replay a failure."""

    id: str
    statement: str
    outcome: Outcome
    message: str = ""
    reproduce: str = ""
    group: str = ""
    severity: str = "error"
    run: str | None = None
    trace: list[dict[str, Any]] = field(default_factory=list)
    accounting: dict[str, Any] | None = None
    ledger: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    seqs: list[int] = field(default_factory=list)
    """The trace sequence numbers the verdict names (of ``run``'s trace)."""


@dataclass
class RunResult:
    """One conformance run a verification executed.

    ``scenario`` is the partner scenario it played (a preset name, the ``--scenario`` as
    given, or None for the default partner); ``aborted`` says why it stopped early.
    """

    name: str
    scenario: str | None = None
    aborted: str | None = None


@dataclass
class Report:
    """Every clause's result for one connector, seed and profile."""

    connector: str
    seed: int
    profile: str = "fast"
    results: list[ClauseResult] = field(default_factory=list)
    seconds: float = 0.0
    scenario: str | None = None
    """The ``--scenario`` given (a file path or a preset name), None without one."""
    runs: list[RunResult] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(r.outcome for r in self.results)
        return {k: counts.get(k, 0) for k in ("passed", "failed", "skipped")}

    @property
    def failed(self) -> bool:
        return any(r.outcome == "failed" for r in self.results)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (``docs/verdict.schema.json`` describes it)."""
        summary = dict(self.summary)
        summary.setdefault("warned", sum(str(r.outcome) == "warned" for r in self.results))
        return {
            "harness_version": __version__,
            "connector": self.connector,
            "seed": self.seed,
            "profile": self.profile,
            "scenario": self.scenario,
            "seconds": round(self.seconds, 3),
            "runs": [
                {"name": run.name, "scenario": run.scenario, "aborted": run.aborted}
                for run in self.runs
            ],
            "clauses": [
                {
                    "id": r.id,
                    "outcome": r.outcome,
                    "severity": r.severity,
                    "group": r.group,
                    "message": r.message,
                    "reproduce": r.reproduce,
                    "statement": r.statement,
                    "run": r.run,
                    "seqs": list(r.seqs),
                    "seconds": round(r.seconds, 6),
                }
                for r in self.results
            ],
            "summary": summary,
        }


def format_table(report: Report, *, width: int = 100) -> str:
    """The terminal table: clause, outcome, message; then the summary line."""
    id_w = max([len("clause")] + [len(r.id) for r in report.results])
    out_w = len("skipped")
    msg_w = max(20, width - id_w - out_w - 4)
    lines = [f"{'clause':<{id_w}}  {'outcome':<{out_w}}  message", "-" * min(width, 120)]
    for r in report.results:
        message = " ".join(r.message.split())
        if len(message) > msg_w:
            message = message[: msg_w - 1] + "…"
        lines.append(f"{r.id:<{id_w}}  {r.outcome:<{out_w}}  {message}")
    s = report.summary
    lines.append("")
    lines.append(
        f"{s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped "
        f"({report.connector}, seed {report.seed}, {report.seconds:.1f}s)"
    )
    for r in report.results:
        if r.outcome == "failed" and r.reproduce:
            lines.append(f"  reproduce {r.id}: {r.reproduce}")
    return "\n".join(lines)


def write_json(report: Report, path: str | Path) -> None:
    """The ``--json`` file: :meth:`Report.to_json`, UTF-8."""
    text = json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def write_junit_xml(report: Report, path: str | Path) -> None:
    """JUnit XML with one test case per clause, so CI dashboards show each clause."""
    s = report.summary
    suite = ET.Element(
        "testsuite",
        name="feed-harness conformance",
        tests=str(len(report.results)),
        failures=str(s["failed"]),
        skipped=str(s["skipped"]),
        errors="0",
        time=f"{report.seconds:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="connector", value=report.connector)
    ET.SubElement(props, "property", name="seed", value=str(report.seed))
    for r in report.results:
        case = ET.SubElement(
            suite, "testcase", classname=f"conformance.{r.group or 'clauses'}", name=r.id
        )
        case.set("time", f"{r.seconds:.3f}")
        if r.outcome == "failed":
            failure = ET.SubElement(case, "failure", message=r.message)
            failure.text = f"{r.statement}\n{r.message}\nreproduce: {r.reproduce}"
        elif r.outcome == "skipped":
            ET.SubElement(case, "skipped", message=r.message)
    ET.indent(suite)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _sequence_svg(trace: list[dict[str, Any]]) -> str:
    """A sequence diagram platform / connector / gateway / partner as inline SVG."""
    col = 190
    top = 40
    row = 26
    xs = {leg: 90 + i * col for i, leg in enumerate(LEGS)}
    rows: list[str] = []
    y = top + 10
    for ex in trace:
        src, dst = _LEG_ENDS.get(str(ex.get("leg")), ("platform", "connector"))
        x1, x2 = xs[src], xs[dst]
        label = f"#{ex.get('seq')} {ex.get('method', '')} {ex.get('path', '')}"
        rows.append(_arrow(x1, x2, y, label, dashed=False))
        y += row
        status = ex.get("status")
        failure = ex.get("failure")
        answer = f"{status}" if status is not None else f"✗ {failure or 'no answer'}"
        summary = ex.get("summary")
        if summary:
            answer += f" {summary}"
        rows.append(_arrow(x2, x1, y, answer, dashed=True))
        y += row
    height = y + 10
    width = 90 + col * (len(LEGS) - 1) + 90
    heads = "".join(
        f'<text x="{x}" y="20" text-anchor="middle" class="head">{leg}</text>'
        f'<line x1="{x}" y1="28" x2="{x}" y2="{height}" class="life"/>'
        for leg, x in xs.items()
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'class="seq">{heads}{"".join(rows)}</svg>'
    )


def _arrow(x1: int, x2: int, y: int, label: str, *, dashed: bool) -> str:
    direction = 1 if x2 > x1 else -1
    tip = x2 - 6 * direction
    cls = "ret" if dashed else "req"
    mid = (x1 + x2) / 2
    text = html.escape(label if len(label) <= 48 else label[:47] + "…")
    return (
        f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" class="{cls}"/>'
        f'<polygon points="{x2},{y} {tip},{y - 4} {tip},{y + 4}" class="tip"/>'
        f'<text x="{mid}" y="{y - 4}" text-anchor="middle">{text}</text>'
    )


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p class='muted'>nothing recorded</p>"
    cols = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)[:300]
    return str(value)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;vertical-align:top;font-size:13px} th{background:#f3f3f3}
.passed{color:#17702a}.failed{color:#b3261e;font-weight:600}.skipped{color:#777}
pre{background:#f6f6f6;padding:.6em;overflow:auto} .muted{color:#777}
.seq text{font:12px monospace} .seq .head{font:bold 13px sans-serif}
.seq .life{stroke:#bbb;stroke-dasharray:4 3} .seq .req{stroke:#333} .seq .ret{stroke:#777;
stroke-dasharray:5 3} .seq .tip{fill:#333} .side{display:flex;gap:2em;flex-wrap:wrap}
"""


def render_html(report: Report) -> str:
    """One self-contained HTML page: the clause table, then each failure in detail."""
    s = report.summary
    rows = "".join(
        f"<tr><td><a href='#{html.escape(r.id)}'>{html.escape(r.id)}</a></td>"
        f"<td class='{r.outcome}'>{r.outcome}</td><td>{html.escape(r.message)}</td></tr>"
        for r in report.results
    )
    details = []
    for r in report.results:
        if r.outcome != "failed":
            continue
        details.append(
            f"<section id='{html.escape(r.id)}'><h2 class='failed'>{html.escape(r.id)}</h2>"
            f"<p><b>{html.escape(r.statement)}</b></p><p>{html.escape(r.message)}</p>"
            f"<p>Replay it: <pre>{html.escape(r.reproduce)}</pre></p>"
            f"<h3>What happened{(' in run ' + html.escape(r.run)) if r.run else ''}</h3>"
            f"{_sequence_svg(r.trace) if r.trace else '<p class=muted>no trace</p>'}"
            "<div class='side'><div><h3>Accounting (platform side)</h3>"
            f"{_table([r.accounting] if r.accounting else [])}</div>"
            f"<div><h3>Partner ledger</h3>{_table(r.ledger)}</div></div></section>"
        )
    title = f"feed-harness: {html.escape(report.connector)}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_CSS}</style></head><body><h1>{title}</h1>"
        f"<p>seed {report.seed} · profile {html.escape(report.profile)} · "
        f"<span class='passed'>{s['passed']} passed</span>, "
        f"<span class='failed'>{s['failed']} failed</span>, "
        f"<span class='skipped'>{s['skipped']} skipped</span></p>"
        f"<table><tr><th>clause</th><th>outcome</th><th>message</th></tr>{rows}</table>"
        f"{''.join(details)}</body></html>\n"
    )


def write_html(report: Report, path: str | Path) -> None:
    Path(path).write_text(render_html(report))


def result_as_dict(result: ClauseResult) -> dict[str, Any]:
    """A clause result as plain data (for the pytest plugin's failure text)."""
    return asdict(result)
