"""Hand-built evidence for unit tests of the checks: a few exchanges, no connector.

A :class:`RunBuilder` holds a :class:`~harness.platform.Platform` that is never started:
its trace gets the exchanges a test writes (platform calls with the partner requests
nested inside them, as sequence numbers nest in a real run) and its partner's ledger the
matching entries (joined on ``X-Request-Id``, as the checks join them)::

    run = RunBuilder("preset:example")
    with run.call("batch_update", {"batch_content": ["a", "b"]}) as call:
        run.upload(accepted=1, rejected=1)
        call.answer(200, {"status": "OK", "sent_items_in_success": 1, "sent_items_in_error": 1})
    verdict = partial_failure(evidence(run))
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from contracts.routes import route
from fake_partner import LedgerEntry, LedgerOperation, OAuthError, PartnerError
from fake_partner.faces.base import signal_of
from harness.clauses.evidence import Evidence, RunRecord
from harness.clauses.notes import RunNotes
from harness.platform import Platform
from harness.trace import Exchange

__all__ = ["Call", "RunBuilder", "evidence"]

CONNECTOR_URL = "http://connector.test"
PARTNER_URL = "https://partner.test"
SEGMENT = "seg-000001"
UPLOAD_ROUTE = "POST /v1/segments/{segment_id}/members"


@dataclass
class Call:
    """A platform -> connector call being recorded; ``answer`` sets what it answers."""

    exchange: Exchange
    _answer: tuple[int, dict[str, str], bytes] | None = None
    _failure: str | None = None

    def answer(
        self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        """The connector's answer (JSON ``body``)."""
        self._answer = (status, dict(headers or {}), json.dumps(body).encode())

    def no_answer(self) -> None:
        """The connector never answered (a timeout)."""
        self._failure = "timeout"

    @property
    def seq(self) -> int:
        return self.exchange.seq


class RunBuilder:
    """One hand-built run: its record, trace, ledger and clock."""

    def __init__(
        self, name: str = "hand-built", scenario: Any = None, notes: RunNotes | None = None
    ) -> None:
        self.platform = Platform(scenario=scenario)
        self.record = RunRecord(
            name, self.platform, notes=notes if notes is not None else RunNotes()
        )
        self._sequence = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._values = itertools.count(1)

    @property
    def name(self) -> str:
        return self.record.name

    def advance(self, seconds: float) -> None:
        """Move the virtual clock (the trace and the ledger read it)."""
        self.platform.clock.advance(seconds)

    @contextmanager
    def call(self, route_name: str, body: Mapping[str, Any] | None = None) -> Iterator[Call]:
        """Record a platform call to the connector's ``route_name``; the partner requests
        made inside the ``with`` block nest in it."""
        wire = route(route_name)
        exchange = self.platform.trace.begin(
            "platform->connector",
            wire.method,
            CONNECTOR_URL + wire.path,
            (("content-type", "application/json"),),
            json.dumps(body if body is not None else {}).encode(),
        )
        call = Call(exchange)
        yield call
        if call._answer is not None:
            status, headers, content = call._answer
            exchange.finish(status, tuple(headers.items()), content)
        else:
            exchange.fail("timeout" if call._failure else "crash", "no answer recorded")

    def partner(
        self,
        method: str,
        path: str,
        *,
        status: int | None = 200,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        request_body: bytes = b"",
        error_code: str | None = None,
        token: str | None = "fp-access-1",
        client_id: str | None = "client-1",
        grant_type: str | None = None,
        operations: Sequence[LedgerOperation] = (),
        route_key: str | None = None,
        segment_id: str | None = None,
    ) -> LedgerEntry:
        """A connector -> partner request and its ledger entry; ``status=None`` drops the
        connection (the trace then has no ``X-Request-Id``, as in a real run)."""
        request_id = f"req-{next(self._request_ids)}"
        answer_headers = {"x-request-id": request_id, **(headers or {})}
        if status is None:
            self.platform.trace.record(
                "connector->partner",
                method,
                PARTNER_URL + path,
                (),
                request_body,
                status=None,
                failure="connection",
                detail="dropped",
            )
        else:
            answer = dict(body or {})
            if status >= 400 and not answer:
                answer = {"error": {"status": status, "code": error_code, "message": "fault"}}
            self.platform.trace.record(
                "connector->partner",
                method,
                PARTNER_URL + path,
                (),
                request_body,
                status=status,
                response_headers=tuple(answer_headers.items()),
                response_body=json.dumps(answer).encode(),
            )
        now = self.platform.clock.now()
        signal = _signal(status, error_code, grant_type, operations)
        retry_after = next(
            (v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None
        )
        entry = LedgerEntry(
            sequence=next(self._sequence),
            request_id=request_id,
            time=now,
            answered_at=now,
            method=method,
            path=path,
            route=route_key,
            token=token,
            client_id=client_id,
            account_id=None,
            segment_id=segment_id,
            status=status,
            error_code=error_code,
            operations=tuple(operations),
            applied=status is not None and 200 <= status < 300,
            faults=(),
            grant_type=grant_type,
            dialect_code=error_code,
            signal=signal,
            retry_after=float(retry_after) if retry_after else None,
        )
        self.platform.partner.ledger.append(entry)
        return entry

    def operations(
        self, accepted: int = 0, rejected: int = 0, refused: int = 0
    ) -> list[LedgerOperation]:
        """Fresh ADD operations: ``accepted`` applied, ``rejected`` per item
        (IDENTIFIER_REJECTED), ``refused`` never judged (the request failed as a whole)."""
        kinds = [(True, None)] * accepted
        kinds += [(False, "IDENTIFIER_REJECTED")] * rejected
        kinds += [(False, None)] * refused
        return [
            LedgerOperation(
                index, "ADD", (("EMAIL_SHA256", f"{next(self._values):064x}"),), ok, code
            )
            for index, (ok, code) in enumerate(kinds)
        ]

    def upload(
        self,
        accepted: int = 0,
        rejected: int = 0,
        *,
        status: int | None = 200,
        error_code: str | None = None,
        operations: Sequence[LedgerOperation] | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = "fp-access-1",
    ) -> LedgerEntry:
        """A member upload of the segment (its operations made up unless given)."""
        if operations is None:
            judged = status is not None and 200 <= status < 300
            operations = (
                self.operations(accepted, rejected)
                if judged
                else self.operations(refused=accepted + rejected)
            )
        ops = list(operations)
        body = {
            "received": len(ops),
            "accepted": sum(op.accepted for op in ops),
            "rejected": sum(op.code is not None for op in ops),
        }
        payload = {"operations": [op.to_json() for op in ops]}
        return self.partner(
            "POST",
            f"/v1/segments/{SEGMENT}/members",
            status=status,
            body=body if status is not None and status < 400 else None,
            headers=headers,
            request_body=json.dumps(payload).encode(),
            error_code=error_code,
            operations=ops,
            route_key=UPLOAD_ROUTE,
            segment_id=SEGMENT,
            token=token,
        )

    def segment_read(
        self,
        *,
        status: int | None = 200,
        error_code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> LedgerEntry:
        """``GET /v1/segments/{id}`` (what connection does)."""
        return self.partner(
            "GET",
            f"/v1/segments/{SEGMENT}",
            status=status,
            error_code=error_code,
            headers=headers,
            route_key="GET /v1/segments/{segment_id}",
            segment_id=SEGMENT,
        )

    def refresh(
        self, *, status: int = 200, refresh_token: str = "fp-refresh-1", error: str | None = None
    ) -> LedgerEntry:
        """``POST /oauth/token`` with ``grant_type=refresh_token`` (``error``: the OAuth
        error, e.g. ``invalid_grant``, recorded as the entry's error code)."""
        return self.partner(
            "POST",
            "/oauth/token",
            status=status,
            body={"error": error} if error else {"access_token": "***", "expires_in": 3600},
            error_code=error,
            token=refresh_token,
            grant_type="refresh_token",
            route_key="POST /oauth/token",
        )


def _signal(
    status: int | None,
    error_code: str | None,
    grant_type: str | None,
    operations: Sequence[LedgerOperation],
) -> str | None:
    """The ledger's ``signal`` as the generic face writes it (fake_partner's own rule)."""
    if status is None:
        return "transient"
    if status < 400:
        return "per_item" if any(op.code is not None for op in operations) else None
    if grant_type is not None and error_code == "invalid_grant":
        return signal_of(OAuthError(status, "invalid_grant", "refused"))
    return signal_of(PartnerError(status, error_code or "ERROR", "refused"))


def evidence(*runs: RunBuilder) -> Evidence:
    """The evidence of these hand-built runs."""
    return Evidence(runs={run.name: run.record for run in runs})
