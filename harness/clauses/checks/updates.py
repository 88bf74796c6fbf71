"""Updates: every eligible identifier of a user update is delivered, grouped and counted for
that user.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from harness.clauses.checks._shared import (
    _PLATFORM,
    _answered,
    _exchanges,
    _feeds,
    _final_exchange,
    _Findings,
    _is_probe,
    _short,
)
from harness.clauses.evidence import Evidence, RunRecord
from harness.clauses.registry import Verdict, clause
from harness.clauses.run_names import LIFECYCLE
from harness.clauses.view import RunView, view_of
from harness.trace import Exchange
from harness.users import PartnerIdentifier


def _data_text(exchange: Exchange | None) -> str:
    """The answer's ``data`` as JSON text (where delivered identifier values appear)."""
    body = exchange.answer if exchange is not None else None
    data = body.get("data") if body is not None else None
    return json.dumps(data) if data else ""


def _values_seen(record: RunRecord) -> dict[PartnerIdentifier, float]:
    """Every identifier the partner received, with the trace seq of the last request that
    carried it (infinity for a request the trace does not hold: made outside it)."""
    view = view_of(record)
    seen: dict[PartnerIdentifier, float] = {}
    for entry in view.entries:
        seq = view.seq_of(entry)
        at = math.inf if seq is None else float(seq)
        for member in entry.compact.identifiers():
            if at >= seen.get(member, -math.inf):
                seen[member] = at
    return seen


@clause(
    "UPDATE-ELIGIBLE",
    "every eligible identifier of an UPSERT/DELETE reaches the delivery (`data`) or the "
    "partner, unless the partner has refused the connector's credentials for good "
    "(TOKEN-INVALID-GRANT's case); a user with none answers `no_eligible_identifier` (400) "
    "or `ok` without data, never `error`.",
    group="updates",
    routes=("user_segment_update",),
    runs=(LIFECYCLE,),
)
def check_update_eligible(evidence: Evidence) -> Verdict:
    """Each eligible ``(type, value)`` appears in the update's answer or in what the partner
    received; a user without one gets 400 no_eligible_identifier or 200 ok without data."""
    findings = _Findings()
    checked = 0
    for record in evidence:
        index = view_of(record)
        seen: dict[PartnerIdentifier, float] | None = None
        refused = _credentials_refused_at(index)
        for name, feed in _feeds(record):
            for update in feed.updates:
                exchange = _final_exchange(update, index)
                end = exchange.end_seq if exchange is not None else None
                if refused < (end if end is not None else math.inf):
                    continue  # nothing can reach the partner now: TOKEN-INVALID-GRANT judges
                checked += 1
                eligible = update.user.eligible_partner_identifiers(feed.identifying)
                seq = exchange.seq if exchange is not None else None
                what = f"feed {name} update #{update.index} ({update.operation})"
                if not eligible:
                    body = exchange.answer if exchange is not None else None
                    data = body.get("data") if body is not None else None
                    fine = (update.http_status, update.outcome) == (
                        400,
                        "no_eligible_identifier",
                    ) or ((update.http_status, update.outcome) == (200, "ok") and not data)
                    if not fine:
                        findings.add(
                            record.name,
                            f"{what} of a user without eligible identifier answered "
                            f"{update.http_status} {update.outcome!r}"
                            + (f" with {len(data)} data item(s)" if data else "")
                            + ": expected 400 no_eligible_identifier or 200 ok without data",
                            [seq],
                        )
                    continue
                text = _data_text(exchange)
                if seen is None:
                    seen = _values_seen(record)
                # the partner received it for this update: at or after its first call
                since = float(update.exchanges[0]) if update.exchanges else -math.inf
                lost = [i for i in eligible if i[1] not in text and seen.get(i, -math.inf) < since]
                if lost:
                    kind, value = sorted(lost)[0]
                    findings.add(
                        record.name,
                        f"{what} answered {update.http_status} {update.outcome!r}: {len(lost)} of "
                        f"{len(eligible)} eligible identifiers (e.g. {kind} {_short(value)}) "
                        "reached neither the answer's data nor the partner",
                        [seq],
                    )
    return findings.verdict(f"{checked} updates delivered their eligible identifiers")


_REFUSED_FOR_GOOD = frozenset({"invalid_grant", "revoked_token"})


def _credentials_refused_at(view: RunView) -> float:
    """The trace seq at which the partner first refused the connector's credentials for
    good (its refresh token, or a revoked access token), else infinity."""
    seqs = [
        seq
        for entry in view.entries
        if entry.signal in _REFUSED_FOR_GOOD and (seq := view.seq_of(entry)) is not None
    ]
    return float(min(seqs)) if seqs else math.inf


def _update_answers(evidence: Evidence) -> Iterator[tuple[RunRecord, Exchange, dict[str, Any]]]:
    for record in evidence:
        for exchange in _exchanges(record, _PLATFORM, "/v1/user_segment_update"):
            body = exchange.answer if _answered(exchange) and not _is_probe(exchange) else None
            if body is not None:
                yield record, exchange, body


@clause(
    "UPDATE-GROUPING",
    "every `BATCH_DELIVERY`/`FILE_DELIVERY` item carries a non-empty `grouping_key`; "
    "`FILE_DELIVERY` carries `destination_token`.",
    group="updates",
    routes=("user_segment_update",),
    runs=(LIFECYCLE,),
)
def check_update_grouping(evidence: Evidence) -> Verdict:
    """Every delivery item of every update answer has its keys, non-empty strings."""
    findings = _Findings()
    items = 0
    for record, exchange, body in _update_answers(evidence):
        data = body.get("data")
        if not isinstance(data, list):
            continue
        for position, item in enumerate(data):
            if not isinstance(item, dict) or item.get("type") not in (
                "BATCH_DELIVERY",
                "FILE_DELIVERY",
            ):
                continue
            items += 1
            needed = ["grouping_key"]
            if item["type"] == "FILE_DELIVERY":
                needed.append("destination_token")
            for key in needed:
                value = item.get(key)
                if not isinstance(value, str) or not value.strip():
                    findings.add(
                        record.name,
                        f"data[{position}] ({item['type']}) has {key}={value!r}: expected a "
                        "non-empty string",
                        [exchange.seq],
                    )
    return findings.verdict(f"{items} delivery items carry their keys")


_NOT_IDENTIFIERS = frozenset({"type", "registry_id"})
"""Strings of a request's identifiers that name a kind or a registry, not the user."""


def _user_values(request: Any) -> set[str]:
    """Every identifier value of the request's user (strings of each identifier and of its
    nested technical identifiers, but their ``type`` and ``registry_id``), as sent, trimmed
    and lower-cased, and after ``mob:``."""
    identifiers = request.get("user_identifiers") if isinstance(request, dict) else None
    values: set[str] = set()
    for identifier in identifiers if isinstance(identifiers, list) else ():
        if not isinstance(identifier, dict):
            continue
        for key, value in identifier.items():
            if key in _NOT_IDENTIFIERS:
                continue
            texts = [value] if isinstance(value, str) else []
            if isinstance(value, list):
                texts = [
                    v
                    for item in value
                    if isinstance(item, dict)
                    for k, v in item.items()
                    if k not in _NOT_IDENTIFIERS
                ]
            for text in texts:
                if isinstance(text, str):
                    values.add(text)
                    values.add(text.strip().lower())
                    if text.startswith("mob:"):
                        values.add(text.rsplit(":", 1)[-1])
    return values


@clause(
    "UPDATE-STATS",
    "every `stats[].identifier` belongs to the request's user.",
    group="updates",
    routes=("user_segment_update",),
    runs=(LIFECYCLE,),
)
def check_update_stats(evidence: Evidence) -> Verdict:
    """Each stat's identifier is one of the request's identifier values (as sent, trimmed
    and lower-cased, or the id after a ``mob:...:`` prefix)."""
    findings = _Findings()
    stats_seen = 0
    for record, exchange, body in _update_answers(evidence):
        stats = body.get("stats")
        if not isinstance(stats, list) or not stats:
            continue
        values = _user_values(exchange.request_json())
        for stat in stats:
            identifier = stat.get("identifier") if isinstance(stat, dict) else None
            stats_seen += 1
            if not isinstance(identifier, str) or (
                identifier not in values and identifier.strip().lower() not in values
            ):
                shown = _short(identifier) if isinstance(identifier, str) else repr(identifier)
                findings.add(
                    record.name,
                    f"stats identifier {shown} is none of the request user's "
                    f"{len(values)} identifier values",
                    [exchange.seq],
                )
    return findings.verdict(f"{stats_seen} stats name the request's user")
