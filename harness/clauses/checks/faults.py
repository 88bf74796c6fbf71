"""Partner faults: what a connector does when the partner expires its token, refuses its
refresh token, throttles it, fails transiently, or rejects some items.
"""

from __future__ import annotations

import re
from collections import Counter

from contracts.routes import DELAY_HEADER
from fake_partner import LedgerEntry
from harness.clauses.checks._shared import (
    _MAX_LISTED,
    _answer,
    _judged,
    _ok,
    _Problems,
    _recovered,
    _route,
    _transient,
)
from harness.clauses.evidence import Evidence, not_implemented
from harness.clauses.registry import Verdict, clause
from harness.clauses.run_names import (
    CONNECTION_FAULTS,
    INVALID_GRANT,
    PARTIAL,
    RATE_LIMITED,
    TOKEN_EXPIRY,
    TRANSIENT,
)
from harness.clauses.runs.core import PROBE_TAG
from harness.clauses.view import TOKEN_ROUTE, UPLOAD_ROUTE, RunView, is_api, views
from harness.trace import Exchange

_REAUTH = re.compile(r"re-?auth|authenticat", re.IGNORECASE)
_RETRY_STATUS = {"batch_update": "RETRY", "user_segment_update": "retry"}
"""What an update or batch call answers when a transient partner failure stopped it."""
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


def _is_refresh(entry: LedgerEntry) -> bool:
    return entry.route == TOKEN_ROUTE and entry.grant_type == "refresh_token"


# ---------------------------------------------------------------------- TOKEN-REFRESH


@clause(
    "TOKEN-REFRESH",
    "when the partner refuses an expired access token (generic API: 401 "
    "`EXPIRED_ACCESS_TOKEN`), the connector refreshes once and re-sends; nothing is lost, "
    "and it never refreshes before each call when the token is still valid.",
    group="faults",
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
    """The partner refused an API call for an expired access token (any dialect)."""
    return is_api(entry) and entry.signal == "expired_token"


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
            (e for e in later if is_api(e) and (client is None or e.client_id in (client, None))),
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
        if refused.route == UPLOAD_ROUTE:
            wanted = {(op.action, op.identifiers) for op in refused.operations}
            resent = {
                (op.action, op.identifiers)
                for e in later
                if e.route == UPLOAD_ROUTE and e.segment_id == refused.segment_id and _ok(e.status)
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
        elif is_api(entry) and entry.token is not None:
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
            if entry.signal in ("expired_token", "revoked_token"):
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
    "when the refresh token itself is refused (OAuth `invalid_grant`, a 400), the answer is "
    "an error that says re-authentication is needed; no retry storm. On a partner without a "
    "refresh grant (Meta) the same holds for an access token it reports expired or revoked: "
    "only a new login helps.",
    group="faults",
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
        refused = [e for e in run.entries if _refused_for_good(run, e)]
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
        passed=f"{refusals} refusal(s) of credentials for good (a refresh token refused with "
        f"invalid_grant, or a dead access token without a refresh grant); {judged} call(s) "
        "answered "
        "an error naming re-authentication; at most 1 refresh attempt per call",
        absent="the partner refused no refresh with 400 invalid_grant (nor, without a refresh "
        "grant, an access token for good) in any run",
    )


def _no_refresh_grant(run: RunView) -> bool:
    """The run's partner has no refresh grant (Meta): its access tokens are the credentials."""
    return run.record.partner.dialect_info().get("refresh_grant", True) is False


def _refused_for_good(run: RunView, entry: LedgerEntry) -> bool:
    """The partner refused the connector's credentials for good: a refresh token refused
    with ``invalid_grant``; without a refresh grant, an access token dead (expired or
    revoked: the face signals ``revoked_token``)."""
    if _is_refresh(entry):
        return entry.error_code == "invalid_grant"
    return is_api(entry) and entry.signal == "revoked_token" and _no_refresh_grant(run)


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
    if _feed_of(call) not in feeds or run.nested(call) or call.answer_status == "not_implemented":
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
        status = call.answer_status
        if status in _REAUTH_STATUSES.get(name, ()):
            continue
        if status not in ("error", "ERROR"):
            expected = "/".join(("error", *_REAUTH_STATUSES.get(name, ())))
            problems.add(
                f"{name} answered {_answer(call)}, expected {expected}: the partner refused "
                + (
                    "the access token for good (it has no refresh grant)"
                    if _no_refresh_grant(run)
                    else "the refresh token (invalid_grant)"
                ),
                [call.seq],
                run.name,
            )
        elif not _REAUTH.search(call.message):
            problems.add(
                f"{name} answered {_answer(call)} with message {call.message[:160]!r}, "
                "which does not say re-authentication is needed",
                [call.seq],
                run.name,
            )
    return judged


def _check_storm(run: RunView, refused: list[LedgerEntry], problems: _Problems) -> None:
    """At most one attempt per platform call with credentials refused for good: refresh
    grants with the refused refresh token, or (no refresh grant) requests with the dead
    access token."""
    start: dict[str | None, int] = {}
    for entry in refused:
        start.setdefault(entry.token, entry.sequence)
    dead_access = _no_refresh_grant(run)
    attempts = [
        e
        for e in run.entries
        if (_is_refresh(e) or (dead_access and is_api(e)))
        and e.token in start
        and e.sequence >= start[e.token]
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
            what = (
                "requests with an access token the partner refused for good"
                if dead_access
                else "refresh attempts with a refresh token the partner refused with invalid_grant"
            )
            problems.add(
                f"the platform call at seq {seq} made {count} {what} (retry storm; at most 1 "
                "per call)",
                [seq, *seqs],
                run.name,
            )


# ---------------------------------------------------------------------- RATE-LIMIT


@clause(
    "RATE-LIMIT",
    "when the partner throttles (generic API: 429) the connector answers `retry`/`RETRY` "
    "with a delay of at least the one the partner asked (`Retry-After`; a positive default "
    "when it names none), and the partner sees no request from it before that delay passed.",
    group="faults",
    runs=(*RATE_LIMITED, CONNECTION_FAULTS),
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
        runs=(*RATE_LIMITED, CONNECTION_FAULTS),
        passed=f"{seen} partner 429 answer(s): retry with a long enough delay, no request "
        "before it passed",
        absent="the partner answered 429 in no run",
    )


def _check_429(run: RunView, problems: _Problems) -> int:
    """Check the connector's answer and the partner's next requests after each 429."""
    v1 = run.v1()
    limited = [e for e in v1 if e.signal == "throttled"]
    for entry in limited:
        exchange = run.exchange_of(entry)
        retry_after = entry.retry_after
        call = run.owner(entry)
        name = _route(call)
        seqs = [call.seq if call else None, exchange.seq if exchange else None]
        header = f"Retry-After {retry_after:g} s" if retry_after is not None else "no Retry-After"
        where = f"the partner answered 429 ({header}) to {entry.method} {entry.path}"
        delay: float | None = None
        if call is not None and name in _DELIVERY_ROUTES:
            expected = _RETRY_STATUS[name]
            delay = call.delay_ms
            if call.answer_status != expected:
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
    group="faults",
    runs=TRANSIENT,
)
def transient_5xx(evidence: Evidence) -> Verdict:
    """In every run: a partner 5xx / dropped connection / timeout inside a batch or update
    call, not re-sent with a 2xx in the same call: that call answers RETRY / retry.
    (Connection calls: CONNECT-TRANSIENT.)"""
    problems = _Problems()
    checked = 0
    for run in list(views(evidence)):
        for failed in run.partner:
            what = _transient(run, failed)
            if what is None or run.signal(failed) == "throttled":
                continue
            call = run.enclosing(failed.seq)
            name = _route(call)
            if call is None or name not in _DELIVERY_ROUTES or _recovered(run, call, failed):
                continue
            checked += 1
            expected = _RETRY_STATUS[name]
            if call.answer_status != expected:
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
        runs=TRANSIENT,
        passed=f"{checked} transient partner failure(s) of an update or batch answered as retry",
        absent="no partner 5xx, dropped connection or timeout reached an update or batch call "
        "in any run",
    )


# ---------------------------------------------------------------------- PARTIAL-FAILURE


@clause(
    "PARTIAL-FAILURE",
    "per-item partner errors are reported as `sent_items_in_error` for exactly those items, "
    "the rest as success.",
    group="faults",
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
                e for e in run.nested_entries(call) if e.route == UPLOAD_ROUTE and _ok(e.status)
            ]
            rejected = sum(e.rejected for e in uploads)
            if not rejected or call.answer_status == "RETRY":
                continue  # no per-item error; or a RETRY answer, whose counts are not counted
            checked += 1
            accepted = sum(e.accepted for e in uploads)
            sent = sum(len(e.operations) for e in uploads)
            seqs = [call.seq, *(run.seq_of(e) for e in uploads)]
            if name == "user_segment_update":
                if call.answer_status != "error":
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
