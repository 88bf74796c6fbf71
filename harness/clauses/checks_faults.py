"""The partner-fault, authentication and optional-route clauses of ``clauses.md``.

Checks read the runs of ``runs_faults`` (and any other run present): the trace links a
partner request to the platform call it was made in (sequence numbers nest), and the
partner's ledger, joined on ``X-Request-Id``, says what the partner did with it.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from contracts.routes import DELAY_HEADER, ROUTES, route_for_path
from fake_partner import LedgerEntry
from harness.clauses.evidence import Evidence, RunRecord, not_implemented
from harness.clauses.registry import Verdict, clause
from harness.clauses.runs_faults import ACCOUNT, AUTH_RUN, preset_run
from harness.trace import Exchange

__all__ = [
    "INVALID_GRANT",
    "PARTIAL",
    "RATE_LIMIT_RUNS",
    "TOKEN_EXPIRY",
    "TRANSIENT_RUNS",
    "auth_roundtrip",
    "auth_state_tamper",
    "auth_status",
    "dynamic_properties",
    "not_implemented_ok",
    "partial_failure",
    "rate_limit",
    "token_invalid_grant",
    "token_refresh",
    "transient_5xx",
]

TOKEN_EXPIRY = preset_run("token-expiry-mid-upload")
INVALID_GRANT = preset_run("invalid-grant")
RATE_LIMIT_RUNS = (preset_run("rate-limit-burst"), preset_run("rate-limit-no-retry-after"))
TRANSIENT_RUNS = (
    preset_run("flaky-5xx"),
    preset_run("ambiguous-503"),
    preset_run("dropped-connection"),
    preset_run("ambiguous-drop"),
)
PARTIAL = preset_run("mixed-invalid-items")

_FAULTS = "Partner faults"
_AUTH = "Troubleshoot, authentication, dynamic properties"
_UPLOAD_ROUTE = "POST /v1/segments/{segment_id}/members"
_REAUTH = re.compile(r"re-?auth|authenticat", re.IGNORECASE)
_NOT_IMPLEMENTED_TEXT = re.compile(r"not[ _-]?implemented|not supported|unsupported", re.I)
_RETRY_STATUS = {
    "batch_update": "RETRY",
    "user_segment_update": "retry",
    "external_segment_connection": "external_segment_not_ready_yet",
}
"""What a platform call answers when a transient partner failure stopped it."""
_PARTNER_ROUTES = (
    "external_segment_creation",
    "external_segment_connection",
    "batch_update",
    "troubleshoot",
)
"""Feed routes that cannot do their work without the partner."""
_OPTIONAL_ROUTES = frozenset(r.name for r in ROUTES if r.optional)
_MAX_LISTED = 5


# ---------------------------------------------------------------------- reading a run


@dataclass
class _Run:
    """One run's trace and ledger joined: who made each partner request, and in which call."""

    record: RunRecord
    calls: list[Exchange] = field(init=False)
    partner: list[Exchange] = field(init=False)
    entries: tuple[LedgerEntry, ...] = field(init=False)
    by_request_id: dict[str, LedgerEntry] = field(init=False)
    exchange_of: dict[str, Exchange] = field(init=False)
    _starts: list[int] = field(init=False)

    def __post_init__(self) -> None:
        trace = self.record.trace
        self.calls = list(trace.exchanges("platform->connector"))
        self.partner = [
            e
            for e in trace.exchanges("connector->partner")
            if not str(e.tags.get("actor", "")).startswith("harness")
        ]
        self.entries = tuple(self.record.partner.ledger.entries)
        self.by_request_id = {e.request_id: e for e in self.entries}
        self.exchange_of = {}
        for exchange in self.partner:
            request_id = exchange.response_header("x-request-id")
            if request_id:
                self.exchange_of[request_id] = exchange
        self._starts = [c.seq for c in self.calls]

    @property
    def name(self) -> str:
        return self.record.name

    def enclosing(self, seq: int) -> Exchange | None:
        """The platform call open when exchange ``seq`` started."""
        index = bisect.bisect_left(self._starts, seq) - 1
        if index < 0:
            return None
        call = self.calls[index]
        return call if call.end_seq is None or seq < call.end_seq else None

    def owner(self, entry: LedgerEntry) -> Exchange | None:
        """The platform call a ledger entry's request was made in."""
        exchange = self.exchange_of.get(entry.request_id)
        return self.enclosing(exchange.seq) if exchange is not None else None

    def entry(self, exchange: Exchange) -> LedgerEntry | None:
        """The ledger entry of a partner exchange (None for a dropped connection)."""
        request_id = exchange.response_header("x-request-id")
        return self.by_request_id.get(request_id) if request_id else None

    def seq_of(self, entry: LedgerEntry) -> int | None:
        exchange = self.exchange_of.get(entry.request_id)
        return exchange.seq if exchange is not None else None

    def nested(self, call: Exchange) -> list[Exchange]:
        """The partner exchanges made while ``call`` was open."""
        end = call.end_seq if call.end_seq is not None else math.inf
        return [e for e in self.partner if call.seq < e.seq < end]

    def nested_entries(self, call: Exchange) -> list[LedgerEntry]:
        return [entry for e in self.nested(call) if (entry := self.entry(e)) is not None]

    def v1(self) -> list[LedgerEntry]:
        return [e for e in self.entries if e.path.startswith("/v1/")]

    def uploads(self) -> int:
        return sum(1 for e in self.entries if e.route == _UPLOAD_ROUTE)

    def note(self, key: str) -> Exchange | None:
        """The exchange a note ``{"seq": ...}`` (or ``{"answer": {"seq": ...}}``) names."""
        return _by_seq(self, self.record.notes.get(key))


@dataclass
class _Problems:
    """What a check found wrong, in order: the text, the run, and the seqs that show it."""

    items: list[tuple[str, str | None, list[int]]] = field(default_factory=list)

    def add(self, text: str, seqs: Iterable[int | None] = (), run: str | None = None) -> None:
        self.items.append((text, run, sorted({s for s in seqs if s is not None})))

    def verdict(self, run: str) -> Verdict | None:
        """A failed verdict listing the problems (the first one's seqs and run), or None."""
        if not self.items:
            return None
        texts = [f"{r}: {t}" if r else t for t, r, _ in self.items]
        more = len(texts) - _MAX_LISTED
        message = "; ".join(texts[:_MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")
        _, first_run, seqs = self.items[0]
        return Verdict.failed(message, seqs=seqs, run=first_run or run)


def _by_seq(run: _Run, note: Any) -> Exchange | None:
    seq = note.get("seq") if isinstance(note, dict) else None
    if not isinstance(seq, int):
        return None
    index = bisect.bisect_left(run._starts, seq)
    return run.calls[index] if index < len(run.calls) and run.calls[index].seq == seq else None


def _route(exchange: Exchange) -> str | None:
    found = route_for_path(exchange.method, exchange.path)
    return found.name if found is not None else None


def _status(exchange: Exchange) -> str | None:
    body = exchange.response_json()
    value = body.get("status") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def _message(exchange: Exchange) -> str:
    body = exchange.response_json()
    value = body.get("message") if isinstance(body, dict) else None
    return value if isinstance(value, str) else ""


def _answer(exchange: Exchange | None) -> str:
    """``HTTP 503 RETRY (seq 12)`` or the failure, for messages."""
    if exchange is None:
        return "nothing"
    if exchange.failure is not None and exchange.status is None:
        return f"{exchange.failure} (seq {exchange.seq})"
    status = _status(exchange)
    return f"HTTP {exchange.status}" + (f" {status}" if status else "") + f" (seq {exchange.seq})"


def _delay_ms(exchange: Exchange) -> float | None:
    """The delay a connector answer asks for: ``x-mics-next-msg-delay``, else the body's."""
    raw = exchange.response_header(DELAY_HEADER)
    if raw:
        try:
            return float(raw)
        except ValueError:
            pass
    body = exchange.response_json()
    value = body.get("next_msg_delay_in_ms") if isinstance(body, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _retry_after(exchange: Exchange | None) -> float | None:
    raw = exchange.response_header("retry-after") if exchange is not None else None
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _is_refresh(entry: LedgerEntry) -> bool:
    return entry.path == "/oauth/token" and entry.grant_type == "refresh_token"


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def _required(evidence: Evidence, name: str) -> _Run | Verdict:
    """The run, or a failed verdict saying it is missing."""
    record = evidence.get(name)
    if record is None:
        return Verdict.failed(f"run {name!r} was not executed: this clause needs it", run=name)
    return _Run(record)


def _all_required(evidence: Evidence, names: Iterable[str]) -> list[_Run] | Verdict:
    runs: list[_Run] = []
    for name in names:
        run = _required(evidence, name)
        if isinstance(run, Verdict):
            return run
        runs.append(run)
    return runs


def _finish(runs: Iterable[_Run], verdict: Verdict) -> Verdict:
    """A verdict that is not a failure becomes one when a run it read stopped early."""
    for run in runs:
        if run.record.aborted and verdict.outcome != "failed":
            return Verdict.failed(
                f"run {run.name} stopped early ({run.record.aborted}); checked before that: "
                f"{verdict.message or 'nothing'}",
                run=run.name,
            )
    return verdict


# ---------------------------------------------------------------------- TOKEN-REFRESH


@clause(
    "TOKEN-REFRESH",
    "on 401 `EXPIRED_ACCESS_TOKEN` the connector refreshes once and re-sends; nothing is "
    "lost, and it never refreshes before each call when the token is still valid.",
    group=_FAULTS,
    runs=(TOKEN_EXPIRY,),
)
def token_refresh(evidence: Evidence) -> Verdict:
    """After each 401 EXPIRED: exactly one refresh before the next /v1 request, and the refused
    call (its operations) re-sent; per run, refresh grants <= 1 + feeds + 401 answers +
    ceil(span / (access lifetime / 2))."""
    main = _required(evidence, TOKEN_EXPIRY)
    if isinstance(main, Verdict):
        return main
    problems = _Problems()
    expired = 0
    for record in evidence:
        if not record.name.startswith("preset:") or record.name == INVALID_GRANT:
            continue  # under invalid-grant no refresh can work; the auth run refreshes by design
        run = _Run(record)
        expired += _check_expired(run, problems)
        _check_refresh_bound(run, problems)
    failed = problems.verdict(main.name)
    if failed is not None:
        return failed
    if not any(e.status == 401 for e in main.v1()):
        if main.uploads() >= 2:
            return Verdict.failed(
                f"the partner answered no 401 in {main.name} although the connector sent "
                f"{main.uploads()} uploads (the 2nd one's token expires): the fault did not fire",
                run=main.name,
            )
        skipped = Verdict.skipped(
            f"not exercised: the connector sent {main.uploads()} member upload(s) in "
            f"{main.name}; the preset expires the token of the 2nd",
            run=main.name,
        )
        return _finish([main], skipped)
    return _finish(
        [main],
        Verdict.passed(
            f"{expired} 401 EXPIRED_ACCESS_TOKEN answer(s), each followed by one refresh and the "
            "call re-sent; refresh grants within the bound in every run",
            run=main.name,
        ),
    )


def _check_expired(run: _Run, problems: _Problems) -> int:
    """Check what followed each 401 EXPIRED_ACCESS_TOKEN of a run; return how many."""
    entries = run.entries
    count = 0
    for index, refused in enumerate(entries):
        if not (
            refused.path.startswith("/v1/")
            and refused.status == 401
            and refused.error_code == "EXPIRED_ACCESS_TOKEN"
        ):
            continue
        count += 1
        later = entries[index + 1 :]
        following = next((e for e in later if e.path.startswith("/v1/")), None)
        where = f"{refused.method} {refused.path} answered 401 EXPIRED_ACCESS_TOKEN"
        if following is None:
            problems.add(
                f"{where}, and the connector never called /v1 again",
                [run.seq_of(refused)],
                run.name,
            )
            continue
        between = [e for e in later if e.sequence < following.sequence and _is_refresh(e)]
        seqs = [run.seq_of(e) for e in (refused, *between, following)]
        if len(between) != 1:
            problems.add(
                f"{where}; {len(between)} refresh request(s) before the next /v1 request "
                f"({following.method} {following.path}), expected exactly 1",
                seqs,
                run.name,
            )
        elif between[0].status != 200:
            problems.add(f"{where}; the refresh after it got {between[0].status}", seqs, run.name)
        if refused.route == _UPLOAD_ROUTE:
            wanted = {(op.action, op.identifiers) for op in refused.operations}
            resent = {
                (op.action, op.identifiers)
                for e in later
                if e.route == _UPLOAD_ROUTE and e.segment_id == refused.segment_id and _ok(e.status)
                for op in e.operations
            }
            if wanted - resent:
                problems.add(
                    f"{where}; {len(wanted - resent)} of its {len(wanted)} operations were never "
                    "re-sent in an accepted upload (lost)",
                    seqs,
                    run.name,
                )
        elif (following.method, following.path) != (refused.method, refused.path):
            problems.add(
                f"{where}; the next /v1 request was {following.method} {following.path}, not "
                "the refused call re-sent",
                seqs,
                run.name,
            )
    return count


def _check_refresh_bound(run: _Run, problems: _Problems) -> None:
    """Too many refresh grants for the run's length: the token is refreshed while valid."""
    entries = run.entries
    if not entries:
        return
    grants = [e for e in entries if _is_refresh(e) and e.status == 200]
    unauthorized = sum(1 for e in run.v1() if e.status == 401)
    feeds = len(run.record.platform.feeds)
    span = entries[-1].time - entries[0].time
    lifetime = float(run.record.partner.effective_scenario.access_token_lifetime)
    periods = math.ceil(span / (lifetime / 2))
    bound = 1 + feeds + unauthorized + periods
    if len(grants) > bound:
        problems.add(
            f"{len(grants)} refresh grants for {len(run.v1())} /v1 requests over {span:.0f} s "
            f"virtual; at most {bound} expected (1 + {feeds} feed(s) + {unauthorized} 401 "
            f"answer(s) + {periods} half-lifetimes of {lifetime:g} s): the connector refreshes "
            "while its access token is still valid",
            [run.seq_of(e) for e in grants[:_MAX_LISTED]],
            run.name,
        )


# ---------------------------------------------------------------------- TOKEN-INVALID-GRANT


@clause(
    "TOKEN-INVALID-GRANT",
    "when the refresh token itself is refused (400 `invalid_grant`), the answer is an error "
    "that says re-authentication is needed; no retry storm.",
    group=_FAULTS,
    runs=(INVALID_GRANT,),
)
def token_invalid_grant(evidence: Evidence) -> Verdict:
    """Every creation, connection, batch, troubleshoot (and update that called the partner)
    answers error/ERROR with a message naming re-authentication; from the first invalid_grant
    on, at most one refresh attempt per platform call (and one outside any call)."""
    run = _required(evidence, INVALID_GRANT)
    if isinstance(run, Verdict):
        return run
    refused = [e for e in run.entries if _is_refresh(e) and e.error_code == "invalid_grant"]
    if not refused:
        return Verdict.failed(
            f"the connector never presented its refresh token to the partner in {run.name} "
            f"({sum(1 for e in run.entries if _is_refresh(e))} refresh requests): its calls "
            "cannot have found out that re-authentication is needed",
            run=run.name,
        )
    problems = _Problems()
    answered = 0
    for call in run.calls:
        name = _route(call)
        if not_implemented(call) or (
            name not in _PARTNER_ROUTES and not (name == "user_segment_update" and run.nested(call))
        ):
            continue
        answered += 1
        if _status(call) not in ("error", "ERROR"):
            problems.add(
                f"{name} answered {_answer(call)}, expected error/ERROR: the partner refuses "
                "the refresh token",
                [call.seq],
            )
        elif not _REAUTH.search(_message(call)):
            problems.add(
                f"{name} answered {_answer(call)} with message {_message(call)!r}, which does "
                "not say re-authentication is needed",
                [call.seq],
            )
    attempts = [e for e in run.entries if _is_refresh(e) and e.sequence >= refused[0].sequence]
    per_call: Counter[int | None] = Counter()
    for entry in attempts:
        owner = run.owner(entry)
        per_call[owner.seq if owner is not None else None] += 1
    for seq, count in per_call.items():
        if count <= 1:
            continue
        if seq is None:
            problems.add(
                f"{count} refresh attempts outside any platform call after the partner answered "
                "invalid_grant (retry storm)",
                [run.seq_of(e) for e in attempts[:_MAX_LISTED]],
            )
        else:
            problems.add(
                f"the platform call at seq {seq} made {count} refresh attempts after the partner "
                "answered invalid_grant (retry storm; at most 1 per call)",
                [seq],
            )
    return problems.verdict(run.name) or _finish(
        [run],
        Verdict.passed(
            f"{answered} partner-bound calls answered error naming re-authentication; "
            f"{len(attempts)} refresh attempts for {len(run.calls)} platform calls, at most 1 "
            "per call",
            run=run.name,
        ),
    )


# ---------------------------------------------------------------------- RATE-LIMIT


@clause(
    "RATE-LIMIT",
    "on 429 the connector answers `retry`/`RETRY` with a delay of at least `Retry-After` (or a "
    "positive default when the header is missing), and the partner sees no request from it "
    "before that delay passed.",
    group=_FAULTS,
    runs=RATE_LIMIT_RUNS,
)
def rate_limit(evidence: Evidence) -> Verdict:
    """Each partner 429 inside an update/batch call: that call answers retry/RETRY with a delay
    >= Retry-After*1000 (> 0 without it), and no /v1 request of the same token or OAuth client
    comes before 429 time + Retry-After (else + the delay asked for) on the partner clock.
    Inside a connection call: the answer is not-ready (502). In any call: no second request
    within the same platform call."""
    runs = _all_required(evidence, RATE_LIMIT_RUNS)
    if isinstance(runs, Verdict):
        return runs
    problems = _Problems()
    seen = 0
    for record in evidence:
        seen += _check_429(_Run(record), problems)
    failed = problems.verdict(runs[0].name)
    if failed is not None:
        return failed
    for run in runs:
        if not any(e.status == 429 for e in run.v1()):
            if len(run.v1()) >= 3:
                return Verdict.failed(
                    f"the partner answered no 429 in {run.name} although the connector made "
                    f"{len(run.v1())} /v1 requests (calls 3 to 5 are refused): the fault did "
                    "not fire",
                    run=run.name,
                )
            skipped = Verdict.skipped(
                f"not exercised: the connector made {len(run.v1())} /v1 request(s) in "
                f"{run.name}; the preset refuses calls 3 to 5",
                run=run.name,
            )
            return _finish(runs, skipped)
    return _finish(
        runs,
        Verdict.passed(
            f"{seen} partner 429 answer(s): retry with a long enough delay, no request before "
            "it passed",
            run=runs[0].name,
        ),
    )


def _check_429(run: _Run, problems: _Problems) -> int:
    """Check the connector's answer and the partner's next requests after each 429."""
    v1 = run.v1()
    limited = [e for e in v1 if e.status == 429]
    for entry in limited:
        exchange = run.exchange_of.get(entry.request_id)
        retry_after = _retry_after(exchange)
        call = run.owner(entry)
        name = _route(call) if call is not None else None
        seqs = [call.seq if call else None, exchange.seq if exchange else None]
        header = f"Retry-After {retry_after:g} s" if retry_after is not None else "no Retry-After"
        where = f"the partner answered 429 ({header}) to {entry.method} {entry.path}"
        delay: float | None = None
        if call is not None and name in ("batch_update", "user_segment_update"):
            expected = _RETRY_STATUS[name]
            delay = _delay_ms(call)
            if _status(call) != expected:
                problems.add(
                    f"{where}; {name} answered {_answer(call)}, expected {expected}", seqs, run.name
                )
                delay = None
            elif delay is None or delay <= 0:
                problems.add(
                    f"{where}; {name} answered {_answer(call)} without a positive delay "
                    f"({DELAY_HEADER} / next_msg_delay_in_ms)",
                    seqs,
                    run.name,
                )
                delay = None
            elif retry_after is not None and delay < retry_after * 1000:
                problems.add(
                    f"{where}; {name} at seq {call.seq} asked for {delay:g} ms, less than "
                    f"Retry-After ({retry_after * 1000:g} ms)",
                    seqs,
                    run.name,
                )
        elif (
            call is not None
            and name == "external_segment_connection"
            and _status(call) != "external_segment_not_ready_yet"
        ):
            # connection has no delay field: "not ready yet" is its retry, and the
            # platform's poll interval (not the connector) decides when it comes again
            problems.add(
                f"{where}; connection answered {_answer(call)}, expected "
                "external_segment_not_ready_yet (502)",
                seqs,
                run.name,
            )
        # the delay binds the connector where it can ask for one (update and batch answers)
        # or where it calls on its own; elsewhere it must at least not retry in the same call
        timed = call is None or name in ("batch_update", "user_segment_update")
        gap = retry_after if retry_after is not None else (delay / 1000 if delay else 0.0)
        early = [
            e
            for e in v1
            if e.sequence > entry.sequence
            and _same_sender(e, entry)
            and (
                (timed and e.time < entry.time + gap) or (call is not None and run.owner(e) is call)
            )
        ]
        if early:
            first = early[0]
            problems.add(
                f"{where}; the partner then saw {len(early)} request(s) before the delay "
                f"({gap:g} s) passed, the first {first.method} {first.path} "
                f"{first.time - entry.time:g} s later",
                seqs + [run.seq_of(e) for e in early[:_MAX_LISTED]],
                run.name,
            )
    return len(limited)


def _same_sender(entry: LedgerEntry, limited: LedgerEntry) -> bool:
    if entry.token is not None and entry.token == limited.token:
        return True
    return entry.client_id is not None and entry.client_id == limited.client_id


# ---------------------------------------------------------------------- TRANSIENT-5XX


@clause(
    "TRANSIENT-5XX",
    "a partner 5xx or dropped connection gives `RETRY`/`retry`, not `ERROR` and not `OK`.",
    group=_FAULTS,
    runs=TRANSIENT_RUNS,
)
def transient_5xx(evidence: Evidence) -> Verdict:
    """A partner 5xx / dropped connection / timeout inside a batch, update or connection call,
    not re-sent with a 2xx in the same call: that call answers RETRY / retry /
    external_segment_not_ready_yet."""
    runs = _all_required(evidence, TRANSIENT_RUNS)
    if isinstance(runs, Verdict):
        return runs
    problems = _Problems()
    checked = 0
    for record in evidence:
        run = _Run(record)
        for failed in run.partner:
            transient = (failed.status is not None and failed.status >= 500) or (
                failed.status is None and failed.failure in ("connection", "timeout")
            )
            call = run.enclosing(failed.seq) if transient else None
            name = _route(call) if call is not None else None
            if call is None or name not in _RETRY_STATUS or _recovered(run, call, failed):
                continue
            checked += 1
            expected = _RETRY_STATUS[name]
            if _status(call) != expected:
                what = f"HTTP {failed.status}" if failed.status else "a dropped connection"
                problems.add(
                    f"{name} answered {_answer(call)} after the partner gave {what} to "
                    f"{failed.method} {failed.path} (seq {failed.seq}), expected {expected}",
                    [call.seq, failed.seq],
                    run.name,
                )
    failed_verdict = problems.verdict(runs[0].name)
    if failed_verdict is not None:
        return failed_verdict
    if not checked:
        uploads = sum(run.uploads() for run in runs)
        if uploads:
            return Verdict.failed(
                "no partner 5xx or dropped connection reached a batch, update or connection "
                f"call in {', '.join(TRANSIENT_RUNS)} although the connector sent {uploads} "
                "uploads: the faults did not fire",
                run=runs[0].name,
            )
        skipped = Verdict.skipped(
            "not exercised: the connector sent no member upload in the transient-fault runs",
            run=runs[0].name,
        )
        return _finish(runs, skipped)
    return _finish(
        runs,
        Verdict.passed(
            f"{checked} transient partner failure(s) answered as retry", run=runs[0].name
        ),
    )


def _recovered(run: _Run, call: Exchange, failed: Exchange) -> bool:
    """The same request was re-sent later in the same call and answered 2xx."""
    return any(
        e.seq > failed.seq
        and (e.method, e.path, e.request_body) == (failed.method, failed.path, failed.request_body)
        and _ok(e.status)
        for e in run.nested(call)
    )


# ---------------------------------------------------------------------- PARTIAL-FAILURE


@clause(
    "PARTIAL-FAILURE",
    "per-item partner errors are reported as `sent_items_in_error` for exactly those items, "
    "the rest as success.",
    group=_FAULTS,
    runs=(PARTIAL,),
)
def partial_failure(evidence: Evidence) -> Verdict:
    """Each final (OK/ERROR) batch answer whose 2xx uploads rejected items: success == operations
    accepted, error == batch size - accepted (one operation per item); an update whose upload
    rejected operations answers error."""
    run = _required(evidence, PARTIAL)
    if isinstance(run, Verdict):
        return run
    problems = _Problems()
    checked = 0
    for call in run.calls:
        name = _route(call)
        if name not in ("batch_update", "user_segment_update"):
            continue
        uploads = [
            e for e in run.nested_entries(call) if e.route == _UPLOAD_ROUTE and _ok(e.status)
        ]
        rejected = sum(e.rejected for e in uploads)
        if not rejected or _status(call) == "RETRY":
            continue  # no per-item error; or a RETRY answer, whose counts are not counted
        checked += 1
        accepted = sum(e.accepted for e in uploads)
        sent = sum(len(e.operations) for e in uploads)
        seqs = [call.seq, *(run.seq_of(e) for e in uploads)]
        if name == "user_segment_update":
            if _status(call) != "error":
                problems.add(
                    f"update answered {_answer(call)} although the partner rejected {rejected} "
                    f"of its {sent} operations; expected error",
                    seqs,
                )
            continue
        problem = _batch_counts(call, accepted, rejected, sent)
        if problem:
            problems.add(problem, seqs)
    failed = problems.verdict(run.name)
    if failed is not None:
        return failed
    if not checked:
        rejected_total = sum(e.rejected for e in run.v1())
        if run.uploads():
            return Verdict.failed(
                f"no final batch or update answer followed a per-item rejection in {run.name} "
                f"({run.uploads()} uploads, {rejected_total} operations rejected)",
                run=run.name,
            )
        skipped = Verdict.skipped(
            f"not exercised: the connector sent no member upload in {run.name}", run=run.name
        )
        return _finish([run], skipped)
    return _finish(
        [run],
        Verdict.passed(
            f"{checked} answer(s) after per-item rejections counted exactly the rejected items "
            "as errors",
            run=run.name,
        ),
    )


def _batch_counts(call: Exchange, accepted: int, rejected: int, sent: int) -> str | None:
    request = call.request_json()
    content = request.get("batch_content") if isinstance(request, dict) else None
    size = len(content) if isinstance(content, list) else 0
    body = call.response_json()
    success = body.get("sent_items_in_success") if isinstance(body, dict) else None
    error = body.get("sent_items_in_error") if isinstance(body, dict) else None
    head = (
        f"batch {_answer(call)}: {size} items, the partner accepted {accepted} and rejected "
        f"{rejected} of {sent} operations; the connector counted {success} success / "
        f"{error} error"
    )
    if sent <= size:
        if success != accepted or error != size - accepted:
            return f"{head}, expected {accepted} / {size - accepted}"
        return None
    # more operations than items: an item became several operations
    if not isinstance(error, int) or error < 1 or success != size - error:
        return f"{head}, expected at least 1 error and success + error == {size}"
    return None


# ---------------------------------------------------------------------- authentication


def _auth_run(evidence: Evidence, routes: tuple[str, ...]) -> _Run | Verdict:
    """The auth run (the engine has already skipped a clause whose routes are absent)."""
    del routes
    return _required(evidence, AUTH_RUN)


def _expect(run: _Run, problems: _Problems, key: str, expected: str, what: str) -> bool:
    """Add a problem unless the noted answer ``key`` has body status ``expected``."""
    exchange = run.note(key)
    if exchange is None:
        problems.add(f"{what}: not played ({_why_missing(run)})")
        return False
    if _status(exchange) != expected:
        problems.add(f"{what} answered {_answer(exchange)}, expected {expected}", [exchange.seq])
        return False
    return True


def _why_missing(run: _Run) -> str:
    skipped = run.record.notes.get("skipped") or {}
    reasons = [f"{k}: {v}" for k, v in skipped.items()]
    if run.record.aborted:
        reasons.append(f"run stopped: {run.record.aborted}")
    return "; ".join(reasons) or "the run did not reach it"


def _login_url_problem(run: _Run, url: object, what: str) -> str | None:
    """Why ``url`` is not the partner's ``/oauth/authorize`` with a ``state`` (None: it is)."""
    if not isinstance(url, str) or not url:
        return f"{what} carries no login_url"
    partner = urlsplit(str(run.record.notes.get("partner_url") or run.record.platform.partner_url))
    target = urlsplit(url)
    if (target.scheme, target.netloc) != (partner.scheme, partner.netloc):
        return f"{what}: login_url {url[:120]!r} is not at the partner {partner.geturl()}"
    if target.path.rstrip("/") != partner.path.rstrip("/") + "/oauth/authorize":
        return f"{what}: login_url path {target.path!r} is not the partner's /oauth/authorize"
    if not parse_qs(target.query).get("state", [""])[0]:
        return f"{what}: login_url {url[:120]!r} carries no state"
    return None


def _implemented(run: _Run, key: str) -> bool:
    exchange = run.note(key)
    return exchange is not None and not not_implemented(exchange)


@clause(
    "AUTH-STATUS",
    "without stored credentials the status is `not_authenticated` with a `login_url` that "
    "points at the partner's `/oauth/authorize` and carries a `state`; with valid ones, "
    "`authenticated`.",
    group=_AUTH,
    routes=("authentication_status",),
    runs=(AUTH_RUN,),
)
def auth_status(evidence: Evidence) -> Verdict:
    """First status: not_authenticated, login_url at the partner's /oauth/authorize with a
    state; after an ok authentication: authenticated. When implemented: oauth_redirect_url's
    login_url likewise; test_authentication of a refused refresh token: invalid_credentials."""
    run = _auth_run(evidence, ("authentication_status",))
    if isinstance(run, Verdict):
        return run
    notes = run.record.notes
    problems = _Problems()
    verified = ["not_authenticated with a login_url"]
    if _expect(run, problems, "status_initial", "not_authenticated", "the first status"):
        first = run.note("status_initial")
        problem = _login_url_problem(
            run, notes.get("login_url"), f"the first status {_answer(first)}"
        )
        if problem:
            problems.add(problem, [first.seq if first else None])
    note = run.note("authentication")
    if note is not None and _status(note) == "ok":
        _expect(run, problems, "status_authenticated", "authenticated", "the status after login")
        verified.append("authenticated after login")
    if _implemented(run, "oauth_redirect_url"):
        redirect = run.note("oauth_redirect_url")
        where = f"oauth_redirect_url {_answer(redirect)}"
        problem = _login_url_problem(run, notes.get("login_url_destination"), where)
        if problem:
            problems.add(problem, [redirect.seq if redirect else None])
        verified.append("oauth_redirect_url")
    if _implemented(run, "test_authentication_refused"):
        _expect(
            run,
            problems,
            "test_authentication_refused",
            "invalid_credentials",
            "test_authentication of a refresh token the partner refuses",
        )
        verified.append("test_authentication of refused credentials")
    return problems.verdict(run.name) or _finish(
        [run], Verdict.passed("; ".join(verified), run=run.name)
    )


@clause(
    "AUTH-STATE-TAMPER",
    "`/v1/authentication` with a forged or altered `state` is refused (`error`) and stores "
    "nothing.",
    group=_AUTH,
    routes=("authentication_status", "authentication"),
    runs=(AUTH_RUN,),
)
def auth_state_tamper(evidence: Evidence) -> Verdict:
    """An altered and a forged state with a valid code: error; the code is not exchanged (no
    authorization_code request in the call, unused at the partner); no gateway write in the
    call; the status afterwards is not_authenticated."""
    run = _auth_run(evidence, ("authentication_status", "authentication"))
    if isinstance(run, Verdict):
        return run
    problems = _Problems()
    for key, what in (("tamper_altered", "an altered state"), ("tamper_forged", "a forged state")):
        note = run.record.notes.get(key)
        call = _by_seq(run, note.get("answer")) if isinstance(note, dict) else None
        if not isinstance(note, dict) or call is None:
            problems.add(f"/v1/authentication with {what}: not played ({_why_missing(run)})")
            continue
        head = f"/v1/authentication with {what} {_answer(call)}"
        if _status(call) != "error":
            problems.add(f"{head}: expected error", [call.seq])
        grants = [
            e
            for e in run.nested_entries(call)
            if e.path == "/oauth/token" and e.grant_type == "authorization_code"
        ]
        if grants or note.get("code_used"):
            problems.add(
                f"{head}: the connector exchanged the code at the partner ({len(grants)} "
                f"authorization_code request(s); code used: {note.get('code_used')})",
                [call.seq, *(run.seq_of(e) for e in grants)],
            )
        writes = [
            e
            for e in run.record.trace.exchanges("connector->gateway", within=call)
            if e.method in ("POST", "PUT", "PATCH", "DELETE")
        ]
        if writes:
            problems.add(
                f"{head}: the connector wrote to the gateway "
                f"({', '.join(f'{e.method} {e.path}' for e in writes[:3])})",
                [call.seq, *(e.seq for e in writes)],
            )
        after = _by_seq(run, note.get("status_after"))
        if after is None or _status(after) != "not_authenticated":
            problems.add(
                f"{head}: the status afterwards answered {_answer(after)}, expected "
                "not_authenticated",
                [call.seq, after.seq if after else None],
            )
    return problems.verdict(run.name) or _finish(
        [run],
        Verdict.passed(
            "an altered and a forged state refused; no code exchanged, nothing written",
            run=run.name,
        ),
    )


@clause(
    "AUTH-ROUNDTRIP",
    "consent -> `/v1/authentication` with the code -> the status turns `authenticated`; "
    "`/v1/logout` -> `not_authenticated` again.",
    group=_AUTH,
    routes=("authentication_status", "authentication", "logout"),
    runs=(AUTH_RUN,),
)
def auth_roundtrip(evidence: Evidence) -> Verdict:
    """authentication ok -> status authenticated -> logout ok -> status not_authenticated; and,
    when oauth_redirect_url and test_authentication are implemented, a feed destination's
    authentication ok -> test_authentication ok."""
    run = _auth_run(evidence, ("authentication_status", "authentication", "logout"))
    if isinstance(run, Verdict):
        return run
    problems = _Problems()
    steps: list[tuple[str, str, str]] = [
        ("authentication", "ok", "/v1/authentication with the consent's code and state"),
        ("status_authenticated", "authenticated", "the status after authentication"),
        ("logout", "ok", "/v1/logout"),
        ("status_after_logout", "not_authenticated", "the status after logout"),
    ]
    destination = _implemented(run, "oauth_redirect_url") and _implemented(
        run, "test_authentication_valid"
    )
    if destination:
        steps += [
            ("authentication_destination", "ok", "/v1/authentication of a feed destination"),
            ("test_authentication_valid", "ok", "test_authentication of that destination"),
        ]
    for key, expected, what in steps:
        _expect(run, problems, key, expected, what)
    extra = "; a feed destination authenticated and tested" if destination else ""
    return problems.verdict(run.name) or _finish(
        [run],
        Verdict.passed(f"login, authenticated, logout, not_authenticated{extra}", run=run.name),
    )


# ---------------------------------------------------------------------- DYNAMIC-PROPERTIES


@clause(
    "DYNAMIC-PROPERTIES",
    "without `partner_account_id` the answer lists the accounts the token reaches; with it, "
    "also that account's segments; every enum entry has a non-empty `label` and unique "
    "`value`s.",
    group=_AUTH,
    routes=("dynamic_property_values",),
    runs=(AUTH_RUN,),
)
def dynamic_properties(evidence: Evidence) -> Verdict:
    """partner_account_id values == the accounts of the tokens the call used (partner state);
    with an account: partner_segment_id values == that account's partner segments; every
    label non-empty, values non-empty and unique per property."""
    run = _auth_run(evidence, ("dynamic_property_values",))
    if isinstance(run, Verdict):
        return run
    problems = _Problems()
    for key, account in (("dynamic_without_account", None), ("dynamic_with_account", ACCOUNT)):
        call = run.note(key)
        what = "without partner_account_id" if account is None else f"with {account}"
        if call is None:
            problems.add(f"dynamic values {what}: not played ({_why_missing(run)})")
            continue
        for problem in _dynamic_problems(run, call, account):
            problems.add(f"dynamic values {what} {_answer(call)}: {problem}", [call.seq])
    return problems.verdict(run.name) or _finish(
        [run],
        Verdict.passed(
            "the accounts the token reaches and the account's segments, as the partner has them",
            run=run.name,
        ),
    )


def _dynamic_problems(run: _Run, call: Exchange, account: str | None) -> list[str]:
    if _status(call) != "ok":
        return ["expected ok"]
    body = call.response_json()
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return ["the answer has no data list"]
    problems: list[str] = []
    values: dict[str, set[str]] = {}
    for item in data:
        if not isinstance(item, dict):
            problems.append(f"data entry {item!r} is not an object")
            continue
        name = str(item.get("property_technical_name"))
        raw = item.get("enum")
        seen: Counter[str] = Counter()
        for entry in raw if isinstance(raw, list) else []:
            label = entry.get("label") if isinstance(entry, dict) else None
            value = entry.get("value") if isinstance(entry, dict) else None
            if not isinstance(label, str) or not label.strip():
                problems.append(f"{name}: enum entry {entry!r} has an empty label")
            if not isinstance(value, str) or not value:
                problems.append(f"{name}: enum entry {entry!r} has no value")
            else:
                seen[value] += 1
        repeated = sorted(v for v, n in seen.items() if n > 1)
        if repeated:
            problems.append(f"{name}: values repeated: {', '.join(repeated)}")
        values[name] = set(seen)
    expected = _reachable_accounts(run, call)
    listed = values.get("partner_account_id")
    if listed is None:
        problems.append("no partner_account_id values")
    elif listed != expected:
        problems.append(
            f"partner_account_id lists {sorted(listed)}, the token reaches {sorted(expected)}"
        )
    if account is not None:
        segments = set(run.record.partner.segment_ids(account))
        found = values.get("partner_segment_id")
        if found is None:
            problems.append(f"no partner_segment_id values for account {account}")
        elif found != segments:
            problems.append(
                f"partner_segment_id lists {sorted(found)}, account {account} has "
                f"{sorted(segments)} at the partner"
            )
    return problems


def _reachable_accounts(run: _Run, call: Exchange) -> set[str]:
    """The accounts of the access tokens the call used (else of the live refresh tokens)."""
    state = run.record.partner.state()
    used = {e.token for e in run.nested_entries(call) if e.path.startswith("/v1/") and e.token}
    tokens = (
        [t for t in state["access_tokens"] if t["fingerprint"] in used]
        if used
        else [t for t in state["refresh_tokens"] if not t["revoked"]]
    )
    return {account for token in tokens for account in token["accounts"]}


# ---------------------------------------------------------------------- NOT-IMPLEMENTED-OK


@clause(
    "NOT-IMPLEMENTED-OK",
    "an optional route a connector does not implement answers `not_implemented` (400), or is "
    "absent (404, as on SDK versions before the route existed), and the harness marks its "
    "clauses as skipped, not failed.",
    group=_AUTH,
    runs=(AUTH_RUN,),
)
def not_implemented_ok(evidence: Evidence) -> Verdict:
    """Every answer of an optional route (any run) is 404, 400 not_implemented, or a real
    answer; not_implemented with another code, 405/501, or a 5xx saying "not implemented"
    fails, and so does no answer (timeout, crash) from a route that never answered."""
    main = _required(evidence, AUTH_RUN)
    if isinstance(main, Verdict):
        return main
    problems = _Problems()
    silent: list[tuple[str, str, int]] = []
    kinds: dict[str, set[str]] = {}
    for record in evidence:
        for call in record.connector_exchanges():
            name = _route(call)
            if name not in _OPTIONAL_ROUTES:
                continue
            kind, problem = _classify(call)
            kinds.setdefault(name, set()).add(kind)
            if problem and kind == "no answer":
                silent.append((record.name, name, call.seq))
            elif problem:
                problems.add(f"{name} {problem}", [call.seq], record.name)
    for run_name, name, seq in silent:
        if "implemented" not in kinds[name]:  # else a slow answer: WIRE-LATENCY's business
            problems.add(f"{name} gave no answer (seq {seq})", [seq], run_name)
    if problems.items:
        problems.add("an optional route that is not implemented answers 400 not_implemented or 404")
    summary = ", ".join(f"{name}: {'/'.join(sorted(k))}" for name, k in sorted(kinds.items()))
    return problems.verdict(main.name) or _finish(
        [main], Verdict.passed(summary or "no optional route called", run=main.name)
    )


def _classify(call: Exchange) -> tuple[str, str | None]:
    """``absent`` / ``not_implemented`` / ``implemented`` / ``no answer``, and the problem."""
    if call.status is None or (call.failure is not None and call.failure != "not-json"):
        return "no answer", f"gave no answer ({call.failure})"
    if not_implemented(call):
        return ("absent" if call.status == 404 else "not_implemented"), None
    if _status(call) == "not_implemented":
        return "not_implemented", f"answered not_implemented with HTTP {call.status}, not 400"
    if call.status in (405, 501):
        return "not_implemented", f"answered HTTP {call.status}, not 400 not_implemented or 404"
    if call.status >= 500 and _NOT_IMPLEMENTED_TEXT.search(_message(call)):
        return "not_implemented", f"answered HTTP {call.status} {_message(call)[:80]!r}"
    return "implemented", None
