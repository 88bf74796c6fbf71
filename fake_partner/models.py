"""The partner's state and rules, with no HTTP (moto's ``models.py``).

Accounts, OAuth clients, codes and tokens, segments and their membership, rate windows
and the daily quota. Every rule of ``partner-api.md`` that does not concern the wire
lives here and raises :class:`PartnerError` / :class:`OAuthError`; the HTTP face
(``responses.py``) only parses, calls and serialises.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fake_partner.clock import VirtualClock, isoformat
from fake_partner.counts import Snapshot, is_targetable
from fake_partner.errors import ErrorCode, OAuthError, PartnerError, PartnerUsageError
from fake_partner.identifiers import identifier_problem, matches
from fake_partner.scenario import AccountSpec, ClientSpec, RefreshTokenSpec, Scenario

RATE_WINDOW_SECONDS = 60.0
DAY_SECONDS = 86_400.0
MAX_DESCRIPTION_LENGTH = 1_000
ADD = "ADD"
REMOVE = "REMOVE"

Member = tuple[str, str]
"""A member of a segment: ``(identifier type, value)``."""

OperationInput = tuple[str, tuple[Member, ...]]
"""One upload operation as the state takes it: ``(action, identifiers)``."""

RejectRule = Callable[[OperationInput], str | None]
"""Extra per-operation rejection (the ``reject_items`` fault): an error code or ``None``."""


def fingerprint(token: str) -> str:
    """A short, non-secret name for a token: ``fp-`` and 12 hex digits of its SHA-256."""
    return "fp-" + hashlib.sha256(token.encode()).hexdigest()[:12]


def _seconds(value: float) -> int | float:
    """Seconds as an int when whole (``3600`` rather than ``3600.0`` on the wire)."""
    return int(value) if float(value).is_integer() else value


@dataclass
class Account:
    """An advertiser account."""

    id: str
    name: str
    currency: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "currency": self.currency}


@dataclass
class Client:
    """An OAuth client: id, secret, allowed redirect URIs (exact or glob), consent accounts."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    consent_accounts: tuple[str, ...] | None

    def allows_redirect(self, uri: str) -> bool:
        return any(
            uri == allowed or ("*" in allowed and fnmatch.fnmatchcase(uri, allowed))
            for allowed in self.redirect_uris
        )


@dataclass
class AuthorizationCode:
    """A consent's code: single use, short-lived, tied to a client and redirect URI."""

    code: str
    client_id: str
    redirect_uri: str
    accounts: frozenset[str]
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    """A long-lived grant; refreshing with it never extends its own lifetime."""

    token: str
    fingerprint: str
    client_id: str
    accounts: frozenset[str]
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclass
class AccessToken:
    """A short-lived bearer token reaching the accounts of its grant."""

    token: str
    fingerprint: str
    client_id: str
    accounts: frozenset[str]
    issued_at: float
    expires_at: float
    refresh: RefreshToken | None = None
    revoked: bool = False


@dataclass
class RateWindow:
    """Requests admitted for one access token in the current one-minute window."""

    start: float
    count: int = 0


@dataclass
class Segment:
    """A partner segment: its facts; its status is derived from them (:meth:`status`)."""

    id: str
    account_id: str
    name: str
    description: str | None
    created_at: float
    updated_at: float
    ready_at: float
    hold_calls: int = 0
    forced_status: str | None = None
    members: dict[Member, bool] = field(default_factory=dict)
    live_matched: int = 0
    processing_due: float | None = None
    snapshot: Snapshot | None = None

    def settle(self, now: float) -> None:
        """Complete a processing whose time has come: take the snapshot of the counts."""
        due = self.processing_due
        if due is not None and now >= due:
            self.snapshot = Snapshot(len(self.members), self.live_matched, due)
            self.processing_due = None
            self.updated_at = max(self.updated_at, due)

    def provisioning(self, now: float) -> bool:
        return self.hold_calls > 0 or now < self.ready_at

    def status(self, now: float) -> str:
        """PROVISIONING -> BUILDING -> READY <-> UPDATING, unless a scenario forced one."""
        if self.forced_status is not None:
            return self.forced_status
        if self.provisioning(now):
            return "PROVISIONING"
        if self.processing_due is not None:
            return "UPDATING" if self.snapshot is not None else "BUILDING"
        return "READY" if self.snapshot is not None else "BUILDING"


@dataclass
class UploadOutcome:
    """What an upload did: counts, per-operation codes (``None``: accepted), applied or not."""

    received: int
    accepted: int
    rejected: int
    errors: list[dict[str, Any]]
    codes: list[str | None]
    applied: bool


class PartnerState:
    """All of the partner's state and its rules; not thread-safe (the face holds the lock)."""

    def __init__(self, scenario: Scenario, clock: VirtualClock) -> None:
        self.scenario = scenario
        self.clock = clock
        self.started_at = clock.now()
        self.accounts: dict[str, Account] = {}
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.segments: dict[str, Segment] = {}
        self.segment_names: dict[tuple[str, str], str] = {}
        self.rate_windows: dict[str, RateWindow] = {}
        self.daily_usage: dict[tuple[str, int], int] = {}
        self.refresh_count = 0
        self._rng = random.Random(f"{scenario.seed}:secrets")
        self._segment_numbers = itertools.count(1)
        self.seed_identities(scenario)

    # --- seeding -------------------------------------------------------------------------------

    def seed_identities(self, scenario: Scenario) -> None:
        """Add the scenario's accounts, clients and refresh tokens that are not there yet."""
        for account in scenario.accounts:
            if account.id not in self.accounts:
                self.add_account(account)
        for client in scenario.clients:
            if client.client_id not in self.clients:
                self.add_client(client)
        for index, spec in enumerate(scenario.refresh_tokens):
            token = spec.token or self._derived("rt", f"refresh:{index}")
            if token not in self.refresh_tokens:
                self.add_refresh_token(spec.model_copy(update={"token": token}))

    def _derived(self, prefix: str, purpose: str) -> str:
        """A stable secret from the seed: the same scenario prints the same credentials."""
        digest = hashlib.sha256(f"{self.scenario.seed}:{purpose}".encode()).hexdigest()
        return f"{prefix}-{digest[:32]}"

    def _secret(self, prefix: str) -> str:
        return f"{prefix}-{self._rng.getrandbits(128):032x}"

    def add_account(self, spec: AccountSpec) -> Account:
        if spec.id in self.accounts:
            raise PartnerUsageError(f"account id={spec.id!r} already exists; choose another id")
        account = Account(spec.id, spec.name or spec.id, spec.currency)
        self.accounts[account.id] = account
        return account

    def add_client(self, spec: ClientSpec) -> Client:
        if spec.client_id in self.clients:
            raise PartnerUsageError(
                f"client_id={spec.client_id!r} already exists; choose another client_id"
            )
        self.check_accounts("consent_accounts", spec.consent_accounts or ())
        client = Client(
            spec.client_id,
            spec.client_secret or self._derived("secret", f"client:{spec.client_id}"),
            tuple(spec.redirect_uris),
            spec.consent_accounts,
        )
        self.clients[client.client_id] = client
        return client

    def add_refresh_token(self, spec: RefreshTokenSpec) -> RefreshToken:
        client_id = spec.client_id or next(iter(self.clients), None)
        if client_id is None or client_id not in self.clients:
            raise PartnerUsageError(
                f"refresh token client_id={client_id!r} is not a known client; "
                f"seed the client first (known: {', '.join(self.clients) or 'none'})"
            )
        self.check_accounts("accounts", spec.accounts)
        now = self.clock.now()
        lifetime = spec.expires_in or self.scenario.refresh_token_lifetime
        token = spec.token or self._secret("rt")
        record = RefreshToken(
            token, fingerprint(token), client_id, frozenset(spec.accounts), now, now + lifetime
        )
        self.refresh_tokens[token] = record
        return record

    def check_accounts(self, what: str, account_ids: Iterable[str]) -> None:
        for account_id in account_ids:
            if account_id not in self.accounts:
                raise PartnerUsageError(
                    f"{what}: account {account_id!r} does not exist; seed it first "
                    f"(known: {', '.join(self.accounts)})"
                )

    def issue_access_token(
        self, client_id: str, accounts: Iterable[str], refresh: RefreshToken | None = None
    ) -> AccessToken:
        """A fresh access token living ``access_token_lifetime`` from now."""
        now = self.clock.now()
        token = self._secret("at")
        record = AccessToken(
            token,
            fingerprint(token),
            client_id,
            frozenset(accounts),
            now,
            now + self.scenario.access_token_lifetime,
            refresh,
        )
        self.access_tokens[token] = record
        return record

    # --- OAuth ---------------------------------------------------------------------------------

    def authorize(self, query: Mapping[str, str]) -> str:
        """The user's consent: the URL to redirect to, carrying a code and the state."""
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            raise PartnerError(
                400,
                ErrorCode.INVALID_CLIENT,
                f"client_id={query.get('client_id', '')[:64]!r} is not a registered client; "
                "use the client_id the partner gave you",
                [{"field": "client_id"}],
            )
        redirect_uri = query.get("redirect_uri", "")
        if not redirect_uri or not client.allows_redirect(redirect_uri):
            raise PartnerError(
                400,
                ErrorCode.INVALID_REDIRECT_URI,
                f"redirect_uri={redirect_uri[:200]!r} is not allowed for this client; "
                f"allowed: {', '.join(client.redirect_uris)}",
                [{"field": "redirect_uri"}],
            )
        answer: dict[str, str] = {}
        allowed = set(client.consent_accounts or self.accounts)
        wanted = [part for part in query.get("accounts", "").split(",") if part]
        if query.get("response_type") != "code":
            answer["error"] = "unsupported_response_type"
        elif any(account not in allowed for account in wanted):
            answer["error"] = "access_denied"
        else:
            code = self._secret("code")
            self.codes[code] = AuthorizationCode(
                code,
                client.client_id,
                redirect_uri,
                frozenset(wanted or allowed),
                self.clock.now() + self.scenario.authorization_code_lifetime,
            )
            answer["code"] = code
        if "state" in query:
            answer["state"] = query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return redirect_uri + separator + urlencode(answer)

    def token_grant(
        self, params: Mapping[str, str], basic: tuple[str, str] | None = None
    ) -> tuple[dict[str, Any], str | None]:
        """``POST /oauth/token``: the token answer and the fingerprint of the new access token."""
        client_id, secret = basic or (params.get("client_id", ""), params.get("client_secret", ""))
        client = self.clients.get(client_id)
        if client is None or not hmac.compare_digest(
            client.client_secret.encode(), secret.encode()
        ):
            raise OAuthError(
                401, "invalid_client", "unknown client_id or wrong client_secret for it"
            )
        grant_type = params.get("grant_type", "")
        if grant_type == "refresh_token":
            return self._refresh_grant(client, params.get("refresh_token", ""))
        if grant_type == "authorization_code":
            return self._code_grant(client, params.get("code", ""), params.get("redirect_uri", ""))
        if not grant_type:
            raise OAuthError(
                400,
                "invalid_request",
                "grant_type is required: refresh_token or authorization_code",
            )
        raise OAuthError(
            400,
            "unsupported_grant_type",
            f"grant_type={grant_type[:40]!r} is not one of: refresh_token, authorization_code",
        )

    def _refresh_grant(self, client: Client, token: str) -> tuple[dict[str, Any], str | None]:
        if not token:
            raise OAuthError(400, "invalid_request", "refresh_token is required")
        record = self.refresh_tokens.get(token)
        now = self.clock.now()
        if record is None or record.client_id != client.client_id:
            raise OAuthError(400, "invalid_grant", "refresh_token is unknown for this client")
        if record.revoked:
            raise OAuthError(400, "invalid_grant", "refresh_token was revoked; re-authenticate")
        if now >= record.expires_at:
            raise OAuthError(400, "invalid_grant", "refresh_token has expired; re-authenticate")
        access = self.issue_access_token(client.client_id, record.accounts, record)
        self.refresh_count += 1
        body = {
            "access_token": access.token,
            "token_type": "bearer",
            "expires_in": _seconds(self.scenario.access_token_lifetime),
            "scope": self.scope(access.accounts),
        }
        return body, access.fingerprint

    def _code_grant(
        self, client: Client, code: str, redirect_uri: str
    ) -> tuple[dict[str, Any], str | None]:
        if not code:
            raise OAuthError(400, "invalid_request", "code is required")
        record = self.codes.get(code)
        now = self.clock.now()
        if record is None or record.client_id != client.client_id:
            raise OAuthError(400, "invalid_grant", "authorization code is unknown for this client")
        if record.used:
            raise OAuthError(400, "invalid_grant", "authorization code was already used")
        if now >= record.expires_at:
            raise OAuthError(400, "invalid_grant", "authorization code has expired (10 minutes)")
        if redirect_uri != record.redirect_uri:
            raise OAuthError(
                400, "invalid_grant", "redirect_uri differs from the one given to /oauth/authorize"
            )
        record.used = True
        refresh = self.add_refresh_token(
            RefreshTokenSpec(client_id=client.client_id, accounts=tuple(sorted(record.accounts)))
        )
        access = self.issue_access_token(client.client_id, record.accounts, refresh)
        body = {
            "access_token": access.token,
            "token_type": "bearer",
            "expires_in": _seconds(self.scenario.access_token_lifetime),
            "refresh_token": refresh.token,
            "refresh_token_expires_in": _seconds(self.scenario.refresh_token_lifetime),
            "scope": self.scope(access.accounts),
        }
        return body, access.fingerprint

    @staticmethod
    def scope(accounts: Iterable[str]) -> str:
        return " ".join(f"accounts:{account}" for account in sorted(accounts))

    # --- access control, rate limit, quota ------------------------------------------------------

    def authenticate(self, authorization: str | None) -> AccessToken:
        """The access token of an ``Authorization: Bearer`` header, or a 401."""
        scheme, _, raw = (authorization or "").partition(" ")
        token = self.access_tokens.get(raw.strip()) if scheme.lower() == "bearer" else None
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if token is None:
            raise PartnerError(
                401,
                ErrorCode.INVALID_ACCESS_TOKEN,
                "missing or unknown access token; send 'Authorization: Bearer <access_token>' "
                "with a token from /oauth/token",
                headers=challenge,
            )
        if token.revoked:
            raise PartnerError(
                401,
                ErrorCode.REVOKED_ACCESS_TOKEN,
                "access token was revoked; get a new one from /oauth/token",
                headers=challenge,
            )
        if self.clock.now() >= token.expires_at:
            raise PartnerError(
                401,
                ErrorCode.EXPIRED_ACCESS_TOKEN,
                "access token has expired; refresh it at /oauth/token with your refresh_token",
                headers=challenge,
            )
        return token

    def admit(self, token: AccessToken) -> dict[str, str]:
        """Count a ``/v1`` request against the daily quota and the rate window.

        Returns the rate-limit headers to send; raises 429 when over either limit.
        """
        now = self.clock.now()
        quota = self.scenario.daily_quota
        day = math.floor(now / DAY_SECONDS)
        if quota is not None:
            used = self.daily_usage.get((token.client_id, day), 0)
            if used >= quota:
                wait = math.ceil((day + 1) * DAY_SECONDS - now)
                raise PartnerError(
                    429,
                    ErrorCode.QUOTA_EXHAUSTED,
                    f"daily quota of {quota} requests for client {token.client_id!r} is "
                    "exhausted; it resets at 00:00 UTC",
                    headers={"Retry-After": str(max(1, wait))},
                    retry_after=float(max(1, wait)),
                )
        limit = self.scenario.rate_limit_per_minute
        window = self.rate_windows.get(token.fingerprint)
        if window is None or now >= window.start + RATE_WINDOW_SECONDS:
            window = RateWindow(now)
            self.rate_windows[token.fingerprint] = window
        reset = max(1, math.ceil(window.start + RATE_WINDOW_SECONDS - now))
        if window.count >= limit:
            headers = {}
            if self.scenario.send_rate_limit_headers:
                headers = self.rate_headers(limit, 0, reset)
                headers["Retry-After"] = str(reset)
            raise PartnerError(
                429,
                ErrorCode.RATE_LIMITED,
                f"more than {limit} requests in a minute for this access token; wait "
                "Retry-After seconds (or back off) before the next request",
                headers=headers,
                retry_after=float(reset),
            )
        window.count += 1
        if quota is not None:
            self.daily_usage[(token.client_id, day)] = (
                self.daily_usage.get((token.client_id, day), 0) + 1
            )
        if not self.scenario.send_rate_limit_headers:
            return {}
        return self.rate_headers(limit, limit - window.count, reset)

    @staticmethod
    def rate_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }

    def require_account(self, token: AccessToken, account_id: str) -> Account:
        """The account if the token reaches it; any other (even unknown) is a 403."""
        account = self.accounts.get(account_id)
        if account is None or account_id not in token.accounts:
            raise PartnerError(
                403,
                ErrorCode.ACCOUNT_FORBIDDEN,
                f"this access token does not reach account {account_id[:64]!r}; it reaches: "
                f"{', '.join(sorted(token.accounts)) or 'none'}",
                [{"account_id": account_id[:64]}],
            )
        return account

    def find_segment(self, token: AccessToken, segment_id: str, need_ready: bool) -> Segment:
        """The segment (404 unknown, 403 other account, 404 SEGMENT_NOT_READY if provisioning)."""
        segment = self.segments.get(segment_id)
        if segment is None:
            raise PartnerError(
                404,
                ErrorCode.SEGMENT_NOT_FOUND,
                f"segment {segment_id[:64]!r} does not exist (unknown or deleted)",
                [{"segment_id": segment_id[:64]}],
            )
        self.require_account(token, segment.account_id)
        now = self.clock.now()
        segment.settle(now)
        if need_ready:
            self.check_ready(segment, now)
        return segment

    def check_ready(self, segment: Segment, now: float) -> None:
        """404 SEGMENT_NOT_READY while provisioning; each such call uses up one held call."""
        if segment.forced_status == "PROVISIONING" or (
            segment.forced_status is None and segment.provisioning(now)
        ):
            if segment.hold_calls > 0:
                segment.hold_calls -= 1
                if segment.hold_calls == 0:
                    segment.ready_at = min(segment.ready_at, now)
            raise PartnerError(
                404,
                ErrorCode.SEGMENT_NOT_READY,
                f"segment {segment.id!r} is still provisioning; retry later",
                [{"segment_id": segment.id}],
            )

    # --- accounts and segments -----------------------------------------------------------------

    def visible_accounts(self, token: AccessToken) -> list[dict[str, str]]:
        return [
            account.to_json() for account in self.accounts.values() if account.id in token.accounts
        ]

    def create_segment(
        self,
        token: AccessToken,
        account_id: str,
        name: str,
        description: str | None,
        *,
        unique_name: bool = True,
    ) -> Segment:
        """A new segment; ``unique_name=False`` lets a name repeat in an account (Meta)."""
        self.require_account(token, account_id)
        limit = self.scenario.limits.max_name_length
        if not 1 <= len(name) <= limit or not name.strip():
            raise PartnerError(
                400,
                ErrorCode.INVALID_REQUEST,
                f"name must be 1 to {limit} characters, not blank (got {len(name)})",
                [{"field": "name", "problem": f"length {len(name)}, allowed 1 to {limit}"}],
            )
        if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
            raise PartnerError(
                400,
                ErrorCode.INVALID_REQUEST,
                f"description must be at most {MAX_DESCRIPTION_LENGTH} characters "
                f"(got {len(description)})",
                [{"field": "description"}],
            )
        existing = self.segment_names.get((account_id, name))
        if existing is not None and unique_name:
            raise PartnerError(
                409,
                ErrorCode.SEGMENT_NAME_TAKEN,
                f"account {account_id!r} already has a segment named {name[:100]!r}; "
                "reuse it (details[0].segment_id) or choose another name",
                [{"segment_id": existing}],
            )
        now = self.clock.now()
        segment = Segment(
            id=f"seg-{next(self._segment_numbers):06d}",
            account_id=account_id,
            name=name,
            description=description,
            created_at=now,
            updated_at=now,
            ready_at=now + self.scenario.provisioning_delay,
        )
        self.segments[segment.id] = segment
        self.segment_names.setdefault((account_id, name), segment.id)
        return segment

    def list_segments(
        self, token: AccessToken, account_id: str, name: str | None, offset: int, limit: int
    ) -> tuple[list[Segment], int | None]:
        """A page of the account's segments (creation order) and the next offset."""
        self.require_account(token, account_id)
        now = self.clock.now()
        found = [
            segment
            for segment in self.segments.values()
            if segment.account_id == account_id and (name is None or segment.name == name)
        ]
        page = found[offset : offset + limit]
        for segment in page:
            segment.settle(now)
        return page, offset + limit if offset + limit < len(found) else None

    def delete_segment(self, token: AccessToken, segment_id: str) -> None:
        segment = self.find_segment(token, segment_id, need_ready=False)
        del self.segments[segment.id]
        key = (segment.account_id, segment.name)
        if self.segment_names.get(key) == segment.id:
            del self.segment_names[key]

    def members_page(
        self, token: AccessToken, segment_id: str, offset: int, limit: int
    ) -> tuple[list[Member], int | None]:
        segment = self.find_segment(token, segment_id, need_ready=True)
        page = list(itertools.islice(segment.members, offset, offset + limit))
        more = offset + limit < len(segment.members)
        return page, offset + limit if more else None

    def segment_json(self, segment: Segment) -> dict[str, Any]:
        """The wire form of a segment (``partner-api.md``, Segments)."""
        now = self.clock.now()
        segment.settle(now)
        status = segment.status(now)
        snapshot = segment.snapshot
        numbers: dict[str, Any] = (
            snapshot.numbers(self.scenario.privacy_floor)
            if snapshot is not None
            else dict.fromkeys(("input_count", "matched_count", "match_rate", "audience_size"))
        )
        matched = snapshot.matched_count if snapshot is not None else None
        return {
            "id": segment.id,
            "account_id": segment.account_id,
            "name": segment.name,
            "description": segment.description,
            "status": status,
            "created_at": isoformat(segment.created_at),
            "updated_at": isoformat(segment.updated_at),
            **numbers,
            "targetable": is_targetable(status, matched, self.scenario.targetable_floor),
        }

    # --- members -------------------------------------------------------------------------------

    def upload(
        self,
        token: AccessToken,
        segment_id: str,
        operations: Sequence[OperationInput],
        partial_failure: bool,
        reject: RejectRule | None = None,
    ) -> UploadOutcome:
        """Validate and apply operations (``partner-api.md``, Members)."""
        segment = self.find_segment(token, segment_id, need_ready=True)
        limits = self.scenario.limits
        if not operations:
            raise PartnerError(
                400,
                ErrorCode.EMPTY_BATCH,
                f"operations is empty; send 1 to {limits.max_operations} operations per request",
            )
        if len(operations) > limits.max_operations:
            raise PartnerError(
                400,
                ErrorCode.TOO_MANY_OPERATIONS,
                f"{len(operations)} operations in one request; the limit is "
                f"{limits.max_operations}: split the batch",
                [{"received": len(operations), "limit": limits.max_operations}],
            )
        codes: list[str | None] = []
        errors: list[dict[str, Any]] = []
        for index, operation in enumerate(operations):
            problem = self.operation_problem(index, operation)
            if problem is None and reject is not None:
                code = reject(operation)
                if code is not None:
                    problem = (code, f"operations[{index}]: the partner rejected this identifier")
            codes.append(problem[0] if problem else None)
            if problem is not None:
                errors.append({"index": index, "code": problem[0], "message": problem[1]})
        received = len(operations)
        if errors and not partial_failure:
            raise PartnerError(
                400,
                ErrorCode.INVALID_OPERATIONS,
                f"{len(errors)} of {received} operations are invalid and partial_failure is "
                "false: nothing was applied; fix them or send partial_failure true",
                errors,
            )
        now = self.clock.now()
        seed = self.scenario.seed
        probability = self.scenario.match_probability
        members = segment.members
        accepted = 0
        for (action, identifiers), code in zip(operations, codes, strict=True):
            if code is not None:
                continue
            accepted += 1
            if action == ADD:
                for member in identifiers:
                    if member not in members:
                        hit = matches(member[1], probability, seed)
                        members[member] = hit
                        segment.live_matched += hit
            else:
                for member in identifiers:
                    hit_or_none = members.pop(member, None)
                    if hit_or_none:
                        segment.live_matched -= 1
        if accepted:
            segment.processing_due = now + self.scenario.processing_delay
            segment.updated_at = now
            segment.settle(now)
        return UploadOutcome(received, accepted, received - accepted, errors, codes, accepted > 0)

    def operation_problem(self, index: int, operation: OperationInput) -> tuple[str, str] | None:
        """Why the operation is rejected whole, or ``None`` when it is valid."""
        action, identifiers = operation
        if action not in (ADD, REMOVE):
            return (
                ErrorCode.UNSUPPORTED_ACTION,
                f"operations[{index}].action {action[:20]!r} is not one of: ADD, REMOVE",
            )
        limit = self.scenario.limits.max_identifiers_per_operation
        if not 1 <= len(identifiers) <= limit:
            return (
                ErrorCode.INVALID_IDENTIFIER_COUNT,
                f"operations[{index}] has {len(identifiers)} identifiers; allowed 1 to {limit}",
            )
        for position, (type_, value) in enumerate(identifiers):
            problem = identifier_problem(type_, value)
            if problem is not None:
                return problem[0], f"operations[{index}].identifiers[{position}]: {problem[1]}"
        return None

    def rematch(self) -> None:
        """Recompute every member's match after the seed or match probability changed."""
        seed = self.scenario.seed
        probability = self.scenario.match_probability
        for segment in self.segments.values():
            matched = 0
            for member in segment.members:
                hit = matches(member[1], probability, seed)
                segment.members[member] = hit
                matched += hit
            segment.live_matched = matched

    # --- inspection ----------------------------------------------------------------------------

    def snapshot(self, include_members: bool = False) -> dict[str, Any]:
        """The whole state as plain data; tokens appear only as fingerprints."""
        now = self.clock.now()
        segments = []
        for segment in self.segments.values():
            item = self.segment_json(segment)
            item["live_input_count"] = len(segment.members)
            item["live_matched_count"] = segment.live_matched
            item["processing_due"] = (
                isoformat(segment.processing_due) if segment.processing_due is not None else None
            )
            item["hold_calls"] = segment.hold_calls
            if include_members:
                item["members"] = [{"type": t, "value": v} for t, v in segment.members]
            segments.append(item)
        return {
            "now": isoformat(now),
            "accounts": [account.to_json() for account in self.accounts.values()],
            "clients": [
                {"client_id": client.client_id, "redirect_uris": list(client.redirect_uris)}
                for client in self.clients.values()
            ],
            "segments": segments,
            "access_tokens": [
                {
                    "fingerprint": token.fingerprint,
                    "client_id": token.client_id,
                    "accounts": sorted(token.accounts),
                    "expires_at": isoformat(token.expires_at),
                    "expired": now >= token.expires_at,
                    "revoked": token.revoked,
                }
                for token in self.access_tokens.values()
            ],
            "refresh_tokens": [
                {
                    "fingerprint": token.fingerprint,
                    "client_id": token.client_id,
                    "accounts": sorted(token.accounts),
                    "expires_at": isoformat(token.expires_at),
                    "revoked": token.revoked,
                }
                for token in self.refresh_tokens.values()
            ],
            "refresh_count": self.refresh_count,
        }
