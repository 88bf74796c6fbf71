"""Faulty connectors: each is the reference connector with one fault, named after it.

Every class's docstring names the clause it breaks (``breaks: ID``) and, where the fault
cannot help it, the other clauses it also breaks (``also breaks: ...``). They are built
as ``Cls(settings)`` like any connector (``--connector tests.conformance.faulty:Name``).
Three kinds: a subclass overriding one ``on_*`` method, a reference connector whose
``PartnerClient`` misbehaves (:class:`_ClientFault`), or an ASGI wrapper rewriting the
reference app's answers (:class:`AnswerRewriter`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from starlette.types import Message, Receive, Scope, Send

from contracts.delivery import UpdateStat
from contracts.gateway import string_property
from contracts.identifiers import UserEmailIdentifier
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
    TroubleshootRequest,
    TroubleshootResponse,
    UserSegmentUpdateRequest,
    UserSegmentUpdateResponse,
)
from contracts.routes import DELAY_HEADER, route
from harness.reference import (
    InvalidState,
    OAuthState,
    PartnerClient,
    PartnerError,
    PartnerUnavailable,
    ReauthenticationNeeded,
    ReferenceConnector,
    ReferenceContext,
    StateCodec,
    UploadResult,
)
from harness.reference.config import (
    OAUTH_STATE_KEY_FILE,
    PARTNER_ACCOUNT_ID,
    PartnerCredentials,
    TechnicalConfig,
)
from harness.reference.connector import decode_content
from harness.reference.core import retry_delay_ms
from harness.reference.identifiers import MappedIdentifier
from harness.sdk import PluginSettings
from harness.sdk.context import BaseInstanceContext, PropertiesWrapper

__all__ = [
    "ALL_FAULTS",
    "AcceptsAlteredState",
    "AcceptsForgedState",
    "AnswerRewriter",
    "ConnectErrorOnTransient",
    "ConnectsBeforeReady",
    "CountsDoNotAddUp",
    "CrashesOnEmptyBody",
    "CreatesDespiteInvalidConfig",
    "DelayHeaderMismatch",
    "DropsDelayHeader",
    "DropsEligibleIdentifier",
    "DuplicateEnumValues",
    "DuplicatesItems",
    "ErrorOn5xx",
    "ErrorOnAbsentDelete",
    "ErrorOnEmptyBatch",
    "ErrorOnValidConfig",
    "ErrorWhenNotReady",
    "ErrorWithoutEligibleIdentifier",
    "ForeignStats",
    "ForgetsSegmentId",
    "HangsOnEmptyBody",
    "IgnoresByteLimit",
    "IgnoresConfiguredLimit",
    "IgnoresRetryAfter",
    "InventsSuccess",
    "LeaksRefreshToken",
    "LogoutDoesNothing",
    "LogsAccessToken",
    "LosesItemsSilently",
    "MadeUpAudience",
    "MiscountsSplitBatches",
    "NeverReady",
    "NeverRefreshes",
    "NewSegmentOnRetry",
    "NoGroupingKey",
    "NoLoginUrl",
    "NoSplitting",
    "ObjectsOnlyBatchContent",
    "OkDespiteInvalidConfig",
    "OptionalRouteAnswers500",
    "PartialFailureAllError",
    "ReadyOnePollLate",
    "RefreshesEveryCall",
    "RefreshesEveryCallAfter401",
    "RemovesAsAdds",
    "RetriesConnectionAtOnce",
    "RetriesRefusedGrant",
    "RetryAs500",
    "SendsRawEmail",
    "SkipsAbsentRemovals",
    "SlowFirstBatch",
    "SpareSegment",
    "TouchesForeignAccount",
    "WrongSchemaAnswer",
]

_PATH_CONNECTION = route("external_segment_connection").path
_PATH_BATCH = route("batch_update").path
_PATH_UPDATE = route("user_segment_update").path
_FINAL = ("OK", "ERROR")


# --------------------------------------------------------------------------- ASGI wrappers


@dataclass
class HttpAnswer:
    """One HTTP answer of the wrapped connector, as bytes."""

    status: int = 500
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def json(self) -> Any:
        """The body parsed, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def with_json(self, payload: Any, status: int | None = None) -> HttpAnswer:
        """The same answer with another JSON body (and code)."""
        return HttpAnswer(
            self.status if status is None else status,
            self.headers,
            json.dumps(payload, separators=(",", ":")).encode(),
        )

    def header(self, name: str) -> bytes | None:
        """A header's value, or None."""
        key = name.lower().encode()
        return next((v for k, v in self.headers if k.lower() == key), None)

    def with_header(self, name: str, value: bytes | None) -> HttpAnswer:
        """The same answer with header ``name`` replaced (None: removed)."""
        key = name.lower().encode()
        headers = [(k, v) for k, v in self.headers if k.lower() != key]
        if value is not None:
            headers.append((key, value))
        return HttpAnswer(self.status, headers, self.body)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class AnswerRewriter:
    """An ASGI wrapper around a reference connector; ``rewrite`` edits each answer."""

    inner: ClassVar[type[ReferenceConnector]] = ReferenceConnector

    def __init__(self, settings: PluginSettings | None = None) -> None:
        self.app = self.inner(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        answer = await self.handle(scope, body)
        headers = [(k, v) for k, v in answer.headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def handle(self, scope: Scope, body: bytes) -> HttpAnswer:
        """The answer to one request: the inner app's, rewritten."""
        return self.rewrite(str(scope["path"]), body, await self.inner_answer(scope, body))

    async def inner_answer(self, scope: Scope, body: bytes) -> HttpAnswer:
        """What the wrapped reference connector answers."""
        answer = HttpAnswer()
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = int(message["status"])
                answer.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                answer.body += message.get("body", b"")

        await self.app(scope, receive, send)
        return answer

    def rewrite(self, path: str, request: bytes, answer: HttpAnswer) -> HttpAnswer:
        """The answer as sent; the identity here."""
        return answer


class WrongSchemaAnswer(AnswerRewriter):
    """breaks: WIRE-SCHEMA — an ``ok`` connection answer's ``message`` is a number, not a
    string."""

    def rewrite(self, path: str, request: bytes, answer: HttpAnswer) -> HttpAnswer:
        payload = answer.json()
        if path != _PATH_CONNECTION or not isinstance(payload, dict):
            return answer
        if payload.get("status") != "ok":
            return answer
        return answer.with_json({**payload, "message": 42})


class RetryAs500(AnswerRewriter):
    """breaks: WIRE-STATUS — a batch ``RETRY`` goes out as HTTP 500 instead of 503."""

    def rewrite(self, path: str, request: bytes, answer: HttpAnswer) -> HttpAnswer:
        payload = answer.json()
        if isinstance(payload, dict) and payload.get("status") == "RETRY":
            return HttpAnswer(500, answer.headers, answer.body)
        return answer


class _PacedUpdates(ReferenceConnector):
    """The reference, asking for a short pause after each update (``next_msg_delay_in_ms``):
    legal, and the only body delay a batched connector has (batch delays are header-only)."""

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> UserSegmentUpdateResponse:
        response = await super().on_user_segment_update(request, ctx)
        return response.model_copy(update={"next_msg_delay_in_ms": 50})


class DropsDelayHeader(AnswerRewriter):
    """breaks: WIRE-DELAY-HEADER — update answers ask for a pause in the body
    (``next_msg_delay_in_ms``) but ``x-mics-next-msg-delay`` is dropped."""

    inner = _PacedUpdates

    def rewrite(self, path: str, request: bytes, answer: HttpAnswer) -> HttpAnswer:
        if path != _PATH_UPDATE:
            return answer
        return answer.with_header(DELAY_HEADER, None)


class DelayHeaderMismatch(AnswerRewriter):
    """breaks: WIRE-DELAY-HEADER — update answers' header says twice the body's
    ``next_msg_delay_in_ms``."""

    inner = _PacedUpdates

    def rewrite(self, path: str, request: bytes, answer: HttpAnswer) -> HttpAnswer:
        value = answer.header(DELAY_HEADER)
        if path != _PATH_UPDATE or value is None:
            return answer
        return answer.with_header(DELAY_HEADER, str(2 * int(float(value))).encode())


def _empty_post(scope: Scope, body: bytes) -> bool:
    return scope["method"] == "POST" and not body.strip()


class CrashesOnEmptyBody(AnswerRewriter):
    """breaks: WIRE-EMPTY-BODY — a POST without a body raises instead of answering."""

    async def handle(self, scope: Scope, body: bytes) -> HttpAnswer:
        if _empty_post(scope, body):
            raise RuntimeError(f"no body on {scope['path']}")
        return await super().handle(scope, body)


class HangsOnEmptyBody(AnswerRewriter):
    """breaks: WIRE-EMPTY-BODY — the first POST without a body waits ``hang_seconds`` (an
    async sleep, past any call timeout) before answering."""

    hang_seconds: ClassVar[float] = 60.0
    hung: bool = False

    async def handle(self, scope: Scope, body: bytes) -> HttpAnswer:
        if _empty_post(scope, body) and not self.hung:
            self.hung = True
            await asyncio.sleep(self.hang_seconds)
        return await super().handle(scope, body)


class SlowFirstBatch(AnswerRewriter):
    """breaks: WIRE-LATENCY — the first real ``batch_update`` (not an empty-body probe) waits
    ``delay_seconds`` (an async sleep, past the 10 s call timeout) before the reference
    handles it; the platform's re-send is answered at once.

    also breaks: TOKEN-INVALID-GRANT (in that run the slowed batch must answer an error).
    """

    delay_seconds: ClassVar[float] = 60.0
    slowed: bool = False

    async def handle(self, scope: Scope, body: bytes) -> HttpAnswer:
        if scope["path"] == _PATH_BATCH and len(body) > 2 and not self.slowed:
            self.slowed = True
            await asyncio.sleep(self.delay_seconds)
        return await super().handle(scope, body)


class OptionalRouteAnswers500(AnswerRewriter):
    """breaks: NOT-IMPLEMENTED-OK — the optional dynamic property values route, not
    implemented, answers 500 ``error`` "not implemented" instead of 400 ``not_implemented``.

    also breaks: DYNAMIC-PROPERTIES (a 500 is a failed implementation, not a skip).
    """

    def rewrite(self, path: str, request: bytes, answer: HttpAnswer) -> HttpAnswer:
        if path != route("dynamic_property_values").path:
            return answer
        return answer.with_json({"status": "error", "message": "not implemented"}, 500)


# --------------------------------------------------------------------------- creation, connection


class ErrorOnValidConfig(ReferenceConnector):
    """breaks: CREATE-OK — creation answers ``error`` although the configuration is valid.

    also breaks: the 22 clauses that need a created feed (CREATE-IDEMPOTENT,
    CREATE-PERSISTS-ID, CONNECT-READY, UPDATE-*, BATCH-*, CONVERGENCE, RETRY-*, DELETE-ABSENT,
    TOKEN-*, RATE-LIMIT, TRANSIENT-5XX, PARTIAL-FAILURE, PII-HASHED, SECRET-NO-LEAK,
    ACCOUNT-ISOLATION, TROUBLESHOOT-AUDIENCE, STATEFUL-LIFECYCLE): their runs stop at
    creation.
    """

    async def on_external_segment_creation(
        self, request: ExternalSegmentCreationRequest, ctx: ReferenceContext
    ) -> ExternalSegmentCreationResponse:
        return ExternalSegmentCreationResponse(status="error", message="cannot create now")


class SpareSegment(ReferenceConnector):
    """breaks: CREATE-OK — its first successful creation also creates a spare segment in the
    feed's account: two partner segments for one feed."""

    spared: bool = False

    async def on_external_segment_creation(
        self, request: ExternalSegmentCreationRequest, ctx: ReferenceContext
    ) -> ExternalSegmentCreationResponse:
        response = await super().on_external_segment_creation(request, ctx)
        if response.status == "ok" and not self.spared:
            self.spared = True
            with contextlib.suppress(PartnerError):
                spare = f"{ctx.segment_name} spare"
                await ctx.partner.create_segment(ctx.partner_account_id, spare)
        return response


class NewSegmentOnRetry(ReferenceConnector):
    """breaks: CREATE-IDEMPOTENT — creation repeated for a feed whose segment it created
    ignores ``partner_segment_id`` and creates a second segment (under a new name, so no 409
    reuses the first)."""

    def __init__(self, settings: PluginSettings | None = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.created: set[str] = set()

    async def write_partner_segment_id(self, ctx: ReferenceContext, segment_id: str) -> None:
        self.created.add(segment_id)
        await super().write_partner_segment_id(ctx, segment_id)

    async def on_external_segment_creation(
        self, request: ExternalSegmentCreationRequest, ctx: ReferenceContext
    ) -> ExternalSegmentCreationResponse:
        if ctx.partner_segment_id in self.created:
            ctx.segment_name = f"{ctx.segment_name} (after {ctx.partner_segment_id})"
            ctx.partner_segment_id = None
        return await super().on_external_segment_creation(request, ctx)


class ForgetsSegmentId(ReferenceConnector):
    """breaks: CREATE-PERSISTS-ID — the created segment's id stays in memory only, the feed
    property ``partner_segment_id`` is never written.

    also breaks: CREATE-IDEMPOTENT, CONVERGENCE, ACCOUNT-ISOLATION, TROUBLESHOOT-AUDIENCE,
    STATEFUL-LIFECYCLE (the harness finds the feed's partner segment through that property).
    """

    async def write_partner_segment_id(self, ctx: ReferenceContext, segment_id: str) -> None:
        ctx.partner_segment_id = segment_id


class CreatesDespiteInvalidConfig(ReferenceConnector):
    """breaks: CREATE-INVALID-CONFIG — a missing ``partner_account_id`` defaults to
    ``acc-1``: creation says ``ok`` and creates a segment there.

    also breaks: ACCOUNT-ISOLATION (it writes to an account the feed does not name).
    """

    default_account: ClassVar[str] = "acc-1"

    async def base_instance_context(self, feed_id: str) -> BaseInstanceContext:
        base = await super().base_instance_context(feed_id)
        if (base.feed_properties.find_string_property(PARTNER_ACCOUNT_ID) or "").strip():
            return base
        kept = [p for p in base.feed_properties if p.technical_name != PARTNER_ACCOUNT_ID]
        base.feed_properties = PropertiesWrapper(
            [*kept, string_property(PARTNER_ACCOUNT_ID, self.default_account)]
        )
        return base


class OkDespiteInvalidConfig(CreatesDespiteInvalidConfig):
    """breaks: CREATE-INVALID-CONFIG — creation of a feed without ``partner_account_id``
    answers ``ok`` (and creates nothing).

    also breaks: CREATE-PERSISTS-ID (a creation answered ok names no partner segment).
    """

    default_account = "(unset)"

    async def on_external_segment_creation(
        self, request: ExternalSegmentCreationRequest, ctx: ReferenceContext
    ) -> ExternalSegmentCreationResponse:
        if ctx.partner_account_id == self.default_account:
            return ExternalSegmentCreationResponse(status="ok", message="nothing to create yet")
        return await super().on_external_segment_creation(request, ctx)


def _provisioning(response: ExternalSegmentConnectionResponse) -> bool:
    """The reference's not-ready answer to a 404 ``SEGMENT_NOT_READY`` (not to a 5xx)."""
    return response.status == "external_segment_not_ready_yet" and "SEGMENT_NOT_READY" in (
        response.message or ""
    )


class ConnectsBeforeReady(ReferenceConnector):
    """breaks: CONNECT-NOT-READY — connection answers ``ok`` while the segment provisions."""

    async def on_external_segment_connection(
        self, request: ExternalSegmentConnectionRequest, ctx: ReferenceContext
    ) -> ExternalSegmentConnectionResponse:
        response = await super().on_external_segment_connection(request, ctx)
        if _provisioning(response):
            return ExternalSegmentConnectionResponse(status="ok", message="ready soon enough")
        return response


class ErrorWhenNotReady(ReferenceConnector):
    """breaks: CONNECT-NOT-READY — a provisioning segment answers ``error``, not not-ready.

    also breaks: the 16 clauses that need an ACTIVE feed in the ``lifecycle``, ``oversized``
    and ``stateful`` runs (CONNECT-READY, UPDATE-*, BATCH-*, CONVERGENCE, RETRY-*,
    DELETE-ABSENT, PII-HASHED, SECRET-NO-LEAK, ACCOUNT-ISOLATION, TROUBLESHOOT-AUDIENCE,
    STATEFUL-LIFECYCLE).
    """

    async def on_external_segment_connection(
        self, request: ExternalSegmentConnectionRequest, ctx: ReferenceContext
    ) -> ExternalSegmentConnectionResponse:
        response = await super().on_external_segment_connection(request, ctx)
        if _provisioning(response):
            return ExternalSegmentConnectionResponse(status="error", message=response.message)
        return response


class NeverReady(ReferenceConnector):
    """breaks: CONNECT-READY — connection answers not-ready even once the segment is ready.

    also breaks: the 19 clauses that need an ACTIVE feed (UPDATE-*, BATCH-*, CONVERGENCE,
    RETRY-*, DELETE-ABSENT, TOKEN-*, RATE-LIMIT, TRANSIENT-5XX, PARTIAL-FAILURE, PII-HASHED,
    SECRET-NO-LEAK, ACCOUNT-ISOLATION, TROUBLESHOOT-AUDIENCE, STATEFUL-LIFECYCLE):
    connection times out.
    """

    async def on_external_segment_connection(
        self, request: ExternalSegmentConnectionRequest, ctx: ReferenceContext
    ) -> ExternalSegmentConnectionResponse:
        return ExternalSegmentConnectionResponse(
            status="external_segment_not_ready_yet", message="still waiting"
        )


class ReadyOnePollLate(ReferenceConnector):
    """breaks: CONNECT-READY — the first time the partner says the segment is ready,
    connection still answers not-ready (the next poll gets ``ok``)."""

    def __init__(self, settings: PluginSettings | None = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.told_ready: set[str] = set()

    async def on_external_segment_connection(
        self, request: ExternalSegmentConnectionRequest, ctx: ReferenceContext
    ) -> ExternalSegmentConnectionResponse:
        response = await super().on_external_segment_connection(request, ctx)
        if response.status != "ok" or request.feed_id in self.told_ready:
            return response
        self.told_ready.add(request.feed_id)
        return ExternalSegmentConnectionResponse(
            status="external_segment_not_ready_yet", message="one more poll"
        )


class TouchesForeignAccount(ReferenceConnector):
    """breaks: ACCOUNT-ISOLATION — after a successful creation it also tries to create a
    segment in another partner account (403 ``ACCOUNT_FORBIDDEN``, ignored)."""

    async def on_external_segment_creation(
        self, request: ExternalSegmentCreationRequest, ctx: ReferenceContext
    ) -> ExternalSegmentCreationResponse:
        response = await super().on_external_segment_creation(request, ctx)
        if response.status == "ok":
            other = "acc-2" if ctx.partner_account_id != "acc-2" else "acc-1"
            with contextlib.suppress(PartnerError):
                await ctx.partner.create_segment(other, ctx.segment_name)
        return response


# --------------------------------------------------------------------------- updates


class DropsEligibleIdentifier(ReferenceConnector):
    """breaks: UPDATE-ELIGIBLE — a user's last eligible identifier (when it has several) is
    never delivered.

    also breaks: CONVERGENCE, STATEFUL-LIFECYCLE (that identifier never reaches the partner).
    """

    def eligible_identifiers(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> list[MappedIdentifier]:
        mapped = super().eligible_identifiers(request, ctx)
        return mapped[:-1] if len(mapped) > 1 else mapped


class ErrorWithoutEligibleIdentifier(ReferenceConnector):
    """breaks: UPDATE-ELIGIBLE — a user without eligible identifier answers ``error`` (500)
    instead of ``no_eligible_identifier``."""

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> UserSegmentUpdateResponse:
        response = await super().on_user_segment_update(request, ctx)
        if response.status == "no_eligible_identifier":
            return UserSegmentUpdateResponse(status="error", message=response.message)
        return response


class NoGroupingKey(ReferenceConnector):
    """breaks: UPDATE-GROUPING — ``BATCH_DELIVERY`` items carry an empty ``grouping_key``."""

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> UserSegmentUpdateResponse:
        ctx.grouping_key = ""
        return await super().on_user_segment_update(request, ctx)


class RemovesAsAdds(ReferenceConnector):
    """breaks: CONVERGENCE — a DELETE is delivered as an ``ADD``: users who left stay in the
    partner segment (and absent users join it).

    also breaks: STATEFUL-LIFECYCLE (its convergence invariant).
    """

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> UserSegmentUpdateResponse:
        upsert = request.model_copy(update={"operation": "UPSERT"})
        return await super().on_user_segment_update(upsert, ctx)


class DuplicatesItems(ReferenceConnector):
    """breaks: RETRY-NO-DUPLICATE-SUCCESS — every update delivers its items twice and the
    batch counts both copies as success (the partner takes both: ADD is idempotent).

    also breaks: STATEFUL-LIFECYCLE (its no-duplicate-success invariant).
    """

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> UserSegmentUpdateResponse:
        response = await super().on_user_segment_update(request, ctx)
        data = list(response.data or [])
        return response.model_copy(update={"data": data + data}) if data else response


class ForeignStats(ReferenceConnector):
    """breaks: UPDATE-STATS — every answer adds a stat for an identifier the user lacks."""

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> UserSegmentUpdateResponse:
        response = await super().on_user_segment_update(request, ctx)
        foreign = UpdateStat(identifier="someone-else", sync_result="PROCESSED")
        return response.model_copy(update={"stats": [*(response.stats or []), foreign]})


class SendsRawEmail(ReferenceConnector):
    """breaks: PII-HASHED — the first update of a user with a clear email sends it to the
    partner as an ``EMAIL_SHA256`` value, in an upload the partner refuses as a whole
    (``partial_failure: false``), when it holds an access token already; a 429 / 5xx on that
    upload answers ``retry``, as the clauses want."""

    leaked: bool = False

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> UserSegmentUpdateResponse:
        email = next(
            (i.email for i in request.user_identifiers if isinstance(i, UserEmailIdentifier)),
            None,
        )
        session = ctx.partner.session
        has_token = session is not None and session.access_token is not None
        if email and ctx.partner_segment_id and has_token and not self.leaked:
            operation = {
                "action": "REMOVE",
                "identifiers": [{"type": "EMAIL_SHA256", "value": email}],
            }
            body = {"operations": [operation], "partial_failure": False}
            path = f"/segments/{quote(ctx.partner_segment_id, safe='')}/members"
            try:
                await ctx.partner._json_call("POST", path, json_body=body)
            except PartnerError as err:
                if err.status == 429 or isinstance(err, PartnerUnavailable):
                    delay = retry_delay_ms(err) if err.status == 429 else None
                    return UserSegmentUpdateResponse(
                        status="retry",
                        message=f"partner busy ({err.code})",
                        next_msg_delay_in_ms=delay,
                    )
            self.leaked = True
        return await super().on_user_segment_update(request, ctx)


# --------------------------------------------------------------------------- batches


def _counts(response: BatchUpdateResponse, success: int, error: int) -> BatchUpdateResponse:
    return response.model_copy(
        update={"sent_items_in_success": success, "sent_items_in_error": error}
    )


class CountsDoNotAddUp(ReferenceConnector):
    """breaks: BATCH-ACCOUNTING — a final answer without errors to a batch that adds members
    reports one error too many (``success + error == len(batch_content) + 1``).

    also breaks: BATCH-HONEST (that error is no item the partner refused),
    STATEFUL-LIFECYCLE (its accounting invariant).
    """

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        response = await super().on_batch_update(request, ctx)
        adds = any(
            isinstance(op := decode_content(item), dict) and op.get("action") == "ADD"
            for item in request.batch_content
        )
        if response.status not in _FINAL or response.sent_items_in_error or not adds:
            return response
        return _counts(response, response.sent_items_in_success, response.sent_items_in_error + 1)


class InventsSuccess(ReferenceConnector):
    """breaks: PARTIAL-FAILURE — items the partner rejected are reported as success.

    also breaks: BATCH-HONEST (invented success), CONVERGENCE (the missing identifiers are
    not accounted as errors). With ``--clauses PARTIAL-FAILURE`` alone only that one fails:
    BATCH-HONEST's own run (``lifecycle``) rejects nothing.
    """

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        response = await super().on_batch_update(request, ctx)
        if response.status != "OK":
            return response
        return _counts(response, len(request.batch_content), 0)


class LosesItemsSilently(ReferenceConnector):
    """breaks: BATCH-HONEST — the last item of each batch is never sent but counted success.

    also breaks: CONVERGENCE (those items never reach the partner), BATCH-LIMIT (the
    oversized batch is not all uploaded), PARTIAL-FAILURE (counts differ from the partner's),
    STATEFUL-LIFECYCLE (its honesty invariant).
    """

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        content = request.batch_content
        if len(content) < 2:
            return await super().on_batch_update(request, ctx)
        shorter = request.model_copy(update={"batch_content": content[:-1]})
        response = await super().on_batch_update(shorter, ctx)
        if response.status != "OK":
            return _counts(
                response, response.sent_items_in_success, response.sent_items_in_error + 1
            )
        return _counts(response, response.sent_items_in_success + 1, response.sent_items_in_error)


class PartialFailureAllError(ReferenceConnector):
    """breaks: PARTIAL-FAILURE — one rejected item makes the whole batch count as error.

    also breaks: BATCH-HONEST (accepted items are reported as error).
    """

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        response = await super().on_batch_update(request, ctx)
        if response.status != "OK" or not response.sent_items_in_error:
            return response
        return _counts(response, 0, len(request.batch_content))


def _identifiers(operation: Any) -> set[tuple[str, str]]:
    items = operation.get("identifiers") if isinstance(operation, dict) else None
    return {
        (str(i.get("type")), str(i.get("value")))
        for i in (items if isinstance(items, list) else [])
        if isinstance(i, dict)
    }


class _AbsentRemovalsNotSent(ReferenceConnector):
    """Never sends a ``REMOVE`` of identifiers it never added; counts it as ``absent_count``."""

    absent_count: ClassVar[str] = "error"

    def __init__(self, settings: PluginSettings | None = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.added: set[tuple[str, str]] = set()

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        kept: list[Any] = []
        absent = 0
        for item in request.batch_content:
            operation = decode_content(item)
            ids = _identifiers(operation)
            if isinstance(operation, dict) and operation.get("action") == "ADD":
                self.added |= ids
            elif ids and not ids & self.added:
                absent += 1
                continue
            kept.append(item)
        if not absent:
            return await super().on_batch_update(request, ctx)
        response = await super().on_batch_update(
            request.model_copy(update={"batch_content": kept}), ctx
        )
        success, error = response.sent_items_in_success, response.sent_items_in_error
        if self.absent_count == "error":
            return _counts(response, success, error + absent)
        return _counts(response, success + absent, error)


class ErrorOnAbsentDelete(_AbsentRemovalsNotSent):
    """breaks: DELETE-ABSENT — a ``REMOVE`` of identifiers this connector never added is not
    sent but counted in ``sent_items_in_error``."""


class SkipsAbsentRemovals(_AbsentRemovalsNotSent):
    """breaks: BATCH-HONEST — a ``REMOVE`` of identifiers this connector never added is not
    sent but counted as success (a success the partner never accepted).

    also breaks: STATEFUL-LIFECYCLE (its honesty invariant).
    """

    absent_count = "success"


class ErrorOnEmptyBatch(ReferenceConnector):
    """breaks: BATCH-EMPTY — an empty ``batch_content`` answers ``ERROR`` (0 and 0)."""

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        if not request.batch_content:
            return BatchUpdateResponse(
                status="ERROR", sent_items_in_success=0, sent_items_in_error=0, message="empty"
            )
        return await super().on_batch_update(request, ctx)


class _TunedClient(ReferenceConnector):
    """The reference connector with its partner client's limits set to ``limits``."""

    limits: ClassVar[dict[str, int]] = {}

    def partner_client(
        self, config: TechnicalConfig, credentials: PartnerCredentials, refresh_token: str | None
    ) -> PartnerClient:
        client = super().partner_client(config, credentials, refresh_token)
        for name, value in self.limits.items():
            setattr(client, name, value)
        return client


class NoSplitting(_TunedClient):
    """breaks: BATCH-LIMIT — a batch goes to the partner in one request whatever its size."""

    limits: ClassVar[dict[str, int]] = {
        "max_operations": sys.maxsize,
        "max_body_bytes": sys.maxsize,
    }


class IgnoresByteLimit(_TunedClient):
    """breaks: BATCH-LIMIT — batches are split at the operation limit and at 5 MiB, never
    at the smaller body limit its ``technical_config`` names (``max_body_bytes_per_request``),
    so a batch of users with many identifiers (under 10,000 operations, over the partner's
    1 MiB) goes out in one request the partner refuses (413). Nothing else: the refused
    items are reported as error, which a permanent refusal allows (CONVERGENCE).
    """

    limits: ClassVar[dict[str, int]] = {"max_body_bytes": 5 * 1024 * 1024}


class IgnoresConfiguredLimit(_TunedClient):
    """breaks: BATCH-LIMIT, only under a scenario whose partner takes fewer operations per
    request than 10,000 — the connector ignores ``max_operations_per_request`` of its
    ``technical_config`` and splits at 10,000 whatever the partner says. Under the default
    partner it passes every clause: the user's ``--scenario`` is what exposes it.
    """

    limits: ClassVar[dict[str, int]] = {"max_operations": 10_000}


class ObjectsOnlyBatchContent(ReferenceConnector):
    """breaks: CONVERGENCE — ``batch_content`` items that arrive as JSON strings (the SDK
    passes items as the platform queued them) are refused as invalid and reported as
    error, although the partner met the feed with no fault at all: those users never
    reach it.

    also breaks: BATCH-LIMIT (the oversized batches, sent as JSON strings, never reach the
    partner split: nothing of them is uploaded).
    """

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        strings = [item for item in request.batch_content if isinstance(item, str)]
        if not strings:
            return await super().on_batch_update(request, ctx)
        objects = [item for item in request.batch_content if not isinstance(item, str)]
        answer = await super().on_batch_update(
            request.model_copy(update={"batch_content": objects}), ctx
        )
        return answer.model_copy(
            update={"sent_items_in_error": answer.sent_items_in_error + len(strings)}
        )


# --------------------------------------------------------------------------- partner faults


class ClientSwap:
    """A mixin for any reference connector (``class F(ClientSwap, SomeReference)``): the
    partner client it builds gets class ``client_class``, a subclass of that reference's own
    client with the fault."""

    client_class: ClassVar[type[PartnerClient]]

    def partner_client(
        self, config: TechnicalConfig, credentials: PartnerCredentials, refresh_token: str | None
    ) -> PartnerClient:
        client: PartnerClient = super().partner_client(  # type: ignore[misc]
            config, credentials, refresh_token
        )
        client.__class__ = self.client_class
        return client


class _ClientFault(ClientSwap, ReferenceConnector):
    """The reference connector with its partner client of class ``client_class``."""

    client_class: ClassVar[type[PartnerClient]] = PartnerClient


class _NeverRefreshingClient(PartnerClient):
    async def refresh(self) -> str:
        session = self._require_session()
        if session.access_token is not None:
            return session.access_token
        return await super().refresh()


class NeverRefreshes(_ClientFault):
    """breaks: TOKEN-REFRESH — after the first access token it never refreshes: a 401
    ``EXPIRED_ACCESS_TOKEN`` re-sends the dead token and the batch ends in ``ERROR``.

    also breaks: STATEFUL-LIFECYCLE (its clock advances expire the token too), CONVERGENCE
    (an expired token is a transient fault: the members of the batch in ERROR are missing,
    which no permanent fault excuses).
    """

    client_class = _NeverRefreshingClient


class _EagerClient(PartnerClient):
    async def _access_token(self) -> str:
        return await self.refresh()


class RefreshesEveryCall(_ClientFault):
    """breaks: TOKEN-REFRESH — a new access token is fetched before every partner call."""

    client_class = _EagerClient


class _StormClient(PartnerClient):
    attempts: ClassVar[int] = 5

    async def refresh(self) -> str:
        for _ in range(self.attempts - 1):
            try:
                return await super().refresh()
            except ReauthenticationNeeded:
                continue
        return await super().refresh()


class RetriesRefusedGrant(_ClientFault):
    """breaks: TOKEN-INVALID-GRANT — a refused refresh token is presented 5 times per call
    (a retry storm) before the error is reported."""

    client_class = _StormClient


class _ImpatientClient(PartnerClient):
    resends: ClassVar[int] = 4

    async def _send(
        self,
        method: str,
        url: str,
        token: str,
        json_body: Any,
        content: bytes | None,
        params: Mapping[str, str] | None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Any:
        for _ in range(self.resends):
            response = await super()._send(
                method, url, token, json_body, content, params, extra_headers
            )
            if response.status_code != 429:
                break
        return response


class IgnoresRetryAfter(_ClientFault):
    """breaks: RATE-LIMIT — a 429 is re-sent to the partner at once, inside the same call
    (up to 4 times), ignoring ``Retry-After``."""

    client_class = _ImpatientClient


class _FiveHundredIsFinalClient(PartnerClient):
    async def upload_members(
        self, segment_id: str, operations: Sequence[Mapping[str, Any]]
    ) -> UploadResult:
        result = await super().upload_members(segment_id, operations)
        failure = result.failure
        if isinstance(failure, PartnerUnavailable):
            result.failure = PartnerError(failure.status, failure.code, failure.message)
        return result


class ErrorOn5xx(_ClientFault):
    """breaks: TRANSIENT-5XX — an upload's 5xx or dropped connection gives ``ERROR``.

    also breaks: BATCH-HONEST (after an ambiguous 503 the partner applied the upload that
    ``ERROR`` counts as 0 success), TOKEN-REFRESH (a re-send after a refresh that meets a 5xx
    is lost), STATEFUL-LIFECYCLE (its transient faults must converge), CONVERGENCE (the
    members of a batch in ERROR on a transient 5xx are missing, which no permanent fault
    excuses).
    """

    client_class = _FiveHundredIsFinalClient


class LeaksRefreshToken(ReferenceConnector):
    """breaks: SECRET-NO-LEAK — the connection answer's message carries the refresh token."""

    async def on_external_segment_connection(
        self, request: ExternalSegmentConnectionRequest, ctx: ReferenceContext
    ) -> ExternalSegmentConnectionResponse:
        response = await super().on_external_segment_connection(request, ctx)
        session = ctx.partner.session
        token = session.refresh_token if session is not None else "?"
        return response.model_copy(update={"message": f"{response.message} (token {token})"})


class LogsAccessToken(ReferenceConnector):
    """breaks: SECRET-NO-LEAK — every batch logs the partner access token it used (at
    WARNING, which a default logging configuration prints); its answers carry none."""

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        response = await super().on_batch_update(request, ctx)
        session = ctx.partner.session
        token = session.access_token if session is not None else None
        if token:
            _LOG.warning(
                "batch of %d sent with partner token %s", len(request.batch_content), token
            )
        return response


_LOG = logging.getLogger("faulty_connector")


# --------------------------------------------------------------------------- troubleshoot, auth


class MadeUpAudience(ReferenceConnector):
    """breaks: TROUBLESHOOT-AUDIENCE — the audience shown has made-up counts and match rate."""

    async def on_troubleshoot(
        self, request: TroubleshootRequest, ctx: ReferenceContext
    ) -> TroubleshootResponse:
        response = await super().on_troubleshoot(request, ctx)
        if response.status != "ok" or not isinstance(response.data, dict):
            return response
        audience = dict(response.data.get("destination_audience") or {})
        for key in ("input_count", "matched_count", "audience_size"):
            audience[key] = int(audience.get(key) or 0) + 1000
        audience["match_rate"] = 0.99
        data = {"destination_audience": audience, "match_rate": 0.99}
        return response.model_copy(update={"data": data})


class NoLoginUrl(ReferenceConnector):
    """breaks: AUTH-STATUS — ``not_authenticated`` comes without a ``login_url``.

    also breaks: AUTH-STATE-TAMPER, AUTH-ROUNDTRIP (without a login URL the harness cannot
    consent, so their steps cannot be played).
    """

    async def on_authentication_status_query(
        self, request: AuthenticationStatusQueryRequest
    ) -> AuthenticationStatusQueryResponse:
        response = await super().on_authentication_status_query(request)
        if response.status != "not_authenticated":
            return response
        return AuthenticationStatusQueryResponse(status=response.status, message=response.message)


class AcceptsForgedState(ReferenceConnector):
    """breaks: AUTH-STATE-TAMPER — any ``state`` is taken: a fresh valid one replaces it.

    also breaks: AUTH-ROUNDTRIP (the tampered login stores the user, so the ``auth`` run's
    round trip finds them authenticated and gets no login URL to consent to).
    """

    async def on_authentication(self, request: AuthenticationRequest) -> AuthenticationResponse:
        codec = await self.state_codec()
        state = codec.issue(
            plugin_version_id=request.plugin_version_id,
            user_id=request.user_id,
            feed_destination_id=request.feed_destination_id,
        )
        params = {**(request.params or {}), "state": state}
        return await super().on_authentication(request.model_copy(update={"params": params}))


class LogoutDoesNothing(ReferenceConnector):
    """breaks: AUTH-ROUNDTRIP — logout answers ``ok`` and forgets nothing."""

    async def on_logout(self, request: LogoutRequest) -> LogoutResponse:
        return LogoutResponse(status="ok", message=f"logged out user {request.user_id}")


class DuplicateEnumValues(ReferenceConnector):
    """breaks: DYNAMIC-PROPERTIES — every enum lists its first value twice."""

    async def on_dynamic_property_values_query(
        self, request: DynamicPropertyValuesQueryRequest
    ) -> DynamicPropertyValuesQueryResponse:
        response = await super().on_dynamic_property_values_query(request)
        for values in response.data or []:
            if values.enum:
                first = values.enum[0]
                values.enum.append(first.model_copy(update={"label": f"{first.label} (again)"}))
        return response


ALL_FAULTS: tuple[type[Any], ...] = tuple(
    obj
    for name, obj in sorted(globals().items())
    if name in __all__ and isinstance(obj, type) and name not in ("AnswerRewriter",)
)
"""Every faulty connector class of this module."""


# --------------------------------------------------------------------------- premises everywhere
# Faults that show only where a premise occurs off the beaten path: during connection, in a
# split batch, in a well-formed but altered state, after the first 401.


def _transient(err: PartnerError) -> bool:
    """A 429, a 5xx, a dropped connection or a timeout (not the segment provisioning)."""
    return err.code != "SEGMENT_NOT_READY" and (
        err.status == 429 or isinstance(err, PartnerUnavailable)
    )


class _TransientIsFinalReadClient(PartnerClient):
    async def get_segment(self, segment_id: str) -> dict[str, Any]:
        try:
            return await super().get_segment(segment_id)
        except PartnerError as err:
            if _transient(err):  # no longer a 429 nor PartnerUnavailable: a final error
                raise PartnerError(None, err.code, err.message) from None
            raise


class ConnectErrorOnTransient(_ClientFault):
    """breaks: CONNECT-TRANSIENT — connection answers ``error`` when the partner answers its
    segment read with a 429 or a 5xx or drops the connection, so the platform stops polling.

    also breaks: STATEFUL-LIFECYCLE (its random feed lives meet such a fault during a
    connection, and the feed cannot go on). RATE-LIMIT and TRANSIENT-5XX do not judge
    connection answers.
    """

    client_class = _TransientIsFinalReadClient


class _RereadsOn429Client(PartnerClient):
    async def get_segment(self, segment_id: str) -> dict[str, Any]:
        try:
            return await super().get_segment(segment_id)
        except PartnerError as err:
            if err.status != 429:
                raise
            return await super().get_segment(segment_id)


class RetriesConnectionAtOnce(_ClientFault):
    """breaks: RATE-LIMIT — a segment read answered 429 (connection's) is re-sent at once,
    within the same call, ignoring ``Retry-After``."""

    client_class = _RereadsOn429Client


class _MiscountsSplitClient(PartnerClient):
    async def upload_members(
        self, segment_id: str, operations: Sequence[Mapping[str, Any]]
    ) -> UploadResult:
        result = await super().upload_members(segment_id, operations)
        if len(operations) > self.max_operations:  # split: forget the first upload's errors
            result.rejected = {i: c for i, c in result.rejected.items() if i >= self.max_operations}
        return result


class MiscountsSplitBatches(_ClientFault):
    """breaks: PARTIAL-FAILURE — when a batch goes out in several uploads, the per-item
    errors of its first upload are counted as success.

    also breaks: BATCH-HONEST (those items are reported as success the partner never
    accepted), CONVERGENCE (the identifiers missing at the partner are not accounted as
    errors).
    """

    client_class = _MiscountsSplitClient


class _UnverifiedStateCodec(StateCodec):
    """Decrypts a Fernet state without checking its HMAC: an altered envelope passes."""

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self._encryption_key = base64.urlsafe_b64decode(key)[16:]

    def decode(self, token: str) -> OAuthState:
        try:
            data = base64.urlsafe_b64decode(token.encode("ascii"))
            if data[:1] != b"\x80":
                raise ValueError("not a Fernet token")
            decryptor = Cipher(
                algorithms.AES(self._encryption_key), modes.CBC(data[9:25])
            ).decryptor()
            padded = decryptor.update(data[25:-32]) + decryptor.finalize()
            unpadder = padding.PKCS7(128).unpadder()
            plain = unpadder.update(padded) + unpadder.finalize()
            return OAuthState(**json.loads(plain))
        except (ValueError, TypeError, UnicodeError):
            raise InvalidState("the OAuth state is invalid") from None


class AcceptsAlteredState(ReferenceConnector):
    """breaks: AUTH-STATE-TAMPER — the state's envelope is decrypted but its HMAC never
    checked: a well-formed state with its timestamp changed is taken (a forged one, one
    with a changed character or one sealed with another key still fails to decrypt).

    also breaks: AUTH-ROUNDTRIP (the tampered login stores the user, so the round trip finds
    them authenticated and gets no login URL to consent to).
    """

    async def state_codec(self) -> StateCodec:
        codec = await super().state_codec()
        if not isinstance(codec, _UnverifiedStateCodec):
            key = (await self.gateway.fetch_configuration_file(OAUTH_STATE_KEY_FILE)).strip()
            codec = self._state_codec = _UnverifiedStateCodec(key)
        return codec


class _EagerAfter401Client(PartnerClient):
    async def refresh(self) -> str:
        session = self._require_session()
        if session.access_token is not None and self._clock() < session.expires_at:
            session.__dict__["burnt"] = True  # refreshed while it looked valid: a 401 came
        return await super().refresh()

    async def _access_token(self) -> str:
        if self._require_session().__dict__.get("burnt"):
            return await self.refresh()
        return await super()._access_token()


class RefreshesEveryCallAfter401(_ClientFault):
    """breaks: TOKEN-REFRESH — once a 401 happened, the access token is refreshed before
    every partner call, valid or not."""

    client_class = _EagerAfter401Client


ALL_FAULTS += (
    ConnectErrorOnTransient,
    RetriesConnectionAtOnce,
    MiscountsSplitBatches,
    AcceptsAlteredState,
    RefreshesEveryCallAfter401,
)
