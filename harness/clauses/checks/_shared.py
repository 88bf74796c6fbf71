"""What several groups of checks share: reading answers and requests, the findings a
check collects and turns into one verdict, the runs each premise was made in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from contracts.routes import (
    route_for_path,
)
from harness.accounting import UpdateRecord
from harness.clauses.evidence import Evidence, RunRecord
from harness.clauses.notes import Answered, AuthNotes, notes_of
from harness.clauses.registry import Verdict
from harness.clauses.run_names import AUTH
from harness.clauses.runs.core import PROBE_TAG
from harness.clauses.view import RunView, view_of
from harness.simulator import Feed
from harness.trace import Exchange, Leg

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
"""The partner's body limit for a members upload (5 MiB)."""

_PLATFORM: Leg = "platform->connector"
_PARTNER: Leg = "connector->partner"
_SEGMENT_PATH = re.compile(r"/v1/segments/([^/]+)")
_NO_ANSWER = frozenset({"timeout", "connection", "crash"})
_MAX_SHOWN = 5
_MAX_SEQS = 30


# --------------------------------------------------------------------------- findings


@dataclass
class _Finding:
    run: str
    message: str
    seqs: tuple[int, ...]
    pinned: bool = False
    """Always shown, even beyond the first findings (a random feed life's minimal program)."""


@dataclass
class _Findings:
    """The violations a check found, turned into one verdict."""

    items: list[_Finding] = field(default_factory=list)

    def add(
        self, run: str, message: str, seqs: Iterable[int | None] = (), *, pinned: bool = False
    ) -> None:
        kept = tuple(s for s in seqs if s is not None)
        self.items.append(_Finding(run, message, kept, pinned))

    def __bool__(self) -> bool:
        return bool(self.items)

    def verdict(self, passed: str, *, what: str = "violation") -> Verdict:
        if not self.items:
            return Verdict.passed(passed)
        first = self.items[:_MAX_SHOWN]
        pinned = [f for f in self.items[_MAX_SHOWN:] if f.pinned]
        shown = "; ".join(f"[{f.run}] {f.message}" for f in first)
        more = len(self.items) - len(first) - len(pinned)
        tail = f"; and {more} more" if more > 0 else ""
        tail += "".join(f"; [{f.run}] {f.message}" for f in pinned)
        run = self.items[0].run
        seqs: list[int] = []  # of the first failing run: seqs number one run's trace
        for finding in (f for f in self.items if f.run == run):
            for seq in finding.seqs:
                if seq not in seqs and len(seqs) < _MAX_SEQS:
                    seqs.append(seq)
        count = len(self.items)
        return Verdict.failed(
            f"{count} {what if count == 1 else _plural(what)}: {shown}{tail}",
            seqs=seqs,
            run=run,
        )


# --------------------------------------------------------------------------- trace helpers


def _exchanges(record: RunRecord, leg: Leg, path: str | None = None) -> list[Exchange]:
    return view_of(record).of_leg(leg, path)


def _is_probe(exchange: Exchange) -> bool:
    return exchange.tags.get(PROBE_TAG) is not None


def _answered(exchange: Exchange) -> bool:
    """An HTTP answer came back (JSON or not) and the trace still holds it: an exchange
    whose bodies were evicted to keep the trace within its budget (far beyond what a
    verification records) cannot be judged on its body."""
    return (
        exchange.status is not None and exchange.failure not in _NO_ANSWER and not exchange.evicted
    )


def _status(body: dict[str, Any] | None) -> str | None:
    value = body.get("status") if body is not None else None
    return value if isinstance(value, str) else None


def _request_feed_id(exchange: Exchange) -> str | None:
    body = exchange.request_json()
    if not isinstance(body, dict):
        return None
    feed_id = body.get("feed_id")
    context = body.get("context")
    if feed_id is None and isinstance(context, dict):
        feed_id = context.get("feed_id")
    return feed_id if isinstance(feed_id, str) else None


def _feeds(record: RunRecord) -> list[tuple[str, Feed]]:
    """Every feed the run's platform built, named as the run named it (else by id)."""
    names = {id(feed): name for name, feed in record.feeds.items()}
    if record.own_feeds_only:
        return list(record.feeds.items())
    feeds: list[Feed] = list(record.platform.feeds) or list(record.feeds.values())
    return [(names.get(id(feed), feed.feed_id), feed) for feed in feeds]


def _short(value: str) -> str:
    """An identifier value as a message may show it (never a whole raw email)."""
    if "@" in value:
        return f"<{len(value)}-character value with '@'>"
    return value if len(value) <= 16 else value[:12] + "…"


# --------------------------------------------------------------------------- updates


def _final_exchange(update: UpdateRecord, index: RunView) -> Exchange | None:
    return index.exchange(update.exchanges[-1]) if update.exchanges else None


_MAX_LISTED = 5

# ---------------------------------------------------------------------- reading a run


@dataclass
class _Problems:
    """What a check found wrong, in order: the text, the run, and the seqs that show it."""

    items: list[tuple[str, str | None, list[int]]] = field(default_factory=list)

    def add(self, text: str, seqs: Iterable[int | None] = (), run: str | None = None) -> None:
        self.items.append((text, run, sorted({s for s in seqs if s is not None})))

    def verdict(self, run: str | None = None) -> Verdict | None:
        """A failed verdict listing the problems (the first one's seqs and run), or None."""
        if not self.items:
            return None
        texts = [f"{r}: {t}" if r else t for t, r, _ in self.items]
        more = len(texts) - _MAX_LISTED
        message = "; ".join(texts[:_MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")
        _, first_run, seqs = self.items[0]
        return Verdict.failed(message, seqs=seqs, run=first_run or run)


def _route(exchange: Exchange | None) -> str | None:
    if exchange is None:
        return None
    found = route_for_path(exchange.method, exchange.path)
    return found.name if found is not None else None


def _answer(exchange: Exchange | None) -> str:
    """``HTTP 503 RETRY (seq 12)`` or the failure, for messages."""
    if exchange is None:
        return "nothing"
    if exchange.failure is not None and exchange.status is None:
        return f"{exchange.failure} (seq {exchange.seq})"
    status = exchange.answer_status
    return f"HTTP {exchange.status}" + (f" {status}" if status else "") + f" (seq {exchange.seq})"


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def _transient(run: RunView, exchange: Exchange) -> str | None:
    """What made a partner exchange a transient failure (throttled, a server error, no
    answer: the ledger's ``signal`` in any dialect), or None."""
    signal = run.signal(exchange)
    if signal not in ("transient", "throttled"):
        return None
    if exchange.status is not None:
        return f"HTTP {exchange.status}"
    return "a timeout" if exchange.failure == "timeout" else "a dropped connection"


def _recovered(run: RunView, call: Exchange, failed: Exchange) -> bool:
    """The same request was re-sent later in the same call and answered 2xx."""
    return any(
        e.seq > failed.seq
        and (e.method, e.path, e.request_body) == (failed.method, failed.path, failed.request_body)
        and _ok(e.status)
        for e in run.nested(call)
    )


def _stopped(evidence: Evidence, names: Iterable[str]) -> str:
    """``; run X stopped early (why)`` for the named runs that did, for messages."""
    stopped = [
        f"run {record.name} stopped early ({record.aborted})"
        for name in names
        if (record := evidence.get(name)) is not None and record.aborted
    ]
    return ("; " + "; ".join(stopped)) if stopped else ""


def _judged(
    evidence: Evidence,
    problems: _Problems,
    checked: int,
    *,
    runs: tuple[str, ...],
    passed: str,
    absent: str,
) -> Verdict:
    """Failed with the problems; else skipped when nothing was ``checked`` (the premise
    never occurred), else passed. A declared run that stopped early is said, not failed:
    why it stopped is another clause's business."""
    first = next((name for name in runs if name in evidence.runs), None)
    failed = problems.verdict(first)
    if failed is not None:
        return failed
    stopped = _stopped(evidence, runs)
    if not checked:
        return Verdict.skipped(f"not exercised: {absent}{stopped}", run=first)
    return Verdict.passed(passed + stopped, run=first)


# ---------------------------------------------------------------------- authentication


def _auth_run(evidence: Evidence) -> tuple[RunView, AuthNotes] | Verdict:
    """The auth run and its notes, its premise; skipped when absent (the engine has already
    skipped a clause whose routes the connector does not implement)."""
    record, notes = notes_of(evidence, AUTH, AuthNotes)
    if record is None or isinstance(notes, str):
        return Verdict.skipped(f"not exercised: {notes}", run=AUTH)
    return view_of(record), notes


def _auth_passed(run: RunView, message: str) -> Verdict:
    stopped = f"; run {run.name} stopped early ({run.record.aborted})" if run.record.aborted else ""
    return Verdict.passed(message + stopped, run=run.name)


def _why_missing(run: RunView, notes: AuthNotes) -> str:
    reasons = [f"{k}: {v}" for k, v in notes.skipped.items()]
    if run.record.aborted:
        reasons.append(f"run stopped: {run.record.aborted}")
    return "; ".join(reasons) or "the run did not reach it"


def _call_of(run: RunView, answered: Answered | None) -> Exchange | None:
    """The platform call a noted answer names."""
    return run.call(answered.seq) if answered is not None else None


def _plural(word: str) -> str:
    """``violation`` -> ``violations``, ``mismatch`` -> ``mismatches``."""
    return word + ("es" if word.endswith(("ch", "sh", "s", "x")) else "s")
