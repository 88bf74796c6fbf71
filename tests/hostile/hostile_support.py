"""Hostile requests for the three servers, sent straight to their ASGI apps (no socket).

``RawRequest`` carries any method, target, header and body bytes, as a client on a socket
could send them; ``send`` runs an ASGI app on one and collects its answer. ``Server`` wraps
one app with what its tests need: the state a refused request must leave alone, and the
error format its 4xx answers must have. ``INGREDIENTS`` feed both the hypothesis strategy
(``hostile_requests``) and the seeded generator of the 10,000-request runs (``generate``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import respx
from hypothesis import strategies as st
from starlette.types import ASGIApp, Message

from contracts.routes import MISSING_BODY_ANSWER, ROUTES
from fake_partner import Partner
from fake_partner.routes import ADMIN_ROUTES, PARTNER_ROUTES
from harness.gateway import FeedSetup, Gateway
from harness.reference import ReferenceConnector
from harness.sdk import PluginSettings

PARTNER_URL = "https://partner.test"
FEED = "feed-1"
DESTINATION = "dest-1"


@dataclass(frozen=True)
class RawRequest:
    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def __repr__(self) -> str:
        return (
            f"RawRequest({self.method[:20]!r}, {self.target[:120]!r}, "
            f"headers={[(k[:30], v[:60]) for k, v in self.headers[:8]]}, body={self.body[:160]!r}"
            f"{' ...' if len(self.body) > 160 else ''} ({len(self.body)} bytes))"
        )


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def scope_of(request: RawRequest) -> dict[str, Any]:
    """The ASGI scope uvicorn's h11 protocol builds for this request."""
    raw_path, _, query = request.target.partition(b"?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": request.method.decode("latin-1"),
        "scheme": "http",
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def send(app: ASGIApp, request: RawRequest, chunk: int = 65536) -> RawAnswer:
    """Run ``app`` on ``request`` (the body in ``chunk``-byte messages) and collect the answer."""
    pieces = [request.body[i : i + chunk] for i in range(0, len(request.body), chunk)] or [b""]
    queue = list(reversed(pieces))
    status: list[int] = []
    headers: list[tuple[bytes, bytes]] = []
    body: list[bytes] = []

    async def receive() -> Message:
        if queue:
            piece = queue.pop()
            return {"type": "http.request", "body": piece, "more_body": bool(queue)}
        return {"type": "http.disconnect"}

    async def send_message(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
            headers.extend(message.get("headers", []))
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope_of(request), receive, send_message)
    assert status, f"no answer to {request!r}"
    return RawAnswer(status[0], headers, b"".join(body))


# --- ingredients --------------------------------------------------------------------------------

DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
HOSTILE_VALUES: tuple[bytes, ...] = (  # each one makes any JSON document unreadable
    b'"\\ud800"',
    b'"x\\udfff"',
    b'"\\ud800\\u0041"',
    b"1e400",
    b"-1e400",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1" + b"0" * 5000,
    b"-" + b"9" * 4301,
    b'"' + b"\xff\xfe" + b'"',
    b'"\xed\xa0\x80"',
    b"[" * 200 + b"]" * 200,
    DEEP_ARRAY,
)
HOSTILE_BODIES: tuple[bytes, ...] = (
    DEEP_ARRAY,
    DEEP_OBJECT,
    b"\xff\xfe\x00{",
    b"\xef\xbb\xbf{}",
    b'{"a": "\\ud800"}',
    b'{"seconds": 1e300}',
    b'{"seconds": 1e400}',
    b"[NaN]",
    b'{"level": ' + DEEP_ARRAY + b"}",
    b"{" * 100,
    b'"\\ud800"',
    b"grant_type=refresh_token&refresh_token=%ED%A0%80",
    b"grant_type=%ff&client_id=\xe9",
    b"a=" + b"%" * 1000,
    b"",
    b"{}",
    b"null",
    b"0",
)
HOSTILE_SEGMENTS: tuple[bytes, ...] = (
    b"%ED%A0%80",
    b"%ff",
    b"%00",
    b"%0d%0a",
    b"%C2%B2",
    b"..",
    b"%2e%2e",
    b"%2F",
    b"a" * 300,
    b"\xe9",
    b"a b",
    b"%",
)
HOSTILE_QUERIES: tuple[bytes, ...] = (
    b"limit=%C2%B2",
    b"limit=\xc2\xb2",
    b"cursor=o%C2%B2",
    b"cursor=o" + b"9" * 40,
    b"limit=" + b"9" * 40,
    b"since=%C2%B2",
    b"since=-1",
    b"since=" + b"9" * 30,
    b"members=maybe",
    b"uri=%ED%A0%80",
    b"name=%00",
    b"state=%C3%A9&client_id=feed-harness-client&redirect_uri=https://%C3%A9&response_type=code",
    b"x=%ff",
    b"a=" + b"b" * 9000,
)
UNREADABLE_QUERIES: tuple[bytes, ...] = (  # refused by every server, whatever the route
    b"x=%ff",
    b"uri=%ED%A0%80",
    b"name=%00",
    b"limit=\xc2\xb2",
    b"a=" + b"b" * 9000,
)
HOSTILE_TARGETS: tuple[bytes, ...] = (
    b"*",
    b"http://evil.example/v1/accounts",
    b"https://partner.test/oauth/token",
    b"//v1/accounts",
    b"/" + b"a" * 70_000,
    b"/v1/" + b"x" * 65_536,
    b"",
    b"v1/accounts",
    b"/v1/\x00",
    b"/v1/\x7f",
    b"/v1/\xe9t\xe9",
)
HOSTILE_METHODS: tuple[bytes, ...] = (b"get", b"G T", b"\xe9", b"", b"A" * 100, b"PO\x00ST")
METHODS: tuple[bytes, ...] = (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"HEAD")
CONTENT_TYPES: tuple[bytes, ...] = (
    b"application/json",
    b"application/x-www-form-urlencoded",
    b"application/toml",
    b"text/plain",
)
HOSTILE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"authorization", b"Basic \xe9"),
    (b"authorization", b"Bearer \xe9\xff"),
    (b"authorization", b"Basic " + b"=" * 10),
    (b"authorization", b"Basic Og=="),
    (b"x-admin-token", b"\xff"),
    (b"x-custom", b"caf\xc3\xa9"),
    (b"x-custom", b"a\x01b"),
    (b"bad name", b"v"),
    (b"", b"v"),
    (b"x-long", b"a" * 40_000),
    (b"host", b"evil host:99999999"),
    (b"content-type", b"application/json; charset=\xe9"),
    (b"content-length", b"-1"),
)


@dataclass(frozen=True)
class Shape:
    """What one server serves: its path templates and the headers that open its doors."""

    templates: tuple[str, ...]
    ids: tuple[str, ...]
    good_headers: tuple[tuple[bytes, bytes], ...]
    json_fields: tuple[str, ...]


def _fill(template: str, ident: bytes) -> bytes:
    parts = []
    for part in template.encode().split(b"/"):
        parts.append(ident if part.startswith(b"{") else part)
    return b"/".join(parts)


def _near_valid(fields: Sequence[str], field_name: str, value: bytes) -> bytes:
    """A JSON object with plausible string fields and one hostile value."""
    items = [f'"{name}": "1"'.encode() for name in fields if name != field_name]
    items.append(b'"' + field_name.encode() + b'": ' + value)
    return b"{" + b", ".join(items) + b"}"


@dataclass
class Parts:
    """Choices made by a strategy or a seeded generator, turned into a request."""

    shape: Shape

    def build(
        self,
        method: bytes,
        target_kind: int,
        template: str,
        ident: bytes,
        query: bytes | None,
        raw_target: bytes,
        headers: list[tuple[bytes, bytes]],
        body_kind: int,
        body: bytes,
        field_name: str,
        value: bytes,
    ) -> RawRequest:
        if target_kind == 0:
            target = raw_target
        else:
            target = _fill(template, ident) + (b"?" + query if query is not None else b"")
        if body_kind == 1:
            body = _near_valid(self.shape.json_fields, field_name, value)
        return RawRequest(method, target, tuple(headers), body)


def hostile_requests(shape: Shape) -> st.SearchStrategy[RawRequest]:
    """Any request a hostile client could send this server (most of them malformed)."""
    parts = Parts(shape)
    header = st.one_of(
        st.sampled_from(shape.good_headers),
        st.sampled_from(HOSTILE_HEADERS),
        st.tuples(st.sampled_from([b"content-type"]), st.sampled_from(CONTENT_TYPES)),
        st.tuples(st.binary(min_size=0, max_size=12), st.binary(min_size=0, max_size=40)),
    )
    many = st.just([(b"x-h%d" % i, b"v") for i in range(150)])
    return st.builds(
        parts.build,
        method=st.one_of(
            st.sampled_from(METHODS), st.sampled_from(HOSTILE_METHODS), st.binary(max_size=10)
        ),
        target_kind=st.integers(0, 3),
        template=st.sampled_from(shape.templates),
        ident=st.one_of(st.sampled_from(shape.ids), st.sampled_from(HOSTILE_SEGMENTS)),
        query=st.none() | st.sampled_from(HOSTILE_QUERIES + UNREADABLE_QUERIES),
        raw_target=st.one_of(st.sampled_from(HOSTILE_TARGETS), st.binary(max_size=60)),
        headers=st.one_of(st.lists(header, max_size=6), many),
        body_kind=st.integers(0, 2),
        body=st.one_of(st.sampled_from(HOSTILE_BODIES), st.binary(max_size=200)),
        field_name=st.sampled_from(shape.json_fields),
        value=st.sampled_from(HOSTILE_VALUES),
    )


def generate(shape: Shape, count: int, seed: int) -> Iterator[RawRequest]:
    """``count`` malformed requests drawn from the same ingredients, seeded (fast: no shrinking)."""
    rng = random.Random(seed)
    parts = Parts(shape)
    for _ in range(count):
        headers: list[tuple[bytes, bytes]] = [rng.choice(shape.good_headers)]
        if rng.random() < 0.5:
            headers.append((b"content-type", rng.choice(CONTENT_TYPES)))
        hostile_part = rng.randrange(5)  # at least one part of every request is malformed
        if hostile_part == 0 or rng.random() < 0.1:
            headers.insert(rng.randrange(len(headers) + 1), rng.choice(HOSTILE_HEADERS))
        method = rng.choice(HOSTILE_METHODS) if hostile_part == 1 else rng.choice(METHODS)
        target_kind = 0 if hostile_part == 2 else rng.randrange(1, 4)
        ident = rng.choice(HOSTILE_SEGMENTS) if hostile_part == 3 else rng.choice(shape.ids)
        query = rng.choice(HOSTILE_QUERIES) if rng.random() < 0.2 else None
        if hostile_part == 3:
            query = rng.choice(UNREADABLE_QUERIES)
        body_kind = rng.randrange(2) if hostile_part == 4 else 0
        body = rng.choice(HOSTILE_BODIES) if hostile_part == 4 else b""
        if hostile_part == 4:
            method = rng.choice((b"POST", b"PUT"))
        yield parts.build(
            method,
            target_kind,
            rng.choice(shape.templates),
            ident,
            query,
            rng.choice(HOSTILE_TARGETS),
            headers,
            body_kind,
            body,
            rng.choice(shape.json_fields),
            rng.choice(HOSTILE_VALUES),
        )


# --- the servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    """One app under attack: how to reach it, what it must not change, how its errors look."""

    name: str
    app: ASGIApp
    shape: Shape
    snapshot: Callable[[], Any]
    records: Callable[[], int]
    check_error: Callable[[RawRequest, RawAnswer], None]
    allowed_5xx: Callable[[RawRequest, RawAnswer], bool] = lambda request, answer: False
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _before: Any = None

    def send(self, request: RawRequest) -> RawAnswer:
        return self.loop.run_until_complete(send(self.app, request))

    def attack(self, request: RawRequest) -> RawAnswer:
        """Send ``request``; assert no server error, a JSON error body in this server's
        format for a 4xx, and nothing changed (at most one new record) when refused."""
        if self._before is None:
            self._before = self.snapshot()
        before, recorded = self._before, self.records()
        answer = self.send(request)
        after = self._before = self.snapshot()
        if answer.status >= 500:
            assert self.allowed_5xx(request, answer), (
                f"{self.name} answered {answer.status} {answer.body[:300]!r} to {request!r}"
            )
        if answer.status >= 400:
            if answer.status < 500:
                self.check_error(request, answer)
            assert after == before, f"{self.name}: state changed by {request!r}"
            assert self.records() - recorded in (0, 1), f"{self.name}: records by {request!r}"
        return answer


def _content_type_json(answer: RawAnswer) -> bool:
    return any(k.lower() == b"content-type" and b"json" in v for k, v in answer.headers)


def _partner_error(request: RawRequest, answer: RawAnswer) -> None:
    assert _content_type_json(answer), answer.headers
    data = answer.json()
    headers = {k.lower(): v for k, v in answer.headers}
    assert b"x-request-id" in headers
    if isinstance(data.get("error"), str):  # OAuth's own shape, on /oauth/token only
        assert request.target.split(b"?")[0].endswith(b"/oauth/token"), (request, data)
        assert isinstance(data.get("error_description", ""), str)
        return
    error = data["error"]
    assert error["status"] == answer.status
    assert isinstance(error["code"], str)
    assert error["code"].isupper()
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["request_id"] == headers[b"x-request-id"].decode()
    assert isinstance(error["details"], list)


def _sdk_error(request: RawRequest, answer: RawAnswer) -> None:
    assert _content_type_json(answer), answer.headers
    data = answer.json()
    assert data["status"] in ("error", "not_implemented"), data
    assert isinstance(data.get("message", ""), str)


def partner_server() -> tuple[Server, Partner]:
    """A partner with a ready segment holding members, and the tokens that open it."""
    partner = Partner()
    token = partner.seed_access_token(["acc-1"])
    credentials = partner.credentials
    with httpx.Client(transport=partner.transport(), base_url=PARTNER_URL) as client:
        auth = {"Authorization": f"Bearer {token}"}
        segment = client.post("/v1/accounts/acc-1/segments", json={"name": "s"}, headers=auth)
        segment_id = segment.json()["id"]
        partner.clock.advance(61)
        maid = {"type": "MAID", "value": "6f1c2b9e-3d4a-4b8e-9f10-1234567890ab"}
        upload = {"operations": [{"action": "ADD", "identifiers": [maid]}]}
        client.post(f"/v1/segments/{segment_id}/members", json=upload, headers=auth)
    templates = tuple(r.template for r in (*PARTNER_ROUTES, *ADMIN_ROUTES))
    basic = base64.b64encode(f"{credentials.client_id}:{credentials.client_secret}".encode())
    shape = Shape(
        templates=(*templates, "/openapi.json"),
        ids=(segment_id.encode(), b"acc-1", b"acc-2", b"seg-999999"),
        good_headers=(
            (b"authorization", f"Bearer {token}".encode()),
            (b"authorization", f"Bearer {partner.admin_token}".encode()),
            (b"x-admin-token", partner.admin_token.encode()),
            (b"authorization", b"Basic " + basic),
            (b"content-type", b"application/json"),
        ),
        json_fields=(
            "name",
            "description",
            "operations",
            "partial_failure",
            "grant_type",
            "refresh_token",
            "client_id",
            "client_secret",
            "seconds",
            "seed",
            "access_token_lifetime",
        ),
    )

    def snapshot() -> Any:
        return (partner.clock.now(), json.dumps(partner.state(include_members=True)))

    def records() -> int:
        count = len(partner.ledger)
        if count:  # what the ledger stores always renders back as UTF-8 JSON
            last = partner.ledger._entries[-1]  # the newest entry only: O(1) per request
            json.dumps(last.to_json(), ensure_ascii=False).encode()
        return count

    return Server("partner", partner.asgi_app(), shape, snapshot, records, _partner_error), partner


def dialect_server(dialect: str) -> tuple[Server, Partner]:
    """A LinkedIn or Meta partner with a ready segment holding a member, under attack."""
    partner = Partner(dialect=dialect)
    token = partner.seed_access_token(["acc-1"])
    credentials = partner.credentials
    segment = partner.create_segment("acc-1", "s", ready=True)
    number = int(segment[4:])
    maid = "6f1c2b9e-3d4a-4b8e-9f10-1234567890ab"
    partner.backend.segments[segment].members[("MAID", maid)] = False
    if dialect == "linkedin":
        from fake_partner.faces.linkedin import ROUTES

        templates = tuple(route.template for route in ROUTES)
        ident = str(1_000_000 + number).encode()
        headers: tuple[tuple[bytes, bytes], ...] = (
            (b"linkedin-version", b"202601"),
            (b"x-restli-protocol-version", b"2.0.0"),
            (b"x-restli-method", b"BATCH_CREATE"),
        )
        fields = ("elements", "name", "account", "type", "sourcePlatform", "destinations")
        check = _linkedin_error
    else:
        templates = (
            "/v25.0/act_{id}/customaudiences",
            "/v25.0/{id}",
            "/v25.0/{id}/users",
            "/v25.0/oauth/access_token",
            "/v25.0/dialog/oauth",
            "/v17.0/{id}",
        )
        ident = f"2385{number:013d}".encode()
        headers = ((b"content-type", b"application/x-www-form-urlencoded"),)
        fields = ("payload", "session", "name", "customer_file_source", "access_token", "fields")
        check = _meta_error
    basic = base64.b64encode(f"{credentials.client_id}:{credentials.client_secret}".encode())
    shape = Shape(
        templates=(*templates, *(r.template for r in ADMIN_ROUTES)),
        ids=(ident, b"acc-1", b"acc-2", b"999"),
        good_headers=(
            (b"authorization", f"Bearer {token}".encode()),
            (b"authorization", f"Bearer {partner.admin_token}".encode()),
            (b"authorization", b"Basic " + basic),
            (b"content-type", b"application/json"),
            *headers,
        ),
        json_fields=fields,
    )

    def snapshot() -> Any:
        return (partner.clock.now(), json.dumps(partner.state(include_members=True)))

    def records() -> int:
        count = len(partner.ledger)
        if count:
            json.dumps(partner.ledger._entries[-1].to_json(), ensure_ascii=False).encode()
        return count

    app = partner.asgi_app()
    return Server(f"partner-{dialect}", app, shape, snapshot, records, check), partner


def _admin_or(request: RawRequest, answer: RawAnswer) -> bool:
    """Admin answers keep the generic shape in every dialect (a request refused unread,
    before its target is looked at, has the face's shape)."""
    error = answer.json().get("error")
    if request.target.startswith(b"/_admin") and isinstance(error, dict) and "status" in error:
        _partner_error(request, answer)
        return True
    return False


def _linkedin_error(request: RawRequest, answer: RawAnswer) -> None:
    assert _content_type_json(answer), answer.headers
    if _admin_or(request, answer):
        return
    data = answer.json()
    if isinstance(data.get("error"), str):  # OAuth's own shape, on the token endpoint only
        assert request.target.split(b"?")[0].endswith(b"/oauth/v2/accessToken"), (request, data)
        return
    assert set(data) == {"status", "serviceErrorCode", "code", "message"}, data
    assert data["status"] == answer.status
    assert isinstance(data["code"], str)
    assert data["message"]


def _meta_error(request: RawRequest, answer: RawAnswer) -> None:
    assert _content_type_json(answer), answer.headers
    if _admin_or(request, answer):
        return
    error = answer.json()["error"]
    assert isinstance(error["code"], int), error
    assert error["type"] in ("OAuthException", "GraphMethodException")
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["fbtrace_id"], str)


def gateway_world() -> Gateway:
    gateway = Gateway()
    gateway.add_feed(FeedSetup(FEED, properties={"partner_account_id": "acc-1"}))
    gateway.set_credentials(DESTINATION, "OAUTH2", {"refresh_token": "rt-secret-value"})
    gateway.set_configuration_file("technical_config", {"a": 1})
    gateway.set_data_file("mics://data_file/x", b"data")
    return gateway


def gateway_snapshot(gateway: Gateway) -> Any:
    """Everything the gateway stores (read from its private maps: nothing may slip by)."""
    feeds = {
        feed_id: (
            feed.resource.model_dump_json(),
            feed.segment.model_dump_json(),
            [prop.model_dump_json() for prop in feed.properties.values()],
        )
        for feed_id, feed in gateway._feeds.items()
    }
    return (
        feeds,
        dict(gateway._configuration_files),
        dict(gateway._data_files),
        {k: v.model_dump_json() for k, v in gateway._credentials.items()},
        {k: [realm.model_dump_json() for realm in v] for k, v in gateway._realms.items()},
        len(gateway.property_writes),
    )


def gateway_server() -> tuple[Server, Gateway]:
    gateway = gateway_world()
    basic = base64.b64encode(f"{gateway.worker_id}:{gateway.token}".encode())
    base = "/v1/audience_segment_external_feeds/{feed_id}"
    shape = Shape(
        templates=(
            base,
            base + "/properties",
            base + "/properties/technical_name=partner_account_id",
            base + "/audience_segment",
            "/v1/configuration/technical_name=technical_config",
            "/v1/data_file/data",
            "/v1/feed_destinations/{id}/credentials",
            "/v1/datamarts/{id}/user_agent_identifier_realm_selections",
        ),
        ids=(FEED.encode(), DESTINATION.encode(), b"1500"),
        good_headers=(
            (b"authorization", b"Basic " + basic),
            (b"content-type", b"application/json"),
        ),
        json_fields=("technical_name", "value", "property_type", "scheme", "credentials", "origin"),
    )
    server = Server(
        "gateway",
        gateway.asgi_app(),
        shape,
        lambda: gateway_snapshot(gateway),
        lambda: len(gateway.calls),
        _sdk_error,
    )
    return server, gateway


@contextmanager
def connector_server() -> Iterator[tuple[Server, ReferenceConnector, Partner, Gateway]]:
    """The batched reference connector on the base, its gateway and partner in-process."""
    partner = Partner()
    gateway = gateway_world()
    secrets = partner.credentials
    gateway.set_configuration_file(
        "technical_config",
        {"partner_endpoint": PARTNER_URL, "partner_api_version": "v1"},
    )
    gateway.set_configuration_file(
        "credentials",
        {
            "client_id": secrets.client_id,
            "client_secret": secrets.client_secret,
            "refresh_token": secrets.refresh_token,
        },
    )
    router = respx.MockRouter(assert_all_called=False)
    partner.mount(router, PARTNER_URL)
    gateway.mount(router)
    settings = PluginSettings(worker_id=gateway.worker_id, authentication_token=gateway.token)
    connector = ReferenceConnector(settings, clock=partner.clock.now)
    shape = Shape(
        templates=tuple(r.path for r in ROUTES),
        ids=(b"x",),
        good_headers=((b"content-type", b"application/json"), (b"accept", b"*/*")),
        json_fields=(
            "feed_id",
            "datamart_id",
            "segment_id",
            "session_id",
            "user_identifiers",
            "ts",
            "operation",
            "batch_content",
            "context",
            "level",
            "feed_destination_id",
            "action",
        ),
    )
    feed_paths = {r.path.encode() for r in ROUTES if r.method == "POST" and r.request_model}

    def snapshot() -> Any:
        return (
            connector.log_level,
            sorted(connector.contexts._entries),
            gateway_snapshot(gateway),
            json.dumps(partner.state(include_members=True)),
            len(partner.ledger),
            len(gateway.calls),
        )

    def missing_body(request: RawRequest, answer: RawAnswer) -> bool:
        """The contract's one 5xx for a malformed request: a feed route's missing body."""
        path = request.target.split(b"?")[0].rstrip(b"/")
        return (
            answer.status == 500
            and path in feed_paths
            and answer.json() == dict(MISSING_BODY_ANSWER)
        )

    server = Server(
        "connector", connector, shape, snapshot, lambda: 0, _sdk_error, allowed_5xx=missing_body
    )
    with router:
        yield server, connector, partner, gateway
