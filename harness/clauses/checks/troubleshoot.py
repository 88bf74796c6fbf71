"""Troubleshoot, dynamic properties and optional routes."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from contracts.routes import (
    ROUTES,
)
from harness.clauses.checks._shared import (
    _answer,
    _auth_passed,
    _auth_run,
    _call_of,
    _Findings,
    _judged,
    _Problems,
    _route,
    _why_missing,
)
from harness.clauses.evidence import Evidence, RunRecord, not_implemented
from harness.clauses.notes import LifecycleNotes, missing, notes_of
from harness.clauses.registry import Verdict, clause
from harness.clauses.run_names import AUTH, LIFECYCLE
from harness.clauses.runs.faults import ACCOUNT
from harness.clauses.view import RunView, is_api, view_of
from harness.trace import Exchange

# --------------------------------------------------------------------------- troubleshoot


@clause(
    "TROUBLESHOOT-AUDIENCE",
    "`FETCH_DESTINATION_AUDIENCE` answers `ok` with data whose counts and match rate equal "
    "the partner's current snapshot of that segment (the counts under the names the "
    "partner's API gives them; where it shows no match rate, `match_rate` is null or the "
    "partner's own); an unknown action answers `not_implemented` (400).",
    group="troubleshoot",
    routes=("troubleshoot",),
    runs=(LIFECYCLE,),
)
def check_troubleshoot_audience(evidence: Evidence) -> Verdict:
    """The last FETCH_DESTINATION_AUDIENCE answer: 200 ok, ``destination_audience`` counts
    and ``match_rate`` == the partner snapshot taken right after; unknown action: 400."""
    record, notes = notes_of(evidence, LIFECYCLE, LifecycleNotes)
    if record is None or isinstance(notes, str):
        return Verdict.failed(f"troubleshoot was not called: {notes}", run=LIFECYCLE)
    note = notes.troubleshoot
    if note is None:
        return Verdict.failed(
            f"troubleshoot was not called: {missing(record, 'troubleshoot')}", run=LIFECYCLE
        )
    findings = _Findings()
    unknown = notes.troubleshoot_unknown
    if unknown is not None and (unknown.http_status, unknown.status) != (400, "not_implemented"):
        findings.add(
            record.name,
            f"the unknown action {notes.unknown_action} answered {unknown.http_status} "
            f"{unknown.status!r}: expected 400 not_implemented",
            [unknown.seq],
        )
    answer = note.answer
    if answer.status == "not_implemented":
        if findings:
            return findings.verdict("")
        return Verdict.skipped(
            "FETCH_DESTINATION_AUDIENCE answers not_implemented: troubleshoot not implemented",
            run=LIFECYCLE,
        )
    exchange = view_of(record).exchange(answer.seq)
    body = exchange.answer if exchange is not None else None
    snapshot = note.snapshot
    if (answer.http_status, answer.status) != (200, "ok") or body is None:
        findings.add(
            record.name,
            f"FETCH_DESTINATION_AUDIENCE answered {answer.http_status} {answer.status!r} "
            f"after {len(note.attempts)} attempt(s): expected 200 ok",
            [answer.seq],
        )
    elif snapshot is None or answer.seq is None:
        findings.add(record.name, "the feed has no partner segment to compare with")
    else:
        _compare_audience(record, body, snapshot, answer.seq, findings)
    return findings.verdict("troubleshoot shows the partner's snapshot")


def _compare_audience(
    record: RunRecord,
    body: dict[str, Any],
    snapshot: dict[str, object],
    seq: int,
    findings: _Findings,
) -> None:
    data = body.get("data")
    audience = data.get("destination_audience") if isinstance(data, dict) else None
    if not isinstance(audience, dict):
        findings.add(
            record.name,
            "FETCH_DESTINATION_AUDIENCE data has no destination_audience object",
            [seq],
        )
        return
    shown_id = audience.get("id")
    core_id = record.partner.core_segment_id(str(shown_id)) if shown_id is not None else None
    wrong = (
        [f"id={shown_id!r} (partner: {snapshot.get('id')!r})"]
        if core_id != snapshot.get("id")
        else []
    )
    counts = record.partner.counts_shown(snapshot)
    wrong += [
        f"{key}={audience.get(key)!r} (partner: {value!r})"
        for key, value in counts.items()
        if audience.get(key) != value
    ]
    assert isinstance(data, dict)
    rate, partner_rate = data.get("match_rate"), snapshot.get("match_rate")
    if rate != partner_rate and ("match_rate" in counts or rate is not None):
        wrong.append(f"data.match_rate={rate!r} (partner: {partner_rate!r})")
    if wrong:
        findings.add(
            record.name,
            f"troubleshoot differs from the partner's snapshot: {'; '.join(wrong)}",
            [seq],
        )


_NOT_IMPLEMENTED_TEXT = re.compile(r"not[ _-]?implemented|not supported|unsupported", re.I)
_OPTIONAL_ROUTES = frozenset(r.name for r in ROUTES if r.optional)


# ---------------------------------------------------------------------- DYNAMIC-PROPERTIES


@clause(
    "DYNAMIC-PROPERTIES",
    "without `partner_account_id` the answer lists the accounts the token reaches; with it, "
    "also that account's segments; every enum entry has a non-empty `label` and unique "
    "`value`s.",
    group="troubleshoot",
    routes=("dynamic_property_values",),
    runs=(AUTH,),
)
def dynamic_properties(evidence: Evidence) -> Verdict:
    """partner_account_id values == the accounts of the tokens the call used (partner state);
    with an account: partner_segment_id values == that account's partner segments; every
    label non-empty, values non-empty and unique per property."""
    found = _auth_run(evidence)
    if isinstance(found, Verdict):
        return found
    run, notes = found
    problems = _Problems()
    asked = ((notes.dynamic_without_account, None), (notes.dynamic_with_account, ACCOUNT))
    for answered, account in asked:
        call = _call_of(run, answered)
        what = "without partner_account_id" if account is None else f"with {account}"
        if call is None:
            problems.add(f"dynamic values {what}: not played ({_why_missing(run, notes)})")
            continue
        for problem in _dynamic_problems(run, call, account):
            problems.add(f"dynamic values {what} {_answer(call)}: {problem}", [call.seq])
    return problems.verdict(run.name) or _auth_passed(
        run, "the accounts the token reaches and the account's segments, as the partner has them"
    )


def _dynamic_problems(run: RunView, call: Exchange, account: str | None) -> list[str]:
    if call.answer_status != "ok":
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
    partner = run.record.partner
    lists_accounts = bool(partner.dialect_info().get("lists_accounts", True))
    expected = _reachable_accounts(run, call)
    listed = values.get("partner_account_id")
    if not lists_accounts:
        pass  # the partner lists no accounts to a token: the connector cannot either
    elif listed is None:
        problems.append("no partner_account_id values")
    elif listed != expected:
        problems.append(
            f"partner_account_id lists {sorted(listed)}, the token reaches {sorted(expected)}"
        )
    if account is not None:
        segments = set(partner.segment_ids(account))
        shown = values.get("partner_segment_id")
        found = {partner.core_segment_id(v) for v in shown} if shown is not None else None
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
    used = {e.token for e in run.nested_entries(call) if is_api(e) and e.token}
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
    group="troubleshoot",
    runs=(AUTH,),
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
        runs=(AUTH,),
        passed=summary,
        absent="no optional route was called in any run",
    )


def _classify(call: Exchange) -> tuple[str, str | None]:
    """``absent`` / ``not_implemented`` / ``implemented`` / ``no answer``, and the problem."""
    if call.status is None or (call.failure is not None and call.failure != "not-json"):
        return "no answer", f"gave no answer ({call.failure})"
    if not_implemented(call):
        return ("absent" if call.status == 404 else "not_implemented"), None
    if call.answer_status == "not_implemented":
        return "not_implemented", f"answered not_implemented with HTTP {call.status}, not 400"
    if call.status in (405, 501):
        return "not_implemented", f"answered HTTP {call.status}, not 400 not_implemented or 404"
    if call.status >= 500 and _NOT_IMPLEMENTED_TEXT.search(call.message):
        return "not_implemented", f"answered HTTP {call.status} {call.message[:80]!r}"
    return "implemented", None
