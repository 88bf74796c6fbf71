"""The connector base: an ASGI app serving every route of ``contracts.routes`` as the Node SDK
does (parsing, status -> HTTP code, delay header, context cache, error answers); subclasses
override the ``on_*`` methods."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope, Send

from contracts.gateway import FeedDestinationCredentials
from contracts.plugin_api import (
    AuthenticationRequest,
    AuthenticationResponse,
    AuthenticationStatusQueryRequest,
    AuthenticationStatusQueryResponse,
    BatchUpdateRequest,
    BatchUpdateResponse,
    DynamicPropertyValuesQueryRequest,
    DynamicPropertyValuesQueryResponse,
    ExternalSegmentConnectionRequest,
    ExternalSegmentConnectionResponse,
    ExternalSegmentCreationRequest,
    ExternalSegmentCreationResponse,
    LogoutRequest,
    LogoutResponse,
    OAuthRedirectUrlRequest,
    OAuthRedirectUrlResponse,
    TestAuthenticationRequest,
    TestAuthenticationResponse,
    TroubleshootRequest,
    TroubleshootResponse,
    UserSegmentUpdateRequest,
    UserSegmentUpdateResponse,
)
from contracts.routes import (
    DELAY_HEADER,
    MISSING_BODY_ANSWER,
    MISSING_BODY_CODE,
    NON_BATCHED_BATCH_UPDATE_ANSWER,
    NON_BATCHED_BATCH_UPDATE_CODE,
    SDK_ERROR_CODE,
    TROUBLESHOOT_ACTIONS,
    Route,
    route,
)
from fake_partner.inbound import UnreadableRequestError, check_request, json_value
from harness import __version__
from harness.sdk.context import BaseInstanceContext, Clock, ContextCache, PropertiesWrapper
from harness.sdk.gateway_client import GatewayClient
from harness.sdk.settings import PluginSettings

__all__ = [
    "AudienceFeedConnector",
    "BatchedAudienceFeedConnector",
    "CtxT",
    "PluginError",
]

CtxT = TypeVar("CtxT", bound=BaseInstanceContext)
M = TypeVar("M", bound=BaseModel)

logger = logging.getLogger("harness.sdk")

_Headers = list[tuple[bytes, bytes]]
_Handler = Callable[[bytes], Awaitable["_Answer"]]

_COMPACT = (",", ":")
_ENCODE = json.JSONEncoder(separators=_COMPACT).encode
"""Compact JSON of plain values: one encoder made once (``json.dumps`` with ``separators``
builds a new ``JSONEncoder`` on every call)."""
_JSON_HEADERS: _Headers = [(b"content-type", b"application/json")]
_DELAY = DELAY_HEADER.encode("ascii")
_LEVELS = {
    "ERROR": logging.ERROR,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "INFO": logging.INFO,
    "HTTP": logging.INFO,
    "VERBOSE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "SILLY": logging.DEBUG,
}

_BatchRequest = BatchUpdateRequest[Any]
_R_CREATION = route("external_segment_creation")
_R_CONNECTION = route("external_segment_connection")
_R_UPDATE = route("user_segment_update")
_R_BATCH = route("batch_update")
_R_TROUBLESHOOT = route("troubleshoot")
_R_AUTH_STATUS = route("authentication_status")
_R_AUTH = route("authentication")
_R_LOGOUT = route("logout")
_R_DYNAMIC = route("dynamic_property_values")
_R_TEST_AUTH = route("test_authentication")
_R_OAUTH_URL = route("oauth_redirect_url")
_R_INIT = route("init")
_R_STATUS = route("status")
_R_LOG_GET = route("log_level_get")
_R_LOG_PUT = route("log_level_put")
_R_METADATA = route("metadata")


class PluginError(Exception):
    """An error a handler raises on purpose; ``visibility`` is used by creation answers."""

    def __init__(self, message: str, *, visibility: str = "PRIVATE") -> None:
        super().__init__(message)
        self.visibility = visibility


class _Answer:
    __slots__ = ("body", "code", "headers")

    def __init__(self, code: int, body: bytes = b"", headers: _Headers | None = None) -> None:
        self.code = code
        self.body = body
        self.headers = headers if headers is not None else []


class _EarlyAnswerError(Exception):
    """Ends a request before its handler runs (missing body, invalid body)."""

    def __init__(self, answer: _Answer) -> None:
        super().__init__("early answer")
        self.answer = answer


def _json_answer(code: int, payload: Any, delay: float | None = None) -> _Answer:
    headers = list(_JSON_HEADERS)
    if delay:
        headers.append((_DELAY, _delay_text(delay).encode("ascii")))
    body = payload if isinstance(payload, bytes) else _ENCODE(payload).encode()
    return _Answer(code, body, headers)


def _delay_text(delay: float) -> str:
    """The delay as JavaScript's ``Number.toString`` writes it (``1000``, not ``1000.0``)."""
    if isinstance(delay, float) and delay.is_integer():
        return str(int(delay))
    return str(delay)


def _sdk_error(message: str, **extra: str) -> _Answer:
    return _json_answer(SDK_ERROR_CODE, {"status": "error", "message": message, **extra})


def _refused(code: int, message: str) -> _Answer:
    """A request the connector base cannot read or parse: a 4xx in the SDK's error shape."""
    return _json_answer(code, {"status": "error", "message": message})


MAX_LEVEL_LENGTH = 32
"""Longest log level ``PUT /v1/log_level`` stores (the SDK's are ERROR ... SILLY)."""
MAX_BODY_BYTES = 64 * 1024 * 1024
"""The most the connector base reads of one request body; past it, 413."""


_MISSING_BODY = _Answer(
    MISSING_BODY_CODE,
    json.dumps(dict(MISSING_BODY_ANSWER), separators=_COMPACT).encode(),
    list(_JSON_HEADERS),
)


def _is_missing(body: bytes) -> bool:
    """The SDK's empty-body filter: no body, or a JSON body that is empty (``{}``, ``[]``)."""
    if not body.strip():
        return True
    try:
        return not json_value(body)
    except UnreadableRequestError:
        return False


def _parse(model: type[M], r: Route, body: bytes) -> M:
    """The request of route ``r``, read strictly (``fake_partner.inbound.json_value``).

    A missing or empty body is the SDK's 500 ``Missing request body`` (the contract); a body
    that is not strict JSON, not an object, or not the route's request is a 400.
    """
    if not body.strip():
        raise _EarlyAnswerError(_MISSING_BODY)
    try:
        payload = json_value(body, f"request body of {r.path}")
    except UnreadableRequestError as refusal:
        raise _EarlyAnswerError(_refused(400, refusal.message)) from None
    if not payload:
        raise _EarlyAnswerError(_MISSING_BODY)
    if not isinstance(payload, dict):
        raise _EarlyAnswerError(
            _refused(
                400,
                f"request body of {r.path} must be a JSON object, got {type(payload).__name__}",
            )
        )
    try:
        return model.model_validate_json(body)  # the body is strict JSON: validate it fast
    except ValidationError as err:
        raise _EarlyAnswerError(_refused(400, _invalid_request_message(r, err))) from None


def _invalid_request_message(r: Route, err: ValidationError) -> str:
    errors = err.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "(body)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid request body for {r.path}: field {where!r}: {first['msg']}{more}"


def _wire_fields(value: Any) -> dict[str, Any]:
    """``json.dumps`` hook writing a wire model as ``contracts.to_wire`` does (None optionals
    dropped, extras kept, aliases used); nested models come back through the hook."""
    if not isinstance(value, BaseModel):
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    fields = type(value).__pydantic_fields__
    out: dict[str, Any] = {}
    for name, item in value.__dict__.items():
        field = fields.get(name)
        if field is None:
            out[name] = item
        elif item is not None or field.default is not None:
            out[field.alias or name] = item
    extra = value.__pydantic_extra__
    if extra:
        out.update(extra)
    return out


_ENCODE_WIRE = json.JSONEncoder(separators=_COMPACT, default=_wire_fields).encode
"""Compact wire JSON of a model, with ``_wire_fields`` as the hook; made once."""


def _dump(model: BaseModel) -> bytes:
    """``model`` as compact wire JSON; falls back to pydantic for values json cannot write.

    The stdlib's C encoder with ``_wire_fields`` as its hook: ~1.6x faster than
    ``model_dump_json`` here (whose ``WireModel`` wrap serializer calls back into Python
    for every nested model) and than ``json.dumps(default=...)`` (a new encoder per call).
    """
    try:
        return _ENCODE_WIRE(model).encode()
    except (TypeError, ValueError):
        return model.model_dump_json().encode()


def _error_message(err: BaseException) -> str:
    text = str(err)
    return text if text else type(err).__name__


class AudienceFeedConnector(ABC, Generic[CtxT]):
    """A non-batched connector (the SDK's ``AudienceFeedConnectorBasePlugin``), an ASGI app.

    ``clock`` (seconds, default ``time.monotonic``) times the context cache: 10-11 min as the SDK.
    """

    batched: ClassVar[bool] = False
    context_ttl: ClassVar[float] = 600.0
    context_ttl_jitter: ClassVar[float] = 0.1

    def __init__(
        self,
        settings: PluginSettings | None = None,
        *,
        clock: Clock | None = None,
        gateway_http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings if settings is not None else PluginSettings.from_env()
        self.clock: Clock = clock if clock is not None else time.monotonic
        self.gateway = GatewayClient(self.settings, http=gateway_http)
        self.log_level = "INFO"
        self.contexts: ContextCache[CtxT] = ContextCache(
            self.instance_context_builder,
            clock=self.clock,
            ttl=self.context_ttl,
            jitter=self.context_ttl_jitter,
        )
        self._routes: dict[tuple[str, str], _Handler] = self._route_table()

    # ------------------------------------------------------------------ to override

    @abstractmethod
    async def instance_context_builder(self, feed_id: str) -> CtxT:
        """Build the feed's context; start from ``await self.base_instance_context(feed_id)``."""

    @abstractmethod
    async def on_external_segment_creation(
        self, request: ExternalSegmentCreationRequest, ctx: CtxT
    ) -> ExternalSegmentCreationResponse:
        """The feed was activated: create or find the partner segment."""

    @abstractmethod
    async def on_external_segment_connection(
        self, request: ExternalSegmentConnectionRequest, ctx: CtxT
    ) -> ExternalSegmentConnectionResponse:
        """Is the partner segment usable? ``external_segment_not_ready_yet`` means poll again."""

    @abstractmethod
    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: CtxT
    ) -> UserSegmentUpdateResponse:
        """One user enters or leaves the segment: deliver (or send) its identifiers."""

    async def on_troubleshoot(
        self, request: TroubleshootRequest, ctx: CtxT
    ) -> TroubleshootResponse:
        """Troubleshoot the feed; default ``not_implemented``."""
        return TroubleshootResponse(status="not_implemented")

    async def on_authentication_status_query(
        self, request: AuthenticationStatusQueryRequest
    ) -> AuthenticationStatusQueryResponse:
        """Is the user authenticated at the partner; default ``not_implemented``."""
        return AuthenticationStatusQueryResponse(status="not_implemented")

    async def on_authentication(self, request: AuthenticationRequest) -> AuthenticationResponse:
        """Exchange the partner's redirect params; may add ``refresh_token`` (never sent back)."""
        return AuthenticationResponse(status="not_implemented")

    async def on_logout(self, request: LogoutRequest) -> LogoutResponse:
        """Forget the user's credentials; default ``not_implemented``."""
        return LogoutResponse(status="not_implemented")

    async def on_dynamic_property_values_query(
        self, request: DynamicPropertyValuesQueryRequest
    ) -> DynamicPropertyValuesQueryResponse:
        """Choices for the feed form's properties; default ``not_implemented``."""
        return DynamicPropertyValuesQueryResponse(status="not_implemented")

    async def on_test_authentication(
        self, request: TestAuthenticationRequest, credentials: FeedDestinationCredentials
    ) -> TestAuthenticationResponse:
        """Check the feed destination's credentials; default ``not_implemented``."""
        return TestAuthenticationResponse(status="not_implemented")

    async def on_oauth_redirect_url(
        self, request: OAuthRedirectUrlRequest
    ) -> OAuthRedirectUrlResponse | None:
        """The partner login URL for a feed destination; None (default) is ``not_implemented``."""
        return None

    def metadata(self) -> dict[str, Any]:
        """``GET /v1/metadata``: runtime and build, from ``PLUGIN_*`` variables as the SDK does."""
        env = os.environ
        return {
            "runtime": "python",
            "runtime_version": platform.python_version(),
            "group_id": env.get("PLUGIN_GROUP_ID"),
            "artifact_id": env.get("PLUGIN_ARTIFACT_ID"),
            "plugin_type": env.get("PLUGIN_TYPE"),
            "plugin_version": env.get("PLUGIN_VERSION"),
            "plugin_build": env.get("PLUGIN_BUILD"),
            "dependencies": {"feed-harness": __version__},
        }

    async def aclose(self) -> None:
        """Release outbound clients (called on ASGI lifespan shutdown)."""
        await self.gateway.aclose()

    # ------------------------------------------------------------------ helpers for subclasses

    async def base_instance_context(self, feed_id: str) -> BaseInstanceContext:
        """The SDK's default context: the feed resource and its properties."""
        feed = await self.gateway.fetch_feed(feed_id)
        properties = await self.gateway.fetch_feed_properties(feed_id)
        return BaseInstanceContext(feed=feed, feed_properties=PropertiesWrapper(properties))

    async def get_instance_context(self, feed_id: str, *, force_refresh: bool = False) -> CtxT:
        """The cached context of ``feed_id`` (rebuilt when expired or ``force_refresh``)."""
        return await self.contexts.get(feed_id, force_refresh=force_refresh)

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._serve_http(scope, receive, send)
        elif kind == "lifespan":
            await self._serve_lifespan(receive, send)

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _serve_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
        query: bytes = scope.get("query_string", b"")
        try:
            method = check_request(
                scope["method"], raw_path + (b"?" + query if query else b""), scope["headers"]
            )
        except UnreadableRequestError as refusal:
            await self._send(send, _refused(refusal.status, refusal.message))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await self._send(
                    send, _refused(413, f"request body is over {MAX_BODY_BYTES} bytes")
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        handler = self._routes.get((method, path))
        if handler is None:
            answer = _json_answer(404, {"status": "error", "message": f"Cannot {method} {path}"})
        else:
            answer = await handler(body)
        await self._send(send, answer)

    @staticmethod
    async def _send(send: Send, answer: _Answer) -> None:
        headers = [*answer.headers, (b"content-length", str(len(answer.body)).encode("ascii"))]
        await send({"type": "http.response.start", "status": answer.code, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def _route_table(self) -> dict[tuple[str, str], _Handler]:
        def guarded(handler: _Handler, *, creation: bool = False) -> _Handler:
            async def run(body: bytes) -> _Answer:
                try:
                    return await handler(body)
                except _EarlyAnswerError as early:
                    return early.answer
                except Exception as err:
                    logger.error("handler failed: %s", _error_message(err))
                    if creation:
                        visibility = getattr(err, "visibility", None)
                        return _sdk_error(
                            _error_message(err),
                            visibility=visibility if visibility == "PUBLIC" else "PRIVATE",
                        )
                    return _sdk_error(_error_message(err))

            return run

        table: dict[Route, _Handler] = {
            _R_CREATION: guarded(self._creation, creation=True),
            _R_CONNECTION: guarded(self._connection),
            _R_UPDATE: guarded(self._update),
            _R_BATCH: guarded(self._batch_update),
            _R_TROUBLESHOOT: guarded(self._troubleshoot),
            _R_AUTH_STATUS: guarded(self._authentication_status),
            _R_AUTH: guarded(self._authentication),
            _R_LOGOUT: guarded(self._logout),
            _R_DYNAMIC: guarded(self._dynamic_property_values),
            _R_TEST_AUTH: guarded(self._test_authentication),
            _R_OAUTH_URL: guarded(self._oauth_redirect_url),
            _R_INIT: self._init,
            _R_STATUS: self._status,
            _R_LOG_GET: self._log_level_get,
            _R_LOG_PUT: self._log_level_put,
            _R_METADATA: guarded(self._metadata),
        }
        return {(r.method, r.path): handler for r, handler in table.items()}

    def _overrides(self, name: str) -> bool:
        return getattr(type(self), name) is not getattr(AudienceFeedConnector, name)

    def _require_ready(self) -> None:
        if not self.settings.is_ready:
            raise PluginError(
                "Plugin not initialized: set PLUGIN_WORKER_ID and PLUGIN_AUTHENTICATION_TOKEN"
            )

    # ------------------------------------------------------------------ feed routes

    async def _creation(self, body: bytes) -> _Answer:
        request = _parse(ExternalSegmentCreationRequest, _R_CREATION, body)
        self._require_ready()
        ctx = await self.get_instance_context(request.feed_id, force_refresh=True)
        response = await self.on_external_segment_creation(request, ctx)
        out: dict[str, Any] = {"status": response.status, "visibility": response.visibility}
        if response.message:
            out["message"] = response.message
        return _json_answer(_R_CREATION.code_for(response.status), out)

    async def _connection(self, body: bytes) -> _Answer:
        request = _parse(ExternalSegmentConnectionRequest, _R_CONNECTION, body)
        self._require_ready()
        ctx = await self.get_instance_context(request.feed_id)
        response = await self.on_external_segment_connection(request, ctx)
        out: dict[str, Any] = {"status": response.status}
        if response.message:
            out["message"] = response.message
        return _json_answer(_R_CONNECTION.code_for(response.status), out)

    async def _update(self, body: bytes) -> _Answer:
        request = _parse(UserSegmentUpdateRequest, _R_UPDATE, body)
        ctx = await self.get_instance_context(request.feed_id)
        response = await self.on_user_segment_update(request, ctx)
        return _json_answer(
            _R_UPDATE.code_for(response.status), _dump(response), response.next_msg_delay_in_ms
        )

    async def _batch_update(self, body: bytes) -> _Answer:
        if _is_missing(body):
            return _MISSING_BODY
        return _json_answer(NON_BATCHED_BATCH_UPDATE_CODE, dict(NON_BATCHED_BATCH_UPDATE_ANSWER))

    async def _troubleshoot(self, body: bytes) -> _Answer:
        request = _parse(TroubleshootRequest, _R_TROUBLESHOOT, body)
        if request.action not in TROUBLESHOOT_ACTIONS or not self._overrides("on_troubleshoot"):
            message = (
                f"Action {request.action} not supported"
                if request.action not in TROUBLESHOOT_ACTIONS
                else "troubleshoot is not implemented by this connector"
            )
            return _json_answer(
                _R_TROUBLESHOOT.code_for("not_implemented"),
                {"status": "not_implemented", "message": message},
            )
        ctx = await self.get_instance_context(request.feed_id)
        response = await self.on_troubleshoot(request, ctx)
        return _json_answer(
            _R_TROUBLESHOOT.code_for(response.status), response.model_dump_json().encode()
        )

    # ------------------------------------------------------------------ authentication routes

    async def _authentication_status(self, body: bytes) -> _Answer:
        request = _parse(AuthenticationStatusQueryRequest, _R_AUTH_STATUS, body)
        response = await self.on_authentication_status_query(request)
        return _json_answer(
            _R_AUTH_STATUS.code_for(response.status), response.model_dump_json().encode()
        )

    async def _authentication(self, body: bytes) -> _Answer:
        request = _parse(AuthenticationRequest, _R_AUTH, body)
        response = await self.on_authentication(request)
        if request.feed_destination_id and response.status == "ok":
            refresh_token = getattr(response, "refresh_token", None)
            if not isinstance(refresh_token, str) or not refresh_token:
                raise PluginError(
                    "on_authentication answered ok for feed destination "
                    f"{request.feed_destination_id} without a refresh_token: return the partner's "
                    "refresh_token so it can be stored as the destination's OAUTH2 credentials"
                )
            await self.gateway.upsert_feed_destination_credentials(
                request.feed_destination_id,
                FeedDestinationCredentials(
                    scheme="OAUTH2", credentials={"refresh_token": refresh_token}
                ),
            )
        out = response.model_dump(mode="json")
        out.pop("refresh_token", None)
        out.pop("credentials", None)
        return _json_answer(_R_AUTH.code_for(response.status), out)

    async def _logout(self, body: bytes) -> _Answer:
        request = _parse(LogoutRequest, _R_LOGOUT, body)
        response = await self.on_logout(request)
        return _json_answer(
            _R_LOGOUT.code_for(response.status), response.model_dump_json().encode()
        )

    async def _dynamic_property_values(self, body: bytes) -> _Answer:
        request = _parse(DynamicPropertyValuesQueryRequest, _R_DYNAMIC, body)
        response = await self.on_dynamic_property_values_query(request)
        return _json_answer(
            _R_DYNAMIC.code_for(response.status), response.model_dump_json().encode()
        )

    async def _test_authentication(self, body: bytes) -> _Answer:
        request = _parse(TestAuthenticationRequest, _R_TEST_AUTH, body)
        if not self._overrides("on_test_authentication"):
            return _json_answer(
                _R_TEST_AUTH.code_for("not_implemented"), {"status": "not_implemented"}
            )
        try:
            credentials = await self.gateway.fetch_feed_destination_credentials(
                request.feed_destination_id
            )
        except Exception as err:
            logger.error("fetching feed destination credentials failed: %s", err)
            credentials = None
        if credentials is None:
            return _sdk_error("Could not fetch feed destination credentials")
        response = await self.on_test_authentication(request, credentials)
        return _json_answer(
            _R_TEST_AUTH.code_for(response.status), response.model_dump_json().encode()
        )

    async def _oauth_redirect_url(self, body: bytes) -> _Answer:
        request = _parse(OAuthRedirectUrlRequest, _R_OAUTH_URL, body)
        response = await self.on_oauth_redirect_url(request)
        if response is None:
            return _json_answer(
                400,
                {"status": "not_implemented", "message": "oauth_redirect_url is not implemented"},
            )
        carried = httpx.URL(response.login_url).params.get_list("feed_destination_id")
        if carried != [request.feed_destination_id]:
            raise PluginError(
                f"login_url must carry the query parameter feed_destination_id="
                f"{request.feed_destination_id}, it carries {carried or 'none'}"
            )
        return _json_answer(_R_OAUTH_URL.code_for(None), response.model_dump_json().encode())

    # ------------------------------------------------------------------ base routes

    async def _init(self, body: bytes) -> _Answer:
        return _Answer(_R_INIT.code_for(None))

    async def _status(self, body: bytes) -> _Answer:
        return _Answer(_R_STATUS.code_for(None) if self.settings.is_ready else 503)

    async def _log_level_get(self, body: bytes) -> _Answer:
        return _json_answer(_R_LOG_GET.code_for(None), {"level": self.log_level.upper()})

    async def _log_level_put(self, body: bytes) -> _Answer:
        try:
            payload = json_value(body, "request body of /v1/log_level") if body.strip() else None
        except UnreadableRequestError as refusal:
            return _refused(400, refusal.message)
        level = payload.get("level") if isinstance(payload, dict) else None
        if not isinstance(level, str) or not level or len(level) > MAX_LEVEL_LENGTH:
            return _refused(
                400,
                f'PUT /v1/log_level needs a JSON object {{"level": "<name>"}} with a level of 1 '
                f"to {MAX_LEVEL_LENGTH} characters, e.g. INFO or DEBUG",
            )
        self.log_level = level.upper()
        logger.setLevel(_LEVELS.get(self.log_level, logging.INFO))
        return _Answer(_R_LOG_PUT.code_for(None))

    async def _metadata(self, body: bytes) -> _Answer:
        return _json_answer(_R_METADATA.code_for(None), self.metadata())


class BatchedAudienceFeedConnector(AudienceFeedConnector[CtxT]):
    """A batched connector: ``user_segment_update`` returns ``BATCH_DELIVERY`` items that the
    platform sends back, grouped, to ``on_batch_update``.
    """

    batched: ClassVar[bool] = True

    @abstractmethod
    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: CtxT
    ) -> BatchUpdateResponse:
        """Send one batch to the partner; counts must add up to ``len(batch_content)``."""

    async def _batch_update(self, body: bytes) -> _Answer:
        request: BatchUpdateRequest[Any] = _parse(_BatchRequest, _R_BATCH, body)
        ctx = await self.get_instance_context(request.context.feed_id)
        response = await self.on_batch_update(request, ctx)
        out: dict[str, Any] = {
            "status": response.status,
            "sent_items_in_success": response.sent_items_in_success,
            "sent_items_in_error": response.sent_items_in_error,
        }
        if response.message:
            out["message"] = response.message
        return _json_answer(_R_BATCH.code_for(response.status), out, response.next_msg_delay_in_ms)
