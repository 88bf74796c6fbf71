"""Authentication: the status and login URL, a forged or altered OAuth ``state``, the
round trip from consent to logout.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from harness.clauses.checks._shared import (
    _answer,
    _auth_passed,
    _auth_run,
    _call_of,
    _Problems,
    _why_missing,
)
from harness.clauses.evidence import Evidence, not_implemented
from harness.clauses.notes import Answered, AuthNotes
from harness.clauses.registry import Verdict, clause
from harness.clauses.run_names import AUTH
from harness.clauses.runs.faults import TAMPERED_STATES
from harness.clauses.view import TOKEN_ROUTE, RunView


def _expect(
    run: RunView,
    notes: AuthNotes,
    problems: _Problems,
    answered: Answered | None,
    expected: str,
    what: str,
) -> bool:
    """Add a problem unless the noted answer has body status ``expected``."""
    exchange = _call_of(run, answered)
    if exchange is None:
        problems.add(f"{what}: not played ({_why_missing(run, notes)})")
        return False
    if exchange.answer_status != expected:
        problems.add(f"{what} answered {_answer(exchange)}, expected {expected}", [exchange.seq])
        return False
    return True


def _login_url_problem(run: RunView, notes: AuthNotes, url: str | None, what: str) -> str | None:
    """Why ``url`` is not the partner's ``/oauth/authorize`` with a ``state`` (None: it is)."""
    if not url:
        return f"{what} carries no login_url"
    partner = urlsplit(notes.partner_url or run.record.platform.partner_url)
    target = urlsplit(url)
    if (target.scheme, target.netloc) != (partner.scheme, partner.netloc):
        return f"{what}: login_url {url[:120]!r} is not at the partner {partner.geturl()}"
    authorize = str(
        run.record.partner.dialect_info().get("oauth_authorize_path", "/oauth/authorize")
    )
    if target.path.rstrip("/") != partner.path.rstrip("/") + authorize:
        return f"{what}: login_url path {target.path!r} is not the partner's {authorize}"
    if not parse_qs(target.query).get("state", [""])[0]:
        return f"{what}: login_url {url[:120]!r} carries no state"
    return None


def _implemented(run: RunView, answered: Answered | None) -> bool:
    exchange = _call_of(run, answered)
    return exchange is not None and not not_implemented(exchange)


@clause(
    "AUTH-STATUS",
    "without stored credentials the status is `not_authenticated` with a `login_url` that "
    "points at the partner's `/oauth/authorize` and carries a `state`; with valid ones, "
    "`authenticated`.",
    group="auth",
    routes=("authentication_status",),
    runs=(AUTH,),
)
def auth_status(evidence: Evidence) -> Verdict:
    """First status: not_authenticated, login_url at the partner's /oauth/authorize with a
    state; after an ok authentication: authenticated. When implemented: oauth_redirect_url's
    login_url likewise; test_authentication of a refused refresh token: invalid_credentials."""
    found = _auth_run(evidence)
    if isinstance(found, Verdict):
        return found
    run, notes = found
    problems = _Problems()
    verified = ["not_authenticated with a login_url"]
    first_what = "the first status"
    if _expect(run, notes, problems, notes.status_initial, "not_authenticated", first_what):
        first = _call_of(run, notes.status_initial)
        problem = _login_url_problem(
            run, notes, notes.login_url, f"the first status {_answer(first)}"
        )
        if problem:
            problems.add(problem, [first.seq if first else None])
    login = _call_of(run, notes.authentication)
    if login is not None and login.answer_status == "ok":
        after = "the status after login"
        _expect(run, notes, problems, notes.status_authenticated, "authenticated", after)
        verified.append("authenticated after login")
    if _implemented(run, notes.oauth_redirect_url):
        redirect = _call_of(run, notes.oauth_redirect_url)
        where = f"oauth_redirect_url {_answer(redirect)}"
        problem = _login_url_problem(run, notes, notes.login_url_destination, where)
        if problem:
            problems.add(problem, [redirect.seq if redirect else None])
        verified.append("oauth_redirect_url")
    if _implemented(run, notes.test_authentication_refused):
        _expect(
            run,
            notes,
            problems,
            notes.test_authentication_refused,
            "invalid_credentials",
            "test_authentication of a refresh token the partner refuses",
        )
        verified.append("test_authentication of refused credentials")
    return problems.verdict(run.name) or _auth_passed(run, "; ".join(verified))


@clause(
    "AUTH-STATE-TAMPER",
    "`/v1/authentication` with a forged or altered `state` is refused (`error`) and stores "
    "nothing.",
    group="auth",
    routes=("authentication_status", "authentication"),
    runs=(AUTH,),
)
def auth_state_tamper(evidence: Evidence) -> Verdict:
    """Each tampered state of the auth run (``TAMPERED_STATES``: one character changed; one
    field changed in a well-formed envelope re-built without the connector's key; forged;
    re-encoded by an attacker who knows the format), sent with a valid code: error; the
    code is not exchanged (no authorization_code request in the call, not used by it at
    the partner); no gateway write in the call; the status afterwards is
    not_authenticated. The two format-aware ones are played when the run recognised the
    state's format (``state_format``)."""
    found = _auth_run(evidence)
    if isinstance(found, Verdict):
        return found
    run, notes = found
    problems = _Problems()
    played: list[str] = []
    state_format = notes.state_format
    for key, what, needs_format in TAMPERED_STATES:
        note = notes.tampered.get(key)
        call = _call_of(run, note.answer) if note is not None else None
        if note is None or call is None:
            if needs_format and note is not None and note.not_applicable:
                continue  # an opaque state: no field to change, no format to re-encode
            problems.add(f"/v1/authentication with {what}: not played ({_why_missing(run, notes)})")
            continue
        played.append(what)
        head = f"/v1/authentication with {what} {_answer(call)}"
        if call.answer_status != "error":
            problems.add(f"{head}: expected error", [call.seq])
        grants = [
            e
            for e in run.nested_entries(call)
            if e.route == TOKEN_ROUTE and e.grant_type == "authorization_code"
        ]
        used = note.code_used and not note.code_used_before
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
        after = _call_of(run, note.status_after)
        if after is None or after.answer_status != "not_authenticated":
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
    group="auth",
    routes=("authentication_status", "authentication", "logout"),
    runs=(AUTH,),
)
def auth_roundtrip(evidence: Evidence) -> Verdict:
    """authentication ok -> status authenticated -> logout ok -> status not_authenticated; and,
    when oauth_redirect_url and test_authentication are implemented, a feed destination's
    authentication ok -> test_authentication ok."""
    found = _auth_run(evidence)
    if isinstance(found, Verdict):
        return found
    run, notes = found
    problems = _Problems()
    steps: list[tuple[Answered | None, str, str]] = [
        (notes.authentication, "ok", "/v1/authentication with the consent's code and state"),
        (notes.status_authenticated, "authenticated", "the status after authentication"),
        (notes.logout, "ok", "/v1/logout"),
        (notes.status_after_logout, "not_authenticated", "the status after logout"),
    ]
    destination = _implemented(run, notes.oauth_redirect_url) and _implemented(
        run, notes.test_authentication_valid
    )
    if destination:
        steps += [
            (notes.authentication_destination, "ok", "/v1/authentication of a feed destination"),
            (notes.test_authentication_valid, "ok", "test_authentication of that destination"),
        ]
    for answered, expected, what in steps:
        _expect(run, notes, problems, answered, expected, what)
    extra = "; a feed destination authenticated and tested" if destination else ""
    return problems.verdict(run.name) or _auth_passed(
        run, f"login, authenticated, logout, not_authenticated{extra}"
    )
