"""The LinkedIn reference connector: the batched reference connector speaking LinkedIn's
Marketing API (DMP segments, Rest.li 2.0) as ``docs/partner-dialects.md`` describes it.

Only the partner side differs from :class:`~harness.reference.ReferenceConnector`: a
:class:`LinkedInClient` (``/rest`` with ``LinkedIn-Version`` and
``X-Restli-Protocol-Version: 2.0.0``, OAuth at ``/oauth/v2/...``, ``BATCH_CREATE`` uploads
answered element by element, 429 without ``Retry-After``) and LinkedIn's identifier types
(``SHA256_EMAIL``; a MAID is ``APPLE_IDFA`` or ``GOOGLE_AID`` by its device's OS).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field

from contracts.identifiers import (
    UserDevicePointIdentifier,
    UserEmailIdentifier,
    UserIdentifier,
)
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
from harness.reference.core import ReferenceContext
from harness.reference.identifiers import MappedIdentifier, Selection
from harness.reference.partner_client import (
    MAX_IDENTIFIERS_PER_OPERATION,
    CreatedSegment,
    OAuthClient,
    PartnerClient,
    PartnerError,
    PartnerUnavailable,
    TokenSession,
    UploadResult,
    _chunks,
)

__all__ = [
    "ACCOUNT_URN",
    "DEFAULT_VERSION",
    "ID_TYPES",
    "MAX_ELEMENTS_PER_REQUEST",
    "LinkedInClient",
    "LinkedInReferenceConnector",
    "LinkedInTechnicalConfig",
    "invalid_element_reason",
    "map_linkedin_identifiers",
]

DEFAULT_VERSION = "202601"
"""The ``LinkedIn-Version`` sent when ``technical_config`` names none."""
PROTOCOL_VERSION = "2.0.0"
ACCOUNT_URN = "urn:li:sponsoredAccount:"
MAX_ELEMENTS_PER_REQUEST = 5_000
"""LinkedIn's ``BATCH_CREATE`` limit (``technical_config`` may say less)."""
PAGE_COUNT = 100
ID_TYPES = frozenset({"SHA256_EMAIL", "GOOGLE_AID", "APPLE_IDFA"})
"""The ``idType`` values this connector sends."""
_OS_TYPES = {"ios": "APPLE_IDFA", "android": "GOOGLE_AID", "and": "GOOGLE_AID"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REFRESHABLE_401 = frozenset(
    {"EXPIRED_ACCESS_TOKEN", "REVOKED_ACCESS_TOKEN", "INVALID_ACCESS_TOKEN"}
)
_BODY_HEAD = b'{"elements":['
_BODY_TAIL = b"]}"


class LinkedInTechnicalConfig(TechnicalConfig):
    """``technical_config`` for LinkedIn: the endpoint (no path), the ``LinkedIn-Version``
    (``partner_api_version``), the base path and the element limit of a request."""

    partner_api_version: str = DEFAULT_VERSION
    partner_base_path: str = "/rest"
    dialect: str | None = None
    max_operations_per_request: int = Field(default=MAX_ELEMENTS_PER_REQUEST, ge=1, le=10_000)


# --------------------------------------------------------------------------- identifiers


def maid_type(user_agent_id: str) -> tuple[str, str] | None:
    """``(idType, value)`` of ``mob:<os>:<kind>:<id>``: ``APPLE_IDFA`` on iOS,
    ``GOOGLE_AID`` on Android; None when the OS is neither (LinkedIn could not match it)."""
    parts = user_agent_id.split(":", 3)
    if len(parts) != 4 or parts[0] != "mob" or not parts[3]:
        return None
    kind = _OS_TYPES.get(parts[1].lower())
    return (kind, parts[3]) if kind is not None else None


def map_linkedin_identifiers(
    identifiers: Iterable[UserIdentifier], selection: Selection
) -> list[MappedIdentifier]:
    """The LinkedIn ``userIds`` of one user, deduplicated, in the request's order: the
    email hash as ``SHA256_EMAIL``, advertising ids by OS; user accounts have no LinkedIn
    type and are never sent."""
    found: dict[tuple[str, str], MappedIdentifier] = {}

    def add(kind: str, value: str, source: str) -> None:
        if value and "@" not in value and (kind, value) not in found:
            found[(kind, value)] = MappedIdentifier(kind, value, source)

    for identifier in identifiers:
        if isinstance(identifier, UserEmailIdentifier) and selection.email:
            value = identifier.hash.strip().lower()
            if _SHA256.fullmatch(value):
                add("SHA256_EMAIL", value, identifier.hash)
        elif isinstance(identifier, UserDevicePointIdentifier) and selection.maid:
            for technical in identifier.technical_identifiers:
                if technical.type != "MOBILE_ADVERTISING_ID":
                    continue
                registries = selection.maid_registries
                if registries is not None and technical.registry_id not in registries:
                    continue
                mapped = maid_type(technical.user_agent_id)
                if mapped is not None:
                    add(*mapped, technical.user_agent_id)
    return list(found.values())


def elements_for(
    request: UserSegmentUpdateRequest, mapped: Sequence[MappedIdentifier]
) -> list[dict[str, Any]]:
    """One ``BATCH_CREATE`` element per (at most 10) identifiers of the user."""
    action = "ADD" if request.operation == "UPSERT" else "REMOVE"
    step = MAX_IDENTIFIERS_PER_OPERATION
    return [
        {
            "action": action,
            "userIds": [{"idType": m.type, "idValue": m.value} for m in mapped[i : i + step]],
        }
        for i in range(0, len(mapped), step)
    ]


def invalid_element_reason(element: Any) -> str | None:
    """Why a batch item must not be sent as a LinkedIn element, or None."""
    if not isinstance(element, dict):
        return "NOT_AN_OBJECT"
    if element.get("action") not in ("ADD", "REMOVE"):
        return "UNSUPPORTED_ACTION"
    users = element.get("userIds")
    if not isinstance(users, list) or not 1 <= len(users) <= MAX_IDENTIFIERS_PER_OPERATION:
        return "INVALID_IDENTIFIER_COUNT"
    if set(element) != {"action", "userIds"}:
        return "UNKNOWN_FIELD"
    for user in users:
        if not isinstance(user, dict) or set(user) != {"idType", "idValue"}:
            return "NOT_A_USER_ID"
        kind, value = user["idType"], user["idValue"]
        if not isinstance(kind, str) or not isinstance(value, str) or not value:
            return "INVALID_IDENTIFIER"
        if "@" in value:
            return "PII_NOT_HASHED"
        if kind not in ID_TYPES:
            return "UNSUPPORTED_IDENTIFIER_TYPE"
        if kind == "SHA256_EMAIL" and not _SHA256.fullmatch(value):
            return "INVALID_SHA256_FORMAT"
    return None


# --------------------------------------------------------------------------- the client


class LinkedInClient(PartnerClient):
    """Async client of LinkedIn's DMP segment API for one OAuth client and one grant."""

    authorize_path = "/oauth/v2/authorization"
    token_path = "/oauth/v2/accessToken"

    def __init__(
        self,
        *,
        endpoint: str,
        oauth: OAuthClient,
        http: httpx.AsyncClient,
        clock: Any,
        session: TokenSession | None = None,
        api_version: str = DEFAULT_VERSION,
        base_path: str = "/rest",
        max_operations: int = MAX_ELEMENTS_PER_REQUEST,
        max_body_bytes: int | None = None,
    ) -> None:
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
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""

    # ------------------------------------------------------------------ wire

    def _url(self, path: str) -> str:
        return f"{self.endpoint}{self.base_path}{path}"

    def _headers(self, token: str, method: str, url: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "LinkedIn-Version": self.api_version,
            "X-Restli-Protocol-Version": PROTOCOL_VERSION,
        }

    def _refreshable(self, response: httpx.Response) -> bool:
        return response.status_code == 401 and _body(response).get("code") in _REFRESHABLE_401

    def _api_error(self, response: httpx.Response) -> PartnerError:
        """LinkedIn's ``{"status", "serviceErrorCode", "code", "message"}``; a 429 carries
        no ``Retry-After`` (``retry_after`` None: the caller picks its delay)."""
        status = response.status_code
        body = _body(response)
        code = str(body.get("code") or f"HTTP_{status}")
        message = self._scrub(str(body.get("message") or response.reason_phrase or "error"))
        if status >= 500:
            return PartnerUnavailable(status, code, message)
        return PartnerError(status, code, message)

    # ------------------------------------------------------------------ accounts and segments

    async def list_accounts(self) -> list[dict[str, Any]]:
        """LinkedIn's ad-account finder is not part of this face: no account is listed."""
        return []

    async def create_segment(
        self, account_id: str, name: str, description: str | None = None
    ) -> CreatedSegment:
        """``POST /rest/dmpSegments``; on a name already taken (409), the existing segment
        of that name in the account is reused (so a creation re-asked is idempotent)."""
        body: dict[str, Any] = {
            "name": name,
            "account": ACCOUNT_URN + account_id,
            "type": "USER",
            "sourcePlatform": "STREAMING",
            "accessPolicy": "PRIVATE",
            "destinations": [{"destination": "LINKEDIN"}],
        }
        if description:
            body["description"] = description
        try:
            response = await self._call("POST", "/dmpSegments", json_body=body)
        except PartnerError as err:
            if err.status != 409:
                raise
            existing = await self.find_segment_by_name(account_id, name)
            if existing is None:
                raise
            return CreatedSegment(id=str(existing["id"]), created=False)
        segment_id = response.headers.get("x-restli-id") or _location_id(response)
        if not segment_id:
            raise PartnerError(
                response.status_code, "NO_SEGMENT_ID", "the created DMP segment has no x-restli-id"
            )
        return CreatedSegment(id=segment_id, created=True)

    async def get_segment(self, segment_id: str) -> dict[str, Any]:
        """``GET /rest/dmpSegments/{id}`` as LinkedIn shows it."""
        payload = await self._json_call("GET", f"/dmpSegments/{_seg(segment_id)}")
        if not isinstance(payload, dict):
            raise PartnerError(200, "UNEXPECTED_ANSWER", "the DMP segment is not an object")
        return payload

    async def list_segments(
        self, account_id: str, *, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Every DMP segment of the account (``q=account``, all pages), ids as text;
        optionally only those named ``name``."""
        segments: list[dict[str, Any]] = []
        start = 0
        while True:
            params = {
                "q": "account",
                "account": ACCOUNT_URN + account_id,
                "start": str(start),
                "count": str(PAGE_COUNT),
            }
            payload = await self._json_call("GET", "/dmpSegments", params=params)
            elements = payload.get("elements") if isinstance(payload, dict) else None
            if not isinstance(elements, list):
                raise PartnerError(200, "UNEXPECTED_ANSWER", "the answer has no 'elements' list")
            for element in elements:
                if isinstance(element, dict) and element.get("id") is not None:
                    segments.append({**element, "id": str(element["id"])})
            paging = payload.get("paging") if isinstance(payload, dict) else None
            total = paging.get("total") if isinstance(paging, dict) else None
            start += len(elements)
            if not elements or not isinstance(total, int) or start >= total:
                break
        if name is not None:
            segments = [s for s in segments if s.get("name") == name]
        return segments

    # ------------------------------------------------------------------ users

    async def upload_members(
        self, segment_id: str, operations: Sequence[Mapping[str, Any]]
    ) -> UploadResult:
        """Send the elements in ``BATCH_CREATE`` requests within the element and byte
        limits; each element's status says whether it was taken. A 404 on ``/users`` of a
        segment that exists means it is not ready yet (``SEGMENT_NOT_READY``)."""
        result = UploadResult(total=len(operations))
        encoded = [json.dumps(op, separators=(",", ":")).encode() for op in operations]
        path = f"/dmpSegments/{_seg(segment_id)}/users"
        overhead = len(_BODY_HEAD) + len(_BODY_TAIL)
        for start, stop in _chunks(encoded, self.max_operations, self.max_body_bytes, overhead):
            body = _BODY_HEAD + b",".join(encoded[start:stop]) + _BODY_TAIL
            try:
                payload = await self._json_call(
                    "POST", path, content=body, headers={"X-RestLi-Method": "BATCH_CREATE"}
                )
            except PartnerError as err:
                result.failure = await self._not_ready_or(segment_id, err)
                return result
            for index, code in _element_errors(payload, stop - start):
                result.rejected[start + index] = code
            result.sent = stop
        return result

    async def _not_ready_or(self, segment_id: str, err: PartnerError) -> PartnerError:
        """LinkedIn answers 404 on ``/users`` both for an unknown segment and for one still
        provisioning: reading the segment tells which."""
        if err.status != 404:
            return err
        try:
            await self.get_segment(segment_id)
        except PartnerError as missing:
            return missing
        return PartnerError(
            404,
            "SEGMENT_NOT_READY",
            f"DMP segment {segment_id} does not take users yet (LinkedIn's 404 on /users "
            "while it provisions)",
        )

    async def list_members(self, segment_id: str) -> list[dict[str, Any]]:
        """LinkedIn does not list a DMP segment's users."""
        raise PartnerError(
            None, "NOT_SUPPORTED", "LinkedIn does not list the users of a DMP segment"
        )


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _seg(value: str) -> str:
    return quote(value, safe="")


def _location_id(response: httpx.Response) -> str | None:
    location = response.headers.get("location") or ""
    tail = location.rstrip("/").rsplit("/", 1)[-1]
    return tail or None


def _element_errors(payload: Any, count: int) -> Iterator[tuple[int, str]]:
    """``(index, code)`` of the elements not taken: a status other than 2xx, or no status
    at all for that position (the partner did not say: counted as not taken)."""
    elements = payload.get("elements") if isinstance(payload, dict) else None
    answered = elements if isinstance(elements, list) else []
    for index in range(count):
        element = answered[index] if index < len(answered) else None
        status = element.get("status") if isinstance(element, dict) else None
        if isinstance(status, int) and 200 <= status < 300:
            continue
        yield index, f"ELEMENT_{status}" if isinstance(status, int) else "NO_ELEMENT_STATUS"


# --------------------------------------------------------------------------- the connector


class LinkedInReferenceConnector(ReferenceConnector):
    """A model of a correct batched connector for LinkedIn DMP segments (``clauses.md``).

    Configured by ``technical_config`` alone (``partner_endpoint``,
    ``partner_api_version`` = ``LinkedIn-Version``, ``partner_base_path``,
    ``max_operations_per_request``) and ``credentials`` (client id and secret, refresh
    token); the feed's ``partner_account_id`` is the sponsored account's id.
    """

    def partner_client(
        self, config: TechnicalConfig, credentials: PartnerCredentials, refresh_token: str | None
    ) -> PartnerClient:
        session = None
        if refresh_token:
            key = (config.partner_endpoint, credentials.client_id, refresh_token)
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = TokenSession(refresh_token)
        base_path = config.partner_base_path if isinstance(config, LinkedInTechnicalConfig) else ""
        return LinkedInClient(
            endpoint=config.partner_endpoint,
            oauth=OAuthClient(credentials.client_id, credentials.client_secret),
            http=self.partner_http,
            clock=self.clock,
            session=session,
            api_version=config.partner_api_version,
            base_path=base_path or "/rest",
            max_operations=config.max_operations_per_request,
            max_body_bytes=config.max_body_bytes_per_request,
        )

    async def oauth_files(self) -> tuple[TechnicalConfig, PartnerCredentials]:
        """``technical_config`` (LinkedIn's keys; a ``dialect`` other than ``linkedin`` is
        refused) and ``credentials``."""
        config = await load_json_file(self.gateway, TECHNICAL_CONFIG_FILE, LinkedInTechnicalConfig)
        if config.dialect not in (None, "linkedin"):
            raise ConfigError(
                f"configuration file {TECHNICAL_CONFIG_FILE!r} says dialect "
                f"{config.dialect!r}: this connector speaks LinkedIn's API; point it at a "
                "LinkedIn endpoint (dialect 'linkedin')"
            )
        credentials = await load_json_file(self.gateway, CREDENTIALS_FILE, PartnerCredentials)
        return config, credentials

    async def instance_context_builder(self, feed_id: str) -> ReferenceContext:
        """As the reference connector's, and the feed must select an email or a device:
        LinkedIn takes no user account id."""
        ctx = await super().instance_context_builder(feed_id)
        if not (ctx.selection.email or ctx.selection.maid):
            raise ConfigError(
                f"feed {feed_id}: selected_identifying_resources selects nothing LinkedIn "
                "takes: select USER_EMAIL (sent as SHA256_EMAIL) or USER_DEVICE_POINT "
                "(APPLE_IDFA / GOOGLE_AID); LinkedIn has no type for user account ids"
            )
        return ctx

    def eligible_identifiers(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> list[MappedIdentifier]:
        return map_linkedin_identifiers(request.user_identifiers, ctx.selection)

    def operations_for(
        self, request: UserSegmentUpdateRequest, mapped: list[MappedIdentifier]
    ) -> list[dict[str, Any]]:
        return elements_for(request, mapped)

    def invalid_operation_reason(self, operation: Any) -> str | None:
        return invalid_element_reason(operation)

    def segment_account(self, segment: dict[str, Any]) -> str | None:
        urn = segment.get("account")
        if isinstance(urn, str) and urn.startswith(ACCOUNT_URN):
            return urn[len(ACCOUNT_URN) :]
        return None

    def match_rate(self, segment: dict[str, Any]) -> Any:
        """``matchedCount / inputCount`` rounded half-up to 4 decimals once LinkedIn has
        processed the segment (LinkedIn shows the counts, not the rate); 0 of 0 is 0."""
        matched, given = segment.get("matchedCount"), segment.get("inputCount")
        if not (isinstance(matched, int) and isinstance(given, int)) or given < 0:
            return None
        if given == 0:
            return 0.0
        ratio = Decimal(matched) / Decimal(given)
        return float(ratio.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
