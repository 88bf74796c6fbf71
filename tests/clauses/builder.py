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
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from contracts.routes import route
from fake_partner import LedgerEntry, LedgerOperation, OAuthError, PartnerError
from fake_partner.faces.base import signal_of
from fake_partner.routes import PARTNER_ROUTES, resolve
from harness.clauses.evidence import Evidence, RunRecord
from harness.clauses.notes import RunNotes
from harness.drivers.base import Answer, _answer
from harness.gateway.feeds import FeedSetup
from harness.platform import Platform
from harness.simulator import Feed, SimulatorSettings
from harness.trace import Exchange
from harness.users import Maid, SimUser

__all__ = ["HONEST", "Call", "Reply", "RunBuilder", "ScriptedConnector", "evidence", "user"]

CONNECTOR_URL = "http://connector.test"
PARTNER_URL = "https://partner.test"
SEGMENT = "seg-000001"
UPLOAD_ROUTE = "POST /v1/segments/{segment_id}/members"
SEGMENT_CREATE = "POST /v1/accounts/{account_id}/segments"


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

    def answer_bytes(
        self, status: int, content: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """The connector's answer, bytes as they came (not JSON: recorded as ``not-json``)."""
        self._answer = (status, dict(headers or {}), content)

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
    def call(
        self,
        route_name: str,
        body: Mapping[str, Any] | None = None,
        *,
        raw: bytes | None = None,
        **tags: Any,
    ) -> Iterator[Call]:
        """Record a platform call to the connector's ``route_name``; the partner requests
        made inside the ``with`` block nest in it. ``raw``: the request body as bytes
        (e.g. ``b""``); ``tags``: the exchange's tags (e.g. ``probe="empty-body"``)."""
        wire = route(route_name)
        exchange = self.platform.trace.begin(
            "platform->connector",
            wire.method,
            CONNECTOR_URL + wire.path,
            (("content-type", "application/json"),),
            raw if raw is not None else json.dumps(body if body is not None else {}).encode(),
            **tags,
        )
        call = Call(exchange)
        yield call
        if call._answer is not None:
            status, headers, content = call._answer
            exchange.finish(status, tuple(headers.items()), content)
            try:
                json.loads(content)
            except ValueError:
                exchange.fail("not-json", f"answer {status} is not JSON")
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
        faults: tuple[str, ...] = (),
    ) -> LedgerEntry:
        """A connector -> partner request and its ledger entry; ``status=None`` drops the
        connection (the trace then has no ``X-Request-Id``, as in a real run); ``faults``:
        the scenario's fault rules that made the answer."""
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
        route_key, account_id, segment_id = _identified(method, path, route_key, segment_id)
        if segment_id is None and route_key == SEGMENT_CREATE and status in (200, 201):
            created = (body or {}).get("id")  # the generic face names the segment it made
            segment_id = created if isinstance(created, str) else None
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
            account_id=account_id,
            segment_id=segment_id,
            status=status,
            error_code=error_code,
            operations=tuple(operations),
            applied=status is not None and 200 <= status < 300,
            faults=faults,
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

    # ------------------------------------------------------------------ feeds

    def gateway_feed(self, feed_id: str, **properties: str | None) -> None:
        """Serve a feed in the run's gateway with these properties (e.g.
        ``partner_segment_id``), as the connector would have left them (a feed served
        already is served anew, with these alone)."""
        self.platform.gateway._feeds.pop(feed_id, None)
        self.platform.gateway.add_feed(
            FeedSetup(
                feed_id=feed_id,
                segment={"id": f"s-{feed_id}", "name": f"segment {feed_id}", "datamart_id": "1"},
                properties={k: v for k, v in properties.items() if v is not None},
            )
        )

    def feed(
        self,
        name: str = "main",
        *,
        identifying: Sequence[str] = ("USER_EMAIL", "USER_DEVICE_POINT", "USER_ACCOUNT"),
        partner_segment_id: str | None = SEGMENT,
        partner_account_id: str | None = "acc-1",
        connector: ScriptedConnector | None = None,
        **settings: Any,
    ) -> Feed:
        """A real :class:`~harness.simulator.Feed`, ACTIVE, served by the gateway and
        registered in the record (``feeds[name]``), whose connector is a
        :class:`ScriptedConnector` (by default an honest one): ``feed.upsert([user])``,
        ``feed.flush()`` record updates, batches and their exchanges as a run does.
        ``settings``: :class:`SimulatorSettings` fields (e.g. ``max_batch_attempts=2``)."""
        number = 7001 + len(self.record.feeds)
        feed_id = str(number)
        self.gateway_feed(
            feed_id, partner_segment_id=partner_segment_id, partner_account_id=partner_account_id
        )
        self.connector = connector if connector is not None else ScriptedConnector(self)
        feed = Feed(
            driver=self.connector,
            clock=self.platform.clock,
            settings=SimulatorSettings(**{"backoff_initial": 0.0, **settings}),
            feed_id=feed_id,
            segment_id=str(number + 1000),
            datamart_id="1",
            identifying=identifying,
            partner_account_id=partner_account_id,
            partner_membership=self.members,
            redactor=self.platform.redactor,
        )
        feed.state = "ACTIVE"
        self.record.feeds[name] = feed
        self.platform.feeds.append(feed)
        return feed

    def reply(self, *replies: Reply | Responder | str) -> None:
        """Script the next answers of the feeds' connector, in call order (after them, its
        honest behaviour again)."""
        self.connector.replies.extend(replies)

    def members(self) -> frozenset[tuple[str, str]]:
        """The segment's members as the ledger's applied uploads left them."""
        members: set[tuple[str, str]] = set()
        for entry in self.platform.partner.ledger.entries:
            if entry.route != UPLOAD_ROUTE or not entry.applied:
                continue
            for operation in entry.operations:
                if not operation.accepted:
                    continue
                for member in operation.identifiers:
                    if operation.action == "ADD":
                        members.add(member)
                    else:
                        members.discard(member)
        return frozenset(members)

    def upload_items(
        self, contents: Sequence[Any], *, reject: Sequence[int] = (), status: int | None = 200
    ) -> LedgerEntry:
        """One upload of these batch items (their operations: ADD for an UPSERT, REMOVE for
        a DELETE); ``reject``: the indices the partner rejects per item."""
        operations = []
        for index, content in enumerate(contents):
            item = json.loads(content) if isinstance(content, str) else content
            action = "ADD" if item["operation"] == "UPSERT" else "REMOVE"
            members = tuple((kind, value) for kind, value in item["identifiers"])
            ok = status is not None and 200 <= status < 300 and index not in reject
            code = "IDENTIFIER_REJECTED" if index in reject else None
            operations.append(LedgerOperation(index, action, members, ok, code))
        return self.upload(operations=operations, status=status)


Reply = tuple[int, Mapping[str, Any]] | tuple[int, Mapping[str, Any], Mapping[str, str]] | None
"""A scripted connector answer: HTTP code, JSON body, headers; ``None``: no answer (timeout)."""
Responder = Callable[[Any], Reply]
"""Computes the answer from the request's JSON; may record partner requests (they nest)."""
HONEST = "honest"
"""A scripted reply that lets the connector answer honestly this once."""


class ScriptedConnector:
    """A connector played by the test: each call takes the next scripted reply (a
    :data:`Reply`, or a :data:`Responder` called with the request), else answers honestly:
    an update delivers its user's eligible identifiers as one ``BATCH_DELIVERY`` item
    (``{"operation": ..., "identifiers": [[type, value], ...]}``), a batch uploads every
    item to the partner and counts each as success."""

    def __init__(self, run: RunBuilder) -> None:
        self.run = run
        self.trace = run.platform.trace
        self.replies: deque[Reply | Responder | str] = deque()

    def start(self, env: Any) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""

    def call(self, method: str, path: str, body: bytes | None, *, timeout: float) -> Answer:
        payload = body or b""
        exchange = self.trace.begin(
            "platform->connector",
            method,
            CONNECTOR_URL + path,
            (("content-type", "application/json"),),
            payload,
        )
        try:
            request = json.loads(payload) if payload else None
        except ValueError:
            request = None
        scripted = self.replies.popleft() if self.replies else HONEST
        if scripted == HONEST:
            scripted = self.honest
        reply = scripted(request) if callable(scripted) else scripted
        assert not isinstance(reply, str)
        if reply is None:
            return _answer(exchange, None, (), b"", "timeout", "no answer in time", timeout)
        status, answer, *rest = reply
        headers = tuple(rest[0].items()) if rest else ()
        return _answer(exchange, status, headers, json.dumps(answer).encode(), None, "", 0.001)

    def honest(self, request: Any) -> Reply:
        if isinstance(request, dict) and "batch_content" in request:
            content = request["batch_content"]
            if content:
                self.run.upload_items(content)
            return 200, {
                "status": "OK",
                "sent_items_in_success": len(content),
                "sent_items_in_error": 0,
            }
        if isinstance(request, dict) and "user_identifiers" in request:
            found = delivered(request)
            if not found:
                return 400, {"status": "no_eligible_identifier", "message": "none"}
            return 200, {
                "status": "ok",
                "data": [
                    {
                        "type": "BATCH_DELIVERY",
                        "content": {"operation": request["operation"], "identifiers": found},
                        "grouping_key": "main",
                    }
                ],
                "stats": [],
            }
        return 200, {"status": "ok"}


def delivered(request: Mapping[str, Any]) -> list[list[str]]:
    """The partner identifiers of an update request's user (hashed emails, MAIDs, account
    ids), as an honest connector sends them."""
    found: list[list[str]] = []
    for identifier in request.get("user_identifiers", ()):
        kind = identifier.get("type")
        if kind == "USER_EMAIL":
            found.append(["EMAIL_SHA256", identifier["hash"]])
        elif kind == "USER_DEVICE_POINT":
            for technical in identifier.get("technical_identifiers", ()):
                if technical.get("type") == "MOBILE_ADVERTISING_ID":
                    found.append(["MAID", str(technical["user_agent_id"]).rsplit(":", 1)[-1]])
        elif kind == "USER_ACCOUNT":
            found.append(["PARTNER_USER_ID", identifier["user_account_id"]])
    return found


_users = itertools.count(1)


def user(*, emails: int = 1, maids: int = 0, accounts: int = 0) -> SimUser:
    """A user point with that many emails, MAIDs and account ids (fresh values)."""
    n = next(_users)
    return SimUser(
        f"up-{n}",
        emails=tuple(f"user{n}.{i}@example.com" for i in range(emails)),
        maids=tuple(Maid("ios", f"00000000-0000-4000-8000-{n:06d}{i:06d}") for i in range(maids)),
        account_ids=tuple(f"acct-{n}-{i}" for i in range(accounts)),
    )


def _identified(
    method: str, path: str, route_key: str | None, segment_id: str | None
) -> tuple[str | None, str | None, str | None]:
    """The core route, account and segment the generic face would record for a request."""
    try:
        route, params = resolve(PARTNER_ROUTES, method, path)
    except PartnerError:
        return route_key, None, segment_id
    return (
        route_key or route.key,
        params.get("account_id"),
        segment_id or params.get("segment_id"),
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
