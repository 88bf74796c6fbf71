"""The verdict of a verification and its four faces: terminal table, JSON, JUnit XML, HTML.

Everything here reads an already-redacted :class:`Report`; nothing here sees a secret.
"""

from __future__ import annotations

import html
import json
import math
import re
import socket
import textwrap
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
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
    warnings: list[str] = field(default_factory=list)
    """What the verification could not judge (a scenario fault no clause observes)."""
    finished_at: float = field(default_factory=time.time)
    """When the verification ended (epoch seconds); it started ``seconds`` earlier."""
    partner: str = "generic"
    """The partner dialect verified against (``generic``, ``linkedin``, ``meta``)."""

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(r.outcome for r in self.results)
        return {k: counts.get(k, 0) for k in ("passed", "failed", "skipped", "warned")}

    @property
    def failed(self) -> bool:
        return any(r.outcome == "failed" for r in self.results)

    @property
    def warned(self) -> bool:
        """A warning clause's check failed (``--strict`` makes that a failure)."""
        return any(r.outcome == "warned" for r in self.results)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (``docs/verdict.schema.json`` describes it)."""
        summary = dict(self.summary)
        summary.setdefault("warned", sum(str(r.outcome) == "warned" for r in self.results))
        return {
            "harness_version": __version__,
            "connector": self.connector,
            "seed": self.seed,
            "profile": self.profile,
            "partner": self.partner,
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
            "warnings": self.warnings,
        }


OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "warned", "skipped")
"""Every outcome a clause can have, in the order the summary line names them."""

_ANSI = {"passed": "32", "failed": "1;31", "warned": "33", "skipped": "2"}
_TERMINAL_BODY = 600


def summary_line(report: Report) -> str:
    """``3 passed, 1 failed, 1 skipped`` (``N warned`` only when a clause warned)."""
    s = report.summary
    shown = [k for k in OUTCOMES if k != "warned" or s.get(k)]
    return ", ".join(f"{s.get(k, 0)} {k}" for k in shown)


def format_table(
    report: Report, *, width: int = 100, full: bool = True, color: bool = False
) -> str:
    """The terminal table: clause, outcome, message; then the summary and replay lines.

    ``full`` (the default; what a pipe or a CI log gets) wraps every message at ``width``
    and never cuts one. Without it (an interactive terminal) passed and skipped messages
    are cut to one line, failed and warned ones still shown whole. ``color`` paints the
    outcomes with ANSI colours.
    """
    id_w = max([len("clause")] + [len(r.id) for r in report.results])
    out_w = len("skipped")
    indent = id_w + out_w + 4
    msg_w = max(20, width - indent)
    lines = [*_scenario_lines(report)]
    lines += [f"{'clause':<{id_w}}  {'outcome':<{out_w}}  message", "-" * min(width, 120)]
    alone = len(report.results) == 1
    for r in report.results:
        whole = full or alone or r.outcome in ("failed", "warned")
        body = _message_lines(r.message, msg_w, whole=whole)
        outcome = _paint(f"{r.outcome:<{out_w}}", r.outcome, color)
        lines.append(f"{r.id:<{id_w}}  {outcome}  {body[0]}".rstrip())
        lines += [" " * indent + more for more in body[1:]]
    lines.append("")
    lines.append(
        f"{summary_line(report)} ({report.connector}, seed {report.seed}, "
        f"{report.seconds:.1f}s, partner {report.partner})"
    )
    for r in report.results:
        if r.outcome in ("failed", "warned") and r.reproduce:
            lines.append(f"  reproduce {r.id}: {r.reproduce}")
    return "\n".join(lines)


def _message_lines(message: str, width: int, *, whole: bool) -> list[str]:
    """A message as table lines: wrapped whole (its own line breaks and indents kept), or
    cut to one line."""
    if not whole:
        flat = " ".join(message.split())
        return [flat if len(flat) <= width else flat[: width - 1] + "…"]
    out: list[str] = []
    for raw in message.splitlines():
        text = raw.rstrip()
        if not text.strip():
            continue
        lead = text[: len(text) - len(text.lstrip())]
        out += textwrap.wrap(
            text.strip(),
            max(10, width - len(lead)),
            initial_indent=lead,
            subsequent_indent=lead + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        ) or [lead]
    return out or [""]


def _paint(text: str, outcome: str, color: bool) -> str:
    code = _ANSI.get(outcome)
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def format_exchanges(report: Report, *, body_limit: int = _TERMINAL_BODY) -> str:
    """The exchanges each failed or warned clause names, nested by cause, with their
    (already redacted) bodies cut at ``body_limit`` characters: what ``verify -v`` prints."""
    blocks: list[str] = []
    for r in report.results:
        if r.outcome not in ("failed", "warned"):
            continue
        run = f" (run {r.run})" if r.run else ""
        if not r.trace:
            blocks.append(f"{r.id}{run}: no exchange recorded for this verdict")
            continue
        lines = [f"{r.id}{run}: {len(r.trace)} exchange(s)"]
        depths = _depths(r.trace)
        for index, ex in enumerate(r.trace):
            pad = "  " * (1 + depths[index])
            mark = "▶ " if ex.get("named") else ""
            lines.append(f"{pad}{mark}{_call_label(ex)} → {_answer_label(ex)}")
            for what, body in _bodies(ex):
                text = _body_text(body, body_limit, indent=None)
                lines.append(f"{pad}    {what}: {text}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _bodies(ex: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    request = ex.get("request")
    if isinstance(request, dict) and request.get("body") not in (None, "", b""):
        out.append(("request", request["body"]))
    response = ex.get("response")
    if isinstance(response, dict) and response.get("body") not in (None, "", b""):
        out.append(("answer", response["body"]))
    return out


def _body_text(body: Any, limit: int, *, indent: int | None) -> str:
    text = body if isinstance(body, str) else json.dumps(body, indent=indent, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + f"… ({len(text)} chars)"


def _depths(trace: list[dict[str, Any]]) -> list[int]:
    """How deep each exchange sits inside the others (by its ``seq`` / ``end_seq`` span)."""
    spans = [_span(ex, i) for i, ex in enumerate(trace)]
    return [
        sum(1 for (s2, e2) in spans if s2 < s and e <= e2 and (s2, e2) != (s, e))
        for (s, e) in spans
    ]


def _span(ex: dict[str, Any], index: int) -> tuple[float, float]:
    seq = ex.get("seq")
    start = float(seq) if isinstance(seq, int | float) else float(index)
    end = ex.get("end_seq")
    if isinstance(end, int | float):
        return start, float(end)
    if "end_seq" in ex:  # recorded, never answered: open until the end
        return start, math.inf
    return start, start + 0.5


def _call_label(ex: dict[str, Any]) -> str:
    return f"#{ex.get('seq')} {ex.get('method', '')} {ex.get('path', '')}"


def _answer_label(ex: dict[str, Any]) -> str:
    status = ex.get("status")
    if status is None:
        detail = ex.get("detail")
        text = f"✗ {ex.get('failure') or 'no answer'}"
        return f"{text} ({detail})" if detail else text
    parts = [str(status)]
    code = _error_code(ex)
    summary = str(ex.get("summary") or "")
    if code and code not in summary:
        parts.append(code)
    if summary:
        parts.append(summary)
    if ex.get("failure"):
        parts.append(f"✗ {ex['failure']}")
    return " ".join(parts)


def _error_code(ex: dict[str, Any]) -> str | None:
    """The error code an answer names (``error_code``, ``code``, ``error.code``, ``error``)."""
    response = ex.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    if not isinstance(body, dict):
        return None
    for key in ("error_code", "code"):
        if isinstance(body.get(key), str):
            return str(body[key])
    error = body.get("error")
    if isinstance(error, dict):
        for key in ("code", "type", "name"):
            if isinstance(error.get(key), str):
                return str(error[key])
    if isinstance(error, str):
        return error
    return None


def _scenario_lines(report: Report) -> list[str]:
    """Which runs played the user's scenario (only when one was given), and the warnings."""
    lines: list[str] = []
    if report.scenario is not None and report.runs:
        mine = [run.name for run in report.runs if run.scenario == report.scenario]
        others = len(report.runs) - len(mine)
        lines.append(
            f"scenario {report.scenario}: played by {', '.join(mine) or 'no run'}"
            + (f"; {others} run(s) keep a scenario of their own (see --json)" if others else "")
        )
    lines += [f"warning: {text}" for text in report.warnings]
    return [*lines, ""] if lines else []


def write_json(report: Report, path: str | Path) -> None:
    """The ``--json`` file: :meth:`Report.to_json`, UTF-8."""
    text = json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def junit_classname(group: str) -> str:
    """``feed_harness.<group>``: the group lower-cased, every other character run as ``_``."""
    name = re.sub(r"[^a-z0-9]+", "_", group.lower()).strip("_")
    return f"feed_harness.{name or 'clauses'}"


def write_junit_xml(report: Report, path: str | Path) -> None:
    """JUnit XML with one test case per clause, so CI dashboards show each clause.

    A warned clause is a passing case with an ``outcome=warned`` property and the warning in
    its ``<system-out>``; a failed one has a ``<failure type="feed_harness.ClauseFailed">``.
    """
    s = report.summary
    started = datetime.fromtimestamp(report.finished_at - report.seconds, tz=UTC)
    suite = ET.Element(
        "testsuite",
        name="feed-harness conformance",
        tests=str(len(report.results)),
        failures=str(s["failed"]),
        skipped=str(s["skipped"]),
        errors="0",
        time=f"{report.seconds:.3f}",
        timestamp=started.replace(microsecond=0, tzinfo=None).isoformat(),
        hostname=socket.gethostname() or "localhost",
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="connector", value=report.connector)
    ET.SubElement(props, "property", name="seed", value=str(report.seed))
    ET.SubElement(props, "property", name="profile", value=report.profile)
    ET.SubElement(props, "property", name="partner", value=report.partner)
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=junit_classname(r.group), name=r.id)
        case.set("time", f"{r.seconds:.3f}")
        details = f"{r.statement}\n{r.message}\nreproduce: {r.reproduce}"
        if r.outcome == "failed":
            first = r.message.strip().splitlines()[0] if r.message.strip() else r.statement
            failure = ET.SubElement(
                case, "failure", message=first, type="feed_harness.ClauseFailed"
            )
            failure.text = details
        elif r.outcome == "skipped":
            ET.SubElement(case, "skipped", message=r.message)
        elif r.outcome == "warned":
            case_props = ET.SubElement(case, "properties")
            ET.SubElement(case_props, "property", name="outcome", value="warned")
            ET.SubElement(case_props, "property", name="severity", value=r.severity)
            out = ET.SubElement(case, "system-out")
            out.text = f"warning: {details}"
    ET.indent(suite)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


# --------------------------------------------------------------------------- HTML

_COL = 210
_ROW = 24
_LEFT = 80


def sequence_events(trace: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """The diagram's arrows in causal order: ``("call", i)`` when exchange ``i`` starts,
    ``("answer", i)`` when it ends — a call's answer after every call it caused."""
    events: list[tuple[float, int, str, int]] = []
    for i, ex in enumerate(trace):
        start, end = _span(ex, i)
        events.append((start, 0, "call", i))
        events.append((end, 1, "answer", i))
    events.sort(key=lambda e: (e[0], e[1], e[3] if e[2] == "call" else -e[3]))
    return [(kind, i) for _, _, kind, i in events]


def _sequence_svg(trace: list[dict[str, Any]]) -> str:
    """A sequence diagram platform / connector / gateway / partner as inline SVG."""
    xs = {leg: _LEFT + i * _COL for i, leg in enumerate(LEGS)}
    rows: list[str] = []
    y = 50
    for kind, i in sequence_events(trace):
        ex = trace[i]
        src, dst = _LEG_ENDS.get(str(ex.get("leg")), ("platform", "connector"))
        named = bool(ex.get("named"))
        if kind == "call":
            rows.append(_arrow(xs[src], xs[dst], y, _call_label(ex), kind, ex, named))
        else:
            rows.append(_arrow(xs[dst], xs[src], y, _answer_label(ex), kind, ex, named))
        y += _ROW
    height = y
    width = _LEFT * 2 + _COL * (len(LEGS) - 1)
    heads = "".join(
        f'<text x="{x}" y="20" text-anchor="middle" class="head">{leg}</text>'
        f'<line x1="{x}" y1="28" x2="{x}" y2="{height}" class="life"/>'
        for leg, x in xs.items()
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" class="seq">{heads}{"".join(rows)}</svg>'
    )


def _arrow(x1: int, x2: int, y: int, label: str, kind: str, ex: dict[str, Any], named: bool) -> str:
    direction = 1 if x2 > x1 else -1
    tip = x2 - 6 * direction
    cls = ("ret" if kind == "answer" else "req") + (" named" if named else "")
    mid = (x1 + x2) / 2
    room = max(20, abs(x2 - x1) // 7)
    text = html.escape(label if len(label) <= room else label[: room - 1] + "…")
    return (
        f'<g class="arrow {cls}" data-kind="{kind}" data-seq="{html.escape(str(ex.get("seq")))}">'
        f"<title>{html.escape(label)}</title>"
        f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}"/>'
        f'<polygon points="{x2},{y} {tip},{y - 4} {tip},{y + 4}" class="tip"/>'
        f'<text x="{mid}" y="{y - 4}" text-anchor="middle">{text}</text></g>'
    )


_HTML_BODY = 4000


def _exchange_list(trace: list[dict[str, Any]]) -> str:
    """Each exchange, indented by nesting, with its (redacted, capped) headers and bodies."""
    depths = _depths(trace)
    items = []
    for i, ex in enumerate(trace):
        named = " named" if ex.get("named") else ""
        head = (
            f"<summary><code>{html.escape(str(ex.get('leg', '')))}</code> "
            f"{html.escape(_call_label(ex))} → {html.escape(_answer_label(ex))}</summary>"
        )
        parts = []
        request = ex.get("request") if isinstance(ex.get("request"), dict) else None
        response = ex.get("response") if isinstance(ex.get("response"), dict) else None
        if ex.get("url"):
            parts.append(f"<p class='muted'>{html.escape(str(ex['url']))}</p>")
        for what, side in (("request", request), ("answer", response)):
            if side is None:
                continue
            headers = side.get("headers") or {}
            if headers:
                shown = "\n".join(f"{k}: {v}" for k, v in headers.items())
                parts.append(f"<h4>{what} headers</h4><pre>{html.escape(shown)}</pre>")
            body = side.get("body")
            if body not in (None, ""):
                text = _body_text(body, _HTML_BODY, indent=2)
                parts.append(f"<h4>{what} body</h4><pre>{html.escape(text)}</pre>")
        if ex.get("detail"):
            parts.append(f"<h4>failure</h4><pre>{html.escape(str(ex['detail']))}</pre>")
        items.append(
            f"<details class='ex depth{min(depths[i], 4)}{named}' "
            f"style='margin-left:{1.5 * depths[i]}em'>{head}{''.join(parts)}</details>"
        )
    return f"<div class='exchanges'>{''.join(items)}</div>"


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p class='muted'>nothing recorded</p>"
    present = list(dict.fromkeys(k for r in rows for k in r))
    cols = [c for c in columns if c in present] if columns else present
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table class='data'><tr>{head}</tr>{body}</table>"


def _accounting_table(accounting: dict[str, Any] | None) -> str:
    """The accounting as key / value rows (one value column per feed when there are several)."""
    if not accounting:
        return "<p class='muted'>nothing recorded</p>"
    if all(isinstance(v, dict) for v in accounting.values()):
        feeds = list(accounting)
        keys = list(dict.fromkeys(k for v in accounting.values() for k in v))
        head = "<th></th>" + "".join(f"<th>{html.escape(f)}</th>" for f in feeds)
        body = "".join(
            f"<tr><th>{html.escape(k)}</th>"
            + "".join(f"<td>{html.escape(_cell(accounting[f].get(k)))}</td>" for f in feeds)
            + "</tr>"
            for k in keys
        )
        return f"<table class='data'><tr>{head}</tr>{body}</table>"
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_cell(v))}</td></tr>"
        for k, v in accounting.items()
    )
    return f"<table class='data kv'>{body}</table>"


LEDGER_COLUMNS = [
    "sequence",
    "time",
    "method",
    "path",
    "account_id",
    "segment_id",
    "status",
    "error_code",
    "received",
    "accepted",
    "rejected",
    "applied",
    "dropped",
    "faults",
]
"""The ledger columns the HTML report shows (the JSON keeps every field)."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)[:300]
    return str(value)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em} h4{margin:.6em 0 .2em;font-size:13px}
table{border-collapse:collapse;margin:.5em 0;max-width:100%}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;font-size:13px}
td{overflow-wrap:anywhere} th{background:#f3f3f3;overflow-wrap:break-word}
table.data td,table.data th{font-size:12px}
table.clauses td:nth-child(-n+2){white-space:nowrap}
.passed{color:#17702a}.failed{color:#b3261e;font-weight:600}.skipped{color:#777}
.warned{color:#9a6100;font-weight:600}
pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap;overflow-wrap:anywhere;margin:.3em 0}
.msg{white-space:pre-wrap;overflow-wrap:anywhere} .muted{color:#777}
.seq{max-width:100%;height:auto;display:block}
.seq text{font:12px monospace} .seq .head{font:bold 13px sans-serif}
.seq .life{stroke:#bbb;stroke-dasharray:4 3} .seq .req line{stroke:#333}
.seq .ret line{stroke:#777;stroke-dasharray:5 3} .seq .tip{fill:#333}
.seq .named line{stroke:#b3261e;stroke-width:2} .seq .named .tip{fill:#b3261e}
.seq .named text{fill:#b3261e}
details.ex{border-left:3px solid #ddd;padding:2px 8px;margin:3px 0;overflow-wrap:anywhere}
details.ex.named{border-left-color:#b3261e} details.ex summary{cursor:pointer;font-size:13px}
"""


def _section(r: ClauseResult) -> str:
    """A failed or warned clause in detail: message, replay, diagram, exchanges, tables."""
    run = f" in run {html.escape(r.run)}" if r.run else ""
    if r.trace:
        what = (
            f"{_sequence_svg(r.trace)}"
            "<p class='muted'>Arrows in causal order: a call's answer comes after the calls "
            "it caused; the exchanges the verdict names are red. Bodies are redacted and cut "
            f"at {_HTML_BODY} characters.</p>"
            f"<h3>Exchanges</h3>{_exchange_list(r.trace)}"
        )
    else:
        what = "<p class=muted>no exchange recorded for this verdict</p>"
    return (
        f"<section id='{html.escape(r.id)}'><h2 class='{r.outcome}'>{html.escape(r.id)} "
        f"({r.outcome})</h2>"
        f"<p><b>{html.escape(r.statement)}</b></p><pre class='msg'>{html.escape(r.message)}</pre>"
        f"<p>Replay it:</p><pre>{html.escape(r.reproduce)}</pre>"
        f"<h3>What happened{run}</h3>{what}"
        f"<h3>Accounting (platform side)</h3>{_accounting_table(r.accounting)}"
        f"<h3>Partner ledger</h3>{_table(r.ledger, LEDGER_COLUMNS)}</section>"
    )


def render_html(report: Report) -> str:
    """One self-contained HTML page: the clause table, then each failure in detail."""
    s = report.summary
    rows = "".join(
        f"<tr><td><a href='#{html.escape(r.id)}'>{html.escape(r.id)}</a></td>"
        f"<td class='{r.outcome}'>{r.outcome}</td>"
        f"<td class='msg'>{html.escape(r.message)}</td></tr>"
        for r in report.results
    )
    details = [_section(r) for r in report.results if r.outcome in ("failed", "warned")]
    counts = ", ".join(
        f"<span class='{k}'>{s.get(k, 0)} {k}</span>" for k in OUTCOMES if k != "warned" or s.get(k)
    )
    title = f"feed-harness: {html.escape(report.connector)}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<meta name='viewport' content='width=device-width'>"
        f"<style>{_CSS}</style></head><body><h1>{title}</h1>"
        f"<p>seed {report.seed} · profile {html.escape(report.profile)} · partner "
        f"{html.escape(report.partner)} · {counts}</p>"
        f"<table class='clauses'><tr><th>clause</th><th>outcome</th><th>message</th></tr>"
        f"{rows}</table>"
        f"{''.join(details)}</body></html>\n"
    )


def write_html(report: Report, path: str | Path) -> None:
    Path(path).write_text(render_html(report), encoding="utf-8")


def result_as_dict(result: ClauseResult) -> dict[str, Any]:
    """A clause result as plain data (for the pytest plugin's failure text)."""
    return asdict(result)
