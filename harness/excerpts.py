"""What a report shows of a failure: the trace excerpt, the feed accounting, the ledger window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.clauses.view import view_of

if TYPE_CHECKING:
    from harness.clauses.evidence import RunRecord
    from harness.trace import Exchange

__all__ = [
    "MAX_LEDGER_ENTRIES",
    "MAX_TRACE_ENTRIES",
    "feed_accounting",
    "ledger_window",
    "trace_excerpt",
]

MAX_TRACE_ENTRIES = 60
MAX_LEDGER_ENTRIES = 50
_MAX_BODY = 2000


def trace_excerpt(
    record: RunRecord, seqs: Sequence[int], limit: int = MAX_TRACE_ENTRIES
) -> list[tuple[dict[str, Any], Exchange]]:
    """The exchanges a verdict names, in their whole platform call, as report dicts (≤ limit).

    A named gateway or partner call brings the platform call it happened in; every named
    or brought platform call brings the gateway and partner calls nested in it. The named
    exchanges are kept first (marked ``named``), then the platform calls around them, then
    the nested ones, in ``seq`` order.
    """
    view = view_of(record)
    named = [ex for s in sorted(set(seqs)) if (ex := view.exchange(s)) is not None]
    named_ids = {ex.seq for ex in named}
    around: dict[int, Exchange] = {}
    for ex in named:
        if ex.leg == "platform->connector":
            continue
        outer = view.enclosing(ex.seq)
        if outer is not None:
            around.setdefault(outer.seq, outer)
    calls = [*named, *(ex for s, ex in sorted(around.items()) if s not in named_ids)]
    kept_ids = {ex.seq for ex in calls}
    nested: dict[int, Exchange] = {}
    for ex in calls:
        for child in view.inside(ex):
            if child.seq not in kept_ids:
                nested.setdefault(child.seq, child)
    kept = calls[:limit]
    kept += sorted(nested.values(), key=lambda e: e.seq)[: max(0, limit - len(kept))]
    kept.sort(key=lambda e: e.seq)
    redactor = record.trace.redactor
    entries = []
    for ex in kept:
        entry = redactor.value(_entry(ex))
        entry["named"] = ex.seq in named_ids
        entries.append((entry, ex))
    return entries


def _encloses(outer: Exchange, inner: Exchange) -> bool:
    end = outer.end_seq if outer.end_seq is not None else float("inf")
    return outer.seq < inner.seq < end


def _entry(ex: Exchange) -> dict[str, Any]:
    data = ex.to_jsonable(max_body=_MAX_BODY)
    data.update(path=ex.path, status=ex.status, summary=_summary(ex))
    return data


def _summary(ex: Exchange) -> str:
    """A short account: answer status, list sizes, answer counts (``OK, 3 batch_content``)."""
    parts: list[str] = []
    answer = ex.response_json()
    if isinstance(answer, dict) and isinstance(answer.get("status"), str):
        parts.append(str(answer["status"]))
    for body, counts in ((ex.request_json(), False), (answer, True)):
        if isinstance(body, list):
            parts.append(f"{len(body)} items")
        elif isinstance(body, dict):
            for key, value in body.items():
                if isinstance(value, list):
                    parts.append(f"{len(value)} {key}")
                elif counts and isinstance(value, int) and not isinstance(value, bool):
                    parts.append(f"{key}={value}")
    if ex.failure is not None:
        parts.append(ex.failure)
    text = ", ".join(parts[:6])
    return text if len(text) <= 120 else text[:119] + "…"


def feed_accounting(record: RunRecord) -> dict[str, Any] | None:
    """The run's feed accounting (current session): flat for one feed, by feed name otherwise."""
    feeds = record.feeds
    if not feeds:
        return None
    if len(feeds) == 1:
        name, feed = next(iter(feeds.items()))
        return {"feed": name, "feed_id": feed.feed_id, **feed.accounting.to_dict()}
    return {name: feed.accounting.to_dict() for name, feed in feeds.items()}


def ledger_window(
    record: RunRecord, exchanges: Sequence[Exchange], limit: int = MAX_LEDGER_ENTRIES
) -> list[dict[str, Any]]:
    """The partner ledger entries of those exchanges (≤ limit, without operations).

    Partner calls are matched as :class:`RunView` links them (``X-Request-Id``, dropped
    ones in order); with no partner call among them, every entry of their time window;
    with no exchange, the run's last entries.
    """
    view = view_of(record)
    redact = record.trace.redactor.value
    if not exchanges:
        return [redact(entry.to_json(operations=False)) for entry in view.entries[-limit:]]
    calls = [ex for ex in exchanges if ex.leg == "connector->partner"]
    if calls:
        linked = {id(entry) for ex in calls if (entry := view.entry(ex)) is not None}
        chosen = [entry for entry in view.entries if id(entry) in linked]
    else:
        start = min(ex.virtual_start for ex in exchanges)
        end = max(
            ex.virtual_end if ex.virtual_end is not None else ex.virtual_start for ex in exchanges
        )
        chosen = [entry for entry in view.entries if start <= entry.time <= end]
    return [redact(entry.to_json(operations=False)) for entry in chosen[:limit]]
