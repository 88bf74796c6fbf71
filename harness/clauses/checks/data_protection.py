"""Data protection: no raw PII reaches the partner, no secret leaves the connector, no
request reaches beyond the feed's account and segment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from harness.clauses.checks._shared import (
    _PARTNER,
    _PLATFORM,
    _SEGMENT_PATH,
    _exchanges,
    _feeds,
    _Findings,
    _request_feed_id,
    _short,
)
from harness.clauses.evidence import Evidence
from harness.clauses.registry import Verdict, clause
from harness.clauses.run_names import AUTH, CORE, INVALID_GRANT, LIFECYCLE, TOKEN_EXPIRY
from harness.clauses.view import RunView, view_of
from harness.redaction import MASK
from harness.trace import Exchange

_ACCOUNT_PATH = re.compile(r"/v1/accounts/([^/]+)")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_SHA256_TYPES = frozenset({"EMAIL_SHA256", "PHONE_SHA256"})


# --------------------------------------------------------------------------- data protection


@clause(
    "PII-HASHED",
    "the partner never receives a raw email or phone number (no `@` in a value, SHA-256 "
    "types are 64 lowercase hex).",
    group="data_protection",
    runs=(LIFECYCLE,),
)
def check_pii_hashed(evidence: Evidence) -> Verdict:
    """Every identifier the partner received, in every run: in its ledger, in every request
    body the connector sent it (refused ones included), and in every delivered file line;
    no ``@`` in a value, SHA-256 types 64 lowercase hex."""
    findings = _Findings()
    values = 0
    for record in evidence:
        ledger = view_of(record)
        for entry in ledger.entries:
            bad: list[str] = []
            for operation in entry.operations:
                for kind, value in operation.identifiers:
                    values += 1
                    problem = _unhashed(kind, value)
                    if problem:
                        bad.append(problem)
            if bad:
                findings.add(
                    record.name,
                    f"partner request {entry.request_id} carried {len(bad)} unhashed "
                    f"identifier(s), e.g. {bad[0]}",
                    [ledger.seq_of(entry)],
                )
        for call in _exchanges(record, _PARTNER):
            if call.status is not None and 200 <= call.status < 300:
                continue  # accepted: the ledger above has what it carried
            bad = [
                p
                for kind, value in _identifiers_in(call.request_json())
                if (p := _unhashed(kind, value))
            ]
            if bad:
                findings.add(
                    record.name,
                    f"{call.method} {call.path} (answered {call.status or call.failure}) "
                    f"carried {len(bad)} unhashed identifier(s), e.g. {bad[0]}",
                    [call.seq],
                )
        for name, feed in _feeds(record):
            for delivery in feed.files.values():
                for number, line in enumerate(delivery.lines(), 1):
                    problem = _unhashed_line(line)
                    if problem:
                        findings.add(
                            record.name,
                            f"feed {name}: line {number} of the file for "
                            f"{delivery.destination_token}/{delivery.grouping_key} {problem}",
                        )
                        break
    return findings.verdict(f"{values} identifiers received, all hashed or non-PII")


_EMAIL = re.compile(r"[^@\s\"']+@[^@\s\"']+\.[A-Za-z]{2,}")


def _unhashed(kind: str, value: str) -> str | None:
    """Why ``(kind, value)`` is PII in the clear (None: it is not)."""
    if "@" in value:
        return f"{kind} {_short(value)} (raw: contains '@')"
    if kind in _SHA256_TYPES and not _SHA256.match(value):
        return f"{kind} {_short(value)} (not 64 lowercase hex)"
    return None


def _identifiers_in(body: Any) -> Iterator[tuple[str, str]]:
    """Every ``{"type": ..., "value": ...}`` pair in a JSON body, however deep."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            kind, value = item.get("type"), item.get("value")
            if isinstance(kind, str) and isinstance(value, str):
                yield kind, value
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _unhashed_line(line: str) -> str | None:
    """Why a delivered file line carries PII in the clear (None: it does not)."""
    try:
        parsed = json.loads(line)
    except ValueError:
        parsed = None
    for kind, value in _identifiers_in(parsed):
        problem = _unhashed(kind, value)
        if problem:
            return f"carries {problem}"
    found = _EMAIL.search(line)
    return f"carries a clear email address ({_short(found.group(0))})" if found else None


def _has_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(_has_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(_has_key(v, key) for v in value)
    return False


@clause(
    "SECRET-NO-LEAK",
    "no answer body, header or `message` of the connector, and no line it logs, contains a "
    "client secret, a refresh token or an access token; `/v1/authentication` answers never "
    "carry `refresh_token`.",
    group="data_protection",
    runs=(*CORE, AUTH, TOKEN_EXPIRY, INVALID_GRANT),
)
def check_secret_no_leak(evidence: Evidence) -> Verdict:
    """A connector answer leaked when the trace masked a secret in it as it was recorded
    (the part is in ``exchange.redacted`` and holds the mask) or the driver tagged it
    ``leaked``; no ``/v1/authentication`` answer has a ``refresh_token`` key; no line of
    the connector's output or logs (``platform.log``) held one of the named secrets."""
    findings = _Findings()
    checked = 0
    marker = MASK.encode()
    for record, exchange in evidence.all_connector_exchanges():
        checked += 1
        where: list[str] = []
        if "response_body" in exchange.redacted and marker in exchange.response_body:
            where.append("body")
        if "response_headers" in exchange.redacted and any(
            MASK in value for _, value in exchange.response_headers
        ):
            where.append("headers")
        if where:
            findings.add(
                record.name,
                f"{exchange.method} {exchange.path} answered a secret in the "
                f"{', '.join(where)} (masked in the trace as {MASK!r})",
                [exchange.seq],
            )
        if exchange.path == "/v1/authentication" and _has_key(
            exchange.response_json(), "refresh_token"
        ):
            findings.add(
                record.name,
                "/v1/authentication answered a refresh_token field: it must never go back",
                [exchange.seq],
            )
    lines = 0
    for record in evidence:
        log = record.platform.log
        lines += log.lines
        for leak in log.leaks:
            kinds = [_LOGGED_SECRETS[k] for k in leak.kinds if k in _LOGGED_SECRETS]
            if kinds:
                findings.add(
                    record.name,
                    f"the connector logged {' and '.join(kinds)} (log line {leak.line}, "
                    f"masked: {leak.text!r})",
                )
    return findings.verdict(f"{checked} connector answers and {lines} log lines carry no secret")


_LOGGED_SECRETS = {
    "client_secret": "the client secret",
    "refresh_token": "a refresh token",
    "access_token": "an access token",
    "secret": "a secret",
}
"""The secrets a log line must not hold (the statement's; ``secret``: one the partner's
OAuth answer or the connector's own request named so). The plugin token the platform
handed the connector is not among them."""


@clause(
    "ACCOUNT-ISOLATION",
    "the connector touches only its feed's account and segment (no request refused as "
    "another account's, a 403; no read of or write to another segment).",
    group="data_protection",
    runs=(LIFECYCLE, AUTH),
)
def check_account_isolation(evidence: Evidence) -> Verdict:
    """No partner 403 (but one a scenario's fault rule injected); every partner request
    made while serving a feed, read or write ("touches"), targets that feed's
    ``partner_segment_id`` or its ``partner_account_id``."""
    findings = _Findings()
    touched = 0
    for record in evidence:
        ledger = view_of(record)
        forbidden = [e for e in ledger.entries if e.status == 403 and not e.faults]
        if forbidden:
            entry = forbidden[0]
            findings.add(
                record.name,
                f"{len(forbidden)} partner request(s) answered 403 (e.g. {entry.method} "
                f"{entry.path} {entry.error_code}): the connector reached beyond its account",
                [ledger.seq_of(e) for e in forbidden[:5]],
            )
        gateway = record.gateway
        for exchange in _exchanges(record, _PLATFORM):
            feed_id = _request_feed_id(exchange)
            if feed_id is None:
                continue
            try:
                own_segment = gateway.property_value(feed_id, "partner_segment_id")
                own_account = gateway.property_value(feed_id, "partner_account_id")
            except (KeyError, LookupError, ValueError):
                own_segment = own_account = None
            for call in ledger.nested(exchange):
                segment, account = _touched(ledger, call)
                touched += 1
                if segment is not None and segment != ledger.core_segment(own_segment):
                    findings.add(
                        record.name,
                        f"serving feed {feed_id}, the connector touched {call.method} "
                        f"{call.path}: its segment is {own_segment!r}",
                        [exchange.seq, call.seq],
                    )
                elif account is not None and account != own_account:
                    findings.add(
                        record.name,
                        f"serving feed {feed_id}, the connector touched {call.method} "
                        f"{call.path}: its account is {own_account!r}",
                        [exchange.seq, call.seq],
                    )
    return findings.verdict(
        f"{touched} partner requests stayed in their feed's account and segment"
    )


def _touched(view: RunView, call: Exchange) -> tuple[str | None, str | None]:
    """The segment (core id) and account a partner request targets, in any dialect: its
    ledger entry's, for a route on a segment or an account; a request the partner refused
    unread is read from its generic path."""
    entry = view.entry(call)
    if entry is None or entry.route is None:
        segment = _SEGMENT_PATH.match(call.path)
        account = _ACCOUNT_PATH.match(call.path)
        return (
            segment.group(1) if segment is not None else None,
            account.group(1) if account is not None else None,
        )
    on_segment = "{segment_id}" in entry.route
    on_account = "{account_id}" in entry.route
    return (
        entry.segment_id if on_segment else None,
        entry.account_id if on_account else None,
    )
