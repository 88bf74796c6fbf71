"""The fake plugin gateway: per-feed state set from Python, one sync HTTP core answering it.

``Gateway.handle`` answers the outbound API of ``plugin-contract.md`` with the
``contracts.gateway`` envelopes; respx (``mount``/``mock``) and uvicorn (``asgi_app``,
``serve_gateway``) are two faces of that one function.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

import httpx
import respx
from starlette.types import ASGIApp

from contracts import to_wire
from contracts.gateway import (
    AudienceSegmentExternalFeed,
    AudienceSegmentResource,
    CredentialsScheme,
    FeedDestinationCredentials,
    PropertyModel,
    UserAgentIdentifierRealmSelection,
    find_string_property,
)
from fake_partner.mock import side_effect
from harness.gateway.bodies import (
    GatewayHttpError,
    credentials_from_body,
    error_answer,
    json_answer,
    property_from_body,
    unreadable,
)
from harness.gateway.feeds import (
    FeedSetup,
    FeedState,
    GatewaySetupError,
    UnknownFeedError,
    build_feed,
    build_realm,
    check_id,
)
from harness.gateway.records import GatewayCall, Observer, PropertyWrite

__all__ = ["DEFAULT_GATEWAY_URL", "DEFAULT_WORKER_ID", "JOURNAL_PATH", "Gateway"]

JOURNAL_PATH = "/_admin/requests"
"""The gateway's journal: ``GET`` it (same basic auth) for every call it answered."""

DEFAULT_GATEWAY_URL = "http://plugin-gateway.platform:8080"
"""The SDK's default gateway (``GATEWAY_HOST``/``GATEWAY_PORT`` unset)."""
DEFAULT_WORKER_ID = "worker-1"

_FEEDS = "audience_segment_external_feeds"
_BINARY = {"content-type": "application/octet-stream"}


@dataclass(slots=True)
class _Feed:
    resource: AudienceSegmentExternalFeed
    segment: AudienceSegmentResource
    properties: dict[str, PropertyModel]


_Handler = Callable[..., httpx.Response]


class Gateway:
    """The mediarithmics plugin gateway as a connector sees it, fed from Python.

    Every call needs basic auth ``worker_id:token``; it is recorded in ``calls`` and shown to
    the observers. State changes by connectors are recorded in ``property_writes``.
    """

    def __init__(self, worker_id: str = DEFAULT_WORKER_ID, token: str | None = None) -> None:
        if not worker_id or ":" in worker_id:
            raise GatewaySetupError(
                f"worker_id={worker_id!r} cannot be a basic-auth user: use a non-empty id "
                "without ':'"
            )
        if token is not None and not token:
            raise GatewaySetupError("token='' is empty: pass a non-empty token or None")
        self._worker_id = worker_id
        self._token = token if token is not None else secrets.token_urlsafe(24)
        self._lock = threading.Lock()
        self._feeds: dict[str, _Feed] = {}
        self._configuration_files: dict[str, bytes] = {}
        self._data_files: dict[str, bytes] = {}
        self._credentials: dict[str, FeedDestinationCredentials] = {}
        self._realms: dict[str, list[UserAgentIdentifierRealmSelection]] = {}
        self._calls: list[GatewayCall] = []
        self._property_writes: list[PropertyWrite] = []
        self._observers: list[Observer] = []

    def __repr__(self) -> str:
        return f"Gateway(worker_id={self._worker_id!r}, feeds={len(self._feeds)})"

    # ------------------------------------------------------------------ identity

    @property
    def worker_id(self) -> str:
        """The basic-auth user every call must send (``PLUGIN_WORKER_ID``)."""
        return self._worker_id

    @property
    def token(self) -> str:
        """The basic-auth password every call must send (``PLUGIN_AUTHENTICATION_TOKEN``)."""
        return self._token

    @property
    def env(self) -> dict[str, str]:
        """``PLUGIN_WORKER_ID`` and ``PLUGIN_AUTHENTICATION_TOKEN`` for a connector process."""
        return {"PLUGIN_WORKER_ID": self._worker_id, "PLUGIN_AUTHENTICATION_TOKEN": self._token}

    # ------------------------------------------------------------------ state from Python

    def add_feed(self, setup: FeedSetup) -> FeedState:
        """Serve a new feed (resource, segment, properties); returns its state."""
        resource, segment, properties = build_feed(setup)
        with self._lock:
            if resource.id in self._feeds:
                raise GatewaySetupError(
                    f"feed_id={resource.id!r} is already served: give each feed its own id"
                )
            self._feeds[resource.id] = _Feed(resource, segment, properties)
            return self._state(resource.id)

    def feed(self, feed_id: str) -> FeedState:
        """A copy of the feed's current state; ``UnknownFeedError`` if never added."""
        with self._lock:
            return self._state(feed_id)

    def property_value(self, feed_id: str, technical_name: str) -> str | None:
        """The feed's ``STRING`` property value now, or None when absent or of another type."""
        with self._lock:
            return find_string_property(self._feed(feed_id).properties.values(), technical_name)

    def set_configuration_file(self, name: str, data: bytes | Mapping[str, Any]) -> None:
        """Serve ``GET /v1/configuration/technical_name=NAME``; a mapping is served as JSON."""
        check_id("configuration file name", name)
        content = data if isinstance(data, bytes) else json.dumps(dict(data)).encode()
        with self._lock:
            self._configuration_files[name] = content

    def configuration_file(self, name: str) -> bytes | None:
        """The configuration file's bytes now (after PUTs), or None."""
        with self._lock:
            return self._configuration_files.get(name)

    def set_data_file(self, uri: str, data: bytes) -> None:
        """Serve ``GET /v1/data_file/data?uri=URI``."""
        if not uri:
            raise GatewaySetupError("data file uri='' is empty: use e.g. 'mics://data_file/x'")
        with self._lock:
            self._data_files[uri] = bytes(data)

    def set_credentials(
        self,
        feed_destination_id: str,
        scheme: CredentialsScheme,
        credentials: Mapping[str, Any],
    ) -> None:
        """Store a feed destination's credentials, as a connector's POST would."""
        check_id("feed_destination_id", feed_destination_id)
        try:
            stored = FeedDestinationCredentials(scheme=scheme, credentials=dict(credentials))
        except ValueError:
            raise GatewaySetupError(
                f"scheme={scheme!r} is not a credentials scheme: use OAUTH2, API_TOKEN or "
                "LOGIN_PASSWORD"
            ) from None
        with self._lock:
            self._credentials[feed_destination_id] = stored

    def credentials(self, feed_destination_id: str) -> FeedDestinationCredentials | None:
        """The destination's credentials now (after connector POSTs), or None."""
        with self._lock:
            stored = self._credentials.get(feed_destination_id)
            return None if stored is None else stored.model_copy(deep=True)

    def set_realms(self, datamart_id: str, realms: Sequence[object]) -> None:
        """Serve the datamart's realm selections: realm types, models or their wire dicts."""
        check_id("datamart_id", datamart_id)
        built = [build_realm(datamart_id, i, realm) for i, realm in enumerate(realms)]
        with self._lock:
            self._realms[datamart_id] = built

    # ------------------------------------------------------------------ records

    @property
    def calls(self) -> tuple[GatewayCall, ...]:
        """Every call answered so far, in order."""
        with self._lock:
            return tuple(self._calls)

    @property
    def property_writes(self) -> tuple[PropertyWrite, ...]:
        """Every accepted property write so far, in order."""
        with self._lock:
            return tuple(self._property_writes)

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer(request, response, error)`` after each answered request."""
        with self._lock:
            self._observers.append(observer)

    def remove_observer(self, observer: Observer) -> None:
        """Stop calling ``observer``; a no-op if it was not added."""
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)

    # ------------------------------------------------------------------ HTTP faces

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one gateway request; the one core of every face (respx, ASGI).

        A request that cannot be read (see :func:`harness.gateway.bodies.unreadable`) is
        refused before anything else: it changes nothing and is not added to ``calls``.
        """
        at = time.time()
        error: BaseException | None = None
        refusal = unreadable(request)
        if refusal is not None:
            response = error_answer(refusal)
            with self._lock:
                observers = list(self._observers)
            for observer in observers:
                observer(request, response, None)
            return response
        if request.url.path == JOURNAL_PATH:
            return self._journal(request)
        try:
            response = self._answer(request)
        except Exception as exc:  # a bug of the fake must reach the test, not hang it
            error = exc
            response = json_answer(
                500, {"status": "error", "message": f"fake gateway bug: {exc!r}"}
            )
        call = GatewayCall(
            request.method, request.url.path, request.url.query.decode(), response.status_code, at
        )
        with self._lock:
            self._calls.append(call)
            observers = list(self._observers)
        for observer in observers:
            observer(request, response, error)
        return response

    def mount(self, router: respx.Router, base_url: str = DEFAULT_GATEWAY_URL) -> respx.Route:
        """Route every request to ``base_url`` on ``router`` to ``handle``."""
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host or url.path not in ("", "/"):
            raise GatewaySetupError(
                f"base_url={base_url!r} is not a gateway base URL: use scheme://host[:port] "
                f"without a path, like {DEFAULT_GATEWAY_URL!r}"
            )
        pattern: dict[str, Any] = {"scheme": url.scheme, "host": url.host}
        if url.port is not None:
            pattern["port"] = url.port
        return router.route(**pattern).mock(side_effect=side_effect(self.handle))

    @contextmanager
    def mock(self, base_url: str = DEFAULT_GATEWAY_URL) -> Iterator[respx.MockRouter]:
        """A respx mock with only this gateway mounted; other hosts are refused."""
        with respx.mock(assert_all_called=False) as router:
            self.mount(router, base_url)
            yield router

    def asgi_app(self) -> ASGIApp:
        """This gateway as an ASGI app (for uvicorn or ``httpx.ASGITransport``)."""
        from harness.gateway.serving import asgi_app

        return asgi_app(self.handle)

    # ------------------------------------------------------------------ routing

    def _journal(self, request: httpx.Request) -> httpx.Response:
        """``GET /_admin/requests``: every call so far (method, path, query, status, time),
        behind the same basic auth; reading it is not itself recorded."""
        try:
            self._authenticate(request)
            if request.method != "GET":
                raise GatewayHttpError(405, f"{JOURNAL_PATH} answers GET only")
        except GatewayHttpError as refused:
            return error_answer(refused)
        calls = [{**dataclasses.asdict(call), "at": _iso(call.at)} for call in self.calls]
        return json_answer(200, {"status": "ok", "data": calls, "count": len(calls)})

    def _answer(self, request: httpx.Request) -> httpx.Response:
        try:
            self._authenticate(request)
            handler, args = self._route(request)
            return handler(*args)
        except GatewayHttpError as refused:
            return error_answer(refused)

    def _authenticate(self, request: httpx.Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise _unauthorized("no basic auth: send Authorization: Basic base64(worker_id:token)")
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, ValueError):  # ValueError: not ASCII base64, or not UTF-8
            raise _unauthorized("basic auth is not base64 of 'worker_id:token'") from None
        ok_user = secrets.compare_digest(user.encode(), self._worker_id.encode())
        ok_password = secrets.compare_digest(password.encode(), self._token.encode())
        if not (sep and ok_user and ok_password):
            raise _unauthorized(
                "wrong worker id or token: use PLUGIN_WORKER_ID and PLUGIN_AUTHENTICATION_TOKEN"
            )

    def _route(self, request: httpx.Request) -> tuple[_Handler, tuple[Any, ...]]:
        raw_path = request.url.raw_path.split(b"?", 1)[0].decode("ascii", "replace")
        parts = [unquote(p) for p in raw_path.strip("/").split("/")]
        method = request.method
        body = _body(request)
        routes: dict[str, _Handler]
        args: tuple[Any, ...]
        match parts:
            case ["v1", "audience_segment_external_feeds", feed_id]:
                routes, args = {"GET": self._get_feed}, (feed_id,)
            case ["v1", "audience_segment_external_feeds", feed_id, "properties"]:
                routes = {"GET": self._get_properties, "POST": self._create_property}
                args = (feed_id, body)
            case ["v1", "audience_segment_external_feeds", feed_id, "properties", named] if (
                named.startswith("technical_name=")
            ):
                routes = {"PUT": self._update_property}
                args = (feed_id, named.removeprefix("technical_name="), body)
            case ["v1", "audience_segment_external_feeds", feed_id, "audience_segment"]:
                routes, args = {"GET": self._get_segment}, (feed_id,)
            case ["v1", "configuration", named] if named.startswith("technical_name="):
                routes = {"GET": self._get_configuration, "PUT": self._put_configuration}
                args = (named.removeprefix("technical_name="), body)
            case ["v1", "data_file", "data"]:
                routes, args = {"GET": self._get_data_file}, (request.url.params.get("uri"),)
            case ["v1", "feed_destinations", destination_id, "credentials"]:
                routes = {"GET": self._get_credentials, "POST": self._upsert_credentials}
                args = (destination_id, body)
            case ["v1", "datamarts", datamart_id, "user_agent_identifier_realm_selections"]:
                routes, args = {"GET": self._get_realms}, (datamart_id,)
            case _:
                raise GatewayHttpError(
                    404,
                    f"no gateway route {method} {raw_path}: the gateway serves the calls of "
                    "plugin-contract.md (feeds, properties, audience_segment, configuration, "
                    "data_file, feed_destinations credentials, realm selections)",
                )
        handler = routes.get(method)
        if handler is None:
            allowed = ", ".join(routes)
            raise GatewayHttpError(
                405, f"{method} {raw_path} is not served: use {allowed}", {"allow": allowed}
            )
        return handler, args

    # ------------------------------------------------------------------ routes

    def _get_feed(self, feed_id: str) -> httpx.Response:
        with self._lock:
            return _data(self._http_feed(feed_id).resource)

    def _get_segment(self, feed_id: str) -> httpx.Response:
        with self._lock:
            return _data(self._http_feed(feed_id).segment)

    def _get_properties(self, feed_id: str, _body: bytes) -> httpx.Response:
        with self._lock:
            return _data_list(self._http_feed(feed_id).properties.values())

    def _create_property(self, feed_id: str, body: bytes) -> httpx.Response:
        what = f"POST properties of feed {feed_id}"
        with self._lock:
            feed = self._http_feed(feed_id)
            prop = property_from_body(body, what, path_name=None, existing=None)
            name = prop.technical_name
            if name in feed.properties:
                raise GatewayHttpError(
                    409,
                    f"{what}: property {name!r} already exists; update it with "
                    f"PUT /v1/{_FEEDS}/{feed_id}/properties/technical_name={name}",
                )
            return self._write(feed, feed_id, prop, "POST", old=None)

    def _update_property(self, feed_id: str, name: str, body: bytes) -> httpx.Response:
        what = f"PUT property {name!r} of feed {feed_id}"
        with self._lock:
            feed = self._http_feed(feed_id)
            existing = feed.properties.get(name)
            if existing is None:
                raise GatewayHttpError(
                    404,
                    f"{what}: feed {feed_id} has no property {name!r}; create it with "
                    f"POST /v1/{_FEEDS}/{feed_id}/properties",
                )
            if existing.writable is False:
                raise GatewayHttpError(
                    403,
                    f"{what}: the property is not writable (writable=false, "
                    f"origin {existing.origin}); the connector cannot change it",
                )
            prop = property_from_body(body, what, path_name=name, existing=existing)
            return self._write(feed, feed_id, prop, "PUT", old=existing)

    def _write(
        self,
        feed: _Feed,
        feed_id: str,
        prop: PropertyModel,
        method: Literal["POST", "PUT"],
        old: PropertyModel | None,
    ) -> httpx.Response:
        feed.properties[prop.technical_name] = prop
        self._property_writes.append(
            PropertyWrite(
                feed_id=feed_id,
                technical_name=prop.technical_name,
                method=method,
                property_type=prop.property_type,
                old_value=None if old is None else _wire_value(old),
                new_value=_wire_value(prop),
                at=time.time(),
            )
        )
        return _data_list(feed.properties.values())

    def _get_configuration(self, name: str, _body: bytes) -> httpx.Response:
        with self._lock:
            content = self._configuration_files.get(name)
        if content is None:
            raise GatewayHttpError(404, f"no configuration file {name!r} on this gateway")
        return httpx.Response(200, content=content, headers=_BINARY)

    def _put_configuration(self, name: str, body: bytes) -> httpx.Response:
        if not name:
            raise GatewayHttpError(400, "PUT configuration: empty technical_name in the path")
        with self._lock:
            self._configuration_files[name] = body
        return json_answer(
            200, {"status": "ok", "data": {"technical_name": name, "size": len(body)}}
        )

    def _get_data_file(self, uri: str | None) -> httpx.Response:
        if not uri:
            raise GatewayHttpError(
                400, "GET /v1/data_file/data needs the query parameter uri=<data file uri>"
            )
        with self._lock:
            content = self._data_files.get(uri)
        if content is None:
            raise GatewayHttpError(404, f"no data file at uri {uri!r} on this gateway")
        return httpx.Response(200, content=content, headers=_BINARY)

    def _get_credentials(self, destination_id: str, _body: bytes) -> httpx.Response:
        with self._lock:
            stored = self._credentials.get(destination_id)
            if stored is None:
                raise GatewayHttpError(
                    404, f"feed destination {destination_id!r} has no credentials stored"
                )
            return _data(stored)

    def _upsert_credentials(self, destination_id: str, body: bytes) -> httpx.Response:
        what = f"POST credentials of feed destination {destination_id}"
        stored = credentials_from_body(body, what, destination_id)
        with self._lock:
            self._credentials[destination_id] = stored
            return _data(stored)

    def _get_realms(self, datamart_id: str) -> httpx.Response:
        with self._lock:
            realms = self._realms.get(datamart_id)
            if realms is None and any(
                feed.segment.datamart_id == datamart_id for feed in self._feeds.values()
            ):
                realms = []
        if realms is None:
            raise GatewayHttpError(404, f"no datamart {datamart_id!r} on this gateway")
        return _data_list(realms)

    # ------------------------------------------------------------------ helpers (lock held)

    def _feed(self, feed_id: str) -> _Feed:
        feed = self._feeds.get(feed_id)
        if feed is None:
            raise UnknownFeedError(
                f"feed {feed_id!r} is not served by this gateway: add it with "
                "Gateway.add_feed(FeedSetup(feed_id=...))"
            )
        return feed

    def _http_feed(self, feed_id: str) -> _Feed:
        feed = self._feeds.get(feed_id)
        if feed is None:
            raise GatewayHttpError(404, f"no audience segment external feed {feed_id!r}")
        return feed

    def _state(self, feed_id: str) -> FeedState:
        feed = self._feed(feed_id)
        return FeedState(
            feed=feed.resource.model_copy(deep=True),
            segment=feed.segment.model_copy(deep=True),
            properties=tuple(p.model_copy(deep=True) for p in feed.properties.values()),
        )


def _unauthorized(message: str) -> GatewayHttpError:
    return GatewayHttpError(401, message, {"www-authenticate": 'Basic realm="plugin-gateway"'})


def _body(request: httpx.Request) -> bytes:
    try:
        return request.content
    except httpx.RequestNotRead:
        return request.read()


def _wire_value(prop: PropertyModel) -> Any:
    return to_wire(prop).get("value")


def _data(model: Any) -> httpx.Response:
    return json_answer(200, {"status": "ok", "data": to_wire(model)})


def _data_list(models: Any) -> httpx.Response:
    data = [to_wire(model) for model in models]
    return json_answer(200, {"status": "ok", "data": data, "count": len(data)})


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
