"""The reference connector's client of the partner Audience API v1 (``docs/partner-api.md``): an
access token is kept until it expires or a 401 says so, then refreshed once and the call
re-sent. Errors are typed; messages carry no secret."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_IDENTIFIERS_PER_OPERATION",
    "MAX_OPERATIONS_PER_REQUEST",
    "CreatedSegment",
    "OAuthClient",
    "PartnerClient",
    "PartnerError",
    "PartnerUnavailable",
    "ReauthenticationNeeded",
    "TokenGrant",
    "TokenSession",
    "UploadResult",
]

MAX_OPERATIONS_PER_REQUEST = 10_000
MAX_IDENTIFIERS_PER_OPERATION = 10
MAX_BODY_BYTES = 5 * 1024 * 1024
MIN_BODY_BYTES = 4 * 1024
"""The smallest body limit the client keeps to (an operation of 10 identifiers fits)."""
"""The partner's hard limits per members upload (operations, identifiers, body size)."""

_TOKEN_MARGIN_SECONDS = 30.0
_REFRESHABLE_401 = frozenset(
    {"EXPIRED_ACCESS_TOKEN", "REVOKED_ACCESS_TOKEN", "INVALID_ACCESS_TOKEN"}
)
_BODY_HEAD = b'{"operations":['
_BODY_TAIL = b'],"partial_failure":true}'

Clock = Callable[[], float]


class PartnerError(Exception):
    """The partner refused a call: HTTP ``status`` (None: no answer), error ``code``,
    ``retry_after`` seconds when it said so, ``details`` as sent."""

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        details: Sequence[Any] = (),
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.details = list(details)
        got = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"partner {got} {code}: {message}")

    @property
    def throttled(self) -> bool:
        """The partner's throttling signal (a 429 here; Meta's is an HTTP 400 code 80003)."""
        return self.status == 429


class ReauthenticationNeeded(PartnerError):  # noqa: N818 - the name says what to do
    """The partner refused the refresh token or code (400 ``invalid_grant``): log in again."""


class PartnerUnavailable(PartnerError):  # noqa: N818 - the name says what happened
    """A transient failure: 5xx, dropped connection or timeout. Re-sending later is safe."""


@dataclass(frozen=True)
class OAuthClient:
    """The connector's OAuth client at the partner."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class TokenGrant:
    """What ``/oauth/token`` gave: an access token and, for a code, the refresh token."""

    access_token: str = field(repr=False)
    expires_in: float
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CreatedSegment:
    """A partner segment id from creation; ``created`` is False when a 409 named it."""

    id: str
    created: bool


@dataclass
class UploadResult:
    """A members upload: ``rejected`` index -> partner code; ``sent`` operations answered;
    ``failure`` stopped the upload (operations from ``sent`` on are unknown: maybe applied).
    """

    total: int
    sent: int = 0
    rejected: dict[int, str] = field(default_factory=dict)
    failure: PartnerError | None = None
    uncounted_rejections: int = 0
    """Rejections the partner only counted, naming no item (Meta's ``num_invalid_entries``)."""

    @property
    def accepted(self) -> int:
        """Operations the partner accepted."""
        return self.sent - len(self.rejected) - self.uncounted_rejections


class TokenSession:
    """One refresh token and the access token it currently gives (shared across contexts)."""

    def __init__(self, refresh_token: str) -> None:
        self.refresh_token = refresh_token
        self.access_token: str | None = None
        self.expires_at = 0.0
        self.refreshes = 0
        self._refreshing: asyncio.Future[str] | None = None

    def __repr__(self) -> str:
        return (
            f"TokenSession(refreshes={self.refreshes}, has_access_token={bool(self.access_token)})"
        )


class PartnerClient:
    """Async client of one partner endpoint for one OAuth client and (optionally) one grant.

    ``http`` is shared and not closed here; ``clock`` (seconds) times access-token expiry.
    A client of another partner's API (``harness.reference.linkedin``) overrides the OAuth
    paths, :meth:`_url`, :meth:`_headers`, :meth:`_refreshable` and :meth:`_api_error`.
    """

    authorize_path = "/oauth/authorize"
    token_path = "/oauth/token"

    def __init__(
        self,
        *,
        endpoint: str,
        oauth: OAuthClient,
        http: httpx.AsyncClient,
        clock: Clock,
        session: TokenSession | None = None,
        api_version: str = "v1",
        max_operations: int = MAX_OPERATIONS_PER_REQUEST,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.oauth = oauth
        self.session = session
        self.api_version = api_version.strip("/") or "v1"
        self.max_operations = max(1, min(max_operations, MAX_OPERATIONS_PER_REQUEST))
        self.max_body_bytes = max(MIN_BODY_BYTES, min(max_body_bytes, MAX_BODY_BYTES))
        self._http = http
        self._clock = clock

    # ------------------------------------------------------------------ OAuth

    def authorize_url(self, *, redirect_uri: str, state: str, **extra: str) -> str:
        """The partner's consent URL: ``/oauth/authorize?response_type=code&...``."""
        params = {
            "response_type": "code",
            "client_id": self.oauth.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            **extra,
        }
        query = "&".join(f"{key}={quote(value, safe='')}" for key, value in params.items())
        return f"{self.endpoint}{self.authorize_path}?{query}"

    async def exchange_code(self, code: str, redirect_uri: str) -> TokenGrant:
        """``authorization_code`` grant: the code from the consent redirect -> tokens."""
        grant = await self._token_request(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            what="authorization code",
        )
        if not grant.refresh_token:
            raise PartnerError(
                200, "NO_REFRESH_TOKEN", "the token answer to the code carries no refresh_token"
            )
        return grant

    async def refresh(self) -> str:
        """Refresh the session's access token now (one request even if called concurrently)."""
        session = self._require_session()
        pending = session._refreshing
        if (
            pending is not None
            and not pending.done()
            and pending.get_loop() is asyncio.get_running_loop()
        ):
            return await asyncio.shield(pending)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        session._refreshing = future
        try:
            grant = await self._token_request(
                {"grant_type": "refresh_token", "refresh_token": session.refresh_token},
                what="refresh token",
            )
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # mark retrieved: the raise below reports it
            session._refreshing = None
            raise
        session.access_token = grant.access_token
        margin = min(_TOKEN_MARGIN_SECONDS, grant.expires_in * 0.1)
        session.expires_at = self._clock() + grant.expires_in - margin
        session.refreshes += 1
        session._refreshing = None
        future.set_result(grant.access_token)
        return grant.access_token

    async def check_refresh_token(self) -> bool:
        """True when the session's refresh token still gives an access token."""
        try:
            await self.refresh()
        except ReauthenticationNeeded:
            return False
        return True

    # ------------------------------------------------------------------ accounts and segments

    async def list_accounts(self) -> list[dict[str, Any]]:
        """``GET /v1/accounts``: the accounts the token reaches."""
        payload = await self._json_call("GET", "/accounts")
        return _list_of_dicts(payload, "accounts")

    async def create_segment(
        self, account_id: str, name: str, description: str | None = None
    ) -> CreatedSegment:
        """Create a segment; a 409 ``SEGMENT_NAME_TAKEN`` reuses the existing segment's id."""
        body: dict[str, Any] = {"name": name}
        if description:
            body["description"] = description
        try:
            payload = await self._json_call(
                "POST", f"/accounts/{_seg(account_id)}/segments", json_body=body
            )
        except PartnerError as err:
            existing = _existing_segment_id(err)
            if existing is None:
                raise
            return CreatedSegment(id=existing, created=False)
        segment_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(segment_id, str) or not segment_id:
            raise PartnerError(201, "NO_SEGMENT_ID", "the created segment has no id")
        return CreatedSegment(id=segment_id, created=True)

    async def get_segment(self, segment_id: str) -> dict[str, Any]:
        """``GET /v1/segments/{id}`` (404 ``SEGMENT_NOT_READY`` while provisioning)."""
        payload = await self._json_call("GET", f"/segments/{_seg(segment_id)}")
        if not isinstance(payload, dict):
            raise PartnerError(200, "UNEXPECTED_ANSWER", "the segment answer is not an object")
        return payload

    async def list_segments(
        self, account_id: str, *, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Every segment of an account (all pages), optionally only the one named ``name``."""
        segments: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": "200"}
        if name is not None:
            params["name"] = name
        while True:
            payload = await self._json_call(
                "GET", f"/accounts/{_seg(account_id)}/segments", params=params
            )
            segments.extend(_list_of_dicts(payload, "segments"))
            cursor = payload.get("next_cursor") if isinstance(payload, dict) else None
            if not cursor:
                return segments
            params = {**params, "cursor": str(cursor)}

    async def find_segment_by_name(self, account_id: str, name: str) -> dict[str, Any] | None:
        """The account's segment named exactly ``name``, or None."""
        for segment in await self.list_segments(account_id, name=name):
            if segment.get("name") == name:
                return segment
        return None

    # ------------------------------------------------------------------ members

    async def upload_members(
        self, segment_id: str, operations: Sequence[Mapping[str, Any]]
    ) -> UploadResult:
        """Send operations in requests within the limits (``partial_failure: true``).

        Stops at the first request that fails as a whole and reports it in ``failure``.
        """
        result = UploadResult(total=len(operations))
        encoded = [json.dumps(op, separators=(",", ":")).encode() for op in operations]
        path = f"/segments/{_seg(segment_id)}/members"
        for start, stop in _chunks(encoded, self.max_operations, self.max_body_bytes):
            body = _BODY_HEAD + b",".join(encoded[start:stop]) + _BODY_TAIL
            try:
                payload = await self._json_call("POST", path, content=body)
            except PartnerError as err:
                result.failure = err
                return result
            count = stop - start
            for index, code in _item_errors(payload, count):
                result.rejected[start + index] = code
            result.sent = stop
        return result

    async def list_members(self, segment_id: str) -> list[dict[str, Any]]:
        """Every member ``{type, value}`` of a segment (all pages)."""
        members: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": "1000"}
        while True:
            payload = await self._json_call(
                "GET", f"/segments/{_seg(segment_id)}/members", params=params
            )
            members.extend(_list_of_dicts(payload, "members"))
            cursor = payload.get("next_cursor") if isinstance(payload, dict) else None
            if not cursor:
                return members
            params = {**params, "cursor": str(cursor)}

    # ------------------------------------------------------------------ transport

    def _require_session(self) -> TokenSession:
        if self.session is None:
            raise PartnerError(
                None,
                "NO_REFRESH_TOKEN",
                "no refresh token is configured for this partner client: put one in the "
                "credentials configuration file or authenticate the user",
            )
        return self.session

    async def _access_token(self) -> str:
        session = self._require_session()
        token = session.access_token
        if token is None or self._clock() >= session.expires_at:
            return await self.refresh()
        return token

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One API call with the session's access token, refreshed once and re-sent on a
        401 that says it expired; a 2xx answer, else the :meth:`_api_error` raised."""
        session = self._require_session()
        url = self._url(path)
        token = await self._access_token()
        response = await self._send(method, url, token, json_body, content, params, headers)
        if self._refreshable(response):
            if session.access_token == token:
                token = await self.refresh()
            else:  # another call refreshed meanwhile
                token = session.access_token or await self.refresh()
            response = await self._send(method, url, token, json_body, content, params, headers)
        if not 200 <= response.status_code < 300:
            raise self._api_error(response)
        return response

    async def _json_call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        response = await self._call(
            method, path, json_body=json_body, content=content, params=params, headers=headers
        )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PartnerError(
                response.status_code, "NOT_JSON", f"{method} {path} answered a non-JSON body"
            ) from None

    def _url(self, path: str) -> str:
        """The URL of an API ``path`` (``/segments/...``): ``{endpoint}/v1/segments/...``."""
        return f"{self.endpoint}/{self.api_version}{path}"

    def _headers(self, token: str, method: str, url: str) -> dict[str, str]:
        """The headers of an API call: the bearer token."""
        return {"Authorization": f"Bearer {token}"}

    def _refreshable(self, response: httpx.Response) -> bool:
        """A 401 whose code says the access token is expired, revoked or unknown."""
        return response.status_code == 401 and _error_code(response) in _REFRESHABLE_401

    async def _send(
        self,
        method: str,
        url: str,
        token: str,
        json_body: Any,
        content: bytes | None,
        params: Mapping[str, str] | None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        headers = {**self._headers(token, method, url), **(extra_headers or {})}
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            return await self._http.request(
                method, url, headers=headers, json=json_body, content=content, params=params
            )
        except httpx.TimeoutException:
            raise PartnerUnavailable(None, "TIMEOUT", f"{method} {url} timed out") from None
        except httpx.TransportError as err:
            raise PartnerUnavailable(
                None, "CONNECTION_FAILED", f"{method} {url}: {type(err).__name__}"
            ) from None

    async def _token_request(self, form: dict[str, str], *, what: str) -> TokenGrant:
        data = {
            **form,
            "client_id": self.oauth.client_id,
            "client_secret": self.oauth.client_secret,
        }
        where = f"POST {self.token_path}"
        url = f"{self.endpoint}{self.token_path}"
        try:
            response = await self._http.post(url, data=data)
        except httpx.TimeoutException:
            raise PartnerUnavailable(None, "TIMEOUT", f"{where} timed out") from None
        except httpx.TransportError as err:
            raise PartnerUnavailable(
                None, "CONNECTION_FAILED", f"{where}: {type(err).__name__}"
            ) from None
        if response.status_code == 200:
            try:
                payload = response.json()
                return TokenGrant(
                    access_token=str(payload["access_token"]),
                    expires_in=float(payload.get("expires_in") or 3600),
                    refresh_token=payload.get("refresh_token"),
                )
            except (ValueError, KeyError, TypeError):
                raise PartnerError(
                    200, "UNEXPECTED_ANSWER", f"the {self.token_path} answer has no access_token"
                ) from None
        oauth_error = _oauth_error(response)
        if response.status_code >= 500:
            raise PartnerUnavailable(
                response.status_code, oauth_error or "SERVER_ERROR", f"{where} failed"
            )
        if response.status_code == 429:
            raise PartnerError(
                429,
                oauth_error or "RATE_LIMITED",
                f"{where} was rate limited",
                retry_after=_retry_after(response),
            )
        if oauth_error == "invalid_grant":
            raise ReauthenticationNeeded(
                response.status_code,
                "invalid_grant",
                f"the partner refused the {what} (invalid_grant: unknown, expired, revoked or "
                "already used): re-authentication is needed, log in to the partner again",
            )
        if oauth_error == "invalid_client":
            raise PartnerError(
                response.status_code,
                "invalid_client",
                "the partner refused the OAuth client (invalid_client): check client_id and "
                "client_secret in the credentials configuration file",
            )
        raise PartnerError(
            response.status_code,
            oauth_error or "OAUTH_ERROR",
            f"{where} for the {what} failed",
        )

    def _api_error(self, response: httpx.Response) -> PartnerError:
        status = response.status_code
        error = _error_object(response)
        code = str(error.get("code") or f"HTTP_{status}")
        message = self._scrub(str(error.get("message") or response.reason_phrase or "error"))
        details = error.get("details")
        detail_list = details if isinstance(details, list) else []
        if status >= 500:
            return PartnerUnavailable(status, code, message, details=detail_list)
        return PartnerError(
            status,
            code,
            message,
            retry_after=_retry_after(response) if status == 429 else None,
            details=detail_list,
        )

    def _scrub(self, text: str) -> str:
        secrets = [self.oauth.client_secret]
        if self.session is not None:
            secrets.append(self.session.refresh_token)
            if self.session.access_token:
                secrets.append(self.session.access_token)
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def _seg(value: str) -> str:
    """A path segment with anything but unreserved characters escaped."""
    return quote(value, safe="")


def _chunks(
    encoded: Sequence[bytes],
    max_operations: int,
    max_bytes: int = MAX_BODY_BYTES,
    overhead: int = len(_BODY_HEAD) + len(_BODY_TAIL),
) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges of at most ``max_operations`` within ``max_bytes``, each
    range's items joined by commas inside ``overhead`` bytes of envelope."""
    start = 0
    size = overhead
    for index, item in enumerate(encoded):
        count = index - start
        extra = len(item) + (1 if count else 0)
        if count and (count >= max_operations or size + extra > max_bytes):
            yield start, index
            start = index
            size = overhead
            extra = len(item)
        size += extra
    if start < len(encoded):
        yield start, len(encoded)


def _item_errors(payload: Any, count: int) -> Iterator[tuple[int, str]]:
    """``(index, code)`` of the operations the partner rejected in one upload answer."""
    errors = payload.get("errors") if isinstance(payload, dict) else None
    seen: set[int] = set()
    for item in errors if isinstance(errors, list) else []:
        if not isinstance(item, dict):
            continue
        index = item.get("index")
        if isinstance(index, int) and 0 <= index < count and index not in seen:
            seen.add(index)
            yield index, str(item.get("code") or "REJECTED")


def _error_object(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _error_code(response: httpx.Response) -> str | None:
    code = _error_object(response).get("code")
    return code if isinstance(code, str) else None


def _oauth_error(response: httpx.Response) -> str | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, str):
        return error
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return str(error["code"])
    return None


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def _existing_segment_id(err: PartnerError) -> str | None:
    if err.status != 409 or err.code != "SEGMENT_NAME_TAKEN":
        return None
    for detail in err.details:
        if isinstance(detail, dict) and isinstance(detail.get("segment_id"), str):
            return str(detail["segment_id"])
    return None


def _list_of_dicts(payload: Any, key: str) -> list[dict[str, Any]]:
    items = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise PartnerError(200, "UNEXPECTED_ANSWER", f"the answer has no {key!r} list")
    return [item for item in items if isinstance(item, dict)]
