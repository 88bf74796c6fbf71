"""The partner-fault, authentication and optional-route clauses of ``clauses.md``.

Each fault check is an invariant judged wherever its premise occurs, in every run of the
evidence (the preset runs exist to make the premises occur; the user's ``--scenario``
and the stateful examples add more). The trace links a partner request to the platform
call it was made in (sequence numbers nest), and the partner's ledger, joined on
``X-Request-Id``, says what the partner did with it. A premise that occurs nowhere makes
the clause ``skipped`` ("not exercised"), never ``passed``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from contracts.routes import DELAY_HEADER, ROUTES, route_for_path
from fake_partner import LedgerEntry
from harness.clauses.evidence import Evidence, not_implemented
from harness.clauses.registry import Verdict, clause
from harness.clauses.runs_core import PROBE_TAG
from harness.clauses.runs_faults import (
    ACCOUNT,
    AUTH_RUN,
    CONNECTION_FAULTS,
    TAMPERED_STATES,
    preset_run,
)
from harness.clauses.view import RunView, view_of, views
from harness.trace import Exchange

__all__ = [
    "CONNECTION_FAULTS",
    "INVALID_GRANT",
    "PARTIAL",
    "RATE_LIMIT_RUNS",
    "TOKEN_EXPIRY",
    "TRANSIENT_RUNS",
    "auth_roundtrip",
    "auth_state_tamper",
    "auth_status",
    "connect_transient",
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
"""The runs made to reach each premise (``Clause.runs``: a broken one fails its clause).
The checks read every run, not only these."""

_FAULTS = "Partner faults"
_AUTH = "Troubleshoot, authentication, dynamic properties"
_CONNECTION = "connection"
_UPLOAD_ROUTE = "POST /v1/segments/{segment_id}/members"
_REAUTH = re.compile(r"re-?auth|authenticat", re.IGNORECASE)
_NOT_IMPLEMENTED_TEXT = re.compile(r"not[ _-]?implemented|not supported|unsupported", re.I)
_RETRY_STATUS = {"batch_update": "RETRY", "user_segment_update": "retry"}
"""What an update or batch call answers when a transient partner failure stopped it."""
_NOT_READY = "external_segment_not_ready_yet"
_DELIVERY_ROUTES = frozenset(_RETRY_STATUS)
_PARTNER_ROUTES = (
    "external_segment_creation",
    "external_segment_connection",
    "batch_update",
    "troubleshoot",
)
"""Feed routes that cannot do their work without the partner."""
_REAUTH_STATUSES = {
    "authentication_status": ("not_authenticated",),
    "test_authentication": ("invalid_credentials",),
}
"""Besides ``error`` naming re-authentication: the answers of routes whose own status
says that the user must log in again."""
_OPTIONAL_ROUTES = frozenset(r.name for r in ROUTES if r.optional)
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


def _by_seq(run: RunView, note: Any) -> Exchange | None:
    return run.call(note.get("seq")) if isinstance(note, dict) else None


def _route(exchange: Exchange | None) -> str | None:
    if exchange is None:
        return None
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


def _transient(exchange: Exchange) -> str | None:
    """What made a partner exchange a transient failure (429, 5xx, no answer), or None."""
    if exchange.status is not None:
        if exchange.status == 429 or exchange.status >= 500:
            return f"HTTP {exchange.status}"
        return None
    if exchange.failure in ("connection", "timeout"):
        return "a dropped connection" if exchange.failure == "connection" else "a timeout"
    return None


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


# ---------------------------------------------------------------------- TOKEN-REFRESH


@clause(
    "TOKEN-REFRESH",
    "on 401 `EXPIRED_ACCESS_TOKEN` the connector refreshes once and re-sends; nothing is "
    "lost, and it never refreshes before each call when the token is still valid.",
    group=_FAULTS,
    runs=(TOKEN_EXPIRY,),
)
def token_refresh(evidence: Evidence) -> Verdict:
    """In every run: after each 401 EXPIRED_ACCESS_TOKEN, exactly one refresh before the
    client's next /v1 request and, when it was granted, the refused call (an upload's
    operations) re-sent; and no run where the connector refreshes before each call while
    its token is valid (see :func:`_needless_refreshes`)."""
    problems = _Problems()
    expired = 0
    runs = list(views(evidence))
    for run in runs:
        expired += _check_expired(run, problems)
        _check_needless(run, problems)
    return _judged(
        evidence,
        problems,
        expired,
        runs=(TOKEN_EXPIRY,),
        passed=f"{expired} 401 EXPIRED_ACCESS_TOKEN answer(s), each followed by one refresh "
        f"and the call re-sent; no refresh before each call while the token was valid "
        f"({len(runs)} runs)",
        absent=f"the partner answered 401 EXPIRED_ACCESS_TOKEN in none of {len(runs)} runs "
        "(no refresh before each call while the token was valid either)",
    )


def _is_expired(entry: LedgerEntry) -> bool:
    return (
        entry.path.startswith("/v1/")
        and entry.status == 401
        and entry.error_code == "EXPIRED_ACCESS_TOKEN"
    )


def _check_expired(run: RunView, problems: _Problems) -> int:
    """Check what followed each 401 EXPIRED_ACCESS_TOKEN of a run; return how many."""
    entries = run.entries
    count = 0
    for index, refused in enumerate(entries):
        if not _is_expired(refused):
            continue
        count += 1
        later = entries[index + 1 :]
        client = refused.client_id
        following = next(
            (
                e
                for e in later
                if e.path.startswith("/v1/") and (client is None or e.client_id in (client, None))
            ),
            None,
        )
        where = f"{refused.method} {refused.path} answered 401 EXPIRED_ACCESS_TOKEN"
        if following is None:
            problems.add(
                f"{where}, and the connector never called /v1 again",
                [run.seq_of(refused)],
                run.name,
            )
            continue
        between = [
            e
            for e in later
            if e.sequence < following.sequence
            and _is_refresh(e)
            and (client is None or e.client_id == client)
        ]
        seqs = [run.seq_of(e) for e in (refused, *between, following)]
        if len(between) != 1:
            problems.add(
                f"{where}; {len(between)} refresh request(s) before the next /v1 request "
                f"({following.method} {following.path}), expected exactly 1",
                seqs,
                run.name,
            )
            continue
        if between[0].status != 200:
            continue  # a refused refresh: nothing can be re-sent (TOKEN-INVALID-GRANT's case)
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


def _needless_refreshes(run: RunView) -> tuple[list[LedgerEntry], int]:
    """The refresh grants made while the access token they replace was still valid, and
    how many /v1 requests followed the first of them.

    A grant of refresh token R replaces the access token of R's previous grant; it is
    needless when that token was used on /v1 since, got no 401, and is younger than half
    the partner's access-token lifetime (refreshing in its second half is proactive).
    Access tokens are attributed to the latest grant of their OAuth client before their
    first use (the ledger names refresh tokens and access tokens by fingerprint only).
    """
    lifetime = float(run.record.partner.effective_scenario.access_token_lifetime)
    last_grant: dict[str, LedgerEntry] = {}
    used: dict[str, bool] = {}
    refused: dict[str, bool] = {}
    pending: dict[str | None, list[str]] = {}
    issued_by: dict[str, str] = {}
    needless: list[LedgerEntry] = []
    after = 0
    for entry in run.entries:
        if _is_refresh(entry) and entry.status == 200 and entry.token is not None:
            refresh = entry.token
            previous = last_grant.get(refresh)
            if (
                previous is not None
                and used.get(refresh)
                and not refused.get(refresh)
                and entry.time - previous.time < lifetime / 2
            ):
                needless.append(entry)
            last_grant[refresh] = entry
            used[refresh] = refused[refresh] = False
            pending.setdefault(entry.client_id, []).append(refresh)
        elif entry.path.startswith("/v1/") and entry.token is not None:
            if needless:
                after += 1
            refresh_of = issued_by.get(entry.token)
            if refresh_of is None:
                waiting = pending.get(entry.client_id)
                if not waiting:
                    continue
                refresh_of = issued_by[entry.token] = waiting[-1]
                waiting.clear()
            if last_grant.get(refresh_of) is None:
                continue
            used[refresh_of] = True
            if entry.status == 401:
                refused[refresh_of] = True
    return needless, after


def _check_needless(run: RunView, problems: _Problems) -> None:
    """Refreshing before each call: at least 2 needless refreshes, and one for at least
    every other /v1 request from the first of them on."""
    needless, after = _needless_refreshes(run)
    if len(needless) < 2 or 2 * len(needless) < after:
        return
    problems.add(
        f"{len(needless)} refresh grants while the access token they replaced was valid "
        f"(used, never refused, younger than half its lifetime), for {after} /v1 requests "
        "from the first of them on: the connector refreshes before each call",
        [run.seq_of(e) for e in needless[:_MAX_LISTED]],
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
    """In every run where the partner refused a refresh with 400 invalid_grant: the platform
    call of that refresh, and every later call of that feed answered without a partner
    request (the connector remembers), answers error/ERROR with a message naming
    re-authentication (the status query: ``not_authenticated``; test_authentication:
    ``invalid_credentials``); and from the first
    refusal of a refresh token on, at most one refresh attempt with it per platform call (and
    one outside any call)."""
    problems = _Problems()
    judged = 0
    refusals = 0
    for run in list(views(evidence)):
        refused = [e for e in run.entries if _is_refresh(e) and e.error_code == "invalid_grant"]
        if not refused:
            continue
        refusals += len(refused)
        judged += _check_reauth_answers(run, refused, problems)
        _check_storm(run, refused, problems)
    return _judged(
        evidence,
        problems,
        refusals,
        runs=(INVALID_GRANT,),
        passed=f"{refusals} refresh(es) refused with invalid_grant; {judged} call(s) answered "
        "an error naming re-authentication; at most 1 refresh attempt per call",
        absent="the partner refused no refresh with 400 invalid_grant in any run",
    )


def _feed_of(call: Exchange) -> str | None:
    """The feed a platform call is about (``feed_id``, or the batch context's)."""
    body = call.request_json()
    if not isinstance(body, dict):
        return None
    context = body.get("context")
    feed = body.get("feed_id") or (context.get("feed_id") if isinstance(context, dict) else None)
    return str(feed) if feed is not None else None


def _knows_refused(run: RunView, call: Exchange, feeds: set[str], after: int) -> bool:
    """A later feed call of a feed whose refresh token was refused, answered without asking
    the partner anything: its answer must say it too (the connector knows why it cannot)."""
    if call.seq < after or _route(call) not in _PARTNER_ROUTES or call.tags.get(PROBE_TAG):
        return False
    if _feed_of(call) not in feeds or run.nested(call) or _status(call) == "not_implemented":
        return False
    body = call.request_json()
    content = body.get("batch_content", [None]) if isinstance(body, dict) else [None]
    return content != []  # an empty batch answers OK 0 0 (BATCH-EMPTY)


def _check_reauth_answers(run: RunView, refused: list[LedgerEntry], problems: _Problems) -> int:
    owners = [call for entry in refused if (call := run.owner(entry)) is not None]
    seqs = {call.seq for call in owners}
    feeds = {feed for call in owners if (feed := _feed_of(call)) is not None}
    first = min(seqs, default=0)
    judged = 0
    for call in run.calls:
        name = _route(call)
        if name is None or not_implemented(call):
            continue
        if call.seq not in seqs and not _knows_refused(run, call, feeds, first):
            continue
        judged += 1
        status = _status(call)
        if status in _REAUTH_STATUSES.get(name, ()):
            continue
        if status not in ("error", "ERROR"):
            expected = "/".join(("error", *_REAUTH_STATUSES.get(name, ())))
            problems.add(
                f"{name} answered {_answer(call)}, expected {expected}: the partner refused "
                "the refresh token (invalid_grant)",
                [call.seq],
                run.name,
            )
        elif not _REAUTH.search(_message(call)):
            problems.add(
                f"{name} answered {_answer(call)} with message {_message(call)[:160]!r}, "
                "which does not say re-authentication is needed",
                [call.seq],
                run.name,
            )
    return judged


def _check_storm(run: RunView, refused: list[LedgerEntry], problems: _Problems) -> None:
    start: dict[str | None, int] = {}
    for entry in refused:
        start.setdefault(entry.token, entry.sequence)
    attempts = [
        e
        for e in run.entries
        if _is_refresh(e) and e.token in start and e.sequence >= start[e.token]
    ]
    per_call: Counter[tuple[int | None, str | None]] = Counter()
    for entry in attempts:
        owner = run.owner(entry)
        per_call[(owner.seq if owner is not None else None, entry.token)] += 1
    for (seq, token), count in per_call.items():
        if count <= 1:
            continue
        seqs = [run.seq_of(e) for e in attempts if e.token == token][:_MAX_LISTED]
        if seq is None:
            problems.add(
                f"{count} refresh attempts with a refused refresh token outside any platform "
                "call after the partner answered invalid_grant (retry storm)",
                seqs,
                run.name,
            )
        else:
            problems.add(
                f"the platform call at seq {seq} made {count} refresh attempts with a refresh "
                "token the partner refused with invalid_grant (retry storm; at most 1 per call)",
                [seq, *seqs],
                run.name,
            )


# ---------------------------------------------------------------------- RATE-LIMIT


@clause(
    "RATE-LIMIT",
    "on 429 the connector answers `retry`/`RETRY` with a delay of at least `Retry-After` (or a "
    "positive default when the header is missing), and the partner sees no request from it "
    "before that delay passed.",
    group=_FAULTS,
    runs=(*RATE_LIMIT_RUNS, CONNECTION_FAULTS),
)
def rate_limit(evidence: Evidence) -> Verdict:
    """Each partner 429, in any run. Inside an update/batch call: that call answers
    retry/RETRY with a delay >= Retry-After*1000 (> 0 without it), and no /v1 request of the
    same token or OAuth client comes before 429 time + Retry-After (else + the delay asked
    for) on the partner clock. Inside any other call (connection: its answer is
    CONNECT-TRANSIENT's), or outside any call: no request of the same sender in that call
    before Retry-After passed (without Retry-After: before any time passed)."""
    problems = _Problems()
    seen = 0
    for run in list(views(evidence)):
        seen += _check_429(run, problems)
    return _judged(
        evidence,
        problems,
        seen,
        runs=(*RATE_LIMIT_RUNS, CONNECTION_FAULTS),
        passed=f"{seen} partner 429 answer(s): retry with a long enough delay, no request "
        "before it passed",
        absent="the partner answered 429 in no run",
    )


def _check_429(run: RunView, problems: _Problems) -> int:
    """Check the connector's answer and the partner's next requests after each 429."""
    v1 = run.v1()
    limited = [e for e in v1 if e.status == 429]
    for entry in limited:
        exchange = run.exchange_of(entry)
        retry_after = _retry_after(exchange)
        call = run.owner(entry)
        name = _route(call)
        seqs = [call.seq if call else None, exchange.seq if exchange else None]
        header = f"Retry-After {retry_after:g} s" if retry_after is not None else "no Retry-After"
        where = f"the partner answered 429 ({header}) to {entry.method} {entry.path}"
        delay: float | None = None
        if call is not None and name in _DELIVERY_ROUTES:
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
        # the delay binds every later request where the connector asks for one (update and
        # batch answers) or calls on its own; a call that cannot ask for one (connection:
        # the platform's poll interval decides) must not re-send within itself before it
        timed = call is None or name in _DELIVERY_ROUTES
        gap = retry_after if retry_after is not None else (delay / 1000 if delay else 0.0)

        early = [e for e in v1 if _early(run, e, entry, gap, None if timed else call)]
        if early:
            first = early[0]
            within = "" if timed else f" within the same {name} call"
            problems.add(
                f"{where}; the partner then saw {len(early)} request(s){within} before the "
                f"delay ({gap:g} s) passed, the first {first.method} {first.path} "
                f"{first.time - entry.time:g} s later",
                seqs + [run.seq_of(e) for e in early[:_MAX_LISTED]],
                run.name,
            )
    return len(limited)


def _early(
    run: RunView, entry: LedgerEntry, limited: LedgerEntry, gap: float, call: Exchange | None
) -> bool:
    """``entry`` is a request of the sender of 429 ``limited``, after it, before ``gap``
    seconds passed (without a gap: before any time passed); within ``call`` when given."""
    if entry.sequence <= limited.sequence or not _same_sender(entry, limited):
        return False
    if call is not None and run.owner(entry) is not call:
        return False
    return entry.time < limited.time + gap if gap > 0 else entry.time <= limited.time


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
    """In every run: a partner 5xx / dropped connection / timeout inside a batch or update
    call, not re-sent with a 2xx in the same call: that call answers RETRY / retry.
    (Connection calls: CONNECT-TRANSIENT.)"""
    problems = _Problems()
    checked = 0
    for run in list(views(evidence)):
        for failed in run.partner:
            what = _transient(failed)
            if what is None or failed.status == 429:
                continue
            call = run.enclosing(failed.seq)
            name = _route(call)
            if call is None or name not in _DELIVERY_ROUTES or _recovered(run, call, failed):
                continue
            checked += 1
            expected = _RETRY_STATUS[name]
            if _status(call) != expected:
                problems.add(
                    f"{name} answered {_answer(call)} after the partner gave {what} to "
                    f"{failed.method} {failed.path} (seq {failed.seq}), expected {expected}",
                    [call.seq, failed.seq],
                    run.name,
                )
    return _judged(
        evidence,
        problems,
        checked,
        runs=TRANSIENT_RUNS,
        passed=f"{checked} transient partner failure(s) of an update or batch answered as retry",
        absent="no partner 5xx, dropped connection or timeout reached an update or batch call "
        "in any run",
    )


# ---------------------------------------------------------------------- CONNECT-TRANSIENT


@clause(
    "CONNECT-TRANSIENT",
    "while the partner fails transiently (5xx, 429, dropped connection), connection answers "
    "`external_segment_not_ready_yet` so the platform polls again.",
    group=_CONNECTION,
    routes=("external_segment_connection",),
    runs=(CONNECTION_FAULTS,),
    severity="warning",
)
def connect_transient(evidence: Evidence) -> Verdict:
    """In every run: a connection call during which a partner request got a 429, a 5xx, a
    dropped connection or a timeout, not re-sent with a 2xx in the same call, answers
    external_segment_not_ready_yet."""
    problems = _Problems()
    checked = 0
    for run in list(views(evidence)):
        for call in run.calls:
            if _route(call) != "external_segment_connection":
                continue
            failures = [
                (e, what)
                for e in run.nested(call)
                if (what := _transient(e)) is not None and not _recovered(run, call, e)
            ]
            if not failures:
                continue
            checked += 1
            if _status(call) != _NOT_READY:
                failed, what = failures[0]
                problems.add(
                    f"connection answered {_answer(call)} after the partner gave {what} to "
                    f"{failed.method} {failed.path} (seq {failed.seq}), expected "
                    f"{_NOT_READY} (502) so the platform polls again",
                    [call.seq, failed.seq],
                    run.name,
                )
    return _judged(
        evidence,
        problems,
        checked,
        runs=(CONNECTION_FAULTS,),
        passed=f"{checked} connection call(s) met a transient partner failure and answered "
        f"{_NOT_READY}",
        absent="no partner 429, 5xx, dropped connection or timeout reached a connection call "
        "in any run",
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
    """In every run, each final (OK/ERROR) batch answer whose uploads (all of them: a batch
    split into several uploads sums its accepted ones) rejected items: success == operations
    accepted, error == batch size - accepted (one operation per item); an update whose
    upload rejected operations answers error."""
    problems = _Problems()
    checked = 0
    for run in list(views(evidence)):
        for call in run.calls:
            name = _route(call)
            if name not in _DELIVERY_ROUTES:
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
                        f"update answered {_answer(call)} although the partner rejected "
                        f"{rejected} of its {sent} operations; expected error",
                        seqs,
                        run.name,
                    )
                continue
            problem = _batch_counts(call, accepted, rejected, sent, len(uploads))
            if problem:
                problems.add(problem, seqs, run.name)
    return _judged(
        evidence,
        problems,
        checked,
        runs=(PARTIAL,),
        passed=f"{checked} answer(s) after per-item rejections counted exactly the rejected "
        "items as errors",
        absent="the partner rejected no item of an update or batch that got a final answer "
        "in any run",
    )


def _batch_counts(
    call: Exchange, accepted: int, rejected: int, sent: int, uploads: int
) -> str | None:
    request = call.request_json()
    content = request.get("batch_content") if isinstance(request, dict) else None
    size = len(content) if isinstance(content, list) else 0
    body = call.response_json()
    success = body.get("sent_items_in_success") if isinstance(body, dict) else None
    error = body.get("sent_items_in_error") if isinstance(body, dict) else None
    split = f" in {uploads} uploads" if uploads > 1 else ""
    head = (
        f"batch {_answer(call)}: {size} items, the partner accepted {accepted} and rejected "
        f"{rejected} of {sent} operations{split}; the connector counted {success} success / "
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


def _auth_run(evidence: Evidence) -> RunView | Verdict:
    """The auth run, its premise; skipped when absent (the engine has already skipped a
    clause whose routes the connector does not implement)."""
    record = evidence.get(AUTH_RUN)
    if record is None:
        return Verdict.skipped(f"not exercised: run {AUTH_RUN} was not executed", run=AUTH_RUN)
    return view_of(record)


def _auth_passed(run: RunView, message: str) -> Verdict:
    stopped = f"; run {run.name} stopped early ({run.record.aborted})" if run.record.aborted else ""
    return Verdict.passed(message + stopped, run=run.name)


def _expect(run: RunView, problems: _Problems, key: str, expected: str, what: str) -> bool:
    """Add a problem unless the noted answer ``key`` has body status ``expected``."""
    exchange = run.note(key)
    if exchange is None:
        problems.add(f"{what}: not played ({_why_missing(run)})")
        return False
    if _status(exchange) != expected:
        problems.add(f"{what} answered {_answer(exchange)}, expected {expected}", [exchange.seq])
        return False
    return True


def _why_missing(run: RunView) -> str:
    skipped = run.record.notes.get("skipped") or {}
    reasons = [f"{k}: {v}" for k, v in skipped.items()]
    if run.record.aborted:
        reasons.append(f"run stopped: {run.record.aborted}")
    return "; ".join(reasons) or "the run did not reach it"


def _login_url_problem(run: RunView, url: object, what: str) -> str | None:
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


def _implemented(run: RunView, key: str) -> bool:
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
    run = _auth_run(evidence)
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
    return problems.verdict(run.name) or _auth_passed(run, "; ".join(verified))


@clause(
    "AUTH-STATE-TAMPER",
    "`/v1/authentication` with a forged or altered `state` is refused (`error`) and stores "
    "nothing.",
    group=_AUTH,
    routes=("authentication_status", "authentication"),
    runs=(AUTH_RUN,),
)
def auth_state_tamper(evidence: Evidence) -> Verdict:
    """Each tampered state of the auth run (``TAMPERED_STATES``: one character changed; one
    field changed in a well-formed envelope re-built without the connector's key; forged;
    re-encoded by an attacker who knows the format), sent with a valid code: error; the
    code is not exchanged (no authorization_code request in the call, not used by it at
    the partner); no gateway write in the call; the status afterwards is
    not_authenticated. The two format-aware ones are played when the run recognised the
    state's format (``state_format``)."""
    run = _auth_run(evidence)
    if isinstance(run, Verdict):
        return run
    notes = run.record.notes
    problems = _Problems()
    played: list[str] = []
    state_format = notes.get("state_format")
    for key, what, needs_format in TAMPERED_STATES:
        note = notes.get(key)
        call = _by_seq(run, note.get("answer")) if isinstance(note, dict) else None
        if not isinstance(note, dict) or call is None:
            if needs_format and isinstance(note, dict) and note.get("not_applicable"):
                continue  # an opaque state: no field to change, no format to re-encode
            problems.add(f"/v1/authentication with {what}: not played ({_why_missing(run)})")
            continue
        played.append(what)
        head = f"/v1/authentication with {what} {_answer(call)}"
        if _status(call) != "error":
            problems.add(f"{head}: expected error", [call.seq])
        grants = [
            e
            for e in run.nested_entries(call)
            if e.path == "/oauth/token" and e.grant_type == "authorization_code"
        ]
        used = note.get("code_used") and not note.get("code_used_before")
        if grants or used:
            problems.add(
                f"{head}: the connector exchanged the code at the partner ({len(grants)} "
                f"authorization_code request(s); code used by the call: {bool(used)})",
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
    shown = f" (state format: {state_format})" if state_format else ""
    return problems.verdict(run.name) or _auth_passed(
        run, f"refused, no code exchanged, nothing written: {', '.join(played)}{shown}"
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
    run = _auth_run(evidence)
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
    return problems.verdict(run.name) or _auth_passed(
        run, f"login, authenticated, logout, not_authenticated{extra}"
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
    run = _auth_run(evidence)
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
    return problems.verdict(run.name) or _auth_passed(
        run, "the accounts the token reaches and the account's segments, as the partner has them"
    )


def _dynamic_problems(run: RunView, call: Exchange, account: str | None) -> list[str]:
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


def _reachable_accounts(run: RunView, call: Exchange) -> set[str]:
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
    return _judged(
        evidence,
        problems,
        len(kinds),
        runs=(AUTH_RUN,),
        passed=summary,
        absent="no optional route was called in any run",
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
