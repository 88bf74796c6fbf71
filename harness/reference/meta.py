"""The Meta reference connector: the batched reference connector speaking Meta's Marketing
API (Custom Audiences on versioned Graph paths) as ``docs/partner-dialects.md`` says.

Meta differs where a connector can tell: a long-lived access token and **no refresh
grant** (a refused token, code 190, needs the user to log in again), audience names that
may repeat (idempotency is the connector's: it reuses the account's audience of that
name), rows under one ``schema`` added by ``POST`` and removed by ``DELETE``, answers that
only **count** invalid rows, and throttling as HTTP 400 code 80003 whose
``X-Business-Use-Case-Usage`` says how many minutes to wait.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field

from contracts.plugin_api import UserSegmentUpdateRequest
from harness.reference.config import (
    CREDENTIALS_FILE,
    TECHNICAL_CONFIG_FILE,
    ConfigError,
    PartnerCredentials,
    TechnicalConfig,
    load_json_file,
)
from harness.reference.connector import ReferenceConnector
from harness.reference.identifiers import MappedIdentifier
from harness.reference.partner_client import (
    CreatedSegment,
    OAuthClient,
    PartnerClient,
    PartnerError,
    PartnerUnavailable,
    ReauthenticationNeeded,
    TokenGrant,
    TokenSession,
    UploadResult,
    _chunks,
)

__all__ = [
    "DEFAULT_VERSION",
    "SCHEMA",
    "MetaClient",
    "MetaCredentials",
    "MetaReferenceConnector",
    "MetaTechnicalConfig",
    "PartnerThrottled",
    "invalid_row_reason",
    "rows_for",
]

DEFAULT_VERSION = "v25.0"
MAX_ROWS_PER_REQUEST = 10_000
SCHEMA = ("EMAIL_SHA256", "MADID", "EXTERN_ID")
"""The one ``schema`` of every upload: a row is one user's email hash, advertising id and
account id (an empty cell is skipped by Meta)."""
_COLUMNS = {"EMAIL_SHA256": 0, "MAID": 1, "PARTNER_USER_ID": 2}
"""The reference mapping's identifier types -> their column in :data:`SCHEMA`."""
_THROTTLE_CODES = frozenset({80003, 17, 613})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIELDS = (
    "id,account_id,name,description,approximate_count_lower_bound,"
    "approximate_count_upper_bound,operation_status,delivery_status"
)
_BODY_HEAD = b'{"payload":{"schema":' + json.dumps(list(SCHEMA)).encode() + b',"data":['
_BODY_TAIL = b"]}}"


class PartnerThrottled(PartnerError):  # noqa: N818 - reads as what happened
    """Meta's throttling (HTTP 400, code 80003/17/613): ``retry_after`` is the wait it asked."""

    @property
    def throttled(self) -> bool:
        return True


class MetaTechnicalConfig(TechnicalConfig):
    """``technical_config`` for Meta: the endpoint (no path), the Graph version and base
    path, the row limit of a request."""

    partner_api_version: str = DEFAULT_VERSION
    partner_base_path: str = ""
    dialect: str | None = None
    max_operations_per_request: int = Field(default=MAX_ROWS_PER_REQUEST, ge=1, le=10_000)


class MetaCredentials(PartnerCredentials):
    """``credentials`` for Meta: the app, and the long-lived ``access_token`` of the
    account (Meta has no refresh token)."""

    access_token: str | None = Field(default=None, repr=False)


# --------------------------------------------------------------------------- rows


def rows_for(
    request: UserSegmentUpdateRequest, mapped: Sequence[MappedIdentifier]
) -> list[dict[str, Any]]:
    """The user's rows under :data:`SCHEMA`: as few as hold each identifier once (a second
    advertising id needs a second row)."""
    action = "ADD" if request.operation == "UPSERT" else "REMOVE"
    rows: list[list[str]] = []
    for identifier in mapped:
        column = _COLUMNS.get(identifier.type)
        if column is None:
            continue
        value = identifier.value.lower() if identifier.type == "MAID" else identifier.value
        free = next((row for row in rows if not row[column]), None)
        if free is None:
            free = ["", "", ""]
            rows.append(free)
        free[column] = value
    return [{"action": action, "row": row} for row in rows]


def invalid_row_reason(item: Any) -> str | None:
    """Why a batch item must not be sent as a Meta row, or None."""
    if not isinstance(item, dict) or set(item) != {"action", "row"}:
        return "NOT_A_ROW"
    if item["action"] not in ("ADD", "REMOVE"):
        return "UNSUPPORTED_ACTION"
    row = item["row"]
    if not isinstance(row, list) or len(row) != len(SCHEMA):
        return "INVALID_ROW"
    if not all(isinstance(cell, str) for cell in row) or not any(row):
        return "INVALID_ROW"
    if any("@" in cell for cell in row):
        return "PII_NOT_HASHED"
    if row[0] and not _SHA256.fullmatch(row[0]):
        return "INVALID_SHA256_FORMAT"
    return None


# --------------------------------------------------------------------------- the client


class MetaClient(PartnerClient):
    """Async client of Meta's Custom Audience API with one long-lived access token."""

    authorize_path = f"/{DEFAULT_VERSION}/dialog/oauth"
    token_path = f"/{DEFAULT_VERSION}/oauth/access_token"

    def __init__(
        self,
        *,
        endpoint: str,
        oauth: OAuthClient,
        http: httpx.AsyncClient,
        clock: Any,
        access_token: str | None,
        api_version: str = DEFAULT_VERSION,
        base_path: str = "",
        max_operations: int = MAX_ROWS_PER_REQUEST,
        max_body_bytes: int | None = None,
    ) -> None:
        session = None
        if access_token:
            session = TokenSession("(meta: no refresh token)")
            session.access_token = access_token
            session.expires_at = math.inf
        extra = {} if max_body_bytes is None else {"max_body_bytes": max_body_bytes}
        super().__init__(
            endpoint=endpoint,
            oauth=oauth,
            http=http,
            clock=clock,
            session=session,
            api_version=api_version,
            max_operations=max_operations,
            **extra,
        )
        self.base_path = "/" + (base_path.strip("/") or self.api_version)
        self.authorize_path = f"{self.base_path}/dialog/oauth"
        self.token_path = f"{self.base_path}/oauth/access_token"

    async def refresh(self) -> str:
        """Meta has no refresh grant: a refused token needs a new login."""
        raise ReauthenticationNeeded(
            None,
            "NO_REFRESH_GRANT",
            "Meta access tokens cannot be refreshed: re-authentication is needed, log in to "
            "Meta again for a new long-lived token",
        )

    def _scrub(self, text: str) -> str:
        token = self.session.access_token if self.session is not None else None
        text = super()._scrub(text)
        return text.replace(token, "***") if token else text

    def _url(self, path: str) -> str:
        return f"{self.endpoint}{self.base_path}{path}"

    def _refreshable(self, response: httpx.Response) -> bool:
        return False

    def _api_error(self, response: httpx.Response) -> PartnerError:
        """``{"error": {"message", "type", "code", "error_subcode", "is_transient"}}``."""
        status = response.status_code
        error = _error_of(response)
        code = error.get("code")
        subcode = error.get("error_subcode")
        name = f"{code}/{subcode}" if subcode is not None else str(code or f"HTTP_{status}")
        message = self._scrub(str(error.get("message") or response.reason_phrase or "error"))
        if code == 190:
            return ReauthenticationNeeded(
                status,
                name,
                f"Meta refused the access token (code {name}: expired, revoked or unknown): "
                "re-authentication is needed, log in to Meta again",
            )
        if code in _THROTTLE_CODES:
            return PartnerThrottled(status, name, message, retry_after=_regain_seconds(response))
        if code == 2650:
            return PartnerError(status, "SEGMENT_NOT_READY", message)
        if status >= 500 or error.get("is_transient") is True:
            return PartnerUnavailable(status, name, message)
        return PartnerError(status, name, message)

    # ------------------------------------------------------------------ audiences

    async def exchange_code(self, code: str, redirect_uri: str) -> TokenGrant:
        """A consent's code for a long-lived access token (Meta gives no refresh token)."""
        return await self._token_request(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            what="authorization code",
        )

    async def check_refresh_token(self) -> bool:
        """Meta has no refresh token: the long-lived access token is what a login stores,
        and it is still good when it can list the ad accounts it reaches."""
        try:
            await self.list_accounts()
        except ReauthenticationNeeded:
            return False
        return True

    async def list_accounts(self) -> list[dict[str, Any]]:
        """``GET /me/adaccounts``: the ad accounts the token reaches, by their bare id (the
        one ``act_<id>`` paths and the feed's ``partner_account_id`` use)."""
        payload = await self._json_call("GET", "/me/adaccounts")
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise PartnerError(200, "UNEXPECTED_ANSWER", "the answer has no 'data' list")
        accounts: list[dict[str, Any]] = []
        for item in data:
            if isinstance(item, dict) and isinstance(item.get("account_id"), str):
                accounts.append({"id": item["account_id"], "name": item.get("name")})
        return accounts

    async def create_segment(
        self, account_id: str, name: str, description: str | None = None
    ) -> CreatedSegment:
        """The account's audience named ``name`` if there is one (Meta allows duplicates:
        reusing it makes a creation asked twice idempotent), else a new one."""
        existing = await self.find_segment_by_name(account_id, name)
        if existing is not None:
            return CreatedSegment(id=str(existing["id"]), created=False)
        form = {
            "name": name,
            "subtype": "CUSTOM",
            "customer_file_source": "USER_PROVIDED_ONLY",
        }
        if description:
            form["description"] = description
        payload = await self._json_call(
            "POST", f"/act_{_seg(account_id)}/customaudiences", json_body=form
        )
        audience = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(audience, str) or not audience:
            raise PartnerError(200, "NO_SEGMENT_ID", "the created audience has no id")
        return CreatedSegment(id=audience, created=True)

    async def get_segment(self, segment_id: str) -> dict[str, Any]:
        payload = await self._json_call("GET", f"/{_seg(segment_id)}", params={"fields": _FIELDS})
        if not isinstance(payload, dict):
            raise PartnerError(200, "UNEXPECTED_ANSWER", "the audience is not an object")
        return payload

    async def list_segments(
        self, account_id: str, *, name: str | None = None
    ) -> list[dict[str, Any]]:
        audiences: list[dict[str, Any]] = []
        params = {"fields": "id,name", "limit": "100"}
        while True:
            payload = await self._json_call(
                "GET", f"/act_{_seg(account_id)}/customaudiences", params=params
            )
            data = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(data, list):
                raise PartnerError(200, "UNEXPECTED_ANSWER", "the answer has no 'data' list")
            audiences.extend(item for item in data if isinstance(item, dict))
            paging = payload.get("paging") if isinstance(payload, dict) else None
            after = (paging.get("cursors") or {}).get("after") if isinstance(paging, dict) else None
            if not isinstance(paging, dict) or "next" not in paging or not after:
                break
            params = {**params, "after": str(after)}
        if name is not None:
            audiences = [a for a in audiences if a.get("name") == name]
        return audiences

    # ------------------------------------------------------------------ users

    async def upload_members(
        self, segment_id: str, operations: Sequence[Mapping[str, Any]]
    ) -> UploadResult:
        """Each run of rows of one action in requests within the row and byte limits:
        ``POST .../users`` adds, ``DELETE .../users`` removes. Meta only counts the invalid
        rows (``uncounted_rejections``)."""
        result = UploadResult(total=len(operations))
        path = f"/{_seg(segment_id)}/users"
        overhead = len(_BODY_HEAD) + len(_BODY_TAIL)
        for first, last, action in _runs(operations):
            encoded = [
                json.dumps(op["row"], separators=(",", ":")).encode()
                for op in operations[first:last]
            ]
            method = "POST" if action == "ADD" else "DELETE"
            for start, stop in _chunks(encoded, self.max_operations, self.max_body_bytes, overhead):
                body = _BODY_HEAD + b",".join(encoded[start:stop]) + _BODY_TAIL
                try:
                    payload = await self._json_call(method, path, content=body)
                except PartnerError as err:
                    result.failure = err
                    return result
                invalid = payload.get("num_invalid_entries") if isinstance(payload, dict) else None
                count = stop - start
                result.uncounted_rejections += (
                    min(max(invalid, 0), count) if isinstance(invalid, int) else count
                )
                result.sent = first + stop
        return result


def _runs(operations: Sequence[Mapping[str, Any]]) -> Iterable[tuple[int, int, str]]:
    """``(start, stop, action)`` of each run of consecutive rows of one action."""
    start = 0
    for index in range(1, len(operations) + 1):
        if index == len(operations) or operations[index]["action"] != operations[start]["action"]:
            yield start, index, str(operations[start]["action"])
            start = index


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _regain_seconds(response: httpx.Response) -> float:
    """The longest ``estimated_time_to_regain_access`` of ``X-Business-Use-Case-Usage``,
    in seconds (minutes x 60; a minute when the header does not say)."""
    minutes = 1.0
    try:
        usage = json.loads(response.headers.get("x-business-use-case-usage") or "{}")
    except ValueError:
        usage = {}
    for entries in usage.values() if isinstance(usage, dict) else ():
        for entry in entries if isinstance(entries, list) else ():
            wait = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else None
            if isinstance(wait, int | float) and wait > minutes:
                minutes = float(wait)
    return minutes * 60


def _seg(value: str) -> str:
    return quote(value, safe="")


# --------------------------------------------------------------------------- the connector


class MetaReferenceConnector(ReferenceConnector):
    """A model of a correct batched connector for Meta Custom Audiences (``clauses.md``).

    Configured by ``technical_config`` (``partner_endpoint``, ``partner_api_version`` =
    the Graph version, ``partner_base_path``) and ``credentials`` (the app, and a
    long-lived ``access_token``); the feed's ``partner_account_id`` is the ad account id.
    The OAuth routes are the reference's: a login stores Meta's long-lived access token
    where other partners' refresh token goes (Meta has no refresh grant), and a stored
    token is checked by listing the ad accounts it reaches.
    """

    def stored_token(self, grant: TokenGrant) -> str:
        return grant.access_token

    def partner_client(
        self, config: TechnicalConfig, credentials: PartnerCredentials, refresh_token: str | None
    ) -> PartnerClient:
        """A client on the token a login stored (``refresh_token``: for Meta, the long-lived
        access token itself); the feeds' calls (given the file's own ``refresh_token``, or
        none) use the ``credentials`` file's ``access_token``."""
        own = credentials.access_token if isinstance(credentials, MetaCredentials) else None
        feed_level = refresh_token in (None, "", credentials.refresh_token)
        access = own if feed_level else refresh_token
        base = config.partner_base_path if isinstance(config, MetaTechnicalConfig) else ""
        return MetaClient(
            endpoint=config.partner_endpoint,
            oauth=OAuthClient(credentials.client_id, credentials.client_secret),
            http=self.partner_http,
            clock=self.clock,
            access_token=access,
            api_version=config.partner_api_version,
            base_path=base,
            max_operations=config.max_operations_per_request,
            max_body_bytes=config.max_body_bytes_per_request,
        )

    async def oauth_files(self) -> tuple[TechnicalConfig, PartnerCredentials]:
        config = await load_json_file(self.gateway, TECHNICAL_CONFIG_FILE, MetaTechnicalConfig)
        if config.dialect not in (None, "meta"):
            raise ConfigError(
                f"configuration file {TECHNICAL_CONFIG_FILE!r} says dialect "
                f"{config.dialect!r}: this connector speaks Meta's Graph API; point it at a "
                "Meta endpoint (dialect 'meta')"
            )
        credentials = await load_json_file(self.gateway, CREDENTIALS_FILE, MetaCredentials)
        return config, credentials

    def grant_problem(self, credentials: PartnerCredentials) -> str | None:
        if isinstance(credentials, MetaCredentials) and credentials.access_token:
            return None
        return (
            f"configuration file {CREDENTIALS_FILE!r} has no access_token: add the long-lived "
            "Meta access token of the feed's ad account (Meta has no refresh token)"
        )

    def operations_for(
        self, request: UserSegmentUpdateRequest, mapped: list[MappedIdentifier]
    ) -> list[dict[str, Any]]:
        return rows_for(request, mapped)

    def invalid_operation_reason(self, operation: Any) -> str | None:
        return invalid_row_reason(operation)

    def reauthentication_message(self, failure: ReauthenticationNeeded) -> str:
        return (
            f"re-authentication is needed: Meta refused the access token (code {failure.code}); "
            "log in to Meta again for a new long-lived token"
        )

    def match_rate(self, segment: dict[str, Any]) -> Any:
        """Meta shows only an approximate audience size, no match rate."""
        return None
