"""What every face shares: the parsed request, the call being recorded, the face interface.

A face (moto's ``responses.py`` + ``urls.py`` for one partner's language) routes a request
to a core route, reads its body, calls the core and renders answers and errors in its
own shapes. The pipeline (``fake_partner.pipeline``) does the rest for every face: fault
rules, the body-size and readability checks, the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from fake_partner.errors import ErrorCode, OAuthError, PartnerError
from fake_partner.faults import ApplyThenFailEffect, ErrorEffect, default_code
from fake_partner.inbound import UnreadableRequestError
from fake_partner.models import AccessToken, OperationInput, PartnerState, RejectRule, Segment

if TYPE_CHECKING:
    from fake_partner.partner import Partner

UPLOAD_ROUTE = "POST /v1/segments/{segment_id}/members"
CREATE_ROUTE = "POST /v1/accounts/{account_id}/segments"
LIST_ROUTE = "GET /v1/accounts/{account_id}/segments"
GET_ROUTE = "GET /v1/segments/{segment_id}"
DELETE_ROUTE = "DELETE /v1/segments/{segment_id}"
TOKEN_ROUTE = "POST /oauth/token"
AUTHORIZE_ROUTE = "GET /oauth/authorize"
ACCOUNTS_ROUTE = "GET /v1/accounts"
"""The core's route keys: the ledger's ``route`` and what fault rules match, in every face."""

CORE_PATHS = {
    UPLOAD_ROUTE: "/v1/segments/{segment_id}/members",
    CREATE_ROUTE: "/v1/accounts/{account_id}/segments",
    LIST_ROUTE: "/v1/accounts/{account_id}/segments",
    GET_ROUTE: "/v1/segments/{segment_id}",
    DELETE_ROUTE: "/v1/segments/{segment_id}",
    TOKEN_ROUTE: "/oauth/token",
    AUTHORIZE_ROUTE: "/oauth/authorize",
    ACCOUNTS_ROUTE: "/v1/accounts",
}


class FaceError(PartnerError):
    """A refusal only one face makes (a missing ``LinkedIn-Version``, an unknown Graph
    version): the core's ``code`` for the ledger, the face's own ``dialect_code``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        dialect_code: str,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(status, code, message)
        self.dialect_code = dialect_code
        self.extra: dict[str, Any] = dict(extra or {})
        """More fields of the face's error body (Meta's ``error_subcode``...)."""


@dataclass(frozen=True, slots=True)
class PartnerRequest:
    """One request as every face reads it; the bearer token is parsed once, here."""

    method: str
    path: str
    query: httpx.QueryParams
    headers: httpx.Headers
    body: bytes
    bearer: str | None

    @classmethod
    def of(cls, request: httpx.Request, method: str) -> PartnerRequest:
        scheme, _, raw = request.headers.get("authorization", "").partition(" ")
        bearer = (raw.strip() or None) if scheme.lower() == "bearer" else None
        return cls(
            method,
            request.url.path,
            request.url.params,
            request.headers,
            request.content,
            bearer,
        )

    @property
    def content_type(self) -> str:
        return str(self.headers.get("content-type", "")).lower()


@dataclass(frozen=True, slots=True)
class FaceRoute:
    """A request routed: the face's route key and handler, its path parameters, and the
    core route it stands for (``core``: what the ledger and fault rules see)."""

    key: str
    handler: str
    params: Mapping[str, str]
    core: str | None

    @property
    def core_method(self) -> str:
        return (self.core or self.key).split(" ", 1)[0]


@dataclass
class Call:
    """What the ledger will say about the request being handled."""

    sequence: int
    request_id: str
    time: float
    method: str
    path: str
    route: str | None = None
    dialect_route: str | None = None
    core_path: str | None = None
    token: str | None = None
    client_id: str | None = None
    account_id: str | None = None
    segment_id: str | None = None
    operations: list[OperationInput] = field(default_factory=list)
    codes: list[str | None] | None = None
    accepted: list[bool] | None = None
    applied: bool = False
    faults: list[str] = field(default_factory=list)
    grant_type: str | None = None
    partial_failure: bool | None = None
    upload: Any = None
    upload_problem: PartnerError | None = None
    created: Segment | None = None
    error_code: str | None = None
    dialect_code: str | None = None
    signal: str | None = None
    retry_after: float | None = None


def signal_of(error: PartnerError | OAuthError) -> str:
    """The kind of an error answer, whatever face renders it."""
    if isinstance(error, OAuthError):
        if error.error == "invalid_grant":
            return "invalid_grant"
        return "transient" if error.status >= 500 else "permanent"
    if error.status == 429 or error.code in ("RATE_LIMITED", "QUOTA_EXHAUSTED"):
        return "throttled"
    if error.status >= 500:
        return "transient"
    return {
        "EXPIRED_ACCESS_TOKEN": "expired_token",
        "REVOKED_ACCESS_TOKEN": "revoked_token",
        "SEGMENT_NOT_READY": "not_ready",
        "INVALID_OPERATIONS": "per_item",
    }.get(error.code, "permanent")


@dataclass
class Context:
    """Everything a handler needs: the partner, its state, the request, the call."""

    partner: Partner
    face: Face
    state: PartnerState
    request: PartnerRequest
    route: FaceRoute
    call: Call
    reject: RejectRule | None
    parsed: Any = None

    @property
    def params(self) -> Mapping[str, str]:
        return self.route.params

    def error(
        self, error: PartnerError, extra_headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Render a core error in this face's shape (and note it for the ledger)."""
        return render_error(self.face, error, self.call, extra_headers)

    def authenticate(self) -> AccessToken:
        token = self.state.authenticate(f"Bearer {self.face.presented_token(self.request) or ''}")
        self.call.client_id = token.client_id
        return token


def render_error(
    face: Face, error: PartnerError, call: Call, extra_headers: Mapping[str, str] | None = None
) -> httpx.Response:
    call.error_code = error.code
    call.signal = face.signal_of(error)
    call.dialect_code = None
    call.retry_after = None
    return face.render_error(error, call, extra_headers)


def render_oauth_error(
    face: Face, error: OAuthError, call: Call, extra_headers: Mapping[str, str] | None = None
) -> httpx.Response:
    call.error_code = error.error
    call.signal = face.signal_of(error)
    call.dialect_code = error.error
    call.retry_after = None
    return face.render_oauth_error(error, call, extra_headers)


def fault_error(
    partner: Partner, face: Face, effect: ErrorEffect | ApplyThenFailEffect, call: Call
) -> httpx.Response:
    """A fault's error answer, written once against the core, rendered by the face."""
    code = effect.code or default_code(effect.status)
    headers: dict[str, str] = {}
    if effect.retry_after is not None:
        headers["Retry-After"] = _number(effect.retry_after)
    if isinstance(effect, ErrorEffect) and effect.rate_limit_headers:
        limit = partner.effective_scenario.rate_limit_per_minute
        reset = int(effect.retry_after) if effect.retry_after is not None else 60
        headers.update(PartnerState.rate_headers(limit, 0, max(1, reset)))
    if call.route == TOKEN_ROUTE:
        oauth = effect.oauth_error if isinstance(effect, ErrorEffect) else None
        error = OAuthError(
            effect.status,
            oauth or ("server_error" if effect.status >= 500 else "invalid_request"),
            "the partner failed this request (scenario fault)",
        )
        return render_oauth_error(face, error, call, headers)
    message = (
        effect.message
        if isinstance(effect, ErrorEffect) and effect.message
        else f"the partner answered {effect.status} {code} (scenario fault)"
    )
    retry = float(effect.retry_after) if effect.retry_after is not None else None
    return render_error(
        face, PartnerError(effect.status, code, message, retry_after=retry), call, headers
    )


def too_large(size: int, limit: int) -> PartnerError:
    """413 ``PAYLOAD_TOO_LARGE``: the body is over the scenario's ``max_body_bytes``."""
    return PartnerError(
        413,
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"request body is {size} bytes; the limit is {limit} bytes: split the batch",
        [{"size": size, "limit": limit}],
    )


def _number(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def json_response(
    status: int, data: Any, request_id: str, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """A JSON answer carrying X-Request-Id."""
    all_headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
    all_headers.update(headers or {})
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return httpx.Response(status, content=body, headers=all_headers)


Handler = Callable[[Context], httpx.Response]


class Face:
    """A dialect: routing, body reading, rendering. Subclasses fill the hooks."""

    name = "generic"
    api_version: str | None = None
    base_path = "/v1"
    defaults: Mapping[str, Any] = {}
    """Scenario knobs this partner sets differently unless the scenario sets them."""

    handlers: Mapping[str, Handler] = {}
    lists_accounts = True
    """Whether a token can list the accounts it reaches (the generic ``GET /v1/accounts``)."""
    read_shows_not_ready = True
    """Whether reading a segment while it provisions says so (the generic 404
    ``SEGMENT_NOT_READY``); LinkedIn's read answers ``PROCESSING`` before and after."""

    def match(self, request: PartnerRequest) -> FaceRoute:
        """The route; raises :class:`PartnerError` (rendered, recorded) when none fits."""
        raise NotImplementedError

    def readable(self, route: FaceRoute, request: PartnerRequest, max_body: int) -> Any:
        """Refuse (:class:`UnreadableRequestError`) a body this route reads that cannot be
        read; return what was parsed once (or ``None``)."""
        return None

    def identify(self, ctx: Context) -> None:
        """Fill the ledger's who and what (account, segment, operations) before anything fails."""

    def precheck(self, ctx: Context) -> None:
        """Face-wide checks before fault rules (versions, protocol headers); raise to refuse."""

    def presented_token(self, request: PartnerRequest) -> str | None:
        return request.bearer

    def refresh_token_presented(self, request: PartnerRequest) -> str | None:
        return None

    def core_path(self, ctx: Context) -> str:
        """The request's path as the core's routes write it (what fault rules match)."""
        return ctx.request.path

    def render_error(
        self, error: PartnerError, call: Call, extra_headers: Mapping[str, str] | None
    ) -> httpx.Response:
        raise NotImplementedError

    def render_oauth_error(
        self, error: OAuthError, call: Call, extra_headers: Mapping[str, str] | None
    ) -> httpx.Response:
        raise NotImplementedError

    def render_refusal(
        self, refusal: UnreadableRequestError, request_id: str, route: FaceRoute | None
    ) -> httpx.Response:
        raise NotImplementedError

    def openapi(self) -> dict[str, Any] | None:
        return None

    def signal_of(self, error: PartnerError | OAuthError) -> str:
        """The ledger's kind of this error answer (:data:`fake_partner.ledger.SIGNALS`)."""
        return signal_of(error)

    def counts_shown(self, segment: Mapping[str, Any]) -> dict[str, Any]:
        """The audience counts a read of the segment shows, under this face's own names,
        from the core's wire form of it (``PartnerState.segment_json``); ``match_rate`` is
        among them only where the face shows one. The generic face shows the core's."""
        return {
            key: segment.get(key)
            for key in ("input_count", "matched_count", "match_rate", "audience_size")
        }

    def external_segment_id(self, core: str) -> str:
        """The id this face shows for a core segment (the generic face shows the core's)."""
        return core

    def core_segment_id(self, external: str) -> str:
        """The core id of a segment id as this face shows it."""
        return external

    def info(self) -> dict[str, Any]:
        """What a connector needs to reach this face: dialect, API version, base path."""
        return {
            "dialect": self.name,
            "api_version": self.api_version,
            "base_path": self.base_path,
            "lists_accounts": self.lists_accounts,
            "read_shows_not_ready": self.read_shows_not_ready,
        }
